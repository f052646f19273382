import CStrata

/// Batch normalisation of `x` `[N, C, ...]` over every axis but the channel axis 1, as one
/// kernel pair (the composed ops would make five passes over the activations, and as many
/// again backward). With `statistics` nil it normalises with the batch's own mean and biased
/// variance and returns them; otherwise with the given ones (running statistics; this form is
/// not differentiable, so layers that need gradients in evaluation mode compose it from ops).
///
/// ```swift
/// let (y, mean, variance) = batchNorm(x, weight: w, bias: b)          // training
/// let yEval = batchNorm(x, weight: w, bias: b, statistics: (m, v)).y  // inference
/// ```
public func batchNorm(_ x: Tensor, weight: Tensor, bias: Tensor, statistics: (mean: Tensor, variance: Tensor)? = nil,
                      eps: Float = 1e-5) -> (y: Tensor, mean: Tensor, variance: Tensor) {
    shapeCheck(x.rank >= 2, "batchNorm", "input must be [N, C, ...], got \(fmt(x.shape))")
    let c = x.shape[1]
    shapeCheck(weight.shape == [c] && bias.shape == [c], "batchNorm",
               "weight \(fmt(weight.shape)) and bias \(fmt(bias.shape)) must be [\(c)] for input \(fmt(x.shape))")
    let n = x.shape[0], hw = x.count / Swift.max(n * c, 1)
    let y = Tensor(uninitializedShape: x.shape)
    let mean: Tensor, variance: Tensor
    if let s = statistics {
        shapeCheck(s.mean.shape == [c] && s.variance.shape == [c], "batchNorm",
                   "statistics \(fmt(s.mean.shape)), \(fmt(s.variance.shape)) must be [\(c)] for input \(fmt(x.shape))")
        (mean, variance) = (s.mean.constant(), s.variance.constant())
        sk_batchnorm_forward(n, c, hw, x.data, weight.data, bias.data, y.data, mean.data, variance.data, eps, 0)
        return (y, mean, variance)
    }
    (mean, variance) = (Tensor(uninitializedShape: [c]), Tensor(uninitializedShape: [c]))
    sk_batchnorm_forward(n, c, hw, x.data, weight.data, bias.data, y.data, mean.data, variance.data, eps, 1)
    let saved = SavedTensor(x), wc = weight.constant()
    // d/dx, d/dweight, d/dbias of the training-mode forward (the statistics depend on x). The
    // kernel makes each gx element from the same element of x, so gx may be written over x.
    let out = y.recorded("batchNorm", [x, weight, bias]) { g, needs in
        let (xc, gx) = saved.take(gradient: needs[0])
        let gw = needs[1] ? Tensor(uninitializedShape: [c]) : nil
        let gb = needs[2] ? Tensor(uninitializedShape: [c]) : nil
        sk_batchnorm_backward(n, c, hw, xc.data, wc.data, mean.data, variance.data, g.data, eps, gx?.data, gw?.data, gb?.data)
        return [gx, gw, gb]
    }
    return (out, mean, variance)
}

/// Training-mode `batchNorm` followed by 2x2/stride-2 `maxPool2d` (and, with `relu`, ReLU) in one
/// op: the normalised full-size tensor is never made, and the backward pass takes the channel sums
/// from the pooling winners alone. Values, gradients and batch statistics are those of the separate
/// ops (up to the order of the backward's sums). Needs `[N, C, H, W]` with H and W at least 2.
///
/// ```swift
/// let (y, mean, variance) = batchNormMaxPool2d(x, weight: gamma, bias: beta, relu: true)   // [N, C, 32, 32] -> [N, C, 16, 16]
/// ```
public func batchNormMaxPool2d(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float = 1e-5,
                               relu: Bool = false) -> (y: Tensor, mean: Tensor, variance: Tensor) {
    shapeCheck(x.rank == 4 && x.shape[2] >= 2 && x.shape[3] >= 2, "batchNormMaxPool2d",
               "input must be [N, C, H, W] with H and W at least 2, got \(fmt(x.shape))")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    shapeCheck(weight.shape == [c] && bias.shape == [c], "batchNormMaxPool2d",
               "weight \(fmt(weight.shape)) and bias \(fmt(bias.shape)) must be [\(c)] for input \(fmt(x.shape))")
    let y = Tensor(uninitializedShape: [n, c, h / 2, w / 2])
    let xw = Tensor(uninitializedShape: y.shape)
    let (codes, cp) = winnerBuffer(UInt8.self, y.count)
    let (mean, variance) = (Tensor(uninitializedShape: [c]), Tensor(uninitializedShape: [c]))
    sk_batchnorm_maxpool_forward(n, c, h, w, x.data, weight.data, bias.data, y.data, cp, xw.data, mean.data, variance.data,
                                 eps, relu ? 1 : 0)
    let saved = SavedTensor(x), wc = weight.constant()
    // gx may be written over x, as in `batchNorm`: nothing after the sums reads x elsewhere.
    let out = y.recorded("batchNormMaxPool2d", [x, weight, bias]) { g, needs in
        let (xc, gx) = saved.take(gradient: needs[0])
        let gw = needs[1] ? Tensor(uninitializedShape: [c]) : nil
        let gb = needs[2] ? Tensor(uninitializedShape: [c]) : nil
        withExtendedLifetime(codes) {
            sk_batchnorm_maxpool_backward(n, c, h, w, xc.data, wc.data, mean.data, variance.data, cp, xw.data, g.data, eps,
                                          gx?.data, gw?.data, gb?.data)
        }
        return [gx, gw, gb]
    }
    return (out, mean, variance)
}
