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
}
