import CStrata

// Reductions over any set of axes, with keepDims. The C kernel reduces the middle axis of an
// (outer, r, inner) view; a set of axes is reduced one run of neighbouring axes at a time.

extension Tensor {
    @usableFromInline
    func normalizedAxes(_ axes: [Int]?, op: String) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        let norm = axes.map { normalizeAxis($0, rank: rank, op: op) }
        shapeCheck(Set(norm).count == norm.count, op, "repeated axis in \(axes) for shape \(fmt(shape))")
        return norm.sorted()
    }

    /// Shape after reducing `axes` with keepDims.
    @usableFromInline
    func keptShape(_ axes: [Int]) -> [Int] {
        var s = shape
        for a in axes { s[a] = 1 }
        return s
    }

    /// Reduction without autograd; the result has keepDims shape unless `keepDims` is false.
    @usableFromInline
    func rawReduce(_ op: Int, axes: [Int], keepDims: Bool = true) -> Tensor {
        var cur = self
        var curShape = shape
        if axes.isEmpty { return self }
        // Runs of neighbouring axes, last run first so earlier axis indices stay valid.
        var runs: [(Int, Int)] = []
        for a in axes {
            if let last = runs.last, last.1 == a { runs[runs.count - 1].1 = a + 1 } else { runs.append((a, a + 1)) }
        }
        for (start, end) in runs.reversed() {
            let outer = curShape[..<start].reduce(1, *)
            let r = curShape[start..<end].reduce(1, *)
            let inner = curShape[end...].reduce(1, *)
            shapeCheck(r > 0 || op == SK_R_SUM, "reduce", "cannot reduce an empty axis of shape \(fmt(shape))")
            var newShape = curShape
            for a in start..<end { newShape[a] = 1 }
            let out = Tensor(uninitializedShape: newShape)
            if r == 0 { sk_fill(out.count, 0, out.data) } else if out.count > 0 {
                sk_reduce(Int32(op), outer, r, inner, cur.data, out.data)
            }
            cur = out
            curShape = newShape
        }
        if !keepDims {
            let set = Set(axes)
            cur = cur.withShape(shape.enumerated().filter { !set.contains($0.offset) }.map { $0.element })
        }
        return cur
    }

    /// Sum over `axes` (all when nil).
    ///
    /// ```swift
    /// x.sum()                              // scalar
    /// x.sum(axes: [0], keepDims: true)     // [1, n]
    /// ```
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "sum")
        let inShape = shape, kept = keptShape(ax)
        return rawReduce(SK_R_SUM, axes: ax, keepDims: keepDims).recorded("sum", [self]) { g, _ in
            [g.withShape(kept).rawExpand(inShape)]
        }
    }

    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Mean over `axes` (all when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "mean")
        let n = ax.reduce(1) { $0 * shape[$1] }
        return sum(axes: ax, keepDims: keepDims) * (1 / Float(Swift.max(n, 1)))
    }

    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Maximum over `axes`; ties share the gradient evenly.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { extremum(SK_R_MAX, axes, keepDims, "max") }
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }

    /// Minimum over `axes`; ties share the gradient evenly.
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { extremum(SK_R_MIN, axes, keepDims, "min") }
    public func min(axis: Int, keepDims: Bool = false) -> Tensor { min(axes: [axis], keepDims: keepDims) }

    private func extremum(_ op: Int, _ axes: [Int]?, _ keepDims: Bool, _ name: String) -> Tensor {
        let ax = normalizedAxes(axes, op: name)
        let kept = rawReduce(op, axes: ax)
        let x = constant()
        let out = keepDims ? kept : kept.withShape(shape.enumerated().filter { !ax.contains($0.offset) }.map { $0.element })
        return out.recorded(name, [self]) { g, _ in
            let mask = Tensor.rawBinary(SK_EQ, x, kept, name: name)
            let ties = mask.rawReduce(SK_R_SUM, axes: ax)
            let share = Tensor.rawBinary(SK_DIV, g.withShape(kept.shape), ties, name: name)
            return [Tensor.rawBinary(SK_MUL, mask, share, name: name)]
        }
    }

    /// Index of the largest element along `axis` (as Float values), first one on ties.
    public func argmax(axis: Int, keepDims: Bool = false) -> Tensor { argExtremum(SK_R_ARGMAX, axis, keepDims) }
    /// Index of the smallest element along `axis` (as Float values), first one on ties.
    public func argmin(axis: Int, keepDims: Bool = false) -> Tensor { argExtremum(SK_R_ARGMIN, axis, keepDims) }

    private func argExtremum(_ op: Int, _ axis: Int, _ keepDims: Bool) -> Tensor {
        let a = normalizeAxis(axis, rank: rank, op: "argmax")
        return rawReduce(op, axes: [a], keepDims: keepDims)
    }

    /// Row-wise argmax of a 2-D tensor as integers (predicted classes from logits).
    public func argmaxIndices() -> [Int] {
        argmax(axis: -1).scalars.map { Int($0) }
    }

    /// `log(sum(exp(x)))` over `axes`, computed stably by subtracting the maximum first.
    public func logSumExp(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes, op: "logsumexp")
        let m = rawReduce(SK_R_MAX, axes: ax)
        // Infinite maxima would give inf - inf; shift by 0 there instead.
        for i in 0..<m.count where !m.data[i].isFinite { m.data[i] = 0 }
        let lse = (self - m).exp().sum(axes: ax, keepDims: true).log() + m
        return keepDims ? lse : lse.reshape(shape.enumerated().filter { !ax.contains($0.offset) }.map { $0.element })
    }

    /// Variance over `axes`. `unbiased` divides by n - 1 (PyTorch's default), otherwise by n.
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, unbiased: Bool = true) -> Tensor {
        let ax = normalizedAxes(axes, op: "variance")
        let n = ax.reduce(1) { $0 * shape[$1] }
        let d = self - mean(axes: ax, keepDims: true)
        return (d * d).sum(axes: ax, keepDims: keepDims) * (1 / Float(Swift.max(unbiased ? n - 1 : n, 1)))
    }
}
