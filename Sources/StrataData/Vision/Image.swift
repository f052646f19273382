import CStrata
import CStrataIO
import Foundation
import StrataCore
import StrataNN

/// An 8-bit image, row-major, channels interleaved (grey = 1, RGB = 3, RGBA = 4).
///
/// ```swift
/// let img = try Image.load("shoe.jpg").grayscale().resized(width: 28, height: 28)
/// let x = img.tensor()                  // [1, 28, 28], values in [0, 1]
/// try img.savePNG("small.png")
/// ```
public struct Image: Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "Image: \(pixels.count) bytes for \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The most pixels `load` decodes: a file whose header claims more (after any DCT scaling)
    /// is refused with an error naming the file and this limit, before pixels are allocated.
    /// `InputLimits.current.maxImagePixels`: 50 megapixels unless `STRATA_MAX_IMAGE_PIXELS`
    /// says otherwise (docs/LIMITS.md).
    public static var maxPixels: Int { InputLimits.current.maxImagePixels }

    /// Decodes PNG (libpng), JPEG (libjpeg-turbo), WebP (libwebp), HEIC or AVIF (libheif) or
    /// PGM/PPM (P2, P3, P5, P6), chosen by the file's first bytes, not its name.
    ///
    /// A JPEG comes back the right way up: its EXIF Orientation tag (read with libexif) is
    /// applied as PIL's `ImageOps.exif_transpose` does (2 mirror, 3 half turn, 4 flip, 5
    /// transpose, 6 a quarter turn clockwise, 7 transverse, 8 a quarter turn anticlockwise), so
    /// a portrait phone photo stored landscape with tag 6 loads portrait. A file without EXIF, or
    /// with an EXIF block too broken to read, loads as stored. A HEIC (a phone's photo) or AVIF
    /// comes back upright too: libheif applies the file's rotation, mirroring and crop. Pictures
    /// over `maxPixels` are refused.
    public static func load(_ path: String) throws -> Image {
        try load(path, jpegLongSide: 0).image
    }

    /// `load(path)` for a caller that will shrink the picture until its longer side is `maxSide`
    /// (a face detector's input, a thumbnail): a JPEG is decoded at the smallest libjpeg DCT
    /// scale, 1/8, 1/4, 1/2 or 1, whose longer side is still at least `maxSide`, which is much
    /// faster and smaller than decoding a 12-megapixel photo whole.
    ///
    /// The rule, with `L` the longer side of the stored JPEG (the same before and after EXIF
    /// orientation, which is applied as in `load(path)`): the scale is 1/d for the largest d in
    /// {8, 4, 2} with `ceil(L / d) >= maxSide`, else 1; each side comes back as `ceil(side / d)`.
    /// So the result's longer side is at least `min(L, maxSide)`, and under `2 * maxSide` unless
    /// even 1/8 leaves it longer. A 1024x768 JPEG comes back 256x192 for `maxSide` 200 (1/4),
    /// 512x384 for 500 (1/2) and 1024x768 for 600 (1/2 would give 512, under 600). The caller
    /// resizes the rest of the way. Other formats load at full size, as `load(path)`.
    public static func load(_ path: String, maxSide: Int) throws -> Image {
        try loadReduced(path, maxSide: maxSide).image
    }

    /// `load(path, maxSide:)` and how many pixels of the stored photo each returned pixel stands
    /// for (1, 2, 4 or 8), so positions found in the small picture map back to the photo.
    ///
    /// ```swift
    /// let (small, scale) = try Image.loadReduced("phone.jpg", maxSide: 640)   // 1008x756, scale 4
    /// ```
    public static func loadReduced(_ path: String, maxSide: Int) throws -> (image: Image, scale: Int) {
        guard maxSide > 0 else { throw StrataError("\(path): maxSide must be positive, got \(maxSide)") }
        return try load(path, jpegLongSide: Int32(clamping: maxSide))
    }

    /// `load`, with a JPEG decoded at the DCT scale chosen for `jpegLongSide` (0: full size), and
    /// that scale's denominator (1 for other formats).
    private static func load(_ path: String, jpegLongSide: Int32) throws -> (image: Image, scale: Int) {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw StrataError("\(path): is a folder, not an image file")
        }
        guard let fh = FileHandle(forReadingAtPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw StrataError("\(path): \(exists ? "cannot be read (permission denied)" : "no such file")")
        }
        defer { try? fh.close() }
        // The throwing read: `readData(ofLength:)` traps on a read error.
        let head: [UInt8]
        do { head = [UInt8](try fh.read(upToCount: 12) ?? Data()) } catch {
            throw StrataError("\(path): cannot be read (\(error.localizedDescription))")
        }
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return (try decode(path, sio_png_decode), 1) }
        if head.starts(with: [0xFF, 0xD8, 0xFF]) {
            var denom: Int32 = 1
            let img = try decode(path) { sio_jpeg_decode_scaled($0, jpegLongSide, &denom, $1, $2, $3, $4, $5, $6) }
            return (img, Int(denom))
        }
        if head.count >= 2, head[0] == UInt8(ascii: "P"), [UInt8(ascii: "2"), UInt8(ascii: "3"), UInt8(ascii: "5"), UInt8(ascii: "6")].contains(head[1]) {
            return (try loadNetpbm(path), 1)
        }
        if head.count == 12, head.starts(with: Array("RIFF".utf8)), head[8...].elementsEqual("WEBP".utf8) {
            return (try decode(path, sio_webp_decode), 1)
        }
        // ISO base media files (HEIC, AVIF): a box of type ftyp first; libheif reads the brand.
        if head.count >= 8, head[4..<8].elementsEqual("ftyp".utf8) { return (try decode(path, sio_heif_decode), 1) }
        if head.isEmpty { throw StrataError("\(path): empty file, not an image") }
        throw StrataError("\(path): not a PNG, JPEG, WebP, HEIC/AVIF or PGM/PPM image")
    }

    private typealias Decoder = (UnsafePointer<CChar>?, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
                                 UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?,
                                 UnsafeMutablePointer<CChar>?, Int) -> Int32

    private static func decode(_ path: String, _ fn: Decoder) throws -> Image {
        var p: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
        var err = [CChar](repeating: 0, count: 512)
        if fn(path, &p, &w, &h, &c, &err, err.count) != 0 { throw StrataError("\(path): \(String(cString: err))") }
        defer { sio_free(p) }
        let n = Int(w) * Int(h) * Int(c)
        return Image(width: Int(w), height: Int(h), channels: Int(c), pixels: Array(UnsafeBufferPointer(start: p, count: n)))
    }

    /// A JPEG APP1 segment, written by libexif, whose IFD 0 holds EXIF Orientation `orientation`
    /// (1...8), big- or little-endian: inserted after a JPEG's first two bytes (SOI), it makes
    /// the file a phone's would be. For tests.
    static func exifOrientationSegment(_ orientation: Int, bigEndian: Bool = true) throws -> [UInt8] {
        var p: UnsafeMutablePointer<UInt8>?
        var len = 0
        var err = [CChar](repeating: 0, count: 512)
        if sio_exif_orientation_segment(Int32(clamping: orientation), bigEndian ? 1 : 0, &p, &len, &err, err.count) != 0 {
            throw StrataError("EXIF segment: \(String(cString: err))")
        }
        defer { sio_free(p) }
        return Array(UnsafeBufferPointer(start: p, count: len))
    }

    /// Netpbm grey (P2 text, P5 binary) and colour (P3, P6); 16-bit samples are scaled to 8 bits.
    static func loadNetpbm(_ path: String) throws -> Image {
        guard let data = FileManager.default.contents(atPath: path) else { throw StrataError("\(path): cannot be read") }
        let bytes = [UInt8](data)
        var pos = 2
        func token() throws -> Int {
            while pos < bytes.count {
                if bytes[pos] == UInt8(ascii: "#") { while pos < bytes.count && bytes[pos] != 10 { pos += 1 } } else if bytes[pos] <= 32 { pos += 1 } else { break }
            }
            var v = 0, digits = 0
            while pos < bytes.count, bytes[pos] >= 48, bytes[pos] <= 57 {
                v = v * 10 + Int(bytes[pos] - 48); pos += 1; digits += 1
                if v > 1 << 24 { throw StrataError("\(path): corrupt PGM/PPM header (number too large)") }
            }
            if digits == 0 { throw StrataError("\(path): corrupt or truncated PGM/PPM header") }
            return v
        }
        let kind = bytes[1]
        let channels = (kind == UInt8(ascii: "3") || kind == UInt8(ascii: "6")) ? 3 : 1
        let w = try token(), h = try token(), maxval = try token()
        guard w > 0, h > 0, maxval > 0, maxval < 65536 else { throw StrataError("\(path): bad PGM/PPM size \(w)x\(h) or maxval \(maxval)") }
        // w and h are at most 2^24 (token), so the products below cannot overflow.
        let limit = maxPixels
        guard w * h <= limit else {
            var words = [CChar](repeating: 0, count: 64)
            sio_pixels_text(&words, words.count, UInt64(limit))
            throw StrataError("\(path): PGM/PPM header claims \(w)x\(h) pixels, over the limit of \(String(cString: words)) (set STRATA_MAX_IMAGE_PIXELS to change it)")
        }
        let n = w * h * channels
        var out = [UInt8](repeating: 0, count: n)
        func scale(_ v: Int) -> UInt8 { UInt8(Swift.min(255, (v * 255 + maxval / 2) / maxval)) }
        if kind == UInt8(ascii: "5") || kind == UInt8(ascii: "6") {
            pos += 1   // exactly one whitespace byte after maxval
            let bps = maxval < 256 ? 1 : 2
            guard bytes.count - pos >= n * bps else {
                throw StrataError("\(path): truncated PGM/PPM data: \(w)x\(h) needs \(n * bps) bytes, found \(Swift.max(0, bytes.count - pos))")
            }
            for i in 0..<n {
                let v = bps == 1 ? Int(bytes[pos + i]) : Int(bytes[pos + 2 * i]) << 8 | Int(bytes[pos + 2 * i + 1])
                out[i] = maxval == 255 ? UInt8(v) : scale(v)
            }
        } else {
            for i in 0..<n {
                let v = try token()
                guard v <= maxval else { throw StrataError("\(path): PGM/PPM sample \(v) exceeds maxval \(maxval)") }
                out[i] = scale(v)
            }
        }
        return Image(width: w, height: h, channels: channels, pixels: out)
    }

    /// Writes a PNG (atomically: temporary file, then rename).
    public func savePNG(_ path: String) throws {
        try FileIO.writeAtomically(try Image.encoded(path) { out, len, err in
            pixels.withUnsafeBufferPointer { sio_png_encode($0.baseAddress, Int32(width), Int32(height), Int32(channels), out, len, err, 512) }
        }, to: path)
    }

    /// Writes a JPEG (grey or RGB).
    public func saveJPEG(_ path: String, quality: Int = 92) throws {
        let img = channels == 4 ? rgb() : self
        try FileIO.writeAtomically(try Image.encoded(path) { out, len, err in
            img.pixels.withUnsafeBufferPointer { sio_jpeg_encode($0.baseAddress, Int32(width), Int32(height), Int32(img.channels), Int32(quality), out, len, err, 512) }
        }, to: path)
    }

    /// Writes a CMYK JPEG from Adobe-style (inverted) CMYK samples, 4 per pixel: the kind of file
    /// some photo tools produce, for tests of the reader's conversion to RGB.
    static func writeCMYKJPEG(_ path: String, width: Int, height: Int, cmyk: [UInt8]) throws {
        precondition(cmyk.count == width * height * 4, "writeCMYKJPEG: \(cmyk.count) bytes for \(width)x\(height)x4")
        try FileIO.writeAtomically(try Image.encoded(path) { out, len, err in
            cmyk.withUnsafeBufferPointer { sio_jpeg_encode($0.baseAddress, Int32(width), Int32(height), 4, 95, out, len, err, 512) }
        }, to: path)
    }

    /// Writes a WebP: RGB or RGBA (grey as RGB), lossy at `quality` or lossless when nil. For
    /// tests of the reader.
    func writeWebP(_ path: String, quality: Int? = nil) throws {
        let img = channels == 1 ? rgb() : self
        try FileIO.writeAtomically(try Image.encoded(path) { out, len, err in
            img.pixels.withUnsafeBufferPointer { sio_webp_encode($0.baseAddress, Int32(width), Int32(height), Int32(img.channels), Int32(quality ?? -1), out, len, err, 512) }
        }, to: path)
    }

    /// Writes a HEIC (HEVC through libheif's x265) of the RGB pixels, to be shown in EXIF
    /// orientation `orientation` (1-8): the file stores them turned back, as a phone stores a
    /// photo taken sideways; `av1` writes an AVIF (AV1 through libaom) instead. For tests of the reader.
    func writeHEIC(_ path: String, quality: Int = 90, orientation: Int = 1, av1: Bool = false) throws {
        let img = rgb()
        var err = [CChar](repeating: 0, count: 512)
        let rc = img.pixels.withUnsafeBufferPointer {
            sio_heif_encode_file(path, $0.baseAddress, Int32(width), Int32(height), Int32(quality), Int32(orientation), av1 ? 1 : 0, &err, err.count)
        }
        if rc != 0 { throw StrataError("\(path): \(String(cString: err))") }
    }

    /// Writes a binary PGM (grey) or PPM (RGB).
    public func saveNetpbm(_ path: String) throws {
        let img = channels == 4 ? rgb() : self
        var data = Data("P\(img.channels == 1 ? 5 : 6)\n\(width) \(height)\n255\n".utf8)
        data.append(contentsOf: img.pixels)
        try FileIO.writeAtomically(data, to: path)
    }

    private typealias Encoder = (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>,
                                 UnsafeMutablePointer<CChar>) -> Int32

    /// The bytes of a file that a CStrataIO encoder makes; its error names `path`.
    private static func encoded(_ path: String, _ encode: Encoder) throws -> Data {
        var p: UnsafeMutablePointer<UInt8>?
        var len = 0
        var err = [CChar](repeating: 0, count: 512)
        let status = err.withUnsafeMutableBufferPointer { encode(&p, &len, $0.baseAddress!) }
        defer { sio_free(p) }
        guard status == 0, let p else { throw StrataError("\(path): \(String(cString: err))") }
        return Data(bytes: p, count: len)
    }

    /// Histogram equalisation of a grey image: grey levels remapped through their cumulative
    /// distribution, so every image spans the full range evenly (classical illumination
    /// normalisation for faces).
    public func equalized() -> Image {
        let g = grayscale()
        var hist = [Int](repeating: 0, count: 256)
        for v in g.pixels { hist[Int(v)] += 1 }
        var cdf = [Int](repeating: 0, count: 256)
        var acc = 0
        for i in 0..<256 { acc += hist[i]; cdf[i] = acc }
        let first = cdf.first { $0 > 0 } ?? 0, n = g.pixels.count
        let lut = (0..<256).map { i -> UInt8 in
            n == first ? UInt8(i) : UInt8(Swift.max(0, Swift.min(255, ((cdf[i] - first) * 255 + (n - first) / 2) / (n - first))))
        }
        return Image(width: width, height: height, channels: 1, pixels: g.pixels.map { lut[Int($0)] })
    }

    /// One channel, by ITU-R BT.601 luma weights.
    public func grayscale() -> Image {
        if channels == 1 { return self }
        var out = [UInt8](repeating: 0, count: width * height)
        for i in 0..<(width * height) {
            let r = Int(pixels[i * channels]), g = Int(pixels[i * channels + 1]), b = Int(pixels[i * channels + 2])
            out[i] = UInt8((299 * r + 587 * g + 114 * b + 500) / 1000)
        }
        return Image(width: width, height: height, channels: 1, pixels: out)
    }

    /// Three channels (grey is replicated, alpha dropped).
    public func rgb() -> Image {
        if channels == 3 { return self }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            for c in 0..<3 { out[i * 3 + c] = channels == 1 ? pixels[i] : pixels[i * channels + c] }
        }
        return Image(width: width, height: height, channels: 3, pixels: out)
    }

    /// Resamples to `width` x `height`: area averaging when shrinking (no aliasing), bilinear
    /// interpolation when enlarging; pixel centres are aligned as in PIL and OpenCV.
    public func resized(width nw: Int, height nh: Int) -> Image {
        if nw == width && nh == height { return self }
        precondition(nw > 0 && nh > 0, "resized: target size must be positive")
        precondition(width > 0 && height > 0, "resized: the image is empty (\(width)x\(height))")
        let tx = Image.resampleTaps(nw, width), ty = Image.resampleTaps(nh, height)
        var out = [UInt8](repeating: 0, count: nw * nh * channels)
        var row = [Double](repeating: 0, count: width * channels)
        pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                row.withUnsafeMutableBufferPointer { r in
                    sk_resample_u8(p.baseAddress, width, channels, o.baseAddress, nw, nh,
                                   tx.off, tx.idx, tx.wt, ty.off, ty.idx, ty.wt, r.baseAddress)
                }
            }
        }
        return Image(width: nw, height: nh, channels: channels, pixels: out)
    }

    /// One axis of `resized`, `src` pixels to `n`: output pixel o reads source pixels
    /// `idx[off[o] ..< off[o + 1]]` with weights `wt[same]`. Shrinking, o covers the source interval
    /// [o s, (o + 1) s), s = src / n, and each source pixel weighs its overlap with it (area
    /// averaging); growing, o interpolates between the two nearest source centres, edges repeated.
    static func resampleTaps(_ n: Int, _ src: Int) -> (off: [Int], idx: [Int], wt: [Double]) {
        let s = Double(src) / Double(n)
        var off = [0], idx: [Int] = [], wt: [Double] = []
        off.reserveCapacity(n + 1)
        for o in 0..<n {
            if s > 1 {
                let a = Double(o) * s, b = Double(o + 1) * s
                var i = Int(a.rounded(.down))
                while Double(i) < b && i < src {
                    let lo = Swift.max(a, Double(i)), hi = Swift.min(b, Double(i + 1))
                    if hi > lo { idx.append(i); wt.append((hi - lo) / s) }
                    i += 1
                }
            } else {
                let c = (Double(o) + 0.5) * s - 0.5
                let i0 = Int(c.rounded(.down)), f = c - Double(i0)
                idx.append(Swift.min(Swift.max(i0, 0), src - 1)); wt.append(1 - f)
                idx.append(Swift.min(Swift.max(i0 + 1, 0), src - 1)); wt.append(f)
            }
            off.append(idx.count)
        }
        return (off, idx, wt)
    }

    /// `[channels, height, width]` floats: `pixel * scale`.
    public func tensor(scale: Float = 1 / 255) -> Tensor {
        let t = Tensor(uninitializedShape: [channels, height, width])
        let hw = width * height
        for c in 0..<channels { for i in 0..<hw { t.data[c * hw + i] = Float(pixels[i * channels + c]) * scale } }
        return t
    }

    /// An image from a `[C, H, W]` (or `[H, W]`) tensor, mapping `[low, high]` to `[0, 255]`.
    public static func from(_ t: Tensor, low: Float = 0, high: Float = 1) -> Image {
        let (c, h, w) = t.rank == 2 ? (1, t.shape[0], t.shape[1]) : (t.shape[0], t.shape[1], t.shape[2])
        var px = [UInt8](repeating: 0, count: c * h * w)
        let v = t.scalars
        for ch in 0..<c { for i in 0..<(h * w) {
            let x = (v[ch * h * w + i] - low) / (high - low) * 255
            px[i * c + ch] = UInt8(Swift.min(255, Swift.max(0, x.rounded())))
        } }
        return Image(width: w, height: h, channels: c, pixels: px)
    }
}
