import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesPairs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pairs",
        abstract: "Write seeded LFW View-1 pairs among a seeded held-out share of a folder's people (the developer-side check).",
        discussion: """
        The same --holdout-fraction and --holdout-seed given to `faces train` leave these people out of
        training. Photos must be named like LFW's: DIR/name/name_0001.jpg, numbered from 1.
        """)

    @Option(help: "Folder DIR/name/name_0001.jpg.") var data: String
    @Option(help: "Share of the people held out (rounded down).") var holdoutFraction: Double = 0.1
    @Option(help: "Seed of the held-out people.") var holdoutSeed: Int = 0
    @Option(help: "Same-person pairs.") var same: Int = 300
    @Option(help: "Different-person pairs.") var different: Int = 300
    @Option(help: "Seed of the pairs.") var seed: Int = 0
    @Option(help: "Pairs file to write (View 1 format).") var out: String = "pairs.txt"
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        if !(holdoutFraction > 0 && holdoutFraction <= 1) { throw ValidationError("--holdout-fraction must be in (0, 1], got \(holdoutFraction)") }
        if same < 1 || different < 1 { throw ValidationError("--same and --different must be at least 1") }
        if same != different { throw ValidationError("View 1 holds as many same as different pairs; got --same \(same) and --different \(different)") }
    }

    func run() throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue else { throw StrataError("\(data): no such folder") }
        let names = try fm.contentsOfDirectory(atPath: data).filter { n in
            var d: ObjCBool = false
            return !n.hasPrefix(".") && fm.fileExists(atPath: (data as NSString).appendingPathComponent(n), isDirectory: &d) && d.boolValue
        }
        let held = FacePairs.heldOutPeople(names, fraction: holdoutFraction, seed: holdoutSeed)
        var people: [(name: String, photos: Int)] = []
        for name in held {
            let dir = (data as NSString).appendingPathComponent(name)
            let files = Set(try fm.contentsOfDirectory(atPath: dir))
            var n = 0
            while files.contains("\(name)_\(String(format: "%04d", n + 1)).jpg") { n += 1 }
            guard n > 0 else { throw StrataError("\(dir): no photos named \(name)_0001.jpg, \(name)_0002.jpg, ... (LFW naming)") }
            people.append((name, n))
        }
        let p = try FacePairs.make(people: people, same: same, different: different, seed: seed)
        try FileIO.writeAtomically(Data(p.view1Text().utf8), to: out)
        if json {
            printJSON(["pairs": out, "people": held.count, "same": same, "different": different, "held_out": held])
        } else {
            print("wrote \(same) same and \(different) different pairs among \(held.count) held-out people (of \(names.count)) to \(out)")
        }
    }
}

/// Verifies every pair of a pairs file with a face model and prints the LFW-protocol scores.
func evaluatePairs(pairsFile: String, root: String, modelPaths: [String], views: Int?, scoring: FaceScore?, json: Bool) throws {
    let started = Date()
    let pairs = try FacePairs.load(pairsFile)
    let models = try modelPaths.isEmpty ? [FaceModel.builtIn()] : modelPaths.map { try FaceModel.load($0) }
    // Several models: their embeddings joined; the first one's views and score unless given.
    let fm = FaceModel(ensemble: models, threshold: models[0].threshold)
    // Every image once; a missing one is named with the line that asks for it.
    var index: [String: Int] = [:], paths: [String] = []
    for p in pairs.pairs {
        for (name, i) in [(p.name1, p.index1), (p.name2, p.index2)] {
            let path = FacePairs.imagePath(root: root, name: name, index: i)
            if index[path] != nil { continue }
            guard FileManager.default.fileExists(atPath: path) else {
                throw StrataError("\(pairsFile):\(p.line): \(path): no such image (photo \(i) of \(name))")
            }
            index[path] = paths.count
            paths.append(path)
        }
    }
    let images = try paths.map { try Image.load($0) }
    let e = try fm.embed(images, names: paths, views: views)   // several models: their embeddings joined
    let scorer = scoring.map(fm.scorer) ?? fm.scorer
    let dist = scorer.distances(e, e)   // similarity = 1 - distance (cosine, or S-norm on its scale)
    let sims: [Float] = pairs.pairs.map { p in
        let a = index[FacePairs.imagePath(root: root, name: p.name1, index: p.index1)]!
        let b = index[FacePairs.imagePath(root: root, name: p.name2, index: p.index2)]!
        return 1 - dist[a][b]
    }
    let score = FacePairs.score(similarities: sims, same: pairs.pairs.map(\.same), folds: pairs.folds)
    let seconds = Date().timeIntervalSince(started)
    if json {
        printJSON(["pairs": pairs.pairs.count, "images": paths.count, "accuracy": score.accuracy, "accuracy_std": score.accuracyStd,
                   "auc": score.auc, "tar_at_far_1": score.tarAtFar1, "best_distance_threshold": Double(1 - score.threshold), "score": scorer.centres == nil ? "cosine" : "snorm",
                   "seconds": (seconds * 10).rounded() / 10])
    } else {
        print(String(format: "%d pairs (%d images): accuracy %.2f %% ± %.2f (10-fold), AUC %.2f %%, TAR %.2f %% at FAR 1 %%; best %@ threshold %.3f (%.1f s)",
                     pairs.pairs.count, paths.count, 100 * score.accuracy, 100 * score.accuracyStd, 100 * score.auc, 100 * score.tarAtFar1,
                     scorer.centres == nil ? "cosine-distance" : "S-norm distance", 1 - score.threshold, seconds))
    }
}
