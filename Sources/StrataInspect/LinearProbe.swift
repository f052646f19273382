import StrataCore
import StrataNN
import StrataData

/// A multinomial logistic regression fitted to fixed features: the "linear probe" that measures
/// how linearly separable the classes are in one layer's representation.
///
/// Features are standardised with the training set's mean and standard deviation; the weights
/// are fitted with Adam on mini-batches of the mean cross-entropy plus a small L2 penalty.
///
/// ```swift
/// let probe = LinearProbe.fit(features: trainX, labels: trainY, classes: 10)
/// let acc = probe.accuracy(features: testX, labels: testY)
/// ```
public struct LinearProbe {
    public let weight: Tensor      // [classes, features]
    public let bias: Tensor        // [classes]
    public let mean: Tensor, std: Tensor

    public static func fit(features: Tensor, labels: [Int], classes: Int, epochs: Int = 30, batchSize: Int = 256,
                           lr: Float = 0.01, l2: Float = 1e-4, seed: Int = 0) -> LinearProbe {
        precondition(features.rank == 2 && features.shape[0] == labels.count, "LinearProbe: features \(features.shape) for \(labels.count) labels")
        let n = features.shape[0], d = features.shape[1]
        let mean = features.mean(axes: [0], keepDims: true).detached()
        let std = (features.variance(axes: [0], keepDims: true, unbiased: false) + 1e-6).sqrt().detached()
        let z = noGrad { (features - mean) / std }
        let w = Parameter(Tensor.zeros([classes, d])), b = Parameter(Tensor.zeros([classes]))
        let opt = Adam([w, b], lr: lr)
        var rng = RandomGenerator(seed: seed)
        for _ in 0..<epochs {
            let order = rng.permutation(n)
            for start in stride(from: 0, to: n, by: batchSize) {
                let idx = Array(order[start..<Swift.min(start + batchSize, n)])
                let x = z.indexSelect(axis: 0, indices: idx)
                let loss = crossEntropy(linear(x, weight: w.value, bias: b.value), idx.map { labels[$0] }) + (w.value * w.value).sum() * (l2 / 2)
                opt.zeroGrad()
                loss.backward()
                opt.step()
            }
        }
        return LinearProbe(weight: w.value.detached(), bias: b.value.detached(), mean: mean, std: std)
    }

    /// Class scores for new features.
    public func logits(_ features: Tensor) -> Tensor {
        noGrad { linear((features - mean) / std, weight: weight, bias: bias) }
    }

    public func accuracy(features: Tensor, labels: [Int]) -> Double {
        Double(accuracyOf(logits(features), labels))
    }
}

private func accuracyOf(_ logits: Tensor, _ labels: [Int]) -> Float { accuracy(logits, labels) }
