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

    @Option(help: "Folder with one sub-folder of images per person.") var data: String
    @Option(help: "Hold out the last K people: they set the distance threshold and measure open-set accuracy.") var holdoutPeople: Int = 0
    @Option(help: "Hold out a seeded fraction of the people instead (the developer-side pairs check; see `faces pairs`).") var holdoutFraction: Double?
    @Option(help: "Seed of the held-out people for --holdout-fraction.") var holdoutSeed: Int = 0
    @Option(help: "softmax, cosface, arcface or triplet (softmax did best on validation folds of AT&T).") var loss: FaceLoss = .softmax
    @Option(help: "Epochs; once for all networks, or once per --crop.") var epochs: [Int] = [60]
    @Option(help: "Seed.") var seed: Int = 0
    @Option(help: "Model file to write.") var out: String = "faces.safetensors"
    @Option(help: "Face box \"cx,cy,side\" as fractions of the photo (centre, and side of the shorter side), e.g. 0.5,0.52,0.48 for LFW. Repeat it to train an ensemble: one network per crop, embeddings joined.") var crop: [CropArgument] = []
    @Option(name: .customLong("init"), help: "Start from this face model's networks (fine-tuning): their face boxes, sizes and layers, a new head over --data's people. Replaces --crop.") var initFrom: String?
    @Option(help: "With --crop or --init: the part of --data's photos \"cx,cy,side\" that matches a whole training photo of the networks (side of the shorter side, up to 3), e.g. 0.5,0.57,2.2 for AT&T photos and LFW networks.") var frame: FrameArgument?
    @Option(help: "With --crop: another folder of people trained together with --data (e.g. AT&T photos beside lfw_train); never held out.") var extraData: String?
    @Option(help: "With --extra-data: only its first N people (in folder order, s1 s2 ... s10).") var extraPeople: Int?
    @Option(help: "With --extra-data: the part of its photos \"cx,cy,side\" that matches a whole --data photo (side of the shorter side, up to 3), e.g. 0.5,0.57,2.2 for AT&T beside LFW.") var extraFrame: FrameArgument?
    @Option(help: "With --crop: pixels per side the network sees; once for all networks, or once per --crop.") var size: [Int] = [64]
    @Option(help: "With --crop: 1 (grey) or 3 (RGB) channels; once for all networks, or once per --crop.") var channels: [Int] = [3]
    @Option(help: "With --crop: residual blocks per stage, e.g. 1,1,1,1 (empty: the plain network).") var blocks: IntList = IntList(argument: "1,1,1,1")!
    @Option(help: "Channels per block or stage (default: 16,32,64 plain, 32,64,128,256 residual).") var widths: IntList?
    @Option(help: "Embedding size.") var embedding: Int = 128
    @Option(help: "With --crop: batch size.") var batchSize: Int = 64
    @Option(help: "Learning rate (default 2e-3 with Adam, 0.1 with --sgd).") var lr: Float?
    @Option(help: "Weight decay.") var weightDecay: Float = 5e-4
    @Flag(help: "With --crop: SGD with Nesterov momentum instead of Adam.") var sgd = false
    @Option(help: "With --crop: warm-up epochs before the cosine decay.") var warmup: Int = 2
    @Option(help: "Cosine head: scale s and margin m.") var scale: Float?
    @Option(help: "Cosine head margin m.") var margin: Float?
    @Option(help: "Dropout before the embedding layer.") var dropout: Float = 0.3
    @Option(help: "Augmentation: standard, strong, wild (flip, scale, shift, rotation, colour), or heavy (wild, random grey, random erasing).") var augment: FaceAugmentPreset?
    @Option(help: "Distance threshold to store (default: the EER point of the held-out people, or of the training people).") var threshold: Float?
    @Option(help: "With --crop or --init: test-time views per photo to store in the model (1 the face box; 5 adds four small shifts; 7 two zooms), used by enrol, identify, verify and evaluate (default: 1, or the --init model's).") var views: Int?
    @Option(help: "How photos are compared: cosine, or snorm (cosine S-normalised against the training people's class centres; less fooled by photos that resemble everyone); default cosine, or the --init model's.") var score: FaceScore?
    @Flag(help: "Store the weights as float16 (half the file size).") var half = false
    @Option(help: "Checkpoint written after every epoch.") var checkpoint: String?
    @Option(help: "Checkpoint to resume from.") var resume: String?
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var distributedOptions: DistributedOptions
    @Flag(help: "Print one JSON line.") var json = false

    var wild: Bool { !crop.isEmpty || initFrom != nil }

    func validate() throws {
        for e in epochs where e < 1 { throw ValidationError("--epochs must be at least 1, got \(e)") }
        if epochs.count > 1 && epochs.count != Swift.max(crop.count, 1) { throw ValidationError("give --epochs once, or once per --crop (\(crop.count)); got \(epochs.count)") }
        if holdoutPeople < 0 { throw ValidationError("--holdout-people must not be negative, got \(holdoutPeople)") }
        if let f = holdoutFraction, !(f > 0 && f < 1) { throw ValidationError("--holdout-fraction must be between 0 and 1, got \(f)") }
        if holdoutFraction != nil && holdoutPeople > 0 { throw ValidationError("give --holdout-people or --holdout-fraction, not both") }
        if initFrom != nil && !crop.isEmpty { throw ValidationError("give --crop or --init (which brings its networks' face boxes), not both") }
        if frame != nil && !wild { throw ValidationError("--frame needs --crop or --init") }
        if wild && loss == .triplet { throw ValidationError("--loss triplet is not available with --crop or --init (use softmax, cosface or arcface)") }
        if !crop.isEmpty {
            for s in size where s < 16 { throw ValidationError("--size must be at least 16, got \(s)") }
            if size.count != 1 && size.count != crop.count { throw ValidationError("give --size once, or once per --crop (\(crop.count)); got \(size.count)") }
            for c in channels where ![1, 3].contains(c) { throw ValidationError("--channels must be 1 or 3, got \(c)") }
            if channels.count != 1 && channels.count != crop.count { throw ValidationError("give --channels once, or once per --crop (\(crop.count)); got \(channels.count)") }
            let stages = blocks.values.isEmpty ? (widths?.values.count ?? 3) : blocks.values.count
            for s in size where s % (1 << stages) != 0 { throw ValidationError("--size \(s) must be divisible by \(1 << stages) (\(stages) halvings)") }
        } else if initFrom == nil && extraData != nil {
            throw ValidationError("--extra-data needs --crop or --init")
        }
        if (extraPeople != nil || extraFrame != nil) && extraData == nil { throw ValidationError("--extra-people and --extra-frame need --extra-data") }
        if let n = extraPeople, n < 1 { throw ValidationError("--extra-people must be at least 1, got \(n)") }
        if widths?.values.isEmpty == true { throw ValidationError("--widths: expected numbers like 32,64,128,256") }
        try checkViews(views)
        if (views ?? 1) > 1 && !wild { throw ValidationError("--views needs --crop or --init (views shift the face box)") }
        if batchSize < 2 { throw ValidationError("--batch-size must be at least 2, got \(batchSize)") }
    }

    /// The training run these options describe.
    var trainingRun: FaceTrainingRun {
        var r = FaceTrainingRun(data: data)
        r.holdout = holdoutFraction.map { .fraction($0, seed: holdoutSeed) } ?? (holdoutPeople > 0 ? .last(holdoutPeople) : .none)
        func per<T>(_ v: [T], _ k: Int) -> T { v.count == 1 ? v[0] : v[k] }
        r.members = crop.isEmpty ? [FaceMemberRecipe(crop: nil, channels: 1, epochs: epochs[0])] : crop.indices.map { k in
            var box = crop[k].crop
            box.size = per(size, k)
            return FaceMemberRecipe(crop: box, channels: per(channels, k), epochs: per(epochs, k))
        }
        (r.initFrom, r.frame, r.extraData, r.extraPeople, r.extraFrame) = (initFrom, frame?.crop, extraData, extraPeople, extraFrame?.crop)
        (r.augment, r.threshold, r.views, r.score) = (augment, threshold, views, score)
        var o = FaceTrainingOptions()
        (o.loss, o.seed, o.embedding, o.weightDecay) = (loss, seed, embedding, weightDecay)
        if let w = widths { o.widths = w.values }
        o.lr = lr ?? (wild && sgd ? 0.1 : 2e-3)
        if wild {
            o.blocks = blocks.values
            if widths == nil && !o.blocks.isEmpty { o.widths = [32, 64, 128, 256].prefix(o.blocks.count) + [Int](repeating: 256, count: Swift.max(0, o.blocks.count - 4)) }
            (o.sgd, o.batchSize, o.warmupEpochs, o.scale, o.margin, o.dropout) = (sgd, batchSize, warmup, scale, margin, dropout)
            o.progressStyle = json ? .none : .auto
        }
        (o.checkpointPath, o.resumeFrom) = (checkpoint, resume)
        r.options = o
        r.log = { [json] line in if !json { print(line) } }
        return r
    }

    func run() throws {
        // Before any work: a bad --out used to surface only after training.
        try FileIO.checkModelOutput(out)
        if let checkpoint { try FileIO.checkModelOutput(checkpoint, option: "--checkpoint") }
        let world = try distributedOptions.communicator()
        threadOptions.apply()
        Profiler.isEnabled = ProcessInfo.processInfo.environment["STRATA_PROFILE"] != nil
        defer { if Profiler.isEnabled { FileHandle.standardError.write((Profiler.report() + "\n").data(using: .utf8)!) } }
        var run = trainingRun
        run.options.communicator = world
        // Under mpirun only rank 0 speaks (errors aside) and writes the model.
        let quiet = (world?.rank ?? 0) != 0
        if quiet { run.log = { _ in } }
        let r = try run.run()
        if quiet { return }
        try r.model.save(to: out, half: half)
        let t = r.model.threshold
        if json {
            var report: [String: Any] = ["model": out, "people": r.people, "images": r.images, "members": r.members, "threshold": Double(t),
                                         "train_seconds": round1(r.trainSeconds), "load_seconds": round1(r.loadSeconds)]
            if r.heldOutPeople > 0 { (report["holdout_people"], report["holdout_eer"]) = (r.heldOutPeople, r.heldOutEER) }
            if let i = r.heldOutIdentification { report["holdout_identification"] = ["mean": i.mean, "std": i.std] }
            return printJSON(report)
        }
        let source = threshold != nil ? "given" : "\(r.model.score == .snorm ? "S-norm" : "cosine") distance at the EER of the \(r.heldOutPeople == 0 ? "training" : "held-out") people"
        print(String(format: "trained %@on %d people (%d images) in %.1f s (loading %.1f s); threshold %.3f (%@)",
                     r.members > 1 ? "\(r.members) networks " : "", r.people, r.images, r.trainSeconds, r.loadSeconds, t, source))
        if let h = r.model.info.extra["holdout"] { print("held out " + h) }
        print("saved \(out)")
    }
}
