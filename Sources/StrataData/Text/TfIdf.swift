import Foundation
import StrataCore
import StrataNN

/// TF-IDF features of token-id sequences (the classical text baseline): raw counts (padding not
/// counted) times idf = ln((1 + documents) / (1 + document frequency)) + 1 from the training
/// documents, each row scaled to unit length.
public struct TfIdf: Codable {
    public let idf: [Float]

    public init(fitting ids: Tensor, vocabulary: Int) {
        let (n, t) = (ids.shape[0], ids.shape[1])
        var df = [Int](repeating: 0, count: vocabulary)
        let v = ids.scalars
        for r in 0..<n {
            var seen = Set<Int>()
            for j in 0..<t { let w = Int(v[r * t + j]); if w != 0 && seen.insert(w).inserted { df[w] += 1 } }
        }
        idf = df.map { Float(Foundation.log(Double(1 + n) / Double(1 + $0)) + 1) }
    }

    /// `[N, vocabulary]` unit-length TF-IDF rows.
    public func transform(_ ids: Tensor) -> Tensor {
        let (n, t) = (ids.shape[0], ids.shape[1]), vsize = idf.count
        let out = Tensor.zeros([n, vsize])
        let v = ids.scalars
        for r in 0..<n {
            for j in 0..<t { let w = Int(v[r * t + j]); if w != 0 && w < vsize { out.data[r * vsize + w] += idf[w] } }
            var s: Float = 0
            for k in 0..<vsize { s += out.data[r * vsize + k] * out.data[r * vsize + k] }
            let inv = s > 0 ? 1 / s.squareRoot() : 0
            for k in 0..<vsize { out.data[r * vsize + k] *= inv }
        }
        return out
    }
}

extension SoftmaxRegression {
    /// The TF-IDF baseline's regression (StrataNN's `SoftmaxRegression`), in scikit-learn's
    /// terms: fitted full-batch on the features as given by Adam on mean cross-entropy +
    /// ||W||² / (2 C n) (the same minimiser as sum(CE) + ||W||² / (2 C)).
    public init(features: Tensor, labels: [Int], classes: Int, c: Float = 10, epochs: Int = 300, lr: Float = 0.05) {
        self = SoftmaxRegression.fit(features: features, labels: labels, classes: classes, epochs: epochs, batchSize: nil, lr: lr,
                                     penalty: 1 / (2 * c * Float(labels.count)), standardize: false, seed: 0)
    }
}
