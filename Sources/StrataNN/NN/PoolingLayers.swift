import StrataCore

/// What the pooling layers share: the window, its stride (the kernel size by default), padding
/// and ceil mode, and the `config` that stores them.
public class Pool2D: Module {
    public let kernelSize: Size2, stride: Size2, padding: Size2
    /// Keep a last, partial window where the input does not divide evenly (PyTorch's `ceil_mode`).
    public let ceilMode: Bool

    init(_ kernelSize: Size2, stride: Size2?, padding: Size2, ceilMode: Bool) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.ceilMode = ceilMode
    }

    // The options appear only when set, so model files of plain pooling read as before.
    public override var config: [String: Any] {
        var c: [String: Any] = ["kernel": [kernelSize.h, kernelSize.w], "stride": [stride.h, stride.w], "padding": [padding.h, padding.w]]
        if ceilMode { c["ceil_mode"] = true }
        return c
    }
}

/// Max pooling; the stride defaults to the kernel size.
///
/// ```swift
/// let pool = MaxPool2D(3, stride: 2, ceilMode: true)   // [N, 96, 108, 108] -> [N, 96, 54, 54] (53 without)
/// ```
public final class MaxPool2D: Pool2D {
    public let dilation: Size2

    /// 2x2 windows, stride 2, no padding: the case the fused convolution kernel handles.
    var isHalving: Bool { kernelSize == 2 && stride == 2 && padding == 0 && dilation == 1 && !ceilMode }

    public init(_ kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0, dilation: Size2 = 1, ceilMode: Bool = false) {
        self.dilation = dilation
        super.init(kernelSize, stride: stride, padding: padding, ceilMode: ceilMode)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        maxPool2d(x, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }

    public override var config: [String: Any] {
        var c = super.config
        if dilation != 1 { c["dilation"] = [dilation.h, dilation.w] }
        return c
    }
}

/// Average pooling; the stride defaults to the kernel size. Padding counts as zeros in the
/// average unless `countIncludePad` is false (PyTorch's `count_include_pad`; Keras's and
/// TensorFlow's "same" pooling leaves it out).
public final class AvgPool2D: Pool2D {
    public let countIncludePad: Bool

    public init(_ kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0, ceilMode: Bool = false, countIncludePad: Bool = true) {
        self.countIncludePad = countIncludePad
        super.init(kernelSize, stride: stride, padding: padding, ceilMode: ceilMode)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        avgPool2d(x, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad)
    }

    public override var config: [String: Any] {
        var c = super.config
        if !countIncludePad { c["count_include_pad"] = false }
        return c
    }
}

/// What the 1-D pooling layers share: the window, its stride (the kernel size by default),
/// padding and ceil mode, and the `config` that stores them.
public class Pool1D: Module {
    public let kernelSize: Int, stride: Int, padding: Int
    /// Keep a last, partial window where the input does not divide evenly (PyTorch's `ceil_mode`).
    public let ceilMode: Bool

    init(_ kernelSize: Int, stride: Int?, padding: Int, ceilMode: Bool) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.ceilMode = ceilMode
    }

    public override var config: [String: Any] {
        var c: [String: Any] = ["kernel": kernelSize, "stride": stride, "padding": padding]
        if ceilMode { c["ceil_mode"] = true }
        return c
    }
}

/// Max pooling over `[N, C, L]`; the stride defaults to the kernel size.
public final class MaxPool1D: Pool1D {
    public let dilation: Int

    public init(_ kernelSize: Int, stride: Int? = nil, padding: Int = 0, dilation: Int = 1, ceilMode: Bool = false) {
        self.dilation = dilation
        super.init(kernelSize, stride: stride, padding: padding, ceilMode: ceilMode)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        maxPool1d(x, kernelSize: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
    }

    public override var config: [String: Any] {
        var c = super.config
        if dilation != 1 { c["dilation"] = dilation }
        return c
    }
}

/// Average pooling over `[N, C, L]`; the stride defaults to the kernel size. Padding counts as
/// zeros unless `countIncludePad` is false.
public final class AvgPool1D: Pool1D {
    public let countIncludePad: Bool

    public init(_ kernelSize: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false, countIncludePad: Bool = true) {
        self.countIncludePad = countIncludePad
        super.init(kernelSize, stride: stride, padding: padding, ceilMode: ceilMode)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        avgPool1d(x, kernelSize: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad)
    }

    public override var config: [String: Any] {
        var c = super.config
        if !countIncludePad { c["count_include_pad"] = false }
        return c
    }
}

/// Mean over the spatial dimensions: `[N, C, H, W] -> [N, C]`, or over the length of a sequence,
/// `[N, C, L] -> [N, C]` (Keras's `GlobalAveragePooling1D`).
public final class GlobalAvgPool: Module {
    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 || x.rank == 4, "GlobalAvgPool: input must be [N, C, L] or [N, C, H, W], got \(x.shape)")
        return x.mean(axes: Array(2..<x.rank))
    }
}

/// What the adaptive pooling layers share: the output size, whatever the input's.
public class AdaptivePool2D: Module {
    public let outputSize: Size2

    init(_ outputSize: Size2) {
        precondition(outputSize.h > 0 && outputSize.w > 0, "\(Self.self): output size \(outputSize) must be positive")
        self.outputSize = outputSize
    }

    public override var config: [String: Any] { ["size": [outputSize.h, outputSize.w]] }
}

/// Average pooling to a fixed output size, whatever the input's (PyTorch's `AdaptiveAvgPool2d`):
/// a classifier head that takes images of any size, as torchvision's VGG and AlexNet have it.
///
/// ```swift
/// let head = Sequential(AdaptiveAvgPool2D(7), Flatten(), Linear(512 * 7 * 7, 10))
/// ```
public final class AdaptiveAvgPool2D: AdaptivePool2D {
    public override init(_ outputSize: Size2) { super.init(outputSize) }
    public override func forward(_ x: Tensor) -> Tensor { adaptiveAvgPool2d(x, outputSize: outputSize) }
}

/// Max pooling to a fixed output size, whatever the input's (PyTorch's `AdaptiveMaxPool2d`).
public final class AdaptiveMaxPool2D: AdaptivePool2D {
    public override init(_ outputSize: Size2) { super.init(outputSize) }
    public override func forward(_ x: Tensor) -> Tensor { adaptiveMaxPool2d(x, outputSize: outputSize) }
}

/// What the 1-D adaptive pooling layers share: the output length, whatever the input's.
public class AdaptivePool1D: Module {
    public let outputSize: Int

    init(_ outputSize: Int) {
        precondition(outputSize > 0, "\(Self.self): output size \(outputSize) must be positive")
        self.outputSize = outputSize
    }

    public override var config: [String: Any] { ["size": outputSize] }
}

/// Average pooling of `[N, C, L]` to `[N, C, outputSize]`, whatever L is (PyTorch's `AdaptiveAvgPool1d`).
public final class AdaptiveAvgPool1D: AdaptivePool1D {
    public override init(_ outputSize: Int) { super.init(outputSize) }
    public override func forward(_ x: Tensor) -> Tensor { adaptiveAvgPool1d(x, outputSize: outputSize) }
}

/// Max pooling of `[N, C, L]` to `[N, C, outputSize]`, whatever L is (PyTorch's `AdaptiveMaxPool1d`).
public final class AdaptiveMaxPool1D: AdaptivePool1D {
    public override init(_ outputSize: Int) { super.init(outputSize) }
    public override func forward(_ x: Tensor) -> Tensor { adaptiveMaxPool1d(x, outputSize: outputSize) }
}

/// Maximum over the spatial dimensions: `[N, C, H, W] -> [N, C]`, or over a sequence's length,
/// `[N, C, L] -> [N, C]` (Keras's `GlobalMaxPooling2D` and `GlobalMaxPooling1D`).
public final class GlobalMaxPool: Module {
    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 3 || x.rank == 4, "GlobalMaxPool: input must be [N, C, L] or [N, C, H, W], got \(x.shape)")
        let planes = x.rank == 3 ? x.unsqueeze(2) : x
        return adaptiveMaxPool2d(planes, outputSize: 1).reshape([x.shape[0], x.shape[1]])
    }
}
