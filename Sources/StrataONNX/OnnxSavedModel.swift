import Foundation
import StrataCore
import StrataNN

extension OnnxModel {
    /// The graph as a model file's model and description, for `strata predict` and `summary`:
    /// class names, input shape and normalisation from `metadata_props` where Strata exported it,
    /// else the graph's declared input shape, classes numbered by the output's size and pixels
    /// scaled to [0, 1] (say so to the user: a PyTorch model may expect other normalisation).
    public func savedModel() throws -> SavedModel {
        func decode<T: Decodable>(_ key: String, _ type: T.Type) throws -> T? {
            guard let s = metadata[key] else { return nil }
            do { return try JSONDecoder().decode(T.self, from: Data(s.utf8)) } catch {
                throw StrataError("\(source): metadata \(key) is not valid (\(s.prefix(80)))")
            }
        }
        let shape = try decode("strata.input_shape", [Int].self) ?? inputShape
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 && $0 <= 1 << 16 }), shape.reduce(1, *) <= 1 << 24 else {
            throw StrataError("\(source): the graph's input shape \(shape) (without the batch) is not a fixed size Strata can feed")
        }
        let out = graph.output.first?.type.tensorType.shape.dim.dropFirst().map { Int($0.dimValue) } ?? []
        var names = try decode("strata.class_names", [String].self) ?? []
        if names.isEmpty {
            guard out.count == 1, out[0] >= 1, out[0] <= 1 << 20 else {
                throw StrataError("\(source): the graph's output \(out) is not one score per class, and the file names no classes")
            }
            names = (0..<out[0]).map { "class \($0)" }
        }
        let norm = try decode("strata.normalization", Normalization.self) ?? Normalization()
        guard norm.std.allSatisfy({ $0 != 0 && $0.isFinite }), norm.mean.allSatisfy(\.isFinite), norm.scale.isFinite, !norm.mean.isEmpty, !norm.std.isEmpty else {
            throw StrataError("\(source): metadata strata.normalization has a zero, empty or non-finite value")
        }
        return SavedModel(model: self, info: ModelInfo(architecture: [:], classNames: names, inputShape: shape, normalization: norm))
    }

    /// Class scores of `x`: the graph run with its errors thrown, and its output checked to be
    /// one row of `classes` scores per input.
    public func scores(_ x: Tensor, classes: Int) throws -> Tensor {
        let y = try run(x)
        guard y.rank == 2, y.shape[0] == x.shape[0], y.shape[1] == classes else {
            throw StrataError("\(source): the graph gives \(y.shape) for \(x.shape[0]) inputs, not \(classes) class scores each")
        }
        return y
    }
}

extension OnnxModel {
    /// Each data input: its name, its shape without the batch dimension (0 where the file does
    /// not fix a size) and whether it takes int64 values (token ids).
    public var dataInputs: [OnnxInput] {
        graph.input.filter { inputNames.contains($0.name) }.map { i in
            let t = i.type.tensorType
            return OnnxInput(name: i.name, dims: t.shape.dim.dropFirst().map { Int($0.dimValue) },
                             int64: t.elemType == Int32(Onnx_TensorProto.DataType.int64.rawValue))
        }
    }

    /// Runs the graph on one tensor per data input (in `dataInputs` order; whole numbers for
    /// int64 inputs) and returns its output.
    public func run(inputs: [Tensor]) throws -> Tensor {
        let specs = dataInputs
        guard inputs.count == specs.count else { throw StrataError("\(source): the graph takes \(specs.count) inputs, given \(inputs.count)") }
        var feeds: [String: OnnxValue] = [:]
        for (spec, t) in zip(specs, inputs) {
            feeds[spec.name] = spec.int64 ? .int64(t.scalars.map { Int($0) }, shape: t.shape) : .float(t)
        }
        guard case .float(let y)? = try run(feeds: feeds, keepAll: false)[outputName] else { throw StrataError("\(source): the graph's output \(outputName) is not a float tensor") }
        return y
    }
}
