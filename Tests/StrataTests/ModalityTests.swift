import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// Text, audio and graphs.
final class ModalityTests: XCTestCase {
    // MARK: audio

    func sine(_ f: Double, rate: Int, n: Int) -> [Float] { (0..<n).map { Float(0.5 * sin(2 * Double.pi * f * Double($0) / Double(rate))) } }

    func testWAVRoundTripStereoAndErrors() throws {
        let a = Audio(samples: sine(440, rate: 8000, n: 800), sampleRate: 8000)
        let path = testTemp("tone.wav")
        try a.saveWAV(path)
        let b = try Audio.loadWAV(path)
        XCTAssertEqual(b.sampleRate, 8000)
        XCTAssertEqual(b.samples.count, 800)
        XCTAssertEqual(zip(a.samples, b.samples).map { Swift.abs($0 - $1) }.max()!, 0, accuracy: 1.0 / 32768)
        // Stereo: channels are averaged.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func put16(_ o: Int, _ v: Int) { bytes[o] = UInt8(v & 0xff); bytes[o + 1] = UInt8(v >> 8 & 0xff) }
        put16(22, 2); put16(32, 4)   // 2 channels, block align 4: 400 stereo frames
        let st = try Audio.decodeWAV(bytes, name: "stereo")
        XCTAssertEqual(st.samples.count, 400)
        XCTAssertEqual(st.samples[1], (b.samples[2] + b.samples[3]) / 2, accuracy: 1e-6)
        // Float samples (format tag 3) are refused; so is a cut data chunk.
        var float = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        float[20] = 3
        XCTAssertThrowsError(try Audio.decodeWAV(float, name: "f.wav")) { XCTAssert("\($0)".contains("f.wav") && "\($0)".contains("not PCM"), "\($0)") }
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertThrowsError(try Audio.decodeWAV(Array(full.prefix(500)), name: "cut.wav")) { XCTAssert("\($0)".contains("cut.wav") && "\($0)".contains("offset 36"), "\($0)") }
        XCTAssertThrowsError(try Audio.decodeWAV(Array("hello world!".utf8), name: "x.wav")) { XCTAssert("\($0)".contains("not a WAV"), "\($0)") }
    }

    func testResamplingKeepsTheTone() {
        let a = Audio(samples: sine(500, rate: 8000, n: 8000), sampleRate: 8000)
        let up = a.resampled(to: 16000)
        XCTAssertEqual(up.samples.count, 16000)
        // The resampled signal matches the tone sampled at the new rate (away from the edges).
        let ref = sine(500, rate: 16000, n: 16000)
        let err = (100..<15900).map { Swift.abs(up.samples[$0] - ref[$0]) }.max()!
        XCTAssertLessThan(err, 0.01)
    }

    func testMelSpectrogramLocatesATone() {
        let mel = MelSpectrogram(sampleRate: 8000, nFFT: 256, hop: 80, bands: 40)
        XCTAssertEqual(mel.frames(8192), 100)
        let s = mel(sine(1000, rate: 8000, n: 8192))
        XCTAssertEqual(s.shape, [40, 100])
        // The band whose triangle peaks nearest 1 kHz is the loudest.
        let energy = s.mean(axis: 1).scalars
        let loudest = energy.indices.max { energy[$0] < energy[$1] }!
        let peak = { (m: Int) -> Double in
            let top = 2595 * log10(1 + 4000.0 / 700), mm = top * Double(m + 1) / 41
            return 700 * (pow(10, mm / 2595) - 1)
        }
        let nearest = (0..<40).min { Swift.abs(peak($0) - 1000) < Swift.abs(peak($1) - 1000) }!
        XCTAssertLessThanOrEqual(Swift.abs(loudest - nearest), 1)
        // The DFT-by-GEMM power equals a directly computed DFT of one windowed frame.
        let x = sine(700, rate: 8000, n: 256)
        let w = (0..<256).map { 0.5 - 0.5 * cos(2 * Double.pi * Double($0) / 256) }
        var direct = [Double](repeating: 0, count: 129)
        for k in 0..<129 {
            var re = 0.0, im = 0.0
            for n in 0..<256 { re += Double(x[n]) * w[n] * cos(2 * .pi * Double(k * n) / 256); im -= Double(x[n]) * w[n] * sin(2 * .pi * Double(k * n) / 256) }
            direct[k] = re * re + im * im
        }
        let melDirect = (0..<40).map { m in (0..<129).reduce(0.0) { $0 + direct[$1] * Double(mel.filters[$1, m]) } }
        let got = mel(x).scalars
        for m in 0..<40 { XCTAssertEqual(Double(got[m]), Foundation.log(melDirect[m] + 1e-6), accuracy: 1e-3) }
    }

    // MARK: text

    func testTokenizers() {
        XCTAssertEqual(WordTokenizer.words("Free entry in 2 a wkly comp!! Text FA to 87121"), ["free", "entry", "in", "2", "a", "wkly", "comp", "text", "fa", "to", "87121"])
        let tok = WordTokenizer(fitting: ["b a a", "c b a", "d"], minCount: 2)
        XCTAssertEqual(tok.vocabulary, ["<pad>", "<unk>", "a", "b"], "by count, then alphabetically; d and c seen once")
        XCTAssertEqual(tok.encode("a zebra b", length: 5), [2, 1, 3, 0, 0])
        XCTAssertEqual(tok.encode("a a a a a a", length: 3), [2, 2, 2], "truncated")
        XCTAssertEqual(tok.encode("!!!", length: 3), [1, 0, 0], "no words: unknown")
        XCTAssertEqual(ByteTokenizer().encode("Hi", length: 4), [73, 106, 0, 0])
    }

    func testTextFilesAndSplit() throws {
        let p = testTemp("sms.tsv")
        FileManager.default.createFile(atPath: p, contents: Data("ham\thello there\nspam\tWIN now\nham\tok\n".utf8))
        let d = try TextDataset.smsSpam(p)
        XCTAssertEqual(d.labels, [0, 1, 0])
        FileManager.default.createFile(atPath: p, contents: Data("ham\thello\nthis line has no tab\n".utf8))
        XCTAssertThrowsError(try TextDataset.smsSpam(p)) { XCTAssert("\($0)".contains("\(p):2") && "\($0)".contains("malformed"), "\($0)") }
        FileManager.default.createFile(atPath: p, contents: Data("great\t1\nbad\t7\n".utf8))
        XCTAssertThrowsError(try TextDataset.sentiment([p])) { XCTAssert("\($0)".contains("\(p):2"), "\($0)") }
        let many = TextDataset(texts: (0..<100).map { "t\($0)" }, labels: (0..<100).map { $0 < 80 ? 0 : 1 }, classNames: ["a", "b"])
        let (tr, te) = many.stratifiedSplit(seed: 3)
        XCTAssertEqual(te.count, 20)
        XCTAssertEqual(te.filter { many.labels[$0] == 1 }.count, 4, "20 % of each class")
        XCTAssertEqual(Set(tr).union(te).count, 100)
        XCTAssertEqual(many.stratifiedSplit(seed: 3).test, te)
    }

    func testTfIdfValues() {
        // Documents (ids): [2, 2, 3] and [3]; idf(2) = ln(3/2) + 1, idf(3) = ln(3/3) + 1 = 1.
        let ids = Tensor([[2, 2, 3], [3, 0, 0]])
        let t = TfIdf(fitting: ids, vocabulary: 4)
        XCTAssertEqual(Double(t.idf[2]), Foundation.log(1.5) + 1, accuracy: 1e-6)
        XCTAssertEqual(t.idf[3], 1, accuracy: 1e-6)
        let x = t.transform(ids)
        let a = 2 * (Foundation.log(1.5) + 1), b = 1.0, norm = (a * a + b * b).squareRoot()
        XCTAssertEqual(Double(x[0, 2]), a / norm, accuracy: 1e-5)
        XCTAssertEqual(Double(x[0, 3]), b / norm, accuracy: 1e-5)
        XCTAssertEqual(x[1, 3], 1, accuracy: 1e-6)
        XCTAssertEqual(x[1, 0], 0, "padding is not a word")
    }

    func testEveryTextModelLearnsAToyTask() throws {
        // Class 1 when token 5 occurs anywhere in a sequence of random tokens 2...9 (padded to 12).
        var rng = RandomGenerator(seed: 1)
        func data(_ n: Int) -> TensorDataset {
            var ids: [Float] = [], y: [Int] = []
            for _ in 0..<n {
                let len = 3 + rng.nextInt(8)
                var seq = (0..<len).map { _ in [2, 3, 4, 6, 7, 8, 9][rng.nextInt(7)] }
                let label = rng.nextInt(2)
                if label == 1 { seq[rng.nextInt(len)] = 5 }
                ids += (seq + [Int](repeating: 0, count: 12 - len)).map(Float.init)
                y.append(label)
            }
            return TensorDataset(Tensor(ids, shape: [n, 12]), labels: y)
        }
        let train = data(600), test = data(200)
        for kind in TextClassifier.Kind.allCases {
            RandomGenerator.manualSeed(2)
            let m = TextClassifier(kind: kind, vocabulary: 10, classes: 2, dim: 16, maxLength: 12)
            let t = Trainer(model: m, optimizer: Adam(m.parameters(), lr: 0.01), info: ModelInfo(architecture: [:], classNames: ["no", "yes"], inputShape: [12]))
            var o = FitOptions(epochs: 8, batchSize: 32)
            o.progress = .none
            try t.fit(train, options: o)
            XCTAssertGreaterThanOrEqual(Trainer.evaluate(m, test).accuracy, 0.9, "\(kind)")
            if kind == .transformer {
                let maps = m.attentionMaps
                XCTAssertEqual(maps.count, 2)
                XCTAssertEqual(maps[0].shape[1], 4)
                // Rows sum to 1 and padded keys get no weight.
                let w = maps[0].slice(axis: 0, start: 0, end: 1)
                XCTAssert(w.sum(axis: -1).allClose(Tensor.ones([1, 4, 12]), rtol: 1e-4, atol: 1e-4))
            }
        }
    }

    // MARK: graphs

    func writeGraph(_ name: String, content: String, cites: String) -> String {
        let dir = testTemp(name)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/cora.content", contents: Data(content.utf8))
        FileManager.default.createFile(atPath: dir + "/cora.cites", contents: Data(cites.utf8))
        return dir
    }

    func testGraphReaderAndAdjacency() throws {
        let dir = writeGraph("g1", content: "a\t1\t0\tX\nb\t0\t1\tY\nc\t1\t1\tX\n", cites: "a\tb\nb\ta\nc\tb\n")
        let g = try Cora.load(dir)
        XCTAssertEqual(g.classNames, ["X", "Y"])
        XCTAssertEqual(g.labels, [0, 1, 0])
        XCTAssertEqual(g.edges.count, 2, "a-b once, b-c")
        XCTAssertEqual(g.features.scalars, [1, 0, 0, 1, 0.5, 0.5], "rows normalised")
        let a = g.normalizedAdjacency().dense()
        // Degrees of A + I: a 2, b 3, c 2.
        XCTAssertEqual(Double(a[0, 0]), 1.0 / 2, accuracy: 1e-6)
        XCTAssertEqual(Double(a[0, 1]), 1 / (2.0 * 3).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(a[0, 2], 0)
        XCTAssert(a.allClose(a.T), "symmetric")
        let bad = writeGraph("g2", content: "a\t1\t0\tX\nb\t0\t1\tY\n", cites: "a\tb\nb\tzz\n")
        XCTAssertThrowsError(try Cora.load(bad)) { XCTAssert("\($0)".contains("cora.cites:2") && "\($0)".contains("unknown node zz"), "\($0)") }
        let short = writeGraph("g3", content: "a\t1\t0\tX\nb\t0\tY\n", cites: "")
        XCTAssertThrowsError(try Cora.load(short)) { XCTAssert("\($0)".contains("cora.content:2"), "\($0)") }
    }

    func testGCNOnTwoCommunities() throws {
        // Two dense communities joined by one edge; features are noise. Labels follow communities.
        var rng = RandomGenerator(seed: 4)
        var content = "", cites = ""
        for i in 0..<40 {
            content += "n\(i)\t" + (0..<8).map { _ in rng.nextFloat() < 0.5 ? "1" : "0" }.joined(separator: "\t") + "\t" + (i < 20 ? "A" : "B") + "\n"
        }
        for i in 0..<40 { for j in (i + 1)..<40 where (i < 20) == (j < 20) && rng.nextFloat() < 0.3 { cites += "n\(i)\tn\(j)\n" } }
        cites += "n0\tn39\n"
        let g = try Cora.load(writeGraph("g4", content: content, cites: cites))
        let (train, _, test) = g.planetoidSplit(seed: 0, perClass: 3, validation: 4, test: 20)
        XCTAssertEqual(train.count, 6)
        XCTAssertEqual(Set(train).intersection(test).count, 0)
        RandomGenerator.manualSeed(1)
        let gcn = GCN(features: 8, hidden: 8, classes: 2, dropout: 0.1)
        gcn.attach(g)
        let t = Trainer(model: gcn, optimizer: Adam(gcn.parameters(), lr: 0.05), info: ModelInfo(architecture: [:], classNames: g.classNames, inputShape: [8]))
        var o = FitOptions(epochs: 60, batchSize: train.count)
        o.progress = .none
        try t.fit(NodeSet(train, graph: g), options: o)
        XCTAssertGreaterThanOrEqual(Trainer.evaluate(gcn, NodeSet(test, graph: g)).accuracy, 0.9)
    }

    /// Cora itself, one seed, when the shared data is present (about 7 s).
    func testCoraGCNReachesEightyPercent() throws {
        guard let shared = sharedData else { throw XCTSkip("../shared/data is not present: skipping the Cora check") }
        let g = try Cora.load(shared.appendingPathComponent("cora").path)
        XCTAssertEqual(g.nodeCount, 2708)
        XCTAssertEqual(g.classNames.count, 7)
        let (train, val, test) = g.planetoidSplit(seed: 0)
        XCTAssertEqual([train.count, val.count, test.count], [140, 500, 1000])
        RandomGenerator.manualSeed(0)
        let gcn = GCN(features: g.features.shape[1], hidden: 16, classes: 7)
        gcn.attach(g)
        let t = Trainer(model: gcn, optimizer: Adam(gcn.parameters(), lr: 0.01), info: ModelInfo(architecture: [:], classNames: g.classNames, inputShape: [1433]))
        let w1 = gcn.conv1.weight
        t.loss = { out, labels in crossEntropy(out, labels) + (w1.value * w1.value).sum() * 2.5e-4 }
        var o = FitOptions(epochs: 200, batchSize: 140)
        o.progress = .none
        try t.fit(NodeSet(train, graph: g), options: o)
        XCTAssertGreaterThanOrEqual(Trainer.evaluate(gcn, NodeSet(test, graph: g)).accuracy, 0.78)
    }
}
