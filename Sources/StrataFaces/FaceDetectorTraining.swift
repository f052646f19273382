import Foundation
import StrataCore
import StrataNN
import StrataData

/// Per-cell training targets of `FaceDetectorNet`: `[6, cells]` per picture, the same cell
/// order as the network's output. Rows: face (1) or not (0); weight of the score (0 where
/// ignored); the box (centre offset x, y in strides, log side in strides); weight of the box
/// (1 at faces).
///
/// A face belongs to the levels whose size range holds its side (stride 8: 10-40 px, 16: 32-80,
/// 32: 64 and up), at the cells whose centre lies within max(stride / 2, 0.15 side) of the face
/// centre (the smaller face wins a shared cell). Around it, up to 0.4 sides, cells are ignored,
/// as are those near faces just outside a level's range and those inside ignore regions.
public enum DetectionTargets {
    public static let rows = 6
    public static let levelRanges: [(Double, Double)] = [(10, 40), (32, 80), (64, 100_000)]

    public static func encode(faces: [FaceBox], ignore: [PixelRect], height: Int, width: Int) -> [Float] {
        let grid = FaceDetectorNet.grid(height: height, width: width)
        let cells = grid.reduce(0) { $0 + $1.rows * $1.cols }
        var t = [Float](repeating: 0, count: rows * cells)
        for i in 0..<cells { t[cells + i] = 1 }
        var base = 0
        for (stride, rows, cols) in grid {
            for r in 0..<rows {
                for c in 0..<cols {
                    let x = (Double(c) + 0.5) * Double(stride), y = (Double(r) + 0.5) * Double(stride)
                    if ignore.contains(where: { $0.contains(x, y) }) { t[cells + base + r * cols + c] = 0 }
                }
            }
            base += rows * cols
        }
        for f in faces.sorted(by: { $0.side > $1.side }) {
            base = 0
            for (level, (stride, rows, cols)) in grid.enumerated() {
                defer { base += rows * cols }
                let (lo, hi) = levelRanges[level]
                guard f.side >= lo / 1.5 && f.side <= hi * 1.5 else { continue }
                let inRange = f.side >= lo && f.side <= hi
                let st = Double(stride)
                let rPos = Swift.max(0.5 * st, 0.15 * f.side), rIgnore = Swift.max(rPos, 0.4 * f.side)
                let c0 = Swift.max(0, Int(((f.centerX - rIgnore) / st - 0.5).rounded(.down)))
                let c1 = Swift.min(cols - 1, Int(((f.centerX + rIgnore) / st - 0.5).rounded(.up)))
                let r0 = Swift.max(0, Int(((f.centerY - rIgnore) / st - 0.5).rounded(.down)))
                let r1 = Swift.min(rows - 1, Int(((f.centerY + rIgnore) / st - 0.5).rounded(.up)))
                guard c0 <= c1, r0 <= r1 else { continue }
                for r in r0...r1 {
                    for c in c0...c1 {
                        let dx = f.centerX - (Double(c) + 0.5) * st, dy = f.centerY - (Double(r) + 0.5) * st
                        let i = base + r * cols + c
                        if inRange && Swift.abs(dx) <= rPos && Swift.abs(dy) <= rPos {
                            t[i] = 1
                            t[cells + i] = 1
                            t[2 * cells + i] = Float(dx / st)
                            t[3 * cells + i] = Float(dy / st)
                            t[4 * cells + i] = Float(Foundation.log(f.side / st))
                            t[5 * cells + i] = 1
                        } else if Swift.abs(dx) <= rIgnore && Swift.abs(dy) <= rIgnore && t[i] != 1 {
                            t[cells + i] = 0
                        }
                    }
                }
            }
        }
        return t
    }

    /// Focal loss (α 0.25, γ 2) on the scores plus L1 on the boxes, both summed and divided by the
    /// number of face cells, as FCOS and RetinaNet normalise. `out` `[N, 4, cells]`, `targets` `[N, 6, cells]`.
    public static func loss(_ out: Tensor, _ targets: Tensor) -> Tensor {
        precondition(out.rank == 3 && targets.rank == 3 && out.shape[0] == targets.shape[0] && out.shape[2] == targets.shape[2]
                     && out.shape[1] == 4 && targets.shape[1] == rows,
                     "DetectionTargets.loss: output \(out.shape) and targets \(targets.shape) do not match")
        let z = out.slice(axis: 1, start: 0, end: 1)
        let t = targets.slice(axis: 1, start: 0, end: 1), w = targets.slice(axis: 1, start: 1, end: 2)
        let tb = targets.slice(axis: 1, start: 2, end: 5), bw = targets.slice(axis: 1, start: 5, end: 6)
        let faces = Swift.max(1, t.sum().item)
        let p = z.sigmoid()
        let ce = z.relu() - z * t + ((-z.abs()).exp() + 1).log()
        let pt = p * t + (1 - p) * (1 - t)
        let focal = (1 - pt).square() * ce * (t * 0.25 + (1 - t) * 0.75)
        let score = (focal * w).sum() / faces
        let box = ((out.slice(axis: 1, start: 1, end: 4) - tb).abs() * bw).sum() / faces
        return score + box
    }
}

/// Average precision and recall of detections against known faces.
public struct DetectionScore: Codable {
    public var pictures: Int, faces: Int
    /// Average precision at IoU 0.5 (all-point interpolation, as PASCAL VOC since 2010).
    public var ap50: Double
    /// The highest recall while false positives are at most one per picture.
    public var recallAt1FP: Double
    /// Recall and false positives per picture at the detector's threshold (detections given).
    public var recall: Double, falsePositivesPerPicture: Double

    /// Scores `detections[i]` against `truth[i]`: detections pooled over pictures by score; each
    /// takes the unmatched face it overlaps most if IoU ≥ 0.5, else is skipped when half of it lies
    /// in an ignore region, else is a false positive. `Tools/haar_reference.py` computes the same.
    public static func evaluate(_ detections: [[FaceBox]], truth: [[FaceBox]], ignore: [[PixelRect]]) -> DetectionScore {
        let all = detections.enumerated().flatMap { i, ds in ds.map { (i, $0) } }.enumerated()
            .sorted { $0.element.1.score != $1.element.1.score ? $0.element.1.score > $1.element.1.score : $0.offset < $1.offset }
        var matched = truth.map { [Bool](repeating: false, count: $0.count) }
        let total = truth.reduce(0) { $0 + $1.count }
        var tp = 0, fp = 0
        var curve: [(recall: Double, precision: Double)] = []
        var recallAt1FP = 0.0
        for (_, (pic, d)) in all {
            var best = -1, bestIoU = 0.0
            for (j, f) in truth[pic].enumerated() where !matched[pic][j] {
                let o = f.iou(d)
                if o > bestIoU { (best, bestIoU) = (j, o) }
            }
            if best >= 0 && bestIoU >= 0.5 {
                matched[pic][best] = true
                tp += 1
            } else if ignore[pic].contains(where: { $0.covers(d) >= 0.5 }) {
                continue
            } else {
                fp += 1
            }
            let recall = total > 0 ? Double(tp) / Double(total) : 0
            curve.append((recall, Double(tp) / Double(tp + fp)))
            if fp <= detections.count { recallAt1FP = Swift.max(recallAt1FP, recall) }
        }
        var ap = 0.0, prevRecall = 0.0
        var precision = curve.map(\.precision)
        if precision.count > 1 { for i in stride(from: precision.count - 2, through: 0, by: -1) { precision[i] = Swift.max(precision[i], precision[i + 1]) } }
        for (i, point) in curve.enumerated() where point.recall > prevRecall {
            ap += (point.recall - prevRecall) * precision[i]
            prevRecall = point.recall
        }
        let pictures = detections.count
        return DetectionScore(pictures: pictures, faces: total, ap50: ap, recallAt1FP: recallAt1FP,
                              recall: total > 0 ? Double(tp) / Double(total) : 0,
                              falsePositivesPerPicture: Double(fp) / Double(Swift.max(1, pictures)))
    }
}

/// Settings of a detector training run (`make faces-detector`).
public struct FaceDetectorTrainingOptions {
    public var epochs = 40
    public var picturesPerEpoch = 4096
    public var batchSize = 32
    /// Side of the square training pictures.
    public var size = 160
    public var learningRate: Float = 3e-3
    public var seed = 0
    /// A seeded share of the people never shown to the detector (those `make faces-check` holds out).
    public var holdoutFraction = 0.0, holdoutSeed = 0
    public var checkpointPath: String?
    public var resume = false
    public var progress: ProgressStyle = .auto
    public init() {}
}

extension FaceDetector {
    /// Trains a detector on pictures composed from the LFW photos under `lfw` (minus the held-out
    /// people) and `backgroundFiles`, through the one `Trainer`; composing runs on the loader's
    /// thread while the network trains.
    public static func train(lfw: String, backgroundFiles: [String] = DetectionCheck.wallpapers(check: false),
                             options o: FaceDetectorTrainingOptions,
                             onEpochEnd: ((EpochRecord) -> Void)? = nil) throws -> (FaceDetector, DetectionSources) {
        let people = try FaceDetector.trainingPeople(lfw: lfw, holdoutFraction: o.holdoutFraction, holdoutSeed: o.holdoutSeed).train
        let sources = try DetectionSources.load(lfw: lfw, people: people, backgroundFiles: backgroundFiles)
        RandomGenerator.manualSeed(o.seed)
        let net = try FaceDetectorNet(configuration: .init())
        var settings = FaceDetectorSettings()
        if o.holdoutFraction > 0 { settings.heldOut = "lfw_train people held out: fraction \(o.holdoutFraction), seed \(o.holdoutSeed)" }
        let detector = FaceDetector(net: net, settings: settings)
        let optimizer = AdamW(net.parameters(), lr: o.learningRate, weightDecay: 5e-4)
        let trainer = Trainer(model: net, optimizer: optimizer, info: detector.info)
        let composer = DetectionComposer(sources: sources, width: o.size, height: o.size)
        trainer.generator = RandomGenerator(seed: o.seed &+ 1)
        trainer.batchTransform = { b, rng in composer.batch(count: b.indices.count, rng: &rng, indices: b.indices) }
        trainer.batchLoss = { b in (DetectionTargets.loss(net(b.inputs), b.targets!), nil) }
        trainer.onEpochEnd = onEpochEnd
        var fit = FitOptions(epochs: o.epochs, batchSize: o.batchSize, seed: o.seed)
        let steps = o.epochs * ((o.picturesPerEpoch + o.batchSize - 1) / o.batchSize)
        fit.schedule = LinearWarmup(steps: Swift.min(300, steps / 10), startFactor: 0.1, then: CosineAnnealing(totalSteps: steps, minRate: 0.02))
        fit.clipNorm = 10
        fit.checkpointPath = o.checkpointPath
        fit.progress = o.progress
        if o.resume, let p = o.checkpointPath, FileManager.default.fileExists(atPath: p) { fit.resumeFrom = p }
        try trainer.fit(PictureIndices(count: o.picturesPerEpoch), options: fit)
        detector.info.history = trainer.history
        net.eval()
        return (detector, sources)
    }

    /// The people of an LFW folder the detector trains on, and the held-out ones (as `make faces-check` holds them out).
    public static func trainingPeople(lfw: String, holdoutFraction: Double, holdoutSeed: Int) throws -> (train: [String], held: [String]) {
        let names = try FacePairs.people(folder: lfw)
        let held = holdoutFraction > 0 ? FacePairs.heldOutPeople(names, fraction: holdoutFraction, seed: holdoutSeed) : []
        let heldSet = Set(held)
        return (names.filter { !heldSet.contains($0) }, held)
    }
}

/// Example indices only: detector pictures are composed per batch, not stored.
struct PictureIndices: BatchSource {
    let count: Int
    func batch(_ indices: [Int]) -> Batch { Batch(inputs: Tensor([0]), labels: [Int](repeating: 0, count: indices.count), indices: indices) }
}

extension DetectionComposer {
    /// `count` composed pictures as a training batch: inputs `[count, 3, H, W]`, targets `[count, 6, cells]`.
    public func batch(count: Int, rng: inout RandomGenerator, indices: [Int]) -> Batch {
        var xs: [Tensor] = [], ts: [Float] = []
        for _ in 0..<count {
            let pic = compose(&rng)
            xs.append(FaceDetector.input(pic.image))
            ts += DetectionTargets.encode(faces: pic.faces, ignore: pic.ignore, height: height, width: width)
        }
        let cells = ts.count / count / DetectionTargets.rows
        return Batch(inputs: Tensor.concat(xs, axis: 0), labels: [Int](repeating: 0, count: count), indices: indices,
                     targets: Tensor(ts, shape: [count, DetectionTargets.rows, cells]))
    }
}
