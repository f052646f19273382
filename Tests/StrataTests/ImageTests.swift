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

    /// `resized` by its definition, one output pixel at a time, before rounding: the product of
    /// the two axes' weights times each source pixel it covers (the code `resized` had before it
    /// was made separable).
    func resizedByDefinition(_ img: Image, _ nw: Int, _ nh: Int) -> [Double] {
        func taps(_ n: Int, _ src: Int) -> [[(Int, Double)]] {
            let s = Double(src) / Double(n)
            return (0..<n).map { o in
                if s > 1 {
                    let a = Double(o) * s, b = Double(o + 1) * s
                    return (0..<src).compactMap { i in
                        let lo = max(a, Double(i)), hi = min(b, Double(i + 1))
                        return hi > lo ? (i, (hi - lo) / s) : nil
                    }
                }
                let c = (Double(o) + 0.5) * s - 0.5, i0 = Int(c.rounded(.down)), f = c - Double(i0)
                return [(min(max(i0, 0), src - 1), 1 - f), (min(max(i0 + 1, 0), src - 1), f)]
            }
        }
        let wx = taps(nw, img.width), wy = taps(nh, img.height)
        var out = [Double](repeating: 0, count: nw * nh * img.channels)
        for y in 0..<nh { for x in 0..<nw { for c in 0..<img.channels {
            var acc = 0.0
            for (iy, fy) in wy[y] { for (ix, fx) in wx[x] { acc += fy * fx * Double(img.pixels[(iy * img.width + ix) * img.channels + c]) } }
            out[(y * nw + x) * img.channels + c] = acc
        } } }
        return out
    }

    /// The separable resampling kernel gives the definition's bytes on every ISA: shrinking by
    /// whole and fractional factors, growing, one axis each way, to and from one pixel, for grey,
    /// RGB and RGBA, on random pixels and on a black-and-white pattern (the extremes, where
    /// clamping matters). The one exception is a sum that is exactly a half (it happens: weights
    /// of 1/2.6 and 1/4 can add up to 0.5): the two orders of summation may round it either way,
    /// and both are right, so there a byte may be one level off.
    func testResizeGivesTheDefinitionsBytesOnEveryISA() {
        var rng = RandomGenerator(seed: 5)
        let sizes: [(Int, Int, Int, Int)] = [(4, 2, 2, 1), (250, 250, 80, 80), (250, 250, 112, 112), (97, 61, 31, 17),
                                              (640, 480, 213, 160), (30, 20, 77, 45), (17, 9, 40, 9), (50, 40, 120, 13),
                                              (13, 70, 5, 140), (1, 1, 6, 4), (9, 7, 1, 1), (300, 2, 7, 3), (2, 300, 3, 299)]
        forEachISA { isa in
            var checked = 0, ties = 0
            for (w, h, nw, nh) in sizes {
                for ch in [1, 3, 4] {
                    let noise = Image(width: w, height: h, channels: ch, pixels: (0..<(w * h * ch)).map { _ in UInt8(rng.nextInt(256)) })
                    let stripes = Image(width: w, height: h, channels: ch, pixels: (0..<(w * h * ch)).map { ($0 / ch + $0 / (w * ch)) % 3 == 0 ? 255 : 0 })
                    for img in [noise, stripes] {
                        let got = img.resized(width: nw, height: nh).pixels, sums = resizedByDefinition(img, nw, nh)
                        XCTAssertEqual(got.count, sums.count)
                        var wrong = 0
                        for (g, s) in zip(got, sums) where Double(g) != min(255, max(0, s.rounded())) {
                            let half = abs(s - s.rounded(.down) - 0.5) < 1e-9
                            if !(half && abs(Double(g) - s) < 0.5 + 1e-9) { wrong += 1 }
                            ties += 1
                        }
                        XCTAssertEqual(wrong, 0, "\(isa) \(w)x\(h)x\(ch) to \(nw)x\(nh): \(wrong) of \(sums.count) bytes differ beyond a tie")
                        checked += 1
                    }
                }
            }
            XCTAssertEqual(checked, sizes.count * 6)
            XCTAssertLessThan(ties, 200, "\(isa): rounded the other way at \(ties) halves")
        }
    }

    /// `cropped` against the per-pixel definition (each coordinate clamped into the image), for
    /// crops inside, across each edge, past both edges and wholly outside.
    func testCroppedCopiesTheInsideAndRepeatsTheEdges() {
        for ch in [1, 3, 4] {
            let img = pattern(11, 7, ch)
            for (x, y, w, h) in [(2, 1, 5, 4), (-3, -2, 6, 5), (8, 4, 6, 6), (-4, -1, 20, 10), (-9, 2, 4, 3), (14, -8, 3, 2), (0, 0, 11, 7)] {
                var want: [UInt8] = []
                for r in 0..<h { for c in 0..<w {
                    let sx = min(max(x + c, 0), 10), sy = min(max(y + r, 0), 6)
                    want += img.pixels[((sy * 11 + sx) * ch)..<((sy * 11 + sx + 1) * ch)]
                } }
                XCTAssertEqual(img.cropped(x: x, y: y, width: w, height: h).pixels, want, "\(ch) channels, \(x),\(y) \(w)x\(h)")
            }
        }
    }
}
