import StrataCore
import StrataNN

/// Text classifiers over token ids `[N, T]` (whole numbers; 0 is padding), as in the reference
/// scripts: an embedding (padding embeds to zeros), then a 1-D CNN, a recurrent layer or a
/// Transformer encoder, then a linear layer to the classes.
public final class TextClassifier: Module, BuildableModule {
    public enum Kind: String, CaseIterable { case cnn, gru, lstm, transformer }

    public let embedding: Embedding
    public let convs: [Conv2D]
    public let rnn: RecurrentLayer?
    public let positions: Embedding?
    public let layers: [TransformerEncoderLayer]
    public let dropout: Dropout
    public let fc: Linear
    public let kind: Kind
    public let vocabulary: Int, dim: Int, classes: Int, maxLength: Int

    public init(kind: Kind, vocabulary: Int, classes: Int, dim: Int = 64, maxLength: Int = 64) {
        self.kind = kind
        self.vocabulary = vocabulary
        self.dim = dim
        self.classes = classes
        self.maxLength = maxLength
        embedding = Embedding(vocabulary, dim)
        switch kind {
        case .cnn:
            convs = [3, 4, 5].map { Conv2D(dim, 64, kernelSize: Size2(1, $0)) }
            rnn = nil; positions = nil; layers = []
            dropout = Dropout(0.5)
            fc = Linear(64 * 3, classes)
        case .gru, .lstm:
            convs = []; positions = nil; layers = []
            rnn = kind == .gru ? GRU(dim, dim) : LSTM(dim, dim)
            dropout = Dropout(0)
            fc = Linear(dim, classes)
        case .transformer:
            convs = []; rnn = nil
            positions = Embedding(maxLength, dim)
            layers = [TransformerEncoderLayer(dim: dim, heads: 4, feedForward: 2 * dim), TransformerEncoderLayer(dim: dim, heads: 4, feedForward: 2 * dim)]
            dropout = Dropout(0)
            fc = Linear(dim, classes)
        }
    }

    public override func forward(_ ids: Tensor) -> Tensor {
        precondition(ids.rank == 2, "TextClassifier: ids must be [N, T], got \(ids.shape)")
        let (n, t) = (ids.shape[0], ids.shape[1])
        let mask = ids.gt(0)                                       // [N, T], 1 for real tokens
        var e = embedding(ids) * mask.reshape([n, t, 1])          // padding embeds to zeros
        switch kind {
        case .cnn:
            let x = e.permute(0, 2, 1).reshape([n, dim, 1, t])
            let pooled = convs.map { $0(x).relu().max(axis: 3).reshape([n, 64]) }
            return fc(dropout(Tensor.concat(pooled, axis: 1)))
        case .gru, .lstm:
            return fc(rnn!.run(e, mask: mask).last)
        case .transformer:
            precondition(t <= maxLength, "TextClassifier: \(t) tokens, at most \(maxLength)")
            e = e + positions!(Tensor.arange(t)).reshape([1, t, dim])
            for l in layers { e = l.encode(e, keyMask: mask) }
            let counts = mask.sum(axis: 1, keepDims: true).maximum(Tensor(1))   // [N, 1]
            return fc((e * mask.reshape([n, t, 1])).sum(axis: 1) / counts)
        }
    }

    public override var config: [String: Any] {
        ["kind": kind.rawValue, "vocabulary": vocabulary, "classes": classes, "dim": dim, "max_length": maxLength]
    }

    /// Attention weights `[N, heads, T, T]` of each encoder layer from the last forward pass.
    public var attentionMaps: [Tensor] { layers.compactMap { $0.selfAttn.lastWeights } }

    /// Rebuilds the layer from its architecture entry (its `config`); found by `ModuleRegistry` by name.
    public static func build(_ s: [String: Any]) throws -> Module {
        guard let k = (s["kind"] as? String).flatMap(Kind.init) else { throw StrataError("architecture: TextClassifier needs a \"kind\"") }
        let (v, c) = (try ModuleRegistry.int(s, "vocabulary"), try ModuleRegistry.int(s, "classes"))
        let (d, t) = (try ModuleRegistry.int(s, "dim", 64), try ModuleRegistry.int(s, "max_length", 64))
        for dims in [[v, d], [t, d], [4 * d, d], [d, c], [64 * 3, c], [64, d, 5]] { try ModuleRegistry.weights(s, dims) }
        if k == .transformer, d % 4 != 0 { throw StrataError("architecture: TextClassifier transformer needs \"dim\" divisible by its 4 heads, got \(d)") }
        return TextClassifier(kind: k, vocabulary: v, classes: c, dim: d, maxLength: t)
    }
}

extension TextClassifier: ShapeInferable {
    /// Token ids `[N, T]` to class scores `[N, classes]`.
    public func outputShape(for shape: [Int]) throws -> [Int] {
        guard shape.count == 2, kind != .transformer || shape[1] <= maxLength else {
            throw StrataError("TextClassifier takes token ids [N, T]\(kind == .transformer ? " with T at most \(maxLength)" : ""), gets input \(shape)")
        }
        return [shape[0], classes]
    }
}
