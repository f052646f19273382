import CStrata
import Foundation
import StrataCore
import StrataNN

/// Seeded random transforms of a batch `[N, C, H, W]`, drawn independently per image.
///
/// The geometric part is one affine warp per image (rotation, scale, shift, horizontal flip)
/// sampled bilinearly with edge pixels repeated outside the image, in the conventions of PyTorch's
/// `affine_grid`/`grid_sample` (align_corners false).
///
/// ```swift
/// var aug = Augmentation()
/// aug.flip = true; aug.maxRotation = 10; aug.scale = (0.9, 1.1); aug.maxShift = 0.06
/// var rng = RandomGenerator(seed: 0)
/// let xa = aug.apply(x, rng: &rng)
/// ```
public struct Augmentation {
    /// Mirror left-right with probability 1/2.
    public var flip = false
    /// Rotation drawn from ±maxRotation degrees.
    public var maxRotation: Float = 0
    /// Zoom factor range.
    public var scale: (Float, Float) = (1, 1)
    /// Shift drawn from ±maxShift of the image size, in each direction.
    public var maxShift: Float = 0
    /// Brightness offset drawn from ±brightness (in pixel units of the batch, e.g. 0.1 on [0, 1]).
    public var brightness: Float = 0
    /// Contrast factor drawn from 1 ± contrast, around each image's mean.
    public var contrast: Float = 0

    public init() {}

    /// Colour saturation factor drawn from 1 ± saturation (RGB batches: blended with the grey value).
    public var saturation: Float = 0
    /// Probability of turning an RGB image grey (all three channels set to its luma).
    public var greyProbability: Float = 0
    /// Random erasing (Zhong et al. 2017): with this probability a rectangle of 2–20 % of the
    /// image, aspect ratio 0.3–3.3, is filled with uniform noise in the image's value range.
    public var eraseProbability: Float = 0

    var isGeometric: Bool { flip || maxRotation != 0 || scale != (1, 1) || maxShift != 0 }

    /// Augments each image; with `outputSize`, the result is the centred window of that size
    /// (shifts and zooms are relative to the window, and sample the pixels around it).
    public func apply(_ x: Tensor, rng: inout RandomGenerator, outputSize: (height: Int, width: Int)? = nil) -> Tensor {
        precondition(x.rank == 4, "Augmentation: batch must be [N, C, H, W], got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = outputSize ?? (h, w)
        precondition(oh <= h && ow <= w, "Augmentation: output \(ow)x\(oh) larger than the input \(w)x\(h)")
        let cropX = Float(ow) / Float(w), cropY = Float(oh) / Float(h)
        let out = Tensor(uninitializedShape: [n, c, oh, ow])
        let src = x.data, dst = out.data
        // Only the non-geometric path copies the window as it is (the warp samples it itself).
        let plainCrop = isGeometric || (oh, ow) == (h, w) ? nil : x.centerCrop(width: ow, height: oh)
        for i in 0..<n {
            let angle = Float.random(in: -maxRotation...maxRotation, using: &rng) * .pi / 180
            let s = Float.random(in: scale.0...scale.1, using: &rng)
            let f: Float = flip && rng.nextFloat() < 0.5 ? -1 : 1
            let tx = Float.random(in: -maxShift...maxShift, using: &rng) * 2, ty = Float.random(in: -maxShift...maxShift, using: &rng) * 2
            let b = Float.random(in: -brightness...brightness, using: &rng), k = 1 + Float.random(in: -contrast...contrast, using: &rng)
            let sat = 1 + Float.random(in: -saturation...saturation, using: &rng)
            let warp = Warp(rotation: angle, scale: s, shiftX: tx, shiftY: ty, flip: f < 0)
            if isGeometric { warp.sample(src + i * c * h * w, w, h, into: dst + i * c * oh * ow, ow, oh, cropX: cropX, cropY: cropY, planes: c) }
            for ch in 0..<c {
                let plane = src + (i * c + ch) * h * w, o = dst + (i * c + ch) * oh * ow
                if !isGeometric {
                    o.update(from: plainCrop.map { $0.data + (i * c + ch) * oh * ow } ?? plane, count: oh * ow)
                }
                if b != 0 || k != 1 {
                    let mean = sk_sum(oh * ow, o) / Float(oh * ow)
                    for p in 0..<(oh * ow) { o[p] = (o[p] - mean) * k + mean + b }
                }
            }
            if c == 3 && greyProbability > 0 && rng.nextFloat() < greyProbability {
                let r = dst + i * 3 * oh * ow, g = r + oh * ow, bl = g + oh * ow
                for p in 0..<(oh * ow) {
                    let grey = luma(r[p], g[p], bl[p])
                    (r[p], g[p], bl[p]) = (grey, grey, grey)
                }
            }
            if eraseProbability > 0 && rng.nextFloat() < eraseProbability { erase(dst + i * c * oh * ow, c, oh, ow, &rng) }
            if c == 3 && sat != 1 {
                let r = dst + i * 3 * oh * ow, g = r + oh * ow, bl = g + oh * ow
                for p in 0..<(oh * ow) {
                    let grey = luma(r[p], g[p], bl[p])
                    r[p] = grey + (r[p] - grey) * sat
                    g[p] = grey + (g[p] - grey) * sat
                    bl[p] = grey + (bl[p] - grey) * sat
                }
            }
        }
        return out
    }

    /// Fills one random rectangle of an image `[C, H, W]` with noise between its smallest and
    /// largest value.
    func erase(_ img: UnsafeMutablePointer<Float>, _ c: Int, _ h: Int, _ w: Int, _ rng: inout RandomGenerator) {
        let area = Float(h * w) * Float.random(in: 0.02...0.2, using: &rng)
        let aspect = Foundation.exp(Float.random(in: Foundation.log(0.3)...Foundation.log(3.3), using: &rng))
        let eh = Swift.min(h, Swift.max(1, Int((area * aspect).squareRoot()))), ew = Swift.min(w, Swift.max(1, Int((area / aspect).squareRoot())))
        let y0 = rng.nextInt(h - eh + 1), x0 = rng.nextInt(w - ew + 1)
        var lo = Float.infinity, hi = -Float.infinity
        for p in 0..<(c * h * w) { lo = Swift.min(lo, img[p]); hi = Swift.max(hi, img[p]) }
        for ch in 0..<c {
            for y in y0..<(y0 + eh) {
                for x in x0..<(x0 + ew) { img[(ch * h + y) * w + x] = lo + (hi - lo) * rng.nextFloat() }
            }
        }
    }

    /// The grey value of an RGB pixel (ITU-R BT.601 luma weights), for saturation and random grey.
    @inline(__always)
    private func luma(_ r: Float, _ g: Float, _ b: Float) -> Float { 0.299 * r + 0.587 * g + 0.114 * b }
}

/// One fixed affine warp of an image window: rotation (radians), zoom, shift (in units of the
/// window's half-size, as PyTorch's `affine_grid` takes them) and mirroring.
///
/// ```swift
/// let views = Warp.views(5)                                    // centre, then 4 small shifts
/// let x2 = Warp(scale: 1.05).apply(context, outputSize: (64, 64))
/// ```
public struct Warp: Equatable {
    public var rotation: Float, scale: Float, shiftX: Float, shiftY: Float, flip: Bool

    public init(rotation: Float = 0, scale: Float = 1, shiftX: Float = 0, shiftY: Float = 0, flip: Bool = false) {
        self.rotation = rotation; self.scale = scale; self.shiftX = shiftX; self.shiftY = shiftY; self.flip = flip
    }

    /// Test-time views of a face window: the centre alone, then shifts of 3 % of the window left,
    /// right, up and down (5), then zooms in and out by 5 % (7), then the four diagonals (11).
    public static func views(_ n: Int) -> [Warp] {
        let d: Float = 0.06   // 3 % of the window = 0.06 in [-1, 1] coordinates
        let all = [Warp(), Warp(shiftX: -d), Warp(shiftX: d), Warp(shiftY: -d), Warp(shiftY: d),
                   Warp(scale: 1.05), Warp(scale: 1 / 1.05),
                   Warp(shiftX: -d, shiftY: -d), Warp(shiftX: d, shiftY: -d), Warp(shiftX: -d, shiftY: d), Warp(shiftX: d, shiftY: d)]
        return Array(all.prefix(Swift.max(1, Swift.min(n, all.count))))
    }

    /// Every image of `x` `[N, C, H, W]` warped; the output is the centred `outputSize` window.
    public func apply(_ x: Tensor, outputSize: (height: Int, width: Int)) -> Tensor {
        precondition(x.rank == 4, "Warp: batch must be [N, C, H, W], got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = outputSize
        precondition(oh <= h && ow <= w, "Warp: output \(ow)x\(oh) larger than the input \(w)x\(h)")
        let out = Tensor(uninitializedShape: [n, c, oh, ow])
        for i in 0..<n {
            sample(x.data + i * c * h * w, w, h, into: out.data + i * c * oh * ow, ow, oh, cropX: Float(ow) / Float(w), cropY: Float(oh) / Float(h), planes: c)
        }
        return out
    }

    /// Samples `planes` consecutive planes (an image's channels) at the same coordinates: theta
    /// maps output to input in normalised coordinates [-1, 1] of the window, which makes the
    /// source position an affine function of the output pixel, stepped along each row.
    func sample(_ plane: UnsafeMutablePointer<Float>, _ w: Int, _ h: Int, into o: UnsafeMutablePointer<Float>, _ ow: Int, _ oh: Int,
                cropX: Float, cropY: Float, planes: Int = 1) {
        let (ca, sa) = (Foundation.cos(rotation), Foundation.sin(rotation))
        let f: Float = flip ? -1 : 1
        let t00 = ca / scale * f, t01 = -sa / scale, t10 = sa / scale * f, t11 = ca / scale
        // sx = ((t00 xn + t01 yn + shiftX) cropX + 1) w / 2 - 1/2 with xn = (2 x + 1) / ow - 1, yn likewise.
        let hx = cropX * Float(w) / 2, hy = cropY * Float(h) / 2
        let dxdx = t00 * 2 / Float(ow) * hx, dxdy = t01 * 2 / Float(oh) * hx
        let dydx = t10 * 2 / Float(ow) * hy, dydy = t11 * 2 / Float(oh) * hy
        let x0 = (t00 * (1 / Float(ow) - 1) + t01 * (1 / Float(oh) - 1) + shiftX) * hx + Float(w) / 2 - 0.5
        let y0 = (t10 * (1 / Float(ow) - 1) + t11 * (1 / Float(oh) - 1) + shiftY) * hy + Float(h) / 2 - 0.5
        sk_warp_bilinear(plane, w, h, o, ow, oh, planes, x0, y0, dxdx, dxdy, dydx, dydy)
    }
}

extension Float {
    /// Uniform in the range; a zero-width range returns its bound without drawing.
    static func random(in r: ClosedRange<Float>, using rng: inout RandomGenerator) -> Float {
        r.lowerBound == r.upperBound ? r.lowerBound : r.lowerBound + (r.upperBound - r.lowerBound) * rng.nextFloat()
    }
}

extension Tensor {
    /// Each image `[N, C, H, W]` shifted and scaled to mean 0 and standard deviation 1.
    public func standardizedPerImage(eps: Float = 1e-6) -> Tensor {
        precondition(rank >= 2, "standardizedPerImage: needs a batch, got \(shape)")
        let n = shape[0], per = count / Swift.max(n, 1)
        let out = Tensor(uninitializedShape: shape)
        for i in 0..<n {
            let src = data + i * per, dst = out.data + i * per
            // Two passes with 16-lane partial sums (a scalar Double loop was a tenth of a training step).
            let blocks = per / 16
            var acc = SIMD16<Float>()
            let raw = UnsafeRawPointer(src)
            for b in 0..<blocks { acc += raw.loadUnaligned(fromByteOffset: b * 64, as: SIMD16<Float>.self) }
            var total = Double(acc.sum())
            for p in (blocks * 16)..<per { total += Double(src[p]) }
            let mean = Float(total / Double(per))
            var sq = SIMD16<Float>()
            let m16 = SIMD16<Float>(repeating: mean)
            for b in 0..<blocks { let d = raw.loadUnaligned(fromByteOffset: b * 64, as: SIMD16<Float>.self) - m16; sq += d * d }
            var sqTotal = Double(sq.sum())
            for p in (blocks * 16)..<per { let d = Double(src[p] - mean); sqTotal += d * d }
            let inv = Float(1 / ((sqTotal / Double(per)).squareRoot() + Double(eps)))
            for p in 0..<per { dst[p] = (src[p] - mean) * inv }
        }
        return out
    }

    /// The centred `height` x `width` window of each image `[N, C, H, W]`.
    public func centerCrop(width: Int, height: Int) -> Tensor {
        let (h, w) = (shape[2], shape[3])
        precondition(width <= w && height <= h, "centerCrop: \(width)x\(height) from \(w)x\(h)")
        return slice(axis: 2, start: (h - height) / 2, end: (h - height) / 2 + height).slice(axis: 3, start: (w - width) / 2, end: (w - width) / 2 + width)
    }

    /// Each image mirrored left-right.
    public func flippedHorizontally() -> Tensor {
        let w = shape[rank - 1], rows = count / w
        let out = Tensor(uninitializedShape: shape)
        for r in 0..<rows { for x in 0..<w { out.data[r * w + x] = data[r * w + w - 1 - x] } }
        return out
    }
}
