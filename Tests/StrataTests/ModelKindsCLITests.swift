import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData

/// One small model file of every kind `strata` writes, each through the commands that apply:
/// `summary`, `predict` (or `faces embed`), `evaluate` where a data set applies, `inspect`.
final class ModelKindsCLITests: XCTestCase {
    func ok(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let (code, out, err) = try runStrata(args)
        XCTAssertEqual(code, 0, "strata \(args.joined(separator: " ")): \(err)", file: file, line: line)
        XCTAssertFalse(err.contains("Fatal error"), err, file: file, line: line)
        return out
    }

    /// The probabilities of the first prediction of `predict --json`: they name every class and sum to 1.
    func checkPrediction(_ out: String, classes: Set<String>, file: StaticString = #filePath, line: UInt = #line) throws {
        let json = try JSONSerialization.jsonObject(with: Data(out.split(separator: "\n").last!.utf8)) as! [String: Any]
        let p = (json["predictions"] as! [[String: Any]])[0]["probabilities"] as! [String: Double]
        XCTAssertEqual(Set(p.keys), classes, file: file, line: line)
        XCTAssertEqual(p.values.reduce(0, +), 1, accuracy: 1e-4, file: file, line: line)
    }

    func testTextAudioAndGraphModels() throws {
        let textDir = testTemp("kinds-sms")
        try FileManager.default.createDirectory(atPath: textDir, withIntermediateDirectories: true)
        let lines = (0..<40).map { $0 % 4 == 0 ? "spam\twin a prize now \($0)" : "ham\tsee you at lunch \($0)" }
        FileManager.default.createFile(atPath: textDir + "/SMSSpamCollection", contents: Data(lines.joined(separator: "\n").utf8))
        for kind in ["cnn", "gru", "lstm", "transformer", "tfidf"] {
            let m = testTemp("kinds-sms-\(kind).safetensors")
            _ = try ok(["train", "--data", "sms-spam", "--data-dir", textDir, "--model", kind, "--epochs", "1", "--out", m])
            XCTAssert(try ok(["summary", "--model", m]).contains("Trainable parameters"), kind)
            try checkPrediction(try ok(["predict", "--model", m, "--text", "win a prize now", "--json"]), classes: ["ham", "spam"])
            let report = testTemp("kinds-sms-\(kind)-report")
            _ = try ok(["inspect", "--model", m, "--text", "win a prize now", "--out", report])
            XCTAssert(FileManager.default.fileExists(atPath: report + "/index.html"), kind)
        }

        let audioDir = testTemp("kinds-fsdd")
        try FileManager.default.createDirectory(atPath: audioDir + "/recordings", withIntermediateDirectories: true)
        for d in 0..<2 {
            for i in 0..<6 {
                try Audio(samples: (0..<2000).map { Float(0.4 * sin(2 * Double.pi * (d == 0 ? 300 : 1200) * Double($0) / 8000)) }, sampleRate: 8000)
                    .saveWAV(audioDir + "/recordings/\(d)_tester_\(i).wav")
            }
        }
        let audio = testTemp("kinds-fsdd.safetensors")
        _ = try ok(["train", "--data", "fsdd", "--data-dir", audioDir, "--epochs", "1", "--out", audio])
        XCTAssert(try ok(["summary", "--model", audio]).contains("Trainable parameters"))
        try checkPrediction(try ok(["predict", "--model", audio, audioDir + "/recordings/1_tester_0.wav", "--json"]), classes: Set((0..<10).map(String.init)))
        _ = try ok(["inspect", "--model", audio, "--wav", audioDir + "/recordings/0_tester_0.wav", "--out", testTemp("kinds-fsdd-report")])

        // Graph: two communities of four papers; words 0-1 mark one, 2-3 the other.
        let graphDir = testTemp("kinds-cora")
        try FileManager.default.createDirectory(atPath: graphDir, withIntermediateDirectories: true)
        let content = (0..<8).map { i in "\(100 + i)\t" + (0..<4).map { w in (w / 2 == i / 4) ? "1" : "0" }.joined(separator: "\t") + "\t\(i < 4 ? "A" : "B")" }
        let cites = (0..<8).map { i in "\(100 + i)\t\(100 + (i / 4) * 4 + (i + 1) % 4)" }
        FileManager.default.createFile(atPath: graphDir + "/cora.content", contents: Data(content.joined(separator: "\n").utf8))
        FileManager.default.createFile(atPath: graphDir + "/cora.cites", contents: Data(cites.joined(separator: "\n").utf8))
        let gcn = testTemp("kinds-gcn.safetensors")
        let (code, _, err) = try runStrata(["train", "--data", "cora", "--data-dir", graphDir, "--epochs", "5", "--out", gcn])
        if code == 0 {
            XCTAssert(try ok(["summary", "--model", gcn]).contains("GraphConv"))
            try checkPrediction(try ok(["predict", "--model", gcn, "--data-dir", graphDir, "--node", "100", "--json"]), classes: ["A", "B"])
            let report = testTemp("kinds-gcn-report")
            _ = try ok(["inspect", "--model", gcn, "--data-dir", graphDir, "--out", report])
            XCTAssert(FileManager.default.fileExists(atPath: report + "/index.html"))
        } else {
            // The Planetoid split needs 20 labelled papers per class: too many for this graph.
            XCTAssert(err.contains("error:"), err)
        }
    }

    func testImageAndFaceModels() throws {
        if haveFashion {
            for kind in ["mlp", "cnn"] {
                let m = testTemp("kinds-fashion-\(kind).safetensors")
                _ = try ok(["train", "--model", kind, "--epochs", "1", "--limit", "300", "--out", m])
                XCTAssert(try ok(["summary", "--model", m]).contains("Trainable parameters"))
                let img = testTemp("kinds-\(kind).png")
                try Image(width: 28, height: 28, channels: 1, pixels: (0..<784).map { UInt8($0 % 256) }).savePNG(img)
                try checkPrediction(try ok(["predict", "--model", m, img, "--json"]), classes: Set(ModelZoo.fashionClassNames))
                XCTAssert(try ok(["evaluate", "--model", m]).contains("test images: accuracy"))
                _ = try ok(["inspect", "--model", m, "--probe-train", "200", "--probe-test", "100", "--out", testTemp("kinds-\(kind)-report")])
            }
        }
        // Faces: six made-up people, four photos each (a face-like blob that differs per person).
        let root = testTemp("kinds-faces")
        try writePeopleFolder(root, people: 6, photos: 4, width: 64, height: 64, channels: 3, seed: 3) { p, _, k, rng in
            let (y, x) = (k / 192, (k / 3) % 64)
            let inside = (x - 32) * (x - 32) + (y - 30) * (y - 30) < 300 + 40 * p
            return UInt8(clamping: (inside ? 180 - 20 * p : 40 + 10 * (k % 3)) + rng.nextInt(20))
        }
        let single = testTemp("kinds-face.safetensors"), ensemble = testTemp("kinds-face-ens.safetensors")
        _ = try ok(["faces", "train", "--data", root, "--epochs", "2", "--out", single])
        _ = try ok(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--crop", "0.5,0.45,0.5", "--size", "16", "--blocks", "",
                    "--widths", "4,8", "--embedding", "8", "--epochs", "1", "--out", ensemble])
        for m in [single, ensemble] {
            XCTAssert(try ok(["summary", "--model", m]).contains("Trainable parameters"), m)
            let lines = try ok(["faces", "embed", "--no-detect", "--model", m, root + "/p0/0.png", root + "/p1/0.png"]).split(separator: "\n")
            XCTAssertEqual(lines.count, 2)
            let e = (try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any])["embedding"] as! [Double]
            XCTAssertEqual(e.map { $0 * $0 }.reduce(0, +), 1, accuracy: 1e-3, "unit embedding")
        }
        XCTAssert(try ok(["summary", "--model", ensemble]).contains("members.1."))
        _ = try ok(["inspect", "--model", single, "--data", root, "--probe-train", "10", "--probe-test", "10", "--out", testTemp("kinds-face1-report")])
        _ = try ok(["inspect", "--model", ensemble, "--member", "2", "--data", root, "--probe-train", "10", "--probe-test", "10", "--out", testTemp("kinds-face-report")])
    }
}
