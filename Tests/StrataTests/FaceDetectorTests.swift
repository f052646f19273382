import Foundation
import XCTest
@testable import StrataFaces
import Strata

final class FaceDetectorTests: XCTestCase {
    let lfw = "../shared/data/lfw_train"

    // Worked by hand: picture 0 holds faces A and B, picture 1 holds face C and an ignore region.
    // Detections by score: A (TP), a duplicate of A (FP), a box in the ignore region (skipped),
    // C (TP), far from everything (FP). Recall after each counted one: 1/3, 1/3, 2/3, 2/3;
    // precision 1, 1/2, 2/3, 1/2. Monotone precision: 1, 2/3, 2/3, 1/2.
    // AP = 1/3 * 1 + 1/3 * 2/3 = 5/9. FP ≤ 2 pictures throughout: recall at 1 FP/picture = 2/3.
    func testAveragePrecisionMatchesHandComputation() {
        let a = FaceBox(x: 10, y: 10, side: 40), b = FaceBox(x: 100, y: 100, side: 30), c = FaceBox(x: 50, y: 50, side: 60)
        let dets: [[FaceBox]] = [
            [FaceBox(x: 11, y: 10, side: 40, score: 0.9), FaceBox(x: 12, y: 12, side: 38, score: 0.8), FaceBox(x: 300, y: 300, side: 20, score: 0.1)],
            [FaceBox(x: 200, y: 10, side: 20, score: 0.7), FaceBox(x: 52, y: 50, side: 60, score: 0.6)],
        ]
        let ignore: [[PixelRect]] = [[], [PixelRect(x: 190, y: 0, w: 50, h: 50)]]
        let s = DetectionScore.evaluate(dets, truth: [[a, b], [c]], ignore: ignore)
        XCTAssertEqual(s.faces, 3)
        XCTAssertEqual(s.ap50, 5.0 / 9.0, accuracy: 1e-12)
        XCTAssertEqual(s.recallAt1FP, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(s.falsePositivesPerPicture, 1.0, accuracy: 1e-12)
    }

    func testIoUAndNMS() {
        let a = FaceBox(x: 0, y: 0, side: 10, score: 0.9), b = FaceBox(x: 5, y: 0, side: 10, score: 0.8)
        XCTAssertEqual(a.iou(b), 50.0 / 150.0, accuracy: 1e-12)
        let kept = FaceDetector.nms([b, a, FaceBox(x: 1, y: 1, side: 10, score: 0.5), FaceBox(x: 40, y: 40, side: 10, score: 0.3)], iou: 0.35)
        // b overlaps a by 1/3 (kept at 0.35); (1,1) overlaps a by 81/119 (dropped); (40,40) overlaps nothing.
        XCTAssertEqual(kept.map(\.score), [0.9, 0.8, 0.3])
    }

    /// The LFW box of a 250x250 photo maps back to the whole photo.
    func testLFWFrameOfTheLFWBoxIsThePhoto() {
        let box = LFWFaceBox.box(width: 250, height: 250)
        XCTAssertEqual(box.side, 250 / 2.2, accuracy: 1e-9)
        let f = box.lfwFrame
        XCTAssertEqual(f.x, 0, accuracy: 1e-9); XCTAssertEqual(f.y, 0, accuracy: 1e-9); XCTAssertEqual(f.side, 250, accuracy: 1e-9)
    }

    /// Targets written as if they were the network's output decode back to the faces.
    func testTargetsDecodeBackToTheFaces() {
        let faces = [FaceBox(x: 13, y: 21, side: 18), FaceBox(x: 60, y: 70, side: 55), FaceBox(x: 90, y: 5, side: 120)]
        let (h, w) = (160, 224)
        let t = DetectionTargets.encode(faces: faces, ignore: [], height: h, width: w)
        let cells = t.count / DetectionTargets.rows
        XCTAssertEqual(cells, 20 * 28 + 10 * 14 + 5 * 7)
        // As output: score logit ±10 from the target, box rows as they are.
        var out = [Float](repeating: 0, count: 4 * cells)
        for i in 0..<cells {
            out[i] = t[i] == 1 ? 10 : -10
            for k in 0..<3 { out[(k + 1) * cells + i] = t[(k + 2) * cells + i] }
        }
        let found = FaceDetector.nms(FaceDetector.decode(out, cells: cells, offset: 0, height: h, width: w, threshold: 0.5), iou: 0.5)
        XCTAssertEqual(found.count, faces.count)
        for f in faces {
            let m = found.max { $0.iou(f) < $1.iou(f) }!
            XCTAssertEqual(m.x, f.x, accuracy: 1e-4); XCTAssertEqual(m.y, f.y, accuracy: 1e-4); XCTAssertEqual(m.side, f.side, accuracy: 1e-3)
        }
        // Every face has positive cells; ignore regions zero the score weight of the cells inside.
        let ignored = DetectionTargets.encode(faces: [], ignore: [PixelRect(x: 0, y: 0, w: 32, h: 32)], height: h, width: w)
        XCTAssertEqual(ignored[cells + 0], 0)                  // stride-8 cell (0,0), centre (4,4)
        XCTAssertEqual(ignored[cells + 4], 1)                  // centre (36,4): outside
    }

    /// The loss falls when the network fits one fixed batch (the gradients reach every level).
    func testDetectorFitsOneBatch() throws {
        RandomGenerator.manualSeed(1)
        let net = try FaceDetectorNet(configuration: .init())
        var rng = RandomGenerator(seed: 3)
        let (n, h, w) = (4, 64, 64)
        let x = Tensor.randn([n, 3, h, w], using: &rng)
        var ts: [Float] = []
        for i in 0..<n { ts += DetectionTargets.encode(faces: [FaceBox(x: Double(4 + 8 * i), y: 10, side: Double(14 + 12 * i))], ignore: [], height: h, width: w) }
        let targets = Tensor(ts, shape: [n, DetectionTargets.rows, ts.count / n / DetectionTargets.rows])
        let opt = Adam(net.parameters(), lr: 3e-3)
        var first: Float = 0, last: Float = 0
        for step in 0..<40 {
            let l = DetectionTargets.loss(net(x), targets)
            if step == 0 { first = l.item }
            last = l.item
            opt.zeroGrad(); l.backward(); opt.step()
        }
        XCTAssertLessThan(last, first * 0.5, "loss \(first) -> \(last)")
    }

    /// The shipped detector finds the face of LFW photos, centred and placed small off-centre.
    func testBuiltInDetectorFindsLFWFaces() throws {
        guard FileManager.default.fileExists(atPath: lfw) else { throw XCTSkip("\(lfw) is missing") }
        let det = try FaceDetector.builtIn()
        let dir = "\(lfw)/Aaron_Sorkin"
        let photo = try Image.load("\(dir)/Aaron_Sorkin_0001.jpg")
        let found = det.detect(photo)
        XCTAssertFalse(found.isEmpty)
        XCTAssertGreaterThan(found.max { $0.iou(LFWFaceBox.box(width: 250, height: 250)) < $1.iou(LFWFaceBox.box(width: 250, height: 250)) }!.iou(LFWFaceBox.box(width: 250, height: 250)), 0.6)
        // 120 px at (400, 250) in a grey 640x480 picture: the box is the LFW box scaled by 120/250.
        var canvas = Image(width: 640, height: 480, channels: 3, pixels: [UInt8](repeating: 128, count: 640 * 480 * 3))
        let small = photo.resized(width: 120, height: 120)
        for r in 0..<120 { for c in 0..<120 { for k in 0..<3 { canvas.pixels[((250 + r) * 640 + 400 + c) * 3 + k] = small.pixels[(r * 120 + c) * 3 + k] } } }
        let expected = FaceBox(x: 400 + (125 - 250 / 4.4) * 0.48, y: 250 + (125 - 250 / 4.4) * 0.48, side: 250 / 2.2 * 0.48)
        let inCanvas = det.detect(canvas)
        XCTAssertEqual(inCanvas.count, 1, "\(inCanvas)")
        XCTAssertGreaterThan(inCanvas.first?.iou(expected) ?? 0, 0.6)
    }

    func testDetectCommandReportsBadPhotos() throws {
        let dir = testTemp("detect-bad")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let corrupt = "\(dir)/corrupt.jpg", tiny = "\(dir)/tiny.png", blank = "\(dir)/blank.png"
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).write(to: URL(fileURLWithPath: corrupt))
        try Image(width: 12, height: 10, channels: 3, pixels: [UInt8](repeating: 90, count: 360)).savePNG(tiny)
        try Image(width: 320, height: 240, channels: 3, pixels: [UInt8](repeating: 200, count: 320 * 240 * 3)).savePNG(blank)
        let (s1, out1, err1) = try runStrata(["faces", "detect", blank, tiny, corrupt])
        XCTAssertEqual(s1, 1)
        XCTAssertTrue(out1.contains("\(blank): no face found"), out1)
        XCTAssertTrue(out1.contains("\(tiny): no face: the photo is 12x10 pixels"), out1)
        XCTAssertTrue(err1.contains(corrupt), err1)
        // Enrolling needs a face; identify reports "no face" per photo and goes on.
        let (s2, _, err2) = try runStrata(["faces", "enroll", "--gallery", "\(dir)/g.json", "--name", "x", blank])
        XCTAssertEqual(s2, 1)
        XCTAssertTrue(err2.contains("\(blank): no face found"), err2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/g.json"))
        let (s3, _, err3) = try runStrata(["faces", "verify", blank, blank])
        XCTAssertEqual(s3, 1)
        XCTAssertTrue(err3.contains("\(blank): no face found"), err3)
        guard FileManager.default.fileExists(atPath: lfw) else { throw XCTSkip("\(lfw) is missing") }
        let a = "\(lfw)/Aaron_Sorkin/Aaron_Sorkin_0001.jpg", b = "\(lfw)/Aaron_Sorkin/Aaron_Sorkin_0002.jpg"
        let (s4, _, err4) = try runStrata(["faces", "enroll", "--largest", "--gallery", "\(dir)/g.json", "--name", "Aaron Sorkin", a])
        XCTAssertEqual(s4, 0, err4)
        let (s5, out5, err5) = try runStrata(["faces", "identify", "--gallery", "\(dir)/g.json", blank, b])
        XCTAssertEqual(s5, 0, err5)
        XCTAssertTrue(out5.contains("\(blank): no face found"), out5)
        XCTAssertTrue(out5.contains("\(b) at ") && out5.contains(": Aaron Sorkin (distance"), out5)
    }

    /// Composed pictures: faces inside the picture, in the size range, never overlapping; the
    /// same seed gives the same picture.
    func testComposerMakesSeededPicturesWithKnownFaces() {
        var rng = RandomGenerator(seed: 5)
        let photos = (0..<3).map { _ in Image(width: 250, height: 250, channels: 3, pixels: (0..<(250 * 250 * 3)).map { _ in UInt8(rng.nextInt(256)) }) }
        let bg = Image(width: 600, height: 480, channels: 3, pixels: [UInt8](repeating: 77, count: 600 * 480 * 3))
        let sources = DetectionSources(photos: photos, photoPaths: ["a", "b", "c"], backgrounds: [bg])
        let composer = DetectionComposer(sources: sources, width: 160, height: 128)
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
        var faces = 0, ignored = 0
        for _ in 0..<60 {
            let p = composer.compose(&a), q = composer.compose(&b)
            XCTAssertEqual(p.image, q.image)
            XCTAssertEqual(p.faces, q.faces)
            XCTAssertEqual([p.image.width, p.image.height], [160, 128])
            XCTAssertEqual(p.faces.count, p.photoIndices.count)
            for (i, f) in p.faces.enumerated() {
                XCTAssertGreaterThanOrEqual(f.side, 12 - 1e-9)
                XCTAssertLessThanOrEqual(f.side, 0.85 * 128 + 1e-9)
                // At least 75 % of the box inside the picture.
                let vis = (min(160, f.x + f.side) - max(0, f.x)) * (min(128, f.y + f.side) - max(0, f.y)) / (f.side * f.side)
                XCTAssertGreaterThan(vis, 0.7)
                for g in p.faces[(i + 1)...] { XCTAssertEqual(f.iou(g), 0, accuracy: 1e-12) }
            }
            faces += p.faces.count
            ignored += p.ignore.isEmpty ? 0 : 1
        }
        XCTAssertGreaterThan(faces, 60)
        XCTAssertGreaterThan(ignored, 3)   // zoomed LFW photos mark their border
    }
}
