import Foundation
import StrataCore
import StrataNN

/// A pretrained BERT encoder with a linear head on its pooled sentence embedding: token ids
/// `[N, T]` (right-padded with [PAD]) to class scores `[N, classes]`.
///
/// Frozen (`encoderFolder` set), only the head is this module's state: the model file stores
/// the head and names the encoder folder, whose weights are read again when the file is
/// loaded. Fine-tuned (`encoderFolder` nil), the encoder's weights are state too, stored in the
/// model file under `bert.` with Hugging Face's names.
///
/// ```swift
/// let enc = try TextEncoder(folder: "all-MiniLM-L6-v2")
/// let model = EncoderClassifier(bert: enc.bert, classes: 2, normalize: enc.normalize, padId: enc.tokenizer.padId,
///                               encoderFolder: enc.folder)            // frozen: the head is the state
/// let scores = model(enc.tokenizer.encode(["Great phone."]).ids)    // [1, 2]
/// ```
public final class EncoderClassifier: Module, BuildableModule {
    public let bert: BertEncoder
    public let classifier: Linear
    /// Whether the pooled embedding is scaled to unit length before the head (the encoder's pooling).
    public let normalize: Bool
    public let padId: Int
    /// The folder the frozen encoder's weights come from; nil when they are part of this model.
    public let encoderFolder: String?

    /// Most weights an encoder of a model file may hold (4 GiB of Float32; BERT-large has 0.34 G).
    public static let maxEncoderWeights = 1 << 30

    public init(bert: BertEncoder, classes: Int, normalize: Bool, padId: Int = 0, encoderFolder: String?) {
        self.bert = bert
        self.classifier = Linear(bert.bertConfig.hiddenSize, classes)
        self.normalize = normalize
        self.padId = padId
        self.encoderFolder = encoderFolder
    }

    public var isEncoderFrozen: Bool { encoderFolder != nil }
    public var classes: Int { classifier.outFeatures }

    public override func namedChildren() -> [(String, Module)] {
        isEncoderFrozen ? [("classifier", classifier)] : [("bert", bert), ("classifier", classifier)]
    }

    /// The unpadded width of `ids` (the longest text, at least 1) and its mask `[N, width]`.
    func trimmed(_ ids: Tensor) -> (ids: Tensor, mask: Tensor) {
        let (n, t) = (ids.shape[0], ids.shape[1])
        let pad = Float(padId)
        var width = 1
        ids.withUnsafeBufferPointer { p in
            for r in 0..<n {
                var last = 0
                for c in 0..<t where p[r * t + c] != pad { last = c + 1 }
                width = max(width, last)
            }
        }
        // Batches are padded to a fixed length (a model file's input length): attention and the
        // dense layers need only the longest text's width.
        let x = width < t ? noGrad { ids.slice(axis: 1, start: 0, end: width) } : ids
        var mask = [Float](repeating: 0, count: n * width)
        x.withUnsafeBufferPointer { p in for i in 0..<(n * width) where p[i] != pad { mask[i] = 1 } }
        return (x, Tensor(mask, shape: [n, width]))
    }

    /// The pooled sentence embeddings `[N, hidden]` the head sees.
    public func embedding(_ ids: Tensor) -> Tensor {
        precondition(ids.rank == 2, "EncoderClassifier: ids must be [N, T], got \(ids.shape)")
        let (x, mask) = trimmed(ids)
        return BertEncoder.meanPool(bert.hidden(ids: x, mask: mask), mask: mask, normalize: normalize)
    }

    public override func forward(_ ids: Tensor) -> Tensor {
        // A frozen encoder records no gradients: only the head trains.
        classifier(isEncoderFrozen ? noGrad { embedding(ids) } : embedding(ids))
    }

    /// Attention weights `[N, heads, T, T]` of each layer from the last forward pass.
    public var attentionMaps: [Tensor] { bert.layers.compactMap(\.lastWeights) }

    public override var config: [String: Any] {
        var c: [String: Any] = ["bert": bert.config, "classes": classes, "normalize": normalize, "pad_id": padId]
        if let encoderFolder { c["encoder"] = encoderFolder }
        return c
    }

    /// Rebuilds the model from its architecture entry. A frozen model reads its encoder from the
    /// folder the entry names, which must hold an encoder of the recorded shape.
    public static func build(_ s: [String: Any]) throws -> Module {
        guard let b = s["bert"] as? [String: Any] else { throw StrataError("architecture: EncoderClassifier needs a \"bert\" entry") }
        let (v, h, layers) = (try ModuleRegistry.int(b, "vocab"), try ModuleRegistry.int(b, "hidden"), try ModuleRegistry.int(b, "layers"))
        let (heads, inner) = (try ModuleRegistry.int(b, "heads"), try ModuleRegistry.int(b, "intermediate"))
        let (positions, types) = (try ModuleRegistry.int(b, "positions", 512), try ModuleRegistry.int(b, "types", 2))
        let classes = try ModuleRegistry.int(s, "classes"), padId = (s["pad_id"] as? Int) ?? 0
        for dims in [[v, h], [positions, h], [types, h], [h, inner], [classes, h]] { try ModuleRegistry.weights(s, dims) }
        guard layers <= 256 else { throw StrataError("architecture: EncoderClassifier has \(layers) layers, at most 256") }
        guard h % heads == 0 else { throw StrataError("architecture: EncoderClassifier's \(heads) heads do not divide hidden size \(h)") }
        guard padId >= 0 && padId < v else { throw StrataError("architecture: EncoderClassifier's pad_id \(padId) is outside the vocabulary of \(v)") }
        let eps = Float((b["eps"] as? Double) ?? 1e-12)
        let config = BertConfig(vocabSize: v, hiddenSize: h, layers: layers, heads: heads, intermediateSize: inner,
                                maxPositions: positions, typeVocabSize: types, layerNormEps: eps)
        guard let total = config.parameterCount, total <= EncoderClassifier.maxEncoderWeights else {
            throw StrataError("architecture: EncoderClassifier's encoder would hold more than \(EncoderClassifier.maxEncoderWeights) weights")
        }
        let folder = s["encoder"] as? String
        if let folder {
            let configPath = (folder as NSString).appendingPathComponent("config.json")
            guard FileManager.default.fileExists(atPath: configPath) else {
                throw StrataError("the frozen encoder's folder \(folder) has no config.json (the model file holds only the head; train with --finetune to keep the encoder in the file)")
            }
            let found = try BertConfig(file: configPath)
            guard found == config else {
                throw StrataError("the encoder in \(folder) is not the one the model was trained on (config.json differs)")
            }
            try config.checkFits(weightsFile: (folder as NSString).appendingPathComponent("model.safetensors"))
        }
        let bert = BertEncoder(config: config)
        if let folder { try bert.load(safetensors: (folder as NSString).appendingPathComponent("model.safetensors")) }
        return EncoderClassifier(bert: bert, classes: classes, normalize: s["normalize"] as? Bool ?? true, padId: padId, encoderFolder: folder)
    }

    public override func summaryRows(inputShape: [Int]) -> [LayerSummary] {
        let t = inputShape.first ?? 1, h = bert.bertConfig.hiddenSize
        return [LayerSummary(name: "bert", type: "BertEncoder\(isEncoderFrozen ? " (frozen)" : "")", outputShape: [1, t, h],
                             parameters: isEncoderFrozen ? 0 : bert.parameterCount),
                LayerSummary(name: "pool", type: normalize ? "MeanPool+L2" : "MeanPool", outputShape: [1, h], parameters: 0),
                LayerSummary(name: "classifier", type: "Linear", outputShape: [1, classes], parameters: classifier.parameterCount)]
    }
}

extension EncoderClassifier: ShapeInferable {
    /// Token ids `[N, T]` (T at most the encoder's positions) to class scores `[N, classes]`.
    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 2, shape[1] <= bert.bertConfig.maxPositions else {
            throw StrataError("EncoderClassifier takes token ids [N, T] with T at most \(bert.bertConfig.maxPositions), gets input \(shape)")
        }
        return [shape[0], classes]
    }
}
