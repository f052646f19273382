import XCTest
import StrataCore

/// Kernels with one variant per instruction set, run on every variant the machine has and
/// compared with a double-precision reference.
final class KernelISATests: XCTestCase {
    /// The batch-of-one-or-two GEMM (linear layers at batch 1): plain and transposed B, widths
    /// and depths that are not multiples of the vector width, beta 0 and 1, 1 and 2 threads.
    func testSmallBatchGEMMOnEveryISA() {
        var rng = RandomGenerator(seed: 21)
        for isa in machineISAs {
            Strata.restrictKernels(to: isa == "avx512" ? nil : isa)
            defer { Strata.restrictKernels(to: nil) }
            XCTAssertEqual(Strata.cpuKernel, isa)
            for (m, n, k) in [(1, 10, 784), (1, 256, 784), (2, 131, 37), (1, 7, 5), (2, 64, 8), (1, 200, 129), (2, 1, 3)] {
                for transB in [false, true] {
                    for (beta, threaded) in [(Float(0), true), (Float(1), false), (Float(1), true)] {
                        let a = (0..<(m * k)).map { _ in rng.nextFloat() * 2 - 1 }
                        let b = (0..<(k * n)).map { _ in rng.nextFloat() * 2 - 1 }
                        let c0 = (0..<(m * n)).map { _ in rng.nextFloat() }
                        var c = c0
                        sgemm(transB: transB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: k, b: b, ldb: transB ? k : n, beta: beta,
                              c: &c, ldc: n, threaded: threaded)
                        var worst = 0.0
                        for i in 0..<m {
                            for j in 0..<n {
                                var s = 0.0
                                for p in 0..<k { s += Double(a[i * k + p]) * Double(transB ? b[j * k + p] : b[p * n + j]) }
                                let want = 0.5 * s + Double(beta) * Double(c0[i * n + j])
                                worst = max(worst, abs(Double(c[i * n + j]) - want))
                            }
                        }
                        XCTAssertLessThan(worst, 1e-5 * Double(k).squareRoot() * 4, "\(isa) m \(m) n \(n) k \(k) transB \(transB) beta \(beta)")
                    }
                }
            }
        }
    }

    /// The blocked GEMM (packing, micro-kernel, edges) with every transpose, on every ISA.
    func testBlockedGEMMOnEveryISA() {
        var rng = RandomGenerator(seed: 22)
        for isa in machineISAs {
            Strata.restrictKernels(to: isa == "avx512" ? nil : isa)
            defer { Strata.restrictKernels(to: nil) }
            // K = 517 and 784 take several equal K blocks on every kernel (784 was 3 × 256 + 16).
            for (m, n, k) in [(37, 45, 300), (100, 129, 70), (7, 33, 9), (64, 64, 64), (13, 200, 517), (64, 40, 784)] {
                for (transA, transB) in [(false, false), (false, true), (true, false), (true, true)] {
                    let a = (0..<(m * k)).map { _ in rng.nextFloat() * 2 - 1 }
                    let b = (0..<(k * n)).map { _ in rng.nextFloat() * 2 - 1 }
                    var c = [Float](repeating: 0, count: m * n)
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: transA ? m : k, b: b, ldb: transB ? k : n,
                          c: &c, ldc: n)
                    var worst = 0.0
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = 0.0
                            for p in 0..<k {
                                s += Double(transA ? a[p * m + i] : a[i * k + p]) * Double(transB ? b[j * k + p] : b[p * n + j])
                            }
                            worst = max(worst, abs(Double(c[i * n + j]) - s))
                        }
                    }
                    XCTAssertLessThan(worst, 1e-5 * Double(k).squareRoot() * 4, "\(isa) \(m)x\(n)x\(k) transA \(transA) transB \(transB)")
                }
            }
        }
    }
}
