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
        var results: [[String: Any]] = []
        if !json {
            print("GFLOP/s best/median of 3 timings of >= 0.3 s; kernel \(Strata.cpuKernel); share of CPU used by other processes in []")
            print("threads" + sizes.map { "N=\($0)".leftPad(22) }.joined())
        }
        for t in threadList {
            Strata.numThreads = t
            var line = "t=\(t)".rightPad(7)
            for n in sizes {
                let a = Tensor.randn([n, n], seed: 1), b = Tensor.randn([n, n], seed: 2)
                var c = Tensor.zeros([n, n])
                let (best, median, foreign) = c.withUnsafeMutableBufferPointer { cp in
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            measureGemm(n: n, a: ap.baseAddress!, b: bp.baseAddress!, c: cp.baseAddress!)
                        }
                    }
                }
                results.append(["threads": t, "n": n, "gflops": round1(best), "median": round1(median), "foreign_cpu": foreign])
                line += String(format: "%9.1f/%-6.1f[%.2f]", best, median, foreign).leftPad(22)
            }
            if !json { print(line) }
        }
        let out: [String: Any] = ["benchmark": "gemm_fp32", "kernel": Strata.cpuKernel, "results": results]
        print(jsonLine(out))
    }
}

func measureGemm(n: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) -> (Double, Double, Double) {
    let mm = { sgemm(m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: c, ldc: n) }
    for _ in 0..<3 { mm() }
    var t = Date()
    mm()
    let once = max(Date().timeIntervalSince(t), 1e-9)
    let reps = max(1, Int((0.3 / once).rounded(.up)))
    var rates: [Double] = []
    let load = ForeignLoad()
    for _ in 0..<3 {
        t = Date()
        for _ in 0..<reps { mm() }
        rates.append(2 * pow(Double(n), 3) * Double(reps) / Date().timeIntervalSince(t) / 1e9)
    }
    rates.sort()
    return (rates.last!, rates[1], load.value())
}
