import Foundation
import StrataCore
import StrataNN

extension TextTokenizer: ModelSection { public static let key = "tokenizer" }
extension AudioFeatures: ModelSection { public static let key = "audio_features" }

/// How raw inputs (image files, texts, WAV recordings) become a model's input tensor, as the
/// model file says: images converted to its channels, resized and normalised; texts through its
/// tokenizer; recordings through its log-mel features. The same path serves predict, evaluate,
/// inspect and the face commands.
///
/// ```swift
/// let saved = try SavedModel.load("fashion-cnn.safetensors")
/// let x = try Preprocessing(saved.info).tensor(files: ["shoe.png"])     // [1, 1, 28, 28]
/// ```
public enum Preprocessing {
    case image(channels: Int, height: Int, width: Int, normalization: Normalization)
    case text(TextTokenizer, length: Int)
    case audio(AudioFeatures)
    /// Inputs that are indices into data the model holds (a graph's nodes).
    case indices
    /// Sequences of `[channels, length]` values (a 1-D convolutional model of raw samples), which
    /// no file format here describes.
    case sequence(channels: Int, length: Int)

    /// The preprocessing a model file describes.
    public init(_ info: ModelInfo) throws {
        if let tok = try info.section(TextTokenizer.self) {
            self = .text(tok, length: info.inputShape.first ?? 64)
        } else if let feats = try info.section(AudioFeatures.self) {
            self = .audio(feats)
        } else if info.inputShape.count == 3 {
            self = .image(channels: info.inputShape[0], height: info.inputShape[1], width: info.inputShape[2], normalization: info.normalization)
        } else if info.inputShape.count == 2 {
            self = .sequence(channels: info.inputShape[0], length: info.inputShape[1])
        } else {
            self = .indices
        }
    }

    public var kind: String {
        switch self {
        case .image: return "image"
        case .text: return "text"
        case .audio: return "audio"
        case .indices: return "graph"
        case .sequence: return "sequence"
        }
    }

    /// `[N, C, H, W]` for 8-bit images already at the model's size and channels, normalised as
    /// the model was trained.
    public func tensor(images: [Image]) throws -> Tensor {
        guard case let .image(c, h, w, n) = self else { throw StrataError("this is a \(kind) model, not an image model") }
        for (i, img) in images.enumerated() where img.width != w || img.height != h || img.channels != c {
            throw StrataError("image \(i) is \(img.width)x\(img.height)x\(img.channels), the model needs \(w)x\(h)x\(c)")
        }
        return n.apply(images.map { $0.planes() }, shape: [c, h, w])
    }

    /// Images (PNG, JPEG, PGM: converted and resized to the model's input) or WAV recordings;
    /// an unreadable file is named.
    public func tensor(files: [String]) throws -> Tensor {
        switch self {
        case let .image(c, h, w, _):
            return try tensor(images: try files.map { p in
                let img = try Image.load(p)
                return (c == 1 ? img.grayscale() : img.rgb()).resized(width: w, height: h)
            })
        case let .audio(feats):
            return feats.standardize(Tensor.stack(try files.map { p in
                let audio = try Audio.loadWAV(p)
                // At least one analysis frame: shorter recordings hold nothing to classify.
                let atFeatureRate = audio.sampleRate > 0 ? Int(Double(audio.samples.count) * Double(feats.sampleRate) / Double(audio.sampleRate)) : 0
                guard atFeatureRate >= feats.nFFT else {
                    throw StrataError("\(p): \(audio.samples.count) sample\(audio.samples.count == 1 ? "" : "s") at \(audio.sampleRate) Hz, shorter than one analysis frame (\(feats.nFFT) samples at \(feats.sampleRate) Hz, \(feats.nFFT * 1000 / feats.sampleRate) ms)")
                }
                return feats.image(audio)
            }))
        case .text:
            throw StrataError("this is a text model: give texts, not files")
        case .indices:
            throw StrataError("this is a graph model: its inputs are node indices, not files")
        case let .sequence(c, l):
            throw StrataError("this model takes sequences of \(c)x\(l) values (a 1-D convolutional model), which strata reads from no file; call it from Swift on an [N, \(c), \(l)] tensor")
        }
    }

    /// Token ids `[N, length]` of texts.
    public func tensor(texts: [String]) throws -> Tensor {
        guard case let .text(tok, length) = self else { throw StrataError("not a text model (no tokenizer in its metadata)") }
        for (i, t) in texts.enumerated() where t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw StrataError("text \(i + 1) is empty")
        }
        return tok.batch(texts, length: length)
    }

    /// One line saying how many texts are longer than a pretrained encoder's maximum length
    /// and so cut (nil when none is, or for other models, which were trained on cut texts).
    public func truncationWarning(texts: [String]) -> String? {
        guard case let .text(tok, length) = self else { return nil }
        let n = tok.truncatedCount(texts, length: length)
        return n == 0 ? nil : "\(n) text\(n == 1 ? " was" : "s were") longer than \(length) tokens and truncated"
    }
}

extension Image {
    /// The pixels channel by channel (`[C, H, W]` order), as `LabeledImages` holds them.
    public func planes() -> [UInt8] {
        if channels == 1 { return pixels }
        var out = [UInt8](repeating: 0, count: pixels.count)
        let hw = width * height
        for ch in 0..<channels { for p in 0..<hw { out[ch * hw + p] = pixels[p * channels + ch] } }
        return out
    }
}

nonisolated(unsafe) private var touchSink: UInt8 = 0

extension Normalization {
    /// `[count] + shape` inputs from 8-bit images given channel by channel (`pixels(i)` points at
    /// image i): `pixel * scale` shifted and scaled per channel, or standardised per image with
    /// `perImage`. The one place where pixels become model inputs (batches, predictions, faces).
    public func apply(count: Int, shape: [Int], pixels: (Int) -> UnsafePointer<UInt8>) -> Tensor {
        let per = shape.reduce(1, *), c = shape[0], hw = per / c
        let t = Tensor(uninitializedShape: [count] + shape)
        // Precomputed per-channel affine map: x * a + b.
        let a = (0..<c).map { perImage ? scale : scale / std[$0 % std.count] }
        let b = (0..<c).map { perImage ? 0 : -mean[$0 % mean.count] / std[$0 % std.count] }
        // One load per cache line of every image first: a batch's images lie scattered in a large
        // array, and these independent loads overlap their misses, which the converting loop
        // below would take one after another.
        var touched: UInt8 = 0
        for row in 0..<count {
            let src = pixels(row)
            for p in stride(from: 0, to: per, by: 64) { touched |= src[p] }
        }
        touchSink = touched
        for row in 0..<count {
            let src = pixels(row), dst = t.data + row * per
            for ch in 0..<c {
                // Plane pointers first: index arithmetic inside the loop keeps it scalar (overflow checks).
                let (ac, bc, s, d) = (a[ch], b[ch], src + ch * hw, dst + ch * hw)
                for p in 0..<hw { d[p] = Float(s[p]) * ac + bc }
            }
        }
        return perImage ? t.standardizedPerImage() : t
    }

    /// The same for images held as separate arrays.
    public func apply(_ planes: [[UInt8]], shape: [Int]) -> Tensor {
        let per = shape.reduce(1, *)
        for (i, px) in planes.enumerated() {
            precondition(px.count == per, "Normalization.apply: image \(i) has \(px.count) pixels, shape \(shape) needs \(per)")
        }
        return planes.flatMap { $0 }.withUnsafeBufferPointer { flat in apply(count: planes.count, shape: shape) { flat.baseAddress! + $0 * per } }
    }
}

extension Preprocessing {
    /// A graph model's input for papers `ids` of the graph in `folder` (Cora's format): the graph
    /// is attached to `model` (a `GCN`) and the papers' node indices returned.
    public static func graphNodes(_ ids: [String], folder: String, model: Module) throws -> Tensor {
        guard let gcn = model as? GCN else { throw StrataError("not a graph model") }
        let graph = try Cora.load(folder)
        guard graph.features.shape[1] == gcn.features else {
            throw StrataError("\(folder): papers have \(graph.features.shape[1]) word features, the model takes \(gcn.features)")
        }
        let index = Dictionary(graph.nodeIDs.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
        let nodes = try ids.map { id -> Float in
            guard let i = index[id] else { throw StrataError("\(folder): no paper \(id) in the graph") }
            return Float(i)
        }
        gcn.attach(graph)
        return Tensor(nodes, shape: [nodes.count])
    }
}
