import XCTest
import SwiftProtobuf
@testable import StrataONNX
import StrataCore
import StrataNN
import StrataData

/// The ONNX exporter's graphs, read back with swift-protobuf. (onnxruntime runs them in
/// Tools/onnx_check.py, outside `make test`: README "ONNX".)
final class OnnxExportTests: XCTestCase {
    func roundTrip(_ model: Module, inputShape: [Int]) throws -> Onnx_ModelProto {
        let info = ModelInfo(model: model, classNames: (0..<3).map { "class \($0)" }, inputShape: inputShape)
        return try Onnx_ModelProto(serializedBytes: try Onnx.export(model, info: info))
    }

    func testCNNBecomesConvPoolGemmWithItsWeights() throws {
        RandomGenerator.manualSeed(3)
        let model = Sequential(Conv2D(1, 4, kernelSize: 3, stride: 1, padding: 1), BatchNorm2d(4), ReLU(), MaxPool2D(2),
                               Flatten(), Dropout(0.5), Linear(4 * 4 * 4, 3), LogSoftmax())
        let m = try roundTrip(model, inputShape: [1, 8, 8])
        XCTAssertEqual(m.opsetImport.first?.version, 17)
        XCTAssertEqual(m.graph.node.map(\.opType), ["Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm", "LogSoftmax"])
        let conv = m.graph.node[0]
        XCTAssertEqual(conv.attribute.first { $0.name == "pads" }?.ints, [1, 1, 1, 1])
        // The weights are the model's, bit for bit, in PyTorch's layouts.
        let w = try XCTUnwrap(m.graph.initializer.first { $0.name == conv.input[1] })
        XCTAssertEqual(w.dims, [4, 1, 3, 3])
        let values = w.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(values, (model.layers[0] as! Conv2D).weight.value.scalars)
        let gemm = m.graph.node[5]
        XCTAssertEqual(gemm.attribute.first { $0.name == "transB" }?.i, 1)
        XCTAssertEqual(m.graph.initializer.first { $0.name == gemm.input[1] }?.dims, [3, 64])
        // Symbolic batch, the model's input and output shapes, metadata for preprocessing.
        XCTAssertEqual(m.graph.input[0].type.tensorType.shape.dim.map(\.dimParam), ["N", "", "", ""])
        XCTAssertEqual(m.graph.input[0].type.tensorType.shape.dim.dropFirst().map(\.dimValue), [1, 8, 8])
        XCTAssertEqual(m.graph.output[0].type.tensorType.shape.dim.dropFirst().map(\.dimValue), [3])
        XCTAssertEqual(m.graph.output[0].name, m.graph.node.last?.output[0])
        let meta = Dictionary(uniqueKeysWithValues: m.metadataProps.map { ($0.key, $0.value) })
        XCTAssertEqual(meta["strata.class_names"], #"["class 0","class 1","class 2"]"#)
        XCTAssertEqual(meta["strata.input_shape"], "[1,8,8]")
        // Every node reads values that exist: the input, an initializer or an earlier output.
        var known = Set([m.graph.input[0].name] + m.graph.initializer.map(\.name))
        for n in m.graph.node {
            for i in n.input { XCTAssertTrue(known.contains(i), "\(n.opType) reads unknown \(i)") }
            known.formUnion(n.output)
        }
    }

    func testResidualBlocksAndGELUUseOnlyOpset17Ops() throws {
        let model = Sequential(Conv2D(3, 8, kernelSize: 3, padding: 1), ResidualBlock(8, 16, stride: 2), GlobalAvgPool(), Linear(16, 4), GELU(), Linear(4, 3))
        let ops = try roundTrip(model, inputShape: [3, 8, 8]).graph.node.map(\.opType)
        XCTAssertEqual(ops.filter { $0 == "Add" }.count, 2)              // the residual sum and GELU's 1 + erf
        XCTAssertTrue(ops.contains("Erf") && !ops.contains("Gelu"))     // Gelu is opset 20
        XCTAssertTrue(ops.contains("GlobalAveragePool"))
    }
}

extension OnnxExportTests {
    /// `strata export --model ... --format onnx` writes the model and ONNX test data whose outputs
    /// are the model's own; bad requests exit 1 naming the flag.
    func testExportCommand() throws {
        let model = Sequential(Flatten(), Linear(12, 5), ReLU(), Linear(5, 3))
        let path = testTemp("onnx-cli.safetensors")
        try SavedModel(model: model, info: ModelInfo(model: model, classNames: ["a", "b", "c"], inputShape: [1, 3, 4])).save(to: path)
        let out = testTemp("onnx-cli.onnx")
        let (code, stdout, err) = try runStrata(["export", "--model", path, "--format", "onnx", "--out", out, "--test-data", "4"])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(stdout.contains("opset 17"), stdout)
        let m = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: out)))
        XCTAssertEqual(m.graph.node.map(\.opType), ["Flatten", "Gemm", "Relu", "Gemm"])
        let x = try Onnx_TensorProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: out + ".test/test_data_set_0/input_0.pb")))
        let y = try Onnx_TensorProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: out + ".test/test_data_set_0/output_0.pb")))
        XCTAssertEqual(x.dims, [4, 1, 3, 4])
        XCTAssertEqual(y.dims, [4, 3])
        let xs = x.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let ys = y.rawData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let loaded = try SavedModel.load(path).model
        loaded.eval()
        XCTAssertEqual(noGrad { loaded(Tensor(xs, shape: [4, 1, 3, 4])) }.scalars, ys)

        for (args, flag) in [(["--format", "tflite"], "--format"), (["--test-data", "-1"], "--test-data")] {
            let (c, _, e) = try runStrata(["export", "--model", path, "--out", out] + args)
            XCTAssertEqual(c, 1, e)
            XCTAssertTrue(e.contains(flag), e)
        }
        let (c, _, e) = try runStrata(["export", "--model", path, "--format", "onnx", "--out", path])
        XCTAssertEqual(c, 1, e)
        XCTAssertTrue(e.contains("not an .onnx file"), e)
    }
}

extension OnnxExportTests {
    /// `strata predict` and `strata summary` take an .onnx file: Strata's own export predicts as
    /// the model file does; PyTorch's (no metadata) gets numbered classes; a broken file exits 1.
    func testPredictAndSummaryReadONNX() throws {
        let model = Sequential(Flatten(), Linear(16, 6), ReLU(), Linear(6, 3))
        let path = testTemp("onnx-predict.safetensors")
        try SavedModel(model: model, info: ModelInfo(model: model, classNames: ["cat", "dog", "fox"], inputShape: [1, 4, 4])).save(to: path)
        let onnx = testTemp("onnx-predict.onnx")
        XCTAssertEqual(try runStrata(["export", "--model", path, "--format", "onnx", "--out", onnx]).0, 0)
        let img = testTemp("onnx-predict.png")
        try Image(width: 4, height: 4, channels: 1, pixels: (0..<16).map { UInt8($0 * 15) }).savePNG(img)
        let (c1, a, e1) = try runStrata(["predict", "--model", path, img])
        let (c2, b, e2) = try runStrata(["predict", "--model", onnx, img])
        XCTAssertEqual(c1, 0, e1)
        XCTAssertEqual(c2, 0, e2)
        XCTAssertEqual(a.replacingOccurrences(of: path, with: "M"), b.replacingOccurrences(of: onnx, with: "M"))
        let (c3, table, e3) = try runStrata(["summary", "--model", onnx])
        XCTAssertEqual(c3, 0, e3)
        let weights: Int = 16 * 6 + 6 + 6 * 3 + 3
        XCTAssertTrue(table.contains("Gemm"), table)
        XCTAssertTrue(table.contains("[1, 3]"), table)
        XCTAssertTrue(table.contains("Trainable parameters: \(weights)"), table)

        let torch = ModelFileTests.fixtures.appendingPathComponent("onnx/fashion_cnn_torchscript.onnx").path
        let shirt = testTemp("onnx-predict-28.png")
        try Image(width: 28, height: 28, channels: 1, pixels: [UInt8](repeating: 120, count: 784)).savePNG(shirt)
        let (c4, out, e4) = try runStrata(["predict", "--model", torch, shirt])
        XCTAssertEqual(c4, 0, e4)
        XCTAssertTrue(out.contains("class "), out)

        let broken = testTemp("broken.onnx")
        try Data("not a model at all".utf8).write(to: URL(fileURLWithPath: broken))
        let (c5, _, e5) = try runStrata(["predict", "--model", broken, shirt])
        XCTAssertEqual(c5, 1, e5)
        XCTAssertTrue(e5.contains(broken) && e5.contains("not an ONNX model"), e5)
    }
}

extension OnnxExportTests {
    /// `strata import --onnx` turns PyTorch's chain of layers into a Strata model file that gives
    /// PyTorch's outputs; a graph with branches or an op without a layer is refused by name.
    func testImportCommandConvertsChainsOfLayers() throws {
        let folder = OnnxImportTests.folder
        for name in ["fashion_cnn_torchscript", "fashion_mlp_dynamo"] {
            let out = testTemp("import-\(name).safetensors")
            let (code, stdout, err) = try runStrata(["import", "--onnx", "\(folder)/\(name).onnx", "--out", out, "--classes", "a,b,c,d,e,f,g,h,i,j"])
            XCTAssertEqual(code, 0, err)
            XCTAssertTrue(stdout.contains("Linear"), stdout)
            let saved = try SavedModel.load(out)
            XCTAssertEqual(saved.info.classNames.first, "a")
            saved.model.eval()
            let x = try OnnxImportTests.value("\(folder)/\(name).onnx.test/test_data_set_0/input_0.pb")
            let want = try OnnxImportTests.value("\(folder)/\(name).onnx.test/test_data_set_0/output_0.pb")
            guard case .float(let xs) = x, case .float(let ys) = want else { return XCTFail("float test data") }
            let y = noGrad { saved.model(xs) }
            XCTAssertLessThan(zip(y.scalars, ys.scalars).map { Swift.abs($0 - $1) }.max() ?? 1, 1e-4, name)
        }
        for (name, says) in [("resnet18_narrow_torchscript", "joins two branches"), ("gru_text_torchscript", "int64 ids")] {
            let (code, _, err) = try runStrata(["import", "--onnx", "\(folder)/\(name).onnx", "--out", testTemp("import-bad.safetensors")])
            XCTAssertEqual(code, 1, err)
            XCTAssertTrue(err.contains(says) && err.contains("chains of layers"), err)
        }
        let (code, _, err) = try runStrata(["import", "--onnx", "\(folder)/fashion_mlp_dynamo.onnx", "--out", testTemp("x.onnx")])
        XCTAssertEqual(code, 1, err)
        XCTAssertTrue(err.contains("--out"), err)
    }

    /// An ONNX file without Strata's metadata takes its normalisation and class names from flags;
    /// the flags are refused for Strata's own model files, and bad values name the flag.
    func testNormalisationFlagsForForeignONNX() throws {
        let model = Sequential(Flatten(), Linear(16, 3))
        let onnx = testTemp("foreign.onnx")
        var proto = try Onnx.modelProto(model, info: ModelInfo(model: model, classNames: ["x", "y", "z"], inputShape: [1, 4, 4]))
        proto.metadataProps = []   // as PyTorch writes it
        try proto.serializedData().write(to: URL(fileURLWithPath: onnx))
        let img = testTemp("foreign.png")
        try Image(width: 4, height: 4, channels: 1, pixels: (0..<16).map { UInt8($0 * 15) }).savePNG(img)
        let (c0, plain, e0) = try runStrata(["predict", "--model", onnx, img, "--top", "3"])
        XCTAssertEqual(c0, 0, e0)
        XCTAssertTrue(plain.contains("class 0"), plain)
        let (c1, named, e1) = try runStrata(["predict", "--model", onnx, img, "--top", "3", "--mean", "0.5", "--std", "0.25", "--classes", "cat,dog,fox"])
        XCTAssertEqual(c1, 0, e1)
        XCTAssertTrue(named.contains("cat") && named.contains("fox"), named)
        // The normalisation reaches the model: (p / 255 - 0.5) / 0.25 scores differ from p / 255.
        XCTAssertNotEqual(plain.replacingOccurrences(of: "class 0", with: "cat").replacingOccurrences(of: "class 1", with: "dog").replacingOccurrences(of: "class 2", with: "fox"), named)
        for (args, flag) in [(["--std", "0"], "--std"), (["--mean", "a,b"], "--mean"), (["--classes", "a,,c"], "--classes"), (["--classes", "a,b"], "--classes")] {
            let (c, _, e) = try runStrata(["predict", "--model", onnx, img] + args)
            XCTAssertEqual(c, 1, e)
            XCTAssertTrue(e.contains(flag), e)
        }
        let saved = testTemp("foreign.safetensors")
        try SavedModel(model: model, info: ModelInfo(model: model, classNames: ["x", "y", "z"], inputShape: [1, 4, 4])).save(to: saved)
        let (c, _, e) = try runStrata(["predict", "--model", saved, img, "--mean", "0.5"])
        XCTAssertEqual(c, 1, e)
        XCTAssertTrue(e.contains("for ONNX models"), e)
    }
}
