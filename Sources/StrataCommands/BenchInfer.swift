import ArgumentParser
import Foundation
import Strata
import StrataFaces
import StrataONNX

/// Inference speed of one model, as `Tools/bench_onnxruntime.py` measures onnxruntime on its
/// ONNX export: batch-1 latency (median of `--calls` calls on distinct seeded inputs, after 10
/// warm-up calls) and batch-64 throughput (median of 5 passes of 20 batches). `--interval-ms`
/// spaces the batch-1 calls as a camera's frames would (33 for 30 frames/s); the default times
/// them back to back.
struct BenchInfer: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "infer", abstract: "Batch-1 latency and batch-64 throughput of a model file (.safetensors, or .onnx run on Strata's ops).")

    @Option(help: "Model file: a Strata model, or an ONNX file (run by Strata's importer).") var model: String
    @Option(help: "Batch-1 calls to time.") var calls: Int = 200
    @Option(help: "Batch size of the throughput passes.") var batch: Int = 64
    @Option(help: "Pause between batch-1 calls, in ms (a camera's frames: 33).") var intervalMs: Double = 0
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if !(10...100_000).contains(calls) { throw ValidationError("--calls must be in 10...100000, got \(calls)") }
        if !(1...4096).contains(batch) { throw ValidationError("--batch must be in 1...4096, got \(batch)") }
        if !(0...1000).contains(intervalMs) { throw ValidationError("--interval-ms must be in 0...1000, got \(intervalMs)") }
    }

    func run() throws {
        threadOptions.apply()
        // The model as a function of one seeded input set of n examples.
        let call: ([Tensor]) throws -> Tensor
        let sample: (Int, Int) -> [Tensor]
        if model.hasSuffix(".onnx") {
            let m = try OnnxModel(path: model)
            let specs = m.dataInputs
            let shapes = specs.map { $0.dims.dropFirst().map { $0 ?? 0 } }
            if let k = shapes.firstIndex(where: { $0.contains { $0 < 1 } }) {
                throw StrataError("\(model): input \(specs[k].name) has no fixed size besides the batch")
            }
            call = { try m.run(inputs: $0) }
            sample = { n, seed in zip(specs, shapes).enumerated().map { k, input in
                // Token ids 1...98 (every Strata text model's vocabulary is larger).
                input.0.int64 ? Tensor((0..<(n * input.1.reduce(1, *))).map { Float(1 + ($0 * 7 + seed) % 98) }, shape: [n] + input.1)
                              : Tensor.randn([n] + input.1, seed: seed &+ k)
            } }
            return try measure(call, sample)
        }
        let saved = try SavedModel.load(model)
        saved.model.eval()
        // Evaluation mode once, outside the timing (a face network's embedding switches it itself).
        let exportable = saved.model as? OnnxExportable
        call = { exportable?.onnxReference($0) ?? saved.model($0[0]) }
        sample = { n, seed in Onnx.sampleInputs(saved.model, info: saved.info, count: n, seed: seed) }
        try measure(call, sample)
    }

    func measure(_ call: ([Tensor]) throws -> Tensor, _ sample: (Int, Int) -> [Tensor]) throws {
        try noGrad {
            let ones = (0..<(calls + 10)).map { sample(1, $0) }
            var latencies: [Double] = []
            for x in ones {
                if intervalMs > 0 { Thread.sleep(forTimeInterval: intervalMs / 1000) }
                let t = ProcessStats.now()
                _ = try call(x)
                latencies.append(ProcessStats.now() - t)
            }
            let batches = (0..<20).map { sample(batch, 1000 + $0) }
            _ = try call(batches[0])
            let passes = try (0..<5).map { _ -> Double in
                let t = ProcessStats.now()
                for x in batches { _ = try call(x) }
                return Double(20 * batch) / (ProcessStats.now() - t)
            }
            printJSON(["benchmark": "strata_infer", "model": model, "runtime": model.hasSuffix(".onnx") ? "strata-onnx-import" : "strata",
                       "threads": Strata.numThreads, "kernel": Strata.cpuKernel, "interval_ms": intervalMs,
                       "latency_b1_ms_median": (ProcessStats.median(Array(latencies.dropFirst(10))) * 1e3 * 10000).rounded() / 10000,
                       "batch": batch, "throughput_samples_per_s": (ProcessStats.median(passes) * 10).rounded() / 10,
                       "peak_rss_mib": ProcessStats.peakRSSMiB()])
        }
    }
}
