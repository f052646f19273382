import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// One row of the layer table. Every layer is checked the same way (Keras's layer-test idea):
/// output shape and, where given, hand-computed values; parameter names and shapes as in
/// PyTorch's state_dict; gradients of input and parameters against finite differences;
/// rebuilding from its architecture description.
struct LayerCase {
    let name: String
    let make: () -> Module
    let input: Tensor
    var setWeights: [String: Tensor] = [:]
    var expectedShape: [Int]
    var expected: [Float]? = nil
    var states: [String: [Int]] = [:]
    var training = false
    var gradCheck = true
}

let layerCases: [LayerCase] = [
    LayerCase(name: "Linear", make: { Linear(2, 2) }, input: Tensor([[1, 1], [2, -1]]),
              setWeights: ["weight": Tensor([[1, 2], [3, 4]]), "bias": Tensor([0.5, -1])],
              expectedShape: [2, 2], expected: [3.5, 6, 0.5, 1], states: ["weight": [2, 2], "bias": [2]]),
    LayerCase(name: "Linear no bias 3-D", make: { Linear(3, 2, bias: false) }, input: Tensor.randn([2, 4, 3], seed: 1),
              expectedShape: [2, 4, 2], states: ["weight": [2, 3]]),
    LayerCase(name: "Conv2D", make: { Conv2D(1, 1, kernelSize: 2) }, input: Tensor.arange(9).reshape([1, 1, 3, 3]),
              setWeights: ["weight": Tensor([1, 0, 0, 1], shape: [1, 1, 2, 2]), "bias": Tensor([1])],
              expectedShape: [1, 1, 2, 2], expected: [0 + 4 + 1, 1 + 5 + 1, 3 + 7 + 1, 4 + 8 + 1], states: ["weight": [1, 1, 2, 2], "bias": [1]]),
    LayerCase(name: "Conv2D stride pad groups", make: { Conv2D(4, 6, kernelSize: 3, stride: 2, padding: 1, groups: 2) },
              input: Tensor.randn([2, 4, 5, 5], seed: 2), expectedShape: [2, 6, 3, 3], states: ["weight": [6, 2, 3, 3], "bias": [6]]),
    LayerCase(name: "ConvTranspose2D", make: { ConvTranspose2D(1, 1, kernelSize: 2, stride: 2) }, input: Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2]),
              setWeights: ["weight": Tensor([1, 0, 0, 1], shape: [1, 1, 2, 2]), "bias": Tensor([0.5])],
              expectedShape: [1, 1, 4, 4], expected: [1.5, 0.5, 2.5, 0.5, 0.5, 1.5, 0.5, 2.5, 3.5, 0.5, 4.5, 0.5, 0.5, 3.5, 0.5, 4.5],
              states: ["weight": [1, 1, 2, 2], "bias": [1]]),
    LayerCase(name: "ConvTranspose2D stride pad output padding groups",
              make: { ConvTranspose2D(4, 6, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1, groups: 2) },
              input: Tensor.randn([2, 4, 3, 3], seed: 2), expectedShape: [2, 6, 6, 6], states: ["weight": [4, 3, 3, 3], "bias": [6]]),
    LayerCase(name: "Conv1D", make: { Conv1D(1, 1, kernelSize: 2) }, input: Tensor.arange(5).reshape([1, 1, 5]),
              setWeights: ["weight": Tensor([1, 2], shape: [1, 1, 2]), "bias": Tensor([0.5])],
              expectedShape: [1, 1, 4], expected: [0 + 2 + 0.5, 1 + 4 + 0.5, 2 + 6 + 0.5, 3 + 8 + 0.5], states: ["weight": [1, 1, 2], "bias": [1]]),
    LayerCase(name: "Conv1D stride pad dilation groups", make: { Conv1D(4, 6, kernelSize: 3, stride: 2, padding: 2, dilation: 2, groups: 2) },
              input: Tensor.randn([2, 4, 9], seed: 2), expectedShape: [2, 6, 5], states: ["weight": [6, 2, 3], "bias": [6]]),
    LayerCase(name: "MaxPool1D", make: { MaxPool1D(2) }, input: Tensor.arange(6).reshape([1, 1, 6]),
              expectedShape: [1, 1, 3], expected: [1, 3, 5], gradCheck: false),
    LayerCase(name: "AvgPool1D stride pad", make: { AvgPool1D(3, stride: 2, padding: 1) }, input: Tensor.arange(6).reshape([1, 1, 6]),
              expectedShape: [1, 1, 3], expected: [1.0 / 3, 6.0 / 3, 12.0 / 3]),
    // Ceil mode's last window holds taps 5 and 6 (padding): its divisor is 2, not 3.
    LayerCase(name: "AvgPool1D ceil mode", make: { AvgPool1D(3, stride: 2, padding: 1, ceilMode: true) }, input: Tensor.arange(6).reshape([1, 1, 6]),
              expectedShape: [1, 1, 4], expected: [1.0 / 3, 6.0 / 3, 12.0 / 3, 5.0 / 2]),
    LayerCase(name: "MaxPool1D dilation", make: { MaxPool1D(2, stride: 1, dilation: 2) }, input: Tensor.arange(6).reshape([1, 1, 6]),
              expectedShape: [1, 1, 4], expected: [2, 3, 4, 5], gradCheck: false),
    LayerCase(name: "GlobalAvgPool 1-D", make: { GlobalAvgPool() }, input: Tensor.arange(6).reshape([1, 2, 3]),
              expectedShape: [1, 2], expected: [1, 4]),
    LayerCase(name: "BatchNorm1d train [N, C, L]", make: { BatchNorm1d(2, eps: 0) }, input: Tensor([1, 3, 10, 30, 5, 7, 50, 70], shape: [2, 2, 2]),
              expectedShape: [2, 2, 2], expected: [-1.3416408, -0.4472136, -1.3416408, -0.4472136, 0.4472136, 1.3416408, 0.4472136, 1.3416408],
              training: true),
    LayerCase(name: "MaxPool2D", make: { MaxPool2D(2) }, input: Tensor.arange(16).reshape([1, 1, 4, 4]),
              expectedShape: [1, 1, 2, 2], expected: [5, 7, 13, 15], gradCheck: false),
    LayerCase(name: "AvgPool2D", make: { AvgPool2D(2) }, input: Tensor.arange(16).reshape([1, 1, 4, 4]),
              expectedShape: [1, 1, 2, 2], expected: [2.5, 4.5, 10.5, 12.5]),
    // 5x5 in 2x2 windows, ceil mode: the last row and column are windows of their own.
    LayerCase(name: "MaxPool2D ceil mode", make: { MaxPool2D(2, ceilMode: true) }, input: Tensor.arange(25).reshape([1, 1, 5, 5]),
              expectedShape: [1, 1, 3, 3], expected: [6, 8, 9, 16, 18, 19, 21, 23, 24], gradCheck: false),
    // Windows over rows (and columns) {0, 1}, {1, 2, 3}, {3}; each averages its input values only.
    LayerCase(name: "AvgPool2D ceil mode, padding left out", make: { AvgPool2D(3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false) },
              input: Tensor.arange(16).reshape([1, 1, 4, 4]), expectedShape: [1, 1, 3, 3], expected: [2.5, 4, 5, 8.5, 10, 11, 12.5, 14, 15]),
    // PyTorch's AdaptiveAvgPool2d((3, 2)) and AdaptiveMaxPool2d((3, 2)) of arange(20) as 4x5.
    LayerCase(name: "AdaptiveAvgPool2D", make: { AdaptiveAvgPool2D([3, 2]) }, input: Tensor.arange(20).reshape([1, 1, 4, 5]),
              expectedShape: [1, 1, 3, 2], expected: [3.5, 5.5, 8.5, 10.5, 13.5, 15.5]),
    LayerCase(name: "AdaptiveMaxPool2D", make: { AdaptiveMaxPool2D([3, 2]) }, input: Tensor.arange(20).reshape([1, 1, 4, 5]),
              expectedShape: [1, 1, 3, 2], expected: [7, 9, 12, 14, 17, 19], gradCheck: false),
    LayerCase(name: "AdaptiveAvgPool1D", make: { AdaptiveAvgPool1D(3) }, input: Tensor.arange(7).reshape([1, 1, 7]),
              expectedShape: [1, 1, 3], expected: [1, 3, 5]),
    LayerCase(name: "AdaptiveMaxPool1D", make: { AdaptiveMaxPool1D(3) }, input: Tensor.arange(7).reshape([1, 1, 7]),
              expectedShape: [1, 1, 3], expected: [2, 4, 6], gradCheck: false),
    LayerCase(name: "GlobalMaxPool", make: { GlobalMaxPool() }, input: Tensor([1, 5, 2, 0, -3, -1, -7, -2], shape: [1, 2, 2, 2]),
              expectedShape: [1, 2], expected: [5, -1], gradCheck: false),
    LayerCase(name: "GlobalMaxPool 1-D", make: { GlobalMaxPool() }, input: Tensor([1, 5, 2, -3, -1, -7], shape: [1, 2, 3]),
              expectedShape: [1, 2], expected: [5, -1], gradCheck: false),
    LayerCase(name: "GlobalAvgPool", make: { GlobalAvgPool() }, input: Tensor.arange(8).reshape([1, 2, 2, 2]),
              expectedShape: [1, 2], expected: [1.5, 5.5]),
    LayerCase(name: "Flatten", make: { Flatten() }, input: Tensor.arange(12).reshape([2, 3, 2]),
              expectedShape: [2, 6], expected: (0..<12).map(Float.init)),
    LayerCase(name: "BatchNorm1d train", make: { BatchNorm1d(2, eps: 0) }, input: Tensor([[1, 10], [3, 30]]),
              setWeights: ["weight": Tensor([1, 2]), "bias": Tensor([0, 1])],
              expectedShape: [2, 2], expected: [-1, -1, 1, 3],
              states: ["weight": [2], "bias": [2], "running_mean": [2], "running_var": [2]], training: true),
    LayerCase(name: "BatchNorm2d eval", make: { BatchNorm2d(1) }, input: Tensor([2, 4], shape: [1, 1, 1, 2]),
              setWeights: ["running_mean": Tensor([1]), "running_var": Tensor([3.99999])],
              expectedShape: [1, 1, 1, 2], expected: [0.5, 1.5], states: ["weight": [1], "bias": [1], "running_mean": [1], "running_var": [1]]),
    LayerCase(name: "BatchNorm2d train", make: { BatchNorm2d(3) }, input: Tensor.randn([2, 3, 2, 2], seed: 3),
              expectedShape: [2, 3, 2, 2], training: true),
    LayerCase(name: "LayerNorm", make: { LayerNorm(2, eps: 0) }, input: Tensor([[1, 3], [0, 10]]),
              setWeights: ["weight": Tensor([1, 2]), "bias": Tensor([0, 0.5])],
              expectedShape: [2, 2], expected: [-1, 2.5, -1, 2.5], states: ["weight": [2], "bias": [2]]),
    LayerCase(name: "Dropout eval", make: { Dropout(0.5) }, input: Tensor([1, 2, 3]), expectedShape: [3], expected: [1, 2, 3]),
    LayerCase(name: "ReLU", make: { ReLU() }, input: Tensor([-1, 0.5, 2]), expectedShape: [3], expected: [0, 0.5, 2], gradCheck: false),
    LayerCase(name: "LeakyReLU", make: { LeakyReLU(0.1) }, input: Tensor([-1, 0.5, 2]), expectedShape: [3], expected: [-0.1, 0.5, 2], gradCheck: false),
    LayerCase(name: "Sigmoid", make: { Sigmoid() }, input: Tensor([0]), expectedShape: [1], expected: [0.5]),
    LayerCase(name: "Tanh", make: { Tanh() }, input: Tensor([0, 100]), expectedShape: [2], expected: [0, 1]),
    LayerCase(name: "GELU", make: { GELU() }, input: Tensor([0, 1]), expectedShape: [2], expected: [0, 0.8413447]),
    LayerCase(name: "Softmax", make: { Softmax() }, input: Tensor([[0, 0]]), expectedShape: [1, 2], expected: [0.5, 0.5]),
    LayerCase(name: "Embedding", make: { Embedding(3, 2) }, input: Tensor([[2, 0]]),
              setWeights: ["weight": Tensor([[1, 2], [3, 4], [5, 6]])], expectedShape: [1, 2, 2], expected: [5, 6, 1, 2],
              states: ["weight": [3, 2]]),
    // Tanh rather than ReLU: a finite difference across ReLU's kink is not a derivative.
    LayerCase(name: "Sequential", make: { Sequential(Flatten(), Linear(4, 3), Tanh(), Linear(3, 2)) }, input: Tensor.randn([2, 2, 2], seed: 4),
              expectedShape: [2, 2], states: ["1.weight": [3, 4], "1.bias": [3], "3.weight": [2, 3], "3.bias": [2]]),
    LayerCase(name: "ResidualBlock", make: { ResidualBlock(2, 3, stride: 2) }, input: Tensor.randn([2, 2, 4, 4], seed: 5),
              expectedShape: [2, 3, 2, 2],
              states: ["conv1.weight": [3, 2, 3, 3], "bn1.weight": [3], "bn1.bias": [3], "bn1.running_mean": [3], "bn1.running_var": [3],
                       "conv2.weight": [3, 3, 3, 3], "bn2.weight": [3], "bn2.bias": [3], "bn2.running_mean": [3], "bn2.running_var": [3],
                       "downsample.0.weight": [3, 2, 1, 1], "downsample.1.weight": [3], "downsample.1.bias": [3],
                       "downsample.1.running_mean": [3], "downsample.1.running_var": [3]], training: true),
    LayerCase(name: "Residual", make: { Residual(Linear(3, 3)) }, input: Tensor.randn([2, 3], seed: 6), expectedShape: [2, 3],
              states: ["body.weight": [3, 3], "body.bias": [3]]),
]

final class LayerTests: XCTestCase {
    func build(_ c: LayerCase) -> Module {
        RandomGenerator.manualSeed(11)
        let m = c.make()
        let states = Dictionary(uniqueKeysWithValues: m.namedStates())
        for (k, v) in c.setWeights { states[k]!.assign(v) }
        m.train(c.training)
        return m
    }

    func testEveryLayer() throws {
        var failures: [String] = []
        for c in layerCases {
            let m = build(c)
            let y = noGrad { m(c.input) }
            if y.shape != c.expectedShape { failures.append("\(c.name): shape \(y.shape), expected \(c.expectedShape)") }
            if let e = c.expected, zip(y.scalars, e).contains(where: { Swift.abs($0 - $1) > 1e-4 * Swift.max(1, Swift.abs($1)) }) || y.count != e.count {
                failures.append("\(c.name): output \(y.scalars), expected \(e)")
            }
            if !c.states.isEmpty {
                let got = Dictionary(uniqueKeysWithValues: m.namedStates().map { ($0.0, $0.1.shape) })
                if got != c.states { failures.append("\(c.name): states \(got), expected \(c.states)") }
            }
            // Rebuilt from its architecture description, with the same weights: same output.
            let copy = try ModuleRegistry.build(ModuleRegistry.spec(of: m))
            try copy.loadStateDict(m.stateDict())
            copy.train(c.training)
            let m2 = build(c)   // fresh running statistics for BatchNorm in training mode
            let y1 = noGrad { m2(c.input) }, y2 = noGrad { copy(c.input) }
            if !y1.allClose(y2, rtol: 1e-6, atol: 1e-6) { failures.append("\(c.name): rebuilt model differs") }
            if c.gradCheck { failures += gradCheck(c) }
        }
        XCTAssert(failures.isEmpty, failures.joined(separator: "\n"))
    }

    /// Central differences of sum(layer(x) * w) for the input and every trainable parameter.
    func gradCheck(_ c: LayerCase) -> [String] {
        let isIndex = c.make() is Embedding
        var failures: [String] = []
        let m = build(c)
        var x = c.input
        if !isIndex { x.requiresGrad = true }
        let y = m(x)
        let w = Tensor.randn(y.shape, seed: 99)
        (y * w).sum().backward()
        func loss() -> Double {
            let fresh = build(c)
            for (name, p) in fresh.namedStates() { p.assign(Dictionary(uniqueKeysWithValues: m.namedStates())[name]!.value) }
            let o = noGrad { fresh(xv) }
            return zip(o.scalars, w.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        var xv = c.input.detached()
        let h: Float = 1e-2
        var targets: [(String, () -> [Float], ([Float]) -> Void, Tensor?)] = []
        if !isIndex {
            targets.append(("input", { xv.scalars }, { xv = Tensor($0, shape: c.input.shape) }, x.grad))
        }
        for (name, p) in m.namedParameters() {
            let original = p.value.detached()
            targets.append((name, { p.value.scalars }, { p.assign(Tensor($0, shape: original.shape)) }, p.grad))
        }
        for (name, get, set, grad) in targets {
            guard let grad else { failures.append("\(c.name): \(name) got no gradient"); continue }
            let base = get()
            for j in 0..<Swift.min(base.count, 12) {
                var v = base
                v[j] = base[j] + h; set(v)
                let lp = loss()
                v[j] = base[j] - h; set(v)
                let lm = loss()
                set(base)
                let numeric = (lp - lm) / Double(2 * h), analytic = Double(grad.scalars[j])
                if Swift.abs(numeric - analytic) > 3e-3 + 2e-2 * Swift.abs(numeric) {
                    failures.append("\(c.name): d/d\(name)[\(j)] analytic \(analytic), numeric \(numeric)")
                    break
                }
            }
        }
        return failures
    }

    func testTrainAndEvalModes() {
        RandomGenerator.manualSeed(1)
        let d = Dropout(0.5)
        let x = Tensor.ones([1000])
        let y = d(x).scalars
        XCTAssert(y.allSatisfy { $0 == 0 || $0 == 2 }, "kept values are scaled by 1/(1-p)")
        XCTAssertEqual(Double(y.filter { $0 == 0 }.count) / 1000, 0.5, accuracy: 0.06)
        // The mask follows the generator's stream: kept exactly where nextFloat() < 1 - p.
        RandomGenerator.manualSeed(7)
        let y3 = Dropout(0.3)(Tensor.ones([4096])).scalars
        var rng = RandomGenerator(seed: 7)
        let keep: Float = 1 - 0.3
        XCTAssertEqual(y3, (0..<4096).map { _ in rng.nextFloat() < keep ? 1 / keep : 0 })
        d.eval()
        XCTAssertEqual(d(x).scalars, x.scalars)
        // BatchNorm: training updates running statistics (unbiased variance, momentum 0.1).
        let bn = BatchNorm1d(1)
        _ = bn(Tensor([[1], [3]]))
        XCTAssertEqual(bn.runningMean.value.scalars[0], 0.2, accuracy: 1e-6)
        XCTAssertEqual(bn.runningVar.value.scalars[0], 0.9 + 0.1 * 2, accuracy: 1e-6)
        let model = Sequential(Linear(2, 2), Dropout(0.3), BatchNorm1d(2))
        model.eval()
        XCTAssert(model.namedModules().allSatisfy { !$0.1.isTraining })
        model.train()
        XCTAssert(model.namedModules().allSatisfy { $0.1.isTraining })
    }

    /// A 1-D convolutional network learns to tell two tones apart from raw noisy samples (periods
    /// 16 and 6, random phase), and survives a model file: shape inference, save and load.
    func testConv1DNetworkLearnsTonesAndSurvivesAModelFile() throws {
        var rng = RandomGenerator(seed: 21)
        func batch(_ n: Int) -> (Tensor, [Int]) {
            var xs: [Float] = [], ys: [Int] = []
            for _ in 0..<n {
                let y = rng.nextInt(2), period: Float = y == 0 ? 16 : 6, phase = rng.nextFloat() * 2 * .pi
                ys.append(y)
                for t in 0..<64 { xs.append(sin(2 * .pi * Float(t) / period + phase) + 0.3 * (rng.nextFloat() - 0.5)) }
            }
            return (Tensor(xs, shape: [n, 1, 64]), ys)
        }
        RandomGenerator.manualSeed(4)
        let model = Sequential(Conv1D(1, 8, kernelSize: 5, padding: 2), ReLU(), MaxPool1D(2), Conv1D(8, 8, kernelSize: 5, padding: 2),
                               ReLU(), GlobalAvgPool(), Linear(8, 2))
        let opt = Adam(model.parameters(), lr: 0.02)
        let (testX, testY) = batch(200)
        func accuracy(_ m: Module) -> Float {
            let pred = noGrad { m(testX) }.argmax(axis: 1).scalars.map { Int($0) }
            return Float(zip(pred, testY).filter { $0 == $1 }.count) / Float(testY.count)
        }
        model.eval()
        let before = accuracy(model)
        model.train()
        for _ in 0..<120 {
            let (x, y) = batch(32)
            opt.zeroGrad()
            crossEntropy(model(x), y).backward()
            opt.step()
        }
        model.eval()
        let after = accuracy(model)
        XCTAssertLessThan(before, 0.75)
        XCTAssertGreaterThanOrEqual(after, 0.95, "accuracy \(before) -> \(after)")
        XCTAssertEqual(try ShapeInference.outputShape(of: model, for: [5, 1, 64]), [5, 2])
        XCTAssertThrowsError(try ShapeInference.outputShape(of: model, for: [5, 2, 64])) { XCTAssertTrue("\($0)".contains("[N, 1, L]"), "\($0)") }
        XCTAssertThrowsError(try ShapeInference.outputShape(of: model, for: [5, 1, 1])) { XCTAssertTrue("\($0)".contains("does not fit"), "\($0)") }
        let path = testTemp("tones.safetensors")
        try SavedModel(model: model, info: ModelInfo(model: model, classNames: ["low", "high"], inputShape: [1, 64])).save(to: path)
        let loaded = try SavedModel.load(path).model
        XCTAssertEqual(noGrad { loaded(testX) }.scalars, noGrad { model(testX) }.scalars)
        XCTAssertEqual(loaded.namedStates().map { $0.0 }, ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"])
        // `strata predict` has no file format for raw sequences, and says so (it used to call this a graph model).
        let (status, _, err) = try runStrata(["predict", "--model", path, path])
        XCTAssertEqual(status, 1)
        XCTAssertTrue(err.contains("\(path): this model takes sequences of 1x64 values"), err)
    }

    /// A convolutional autoencoder (Conv2D down to 4x4, ConvTranspose2D back up to 8x8) learns to
    /// reconstruct bars it has not seen, and is rebuilt from its architecture.
    func testConvTransposeAutoencoderLearnsToReconstruct() throws {
        var rng = RandomGenerator(seed: 5)
        func bars(_ n: Int) -> Tensor {   // one bright row or column per image, at a random place
            var px = [Float](repeating: 0, count: n * 64)
            for i in 0..<n {
                let at = rng.nextInt(8), across = rng.nextInt(2) == 0
                for k in 0..<8 { px[i * 64 + (across ? at * 8 + k : k * 8 + at)] = 1 }
            }
            return Tensor(px, shape: [n, 1, 8, 8])
        }
        RandomGenerator.manualSeed(3)
        let model = Sequential(Conv2D(1, 8, kernelSize: 3, stride: 2, padding: 1), ReLU(),
                               ConvTranspose2D(8, 1, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1))
        let opt = Adam(model.parameters(), lr: 0.02)
        let test = bars(64)
        func loss() -> Float { noGrad { ((model(test) - test) * (model(test) - test)).mean().item } }
        let before = loss()
        for _ in 0..<200 {
            let x = bars(32)
            opt.zeroGrad()
            let d = model(x) - x
            (d * d).mean().backward()
            opt.step()
        }
        let after = loss()
        print("autoencoder: mean squared error on unseen bars \(before) -> \(after)")
        XCTAssertLessThan(after, before / 10, "mean squared error \(before) -> \(after)")
        XCTAssertEqual(try ShapeInference.outputShape(of: model, for: [3, 1, 8, 8]), [3, 1, 8, 8])
        XCTAssertEqual(try ShapeInference.outputShape(of: ConvTranspose2D(2, 3, kernelSize: [3, 2], stride: [1, 4], padding: [1, 0], dilation: 2),
                                                      for: [1, 2, 5, 6]), [1, 3, 7, 23])
        XCTAssertThrowsError(try ShapeInference.outputShape(of: model, for: [3, 2, 8, 8])) { XCTAssertTrue("\($0)".contains("[N, 1, H, W]"), "\($0)") }
        // Rebuilt from its architecture with its weights (a model file's path, without class names).
        let copy = try ModuleRegistry.build(ModuleRegistry.spec(of: model))
        try copy.loadStateDict(model.stateDict())
        XCTAssertEqual(noGrad { copy(test) }.scalars, noGrad { model(test) }.scalars)
        XCTAssertEqual(copy.namedStates().map { $0.1.shape }, [[8, 1, 3, 3], [8], [8, 1, 3, 3], [1]])
    }

    func testDefaultInitialisationMatchesPyTorchBounds() {
        RandomGenerator.manualSeed(2)
        let fc = Linear(400, 50)
        let bound: Float = 1 / 20
        XCTAssert(fc.weight.value.scalars.allSatisfy { Swift.abs($0) <= bound })
        XCTAssertGreaterThan(fc.weight.value.scalars.map { Swift.abs($0) }.max()!, bound * 0.99)
        let conv = Conv2D(8, 4, kernelSize: 3)
        let cb = 1 / Float(72).squareRoot()
        XCTAssert(conv.weight.value.scalars.allSatisfy { Swift.abs($0) <= cb })
        let up = ConvTranspose2D(6, 8, kernelSize: [2, 2], groups: 2)   // PyTorch's fan-in: 8 / 2 * 2 * 2
        XCTAssert((up.weight.value.scalars + up.bias!.value.scalars).allSatisfy { Swift.abs($0) <= 0.25 })
        XCTAssertGreaterThan(up.weight.value.scalars.map { Swift.abs($0) }.max()!, 0.2)
        let conv1 = Conv1D(12, 8, kernelSize: 6, groups: 2)   // fan-in 6 * 6
        XCTAssert(conv1.weight.value.scalars.allSatisfy { Swift.abs($0) <= 1 / 6 })
        XCTAssertGreaterThan(conv1.weight.value.scalars.map { Swift.abs($0) }.max()!, 0.99 / 6)
        let emb = Embedding(1000, 10).weight.value.scalars
        let mean = emb.reduce(0, +) / Float(emb.count)
        let std = (emb.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(emb.count)).squareRoot()
        XCTAssertEqual(std, 1, accuracy: 0.03)
        XCTAssertEqual(BatchNorm2d(3).weight.value.scalars, [1, 1, 1])
    }

    func testSequentialRewritesGiveTheSameResults() {
        // ReLU in place, pooling before a monotone activation and the fused convolution + pooling
        // (+ ReLU, taken with 8 images on 2 threads) must not change outputs or gradients.
        RandomGenerator.manualSeed(4)
        let net = Sequential(Conv2D(1, 4, kernelSize: 3, padding: 1), ReLU(), MaxPool2D(2), Flatten(), Linear(16, 3))
        let x = Tensor.randn([8, 1, 4, 4], seed: 8)
        let y = net(x)
        y.sum().backward()
        let g1 = net.parameters().map { $0.grad!.scalars }
        net.zeroGrad()
        // The same layers called one by one, without the rewrites.
        var h = x
        for l in net.layers { h = l.forward(h) }
        XCTAssert(h.allClose(y, rtol: 1e-6, atol: 1e-7))
        h.sum().backward()
        for (a, b) in zip(g1, net.parameters().map { $0.grad!.scalars }) {
            XCTAssert(Tensor(a).allClose(Tensor(b), rtol: 1e-5, atol: 1e-6))
        }
    }

    func testPoolingBeforeTheActivationCanBeTurnedOff() {
        // Sequential.poolsBeforeActivation changes the order of the work, not the results.
        let net = Sequential(LeakyReLU(0.1), MaxPool2D(2), Flatten())
        func run() -> (y: [Float], g: [Float]) {
            var x = Tensor.randn([2, 3, 6, 6], seed: 5)
            x.requiresGrad = true
            let y = net(x)
            (y * y).sum().backward()
            return (y.scalars, x.grad!.scalars)
        }
        let pooledFirst = run()
        Sequential.poolsBeforeActivation = false
        defer { Sequential.poolsBeforeActivation = true }
        let inOrder = run()
        XCTAssertEqual(pooledFirst.y, inOrder.y)
        XCTAssertEqual(pooledFirst.g, inOrder.g)
    }

    /// STRATA_PROFILE's report names the work that bypasses `callAsFunction`: the fused
    /// convolution + ReLU + pooling, an activation applied in place, and the optimizer's step.
    func testProfileNamesFusedInPlaceAndOptimizerWork() throws {
        RandomGenerator.manualSeed(4)
        let net = Sequential(Conv2D(1, 4, kernelSize: 3, padding: 1), ReLU(), MaxPool2D(2), Flatten(), Linear(16, 5), ReLU(), Linear(5, 3))
        Profiler.reset()
        Profiler.isEnabled = true
        defer { Profiler.isEnabled = false; Profiler.reset() }
        let y = net(Tensor.randn([8, 1, 4, 4], seed: 8))
        XCTAssertEqual(y.shape, [8, 3])
        // "<total> ms <share>% <calls> calls <per call> ms/call  <entry>", one entry a line.
        func calls(_ entry: String) -> Int? {
            for line in Profiler.report().split(separator: "\n") where line.hasSuffix("  " + entry) {
                let words = line.split(separator: " ")
                return words.firstIndex(of: "calls").flatMap { Int(words[$0 - 1]) }
            }
            return nil
        }
        XCTAssertEqual(calls("forward Conv2D+ReLU+MaxPool2D [8, 4, 2, 2]"), 1, Profiler.report())
        XCTAssertEqual(calls("forward ReLU [8, 5]"), 1, Profiler.report())
        XCTAssertEqual(calls("forward Linear [8, 3]"), 1)
        XCTAssertNil(calls("forward Conv2D [8, 4, 4, 4]"), "the fused layers are one entry")

        var rng = RandomGenerator(seed: 3)
        let data = TensorDataset(Tensor((0..<(24 * 16)).map { _ in rng.nextNormal() }, shape: [24, 1, 4, 4]), labels: (0..<24).map { _ in rng.nextInt(3) })
        let trainer = Trainer(model: net, optimizer: SGD(net.parameters(), lr: 0.01), info: ModelInfo(architecture: [:], classNames: ["a", "b", "c"], inputShape: [1, 4, 4]))
        var options = FitOptions(epochs: 2, batchSize: 8, seed: 1)
        options.progress = .none
        Profiler.reset()
        try trainer.fit(data, options: options)
        XCTAssertEqual(calls("optimizer step"), 6, Profiler.report())
        XCTAssertEqual(calls("forward Conv2D+ReLU+MaxPool2D [8, 4, 2, 2]"), 6)
    }

    func testSummaryListsLayersWithShapesAndParameters() {
        let m = ModelZoo.fashionCNN()
        let rows = m.summary(inputShape: [1, 28, 28])
        XCTAssertEqual(rows.map { $0.name }, (0..<10).map(String.init))
        XCTAssertEqual(rows[0].outputShape, [1, 32, 28, 28])
        XCTAssertEqual(rows[6].outputShape, [1, 3136])
        XCTAssertEqual(rows[7].parameters, 3136 * 128 + 128)
        XCTAssertEqual(rows.reduce(0) { $0 + $1.parameters }, 421_642)
        XCTAssert(m.summaryTable(inputShape: [1, 28, 28]).contains("Trainable parameters: 421642"))
    }
}
