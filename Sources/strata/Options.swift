import ArgumentParser
import Foundation
import Strata

/// Options shared by the commands that read a dataset.
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset: fashion-mnist or mnist.")
    var data: String = "fashion-mnist"

    @Option(help: "Folder with the IDX files (default for fashion-mnist: \(FashionMNIST.defaultDirectory)).")
    var dataDir: String?

    func validate() throws {
        guard ["fashion-mnist", "mnist"].contains(data) else {
            throw ValidationError("--data \(data): unknown dataset (known: fashion-mnist, mnist)")
        }
        if data == "mnist" && dataDir == nil { throw ValidationError("--data mnist needs --data-dir DIR with the MNIST IDX files") }
    }

    func load(_ split: FashionMNIST.Split) throws -> LabeledImages {
        data == "mnist" ? try FashionMNIST.loadMNIST(split, directory: dataDir!) : try FashionMNIST.load(split, directory: dataDir)
    }
}

struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for the kernels (default: STRATA_NUM_THREADS or all cores).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    func apply() { if let t = threads { Strata.numThreads = t } }
}

/// Loads `--model`, with `--arch` for weights-only files.
func loadModel(_ path: String, arch: String?) throws -> SavedModel {
    try SavedModel.load(path, arch: arch)
}

func printJSON(_ object: Any) { print(jsonLine(object)) }
