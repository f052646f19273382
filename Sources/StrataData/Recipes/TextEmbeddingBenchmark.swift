import Foundation
import StrataCore

/// The workload of Tools/bench_bert_side_by_side.py in Strata: a pretrained text encoder embeds
/// the 3,000 sentiment sentences in batches (64), longest first, tokenising, mean pooling and
/// normalisation included (`TextEncoder.encode`), after one warm-up batch of the first 64
/// sentences; then the batch-1 latency over the first 100 sentences, one call each.
public struct TextEmbeddingBenchmark {
    public var encoderFolder: String
    /// Folder holding amazon_cells_labelled.txt, imdb_labelled.txt and yelp_labelled.txt.
    public var dataDir = "../shared/data/sentiment_labelled_sentences"
    public var batchSize = 64
    public var latencyTexts = 100

    public init(encoderFolder: String) { self.encoderFolder = encoderFolder }

    public struct Result {
        public var sentences = 0, batchSize = 0, latencyTexts = 0
        public var seconds = 0.0, sentencesPerSecond = 0.0
        public var latencyMs = 0.0
        public var loadSeconds = 0.0
    }

    public func run() throws -> Result {
        let files = ["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"].map { (dataDir as NSString).appendingPathComponent($0) }
        let texts = try TextDataset.sentiment(files).texts
        let t0 = ProcessStats.now()
        let encoder = try TextEncoder(folder: encoderFolder)
        var r = Result()
        r.loadSeconds = ProcessStats.now() - t0
        r.sentences = texts.count
        r.batchSize = batchSize
        _ = try encoder.encode(Array(texts.prefix(batchSize)), batchSize: batchSize)   // warm-up, as the reference
        let t1 = ProcessStats.now()
        _ = try encoder.encode(texts, batchSize: batchSize)
        r.seconds = ProcessStats.now() - t1
        r.sentencesPerSecond = Double(texts.count) / r.seconds
        let first = Array(texts.prefix(latencyTexts))
        r.latencyTexts = first.count
        let t2 = ProcessStats.now()
        for text in first { _ = try encoder.encode([text], batchSize: 1) }
        r.latencyMs = (ProcessStats.now() - t2) * 1e3 / Double(max(first.count, 1))
        return r
    }
}
