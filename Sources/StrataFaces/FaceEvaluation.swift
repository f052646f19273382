import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

/// Face identification protocols on a folder of faces (one folder per person), as in
/// ../shared/bench/reference/faces_att.py.
public enum FaceEvaluation {
    /// One classical method: features from the full-resolution images, and how they are matched.
    public struct Classical {
        public let name: String
        let features: (_ train: Tensor, _ trainLabels: [Int], _ classes: Int, _ all: [Tensor]) throws -> [Tensor]
        let classify: (_ train: Tensor, _ trainLabels: [Int], _ test: Tensor, _ classes: Int) -> [Int]
    }

    /// Hand-made features of the classical workflow.
    public enum FeatureKind: String, CaseIterable, Sendable { case raw, eigenfaces, fisherfaces, lbp, hog }
    /// Classifiers of the classical workflow: 1-NN by a distance, or logistic regression.
    public enum ClassifierKind: String, CaseIterable, Sendable { case euclidean, cosine, chi2, logreg }

    /// A method from features (raw, eigenfaces, fisherfaces, lbp, hog) and a classifier
    /// (euclidean, cosine, chi2 for 1-NN, or logreg).
    public static func method(features kind: FeatureKind, classifier: ClassifierKind, components: Int = 50) throws -> Classical {
        let features = kind.rawValue
        let f: (Tensor, [Int], Int, [Tensor]) throws -> [Tensor]
        switch kind {
        case .raw: f = { _, _, _, all in all.map { $0.flatten(startDim: 1) } }
        case .eigenfaces: f = { tr, _, _, all in
            let s = Subspace.eigenfaces(tr.flatten(startDim: 1), components: Swift.min(components, tr.shape[0] - 1)); return all.map { s.project($0.flatten(startDim: 1)) } }
        case .fisherfaces: f = { tr, labels, classes, all in
            let s = try Subspace.fisherfaces(tr.flatten(startDim: 1), labels: labels, classes: classes); return all.map { s.project($0.flatten(startDim: 1)) } }
        case .lbp: f = { _, _, _, all in all.map { HandFeatures.lbp($0) } }
        case .hog: f = { _, _, _, all in all.map { HandFeatures.hog($0) } }
        }
        let c: (Tensor, [Int], Tensor, Int) -> [Int]
        if classifier == .logreg {
            c = { tr, labels, te, classes in
                LinearProbe.fit(features: tr, labels: labels, classes: classes, epochs: 600, batchSize: 256, lr: 0.02, l2: 2e-3).logits(te).argmaxIndices()
            }
        } else {
            c = nn(Distance(rawValue: classifier.rawValue)!)
        }
        return Classical(name: "\(features), \(classifier == .logreg ? "logistic regression" : "1-NN " + classifier.rawValue)", features: f, classify: c)
    }

    static func nn(_ d: Distance) -> (Tensor, [Int], Tensor, Int) -> [Int] {
        { train, labels, test, _ in nearestNeighbour(test, train, labels: labels, distance: d) }
    }

    /// Raw pixels, Eigenfaces, Fisherfaces, LBP and HOG with nearest neighbour or logistic regression.
    /// Features that are fitted (PCA, LDA) are fitted on the training images only.
    public static let classical: [Classical] = [
        Classical(name: "raw pixels, 1-NN Euclidean", features: { _, _, _, all in all.map { $0.flatten(startDim: 1) } }, classify: nn(.euclidean)),
        Classical(name: "raw pixels, 1-NN cosine", features: { _, _, _, all in all.map { $0.flatten(startDim: 1) } }, classify: nn(.cosine)),
        Classical(name: "Eigenfaces (PCA 50), 1-NN Euclidean", features: { tr, _, _, all in
            let s = Subspace.eigenfaces(tr.flatten(startDim: 1), components: 50); return all.map { s.project($0.flatten(startDim: 1)) }
        }, classify: nn(.euclidean)),
        Classical(name: "Eigenfaces (PCA 100), 1-NN Euclidean", features: { tr, _, _, all in
            let s = Subspace.eigenfaces(tr.flatten(startDim: 1), components: Swift.min(100, tr.shape[0] - 1)); return all.map { s.project($0.flatten(startDim: 1)) }
        }, classify: nn(.euclidean)),
        Classical(name: "Fisherfaces (PCA+LDA), 1-NN Euclidean", features: { tr, labels, classes, all in
            let s = try Subspace.fisherfaces(tr.flatten(startDim: 1), labels: labels, classes: classes); return all.map { s.project($0.flatten(startDim: 1)) }
        }, classify: nn(.euclidean)),
        Classical(name: "LBP 7x7 grid, 1-NN chi-square", features: { _, _, _, all in all.map { HandFeatures.lbp($0) } }, classify: nn(.chiSquare)),
        Classical(name: "HOG, logistic regression", features: { _, _, _, all in all.map { HandFeatures.hog($0) } }, classify: { tr, labels, te, classes in
            LinearProbe.fit(features: tr, labels: labels, classes: classes, epochs: 600, batchSize: 256, lr: 0.02, l2: 2e-3).logits(te).argmaxIndices()
        }),
    ]

    /// Closed set: per seed, `trainPerPerson` images of every person train and the rest test.
    /// `full` feeds the classical methods, `small` (the network's input size) the deep ones.
    /// Returns accuracy per method per seed.
    public static func closedSet(full: LabeledImages, small: LabeledImages, trainPerPerson: Int = 5, seeds: [Int],
                                 deep: [FaceLoss], classicalMethods: [Classical] = classical, training: FaceTrainingOptions = FaceTrainingOptions(),
                                 log: (String) -> Void = { _ in }) throws -> [(String, [Double])] {
        var results: [String: [Double]] = [:]
        var order: [String] = []
        func record(_ name: String, _ acc: Double) {
            if results[name] == nil { order.append(name) }
            results[name, default: []].append(acc)
        }
        let classes = full.classNames.count
        // Every person needs photos to train on and at least one to test on.
        guard trainPerPerson >= 1 else { throw StrataError("training photos per person must be at least 1, got \(trainPerPerson)") }
        guard classes >= 2 else { throw StrataError("needs at least 2 people, found \(classes)") }
        var counts = [Int](repeating: 0, count: classes)
        for y in full.labels { counts[y] += 1 }
        if let c = counts.indices.first(where: { counts[$0] <= trainPerPerson }) {
            throw StrataError("\(full.classNames[c]) has \(counts[c]) photo\(counts[c] == 1 ? "" : "s"); \(trainPerPerson) training photos per person "
                              + "need at least \(trainPerPerson + 1) per person (\(trainPerPerson) to train, 1 to test)")
        }
        for seed in seeds {
            let (trF, teF) = full.splitPerClass(trainPerClass: trainPerPerson, seed: seed)
            let (trS, teS) = small.splitPerClass(trainPerClass: trainPerPerson, seed: seed)
            var plain = trF
            plain.normalization = Normalization(scale: 1 / 255)
            let xtr = plain.batch(Array(0..<trF.count)).inputs
            var plainTe = teF
            plainTe.normalization = Normalization(scale: 1 / 255)
            let xte = plainTe.batch(Array(0..<teF.count)).inputs
            var line = "split seed \(seed):"
            for m in classicalMethods {
                let f = try m.features(xtr, trF.labels, classes, [xtr, xte])
                let pred = m.classify(f[0], trF.labels, f[1], classes)
                let acc = Double(zip(pred, teF.labels).filter { $0 == $1 }.count) / Double(teF.count)
                record(m.name, acc)
                line += String(format: " %.3f", acc)
            }
            for loss in deep {
                var o = training
                o.loss = loss
                o.seed = seed
                let net = try FaceTraining.train(trS, options: o)
                let logits = noGrad { net(teS.batch(Array(0..<teS.count)).inputs) }
                let acc = Double(accuracy(logits, teS.labels))
                record("CNN (\(loss.rawValue)), end to end", acc)
                line += String(format: " %.3f", acc)
            }
            log(line)
        }
        return order.map { ($0, results[$0]!) }
    }

    /// Open set: the first `trainPeople` people train (all their images); each remaining person is
    /// enrolled from `enroll` images (mean of L2-normalised features) and their other images are
    /// identified among the enrolled people by cosine distance. Also the verification equal error
    /// rate over all pairs of the held-out images. Returns (accuracy per seed, EER) per method.
    /// `fold` k holds out the k-th block of `people - trainPeople` people instead of the last one.
    public static func openSet(full: LabeledImages, small: LabeledImages, trainPeople: Int, enroll: Int = 3, seeds: [Int],
                               deep: [FaceLoss], training: FaceTrainingOptions = FaceTrainingOptions(), fold: Int? = nil, members: Int = 1,
                               log: (String) -> Void = { _ in }) throws -> [(String, [Double], Double)] {
        let people = full.classNames.count
        guard trainPeople < people else { throw StrataError("open set: \(trainPeople) training people leaves none to enrol (\(people) people)") }
        let heldCount = people - trainPeople
        let start = fold.map { $0 * heldCount } ?? trainPeople
        guard start + heldCount <= people else { throw StrataError("open set: fold \(fold ?? 0) is past the last person") }
        let heldIdx = Array(start..<(start + heldCount)), trainIdx = (0..<people).filter { $0 < start || $0 >= start + heldCount }
        let trF = full.classes(trainIdx), heldF = full.classes(heldIdx)
        let trS = small.classes(trainIdx), heldS = small.classes(heldIdx)
        var out: [(String, [Double], Double)] = []
        func scale(_ d: LabeledImages) -> Tensor {
            var p = d
            p.normalization = Normalization(scale: 1 / 255)
            return p.batch(Array(0..<d.count)).inputs
        }
        let xtr = scale(trF), xheld = scale(heldF)
        let classicalFeatures: [(String, Tensor, Distance)] = [
            ("raw pixels, cosine", xheld.flatten(startDim: 1), .cosine),
            ("Eigenfaces (PCA 100), cosine", Subspace.eigenfaces(xtr.flatten(startDim: 1), components: Swift.min(100, xtr.shape[0] - 1)).project(xheld.flatten(startDim: 1)), .cosine),
            ("Fisherfaces (PCA+LDA), cosine", try Subspace.fisherfaces(xtr.flatten(startDim: 1), labels: trF.labels, classes: trainPeople).project(xheld.flatten(startDim: 1)), .cosine),
            ("LBP 7x7 grid, chi-square", HandFeatures.lbp(xheld), .chiSquare),
        ]
        for (name, f, d) in classicalFeatures {
            let accs = seeds.map { enrollIdentify(f, heldF.labels, enroll: enroll, seed: $0, distance: d) }
            out.append((name, accs, equalErrorRate(d.matrix(f, f), heldF.labels)))
        }
        var perSeed = [[Tensor]](repeating: [], count: seeds.count)
        for loss in deep {
            var accs: [Double] = [], eers: [Double] = []
            for (si, seed) in seeds.enumerated() {
                // `members` networks from different seeds; their unit embeddings concatenated.
                var parts: [Tensor] = []
                for m in 0..<members {
                    var o = training
                    o.loss = loss
                    o.seed = seed &* 1000 &+ m
                    let net = try FaceTraining.train(trS, options: o)
                    parts.append(net.embedding(heldS.batch(Array(0..<heldS.count)).inputs))
                }
                let e = l2Normalized(Tensor.concat(parts, axis: 1))
                perSeed[si].append(e)
                accs.append(enrollIdentify(e, heldS.labels, enroll: enroll, seed: seed, distance: .cosine))
                eers.append(equalErrorRate(Distance.cosine.matrix(e, e), heldS.labels))
                log(String(format: "open set %@ seed %d: accuracy %.3f, EER %.3f", loss.rawValue, seed, accs.last!, eers.last!))
            }
            out.append(("CNN embedding (\(loss.rawValue))", accs, eers.reduce(0, +) / Double(eers.count)))
        }
        if deep.count > 1 {
            // The models together: concatenated L2-normalised embeddings (cosine = mean of the cosines).
            var accs: [Double] = [], eers: [Double] = []
            for (si, seed) in seeds.enumerated() {
                let e = l2Normalized(Tensor.concat(perSeed[si], axis: 1))
                accs.append(enrollIdentify(e, heldS.labels, enroll: enroll, seed: seed, distance: .cosine))
                eers.append(equalErrorRate(Distance.cosine.matrix(e, e), heldS.labels))
            }
            out.append(("CNN ensemble (" + deep.map { $0.rawValue }.joined(separator: "+") + ")", accs, eers.reduce(0, +) / Double(eers.count)))
        }
        return out
    }

    /// Per person (in label order) a seeded shuffle: the first `enroll` images are enrolled (mean
    /// feature, after L2 normalisation for cosine), the others are probes; accuracy of the nearest
    /// enrolled person.
    public static func enrollIdentify(_ f: Tensor, _ labels: [Int], enroll: Int, seed: Int, distance: Distance) -> Double {
        var rng = RandomGenerator(seed: seed)
        let feats = distance == .cosine ? l2Normalized(f) : f
        let people = Array(Set(labels)).sorted()
        var gallery: [Tensor] = [], probes: [Int] = [], truth: [Int] = []
        for (k, p) in people.enumerated() {
            let idx = labels.indices.filter { labels[$0] == p }
            let perm = rng.permutation(idx.count).map { idx[$0] }
            gallery.append(feats.indexSelect(axis: 0, indices: Array(perm.prefix(enroll))).mean(axes: [0], keepDims: true))
            probes += perm.dropFirst(enroll)
            truth += [Int](repeating: k, count: perm.count - enroll)
        }
        let pred = nearestNeighbour(feats.indexSelect(axis: 0, indices: probes), Tensor.concat(gallery, axis: 0), labels: Array(0..<people.count), distance: distance)
        return Double(zip(pred, truth).filter { $0 == $1 }.count) / Double(truth.count)
    }

    /// Equal error rate of accepting pairs (i < j) whose distance is below a threshold: where the
    /// false-reject rate of same-person pairs meets the false-accept rate of different-person pairs.
    public static func equalErrorRate(_ dist: [[Float]], _ labels: [Int]) -> Double {
        equalErrorPoint(dist, labels).eer
    }

    /// The EER and the distance threshold where it occurs.
    public static func equalErrorPoint(_ dist: [[Float]], _ labels: [Int]) -> (eer: Double, threshold: Float) {
        var pairs: [(Float, Bool)] = []
        for i in 0..<labels.count { for j in (i + 1)..<labels.count { pairs.append((dist[i][j], labels[i] == labels[j])) } }
        pairs.sort { $0.0 < $1.0 }
        let same = Double(pairs.filter { $0.1 }.count), diff = Double(pairs.count) - same
        guard same > 0, diff > 0 else { return (0, 0) }
        var acceptedSame = 0.0, acceptedDiff = 0.0
        var best = (gap: Double.infinity, eer: 1.0, threshold: Float(0))
        for (d, s) in pairs {
            if s { acceptedSame += 1 } else { acceptedDiff += 1 }
            let frr = 1 - acceptedSame / same, far = acceptedDiff / diff
            if Swift.abs(frr - far) < best.gap { best = (Swift.abs(frr - far), (frr + far) / 2, d) }
        }
        return (best.eer, best.threshold)
    }
}
