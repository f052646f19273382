import StrataCore
import StrataNN
import StrataData

/// Colour maps for images of values.
public enum ColorMap {
    /// Viridis (perceptually uniform, readable in grey and by colour-blind readers): its ten
    /// published stops, linearly interpolated.
    static let viridisStops: [(UInt8, UInt8, UInt8)] = [
        (0x44, 0x01, 0x54), (0x48, 0x28, 0x78), (0x3E, 0x49, 0x89), (0x31, 0x68, 0x8E), (0x26, 0x82, 0x8E),
        (0x1F, 0x9E, 0x89), (0x35, 0xB7, 0x79), (0x6E, 0xCE, 0x58), (0xB5, 0xDE, 0x2B), (0xFD, 0xE7, 0x25),
    ]

    /// The viridis colour of `t` in [0, 1] (clamped).
    public static func viridis(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let x = Swift.min(Swift.max(t.isNaN ? 0 : t, 0), 1) * Float(viridisStops.count - 1)
        let i = Swift.min(Int(x), viridisStops.count - 2)
        let f = x - Float(i)
        let a = viridisStops[i], b = viridisStops[i + 1]
        func mix(_ p: UInt8, _ q: UInt8) -> UInt8 { UInt8((Float(p) * (1 - f) + Float(q) * f).rounded()) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// Ten distinct colours for classes (the "tab10" palette), as hex strings.
    public static let categorical = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// An RGB image of a 2-D array through viridis, scaled from `[low, high]` (default: its range).
    public static func heatmap(_ values: [Float], width: Int, height: Int, low: Float? = nil, high: Float? = nil) -> Image {
        let lo = low ?? (values.min() ?? 0), hi = high ?? (values.max() ?? 1)
        let span = hi > lo ? hi - lo : 1
        var px = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            let (r, g, b) = viridis((values[i] - lo) / span)
            px[3 * i] = r; px[3 * i + 1] = g; px[3 * i + 2] = b
        }
        return Image(width: width, height: height, channels: 3, pixels: px)
    }
}

extension Image {
    /// Each pixel repeated `factor` times in both directions (sharp enlargement of tiny images).
    public func scaled(by factor: Int) -> Image {
        if factor <= 1 { return self }
        let w = width * factor, h = height * factor
        var px = [UInt8](repeating: 0, count: w * h * channels)
        for y in 0..<h { for x in 0..<w { for c in 0..<channels {
            px[(y * w + x) * channels + c] = pixels[((y / factor) * width + x / factor) * channels + c]
        } } }
        return Image(width: w, height: h, channels: channels, pixels: px)
    }

    /// Images of equal size laid out in a grid with `gap` pixels of `background` between them.
    public static func grid(_ images: [Image], columns: Int, gap: Int = 2, background: UInt8 = 255) -> Image {
        precondition(!images.isEmpty, "Image.grid needs at least one image")
        let (w, h, c) = (images[0].width, images[0].height, images[0].channels)
        let cols = Swift.min(columns, images.count), rows = (images.count + cols - 1) / cols
        let W = cols * w + (cols + 1) * gap, H = rows * h + (rows + 1) * gap
        var px = [UInt8](repeating: background, count: W * H * c)
        for (k, img) in images.enumerated() {
            precondition(img.width == w && img.height == h && img.channels == c, "Image.grid: images differ in size")
            let ox = gap + (k % cols) * (w + gap), oy = gap + (k / cols) * (h + gap)
            for y in 0..<h { for x in 0..<w { for ch in 0..<c {
                px[((oy + y) * W + ox + x) * c + ch] = img.pixels[(y * w + x) * c + ch]
            } } }
        }
        return Image(width: W, height: H, channels: c, pixels: px)
    }

    /// `weight` of `over` blended onto this image (both RGB of the same size).
    public func blended(with over: Image, weight: Float) -> Image {
        let a = rgb(), b = over.rgb()
        precondition(a.width == b.width && a.height == b.height, "Image.blended: sizes differ")
        return Image(width: a.width, height: a.height, channels: 3,
                     pixels: zip(a.pixels, b.pixels).map { UInt8((Float($0) * (1 - weight) + Float($1) * weight).rounded()) })
    }
}
