import XCTest
import SwiftProtobuf
@testable import StrataONNX
import StrataCore

/// ONNX's own node tests (Debian's libonnx-testdata, ONNX 1.12: one directory per test with
/// `model.onnx` and `test_data_set_N/{input,output}_K.pb`) for every op the importer runs.
/// `make test` installs the package; without it the test skips with a message.
final class OnnxNodeTests: XCTestCase {
    static let root = "/usr/share/libonnx-testdata/data/node"

    /// Passing node tests per op, out of all of that op's (README "ONNX" lists them): a drop is a
    /// regression; a rise means this table and the README's should be brought up to date.
    static let expected: [String: (pass: Int, total: Int)] = [
        "Add": (2, 3), "AveragePool": (6, 13), "BatchNormalization": (2, 4), "Cast": (0, 10), "Clip": (8, 11),
        "Concat": (12, 12), "Constant": (1, 1), "ConstantOfShape": (3, 3), "Conv": (5, 6), "ConvTranspose": (8, 10), "Div": (3, 4),
        "Dropout": (5, 12), "Equal": (2, 2), "Erf": (1, 1), "Exp": (2, 2), "Expand": (2, 2),
        "Flatten": (9, 9), "GRU": (4, 4), "Gather": (4, 4), "Gemm": (11, 11), "GlobalAveragePool": (0, 2),
        "Greater": (2, 2), "GreaterOrEqual": (2, 2), "Identity": (1, 3), "LSTM": (4, 4), "LayerNormalization": (19, 19),
        "LeakyRelu": (3, 3), "Less": (2, 2), "LessOrEqual": (2, 2), "Log": (2, 2), "LogSoftmax": (7, 7),
        "MatMul": (3, 3), "Max": (6, 14), "MaxPool": (6, 15), "Min": (6, 14), "Mul": (3, 4),
        "Neg": (2, 2), "OneHot": (3, 4), "Pad": (3, 3), "Pow": (12, 14), "Range": (2, 2), "ReduceMax": (8, 8),
        "ReduceMean": (8, 8), "ReduceMin": (8, 8), "ReduceSum": (10, 10), "Relu": (1, 1), "Reshape": (10, 10),
        "Shape": (10, 10), "Sigmoid": (2, 2), "Slice": (8, 8), "Softmax": (7, 7), "Split": (7, 7),
        "Sqrt": (2, 2), "Squeeze": (2, 2), "Sub": (3, 4), "Tanh": (2, 2), "Transpose": (7, 7),
        "Unsqueeze": (8, 8), "Where": (2, 2),
    ]

    func value(_ path: String) throws -> OnnxValue {
        let p = try Onnx_TensorProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: path)))
        return try OnnxFile.value(p, source: path, folder: ".")
    }

    func matches(_ got: OnnxValue?, _ want: OnnxValue) -> Bool {
        switch (got, want) {
        case (.float(let a)?, .float(let b)):
            guard a.shape == b.shape else { return false }
            return zip(a.scalars, b.scalars).allSatisfy { x, y in (x.isNaN && y.isNaN) || Swift.abs(x - y) <= 1e-3 * Swift.abs(y) + 1e-5 }
        case (.int64(let a, let sa)?, .int64(let b, let sb)):
            return a == b && sa == sb
        default:
            return false
        }
    }

    /// Runs one node test; nil when it passes, else why not.
    func run(_ dir: String) -> String? {
        do {
            let m = try OnnxModel(path: dir + "/model.onnx")
            let sets = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("test_data_set_") }.sorted()
            for set in sets {
                let folder = "\(dir)/\(set)"
                var feeds: [String: OnnxValue] = [:]
                for (k, name) in m.inputNames.enumerated() { feeds[name] = try value("\(folder)/input_\(k).pb") }
                let values = try m.run(feeds: feeds)
                for (k, out) in m.graph.output.enumerated() {
                    let want = try value("\(folder)/output_\(k).pb")
                    if !matches(values[out.name], want) { return "\(set): output \(k) differs" }
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }

    func testNodeTestsOfSupportedOps() throws {
        guard FileManager.default.fileExists(atPath: Self.root) else {
            throw XCTSkip("\(Self.root) missing: apt-get install libonnx-testdata (make test installs it)")
        }
        var table: [String: (pass: Int, total: Int)] = [:]
        var failures: [String] = []
        for test in try FileManager.default.contentsOfDirectory(atPath: Self.root).sorted() where !test.hasSuffix("_expanded") {
            let dir = "\(Self.root)/\(test)"
            guard let data = FileManager.default.contents(atPath: dir + "/model.onnx"),
                  let m = try? Onnx_ModelProto(serializedBytes: data), m.graph.node.count == 1,
                  OnnxOps.supported.contains(m.graph.node[0].opType) else { continue }
            let op = m.graph.node[0].opType
            let why = run(dir)
            table[op, default: (0, 0)].total += 1
            if why == nil { table[op]!.pass += 1 } else { failures.append("\(test): \(why!)") }
        }
        let lines = table.keys.sorted().map { "| \($0) | \(table[$0]!.pass) of \(table[$0]!.total) |" }
        print("ONNX node tests (libonnx-testdata), op | passing:\n" + lines.joined(separator: "\n"))
        print("not passing:\n" + failures.joined(separator: "\n"))
        XCTAssertFalse(table.isEmpty, "no node test found for the supported ops")
        for (op, want) in Self.expected {
            XCTAssertGreaterThanOrEqual(table[op]?.pass ?? 0, want.pass, "\(op): fewer node tests pass than before")
        }
    }
}
