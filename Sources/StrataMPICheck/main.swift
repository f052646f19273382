// strata-mpi-check: checks StrataDistributed's collectives on real processes. Run it under
// `mpirun -np 2` (or more); `make test-distributed` does, over shared memory and over TCP alone.
// Every process checks its own results; the failure counts are summed over the processes, rank 0
// prints one line per check, and every process exits 1 when any check failed anywhere.
import Foundation
import StrataDistributed

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

    try ProcessGroup.finalize()
    if world.rank == 0 { print("strata-mpi-check: \(passed) passed, \(failed) failed") }
    exit(failed == 0 ? 0 : 1)
} catch {
    fail("\(error)")
}
