import CStrata

/// 2-D transposed convolution ("deconvolution") over NCHW input with weight
/// `[Cin, Cout/groups, KH, KW]` (PyTorch's `conv_transpose2d` layout): the gradient of `conv2d`
/// with respect to its input, so it runs on conv2d's backward kernel, and its own gradients are
/// conv2d's forward (input) and weight-gradient kernels. Each side of the output is
/// `(in - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1`; `outputPadding`
/// (extra rows and columns at the end) must be below the stride.
///
/// ```swift
/// let y = convTranspose2d(x, weight: w, stride: 2, padding: 1, outputPadding: 1)   // [N, 16, 7, 7], w [16, 8, 3, 3] -> [N, 8, 14, 14]
/// ```
public func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Size2 = 0,
                            outputPadding: Size2 = 0, dilation: Size2 = 1, groups: Int = 1) -> Tensor {
    let op = "convTranspose2d"
    shapeCheck(x.rank == 4, op, "input must be NCHW, got \(fmt(x.shape)) with weight \(fmt(weight.shape))")
    shapeCheck(weight.rank == 4, op, "weight must be [Cin, Cout/groups, KH, KW], got \(fmt(weight.shape)) for input \(fmt(x.shape))")
    shapeCheck(groups >= 1 && weight.shape[0] % groups == 0, op, "groups \(groups) must divide the input channels of weight \(fmt(weight.shape))")
    shapeCheck(x.shape[1] == weight.shape[0], op, "input \(fmt(x.shape)) has \(x.shape[1]) channels but weight \(fmt(weight.shape)) expects \(weight.shape[0])")
    shapeCheck(stride.h > 0 && stride.w > 0 && dilation.h > 0 && dilation.w > 0 && padding.h >= 0 && padding.w >= 0, op,
               "stride \(stride) and dilation \(dilation) must be positive, padding \(padding) not negative")
    shapeCheck(outputPadding.h >= 0 && outputPadding.w >= 0 && outputPadding.h < stride.h && outputPadding.w < stride.w, op,
               "output padding \(outputPadding) must be below the stride \(stride)")
    let cout = weight.shape[1] * groups
    let oh = (x.shape[2] - 1) * stride.h - 2 * padding.h + dilation.h * (weight.shape[2] - 1) + outputPadding.h + 1
    let ow = (x.shape[3] - 1) * stride.w - 2 * padding.w + dilation.w * (weight.shape[3] - 1) + outputPadding.w + 1
    shapeCheck(oh > 0 && ow > 0, op, "padding \(padding) leaves no output for input \(fmt(x.shape)) and weight \(fmt(weight.shape))")
    if let bias { shapeCheck(bias.shape == [cout], op, "bias \(fmt(bias.shape)) does not match weight \(fmt(weight.shape)): [\(cout)]") }
    // The convolution this one transposes: from y's shape to x's.
    var s = sk_conv_shape()
    s.n = x.shape[0]; s.c = cout; s.h = oh; s.w = ow
    s.cout = weight.shape[0]; s.kh = weight.shape[2]; s.kw = weight.shape[3]
    s.sh = stride.h; s.sw = stride.w; s.ph = padding.h; s.pw = padding.w
    s.dh = dilation.h; s.dw = dilation.w; s.groups = groups
    s.oh = x.shape[2]; s.ow = x.shape[3]
    let y = Tensor(uninitializedShape: [s.n, cout, oh, ow])
    withUnsafePointer(to: &s) { sk_conv2d_backward($0, nil, weight.data, x.data, y.data, nil, nil) }
    if let bias {   // one channel's plane at a time
        let plane = oh * ow, yp = y.data, bp = bias.data
        for i in 0..<(s.n * cout) {
            let v = bp[i % cout], row = yp + i * plane
            for j in 0..<plane { row[j] += v }
        }
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    guard GradMode.isEnabled && inputs.contains(where: { $0.requiresGrad }) else { return y }
    let xc = x.constant(), wc = weight.constant()
    return y.recorded(op, inputs) { g, needs in
        // dx: the convolution itself; dW: conv2d's weight gradient with g as its input and x as its
        // output's gradient; db: g summed over everything but the channel.
        let gx = needs[0] ? noGrad { conv2d(g, weight: wc, stride: stride, padding: padding, dilation: dilation, groups: groups) } : nil
        var gw: Tensor?
        if needs[1] {
            gw = Tensor(uninitializedShape: wc.shape)
            var sc = s
            withUnsafePointer(to: &sc) { sk_conv2d_backward($0, g.data, wc.data, xc.data, nil, gw!.data, nil) }
        }
        let gb = needs.count > 2 && needs[2] ? noGrad { g.sum(axes: [0, 2, 3]) } : nil
        return needs.count > 2 ? [gx, gw, gb] : [gx, gw]
    }
}
