import Foundation
import StrataCore

/// A trainable tensor (or, with `trainable: false`, a saved buffer such as BatchNorm's running
/// mean). Modules hold parameters as properties; optimizers update `value` in place.
public final class Parameter {
    /// The current value. Trainable parameters are autograd leaves.
    public var value: Tensor
    public let trainable: Bool

    public init(_ value: Tensor, trainable: Bool = true) {
        self.value = value.detached()
        self.trainable = trainable
        if trainable { self.value.requiresGrad = true }
    }

    public var shape: [Int] { value.shape }
    public var count: Int { value.count }

    /// The gradient accumulated by the last `backward()` calls.
    public var grad: Tensor? {
        get { value.grad }
        set { value.grad = newValue }
    }

    /// Overwrites the values in place (the autograd identity stays).
    public func assign(_ t: Tensor) {
        precondition(t.shape == value.shape, "Parameter.assign: shape \(t.shape) for a parameter of shape \(value.shape)")
        let src = t.data
        value.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: src, count: $0.count) }
    }
}

/// The base class of layers and models, in the style of PyTorch's `nn.Module`.
///
/// Subclasses store `Parameter`s and sub-modules as properties; both are found by reflection,
/// named after the property in snake case (`runningMean` -> `running_mean`), with dotted paths
/// for nesting, matching PyTorch's `state_dict` names.
///
/// ```swift
/// final class TwoLayer: Module {
///     let fc1 = Linear(784, 128), fc2 = Linear(128, 10)
///     override func forward(_ x: Tensor) -> Tensor { fc2(fc1(x).relu()) }
/// }
/// let model = TwoLayer()
/// model.namedParameters().map { $0.0 }   // ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
/// ```
open class Module {
    /// True in training mode (dropout active, batch statistics in BatchNorm).
    public private(set) var isTraining = true

    /// True once `freeze()` was called on this module or one above it.
    public private(set) var isFrozen = false

    public init() {}

    /// The layer's computation. Call the module itself (`layer(x)`) rather than this.
    open func forward(_ x: Tensor) -> Tensor {
        fatalError("\(type(of: self)) does not implement forward(_:)")
    }

    public final func callAsFunction(_ x: Tensor) -> Tensor {
        guard Profiler.isEnabled, namedChildren().isEmpty else {
            let y = forward(x)
            ModuleTrace.current?.record(self, y)
            return y
        }
        let t0 = Profiler.now()
        let y = forward(x)
        Profiler.add("forward \(typeName) \(y.shape)", Profiler.now() - t0)
        ModuleTrace.current?.record(self, y)
        return y
    }

    /// Applies the layer to `x` in place when that is possible (element-wise layers whose input
    /// storage nobody else holds) and returns true; `Sequential` tries this before `forward`.
    open func forwardInPlace(_ x: inout Tensor) -> Bool { false }

    /// True for element-wise functions that never decrease (ReLU, leaky ReLU, sigmoid, tanh).
    /// Such a function commutes with max pooling, so `Sequential` may pool first and apply it
    /// to 4x fewer values; outputs and gradients are the same either way.
    open var isMonotoneElementwise: Bool { false }

    /// Name shown in summaries and stored in model files.
    open var typeName: String { String(describing: type(of: self)) }

    /// Constructor arguments, written to model files (see `ModuleRegistry`).
    open var config: [String: Any] { [:] }

    /// The rows of `summary(inputShape:)`. Override where a zero input of that shape cannot run
    /// through the model (a graph network, an ensemble whose networks take their own inputs).
    open func summaryRows(inputShape: [Int]) -> [LayerSummary] { tracedSummary(inputShape: inputShape) }

    /// Direct sub-modules and their names; by default the stored properties that are modules
    /// (arrays of modules are named `name.0`, `name.1`, ...).
    open func namedChildren() -> [(String, Module)] { reflect().children }

    /// Parameters and buffers stored directly on this module.
    open func namedOwnStates() -> [(String, Parameter)] { reflect().states }

    private func reflect() -> (states: [(String, Parameter)], children: [(String, Module)]) {
        var states: [(String, Parameter)] = [], children: [(String, Module)] = []
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let cur = m { mirrors.append(cur); m = cur.superclassMirror }
        for mirror in mirrors.reversed() {
            for child in mirror.children {
                guard let label = child.label, !label.hasPrefix("_"), !label.hasPrefix("$") else { continue }
                let name = snakeCase(label)
                if let p = child.value as? Parameter {
                    states.append((name, p))
                } else if let mod = child.value as? Module {
                    children.append((name, mod))
                } else if let mods = child.value as? [Module] {
                    for (i, mod) in mods.enumerated() { children.append(("\(name).\(i)", mod)) }
                }
            }
        }
        return (states, children)
    }

    /// Every module in the tree with its dotted path ("" for this one), parents first.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (name, child) in namedChildren() {
            out += child.namedModules(prefix: prefix.isEmpty ? name : "\(prefix).\(name)")
        }
        return out
    }

    /// Every parameter and buffer with its dotted name (the `state_dict`).
    public func namedStates() -> [(String, Parameter)] { namedStates { _ in true } }

    /// Trainable parameters with their dotted names (those of frozen modules left out).
    public func namedParameters() -> [(String, Parameter)] { namedStates { !$0.isFrozen }.filter { $0.1.trainable } }

    /// The states of the modules `keep` accepts, with their dotted names.
    private func namedStates(of keep: (Module) -> Bool) -> [(String, Parameter)] {
        var out: [(String, Parameter)] = []
        for (path, module) in namedModules() where keep(module) {
            for (name, p) in module.namedOwnStates() { out.append((path.isEmpty ? name : "\(path).\(name)", p)) }
        }
        return out
    }

    /// Trainable parameters, for an optimizer.
    public func parameters() -> [Parameter] { namedParameters().map { $0.1 } }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    /// Number of scalars that would train but are frozen (`freeze()`).
    public var frozenParameterCount: Int {
        namedStates { $0.isFrozen }.filter { $0.1.trainable }.reduce(0) { $0 + $1.1.count }
    }

    /// Switches this module and all below it to training mode (or evaluation mode). Frozen
    /// modules stay in evaluation mode.
    public func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.isTraining = on && !m.isFrozen }
    }

    /// Freezes this module and all below it, as Keras's `layer.trainable = False` does: their
    /// parameters leave `parameters()` (so an optimizer made afterwards does not see them) and
    /// record no gradient, and the modules stay in evaluation mode (BatchNorm keeps its running
    /// statistics, dropout is off). `freeze(false)` undoes it. Model files store weights only;
    /// a loaded model is not frozen.
    ///
    /// ```swift
    /// net.freeze()                           // the pretrained features
    /// head.freeze(false)                     // a new last layer, which alone trains
    /// let opt = Adam(net.parameters(), lr: 1e-3)
    /// ```
    public func freeze(_ on: Bool = true) {
        for (_, m) in namedModules() {
            m.isFrozen = on
            if on { m.isTraining = false }
            for (_, p) in m.namedOwnStates() where p.trainable {
                p.grad = nil
                p.value.requiresGrad = !on
            }
        }
    }

    /// Evaluation mode: dropout off, BatchNorm uses running statistics.
    public func eval() { train(false) }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters() { p.grad = nil } }

    /// The weights by name (copies).
    public func stateDict() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for (n, p) in namedStates() { d[n] = p.value.detached() }
        return d
    }

    /// Loads weights by name. Every parameter and buffer must be present with its shape; extra
    /// entries are an error unless listed in `ignoring`.
    public func loadStateDict(_ dict: [String: Tensor], source: String = "state dict", ignoring: Set<String> = []) throws {
        let states = namedStates()
        var missing: [String] = []
        for (name, p) in states {
            guard let t = dict[name] else { missing.append(name); continue }
            guard t.shape == p.shape else {
                throw StrataError("\(source): tensor '\(name)' has shape \(t.shape), the model expects \(p.shape)")
            }
        }
        if !missing.isEmpty { throw StrataError("\(source): missing tensors \(missing.joined(separator: ", "))") }
        let known = Set(states.map { $0.0 })
        let extra = dict.keys.filter { !known.contains($0) && !ignoring.contains($0) }.sorted()
        if !extra.isEmpty { throw StrataError("\(source): unexpected tensors \(extra.joined(separator: ", "))") }
        for (name, p) in states { p.assign(dict[name]!) }
    }
}

func snakeCase(_ s: String) -> String {
    var out = ""
    for ch in s {
        if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
    }
    return out
}

/// Records the output of every module call while active (used by `summary`).
final class ModuleTrace {
    nonisolated(unsafe) static var current: ModuleTrace?
    var calls: [(ObjectIdentifier, [Int])] = []
    func record(_ m: Module, _ y: Tensor) {
        calls.append((ObjectIdentifier(m), y.shape))
        if let c = OutputCapture.current, c.wanted.contains(ObjectIdentifier(m)) { c.outputs[ObjectIdentifier(m)] = y }
    }
}
