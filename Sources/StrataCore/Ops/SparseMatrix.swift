/// A sparse matrix in compressed sparse row form, with the product by a dense matrix as an
/// autograd op (the backward pass multiplies by the transpose).
///
/// ```swift
/// let a = SparseMatrix(rows: 3, cols: 3, entries: [(0, 1, 0.5), (2, 2, 1)])
/// let y = a.matmul(x)            // [3, 3] x [3, k] -> [3, k]
/// ```
public struct SparseMatrix {
    public let rows: Int, cols: Int
    public let rowStart: [Int]
    public let colIndex: [Int]
    public let values: [Float]

    /// From (row, col, value) triples; duplicates are summed.
    public init(rows: Int, cols: Int, entries: [(Int, Int, Float)]) {
        self.rows = rows
        self.cols = cols
        var sorted = entries.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        var merged: [(Int, Int, Float)] = []
        for e in sorted {
            if let last = merged.last, last.0 == e.0, last.1 == e.1 { merged[merged.count - 1].2 += e.2 } else { merged.append(e) }
        }
        sorted = merged
        var start = [Int](repeating: 0, count: rows + 1)
        for e in sorted {
            precondition(e.0 >= 0 && e.0 < rows && e.1 >= 0 && e.1 < cols, "SparseMatrix: entry (\(e.0), \(e.1)) outside \(rows)x\(cols)")
            start[e.0 + 1] += 1
        }
        for r in 0..<rows { start[r + 1] += start[r] }
        rowStart = start
        colIndex = sorted.map { $0.1 }
        values = sorted.map { $0.2 }
    }

    public var transposed: SparseMatrix {
        SparseMatrix(rows: cols, cols: rows, entries: (0..<rows).flatMap { r in (rowStart[r]..<rowStart[r + 1]).map { (colIndex[$0], r, values[$0]) } })
    }

    /// The dense matrix (for tests and small cases).
    public func dense() -> Tensor {
        let t = Tensor.zeros([rows, cols])
        for r in 0..<rows { for i in rowStart[r]..<rowStart[r + 1] { t.data[r * cols + colIndex[i]] += values[i] } }
        return t
    }

    /// A x without autograd.
    func rawMatmul(_ x: Tensor) -> Tensor {
        let k = x.shape[1]
        let out = Tensor.zeros([rows, k])
        let xp = x.data, op = out.data
        let chunks = Swift.max(1, Swift.min(rows, 64)), per = (rows + chunks - 1) / chunks
        parallelFor(chunks) { chunk in
            for r in Swift.min(chunk * per, rows)..<Swift.min((chunk + 1) * per, rows) {
                let o = op + r * k
                for i in rowStart[r]..<rowStart[r + 1] {
                    let v = values[i], src = xp + colIndex[i] * k
                    for j in 0..<k { o[j] += v * src[j] }
                }
            }
        }
        return out
    }

    /// `A x` for dense `x` `[cols, k]`; its gradient with respect to x is `A^T g`.
    public func matmul(_ x: Tensor) -> Tensor {
        shapeCheck(x.rank == 2 && x.shape[0] == cols, "sparseMatmul", "sparse [\(rows), \(cols)] and dense \(fmt(x.shape)) are not aligned")
        let t = self
        return rawMatmul(x).recorded("sparseMatmul", [x]) { g, _ in [t.transposed.rawMatmul(g)] }
    }
}
