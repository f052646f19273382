import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// How a row's inputs are drawn. Ops with kinks or restricted domains get inputs away from them.
enum InputKind {
    case normal          // N(0, 1)
    case positive        // [0.5, 2)
    case awayFromZero    // |x| in [0.3, 1.5), random sign
    case distinct        // a shuffled grid with spacing 0.1 (no ties for max/min/pooling)
    case fixed(Tensor)   // a constant, not differentiated (conditions, indices)
}

/// One row of the gradient-check table: an op applied to inputs of the given shapes.
struct GradCase {
    let name: String
    let shapes: [[Int]]
    var kinds: [InputKind] = []
    let fn: ([Tensor]) -> Tensor

    init(_ name: String, _ shapes: [[Int]], _ kinds: [InputKind] = [], _ fn: @escaping ([Tensor]) -> Tensor) {
        self.name = name
        self.shapes = shapes
        self.kinds = kinds
        self.fn = fn
    }
}

/// Every differentiable op, with shapes that exercise broadcasting. Adding an op = adding a row.
let gradCases: [GradCase] = [
    // Broadcasting binary ops.
    GradCase("add", [[3, 4], [4]]) { $0[0] + $0[1] },
    GradCase("add both broadcast", [[2, 1, 3], [4, 1]]) { $0[0] + $0[1] },
    GradCase("sub", [[2, 3], [2, 1]]) { $0[0] - $0[1] },
    GradCase("mul", [[2, 3, 4], [3, 1]]) { $0[0] * $0[1] },
    GradCase("mul scalar tensor", [[3, 2], []]) { $0[0] * $0[1] },
    GradCase("div", [[3, 4], [1, 4]], [.normal, .awayFromZero]) { $0[0] / $0[1] },
    GradCase("pow", [[2, 3], [3]], [.positive, .normal]) { $0[0].pow($0[1]) },
    GradCase("maximum", [[4, 3], [3]], [.distinct, .distinct]) { $0[0].maximum($0[1]) },
    GradCase("minimum", [[2, 3], [2, 1]], [.distinct, .distinct]) { $0[0].minimum($0[1]) },
    GradCase("where", [[3, 4], [3, 4], [4]],
             [.fixed(Tensor([1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1], shape: [3, 4])), .normal, .normal]) {
        Tensor.where($0[0], $0[1], $0[2])
    },
    // Scalar forms.
    GradCase("add scalar", [[5]]) { $0[0] + 2 },
    GradCase("scalar minus", [[5]]) { 3 - $0[0] },
    GradCase("mul scalar", [[5]]) { $0[0] * -1.5 },
    GradCase("scalar div", [[5]], [.awayFromZero]) { 2 / $0[0] },
    GradCase("pow scalar", [[2, 3]], [.positive]) { $0[0].pow(2.5) },
    // Unary.
    GradCase("neg", [[4]]) { -$0[0] },
    GradCase("exp", [[3, 2]]) { $0[0].exp() },
    GradCase("log", [[3, 2]], [.positive]) { $0[0].log() },
    GradCase("sqrt", [[3, 2]], [.positive]) { $0[0].sqrt() },
    GradCase("abs", [[6]], [.awayFromZero]) { $0[0].abs() },
    GradCase("tanh", [[6]]) { $0[0].tanh() },
    GradCase("sigmoid", [[6]]) { $0[0].sigmoid() },
    GradCase("relu", [[6]], [.awayFromZero]) { $0[0].relu() },
    GradCase("leakyRelu", [[6]], [.awayFromZero]) { $0[0].leakyRelu(0.1) },
    GradCase("gelu", [[8]]) { $0[0].gelu() },
    GradCase("square", [[4]]) { $0[0].square() },
    GradCase("reciprocal", [[4]], [.awayFromZero]) { $0[0].reciprocal() },
    // Reductions.
    GradCase("sum all", [[3, 4]]) { $0[0].sum() },
    GradCase("sum axes keepDims", [[2, 3, 4]]) { $0[0].sum(axes: [0, 2], keepDims: true) },
    GradCase("mean axis", [[2, 3, 4]]) { $0[0].mean(axis: 1) },
    GradCase("max axis", [[3, 5]], [.distinct]) { $0[0].max(axis: 1) },
    GradCase("min axes", [[2, 3, 2]], [.distinct]) { $0[0].min(axes: [0, 2], keepDims: true) },
    GradCase("logsumexp", [[3, 4]]) { $0[0].logSumExp(axes: [1]) },
    GradCase("variance", [[4, 5]]) { $0[0].variance(axes: [0]) },
    GradCase("variance biased keepDims", [[2, 3, 4]]) { $0[0].variance(axes: [1, 2], keepDims: true, unbiased: false) },
    // Matrix products.
    GradCase("matmul", [[3, 4], [4, 5]]) { $0[0].matmul($0[1]) },
    GradCase("matmul batched broadcast", [[2, 1, 3, 4], [5, 4, 2]]) { $0[0].matmul($0[1]) },
    GradCase("matmul batch x matrix", [[2, 3, 4], [4, 5]]) { $0[0].matmul($0[1]) },
    GradCase("matmul vector-matrix", [[4], [4, 3]]) { $0[0].matmul($0[1]) },
    GradCase("matmul batch-vector", [[2, 3, 4], [4]]) { $0[0].matmul($0[1]) },
    GradCase("linear", [[5, 4], [3, 4], [3]]) { linear($0[0], weight: $0[1], bias: $0[2]) },
    GradCase("linear no bias 3-D", [[2, 5, 4], [3, 4]]) { linear($0[0], weight: $0[1]) },
    // Shape ops.
    GradCase("reshape", [[2, 6]]) { $0[0].reshape([3, -1]) * Tensor.arange(4) },
    GradCase("permute", [[2, 3, 4]]) { $0[0].permute(2, 0, 1) },
    GradCase("transpose", [[2, 3, 4]]) { $0[0].transposed(0, 2) },
    GradCase("matrix transpose", [[2, 3, 4]]) { $0[0].T },
    GradCase("expand", [[3, 1]]) { $0[0].expand([2, 3, 4]) },
    GradCase("slice step", [[4, 7]]) { $0[0].slice(axis: 1, start: 1, end: -1, step: 2) },
    GradCase("concat", [[2, 3], [2, 1], [2, 2]]) { Tensor.concat($0, axis: 1) },
    GradCase("stack", [[3, 2], [3, 2]]) { Tensor.stack($0, axis: 1) },
    GradCase("pad", [[1, 2, 3, 3]]) { $0[0].pad([(1, 0), (2, 1)], value: 0.5) },
    GradCase("flatten", [[2, 3, 2]]) { $0[0].flatten(startDim: 1) },
    // Gathering.
    GradCase("indexSelect repeats", [[4, 3]]) { $0[0].indexSelect(axis: 0, indices: [2, 0, 2, 3]) },
    GradCase("indexSelect axis 1", [[2, 4, 3]]) { $0[0].indexSelect(axis: 1, indices: [3, 1]) },
    GradCase("gather", [[3, 4]]) { $0[0].gather(axis: 1, index: Tensor([0, 3, 1, 1, 2, 0], shape: [3, 2])) },
    GradCase("topk", [[3, 5]]) { $0[0].topk(2).values },
    GradCase("topk smallest axis 0", [[4, 3]]) { $0[0].topk(3, axis: 0, largest: false).values },
    // Softmax.
    GradCase("softmax", [[3, 5]]) { $0[0].softmax() },
    GradCase("softmax inner axis", [[2, 4, 3]]) { $0[0].softmax(axis: 1) },
    GradCase("logSoftmax", [[3, 5]]) { $0[0].logSoftmax() },
    GradCase("logSoftmax inner axis", [[2, 3, 2]]) { $0[0].logSoftmax(axis: 1) },
    // Convolution and pooling.
    GradCase("conv2d", [[2, 3, 6, 5], [4, 3, 3, 3], [4]]) { conv2d($0[0], weight: $0[1], bias: $0[2]) },
    GradCase("conv2d stride pad", [[1, 2, 7, 6], [3, 2, 3, 2]]) { conv2d($0[0], weight: $0[1], stride: [2, 1], padding: [1, 2]) },
    GradCase("conv2d dilation", [[1, 2, 7, 7], [2, 2, 3, 3]]) { conv2d($0[0], weight: $0[1], padding: 2, dilation: 2) },
    GradCase("conv2d groups", [[2, 4, 5, 5], [6, 2, 3, 3], [6]]) { conv2d($0[0], weight: $0[1], bias: $0[2], padding: 1, groups: 2) },
    GradCase("conv2d 1x1", [[2, 3, 4, 4], [5, 3, 1, 1]]) { conv2d($0[0], weight: $0[1]) },
    // A Winograd F(2x2, 3x3) shape (odd sizes, padding 2); WinogradTests checks the conv2d rows with it on.
    GradCase("conv2d 3x3 pad 2", [[2, 3, 7, 6], [4, 3, 3, 3], [4]]) { conv2d($0[0], weight: $0[1], bias: $0[2], padding: 2) },
    GradCase("conv1d", [[2, 3, 9], [4, 3, 3], [4]]) { conv1d($0[0], weight: $0[1], bias: $0[2]) },
    GradCase("convTranspose2d", [[2, 3, 4, 3], [3, 4, 3, 3], [4]]) { convTranspose2d($0[0], weight: $0[1], bias: $0[2]) },
    GradCase("convTranspose2d stride pad output padding dilation groups", [[2, 4, 3, 4], [4, 3, 3, 2], [6]]) {
        convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: [2, 3], padding: [1, 0], outputPadding: [1, 2], dilation: [1, 2], groups: 2)
    },
    GradCase("conv1d stride pad dilation groups", [[2, 4, 13], [6, 2, 3], [6]]) {
        conv1d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 2, dilation: 2, groups: 2)
    },
    GradCase("maxPool1d stride pad", [[2, 3, 9]], [.distinct]) { maxPool1d($0[0], kernelSize: 3, stride: 2, padding: 1) },
    GradCase("avgPool1d stride pad", [[2, 3, 9]]) { avgPool1d($0[0], kernelSize: 4, stride: 2, padding: 1) },
    GradCase("maxPool2d", [[2, 2, 6, 6]], [.distinct]) { maxPool2d($0[0], kernelSize: 2) },
    GradCase("maxPool2d stride pad", [[1, 2, 7, 7]], [.distinct]) { maxPool2d($0[0], kernelSize: 3, stride: 2, padding: 1) },
    GradCase("avgPool2d", [[2, 2, 6, 6]]) { avgPool2d($0[0], kernelSize: 2) },
    GradCase("avgPool2d stride pad", [[1, 2, 7, 7]]) { avgPool2d($0[0], kernelSize: 3, stride: 2, padding: 1) },
    GradCase("maxPool2d ceil dilation", [[1, 2, 8, 7]], [.distinct]) { maxPool2d($0[0], kernelSize: 2, stride: 2, padding: 1, dilation: [2, 1], ceilMode: true) },
    GradCase("maxPool2d 2x2 ceil", [[2, 2, 5, 7]], [.distinct]) { maxPool2d($0[0], kernelSize: 2, ceilMode: true) },
    GradCase("avgPool2d ceil padding left out", [[1, 2, 8, 7]]) { avgPool2d($0[0], kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false) },
    GradCase("avgPool2d ceil padding counted", [[1, 2, 8, 7]]) { avgPool2d($0[0], kernelSize: 3, stride: 2, padding: 1, ceilMode: true) },
    GradCase("pool2d uneven pads, dilated average", [[1, 2, 9, 8]]) {
        pool2d($0[0], max: false, PoolWindows(kernel: [3, 2], stride: [2, 3], padBefore: [0, 1], padAfter: [2, 1], dilation: [2, 1],
                                              ceilMode: true, countIncludePad: false), "pool2d")
    },
    GradCase("adaptiveAvgPool2d", [[2, 2, 7, 5]]) { adaptiveAvgPool2d($0[0], outputSize: [3, 2]) },
    GradCase("adaptiveAvgPool2d larger", [[1, 2, 3, 4]]) { adaptiveAvgPool2d($0[0], outputSize: [5, 6]) },
    GradCase("adaptiveMaxPool2d", [[2, 2, 7, 5]], [.distinct]) { adaptiveMaxPool2d($0[0], outputSize: [3, 2]) },
    GradCase("adaptiveAvgPool1d", [[2, 3, 10]]) { adaptiveAvgPool1d($0[0], outputSize: 4) },
    GradCase("adaptiveMaxPool1d", [[2, 3, 10]], [.distinct]) { adaptiveMaxPool1d($0[0], outputSize: 3) },
    GradCase("maxPool1d ceil dilation", [[2, 3, 10]], [.distinct]) { maxPool1d($0[0], kernelSize: 3, stride: 2, padding: 1, dilation: 2, ceilMode: true) },
    GradCase("avgPool1d ceil padding left out", [[2, 3, 10]]) { avgPool1d($0[0], kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false) },
    // Sparse x dense product (graphs).
    GradCase("sparseMatmul", [[4, 3]]) {
        SparseMatrix(rows: 5, cols: 4, entries: [(0, 1, 0.5), (0, 3, -1), (2, 0, 2), (2, 2, 1), (4, 1, 0.25), (4, 0, 1), (3, 3, 3)]).matmul($0[0])
    },
    // Recurrent layers and attention (weights fixed by seed; gradients to the inputs).
    GradCase("GRU", [[2, 4, 3]]) { x in RandomGenerator.manualSeed(1); return GRU(3, 4).run(x[0]).outputs },
    GradCase("GRU masked", [[2, 4, 3]]) { x in
        RandomGenerator.manualSeed(2); return GRU(3, 2).run(x[0], mask: Tensor([1, 1, 1, 0, 1, 1, 0, 0], shape: [2, 4])).last
    },
    GradCase("LSTM", [[2, 3, 3]]) { x in RandomGenerator.manualSeed(3); return LSTM(3, 4).run(x[0]).outputs },
    GradCase("attention", [[2, 3, 4]]) { x in RandomGenerator.manualSeed(4); return MultiHeadAttention(dim: 4, heads: 2).attend(x[0], keyMask: Tensor([1, 1, 0, 1, 1, 1], shape: [2, 3])) },
    GradCase("transformer layer", [[2, 3, 4]]) { x in
        RandomGenerator.manualSeed(5)
        let l = TransformerEncoderLayer(dim: 4, heads: 2, feedForward: 6, dropout: 0)
        return l.encode(x[0], keyMask: Tensor([1, 1, 1, 1, 0, 1], shape: [2, 3]))
    },
    // Losses.
    GradCase("crossEntropy", [[4, 5]]) { crossEntropy($0[0], [1, 0, 4, 1]) * 3 },
    GradCase("crossEntropy smoothing weights", [[3, 4]]) {
        crossEntropy($0[0], [2, 0, 3], labelSmoothing: 0.2, weights: Tensor([0.5, 1, 2, 1.5]))
    },
    GradCase("nllLoss", [[3, 4]]) { nllLoss($0[0].logSoftmax(), [3, 1, 0], weights: Tensor([1, 2, 0.5, 1])) },
    GradCase("mseLoss", [[3, 2], [3, 2]]) { mseLoss($0[0], $0[1]) },
    GradCase("bceWithLogits", [[6], [6]], [.normal, .fixed(Tensor([0, 1, 1, 0, 0.3, 1]))]) { bceWithLogits($0[0], $0[1]) },
    GradCase("bceWithLogits posWeight", [[4]], [.normal]) { bceWithLogits($0[0], Tensor([1, 0, 1, 0]), posWeight: Tensor([3])) },
    // A composite, to check that gradients add up through shared subexpressions.
    // Fused batch normalisation (batch statistics): 20 values per channel row (16 lanes + a tail), and [N, C].
    GradCase("batchNorm NCHW", [[3, 2, 4, 5], [2], [2]]) { batchNorm($0[0], weight: $0[1], bias: $0[2]).y },
    GradCase("batchNorm NC", [[5, 3], [3], [3]]) { batchNorm($0[0], weight: $0[1], bias: $0[2]).y },
    GradCase("shared subexpression", [[3, 4]]) { x in (x[0] * x[0]).sum(axes: [1]) + x[0].tanh().mean(axes: [1]) * x[0].max(axis: 1) },
]

final class GradCheckTests: XCTestCase {
    func makeInput(_ shape: [Int], _ kind: InputKind, seed: Int, index: Int = 0) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let n = shape.reduce(1, *)
        switch kind {
        case .normal: return Tensor.randn(shape, using: &rng)
        case .positive: return Tensor.rand(shape, using: &rng, low: 0.5, high: 2)
        case .awayFromZero:
            return Tensor((0..<n).map { _ in (rng.nextFloat() < 0.5 ? -1 : 1) * (0.3 + 1.2 * rng.nextFloat()) }, shape: shape)
        case .distinct:
            // Grid points 0.1 apart; odd-numbered inputs sit halfway between, so no two inputs tie.
            return Tensor(rng.permutation(n).map { Float($0 - n / 2) * 0.1 + (index % 2 == 1 ? 0.05 : 0) }, shape: shape)
        case .fixed(let t): return t
        }
    }

    /// Central differences of sum(f(x) * w), accumulated in Double.
    func check(_ c: GradCase, seed: Int) -> [String] {
        var failures: [String] = []
        let kinds = c.kinds.isEmpty ? c.shapes.map { _ in InputKind.normal } : c.kinds
        var inputs: [Tensor] = zip(c.shapes, kinds).enumerated().map { i, sk in makeInput(sk.0, sk.1, seed: seed * 31 + i, index: i) }
        for i in inputs.indices {
            if case .fixed = kinds[i] { continue }
            inputs[i].requiresGrad = true
        }
        let out = c.fn(inputs)
        let w = Tensor.randn(out.shape, seed: seed + 1000)
        (out * w).sum().backward()

        func loss(_ xs: [Tensor]) -> Double {
            let y = noGrad { c.fn(xs) }
            var s = 0.0
            for j in 0..<y.count { s += Double(y.scalars[j]) * Double(w.scalars[j]) }
            return s
        }
        let h: Float = 1e-2
        for i in inputs.indices {
            if case .fixed = kinds[i] { continue }
            guard let analytic = inputs[i].grad else {
                failures.append("\(c.name): input \(i) got no gradient")
                continue
            }
            if analytic.shape != inputs[i].shape {
                failures.append("\(c.name): input \(i) gradient shape \(analytic.shape) != \(inputs[i].shape)")
                continue
            }
            let base = inputs[i].scalars
            for j in 0..<base.count {
                var plus = inputs, minus = inputs
                var p = base, m = base
                p[j] += h; m[j] -= h
                plus[i] = Tensor(p, shape: inputs[i].shape)
                minus[i] = Tensor(m, shape: inputs[i].shape)
                let numeric = (loss(plus) - loss(minus)) / Double(2 * h)
                let a = Double(analytic.scalars[j])
                if Swift.abs(numeric - a) > 3e-3 + 2e-2 * Swift.abs(numeric) {
                    failures.append("\(c.name): input \(i) element \(j): analytic \(a), numeric \(numeric)")
                    break
                }
            }
        }
        return failures
    }

    func testEveryOpAgainstFiniteDifferences() {
        var failures: [String] = []
        for c in gradCases {
            for seed in 0..<2 { failures += check(c, seed: seed) }
        }
        XCTAssert(failures.isEmpty, "gradient check failures:\n" + failures.joined(separator: "\n"))
        XCTAssertGreaterThan(gradCases.count, 60)
    }

    /// The same table on the AVX2 and portable kernels (GEMM dispatch), so the fallbacks are tested
    /// on an AVX-512 machine too.
    func testMatmulRowsOnFallbackKernels() {
        Strata.restrictKernels(to: nil)
        // Only the fallbacks this CPU (or STRATA_ISA) allows.
        let reachable = Strata.cpuKernel == "generic" ? ["generic"] : ["avx2", "generic"]
        for isa in reachable {
            Strata.restrictKernels(to: isa)
            defer { Strata.restrictKernels(to: nil) }
            XCTAssertEqual(Strata.cpuKernel, isa)
            var failures: [String] = []
            for c in gradCases where c.name.hasPrefix("matmul") || c.name.hasPrefix("linear") || c.name.hasPrefix("conv") {
                failures += check(c, seed: 5)
            }
            XCTAssert(failures.isEmpty, "isa \(isa):\n" + failures.joined(separator: "\n"))
        }
    }
}
