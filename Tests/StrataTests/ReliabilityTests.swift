import Foundation
import XCTest
import Strata
import StrataFaces

/// Bad input found by trying Strata as a careless or hostile user would (issue 15): each case
/// gets one clear line naming the file, exit 1, or the right answer.
final class ReliabilityTests: XCTestCase {
    /// A folder where a photo is expected used to trap inside Foundation's FileHandle.
    func testAFolderGivenAsAPhotoIsRefused() throws {
        let dir = testTemp("folder-photo.jpg")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        XCTAssertThrowsError(try Image.load(dir)) { XCTAssertTrue("\($0)".contains("is a folder"), "\($0)") }
        for args in [["faces", "detect", dir], ["faces", "verify", "--no-detect", dir, dir], ["faces", "embed", dir]] {
            let (status, _, err) = try runStrata(args)
            XCTAssertEqual(status, 1, "\(args): \(err)")
            XCTAssertTrue(err.contains("\(dir): is a folder"), "\(args): \(err)")
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
        for round in 0..<2 {
            let gallery = "\(dir)/g\(round).json", n = 12
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
                              (["type": "Embedding", "count": 0, "dim": 4], "out of range")] as [([String: Any], String)] {
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
}
