import ArgumentParser
import Foundation
import Strata
import StrataFaces

extension KnownDataset: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classifier on a known data set and save it as .safetensors.",
        discussion: """
        fashion-mnist, mnist: cnn, mlp or cnn-bn (the cnn with BatchNorm). cora: gcn. fsdd: cnn (spectrograms). sms-spam, sentiment: cnn, gru,
        lstm, transformer, tfidf (TF-IDF + softmax regression), or encoder (a pretrained BERT from --encoder DIR with a
        softmax-regression head; --finetune trains the whole encoder too). Face folders: `strata faces train`.
        """)

    @Option(help: "Data set: \(KnownDataset.allCases.map(\.rawValue).joined(separator: ", ")).") var data: KnownDataset = .fashionMNIST
    @Option(help: "Folder of the data (default: \(FashionMNIST.defaultDirectory) for fashion-mnist, ../shared/data/<name> for the others; needed for mnist).") var dataDir: String?
    @Option(help: "Model: cnn, mlp or cnn-bn (images); gcn (cora); cnn (fsdd); cnn, gru, lstm, transformer, tfidf or encoder (sms-spam, sentiment). Default: the first.") var model: String?
    @Option(help: "Text, --model encoder: the pretrained encoder's folder (vocab.txt, config.json, model.safetensors; `make bert-model` prints one).") var encoder: String?
    @Flag(help: "Text, --model encoder: train the whole encoder with the head (AdamW, warm-up; default 3 epochs, batch 16, lr 2e-5), and store it in the model file.") var finetune = false
    @Option(help: "Train with seeds S, S+1, ..., S+N-1 and report the mean and std of the test accuracy (the model of the first is saved).") var seeds: Int = 1
    @Option(help: "Epochs (default: 5 mlp, 3 cnn on images; 200 gcn; 10 fsdd and sms-spam; 20 sentiment; 3 --finetune).") var epochs: Int?
    @Option(help: "Batch size (default: 64; 32 for fsdd and text; 16 --finetune).") var batchSize: Int?
    @Option(help: "Learning rate of Adam (default: 1e-3; 0.01 for gcn; 2e-5 for AdamW with --finetune).") var lr: Float?
    @Option(help: "Seed for initialisation and shuffling.") var seed: Int = 0
    @Option(help: "Model file to write (images: the last epoch; with --val-split the epoch with the best validation loss).") var out: String?
    @Option(help: "Images: hold out this share of the training set for validation, which chooses the epoch to save (default 0: the last epoch is saved; the test split is only reported after each epoch).") var valSplit: Double = 0
    @Option(help: "Images, with --val-split: stop after this many epochs without a better validation loss.") var patience: Int?
    @Option(help: "Images: write a resumable checkpoint here after every epoch.") var checkpoint: String?
    @Option(help: "Images: continue from this checkpoint.") var resume: String?
    @Option(help: "Images: train on the first N training images only (quick runs).") var limit: Int?
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var distributedOptions: DistributedOptions
    @Flag(help: "Print one JSON line at the end (progress goes to stderr).") var json = false

    func validate() throws {
        if seeds < 1 { throw ValidationError("--seeds must be at least 1, got \(seeds)") }
        if let m = model, !data.models.contains(m) { throw ValidationError("--model \(m): \(data.rawValue) takes \(data.models.joined(separator: ", "))") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1, got \(e)") }
        if let b = batchSize, b < 1 { throw ValidationError("--batch-size must be at least 1, got \(b)") }
        if let lr, !(lr > 0) || !lr.isFinite { throw ValidationError("--lr must be a positive number, got \(lr)") }
        if !(valSplit >= 0 && valSplit < 1) { throw ValidationError("--val-split must be in [0, 1), got \(valSplit)") }
        if let l = limit, l < 1 { throw ValidationError("--limit must be at least 1, got \(l)") }
        if let p = patience, p < 1 { throw ValidationError("--patience must be at least 1, got \(p)") }
        if model == "encoder" && encoder == nil { throw ValidationError("--model encoder needs --encoder DIR (`make bert-model` installs all-MiniLM-L6-v2 and prints its folder)") }
        if encoder != nil && model != "encoder" { throw ValidationError("--encoder goes with --model encoder") }
        if finetune && model != "encoder" { throw ValidationError("--finetune goes with --model encoder") }
        if data == .mnist && dataDir == nil { throw ValidationError("--data mnist needs --data-dir DIR with the MNIST IDX files") }
        if distributedOptions.distributed && data != .fashionMNIST && data != .mnist {
            throw ValidationError("--distributed trains fashion-mnist and mnist, not \(data.rawValue)")
        }
    }

    func run() throws {
        // Before any work: a bad --out used to surface only after training.
        if let out { try FileIO.checkModelOutput(out) }
        if let checkpoint { try FileIO.checkModelOutput(checkpoint, option: "--checkpoint") }
        let world = try distributedOptions.communicator()
        threadOptions.apply()
        // Under mpirun only rank 0 speaks (errors aside).
        let quiet = (world?.rank ?? 0) != 0
        var t = DatasetTraining(data, model: model)
        t.communicator = world
        (t.dataDir, t.epochs, t.batchSize, t.lr, t.seed, t.seeds, t.out) = (dataDir, epochs, batchSize, lr, seed, seeds, out)
        (t.encoderDir, t.finetune) = (encoder, finetune)
        (t.valSplit, t.patience, t.checkpoint, t.resume, t.limit) = (valSplit, patience, checkpoint, resume, limit)
        (t.progress, t.progressToStderr) = (json && data != .fashionMNIST && data != .mnist ? .none : .auto, json)
        t.log = { [json] line in if !json && !quiet { print(line) } }
        let r = try t.run()
        if quiet { return }
        let accs = r.runs.map(\.accuracy)
        let (m, s) = meanStd(accs)
        if json, let loss = r.testLoss, seeds == 1 {
            let hist = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(r.history))) ?? []
            return printJSON(["model": r.out ?? NSNull(), "history": hist, "test_loss": loss, "test_accuracy": accs[0], "parameters": r.parameters])
        }
        let secs = r.runs.map(\.seconds).sorted()
        if json {
            return printJSON(["data": data.rawValue, "model": r.out ?? NSNull(), "what": r.what, "seeds": r.runs.count, "test_accuracy_mean": m,
                              "test_accuracy_std": s, "test_accuracy": accs, "train_seconds": secs])
        }
        if let loss = r.testLoss, seeds == 1 { return print(String(format: "test accuracy %.4f, test loss %.4f; saved %@", accs[0], loss, r.out ?? "")) }
        print(String(format: "%@: test accuracy %.2f %% ± %.2f over %d seed(s), training %.1f s (median)", r.what, 100 * m, 100 * s, r.runs.count, secs[secs.count / 2])
              + (r.out.map { "; saved \($0)" } ?? ""))
    }
}
