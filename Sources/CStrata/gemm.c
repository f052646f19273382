// Packed, register-blocked SGEMM (Goto/BLIS loop order).
//
//   for jc in N step NC        pack op(B)[pc:pc+kc, jc:jc+nc] into NR-wide panels  (L3)
//     for pc in K step KC
//       for ic in M step MC    pack op(A)[ic:ic+mc, pc:pc+kc] into MR-tall panels  (L2)
//         for jr, ir           micro-kernel: C[MR,NR] += Apanel[MR,kc] * Bpanel[kc,NR]  (B panel in L1)
//
// Three micro-kernels: AVX-512 (12x32), AVX2+FMA (6x16) and portable C (4x16), chosen at run time.
// Threads split C into column (or row) blocks that run the whole loop nest independently.
#include "strata_kernels.h"
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KC 256
#define NC 3072
#define MC_MAX 192
#define MR_MAX 12
#define NR_MAX 32

typedef void (*ukernel_fn)(long kc, const float *a, const float *b, float *c, long ldc,
                           float alpha, float beta);

typedef struct {
    int mr, nr, mc;
    ukernel_fn kern;
} kernel_info;

// ---- micro-kernels -----------------------------------------------------------------------------
// a: kc x MR packed (MR values per k), b: kc x NR packed (NR values per k), c: MR x NR, row stride ldc.
// beta == 0 writes alpha*acc without reading C.

#define ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f,fma"))) static void
kernel_avx512_12x32(long kc, const float *a, const float *b, float *c, long ldc, float alpha,
                    float beta) {
#define DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
    ROWS12(DECL)
#undef DECL
    for (long k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#define STEP(i)                                                                                  \
    {                                                                                            \
        __m512 ai = _mm512_set1_ps(a[i]);                                                        \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                              \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                                              \
    }
        ROWS12(STEP)
#undef STEP
        a += 12;
        b += 32;
    }
    __m512 va = _mm512_set1_ps(alpha);
    if (beta == 0.0f) {
#define STORE(i)                                                                                 \
    _mm512_storeu_ps(c + i * ldc, _mm512_mul_ps(va, c##i##0));                                   \
    _mm512_storeu_ps(c + i * ldc + 16, _mm512_mul_ps(va, c##i##1));
        ROWS12(STORE)
#undef STORE
    } else {
        __m512 vb = _mm512_set1_ps(beta);
#define UPDATE(i)                                                                                \
    _mm512_storeu_ps(c + i * ldc,                                                                \
                     _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + i * ldc), _mm512_mul_ps(va, c##i##0))); \
    _mm512_storeu_ps(c + i * ldc + 16, _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + i * ldc + 16),    \
                                                       _mm512_mul_ps(va, c##i##1)));
        ROWS12(UPDATE)
#undef UPDATE
    }
}

#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

__attribute__((target("avx2,fma"))) static void
kernel_avx2_6x16(long kc, const float *a, const float *b, float *c, long ldc, float alpha,
                 float beta) {
#define DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    ROWS6(DECL)
#undef DECL
    for (long k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#define STEP(i)                                                                                  \
    {                                                                                            \
        __m256 ai = _mm256_broadcast_ss(a + i);                                                  \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                                              \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                                              \
    }
        ROWS6(STEP)
#undef STEP
        a += 6;
        b += 16;
    }
    __m256 va = _mm256_set1_ps(alpha);
    if (beta == 0.0f) {
#define STORE(i)                                                                                 \
    _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, c##i##0));                                   \
    _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, c##i##1));
        ROWS6(STORE)
#undef STORE
    } else {
        __m256 vb = _mm256_set1_ps(beta);
#define UPDATE(i)                                                                                \
    _mm256_storeu_ps(c + i * ldc,                                                                \
                     _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + i * ldc), _mm256_mul_ps(va, c##i##0))); \
    _mm256_storeu_ps(c + i * ldc + 8, _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + i * ldc + 8),      \
                                                      _mm256_mul_ps(va, c##i##1)));
        ROWS6(UPDATE)
#undef UPDATE
    }
}

static void kernel_generic_4x16(long kc, const float *a, const float *b, float *c, long ldc,
                                float alpha, float beta) {
    float acc[4][16];
    memset(acc, 0, sizeof acc);
    for (long k = 0; k < kc; k++) {
        for (int i = 0; i < 4; i++) {
            float ai = a[i];
            for (int j = 0; j < 16; j++) acc[i][j] += ai * b[j];
        }
        a += 4;
        b += 16;
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 16; j++)
            c[i * ldc + j] = alpha * acc[i][j] + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]);
}

static kernel_info pick_kernel(void) {
    switch (strata_cpu_isa()) {
    case 2: return (kernel_info){12, 32, 192, kernel_avx512_12x32};
    case 1: return (kernel_info){6, 16, 192, kernel_avx2_6x16};
    default: return (kernel_info){4, 16, 128, kernel_generic_4x16};
    }
}

// ---- packing ------------------------------------------------------------------------------------

// op(A)[i0:i0+mc, k0:k0+kc] -> panels of mr rows; rows past M are zero.
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
pack_a(int transA, const float *A, long lda, long M, long i0, long mc, long k0, long kc, int mr,
       float *dst) {
    for (long p = 0; p < mc; p += mr) {
        long rows = (i0 + p + mr <= M) ? mr : M - (i0 + p);
        if (rows > mc - p) rows = mc - p;
        if (!transA) {
            for (long i = 0; i < rows; i++) {
                const float *src = A + (i0 + p + i) * lda + k0;
                for (long k = 0; k < kc; k++) dst[k * mr + i] = src[k];
            }
        } else {
            for (long k = 0; k < kc; k++) {
                const float *src = A + (k0 + k) * lda + i0 + p;
                for (long i = 0; i < rows; i++) dst[k * mr + i] = src[i];
            }
        }
        if (rows < mr)
            for (long k = 0; k < kc; k++)
                for (long i = rows; i < mr; i++) dst[k * mr + i] = 0.0f;
        dst += mr * kc;
    }
}

// op(B)[k0:k0+kc, j0:j0+nc] -> panels of nr columns; columns past N are zero.
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
pack_b(int transB, const float *B, long ldb, long N, long j0, long nc, long k0, long kc, int nr,
       float *dst) {
    for (long p = 0; p < nc; p += nr) {
        long cols = (j0 + p + nr <= N) ? nr : N - (j0 + p);
        if (cols > nc - p) cols = nc - p;
        if (!transB) {
            for (long k = 0; k < kc; k++) {
                const float *src = B + (k0 + k) * ldb + j0 + p;
                float *d = dst + k * nr;
                long j = 0;
                for (; j < cols; j++) d[j] = src[j];
                for (; j < nr; j++) d[j] = 0.0f;
            }
        } else {
            for (long j = 0; j < cols; j++) {
                const float *src = B + (j0 + p + j) * ldb + k0;
                for (long k = 0; k < kc; k++) dst[k * nr + j] = src[k];
            }
            if (cols < nr)
                for (long k = 0; k < kc; k++)
                    for (long j = cols; j < nr; j++) dst[k * nr + j] = 0.0f;
        }
        dst += nr * kc;
    }
}

// ---- per-thread packing buffers ------------------------------------------------------------------

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void buf_free(void *p) { free(p); }
static void buf_init(void) { pthread_key_create(&buf_key, buf_free); }

static float *pack_buffers(void) {
    pthread_once(&buf_once, buf_init);
    float *p = pthread_getspecific(buf_key);
    if (!p) {
        size_t floats = (size_t)MC_MAX * KC + (size_t)KC * (NC + NR_MAX);
        p = aligned_alloc(64, floats * sizeof(float));
        pthread_setspecific(buf_key, p);
    }
    return p;
}

// ---- the loop nest --------------------------------------------------------------------------------

static void gemm_serial(kernel_info ki, int transA, int transB, long M, long N, long K,
                        float alpha, const float *A, long lda, const float *B, long ldb,
                        float beta, float *C, long ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    float *packA = pack_buffers();
    float *packB = packA + (size_t)MC_MAX * KC;
    const int mr = ki.mr, nr = ki.nr, mc_max = ki.mc;
    float edge[MR_MAX * NR_MAX] __attribute__((aligned(64)));
    for (long jc = 0; jc < N; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC;
            float b_eff = pc == 0 ? beta : 1.0f;
            pack_b(transB, B, ldb, N, jc, nc, pc, kc, nr, packB);
            for (long ic = 0; ic < M; ic += mc_max) {
                long mc = M - ic < mc_max ? M - ic : mc_max;
                pack_a(transA, A, lda, M, ic, mc, pc, kc, mr, packA);
                for (long jr = 0; jr < nc; jr += nr) {
                    long cols = nc - jr < nr ? nc - jr : nr;
                    const float *bp = packB + jr * kc;
                    for (long ir = 0; ir < mc; ir += mr) {
                        long rows = mc - ir < mr ? mc - ir : mr;
                        const float *ap = packA + ir * kc;
                        float *cp = C + (ic + ir) * ldc + jc + jr;
                        if (rows == mr && cols == nr) {
                            ki.kern(kc, ap, bp, cp, ldc, alpha, b_eff);
                        } else {
                            ki.kern(kc, ap, bp, edge, nr, alpha, 0.0f);
                            for (long i = 0; i < rows; i++)
                                for (long j = 0; j < cols; j++) {
                                    float v = edge[i * nr + j];
                                    cp[i * ldc + j] = b_eff == 0.0f ? v : v + b_eff * cp[i * ldc + j];
                                }
                        }
                    }
                }
            }
        }
    }
}

// Small M: C[i,:] = alpha * sum_k op(A)[i,k] op(B)[k,:] + beta C[i,:] without packing.
// Used for batch-1 style products, where packing B would cost as much as the product.
__attribute__((target_clones("avx512f", "avx2", "default"))) static void
gemm_small_m(int transA, int transB, long M, long N, long K, float alpha, const float *A,
             long lda, const float *B, long ldb, float beta, float *C, long ldc) {
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (!transB) {
            for (long j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
            for (long k = 0; k < K; k++) {
                float a = alpha * (transA ? A[k * lda + i] : A[i * lda + k]);
                const float *b = B + k * ldb;
                for (long j = 0; j < N; j++) c[j] += a * b[j];
            }
        } else {
            for (long j = 0; j < N; j++) {
                const float *b = B + j * ldb;
                float acc[16] = {0};
                long k = 0;
                if (!transA) {
                    const float *a = A + i * lda;
                    for (; k + 16 <= K; k += 16)
                        for (int u = 0; u < 16; u++) acc[u] += a[k + u] * b[k + u];
                    for (; k < K; k++) acc[0] += a[k] * b[k];
                } else {
                    for (; k < K; k++) acc[0] += A[k * lda + i] * b[k];
                }
                float s = 0;
                for (int u = 0; u < 16; u++) s += acc[u];
                c[j] = alpha * s + (beta == 0.0f ? 0.0f : beta * c[j]);
            }
        }
    }
}

void strata_sgemm_serial(int transA, int transB, long M, long N, long K, float alpha,
                         const float *A, long lda, const float *B, long ldb, float beta,
                         float *C, long ldc) {
    if (M <= 2 && K > 0) {
        gemm_small_m(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    gemm_serial(pick_kernel(), transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- threading -------------------------------------------------------------------------------

typedef struct {
    kernel_info ki;
    int transA, transB;
    long M, N, K;
    float alpha, beta;
    const float *A, *B;
    float *C;
    long lda, ldb, ldc;
    int split_n;   // 1: tasks own column blocks, 0: row blocks
    long chunk;    // columns (or rows) per task
} gemm_job;

static void gemm_task(void *ctx, long t) {
    const gemm_job *g = ctx;
    long start = t * g->chunk;
    if (g->split_n) {
        if (start >= g->N) return;
        long n = g->N - start < g->chunk ? g->N - start : g->chunk;
        const float *B = g->transB ? g->B + start * g->ldb : g->B + start;
        gemm_serial(g->ki, g->transA, g->transB, g->M, n, g->K, g->alpha, g->A, g->lda, B, g->ldb,
                    g->beta, g->C + start, g->ldc);
    } else {
        if (start >= g->M) return;
        long m = g->M - start < g->chunk ? g->M - start : g->chunk;
        const float *A = g->transA ? g->A + start : g->A + start * g->lda;
        gemm_serial(g->ki, g->transA, g->transB, m, g->N, g->K, g->alpha, A, g->lda, g->B, g->ldb,
                    g->beta, g->C + start * g->ldc, g->ldc);
    }
}

void strata_sgemm(int transA, int transB, long M, long N, long K, float alpha, const float *A,
                  long lda, const float *B, long ldb, float beta, float *C, long ldc) {
    int threads = strata_get_num_threads();
    double work = (double)M * (double)N * (double)K;
    if (threads <= 1 || work < 96.0 * 96.0 * 96.0 || M <= 2) {
        strata_sgemm_serial(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    kernel_info ki = pick_kernel();
    gemm_job g = {ki, transA, transB, M, N, K, alpha, beta, A, B, C, lda, ldb, ldc, 1, 0};
    long n_tiles = (N + ki.nr - 1) / ki.nr, m_tiles = (M + ki.mr - 1) / ki.mr;
    // Split the dimension with more micro-tiles; each task keeps whole tiles.
    g.split_n = n_tiles >= m_tiles;
    long tiles = g.split_n ? n_tiles : m_tiles;
    long tasks = threads < tiles ? threads : tiles;
    long per = (tiles + tasks - 1) / tasks;
    g.chunk = per * (g.split_n ? ki.nr : ki.mr);
    tasks = ((g.split_n ? N : M) + g.chunk - 1) / g.chunk;
    strata_parallel_for(tasks, gemm_task, &g);
}
