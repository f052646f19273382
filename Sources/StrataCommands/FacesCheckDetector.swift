import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesCheckDetector: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-detector",
        abstract: "Score a face detector on seeded 640x480 composite pictures of held-out LFW people (developer check).")

    @Option(help: "LFW-style folder (name/name_0001.jpg).") var data: String
    @Option(help: "Detector file (default: the built-in one).") var detector: String?
    @Option(help: "Held-out share of the people (as `faces pairs`).") var holdoutFraction = 0.1
    @Option(help: "Seed of the held-out people.") var holdoutSeed = 0
    @Option(help: "Score threshold in (0, 1) (default: the detector's own).") var threshold: Float?
    @Option(help: "Composite pictures.") var pictures = 200
    @Option(help: "Seed of the pictures.") var seed = 1
    @Option(help: "Write the pictures (PNG) and boxes.json here.") var write: String?
    @Option(help: "Also write this many training pictures (160x160) into --write.") var trainingPictures = 0
    @Option(help: "Also write every photo of this pairs file placed smaller and off-centre in a 640x480 picture, under --reframe-to.") var reframePairs: String?
    @Option(help: "Folder for the re-framed photos (then run `faces evaluate --pairs FILE --root` on it).") var reframeTo: String?
    @Option(help: "Side range in pixels \"lo,hi\" of the re-framed photos (LFW's are 250).") var reframeSides = "100,200"
    @Option(help: "Also identify the faces of this many group pictures (2-4 held-out people each) with --model.") var groups = 0
    @Option(help: "Face model for --groups (default: the built-in one).") var model: String?
    @Option(help: "Write the group pictures here.") var writeGroups: String?
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        if pictures < 1 { throw ValidationError("--pictures must be positive") }
        if trainingPictures > 0 && write == nil { throw ValidationError("--training-pictures needs --write") }
        if (reframePairs == nil) != (reframeTo == nil) { throw ValidationError("--reframe-pairs and --reframe-to go together") }
        if groups < 0 { throw ValidationError("--groups must not be negative") }
    }

    func run() throws {
        let det = try detector.map { try FaceDetector.load($0) } ?? FaceDetector.builtIn()
        if let threshold {
            guard threshold > 0 && threshold < 1 else { throw ValidationError("--threshold must be in (0, 1), got \(threshold)") }
            det.settings.threshold = threshold
        }
        let check = try DetectionCheck(lfw: data, holdoutFraction: holdoutFraction, holdoutSeed: holdoutSeed)
        let pics = check.compositePictures(count: pictures, seed: seed)
        if let write {
            try DetectionCheck.write(pics, to: write)
            if trainingPictures > 0 {
                try DetectionCheck.write(check.trainingPictures(count: trainingPictures, seed: seed), to: (write as NSString).appendingPathComponent("training"))
            }
        }
        if let reframePairs, let reframeTo {
            let v = reframeSides.split(separator: ",").compactMap { Int($0) }
            guard v.count == 2, v[0] >= 32, v[0] <= v[1], v[1] <= 480 else { throw ValidationError("--reframe-sides must be \"lo,hi\" within 32...480, got \(reframeSides)") }
            let n = try check.reframePairs(reframePairs, root: data, to: reframeTo, sides: v[0]...v[1])
            if !json { print("wrote \(n) re-framed photos under \(reframeTo)") }
        }
        let (s, _, ms) = DetectionCheck.score(det, pics)
        if groups > 0 {
            let fm = try FaceModel.loadOrBuiltIn(model)
            let g = try check.groupCheck(model: fm, finding: FaceFinding(detector: det), enrolFinding: FaceFinding(detector: det), pictures: groups, writeTo: writeGroups)
            print(String(format: "groups: %d pictures, %d faces: named right %.1f %%, wrong names %.3f per face (%d, of which %d on detections that are no face), unknown %d, missed %d, extra detections %d",
                         g.pictures, g.faces, 100 * g.rightShare, g.wrongPerFace, g.wrong, g.namedExtra, g.unknown, g.missed, g.extraDetections))
            print(String(format: "        the reserved photos themselves (LFW-framed, fixed box): %d of %d named right, %d wrong",
                         g.originalsRight, g.originals, g.originalsWrong))
        }
        if json {
            printJSON(["detector": "strata", "pictures": s.pictures, "faces": s.faces, "ap50": s.ap50, "recall_at_1fp": s.recallAt1FP,
                       "recall": s.recall, "false_positives_per_picture": s.falsePositivesPerPicture, "ms_per_picture": ms])
        } else {
            print("\(s.pictures) pictures, \(s.faces) faces of \(check.heldPeople.count) held-out people")
            print(String(format: "AP at IoU 0.5: %.4f; recall at 1 false positive per picture: %.4f", s.ap50, s.recallAt1FP))
            print(String(format: "at the detector's threshold %.2f: recall %.4f, %.3f false positives per picture", det.settings.threshold, s.recall, s.falsePositivesPerPicture))
            print(String(format: "%.1f ms per picture (%d threads)", ms, Strata.numThreads))
        }
    }
}
