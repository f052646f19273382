import Foundation
import StrataCore

/// Multi-head scaled dot-product self-attention with a key padding mask (PyTorch's
/// `nn.MultiheadAttention` parameter names: `in_proj_weight`, `in_proj_bias`, `out_proj`).
///
/// ```swift
/// let mha = MultiHeadAttention(dim: 64, heads: 4)
/// let y = mha.attend(x, keyMask: notPadding)     // [N, T, 64]
/// mha.lastWeights                                // [N, heads, T, T]
/// ```
public final class MultiHeadAttention: Module {
    public let inProjWeight: Parameter, inProjBias: Parameter
    public let outProj: Linear
    public let dim: Int, heads: Int
    /// The attention weights of the last forward pass (for inspection).
    public internal(set) var lastWeights: Tensor?

    public init(dim: Int, heads: Int) {
        precondition(dim % heads == 0, "MultiHeadAttention: \(heads) heads do not divide dimension \(dim)")
        self.dim = dim
        self.heads = heads
        let b = (6 / Float(dim + 3 * dim)).squareRoot()   // Xavier-uniform, as PyTorch initialises in_proj
        inProjWeight = Parameter(Tensor.rand([3 * dim, dim], low: -b, high: b))
        inProjBias = Parameter(Tensor.zeros([3 * dim]))
        outProj = Linear(dim, dim)
        outProj.bias?.assign(Tensor.zeros([dim]))
    }

    /// `x` `[N, T, dim]`; `keyMask` `[N, T]`, 1 for real tokens, 0 for padding (ignored as keys).
    public func attend(_ x: Tensor, keyMask: Tensor?) -> Tensor {
        let (n, t) = (x.shape[0], x.shape[1]), dh = dim / heads
        let qkv = linear(x, weight: inProjWeight.value, bias: inProjBias.value)   // [N, T, 3d]
        func split(_ k: Int) -> Tensor { qkv.slice(axis: 2, start: k * dim, end: (k + 1) * dim).reshape([n, t, heads, dh]).permute(0, 2, 1, 3) }
        let (q, k, v) = (split(0), split(1), split(2))                        // [N, h, T, dh]
        var scores = q.matmul(k.transposed()) * (1 / Float(dh).squareRoot())  // [N, h, T, T]
        if let keyMask { scores = scores + ((keyMask - 1) * 1e9).reshape([n, 1, 1, t]) }
        let w = scores.softmax()
        lastWeights = w.detached()
        let out = w.matmul(v).permute(0, 2, 1, 3).reshape([n, t, dim])
        return outProj(out)
    }

    public override func forward(_ x: Tensor) -> Tensor { attend(x, keyMask: nil) }

    public override var config: [String: Any] { ["dim": dim, "heads": heads] }
}

/// One post-norm Transformer encoder layer (PyTorch's `TransformerEncoderLayer` with ReLU):
/// x = LN(x + drop(attn(x))), x = LN(x + drop(W2 drop(relu(W1 x)))).
public final class TransformerEncoderLayer: Module {
    public let selfAttn: MultiHeadAttention
    public let linear1: Linear, linear2: Linear
    public let norm1: LayerNorm, norm2: LayerNorm
    public let dropout: Dropout, dropout1: Dropout, dropout2: Dropout
    public let dim: Int, heads: Int, feedForward: Int

    public init(dim: Int, heads: Int, feedForward: Int, dropout p: Float = 0.1) {
        self.dim = dim
        self.heads = heads
        self.feedForward = feedForward
        selfAttn = MultiHeadAttention(dim: dim, heads: heads)
        linear1 = Linear(dim, feedForward)
        linear2 = Linear(feedForward, dim)
        norm1 = LayerNorm(dim)
        norm2 = LayerNorm(dim)
        dropout = Dropout(p)
        dropout1 = Dropout(p)
        dropout2 = Dropout(p)
    }

    public func encode(_ x: Tensor, keyMask: Tensor?) -> Tensor {
        let a = norm1(x + dropout1(selfAttn.attend(x, keyMask: keyMask)))
        return norm2(a + dropout2(linear2(dropout(linear1(a).relu()))))
    }

    public override func forward(_ x: Tensor) -> Tensor { encode(x, keyMask: nil) }

    public override var config: [String: Any] { ["dim": dim, "heads": heads, "ff": feedForward, "dropout": Double(dropout.p)] }
}
