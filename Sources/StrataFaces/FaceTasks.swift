import Foundation
import StrataCore
import StrataNN
import StrataData

// The face tasks of face_recognition's kind, one call each: embed photos, enrol a person,
// identify, verify, and the evaluation protocols over a folder or a pairs file.

extension FaceModel {
    /// The model at `path`, or the one shipped with Strata.
    public static func loadOrBuiltIn(_ path: String?) throws -> FaceModel {
        try path.map { try FaceModel.load($0) } ?? FaceModel.builtIn()
    }

    /// Several models' embeddings joined as one model (the built-in one when `paths` is empty);
    /// the first one's threshold, views and score.
    public static func joined(_ paths: [String]) throws -> FaceModel {
        let models = try paths.isEmpty ? [FaceModel.builtIn()] : paths.map { try FaceModel.load($0) }
        return FaceModel(ensemble: models, threshold: models[0].threshold)
    }

    /// Embeddings `[N, D]` of photo files, each reframed by `frame` first; errors name the file.
    public func embedFiles(_ paths: [String], frame: FaceCrop? = nil, views: Int? = nil) throws -> Tensor {
        try embedInChunks(paths.count, views: views) { r in
            let names = Array(paths[r])
            return (try names.map { p in
                let img = try Image.load(p)
                return frame.map { $0.reframe(img) } ?? img
            }, names)
        }
    }

    /// Is the pair of photos the same person: the distance under the model's score, and the verdict
    /// at `threshold` (default the model's). With detection, the largest face of each photo is
    /// used; `notes` say where there were several.
    public func verify(_ a: String, _ b: String, threshold: Float? = nil, finding: FaceFinding = .fixedBox) throws -> (same: Bool, distance: Float, threshold: Float, notes: [String]) {
        let (e, _, notes) = try embedFaces([a, b], finding: finding)
        let rows = e.rows
        let d = scorer.distance(rows[0], rows[1])
        let t = threshold ?? self.threshold
        return (d <= t, d, t, notes)
    }
}

extension Tensor {
    /// The rows of a matrix as arrays.
    public var rows: [[Float]] {
        precondition(rank == 2, "Tensor.rows: needs a matrix, got \(shape)")
        let (n, d) = (shape[0], shape[1]), v = scalars
        return (0..<n).map { Array(v[($0 * d)..<(($0 + 1) * d)]) }
    }
}

/// One photo identified against a gallery.
public struct FaceMatch {
    public let image: String
    /// The nearest person, or nil beyond the threshold.
    public let name: String?
    public let nearest: String
    public let distance: Float
}

extension Gallery {
    /// Adds `photos` of `name` to the gallery file at `path` (made for `model` if missing), written atomically.
    /// Returns the person's photo count and the number of people.
    /// With detection, each photo must show one face (`policy` `.largest` takes the biggest).
    public static func enroll(_ name: String, photos: [String], model: FaceModel, gallery path: String,
                              finding: FaceFinding = .fixedBox, policy: FaceFinding.Policy = .single) throws -> (photos: Int, people: Int) {
        let (e, _, _) = try model.embedFaces(photos, finding: finding, policy: policy)
        // Read, add and write under the gallery's lock, so concurrent enrolments all land.
        return try FileIO.withLock(beside: path) {
            var g = FileManager.default.fileExists(atPath: path) ? try Gallery.load(path, for: model) : Gallery(model: model)
            g.enroll(name, e)
            try g.save(path)
            return (g.people.first { $0.name == name }!.embeddings.count, g.people.count)
        }
    }

    /// Names the person in each photo, or nil beyond `threshold` (default: the model's).
    public func identify(_ photos: [String], model: FaceModel, threshold: Float? = nil) throws -> [FaceMatch] {
        guard !people.isEmpty else { throw StrataError("the gallery has nobody enrolled") }
        let e = try model.embedFiles(photos)
        let t = threshold ?? model.threshold, scorer = model.scorer
        return zip(photos, e.rows).map { path, row in
            let (name, dist) = nearest(row, scorer: scorer)!
            return FaceMatch(image: path, name: dist <= t ? name : nil, nearest: name, distance: dist)
        }
    }
}

/// Scores of a face model on a pairs file.
public struct PairsEvaluation {
    public let pairs: Int, images: Int
    public let score: FacePairs.Score
    /// True when scored with S-norm, else cosine.
    public let snorm: Bool
    public let seconds: Double
    /// Whether faces were detected, and in how many photos the largest of several faces was used or none was found.
    public var detected = false, largestOfSeveral = 0, noFace = 0
}

extension FacePairs {
    /// Verifies every pair of the pairs file at `path` (photos under `root`) with `model`: the
    /// LFW protocol's 10-fold accuracy, AUC and TAR at FAR 1 %. A missing photo is named with the
    /// line that asks for it.
    /// With detection, the largest face of each photo is used (`largestOfSeveral` counts those);
    /// a photo where none is found keeps the fixed box (`noFace` counts those).
    public static func evaluate(_ path: String, root: String, model: FaceModel, views: Int? = nil, score: FaceScore? = nil,
                                finding: FaceFinding = .fixedBox) throws -> PairsEvaluation {
        let started = Date()
        let pairs = try FacePairs.load(path)
        var index: [String: Int] = [:], paths: [String] = []
        for p in pairs.pairs {
            for (name, i) in [(p.name1, p.index1), (p.name2, p.index2)] {
                let file = FacePairs.imagePath(root: root, name: name, index: i)
                if index[file] != nil { continue }
                guard FileManager.default.fileExists(atPath: file) else {
                    throw StrataError("\(path):\(p.line): \(file): no such image (photo \(i) of \(name))")
                }
                index[file] = paths.count
                paths.append(file)
            }
        }
        // Each fold is scored at a threshold chosen on the others: every fold needs a same and a different pair.
        guard pairs.folds.count >= 2, pairs.folds.allSatisfy({ f in f.contains { pairs.pairs[$0].same } && f.contains { !pairs.pairs[$0].same } }) else {
            let same = pairs.pairs.filter(\.same).count
            throw StrataError("\(path): \(same) same and \(pairs.pairs.count - same) different pairs; cross-validation over \(Swift.max(pairs.folds.count, 10)) folds needs at least one of each per fold (10 of each for View 1)")
        }
        var several = 0, none = 0
        let e = try model.embedInChunks(paths.count, views: views) { r in
            var photos: [Image] = []
            for file in paths[r] {
                let (img, found, _) = try finding.faces(in: file)
                if finding.detector == nil { photos.append(img); continue }
                if found.count > 1 { several += 1 }
                if let f = found.max(by: { $0.side < $1.side }) { photos.append(f.lfwPhoto(from: img)) } else { none += 1; photos.append(img) }
            }
            return (photos, Array(paths[r]))
        }
        let scorer = score.map(model.scorer) ?? model.scorer
        // similarity = 1 - distance (cosine, or S-norm on its scale), of the pairs alone
        let sims = scorer.distances(e, pairs: pairs.pairs.map { p in
            (index[FacePairs.imagePath(root: root, name: p.name1, index: p.index1)]!, index[FacePairs.imagePath(root: root, name: p.name2, index: p.index2)]!)
        }).map { 1 - $0 }
        let s = FacePairs.score(similarities: sims, same: pairs.pairs.map(\.same), folds: pairs.folds)
        return PairsEvaluation(pairs: pairs.pairs.count, images: paths.count, score: s, snorm: scorer.centres != nil,
                               seconds: Date().timeIntervalSince(started), detected: finding.detector != nil, largestOfSeveral: several, noFace: none)
    }

    /// The people of an LFW-style folder: its sub-folders, sorted; an error names a missing folder.
    public static func people(folder: String) throws -> [String] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else { throw StrataError("\(folder): no such folder") }
        return try fm.contentsOfDirectory(atPath: folder).filter { n in
            var d: ObjCBool = false
            return !n.hasPrefix(".") && fm.fileExists(atPath: (folder as NSString).appendingPathComponent(n), isDirectory: &d) && d.boolValue
        }.sorted()
    }

    /// Seeded View-1 pairs among a seeded held-out share of the people of an LFW-style folder
    /// (`DIR/name/name_0001.jpg`). Returns the pairs and the held-out people.
    public static func heldOut(folder: String, fraction: Double, holdoutSeed: Int, same: Int, different: Int, seed: Int) throws -> (pairs: FacePairs, held: [String], people: Int) {
        let fm = FileManager.default
        let names = try people(folder: folder)
        let held = heldOutPeople(names, fraction: fraction, seed: holdoutSeed)
        let people = try held.map { name -> (name: String, photos: Int) in
            let dir = (folder as NSString).appendingPathComponent(name)
            let files = Set(try fm.contentsOfDirectory(atPath: dir))
            var n = 0
            while files.contains("\(name)_\(String(format: "%04d", n + 1)).jpg") { n += 1 }
            guard n > 0 else { throw StrataError("\(dir): no photos named \(name)_0001.jpg, \(name)_0002.jpg, ... (LFW naming)") }
            return (name, n)
        }
        return (try make(people: people, same: same, different: different, seed: seed), held, names.count)
    }
}

extension FaceEvaluation {
    /// A face folder twice: full resolution for the classical methods, the network's input size
    /// (area-averaged, optionally histogram-equalised, standardised per image) for the deep ones;
    /// only the first `people` people when given.
    public static func loadFolder(_ dir: String, netSize: (Int, Int) = (46, 56), equalize: Bool = false, people: Int? = nil) throws -> (full: LabeledImages, small: LabeledImages) {
        var full = try ImageFolder.load(dir, channels: 1)
        var small = try ImageFolder.load(dir, channels: 1, size: netSize, transform: equalize ? { $0.equalized() } : nil)
        small.normalization = Normalization(scale: 1 / 255, perImage: true)
        if let n = people {
            guard n >= 2 && n <= full.classNames.count else { throw StrataError("\(dir) has \(full.classNames.count) people; cannot take the first \(n)") }
            full = full.classes(Array(0..<n))
            small = small.classes(Array(0..<n))
        }
        return (full, small)
    }

    /// The open-set row of a model trained elsewhere: the held-out people's photos (reframed by
    /// `frame`) are embedded by the model, enrolled from 3 and identified, per seed; and the EER.
    public static func openSet(model fm: FaceModel, name: String, full: LabeledImages, trainPeople: Int, fold: Int?, seeds: Int,
                               frame: FaceCrop?, views: Int?, score: FaceScore?) throws -> (String, [Double], Double) {
        let people = full.classNames.count
        guard trainPeople < people else { throw StrataError("open set: \(trainPeople) training people leaves none to enrol (\(people) people)") }
        let heldCount = people - trainPeople, start = fold.map { $0 * heldCount } ?? trainPeople
        guard start + heldCount <= people else { throw StrataError("open set: fold \(fold ?? 0) is past the last person") }
        let held = full.classes(Array(start..<(start + heldCount)))
        let e = try fm.embedFiles(held.files ?? [], frame: frame, views: views)
        let accs = (0..<seeds).map { enrollIdentify(e, held.labels, enroll: 3, seed: $0, distance: .cosine) }
        let scorer = score.map(fm.scorer) ?? fm.scorer
        return (name, accs, equalErrorRate(scorer.distances(e, e), held.labels))
    }
}

extension FaceModel {
    /// One network (1-based `member`) of a loaded model file as a plain model with its face box,
    /// for inspection; nil when the file is not a face model with a face box.
    public static func network(_ saved: SavedModel, source path: String, member: Int) throws -> (SavedModel, FaceCrop)? {
        guard saved.model is FaceEnsemble || saved.info.extra[FaceCrop.key] != nil else { return nil }
        let nets = try FaceModel.from(saved, source: path).networks
        guard (1...nets.count).contains(member) else { throw StrataError("\(path) has \(nets.count) network(s); there is no network \(member)") }
        let m = nets[member - 1]
        guard let crop = m.crop else { return nil }
        return (SavedModel(model: m.net, info: m.info), crop)
    }
}
