import CStrata

// Unary elementwise ops. Forward and backward both run in the C kernels (vectorised); the
// backward kernel gets the op's input `x` and/or output `y`, whichever its rule needs.

extension Tensor {
    @usableFromInline
    func rawUnary(_ op: Int, _ p: Float = 0) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        sk_unary(Int32(op), count, data, out.data, p)
        return out
    }

    @usableFromInline
    static func rawUnaryBackward(_ op: Int, x: Tensor?, y: Tensor?, g: Tensor, _ p: Float = 0) -> Tensor {
        let out = Tensor(uninitializedShape: g.shape)
        sk_unary_backward(Int32(op), g.count, x?.data, y?.data, g.data, out.data, p)
        return out
    }

    /// A unary op whose gradient rule reads the input x.
    private func unaryUsingInput(_ op: Int, _ name: String, _ p: Float = 0) -> Tensor {
        let x = constant()
        return rawUnary(op, p).recorded(name, [self]) { g, _ in
            [Tensor.rawUnaryBackward(op, x: x, y: nil, g: g, p)]
        }
    }

    /// A unary op whose gradient rule reads the output y.
    private func unaryUsingOutput(_ op: Int, _ name: String, _ p: Float = 0) -> Tensor {
        let y = rawUnary(op, p)
        return y.recorded(name, [self]) { g, _ in
            [Tensor.rawUnaryBackward(op, x: nil, y: y, g: g, p)]
        }
    }

    /// ReLU written over this tensor's own storage when no other tensor or saved graph value
    /// shares it; returns false (and changes nothing) otherwise. The gradient rule reads the
    /// output, so the overwritten input is not needed.
    public mutating func reluInPlace() -> Bool {
        guard isKnownUniquelyReferenced(&storage) else { return false }
        storage.version &+= 1
        sk_relu_inplace(count, data)
        let y = Tensor(storage: storage, shape: shape)
        let parent = self
        self = y.recorded("relu", [parent]) { g, _ in
            // relu'(x) = 1 where the output is positive.
            [Tensor.rawUnaryBackward(SK_RELU, x: y, y: nil, g: g)]
        }
        return true
    }

    public static prefix func - (x: Tensor) -> Tensor {
        x.rawUnary(SK_NEG).recorded("neg", [x]) { g, _ in [g.rawUnary(SK_NEG)] }
    }

    public func exp() -> Tensor { unaryUsingOutput(SK_EXP, "exp") }
    /// Natural logarithm.
    public func log() -> Tensor { unaryUsingInput(SK_LOG, "log") }
    public func sqrt() -> Tensor { unaryUsingOutput(SK_SQRT, "sqrt") }
    public func abs() -> Tensor { unaryUsingInput(SK_ABS, "abs") }
    public func tanh() -> Tensor { unaryUsingOutput(SK_TANH, "tanh") }
    public func sigmoid() -> Tensor { unaryUsingOutput(SK_SIGMOID, "sigmoid") }
    public func relu() -> Tensor { unaryUsingInput(SK_RELU, "relu") }
    /// `x` where positive, `slope * x` elsewhere.
    public func leakyRelu(_ slope: Float = 0.01) -> Tensor { unaryUsingInput(SK_LEAKY_RELU, "leakyRelu", slope) }
    /// Gaussian error linear unit, exact form `x * Phi(x)` (PyTorch's default).
    public func gelu() -> Tensor { unaryUsingInput(SK_GELU, "gelu") }
    public func square() -> Tensor { unaryUsingInput(SK_SQUARE, "square") }
    public func reciprocal() -> Tensor { unaryUsingOutput(SK_RECIPROCAL, "reciprocal") }
    /// -1, 0 or 1; its gradient is 0.
    public func sign() -> Tensor { rawUnary(SK_SIGN) }
}

/// Free-function forms, for code that reads like the maths.
public func exp(_ x: Tensor) -> Tensor { x.exp() }
public func log(_ x: Tensor) -> Tensor { x.log() }
public func sqrt(_ x: Tensor) -> Tensor { x.sqrt() }
public func abs(_ x: Tensor) -> Tensor { x.abs() }
public func tanh(_ x: Tensor) -> Tensor { x.tanh() }
public func sigmoid(_ x: Tensor) -> Tensor { x.sigmoid() }
public func relu(_ x: Tensor) -> Tensor { x.relu() }
public func gelu(_ x: Tensor) -> Tensor { x.gelu() }
