import Foundation
import StrataCore

/// A layer that model files can rebuild: `build` makes a fresh module from the architecture
/// entry that `ModuleRegistry.spec(of:)` wrote from its `config`. `ModuleRegistry` finds a
/// conforming type by its name, so it needs no registration (Swift on Linux cannot list a
/// protocol's conformances, but it can look a type up by its module-qualified name).
public protocol BuildableModule: Module {
    static func build(_ spec: [String: Any]) throws -> Module
}

/// A custom layer whose constructor arguments are one `Codable` value: conform, and a model
/// holding it saves in one process and loads in another, with no other code.
///
/// ```swift
/// final class Scale: Module, ConfigurableModule {
///     struct Configuration: Codable { var factor: Float }
///     let configuration: Configuration
///     init(configuration: Configuration) { self.configuration = configuration }
///     override func forward(_ x: Tensor) -> Tensor { x * configuration.factor }
/// }
/// try SavedModel(model: Sequential(Linear(4, 2), Scale(configuration: .init(factor: 2))), info: info).save(to: "m.safetensors")
/// let back = try SavedModel.load("m.safetensors")      // Scale is found by its name
/// ```
public protocol ConfigurableModule: BuildableModule {
    associatedtype Configuration: Codable
    var configuration: Configuration { get }
    init(configuration: Configuration) throws
}

extension ConfigurableModule {
    public static func build(_ spec: [String: Any]) throws -> Module {
        guard let c = spec["configuration"] else { throw StrataError("architecture: \(Self.self) needs a \"configuration\"") }
        do {
            let data = try JSONSerialization.data(withJSONObject: c, options: [.fragmentsAllowed])
            return try Self(configuration: try JSONDecoder().decode(Configuration.self, from: data))
        } catch let e as StrataError {
            throw e
        } catch {
            throw StrataError("architecture: the configuration of \(Self.self) does not decode (\(error))")
        }
    }
}

/// Turns modules into JSON-ready architecture descriptions and back, so a model file can rebuild
/// its model. The built-in layers are listed here; any `BuildableModule` (or
/// `ConfigurableModule`) is found by its type name; `register` adds a builder by hand.
///
/// ```swift
/// let spec = ModuleRegistry.spec(of: model)        // ["type": "Sequential", "layers": [...]]
/// let copy = try ModuleRegistry.build(spec)        // same architecture, fresh weights
/// ```
public enum ModuleRegistry {
    public typealias Builder = (_ spec: [String: Any]) throws -> Module

    nonisolated(unsafe) private static var builders: [String: Builder] = builtins()

    /// The library's modules above this one, whose `BuildableModule` types model files name
    /// without their module (`"FaceNet"`, `"TextClassifier"`).
    static let libraryModules = ["StrataNN", "StrataData", "StrataClassic", "StrataInspect", "StrataFaces"]

    /// Adds a builder for the layer type named `type` (its `typeName`).
    public static func register(_ type: String, _ builder: @escaping Builder) { builders[type] = builder }

    /// Adds `type` under its own name, for a `BuildableModule` whose name `ModuleRegistry`
    /// cannot look up by itself (a private or generic type).
    public static func register<M: BuildableModule>(_ type: M.Type) { builders[name(of: type)] = { try M.build($0) } }

    /// The name a model file stores for a module type: the bare name for the library's own
    /// types, `Module.Type` for everyone else's.
    public static func name(of type: Module.Type) -> String {
        let full = String(reflecting: type)
        for m in libraryModules where full.hasPrefix(m + ".") { return String(full.dropFirst(m.count + 1)) }
        return full
    }

    /// The architecture of `module`: its type, constructor arguments and children.
    public static func spec(of module: Module) -> [String: Any] {
        var s = module.config
        let qualified = name(of: type(of: module))
        s["type"] = !qualified.contains(".") || builders[module.typeName] != nil ? module.typeName : qualified
        if let c = module as? any ConfigurableModule { s["configuration"] = encode(c) }
        if let seq = module as? Sequential { s["layers"] = seq.layers.map { spec(of: $0) } }
        if let res = module as? Residual { s["body"] = spec(of: res.body) }
        return s
    }

    private static func encode<C: ConfigurableModule>(_ m: C) -> Any {
        guard let data = try? JSONEncoder().encode(m.configuration),
              let obj = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return NSNull() }
        return obj
    }

    /// The builder for a stored type name, or nil.
    static func builder(_ type: String) -> Builder? {
        if let b = builders[type] { return b }
        let candidates = type.contains(".") ? [type] : libraryModules.map { "\($0).\(type)" }
        for c in candidates {
            if let t = _typeByName(c) as? any BuildableModule.Type { return { try t.build($0) } }
        }
        return nil
    }

    /// A new module (freshly initialised) for an architecture description.
    public static func build(_ spec: [String: Any]) throws -> Module {
        guard let type = spec["type"] as? String else { throw StrataError("architecture: entry without a \"type\": \(spec)") }
        guard let b = builder(type) else { throw StrataError("architecture: unknown layer type \"\(type)\"") }
        return try b(spec)
    }

    /// Throws when a model file with this architecture (from `spec(of:)`) could not be loaded
    /// again: a layer whose type `build` cannot find. The message says how to make it known.
    public static func checkBuildable(_ architecture: [String: Any]) throws {
        func walk(_ v: Any) throws {
            if let d = v as? [String: Any] {
                if let t = d["type"] as? String, builder(t) == nil {
                    throw StrataError("layer type \(t) cannot be saved: a model file could not rebuild it; make it conform to "
                                      + "ConfigurableModule (its constructor arguments as a Codable configuration) or BuildableModule, "
                                      + "or call ModuleRegistry.register")
                }
                for (_, x) in d { try walk(x) }
            } else if let a = v as? [Any] {
                for x in a { try walk(x) }
            }
        }
        try walk(architecture)
    }

    /// Largest size an architecture entry may give (a layer's width, a count): model files are
    /// read from disk, so a size is checked before anything is allocated by it.
    public static let maxSize = 1 << 24
    /// Most weights one layer may hold (1 GiB of Float32).
    public static let maxWeights = 1 << 28

    /// An integer of an architecture entry: a size in 1...`maxSize` (an `"axis"` may be negative).
    public static func int(_ s: [String: Any], _ key: String, _ def: Int? = nil) throws -> Int {
        let value: Int
        if let v = s[key] as? Int { value = v } else if let v = s[key] as? Double, v == v.rounded(), Swift.abs(v) < 1e15 { value = Int(v) } else if let def { return def } else {
            throw StrataError("architecture: \(s["type"] ?? "layer") needs an integer \"\(key)\"")
        }
        if key == "axis" {
            guard Swift.abs(value) <= 64 else { throw StrataError("architecture: \(s["type"] ?? "layer") has \"axis\" \(value), out of range") }
        } else {
            guard value >= 1 && value <= maxSize else {
                throw StrataError("architecture: \(s["type"] ?? "layer") has \"\(key)\" \(value), out of range (1...\(maxSize))")
            }
        }
        return value
    }

    /// A list of sizes of an architecture entry (widths, an input size): 1...64 entries, each in
    /// 1...`maxSize`; `def` when the key is missing.
    public static func ints(_ s: [String: Any], _ key: String, _ def: [Int]) throws -> [Int] {
        guard let v = s[key] else { return def }
        let values = (v as? [Int]) ?? (v as? [Double])?.compactMap { $0 == $0.rounded() && Swift.abs($0) < 1e15 ? Int($0) : nil }
        guard let values, values.count == (v as? [Any])?.count, (1...64).contains(values.count), values.allSatisfy({ (1...maxSize).contains($0) }) else {
            throw StrataError("architecture: \(s["type"] ?? "layer") has \"\(key)\" \(v), not a list of 1 to 64 sizes in 1...\(maxSize)")
        }
        return values
    }

    /// A probability of an architecture entry (a dropout rate), in [0, 1).
    public static func probability(_ s: [String: Any], _ key: String, _ def: Float) throws -> Float {
        let p = float(s, key, def)
        guard p >= 0 && p < 1 else { throw StrataError("architecture: \(s["type"] ?? "layer") has \"\(key)\" \(p), not in [0, 1)") }
        return p
    }

    /// Refuses a layer whose weights (the product of `dims`) would pass `maxWeights`.
    public static func weights(_ s: [String: Any], _ dims: [Int]) throws {
        guard let n = checkedProduct(dims), n <= maxWeights else {
            throw StrataError("architecture: \(s["type"] ?? "layer") of sizes \(dims) would hold over \(maxWeights) weights")
        }
    }

    public static func float(_ s: [String: Any], _ key: String, _ def: Float) -> Float {
        if let v = s[key] as? Double { return Float(v) }
        if let v = s[key] as? Int { return Float(v) }
        return def
    }

    public static func size2(_ s: [String: Any], _ key: String, _ def: Size2) throws -> Size2 {
        guard let v = s[key] else { return def }
        if let a = v as? [Int], a.count == 2 { return Size2(a[0], a[1]) }
        if let a = v as? [Double], a.count == 2, a.allSatisfy({ $0 == $0.rounded() && Swift.abs($0) <= 1e9 }) { return Size2(Int(a[0]), Int(a[1])) }
        if let i = v as? Int { return Size2(i, i) }
        throw StrataError("architecture: \"\(key)\" of \(s["type"] ?? "layer") must be [h, w]")
    }

    /// A true-or-false setting of an architecture entry; `def` when the key is missing.
    public static func flag(_ s: [String: Any], _ key: String, _ def: Bool) throws -> Bool {
        guard let v = s[key] else { return def }
        guard let b = v as? Bool else { throw StrataError("architecture: \(s["type"] ?? "layer") has \"\(key)\" \(v), not true or false") }
        return b
    }

    /// A pooling layer's kernel (2 by default), stride (the kernel), padding (0), dilation (1;
    /// refused where not `dilated`: averages have none) and ceil mode (false).
    private static func pool(_ s: [String: Any], dilated: Bool) throws -> (kernel: Size2, stride: Size2, padding: Size2, dilation: Size2, ceilMode: Bool) {
        let kernel = try size2(s, "kernel", 2), stride = try size2(s, "stride", kernel), padding = try size2(s, "padding", 0)
        let dilation = try size2(s, "dilation", 1)
        guard dilated || dilation == 1 else { throw StrataError("architecture: \(s["type"] ?? "pooling") has no dilation, got \(dilation)") }
        guard kernel.h >= 1, kernel.w >= 1, stride.h >= 1, stride.w >= 1, padding.h >= 0, padding.w >= 0, dilation.h >= 1, dilation.w >= 1,
              [kernel.h, kernel.w, stride.h, stride.w, dilation.h, dilation.w].allSatisfy({ $0 <= 4096 }),
              padding.h * 2 <= kernel.h, padding.w * 2 <= kernel.w else {
            throw StrataError("architecture: \(s["type"] ?? "pooling") has kernel \(kernel), stride \(stride), padding \(padding), dilation \(dilation): out of range")
        }
        return (kernel, stride, padding, dilation, try flag(s, "ceil_mode", false))
    }

    /// An adaptive pooling layer's output size: 1...4096 on each side.
    private static func adaptiveSize(_ s: [String: Any]) throws -> Size2 {
        let size = try size2(s, "size", 1)
        guard (1...4096).contains(size.h), (1...4096).contains(size.w) else {
            throw StrataError("architecture: \(s["type"] ?? "pooling") has output size \(size): out of range (1...4096)")
        }
        return size
    }

    /// A 1-D adaptive pooling layer's output length: 1...4096.
    private static func adaptiveLength(_ s: [String: Any]) throws -> Int {
        let size = try int(s, "size", 1)
        guard size <= 4096 else { throw StrataError("architecture: \(s["type"] ?? "pooling") has output size \(size): out of range (1...4096)") }
        return size
    }

    /// `pool` for a 1-D pooling layer.
    private static func pool1d(_ s: [String: Any], dilated: Bool) throws -> (kernel: Int, stride: Int, padding: Int, dilation: Int, ceilMode: Bool) {
        let kernel = try int(s, "kernel", 2), stride = try int(s, "stride", kernel), padding = try count(s, "padding")
        let dilation = try int(s, "dilation", 1)
        guard dilated || dilation == 1 else { throw StrataError("architecture: \(s["type"] ?? "pooling") has no dilation, got \(dilation)") }
        guard kernel <= 4096, stride <= 4096, dilation <= 4096, padding * 2 <= kernel else {
            throw StrataError("architecture: \(s["type"] ?? "pooling") has kernel \(kernel), stride \(stride), padding \(padding), dilation \(dilation): out of range")
        }
        return (kernel, stride, padding, dilation, try flag(s, "ceil_mode", false))
    }

    /// A count of an architecture entry that may be 0 (padding): 0...`maxSize`, 0 when missing.
    private static func count(_ s: [String: Any], _ key: String) throws -> Int {
        guard s[key] != nil else { return 0 }
        if let v = s[key] as? Int, v == 0 { return 0 }
        if let v = s[key] as? Double, v == 0 { return 0 }
        return try int(s, key)
    }

    private static func builtins() -> [String: Builder] {
        [
            "Linear": { s in
                let (i, o) = (try int(s, "in"), try int(s, "out"))
                try weights(s, [i, o])
                return Linear(i, o, bias: (s["bias"] as? Bool) ?? true)
            },
            "Conv2D": { s in
                let (i, o, g) = (try int(s, "in"), try int(s, "out"), try int(s, "groups", 1))
                let k = try size2(s, "kernel", 3), stride = try size2(s, "stride", 1), pad = try size2(s, "padding", 0), dil = try size2(s, "dilation", 1)
                guard k.h >= 1, k.w >= 1, stride.h >= 1, stride.w >= 1, dil.h >= 1, dil.w >= 1, pad.h >= 0, pad.w >= 0,
                      [k.h, k.w, stride.h, stride.w, dil.h, dil.w, pad.h, pad.w].allSatisfy({ $0 <= 4096 }) else {
                    throw StrataError("architecture: Conv2D has kernel \(k), stride \(stride), dilation \(dil), padding \(pad): out of range")
                }
                guard i % g == 0, o % g == 0 else { throw StrataError("architecture: Conv2D groups \(g) must divide its channels \(i) -> \(o)") }
                try weights(s, [o, i / g, k.h, k.w])
                return Conv2D(i, o, kernelSize: k, stride: stride, padding: pad, dilation: dil, groups: g, bias: (s["bias"] as? Bool) ?? true)
            },
            "ConvTranspose2D": { s in
                let (i, o, g) = (try int(s, "in"), try int(s, "out"), try int(s, "groups", 1))
                let k = try size2(s, "kernel", 3), stride = try size2(s, "stride", 1), pad = try size2(s, "padding", 0)
                let outPad = try size2(s, "output_padding", 0), dil = try size2(s, "dilation", 1)
                guard k.h >= 1, k.w >= 1, stride.h >= 1, stride.w >= 1, dil.h >= 1, dil.w >= 1, pad.h >= 0, pad.w >= 0,
                      outPad.h >= 0, outPad.w >= 0, outPad.h < stride.h, outPad.w < stride.w,
                      [k.h, k.w, stride.h, stride.w, dil.h, dil.w, pad.h, pad.w].allSatisfy({ $0 <= 4096 }) else {
                    throw StrataError("architecture: ConvTranspose2D has kernel \(k), stride \(stride), dilation \(dil), padding \(pad), output padding \(outPad): out of range")
                }
                guard i % g == 0, o % g == 0 else { throw StrataError("architecture: ConvTranspose2D groups \(g) must divide its channels \(i) -> \(o)") }
                try weights(s, [i, o / g, k.h, k.w])
                return ConvTranspose2D(i, o, kernelSize: k, stride: stride, padding: pad, outputPadding: outPad, dilation: dil, groups: g,
                                       bias: (s["bias"] as? Bool) ?? true)
            },
            "Conv1D": { s in
                let (i, o, g) = (try int(s, "in"), try int(s, "out"), try int(s, "groups", 1))
                let (k, stride, dil, pad) = (try int(s, "kernel", 3), try int(s, "stride", 1), try int(s, "dilation", 1), try count(s, "padding"))
                guard [k, stride, dil, pad].allSatisfy({ $0 <= 4096 }) else {
                    throw StrataError("architecture: Conv1D has kernel \(k), stride \(stride), dilation \(dil), padding \(pad): out of range")
                }
                guard i % g == 0, o % g == 0 else { throw StrataError("architecture: Conv1D groups \(g) must divide its channels \(i) -> \(o)") }
                try weights(s, [o, i / g, k])
                return Conv1D(i, o, kernelSize: k, stride: stride, padding: pad, dilation: dil, groups: g, bias: (s["bias"] as? Bool) ?? true)
            },
            "MaxPool1D": { s in
                let p = try pool1d(s, dilated: true)
                return MaxPool1D(p.kernel, stride: p.stride, padding: p.padding, dilation: p.dilation, ceilMode: p.ceilMode)
            },
            "AvgPool1D": { s in
                let p = try pool1d(s, dilated: false)
                return AvgPool1D(p.kernel, stride: p.stride, padding: p.padding, ceilMode: p.ceilMode, countIncludePad: try flag(s, "count_include_pad", true))
            },
            "MaxPool2D": { s in
                let p = try pool(s, dilated: true)
                return MaxPool2D(p.kernel, stride: p.stride, padding: p.padding, dilation: p.dilation, ceilMode: p.ceilMode)
            },
            "AvgPool2D": { s in
                let p = try pool(s, dilated: false)
                return AvgPool2D(p.kernel, stride: p.stride, padding: p.padding, ceilMode: p.ceilMode, countIncludePad: try flag(s, "count_include_pad", true))
            },
            "AdaptiveAvgPool2D": { AdaptiveAvgPool2D(try adaptiveSize($0)) },
            "AdaptiveMaxPool2D": { AdaptiveMaxPool2D(try adaptiveSize($0)) },
            "AdaptiveAvgPool1D": { AdaptiveAvgPool1D(try adaptiveLength($0)) },
            "AdaptiveMaxPool1D": { AdaptiveMaxPool1D(try adaptiveLength($0)) },
            "GlobalAvgPool": { _ in GlobalAvgPool() },
            "GlobalMaxPool": { _ in GlobalMaxPool() },
            "Flatten": { _ in Flatten() },
            "Identity": { _ in Identity() },
            "ReLU": { _ in ReLU() },
            "LeakyReLU": { LeakyReLU(float($0, "slope", 0.01)) },
            "GELU": { _ in GELU() },
            "Sigmoid": { _ in Sigmoid() },
            "Tanh": { _ in Tanh() },
            "Softmax": { Softmax(axis: try int($0, "axis", -1)) },
            "LogSoftmax": { LogSoftmax(axis: try int($0, "axis", -1)) },
            "Dropout": { Dropout(try probability($0, "p", 0.5)) },
            "BatchNorm1d": { BatchNorm1d(try int($0, "features"), eps: float($0, "eps", 1e-5), momentum: float($0, "momentum", 0.1)) },
            "BatchNorm2d": { BatchNorm2d(try int($0, "features"), eps: float($0, "eps", 1e-5), momentum: float($0, "momentum", 0.1)) },
            "LayerNorm": { s in
                let shape = try ints(s, "shape", [])
                guard !shape.isEmpty, (checkedProduct(shape) ?? .max) <= maxSize else {
                    throw StrataError("architecture: LayerNorm needs a \"shape\" of positive sizes, got \(shape)")
                }
                return LayerNorm(shape, eps: float(s, "eps", 1e-5))
            },
            "Embedding": { s in
                let (c, d) = (try int(s, "count"), try int(s, "dim"))
                try weights(s, [c, d])
                return Embedding(c, d)
            },
            "ResidualBlock": { s in
                let (i, o, stride) = (try int(s, "in"), try int(s, "out"), try int(s, "stride", 1))
                try weights(s, [o, Swift.max(i, o), 3, 3])
                return ResidualBlock(i, o, stride: stride)
            },
            "Residual": { s in
                guard let body = s["body"] as? [String: Any] else { throw StrataError("architecture: Residual needs a \"body\"") }
                return Residual(try build(body))
            },
            "Sequential": { s in
                guard let layers = s["layers"] as? [[String: Any]] else { throw StrataError("architecture: Sequential needs \"layers\"") }
                return Sequential(try layers.map { try build($0) })
            },
        ]
    }
}
