import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// Optimizer steps against PyTorch's update rules, written out by hand.
final class OptimTests: XCTestCase {
    func param(_ v: [Float]) -> Parameter { Parameter(Tensor(v)) }

    func step(_ opt: Optimizer, _ p: Parameter, grad: [Float]) {
        p.grad = Tensor(grad)
        opt.step()
    }

    func testSGD() {
        let p = param([1])
        let plain = SGD([p], lr: 0.1)
        step(plain, p, grad: [0.5])
        XCTAssertEqual(p.value.scalars[0], 0.95, accuracy: 1e-6)

        let q = param([1])
        let mom = SGD([q], lr: 0.1, momentum: 0.9)
        step(mom, q, grad: [1])                 // buf = 1
        XCTAssertEqual(q.value.scalars[0], 0.9, accuracy: 1e-6)
        step(mom, q, grad: [1])                 // buf = 0.9 + 1
        XCTAssertEqual(q.value.scalars[0], 0.71, accuracy: 1e-6)

        let r = param([1])
        let nest = SGD([r], lr: 0.1, momentum: 0.9, nesterov: true)
        step(nest, r, grad: [1])                // g + 0.9 * buf = 1.9
        XCTAssertEqual(r.value.scalars[0], 0.81, accuracy: 1e-6)
        step(nest, r, grad: [1])                // buf = 1.9; g + 0.9 * 1.9 = 2.71
        XCTAssertEqual(r.value.scalars[0], 0.539, accuracy: 1e-6)

        let s = param([2])
        let wd = SGD([s], lr: 0.1, weightDecay: 0.5)
        step(wd, s, grad: [0])                  // g + wd * p = 1
        XCTAssertEqual(s.value.scalars[0], 1.9, accuracy: 1e-6)
    }

    func adamReference(_ p0: Double, _ grads: [Double], lr: Double, wd: Double, decoupled: Bool) -> Double {
        var p = p0, m = 0.0, v = 0.0
        for (t, g0) in grads.enumerated() {
            var g = g0
            if decoupled { p *= 1 - lr * wd } else { g += wd * p }
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            let mh = m / (1 - pow(0.9, Double(t + 1))), vh = v / (1 - pow(0.999, Double(t + 1)))
            p -= lr * mh / (vh.squareRoot() + 1e-8)
        }
        return p
    }

    func testAdamAndAdamW() {
        let grads: [Double] = [0.3, -1.2, 0.7, 0.05]
        for (decoupled, wd) in [(false, 0.0), (false, 0.1), (true, 0.1)] {
            let p = param([1.5])
            let opt: Optimizer = decoupled ? AdamW([p], lr: 0.01, weightDecay: Float(wd)) : Adam([p], lr: 0.01, weightDecay: Float(wd))
            for g in grads { step(opt, p, grad: [Float(g)]) }
            XCTAssertEqual(Double(p.value.scalars[0]), adamReference(1.5, grads, lr: 0.01, wd: wd, decoupled: decoupled), accuracy: 1e-6)
        }
    }

    /// RMSprop's rule (PyTorch's documentation), in double.
    func rmspropReference(_ p0: Double, _ grads: [Double], lr: Double, wd: Double = 0, momentum: Double = 0, centered: Bool = false) -> Double {
        var (p, v, a, buf) = (p0, 0.0, 0.0, 0.0)
        for g0 in grads {
            let g = g0 + wd * p
            v = 0.99 * v + 0.01 * g * g
            var ms = v
            if centered { a = 0.99 * a + 0.01 * g; ms -= a * a }
            let d = g / (ms.squareRoot() + 1e-8)
            if momentum > 0 { buf = momentum * buf + d; p -= lr * buf } else { p -= lr * d }
        }
        return p
    }

    /// RMSprop against its rule written out, and against what PyTorch 2.15's `torch.optim.RMSprop`
    /// gave for the same start and gradients (in float64): plain, with momentum, centered, and
    /// centered with momentum and weight decay.
    func testRMSprop() {
        let grads: [Double] = [0.3, -1.2, 0.7, 0.05]
        let cases: [(momentum: Double, centered: Bool, wd: Double, torch: Double)] = [
            (0, false, 0, 1.4440446858547615), (0.9, false, 0, 1.3215825712636273),
            (0, true, 0, 1.4437958663230703), (0.5, true, 0.1, 1.3706374822705594),
        ]
        for c in cases {
            let p = param([1.5])
            let opt = RMSprop([p], lr: 0.01, weightDecay: Float(c.wd), momentum: Float(c.momentum), centered: c.centered)
            for g in grads { step(opt, p, grad: [Float(g)]) }
            let got = Double(p.value.scalars[0])
            XCTAssertEqual(got, rmspropReference(1.5, grads, lr: 0.01, wd: c.wd, momentum: c.momentum, centered: c.centered), accuracy: 1e-6, "\(c)")
            XCTAssertEqual(got, c.torch, accuracy: 1e-6, "\(c) against PyTorch")
        }
    }

    /// One parallel pass over all parameters (pieces crossing from one parameter into the next)
    /// gives every element the same update as the scalar rule, on 1 and 2 threads; a parameter
    /// without a gradient is left alone.
    func testOptimizersUpdateEveryElementOfManyParameters() {
        defer { Strata.numThreads = 2 }
        let sizes = [70_001, 3, 16_385, 40_000, 1, 17, 30_000]
        // Gradients of 0.3–1.3 against decays of at most 0.5 · |p| ≤ 0.5: no sum near zero, where
        // Adam's m / √v turns float rounding into a difference of the learning rate.
        func grad(_ i: Int, _ j: Int, _ t: Int) -> Float { 0.3 + Float((i * 31 + j * 7 + t * 13) % 97) / 97 }
        func start(_ i: Int, _ j: Int) -> Float { Float((i * 17 + j * 5) % 89) / 40 - 1 }
        for threads in [1, 2] {
            Strata.numThreads = threads
            for kind in ["adam", "adamw", "sgd", "rmsprop", "rmsprop-centered"] {
                let ps = sizes.enumerated().map { i, n in param((0..<n).map { start(i, $0) }) }
                let opt: Optimizer
                switch kind {
                case "adam": opt = Adam(ps, lr: 0.01, weightDecay: 0.1)
                case "adamw": opt = AdamW(ps, lr: 0.01, weightDecay: 0.1)
                case "rmsprop": opt = RMSprop(ps, lr: 0.01, weightDecay: 0.1, momentum: 0.9)
                case "rmsprop-centered": opt = RMSprop(ps, lr: 0.01, weightDecay: 0.1, centered: true)
                default: opt = SGD(ps, lr: 0.1, momentum: 0.9, weightDecay: 0.5)
                }
                for t in 0..<3 {
                    for (i, p) in ps.enumerated() { p.grad = i == 4 ? nil : Tensor((0..<sizes[i]).map { grad(i, $0, t) }) }
                    opt.step()
                }
                var worst = 0.0
                for (i, p) in ps.enumerated() {
                    let got = p.value.scalars
                    for j in 0..<sizes[i] {
                        let gs = (0..<3).map { Double(grad(i, j, $0)) }, p0 = Double(start(i, j))
                        let want: Double
                        if i == 4 {
                            want = p0
                        } else if kind == "sgd" {
                            var (x, buf) = (p0, 0.0)
                            for (t, g) in gs.enumerated() { let gg = g + 0.5 * x; buf = t == 0 ? gg : 0.9 * buf + gg; x -= 0.1 * buf }
                            want = x
                        } else if kind.hasPrefix("rmsprop") {
                            want = kind == "rmsprop" ? rmspropReference(p0, gs, lr: 0.01, wd: 0.1, momentum: 0.9)
                                : rmspropReference(p0, gs, lr: 0.01, wd: 0.1, centered: true)
                        } else {
                            want = adamReference(p0, gs, lr: 0.01, wd: 0.1, decoupled: kind == "adamw")
                        }
                        worst = max(worst, abs(Double(got[j]) - want))
                    }
                }
                XCTAssertLessThan(worst, 2e-6, "\(kind), \(threads) threads")
            }
        }
    }

    func testOptimizerStateRoundTrip() throws {
        let makers: [([Parameter]) -> Optimizer] = [
            { Adam($0, lr: 0.1) }, { SGD($0, lr: 0.1, momentum: 0.9) },
            { RMSprop($0, lr: 0.1, momentum: 0.9, centered: true) }, { RMSprop($0, lr: 0.1) },
        ]
        for make in makers {
            let p = param([1, 2]), q = param([1, 2])
            let a = make([p]), b = make([q])
            step(a, p, grad: [1, -1])
            step(a, p, grad: [0.2, -0.7])
            q.assign(p.value)
            try b.loadState(a.state())
            step(a, p, grad: [0.5, 0.5])
            step(b, q, grad: [0.5, 0.5])
            XCTAssertEqual(p.value.scalars, q.value.scalars, "\(type(of: a))")
        }
        // A centered RMSprop's state without its running mean of gradients is refused.
        let p = param([1, 2])
        let plain = RMSprop([p], lr: 0.1)
        step(plain, p, grad: [1, 1])
        XCTAssertThrowsError(try RMSprop([p], lr: 0.1, centered: true).loadState(plain.state())) {
            XCTAssert("\($0)".contains("grad_avg"), "\($0)")
        }
    }

    func testSchedules() {
        let s = StepLR(stepSize: 2, gamma: 0.5)
        XCTAssertEqual((0..<6).map { s.learningRate(at: $0, base: 1) }, [1, 1, 0.5, 0.5, 0.25, 0.25])
        let c = CosineAnnealing(totalSteps: 10, minRate: 0.1)
        XCTAssertEqual(c.learningRate(at: 0, base: 1), 1, accuracy: 1e-6)
        XCTAssertEqual(c.learningRate(at: 5, base: 1), 0.55, accuracy: 1e-6)
        XCTAssertEqual(c.learningRate(at: 10, base: 1), 0.1, accuracy: 1e-6)
        XCTAssertEqual(c.learningRate(at: 20, base: 1), 0.1, accuracy: 1e-6)
        let w = LinearWarmup(steps: 4, then: StepLR(stepSize: 1, gamma: 0.5))
        XCTAssertEqual((0..<7).map { w.learningRate(at: $0, base: 2) }, [0, 0.5, 1, 1.5, 2, 1, 0.5])
    }

    func testClipGradNorm() {
        let a = param([0, 0]), b = param([0])
        a.grad = Tensor([3, 0])
        b.grad = Tensor([4])
        XCTAssertEqual(clipGradNorm([a, b], maxNorm: 1), 5, accuracy: 1e-5)
        XCTAssertEqual(a.grad!.scalars[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(b.grad!.scalars[0], 0.8, accuracy: 1e-5)
        XCTAssertEqual(clipGradNorm([a, b], maxNorm: 10), 1, accuracy: 1e-4)
        XCTAssertEqual(b.grad!.scalars[0], 0.8, accuracy: 1e-5, "below the limit nothing changes")
    }
}
