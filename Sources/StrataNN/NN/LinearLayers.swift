import StrataCore

/// A fully connected layer: `y = x W^T + b`, weight `[out, in]` as in PyTorch.
/// Initialised like PyTorch: weight and bias uniform in ±1/sqrt(in).
///
/// ```swift
/// let fc = Linear(784, 256)
/// let y = fc(x)            // [64, 784] -> [64, 256]
/// ```
public final class Linear: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inFeatures: Int, outFeatures: Int

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear: sizes must be positive, got \(inFeatures) -> \(outFeatures)")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(Tensor.rand([outFeatures, inFeatures], low: -bound, high: bound))
        self.bias = bias ? Parameter(Tensor.rand([outFeatures], low: -bound, high: bound)) : nil
    }

    public override func forward(_ x: Tensor) -> Tensor { linear(x, weight: weight.value, bias: bias?.value) }

    public override var config: [String: Any] { ["in": inFeatures, "out": outFeatures, "bias": bias != nil] }
}

/// Reshapes `[N, ...]` to `[N, rest]` (PyTorch's `nn.Flatten()`).
public final class Flatten: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.flatten(startDim: 1) }
}

/// Passes its input through unchanged.
public final class Identity: Module {
    public override func forward(_ x: Tensor) -> Tensor { x }
}
