import CStrata
import Foundation

extension Tensor {
    /// A tensor filled with `value`.
    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        var t = Tensor(uninitializedShape: shape)
        sk_fill(t.count, value, t.data)
        t.node = nil
        return t
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { full(shape, 0) }

    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { full(shape, 1) }

    /// Zeros with the shape of `other`.
    public static func zeros(like other: Tensor) -> Tensor { zeros(other.shape) }

    /// Ones with the shape of `other`.
    public static func ones(like other: Tensor) -> Tensor { ones(other.shape) }

    /// `start, start + step, ...` up to but not including `end` (1-D).
    ///
    /// ```swift
    /// Tensor.arange(0, 5)        // [0, 1, 2, 3, 4]
    /// Tensor.arange(1, 2, step: 0.25)
    /// ```
    public static func arange(_ start: Float, _ end: Float, step: Float = 1) -> Tensor {
        shapeCheck(step != 0, "arange", "step must not be 0")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        let t = Tensor(uninitializedShape: [n])
        for i in 0..<n { t.data[i] = start + Float(i) * step }
        return t
    }

    /// `0, 1, ..., n - 1`.
    public static func arange(_ n: Int) -> Tensor { arange(0, Float(n)) }

    /// Samples from N(mean, std^2). With a seed the result is reproducible on its own; without
    /// one it draws from `RandomGenerator.global`.
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1, seed: Int? = nil) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if randomInitSkipped { return t }
        func fill(_ rng: inout RandomGenerator) {
            for i in 0..<t.count { t.data[i] = mean + std * rng.nextNormal() }
        }
        if let seed { var rng = RandomGenerator(seed: seed); fill(&rng) } else { fill(&RandomGenerator.global) }
        return t
    }

    /// Samples uniformly from [low, high).
    public static func rand(_ shape: [Int], low: Float = 0, high: Float = 1, seed: Int? = nil) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if randomInitSkipped { return t }
        func fill(_ rng: inout RandomGenerator) {
            for i in 0..<t.count { t.data[i] = low + (high - low) * rng.nextFloat() }
        }
        if let seed { var rng = RandomGenerator(seed: seed); fill(&rng) } else { fill(&RandomGenerator.global) }
        return t
    }

    /// Same as `randn`, drawing from the given generator.
    public static func randn(_ shape: [Int], using rng: inout RandomGenerator, mean: Float = 0, std: Float = 1) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if randomInitSkipped { return t }
        for i in 0..<t.count { t.data[i] = mean + std * rng.nextNormal() }
        return t
    }

    /// Same as `rand`, drawing from the given generator.
    public static func rand(_ shape: [Int], using rng: inout RandomGenerator, low: Float = 0, high: Float = 1) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        if randomInitSkipped { return t }
        for i in 0..<t.count { t.data[i] = low + (high - low) * rng.nextFloat() }
        return t
    }

    /// Runs `body` with random initialisation skipped on this thread: `rand` and `randn` return
    /// their tensors unfilled (untouched pages cost neither time nor memory). For building a model
    /// whose every weight is then loaded from a file: an architecture read from a hostile file may
    /// ask for a gigabyte of weights, and drawing them would take seconds before the file is found
    /// to lack them.
    ///
    /// ```swift
    /// let model = try Tensor.withoutRandomInit { try ModuleRegistry.build(spec) }
    /// try model.loadStateDict(weights)   // every tensor must be there
    /// ```
    public static func withoutRandomInit<T>(_ body: () throws -> T) rethrows -> T {
        let key = "strata.skipRandomInit", dict = Thread.current.threadDictionary
        let before = dict[key]
        dict[key] = true
        defer { dict[key] = before }
        return try body()
    }

    static var randomInitSkipped: Bool { Thread.current.threadDictionary["strata.skipRandomInit"] as? Bool == true }

    /// The identity matrix.
    public static func eye(_ n: Int) -> Tensor {
        let t = zeros([n, n])
        for i in 0..<n { t.data[i * n + i] = 1 }
        return t
    }
}
