import CStrata

// Gathering by integer indices and one-hot encoding. Indices are Swift Ints, or Float tensors
// holding whole numbers (what argmax returns).

extension Tensor {
    /// Rows (or slices) `indices` along `axis`, in order, repeats allowed. Its gradient adds
    /// back into the picked slices (so repeated indices accumulate).
    ///
    /// ```swift
    /// let rows = table.indexSelect(axis: 0, indices: [3, 1, 3])   // embedding lookup
    /// ```
    public func indexSelect(axis: Int = 0, indices: [Int]) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "indexSelect")
        let n = shape[a]
        for i in indices { shapeCheck(i >= 0 && i < n, "indexSelect", "index \(i) out of range for axis \(axis) of shape \(fmt(shape))") }
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        var outShape = shape
        outShape[a] = indices.count
        let out = Tensor(uninitializedShape: outShape)
        let src = data, dst = out.data, k = indices.count
        for o in 0..<outer {
            for (j, i) in indices.enumerated() {
                (dst + (o * k + j) * inner).update(from: src + (o * n + i) * inner, count: inner)
            }
        }
        let inShape = shape
        return out.recorded("indexSelect", [self]) { g, _ in
            let gx = Tensor.zeros(inShape)
            for o in 0..<outer {
                for (j, i) in indices.enumerated() {
                    sk_axpy(inner, 1, g.data + (o * k + j) * inner, gx.data + (o * n + i) * inner)
                }
            }
            return [gx]
        }
    }

    /// `torch.gather`: `out[..., j, ...] = self[..., index[..., j, ...], ...]` along `axis`.
    /// `index` has this tensor's rank; its shape is the output's and may be smaller elsewhere.
    public func gather(axis: Int, index: Tensor) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "gather")
        shapeCheck(index.rank == rank, "gather", "index shape \(fmt(index.shape)) must have the rank of input shape \(fmt(shape))")
        for d in 0..<rank where d != a {
            shapeCheck(index.shape[d] <= shape[d], "gather", "index shape \(fmt(index.shape)) exceeds input shape \(fmt(shape)) in dimension \(d)")
        }
        let out = Tensor(uninitializedShape: index.shape)
        let inStrides = contiguousStrides(shape), idxStrides = contiguousStrides(index.shape)
        var srcOffsets = [Int](repeating: 0, count: index.count)
        for e in 0..<index.count {
            var rem = e, off = 0
            for d in 0..<rank {
                let i = rem / idxStrides[d]
                rem %= idxStrides[d]
                if d == a {
                    let v = index.data[e]
                    let iv = Int(v)
                    shapeCheck(Float(iv) == v && iv >= 0 && iv < shape[a], "gather", "index \(v) out of range for axis \(axis) of shape \(fmt(shape))")
                    off += iv * inStrides[d]
                } else {
                    off += i * inStrides[d]
                }
            }
            srcOffsets[e] = off
            out.data[e] = data[off]
        }
        let inShape = shape
        return out.recorded("gather", [self]) { g, _ in
            let gx = Tensor.zeros(inShape)
            for e in 0..<srcOffsets.count { gx.data[srcOffsets[e]] += g.data[e] }
            return [gx]
        }
    }

    /// The `k` largest (or smallest) elements along `axis`, in order, and their indices as Float
    /// values (`torch.topk`). Equal values keep the lower index first; NaN counts as the largest
    /// value, as in PyTorch. The values are a `gather` of this tensor, so their gradient flows back
    /// to the picked elements.
    ///
    /// ```swift
    /// let (probs, classes) = logits.softmax().topk(3)   // [N, 3] each: the 3 likeliest classes
    /// ```
    public func topk(_ k: Int, axis: Int = -1, largest: Bool = true) -> (values: Tensor, indices: Tensor) {
        let a = normalizeAxis(axis, rank: rank, op: "topk")
        let n = shape[a]
        shapeCheck(k >= 0 && k <= n, "topk", "k = \(k) for axis \(axis) of shape \(fmt(shape)) (at most \(n))")
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        var outShape = shape
        outShape[a] = k
        let idx = Tensor(uninitializedShape: outShape)
        let src = data, dst = idx.data
        var order = [Int](repeating: 0, count: n)
        for o in 0..<outer {
            for i in 0..<inner {
                let base = src + o * n * inner + i
                for j in 0..<n { order[j] = j }
                // "p before q": NaN first (largest) or last (smallest), then by value, then by index.
                order.sort { p, q in
                    let (x, y) = (base[p * inner], base[q * inner])
                    if x.isNaN != y.isNaN { return largest ? x.isNaN : y.isNaN }
                    if x != y && !x.isNaN { return largest ? x > y : x < y }
                    return p < q
                }
                for j in 0..<k { dst[(o * k + j) * inner + i] = Float(order[j]) }
            }
        }
        return (gather(axis: a, index: idx), idx)
    }

    /// `[indices.count, classes]` with a 1 in each row at the index.
    public static func oneHot(_ indices: [Int], classes: Int) -> Tensor {
        let out = Tensor.zeros([indices.count, classes])
        for (r, i) in indices.enumerated() {
            shapeCheck(i >= 0 && i < classes, "oneHot", "index \(i) out of range for \(classes) classes")
            out.data[r * classes + i] = 1
        }
        return out
    }

    /// One-hot encoding of a tensor of whole numbers: shape `self.shape + [classes]`.
    public func oneHot(classes: Int) -> Tensor {
        let idx = scalars.map { v -> Int in
            shapeCheck(v == v.rounded(), "oneHot", "value \(v) is not a whole number")
            return Int(v)
        }
        return Tensor.oneHot(idx, classes: classes).reshape(shape + [classes])
    }
}
