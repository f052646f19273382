import ArgumentParser
import Foundation
import StrataONNX
import Strata
import StrataFaces

/// Options shared by the commands that read a dataset.
struct DataOptions: ParsableArguments {
    @Option(help: "Dataset: fashion-mnist, mnist, or a folder with one sub-folder of images per class (tested on the split `strata train --data FOLDER` held out, else on all but 5 images per class).")
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

    /// The dataset at a model's input size and normalisation. An image folder is split as the
    /// model's training split it (`strata train --data FOLDER` records its test share and seed),
    /// else 5 images per class for training and the rest for testing (seed 0); a model trained on
    /// a folder must know the folder's classes, in the same order.
    /// `transform` (a face box, say) is applied to each photo of a folder before it is resized.
    func load(for info: ModelInfo, transform: ((Image) -> Image)? = nil) throws -> (train: LabeledImages, test: LabeledImages) {
        guard isFolder else { return (try load(.train), try load(.test)) }
        let shape = info.inputShape
        var d = try ImageFolder.load(data, channels: shape[0], size: (shape[2], shape[1]), transform: transform)
        d.normalization = info.normalization
        guard let share = info.extra["test_split"].flatMap(Double.init), share > 0 && share < 1,
              let seed = info.extra["split_seed"].flatMap(Int.init) else {
            return d.splitPerClass(trainPerClass: 5, seed: 0, atMostHalf: true)
        }
        guard d.classNames == info.classNames else {
            throw StrataError("\(data): its classes (\(d.classNames.joined(separator: ", "))) are not the \(info.classNames.count) the model was trained on (\(info.classNames.joined(separator: ", ")))")
        }
        return d.splitPerClass(testShare: share, seed: seed)
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

    @Option(help: "ONNX models without Strata's metadata: the per-channel mean subtracted from pixels scaled to [0, 1] (e.g. 0.485,0.456,0.406; default 0).") var mean: String?
    @Option(help: "ONNX models without Strata's metadata: the per-channel standard deviation pixels are divided by after the mean (e.g. 0.229,0.224,0.225; default 1).") var std: String?
    @Option(help: "ONNX models without Strata's metadata: the class names, comma-separated, in the order of the model's outputs (default: class 0, class 1, ...).") var classes: String?

    func validate() throws {
        if let arch, ModelZoo.entry(arch) == nil { throw ValidationError("--arch \(arch): unknown architecture (known: \(ModelZoo.names.joined(separator: ", ")))") }
        if (mean != nil || std != nil || classes != nil) && !model.hasSuffix(".onnx") {
            throw ValidationError("--mean, --std and --classes are for ONNX models; a Strata model file carries its own")
        }
        for (flag, value) in [("--mean", mean), ("--std", std)] {
            guard let value else { continue }
            guard let v = Self.floats(value), !v.isEmpty, v.count <= 4 else { throw ValidationError("\(flag) \(value): give 1 to 4 comma-separated numbers") }
            if flag == "--std", v.contains(where: { $0 <= 0 }) { throw ValidationError("--std \(value): every value must be above 0") }
        }
        if let classes, classes.split(separator: ",", omittingEmptySubsequences: false).contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw ValidationError("--classes \(classes): a class name is empty")
        }
    }

    static func floats(_ s: String) -> [Float]? {
        let v = s.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        return v.contains(where: { $0 == nil || !$0!.isFinite }) ? nil : v.map { $0! }
    }

    func load() throws -> SavedModel {
        if model.hasSuffix(".onnx") {
            guard arch == nil else { throw StrataError("--arch is for weights-only safetensors files, not ONNX models") }
            var saved = try OnnxModel(path: model).savedModel()
            if mean != nil || std != nil {
                let m = mean.flatMap(Self.floats) ?? saved.info.normalization.mean, s = std.flatMap(Self.floats) ?? saved.info.normalization.std
                saved.info.normalization = Normalization(scale: 1 / 255, mean: m, std: s)
            }
            if let classes {
                let names = classes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard names.count == saved.info.classNames.count else {
                    throw StrataError("--classes: \(names.count) names, but \(model) gives \(saved.info.classNames.count) scores")
                }
                saved.info.classNames = names
            }
            return saved
        }
        do { return try SavedModel.load(model, arch: arch) } catch let e as StrataError where arch == nil && e.message.contains("weights only") {
            throw StrataError(e.message + ": pass --arch")
        }
    }
}

func printJSON(_ object: Any) { print(jsonLine(object)) }
