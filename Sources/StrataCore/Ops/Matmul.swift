import CStrata

// Matrix products on the packed GEMM kernel. Transposes are passed to GEMM as flags, never
// materialised; batch dimensions broadcast like NumPy.

extension Tensor {
    /// op(a) @ op(b) for tensors of rank >= 2 whose leading (batch) dimensions broadcast.
    /// op transposes the last two dimensions when its flag is set. No autograd.
    @usableFromInline
    static func rawBatchedMatmul(_ a: Tensor, transA: Bool, _ b: Tensor, transB: Bool, op: String = "matmul") -> Tensor {
        let ra = a.rank, rb = b.rank
        let m = transA ? a.shape[ra - 1] : a.shape[ra - 2]
        let ka = transA ? a.shape[ra - 2] : a.shape[ra - 1]
        let kb = transB ? b.shape[rb - 1] : b.shape[rb - 2]
        let n = transB ? b.shape[rb - 2] : b.shape[rb - 1]
        shapeCheck(ka == kb, op, "shapes \(fmt(a.shape)) and \(fmt(b.shape)) are not aligned for a matrix product (\(ka) != \(kb))")
        let aBatch = Array(a.shape[..<(ra - 2)]), bBatch = Array(b.shape[..<(rb - 2)])
        let batch = broadcastShape(aBatch, bBatch, op: op)
        let out = Tensor(uninitializedShape: batch + [m, n])
        let lda = a.shape[ra - 1], ldb = b.shape[rb - 1]
        let nb = batch.reduce(1, *)
        if out.count == 0 { return out }
        // b shared by every batch element and a not transposed: one tall GEMM.
        if bBatch.reduce(1, *) == 1 && !transA && aBatch.reduce(1, *) == nb {
            strata_sgemm(0, transB ? 1 : 0, nb * m, n, ka, 1, a.data, lda, b.data, ldb, 0, out.data, n)
            return out
        }
        let aStrides = broadcastStrides(aBatch, to: batch), bStrides = broadcastStrides(bBatch, to: batch)
        let aMat = a.shape[ra - 2] * a.shape[ra - 1], bMat = b.shape[rb - 2] * b.shape[rb - 1]
        let batchStrides = contiguousStrides(batch)
        func offsets(_ i: Int) -> (Int, Int) {
            var rem = i, oa = 0, ob = 0
            for d in 0..<batch.count {
                let idx = rem / batchStrides[d]
                rem %= batchStrides[d]
                oa += idx * aStrides[d]
                ob += idx * bStrides[d]
            }
            return (oa * aMat, ob * bMat)
        }
        let ap = a.data, bp = b.data, cp = out.data
        let ta: Int32 = transA ? 1 : 0, tb: Int32 = transB ? 1 : 0
        if nb >= Strata.numThreads && m * n * ka < 256 * 256 * 256 {
            parallelFor(nb) { i in
                let (oa, ob) = offsets(i)
                strata_sgemm_serial(ta, tb, m, n, ka, 1, ap + oa, lda, bp + ob, ldb, 0, cp + i * m * n, n)
            }
        } else {
            for i in 0..<nb {
                let (oa, ob) = offsets(i)
                strata_sgemm(ta, tb, m, n, ka, 1, ap + oa, lda, bp + ob, ldb, 0, cp + i * m * n, n)
            }
        }
        return out
    }

    /// Matrix product with NumPy semantics: 1-D operands are promoted (and the added dimension
    /// removed again), leading dimensions are batch dimensions and broadcast.
    ///
    /// ```swift
    /// let y = x.matmul(w)            // [B, K] x [K, N] -> [B, N]
    /// let s = q.matmul(k.T)          // [B, H, T, D] x [B, H, D, T] -> [B, H, T, T]
    /// ```
    public func matmul(_ other: Tensor) -> Tensor {
        shapeCheck(rank >= 1 && other.rank >= 1, "matmul", "shapes \(fmt(shape)) and \(fmt(other.shape)): both operands need at least one dimension")
        let a = rank == 1 ? reshape([1, shape[0]]) : self
        let b = other.rank == 1 ? other.reshape([other.shape[0], 1]) : other
        var out = Tensor.matmul2(a, b)
        if rank == 1 { out = out.squeeze(-2) }
        if other.rank == 1 { out = out.squeeze(-1) }
        return out
    }

    private static func matmul2(_ a: Tensor, _ b: Tensor) -> Tensor {
        let ac = a.constant(), bc = b.constant()
        return rawBatchedMatmul(ac, transA: false, bc, transB: false).recorded("matmul", [a, b]) { g, needs in
            // dA = G @ B^T,  dB = A^T @ G, each summed over broadcast batch dimensions.
            [needs[0] ? rawBatchedMatmul(g, transA: false, bc, transB: true).sumToShape(a.shape) : nil,
             needs[1] ? rawBatchedMatmul(ac, transA: true, g, transB: false).sumToShape(b.shape) : nil]
        }
    }
}

/// `a.matmul(b)`.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor { a.matmul(b) }

/// `x @ weight^T + bias` with PyTorch's weight layout `[out, in]`; `x` is `[..., in]`.
/// One GEMM forward and two backward, with no transposed copies.
///
/// ```swift
/// let y = linear(x, weight: w, bias: b)   // [64, 784] x [256, 784]^T + [256] -> [64, 256]
/// ```
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    shapeCheck(weight.rank == 2, "linear", "weight must be [out, in], got \(fmt(weight.shape))")
    shapeCheck(x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1], "linear",
               "input \(fmt(x.shape)) does not match weight \(fmt(weight.shape)) (last input dimension must be \(weight.shape[1]))")
    let outF = weight.shape[0], inF = weight.shape[1]
    let rows = x.count / Swift.max(inF, 1)
    let outShape = Array(x.shape.dropLast()) + [outF]
    let y = Tensor(uninitializedShape: outShape)
    let xc = x.constant(), wc = weight.constant()
    if let bias {
        shapeCheck(bias.shape == [outF], "linear", "bias \(fmt(bias.shape)) does not match weight \(fmt(weight.shape))")
        // Start from the broadcast bias and accumulate the product into it (beta = 1).
        for r in 0..<rows { (y.data + r * outF).update(from: bias.data, count: outF) }
        strata_sgemm(0, 1, rows, outF, inF, 1, x.data, inF, weight.data, inF, 1, y.data, outF)
    } else {
        strata_sgemm(0, 1, rows, outF, inF, 1, x.data, inF, weight.data, inF, 0, y.data, outF)
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return y.recorded("linear", inputs) { g, needs in
        var gx: Tensor?, gw: Tensor?, gb: Tensor?
        if needs[0] {   // dX[rows, in] = G[rows, out] @ W[out, in]
            let t = Tensor(uninitializedShape: xc.shape)
            strata_sgemm(0, 0, rows, inF, outF, 1, g.data, outF, wc.data, inF, 0, t.data, inF)
            gx = t
        }
        if needs[1] {   // dW[out, in] = G^T @ X
            let t = Tensor(uninitializedShape: [outF, inF])
            strata_sgemm(1, 0, outF, inF, rows, 1, g.data, outF, xc.data, inF, 0, t.data, inF)
            gw = t
        }
        if needs.count > 2 && needs[2] {   // db = sum over rows of G
            gb = g.withShape([rows, outF]).rawReduce(SK_R_SUM, axes: [0], keepDims: false)
        }
        return bias == nil ? [gx, gw] : [gx, gw, gb]
    }
}
