import ArgumentParser
import Foundation
import Strata
import StrataFaces

/// `strata bench train`: the workload of ../shared/bench/reference/train_fashion.py in Strata.
/// Batch 64, seed 0, Adam 1e-3, pixels/255, mlp 5 epochs or cnn 3 epochs over all 60,000 images;
/// samples/s counted from step 51 to the end, then test accuracy, inference at batch 1000
/// (median of 3 passes after a warm-up pass), batch-1 latency (median of 200 calls after 10
/// warm-up calls) and the peak resident set size of the whole process.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Fashion-MNIST training, inference and latency.")

    @Option(help: "mlp or cnn.")
    var model: String = "mlp"

    @Option(help: "Epochs (default: 5 for mlp, 3 for cnn, as the reference).")
    var epochs: Int?

    @Option(help: "Folder with the Fashion-MNIST IDX files.")
    var dataDir: String?

    @Option(help: "Threads (default 2, as the reference; with --distributed, the cores over the processes of the machine).")
    var threads: Int?

    @OptionGroup var distributedOptions: DistributedOptions

    @Flag(help: "Print only the final JSON line.")
    var json = false

    @Flag(help: "Stop after training (for profiling the training loop alone).")
    var noInference = false

    func validate() throws {
        guard ["mlp", "cnn"].contains(model) else { throw ValidationError("--model \(model): unknown (known: mlp, cnn)") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1, got \(e)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    func run() throws {
        Strata.numThreads = 2
        // Under mpirun: training alone (batch 64 over all the processes), reported by rank 0.
        let world = try distributedOptions.communicator()
        if let threads { Strata.numThreads = threads }
        let quiet = (world?.rank ?? 0) != 0
        var bench = TrainingBenchmark(model: model)
        (bench.epochs, bench.dataDir, bench.inference) = (epochs, dataDir, !noInference && world == nil)
        bench.communicator = world
        bench.log = { [json] line in if !json && !quiet { print(line) } }
        Profiler.isEnabled = ProcessInfo.processInfo.environment["STRATA_PROFILE"] != nil
        let r = try bench.run()
        if Profiler.isEnabled { FileHandle.standardError.write((Profiler.report() + "\n").data(using: .utf8)!) }
        if quiet { return }
        var result: [String: Any] = ["benchmark": "fashion_mnist_strata", "model": model, "train_samples_per_s": round1(r.trainSamplesPerSecond),
                                     "epoch_s": r.epochSeconds, "epoch_train_loss": r.epochLoss, "foreign_cpu_train": r.foreignTrain]
        if let ms = r.gradientMsPerStep {
            result.merge(["processes": r.processes, "threads_per_process": Strata.numThreads, "gradient_sync_ms_per_step": (ms * 1000).rounded() / 1000]) { a, _ in a }
            if !json {
                print(String(format: "%@: %d processes x %d thread%@: train %.0f samples/s; averaging the gradients %.3f ms per step",
                             model, r.processes, Strata.numThreads, Strata.numThreads == 1 ? "" : "s", r.trainSamplesPerSecond, ms))
            }
        }
        guard let acc = r.testAccuracy, let infer = r.inferSamplesPerSecond, let latency = r.latencyMs else { return print(jsonLine(result)) }
        result.merge(["threads": Strata.numThreads, "kernel": Strata.cpuKernel, "winograd": Strata.winograd, "params": r.parameters, "steps": r.steps, "test_accuracy": acc,
                      "infer_b1000_samples_per_s": round1(infer), "latency_b1_ms_median": (latency * 10000).rounded() / 10000,
                      "peak_rss_mib": ProcessStats.peakRSSMiB(), "rss_after_setup_mib": r.rssAfterSetupMiB, "foreign_cpu_infer": r.foreignInfer ?? 0]) { a, _ in a }
        if !json {
            print(String(format: "%@: train %.0f samples/s, test accuracy %.4f, infer b1000 %.0f samples/s, latency b1 %.4f ms, peak RSS %.1f MiB",
                         model, r.trainSamplesPerSecond, acc, infer, latency, ProcessStats.peakRSSMiB()))
        }
        print(jsonLine(result))
    }
}
