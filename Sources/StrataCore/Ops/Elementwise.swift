import CStrata

// Broadcasting binary ops, comparisons and `where`. Each op's gradient rule sits in the op.
// Broadcasting follows NumPy: shapes align on the right; a dimension of 1 stretches.

extension Tensor {
    /// The shape two shapes broadcast to, or a stop naming `op` and both shapes.
    public static func broadcastShape(_ a: [Int], _ b: [Int], op: String = "broadcast") -> [Int] {
        let n = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
                shapeFail(op, "shapes \(fmt(a)) and \(fmt(b)) cannot be broadcast together")
            }
        }
        return out
    }

    /// Element strides of `shape` read as `outShape` (0 along broadcast axes).
    @usableFromInline
    static func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: outShape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let o = i + outShape.count - shape.count
            strides[o] = shape[i] == 1 ? 0 : s
            s *= shape[i]
        }
        return strides
    }

    /// a op b with broadcasting, no autograd.
    @usableFromInline
    static func rawBinary(_ op: Int, _ a: Tensor, _ b: Tensor, name: String) -> Tensor {
        if a.shape == b.shape {
            let out = Tensor(uninitializedShape: a.shape)
            var shape = [a.count], one = [1]
            sk_binary(Int32(op), 1, &shape, out.data, a.data, &one, b.data, &one)
            return out
        }
        let outShape = broadcastShape(a.shape, b.shape, op: name)
        let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
        // Merge neighbouring dimensions that are contiguous for both inputs.
        var dims: [Int] = [], as_: [Int] = [], bs: [Int] = []
        for d in 0..<outShape.count where outShape[d] != 1 {
            if let n = dims.last, as_.last! == sa[d] * outShape[d], bs.last! == sb[d] * outShape[d] {
                dims[dims.count - 1] = n * outShape[d]
                as_[as_.count - 1] = sa[d]
                bs[bs.count - 1] = sb[d]
            } else {
                dims.append(outShape[d]); as_.append(sa[d]); bs.append(sb[d])
            }
        }
        if dims.isEmpty { dims = [1]; as_ = [0]; bs = [0] }
        shapeCheck(dims.count <= Int(SK_MAX_DIMS), name, "too many dimensions")
        let out = Tensor(uninitializedShape: outShape)
        if out.count > 0 { sk_binary(Int32(op), Int32(dims.count), dims, out.data, a.data, as_, b.data, bs) }
        return out
    }

    /// Sums a broadcast gradient back down to `target` (the inverse of broadcasting).
    @usableFromInline
    func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var axes = Array(0..<lead)
        for i in 0..<target.count where target[i] == 1 && shape[lead + i] != 1 { axes.append(lead + i) }
        return rawReduce(SK_R_SUM, axes: axes).withShape(target)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        rawBinary(SK_ADD, a, b, name: "add").recorded("add", [a, b]) { g, _ in
            [g.sumToShape(a.shape), g.sumToShape(b.shape)]
        }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        rawBinary(SK_SUB, a, b, name: "sub").recorded("sub", [a, b]) { g, needs in
            [g.sumToShape(a.shape), needs[1] ? g.rawUnary(SK_NEG).sumToShape(b.shape) : nil]
        }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let ac = a.constant(), bc = b.constant()
        return rawBinary(SK_MUL, a, b, name: "mul").recorded("mul", [a, b]) { g, needs in
            [needs[0] ? rawBinary(SK_MUL, g, bc, name: "mul").sumToShape(a.shape) : nil,
             needs[1] ? rawBinary(SK_MUL, g, ac, name: "mul").sumToShape(b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let ac = a.constant(), bc = b.constant()
        return rawBinary(SK_DIV, a, b, name: "div").recorded("div", [a, b]) { g, needs in
            // d(a/b)/db = -a / b^2
            [needs[0] ? rawBinary(SK_DIV, g, bc, name: "div").sumToShape(a.shape) : nil,
             needs[1] ? rawBinary(SK_MUL, g, rawBinary(SK_DIV, ac, bc.rawUnary(SK_SQUARE), name: "div"), name: "mul")
                .rawUnary(SK_NEG).sumToShape(b.shape) : nil]
        }
    }

    /// `self ** exponent`, elementwise with broadcasting.
    public func pow(_ exponent: Tensor) -> Tensor {
        let a = constant(), b = exponent.constant()
        let y = Tensor.rawBinary(SK_POW, a, b, name: "pow")
        return y.recorded("pow", [self, exponent]) { g, needs in
            // d/da = b a^(b-1);  d/db = a^b log(a)
            [needs[0] ? Tensor.rawBinary(SK_MUL, g, Tensor.rawBinary(SK_MUL, b, Tensor.rawBinary(SK_POW, a, b.rawUnary(SK_ADD_SCALAR, -1), name: "pow"), name: "mul"), name: "mul").sumToShape(a.shape) : nil,
             needs[1] ? Tensor.rawBinary(SK_MUL, g, Tensor.rawBinary(SK_MUL, y, a.rawUnary(SK_LOG), name: "mul"), name: "mul").sumToShape(b.shape) : nil]
        }
    }

    /// Elementwise maximum with broadcasting; on ties the gradient is split evenly.
    public func maximum(_ other: Tensor) -> Tensor { minMax(other, SK_MAX, "maximum") }

    /// Elementwise minimum with broadcasting; on ties the gradient is split evenly.
    public func minimum(_ other: Tensor) -> Tensor { minMax(other, SK_MIN, "minimum") }

    private func minMax(_ other: Tensor, _ op: Int, _ name: String) -> Tensor {
        let a = constant(), b = other.constant()
        return Tensor.rawBinary(op, a, b, name: name).recorded(name, [self, other]) { g, needs in
            let win = Tensor.rawBinary(op == SK_MAX ? SK_GT : SK_LT, a, b, name: name)
            let tie = Tensor.rawBinary(SK_EQ, a, b, name: name).rawUnary(SK_SCALE, 0.5)
            let wa = Tensor.rawBinary(SK_ADD, win, tie, name: name)
            let ga = Tensor.rawBinary(SK_MUL, g, wa, name: name)
            return [needs[0] ? ga.sumToShape(a.shape) : nil,
                    needs[1] ? Tensor.rawBinary(SK_SUB, g, ga, name: name).sumToShape(b.shape) : nil]
        }
    }

    // Scalar forms: no broadcasting machinery needed.
    public static func + (a: Tensor, s: Float) -> Tensor {
        a.rawUnary(SK_ADD_SCALAR, s).recorded("add", [a]) { g, _ in [g] }
    }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func - (s: Float, a: Tensor) -> Tensor { (-a) + s }
    public static func * (a: Tensor, s: Float) -> Tensor {
        a.rawUnary(SK_SCALE, s).recorded("scale", [a]) { g, _ in [g.rawUnary(SK_SCALE, s)] }
    }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static func / (s: Float, a: Tensor) -> Tensor { a.reciprocal() * s }

    // ---- compound assignment ----
    //
    // `a op= b` is `a = a op b`, except on a leaf that requires grad (a parameter, or a tensor
    // given `requiresGrad = true`). There, as in PyTorch, it is an in-place update of the leaf:
    // allowed only inside `noGrad { }`, where it writes the new values into the leaf and keeps it
    // a leaf (`requiresGrad`, its `grad` and its place in later graphs stay), so the manual step
    //
    //     noGrad { w -= lr * w.grad! }
    //
    // leaves `w` ready for the next forward and backward pass. Outside `noGrad` it stops with a
    // message, because the update would have to be recorded on the leaf itself.

    public static func += (a: inout Tensor, b: Tensor) { a.compoundAssign("+=", b.shape) { $0 + b } }
    public static func -= (a: inout Tensor, b: Tensor) { a.compoundAssign("-=", b.shape) { $0 - b } }
    public static func *= (a: inout Tensor, b: Tensor) { a.compoundAssign("*=", b.shape) { $0 * b } }
    public static func /= (a: inout Tensor, b: Tensor) { a.compoundAssign("/=", b.shape) { $0 / b } }
    public static func += (a: inout Tensor, s: Float) { a.compoundAssign("+=", []) { $0 + s } }
    public static func -= (a: inout Tensor, s: Float) { a.compoundAssign("-=", []) { $0 - s } }
    public static func *= (a: inout Tensor, s: Float) { a.compoundAssign("*=", []) { $0 * s } }
    public static func /= (a: inout Tensor, s: Float) { a.compoundAssign("/=", []) { $0 / s } }

    /// `self = apply(self)`, or for a leaf that requires grad, the in-place update described above.
    @usableFromInline
    mutating func compoundAssign(_ op: String, _ otherShape: [Int], _ apply: (Tensor) -> Tensor) {
        guard let leaf = node, leaf.isLeaf else { self = apply(self); return }
        if GradMode.isEnabled {
            shapeFail(op, "a leaf tensor that requires grad (shape \(fmt(shape))) is being used in an in-place operation. "
                      + "Wrap the update in noGrad { }, as in a manual step: noGrad { w -= lr * w.grad! }; "
                      + "or write w = w \(op.dropLast()) ... to record a new tensor that is no longer a leaf")
        }
        let result = apply(constant())
        shapeCheck(result.shape == shape, op, "an in-place update cannot change the shape of a leaf tensor: "
                   + "shapes \(fmt(shape)) and \(fmt(otherShape)) broadcast to \(fmt(result.shape))")
        storage = result.storage
    }

    /// `self ** p` for a scalar exponent.
    public func pow(_ p: Float) -> Tensor {
        let x = constant()
        return rawUnary(SK_POW_SCALAR, p).recorded("pow", [self]) { g, _ in
            [Tensor.rawUnaryBackward(SK_POW_SCALAR, x: x, y: nil, g: g, p)]
        }
    }

    // ---- comparisons: 1 where true, 0 where false; not differentiable ----

    public func eq(_ o: Tensor) -> Tensor { Tensor.rawBinary(SK_EQ, self, o, name: "eq") }
    public func ne(_ o: Tensor) -> Tensor { Tensor.rawBinary(SK_NE, self, o, name: "ne") }
    public func lt(_ o: Tensor) -> Tensor { Tensor.rawBinary(SK_LT, self, o, name: "lt") }
    public func le(_ o: Tensor) -> Tensor { Tensor.rawBinary(SK_LE, self, o, name: "le") }
    public func gt(_ o: Tensor) -> Tensor { Tensor.rawBinary(SK_GT, self, o, name: "gt") }
    public func ge(_ o: Tensor) -> Tensor { Tensor.rawBinary(SK_GE, self, o, name: "ge") }
    public func eq(_ s: Float) -> Tensor { eq(Tensor(s)) }
    public func lt(_ s: Float) -> Tensor { lt(Tensor(s)) }
    public func le(_ s: Float) -> Tensor { le(Tensor(s)) }
    public func gt(_ s: Float) -> Tensor { gt(Tensor(s)) }
    public func ge(_ s: Float) -> Tensor { ge(Tensor(s)) }

    /// Picks `a` where `condition` is nonzero and `b` elsewhere, broadcasting all three.
    ///
    /// ```swift
    /// let clipped = Tensor.where(x.gt(0), x, Tensor.zeros(like: x))
    /// ```
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = broadcastShape(broadcastShape(condition.shape, a.shape, op: "where"), b.shape, op: "where")
        let c = condition.rawExpand(shape), ae = a.rawExpand(shape), be = b.rawExpand(shape)
        let out = Tensor(uninitializedShape: shape)
        sk_where(out.count, c.data, ae.data, be.data, out.data)
        return out.recorded("where", [a, b]) { g, needs in
            let zero = Tensor.zeros(shape)
            var ga: Tensor?, gb: Tensor?
            if needs[0] {
                let t = Tensor(uninitializedShape: shape)
                sk_where(t.count, c.data, g.data, zero.data, t.data)
                ga = t.sumToShape(a.shape)
            }
            if needs[1] {
                let t = Tensor(uninitializedShape: shape)
                sk_where(t.count, c.data, zero.data, g.data, t.data)
                gb = t.sumToShape(b.shape)
            }
            return [ga, gb]
        }
    }

    /// Adds `other` into this tensor's storage (copy on write). Used for gradient accumulation.
    @usableFromInline
    mutating func addInPlace(_ other: Tensor) {
        shapeCheck(shape == other.shape, "addInPlace", "shapes \(fmt(shape)) and \(fmt(other.shape)) differ")
        let src = other.data
        let n = count
        withUnsafeMutableBufferPointer { dst in sk_axpy(n, 1, src, dst.baseAddress!) }
    }
}
