import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Train a face-embedding network on a folder of faces (one sub-folder per person).",
        discussion: """
        Without --crop: the small network of the AT&T recipe on whole grey photos (46x56).
        With --crop: photos in the wild (e.g. LFW): the face box is cut out, the network (residual
        with --blocks, plain with --blocks "") trains through the Trainer with a progress bar, and
        --checkpoint/--resume let a long run stop and go on. Repeat --crop (with --size, --channels
        and --epochs once or per crop) for an ensemble of networks on different face regions. The
        recipe of the shipped LFW model (best of those tried) is in `make faces-model`: three
        regions, --blocks "" --widths 32,64,128 --dropout 0.1 --sgd --loss cosface --scale 30
        --margin 0.25 --augment heavy --views 5.
        With --init: fine-tune a trained model's networks on new people (--frame reframes photos
        that are cropped unlike the model's training photos).
        """)

    @Option(help: "Folder with one sub-folder of images per person.")
    var data: String

    @Option(help: "Hold out the last K people: they set the distance threshold and measure open-set accuracy.")
    var holdoutPeople: Int = 0

    @Option(help: "Hold out a seeded fraction of the people instead (the developer-side pairs check; see `faces pairs`).")
    var holdoutFraction: Double?

    @Option(help: "Seed of the held-out people for --holdout-fraction.")
    var holdoutSeed: Int = 0

    @Option(help: "softmax, cosface, arcface or triplet (softmax did best on validation folds of AT&T).")
    var loss: String = "softmax"

    @Option(help: "Epochs; once for all networks, or once per --crop.")
    var epochs: [Int] = [60]

    @Option(help: "Seed.")
    var seed: Int = 0

    @Option(help: "Model file to write.")
    var out: String = "faces.safetensors"

    @Option(help: "Face box \"cx,cy,side\" as fractions of the photo (centre, and side of the shorter side), e.g. 0.5,0.52,0.48 for LFW. Repeat it to train an ensemble: one network per crop, embeddings joined.")
    var crop: [String] = []

    @Option(name: .customLong("init"), help: "Start from this face model's networks (fine-tuning): their face boxes, sizes and layers, a new head over --data's people. Replaces --crop.")
    var initFrom: String?

    @Option(help: "With --crop or --init: the part of --data's photos \"cx,cy,side\" that matches a whole training photo of the networks (side of the shorter side, up to 3), e.g. 0.5,0.57,2.2 for AT&T photos and LFW networks.")
    var frame: String?

    @Option(help: "With --crop: another folder of people trained together with --data (e.g. AT&T photos beside lfw_train); never held out.")
    var extraData: String?

    @Option(help: "With --extra-data: only its first N people (in folder order, s1 s2 ... s10).")
    var extraPeople: Int?

    @Option(help: "With --extra-data: the part of its photos \"cx,cy,side\" that matches a whole --data photo (side of the shorter side, up to 3), e.g. 0.5,0.57,2.2 for AT&T beside LFW.")
    var extraFrame: String?

    @Option(help: "With --crop: pixels per side the network sees; once for all networks, or once per --crop.")
    var size: [Int] = [64]

    @Option(help: "With --crop: 1 (grey) or 3 (RGB) channels; once for all networks, or once per --crop.")
    var channels: [Int] = [3]

    @Option(help: "With --crop: residual blocks per stage, e.g. 1,1,1,1 (empty: the plain network).")
    var blocks: String = "1,1,1,1"

    @Option(help: "Channels per block or stage (default: 16,32,64 plain, 32,64,128,256 residual).")
    var widths: String?

    @Option(help: "Embedding size.")
    var embedding: Int = 128

    @Option(help: "With --crop: batch size.")
    var batchSize: Int = 64

    @Option(help: "Learning rate (default 2e-3 with Adam, 0.1 with --sgd).")
    var lr: Float?

    @Option(help: "Weight decay.")
    var weightDecay: Float = 5e-4

    @Flag(help: "With --crop: SGD with Nesterov momentum instead of Adam.")
    var sgd = false

    @Option(help: "With --crop: warm-up epochs before the cosine decay.")
    var warmup: Int = 2

    @Option(help: "Cosine head: scale s and margin m.")
    var scale: Float?
    @Option(help: "Cosine head margin m.")
    var margin: Float?

    @Option(help: "Dropout before the embedding layer.")
    var dropout: Float = 0.3

    @Option(help: "Augmentation: standard, strong, wild (flip, scale, shift, rotation, colour), or heavy (wild, random grey, random erasing).")
    var augment: String?

    @Option(help: "Distance threshold to store (default: the EER point of the held-out people, or of the training people).")
    var threshold: Float?

    @Option(help: "With --crop or --init: test-time views per photo to store in the model (1 the face box; 5 adds four small shifts; 7 two zooms), used by enrol, identify, verify and evaluate (default: 1, or the --init model's).")
    var views: Int?

    @Option(help: "How photos are compared: cosine, or snorm (cosine S-normalised against the training people's class centres; less fooled by photos that resemble everyone); default cosine, or the --init model's.")
    var score: String?

    @Flag(help: "Store the weights as float16 (half the file size).")
    var half = false

    @Option(help: "With --crop: checkpoint written after every epoch.")
    var checkpoint: String?

    @Option(help: "With --crop: checkpoint to resume from.")
    var resume: String?

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        guard let l = FaceLoss(rawValue: loss) else { throw ValidationError("--loss \(loss): unknown (softmax, cosface, arcface, triplet)") }
        for e in epochs where e < 1 { throw ValidationError("--epochs must be at least 1, got \(e)") }
        if epochs.count > 1 && epochs.count != Swift.max(crop.count, 1) { throw ValidationError("give --epochs once, or once per --crop (\(crop.count)); got \(epochs.count)") }
        if holdoutPeople < 0 { throw ValidationError("--holdout-people must not be negative, got \(holdoutPeople)") }
        if let f = holdoutFraction, !(f > 0 && f < 1) { throw ValidationError("--holdout-fraction must be between 0 and 1, got \(f)") }
        if holdoutFraction != nil && holdoutPeople > 0 { throw ValidationError("give --holdout-people or --holdout-fraction, not both") }
        if let a = augment, !["standard", "strong", "wild", "heavy"].contains(a) { throw ValidationError("--augment \(a): unknown (standard, strong, wild, heavy)") }
        if initFrom != nil && !crop.isEmpty { throw ValidationError("give --crop or --init (which brings its networks' face boxes), not both") }
        try checkFrame(frame, "--frame")
        if frame != nil && crop.isEmpty && initFrom == nil { throw ValidationError("--frame needs --crop or --init") }
        if initFrom != nil && l == .triplet { throw ValidationError("--loss triplet is not available with --init (use softmax, cosface or arcface)") }
        if !crop.isEmpty {
            for c in crop where FaceCrop.parse(c, size: 64) == nil { throw ValidationError("--crop \(c): expected three fractions \"cx,cy,side\", e.g. 0.5,0.52,0.48") }
            for s in size where s < 16 { throw ValidationError("--size must be at least 16, got \(s)") }
            if size.count != 1 && size.count != crop.count { throw ValidationError("give --size once, or once per --crop (\(crop.count)); got \(size.count)") }
            for c in channels where ![1, 3].contains(c) { throw ValidationError("--channels must be 1 or 3, got \(c)") }
            if channels.count != 1 && channels.count != crop.count { throw ValidationError("give --channels once, or once per --crop (\(crop.count)); got \(channels.count)") }
            if l == .triplet { throw ValidationError("--loss triplet is not available with --crop (use softmax, cosface or arcface)") }
            if parseInts(blocks) == nil { throw ValidationError("--blocks \(blocks): expected numbers like 1,1,1,1") }
            let stages = parseInts(blocks)!.isEmpty ? (widths.flatMap(parseInts)?.count ?? 3) : parseInts(blocks)!.count
            for s in size where s % (1 << stages) != 0 { throw ValidationError("--size \(s) must be divisible by \(1 << stages) (\(stages) halvings)") }
        } else if initFrom == nil && (resume != nil || checkpoint != nil || extraData != nil) {
            throw ValidationError("--checkpoint, --resume and --extra-data need --crop or --init (the Trainer path)")
        }
        if (extraPeople != nil || extraFrame != nil) && extraData == nil { throw ValidationError("--extra-people and --extra-frame need --extra-data") }
        if let n = extraPeople, n < 1 { throw ValidationError("--extra-people must be at least 1, got \(n)") }
        try checkFrame(extraFrame, "--extra-frame")
        if let w = widths, parseInts(w)?.isEmpty ?? true { throw ValidationError("--widths \(w): expected numbers like 32,64,128,256") }
        if let s = score, FaceScore(rawValue: s) == nil { throw ValidationError("--score \(s): unknown (cosine, snorm)") }
        if let v = views, !(1...Warp.views(99).count).contains(v) { throw ValidationError("--views must be between 1 and \(Warp.views(99).count), got \(v)") }
        if (views ?? 1) > 1 && crop.isEmpty && initFrom == nil { throw ValidationError("--views needs --crop or --init (views shift the face box)") }
        if batchSize < 2 { throw ValidationError("--batch-size must be at least 2, got \(batchSize)") }
    }

    func parseInts(_ s: String) -> [Int]? {
        if s.trimmingCharacters(in: .whitespaces).isEmpty { return [] }
        let v = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return v.contains(where: { $0 == nil || $0! < 1 }) ? nil : v.map { $0! }
    }

    var augmentation: Augmentation {
        switch augment ?? (crop.isEmpty ? "standard" : "wild") {
        case "strong": return FaceTrainingOptions.strongAugmentation
        case "wild", "heavy":
            var a = FaceTrainingOptions.strongAugmentation
            a.maxRotation = 10
            a.scale = (0.9, 1.1)
            a.maxShift = 0.08
            a.saturation = 0.3
            if augment == "heavy" {   // wild, plus random grey and random erasing
                a.greyProbability = 0.1
                a.eraseProbability = 0.5
            }
            return a
        default: return FaceTrainingOptions().augmentation
        }
    }

    /// The held-out people's indices (by --holdout-people or --holdout-fraction).
    func heldOut(_ names: [String]) -> [Int] {
        if let f = holdoutFraction {
            let held = Set(FacePairs.heldOutPeople(names, fraction: f, seed: holdoutSeed))
            return names.indices.filter { held.contains(names[$0]) }
        }
        return Array((names.count - holdoutPeople)..<names.count)
    }

    func run() throws {
        threadOptions.apply()
        Profiler.isEnabled = ProcessInfo.processInfo.environment["STRATA_PROFILE"] != nil
        defer { if Profiler.isEnabled { FileHandle.standardError.write((Profiler.report() + "\n").data(using: .utf8)!) } }
        let started = Date()
        let initModel = try initFrom.map { try FaceModel.load($0) }
        let initial: [FaceModel] = try initModel.map { m in
            let path = initFrom!
            let nets = m.networks
            guard nets.allSatisfy({ $0.crop != nil }) else { throw StrataError("\(path): --init needs a model with a face box (one trained with --crop)") }
            return nets
        } ?? []
        let boxes = initial.isEmpty ? crop.enumerated().map { FaceCrop.parse($0.element, size: memberSize($0.offset))! } : initial.map { $0.crop! }
        // Test-time views: as given, else those of the model fine-tuned from.
        let views = self.views ?? initModel?.views ?? 1
        let dataFrame = frame.flatMap(FaceCrop.parseFrame)
        let memberCount = Swift.max(1, boxes.count)
        var members: [FaceModel] = [], heldParts: [Tensor] = []
        var held = LabeledImages(pixels: [], labels: [], imageShape: [1, 1, 1], classNames: [])
        var trainPeople = 0, trainImages = 0, heldCount = 0, loadSeconds = 0.0
        for k in 0..<memberCount {
            let box = boxes.isEmpty ? nil : boxes[k]
            let ch = !initial.isEmpty ? initial[k].info.inputShape[0] : channels.count == 1 ? channels[0] : channels[k]
            let loadStart = Date()
            var all: LabeledImages
            if let box {
                all = try ImageFolder.load(data, channels: ch, size: (box.contextSize, box.contextSize), transform: { box.contextImage(dataFrame?.reframe($0) ?? $0) })
            } else {
                all = try loadFaces(data).small
            }
            all.normalization = Normalization(scale: 1 / 255, perImage: true)
            let people = all.classNames.count
            let heldIdx = heldOut(all.classNames)
            guard people - heldIdx.count >= 2 else { throw StrataError("\(data) has \(people) people; holding out \(heldIdx.count) leaves fewer than 2 for training") }
            let heldSet = Set(heldIdx)
            var trainSet = all.classes((0..<people).filter { !heldSet.contains($0) })
            if let extraData, let box {
                let frame = extraFrame.flatMap(FaceCrop.parseFrame)
                var extra = try ImageFolder.load(extraData, channels: ch, size: (box.contextSize, box.contextSize),
                                                 transform: { box.contextImage(frame?.reframe($0) ?? $0) })
                if let n = extraPeople {
                    guard n <= extra.classNames.count else { throw StrataError("--extra-people \(n): \(extraData) has \(extra.classNames.count) people") }
                    extra = extra.classes(Array(0..<n))
                }
                trainSet = trainSet.appending(extra)
            }
            loadSeconds += Date().timeIntervalSince(loadStart)
            if memberCount > 1 && !json, let box { print("member \(k + 1)/\(memberCount): --crop \(box.centerX),\(box.centerY),\(box.side) --size \(box.size) --channels \(ch) --seed \(seed + k)") }
            let model = try trainMember(trainSet, imageShape: all.imageShape, normalization: all.normalization, box: box, channels: ch,
                                        seed: seed + k, member: memberCount > 1 ? k : nil, initial: initial.isEmpty ? nil : initial[k].net)
            // Held-out people (or the training people) set the threshold at the equal error rate;
            // with a given threshold and nobody held out there is nothing to measure.
            held = heldIdx.isEmpty ? trainSet : all.classes(heldIdx)
            if !heldIdx.isEmpty || threshold == nil { heldParts.append(try embedStored(model, held, box: box, views: views)) }
            members.append(model)
            (trainPeople, trainImages, heldCount) = (trainSet.classNames.count, trainSet.count, heldIdx.count)
        }
        let trainSeconds = Date().timeIntervalSince(started) - loadSeconds
        var final = FaceModel(ensemble: members, threshold: 0)
        final.score = score.flatMap(FaceScore.init) ?? initModel?.score ?? .cosine
        let e = heldParts.isEmpty ? nil : FaceEnsemble.join(heldParts)
        let (eer, eerThreshold) = e.map { FaceEvaluation.equalErrorPoint(final.scorer.distances($0, $0), held.labels) } ?? (0, threshold ?? 0)
        final.threshold = threshold ?? eerThreshold
        var report: [String: Any] = ["model": out, "people": trainPeople, "images": trainImages, "members": memberCount,
                                     "train_seconds": (trainSeconds * 10).rounded() / 10, "load_seconds": (loadSeconds * 10).rounded() / 10,
                                     "threshold": Double(threshold ?? eerThreshold)]
        if heldCount > 0 {
            report["holdout_people"] = heldCount
            report["holdout_eer"] = eer
            final.info.extra["holdout"] = String(format: "%d people: EER %.4f", heldCount, eer)
            let photos = Dictionary(grouping: held.labels, by: { $0 }).values.map(\.count)
            if photos.min() ?? 0 >= 4 {   // AT&T-style folders (10 photos each): enrol 3 and identify the rest
                let accs = (0..<5).map { FaceEvaluation.enrollIdentify(e!, held.labels, enroll: 3, seed: $0, distance: .cosine) }
                let (m, s) = meanStd(accs)
                report["holdout_identification"] = ["mean": m, "std": s]
                final.info.extra["holdout"] = String(format: "%d people: identification %.4f ± %.4f (enrol 3), EER %.4f", heldCount, m, s, eer)
            }
        }
        final.views = views
        if let threshold { final.info.extra["threshold_source"] = "given: --threshold \(threshold)" }
        if memberCount > 1 { final.info.extra["recipe"] = members.map { $0.info.extra["recipe"] ?? "" }.joined(separator: "\n") }
        try final.save(to: out, half: half)
        if json { printJSON(report) } else {
            print(String(format: "trained %@on %d people (%d images) in %.1f s (loading %.1f s); threshold %.3f (%@)",
                         memberCount > 1 ? "\(memberCount) networks " : "", trainPeople, trainImages, trainSeconds, loadSeconds, threshold ?? eerThreshold,
                         threshold != nil ? "given" : "\(final.score == .snorm ? "S-norm" : "cosine") distance at the EER of the \(heldCount == 0 ? "training" : "held-out") people"))
            if let h = final.info.extra["holdout"] { print("held out " + h) }
            print("saved \(out)")
        }
    }

    /// Pixels per side of ensemble member `k`'s network.
    func memberSize(_ k: Int) -> Int { size.count == 1 ? size[0] : size[k] }

    /// A checkpoint path of one ensemble member: `ck.safetensors` -> `ck.member2.safetensors`.
    func memberPath(_ path: String, _ member: Int?) -> String {
        guard let member else { return path }
        let ext = (path as NSString).pathExtension
        let stem = ext.isEmpty ? path : String(path.dropLast(ext.count + 1))
        return stem + ".member\(member + 1)" + (ext.isEmpty ? "" : "." + ext)
    }

    /// Trains one network (one ensemble member) on the training people.
    func trainMember(_ trainSet: LabeledImages, imageShape: [Int], normalization: Normalization, box: FaceCrop?, channels ch: Int,
                     seed: Int, member: Int?, initial: FaceNet? = nil) throws -> FaceModel {
        var o = FaceTrainingOptions()
        o.loss = FaceLoss(rawValue: loss)!
        let epochs = self.epochs.count == 1 ? self.epochs[0] : self.epochs[member ?? 0]
        o.epochs = epochs
        o.seed = seed
        o.augmentation = augmentation
        o.embedding = embedding
        o.weightDecay = weightDecay
        if let w = widths { o.widths = parseInts(w)! }
        var recipe = "strata faces train --data \(data) --loss \(loss) --epochs \(epochs) --seed \(seed)"
        if holdoutPeople > 0 { recipe += " --holdout-people \(holdoutPeople)" }
        if let f = holdoutFraction { recipe += " --holdout-fraction \(f) --holdout-seed \(holdoutSeed)" }
        if let initFrom { recipe += " --init \(initFrom)" }
        if let frame { recipe += " --frame \(frame)" }
        if let extraData { recipe += " --extra-data \(extraData)" + (extraPeople.map { " --extra-people \($0)" } ?? "") + (extraFrame.map { " --extra-frame \($0)" } ?? "") }
        let net: FaceNet
        var history: [EpochRecord] = []
        var info = ModelInfo(architecture: [:], classNames: trainSet.classNames, inputShape: imageShape,
                             normalization: normalization, history: [], extra: [:])
        if let box {
            o.blocks = parseInts(blocks)!
            if widths == nil && !o.blocks.isEmpty { o.widths = [32, 64, 128, 256].prefix(o.blocks.count).map { $0 } + [Int](repeating: 256, count: Swift.max(0, o.blocks.count - 4)) }
            if let initial {   // fine-tuning: the starting network's layers
                (o.widths, o.blocks, o.embedding) = (initial.widths, initial.blocks, initial.embeddingSize)
                o.initial = initial
            }
            o.sgd = sgd
            o.lr = lr ?? (sgd ? 0.1 : 2e-3)
            o.batchSize = batchSize
            o.warmupEpochs = Swift.min(warmup, epochs - 1)
            o.scale = scale
            o.margin = margin
            o.dropout = dropout
            o.checkpointPath = checkpoint.map { memberPath($0, member) }
            o.resumeFrom = resume.map { memberPath($0, member) }
            if member != nil, let r = o.resumeFrom, !FileManager.default.fileExists(atPath: r) { o.resumeFrom = nil }   // not started yet
            o.progressStyle = json ? .none : .auto
            info.inputShape = [ch, box.size, box.size]
            recipe += " --crop \(box.centerX),\(box.centerY),\(box.side) --size \(box.size) --channels \(ch) --blocks \"\(o.blocks.map(String.init).joined(separator: ","))\" --widths \(o.widths.map(String.init).joined(separator: ",")) --embedding \(o.embedding) --batch-size \(batchSize) --lr \(o.lr) --weight-decay \(weightDecay)\(sgd ? " --sgd" : "") --warmup \(o.warmupEpochs) --dropout \(dropout) --augment \(augment ?? "wild")"
            if let scale { recipe += " --scale \(scale)" }
            if let margin { recipe += " --margin \(margin)" }
            info.extra["face_crop"] = String(decoding: try JSONEncoder().encode(box), as: UTF8.self)
            info.extra["recipe"] = recipe
            (net, history) = try FaceTraining.fit(trainSet, size: box.size, options: o, info: info)
        } else {
            if let lr { o.lr = lr }
            o.progress = { epoch, l in
                history.append(EpochRecord(epoch: epoch, trainLoss: l, trainAccuracy: 0, seconds: 0, samplesPerSecond: 0, learningRate: 0))
                if !json && (epoch % 10 == 0 || epoch == o.epochs) { print(String(format: "epoch %d/%d: loss %.4f", epoch, o.epochs, l)) }
            }
            net = try FaceTraining.train(trainSet, options: o)
            info.extra["recipe"] = recipe
        }
        info.architecture = ModuleRegistry.spec(of: net)
        info.history = history
        var model = FaceModel(net: net, info: info, threshold: 0)
        model.crop = box
        return model
    }

    /// Embeddings of already loaded images (context images are cut to the window, one per view).
    func embedStored(_ model: FaceModel, _ d: LabeledImages, box: FaceCrop?, views viewCount: Int) throws -> Tensor {
        var parts: [Tensor] = []
        for start in stride(from: 0, to: d.count, by: 256) {
            let x = d.batch(Array(start..<Swift.min(start + 256, d.count))).inputs
            if let box {   // the stored views of each context image, as `FaceModel.embed` takes them
                parts.append(model.net.embedding(views: Warp.views(viewCount).map { $0.apply(x, outputSize: (box.size, box.size)).standardizedPerImage() }))
            } else {
                parts.append(model.net.embedding(x))
            }
        }
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
    }
}

/// The model at `path`, or the one shipped with Strata.
func loadFaceModel(_ path: String?) throws -> FaceModel {
    try path.map { try FaceModel.load($0) } ?? FaceModel.builtIn()
}

/// Loads images and embeds them, naming the file in every error.
/// Validates a "cx,cy,side" frame option (`--frame`, `--extra-frame`).
func checkFrame(_ value: String?, _ option: String) throws {
    if let f = value, FaceCrop.parseFrame(f) == nil {
        throw ValidationError("\(option) \(f): expected three fractions \"cx,cy,side\" (side up to 3), e.g. 0.5,0.57,2.2")
    }
}

func embedFiles(_ model: FaceModel, _ paths: [String]) throws -> Tensor {
    let images = try paths.map { try Image.load($0) }
    return try model.embed(images, names: paths)
}

struct FacesEnroll: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enroll", abstract: "Add a person to a gallery from a few photos.")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Gallery file (created if missing; written atomically).") var gallery: String
    @Option(help: "The person's name.") var name: String
    @Argument(help: "Photos of the person.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one photo") }
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--name must not be empty") }
    }

    func run() throws {
        let fm = try loadFaceModel(model)
        var g = FileManager.default.fileExists(atPath: gallery) ? try Gallery.load(gallery, for: fm) : Gallery(model: fm)
        let e = try embedFiles(fm, images)
        g.enroll(name, e)
        try g.save(gallery)
        let count = g.people.first { $0.name == name }!.embeddings.count
        if json { printJSON(["gallery": gallery, "name": name, "photos": count, "people": g.people.count]) } else {
            print("enrolled \(name) (\(count) photo\(count == 1 ? "" : "s")); \(gallery) holds \(g.people.count) \(g.people.count == 1 ? "person" : "people")")
        }
    }
}

struct FacesIdentify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identify",
        abstract: "Name the person in each photo, or `unknown` beyond the model's distance threshold.")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Gallery file.") var gallery: String
    @Option(help: "Distance threshold (default: the model's).") var threshold: Float?
    @Argument(help: "Photos to identify.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws { if images.isEmpty { throw ValidationError("give at least one photo") } }

    func run() throws {
        let fm = try loadFaceModel(model)
        let g = try Gallery.load(gallery, for: fm)
        guard !g.people.isEmpty else { throw StrataError("\(gallery): the gallery has nobody enrolled") }
        let e = try embedFiles(fm, images)
        let t = threshold ?? fm.threshold
        let scorer = fm.scorer
        var rows: [[String: Any]] = []
        let d = e.shape[1]
        for (i, path) in images.enumerated() {
            let (name, dist) = g.nearest(Array(e.scalars[(i * d)..<((i + 1) * d)]), scorer: scorer)!
            let known = dist <= t
            rows.append(["image": path, "name": known ? name : "unknown", "nearest": name, "distance": Double(dist)])
            if !json { print("\(path): \(known ? name : "unknown") (distance \(String(format: "%.3f", dist))\(known ? "" : ", nearest \(name)"))") }
        }
        if json { printJSON(["threshold": Double(t), "results": rows]) }
    }
}

struct FacesVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Are two photos of the same person?")

    @Option(help: "Face model file (default: the built-in LFW model).") var model: String?
    @Option(help: "Distance threshold (default: the model's).") var threshold: Float?
    @Argument(help: "Two photos.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws { if images.count != 2 { throw ValidationError("give exactly two photos, got \(images.count)") } }

    func run() throws {
        let fm = try loadFaceModel(model)
        let e = try embedFiles(fm, images)
        let d = e.shape[1]
        let dist = fm.scorer.distance(Array(e.scalars[0..<d]), Array(e.scalars[d..<(2 * d)]))
        let t = threshold ?? fm.threshold
        if json { printJSON(["same": dist <= t, "distance": Double(dist), "threshold": Double(t)]) } else {
            print("\(dist <= t ? "same" : "different") (distance \(String(format: "%.3f", dist)), threshold \(String(format: "%.3f", t)))")
        }
    }
}
