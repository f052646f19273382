import Foundation
import StrataCore

/// Turns modules into JSON-ready architecture descriptions and back, so a model file can rebuild
/// its model. Built-in layers are registered; register your own types with `register`.
///
/// ```swift
/// let spec = ModuleRegistry.spec(of: model)        // ["type": "Sequential", "layers": [...]]
/// let copy = try ModuleRegistry.build(spec)        // same architecture, fresh weights
/// ```
public enum ModuleRegistry {
    public typealias Builder = (_ spec: [String: Any]) throws -> Module

    nonisolated(unsafe) private static var builders: [String: Builder] = builtins()

    public static func register(_ type: String, _ builder: @escaping Builder) { builders[type] = builder }

    /// The architecture of `module`: its type, constructor arguments and children.
    public static func spec(of module: Module) -> [String: Any] {
        var s = module.config
        s["type"] = module.typeName
        if let seq = module as? Sequential { s["layers"] = seq.layers.map { spec(of: $0) } }
        if let res = module as? Residual { s["body"] = spec(of: res.body) }
        return s
    }

    /// A new module (freshly initialised) for an architecture description.
    public static func build(_ spec: [String: Any]) throws -> Module {
        guard let type = spec["type"] as? String else { throw StrataError("architecture: entry without a \"type\": \(spec)") }
        guard let b = builders[type] else { throw StrataError("architecture: unknown layer type \"\(type)\"") }
        return try b(spec)
    }

    public static func int(_ s: [String: Any], _ key: String, _ def: Int? = nil) throws -> Int {
        if let v = s[key] as? Int { return v }
        if let v = s[key] as? Double, v == v.rounded() { return Int(v) }
        if let def { return def }
        throw StrataError("architecture: \(s["type"] ?? "layer") needs an integer \"\(key)\"")
    }

    public static func float(_ s: [String: Any], _ key: String, _ def: Float) -> Float {
        if let v = s[key] as? Double { return Float(v) }
        if let v = s[key] as? Int { return Float(v) }
        return def
    }

    public static func size2(_ s: [String: Any], _ key: String, _ def: Size2) throws -> Size2 {
        guard let v = s[key] else { return def }
        if let a = v as? [Int], a.count == 2 { return Size2(a[0], a[1]) }
        if let a = v as? [Double], a.count == 2 { return Size2(Int(a[0]), Int(a[1])) }
        if let i = v as? Int { return Size2(i, i) }
        throw StrataError("architecture: \"\(key)\" of \(s["type"] ?? "layer") must be [h, w]")
    }

    private static func builtins() -> [String: Builder] {
        [
            "Linear": { Linear(try int($0, "in"), try int($0, "out"), bias: ($0["bias"] as? Bool) ?? true) },
            "Conv2D": { s in
                Conv2D(try int(s, "in"), try int(s, "out"), kernelSize: try size2(s, "kernel", 3), stride: try size2(s, "stride", 1),
                       padding: try size2(s, "padding", 0), dilation: try size2(s, "dilation", 1), groups: try int(s, "groups", 1),
                       bias: (s["bias"] as? Bool) ?? true)
            },
            "MaxPool2D": { s in MaxPool2D(try size2(s, "kernel", 2), stride: try size2(s, "stride", try size2(s, "kernel", 2)), padding: try size2(s, "padding", 0)) },
            "AvgPool2D": { s in AvgPool2D(try size2(s, "kernel", 2), stride: try size2(s, "stride", try size2(s, "kernel", 2)), padding: try size2(s, "padding", 0)) },
            "GlobalAvgPool": { _ in GlobalAvgPool() },
            "Flatten": { _ in Flatten() },
            "Identity": { _ in Identity() },
            "ReLU": { _ in ReLU() },
            "LeakyReLU": { LeakyReLU(float($0, "slope", 0.01)) },
            "GELU": { _ in GELU() },
            "Sigmoid": { _ in Sigmoid() },
            "Tanh": { _ in Tanh() },
            "Softmax": { Softmax(axis: try int($0, "axis", -1)) },
            "LogSoftmax": { LogSoftmax(axis: try int($0, "axis", -1)) },
            "Dropout": { Dropout(float($0, "p", 0.5)) },
            "BatchNorm1d": { BatchNorm1d(try int($0, "features"), eps: float($0, "eps", 1e-5), momentum: float($0, "momentum", 0.1)) },
            "BatchNorm2d": { BatchNorm2d(try int($0, "features"), eps: float($0, "eps", 1e-5), momentum: float($0, "momentum", 0.1)) },
            "LayerNorm": { s in
                let shape = (s["shape"] as? [Int]) ?? (s["shape"] as? [Double])?.map { Int($0) } ?? []
                guard !shape.isEmpty else { throw StrataError("architecture: LayerNorm needs a \"shape\"") }
                return LayerNorm(shape, eps: float(s, "eps", 1e-5))
            },
            "Embedding": { Embedding(try int($0, "count"), try int($0, "dim")) },
            "ResidualBlock": { ResidualBlock(try int($0, "in"), try int($0, "out"), stride: try int($0, "stride", 1)) },
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
