import CStrata

/// A linear map's weight `[out, in]` packed once in the GEMM kernel's panel order, for
/// inference that applies the same weights many times: each product then reads the packed
/// panels instead of packing the whole weight again (at batch 1, packing costs as much as the
/// product). The pack is a copy: after the weight changes, pack it again.
///
/// ```swift
/// let packed = PackedLinear(weight: fc.weight.value, bias: fc.bias?.value)
/// let y = packed(x)                       // x [..., in] -> [..., out], as linear(x, weight:, bias:) without autograd
/// let h = packed(x, activation: .gelu)    // the same, then GELU, in one pass over the output
/// ```
public final class PackedLinear: @unchecked Sendable {
    /// Applied to each output tile as the GEMM finishes it, after the bias.
    public enum Activation { case none, gelu }

    public let outFeatures: Int, inFeatures: Int
    let panels: UnsafeMutableRawPointer
    let bias: [Float]?

    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2, "PackedLinear: weight must be [out, in], got \(weight.shape)")
        let (out, inF) = (weight.shape[0], weight.shape[1])
        precondition(bias.map { $0.shape == [out] } ?? true, "PackedLinear: bias \(bias?.shape ?? []) does not match weight \(weight.shape)")
        (outFeatures, inFeatures) = (out, inF)
        let floats = strata_gemm_packed_size_b(out, inF)
        panels = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(floats, 1) * 4, alignment: 64)
        strata_gemm_pack_b(1, out, inF, weight.data, inF, panels.assumingMemoryBound(to: Float.self))
        self.bias = bias.map { $0.scalars }
    }

    deinit { panels.deallocate() }

    /// `x` `[..., in]` to `[..., out]`: `activation(x Wᵀ + b)`, recording no gradient.
    public func callAsFunction(_ x: Tensor, activation: Activation = .none) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] == inFeatures, "PackedLinear: input \(x.shape) does not match weight [\(outFeatures), \(inFeatures)]")
        let rows = x.count / Swift.max(inFeatures, 1)
        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outFeatures])
        var a = sk_gemm_operand(data: x.data, ld: inFeatures, trans: 0, packed: nil)
        var b = sk_gemm_operand(data: nil, ld: inFeatures, trans: 1, packed: UnsafePointer(panels.assumingMemoryBound(to: Float.self)))
        let act = activation == .gelu ? Int32(SK_GEMM_GELU) : Int32(SK_GEMM_NONE)
        if let bias {
            bias.withUnsafeBufferPointer { strata_sgemm_epilogue(rows, outFeatures, inFeatures, 1, &a, &b, 0, y.data, outFeatures, 1, $0.baseAddress, act) }
        } else {
            strata_sgemm_epilogue(rows, outFeatures, inFeatures, 1, &a, &b, 0, y.data, outFeatures, 1, nil, act)
        }
        return y
    }
}
