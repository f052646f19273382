import StrataCore
import StrataNN
import StrataData

/// A linear projection of flattened images fitted on training data: Eigenfaces (PCA) or
/// Fisherfaces (PCA to n - c dimensions, then Fisher's linear discriminant to c - 1).
///
/// ```swift
/// let eig = Subspace.eigenfaces(trainX, components: 50)
/// let fis = try Subspace.fisherfaces(trainX, labels: trainY, classes: 40)
/// let z = fis.project(testX)            // [n, 39]
/// ```
public struct Subspace {
    public let mean: Tensor       // [1, d]
    public let basis: Tensor      // [k, d]

    public func project(_ x: Tensor) -> Tensor { noGrad { (x - mean).matmul(basis.T) } }

    /// The first `components` principal axes of the training images.
    public static func eigenfaces(_ x: Tensor, components: Int) -> Subspace {
        let pca = PCA(x, components: components)
        return Subspace(mean: pca.mean, basis: pca.components)
    }

    /// Fisherfaces (Belhumeur et al.): PCA to n - c dimensions (so the within-class scatter is
    /// invertible; at most the number of features), then the c - 1 directions maximising between- over within-class scatter,
    /// solved as a symmetric problem through the Cholesky factor of the within-class scatter;
    /// directions scaled to unit length (as OpenCV does).
    public static func fisherfaces(_ x: Tensor, labels: [Int], classes c: Int) throws -> Subspace {
        let n = x.shape[0]
        guard n > c else { throw StrataError("Fisherfaces need more images (\(n)) than classes (\(c))") }
        // n - c dimensions make the within-class scatter invertible (fewer when there are fewer features).
        let d = Swift.min(n - c, x.shape[1])
        let pca = PCA(x, components: d)
        let z = pca.transform(x).scalars.map { Double($0) }
        var mu = [Double](repeating: 0, count: d)
        var means = [[Double]](repeating: [Double](repeating: 0, count: d), count: c)
        var counts = [Int](repeating: 0, count: c)
        for i in 0..<n {
            counts[labels[i]] += 1
            for j in 0..<d { means[labels[i]][j] += z[i * d + j]; mu[j] += z[i * d + j] }
        }
        for j in 0..<d { mu[j] /= Double(n) }
        for k in 0..<c where counts[k] > 0 { for j in 0..<d { means[k][j] /= Double(counts[k]) } }
        var sw = [Double](repeating: 0, count: d * d), sb = sw
        for i in 0..<n {
            let m = means[labels[i]]
            for a in 0..<d {
                let da = z[i * d + a] - m[a]
                for b in 0..<d { sw[a * d + b] += da * (z[i * d + b] - m[b]) }
            }
        }
        for k in 0..<c where counts[k] > 0 {
            for a in 0..<d { for b in 0..<d { sb[a * d + b] += Double(counts[k]) * (means[k][a] - mu[a]) * (means[k][b] - mu[b]) } }
        }
        guard let l = Linalg.cholesky(sw, d) else { throw StrataError("Fisherfaces: the within-class scatter is singular") }
        let li = Linalg.invertLower(l, d)
        // M = L^-1 Sb L^-T, symmetric; its eigenvectors v give w = L^-T v.
        let m = Linalg.matmul(Linalg.matmul(li, sb, d, d, d), li, d, d, d, bTransposed: true)
        let (vals, vecs) = Linalg.symmetricEigen(m, d)
        let order = vals.indices.sorted { vals[$0] > vals[$1] }.prefix(c - 1)
        let lit = Linalg.transpose(li, d, d)
        var w = [Double]()   // [c-1, d] rows
        for col in order {
            let v = (0..<d).map { vecs[$0 * d + col] }
            var wv = [Double](repeating: 0, count: d)
            for a in 0..<d { for b in 0..<d { wv[a] += lit[a * d + b] * v[b] } }
            let norm = wv.reduce(0) { $0 + $1 * $1 }.squareRoot()
            w += wv.map { $0 / Swift.max(norm, 1e-300) }
        }
        // Compose: x -> (x - mean) P^T W^T, i.e. basis = W P.
        let wt = Tensor(w.map { Float($0) }, shape: [c - 1, d])
        return Subspace(mean: pca.mean, basis: noGrad { wt.matmul(pca.components) })
    }
}

/// Distances for nearest-neighbour matching.
public enum Distance: String, CaseIterable {
    case euclidean, cosine, chiSquare = "chi2"

    /// `[a rows, b rows]` distances between rows.
    public func matrix(_ a: Tensor, _ b: Tensor) -> [[Float]] {
        let av = a.scalars, bv = b.scalars, d = a.shape[1]
        let na = a.shape[0], nb = b.shape[0]
        switch self {
        case .euclidean, .cosine:
            var an = av, bn = bv
            if self == .cosine {
                for i in 0..<na { let s = (0..<d).reduce(Float(0)) { $0 + av[i * d + $1] * av[i * d + $1] }.squareRoot(); for j in 0..<d { an[i * d + j] /= Swift.max(s, 1e-12) } }
                for i in 0..<nb { let s = (0..<d).reduce(Float(0)) { $0 + bv[i * d + $1] * bv[i * d + $1] }.squareRoot(); for j in 0..<d { bn[i * d + j] /= Swift.max(s, 1e-12) } }
            }
            let dot = noGrad { Tensor(an, shape: [na, d]).matmul(Tensor(bn, shape: [nb, d]).T) }.scalars
            let sa = (0..<na).map { i in (0..<d).reduce(Float(0)) { $0 + an[i * d + $1] * an[i * d + $1] } }
            let sb = (0..<nb).map { i in (0..<d).reduce(Float(0)) { $0 + bn[i * d + $1] * bn[i * d + $1] } }
            return (0..<na).map { i in (0..<nb).map { j in
                self == .cosine ? 1 - dot[i * nb + j] : Swift.max(0, sa[i] + sb[j] - 2 * dot[i * nb + j])
            } }
        case .chiSquare:
            return (0..<na).map { i in (0..<nb).map { j in
                var s: Float = 0
                for k in 0..<d { let p = av[i * d + k], q = bv[j * d + k]; let t = p + q; if t > 0 { s += (p - q) * (p - q) / (t + 1e-10) } }
                return s
            } }
        }
    }
}

/// The label of each query's nearest reference row.
public func nearestNeighbour(_ query: Tensor, _ reference: Tensor, labels: [Int], distance: Distance) -> [Int] {
    distance.matrix(query, reference).map { row in labels[row.indices.min { row[$0] < row[$1] }!] }
}
