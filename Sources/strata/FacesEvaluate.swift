import ArgumentParser
import Foundation
import Strata
import StrataFaces

/// Loads a face folder twice: full resolution for the classical methods, the network's input
/// size (area-averaged) for the deep ones.
func loadFaces(_ dir: String, netSize: (Int, Int) = (46, 56), equalize: Bool = false) throws -> (full: LabeledImages, small: LabeledImages) {
    let full = try ImageFolder.load(dir, channels: 1)
    var small = try ImageFolder.load(dir, channels: 1, size: netSize, transform: equalize ? { $0.equalized() } : nil)
    small.normalization = Normalization(scale: 1 / 255, perImage: true)
    return (full, small)
}

func meanStd(_ xs: [Double]) -> (Double, Double) {
    let m = xs.reduce(0, +) / Double(xs.count)
    let v = xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(max(xs.count - 1, 1))
    return (m, v.squareRoot())
}

struct FacesEvaluate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "evaluate",
        abstract: "The classical and deep workflows side by side on a face folder: mean ± std identification accuracy.")

    @Option(help: "Folder with one sub-folder of images per person.")
    var data: String?

    @Option(help: "LFW pairs file (View 1 or View 2): verify each pair with --model, report 10-fold accuracy, AUC and TAR at FAR 1 %.")
    var pairs: String?

    @Option(help: "With --pairs: folder of the images, DIR/name/name_0001.jpg.")
    var root: String?

    @Option(help: "With --pairs: the face model (default: the built-in LFW model); repeat it to join several models' embeddings. With --protocol open: a model trained elsewhere (e.g. on lfw_train) enrols and identifies the held-out people instead of networks trained here.")
    var model: [String] = []

    @Option(help: "With --model: the part of each photo \"cx,cy,side\" (fractions; side of the shorter side, up to 3) that matches a whole training photo of the model, e.g. 0.5,0.57,1.88 for AT&T photos and an LFW model.")
    var frame: String?

    @Option(help: "With --pairs or --model: test-time views per photo (1 the face box; 5 adds four small shifts; 7 two zooms; 11 the diagonals), overriding the model's own.")
    var views: Int?

    @Option(help: "With --pairs or --model: compare photos by cosine or snorm (S-norm against the model's training people), overriding the model's own.")
    var score: String?

    @Option(name: .customLong("protocol"), help: "split5 (5 training and 5 test images per person) or open (train on the first people, enrol the rest).")
    var protocol_: String = "split5"

    @Option(help: "Seeds (splits) to average over.")
    var seeds: Int = 10

    @Option(help: "Deep models to train: softmax, cosface, arcface, triplet (repeatable).")
    var deep: [String] = []

    @Option(help: "Open set: people used for training (the rest are enrolled).")
    var trainPeople: Int = 30

    @Option(help: "Use only the first N people (e.g. to tune on people the final test never enrols).")
    var people: Int?

    @Option(help: "Open set: hold out the k-th block of people instead of the last (cross-validation).")
    var fold: Int?

    @Option(help: "Open set: networks per model, trained from different seeds, embeddings combined.")
    var members: Int = 1

    @Option(help: "Augmentation: standard (the reference's) or strong.")
    var augment: String = "standard"

    @Flag(help: "Histogram-equalise the images the networks see.")
    var equalize = false

    @Option(help: "Training epochs of the deep models.")
    var epochs: Int = 60

    @Flag(help: "Skip the classical methods.")
    var noClassical = false

    @Option(help: "Channels of the three convolution blocks, e.g. 16,32,64.")
    var widths: String = "16,32,64"

    @Option(help: "Embedding size.")
    var embedding: Int = 128

    @Option(help: "Network input width x height, e.g. 46x56 (images are area-averaged to it).")
    var size: String = "46x56"

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        if let v = views, !(1...Warp.views(99).count).contains(v) { throw ValidationError("--views must be between 1 and \(Warp.views(99).count), got \(v)") }
        if let s = score, FaceScore(rawValue: s) == nil { throw ValidationError("--score \(s): unknown (cosine, snorm)") }
        if pairs != nil {
            if frame != nil { throw ValidationError("--frame is for --protocol open with --model") }
            if root == nil { throw ValidationError("--pairs needs --root (the folder with name/name_0001.jpg images)") }
            return
        }
        if data == nil { throw ValidationError("give --data DIR (a face folder) or --pairs FILE with --root") }
        guard ["split5", "open"].contains(protocol_) else { throw ValidationError("--protocol must be split5 or open, got \(protocol_)") }
        if seeds < 1 { throw ValidationError("--seeds must be at least 1, got \(seeds)") }
        try checkFrame(frame, "--frame")
        if !model.isEmpty && protocol_ != "open" { throw ValidationError("--model is for --pairs or --protocol open") }
        if frame != nil && model.isEmpty { throw ValidationError("--frame needs --model") }
        for d in deep where FaceLoss(rawValue: d) == nil { throw ValidationError("--deep \(d): unknown (softmax, cosface, arcface, triplet)") }
        if epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
    }

    func run() throws {
        threadOptions.apply()
        if let pairs { return try evaluatePairs(pairsFile: pairs, root: root!, modelPaths: model, views: views, scoring: score.flatMap(FaceScore.init), json: json) }
        let data = self.data!
        let dims = size.split(separator: "x").compactMap { Int($0) }
        let w = widths.split(separator: ",").compactMap { Int($0) }
        guard dims.count == 2, dims.allSatisfy({ $0 >= 8 }) else { throw StrataError("--size \(size): expected WIDTHxHEIGHT, e.g. 46x56") }
        guard w.count == 3, w.allSatisfy({ $0 > 0 }) else { throw StrataError("--widths \(widths): expected three channel counts, e.g. 16,32,64") }
        var (full, small) = try loadFaces(data, netSize: (dims[0], dims[1]), equalize: equalize)
        if let n = people {
            guard n >= 2 && n <= full.classNames.count else { throw StrataError("--people \(n): the folder has \(full.classNames.count) people") }
            full = full.classes(Array(0..<n))
            small = small.classes(Array(0..<n))
        }
        var training = FaceTrainingOptions()
        training.epochs = epochs
        training.widths = w
        training.embedding = embedding
        guard ["standard", "strong"].contains(augment) else { throw StrataError("--augment \(augment): standard or strong") }
        if augment == "strong" { training.augmentation = FaceTrainingOptions.strongAugmentation }
        let started = Date()
        let log: (String) -> Void = { s in if !json { print(s) } }
        var rows: [[String: Any]] = []
        if protocol_ == "split5" {
            let deepLosses = deep.isEmpty ? [FaceLoss.softmax] : deep.compactMap(FaceLoss.init)
            let res = try FaceEvaluation.closedSet(full: full, small: small, seeds: Array(0..<seeds), deep: deepLosses,
                                                   classicalMethods: noClassical ? [] : FaceEvaluation.classical, training: training, log: log)
            if !json { print("\nsplit5, \(seeds) seeds: identification accuracy, mean ± std") }
            for (name, accs) in res {
                let (m, s) = meanStd(accs)
                rows.append(["method": name, "mean": m, "std": s, "runs": accs])
                if !json { print("  " + name.rightPad(40) + String(format: "%6.2f %% ± %.2f", 100 * m, 100 * s)) }
            }
        } else {
            let deepLosses = !model.isEmpty ? [] : deep.isEmpty ? [FaceLoss.cosface] : deep.compactMap(FaceLoss.init)
            var res = try FaceEvaluation.openSet(full: full, small: small, trainPeople: trainPeople, seeds: Array(0..<seeds), deep: deepLosses,
                                                 training: training, fold: fold, members: members, log: log)
            if !model.isEmpty { res.append(try openSetWithModel(full)) }
            if !json { print("\nopen set: trained on \(trainPeople) people, others enrolled from 3 images; identification accuracy (mean ± std over \(seeds) seeds) and verification EER") }
            for (name, accs, eer) in res {
                let (m, s) = meanStd(accs)
                rows.append(["method": name, "mean": m, "std": s, "eer": eer, "runs": accs])
                if !json { print("  " + name.rightPad(40) + String(format: "%6.2f %% ± %.2f   EER %.2f %%", 100 * m, 100 * s, 100 * eer)) }
            }
        }
        let seconds = Date().timeIntervalSince(started)
        if json {
            printJSON(["protocol": protocol_, "seeds": seeds, "results": rows, "seconds": (seconds * 10).rounded() / 10])
        } else {
            print(String(format: "(%.0f s)", seconds))
        }
    }
}

extension FacesEvaluate {
    /// The open-set row of a model trained elsewhere: the held-out people's photos (reframed
    /// with --frame) are embedded by the model, enrolled from 3 and identified, per seed.
    func openSetWithModel(_ full: LabeledImages) throws -> (String, [Double], Double) {
        let models = try model.map { try FaceModel.load($0) }
        let fm = FaceModel(ensemble: models, threshold: models[0].threshold)
        let people = full.classNames.count
        guard trainPeople < people else { throw StrataError("open set: \(trainPeople) training people leaves none to enrol (\(people) people)") }
        let heldCount = people - trainPeople, start = fold.map { $0 * heldCount } ?? trainPeople
        guard start + heldCount <= people else { throw StrataError("open set: fold \(fold ?? 0) is past the last person") }
        let held = full.classes(Array(start..<(start + heldCount)))
        let box = frame.flatMap(FaceCrop.parseFrame)
        let files = held.files ?? []
        let images = try files.map { path -> Image in
            let img = try Image.load(path)
            return box.map { $0.reframe(img) } ?? img
        }
        let e = try fm.embed(images, names: files, views: views)
        let accs = (0..<seeds).map { FaceEvaluation.enrollIdentify(e, held.labels, enroll: 3, seed: $0, distance: .cosine) }
        let scorer = score.flatMap(FaceScore.init).map(fm.scorer) ?? fm.scorer
        let eer = FaceEvaluation.equalErrorRate(scorer.distances(e, e), held.labels)
        let name = "model " + model.map { ($0 as NSString).lastPathComponent }.joined(separator: " + ")
        return (name, accs, eer)
    }
}

struct Faces: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Face recognition: train an embedding, enrol people, identify and verify faces, evaluate.",
        subcommands: [FacesTrain.self, FacesEnroll.self, FacesIdentify.self, FacesVerify.self, FacesEvaluate.self, FacesPairs.self, FacesEmbed.self])
}
