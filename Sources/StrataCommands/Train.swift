import ArgumentParser
import Foundation
import Strata
import StrataFaces

extension OptimizerKind: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a classifier on a known data set or a folder of images and save it as .safetensors.",
        discussion: """
        fashion-mnist, mnist: cnn, mlp or cnn-bn (the cnn with BatchNorm). cora: gcn. fsdd: cnn (spectrograms). sms-spam, sentiment: cnn, gru,
        lstm, transformer, tfidf (TF-IDF + softmax regression), or encoder (a pretrained BERT from --encoder DIR with a
        softmax-regression head; --finetune trains the whole encoder too). Face folders: `strata faces train`.

        A folder with one sub-folder of images per class (photos/cat/*.jpg, photos/dog/*.jpg) trains a CNN from scratch, \
        or with --from MODEL fine-tunes a pretrained model whose last Linear layer is replaced for the folder's classes \
        (--freeze trains that layer alone; a model that knows the folder's classes keeps its own). --test-split of every \
        class is held out and scored after each epoch; `strata evaluate --data FOLDER` scores the same images.

          strata train --data photos --size 64 --out pets.safetensors
          strata train --data photos --from pretrained.safetensors --freeze --out pets.safetensors
          strata train --data photos --from pets.safetensors --lr 1e-4 --out pets2.safetensors
        """)

    @Option(help: "Data set: \(KnownDataset.allCases.map(\.rawValue).joined(separator: ", ")), or a folder with one sub-folder of images per class.") var data: String = "fashion-mnist"
    @Option(help: "Folder of the data (default: \(FashionMNIST.defaultDirectory) for fashion-mnist, ../shared/data/<name> for the others; needed for mnist).") var dataDir: String?
    @Option(help: "Model: cnn, mlp or cnn-bn (images); gcn (cora); cnn (fsdd); cnn, gru, lstm, transformer, tfidf or encoder (sms-spam, sentiment). Default: the first.") var model: String?
    @Option(help: "Text, --model encoder: the pretrained encoder's folder (vocab.txt, config.json, model.safetensors; `make bert-model` prints one).") var encoder: String?
    @Flag(help: "Text, --model encoder: train the whole encoder with the head (AdamW, warm-up; default 3 epochs, batch 16, lr 2e-5), and store it in the model file.") var finetune = false
    @Option(help: "Train with seeds S, S+1, ..., S+N-1 and report the mean and std of the test accuracy (the model of the first is saved).") var seeds: Int = 1
    @Option(help: "Epochs (default: 5 mlp, 3 cnn on images; on a folder 30, 10 with --from, more where that is under 300 steps; 200 gcn; 10 fsdd and sms-spam; 20 sentiment; 3 --finetune).") var epochs: Int?
    @Option(help: "Batch size (default: 64; 32 for folders, fsdd and text; 16 --finetune).") var batchSize: Int?
    @Option(help: "Learning rate (default: 1e-3 for Adam, AdamW and RMSprop, 0.01 for SGD and gcn, ten times the optimizer's with --freeze; 2e-5 for AdamW with --finetune).") var lr: Float?
    @Option(help: "Images (fashion-mnist, mnist, folders): the optimizer, \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")) (SGD with momentum 0.9).") var optimizer: OptimizerKind = .adam
    @Option(help: "Images: weight decay (default: 0.01 for adamw, else 0).") var weightDecay: Float?
    @Option(help: "Folders: a Strata model file to fine-tune (its last Linear layer is replaced for the folder's classes; an ONNX model: `strata import` it first).") var from: String?
    @Flag(help: "Folders, with --from: train the last layer only, the pretrained layers frozen.") var freeze = false
    @Option(help: "Folders: the images' size for the CNN, S (S x S) or WxH such as 46x56 (default 64; --from: the model's).") var size: String?
    @Option(help: "Folders: 1 (grey) or 3 (RGB) channels (default 3; --from: the model's).") var channels: Int?
    @Option(help: "Folders: the share of each class held out for testing.") var testSplit: Double = 0.2
    @Flag(help: "Folders: augment the training batches (mirror, rotation ±10°, zoom 0.9–1.1, shift ±10 %).") var augment = false
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

    /// `--size` as width and height ("64" or "46x56").
    var imageSize: (width: Int, height: Int)? {
        guard let size else { return nil }
        let sides = size.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(sides.count), let w = sides[0], let h = sides.last!, (8...1024).contains(w), (8...1024).contains(h) else { return nil }
        return (w, h)
    }

    /// The known data set `--data` names, or nil for a folder.
    var known: KnownDataset? { KnownDataset(rawValue: data) }

    func validate() throws {
        if seeds < 1 { throw ValidationError("--seeds must be at least 1, got \(seeds)") }
        if let w = weightDecay, !(w >= 0) || !w.isFinite { throw ValidationError("--weight-decay must be 0 or more, got \(w)") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1, got \(e)") }
        if let b = batchSize, b < 1 { throw ValidationError("--batch-size must be at least 1, got \(b)") }
        if let lr, !(lr > 0) || !lr.isFinite { throw ValidationError("--lr must be a positive number, got \(lr)") }
        guard let known else { return try validateFolder() }
        let folderOnly = [("--from", from != nil), ("--freeze", freeze), ("--size", size != nil), ("--channels", channels != nil),
                          ("--test-split", testSplit != 0.2), ("--augment", augment)].filter(\.1).map(\.0)
        if let f = folderOnly.first { throw ValidationError("\(f) is for image folders, not --data \(data)") }
        let images = known == .fashionMNIST || known == .mnist
        if !images && (optimizer != .adam || weightDecay != nil) { throw ValidationError("--optimizer and --weight-decay are for images (fashion-mnist, mnist, folders), not --data \(data)") }
        if let m = model, !known.models.contains(m) { throw ValidationError("--model \(m): \(data) takes \(known.models.joined(separator: ", "))") }
        if !(valSplit >= 0 && valSplit < 1) { throw ValidationError("--val-split must be in [0, 1), got \(valSplit)") }
        if let l = limit, l < 1 { throw ValidationError("--limit must be at least 1, got \(l)") }
        if let p = patience, p < 1 { throw ValidationError("--patience must be at least 1, got \(p)") }
        if model == "encoder" && encoder == nil { throw ValidationError("--model encoder needs --encoder DIR (`make bert-model` installs all-MiniLM-L6-v2 and prints its folder)") }
        if encoder != nil && model != "encoder" { throw ValidationError("--encoder goes with --model encoder") }
        if finetune && model != "encoder" { throw ValidationError("--finetune goes with --model encoder") }
        if known == .mnist && dataDir == nil { throw ValidationError("--data mnist needs --data-dir DIR with the MNIST IDX files") }
        if distributedOptions.distributed && !images {
            throw ValidationError("--distributed trains fashion-mnist and mnist, not \(data)")
        }
    }

    func validateFolder() throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError("--data \(data): not a known data set (\(KnownDataset.allCases.map(\.rawValue).joined(separator: ", "))) nor a folder")
        }
        if let m = model, m != "cnn" { throw ValidationError("--model \(m): an image folder trains cnn (or fine-tunes --from MODEL)") }
        if freeze && from == nil { throw ValidationError("--freeze goes with --from MODEL (the pretrained layers to freeze)") }
        if from != nil && (size != nil || channels != nil) { throw ValidationError("--size and --channels come from the model given with --from") }
        if let size, imageSize == nil { throw ValidationError("--size \(size): give S or WxH, each side in 8...1024") }
        if let c = channels, c != 1 && c != 3 { throw ValidationError("--channels must be 1 or 3, got \(c)") }
        if !(testSplit > 0 && testSplit < 1) { throw ValidationError("--test-split must be in (0, 1), got \(testSplit)") }
        let knownOnly = [("--encoder", encoder != nil), ("--finetune", finetune), ("--val-split", valSplit != 0), ("--patience", patience != nil),
                         ("--checkpoint", checkpoint != nil), ("--resume", resume != nil), ("--limit", limit != nil),
                         ("--distributed", distributedOptions.distributed), ("--data-dir", dataDir != nil)].filter(\.1).map(\.0)
        if let k = knownOnly.first { throw ValidationError("\(k) is not for image folders (--data \(data))") }
    }

    func run() throws {
        // Before any work: a bad --out used to surface only after training.
        if let out { try FileIO.checkModelOutput(out) }
        if let checkpoint { try FileIO.checkModelOutput(checkpoint, option: "--checkpoint") }
        let world = try distributedOptions.communicator()
        threadOptions.apply()
        // Under mpirun only rank 0 speaks (errors aside).
        let quiet = (world?.rank ?? 0) != 0
        let r = try known.map { try trainKnown($0, world: world, quiet: quiet) } ?? trainFolder()
        if !quiet { report(r) }
    }

    func trainKnown(_ known: KnownDataset, world: Communicator?, quiet: Bool) throws -> DatasetTrainingReport {
        var t = DatasetTraining(known, model: model)
        t.communicator = world
        (t.dataDir, t.epochs, t.batchSize, t.lr, t.seed, t.seeds, t.out) = (dataDir, epochs, batchSize, lr, seed, seeds, out)
        (t.encoderDir, t.finetune) = (encoder, finetune)
        (t.valSplit, t.patience, t.checkpoint, t.resume, t.limit) = (valSplit, patience, checkpoint, resume, limit)
        (t.optimizer, t.weightDecay) = (optimizer, weightDecay)
        (t.progress, t.progressToStderr) = (json && known != .fashionMNIST && known != .mnist ? .none : .auto, json)
        t.log = { [json] line in if !json && !quiet { print(line) } }
        return try t.run()
    }

    func trainFolder() throws -> DatasetTrainingReport {
        var t = FolderTraining(data)
        (t.pretrained, t.freeze, t.size, t.channels, t.testShare, t.augment) = (from, freeze, imageSize, channels, testSplit, augment)
        (t.epochs, t.batchSize, t.lr, t.optimizer, t.weightDecay) = (epochs, batchSize, lr, optimizer, weightDecay)
        (t.seed, t.seeds, t.out) = (seed, seeds, out)
        (t.progress, t.progressToStderr) = (.auto, json)
        t.log = { [json] line in if !json { print(line) } }
        return try t.run()
    }

    func report(_ r: DatasetTrainingReport) {
        let accs = r.runs.map(\.accuracy)
        let (m, s) = meanStd(accs)
        if json, let loss = r.testLoss, seeds == 1 {
            let hist = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(r.history))) ?? []
            return printJSON(["model": r.out ?? NSNull(), "history": hist, "test_loss": loss, "test_accuracy": accs[0], "parameters": r.parameters])
        }
        let secs = r.runs.map(\.seconds).sorted()
        if json {
            return printJSON(["data": data, "model": r.out ?? NSNull(), "what": r.what, "seeds": r.runs.count, "test_accuracy_mean": m,
                              "test_accuracy_std": s, "test_accuracy": accs, "train_seconds": secs])
        }
        if let loss = r.testLoss, seeds == 1 { return print(String(format: "test accuracy %.4f, test loss %.4f; saved %@", accs[0], loss, r.out ?? "")) }
        print(String(format: "%@: test accuracy %.2f %% ± %.2f over %d seed(s), training %.1f s (median)", r.what, 100 * m, 100 * s, r.runs.count, secs[secs.count / 2])
              + (r.out.map { "; saved \($0)" } ?? ""))
    }
}
