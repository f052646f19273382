import Foundation
import StrataCore
import StrataNN

/// Labelled images held as 8-bit pixels (`[C, H, W]` each) until they are batched; a batch
/// converts to Float and normalises.
///
/// ```swift
/// let train = try FashionMNIST.load(.train)
/// let b = train.batch([0, 1, 2])     // inputs [3, 1, 28, 28], labels [9, 0, 0]
/// ```
public struct LabeledImages: BatchSource {
    public let pixels: [UInt8]
    public var labels: [Int]
    /// `[C, H, W]` of one image.
    public let imageShape: [Int]
    public var classNames: [String]
    public var normalization: Normalization
    /// Where each image came from, when read from files.
    public var files: [String]?

    public init(pixels: [UInt8], labels: [Int], imageShape: [Int], classNames: [String], normalization: Normalization = Normalization()) {
        precondition(pixels.count == labels.count * imageShape.reduce(1, *), "LabeledImages: \(pixels.count) pixels for \(labels.count) images of \(imageShape)")
        (self.pixels, self.labels, self.imageShape) = (pixels, labels, imageShape)
        (self.classNames, self.normalization) = (classNames, normalization)
    }

    public var count: Int { labels.count }
    public var batchesAreCheap: Bool { true }

    public func batch(_ indices: [Int]) -> Batch {
        let per = imageShape.reduce(1, *)
        let inputs = pixels.withUnsafeBufferPointer { px in
            normalization.apply(count: indices.count, shape: imageShape) { px.baseAddress! + indices[$0] * per }
        }
        return Batch(inputs: inputs, labels: indices.map { labels[$0] }, indices: indices)
    }

    /// The first `n` examples (or all).
    public func prefix(_ n: Int) -> LabeledImages { subset(Array(0..<Swift.min(n, count))) }

    public func subset(_ indices: [Int]) -> LabeledImages {
        let per = imageShape.reduce(1, *)
        var px = [UInt8]()
        px.reserveCapacity(indices.count * per)
        for i in indices { px.append(contentsOf: pixels[(i * per)..<((i + 1) * per)]) }
        var s = LabeledImages(pixels: px, labels: indices.map { labels[$0] }, imageShape: imageShape, classNames: classNames, normalization: normalization)
        s.files = files.map { f in indices.map { f[$0] } }
        return s
    }

    /// These images followed by `other`'s, whose classes come after these (labels shifted).
    public func appending(_ other: LabeledImages) -> LabeledImages {
        precondition(other.imageShape == imageShape, "LabeledImages.appending: images of \(other.imageShape) after \(imageShape)")
        var s = LabeledImages(pixels: pixels + other.pixels, labels: labels + other.labels.map { $0 + classNames.count },
                              imageShape: imageShape, classNames: classNames + other.classNames, normalization: normalization)
        if let f = files, let g = other.files { s.files = f + g }
        return s
    }

    /// Image `i` as an `Image` (for writing examples out).
    public func image(_ i: Int) -> Image {
        let per = imageShape.reduce(1, *)
        let (c, h, w) = (imageShape[0], imageShape[1], imageShape[2])
        var px = [UInt8](repeating: 0, count: per)
        for ch in 0..<c { for p in 0..<(h * w) { px[p * c + ch] = pixels[i * per + ch * h * w + p] } }
        return Image(width: w, height: h, channels: c, pixels: px)
    }

    /// Writes the first `count` images as PNG files named `prefix-0000-Label.png` into `folder`
    /// (created if missing) and returns their paths.
    public func exportPNGs(count: Int, to folder: String, prefix: String) throws -> [String] {
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw StrataError("\(folder): cannot create folder (\(error.localizedDescription))")
        }
        return try (0..<Swift.min(count, self.count)).map { i in
            let label = classNames[labels[i]].replacingOccurrences(of: "/", with: "-").replacingOccurrences(of: " ", with: "_")
            let path = (folder as NSString).appendingPathComponent(String(format: "%@-%04d-%@.png", prefix, i, label))
            try image(i).savePNG(path)
            return path
        }
    }
}
