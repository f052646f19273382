import ArgumentParser
import Foundation
import Strata
import StrataFaces

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classifier on Fashion-MNIST (or MNIST) and save it as .safetensors.")

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Architecture: mlp or cnn (images); gcn (cora); cnn (fsdd); cnn, gru, lstm or transformer (sms-spam, sentiment).")
    var model: String?

    @Option(help: "Train with seeds S, S+1, ..., S+N-1 and report the mean and std of the test accuracy (the model of the first is saved).")
    var seeds: Int = 1

    @Option(help: "Epochs (default: 5 for mlp, 3 for cnn).")
    var epochs: Int?

    @Option(help: "Batch size.")
    var batchSize: Int = 64

    @Option(help: "Learning rate (Adam).")
    var lr: Float = 1e-3

    @Option(help: "Seed for initialisation and shuffling.")
    var seed: Int = 0

    @Option(help: "Model file to write (the epoch with the best validation loss).")
    var out: String?

    @Option(help: "Hold out this share of the training set for validation (default 0: validate on the test split).")
    var valSplit: Double = 0

    @Option(help: "Stop after this many epochs without a better validation loss.")
    var patience: Int?

    @Option(help: "Write a resumable checkpoint here after every epoch.")
    var checkpoint: String?

    @Option(help: "Continue from this checkpoint.")
    var resume: String?

    @Option(help: "Train on the first N training images only (quick runs).")
    var limit: Int?

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line at the end (progress goes to stderr).")
    var json = false

    static let otherData = ["cora", "fsdd", "sms-spam", "sentiment"]

    func validate() throws {
        if seeds < 1 { throw ValidationError("--seeds must be at least 1, got \(seeds)") }
        if Train.otherData.contains(dataOptions.data) { return }
        let model = self.model ?? "cnn"
        guard ModelZoo.names.contains(model) else { throw ValidationError("--model \(model): unknown architecture (known: \(ModelZoo.names.joined(separator: ", ")))") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1, got \(e)") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if !(lr > 0) || !lr.isFinite { throw ValidationError("--lr must be a positive number, got \(lr)") }
        if !(valSplit >= 0 && valSplit < 1) { throw ValidationError("--val-split must be in [0, 1), got \(valSplit)") }
        if let l = limit, l < 1 { throw ValidationError("--limit must be at least 1, got \(l)") }
        if let p = patience, p < 1 { throw ValidationError("--patience must be at least 1, got \(p)") }
    }

    func run() throws {
        threadOptions.apply()
        if Train.otherData.contains(dataOptions.data) {
            try trainOther(self)
            return
        }
        let model = self.model ?? "cnn"
        var train = try dataOptions.load(.train)
        if let l = limit { train = train.prefix(l) }
        var validation: LabeledImages
        if valSplit > 0 {
            let order = DataLoader(train, batchSize: 1, shuffle: true, seed: seed &+ 7919).order(epoch: 0)
            let nVal = max(1, Int(Double(train.count) * valSplit))
            validation = train.subset(Array(order[..<nVal]))
            train = train.subset(Array(order[nVal...]))
        } else {
            validation = try dataOptions.load(.test)
        }
        RandomGenerator.manualSeed(seed)
        let entry = ModelZoo.entry(model)!
        let net = entry.build()
        var info = entry.info(net)
        info.classNames = train.classNames
        info.extra["dataset"] = dataOptions.data
        info.extra["recipe"] = "strata train --data \(dataOptions.data) --model \(model) --epochs \(epochs ?? (model == "mlp" ? 5 : 3)) --batch-size \(batchSize) --lr \(lr) --seed \(seed)"
        let trainer = Trainer(model: net, optimizer: Adam(net.parameters(), lr: lr), info: info)
        var options = FitOptions(epochs: epochs ?? (model == "mlp" ? 5 : 3), batchSize: batchSize, seed: seed)
        let outPath = out ?? "fashion-\(model).safetensors"
        options.bestModelPath = outPath
        options.patience = patience
        options.checkpointPath = checkpoint
        options.resumeFrom = resume
        options.progressToStderr = json
        if !json {
            print("training \(model) (\(net.parameterCount) parameters) on \(train.count) \(dataOptions.data) images, validating on \(validation.count) (\(valSplit > 0 ? "held out" : "test split")), \(Strata.numThreads) threads")
        }
        let history = try trainer.fit(train, validation: validation, options: options)
        // Report the saved (best) model on the test split.
        let saved = try SavedModel.load(outPath)
        let test = try dataOptions.load(.test)
        let (testLoss, testAcc) = Trainer.evaluate(saved.model, test)
        if json {
            let enc = JSONEncoder()
            let hist = (try? JSONSerialization.jsonObject(with: enc.encode(history))) ?? []
            printJSON(["model": outPath, "history": hist, "test_loss": testLoss, "test_accuracy": testAcc, "parameters": net.parameterCount])
        } else {
            print(String(format: "test accuracy %.4f, test loss %.4f; saved %@", testAcc, testLoss, outPath))
        }
    }
}
