/// Batch normalisation over the channel axis (axis 1): `[N, C]` for `BatchNorm1d`,
/// `[N, C, H, W]` for `BatchNorm2d`. Training mode normalises with the batch statistics and
/// updates the running ones (unbiased variance, momentum 0.1, as PyTorch); evaluation mode
/// uses the running statistics.
public class BatchNorm: Module {
    public let weight: Parameter, bias: Parameter
    public let runningMean: Parameter, runningVar: Parameter
    public let features: Int
    public let eps: Float, momentum: Float

    public init(_ features: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.features = features
        self.eps = eps
        self.momentum = momentum
        weight = Parameter(Tensor.ones([features]))
        bias = Parameter(Tensor.zeros([features]))
        runningMean = Parameter(Tensor.zeros([features]), trainable: false)
        runningVar = Parameter(Tensor.ones([features]), trainable: false)
    }

    public override func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2 && x.shape[1] == features, "\(typeName): input \(x.shape) does not have \(features) channels on axis 1")
        var bshape = [Int](repeating: 1, count: x.rank)
        bshape[1] = features
        let axes = [0] + Array(2..<x.rank)
        let mean: Tensor, variance: Tensor
        if isTraining {
            mean = x.mean(axes: axes, keepDims: true)
            variance = (x - mean).square().mean(axes: axes, keepDims: true)
            let n = Float(x.count / features)
            noGrad {
                let m = mean.detached().reshape([features]), v = variance.detached().reshape([features]) * (n / Swift.max(n - 1, 1))
                runningMean.assign(runningMean.value * (1 - momentum) + m * momentum)
                runningVar.assign(runningVar.value * (1 - momentum) + v * momentum)
            }
        } else {
            mean = runningMean.value.reshape(bshape)
            variance = runningVar.value.reshape(bshape)
        }
        let inv = (variance + eps).sqrt().reciprocal()
        return (x - mean) * (inv * weight.value.reshape(bshape)) + bias.value.reshape(bshape)
    }

    public override var config: [String: Any] { ["features": features, "eps": Double(eps), "momentum": Double(momentum)] }
}

public final class BatchNorm1d: BatchNorm {}
public final class BatchNorm2d: BatchNorm {}

/// Normalises over the last dimensions (`normalizedShape`), with a learned scale and shift.
public final class LayerNorm: Module {
    public let weight: Parameter, bias: Parameter
    public let normalizedShape: [Int]
    public let eps: Float

    public init(_ normalizedShape: [Int], eps: Float = 1e-5) {
        self.normalizedShape = normalizedShape
        self.eps = eps
        weight = Parameter(Tensor.ones(normalizedShape))
        bias = Parameter(Tensor.zeros(normalizedShape))
    }

    public convenience init(_ features: Int, eps: Float = 1e-5) { self.init([features], eps: eps) }

    public override func forward(_ x: Tensor) -> Tensor {
        let k = normalizedShape.count
        precondition(Array(x.shape.suffix(k)) == normalizedShape, "LayerNorm: input \(x.shape) does not end in \(normalizedShape)")
        let axes = Array((x.rank - k)..<x.rank)
        let mean = x.mean(axes: axes, keepDims: true)
        let d = x - mean
        let inv = (d.square().mean(axes: axes, keepDims: true) + eps).sqrt().reciprocal()
        return d * inv * weight.value + bias.value
    }

    public override var config: [String: Any] { ["shape": normalizedShape, "eps": Double(eps)] }
}
