import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

final class ImageTests: XCTestCase {
    func pattern(_ w: Int, _ h: Int, _ c: Int) -> Image {
        Image(width: w, height: h, channels: c, pixels: (0..<(w * h * c)).map { UInt8(($0 * 37 + $0 / 7) % 256) })
    }

    func testPNGRoundTripThroughLibpng() throws {
        for c in [1, 3, 4] {
            let img = pattern(13, 7, c)
            let path = testTemp("rt\(c).png")
            try img.savePNG(path)
            let head = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8)
            XCTAssertEqual([UInt8](head), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "PNG signature")
            XCTAssertEqual(try Image.load(path), img, "channels \(c)")
        }
    }

    func testNetpbmReaders() throws {
        let p5 = testTemp("a.pgm")
        FileManager.default.createFile(atPath: p5, contents: Data("P5\n# comment\n3 2\n255\n".utf8) + Data([0, 10, 20, 30, 40, 255]))
        XCTAssertEqual(try Image.load(p5), Image(width: 3, height: 2, channels: 1, pixels: [0, 10, 20, 30, 40, 255]))
        let p2 = testTemp("b.pgm")
        FileManager.default.createFile(atPath: p2, contents: Data("P2 2 1 15\n0 15\n".utf8))
        XCTAssertEqual(try Image.load(p2).pixels, [0, 255])
        let img = pattern(5, 4, 3)
        let ppm = testTemp("c.ppm")
        try img.saveNetpbm(ppm)
        XCTAssertEqual(try Image.load(ppm), img)
        let short = testTemp("d.pgm")
        FileManager.default.createFile(atPath: short, contents: Data("P5 4 4 255\n".utf8) + Data([1, 2, 3]))
        XCTAssertThrowsError(try Image.load(short)) { XCTAssert("\($0)".contains(short) && "\($0)".contains("truncated"), "\($0)") }
    }

    func testJPEGThroughLibjpegAndTruncationIsAnError() throws {
        let w = 32, h = 24
        let smooth = Image(width: w, height: h, channels: 3, pixels: (0..<(w * h * 3)).map { i in UInt8((i / 3 % w) * 8 % 256) })
        let path = testTemp("s.jpg")
        try smooth.saveJPEG(path, quality: 95)
        let back = try Image.load(path)
        XCTAssertEqual(back.width, w)
        XCTAssertEqual(back.channels, 3)
        let err = zip(back.pixels, smooth.pixels).map { abs(Int($0) - Int($1)) }.max()!
        XCTAssertLessThan(err, 12, "JPEG at quality 95 stays close")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = testTemp("cut.jpg")
        FileManager.default.createFile(atPath: cut, contents: data.prefix(data.count / 2))
        XCTAssertThrowsError(try Image.load(cut)) { XCTAssert("\($0)".contains(cut) && "\($0)".contains("JPEG"), "\($0)") }
    }

    func testUnreadableFilesNameTheFile() {
        let junk = testTemp("junk.png")
        FileManager.default.createFile(atPath: junk, contents: Data("hello".utf8))
        XCTAssertThrowsError(try Image.load(junk)) { XCTAssert("\($0)".contains(junk) && "\($0)".contains("not a PNG"), "\($0)") }
        let badPNG = testTemp("bad.png")
        FileManager.default.createFile(atPath: badPNG, contents: Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]))
        XCTAssertThrowsError(try Image.load(badPNG)) { XCTAssert("\($0)".contains(badPNG) && "\($0)".contains("PNG"), "\($0)") }
        XCTAssertThrowsError(try Image.load("/nonexistent/x.png")) { XCTAssert("\($0)".contains("no such file"), "\($0)") }
    }

    func testResizeAveragesWhenShrinkingAndInterpolatesWhenGrowing() {
        let img = Image(width: 4, height: 2, channels: 1, pixels: [0, 10, 20, 30, 40, 50, 60, 70])
        XCTAssertEqual(img.resized(width: 2, height: 1).pixels, [25, 45])   // means of 2x2 blocks
        let up = Image(width: 2, height: 1, channels: 1, pixels: [0, 100]).resized(width: 4, height: 1)
        XCTAssertEqual(up.pixels, [0, 25, 75, 100])   // pixel centres at 0.25 and 0.75 between the two
        XCTAssertEqual(Image(width: 1, height: 1, channels: 3, pixels: [255, 0, 0]).grayscale().pixels, [76])
    }
}
