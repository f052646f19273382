import XCTest
@testable import StrataONNX
@testable import StrataData
import StrataCore
import StrataNN
import StrataFaces

/// Every model kind Strata trains, exported and run back through Strata's own ONNX importer:
/// the graph must give what the model computes (onnxruntime runs the same files in
/// Tools/onnx_check.py, outside `make test`; README "ONNX").
final class OnnxExportModelTests: XCTestCase {
    /// Exports `model`, reads the file back and returns the largest difference between the
    /// graph's outputs and Strata's on `count` seeded sample inputs, and the graph's op types.
    func roundTrip(_ model: Module, inputShape: [Int], count: Int = 5, name: String) throws -> (worst: Float, ops: Set<String>) {
        let info = ModelInfo(model: model, classNames: ["a", "b", "c"], inputShape: inputShape)
        let path = testTemp("export-\(name).onnx")
        try Onnx.export(model, info: info, to: path)
        // ONNX test data beside it, for Tools/onnx_check.py (onnxruntime) by hand.
        try Onnx.writeTestData(model, info: info, count: count, folder: path + ".test", seed: 7)
        let graph = try OnnxModel(path: path)
        let x = Onnx.sampleInputs(model, info: info, count: count, seed: 7)
        let want = Onnx.reference(model, x)
        let got = try graph.run(inputs: x)
        XCTAssertEqual(got.shape, want.shape, name)
        guard got.shape == want.shape else { return (.infinity, []) }
        let worst = zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max() ?? 0
        // Batch of one too: the batch dimension is symbolic.
        if x.count == 1 || !(model is GCN) {
            let one = try graph.run(inputs: x.map { $0.slice(axis: 0, start: 0, end: 1) })
            XCTAssertEqual(one.shape, [1] + Array(want.shape.dropFirst()), name)
        }
        return (worst, Set(graph.graph.node.map(\.opType)))
    }

    func testTextModelsExportWithTheirRecurrentAndAttentionOps() throws {
        RandomGenerator.manualSeed(11)
        let expected: [TextClassifier.Kind: String] = [.cnn: "ReduceMax", .gru: "GRU", .lstm: "LSTM", .transformer: "LayerNormalization"]
        for kind in TextClassifier.Kind.allCases {
            let model = TextClassifier(kind: kind, vocabulary: 50, classes: 3, dim: 16, maxLength: 12)
            let (worst, ops) = try roundTrip(model, inputShape: [12], name: "text-\(kind)")
            XCTAssertLessThan(worst, 1e-4, "\(kind)")
            XCTAssertTrue(ops.contains(expected[kind]!), "\(kind): \(ops.sorted())")
        }
        // TF-IDF from token ids: counts (OneHot), idf, L2 norm, then the regression.
        let tfidf = TfIdfClassifier(vocabulary: 40, classes: 2)
        tfidf.idf.assign(Tensor.rand([40], low: 0.5, high: 3, seed: 1))
        let (worst, ops) = try roundTrip(tfidf, inputShape: [10], name: "tfidf")
        XCTAssertLessThan(worst, 1e-5)
        XCTAssertTrue(ops.contains("OneHot"), "\(ops.sorted())")
    }

    /// A pretrained BERT with its head (the tiny random BERT of the fixtures): attention with
    /// padded keys masked, GELU as Erf, masked mean pooling and L2 normalisation.
    func testEncoderClassifierExports() throws {
        let enc = try TextEncoder(folder: BertTests.fixtures.appendingPathComponent("tiny").path)
        for normalize in [true, false] {
            let model = EncoderClassifier(bert: enc.bert, classes: 3, normalize: normalize, padId: enc.tokenizer.padId, encoderFolder: nil)
            let (worst, ops) = try roundTrip(model, inputShape: [32], name: "bert-\(normalize)")
            XCTAssertLessThan(worst, 1e-4)
            XCTAssertTrue(ops.isSuperset(of: ["Erf", "LayerNormalization", "Softmax", "Gather"]), "\(ops.sorted())")
        }
    }

    func testStandaloneSequenceLayersExport() throws {
        RandomGenerator.manualSeed(12)
        let model = Sequential(Embedding(30, 8), LayerNorm([8]), GRU(8, 8), LSTM(8, 8), MultiHeadAttention(dim: 8, heads: 2),
                               TransformerEncoderLayer(dim: 8, heads: 2, feedForward: 16), Flatten(), Linear(6 * 8, 3))
        let info = ModelInfo(model: model, classNames: ["a", "b", "c"], inputShape: [6])
        let path = testTemp("export-sequence.onnx")
        try Onnx.export(model, info: info, to: path)
        try Onnx.writeTestData(model, info: info, count: 4, folder: path + ".test")
        // Ids as floats (the Sequential's input is a float tensor, cast inside the graph).
        let ids = Tensor((0..<24).map { Float(($0 * 7) % 30) }, shape: [4, 6])
        let want = Onnx.reference(model, [ids])
        let got = try OnnxModel(path: path).run(inputs: [ids])
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max() ?? 1, 1e-4)
    }

    /// The GCN's graph takes the features and the dense normalised adjacency and gives what
    /// `allScores` gives on the attached graph.
    func testGCNExportTakesTheAdjacency() throws {
        RandomGenerator.manualSeed(13)
        let edges = [(0, 1), (1, 2), (2, 3), (0, 4), (3, 5)]
        let features = Tensor.rand([6, 5], seed: 2)
        let g = Graph(features: features, labels: [0, 1, 0, 1, 0, 1], classNames: ["x", "y"], nodeIDs: (0..<6).map(String.init), edges: edges)
        let gcn = GCN(features: 5, hidden: 4, classes: 2)
        gcn.attach(g)
        gcn.eval()
        let sparse = g.normalizedAdjacency()
        var dense = [Float](repeating: 0, count: 36)
        for r in 0..<6 { for k in sparse.rowStart[r]..<sparse.rowStart[r + 1] { dense[r * 6 + sparse.colIndex[k]] = sparse.values[k] } }
        let adjacency = Tensor(dense, shape: [6, 6])
        let info = ModelInfo(model: gcn, classNames: ["x", "y"], inputShape: [5])
        let path = testTemp("export-gcn.onnx")
        try Onnx.export(gcn, info: info, to: path)
        let graph = try OnnxModel(path: path)
        XCTAssertEqual(graph.inputNames, ["features", "adjacency"])
        let got = try graph.run(inputs: [features, adjacency])
        let want = noGrad { gcn.allScores() }
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max() ?? 1, 1e-5)
        XCTAssertLessThan(try roundTrip(gcn, inputShape: [5], count: 9, name: "gcn").worst, 1e-5)
    }

    /// Face networks export their unit embeddings (image and mirror image summed); an ensemble
    /// whose networks take different crops gets one input per network.
    func testFaceNetworksExportTheirEmbeddings() throws {
        RandomGenerator.manualSeed(14)
        let plain = FaceNet(classes: 4, loss: .cosface, embedding: 8, widths: [4, 8], inputSize: (16, 12), channels: 3)
        let residual = FaceNet(classes: 4, loss: .cosface, embedding: 8, widths: [4, 8], inputSize: (16, 16), channels: 3, blocks: [1, 1])
        for (name, net) in [("plain", plain), ("residual", residual)] {
            let (worst, ops) = try roundTrip(net, inputShape: net.inputShape, name: "face-\(name)")
            XCTAssertLessThan(worst, 1e-5, name)
            XCTAssertTrue(ops.isSuperset(of: ["Slice", "Split", "Div"]), "\(ops.sorted())")
        }
        let ensemble = FaceEnsemble([plain, residual])
        let info = ModelInfo(model: ensemble, classNames: ["face"], inputShape: plain.inputShape)
        XCTAssertEqual(Onnx.inputs(of: ensemble, info: info).map(\.name), ["input_0", "input_1"])
        XCTAssertLessThan(try roundTrip(ensemble, inputShape: plain.inputShape, name: "face-ensemble").worst, 1e-5)
        let e = try roundTrip(ensemble, inputShape: plain.inputShape, name: "face-ensemble")
        XCTAssertTrue(e.ops.contains("Concat"))
        // Unit length, as Strata's embeddings.
        let out = try OnnxModel(path: testTemp("export-face-ensemble.onnx")).run(inputs: Onnx.sampleInputs(ensemble, info: info, count: 2))
        for r in 0..<2 { XCTAssertEqual((0..<16).reduce(Float(0)) { $0 + out.scalars[r * 16 + $1] * out.scalars[r * 16 + $1] }, 1, accuracy: 1e-4) }
    }

    func testDlibResNetAndDetectorExport() throws {
        RandomGenerator.manualSeed(15)
        let dlib = DlibResNet()
        for (name, p) in dlib.namedParameters() where name.hasSuffix("weight") && p.value.rank == 4 {
            p.assign(p.value * 0.5)   // keep the random activations from growing through 29 layers
        }
        let (worst, ops) = try roundTrip(dlib, inputShape: dlib.inputShape, count: 2, name: "dlib")
        XCTAssertLessThan(worst, 1e-4)
        XCTAssertTrue(ops.contains("Pad"), "the zero-padded residual sums: \(ops.sorted())")
        let detector = try FaceDetectorNet(configuration: .init())
        let d = try roundTrip(detector, inputShape: [3, 64, 96], count: 2, name: "detector")
        XCTAssertLessThan(d.worst, 1e-4)
    }

    /// A layer with no ONNX form is named with its place in the model.
    func testALayerWithoutAnONNXFormIsNamed() {
        let model = Sequential(Linear(4, 4), GraphConv(4, 4))
        let info = ModelInfo(model: model, classNames: ["a"], inputShape: [4])
        XCTAssertThrowsError(try Onnx.export(model, info: info)) { e in
            XCTAssertTrue("\(e)".contains("Sequential.1") && "\(e)".contains("GraphConv"), "\(e)")
        }
    }
}
