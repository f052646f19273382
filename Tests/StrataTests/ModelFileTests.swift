import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// Safetensors model files: PyTorch interop, round trips, and errors for damaged files.
final class ModelFileTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func tmp(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    /// The weights-only files written by Tools/make_torch_fixture.py (PyTorch's state_dict
    /// names) must give the logits numpy computed (which match PyTorch's to 4e-8).
    func testPyTorchWeightsOnlyFileMatchesKnownLogits() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("torch_logits.json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let input = Tensor((json["input"] as! [Double]).map(Float.init), shape: json["input_shape"] as! [Int])
        for arch in ["mlp", "cnn"] {
            let saved = try SavedModel.load(Self.fixtures.appendingPathComponent("torch_\(arch).safetensors").path, arch: arch)
            let expected = (json["\(arch)_logits"] as! [[Double]]).flatMap { $0 }
            let got = noGrad { saved.model(input) }.scalars
            XCTAssertEqual(got.count, expected.count)
            for (a, b) in zip(got, expected) { XCTAssertEqual(Double(a), b, accuracy: 1e-4, arch) }
            XCTAssertEqual(saved.info.classNames, ModelZoo.fashionClassNames)
        }
    }

    func testWeightsOnlyFileWithoutArchSaysWhatToPass() {
        XCTAssertThrowsError(try SavedModel.load(Self.fixtures.appendingPathComponent("torch_mlp.safetensors").path)) { e in
            XCTAssert("\(e)".contains("name its architecture (mlp, cnn or cnn-bn)"), "\(e)")
            XCTAssert("\(e)".contains("torch_mlp.safetensors"), "\(e)")
        }
    }

    func testSaveLoadPredictGiveIdenticalOutputs() throws {
        RandomGenerator.manualSeed(3)
        let model = ModelZoo.fashionCNN()
        var info = ModelZoo.fashionInfo(model)
        info.history = [EpochRecord(epoch: 1, trainLoss: 0.5, trainAccuracy: 0.8, valLoss: 0.45, valAccuracy: 0.83, seconds: 7, samplesPerSecond: 8000, learningRate: 1e-3)]
        let path = tmp("cnn.safetensors")
        try SavedModel(model: model, info: info).save(to: path)
        let loaded = try SavedModel.load(path)
        let x = Tensor.rand([3, 1, 28, 28], seed: 5)
        model.eval()
        XCTAssertEqual(noGrad { model(x) }.scalars, noGrad { loaded.model(x) }.scalars)
        XCTAssertEqual(loaded.info.history, info.history)
        XCTAssertEqual(loaded.info.inputShape, [1, 28, 28])
        XCTAssertEqual(loaded.info.normalization, info.normalization)
        XCTAssertEqual(Set(loaded.model.stateDict().keys), Set(["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"]))
    }

    func testSafetensorsRoundTripAndLayout() throws {
        let t = ["a": Tensor([1, 2, 3, 4], shape: [2, 2]), "b": Tensor([-1.5])]
        let data = try Safetensors.encode(t, metadata: ["k": "v"])
        // 8-byte little-endian header length, header padded to 8 bytes, then raw F32 data.
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(n % 8, 0)
        XCTAssertEqual(data.count, 8 + n + 5 * 4)
        let (back, meta) = try Safetensors.decode(data, name: "mem")
        XCTAssertEqual(back["a"]?.scalars, [1, 2, 3, 4])
        XCTAssertEqual(back["a"]?.shape, [2, 2])
        XCTAssertEqual(back["b"]?.scalars, [-1.5])
        XCTAssertEqual(meta, ["k": "v"])
    }

    func assertRejects(_ bytes: [UInt8], _ words: [String], file: StaticString = #filePath, line: UInt = #line) {
        let path = tmp("bad.safetensors")
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        XCTAssertThrowsError(try SavedModel.load(path, arch: "mlp"), file: file, line: line) { e in
            let m = "\(e)"
            XCTAssert(m.contains(path), "message does not name the file: \(m)", file: file, line: line)
            for w in words { XCTAssert(m.contains(w), "message lacks '\(w)': \(m)", file: file, line: line) }
        }
    }

    func header(_ json: String, data: Int = 0) -> [UInt8] {
        let h = Array(json.utf8)
        var out: [UInt8] = (0..<8).map { UInt8((h.count >> (8 * $0)) & 0xff) }
        out += h
        out += [UInt8](repeating: 0, count: data)
        return out
    }

    func testDamagedFilesAreRejectedWithTheFileNamed() throws {
        assertRejects([1, 2, 3], ["not a safetensors file"])
        assertRejects([0xff, 0xff, 0, 0, 0, 0, 0, 0, 0x7b], ["header length"])
        assertRejects(header("{not json"), ["not valid JSON"])
        assertRejects(header(#"{"1.weight":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, data: 8), ["outside"])
        assertRejects(header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: 12), ["overlap"])
        assertRejects(header(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: 8), ["needs 12"])
        assertRejects(header(#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}"#, data: 4), ["unsupported dtype"])
        // Well-formed, but tensors missing or of the wrong shape for the architecture.
        let path = tmp("partial.safetensors")
        var w = try Safetensors.read(Self.fixtures.appendingPathComponent("torch_mlp.safetensors").path).tensors
        w["5.bias"] = nil
        try Safetensors.write(w, to: path)
        XCTAssertThrowsError(try SavedModel.load(path, arch: "mlp")) { XCTAssert("\($0)".contains("missing tensors 5.bias"), "\($0)") }
        w["5.bias"] = Tensor.zeros([11])
        try Safetensors.write(w, to: path)
        XCTAssertThrowsError(try SavedModel.load(path, arch: "mlp")) { XCTAssert("\($0)".contains("'5.bias' has shape [11]"), "\($0)") }
        XCTAssertThrowsError(try SavedModel.load(tmp("does-not-exist.safetensors"))) { XCTAssert("\($0)".contains("no such file"), "\($0)") }
    }

    func testAFailedSaveLeavesThePreviousFileIntact() throws {
        let path = tmp("keep.safetensors")
        try Safetensors.write(["a": Tensor([1])], to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        // A folder that does not exist: the write fails before anything is renamed.
        XCTAssertThrowsError(try Safetensors.write(["a": Tensor([2])], to: "/nonexistent-dir/x.safetensors")) {
            XCTAssert("\($0)".contains("/nonexistent-dir"), "\($0)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        // A successful write replaces the file whole, and leaves no temporary file behind.
        try Safetensors.write(["a": Tensor([3])], to: path)
        XCTAssertEqual(try Safetensors.read(path).tensors["a"]?.scalars, [3])
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir).contains { $0.contains(".tmp-") })
    }

    func testHalfPrecisionAndIntegerTensorsAreConverted() throws {
        // F16 1.0 = 0x3C00, -2.0 = 0xC000; I64 7.
        var bytes = header(#"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"i":{"dtype":"I64","shape":[1],"data_offsets":[4,12]}}"#)
        bytes += [0x00, 0x3C, 0x00, 0xC0, 7, 0, 0, 0, 0, 0, 0, 0]
        let (t, _) = try Safetensors.decode(Data(bytes), name: "mem")
        XCTAssertEqual(t["h"]?.scalars, [1, -2])
        XCTAssertEqual(t["i"]?.scalars, [7])
    }

    func testHalfPrecisionWriting() throws {
        // Known binary16 codes: 1, -2, 65504 (largest), 0.1 (0x2E66), 2^-24 (smallest subnormal),
        // 1 + 2^-11 (a tie: rounds to even, 1.0), 1e6 (overflow: infinity), 2^-26 (underflow: 0).
        let values: [Float] = [1, -2, 65504, 0.1, 0x1p-24, 1 + 0x1p-11, 1e6, 0x1p-26]
        XCTAssertEqual(values.map(Safetensors.floatToHalf), [0x3C00, 0xC000, 0x7BFF, 0x2E66, 0x0001, 0x3C00, 0x7C00, 0x0000])
        // Every finite half survives a round trip through Float exactly.
        for h in UInt16(0)..<0x7C00 { XCTAssertEqual(Safetensors.floatToHalf(Safetensors.halfToFloat(h)), h) }
        let w = Tensor.randn([3, 5], seed: 4)
        let data = try Safetensors.encode(["w": w], half: true)
        let (t, _) = try Safetensors.decode(data, name: "mem")
        XCTAssert(t["w"]!.allClose(w, atol: 2e-3))
        XCTAssertLessThan(data.count, try Safetensors.encode(["w": w]).count)
    }
}
