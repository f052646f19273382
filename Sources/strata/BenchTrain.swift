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

    @Option(help: "Threads (default 2, as the reference).")
    var threads: Int = 2

    @Flag(help: "Print only the final JSON line.")
    var json = false

    @Flag(help: "Stop after training (for profiling the training loop alone).")
    var noInference = false

    func validate() throws {
        guard ["mlp", "cnn"].contains(model) else { throw ValidationError("--model \(model): unknown (known: mlp, cnn)") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be at least 1, got \(e)") }
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        Strata.numThreads = threads
        let train = try FashionMNIST.load(.train, directory: dataDir), test = try FashionMNIST.load(.test, directory: dataDir)
        RandomGenerator.manualSeed(0)
        let net = ModelZoo.entry(model)!.build()
        let opt = Adam(net.parameters(), lr: 1e-3)
        let loader = DataLoader(train, batchSize: 64, shuffle: true, seed: 0)
        let nEpochs = epochs ?? (model == "mlp" ? 5 : 3)
        let rssSetup = ProcessStats.currentRSSMiB()
        let load = ForeignLoad()
        var step = 0, seen = 0
        var tWarm = 0.0
        var epochSeconds: [Double] = [], epochLoss: [Double] = []
        net.train()
        Profiler.isEnabled = ProcessInfo.processInfo.environment["STRATA_PROFILE"] != nil
        for e in 0..<nEpochs {
            let t0 = ProcessStats.now()
            var lossSum = 0.0
            for batch in loader.epoch(e) {
                let l = crossEntropy(net(batch.inputs), batch.labels)
                opt.zeroGrad()
                l.backward()
                opt.step()
                let v = l.item
                guard v.isFinite else { throw StrataError("bench train: the loss became \(v) at step \(step + 1)") }
                lossSum += Double(v) * Double(batch.labels.count)
                step += 1
                if step == 50 { tWarm = ProcessStats.now() } else if step > 50 { seen += batch.labels.count }
            }
            epochSeconds.append(round1(ProcessStats.now() - t0))
            epochLoss.append((lossSum / Double(train.count) * 10000).rounded() / 10000)
            if !json { print("epoch \(e + 1)/\(nEpochs): \(epochSeconds.last!) s, mean loss \(epochLoss.last!)") }
        }
        let trainSPS = Double(seen) / (ProcessStats.now() - tWarm)
        if Profiler.isEnabled {
            Profiler.isEnabled = false
            FileHandle.standardError.write((Profiler.report() + "\n").data(using: .utf8)!)
        }
        let trainLoad = load.value()
        if noInference {
            print(jsonLine(["benchmark": "fashion_mnist_strata", "model": model, "train_samples_per_s": round1(trainSPS),
                            "epoch_s": epochSeconds, "epoch_train_loss": epochLoss, "foreign_cpu_train": trainLoad]))
            return
        }
        net.eval()
        let inferLoad = ForeignLoad()
        var correct = 0
        var passes: [Double] = []
        var latencies: [Double] = []
        noGrad {
            // Inputs are converted outside the timed region, one batch at a time.
            let batch = { (i: Int) in test.batch(Array((i * 1000)..<((i + 1) * 1000))) }
            for i in 0..<10 {
                let b = batch(i)
                correct += zip(net(b.inputs).argmaxIndices(), b.labels).filter { $0 == $1 }.count
            }
            for _ in 0..<3 {
                var elapsed = 0.0
                for i in 0..<10 {
                    let x = batch(i).inputs
                    let t = ProcessStats.now()
                    _ = net(x)
                    elapsed += ProcessStats.now() - t
                }
                passes.append(Double(test.count) / elapsed)
            }
            let one = test.batch([0]).inputs
            for k in 0..<210 {
                let t = ProcessStats.now()
                _ = net(one)
                let dt = ProcessStats.now() - t
                if k >= 10 { latencies.append(dt) }
            }
        }
        let result: [String: Any] = [
            "benchmark": "fashion_mnist_strata", "model": model, "threads": Strata.numThreads, "kernel": Strata.cpuKernel,
            "params": net.parameterCount, "steps": step,
            "train_samples_per_s": round1(trainSPS), "epoch_s": epochSeconds, "epoch_train_loss": epochLoss,
            "test_accuracy": Double(correct) / Double(test.count),
            "infer_b1000_samples_per_s": round1(ProcessStats.median(passes)),
            "latency_b1_ms_median": (ProcessStats.median(latencies) * 1e3 * 10000).rounded() / 10000,
            "peak_rss_mib": ProcessStats.peakRSSMiB(), "rss_after_setup_mib": rssSetup,
            "foreign_cpu_train": trainLoad, "foreign_cpu_infer": inferLoad.value(),
        ]
        if !json {
            print(String(format: "%@: train %.0f samples/s, test accuracy %.4f, infer b1000 %.0f samples/s, latency b1 %.4f ms, peak RSS %.1f MiB",
                         model, trainSPS, Double(correct) / Double(test.count), ProcessStats.median(passes), ProcessStats.median(latencies) * 1e3, ProcessStats.peakRSSMiB()))
        }
        print(jsonLine(result))
    }
}
