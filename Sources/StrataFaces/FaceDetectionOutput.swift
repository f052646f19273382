import Foundation
import StrataCore
import StrataData

/// What `strata faces detect --out` writes: each face framed like an LFW photo, and the photo with its boxes drawn.
public enum FaceDetectionOutput {
    /// Writes `STEM_face1.png`, ... and `STEM_boxes.png` into `dir`; returns the paths written.
    public static func write(_ img: Image, faces: [FaceBox], photo: String, to dir: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let stem = ((photo as NSString).lastPathComponent as NSString).deletingPathExtension
        var written: [String] = []
        for (i, f) in faces.enumerated() {
            let p = (dir as NSString).appendingPathComponent("\(stem)_face\(i + 1).png")
            try f.lfwPhoto(from: img, size: 250).savePNG(p)
            written.append(p)
        }
        var drawn = img.channels == 3 ? img : img.rgb()
        let thickness = Swift.max(2, Swift.min(img.width, img.height) / 200)
        for f in faces { drawn.drawSquare(f, colour: (40, 220, 60), thickness: thickness) }
        let p = (dir as NSString).appendingPathComponent("\(stem)_boxes.png")
        try drawn.savePNG(p)
        written.append(p)
        return written
    }
}

extension Image {
    /// Draws the outline of `box` (RGB images).
    public mutating func drawSquare(_ box: FaceBox, colour: (UInt8, UInt8, UInt8), thickness: Int = 2) {
        precondition(channels == 3, "drawSquare: needs an RGB image, got \(channels) channels")
        let x0 = Int(box.x.rounded()), y0 = Int(box.y.rounded()), s = Swift.max(1, Int(box.side.rounded()))
        let c = [colour.0, colour.1, colour.2]
        for r in (y0 - thickness + 1)...(y0 + s + thickness - 1) where r >= 0 && r < height {
            for x in (x0 - thickness + 1)...(x0 + s + thickness - 1) where x >= 0 && x < width {
                let inner = r > y0 && r < y0 + s && x > x0 && x < x0 + s
                let outer = r >= y0 - thickness + 1 && r <= y0 + s + thickness - 1
                let nearEdge = Swift.abs(r - y0) < thickness || Swift.abs(r - y0 - s) < thickness || Swift.abs(x - x0) < thickness || Swift.abs(x - x0 - s) < thickness
                if outer && nearEdge && !(inner && !nearEdge) { for k in 0..<3 { pixels[(r * width + x) * 3 + k] = c[k] } }
            }
        }
    }
}
