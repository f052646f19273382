import CStrata

extension Tensor {
    private func softmaxDims(_ axis: Int, _ op: String) -> (Int, Int, Int) {
        let a = normalizeAxis(axis, rank: rank, op: op)
        return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    /// `exp(x) / sum(exp(x))` along `axis`, computed after subtracting the maximum.
    ///
    /// ```swift
    /// let probs = logits.softmax()          // rows sum to 1
    /// ```
    public func softmax(axis: Int = -1) -> Tensor { softmaxImpl(axis, log: false) }

    /// `x - logsumexp(x)` along `axis`, stable for large logits.
    public func logSoftmax(axis: Int = -1) -> Tensor { softmaxImpl(axis, log: true) }

    private func softmaxImpl(_ axis: Int, log: Bool) -> Tensor {
        let name = log ? "logSoftmax" : "softmax"
        let (outer, r, inner) = softmaxDims(axis, name)
        let y = Tensor(uninitializedShape: shape)
        if count > 0 { sk_softmax(outer, r, inner, data, y.data, log ? 1 : 0) }
        return y.recorded(name, [self]) { g, _ in
            let gx = Tensor(uninitializedShape: g.shape)
            if g.count > 0 { sk_softmax_backward(outer, r, inner, y.data, g.data, gx.data, log ? 1 : 0) }
            return [gx]
        }
    }
}
