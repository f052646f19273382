import StrataCore

/// Records the output of every named module while a forward pass runs.
final class OutputCapture {
    nonisolated(unsafe) static var current: OutputCapture?
    var wanted: Set<ObjectIdentifier>
    var outputs: [ObjectIdentifier: Tensor] = [:]
    init(_ wanted: Set<ObjectIdentifier>) { self.wanted = wanted }
}

extension Module {
    /// The outputs of the named sub-modules (dotted paths as in `namedModules()`) for input `x`,
    /// in evaluation mode and without autograd. Layer-fusing rewrites are skipped so every layer's
    /// own output is seen. An unknown name throws, listing the names that exist.
    ///
    /// ```swift
    /// let acts = try model.layerOutputs(x, layers: ["0", "3", "8"])   // conv1, conv2, hidden dense
    /// ```
    public func layerOutputs(_ x: Tensor, layers: [String]) throws -> [String: Tensor] {
        let byName = Dictionary(namedModules().map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        for l in layers where byName[l] == nil {
            let known = namedModules().map { $0.0 }.filter { !$0.isEmpty }
            throw StrataError("layer '\(l)' does not exist (layers: \(known.joined(separator: ", ")))")
        }
        let capture = OutputCapture(Set(layers.map { ObjectIdentifier(byName[$0]!) }))
        let trace = ModuleTrace()
        let wasTraining = isTraining
        eval()
        defer { train(wasTraining) }
        ModuleTrace.current = trace      // disables fusions in Sequential
        OutputCapture.current = capture
        defer { ModuleTrace.current = nil; OutputCapture.current = nil }
        _ = noGrad { self(x) }
        var out: [String: Tensor] = [:]
        for l in layers { out[l] = capture.outputs[ObjectIdentifier(byName[l]!)] }
        return out
    }

    /// Names of the layers that produce new features, in order: every leaf layer of the model
    /// except reshapes and identities (Flatten, Identity, Dropout in evaluation mode).
    public func featureLayerNames() -> [String] {
        namedModules().filter { name, m in
            !name.isEmpty && m.namedChildren().isEmpty && !(m is Flatten) && !(m is Identity) && !(m is Dropout)
        }.map { $0.0 }
    }
}
