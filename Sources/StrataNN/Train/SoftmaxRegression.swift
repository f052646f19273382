import StrataCore

/// A multinomial logistic regression with bias on fixed features, fitted through the `Trainer`
/// with Adam on the mean cross-entropy plus an L2 penalty `l2 / 2 * ||W||²` (the bias is not
/// penalised). The one linear classifier of the library: StrataInspect's linear probe
/// (`LinearProbe`, standardised features in mini-batches) and StrataData's TF-IDF baseline
/// (full batch, scikit-learn's `C`) are this model.
///
/// With `standardize`, the features are standardised with the training set's mean and standard
/// deviation (kept, and applied again by `logits`). With a `batchSize`, each epoch is a
/// permutation drawn from one generator seeded by `seed` (epoch after epoch), cut into
/// batches; without one, every step is the whole set in order. The weights start at zero.
///
/// ```swift
/// let probe = SoftmaxRegression.fit(features: trainX, labels: trainY, classes: 10)
/// let acc = probe.accuracy(features: testX, labels: testY)
/// let full = SoftmaxRegression.fit(features: x, labels: y, classes: 2, epochs: 300, batchSize: nil,
///                                  lr: 0.05, l2: 1e-3, standardize: false)
/// ```
public struct SoftmaxRegression {
    public let weight: Parameter      // [classes, features]
    public let bias: Parameter        // [classes]
    /// The standardisation fitted on the training features (nil: features are used as given).
    public let mean: Tensor?, std: Tensor?

    /// Fits the regression. Training stops early (keeping the last finite step) if the loss stops
    /// being finite.
    public static func fit(features: Tensor, labels: [Int], classes: Int, epochs: Int = 30, batchSize: Int? = 256,
                           lr: Float = 0.01, l2: Float = 1e-4, standardize: Bool = true, seed: Int = 0) -> SoftmaxRegression {
        fit(features: features, labels: labels, classes: classes, epochs: epochs, batchSize: batchSize, lr: lr,
            penalty: l2 / 2, standardize: standardize, seed: seed)
    }

    /// The same with the coefficient of `||W||²` itself (`l2 / 2`), as the TF-IDF baseline states it.
    package static func fit(features: Tensor, labels: [Int], classes: Int, epochs: Int, batchSize: Int?, lr: Float,
                            penalty: Float, standardize: Bool, seed: Int) -> SoftmaxRegression {
        precondition(features.rank == 2 && features.shape[0] == labels.count,
                     "SoftmaxRegression: features \(features.shape) for \(labels.count) labels")
        precondition(batchSize.map { $0 > 0 } ?? true, "SoftmaxRegression: batch size must be positive, got \(batchSize!)")
        let n = features.shape[0], d = features.shape[1]
        var mean: Tensor?, std: Tensor?, x = features
        if standardize {
            let m = features.mean(axes: [0], keepDims: true).detached()
            let s = (features.variance(axes: [0], keepDims: true, unbiased: false) + 1e-6).sqrt().detached()
            x = noGrad { (features - m) / s }
            (mean, std) = (m, s)
        }
        let scores = LinearScores(classes: classes, features: d)
        let info = ModelInfo(architecture: [:], classNames: (0..<classes).map { String($0) }, inputShape: [d])
        let trainer = Trainer(model: scores, optimizer: Adam(scores.parameters(), lr: lr), info: info)
        trainer.loss = { [w = scores.weight] out, labels in crossEntropy(out, labels) + (w.value * w.value).sum() * penalty }
        trainer.generator = RandomGenerator(seed: seed)
        trainer.batchOrder = { _, rng in
            guard let b = batchSize else { return [Array(0..<n)] }
            let order = rng.permutation(n)
            return stride(from: 0, to: n, by: b).map { Array(order[$0..<Swift.min($0 + b, n)]) }
        }
        var options = FitOptions(epochs: epochs, batchSize: Swift.max(batchSize ?? n, 1), seed: seed)
        options.progress = .none
        options.seedGlobalGenerator = false
        _ = try? trainer.fit(FeatureRows(x, labels), options: options)
        return SoftmaxRegression(weight: scores.weight, bias: scores.bias, mean: mean, std: std)
    }

    /// Class scores for new features.
    public func logits(_ features: Tensor) -> Tensor {
        noGrad {
            let x = mean.map { m in (features - m) / std! } ?? features
            return linear(x, weight: weight.value, bias: bias.value)
        }
    }

    public func accuracy(features: Tensor, labels: [Int]) -> Double {
        Double(StrataNN.accuracy(logits(features), labels))
    }
}

/// `x W^T + b` over fixed features: the regression as a module for the `Trainer`.
private final class LinearScores: Module {
    let weight: Parameter, bias: Parameter

    init(classes: Int, features: Int) {
        weight = Parameter(Tensor.zeros([classes, features]))
        bias = Parameter(Tensor.zeros([classes]))
        super.init()
    }

    override func forward(_ x: Tensor) -> Tensor { linear(x, weight: weight.value, bias: bias.value) }
}

/// Rows of a feature matrix as batches; the whole set in order is the matrix itself (no copy).
private struct FeatureRows: BatchSource {
    let x: Tensor, labels: [Int]

    init(_ x: Tensor, _ labels: [Int]) { (self.x, self.labels) = (x, labels) }

    var count: Int { labels.count }

    func batch(_ indices: [Int]) -> Batch {
        let whole = indices.count == count && indices.enumerated().allSatisfy { $0.offset == $0.element }
        return Batch(inputs: whole ? x : noGrad { x.indexSelect(axis: 0, indices: indices) }, labels: indices.map { labels[$0] }, indices: indices)
    }
}
