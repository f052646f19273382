import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct FacesTrainDetector: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-detector",
        abstract: "Train the face detector on pictures composed from LFW photos and face-free wallpapers.")

    @Option(help: "LFW-style folder (name/name_0001.jpg).") var data: String
    @Option(help: "Epochs.") var epochs = 40
    @Option(help: "Composed pictures per epoch.") var pictures = 4096
    @Option(help: "Pictures per batch.") var batchSize = 32
    @Option(help: "Side of the training pictures (a multiple of 32).") var size = 160
    @Option(help: "Learning rate (AdamW).") var lr: Float = 3e-3
    @Option(help: "Seed.") var seed = 0
    @Option(help: "Hold out this share of the people (as `faces pairs` does).") var holdoutFraction = 0.0
    @Option(help: "Seed of the held-out people.") var holdoutSeed = 0
    @Option(help: "Checkpoint file, written after every epoch.") var checkpoint: String?
    @Flag(help: "Continue from --checkpoint if it exists.") var resume = false
    @Option(help: "Where to write the detector.") var out: String

    func validate() throws {
        if epochs < 1 || pictures < 1 || batchSize < 1 { throw ValidationError("--epochs, --pictures and --batch-size must be positive") }
        if size < 64 || size % 32 != 0 || size > 1024 { throw ValidationError("--size must be a multiple of 32 in 64...1024, got \(size)") }
        if !(0..<1).contains(holdoutFraction) { throw ValidationError("--holdout-fraction must be in [0, 1), got \(holdoutFraction)") }
        if resume && checkpoint == nil { throw ValidationError("--resume needs --checkpoint") }
    }

    func run() throws {
        // Before any work: a bad --out used to surface only after training.
        try FileIO.checkModelOutput(out)
        if let checkpoint { try FileIO.checkModelOutput(checkpoint, option: "--checkpoint") }
        var o = FaceDetectorTrainingOptions()
        (o.epochs, o.picturesPerEpoch, o.batchSize, o.size, o.learningRate, o.seed) = (epochs, pictures, batchSize, size, lr, seed)
        (o.holdoutFraction, o.holdoutSeed, o.checkpointPath, o.resume) = (holdoutFraction, holdoutSeed, checkpoint, resume)
        let (detector, _) = try FaceDetector.train(lfw: data, options: o)
        try detector.save(out)
        print("wrote \(out)")
    }
}
