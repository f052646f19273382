// Packed, register-blocked SGEMM (Goto/BLIS loop order).
//
//   for jc in N step NC        pack op(B)[pc:pc+kc, jc:jc+nc] into NR-wide panels  (L3)
//     for pc in K step KC (equal blocks, at most the kernel's kc)
//       for ic in M step MC    pack op(A)[ic:ic+mc, pc:pc+kc] into MR-tall panels  (L2)
//         for jr, ir           micro-kernel: C[MR,NR] += Apanel[MR,kc] * Bpanel[kc,NR]  (B panel in L1)
//
// Three micro-kernels: AVX-512 (12x32), AVX2+FMA (6x16) and portable C (4x16), chosen at run time.
// Threads split C into column (or row) blocks that run the whole loop nest independently.
#include "strata_kernels.h"
#include "multi_isa.h"
#include "simd_transpose.h"
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KC_MAX 384
#define NC 3072
#define MC_MAX 192
#define MR_MAX 12
#define NR_MAX 32

typedef void (*ukernel_fn)(long kc, const float *a, const float *b, float *c, long ldc,
                           float alpha, float beta, const float *bias, int act);

typedef struct {
    int mr, nr, mc, kc;
    int kc_whole;   // a K up to this is one block (else blocks of kc)
    ukernel_fn kern;
} kernel_info;

// The K block size for a product with this K: pack_a/b and gemm_serial must agree on it. Blocks
// of equal length (a multiple of 8, at most kc), so no short last block re-reads and re-writes C
// for a few multiply-adds (K = 784 was 256 + 256 + 256 + 16).
static inline long kc_for(kernel_info ki, long K) {
    if (K <= ki.kc_whole) return K;
    long blocks = (K + ki.kc - 1) / ki.kc;
    return ((K + blocks - 1) / blocks + 7) & ~7L;
}

// ---- GELU for the epilogue -------------------------------------------------------------------------
// GELU(x) = x/2 (1 + erf(x/sqrt 2)) with erf(z) = 1 - (1 + a1 z + ... + a6 z^6)^-16 for z >= 0
// (Abramowitz & Stegun 7.1.28, |error| <= 3e-7; under 2e-6 in float, under 6e-7 on GELU). It
// needs no exp, so the micro-kernels apply it to a tile in registers.
#define ERF_A1 0.0705230784f
#define ERF_A2 0.0422820123f
#define ERF_A3 0.0092705272f
#define ERF_A4 0.0001520143f
#define ERF_A5 0.0002765672f
#define ERF_A6 0.0000430638f

static inline float gelu_as(float x) {
    float z = __builtin_fabsf(x) * 0.70710678118654752f;
    float q = ((((((ERF_A6 * z + ERF_A5) * z + ERF_A4) * z + ERF_A3) * z + ERF_A2) * z + ERF_A1) * z + 1.0f);
    q = q * q; q = q * q; q = q * q; q = q * q;
    float e = 1.0f - 1.0f / q;
    return 0.5f * x * (x < 0 ? 1.0f - e : 1.0f + e);
}

__attribute__((target("avx512f,fma"))) static inline __m512 gelu_avx512(__m512 x) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(ERF_A6), z, _mm512_set1_ps(ERF_A5));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(ERF_A4));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(ERF_A3));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(ERF_A2));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(ERF_A1));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(1.0f));
    q = _mm512_mul_ps(q, q); q = _mm512_mul_ps(q, q); q = _mm512_mul_ps(q, q); q = _mm512_mul_ps(q, q);
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = _mm512_sub_ps(one, _mm512_div_ps(one, q));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 s = _mm512_mask_sub_ps(_mm512_add_ps(one, e), neg, one, e);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), s);
}

__attribute__((target("avx2,fma"))) static inline __m256 gelu_avx2(__m256 x) {
    __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(0.70710678118654752f));
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(ERF_A6), z, _mm256_set1_ps(ERF_A5));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(ERF_A4));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(ERF_A3));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(ERF_A2));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(ERF_A1));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(1.0f));
    q = _mm256_mul_ps(q, q); q = _mm256_mul_ps(q, q); q = _mm256_mul_ps(q, q); q = _mm256_mul_ps(q, q);
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = _mm256_sub_ps(one, _mm256_div_ps(one, q));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 s = _mm256_blendv_ps(_mm256_add_ps(one, e), _mm256_sub_ps(one, e), neg);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), s);
}

// ---- micro-kernels -----------------------------------------------------------------------------
// a: kc x MR packed (MR values per k), b: kc x NR packed (NR values per k), c: MR x NR, row stride ldc.
// c = act(alpha*acc + beta*c + bias): beta == 0 never reads C; bias (NR floats) may be NULL;
// act is SK_GEMM_NONE or SK_GEMM_GELU.

#define ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f,fma"))) static void
kernel_avx512_12x32(long kc, const float *a, const float *b, float *c, long ldc, float alpha,
                    float beta, const float *bias, int act) {
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
    if (!bias && !act) {
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
        return;
    }
    // Epilogue: bias and activation while the tile is in registers.
    __m512 z0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    __m512 z1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    if (beta != 0.0f) {
        __m512 vb = _mm512_set1_ps(beta);
#define ADDC(i)                                                                                  \
    c##i##0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + i * ldc), _mm512_mul_ps(va, c##i##0));     \
    c##i##1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + i * ldc + 16), _mm512_mul_ps(va, c##i##1));
        ROWS12(ADDC)
#undef ADDC
        va = _mm512_set1_ps(1.0f);
    }
    if (act == SK_GEMM_GELU) {
#define STORE(i)                                                                                 \
    _mm512_storeu_ps(c + i * ldc, gelu_avx512(_mm512_fmadd_ps(va, c##i##0, z0)));                \
    _mm512_storeu_ps(c + i * ldc + 16, gelu_avx512(_mm512_fmadd_ps(va, c##i##1, z1)));
        ROWS12(STORE)
#undef STORE
    } else {
#define STORE(i)                                                                                 \
    _mm512_storeu_ps(c + i * ldc, _mm512_fmadd_ps(va, c##i##0, z0));                             \
    _mm512_storeu_ps(c + i * ldc + 16, _mm512_fmadd_ps(va, c##i##1, z1));
        ROWS12(STORE)
#undef STORE
    }
}

#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

__attribute__((target("avx2,fma"))) static void
kernel_avx2_6x16(long kc, const float *a, const float *b, float *c, long ldc, float alpha,
                 float beta, const float *bias, int act) {
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
    if (!bias && !act) {
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
        return;
    }
    __m256 z0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    __m256 z1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
    if (beta != 0.0f) {
        __m256 vb = _mm256_set1_ps(beta);
#define ADDC(i)                                                                                  \
    c##i##0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + i * ldc), _mm256_mul_ps(va, c##i##0));     \
    c##i##1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + i * ldc + 8), _mm256_mul_ps(va, c##i##1));
        ROWS6(ADDC)
#undef ADDC
        va = _mm256_set1_ps(1.0f);
    }
    if (act == SK_GEMM_GELU) {
#define STORE(i)                                                                                 \
    _mm256_storeu_ps(c + i * ldc, gelu_avx2(_mm256_fmadd_ps(va, c##i##0, z0)));                  \
    _mm256_storeu_ps(c + i * ldc + 8, gelu_avx2(_mm256_fmadd_ps(va, c##i##1, z1)));
        ROWS6(STORE)
#undef STORE
    } else {
#define STORE(i)                                                                                 \
    _mm256_storeu_ps(c + i * ldc, _mm256_fmadd_ps(va, c##i##0, z0));                             \
    _mm256_storeu_ps(c + i * ldc + 8, _mm256_fmadd_ps(va, c##i##1, z1));
        ROWS6(STORE)
#undef STORE
    }
}

static void kernel_generic_4x16(long kc, const float *a, const float *b, float *c, long ldc,
                                float alpha, float beta, const float *bias, int act) {
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
        for (int j = 0; j < 16; j++) {
            float v = alpha * acc[i][j] + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]) + (bias ? bias[j] : 0.0f);
            c[i * ldc + j] = act == SK_GEMM_GELU ? gelu_as(v) : v;
        }
}

static kernel_info pick_kernel(void) {
    switch (strata_cpu_isa()) {
    // On AVX-512 a K up to 384 is one block: a transformer's K = 384 then writes C once instead
    // of reading it back for a second block (5-10% on those shapes on Zen 5). Longer K keeps
    // blocks of 256, which the Fashion-MNIST CNN's training measured 3% faster than 384. AVX2
    // keeps 256 so that a 6x16 kernel's B panel and A panel fit a 32 KiB L1 together.
    case 2: return (kernel_info){12, 32, 192, 256, KC_MAX, kernel_avx512_12x32};
    case 1: return (kernel_info){6, 16, 192, 256, 256, kernel_avx2_6x16};
    default: return (kernel_info){4, 16, 128, 256, 256, kernel_generic_4x16};
    }
}

// ---- packing ------------------------------------------------------------------------------------

// op(A)[i0:i0+mc, k0:k0+kc] -> panels of mr rows; rows past M are zero.
SK_BODY void pack_a_body(int transA, const float *A, long lda, long M, long i0, long mc, long k0, long kc, int mr,
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
SK_MULTI_ISA_VOID(static, pack_a, (int transA, const float *A, long lda, long M, long i0, long mc, long k0, long kc, int mr, float *dst), (transA, A, lda, M, i0, mc, k0, kc, mr, dst))

// op(B)[k0:k0+kc, j0:j0+nc] -> panels of nr columns; columns past N are zero.
SK_BODY void pack_b_body(int transB, const float *B, long ldb, long N, long j0, long nc, long k0, long kc, int nr,
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
SK_MULTI_ISA_VOID(static, pack_b, (int transB, const float *B, long ldb, long N, long j0, long nc, long k0, long kc, int nr, float *dst), (transB, B, ldb, N, j0, nc, k0, kc, nr, dst))

// ---- AVX-512 transposing packs ----------------------------------------------------------------
// The two packing cases that transpose (A row-major into MR-tall panels, B^T into NR-wide
// panels) go through 16x16 in-register transposes instead of scalar gathers.

// Row-major A[i0.., k0..] -> panels of mr (<= 16) rows: dst[k*mr + i] = A[(i0+i)*lda + k0+k].
__attribute__((target("avx512f"))) static void
pack_a_rows_avx512(const float *A, long lda, long M, long i0, long mc, long k0, long kc, int mr, float *dst) {
    __mmask16 store_mask = (__mmask16)((1u << mr) - 1);
    for (long p = 0; p < mc; p += mr) {
        long rows = (i0 + p + mr <= M) ? mr : M - (i0 + p);
        if (rows > mc - p) rows = mc - p;
        for (long k = 0; k < kc; k += 16) {
            long w = kc - k < 16 ? kc - k : 16;
            __mmask16 lm = (__mmask16)((1u << w) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_maskz_loadu_ps(lm, A + (i0 + p + i) * lda + k0 + k) : _mm512_setzero_ps();
            transpose16(r);
            for (long c = 0; c < w; c++) _mm512_mask_storeu_ps(dst + (k + c) * mr, store_mask, r[c]);
        }
        dst += mr * kc;
    }
}

// B stored [N, K] (op(B) = B^T) -> panels of nr (multiple of 16) columns:
// dst[k*nr + j] = B[(j0+j)*ldb + k0+k].
__attribute__((target("avx512f"))) static void
pack_b_trans_avx512(const float *B, long ldb, long N, long j0, long nc, long k0, long kc, int nr, float *dst) {
    for (long p = 0; p < nc; p += nr) {
        long cols = (j0 + p + nr <= N) ? nr : N - (j0 + p);
        if (cols > nc - p) cols = nc - p;
        for (int h = 0; h < nr; h += 16) {
            for (long k = 0; k < kc; k += 16) {
                long w = kc - k < 16 ? kc - k : 16;
                __mmask16 lm = (__mmask16)((1u << w) - 1);
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = h + i < cols ? _mm512_maskz_loadu_ps(lm, B + (j0 + p + h + i) * ldb + k0 + k) : _mm512_setzero_ps();
                transpose16(r);
                for (long c = 0; c < w; c++) _mm512_store_ps(dst + (k + c) * nr + h, r[c]);
            }
        }
        dst += nr * kc;
    }
}

// ---- AVX2 transposing packs (8x8 in-register transposes) ----------------------------------------

// Lane mask of the first n (0..8) lanes, for _mm256_maskload_ps / _mm256_maskstore_ps.
__attribute__((target("avx2"))) static inline __m256i first_lanes(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The AVX2 twin of pack_a_rows_avx512, for mr <= 8. Each column is stored whole (8 floats):
// lanes past mr hold the zero rows and land on the next column's first slots, which its own
// store then overwrites; only a panel's last column is stored with a mask, so nothing is written
// past the panel. Masked stores (vmaskmovps) are slow on AMD's cores: storing every column with
// one made this pack 3x slower than the AVX-512 one (39 against 12 us for 64x784).
__attribute__((target("avx2"))) static void
pack_a_rows_avx2(const float *A, long lda, long M, long i0, long mc, long k0, long kc, int mr, float *dst) {
    const __m256i store_mask = first_lanes(mr);
    for (long p = 0; p < mc; p += mr) {
        long rows = (i0 + p + mr <= M) ? mr : M - (i0 + p);
        if (rows > mc - p) rows = mc - p;
        for (long k = 0; k < kc; k += 8) {
            long w = kc - k < 8 ? kc - k : 8;
            __m256i lm = first_lanes(w);
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = i < rows ? _mm256_maskload_ps(A + (i0 + p + i) * lda + k0 + k, lm) : _mm256_setzero_ps();
            transpose8(r);
            for (long c = 0; c < w; c++) {
                // (with mr >= 4 a whole store before the last column ends inside the panel)
                if (k + c == kc - 1 || mr < 4) _mm256_maskstore_ps(dst + (k + c) * mr, store_mask, r[c]);
                else _mm256_storeu_ps(dst + (k + c) * mr, r[c]);
            }
        }
        dst += mr * kc;
    }
}

// The AVX2 twin of pack_b_trans_avx512, for nr a multiple of 8.
__attribute__((target("avx2"))) static void
pack_b_trans_avx2(const float *B, long ldb, long N, long j0, long nc, long k0, long kc, int nr, float *dst) {
    for (long p = 0; p < nc; p += nr) {
        long cols = (j0 + p + nr <= N) ? nr : N - (j0 + p);
        if (cols > nc - p) cols = nc - p;
        for (int h = 0; h < nr; h += 8) {
            for (long k = 0; k < kc; k += 8) {
                long w = kc - k < 8 ? kc - k : 8;
                __m256i lm = first_lanes(w);
                __m256 r[8];
                for (int i = 0; i < 8; i++)
                    r[i] = h + i < cols ? _mm256_maskload_ps(B + (j0 + p + h + i) * ldb + k0 + k, lm) : _mm256_setzero_ps();
                transpose8(r);
                for (long c = 0; c < w; c++) _mm256_storeu_ps(dst + (k + c) * nr + h, r[c]);
            }
        }
        dst += nr * kc;
    }
}

// ---- epilogue --------------------------------------------------------------------------------------
// For tiles the micro-kernel cannot finish itself (edges, tiny products): C[i, j] =
// act(C[i, j] + bias[j]) on a tile still in L1.

SK_BODY void epilogue_tile_body(float *c, long ldc, long rows, long cols, const float *bias, int act) {
    for (long i = 0; i < rows; i++) {
        float *r = c + i * ldc;
        if (bias)
            for (long j = 0; j < cols; j++) r[j] += bias[j];
        if (act == SK_GEMM_GELU)
            for (long j = 0; j < cols; j++) r[j] = gelu_as(r[j]);
    }
}
SK_MULTI_ISA_VOID(static, epilogue_tile, (float *c, long ldc, long rows, long cols, const float *bias, int act), (c, ldc, rows, cols, bias, act))

// ---- per-thread packing buffers ------------------------------------------------------------------

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static void buf_free(void *p) { free(p); }
static void buf_init(void) { pthread_key_create(&buf_key, buf_free); }

static float *pack_buffers(void) {
    pthread_once(&buf_once, buf_init);
    float *p = pthread_getspecific(buf_key);
    if (!p) {
        size_t floats = (size_t)MC_MAX * KC_MAX + (size_t)KC_MAX * (NC + NR_MAX);
        p = aligned_alloc(64, floats * sizeof(float));
        pthread_setspecific(buf_key, p);
    }
    return p;
}

// ---- the loop nest --------------------------------------------------------------------------------

// An operand: a row-major matrix (op = itself or its transpose), or the same matrix pre-packed
// by strata_gemm_pack_a/b (then `data` is unused). Offsets select a sub-block: rows of op(A)
// from `row0`, columns of op(B) from `col0` (multiples of MR / NR when packed).
typedef struct {
    const float *data;
    long ld;
    int trans;
    const float *packed;
    long padded;   // packed: rows (A) or columns (B) rounded up to MR / NR
} operand;

// A partial tile computed into `e` (rows of nr) to C: C = e, or e + beta C. The branch is outside
// the loops and the pointers are restrict, so the copies vectorise (a tile with fewer rows than MR
// is every small product's last: Winograd's 16-tile products at batch 1 spent 5 % of their time in
// a scalar copy here).
static inline void store_edge(const float *restrict e, long nr, float *restrict c, long ldc, long rows, long cols,
                              float beta) {
    for (long i = 0; i < rows; i++) {
        const float *restrict s = e + i * nr;
        float *restrict d = c + i * ldc;
        if (beta == 0.0f)
            for (long j = 0; j < cols; j++) d[j] = s[j];
        else
            for (long j = 0; j < cols; j++) d[j] = s[j] + beta * d[j];
    }
}

// `bias` (already offset to this block's first column) and `act` form the epilogue.
static void gemm_serial(kernel_info ki, long M, long N, long K, float alpha, operand a, long row0,
                        operand b, long col0, float beta, float *C, long ldc, const float *bias, int act) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        if (bias || act) epilogue_tile(C, ldc, M, N, bias, act);
        return;
    }
    const int epilogue = bias || act;
    const long kcb = kc_for(ki, K);
    float *packA = pack_buffers();
    float *packB = packA + (size_t)MC_MAX * KC_MAX;
    const int mr = ki.mr, nr = ki.nr, mc_max = ki.mc;
    const int avx512 = strata_cpu_isa() >= 2, avx2 = strata_cpu_isa() == 1;
    float edge[MR_MAX * NR_MAX] __attribute__((aligned(64)));
    // Source pointers of the sub-block (for operands that are packed here).
    const float *A = a.packed ? 0 : (a.trans ? a.data + row0 : a.data + row0 * a.ld);
    const float *B = b.packed ? 0 : (b.trans ? b.data + col0 * b.ld : b.data + col0);
    for (long jc = 0; jc < N; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC;
        for (long pc = 0; pc < K; pc += kcb) {
            long kc = K - pc < kcb ? K - pc : kcb;
            float b_eff = pc == 0 ? beta : 1.0f;
            const int last = pc + kc >= K;
            const float *bpanel;
            if (b.packed) {
                bpanel = b.packed + b.padded * pc + (col0 + jc) * kc;
            } else {
                if (b.trans && nr % 16 == 0 && avx512) pack_b_trans_avx512(B, b.ld, N, jc, nc, pc, kc, nr, packB);
                else if (b.trans && nr % 8 == 0 && avx2) pack_b_trans_avx2(B, b.ld, N, jc, nc, pc, kc, nr, packB);
                else pack_b(b.trans, B, b.ld, N, jc, nc, pc, kc, nr, packB);
                bpanel = packB;
            }
            for (long ic = 0; ic < M; ic += mc_max) {
                long mc = M - ic < mc_max ? M - ic : mc_max;
                const float *apanel;
                if (a.packed) {
                    apanel = a.packed + a.padded * pc + (row0 + ic) * kc;
                } else {
                    if (!a.trans && mr <= 16 && avx512) pack_a_rows_avx512(A, a.ld, M, ic, mc, pc, kc, mr, packA);
                    else if (!a.trans && mr <= 8 && avx2) pack_a_rows_avx2(A, a.ld, M, ic, mc, pc, kc, mr, packA);
                    else pack_a(a.trans, A, a.ld, M, ic, mc, pc, kc, mr, packA);
                    apanel = packA;
                }
                for (long jr = 0; jr < nc; jr += nr) {
                    long cols = nc - jr < nr ? nc - jr : nr;
                    const float *bp = bpanel + jr * kc;
                    for (long ir = 0; ir < mc; ir += mr) {
                        long rows = mc - ir < mr ? mc - ir : mr;
                        const float *ap = apanel + ir * kc;
                        float *cp = C + (ic + ir) * ldc + jc + jr;
                        if (rows == mr && cols == nr) {
                            const int fin = last && epilogue;
                            ki.kern(kc, ap, bp, cp, ldc, alpha, b_eff, fin && bias ? bias + jc + jr : 0, fin ? act : 0);
                        } else {
                            ki.kern(kc, ap, bp, edge, nr, alpha, 0.0f, 0, 0);
                            store_edge(edge, nr, cp, ldc, rows, cols, b_eff);
                        }
                        if (last && epilogue && (rows < mr || cols < nr))
                            epilogue_tile(cp, ldc, rows, cols, bias ? bias + jc + jr : 0, act);
                    }
                }
            }
        }
    }
}

// Small M (a batch of one or two rows): C[i,:] = alpha * op(A)[i,:] @ op(B) + beta C[i,:] without
// packing, since packing B would cost as much as the product. Columns [j0, j1) only, so threads
// can split N.
SK_BODY void gemm_small_m_generic_body(int transA, int transB, long M, long N, long K, float alpha, const float *A,
                     long lda, const float *B, long ldb, float beta, float *C, long ldc, long j0, long j1) {
    for (long i = 0; i < M; i++) {
        float *c = C + i * ldc;
        if (!transB) {
            for (long j = j0; j < j1; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
            for (long k = 0; k < K; k++) {
                float a = alpha * (transA ? A[k * lda + i] : A[i * lda + k]);
                const float *b = B + k * ldb;
                for (long j = j0; j < j1; j++) c[j] += a * b[j];
            }
        } else {
            for (long j = j0; j < j1; j++) {
                const float *b = B + j * ldb;
                float acc = 0;
                for (long k = 0; k < K; k++) acc += (transA ? A[k * lda + i] : A[i * lda + k]) * b[k];
                c[j] = alpha * acc + (beta == 0.0f ? 0.0f : beta * c[j]);
            }
        }
    }
}
SK_MULTI_ISA_VOID(static, gemm_small_m_generic, (int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda, const float *B, long ldb, float beta, float *C, long ldc, long j0, long j1), (transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, j0, j1))

__attribute__((target("avx512f"))) static inline float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

// AVX-512 version for contiguous rows of A (transA = 0): transposed B computes 8 dot products
// at once (8 independent FMA chains hide the latency); plain B keeps 8 column vectors of C in
// registers across all of K.
__attribute__((target("avx512f,fma"))) static void
gemm_small_m_avx512(int transB, long M, long N, long K, float alpha, const float *A, long lda,
                    const float *B, long ldb, float beta, float *C, long ldc, long j0, long j1) {
    for (long i = 0; i < M; i++) {
        const float *a = A + i * lda;
        float *c = C + i * ldc;
        if (transB) {
            long j = j0;
            for (; j + 8 <= j1; j += 8) {
                __m512 acc[8];
                for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_ps();
                long k = 0;
                for (; k + 16 <= K; k += 16) {
                    __m512 av = _mm512_loadu_ps(a + k);
                    for (int r = 0; r < 8; r++) acc[r] = _mm512_fmadd_ps(av, _mm512_loadu_ps(B + (j + r) * ldb + k), acc[r]);
                }
                if (k < K) {
                    __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
                    __m512 av = _mm512_maskz_loadu_ps(m, a + k);
                    for (int r = 0; r < 8; r++) acc[r] = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, B + (j + r) * ldb + k), acc[r]);
                }
                for (int r = 0; r < 8; r++) {
                    float v = alpha * hsum512(acc[r]);
                    c[j + r] = beta == 0.0f ? v : v + beta * c[j + r];
                }
            }
            for (; j < j1; j++) {
                __m512 acc = _mm512_setzero_ps();
                long k = 0;
                for (; k + 16 <= K; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(B + j * ldb + k), acc);
                float v = hsum512(acc);
                for (; k < K; k++) v += a[k] * B[j * ldb + k];
                v *= alpha;
                c[j] = beta == 0.0f ? v : v + beta * c[j];
            }
        } else {
            for (long jb = j0; jb < j1; jb += 128) {
                long w = j1 - jb < 128 ? j1 - jb : 128;
                long nv = (w + 15) / 16;
                __mmask16 last = (__mmask16)((1u << (w - 16 * (nv - 1))) - 1);
                __m512 acc[8];
                for (int v = 0; v < 8; v++) acc[v] = _mm512_setzero_ps();
                for (long k = 0; k < K; k++) {
                    __m512 av = _mm512_set1_ps(a[k]);
                    const float *b = B + k * ldb + jb;
                    for (int v = 0; v < 8; v++) {
                        if (v >= nv) break;
                        __m512 bv = v == nv - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
                        acc[v] = _mm512_fmadd_ps(av, bv, acc[v]);
                    }
                }
                for (int v = 0; v < nv; v++) {
                    __mmask16 m = v == nv - 1 ? last : (__mmask16)0xFFFF;
                    __m512 r = _mm512_mul_ps(_mm512_set1_ps(alpha), acc[v]);
                    if (beta != 0.0f) r = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m, c + jb + 16 * v), r);
                    _mm512_mask_storeu_ps(c + jb + 16 * v, m, r);
                }
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}


// The AVX2 twin of gemm_small_m_avx512: 8-wide vectors, 8 dot products at once for transposed
// B; for plain B, 64 columns of C (8 vectors) kept in registers across all of K.
__attribute__((target("avx2,fma"))) static void
gemm_small_m_avx2(int transB, long M, long N, long K, float alpha, const float *A, long lda,
                  const float *B, long ldb, float beta, float *C, long ldc, long j0, long j1) {
    (void)N;
    const __m256i ktail = first_lanes(K % 8);
    for (long i = 0; i < M; i++) {
        const float *a = A + i * lda;
        float *c = C + i * ldc;
        if (transB) {
            long j = j0;
            for (; j + 8 <= j1; j += 8) {
                __m256 acc[8];
                for (int r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
                long k = 0;
                for (; k + 8 <= K; k += 8) {
                    __m256 av = _mm256_loadu_ps(a + k);
                    for (int r = 0; r < 8; r++) acc[r] = _mm256_fmadd_ps(av, _mm256_loadu_ps(B + (j + r) * ldb + k), acc[r]);
                }
                if (k < K) {
                    __m256 av = _mm256_maskload_ps(a + k, ktail);
                    for (int r = 0; r < 8; r++) acc[r] = _mm256_fmadd_ps(av, _mm256_maskload_ps(B + (j + r) * ldb + k, ktail), acc[r]);
                }
                for (int r = 0; r < 8; r++) {
                    float v = alpha * hsum256(acc[r]);
                    c[j + r] = beta == 0.0f ? v : v + beta * c[j + r];
                }
            }
            for (; j < j1; j++) {
                __m256 acc = _mm256_setzero_ps();
                long k = 0;
                for (; k + 8 <= K; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(B + j * ldb + k), acc);
                float v = hsum256(acc);
                for (; k < K; k++) v += a[k] * B[j * ldb + k];
                v *= alpha;
                c[j] = beta == 0.0f ? v : v + beta * c[j];
            }
        } else {
            for (long jb = j0; jb < j1; jb += 64) {
                long w = j1 - jb < 64 ? j1 - jb : 64;
                long nv = (w + 7) / 8;
                __m256i last = first_lanes(w - 8 * (nv - 1));
                __m256 acc[8];
                for (int v = 0; v < 8; v++) acc[v] = _mm256_setzero_ps();
                for (long k = 0; k < K; k++) {
                    __m256 av = _mm256_set1_ps(a[k]);
                    const float *b = B + k * ldb + jb;
                    for (int v = 0; v < 8; v++) {
                        if (v >= nv) break;
                        __m256 bv = v == nv - 1 ? _mm256_maskload_ps(b + 8 * v, last) : _mm256_loadu_ps(b + 8 * v);
                        acc[v] = _mm256_fmadd_ps(av, bv, acc[v]);
                    }
                }
                // Whole vectors are stored plainly: a masked store is microcoded on Zen 1 to 3, even
                // with every lane on. Only a last partial vector takes the mask.
                for (int v = 0; v < nv; v++) {
                    float *cv = c + jb + 8 * v;
                    __m256 r = _mm256_mul_ps(_mm256_set1_ps(alpha), acc[v]);
                    if (v < nv - 1 || w % 8 == 0) {
                        if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(cv), r);
                        _mm256_storeu_ps(cv, r);
                    } else {
                        if (beta != 0.0f) r = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_maskload_ps(cv, last), r);
                        _mm256_maskstore_ps(cv, last, r);
                    }
                }
            }
        }
    }
}

static void gemm_small_m_range(int transA, int transB, long M, long N, long K, float alpha, const float *A,
                               long lda, const float *B, long ldb, float beta, float *C, long ldc, long j0, long j1) {
    if (!transA && strata_cpu_isa() >= 2)
        gemm_small_m_avx512(transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, j0, j1);
    else if (!transA && strata_cpu_isa() == 1)
        gemm_small_m_avx2(transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, j0, j1);
    else
        gemm_small_m_generic(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, j0, j1);
}

typedef struct {
    int transA, transB;
    long M, N, K, lda, ldb, ldc, chunk;
    float alpha, beta;
    const float *A, *B;
    float *C;
} small_job;

static void small_task(void *ctx, long t) {
    const small_job *g = ctx;
    long j0 = t * g->chunk, j1 = j0 + g->chunk < g->N ? j0 + g->chunk : g->N;
    if (j0 < j1) gemm_small_m_range(g->transA, g->transB, g->M, g->N, g->K, g->alpha, g->A, g->lda, g->B, g->ldb, g->beta, g->C, g->ldc, j0, j1);
}

static void gemm_small_m(int transA, int transB, long M, long N, long K, float alpha, const float *A,
                         long lda, const float *B, long ldb, float beta, float *C, long ldc, int threaded) {
    int threads = threaded ? strata_get_num_threads() : 1;
    // Split the columns over threads once the weights are large enough to pay for the hand-off.
    if (threads > 1 && (double)M * N * K >= 65536.0 && N >= 32 && strata_split_small_work((double)M * N * K)) {
        small_job g = {transA, transB, M, N, K, lda, ldb, ldc, 0, alpha, beta, A, B, C};
        g.chunk = ((N + threads - 1) / threads + 15) & ~15L;
        long tasks = (N + g.chunk - 1) / g.chunk;
        strata_parallel_for(tasks, small_task, &g);
        return;
    }
    gemm_small_m_range(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, N);
}

// ---- pre-packing ---------------------------------------------------------------------------------

size_t strata_gemm_packed_size_a(long M, long K) {
    kernel_info ki = pick_kernel();
    return (size_t)((M + ki.mr - 1) / ki.mr * ki.mr) * (size_t)K;
}

void strata_gemm_a_layout(long K, int *mr, long *kc_block) {
    kernel_info ki = pick_kernel();
    *mr = ki.mr;
    *kc_block = kc_for(ki, K);
}

size_t strata_gemm_packed_size_b(long N, long K) {
    kernel_info ki = pick_kernel();
    return (size_t)((N + ki.nr - 1) / ki.nr * ki.nr) * (size_t)K;
}

// Packs all of op(A) [M, K] in the order gemm_serial reads it: KC blocks, each holding every
// MR-row panel.
void strata_gemm_pack_a(int transA, long M, long K, const float *A, long lda, float *dst) {
    kernel_info ki = pick_kernel();
    long Mpad = (M + ki.mr - 1) / ki.mr * ki.mr;
    const long kcb = kc_for(ki, K);
    for (long pc = 0; pc < K; pc += kcb) {
        long kc = K - pc < kcb ? K - pc : kcb;
        if (!transA && ki.mr <= 16 && strata_cpu_isa() >= 2) pack_a_rows_avx512(A, lda, M, 0, M, pc, kc, ki.mr, dst + Mpad * pc);
        else if (!transA && ki.mr <= 8 && strata_cpu_isa() == 1) pack_a_rows_avx2(A, lda, M, 0, M, pc, kc, ki.mr, dst + Mpad * pc);
        else pack_a(transA, A, lda, M, 0, M, pc, kc, ki.mr, dst + Mpad * pc);
    }
}

void strata_gemm_pack_b(int transB, long N, long K, const float *B, long ldb, float *dst) {
    kernel_info ki = pick_kernel();
    long Npad = (N + ki.nr - 1) / ki.nr * ki.nr;
    const long kcb = kc_for(ki, K);
    for (long pc = 0; pc < K; pc += kcb) {
        long kc = K - pc < kcb ? K - pc : kcb;
        if (transB && ki.nr % 16 == 0 && strata_cpu_isa() >= 2) pack_b_trans_avx512(B, ldb, N, 0, N, pc, kc, ki.nr, dst + Npad * pc);
        else if (transB && ki.nr % 8 == 0 && strata_cpu_isa() == 1) pack_b_trans_avx2(B, ldb, N, 0, N, pc, kc, ki.nr, dst + Npad * pc);
        else pack_b(transB, B, ldb, N, 0, N, pc, kc, ki.nr, dst + Npad * pc);
    }
}

static operand make_operand(const sk_gemm_operand *o, long rows_or_cols, int is_a, kernel_info ki) {
    operand r = {o->data, o->ld, o->trans, o->packed, 0};
    if (o->packed) {
        long m = is_a ? ki.mr : ki.nr;
        r.padded = (rows_or_cols + m - 1) / m * m;
    }
    return r;
}

// ---- threading -------------------------------------------------------------------------------

typedef struct {
    kernel_info ki;
    long M, N, K;
    float alpha, beta;
    operand a, b;
    float *C;
    long ldc;
    int split_n;   // 1: tasks own column blocks, 0: row blocks
    long chunk;    // columns (or rows) per task
    const float *bias;
    int act;
} gemm_job;

static void gemm_task(void *ctx, long t) {
    const gemm_job *g = ctx;
    long start = t * g->chunk;
    if (g->split_n) {
        if (start >= g->N) return;
        long n = g->N - start < g->chunk ? g->N - start : g->chunk;
        gemm_serial(g->ki, g->M, n, g->K, g->alpha, g->a, 0, g->b, start, g->beta, g->C + start, g->ldc,
                    g->bias ? g->bias + start : 0, g->act);
    } else {
        if (start >= g->M) return;
        long m = g->M - start < g->chunk ? g->M - start : g->chunk;
        gemm_serial(g->ki, m, g->N, g->K, g->alpha, g->a, start, g->b, 0, g->beta, g->C + start * g->ldc, g->ldc,
                    g->bias, g->act);
    }
}

void strata_sgemm_epilogue(long M, long N, long K, float alpha, const sk_gemm_operand *A,
                           const sk_gemm_operand *B, float beta, float *C, long ldc, int threaded,
                           const float *bias, int act) {
    kernel_info ki = pick_kernel();
    operand a = make_operand(A, M, 1, ki), b = make_operand(B, N, 0, ki);
    if (M <= 2 && K > 0 && !a.packed && !b.packed) {
        gemm_small_m(a.trans, b.trans, M, N, K, alpha, a.data, a.ld, b.data, b.ld, beta, C, ldc, threaded);
        if (bias || act) epilogue_tile(C, ldc, M, N, bias, act);
        return;
    }
    int threads = threaded ? strata_get_num_threads() : 1;
    double work = (double)M * (double)N * (double)K;
    if (threads <= 1 || work < 96.0 * 96.0 * 96.0) {
        gemm_serial(ki, M, N, K, alpha, a, 0, b, 0, beta, C, ldc, bias, act);
        return;
    }
    gemm_job g = {ki, M, N, K, alpha, beta, a, b, C, ldc, 1, 0, bias, act};
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

void strata_sgemm_ex(long M, long N, long K, float alpha, const sk_gemm_operand *A, const sk_gemm_operand *B,
                     float beta, float *C, long ldc, int threaded) {
    strata_sgemm_epilogue(M, N, K, alpha, A, B, beta, C, ldc, threaded, 0, SK_GEMM_NONE);
}

void strata_sgemm_serial(int transA, int transB, long M, long N, long K, float alpha,
                         const float *A, long lda, const float *B, long ldb, float beta,
                         float *C, long ldc) {
    sk_gemm_operand a = {A, lda, transA, 0}, b = {B, ldb, transB, 0};
    strata_sgemm_ex(M, N, K, alpha, &a, &b, beta, C, ldc, 0);
}

void strata_sgemm(int transA, int transB, long M, long N, long K, float alpha, const float *A,
                  long lda, const float *B, long ldb, float beta, float *C, long ldc) {
    sk_gemm_operand a = {A, lda, transA, 0}, b = {B, ldb, transB, 0};
    strata_sgemm_ex(M, N, K, alpha, &a, &b, beta, C, ldc, 1);
}
