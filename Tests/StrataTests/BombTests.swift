import Foundation
import XCTest
@testable import StrataCore
@testable import StrataData

/// Issue 15's memory bombs: tiny files whose headers claim, or whose data inflates to, far more
/// than the input limits allow (docs/LIMITS.md). Each is refused with one line naming the file
/// and the limit, before the allocation it asks for: through the library, and through `strata`
/// for every command that reads that kind of file, measured under `/usr/bin/time` to stay under
/// 1 GiB of peak memory and 10 seconds.
final class BombTests: XCTestCase {
    // MARK: Running strata, measured

    struct Run {
        var status: Int32, out: String, err: String
        /// Peak resident memory in KiB (from /usr/bin/time), nil where that tool is missing.
        var peakKiB: Int?
        var seconds: Double
    }

    /// `strata args` with `env` added to the environment, under `/usr/bin/time -f %M` when it exists.
    func strata(_ args: [String], env: [String: String] = [:]) throws -> Run {
        guard FileManager.default.isExecutableFile(atPath: strataBinary) else {
            throw XCTSkip("\(strataBinary) is not built; run `swift build -c release` (make test does)")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        environment.merge(env) { $1 }
        let timeTool = "/usr/bin/time"
        let haveTime = FileManager.default.isExecutableFile(atPath: timeTool)
        let report = testTemp("bomb-time-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(atPath: report) }
        let start = Date()
        let r = haveTime
            ? try runProcess(URL(fileURLWithPath: timeTool), ["-f", "%M", "-o", report, strataBinary] + args, environment: environment)
            : try runProcess(URL(fileURLWithPath: strataBinary), args, environment: environment)
        let seconds = Date().timeIntervalSince(start)
        var peak: Int?
        if haveTime, let text = try? String(contentsOfFile: report, encoding: .utf8) {
            peak = text.split(separator: "\n").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.last
        }
        return Run(status: r.status, out: r.out, err: r.err, peakKiB: peak, seconds: seconds)
    }

    /// `strata args` exits 1 with an error line that names `file` and holds each of `words`,
    /// without a trap, under 1 GiB (or `maxMiB`) and 10 s.
    @discardableResult
    func assertRefused(_ args: [String], file: String, words: [String], env: [String: String] = [:], maxMiB: Int = 1024,
                       sourceFile: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let r = try strata(args, env: env)
        let what = "strata \(args.joined(separator: " ")): status \(r.status), \(r.err)"
        XCTAssertEqual(r.status, 1, what, file: sourceFile, line: line)
        // The first error line names the file and the problem (commands that read several files
        // add a count of those that failed).
        let message = r.err.split(separator: "\n").first { $0.hasPrefix("error:") }.map(String.init) ?? ""
        XCTAssertTrue(message.contains(file), what, file: sourceFile, line: line)
        for w in words { XCTAssertTrue(message.contains(w), "\(what) (wanted \"\(w)\")", file: sourceFile, line: line) }
        XCTAssertFalse(r.err.contains("Fatal error") || r.err.contains("Illegal instruction"), what, file: sourceFile, line: line)
        if let peak = r.peakKiB { XCTAssertLessThan(peak, maxMiB * 1024, "\(what): peak \(peak) KiB", file: sourceFile, line: line) }
        XCTAssertLessThan(r.seconds, 10, what, file: sourceFile, line: line)
        return r
    }

    var legacy: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/legacy").path }

    /// A face gallery with one person enrolled from a plain picture (no detection), for `identify`.
    func gallery() throws -> String {
        let g = testTemp("bomb-gallery.json")
        if FileManager.default.fileExists(atPath: g) { return g }
        let photo = testTemp("bomb-gallery-face.png")
        var rng = RandomGenerator(seed: 5)
        try Image(width: 64, height: 64, channels: 3, pixels: (0..<(64 * 64 * 3)).map { _ in UInt8(rng.nextInt(256)) }).savePNG(photo)
        let r = try strata(["faces", "enroll", "--no-detect", "--gallery", g, "--name", "A", photo])
        XCTAssertEqual(r.status, 0, r.err)
        return g
    }

    // MARK: Writing bombs

    /// A JPEG marker segment: 0xFF, marker, length (counting itself), payload.
    func segment(_ marker: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [0xFF, marker, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)] + payload
    }

    /// Entropy-coded bits, most significant first, 0xFF stuffed, the last byte padded with ones.
    func packBits(_ bits: [Bool]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bits.count {
            var b: UInt8 = 0
            for k in 0..<8 { b = b << 1 | (i + k < bits.count ? (bits[i + k] ? 1 : 0) : 1) }
            out.append(b)
            if b == 0xFF { out.append(0) }
            i += 8
        }
        return out
    }

    /// DHT payload: one Huffman code, "0" (one bit), for `symbol`.
    func oneCodeTable(_ tableClass: UInt8, _ symbol: UInt8) -> [UInt8] {
        [tableClass << 4] + [1] + [UInt8](repeating: 0, count: 15) + [symbol]
    }

    /// SOF payload: 8-bit samples, one grey component, no subsampling, quantisation table 0.
    func frame(width: Int, height: Int) -> [UInt8] {
        [8, UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF), 1, 1, 0x11, 0]
    }

    func scanHeader(_ ss: UInt8, _ se: UInt8) -> [UInt8] { segment(0xDA, [1, 1, 0x00, ss, se, 0]) }

    var quantTable: [UInt8] { segment(0xDB, [0] + [UInt8](repeating: 1, count: 64)) }

    /// A baseline grey JPEG whose header claims `width` x `height` but whose data is 64 blocks:
    /// a couple of hundred bytes.
    func claimingJPEG(width: Int, height: Int) -> [UInt8] {
        var out: [UInt8] = [0xFF, 0xD8] + quantTable + segment(0xC0, frame(width: width, height: height))
        out += segment(0xC4, oneCodeTable(0, 0x00) + oneCodeTable(1, 0x00))   // DC difference 0; end of block
        out += scanHeader(0, 63) + packBits([Bool](repeating: false, count: 2 * 64))
        return out + [0xFF, 0xD9]
    }

    /// A progressive `side` x `side` grey JPEG of zeros with `scans` scans: one DC scan, then AC
    /// scans (1-63) repeated, each a single end-of-band run over every block (symbol 0xk0 for a
    /// run of 2^k blocks). libjpeg accepts the repeats without a warning, so every scan is decoded
    /// unless a limit stops it. `side` / 8 squared must be a power of two up to 2^14.
    func progressiveJPEG(side: Int, scans: Int) -> [UInt8] {
        let blocks = (side / 8) * (side / 8)
        let k = blocks.trailingZeroBitCount
        precondition(side % 8 == 0 && blocks == 1 << k && k <= 14, "progressiveJPEG: \(side)")
        var out: [UInt8] = [0xFF, 0xD8] + quantTable + segment(0xC2, frame(width: side, height: side))
        out += segment(0xC4, oneCodeTable(0, 0x00) + oneCodeTable(1, UInt8(k << 4)))
        out += scanHeader(0, 0) + packBits([Bool](repeating: false, count: blocks))
        let ac = scanHeader(1, 63) + packBits([Bool](repeating: false, count: 1 + k))
        for _ in 1..<scans { out += ac }
        return out + [0xFF, 0xD9]
    }

    /// CRC-32 (ISO-HDLC, as PNG uses), bit by bit.
    func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }

    /// A small real PNG whose IHDR is rewritten to claim `width` x `height` (CRC fixed up).
    func claimingPNG(width: Int, height: Int, at path: String) throws {
        try Image(width: 16, height: 16, channels: 1, pixels: [UInt8](repeating: 7, count: 256)).savePNG(path)
        var b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(b[12..<16]), Array("IHDR".utf8))
        b.replaceSubrange(16..<24, with: be32(width) + be32(height))
        b.replaceSubrange(29..<33, with: be32(Int(crc32(Array(b[12..<29])))))
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// One gzip member of `count` zero bytes, made by the system's gzip (members concatenate:
    /// zlib reads them as one stream).
    func gzipZeros(_ count: Int, name: String) throws -> [UInt8] {
        let p = testTemp(name)
        try writeGzip([UInt8](repeating: 0, count: count), to: p)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
    }

    /// A gzip file whose first member holds `header` and whose `mib` further members hold 1 MiB of
    /// zeros each: a few KB per inflated MiB.
    func gzipBomb(header: [UInt8], mib: Int, at path: String) throws {
        let head = testTemp("bomb-head.gz")
        try writeGzip(header, to: head)
        let zeros = try gzipZeros(1 << 20, name: "bomb-1mib.gz")
        var out = [UInt8](try Data(contentsOf: URL(fileURLWithPath: head)))
        out.reserveCapacity(out.count + zeros.count * mib)
        for _ in 0..<mib { out += zeros }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    /// A mono 16-bit PCM WAV at `rate` Hz whose data chunk declares `declared` bytes and holds
    /// `samples` samples of silence.
    func wav(rate: Int, declared: Int, samples: Int) -> [UInt8] {
        func le32(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24 & 0xFF)] }
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        let fmt = le16(1) + le16(1) + le32(rate) + le32(rate * 2 & 0xFFFF_FFFF) + le16(2) + le16(16)
        let body = Array("WAVEfmt ".utf8) + le32(16) + fmt + Array("data".utf8) + le32(declared) + [UInt8](repeating: 0, count: 2 * samples)
        return Array("RIFF".utf8) + le32(body.count) + body
    }

    func write(_ bytes: [UInt8], _ name: String) -> String {
        let p = testTemp(name)
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    // MARK: JPEG

    func testAJPEGClaiming65500SquaredIsRefusedByEveryCommand() throws {
        let bomb = write(claimingJPEG(width: 65500, height: 65500), "bomb-65500.jpg")
        XCTAssertLessThan(try Data(contentsOf: URL(fileURLWithPath: bomb)).count, 1000)
        XCTAssertEqual(Image.maxPixels, InputLimits.current.maxImagePixels)
        let limit = "limit of \(Image.maxPixels / 1_000_000) megapixels"
        XCTAssertThrowsError(try Image.load(bomb)) {
            XCTAssertTrue("\($0)".contains(bomb) && "\($0)".contains("65500x65500") && "\($0)".contains(limit) && "\($0)".contains("STRATA_MAX_IMAGE_PIXELS"), "\($0)")
        }
        // At 1/8 the claim is 8188x8188 (67 megapixels): still over the limit, refused before the
        // 200 MB of pixels it would take are allocated.
        XCTAssertThrowsError(try Image.load(bomb, maxSide: 640)) {
            XCTAssertTrue("\($0)".contains(bomb) && "\($0)".contains("8188x8188") && "\($0)".contains("after DCT scaling"), "\($0)")
        }
        let words = ["65500x65500", "STRATA_MAX_IMAGE_PIXELS"], scaled = ["8188x8188", "STRATA_MAX_IMAGE_PIXELS"]
        let model = legacy + "/fashion-mlp.safetensors"
        try assertRefused(["predict", "--model", model, bomb], file: bomb, words: words)
        try assertRefused(["inspect", "--model", model, "--image", bomb, "--out", testTemp("bomb-report")], file: bomb, words: words)
        try assertRefused(["faces", "detect", bomb], file: bomb, words: scaled)
        try assertRefused(["faces", "verify", bomb, bomb], file: bomb, words: scaled)
        try assertRefused(["faces", "verify", "--no-detect", bomb, bomb], file: bomb, words: words)
        try assertRefused(["faces", "enroll", "--gallery", testTemp("bomb-g-enroll.json"), "--name", "B", bomb], file: bomb, words: scaled)
        try assertRefused(["faces", "identify", "--gallery", try gallery(), bomb], file: bomb, words: scaled)
        XCTAssertFalse(FileManager.default.fileExists(atPath: testTemp("bomb-g-enroll.json")))
    }

    func testAProgressiveJPEGWithThousandsOfScansIsRefusedQuickly() throws {
        // The same kind of file with few scans is a valid picture: mid-grey (all coefficients 0).
        let fine = write(progressiveJPEG(side: 256, scans: 10), "scans-10.jpg")
        let img = try Image.load(fine)
        XCTAssertEqual([img.width, img.height, img.channels], [256, 256, 1])
        XCTAssertEqual(Set(img.pixels), [128])

        let bomb = write(progressiveJPEG(side: 256, scans: 10_000), "scans-10000.jpg")
        let limit = InputLimits.current.maxJPEGScans
        let start = Date()
        XCTAssertThrowsError(try Image.load(bomb)) {
            XCTAssertTrue("\($0)".contains(bomb) && "\($0)".contains("more than \(limit) scans") && "\($0)".contains("STRATA_MAX_JPEG_SCANS"), "\($0)")
        }
        XCTAssertThrowsError(try Image.load(bomb, maxSide: 64)) { XCTAssertTrue("\($0)".contains("more than \(limit) scans"), "\($0)") }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)

        let words = ["more than \(limit) scans"]
        try assertRefused(["predict", "--model", legacy + "/fashion-mlp.safetensors", bomb], file: bomb, words: words)
        try assertRefused(["faces", "detect", bomb], file: bomb, words: words)
        try assertRefused(["faces", "verify", bomb, fine], file: bomb, words: words)
        // The limit is the environment's to change: 5 scans refuses the 10-scan picture.
        try assertRefused(["predict", "--model", legacy + "/fashion-mlp.safetensors", fine], file: fine, words: ["more than 5 scans"],
                          env: ["STRATA_MAX_JPEG_SCANS": "5"])
    }

    // MARK: PNG

    func testAPNGOverThePixelLimitIsRefusedByEveryCommand() throws {
        let bomb = testTemp("bomb-20000.png")
        try claimingPNG(width: 20000, height: 20000, at: bomb)
        XCTAssertThrowsError(try Image.load(bomb)) {
            XCTAssertTrue("\($0)".contains(bomb) && "\($0)".contains("20000x20000") && "\($0)".contains("STRATA_MAX_IMAGE_PIXELS"), "\($0)")
        }
        let words = ["20000x20000", "STRATA_MAX_IMAGE_PIXELS"]
        let model = legacy + "/fashion-mlp.safetensors"
        try assertRefused(["predict", "--model", model, bomb], file: bomb, words: words)
        try assertRefused(["inspect", "--model", model, "--image", bomb, "--out", testTemp("bomb-report-png")], file: bomb, words: words)
        try assertRefused(["faces", "detect", bomb], file: bomb, words: words)
        try assertRefused(["faces", "verify", bomb, bomb], file: bomb, words: words)
        try assertRefused(["faces", "enroll", "--gallery", testTemp("bomb-g-enroll-png.json"), "--name", "B", bomb], file: bomb, words: words)
        try assertRefused(["faces", "identify", "--gallery", try gallery(), bomb], file: bomb, words: words)

        // A folder of images per class (evaluate and inspect --data) with the bomb among them.
        let folder = testTemp("bomb-folder")
        try writePeopleFolder(folder, people: 2, photos: 6, width: 28, height: 28, channels: 1, seed: 3) { p, _, k, rng in UInt8((p * 90 + k + rng.nextInt(9)) % 256) }
        let inFolder = folder + "/p0/zz-bomb.png"
        try FileManager.default.copyItem(atPath: bomb, toPath: inFolder)
        try assertRefused(["evaluate", "--model", model, "--data", folder], file: inFolder, words: words)
        try assertRefused(["inspect", "--model", model, "--data", folder, "--out", testTemp("bomb-report-folder")], file: inFolder, words: words)

        // Within the limit, the low-level libpng reader gives the layouts the simplified one did.
        let rgba = testTemp("layout-rgba.png"), grey = testTemp("layout-grey.png")
        let px: [UInt8] = [10, 20, 30, 255, 40, 50, 60, 128]
        try Image(width: 2, height: 1, channels: 4, pixels: px).savePNG(rgba)
        XCTAssertEqual(try Image.load(rgba), Image(width: 2, height: 1, channels: 4, pixels: px))
        try Image(width: 3, height: 1, channels: 1, pixels: [0, 128, 255]).savePNG(grey)
        XCTAssertEqual(try Image.load(grey), Image(width: 3, height: 1, channels: 1, pixels: [0, 128, 255]))
    }

    func testWebPAndHEICClaimingHugePicturesAreRefusedByEveryCommand() throws {
        // A WebP of a VP8X header alone (30 bytes), and a real HEIC whose ispe property (the
        // picture's size) is rewritten to 60000x60000.
        let webp = write(PhotoReadingTests.webpClaiming(side: 16384), "bomb-16384.webp")
        let heic = testTemp("bomb-60000.heic")
        try Image(width: 64, height: 64, channels: 3, pixels: [UInt8](repeating: 120, count: 64 * 64 * 3)).writeHEIC(heic)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: heic)))
        let ispe = try XCTUnwrap((0..<(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == Array("ispe".utf8) }, "ispe box")
        XCTAssertEqual(Array(bytes[(ispe + 8)..<(ispe + 16)]), [0, 0, 0, 64, 0, 0, 0, 64], "64x64 after version and flags")
        bytes.replaceSubrange((ispe + 8)..<(ispe + 16), with: [0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60])
        try Data(bytes).write(to: URL(fileURLWithPath: heic))
        let model = legacy + "/fashion-mlp.safetensors"
        let folder = testTemp("bomb-folder-photos")
        try? FileManager.default.removeItem(atPath: folder)
        try writePeopleFolder(folder, people: 2, photos: 6, width: 28, height: 28, channels: 1, seed: 3) { p, _, k, rng in UInt8((p * 90 + k + rng.nextInt(9)) % 256) }
        for (bomb, words) in [(webp, ["16384x16384", "STRATA_MAX_IMAGE_PIXELS"]), (heic, ["60000x60000", "STRATA_MAX_IMAGE_PIXELS"])] {
            let name = (bomb as NSString).lastPathComponent
            try assertRefused(["predict", "--model", model, bomb], file: bomb, words: words)
            try assertRefused(["inspect", "--model", model, "--image", bomb, "--out", testTemp("bomb-report-" + name)], file: bomb, words: words)
            try assertRefused(["faces", "detect", bomb], file: bomb, words: words)
            try assertRefused(["faces", "verify", bomb, bomb], file: bomb, words: words)
            try assertRefused(["faces", "enroll", "--gallery", testTemp("bomb-g-" + name + ".json"), "--name", "B", bomb], file: bomb, words: words)
            try assertRefused(["faces", "identify", "--gallery", try gallery(), bomb], file: bomb, words: words)
            // Among a folder's photos (evaluate and inspect --data read .webp and .heic too).
            let inFolder = folder + "/p0/zz-" + name
            try FileManager.default.copyItem(atPath: bomb, toPath: inFolder)
            try assertRefused(["evaluate", "--model", model, "--data", folder], file: inFolder, words: words)
            try FileManager.default.removeItem(atPath: inFolder)
        }
    }

    /// A HEIF file of one HEVC item, box by box: its ispe says `side` x `side`, a clean-aperture
    /// (clap) crop shows only `crop` x `crop` of it, and the "coded" data is 16 zero bytes.
    func croppedHEIC(side: Int, crop: Int) -> [UInt8] {
        let ftyp = isoBox("ftyp", Array("heic".utf8) + be32(0) + Array("mif1heic".utf8))
        let hdlr = isoBox("hdlr", be32(0) + Array("pict".utf8) + [UInt8](repeating: 0, count: 13), full: true)
        let pitm = isoBox("pitm", be16(1), full: true)
        let iinf = isoBox("iinf", be16(1) + isoBox("infe", be16(1) + be16(0) + Array("hvc1".utf8) + [0], full: true, version: 2), full: true)
        let hvcC = isoBox("hvcC", [1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5D, 0xF0, 0x00, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0, 0x0F, 0])
        let ispe = isoBox("ispe", be32(side) + be32(side), full: true)
        let clap = isoBox("clap", be32(crop) + be32(1) + be32(crop) + be32(1) + be32(0) + be32(1) + be32(0) + be32(1))
        let iprp = isoBox("iprp", isoBox("ipco", hvcC + ispe + clap) + isoBox("ipma", be32(1) + be16(1) + [3, 0x81, 0x02, 0x83], full: true))
        let data = [UInt8](repeating: 0, count: 16)
        func meta(_ offset: Int) -> [UInt8] {
            isoBox("meta", hdlr + pitm + isoBox("iloc", [0x44, 0x00] + be16(1) + be16(1) + be16(0) + be16(1) + be32(offset) + be32(data.count), full: true) + iinf + iprp, full: true)
        }
        return ftyp + meta(ftyp.count + meta(0).count + 8) + isoBox("mdat", data)
    }

    func testAHEICWhoseCropHidesAHugePictureIsRefusedBeforeDecoding() throws {
        let bomb = write(croppedHEIC(side: 60000, crop: 64), "bomb-cropped.heic")
        XCTAssertThrowsError(try Image.load(bomb)) {
            XCTAssert("\($0)".contains(bomb) && "\($0)".contains("60000x60000") && "\($0)".contains("megapixels stored"), "\($0)")
        }
        // The same file with a stored picture within the limit gets past the size checks and
        // fails in decoding (it has no coded picture): so the refusal above is the size check's.
        let small = write(croppedHEIC(side: 128, crop: 64), "cropped-small.heic")
        XCTAssertThrowsError(try Image.load(small)) {
            XCTAssert("\($0)".contains(small) && "\($0)".contains("cannot decode") && !"\($0)".contains("limit"), "\($0)")
        }
        try assertRefused(["predict", "--model", legacy + "/fashion-mlp.safetensors", bomb], file: bomb, words: ["60000x60000", "megapixels stored", "STRATA_MAX_IMAGE_PIXELS"])
    }

    /// A HEIF file whose primary picture is a grid or an overlay (`iovl`) of two copies of the
    /// HEVC picture in `tile` (a file libheif wrote, of one picture), side by side on a canvas of
    /// `canvas`, which the derived item's own data declares (32-bit sides when `wide`); its ispe
    /// says `ispe`, by default the canvas. An AVIF tile (AV1, with an av1C property) makes AV1
    /// tiles. `extraParameters` is added to the tile's hvcC as one more parameter-set array (an
    /// SPS NAL unit), or to its av1C's configOBUs (an OBU); `inBandParameters` is put before the
    /// tile's coded data as it is.
    func derivedHEIC(tile: [UInt8], type: String, canvas: (Int, Int), wide: Bool = true, ispe: (Int, Int)? = nil,
                     extraParameters: [UInt8]? = nil, inBandParameters: [UInt8]? = nil) throws -> [UInt8] {
        func side(_ v: Int) -> [UInt8] { wide ? be32(v) : be16(v) }
        func find(_ kind: String) -> Int? {
            (4..<(tile.count - 4)).last { Array(tile[$0..<($0 + 4)]) == Array(kind.utf8) }
        }
        // The tile's hvcC or av1C property (with any parameter sets) and its coded data: libheif
        // writes one picture's file with the mdat box last.
        let av1 = find("av1C") != nil
        let h = try XCTUnwrap(find(av1 ? "av1C" : "hvcC")), m = try XCTUnwrap(find("mdat"))
        let hvcCSize = Int(tile[h - 4]) << 24 | Int(tile[h - 3]) << 16 | Int(tile[h - 2]) << 8 | Int(tile[h - 1])
        var hvcC = Array(tile[(h - 4)..<(h - 4 + hvcCSize)])
        var coded = Array(tile[(m + 4)...])
        XCTAssertEqual(Int(tile[m - 4]) << 24 | Int(tile[m - 3]) << 16 | Int(tile[m - 2]) << 8 | Int(tile[m - 1]), 8 + coded.count, "mdat is last")
        if let extra = extraParameters {
            if av1 {
                hvcC += extra
            } else {   // numOfArrays is the hvcC payload's byte 22
                hvcC[8 + 22] += 1
                hvcC += [0x21] + be16(1) + be16(extra.count) + extra
            }
            hvcC.replaceSubrange(0..<4, with: be32(hvcC.count))
        }
        if let extra = inBandParameters { coded = extra + coded }
        let derived: [UInt8] = type == "grid"
            ? [0, wide ? 1 : 0, 0, 1] + side(canvas.0) + side(canvas.1)   // 1 row, 2 columns
            : [0, wide ? 1 : 0] + be16(0) + be16(0) + be16(0) + be16(0xFFFF) + side(canvas.0) + side(canvas.1) + side(0) + side(0) + side(64) + side(0)
        let ftyp = isoBox("ftyp", Array("heic".utf8) + be32(0) + Array("mif1heic".utf8))
        let hdlr = isoBox("hdlr", be32(0) + Array("pict".utf8) + [UInt8](repeating: 0, count: 13), full: true)
        let pitm = isoBox("pitm", be16(3), full: true)
        let tileType = av1 ? "av01" : "hvc1"
        let infe = [(1, tileType), (2, tileType), (3, type)].map { isoBox("infe", be16($0.0) + be16(0) + Array($0.1.utf8) + [0], full: true, version: 2) }
        let iinf = isoBox("iinf", be16(3) + infe.joined(), full: true)
        let iref = isoBox("iref", isoBox("dimg", be16(3) + be16(2) + be16(1) + be16(2)), full: true)
        let ipco = isoBox("ipco", hvcC + isoBox("ispe", be32(64) + be32(64), full: true) + isoBox("ispe", be32((ispe ?? canvas).0) + be32((ispe ?? canvas).1), full: true))
        let ipma = isoBox("ipma", be32(3) + be16(1) + [2, 0x81, 0x02] + be16(2) + [2, 0x81, 0x02] + be16(3) + [1, 0x03], full: true)
        let idat = isoBox("idat", derived)
        func meta(_ offset: Int) -> [UInt8] {
            // iloc version 1: both tiles at the same coded data in the file, the derived item in idat.
            let items = [1, 2].map { be16($0) + be16(0) + be16(0) + be16(1) + be32(offset) + be32(coded.count) }.joined()
            let iloc = isoBox("iloc", [0x44, 0x00] + be16(3) + items + be16(3) + be16(1) + be16(0) + be16(1) + be32(0) + be32(derived.count), full: true, version: 1)
            return isoBox("meta", hdlr + pitm + iloc + iinf + iref + isoBox("iprp", ipco + ipma) + idat, full: true)
        }
        return ftyp + meta(ftyp.count + meta(0).count + 8) + isoBox("mdat", coded)
    }

    func testAHEICGridOrOverlayCanvasIsHeldToThePixelLimit() throws {
        // libheif 1.15 sizes a grid's or overlay's canvas from the item's own data and caps only
        // each side: a 349-byte file made it allocate 10 GB. The canvas is checked before libheif
        // reads the file.
        let tilePath = testTemp("derived-tile.heic")
        let pixels: [UInt8] = (0..<(64 * 64 * 3)).map { (i: Int) -> UInt8 in UInt8((i / 3 % 64) * 3 + (i / 192) % 7 * 10) }
        try Image(width: 64, height: 64, channels: 3, pixels: pixels).writeHEIC(tilePath)
        let tile = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tilePath)))
        let single = try Image.load(tilePath)
        // Legitimate grid and overlay pictures load: two copies of the tile side by side.
        for type in ["grid", "iovl"] {
            for wide in [false, true] {
                let path = write(try derivedHEIC(tile: tile, type: type, canvas: (128, 64), wide: wide), "derived-\(type)-\(wide).heic")
                let img = try Image.load(path)
                XCTAssertEqual([img.width, img.height, img.channels], [128, 64, 3], "\(type) wide \(wide)")
                for y in 0..<64 {
                    let row = Array(single.pixels[(y * 192)..<((y + 1) * 192)])
                    XCTAssertEqual(Array(img.pixels[(y * 384)..<(y * 384 + 192)]), row, "\(type) left, row \(y)")
                    XCTAssertEqual(Array(img.pixels[(y * 384 + 192)..<((y + 1) * 384)]), row, "\(type) right, row \(y)")
                }
            }
        }
        // The same files declaring a huge canvas (but a small ispe) are refused before decoding,
        // in 16- and 32-bit sides.
        for (type, note) in [("grid", "in its grid"), ("iovl", "on its overlay canvas")] {
            for (side, wide, claim) in [(60000, true, "3600 megapixels"), (65535, false, "4294.84 megapixels")] {
                let path = write(try derivedHEIC(tile: tile, type: type, canvas: (side, side), wide: wide, ispe: (128, 64)), "derived-bomb-\(type)-\(wide).heic")
                XCTAssertThrowsError(try Image.load(path)) {
                    XCTAssert("\($0)".contains(path) && "\($0)".contains("\(side)x\(side) pixels (\(claim) \(note))")
                              && "\($0)".contains("STRATA_MAX_IMAGE_PIXELS"), "\($0)")
                }
            }
            // A 200x100 canvas loads; with a 128x64 ispe it is refused over a limit of 19,999 pixels.
            let small = write(try derivedHEIC(tile: tile, type: type, canvas: (200, 100)), "derived-200-\(type).heic")
            XCTAssertEqual(try strata(["predict", "--model", legacy + "/fashion-mlp.safetensors", small]).status, 0)
            let hidden = write(try derivedHEIC(tile: tile, type: type, canvas: (200, 100), ispe: (128, 64)), "derived-200-hidden-\(type).heic")
            try assertRefused(["predict", "--model", legacy + "/fashion-mlp.safetensors", hidden], file: hidden,
                              words: ["200x100 pixels (20000 pixels \(note))", "limit of 19999 pixels"], env: ["STRATA_MAX_IMAGE_PIXELS": "19999"])
        }
        // A derived item whose data cannot be found, and a malformed iloc box, are refused by the walk.
        var lost = try derivedHEIC(tile: tile, type: "grid", canvas: (128, 64))
        let idat = try XCTUnwrap((0..<(lost.count - 4)).first { Array(lost[$0..<($0 + 4)]) == Array("idat".utf8) })
        lost.replaceSubrange(idat..<(idat + 4), with: Array("free".utf8))   // the grid's data box, renamed
        let lostPath = write(lost, "derived-lost.heic")
        XCTAssertThrowsError(try Image.load(lostPath)) { XCTAssert("\($0)".contains("cannot be read"), "\($0)") }
        var badILOC = try derivedHEIC(tile: tile, type: "grid", canvas: (128, 64))
        let iloc = try XCTUnwrap((0..<(badILOC.count - 4)).first { Array(badILOC[$0..<($0 + 4)]) == Array("iloc".utf8) })
        badILOC[iloc + 4] = 3   // no iloc version 3
        let badPath = write(badILOC, "derived-bad-iloc.heic")
        XCTAssertThrowsError(try Image.load(badPath)) { XCTAssert("\($0)".contains("iloc box is malformed"), "\($0)") }
    }

    /// An AV1 sequence header OBU (type 1, with its size) declaring frames of at most `width` x
    /// `height`: a reduced still-picture header, 16-bit size fields, nothing after them (AV1 5.5).
    static func av1SequenceHeaderOBU(width: Int, height: Int) -> [UInt8] {
        var bits: [UInt8] = []
        func put(_ v: Int, _ n: Int) { for i in stride(from: n - 1, through: 0, by: -1) { bits.append(UInt8(v >> i & 1)) } }
        put(0, 3); put(1, 1); put(1, 1); put(0, 5)      // profile 0, still picture, reduced header, level
        put(15, 4); put(15, 4); put(width - 1, 16); put(height - 1, 16)
        put(1, 1)                                       // trailing bits
        while bits.count % 8 != 0 { bits.append(0) }
        let payload = stride(from: 0, to: bits.count, by: 8).map { k in bits[k..<(k + 8)].reduce(UInt8(0)) { $0 << 1 | $1 } }
        return [0x0A, UInt8(payload.count)] + payload
    }

    /// An HEVC sequence parameter set NAL unit (type 33) declaring a `width` x `height` picture:
    /// one layer, Main profile, level 3.1, 4:2:0, and nothing after the size (H.265 7.3.2.2).
    static func spsNAL(width: Int, height: Int) -> [UInt8] {
        var bits: [UInt8] = []
        func put(_ v: Int, _ n: Int) { for i in stride(from: n - 1, through: 0, by: -1) { bits.append(UInt8(v >> i & 1)) } }
        func ue(_ v: Int) { let n = Int.bitWidth - (v + 1).leadingZeroBitCount; put(0, n - 1); put(v + 1, n) }
        put(0, 4); put(0, 3); put(1, 1)                    // VPS 0, one sub-layer, temporal id nesting
        put(1, 8); put(0x6000_0000, 32); put(0, 48); put(93, 8)   // profile, compatibility, flags, level
        ue(0); ue(1); ue(width); ue(height)                // SPS 0, 4:2:0, the size
        put(1, 1)                                          // stop bit
        while bits.count % 8 != 0 { bits.append(0) }
        var out: [UInt8] = [0x42, 0x01], zeros = 0
        for k in stride(from: 0, to: bits.count, by: 8) {
            let byte = bits[k..<(k + 8)].reduce(UInt8(0)) { $0 << 1 | $1 }
            if zeros >= 2 && byte <= 3 { out.append(3); zeros = 0 }   // emulation prevention
            out.append(byte)
            zeros = byte == 0 ? zeros + 1 : 0
        }
        return out
    }

    func testAnHEVCParameterSetDeclaringAHugePictureIsRefusedBeforeDecoding() throws {
        // libde265 allocates the picture a sequence parameter set declares, whatever the ispe:
        // a 391-byte HEIC whose hvcC declared 16384x16384 cost 1.6 GB before it was refused.
        // Both places libheif hands libde265 parameter sets from are checked.
        let tilePath = testTemp("sps-tile.heic")
        try Image(width: 64, height: 64, channels: 3, pixels: [UInt8](repeating: 100, count: 64 * 64 * 3)).writeHEIC(tilePath)
        let tile = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tilePath)))
        try assertParameterSizesChecked(tile: tile, name: "sps", property: "hvcC", claim: "HEVC header claims", note: "in a sequence parameter set",
                                        extra: { Self.spsNAL(width: $0, height: $1) },
                                        inBand: { let sps = Self.spsNAL(width: $0, height: $1); return be32(sps.count) + sps })
    }

    /// A parameter-set check (HEVC SPS or AV1 sequence header) from both places libheif hands the
    /// decoder parameters from, on grids of two copies of `tile`: in `property` (`extra` makes
    /// what is added there) and before the coded data (`inBand`). 16384x16384 is refused
    /// in-process; 200x100 is refused over a limit of 19,999 pixels through `strata predict`, and
    /// not for its size under the default. The tile's own encoder's parameters are read right:
    /// with its ispe rewritten to 32x32, a limit of 4,000 refuses it for its 64x64.
    func assertParameterSizesChecked(tile: [UInt8], name: String, property: String, claim: String, note: String,
                                     extra: (Int, Int) -> [UInt8], inBand: (Int, Int) -> [UInt8]) throws {
        let model = legacy + "/fashion-mlp.safetensors"
        for place in [property, "in-band"] {
            func file(_ w: Int, _ h: Int) throws -> [UInt8] {
                try derivedHEIC(tile: tile, type: "grid", canvas: (128, 64), extraParameters: place == property ? extra(w, h) : nil,
                                inBandParameters: place == property ? nil : inBand(w, h))
            }
            let huge = write(try file(16384, 16384), "\(name)-huge-\(place).heic")
            XCTAssertThrowsError(try Image.load(huge)) {
                XCTAssert("\($0)".contains(huge) && "\($0)".contains("\(claim) 16384x16384 pixels (268.44 megapixels \(note))"), "\($0)")
            }
            let small = write(try file(200, 100), "\(name)-small-\(place).heic")
            try assertRefused(["predict", "--model", model, small], file: small,
                              words: ["\(claim) 200x100 pixels (20000 pixels \(note))", "limit of 19999 pixels"], env: ["STRATA_MAX_IMAGE_PIXELS": "19999"])
            let r = try strata(["predict", "--model", model, small])
            XCTAssertFalse(r.err.contains(note), r.err)
        }
        var shrunk = tile
        let ispe = try XCTUnwrap((0..<(shrunk.count - 4)).first { Array(shrunk[$0..<($0 + 4)]) == Array("ispe".utf8) })
        XCTAssertEqual(Array(shrunk[(ispe + 8)..<(ispe + 16)]), [0, 0, 0, 64, 0, 0, 0, 64])
        shrunk.replaceSubrange((ispe + 8)..<(ispe + 16), with: [0, 0, 0, 32, 0, 0, 0, 32])
        let shrunkPath = write(shrunk, "\(name)-ispe-32.heic")
        try assertRefused(["predict", "--model", model, shrunkPath], file: shrunkPath,
                          words: ["\(claim) 64x64 pixels (4096 pixels \(note))"], env: ["STRATA_MAX_IMAGE_PIXELS": "4000"])
    }

    func testAnAV1SequenceHeaderDeclaringAHugePictureIsRefusedBeforeDecoding() throws {
        // AVIF's counterpart: dav1d allocates the frames a sequence header allows. An AVIF made by
        // libheif (libaom) from a 64x64 picture whose sequence header was rewritten to 6000x6000
        // took 140 MiB before it failed to decode; over the limit it is now refused unread.
        let tilePath = testTemp("av1-tile.avif")
        try Image(width: 64, height: 64, channels: 3, pixels: [UInt8](repeating: 100, count: 64 * 64 * 3)).writeHEIC(tilePath, quality: 80, av1: true)
        let tile = [UInt8](try Data(contentsOf: URL(fileURLWithPath: tilePath)))
        XCTAssertEqual(Array(tile[4..<12]), Array("ftypavif".utf8))
        let plain = try Image.load(tilePath)   // an AVIF reads as its pixels (lossy: within a few levels)
        XCTAssertEqual([plain.width, plain.height, plain.channels], [64, 64, 3])
        XCTAssertLessThan(plain.pixels.map { abs(Int($0) - 100) }.max()!, 4)
        let grid = try Image.load(write(try derivedHEIC(tile: tile, type: "grid", canvas: (128, 64)), "av1-grid.heic"))
        XCTAssertEqual([grid.width, grid.height], [128, 64], "a grid of two AV1 tiles")
        // libaom's own header is among the item's OBUs (its av1C has no configOBUs).
        try assertParameterSizesChecked(tile: tile, name: "av1", property: "av1C", claim: "AV1 header claims", note: "in a sequence header",
                                        extra: { Self.av1SequenceHeaderOBU(width: $0, height: $1) },
                                        inBand: { Self.av1SequenceHeaderOBU(width: $0, height: $1) })
    }

    func testThePixelLimitComesFromTheEnvironmentAndBindsLibpngsSideLimit() throws {
        let model = legacy + "/fashion-mlp.safetensors"
        let square = testTemp("px-40x40.png"), wide = testTemp("px-2000x1.png")
        try Image(width: 40, height: 40, channels: 1, pixels: [UInt8](repeating: 90, count: 1600)).savePNG(square)
        try Image(width: 2000, height: 1, channels: 1, pixels: [UInt8](repeating: 90, count: 2000)).savePNG(wide)
        XCTAssertEqual(try strata(["predict", "--model", model, square]).status, 0)
        // 1600 pixels over a limit of 1000: refused after the header; 2000 wide: libpng's own
        // png_set_user_limits refuses the side while reading IHDR.
        let env = ["STRATA_MAX_IMAGE_PIXELS": "1000"]
        try assertRefused(["predict", "--model", model, square], file: square, words: ["40x40", "1600 pixels", "limit of 1000 pixels", "STRATA_MAX_IMAGE_PIXELS"], env: env)
        try assertRefused(["predict", "--model", model, wide], file: wide, words: ["width exceeds user limit", "at most 1000 a side"], env: env)
        // A JPEG and a PGM read the same variable.
        let jpeg = testTemp("px-40x40.jpg"), pgm = testTemp("px-40x40.pgm")
        try Image(width: 40, height: 40, channels: 1, pixels: [UInt8](repeating: 90, count: 1600)).saveJPEG(jpeg)
        try Image(width: 40, height: 40, channels: 1, pixels: [UInt8](repeating: 90, count: 1600)).saveNetpbm(pgm)
        try assertRefused(["predict", "--model", model, jpeg], file: jpeg, words: ["40x40", "STRATA_MAX_IMAGE_PIXELS"], env: env)
        try assertRefused(["predict", "--model", model, pgm], file: pgm, words: ["40x40", "STRATA_MAX_IMAGE_PIXELS"], env: env)
        // WebP and HEIC too; a HEIC's stored size (ispe) is read from its boxes before libheif reads them.
        let pic = Image(width: 40, height: 40, channels: 3, pixels: [UInt8](repeating: 90, count: 4800))
        let webp = testTemp("px-40x40.webp"), heic = testTemp("px-40x40.heic"), wideHEIC = testTemp("px-2000x16.heic")
        try pic.writeWebP(webp)
        try pic.writeHEIC(heic)
        try Image(width: 2000, height: 16, channels: 3, pixels: [UInt8](repeating: 90, count: 96_000)).writeHEIC(wideHEIC)
        XCTAssertEqual(try strata(["predict", "--model", model, webp, heic, wideHEIC]).status, 0)
        try assertRefused(["predict", "--model", model, webp], file: webp, words: ["40x40", "STRATA_MAX_IMAGE_PIXELS"], env: env)
        try assertRefused(["predict", "--model", model, heic], file: heic, words: ["40x40", "STRATA_MAX_IMAGE_PIXELS"], env: env)
        try assertRefused(["predict", "--model", model, wideHEIC], file: wideHEIC, words: ["2000x64 pixels (128000 pixels stored)", "STRATA_MAX_IMAGE_PIXELS"], env: env)
        // A value that is not a number is named and ignored: the default applies.
        let r = try strata(["predict", "--model", model, square], env: ["STRATA_MAX_IMAGE_PIXELS": "lots"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.err.contains("ignoring STRATA_MAX_IMAGE_PIXELS=lots"), r.err)
    }

    // MARK: gzip and IDX

    func testAGzipIDXBombIsRefusedFromItsHeader() throws {
        let dir = testTemp("bomb-idx")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // 2,097,152 x 28 x 28: the data is 1568 MiB, and the file inflates to all of it.
        let count = 2_097_152
        let header = idxBytes([count, 28, 28], [])
        for split in ["train", "t10k"] {
            try gzipBomb(header: header, mib: 1568, at: dir + "/\(split)-images-idx3-ubyte.gz")
            _ = FileManager.default.createFile(atPath: dir + "/\(split)-labels-idx1-ubyte", contents: Data(idxBytes([3], [1, 2, 3])))
        }
        let bomb = dir + "/t10k-images-idx3-ubyte.gz"
        XCTAssertLessThan(try Data(contentsOf: URL(fileURLWithPath: bomb)).count, 4 << 20)
        let limitMiB = InputLimits.current.maxDecompressedMiB
        let start = Date()
        XCTAssertThrowsError(try IDXArray(path: bomb)) {
            XCTAssertTrue("\($0)".contains(bomb) && "\($0)".contains("[2097152, 28, 28]") && "\($0)".contains("over the limit of \(limitMiB) MiB")
                          && "\($0)".contains("STRATA_MAX_DECOMPRESSED_MB"), "\($0)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1, "refused from the header, before inflating")
        let words = ["[2097152, 28, 28]", "STRATA_MAX_DECOMPRESSED_MB"]
        let model = legacy + "/fashion-mlp.safetensors"
        try assertRefused(["evaluate", "--model", model, "--data", "mnist", "--data-dir", dir], file: bomb, words: words)
        try assertRefused(["inspect", "--model", model, "--data", "mnist", "--data-dir", dir, "--out", testTemp("bomb-report-idx")],
                          file: dir + "/", words: words + ["-images-idx3-ubyte.gz"])
        try assertRefused(["train", "--data", "mnist", "--data-dir", dir, "--epochs", "1", "--out", testTemp("bomb-idx-model.safetensors")],
                          file: dir + "/train-images-idx3-ubyte.gz", words: words)
    }

    func testAnIDXWhoseDataOutgrowsItsHeaderIsReadNoFurtherThanTheHeaderSays() throws {
        let dir = testTemp("bomb-idx-tail")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Labels claim 3 entries, then 600 MiB of zeros follow.
        let labels = dir + "/t10k-labels-idx1-ubyte.gz"
        try gzipBomb(header: idxBytes([3], [1, 2, 3]), mib: 600, at: labels)
        _ = FileManager.default.createFile(atPath: dir + "/t10k-images-idx3-ubyte", contents: Data(idxBytes([3, 28, 28], [UInt8](repeating: 5, count: 3 * 784))))
        XCTAssertThrowsError(try IDXArray(path: labels)) {
            XCTAssertTrue("\($0)".contains(labels) && "\($0)".contains("needs 3 bytes of data, and more follow"), "\($0)")
        }
        let r = try assertRefused(["evaluate", "--model", legacy + "/fashion-mlp.safetensors", "--data", "mnist", "--data-dir", dir],
                                  file: labels, words: ["more follow"], maxMiB: 200)
        XCTAssertLessThan(r.seconds, 3, "only 4 bytes past the header are inflated")
        // The limit is the environment's to change: 1 MiB refuses a real 2.1 MB IDX file.
        let big = dir + "/big-idx3-ubyte"
        _ = FileManager.default.createFile(atPath: big, contents: Data(idxBytes([2700, 28, 28], [UInt8](repeating: 1, count: 2700 * 784))))
        XCTAssertEqual(try IDXArray(path: big).shape, [2700, 28, 28])
        let low = dir + "/t10k-images-idx3-ubyte"
        try FileManager.default.removeItem(atPath: low)
        try FileManager.default.copyItem(atPath: big, toPath: low)
        try assertRefused(["evaluate", "--model", legacy + "/fashion-mlp.safetensors", "--data", "mnist", "--data-dir", dir], file: low,
                          words: ["[2700, 28, 28]", "over the limit of 1 MiB"], env: ["STRATA_MAX_DECOMPRESSED_MB": "1"])
        // A header under the limit but data far shorter: memory follows the data, not the claim.
        _ = FileManager.default.createFile(atPath: low, contents: Data(idxBytes([240_000, 28, 28], [1, 2, 3])))
        try assertRefused(["evaluate", "--model", legacy + "/fashion-mlp.safetensors", "--data", "mnist", "--data-dir", dir], file: low,
                          words: ["truncated IDX file", "needs 188160000 bytes of data, found 3"], maxMiB: 100)
        // The general reader stops one byte past its limit and names the variable.
        XCTAssertThrowsError(try FileIO.readMaybeGzip(labels, maxBytes: 1 << 20)) {
            XCTAssertTrue("\($0)".contains(labels) && "\($0)".contains("more than 1 MiB") && "\($0)".contains("STRATA_MAX_DECOMPRESSED_MB"), "\($0)")
        }
    }

    // MARK: WAV

    func testWAVBombsAreRefusedBeforeTheirSamplesAreRead() throws {
        let model = legacy + "/audio-cnn.safetensors"
        let huge = write(wav(rate: 8000, declared: 0xFFFF_FFF0, samples: 512), "bomb-huge-chunk.wav")
        let slow = write(wav(rate: 1, declared: 800_000, samples: 400_000), "bomb-1hz.wav")
        XCTAssertThrowsError(try Audio.loadWAV(huge)) {
            XCTAssertTrue("\($0)".contains(huge) && "\($0)".contains("declares 4294967280 bytes but only 1024 follow"), "\($0)")
        }
        // 400,000 samples at 1 Hz would be 3.2 billion samples at the model's 8 kHz.
        XCTAssertThrowsError(try Audio.loadWAV(slow)) { XCTAssertTrue("\($0)".contains(slow) && "\($0)".contains("sample rate 1 Hz"), "\($0)") }
        XCTAssertThrowsError(try Audio.decodeWAV([UInt8](try Data(contentsOf: URL(fileURLWithPath: slow))), name: "x.wav")) {
            XCTAssertTrue("\($0)".contains("x.wav") && "\($0)".contains("sample rate 1 Hz"), "\($0)")
        }
        for (bomb, words) in [(huge, ["declares 4294967280 bytes"]), (slow, ["sample rate 1 Hz"])] {
            try assertRefused(["predict", "--model", model, bomb], file: bomb, words: words)
            try assertRefused(["inspect", "--model", model, "--wav", bomb, "--out", testTemp("bomb-report-wav")], file: bomb, words: words)
        }
        // fsdd training reads a folder of recordings.
        let dir = testTemp("bomb-fsdd")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/recordings", withIntermediateDirectories: true)
        for d in 0..<2 {
            for i in 0..<3 {
                try Audio(samples: (0..<2000).map { Float(0.3 * sin(Double($0) * Double(d + 1) / 5)) }, sampleRate: 8000).saveWAV(dir + "/recordings/\(d)_t_\(i).wav")
            }
        }
        let inFolder = dir + "/recordings/1_t_9.wav"
        try FileManager.default.copyItem(atPath: slow, toPath: inFolder)
        try assertRefused(["train", "--data", "fsdd", "--data-dir", dir, "--epochs", "1", "--out", testTemp("bomb-fsdd.safetensors")],
                          file: inFolder, words: ["sample rate 1 Hz"])
    }

    func testTheLongestRecordingComesFromTheEnvironment() throws {
        let model = legacy + "/audio-cnn.safetensors"
        let twoSeconds = testTemp("two-seconds.wav")
        try Audio(samples: (0..<16000).map { Float(0.3 * sin(Double($0) / 7)) }, sampleRate: 8000).saveWAV(twoSeconds)
        XCTAssertEqual(try strata(["predict", "--model", model, twoSeconds]).status, 0)
        try assertRefused(["predict", "--model", model, twoSeconds], file: twoSeconds, words: ["16000 samples at 8000 Hz", "limit of 1 s", "STRATA_MAX_AUDIO_SECONDS"],
                          env: ["STRATA_MAX_AUDIO_SECONDS": "1"])
        XCTAssertEqual(Audio.sampleRates, 1000...768_000)
        XCTAssertThrowsError(try Audio.decodeWAV(wav(rate: 999, declared: 4000, samples: 2000), name: "low.wav")) { XCTAssertTrue("\($0)".contains("999 Hz"), "\($0)") }
        XCTAssertNoThrow(try Audio.decodeWAV(wav(rate: 1000, declared: 4000, samples: 2000), name: "ok.wav"))
    }
}

// Big-endian fields (PNG's, HEIF's) and ISO base media boxes (32-bit size, type, then version and
// flags for a full box), for the files the tests build.
private func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
private func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
private func isoBox(_ kind: String, _ payload: [UInt8], full: Bool = false, version: UInt8 = 0) -> [UInt8] {
    let body = (full ? [version, 0, 0, 0] : []) + payload
    return be32(8 + body.count) + Array(kind.utf8) + body
}
