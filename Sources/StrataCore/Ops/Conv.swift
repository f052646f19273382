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
public func windowPositions(_ size: Int, kernel: Int, stride: Int, padding: Int, dilation: Int = 1, ceilMode: Bool = false) -> Int {
    windowPositions(size, kernel: kernel, stride: stride, padBefore: padding, padAfter: padding, dilation: dilation, ceilMode: ceilMode)
}

/// `windowPositions` with different padding before and after (ONNX's pads). In ceil mode a last,
/// partial window is kept where it starts inside the input or the padding before it (PyTorch's
/// and onnxruntime's rule).
///
/// ```swift
/// windowPositions(5, kernel: 2, stride: 2, padBefore: 1, padAfter: 1, ceilMode: true)   // 3
/// ```
public func windowPositions(_ size: Int, kernel: Int, stride: Int, padBefore: Int, padAfter: Int, dilation: Int = 1,
                            ceilMode: Bool = false) -> Int {
    let span = size + padBefore + padAfter - dilation * (kernel - 1) - 1
    guard span >= 0 else { return 0 }
    let n = (ceilMode ? span + stride - 1 : span) / stride + 1
    return ceilMode && (n - 1) * stride >= size + padBefore ? n - 1 : n
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

/// Where and how a pooling op's windows lie: the padding before and after each axis (ONNX's pads
/// may differ; PyTorch's are the same), dilation, ceil mode, and whether an average leaves the
/// padding out of its divisor.
package struct PoolWindows {
    package var kernel: Size2, stride: Size2, padBefore: Size2, padAfter: Size2, dilation: Size2 = 1
    package var ceilMode = false, countIncludePad = true

    package init(kernel: Size2, stride: Size2, padBefore: Size2, padAfter: Size2, dilation: Size2 = 1,
                 ceilMode: Bool = false, countIncludePad: Bool = true) {
        (self.kernel, self.stride, self.padBefore, self.padAfter) = (kernel, stride, padBefore, padAfter)
        (self.dilation, self.ceilMode, self.countIncludePad) = (dilation, ceilMode, countIncludePad)
    }
}

private func poolShape(_ x: Tensor, _ p: PoolWindows, _ op: String) -> sk_pool_shape {
    let (k, stride) = (p.kernel, p.stride)
    shapeCheck(x.rank == 4, op, "input must be NCHW, got \(fmt(x.shape))")
    shapeCheck(k.h > 0 && k.w > 0 && stride.h > 0 && stride.w > 0 && p.dilation.h > 0 && p.dilation.w > 0, op,
               "kernel \(k), stride \(stride) and dilation \(p.dilation) must be positive")
    var s = sk_pool_shape()
    s.n = x.shape[0]; s.c = x.shape[1]; s.h = x.shape[2]; s.w = x.shape[3]
    s.kh = k.h; s.kw = k.w; s.sh = stride.h; s.sw = stride.w; s.ph = p.padBefore.h; s.pw = p.padBefore.w
    s.eh = p.padAfter.h; s.ew = p.padAfter.w; s.dh = p.dilation.h; s.dw = p.dilation.w
    s.exclude_pad = p.countIncludePad ? 0 : 1
    s.oh = windowPositions(s.h, kernel: s.kh, stride: s.sh, padBefore: s.ph, padAfter: s.eh, dilation: s.dh, ceilMode: p.ceilMode)
    s.ow = windowPositions(s.w, kernel: s.kw, stride: s.sw, padBefore: s.pw, padAfter: s.ew, dilation: s.dw, ceilMode: p.ceilMode)
    shapeCheck(s.oh > 0 && s.ow > 0, op, "input \(fmt(x.shape)) is too small for kernel \(k)")
    return s
}

/// PyTorch's windows: the same padding on both sides, at most half the kernel.
private func symmetricWindows(_ k: Size2, _ stride: Size2?, _ padding: Size2, _ op: String) -> PoolWindows {
    shapeCheck(padding.h >= 0 && padding.w >= 0 && padding.h * 2 <= k.h && padding.w * 2 <= k.w, op,
               "padding \(padding) must be at most half the kernel \(k)")
    return PoolWindows(kernel: k, stride: stride ?? k, padBefore: padding, padAfter: padding)
}

/// Max pooling over NCHW input; `stride` defaults to the kernel size (as in PyTorch). `ceilMode`
/// keeps a last, partial window where the input does not divide evenly.
///
/// ```swift
/// let y = maxPool2d(x, kernelSize: 3, stride: 2, ceilMode: true)   // [N, 64, 56, 56] -> [N, 64, 28, 28] (27 without)
/// ```
public func maxPool2d(_ x: Tensor, kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0,
                      dilation: Size2 = 1, ceilMode: Bool = false) -> Tensor {
    var p = symmetricWindows(kernelSize, stride, padding, "maxPool2d")
    (p.dilation, p.ceilMode) = (dilation, ceilMode)
    return pool2d(x, max: true, p, "maxPool2d")
}

/// Max (`max`) or average pooling over NCHW input with any of `PoolWindows`' settings; each pad
/// must be below the kernel. ONNX's pooling runs through this.
package func pool2d(_ x: Tensor, max: Bool, _ p: PoolWindows, _ op: String) -> Tensor {
    shapeCheck([p.padBefore.h, p.padBefore.w, p.padAfter.h, p.padAfter.w].allSatisfy({ $0 >= 0 }) &&
               Swift.max(p.padBefore.h, p.padAfter.h) < p.kernel.h && Swift.max(p.padBefore.w, p.padAfter.w) < p.kernel.w, op,
               "padding \(p.padBefore) before and \(p.padAfter) after must be below the kernel \(p.kernel)")
    var s = poolShape(x, p, op)
    let y = Tensor(uninitializedShape: [s.n, s.c, s.oh, s.ow])
    guard max else {
        withUnsafePointer(to: &s) { sk_avgpool2d_forward($0, x.data, y.data) }
        let inShape = x.shape
        return y.recorded(op, [x]) { g, _ in
            let gx = Tensor(uninitializedShape: inShape)
            var sc = s
            withUnsafePointer(to: &sc) { sk_avgpool2d_backward($0, g.data, gx.data) }
            return [gx]
        }
    }
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

/// Average pooling over NCHW input. As in PyTorch, padding counts as zeros unless
/// `countIncludePad` is false, and `ceilMode` keeps a last, partial window, whose divisor counts
/// only the taps inside the (padded) input.
///
/// ```swift
/// let y = avgPool2d(x, kernelSize: 3, stride: 2, padding: 1, countIncludePad: false)
/// ```
public func avgPool2d(_ x: Tensor, kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0,
                      ceilMode: Bool = false, countIncludePad: Bool = true) -> Tensor {
    var p = symmetricWindows(kernelSize, stride, padding, "avgPool2d")
    (p.ceilMode, p.countIncludePad) = (ceilMode, countIncludePad)
    return pool2d(x, max: false, p, "avgPool2d")
}

/// Adaptive average pooling over NCHW input to `outputSize` (PyTorch's `AdaptiveAvgPool2d`):
/// output row i averages input rows floor(i*H/OH) up to ceil((i+1)*H/OH), and columns alike, so
/// any input size gives the same output size.
///
/// ```swift
/// let y = adaptiveAvgPool2d(x, outputSize: 7)   // [N, 512, 13, 15] -> [N, 512, 7, 7]
/// ```
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: Size2) -> Tensor {
    adaptivePool2d(x, outputSize, max: false, "adaptiveAvgPool2d")
}

/// Adaptive max pooling over NCHW input to `outputSize` (PyTorch's `AdaptiveMaxPool2d`), over the
/// bins of `adaptiveAvgPool2d`.
///
/// ```swift
/// let y = adaptiveMaxPool2d(x, outputSize: 1)   // [N, 64, 9, 9] -> [N, 64, 1, 1]
/// ```
public func adaptiveMaxPool2d(_ x: Tensor, outputSize: Size2) -> Tensor {
    adaptivePool2d(x, outputSize, max: true, "adaptiveMaxPool2d")
}

private func adaptivePool2d(_ x: Tensor, _ size: Size2, max: Bool, _ op: String) -> Tensor {
    shapeCheck(x.rank == 4, op, "input must be NCHW, got \(fmt(x.shape))")
    shapeCheck(size.h > 0 && size.w > 0, op, "output size \(size) must be positive")
    shapeCheck(x.shape[2] > 0 && x.shape[3] > 0, op, "input \(fmt(x.shape)) is empty")
    let (planes, h, w) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
    let y = Tensor(uninitializedShape: [x.shape[0], x.shape[1], size.h, size.w])
    let tracked = GradMode.isEnabled && x.requiresGrad
    let winners = max && tracked ? winnerBuffer(Int32.self, y.count) : nil
    sk_adaptive_pool2d_forward(planes, h, w, size.h, size.w, max ? 1 : 0, x.data, y.data, winners?.1)
    guard tracked else { return y }
    let inShape = x.shape
    return y.recorded(op, [x]) { g, _ in
        let gx = Tensor(uninitializedShape: inShape)
        withExtendedLifetime(winners?.0) {
            sk_adaptive_pool2d_backward(planes, h, w, size.h, size.w, max ? 1 : 0, winners?.1, g.data, gx.data)
        }
        return [gx]
    }
}
