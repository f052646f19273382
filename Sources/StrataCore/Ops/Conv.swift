import CStrata

/// A pair of sizes (height, width). Write `3` for (3, 3) or `[3, 1]` for (3, 1).
public struct Size2: Equatable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, CustomStringConvertible {
    public var h: Int, w: Int
    public init(_ h: Int, _ w: Int) { self.h = h; self.w = w }
    public init(integerLiteral v: Int) { self.init(v, v) }
    public init(arrayLiteral v: Int...) {
        precondition(v.count == 2, "Size2 needs two values, got \(v)")
        self.init(v[0], v[1])
    }
    public var description: String { h == w ? "\(h)" : "(\(h), \(w))" }
}

/// How many positions a window of `kernel` taps (`dilation` apart) takes along `size` values
/// padded by `padding` on each side, `stride` apart; 0 where the window is wider than the padded
/// input. (Dividing a negative span would round towards zero, to one position.)
///
/// ```swift
/// windowPositions(28, kernel: 3, stride: 1, padding: 1)   // 28
/// windowPositions(2, kernel: 3, stride: 2, padding: 0)    // 0
/// ```
public func windowPositions(_ size: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1) -> Int {
    let span = size + 2 * padding - dilation * (kernel - 1) - 1
    return span < 0 ? 0 : span / stride + 1
}

/// 2-D convolution over NCHW input with weight `[Cout, Cin/groups, KH, KW]` (PyTorch layout).
/// Calls that do not train `weight` (no gradient recorded for it) pack it once and reuse the pack
/// until its values change (`ConvWeightForms`).
///
/// ```swift
/// let y = conv2d(x, weight: w, bias: b, padding: 1)   // [N, 1, 28, 28] -> [N, 32, 28, 28]
/// ```
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1,
                   padding: Size2 = 0, dilation: Size2 = 1, groups: Int = 1) -> Tensor {
    var s = convShape(x, weight, bias, stride, padding, dilation, groups, "conv2d")
    let y = Tensor(uninitializedShape: [s.n, s.cout, s.oh, s.ow])
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    let tracked = GradMode.isEnabled && inputs.contains { $0.requiresGrad }
    // The backward pass recomputes im2col from x: keeping the forward's buffers (14 MB for the
    // Fashion-MNIST CNN) measured slower, because they fall out of cache in between.
    let forms = ConvWeightForms.kept(for: weight)
    withUnsafePointer(to: &s) { sk_conv2d_forward_prepared($0, x.data, weight.data, bias?.data, y.data, forms?.handle) }
    withExtendedLifetime(forms) {}
    guard tracked else { return y }
    let xc = x.constant(), wc = weight.constant()
    return y.recorded("conv2d", inputs) { g, needs in
        convGradients(needs, s, xc.shape, wc.shape) { sp, gx, gw, gb in sk_conv2d_backward(sp, xc.data, wc.data, g.data, gx, gw, gb) }
    }
}

/// The gradients of a convolution's inputs (input, weight and, with a bias, bias), each
/// allocated where `needs` asks for it and filled by `kernel`.
private func convGradients(_ needs: [Bool], _ s: sk_conv_shape, _ xShape: [Int], _ wShape: [Int],
                           _ kernel: (UnsafePointer<sk_conv_shape>, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Float>?,
                                      UnsafeMutablePointer<Float>?) -> Void) -> [Tensor?] {
    let gx = needs[0] ? Tensor(uninitializedShape: xShape) : nil
    let gw = needs[1] ? Tensor(uninitializedShape: wShape) : nil
    let gb = needs.count > 2 && needs[2] ? Tensor(uninitializedShape: [s.cout]) : nil
    var sc = s
    withUnsafePointer(to: &sc) { kernel($0, gx?.data, gw?.data, gb?.data) }
    return needs.count > 2 ? [gx, gw, gb] : [gx, gw]
}

func convShape(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ stride: Size2, _ padding: Size2, _ dilation: Size2,
               _ groups: Int, _ op: String) -> sk_conv_shape {
    shapeCheck(x.rank == 4, op, "input must be NCHW, got \(fmt(x.shape)) with weight \(fmt(weight.shape))")
    shapeCheck(weight.rank == 4, op, "weight must be [Cout, Cin/groups, KH, KW], got \(fmt(weight.shape))")
    shapeCheck(groups >= 1 && x.shape[1] % groups == 0 && weight.shape[0] % groups == 0, op,
               "groups \(groups) must divide input channels of \(fmt(x.shape)) and output channels of \(fmt(weight.shape))")
    shapeCheck(x.shape[1] == weight.shape[1] * groups, op,
               "input \(fmt(x.shape)) has \(x.shape[1]) channels but weight \(fmt(weight.shape)) expects \(weight.shape[1] * groups)")
    shapeCheck(stride.h > 0 && stride.w > 0 && dilation.h > 0 && dilation.w > 0 && padding.h >= 0 && padding.w >= 0,
               op, "stride \(stride) and dilation \(dilation) must be positive, padding \(padding) not negative")
    var s = sk_conv_shape()
    s.n = x.shape[0]; s.c = x.shape[1]; s.h = x.shape[2]; s.w = x.shape[3]
    s.cout = weight.shape[0]; s.kh = weight.shape[2]; s.kw = weight.shape[3]
    s.sh = stride.h; s.sw = stride.w; s.ph = padding.h; s.pw = padding.w
    s.dh = dilation.h; s.dw = dilation.w; s.groups = groups
    s.oh = windowPositions(s.h, kernel: s.kh, stride: s.sh, padding: s.ph, dilation: s.dh)
    s.ow = windowPositions(s.w, kernel: s.kw, stride: s.sw, padding: s.pw, dilation: s.dw)
    shapeCheck(s.oh > 0 && s.ow > 0, op, "input \(fmt(x.shape)) is too small for kernel \(fmt(weight.shape)) with padding \(padding) and dilation \(dilation)")
    if let bias { shapeCheck(bias.shape == [s.cout], op, "bias \(fmt(bias.shape)) does not match weight \(fmt(weight.shape))") }
    return s
}

/// `maxPool2d(conv2d(x, ...), kernelSize: 2)` in one op: each chunk of images is convolved into
/// per-thread scratch and pooled at once, so the full-size convolution output is never stored.
/// With `relu`, it also applies ReLU to the pooled values (the same as ReLU before pooling, which
/// commutes with max), and the backward pass drops the gradient of the outputs it zeroed.
/// Returns nil where the fused kernel is unavailable or slower (no AVX-512BW or AVX2, an output under
/// 2x2, or two or more images but fewer than twice the thread count).
/// Results and gradients equal those of the separate ops.
///
/// ```swift
/// let y = conv2dMaxPool2d(x, weight: w, bias: b, padding: 1, relu: true)   // [N, 32, 28, 28] -> [N, 64, 14, 14]
///     ?? maxPool2d(conv2d(x, weight: w, bias: b, padding: 1), kernelSize: 2).relu()
/// ```
public func conv2dMaxPool2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1,
                            padding: Size2 = 0, dilation: Size2 = 1, groups: Int = 1, relu: Bool = false) -> Tensor? {
    var s = convShape(x, weight, bias, stride, padding, dilation, groups, "conv2dMaxPool2d")
    guard sk_conv2d_maxpool_supported(&s) != 0 else { return nil }
    let y = Tensor(uninitializedShape: [s.n, s.cout, s.oh / 2, s.ow / 2])
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    let tracked = GradMode.isEnabled && inputs.contains { $0.requiresGrad }
    // The winners are recorded only for a backward pass (none at inference).
    let winners = tracked ? winnerBuffer(UInt8.self, y.count) : nil
    let forms = ConvWeightForms.kept(for: weight)
    withUnsafePointer(to: &s) {
        sk_conv2d_maxpool_forward_prepared($0, x.data, weight.data, bias?.data, y.data, winners?.1, relu ? 1 : 0, forms?.handle)
    }
    withExtendedLifetime(forms) {}
    guard let (codes, cp) = winners else { return y }
    let xc = x.constant(), wc = weight.constant()
    return y.recorded("conv2dMaxPool2d", inputs) { g, needs in
        withExtendedLifetime(codes) {
            convGradients(needs, s, xc.shape, wc.shape) { sp, gx, gw, gb in
                sk_conv2d_maxpool_backward(sp, xc.data, wc.data, cp, g.data, gx, gw, gb)
            }
        }
    }
}

/// A pooled buffer of one `T` per pooled output, in which max pooling records which input won
/// (a byte code of the 2x2 window position, or an `Int32` input index) for the backward pass.
/// The pointer is valid while the storage lives.
func winnerBuffer<T>(_: T.Type, _ count: Int) -> (TensorStorage, UnsafeMutablePointer<T>) {
    let storage = TensorStorage(count: (count * MemoryLayout<T>.stride + 3) / 4)
    return (storage, UnsafeMutableRawPointer(storage.base).bindMemory(to: T.self, capacity: count))
}

private func poolShape(_ x: Tensor, _ k: Size2, _ stride: Size2, _ padding: Size2, _ dilation: Size2, _ op: String) -> sk_pool_shape {
    shapeCheck(x.rank == 4, op, "input must be NCHW, got \(fmt(x.shape))")
    shapeCheck(k.h > 0 && k.w > 0 && stride.h > 0 && stride.w > 0, op, "kernel \(k) and stride \(stride) must be positive")
    shapeCheck(padding.h * 2 <= k.h && padding.w * 2 <= k.w, op, "padding \(padding) must be at most half the kernel \(k)")
    var s = sk_pool_shape()
    s.n = x.shape[0]; s.c = x.shape[1]; s.h = x.shape[2]; s.w = x.shape[3]
    s.kh = k.h; s.kw = k.w; s.sh = stride.h; s.sw = stride.w; s.ph = padding.h; s.pw = padding.w
    s.dh = dilation.h; s.dw = dilation.w
    s.oh = windowPositions(s.h, kernel: s.kh, stride: s.sh, padding: s.ph, dilation: s.dh)
    s.ow = windowPositions(s.w, kernel: s.kw, stride: s.sw, padding: s.pw, dilation: s.dw)
    shapeCheck(s.oh > 0 && s.ow > 0, op, "input \(fmt(x.shape)) is too small for kernel \(k)")
    return s
}

/// Max pooling over NCHW input; `stride` defaults to the kernel size (as in PyTorch).
public func maxPool2d(_ x: Tensor, kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0,
                      dilation: Size2 = 1) -> Tensor {
    var s = poolShape(x, kernelSize, stride ?? kernelSize, padding, dilation, "maxPool2d")
    let y = Tensor(uninitializedShape: [s.n, s.c, s.oh, s.ow])
    guard GradMode.isEnabled && x.requiresGrad else {
        withUnsafePointer(to: &s) { sk_maxpool2d_forward($0, x.data, y.data, nil) }
        return y
    }
    // 2x2/stride-2 windows: one byte per output records which position won; otherwise the
    // argmax positions.
    if sk_maxpool2d_uses_codes(&s) != 0 {
        return maxPoolRecordingWinners(x, y, s, UInt8.self, sk_maxpool2d_forward_codes, sk_maxpool2d_backward_codes)
    }
    return maxPoolRecordingWinners(x, y, s, Int32.self, sk_maxpool2d_forward, sk_maxpool2d_backward)
}

/// `y = maxPool2d(x)` by `forward`, which records the winners in a buffer of `T` kept for
/// `backward`, the gradient kernel.
private func maxPoolRecordingWinners<T>(
    _ x: Tensor, _ y: Tensor, _ s: sk_pool_shape, _ type: T.Type,
    _ forward: (UnsafePointer<sk_pool_shape>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, UnsafeMutablePointer<T>?) -> Void,
    _ backward: @escaping (UnsafePointer<sk_pool_shape>?, UnsafePointer<T>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?) -> Void
) -> Tensor {
    let (winners, wp) = winnerBuffer(type, y.count)
    var s = s
    withUnsafePointer(to: &s) { forward($0, x.data, y.data, wp) }
    let inShape = x.shape
    return y.recorded("maxPool2d", [x]) { g, _ in
        let gx = Tensor(uninitializedShape: inShape)
        var sc = s
        withExtendedLifetime(winners) {
            withUnsafePointer(to: &sc) { backward($0, wp, g.data, gx.data) }
        }
        return [gx]
    }
}

/// Average pooling over NCHW input (padding counts as zeros, like PyTorch's default).
public func avgPool2d(_ x: Tensor, kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0) -> Tensor {
    var s = poolShape(x, kernelSize, stride ?? kernelSize, padding, 1, "avgPool2d")
    let y = Tensor(uninitializedShape: [s.n, s.c, s.oh, s.ow])
    withUnsafePointer(to: &s) { sk_avgpool2d_forward($0, x.data, y.data) }
    let inShape = x.shape
    return y.recorded("avgPool2d", [x]) { g, _ in
        let gx = Tensor(uninitializedShape: inShape)
        var sc = s
        withUnsafePointer(to: &sc) { sk_avgpool2d_backward($0, g.data, gx.data) }
        return [gx]
    }
}
