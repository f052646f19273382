import Foundation
import StrataCore

/// How raw 8-bit pixels become model input: `(pixel * scale - mean[c]) / std[c]`, or with
/// `perImage`, `pixel * scale` shifted and scaled to each image's own mean 0 and std 1.
public struct Normalization: Codable, Equatable {
    public var scale: Float
    public var mean: [Float]
    public var std: [Float]
    public var perImage: Bool

    public init(scale: Float = 1 / 255, mean: [Float] = [0], std: [Float] = [1], perImage: Bool = false) {
        self.scale = scale
        self.mean = mean
        self.std = std
        self.perImage = perImage
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        scale = try c.decode(Float.self, forKey: .scale)
        mean = try c.decode([Float].self, forKey: .mean)
        std = try c.decode([Float].self, forKey: .std)
        perImage = try c.decodeIfPresent(Bool.self, forKey: .perImage) ?? false
    }
}

/// One epoch of training, as stored in a model file's history.
public struct EpochRecord: Codable, Equatable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var seconds: Double
    public var samplesPerSecond: Double
    public var learningRate: Double

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, valLoss: Double? = nil, valAccuracy: Double? = nil,
                seconds: Double, samplesPerSecond: Double, learningRate: Double) {
        (self.epoch, self.trainLoss, self.trainAccuracy, self.valLoss, self.valAccuracy) = (epoch, trainLoss, trainAccuracy, valLoss, valAccuracy)
        (self.seconds, self.samplesPerSecond, self.learningRate) = (seconds, samplesPerSecond, learningRate)
    }
}

/// What a model file says about its model besides the weights.
public struct ModelInfo {
    public var architecture: [String: Any]
    public var classNames: [String]
    /// `[channels, height, width]` of one input.
    public var inputShape: [Int]
    public var normalization: Normalization
    public var history: [EpochRecord]
    /// Free-form strings (dataset, command line, ...).
    public var extra: [String: String]

    public init(architecture: [String: Any], classNames: [String], inputShape: [Int], normalization: Normalization = Normalization(),
                history: [EpochRecord] = [], extra: [String: String] = [:]) {
        (self.architecture, self.classNames, self.inputShape) = (architecture, classNames, inputShape)
        (self.normalization, self.history, self.extra) = (normalization, history, extra)
    }

    /// The description of any classifier: its architecture read from `model`, its class names,
    /// one input's shape without the batch dimension, and how pixels are normalised.
    ///
    /// ```swift
    /// let info = ModelInfo(model: net, classNames: ["cat", "dog"], inputShape: [3, 32, 32])
    /// try SavedModel(model: net, info: info).save(to: "pets.safetensors")
    /// ```
    public init(model: Module, classNames: [String], inputShape: [Int], normalization: Normalization = Normalization()) {
        self.init(architecture: ModuleRegistry.spec(of: model), classNames: classNames, inputShape: inputShape, normalization: normalization)
    }
}

/// A model with its description, stored as one `.safetensors` file: weights under their PyTorch
/// `state_dict` names, everything else as JSON strings in `__metadata__`.
///
/// ```swift
/// try SavedModel(model: net, info: info).save(to: "fashion.safetensors")
/// let loaded = try SavedModel.load("fashion.safetensors")
/// let probs = noGrad { loaded.model(x).softmax() }
/// ```
public struct SavedModel {
    public let model: Module
    public var info: ModelInfo

    public init(model: Module, info: ModelInfo) {
        self.model = model
        self.info = info
    }

    /// Metadata keys written by Strata.
    enum Key {
        static let format = "format", architecture = "architecture", classNames = "class_names", inputShape = "input_shape"
        static let normalization = "normalization", history = "history"
    }

    /// The metadata strings for `info`.
    public static func metadata(_ info: ModelInfo) throws -> [String: String] {
        func json(_ v: Any) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]), as: UTF8.self)
        }
        try ModuleRegistry.checkBuildable(info.architecture)
        var m = info.extra
        m[Key.format] = "strata"
        m[Key.architecture] = try json(info.architecture)
        m[Key.classNames] = try json(info.classNames)
        m[Key.inputShape] = try json(info.inputShape)
        let enc = JSONEncoder.sortedKeys
        m[Key.normalization] = String(decoding: try enc.encode(info.normalization), as: UTF8.self)
        m[Key.history] = String(decoding: try enc.encode(info.history), as: UTF8.self)
        return m
    }

    /// Writes the model atomically; `extraTensors` (e.g. optimizer state) are stored beside the weights.
    public func save(to path: String, extraTensors: [String: Tensor] = [:], extraMetadata: [String: String] = [:], half: Bool = false) throws {
        var tensors = model.stateDict()
        for (k, v) in extraTensors { tensors[k] = v }
        var meta = try SavedModel.metadata(info)
        for (k, v) in extraMetadata { meta[k] = v }
        try Safetensors.write(tensors, metadata: meta, half: half, to: path)
    }

    /// Loads a model file. Files written by Strata carry their architecture. A weights-only file
    /// (for example `safetensors.torch.save_file(model.state_dict(), ...)`) needs `arch`, a name
    /// from `ModelZoo`. Returns the tensors that are not weights (optimizer state) too.
    public static func load(_ path: String, arch: String? = nil) throws -> SavedModel {
        try loadWithExtras(path, arch: arch).0
    }

    public static func loadWithExtras(_ path: String, arch: String? = nil) throws -> (SavedModel, [String: Tensor], [String: String]) {
        let (tensors, meta) = try Safetensors.read(path)
        func parse<T>(_ key: String, _ type: T.Type) throws -> T? {
            guard let s = meta[key] else { return nil }
            guard let v = try? JSONSerialization.jsonObject(with: Data(s.utf8), options: [.fragmentsAllowed]) as? T else {
                throw StrataError("\(path): metadata '\(key)' is not valid")
            }
            return v
        }
        var info: ModelInfo
        let model: Module
        if let arch {
            guard let zoo = ModelZoo.entry(arch) else {
                throw StrataError("unknown architecture \(arch) (known: \(ModelZoo.names.joined(separator: ", ")))")
            }
            model = zoo.build()
            info = zoo.info(model)
        } else if let spec = try parse(Key.architecture, [String: Any].self) {
            // Every weight comes from the file (loadStateDict requires them all), so none is drawn.
            do { model = try Tensor.withoutRandomInit { try ModuleRegistry.build(spec) } } catch let e as StrataError { throw StrataError("\(path): \(e.message)") }
            info = ModelInfo(architecture: spec, classNames: [], inputShape: [])
        } else {
            throw StrataError("\(path): holds weights only (no architecture in its metadata); name its architecture (\(ModelZoo.namesInWords))")
        }
        if let names = try parse(Key.classNames, [String].self) { info.classNames = names }
        if let shape = try parse(Key.inputShape, [Int].self) { info.inputShape = shape }
        let dec = JSONDecoder()
        if let s = meta[Key.normalization] {
            guard let n = try? dec.decode(Normalization.self, from: Data(s.utf8)) else { throw StrataError("\(path): metadata 'normalization' is not valid") }
            info.normalization = n
        }
        if let s = meta[Key.history] {
            guard let h = try? dec.decode([EpochRecord].self, from: Data(s.utf8)) else { throw StrataError("\(path): metadata 'history' is not valid") }
            info.history = h
        }
        let known: Set<String> = [Key.format, Key.architecture, Key.classNames, Key.inputShape, Key.normalization, Key.history]
        for (k, v) in meta where !known.contains(k) { info.extra[k] = v }
        guard !info.inputShape.isEmpty else { throw StrataError("\(path): metadata lacks the input shape") }
        if info.classNames.isEmpty { throw StrataError("\(path): metadata lacks the class names") }
        // Weights by name; optimizer state and PyTorch's BatchNorm step counters are not weights.
        var weights: [String: Tensor] = [:], extras: [String: Tensor] = [:]
        for (k, v) in tensors {
            if k.hasPrefix("optimizer.") { extras[k] = v } else if !k.hasSuffix("num_batches_tracked") { weights[k] = v }
        }
        try model.loadStateDict(weights, source: path)
        try checkShapes(model, info, path)
        return (SavedModel(model: model, info: info), extras, meta)
    }

    /// Most values one input may hold (64 MiB of Float32): `input_shape` is read from a file.
    public static let maxInputValues = 1 << 24

    /// Refuses an `input_shape` that is not positive, too large, or does not fit the model's
    /// layers, and class names that do not match a classifier's outputs.
    static func checkShapes(_ model: Module, _ info: ModelInfo, _ path: String) throws {
        let shape = info.inputShape
        guard shape.allSatisfy({ $0 >= 1 }), let n = checkedProduct(shape), n <= maxInputValues else {
            throw StrataError("\(path): metadata 'input_shape' \(shape) must be positive sizes of at most \(maxInputValues) values in all")
        }
        let out: [Int]?
        do { out = try ShapeInference.outputShape(of: model, for: [1] + shape) } catch let e as StrataError {
            throw StrataError("\(path): metadata 'input_shape' \(shape) does not fit the model: \(e.message)")
        }
        if let out, out.count == 2, out[1] != info.classNames.count {
            throw StrataError("\(path): the model gives \(out[1]) outputs but its metadata names \(info.classNames.count) class\(info.classNames.count == 1 ? "" : "es")")
        }
    }
}
