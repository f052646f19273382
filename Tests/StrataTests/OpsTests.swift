import Foundation
import XCTest
import CStrata
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// Forward values against hand-computed results or independent Double-precision references.
final class OpsTests: XCTestCase {
    func assertClose(_ t: Tensor, _ expected: [Float], shape: [Int]? = nil, tol: Float = 1e-5,
                     file: StaticString = #filePath, line: UInt = #line) {
        if let shape { XCTAssertEqual(t.shape, shape, file: file, line: line) }
        XCTAssertEqual(t.count, expected.count, file: file, line: line)
        for (a, b) in zip(t.scalars, expected) where !(Swift.abs(a - b) <= tol * Swift.max(1, Swift.abs(b))) {
            XCTFail("got \(t.scalars), expected \(expected)", file: file, line: line)
            return
        }
    }

    // MARK: creation

    func testCreation() {
        assertClose(Tensor.zeros([2, 2]), [0, 0, 0, 0], shape: [2, 2])
        assertClose(Tensor.ones([3]), [1, 1, 1])
        assertClose(Tensor.full([2], 7), [7, 7])
        assertClose(Tensor.arange(0, 5), [0, 1, 2, 3, 4])
        assertClose(Tensor.arange(1, 2, step: 0.25), [1, 1.25, 1.5, 1.75])
        assertClose(Tensor.eye(2), [1, 0, 0, 1])
        assertClose(Tensor([[1, 2], [3, 4]]), [1, 2, 3, 4], shape: [2, 2])
        XCTAssertEqual(Tensor(3).shape, [])
        XCTAssertEqual(Tensor([[1, 2], [3, 4]])[1, 0], 3)
    }

    func testSeededRandomIsReproducibleAndHasTheRightMoments() {
        XCTAssertEqual(Tensor.randn([100], seed: 7).scalars, Tensor.randn([100], seed: 7).scalars)
        XCTAssertNotEqual(Tensor.randn([100], seed: 7).scalars, Tensor.randn([100], seed: 8).scalars)
        let z = Tensor.randn([200_000], seed: 1).scalars.map(Double.init)
        let mean = z.reduce(0, +) / Double(z.count)
        let variance = z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(z.count)
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual(variance, 1, accuracy: 0.01)
        let u = Tensor.rand([200_000], low: -2, high: 4, seed: 3).scalars
        XCTAssertGreaterThanOrEqual(u.min()!, -2)
        XCTAssertLessThan(u.max()!, 4)
        XCTAssertEqual(Double(u.reduce(0, +)) / Double(u.count), 1, accuracy: 0.02)
        RandomGenerator.manualSeed(5)
        let a = Tensor.randn([10])
        RandomGenerator.manualSeed(5)
        XCTAssertEqual(a.scalars, Tensor.randn([10]).scalars)
    }

    // MARK: elementwise and broadcasting

    func testBroadcastingBinaryOps() {
        let col = Tensor([1, 2], shape: [2, 1]), row = Tensor([10, 20, 30])
        assertClose(col + row, [11, 21, 31, 12, 22, 32], shape: [2, 3])
        assertClose(row - col, [9, 19, 29, 8, 18, 28], shape: [2, 3])
        assertClose(col * row, [10, 20, 30, 20, 40, 60], shape: [2, 3])
        assertClose(row / col, [10, 20, 30, 5, 10, 15], shape: [2, 3])
        // [2, 1, 3] with [4, 1] -> [2, 4, 3]
        let a = Tensor.arange(6).reshape([2, 1, 3]), b = Tensor.arange(4).reshape([4, 1]) * 100
        let c = a + b
        XCTAssertEqual(c.shape, [2, 4, 3])
        for i in 0..<2 { for j in 0..<4 { for k in 0..<3 {
            XCTAssertEqual(c[i, j, k], Float(i * 3 + k) + Float(j * 100))
        } } }
        assertClose(Tensor([2, 3]).pow(Tensor([3, 2])), [8, 9])
        assertClose(Tensor([1, 5, 3]).maximum(Tensor([4])), [4, 5, 4])
        assertClose(Tensor([1, 5, 3]).minimum(Tensor([4])), [1, 4, 3])
        assertClose(Tensor([1, 2]) + 1, [2, 3])
        assertClose(2 / Tensor([4, 8]), [0.5, 0.25])
        XCTAssertEqual(Tensor.broadcastShape([8, 1, 6, 1], [7, 1, 5]), [8, 7, 6, 5])
    }

    func testLargeBroadcastUsesThreadsAndStaysExact() {
        // Big enough to go through the threaded path.
        let a = Tensor.randn([300, 257], seed: 1), b = Tensor.randn([257], seed: 2)
        let c = a + b
        for i in stride(from: 0, to: 300, by: 37) { for j in stride(from: 0, to: 257, by: 19) {
            XCTAssertEqual(c[i, j], a[i, j] + b[j])
        } }
    }

    func testComparisonsAndWhere() {
        let x = Tensor([1, 2, 3]), y = Tensor([2, 2, 2])
        assertClose(x.eq(y), [0, 1, 0])
        assertClose(x.ne(y), [1, 0, 1])
        assertClose(x.lt(y), [1, 0, 0])
        assertClose(x.le(y), [1, 1, 0])
        assertClose(x.gt(y), [0, 0, 1])
        assertClose(x.ge(y), [0, 1, 1])
        assertClose(Tensor.where(x.gt(1.5), x, Tensor([-1])), [-1, 2, 3])
    }

    func testUnaryAccuracyAgainstDoubleReference() {
        let xs = stride(from: -20.0, through: 20.0, by: 0.0137).map { Float($0) }
        let x = Tensor(xs)
        func check(_ t: Tensor, _ f: (Double) -> Double, _ name: String, domain: (Float) -> Bool = { _ in true }) {
            for (i, v) in xs.enumerated() where domain(v) {
                let ref = f(Double(v))
                let got = Double(t.scalars[i])
                XCTAssert(Swift.abs(got - ref) <= 3e-6 * Swift.max(1, Swift.abs(ref)), "\(name)(\(v)) = \(got), expected \(ref)")
            }
        }
        check(x.exp(), Foundation.exp, "exp")
        check(x.abs().log(), { Foundation.log(Swift.abs($0)) }, "log")
        check(x.abs().sqrt(), { Foundation.sqrt(Swift.abs($0)) }, "sqrt")
        check(x.tanh(), Foundation.tanh, "tanh")
        check(x.sigmoid(), { 1 / (1 + Foundation.exp(-$0)) }, "sigmoid")
        check(x.gelu(), { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }, "gelu")
        check(x.relu(), { Swift.max($0, 0) }, "relu")
        check(x.leakyRelu(0.2), { $0 > 0 ? $0 : 0.2 * $0 }, "leakyRelu")
        check(-x, { -$0 }, "neg")
        // Small arguments keep their relative accuracy (no cancellation).
        assertClose(Tensor([1e-6]).tanh(), [1e-6], tol: 1e-6)
        // Special values.
        let special = Tensor([Float.nan, 100, -200, 0, -1, .infinity])
        let e = special.exp().scalars, l = special.log().scalars
        XCTAssert(e[0].isNaN && e[1] == .infinity && e[2] == 0 && e[3] == 1)
        XCTAssert(l[0].isNaN && l[3] == -.infinity && l[4].isNaN && l[5] == .infinity)
        XCTAssert(Tensor([Float.nan]).relu().scalars[0].isNaN, "relu must keep NaN so a diverged loss is seen")
    }

    // MARK: reductions and softmax

    func testReductions() {
        let x = Tensor([[1, 2, 3], [4, 5, 6]])
        assertClose(x.sum(), [21], shape: [])
        assertClose(x.sum(axis: 0), [5, 7, 9], shape: [3])
        assertClose(x.sum(axis: 1, keepDims: true), [6, 15], shape: [2, 1])
        assertClose(x.mean(axis: -1), [2, 5])
        assertClose(x.max(axis: 0), [4, 5, 6])
        assertClose(x.min(axis: 1), [1, 4])
        assertClose(x.max(), [6])
        assertClose(x.argmax(axis: 1), [2, 2])
        assertClose(Tensor([3, 1, 3]).argmax(axis: 0), [0], shape: [])
        assertClose(x.argmin(axis: 0), [0, 0, 0])
        assertClose(x.variance(axes: [1]), [1, 1])
        assertClose(x.variance(axes: [1], unbiased: false), [2.0 / 3, 2.0 / 3])
        assertClose(x.logSumExp(axes: [1]), [Float(Foundation.log(Foundation.exp(1.0) + Foundation.exp(2.0) + Foundation.exp(3.0))),
                                             Float(Foundation.log(Foundation.exp(4.0) + Foundation.exp(5.0) + Foundation.exp(6.0)))])
        assertClose(Tensor([1000, 1000]).logSumExp(), [Float(1000 + Foundation.log(2.0))])
        // Non-adjacent axes: [2, 3, 4] reduced over 0 and 2.
        let y = Tensor.arange(24).reshape([2, 3, 4])
        var expected: [Float] = []
        for j in 0..<3 { var s: Float = 0; for i in 0..<2 { for k in 0..<4 { s += Float(i * 12 + j * 4 + k) } }; expected.append(s) }
        assertClose(y.sum(axes: [0, 2]), expected, shape: [3])
        assertClose(y.sum(axes: [2, 0], keepDims: true), expected, shape: [1, 3, 1])
        // Large reductions run on the threaded kernels; compare with a Double sum.
        let big = Tensor.randn([64, 3000], seed: 4)
        let rows = big.sum(axis: 1).scalars, cols = big.sum(axis: 0).scalars
        let v = big.scalars
        for r in [0, 31, 63] {
            let ref = (0..<3000).reduce(0.0) { $0 + Double(v[r * 3000 + $1]) }
            XCTAssertEqual(Double(rows[r]), ref, accuracy: 1e-3)
        }
        for c in [0, 1500, 2999] {
            let ref = (0..<64).reduce(0.0) { $0 + Double(v[$1 * 3000 + c]) }
            XCTAssertEqual(Double(cols[c]), ref, accuracy: 1e-4)
        }
    }

    func testSoftmax() {
        assertClose(Tensor([1, 2, 3]).softmax(), [0.09003057, 0.24472847, 0.66524096])
        assertClose(Tensor([1000, 1000, -1000]).softmax(), [0.5, 0.5, 0])
        assertClose(Tensor([0, Float(Foundation.log(3.0))]).logSoftmax(), [Float(-Foundation.log(4.0)), Float(Foundation.log(3.0 / 4.0))])
        let x = Tensor.randn([3, 5, 4], seed: 9)
        let s = x.softmax(axis: 1)
        assertClose(s.sum(axis: 1), [Float](repeating: 1, count: 12))
        assertClose(x.logSoftmax(axis: 1).exp(), s.scalars, tol: 1e-5)
        // Softmax along axis 1 equals softmax of the permuted tensor along the last axis.
        assertClose(x.permute(0, 2, 1).softmax().permute(0, 2, 1), s.scalars, tol: 1e-6)
    }

    // MARK: matrix products

    func naiveMatmul(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, ta: Bool = false, tb: Bool = false) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k { s += Double(ta ? a[p * m + i] : a[i * k + p]) * Double(tb ? b[j * k + p] : b[p * n + j]) }
            c[i * n + j] = s
        } }
        return c
    }

    func testGemmAgainstNaiveForAllTransposesSizesAndThreadCounts() {
        let dims = [(1, 1, 1), (2, 37, 5), (7, 300, 33), (65, 31, 257), (130, 97, 300), (257, 260, 129)]
        for threads in [1, 2] {
            Strata.numThreads = threads
            for (m, n, k) in dims { for ta in [false, true] { for tb in [false, true] {
                let a = Tensor.randn([m * k], seed: m + k).scalars, b = Tensor.randn([k * n], seed: n + 2 * k).scalars
                let ref = naiveMatmul(a, b, m: m, n: n, k: k, ta: ta, tb: tb)
                var c = [Float](repeating: 1, count: m * n)
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, lda: ta ? m : k,
                          b: bp.baseAddress!, ldb: tb ? k : n, beta: 0.5, c: cp.baseAddress!, ldc: n)
                } } }
                let err = zip(c, ref).map { Swift.abs(Double($0) - ($1 + 0.5)) }.max()!
                XCTAssertLessThan(err, 1e-3 * Double(k).squareRoot(), "m\(m) n\(n) k\(k) ta\(ta) tb\(tb) threads \(threads)")
            } } }
        }
        Strata.numThreads = 2
    }

    func testBatchedMatmulBroadcast() {
        let a = Tensor.randn([2, 1, 3, 4], seed: 1), b = Tensor.randn([5, 4, 2], seed: 2)
        let c = a.matmul(b)
        XCTAssertEqual(c.shape, [2, 5, 3, 2])
        for i in 0..<2 { for j in 0..<5 {
            let am = a.slice(axis: 0, start: i, end: i + 1).reshape([3, 4])
            let bm = b.slice(axis: 0, start: j, end: j + 1).reshape([4, 2])
            let ref = naiveMatmul(am.scalars, bm.scalars, m: 3, n: 2, k: 4)
            let got = c.slice(axis: 0, start: i, end: i + 1).slice(axis: 1, start: j, end: j + 1).scalars
            for (g, r) in zip(got, ref) { XCTAssertEqual(Double(g), r, accuracy: 1e-5) }
        } }
        XCTAssertEqual(Tensor.randn([4]).matmul(Tensor.randn([4, 3])).shape, [3])
        XCTAssertEqual(Tensor.randn([2, 3, 4]).matmul(Tensor.randn([4])).shape, [2, 3])
        assertClose(Tensor([1, 2, 3]).matmul(Tensor([4, 5, 6])), [32], shape: [])
    }

    func testLinearMatchesMatmulPlusBias() {
        let x = Tensor.randn([6, 5], seed: 1), w = Tensor.randn([3, 5], seed: 2), b = Tensor.randn([3], seed: 3)
        assertClose(linear(x, weight: w, bias: b), (x.matmul(w.T) + b).scalars, tol: 1e-5)
    }

    // MARK: convolution and pooling

    func naiveConv(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, stride: (Int, Int), pad: (Int, Int), dil: (Int, Int), groups: Int) -> [Double] {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (co, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let oh = (h + 2 * pad.0 - dil.0 * (kh - 1) - 1) / stride.0 + 1, ow = (wd + 2 * pad.1 - dil.1 * (kw - 1) - 1) / stride.1 + 1
        let xs = x.scalars, ws = w.scalars
        var out = [Double](repeating: 0, count: n * co * oh * ow)
        let cog = co / groups
        for b in 0..<n { for o in 0..<co { for i in 0..<oh { for j in 0..<ow {
            var s = Double(bias?.scalars[o] ?? 0)
            let g = o / cog
            for ci in 0..<cg { for p in 0..<kh { for q in 0..<kw {
                let y = i * stride.0 - pad.0 + p * dil.0, xx = j * stride.1 - pad.1 + q * dil.1
                if y < 0 || y >= h || xx < 0 || xx >= wd { continue }
                let cin = g * cg + ci
                s += Double(xs[((b * c + cin) * h + y) * wd + xx]) * Double(ws[((o * cg + ci) * kh + p) * kw + q])
            } } }
            out[((b * co + o) * oh + i) * ow + j] = s
        } } } }
        _ = c
        return out
    }

    func testConv2dAgainstDirectConvolution() {
        let configs: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int), Int)] = [
            ([2, 3, 9, 8], [4, 3, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([3, 4, 10, 7], [6, 2, 3, 2], (2, 1), (0, 1), (1, 2), 2),
            ([1, 2, 6, 6], [3, 2, 1, 1], (1, 1), (0, 0), (1, 1), 1),
            ([5, 1, 28, 28], [8, 1, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([1, 3, 11, 11], [2, 3, 5, 5], (3, 3), (2, 2), (1, 1), 1),
            ([1, 24, 12, 11], [40, 24, 3, 3], (1, 1), (1, 1), (1, 1), 1),   // one image, output channels split over threads
            // im2col packed straight into the GEMM's panels: rows of 5 outputs (3 runs a panel,
            // across images), vertical stride and dilation, 25 taps, two blocks of K = 432
            ([3, 6, 7, 5], [40, 6, 3, 3], (1, 1), (1, 1), (1, 1), 1),
            ([2, 5, 9, 13], [48, 5, 3, 3], (2, 1), (2, 1), (2, 1), 1),
            ([1, 8, 10, 7], [36, 8, 5, 5], (1, 1), (2, 2), (1, 1), 1),
            ([1, 48, 6, 6], [64, 48, 3, 3], (1, 1), (1, 1), (1, 1), 1),
        ]
        defer { Strata.numThreads = 2; Strata.restrictKernels(to: nil) }
        for isa in machineISAs { Strata.restrictKernels(to: isa)
        for threads in [1, 2] {
            Strata.numThreads = threads
            for (xs, wsh, st, pd, dl, g) in configs {
                let x = Tensor.randn(xs, seed: 1), w = Tensor.randn(wsh, seed: 2), b = Tensor.randn([wsh[0]], seed: 3)
                let y = conv2d(x, weight: w, bias: b, stride: Size2(st.0, st.1), padding: Size2(pd.0, pd.1), dilation: Size2(dl.0, dl.1), groups: g)
                let ref = naiveConv(x, w, b, stride: st, pad: pd, dil: dl, groups: g)
                XCTAssertEqual(y.count, ref.count)
                let err = zip(y.scalars, ref).map { Swift.abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThan(err, 1e-4, "\(xs) * \(wsh) stride \(st) padding \(pd) dilation \(dl) on \(isa), \(threads) threads")
            }
        }
        }
    }

    /// convTranspose2d against its definition (each input value scatters its kernel, stride
    /// apart, padding cropped), in double: strides, padding, output padding, dilation, groups,
    /// bias, every ISA, 1 and 2 threads. Also the inverse shape of conv2d.
    func testConvTranspose2dAgainstItsDefinition() {
        func reference(_ x: Tensor, _ w: Tensor, _ b: Tensor, _ st: (Int, Int), _ pd: (Int, Int), _ op: (Int, Int), _ dl: (Int, Int), _ g: Int) -> ([Int], [Double]) {
            let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let (cog, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
            let cout = cog * g, cig = cin / g
            let oh = (h - 1) * st.0 - 2 * pd.0 + dl.0 * (kh - 1) + op.0 + 1, ow = (wd - 1) * st.1 - 2 * pd.1 + dl.1 * (kw - 1) + op.1 + 1
            var y = [Double](repeating: 0, count: n * cout * oh * ow)
            for s in 0..<n { for o in 0..<cout { for i in 0..<(oh * ow) { y[(s * cout + o) * oh * ow + i] = Double(b.scalars[o]) } } }
            for s in 0..<n { for ci in 0..<cin { for i in 0..<h { for j in 0..<wd {
                let v = Double(x.scalars[((s * cin + ci) * h + i) * wd + j]), grp = ci / cig
                for co in 0..<cog { for p in 0..<kh { for q in 0..<kw {
                    let r = i * st.0 - pd.0 + p * dl.0, c = j * st.1 - pd.1 + q * dl.1
                    guard r >= 0, r < oh, c >= 0, c < ow else { continue }
                    y[((s * cout + grp * cog + co) * oh + r) * ow + c] += v * Double(w.scalars[((ci * cog + co) * kh + p) * kw + q])
                } } }
            } } } }
            return ([n, cout, oh, ow], y)
        }
        // (input, weight, stride, padding, output padding, dilation, groups)
        let configs: [([Int], [Int], (Int, Int), (Int, Int), (Int, Int), (Int, Int), Int)] = [
            ([2, 3, 5, 4], [3, 4, 3, 3], (1, 1), (0, 0), (0, 0), (1, 1), 1),
            ([2, 4, 4, 5], [4, 3, 3, 3], (2, 2), (1, 1), (1, 1), (1, 1), 1),
            ([1, 6, 3, 4], [6, 2, 4, 2], (3, 2), (1, 0), (2, 1), (1, 2), 2),
            ([3, 2, 6, 6], [2, 5, 1, 1], (1, 1), (0, 0), (0, 0), (1, 1), 1),
            ([2, 16, 7, 7], [16, 8, 3, 3], (1, 1), (1, 1), (0, 0), (1, 1), 1),   // conv2d's own 3x3 (Winograd) shape
            ([1, 8, 5, 3], [8, 4, 2, 2], (2, 2), (0, 0), (0, 0), (1, 1), 1),
        ]
        defer { Strata.numThreads = 2; Strata.restrictKernels(to: nil) }
        for isa in machineISAs { Strata.restrictKernels(to: isa)
        for threads in [1, 2] {
            Strata.numThreads = threads
            for (xs, ws, st, pd, op, dl, g) in configs {
                let x = Tensor.randn(xs, seed: 1), w = Tensor.randn(ws, seed: 2), b = Tensor.randn([ws[1] * g], seed: 3)
                let y = convTranspose2d(x, weight: w, bias: b, stride: Size2(st.0, st.1), padding: Size2(pd.0, pd.1),
                                        outputPadding: Size2(op.0, op.1), dilation: Size2(dl.0, dl.1), groups: g)
                let (shape, ref) = reference(x, w, b, st, pd, op, dl, g)
                XCTAssertEqual(y.shape, shape)
                let err = y.count == ref.count ? zip(y.scalars, ref).map { Swift.abs(Double($0) - $1) }.max()! : .infinity
                XCTAssertLessThan(err, 1e-4, "\(xs) * \(ws) stride \(st) padding \(pd) output padding \(op) dilation \(dl) groups \(g) on \(isa), \(threads) threads")
                // It undoes conv2d's shape: conv2d with the same settings maps y back to x's size.
                XCTAssertEqual(conv2d(y, weight: w, stride: Size2(st.0, st.1), padding: Size2(pd.0, pd.1), dilation: Size2(dl.0, dl.1), groups: g).shape, xs)
            }
        }
        }
    }

    /// conv1d, maxPool1d and avgPool1d against their definitions written out over [N, C, L] in
    /// double: strides, padding, dilation, groups and bias, every ISA, 1 and 2 threads.
    func testConv1dAndPool1dAgainstTheirDefinitions() {
        func conv(_ x: Tensor, _ w: Tensor, _ b: Tensor, _ st: Int, _ pd: Int, _ dl: Int, _ g: Int) -> [Double] {
            let (n, c, l, co, cg, k) = (x.shape[0], x.shape[1], x.shape[2], w.shape[0], w.shape[1], w.shape[2])
            let ol = (l + 2 * pd - dl * (k - 1) - 1) / st + 1
            var out: [Double] = []
            for s in 0..<n { for o in 0..<co { for i in 0..<ol {
                var v = Double(b.scalars[o])
                for ci in 0..<cg { for t in 0..<k {
                    let at = i * st - pd + t * dl, cin = o / (co / g) * cg + ci
                    if at >= 0 && at < l { v += Double(x.scalars[(s * c + cin) * l + at]) * Double(w.scalars[(o * cg + ci) * k + t]) }
                } }
                out.append(v)
            } } }
            return out
        }
        func pool(_ x: Tensor, _ k: Int, _ st: Int, _ pd: Int, max: Bool) -> [Double] {
            let (rows, l) = (x.shape[0] * x.shape[1], x.shape[2])
            var out: [Double] = []
            for r in 0..<rows { for i in 0..<((l + 2 * pd - k) / st + 1) {
                let taps = (0..<k).map { i * st - pd + $0 }.filter { $0 >= 0 && $0 < l }.map { Double(x.scalars[r * l + $0]) }
                out.append(max ? taps.max()! : taps.reduce(0, +) / Double(k))   // padding counts as zeros in the average
            } }
            return out
        }
        func worst(_ y: Tensor, _ ref: [Double]) -> Double {
            y.count == ref.count ? zip(y.scalars, ref).map { Swift.abs(Double($0) - $1) }.max()! : .infinity
        }
        // (input, weight, stride, padding, dilation, groups)
        let convs: [([Int], [Int], Int, Int, Int, Int)] = [
            ([2, 3, 17], [4, 3, 3], 1, 1, 1, 1), ([3, 4, 40], [6, 2, 5], 2, 3, 2, 2), ([1, 1, 9], [5, 1, 9], 1, 0, 1, 1),
            ([2, 16, 50], [32, 16, 7], 3, 2, 1, 1), ([1, 6, 12], [6, 1, 3], 1, 1, 3, 6),
        ]
        defer { Strata.numThreads = 2; Strata.restrictKernels(to: nil) }
        for isa in machineISAs { Strata.restrictKernels(to: isa)
        for threads in [1, 2] {
            Strata.numThreads = threads
            for (xs, ws, st, pd, dl, g) in convs {
                let x = Tensor.randn(xs, seed: 1), w = Tensor.randn(ws, seed: 2), b = Tensor.randn([ws[0]], seed: 3)
                let y = conv1d(x, weight: w, bias: b, stride: st, padding: pd, dilation: dl, groups: g)
                XCTAssertEqual(y.shape, [xs[0], ws[0], (xs[2] + 2 * pd - dl * (ws[2] - 1) - 1) / st + 1])
                XCTAssertLessThan(worst(y, conv(x, w, b, st, pd, dl, g)), 1e-4, "\(xs) * \(ws) stride \(st) padding \(pd) dilation \(dl) groups \(g) on \(isa), \(threads) threads")
            }
            for (xs, k, st, pd) in [([2, 3, 10], 2, 2, 0), ([1, 4, 11], 3, 2, 1), ([3, 2, 9], 4, 3, 2), ([1, 1, 5], 5, 1, 0)] {
                let x = Tensor.randn(xs, seed: 4)
                let mp = maxPool1d(x, kernelSize: k, stride: st, padding: pd), ap = avgPool1d(x, kernelSize: k, stride: st, padding: pd)
                XCTAssertEqual(worst(mp, pool(x, k, st, pd, max: true)), 0, "maxPool1d \(xs) kernel \(k) stride \(st) padding \(pd) on \(isa)")
                XCTAssertLessThan(worst(ap, pool(x, k, st, pd, max: false)), 1e-6, "avgPool1d \(xs) kernel \(k) stride \(st) padding \(pd) on \(isa)")
            }
        }
        }
        // The stride defaults to the kernel, as in PyTorch.
        XCTAssertEqual(maxPool1d(Tensor([1, 5, 2, 0, 3, 4], shape: [1, 1, 6]), kernelSize: 2).scalars, [5, 2, 4])
        XCTAssertTrue(avgPool1d(Tensor([1, 5, 2, 0, 3, 4], shape: [1, 1, 6]), kernelSize: 3).allClose(Tensor([8 / 3, 7 / 3], shape: [1, 1, 2])))
    }

    /// Pooling with PyTorch's and ONNX's options (ceil mode, padding left out of an average's
    /// divisor, dilation, different padding before and after) against the definition written out
    /// in double, on every ISA (the 2x2 fast path must step aside for ceil mode's partial windows),
    /// and against values PyTorch 2 and onnxruntime printed for small cases.
    func testPoolingOptionsAgainstTheirDefinitions() {
        // Windows along one axis: full windows of the padded input, plus in ceil mode one partial
        // window where some input is left over and it starts inside the input or the padding before it.
        func starts(_ n: Int, _ k: Int, _ s: Int, _ pb: Int, _ pa: Int, _ d: Int, _ ceil: Bool) -> [Int] {
            let span = (k - 1) * d + 1, padded = n + pb + pa
            var o = Array(stride(from: 0, through: padded - span, by: s))
            if ceil, (padded - span) % s != 0, o.count * s < n + pb { o.append(o.count * s) }
            return o.map { $0 - pb }
        }
        func reference(_ x: Tensor, _ p: PoolWindows, max: Bool) -> (shape: [Int], values: [Double]) {
            let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
            let rows = starts(h, p.kernel.h, p.stride.h, p.padBefore.h, p.padAfter.h, p.dilation.h, p.ceilMode)
            let cols = starts(w, p.kernel.w, p.stride.w, p.padBefore.w, p.padAfter.w, p.dilation.w, p.ceilMode)
            var out: [Double] = []
            for q in 0..<planes { for r in rows { for c in cols {
                var taps: [Double] = [], counted = 0
                for i in 0..<p.kernel.h { for j in 0..<p.kernel.w {
                    let (y, z) = (r + i * p.dilation.h, c + j * p.dilation.w)
                    let inside = y >= 0 && y < h && z >= 0 && z < w
                    let inPadded = y >= -p.padBefore.h && y < h + p.padAfter.h && z >= -p.padBefore.w && z < w + p.padAfter.w
                    if inside { taps.append(Double(x.scalars[(q * h + y) * w + z])) }
                    if p.countIncludePad ? inPadded : inside { counted += 1 }
                } }
                out.append(max ? taps.max()! : taps.reduce(0, +) / Double(counted))
            } } }
            return ([x.shape[0], x.shape[1], rows.count, cols.count], out)
        }
        // (input, kernel, stride, padding before, after, dilation, ceil mode, padding counted)
        let cases: [([Int], Size2, Size2, Size2, Size2, Size2, Bool, Bool)] = [
            ([2, 3, 7, 6], 3, 2, 1, 1, 1, true, true), ([2, 3, 7, 6], 3, 2, 1, 1, 1, true, false),
            ([1, 2, 9, 8], [3, 2], [2, 3], [0, 1], [2, 1], [2, 1], true, false), ([2, 2, 6, 6], 2, 2, 0, 0, 1, true, true),
            ([2, 2, 7, 5], 2, 2, 0, 0, 1, true, true), ([1, 3, 10, 10], 3, 1, 1, 1, 1, false, false),
            ([1, 1, 5, 5], 4, 3, [2, 0], [1, 3], 1, false, true), ([1, 2, 11, 9], [2, 3], [3, 2], 1, [0, 2], [3, 2], true, true),
        ]
        defer { Strata.numThreads = 2; Strata.restrictKernels(to: nil) }
        for isa in machineISAs { Strata.restrictKernels(to: isa)
        for threads in [1, 2] {
            Strata.numThreads = threads
            for (xs, k, st, pb, pa, d, ceil, counted) in cases {
                let p = PoolWindows(kernel: k, stride: st, padBefore: pb, padAfter: pa, dilation: d, ceilMode: ceil, countIncludePad: counted)
                let what = "\(xs) kernel \(k) stride \(st) pads \(pb)/\(pa) dilation \(d) ceil \(ceil) counted \(counted) on \(isa), \(threads) threads"
                for isMax in [true, false] {
                    let ref = reference(Tensor.randn(xs, seed: 5), p, max: isMax)
                    for training in [false, true] {
                        var x = Tensor.randn(xs, seed: 5)
                        if training { x.requiresGrad = true }   // max pooling records its winners
                        let y = pool2d(x, max: isMax, p, "test")
                        XCTAssertEqual(y.shape, ref.shape, what)
                        let worst = y.shape == ref.shape ? zip(y.scalars, ref.values).map { Swift.abs(Double($0) - $1) }.max()! : .infinity
                        XCTAssertLessThan(worst, isMax ? 1e-12 : 1e-6, "\(isMax ? "max" : "average") \(what)")
                    }
                }
            }
        }
        }
        // PyTorch's F.max_pool1d / F.avg_pool1d with ceil_mode=True on 1, 2, ..., n.
        let ramp = { (n: Int) in Tensor((1...n).map(Float.init), shape: [1, 1, n]) }
        XCTAssertEqual(maxPool1d(ramp(5), kernelSize: 2, stride: 2, padding: 1, ceilMode: true).scalars, [1, 3, 5])
        XCTAssertEqual(avgPool1d(ramp(5), kernelSize: 2, stride: 2, padding: 1, ceilMode: true).scalars, [0.5, 2.5, 4.5])
        XCTAssertEqual(avgPool1d(ramp(6), kernelSize: 3, stride: 2, padding: 1, ceilMode: true).scalars, [1, 3, 5, 3])
        XCTAssertEqual(avgPool1d(ramp(6), kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false).scalars, [1.5, 3, 5, 6])
        XCTAssertEqual(avgPool1d(ramp(7), kernelSize: 3, ceilMode: true).scalars, [2, 5, 7])
        // By hand: taps 3 apart, windows (1, 4), (2, 5), (3, 6), (4, 7).
        XCTAssertEqual(maxPool1d(ramp(7), kernelSize: 2, stride: 1, dilation: 3).scalars, [4, 5, 6, 7])
        // onnxruntime 1.32, ceil_mode=1 with pads [0, 1] and [1, 0] (ONNX's pads before and after).
        let onnx = { (n: Int, k: Int, s: Int, pads: [Int], max: Bool, counted: Bool) -> [Float] in
            let p = PoolWindows(kernel: Size2(1, k), stride: Size2(1, s), padBefore: Size2(0, pads[0]), padAfter: Size2(0, pads[1]),
                                ceilMode: true, countIncludePad: counted)
            return pool2d(ramp(n).unsqueeze(2), max: max, p, "test").scalars
        }
        XCTAssertEqual(onnx(5, 3, 2, [0, 1], false, true), [2, 4, 2.5])
        XCTAssertEqual(onnx(5, 3, 2, [0, 1], false, false), [2, 4, 5])
        XCTAssertEqual(onnx(6, 2, 4, [1, 0], true, false), [1, 5])
    }

    /// Adaptive pooling against its definition in double: bin i of n values into `out` covers
    /// [floor(i n / out), ceil((i + 1) n / out)); outputs larger than the input, 1 and 2 threads
    /// (the last case is big enough to be spread), and values PyTorch 2 printed.
    func testAdaptivePoolingAgainstItsDefinition() {
        func bins(_ n: Int, _ out: Int) -> [Range<Int>] {
            (0..<out).map { i in Int((Double(i * n) / Double(out)).rounded(.down))..<Int((Double((i + 1) * n) / Double(out)).rounded(.up)) }
        }
        func reference(_ x: Tensor, _ size: Size2, max: Bool) -> [Double] {
            let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
            var out: [Double] = []
            for p in 0..<planes { for rows in bins(h, size.h) { for cols in bins(w, size.w) {
                let v = rows.flatMap { r in cols.map { c in Double(x.scalars[(p * h + r) * w + c]) } }
                out.append(max ? v.max()! : v.reduce(0, +) / Double(v.count))
            } } }
            return out
        }
        defer { Strata.numThreads = 2 }
        for threads in [1, 2] {
            Strata.numThreads = threads
            for (xs, size) in [([2, 3, 7, 5], Size2(3, 2)), ([1, 2, 4, 4], Size2(6, 5)), ([3, 4, 9, 13], Size2(4, 6)), ([1, 1, 5, 5], Size2(1, 1)),
                               ([4, 16, 33, 35], Size2(7, 7))] {
                for isMax in [true, false] {
                    var x = Tensor.randn(xs, seed: 6)
                    for training in [false, true] {
                        if training { x = Tensor.randn(xs, seed: 6); x.requiresGrad = true }
                        let y = isMax ? adaptiveMaxPool2d(x, outputSize: size) : adaptiveAvgPool2d(x, outputSize: size)
                        XCTAssertEqual(y.shape, [xs[0], xs[1], size.h, size.w])
                        let worst = zip(y.scalars, reference(x, size, max: isMax)).map { Swift.abs(Double($0) - $1) }.max()!
                        XCTAssertLessThan(worst, isMax ? 1e-12 : 1e-5, "\(isMax ? "max" : "average") \(xs) to \(size), \(threads) threads")
                    }
                }
            }
        }
        // PyTorch's F.adaptive_avg_pool1d / adaptive_max_pool1d of 1, 2, ..., n, and the 2-D ones of arange(20) as 4x5.
        let ramp = { (n: Int) in Tensor((1...n).map(Float.init), shape: [1, 1, n]) }
        XCTAssertEqual(adaptiveAvgPool1d(ramp(7), outputSize: 3).scalars, [2, 4, 6])
        XCTAssertEqual(adaptiveMaxPool1d(ramp(7), outputSize: 3).scalars, [3, 5, 7])
        XCTAssertEqual(adaptiveAvgPool1d(ramp(7), outputSize: 5).scalars, [1.5, 2.5, 4, 5.5, 6.5])
        XCTAssertEqual(adaptiveAvgPool1d(ramp(3), outputSize: 5).scalars, [1, 1.5, 2, 2.5, 3])
        let grid = Tensor.arange(20).reshape([1, 1, 4, 5])
        XCTAssertEqual(adaptiveAvgPool2d(grid, outputSize: [3, 2]).scalars, [3.5, 5.5, 8.5, 10.5, 13.5, 15.5])
        XCTAssertEqual(adaptiveMaxPool2d(grid, outputSize: [3, 2]).scalars, [7, 9, 12, 14, 17, 19])
        // A NaN wins a max bin, as in PyTorch.
        XCTAssertTrue(adaptiveMaxPool1d(Tensor([1, .nan, 3, 4], shape: [1, 1, 4]), outputSize: 2).scalars[0].isNaN)
    }

    /// Calls that do not train a weight keep its packed forms (GEMM panels for each orientation
    /// and each block of a split image, Winograd filters) and reuse them; an optimizer step or an
    /// assignment makes new ones. Every result matches the naive convolution of the weight's
    /// current values, so a stale pack would fail here.
    func testKeptConvWeightFormsAreReusedAndFollowWrites() {
        // (input, weight, Winograd mode, one image split over 2 threads): W packed as A (many
        // pixels), W^T as B, the split, F(2x2, 3x3) and F(4x4, 3x3) filters
        let configs: [([Int], [Int], Int32, Bool)] = [
            ([2, 24, 16, 16], [8, 24, 3, 3], 0, false),
            ([2, 24, 6, 6], [40, 24, 3, 3], 0, false),
            ([1, 32, 14, 14], [64, 32, 3, 3], 0, true),
            ([2, 16, 8, 8], [16, 16, 3, 3], 2, false),
            ([2, 16, 8, 8], [24, 16, 3, 3], 3, false),
        ]
        func forms(_ layer: Conv2D) -> ConvWeightForms? { layer.weight.value.storage.derived as? ConvWeightForms }
        func check(_ layer: Conv2D, _ x: Tensor, _ what: String) {
            let y = noGrad { layer(x) }
            let ref = naiveConv(x, layer.weight.value, layer.bias?.value, stride: (1, 1), pad: (1, 1), dil: (1, 1), groups: 1)
            // Relative to the output's scale, as Winograd's bound is: after the SGD step (lr 0.5)
            // F(4x4)'s error reached 1.1e-3 absolute under the sanitizer build.
            let scale = Swift.max(1, ref.map { Swift.abs($0) }.max() ?? 0)
            let err = zip(y.scalars, ref).map { Swift.abs(Double($0) - $1) }.max() ?? 0
            XCTAssertLessThan(err / scale, 1e-4, what)
        }
        defer { Strata.numThreads = 2; sk_winograd_force(-1); strata_force_cores_far(-1) }
        strata_force_cores_far(0)   // the split's two forms, whatever the host does meanwhile
        forEachISA { isa in for threads in [1, 2] { for (xs, ws, mode, split) in configs {
            Strata.numThreads = threads
            sk_winograd_force(mode)
            let what = "\(xs) * \(ws), Winograd mode \(mode), \(isa), \(threads) threads"
            let layer = Conv2D(ws[1], ws[0], kernelSize: 3, padding: 1)
            let x = Tensor.randn(xs, seed: 1), x2 = Tensor.randn(xs, seed: 2)
            check(layer, x, what)
            guard let first = forms(layer) else { return XCTFail("no forms kept: \(what)") }
            XCTAssertEqual(first.count, split && threads == 2 ? 2 : 1, what)
            check(layer, x2, what + ", second input")
            XCTAssertTrue(forms(layer) === first, what)
            XCTAssertEqual(first.count, split && threads == 2 ? 2 : 1, "reused, not packed again: \(what)")

            // A training step: its forward keeps nothing, its update invalidates the forms.
            let before = layer.weight.value.scalars
            let opt = SGD(layer.parameters(), lr: 0.5)
            let loss = (layer(x) * Tensor.randn([xs[0], ws[0], xs[2], xs[3]], seed: 3)).sum()
            XCTAssertTrue(forms(layer) === first || forms(layer) == nil, "a training forward keeps no forms: \(what)")
            loss.backward()
            opt.step()
            XCTAssertNotEqual(layer.weight.value.scalars, before, what)
            check(layer, x, what + ", after an optimizer step")
            XCTAssertFalse(forms(layer) === first, what)

            layer.weight.assign(Tensor.randn(ws, seed: 4))
            check(layer, x2, what + ", after assign")
            // A write through the buffer, as a user's own update would do it.
            layer.weight.value.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] *= -0.5 } }
            check(layer, x, what + ", after a write through the buffer")
        } } }
    }

    /// Where handing work to another core is slow (strata_cores_far), one image's convolution and
    /// the 1-row products run on the calling thread alone: the outputs equal the split ones bit
    /// for bit (each output channel and column is the same sum either way), and the convolution
    /// keeps one weight form instead of one per thread's block. The pool measures the handoff
    /// from the jobs it runs.
    func testFarCoresRunBatchOneWorkOnTheCallingThread() {
        defer { Strata.numThreads = 2; strata_force_cores_far(-1) }
        // The estimate falls to a lower sample at once and rises by at most 16 ns a sample.
        XCTAssertEqual(strata_handoff_next_estimate(0, 300), 16)
        XCTAssertEqual(strata_handoff_next_estimate(250, 90), 90)
        XCTAssertEqual(strata_handoff_next_estimate(90, 5_000), 106, "one slow handoff moves it 16 ns")
        XCTAssertEqual(strata_handoff_next_estimate(90, 100), 100)
        var estimate = 90
        for _ in 0..<10 { estimate = strata_handoff_next_estimate(estimate, 320) }
        XCTAssertEqual(estimate, 250, "a slow window is seen after 10 samples")
        // Measured live only where the worker was spinning when a job came: a busy or throttled
        // machine (a CPU quota below the cores it shows) may not give one, so this waits up to 2 s.
        Strata.numThreads = 2
        var measured = -1
        let start = Date()
        while measured < 0 && Date().timeIntervalSince(start) < 2 {
            for _ in 0..<100 { parallelFor(64) { _ in } }
            measured = strata_handoff_ns()
        }
        if measured >= 0 {
            XCTAssertLessThan(measured, 1_000_000)
        } else {
            print("no handoff to a spinning worker in 2 s of jobs on this machine; the live measurement is not checked")
        }
        forEachISA { isa in
            for winograd: Int32 in [0, -1] {   // the im2col path, and the default (channels-last Winograd)
                sk_winograd_force(winograd)
                defer { sk_winograd_force(-1) }
                var outputs: [[Float]] = [], formCounts: [Int] = []
                let conv = Conv2D(32, 64, kernelSize: 3, padding: 1), fc = Linear(64 * 7 * 7, 128)
                let x = Tensor.randn([1, 32, 14, 14], seed: 5)
                for far: Int32 in [0, 1] {
                    strata_force_cores_far(far)
                    XCTAssertEqual(strata_cores_far(), far)
                    // The same values each time; a new version, so no forms are kept from before.
                    conv.weight.assign(Tensor.randn([64, 32, 3, 3], seed: 6))
                    fc.weight.assign(Tensor.randn([128, 64 * 7 * 7], seed: 7))
                    let y = noGrad { conv(x) }
                    let z = noGrad { fc(maxPool2d(y, kernelSize: 2).reshape([1, 64 * 7 * 7])) }
                    outputs.append(y.scalars + z.scalars)
                    formCounts.append((conv.weight.value.storage.derived as? ConvWeightForms)?.count ?? -1)
                }
                XCTAssertEqual(outputs[0], outputs[1], "\(isa), Winograd mode \(winograd)")
                XCTAssertEqual(formCounts, [2, 1], "\(isa), Winograd mode \(winograd): split, then not")
            }
        }
    }

    /// Batch-1 splits while the workers sleep (calls spaced further apart than their 0.5 ms
    /// spin): small work runs on the caller and does not wake them; work of 8M multiply-adds or
    /// more splits (its job wakes them); 16 small decisions within 1 ms (back-to-back calls
    /// after a pause) wake them without a job, so the calls after split again.
    func testSmallWorkIsNotSplitWhileTheWorkersSleep() {
        defer { Strata.numThreads = 2; strata_force_cores_far(-1) }
        Strata.numThreads = 2
        strata_force_cores_far(1)
        XCTAssertEqual(strata_split_small_work(1e9), 0, "forced far")
        strata_force_cores_far(0)
        XCTAssertEqual(strata_split_small_work(1), 1, "forced near")
        strata_force_cores_far(-1)
        // Waits (up to 2 s) for the worker to fall asleep: a busy machine may keep it off a core.
        func waitFor(_ condition: () -> Bool) -> Bool {
            let start = Date()
            while !condition() && Date().timeIntervalSince(start) < 2 { usleep(1_000) }
            return condition()
        }
        parallelFor(64) { _ in }
        guard waitFor({ strata_workers_asleep() > 0 }) else {
            print("the worker did not fall asleep within 2 s on this machine; not checked")
            return
        }
        XCTAssertEqual(strata_split_small_work(8e6), 1, "large work splits (its job wakes the workers)")
        // A fresh 1 ms window: the 16 decisions below fall in it unless this thread is held up.
        usleep(2_000)
        let poked = strata_workers_poked(), start = Date()
        for k in 1..<16 {
            XCTAssertEqual(strata_split_small_work(1e6), 0, "small work \(k) stays on the caller")
        }
        XCTAssertEqual(strata_workers_poked(), poked, "15 small decisions wake no one")
        XCTAssertEqual(strata_split_small_work(1e6), 0)
        if Date().timeIntervalSince(start) > 0.0009 {
            print("16 decisions took over 1 ms here (a busy machine); the wake-up is not checked")
            return
        }
        XCTAssert(waitFor({ strata_workers_poked() > poked }), "the 16th small decision within 1 ms wakes the worker")
    }

    /// The pool's default thread count is the cores the process may use: its CPU affinity, at
    /// most its cgroup's CPU quota (a CI runner or `docker --cpus` on a larger host).
    func testDefaultThreadsFollowAffinityAndQuota() {
        XCTAssertEqual(strata_cpu_quota_cores("max 100000\n"), 0, "no quota")
        XCTAssertEqual(strata_cpu_quota_cores("150000 100000\n"), 2, "1.5 cores round up")
        XCTAssertEqual(strata_cpu_quota_cores("200000 100000"), 2)
        XCTAssertEqual(strata_cpu_quota_cores("50000 100000"), 1)
        XCTAssertEqual(strata_cpu_quota_cores("-1 100000"), 0, "cgroup v1 without a quota")
        XCTAssertEqual(strata_cpu_quota_cores(""), 0)
        XCTAssertEqual(strata_cpu_quota_cores("12800000 100000"), 64, "at most the pool's 64")

        // Glibc's module hides the GNU affinity calls from Swift; they are looked up instead.
        typealias AffinityCall = @convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32
        let sched_getaffinity = unsafeBitCast(dlsym(nil, "sched_getaffinity")!, to: AffinityCall.self)
        let sched_setaffinity = unsafeBitCast(dlsym(nil, "sched_setaffinity")!, to: AffinityCall.self)
        var saved = cpu_set_t()
        XCTAssertEqual(sched_getaffinity(0, MemoryLayout<cpu_set_t>.size, &saved), 0)
        let allowed = withUnsafeBytes(of: saved) { $0.reduce(0) { $0 + $1.nonzeroBitCount } }
        let all = Int(strata_available_cores())
        XCTAssert(all >= 1 && all <= allowed, "\(all) cores of \(allowed) allowed")
        // This thread bound to its first allowed CPU alone, as `taskset -c N` would bind it.
        let first = withUnsafeBytes(of: saved) { b in (0..<b.count * 8).first { b[$0 / 8] & (1 << ($0 % 8)) != 0 }! }
        var one = cpu_set_t()
        withUnsafeMutableBytes(of: &one) { $0[first / 8] = 1 << (first % 8) }
        XCTAssertEqual(sched_setaffinity(0, MemoryLayout<cpu_set_t>.size, &one), 0)
        XCTAssertEqual(strata_available_cores(), 1)
        XCTAssertEqual(sched_setaffinity(0, MemoryLayout<cpu_set_t>.size, &saved), 0)
        XCTAssertEqual(Int(strata_available_cores()), all)
    }

    /// The fused convolution + 2x2 max pooling gives the same outputs and gradients as the two
    /// ops (each gradient-checked on its own), including odd sizes, strides, groups and batch 1.
    /// Runs on every vector ISA the machine has (AVX-512 and AVX2 here on Zen 5); the portable
    /// path has no fused kernel and must say so.
    func testFusedConvPoolMatchesSeparateOps() throws {
        let configs: [([Int], [Int], Size2, Size2, Int)] = [
            ([64, 1, 28, 28], [32, 1, 3, 3], 1, 1, 1),
            ([5, 4, 9, 7], [6, 2, 3, 3], 1, 1, 2),
            ([3, 3, 11, 10], [4, 3, 3, 3], [2, 1], [1, 0], 1),
            ([4, 8, 14, 14], [16, 8, 3, 3], 1, 1, 1),
            ([2, 3, 6, 6], [5, 3, 1, 1], 1, 0, 1),
            ([6, 2, 13, 21], [7, 2, 5, 5], 1, 2, 1),
            ([4, 80, 8, 9], [16, 80, 3, 3], 1, 1, 1),   // input gradient in blocks of 64 and 16 channels
            ([4, 45, 7, 6], [9, 45, 3, 3], 1, 1, 1),    // ... 32, 8 and single channels
            ([4, 4, 12, 11], [6, 4, 5, 5], 1, 2, 1),    // 5x5 taps from the winners
            ([1, 1, 28, 28], [32, 1, 3, 3], 1, 1, 1),    // batch 1: the Fashion CNN's layers,
            ([1, 32, 14, 14], [64, 32, 3, 3], 1, 1, 1),  // ... the second in two blocks of output channels
            ([1, 24, 12, 11], [40, 24, 3, 3], 1, 1, 1),  // ... blocks of 32 and 8 channels
        ]
        defer { Strata.numThreads = 2; Strata.restrictKernels(to: nil) }
        let vector = machineISAs.filter { $0 != "generic" }
        if vector.isEmpty { throw XCTSkip("the fused kernel needs AVX2 or AVX-512") }
        for isa in machineISAs {
        Strata.restrictKernels(to: isa)
        XCTAssertEqual(Strata.cpuKernel, isa)
        for threads in [1, 2] { for (xs, ws, stride, pad, groups) in configs { for relu in [false, true] {
            Strata.numThreads = threads
            var x = Tensor.randn(xs, seed: 1), w = Tensor.randn(ws, seed: 2), b = Tensor.randn([ws[0]], seed: 3)
            x.requiresGrad = true; w.requiresGrad = true; b.requiresGrad = true
            guard let fused = conv2dMaxPool2d(x, weight: w, bias: b, stride: stride, padding: pad, groups: groups, relu: relu) else {
                if threads > 1 && xs[0] > 1 && xs[0] < 2 * threads { continue }   // small batches but one image take the separate ops
                XCTAssertEqual(isa, "generic", "no fused kernel on \(isa) for \(xs)")
                continue
            }
            XCTAssertNotEqual(isa, "generic")
            let pooled = maxPool2d(conv2d(x, weight: w, bias: b, stride: stride, padding: pad, groups: groups), kernelSize: 2)
            let plain = relu ? pooled.relu() : pooled
            XCTAssertEqual(fused.shape, plain.shape)
            XCTAssertEqual(fused.scalars, plain.scalars, "\(xs) relu \(relu)")
            // Without a gradient to record, the kernel keeps no winners: the values of the separate
            // ops without one (kept filters may take another convolution path than training's).
            noGrad {
                let inferred = conv2dMaxPool2d(x, weight: w, bias: b, stride: stride, padding: pad, groups: groups, relu: relu)
                let pooled = maxPool2d(conv2d(x, weight: w, bias: b, stride: stride, padding: pad, groups: groups), kernelSize: 2)
                XCTAssertEqual(inferred?.scalars, (relu ? pooled.relu() : pooled).scalars, "\(xs) relu \(relu), no grad")
            }
            if relu {   // the max of four is below zero in some windows (1 in 16 for independent signs): those get no gradient
                let zeroed = fused.scalars.filter { $0 == 0 }.count
                XCTAssert(zeroed >= fused.count / 20 && zeroed < fused.count / 2, "\(xs): \(zeroed) of \(fused.count) zeroed")
            }
            let g = Tensor.randn(fused.shape, seed: 4)
            fused.backward(g)
            let (gx, gw, gb) = (x.grad!, w.grad!, b.grad!)
            x.grad = nil; w.grad = nil; b.grad = nil
            plain.backward(g)
            XCTAssert(gx.allClose(x.grad!, rtol: 1e-5, atol: 1e-5), "\(xs) input gradient")
            XCTAssert(gw.allClose(w.grad!, rtol: 1e-4, atol: 1e-4), "\(xs) weight gradient")
            XCTAssert(gb.allClose(b.grad!, rtol: 1e-4, atol: 1e-4), "\(xs) bias gradient")
        } } }
        }
    }

    /// Equal element by element (+0 and -0 count as equal); a failure names the first difference,
    /// not the whole arrays.
    func assertSame(_ got: [Float]?, _ expected: [Float]?, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let got, let expected else { return XCTFail("\(message): missing result", file: file, line: line) }
        guard got.count == expected.count else {
            return XCTFail("\(message): \(got.count) values, expected \(expected.count)", file: file, line: line)
        }
        let bad = got.indices.filter { got[$0] != expected[$0] }
        if let i = bad.first {
            XCTFail("\(message): \(bad.count) of \(got.count) differ, first at \(i): \(got[i]) instead of \(expected[i])", file: file, line: line)
        }
    }

    /// Small whole numbers, so every sum is exact in any order: results on different ISAs
    /// (different GEMM kernels and summation orders) must then be bit-identical.
    func integerTensor(_ shape: [Int], seed: Int, range: Int = 3) -> Tensor {
        let r = Float(range)
        return Tensor(Tensor.randn(shape, seed: seed).scalars.map { Swift.max(-r, Swift.min(r, ($0 * r / 1.5).rounded())) }, shape: shape)
    }

    /// im2col, col2im and the layout transposes only move data, so convolutions of whole numbers
    /// (forward, input, weight and bias gradients) are the same bits on every ISA as on the portable
    /// path, and the forward equals the direct convolution. Covers widths on both sides of the
    /// 8- and 16-lane steps (and over the vector kernels' width limits), padding 0/1/2, dilation
    /// 1/2, kernels 1/3/5 (and 1x1 with padding), groups, stride 2, several channel counts and
    /// batch sizes, both GEMM orientations, 1 and 2 threads.
    func testConvKernelsExactOnEveryISA() {
        typealias Config = (x: [Int], w: [Int], stride: Size2, pad: Size2, dil: Size2, groups: Int)
        let configs: [Config] = [
            ([2, 3, 9, 8], [4, 3, 3, 3], 1, 1, 1, 1),
            ([3, 2, 7, 5], [5, 2, 3, 3], 1, 2, 1, 1),
            ([1, 4, 6, 3], [3, 4, 5, 5], 1, 2, 1, 1),
            ([4, 1, 28, 28], [8, 1, 3, 3], 1, 1, 1, 1),
            ([2, 5, 17, 23], [6, 5, 3, 3], 1, 1, 2, 1),
            ([3, 4, 12, 31], [8, 2, 5, 3], 1, [2, 1], [1, 2], 2),
            ([1, 2, 9, 15], [3, 2, 5, 5], 1, 0, [2, 1], 1),
            ([2, 6, 10, 33], [4, 6, 1, 1], 1, 1, 1, 1),
            ([2, 6, 10, 13], [4, 6, 1, 1], 1, 0, 1, 1),
            ([2, 3, 11, 17], [40, 3, 3, 3], 1, 1, 1, 1),
            ([5, 16, 7, 9], [24, 16, 3, 3], 1, 1, 1, 1),
            ([1, 3, 11, 11], [2, 3, 5, 5], 3, 2, 1, 1),
            ([2, 2, 9, 14], [3, 2, 3, 3], [1, 2], 1, 1, 1),
            ([1, 2, 4, 270], [3, 2, 3, 5], 1, [1, 2], 1, 1),
            ([1, 2, 3, 1], [2, 2, 3, 1], 1, 1, 1, 1),
            ([3, 1, 5, 2], [2, 1, 3, 3], 1, 1, 1, 1),
            // The direct kernels for few input channels (conv_direct.c): the face network's first
            // layer; 7 output channels and rows of 21 (channel blocks and segments cut short); K = 144
            // (the limit) with dilation and padding 2; rows of 12 (forward direct, weight gradient not).
            ([2, 3, 64, 64], [32, 3, 3, 3], 1, 1, 1, 1),
            ([3, 2, 13, 21], [7, 2, 3, 3], 1, 1, 1, 1),
            ([2, 16, 9, 17], [8, 16, 3, 3], 1, 2, [1, 2], 1),
            ([2, 4, 6, 12], [5, 4, 3, 3], 1, 1, 1, 1),
        ]
        defer { Strata.numThreads = 2 }
        for threads in [1, 2] {
            Strata.numThreads = threads
            for (i, c) in configs.enumerated() {
                let tag = "config \(i) \(c.x) \(c.w) threads \(threads)"
                var x = integerTensor(c.x, seed: 10 + i), w = integerTensor(c.w, seed: 20 + i), b = integerTensor([c.w[0]], seed: 30 + i)
                x.requiresGrad = true; w.requiresGrad = true; b.requiresGrad = true
                var reference: [Float]? = nil
                var referenceGrads: [[Float]] = []
                forEachISA { isa in
                    let y = conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups)
                    let g = integerTensor(y.shape, seed: 40 + i)
                    y.backward(g)
                    let grads = [x.grad!.scalars, w.grad!.scalars, b.grad!.scalars]
                    x.grad = nil; w.grad = nil; b.grad = nil
                    if let reference {
                        assertSame(y.scalars, reference, "\(tag) forward on \(isa)")
                        for (k, name) in ["input", "weight", "bias"].enumerated() {
                            assertSame(grads[k], referenceGrads[k], "\(tag) \(name) gradient on \(isa)")
                        }
                    } else {
                        reference = y.scalars
                        referenceGrads = grads
                    }
                }
                // The results (the same on every ISA) against the direct convolution, exactly.
                let direct = naiveConv(x, w, b, stride: (c.stride.h, c.stride.w), pad: (c.pad.h, c.pad.w),
                                       dil: (c.dil.h, c.dil.w), groups: c.groups)
                assertSame(reference, direct.map { Float($0) }, "\(tag) against the direct convolution")
            }
        }
    }

    /// Training-mode batch norm fused with 2x2 max pooling (and ReLU) on every ISA: the same outputs
    /// and batch statistics as the separate ops bit for bit (the same per-element arithmetic), and
    /// the same gradients up to the order of the backward's sums. Odd heights and widths (a last row
    /// and column outside every window still get BN's gradient), a negative scale (the window's
    /// minimum of x wins), batch 1, ties.
    func testBatchNormMaxPoolMatchesSeparateOps() {
        // The last two run the kernels' 4-window vectors with a scalar tail (25 windows a row), and a
        // channel too large for one task (over 512 KB: a second job over the planes, rows written
        // past the caches, and an odd row outside the windows).
        let shapes: [[Int]] = [[4, 3, 8, 10], [2, 5, 7, 9], [1, 2, 6, 33], [3, 4, 5, 2], [6, 16, 16, 16], [2, 3, 6, 50],
                               [3, 2, 257, 256]]
        defer { Strata.numThreads = 2 }
        for threads in [1, 2] { for (i, shape) in shapes.enumerated() { for relu in [false, true] {
            Strata.numThreads = threads
            let c = shape[1]
            var x = Tensor.randn(shape, seed: 110 + i)
            if i == 3 || i == 5 { x = integerTensor(shape, seed: 110 + i, range: 1) }   // many ties
            let wv = (0..<c).map { Float($0 % 3 == 1 ? -0.7 : 1.3) + Float($0) * 0.1 }
            var w = Tensor(wv, shape: [c]), b = Tensor.randn([c], seed: 120 + i)
            x.requiresGrad = true; w.requiresGrad = true; b.requiresGrad = true
            let tag = "\(shape) relu \(relu) threads \(threads)"
            forEachISA { isa in
                let (fused, fm, fv) = batchNormMaxPool2d(x, weight: w, bias: b, relu: relu)
                let (bn, m, v) = batchNorm(x, weight: w, bias: b)
                let pooled = maxPool2d(bn, kernelSize: 2)
                let plain = relu ? pooled.relu() : pooled
                assertSame(fused.scalars, plain.scalars, "\(tag) output on \(isa)")
                assertSame(fm.scalars, m.scalars, "\(tag) mean on \(isa)")
                assertSame(fv.scalars, v.scalars, "\(tag) variance on \(isa)")
                let g = Tensor.randn(fused.shape, seed: 130 + i)
                fused.backward(g)
                let (gx, gw, gb) = (x.grad!, w.grad!, b.grad!)
                x.grad = nil; w.grad = nil; b.grad = nil
                plain.backward(g)
                // gw and gb are sums over a channel's windows, summed in another order: rounding
                // grows with the sum of the terms' sizes (5e4 of them a channel in the last shape,
                // where one bias gradient read -0.77867 against -0.77877).
                let mass = g.scalars.reduce(0) { $0 + abs($1) } / Float(c)
                let sumTol = Swift.max(1e-5, 1e-6 * mass)
                XCTAssert(gx.allClose(x.grad!, rtol: 1e-4, atol: 1e-5), "\(tag) input gradient on \(isa)")
                XCTAssert(gw.allClose(w.grad!, rtol: 1e-4, atol: sumTol), "\(tag) weight gradient on \(isa): \(gw.scalars) against \(w.grad!.scalars)")
                XCTAssert(gb.allClose(b.grad!, rtol: 1e-4, atol: sumTol), "\(tag) bias gradient on \(isa): \(gb.scalars) against \(b.grad!.scalars)")
                if shape[2] % 2 == 1 {   // the last row has no pooled gradient, but BN's own is not zero
                    let last = Array(x.grad!.scalars[(shape[2] - 1) * shape[3]..<(shape[2] * shape[3])])
                    XCTAssert(last.contains { $0 != 0 }, "\(tag): the row outside the windows has BN's gradient")
                }
                x.grad = nil; w.grad = nil; b.grad = nil
            }
        } } }
    }

    /// A Sequential in training mode runs BatchNorm2d, ReLU, MaxPool2D(2) as the fused op, with the
    /// same outputs, gradients and running statistics as the layers one by one.
    func testSequentialFusesBatchNormReLUPool() {
        RandomGenerator.manualSeed(7)
        let conv = Conv2D(3, 6, kernelSize: 3, padding: 1, bias: false), bn = BatchNorm2d(6)
        let net = Sequential(conv, bn, ReLU(), MaxPool2D(2))
        let x = Tensor.randn([4, 3, 10, 12], seed: 140)
        net.train()
        let fused = net(x)
        let gFused = Tensor.randn(fused.shape, seed: 141)
        fused.backward(gFused)
        let (gwFused, ggFused) = (conv.weight.value.grad!, bn.weight.value.grad!)
        let (meanFused, varFused) = (bn.runningMean.value.scalars, bn.runningVar.value.scalars)
        conv.weight.value.grad = nil; bn.weight.value.grad = nil; bn.bias.value.grad = nil
        bn.runningMean.assign(Tensor.zeros([6])); bn.runningVar.assign(Tensor.ones([6]))
        let plain = maxPool2d(bn(conv(x)).relu(), kernelSize: 2)
        XCTAssertEqual(fused.scalars, plain.scalars)
        plain.backward(gFused)
        XCTAssert(gwFused.allClose(conv.weight.value.grad!, rtol: 1e-4, atol: 1e-5), "conv weight gradient")
        XCTAssert(ggFused.allClose(bn.weight.value.grad!, rtol: 1e-4, atol: 1e-5), "BN weight gradient")
        XCTAssertEqual(meanFused, bn.runningMean.value.scalars)
        XCTAssertEqual(varFused, bn.runningVar.value.scalars)
    }

    /// The direct kernels (conv_direct.c) take stride-1, one-group convolutions with K = Cin*KH*KW from
    /// 2 taps up to 144 and rows of at least 8 outputs (16 for the weight gradient), on AVX2 and
    /// AVX-512 only: the first layers of the face network and the Fashion-MNIST CNN.
    func testDirectConvolutionDispatchRules() {
        func shape(c: Int, cout: Int = 32, k: Int = 3, hw: Int, stride: Int = 1, groups: Int = 1) -> sk_conv_shape {
            var s = sk_conv_shape()
            s.n = 4; s.c = c; s.h = hw; s.w = hw; s.cout = cout; s.kh = k; s.kw = k
            s.sh = stride; s.sw = stride; s.ph = k / 2; s.pw = k / 2; s.dh = 1; s.dw = 1; s.groups = groups
            s.oh = (hw + 2 * (k / 2) - k) / stride + 1; s.ow = s.oh
            return s
        }
        forEachISA { isa in
            let on: Int32 = isa == "generic" ? 0 : 1
            var faces = shape(c: 3, hw: 64), fashion = shape(c: 1, hw: 28), widest = shape(c: 16, cout: 8, hw: 20)
            for weights in [Int32(0), 1] {
                XCTAssertEqual(sk_direct_conv_applies(&faces, weights), on, isa)
                XCTAssertEqual(sk_direct_conv_applies(&fashion, weights), on, isa)
                XCTAssertEqual(sk_direct_conv_applies(&widest, weights), on, "K = 144 on \(isa)")
            }
            let others = [("K = 153", shape(c: 17, hw: 20)), ("stride 2", shape(c: 3, hw: 64, stride: 2)),
                          ("2 groups", shape(c: 4, hw: 32, groups: 2)), ("1x1", shape(c: 3, k: 1, hw: 32))]
            for (name, s) in others {
                var s = s
                XCTAssertEqual(sk_direct_conv_applies(&s, 0), 0, "\(name) on \(isa)")
            }
            var narrow = shape(c: 3, hw: 12), tiny = shape(c: 3, hw: 7)
            XCTAssertEqual(sk_direct_conv_applies(&narrow, 0), on, isa)
            XCTAssertEqual(sk_direct_conv_applies(&narrow, 1), 0, isa)
            XCTAssertEqual(sk_direct_conv_applies(&tiny, 0), 0, isa)
        }
    }

    /// Fused convolution + pooling (and ReLU) of whole numbers: the same bits on every vector ISA as
    /// the separate ops on the portable path (values and all three gradients; many outputs are
    /// exactly 0, where ReLU passes no gradient).
    func testFusedConvPoolExactAcrossISAs() {
        let configs: [([Int], [Int], Size2, Size2, Int)] = [
            ([4, 3, 13, 19], [6, 3, 3, 3], 1, 1, 1),
            ([6, 2, 9, 9], [5, 2, 5, 5], 2, 1, 1),
            ([4, 4, 16, 34], [8, 2, 3, 3], 1, 1, 2),
            ([8, 1, 6, 7], [3, 1, 3, 3], 0, 1, 1),
            ([4, 73, 7, 10], [5, 73, 3, 3], 1, 1, 1),   // input gradient in blocks of 64, 8 and 1 channels
            ([4, 40, 6, 6], [7, 40, 3, 3], 1, 1, 1),    // ... 32 and 8
            ([4, 6, 11, 12], [4, 6, 3, 3], [2, 1], [2, 1], 1),   // row dilation, from the winners
        ]
        defer { Strata.numThreads = 2 }
        for threads in [1, 2] { for (i, (xs, ws, pad, dil, groups)) in configs.enumerated() { for relu in [false, true] {
            Strata.numThreads = threads
            var x = integerTensor(xs, seed: 50 + i), w = integerTensor(ws, seed: 60 + i), b = integerTensor([ws[0]], seed: 70 + i)
            x.requiresGrad = true; w.requiresGrad = true; b.requiresGrad = true
            Strata.restrictKernels(to: "generic")
            let pooled = maxPool2d(conv2d(x, weight: w, bias: b, padding: pad, dilation: dil, groups: groups), kernelSize: 2)
            let plain = relu ? pooled.relu() : pooled
            let g = integerTensor(plain.shape, seed: 80 + i)
            plain.backward(g)
            let expected = [plain.scalars, x.grad!.scalars, w.grad!.scalars, b.grad!.scalars]
            x.grad = nil; w.grad = nil; b.grad = nil
            forEachISA { isa in
                guard isa != "generic" else { return }
                guard let fused = conv2dMaxPool2d(x, weight: w, bias: b, padding: pad, dilation: dil, groups: groups, relu: relu) else {
                    return XCTFail("no fused kernel on \(isa) for \(xs)")
                }
                fused.backward(g)
                let got = [fused.scalars, x.grad!.scalars, w.grad!.scalars, b.grad!.scalars]
                x.grad = nil; w.grad = nil; b.grad = nil
                for (k, name) in ["output", "input gradient", "weight gradient", "bias gradient"].enumerated() {
                    assertSame(got[k], expected[k], "\(xs) \(name) on \(isa), threads \(threads), relu \(relu)")
                }
            }
        } } }
    }

    /// 2x2/stride-2 max pooling (winner codes on AVX-512 and AVX2, argmax indices on the portable
    /// path) gives the same values and gradients on every ISA: many ties (first position wins, row
    /// by row), odd heights and widths, widths under one vector and between vector sizes, wide rows.
    func testMaxPool2x2SameOnEveryISA() {
        let shapes: [[Int]] = [[1, 1, 2, 2], [2, 3, 5, 7], [1, 2, 4, 15], [3, 2, 9, 16], [2, 1, 7, 17], [1, 4, 11, 33],
                               [2, 2, 6, 31], [1, 1, 3, 64], [2, 3, 13, 45], [1, 2, 5, 301], [4, 8, 28, 28], [2, 3, 2, 3],
                               // rows of 4 to 7 outputs: whole steps that run into the next row, the last row masked
                               [3, 2, 14, 14], [2, 3, 10, 12], [1, 2, 9, 9], [1, 1, 11, 10], [2, 2, 6, 8]]
        defer { Strata.numThreads = 2 }
        for threads in [1, 2] { for (i, shape) in shapes.enumerated() {
            Strata.numThreads = threads
            // Values in {-1, 0, 1}: most windows tie; negative zero ties with zero.
            let v = integerTensor(shape, seed: 90 + i, range: 1).scalars.enumerated().map { $1 == 0 && $0 % 3 == 0 ? -0.0 : $1 }
            var x = Tensor(v, shape: shape)
            x.requiresGrad = true
            let g = Tensor.randn([shape[0], shape[1], shape[2] / 2, shape[3] / 2], seed: 100 + i)
            var expected: [[Float]]? = nil
            forEachISA { isa in
                let y = maxPool2d(x, kernelSize: 2)
                y.backward(g)
                let inference = noGrad { maxPool2d(x, kernelSize: 2) }
                let got = [y.scalars, x.grad!.scalars, inference.scalars]
                x.grad = nil
                if let expected {
                    assertSame(got[0], expected[0], "\(shape) values on \(isa)")
                    assertSame(got[1], expected[1], "\(shape) gradient on \(isa)")
                    assertSame(got[2], expected[0], "\(shape) inference values on \(isa)")
                } else {
                    expected = got
                }
            }
            // The portable path's winners: the first maximum of each window, row by row.
            let (h, w) = (shape[2], shape[3])
            var gx = [Float](repeating: 0, count: v.count), y = [Float](repeating: 0, count: g.count)
            let gs = g.scalars
            for plane in 0..<(shape[0] * shape[1]) { for oh in 0..<(h / 2) { for ow in 0..<(w / 2) {
                let cells = [(2 * oh, 2 * ow), (2 * oh, 2 * ow + 1), (2 * oh + 1, 2 * ow), (2 * oh + 1, 2 * ow + 1)].map { plane * h * w + $0 * w + $1 }
                let best = cells.map { v[$0] }.max()!
                gx[cells.first { v[$0] == best }!] = gs[(plane * (h / 2) + oh) * (w / 2) + ow]
                y[(plane * (h / 2) + oh) * (w / 2) + ow] = best
            } } }
            assertSame(expected?[0], y, "\(shape) values against the maximum")
            assertSame(expected?[1], gx, "\(shape) gradient against the first maximum")
        } }
    }

    func testBatchNormAgainstDoubleReference() {
        // [N, C, H, W] = [4, 3, 9, 7]: 63 values per row (3 vector blocks and a tail), shifted so the mean matters.
        let x = Tensor.randn([4, 3, 9, 7], seed: 11) * 2 + 5
        let w = Tensor([0.5, -1, 2]), b = Tensor([0, 1, -3])
        let (y, mean, variance) = batchNorm(x, weight: w, bias: b, eps: 1e-5)
        let v = x.scalars, ys = y.scalars
        for c in 0..<3 {
            var idx: [Int] = []
            for n in 0..<4 { for p in 0..<63 { idx.append((n * 3 + c) * 63 + p) } }
            let m = idx.reduce(0.0) { $0 + Double(v[$1]) } / Double(idx.count)
            let va = idx.reduce(0.0) { $0 + (Double(v[$1]) - m) * (Double(v[$1]) - m) } / Double(idx.count)
            XCTAssertEqual(Double(mean.scalars[c]), m, accuracy: 1e-5)
            XCTAssertEqual(Double(variance.scalars[c]), va, accuracy: 1e-4)
            for i in idx {
                let ref = (Double(v[i]) - m) / (va + 1e-5).squareRoot() * Double(w.scalars[c]) + Double(b.scalars[c])
                XCTAssertEqual(Double(ys[i]), ref, accuracy: 1e-4)
            }
        }
        // With given statistics (inference), the same formula with those.
        let yEval = batchNorm(x, weight: w, bias: b, statistics: (Tensor([5, 5, 5]), Tensor([4, 4, 4])), eps: 0).y
        XCTAssertEqual(yEval.scalars[0], (v[0] - 5) / 2 * 0.5, accuracy: 1e-6)
        XCTAssertEqual(yEval.scalars[63 * 2], (v[63 * 2] - 5) / 2 * 2 - 3, accuracy: 1e-5)
    }

    func testPooling() {
        let x = Tensor.arange(16).reshape([1, 1, 4, 4])
        assertClose(maxPool2d(x, kernelSize: 2), [5, 7, 13, 15], shape: [1, 1, 2, 2])
        assertClose(avgPool2d(x, kernelSize: 2), [2.5, 4.5, 10.5, 12.5], shape: [1, 1, 2, 2])
        // 3x3 windows, stride 2, padding 1: padded cells never win a max, count as 0 in the mean.
        assertClose(maxPool2d(x, kernelSize: 3, stride: 2, padding: 1), [5, 7, 13, 15])
        assertClose(avgPool2d(x, kernelSize: 3, stride: 2, padding: 1), [10.0 / 9, 24.0 / 9, 51.0 / 9, 90.0 / 9])
        var neg = -Tensor.arange(16).reshape([1, 1, 4, 4])
        neg = maxPool2d(neg, kernelSize: 3, stride: 2, padding: 1)
        assertClose(neg, [0, -1, -4, -5])
    }

    // MARK: shape ops and gathering

    func testShapeOps() {
        let x = Tensor.arange(6).reshape([2, 3])
        assertClose(x.T, [0, 3, 1, 4, 2, 5], shape: [3, 2])
        assertClose(x.reshape([3, -1]), [0, 1, 2, 3, 4, 5], shape: [3, 2])
        let y = Tensor.arange(24).reshape([2, 3, 4])
        let p = y.permute(2, 0, 1)
        XCTAssertEqual(p.shape, [4, 2, 3])
        XCTAssertEqual(p[3, 1, 2], y[1, 2, 3])
        assertClose(Tensor([1, 2]).reshape([2, 1]).expand([2, 3]), [1, 1, 1, 2, 2, 2])
        assertClose(Tensor.arange(10).slice(axis: 0, start: 1, end: 8, step: 3), [1, 4, 7])
        assertClose(Tensor.arange(10).slice(axis: 0, start: -3), [7, 8, 9])
        assertClose(x.slice(axis: 1, start: 1, end: 2), [1, 4], shape: [2, 1])
        assertClose(Tensor.concat([x, Tensor([[9, 9, 9]])], axis: 0), [0, 1, 2, 3, 4, 5, 9, 9, 9], shape: [3, 3])
        assertClose(Tensor.concat([x, Tensor([[7], [8]])], axis: 1), [0, 1, 2, 7, 3, 4, 5, 8], shape: [2, 4])
        assertClose(Tensor.stack([Tensor([1, 2]), Tensor([3, 4])], axis: 1), [1, 3, 2, 4], shape: [2, 2])
        assertClose(Tensor([[1, 2]]).pad([(1, 0), (0, 2)], value: -1), [-1, -1, -1, -1, 1, 2, -1, -1], shape: [2, 4])
        XCTAssertEqual(Tensor.zeros([2, 1, 3]).squeeze().shape, [2, 3])
        XCTAssertEqual(Tensor.zeros([2, 3]).unsqueeze(1).shape, [2, 1, 3])
        XCTAssertEqual(Tensor.zeros([2, 3, 4, 5]).flatten(startDim: 1).shape, [2, 60])
    }

    func testGatherAndOneHot() {
        let t = Tensor([[1, 2], [3, 4], [5, 6]])
        assertClose(t.indexSelect(axis: 0, indices: [2, 0, 2]), [5, 6, 1, 2, 5, 6], shape: [3, 2])
        assertClose(t.indexSelect(axis: 1, indices: [1]), [2, 4, 6], shape: [3, 1])
        assertClose(t.gather(axis: 1, index: Tensor([[1], [0], [1]])), [2, 3, 6], shape: [3, 1])
        assertClose(Tensor.oneHot([2, 0], classes: 3), [0, 0, 1, 1, 0, 0], shape: [2, 3])
        assertClose(Tensor([1, 0]).oneHot(classes: 2), [0, 1, 1, 0], shape: [2, 2])
    }

    /// `topk` on hand-worked rows (ties keep the lower index first; NaN is the largest value, as
    /// in PyTorch), along the first axis, smallest first, with k = 0 and k = n, and against a full
    /// sort of random values along the middle axis of a 3-D tensor.
    func testTopK() {
        let t = Tensor([[3, 1, 4, 1, 5], [2, 7, 7, .nan, 0]])
        let (v, i) = t.topk(3)
        XCTAssertEqual(i.scalars, [4, 2, 0, 3, 1, 2])
        XCTAssertEqual(i.shape, [2, 3])
        XCTAssertEqual(Array(v.scalars[0..<3]), [5, 4, 3])
        XCTAssert(v.scalars[3].isNaN)
        XCTAssertEqual(Array(v.scalars[4...]), [7, 7])
        let (sv, si) = t.topk(2, largest: false)
        XCTAssertEqual(si.scalars, [1, 3, 4, 0])
        XCTAssertEqual(sv.scalars, [1, 1, 0, 2])
        let (cv, ci) = Tensor([[1, 9], [8, 2], [5, 5]]).topk(2, axis: 0)
        XCTAssertEqual(ci.scalars, [1, 0, 2, 2])
        XCTAssertEqual(cv.scalars, [8, 9, 5, 5])
        XCTAssertEqual(t.topk(0).values.shape, [2, 0])
        XCTAssertEqual(Tensor([2, 0, 1]).topk(3).indices.scalars, [0, 2, 1])

        var rng = RandomGenerator(seed: 8)
        let x = Tensor((0..<(3 * 7 * 4)).map { _ in rng.nextFloat() }, shape: [3, 7, 4])
        let (rv, ri) = x.topk(4, axis: 1)
        XCTAssertEqual(rv.shape, [3, 4, 4])
        for o in 0..<3 { for c in 0..<4 {
            let column = (0..<7).map { x.scalars[(o * 7 + $0) * 4 + c] }
            let sorted = column.enumerated().sorted { $0.element > $1.element }.prefix(4)
            for (j, s) in sorted.enumerated() {
                XCTAssertEqual(Int(ri.scalars[(o * 4 + j) * 4 + c]), s.offset)
                XCTAssertEqual(rv.scalars[(o * 4 + j) * 4 + c], s.element)
            }
        } }
    }

    // MARK: value semantics

    func testCopyOnWrite() {
        let a = Tensor([1, 2, 3])
        var b = a
        b.withUnsafeMutableBufferPointer { $0[0] = 9 }
        XCTAssertEqual(a.scalars, [1, 2, 3])
        XCTAssertEqual(b.scalars, [9, 2, 3])
        var r = a.reshape([3, 1])
        r.withUnsafeMutableBufferPointer { $0[2] = -1 }
        XCTAssertEqual(a.scalars, [1, 2, 3], "a reshape shares storage until written")
    }

    func testBufferPoolReusesFreedBuffers() {
        BufferPool.shared.trim()
        do { _ = Tensor.zeros([1 << 16]) }
        let cached = BufferPool.shared.cached
        XCTAssertEqual(cached, 4 << 16)
        do { _ = Tensor.zeros([1 << 16]) }
        XCTAssertEqual(BufferPool.shared.cached, cached, "the second tensor reuses the first one's buffer")
    }

    func testThreadCountIsSettable() {
        Strata.numThreads = 1
        XCTAssertEqual(Strata.numThreads, 1)
        Strata.numThreads = 2
        XCTAssertEqual(Strata.numThreads, 2)
        var hits = [Int](repeating: 0, count: 100)
        hits.withUnsafeMutableBufferPointer { h in
            let p = h.baseAddress!
            parallelFor(100) { i in p[i] += 1 }
        }
        XCTAssertEqual(hits, [Int](repeating: 1, count: 100))
    }

    /// Every index runs once, job after job, owned parts or not, also with more threads than
    /// cores (late workers then meet newer jobs); and with owned parts the caller runs the first
    /// part of each job, so the same thread keeps the same data from call to call.
    func testThreadPoolRunsEachIndexOnceAndKeepsPartsOnTheirThreads() {
        let saved = Strata.numThreads
        defer { Strata.numThreads = saved }
        for threads in [2, 3, 5] {
            Strata.numThreads = threads
            var counts = [Int](repeating: 0, count: 64)
            counts.withUnsafeMutableBufferPointer { c in
                let p = c.baseAddress!
                for job in 0..<4000 {
                    let n = job % 61 + 2
                    parallelFor(n, ownedParts: job % 3 == 0) { i in p[i] += 1 }
                    for i in 0..<n where p[i] != 1 {
                        XCTFail("\(threads) threads, job \(job) of \(n): index \(i) ran \(p[i]) times")
                        return
                    }
                    for i in 0..<n { p[i] = 0 }
                }
                // Jobs after a pause long enough for the workers to fall asleep.
                for job in 0..<10 {
                    usleep(2_000)
                    parallelFor(40, ownedParts: job % 2 == 0) { i in p[i] += 1 }
                    XCTAssertEqual(Array(c[0..<40]), [Int](repeating: 1, count: 40), "\(threads) threads, after a pause")
                    for i in 0..<40 { p[i] = 0 }
                }
            }
        }
        Strata.numThreads = 2
        let caller = pthread_self()
        var onCaller = [Int](repeating: 0, count: 8), jobs = 0
        onCaller.withUnsafeMutableBufferPointer { o in
            let p = o.baseAddress!
            for _ in 0..<500 {
                parallelFor(8, ownedParts: true) { i in
                    usleep(20)   // long enough that each thread's own part is waiting for it
                    if pthread_equal(pthread_self(), caller) != 0 { p[i] += 1 }
                }
                jobs += 1
            }
        }
        // A scheduler that hands out indices one by one in turn runs about half of 0..<4 on the
        // caller, and half of 4..<8; one that keeps parts runs nearly all of 0..<4 there, and 4..<8
        // on the worker. The margins leave room for a machine where the two threads share a core
        // (taskset -c 0 gives 74 % and 10 %), as a loaded CI machine may.
        let first = onCaller[0..<4].reduce(0, +), second = onCaller[4..<8].reduce(0, +)
        XCTAssertGreaterThan(first, 4 * jobs * 6 / 10, "caller ran \(onCaller) of \(jobs) jobs")
        XCTAssertLessThan(second, 4 * jobs * 3 / 10, "caller ran \(onCaller) of \(jobs) jobs")
    }
}
