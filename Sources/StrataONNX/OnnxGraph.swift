import Foundation
import SwiftProtobuf
import StrataCore

/// Collects the nodes and weights of an ONNX graph while a model is walked layer by layer: each
/// call adds a node and returns the names of its outputs, so layers chain by value names.
final class OnnxGraphBuilder {
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    private var used: [String: Int] = [:]

    /// A fresh value name starting with `base`.
    func name(_ base: String) -> String {
        let n = used[base, default: 0]
        used[base] = n + 1
        return n == 0 ? base : "\(base)_\(n)"
    }

    /// Adds a float32 weight and returns its name.
    func weight(_ t: Tensor, _ base: String) -> String {
        let name = self.name(base)
        initializers.append(OnnxTensors.proto(t, name: name))
        return name
    }

    /// Adds an int64 constant (shapes, axes) and returns its name.
    func int64s(_ values: [Int64], shape: [Int]? = nil, _ base: String) -> String {
        let name = self.name(base)
        var p = Onnx_TensorProto()
        p.name = name
        p.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        p.dims = (shape ?? [values.count]).map(Int64.init)
        p.int64Data = values
        initializers.append(p)
        return name
    }

    /// Adds a node of `op` and returns its output names.
    @discardableResult
    func node(_ op: String, _ inputs: [String], outputs: Int = 1, _ attributes: [Onnx_AttributeProto] = [], base: String? = nil) -> [String] {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = (0..<outputs).map { _ in name(base ?? op.lowercased()) }
        n.name = n.output[0] + "_node"
        n.attribute = attributes
        nodes.append(n)
        return n.output
    }

    /// One output: the common case.
    func op(_ op: String, _ inputs: [String], _ attributes: [Onnx_AttributeProto] = [], base: String? = nil) -> String {
        node(op, inputs, outputs: 1, attributes, base: base)[0]
    }
}

/// ONNX attributes of the kinds Strata writes.
enum OnnxAttribute {
    static func int(_ name: String, _ v: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(v)
        return a
    }

    static func ints(_ name: String, _ v: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = v.map(Int64.init)
        return a
    }

    static func float(_ name: String, _ v: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = v
        return a
    }
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

    /// The serialised TensorProto of a float32 tensor (ONNX's test-data files, `input_0.pb`).
    public static func serialized(_ t: Tensor, name: String) throws -> Data {
        try proto(t, name: name).serializedData()
    }
}
