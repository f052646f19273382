import Foundation
import XCTest
@testable import StrataCore
@testable import StrataData

/// Reading phone photos: EXIF orientation, DCT-scaled JPEG decoding and hostile headers. Every
/// file is made here: a JPEG from Strata's own encoder, with an EXIF APP1 segment spliced in.
final class PhotoReadingTests: XCTestCase {
    // Corner colours of `quadrants`: each corner of the stored picture is told apart after turning.
    static let red: [UInt8] = [255, 0, 0], green: [UInt8] = [0, 255, 0], blue: [UInt8] = [0, 0, 255], white: [UInt8] = [255, 255, 255]

    /// A w x h RGB picture in four flat quadrants: red top-left, green top-right, blue
    /// bottom-left, white bottom-right.
    func quadrants(_ w: Int = 64, _ h: Int = 32) -> Image {
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let c = y < h / 2 ? (x < w / 2 ? Self.red : Self.green) : (x < w / 2 ? Self.blue : Self.white)
                for k in 0..<3 { px[(y * w + x) * 3 + k] = c[k] }
            }
        }
        return Image(width: w, height: h, channels: 3, pixels: px)
    }

    /// A smooth w x h RGB picture (gradients), for comparing decodes at different scales.
    func gradient(_ w: Int, _ h: Int) -> Image {
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                px[(y * w + x) * 3] = UInt8(x * 255 / (w - 1))
                px[(y * w + x) * 3 + 1] = UInt8(y * 255 / (h - 1))
                px[(y * w + x) * 3 + 2] = UInt8((x + y) * 255 / (w + h - 2))
            }
        }
        return Image(width: w, height: h, channels: 3, pixels: px)
    }

    /// An EXIF APP1 segment built by hand: "Exif\0\0", a TIFF header in the given byte order
    /// with IFD 0 at offset 8, and one entry, Orientation (0x0112) SHORT x 1 = `orientation`.
    func handMadeSegment(_ orientation: Int, bigEndian: Bool = false) -> [UInt8] {
        func u16(_ v: Int) -> [UInt8] { bigEndian ? [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func u32(_ v: Int) -> [UInt8] { bigEndian ? u16(v >> 16) + u16(v & 0xFFFF) : u16(v & 0xFFFF) + u16(v >> 16) }
        var tiff: [UInt8] = bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]   // "MM" / "II"
        tiff += u16(42) + u32(8)                                       // magic, offset of IFD 0
        tiff += u16(1)                                                 // one entry
        tiff += u16(0x0112) + u16(3) + u32(1)                          // Orientation, SHORT, count 1
        tiff += u16(orientation) + [0, 0]                              // value, left-justified in 4 bytes
        tiff += u32(0)                                                 // no next IFD
        return app1(Array("Exif".utf8) + [0, 0] + tiff)
    }

    /// A JPEG APP1 segment around `payload`.
    func app1(_ payload: [UInt8]) -> [UInt8] {
        let n = payload.count + 2
        return [0xFF, 0xE1, UInt8(n >> 8), UInt8(n & 0xFF)] + payload
    }

    /// Writes `img` as a JPEG to `name` with `segment` inserted right after SOI; returns the path.
    func jpeg(_ img: Image, _ name: String, segment: [UInt8] = [], quality: Int = 95) throws -> String {
        let path = testTemp(name)
        try img.saveJPEG(path, quality: quality)
        if !segment.isEmpty {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            XCTAssertEqual(Array(bytes.prefix(2)), [0xFF, 0xD8], "SOI")
            try Data(Array(bytes[0..<2]) + segment + Array(bytes[2...])).write(to: URL(fileURLWithPath: path))
        }
        return path
    }

    /// `img` turned upright for EXIF orientation `o`, by the definitions (PIL's
    /// ImageOps.exif_transpose), written as "which stored pixel shows at (x, y)".
    func reference(_ img: Image, _ o: Int) -> Image {
        let w = img.width, h = img.height, c = img.channels
        let turned = o >= 5
        let ow = turned ? h : w, oh = turned ? w : h
        var px = [UInt8](repeating: 0, count: img.pixels.count)
        for y in 0..<oh {
            for x in 0..<ow {
                let (sx, sy): (Int, Int)
                switch o {
                case 2: (sx, sy) = (w - 1 - x, y)                  // mirror left-right
                case 3: (sx, sy) = (w - 1 - x, h - 1 - y)          // half turn
                case 4: (sx, sy) = (x, h - 1 - y)                  // mirror top-bottom
                case 5: (sx, sy) = (y, x)                          // transpose
                case 6: (sx, sy) = (y, h - 1 - x)                  // quarter turn clockwise
                case 7: (sx, sy) = (w - 1 - y, h - 1 - x)          // transverse
                case 8: (sx, sy) = (w - 1 - y, x)                  // quarter turn anticlockwise
                default: (sx, sy) = (x, y)
                }
                for k in 0..<c { px[(y * ow + x) * c + k] = img.pixels[(sy * w + sx) * c + k] }
            }
        }
        return Image(width: ow, height: oh, channels: c, pixels: px)
    }

    /// The colour at (x, y), checked against `want` within JPEG's loss.
    func assertColour(_ img: Image, _ x: Int, _ y: Int, _ want: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let got = (0..<3).map { Int(img.pixels[(y * img.width + x) * 3 + $0]) }
        let diff = zip(got, want).map { abs($0 - Int($1)) }.max()!
        XCTAssertLessThan(diff, 40, "\(what): pixel (\(x), \(y)) is \(got), wanted \(want)", file: file, line: line)
    }

    /// The four corners (one pixel in, away from JPEG's ringing at the very edge) of a picture.
    func corners(_ img: Image) -> (tl: (Int, Int), tr: (Int, Int), bl: (Int, Int), br: (Int, Int)) {
        ((1, 1), (img.width - 2, 1), (1, img.height - 2), (img.width - 2, img.height - 2))
    }

    func testOrientationsOneThreeSixEightPutTheCornersWhereTheyBelong() throws {
        let stored = quadrants()   // 64 x 32
        // Where the stored red (top-left) and green (top-right) corners must show.
        for bigEndian in [false, true] {
            for o in [1, 3, 6, 8] {
                let path = try jpeg(stored, "o\(o)\(bigEndian ? "mm" : "ii").jpg", segment: handMadeSegment(o, bigEndian: bigEndian))
                let img = try Image.load(path)
                let what = "orientation \(o) (\(bigEndian ? "MM" : "II"))"
                let k = corners(img)
                switch o {
                case 1:
                    XCTAssertEqual([img.width, img.height], [64, 32], what)
                    assertColour(img, k.tl.0, k.tl.1, Self.red, what)
                    assertColour(img, k.tr.0, k.tr.1, Self.green, what)
                    assertColour(img, k.bl.0, k.bl.1, Self.blue, what)
                    assertColour(img, k.br.0, k.br.1, Self.white, what)
                case 3:   // half turn: red to bottom-right, green to bottom-left
                    XCTAssertEqual([img.width, img.height], [64, 32], what)
                    assertColour(img, k.br.0, k.br.1, Self.red, what)
                    assertColour(img, k.bl.0, k.bl.1, Self.green, what)
                    assertColour(img, k.tr.0, k.tr.1, Self.blue, what)
                    assertColour(img, k.tl.0, k.tl.1, Self.white, what)
                case 6:   // quarter turn clockwise: sides swap, red to top-right, green to bottom-right
                    XCTAssertEqual([img.width, img.height], [32, 64], what)
                    assertColour(img, k.tr.0, k.tr.1, Self.red, what)
                    assertColour(img, k.br.0, k.br.1, Self.green, what)
                    assertColour(img, k.tl.0, k.tl.1, Self.blue, what)
                    assertColour(img, k.bl.0, k.bl.1, Self.white, what)
                default:  // 8, quarter turn anticlockwise: red to bottom-left, green to top-left
                    XCTAssertEqual([img.width, img.height], [32, 64], what)
                    assertColour(img, k.bl.0, k.bl.1, Self.red, what)
                    assertColour(img, k.tl.0, k.tl.1, Self.green, what)
                    assertColour(img, k.br.0, k.br.1, Self.blue, what)
                    assertColour(img, k.tr.0, k.tr.1, Self.white, what)
                }
            }
        }
    }

    func testEveryOrientationWrittenByLibexifMatchesTheDefinition() throws {
        // Decoding is deterministic, so a tagged file must load as exactly the untagged pixels,
        // turned by the reference above: every pixel checked, not only the corners.
        let stored = quadrants(40, 24)
        let plain = try Image.load(try jpeg(stored, "plain.jpg"))
        for bigEndian in [true, false] {
            for o in 1...8 {
                let segment = try Image.exifOrientationSegment(o, bigEndian: bigEndian)
                XCTAssertEqual(Array(segment[4..<10]), Array("Exif".utf8) + [0, 0], "libexif's segment starts with the EXIF header")
                let path = try jpeg(stored, "lib\(o)\(bigEndian).jpg", segment: segment)
                XCTAssertEqual(try Image.load(path), reference(plain, o), "orientation \(o), big-endian \(bigEndian)")
            }
        }
        XCTAssertThrowsError(try Image.exifOrientationSegment(9))
    }

    func testOrientationIsAppliedToScaledGreyAndCMYKPictures() throws {
        let stored = gradient(1024, 768)
        let plainPath = try jpeg(stored, "g-plain.jpg")
        let turnedPath = try jpeg(stored, "g-six.jpg", segment: handMadeSegment(6))
        let small = try Image.load(turnedPath, maxSide: 200)
        XCTAssertEqual([small.width, small.height], [192, 256], "1/4 of 768x1024 once turned")
        XCTAssertEqual(small, reference(try Image.load(plainPath, maxSide: 200), 6))
        let grey = quadrants(48, 16).grayscale()
        for o in [2, 5, 7] {
            let path = try jpeg(grey, "grey\(o).jpg", segment: handMadeSegment(o))
            let img = try Image.load(path)
            XCTAssertEqual(img.channels, 1)
            XCTAssertEqual(img, reference(try Image.load(try jpeg(grey, "grey-plain.jpg")), o), "grey, orientation \(o)")
        }
        // CMYK (Adobe, inverted): converted to RGB, then turned. Flat 200s give C*K/255 = 157.
        let cmykPath = testTemp("cmyk.jpg")
        let (cw, ch) = (24, 16)
        let cmyk = (0..<(cw * ch * 4)).map { i in UInt8(i / 4 % cw < cw / 2 ? 200 : 120) }
        try Image.writeCMYKJPEG(cmykPath, width: cw, height: ch, cmyk: cmyk)
        let cmykPlain = try Image.load(cmykPath)
        XCTAssertEqual([cmykPlain.width, cmykPlain.height, cmykPlain.channels], [cw, ch, 3])
        assertColour(cmykPlain, 2, 2, [157, 157, 157], "CMYK converted")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: cmykPath)))
        for o in [3, 6] {
            let path = testTemp("cmyk\(o).jpg")
            try Data(Array(bytes[0..<2]) + handMadeSegment(o) + Array(bytes[2...])).write(to: URL(fileURLWithPath: path))
            XCTAssertEqual(try Image.load(path), reference(cmykPlain, o), "CMYK, orientation \(o)")
        }
    }

    func testMissingOrBrokenEXIFLoadsAsStored() throws {
        let stored = quadrants()
        let plain = try Image.load(try jpeg(stored, "noexif.jpg"))
        XCTAssertEqual([plain.width, plain.height], [64, 32])
        let exif = Array("Exif".utf8) + [0, 0]
        var broken: [(String, [UInt8])] = [
            ("header only", app1(exif)),
            ("not EXIF (XMP)", app1(Array("http://ns.adobe.com/xap/1.0/\u{0}<x:xmpmeta/>".utf8))),
            ("garbage TIFF", app1(exif + [0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 0x01, 0x02])),
            ("IFD offset past the end", app1(exif + [0x49, 0x49, 0x2A, 0x00, 0xF0, 0xFF, 0xFF, 0x7F])),
            ("65535 entries, none there", app1(exif + [0x49, 0x49, 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, 0xFF, 0xFF])),
            ("orientation 9", handMadeSegment(9)),
            ("orientation 0", handMadeSegment(0)),
            ("orientation 40000", handMadeSegment(40000)),
        ]
        // Orientation 6 stored as a LONG: the wrong type for the tag, so it is not trusted.
        var long = handMadeSegment(6)
        long[4 + 6 + 8 + 2 + 2] = 0x04                              // type LONG, not SHORT
        broken.append(("orientation as LONG", long))
        var cut = handMadeSegment(6)
        cut.removeLast(10)                                          // the entry runs off the block
        cut[2] = UInt8((cut.count - 2) >> 8); cut[3] = UInt8((cut.count - 2) & 0xFF)
        broken.append(("truncated entry", cut))
        var rng = SystemRandomNumberGenerator()
        broken.append(("random bytes", app1(exif + (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) })))
        for (i, (what, segment)) in broken.enumerated() {
            let path = try jpeg(stored, "broken\(i).jpg", segment: segment)
            XCTAssertEqual(try Image.load(path), plain, what)
            XCTAssertEqual(try Image.load(path, maxSide: 16), try Image.load(try jpeg(stored, "noexif.jpg"), maxSide: 16), what)
        }
    }

    func testMaxSideDecodesAtTheLargestDCTReductionThatKeepsTheLongerSide() throws {
        let stored = gradient(1024, 768)
        let path = try jpeg(stored, "big.jpg", quality: 90)
        let full = try Image.load(path)
        XCTAssertEqual([full.width, full.height], [1024, 768])
        // Longer side 1024: 1/8 gives 128, 1/4 256, 1/2 512, 1 1024; the largest d with 1024/d >= maxSide.
        let expected: [(Int, [Int])] = [
            (1, [128, 96]), (96, [128, 96]), (128, [128, 96]), (129, [256, 192]), (200, [256, 192]),
            (256, [256, 192]), (257, [512, 384]), (500, [512, 384]), (512, [512, 384]),
            (513, [1024, 768]), (600, [1024, 768]), (1024, [1024, 768]), (5000, [1024, 768]),
        ]
        for (side, size) in expected {
            let img = try Image.load(path, maxSide: side)
            XCTAssertEqual([img.width, img.height], size, "maxSide \(side)")
        }
        XCTAssertEqual(try Image.load(path, maxSide: 600), full, "no reduction: the same as a full load")
        // The reduced decode is the same picture, only smaller.
        let quarter = try Image.load(path, maxSide: 200)
        let shrunk = full.resized(width: 256, height: 192)
        let meanDiff = Double(zip(quarter.pixels, shrunk.pixels).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(quarter.pixels.count)
        XCTAssertLessThan(meanDiff, 3, "1/4 DCT decode vs area-resized full decode")
        // Sides not divisible by 8 round up, as libjpeg does: 1001x750 at 1/8 is 126x94.
        let odd = try jpeg(gradient(1001, 750), "odd.jpg")
        XCTAssertEqual([try Image.load(odd, maxSide: 126).width, try Image.load(odd, maxSide: 126).height], [126, 94])
        XCTAssertEqual(try Image.load(odd, maxSide: 127).width, 251)
        // Other formats load whole; a side that is not positive is an error naming the file.
        let png = testTemp("big.png")
        try gradient(300, 200).savePNG(png)
        XCTAssertEqual(try Image.load(png, maxSide: 50), try Image.load(png))
        XCTAssertThrowsError(try Image.load(path, maxSide: 0)) { XCTAssert("\($0)".contains(path) && "\($0)".contains("maxSide"), "\($0)") }
    }

    /// The offset of the first SOFn's height field (FF C0/C1/C2, then length, precision, height, width).
    func sofSizeOffset(_ bytes: [UInt8]) -> Int? {
        var i = 2
        while i + 9 < bytes.count {
            guard bytes[i] == 0xFF else { return nil }
            let marker = bytes[i + 1], len = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            if marker == 0xC0 || marker == 0xC1 || marker == 0xC2 { return i + 5 }
            i += 2 + len
        }
        return nil
    }

    func testAHostileJPEGHeaderIsRefusedBeforeAllocating() throws {
        let path = try jpeg(quadrants(), "hostile.jpg")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let at = try XCTUnwrap(sofSizeOffset(bytes), "SOF marker")
        XCTAssertEqual(Array(bytes[at..<(at + 4)]), [0, 32, 0, 64], "height 32, width 64 where expected")
        bytes.replaceSubrange(at..<(at + 4), with: [0xFD, 0xE8, 0xFD, 0xE8])   // 65000 x 65000
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Image.load(path)) {
            let m = "\($0)"
            XCTAssert(m.contains(path) && m.contains("65000x65000") && m.contains("limit of \(Image.maxPixels / 1_000_000) megapixels"), m)
        }
        // At 1/8 the claim is 8125x8125 (66 megapixels), still over the default limit of 50.
        let start = Date()
        XCTAssertThrowsError(try Image.load(path, maxSide: 640)) { XCTAssert("\($0)".contains(path) && "\($0)".contains("JPEG"), "\($0)") }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "a truncated file stops at its first warning")
        XCTAssertEqual(Image.maxPixels, 50_000_000)   // the default (docs/LIMITS.md)
    }

    func testAHostilePNGOrNetpbmHeaderIsRefused() throws {
        let path = testTemp("hostile.png")
        try quadrants().savePNG(path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // IHDR follows the 8-byte signature: length, "IHDR", width, height, ..., CRC over type + data.
        XCTAssertEqual(Array(bytes[12..<16]), Array("IHDR".utf8))
        bytes.replaceSubrange(16..<24, with: [0, 0, 0xFD, 0xE8, 0, 0, 0xFD, 0xE8])
        let crc = crc32(Array(bytes[12..<29]))
        bytes.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Image.load(path)) {
            XCTAssert("\($0)".contains(path) && "\($0)".contains("limit of \(Image.maxPixels / 1_000_000) megapixels"), "\($0)")
        }
        let pgm = testTemp("hostile.pgm")
        FileManager.default.createFile(atPath: pgm, contents: Data("P5 65000 65000 255\n".utf8) + Data([1, 2, 3]))
        XCTAssertThrowsError(try Image.load(pgm)) {
            XCTAssert("\($0)".contains(pgm) && "\($0)".contains("limit of \(Image.maxPixels / 1_000_000) megapixels"), "\($0)")
        }
    }

    // MARK: WebP and HEIC (libwebp and libheif; the files are written by their encoders here)

    func testWebPLoadsItsPixels() throws {
        // Lossless: exactly the pixels, RGB and RGBA; grey is stored as RGB.
        let stored = quadrants(40, 24)
        let path = testTemp("q.webp")
        try stored.writeWebP(path)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path)).prefix(4)), Array("RIFF".utf8))
        XCTAssert(try Image.load(path) == stored, "lossless RGB WebP")
        // (libwebp keeps the colour of fully transparent pixels only when asked, so alpha > 0.)
        var rgba = [UInt8]()
        for i in 0..<(stored.width * stored.height) { rgba += stored.pixels[(i * 3)..<(i * 3 + 3)] + [UInt8(1 + i % 255)] }
        let withAlpha = Image(width: stored.width, height: stored.height, channels: 4, pixels: rgba)
        try withAlpha.writeWebP(path)
        XCTAssert(try Image.load(path) == withAlpha, "lossless RGBA WebP")
        try stored.grayscale().writeWebP(path)
        XCTAssert(try Image.load(path) == stored.grayscale().rgb(), "lossless grey WebP")
        // Lossy: the same size, and close to the pixels.
        let smooth = gradient(96, 64)
        try smooth.writeWebP(path, quality: 90)
        let lossy = try Image.load(path)
        XCTAssertEqual([lossy.width, lossy.height, lossy.channels], [96, 64, 3])
        let meanError = Double(zip(lossy.pixels, smooth.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +)) / Double(smooth.pixels.count)
        XCTAssertLessThan(meanError, 4, "mean absolute error of lossy WebP at quality 90")
        XCTAssertGreaterThan(meanError, 0, "lossy, so not the same bits")
        // The reduced-size entry point loads it whole, as PNG.
        XCTAssert(try Image.load(path, maxSide: 16) == lossy, "maxSide loads a WebP whole")
    }

    func testHEICLoadsUprightInEveryOrientation() throws {
        // A phone stores a photo taken sideways as the sensor saw it, with a rotation (irot) and
        // mirroring (imir) for showing it; libheif applies them. Each file holds the same stored
        // pixels (the encoder is deterministic), so each must load as the plain file's pixels
        // turned by the EXIF definition (`reference`), every pixel checked.
        let stored = quadrants(64, 32)
        let plainPath = testTemp("plain.heic")
        try stored.writeHEIC(plainPath)
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: plainPath))[4..<8]), Array("ftyp".utf8))
        let plain = try Image.load(plainPath)
        XCTAssertEqual([plain.width, plain.height, plain.channels], [64, 32, 3])
        assertColour(plain, 8, 8, Self.red, "HEIC top-left")
        assertColour(plain, 56, 8, Self.green, "HEIC top-right")
        assertColour(plain, 8, 24, Self.blue, "HEIC bottom-left")
        assertColour(plain, 56, 24, Self.white, "HEIC bottom-right")
        for o in 2...8 {
            let path = testTemp("turned\(o).heic")
            try stored.writeHEIC(path, orientation: o)
            XCTAssert(try Image.load(path) == reference(plain, o), "HEIC orientation \(o)")
        }
    }

    func testImageFoldersReadWebPAndHEIC() throws {
        // A folder of classes as phones and browsers leave them: JPEG, WebP and HEIC side by side
        // (names in any case), each read as the picture it holds.
        let root = testTemp("mixed-folder")
        try? FileManager.default.removeItem(atPath: root)
        for cls in ["a", "b"] { try FileManager.default.createDirectory(atPath: root + "/" + cls, withIntermediateDirectories: true) }
        let pic = quadrants(32, 32)
        try pic.saveJPEG(root + "/a/1.jpg")
        try pic.writeWebP(root + "/a/2.WEBP")
        try pic.writeHEIC(root + "/b/1.heic")
        try pic.writeWebP(root + "/b/2.webp")
        let files = try ImageFolder.files(root)
        XCTAssertEqual(files.map { ($0.path as NSString).lastPathComponent }, ["1.jpg", "2.WEBP", "1.heic", "2.webp"])
        let set = try ImageFolder.load(root, channels: 3)
        XCTAssertEqual([set.count, set.classNames.count], [4, 2])
        XCTAssertEqual(set.labels, [0, 0, 1, 1])
        // A folder given where photos are expected stands for its photos (not sub-folders or
        // other files), sorted; a file stays as given; a folder with none is an error naming it.
        try FileManager.default.createDirectory(atPath: root + "/a/sub", withIntermediateDirectories: true)
        try pic.saveJPEG(root + "/a/sub/3.jpg")
        try pic.saveJPEG(root + "/a/10.jpg")
        _ = FileManager.default.createFile(atPath: root + "/a/notes.txt", contents: Data("x".utf8))
        XCTAssertEqual(try ImageFolder.expanding([root + "/b/1.heic", root + "/a"]),
                       [root + "/b/1.heic", root + "/a/1.jpg", root + "/a/2.WEBP", root + "/a/10.jpg"])
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        XCTAssertThrowsError(try ImageFolder.expanding([root + "/empty"])) {
            XCTAssert("\($0)".contains(root + "/empty") && "\($0)".contains("no files to read") && "\($0)".contains(".heic"), "\($0)")
        }
        try FileManager.default.removeItem(atPath: root + "/a/sub")
        try FileManager.default.removeItem(atPath: root + "/a/10.jpg")
        try FileManager.default.removeItem(atPath: root + "/a/notes.txt")
        try FileManager.default.removeItem(atPath: root + "/empty")
        // The lossless WebP is exactly the picture (kept as [C, H, W] planes).
        let planes = (0..<3).flatMap { c in (0..<(32 * 32)).map { pic.pixels[$0 * 3 + c] } }
        XCTAssert(Array(set.pixels[(32 * 32 * 3)..<(2 * 32 * 32 * 3)]) == planes, "2.WEBP read as its pixels")
    }

    /// A WebP of a VP8X chunk alone (30 bytes): a square canvas of `side`, and `flags` (0x02:
    /// animated).
    static func webpClaiming(side: Int, flags: UInt8 = 0) -> [UInt8] {
        let s = side - 1
        let chunk: [UInt8] = Array("VP8X".utf8) + [10, 0, 0, 0, flags, 0, 0, 0,
                                                   UInt8(s & 0xFF), UInt8(s >> 8 & 0xFF), UInt8(s >> 16), UInt8(s & 0xFF), UInt8(s >> 8 & 0xFF), UInt8(s >> 16)]
        let size = 4 + chunk.count
        return Array("RIFF".utf8) + [UInt8(size & 0xFF), UInt8(size >> 8), 0, 0] + Array("WEBP".utf8) + chunk
    }

    func testAHostileWebPHeaderOrABrokenHEICIsRefused() throws {
        // A VP8X header alone: canvas 16384 x 16384 (268 megapixels), refused from the header.
        let huge = testTemp("huge.webp")
        FileManager.default.createFile(atPath: huge, contents: Data(Self.webpClaiming(side: 16384)))
        XCTAssertThrowsError(try Image.load(huge)) {
            XCTAssert("\($0)".contains(huge) && "\($0)".contains("16384x16384") && "\($0)".contains("limit of \(Image.maxPixels / 1_000_000) megapixels"), "\($0)")
        }
        let animated = testTemp("animated.webp")
        FileManager.default.createFile(atPath: animated, contents: Data(Self.webpClaiming(side: 64, flags: 0x02)))
        XCTAssertThrowsError(try Image.load(animated)) { XCTAssert("\($0)".contains(animated) && "\($0)".contains("animated"), "\($0)") }
        // Truncated files: an error naming the file, not a partial picture.
        let webp = testTemp("cut.webp"), heic = testTemp("cut.heic")
        try gradient(64, 64).writeWebP(webp, quality: 80)
        try gradient(64, 64).writeHEIC(heic)
        for path in [webp, heic] {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try Image.load(path)) { XCTAssert("\($0)".contains(path), "\($0)") }
        }
        let junk = testTemp("junk.heic")
        FileManager.default.createFile(atPath: junk, contents: Data([0, 0, 0, 16] + Array("ftypheic".utf8) + [0, 0, 0, 0]))
        XCTAssertThrowsError(try Image.load(junk)) { XCTAssert("\($0)".contains(junk) && "\($0)".contains("HEIF"), "\($0)") }
    }

    /// A measurement, run by hand: `STRATA_PHOTO_BENCH=photo.jpg STRATA_PHOTO_BENCH_SIDE=640` (0
    /// for a full decode) under `/usr/bin/time -v` gives the wall time of one load and the
    /// process's peak RSS; `STRATA_PHOTO_BENCH_OUT=out.png` keeps the picture for comparison.
    func testBenchLoadingAPhoto() throws {
        let env = ProcessInfo.processInfo.environment
        guard let path = env["STRATA_PHOTO_BENCH"] else { throw XCTSkip("set STRATA_PHOTO_BENCH to a JPEG to measure") }
        let side = Int(env["STRATA_PHOTO_BENCH_SIDE"] ?? "0") ?? 0
        let start = DispatchTime.now().uptimeNanoseconds
        let img = side > 0 ? try Image.load(path, maxSide: side) : try Image.load(path)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        print("photo bench: \(path) maxSide \(side): \(img.width)x\(img.height)x\(img.channels) in \(String(format: "%.1f", ms)) ms")
        if let out = env["STRATA_PHOTO_BENCH_OUT"] { try img.savePNG(out) }
    }

    /// CRC-32 (ISO 3309, as PNG uses), bit by bit.
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }
}
