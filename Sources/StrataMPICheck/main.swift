// strata-mpi-check: checks StrataDistributed's collectives on real processes. Run it under
// `mpirun -np 2` (or more); `make test-distributed` does, over shared memory and over TCP alone.
// Every process checks its own results; the failure counts are summed over the processes, rank 0
// prints one line per check, and every process exits 1 when any check failed anywhere.
import Foundation
import StrataCore
import StrataDistributed
import StrataNN

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("strata-mpi-check: error: \(message)\n".utf8))
    exit(1)
}

if CommandLine.arguments.count > 1 {
    fail("takes no arguments, got \(CommandLine.arguments.dropFirst().joined(separator: " ")) (run: mpirun -np 2 strata-mpi-check)")
}
guard ProcessGroup.launchedByMPIRun else {
    fail("not started by mpirun: run it as `mpirun -np 2 strata-mpi-check` (as root add --allow-run-as-root)")
}

/// The value process `rank` puts at `index`: a small whole number, different on each process,
/// so that float sums over a few thousand processes are exact.
func seeded(rank: Int, index: Int) -> Float {
    Float((index &* 31 &+ rank &* 17) % 251 + rank)
}

func floats(_ n: Int) -> String { n == 1 ? "1 float" : "\(n) floats" }

do {
    let world = try ProcessGroup.world()
    guard world.size >= 2 else { fail("needs at least 2 processes, got \(world.size) (mpirun -np 2 strata-mpi-check)") }
    var passed = 0, failed = 0

    /// Runs one check on every process: `body` returns nil when the result is right on this
    /// process, else what was wrong. The failures are summed over the processes.
    func check(_ name: String, _ body: () throws -> String?) throws {
        let start = Date()
        let problem = try body()
        let seconds = Date().timeIntervalSince(start)
        if let problem { print("rank \(world.rank): FAIL \(name): \(problem)") }
        var failures: [Float] = [problem == nil ? 0 : 1]
        try world.allReduceSum(&failures)
        if failures[0] == 0 { passed += 1 } else { failed += 1 }
        if world.rank == 0 {
            let verdict = failures[0] == 0 ? "PASS" : "FAIL on \(Int(failures[0])) of \(world.size) processes"
            print("\(verdict) \(name) (\(String(format: "%.3f", seconds)) s on rank 0)")
        }
    }

    /// The first index where `got` differs from `expected`, described, or nil.
    func firstDifference(_ got: [Float], _ expected: (Int) -> Float) -> String? {
        var mismatches = 0, first = -1
        for i in got.indices where got[i] != expected(i) {
            if first < 0 { first = i }
            mismatches += 1
        }
        guard first >= 0 else { return nil }
        return "\(mismatches) of \(got.count) values wrong, first at \(first): \(got[first]), expected \(expected(first))"
    }

    if world.rank == 0 { print("strata-mpi-check: \(world.size) processes") }
    try check("barrier") { try world.barrier(); return nil }

    // In-place all-reduce: the sum of every process's seeded buffer, against the sum computed
    // here in integers, for sizes from 1 to 10^7, odd ones included.
    let expectedSum = { (i: Int) -> Float in Float((0..<world.size).reduce(0) { $0 + Int(seeded(rank: $1, index: i)) }) }
    for count in [1, 2, 3, 7, 1000, 4097, 65537, 1_000_003, 10_000_000] {
        try check("all-reduce (sum) of \(floats(count))") {
            var buffer = (0..<count).map { seeded(rank: world.rank, index: $0) }
            try world.allReduceSum(&buffer)
            return firstDifference(buffer, expectedSum)
        }
    }
    // Buffers longer than one MPI call carries go in several calls; small calls show the seams.
    for (count, perCall) in [(4097, 1000), (65537, 4096)] {
        try check("all-reduce (sum) of \(count) floats in calls of \(perCall)") {
            var buffer = (0..<count).map { seeded(rank: world.rank, index: $0) }
            try world.allReduceSum(&buffer, maxElementsPerCall: perCall)
            return firstDifference(buffer, expectedSum)
        }
    }

    // Broadcast: the root's values reach every process, from rank 0 and from the last rank.
    for (count, root, perCall) in [(1, 0, ProcessGroup.maxElementsPerCall), (65537, 0, ProcessGroup.maxElementsPerCall),
                                   (1_000_003, world.size - 1, ProcessGroup.maxElementsPerCall), (4097, 0, 1000)] {
        let calls = perCall == ProcessGroup.maxElementsPerCall ? "" : " in calls of \(perCall)"
        try check("broadcast of \(floats(count)) from rank \(root)\(calls)") {
            var buffer = (0..<count).map { seeded(rank: world.rank, index: $0) }
            try world.broadcast(&buffer, root: root, maxElementsPerCall: perCall)
            return firstDifference(buffer) { seeded(rank: root, index: $0) }
        }
    }

    // All-gather: every process's values, in rank order.
    for count in [1, 7, 65537] {
        try check("all-gather of \(floats(count)) from each process") {
            let mine = (0..<count).map { seeded(rank: world.rank, index: $0) }
            let all = try world.allGather(mine)
            guard all.count == count * world.size else { return "got \(all.count) floats, expected \(count * world.size)" }
            return firstDifference(all) { seeded(rank: $0 / count, index: $0 % count) }
        }
    }

    // A bad call is an MPIError with MPI's own text, not an abort of every process.
    try check("broadcast from a root that is not a process throws MPIError") {
        var buffer: [Float] = [1, 2, 3]
        do {
            try world.broadcast(&buffer, root: world.size + 5)
            return "no error"
        } catch let error as MPIError {
            guard error.code != nil, error.message.contains("root \(world.size + 5)") else { return "unexpected error: \(error)" }
            if world.rank == 0 { print("  (the error reads: \(error))") }
            return nil
        }
    }
    try check("all-gather into a buffer of the wrong size throws MPIError") {
        let input: [Float] = [1, 2]
        var output = [Float](repeating: 0, count: 3)
        do {
            try input.withUnsafeBufferPointer { inp in try output.withUnsafeMutableBufferPointer { try world.allGather(inp, into: $0) } }
            return "no error"
        } catch let error as MPIError {
            return error.message.contains("needs room for \(2 * world.size) floats, got 3") ? nil : "unexpected error: \(error)"
        }
    }

    // Data-parallel training: 20 steps with batch B / size on each process take one process's
    // 20 steps with batch B (the reference, trained by rank 0 alone on the same data), per tensor
    // within 1e-5 of its largest value. Synthetic images (Gaussian pixels, seeded labels) of
    // Fashion-MNIST's shape; the check is about the arithmetic, not the accuracy.
    // The CNN is judged after its first step and its 20 are reported: through max pooling a
    // rounding difference can flip which input wins a near-tie, which moves a gradient element
    // by far more than rounding, and momentum carries it on (held to AVX2, the two runs agreed to
    // 3e-7 for 6 steps, then jumped to 4e-5 at step 7 and reached 0.04 by step 20). One step
    // from the same weights has no such history: it is the averaging itself.
    if let t = DataParallel.threadsPerProcess() { Strata.numThreads = t }
    let perRank = 16, batch = perRank * world.size, steps = 20
    var rng = RandomGenerator(seed: 2024)
    let n = batch * steps
    let images = TensorDataset(Tensor((0..<(n * 784)).map { _ in rng.nextNormal() }, shape: [n, 1, 28, 28]), labels: (0..<n).map { _ in rng.nextInt(10) })
    for (name, build) in [("MLP", ModelZoo.fashionMLP), ("CNN", ModelZoo.fashionCNN)] {
        for adam in [false, true] {
            let judgedAfter = name == "CNN" ? 1 : steps
            let what = adam ? "\(steps) steps of the Fashion-MNIST \(name) with Adam, batch \(perRank) on each of \(world.size) processes, against one process's with batch \(batch) (reported, not judged)"
                : "\(steps) steps of the Fashion-MNIST \(name) with SGD with momentum, batch \(perRank) on each of \(world.size) processes, equal one process's with batch \(batch) within 1e-5"
                    + (judgedAfter < steps ? " after \(judgedAfter) step (\(steps): reported)" : "")
            try check(what) {
                // The weights after step `judgedAfter`, and after the last.
                func train(_ dp: Bool) throws -> (judged: [String: [Float]], last: [String: [Float]]) {
                    // Each rank draws its own weights; data parallelism starts from rank 0's.
                    RandomGenerator.manualSeed(dp ? 7 + world.rank : 7)
                    let net = build()
                    let opt: Optimizer = adam ? Adam(net.parameters(), lr: 1e-3) : SGD(net.parameters(), lr: 0.05, momentum: 0.9)
                    let trainer = Trainer(model: net, optimizer: opt, info: ModelZoo.fashionInfo(net))
                    if dp { trainer.dataParallel = try DataParallel(net, communicator: world) }
                    var options = FitOptions(epochs: 1, batchSize: batch, seed: 11)
                    options.progress = .none
                    var taken = 0
                    var judged: [String: [Float]] = [:]
                    trainer.onStep = { step, _ in
                        taken = step
                        if step == judgedAfter { judged = net.stateDict().mapValues { $0.scalars } }
                    }
                    try trainer.fit(images, options: options)
                    guard taken == steps else { throw MPIError("rank \(world.rank) took \(taken) steps, expected \(steps)") }
                    return (judged, net.stateDict().mapValues { $0.scalars })
                }
                // The largest difference of a tensor relative to its largest value, and where.
                func difference(_ x: [String: [Float]], _ y: [String: [Float]]) -> (Double, String) {
                    var worst = 0.0, worstName = ""
                    for (key, a) in x {
                        let b = y[key]!
                        let scale = Double(b.map(abs).max() ?? 0)
                        let diff = Double(zip(a, b).map { abs($0 - $1) }.max() ?? 0)
                        if diff / max(scale, 1e-30) > worst { (worst, worstName) = (diff / max(scale, 1e-30), key) }
                    }
                    return (worst, worstName)
                }
                let parallel = try train(true)
                guard world.rank == 0 else { return nil }
                let single = try train(false)
                let (last, lastName) = difference(parallel.last, single.last)
                let (worst, worstName) = judgedAfter == steps ? (last, lastName) : difference(parallel.judged, single.judged)
                if judgedAfter < steps { print(String(format: "  (after %d step: largest difference %.2g, in %@)", judgedAfter, worst, worstName)) }
                print(String(format: "  (largest difference %.2g of the tensor's largest value, in %@)", last, lastName))
                // Adam is reported, not judged: its first steps move every weight by ±lr whatever
                // the gradient's size, so a gradient that is a near-cancelling sum (its rounding,
                // which depends on the order of the additions, as large as itself) moves its
                // weight by up to 2 lr one way or the other. That is float arithmetic, not the
                // averaging: SGD, whose step is proportional to the gradient, holds to 1e-5.
                if adam { return nil }
                return worst <= 1e-5 ? nil : String(format: "%@ differs by %.3g of its largest value (allowed 1e-5)", worstName, worst)
            }
        }
    }

    try ProcessGroup.finalize()
    if world.rank == 0 { print("strata-mpi-check: \(passed) passed, \(failed) failed") }
    exit(failed == 0 ? 0 : 1)
} catch {
    fail("\(error)")
}
