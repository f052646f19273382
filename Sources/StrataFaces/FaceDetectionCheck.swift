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
