import XCTest
import SwiftProtobuf
@testable import StrataONNX
import StrataCore
import StrataNN

/// ONNX files from PyTorch (both exporters; Tools/make_onnx_fixtures.py made them) and from
/// Strata's own exporter, run by the importer; and bad files refused with their names.
final class OnnxImportTests: XCTestCase {
    static let folder = ModelFileTests.fixtures.appendingPathComponent("onnx").path

    func tensor(_ path: String) throws -> Tensor {
        let p = try Onnx_TensorProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: path)))
        guard case .float(let t) = try OnnxFile.value(p, source: path, folder: ".") else { throw StrataError("\(path): not float") }
        return t
    }

    /// PyTorch's Fashion-MNIST MLP and CNN through torch.onnx's TorchScript exporter (opset 17)
    /// and its dynamo exporter (opset 20): Strata's outputs equal PyTorch's within 1e-4.
    func testPyTorchExportsRunWithPyTorchsOutputs() throws {
        for name in ["fashion_mlp_torchscript", "fashion_mlp_dynamo", "fashion_cnn_torchscript", "fashion_cnn_dynamo"] {
            let path = "\(Self.folder)/\(name).onnx"
            let m = try OnnxModel(path: path)
            let x = try tensor("\(path).test/test_data_set_0/input_0.pb")
            let want = try tensor("\(path).test/test_data_set_0/output_0.pb")
            let got = try m.run(x)
            XCTAssertEqual(got.shape, want.shape, name)
            let worst = zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(worst, 1e-4, name)
            // The batch is free: one input alone gives its row.
            let one = try m.run(x.indexSelect(axis: 0, indices: [3]))
            XCTAssertLessThan(zip(one.scalars, want.scalars[30..<40]).map { Swift.abs($0 - $1) }.max()!, 1e-4, name)
        }
    }

    /// Strata's export read back by Strata's import: the same outputs.
    func testStrataExportRoundTrips() throws {
        RandomGenerator.manualSeed(5)
        let model = Sequential(Conv2D(3, 8, kernelSize: 3, padding: 1), BatchNorm2d(8), ReLU(), ResidualBlock(8, 16, stride: 2),
                               AvgPool2D(2), GlobalAvgPool(), Linear(16, 6), GELU(), Linear(6, 4), Softmax())
        model.eval()
        let path = testTemp("roundtrip.onnx")
        try Onnx.export(model, info: ModelInfo(model: model, classNames: ["a", "b", "c", "d"], inputShape: [3, 12, 12]), to: path)
        let x = Tensor.randn([5, 3, 12, 12], seed: 2)
        let want = noGrad { model(x) }
        let got = try OnnxModel(path: path).run(x)
        XCTAssertEqual(got.shape, [5, 4])
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-5)
    }

    func graph(_ ops: [(String, [String], [String])], opset: Int64 = 17, initializers: [Onnx_TensorProto] = []) throws -> String {
        var g = Onnx_GraphProto()
        g.node = ops.map { op, i, o in
            var n = Onnx_NodeProto()
            (n.opType, n.input, n.output, n.name) = (op, i, o, "node_\(o[0])")
            return n
        }
        g.initializer = initializers
        g.input = [Onnx.valueInfo("x", dims: [4])]
        g.output = [Onnx.valueInfo(ops.last!.2[0], dims: [4])]
        var m = Onnx_ModelProto()
        var o = Onnx_OperatorSetIdProto()
        o.version = opset
        (m.irVersion, m.opsetImport, m.graph) = (8, [o], g)
        let path = testTemp("graph-\(ops.map(\.0).joined())-\(opset)-\(initializers.count).onnx")
        try m.serializedData().write(to: URL(fileURLWithPath: path))
        return path
    }

    func assertRefused(_ path: String, _ words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try OnnxModel(path: path).run(Tensor.zeros([1, 4])), file: file, line: line) { e in
            for w in words { XCTAssertTrue("\(e)".contains(w), "'\(w)' missing from: \(e)", file: file, line: line) }
        }
    }

    func testBadFilesAreRefusedWithTheirNames() throws {
        let good = "\(Self.folder)/fashion_mlp_torchscript.onnx"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let truncated = testTemp("truncated.onnx")
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        assertRefused(truncated, [truncated])
        let text = testTemp("text.onnx")
        try Data("hello, not a model".utf8).write(to: URL(fileURLWithPath: text))
        assertRefused(text, [text, "not an ONNX model"])
        assertRefused(testTemp("absent.onnx"), ["no such file"])
        let unknown = try graph([("Relu", ["x"], ["a"]), ("FancyOp", ["a"], ["b"])])
        assertRefused(unknown, [unknown, "node_b", "FancyOp"])
        let newer = try graph([("Relu", ["x"], ["a"])], opset: 99)
        assertRefused(newer, [newer, "opset 99"])
        // A weight stored outside the file that is not there, and one that points out of the folder.
        var w = Onnx_TensorProto()
        (w.name, w.dataType, w.dims, w.dataLocation) = ("w", 1, [4], .external)
        var loc = Onnx_StringStringEntryProto()
        (loc.key, loc.value) = ("location", "weights.bin")
        w.externalData = [loc]
        let missing = try graph([("Add", ["x", "w"], ["a"])], initializers: [w])
        assertRefused(missing, ["weights.bin", "missing"])
        loc.value = "../../etc/passwd"
        w.externalData = [loc]
        let escaping = try graph([("Mul", ["x", "w"], ["a"])], initializers: [w])
        assertRefused(escaping, ["outside the model's folder"])
        // A weight whose bytes do not fill its shape; shapes that do not fit a node.
        var short = Onnx_TensorProto()
        (short.name, short.dataType, short.dims, short.rawData) = ("w", 1, [1_000_000], Data(count: 8))
        assertRefused(try graph([("Sub", ["x", "w"], ["a"])], initializers: [short]), ["needs 4000000 bytes"])
        var wide = Onnx_TensorProto()
        (wide.name, wide.dataType, wide.dims, wide.rawData) = ("w", 1, [3], Data(count: 12))
        assertRefused(try graph([("Div", ["x", "w"], ["a"])], initializers: [wide]), ["node_a", "do not broadcast"])
    }

    /// External data beside the file is read (PyTorch's newer exporter writes weights so).
    func testExternalDataIsRead() throws {
        let dir = testTemp("onnx-external")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try ([Float](repeating: 0, count: 2) + [1, 2, 3, 4]).withUnsafeBufferPointer { Data(buffer: $0) }
            .write(to: URL(fileURLWithPath: dir + "/w.bin"))
        var w = Onnx_TensorProto()
        (w.name, w.dataType, w.dims, w.dataLocation) = ("w", 1, [4], .external)
        w.externalData = [("location", "w.bin"), ("offset", "8"), ("length", "16")].map { k, v in
            var e = Onnx_StringStringEntryProto()
            (e.key, e.value) = (k, v)
            return e
        }
        let inner = try graph([("Add", ["x", "w"], ["a"])], initializers: [w])
        let path = dir + "/m.onnx"
        try FileManager.default.moveItem(atPath: inner, toPath: path)
        XCTAssertEqual(try OnnxModel(path: path).run(Tensor([10, 20, 30, 40], shape: [1, 4])).scalars, [11, 22, 33, 44])
    }
}
