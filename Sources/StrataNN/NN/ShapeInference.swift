import StrataCore

/// A module that can say its output shape without running: custom layers conform so that
/// model files holding them are checked too.
public protocol ShapeInferable {
    /// The output shape for an input of `shape` (batch first); throws when the input cannot fit.
    func outputShape(for shape: [Int]) throws -> [Int]
}

/// Output shapes of the built-in layers, in one table, for inputs read from files: a model
/// file's `input_shape` is checked against its first layer (and the class names against the
/// last) before anything runs, since a mismatch inside the ops is a precondition, not an error.
///
/// ```swift
/// let mlp = Sequential(Flatten(), Linear(784, 10))
/// try ShapeInference.outputShape(of: mlp, for: [1, 1, 28, 28])    // [1, 10]
/// try ShapeInference.outputShape(of: mlp, for: [1, 1, 28, 29])    // throws: Linear takes 784 features, gets 812
/// ```
public enum ShapeInference {
    /// The output shape of `module` for an input of `shape`, or nil where a layer's rule is
    /// unknown (a custom module that is not `ShapeInferable`).
    public static func outputShape(of module: Module, for shape: [Int]) throws -> [Int]? {
        func need(_ ok: Bool, _ what: @autoclosure () -> String) throws {
            if !ok { throw StrataError("\(module.typeName) \(what())") }
        }
        switch module {
        case let m as ShapeInferable:
            return try m.outputShape(for: shape)
        case let l as Linear:
            try need(shape.count >= 2 && shape.last == l.inFeatures, "takes \(l.inFeatures) features, gets input \(shape)")
            return shape.dropLast() + [l.outFeatures]
        case let c as Conv2D:
            try need(shape.count == 4 && shape[1] == c.inChannels, "takes [N, \(c.inChannels), H, W], gets input \(shape)")
            try need(c.stride.h > 0 && c.stride.w > 0, "has stride \(c.stride); it must be positive")
            let oh = windowPositions(shape[2], kernel: c.kernelSize.h, stride: c.stride.h, padding: c.padding.h, dilation: c.dilation.h)
            let ow = windowPositions(shape[3], kernel: c.kernelSize.w, stride: c.stride.w, padding: c.padding.w, dilation: c.dilation.w)
            try need(oh > 0 && ow > 0, "kernel \(c.kernelSize) does not fit input \(shape)")
            return [shape[0], c.outChannels, oh, ow]
        case let c as ConvTranspose2D:
            try need(shape.count == 4 && shape[1] == c.inChannels, "takes [N, \(c.inChannels), H, W], gets input \(shape)")
            let oh = (shape[2] - 1) * c.stride.h - 2 * c.padding.h + c.dilation.h * (c.kernelSize.h - 1) + c.outputPadding.h + 1
            let ow = (shape[3] - 1) * c.stride.w - 2 * c.padding.w + c.dilation.w * (c.kernelSize.w - 1) + c.outputPadding.w + 1
            try need(oh > 0 && ow > 0, "padding \(c.padding) leaves no output for input \(shape)")
            // It multiplies sizes by the stride: a model file's stride must not make one example's output huge.
            try need((checkedProduct([c.outChannels, oh, ow]) ?? .max) <= 1 << 28, "makes an output of [\(c.outChannels), \(oh), \(ow)] per example from input \(shape), over 2^28 values")
            return [shape[0], c.outChannels, oh, ow]
        case let c as Conv1D:
            try need(shape.count == 3 && shape[1] == c.inChannels, "takes [N, \(c.inChannels), L], gets input \(shape)")
            try need(c.stride > 0, "has stride \(c.stride); it must be positive")
            let ol = windowPositions(shape[2], kernel: c.kernelSize, stride: c.stride, padding: c.padding, dilation: c.dilation)
            try need(ol > 0, "kernel \(c.kernelSize) does not fit input \(shape)")
            return [shape[0], c.outChannels, ol]
        case let p as Pool1D:
            try need(shape.count == 3, "takes [N, C, L], gets input \(shape)")
            try need(p.kernelSize > 0 && p.stride > 0, "has kernel \(p.kernelSize) and stride \(p.stride); both must be positive")
            try need(p.padding * 2 <= p.kernelSize, "padding \(p.padding) is over half the kernel \(p.kernelSize)")
            let ol = windowPositions(shape[2], kernel: p.kernelSize, stride: p.stride, padding: p.padding,
                                     dilation: (p as? MaxPool1D)?.dilation ?? 1, ceilMode: p.ceilMode)
            try need(ol > 0, "kernel \(p.kernelSize) does not fit input \(shape)")
            return [shape[0], shape[1], ol]
        case let p as Pool2D:
            try need(shape.count == 4, "takes [N, C, H, W], gets input \(shape)")
            try need(p.kernelSize.h > 0 && p.kernelSize.w > 0 && p.stride.h > 0 && p.stride.w > 0, "has kernel \(p.kernelSize) and stride \(p.stride); both must be positive")
            try need(p.padding.h * 2 <= p.kernelSize.h && p.padding.w * 2 <= p.kernelSize.w, "padding \(p.padding) is over half the kernel \(p.kernelSize)")
            let dilation = (p as? MaxPool2D)?.dilation ?? 1
            let oh = windowPositions(shape[2], kernel: p.kernelSize.h, stride: p.stride.h, padding: p.padding.h, dilation: dilation.h, ceilMode: p.ceilMode)
            let ow = windowPositions(shape[3], kernel: p.kernelSize.w, stride: p.stride.w, padding: p.padding.w, dilation: dilation.w, ceilMode: p.ceilMode)
            try need(oh > 0 && ow > 0, "kernel \(p.kernelSize) does not fit input \(shape)")
            return [shape[0], shape[1], oh, ow]
        case let p as AdaptivePool2D:
            try need(shape.count == 4 && shape[2] > 0 && shape[3] > 0, "takes [N, C, H, W], gets input \(shape)")
            return [shape[0], shape[1], p.outputSize.h, p.outputSize.w]
        case let p as AdaptivePool1D:
            try need(shape.count == 3 && shape[2] > 0, "takes [N, C, L], gets input \(shape)")
            return [shape[0], shape[1], p.outputSize]
        case is GlobalAvgPool, is GlobalMaxPool:
            try need(shape.count == 3 || shape.count == 4, "takes [N, C, L] or [N, C, H, W], gets input \(shape)")
            return [shape[0], shape[1]]
        case is Flatten:
            try need(shape.count >= 2, "takes a batch, gets input \(shape)")
            guard let n = checkedProduct(Array(shape.dropFirst())) else { throw StrataError("Flatten: input \(shape) is too large") }
            return [shape[0], n]
        case let b as BatchNorm:
            try need(shape.count >= 2 && shape[1] == b.features, "takes \(b.features) channels, gets input \(shape)")
            return shape
        case let n as LayerNorm:
            try need(shape.count > n.normalizedShape.count && Array(shape.suffix(n.normalizedShape.count)) == n.normalizedShape,
                     "normalises \(n.normalizedShape), gets input \(shape)")
            return shape
        case let e as Embedding:
            return shape + [e.dim]
        case let s as Sequential:
            var h = shape
            for layer in s.layers {
                guard let next = try outputShape(of: layer, for: h) else { return nil }
                h = next
            }
            return h
        case let r as Residual:
            guard let out = try outputShape(of: r.body, for: shape) else { return nil }
            try need(out == shape, "body turns \(shape) into \(out); a residual needs the same shape")
            return shape
        case let r as ResidualBlock:
            guard let out = try outputShape(of: Sequential(r.conv1, r.bn1, r.conv2, r.bn2), for: shape) else { return nil }
            if let d = r.downsample { _ = try outputShape(of: d, for: shape) }
            return out
        case is ReLU, is LeakyReLU, is GELU, is Sigmoid, is Tanh, is Identity, is Dropout:
            return shape
        case let s as Softmax:
            try need(s.axis < shape.count && s.axis >= -shape.count, "axis \(s.axis) is outside input \(shape)")
            return shape
        case let s as LogSoftmax:
            try need(s.axis < shape.count && s.axis >= -shape.count, "axis \(s.axis) is outside input \(shape)")
            return shape
        default:
            return nil
        }
    }
}
