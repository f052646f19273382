import Foundation
import StrataCore
import StrataNN
import StrataData

/// A face found in a photo: a square box in the photo's pixels and the detector's score.
/// The box is LFW's: the Viola-Jones detection that LFW's photos are cut around (brows to chin,
/// ear to ear), so `lfwFrame` gives back the whole LFW-like photo the recognition models learned on.
public struct FaceBox: Codable, Equatable {
    /// Top-left corner and side, in pixels of the photo.
    public var x: Double, y: Double, side: Double
    public var score: Float

    public init(x: Double, y: Double, side: Double, score: Float = 1) {
        (self.x, self.y, self.side, self.score) = (x, y, side, score)
    }
    public var centerX: Double { x + side / 2 }
    public var centerY: Double { y + side / 2 }

    /// Intersection over union with another box.
    public func iou(_ o: FaceBox) -> Double {
        let iw = Swift.min(x + side, o.x + o.side) - Swift.max(x, o.x)
        let ih = Swift.min(y + side, o.y + o.side) - Swift.max(y, o.y)
        guard iw > 0, ih > 0 else { return 0 }
        let i = iw * ih
        return i / (side * side + o.side * o.side - i)
    }

    /// The square part of the photo that corresponds to a whole 250x250 LFW photo around this face.
    public var lfwFrame: (x: Double, y: Double, side: Double) {
        let s = side * LFWFaceBox.photoSide / LFWFaceBox.side
        let cx = centerX + (LFWFaceBox.photoSide / 2 - LFWFaceBox.centerX) * s / LFWFaceBox.photoSide
        let cy = centerY + (LFWFaceBox.photoSide / 2 - LFWFaceBox.centerY) * s / LFWFaceBox.photoSide
        return (cx - s / 2, cy - s / 2, s)
    }

    /// The face as an LFW-like photo (`size` pixels a side, default the photo's own scale): what
    /// the recognition models expect. Parts outside the photo repeat its edge pixels.
    public func lfwPhoto(from img: Image, size: Int? = nil) -> Image {
        let f = lfwFrame
        let side = Swift.max(1, Int(f.side.rounded()))
        let crop = img.cropped(x: Int(f.x.rounded()), y: Int(f.y.rounded()), width: side, height: side)
        return size.map { crop.resized(width: $0, height: $0) } ?? crop
    }
}

/// Where the face is in every LFW photo: each is a Viola-Jones detection enlarged 2.2 times and
/// rescaled to 250x250, so the detection is the centred square of side 250 / 2.2. Measured on
/// `lfw_train` with OpenCV's frontal-face cascade (the same detector family) by
/// `Tools/measure_lfw_box.py`; see `docs/FACE_DETECTOR.md`.
public enum LFWFaceBox {
    public static let photoSide = 250.0
    public static let centerX = 125.0, centerY = 125.0
    public static let side = 250.0 / 2.2
    /// The box in an LFW photo of `w` x `h` pixels (any size; LFW's own are 250x250).
    public static func box(width w: Int, height h: Int) -> FaceBox {
        let k = Double(Swift.min(w, h)) / photoSide
        return FaceBox(x: centerX * k - side * k / 2 + Double(w - Swift.min(w, h)) / 2,
                       y: centerY * k - side * k / 2 + Double(h - Swift.min(w, h)) / 2, side: side * k)
    }
}

/// Settings stored with a detector in its model file.
public struct FaceDetectorSettings: Codable, Equatable, ModelSection {
    public static let key = "face_detector"
    /// Score above which a box is a face (the shipped detector's 0.6 keeps 94 % of the faces of
    /// the check's composite pictures at 0.07 false positives per picture; 0.5 keeps 97 % at 0.19).
    public var threshold: Float = 0.6
    /// Overlap (IoU) above which the weaker of two boxes is dropped.
    public var nmsIoU: Double = 0.35
    /// Photos are scaled so their longer side is at most this many pixels before detection.
    public var maxSide: Int = 640
    /// Which people of `lfw_train` the detector never saw (e.g. "holdout 0.1 seed 0").
    public var heldOut: String?
    /// Sides of the LFW-like frames `FaceDetector.refine` detects a face in again.
    public var refineSizes = [192, 256, 320]
    public init() {}
    public init(from d: Decoder) throws {
        let c = try d.container(keyedBy: CodingKeys.self)
        threshold = try c.decode(Float.self, forKey: .threshold)
        nmsIoU = try c.decode(Double.self, forKey: .nmsIoU)
        maxSide = try c.decode(Int.self, forKey: .maxSide)
        heldOut = try c.decodeIfPresent(String.self, forKey: .heldOut)
        refineSizes = try c.decodeIfPresent([Int].self, forKey: .refineSizes) ?? [192, 256, 320]
    }
}

/// Finds faces in photos: `FaceDetectorNet` over the photo (and a third of it, for faces larger
/// than the network's largest level), scores above a threshold, overlapping boxes merged.
///
/// ```swift
/// let detector = try FaceDetector.builtIn()
/// for face in try detector.detect(Image.load("group.jpg")) {
///     print(face.x, face.y, face.side, face.score)
/// }
/// ```
public final class FaceDetector {
    public let net: FaceDetectorNet
    public var settings: FaceDetectorSettings
    public var info: ModelInfo
    /// Pixels to network input: (x / 255 - 0.5) / 0.25 per channel, RGB.
    public static let normalization = Normalization(scale: 1 / 255, mean: [0.5], std: [0.25])

    public init(net: FaceDetectorNet, settings: FaceDetectorSettings = FaceDetectorSettings()) {
        self.net = net
        self.settings = settings
        var info = ModelInfo(model: net, classNames: ["face"], inputShape: [3, 160, 160], normalization: FaceDetector.normalization)
        try? info.setSection(settings)
        self.info = info
        net.eval()
    }

    /// Reads a detector file; errors name the file.
    public static func load(_ path: String) throws -> FaceDetector {
        let saved = try SavedModel.load(path)
        guard let net = saved.model as? FaceDetectorNet else {
            throw StrataError("\(path): not a face detector (its model is \(ModuleRegistry.name(of: type(of: saved.model))))")
        }
        let settings = try saved.info.section(FaceDetectorSettings.self) ?? FaceDetectorSettings()
        guard settings.threshold > 0, settings.threshold < 1, settings.nmsIoU > 0, settings.nmsIoU <= 1,
              (32...8192).contains(settings.maxSide), settings.refineSizes.count <= 8, settings.refineSizes.allSatisfy({ (32...1024).contains($0) }) else {
            throw StrataError("\(path): face detector settings out of range (threshold \(settings.threshold), nms \(settings.nmsIoU), max side \(settings.maxSide))")
        }
        return FaceDetector(net: net, settings: settings)
    }

    public func save(_ path: String) throws {
        var info = self.info
        try info.setSection(settings)
        try SavedModel(model: net, info: info).save(to: path)
    }

    public static let builtInFileName = "face-detector.safetensors"

    /// The detector shipped with Strata (`make faces-detector`).
    public static func builtIn() throws -> FaceDetector {
        let candidates = FaceModel.resourceCandidates(builtInFileName)
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw StrataError("the built-in face detector \(builtInFileName) is not installed (looked in \(candidates.joined(separator: ", ")))")
        }
        return try load(path)
    }

    /// The faces in `img`, strongest first. Faces smaller than `minSize` pixels (of the photo as
    /// given) are dropped; `threshold` defaults to the detector's own.
    public func detect(_ img: Image, minSize: Double = 20, threshold: Float? = nil) -> [FaceBox] {
        let t = threshold ?? settings.threshold
        let longer = Swift.max(img.width, img.height)
        let base = Swift.min(1, Double(settings.maxSide) / Double(longer))
        var scales = [base]
        // Faces above ~190 px at the base scale outgrow the stride-32 level: look again at a third.
        if Double(Swift.min(img.width, img.height)) * base >= 150 { scales.append(base / 3) }
        var found: [FaceBox] = []
        for s in scales {
            let w = Swift.max(1, Int((Double(img.width) * s).rounded())), h = Swift.max(1, Int((Double(img.height) * s).rounded()))
            let small = img.resized(width: w, height: h)
            for b in rawDetections(small, threshold: t) {
                found.append(FaceBox(x: b.x / s, y: b.y / s, side: b.side / s, score: b.score))
            }
        }
        return FaceDetector.fuse(found, iou: settings.nmsIoU).filter { $0.side >= minSize }
    }

    /// The box measured again where the detector is steadiest, before a face is framed for the
    /// recognition networks: the face's LFW-like frame is cut from the photo, resized to
    /// `settings.refineSizes` (the face then 87-145 px, as in LFW's photos), detected as it is and
    /// mirrored, and all estimates near the middle are fused. Averaging these halves the
    /// scatter of a small face's box, to which the recognition networks are sensitive.
    public func refine(_ box: FaceBox, in img: Image) -> FaceBox {
        let f = box.lfwFrame
        let side = Swift.max(1, Int(f.side.rounded()))
        let x0 = Int(f.x.rounded()), y0 = Int(f.y.rounded())
        let frame = img.cropped(x: x0, y: y0, width: side, height: side)
        var estimates: [FaceBox] = []
        for n in settings.refineSizes {
            let crop = frame.resized(width: n, height: n)
            let k = Double(n) / Double(side)
            let expected = FaceBox(x: Double(n) / 2 - LFWFaceBox.side * Double(n) / 500, y: Double(n) / 2 - LFWFaceBox.side * Double(n) / 500,
                                   side: LFWFaceBox.side * Double(n) / 250)
            for flip in [false, true] {
                let raw = rawDetections(flip ? crop.mirrored() : crop, threshold: 0.2).map { b -> FaceBox in
                    var m = b
                    if flip { m.x = Double(n) - b.x - b.side }
                    return m
                }
                for b in raw where b.iou(expected) > 0.4 {
                    estimates.append(FaceBox(x: Double(x0) + b.x / k, y: Double(y0) + b.y / k, side: b.side / k, score: b.score))
                }
            }
        }
        guard let fused = FaceDetector.fuse(estimates, iou: 0).max(by: { $0.score < $1.score }) else { return box }
        return FaceBox(x: fused.x, y: fused.y, side: fused.side, score: box.score)
    }

    /// Boxes above `threshold` in the image as the network sees it (no resizing, no merging).
    public func rawDetections(_ img: Image, threshold: Float) -> [FaceBox] {
        let x = FaceDetector.input(img)
        let out = noGrad { net(x) }
        return FaceDetector.decode(out.scalars, cells: out.shape[2], offset: 0, height: x.shape[2], width: x.shape[3], threshold: threshold)
    }

    /// The network input `[1, 3, H, W]` of an image: RGB, normalised, padded with grey to multiples of 32.
    public static func input(_ img: Image) -> Tensor {
        let rgb = img.channels == 3 ? img : img.rgb()
        let h = (rgb.height + 31) / 32 * 32, w = (rgb.width + 31) / 32 * 32
        let t = Tensor(uninitializedShape: [1, 3, h, w])
        let d = t.data
        d.initialize(repeating: 0, count: 3 * h * w)
        rgb.pixels.withUnsafeBufferPointer { px in
            for c in 0..<3 {
                for r in 0..<rgb.height {
                    let dst = d + c * h * w + r * w, src = r * rgb.width * 3 + c
                    for q in 0..<rgb.width { dst[q] = (Float(px[src + 3 * q]) * (1 / 255) - 0.5) * 4 }
                }
            }
        }
        return t
    }

    /// Boxes of one picture from the network's `[4, cells]` output (scalars of picture `offset`
    /// in a batch of `cells`-cell outputs) above `threshold`.
    public static func decode(_ v: [Float], cells: Int, offset: Int, height: Int, width: Int, threshold: Float) -> [FaceBox] {
        let logit = Float(Foundation.log(Double(threshold) / (1 - Double(threshold))))
        var boxes: [FaceBox] = []
        var cell = 0
        let base = offset * 4 * cells
        for (stride, rows, cols) in FaceDetectorNet.grid(height: height, width: width) {
            for r in 0..<rows {
                for c in 0..<cols {
                    let i = cell + r * cols + c
                    let z = v[base + i]
                    guard z > logit else { continue }
                    let st = Double(stride)
                    let cx = (Double(c) + 0.5 + Double(v[base + cells + i])) * st
                    let cy = (Double(r) + 0.5 + Double(v[base + 2 * cells + i])) * st
                    let side = Foundation.exp(Swift.min(8, Double(v[base + 3 * cells + i]))) * st
                    boxes.append(FaceBox(x: cx - side / 2, y: cy - side / 2, side: side, score: 1 / (1 + Foundation.exp(-z))))
                }
            }
            cell += rows * cols
        }
        return boxes
    }

    /// Weighted box fusion: boxes grouped as non-maximum suppression groups them (each group the
    /// strongest remaining box and those overlapping it by more than `iou`), each group replaced
    /// by its score-weighted mean box (side averaged in log space) with the group's best score.
    /// Neighbouring cells' estimates average out, so the box is steadier than the best cell's alone.
    public static func fuse(_ boxes: [FaceBox], iou: Double) -> [FaceBox] {
        var left = boxes.sorted { $0.score > $1.score }
        var out: [FaceBox] = []
        while let top = left.first {
            let group = left.filter { $0.iou(top) > iou || $0 == top }
            left.removeAll { $0.iou(top) > iou || $0 == top }
            var w = 0.0, cx = 0.0, cy = 0.0, ls = 0.0
            for b in group {
                let s = Double(b.score)
                (w, cx, cy, ls) = (w + s, cx + s * b.centerX, cy + s * b.centerY, ls + s * Foundation.log(b.side))
            }
            let side = Foundation.exp(ls / w)
            out.append(FaceBox(x: cx / w - side / 2, y: cy / w - side / 2, side: side, score: top.score))
        }
        return out
    }

    /// Greedy non-maximum suppression: strongest first, dropping boxes that overlap a kept one by more than `iou`.
    public static func nms(_ boxes: [FaceBox], iou: Double) -> [FaceBox] {
        var kept: [FaceBox] = []
        for b in boxes.sorted(by: { $0.score > $1.score }) where !kept.contains(where: { $0.iou(b) > iou }) {
            kept.append(b)
        }
        return kept
    }
}
