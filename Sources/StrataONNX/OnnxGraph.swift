import Foundation
import SwiftProtobuf
import StrataCore

/// Collects the nodes and weights of an ONNX graph while a model is walked layer by layer: each
/// call adds a node and returns the names of its outputs, so layers chain by value names.
///
/// ```swift
/// let h = b.op("MatMul", [x, b.weight(w.T, "proj.weight")])          // [N, T, out]
/// let y = b.op("Relu", [h])
/// ```
public final class OnnxGraphBuilder {
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    private var used: [String: Int] = [:]
    /// Layers' input shapes where the exporter knows them (`OnnxLayers.inputShapes`).
    var inputShapes: [ObjectIdentifier: [Int]] = [:]

    /// A fresh value name starting with `base`.
    public func name(_ base: String) -> String {
        let n = used[base, default: 0]
        used[base] = n + 1
        return n == 0 ? base : "\(base)_\(n)"
    }

    /// Adds a float32 weight and returns its name.
    public func weight(_ t: Tensor, _ base: String) -> String {
        let name = self.name(base)
        initializers.append(OnnxTensors.proto(t, name: name))
        return name
    }

    /// Adds an int64 constant (shapes, axes) and returns its name.
    public func int64s(_ values: [Int64], shape: [Int]? = nil, _ base: String) -> String {
        let name = self.name(base)
        var p = Onnx_TensorProto()
        p.name = name
        p.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        p.dims = (shape ?? [values.count]).map(Int64.init)
        p.int64Data = values
        initializers.append(p)
        return name
    }

    /// A float32 constant of one value, shape [1] (broadcasts against anything).
    public func scalar(_ v: Float, _ base: String) -> String { weight(Tensor([v], shape: [1]), base) }

    /// An int64 scalar (shape []), as Range and Gather-by-position take.
    public func int64Scalar(_ v: Int64, _ base: String) -> String { int64s([v], shape: [], base) }

    /// Adds a node of `op` and returns its output names.
    @discardableResult
    public func node(_ op: String, _ inputs: [String], outputs: Int = 1, _ attributes: [OnnxAttribute] = [], base: String? = nil) -> [String] {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = (0..<outputs).map { _ in name(base ?? op.lowercased()) }
        n.name = n.output[0] + "_node"
        n.attribute = attributes.map(\.proto)
        nodes.append(n)
        return n.output
    }

    /// One output: the common case.
    public func op(_ op: String, _ inputs: [String], _ attributes: [OnnxAttribute] = [], base: String? = nil) -> String {
        node(op, inputs, outputs: 1, attributes, base: base)[0]
    }
}

/// One attribute of a node, of the kinds Strata writes.
public struct OnnxAttribute {
    let proto: Onnx_AttributeProto

    init(_ name: String, _ fill: (inout Onnx_AttributeProto) -> Void) {
        var a = Onnx_AttributeProto()
        a.name = name
        fill(&a)
        proto = a
    }

    public static func int(_ name: String, _ v: Int) -> OnnxAttribute { OnnxAttribute(name) { $0.type = .int; $0.i = Int64(v) } }
    public static func ints(_ name: String, _ v: [Int]) -> OnnxAttribute { OnnxAttribute(name) { $0.type = .ints; $0.ints = v.map(Int64.init) } }
    public static func float(_ name: String, _ v: Float) -> OnnxAttribute { OnnxAttribute(name) { $0.type = .float; $0.f = v } }
    public static func string(_ name: String, _ v: String) -> OnnxAttribute { OnnxAttribute(name) { $0.type = .string; $0.s = Data(v.utf8) } }
}

/// Tensors to and from ONNX's TensorProto.
public enum OnnxTensors {
    /// A float32 tensor as a TensorProto with its values as raw little-endian bytes.
    static func proto(_ t: Tensor, name: String) -> Onnx_TensorProto {
        var p = Onnx_TensorProto()
        p.name = name
        p.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        p.dims = t.shape.map(Int64.init)
        p.rawData = t.scalars.withUnsafeBufferPointer { Data(buffer: $0) }
        return p
    }

    /// An int64 TensorProto of a tensor of whole numbers (token ids, node indices).
    static func int64Proto(_ t: Tensor, name: String) -> Onnx_TensorProto {
        var p = Onnx_TensorProto()
        p.name = name
        p.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        p.dims = t.shape.map(Int64.init)
        p.rawData = t.scalars.map { Int64($0) }.withUnsafeBufferPointer { Data(buffer: $0) }
        return p
    }

    /// The serialised TensorProto of a tensor (ONNX's test-data files, `input_0.pb`), float32 or,
    /// with `int64`, its values as whole numbers.
    public static func serialized(_ t: Tensor, name: String, int64: Bool = false) throws -> Data {
        try (int64 ? int64Proto(t, name: name) : proto(t, name: name)).serializedData()
    }
}
