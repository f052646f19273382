import Foundation
import XCTest
@testable import Strata

/// The `strata` command: bad input gets one clear line naming the file or flag, exit status 1,
/// and no crash trace. Needs the binary built next to the tests (`make test` builds it).
final class CLITests: XCTestCase {
    var binary: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("strata").path
    }
    let fixtures = ModelFileTests.fixtures

    func run(_ args: [String]) throws -> (Int32, String, String) {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw XCTSkip("\(binary) is not built; run `swift build -c release` (make test does)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func assertFails(_ args: [String], mentions words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let (code, _, err) = try run(args)
        XCTAssertEqual(code, 1, "exit status for \(args): \(err)", file: file, line: line)
        for w in words { XCTAssert(err.contains(w), "stderr lacks '\(w)': \(err)", file: file, line: line) }
        XCTAssertFalse(err.contains("Fatal error") || err.contains("Backtrac") || err.contains("Crash"), "crash trace: \(err)", file: file, line: line)
    }

    func testBadInputGetsAClearErrorAndExitStatusOne() throws {
        let mlp = fixtures.appendingPathComponent("torch_mlp.safetensors").path
        let img = testTemp("cli.png")
        try Image(width: 28, height: 28, channels: 1, pixels: [UInt8](repeating: 90, count: 784)).savePNG(img)
        try assertFails(["predict", "--model", "/nonexistent/m.safetensors", img], mentions: ["/nonexistent/m.safetensors", "no such file"])
        let junk = testTemp("junk.jpg")
        FileManager.default.createFile(atPath: junk, contents: Data("not an image".utf8))
        try assertFails(["predict", "--model", mlp, "--arch", "mlp", junk], mentions: [junk, "not a PNG, JPEG or PGM"])
        try assertFails(["predict", "--model", mlp, img], mentions: ["--arch"])
        try assertFails(["predict", "--model", mlp, "--arch", "resnet", img], mentions: ["--arch resnet"])
        let corrupt = testTemp("corrupt.safetensors")
        FileManager.default.createFile(atPath: corrupt, contents: Data([9, 0, 0, 0, 0, 0, 0, 0]) + Data("{\"a\":".utf8))
        try assertFails(["summary", "--model", corrupt], mentions: [corrupt])
        try assertFails(["evaluate", "--model", mlp, "--arch", "mlp", "--data-dir", "/nonexistent/fm"], mentions: ["/nonexistent/fm"])
        try assertFails(["train", "--epochs", "0"], mentions: ["--epochs"])
        try assertFails(["train", "--model", "transformer"], mentions: ["--model transformer"])
        try assertFails(["train", "--lr", "-1"], mentions: ["--lr"])
        try assertFails(["bench", "gemm", "--threads", "0"], mentions: ["--threads"])
    }

    func testPredictPrintsEveryClassProbability() throws {
        let cnn = fixtures.appendingPathComponent("torch_cnn.safetensors").path
        let img = testTemp("big.jpg")
        try Image(width: 56, height: 40, channels: 3, pixels: (0..<(56 * 40 * 3)).map { UInt8($0 % 251) }).saveJPEG(img)
        let (code, out, err) = try run(["predict", "--model", cnn, "--arch", "cnn", img, "--json"])
        XCTAssertEqual(code, 0, err)
        let json = try JSONSerialization.jsonObject(with: Data(out.split(separator: "\n").last!.utf8)) as! [String: Any]
        let pred = (json["predictions"] as! [[String: Any]])[0]
        let probs = pred["probabilities"] as! [String: Double]
        XCTAssertEqual(Set(probs.keys), Set(ModelZoo.fashionClassNames))
        XCTAssertEqual(probs.values.reduce(0, +), 1, accuracy: 1e-4)
        XCTAssertEqual(pred["predicted"] as? String, probs.max { $0.value < $1.value }!.key)
        let (c2, text, _) = try run(["predict", "--model", cnn, "--arch", "cnn", img, "--top", "3"])
        XCTAssertEqual(c2, 0)
        XCTAssertEqual(text.split(separator: "\n").count, 4)
    }

    func testSummaryOfAWeightsOnlyFile() throws {
        let (code, out, _) = try run(["summary", "--model", fixtures.appendingPathComponent("torch_cnn.safetensors").path, "--arch", "cnn"])
        XCTAssertEqual(code, 0)
        XCTAssert(out.contains("Trainable parameters: 421642"), out)
        XCTAssert(out.contains("[1, 64, 14, 14]"), out)
    }
}

extension CLITests {
    func testInspectBadInput() throws {
        let cnn = fixtures.appendingPathComponent("torch_cnn.safetensors").path
        let big = testTemp("big.png")
        try Image(width: 30, height: 28, channels: 1, pixels: [UInt8](repeating: 1, count: 840)).savePNG(big)
        try assertFails(["inspect", "--model", cnn, "--arch", "cnn", "--image", big, "--out", testTemp("r1")], mentions: [big, "30x28", "28x28"])
        let rgb = testTemp("rgb.png")
        try Image(width: 28, height: 28, channels: 3, pixels: [UInt8](repeating: 1, count: 28 * 28 * 3)).savePNG(rgb)
        try assertFails(["inspect", "--model", cnn, "--arch", "cnn", "--image", rgb, "--out", testTemp("r2")], mentions: [rgb, "3 channel"])
        guard haveFashion else { return }
        try assertFails(["inspect", "--model", cnn, "--arch", "cnn", "--layer", "12", "--out", testTemp("r3")], mentions: ["layer '12' does not exist"])
        try assertFails(["inspect", "--model", cnn, "--arch", "cnn", "--out", "/proc/no-such-report"], mentions: ["/proc/no-such-report"])
    }
}

extension CLITests {
    /// Faces: a corrupt image, an empty person folder, an image far too small, and a gallery of
    /// another model each get one line naming the file; nothing is written on failure.
    func testFacesBadInput() throws {
        let root = testTemp("cli-faces")
        try? FileManager.default.removeItem(atPath: root)
        var rng = RandomGenerator(seed: 1)
        for p in 0..<3 {
            try FileManager.default.createDirectory(atPath: root + "/p\(p)", withIntermediateDirectories: true)
            for i in 0..<4 {
                try Image(width: 24, height: 28, channels: 1, pixels: (0..<(24 * 28)).map { _ in UInt8(rng.nextInt(256)) }).savePNG(root + "/p\(p)/\(i).png")
            }
        }
        let model = testTemp("cli-face.safetensors"), other = testTemp("cli-face2.safetensors"), gallery = testTemp("cli-gallery.json")
        try? FileManager.default.removeItem(atPath: gallery)
        var (code, _, err) = try run(["faces", "train", "--data", root, "--epochs", "2", "--out", model])
        XCTAssertEqual(code, 0, err)
        (code, _, err) = try run(["faces", "train", "--data", root, "--epochs", "2", "--seed", "5", "--out", other])
        XCTAssertEqual(code, 0, err)
        (code, _, err) = try run(["faces", "enroll", "--model", model, "--gallery", gallery, "--name", "P0", root + "/p0/0.png", root + "/p0/1.png"])
        XCTAssertEqual(code, 0, err)
        let before = try Data(contentsOf: URL(fileURLWithPath: gallery))
        let corrupt = testTemp("corrupt-face.png")
        FileManager.default.createFile(atPath: corrupt, contents: Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]))
        try assertFails(["faces", "enroll", "--model", model, "--gallery", gallery, "--name", "P1", root + "/p1/0.png", corrupt], mentions: [corrupt])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: gallery)), before, "a failed enrolment leaves the gallery as it was")
        let tiny = testTemp("tiny-face.png")
        try Image(width: 6, height: 6, channels: 1, pixels: [UInt8](repeating: 50, count: 36)).savePNG(tiny)
        try assertFails(["faces", "verify", "--model", model, tiny, root + "/p0/0.png"], mentions: [tiny, "far too small"])
        try assertFails(["faces", "identify", "--model", other, "--gallery", gallery, root + "/p0/2.png"], mentions: [gallery, "another model"])
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        try assertFails(["faces", "train", "--data", root, "--out", testTemp("never.safetensors")], mentions: [root + "/empty", "empty person folder"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: testTemp("never.safetensors")))
        let (ok, out, _) = try run(["faces", "identify", "--model", model, "--gallery", gallery, root + "/p0/3.png", "--json"])
        XCTAssertEqual(ok, 0)
        XCTAssert(out.contains("\"nearest\":\"P0\""), out)
    }
}
