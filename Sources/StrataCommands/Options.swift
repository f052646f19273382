import ArgumentParser
import Foundation
import StrataONNX
import Strata
import StrataFaces

/// Options shared by the commands that read a dataset.
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset: fashion-mnist, mnist, or a folder with one sub-folder of images per class (split 5 per class for training, the rest for testing).")
    var data: String = "fashion-mnist"

    @Option(help: "Folder with the IDX files (default for fashion-mnist: \(FashionMNIST.defaultDirectory)).")
    var dataDir: String?

    var isFolder: Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: data, isDirectory: &d) && d.boolValue
    }

    func validate() throws {
        guard ["fashion-mnist", "mnist"].contains(data) || isFolder else {
            throw ValidationError("--data \(data): unknown dataset (known: fashion-mnist, mnist, or an image folder)")
        }
        if data == "mnist" && dataDir == nil { throw ValidationError("--data mnist needs --data-dir DIR with the MNIST IDX files") }
    }

    func load(_ split: FashionMNIST.Split) throws -> LabeledImages {
        data == "mnist" ? try FashionMNIST.loadMNIST(split, directory: dataDir!) : try FashionMNIST.load(split, directory: dataDir)
    }

    /// The dataset at a model's input size and normalisation (image folders are resized and split
    /// 5 images per class for training, the rest for testing, seed 0).
    /// `transform` (a face box, say) is applied to each photo of a folder before it is resized.
    func load(for info: ModelInfo, transform: ((Image) -> Image)? = nil) throws -> (train: LabeledImages, test: LabeledImages) {
        guard isFolder else { return (try load(.train), try load(.test)) }
        let shape = info.inputShape
        var d = try ImageFolder.load(data, channels: shape[0], size: (shape[2], shape[1]), transform: transform)
        d.normalization = info.normalization
        return d.splitPerClass(trainPerClass: 5, seed: 0, atMostHalf: true)
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

/// `--model` and `--arch`: the model file a command works on.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model file (.safetensors, or .onnx).") var model: String
    @Option(help: "Architecture of a weights-only file: \(ModelZoo.namesInWords).") var arch: String?

    func validate() throws {
        if let arch, ModelZoo.entry(arch) == nil { throw ValidationError("--arch \(arch): unknown architecture (known: \(ModelZoo.names.joined(separator: ", ")))") }
    }

    func load() throws -> SavedModel {
        if model.hasSuffix(".onnx") {
            guard arch == nil else { throw StrataError("--arch is for weights-only safetensors files, not ONNX models") }
            return try OnnxModel(path: model).savedModel()
        }
        do { return try SavedModel.load(model, arch: arch) } catch let e as StrataError where arch == nil && e.message.contains("weights only") {
            throw StrataError(e.message + ": pass --arch")
        }
    }
}

func printJSON(_ object: Any) { print(jsonLine(object)) }
