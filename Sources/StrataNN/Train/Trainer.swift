import Foundation
import StrataCore

/// Settings of `Trainer.fit`.
public struct FitOptions {
    public var epochs = 1
    public var batchSize = 64
    /// Seeds the shuffling (per epoch) of the training data and, at the start of `fit`, the
    /// global generator that dropout draws from. (Weights are initialised before `fit`: seed
    /// them with `RandomGenerator.manualSeed` before building the model.)
    public var seed = 0
    /// Stop when the validation loss has not improved for this many epochs.
    public var patience: Int?
    /// Where to save the model with the best validation loss (or the last one without validation).
    public var bestModelPath: String?
    /// Where to save a resumable checkpoint (weights, optimizer state, progress) after every epoch.
    public var checkpointPath: String?
    /// A checkpoint to continue from.
    public var resumeFrom: String?
    /// Learning rate per optimizer step (nil: constant).
    public var schedule: LRSchedule?
    /// Clip the global gradient norm to this value.
    public var clipNorm: Float?
    public var progress: ProgressStyle = .auto
    public var progressToStderr = false

    public init(epochs: Int = 1, batchSize: Int = 64, seed: Int = 0) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
    }
}

/// Trains a classifier the way Keras's `fit` does: epochs of shuffled mini-batches with a progress
/// bar, validation after each epoch, best-model saving, early stopping and resumable checkpoints.
///
/// ```swift
/// let model = ModelZoo.fashionCNN()
/// let trainer = Trainer(model: model, optimizer: Adam(model.parameters(), lr: 1e-3),
///                       info: ModelZoo.fashionInfo(model))
/// var options = FitOptions(epochs: 3)
/// options.bestModelPath = "fashion.safetensors"
/// let history = try trainer.fit(train, validation: test, options: options)
/// ```
public final class Trainer {
    public let model: Module
    public let optimizer: Optimizer
    /// Written into every saved model file (its history is filled in by `fit`).
    public var info: ModelInfo
    /// Loss of a batch from the model's output and the labels (default: mean cross-entropy).
    public var loss: (Tensor, [Int]) -> Tensor = { crossEntropy($0, $1) }
    public private(set) var history: [EpochRecord] = []

    public init(model: Module, optimizer: Optimizer, info: ModelInfo) {
        self.model = model
        self.optimizer = optimizer
        self.info = info
    }

    /// Runs `options.epochs` epochs (counting those already done when resuming) and returns the
    /// history. Throws when the loss becomes NaN or infinite, or a file cannot be written.
    ///
    /// The model trains in training mode and is validated in evaluation mode; when `fit` returns
    /// or throws, every module is back in the mode it was in when `fit` was called (so a model
    /// in training mode before `fit` is still in training mode after it: call `model.eval()`
    /// before inference).
    @discardableResult
    public func fit<S: BatchSource>(_ train: S, validation: (any BatchSource)? = nil, options: FitOptions) throws -> [EpochRecord] {
        // Parents first, so restoring each module's flag in this order restores them all.
        let modes = model.namedModules().map { ($0.1, $0.1.isTraining) }
        defer { for (m, on) in modes { m.train(on) } }
        let reporter = ProgressReporter(style: options.progress, toStderr: options.progressToStderr)
        let loader = DataLoader(train, batchSize: options.batchSize, shuffle: true, seed: options.seed)
        let baseLR = optimizer.learningRate
        var startEpoch = 0
        var bestLoss = Double.infinity
        var badEpochs = 0
        RandomGenerator.manualSeed(options.seed &* 7919 &+ 1)
        if let path = options.resumeFrom {
            (startEpoch, bestLoss, badEpochs) = try resume(from: path)
            reporter.message("resumed from \(path) after epoch \(startEpoch)")
        }
        var step = startEpoch * loader.batchCount
        for epoch in startEpoch..<options.epochs {
            model.train()
            let started = ProcessInfo.processInfo.systemUptime
            var lossSum = 0.0, correct = 0, seen = 0
            for (b, batch) in loader.epoch(epoch).enumerated() {
                if let schedule = options.schedule { optimizer.learningRate = schedule.learningRate(at: step, base: baseLR) }
                let out = model(batch.inputs)
                let l = loss(out, batch.labels)
                let value = l.item
                guard value.isFinite else {
                    throw StrataError("training stopped: the loss became \(value.isNaN ? "NaN" : "infinite") at epoch \(epoch + 1), step \(b + 1) (learning rate \(optimizer.learningRate)); try a lower --lr")
                }
                optimizer.zeroGrad()
                l.backward()
                if let c = options.clipNorm { clipGradNorm(optimizer.parameters, maxNorm: c) }
                optimizer.step()
                step += 1
                let n = batch.labels.count
                lossSum += Double(value) * Double(n)
                seen += n
                correct += zip(out.argmaxIndices(), batch.labels).filter { $0 == $1 }.count
                reporter.update(epoch: epoch + 1, epochs: options.epochs, done: seen, total: train.count,
                                loss: lossSum / Double(seen), started: started, force: b == loader.batchCount - 1)
            }
            let seconds = ProcessInfo.processInfo.systemUptime - started
            var record = EpochRecord(epoch: epoch + 1, trainLoss: lossSum / Double(max(seen, 1)), trainAccuracy: Double(correct) / Double(max(seen, 1)),
                                     seconds: seconds, samplesPerSecond: Double(seen) / max(seconds, 1e-9), learningRate: Double(optimizer.learningRate))
            if let validation {
                let (vl, va) = Trainer.evaluate(model, validation, loss: loss)
                record.valLoss = vl
                record.valAccuracy = va
            }
            history.append(record)
            info.history = history
            reporter.epochLine(record, epochs: options.epochs)
            let monitored = record.valLoss ?? record.trainLoss
            if monitored < bestLoss {
                bestLoss = monitored
                badEpochs = 0
                if let p = options.bestModelPath { try SavedModel(model: model, info: info).save(to: p) }
            } else {
                badEpochs += 1
            }
            if let p = options.checkpointPath { try saveCheckpoint(p, epoch: epoch + 1, bestLoss: bestLoss, badEpochs: badEpochs) }
            if let patience = options.patience, badEpochs >= patience {
                reporter.message("early stopping: no improvement of the validation loss for \(patience) epochs")
                break
            }
        }
        return history
    }

    /// Mean loss and accuracy over a dataset, in evaluation mode without autograd.
    public func evaluate<S: BatchSource>(_ data: S, batchSize: Int = 1000) -> (loss: Double, accuracy: Double) {
        Trainer.evaluate(model, data, batchSize: batchSize, loss: loss)
    }

    public static func evaluate<S: BatchSource>(_ model: Module, _ data: S, batchSize: Int = 1000,
                                                loss: (Tensor, [Int]) -> Tensor = { crossEntropy($0, $1) }) -> (loss: Double, accuracy: Double) {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        var lossSum = 0.0, correct = 0
        noGrad {
            for batch in DataLoader(data, batchSize: batchSize).epoch(0) {
                let out = model(batch.inputs)
                lossSum += Double(loss(out, batch.labels).item) * Double(batch.labels.count)
                correct += zip(out.argmaxIndices(), batch.labels).filter { $0 == $1 }.count
            }
        }
        return (lossSum / Double(max(data.count, 1)), Double(correct) / Double(max(data.count, 1)))
    }

    // MARK: checkpoints

    private func saveCheckpoint(_ path: String, epoch: Int, bestLoss: Double, badEpochs: Int) throws {
        var extra: [String: Tensor] = [:]
        for (k, v) in optimizer.state() { extra["optimizer.\(k)"] = v }
        let meta = ["checkpoint_epoch": String(epoch), "checkpoint_best_loss": String(bestLoss), "checkpoint_bad_epochs": String(badEpochs),
                    "checkpoint_lr": String(optimizer.learningRate),
                    "checkpoint_rng": RandomGenerator.global.state.map { String($0) }.joined(separator: ",")]
        try SavedModel(model: model, info: info).save(to: path, extraTensors: extra, extraMetadata: meta)
    }

    private func resume(from path: String) throws -> (Int, Double, Int) {
        let (tensors, meta) = try Safetensors.read(path)
        guard let e = meta["checkpoint_epoch"].flatMap(Int.init) else {
            throw StrataError("\(path): not a training checkpoint (no checkpoint_epoch in its metadata)")
        }
        var weights: [String: Tensor] = [:], opt: [String: Tensor] = [:]
        for (k, v) in tensors {
            if k.hasPrefix("optimizer.") { opt[String(k.dropFirst("optimizer.".count))] = v } else { weights[k] = v }
        }
        try model.loadStateDict(weights, source: path)
        try optimizer.loadState(opt)
        if let s = meta["checkpoint_rng"] {
            let words = s.split(separator: ",").compactMap { UInt64($0) }
            if words.count == 4 { RandomGenerator.global.state = words }
        }
        if let lr = meta["checkpoint_lr"].flatMap(Float.init) { optimizer.learningRate = lr }
        if let h = meta["history"], let hist = try? JSONDecoder().decode([EpochRecord].self, from: Data(h.utf8)) {
            history = hist
            info.history = hist
        }
        let best = meta["checkpoint_best_loss"].flatMap(Double.init) ?? .infinity
        let bad = meta["checkpoint_bad_epochs"].flatMap(Int.init) ?? 0
        return (e, best, bad)
    }
}
