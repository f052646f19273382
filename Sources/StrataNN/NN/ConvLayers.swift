import StrataCore

/// 2-D convolution over NCHW input, weight `[out, in/groups, kh, kw]` (PyTorch layout and init).
///
/// ```swift
/// let conv = Conv2D(1, 32, kernelSize: 3, padding: 1)
/// let y = conv(x)          // [N, 1, 28, 28] -> [N, 32, 28, 28]
/// ```
public final class Conv2D: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Size2, stride: Size2, padding: Size2, dilation: Size2
    public let groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2, stride: Size2 = 1, padding: Size2 = 0,
                dilation: Size2 = 1, groups: Int = 1, bias: Bool = true) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv2D: groups \(groups) must divide channels \(inChannels) -> \(outChannels)")
        (self.inChannels, self.outChannels, self.kernelSize) = (inChannels, outChannels, kernelSize)
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
        let fanIn = inChannels / groups * kernelSize.h * kernelSize.w
        let bound = 1 / Float(fanIn).squareRoot()
        weight = Parameter(Tensor.rand([outChannels, inChannels / groups, kernelSize.h, kernelSize.w], low: -bound, high: bound))
        self.bias = bias ? Parameter(Tensor.rand([outChannels], low: -bound, high: bound)) : nil
    }

    public override func forward(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    /// This layer followed by 2x2/stride-2 max pooling (and ReLU), fused (nil where unsupported).
    func forwardMaxPooled(_ x: Tensor, relu: Bool = false) -> Tensor? {
        conv2dMaxPool2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation,
                        groups: groups, relu: relu)
    }

    public override var config: [String: Any] {
        ["in": inChannels, "out": outChannels, "kernel": [kernelSize.h, kernelSize.w], "stride": [stride.h, stride.w],
         "padding": [padding.h, padding.w], "dilation": [dilation.h, dilation.w], "groups": groups, "bias": bias != nil]
    }
}

/// 2-D transposed convolution over NCHW input, weight `[in, out/groups, kh, kw]` (PyTorch's
/// `ConvTranspose2d` layout and init): it grows feature maps back, as decoders and upsampling
/// paths do.
///
/// ```swift
/// let up = ConvTranspose2D(16, 8, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1)
/// let y = up(x)          // [N, 16, 7, 7] -> [N, 8, 14, 14]
/// ```
public final class ConvTranspose2D: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Size2, stride: Size2, padding: Size2, outputPadding: Size2, dilation: Size2
    public let groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Size2, stride: Size2 = 1, padding: Size2 = 0,
                outputPadding: Size2 = 0, dilation: Size2 = 1, groups: Int = 1, bias: Bool = true) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "ConvTranspose2D: groups \(groups) must divide channels \(inChannels) -> \(outChannels)")
        precondition(outputPadding.h < stride.h && outputPadding.w < stride.w,
                     "ConvTranspose2D: output padding \(outputPadding) must be below the stride \(stride)")
        (self.inChannels, self.outChannels, self.kernelSize) = (inChannels, outChannels, kernelSize)
        (self.stride, self.padding, self.outputPadding, self.dilation, self.groups) = (stride, padding, outputPadding, dilation, groups)
        // PyTorch's fan-in of this layout is its second dimension times the kernel.
        let bound = 1 / Float(outChannels / groups * kernelSize.h * kernelSize.w).squareRoot()
        weight = Parameter(Tensor.rand([inChannels, outChannels / groups, kernelSize.h, kernelSize.w], low: -bound, high: bound))
        self.bias = bias ? Parameter(Tensor.rand([outChannels], low: -bound, high: bound)) : nil
    }

    public override func forward(_ x: Tensor) -> Tensor {
        convTranspose2d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, outputPadding: outputPadding,
                        dilation: dilation, groups: groups)
    }

    public override var config: [String: Any] {
        ["in": inChannels, "out": outChannels, "kernel": [kernelSize.h, kernelSize.w], "stride": [stride.h, stride.w],
         "padding": [padding.h, padding.w], "output_padding": [outputPadding.h, outputPadding.w],
         "dilation": [dilation.h, dilation.w], "groups": groups, "bias": bias != nil]
    }
}

/// 1-D convolution over `[N, C, L]`, weight `[out, in/groups, k]` (PyTorch's `Conv1d` layout and init).
///
/// ```swift
/// let conv = Conv1D(1, 16, kernelSize: 5, padding: 2)
/// let y = conv(x)          // [N, 1, 8000] -> [N, 16, 8000]
/// ```
public final class Conv1D: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Int, stride: Int, padding: Int, dilation: Int
    public let groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0,
                     "Conv1D: groups \(groups) must divide channels \(inChannels) -> \(outChannels)")
        (self.inChannels, self.outChannels, self.kernelSize) = (inChannels, outChannels, kernelSize)
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
        let bound = 1 / Float(inChannels / groups * kernelSize).squareRoot()
        weight = Parameter(Tensor.rand([outChannels, inChannels / groups, kernelSize], low: -bound, high: bound))
        self.bias = bias ? Parameter(Tensor.rand([outChannels], low: -bound, high: bound)) : nil
    }

    public override func forward(_ x: Tensor) -> Tensor {
        conv1d(x, weight: weight.value, bias: bias?.value, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }

    public override var config: [String: Any] {
        ["in": inChannels, "out": outChannels, "kernel": kernelSize, "stride": stride, "padding": padding,
         "dilation": dilation, "groups": groups, "bias": bias != nil]
    }
}
