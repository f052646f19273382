/// Small dense linear algebra in Double on row-major arrays, for the classical methods.
enum Linalg {
    /// Lower-triangular L with A = L L^T, or nil if A is not positive definite.
    static func cholesky(_ a: [Double], _ n: Int) -> [Double]? {
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
    static func invertLower(_ l: [Double], _ n: Int) -> [Double] {
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
    static func matmul(_ a: [Double], _ b: [Double], _ m: Int, _ k: Int, _ n: Int, bTransposed: Bool = false) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for p in 0..<k {
            let av = a[i * k + p]
            if av == 0 { continue }
            for j in 0..<n { c[i * n + j] += av * (bTransposed ? b[j * k + p] : b[p * n + j]) }
        } }
        return c
    }

    static func transpose(_ a: [Double], _ m: Int, _ n: Int) -> [Double] {
        var t = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { t[j * m + i] = a[i * n + j] } }
        return t
    }
}
