import StrataCore

/// Shared parts of the recurrent layers: PyTorch's parameter names (`weight_ih_l0`, ...) and
/// init (uniform ±1/sqrt(hidden)); the input projection is done for all steps at once.
public class RecurrentLayer: Module {
    public let weightIhL0: Parameter, weightHhL0: Parameter, biasIhL0: Parameter, biasHhL0: Parameter
    public let inputSize: Int, hiddenSize: Int
    let gates: Int

    init(_ inputSize: Int, _ hiddenSize: Int, gates: Int) {
        self.inputSize = inputSize
        self.hiddenSize = hiddenSize
        self.gates = gates
        let b = 1 / Float(hiddenSize).squareRoot()
        weightIhL0 = Parameter(Tensor.rand([gates * hiddenSize, inputSize], low: -b, high: b))
        weightHhL0 = Parameter(Tensor.rand([gates * hiddenSize, hiddenSize], low: -b, high: b))
        biasIhL0 = Parameter(Tensor.rand([gates * hiddenSize], low: -b, high: b))
        biasHhL0 = Parameter(Tensor.rand([gates * hiddenSize], low: -b, high: b))
    }

    func gate(_ t: Tensor, _ k: Int) -> Tensor { t.slice(axis: 1, start: k * hiddenSize, end: (k + 1) * hiddenSize) }

    /// One step from the projected input `gi` `[N, gates*H]`; returns the new state.
    func step(_ gi: Tensor, _ state: [Tensor]) -> [Tensor] { fatalError("subclass") }

    /// Runs over `x` `[N, T, inputSize]`. Where `mask` `[N, T]` is 0 (padding) the state is carried
    /// over unchanged, so the result is the state after each sequence's last real step.
    /// Returns the hidden state at every step `[N, T, H]` and the final one `[N, H]`.
    public func run(_ x: Tensor, mask: Tensor? = nil) -> (outputs: Tensor, last: Tensor) {
        precondition(x.rank == 3 && x.shape[2] == inputSize, "\(typeName): input \(x.shape) is not [N, T, \(inputSize)]")
        let (n, steps) = (x.shape[0], x.shape[1])
        let gi = linear(x, weight: weightIhL0.value, bias: biasIhL0.value)   // [N, T, gates*H]
        var state = [Tensor](repeating: Tensor.zeros([n, hiddenSize]), count: gates == 4 ? 2 : 1)
        var outs: [Tensor] = []
        for t in 0..<steps {
            let g = gi.slice(axis: 1, start: t, end: t + 1).reshape([n, gates * hiddenSize])
            var next = step(g, state)
            if let mask {
                let m = mask.slice(axis: 1, start: t, end: t + 1)   // [N, 1]
                next = zip(next, state).map { new, old in old + (new - old) * m }
            }
            state = next
            outs.append(state[0])
        }
        return (Tensor.stack(outs, axis: 1), state[0])
    }

    /// The hidden state at every step, `[N, T, H]`.
    public override func forward(_ x: Tensor) -> Tensor { run(x).outputs }

    public override var config: [String: Any] { ["in": inputSize, "hidden": hiddenSize] }
}

/// A gated recurrent unit layer (PyTorch's equations):
/// r = σ(W_ir x + b_ir + W_hr h + b_hr), z = σ(W_iz x + b_iz + W_hz h + b_hz),
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1 - z) ⊙ n + z ⊙ h.
///
/// ```swift
/// let gru = GRU(64, 64)
/// let (seq, last) = gru.run(embedded, mask: notPadding)
/// ```
public final class GRU: RecurrentLayer {
    public init(_ inputSize: Int, _ hiddenSize: Int) { super.init(inputSize, hiddenSize, gates: 3) }

    override func step(_ gi: Tensor, _ state: [Tensor]) -> [Tensor] {
        let h = state[0]
        let gh = linear(h, weight: weightHhL0.value, bias: biasHhL0.value)
        let r = (gate(gi, 0) + gate(gh, 0)).sigmoid()
        let z = (gate(gi, 1) + gate(gh, 1)).sigmoid()
        let n = (gate(gi, 2) + r * gate(gh, 2)).tanh()
        return [n + z * (h - n)]
    }
}

/// A long short-term memory layer (PyTorch's gate order i, f, g, o):
/// c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c').
public final class LSTM: RecurrentLayer {
    public init(_ inputSize: Int, _ hiddenSize: Int) { super.init(inputSize, hiddenSize, gates: 4) }

    override func step(_ gi: Tensor, _ state: [Tensor]) -> [Tensor] {
        let (h, c) = (state[0], state[1])
        let g = gi + linear(h, weight: weightHhL0.value, bias: biasHhL0.value)
        let i = gate(g, 0).sigmoid(), f = gate(g, 1).sigmoid(), cand = gate(g, 2).tanh(), o = gate(g, 3).sigmoid()
        let c2 = f * c + i * cand
        return [o * c2.tanh(), c2]
    }
}
