import Foundation
import StrataCore
import StrataNN

/// A pretrained sentence encoder from a folder laid out as sentence-transformers saves one
/// (all-MiniLM-L6-v2's): `vocab.txt` (+ `tokenizer_config.json`), `config.json`,
/// `model.safetensors`, optionally `sentence_bert_config.json` (maximum length),
/// `1_Pooling/config.json` (must ask for mean pooling) and `modules.json` (L2 normalisation
/// when it lists `Normalize`; without modules.json embeddings are normalised).
///
/// ```swift
/// let enc = try TextEncoder(folder: "all-MiniLM-L6-v2")
/// let e = try enc.embed(["A great phone.", "Terrible service."])    // [2, 384], unit rows
/// let r = try enc.encode(texts)                                     // with truncation report
/// if let w = r.truncationWarning { print(w) }
/// ```
public final class TextEncoder {
    public let tokenizer: WordPieceTokenizer
    public let bert: BertEncoder
    public let normalize: Bool
    public let folder: String
    /// Tokens per text at most, [CLS] and [SEP] included.
    public var maxLength: Int { min(tokenizer.maxLength, bert.bertConfig.maxPositions) }
    public var dimension: Int { bert.bertConfig.hiddenSize }

    public init(folder: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
            throw StrataError("\(folder): no such folder (a text encoder folder holds vocab.txt, config.json and model.safetensors)")
        }
        self.folder = folder
        tokenizer = try WordPieceTokenizer(folder: folder)
        let config = try BertConfig(file: (folder as NSString).appendingPathComponent("config.json"))
        guard config.vocabSize >= tokenizer.vocabulary.count else {
            throw StrataError("\(folder): vocab.txt has \(tokenizer.vocabulary.count) tokens but config.json's vocab_size is \(config.vocabSize)")
        }
        let weights = (folder as NSString).appendingPathComponent("model.safetensors")
        try config.checkFits(weightsFile: weights)
        bert = BertEncoder(config: config)
        try bert.load(safetensors: weights)
        bert.packForInference()
        bert.eval()
        if let pooling = try readJSONObject((folder as NSString).appendingPathComponent("1_Pooling"), "config.json") {
            let other = ["pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens"].filter { pooling[$0] as? Bool == true }
            guard pooling["pooling_mode_mean_tokens"] as? Bool ?? true, other.isEmpty else {
                throw StrataError("\(folder)/1_Pooling/config.json: only mean pooling is supported (it asks for \(other.joined(separator: ", ")))")
            }
        }
        let modulesPath = (folder as NSString).appendingPathComponent("modules.json")
        if let data = FileManager.default.contents(atPath: modulesPath) {
            guard let list = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
                throw StrataError("\(modulesPath): not a JSON list of modules")
            }
            normalize = list.contains { ($0["type"] as? String)?.hasSuffix("Normalize") == true }
        } else {
            normalize = true
        }
    }

    /// Sentence embeddings `[N, dimension]` (see `encode` for the truncation report).
    public func embed(_ texts: [String], batchSize: Int = 64) throws -> Tensor {
        try encode(texts, batchSize: batchSize).embeddings
    }

    /// Embeds `texts` in batches of `batchSize`, longest first so that a batch holds texts of
    /// similar lengths (as sentence-transformers does: less padding; each text's embedding does
    /// not depend on its batch). A text with no tokens (empty, only spaces or control
    /// characters) throws an error naming it; longer texts are truncated to `maxLength` tokens
    /// and listed in the result. Runs without recording and leaves the layers' `lastWeights` nil.
    public func encode(_ texts: [String], batchSize: Int = 64) throws -> TextEmbeddings {
        guard batchSize > 0 else { throw StrataError("batch size must be positive, got \(batchSize)") }
        guard !texts.isEmpty else { throw StrataError("no texts to embed") }
        let pieces = texts.map(tokenizer.tokenIds)
        if let i = pieces.firstIndex(where: \.isEmpty) {
            throw StrataError("text \(i + 1) of \(texts.count) is empty (no tokens after removing spaces and control characters)")
        }
        let order = texts.indices.sorted { pieces[$0].count > pieces[$1].count }
        let out = Tensor(uninitializedShape: [texts.count, dimension])
        var truncated: [Int] = []
        // The attention maps of the last batch are of no use here; not writing them saves time.
        let keep = bert.keepsAttentionWeights
        bert.keepsAttentionWeights = false
        defer { bert.keepsAttentionWeights = keep }
        try noGrad {
            for start in stride(from: 0, to: texts.count, by: batchSize) {
                let rows = Array(order[start..<min(start + batchSize, texts.count)])
                let batch = tokenizer.batch(pieces: rows.map { pieces[$0] }, maxLength: maxLength)
                truncated += rows.indices.filter { batch.truncated[$0] }.map { rows[$0] }
                let e = BertEncoder.meanPool(bert.hidden(ids: batch.ids, mask: batch.mask), mask: batch.mask, normalize: normalize)
                guard e.shape == [rows.count, dimension] else { throw StrataError("text encoder: pooled shape \(e.shape)") }
                e.withUnsafeBufferPointer { src in
                    for (j, i) in rows.enumerated() { (out.data + i * dimension).update(from: src.baseAddress! + j * dimension, count: dimension) }
                }
            }
        }
        return TextEmbeddings(embeddings: out, truncated: truncated.sorted(), maxLength: maxLength)
    }
}

/// Embeddings with the texts that were cut to the maximum length.
public struct TextEmbeddings {
    /// `[N, dimension]`.
    public let embeddings: Tensor
    /// Indices (0-based) of the texts longer than `maxLength` tokens, which were truncated.
    public let truncated: [Int]
    public let maxLength: Int

    /// One line saying how many texts were truncated, nil when none was.
    public var truncationWarning: String? {
        guard let first = truncated.first else { return nil }
        return "\(truncated.count) text\(truncated.count == 1 ? " was" : "s were") longer than \(maxLength) tokens and truncated (first: text \(first + 1))"
    }
}
