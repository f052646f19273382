import Foundation

/// Principal component analysis of the rows of a matrix, through the eigen-decomposition of the
/// covariance matrix (cyclic Jacobi rotations, in Double).
///
/// ```swift
/// let pca = PCA(data, components: 2)
/// let xy = pca.transform(data)          // [n, 2]
/// pca.explainedVarianceRatio            // e.g. [0.41, 0.18]
/// ```
public struct PCA {
    /// `[components, features]`, unit rows, largest variance first.
    public let components: Tensor
    public let mean: Tensor
    /// Variance along each component.
    public let explainedVariance: [Double]
    public let explainedVarianceRatio: [Double]

    public init(_ data: Tensor, components k: Int) {
        precondition(data.rank == 2 && data.shape[0] > 1, "PCA: needs a [samples, features] matrix with 2+ rows, got \(data.shape)")
        let n = data.shape[0], d = data.shape[1]
        precondition(k >= 1 && k <= d, "PCA: \(k) components for \(d) features")
        precondition(k <= (n - 1 < d ? n - 1 : d), "PCA: \(k) components from \(n) samples of \(d) features")
        let mean = data.mean(axes: [0], keepDims: true).detached()
        let centred = noGrad { data - mean }
        var comps = [Float]()
        let values: [Double], order: [Int]
        if n - 1 < d {
            // Fewer samples than features (faces: 200 images of 10,304 pixels): eigenvectors u of
            // the n x n Gram matrix X X^T/(n-1) give the components X^T u / sqrt((n-1) lambda).
            let gram = noGrad { centred.matmul(centred.T) * (1 / Float(n - 1)) }.scalars.map { Double($0) }
            let (vals, vecs) = Linalg.symmetricEigen(gram, n)
            values = vals
            order = vals.indices.sorted { vals[$0] > vals[$1] }
            let x = centred.scalars
            for c in order.prefix(k) {
                var v = [Double](repeating: 0, count: d)
                for r in 0..<n { let u = vecs[r * n + c]; if u != 0 { for j in 0..<d { v[j] += u * Double(x[r * d + j]) } } }
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                comps += v.map { Float($0 / Swift.max(norm, 1e-300)) }
            }
        } else {
            let cov = noGrad { centred.T.matmul(centred) * (1 / Float(n - 1)) }.scalars.map { Double($0) }
            let (vals, vectors) = Linalg.symmetricEigen(cov, d)
            values = vals
            order = vals.indices.sorted { vals[$0] > vals[$1] }
            for c in order.prefix(k) { for i in 0..<d { comps.append(Float(vectors[i * d + c])) } }
        }
        let total = values.reduce(0) { $0 + Swift.max($1, 0) }
        components = Tensor(comps, shape: [k, d])
        self.mean = mean
        explainedVariance = order.prefix(k).map { values[$0] }
        explainedVarianceRatio = explainedVariance.map { total > 0 ? $0 / total : 0 }
    }

    /// Projects rows onto the components: `[n, features] -> [n, components]`.
    public func transform(_ data: Tensor) -> Tensor { noGrad { (data - mean).matmul(components.T) } }
}
