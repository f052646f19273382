import Foundation
import SwiftProtobuf
import StrataCore
import StrataNN

/// ONNX files of Strata models, for onnxruntime and every other ONNX runtime.
///
/// ```swift
/// let saved = try SavedModel.load("fashion-cnn.safetensors")
/// try Onnx.export(saved.model, info: saved.info, to: "fashion-cnn.onnx")
/// ```
///
/// The graph is the model in evaluation mode (dropout left out, batch norm with its running
/// statistics) at opset 17, with a symbolic batch dimension `N`. The class names, input shape and
/// pixel normalisation go into the file's `metadata_props` (`strata.class_names`,
/// `strata.input_shape`, `strata.normalization`, as JSON).
public enum Onnx {
    /// The opset the exporter writes.
    public static let exportOpset = 17
    /// ONNX's IR version for opset 17 (ONNX 1.12).
    static let irVersion: Int64 = 8

    /// The ONNX model of `model` as bytes.
    public static func export(_ model: Module, info: ModelInfo) throws -> Data {
        try modelProto(model, info: info).serializedData()
    }

    /// Writes the ONNX model of `model` to `path` (atomically).
    public static func export(_ model: Module, info: ModelInfo, to path: String) throws {
        try FileIO.writeAtomically(try export(model, info: info), to: path)
    }

    /// The inputs of `model`'s graph: its own where it writes its graph, else one float32
    /// `input` of [N] + the model's input shape.
    public static func inputs(of model: Module, info: ModelInfo) -> [OnnxInput] {
        (model as? OnnxExportable)?.onnxInputs(info: info) ?? [OnnxInput(name: "input", dims: info.inputShape)]
    }

    /// What the exported graph computes, in Strata (evaluation mode, no gradients).
    public static func reference(_ model: Module, _ inputs: [Tensor]) -> Tensor {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        return noGrad {
            if let m = model as? OnnxExportable { return m.onnxReference(inputs) }
            return model(inputs[0])
        }
    }

    /// `count` seeded example inputs for `model`'s graph, one tensor per graph input.
    public static func sampleInputs(_ model: Module, info: ModelInfo, count: Int, seed: Int = 0) -> [Tensor] {
        if let m = model as? OnnxExportable { return m.onnxSampleInputs(count: count, info: info, seed: seed) }
        // A model that starts with an embedding takes ids in its table.
        var first = model
        while let s = first as? Sequential, let f = s.layers.first { first = f }
        if let e = first as? Embedding {
            let u = Tensor.rand([count] + info.inputShape, low: 0, high: Float(e.count), seed: seed)
            return [Tensor(u.scalars.map { Swift.min(Float(e.count - 1), $0.rounded(.down)) }, shape: u.shape)]
        }
        return [Tensor.randn([count] + info.inputShape, seed: seed)]
    }

    /// Adds the nodes of `module` (a layer of the table, or a model that writes its own graph)
    /// reading `x`; returns its output's name. For models that write their own graph.
    public static func emit(_ module: Module, _ b: OnnxGraphBuilder, _ x: String, path: String) throws -> String {
        try OnnxLayers.emit(module, b, x, path: path)
    }

    static func modelProto(_ model: Module, info: ModelInfo) throws -> Onnx_ModelProto {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        let b = OnnxGraphBuilder()
        b.inputShapes = OnnxLayers.inputShapes(model, [1] + info.inputShape)
        let inputs = Onnx.inputs(of: model, info: info)
        let names = inputs.map { b.name($0.name) }
        let output: String
        if let m = model as? OnnxExportable {
            output = try m.emitOnnx(b, inputs: names, path: model.typeName)
        } else {
            output = try OnnxLayers.emit(model, b, names[0], path: model.typeName)
        }
        // The output's name is the last node's; a model with no node (Identity) gets one.
        var out = output
        if names.contains(out) { out = b.op("Identity", [out], base: "output") }
        var g = Onnx_GraphProto()
        g.name = "strata"
        g.node = b.nodes
        g.initializer = b.initializers
        g.input = zip(inputs, names).map { valueInfo($1, dims: $0.dims, int64: $0.int64) }
        let outShape = reference(model, sampleInputs(model, info: info, count: 1)).shape
        g.output = [valueInfo(out, dims: [nil] + outShape.dropFirst().map { Optional($0) })]
        var m = Onnx_ModelProto()
        m.irVersion = irVersion
        m.producerName = "Strata"
        m.producerVersion = "1"
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(exportOpset)
        m.opsetImport = [opset]
        m.graph = g
        m.metadataProps = metadata(info, extra: (model as? OnnxExportable)?.onnxMetadata ?? [:])
        return m
    }

    /// The name of a symbolic size at `index` of a shape: `N` for the batch, `T` for a
    /// sequence's length, then `D2`, `D3`, ...
    public static func symbolicDimension(_ index: Int) -> String { index == 0 ? "N" : index == 1 ? "T" : "D\(index)" }

    /// A value of shape `dims` (nil: a symbolic size, `N` for the batch, `T` for a sequence's
    /// length), float32 or int64.
    static func valueInfo(_ name: String, dims: [Int?], int64: Bool = false) -> Onnx_ValueInfoProto {
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.enumerated().map { i, d in
            var x = Onnx_TensorShapeProto.Dimension()
            if let d { x.dimValue = Int64(d) } else { x.dimParam = Onnx.symbolicDimension(i) }
            return x
        }
        var tt = Onnx_TypeProto.Tensor()
        tt.elemType = Int32((int64 ? Onnx_TensorProto.DataType.int64 : .float).rawValue)
        tt.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tt
        var v = Onnx_ValueInfoProto()
        v.name = name
        v.type = type
        return v
    }

    static func metadata(_ info: ModelInfo, extra: [String: String]) -> [Onnx_StringStringEntryProto] {
        func json(_ v: some Encodable) -> String { (try? JSONEncoder.sortedKeys.encode(v)).map { String(decoding: $0, as: UTF8.self) } ?? "" }
        let pairs = [("strata.class_names", json(info.classNames)), ("strata.input_shape", json(info.inputShape)),
                     ("strata.normalization", json(info.normalization))]
            + info.extra.sorted { $0.key < $1.key }.map { ("strata.\($0.key)", $0.value) } + extra.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return pairs.map { k, v in
            var e = Onnx_StringStringEntryProto()
            e.key = k
            e.value = v
            return e
        }
    }
}

/// The export rule of every layer kind: the ONNX nodes a Strata layer becomes, in one table.
enum OnnxLayers {
    /// Adds `module`'s nodes reading `x`; returns the name of its output. `path` names the layer
    /// in errors.
    static func emit(_ module: Module, _ b: OnnxGraphBuilder, _ x: String, path: String) throws -> String {
        switch module {
        case let s as Sequential:
            var h = x
            for (i, layer) in s.layers.enumerated() { h = try emit(layer, b, h, path: "\(path).\(i)") }
            return h
        case let l as Linear:
            // y = x W^T + b on [N, in]: Gemm with transB.
            var inputs = [x, b.weight(l.weight.value, "linear.weight")]
            if let bias = l.bias { inputs.append(b.weight(bias.value, "linear.bias")) }
            return b.op("Gemm", inputs, [OnnxAttribute.int("transB", 1)], base: "linear")
        case let c as Conv2D:
            return convolution("Conv", b, x, c.weight, c.bias, kernel: [c.kernelSize.h, c.kernelSize.w], stride: [c.stride.h, c.stride.w],
                               padding: [c.padding.h, c.padding.w], dilation: [c.dilation.h, c.dilation.w], groups: c.groups)
        case let c as ConvTranspose2D:
            return convolution("ConvTranspose", b, x, c.weight, c.bias, kernel: [c.kernelSize.h, c.kernelSize.w],
                               stride: [c.stride.h, c.stride.w], padding: [c.padding.h, c.padding.w], dilation: [c.dilation.h, c.dilation.w],
                               groups: c.groups, extra: [OnnxAttribute.ints("output_padding", [c.outputPadding.h, c.outputPadding.w])])
        case let c as Conv1D:
            return convolution("Conv", b, x, c.weight, c.bias, kernel: [c.kernelSize], stride: [c.stride], padding: [c.padding],
                               dilation: [c.dilation], groups: c.groups)
        case let p as MaxPool1D:
            return b.op("MaxPool", [x], poolAttributes(p) + (p.dilation == 1 ? [] : [OnnxAttribute.ints("dilations", [p.dilation])]), base: "maxpool")
        case let p as AvgPool1D:
            return b.op("AveragePool", [x], poolAttributes(p) + [OnnxAttribute.int("count_include_pad", p.countIncludePad ? 1 : 0)], base: "avgpool")
        case let p as MaxPool2D:
            return b.op("MaxPool", [x], poolAttributes(p) + (p.dilation == 1 ? [] : [OnnxAttribute.ints("dilations", [p.dilation.h, p.dilation.w])]), base: "maxpool")
        case let p as AvgPool2D:
            // ONNX's default leaves the padding out of the count; PyTorch's (and Strata's) includes it.
            return b.op("AveragePool", [x], poolAttributes(p) + [OnnxAttribute.int("count_include_pad", p.countIncludePad ? 1 : 0)], base: "avgpool")
        case is GlobalAvgPool:
            // [N, C, H, W] or [N, C, L] -> [N, C]
            let pooled = b.op("GlobalAveragePool", [x], base: "gap")
            return b.op("Flatten", [pooled], [OnnxAttribute.int("axis", 1)], base: "gap_flat")
        case is GlobalMaxPool:
            let pooled = b.op("GlobalMaxPool", [x], base: "gmp")
            return b.op("Flatten", [pooled], [OnnxAttribute.int("axis", 1)], base: "gmp_flat")
        case let p as AdaptivePool2D:
            return try adaptivePool(max: p is AdaptiveMaxPool2D, b, x, to: [p.outputSize.h, p.outputSize.w], module, path: path)
        case let p as AdaptivePool1D:
            return try adaptivePool(max: p is AdaptiveMaxPool1D, b, x, to: [p.outputSize], module, path: path)
        case is Flatten:
            return b.op("Flatten", [x], [OnnxAttribute.int("axis", 1)], base: "flatten")
        case is Identity, is Dropout:
            return x
        case let n as BatchNorm:
            // BatchNorm1d on [N, C] and BatchNorm2d on [N, C, H, W] alike: ONNX's takes (N, C, ...).
            return b.op("BatchNormalization", [x, b.weight(n.weight.value, "bn.weight"), b.weight(n.bias.value, "bn.bias"),
                                               b.weight(n.runningMean.value, "bn.running_mean"), b.weight(n.runningVar.value, "bn.running_var")],
                        [OnnxAttribute.float("epsilon", n.eps)], base: "bn")
        case is ReLU:
            return b.op("Relu", [x], base: "relu")
        case let l as LeakyReLU:
            return b.op("LeakyRelu", [x], [OnnxAttribute.float("alpha", l.slope)], base: "leaky_relu")
        case is Sigmoid:
            return b.op("Sigmoid", [x], base: "sigmoid")
        case is Tanh:
            return b.op("Tanh", [x], base: "tanh")
        case is GELU:
            // Opset 17 has no Gelu: x * 0.5 * (1 + erf(x / sqrt 2)), the exact form Strata computes.
            let scaled = b.op("Mul", [x, b.weight(Tensor([Float(0.5).squareRoot()], shape: [1]), "gelu.inv_sqrt2")], base: "gelu")
            let e = b.op("Erf", [scaled], base: "gelu")
            let onePlus = b.op("Add", [e, b.weight(Tensor([1], shape: [1]), "gelu.one")], base: "gelu")
            let half = b.op("Mul", [x, b.weight(Tensor([0.5], shape: [1]), "gelu.half")], base: "gelu")
            return b.op("Mul", [half, onePlus], base: "gelu")
        case let s as Softmax:
            return b.op("Softmax", [x], [OnnxAttribute.int("axis", s.axis)], base: "softmax")
        case let s as LogSoftmax:
            return b.op("LogSoftmax", [x], [OnnxAttribute.int("axis", s.axis)], base: "log_softmax")
        case let r as ResidualBlock:
            // relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
            var h = try emit(r.conv1, b, x, path: path + ".conv1")
            h = try emit(r.bn1, b, h, path: path + ".bn1")
            h = b.op("Relu", [h], base: "relu")
            h = try emit(r.conv2, b, h, path: path + ".conv2")
            h = try emit(r.bn2, b, h, path: path + ".bn2")
            let skip = try r.downsample.map { try emit($0, b, x, path: path + ".downsample") } ?? x
            return b.op("Relu", [b.op("Add", [h, skip], base: "residual")], base: "relu")
        case let r as Residual:
            return b.op("Add", [try emit(r.body, b, x, path: path + ".body"), x], base: "residual")
        case let e as Embedding:
            return OnnxBlocks.embedding(e, b, x)
        case let n as LayerNorm:
            return OnnxBlocks.layerNorm(n, b, x)
        case let r as RecurrentLayer:
            // forward: the hidden state at every step [N, T, H].
            return OnnxBlocks.recurrent(r, b, x, lengths: nil).outputs
        case let a as MultiHeadAttention:
            return OnnxBlocks.attention(a, b, x, maskBias: nil)
        case let l as TransformerEncoderLayer:
            return OnnxBlocks.encoderLayer(l, b, x, maskBias: nil)
        case let m as OnnxExportable:
            return try m.emitOnnx(b, inputs: [x], path: path)
        default:
            throw StrataError("ONNX export: layer \(path) (\(module.typeName)) has no ONNX form yet")
        }
    }

    /// A Conv or ConvTranspose node: its weight and bias, and each spatial axis's settings
    /// (`padding` on both sides of it).
    static func convolution(_ op: String, _ b: OnnxGraphBuilder, _ x: String, _ weight: Parameter, _ bias: Parameter?, kernel: [Int],
                            stride: [Int], padding: [Int], dilation: [Int], groups: Int, extra: [OnnxAttribute] = []) -> String {
        let base = op == "Conv" ? "conv" : "conv_transpose"
        var inputs = [x, b.weight(weight.value, base + ".weight")]
        if let bias { inputs.append(b.weight(bias.value, base + ".bias")) }
        return b.op(op, inputs, [OnnxAttribute.ints("kernel_shape", kernel), OnnxAttribute.ints("strides", stride),
                                 OnnxAttribute.ints("pads", padding + padding), OnnxAttribute.ints("dilations", dilation),
                                 OnnxAttribute.int("group", groups)] + extra, base: base)
    }

    /// Adaptive pooling as ONNX has it: to size 1, a global pooling; otherwise a pooling whose
    /// window and stride are the input's size over the output's, so each input size must be a
    /// multiple of the output's (as PyTorch's exporter requires).
    static func adaptivePool(max: Bool, _ b: OnnxGraphBuilder, _ x: String, to out: [Int], _ module: Module, path: String) throws -> String {
        if out.allSatisfy({ $0 == 1 }) { return b.op(max ? "GlobalMaxPool" : "GlobalAveragePool", [x], base: max ? "gmp" : "gap") }
        guard let input = b.inputShapes[ObjectIdentifier(module)], input.count == out.count + 2 else {
            throw StrataError("ONNX export: layer \(path) (\(module.typeName)) pools to \(out), which needs its input size; export knows it only for layers of a Sequential model")
        }
        let spatial = Array(input.dropFirst(2))
        guard zip(spatial, out).allSatisfy({ $0 % $1 == 0 }) else {
            throw StrataError("ONNX export: layer \(path) (\(module.typeName)) pools \(spatial) to \(out); ONNX has that only where each input size is a multiple of the output's")
        }
        let k = zip(spatial, out).map { $0 / $1 }
        return b.op(max ? "MaxPool" : "AveragePool", [x], [OnnxAttribute.ints("kernel_shape", k), OnnxAttribute.ints("strides", k)],
                    base: max ? "maxpool" : "avgpool")
    }

    /// Each layer's input shape (batch first) in a model of nested `Sequential`s, found by shape
    /// inference from `shape`, for the rules that need sizes; other containers are not entered.
    static func inputShapes(_ model: Module, _ shape: [Int]) -> [ObjectIdentifier: [Int]] {
        var shapes = [ObjectIdentifier(model): shape]
        guard let s = model as? Sequential else { return shapes }
        var h = shape
        for layer in s.layers {
            shapes.merge(inputShapes(layer, h)) { first, _ in first }
            guard let next = try? ShapeInference.outputShape(of: layer, for: h) else { break }
            h = next
        }
        return shapes
    }

    static func poolAttributes(_ p: Pool1D) -> [OnnxAttribute] {
        [OnnxAttribute.ints("kernel_shape", [p.kernelSize]), OnnxAttribute.ints("strides", [p.stride]),
         OnnxAttribute.ints("pads", [p.padding, p.padding])] + (p.ceilMode ? [OnnxAttribute.int("ceil_mode", 1)] : [])
    }

    static func poolAttributes(_ p: Pool2D) -> [OnnxAttribute] {
        [OnnxAttribute.ints("kernel_shape", [p.kernelSize.h, p.kernelSize.w]),
         OnnxAttribute.ints("strides", [p.stride.h, p.stride.w]),
         OnnxAttribute.ints("pads", [p.padding.h, p.padding.w, p.padding.h, p.padding.w])] + (p.ceilMode ? [OnnxAttribute.int("ceil_mode", 1)] : [])
    }
}
