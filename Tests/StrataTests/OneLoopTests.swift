import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

/// Every training runs through `Trainer.fit`: the face recipe (person-balanced batches,
/// augmentation, its own loss) and the softmax regression give the numbers their hand-written
/// loops gave, and custom batch orders and transforms resume exactly.
final class OneLoopTests: XCTestCase {
    /// 5 "people" of 6 grey 16x16 images: a blob per person, with noise.
    func people(seed: Int = 4) -> LabeledImages {
        var rng = RandomGenerator(seed: seed)
        var px: [UInt8] = [], labels: [Int] = []
        for p in 0..<5 { for _ in 0..<6 {
            labels.append(p)
            let cx = 3 + (p * 5) % 10, cy = 3 + (p * 7) % 10
            for y in 0..<16 { for x in 0..<16 {
                let d = Float((x - cx) * (x - cx) + (y - cy) * (y - cy))
                px.append(UInt8(Swift.min(255, 200 * Foundation.exp(-d / 10) + 40 * rng.nextFloat())))
            } }
        } }
        return LabeledImages(pixels: px, labels: labels, imageShape: [1, 16, 16], classNames: (1...5).map { "p\($0)" })
    }

    func state(_ m: Module) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: m.namedStates().map { ($0.0, $0.1.value.scalars) })
    }

    /// The AT&T recipe as it was written by hand before it went through the Trainer.
    func handTrainedFaceNet(_ data: LabeledImages, _ o: FaceTrainingOptions) throws -> (FaceNet, [Double]) {
        RandomGenerator.manualSeed(o.seed)
        let (h, w) = (data.imageShape[1], data.imageShape[2])
        let net = FaceNet(classes: data.classNames.count, loss: o.loss, embedding: o.embedding, widths: o.widths, inputSize: (h, w))
        let opt = Adam(net.parameters(), lr: o.lr, weightDecay: o.weightDecay)
        var raw = data
        raw.normalization = Normalization(scale: 1 / 255)
        var rng = RandomGenerator(seed: o.seed &+ 101)
        let stepsPerEpoch = (data.count + o.batchSize - 1) / o.batchSize
        let schedule = CosineAnnealing(totalSteps: o.epochs * stepsPerEpoch)
        var step = 0, losses: [Double] = []
        net.train()
        for _ in 0..<o.epochs {
            for batch in FaceTraining.batches(data, o, &rng) {
                opt.learningRate = schedule.learningRate(at: step, base: o.lr)
                let x = o.augmentation.apply(raw.batch(batch).inputs, rng: &rng).standardizedPerImage()
                let loss = net.trainingLoss(x, batch.map { data.labels[$0] }, tripletMargin: o.tripletMargin)
                losses.append(Double(loss.item))
                opt.zeroGrad()
                loss.backward()
                opt.step()
                step += 1
            }
        }
        net.eval()
        return (net, losses)
    }

    func testFaceRecipeThroughTheTrainerMatchesTheHandLoop() throws {
        let data = people()
        for loss in FaceLoss.allCases {
            var o = FaceTrainingOptions()
            (o.loss, o.epochs, o.batchSize, o.widths, o.embedding, o.seed) = (loss, 3, 8, [4, 8], 8, 2)
            var epochs: [Int] = []
            o.progress = { e, l in
                epochs.append(e)
                XCTAssert(l.isFinite)
            }
            let net = try FaceTraining.train(data, options: o)
            XCTAssertEqual(epochs, [1, 2, 3], "\(loss)")
            o.progress = nil
            let (reference, _) = try handTrainedFaceNet(data, o)
            XCTAssertEqual(state(net), state(reference), "\(loss): the Trainer path moved the weights")
            XCTAssertFalse(net.isTraining)
        }
    }

    func testFaceRecipeResumesFromACheckpointExactly() throws {
        let data = people()
        var o = FaceTrainingOptions()
        (o.loss, o.epochs, o.batchSize, o.widths, o.embedding, o.seed) = (.triplet, 3, 8, [4, 8], 8, 1)
        let full = try FaceTraining.train(data, options: o)
        // A run that checkpoints every epoch; keep the checkpoint of epoch 1 (the progress of
        // epoch 2 is reported before its checkpoint replaces it).
        var first = o
        let path = testTemp("faces-grey.ckpt.safetensors"), after1 = testTemp("faces-grey-1.ckpt.safetensors")
        first.checkpointPath = path
        first.progress = { e, _ in
            if e == 2 {
                try? FileManager.default.removeItem(atPath: after1)
                try? FileManager.default.copyItem(atPath: path, toPath: after1)
            }
        }
        _ = try FaceTraining.train(data, options: first)
        // A fresh run resumed after epoch 1 ends where the unbroken one did.
        var resumed = o
        resumed.resumeFrom = after1
        let again = try FaceTraining.train(data, options: resumed)
        XCTAssertEqual(state(again), state(full))
    }

    func testCustomOrderTransformAndBatchLossResumeExactly() throws {
        let n = 24
        var rng = RandomGenerator(seed: 5)
        let x = Tensor((0..<(n * 3)).map { _ in rng.nextNormal() }, shape: [n, 3])
        let labels = (0..<n).map { $0 % 3 }
        let data = TensorDataset(x, labels: labels)
        func trainer(seed: Int) -> Trainer {
            RandomGenerator.manualSeed(seed)
            let m = Sequential(Linear(3, 6), ReLU(), Dropout(0.2), Linear(6, 3))
            let t = Trainer(model: m, optimizer: Adam(m.parameters(), lr: 0.01),
                            info: ModelInfo(architecture: ModuleRegistry.spec(of: m), classNames: ["a", "b", "c"], inputShape: [3]))
            t.generator = RandomGenerator(seed: 11)
            // Pairs of examples of one class, in a drawn order; each batch gets drawn noise.
            t.batchOrder = { _, rng in
                let p = rng.permutation(n / 2)
                return stride(from: 0, to: p.count - 1, by: 2).map { [p[$0], p[$0] + 12, p[$0 + 1]] }
            }
            t.batchTransform = { b, rng in
                let noise = Tensor((0..<b.inputs.count).map { _ in 0.1 * rng.nextNormal() }, shape: b.inputs.shape)
                return Batch(inputs: b.inputs + noise, labels: b.labels, indices: b.indices)
            }
            t.batchLoss = { b in (crossEntropy(m(b.inputs), b.labels), nil) }
            return t
        }
        var o = FitOptions(epochs: 3, batchSize: 4, seed: 0)
        o.progress = .none
        let full = trainer(seed: 3)
        var records: [EpochRecord] = []
        full.onEpochEnd = { records.append($0) }
        let h = try full.fit(data, options: o)
        XCTAssertEqual(records, h)
        XCTAssertEqual(h.map { $0.trainAccuracy }, [0, 0, 0], "no scores: no accuracy")
        XCTAssertEqual(h.last!.samplesPerSecond > 0, true)

        let first = trainer(seed: 3)
        var o1 = o
        o1.epochs = 1
        o1.checkpointPath = testTemp("custom-order.ckpt.safetensors")
        try first.fit(data, options: o1)
        let resumed = trainer(seed: 99)   // other weights, other generators: the checkpoint restores them
        resumed.generator = RandomGenerator(seed: 12345)
        var o2 = o
        o2.resumeFrom = o1.checkpointPath
        try resumed.fit(data, options: o2)
        XCTAssertEqual(state(resumed.model), state(full.model))
        XCTAssertEqual(resumed.generator.state, full.generator.state)
    }

    func testLoaderTransformsGivenBatchesInOrder() {
        let data = TensorDataset(Tensor((0..<10).map { Float($0) }, shape: [10, 1]), labels: Array(0..<10))
        let loader = DataLoader(data, batchSize: 3)
        var counter = 0
        let lock = NSLock()
        let epoch = loader.epoch(batches: [[4, 2], [9], [0, 1, 3]]) { b in
            lock.lock(); defer { lock.unlock() }
            counter += 1
            return Batch(inputs: b.inputs + Float(counter * 100), labels: b.labels, indices: b.indices)
        }
        XCTAssertEqual(epoch.count, 3)
        XCTAssertEqual(epoch.exampleCount, 6)
        let got = Array(epoch)
        XCTAssertEqual(got.map { $0.labels }, [[4, 2], [9], [0, 1, 3]])
        XCTAssertEqual(got.map { $0.inputs.scalars }, [[104, 102], [209], [300, 301, 303]])
    }

    /// The two logistic regressions as they were written before they became one.
    func handProbe(_ features: Tensor, _ labels: [Int], classes: Int, epochs: Int, batchSize: Int, lr: Float, l2: Float, seed: Int) -> (Tensor, Tensor) {
        let n = features.shape[0], d = features.shape[1]
        let mean = features.mean(axes: [0], keepDims: true).detached()
        let std = (features.variance(axes: [0], keepDims: true, unbiased: false) + 1e-6).sqrt().detached()
        let z = noGrad { (features - mean) / std }
        let w = Parameter(Tensor.zeros([classes, d])), b = Parameter(Tensor.zeros([classes]))
        let opt = Adam([w, b], lr: lr)
        var rng = RandomGenerator(seed: seed)
        for _ in 0..<epochs {
            let order = rng.permutation(n)
            for start in stride(from: 0, to: n, by: batchSize) {
                let idx = Array(order[start..<Swift.min(start + batchSize, n)])
                let x = z.indexSelect(axis: 0, indices: idx)
                let loss = crossEntropy(linear(x, weight: w.value, bias: b.value), idx.map { labels[$0] }) + (w.value * w.value).sum() * (l2 / 2)
                opt.zeroGrad()
                loss.backward()
                opt.step()
            }
        }
        return (w.value, b.value)
    }

    func handTfIdfRegression(_ features: Tensor, _ labels: [Int], classes: Int, c: Float, epochs: Int, lr: Float) -> (Tensor, Tensor) {
        let weight = Parameter(Tensor.zeros([classes, features.shape[1]])), bias = Parameter(Tensor.zeros([classes]))
        let opt = Adam([weight, bias], lr: lr)
        let penalty = 1 / (2 * c * Float(labels.count))
        for _ in 0..<epochs {
            let loss = crossEntropy(linear(features, weight: weight.value, bias: bias.value), labels) + (weight.value * weight.value).sum() * penalty
            opt.zeroGrad()
            loss.backward()
            opt.step()
        }
        return (weight.value, bias.value)
    }

    func testOneSoftmaxRegressionGivesWhatBothLoopsGave() {
        var rng = RandomGenerator(seed: 8)
        let n = 70, d = 6
        let labels = (0..<n).map { _ in rng.nextInt(4) }
        let x = Tensor((0..<(n * d)).map { i in Float(labels[i / d] == i % d ? 2 : 0) + rng.nextNormal() + 3 }, shape: [n, d])
        let globalBefore = RandomGenerator.global.state

        let probe = LinearProbe.fit(features: x, labels: labels, classes: 4, epochs: 7, batchSize: 16, lr: 0.02, l2: 2e-3, seed: 3)
        let (w, b) = handProbe(x, labels, classes: 4, epochs: 7, batchSize: 16, lr: 0.02, l2: 2e-3, seed: 3)
        XCTAssertEqual(probe.weight.value.scalars, w.scalars)
        XCTAssertEqual(probe.bias.value.scalars, b.scalars)
        XCTAssertGreaterThan(probe.accuracy(features: x, labels: labels), 0.8)

        let tfidf = SoftmaxRegression(features: x, labels: labels, classes: 4, c: 2, epochs: 9, lr: 0.05)
        let (w2, b2) = handTfIdfRegression(x, labels, classes: 4, c: 2, epochs: 9, lr: 0.05)
        XCTAssertEqual(tfidf.weight.value.scalars, w2.scalars)
        XCTAssertEqual(tfidf.bias.value.scalars, b2.scalars)
        XCTAssertNil(tfidf.mean)
        XCTAssertEqual(tfidf.logits(x).scalars, noGrad { linear(x, weight: w2, bias: b2) }.scalars)

        XCTAssertEqual(RandomGenerator.global.state, globalBefore, "fitting a regression leaves the global generator alone")
    }
}
