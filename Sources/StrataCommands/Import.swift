import ArgumentParser
import Foundation
import Strata
import StrataONNX

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert an ONNX model (e.g. from torch.onnx.export) into a Strata model file, where every node maps to a Strata layer.",
        discussion: """
        strata import --onnx fashion_cnn.onnx --out fashion_cnn.safetensors
        converts a chain of Conv, Gemm, BatchNormalization, pooling, Flatten and activation nodes
        into Strata layers (checked against the graph on a sample input), so the model trains,
        inspects and saves as any Strata model. A graph that branches (residual sums) or uses
        another op is refused with the node named: run the .onnx file itself with --model.
        """)

    @Option(help: "The ONNX model to convert.") var onnx: String
    @Option(help: "The Strata model file to write (.safetensors).") var out: String
    @Option(help: "Per-channel mean of pixels scaled to [0, 1], where the file has no Strata metadata (e.g. 0.5).") var mean: String?
    @Option(help: "Per-channel standard deviation, where the file has no Strata metadata (e.g. 0.5).") var std: String?
    @Option(help: "Class names, comma-separated, where the file has no Strata metadata.") var classes: String?

    func validate() throws {
        guard out.hasSuffix(".safetensors") else { throw ValidationError("--out \(out): must end in .safetensors") }
    }

    func run() throws {
        var saved = try ModelOptions.parse(["--model", onnx] + (mean.map { ["--mean", $0] } ?? []) + (std.map { ["--std", $0] } ?? [])
                                           + (classes.map { ["--classes", $0] } ?? [])).load()
        guard let graph = saved.model as? OnnxModel else { throw StrataError("--onnx \(onnx): not an ONNX model") }
        let layers = try graph.strataLayers()
        saved.info.architecture = ModuleRegistry.spec(of: layers)
        try SavedModel(model: layers, info: saved.info).save(to: out)
        print("\(out): \(layers.layers.count) layers (\(layers.layers.map(\.typeName).joined(separator: ", "))), \(layers.parameterCount) parameters, from \(onnx)")
    }
}
