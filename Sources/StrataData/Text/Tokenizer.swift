import StrataCore
import StrataNN

/// Splits text into lower-case ASCII letter and digit runs and maps words to ids through a
/// vocabulary fitted on training texts: id 0 is padding, 1 unknown, then words by count
/// (descending; ties alphabetical) that occur at least `minCount` times.
///
/// ```swift
/// let tok = WordTokenizer(fitting: trainTexts, minCount: 2)
/// let ids = tok.encode("Free entry in 2 a wkly comp", length: 64)   // 64 ids, right-padded
/// ```
public struct WordTokenizer: Codable {
    public private(set) var vocabulary: [String]
    var index: [String: Int]

    public static let pad = 0, unknown = 1

    public init(fitting texts: [String], minCount: Int = 2) {
        var counts: [String: Int] = [:]
        for t in texts { for w in WordTokenizer.words(t) { counts[w, default: 0] += 1 } }
        let kept = counts.filter { $0.value >= minCount }.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        vocabulary = ["<pad>", "<unk>"] + kept.map { $0.key }
        index = Dictionary(uniqueKeysWithValues: vocabulary.enumerated().map { ($1, $0) })
    }

    public init(vocabulary: [String]) {
        self.vocabulary = vocabulary
        index = Dictionary(vocabulary.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public var size: Int { vocabulary.count }

    public static func words(_ text: String) -> [String] {
        var out: [String] = [], cur = ""
        for u in text.lowercased().unicodeScalars {
            if (u >= "a" && u <= "z") || (u >= "0" && u <= "9") { cur.unicodeScalars.append(u) } else if !cur.isEmpty { out.append(cur); cur = "" }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// Ids of the first `length` words, right-padded with 0; a text without words becomes [unknown].
    public func encode(_ text: String, length: Int) -> [Int] {
        var ids = WordTokenizer.words(text).prefix(length).map { index[$0] ?? WordTokenizer.unknown }
        if ids.isEmpty { ids = [WordTokenizer.unknown] }
        return ids + [Int](repeating: WordTokenizer.pad, count: length - ids.count)
    }

    enum CodingKeys: String, CodingKey { case vocabulary }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vocabulary: try c.decode([String].self, forKey: .vocabulary))
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabulary, forKey: .vocabulary)
    }
}

/// Bytes of the UTF-8 text as ids 1...256 (0 is padding), truncated and right-padded.
public struct ByteTokenizer: Codable {
    public init() {}
    public var size: Int { 257 }
    public func encode(_ text: String, length: Int) -> [Int] {
        let ids = Array(text.utf8.prefix(length)).map { Int($0) + 1 }
        return ids + [Int](repeating: 0, count: length - ids.count)
    }
}

/// Any of the tokenizers, as stored in a model file.
public enum TextTokenizer: Codable {
    case words(WordTokenizer)
    case bytes(ByteTokenizer)
    /// A pretrained encoder's WordPiece vocabulary: `[CLS] pieces [SEP]`, padded with [PAD].
    case wordPiece(WordPieceTokenizer)

    public var size: Int {
        switch self {
        case .words(let w): return w.size
        case .bytes(let b): return b.size
        case .wordPiece(let w): return w.vocabulary.count
        }
    }

    public func encode(_ text: String, length: Int) -> [Int] {
        switch self {
        case .words(let w): return w.encode(text, length: length)
        case .bytes(let b): return b.encode(text, length: length)
        case .wordPiece(let w):
            let ids = [w.clsId] + w.tokenIds(text).prefix(max(length - 2, 0)) + [w.sepId]
            return ids + [Int](repeating: w.padId, count: max(length - ids.count, 0))
        }
    }

    /// The tokens a model sees for `text` (padding left out), for display.
    public func tokens(_ text: String, length: Int) -> [String] {
        switch self {
        case .wordPiece(let w):
            return encode(text, length: length).filter { $0 != w.padId }.map { w.vocabulary[$0] }
        case .words, .bytes:
            let words = WordTokenizer.words(text)
            return words.isEmpty ? ["<unk>"] : Array(words.prefix(length))
        }
    }

    /// How many of `texts` are longer than `length` tokens and so are cut (WordPiece only: the
    /// other tokenizers cut silently, as their models were trained).
    public func truncatedCount(_ texts: [String], length: Int) -> Int {
        guard case .wordPiece(let w) = self else { return 0 }
        return texts.filter { w.tokenIds($0).count > length - 2 }.count
    }

    /// `[texts, length]` ids as a tensor.
    public func batch(_ texts: [String], length: Int) -> Tensor {
        Tensor(texts.flatMap { encode($0, length: length).map(Float.init) }, shape: [texts.count, length])
    }
}
