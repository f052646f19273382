import ArgumentParser
import Foundation
import Strata
import StrataFaces
import StrataONNX

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model as ONNX (--model M --format onnx), or dataset images as PNG files named after their index and label.",
        discussion: """
        strata export --model fashion-cnn.safetensors --format onnx --out fashion-cnn.onnx --test-data 100
        writes the model for onnxruntime and other ONNX runtimes (opset 17, any batch size), and with
        --test-data N also N seeded inputs and Strata's outputs for them in ONNX's test-data layout
        (fashion-cnn.onnx.test/test_data_set_0/input_0.pb, output_0.pb).
        """)

    @Option(help: "A model file to write as ONNX (instead of dataset images).") var model: String?
    @Option(help: "With --model: the format to write (onnx).") var format: String = "onnx"
    @Option(help: "With --model: also write this many seeded random inputs and Strata's outputs for them (ONNX test data, beside --out).") var testData: Int = 0

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "train or test.")
    var split: String = "test"

    @Option(help: "How many images, from the start of the split.")
    var count: Int = 8

    @Option(help: "Output folder (created if missing).")
    var out: String

    func validate() throws {
        if model != nil {
            guard format == "onnx" else { throw ValidationError("--format \(format): only onnx is written") }
            if !(0...10_000).contains(testData) { throw ValidationError("--test-data must be in 0...10000, got \(testData)") }
            return
        }
        if testData != 0 { throw ValidationError("--test-data needs --model") }
        guard ["train", "test"].contains(split) else { throw ValidationError("--split must be train or test, got \(split)") }
        if count < 1 { throw ValidationError("--count must be at least 1, got \(count)") }
    }

    func run() throws {
        if let path = model { return try exportOnnx(path) }
        let data = try dataOptions.load(split == "train" ? .train : .test)
        print(try data.exportPNGs(count: count, to: out, prefix: split).joined(separator: "\n"))
    }

    func exportOnnx(_ path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDir), isDir.boolValue || !out.hasSuffix(".onnx") {
            throw StrataError("--out \(out): exists and is \(isDir.boolValue ? "a folder" : "not an .onnx file"); remove it or choose another name")
        }
        let saved = try SavedModel.load(path)
        try Onnx.export(saved.model, info: saved.info, to: out)
        let inputs = Onnx.inputs(of: saved.model, info: saved.info).map { i in
            "\(i.name) [\(i.dims.enumerated().map { k, d in d.map(String.init) ?? Onnx.symbolicDimension(k) }.joined(separator: ", "))]\(i.int64 ? " int64" : "")"
        }
        print("\(out): ONNX opset \(Onnx.exportOpset), input \(inputs.joined(separator: ", "))")
        if testData > 0 {
            let folder = out + ".test"
            let y = try Onnx.writeTestData(saved.model, info: saved.info, count: testData, folder: folder).output
            print("\(folder)/test_data_set_0: \(testData) inputs and Strata's outputs \(y.shape)")
        }
    }
}
