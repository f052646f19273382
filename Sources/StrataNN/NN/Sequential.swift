import StrataCore
/// Layers applied in order; children are named "0", "1", ... as in PyTorch.
///
/// ```swift
/// let mlp = Sequential(Flatten(), Linear(784, 256), ReLU(), Linear(256, 10))
/// mlp.namedParameters().map { $0.0 }   // ["1.weight", "1.bias", "3.weight", "3.bias"]
/// ```
public final class Sequential: Module {
    public let layers: [Module]

    /// Whether `forward` runs a max pooling that follows a monotone activation first, and the
    /// activation on the pooled values (the same outputs and gradients, on 4x less data). On by
    /// default; a benchmark may turn it off to measure what it saves.
    nonisolated(unsafe) public static var poolsBeforeActivation = true

    public init(_ layers: [Module]) { self.layers = layers }
    public convenience init(_ layers: Module...) { self.init(layers) }

    public override func forward(_ x: Tensor) -> Tensor {
        var h = x
        let tracing = ModuleTrace.current != nil
        var i = 0
        while i < layers.count {
            let l = layers[i]
            // Conv2D, or BatchNorm2d in training, [monotone activation] MaxPool2D(2): the layer and
            // the pooling fused, then the activation on the pooled values (ReLU inside the kernel).
            if !tracing, let conv = l as? Conv2D, let (y, next) = pooled(after: i, { conv.forwardMaxPooled(h, relu: $0) }) {
                (h, i) = (y, next)
                continue
            }
            if !tracing, let bn = l as? BatchNorm2d, let (y, next) = pooled(after: i, { bn.forwardMaxPooled(h, relu: $0) }) {
                (h, i) = (y, next)
                continue
            }
            // activation then max pool == max pool then activation, on 4x less data. (Not with
            // dilation: a window of padding alone pools to -inf, which ReLU after it would make 0.)
            if !tracing, Sequential.poolsBeforeActivation, l.isMonotoneElementwise, i + 1 < layers.count,
               let pool = layers[i + 1] as? MaxPool2D, pool.dilation == 1 {
                h = layers[i + 1](h)
                if !Sequential.forwardInPlace(l, &h) { h = l(h) }
                i += 2
                continue
            }
            // h is this loop's own value, so an element-wise layer may overwrite it.
            if tracing || !Sequential.forwardInPlace(l, &h) { h = l(h) }
            i += 1
        }
        return h
    }

    /// Where layer i is followed by [a monotone activation and] a halving MaxPool2D: the output of
    /// `fused` (layer, pooling, and ReLU when that is the activation; nil where it cannot run) with
    /// any other activation applied, and the index of the layer after the pooling.
    private func pooled(after i: Int, _ fused: (_ relu: Bool) -> Tensor?) -> (Tensor, Int)? {
        let act = i + 1 < layers.count && layers[i + 1].isMonotoneElementwise ? layers[i + 1] : nil
        let p = i + (act == nil ? 1 : 2)
        let fusedReLU = act is ReLU
        guard p < layers.count, let pool = layers[p] as? MaxPool2D, pool.isHalving else { return nil }
        let t0 = Profiler.isEnabled ? Profiler.now() : 0
        guard var y = fused(fusedReLU) else { return nil }
        // The fused kernel bypasses the layers' callAsFunction, so the profile names it here.
        if Profiler.isEnabled {
            Profiler.add("forward \(layers[i].typeName)+\(fusedReLU ? "ReLU+" : "")MaxPool2D \(y.shape)", Profiler.now() - t0)
        }
        if let act, !fusedReLU, !Sequential.forwardInPlace(act, &y) { y = act(y) }
        return (y, p + 1)
    }

    /// `layer.forwardInPlace(&x)`, timed under the layer's profile entry when profiling (the
    /// in-place path bypasses `callAsFunction`, which times the others).
    private static func forwardInPlace(_ layer: Module, _ x: inout Tensor) -> Bool {
        guard Profiler.isEnabled else { return layer.forwardInPlace(&x) }
        let t0 = Profiler.now()
        guard layer.forwardInPlace(&x) else { return false }
        Profiler.add("forward \(layer.typeName) \(x.shape)", Profiler.now() - t0)
        return true
    }

    public override func namedChildren() -> [(String, Module)] {
        layers.enumerated().map { ("\($0.offset)", $0.element) }
    }
}

/// `relu(body(x) + shortcut(x))`, the ResNet basic block: two 3x3 conv + BatchNorm, and a 1x1
/// conv + BatchNorm shortcut when the shape changes. Names follow torchvision's `BasicBlock`.
public final class ResidualBlock: Module {
    public let conv1: Conv2D, bn1: BatchNorm2d, conv2: Conv2D, bn2: BatchNorm2d
    public let downsample: Sequential?
    public let inChannels: Int, outChannels: Int, stride: Int

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int = 1) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        conv1 = Conv2D(inChannels, outChannels, kernelSize: 3, stride: Size2(stride, stride), padding: 1, bias: false)
        bn1 = BatchNorm2d(outChannels)
        conv2 = Conv2D(outChannels, outChannels, kernelSize: 3, padding: 1, bias: false)
        bn2 = BatchNorm2d(outChannels)
        downsample = (stride != 1 || inChannels != outChannels)
            ? Sequential(Conv2D(inChannels, outChannels, kernelSize: 1, stride: Size2(stride, stride), bias: false), BatchNorm2d(outChannels))
            : nil
    }

    public override func forward(_ x: Tensor) -> Tensor {
        let h = bn2(conv2(bn1(conv1(x)).relu()))
        return (h + (downsample?(x) ?? x)).relu()
    }

    public override var config: [String: Any] { ["in": inChannels, "out": outChannels, "stride": stride] }
}

/// `body(x) + x`: a residual connection around any shape-preserving module.
public final class Residual: Module {
    public let body: Module
    public init(_ body: Module) { self.body = body }
    public override func forward(_ x: Tensor) -> Tensor { body(x) + x }
}
