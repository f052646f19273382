import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// The `strata` command: bad input gets one clear line naming the file or flag, exit status 1,
/// and no crash trace. Needs the binary built next to the tests (`make test` builds it).
final class CLITests: XCTestCase {
    let fixtures = ModelFileTests.fixtures

    func run(_ args: [String]) throws -> (Int32, String, String) { try runStrata(args) }

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
        try assertFails(["predict", "--model", mlp, "--arch", "mlp", junk], mentions: [junk, "not a PNG, JPEG, WebP, HEIC/AVIF or PGM"])
        // The message is the photo's alone: the model file is not to blame.
        let (_, _, junkErr) = try run(["predict", "--model", mlp, "--arch", "mlp", junk])
        XCTAssertFalse(junkErr.contains("torch_mlp"), junkErr)
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

    /// Image training saves the last epoch and scores it on the test split, which only reports; with
    /// --val-split the held-out share chooses the epoch. The test labels here are flipped, so the
    /// test loss rises as the network learns: choosing by it would save the first epoch.
    func testImageTrainingSavesTheLastEpochUnlessValidationIsHeldOut() throws {
        let dir = testTemp("flipped-mnist")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var rng = RandomGenerator(seed: 11)
        for (split, n, flip) in [("train", 512, false), ("t10k", 128, true)] {
            var px: [UInt8] = [], labels: [UInt8] = []
            for _ in 0..<n {
                let y = rng.nextInt(2)
                labels.append(UInt8(flip ? 1 - y : y))
                for _ in 0..<28 { for c in 0..<28 { px.append(UInt8(((c < 14) == (y == 0) ? 150 : 30) + rng.nextInt(80))) } }
            }
            _ = FileManager.default.createFile(atPath: dir + "/\(split)-images-idx3-ubyte", contents: Data(idxBytes([n, 28, 28], px)))
            _ = FileManager.default.createFile(atPath: dir + "/\(split)-labels-idx1-ubyte", contents: Data(idxBytes([n], labels)))
        }
        func train(_ extra: [String]) throws -> (json: [String: Any], history: [[String: Any]], saved: SavedModel) {
            let model = testTemp("flipped-mnist-\(extra.count).safetensors")
            let (code, out, err) = try run(["train", "--data", "mnist", "--data-dir", dir, "--model", "mlp", "--epochs", "3", "--threads", "1",
                                            "--out", model, "--json"] + extra)
            XCTAssertEqual(code, 0, err)
            let json = try JSONSerialization.jsonObject(with: Data(out.split(separator: "\n").last!.utf8)) as! [String: Any]
            return (json, json["history"] as! [[String: Any]], try SavedModel.load(model))
        }
        // No --val-split: the test loss after each epoch rises, and the last epoch is saved and scored.
        var r = try train([])
        let testLosses = r.history.map { $0["valLoss"] as! Double }
        XCTAssertEqual(testLosses.count, 3)
        XCTAssertLessThan(testLosses[0], testLosses[2], "flipped test labels: the test loss should rise, \(testLosses)")
        XCTAssertEqual(r.saved.info.history.count, 3)
        XCTAssertEqual(r.saved.info.validationName, "test", "the file says its history's figures are the test split's")
        let (sc, summary, _) = try run(["summary", "--model", testTemp("flipped-mnist-0.safetensors")])
        XCTAssertEqual(sc, 0)
        XCTAssert(summary.contains(String(format: "test_accuracy %.4f", r.history[2]["valAccuracy"] as! Double)), summary)
        XCTAssertEqual(r.json["test_loss"] as! Double, testLosses[2], accuracy: 1e-4 * testLosses[2])
        XCTAssertLessThan(r.json["test_accuracy"] as! Double, 0.1, "the last epoch on flipped labels")
        // --val-split: the held-out share's best epoch is saved.
        r = try train(["--val-split", "0.25"])
        let valLosses = r.history.map { $0["valLoss"] as! Double }
        XCTAssertEqual(r.saved.info.history.count, valLosses.firstIndex(of: valLosses.min()!)! + 1)
        XCTAssertNil(r.saved.info.validationName)
        // The test split cannot stop the run either.
        try assertFails(["train", "--data", "mnist", "--data-dir", dir, "--patience", "2"], mentions: ["--patience", "--val-split"])
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
        // The same picture as PNG, lossless WebP and HEIC (as phones save photos): the first two
        // give the same probabilities; HEIC is lossy, so only a valid answer is asked of it.
        let pic = try Image.load(img), png = testTemp("same.png"), webp = testTemp("same.webp"), heic = testTemp("same.heic")
        try pic.savePNG(png)
        try pic.writeWebP(webp)
        try pic.writeHEIC(heic)
        let (c3, out3, err3) = try run(["predict", "--model", cnn, "--arch", "cnn", png, webp, heic, "--json"])
        XCTAssertEqual(c3, 0, err3)
        let preds = (try JSONSerialization.jsonObject(with: Data(out3.split(separator: "\n").last!.utf8)) as! [String: Any])["predictions"] as! [[String: Any]]
        let probabilities = preds.map { $0["probabilities"] as! [String: Double] }
        XCTAssertEqual(probabilities[0], probabilities[1])
        XCTAssertEqual(probabilities[2].values.reduce(0, +), 1, accuracy: 1e-4)
        // A folder stands for its pictures, sorted: the same three answers.
        let dir = testTemp("predict-folder")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (i, p) in [png, webp, heic].enumerated() { try FileManager.default.copyItem(atPath: p, toPath: dir + "/\(i + 1)-" + (p as NSString).lastPathComponent) }
        let (c4, out4, err4) = try run(["predict", "--model", cnn, "--arch", "cnn", dir, "--json"])
        XCTAssertEqual(c4, 0, err4)
        let inFolder = (try JSONSerialization.jsonObject(with: Data(out4.split(separator: "\n").last!.utf8)) as! [String: Any])["predictions"] as! [[String: Any]]
        XCTAssertEqual(inFolder.map { ($0["image"] as! String as NSString).lastPathComponent }, ["1-same.png", "2-same.webp", "3-same.heic"])
        XCTAssertEqual(inFolder.map { $0["probabilities"] as! [String: Double] }, probabilities)
        try FileManager.default.createDirectory(atPath: dir + "/none", withIntermediateDirectories: true)
        try assertFails(["predict", "--model", cnn, "--arch", "cnn", dir + "/none"], mentions: [dir + "/none", "no files to read"])
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
        let junk = testTemp("junk.png")
        FileManager.default.createFile(atPath: junk, contents: Data("not a picture".utf8))
        try assertFails(["inspect", "--model", cnn, "--arch", "cnn", "--image", junk, "--out", testTemp("r1")], mentions: [junk, "not a PNG"])
        try assertFails(["inspect", "--model", cnn, "--arch", "cnn", "--image", testTemp("no-such.png"), "--out", testTemp("r2")],
                        mentions: [testTemp("no-such.png")])
        // A photo for a text model (input [64] token ids) used to trap on the missing image axes.
        let photo = testTemp("inspect-text-photo.png")
        try Image(width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 9, count: 64)).savePNG(photo)
        let textModel = fixtures.appendingPathComponent("legacy/text-cnn.safetensors").path
        try assertFails(["inspect", "--model", textModel, "--image", photo, "--out", testTemp("r4")], mentions: ["--image", "texts (--text)"])
        // An audio model's input is a 1x40x100 spectrogram, image-shaped, but not a photo.
        let audioModel = fixtures.appendingPathComponent("legacy/audio-cnn.safetensors").path
        try assertFails(["inspect", "--model", audioModel, "--image", photo, "--out", testTemp("r5")], mentions: ["--image", "WAV recordings (--wav)"])
        guard haveFashion else { return }
        try assertFails(["inspect", "--model", cnn, "--arch", "cnn", "--layer", "12", "--out", testTemp("r3")], mentions: ["layer '12' does not exist"])
        try assertFails(["inspect", "--model", cnn, "--arch", "cnn", "--out", "/proc/no-such-report"], mentions: ["/proc/no-such-report"])
    }

    /// `inspect --image` prepares photos as `predict` does: a colour photo of another size is made
    /// grey and resized to the model's 28x28 (its input is drawn 4x, 112x112), and a folder gives
    /// each of its photos; the feature maps are those of the prepared image.
    func testInspectTakesPhotosOfAnySizeAndFolders() throws {
        guard haveFashion else { throw XCTSkip("Fashion-MNIST is not installed (apt install dataset-fashion-mnist)") }
        let cnn = fixtures.appendingPathComponent("torch_cnn.safetensors").path
        let folder = testTemp("inspect-photos")
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // A 90x60 colour photo: a bright square on the left half of a dark background.
        var px = [UInt8](repeating: 20, count: 90 * 60 * 3)
        for y in 15..<45 { for x in 10..<40 { for c in 0..<3 { px[(y * 90 + x) * 3 + c] = 230 } } }
        let photo = Image(width: 90, height: 60, channels: 3, pixels: px)
        try photo.savePNG(folder + "/square.png")
        try Image(width: 28, height: 28, channels: 1, pixels: [UInt8](repeating: 128, count: 784)).savePNG(folder + "/grey.png")
        let out = testTemp("inspect-photos-report")
        try? FileManager.default.removeItem(atPath: out)
        let (code, stdout, stderr) = try run(["inspect", "--model", cnn, "--arch", "cnn", "--image", folder, "--layer", "0", "--out", out])
        XCTAssertEqual(code, 0, stderr)
        XCTAssert(stdout.contains("wrote"), stdout)
        let html = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        XCTAssert(html.contains("grey.png") && html.contains("square.png"), "both photos of the folder are in the report")
        // Files sort by name: grey.png is input 0, square.png input 1.
        let drawn = try Image.load(out + "/input_1.png")
        XCTAssertEqual([drawn.width, drawn.height], [112, 112])
        let want = photo.grayscale().resized(width: 28, height: 28)
        for y in 0..<28 { for x in 0..<28 {
            XCTAssertEqual(drawn.pixels[((y * 4) * 112 + x * 4) * 3], want.pixels[y * 28 + x], "pixel \(x),\(y)")
        } }
        XCTAssertEqual(want.pixels[14 * 28 + 6], 230, "the square is on the left")
        XCTAssertEqual(want.pixels[14 * 28 + 22], 20, "the right half is dark")
        XCTAssert(FileManager.default.fileExists(atPath: out + "/fmap_1_0.png"), "feature maps of the photo")
    }
}

extension CLITests {
    /// Faces: a corrupt image, an empty person folder, an image far too small, and a gallery of
    /// another model each get one line naming the file; nothing is written on failure.
    func testFacesBadInput() throws {
        let root = testTemp("cli-faces")
        try writePeopleFolder(root, people: 3, photos: 4, width: 24, height: 28, channels: 1, seed: 1) { _, _, _, rng in UInt8(rng.nextInt(256)) }
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
        // Folders stand for their photos: enrol a person from one, identify every photo of another.
        let (enrolled, enrollOut, enrollErr) = try run(["faces", "enroll", "--model", model, "--gallery", gallery, "--name", "P2", root + "/p2"])
        XCTAssertEqual(enrolled, 0, enrollErr)
        XCTAssert(enrollOut.contains("enrolled P2 (4 photos)"), enrollOut)
        let (identified, idOut, idErr) = try run(["faces", "identify", "--model", model, "--gallery", gallery, root + "/p2", "--json"])
        XCTAssertEqual(identified, 0, idErr)
        let results = (try JSONSerialization.jsonObject(with: Data(idOut.split(separator: "\n").last!.utf8)) as! [String: Any])["results"] as! [[String: Any]]
        XCTAssertEqual(results.map { ($0["image"] as! String as NSString).lastPathComponent }, ["0.png", "1.png", "2.png", "3.png"])
    }
}

extension CLITests {
    /// Text, audio and graphs through the CLI on tiny made-up data: a malformed TSV line, an
    /// empty text, a non-PCM or cut WAV file and an edge naming an unknown node each get one line
    /// naming the file and line or offset (or the flag); good input predicts and inspects.
    func testTextAudioGraphCommands() throws {
        // Text: 40 messages, spam ones say "prize".
        let textDir = testTemp("cli-sms")
        try FileManager.default.createDirectory(atPath: textDir, withIntermediateDirectories: true)
        let lines = (0..<40).map { $0 % 4 == 0 ? "spam\twin a prize now \($0)" : "ham\tsee you at lunch \($0)" }
        FileManager.default.createFile(atPath: textDir + "/SMSSpamCollection", contents: Data(lines.joined(separator: "\n").utf8))
        let textModel = testTemp("cli-sms.safetensors")
        var (code, _, err) = try run(["train", "--data", "sms-spam", "--data-dir", textDir, "--model", "gru", "--epochs", "2", "--out", textModel])
        XCTAssertEqual(code, 0, err)
        var out: String
        (code, out, err) = try run(["predict", "--model", textModel, "--text", "win a prize now", "--json"])
        XCTAssertEqual(code, 0, err)
        let probs = ((try JSONSerialization.jsonObject(with: Data(out.split(separator: "\n").last!.utf8)) as! [String: Any])["predictions"] as! [[String: Any]])[0]["probabilities"] as! [String: Double]
        XCTAssertEqual(Set(probs.keys), ["ham", "spam"])
        XCTAssertEqual(probs.values.reduce(0, +), 1, accuracy: 1e-4)
        try assertFails(["predict", "--model", textModel, "--text", "hello", "--text", "  "], mentions: ["--text 2", "empty text"])
        try assertFails(["inspect", "--model", textModel, "--text", "", "--out", testTemp("r-empty")], mentions: ["--text", "empty text"])
        FileManager.default.createFile(atPath: textDir + "/SMSSpamCollection", contents: Data("ham\tok\nspam\tprize\nno tab on this line\n".utf8))
        try assertFails(["train", "--data", "sms-spam", "--data-dir", textDir, "--out", testTemp("never.safetensors")],
                        mentions: [textDir + "/SMSSpamCollection:3", "malformed"])

        // Transformer attention maps: one SVG per head and layer.
        let tr = testTemp("cli-sms-tr.safetensors")
        FileManager.default.createFile(atPath: textDir + "/SMSSpamCollection", contents: Data(lines.joined(separator: "\n").utf8))
        (code, _, err) = try run(["train", "--data", "sms-spam", "--data-dir", textDir, "--model", "transformer", "--epochs", "1", "--out", tr])
        XCTAssertEqual(code, 0, err)
        let report = testTemp("cli-text-report")
        (code, out, err) = try run(["inspect", "--model", tr, "--text", "win a prize now", "--out", report])
        XCTAssertEqual(code, 0, err)
        let svgs = try FileManager.default.contentsOfDirectory(atPath: report).filter { $0.hasSuffix(".svg") }
        XCTAssertFalse(svgs.isEmpty, "attention maps written: \(out)")
        XCTAssert(FileManager.default.fileExists(atPath: report + "/index.html"))

        // Audio: two "digits" as tones of different pitch, 7 recordings each (index 0-4 test).
        let audioDir = testTemp("cli-fsdd")
        try FileManager.default.createDirectory(atPath: audioDir + "/recordings", withIntermediateDirectories: true)
        for d in 0..<2 {
            for i in 0..<7 {
                let f = d == 0 ? 300.0 : 1200.0
                try Audio(samples: (0..<2000).map { Float(0.4 * sin(2 * Double.pi * f * Double($0) / 8000)) }, sampleRate: 8000)
                    .saveWAV(audioDir + "/recordings/\(d)_tester_\(i).wav")
            }
        }
        let audioModel = testTemp("cli-fsdd.safetensors")
        (code, _, err) = try run(["train", "--data", "fsdd", "--data-dir", audioDir, "--epochs", "1", "--out", audioModel])
        XCTAssertEqual(code, 0, err)
        let good = audioDir + "/recordings/1_tester_0.wav"
        (code, out, err) = try run(["predict", "--model", audioModel, good])
        XCTAssertEqual(code, 0, err)
        XCTAssert(out.contains(good), out)
        let wav = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        let cut = testTemp("cut.wav"), float = testTemp("float.wav")
        FileManager.default.createFile(atPath: cut, contents: Data(wav.prefix(300)))
        var f = wav
        f[20] = 3
        FileManager.default.createFile(atPath: float, contents: Data(f))
        try assertFails(["predict", "--model", audioModel, cut], mentions: [cut, "offset"])
        try assertFails(["predict", "--model", audioModel, float], mentions: [float, "not PCM"])
        try assertFails(["inspect", "--model", audioModel, "--wav", cut, "--out", testTemp("r-cut")], mentions: [cut, "offset"])
        let audioReport = testTemp("cli-audio-report")
        (code, out, err) = try run(["inspect", "--model", audioModel, "--wav", good, "--out", audioReport])
        XCTAssertEqual(code, 0, err)
        XCTAssert(try FileManager.default.contentsOfDirectory(atPath: audioReport).contains { $0.hasSuffix(".png") }, "spectrogram images written")

        // Graph: an edge to a node that is not in cora.content.
        let graphDir = testTemp("cli-cora")
        try FileManager.default.createDirectory(atPath: graphDir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: graphDir + "/cora.content", contents: Data("1\t1\t0\tA\n2\t0\t1\tB\n".utf8))
        FileManager.default.createFile(atPath: graphDir + "/cora.cites", contents: Data("1\t2\n2\t99\n".utf8))
        try assertFails(["train", "--data", "cora", "--data-dir", graphDir], mentions: ["cora.cites:2", "unknown node 99"])
    }
}

extension CLITests {
    /// Faces in the wild through the CLI on a tiny LFW-style folder: training with a face crop,
    /// the pairs command, evaluation on pairs, and bad input (a malformed pairs line, a pairs file
    /// naming missing photos, a truncated JPEG); CMYK and grey JPEGs are converted to RGB.
    func testWildFacesPairsAndBadInput() throws {
        let root = testTemp("cli-lfw")
        try? FileManager.default.removeItem(atPath: root)
        var rng = RandomGenerator(seed: 3)
        let names = ["Ada_Lovelace", "Alan_Turing", "Grace_Hopper", "Kurt_Goedel"]
        for (p, name) in names.enumerated() {
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
            for i in 1...5 {
                // Each person has a colour of their own, plus noise.
                let px: [UInt8] = (0..<(40 * 40 * 3)).map { k in UInt8(clamping: 60 * ((p + k) % 3) + 40 + rng.nextInt(40)) }
                try Image(width: 40, height: 40, channels: 3, pixels: px).saveJPEG(root + "/\(name)/\(name)_\(String(format: "%04d", i)).jpg")
            }
        }
        // A grey and a CMYK photo where RGB is expected: both are converted.
        try Image(width: 40, height: 40, channels: 1, pixels: [UInt8](repeating: 90, count: 1600)).saveJPEG(root + "/Ada_Lovelace/Ada_Lovelace_0005.jpg")
        try Image.writeCMYKJPEG(root + "/Alan_Turing/Alan_Turing_0005.jpg", width: 40, height: 40, cmyk: [UInt8](repeating: 200, count: 6400))
        let model = testTemp("cli-wild.safetensors"), pairs = testTemp("cli-pairs.txt")
        var (code, out, err) = try run(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--size", "16", "--blocks", "1",
                                        "--widths", "8", "--embedding", "8", "--epochs", "2", "--batch-size", "4",
                                        "--holdout-fraction", "0.5", "--loss", "cosface", "--json", "--out", model])
        XCTAssertEqual(code, 0, err)
        XCTAssert(out.contains("\"holdout_people\":2"), out)
        (code, out, err) = try run(["faces", "pairs", "--data", root, "--holdout-fraction", "0.5", "--same", "10", "--different", "10", "--out", pairs])
        XCTAssertEqual(code, 0, err)
        let text = try String(contentsOfFile: pairs, encoding: .utf8)
        XCTAssertEqual(text.split(separator: "\n").count, 21, text)
        XCTAssertEqual(text.split(separator: "\n").first, "10")
        (code, out, err) = try run(["faces", "evaluate", "--pairs", pairs, "--root", root, "--model", model, "--json"])
        XCTAssertEqual(code, 0, err)
        XCTAssert(out.contains("\"pairs\":20") && out.contains("\"auc\""), out)
        // The crop travels with the model: verify works on photos of any size, CMYK and grey included.
        (code, out, err) = try run(["faces", "verify", "--no-detect", "--model", model, root + "/Alan_Turing/Alan_Turing_0005.jpg", root + "/Ada_Lovelace/Ada_Lovelace_0005.jpg"])
        XCTAssertEqual(code, 0, err)
        // Two networks (colour face box, grey wider box) stored as one model.
        let ens = testTemp("cli-wild-ensemble.safetensors")
        (code, out, err) = try run(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--crop", "0.5,0.5,1", "--channels", "3", "--channels", "1",
                                    "--size", "16", "--blocks", "1", "--widths", "8", "--embedding", "8", "--epochs", "1", "--batch-size", "4",
                                    "--holdout-fraction", "0.5", "--json", "--out", ens])
        XCTAssertEqual(code, 0, err)
        XCTAssert(out.contains("\"members\":2"), out)
        XCTAssertEqual(try FaceModel.load(ens).members.map { $0.info.inputShape[0] }, [3, 1])
        // As `make faces-model` trains: everyone in training, the threshold given.
        let given = testTemp("cli-wild-given.safetensors")
        (code, out, err) = try run(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--crop", "0.5,0.5,1", "--size", "16", "--blocks", "1",
                                    "--widths", "8", "--embedding", "8", "--epochs", "1", "--batch-size", "4", "--threshold", "0.7", "--json", "--out", given])
        XCTAssertEqual(code, 0, err)
        XCTAssert(out.contains("\"people\":4") && out.contains("\"images\":20") && !out.contains("holdout"), out)
        let givenModel = try FaceModel.load(given)
        XCTAssertEqual(givenModel.threshold, 0.7)
        XCTAssertEqual(givenModel.members.count, 2)
        (code, out, err) = try run(["faces", "evaluate", "--pairs", pairs, "--root", root, "--model", ens, "--json"])
        XCTAssertEqual(code, 0, err)
        // inspect shows one network of the ensemble, on photos cut by that network's box.
        let report = testTemp("cli-wild-inspect")
        (code, out, err) = try run(["inspect", "--model", ens, "--data", root, "--member", "2", "--out", report, "--json"])
        XCTAssertEqual(code, 0, err)
        XCTAssert(FileManager.default.fileExists(atPath: report + "/index.html"))
        XCTAssert(out.contains("\"probes\""), out)
        let shown = try Image.load(report + "/input_0.png")
        XCTAssertEqual(shown.width, 16 * 4, "the grey network's 16x16 input, drawn 4x")
        try assertFails(["inspect", "--model", ens, "--data", root, "--member", "3", "--out", report], mentions: ["--member"])
        // Epochs per network, and test-time views and S-norm stored in the model for enrol/verify.
        let scored = testTemp("cli-wild-snorm.safetensors")
        (code, out, err) = try run(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--crop", "0.5,0.5,1", "--size", "16",
                                    "--blocks", "1", "--widths", "8", "--embedding", "8", "--epochs", "1", "--epochs", "2", "--batch-size", "4",
                                    "--views", "5", "--score", "snorm", "--holdout-fraction", "0.5", "--out", scored])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(out.components(separatedBy: "epoch 2/2").count, 2, "the second network trains 2 epochs: \(out)")
        let scoredModel = try FaceModel.load(scored)
        XCTAssertEqual(scoredModel.score, .snorm)
        XCTAssertEqual(scoredModel.views, 5)
        (code, out, err) = try run(["faces", "evaluate", "--pairs", pairs, "--root", root, "--model", scored, "--json"])
        XCTAssertEqual(code, 0, err)
        (code, out, err) = try run(["faces", "evaluate", "--pairs", pairs, "--root", root, "--model", scored, "--score", "cosine", "--json"])
        XCTAssertEqual(code, 0, err)
        (code, out, err) = try run(["faces", "verify", "--no-detect", "--model", scored, "--json", root + "/Alan_Turing/Alan_Turing_0001.jpg", root + "/Alan_Turing/Alan_Turing_0002.jpg"])
        XCTAssertEqual(code, 0, err)
        let verdict = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let a = try scoredModel.embed([try Image.load(root + "/Alan_Turing/Alan_Turing_0001.jpg"), try Image.load(root + "/Alan_Turing/Alan_Turing_0002.jpg")])
        let want = scoredModel.scorer.distances(a, a)[0][1]
        XCTAssertEqual(verdict["distance"] as! Double, Double(want), accuracy: 1e-4, "verify uses the stored S-norm and views")
        try assertFails(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--score", "zscore"], mentions: ["--score"])
        try assertFails(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--crop", "0.5,0.5,1", "--epochs", "1", "--epochs", "2", "--epochs", "3"], mentions: ["--epochs"])
        try assertFails(["faces", "train", "--data", root, "--views", "5"], mentions: ["--views"])
        // Test-time views, and per-network sizes with a second folder of people trained alongside
        // (reframed: the whole 40x40 photo is the middle half of the training frame).
        (code, out, err) = try run(["faces", "evaluate", "--pairs", pairs, "--root", root, "--model", ens, "--views", "5", "--json"])
        XCTAssertEqual(code, 0, err)
        let sized = testTemp("cli-wild-sized.safetensors")
        (code, out, err) = try run(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--crop", "0.5,0.45,0.5", "--size", "16", "--size", "24",
                                    "--blocks", "1", "--widths", "8", "--embedding", "8", "--epochs", "1", "--batch-size", "4",
                                    "--extra-data", root, "--extra-people", "1", "--extra-frame", "0.5,0.5,2", "--json", "--out", sized])
        XCTAssertEqual(code, 0, err)
        XCTAssert(out.contains("\"people\":5"), out)   // 4 + 1 extra
        let sizedModel = try FaceModel.load(sized)
        XCTAssertEqual(sizedModel.members.map { $0.info.inputShape[1] }, [16, 24])
        XCTAssertEqual(sizedModel.info.classNames.count, 5)
        // Fine-tuning: the first model's network and face box, a new head over 3 of the people.
        let tuned = testTemp("cli-wild-tuned.safetensors")
        (code, out, err) = try run(["faces", "train", "--data", root, "--init", model, "--frame", "0.5,0.5,1.2", "--holdout-people", "1",
                                    "--epochs", "1", "--batch-size", "4", "--loss", "cosface", "--json", "--out", tuned])
        XCTAssertEqual(code, 0, err)
        let tunedModel = try FaceModel.load(tuned), startModel = try FaceModel.load(model)
        XCTAssertEqual(tunedModel.crop, startModel.crop)
        XCTAssertEqual(tunedModel.info.classNames.count, 3)
        XCTAssertEqual((tunedModel.net as? FaceNet)?.widths, (startModel.net as? FaceNet)?.widths)
        XCTAssertNotEqual(tunedModel.fingerprint, startModel.fingerprint)
        try assertFails(["faces", "train", "--data", root, "--init", model, "--crop", "0.5,0.5,0.8"], mentions: ["--init"])
        try assertFails(["faces", "train", "--data", root, "--init", root + "/none.safetensors"], mentions: ["none.safetensors"])
        // Embeddings as JSON lines, one per photo, unit length.
        (code, out, err) = try run(["faces", "embed", "--no-detect", "--model", sized, root + "/Ada_Lovelace/Ada_Lovelace_0001.jpg", root + "/Alan_Turing/Alan_Turing_0001.jpg"])
        XCTAssertEqual(code, 0, err)
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let row = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let vec = row["embedding"] as! [Double]
        XCTAssertEqual(vec.count, 16)
        XCTAssertEqual(vec.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-4)
        try assertFails(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--crop", "0.5,0.5,1", "--size", "16", "--size", "16", "--size", "16"],
                        mentions: ["--size"])
        try assertFails(["faces", "train", "--data", root, "--crop", "0.5,0.5,0.8", "--extra-frame", "0.5,0.5,2"], mentions: ["--extra-data"])
        try assertFails(["faces", "evaluate", "--pairs", pairs, "--root", root, "--views", "40"], mentions: ["--views"])
        // Open set with a model trained elsewhere: enrol 2 photos' worth of people from this folder.
        (code, out, err) = try run(["faces", "evaluate", "--data", root, "--protocol", "open", "--train-people", "2", "--model", model,
                                    "--frame", "0.5,0.5,1.2", "--seeds", "2", "--json"])
        XCTAssertEqual(code, 0, err)
        XCTAssert(out.contains("cli-wild.safetensors"), out)
        try assertFails(["faces", "evaluate", "--data", root, "--frame", "0.5,0.5,9", "--model", model, "--protocol", "open"], mentions: ["--frame"])

        // Without --model, the built-in LFW model is used.
        (code, out, err) = try run(["faces", "verify", "--no-detect", "--json", root + "/Grace_Hopper/Grace_Hopper_0001.jpg", root + "/Grace_Hopper/Grace_Hopper_0002.jpg"])
        XCTAssertEqual(code, 0, err)
        XCTAssert(out.contains("\"distance\""), out)

        let bad = testTemp("cli-pairs-bad.txt")
        try "2\nAda_Lovelace\t1\t2\nAda_Lovelace\t1\nAda_Lovelace\t1\tAlan_Turing\t2\nGrace_Hopper\t1\tKurt_Goedel\t3\n".write(toFile: bad, atomically: true, encoding: .utf8)
        try assertFails(["faces", "evaluate", "--pairs", bad, "--root", root, "--model", model], mentions: [bad + ":3", "malformed"])
        let missing = testTemp("cli-pairs-missing.txt")
        try "1\nAda_Lovelace\t1\t9\nAda_Lovelace\t1\tAlan_Turing\t2\n".write(toFile: missing, atomically: true, encoding: .utf8)
        try assertFails(["faces", "evaluate", "--pairs", missing, "--root", root, "--model", model],
                        mentions: [missing + ":2", "Ada_Lovelace_0009.jpg", "no such image"])
        let whole = try Data(contentsOf: URL(fileURLWithPath: root + "/Grace_Hopper/Grace_Hopper_0001.jpg"))
        let cut = testTemp("cut-face.jpg")
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: cut))
        try assertFails(["faces", "verify", "--model", model, cut, root + "/Grace_Hopper/Grace_Hopper_0002.jpg"], mentions: [cut])
    }
}
