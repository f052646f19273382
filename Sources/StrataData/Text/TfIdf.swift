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

/// Softmax regression with bias, fitted full-batch by Adam on mean cross-entropy + ||W||² / (2 C n)
/// (the same minimiser as sum(CE) + ||W||² / (2 C)).
public struct SoftmaxRegression {
    public let weight: Parameter, bias: Parameter

    public init(features: Tensor, labels: [Int], classes: Int, c: Float = 10, epochs: Int = 300, lr: Float = 0.05) {
        weight = Parameter(Tensor.zeros([classes, features.shape[1]]))
        bias = Parameter(Tensor.zeros([classes]))
        let opt = Adam([weight, bias], lr: lr)
        let penalty = 1 / (2 * c * Float(labels.count))
        for _ in 0..<epochs {
            let loss = crossEntropy(linear(features, weight: weight.value, bias: bias.value), labels) + (weight.value * weight.value).sum() * penalty
            opt.zeroGrad()
            loss.backward()
            opt.step()
        }
    }

    public func logits(_ x: Tensor) -> Tensor { noGrad { linear(x, weight: weight.value, bias: bias.value) } }
}
