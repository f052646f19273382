import Foundation
import StrataCore
import CStrata

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
    /// False: write `bestModelPath` after every epoch, so it holds the last epoch's model (Keras's
    /// `save_best_only=False`). For validation data that results are reported on, such as a test
    /// split, where choosing the epoch by it would flatter the result.
    public var saveBestOnly = true
    /// How the epoch lines name the validation figures (`val_loss`, `val_accuracy`); e.g. "test"
    /// when the validation data is the test split.
    public var validationName = "val"
    /// Where to save a resumable checkpoint (weights, optimizer state, progress) after every epoch.
    public var checkpointPath: String?
    /// A checkpoint to continue from.
    public var resumeFrom: String?
    /// Learning rate per optimizer step (nil: constant).
    public var schedule: LRSchedule?
    /// Lower the learning rate when the validation loss stops improving (Keras's and PyTorch's
    /// `ReduceLROnPlateau`); with a `schedule`, it scales the schedule's base rate.
    public var reduceOnPlateau: PlateauReduction?
    /// Clip the global gradient norm to this value.
    public var clipNorm: Float?
    public var progress: ProgressStyle = .auto
    public var progressToStderr = false
    /// Reseed the global generator (dropout) from `seed` at the start of `fit`. Turn it off to let
    /// dropout continue the stream the model's initialisation was drawn from (a checkpoint still
    /// restores it when resuming).
    public var seedGlobalGenerator = true

    public init(epochs: Int = 1, batchSize: Int = 64, seed: Int = 0) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.seed = seed
    }
}

/// Multiplies the learning rate by `factor` each time the monitored loss (the validation loss, or
/// the training loss without validation data) has not improved for `patience` epochs in a row,
/// never below `minRate` (Keras's `ReduceLROnPlateau(factor:patience:min_lr:)`; an improvement
/// is any fall below the best loss so far, as for early stopping).
///
/// ```swift
/// var options = FitOptions(epochs: 60)
/// options.reduceOnPlateau = PlateauReduction(factor: 0.5, patience: 3, minRate: 1e-5)
/// ```
public struct PlateauReduction {
    public var factor: Float, patience: Int, minRate: Float
    public init(factor: Float = 0.1, patience: Int = 10, minRate: Float = 0) {
        precondition(factor > 0 && factor < 1, "PlateauReduction: factor must be in (0, 1), got \(factor)")
        precondition(patience > 0, "PlateauReduction: patience must be positive, got \(patience)")
        precondition(minRate >= 0, "PlateauReduction: minRate must not be negative, got \(minRate)")
        (self.factor, self.patience, self.minRate) = (factor, patience, minRate)
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
///
/// Every training in Strata runs through `fit`; what differs between them is set on the trainer:
/// the `loss` of the model's output (or a `batchLoss` of the whole batch, for a loss that is not
/// on class scores), the `batchOrder` of each epoch (e.g. batches balanced per class) and a
/// `batchTransform` (e.g. augmentation), both drawing from the trainer's `generator`.
///
/// ```swift
/// trainer.generator = RandomGenerator(seed: 7)
/// trainer.batchOrder = { _, rng in                      // any [[Int]] per epoch: here pairs
///     let p = rng.permutation(n); return stride(from: 0, to: n - 1, by: 2).map { [p[$0], p[$0 + 1]] }
/// }
/// trainer.batchTransform = { b, rng in Batch(inputs: aug.apply(b.inputs, rng: &rng), labels: b.labels, indices: b.indices) }
/// trainer.batchLoss = { b in (loss: tripletLoss(net.embed(b.inputs), b.labels), scores: nil) }
/// ```
public final class Trainer {
    public let model: Module
    public let optimizer: Optimizer
    /// Written into every saved model file (its history is filled in by `fit`).
    public var info: ModelInfo
    /// Loss of a batch from the model's output and the labels (default: mean cross-entropy).
    public var loss: (Tensor, [Int]) -> Tensor = { crossEntropy($0, $1) }
    /// The training loss of a whole batch, when it is not `loss(model(inputs), labels)` (a metric
    /// loss on embeddings, say), with the class scores its accuracy is counted on (nil: no
    /// accuracy; `trainAccuracy` is then 0). Validation still uses `loss` on the model's output.
    public var batchLoss: ((Batch) -> (loss: Tensor, scores: Tensor?))?
    /// The batches of each training epoch, as lists of example indices, drawn from `generator`
    /// (nil: the `DataLoader`'s shuffle, seeded per epoch by `FitOptions.seed`, in batches of
    /// `FitOptions.batchSize`).
    public var batchOrder: ((_ epoch: Int, _ rng: inout RandomGenerator) -> [[Int]])?
    /// Applied to each training batch before the model sees it (augmentation, say), drawing from
    /// `generator`. It runs on the loader's background thread, one batch after the other in order.
    public var batchTransform: ((Batch, inout RandomGenerator) -> Batch)?
    /// The random stream of `batchOrder` and `batchTransform`: each epoch draws its order, then
    /// transforms its batches in order. `fit` does not reseed it (set it before); checkpoints save
    /// it and resuming restores it, so a resumed run draws what an unbroken one would.
    public var generator = RandomGenerator(seed: 0)
    /// Called with each epoch's record once it is complete (after validation).
    public var onEpochEnd: ((EpochRecord) -> Void)?
    /// Called after each optimizer step with the step count so far and the batch's size
    /// (benchmarks time from a given step on).
    public var onStep: ((_ step: Int, _ batchSize: Int) -> Void)?
    public private(set) var history: [EpochRecord] = []
    /// Data-parallel training over several processes (nil: this process alone). Every process
    /// calls `fit` with the same data and options; `FitOptions.batchSize` is the batch of all the
    /// processes together, each taking its share of it (so N processes take the steps one process
    /// takes). Only rank 0 prints progress and writes the best model and checkpoints; metrics are
    /// summed over the processes; a non-finite loss on any process stops every process.
    public var dataParallel: DataParallel?
    /// Training stops when a batch's loss exceeds this many times the first epoch's mean loss
    /// and `divergenceFloor`.
    public static let divergenceFactor = 100.0, divergenceFloor = 100.0

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
        let dp = dataParallel
        let (rank, world) = (dp?.rank ?? 0, dp?.size ?? 1)
        let reporter = ProgressReporter(style: rank == 0 ? options.progress : .none, toStderr: options.progressToStderr)
        // Under data parallelism each process takes its share of every batch of the whole.
        let loader = DataLoader(train, batchSize: (options.batchSize + world - 1) / world, shuffle: true, seed: options.seed,
                                rank: rank, worldSize: world)
        let baseLR = optimizer.learningRate
        if validation != nil && options.validationName != "val" { info.validationName = options.validationName }
        var startEpoch = 0
        var bestLoss = Double.infinity
        var badEpochs = 0
        var resumedStep: Int?
        // ReduceLROnPlateau: the factor on the base rate, and epochs without improvement since the last cut.
        var plateau = (scale: Float(1), wait: 0)
        if options.seedGlobalGenerator { RandomGenerator.manualSeed(options.seed &* 7919 &+ 1) }
        if let path = options.resumeFrom {
            let oldLR: Float?
            (startEpoch, bestLoss, badEpochs, resumedStep, oldLR, plateau) = try resume(from: path)
            reporter.message("resumed from \(path) after epoch \(startEpoch)\(world > 1 ? " on \(world) processes" : "")")
            if let oldLR, oldLR != baseLR { reporter.message("learning rate \(baseLR) from now on; the checkpoint trained with \(oldLR)") }
            // Every process read the file; this checks they hold the same weights.
            try dp?.synchronizeStates()
        }
        // Dropout draws from each process's own stream, rank 0's the one of a single process.
        if rank > 0 { RandomGenerator.global = RandomGenerator(seed: DataParallel.seed(RandomGenerator.global.next(), rank: rank)) }
        var step = resumedStep ?? startEpoch * loader.batchCount
        var firstLoss: Double?
        // The transform runs on the loader's thread while this one trains: the box hands the
        // generator over (each epoch's order is drawn here before its batches are made there).
        let stream = GeneratorBox(generator)
        let transform: ((Batch) -> Batch)? = batchTransform.map { t in { t($0, &stream.rng) } }
        for epoch in startEpoch..<options.epochs {
            model.train()
            let started = ProcessInfo.processInfo.systemUptime
            var lossSum = 0.0, correct = 0, scored = 0, seen = 0
            // Under data parallelism the order (the same on every process) and the transform (each
            // process its own stream, from the epoch's seed and the rank) draw from two streams.
            var epochTransform = transform
            let order = batchOrder.map { f in f(epoch, &stream.rng).map { Trainer.share(of: $0, rank: rank, world: world) } }
            if world > 1, let batchTransform {
                let own = GeneratorBox(RandomGenerator(seed: DataParallel.seed(stream.rng.next(), rank: rank)))
                epochTransform = { batchTransform($0, &own.rng) }
            }
            let batches = order.map { loader.epoch(batches: $0, transform: epochTransform) } ?? loader.epoch(epoch, transform: epochTransform)
            let total = batches.exampleCount * world, batchCount = batches.count
            var stepCounts: (Int, Int, Int)?
            for (b, batch) in batches.enumerated() {
                let base = options.reduceOnPlateau == nil ? baseLR : baseLR * plateau.scale
                if let schedule = options.schedule {
                    optimizer.learningRate = schedule.learningRate(at: step, base: base)
                } else if options.reduceOnPlateau != nil {
                    optimizer.learningRate = base
                }
                // The class scores are counted here and let go, so the backward pass can reuse
                // their buffers.
                let l: Tensor, hits: Int?
                if let batchLoss {
                    let (bl, scores) = batchLoss(batch)
                    (l, hits) = (bl, scores.map { Trainer.hits($0, batch.labels) })
                } else {
                    let out = model(batch.inputs)
                    (l, hits) = (loss(out, batch.labels), Trainer.hits(out, batch.labels))
                }
                var value = l.item
                let n = batch.labels.count
                if let dp {
                    // The gradients are averaged, and the loss, counts and a non-finite flag summed,
                    // in the same all-reduce: every process then takes the same decision below.
                    optimizer.zeroGrad()
                    if value.isFinite { l.backward() }
                    dp.communicator.setActivity("gradient all-reduce at epoch \(epoch + 1), step \(b + 1)")
                    var sums = [value.isFinite ? Double(value) * Double(n) : 0, Double(n), value.isFinite ? 0 : 1,
                                Double(hits ?? 0), Double(hits == nil ? 0 : n)]
                    try dp.averageGradients(summing: &sums)
                    if sums[2] > 0 {
                        let place = value.isFinite ? "on \(Int(sums[2])) of \(world) processes" : "on this process (rank \(rank))"
                        throw StrataError("training stopped: the loss became NaN or infinite \(place) at epoch \(epoch + 1), step \(b + 1) (learning rate \(optimizer.learningRate)); a lower learning rate may help")
                    }
                    value = Float(sums[0] / Swift.max(sums[1], 1))
                    stepCounts = (Int(sums[1]), Int(sums[3]), Int(sums[4]))
                }
                guard value.isFinite else {
                    throw StrataError("training stopped: the loss became \(value.isNaN ? "NaN" : "infinite") at epoch \(epoch + 1), step \(b + 1) (learning rate \(optimizer.learningRate)); a lower learning rate may help")
                }
                // Divergence: far above where training started (the first epoch's mean loss, or
                // the first batch's during the first epoch), and above a floor so that a loss
                // near zero does not trip it.
                let reference = history.first?.trainLoss ?? firstLoss ?? Double(value)
                if firstLoss == nil { firstLoss = Double(value) }
                if Double(value) > Trainer.divergenceFactor * reference && Double(value) > Trainer.divergenceFloor {
                    throw StrataError(String(format: "training stopped: the loss diverged to %.3g at epoch %d, step %d, over %.0f times its start (%.3g; learning rate %g); a lower learning rate may help",
                                             Double(value), epoch + 1, b + 1, Trainer.divergenceFactor, reference, Double(optimizer.learningRate)))
                }
                if dp == nil {
                    optimizer.zeroGrad()
                    l.backward()
                }
                // Every 16th step (a pass over every gradient costs a tenth of a small MLP's step);
                // a non-finite gradient in between shows in the next loss.
                let gradNorm = step % 16 != 0 ? 0 : optimizer.parameters.reduce(0.0) { acc, p in p.grad.map { acc + sk_sum_squares($0.count, $0.data) } ?? acc }
                guard gradNorm.isFinite else {
                    throw StrataError("training stopped: a gradient became NaN or infinite at epoch \(epoch + 1), step \(b + 1) (learning rate \(optimizer.learningRate)); a lower learning rate may help")
                }
                if let c = options.clipNorm { clipGradNorm(optimizer.parameters, maxNorm: c) }
                let stepStarted = Profiler.isEnabled ? Profiler.now() : 0
                optimizer.step()
                if Profiler.isEnabled { Profiler.add("optimizer step", Profiler.now() - stepStarted) }
                step += 1
                onStep?(step, batch.labels.count)
                if let (all, h, s) = stepCounts {
                    // The whole batch of every process.
                    lossSum += Double(value) * Double(all)
                    seen += all
                    (correct, scored) = (correct + h, scored + s)
                } else {
                    lossSum += Double(value) * Double(n)
                    seen += n
                    if let hits { (correct, scored) = (correct + hits, scored + n) }
                }
                reporter.update(epoch: epoch + 1, epochs: options.epochs, done: seen, total: total,
                                loss: lossSum / Double(seen), started: started, force: b == batchCount - 1)
            }
            generator = stream.rng
            let seconds = ProcessInfo.processInfo.systemUptime - started
            var record = EpochRecord(epoch: epoch + 1, trainLoss: lossSum / Double(max(seen, 1)), trainAccuracy: Double(correct) / Double(max(scored, 1)),
                                     seconds: seconds, samplesPerSecond: Double(seen) / max(seconds, 1e-9), learningRate: Double(optimizer.learningRate))
            // Every process validates and saves the same model: BatchNorm's running statistics,
            // gathered by each process on its own share, are averaged first.
            try dp?.averageBuffers()
            if let validation {
                let (vl, va) = try dp.map { try Trainer.evaluate(model, validation, loss: loss, dataParallel: $0) }
                    ?? Trainer.evaluate(model, validation, loss: loss)
                record.valLoss = vl
                record.valAccuracy = va
            }
            history.append(record)
            info.history = history
            reporter.epochLine(record, epochs: options.epochs, validationName: options.validationName)
            onEpochEnd?(record)
            let monitored = record.valLoss ?? record.trainLoss
            var saveError: Error?
            do {
                // Rank 0 writes; the others learn whether it could (a failed write stops them all).
                let better = monitored < bestLoss
                if better {
                    bestLoss = monitored
                    badEpochs = 0
                } else {
                    badEpochs += 1
                }
                if let r = options.reduceOnPlateau {
                    plateau.wait = better ? 0 : plateau.wait + 1
                    if plateau.wait >= r.patience {
                        plateau.wait = 0
                        let floor = baseLR > 0 ? r.minRate / baseLR : 1
                        let cut = Swift.max(plateau.scale * r.factor, floor)
                        if cut < plateau.scale {
                            plateau.scale = cut
                            reporter.message("learning rate cut to \(baseLR * cut)\(options.schedule != nil ? " (the schedule's base)" : ""): no improvement of the \(validation != nil ? "validation" : "training") loss for \(r.patience) epochs")
                        }
                    }
                }
                if let p = options.bestModelPath, rank == 0, better || !options.saveBestOnly { try SavedModel(model: model, info: info).save(to: p) }
                if let p = options.checkpointPath, rank == 0 {
                    try saveCheckpoint(p, epoch: epoch + 1, step: step, bestLoss: bestLoss, badEpochs: badEpochs, baseLR: baseLR, plateau: plateau)
                }
            } catch {
                saveError = error
            }
            if let dp {
                dp.communicator.setActivity("the end of epoch \(epoch + 1) (rank 0 writing the model)")
                let failed = try dp.allReduceSum([saveError == nil ? 0 : 1])[0]
                if let saveError { throw saveError }
                if failed > 0 { throw StrataError("training stopped: rank 0 could not write the model or checkpoint after epoch \(epoch + 1)") }
            } else if let saveError {
                throw saveError
            }
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

    /// Mean loss and accuracy over a dataset split between the processes of `dataParallel`:
    /// process `rank` evaluates examples `rank`, `rank + size`, ... and the sums are all-reduced,
    /// so every process returns the figures of the whole dataset.
    public static func evaluate<S: BatchSource>(_ model: Module, _ data: S, batchSize: Int = 1000, loss: (Tensor, [Int]) -> Tensor = { crossEntropy($0, $1) },
                                                dataParallel dp: DataParallel) throws -> (loss: Double, accuracy: Double) {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        var lossSum = 0.0, correct = 0
        let mine = Array(stride(from: dp.rank, to: data.count, by: dp.size))
        noGrad {
            for start in stride(from: 0, to: mine.count, by: batchSize) {
                let batch = data.batch(Array(mine[start..<Swift.min(start + batchSize, mine.count)]))
                let out = model(batch.inputs)
                lossSum += Double(loss(out, batch.labels).item) * Double(batch.labels.count)
                correct += hits(out, batch.labels)
            }
        }
        dp.communicator.setActivity("the validation metrics' all-reduce")
        let sums = try dp.allReduceSum([lossSum, Double(correct)])
        return (sums[0] / Double(max(data.count, 1)), sums[1] / Double(max(data.count, 1)))
    }

    /// Process `rank`'s share of a batch of all `world` processes: its positions `rank`,
    /// `rank + world`, ... (wrapping to the start, so every process gets as many).
    static func share(of batch: [Int], rank: Int, world: Int) -> [Int] {
        guard world > 1, !batch.isEmpty else { return batch }
        return (0..<((batch.count + world - 1) / world)).map { batch[(rank + $0 * world) % batch.count] }
    }

    /// Rows of `scores` whose largest entry is the label.
    static func hits(_ scores: Tensor, _ labels: [Int]) -> Int {
        var n = 0
        for (p, y) in zip(scores.argmaxIndices(), labels) where p == y { n += 1 }
        return n
    }

    // MARK: checkpoints

    private func saveCheckpoint(_ path: String, epoch: Int, step: Int, bestLoss: Double, badEpochs: Int, baseLR: Float,
                                plateau: (scale: Float, wait: Int)) throws {
        var extra: [String: Tensor] = [:]
        for (k, v) in optimizer.state() { extra["optimizer.\(k)"] = v }
        func words(_ g: RandomGenerator) -> String { g.state.map { String($0) }.joined(separator: ",") }
        let meta = ["checkpoint_epoch": String(epoch), "checkpoint_step": String(step), "checkpoint_best_loss": String(bestLoss),
                    "checkpoint_bad_epochs": String(badEpochs), "checkpoint_lr": String(optimizer.learningRate), "checkpoint_base_lr": String(baseLR),
                    "checkpoint_rng": words(RandomGenerator.global), "checkpoint_generator": words(generator),
                    "checkpoint_plateau_scale": String(plateau.scale), "checkpoint_plateau_wait": String(plateau.wait)]
        try SavedModel(model: model, info: info).save(to: path, extraTensors: extra, extraMetadata: meta)
    }

    private func resume(from path: String) throws -> (Int, Double, Int, Int?, Float?, (scale: Float, wait: Int)) {
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
        func words(_ key: String) -> [UInt64]? {
            let w = meta[key].map { $0.split(separator: ",").compactMap { UInt64($0) } }
            return w?.count == 4 ? w : nil
        }
        if let w = words("checkpoint_rng") { RandomGenerator.global.state = w }
        if let w = words("checkpoint_generator") { generator.state = w }
        // The learning rate is the one this trainer was made with (the command's --lr), not the
        // checkpoint's: a resumed run may lower it on purpose. Say so when they differ.
        let oldLR = (meta["checkpoint_base_lr"] ?? meta["checkpoint_lr"]).flatMap(Float.init)
        if let h = meta["history"], let hist = try? JSONDecoder().decode([EpochRecord].self, from: Data(h.utf8)) {
            history = hist
            info.history = hist
        }
        let best = meta["checkpoint_best_loss"].flatMap(Double.init) ?? .infinity
        let bad = meta["checkpoint_bad_epochs"].flatMap(Int.init) ?? 0
        // Checkpoints written before ReduceLROnPlateau have neither: the base rate, no wait.
        let scale = meta["checkpoint_plateau_scale"].flatMap(Float.init).flatMap { $0 > 0 && $0 <= 1 ? $0 : nil } ?? 1
        let wait = meta["checkpoint_plateau_wait"].flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil } ?? 0
        return (e, best, bad, meta["checkpoint_step"].flatMap(Int.init), oldLR, (scale, wait))
    }
}

/// The trainer's generator while an epoch's batches are transformed on the loader's thread.
private final class GeneratorBox: @unchecked Sendable {
    var rng: RandomGenerator
    init(_ rng: RandomGenerator) { self.rng = rng }
}
