
/// Small dense linear algebra in Double on row-major arrays (for PCA and the classical methods).
public enum Linalg {
    /// Lower-triangular L with A = L L^T, or nil if A is not positive definite.
    public static func cholesky(_ a: [Double], _ n: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = a[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard s > 0 else { return nil }
                    l[i * n + i] = s.squareRoot()
                } else {
                    l[i * n + j] = s / l[j * n + j]
                }
            }
        }
        return l
    }

    /// Inverse of a lower-triangular matrix.
    public static func invertLower(_ l: [Double], _ n: Int) -> [Double] {
        var inv = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            inv[i * n + i] = 1 / l[i * n + i]
            for j in 0..<i {
                var s = 0.0
                for k in j..<i { s -= l[i * n + k] * inv[k * n + j] }
                inv[i * n + j] = s / l[i * n + i]
            }
        }
        return inv
    }

    /// A[m, k] B[k, n] (bT: B given as [n, k]).
    public static func matmul(_ a: [Double], _ b: [Double], _ m: Int, _ k: Int, _ n: Int, bTransposed: Bool = false) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for p in 0..<k {
            let av = a[i * k + p]
            if av == 0 { continue }
            for j in 0..<n { c[i * n + j] += av * (bTransposed ? b[j * k + p] : b[p * n + j]) }
        } }
        return c
    }

    public static func transpose(_ a: [Double], _ m: Int, _ n: Int) -> [Double] {
        var t = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { t[j * m + i] = a[i * n + j] } }
        return t
    }

    /// Eigenvalues and eigenvectors (columns of the returned row-major d x d matrix) of a
    /// symmetric matrix, by cyclic Jacobi rotations.
    public static func symmetricEigen(_ m: [Double], _ d: Int) -> ([Double], [Double]) {
        var a = m
        var v = [Double](repeating: 0, count: d * d)
        for i in 0..<d { v[i * d + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<d { for q in (p + 1)..<Swift.max(d, p + 1) { off += a[p * d + q] * a[p * d + q] } }
            if off < 1e-22 { break }
            for p in 0..<d {
                for q in (p + 1)..<Swift.max(d, p + 1) where Swift.abs(a[p * d + q]) > 1e-300 {
                    let theta = (a[q * d + q] - a[p * d + p]) / (2 * a[p * d + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (Swift.abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<d {   // rotate columns p, q
                        let akp = a[k * d + p], akq = a[k * d + q]
                        a[k * d + p] = c * akp - s * akq
                        a[k * d + q] = s * akp + c * akq
                    }
                    for k in 0..<d {   // rotate rows p, q
                        let apk = a[p * d + k], aqk = a[q * d + k]
                        a[p * d + k] = c * apk - s * aqk
                        a[q * d + k] = s * apk + c * aqk
                    }
                    for k in 0..<d {
                        let vkp = v[k * d + p], vkq = v[k * d + q]
                        v[k * d + p] = c * vkp - s * vkq
                        v[k * d + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<d).map { a[$0 * d + $0] }, v)
    }
}

/// Mean and sample standard deviation (n - 1) of `xs`.
public func meanStd(_ xs: [Double]) -> (mean: Double, std: Double) {
    let m = xs.reduce(0, +) / Double(max(xs.count, 1))
    let v = xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(max(xs.count - 1, 1))
    return (m, v.squareRoot())
}
