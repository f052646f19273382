import StrataCore

extension Sequential {
    /// The classifier: the last `Linear` layer, through nested `Sequential`s, where no layer after
    /// it holds weights; nil where the network does not end so.
    public var classifier: Linear? {
        guard let last = layers.last(where: { !$0.namedStates().isEmpty }) else { return nil }
        return last as? Linear ?? (last as? Sequential)?.classifier
    }

    /// The same network with its classifier, the last `Linear` layer, replaced by a new one of
    /// `classes` outputs (freshly initialised), and that new layer: transfer learning's first step,
    /// as `model.fc = nn.Linear(model.fc.in_features, classes)` is in PyTorch. Every other layer
    /// is shared with this network, weights included. The classifier is found through nested
    /// `Sequential`s; layers after it must hold no weights (a `Softmax` or `Dropout` may follow).
    ///
    /// ```swift
    /// let pretrained = try SavedModel.load("fashion-cnn.safetensors").model as! Sequential
    /// let (net, head) = try pretrained.replacingClassifier(classes: 3)
    /// net.freeze(); head.freeze(false)       // train the new classifier only
    /// ```
    ///
    /// Throws when the network holds no weights or its last layer with weights is not a `Linear`
    /// (the error names that layer).
    public func replacingClassifier(classes: Int) throws -> (model: Sequential, classifier: Linear) {
        precondition(classes > 0, "replacingClassifier: classes must be positive, got \(classes)")
        guard let i = layers.lastIndex(where: { !$0.namedStates().isEmpty }) else {
            throw StrataError("the model has no layer with weights, so no classifier to replace")
        }
        let head: Linear, replacement: Module
        switch layers[i] {
        case let inner as Sequential:
            let (m, h) = try inner.replacingClassifier(classes: classes)
            (replacement, head) = (m, h)
        case let old as Linear:
            head = Linear(old.inFeatures, classes, bias: old.bias != nil)
            replacement = head
        default:
            throw StrataError("the model's last layer with weights is \(layers[i].typeName) (layer \(i)), not a Linear classifier that could be replaced")
        }
        var ls = layers
        ls[i] = replacement
        return (Sequential(ls), head)
    }
}
