import StrataCore

/// One row of a model summary.
public struct LayerSummary {
    public let name: String
    public let type: String
    public let outputShape: [Int]
    public let parameters: Int

    public init(name: String, type: String, outputShape: [Int], parameters: Int) {
        self.name = name
        self.type = type
        self.outputShape = outputShape
        self.parameters = parameters
    }
}

extension Module {
    /// Every leaf layer in call order with its output shape (batch 1; -1 where a size depends on
    /// the data) and trainable parameter count, like Keras's `model.summary()`. `inputShape` is
    /// one example's shape without the batch dimension, as `ModelInfo.inputShape`.
    ///
    /// ```swift
    /// print(ModelZoo.fashionCNN().summaryTable(inputShape: [1, 28, 28]))
    /// ```
    public func summary(inputShape: [Int]) -> [LayerSummary] { summaryRows(inputShape: inputShape) }

    /// Runs one zero input of `[1] + inputShape` through the model and records each leaf layer's
    /// output (the default `summaryRows`).
    public func tracedSummary(inputShape: [Int]) -> [LayerSummary] {
        let inputShape = [1] + inputShape
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
        let width = max(30, (rows.map { $0.name.count + $0.type.count + 4 }.max() ?? 0))
        let header = pad("Layer (type)", width) + pad("Output shape", 22) + "Params"
        let rule = String(repeating: "-", count: width + 34)
        var lines = [header, rule]
        for r in rows {
            let shape = "[" + r.outputShape.map { $0 < 0 ? "N" : String($0) }.joined(separator: ", ") + "]"
            lines.append(pad("\(r.name) (\(r.type))", width) + pad(shape, 22) + String(r.parameters))
        }
        let total = parameterCount
        let buffers = namedStates().filter { !$0.1.trainable }.reduce(0) { $0 + $1.1.count }
        lines.append(rule)
        lines.append("Input shape: \([1] + inputShape)")
        lines.append("Trainable parameters: \(total)" + (buffers > 0 ? ", buffers: \(buffers)" : ""))
        return lines.joined(separator: "\n")
    }
}
