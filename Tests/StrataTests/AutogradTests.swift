import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

final class AutogradTests: XCTestCase {
    func testSimpleGradient() {
        var x = Tensor([1, 2, 3, 4], shape: [2, 2])
        x.requiresGrad = true
        (x * x).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [2, 4, 6, 8])
    }

    func testGradientsAccumulateUntilCleared() {
        var x = Tensor([1, 2])
        x.requiresGrad = true
        (x * 3).sum().backward()
        (x * x).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [3 + 2, 3 + 4])
        x.grad = nil
        x.sum().backward()
        XCTAssertEqual(x.grad?.scalars, [1, 1])
    }

    func testLeafUsedTwiceGetsBothContributions() {
        var x = Tensor([2])
        x.requiresGrad = true
        let y = x * x * x + x   // 3x^2 + 1 = 13
        y.sum().backward()
        XCTAssertEqual(x.grad?.scalars, [13])
    }

    func testBroadcastGradientIsReducedToTheInputShape() {
        var bias = Tensor([0, 0, 0])
        bias.requiresGrad = true
        let x = Tensor.ones([4, 3])
        (x + bias).sum().backward()
        XCTAssertEqual(bias.grad?.shape, [3])
        XCTAssertEqual(bias.grad?.scalars, [4, 4, 4])
    }

    func testDetachAndNoGrad() {
        var x = Tensor([1, 2])
        x.requiresGrad = true
        let y = x * 2
        XCTAssertTrue(y.requiresGrad)
        XCTAssertFalse(y.detached().requiresGrad)
        let z = noGrad { x * 2 }
        XCTAssertFalse(z.requiresGrad)
        XCTAssertTrue(GradMode.isEnabled, "the scope restores grad mode")
        // Only the tracked path contributes.
        (x * y.detached()).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [2, 4])
    }

    func testRetainGraphAllowsASecondBackward() {
        var x = Tensor([3])
        x.requiresGrad = true
        let y = (x * x).sum()
        y.backward(retainGraph: true)
        y.backward()
        XCTAssertEqual(x.grad?.scalars, [12])
    }

    /// What an op saved for its backward is freed once its gradients are out, before the ops
    /// under it run (so a layer's activations go as the pass goes down), unless the graph is kept.
    func testSavedValuesAreFreedAsTheBackwardPassGoes() {
        final class Saved {}
        for retain in [false, true] {
            var x = Tensor([1, 2])
            x.requiresGrad = true
            weak var saved: Saved?
            var aliveBelow: Bool?
            let a = (x * 2).recorded("below", [x]) { g, _ in aliveBelow = saved != nil; return [g * 2] }
            let b: Tensor = {   // the op's closure is all that holds `s`
                let s = Saved()
                saved = s
                return (a * 3).recorded("above", [a]) { g, _ in withExtendedLifetime(s) { [g * 3] } }
            }()
            b.sum().backward(retainGraph: retain)
            XCTAssertEqual(aliveBelow, retain, retain ? "a kept graph keeps what its ops saved" : "the op above still held what it saved when the op below ran")
            XCTAssertEqual(x.grad?.scalars, [6, 6])
        }
    }

    /// BatchNorm's backward writes its input gradient over its saved input only when nothing can
    /// read that input again: not with a kept graph, not while a variable or another op holds it.
    func testBatchNormWritesItsInputGradientOverAnInputNothingElseHolds() {
        let w = Tensor.randn([3], seed: 2), b = Tensor.randn([3], seed: 3)
        for fused in [false, true] {
            let gy = Tensor.randn(fused ? [2, 3, 2, 2] : [2, 3, 4, 4], seed: 4)
            var reference: [Float] = []
            for mode in ["alone", "kept graph", "held", "shared"] {
                var x = Tensor.randn([2, 3, 4, 4], seed: 1)
                x.requiresGrad = true
                var node: GradNode?
                var base: UnsafeMutablePointer<Float>?
                var held: Tensor?
                let loss: Tensor = {
                    let h = x * 2
                    node = h.node
                    node!.retainsGrad = true
                    base = h.data
                    if mode == "held" { held = h }
                    let y = fused ? batchNormMaxPool2d(h, weight: w, bias: b, relu: true).y : batchNorm(h, weight: w, bias: b).y
                    let l = (y * gy).sum()
                    // The product saves h as well; written first, its backward runs after BatchNorm's.
                    return mode == "shared" ? (h * h).sum() + l : l
                }()
                loss.backward(retainGraph: mode == "kept graph")
                let reused = node!.grad!.data == base
                XCTAssertEqual(reused, mode == "alone", "fused \(fused), \(mode): gradient written over the input")
                let gx = x.grad!.scalars
                switch mode {
                case "alone": reference = gx
                case "shared":
                    let expected = zip(reference, x.scalars).map { $0 + 8 * $1 }   // d(sum (2x)^2)/dx = 8x
                    for (a, e) in zip(gx, expected) { XCTAssertEqual(a, e, accuracy: 1e-4 * Swift.max(1, Swift.abs(e))) }
                default: XCTAssertEqual(gx, reference, "fused \(fused), \(mode)")
                }
                if let held { XCTAssertEqual(held.scalars, x.scalars.map { 2 * $0 }, "a variable's values were overwritten") }
            }
        }
    }

    func testExplicitGradientAndRetainGrad() {
        var x = Tensor([1, 2, 3])
        x.requiresGrad = true
        let h = x * 2
        h.retainGrad()
        let y = h * h
        y.backward(Tensor([1, 0, 1]))
        XCTAssertEqual(h.grad?.scalars, [4, 0, 12])
        XCTAssertEqual(x.grad?.scalars, [8, 0, 24])
    }

    func testConstantsDoNotTrack() {
        let a = Tensor([1]), b = Tensor([2])
        XCTAssertFalse((a + b).requiresGrad)
    }

    func testParameterUpdateDoesNotDisturbASnapshot() {
        var w = Tensor([1, 1])
        w.requiresGrad = true
        let snapshot = w
        (w * 5).sum().backward()
        let g = w.grad!
        w.withUnsafeMutableBufferPointer { p in for i in 0..<p.count { p[i] -= 0.1 * g.scalars[i] } }
        XCTAssertEqual(snapshot.scalars, [1, 1])
        XCTAssertEqual(w.scalars, [0.5, 0.5])
        XCTAssertTrue(w.requiresGrad)
    }
}
