import XCTest
import SwiftProtobuf
@testable import StrataONNX
import StrataCore
import StrataNN
import StrataData

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

    func value(_ path: String) throws -> OnnxValue { try Self.value(path) }

    static func value(_ path: String) throws -> OnnxValue {
        let p = try Onnx_TensorProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: path)))
        return try OnnxFile.value(p, source: path, folder: ".")
    }

    /// Runs `path` on its `path.test/test_data_set_0` inputs (float or int64, one per data input)
    /// and returns the largest difference from every expected output (int64 outputs must be
    /// equal; a shape or kind that differs is infinite).
    func worstDifference(_ path: String) throws -> Float {
        let m = try OnnxModel(path: path)
        let folder = "\(path).test/test_data_set_0"
        var feeds: [String: OnnxValue] = [:]
        for (k, name) in m.inputNames.enumerated() { feeds[name] = try value("\(folder)/input_\(k).pb") }
        let values = try m.run(feeds: feeds)
        var worst: Float = 0
        for (k, out) in m.graph.output.enumerated() {
            let want = try value("\(folder)/output_\(k).pb")
            switch (values[out.name], want) {
            case (.float(let a)?, .float(let b)) where a.shape == b.shape:
                worst = Swift.max(worst, zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max() ?? 0)
            case (.int64(let a, let sa)?, .int64(let b, let sb)) where sa == sb && a == b:
                break
            default:
                XCTFail("\(path): output \(k) (\(out.name)) is \(String(describing: values[out.name]?.shape)), expected \(want.shape)")
                return .infinity
            }
        }
        return worst
    }

    /// A ResNet-18 (channel-reduced to widths 16 to 128; same depth, strides, BN with random
    /// running statistics) at 64x64, and a GRU text classifier on int64 token ids (padded ends),
    /// through both of PyTorch's exporters: PyTorch's outputs within 1e-4 over 8 inputs.
    func testPyTorchResNetAndGRUClassifier() throws {
        for name in ["resnet18_narrow_torchscript", "resnet18_narrow_dynamo", "gru_text_torchscript", "gru_text_dynamo"] {
            let path = "\(Self.folder)/\(name).onnx"
            let worst = try worstDifference(path)
            print("\(name): largest difference from PyTorch \(worst)")
            XCTAssertLessThan(worst, 1e-4, name)
        }
        // The classifier through forward: ids arrive as a float tensor and go in as int64.
        let path = "\(Self.folder)/gru_text_torchscript.onnx"
        let m = try OnnxModel(path: path)
        XCTAssertTrue(m.inputIsInt64)
        guard case .int64(let ids, let shape) = try value("\(path).test/test_data_set_0/input_0.pb"),
              case .float(let want) = try value("\(path).test/test_data_set_0/output_0.pb") else { return XCTFail("fixture kinds") }
        XCTAssertEqual(shape, [8, 20])
        let got = m(Tensor(ids.map(Float.init), shape: shape))
        XCTAssertNil(m.lastError)
        XCTAssertEqual(got.shape, [8, 3])
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max() ?? .infinity, 1e-4)
        XCTAssertThrowsError(try m.run(Tensor([0.5], shape: [1, 1]))) { XCTAssertTrue("\($0)".contains("whole numbers"), "\($0)") }
    }

    /// One-node graphs whose outputs onnxruntime computed: GRU and LSTM with sequence lengths in
    /// reverse and both directions (with initial states, peepholes, both linear_before_reset),
    /// Slice flipping axes with INT64_MIN ends, Split, opset-18 reductions, LayerNormalization,
    /// Range, Pad (constant, reflect, edge with cropping), Where.
    func testOpsAgainstOnnxruntime() throws {
        let dir = "\(Self.folder)/ops"
        let cases = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".onnx") }.sorted()
        XCTAssertEqual(cases.count, 30)
        for c in cases {
            let worst = try worstDifference("\(dir)/\(c)")
            XCTAssertLessThan(worst, 1e-5, c)
        }
    }

    /// Every `*.onnx` with its `.onnx.test` folder in $STRATA_ONNX_EXTRA (e.g. the full-width
    /// ResNet-18 of `make_onnx_fixtures.py --full-resnet`, too big to commit), within 1e-4.
    func testExtraFolder() throws {
        guard let dir = ProcessInfo.processInfo.environment["STRATA_ONNX_EXTRA"], !dir.isEmpty else {
            throw XCTSkip("STRATA_ONNX_EXTRA is not set: no extra ONNX files to run")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".onnx") }.sorted()
        XCTAssertFalse(files.isEmpty, "no .onnx file in \(dir)")
        for f in files {
            let start = Date()
            let worst = try worstDifference("\(dir)/\(f)")
            print("\(f): largest difference \(worst) (\(String(format: "%.1f", Date().timeIntervalSince(start))) s)")
            XCTAssertLessThan(worst, 1e-4, f)
        }
    }

    /// Checked refusals of the recurrent and indexing ops: the node and the problem are named.
    func testNewOpsRefuseBadInputs() throws {
        func model(_ op: String, _ inputs: [String], _ inits: [Onnx_TensorProto], _ attrs: [Onnx_AttributeProto] = []) throws -> String {
            let path = try graph([(op, inputs, ["y"])], initializers: inits)
            var m = try OnnxFile.read(path)
            m.graph.node[0].attribute = attrs
            try m.serializedData().write(to: URL(fileURLWithPath: path))
            return path
        }
        func floats(_ name: String, _ shape: [Int]) -> Onnx_TensorProto { OnnxTensors.proto(Tensor.zeros(shape), name: name) }
        func ints(_ name: String, _ v: [Int64]) -> Onnx_TensorProto {
            var p = Onnx_TensorProto()
            (p.name, p.dataType, p.dims, p.int64Data) = (name, Int32(Onnx_TensorProto.DataType.int64.rawValue), [Int64(v.count)], v)
            return p
        }
        func run(_ path: String, _ x: Tensor) -> String {
            do { _ = try OnnxModel(path: path).run(feeds: ["x": .float(x)]); return "" } catch { return "\(error)" }
        }
        // GRU: X must be rank 3; W must fit 3 gates of hidden_size; other activations are refused.
        let w = floats("W", [1, 6, 4]), r = floats("R", [1, 6, 2])
        XCTAssertTrue(run(try model("GRU", ["x", "W", "R"], [w, r]), Tensor.zeros([4])).contains("must be [seq, batch, input]"))
        XCTAssertEqual(run(try model("GRU", ["x", "W", "R"], [w, r]), Tensor.zeros([3, 1, 4])), "")
        XCTAssertTrue(run(try model("GRU", ["x", "W", "R"], [floats("W", [1, 7, 4]), r]), Tensor.zeros([3, 1, 4])).contains("W [1, 7, 4]"))
        var act = Onnx_AttributeProto()
        (act.name, act.type, act.strings) = ("activations", .strings, [Data("Relu".utf8), Data("Tanh".utf8)])
        XCTAssertTrue(run(try model("GRU", ["x", "W", "R"], [w, r], [act]), Tensor.zeros([3, 1, 4])).contains("activations"))
        XCTAssertTrue(run(try model("GRU", ["x", "W", "R", "", "L"], [w, r, ints("L", [9])]), Tensor.zeros([3, 1, 4])).contains("sequence_lens"))
        // LSTM's B must be [D, 8H]; Slice's steps nonzero; Split's sizes must add up; Expand must broadcast.
        XCTAssertTrue(run(try model("LSTM", ["x", "W", "R", "B"], [floats("W", [1, 8, 4]), floats("R", [1, 8, 2]), floats("B", [1, 8])]), Tensor.zeros([3, 1, 4])).contains("B [1, 8] must be [1, 16]"))
        XCTAssertTrue(run(try model("Slice", ["x", "s", "e", "a", "t"], [ints("s", [0]), ints("e", [2]), ints("a", [0]), ints("t", [0])]), Tensor.zeros([4])).contains("nonzero"))
        XCTAssertTrue(run(try model("Split", ["x", "s"], [ints("s", [1, 2])]), Tensor.zeros([4])).contains("does not add up"))
        XCTAssertTrue(run(try model("Expand", ["x", "s"], [ints("s", [3])]), Tensor.zeros([4])).contains("do not broadcast"))
        XCTAssertTrue(run(try model("ConstantOfShape", ["s"], [ints("s", [1 << 20, 1 << 20])]), Tensor.zeros([4])).contains("more than"))
        XCTAssertTrue(run(try model("LayerNormalization", ["x", "s"], [floats("s", [3])]), Tensor.zeros([2, 4])).contains("Scale [3]"))
        // Greater and Max on int64 stay exact (2^53 + 1 is not a float).
        let big = Int64(1) << 53
        let cmp = try model("Greater", ["a", "b"], [ints("a", [big + 1, 2]), ints("b", [big, 3])])
        let values = try OnnxModel(path: cmp).run(feeds: ["x": .float(Tensor.zeros([4]))])
        guard case .int64(let g, _)? = values["y"] else { return XCTFail("Greater made no int64") }
        XCTAssertEqual(g, [1, 0])
    }

    /// int64 values (shapes, ids) through Concat, Gather and Transpose of any rank stay exact
    /// integers (2^53 + 1 has no float32 or float64 form).
    func testIntegersStayIntegers() throws {
        let big = (1 << 53) + 1
        func ints(_ name: String, _ v: [Int], _ shape: [Int64]) -> Onnx_TensorProto {
            var p = Onnx_TensorProto()
            (p.name, p.dataType, p.dims, p.int64Data) = (name, Int32(Onnx_TensorProto.DataType.int64.rawValue), shape, v.map(Int64.init))
            return p
        }
        let path = try graph([("Concat", ["a", "b"], ["c"]), ("Gather", ["c", "i"], ["g"]), ("Transpose", ["g"], ["y"])],
                             initializers: [ints("a", [big, 2, 3, 4], [2, 2]), ints("b", [5, 6], [2, 1]), ints("i", [2, 0], [2])])
        var m = try OnnxFile.read(path)
        m.graph.node[0].attribute = [OnnxAttribute.int("axis", 1).proto]
        m.graph.node[1].attribute = [OnnxAttribute.int("axis", 1).proto]
        try m.serializedData().write(to: URL(fileURLWithPath: path))
        let values = try OnnxModel(path: path).run(feeds: ["x": .float(Tensor.zeros([4]))])
        guard case .int64(let c, let sc)? = values["c"], case .int64(let g, let sg)? = values["g"], case .int64(let y, let sy)? = values["y"] else {
            return XCTFail("integers became floats: \(values.mapValues(\.shape))")
        }
        XCTAssertEqual(sc, [2, 3]); XCTAssertEqual(c, [big, 2, 5, 3, 4, 6])
        XCTAssertEqual(sg, [2, 2]); XCTAssertEqual(g, [5, big, 6, 3])
        XCTAssertEqual(sy, [2, 2]); XCTAssertEqual(y, [5, 6, big, 3])
    }

    /// A 1-D convolutional classifier of raw sound from PyTorch (Conv1d with stride, padding,
    /// dilation and groups, BatchNorm1d folded in by the exporters, MaxPool1d, AvgPool1d,
    /// AdaptiveAvgPool1d) through both exporters: PyTorch's outputs within 1e-4. The TorchScript
    /// graph, a chain, becomes Strata's 1-D layers with the same outputs.
    func testPyTorchConv1dClassifierRunsAndBecomesLayers() throws {
        // The dynamo graph runs; the TorchScript one also becomes layers.
        let worst = try worstDifference("\(Self.folder)/audio_conv1d_dynamo.onnx")
        print("audio_conv1d_dynamo: largest difference from PyTorch \(worst)")
        XCTAssertLessThan(worst, 1e-4)
        let layers = try pytorchFixtureAsLayers("audio_conv1d_torchscript", types: ["Conv1D", "ReLU", "MaxPool1D", "Conv1D", "ReLU", "AvgPool1D", "Conv1D",
                                                                                  "Tanh", "GlobalAvgPool", "Linear"], outputShape: [8, 4])
        let second = try XCTUnwrap(layers.layers[3] as? Conv1D)
        XCTAssertEqual([second.kernelSize, second.stride, second.padding, second.dilation, second.groups], [5, 1, 4, 2, 2])
    }

    /// A PyTorch fixture run as a graph (PyTorch's outputs within 1e-4), then as Strata layers of
    /// `types` giving PyTorch's outputs of `outputShape` too; the layers for further checks.
    func pytorchFixtureAsLayers(_ name: String, types: [String], outputShape: [Int]) throws -> Sequential {
        let path = "\(Self.folder)/\(name).onnx"
        let worst = try worstDifference(path)
        print("\(name): largest difference from PyTorch \(worst)")
        XCTAssertLessThan(worst, 1e-4, name)
        let layers = try OnnxModel(path: path).strataLayers()
        XCTAssertEqual(layers.layers.map(\.typeName), types, name)
        let x = try tensor("\(path).test/test_data_set_0/input_0.pb"), want = try tensor("\(path).test/test_data_set_0/output_0.pb")
        let got = noGrad { layers(x) }
        XCTAssertEqual(got.shape, outputShape, name)
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-4, name)
        return layers
    }

    /// PyTorch's ConvTranspose2d layers (stride 2 with padding and output padding; unequal
    /// strides with padding, dilation and groups) through both exporters: PyTorch's outputs within
    /// 1e-4, and as Strata layers (ConvTranspose2D) too.
    func testPyTorchTransposedConvolutionsRunAndBecomeLayers() throws {
        for name in ["upsampler_convtranspose_torchscript", "upsampler_convtranspose_dynamo"] {
            let layers = try pytorchFixtureAsLayers(name, types: ["ConvTranspose2D", "ReLU", "ConvTranspose2D", "Tanh", "Conv2D"], outputShape: [8, 3, 12, 20])
            let second = try XCTUnwrap(layers.layers[2] as? ConvTranspose2D)
            XCTAssertEqual([second.stride, second.padding, second.dilation, second.outputPadding], [[1, 2], [1, 0], [2, 1], 0])
            XCTAssertEqual(second.groups, 2)
        }
    }

    /// PyTorch's pooling options (`pooling_options` of make_onnx_fixtures.py): MaxPool2d in ceil
    /// mode, AvgPool2d in ceil mode leaving the padding out, dilated MaxPool2d. Run as a graph and
    /// as layers, both exporters: PyTorch's outputs.
    func testPyTorchPoolingOptionsRunAndBecomeLayers() throws {
        for name in ["pooling_options_torchscript", "pooling_options_dynamo"] {
            let layers = try pytorchFixtureAsLayers(name, types: ["Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "AvgPool2D", "MaxPool2D", "Flatten", "Linear"],
                                                    outputShape: [8, 5])
            let (ceilMax, average, dilated) = (try XCTUnwrap(layers.layers[2] as? MaxPool2D), try XCTUnwrap(layers.layers[5] as? AvgPool2D),
                                               try XCTUnwrap(layers.layers[6] as? MaxPool2D))
            XCTAssertTrue(ceilMax.ceilMode && average.ceilMode && !average.countIncludePad && !dilated.ceilMode, name)
            XCTAssertEqual(dilated.dilation, 2, name)
            // Shape inference follows the options: 23 -> conv 21 -> max 10 -> conv 10 -> ceil-mode average 6 (5 without
            // ceil mode) -> dilated max 4, so 8x4x4 values reach the Linear.
            XCTAssertEqual(try ShapeInference.outputShape(of: layers, for: [8, 3, 23, 23]), [8, 5], name)
        }
    }

    /// PyTorch's adaptive pooling as its exporters write it (`adaptive_pooling`): AdaptiveAvgPool2d to
    /// 4x6 of an 8x12 map becomes an AveragePool, AdaptiveMaxPool2d to 1 a MaxPool over the whole
    /// map (TorchScript) or a ReduceMax with a Reshape (dynamo), which `strataLayers` reads as GlobalMaxPool.
    func testPyTorchAdaptivePoolingRunsAndBecomesLayers() throws {
        for (name, tail) in [("adaptive_pooling_torchscript", ["MaxPool2D", "Flatten", "Linear"]), ("adaptive_pooling_dynamo", ["GlobalMaxPool", "Linear"])] {
            _ = try pytorchFixtureAsLayers(name, types: ["Conv2D", "ReLU", "AvgPool2D", "Conv2D", "Tanh"] + tail, outputShape: [8, 4])
        }
    }

    /// `model` exported to ONNX and read back: the graph's and the imported layers' outputs on 4
    /// random inputs each within 1e-5 of the model's. Returns the graph's output and the layers.
    func exportedAndReadBack(_ model: Module, inputShape: [Int], _ name: String) throws -> (graph: Tensor, layers: Sequential) {
        model.eval()
        let path = testTemp("roundtrip-\(name).onnx")
        try Onnx.export(model, info: ModelInfo(model: model, classNames: ["a", "b", "c"], inputShape: inputShape), to: path)
        let x = Tensor.randn([4] + inputShape, seed: 3)
        let want = noGrad { model(x) }
        let onnx = try OnnxModel(path: path)
        let got = try onnx.run(x)
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-5, name)
        let layers = try onnx.strataLayers()
        XCTAssertLessThan(zip(noGrad { layers(x) }.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-5, name)
        return (got, layers)
    }

    /// Strata's adaptive and global pooling exported and read back: global pooling and sizes that
    /// divide have ONNX forms with the same outputs; sizes that do not divide are refused by name.
    func testStrataAdaptivePoolingExportRoundTrips() throws {
        RandomGenerator.manualSeed(10)
        // [3, 10, 14] -> conv 8x12 -> 4x6 -> 2x2 -> 1x1
        let image = Sequential(Conv2D(3, 4, kernelSize: 3), ReLU(), AdaptiveAvgPool2D([4, 6]), AdaptiveMaxPool2D(2), AdaptiveAvgPool2D(1),
                               Flatten(), Linear(4, 3))
        // [2, 30] -> conv 28 -> 7 -> global max
        let sequence = Sequential(Conv1D(2, 4, kernelSize: 3), AdaptiveMaxPool1D(7), Tanh(), AdaptiveAvgPool1D(7), GlobalMaxPool(), Linear(4, 3))
        for (model, shape, name) in [(image, [3, 10, 14], "adaptive-image"), (sequence, [2, 30], "adaptive-sequence")] {
            _ = try exportedAndReadBack(model, inputShape: shape, name)
        }
        XCTAssertEqual(try OnnxModel(path: testTemp("roundtrip-adaptive-image.onnx")).graph.node.map(\.opType),
                       ["Conv", "Relu", "AveragePool", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm"])
        let uneven = Sequential(Conv2D(3, 4, kernelSize: 3), AdaptiveAvgPool2D(3), Flatten(), Linear(36, 2))
        XCTAssertThrowsError(try Onnx.export(uneven, info: ModelInfo(model: uneven, classNames: ["a", "b"], inputShape: [3, 10, 14]),
                                             to: testTemp("uneven-adaptive.onnx"))) {
            XCTAssertTrue("\($0)".contains("layer Sequential.1 (AdaptiveAvgPool2D) pools [8, 12] to [3, 3]"), "\($0)")
        }
    }

    /// Strata's pooling options exported and read back, as a graph and as layers: the same outputs.
    func testStrataPoolingOptionsExportRoundTrip() throws {
        RandomGenerator.manualSeed(9)
        // [2, 22, 22] -> conv 20 -> ceil-mode max 10 (9 full windows and a partial one) -> average 6 -> dilated max 5x4
        let image = Sequential(Conv2D(2, 4, kernelSize: 3), ReLU(), MaxPool2D(3, stride: 2, ceilMode: true),
                               AvgPool2D(3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false), MaxPool2D(2, stride: 1, dilation: [1, 2]),
                               Flatten(), Linear(4 * 5 * 4, 3))
        // [2, 30] -> conv 28 -> dilated max 26 -> ceil-mode average 14
        let sequence = Sequential(Conv1D(2, 4, kernelSize: 3), MaxPool1D(2, stride: 1, dilation: 2, ceilMode: true),
                                  AvgPool1D(3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false), GlobalAvgPool(), Linear(4, 3))
        for (model, shape, name) in [(image, [2, 22, 22], "pooling-image"), (sequence, [2, 30], "pooling-sequence")] {
            let (got, layers) = try exportedAndReadBack(model, inputShape: shape, name)
            XCTAssertEqual(got.shape, [4, 3], name)
            let json = { (m: Module) in String(decoding: try JSONSerialization.data(withJSONObject: ModuleRegistry.spec(of: m), options: .sortedKeys), as: UTF8.self) }
            XCTAssertEqual(try json(layers), try json(model), name)
        }
    }

    /// Strata's 1-D layers exported and read back, run as a graph and as layers: the same outputs.
    func testStrataConv1dExportRoundTrips() throws {
        RandomGenerator.manualSeed(6)
        let bn = BatchNorm1d(6)
        let model = Sequential(Conv1D(2, 6, kernelSize: 5, stride: 2, padding: 2), bn, ReLU(), MaxPool1D(3, stride: 2, padding: 1),
                               Conv1D(6, 8, kernelSize: 3, dilation: 2, groups: 2, bias: false), AvgPool1D(2), GlobalAvgPool(), Linear(8, 3))
        bn.runningMean.assign(Tensor.randn([6], seed: 1) * 0.3)
        bn.runningVar.assign(Tensor.rand([6], low: 0.5, high: 2))
        model.eval()
        let path = testTemp("roundtrip-1d.onnx")
        try Onnx.export(model, info: ModelInfo(model: model, classNames: ["a", "b", "c"], inputShape: [2, 40]), to: path)
        let x = Tensor.randn([5, 2, 40], seed: 2)
        let want = noGrad { model(x) }
        let onnx = try OnnxModel(path: path)
        XCTAssertEqual(onnx.graph.node.map(\.opType), ["Conv", "BatchNormalization", "Relu", "MaxPool", "Conv", "AveragePool",
                                                       "GlobalAveragePool", "Flatten", "Gemm"])
        let got = try onnx.run(x)
        XCTAssertEqual(got.shape, [5, 3])
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-5)
        let layers = try onnx.strataLayers()
        XCTAssertEqual(layers.layers.map(\.typeName), ["Conv1D", "BatchNorm1d", "ReLU", "MaxPool1D", "Conv1D", "AvgPool1D", "GlobalAvgPool", "Linear"])
        XCTAssertLessThan(zip(noGrad { layers(x) }.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-5)
    }

    /// Strata's ConvTranspose2D exported and read back, as a graph and as layers: the same outputs.
    func testStrataConvTransposeExportRoundTrips() throws {
        RandomGenerator.manualSeed(8)
        let model = Sequential(Conv2D(3, 8, kernelSize: 3, stride: 2, padding: 1), ReLU(),
                               ConvTranspose2D(8, 4, kernelSize: [3, 4], stride: [2, 3], padding: [1, 2], outputPadding: [1, 2], dilation: [1, 2], groups: 2),
                               Tanh(), ConvTranspose2D(4, 2, kernelSize: 2, bias: false))
        model.eval()
        let path = testTemp("roundtrip-transpose.onnx")
        try Onnx.export(model, info: ModelInfo(model: model, classNames: ["a", "b"], inputShape: [3, 9, 7]), to: path)
        let x = Tensor.randn([3, 3, 9, 7], seed: 4)
        let want = noGrad { model(x) }
        let onnx = try OnnxModel(path: path)
        XCTAssertEqual(onnx.graph.node.map(\.opType), ["Conv", "Relu", "ConvTranspose", "Tanh", "ConvTranspose"])
        let got = try onnx.run(x)
        XCTAssertEqual(got.shape, want.shape)
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-5)
        let layers = try onnx.strataLayers()
        XCTAssertEqual(layers.layers.map(\.typeName), ["Conv2D", "ReLU", "ConvTranspose2D", "Tanh", "ConvTranspose2D"])
        XCTAssertLessThan(zip(noGrad { layers(x) }.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-5)
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

extension OnnxImportTests {
    /// PyTorch's Fashion-MNIST MLP and CNN, trained as the reference script trains them and
    /// exported by both exporters, give PyTorch's own test accuracy (fashion_accuracy.json,
    /// written by Tools/make_onnx_fixtures.py) on the 10,000 test images.
    func testPyTorchFashionModelsKeepTheirTestAccuracy() throws {
        guard haveFashion else { throw XCTSkip("dataset-fashion-mnist is not installed (make demo-deps)") }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/fashion_accuracy.json"))) as! [String: [String: Any]]
        let test = try FashionMNIST.load(.test)
        let batches = stride(from: 0, to: test.count, by: 1000).map { test.batch(Array($0..<Swift.min($0 + 1000, test.count))) }
        for (name, record) in json.sorted(by: { $0.key < $1.key }) {
            let torchCorrect = try XCTUnwrap(record["correct"] as? Int)
            for exporter in ["torchscript", "dynamo"] {
                let m = try OnnxModel(path: "\(Self.folder)/\(name)_\(exporter).onnx")
                let correct = try batches.reduce(0) { sum, b in
                    sum + zip(try m.run(b.inputs).argmaxIndices(), b.labels).filter { $0 == $1 }.count
                }
                print("\(name) (\(exporter)): Strata \(correct) right of \(test.count), PyTorch \(torchCorrect)")
                // Near-ties may flip an argmax between float orders; none did when this was written.
                XCTAssertLessThanOrEqual(Swift.abs(correct - torchCorrect), 2, "\(name) \(exporter)")
            }
        }
    }
}
