import StrataCore

/// One input's class probabilities, most probable first.
public struct Prediction {
    public let ranked: [(name: String, probability: Float)]
    public var label: String { ranked[0].name }
    public var probability: Float { ranked[0].probability }
}

extension SavedModel {
    /// Class probabilities (softmax of the outputs) of a batch of inputs, in evaluation mode
    /// without autograd.
    ///
    /// ```swift
    /// let p = saved.predict(x)[0]      // p.label, p.probability, p.ranked
    /// ```
    public func predict(_ x: Tensor) -> [Prediction] {
        model.eval()
        return predictions(scores: noGrad { model(x) })
    }

    /// The same from class scores already computed (`[N, classes]`).
    public func predictions(scores: Tensor) -> [Prediction] {
        let probs = noGrad { scores.softmax() }
        let names = info.classNames, n = probs.shape[0], k = probs.shape[1], v = probs.scalars
        precondition(k == names.count, "predict: the model gives \(k) outputs for \(names.count) class names")
        return (0..<n).map { i in
            let row = Array(v[(i * k)..<((i + 1) * k)])
            return Prediction(ranked: row.indices.sorted { row[$0] > row[$1] }.map { (names[$0], row[$0]) })
        }
    }
}

extension Trainer {
    /// Accuracy of each class over a data set (in evaluation mode), in class order.
    public static func perClassAccuracy<S: BatchSource>(_ model: Module, _ data: S, classes: Int, batchSize: Int = 1000) -> [Double] {
        var correct = [Int](repeating: 0, count: classes), total = correct
        model.eval()
        noGrad {
            for b in DataLoader(data, batchSize: batchSize).epoch(0) {
                for (p, y) in zip(model(b.inputs).argmaxIndices(), b.labels) {
                    total[y] += 1
                    if p == y { correct[y] += 1 }
                }
            }
        }
        return zip(correct, total).map { Double($0) / Double(max($1, 1)) }
    }
}
