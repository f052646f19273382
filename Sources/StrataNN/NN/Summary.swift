import StrataCore

/// One row of a model summary.
public struct LayerSummary {
    public let name: String
    public let type: String
    /// The output of one call with a batch of 1; empty for a module that owns parameters but
    /// was not called as a module (see `tracedSummary(inputShape:)`).
    public let outputShape: [Int]
    /// Trainable parameters held by this module itself (not by its sub-modules).
    public let parameters: Int

    public init(name: String, type: String, outputShape: [Int], parameters: Int) {
        self.name = name
        self.type = type
        self.outputShape = outputShape
        self.parameters = parameters
    }
}

extension Module {
    /// Every leaf layer, and every module that owns trainable parameters besides its children, in
    /// call order with its output shape (batch 1; -1 where a size depends on the data) and the
    /// trainable parameters it holds itself, like Keras's `model.summary()`: the rows add up to
    /// `parameterCount`. `inputShape` is one example's shape without the batch dimension, as
    /// `ModelInfo.inputShape`.
    ///
    /// ```swift
    /// print(ModelZoo.fashionCNN().summaryTable(inputShape: [1, 28, 28]))
    /// ```
    public func summary(inputShape: [Int]) -> [LayerSummary] { summaryRows(inputShape: inputShape) }

    /// Runs one zero input of `[1] + inputShape` through the model and records the output of each
    /// leaf layer and of each module with parameters of its own (the default `summaryRows`).
    /// A module with parameters that the forward pass never calls as a module (its parent reads
    /// its weights or calls one of its methods, as `TransformerEncoderLayer` does with
    /// `MultiHeadAttention.attend`) still gets a row, after those of its sub-modules, with an
    /// empty `outputShape`. A module called more than once counts its parameters in its first row.
    public func tracedSummary(inputShape: [Int]) -> [LayerSummary] {
        let inputShape = [1] + inputShape
        let modules = namedModules()
        let names = Dictionary(modules.map { (ObjectIdentifier($0.1), ($0.0, $0.1)) }, uniquingKeysWith: { a, _ in a })
        let trace = ModuleTrace()
        let wasTraining = isTraining
        eval()
        ModuleTrace.current = trace
        _ = noGrad { self(Tensor.zeros(inputShape)) }
        ModuleTrace.current = nil
        train(wasTraining)
        func ownParameters(_ m: Module) -> Int { m.namedOwnStates().filter { $0.1.trainable }.reduce(0) { $0 + $1.1.count } }
        func row(_ path: String, _ m: Module, _ shape: [Int], _ params: Int) -> LayerSummary {
            LayerSummary(name: path.isEmpty ? "(model)" : path, type: m.typeName, outputShape: shape, parameters: params)
        }
        var rows: [LayerSummary] = [], paths: [String] = []
        var counted = Set<ObjectIdentifier>()
        for (id, shape) in trace.calls {
            guard let (path, m) = names[id] else { continue }
            let own = ownParameters(m)
            guard own > 0 || m.namedChildren().isEmpty else { continue }
            rows.append(row(path, m, shape, counted.insert(id).inserted ? own : 0))
            paths.append(path)
        }
        for (path, m) in modules where !counted.contains(ObjectIdentifier(m)) {
            let own = ownParameters(m)
            guard own > 0 else { continue }
            counted.insert(ObjectIdentifier(m))
            // After the last row inside this module, else inside its parent, and so on.
            var scope = path, at = rows.count
            while true {
                if let last = paths.lastIndex(where: { $0 == scope || scope.isEmpty || $0.hasPrefix(scope + ".") }) { at = last + 1; break }
                if scope.isEmpty { break }
                scope = scope.contains(".") ? String(scope[..<scope.lastIndex(of: ".")!]) : ""
            }
            rows.insert(row(path, m, [], own), at: at)
            paths.insert(path, at: at)
        }
        return rows
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
            let shape = r.outputShape.isEmpty ? "-" : "[" + r.outputShape.map { $0 < 0 ? "N" : String($0) }.joined(separator: ", ") + "]"
            lines.append(pad("\(r.name) (\(r.type))", width) + pad(shape, 22) + String(r.parameters))
        }
        let total = parameterCount
        let buffers = namedStates().filter { !$0.1.trainable }.reduce(0) { $0 + $1.1.count }
        lines.append(rule)
        lines.append("Input shape: \([1] + inputShape)")
        let frozen = frozenParameterCount
        lines.append("Trainable parameters: \(total)" + (frozen > 0 ? ", frozen: \(frozen)" : "") + (buffers > 0 ? ", buffers: \(buffers)" : ""))
        return lines.joined(separator: "\n")
    }
}
