import ArgumentParser
import Foundation
import Strata
import StrataFaces

/// `faces evaluate --protocol`.
enum FaceProtocol: String, ExpressibleByArgument, CaseIterable {
    case split5, open
}

struct FacesEvaluate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "evaluate",
        abstract: "The classical and deep workflows side by side on a face folder: mean ± std identification accuracy.")

    @Option(help: "Folder with one sub-folder of images per person.") var data: String?
    @Option(help: "LFW pairs file (View 1 or View 2): verify each pair with --model, report 10-fold accuracy, AUC and TAR at FAR 1 %.") var pairs: String?
    @Option(help: "With --pairs: folder of the images, DIR/name/name_0001.jpg.") var root: String?
    @Option(help: "With --pairs: the face model (default: the built-in LFW model); repeat it to join several models' embeddings. With --protocol open: a model trained elsewhere (e.g. on lfw_train) enrols and identifies the held-out people instead of networks trained here.") var model: [String] = []
    @Option(help: "With --model: the part of each photo \"cx,cy,side\" (fractions; side of the shorter side, up to 3) that matches a whole training photo of the model, e.g. 0.5,0.57,1.88 for AT&T photos and an LFW model.") var frame: FrameArgument?
    @Option(help: "With --pairs or --model: test-time views per photo (1 the face box; 5 adds four small shifts; 7 two zooms; 11 the diagonals), overriding the model's own.") var views: Int?
    @Option(help: "With --pairs or --model: compare photos by cosine or snorm (S-norm against the model's training people), overriding the model's own.") var score: FaceScore?
    @Option(name: .customLong("protocol"), help: "split5 (5 training and 5 test images per person) or open (train on the first people, enrol the rest).") var protocol_: FaceProtocol = .split5
    @Option(help: "Seeds (splits) to average over.") var seeds: Int = 10
    @Option(help: "Deep models to train: softmax, cosface, arcface, triplet (repeatable).") var deep: [FaceLoss] = []
    @Option(help: "Open set: people used for training (the rest are enrolled).") var trainPeople: Int = 30
    @Option(help: "Use only the first N people (e.g. to tune on people the final test never enrols).") var people: Int?
    @Option(help: "Open set: hold out the k-th block of people instead of the last (cross-validation).") var fold: Int?
    @Option(help: "Open set: networks per model, trained from different seeds, embeddings combined.") var members: Int = 1
    @Option(help: "Augmentation: standard (the reference's) or strong.") var augment: FaceAugmentPreset = .standard
    @Flag(help: "Histogram-equalise the images the networks see.") var equalize = false
    @Option(help: "Training epochs of the deep models.") var epochs: Int = 60
    @Flag(help: "Skip the classical methods.") var noClassical = false
    @Option(help: "Channels of the three convolution blocks, e.g. 16,32,64.") var widths: IntList = IntList(argument: "16,32,64")!
    @Option(help: "Embedding size.") var embedding: Int = 128
    @Option(help: "Network input width x height, e.g. 46x56 (images are area-averaged to it).") var size: String = "46x56"
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var detection: DetectionOptions
    @Flag(help: "Print one JSON line.") var json = false

    var netSize: (Int, Int)? {
        let d = size.split(separator: "x").compactMap { Int($0) }
        return d.count == 2 && d.allSatisfy({ $0 >= 8 }) ? (d[0], d[1]) : nil
    }

    func validate() throws {
        try checkViews(views)
        if pairs != nil {
            if frame != nil { throw ValidationError("--frame is for --protocol open with --model") }
            if root == nil { throw ValidationError("--pairs needs --root (the folder with name/name_0001.jpg images)") }
            return
        }
        if data == nil { throw ValidationError("give --data DIR (a face folder) or --pairs FILE with --root") }
        if seeds < 1 { throw ValidationError("--seeds must be at least 1, got \(seeds)") }
        if !model.isEmpty && protocol_ != .open { throw ValidationError("--model is for --pairs or --protocol open") }
        if frame != nil && model.isEmpty { throw ValidationError("--frame needs --model") }
        if epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        if netSize == nil { throw ValidationError("--size \(size): expected WIDTHxHEIGHT, e.g. 46x56") }
        if widths.values.count != 3 { throw ValidationError("--widths: expected three channel counts, e.g. 16,32,64") }
        if ![.standard, .strong].contains(augment) { throw ValidationError("--augment \(augment.rawValue): standard or strong") }
    }

    func run() throws {
        threadOptions.apply()
        if let pairs { return try evaluatePairs(pairs) }
        let started = Date()
        let (full, small) = try FaceEvaluation.loadFolder(data!, netSize: netSize!, equalize: equalize, people: people)
        var training = FaceTrainingOptions()
        (training.epochs, training.widths, training.embedding, training.augmentation) = (epochs, widths.values, embedding, augment.augmentation)
        let log: (String) -> Void = { [json] s in if !json { print(s) } }
        var rows: [(name: String, runs: [Double], eer: Double?)]
        if protocol_ == .split5 {
            rows = try FaceEvaluation.closedSet(full: full, small: small, seeds: Array(0..<seeds), deep: deep.isEmpty ? [.softmax] : deep,
                                                classicalMethods: noClassical ? [] : FaceEvaluation.classical, training: training, log: log).map { ($0.0, $0.1, nil) }
        } else {
            rows = try FaceEvaluation.openSet(full: full, small: small, trainPeople: trainPeople, seeds: Array(0..<seeds), deep: !model.isEmpty ? [] : deep.isEmpty ? [.cosface] : deep,
                                              training: training, fold: fold, members: members, log: log).map { ($0.0, $0.1, $0.2) }
            if !model.isEmpty {
                let name = "model " + model.map { ($0 as NSString).lastPathComponent }.joined(separator: " + ")
                let r = try FaceEvaluation.openSet(model: try FaceModel.joined(model), name: name, full: full, trainPeople: trainPeople, fold: fold,
                                                   seeds: seeds, frame: frame?.crop, views: views, score: score)
                rows.append((r.0, r.1, r.2))
            }
        }
        let seconds = Date().timeIntervalSince(started)
        if json {
            return printJSON(["protocol": protocol_.rawValue, "seeds": seeds, "seconds": round1(seconds), "results": rows.map { r -> [String: Any] in
                let (m, s) = meanStd(r.runs)
                return ["method": r.name, "mean": m, "std": s, "runs": r.runs].merging(r.eer.map { ["eer": $0] } ?? [:]) { a, _ in a }
            }])
        }
        print(protocol_ == .split5 ? "\nsplit5, \(seeds) seeds: identification accuracy, mean ± std"
              : "\nopen set: trained on \(trainPeople) people, others enrolled from 3 images; identification accuracy (mean ± std over \(seeds) seeds) and verification EER")
        print(rows.map { r in
            let (m, s) = meanStd(r.runs)
            return "  " + r.name.rightPad(40) + String(format: "%6.2f %% ± %.2f", 100 * m, 100 * s) + (r.eer.map { String(format: "   EER %.2f %%", 100 * $0) } ?? "")
        }.joined(separator: "\n"))
        print(String(format: "(%.0f s)", seconds))
    }

    /// Verifies every pair of a pairs file and prints the LFW-protocol scores.
    func evaluatePairs(_ file: String) throws {
        let fm = try FaceModel.joined(model)
        let r = try FacePairs.evaluate(file, root: root!, model: fm, views: views, score: score, finding: try detection.finding(for: fm))
        let s = r.score
        let found = r.detected ? ["detection": ["largest_of_several": r.largestOfSeveral, "no_face_fixed_box": r.noFace]] : [:]
        if json {
            printJSON(["pairs": r.pairs, "images": r.images, "accuracy": s.accuracy, "accuracy_std": s.accuracyStd, "auc": s.auc, "tar_at_far_1": s.tarAtFar1,
                       "best_distance_threshold": Double(1 - s.threshold), "score": r.snorm ? "snorm" : "cosine", "seconds": round1(r.seconds)].merging(found) { a, _ in a })
        } else {
            print(String(format: "%d pairs (%d images): accuracy %.2f %% ± %.2f (10-fold), AUC %.2f %%, TAR %.2f %% at FAR 1 %%; best %@ threshold %.3f (%.1f s)",
                         r.pairs, r.images, 100 * s.accuracy, 100 * s.accuracyStd, 100 * s.auc, 100 * s.tarAtFar1,
                         r.snorm ? "S-norm distance" : "cosine-distance", 1 - s.threshold, r.seconds))
            if r.detected {
                print("faces detected; the largest face was used in \(r.largestOfSeveral) photo(s) with several; no face found in \(r.noFace) (fixed box used)")
            } else {
                print("fixed centre box (--no-detect, or a model without an LFW face box)")
            }
        }
    }
}
