import Foundation
import Strata
import StrataFaces

/// Where a shared data set lives: --data-dir, else ../shared/data/<folder> beside the checkout.
func sharedDataDir(_ explicit: String?, _ folder: String, what: String) throws -> String {
    let dir = explicit ?? "../shared/data/\(folder)"
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
        throw StrataError("\(what) not found: \(dir) does not exist; pass --data-dir DIR")
    }
    return dir
}

/// One trained model per seed: its test accuracy, training seconds and the model file's contents.
struct SeedRun {
    var accuracy: Double
    var seconds: Double
    var extra: [String: Any] = [:]
}

func report(_ t: Train, what: String, runs: [SeedRun], out: String?, extra: [String: Any] = [:]) {
    let accs = runs.map { $0.accuracy }
    let (m, s) = meanStd(accs)
    let secs = runs.map { $0.seconds }.sorted()
    if t.json {
        var j: [String: Any] = ["data": t.dataOptions.data, "model": out ?? NSNull(), "what": what, "seeds": runs.count, "test_accuracy_mean": m,
                                "test_accuracy_std": s, "test_accuracy": accs, "train_seconds": secs]
        for (k, v) in extra { j[k] = v }
        printJSON(j)
    } else {
        print(String(format: "%@: test accuracy %.2f %% ± %.2f over %d seed(s), training %.1f s (median)",
                     what, 100 * m, 100 * s, runs.count, secs[secs.count / 2]) + (out.map { "; saved \($0)" } ?? ""))
    }
}

func trainOther(_ t: Train) throws {
    switch t.dataOptions.data {
    case "cora": try trainCora(t)
    case "fsdd": try trainFSDD(t)
    case "sms-spam", "sentiment": try trainText(t)
    default: throw StrataError("--data \(t.dataOptions.data): training arrives in a later commit")
    }
}

/// Kipf and Welling's GCN on Cora: 20 labelled nodes per class, 500 validation, 1,000 test nodes
/// per seed; Adam lr 0.01, weight decay 5e-4 on the first layer, dropout 0.5, 200 full-batch epochs.
func trainCora(_ t: Train) throws {
    let model = t.model ?? "gcn"
    guard model == "gcn" else { throw StrataError("--model \(model): Cora takes gcn") }
    let graph = try Cora.load(try sharedDataDir(t.dataOptions.dataDir, "cora", what: "Cora"))
    let out = t.out ?? "cora-gcn.safetensors"
    var runs: [SeedRun] = []
    for seed in t.seed..<(t.seed + t.seeds) {
        let (train, val, test) = graph.planetoidSplit(seed: seed)
        RandomGenerator.manualSeed(seed)
        let gcn = GCN(features: graph.features.shape[1], hidden: 16, classes: graph.classNames.count)
        gcn.attach(graph)
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: gcn), classNames: graph.classNames, inputShape: [graph.features.shape[1]],
                             extra: ["dataset": "cora", "recipe": "strata train --data cora --model gcn --seed \(seed)"])
        let trainer = Trainer(model: gcn, optimizer: Adam(gcn.parameters(), lr: t.lr == 1e-3 ? 0.01 : t.lr), info: info)
        let w1 = gcn.conv1.weight, b1 = gcn.conv1.bias
        trainer.loss = { out, labels in crossEntropy(out, labels) + ((w1.value * w1.value).sum() + (b1.value * b1.value).sum()) * (5e-4 / 2) }
        var o = FitOptions(epochs: t.epochs ?? 200, batchSize: train.count, seed: seed)
        o.progress = t.json || t.seeds > 1 ? .none : .auto
        o.bestModelPath = seed == t.seed ? out : nil
        let started = Date()
        // The model after the last epoch is scored (no early stopping), as in the reference.
        try trainer.fit(NodeSet(train, graph: graph), validation: NodeSet(val, graph: graph), options: o)
        let seconds = Date().timeIntervalSince(started)
        if seed == t.seed { try SavedModel(model: gcn, info: trainer.info).save(to: out) }
        let acc = Trainer.evaluate(gcn, NodeSet(test, graph: graph)).accuracy
        let valAcc = Trainer.evaluate(gcn, NodeSet(val, graph: graph)).accuracy
        if !t.json { print(String(format: "seed %d: test accuracy %.4f, validation %.4f (%.1f s)", seed, acc, valAcc, seconds)) }
        runs.append(SeedRun(accuracy: acc, seconds: seconds, extra: ["validation": valAcc]))
    }
    report(t, what: "Cora GCN", runs: runs, out: out)
}

/// The spectrogram CNN on FSDD's official split (index 0-4 = test): Adam 1e-3, batch 32, 10 epochs.
func trainFSDD(_ t: Train) throws {
    let model = t.model ?? "cnn"
    guard model == "cnn" else { throw StrataError("--model \(model): FSDD takes cnn") }
    let dir = try sharedDataDir(t.dataOptions.dataDir, "fsdd", what: "FSDD (the Free Spoken Digit Dataset)")
    var feats = AudioFeatures()
    let loaded = try FSDD.load(dir, features: feats)
    feats.fit(loaded.train.0)
    let train = TensorDataset(feats.standardize(loaded.train.0), labels: loaded.train.1)
    let test = TensorDataset(feats.standardize(loaded.test.0), labels: loaded.test.1)
    let out = t.out ?? "fsdd-cnn.safetensors"
    let featureJSON = String(decoding: try JSONEncoder().encode(feats), as: UTF8.self)
    var runs: [SeedRun] = []
    for seed in t.seed..<(t.seed + t.seeds) {
        RandomGenerator.manualSeed(seed)
        let net = FSDD.cnn()
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: (0..<10).map(String.init), inputShape: [1, feats.bands, 100],
                             extra: ["dataset": "fsdd", "audio_features": featureJSON, "recipe": "strata train --data fsdd --model cnn --seed \(seed)"])
        let trainer = Trainer(model: net, optimizer: Adam(net.parameters(), lr: t.lr), info: info)
        var o = FitOptions(epochs: t.epochs ?? 10, batchSize: t.batchSize == 64 ? 32 : t.batchSize, seed: seed)
        o.progress = t.json || t.seeds > 1 ? .none : .auto
        let started = Date()
        try trainer.fit(train, validation: test, options: o)
        let seconds = Date().timeIntervalSince(started)
        if seed == t.seed { try SavedModel(model: net, info: trainer.info).save(to: out) }
        let acc = Trainer.evaluate(net, test).accuracy
        if !t.json { print(String(format: "seed %d: test accuracy %.4f (%.1f s)", seed, acc, seconds)) }
        runs.append(SeedRun(accuracy: acc, seconds: seconds))
    }
    report(t, what: "FSDD spectrogram CNN", runs: runs, out: out)
}

/// Loads SMS spam or the sentiment sentences.
func loadText(_ data: String, _ dataDir: String?) throws -> TextDataset {
    if data == "sms-spam" {
        let dir = try sharedDataDir(dataDir, "sms_spam_collection", what: "The SMS Spam Collection")
        return try TextDataset.smsSpam((dir as NSString).appendingPathComponent("SMSSpamCollection"))
    }
    let dir = try sharedDataDir(dataDir, "sentiment_labelled_sentences", what: "The sentiment labelled sentences")
    return try TextDataset.sentiment(["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"].map { (dir as NSString).appendingPathComponent($0) })
}

/// Text classifiers on a stratified, seeded 80/20 split: word ids (vocabulary from the training
/// texts, words seen twice or more), 64 tokens, Adam 1e-3, batch 32, 10 epochs (SMS) or 20.
func trainText(_ t: Train) throws {
    let kindName = t.model ?? "cnn"
    if kindName == "tfidf" { try trainTfIdf(t); return }
    guard let kind = TextClassifier.Kind(rawValue: kindName) else { throw StrataError("--model \(kindName): text takes cnn, gru, lstm, transformer or tfidf") }
    let data = try loadText(t.dataOptions.data, t.dataOptions.dataDir)
    let maxLength = 64
    let out = t.out ?? "\(t.dataOptions.data)-\(kindName).safetensors"
    var runs: [SeedRun] = []
    for seed in t.seed..<(t.seed + t.seeds) {
        let (trIdx, teIdx) = data.stratifiedSplit(seed: seed)
        let tok = TextTokenizer.words(WordTokenizer(fitting: trIdx.map { data.texts[$0] }, minCount: 2))
        let train = TensorDataset(tok.batch(trIdx.map { data.texts[$0] }, length: maxLength), labels: trIdx.map { data.labels[$0] })
        let test = TensorDataset(tok.batch(teIdx.map { data.texts[$0] }, length: maxLength), labels: teIdx.map { data.labels[$0] })
        RandomGenerator.manualSeed(seed)
        let net = TextClassifier(kind: kind, vocabulary: tok.size, classes: data.classNames.count, maxLength: maxLength)
        let info = ModelInfo(architecture: ModuleRegistry.spec(of: net), classNames: data.classNames, inputShape: [maxLength],
                             extra: ["dataset": t.dataOptions.data, "tokenizer": String(decoding: try JSONEncoder().encode(tok), as: UTF8.self),
                                     "recipe": "strata train --data \(t.dataOptions.data) --model \(kindName) --seed \(seed)"])
        let trainer = Trainer(model: net, optimizer: Adam(net.parameters(), lr: t.lr), info: info)
        var o = FitOptions(epochs: t.epochs ?? (t.dataOptions.data == "sms-spam" ? 10 : 20), batchSize: t.batchSize == 64 ? 32 : t.batchSize, seed: seed)
        o.progress = t.json || t.seeds > 1 ? .none : .auto
        let started = Date()
        try trainer.fit(train, options: o)
        let seconds = Date().timeIntervalSince(started)
        if seed == t.seed { try SavedModel(model: net, info: trainer.info).save(to: out) }
        let acc = Trainer.evaluate(net, test).accuracy
        if !t.json { print(String(format: "seed %d: test accuracy %.4f (%.1f s, vocabulary %d)", seed, acc, seconds, tok.size)) }
        runs.append(SeedRun(accuracy: acc, seconds: seconds))
    }
    report(t, what: "\(t.dataOptions.data) \(kindName)", runs: runs, out: out)
}

/// The classical text workflow: TF-IDF of the same word ids, softmax regression (C = 10).
func trainTfIdf(_ t: Train) throws {
    let data = try loadText(t.dataOptions.data, t.dataOptions.dataDir)
    var runs: [SeedRun] = []
    for seed in t.seed..<(t.seed + t.seeds) {
        let (trIdx, teIdx) = data.stratifiedSplit(seed: seed)
        let tok = TextTokenizer.words(WordTokenizer(fitting: trIdx.map { data.texts[$0] }, minCount: 2))
        let xtr = tok.batch(trIdx.map { data.texts[$0] }, length: 64), xte = tok.batch(teIdx.map { data.texts[$0] }, length: 64)
        let started = Date()
        let tfidf = TfIdf(fitting: xtr, vocabulary: tok.size)
        let model = SoftmaxRegression(features: tfidf.transform(xtr), labels: trIdx.map { data.labels[$0] }, classes: data.classNames.count)
        let seconds = Date().timeIntervalSince(started)
        let acc = Double(accuracy(model.logits(tfidf.transform(xte)), teIdx.map { data.labels[$0] }))
        if !t.json { print(String(format: "seed %d: test accuracy %.4f (%.1f s)", seed, acc, seconds)) }
        runs.append(SeedRun(accuracy: acc, seconds: seconds))
    }
    report(t, what: "\(t.dataOptions.data) TF-IDF + softmax regression", runs: runs, out: nil)
}
