import Foundation
import StrataCore
import StrataNN
import StrataData

/// Augmentation presets of face training, weakest first.
public enum FaceAugmentPreset: String, CaseIterable, Sendable {
    /// The reference's: rotation ±10°, zoom 0.9–1.1, shift ±6 %, mirror.
    case standard
    /// Rotation ±15°, zoom 0.85–1.15, shift ±10 %, brightness and contrast ±20 %, mirror.
    case strong
    /// For photos in the wild: strong, with rotation ±10°, zoom 0.9–1.1, shift ±8 %, saturation ±30 %.
    case wild
    /// Wild, plus random grey (10 %) and random erasing (50 %).
    case heavy

    public var augmentation: Augmentation {
        switch self {
        case .standard: return FaceTrainingOptions().augmentation
        case .strong: return FaceTrainingOptions.strongAugmentation
        case .wild, .heavy:
            var a = FaceTrainingOptions.strongAugmentation
            a.maxRotation = 10
            a.scale = (0.9, 1.1)
            a.maxShift = 0.08
            a.saturation = 0.3
            if self == .heavy {
                a.greyProbability = 0.1
                a.eraseProbability = 0.5
            }
            return a
        }
    }
}

/// Which people of the folder are kept out of training (they set the threshold and measure
/// open-set accuracy).
public enum FaceHoldout: Sendable {
    case none
    /// The last `k` people in folder order.
    case last(Int)
    /// A seeded share of the people, as `FacePairs.heldOutPeople` draws it.
    case fraction(Double, seed: Int)

    /// Indices of the held-out people among `names`.
    public func people(_ names: [String]) -> [Int] {
        switch self {
        case .none: return []
        case .last(let k): return Array((names.count - k)..<names.count)
        case .fraction(let f, let seed):
            let held = Set(FacePairs.heldOutPeople(names, fraction: f, seed: seed))
            return names.indices.filter { held.contains(names[$0]) }
        }
    }
}

/// One network of a face training run.
public struct FaceMemberRecipe {
    /// The face box (nil: the AT&T recipe on whole grey photos at 46x56).
    public var crop: FaceCrop?
    public var channels: Int
    public var epochs: Int

    public init(crop: FaceCrop?, channels: Int, epochs: Int) {
        self.crop = crop
        self.channels = channels
        self.epochs = epochs
    }
}

/// Everything a face training run takes: the people, the networks (one per face box for an
/// ensemble), how they learn, and how the model scores pairs.
///
/// ```swift
/// var run = FaceTrainingRun(data: "../shared/data/att_faces")
/// run.holdout = .last(10)
/// let result = try run.run()
/// try result.model.save(to: "faces.safetensors")
/// ```
public struct FaceTrainingRun {
    public var data: String
    public var holdout: FaceHoldout = .none
    public var members: [FaceMemberRecipe] = [FaceMemberRecipe(crop: nil, channels: 1, epochs: 60)]
    /// Fine-tune this face model's networks (their boxes, sizes and layers) instead of `members`.
    public var initFrom: String?
    /// The part of `data`'s photos that matches a whole training photo of the networks.
    public var frame: FaceCrop?
    /// Another folder of people trained beside `data` (never held out): its first `extraPeople`,
    /// reframed by `extraFrame`.
    public var extraData: String?, extraPeople: Int?, extraFrame: FaceCrop?
    public var options = FaceTrainingOptions()
    public var augment: FaceAugmentPreset?
    /// The distance threshold to store (nil: the EER point of the held-out, else the training, people).
    public var threshold: Float?
    /// Test-time views (nil: 1, or the `initFrom` model's).
    public var views: Int?
    /// How pairs are scored (nil: cosine, or the `initFrom` model's).
    public var score: FaceScore?
    /// Lines of progress (members, epochs of the AT&T recipe).
    public var log: (String) -> Void = { _ in }

    public init(data: String) { self.data = data }

    /// A checkpoint path of one ensemble member: `ck.safetensors` -> `ck.member2.safetensors`.
    static func memberPath(_ path: String, _ member: Int?) -> String {
        guard let member else { return path }
        let ext = (path as NSString).pathExtension
        let stem = ext.isEmpty ? path : String(path.dropLast(ext.count + 1))
        return stem + ".member\(member + 1)" + (ext.isEmpty ? "" : "." + ext)
    }

    /// Trains every network, sets the threshold and measures the held-out people.
    public func run() throws -> FaceTrainingResult {
        let started = Date()
        let initModel = try initFrom.map { try FaceModel.load($0) }
        var recipes = members
        var initial: [FaceModel] = []
        if let initModel, let path = initFrom {
            initial = initModel.networks
            guard initial.allSatisfy({ $0.net is FaceNet }) else { throw StrataError("\(path): fine-tuning needs a face model trained by Strata; this one holds a pretrained network of another kind") }
            guard initial.allSatisfy({ $0.crop != nil }) else { throw StrataError("\(path): fine-tuning needs a model with a face box (one trained on face crops)") }
            recipes = initial.map { FaceMemberRecipe(crop: $0.crop, channels: $0.info.inputShape[0], epochs: members.first?.epochs ?? options.epochs) }
        }
        let views = self.views ?? initModel?.views ?? 1
        var result = FaceTrainingResult(model: nil)
        var trained: [FaceModel] = [], heldParts: [Tensor] = []
        var heldLabels: [Int] = []   // (the photos themselves would stay through the next network's training)
        for (k, recipe) in recipes.enumerated() {
            // Held-out people (or the training people) set the threshold at the equal error rate.
            let model: FaceModel, held: LabeledImages
            do {   // the training photos go at the end of this block unless they are `held`
                let loadStart = Date()
                let (trainSet, heldSet, heldCount) = try load(recipe)
                result.loadSeconds += Date().timeIntervalSince(loadStart)
                if recipes.count > 1, let box = recipe.crop {
                    log("member \(k + 1)/\(recipes.count): crop \(box.centerX),\(box.centerY),\(box.side) size \(box.size) channels \(recipe.channels) seed \(options.seed &+ k)")
                }
                model = try train(trainSet, imageShape: trainSet.imageShape, normalization: trainSet.normalization, recipe: recipe,
                                  seed: options.seed &+ k, member: recipes.count > 1 ? k : nil, initial: initial.isEmpty ? nil : initial[k].net as? FaceNet)
                (result.people, result.images, result.heldOutPeople) = (trainSet.classNames.count, trainSet.count, heldCount)
                held = heldSet ?? trainSet
            }
            // Training's cached buffers fit neither the embedding below nor the next network.
            BufferPool.shared.trim()
            heldLabels = held.labels
            // With a given threshold and nobody held out there is nothing to measure.
            if result.heldOutPeople > 0 || threshold == nil { heldParts.append(model.embedStored(held, views: views)) }
            trained.append(model)
            BufferPool.shared.trim()
        }
        result.trainSeconds = Date().timeIntervalSince(started) - result.loadSeconds
        var final = FaceModel(ensemble: trained, threshold: 0)
        final.score = score ?? initModel?.score ?? .cosine
        final.views = views
        let e = heldParts.isEmpty ? nil : FaceEnsemble.join(heldParts)
        let (eer, eerThreshold) = e.map { FaceEvaluation.equalErrorPoint(final.scorer.distances($0, $0), heldLabels) } ?? (0, threshold ?? 0)
        final.threshold = threshold ?? eerThreshold
        result.members = recipes.count
        if result.heldOutPeople > 0, let e {
            result.heldOutEER = eer
            final.info.extra["holdout"] = String(format: "%d people: EER %.4f", result.heldOutPeople, eer)
            let photos = Dictionary(grouping: heldLabels, by: { $0 }).values.map(\.count)
            if photos.min() ?? 0 >= 4 {   // AT&T-style folders (10 photos each): enrol 3 and identify the rest
                let accs = (0..<5).map { FaceEvaluation.enrollIdentify(e, heldLabels, enroll: 3, seed: $0, distance: .cosine) }
                result.heldOutIdentification = meanStd(accs)
                final.info.extra["holdout"] = String(format: "%d people: identification %.4f ± %.4f (enrol 3), EER %.4f",
                                                     result.heldOutPeople, result.heldOutIdentification!.mean, result.heldOutIdentification!.std, eer)
            }
        }
        if let threshold { final.info.extra["threshold_source"] = "given: \(threshold)" }
        if recipes.count > 1 { final.info.recipe = trained.map { $0.info.recipe ?? "" }.joined(separator: "\n") }
        result.model = final
        return result
    }

    /// The photos of one network (cut to its face box): the training people's (with the extra
    /// folder's), the held-out people's (nil when none is held out) and how many people that is.
    /// The whole folder's copy goes before training starts.
    func load(_ recipe: FaceMemberRecipe) throws -> (train: LabeledImages, held: LabeledImages?, heldPeople: Int) {
        var all: LabeledImages
        if let box = recipe.crop {
            all = try ImageFolder.load(data, channels: recipe.channels, size: (box.contextSize, box.contextSize),
                                       transform: { [frame] in box.contextImage(frame?.reframe($0) ?? $0) })
        } else {
            all = try ImageFolder.load(data, channels: 1, size: (46, 56))
        }
        all.normalization = Normalization(scale: 1 / 255, perImage: true)
        let people = all.classNames.count
        let heldIdx = holdout.people(all.classNames)
        guard people - heldIdx.count >= 2 else { throw StrataError("\(data) has \(people) people; holding out \(heldIdx.count) leaves fewer than 2 for training") }
        let heldSet = Set(heldIdx)
        var trainSet = all.classes((0..<people).filter { !heldSet.contains($0) })
        if let extraData, let box = recipe.crop {
            var extra = try ImageFolder.load(extraData, channels: recipe.channels, size: (box.contextSize, box.contextSize),
                                             transform: { [extraFrame] in box.contextImage(extraFrame?.reframe($0) ?? $0) })
            if let n = extraPeople {
                guard n <= extra.classNames.count else { throw StrataError("\(extraData) has \(extra.classNames.count) people, fewer than the \(n) asked for") }
                extra = extra.classes(Array(0..<n))
            }
            trainSet = trainSet.appending(extra)
        }
        return (trainSet, heldIdx.isEmpty ? nil : all.classes(heldIdx), heldIdx.count)
    }

    /// The command line that repeats this network's training, stored in the model file.
    func recipeText(_ o: FaceTrainingOptions, _ recipe: FaceMemberRecipe) -> String {
        var r = "strata faces train --data \(data) --loss \(o.loss.rawValue) --epochs \(o.epochs) --seed \(o.seed)"
        switch holdout {
        case .none: break
        case .last(let k): r += " --holdout-people \(k)"
        case .fraction(let f, let seed): r += " --holdout-fraction \(f) --holdout-seed \(seed)"
        }
        if let initFrom { r += " --init \(initFrom)" }
        if let frame { r += " --frame \(frame.centerX),\(frame.centerY),\(frame.side)" }
        if let extraData {
            r += " --extra-data \(extraData)" + (extraPeople.map { " --extra-people \($0)" } ?? "")
            if let f = extraFrame { r += " --extra-frame \(f.centerX),\(f.centerY),\(f.side)" }
        }
        guard let box = recipe.crop else { return r }
        func list(_ v: [Int]) -> String { v.map(String.init).joined(separator: ",") }
        r += " --crop \(box.centerX),\(box.centerY),\(box.side) --size \(box.size) --channels \(recipe.channels) --blocks \"\(list(o.blocks))\""
        r += " --widths \(list(o.widths)) --embedding \(o.embedding) --batch-size \(o.batchSize) --lr \(o.lr) --weight-decay \(o.weightDecay)"
        r += "\(o.sgd ? " --sgd" : "") --warmup \(o.warmupEpochs) --dropout \(o.dropout) --augment \((augment ?? .wild).rawValue)"
        if let s = o.scale { r += " --scale \(s)" }
        if let m = o.margin { r += " --margin \(m)" }
        return r
    }

    /// Trains one network (one ensemble member) on the training people.
    func train(_ trainSet: LabeledImages, imageShape: [Int], normalization: Normalization, recipe: FaceMemberRecipe,
               seed: Int, member: Int?, initial: FaceNet?) throws -> FaceModel {
        var o = options
        o.epochs = recipe.epochs
        o.seed = seed
        o.augmentation = (augment ?? (recipe.crop == nil ? .standard : .wild)).augmentation
        var info = ModelInfo(architecture: [:], classNames: trainSet.classNames, inputShape: imageShape, normalization: normalization)
        let net: FaceNet
        var history: [EpochRecord] = []
        if let box = recipe.crop {
            if let initial {   // fine-tuning: the starting network's layers
                (o.widths, o.blocks, o.embedding) = (initial.widths, initial.blocks, initial.embeddingSize)
                o.initial = initial
            }
            o.warmupEpochs = Swift.min(o.warmupEpochs, recipe.epochs - 1)
            o.checkpointPath = o.checkpointPath.map { Self.memberPath($0, member) }
            o.resumeFrom = o.resumeFrom.map { Self.memberPath($0, member) }
            if member != nil, let r = o.resumeFrom, !FileManager.default.fileExists(atPath: r) { o.resumeFrom = nil }   // not started yet
            info.inputShape = [recipe.channels, box.size, box.size]
            try info.setSection(box)
            info.recipe = recipeText(o, recipe)
            (net, history) = try FaceTraining.fit(trainSet, size: box.size, options: o, info: info)
        } else {
            o.progress = { [log, epochs = o.epochs] epoch, l in
                history.append(EpochRecord(epoch: epoch, trainLoss: l, trainAccuracy: 0, seconds: 0, samplesPerSecond: 0, learningRate: 0))
                if epoch % 10 == 0 || epoch == epochs { log(String(format: "epoch %d/%d: loss %.4f", epoch, epochs, l)) }
            }
            net = try FaceTraining.train(trainSet, options: o)
            info.recipe = recipeText(o, recipe)
        }
        info.architecture = ModuleRegistry.spec(of: net)
        info.history = history
        var model = FaceModel(net: net, info: info, threshold: 0)
        model.crop = recipe.crop
        return model
    }
}

/// What a face training run made and measured.
public struct FaceTrainingResult {
    /// The trained model (an ensemble when several networks were trained), ready to save.
    public var model: FaceModel!
    /// Training people and images, networks.
    public var people = 0, images = 0, members = 0
    public var trainSeconds = 0.0, loadSeconds = 0.0
    public var heldOutPeople = 0
    public var heldOutEER: Double?
    /// Held-out identification (enrol 3 photos, identify the rest), mean and std over 5 seeds.
    public var heldOutIdentification: (mean: Double, std: Double)?
}
