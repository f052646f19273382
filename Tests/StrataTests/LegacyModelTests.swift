import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataFaces

/// Model files written by the binary of 5cc32b5, before the library was split into modules
/// (`Tools/make_legacy_fixtures.sh` made them, with its outputs): today's `strata` loads every
/// kind and gives the same summaries, probabilities and embeddings.
final class LegacyModelTests: XCTestCase {
    let dir = ModelFileTests.fixtures.appendingPathComponent("legacy")

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Every number in a JSON value, in a fixed order (keys sorted), skipping paths and names.
    func numbers(_ v: Any) -> [Double] {
        if let d = v as? [String: Any] { return d.keys.sorted().flatMap { numbers(d[$0]!) } }
        if let a = v as? [Any] { return a.flatMap { numbers($0) } }
        if let x = v as? Double { return [x] }
        return []
    }

    /// The numbers of each JSON line of `text`.
    func jsonNumbers(_ text: String) throws -> [Double] {
        try text.split(separator: "\n").flatMap { numbers(try JSONSerialization.jsonObject(with: Data($0.utf8))) }
    }

    func assertSameOutput(_ args: [String], as fixture: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (code, out, err) = try runStrata(args)
        XCTAssertEqual(code, 0, "strata \(args.joined(separator: " ")): \(err)", file: file, line: line)
        let want = try jsonNumbers(try String(contentsOfFile: path(fixture), encoding: .utf8))
        let got = try jsonNumbers(out)
        XCTAssertEqual(got.count, want.count, "\(fixture): \(out)", file: file, line: line)
        XCTAssertGreaterThan(want.count, 1, fixture, file: file, line: line)
        for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-5, "\(fixture)", file: file, line: line) }
    }

    func testPredictionsOfOldModelFilesDoNotMove() throws {
        for m in ["mlp", "cnn"] {
            try assertSameOutput(["predict", "--json", "--model", path("fashion-\(m).safetensors"), path("inputs/blob.pgm"), path("inputs/stripes.pgm")],
                                 as: "fashion-\(m).predict.json")
        }
        for m in ["cnn", "gru", "lstm", "transformer"] {
            try assertSameOutput(["predict", "--json", "--model", path("text-\(m).safetensors"),
                                  "--text", "A wonderful little film.", "--text", "Terrible service, never again."], as: "text-\(m).predict.json")
        }
        try assertSameOutput(["predict", "--json", "--model", path("audio-cnn.safetensors"), path("inputs/tone.wav")], as: "audio-cnn.predict.json")
        for m in ["att", "ensemble"] {
            try assertSameOutput(["faces", "embed", "--no-detect", "--model", path("faces-\(m).safetensors"), path("inputs/face-a.pgm"), path("inputs/face-b.pgm")],
                                 as: "faces-\(m).embed.jsonl")
        }
    }

    /// Summaries the old binary could print are printed the same; it could not load text, graph
    /// and face models at all (their layer types were registered only by some commands), and now
    /// every kind gives a table whose parameter count matches the file's weights.
    func testSummariesOfOldModelFiles() throws {
        let kinds = ["fashion-mlp", "fashion-cnn", "audio-cnn", "text-cnn", "text-gru", "text-lstm", "text-transformer",
                     "graph-gcn", "faces-att", "faces-ensemble"]
        for k in kinds {
            let (code, out, err) = try runStrata(["summary", "--model", path("\(k).safetensors")])
            XCTAssertEqual(code, 0, "\(k): \(err)")
            let old = try String(contentsOfFile: path("\(k).summary.txt"), encoding: .utf8)
            if !old.hasPrefix("error:") { XCTAssertEqual(out, old, k) }
            let (tensors, _) = try Safetensors.read(path("\(k).safetensors"))
            let saved = try SavedModel.load(path("\(k).safetensors"))
            let trainable = Set(saved.model.namedParameters().map { $0.0 })
            let count = tensors.filter { trainable.contains($0.key) }.reduce(0) { $0 + $1.value.count }
            XCTAssert(out.contains("Trainable parameters: \(count)"), "\(k): \(out)")
        }
    }
}
