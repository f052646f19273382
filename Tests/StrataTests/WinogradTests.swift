import XCTest
import CStrata
@testable import StrataCore

/// Winograd F(2x2, 3x3) and F(4x4, 3x3) (Sources/CStrata/winograd.c) against the direct
/// (im2col + GEMM) path: forward, input gradient, weight gradient and bias gradient, the fused
/// convolution + pooling, on every ISA the machine has, 1 and 2 threads.
///
/// Error bounds, relative to the result's largest magnitude (max |winograd - direct| <= bound *
/// max |direct|), for each of the output, the input gradient and the weight gradient:
/// F(2x2, 3x3) 1e-5; F(4x4, 3x3) 5e-5 (its transforms multiply by up to 5 and divide by 6 and
/// 24, so the rounding of the transformed values grows: measured up to about 5e-6). On small
/// whole numbers every intermediate value of F(2x2, 3x3) is a multiple of 1/4 and exact, so there
/// it must agree with the direct path bit for bit.
final class WinogradTests: XCTestCase {
    static let bound: Double = 1e-5
    static let boundF4: Double = 5e-5
    /// Modes of sk_winograd_force that take every shape, with their tile size and bound.
    static let everywhere: [(mode: Int32, tile: Int32, bound: Double)] = [(2, 2, bound), (3, 4, boundF4)]

    override func tearDown() {
        sk_winograd_force(-1)
        Strata.restrictKernels(to: nil)
        Strata.numThreads = 2
        super.tearDown()
    }

    struct Config {
        var n, cin, cout, h, w, pad: Int
        var bias: Bool
    }

    /// Odd and even sizes, padding 0 to 3 (3: the input gradient crops), 1/3/32/64 channels,
    /// batch 1 and 5, with and without bias; tile blocks that split rows and images (the 64x70
    /// images: 1,120 tiles each) and rows over 128 tiles (width 300).
    static let configs: [Config] = [
        Config(n: 1, cin: 1, cout: 4, h: 7, w: 7, pad: 1, bias: true),
        Config(n: 5, cin: 3, cout: 8, h: 8, w: 10, pad: 0, bias: false),
        Config(n: 5, cin: 32, cout: 64, h: 14, w: 14, pad: 1, bias: true),
        Config(n: 1, cin: 64, cout: 32, h: 9, w: 6, pad: 2, bias: true),
        Config(n: 5, cin: 64, cout: 64, h: 7, w: 7, pad: 1, bias: false),
        Config(n: 1, cin: 3, cout: 32, h: 13, w: 11, pad: 0, bias: true),
        Config(n: 5, cin: 1, cout: 32, h: 28, w: 28, pad: 1, bias: true),
        Config(n: 2, cin: 3, cout: 5, h: 5, w: 6, pad: 3, bias: true),
        Config(n: 5, cin: 1, cout: 4, h: 64, w: 70, pad: 1, bias: true),
        Config(n: 1, cin: 2, cout: 3, h: 5, w: 300, pad: 1, bias: false),
        Config(n: 5, cin: 32, cout: 3, h: 4, w: 3, pad: 0, bias: true),
    ]

    func shape(_ c: Config) -> sk_conv_shape {
        var s = sk_conv_shape()
        s.n = c.n; s.c = c.cin; s.h = c.h; s.w = c.w; s.cout = c.cout; s.kh = 3; s.kw = 3
        s.sh = 1; s.sw = 1; s.ph = c.pad; s.pw = c.pad; s.dh = 1; s.dw = 1; s.groups = 1
        s.oh = c.h + 2 * c.pad - 2; s.ow = c.w + 2 * c.pad - 2
        return s
    }

    /// Output, input, weight and bias gradients of one convolution with Winograd on (every shape,
    /// or `mode`) or off.
    func run(_ c: Config, x: Tensor, w: Tensor, b: Tensor?, g: (([Int]) -> Tensor), winograd: Bool, mode: Int32 = 2) -> [[Float]] {
        sk_winograd_force(winograd ? mode : 0)
        defer { sk_winograd_force(-1) }
        var s = shape(c)
        if mode >= 2 {
            let tile: Int32 = winograd && s.oh >= 2 && s.ow >= 2 ? (mode == 3 ? 4 : 2) : 0
            XCTAssertEqual(sk_winograd_applies(&s), tile)
            XCTAssertEqual(sk_winograd_applies_weight_grad(&s), tile)
            XCTAssertEqual(sk_winograd_applies_input_grad(&s), tile)
        }
        let y = conv2d(x, weight: w, bias: b, padding: Size2(c.pad, c.pad))
        y.backward(g(y.shape))
        var out = [y.scalars, x.grad!.scalars, w.grad!.scalars]
        if let b { out.append(b.grad!.scalars); b.grad = nil }
        x.grad = nil; w.grad = nil
        return out
    }

    func relativeError(_ a: [Float], _ ref: [Float]) -> Double {
        var diff = 0.0, scale = 0.0
        for (p, q) in zip(a, ref) {
            diff = Swift.max(diff, Swift.abs(Double(p) - Double(q)))
            scale = Swift.max(scale, Swift.abs(Double(q)))
        }
        return scale > 0 ? diff / scale : diff
    }

    func integerTensor(_ shape: [Int], seed: Int, range: Float = 3) -> Tensor {
        Tensor(Tensor.randn(shape, seed: seed).scalars.map { Swift.max(-range, Swift.min(range, ($0 * range / 1.5).rounded())) }, shape: shape)
    }

    /// Random normal data: every result of both tile sizes within its bound of the direct path's,
    /// on each ISA and thread count. Prints the worst relative error seen per result.
    func testMatchesDirectConvolutionWithinBound() {
        for (mode, tile, bound) in Self.everywhere { matchesDirect(mode: mode, tile: tile, bound: bound) }
    }

    func matchesDirect(mode: Int32, tile: Int32, bound: Double) {
        let names = ["output", "input gradient", "weight gradient", "bias gradient"]
        var worst = [Double](repeating: 0, count: 4)
        for isa in machineISAs {
            Strata.restrictKernels(to: isa == "avx512" ? nil : isa)
            XCTAssertEqual(Strata.cpuKernel, isa)
            for threads in [1, 2] {
                Strata.numThreads = threads
                for (i, c) in Self.configs.enumerated() {
                    var x = Tensor.randn([c.n, c.cin, c.h, c.w], seed: 100 + i), w = Tensor.randn([c.cout, c.cin, 3, 3], seed: 200 + i)
                    var b = c.bias ? Tensor.randn([c.cout], seed: 300 + i) : nil
                    x.requiresGrad = true; w.requiresGrad = true; b?.requiresGrad = true
                    let gy = { (s: [Int]) in Tensor.randn(s, seed: 400 + i) }
                    let direct = run(c, x: x, w: w, b: b, g: gy, winograd: false)
                    let wino = run(c, x: x, w: w, b: b, g: gy, winograd: true, mode: mode)
                    for k in direct.indices {
                        XCTAssertEqual(wino[k].count, direct[k].count)
                        let e = relativeError(wino[k], direct[k])
                        worst[k] = Swift.max(worst[k], e)
                        XCTAssertLessThanOrEqual(e, bound, "F(\(tile)x\(tile)) \(isa) threads \(threads) config \(i) \(c): \(names[k]) relative error \(e)")
                    }
                }
            }
        }
        Strata.restrictKernels(to: nil)
        print("Winograd F(\(tile)x\(tile),3x3) worst relative error vs direct (bound \(bound)): " +
              zip(names, worst).map { "\($0) \($1)" }.joined(separator: ", "))
    }

    /// Whole numbers: Winograd's intermediates are exact, so every result equals the direct
    /// path's bit for bit (this pins down every index of the transforms and the tiling).
    func testExactOnWholeNumbers() {
        for isa in machineISAs {
            Strata.restrictKernels(to: isa == "avx512" ? nil : isa)
            for threads in [1, 2] {
                Strata.numThreads = threads
                for (i, c) in Self.configs.enumerated() {
                    var x = integerTensor([c.n, c.cin, c.h, c.w], seed: 500 + i), w = integerTensor([c.cout, c.cin, 3, 3], seed: 600 + i)
                    var b = c.bias ? integerTensor([c.cout], seed: 700 + i) : nil
                    x.requiresGrad = true; w.requiresGrad = true; b?.requiresGrad = true
                    let gy = { (s: [Int]) in self.integerTensor(s, seed: 800 + i) }
                    let direct = run(c, x: x, w: w, b: b, g: gy, winograd: false)
                    let wino = run(c, x: x, w: w, b: b, g: gy, winograd: true)
                    for k in direct.indices {
                        let bad = direct[k].indices.filter { direct[k][$0] != wino[k][$0] }
                        if let j = bad.first {
                            XCTFail("\(isa) threads \(threads) config \(i) \(c): result \(k): \(bad.count) differ, first at \(j): \(wino[k][j]) instead of \(direct[k][j])")
                        }
                    }
                }
            }
        }
    }

    /// Mode 1 (where it pays): F(4x4, 3x3) in all three passes at 32 -> 64 channels (14x14 and
    /// 32x32) and at 64 -> 64, none under 16 channels or under 256 (2x2) tiles per thread. Each
    /// against the direct path, within F(4x4)'s bound on whole numbers and normal data.
    func testWhereItPaysModeMixesPaths() {
        let configs: [(Config, forward: Bool, inputGrad: Bool)] = [
            (Config(n: 12, cin: 32, cout: 64, h: 14, w: 14, pad: 1, bias: true), true, true),
            (Config(n: 4, cin: 32, cout: 64, h: 32, w: 32, pad: 1, bias: true), true, true),
            (Config(n: 8, cin: 64, cout: 64, h: 24, w: 23, pad: 1, bias: false), true, true),
            (Config(n: 12, cin: 8, cout: 64, h: 14, w: 14, pad: 1, bias: true), false, false),
            (Config(n: 1, cin: 64, cout: 64, h: 14, w: 14, pad: 1, bias: true), false, false),
        ]
        for isa in machineISAs {
            Strata.restrictKernels(to: isa == "avx512" ? nil : isa)
            for threads in [1, 2] {
                Strata.numThreads = threads
                for (i, (c, forward, inputGrad)) in configs.enumerated() {
                    var s = shape(c)
                    sk_winograd_force(1)
                    XCTAssertEqual(sk_winograd_applies(&s), forward ? 4 : 0, "\(c)")
                    XCTAssertEqual(sk_winograd_applies_weight_grad(&s), forward ? 4 : 0, "\(c)")
                    XCTAssertEqual(sk_winograd_applies_input_grad(&s), inputGrad ? 4 : 0, "\(c)")
                    sk_winograd_force(-1)
                    for whole in [true, false] {
                        let make = { (shape: [Int], seed: Int) in whole ? self.integerTensor(shape, seed: seed) : Tensor.randn(shape, seed: seed) }
                        var x = make([c.n, c.cin, c.h, c.w], 1000 + i), w = make([c.cout, c.cin, 3, 3], 1010 + i)
                        var b = c.bias ? make([c.cout], 1020 + i) : nil
                        x.requiresGrad = true; w.requiresGrad = true; b?.requiresGrad = true
                        let gy = { (s: [Int]) in make(s, 1030 + i) }
                        let direct = run(c, x: x, w: w, b: b, g: gy, winograd: false)
                        let mixed = run(c, x: x, w: w, b: b, g: gy, winograd: true, mode: 1)
                        for k in direct.indices {
                            let tag = "\(isa) threads \(threads) \(c) whole \(whole) result \(k)"
                            XCTAssertLessThanOrEqual(relativeError(mixed[k], direct[k]), Self.boundF4, tag)
                        }
                    }
                }
            }
        }
    }

    /// The fused convolution + 2x2 max pooling with Winograd on equals it with Winograd off:
    /// F(2x2, 3x3) bit for bit on whole numbers and within its bound on normal data, F(4x4, 3x3)
    /// within its bound on normal data (whole numbers tie in the pooling windows, and F(4x4)'s
    /// rounding may pick another of the tied winners, which sends the gradient elsewhere).
    func testFusedConvPoolWithWinograd() throws {
        let configs: [Config] = [
            Config(n: 8, cin: 32, cout: 64, h: 14, w: 14, pad: 1, bias: true),
            Config(n: 6, cin: 1, cout: 32, h: 28, w: 28, pad: 1, bias: true),
            Config(n: 4, cin: 3, cout: 8, h: 11, w: 9, pad: 0, bias: false),
            Config(n: 5, cin: 4, cout: 6, h: 7, w: 10, pad: 2, bias: true),
        ]
        var ran = 0
        for isa in machineISAs {
            Strata.restrictKernels(to: isa == "avx512" ? nil : isa)
            for threads in [1, 2] {
                Strata.numThreads = threads
                for (i, c) in configs.enumerated() {
                    for whole in [true, false] {
                      for (mode, _, bound) in Self.everywhere where !(whole && mode == 3) {
                        var x = whole ? integerTensor([c.n, c.cin, c.h, c.w], seed: 900 + i) : Tensor.randn([c.n, c.cin, c.h, c.w], seed: 900 + i)
                        var w = whole ? integerTensor([c.cout, c.cin, 3, 3], seed: 910 + i) : Tensor.randn([c.cout, c.cin, 3, 3], seed: 910 + i)
                        var b = c.bias ? (whole ? integerTensor([c.cout], seed: 920 + i) : Tensor.randn([c.cout], seed: 920 + i)) : nil
                        x.requiresGrad = true; w.requiresGrad = true; b?.requiresGrad = true
                        var results: [[[Float]]] = []
                        for on in [false, true] {
                            sk_winograd_force(on ? mode : 0)
                            guard let y = conv2dMaxPool2d(x, weight: w, bias: b, padding: Size2(c.pad, c.pad)) else {
                                XCTAssertEqual(isa, "generic", "no fused kernel on \(isa)")
                                break
                            }
                            let g = whole ? integerTensor(y.shape, seed: 930 + i) : Tensor.randn(y.shape, seed: 930 + i)
                            y.backward(g)
                            var r = [y.scalars, x.grad!.scalars, w.grad!.scalars]
                            if let b { r.append(b.grad!.scalars); b.grad = nil }
                            x.grad = nil; w.grad = nil
                            results.append(r)
                        }
                        sk_winograd_force(-1)
                        guard results.count == 2 else { continue }
                        ran += 1
                        for k in results[0].indices {
                            let tag = "\(isa) threads \(threads) \(c) mode \(mode) whole \(whole) result \(k)"
                            if whole && mode == 2 {
                                XCTAssertEqual(results[1][k], results[0][k], tag)
                            } else {
                                XCTAssertLessThanOrEqual(relativeError(results[1][k], results[0][k]), bound, tag)
                            }
                        }
                      }
                    }
                }
            }
        }
        if ran == 0 { throw XCTSkip("the fused kernel needs AVX2 or AVX-512") }
    }

    /// The conv2d rows of the gradient-check table, against finite differences, with each tile
    /// size forced on (rows of other shapes take the direct path as before).
    func testGradientCheckRowsWithWinograd() {
        defer { sk_winograd_force(-1) }
        let checker = GradCheckTests(name: "winograd rows", testClosure: { _ in })
        var failures: [String] = []
        for (mode, _, _) in Self.everywhere {
            sk_winograd_force(mode)
            for c in gradCases where c.name.hasPrefix("conv2d") {
                for seed in 0..<2 { failures += checker.check(c, seed: seed).map { "mode \(mode): \($0)" } }
            }
        }
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }

    /// Only 3x3, stride 1, dilation 1, one group, outputs of at least 2x2; mode 1 also wants 16
    /// channels in and out and 256 (2x2) tiles per thread and takes 4x4 tiles, modes 2 and 3 take
    /// every such shape in 2x2 and 4x4 tiles; the switch follows sk_winograd_force and falls back
    /// to STRATA_WINOGRAD (default 1, where it pays).
    /// Single small images whose filters are kept (inference: no gradient for the weight) take the
    /// channels-last F(4x4, 3x3) path: plain and fused with pooling and ReLU, their outputs are
    /// within F(4x4)'s bound of the direct path's on every ISA, on one thread and on two (which
    /// split the output channels, in blocks of 32 and 8 for 40 channels), on the first call (which
    /// transforms the filters) and the second (which reuses them). Edge tiles, padding 0 and 2.
    func testSmallImagesWithKeptFiltersMatchDirect() {
        let configs: [Config] = [
            Config(n: 1, cin: 32, cout: 64, h: 14, w: 14, pad: 1, bias: true),   // the Fashion CNN's second layer
            Config(n: 1, cin: 16, cout: 40, h: 13, w: 13, pad: 1, bias: false),
            Config(n: 1, cin: 24, cout: 16, h: 18, w: 15, pad: 0, bias: true),   // 16 x 13 outputs
            Config(n: 1, cin: 16, cout: 32, h: 12, w: 12, pad: 2, bias: true),
            Config(n: 1, cin: 20, cout: 48, h: 30, w: 28, pad: 1, bias: true),   // 56 tiles
            Config(n: 3, cin: 16, cout: 16, h: 14, w: 16, pad: 1, bias: true),   // images one at a time
            Config(n: 2, cin: 32, cout: 64, h: 14, w: 14, pad: 1, bias: true),   // ... too few to split by images
        ]
        var ran = 0, worst = 0.0
        forEachISA { isa in
            for threads in [1, 2] {
                Strata.numThreads = threads
                for (i, c) in configs.enumerated() {
                    var s = shape(c)
                    sk_winograd_force(1)
                    XCTAssertEqual(sk_winograd_applies_small(&s), 4, "\(c)")
                    let x = Tensor.randn([c.n, c.cin, c.h, c.w], seed: 950 + i)
                    let b = c.bias ? Tensor.randn([c.cout], seed: 970 + i) : nil
                    var results: [[[Float]]] = []
                    for mode: Int32 in [0, 1] {
                        sk_winograd_force(mode)
                        let w = Tensor.randn([c.cout, c.cin, 3, 3], seed: 960 + i)   // a fresh weight: no kept forms
                        var r: [[Float]] = []
                        for _ in 0..<2 {
                            r.append(conv2d(x, weight: w, bias: b, padding: Size2(c.pad, c.pad)).scalars)
                            if let y = conv2dMaxPool2d(x, weight: w, bias: b, padding: Size2(c.pad, c.pad), relu: true) {
                                r.append(y.scalars)
                            }
                        }
                        results.append(r)
                    }
                    sk_winograd_force(-1)
                    XCTAssertEqual(results[0].count, results[1].count)
                    for k in results[0].indices {
                        let tag = "\(isa) threads \(threads) \(c) result \(k)"
                        let err = relativeError(results[1][k], results[0][k])
                        worst = Swift.max(worst, err)
                        XCTAssertLessThanOrEqual(err, Self.boundF4, tag)
                        XCTAssertNotEqual(results[1][k], results[0][k], "the direct path again? \(tag)")
                    }
                    ran += 1
                }
            }
        }
        XCTAssertEqual(ran, configs.count * 2 * machineISAs.count)
        print("Channels-last F(4x4,3x3) for single small images, worst relative error vs direct (bound \(Self.boundF4)): \(worst)")
    }

    func testDispatchRules() {
        var small = shape(Config(n: 2, cin: 3, cout: 4, h: 8, w: 8, pad: 1, bias: false))
        var wide = shape(Config(n: 64, cin: 32, cout: 64, h: 14, w: 14, pad: 1, bias: false))
        XCTAssertEqual(sk_winograd_shape_ok(&small), 1)
        XCTAssertEqual(sk_winograd_shape_ok(&wide), 1)
        sk_winograd_force(2)
        XCTAssertEqual(sk_winograd_applies(&small), 2)
        XCTAssertEqual(sk_winograd_applies(&wide), 2)
        sk_winograd_force(3)
        XCTAssertEqual(sk_winograd_applies(&small), 4)
        XCTAssertEqual(sk_winograd_applies_input_grad(&small), 4)
        sk_winograd_force(1)
        XCTAssertEqual(sk_winograd_applies(&small), 0)
        XCTAssertEqual(sk_winograd_applies(&wide), 4)
        XCTAssertEqual(sk_winograd_applies_weight_grad(&wide), 4)
        XCTAssertEqual(sk_winograd_applies_input_grad(&wide), 4)
        var face = shape(Config(n: 64, cin: 32, cout: 64, h: 32, w: 32, pad: 1, bias: false))
        XCTAssertEqual(sk_winograd_applies_input_grad(&face), 4)
        var narrow = shape(Config(n: 64, cin: 8, cout: 64, h: 28, w: 28, pad: 1, bias: false))
        XCTAssertEqual(sk_winograd_applies_input_grad(&narrow), 0)   // under 16 channels: the direct path
        var first = shape(Config(n: 64, cin: 1, cout: 32, h: 28, w: 28, pad: 1, bias: true))
        XCTAssertEqual(sk_winograd_applies(&first), 0)
        // Single small images with kept filters: 16 to 64 tiles of 4x4, 16+ channels in and out.
        var one = shape(Config(n: 1, cin: 32, cout: 64, h: 14, w: 14, pad: 1, bias: false))
        XCTAssertEqual(sk_winograd_applies(&one), 0)
        XCTAssertEqual(sk_winograd_applies_small(&one), 4)
        var tiny = shape(Config(n: 1, cin: 32, cout: 64, h: 7, w: 7, pad: 1, bias: false))
        XCTAssertEqual(sk_winograd_applies_small(&tiny), 0)   // 4 tiles
        var large = shape(Config(n: 1, cin: 32, cout: 64, h: 40, w: 40, pad: 1, bias: false))
        XCTAssertEqual(sk_winograd_applies_small(&large), 0)   // 100 tiles
        XCTAssertEqual(sk_winograd_applies_small(&first), 0)   // 1 input channel
        sk_winograd_force(3)
        XCTAssertEqual(sk_winograd_applies_small(&one), 0)     // the forced modes test the batched path
        sk_winograd_force(0)
        XCTAssertEqual(sk_winograd_applies(&wide), 0)
        sk_winograd_force(-1)
        let env = ProcessInfo.processInfo.environment["STRATA_WINOGRAD"]
        // The default (no STRATA_WINOGRAD) is 1: where it pays.
        XCTAssertEqual(sk_winograd_enabled(), ["0": 0, "1": 1, "2": 2, "3": 3][env ?? ""] ?? 1)
        var t = small; t.sh = 2; t.oh = 4
        XCTAssertEqual(sk_winograd_shape_ok(&t), 0)
        t = small; t.dh = 2; t.oh = 6
        XCTAssertEqual(sk_winograd_shape_ok(&t), 0)
        t = small; t.groups = 3; t.c = 3; t.cout = 3
        XCTAssertEqual(sk_winograd_shape_ok(&t), 0)
        t = small; t.kh = 5; t.kw = 5; t.oh = 6; t.ow = 6
        XCTAssertEqual(sk_winograd_shape_ok(&t), 0)
        t = small; t.ow = 1
        XCTAssertEqual(sk_winograd_shape_ok(&t), 0)
    }
}
