import ArgumentParser
import Foundation
import Strata
import StrataFaces

/// `strata bench faces`: the workload of ../shared/bench/reference/faces_train.py in Strata, with
/// the same JSON fields (images_per_s, steps, threads, loss_last50, peak_rss_mib).
struct BenchFaces: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "faces", abstract: "Face training speed: one network of the shipped LFW recipe.")

    @Option(help: "Timed steps of 64 photos (after 20 warm-up steps).") var steps: Int = 300
    @Option(help: "Folder of face photos, one sub-folder per person.") var data: String = "../shared/data/lfw_train"
    @Option(help: "Threads (default 2, as the reference).") var threads: Int = 2
    @Flag(help: "Print only the final JSON line.") var json = false

    func validate() throws {
        if steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func run() throws {
        Strata.numThreads = threads
        var bench = FaceTrainingBenchmark(data: data)
        bench.steps = steps
        bench.log = { [json] line in if !json { print(line) } }
        Profiler.isEnabled = ProcessInfo.processInfo.environment["STRATA_PROFILE"] != nil
        let r = try bench.run()
        if Profiler.isEnabled { FileHandle.standardError.write((Profiler.report() + "\n").data(using: .utf8)!) }
        let result: [String: Any] = [
            "benchmark": "faces_train_strata", "images_per_s": round1(r.imagesPerSecond), "steps": r.timedSteps, "threads": Strata.numThreads,
            "kernel": Strata.cpuKernel, "winograd": Strata.winograd, "loss_last50": (r.lossLast50 * 10000).rounded() / 10000, "peak_rss_mib": ProcessStats.peakRSSMiB(),
            "people": r.people, "photos": r.photos, "load_s": round1(r.loadSeconds), "foreign_cpu": r.foreignCPU,
        ]
        if !json {
            print(String(format: "faces: %.1f images/s over %d steps, loss (last 50) %.4f, peak RSS %.1f MiB", r.imagesPerSecond, r.timedSteps, r.lossLast50,
                         ProcessStats.peakRSSMiB()))
        }
        print(jsonLine(result))
    }
}
