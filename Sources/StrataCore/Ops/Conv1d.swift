/// 1-D convolution and pooling over `[N, C, L]` (sequences: audio samples, token embeddings).
/// Each is the 2-D op over a height of 1, so it shares its kernels and its gradient rule; the
/// reshapes are views, and a frozen weight's pack is kept as for `conv2d`.

/// 1-D convolution over `[N, C, L]` with weight `[Cout, Cin/groups, K]` (PyTorch's `conv1d` layout).
///
/// ```swift
/// let y = conv1d(x, weight: w, bias: b, padding: 2)   // [N, 1, 100], w [16, 1, 5] -> [N, 16, 100]
/// ```
public func conv1d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
                   dilation: Int = 1, groups: Int = 1) -> Tensor {
    let op = "conv1d"
    shapeCheck(x.rank == 3, op, "input must be [N, C, L], got \(fmt(x.shape)) with weight \(fmt(weight.shape))")
    shapeCheck(weight.rank == 3, op, "weight must be [Cout, Cin/groups, K], got \(fmt(weight.shape)) for input \(fmt(x.shape))")
    shapeCheck(groups >= 1 && x.shape[1] % groups == 0 && weight.shape[0] % groups == 0, op,
               "groups \(groups) must divide input channels of \(fmt(x.shape)) and output channels of \(fmt(weight.shape))")
    shapeCheck(x.shape[1] == weight.shape[1] * groups, op,
               "input \(fmt(x.shape)) has \(x.shape[1]) channels but weight \(fmt(weight.shape)) expects \(weight.shape[1] * groups)")
    shapeCheck(stride > 0 && dilation > 0 && padding >= 0, op, "stride \(stride) and dilation \(dilation) must be positive, padding \(padding) not negative")
    let ol = windowPositions(x.shape[2], kernel: weight.shape[2], stride: stride, padding: padding, dilation: dilation)
    shapeCheck(ol > 0, op, "input \(fmt(x.shape)) is too small for kernel \(fmt(weight.shape)) with padding \(padding) and dilation \(dilation)")
    if let bias { shapeCheck(bias.shape == [weight.shape[0]], op, "bias \(fmt(bias.shape)) does not match weight \(fmt(weight.shape))") }
    let y = conv2d(x.unsqueeze(2), weight: weight.unsqueeze(2), bias: bias,
                   stride: Size2(1, stride), padding: Size2(0, padding), dilation: Size2(1, dilation), groups: groups)
    return y.squeeze(2)
}

/// 1-D pooling as `pool2d` over a height of 1, after its own checks.
private func pool1d(_ x: Tensor, max: Bool, _ kernelSize: Int, _ stride: Int?, _ padding: Int, dilation: Int = 1,
                    ceilMode: Bool, countIncludePad: Bool = true, _ op: String) -> Tensor {
    let s = stride ?? kernelSize
    shapeCheck(x.rank == 3, op, "input must be [N, C, L], got \(fmt(x.shape))")
    shapeCheck(kernelSize > 0 && s > 0 && dilation > 0 && padding >= 0 && 2 * padding <= kernelSize, op,
               "kernel \(kernelSize), stride \(s) and dilation \(dilation) must be positive, padding \(padding) at most half the kernel")
    shapeCheck(windowPositions(x.shape[2], kernel: kernelSize, stride: s, padding: padding, dilation: dilation, ceilMode: ceilMode) > 0, op,
               "input \(fmt(x.shape)) is too small for kernel \(kernelSize) with padding \(padding)")
    let p = PoolWindows(kernel: Size2(1, kernelSize), stride: Size2(1, s), padBefore: Size2(0, padding), padAfter: Size2(0, padding),
                        dilation: Size2(1, dilation), ceilMode: ceilMode, countIncludePad: countIncludePad)
    return pool2d(x.unsqueeze(2), max: max, p, op).squeeze(2)
}

/// Max pooling over `[N, C, L]`; `stride` defaults to the kernel size (as in PyTorch). `ceilMode`
/// keeps a last, partial window.
///
/// ```swift
/// let y = maxPool1d(x, kernelSize: 2)   // [N, 16, 100] -> [N, 16, 50]
/// ```
public func maxPool1d(_ x: Tensor, kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1,
                      ceilMode: Bool = false) -> Tensor {
    pool1d(x, max: true, kernelSize, stride, padding, dilation: dilation, ceilMode: ceilMode, "maxPool1d")
}

/// Average pooling over `[N, C, L]`: padding counts as zeros unless `countIncludePad` is false,
/// as in PyTorch.
///
/// ```swift
/// let y = avgPool1d(x, kernelSize: 4, stride: 2, padding: 1)   // [N, 16, 100] -> [N, 16, 50]
/// ```
public func avgPool1d(_ x: Tensor, kernelSize: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false,
                      countIncludePad: Bool = true) -> Tensor {
    pool1d(x, max: false, kernelSize, stride, padding, ceilMode: ceilMode, countIncludePad: countIncludePad, "avgPool1d")
}

/// Adaptive average pooling over `[N, C, L]` to `outputSize` values (PyTorch's `AdaptiveAvgPool1d`).
///
/// ```swift
/// let y = adaptiveAvgPool1d(x, outputSize: 8)   // [N, 16, 397] -> [N, 16, 8]
/// ```
public func adaptiveAvgPool1d(_ x: Tensor, outputSize: Int) -> Tensor {
    shapeCheck(x.rank == 3 && outputSize > 0, "adaptiveAvgPool1d", "input must be [N, C, L] and the output size positive, got \(fmt(x.shape)) to \(outputSize)")
    return adaptiveAvgPool2d(x.unsqueeze(2), outputSize: Size2(1, outputSize)).squeeze(2)
}

/// Adaptive max pooling over `[N, C, L]` to `outputSize` values (PyTorch's `AdaptiveMaxPool1d`).
public func adaptiveMaxPool1d(_ x: Tensor, outputSize: Int) -> Tensor {
    shapeCheck(x.rank == 3 && outputSize > 0, "adaptiveMaxPool1d", "input must be [N, C, L] and the output size positive, got \(fmt(x.shape)) to \(outputSize)")
    return adaptiveMaxPool2d(x.unsqueeze(2), outputSize: Size2(1, outputSize)).squeeze(2)
}
