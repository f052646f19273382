/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// ```swift
/// var rng = RandomGenerator(seed: 42)
/// let u = rng.nextFloat()      // [0, 1)
/// let z = rng.nextNormal()     // N(0, 1)
/// ```
public struct RandomGenerator: RandomNumberGenerator {
    @usableFromInline var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    @usableFromInline var spareNormal: Float?

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
        spareNormal = nil
    }

    public init(seed: Int) { self.init(seed: UInt64(bitPattern: Int64(seed))) }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inlinable
    public mutating func nextFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Standard normal (Box-Muller; the second value of each pair is kept for the next call).
    @inlinable
    public mutating func nextNormal() -> Float {
        if let z = spareNormal { spareNormal = nil; return z }
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = (-2 * _log(u1)).squareRoot()
        let a = 2 * Double.pi * u2
        spareNormal = Float(r * _sin(a))
        return Float(r * _cos(a))
    }

    /// Uniform integer in [0, n).
    @inlinable
    public mutating func nextInt(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// The generator's full state (for checkpoints).
    public var state: [UInt64] {
        get { [s0, s1, s2, s3] }
        set {
            precondition(newValue.count == 4, "RandomGenerator.state needs 4 words")
            (s0, s1, s2, s3) = (newValue[0], newValue[1], newValue[2], newValue[3])
            spareNormal = nil
        }
    }

    /// A random permutation of 0..<n (Fisher-Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, nextInt(i + 1)) } }
        return p
    }

    /// The generator used when no seed is given; reset it with `RandomGenerator.manualSeed(_:)`.
    nonisolated(unsafe) public static var global = RandomGenerator(seed: 0)

    /// Seeds the global generator (like `torch.manual_seed`).
    public static func manualSeed(_ seed: Int) { global = RandomGenerator(seed: seed) }
}

import Foundation
@usableFromInline func _log(_ x: Double) -> Double { Foundation.log(x) }
@usableFromInline func _sin(_ x: Double) -> Double { Foundation.sin(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Foundation.cos(x) }
