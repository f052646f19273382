// Inference kernels of a Transformer encoder layer: multi-head attention over projected
// queries, keys and values read in place (no head permutes), and residual + LayerNorm in one pass.
// Each has an AVX-512 and an AVX2 body with explicit vector accumulators, and a plain C one,
// chosen by strata_cpu_isa() (so STRATA_ISA and tests can force the lower ones).
#include "strata_kernels.h"
#include "mathfun.h"
#include "simd_transpose.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    long n, t, heads, dh, ldqkv, ldctx;
    const float *q, *k, *v;
    const long *lengths, *starts;
    float scale;
    float *ctx, *weights;
} attn_job;

// softmax over s[0, len): exp of the shifted scores written back, returns 1/sum. The exp loop
// auto-vectorises (sf_exp is branch-free) for the enclosing function's target; the sums stay
// in order (no reassociation), as in sk_softmax.
#define SOFTMAX_ROW(s, len)                                                                      \
    ({                                                                                           \
        float mx_ = s[0];                                                                        \
        for (long j_ = 1; j_ < len; j_++) mx_ = s[j_] > mx_ ? s[j_] : mx_;                       \
        for (long j_ = 0; j_ < len; j_++) s[j_] = sf_exp(s[j_] - mx_);                           \
        float sum_ = 0;                                                                          \
        for (long j_ = 0; j_ < len; j_++) sum_ += s[j_];                                         \
        1.0f / sum_;                                                                             \
    })

// Writes one query row's weights (zeros past the valid keys) when asked for them; rows of
// padding queries are left as they are (the caller zeroes the buffer).
static inline void store_weights(const attn_job *j, long b, long h, long i, const float *p, float inv, long len) {
    if (!j->weights) return;
    float *w = j->weights + ((b * j->heads + h) * j->t + i) * j->t;
    for (long c = 0; c < len; c++) w[c] = p[c] * inv;
    for (long c = len; c < j->t; c++) w[c] = 0;
}

// Generic body: any dh, scalar loops.
static void attn_generic(const attn_job *j, long b, long h, float *s) {
    long len = j->lengths[b], t = len, dh = j->dh, row0 = j->starts[b];
    const float *q = j->q + row0 * j->ldqkv + h * dh, *k = j->k + row0 * j->ldqkv + h * dh,
                *v = j->v + row0 * j->ldqkv + h * dh;
    for (long i = 0; i < t; i++) {
        for (long c = 0; c < len; c++) {
            float acc = 0;
            for (long d = 0; d < dh; d++) acc += q[i * j->ldqkv + d] * k[c * j->ldqkv + d];
            s[c] = acc * j->scale;
        }
        float inv = SOFTMAX_ROW(s, len);
        store_weights(j, b, h, i, s, inv, len);
        float *o = j->ctx + (row0 + i) * j->ldctx + h * dh;
        for (long d = 0; d < dh; d++) o[d] = 0;
        for (long c = 0; c < len; c++) {
            float p = s[c] * inv;
            for (long d = 0; d < dh; d++) o[d] += p * v[c * j->ldqkv + d];
        }
    }
}

// Vector body, instantiated per ISA. Keys are transposed (in register blocks) into kt[dh][lpad],
// so a query's scores are a sum over d of q[d] * kt[d][:] (VL keys per vector); G = 8 queries
// share each kt load and give 8 independent FMA chains. The context rows are sum_c p[c] v[c][:],
// PR rows at a time sharing each load of v, two vectors of dh per pass. dh is a multiple of VL.
// Query rows past the sequence's end repeat its first row and are computed but never stored.
#define ATTN_G 8
#define ATTN_VECTOR_BODY(NAME, TARGET, V, VL, PR, TRANSPOSE_KEYS, LOAD, STORE, SET1, FMA, ZERO, MUL) \
    __attribute__((target(TARGET))) static void NAME(const attn_job *j, long b, long h, float *s, float *kt) { \
        long len = j->lengths[b], dh = j->dh, ld = j->ldqkv, row0 = j->starts[b];              \
        long lpad = (len + VL - 1) / VL * VL;                                                    \
        const float *q = j->q + row0 * ld + h * dh, *k = j->k + row0 * ld + h * dh,             \
                    *v = j->v + row0 * ld + h * dh;                                              \
        TRANSPOSE_KEYS(k, ld, len, lpad, dh, kt);                                                \
        V vs = SET1(j->scale);                                                                   \
        for (long i0 = 0; i0 < len; i0 += ATTN_G) {                                              \
            long qn = len - i0 < ATTN_G ? len - i0 : ATTN_G;                                     \
            const float *qr[ATTN_G];                                                             \
            for (int r = 0; r < ATTN_G; r++) qr[r] = q + (i0 + (r < qn ? r : 0)) * ld;           \
            for (long c = 0; c < lpad; c += VL) {                                                \
                V a[ATTN_G];                                                                     \
                for (int r = 0; r < ATTN_G; r++) a[r] = ZERO();                                  \
                for (long d = 0; d < dh; d++) {                                                  \
                    V kv = LOAD(kt + d * lpad + c);                                              \
                    for (int r = 0; r < ATTN_G; r++) a[r] = FMA(SET1(qr[r][d]), kv, a[r]);       \
                }                                                                                \
                for (int r = 0; r < ATTN_G; r++) STORE(s + r * lpad + c, MUL(a[r], vs));         \
            }                                                                                    \
            float inv[ATTN_G];                                                                   \
            for (int r = 0; r < ATTN_G; r++) {                                                   \
                float *sr = s + r * lpad;                                                        \
                inv[r] = SOFTMAX_ROW(sr, len);                                                   \
                if (r < qn) store_weights(j, b, h, i0 + r, sr, inv[r], len);                     \
            }                                                                                    \
            for (long r0 = 0; r0 < qn; r0 += PR) {                                               \
                const float *sp = s + r0 * lpad;                                                 \
                for (long d0 = 0; d0 < dh; d0 += 2 * VL) {                                       \
                    int two = d0 + VL < dh;                                                      \
                    V c0[PR], c1[PR];                                                            \
                    for (int r = 0; r < PR; r++) c0[r] = c1[r] = ZERO();                         \
                    for (long c = 0; c < len; c++) {                                             \
                        const float *vr = v + c * ld + d0;                                       \
                        V v0 = LOAD(vr), v1 = two ? LOAD(vr + VL) : ZERO();                      \
                        for (int r = 0; r < PR; r++) {                                           \
                            V p = SET1(sp[r * lpad + c]);                                        \
                            c0[r] = FMA(p, v0, c0[r]);                                           \
                            c1[r] = FMA(p, v1, c1[r]);                                           \
                        }                                                                        \
                    }                                                                            \
                    for (int r = 0; r < PR && r0 + r < qn; r++) {                                \
                        float *o = j->ctx + (row0 + i0 + r0 + r) * j->ldctx + h * dh + d0;       \
                        V vi = SET1(inv[r0 + r]);                                                \
                        STORE(o, MUL(c0[r], vi));                                                \
                        if (two) STORE(o + VL, MUL(c1[r], vi));                                  \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }

// kt[d][c] = k[c][d] for c < len, 0 up to lpad: VL x VL blocks transposed in registers.
__attribute__((target("avx512f"))) static void transpose_keys_avx512(const float *k, long ld, long len, long lpad, long dh, float *kt) {
    for (long c0 = 0; c0 < lpad; c0 += 16)
        for (long d0 = 0; d0 < dh; d0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = c0 + i < len ? _mm512_loadu_ps(k + (c0 + i) * ld + d0) : _mm512_setzero_ps();
            transpose16(r);
            for (int i = 0; i < 16; i++) _mm512_storeu_ps(kt + (d0 + i) * lpad + c0, r[i]);
        }
}

__attribute__((target("avx2"))) static void transpose_keys_avx2(const float *k, long ld, long len, long lpad, long dh, float *kt) {
    for (long c0 = 0; c0 < lpad; c0 += 8)
        for (long d0 = 0; d0 < dh; d0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = c0 + i < len ? _mm256_loadu_ps(k + (c0 + i) * ld + d0) : _mm256_setzero_ps();
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(kt + (d0 + i) * lpad + c0, r[i]);
        }
}

ATTN_VECTOR_BODY(attn_avx512, "avx512f,fma", __m512, 16, 8, transpose_keys_avx512, _mm512_loadu_ps, _mm512_storeu_ps,
                 _mm512_set1_ps, _mm512_fmadd_ps, _mm512_setzero_ps, _mm512_mul_ps)
ATTN_VECTOR_BODY(attn_avx2, "avx2,fma", __m256, 8, 4, transpose_keys_avx2, _mm256_loadu_ps, _mm256_storeu_ps,
                 _mm256_set1_ps, _mm256_fmadd_ps, _mm256_setzero_ps, _mm256_mul_ps)

static void attn_task(void *ctx, long index) {
    const attn_job *j = ctx;
    long b = index / j->heads, h = index % j->heads;
    long len = j->lengths[b];
    if (len <= 0) return;
    int isa = strata_cpu_isa();
    long vl = isa >= 2 ? 16 : (isa == 1 ? 8 : 0);
    long lpad = (len + 15) / 16 * 16;
    // Scores of a group of queries, then the transposed keys (dh rounded up for the blocks).
    long dpad = (j->dh + 15) / 16 * 16;
    float *s = sk_scratch(SK_SCRATCH_ATTENTION, (size_t)(ATTN_G * lpad + dpad * lpad));
    if (vl && j->dh % vl == 0) {
        if (isa >= 2) attn_avx512(j, b, h, s, s + ATTN_G * lpad);
        else attn_avx2(j, b, h, s, s + ATTN_G * lpad);
    } else {
        attn_generic(j, b, h, s);
    }
}

void sk_attention(long n, long t, long heads, long dh, const float *q, const float *k, const float *v, long ldqkv,
                  const long *lengths, const long *starts, float scale, float *ctx, long ldctx, float *weights) {
    attn_job j = {n, t, heads, dh, ldqkv, ldctx, q, k, v, lengths, starts, scale, ctx, weights};
    strata_parallel_for(n * heads, attn_task, &j);
}

// ---- residual + LayerNorm -----------------------------------------------------------------------

typedef struct {
    long rows, h, chunk;
    const float *x, *res, *gamma, *beta;
    float eps;
    float *out;
} ln_job;

static void ln_rows_generic(const ln_job *j, long r0, long r1) {
    long h = j->h;
    for (long r = r0; r < r1; r++) {
        const float *x = j->x + r * h, *res = j->res ? j->res + r * h : 0;
        float *o = j->out + r * h;
        float sum = 0;
        for (long c = 0; c < h; c++) { float s = x[c] + (res ? res[c] : 0); o[c] = s; sum += s; }
        float mean = sum / (float)h, sq = 0;
        for (long c = 0; c < h; c++) { float d = o[c] - mean; sq += d * d; }
        float inv = 1.0f / SK_SQRT_F(sq / (float)h + j->eps);
        for (long c = 0; c < h; c++) o[c] = (o[c] - mean) * inv * j->gamma[c] + j->beta[c];
    }
}

// Two passes over the row in registers' width: sum (after adding the residual), then the squared
// deviations, then the affine output; the tail (h not a multiple of VL) is scalar.
#define LN_VECTOR_BODY(NAME, TARGET, V, VL, LOAD, STORE, SET1, FMA, ZERO, ADD, SUB, MUL, HSUM)  \
    __attribute__((target(TARGET))) static void NAME(const ln_job *j, long r0, long r1) {        \
        long h = j->h, hv = h / VL * VL;                                                         \
        for (long r = r0; r < r1; r++) {                                                         \
            const float *x = j->x + r * h, *res = j->res ? j->res + r * h : 0;                   \
            float *o = j->out + r * h;                                                           \
            V acc0 = ZERO(), acc1 = ZERO();                                                      \
            long c = 0;                                                                          \
            for (; c < hv; c += VL) {                                                            \
                V s = LOAD(x + c);                                                               \
                if (res) s = ADD(s, LOAD(res + c));                                              \
                STORE(o + c, s);                                                                 \
                if ((c / VL) & 1) acc1 = ADD(acc1, s); else acc0 = ADD(acc0, s);                 \
            }                                                                                    \
            float sum = HSUM(ADD(acc0, acc1));                                                   \
            for (; c < h; c++) { float s = x[c] + (res ? res[c] : 0); o[c] = s; sum += s; }     \
            float mean = sum / (float)h;                                                         \
            V vm = SET1(mean);                                                                   \
            acc0 = ZERO(); acc1 = ZERO();                                                        \
            for (c = 0; c < hv; c += VL) {                                                       \
                V d = SUB(LOAD(o + c), vm);                                                      \
                if ((c / VL) & 1) acc1 = FMA(d, d, acc1); else acc0 = FMA(d, d, acc0);           \
            }                                                                                    \
            float sq = HSUM(ADD(acc0, acc1));                                                    \
            for (; c < h; c++) { float d = o[c] - mean; sq += d * d; }                           \
            float inv = 1.0f / SK_SQRT_F(sq / (float)h + j->eps);                                \
            V vi = SET1(inv);                                                                    \
            for (c = 0; c < hv; c += VL) {                                                       \
                V d = MUL(SUB(LOAD(o + c), vm), vi);                                             \
                STORE(o + c, FMA(d, LOAD(j->gamma + c), LOAD(j->beta + c)));                     \
            }                                                                                    \
            for (; c < h; c++) o[c] = (o[c] - mean) * inv * j->gamma[c] + j->beta[c];            \
        }                                                                                        \
    }

__attribute__((target("avx512f"))) static inline float ln_hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }
__attribute__((target("avx2"))) static inline float ln_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

LN_VECTOR_BODY(ln_rows_avx512, "avx512f,fma", __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps,
               _mm512_fmadd_ps, _mm512_setzero_ps, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, ln_hsum512)
LN_VECTOR_BODY(ln_rows_avx2, "avx2,fma", __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps,
               _mm256_fmadd_ps, _mm256_setzero_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, ln_hsum256)

static void ln_task(void *ctx, long t) {
    const ln_job *j = ctx;
    long r0 = t * j->chunk, r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
    if (r0 >= r1) return;
    int isa = strata_cpu_isa();
    if (isa >= 2) ln_rows_avx512(j, r0, r1);
    else if (isa == 1) ln_rows_avx2(j, r0, r1);
    else ln_rows_generic(j, r0, r1);
}

void sk_add_layernorm(long rows, long h, const float *x, const float *res, const float *gamma, const float *beta,
                      float eps, float *out) {
    ln_job j = {rows, h, rows, x, res, gamma, beta, eps, out};
    int threads = strata_get_num_threads();
    // Below ~32k elements the hand-off costs more than the work.
    long tasks = (rows * h < 32768 || threads <= 1) ? 1 : threads;
    j.chunk = (rows + tasks - 1) / tasks;
    if (tasks == 1) ln_task(&j, 0);
    else strata_parallel_for(tasks, ln_task, &j);
}
