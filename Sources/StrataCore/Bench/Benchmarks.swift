import Foundation

/// Process measurements for benchmarks, as the reference scripts in ../shared/bench/reference
/// take them.
public enum ProcessStats {
    /// Peak resident set size of this process (ru_maxrss), MiB.
    public static func peakRSSMiB() -> Double {
        var r = rusage()
        getrusage(RUSAGE_SELF.rawValue, &r)
        return (Double(r.ru_maxrss) / 1024 * 10).rounded() / 10
    }

    /// Current resident set size, MiB.
    public static func currentRSSMiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let pages = Double(s.split(separator: " ")[1]) ?? 0
        return (pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576 * 10).rounded() / 10
    }

    public static func now() -> Double { ProcessInfo.processInfo.systemUptime }

    /// The median of a non-empty list.
    public static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// Share of all CPU time that other processes used since creation (as the reference's quiet.py).
public struct ForeignLoad {
    private let busy0: Double, total0: Double, own0: Double

    public init() {
        (busy0, total0) = ForeignLoad.ticks()
        own0 = ForeignLoad.ownTicks()
    }

    public func value() -> Double {
        let (b1, t1) = ForeignLoad.ticks()
        let own = ForeignLoad.ownTicks() - own0
        let v = max(0, (b1 - busy0 - own) / max(1, t1 - total0))
        return (v * 1000).rounded() / 1000
    }

    static func ticks() -> (Double, Double) {
        guard let s = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = s.split(separator: "\n").first else { return (0, 1) }
        let f = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        let total = f.reduce(0, +)
        return (total - f[3] - f[4], total)
    }

    static func ownTicks() -> Double {
        var r = rusage()
        getrusage(RUSAGE_SELF.rawValue, &r)
        let secs = Double(r.ru_utime.tv_sec) + Double(r.ru_utime.tv_usec) / 1e6 + Double(r.ru_stime.tv_sec) + Double(r.ru_stime.tv_usec) / 1e6
        return secs * Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// FP32 GEMM speed, C = A·B for square N: GFLOP/s = 2N³ / seconds, best and median of 3
/// timings of at least 0.3 s each after 3 warm-up products, as `numpy_gemm.py` measures.
public enum GemmBenchmark {
    public struct Result {
        public let threads: Int, n: Int
        public let best: Double, median: Double
        /// Share of the CPU other processes used meanwhile.
        public let foreign: Double
    }

    /// Every size at every thread count, in that order.
    public static func run(threads: [Int], sizes: [Int]) -> [Result] {
        threads.flatMap { t in
            Strata.numThreads = t
            return sizes.map { n in
                let (best, median, foreign) = measure(n: n)
                return Result(threads: t, n: n, best: best, median: median, foreign: foreign)
            }
        }
    }

    public static func measure(n: Int) -> (best: Double, median: Double, foreign: Double) {
        let a = Tensor.randn([n, n], seed: 1), b = Tensor.randn([n, n], seed: 2)
        var c = Tensor.zeros([n, n])
        return c.withUnsafeMutableBufferPointer { cp in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    time(n: n) { sgemm(m: n, n: n, k: n, a: ap.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, c: cp.baseAddress!, ldc: n) }
                }
            }
        }
    }

    static func time(n: Int, _ mm: () -> Void) -> (Double, Double, Double) {
        for _ in 0..<3 { mm() }
        var t = ProcessStats.now()
        mm()
        let once = max(ProcessStats.now() - t, 1e-9)
        let reps = max(1, Int((0.3 / once).rounded(.up)))
        var rates: [Double] = []
        let load = ForeignLoad()
        for _ in 0..<3 {
            t = ProcessStats.now()
            for _ in 0..<reps { mm() }
            rates.append(2 * pow(Double(n), 3) * Double(reps) / (ProcessStats.now() - t) / 1e9)
        }
        rates.sort()
        return (rates.last!, rates[1], load.value())
    }
}
