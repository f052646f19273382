import CStrata

// Shape ops. Storage is always contiguous, so reshape is free and the others copy through the
// strided-copy kernel. Each op's gradient is the matching inverse copy.

@usableFromInline
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
    return s
}

/// Copies `shape` elements from `src` (read with `srcStrides`) to `dst` (written with `dstStrides`).
@usableFromInline
func stridedCopy(_ shape: [Int], _ src: UnsafePointer<Float>, _ srcStrides: [Int],
                 _ dst: UnsafeMutablePointer<Float>, _ dstStrides: [Int]) {
    // Merge neighbouring dimensions that are contiguous on both sides; drop size-1 ones.
    var dims: [Int] = [], ss: [Int] = [], ds: [Int] = []
    for d in 0..<shape.count where shape[d] != 1 {
        if let n = dims.last, ss.last! == srcStrides[d] * shape[d], ds.last! == dstStrides[d] * shape[d] {
            dims[dims.count - 1] = n * shape[d]; ss[ss.count - 1] = srcStrides[d]; ds[ds.count - 1] = dstStrides[d]
        } else {
            dims.append(shape[d]); ss.append(srcStrides[d]); ds.append(dstStrides[d])
        }
    }
    if shape.contains(0) { return }
    if dims.isEmpty { dst[0] = src[0]; return }
    shapeCheck(dims.count <= Int(SK_MAX_DIMS), "copy", "too many dimensions in \(fmt(shape))")
    sk_copy_strided(Int32(dims.count), dims, src, ss, dst, ds)
}

extension Tensor {
    /// Same elements, new shape; one dimension may be -1 (inferred).
    ///
    /// ```swift
    /// x.reshape([2, -1])
    /// ```
    public func reshape(_ newShape: [Int]) -> Tensor {
        var s = newShape
        let known = s.filter { $0 != -1 }.reduce(1, *)
        let unknown = s.indices.filter { s[$0] == -1 }
        shapeCheck(unknown.count <= 1, "reshape", "more than one -1 in \(fmt(newShape))")
        if let u = unknown.first {
            shapeCheck(known > 0 && count % known == 0, "reshape", "cannot reshape \(fmt(shape)) to \(fmt(newShape))")
            s[u] = count / known
        }
        shapeCheck(s.reduce(1, *) == count && !s.contains { $0 < 0 }, "reshape", "cannot reshape \(fmt(shape)) to \(fmt(newShape))")
        let inShape = shape
        return Tensor(storage: storage, shape: s).recorded("reshape", [self]) { g, _ in [g.withShape(inShape)] }
    }

    public func reshape(_ dims: Int...) -> Tensor { reshape(dims) }

    /// Collapses dimensions `startDim...endDim` into one (like `torch.flatten`).
    public func flatten(startDim: Int = 0, endDim: Int = -1) -> Tensor {
        if rank == 0 { return reshape([1]) }
        let s = normalizeAxis(startDim, rank: rank, op: "flatten"), e = normalizeAxis(endDim, rank: rank, op: "flatten")
        shapeCheck(s <= e, "flatten", "startDim \(startDim) is after endDim \(endDim) for shape \(fmt(shape))")
        return reshape(Array(shape[..<s]) + [shape[s...e].reduce(1, *)] + Array(shape[(e + 1)...]))
    }

    /// Inserts a dimension of size 1 at `axis`.
    public func unsqueeze(_ axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        shapeCheck(a >= 0 && a <= rank, "unsqueeze", "axis \(axis) out of range for shape \(fmt(shape))")
        var s = shape
        s.insert(1, at: a)
        return reshape(s)
    }

    /// Removes dimensions of size 1 (all of them, or just `axis`).
    public func squeeze(_ axis: Int? = nil) -> Tensor {
        if let axis {
            let a = normalizeAxis(axis, rank: rank, op: "squeeze")
            shapeCheck(shape[a] == 1, "squeeze", "dimension \(axis) of shape \(fmt(shape)) is not 1")
            var s = shape
            s.remove(at: a)
            return reshape(s)
        }
        return reshape(shape.filter { $0 != 1 })
    }

    /// Reorders dimensions: result dimension i is input dimension `dims[i]`.
    public func permute(_ dims: [Int]) -> Tensor {
        let d = dims.map { normalizeAxis($0, rank: rank, op: "permute") }
        shapeCheck(d.count == rank && Set(d).count == rank, "permute", "\(dims) is not a permutation of the axes of \(fmt(shape))")
        if d == Array(0..<rank) { return self }
        let outShape = d.map { shape[$0] }
        let inStrides = contiguousStrides(shape)
        let out = Tensor(uninitializedShape: outShape)
        // Swapping the last two axes (batched matrix transpose) has a cache-blocked kernel.
        if rank >= 2 && d == Array(0..<(rank - 2)) + [rank - 1, rank - 2] {
            sk_transpose2d(shape[..<(rank - 2)].reduce(1, *), shape[rank - 2], shape[rank - 1], data, out.data)
        } else {
            stridedCopy(outShape, data, d.map { inStrides[$0] }, out.data, contiguousStrides(outShape))
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, a) in d.enumerated() { inverse[a] = i }
        return out.recorded("permute", [self]) { g, _ in [g.permute(inverse)] }
    }

    public func permute(_ dims: Int...) -> Tensor { permute(dims) }

    /// Swaps two dimensions.
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        shapeCheck(rank >= 2 || (rank == 1 && a == -2 && b == -1), "transpose", "needs at least 2 dimensions, got shape \(fmt(shape))")
        if rank < 2 { return self }
        var d = Array(0..<rank)
        d.swapAt(normalizeAxis(a, rank: rank, op: "transpose"), normalizeAxis(b, rank: rank, op: "transpose"))
        return permute(d)
    }

    /// The matrix transpose (last two dimensions swapped).
    public var T: Tensor { transposed() }

    /// Copy broadcast to `newShape`, no autograd.
    @usableFromInline
    func rawExpand(_ newShape: [Int]) -> Tensor {
        if newShape == shape { return self }
        _ = Tensor.broadcastShape(shape, newShape, op: "expand")
        let out = Tensor(uninitializedShape: newShape)
        stridedCopy(newShape, data, Tensor.broadcastStrides(shape, to: newShape), out.data, contiguousStrides(newShape))
        return out
    }

    /// Broadcasts to `newShape` (a materialised copy). Its gradient sums over the broadcast axes.
    public func expand(_ newShape: [Int]) -> Tensor {
        let b = Tensor.broadcastShape(shape, newShape, op: "expand")
        shapeCheck(b == newShape, "expand", "shape \(fmt(shape)) cannot be expanded to \(fmt(newShape))")
        let inShape = shape
        return rawExpand(newShape).recorded("expand", [self]) { g, _ in [g.sumToShape(inShape)] }
    }

    /// Elements `start..<end` (step `step`) along `axis`. Negative bounds count from the end.
    ///
    /// ```swift
    /// x.slice(axis: 1, start: 0, end: 2)   // x[:, 0:2]
    /// ```
    public func slice(axis: Int, start: Int = 0, end: Int? = nil, step: Int = 1) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "slice")
        shapeCheck(step > 0, "slice", "step must be positive, got \(step)")
        let n = shape[a]
        func clamp(_ i: Int) -> Int { Swift.min(Swift.max(i < 0 ? i + n : i, 0), n) }
        let s = clamp(start), e = clamp(end ?? n)
        let len = e > s ? (e - s + step - 1) / step : 0
        var outShape = shape
        outShape[a] = len
        let strides = contiguousStrides(shape)
        var srcStrides = strides
        srcStrides[a] *= step
        let out = Tensor(uninitializedShape: outShape)
        if out.count > 0 { stridedCopy(outShape, data + s * strides[a], srcStrides, out.data, contiguousStrides(outShape)) }
        let inShape = shape
        return out.recorded("slice", [self]) { g, _ in
            let gx = Tensor.zeros(inShape)
            if g.count > 0 { stridedCopy(outShape, g.data, contiguousStrides(outShape), gx.data + s * strides[a], srcStrides) }
            return [gx]
        }
    }

    /// Joins tensors along `axis`; all other dimensions must match.
    ///
    /// ```swift
    /// Tensor.concat([a, b], axis: 0)
    /// ```
    public static func concat(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        shapeCheck(!tensors.isEmpty, "concat", "needs at least one tensor")
        let first = tensors[0]
        let a = normalizeAxis(axis, rank: first.rank, op: "concat")
        var total = 0
        for t in tensors {
            var s1 = t.shape, s0 = first.shape
            shapeCheck(s1.count == s0.count, "concat", "shapes \(fmt(first.shape)) and \(fmt(t.shape)) have different ranks")
            s1[a] = 0; s0[a] = 0
            shapeCheck(s1 == s0, "concat", "shapes \(fmt(first.shape)) and \(fmt(t.shape)) differ outside axis \(axis)")
            total += t.shape[a]
        }
        var outShape = first.shape
        outShape[a] = total
        let out = Tensor(uninitializedShape: outShape)
        let outStrides = contiguousStrides(outShape)
        var offsets: [Int] = []
        var off = 0
        for t in tensors {
            offsets.append(off)
            if t.count > 0 { stridedCopy(t.shape, t.data, contiguousStrides(t.shape), out.data + off * outStrides[a], outStrides) }
            off += t.shape[a]
        }
        return out.recorded("concat", tensors) { g, needs in
            tensors.indices.map { i in
                needs[i] ? g.rawSlice(axis: a, start: offsets[i], length: tensors[i].shape[a]) : nil
            }
        }
    }

    /// `length` elements from `start` along `axis`, no autograd.
    @usableFromInline
    func rawSlice(axis a: Int, start: Int, length: Int) -> Tensor {
        var outShape = shape
        outShape[a] = length
        let strides = contiguousStrides(shape)
        let out = Tensor(uninitializedShape: outShape)
        if out.count > 0 { stridedCopy(outShape, data + start * strides[a], strides, out.data, contiguousStrides(outShape)) }
        return out
    }

    /// Stacks equal-shaped tensors along a new axis.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        shapeCheck(!tensors.isEmpty, "stack", "needs at least one tensor")
        for t in tensors {
            shapeCheck(t.shape == tensors[0].shape, "stack", "shapes \(fmt(tensors[0].shape)) and \(fmt(t.shape)) differ")
        }
        return concat(tensors.map { $0.unsqueeze(axis) }, axis: axis)
    }

    /// Pads with `value`: `widths[i]` gives (before, after) for dimension i; fewer pairs than
    /// dimensions pad the last ones (`[(1, 1), (2, 2)]` pads H by 1 and W by 2 on NCHW input).
    public func pad(_ widths: [(Int, Int)], value: Float = 0) -> Tensor {
        shapeCheck(widths.count <= rank, "pad", "\(widths.count) padding pairs for shape \(fmt(shape))")
        let lead = rank - widths.count
        let w = [(Int, Int)](repeating: (0, 0), count: lead) + widths
        for (b, e) in w { shapeCheck(b >= 0 && e >= 0, "pad", "negative padding \(widths)") }
        let outShape = zip(shape, w).map { $0 + $1.0 + $1.1 }
        let out = Tensor.full(outShape, value)
        let outStrides = contiguousStrides(outShape)
        let offset = zip(w, outStrides).map { $0.0 * $1 }.reduce(0, +)
        if count > 0 { stridedCopy(shape, data, contiguousStrides(shape), out.data + offset, outStrides) }
        let inShape = shape
        return out.recorded("pad", [self]) { g, _ in
            let gx = Tensor(uninitializedShape: inShape)
            if gx.count > 0 { stridedCopy(inShape, g.data + offset, outStrides, gx.data, contiguousStrides(inShape)) }
            return [gx]
        }
    }
}
