import StrataCore
import StrataNN

extension SavedModel {
    /// Input tensor `[N, C, H, W]` for 8-bit images already at the model's size, normalised as
    /// the model was trained.
    public func inputs(_ images: [Image]) throws -> Tensor {
        let (c, h, w) = (info.inputShape[0], info.inputShape[1], info.inputShape[2])
        let t = Tensor(uninitializedShape: [images.count, c, h, w])
        let n = info.normalization
        for (i, img) in images.enumerated() {
            guard img.width == w, img.height == h, img.channels == c else {
                throw StrataError("image \(i) is \(img.width)x\(img.height)x\(img.channels), the model needs \(w)x\(h)x\(c)")
            }
            for ch in 0..<c {
                let mean = n.perImage ? 0 : n.mean[ch % n.mean.count], std = n.perImage ? 1 : n.std[ch % n.std.count]
                for p in 0..<(h * w) {
                    t.data[((i * c + ch) * h * w) + p] = (Float(img.pixels[p * c + ch]) * n.scale - mean) / std
                }
            }
        }
        return n.perImage ? t.standardizedPerImage() : t
    }
}
