import Foundation
import StrataCore
import StrataNN
import StrataData
import StrataClassic
import StrataInspect

/// Where the face is in a photo, for photos without a face detector: a square box given as
/// fractions of the image, so any size of photo crops the same way. LFW's photos are crops
/// around a detection rescaled to 250x250; their face fills the central 100-130 pixels.
///
/// The network sees `size` x `size` pixels of the box. Around it, training keeps `context`
/// times as much (so random shifts and zooms sample real pixels, not repeated edges); the
/// centre of that context image is the box itself. Stored in face model files, so enrolling,
/// identifying and verifying crop exactly as training did.
///
/// ```swift
/// let crop = FaceCrop(centerX: 0.5, centerY: 0.52, side: 0.48, size: 64)
/// let face = crop.apply(try Image.load("photo.jpg"))      // 64x64, the central face box
/// ```
public struct FaceCrop: Codable, Equatable, ModelSection {
    public static let key = "face_crop"
    /// Centre of the box, as fractions of the image width and height.
    public var centerX: Double
    public var centerY: Double
    /// Side of the box as a fraction of the image's shorter side.
    public var side: Double
    /// Pixels per side the network sees.
    public var size: Int
    /// How much more than the box the training images keep, per side.
    public var context: Double

    public init(centerX: Double = 0.5, centerY: Double = 0.52, side: Double = 0.48, size: Int = 64, context: Double = 1.25) {
        self.centerX = centerX
        self.centerY = centerY
        self.side = side
        self.size = size
        self.context = context
    }

    /// Side in pixels of the context image; it exceeds `size` by an even number, so the centre
    /// crop is exact.
    public var contextSize: Int {
        let c = Int((Double(size) * context).rounded())
        return c + (c - size) % 2
    }

    /// Parses "cx,cy,side" (fractions), e.g. "0.5,0.52,0.48".
    public static func parse(_ s: String, size: Int, context: Double = 1.25, maxSide: Double = 1.5) -> FaceCrop? {
        let v = s.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard v.count == 3, v[0] > 0, v[0] < 1, v[1] > 0, v[1] < 1, v[2] > 0, v[2] <= maxSide else { return nil }
        return FaceCrop(centerX: v[0], centerY: v[1], side: v[2], size: size, context: context)
    }

    /// A frame for `reframe` from "cx,cy,side"; its side may reach 3 times the photo's shorter
    /// side (a tight crop reframed like a wider training photo). Nil when malformed.
    public static func parseFrame(_ s: String) -> FaceCrop? { parse(s, size: 64, maxSide: 3) }

    /// The box scaled by `scale` around its centre, in pixels of a `width` x `height` image.
    func box(width: Int, height: Int, scale: Double) -> (x: Int, y: Int, side: Int) {
        let s = Swift.max(1, Int((side * Double(Swift.min(width, height)) * scale).rounded()))
        let x = Int((centerX * Double(width) - Double(s) / 2).rounded()), y = Int((centerY * Double(height) - Double(s) / 2).rounded())
        return (x, y, s)
    }

    /// The context image: the box grown by `context`, resized to `contextSize` pixels a side.
    public func contextImage(_ img: Image) -> Image {
        let b = box(width: img.width, height: img.height, scale: Double(contextSize) / Double(size))
        return img.cropped(x: b.x, y: b.y, width: b.side, height: b.side).resized(width: contextSize, height: contextSize)
    }

    /// What the network sees: the centre `size` x `size` of the context image.
    public func apply(_ img: Image) -> Image {
        let c = contextImage(img), o = (contextSize - size) / 2
        return c.cropped(x: o, y: o, width: size, height: size)
    }
}

extension FaceCrop {
    /// Reads the box as a *frame*: the square part of a photo that matches a whole training
    /// photo. Photos framed unlike the training set (AT&T's tight 92x112 crops for an LFW model,
    /// say) are reframed first, so the model's own face box then falls on the face. Parts of the
    /// frame outside the photo repeat its edge pixels.
    ///
    /// ```swift
    /// let frame = FaceCrop.parseFrame("0.5,0.57,2.2")!
    /// let lfwLike = frame.reframe(try Image.load("s31/1.pgm"))
    /// ```
    public func reframe(_ img: Image) -> Image {
        let b = box(width: img.width, height: img.height, scale: 1)
        return img.cropped(x: b.x, y: b.y, width: b.side, height: b.side)
    }
}

extension Image {
    /// The `width` x `height` region at (`x`, `y`); parts outside the image repeat its edge pixels.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> Image {
        precondition(w > 0 && h > 0, "cropped: size must be positive, got \(w)x\(h)")
        precondition(width > 0 && height > 0, "cropped: the image is empty (\(width)x\(height))")
        let ch = channels
        var out = [UInt8](repeating: 0, count: w * h * ch)
        // Crop columns [c0, c1) lie inside the image and are copied as one run a row; those left
        // and right of it repeat the edge pixel.
        let c0 = Swift.min(Swift.max(-x, 0), w), c1 = Swift.max(Swift.min(width - x, w), c0)
        pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for r in 0..<h {
                    let src = p.baseAddress! + Swift.min(Swift.max(y + r, 0), height - 1) * width * ch
                    let dst = o.baseAddress! + r * w * ch
                    for c in 0..<c0 { (dst + c * ch).update(from: src, count: ch) }
                    if c1 > c0 { (dst + c0 * ch).update(from: src + (x + c0) * ch, count: (c1 - c0) * ch) }
                    for c in c1..<w { (dst + c * ch).update(from: src + (width - 1) * ch, count: ch) }
                }
            }
        }
        return Image(width: w, height: h, channels: ch, pixels: out)
    }
}
