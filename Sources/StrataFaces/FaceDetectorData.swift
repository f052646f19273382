import Foundation
import StrataCore
import StrataNN
import StrataData

/// A rectangle in pixels (regions to ignore).
public struct PixelRect: Codable, Equatable {
    public var x: Double, y: Double, w: Double, h: Double
    public init(x: Double, y: Double, w: Double, h: Double) { (self.x, self.y, self.w, self.h) = (x, y, w, h) }
    func contains(_ px: Double, _ py: Double) -> Bool { px >= x && px < x + w && py >= y && py < y + h }
    /// Share of `b`'s area inside this rectangle.
    func covers(_ b: FaceBox) -> Double {
        let iw = Swift.min(x + w, b.x + b.side) - Swift.max(x, b.x), ih = Swift.min(y + h, b.y + b.side) - Swift.max(y, b.y)
        return iw > 0 && ih > 0 ? iw * ih / (b.side * b.side) : 0
    }
}

/// A picture made for detector training or checking, with where its faces are.
public struct ComposedPicture {
    public var image: Image
    /// Every face in the picture (LFW boxes).
    public var faces: [FaceBox]
    /// Where unlabelled faces may be (the borders of whole LFW photos): detections there neither count nor cost.
    public var ignore: [PixelRect]
    /// For each face, the LFW photo it came from (index into `DetectionSources.photos`).
    public var photoIndices: [Int]
}

/// What detector pictures are composed from: LFW photos (whose face box is known, `LFWFaceBox`)
/// and photographs without faces (Debian's `plasma-workspace-wallpapers`).
public struct DetectionSources {
    public var photos: [Image]
    public var photoPaths: [String]
    public var backgrounds: [Image]

    /// The JPEG and PNG scenes of `root` (one, the smallest of at least 1,000 px, per wallpaper).
    public static func wallpaperFiles(root: String = "/usr/share/wallpapers") -> [String] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root) else { return [] }
        return names.sorted().compactMap { name -> String? in
            let dir = "\(root)/\(name)/contents"
            var files: [(String, Int)] = []
            for sub in ["images", "images_dark"] {
                for f in (try? fm.contentsOfDirectory(atPath: "\(dir)/\(sub)")) ?? [] where f.hasSuffix(".jpg") || f.hasSuffix(".png") {
                    let dims = f.dropLast(4).split(separator: "x").compactMap { Int($0) }
                    if dims.count == 2, dims.min()! >= 1000 { files.append(("\(dir)/\(sub)/\(f)", dims[0] * dims[1])) }
                }
                if !files.isEmpty { break }
            }
            return files.min { $0.1 < $1.1 }?.0
        }
    }

    /// LFW photos of `people` under `folder` (`folder/name/*.jpg`) and the backgrounds in
    /// `backgroundFiles`, scaled so their shorter side is 480 px.
    public static func load(lfw folder: String, people: [String], backgroundFiles: [String]) throws -> DetectionSources {
        let fm = FileManager.default
        var paths: [String] = []
        for name in people.sorted() {
            let dir = (folder as NSString).appendingPathComponent(name)
            for f in try fm.contentsOfDirectory(atPath: dir).sorted() where f.hasSuffix(".jpg") { paths.append("\(dir)/\(f)") }
        }
        guard !paths.isEmpty else { throw StrataError("\(folder): no LFW photos (name/name_0001.jpg) for the detector") }
        guard !backgroundFiles.isEmpty else {
            throw StrataError("no background photographs: install Debian's plasma-workspace-wallpapers (apt-get install plasma-workspace-wallpapers)")
        }
        let photos = try paths.map { p -> Image in
            let img = try Image.load(p)
            return img.channels == 3 ? img : img.rgb()
        }
        let backgrounds = try backgroundFiles.map { p -> Image in
            var img = try Image.load(p, maxSide: 1200)
            if img.channels != 3 { img = img.rgb() }
            let k = 480.0 / Double(Swift.min(img.width, img.height))
            return img.resized(width: Swift.max(1, Int(Double(img.width) * k)), height: Swift.max(1, Int(Double(img.height) * k)))
        }
        return DetectionSources(photos: photos, photoPaths: paths, backgrounds: backgrounds)
    }
}

/// Composes seeded detector pictures: faces cut from LFW photos with random, irregular margins
/// (so there is no pasted square's edge to find), scaled from `minFace` to most of the picture,
/// with blur, noise and colour changes, on face-free photographs or LFW shoulders, with non-face
/// patches cut the same way; or an LFW photo itself, zoomed, whose border (where other, unlabelled
/// people stand) is marked as a region to ignore.
public struct DetectionComposer {
    public let sources: DetectionSources
    public var width: Int, height: Int
    public var minFace: Double, maxFace: Double
    /// Share of pictures that are a zoomed LFW photo, and that hold no face.
    public var lfwPhotoShare = 0.2, emptyShare = 0.1
    /// Whether pasted faces get colour changes and blur (training); off, they keep their photo's look.
    public var photometric = true
    /// Margins around a cut face, per side, in face box sides.
    public var faceMargins: ClosedRange<Double> = 0.05...0.42

    public init(sources: DetectionSources, width: Int, height: Int, minFace: Double = 12, maxFace: Double? = nil) {
        self.sources = sources
        (self.width, self.height, self.minFace) = (width, height, minFace)
        self.maxFace = maxFace ?? 0.85 * Double(Swift.min(width, height))
    }

    /// One picture, drawn from `rng`. `photoSubset`, when given, lists the photos faces may come from.
    public func compose(_ rng: inout RandomGenerator, photoSubset: [Int]? = nil) -> ComposedPicture {
        let pick: (inout RandomGenerator) -> Int = { r in photoSubset.map { $0[r.nextInt($0.count)] } ?? r.nextInt(sources.photos.count) }
        let u = Double(rng.nextFloat())
        var pic: ComposedPicture
        if u < lfwPhotoShare {
            pic = lfwPhotoPicture(&rng, photo: pick(&rng))
        } else {
            pic = ComposedPicture(image: background(&rng), faces: [], ignore: [], photoIndices: [])
            if rng.nextFloat() < 0.5 {
                for _ in 0..<(1 + rng.nextInt(3)) { pasteDistractor(&pic.image, &rng) }
            }
            if u >= lfwPhotoShare + emptyShare {
                let n = [1, 1, 1, 2, 2, 3, 4, 5][rng.nextInt(8)]
                for _ in 0..<n { pasteFace(&pic, &rng, photo: pick(&rng)) }
            }
        }
        finish(&pic.image, &rng)
        return pic
    }

    func logUniform(_ rng: inout RandomGenerator, _ lo: Double, _ hi: Double) -> Double {
        Foundation.exp(Foundation.log(lo) + Double(rng.nextFloat()) * (Foundation.log(hi) - Foundation.log(lo)))
    }

    /// A face-free scene: a random part of a background photograph (80 %) or the shoulders
    /// below an LFW face (20 %), enlarged to the picture.
    func background(_ rng: inout RandomGenerator) -> Image {
        let aspect = Double(width) / Double(height)
        if rng.nextFloat() < 0.8 {
            let bg = sources.backgrounds[rng.nextInt(sources.backgrounds.count)]
            let maxW = Swift.min(Double(bg.width), Double(bg.height) * aspect)
            let w = maxW * (0.2 + 0.8 * Double(rng.nextFloat())), h = w / aspect
            let x = Double(rng.nextFloat()) * (Double(bg.width) - w), y = Double(rng.nextFloat()) * (Double(bg.height) - h)
            var img = bg.cropped(x: Int(x), y: Int(y), width: Swift.max(1, Int(w)), height: Swift.max(1, Int(h))).resized(width: width, height: height)
            if rng.nextFloat() < 0.5 { img = img.mirrored() }
            return img
        }
        let p = sources.photos[rng.nextInt(sources.photos.count)]
        let top = Int(Double(p.height) * 0.78), h = p.height - top
        let w = Swift.min(p.width, Int(Double(h) * aspect))
        return p.cropped(x: rng.nextInt(Swift.max(1, p.width - w + 1)), y: top, width: w, height: h).resized(width: width, height: height)
    }

    /// An LFW photo zoomed so its face is `minFace`...`maxFace` pixels and placed at random; the
    /// photo fills the picture (edges repeated). Everything farther than 0.85 face sides from the
    /// face centre is ignored: other people may stand there, unlabelled.
    func lfwPhotoPicture(_ rng: inout RandomGenerator, photo: Int) -> ComposedPicture {
        let p = sources.photos[photo]
        let box = LFWFaceBox.box(width: p.width, height: p.height)
        let s = logUniform(&rng, Swift.max(minFace, 24), maxFace)
        let k = s / box.side
        // Face box position in the picture, at least 85 % inside.
        let fx = -0.15 * s + Double(rng.nextFloat()) * (Double(width) - 0.7 * s)
        let fy = -0.15 * s + Double(rng.nextFloat()) * (Double(height) - 0.7 * s)
        // The picture is the photo's region [(fx' , fy') ...] scaled by k.
        let srcX = box.x - fx / k, srcY = box.y - fy / k
        let srcW = Double(width) / k, srcH = Double(height) / k
        var img = p.cropped(x: Int(srcX.rounded()), y: Int(srcY.rounded()), width: Swift.max(1, Int(srcW.rounded())), height: Swift.max(1, Int(srcH.rounded())))
            .resized(width: width, height: height)
        var face = FaceBox(x: fx, y: fy, side: s)
        if rng.nextFloat() < 0.5 {
            img = img.mirrored()
            face.x = Double(width) - fx - s
        }
        let cx = face.centerX, cy = face.centerY, r = 0.85 * s
        let W = Double(width), H = Double(height)
        let ignore = [PixelRect(x: 0, y: 0, w: W, h: Swift.max(0, cy - r)),
                      PixelRect(x: 0, y: cy + r, w: W, h: Swift.max(0, H - cy - r)),
                      PixelRect(x: 0, y: 0, w: Swift.max(0, cx - r), h: H),
                      PixelRect(x: cx + r, y: 0, w: Swift.max(0, W - cx - r), h: H)].filter { $0.w > 0 && $0.h > 0 }
        jitterColour(&img, &rng, strength: 0.6)
        return ComposedPicture(image: img, faces: [face], ignore: ignore, photoIndices: [photo])
    }

    /// Pastes a face cut from LFW photo `photo` with irregular margins, where it does not cover
    /// another face; gives up after a few tries.
    func pasteFace(_ pic: inout ComposedPicture, _ rng: inout RandomGenerator, photo: Int, sizeRange: (Double, Double)? = nil) {
        let p = sources.photos[photo]
        let box = LFWFaceBox.box(width: p.width, height: p.height)
        let s = sizeRange.map { logUniform(&rng, $0.0, $0.1) } ?? logUniform(&rng, minFace, Swift.max(minFace, maxFace / Double(pic.faces.count + 1).squareRoot()))
        let k = s / box.side
        // Margins around the face box, per side, as fractions of the box: at most 0.42, so the cut
        // stays within 1.84 box sides, where other people are rare in LFW (Tools/measure_lfw_box.py).
        let m = (0..<4).map { _ in faceMargins.lowerBound + (faceMargins.upperBound - faceMargins.lowerBound) * Double(rng.nextFloat()) }
        let cx0 = Swift.max(0, box.x - m[0] * box.side), cy0 = Swift.max(0, box.y - m[1] * box.side)
        let cx1 = Swift.min(Double(p.width), box.x + box.side * (1 + m[2])), cy1 = Swift.min(Double(p.height), box.y + box.side * (1 + m[3]))
        for _ in 0..<8 {
            let fx = -0.12 * s + Double(rng.nextFloat()) * (Double(width) - 0.76 * s)
            let fy = -0.12 * s + Double(rng.nextFloat()) * (Double(height) - 0.76 * s)
            let face = FaceBox(x: fx, y: fy, side: s)
            let grown = FaceBox(x: fx - 0.15 * s, y: fy - 0.15 * s, side: 1.3 * s)
            if pic.faces.contains(where: { $0.iou(grown) > 0 }) { continue }
            // The cut, scaled, lands at (fx - (box.x - cx0) k, ...).
            let dx = fx - (box.x - cx0) * k, dy = fy - (box.y - cy0) * k
            let outW = Swift.max(1, Int(((cx1 - cx0) * k).rounded())), outH = Swift.max(1, Int(((cy1 - cy0) * k).rounded()))
            var cut = p.cropped(x: Int(cx0.rounded()), y: Int(cy0.rounded()), width: Swift.max(1, Int((cx1 - cx0).rounded())),
                                height: Swift.max(1, Int((cy1 - cy0).rounded()))).resized(width: outW, height: outH)
            var placed = face
            if rng.nextFloat() < 0.5 {
                cut = cut.mirrored()
                // Mirroring the cut moves the box within it.
                placed.x = dx + Double(outW) - (fx - dx) - s
            }
            if photometric {
                jitterColour(&cut, &rng, strength: 1)
                if rng.nextFloat() < 0.3 { cut = cut.boxBlurred(radius: 1 + rng.nextInt(s > 40 ? 3 : 1)) }
            }
            paste(cut, into: &pic.image, x: Int(dx.rounded()), y: Int(dy.rounded()), rng: &rng)
            pic.faces.append(placed)
            pic.photoIndices.append(photo)
            return
        }
    }

    /// Pastes a non-face patch (a background piece or LFW shoulders), cut and masked like a face.
    func pasteDistractor(_ img: inout Image, _ rng: inout RandomGenerator) {
        let src: Image
        if rng.nextFloat() < 0.6 {
            src = sources.backgrounds[rng.nextInt(sources.backgrounds.count)]
        } else {
            let p = sources.photos[rng.nextInt(sources.photos.count)]
            src = p.cropped(x: 0, y: Int(Double(p.height) * 0.75), width: p.width, height: p.height - Int(Double(p.height) * 0.75))
        }
        let s = logUniform(&rng, minFace, maxFace)
        let side = Swift.max(4, Int(Double(Swift.min(src.width, src.height)) * (0.2 + 0.8 * Double(rng.nextFloat()))))
        let w = Int(Double(side) * (0.7 + 0.6 * Double(rng.nextFloat())))
        let piece = src.cropped(x: rng.nextInt(Swift.max(1, src.width - side)), y: rng.nextInt(Swift.max(1, src.height - side)),
                                width: Swift.max(1, Swift.min(w, src.width)), height: side)
        var cut = piece.resized(width: Swift.max(2, Int(s * 1.4 * Double(piece.width) / Double(side))), height: Swift.max(2, Int(s * 1.4)))
        jitterColour(&cut, &rng, strength: 1)
        paste(cut, into: &img, x: rng.nextInt(width) - cut.width / 2, y: rng.nextInt(height) - cut.height / 2, rng: &rng)
    }

    /// Alpha-blends `cut` into `img` at (x, y) through a random superellipse mask whose radius
    /// wobbles with the angle, feathered by 1-4 pixels.
    func paste(_ cut: Image, into img: inout Image, x: Int, y: Int, rng: inout RandomGenerator) {
        let p = 2 + 6 * Double(rng.nextFloat())
        let harmonics = (2...4).map { k in (k, 0.07 * Double(rng.nextFloat()), 6.283 * Double(rng.nextFloat())) }
        let feather = 1 + 3 * Double(rng.nextFloat())
        let hw = Double(cut.width) / 2, hh = Double(cut.height) / 2
        let W = img.width, H = img.height
        cut.pixels.withUnsafeBufferPointer { src in
            img.pixels.withUnsafeMutableBufferPointer { dst in
                for r in 0..<cut.height {
                    let py = y + r
                    guard py >= 0 && py < H else { continue }
                    let v = (Double(r) + 0.5 - hh) / hh
                    for c in 0..<cut.width {
                        let px = x + c
                        guard px >= 0 && px < W else { continue }
                        let u = (Double(c) + 0.5 - hw) / hw
                        let theta = Foundation.atan2(v, u)
                        var radius = 1.0
                        for (k, a, phase) in harmonics { radius -= a * (1 + Foundation.sin(Double(k) * theta + phase)) / 2 }
                        let d = Foundation.pow(Foundation.pow(Swift.abs(u), p) + Foundation.pow(Swift.abs(v), p), 1 / p) / radius
                        let alpha = Swift.min(1, Swift.max(0, (1 - d) * Swift.min(hw, hh) / feather))
                        guard alpha > 0 else { continue }
                        let s = (r * cut.width + c) * 3, o = (py * W + px) * 3
                        for k in 0..<3 {
                            dst[o + k] = UInt8((alpha * Double(src[s + k]) + (1 - alpha) * Double(dst[o + k])).rounded())
                        }
                    }
                }
            }
        }
    }

    /// Brightness, contrast and saturation changes, and sometimes grey.
    func jitterColour(_ img: inout Image, _ rng: inout RandomGenerator, strength: Float) {
        let b = (rng.nextFloat() - 0.5) * 80 * strength, c = 1 + (rng.nextFloat() - 0.5) * 0.8 * strength
        let grey = rng.nextFloat() < 0.1 * strength
        let sat: Float = grey ? 0 : 1 + (rng.nextFloat() - 0.5) * 0.8 * strength
        let tint = (0..<3).map { _ in 1 + (rng.nextFloat() - 0.5) * 0.2 * strength }
        img.pixels.withUnsafeMutableBufferPointer { px in
            for i in stride(from: 0, to: px.count, by: 3) {
                let y = 0.299 * Float(px[i]) + 0.587 * Float(px[i + 1]) + 0.114 * Float(px[i + 2])
                for k in 0..<3 {
                    let s = (y + (Float(px[i + k]) - y) * sat) * tint[k]
                    px[i + k] = UInt8(Swift.min(255, Swift.max(0, (s - 128) * c + 128 + b)))
                }
            }
        }
    }

    /// Picture-wide noise and blur, as cameras and compression leave them.
    func finish(_ img: inout Image, _ rng: inout RandomGenerator) {
        if rng.nextFloat() < 0.15 { img = img.boxBlurred(radius: 1) }
        if rng.nextFloat() < 0.4 {
            let sigma = 2 + 8 * rng.nextFloat()
            var r = RandomGenerator(seed: Int(rng.next() >> 1))
            img.pixels.withUnsafeMutableBufferPointer { px in
                for i in 0..<px.count { px[i] = UInt8(Swift.min(255, Swift.max(0, Float(px[i]) + sigma * r.nextNormal()))) }
            }
        }
        if rng.nextFloat() < 0.3, let j = try? img.jpegRoundTrip(quality: 20 + rng.nextInt(70)) { img = j }
    }
}

extension Image {
    /// Flipped left to right.
    public func mirrored() -> Image {
        var out = pixels
        let c = channels
        for r in 0..<height {
            for x in 0..<width {
                let s = (r * width + x) * c, d = (r * width + width - 1 - x) * c
                for k in 0..<c { out[d + k] = pixels[s + k] }
            }
        }
        return Image(width: width, height: height, channels: c, pixels: out)
    }

    /// Each pixel the mean of the (2 radius + 1)² square around it (edges repeated).
    public func boxBlurred(radius: Int) -> Image {
        guard radius > 0 else { return self }
        let c = channels, n = 2 * radius + 1
        var tmp = [Float](repeating: 0, count: pixels.count), out = pixels
        for r in 0..<height {
            for x in 0..<width {
                for k in 0..<c {
                    var s: Float = 0
                    for d in -radius...radius { s += Float(pixels[(r * width + Swift.min(width - 1, Swift.max(0, x + d))) * c + k]) }
                    tmp[(r * width + x) * c + k] = s / Float(n)
                }
            }
        }
        for r in 0..<height {
            for x in 0..<width {
                for k in 0..<c {
                    var s: Float = 0
                    for d in -radius...radius { s += tmp[(Swift.min(height - 1, Swift.max(0, r + d)) * width + x) * c + k] }
                    out[(r * width + x) * c + k] = UInt8((s / Float(n)).rounded())
                }
            }
        }
        return Image(width: width, height: height, channels: c, pixels: out)
    }
}

extension Image {
    /// The image after JPEG compression at `quality` (its blocking and ringing), through libjpeg.
    func jpegRoundTrip(quality: Int) throws -> Image {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-\(UUID().uuidString).jpg").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try saveJPEG(path, quality: quality)
        return try Image.load(path)
    }
}
