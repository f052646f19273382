import Foundation
import StrataCore
import StrataNN

extension Onnx {
    /// Writes ONNX's test-data layout for `model`: `folder/test_data_set_0/input_0.pb` (the
    /// inputs, one batch) and `output_0.pb` (Strata's outputs for them, evaluation mode), as ONNX's
    /// own node tests and `onnx_test_runner` read them. Returns the outputs.
    @discardableResult
    public static func writeTestData(_ model: Module, inputs: Tensor, folder: String) throws -> Tensor {
        let wasTraining = model.isTraining
        model.eval()
        defer { model.train(wasTraining) }
        let outputs = noGrad { model(inputs) }
        let dir = (folder as NSString).appendingPathComponent("test_data_set_0")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileIO.writeAtomically(try OnnxTensors.serialized(inputs, name: "input"), to: (dir as NSString).appendingPathComponent("input_0.pb"))
        try FileIO.writeAtomically(try OnnxTensors.serialized(outputs, name: "output"), to: (dir as NSString).appendingPathComponent("output_0.pb"))
        return outputs
    }
}
