import Foundation
import StrataCore
import StrataNN

/// The workload of ../shared/bench/reference/train_fashion.py in Strata: batch 64, seed 0, Adam
/// 1e-3, pixels/255, the zoo's MLP (5 epochs) or CNN (3 epochs) over all 60,000 images through
/// `Trainer.fit`; samples/s counted from step 51 to the end; then test accuracy, inference at
/// batch 1000 (median of 3 passes after a warm-up pass), batch-1 latency (median of 200 calls
/// after 10 warm-up calls) and the peak resident set size of the whole process.
public struct TrainingBenchmark {
    public var model: String
    public var epochs: Int?
    public var dataDir: String?
    public var inference = true
    /// Lines of progress (one per epoch).
    public var log: (String) -> Void = { _ in }
    /// Data-parallel training over these processes: batch 64 in all, each process its share;
    /// samples/s count every process's examples.
    public var communicator: Communicator?

    public init(model: String) { self.model = model }

    public struct Result {
        public var trainSamplesPerSecond = 0.0
        public var epochSeconds: [Double] = [], epochLoss: [Double] = []
        public var steps = 0, parameters = 0
        public var testAccuracy: Double?, inferSamplesPerSecond: Double?, latencyMs: Double?
        public var rssAfterSetupMiB = 0.0
        public var foreignTrain = 0.0, foreignInfer: Double?
        /// Data-parallel runs: the processes, and the mean time per step spent averaging the
        /// gradients (buckets and all-reduce), in milliseconds, over the timed steps.
        public var processes = 1
        public var gradientMsPerStep: Double?
    }

    public func run() throws -> Result {
        guard let entry = ModelZoo.entry(model) else { throw StrataError("unknown model \(model) (known: \(ModelZoo.names.joined(separator: ", ")))") }
        let train = try FashionMNIST.load(.train, directory: dataDir), test = try FashionMNIST.load(.test, directory: dataDir)
        RandomGenerator.manualSeed(0)
        let net = entry.build()
        let trainer = Trainer(model: net, optimizer: Adam(net.parameters(), lr: 1e-3), info: entry.info(net))
        let dp = try communicator.map { try DataParallel(net, communicator: $0) }
        trainer.dataParallel = dp
        var r = Result()
        r.processes = communicator?.size ?? 1
        var gradientAtWarm = 0.0
        r.rssAfterSetupMiB = ProcessStats.currentRSSMiB()
        r.parameters = net.parameterCount
        var tWarm = 0.0, seen = 0
        trainer.onStep = { step, n in
            if step == 50 {
                tWarm = ProcessStats.now()
                gradientAtWarm = dp?.gradientSeconds ?? 0
            } else if step > 50 {
                seen += n * r.processes
            }
        }
        trainer.onEpochEnd = { [log] e in
            r.epochSeconds.append((e.seconds * 100).rounded() / 100)
            r.epochLoss.append((e.trainLoss * 10000).rounded() / 10000)
            log("epoch \(e.epoch): \(r.epochSeconds.last!) s, mean loss \(r.epochLoss.last!)")
        }
        var options = FitOptions(epochs: epochs ?? (model == "mlp" ? 5 : 3), batchSize: 64, seed: 0)
        options.progress = .none
        let load = ForeignLoad()
        try trainer.fit(train, options: options)
        r.trainSamplesPerSecond = Double(seen) / (ProcessStats.now() - tWarm)
        r.steps = options.epochs * ((train.count + 63) / 64)
        r.foreignTrain = load.value()
        if let dp { r.gradientMsPerStep = (dp.gradientSeconds - gradientAtWarm) * 1e3 / Double(max(dp.gradientCalls - 50, 1)) }
        guard inference else { return r }
        net.eval()
        let inferLoad = ForeignLoad()
        noGrad {
            // Inputs are converted outside the timed region, one batch at a time.
            let batch = { (i: Int) in test.batch(Array((i * 1000)..<((i + 1) * 1000))) }
            r.testAccuracy = Double((0..<10).map { i in
                let b = batch(i)
                return zip(net(b.inputs).argmaxIndices(), b.labels).filter { $0 == $1 }.count
            }.reduce(0, +)) / Double(test.count)
            let passes = (0..<3).map { _ in
                Double(test.count) / (0..<10).map { i in
                    let x = batch(i).inputs
                    let t = ProcessStats.now()
                    _ = net(x)
                    return ProcessStats.now() - t
                }.reduce(0, +)
            }
            r.inferSamplesPerSecond = ProcessStats.median(passes)
            let one = test.batch([0]).inputs
            let latencies = (0..<210).map { _ -> Double in
                let t = ProcessStats.now()
                _ = net(one)
                return ProcessStats.now() - t
            }
            r.latencyMs = ProcessStats.median(Array(latencies.dropFirst(10))) * 1e3
        }
        r.foreignInfer = inferLoad.value()
        return r
    }
}
