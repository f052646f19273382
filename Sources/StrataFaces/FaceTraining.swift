import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

/// Settings for training a `FaceNet`; the defaults are those of the reference script.
public struct FaceTrainingOptions {
    public var loss: FaceLoss = .softmax
    public var epochs = 60
    public var batchSize = 32
    public var lr: Float = 2e-3
    public var weightDecay: Float = 5e-4
    public var seed = 0
    public var tripletMargin: Float = 0.2
    /// Data-parallel training over these processes (`batchSize` is the batch of all of them
    /// together; rank 0 prints and writes checkpoints). Augmentation draws per example from the
    /// seed (`fit`) or from each process's own stream (`train`).
    public var communicator: Communicator?
    /// Rotation ±10°, zoom 0.9–1.1, shift ±6 %, mirror.
    public var augmentation: Augmentation = {
        var a = Augmentation()
        a.flip = true
        a.maxRotation = 10
        a.scale = (0.9, 1.1)
        a.maxShift = 0.06
        return a
    }()
    /// Rotation ±15°, zoom 0.85–1.15, shift ±10 %, brightness and contrast ±20 %, mirror.
    public static let strongAugmentation: Augmentation = {
        var a = Augmentation()
        a.flip = true
        a.maxRotation = 15
        a.scale = (0.85, 1.15)
        a.maxShift = 0.1
        a.brightness = 0.2
        a.contrast = 0.2
        return a
    }()
    public var embedding = 128
    public var widths = [16, 32, 64]
    /// Called by `train` after each epoch with its number and mean training loss (per image).
    public var progress: ((Int, Double) -> Void)?

    // Used by `FaceTraining.fit` (photos in the wild, through the Trainer):
    /// Residual blocks per stage (empty: the plain network).
    public var blocks: [Int] = []
    /// Scale and margin of the cosine heads (nil: the network's defaults).
    public var scale: Float?, margin: Float?
    public var dropout: Float = 0.3
    /// SGD with Nesterov momentum 0.9 instead of Adam.
    public var sgd = false
    /// Epochs of linear learning-rate warm-up before the cosine decay.
    public var warmupEpochs = 0
    /// Resumable checkpoint written after every epoch, and one to continue from (both recipes).
    public var checkpointPath: String?, resumeFrom: String?
    public var progressStyle: ProgressStyle = .auto
    /// A trained network of the same layers to start from (fine-tuning): its feature layers and
    /// embedding are copied; the head over the new identities starts afresh.
    public var initial: FaceNet?

    public init() {}
}

public enum FaceTraining {
    /// Trains a face network on grey images already at its input size (8-bit, `[1, H, W]`)
    /// through the `Trainer`: Adam with L2 weight decay, cosine learning-rate decay to 0,
    /// augmentation per batch, per-image standardisation. Batches for the triplet loss hold 8
    /// images of each of 4 people. One generator (seed + 101) draws each epoch's batch order, then
    /// the augmentation of its batches in order; dropout draws from the global generator, seeded
    /// with `seed` before the weights. `options.progress` gets each epoch's mean loss; the
    /// Trainer's own display is `options.progressStyle` when it is not `.auto` (else none).
    public static func train(_ data: LabeledImages, options o: FaceTrainingOptions) throws -> FaceNet {
        RandomGenerator.manualSeed(o.seed)
        let (h, w) = (data.imageShape[1], data.imageShape[2])
        let net = FaceNet(classes: data.classNames.count, loss: o.loss, embedding: o.embedding, widths: o.widths, inputSize: (h, w))
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: data.classNames, inputShape: data.imageShape,
                             normalization: data.normalization)
        let trainer = Trainer(model: net, optimizer: Adam(net.parameters(), lr: o.lr, weightDecay: o.weightDecay), info: info)
        trainer.dataParallel = try o.communicator.map { try DataParallel(net, communicator: $0) }
        trainer.generator = RandomGenerator(seed: o.seed &+ 101)
        trainer.batchOrder = { _, rng in batches(data, o, &rng) }
        trainer.batchTransform = { [augmentation = o.augmentation] b, rng in
            Batch(inputs: augmentation.apply(b.inputs, rng: &rng).standardizedPerImage(), labels: b.labels, indices: b.indices)
        }
        trainer.batchLoss = { [margin = o.tripletMargin] b in net.trainingLossAndScores(b.inputs, b.labels, tripletMargin: margin) }
        trainer.onEpochEnd = o.progress.map { progress in { progress($0.epoch, $0.trainLoss) } }
        var raw = data
        raw.normalization = Normalization(scale: 1 / 255)
        var fo = FitOptions(epochs: o.epochs, batchSize: o.batchSize, seed: o.seed)
        fo.seedGlobalGenerator = false
        fo.schedule = CosineAnnealing(totalSteps: o.epochs * ((data.count + o.batchSize - 1) / o.batchSize))
        fo.progress = o.progressStyle == .auto ? .none : o.progressStyle
        fo.checkpointPath = o.checkpointPath
        fo.resumeFrom = o.resumeFrom
        try trainer.fit(raw, options: fo)
        net.eval()
        return net
    }

    /// Trains a face network through the `Trainer` (progress bar, checkpoints, resuming) on
    /// context images (`FaceCrop.contextImage`, 8-bit `[C, S', S']`): each batch is augmented,
    /// cut to the centred `size` x `size` window and standardised per image. Softmax, CosFace or
    /// ArcFace head; Adam (L2 decay) or SGD with Nesterov momentum; warm-up, then cosine decay.
    ///
    /// ```swift
    /// var o = FaceTrainingOptions()
    /// o.loss = .cosface; o.blocks = [1, 1, 1, 1]; o.widths = [32, 64, 128, 256]
    /// let (net, history) = try FaceTraining.fit(contextImages, size: 64, options: o, info: info)
    /// ```
    public static func fit(_ data: LabeledImages, size: Int, options o: FaceTrainingOptions, info: ModelInfo) throws -> (FaceNet, [EpochRecord]) {
        precondition(o.loss != .triplet, "FaceTraining.fit: the triplet loss needs person-balanced batches; use train(_:options:)")
        RandomGenerator.manualSeed(o.seed)
        let net = FaceNet(classes: data.classNames.count, loss: o.loss, embedding: o.embedding, widths: o.widths, inputSize: (size, size),
                          scale: o.scale, margin: o.margin, dropout: o.dropout, channels: data.imageShape[0], blocks: o.blocks)
        if let initial = o.initial { try net.embed.loadStateDict(initial.embed.stateDict(), source: "the network to start from") }
        let optimizer: Optimizer = o.sgd
            ? SGD(net.parameters(), lr: o.lr, momentum: 0.9, weightDecay: o.weightDecay, nesterov: true)
            : Adam(net.parameters(), lr: o.lr, weightDecay: o.weightDecay)
        var info = info
        info.architecture = ModuleRegistry.spec(of: net)
        let trainer = Trainer(model: net, optimizer: optimizer, info: info)
        trainer.dataParallel = try o.communicator.map { try DataParallel(net, communicator: $0) }
        trainer.loss = { net.marginLoss(scores: $0, labels: $1) }
        var raw = data
        raw.normalization = Normalization(scale: 1 / 255)
        let source = AugmentedFaces(images: raw, augmentation: o.augmentation, size: size, seed: o.seed)
        var fo = FitOptions(epochs: o.epochs, batchSize: o.batchSize, seed: o.seed)
        let steps = (data.count + o.batchSize - 1) / o.batchSize
        fo.schedule = LinearWarmup(steps: o.warmupEpochs * steps, then: CosineAnnealing(totalSteps: (o.epochs - o.warmupEpochs) * steps))
        fo.checkpointPath = o.checkpointPath
        fo.resumeFrom = o.resumeFrom
        fo.progress = o.progressStyle
        let history = try trainer.fit(source, options: fo)
        net.eval()
        return (net, history)
    }

    /// Shuffled batches; for the triplet loss, P people x K images each.
    static func batches(_ data: LabeledImages, _ o: FaceTrainingOptions, _ rng: inout RandomGenerator) -> [[Int]] {
        guard o.loss == .triplet else {
            let order = rng.permutation(data.count)
            return stride(from: 0, to: order.count, by: o.batchSize).map { Array(order[$0..<Swift.min($0 + o.batchSize, order.count)]) }
        }
        let k = 8
        var byClass = [[Int]](repeating: [], count: data.classNames.count)
        for (i, l) in data.labels.enumerated() { byClass[l].append(i) }
        let people = byClass.indices.filter { byClass[$0].count >= 2 }
        let p = Swift.min(Swift.max(2, o.batchSize / k), people.count)
        if p < 2 {   // fewer than two identities with two images: no triplets to mine
            var plain = o
            plain.loss = .softmax
            return batches(data, plain, &rng)
        }
        // As many steps as an ordinary epoch, drawing fresh groups of people as needed.
        let steps = (data.count + o.batchSize - 1) / o.batchSize
        var out: [[Int]] = []
        while out.count < steps {
            let perm = rng.permutation(people.count).map { people[$0] }
            for start in stride(from: 0, to: perm.count - p + 1, by: p) where out.count < steps {
                var b: [Int] = []
                for c in perm[start..<(start + p)] {
                    let imgs = byClass[c]
                    let pick = rng.permutation(imgs.count)
                    for j in 0..<k { b.append(imgs[pick[j % imgs.count]]) }
                }
                out.append(b)
            }
        }
        return Array(out.prefix(steps))
    }
}

/// Face context images whose batches are augmented, cut to the centred `size` x `size` window and
/// standardised per image. Each batch draws its randomness from the seed and its own indices,
/// so it is the same whichever thread builds it, and a resumed run sees what an unbroken one would.
public struct AugmentedFaces: BatchSource {
    public var images: LabeledImages
    public var augmentation: Augmentation
    public var size: Int
    public var seed: Int

    public init(images: LabeledImages, augmentation: Augmentation, size: Int, seed: Int) {
        self.images = images
        self.augmentation = augmentation
        self.size = size
        self.seed = seed
    }

    public var count: Int { images.count }

    public func batch(_ indices: [Int]) -> Batch {
        let started = Profiler.isEnabled ? Profiler.now() : 0
        defer { if Profiler.isEnabled { Profiler.add("faces: augmented batch (data thread)", Profiler.now() - started) } }
        let b = images.batch(indices)
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(bitPattern: Int64(seed))
        for i in indices { h = (h ^ UInt64(i)) &* 0x100_0000_01b3 }
        var rng = RandomGenerator(seed: Int(truncatingIfNeeded: h))
        let x = augmentation.apply(b.inputs, rng: &rng, outputSize: (size, size)).standardizedPerImage()
        return Batch(inputs: x, labels: b.labels, indices: b.indices)
    }
}
