import Foundation
import XCTest
import Strata
import StrataFaces

/// Bad input found by trying Strata as a careless or hostile user would (issue 15): each case
/// gets one clear line naming the file, exit 1, or the right answer.
final class ReliabilityTests: XCTestCase {
    /// A folder where a photo is expected used to trap inside Foundation's FileHandle. Commands
    /// that take several photos now read a folder's photos instead; this one has none.
    func testAFolderGivenAsAPhotoIsRefused() throws {
        let dir = testTemp("folder-photo.jpg")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        XCTAssertThrowsError(try Image.load(dir)) { XCTAssertTrue("\($0)".contains("is a folder"), "\($0)") }
        // An image model for predict and inspect, a gallery for identify.
        let net = Sequential(Flatten(), Linear(12, 3))
        let model = testTemp("folder-photo-model.safetensors"), gallery = testTemp("folder-photo-gallery.json")
        try SavedModel(model: net, info: ModelInfo(model: net, classNames: ["a", "b", "c"], inputShape: [1, 4, 3])).save(to: model)
        let photo = testTemp("folder-photo-face.png")
        var rng = RandomGenerator(seed: 4)
        try Image(width: 64, height: 64, channels: 3, pixels: (0..<(64 * 64 * 3)).map { _ in UInt8(rng.nextInt(256)) }).savePNG(photo)
        let (enrolled, _, enrolError) = try runStrata(["faces", "enroll", "--no-detect", "--gallery", gallery, "--name", "B", photo])
        XCTAssertEqual(enrolled, 0, enrolError)
        for args in [["faces", "verify", "--no-detect", dir, dir]] {
            let (status, _, err) = try runStrata(args)
            XCTAssertEqual(status, 1, "\(args): \(err)")
            XCTAssertTrue(err.contains("\(dir): is a folder"), "\(args): \(err)")
        }
        for args in [["faces", "detect", dir], ["faces", "embed", dir], ["predict", "--model", model, dir],
                     ["inspect", "--model", model, "--image", dir, "--out", testTemp("folder-report")],
                     ["faces", "enroll", "--gallery", gallery, "--name", "A", dir], ["faces", "identify", "--gallery", gallery, dir]] {
            let (status, _, err) = try runStrata(args)
            XCTAssertEqual(status, 1, "\(args): \(err)")
            XCTAssertTrue(err.contains("\(dir): a folder with no files to read"), "\(args): \(err)")
        }
    }

    /// A gallery whose embeddings are shorter than the model's used to trap `identify` and take new people.
    func testAGalleryWithShortEmbeddingsIsRefused() throws {
        let dir = testTemp("short-gallery")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let photo = "\(dir)/a.png", gallery = "\(dir)/g.json"
        var rng = RandomGenerator(seed: 2)
        try Image(width: 64, height: 64, channels: 3, pixels: (0..<(64 * 64 * 3)).map { _ in UInt8(rng.nextInt(256)) }).savePNG(photo)
        var (status, _, err) = try runStrata(["faces", "enroll", "--no-detect", "--gallery", gallery, "--name", "A", photo])
        XCTAssertEqual(status, 0, err)
        // Cut the stored embedding to 5 values.
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: gallery))) as! [String: Any]
        var people = json["people"] as! [[String: Any]]
        people[0]["embeddings"] = [Array((people[0]["embeddings"] as! [[Double]])[0].prefix(5))]
        json["people"] = people
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: gallery))
        let before = try Data(contentsOf: URL(fileURLWithPath: gallery))
        for args in [["faces", "identify", "--no-detect", "--gallery", gallery, photo], ["faces", "enroll", "--no-detect", "--gallery", gallery, "--name", "B", photo]] {
            (status, _, err) = try runStrata(args)
            XCTAssertEqual(status, 1, "\(args): \(err)")
            XCTAssertTrue(err.contains("\(gallery): A has an embedding of 5 values"), "\(args): \(err)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: gallery)), before)
    }

    /// Concurrent enrolments into one gallery used to lose people (each read, added and renamed
    /// over the others' writes); now they take turns under a lock beside the gallery.
    func testConcurrentEnrolmentsKeepEveryone() throws {
        let dir = testTemp("concurrent-enrol")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let photo = "\(dir)/a.png"
        var rng = RandomGenerator(seed: 3)
        try Image(width: 64, height: 64, channels: 3, pixels: (0..<(64 * 64 * 3)).map { _ in UInt8(rng.nextInt(256)) }).savePNG(photo)
        guard FileManager.default.isExecutableFile(atPath: strataBinary) else { throw XCTSkip("\(strataBinary) is not built") }
        let exe = URL(fileURLWithPath: strataBinary)
        // The issue's bar: 20 concurrent enrolments, 10 rounds, nobody lost.
        for round in 0..<10 {
            let gallery = "\(dir)/g\(round).json", n = 20
            let processes = try (0..<n).map { i -> Process in
                let p = Process()
                p.executableURL = exe
                p.arguments = ["faces", "enroll", "--no-detect", "--gallery", gallery, "--name", "P\(i)", photo]
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                try p.run()
                return p
            }
            for p in processes { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: gallery))) as! [String: Any]
            let names = Set((json["people"] as! [[String: Any]]).map { $0["name"] as! String })
            XCTAssertEqual(names, Set((0..<n).map { "P\($0)" }), "round \(round)")
        }
    }

    /// Safetensors headers and data are checked before anything is sized by them.
    func testSafetensorsShapesOffsetsAndValuesAreChecked() throws {
        func file(_ header: String, data: [UInt8]) -> Data {
            var h = [UInt8](header.utf8)
            while h.count % 8 != 0 { h.append(0x20) }
            var out = Data((0..<8).map { UInt8((h.count >> (8 * $0)) & 0xFF) })
            out.append(contentsOf: h)
            out.append(contentsOf: data)
            return out
        }
        // [2^62, 2^62] F32 used to overflow the element count (a trap); [2^31, 2^31] too.
        for shape in ["[4611686018427387904, 4611686018427387904]", "[2147483648, 2147483648]"] {
            let bad = file(#"{"w":{"dtype":"F32","shape":"# + shape + #","data_offsets":[0,0]}}"#, data: [])
            XCTAssertThrowsError(try Safetensors.decode(bad, name: "big.safetensors")) { XCTAssertTrue("\($0)".contains("too large to exist"), "\($0)") }
        }
        let good = try Safetensors.encode(["w": Tensor([1, 2, 3, 4], shape: [2, 2])])
        XCTAssertEqual(try Safetensors.decode(good, name: "good").tensors["w"]?.scalars, [1, 2, 3, 4])
        XCTAssertThrowsError(try Safetensors.decode(good + Data([0]), name: "trailing.safetensors")) {
            XCTAssertTrue("\($0)".contains("trailing.safetensors: 1 trailing bytes"), "\($0)")
        }
        let nan = try Safetensors.encode(["w": Tensor([1, .nan, 3, 4], shape: [2, 2])])
        XCTAssertThrowsError(try Safetensors.decode(nan, name: "nan.safetensors")) { XCTAssertTrue("\($0)".contains("NaN"), "\($0)") }
    }

    /// An IDX header whose dimensions multiply past Int.max used to trap.
    func testIDXDimensionsThatOverflowAreRefused() {
        let raw: [UInt8] = [0, 0, 0x08, 3] + [UInt8](repeating: 0xFF, count: 12) + [1, 2, 3]
        XCTAssertThrowsError(try IDXArray(raw: raw, name: "bomb-idx")) { XCTAssertTrue("\($0)".contains("bomb-idx: IDX shape"), "\($0)") }
    }

    /// Adam at learning rate 1e6 used to end "successfully" at a loss of 4e18.
    func testDivergenceStopsTraining() throws {
        RandomGenerator.manualSeed(0)
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.randn([64, 8], using: &rng)
        let labels = (0..<64).map { $0 % 4 }
        let model = Sequential(Linear(8, 32), ReLU(), Linear(32, 4))
        let trainer = Trainer(model: model, optimizer: Adam(model.parameters(), lr: 1e6), info: ModelInfo(model: model, classNames: ["a", "b", "c", "d"], inputShape: [8]))
        var options = FitOptions(epochs: 20, batchSize: 8)
        options.progress = .none
        XCTAssertThrowsError(try trainer.fit(TensorDataset(x, labels: labels), options: options)) {
            XCTAssertTrue("\($0)".contains("diverged") || "\($0)".contains("NaN or infinite") || "\($0)".contains("became"), "\($0)")
        }
        // A sane rate trains through.
        let calm = Trainer(model: model, optimizer: Adam(model.parameters(), lr: 1e-3), info: trainer.info)
        RandomGenerator.manualSeed(0)
        XCTAssertNoThrow(try calm.fit(TensorDataset(x, labels: labels), options: options))
    }

    /// Ten-fold cross-validation on 2 pairs used to print "AUC 100.00 %".
    func testTooFewPairsAreRefused() throws {
        let path = testTemp("two-pairs.txt")
        try "1\nA\t1\t2\nA\t1\tB\t1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let root = testTemp("two-pairs-photos")
        for (name, i) in [("A", 1), ("A", 2), ("B", 1)] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            try Image(width: 32, height: 32, channels: 3, pixels: [UInt8](repeating: 100, count: 32 * 32 * 3)).saveJPEG("\(root)/\(name)/\(name)_000\(i).jpg")
        }
        let (status, _, err) = try runStrata(["faces", "evaluate", "--pairs", path, "--root", root])
        XCTAssertEqual(status, 1, err)
        XCTAssertTrue(err.contains("\(path): 1 same and 1 different pairs") && err.contains("10 of each for View 1"), err)
    }

    /// Architecture metadata with a huge or negative size used to allocate terabytes or trap.
    func testArchitectureSizesAreBounded() {
        for (spec, words) in [(["type": "Linear", "in": 1_000_000_000_000, "out": 10], "out of range"),
                              (["type": "Linear", "in": -3, "out": 10], "out of range"),
                              (["type": "Linear", "in": 1 << 20, "out": 1 << 20], "weights"),
                              (["type": "Conv2D", "in": 3, "out": 8, "groups": 2], "groups"),
                              (["type": "Embedding", "count": 0, "dim": 4], "out of range"),
                              (["type": "MaxPool2D", "kernel": 2, "ceil_mode": "yes"], "not true or false"),
                              (["type": "AvgPool1D", "kernel": 3, "count_include_pad": 0.5], "not true or false"),
                              (["type": "AvgPool2D", "kernel": 2, "dilation": 2], "no dilation"),
                              (["type": "MaxPool1D", "kernel": 2, "dilation": 0], "out of range"),
                              (["type": "AdaptiveAvgPool2D", "size": [7, 100_000]], "out of range"),
                              (["type": "AdaptiveMaxPool1D", "size": 0], "out of range")] as [([String: Any], String)] {
            XCTAssertThrowsError(try ModuleRegistry.build(spec)) { XCTAssertTrue("\($0)".contains(words), "\(spec): \($0)") }
        }
        XCTAssertNoThrow(try ModuleRegistry.build(["type": "Linear", "in": 4, "out": 2]))
        XCTAssertNoThrow(try ModuleRegistry.build(["type": "Softmax", "axis": -1]))
    }

    /// The audio model used to classify WAVs of 0 or 1 samples (and must refuse a PNG).
    func testTinyWAVsAndPicturesAreRefusedByTheAudioModel() throws {
        let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/legacy/audio-cnn.safetensors").path
        for n in [0, 1, 100] {
            let wav = testTemp("tiny-\(n).wav")
            try Audio(samples: [Float](repeating: 0.1, count: n), sampleRate: 8000).saveWAV(wav)
            let (status, _, err) = try runStrata(["predict", "--model", model, wav])
            XCTAssertEqual(status, 1, err)
            XCTAssertTrue(err.contains("\(wav): \(n) sample") && err.contains("shorter than one analysis frame"), err)
        }
        let png = testTemp("not-audio.png")
        try Image(width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 9, count: 64)).savePNG(png)
        let (status, _, err) = try runStrata(["predict", "--model", model, png])
        XCTAssertEqual(status, 1, err)
        XCTAssertTrue(err.contains(png), err)
    }

    // MARK: model metadata, text files, --out, --resume, classic, temporary files (cases 3, 8-10, 13, 14)

    /// A model file whose `input_shape` does not fit its layers, is negative, overflows or is huge,
    /// or whose class names do not match its outputs, used to trap, allocate gigabytes or give
    /// wrong labels; now `predict` names the file and the problem.
    func testModelMetadataIsCheckedAgainstTheLayers() throws {
        let dir = testTemp("metadata-shapes")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let net = Sequential(Flatten(), Linear(12, 3))
        let good = "\(dir)/good.safetensors", photo = "\(dir)/x.png"
        try SavedModel(model: net, info: ModelInfo(model: net, classNames: ["a", "b", "c"], inputShape: [1, 4, 3])).save(to: good)
        try Image(width: 3, height: 4, channels: 1, pixels: [UInt8](repeating: 9, count: 12)).savePNG(photo)
        var (status, out, err) = try runStrata(["predict", "--model", good, photo])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(out.hasPrefix("\(photo): "), out)
        let (tensors, meta) = try Safetensors.read(good)
        let cases: [(String, String, String)] = [
            ("input_shape", "[1,4,4]", "does not fit the model: Linear takes 12 features, gets input [1, 16]"),
            ("input_shape", "[1,28,29]", "does not fit the model"),
            ("input_shape", "[-1,4,3]", "must be positive sizes"),
            ("input_shape", "[1,4,9223372036854775807]", "must be positive sizes"),
            ("input_shape", "[1,100000,100000]", "at most 16777216 values"),
            ("class_names", "[\"a\",\"b\"]", "the model gives 3 outputs but its metadata names 2 classes"),
        ]
        for (i, (key, value, message)) in cases.enumerated() {
            var m = meta
            m[key] = value
            let bad = "\(dir)/bad\(i).safetensors"
            try Safetensors.write(tensors, metadata: m, to: bad)
            XCTAssertThrowsError(try SavedModel.load(bad)) { XCTAssertTrue("\($0)".contains(message), "\(value): \($0)") }
            (status, _, err) = try runStrata(["predict", "--model", bad, photo])
            XCTAssertEqual(status, 1, "\(value): \(err)")
            XCTAssertTrue(err.hasPrefix("error: \(bad): ") && err.contains(message), "\(value): \(err)")
        }
    }

    /// The layer-by-layer shapes agree with what the layers compute.
    func testShapeInferenceMatchesTheLayers() throws {
        let cnn = Sequential(Conv2D(1, 4, kernelSize: 3, padding: 1), BatchNorm2d(4), ReLU(), MaxPool2D(2),
                             Conv2D(4, 6, kernelSize: 5, stride: 2, dilation: 2), AvgPool2D(3, stride: 1, padding: 1),
                             ResidualBlock(6, 8, stride: 2), Flatten(), Linear(8 * 2 * 2, 5), Dropout(0.1), LogSoftmax(axis: -1))
        cnn.eval()
        let x = Tensor.rand([2, 1, 28, 30])
        XCTAssertEqual(try ShapeInference.outputShape(of: cnn, for: x.shape), noGrad { cnn(x) }.shape)
        XCTAssertThrowsError(try ShapeInference.outputShape(of: cnn, for: [2, 3, 28, 30])) {
            XCTAssertTrue("\($0)".contains("Conv2D takes [N, 1, H, W], gets input [2, 3, 28, 30]"), "\($0)")
        }
        XCTAssertThrowsError(try ShapeInference.outputShape(of: cnn, for: [2, 1, 6, 6])) { XCTAssertTrue("\($0)".contains("does not fit"), "\($0)") }
        let text = TextClassifier(kind: .transformer, vocabulary: 50, classes: 4, dim: 8, maxLength: 16)
        text.eval()
        let ids = Tensor((0..<24).map { Float($0 % 7) }, shape: [2, 12])
        XCTAssertEqual(try ShapeInference.outputShape(of: text, for: ids.shape), noGrad { text(ids) }.shape)
        XCTAssertThrowsError(try ShapeInference.outputShape(of: text, for: [1, 17]))
    }

    /// Sentiment files in the layout of ../shared/data/sentiment_labelled_sentences: 3 files of
    /// `text<TAB>label` lines, words that tell the classes apart, with `end` line ends.
    private func writeSentiment(_ dir: String, end: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let good = ["great", "lovely", "fine", "superb"], bad = ["awful", "poor", "broken", "dreadful"]
        var rng = RandomGenerator(seed: 11)
        for f in ["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"] {
            let lines = (0..<40).map { i -> String in
                let y = i % 2
                let words = (0..<4).map { _ in (y == 1 ? good : bad)[rng.nextInt(4)] } + ["the", "item"]
                return words.joined(separator: " ") + "\t\(y)"
            }
            try Data((lines.joined(separator: end) + end).utf8).write(to: URL(fileURLWithPath: "\(dir)/\(f)"))
        }
    }

    /// Windows line ends (CRLF) used to read a text file as one line; now they read as Unix
    /// ones, in text data, LFW pairs and Cora. TF-IDF training writes its --out file (case 10).
    func testWindowsLineEndsReadLikeUnixOnes() throws {
        let unix = testTemp("text-lf"), windows = testTemp("text-crlf")
        try writeSentiment(unix, end: "\n")
        try writeSentiment(windows, end: "\r\n")
        let a = try TextDataset.sentiment(["\(unix)/imdb_labelled.txt"]), b = try TextDataset.sentiment(["\(windows)/imdb_labelled.txt"])
        XCTAssertEqual(b.texts.count, 40)
        XCTAssertEqual(a.texts, b.texts)
        XCTAssertEqual(a.labels, b.labels)
        XCTAssertEqual("a\r\nb\rc\nd".textLines(), ["a", "b", "c", "d"])
        var accuracies: [String] = []
        for dir in [unix, windows] {
            let out = "\(dir)/tfidf.safetensors"
            let (status, stdout, err) = try runStrata(["train", "--data", "sentiment", "--model", "tfidf", "--data-dir", dir, "--out", out])
            XCTAssertEqual(status, 0, err)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out), "\(out) not written")
            accuracies.append(String(stdout.split(separator: ":").last ?? ""))
            let (s2, p, e2) = try runStrata(["predict", "--model", out, "--text", "great lovely superb"])
            XCTAssertEqual(s2, 0, e2)
            XCTAssertTrue(p.contains(": positive"), p)
        }
        XCTAssertEqual(accuracies[0].split(separator: "%").first, accuracies[1].split(separator: "%").first)
        let pairs = "1\t1\r\nAnn\t1\t2\r\nBob\t1\tCid\t1\r\n"
        let parsed = try FacePairs.parse(pairs, file: "pairs-crlf.txt")
        XCTAssertEqual(parsed.pairs.count, 2)
    }

    /// `train --data-dir` on a folder without the data used to train on Fashion-MNIST and say it
    /// trained on the folder (case 8).
    func testTrainingOnAFolderWithoutTheDataIsRefused() throws {
        let dir = testTemp("no-data-here")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for args in [["train", "--data-dir", dir, "--epochs", "1"], ["train", "--data", "sentiment", "--model", "tfidf", "--data-dir", dir]] {
            let (status, out, err) = try runStrata(args)
            XCTAssertEqual(status, 1, "\(args): \(out)")
            XCTAssertTrue(err.hasPrefix("error: ") && err.contains(dir) && (err.contains("does not exist") || err.contains("no such file")), "\(args): \(err)")
        }
    }

    /// `--out` naming a file that is not a model, a folder, or a missing folder is refused before
    /// any training, and the file is left as it was (case 14).
    func testOutputPathsAreCheckedBeforeTraining() throws {
        let dir = testTemp("out-checks")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let notes = "\(dir)/notes.txt"
        try Data("my notes\n".utf8).write(to: URL(fileURLWithPath: notes))
        let cases = [(notes, "exists and is not a model file"), (dir, "is a folder"), ("\(dir)/missing/m.safetensors", "does not exist")]
        for (out, message) in cases {
            for args in [["train", "--data-dir", dir, "--epochs", "1", "--out", out], ["faces", "train", "--data", dir, "--out", out],
                         ["faces", "train-detector", "--data", dir, "--out", out]] {
                let started = Date()
                let (status, _, err) = try runStrata(args)
                XCTAssertEqual(status, 1, "\(args): \(err)")
                XCTAssertTrue(err.hasPrefix("error: --out \(out): ") && err.contains(message), "\(args): \(err)")
                XCTAssertLessThan(Date().timeIntervalSince(started), 5)
            }
        }
        XCTAssertEqual(try String(contentsOfFile: notes, encoding: .utf8), "my notes\n")
    }

    /// `classic` with fewer photos per person than it trains on used to print -nan % (case 13).
    func testClassicWithTooFewPhotosPerPersonIsRefused() throws {
        let dir = testTemp("few-photos")
        var rng = RandomGenerator(seed: 5)
        for person in ["Ann", "Bob"] {
            try FileManager.default.createDirectory(atPath: "\(dir)/\(person)", withIntermediateDirectories: true)
            for i in 0..<3 {
                try Image(width: 16, height: 16, channels: 1, pixels: (0..<256).map { _ in UInt8(rng.nextInt(256)) }).savePNG("\(dir)/\(person)/\(i).png")
            }
        }
        var (status, out, err) = try runStrata(["classic", "--data", dir, "--features", "raw", "--classifier", "euclidean"])
        XCTAssertEqual(status, 1, out)
        XCTAssertTrue(err.contains("\(dir): Ann has 3 photos; 5 training photos per person need at least 6"), err)
        (status, out, err) = try runStrata(["classic", "--data", dir, "--features", "raw", "--classifier", "euclidean", "--train-per-person", "2", "--seeds", "2"])
        XCTAssertEqual(status, 0, err)
        XCTAssertFalse(out.contains("nan"), out)
    }

    /// `--resume` with another `--lr` trains on with the new rate and records it (case 14).
    func testResumingWithAnotherLearningRateUsesIt() throws {
        guard haveFashion else { throw XCTSkip("Fashion-MNIST is not installed (make demo-deps)") }
        let dir = testTemp("resume-lr")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ck = "\(dir)/ck.safetensors", out = "\(dir)/m.safetensors"
        let common = ["train", "--model", "mlp", "--limit", "256", "--checkpoint", ck, "--out", out]
        var (status, _, err) = try runStrata(common + ["--epochs", "1", "--lr", "0.001"])
        XCTAssertEqual(status, 0, err)
        var printed: String
        (status, printed, err) = try runStrata(common + ["--epochs", "2", "--lr", "0.0005", "--resume", ck])
        XCTAssertEqual(status, 0, err)
        XCTAssertTrue(printed.contains("learning rate 0.0005 from now on; the checkpoint trained with 0.001"), printed)
        let history = try SavedModel.load(ck).info.history
        XCTAssertEqual(history.map(\.learningRate), [0.001, 0.0005].map { Double(Float($0)) })
    }

    /// Temporary files of a write killed by SIGKILL are swept at the next write of that file; a
    /// SIGTERM removes the one being written (case 14).
    func testKilledWritesLeaveNoTemporaryFiles() throws {
        let dir = testTemp("temp-sweep")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A process that has ended: its pid names a stale temporary file.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        let target = "\(dir)/m.bin", stale = "\(dir)/.m.bin.tmp-\(p.processIdentifier)", live = "\(dir)/.m.bin.tmp-1"
        for f in [stale, live] { FileManager.default.createFile(atPath: f, contents: Data([1, 2, 3])) }
        try FileIO.writeAtomically(Data([7]), to: target)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "stale temporary file kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: live), "pid 1 is alive: its file is not stale")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), Data([7]))

        // SIGTERM in the middle of writing many files: none is left half-written.
        guard FileManager.default.isExecutableFile(atPath: strataBinary), haveFashion else { throw XCTSkip("needs the strata binary and Fashion-MNIST") }
        let images = "\(dir)/images"
        for round in 0..<5 {
            let e = Process()
            e.executableURL = URL(fileURLWithPath: strataBinary)
            e.arguments = ["export", "--data", "fashion-mnist", "--split", "test", "--count", "10000", "--out", images]
            e.standardOutput = FileHandle.nullDevice
            e.standardError = FileHandle.nullDevice
            try e.run()
            usleep(UInt32(150_000 + 60_000 * round))
            e.terminate()
            e.waitUntilExit()
            XCTAssertEqual(e.terminationReason, .uncaughtSignal, "round \(round)")
            let left = (try FileManager.default.contentsOfDirectory(atPath: images)).filter { $0.contains(".tmp-") }
            XCTAssertEqual(left, [], "round \(round)")
        }
    }

    /// The file cases that the library tests above check, through the binary: each is one line
    /// naming the file and exit 1 (cases 1, 2, 4, 11, 12).
    func testBrokenFilesThroughTheBinary() throws {
        let dir = testTemp("broken-files")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let net = Sequential(Flatten(), Linear(12, 3))
        let good = "\(dir)/good.safetensors", photo = "\(dir)/x.png"
        try SavedModel(model: net, info: ModelInfo(model: net, classNames: ["a", "b", "c"], inputShape: [1, 4, 3])).save(to: good)
        try Image(width: 3, height: 4, channels: 1, pixels: [UInt8](repeating: 9, count: 12)).savePNG(photo)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8
        let (tensors, meta) = try Safetensors.read(good)
        var files: [(String, Data, String)] = []
        // 11: trailing bytes; a header length one byte short; NaN weights.
        files.append(("trailing", bytes + Data([0, 0, 0]), "trailing bytes"))
        var short = bytes
        short[0] = UInt8((headerLength - 1) & 0xFF)
        short[1] = UInt8((headerLength - 1) >> 8)
        files.append(("short-header", short, "trailing bytes"))
        var nanWeights = tensors
        nanWeights["1.weight"] = Tensor([Float](repeating: .nan, count: 36), shape: [3, 12])
        files.append(("nan", try Safetensors.encode(nanWeights, metadata: meta), "NaN"))
        // 1: a shape whose element count overflows.
        let bigHeader = Data(#"{"w":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,0]}}"#.utf8)
        files.append(("overflow", Data((0..<8).map { UInt8((bigHeader.count >> (8 * $0)) & 0xFF) }) + bigHeader, "too large to exist"))
        // 2: a Linear of 10^12 inputs, and a negative size.
        for (name, size) in [("huge-layer", "1000000000000"), ("negative-layer", "-4")] {
            var m = meta
            m["architecture"] = #"{"type":"Sequential","layers":[{"type":"Flatten"},{"type":"Linear","in":"# + size + #","out":3}]}"#
            files.append((name, try Safetensors.encode(tensors, metadata: m), "out of range"))
        }
        for (name, data, message) in files {
            let path = "\(dir)/\(name).safetensors"
            try data.write(to: URL(fileURLWithPath: path))
            let (status, out, err) = try runStrata(["predict", "--model", path, photo])
            XCTAssertEqual(status, 1, "\(name): \(out)")
            XCTAssertTrue(err.hasPrefix("error: ") && err.contains(path) && err.contains(message) && err.split(separator: "\n").count == 1, "\(name): \(err)")
        }
        // 4: IDX dimensions that overflow, as the training data.
        let idx = "\(dir)/idx"
        try FileManager.default.createDirectory(atPath: idx, withIntermediateDirectories: true)
        let raw: [UInt8] = [0, 0, 0x08, 3] + [UInt8](repeating: 0xFF, count: 12) + [1, 2, 3]
        for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try Data(raw).write(to: URL(fileURLWithPath: "\(idx)/\(f)"))
        }
        var (status, out, err) = try runStrata(["train", "--data-dir", idx, "--epochs", "1"])
        XCTAssertEqual(status, 1, out)
        XCTAssertTrue(err.hasPrefix("error: ") && err.contains(idx), err)
        // 12: Adam at learning rate 10^6 used to end "successfully" at a loss of 4e18.
        guard haveFashion else { throw XCTSkip("Fashion-MNIST is not installed (make demo-deps)") }
        (status, out, err) = try runStrata(["train", "--model", "mlp", "--limit", "2000", "--epochs", "3", "--lr", "1e6"])
        XCTAssertEqual(status, 1, out)
        XCTAssertTrue(err.contains("training stopped: the loss diverged"), err)
    }

    /// Architecture entries the fuzzer found trapping (a dropout rate of 5.3) and their kin: every
    /// builder checks what it reads before a layer's own preconditions see it.
    func testArchitectureValuesFromFilesAreChecked() {
        let bad: [[String: Any]] = [
            ["type": "Dropout", "p": 5.3],
            ["type": "Dropout", "p": -0.1],
            ["type": "GCN", "features": 10, "classes": 3, "dropout": 1.0],
            ["type": "FaceNet", "loss": "cosface", "classes": 5, "input": [5]],
            ["type": "FaceNet", "loss": "cosface", "classes": 5, "input": [8, 8], "widths": [8, 8, 8, 8]],
            ["type": "FaceNet", "loss": "cosface", "classes": 5, "widths": [8, 16], "blocks": [1]],
            ["type": "FaceNet", "loss": "cosface", "classes": 5, "widths": [0, 16]],
            ["type": "FaceNet", "loss": "cosface", "classes": 5, "input": [16000000, 16000000], "widths": [8]],
            ["type": "TextClassifier", "kind": "gru", "vocabulary": 16000000, "classes": 2, "dim": 16000000],
            ["type": "TextClassifier", "kind": "transformer", "vocabulary": 100, "classes": 2, "dim": 30],
            ["type": "TfIdfClassifier", "vocabulary": 16000000, "classes": 1000],
            ["type": "ResidualBlock", "in": 100000, "out": 100000],
        ]
        for spec in bad {
            XCTAssertThrowsError(try ModuleRegistry.build(spec), "\(spec)") { XCTAssertTrue("\($0)".hasPrefix("architecture: "), "\(spec): \($0)") }
        }
        XCTAssertNoThrow(try ModuleRegistry.build(["type": "FaceNet", "loss": "cosface", "classes": 5, "input": [64, 64], "widths": [8, 16, 32], "channels": 3]))
        XCTAssertNoThrow(try ModuleRegistry.build(["type": "Dropout", "p": 0.25]))
    }

    /// A model file whose architecture asks for a gigabyte of weights it does not hold (the
    /// fuzzer's FaceNet of input [16777, 74] took over 10 s drawing 155 M random weights): the
    /// layers are built without drawing any, and loading stops at the missing tensors.
    func testWeightsAFileLacksAreNotDrawn() throws {
        let before = ProcessStats.currentRSSMiB()
        let big = Tensor.withoutRandomInit { Linear(1 << 14, 1 << 14) }   // 2^28 weights, 1 GiB
        XCTAssertEqual(big.weight.value.count, 1 << 28)
        XCTAssertLessThan(ProcessStats.currentRSSMiB() - before, 256, "unfilled weights should not be resident")
        let drawn = Linear(3, 2)   // outside the block, drawing is back: uniform in ±1/sqrt(3)
        XCTAssertTrue(drawn.weight.value.scalars.allSatisfy { $0 != 0 && Swift.abs($0) <= 1 / Float(3).squareRoot() })

        let dir = testTemp("undrawn-weights")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let small = Sequential(Flatten(), Linear(12, 3))
        let good = "\(dir)/good.safetensors", bad = "\(dir)/huge.safetensors"
        try SavedModel(model: small, info: ModelInfo(model: small, classNames: ["a", "b", "c"], inputShape: [1, 4, 3])).save(to: good)
        var (tensors, meta) = try Safetensors.read(good)
        meta["architecture"] = #"{"type":"Sequential","layers":[{"type":"Flatten"},{"type":"Linear","in":16384,"out":16384}]}"#
        tensors = [:]
        try Safetensors.write(tensors, metadata: meta, to: bad)
        let started = ProcessStats.now()
        XCTAssertThrowsError(try SavedModel.load(bad)) { XCTAssertTrue("\($0)".contains("missing tensors"), "\($0)") }
        XCTAssertLessThan(ProcessStats.now() - started, 5)
        let (status, _, err) = try runStrata(["summary", "--model", bad])
        XCTAssertEqual(status, 1, err)
        XCTAssertTrue(err.hasPrefix("error: \(bad): ") && err.contains("missing tensors"), err)
    }
}
