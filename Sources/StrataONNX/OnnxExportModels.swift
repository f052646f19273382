import Foundation
import StrataCore
import StrataNN
import StrataData

/// Token ids [N, T] as ONNX takes them: int64, 0 for padding.
private func tokenInputs(_ info: ModelInfo) -> [OnnxInput] {
    [OnnxInput(name: "token_ids", dims: [info.inputShape.first ?? 64], int64: true)]
}

/// Seeded token ids [count, T]: each row 1...T real tokens in 1..<vocabulary, then padding,
/// as Strata's tokenizers write them (padding only at the end).
private func sampleTokens(count: Int, length: Int, vocabulary: Int, seed: Int) -> Tensor {
    var rng = RandomGenerator(seed: UInt64(seed))
    var ids = [Float](repeating: 0, count: count * length)
    for r in 0..<count {
        let n = 1 + Int(rng.next() % UInt64(length))
        for j in 0..<n { ids[r * length + j] = Float(1 + Int(rng.next() % UInt64(Swift.max(vocabulary - 1, 1)))) }
    }
    return Tensor(ids, shape: [count, length])
}

/// The padding mask of int64 ids [N, T] as float (1 for tokens).
private func tokenMask(_ b: OnnxGraphBuilder, _ ids: String) -> String {
    let real = b.op("Greater", [ids, b.int64s([0], shape: [], "pad_id")], base: "mask")
    return b.op("Cast", [real], [OnnxAttribute.int("to", Int(Onnx_TensorProto.DataType.float.rawValue))], base: "mask")
}

extension TextClassifier: OnnxExportable {
    public func onnxInputs(info: ModelInfo) -> [OnnxInput] { tokenInputs(info) }

    public func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor] {
        [sampleTokens(count: count, length: info.inputShape.first ?? maxLength, vocabulary: vocabulary, seed: seed)]
    }

    public var onnxMetadata: [String: String] {
        ["strata.input": "token ids [N, T], int64, 0 for padding; padding only after a text's tokens (as Strata's tokenizer writes them)"]
    }

    /// ids [N, T] -> class scores [N, classes], as `forward`.
    public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
        let ids = inputs[0]
        let mask = tokenMask(b, ids)                                                          // [N, T]
        let mask3 = b.op("Unsqueeze", [mask, b.int64s([2], "axes")], base: "mask")               // [N, T, 1]
        var e = b.op("Mul", [OnnxBlocks.embedding(embedding, b, ids), mask3], base: "embedded")  // [N, T, d]
        let pooled: String
        switch kind {
        case .cnn:
            let x = b.op("Unsqueeze", [b.op("Transpose", [e], [OnnxAttribute.ints("perm", [0, 2, 1])], base: "cnn"), b.int64s([2], "axes")], base: "cnn")  // [N, d, 1, T]
            let maxes = try convs.enumerated().map { i, c in
                let h = b.op("Relu", [try Onnx.emit(c, b, x, path: "\(path).convs.\(i)")], base: "cnn")
                return b.op("ReduceMax", [h], [OnnxAttribute.ints("axes", [2, 3]), OnnxAttribute.int("keepdims", 0)], base: "cnn")  // [N, 64]
            }
            pooled = b.op("Concat", maxes, [OnnxAttribute.int("axis", 1)], base: "cnn")
        case .gru, .lstm:
            let lengths = b.op("Cast", [b.op("ReduceSum", [mask, b.int64s([1], "axes")], [OnnxAttribute.int("keepdims", 0)], base: "lengths")],
                               [OnnxAttribute.int("to", Int(Onnx_TensorProto.DataType.int32.rawValue))], base: "lengths")
            pooled = OnnxBlocks.recurrent(rnn!, b, e, lengths: lengths).last
        case .transformer:
            let t = b.op("Gather", [b.op("Shape", [ids], base: "length"), b.int64Scalar(1, "one")], [OnnxAttribute.int("axis", 0)], base: "length")
            let steps = b.op("Range", [b.int64Scalar(0, "zero"), t, b.int64Scalar(1, "one")], base: "positions")
            e = b.op("Add", [e, OnnxBlocks.embedding(positions!, b, steps)], base: "embedded")   // + [T, d]
            // (mask - 1) * 1e9 on the keys: [N, 1, 1, T]
            let bias = b.op("Mul", [b.op("Sub", [mask, b.scalar(1, "one_f")], base: "mask_bias"), b.scalar(1e9, "big")], base: "mask_bias")
            let bias4 = b.op("Unsqueeze", [bias, b.int64s([1, 2], "axes")], base: "mask_bias")
            for l in layers { e = OnnxBlocks.encoderLayer(l, b, e, maskBias: bias4) }
            let sum = b.op("ReduceSum", [b.op("Mul", [e, mask3], base: "pool"), b.int64s([1], "axes")], [OnnxAttribute.int("keepdims", 0)], base: "pool")
            let counts = b.op("Max", [b.op("ReduceSum", [mask, b.int64s([1], "axes")], [OnnxAttribute.int("keepdims", 1)], base: "pool"), b.scalar(1, "one_f")], base: "pool")
            pooled = b.op("Div", [sum, counts], base: "pool")                                     // [N, d]
        }
        return try Onnx.emit(fc, b, pooled, path: path + ".fc")
    }
}

extension TfIdfClassifier: OnnxExportable {
    public func onnxInputs(info: ModelInfo) -> [OnnxInput] { tokenInputs(info) }

    public func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor] {
        [sampleTokens(count: count, length: info.inputShape.first ?? 64, vocabulary: idf.shape[0], seed: seed)]
    }

    public var onnxMetadata: [String: String] { ["strata.input": "token ids [N, T], int64, 0 for padding"] }

    /// ids [N, T] -> TF-IDF [N, V] (counts times idf, L2-normalised; id 0 and ids past the
    /// vocabulary count for nothing) -> class scores [N, classes].
    public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
        let v = idf.shape[0]
        let oneHot = b.op("OneHot", [inputs[0], b.int64Scalar(Int64(v), "vocabulary"), b.weight(Tensor([0, 1], shape: [2]), "off_on")],
                          [OnnxAttribute.int("axis", -1)], base: "tfidf")                       // [N, T, V]
        let counts = b.op("ReduceSum", [oneHot, b.int64s([1], "axes")], [OnnxAttribute.int("keepdims", 0)], base: "tfidf")   // [N, V]
        var weights = idf.value.scalars
        if !weights.isEmpty { weights[0] = 0 }   // padding
        let tfidf = b.op("Mul", [counts, b.weight(Tensor(weights, shape: [v]), "idf")], base: "tfidf")
        return try Onnx.emit(fc, b, OnnxBlocks.l2Normalized(b, tfidf, eps: 1e-30), path: path + ".fc")
    }
}

extension GCN: OnnxExportable {
    /// Every node's features [N, F] and the normalised adjacency D^-1/2 (A + I) D^-1/2 [N, N].
    public func onnxInputs(info: ModelInfo) -> [OnnxInput] {
        [OnnxInput(name: "features", dims: [features]), OnnxInput(name: "adjacency", shape: [nil, nil])]
    }

    public var onnxMetadata: [String: String] {
        ["strata.input": "features [N, F] of every node and the normalised adjacency D^-1/2 (A + I) D^-1/2 [N, N]; the output is every node's class scores"]
    }

    /// A seeded random graph of `count` nodes: 0/1 features and its dense normalised adjacency.
    public func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor] {
        var rng = RandomGenerator(seed: UInt64(seed))
        let x = Tensor((0..<count * features).map { _ in rng.next() % 10 == 0 ? 1 : 0 }, shape: [count, features])
        var adjacency = [Float](repeating: 0, count: count * count)
        for i in 0..<count {
            adjacency[i * count + i] = 1
            for j in (i + 1)..<Swift.max(i + 1, count) where rng.next() % 4 == 0 {
                adjacency[i * count + j] = 1
                adjacency[j * count + i] = 1
            }
        }
        let degree = (0..<count).map { i in (0..<count).reduce(Float(0)) { $0 + adjacency[i * count + $1] } }
        for i in 0..<count { for j in 0..<count { adjacency[i * count + j] /= (degree[i] * degree[j]).squareRoot() } }
        return [x, Tensor(adjacency, shape: [count, count])]
    }

    /// `A (relu(A (X W1) + b1) W2) + b2` with a dense adjacency: what `allScores` computes on
    /// an attached graph.
    public func onnxReference(_ inputs: [Tensor]) -> Tensor {
        let (x, a) = (inputs[0], inputs[1])
        let h = (a.matmul(x.matmul(conv1.weight.value)) + conv1.bias.value).relu()
        return a.matmul(h.matmul(conv2.weight.value)) + conv2.bias.value
    }

    public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
        func layer(_ c: GraphConv, _ h: String) -> String {
            let hw = b.op("MatMul", [h, b.weight(c.weight.value, "gcn.weight")], base: "gcn")
            return b.op("Add", [b.op("MatMul", [inputs[1], hw], base: "gcn"), b.weight(c.bias.value, "gcn.bias")], base: "gcn")
        }
        return layer(conv2, b.op("Relu", [layer(conv1, inputs[0])], base: "gcn"))
    }
}

extension EncoderClassifier: OnnxExportable {
    /// Ids of any length up to the encoder's positions (the symbolic `T`).
    public func onnxInputs(info: ModelInfo) -> [OnnxInput] { [OnnxInput(name: "token_ids", shape: [nil, nil], int64: true)] }

    /// Seeded ids with padding ([PAD] is id 0 in BERT vocabularies) at most 32 wide: the graph
    /// takes any width up to the encoder's positions.
    public func onnxSampleInputs(count: Int, info: ModelInfo, seed: Int) -> [Tensor] {
        let ids = sampleTokens(count: count, length: Swift.min(info.inputShape.first ?? 32, 32), vocabulary: bert.bertConfig.vocabSize, seed: seed)
        guard padId != 0 else { return [ids] }
        return [Tensor(ids.scalars.map { $0 == 0 ? Float(padId) : ($0 == Float(padId) ? 0 : $0) }, shape: ids.shape)]
    }

    public var onnxMetadata: [String: String] {
        ["strata.input": "WordPiece token ids [N, T], int64: [CLS] pieces [SEP], then [PAD] (id \(padId)) after the text"]
    }

    /// ids [N, T] -> embeddings + LayerNorm -> BERT layers -> masked mean pool (-> L2 norm) ->
    /// class scores [N, classes], as `forward` (which cuts the padding off first; masked
    /// positions change nothing).
    public func emitOnnx(_ b: OnnxGraphBuilder, inputs: [String], path: String) throws -> String {
        let ids = inputs[0], emb = bert.embeddings
        let isPad = b.op("Cast", [b.op("Equal", [ids, b.int64s([Int64(padId)], shape: [], "pad_id")], base: "mask")],
                         [OnnxAttribute.int("to", Int(Onnx_TensorProto.DataType.float.rawValue))], base: "mask")
        let mask = b.op("Sub", [b.scalar(1, "one_f"), isPad], base: "mask")                    // [N, T], 1 for tokens
        let t = b.op("Gather", [b.op("Shape", [ids], base: "length"), b.int64Scalar(1, "one")], [OnnxAttribute.int("axis", 0)], base: "length")
        let steps = b.op("Range", [b.int64Scalar(0, "zero"), t, b.int64Scalar(1, "one")], base: "positions")
        let typeRow = b.weight(emb.tokenType.weight.value.indexSelect(axis: 0, indices: [0]), "token_type_0")   // [1, H]
        var x = b.op("Add", [b.op("Add", [OnnxBlocks.embedding(emb.word, b, ids), OnnxBlocks.embedding(emb.position, b, steps)], base: "embedded"), typeRow],
                     base: "embedded")
        x = OnnxBlocks.layerNorm(emb.norm, b, x)
        let bias = b.op("Unsqueeze", [b.op("Mul", [b.op("Sub", [mask, b.scalar(1, "one_f")], base: "mask_bias"), b.scalar(1e9, "big")], base: "mask_bias"),
                                      b.int64s([1, 2], "axes")], base: "mask_bias")            // [N, 1, 1, T]
        for layer in bert.layers { x = try bertLayer(layer, b, x, maskBias: bias) }
        let mask3 = b.op("Unsqueeze", [mask, b.int64s([2], "axes")], base: "mask")              // [N, T, 1]
        let sum = b.op("ReduceSum", [b.op("Mul", [x, mask3], base: "pool"), b.int64s([1], "axes")], [OnnxAttribute.int("keepdims", 0)], base: "pool")
        let counts = b.op("Max", [b.op("ReduceSum", [mask, b.int64s([1], "axes")], [OnnxAttribute.int("keepdims", 1)], base: "pool"), b.scalar(1e-9, "tiny")], base: "pool")
        var pooled = b.op("Div", [sum, counts], base: "pool")                                    // [N, H]
        if normalize { pooled = OnnxBlocks.l2Normalized(b, pooled) }
        return OnnxBlocks.linear(classifier, b, pooled)
    }

    /// One post-norm BERT layer: separate query, key and value projections, masked attention,
    /// then dense + GELU (erf) + dense, each with a residual LayerNorm.
    private func bertLayer(_ l: BertLayer, _ b: OnnxGraphBuilder, _ x: String, maskBias: String) throws -> String {
        let h = bert.bertConfig.hiddenSize, dh = h / l.heads
        let headShape = b.int64s([0, 0, Int64(l.heads), Int64(dh)], "attn.head_shape")
        func heads4(_ p: Linear, _ perm: [Int]) -> String {
            b.op("Transpose", [b.op("Reshape", [OnnxBlocks.linear(p, b, x), headShape], base: "attn")], [OnnxAttribute.ints("perm", perm)], base: "attn")
        }
        let q = heads4(l.query, [0, 2, 1, 3]), k = heads4(l.key, [0, 2, 3, 1]), v = heads4(l.value, [0, 2, 1, 3])
        let scores = b.op("Add", [b.op("Mul", [b.op("MatMul", [q, k], base: "attn"), b.scalar(1 / Float(dh).squareRoot(), "attn.scale")], base: "attn"), maskBias],
                          base: "attn")
        let w = b.op("Softmax", [scores], [OnnxAttribute.int("axis", -1)], base: "attn")            // [N, heads, T, T]
        let context = b.op("Reshape", [b.op("Transpose", [b.op("MatMul", [w, v], base: "attn")], [OnnxAttribute.ints("perm", [0, 2, 1, 3])], base: "attn"),
                                       b.int64s([0, 0, Int64(h)], "attn.shape")], base: "attn")     // [N, T, H]
        let a = OnnxBlocks.layerNorm(l.attentionNorm, b, b.op("Add", [x, OnnxBlocks.linear(l.attentionOutput, b, context)], base: "bert"))
        let inner = try Onnx.emit(GELU(), b, OnnxBlocks.linear(l.intermediate, b, a), path: "gelu")
        return OnnxBlocks.layerNorm(l.outputNorm, b, b.op("Add", [a, OnnxBlocks.linear(l.output, b, inner)], base: "bert"))
    }
}
