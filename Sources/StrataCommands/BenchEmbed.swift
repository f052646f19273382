import ArgumentParser
import Foundation
import Strata

/// `strata bench embed`: the workload of Tools/bench_bert_side_by_side.py in Strata (batch-64
/// throughput over the 3,000 sentiment sentences, longest first, and batch-1 latency).
struct BenchEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "embed", abstract: "Text encoder speed: sentences/s at batch 64 and batch-1 latency on the sentiment sentences.")

    @Option(help: "Text encoder folder (all-MiniLM-L6-v2 as sentence-transformers saves it).") var encoder: String
    @Option(help: "Sentences per batch.") var batchSize: Int = 64
    @Option(help: "Folder of the sentiment labelled sentences.") var data: String = "../shared/data/sentiment_labelled_sentences"
    @Option(help: "Threads (default 2, as the reference).") var threads: Int = 2
    @Flag(help: "Print only the final JSON line.") var json = false

    func validate() throws {
        if !(1...4096).contains(batchSize) { throw ValidationError("--batch-size must be in 1...4096, got \(batchSize)") }
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        Strata.numThreads = threads
        var bench = TextEmbeddingBenchmark(encoderFolder: encoder)
        bench.batchSize = batchSize
        bench.dataDir = data
        Profiler.isEnabled = ProcessInfo.processInfo.environment["STRATA_PROFILE"] != nil
        let r = try bench.run()
        if Profiler.isEnabled { FileHandle.standardError.write((Profiler.report() + "\n").data(using: .utf8)!) }
        if !json {
            print(String(format: "embed: %d sentences in %.2f s (%.0f/s) at batch %d, longest first; batch 1: %.2f ms per sentence (first %d); peak RSS %.1f MiB; %@",
                         r.sentences, r.seconds, r.sentencesPerSecond, r.batchSize, r.latencyMs, r.latencyTexts, ProcessStats.peakRSSMiB(), Strata.cpuKernel))
        }
        printJSON(["benchmark": "strata_embed", "encoder": encoder, "sentences": r.sentences, "batch": r.batchSize, "seconds": (r.seconds * 1000).rounded() / 1000,
                   "sentences_per_s": round1(r.sentencesPerSecond), "latency_b1_ms": (r.latencyMs * 100).rounded() / 100, "latency_texts": r.latencyTexts,
                   "threads": Strata.numThreads, "kernel": Strata.cpuKernel, "peak_rss_mib": ProcessStats.peakRSSMiB(), "load_s": (r.loadSeconds * 100).rounded() / 100])
    }
}
