import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataInspect

/// A pretrained encoder with a classification head (`--model encoder`), on the tiny random BERT
/// of the fixtures and a small sentiment folder whose label one word decides.
final class EncoderClassifierTests: XCTestCase {
    var tiny: String { BertTests.fixtures.appendingPathComponent("tiny").path }

    /// A folder laid out as the sentiment data set (three files of text<TAB>label): "good" and
    /// "great" make a sentence positive, "bad" negative; the rest is shared filler.
    func sentimentFolder() throws -> String {
        let dir = testTemp("encoder-sentiment")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let nouns = ["movie", "film", "food", "phone", "service", "place"]
        var lines: [String] = []
        var rng = RandomGenerator(seed: 11)
        for i in 0..<120 {
            let positive = i % 2 == 1
            let word = positive ? ["good", "great"][rng.nextInt(2)] : "bad"
            let noun = nouns[rng.nextInt(nouns.count)], other = nouns[rng.nextInt(nouns.count)]
            let forms = ["\(word) \(noun)", "the \(noun) was \(word)", "this \(noun) is \(word) and the \(other) was new",
                         "\(noun) , \(other) : \(word) !"]
            lines.append("\(forms[rng.nextInt(forms.count)])\t\(positive ? 1 : 0)")
        }
        for (k, name) in ["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"].enumerated() {
            try (lines[(k * 40)..<(k * 40 + 40)].joined(separator: "\n") + "\n").write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        return dir
    }

    let texts = ["good movie", "the phone was bad", "this film is great and the food was new , really"]

    func maxDiff(_ a: Tensor, _ b: Tensor) -> Float { zip(a.scalars, b.scalars).map { Swift.abs($0 - $1) }.max() ?? .infinity }

    /// Scores are the head on `TextEncoder`'s embeddings whatever the padding; a frozen model's
    /// file holds only the head and reads the encoder from its folder again (and says what to do
    /// when that folder is gone); a fine-tuned model's file holds the encoder too.
    func testFrozenAndFineTunedModelsSaveAndLoad() throws {
        let enc = try TextEncoder(folder: tiny)
        let folder = testTemp("encoder-copy")
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.copyItem(atPath: tiny, toPath: folder)
        let tok = TextTokenizer.wordPiece(enc.tokenizer)
        let padded = tok.batch(texts, length: 32), tight = enc.tokenizer.encode(texts).ids
        XCTAssertLessThan(tight.shape[1], 32)
        let embedded = try enc.embed(texts)

        for frozen in [true, false] {
            let model = EncoderClassifier(bert: enc.bert, classes: 2, normalize: true, padId: enc.tokenizer.padId, encoderFolder: frozen ? folder : nil)
            let scores = noGrad { model(padded) }
            XCTAssertLessThan(maxDiff(scores, noGrad { model(tight) }), 1e-5, "padding changes the scores")
            XCTAssertLessThan(maxDiff(scores, noGrad { model.classifier(embedded) }), 1e-5)

            var info = ModelInfo(architecture: ModuleRegistry.spec(of: model), classNames: ["negative", "positive"], inputShape: [32])
            try info.setSection(tok)
            let path = testTemp("encoder-\(frozen).safetensors")
            try SavedModel(model: model, info: info).save(to: path)
            let names = Set(try Safetensors.read(path).0.keys)
            if frozen {
                XCTAssertEqual(names, ["classifier.weight", "classifier.bias"])
            } else {
                XCTAssertTrue(names.contains("bert.embeddings.word_embeddings.weight"))
                XCTAssertTrue(names.contains("bert.encoder.layer.1.output.LayerNorm.weight"))
                XCTAssertEqual(names.count, 2 + 5 + 2 * 16)
            }
            let loaded = try SavedModel.load(path)
            let again = try XCTUnwrap(loaded.model as? EncoderClassifier)
            XCTAssertEqual(again.isEncoderFrozen, frozen)
            XCTAssertLessThan(maxDiff(scores, noGrad { again(padded) }), 1e-6)
            // The stored tokenizer gives the same ids.
            guard case let .text(stored, length)? = try? Preprocessing(loaded.info) else { return XCTFail("no text preprocessing") }
            XCTAssertEqual(length, 32)
            XCTAssertEqual(stored.batch(texts, length: 32).scalars, padded.scalars)
            XCTAssertEqual(stored.tokens("good movie", length: 32), ["[CLS]", "good", "movie", "[SEP]"])

            if frozen {
                try FileManager.default.removeItem(atPath: folder)
                XCTAssertThrowsError(try SavedModel.load(path)) { e in
                    XCTAssertTrue("\(e)".contains(folder) && "\(e)".contains("--finetune"), "\(e)")
                }
            }
        }
    }

    /// Fine-tuning through `DatasetTraining` trains the encoder, not only the head, and learns
    /// the word that decides the label on held-out sentences.
    func testFineTuningLearnsTheDecidingWord() throws {
        let data = try sentimentFolder()
        var t = DatasetTraining(.sentiment, model: "encoder")
        (t.dataDir, t.encoderDir, t.finetune, t.epochs, t.batchSize, t.lr) = (data, tiny, true, 6, 8, 3e-3)
        t.out = testTemp("encoder-finetuned.safetensors")
        t.progress = .none
        var warnings: [String] = []
        t.warn = { warnings.append($0) }
        let r = try t.run()
        XCTAssertEqual(r.runs.count, 1)
        XCTAssertGreaterThanOrEqual(r.runs[0].accuracy, 0.95, "held-out accuracy after fine-tuning")
        XCTAssertTrue(warnings.isEmpty, "\(warnings)")
        let saved = try SavedModel.load(t.out!)
        let model = try XCTUnwrap(saved.model as? EncoderClassifier)
        XCTAssertFalse(model.isEncoderFrozen)
        let original = try TextEncoder(folder: tiny).bert.stateDict(), tuned = model.bert.stateDict()
        let changed = original.keys.filter { maxDiff(original[$0]!, tuned[$0]!) > 1e-4 }
        XCTAssertGreaterThan(changed.count, original.count / 2, "most encoder tensors should have moved")
        XCTAssertTrue(saved.info.extra["recipe"]?.contains("--finetune") ?? false)
    }

    /// The command line: train (frozen), predict with probabilities and a truncation warning,
    /// inspect's attention maps, and clear errors for bad arguments.
    func testTrainPredictInspectCommands() throws {
        let data = try sentimentFolder(), model = testTemp("encoder-cli.safetensors")
        var (code, out, err) = try runStrata(["train", "--data", "sentiment", "--data-dir", data, "--model", "encoder", "--encoder", tiny, "--out", model])
        XCTAssertEqual(code, 0, err)
        XCTAssertTrue(out.contains("frozen encoder"), out)

        let long = Array(repeating: "good movie", count: 30).joined(separator: " ")
        (code, out, err) = try runStrata(["predict", "--model", model, "--text", texts[0], "--text", long, "--json"])
        XCTAssertEqual(code, 0, err)
        XCTAssertEqual(err.components(separatedBy: "truncated").count - 1, 1, err)
        let preds = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["predictions"] as? [[String: Any]])
        XCTAssertEqual(preds.count, 2)
        // The probabilities are the loaded model's softmax.
        let saved = try SavedModel.load(model)
        let want = noGrad { saved.model(try! Preprocessing(saved.info).tensor(texts: [texts[0]])).softmax() }.scalars
        let got = try XCTUnwrap(preds[0]["probabilities"] as? [String: Double])
        XCTAssertEqual(got["negative"]!, Double(want[0]), accuracy: 1e-5)
        XCTAssertEqual(got["positive"]!, Double(want[1]), accuracy: 1e-5)

        let report = testTemp("encoder-inspect")
        (code, out, err) = try runStrata(["inspect", "--model", model, "--text", "the food was great", "--out", report, "--json"])
        XCTAssertEqual(code, 0, err)
        let files = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["files"] as? [String])
        XCTAssertEqual(files.filter { $0.hasSuffix(".svg") }.count, 2 * 4, "2 layers of 4 heads")
        let svg = try String(contentsOfFile: files.first { $0.hasSuffix("attention_l2_h4.svg") }!, encoding: .utf8)
        XCTAssertTrue(svg.contains("[CLS]") && svg.contains("great"), "the map is labelled with the word pieces")

        for (args, words) in [(["train", "--data", "sentiment", "--model", "encoder"], ["--encoder"]),
                              (["train", "--data", "sentiment", "--data-dir", data, "--model", "encoder", "--encoder", testTemp("nothing-here")], ["nothing-here"]),
                              (["train", "--data", "sentiment", "--model", "gru", "--finetune"], ["--finetune"]),
                              (["predict", "--model", model, "--text", "  "], ["empty"])] {
            let (c, _, e) = try runStrata(args)
            XCTAssertEqual(c, 1, "\(args): \(e)")
            for w in words { XCTAssertTrue(e.contains(w), "\(args): \(e)") }
            XCTAssertFalse(e.contains("Fatal error"), e)
        }
    }
}

/// Packed weights give what `linear` gives, at batch 1 and at a batch of rows, and the encoder
/// drops its packs when a pass records gradients.
final class PackedLinearTests: XCTestCase {
    func testPackedLinearMatchesLinear() throws {
        let w = Tensor.randn([37, 19], seed: 1), b = Tensor.randn([37], seed: 2)
        let packed = PackedLinear(weight: w, bias: b), bare = PackedLinear(weight: w, bias: nil)
        for rows in [1, 5, 130] {
            let x = Tensor.randn([rows, 19], seed: rows)
            let want = noGrad { linear(x, weight: w, bias: b) }, got = packed(x)
            XCTAssertEqual(got.shape, want.shape)
            XCTAssertLessThan(zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-4)
            let wantBare = noGrad { linear(x, weight: w) }
            XCTAssertLessThan(zip(bare(x).scalars, wantBare.scalars).map { Swift.abs($0 - $1) }.max()!, 1e-4)
        }
        // The GEMM's epilogue (bias, then GELU, per finished tile), on every ISA: edge tiles (rows
        // not a multiple of the micro-kernel's, 37 columns), K of one block on AVX-512 but two on
        // AVX2 (300) and several blocks everywhere (700), one row and enough rows for the
        // threaded split.
        try forEachISA { isa in
            for (rows, inF) in [(1, 19), (2, 300), (13, 300), (200, 19), (250, 300), (30, 700)] {
                let w = Tensor.randn([37, inF], seed: inF), b = Tensor.randn([37], seed: 3)
                let x = Tensor.randn([rows, inF], seed: rows)
                let packed = PackedLinear(weight: w, bias: b), bare = PackedLinear(weight: w, bias: nil)
                let cases: [(Tensor, Tensor)] = [
                    (packed(x, activation: .gelu), noGrad { linear(x, weight: w, bias: b).gelu() }),
                    (bare(x, activation: .gelu), noGrad { linear(x, weight: w).gelu() }),
                    (packed(x), noGrad { linear(x, weight: w, bias: b) }),
                ]
                for (got, want) in cases {
                    let err = zip(got.scalars, want.scalars).map { Swift.abs($0 - $1) }.max()!
                    XCTAssertLessThan(err, 1e-4, "\(isa): rows \(rows), in \(inF)")
                }
            }
        }
        let enc = try TextEncoder(folder: BertTests.fixtures.appendingPathComponent("tiny").path)
        XCTAssertNotNil(enc.bert.layers[0].packed, "TextEncoder packs its encoder at load")
        _ = enc.bert.hidden(ids: Tensor([2, 40, 3], shape: [1, 3]), mask: Tensor.ones([1, 3]))   // records gradients
        XCTAssertNil(enc.bert.layers[0].packed, "a pass that records gradients drops the packs")
    }
}
