import CStrata

/// One recorded operation (or a leaf) in the autograd graph.
///
/// A result's node keeps its inputs' nodes and a closure that maps the result's gradient to the
/// inputs' gradients. `backward()` walks the graph in reverse topological order: this is the tape.
public final class GradNode {
    /// Given the gradient of the result and which inputs need one, returns one gradient per input
    /// (nil where not needed). Each op defines its rule next to its forward code.
    public typealias Backward = (_ grad: Tensor, _ needs: [Bool]) -> [Tensor?]

    let op: String
    var parents: [GradNode?]
    var backwardFn: Backward?
    let shape: [Int]
    /// Accumulated gradient (leaves, or nodes that retain theirs).
    var grad: Tensor?
    var retainsGrad: Bool

    let isLeaf: Bool

    init(leafWithShape shape: [Int]) {
        op = "leaf"
        isLeaf = true
        parents = []
        backwardFn = nil
        self.shape = shape
        retainsGrad = true
    }

    init(op: String, parents: [GradNode?], shape: [Int], backward: @escaping Backward) {
        self.op = op
        isLeaf = false
        self.parents = parents
        self.backwardFn = backward
        self.shape = shape
        retainsGrad = false
    }

    func accumulate(_ g: Tensor) {
        if var current = grad {
            current.addInPlace(g)
            grad = current
        } else {
            grad = g
        }
    }
}

/// A tensor a backward rule saved and may write its input gradient over (PyTorch's in-place
/// backward, made safe), for kernels that make each gradient element from the same element of the
/// saved tensor. `take` gives the saved storage as the gradient's only while `backward()` frees the
/// graph as it goes (so the rule runs once) and no other tensor shares it (so nothing can read the
/// old values afterwards); otherwise a new buffer.
///
/// ```swift
/// let saved = SavedTensor(x)
/// ... { g, needs in
///     let (xs, gx) = saved.take(gradient: needs[0])   // gx: xs's storage, or a new one
/// ```
package final class SavedTensor {
    private var tensor: Tensor?

    package init(_ t: Tensor) { tensor = t.constant() }

    /// The saved tensor, and (when `gradient`) a buffer of its shape for the input gradient.
    package func take(gradient: Bool) -> (saved: Tensor, gradient: Tensor?) {
        guard sk_backward_frees_graph() != 0 else {
            return (tensor!, gradient ? Tensor(uninitializedShape: tensor!.shape) : nil)
        }
        var t = tensor!
        tensor = nil
        guard gradient else { return (t, nil) }
        guard isKnownUniquelyReferenced(&t.storage) else { return (t, Tensor(uninitializedShape: t.shape)) }
        t.storage.version &+= 1   // about to be overwritten
        return (t, t)
    }
}

/// Whether operations are recorded for autograd on this thread.
public enum GradMode {
    public static var isEnabled: Bool {
        get { sk_grad_enabled() != 0 }
        set { sk_set_grad_enabled(newValue ? 1 : 0) }
    }
}

/// Runs `body` without recording operations (inference, parameter updates).
///
/// ```swift
/// let logits = noGrad { model(x) }
/// ```
@inlinable
public func noGrad<R>(_ body: () throws -> R) rethrows -> R {
    let was = GradMode.isEnabled
    GradMode.isEnabled = false
    defer { GradMode.isEnabled = was }
    return try body()
}

extension Tensor {
    /// Whether gradients flow to this tensor. Setting it on a constant makes it a leaf.
    public var requiresGrad: Bool {
        get { node != nil }
        set {
            if newValue {
                if node == nil { node = GradNode(leafWithShape: shape) }
            } else {
                node = nil
            }
        }
    }

    /// The gradient accumulated by `backward()`, for leaves (and tensors that called `retainGrad()`).
    public var grad: Tensor? {
        get { node?.grad }
        nonmutating set { node?.grad = newValue }
    }

    /// Keeps the gradient of a non-leaf tensor after `backward()`.
    public func retainGrad() { node?.retainsGrad = true }

    /// Same values, cut from the graph.
    public func detached() -> Tensor { constant() }

    /// Records `self` as the result of `op` on `inputs`, when any input is tracked and grad mode
    /// is on. `backward` receives the result's gradient and returns one per input.
    package func recorded(_ op: String, _ inputs: [Tensor], _ backward: @escaping GradNode.Backward) -> Tensor {
        guard GradMode.isEnabled else { return self }
        var any = false
        for t in inputs where t.node != nil { any = true; break }
        guard any else { return self }
        var out = self
        out.node = GradNode(op: op, parents: inputs.map { $0.node }, shape: shape, backward: backward)
        return out
    }

    /// Back-propagates from this tensor. Without `gradient`, the tensor must hold one element and
    /// its gradient is 1. Gradients add up in the leaves' `grad` until cleared.
    /// The graph is freed afterwards unless `retainGraph` is true.
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) {
        guard let root = node else {
            shapeFail("backward", "the tensor does not require grad (no leaf it depends on has requiresGrad = true)")
        }
        let seed: Tensor
        if let gradient {
            shapeCheck(gradient.shape == shape, "backward", "gradient of shape \(fmt(gradient.shape)) for a tensor of shape \(fmt(shape))")
            seed = gradient.constant()
        } else {
            shapeCheck(count == 1, "backward", "implicit gradient needs a one-element tensor, got shape \(fmt(shape)); pass a gradient")
            seed = Tensor.ones(shape)
        }
        if root.isLeaf {
            root.accumulate(seed)
            return
        }
        shapeCheck(root.backwardFn != nil, "backward", "the graph was already freed by an earlier backward(); pass retainGraph: true to the first call")

        // Reverse topological order by iterative depth-first search.
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (n, i) = stack.last {
            if i < n.parents.count {
                stack[stack.count - 1].1 += 1
                if let p = n.parents[i], !visited.contains(ObjectIdentifier(p)) {
                    visited.insert(ObjectIdentifier(p))
                    stack.append((p, 0))
                }
            } else {
                order.append(n)
                stack.removeLast()
            }
        }

        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
        let wasFreeing = sk_backward_frees_graph()
        sk_set_backward_frees_graph(retainGraph ? 0 : 1)
        defer { sk_set_backward_frees_graph(wasFreeing) }
        noGrad {
            for n in order.reversed() {
                guard let g = pending.removeValue(forKey: ObjectIdentifier(n)) else { continue }
                if n.isLeaf || n.retainsGrad {
                    shapeCheck(g.shape == n.shape, "backward", "gradient of shape \(fmt(g.shape)) reached a tensor of shape \(fmt(n.shape)) (op \(n.op))")
                    n.accumulate(g)
                    if n.isLeaf { continue }
                }
                guard let fn = n.backwardFn else {
                    shapeFail("backward", "the graph was already freed by an earlier backward(); pass retainGraph: true to the first call")
                }
                let needs = n.parents.map { $0 != nil }
                let t0 = Profiler.isEnabled ? Profiler.now() : 0
                let grads = fn(g, needs)
                if Profiler.isEnabled { Profiler.add("backward \(n.op) \(n.shape)", Profiler.now() - t0) }
                for (p, gi) in zip(n.parents, grads) {
                    guard let p, let gi else { continue }
                    shapeCheck(gi.shape == p.shape, "backward", "\(n.op) produced a gradient of shape \(fmt(gi.shape)) for an input of shape \(fmt(p.shape))")
                    let key = ObjectIdentifier(p)
                    if var acc = pending[key] {
                        pending[key] = nil
                        acc.addInPlace(gi)
                        pending[key] = acc
                    } else {
                        pending[key] = gi
                    }
                }
                // Done with this node: drop what its closure saved now, not after the whole pass,
                // so each layer's activations are freed as soon as its gradients are out.
                if !retainGraph {
                    n.backwardFn = nil
                    n.parents = []
                }
            }
        }
        if !retainGraph {   // and the nodes no gradient reached
            for n in order where !n.isLeaf {
                n.backwardFn = nil
                n.parents = []
            }
        }
    }
}
