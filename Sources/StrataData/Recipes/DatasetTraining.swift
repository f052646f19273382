import Foundation
import StrataCore
import StrataNN

/// The data sets `strata train` knows, each with its models and its published recipe.
public enum KnownDataset: String, CaseIterable, Sendable {
    case fashionMNIST = "fashion-mnist", mnist, cora, fsdd, smsSpam = "sms-spam", sentiment

    /// The model kinds it trains; the first is the default.
    public var models: [String] {
        switch self {
        case .fashionMNIST, .mnist: return ["cnn", "mlp", "cnn-bn"]
        case .cora: return ["gcn"]
        case .fsdd: return ["cnn"]
        case .smsSpam, .sentiment: return ["cnn", "gru", "lstm", "transformer", "tfidf", "encoder"]
        }
    }

    /// Folder under ../shared/data, and the name used in messages.
    var sharedFolder: (folder: String, what: String) {
        switch self {
        case .cora: return ("cora", "Cora")
        case .fsdd: return ("fsdd", "FSDD (the Free Spoken Digit Dataset)")
        case .smsSpam: return ("sms_spam_collection", "The SMS Spam Collection")
        case .sentiment: return ("sentiment_labelled_sentences", "The sentiment labelled sentences")
        case .fashionMNIST, .mnist: return ("", rawValue)
        }
    }
}

/// One trained model per seed.
public struct SeedRun {
    public var seed: Int
    public var accuracy: Double
    public var seconds: Double
    public var extra: [String: Double] = [:]
}

/// What a `DatasetTraining` run trained and measured.
public struct DatasetTrainingReport {
    /// e.g. "sentiment gru".
    public var what: String
    public var runs: [SeedRun] = []
    /// The model file written (the first seed's), if any.
    public var out: String?
    /// The first seed's epochs.
    public var history: [EpochRecord] = []
    public var testLoss: Double?
    public var parameters = 0
}

/// Trains a model of a known data set with its recipe, over one or more seeds, and saves the
/// first seed's model: Fashion-MNIST/MNIST (MLP, CNN), Cora (GCN), FSDD (spectrogram CNN), SMS
/// spam and sentiment (CNN, GRU, LSTM, Transformer, TF-IDF + softmax regression).
///
/// ```swift
/// var t = DatasetTraining(.sentiment, model: "gru")
/// t.out = "sentiment-gru.safetensors"
/// let report = try t.run()          // report.runs[0].accuracy
/// ```
public struct DatasetTraining {
    public var dataset: KnownDataset
    public var model: String
    /// Folder of the data (default: Debian's Fashion-MNIST, or ../shared/data/<name>).
    public var dataDir: String?
    public var epochs: Int?, batchSize: Int?, lr: Float?
    /// Fashion-MNIST and MNIST: the optimizer, and its weight decay (nil: its default).
    public var optimizer = OptimizerKind.adam
    public var weightDecay: Float?
    public var seed = 0, seeds = 1
    public var out: String?
    /// Fashion-MNIST and MNIST: a held-out share of the training set for validation, which chooses
    /// the epoch to save (0: the last epoch is saved, the test split only reported), early stopping
    /// (needs `valSplit`), checkpoints, and a training subset.
    public var valSplit = 0.0
    public var patience: Int?
    public var checkpoint: String?, resume: String?
    public var limit: Int?
    public var progress: ProgressStyle = .auto
    public var progressToStderr = false
    public var log: (String) -> Void = { _ in }
    /// Fashion-MNIST and MNIST: data-parallel training over these processes (`batchSize` is the
    /// batch of all of them together). Rank 0 writes the model and scores it on the test split;
    /// the other ranks' reports hold no test figures (NaN).
    public var communicator: Communicator?
    /// Text, `--model encoder`: the pretrained encoder's folder (all-MiniLM-L6-v2's layout), and
    /// whether the whole encoder trains with the head (else only the head, on frozen embeddings).
    public var encoderDir: String?
    public var finetune = false
    /// Warnings that always reach the user (a truncated text), whatever `log` does.
    public var warn: (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }

    public init(_ dataset: KnownDataset, model: String? = nil) {
        self.dataset = dataset
        self.model = model ?? dataset.models[0]
    }

    /// The model file name used when `out` is not given.
    public var defaultOut: String { dataset == .fashionMNIST || dataset == .mnist ? "fashion-\(model).safetensors" : "\(dataset.rawValue)-\(model).safetensors" }

    public func run() throws -> DatasetTrainingReport {
        guard dataset.models.contains(model) else {
            throw StrataError("\(dataset.rawValue) trains \(dataset.models.joined(separator: ", ")), not \(model)")
        }
        if communicator != nil && dataset != .fashionMNIST && dataset != .mnist {
            throw StrataError("data-parallel training takes fashion-mnist and mnist, not \(dataset.rawValue)")
        }
        switch dataset {
        case .fashionMNIST, .mnist: return try trainImages()
        case .cora: return try trainCora()
        case .fsdd: return try trainFSDD()
        case .smsSpam, .sentiment: return model == "tfidf" ? try trainTfIdf() : model == "encoder" ? try trainEncoder() : try trainText()
        }
    }

    /// The data folder: `dataDir`, else ../shared/data/<folder>.
    func sharedDir() throws -> String {
        let (folder, what) = dataset.sharedFolder
        let dir = dataDir ?? "../shared/data/\(folder)"
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw StrataError("\(what) not found: \(dir) does not exist")
        }
        return dir
    }

    func load(_ split: FashionMNIST.Split) throws -> LabeledImages {
        if dataset == .mnist {
            guard let dataDir else { throw StrataError("MNIST needs the folder of its IDX files") }
            return try FashionMNIST.loadMNIST(split, directory: dataDir)
        }
        return try FashionMNIST.load(split, directory: dataDir)
    }

    func fitOptions(epochs defaultEpochs: Int, batchSize defaultBatch: Int, seed: Int) -> FitOptions {
        var o = FitOptions(epochs: epochs ?? defaultEpochs, batchSize: batchSize ?? defaultBatch, seed: seed)
        o.progress = seeds > 1 ? .none : progress
        o.progressToStderr = progressToStderr
        return o
    }

    /// Fashion-MNIST or MNIST with the zoo's MLP or CNN: Adam; the last epoch saved and scored on the
    /// test split, or with `valSplit` the epoch with the best loss on the held-out share. The test
    /// split never chooses the epoch (nor stops the run), or its score would flatter the model.
    func trainImages() throws -> DatasetTrainingReport {
        if patience != nil && valSplit == 0 {
            throw StrataError("--patience stops on the validation loss: give --val-split too, so that the test split does not choose when to stop")
        }
        var train = try load(.train)
        if let l = limit { train = train.prefix(l) }
        var validation: LabeledImages
        if valSplit > 0 {
            let order = DataLoader(train, batchSize: 1, shuffle: true, seed: seed &+ 7919).order(epoch: 0)
            let nVal = max(1, Int(Double(train.count) * valSplit))
            validation = train.subset(Array(order[..<nVal]))
            train = train.subset(Array(order[nVal...]))
        } else {
            validation = try load(.test)
        }
        var firstHistory: [EpochRecord] = [], firstLoss: Double?, parameters = 0
        let test = try load(.test)
        let outPath = out ?? defaultOut
        var report = try overSeeds("\(dataset.rawValue) \(model)", out: outPath) { seed, save in
            RandomGenerator.manualSeed(seed)
            let entry = ModelZoo.entry(model)!
            let net = entry.build()
            var info = entry.info(net)
            info.classNames = train.classNames
            info.dataset = dataset.rawValue
            let e = epochs ?? (model == "mlp" ? 5 : 3), lr = self.lr ?? optimizer.defaultLearningRate
            let opt = optimizer == .adam ? "" : " --optimizer \(optimizer.rawValue)", wd = weightDecay.map { " --weight-decay \($0)" } ?? ""
            info.recipe = "strata train --data \(dataset.rawValue) --model \(model) --epochs \(e) --batch-size \(batchSize ?? 64)\(opt) --lr \(lr)\(wd) --seed \(seed)"
            let trainer = Trainer(model: net, optimizer: optimizer.make(net.parameters(), lr: lr, weightDecay: weightDecay), info: info)
            trainer.dataParallel = try communicator.map { try DataParallel(net, communicator: $0) }
            let rank = communicator?.rank ?? 0
            var options = fitOptions(epochs: e, batchSize: 64, seed: seed)
            // Every seed keeps its best epoch; seeds after the first in a temporary file.
            let best = save ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("strata-seed-\(getpid())-\(seed).safetensors")
            defer { if save == nil { try? FileManager.default.removeItem(atPath: best) } }
            (options.bestModelPath, options.patience, options.saveBestOnly) = (best, patience, valSplit > 0)
            if valSplit == 0 { options.validationName = "test" }
            if save != nil { (options.checkpointPath, options.resumeFrom) = (checkpoint, resume) }
            let threads = communicator.map { "\($0.size) processes of \(Strata.numThreads) thread\(Strata.numThreads == 1 ? "" : "s")" } ?? "\(Strata.numThreads) threads"
            if save != nil { log("training \(model) (\(net.parameterCount) parameters) on \(train.count) \(dataset.rawValue) images, \(valSplit > 0 ? "validating on \(validation.count) held out (the best epoch is saved)" : "reporting the \(validation.count) test images after each epoch (the last epoch is saved)"), \(threads)") }
            let started = Date()
            let history = try trainer.fit(train, validation: validation, options: options)
            let seconds = Date().timeIntervalSince(started)
            // The saved epoch on the test split (rank 0 wrote it, and scores it alone).
            let (testLoss, testAcc) = rank == 0 ? Trainer.evaluate(try SavedModel.load(best).model, test) : (Double.nan, Double.nan)
            if save != nil { (firstHistory, firstLoss, parameters) = (history, testLoss, net.parameterCount) }
            if seeds > 1 { log(String(format: "seed %d: test accuracy %.4f, test loss %.4f (%.1f s)", seed, testAcc, testLoss, seconds)) }
            return SeedRun(seed: seed, accuracy: testAcc, seconds: seconds, extra: ["test_loss": testLoss])
        }
        (report.history, report.testLoss, report.parameters) = (firstHistory, firstLoss, parameters)
        return report
    }

    /// Runs `body` once per seed (the first one saving its model) and collects the runs.
    func overSeeds(_ what: String, out: String?, _ body: (_ seed: Int, _ save: String?) throws -> SeedRun) throws -> DatasetTrainingReport {
        var report = DatasetTrainingReport(what: what, out: out)
        for s in (0..<seeds).map({ seed &+ $0 }) { report.runs.append(try body(s, s == seed ? out : nil)) }
        return report
    }

    /// Kipf and Welling's GCN on Cora: 20 labelled nodes per class, 500 validation, 1,000 test
    /// nodes per seed; Adam lr 0.01, weight decay 5e-4 on the first layer, dropout 0.5, 200
    /// full-batch epochs; the model after the last epoch is scored (no early stopping).
    func trainCora() throws -> DatasetTrainingReport {
        let graph = try Cora.load(try sharedDir())
        return try overSeeds("Cora GCN", out: out ?? defaultOut) { seed, save in
            let (train, val, test) = graph.planetoidSplit(seed: seed)
            RandomGenerator.manualSeed(seed)
            let gcn = GCN(features: graph.features.shape[1], hidden: 16, classes: graph.classNames.count)
            gcn.attach(graph)
            let info = ModelInfo(architecture: ModuleRegistry.spec(of: gcn), classNames: graph.classNames, inputShape: [graph.features.shape[1]],
                                 extra: ["dataset": "cora", "recipe": "strata train --data cora --model gcn --seed \(seed)"])
            let trainer = Trainer(model: gcn, optimizer: Adam(gcn.parameters(), lr: lr ?? 0.01), info: info)
            let w1 = gcn.conv1.weight, b1 = gcn.conv1.bias
            trainer.loss = { out, labels in crossEntropy(out, labels) + ((w1.value * w1.value).sum() + (b1.value * b1.value).sum()) * (5e-4 / 2) }
            let started = Date()
            try trainer.fit(NodeSet(train, graph: graph), validation: NodeSet(val, graph: graph), options: fitOptions(epochs: 200, batchSize: train.count, seed: seed))
            let seconds = Date().timeIntervalSince(started)
            if let save { try SavedModel(model: gcn, info: trainer.info).save(to: save) }
            let acc = Trainer.evaluate(gcn, NodeSet(test, graph: graph)).accuracy, valAcc = Trainer.evaluate(gcn, NodeSet(val, graph: graph)).accuracy
            log(String(format: "seed %d: test accuracy %.4f, validation %.4f (%.1f s)", seed, acc, valAcc, seconds))
            return SeedRun(seed: seed, accuracy: acc, seconds: seconds, extra: ["validation": valAcc])
        }
    }

    /// The spectrogram CNN on FSDD's official split (index 0-4 = test): Adam 1e-3, batch 32, 10 epochs.
    func trainFSDD() throws -> DatasetTrainingReport {
        var feats = AudioFeatures()
        let loaded = try FSDD.load(try sharedDir(), features: feats)
        feats.fit(loaded.train.0)
        let train = TensorDataset(feats.standardize(loaded.train.0), labels: loaded.train.1)
        let test = TensorDataset(feats.standardize(loaded.test.0), labels: loaded.test.1)
        return try overSeeds("FSDD spectrogram CNN", out: out ?? defaultOut) { seed, save in
            RandomGenerator.manualSeed(seed)
            let net = FSDD.cnn()
            var info = ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: (0..<10).map(String.init), inputShape: [1, feats.bands, 100],
                                 extra: ["dataset": "fsdd", "recipe": "strata train --data fsdd --model cnn --seed \(seed)"])
            try info.setSection(feats)
            let trainer = Trainer(model: net, optimizer: Adam(net.parameters(), lr: lr ?? 1e-3), info: info)
            let started = Date()
            var options = fitOptions(epochs: 10, batchSize: 32, seed: seed)
            options.validationName = "test"
            try trainer.fit(train, validation: test, options: options)
            let seconds = Date().timeIntervalSince(started)
            if let save { try SavedModel(model: net, info: trainer.info).save(to: save) }
            let acc = Trainer.evaluate(net, test).accuracy
            log(String(format: "seed %d: test accuracy %.4f (%.1f s)", seed, acc, seconds))
            return SeedRun(seed: seed, accuracy: acc, seconds: seconds)
        }
    }

    func loadText() throws -> TextDataset {
        let dir = try sharedDir()
        if dataset == .smsSpam { return try TextDataset.smsSpam((dir as NSString).appendingPathComponent("SMSSpamCollection")) }
        return try TextDataset.sentiment(["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"].map { (dir as NSString).appendingPathComponent($0) })
    }

    /// Text classifiers on a stratified, seeded 80/20 split: word ids (vocabulary from the
    /// training texts, words seen twice or more), 64 tokens, Adam 1e-3, batch 32, 10 epochs (SMS) or 20.
    func trainText() throws -> DatasetTrainingReport {
        let kind = TextClassifier.Kind(rawValue: model)!
        let data = try loadText()
        let maxLength = 64
        return try overSeeds("\(dataset.rawValue) \(model)", out: out ?? defaultOut) { seed, save in
            let (trIdx, teIdx) = data.stratifiedSplit(seed: seed)
            let tok = TextTokenizer.words(WordTokenizer(fitting: trIdx.map { data.texts[$0] }, minCount: 2))
            let train = TensorDataset(tok.batch(trIdx.map { data.texts[$0] }, length: maxLength), labels: trIdx.map { data.labels[$0] })
            let test = TensorDataset(tok.batch(teIdx.map { data.texts[$0] }, length: maxLength), labels: teIdx.map { data.labels[$0] })
            RandomGenerator.manualSeed(seed)
            let net = TextClassifier(kind: kind, vocabulary: tok.size, classes: data.classNames.count, maxLength: maxLength)
            var info = ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: data.classNames, inputShape: [maxLength],
                                 extra: ["dataset": dataset.rawValue, "recipe": "strata train --data \(dataset.rawValue) --model \(model) --seed \(seed)"])
            try info.setSection(tok)
            let trainer = Trainer(model: net, optimizer: Adam(net.parameters(), lr: lr ?? 1e-3), info: info)
            let started = Date()
            try trainer.fit(train, options: fitOptions(epochs: dataset == .smsSpam ? 10 : 20, batchSize: 32, seed: seed))
            let seconds = Date().timeIntervalSince(started)
            if let save { try SavedModel(model: net, info: trainer.info).save(to: save) }
            let acc = Trainer.evaluate(net, test).accuracy
            log(String(format: "seed %d: test accuracy %.4f (%.1f s, vocabulary %d)", seed, acc, seconds, tok.size))
            return SeedRun(seed: seed, accuracy: acc, seconds: seconds)
        }
    }

    /// The classical text workflow: TF-IDF of the same word ids, softmax regression (C = 10),
    /// saved as one `TfIdfClassifier` model file.
    func trainTfIdf() throws -> DatasetTrainingReport {
        let data = try loadText()
        return try overSeeds("\(dataset.rawValue) TF-IDF + softmax regression", out: out ?? defaultOut) { seed, save in
            let (trIdx, teIdx) = data.stratifiedSplit(seed: seed)
            let tok = TextTokenizer.words(WordTokenizer(fitting: trIdx.map { data.texts[$0] }, minCount: 2))
            let xtr = tok.batch(trIdx.map { data.texts[$0] }, length: 64), xte = tok.batch(teIdx.map { data.texts[$0] }, length: 64)
            let started = Date()
            let tfidf = TfIdf(fitting: xtr, vocabulary: tok.size)
            let reg = SoftmaxRegression(features: tfidf.transform(xtr), labels: trIdx.map { data.labels[$0] }, classes: data.classNames.count)
            let seconds = Date().timeIntervalSince(started)
            let acc = Double(accuracy(reg.logits(tfidf.transform(xte)), teIdx.map { data.labels[$0] }))
            if let save {
                let model = TfIdfClassifier(tfidf, reg)
                var info = ModelInfo(architecture: ModuleRegistry.spec(of: model), classNames: data.classNames, inputShape: [64],
                                     extra: ["dataset": dataset.rawValue, "recipe": "strata train --data \(dataset.rawValue) --model tfidf --seed \(seed)"])
                try info.setSection(tok)
                try SavedModel(model: model, info: info).save(to: save)
            }
            log(String(format: "seed %d: test accuracy %.4f (%.1f s)", seed, acc, seconds))
            return SeedRun(seed: seed, accuracy: acc, seconds: seconds)
        }
    }

    /// A pretrained encoder (`encoderDir`) on the same stratified, seeded 80/20 splits: every
    /// text embedded once, then a softmax-regression head fitted on the training embeddings
    /// (scikit-learn's logistic regression, C = 1). With `finetune` the head, so started, trains
    /// on with the whole encoder through the `Trainer`: AdamW (lr 2e-5, weight decay 0.01), a
    /// linear warm-up over the first 10% of steps then linear decay, gradients clipped at norm
    /// 1, batches of 16 texts of similar lengths, 3 epochs.
    func trainEncoder() throws -> DatasetTrainingReport {
        guard let encoderDir else {
            throw StrataError("--model encoder needs --encoder DIR, a BERT folder (`make bert-model` installs all-MiniLM-L6-v2 and prints its folder)")
        }
        let data = try loadText()
        let enc = try TextEncoder(folder: encoderDir)
        let folder = URL(fileURLWithPath: encoderDir).standardizedFileURL.path
        log("embedding \(data.texts.count) \(dataset.rawValue) texts with the encoder in \(encoderDir) (\(enc.bert.parameterCount) parameters)")
        let started = Date()
        let embedded = try enc.encode(data.texts)
        if let w = embedded.truncationWarning { warn(w) }
        log(String(format: "embedded in %.1f s", Date().timeIntervalSince(started)))
        // Only fine-tuning needs the ids again (a frozen encoder's head sees the embeddings).
        let tokens = finetune ? enc.tokenizer.batch(pieces: data.texts.map(enc.tokenizer.tokenIds), maxLength: enc.maxLength) : nil
        let classes = data.classNames.count
        let what = "\(dataset.rawValue) \(finetune ? "fine-tuned" : "frozen") encoder + softmax regression"
        let name = out ?? (finetune ? "\(dataset.rawValue)-encoder-finetuned.safetensors" : defaultOut)
        return try overSeeds(what, out: name) { seed, save in
            let (trIdx, teIdx) = data.stratifiedSplit(seed: seed)
            let (trY, teY) = (trIdx.map { data.labels[$0] }, teIdx.map { data.labels[$0] })
            let started = Date()
            let e = embedded.embeddings
            let head = SoftmaxRegression(features: e.indexSelect(axis: 0, indices: trIdx), labels: trY, classes: classes, c: 1, epochs: 1000)
            let bert: BertEncoder
            if finetune {
                bert = Tensor.withoutRandomInit { BertEncoder(config: enc.bert.bertConfig) }
                try bert.loadStateDict(enc.bert.stateDict(), source: encoderDir)
            } else {
                bert = enc.bert
            }
            let model = EncoderClassifier(bert: bert, classes: classes, normalize: enc.normalize, padId: enc.tokenizer.padId,
                                          encoderFolder: finetune ? nil : folder)
            model.classifier.weight.assign(head.weight.value)
            model.classifier.bias!.assign(head.bias.value)
            let (ep, b, rate) = (epochs ?? 3, batchSize ?? 16, lr ?? 2e-5)
            let recipe = "strata train --data \(dataset.rawValue) --model encoder --encoder \(encoderDir)"
                + (finetune ? " --finetune --epochs \(ep) --batch-size \(b) --lr \(rate)" : "") + " --seed \(seed)"
            var info = ModelInfo(architecture: ModuleRegistry.spec(of: model), classNames: data.classNames, inputShape: [enc.maxLength],
                                 extra: ["dataset": dataset.rawValue, "recipe": recipe])
            try info.setSection(TextTokenizer.wordPiece(enc.tokenizer))
            let acc: Double
            if finetune, let tokens {
                let train = TensorDataset(tokens.ids.indexSelect(axis: 0, indices: trIdx), labels: trY)
                let test = TensorDataset(tokens.ids.indexSelect(axis: 0, indices: teIdx), labels: teY)
                let lengths = trIdx.map { tokens.lengths[$0] }
                let steps = ep * ((train.count + b - 1) / b), warm = max(1, steps / 10)
                let trainer = Trainer(model: model, optimizer: AdamW(model.parameters(), lr: rate, weightDecay: 0.01), info: info)
                trainer.generator = RandomGenerator(seed: seed)
                trainer.batchOrder = { _, rng in DatasetTraining.similarLengthBatches(lengths, batchSize: b, rng: &rng) }
                var options = fitOptions(epochs: ep, batchSize: b, seed: seed)
                options.schedule = LinearWarmup(steps: warm, then: LinearDecay(totalSteps: max(1, steps - warm)))
                options.clipNorm = 1
                if save != nil { log("fine-tuning all \(model.parameterCount) parameters on \(train.count) texts, \(ep) epochs of batches of \(b)") }
                try trainer.fit(train, options: options)
                info = trainer.info
                acc = Trainer.evaluate(model, test, batchSize: 64).accuracy
            } else {
                acc = head.accuracy(features: e.indexSelect(axis: 0, indices: teIdx), labels: teY)
            }
            let seconds = Date().timeIntervalSince(started)
            if let save { try SavedModel(model: model, info: info).save(to: save) }
            log(String(format: "seed %d: test accuracy %.4f (%.1f s)", seed, acc, seconds))
            return SeedRun(seed: seed, accuracy: acc, seconds: seconds)
        }
    }

    /// Batches of `batchSize` texts of similar token counts, in random order: the texts are
    /// shuffled, each run of 50 batches' worth is sorted by length and cut, then the batches
    /// are shuffled. Less padding than random batches, still a different mix every epoch.
    static func similarLengthBatches(_ lengths: [Int], batchSize: Int, rng: inout RandomGenerator) -> [[Int]] {
        let order = rng.permutation(lengths.count), run = batchSize * 50
        var batches: [[Int]] = []
        for start in stride(from: 0, to: order.count, by: run) {
            let part = order[start..<min(start + run, order.count)].sorted { lengths[$0] > lengths[$1] }
            for s in stride(from: 0, to: part.count, by: batchSize) { batches.append(Array(part[s..<min(s + batchSize, part.count)])) }
        }
        return rng.permutation(batches.count).map { batches[$0] }
    }
}
