import Foundation
import StrataCore
import StrataNN
import StrataData

/// The developer-side check of the detector on people it never saw (those `make faces-check`
/// holds out): seeded 640x480 composite pictures with known boxes, on wallpapers the detector
/// never trained on (every fifth).
public struct DetectionCheck {
    public let sources: DetectionSources
    public let heldPeople: [String]

    /// Training wallpapers are the others: `DetectionSources.wallpaperFiles()` split by position.
    public static func wallpapers(check: Bool) -> [String] {
        DetectionSources.wallpaperFiles().enumerated().filter { ($0.offset % 5 == 0) == check }.map(\.element)
    }

    public init(lfw: String, holdoutFraction: Double = 0.1, holdoutSeed: Int = 0) throws {
        let held = try FaceDetector.trainingPeople(lfw: lfw, holdoutFraction: holdoutFraction, holdoutSeed: holdoutSeed).held
        guard !held.isEmpty else { throw StrataError("\(lfw): the held-out share holds nobody") }
        heldPeople = held
        sources = try DetectionSources.load(lfw: lfw, people: held, backgroundFiles: DetectionCheck.wallpapers(check: true))
    }

    /// `count` seeded composite pictures of `width` x `height` with faces of 20 px to most of the picture.
    public func compositePictures(count: Int, seed: Int, width: Int = 640, height: Int = 480) -> [ComposedPicture] {
        var composer = DetectionComposer(sources: sources, width: width, height: height, minFace: 20, maxFace: 0.6 * Double(Swift.min(width, height)))
        composer.lfwPhotoShare = 0.15
        composer.emptyShare = 0.05
        var rng = RandomGenerator(seed: seed)
        return (0..<count).map { _ in composer.compose(&rng) }
    }

    /// Detects every picture: the score and the mean milliseconds per picture.
    public static func score(_ detector: FaceDetector, _ pictures: [ComposedPicture], threshold: Float = 0.05) -> (DetectionScore, [[FaceBox]], Double) {
        var found: [[FaceBox]] = []
        let start = ProcessInfo.processInfo.systemUptime
        for p in pictures { found.append(detector.detect(p.image, minSize: 0, threshold: threshold)) }
        let ms = (ProcessInfo.processInfo.systemUptime - start) * 1000 / Double(Swift.max(1, pictures.count))
        var score = DetectionScore.evaluate(found, truth: pictures.map(\.faces), ignore: pictures.map(\.ignore))
        // Recall and false positives at the detector's own threshold.
        let atThreshold = found.map { $0.filter { $0.score >= detector.settings.threshold } }
        let own = DetectionScore.evaluate(atThreshold, truth: pictures.map(\.faces), ignore: pictures.map(\.ignore))
        (score.recall, score.falsePositivesPerPicture) = (own.recall, own.falsePositivesPerPicture)
        return (score, found, ms)
    }

    /// Writes the pictures as PNG files and `boxes.json` (for `Tools/haar_reference.py`).
    public static func write(_ pictures: [ComposedPicture], to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var entries: [[String: Any]] = []
        for (i, p) in pictures.enumerated() {
            let name = String(format: "%04d.png", i)
            try p.image.savePNG((dir as NSString).appendingPathComponent(name))
            entries.append(["file": name, "width": p.image.width, "height": p.image.height,
                            "faces": p.faces.map { [$0.x, $0.y, $0.side] },
                            "ignore": p.ignore.map { [$0.x, $0.y, $0.w, $0.h] }])
        }
        let data = try JSONSerialization.data(withJSONObject: ["pictures": entries], options: [.sortedKeys])
        try FileIO.writeAtomically(data, to: (dir as NSString).appendingPathComponent("boxes.json"))
    }
}

extension DetectionCheck {
    /// Training-style pictures (160x160) of the held-out people, to look at what the detector learns from.
    public func trainingPictures(count: Int, seed: Int) -> [ComposedPicture] {
        let composer = DetectionComposer(sources: sources, width: 160, height: 160)
        var rng = RandomGenerator(seed: seed)
        return (0..<count).map { _ in composer.compose(&rng) }
    }
}

extension DetectionCheck {
    /// Every photo a pairs file names, placed smaller (`sides` px instead of 250, default 100-200) and off-centre
    /// in a seeded 640x480 picture on a check wallpaper, written under `dir` with the same names,
    /// so `faces evaluate --pairs FILE --root DIR` verifies the same pairs on them.
    public func reframePairs(_ pairsFile: String, root: String, to dir: String, seed: Int = 2, sides: ClosedRange<Int> = 100...200) throws -> Int {
        let pairs = try FacePairs.load(pairsFile)
        var files = Set<String>()
        for p in pairs.pairs { files.insert(FacePairs.imagePath(root: "", name: p.name1, index: p.index1)); files.insert(FacePairs.imagePath(root: "", name: p.name2, index: p.index2)) }
        var rng = RandomGenerator(seed: seed)
        let composer = DetectionComposer(sources: sources, width: 640, height: 480)
        for rel in files.sorted() {
            let photo = try Image.load((root as NSString).appendingPathComponent(rel))
            var canvas = composer.background(&rng)
            let side = sides.lowerBound + rng.nextInt(sides.count)
            let placed = (photo.channels == 3 ? photo : photo.rgb()).resized(width: side, height: side)
            let x0 = rng.nextInt(640 - side), y0 = rng.nextInt(480 - side)
            for r in 0..<side {
                for c in 0..<side {
                    for k in 0..<3 { canvas.pixels[((y0 + r) * 640 + x0 + c) * 3 + k] = placed.pixels[(r * side + c) * 3 + k] }
                }
            }
            let out = (dir as NSString).appendingPathComponent(rel)
            try FileManager.default.createDirectory(atPath: (out as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try canvas.saveJPEG(out, quality: 92)
        }
        return files.count
    }

    /// Result of identifying the faces of group pictures.
    public struct GroupResult: Codable {
        public var pictures = 0, faces = 0, right = 0, wrong = 0, unknown = 0, missed = 0, extraDetections = 0
        /// Detections matching no face that were given a name (counted in `wrong`).
        public var namedExtra = 0
        /// The same reserved photos identified as they are (LFW-framed, fixed box): what recognition alone reaches.
        public var originalsRight = 0, originalsWrong = 0, originals = 0
        public var rightShare: Double { Double(right) / Double(Swift.max(1, faces)) }
        public var wrongPerFace: Double { Double(wrong) / Double(Swift.max(1, faces)) }
    }

    /// Seeded 640x480 pictures of 2-4 held-out people each (faces of 50-120 px cut with irregular
    /// margins of 0.3-0.42 face sides, one reserved photo per person, no colour changes), identified face by face against a gallery of all
    /// held-out people enrolled from their other photos (with `enrolFinding`). Pictures are
    /// written to `writeTo` when given.
    public func groupCheck(model: FaceModel, finding: FaceFinding, enrolFinding: FaceFinding, pictures count: Int = 60, seed: Int = 3,
                           writeTo: String? = nil) throws -> GroupResult {
        // Photos per person, in `sources.photoPaths` order (sorted by person, then number).
        var byPerson: [String: [Int]] = [:]
        for (i, p) in sources.photoPaths.enumerated() { byPerson[((p as NSString).deletingLastPathComponent as NSString).lastPathComponent, default: []].append(i) }
        var rng = RandomGenerator(seed: seed)
        let people = byPerson.keys.sorted().filter { byPerson[$0]!.count >= 2 }
        var reserved: [String: Int] = [:]
        var gallery = Gallery(model: model)
        for name in people {
            let photos = byPerson[name]!
            let r = photos[rng.nextInt(photos.count)]
            reserved[name] = r
            let enrol = photos.filter { $0 != r }.map { sources.photoPaths[$0] }
            let (e, _, _) = try model.embedFaces(enrol, finding: enrolFinding, policy: .largest)
            gallery.enroll(name, e)
        }
        var composer = DetectionComposer(sources: sources, width: 640, height: 480, minFace: 50, maxFace: 120)
        composer.lfwPhotoShare = 0
        composer.photometric = false
        // Wide margins: the networks' boxes (up to 1.06 face sides) then see the person's own
        // photo, as in a real group picture, not the wallpaper through a tight cut.
        composer.faceMargins = 0.3...0.42
        let order = people.map { reserved[$0]! }
        let (base, _) = try gallery.identifyFaces(order.map { sources.photoPaths[$0] }, model: model, finding: .fixedBox)
        var result = GroupResult()
        for (name, m) in zip(people, base) {
            result.originals += 1
            if let n = m.match.name { if n == name { result.originalsRight += 1 } else { result.originalsWrong += 1 } }
        }
        if let writeTo { try FileManager.default.createDirectory(atPath: writeTo, withIntermediateDirectories: true) }
        for i in 0..<count {
            let k = 2 + rng.nextInt(3)
            var chosen: [String] = []
            while chosen.count < k { let n = people[rng.nextInt(people.count)]; if !chosen.contains(n) { chosen.append(n) } }
            var pic = ComposedPicture(image: composer.background(&rng), faces: [], ignore: [], photoIndices: [])
            var names: [String] = []
            for n in chosen {
                let before = pic.faces.count
                composer.pasteFace(&pic, &rng, photo: reserved[n]!, sizeRange: (50, 120))
                if pic.faces.count > before { names.append(n) }
            }
            let path = (writeTo ?? FileManager.default.temporaryDirectory.path as String) + "/group-\(String(format: "%03d", i)).png"
            try pic.image.savePNG(path)
            defer { if writeTo == nil { try? FileManager.default.removeItem(atPath: path) } }
            let (found, _) = try gallery.identifyFaces([path], model: model, finding: finding)
            result.pictures += 1
            result.faces += pic.faces.count
            var used = Set<Int>()
            for (j, truth) in pic.faces.enumerated() {
                guard let m = found.enumerated().filter({ !used.contains($0.offset) && $0.element.box.iou(truth) >= 0.3 })
                        .max(by: { $0.element.box.iou(truth) < $1.element.box.iou(truth) }) else { result.missed += 1; continue }
                used.insert(m.offset)
                if let name = m.element.match.name { if name == names[j] { result.right += 1 } else { result.wrong += 1 } } else { result.unknown += 1 }
            }
            // A detection that is no face but gets a name is a wrong name too.
            for (k, f) in found.enumerated() where !used.contains(k) {
                result.extraDetections += 1
                if f.match.name != nil { result.wrong += 1; result.namedExtra += 1 }
            }
        }
        return result
    }
}
