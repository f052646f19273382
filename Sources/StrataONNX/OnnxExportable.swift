import Foundation
import StrataCore
import StrataNN

/// One input of an exported graph: its name, its shape (nil: the symbolic size `N`) and whether
/// it holds int64 values (token ids) rather than float32.
public struct OnnxInput {
    public let name: String
    public let dims: [Int?]
    public let int64: Bool

    /// `dims` after a symbolic batch dimension.
    public init(name: String, dims: [Int], int64: Bool = false) {
        self.init(name: name, shape: [nil] + dims.map { Optional($0) }, int64: int64)
    }

    /// The whole shape, nil for every symbolic size.
    public init(name: String, shape: [Int?], int64: Bool = false) {
        self.name = name
        self.dims = shape
        self.int64 = int64
    }
}

/// A model that writes its own ONNX graph: whole models (text, graph and face models) whose
/// graph is more than their layers in a row, or takes other inputs than one float batch.
///
/// ```swift
/// extension MyModel: OnnxExportable {
///     public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
///         b.op("Relu", [try Onnx.emit(body, b, inputs[0], path: path + ".body")])
///     }
///     public func onnxReference(_ inputs: [Tensor]) -> Tensor { body(inputs[0]).relu() }
/// }
/// ```
public protocol OnnxExportable: Module {
    /// The graph's inputs (default: one float32 `input`, [N] + the model's input shape).
    func onnxInputs(info: ModelInfo) -> [OnnxInput]
    /// Adds the nodes from the graph's inputs (named in `inputs`, in `onnxInputs` order);
    /// returns the name of the output.
    func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String
    /// What the graph computes, in Strata (called in evaluation mode without gradients).
    func onnxReference(_ inputs: [Tensor]) -> Tensor
    /// `count` seeded example inputs, one tensor per graph input (default: normal noise).
    func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor]
    /// More `metadata_props` entries (what the input and output mean).
    var onnxMetadata: [String: String] { get }
}

extension OnnxExportable {
    public func onnxInputs(info: ModelInfo) -> [OnnxInput] { [OnnxInput(name: "input", dims: info.inputShape)] }
    public func onnxReference(_ inputs: [Tensor]) -> Tensor { self(inputs[0]) }
    public func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor] { [Tensor.randn([count] + info.inputShape, seed: seed)] }
    public var onnxMetadata: [String: String] { [:] }
}

/// Sub-graphs that several exporters share.
public enum OnnxBlocks {
    /// `x W^T + b` on any rank (Gemm takes only matrices): MatMul with the transposed weight.
    public static func linear(_ l: Linear, _ b: OnnxGraphBuilder, _ x: String) -> String {
        let y = b.op("MatMul", [x, b.weight(l.weight.value.T, "linear.weight_t")], base: "linear")
        guard let bias = l.bias else { return y }
        return b.op("Add", [y, b.weight(bias.value, "linear.bias")], base: "linear")
    }

    /// Rows divided by their L2 norm, `x / sqrt(sum(x^2, last axis) + eps)` as Strata's `l2Normalized`.
    public static func l2Normalized(_ b: OnnxGraphBuilder, _ x: String, eps: Float = 1e-12) -> String {
        let sq = b.op("Mul", [x, x], base: "l2")
        let sum = b.op("ReduceSum", [sq, b.int64s([-1], "l2.axes")], [OnnxAttribute.int("keepdims", 1)], base: "l2")
        let norm = b.op("Sqrt", [b.op("Add", [sum, b.scalar(eps, "l2.eps")], base: "l2")], base: "l2")
        return b.op("Div", [x, norm], base: "l2")
    }

    /// `x` [N, C, H, W] mirrored left to right (Slice with step -1 on the last axis).
    public static func flippedHorizontally(_ b: OnnxGraphBuilder, _ x: String) -> String {
        b.op("Slice", [x, b.int64s([-1], "flip.starts"), b.int64s([Int64.min], "flip.ends"), b.int64s([3], "flip.axes"),
                       b.int64s([-1], "flip.steps")], base: "flip")
    }

    /// A recurrent layer as ONNX's GRU or LSTM op on `x` [N, T, in] (batch first, as Strata):
    /// returns the outputs at every step [N, T, H] and the last state [N, H]. With `lengths`
    /// (int32 [N]) each sequence stops after its length, so trailing padding is skipped.
    public static func recurrent(_ r: RecurrentLayer, _ b: OnnxGraphBuilder, _ x: String, lengths: String?) -> (outputs: String, last: String) {
        let h = r.hiddenSize, gates = r is LSTM ? 4 : 3
        // PyTorch's gate blocks are (r, z, n) and (i, f, g, o); ONNX's (z, r, h) and (i, o, f, c).
        let order = r is LSTM ? [0, 3, 1, 2] : [1, 0, 2]
        func reordered(_ t: Tensor) -> Tensor {
            Tensor.concat(order.map { t.slice(axis: 0, start: $0 * h, end: ($0 + 1) * h) }, axis: 0)
        }
        let w = b.weight(reordered(r.weightIhL0.value).reshape([1, gates * h, r.inputSize]), "rnn.W")
        let rr = b.weight(reordered(r.weightHhL0.value).reshape([1, gates * h, h]), "rnn.R")
        let bias = b.weight(Tensor.concat([reordered(r.biasIhL0.value), reordered(r.biasHhL0.value)], axis: 0).reshape([1, 2 * gates * h]), "rnn.B")
        let steps = b.op("Transpose", [x], [OnnxAttribute.ints("perm", [1, 0, 2])], base: "rnn")   // [T, N, in]
        var attrs = [OnnxAttribute.int("hidden_size", h)]
        if !(r is LSTM) { attrs.append(OnnxAttribute.int("linear_before_reset", 1)) }
        let outs = b.node(r is LSTM ? "LSTM" : "GRU", [steps, w, rr, bias, lengths ?? ""], outputs: 2, attrs, base: "rnn")
        let y = b.op("Squeeze", [outs[0], b.int64s([1], "rnn.axes")], base: "rnn")              // [T, N, H]
        let seq = b.op("Transpose", [y], [OnnxAttribute.ints("perm", [1, 0, 2])], base: "rnn")   // [N, T, H]
        let last = b.op("Squeeze", [outs[1], b.int64s([0], "rnn.axes")], base: "rnn")           // [N, H]
        return (seq, last)
    }

    /// Multi-head self-attention on `x` [N, T, d]; `maskBias` [N, 1, 1, T] is added to the
    /// scores (0 for real tokens, -1e9 for padding), as Strata's `attend(_:keyMask:)`.
    public static func attention(_ a: MultiHeadAttention, _ b: OnnxGraphBuilder, _ x: String, maskBias: String?) -> String {
        let (d, heads) = (a.dim, a.heads), dh = d / heads
        let qkv = b.op("Add", [b.op("MatMul", [x, b.weight(a.inProjWeight.value.T, "attn.in_proj_t")], base: "attn"),
                               b.weight(a.inProjBias.value, "attn.in_proj_bias")], base: "attn")      // [N, T, 3d]
        let parts = b.node("Split", [qkv], outputs: 3, [OnnxAttribute.int("axis", 2)], base: "attn")
        let headShape = b.int64s([0, 0, Int64(heads), Int64(dh)], "attn.head_shape")
        func heads4(_ t: String, _ perm: [Int]) -> String {
            b.op("Transpose", [b.op("Reshape", [t, headShape], base: "attn")], [OnnxAttribute.ints("perm", perm)], base: "attn")
        }
        let q = heads4(parts[0], [0, 2, 1, 3]), k = heads4(parts[1], [0, 2, 3, 1]), v = heads4(parts[2], [0, 2, 1, 3])
        var scores = b.op("Mul", [b.op("MatMul", [q, k], base: "attn"), b.scalar(1 / Float(dh).squareRoot(), "attn.scale")], base: "attn")
        if let maskBias { scores = b.op("Add", [scores, maskBias], base: "attn") }
        let w = b.op("Softmax", [scores], [OnnxAttribute.int("axis", -1)], base: "attn")          // [N, h, T, T]
        let out = b.op("Transpose", [b.op("MatMul", [w, v], base: "attn")], [OnnxAttribute.ints("perm", [0, 2, 1, 3])], base: "attn")
        let joined = b.op("Reshape", [out, b.int64s([0, 0, Int64(d)], "attn.shape")], base: "attn")  // [N, T, d]
        return linear(a.outProj, b, joined)
    }

    /// One post-norm Transformer encoder layer (evaluation mode: dropout left out).
    public static func encoderLayer(_ l: TransformerEncoderLayer, _ b: OnnxGraphBuilder, _ x: String, maskBias: String?) -> String {
        let a = layerNorm(l.norm1, b, b.op("Add", [x, attention(l.selfAttn, b, x, maskBias: maskBias)], base: "encoder"))
        let ff = linear(l.linear2, b, b.op("Relu", [linear(l.linear1, b, a)], base: "encoder"))
        return layerNorm(l.norm2, b, b.op("Add", [a, ff], base: "encoder"))
    }

    /// LayerNormalization over the layer's trailing dimensions (opset 17).
    public static func layerNorm(_ n: LayerNorm, _ b: OnnxGraphBuilder, _ x: String) -> String {
        b.op("LayerNormalization", [x, b.weight(n.weight.value, "ln.weight"), b.weight(n.bias.value, "ln.bias")],
             [OnnxAttribute.int("axis", -n.normalizedShape.count), OnnxAttribute.float("epsilon", n.eps)], base: "layer_norm")
    }

    /// Rows of an embedding table picked by `ids` (any whole-number values; cast to int64).
    public static func embedding(_ e: Embedding, _ b: OnnxGraphBuilder, _ ids: String) -> String {
        let idx = b.op("Cast", [ids], [OnnxAttribute.int("to", Int(Onnx_TensorProto.DataType.int64.rawValue))], base: "ids")
        return b.op("Gather", [b.weight(e.weight.value, "embedding.weight"), idx], [OnnxAttribute.int("axis", 0)], base: "embedding")
    }
}
