import Foundation
import XCTest
@testable import StrataCore
@testable import StrataNN
@testable import StrataData
@testable import StrataClassic
@testable import StrataInspect
@testable import StrataFaces

final class TrainingTests: XCTestCase {
    /// 4x4 images: class 0 is bright on the left half, class 1 on the right, with noise.
    func toyData(_ n: Int, seed: Int) -> LabeledImages {
        var rng = RandomGenerator(seed: seed)
        var px: [UInt8] = [], labels: [Int] = []
        for _ in 0..<n {
            let y = rng.nextInt(2)
            labels.append(y)
            for _ in 0..<4 { for c in 0..<4 {
                let bright = (c < 2) == (y == 0)
                px.append(UInt8(Swift.min(255, (bright ? 160 : 40) + rng.nextInt(60))))
            } }
        }
        return LabeledImages(pixels: px, labels: labels, imageShape: [1, 4, 4], classNames: ["left", "right"])
    }

    func makeTrainer(seed: Int = 0, lr: Float = 0.05) -> Trainer {
        RandomGenerator.manualSeed(seed)
        let m = Sequential(Flatten(), Linear(16, 8), ReLU(), Dropout(0.1), Linear(8, 2))
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: m), classNames: ["left", "right"], inputShape: [1, 4, 4])
        return Trainer(model: m, optimizer: Adam(m.parameters(), lr: lr), info: info)
    }

    func options(_ epochs: Int) -> FitOptions {
        var o = FitOptions(epochs: epochs, batchSize: 16, seed: 3)
        o.progress = .none
        return o
    }

    func weights(_ t: Trainer) -> [[Float]] { t.model.namedStates().map { $0.1.value.scalars } }

    func testLearnsASeparableProblemAndSavesTheBestModel() throws {
        let t = makeTrainer()
        var o = options(3)
        let path = testTemp("toy-best.safetensors")
        o.bestModelPath = path
        let h = try t.fit(toyData(400, seed: 1), validation: toyData(100, seed: 2), options: o)
        XCTAssertEqual(h.count, 3)
        XCTAssertGreaterThanOrEqual(h.last!.valAccuracy!, 0.98)
        XCTAssertLessThan(h.last!.trainLoss, h.first!.trainLoss)
        let saved = try SavedModel.load(path)
        XCTAssertEqual(saved.info.history.count, h.firstIndex { $0.valLoss! == h.map { $0.valLoss! }.min()! }! + 1)
        XCTAssertGreaterThanOrEqual(Trainer.evaluate(saved.model, toyData(100, seed: 2)).accuracy, 0.98)
    }

    /// `saveBestOnly = false` writes every epoch, so the file holds the last one even when the
    /// validation loss rises (here flipped validation labels make it rise as the network learns).
    func testSaveBestOnlyOffKeepsTheLastEpoch() throws {
        let v = toyData(100, seed: 2)
        let flipped = LabeledImages(pixels: v.pixels, labels: v.labels.map { 1 - $0 }, imageShape: v.imageShape, classNames: v.classNames)
        for bestOnly in [true, false] {
            let t = makeTrainer()
            var o = options(3)
            let path = testTemp("toy-best-\(bestOnly).safetensors")
            (o.bestModelPath, o.saveBestOnly) = (path, bestOnly)
            let h = try t.fit(toyData(400, seed: 1), validation: flipped, options: o)
            let losses = h.map { $0.valLoss! }
            XCTAssertEqual(losses.firstIndex(of: losses.min()!), 0, "the flipped validation loss should be lowest after epoch 1: \(losses)")
            let saved = try SavedModel.load(path)
            XCTAssertEqual(saved.info.history.count, bestOnly ? 1 : 3)
            let same = zip(saved.model.namedStates(), t.model.namedStates()).allSatisfy { $0.1.value.scalars == $1.1.value.scalars }
            XCTAssertEqual(same, !bestOnly, "the file holds the last epoch's weights only when every epoch is written")
        }
    }

    func testSameSeedSameWeights() throws {
        let a = makeTrainer(seed: 5)
        try a.fit(toyData(200, seed: 1), options: options(2))
        let b = makeTrainer(seed: 5)
        _ = Tensor.randn([7])   // unrelated use of the global generator in between
        try b.fit(toyData(200, seed: 1), options: options(2))
        let c = makeTrainer(seed: 6)
        try c.fit(toyData(200, seed: 1), options: options(2))
        XCTAssertEqual(weights(a), weights(b))
        XCTAssertNotEqual(weights(a), weights(c))
    }

    func testResumingFromACheckpointMatchesAnUninterruptedRun() throws {
        let data = toyData(200, seed: 1)
        let full = makeTrainer(seed: 9)
        try full.fit(data, options: options(3))
        let first = makeTrainer(seed: 9)
        var o = options(1)
        let ckpt = testTemp("toy.ckpt.safetensors")
        o.checkpointPath = ckpt
        try first.fit(data, options: o)
        // A new process would start from fresh weights and a different global random state.
        let resumed = makeTrainer(seed: 1234)
        var o2 = options(3)
        o2.resumeFrom = ckpt
        let h = try resumed.fit(data, options: o2)
        XCTAssertEqual(h.count, 3)
        XCTAssertEqual(weights(resumed), weights(full))
    }

    func testEarlyStoppingWhenTheValidationLossStopsImproving() throws {
        let t = makeTrainer(lr: 0)   // nothing changes, so nothing improves after epoch 1
        var o = options(10)
        o.patience = 2
        let h = try t.fit(toyData(64, seed: 1), validation: toyData(32, seed: 2), options: o)
        XCTAssertEqual(h.count, 3)
    }

    /// ReduceLROnPlateau: an optimizer with no parameters changes nothing, so the validation loss
    /// is the same every epoch and improves only in epoch 1. With patience 2 and factor 0.5 the
    /// rate halves after epochs 3 and 5 and then stays at its floor (a quarter of the base); under
    /// a StepLR schedule the cuts scale the schedule's base. A run resumed from a checkpoint taken
    /// between two cuts follows the same rates.
    func testPlateauReductionCutsTheRateWhenTheValidationLossStalls() throws {
        func trainer() -> Trainer {
            let t = makeTrainer()
            return Trainer(model: t.model, optimizer: SGD([], lr: 0.1), info: t.info)
        }
        let (data, val) = (toyData(64, seed: 1), toyData(32, seed: 2))   // 4 steps of 16 an epoch
        let scales: [Double] = [1, 1, 1, 0.5, 0.5, 0.25, 0.25]
        for stepped in [false, true] {
            var o = options(7)
            o.reduceOnPlateau = PlateauReduction(factor: 0.5, patience: 2, minRate: 0.025)
            if stepped { o.schedule = StepLR(stepSize: 4, gamma: 0.5) }   // halves every epoch
            let want = scales.enumerated().map { e, s in 0.1 * s * (stepped ? pow(0.5, Double(e)) : 1) }
            let h = try trainer().fit(data, validation: val, options: o)
            XCTAssertEqual(Set(h.map { $0.valLoss! }).count, 1, "the validation loss never changes")
            for (r, w) in zip(h, want) { XCTAssertEqual(r.learningRate, w, accuracy: 1e-7, "epoch \(r.epoch), schedule \(stepped)") }

            let ckpt = testTemp("plateau-\(stepped).ckpt.safetensors")
            var first = o
            (first.epochs, first.checkpointPath) = (4, ckpt)   // after epoch 4: one cut made, one epoch waited
            try trainer().fit(data, validation: val, options: first)
            var rest = o
            rest.resumeFrom = ckpt
            let resumed = try trainer().fit(data, validation: val, options: rest)
            XCTAssertEqual(resumed.count, 7)
            for (r, w) in zip(resumed, want) { XCTAssertEqual(r.learningRate, w, accuracy: 1e-7, "resumed: epoch \(r.epoch), schedule \(stepped)") }
        }
    }

    func testNaNLossStopsTheRunWithAClearMessage() {
        let t = makeTrainer()
        t.loss = { out, labels in crossEntropy(out, labels) * Float.nan }
        XCTAssertThrowsError(try t.fit(toyData(64, seed: 1), options: options(1))) { e in
            XCTAssert("\(e)".contains("NaN") && "\(e)".contains("epoch 1"), "\(e)")
        }
    }

    /// A short run on real data: 10,000 Fashion-MNIST training images, one epoch of the CNN.
    func testShortFashionMNISTRunReachesEightyPercent() throws {
        guard haveFashion else {
            throw XCTSkip("Fashion-MNIST is not installed in \(fashionDir) (apt-get install dataset-fashion-mnist)")
        }
        let train = try FashionMNIST.load(.train).prefix(10_000), test = try FashionMNIST.load(.test).prefix(2_000)
        RandomGenerator.manualSeed(0)
        let net = ModelZoo.fashionCNN()
        let t = Trainer(model: net, optimizer: Adam(net.parameters(), lr: 1e-3), info: ModelZoo.fashionInfo(net))
        var o = FitOptions(epochs: 1, batchSize: 64, seed: 0)
        o.progress = .none
        try t.fit(train, options: o)
        let acc = Trainer.evaluate(net, test).accuracy
        XCTAssertGreaterThanOrEqual(acc, 0.80, "test accuracy \(acc) after one epoch on 10k images")
    }
}
