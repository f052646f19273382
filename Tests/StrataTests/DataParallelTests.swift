import Foundation
import XCTest
import CStrata
@testable import StrataCore
@testable import StrataNN

/// The members of one data-parallel group as threads of this process: a `Communicator` without
/// MPI, so DataParallel and the Trainer's data-parallel path are tested by plain `swift test`.
/// Each collective: every member puts its buffer in its slot, waits for the others, computes its
/// result from the slots (sums in rank order, so every member gets the same bits), waits again,
/// and only then writes its own buffer.
final class ThreadCommunicator: Communicator, @unchecked Sendable {
    final class Hub: @unchecked Sendable {
        let size: Int
        let condition = NSCondition()
        var arrived = 0, generation = 0
        var slots: [UnsafeMutableBufferPointer<Float>?]
        init(size: Int) {
            self.size = size
            slots = Array(repeating: nil, count: size)
        }

        func wait() {
            condition.lock()
            let g = generation
            arrived += 1
            if arrived == size {
                (arrived, generation) = (0, generation + 1)
                condition.broadcast()
            } else {
                while generation == g { condition.wait() }
            }
            condition.unlock()
        }
    }

    let hub: Hub
    let rank: Int
    var size: Int { hub.size }
    private(set) var activities: [String] = []

    init(hub: Hub, rank: Int) {
        self.hub = hub
        self.rank = rank
    }

    /// Runs `body` on `size` threads, one per rank, and returns their results in rank order.
    static func run<R>(size: Int, _ body: @escaping (ThreadCommunicator) throws -> R) -> [Result<R, Error>] {
        let hub = Hub(size: size)
        let results = ResultBox<R>(size)
        let group = DispatchGroup()
        for r in 0..<size {
            group.enter()
            let t = Thread {
                results.set(r, Result { try body(ThreadCommunicator(hub: hub, rank: r)) })
                group.leave()
            }
            t.stackSize = 8 << 20
            t.start()
        }
        group.wait()
        return results.values.map { $0! }
    }

    private func exchange(_ buffer: UnsafeMutableBufferPointer<Float>, _ result: ([UnsafeMutableBufferPointer<Float>]) -> [Float]?) {
        hub.slots[rank] = buffer
        hub.wait()
        let out = result(hub.slots.map { $0! })
        hub.wait()
        if let out { for i in out.indices { buffer[i] = out[i] } }
        hub.wait()
    }

    func barrier() throws { hub.wait() }

    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        exchange(buffer) { slots in rank == root ? nil : Array(slots[root]) }
    }

    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        exchange(buffer) { slots in
            var sum = [Float](repeating: 0, count: buffer.count)
            for s in slots { for i in sum.indices { sum[i] += s[i] } }
            return sum
        }
    }

    func allGather(_ input: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) throws {
        let copy = UnsafeMutableBufferPointer<Float>.allocate(capacity: input.count)
        defer { copy.deallocate() }
        _ = copy.initialize(from: input)
        hub.slots[rank] = copy
        hub.wait()
        for (r, s) in hub.slots.enumerated() { for i in 0..<input.count { output[r * input.count + i] = s![i] } }
        hub.wait()
    }

    func setActivity(_ activity: String) { activities.append(activity) }
}

final class ResultBox<R>: @unchecked Sendable {
    private let lock = NSLock()
    var values: [Result<R, Error>?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
    func set(_ i: Int, _ r: Result<R, Error>) {
        lock.lock()
        values[i] = r
        lock.unlock()
    }
}

final class DataParallelTests: XCTestCase {
    func testThreadCommunicatorCollectives() throws {
        let results = ThreadCommunicator.run(size: 3) { c -> ([[Float]], [Double]) in
            var sum = [Float(c.rank + 1), 10 * Float(c.rank)]
            try sum.withUnsafeMutableBufferPointer { try c.allReduceSum($0) }
            var b: [Float] = c.rank == 2 ? [7, 8, 9] : [0, 0, 0]
            try b.withUnsafeMutableBufferPointer { try c.broadcast($0, root: 2) }
            let all = try c.allGather([Float(c.rank)])
            var d = [Double(c.rank) + 1e-6, 100_000.25]
            try c.allReduceSum(&d)
            return ([sum, b, all], d)
        }
        for r in results {
            let (v, d) = try r.get()
            XCTAssertEqual(v[0], [6, 30])
            XCTAssertEqual(v[1], [7, 8, 9])
            XCTAssertEqual(v[2], [0, 1, 2])
            // In double precision (a float alone holds 3.0000029 and 300000.75 at best).
            XCTAssertEqual(d[0], 3 + 3e-6, accuracy: 1e-11)
            XCTAssertEqual(d[1], 300_000.75, accuracy: 1e-9)
        }
    }

    /// Two Linear layers (and a BatchNorm, with `batchNorm`), drawn from the seeded generator.
    private func smallNet(seed: Int, batchNorm: Bool = false) -> Sequential {
        RandomGenerator.manualSeed(seed)
        return batchNorm ? Sequential(Linear(6, 8), BatchNorm1d(8), ReLU(), Linear(8, 3))
            : Sequential(Linear(6, 8), ReLU(), Linear(8, 3))
    }

    func testStartBroadcastsRankZerosWeightsAndBucketsInReverseOrder() throws {
        // Each rank draws other weights; after DataParallel's start they are rank 0's.
        let nets = (0..<3).map { smallNet(seed: 100 + $0, batchNorm: true) }
        for (i, n) in nets.enumerated() { n.namedStates().first { $0.0.hasSuffix("running_mean") }!.1.assign(Tensor([Float](repeating: Float(i), count: 8))) }
        let expected = nets[0].stateDict()
        let results = ThreadCommunicator.run(size: 3) { c in try DataParallel(nets[c.rank], communicator: c, bucketBytes: 200) }
        for (r, result) in results.enumerated() {
            let dp = try result.get()
            for (name, t) in nets[r].stateDict() { XCTAssertEqual(t.scalars, expected[name]!.scalars, "rank \(r) \(name)") }
            // 200 bytes = 50 floats per bucket, parameters from the last: [3], [3x8] (27 floats),
            // then the BatchNorm's [8] + [8] (16: 43), then [8] and [8x6] in buckets of their own.
            XCTAssertEqual(dp.buckets.map { $0.map(\.shape) }, [[[3], [3, 8], [8], [8]], [[8]], [[8, 6]]])
        }
    }

    func testModelsOfOtherShapesAreRefusedOnEveryRank() {
        let results = ThreadCommunicator.run(size: 2) { c in
            try DataParallel(c.rank == 0 ? Sequential(Linear(4, 2)) : Sequential(Linear(4, 3)), communicator: c)
        }
        for result in results {
            XCTAssertThrowsError(try result.get()) { XCTAssertTrue("\($0)".contains("rank 1 built a model of other tensors"), "\($0)") }
        }
    }

    func testGradientsAreAveragedAndSumsSummed() throws {
        let nets = (0..<2).map { _ in smallNet(seed: 1) }
        let results = ThreadCommunicator.run(size: 2) { c -> ([[Float]], [Double]) in
            let net = nets[c.rank]
            let dp = try DataParallel(net, communicator: c, bucketBytes: 64)
            for (k, p) in net.parameters().enumerated() where !(c.rank == 1 && k == 0) {
                p.grad = Tensor([Float](repeating: Float(c.rank * 10 + k), count: p.count), shape: p.shape)
            }
            var sums = [Double(c.rank) + 0.5, 1e7 + 1]
            try dp.averageGradients(summing: &sums)
            return (net.parameters().map { $0.grad?.scalars ?? [] }, sums)
        }
        for result in results {
            let (grads, sums) = try result.get()
            // Parameter 0 has no gradient on rank 1: it counts as zeros there.
            XCTAssertEqual(grads[0], [Float](repeating: 0, count: 48))
            for k in 1..<4 { XCTAssertEqual(grads[k], [Float](repeating: (Float(k) + Float(10 + k)) / 2, count: grads[k].count)) }
            XCTAssertEqual(sums, [2, 2e7 + 2])
        }
    }

    /// Random inputs of 6 features and labels 0 ..< 3.
    private func data(_ n: Int, seed: UInt64) -> TensorDataset {
        var rng = RandomGenerator(seed: seed)
        return TensorDataset(Tensor((0..<(6 * n)).map { _ in rng.nextNormal() }, shape: [n, 6]), labels: (0..<n).map { _ in rng.nextInt(3) })
    }

    /// `fit` on 2 threads with half the batch each takes the steps of one process with the whole
    /// batch: the same weights after 3 epochs (up to float rounding), the same history.
    func testFitOnTwoRanksTakesTheStepsOfOneProcess() throws {
        let train = data(96, seed: 5), validation = data(30, seed: 6)
        var options = FitOptions(epochs: 3, batchSize: 16, seed: 3)
        options.progress = .none
        for adam in [false, true] {
            func trainer(_ net: Module) -> Trainer {
                let opt: Optimizer = adam ? Adam(net.parameters(), lr: 0.01) : SGD(net.parameters(), lr: 0.1, momentum: 0.9)
                return Trainer(model: net, optimizer: opt, info: ModelInfo(architecture: [:], classNames: ["a", "b", "c"], inputShape: [6]))
            }
            let single = smallNet(seed: 9)
            let reference = try trainer(single).fit(train, validation: validation, options: options)
            let nets = (0..<2).map { smallNet(seed: 9 + $0) }   // rank 1's own draw is replaced by rank 0's
            let results = ThreadCommunicator.run(size: 2) { c -> [EpochRecord] in
                let t = trainer(nets[c.rank])
                t.dataParallel = try DataParallel(nets[c.rank], communicator: c)
                return try t.fit(train, validation: validation, options: options)
            }
            let want = single.stateDict()
            for (r, result) in results.enumerated() {
                let history = try result.get()
                for (name, t) in nets[r].stateDict() {
                    let w = want[name]!.scalars, g = t.scalars
                    let scale = w.map(abs).max()!
                    let diff = zip(w, g).map { abs($0 - $1) }.max()!
                    XCTAssertLessThanOrEqual(diff, 1e-5 * scale, "adam \(adam) rank \(r) \(name)")
                }
                for (a, b) in zip(history, reference) {
                    XCTAssertEqual(a.trainLoss, b.trainLoss, accuracy: 1e-5)
                    XCTAssertEqual(a.trainAccuracy, b.trainAccuracy, accuracy: 1e-9)
                    XCTAssertEqual(a.valLoss!, b.valLoss!, accuracy: 1e-5)
                    XCTAssertEqual(a.valAccuracy!, b.valAccuracy!, accuracy: 1e-9)
                }
            }
        }
    }

    /// A checkpoint written by 2 ranks resumes on 1 process (and one written by 1 process on 2
    /// ranks): the weights after the next epoch are those of an unbroken run, up to rounding.
    func testACheckpointOfTwoRanksResumesOnOneProcessAndBack() throws {
        let train = data(96, seed: 12), validation = data(20, seed: 13)
        func options(_ epochs: Int, checkpoint: String? = nil, resume: String? = nil) -> FitOptions {
            var o = FitOptions(epochs: epochs, batchSize: 16, seed: 2)
            (o.progress, o.checkpointPath, o.resumeFrom) = (.none, checkpoint, resume)
            return o
        }
        func trainer(_ net: Module) -> Trainer {
            Trainer(model: net, optimizer: SGD(net.parameters(), lr: 0.1, momentum: 0.9),
                    info: ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: ["a", "b", "c"], inputShape: [6]))
        }
        let unbroken = smallNet(seed: 21)
        try trainer(unbroken).fit(train, validation: validation, options: options(2))
        let want = unbroken.stateDict()
        func assertClose(_ got: [String: Tensor], _ what: String) {
            for (name, t) in got {
                let w = want[name]!.scalars
                let diff = zip(w, t.scalars).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(diff, 1e-5 * w.map(abs).max()!, "\(what) \(name)")
            }
        }
        // 2 ranks write epoch 1; 1 process resumes for epoch 2.
        let ck2 = testTemp("dp-ck2.safetensors"), ck1 = testTemp("dp-ck1.safetensors")
        let nets = (0..<2).map { _ in smallNet(seed: 21) }
        for r in ThreadCommunicator.run(size: 2, { c -> Void in
            let t = trainer(nets[c.rank])
            t.dataParallel = try DataParallel(nets[c.rank], communicator: c)
            try t.fit(train, validation: validation, options: options(1, checkpoint: ck2))
        }) { try r.get() }
        let resumed = smallNet(seed: 99)
        let history = try trainer(resumed).fit(train, validation: validation, options: options(2, resume: ck2))
        XCTAssertEqual(history.count, 2)
        assertClose(resumed.stateDict(), "2 ranks -> 1 process")
        // 1 process writes epoch 1; 2 ranks resume for epoch 2.
        try trainer(smallNet(seed: 21)).fit(train, validation: validation, options: options(1, checkpoint: ck1))
        let nets2 = (0..<2).map { smallNet(seed: 50 + $0) }
        for r in ThreadCommunicator.run(size: 2, { c -> Void in
            let t = trainer(nets2[c.rank])
            t.dataParallel = try DataParallel(nets2[c.rank], communicator: c)
            try t.fit(train, validation: validation, options: options(2, resume: ck1))
        }) { try r.get() }
        assertClose(nets2[0].stateDict(), "1 process -> 2 ranks, rank 0")
        assertClose(nets2[1].stateDict(), "1 process -> 2 ranks, rank 1")
    }

    /// A trainer's own batch order (face training's) is shared batch by batch: 2 ranks with
    /// half of each batch take one process's steps.
    func testABatchOrderIsSharedBatchByBatch() throws {
        XCTAssertEqual(Trainer.share(of: [5, 6, 7, 8, 9], rank: 0, world: 2), [5, 7, 9])
        XCTAssertEqual(Trainer.share(of: [5, 6, 7, 8, 9], rank: 1, world: 2), [6, 8, 5])
        XCTAssertEqual(Trainer.share(of: [5, 6], rank: 1, world: 1), [5, 6])
        let train = data(60, seed: 14)
        var options = FitOptions(epochs: 2, batchSize: 999, seed: 4)
        options.progress = .none
        func trainer(_ net: Module) -> Trainer {
            let t = Trainer(model: net, optimizer: SGD(net.parameters(), lr: 0.1), info: ModelInfo(architecture: [:], classNames: ["a", "b", "c"], inputShape: [6]))
            // Batches of 12 in a drawn order: even sizes, so the shares are equal.
            t.batchOrder = { _, rng in let p = rng.permutation(60); return stride(from: 0, to: 60, by: 12).map { Array(p[$0..<($0 + 12)]) } }
            t.generator = RandomGenerator(seed: 8)
            return t
        }
        let single = smallNet(seed: 31)
        try trainer(single).fit(train, options: options)
        let nets = (0..<2).map { _ in smallNet(seed: 31) }
        for r in ThreadCommunicator.run(size: 2, { c -> Void in
            let t = trainer(nets[c.rank])
            t.dataParallel = try DataParallel(nets[c.rank], communicator: c)
            try t.fit(train, options: options)
        }) { try r.get() }
        for (name, w) in single.stateDict() {
            let diff = zip(w.scalars, nets[1].stateDict()[name]!.scalars).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(diff, 1e-5 * w.scalars.map(abs).max()!, name)
        }
    }

    /// BatchNorm's running statistics (per rank during the epoch) are averaged before validation,
    /// so both ranks end with the same buffers, which are the mean of what each would hold.
    func testBatchNormRunningStatisticsAreAveraged() throws {
        let train = data(64, seed: 7)
        var options = FitOptions(epochs: 1, batchSize: 16, seed: 1)
        options.progress = .none
        let nets = (0..<2).map { _ in smallNet(seed: 4, batchNorm: true) }
        let results = ThreadCommunicator.run(size: 2) { c -> [String: Tensor] in
            let t = Trainer(model: nets[c.rank], optimizer: SGD(nets[c.rank].parameters(), lr: 0.05),
                            info: ModelInfo(architecture: [:], classNames: ["a", "b", "c"], inputShape: [6]))
            t.dataParallel = try DataParallel(nets[c.rank], communicator: c)
            try t.fit(train, options: options)
            return nets[c.rank].stateDict()
        }
        let a = try results[0].get(), b = try results[1].get()
        for (name, t) in a { XCTAssertEqual(t.scalars, b[name]!.scalars, name) }
        XCTAssertNotEqual(a["1.running_mean"]!.scalars, [Float](repeating: 0, count: 8))
    }

    /// A NaN loss on one rank stops both, with the same step named, instead of leaving one waiting.
    func testANonFiniteLossOnOneRankStopsEveryRank() throws {
        let train = data(64, seed: 8)
        var options = FitOptions(epochs: 1, batchSize: 16, seed: 1)
        options.progress = .none
        let nets = (0..<2).map { _ in smallNet(seed: 4) }
        let results = ThreadCommunicator.run(size: 2) { c -> [EpochRecord] in
            let t = Trainer(model: nets[c.rank], optimizer: SGD(nets[c.rank].parameters(), lr: 0.05),
                            info: ModelInfo(architecture: [:], classNames: ["a", "b", "c"], inputShape: [6]))
            t.dataParallel = try DataParallel(nets[c.rank], communicator: c)
            var calls = 0
            t.loss = { out, labels in
                calls += 1
                let l = crossEntropy(out, labels)
                return c.rank == 1 && calls == 3 ? l * Float.nan : l
            }
            return try t.fit(train, options: options)
        }
        XCTAssertThrowsError(try results[0].get()) { XCTAssertTrue("\($0)".contains("NaN or infinite on 1 of 2 processes at epoch 1, step 3"), "\($0)") }
        XCTAssertThrowsError(try results[1].get()) { XCTAssertTrue("\($0)".contains("on this process (rank 1) at epoch 1, step 3"), "\($0)") }
    }

    func testRankSeedsAndThreadsPerProcess() {
        XCTAssertEqual(DataParallel.seed(42, rank: 0), 42)
        XCTAssertNotEqual(DataParallel.seed(42, rank: 1), DataParallel.seed(42, rank: 2))
        XCTAssertNil(DataParallel.threadsPerProcess(environment: [:]))
        XCTAssertNil(DataParallel.threadsPerProcess(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "2", "STRATA_NUM_THREADS": "4"]))
        let cores = ProcessInfo.processInfo.activeProcessorCount
        XCTAssertEqual(DataParallel.threadsPerProcess(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "2"]), max(1, Int(strata_machine_cores()) / 2))
        XCTAssertEqual(DataParallel.threadsPerProcess(environment: ["OMPI_COMM_WORLD_LOCAL_SIZE": "\(cores * 4)"]), 1)
        let two = ["OMPI_COMM_WORLD_LOCAL_SIZE": "2"], four = ["OMPI_COMM_WORLD_LOCAL_SIZE": "4"]
        XCTAssertEqual(DataParallel.threadsPerProcess(environment: two, machineCores: 32, boundCores: 32), 16, "unbound: a share")
        XCTAssertEqual(DataParallel.threadsPerProcess(environment: two, machineCores: 2, boundCores: 1), 1, "bound to a core each")
        XCTAssertEqual(DataParallel.threadsPerProcess(environment: four, machineCores: 32, boundCores: 16), 8, "2 per socket of 16")
        XCTAssertEqual(DataParallel.threadsPerProcess(environment: two, machineCores: 4, boundCores: 4), 2, "a quota of 4 cores (affinity 4 at most)")
    }
}

/// `--distributed` on the `strata` command, without MPI: what it says when not started by mpirun,
/// and when strata-mpi is missing beside it (the run under mpirun is `make test-distributed`'s).
final class DistributedCLITests: XCTestCase {
    func testDistributedWithoutMPIRunSaysHowToLaunch() throws {
        for args in [["train", "--distributed", "--epochs", "1"], ["faces", "train", "--data", "/nonexistent", "--distributed"],
                     ["bench", "train", "--distributed"]] {
            let (code, _, err) = try runStrata(args)
            XCTAssertEqual(code, 1, err)
            XCTAssertTrue(err.contains("--distributed trains over processes started by Open MPI: run it as `mpirun -np 2 strata \(args.joined(separator: " "))`"), err)
            XCTAssertEqual(err.split(separator: "\n").count, 1, err)
        }
        let (code, _, err) = try runStrata(["train", "--distributed", "--data", "cora"])
        XCTAssertEqual(code, 1, err)
        XCTAssertTrue(err.contains("--distributed trains fashion-mnist and mnist, not cora"), err)
    }

    /// A copy of strata alone in a folder, "started by mpirun" (OMPI_COMM_WORLD_SIZE set): it
    /// looks for strata-mpi beside itself and says how to build it.
    func testDistributedWithoutStrataMPISaysHowToBuildIt() throws {
        guard FileManager.default.isExecutableFile(atPath: strataBinary) else { throw XCTSkip("\(strataBinary) is not built") }
        let folder = testTemp("lone-strata")
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lone = (folder as NSString).appendingPathComponent("strata")
        try FileManager.default.copyItem(atPath: strataBinary, toPath: lone)
        var env = ProcessInfo.processInfo.environment
        env["OMPI_COMM_WORLD_SIZE"] = "2"
        let (code, _, err) = try runProcess(URL(fileURLWithPath: lone), ["train", "--distributed"], environment: env)
        XCTAssertEqual(code, 1, err)
        XCTAssertTrue(err.contains("--distributed needs strata-mpi (the strata command with Open MPI) beside \(lone)"), err)
        XCTAssertTrue(err.contains("make build-mpi"), err)
    }
}
