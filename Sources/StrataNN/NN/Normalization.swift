import StrataCore

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
        if isTraining {   // one fused kernel pair; the batch's statistics update the running ones
            let (y, m, v) = batchNorm(x, weight: weight.value, bias: bias.value, eps: eps)
            updateRunningStatistics(m, v, values: x.count / features)
            return y
        }
        if !(GradMode.isEnabled && (x.requiresGrad || weight.value.requiresGrad || bias.value.requiresGrad)) {
            return batchNorm(x, weight: weight.value, bias: bias.value, statistics: (runningMean.value, runningVar.value), eps: eps).y
        }
        // Evaluation mode with gradients (saliency, gradient checks): composed from ops.
        var bshape = [Int](repeating: 1, count: x.rank)
        bshape[1] = features
        let inv = (runningVar.value.reshape(bshape) + eps).sqrt().reciprocal()
        return (x - runningMean.value.reshape(bshape)) * (inv * weight.value.reshape(bshape)) + bias.value.reshape(bshape)
    }

    /// Training mode: this layer followed by 2x2/stride-2 max pooling (and ReLU), fused (nil in
    /// evaluation mode or for inputs that are not `[N, C, H, W]` with H and W at least 2).
    func forwardMaxPooled(_ x: Tensor, relu: Bool) -> Tensor? {
        guard isTraining, x.rank == 4, x.shape[1] == features, x.shape[2] >= 2, x.shape[3] >= 2 else { return nil }
        let (y, m, v) = batchNormMaxPool2d(x, weight: weight.value, bias: bias.value, eps: eps, relu: relu)
        updateRunningStatistics(m, v, values: x.count / features)
        return y
    }

    /// The running statistics move towards the batch's by `momentum` (the variance unbiased over
    /// the `values` each channel had).
    private func updateRunningStatistics(_ m: Tensor, _ v: Tensor, values: Int) {
        let n = Float(values)
        noGrad {
            runningMean.assign(runningMean.value * (1 - momentum) + m * momentum)
            runningVar.assign(runningVar.value * (1 - momentum) + v * ((n / Swift.max(n - 1, 1)) * momentum))
        }
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
