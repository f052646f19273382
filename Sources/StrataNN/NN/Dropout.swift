import StrataCore

/// Zeroes each element with probability `p` in training mode and scales the rest by 1/(1-p);
/// the identity in evaluation mode. Draws from `RandomGenerator.global` (seed it for
/// reproducible runs).
public final class Dropout: Module {
    public let p: Float

    public init(_ p: Float = 0.5) {
        precondition(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got \(p)")
        self.p = p
    }

    public override func forward(_ x: Tensor) -> Tensor {
        guard isTraining, p > 0 else { return x }
        let mask = Tensor(uninitializedShape: x.shape)
        let keep = 1 - p, scale = 1 / keep
        // Keep where rng.nextFloat() < keep, i.e. where its 24 random bits are below ceil(keep * 2^24).
        // Branch-free (a coin flip mispredicts half the time), on a local copy of the generator
        // (the global's access checks per element cost more than the drawing).
        var rng = RandomGenerator.global
        let threshold = UInt64((keep * 16_777_216).rounded(.up)), scaleBits = scale.bitPattern
        let m = mask.data
        for i in 0..<mask.count {
            let below = UInt32(truncatingIfNeeded: ((rng.next() >> 40) &- threshold) >> 63)   // 1 or 0
            m[i] = Float(bitPattern: scaleBits & (0 &- below))
        }
        RandomGenerator.global = rng
        return x * mask
    }

    public override var config: [String: Any] { ["p": Double(p)] }
}

/// A lookup table: indices (whole numbers stored as Float) to rows of `weight` `[count, dim]`.
/// Initialised N(0, 1) like PyTorch.
///
/// ```swift
/// let emb = Embedding(10_000, 64)
/// let v = emb(Tensor([[3, 17, 0]]))    // [1, 3] -> [1, 3, 64]
/// ```
public final class Embedding: Module {
    public let weight: Parameter
    public let count: Int, dim: Int

    public init(_ count: Int, _ dim: Int) {
        self.count = count
        self.dim = dim
        weight = Parameter(Tensor.randn([count, dim]))
    }

    public override func forward(_ indices: Tensor) -> Tensor {
        let idx = indices.scalars.map { v -> Int in
            let i = Int(v)
            precondition(Float(i) == v && i >= 0 && i < count, "Embedding: index \(v) out of range for \(count) rows")
            return i
        }
        return weight.value.indexSelect(axis: 0, indices: idx).reshape(indices.shape + [dim])
    }

    public override var config: [String: Any] { ["count": count, "dim": dim] }
}
