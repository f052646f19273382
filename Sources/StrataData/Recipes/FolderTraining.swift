import Foundation
import StrataCore
import StrataNN

/// Trains an image classifier on a folder with one sub-folder of images per class
/// (`root/<class>/*.jpg`, Keras's `image_dataset_from_directory`, PyTorch's `ImageFolder`):
/// from scratch with `ModelZoo.folderCNN`, or by transfer learning from a pretrained model file,
/// whose last `Linear` layer is replaced by one for the folder's classes (`freeze` trains that
/// layer alone). A pretrained model that already knows the folder's classes, in order, keeps its
/// classifier: Keras's second stage, fine-tuning every layer at a low rate after the classifier
/// was trained on frozen features. A stratified share of every class is held out as the test split; the model of
/// the last epoch is saved and scored on it.
///
/// ```swift
/// var t = FolderTraining("photos")                 // photos/cat/*.jpg, photos/dog/*.jpg
/// t.pretrained = "imported.safetensors"; t.freeze = true
/// t.out = "pets.safetensors"
/// let report = try t.run()                          // report.runs[0].accuracy
/// ```
public struct FolderTraining {
    public var folder: String
    /// A Strata model file to start from (transfer learning); nil trains `ModelZoo.folderCNN`.
    public var pretrained: String?
    /// With `pretrained`: train the classifier only, every other layer frozen.
    public var freeze = false
    /// Width and height of the images the new CNN takes (default 64 x 64) and their channels
    /// (default 3); a pretrained model brings its own input shape.
    public var size: (width: Int, height: Int)?, channels: Int?
    /// The share of each class held out for testing.
    public var testShare = 0.2
    /// Epochs (default: 30, or 10 from a pretrained model, and more where that would be under 300
    /// steps, so a small folder still trains), batch size (default 32), and learning rate
    /// (default: the optimizer's, ten times that with `freeze`, where only a linear layer learns).
    public var epochs: Int?, batchSize: Int?, lr: Float?
    public var optimizer = OptimizerKind.adam
    public var weightDecay: Float?
    /// Random mirror, rotation ±10°, zoom 0.9–1.1 and shift ±10 % of each training batch (off by
    /// default, as in Keras: it needs more epochs, and a mirror is wrong for text or digits).
    public var augment = false
    public var seed = 0, seeds = 1
    public var out: String?
    public var progress: ProgressStyle = .auto
    public var progressToStderr = false
    public var log: (String) -> Void = { _ in }

    public init(_ folder: String) { self.folder = folder }

    /// The default model file: the folder's name, then "-cnn" or "-finetuned".
    public var defaultOut: String {
        let name = (folder as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? "images"
        return "\(name)-\(pretrained == nil ? "cnn" : "finetuned").safetensors"
    }

    /// The augmentation `augment` turns on.
    public static var augmentation: Augmentation {
        var a = Augmentation()
        (a.flip, a.maxRotation, a.scale, a.maxShift) = (true, 10, (0.9, 1.1), 0.1)
        return a
    }

    public func run() throws -> DatasetTrainingReport {
        if pretrained != nil && (size != nil || channels != nil) {
            throw StrataError("a pretrained model takes its own input shape: leave out the size and channels")
        }
        if freeze && pretrained == nil { throw StrataError("freezing needs a pretrained model to start from") }
        let base = try pretrained.map(Self.loadPretrained)
        let shape = base?.info.inputShape ?? [channels ?? 3, size?.height ?? 64, size?.width ?? 64]
        log("reading \(folder) at \(shape[2])x\(shape[1]), \(shape[0] == 1 ? "grey" : "\(shape[0]) channels")")
        let all = try ImageFolder.load(folder, channels: shape[0], size: (shape[2], shape[1]))
        guard all.classNames.count >= 2 else { throw StrataError("\(folder): a classifier needs at least two class folders, found \(all.classNames.count) (\(all.classNames.joined()))") }
        let outPath = out ?? defaultOut
        let what = "\(folder) \(pretrained == nil ? "cnn" : freeze ? "fine-tuned classifier" : "fine-tuned")"
        var report = DatasetTrainingReport(what: what, out: outPath)
        for s in (0..<seeds).map({ seed &+ $0 }) {
            var (train, test) = all.splitPerClass(testShare: testShare, seed: s)
            guard !test.labels.isEmpty else { throw StrataError("\(folder): no image is left for testing (every class needs at least two images)") }
            let normalization = base?.info.normalization ?? Self.channelStatistics(train)
            (train.normalization, test.normalization) = (normalization, normalization)
            // Each seed starts from the file's weights again, read before seeding (building its layers
            // draws), so a seed trains the same alone as after others.
            let start = try s == seed ? base : pretrained.map { try SavedModel.load($0) }
            RandomGenerator.manualSeed(s)
            let net: Sequential
            if let start, let path = pretrained {
                let chain = start.model as! Sequential
                // A model of these very classes continues with its classifier; any other gets a new one.
                let keep = start.info.classNames == all.classNames ? chain.classifier : nil
                let (m, head) = try keep.map { (chain, $0) } ?? chain.replacingClassifier(classes: all.classNames.count)
                if s == seed && keep != nil { log("\(path) knows these \(all.classNames.count) classes: its classifier trains on") }
                if freeze { m.freeze(); head.freeze(false) }
                net = m
            } else {
                net = ModelZoo.folderCNN(channels: shape[0], classes: all.classNames.count)
            }
            var info = ModelInfo(model: net, classNames: all.classNames, inputShape: shape, normalization: normalization)
            info.dataset = folder
            info.extra["test_split"] = String(testShare)
            info.extra["split_seed"] = String(s)
            let batch = batchSize ?? 32, steps = (train.count + batch - 1) / batch
            let e = epochs ?? max(pretrained == nil ? 30 : 10, (300 + steps - 1) / steps)
            let rate = lr ?? (freeze ? (optimizer == .sgd ? 0.1 : 0.01) : optimizer.defaultLearningRate)
            info.recipe = recipe(seed: s, epochs: e, lr: rate)
            let trainer = Trainer(model: net, optimizer: optimizer.make(net.parameters(), lr: rate, weightDecay: weightDecay), info: info)
            if augment {
                trainer.generator = RandomGenerator(seed: s &+ 104_729)
                trainer.batchTransform = { [a = Self.augmentation] b, rng in Batch(inputs: a.apply(b.inputs, rng: &rng), labels: b.labels, indices: b.indices) }
            }
            var options = FitOptions(epochs: e, batchSize: batch, seed: s)
            // Cosine decay to 0 over the run: the last epoch, which is saved, is a settled one.
            options.schedule = CosineAnnealing(totalSteps: e * steps)
            (options.progress, options.progressToStderr, options.validationName) = (seeds > 1 ? .none : progress, progressToStderr, "test")
            let save = s == seed ? outPath : nil
            if let save { (options.bestModelPath, options.saveBestOnly) = (save, false) }
            let frozen = freeze ? " (\(net.frozenParameterCount) more frozen)" : ""
            log("training \(net.parameterCount) parameters\(frozen) on \(train.count) images of \(all.classNames.count) classes, testing on \(test.count) (the last epoch is saved)")
            let started = Date()
            let history = try trainer.fit(train, validation: test, options: options)
            let seconds = Date().timeIntervalSince(started)
            let (loss, acc) = Trainer.evaluate(net, test)
            if save != nil { (report.history, report.testLoss, report.parameters) = (history, loss, net.parameterCount) }
            if seeds > 1 { log("seed \(s): " + String(format: "test accuracy %.4f, test loss %.4f (%.1f s)", acc, loss, seconds)) }
            report.runs.append(SeedRun(seed: s, accuracy: acc, seconds: seconds, extra: ["test_loss": loss]))
        }
        return report
    }

    /// The command line that repeats one seed's training.
    func recipe(seed: Int, epochs: Int, lr: Float) -> String {
        var r = "strata train --data \(folder)"
        if let pretrained { r += " --from \(pretrained)" + (freeze ? " --freeze" : "") } else { r += " --size \(size.map { $0.width == $0.height ? "\($0.width)" : "\($0.width)x\($0.height)" } ?? "64") --channels \(channels ?? 3)" }
        r += " --test-split \(testShare) --epochs \(epochs) --batch-size \(batchSize ?? 32) --optimizer \(optimizer.rawValue) --lr \(lr)"
        if let weightDecay { r += " --weight-decay \(weightDecay)" }
        return r + (augment ? " --augment" : "") + " --seed \(seed)"
    }

    /// A pretrained model file whose layers can be trained: a chain of layers with image inputs.
    static func loadPretrained(_ path: String) throws -> SavedModel {
        if path.lowercased().hasSuffix(".onnx") {
            throw StrataError("\(path): an ONNX graph does not train; convert it into layers first with `strata import --onnx \(path) --out model.safetensors`")
        }
        let saved = try SavedModel.load(path)
        guard saved.model is Sequential else {
            throw StrataError("\(path): a \(saved.model.typeName) model; transfer learning starts from a chain of layers (Sequential)")
        }
        guard saved.info.inputShape.count == 3 else {
            throw StrataError("\(path): the model takes inputs of shape \(saved.info.inputShape), not images [channels, height, width]")
        }
        do { _ = try (saved.model as! Sequential).replacingClassifier(classes: 2) } catch { throw StrataError("\(path): \(error)") }
        return saved
    }

    /// Pixels scaled to [0, 1], then each channel standardised by its mean and standard deviation
    /// over the training images.
    static func channelStatistics(_ d: LabeledImages) -> Normalization {
        let c = d.imageShape[0], plane = d.imageShape[1] * d.imageShape[2]
        var sum = [Double](repeating: 0, count: c), sq = sum
        d.pixels.withUnsafeBufferPointer { px in
            for i in 0..<d.count {
                for ch in 0..<c {
                    var s = 0.0, q = 0.0
                    for v in px[((i * c + ch) * plane)..<((i * c + ch + 1) * plane)] { let x = Double(v) / 255; s += x; q += x * x }
                    sum[ch] += s
                    sq[ch] += q
                }
            }
        }
        let n = Double(d.count * plane)
        let mean = sum.map { $0 / n }
        let std = zip(sq, mean).map { max(($0 / n - $1 * $1).squareRoot(), 1e-3) }
        return Normalization(scale: 1 / 255, mean: mean.map(Float.init), std: std.map(Float.init))
    }
}
