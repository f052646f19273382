import ArgumentParser
import Foundation
import Strata
import StrataFaces

/// `strata bench gemm`: FP32 C = A·B for square N, GFLOP/s = 2N³ / seconds, best and median of
/// 3 timings of at least 0.3 s each after 3 warm-up calls (the protocol of gemm.py).
struct BenchGemm: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm", abstract: "FP32 square GEMM throughput.")

    @Option(help: "Thread count (default: 1 and 2).")
    var threads: [Int] = []

    @Option(help: "Matrix sizes.")
    var sizes: [Int] = [128, 256, 512, 1024, 2048]

    @Flag(help: "Print only the final JSON line.")
    var json = false

    func validate() throws {
        for t in threads where t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
        for n in sizes where n < 1 { throw ValidationError("--sizes must be positive, got \(n)") }
    }

    func run() throws {
        let threadList = threads.isEmpty ? [1, 2] : threads
        if !json {
            print("GFLOP/s best/median of 3 timings of >= 0.3 s; kernel \(Strata.cpuKernel); share of CPU used by other processes in []")
            print("threads" + sizes.map { "N=\($0)".leftPad(22) }.joined())
        }
        let results = GemmBenchmark.run(threads: threadList, sizes: sizes)
        if !json {
            print(threadList.map { t in
                "t=\(t)".rightPad(7) + results.filter { $0.threads == t }.map { String(format: "%9.1f/%-6.1f[%.2f]", $0.best, $0.median, $0.foreign).leftPad(22) }.joined()
            }.joined(separator: "\n"))
        }
        print(jsonLine(["benchmark": "gemm_fp32", "kernel": Strata.cpuKernel, "results": results.map {
            ["threads": $0.threads, "n": $0.n, "gflops": round1($0.best), "median": round1($0.median), "foreign_cpu": $0.foreign] as [String: Any]
        }]))
    }
}
