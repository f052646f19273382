import Foundation
import StrataCore

/// BERT's WordPiece tokenizer (Hugging Face's `BertTokenizerFast` rules): clean the text, put
/// spaces around CJK ideographs, strip accents and lower-case, split on whitespace and
/// punctuation, then split each word greedily into the longest pieces in the vocabulary
/// (continuations prefixed `##`); a word that cannot be split becomes `[UNK]`.
///
/// ```swift
/// let tok = try WordPieceTokenizer(folder: "all-MiniLM-L6-v2")   // vocab.txt (+ configs)
/// tok.tokenize("Hello, world!")            // ["hello", ",", "world", "!"]
/// let batch = tok.encode(["a text", "another"])
/// batch.ids      // [2, T] ids, [CLS] ... [SEP] then [PAD]
/// batch.mask     // [2, T] 1 for tokens, 0 for padding
/// ```
public struct WordPieceTokenizer {
    /// Tokens by id, as in vocab.txt.
    public let vocabulary: [String]
    public let lowercase: Bool, stripAccents: Bool, splitCJK: Bool
    /// Longest encoded sequence, [CLS] and [SEP] included.
    public let maxLength: Int
    public let padId: Int, unknownId: Int, clsId: Int, sepId: Int
    /// Words longer than this (in Unicode scalars) become [UNK] whole, as in BERT.
    public static let maxWordLength = 100

    // Keyed by UTF-8 bytes: Swift's String equality is canonical equivalence, the vocabulary's is exact.
    private let ids: [[UInt8]: Int]

    public init(vocabulary: [String], lowercase: Bool = true, stripAccents: Bool? = nil, splitCJK: Bool = true,
                maxLength: Int = 512, source: String = "vocabulary") throws {
        var ids: [[UInt8]: Int] = [:]
        for (i, t) in vocabulary.enumerated() { ids[Array(t.utf8)] = i }   // a repeated token keeps its last id, as HF
        func special(_ name: String) throws -> Int {
            guard let i = ids[Array(name.utf8)] else { throw StrataError("\(source): the vocabulary has no \(name) token") }
            return i
        }
        guard maxLength >= 2 else { throw StrataError("\(source): maximum length \(maxLength) leaves no room for [CLS] and [SEP]") }
        self.vocabulary = vocabulary
        self.ids = ids
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.splitCJK = splitCJK
        self.maxLength = maxLength
        padId = try special("[PAD]")
        unknownId = try special("[UNK]")
        clsId = try special("[CLS]")
        sepId = try special("[SEP]")
    }

    /// Reads `vocab.txt` from `folder`, lower-casing and accent stripping from
    /// `tokenizer_config.json` (else `tokenizer.json`), and the maximum length from
    /// `sentence_bert_config.json`'s `max_seq_length`, else `tokenizer_config.json`'s
    /// `model_max_length`, else 512.
    public init(folder: String) throws {
        let vocabPath = (folder as NSString).appendingPathComponent("vocab.txt")
        guard let data = FileManager.default.contents(atPath: vocabPath) else {
            throw StrataError("\(vocabPath): \(FileManager.default.fileExists(atPath: vocabPath) ? "cannot be read" : "no such file (a WordPiece tokenizer needs its vocab.txt)")")
        }
        // One token per line; split on "\n" bytes only, as HF does (a token may hold any other character).
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line -> String in
            var bytes = Array(line)
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            return String(decoding: bytes, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        guard !lines.isEmpty else { throw StrataError("\(vocabPath): empty vocabulary") }

        let tokConfig = try readJSONObject(folder, "tokenizer_config.json")
        let tokJSON = tokConfig == nil ? try readJSONObject(folder, "tokenizer.json") : nil
        let normalizer = tokJSON?["normalizer"] as? [String: Any]
        let lower = (tokConfig?["do_lower_case"] as? Bool) ?? (normalizer?["lowercase"] as? Bool) ?? true
        let strip = (tokConfig?["strip_accents"] as? Bool) ?? (normalizer?["strip_accents"] as? Bool)
        let cjk = (tokConfig?["tokenize_chinese_chars"] as? Bool) ?? (normalizer?["handle_chinese_chars"] as? Bool) ?? true
        var maxLen = 512
        if let m = tokConfig?["model_max_length"] as? Int, m > 0, m < 1_000_000 { maxLen = m }   // HF writes a huge number for "none"
        if let m = try readJSONObject(folder, "sentence_bert_config.json")?["max_seq_length"] as? Int, m > 0 { maxLen = m }
        try self.init(vocabulary: lines, lowercase: lower, stripAccents: strip, splitCJK: cjk, maxLength: maxLen, source: vocabPath)
    }

    /// The id of `token`, nil when it is not in the vocabulary.
    public func id(of token: String) -> Int? { ids[Array(token.utf8)] }

    /// The word pieces of `text` (no [CLS]/[SEP]).
    public func tokenize(_ text: String) -> [String] { tokenIds(text).map { vocabulary[$0] } }

    /// The ids of `text`'s word pieces (no [CLS]/[SEP], no truncation).
    public func tokenIds(_ text: String) -> [Int] {
        var out: [Int] = []
        for word in basicWords(text) { appendPieces(of: word, to: &out) }
        return out
    }

    /// Encodes texts as `[CLS] pieces [SEP]`, truncated to `maxLength` (default the tokenizer's)
    /// and padded with [PAD] to the longest in the batch.
    public func encode(_ texts: [String], maxLength: Int? = nil) -> WordPieceBatch {
        batch(pieces: texts.map(tokenIds), maxLength: maxLength)
    }

    /// Like `encode`, from the texts' `tokenIds`.
    public func batch(pieces texts: [[Int]], maxLength: Int? = nil) -> WordPieceBatch {
        let limit = Swift.max(maxLength ?? self.maxLength, 2)
        var rows: [[Int]] = [], truncated: [Bool] = []
        for pieces in texts {
            truncated.append(pieces.count > limit - 2)
            rows.append([clsId] + pieces.prefix(limit - 2) + [sepId])
        }
        let t = rows.map(\.count).max() ?? 2
        var ids = [Float](repeating: Float(padId), count: rows.count * t), mask = [Float](repeating: 0, count: rows.count * t)
        for (i, row) in rows.enumerated() {
            for (j, id) in row.enumerated() {
                ids[i * t + j] = Float(id)
                mask[i * t + j] = 1
            }
        }
        return WordPieceBatch(ids: Tensor(ids, shape: [rows.count, t]), mask: Tensor(mask, shape: [rows.count, t]),
                              lengths: rows.map(\.count), truncated: truncated)
    }

    // MARK: - Basic tokenisation

    /// Cleaned, normalised words and punctuation marks, as Unicode scalars.
    func basicWords(_ text: String) -> [[Unicode.Scalar]] {
        var cleaned = String.UnicodeScalarView()
        for s in text.unicodeScalars {
            if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
            if Self.isWhitespace(s) { cleaned.append(" "); continue }
            if splitCJK && Self.isCJK(s) {
                cleaned.append(" "); cleaned.append(s); cleaned.append(" ")
            } else {
                cleaned.append(s)
            }
        }
        var scalars = Array(cleaned)
        if stripAccents {
            // NFD, then drop the combining marks (category Mn) it split off.
            scalars = String(cleaned).decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                $0.properties.generalCategory != .nonspacingMark
            }
        }
        if lowercase {
            scalars = scalars.flatMap { s -> [Unicode.Scalar] in
                s.properties.changesWhenLowercased ? Array(s.properties.lowercaseMapping.unicodeScalars) : [s]
            }
        }
        var words: [[Unicode.Scalar]] = [], current: [Unicode.Scalar] = []
        for s in scalars {
            if Self.isWhitespace(s) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if Self.isPunctuation(s) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([s])
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }

    /// Greedy longest-match-first pieces; the whole word is [UNK] when any part has no piece.
    private func appendPieces(of word: [Unicode.Scalar], to out: inout [Int]) {
        guard word.count <= Self.maxWordLength else { out.append(unknownId); return }
        // UTF-8 bytes of the word and the byte offset where each scalar starts.
        var bytes: [UInt8] = [], starts: [Int] = []
        for s in word {
            starts.append(bytes.count)
            bytes.append(contentsOf: String(s).utf8)
        }
        starts.append(bytes.count)
        var pieces: [Int] = [], start = 0
        while start < word.count {
            var end = word.count, found: Int?
            while start < end {
                let key = (start > 0 ? [0x23, 0x23] : []) + bytes[starts[start]..<starts[end]]
                if let id = ids[key] { found = id; break }
                end -= 1
            }
            guard let id = found else { out.append(unknownId); return }
            pieces.append(id)
            start = end
        }
        out += pieces
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// Unicode "other" categories (Cc, Cf, Co, Cn, Cs) except tab, newline and carriage return.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .unassigned, .surrogate: return true
        default: return false
        }
    }

    /// ASCII punctuation (which BERT counts whole, `$` and `^` included) or Unicode category P*.
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideograph blocks BERT splits character by character.
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}

extension WordPieceTokenizer: Codable {
    enum CodingKeys: String, CodingKey { case vocabulary, lowercase, stripAccents = "strip_accents", splitCJK = "split_cjk", maxLength = "max_length" }

    /// Decodes a stored tokenizer; a vocabulary without the special tokens is refused.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let maxLength = try c.decode(Int.self, forKey: .maxLength)
        guard maxLength >= 2 && maxLength <= 1 << 20 else {
            throw DecodingError.dataCorruptedError(forKey: .maxLength, in: c, debugDescription: "max_length \(maxLength) out of range")
        }
        do {
            try self.init(vocabulary: try c.decode([String].self, forKey: .vocabulary), lowercase: try c.decode(Bool.self, forKey: .lowercase),
                          stripAccents: try c.decode(Bool.self, forKey: .stripAccents), splitCJK: try c.decode(Bool.self, forKey: .splitCJK),
                          maxLength: maxLength)
        } catch let e as StrataError {
            throw DecodingError.dataCorruptedError(forKey: .vocabulary, in: c, debugDescription: e.message)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabulary, forKey: .vocabulary)
        try c.encode(lowercase, forKey: .lowercase)
        try c.encode(stripAccents, forKey: .stripAccents)
        try c.encode(splitCJK, forKey: .splitCJK)
        try c.encode(maxLength, forKey: .maxLength)
    }
}

/// A batch of encoded texts (see `WordPieceTokenizer.encode`).
public struct WordPieceBatch {
    /// `[N, T]` token ids (as Floats, for `Embedding`).
    public let ids: Tensor
    /// `[N, T]` attention mask: 1 for tokens, 0 for padding.
    public let mask: Tensor
    /// Tokens per text, [CLS] and [SEP] included.
    public let lengths: [Int]
    /// Whether each text was cut to the maximum length.
    public let truncated: [Bool]
    public var anyTruncated: Bool { truncated.contains(true) }
}

/// The JSON object in `folder/name`, nil when there is no such file.
func readJSONObject(_ folder: String, _ name: String) throws -> [String: Any]? {
    let path = (folder as NSString).appendingPathComponent(name)
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    guard let data = FileManager.default.contents(atPath: path) else { throw StrataError("\(path): cannot be read") }
    guard let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
        throw StrataError("\(path): not a JSON object")
    }
    return dict
}
