import CStrata
import Foundation
import StrataCore

/// Updates parameters from their gradients.
///
/// ```swift
/// let opt = Adam(model.parameters(), lr: 1e-3)
/// let loss = crossEntropy(model(x), y)
/// opt.zeroGrad()
/// loss.backward()
/// opt.step()
/// ```
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    var parameters: [Parameter] { get }
    /// Applies one update with the current gradients (parameters without a gradient are skipped).
    func step()
    /// Optimizer state (moments, step count) by name, for checkpoints.
    func state() -> [String: Tensor]
    func loadState(_ state: [String: Tensor]) throws
}

extension Optimizer {
    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters { p.grad = nil } }
}

/// Runs `body(i, offset, count)` over the elements of arrays of `counts[i]` elements, cut into
/// pieces of equal size that cross from one array into the next: one parallel pass whose
/// threads get equal shares however the sizes fall (per array, a 200k-weight layer beside
/// small ones split 65/35 over two threads).
@inlinable
func sliced(_ counts: [Int], _ body: (Int, Int, Int) -> Void) {
    var ends = [Int]()
    ends.reserveCapacity(counts.count)
    for n in counts { ends.append((ends.last ?? 0) + n) }
    let total = ends.last ?? 0, piece = 1 << 14
    if total <= 4 * piece {
        for (i, n) in counts.enumerated() where n > 0 { body(i, 0, n) }
        return
    }
    // The same thread updates the same pieces every step, so their weights and moments stay in
    // its cache (+9-16 % MLP training in the host's slow windows, when a cache line takes ~340 ns
    // to go between the cores and back; neutral otherwise).
    parallelFor((total + piece - 1) / piece, ownedParts: true) { k in
        var lo = k * piece
        let hi = Swift.min(lo + piece, total)
        var i = 0
        while ends[i] <= lo { i += 1 }
        while lo < hi {
            let start = ends[i] - counts[i], take = Swift.min(hi, ends[i]) - lo
            body(i, lo - start, take)
            lo += take
            i += 1
        }
    }
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay
/// (PyTorch's `torch.optim.SGD`).
public final class SGD: Optimizer {
    public var learningRate: Float
    public let parameters: [Parameter]
    public let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    private var buffers: [Tensor?]

    public init(_ parameters: [Parameter], lr: Float, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "SGD: Nesterov momentum needs momentum > 0 and no dampening")
        self.parameters = parameters
        learningRate = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = [Tensor?](repeating: nil, count: parameters.count)
    }

    public func step() {
        var work: [(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, buf: UnsafeMutablePointer<Float>?, first: Bool)] = []
        var counts: [Int] = []
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let first = momentum != 0 && buffers[i] == nil
            if first { buffers[i] = Tensor.zeros(p.shape) }
            work.append((p.value.dataForWriting(), g.data, buffers[i]?.data, first))
            counts.append(p.value.count)
        }
        let (lr, mom, damp, wd, nest) = (learningRate, momentum, dampening, weightDecay, nesterov)
        // Every pointer stays valid: nothing below replaces a parameter's value, gradient or buffer.
        withExtendedLifetime((parameters, buffers)) {
            sliced(counts) { i, o, n in
                let w = work[i]
                sk_sgd_step(n, w.p + o, w.g + o, w.buf.map { $0 + o }, lr, mom, damp, wd, nest ? 1 : 0, w.first ? 1 : 0)
            }
        }
    }

    public func state() -> [String: Tensor] {
        var s: [String: Tensor] = [:]
        for (i, b) in buffers.enumerated() { if let b { s["\(i).momentum_buffer"] = b } }
        return s
    }

    public func loadState(_ state: [String: Tensor]) throws {
        for i in parameters.indices {
            if let b = state["\(i).momentum_buffer"] {
                guard b.shape == parameters[i].shape else { throw StrataError("optimizer state: momentum buffer \(i) has shape \(b.shape), expected \(parameters[i].shape)") }
                buffers[i] = b + 0   // a copy: the step writes the buffer in place
            }
        }
    }
}

/// Adam (`decoupledWeightDecay: false`, L2 decay added to the gradient) and AdamW (decay applied
/// to the weights directly), as in PyTorch.
public class Adam: Optimizer {
    public var learningRate: Float
    public let parameters: [Parameter]
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    let decoupled: Bool
    private var m: [Tensor?], v: [Tensor?]
    public private(set) var stepCount = 0

    public convenience init(_ parameters: [Parameter], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                            weightDecay: Float = 0) {
        self.init(parameters, lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, decoupled: false)
    }

    init(_ parameters: [Parameter], lr: Float, betas: (Float, Float), eps: Float, weightDecay: Float, decoupled: Bool) {
        self.parameters = parameters
        learningRate = lr
        beta1 = betas.0
        beta2 = betas.1
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupled = decoupled
        m = [Tensor?](repeating: nil, count: parameters.count)
        v = m
    }

    public func step() {
        stepCount += 1
        let bc1 = 1 - Float(Foundation.pow(Double(beta1), Double(stepCount)))
        let bc2 = 1 - Float(Foundation.pow(Double(beta2), Double(stepCount)))
        var work: [(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>)] = []
        var counts: [Int] = []
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            if m[i] == nil { m[i] = Tensor.zeros(p.shape); v[i] = Tensor.zeros(p.shape) }
            work.append((p.value.dataForWriting(), g.data, m[i]!.data, v[i]!.data))
            counts.append(p.value.count)
        }
        let (lr, b1, b2, e, wd, dec) = (learningRate, beta1, beta2, eps, weightDecay, decoupled ? Int32(1) : 0)
        // Every pointer stays valid: nothing below replaces a parameter's value, gradient or moments.
        withExtendedLifetime((parameters, m, v)) {
            sliced(counts) { i, o, n in
                let w = work[i]
                sk_adam_step(n, w.p + o, w.g + o, w.m + o, w.v + o, lr, b1, b2, e, bc1, bc2, wd, dec)
            }
        }
    }

    public func state() -> [String: Tensor] {
        var s: [String: Tensor] = ["step": Tensor(Float(stepCount))]
        for i in parameters.indices {
            if let a = m[i], let b = v[i] { s["\(i).exp_avg"] = a; s["\(i).exp_avg_sq"] = b }
        }
        return s
    }

    public func loadState(_ state: [String: Tensor]) throws {
        if let s = state["step"] { stepCount = Int(s.item) }
        for i in parameters.indices {
            guard let a = state["\(i).exp_avg"], let b = state["\(i).exp_avg_sq"] else { continue }
            guard a.shape == parameters[i].shape, b.shape == parameters[i].shape else {
                throw StrataError("optimizer state: moments of parameter \(i) have shape \(a.shape), expected \(parameters[i].shape)")
            }
            // Copies, so the optimizer owns its buffers.
            m[i] = a + 0
            v[i] = b + 0
        }
    }
}

/// Adam with decoupled weight decay (PyTorch's `torch.optim.AdamW`, default decay 0.01).
public final class AdamW: Adam {
    public init(_ parameters: [Parameter], lr: Float = 1e-3, betas: (Float, Float) = (0.9, 0.999), eps: Float = 1e-8,
                weightDecay: Float = 0.01) {
        super.init(parameters, lr: lr, betas: betas, eps: eps, weightDecay: weightDecay, decoupled: true)
    }
}

/// RMSprop (PyTorch's `torch.optim.RMSprop`, the same defaults): each weight steps by its
/// gradient over the root of a running mean of its squared gradients (`alpha` the mean's decay),
/// so weights with large gradients take smaller steps. `centered` subtracts the squared running
/// mean of the gradients (an estimate of their variance); `momentum` accumulates the steps;
/// `weightDecay` adds L2 decay to the gradient.
///
/// ```swift
/// let opt = RMSprop(model.parameters(), lr: 1e-3, momentum: 0.9)
/// ```
public final class RMSprop: Optimizer {
    public var learningRate: Float
    public let parameters: [Parameter]
    public let alpha: Float, eps: Float, weightDecay: Float, momentum: Float, centered: Bool
    private var squareAvg: [Tensor?], gradAvg: [Tensor?], buffers: [Tensor?]

    public init(_ parameters: [Parameter], lr: Float = 0.01, alpha: Float = 0.99, eps: Float = 1e-8, weightDecay: Float = 0,
                momentum: Float = 0, centered: Bool = false) {
        precondition(alpha >= 0 && alpha < 1, "RMSprop: alpha must be in [0, 1), got \(alpha)")
        precondition(momentum >= 0, "RMSprop: momentum must not be negative, got \(momentum)")
        self.parameters = parameters
        learningRate = lr
        (self.alpha, self.eps, self.weightDecay, self.momentum, self.centered) = (alpha, eps, weightDecay, momentum, centered)
        squareAvg = [Tensor?](repeating: nil, count: parameters.count)
        gradAvg = squareAvg
        buffers = squareAvg
    }

    public func step() {
        var work: [(p: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                    a: UnsafeMutablePointer<Float>?, b: UnsafeMutablePointer<Float>?)] = []
        var counts: [Int] = []
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            if squareAvg[i] == nil {
                squareAvg[i] = Tensor.zeros(p.shape)
                if centered { gradAvg[i] = Tensor.zeros(p.shape) }
                if momentum > 0 { buffers[i] = Tensor.zeros(p.shape) }
            }
            work.append((p.value.dataForWriting(), g.data, squareAvg[i]!.data, gradAvg[i]?.data, buffers[i]?.data))
            counts.append(p.value.count)
        }
        let (lr, a, e, wd, mom) = (learningRate, alpha, eps, weightDecay, momentum)
        // Every pointer stays valid: nothing below replaces a parameter's value, gradient or state.
        withExtendedLifetime((parameters, squareAvg, gradAvg, buffers)) {
            sliced(counts) { i, o, n in
                let w = work[i]
                sk_rmsprop_step(n, w.p + o, w.g + o, w.v + o, w.a.map { $0 + o }, w.b.map { $0 + o }, lr, a, e, wd, mom)
            }
        }
    }

    public func state() -> [String: Tensor] {
        var s: [String: Tensor] = [:]
        for i in parameters.indices {
            if let t = squareAvg[i] { s["\(i).square_avg"] = t }
            if let t = gradAvg[i] { s["\(i).grad_avg"] = t }
            if let t = buffers[i] { s["\(i).momentum_buffer"] = t }
        }
        return s
    }

    public func loadState(_ state: [String: Tensor]) throws {
        for i in parameters.indices where state["\(i).square_avg"] != nil {
            // A checked copy, so the optimizer owns its buffers.
            func owned(_ name: String) throws -> Tensor {
                guard let t = state["\(i).\(name)"] else { throw StrataError("optimizer state: parameter \(i) has a square_avg but no \(name)") }
                guard t.shape == parameters[i].shape else {
                    throw StrataError("optimizer state: \(name) of parameter \(i) has shape \(t.shape), expected \(parameters[i].shape)")
                }
                return t + 0
            }
            let v = try owned("square_avg"), a = centered ? try owned("grad_avg") : nil
            let b = momentum > 0 ? try owned("momentum_buffer") : nil
            (squareAvg[i], gradAvg[i], buffers[i]) = (v, a, b)
        }
    }
}

/// Scales all gradients down so their global L2 norm is at most `maxNorm`; returns the norm
/// before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
    var total = 0.0
    for p in parameters { if let g = p.grad { total += sk_sum_squares(g.count, g.data) } }
    let norm = Float(total.squareRoot())
    let scale = maxNorm / (norm + 1e-6)
    if scale < 1 {
        for p in parameters { if let g = p.grad { p.grad = g * scale } }
    }
    return norm
}

/// An optimizer by name, as a command line chooses it (Keras's `optimizer="adam"`), with the
/// usual default learning rate of each.
///
/// ```swift
/// let opt = OptimizerKind.sgd.make(net.parameters(), lr: nil, weightDecay: 5e-4)   // lr 0.01, momentum 0.9
/// ```
public enum OptimizerKind: String, CaseIterable, Sendable {
    case adam, adamw, sgd, rmsprop

    /// Adam, AdamW and RMSprop 1e-3 (Keras's defaults); SGD 0.01.
    public var defaultLearningRate: Float { self == .sgd ? 0.01 : 1e-3 }

    /// The optimizer over `parameters`: SGD with momentum 0.9 (Nesterov off), RMSprop with
    /// Keras's decay 0.9, AdamW with decoupled weight decay (default 0.01), the others with L2
    /// weight decay added to the gradient (PyTorch's `weight_decay`, default 0).
    public func make(_ parameters: [Parameter], lr: Float?, weightDecay: Float? = nil) -> Optimizer {
        let rate = lr ?? defaultLearningRate, wd = weightDecay ?? (self == .adamw ? 0.01 : 0)
        switch self {
        case .adam: return Adam(parameters, lr: rate, weightDecay: wd)
        case .adamw: return AdamW(parameters, lr: rate, weightDecay: wd)
        case .sgd: return SGD(parameters, lr: rate, momentum: 0.9, weightDecay: wd)
        case .rmsprop: return RMSprop(parameters, lr: rate, alpha: 0.9, eps: 1e-7, weightDecay: wd)
        }
    }
}
