import StrataCore

/// Activation functions as layers, for `Sequential`.
public final class ReLU: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.relu() }
    public override func forwardInPlace(_ x: inout Tensor) -> Bool { x.reluInPlace() }
    public override var isMonotoneElementwise: Bool { true }
}

public final class LeakyReLU: Module {
    public let slope: Float
    public init(_ slope: Float = 0.01) { self.slope = slope }
    public override func forward(_ x: Tensor) -> Tensor { x.leakyRelu(slope) }
    public override var isMonotoneElementwise: Bool { slope >= 0 }
    public override var config: [String: Any] { ["slope": Double(slope)] }
}

public final class GELU: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.gelu() }
}

public final class Sigmoid: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.sigmoid() }
    public override var isMonotoneElementwise: Bool { true }
}

public final class Tanh: Module {
    public override func forward(_ x: Tensor) -> Tensor { x.tanh() }
    public override var isMonotoneElementwise: Bool { true }
}

/// Softmax along `axis` (class probabilities from logits).
public final class Softmax: Module {
    public let axis: Int
    public init(axis: Int = -1) { self.axis = axis }
    public override func forward(_ x: Tensor) -> Tensor { x.softmax(axis: axis) }
    public override var config: [String: Any] { ["axis": axis] }
}

public final class LogSoftmax: Module {
    public let axis: Int
    public init(axis: Int = -1) { self.axis = axis }
    public override func forward(_ x: Tensor) -> Tensor { x.logSoftmax(axis: axis) }
    public override var config: [String: Any] { ["axis": axis] }
}
