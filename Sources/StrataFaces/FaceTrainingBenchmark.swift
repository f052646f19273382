import Foundation
import StrataCore
import StrataNN
import StrataData

/// The workload of ../shared/bench/reference/faces_train.py in Strata: one network of the shipped
/// LFW recipe (3 x [conv 3x3, BatchNorm, ReLU, max pool 2] with 32, 64, 128 channels on the 64x64
/// RGB face box, dropout 0.1, a 128-d embedding, CosFace s 30 m 0.25 over every person), SGD with
/// Nesterov momentum 0.9, lr 0.1, weight decay 5e-4, batch 64, through `Trainer.fit` as
/// `strata faces train` runs it. Photos are decoded and cut before timing; images per second
/// are counted over the steps after the first `warmup`.
///
/// ```swift
/// let r = try FaceTrainingBenchmark(data: "../shared/data/lfw_train").run()
/// print(r.imagesPerSecond, r.lossLast50)
/// ```
public struct FaceTrainingBenchmark {
    public var data: String
    public var steps = 300
    public var warmup = 20
    public var batchSize = 64
    /// One line per epoch of progress.
    public var log: (String) -> Void = { _ in }

    public init(data: String) { self.data = data }

    /// The reference's augmentation in Strata's terms: mirror, rotation ±10°, zoom 0.9–1.1, shift
    /// ±6 %, brightness and contrast ±20 %, grey 10 %, random erasing 25 %.
    public static var referenceAugmentation: Augmentation {
        var a = Augmentation()
        a.flip = true
        a.maxRotation = 10
        a.scale = (0.9, 1.1)
        a.maxShift = 0.06
        a.brightness = 0.2
        a.contrast = 0.2
        a.greyProbability = 0.1
        a.eraseProbability = 0.25
        return a
    }

    public struct Result {
        public var imagesPerSecond = 0.0
        public var timedSteps = 0
        public var lossLast50 = 0.0
        public var people = 0, photos = 0
        public var loadSeconds = 0.0
        public var foreignCPU = 0.0
    }

    public func run() throws -> Result {
        var r = Result()
        let started = ProcessStats.now()
        let box = FaceCrop(centerX: 0.5, centerY: 0.52, side: 0.48, size: 64)
        var all = try ImageFolder.load(data, channels: 3, size: (box.contextSize, box.contextSize), transform: { box.contextImage($0) })
        all.normalization = Normalization(scale: 1 / 255)
        (r.people, r.photos, r.loadSeconds) = (all.classNames.count, all.count, ProcessStats.now() - started)
        guard all.count >= batchSize else { throw StrataError("\(data): \(all.count) photos, fewer than one batch of \(batchSize)") }
        RandomGenerator.manualSeed(0)
        let net = FaceNet(classes: all.classNames.count, loss: .cosface, embedding: 128, widths: [32, 64, 128], inputSize: (64, 64),
                          scale: 30, margin: 0.25, dropout: 0.1, channels: 3)
        let optimizer = SGD(net.parameters(), lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true)
        let trainer = Trainer(model: net, optimizer: optimizer,
                              info: ModelInfo(model: net, classNames: all.classNames, inputShape: [3, 64, 64]))
        var losses: [Double] = []
        trainer.loss = { scores, labels in
            let l = net.marginLoss(scores: scores, labels: labels)
            losses.append(Double(l.item))
            return l
        }
        // Timed: steps warmup+1 ... warmup+steps, as the reference; the rest of the last epoch runs untimed.
        var timedFrom = 0.0, timedUntil = 0.0, timedImages = 0
        let load = ForeignLoad()
        let last = warmup + steps
        trainer.onStep = { [warmup] step, n in
            if step == warmup { timedFrom = ProcessStats.now() } else if step > warmup && step <= last {
                timedImages += n
                r.timedSteps += 1
                if step == last { timedUntil = ProcessStats.now(); r.foreignCPU = load.value() }
            }
        }
        trainer.onEpochEnd = { [log] e in log(String(format: "epoch %d: %.1f s, mean loss %.4f", e.epoch, e.seconds, e.trainLoss)) }
        // Whole epochs over a seeded shuffle, as many as the steps need.
        let perEpoch = (all.count + batchSize - 1) / batchSize
        var options = FitOptions(epochs: (last + perEpoch - 1) / perEpoch, batchSize: batchSize, seed: 0)
        options.progress = .none
        let source = AugmentedFaces(images: all, augmentation: Self.referenceAugmentation, size: 64, seed: 0)
        try trainer.fit(source, options: options)
        r.imagesPerSecond = Double(timedImages) / (timedUntil - timedFrom)
        let counted = losses.prefix(last).suffix(50)
        r.lossLast50 = counted.reduce(0, +) / Double(max(counted.count, 1))
        return r
    }
}
