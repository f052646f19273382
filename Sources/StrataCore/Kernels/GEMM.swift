import CStrata

/// Raw single-precision GEMM on row-major buffers:
/// `C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C`. `op(X)` is `X` or its transpose.
/// With `beta == 0`, C is not read.
@inlinable
public func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                  alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                  b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                  c: UnsafeMutablePointer<Float>, ldc: Int, threaded: Bool = true) {
    if threaded {
        strata_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    } else {
        strata_sgemm_serial(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
}
