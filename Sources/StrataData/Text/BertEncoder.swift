import CStrata
import Foundation
import StrataCore
import StrataNN

/// The shape of a BERT encoder, read from Hugging Face's `config.json`.
public struct BertConfig: Equatable {
    public var vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int, intermediateSize: Int
    public var maxPositions: Int, typeVocabSize: Int
    public var layerNormEps: Float

    public init(vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int, intermediateSize: Int,
                maxPositions: Int = 512, typeVocabSize: Int = 2, layerNormEps: Float = 1e-12) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
    }

    /// Reads `config.json` (hidden_size, num_hidden_layers, num_attention_heads,
    /// intermediate_size, max_position_embeddings, type_vocab_size, vocab_size, layer_norm_eps;
    /// hidden_act must be "gelu").
    public init(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StrataError("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file (a BERT encoder needs its config.json)")")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data), let c = obj as? [String: Any] else {
            throw StrataError("\(path): not a JSON object")
        }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            if let v = c[key] as? Int, v > 0 { return v }
            if c[key] == nil, let d { return d }
            throw StrataError("\(path): \(key) \(c[key] == nil ? "is missing" : "must be a positive integer")")
        }
        if let act = c["hidden_act"], act as? String != "gelu" {
            throw StrataError("\(path): hidden_act \(act) is not supported (only \"gelu\", the erf form)")
        }
        if let kind = c["position_embedding_type"] as? String, kind != "absolute" {
            throw StrataError("\(path): position_embedding_type \(kind) is not supported (only \"absolute\")")
        }
        let eps = (c["layer_norm_eps"] as? Double) ?? 1e-12
        self.init(vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"), layers: try int("num_hidden_layers"),
                  heads: try int("num_attention_heads"), intermediateSize: try int("intermediate_size"),
                  maxPositions: try int("max_position_embeddings", default: 512), typeVocabSize: try int("type_vocab_size", default: 2),
                  layerNormEps: Float(eps))
        guard hiddenSize % heads == 0 else {
            throw StrataError("\(path): num_attention_heads \(heads) does not divide hidden_size \(hiddenSize)")
        }
    }
}

extension BertConfig {
    /// Weights of an encoder of this shape (nil when the count overflows).
    public var parameterCount: Int? {
        let (h, i) = (hiddenSize, intermediateSize)
        let terms: [[Int]] = [[vocabSize + maxPositions + typeVocabSize + 2, h],
                              [layers, 4 * h * h + 2 * h * i + 9 * h + i]]
        var total = 0
        for t in terms {
            var p = 1
            for f in t {
                let (m, o) = p.multipliedReportingOverflow(by: f)
                guard !o else { return nil }
                p = m
            }
            let (s, o) = total.addingReportingOverflow(p)
            guard !o else { return nil }
            total = s
        }
        return total
    }

    /// Throws unless the safetensors file at `path` is large enough to hold this encoder's
    /// Float32 weights (16-bit files at least half that): a config read from a file must not
    /// size an allocation before the weights it describes are known to exist.
    public func checkFits(weightsFile path: String) throws {
        guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
            throw StrataError("\(path): no such file (the encoder's weights)")
        }
        guard let n = parameterCount, n <= size / 2 else {
            throw StrataError("\(path): \(size) bytes cannot hold the \(parameterCount.map(String.init) ?? "too many") weights config.json describes (\(layers) layers of hidden size \(hiddenSize), vocabulary \(vocabSize))")
        }
    }
}

/// A BERT encoder (Hugging Face's `BertModel` without the pooler): word, position and
/// token-type embeddings with LayerNorm, then post-norm Transformer layers with GELU. Its
/// parameters carry Hugging Face's names, so `stateDict()` and `load(safetensors:)` speak them.
///
/// ```swift
/// let bert = try BertEncoder(config: BertConfig(file: "model/config.json"))
/// try bert.load(safetensors: "model/model.safetensors")
/// let batch = tokenizer.encode(["a sentence"])
/// let h = bert.hidden(ids: batch.ids, mask: batch.mask)         // [1, T, hidden]
/// let e = BertEncoder.meanPool(h, mask: batch.mask)              // [1, hidden], unit length
/// ```
public final class BertEncoder: Module {
    public let bertConfig: BertConfig
    public let embeddings: BertEmbeddings
    public let layers: [BertLayer]

    public init(config: BertConfig) {
        bertConfig = config
        embeddings = BertEmbeddings(config)
        layers = (0..<config.layers).map { _ in BertLayer(config) }
    }

    public override func namedChildren() -> [(String, Module)] {
        [("embeddings", embeddings)] + layers.enumerated().map { ("encoder.layer.\($0.offset)", $0.element) }
    }

    /// With gradients off (`noGrad`) and a padding-at-the-end mask, `hidden` runs fused
    /// inference kernels on the tokens alone (padding rows dropped from every product; attention
    /// reading the projections in place; residual + LayerNorm in one pass), and the hidden states
    /// of padding positions are 0 (the op-by-op path computes values there that pooling ignores).
    /// False forces the op-by-op path, which is always used while gradients are recorded.
    public var fusedInference = true
    /// Whether the fused path fills each layer's `lastWeights` (the op-by-op path always does);
    /// when false it leaves them nil. `TextEncoder.encode` turns it off while it embeds.
    public var keepsAttentionWeights = true

    /// Last hidden states `[N, T, hidden]` for token ids `[N, T]` and mask `[N, T]` (1 = token).
    public func hidden(ids: Tensor, mask: Tensor) -> Tensor {
        precondition(ids.rank == 2 && ids.shape == mask.shape, "BertEncoder: ids \(ids.shape) and mask \(mask.shape) must both be [N, T]")
        if fusedInference && !GradMode.isEnabled, ids.shape[0] > 0, let lengths = Self.prefixLengths(mask) {
            return fusedHidden(ids: ids, lengths: lengths)
        }
        // A pass that records gradients is training: the weights are about to change.
        if GradMode.isEnabled { dropPackedWeights() }
        var x = embeddings(ids)
        let (n, t) = (ids.shape[0], ids.shape[1])
        // Padding keys get a large negative score: their softmax weight underflows to exactly 0.
        let keyBias = ((mask - 1) * 1e9).reshape([n, 1, 1, t])
        for layer in layers { x = layer.encode(x, keyBias: keyBias) }
        return x
    }

    /// `hidden` for inference: the tokens of all rows packed as [tokens, H] through every layer,
    /// then put back in place with zeros at the padding.
    func fusedHidden(ids: Tensor, lengths: [Int]) -> Tensor {
        let e = embeddings.fusedForward(ids)
        let (n, t, h) = (e.shape[0], e.shape[1], e.shape[2])
        var starts = [Int](repeating: 0, count: n)
        for b in 1..<max(n, 1) { starts[b] = starts[b - 1] + lengths[b - 1] }
        let tokens = starts[n - 1] + lengths[n - 1]
        var x = tokens == n * t ? e.reshape([tokens, h]) : Tensor(uninitializedShape: [tokens, h])
        if tokens < n * t {
            for b in 0..<n { (x.data + starts[b] * h).update(from: e.data + b * t * h, count: lengths[b] * h) }
        }
        for layer in layers { x = layer.encodeFused(x, lengths: lengths, starts: starts, width: t, keepWeights: keepsAttentionWeights) }
        if tokens == n * t { return x.reshape([n, t, h]) }
        let out = Tensor.zeros([n, t, h])
        for b in 0..<n { (out.data + b * t * h).update(from: x.data + starts[b] * h, count: lengths[b] * h) }
        return out
    }

    /// Tokens per row when every row of `mask` is ones then zeros with at least one token (what
    /// the tokenizer's batches give); nil otherwise.
    static func prefixLengths(_ mask: Tensor) -> [Int]? {
        let (n, t) = (mask.shape[0], mask.shape[1])
        return mask.withUnsafeBufferPointer { m -> [Int]? in
            var lengths = [Int](repeating: 0, count: n)
            for r in 0..<n {
                var len = 0
                while len < t && m[r * t + len] == 1 { len += 1 }
                for c in len..<t where m[r * t + c] != 0 { return nil }
                if len == 0 { return nil }
                lengths[r] = len
            }
            return lengths
        }
    }

    /// Hidden states without a mask (every position a token).
    public override func forward(_ ids: Tensor) -> Tensor { hidden(ids: ids, mask: Tensor.ones(ids.shape)) }

    /// Packs every layer's weights once for the fused inference path (`TextEncoder` does at
    /// load): each product then reads packed panels instead of packing its weights again, which
    /// at batch 1 costs as much as the product. The packs are copies of the weights, dropped by
    /// `load(safetensors:)`, by any pass that records gradients, and by `dropPackedWeights()`;
    /// after changing weights another way, call this again.
    public func packForInference() {
        for layer in layers { layer.packed = noGrad { PackedBertLayer(layer) } }
    }

    /// Drops the packed weights: the fused path packs per product again.
    public func dropPackedWeights() {
        for layer in layers { layer.packed = nil }
    }

    /// Loads weights by Hugging Face's names (with or without a `bert.` prefix; the pooler,
    /// `position_ids` and pre-training heads are ignored). A missing tensor, a shape that does
    /// not follow the config, or a tensor of an unknown layer throws an error naming it.
    public func load(safetensors path: String) throws {
        dropPackedWeights()
        let (raw, _) = try Safetensors.read(path)
        var tensors: [String: Tensor] = [:]
        for (name, t) in raw {
            let key = name.hasPrefix("bert.") ? String(name.dropFirst(5)) : name
            if key.hasPrefix("pooler.") || key.hasPrefix("cls.") || key == "embeddings.position_ids" { continue }
            tensors[key] = t
        }
        let c = bertConfig
        let shapes = "hidden_size \(c.hiddenSize), intermediate_size \(c.intermediateSize), vocab_size \(c.vocabSize), max_position_embeddings \(c.maxPositions), type_vocab_size \(c.typeVocabSize)"
        let states = namedStates()
        for (name, p) in states {
            guard let t = tensors[name] else {
                throw StrataError("\(path): tensor '\(name)' is missing (config.json asks for \(c.layers) layers of hidden size \(c.hiddenSize))")
            }
            guard t.shape == p.shape else {
                throw StrataError("\(path): tensor '\(name)' has shape \(t.shape) but config.json (\(shapes)) gives \(p.shape)")
            }
        }
        let known = Set(states.map(\.0))
        if let extra = tensors.keys.sorted().first(where: { !known.contains($0) }) {
            throw StrataError("\(path): tensor '\(extra)' does not belong to a BERT encoder of \(c.layers) layers as config.json describes")
        }
        for (name, p) in states { p.assign(tensors[name]!) }
    }

    /// Mean of `hidden` `[N, T, H]` over the positions where `mask` `[N, T]` is 1, scaled to
    /// unit length (sentence-transformers' mean pooling and Normalize) unless `normalize` is false.
    public static func meanPool(_ hidden: Tensor, mask: Tensor, normalize: Bool = true) -> Tensor {
        let (n, t) = (hidden.shape[0], hidden.shape[1])
        let m = mask.reshape([n, t, 1])
        let counts = mask.sum(axis: 1, keepDims: true).maximum(Tensor(1e-9))   // [N, 1]
        let mean = (hidden * m).sum(axis: 1) / counts
        guard normalize else { return mean }
        let norm = mean.square().sum(axis: 1, keepDims: true).sqrt().maximum(Tensor(1e-12))
        return mean / norm
    }

    public override var config: [String: Any] {
        let c = bertConfig
        return ["vocab": c.vocabSize, "hidden": c.hiddenSize, "layers": c.layers, "heads": c.heads, "intermediate": c.intermediateSize,
                "positions": c.maxPositions, "types": c.typeVocabSize, "eps": Double(c.layerNormEps)]
    }
}

/// BERT's embeddings: word + position + token type (always type 0 here), then LayerNorm.
public final class BertEmbeddings: Module {
    public let word: Embedding, position: Embedding, tokenType: Embedding
    public let norm: LayerNorm

    init(_ c: BertConfig) {
        word = Embedding(c.vocabSize, c.hiddenSize)
        position = Embedding(c.maxPositions, c.hiddenSize)
        tokenType = Embedding(c.typeVocabSize, c.hiddenSize)
        norm = LayerNorm(c.hiddenSize, eps: c.layerNormEps)
    }

    public override func namedChildren() -> [(String, Module)] {
        [("word_embeddings", word), ("position_embeddings", position), ("token_type_embeddings", tokenType), ("LayerNorm", norm)]
    }

    /// `[N, T]` ids -> `[N, T, hidden]`.
    public override func forward(_ ids: Tensor) -> Tensor {
        let t = ids.shape[1]
        precondition(t <= position.count, "BertEmbeddings: \(t) tokens but only \(position.count) positions")
        let pos = position.weight.value.indexSelect(axis: 0, indices: Array(0..<t))      // [T, H]
        let type0 = tokenType.weight.value.indexSelect(axis: 0, indices: [0])           // [1, H]
        return norm(word(ids) + pos + type0)
    }

    /// `forward` without recording, with LayerNorm as one kernel.
    func fusedForward(_ ids: Tensor) -> Tensor {
        let t = ids.shape[1]
        precondition(t <= position.count, "BertEmbeddings: \(t) tokens but only \(position.count) positions")
        let pos = position.weight.value.indexSelect(axis: 0, indices: Array(0..<t))
        let type0 = tokenType.weight.value.indexSelect(axis: 0, indices: [0])
        let x = word(ids) + pos + type0
        let h = x.shape[2]
        sk_add_layernorm(x.count / h, h, x.data, nil, norm.weight.value.data, norm.bias.value.data, norm.eps, x.data)
        return x
    }
}

/// One post-norm BERT layer: self-attention (separate query, key and value projections) with
/// a residual LayerNorm, then dense + GELU + dense with a residual LayerNorm.
public final class BertLayer: Module {
    public let query: Linear, key: Linear, value: Linear
    public let attentionOutput: Linear, attentionNorm: LayerNorm
    public let intermediate: Linear, output: Linear, outputNorm: LayerNorm
    public let heads: Int
    /// The attention weights `[N, heads, T, T]` of the last forward pass (for inspection). After a
    /// fused inference pass the rows of padding queries are 0, and it is nil when the encoder's
    /// `keepsAttentionWeights` is false.
    public internal(set) var lastWeights: Tensor?
    /// The layer's weights packed for the fused path (`BertEncoder.packForInference`).
    var packed: PackedBertLayer?

    init(_ c: BertConfig) {
        let h = c.hiddenSize
        heads = c.heads
        query = Linear(h, h)
        key = Linear(h, h)
        value = Linear(h, h)
        attentionOutput = Linear(h, h)
        attentionNorm = LayerNorm(h, eps: c.layerNormEps)
        intermediate = Linear(h, c.intermediateSize)
        output = Linear(c.intermediateSize, h)
        outputNorm = LayerNorm(h, eps: c.layerNormEps)
    }

    public override func namedChildren() -> [(String, Module)] {
        [("attention.self.query", query), ("attention.self.key", key), ("attention.self.value", value),
         ("attention.output.dense", attentionOutput), ("attention.output.LayerNorm", attentionNorm),
         ("intermediate.dense", intermediate), ("output.dense", output), ("output.LayerNorm", outputNorm)]
    }

    /// `x` `[N, T, H]`; `keyBias` `[N, 1, 1, T]` added to the attention scores (0 or very negative).
    public func encode(_ x: Tensor, keyBias: Tensor?) -> Tensor {
        let (n, t, h) = (x.shape[0], x.shape[1], x.shape[2]), dh = h / heads
        func split(_ y: Tensor) -> Tensor { y.reshape([n, t, heads, dh]).permute(0, 2, 1, 3) }   // [N, heads, T, dh]
        let (q, k, v) = (split(query(x)), split(key(x)), split(value(x)))
        var scores = q.matmul(k.transposed()) * (1 / Float(dh).squareRoot())
        if let keyBias { scores = scores + keyBias }
        let w = scores.softmax()
        lastWeights = w.detached()
        let context = w.matmul(v).permute(0, 2, 1, 3).reshape([n, t, h])
        let a = attentionNorm(x + attentionOutput(context))
        return outputNorm(a + output(intermediate(a).gelu()))
    }

    public override func forward(_ x: Tensor) -> Tensor { encode(x, keyBias: nil) }

    /// `encode` for inference (no recording) on `x` [tokens, H], the tokens of sequence b at rows
    /// `starts[b]..<starts[b] + lengths[b]` (no padding rows; `width` is the padded length, for
    /// `lastWeights` [N, heads, width, width]). The query, key and value projections land side by
    /// side in one [tokens, 3H] buffer that the attention kernel reads per head in place (no
    /// permutes, no score tensor), and each residual + LayerNorm is one pass. Same arithmetic as
    /// `encode` on the tokens up to rounding order.
    func encodeFused(_ x: Tensor, lengths: [Int], starts: [Int], width t: Int, keepWeights: Bool) -> Tensor {
        let (rows, h) = (x.shape[0], x.shape[1]), n = lengths.count, dh = h / heads
        let profile = Profiler.isEnabled
        var t0 = profile ? Profiler.now() : 0
        func lap(_ name: String) {
            guard profile else { return }
            let now = Profiler.now()
            Profiler.add("bert fused \(name)", now - t0)
            t0 = now
        }
        let p: PackedBertLayer? = packed
        // With packed weights one product gives [rows, 3H].
        let qkv: Tensor = p?.qkv(x) ?? Tensor(uninitializedShape: [rows, 3 * h])
        for (j, lin) in [query, key, value].enumerated() where p == nil {
            let out = qkv.data + j * h
            if let b = lin.bias?.value.data {
                for r in 0..<rows { (out + r * 3 * h).update(from: b, count: h) }
            }
            strata_sgemm(0, 1, rows, h, h, 1, x.data, h, lin.weight.value.data, h, lin.bias == nil ? 0 : 1, out, 3 * h)
        }
        lap("qkv")
        let context = Tensor(uninitializedShape: [rows, h])
        let weights = keepWeights ? Tensor.zeros([n, heads, t, t]) : nil
        lengths.withUnsafeBufferPointer { lens in
            starts.withUnsafeBufferPointer { st in
                sk_attention(n, t, heads, dh, qkv.data, qkv.data + h, qkv.data + 2 * h, 3 * h, lens.baseAddress!, st.baseAddress!,
                             1 / Float(dh).squareRoot(), context.data, h, weights?.data)
            }
        }
        lastWeights = weights
        lap("attention")
        let a: Tensor = p?.attentionOutput(context) ?? attentionOutput(context)
        sk_add_layernorm(rows, h, a.data, x.data, attentionNorm.weight.value.data, attentionNorm.bias.value.data, attentionNorm.eps, a.data)
        lap("attention output + norm")
        // Out of place: in place, the vectorised GELU loop fails its overlap check and runs scalar.
        let f: Tensor = p?.intermediate(a, activation: .gelu) ?? intermediate(a).gelu()
        lap("intermediate + gelu")
        let o: Tensor = p?.output(f) ?? output(f)
        sk_add_layernorm(rows, h, o.data, a.data, outputNorm.weight.value.data, outputNorm.bias.value.data, outputNorm.eps, o.data)
        lap("output + norm")
        return o
    }
}

/// A BERT layer's linear maps packed once for inference (query, key and value as one [3H, H]
/// product); nil when only some of the three projections have a bias.
final class PackedBertLayer {
    let qkv: PackedLinear, attentionOutput: PackedLinear, intermediate: PackedLinear, output: PackedLinear

    init?(_ l: BertLayer) {
        let biases: [Tensor] = [l.query.bias, l.key.bias, l.value.bias].compactMap { $0?.value }
        guard biases.isEmpty || biases.count == 3 else { return nil }
        let weight: Tensor = Tensor.concat([l.query.weight.value, l.key.weight.value, l.value.weight.value], axis: 0)   // [3H, H]
        let bias: Tensor? = biases.isEmpty ? nil : Tensor.concat(biases, axis: 0)
        qkv = PackedLinear(weight: weight, bias: bias)
        attentionOutput = PackedLinear(weight: l.attentionOutput.weight.value, bias: l.attentionOutput.bias?.value)
        intermediate = PackedLinear(weight: l.intermediate.weight.value, bias: l.intermediate.bias?.value)
        output = PackedLinear(weight: l.output.weight.value, bias: l.output.bias?.value)
    }
}
