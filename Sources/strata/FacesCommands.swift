import ArgumentParser
import Foundation
import Strata

struct FacesTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Train a face-embedding network on a folder of faces (one sub-folder per person).")

    @Option(help: "Folder with one sub-folder of images per person.")
    var data: String

    @Option(help: "Hold out the last K people: they set the distance threshold and measure open-set accuracy.")
    var holdoutPeople: Int = 0

    @Option(help: "softmax, cosface, arcface or triplet (softmax did best on validation folds of AT&T).")
    var loss: String = "softmax"

    @Option(help: "Epochs.")
    var epochs: Int = 60

    @Option(help: "Seed.")
    var seed: Int = 0

    @Option(help: "Model file to write.")
    var out: String = "faces.safetensors"

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        guard FaceLoss(rawValue: loss) != nil else { throw ValidationError("--loss \(loss): unknown (softmax, cosface, arcface, triplet)") }
        if epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        if holdoutPeople < 0 { throw ValidationError("--holdout-people must not be negative, got \(holdoutPeople)") }
    }

    func run() throws {
        threadOptions.apply()
        let started = Date()
        let (_, small) = try loadFaces(data)
        let people = small.classNames.count
        guard holdoutPeople <= people - 2 else { throw StrataError("--holdout-people \(holdoutPeople): \(data) has \(people) people; at least 2 must remain for training") }
        let trainSet = small.classes(Array(0..<(people - holdoutPeople)))
        var o = FaceTrainingOptions()
        o.loss = FaceLoss(rawValue: loss)!
        o.epochs = epochs
        o.seed = seed
        var history: [EpochRecord] = []
        o.progress = { epoch, l in
            history.append(EpochRecord(epoch: epoch, trainLoss: l, trainAccuracy: 0, seconds: 0, samplesPerSecond: 0, learningRate: 0))
            if !json && (epoch % 10 == 0 || epoch == o.epochs) { print(String(format: "epoch %d/%d: loss %.4f", epoch, o.epochs, l)) }
        }
        let net = try FaceTraining.train(trainSet, options: o)
        let trainSeconds = Date().timeIntervalSince(started)
        // Threshold at the equal error rate: on held-out people when there are any.
        let held = holdoutPeople > 0 ? small.classes(Array((people - holdoutPeople)..<people)) : trainSet
        let e = net.embedding(held.batch(Array(0..<held.count)).inputs)
        let (eer, threshold) = FaceEvaluation.equalErrorPoint(Distance.cosine.matrix(e, e), held.labels)
        var info = ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: trainSet.classNames, inputShape: small.imageShape,
                             normalization: small.normalization, history: history,
                             extra: ["recipe": "strata faces train --data \(data) --holdout-people \(holdoutPeople) --loss \(loss) --epochs \(epochs) --seed \(seed)"])
        var report: [String: Any] = ["model": out, "people": trainSet.classNames.count, "train_seconds": (trainSeconds * 10).rounded() / 10,
                                     "threshold": Double(threshold)]
        if holdoutPeople > 0 {
            let accs = (0..<5).map { FaceEvaluation.enrollIdentify(e, held.labels, enroll: 3, seed: $0, distance: .cosine) }
            let (m, s) = meanStd(accs)
            report["holdout_people"] = holdoutPeople
            report["holdout_identification"] = ["mean": m, "std": s]
            report["holdout_eer"] = eer
            info.extra["holdout"] = String(format: "%d people: identification %.4f ± %.4f (enrol 3), EER %.4f", holdoutPeople, m, s, eer)
        }
        let model = FaceModel(net: net, info: info, threshold: threshold)
        try model.save(to: out)
        if json { printJSON(report) } else {
            print(String(format: "trained on %d people in %.1f s; threshold %.3f (cosine distance at the EER of %@)",
                         trainSet.classNames.count, trainSeconds, threshold, holdoutPeople > 0 ? "the held-out people" : "the training people"))
            if let h = info.extra["holdout"] { print("held out " + h) }
            print("saved \(out)")
        }
    }
}

/// Loads images and embeds them, naming the file in every error.
func embedFiles(_ model: FaceModel, _ paths: [String]) throws -> Tensor {
    let images = try paths.map { try Image.load($0) }
    return try model.embed(images, names: paths)
}

struct FacesEnroll: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enroll", abstract: "Add a person to a gallery from a few photos.")

    @Option(help: "Face model file.") var model: String
    @Option(help: "Gallery file (created if missing; written atomically).") var gallery: String
    @Option(help: "The person's name.") var name: String
    @Argument(help: "Photos of the person.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one photo") }
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--name must not be empty") }
    }

    func run() throws {
        let fm = try FaceModel.load(model)
        var g = FileManager.default.fileExists(atPath: gallery) ? try Gallery.load(gallery, for: fm) : Gallery(model: fm)
        let e = try embedFiles(fm, images)
        g.enroll(name, e)
        try g.save(gallery)
        let count = g.people.first { $0.name == name }!.embeddings.count
        if json { printJSON(["gallery": gallery, "name": name, "photos": count, "people": g.people.count]) } else {
            print("enrolled \(name) (\(count) photo\(count == 1 ? "" : "s")); \(gallery) holds \(g.people.count) people")
        }
    }
}

struct FacesIdentify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identify",
        abstract: "Name the person in each photo, or `unknown` beyond the model's distance threshold.")

    @Option(help: "Face model file.") var model: String
    @Option(help: "Gallery file.") var gallery: String
    @Option(help: "Distance threshold (default: the model's).") var threshold: Float?
    @Argument(help: "Photos to identify.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws { if images.isEmpty { throw ValidationError("give at least one photo") } }

    func run() throws {
        let fm = try FaceModel.load(model)
        let g = try Gallery.load(gallery, for: fm)
        guard !g.people.isEmpty else { throw StrataError("\(gallery): the gallery has nobody enrolled") }
        let e = try embedFiles(fm, images)
        let t = threshold ?? fm.threshold
        var rows: [[String: Any]] = []
        let d = e.shape[1]
        for (i, path) in images.enumerated() {
            let (name, dist) = g.nearest(Array(e.scalars[(i * d)..<((i + 1) * d)]))!
            let known = dist <= t
            rows.append(["image": path, "name": known ? name : "unknown", "nearest": name, "distance": Double(dist)])
            if !json { print("\(path): \(known ? name : "unknown") (distance \(String(format: "%.3f", dist))\(known ? "" : ", nearest \(name)"))") }
        }
        if json { printJSON(["threshold": Double(t), "results": rows]) }
    }
}

struct FacesVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Are two photos of the same person?")

    @Option(help: "Face model file.") var model: String
    @Option(help: "Distance threshold (default: the model's).") var threshold: Float?
    @Argument(help: "Two photos.") var images: [String]
    @Flag(help: "Print one JSON line.") var json = false

    func validate() throws { if images.count != 2 { throw ValidationError("give exactly two photos, got \(images.count)") } }

    func run() throws {
        let fm = try FaceModel.load(model)
        let e = try embedFiles(fm, images)
        let d = e.shape[1]
        let dist = FaceModel.distance(Array(e.scalars[0..<d]), Array(e.scalars[d..<(2 * d)]))
        let t = threshold ?? fm.threshold
        if json { printJSON(["same": dist <= t, "distance": Double(dist), "threshold": Double(t)]) } else {
            print("\(dist <= t ? "same" : "different") (distance \(String(format: "%.3f", dist)), threshold \(String(format: "%.3f", t)))")
        }
    }
}
