import Foundation
import StrataCore
import StrataNN

extension Onnx {
    /// Writes ONNX's test-data layout for `model`: `folder/test_data_set_0/input_K.pb` (`count`
    /// seeded inputs for each graph input, one batch; int64 where the graph takes ids) and
    /// `output_0.pb` (what Strata computes for them, evaluation mode), as ONNX's own node tests
    /// and `onnx_test_runner` read them. Returns the inputs and the outputs.
    @discardableResult
    public static func writeTestData(_ model: Module, info: ModelInfo, count: Int, folder: String, seed: Int = 0) throws -> (inputs: [Tensor], output: Tensor) {
        let specs = inputs(of: model, info: info)
        let x = sampleInputs(model, info: info, count: count, seed: seed)
        let y = reference(model, x)
        let dir = (folder as NSString).appendingPathComponent("test_data_set_0")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (k, (t, spec)) in zip(x, specs).enumerated() {
            try FileIO.writeAtomically(try OnnxTensors.serialized(t, name: spec.name, int64: spec.int64), to: (dir as NSString).appendingPathComponent("input_\(k).pb"))
        }
        try FileIO.writeAtomically(try OnnxTensors.serialized(y, name: "output"), to: (dir as NSString).appendingPathComponent("output_0.pb"))
        return (x, y)
    }
}
