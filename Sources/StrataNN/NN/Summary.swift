import StrataCore

/// One row of a model summary.
public struct LayerSummary {
    public let name: String
    public let type: String
    public let outputShape: [Int]
    public let parameters: Int
}

extension Module {
    /// Runs one zero input of `inputShape` (with batch dimension) through the model and lists
    /// every leaf layer in call order with its output shape and trainable parameter count, like
    /// Keras's `model.summary()`.
    public func summary(inputShape: [Int]) -> [LayerSummary] {
        let names = Dictionary(namedModules().map { (ObjectIdentifier($0.1), ($0.0, $0.1)) }, uniquingKeysWith: { a, _ in a })
        let trace = ModuleTrace()
        let wasTraining = isTraining
        eval()
        ModuleTrace.current = trace
        _ = noGrad { self(Tensor.zeros(inputShape)) }
        ModuleTrace.current = nil
        train(wasTraining)
        return trace.calls.compactMap { id, shape in
            guard let (name, m) = names[id], m.namedChildren().isEmpty else { return nil }
            let params = m.namedOwnStates().filter { $0.1.trainable }.reduce(0) { $0 + $1.1.count }
            return LayerSummary(name: name.isEmpty ? "(model)" : name, type: m.typeName, outputShape: shape, parameters: params)
        }
    }

    /// The summary as a text table.
    public func summaryTable(inputShape: [Int]) -> String {
        let rows = summary(inputShape: inputShape)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        let header = pad("Layer (type)", 30) + pad("Output shape", 22) + "Params"
        var lines = [header, String(repeating: "-", count: 64)]
        for r in rows {
            lines.append(pad("\(r.name) (\(r.type))", 30) + pad(r.outputShape.description, 22) + String(r.parameters))
        }
        let total = parameterCount
        let buffers = namedStates().filter { !$0.1.trainable }.reduce(0) { $0 + $1.1.count }
        lines.append(String(repeating: "-", count: 64))
        lines.append("Input shape: \(inputShape)")
        lines.append("Trainable parameters: \(total)" + (buffers > 0 ? ", buffers: \(buffers)" : ""))
        return lines.joined(separator: "\n")
    }
}
