import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData

/// Training on a folder of images, from scratch and by transfer learning: freezing, replacing the
/// classifier, named optimizers, the stratified split, and `strata train --data FOLDER`.
final class TransferLearningTests: XCTestCase {
    func smallNet() -> Sequential {
        Sequential(Conv2D(1, 4, kernelSize: 3), BatchNorm2d(4), ReLU(), Flatten(), Linear(4 * 6 * 6, 5), ReLU(), Linear(5, 3))
    }

    /// A frozen module keeps its weights and BatchNorm statistics through training steps, records
    /// no gradient and stays in evaluation mode; the rest trains; `freeze(false)` undoes it.
    func testFreezeKeepsWeightsAndStatisticsWhileTheRestTrains() throws {
        RandomGenerator.manualSeed(3)
        let net = smallNet()
        let head = net.layers[6] as! Linear
        net.freeze()
        head.freeze(false)
        XCTAssertEqual(net.parameters().count, 2, "only the head's weight and bias")
        XCTAssertEqual(net.namedParameters().map(\.0), ["6.weight", "6.bias"])
        XCTAssertEqual(net.parameterCount, 5 * 3 + 3)
        XCTAssertEqual(net.namedStates().count, 10, "frozen weights and buffers are still saved")
        let before = net.stateDict()
        let opt = Adam(net.parameters(), lr: 0.1)
        net.train()
        XCTAssertFalse(net.layers[1].isTraining, "a frozen BatchNorm stays in evaluation mode")
        XCTAssertTrue(head.isTraining)
        let x = Tensor.randn([6, 1, 8, 8]) * 2 + 1
        for _ in 0..<3 {
            net.zeroGrad()
            crossEntropy(net(x), [0, 1, 2, 0, 1, 2]).backward()
            XCTAssertNil((net.layers[0] as! Conv2D).weight.grad, "a frozen weight records no gradient")
            XCTAssertNotNil(head.weight.grad)
            opt.step()
        }
        let after = net.stateDict()
        for name in before.keys.sorted() where !name.hasPrefix("6.") {
            XCTAssertEqual(after[name]!.scalars, before[name]!.scalars, "\(name) changed while frozen")
        }
        XCTAssertEqual(after["1.running_mean"]!.scalars, [0, 0, 0, 0], "BatchNorm ran on its running statistics")
        XCTAssertNotEqual(after["6.weight"]!.scalars, before["6.weight"]!.scalars)
        let frozen = 4 * 9 + 4 + 4 + 4 + 144 * 5 + 5   // conv, BatchNorm's scale and shift, first Linear
        XCTAssert(net.summaryTable(inputShape: [1, 8, 8]).contains("Trainable parameters: 18, frozen: \(frozen)"))
        // Unfrozen, everything trains again, in training mode.
        net.freeze(false)
        net.train()
        XCTAssertEqual(net.parameters().count, 8)
        XCTAssertTrue(net.layers[1].isTraining)
        net.zeroGrad()
        crossEntropy(net(x), [0, 1, 2, 0, 1, 2]).backward()
        XCTAssertNotNil((net.layers[0] as! Conv2D).weight.grad)
    }

    /// The last Linear layer is replaced, through nested Sequentials, with the other layers shared;
    /// a network that does not end in a Linear layer is refused by name.
    func testReplacingTheClassifier() throws {
        let net = smallNet()
        let (m, head) = try net.replacingClassifier(classes: 7)
        XCTAssert(m.layers[6] === head)
        XCTAssertEqual([head.inFeatures, head.outFeatures], [5, 7])
        for i in 0..<6 { XCTAssert(m.layers[i] === net.layers[i]) }
        XCTAssertEqual(m(Tensor.zeros([2, 1, 8, 8])).shape, [2, 7])
        // Nested, with layers without weights after the classifier.
        let nested = Sequential(Sequential(Flatten(), Linear(16, 4)), Sequential(ReLU(), Linear(4, 2, bias: false), Dropout(0.2)), Softmax())
        let (n2, h2) = try nested.replacingClassifier(classes: 5)
        XCTAssert(((n2.layers[1] as! Sequential).layers[1]) === h2)
        XCTAssertNil(h2.bias, "the new classifier keeps the old one's bias setting")
        XCTAssert(n2.layers[0] === nested.layers[0])
        XCTAssertEqual(n2(Tensor.zeros([3, 1, 4, 4])).shape, [3, 5])
        XCTAssertThrowsError(try Sequential(Linear(4, 4), Conv2D(1, 2, kernelSize: 1)).replacingClassifier(classes: 2)) {
            XCTAssert("\($0)".contains("Conv2D (layer 1)"), "\($0)")
        }
        XCTAssertThrowsError(try Sequential(Flatten(), ReLU()).replacingClassifier(classes: 2)) { XCTAssert("\($0)".contains("no layer with weights"), "\($0)") }
    }

    /// Each named optimizer takes its rule's first step: SGD momentum 0.9 moves by lr·g, Adam by
    /// lr·sign(g), RMSprop (decay 0.9) by lr·g/√(0.1·g²) = lr/√0.1; AdamW decays first.
    func testNamedOptimizersTakeTheirKnownFirstStep() {
        let g: Float = 0.5
        let expected: [(OptimizerKind, Float?, Double)] = [
            (.sgd, nil, 1 - 0.01 * 0.5), (.adam, nil, 1 - 1e-3), (.rmsprop, nil, 1 - 1e-3 / 0.1.squareRoot()),
            (.adamw, nil, 1 * (1 - 1e-3 * 0.01) - 1e-3), (.adam, 0.1, 1 - 1e-3), (.sgd, 0.2, 1 - 0.01 * (0.5 + 0.2)),
        ]
        for (kind, wd, want) in expected {
            let p = Parameter(Tensor([1]))
            let opt = kind.make([p], lr: nil, weightDecay: wd)
            XCTAssertEqual(opt.learningRate, kind == .sgd ? 0.01 : 1e-3)
            p.grad = Tensor([g])
            opt.step()
            XCTAssertEqual(Double(p.value.scalars[0]), want, accuracy: 1e-6, "\(kind) weight decay \(wd.map { "\($0)" } ?? "default")")
        }
        XCTAssertEqual(OptimizerKind(rawValue: "rmsprop"), .rmsprop)
    }

    /// Each class gives its rounded share to testing, at least one where it has two images and
    /// never all; the split is seeded and covers every image once.
    func testStratifiedTestSplit() {
        let sizes = [10, 1, 2, 7, 3]
        var labels: [Int] = []
        for (c, n) in sizes.enumerated() { labels += [Int](repeating: c, count: n) }
        let d = LabeledImages(pixels: labels.indices.map { UInt8($0) }, labels: labels, imageShape: [1, 1, 1], classNames: sizes.indices.map { "c\($0)" })
        let (train, test) = d.splitPerClass(testShare: 0.2, seed: 5)
        let want = [2, 0, 1, 1, 1]    // 10·0.2, one image only, at least one, 1.4 -> 1, 0.6 -> 1
        XCTAssertEqual(sizes.indices.map { c in test.labels.filter { $0 == c }.count }, want)
        XCTAssertEqual(Set(train.pixels + test.pixels), Set(d.pixels))
        XCTAssertEqual(train.count + test.count, d.count)
        let again = d.splitPerClass(testShare: 0.2, seed: 5).test
        XCTAssertEqual(again.pixels, test.pixels)
        XCTAssertNotEqual(d.splitPerClass(testShare: 0.2, seed: 6).test.pixels, test.pixels)
        let half = d.splitPerClass(testShare: 0.9, seed: 0)
        XCTAssertEqual(sizes.indices.map { c in half.train.labels.filter { $0 == c }.count }, [1, 1, 1, 1, 1], "never every image of a class")
    }

    /// Class k: stripes of orientation k (rows, columns, diagonals, anti-diagonals) with a random
    /// phase and period, plus noise.
    static func writeStripes(_ root: String, classes: [Int], photos: Int, side: Int = 20, seed: UInt64) throws {
        try? FileManager.default.removeItem(atPath: root)
        var rng = RandomGenerator(seed: seed)
        for k in classes {
            try FileManager.default.createDirectory(atPath: root + "/stripes\(k)", withIntermediateDirectories: true)
            for i in 0..<photos {
                let period = 4 + rng.nextInt(3), phase = rng.nextInt(period)
                let px = (0..<(side * side)).map { p -> UInt8 in
                    let (x, y) = (p % side, p / side)
                    let t = [y, x, x + y, x + side - y][k] + phase
                    return UInt8(t % period < period / 2 ? 170 + rng.nextInt(60) : 30 + rng.nextInt(60))
                }
                try Image(width: side, height: side, channels: 1, pixels: px).savePNG(root + "/stripes\(k)/\(i).png")
            }
        }
    }

    /// From scratch, the folder's CNN learns the stripes; fine-tuning a pretrained model with the
    /// features frozen changes only the new classifier, whose classes are the new folder's.
    func testFolderTrainingFromScratchAndByTransfer() throws {
        let a = testTemp("stripes-a"), b = testTemp("stripes-b")
        try Self.writeStripes(a, classes: [0, 1], photos: 30, seed: 1)
        try Self.writeStripes(b, classes: [0, 1, 2, 3], photos: 12, seed: 2)
        var t = FolderTraining(a)
        (t.size, t.channels, t.epochs, t.progress, t.out) = ((20, 20), 1, 8, .none, testTemp("stripes-a.safetensors"))
        let r = try t.run()
        XCTAssertEqual(r.runs.count, 1)
        XCTAssertGreaterThanOrEqual(r.runs[0].accuracy, 0.9, "two kinds of stripes")
        let pre = try SavedModel.load(t.out!)
        XCTAssertEqual(pre.info.classNames, ["stripes0", "stripes1"])
        XCTAssertEqual(pre.info.inputShape, [1, 20, 20])
        XCTAssertEqual(pre.info.extra["test_split"], "0.2")
        XCTAssertEqual(pre.info.history.count, 8)
        // Statistics of the training split: the stripes are about half bright, half dark.
        XCTAssertEqual(pre.info.normalization.mean[0], Float(0.5 * (200 + 60)) / 255, accuracy: 0.06)
        // The test split recorded in the file gives the same score again.
        var all = try ImageFolder.load(a, channels: 1, size: (20, 20))
        all.normalization = pre.info.normalization
        pre.model.eval()
        XCTAssertEqual(Trainer.evaluate(pre.model, all.splitPerClass(testShare: 0.2, seed: 0).test).accuracy, r.runs[0].accuracy, accuracy: 1e-9)

        var f = FolderTraining(b)
        (f.pretrained, f.freeze, f.epochs, f.progress, f.out) = (t.out, true, 20, .none, testTemp("stripes-b.safetensors"))
        let fr = try f.run()
        // A seed trains the same alone as after another.
        var twice = f
        (twice.seed, twice.seeds, twice.out) = (1, 2, testTemp("stripes-b-seeds.safetensors"))
        var alone = f
        (alone.seed, alone.out) = (2, testTemp("stripes-b-seed2.safetensors"))
        XCTAssertEqual(try twice.run().runs[1].extra["test_loss"], try alone.run().runs[0].extra["test_loss"])
        let tuned = try SavedModel.load(f.out!)
        XCTAssertEqual(tuned.info.classNames, ["stripes0", "stripes1", "stripes2", "stripes3"])
        XCTAssertEqual(tuned.info.normalization, pre.info.normalization, "the pretrained model's normalisation")
        XCTAssertEqual(tuned.info.recipe, "strata train --data \(b) --from \(t.out!) --freeze --test-split 0.2 --epochs 20 --batch-size 32 --optimizer adam --lr 0.01 --seed 0")
        let old = pre.model.stateDict(), new = tuned.model.stateDict()
        let classifier = (tuned.model as! Sequential).layers.count - 1
        for (name, w) in old where !name.hasPrefix("\(classifier).") {
            XCTAssertEqual(new[name]!.scalars, w.scalars, "\(name) trained although frozen")
        }
        XCTAssertEqual(new["\(classifier).weight"]!.shape, [4, 128])
        XCTAssertGreaterThan(fr.runs[0].accuracy, 0.5, "four kinds of stripes on frozen features (chance 0.25)")

        // A model of these very classes keeps its classifier. Frozen (BatchNorm on its statistics) and
        // at a negligible rate the weights stay put, so the score is the last run's (a new classifier
        // would be near chance).
        var second = FolderTraining(b)
        (second.pretrained, second.freeze, second.epochs, second.lr) = (f.out, true, 1, 1e-12)
        (second.progress, second.out) = (.none, testTemp("stripes-b2.safetensors"))
        let sr = try second.run()
        XCTAssertEqual(sr.runs[0].accuracy, fr.runs[0].accuracy, accuracy: 1e-9)
        let kept = try SavedModel.load(second.out!).model.stateDict()
        let moved = zip(kept["\(classifier).weight"]!.scalars, new["\(classifier).weight"]!.scalars).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(moved, 1e-6, "the classifier was kept, not replaced")
        XCTAssert((tuned.model as! Sequential).classifier === (tuned.model as! Sequential).layers[classifier])
        XCTAssertNil(Sequential(Linear(2, 2), Conv2D(1, 1, kernelSize: 1)).classifier)

        // Refused: a freeze without a model, an ONNX graph, a model that ends without a Linear layer, one class.
        var bad = FolderTraining(b)
        bad.freeze = true
        XCTAssertThrowsError(try bad.run()) { XCTAssert("\($0)".contains("pretrained"), "\($0)") }
        bad = FolderTraining(b)
        bad.pretrained = "model.onnx"
        XCTAssertThrowsError(try bad.run()) { XCTAssert("\($0)".contains("strata import"), "\($0)") }
        let convOnly = testTemp("conv-only.safetensors")
        let conv = Sequential(Conv2D(1, 2, kernelSize: 3), GlobalAvgPool())
        try SavedModel(model: conv, info: ModelInfo(model: conv, classNames: ["a", "b"], inputShape: [1, 20, 20])).save(to: convOnly)
        bad.pretrained = convOnly
        XCTAssertThrowsError(try bad.run()) { XCTAssert("\($0)".contains(convOnly) && "\($0)".contains("is Conv2D (layer 0)"), "\($0)") }
        let one = testTemp("stripes-one")
        try Self.writeStripes(one, classes: [2], photos: 4, seed: 3)
        XCTAssertThrowsError(try FolderTraining(one).run()) { XCTAssert("\($0)".contains("at least two class folders"), "\($0)") }
    }

    /// `strata train --data FOLDER`: the saved model's test score is what `strata evaluate` gives
    /// on the same folder, `predict` names its classes, and bad flags get one line and exit 1.
    func testTrainOnAFolderThroughTheCLI() throws {
        let a = testTemp("cli-stripes"), b = testTemp("cli-stripes-other")
        try Self.writeStripes(a, classes: [0, 1, 2], photos: 20, seed: 4)
        try Self.writeStripes(b, classes: [1, 3], photos: 6, seed: 5)
        let model = testTemp("cli-stripes.safetensors")
        let (code, out, err) = try runStrata(["train", "--data", a, "--size", "20", "--channels", "1", "--epochs", "10", "--optimizer", "sgd",
                                              "--lr", "0.05", "--augment", "--threads", "1", "--out", model, "--json"])
        XCTAssertEqual(code, 0, err)
        let json = try JSONSerialization.jsonObject(with: Data(out.split(separator: "\n").last!.utf8)) as! [String: Any]
        let acc = json["test_accuracy"] as! Double
        XCTAssertGreaterThanOrEqual(acc, 0.8, "three kinds of stripes")
        XCTAssertEqual((json["history"] as! [Any]).count, 10)
        let saved = try SavedModel.load(model)
        XCTAssertEqual(saved.info.recipe, "strata train --data \(a) --size 20 --channels 1 --test-split 0.2 --epochs 10 --batch-size 32 --optimizer sgd --lr 0.05 --augment --seed 0")
        let (ec, eout, eerr) = try runStrata(["evaluate", "--model", model, "--data", a, "--json"])
        XCTAssertEqual(ec, 0, eerr)
        let ej = try JSONSerialization.jsonObject(with: Data(eout.utf8)) as! [String: Any]
        XCTAssertEqual(ej["test_accuracy"] as! Double, acc, accuracy: 1e-9, "evaluate scores the split training held out")
        XCTAssertEqual(ej["images"] as! Int, 12)
        let (pc, pout, perr) = try runStrata(["predict", "--model", model, a + "/stripes2/0.png"])
        XCTAssertEqual(pc, 0, perr)
        XCTAssert(pout.contains("stripes0") && pout.contains("stripes1") && pout.contains("stripes2"), pout)

        // A PyTorch model through ONNX: imported as layers, then its classifier retrained on the folder.
        let onnx = ModelFileTests.fixtures.appendingPathComponent("onnx/fashion_cnn_torchscript.onnx").path
        let imported = testTemp("cli-imported.safetensors"), tuned = testTemp("cli-imported-tuned.safetensors")
        let (ic, _, ierr) = try runStrata(["import", "--onnx", onnx, "--out", imported])
        XCTAssertEqual(ic, 0, ierr)
        let (tc, tout, terr) = try runStrata(["train", "--data", a, "--from", imported, "--freeze", "--epochs", "3", "--threads", "1", "--out", tuned])
        XCTAssertEqual(tc, 0, terr)
        XCTAssert(tout.contains("training 387 parameters (420352 more frozen)"), tout)
        let before = try SavedModel.load(imported), after = try SavedModel.load(tuned)
        XCTAssertEqual(after.info.classNames, ["stripes0", "stripes1", "stripes2"])
        XCTAssertEqual(after.info.inputShape, [1, 28, 28])
        let last = (after.model as! Sequential).layers.count - 1
        for (name, w) in before.model.stateDict() where !name.hasPrefix("\(last).") {
            XCTAssertEqual(after.model.stateDict()[name]?.scalars, w.scalars, "\(name) trained although frozen")
        }

        // Seeds count on past Int.max by wrapping, not by trapping; --size WxH.
        let wrapped = testTemp("cli-stripes-wrap.safetensors")
        let (wc, wout, werr) = try runStrata(["train", "--data", a, "--size", "24x16", "--channels", "1", "--epochs", "1", "--seed", "\(Int.max)", "--seeds", "2",
                                              "--threads", "1", "--out", wrapped])
        XCTAssertEqual(wc, 0, werr)
        XCTAssert(wout.contains("seed \(Int.max):") && wout.contains("seed \(Int.min):"), wout)
        XCTAssert(wout.contains("reading \(a) at 24x16, grey"), wout)
        XCTAssertEqual(try SavedModel.load(wrapped).info.inputShape, [1, 16, 24])

        func fails(_ args: [String], _ words: [String], file: StaticString = #filePath, line: UInt = #line) throws {
            let (c, _, e) = try runStrata(args)
            XCTAssertEqual(c, 1, "\(args): \(e)", file: file, line: line)
            for w in words { XCTAssert(e.contains(w), "stderr lacks '\(w)': \(e)", file: file, line: line) }
            XCTAssertFalse(e.contains("Fatal error") || e.contains("Backtrac"), e, file: file, line: line)
        }
        try fails(["evaluate", "--model", model, "--data", b], [b, "stripes1, stripes3", "stripes0, stripes1, stripes2"])
        try fails(["train", "--data", "/nonexistent/photos"], ["--data /nonexistent/photos", "nor a folder"])
        try fails(["train", "--data", a, "--freeze"], ["--freeze", "--from"])
        try fails(["train", "--data", a, "--from", model, "--size", "32"], ["--size", "--from"])
        try fails(["train", "--data", a, "--size", "3"], ["--size 3", "8...1024"])
        try fails(["train", "--data", a, "--size", "20x"], ["--size 20x"])
        try fails(["train", "--data", a, "--size", "20x16x3"], ["--size 20x16x3"])
        try fails(["train", "--data", a, "--channels", "2"], ["--channels"])
        try fails(["train", "--data", a, "--test-split", "1"], ["--test-split"])
        try fails(["train", "--data", a, "--val-split", "0.1"], ["--val-split", "image folders"])
        try fails(["train", "--data", a, "--model", "gru"], ["--model gru"])
        try fails(["train", "--data", a, "--optimizer", "nadam"], ["nadam"])
        try fails(["train", "--data", a, "--weight-decay", "-1"], ["--weight-decay"])
        try fails(["train", "--data", a, "--from", "/nonexistent/pre.onnx"], ["/nonexistent/pre.onnx", "strata import"])
        try fails(["train", "--data", a, "--from", "/nonexistent/pre.safetensors"], ["/nonexistent/pre.safetensors"])
        try fails(["train", "--data", "fashion-mnist", "--size", "32"], ["--size", "image folders"])
        try fails(["train", "--data", "sms-spam", "--optimizer", "sgd"], ["--optimizer", "sms-spam"])
    }
}
