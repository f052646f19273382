// NCHW convolution through im2col + GEMM, and max/avg pooling, each with its backward pass.
//
// conv forward, per image n and group g (K = Cg*KH*KW, P = OH*OW):
//   col[K, P]       = im2col(x[n, g])
//   y[n, g][Co_g,P] = w[g][Co_g, K] @ col + bias
// backward:
//   gw[g] += gy[n, g] @ col^T          (per-task partial sums, added in a fixed order)
//   gcol    = w[g]^T @ gy[n, g];  gx[n, g] = col2im(gcol)
//   gb     += sum_P gy[n, g]
#include "strata_kernels.h"
#include "multi_isa.h"
#include "simd_transpose.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// ---- per-thread scratch that only grows (no allocation in steady state) -------------------------

#define SCRATCH_SLOTS 7
typedef struct { float *p; size_t n; } scratch_t;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_free(void *v) {
    scratch_t *s = v;
    for (int i = 0; i < SCRATCH_SLOTS; i++) free(s[i].p);
    free(s);
}
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

float *sk_scratch(int slot, size_t floats) {
    pthread_once(&scratch_once, scratch_init);
    scratch_t *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(SCRATCH_SLOTS, sizeof(scratch_t));
        pthread_setspecific(scratch_key, s);
    }
    if (s[slot].n < floats) {
        free(s[slot].p);
        size_t n = floats + floats / 4 + 64;
        s[slot].p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
        s[slot].n = n;
    }
    return s[slot].p;
}

// ---- im2col / col2im ----------------------------------------------------------------------------


// x: [Cg, H, W] -> col: [Cg*KH*KW, OH*OW]
// Lanes i of a 16-wide step starting at column `o` whose source column o + i + off lies in
// [0, limit), limited to the first n lanes.
static inline unsigned valid_lanes(long o, long off, long limit, long n) {
    long first = -(o + off), last = limit - (o + off);   // valid i in [first, last)
    unsigned v = (unsigned)((1u << n) - 1);
    if (first > 0) v &= first >= 16 ? 0u : ~((1u << first) - 1);
    if (last < 16) v &= last <= 0 ? 0u : (1u << last) - 1;
    return v;
}

#define MAXTAP 16
#define MAXCHUNK 16

// AVX-512 im2col for horizontal stride 1: each output row segment is one masked load of the
// input row (lanes outside the image read as zero) and one store. Masks depend only on the
// tap column and the segment, so they are computed once.
__attribute__((target("avx512f"))) static void im2col_s1_avx512(const sk_conv_shape *s, long cg, const float *x, float *col, long ld) {
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow, KW = s->kw;
    long chunks = (OW + 15) / 16;
    __mmask16 lm[MAXTAP][MAXCHUNK], sm[MAXCHUNK];
    for (long q = 0; q < chunks; q++) {
        long n = OW - 16 * q < 16 ? OW - 16 * q : 16;
        sm[q] = (__mmask16)((1u << n) - 1);
        for (long kw = 0; kw < KW; kw++) lm[kw][q] = (__mmask16)valid_lanes(16 * q, kw * s->dw - s->pw, W, n);
    }
    for (long c = 0; c < cg; c++)
        for (long kh = 0; kh < s->kh; kh++)
            for (long kw = 0; kw < KW; kw++) {
                const float *xc = x + c * H * W + kw * s->dw - s->pw;
                float *r = col + ((c * s->kh + kh) * KW + kw) * ld;
                // Output rows whose input row is inside the image: [oh0, oh1).
                long oh0 = 0, oh1 = OH;
                while (oh0 < OH && oh0 * s->sh - s->ph + kh * s->dh < 0) oh0++;
                while (oh1 > oh0 && (oh1 - 1) * s->sh - s->ph + kh * s->dh >= H) oh1--;
                for (long q = 0; q < chunks; q++) {
                    __mmask16 l = lm[kw][q], st = sm[q];
                    __m512 z = _mm512_setzero_ps();
                    for (long oh = 0; oh < oh0; oh++) _mm512_mask_storeu_ps(r + oh * OW + 16 * q, st, z);
                    const float *xr = xc + (oh0 * s->sh - s->ph + kh * s->dh) * W + 16 * q;
                    for (long oh = oh0; oh < oh1; oh++, xr += s->sh * W)
                        _mm512_mask_storeu_ps(r + oh * OW + 16 * q, st, _mm512_maskz_loadu_ps(l, xr));
                    for (long oh = oh1; oh < OH; oh++) _mm512_mask_storeu_ps(r + oh * OW + 16 * q, st, z);
                }
            }
}

// AVX-512 col2im for horizontal stride 1. For each input row, the contributions of all tap
// columns are summed in a register before one store (adding them one by one into overlapping,
// shifted ranges stalls on store forwarding).
__attribute__((target("avx512f"))) static void col2im_s1_avx512(const sk_conv_shape *s, long cg, const float *gcol, float *gx, long ld) {
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow, KW = s->kw;
    long chunks = (W + 15) / 16;
    // Input column t receives from output column t - woff(kw).
    __mmask16 lm[MAXTAP][MAXCHUNK], sm[MAXCHUNK];
    for (long q = 0; q < chunks; q++) {
        long n = W - 16 * q < 16 ? W - 16 * q : 16;
        sm[q] = (__mmask16)((1u << n) - 1);
        for (long kw = 0; kw < KW; kw++) lm[kw][q] = (__mmask16)valid_lanes(16 * q, -(kw * s->dw - s->pw), OW, n);
    }
    for (long c = 0; c < cg; c++)
        for (long kh = 0; kh < s->kh; kh++) {
            const float *rows = gcol + (c * s->kh + kh) * KW * ld;
            float *gc = gx + c * H * W;
            for (long oh = 0; oh < OH; oh++) {
                long ih = oh * s->sh - s->ph + kh * s->dh;
                if (ih < 0 || ih >= H) continue;
                float *g = gc + ih * W;
                for (long q = 0; q < chunks; q++) {
                    __m512 acc = _mm512_maskz_loadu_ps(sm[q], g + 16 * q);
                    for (long kw = 0; kw < KW; kw++) {
                        long woff = kw * s->dw - s->pw;
                        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(lm[kw][q], rows + kw * ld + oh * OW + 16 * q - woff));
                    }
                    _mm512_mask_storeu_ps(g + 16 * q, sm[q], acc);
                }
            }
        }
}

// ---- AVX2 twins (8 lanes) ------------------------------------------------------------------------
// Rows of 8 or more floats are covered by 8-wide steps at 0, 8, 16, ... and one last step that
// ends exactly at the row's end (overlapping the one before and writing the same values), so only
// rows under 8 floats need masked stores (slow on AMD). Loads touching padding are masked: lanes
// outside the image read as +0.0, exactly what the generic path writes.

// Lanes i of an 8-wide step with lo <= i < hi, as an all-ones/zero mask per lane.
__attribute__((target("avx2"))) static inline __m256i lanes8(long lo, long hi) {
    if (lo < -1) lo = -1;
    if (lo > 8) lo = 8;
    if (hi < 0) hi = 0;
    if (hi > 9) hi = 9;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), idx));
}

// Start of the q-th 8-wide step over a row of n >= 8 floats (the last one ends at n).
static inline long step8(long q, long n) { return 8 * q + 8 <= n ? 8 * q : n - 8; }

// AVX2 im2col for horizontal stride 1 (see im2col_s1_avx512).
__attribute__((target("avx2,fma"))) static void im2col_s1_avx2(const sk_conv_shape *s, long cg, const float *x, float *col, long ld) {
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow, KW = s->kw;
    int narrow = OW < 8;                       // one masked step per row
    long steps = narrow ? 1 : (OW + 7) / 8;
    __m256i sm = lanes8(0, OW);
    const __m256 z = _mm256_setzero_ps();
    for (long c = 0; c < cg; c++)
        for (long kh = 0; kh < s->kh; kh++)
            for (long kw = 0; kw < KW; kw++) {
                long woff = kw * s->dw - s->pw;
                float *r = col + ((c * s->kh + kh) * KW + kw) * ld;
                // Output rows whose input row is inside the image: [oh0, oh1).
                long oh0 = 0, oh1 = OH;
                while (oh0 < OH && oh0 * s->sh - s->ph + kh * s->dh < 0) oh0++;
                while (oh1 > oh0 && (oh1 - 1) * s->sh - s->ph + kh * s->dh >= H) oh1--;
                const float *xc = x + c * H * W + (oh0 * s->sh - s->ph + kh * s->dh) * W;
                for (long q = 0; q < steps; q++) {
                    long o = narrow ? 0 : step8(q, OW);
                    // Lanes whose source column o + i + woff lies in [0, W).
                    long lo = -(o + woff), hi = W - (o + woff);
                    int full = !narrow && lo <= 0 && hi >= 8;
                    __m256i lm = lanes8(lo, hi);
                    if (narrow) lm = _mm256_and_si256(lm, sm);
                    const float *xr = xc + o + woff;
                    float *ro = r + o;
                    if (narrow) {
                        for (long oh = 0; oh < oh0; oh++) _mm256_maskstore_ps(ro + oh * OW, sm, z);
                        for (long oh = oh0; oh < oh1; oh++, xr += s->sh * W) _mm256_maskstore_ps(ro + oh * OW, sm, _mm256_maskload_ps(xr, lm));
                        for (long oh = oh1; oh < OH; oh++) _mm256_maskstore_ps(ro + oh * OW, sm, z);
                        continue;
                    }
                    for (long oh = 0; oh < oh0; oh++) _mm256_storeu_ps(ro + oh * OW, z);
                    if (full)
                        for (long oh = oh0; oh < oh1; oh++, xr += s->sh * W) _mm256_storeu_ps(ro + oh * OW, _mm256_loadu_ps(xr));
                    else
                        for (long oh = oh0; oh < oh1; oh++, xr += s->sh * W) _mm256_storeu_ps(ro + oh * OW, _mm256_maskload_ps(xr, lm));
                    for (long oh = oh1; oh < OH; oh++) _mm256_storeu_ps(ro + oh * OW, z);
                }
            }
}

#define MAXSTEP8 33

// One 8-wide step of col2im_s1_avx2 at column o: g[o..o+8) plus every tap column's contribution.
__attribute__((target("avx2,fma"))) static inline __m256 col2im_step8(const float *g, const float *src, long ld, long o,
                                                                     const sk_conv_shape *s, const __m256i *lm, const unsigned char *full) {
    __m256 acc = _mm256_loadu_ps(g + o);
    for (long kw = 0; kw < s->kw; kw++) {
        const float *p = src + kw * ld + o - (kw * s->dw - s->pw);
        acc = _mm256_add_ps(acc, full[kw] ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lm[kw]));
    }
    return acc;
}

// AVX2 col2im for horizontal stride 1 (see col2im_s1_avx512): per input row, the tap columns are
// summed in a register in the generic path's order (kw ascending) before one store. The last,
// overlapping step is computed before the others are stored, so it starts from the same values.
__attribute__((target("avx2,fma"))) static void col2im_s1_avx2(const sk_conv_shape *s, long cg, const float *gcol, float *gx, long ld) {
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow, KW = s->kw;
    int narrow = W < 8;
    long steps = narrow ? 1 : (W + 7) / 8;
    int overlap = !narrow && W % 8 != 0;       // the last step overlaps the one before
    // Input column t receives from output column t - woff(kw); lanes where that lies in [0, OW).
    __m256i lm[MAXSTEP8][MAXTAP];
    unsigned char full[MAXSTEP8][MAXTAP];
    __m256i sm = lanes8(0, W);
    for (long q = 0; q < steps; q++) {
        long o = narrow ? 0 : step8(q, W);
        for (long kw = 0; kw < KW; kw++) {
            long woff = kw * s->dw - s->pw;
            long lo = woff - o, hi = OW + woff - o;
            lm[q][kw] = narrow ? _mm256_and_si256(lanes8(lo, hi), sm) : lanes8(lo, hi);
            full[q][kw] = !narrow && lo <= 0 && hi >= 8;
        }
    }
    for (long c = 0; c < cg; c++)
        for (long kh = 0; kh < s->kh; kh++) {
            const float *rows = gcol + (c * s->kh + kh) * KW * ld;
            float *gc = gx + c * H * W;
            for (long oh = 0; oh < OH; oh++) {
                long ih = oh * s->sh - s->ph + kh * s->dh;
                if (ih < 0 || ih >= H) continue;
                float *g = gc + ih * W;
                const float *src = rows + oh * OW;
                if (narrow) {
                    __m256 acc = _mm256_maskload_ps(g, sm);
                    for (long kw = 0; kw < KW; kw++)
                        acc = _mm256_add_ps(acc, _mm256_maskload_ps(src + kw * ld - (kw * s->dw - s->pw), lm[0][kw]));
                    _mm256_maskstore_ps(g, sm, acc);
                    continue;
                }
                long plain = overlap ? steps - 1 : steps;
                __m256 last = _mm256_setzero_ps();
                if (overlap) last = col2im_step8(g, src, ld, W - 8, s, lm[steps - 1], full[steps - 1]);
                for (long q = 0; q < plain; q++) _mm256_storeu_ps(g + 8 * q, col2im_step8(g, src, ld, 8 * q, s, lm[q], full[q]));
                if (overlap) _mm256_storeu_ps(g + W - 8, last);
            }
        }
}

// col rows are `ld` floats apart (OH*OW for one image; more when several images share a buffer).
SK_BODY void im2col_body(const sk_conv_shape *s, long cg, const float *x, float *col, long ld) {
    if (s->sw == 1 && s->kw <= MAXTAP && s->ow <= 16 * MAXCHUNK && strata_cpu_isa() >= 2) { im2col_s1_avx512(s, cg, x, col, ld); return; }
    if (s->sw == 1 && strata_cpu_isa() >= 1) { im2col_s1_avx2(s, cg, x, col, ld); return; }
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow;
    for (long c = 0; c < cg; c++)
        for (long kh = 0; kh < s->kh; kh++)
            for (long kw = 0; kw < s->kw; kw++) {
                float *row = col + ((c * s->kh + kh) * s->kw + kw) * ld;
                const float *xc = x + c * H * W;
                long woff = kw * s->dw - s->pw;
                // ow range whose input column is inside [0, W)
                long lo = 0, hi = OW;
                while (lo < OW && lo * s->sw + woff < 0) lo++;
                while (hi > lo && (hi - 1) * s->sw + woff >= W) hi--;
                for (long oh = 0; oh < OH; oh++) {
                    long ih = oh * s->sh - s->ph + kh * s->dh;
                    float *r = row + oh * OW;
                    if (ih < 0 || ih >= H) { memset(r, 0, (size_t)OW * sizeof(float)); continue; }
                    const float *xr = xc + ih * W + woff;
                    for (long ow = 0; ow < lo; ow++) r[ow] = 0.0f;
                    if (s->sw == 1) memcpy(r + lo, xr + lo, (size_t)(hi - lo) * sizeof(float));
                    else for (long ow = lo; ow < hi; ow++) r[ow] = xr[ow * s->sw];
                    for (long ow = hi; ow < OW; ow++) r[ow] = 0.0f;
                }
            }
}
SK_MULTI_ISA_VOID(static, im2col, (const sk_conv_shape *s, long cg, const float *x, float *col, long ld), (s, cg, x, col, ld))

// ---- im2col straight into the GEMM's packed A ------------------------------------------------------
// The forward's product Y^T[rows, Cog] = col^T @ W^T packs col^T into panels of mr output pixels
// (strata_gemm_a_layout). For small products (a single image) this builds those panels from x
// directly, with no column buffer: one pass instead of im2col's write, the packer's read and its
// write. A panel's pixels fall into runs along output rows (at most mr of them); for each tap a
// run is one masked load of an input row, lanes outside the image reading +0.0 as im2col's do.
// Horizontal stride 1 only; rows = nb * P pixels of nb images (image stride istride floats).

typedef struct { long off; int lo, hi; } pack_run;   // lanes [lo, hi) read x[c] + off + lane

// The runs of the panel of rows [r0, r0 + mr) for tap (kh, kw); returns how many.
static int panel_runs(const sk_conv_shape *s, long istride, long rows, long r0, int mr, long kh, long kw, pack_run *out) {
    long P = s->oh * s->ow, shift = kw * s->dw - s->pw;
    int n = 0;
    for (long l = 0; l < mr && r0 + l < rows;) {
        long r = r0 + l, b = r / P, pix = r % P, oh = pix / s->ow, ow = pix % s->ow;
        long len = s->ow - ow;
        if (len > mr - l) len = mr - l;
        if (len > rows - r) len = rows - r;
        long ih = oh * s->sh - s->ph + kh * s->dh;
        if (ih >= 0 && ih < s->h) {
            // lane q in [l, l + len) reads column ow + shift + (q - l), valid in [0, W)
            long lo = l + (ow + shift < 0 ? -(ow + shift) : 0), hi = l + len;
            if (hi > l + s->w - (ow + shift)) hi = l + s->w - (ow + shift);
            if (hi > lo) out[n++] = (pack_run){b * istride + ih * s->w + ow + shift - l, (int)lo, (int)hi};
        }
        l += len;
    }
    return n;
}

#define PACK_MAX_TAPS 25
#define PACK_MAX_FLOATS (1L << 17)   // packed A up to 512 KiB: it stays in L2 for the product

static int im2col_packs(const sk_conv_shape *s, long rows, long K) {
    return s->sw == 1 && s->kh * s->kw <= PACK_MAX_TAPS && rows * K <= PACK_MAX_FLOATS && strata_cpu_isa() >= 1;
}

// The runs of every tap of the panel at row p0 (nr[t] of them; a tap with fewer than two gets
// empty ones, lanes [0, 0), up to two). Returns whether every tap has at most two runs (output
// rows at least mr - 1 long), which the packers' branch-free loops need.
static int panel_tap_runs(const sk_conv_shape *s, long istride, long rows, long p0, int mr, pack_run run[][16], int *nr) {
    int two = 1;
    for (long t = 0; t < s->kh * s->kw; t++) {
        nr[t] = panel_runs(s, istride, rows, p0, mr, t / s->kw, t % s->kw, run[t]);
        for (int i = nr[t]; i < 2; i++) run[t][i] = (pack_run){0, 0, 0};
        two &= nr[t] <= 2;
    }
    return two;
}

__attribute__((target("avx512f"))) static void im2col_pack_a_avx512(const sk_conv_shape *s, long cg, const float *x, long istride,
                                                                    long rows, int mr, long kcb, float *dst) {
    long T = s->kh * s->kw, K = cg * T, HW = s->h * s->w, Mpad = (rows + mr - 1) / mr * mr;
    pack_run run[PACK_MAX_TAPS][16];
    __mmask16 m[PACK_MAX_TAPS][16];
    int nr[PACK_MAX_TAPS];
    const __mmask16 store = (__mmask16)((1u << mr) - 1);
    const __m512i i0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19);
    const __m512i i1 = _mm512_setr_epi32(4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i i2 = _mm512_setr_epi32(8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27);
    for (long p0 = 0; p0 < rows; p0 += mr) {
        int two = panel_tap_runs(s, istride, rows, p0, mr, run, nr);
        for (long t = 0; t < T; t++)
            for (int i = 0; i < (nr[t] > 2 ? nr[t] : 2); i++)
                m[t][i] = (__mmask16)(((1u << run[t][i].hi) - 1) & ~((1u << run[t][i].lo) - 1));
        // Columns k = c * T + t in order, block by block. Panels of 12 go four columns at a time,
        // 4 x 12 floats as three whole aligned vectors (one unaligned 64-byte store per column
        // measured slower), with two masked loads per column and no branches where runs are at
        // most two; the rest column by column, masked.
        long c = 0, t = 0;
        for (long pc = 0; pc < K; pc += kcb) {
            long kc = K - pc < kcb ? K - pc : kcb;
            float *d = dst + Mpad * pc + p0 * kc;
            long k = 0;
            if (mr == 12 && two)
                for (; k + 4 <= kc; k += 4, d += 48) {
                    __m512 v[4];
                    for (int q = 0; q < 4; q++) {
                        const float *xc = x + c * HW;
                        v[q] = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(m[t][0], xc + run[t][0].off), m[t][1], xc + run[t][1].off);
                        if (++t == T) { t = 0; c++; }
                    }
                    _mm512_storeu_ps(d, _mm512_permutex2var_ps(v[0], i0, v[1]));
                    _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(v[1], i1, v[2]));
                    _mm512_storeu_ps(d + 32, _mm512_permutex2var_ps(v[2], i2, v[3]));
                }
            for (; k < kc; k++, d += mr) {
                const float *xc = x + c * HW;
                __m512 v = _mm512_setzero_ps();
                for (int i = 0; i < nr[t]; i++) v = _mm512_mask_loadu_ps(v, m[t][i], xc + run[t][i].off);
                _mm512_mask_storeu_ps(d, store, v);
                if (++t == T) { t = 0; c++; }
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static void im2col_pack_a_avx2(const sk_conv_shape *s, long cg, const float *x, long istride,
                                                                   long rows, int mr, long kcb, float *dst) {
    long T = s->kh * s->kw, K = cg * T, HW = s->h * s->w, Mpad = (rows + mr - 1) / mr * mr;
    pack_run run[PACK_MAX_TAPS][16];
    __m256i m[PACK_MAX_TAPS][16];
    int nr[PACK_MAX_TAPS];
    const __m256i store = lanes8(0, mr);
    for (long p0 = 0; p0 < rows; p0 += mr) {
        int two = panel_tap_runs(s, istride, rows, p0, mr, run, nr);
        for (long t = 0; t < T; t++)
            for (int i = 0; i < (nr[t] > 2 ? nr[t] : 2); i++) m[t][i] = lanes8(run[t][i].lo, run[t][i].hi);
        long c = 0, t = 0;   // as im2col_pack_a_avx512
        for (long pc = 0; pc < K; pc += kcb) {
            long kc = K - pc < kcb ? K - pc : kcb;
            float *d = dst + Mpad * pc + p0 * kc;
            long k = 0;
            if (two && mr <= 8)   // a whole-vector store spills into the next column, written next
                for (; k + 1 < kc; k++, d += mr) {
                    const float *xc = x + c * HW;
                    _mm256_storeu_ps(d, _mm256_or_ps(_mm256_maskload_ps(xc + run[t][0].off, m[t][0]),
                                                     _mm256_maskload_ps(xc + run[t][1].off, m[t][1])));
                    if (++t == T) { t = 0; c++; }
                }
            for (; k < kc; k++, d += mr) {
                const float *xc = x + c * HW;
                // runs cover disjoint lanes and masked loads read +0.0 elsewhere: OR keeps each bit
                __m256 v = _mm256_setzero_ps();
                for (int i = 0; i < nr[t]; i++) v = _mm256_or_ps(v, _mm256_maskload_ps(xc + run[t][i].off, m[t][i]));
                if (k + 1 < kc && mr <= 8) _mm256_storeu_ps(d, v);
                else _mm256_maskstore_ps(d, store, v);
                if (++t == T) { t = 0; c++; }
            }
        }
    }
}

// col^T of nb images (rows = nb * P) packed as strata_gemm_pack_a(1, rows, K, col, rows, ...)
// would pack it, into per-thread scratch slot 0. Only where im2col_packs says so.
static const float *im2col_pack_a(const sk_conv_shape *s, long cg, const float *x, long istride, long rows) {
    int mr;
    long kcb, K = cg * s->kh * s->kw;
    strata_gemm_a_layout(K, &mr, &kcb);
    float *dst = sk_scratch(0, strata_gemm_packed_size_a(rows, K));
    if (strata_cpu_isa() >= 2 && mr <= 16) im2col_pack_a_avx512(s, cg, x, istride, rows, mr, kcb, dst);
    else im2col_pack_a_avx2(s, cg, x, istride, rows, mr, kcb, dst);
    return dst;
}

// gx[Cg, H, W] += col2im(gcol[Cg*KH*KW, OH*OW])
SK_BODY void col2im_body(const sk_conv_shape *s, long cg, const float *gcol, float *gx, long ld) {
    if (s->sw == 1 && s->kw <= MAXTAP && s->w <= 16 * MAXCHUNK && strata_cpu_isa() >= 2) { col2im_s1_avx512(s, cg, gcol, gx, ld); return; }
    if (s->sw == 1 && s->kw <= MAXTAP && s->w <= 8 * MAXSTEP8 && strata_cpu_isa() >= 1) { col2im_s1_avx2(s, cg, gcol, gx, ld); return; }
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow;
    for (long c = 0; c < cg; c++)
        for (long kh = 0; kh < s->kh; kh++)
            for (long kw = 0; kw < s->kw; kw++) {
                const float *row = gcol + ((c * s->kh + kh) * s->kw + kw) * ld;
                float *gc = gx + c * H * W;
                long woff = kw * s->dw - s->pw;
                long lo = 0, hi = OW;
                while (lo < OW && lo * s->sw + woff < 0) lo++;
                while (hi > lo && (hi - 1) * s->sw + woff >= W) hi--;
                for (long oh = 0; oh < OH; oh++) {
                    long ih = oh * s->sh - s->ph + kh * s->dh;
                    if (ih < 0 || ih >= H) continue;
                    const float *r = row + oh * OW;
                    float *g = gc + ih * W + woff;
                    if (s->sw == 1) for (long ow = lo; ow < hi; ow++) g[ow] += r[ow];
                    else for (long ow = lo; ow < hi; ow++) g[ow * s->sw] += r[ow];
                }
            }
}
SK_MULTI_ISA_VOID(static, col2im, (const sk_conv_shape *s, long cg, const float *gcol, float *gx, long ld), (s, cg, gcol, gx, ld))

static int is_pointwise(const sk_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0;
}

SK_BODY void add_scalar_body(long n, float v, float *x) {
    for (long i = 0; i < n; i++) x[i] += v;
}
SK_MULTI_ISA_VOID(static, add_scalar, (long n, float v, float *x), (n, v, x))


static void maxpool_2x2_codes(long H, long W, long OH, long OW, const float *x, float *y, uint8_t *code);
static void maxpool_2x2_backward_codes(long H, long W, long OH, long OW, const uint8_t *code, const float *gy, float *gx);

// ---- layout helper ------------------------------------------------------------------------------

// out[c*P + p] = in[p*ldin + c] + (bias ? bias[c] : 0) for p < P, c < C: the [P, C] GEMM result
// back to channel-major order.
__attribute__((target("avx512f"))) static void transpose_bias_avx512(long P, long C, const float *in, long ldin,
                                                                     const float *bias, float *out) {
    for (long p0 = 0; p0 < P; p0 += 16) {
        long pw = P - p0 < 16 ? P - p0 : 16;
        __mmask16 pm = (__mmask16)((1u << pw) - 1);
        for (long c0 = 0; c0 < C; c0 += 16) {
            long cw = C - c0 < 16 ? C - c0 : 16;
            __mmask16 cm = (__mmask16)((1u << cw) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = i < pw ? _mm512_maskz_loadu_ps(cm, in + (p0 + i) * ldin + c0) : _mm512_setzero_ps();
            transpose16(r);
            for (long c = 0; c < cw; c++) {
                __m512 v = bias ? _mm512_add_ps(r[c], _mm512_set1_ps(bias[c0 + c])) : r[c];
                _mm512_mask_storeu_ps(out + (c0 + c) * P + p0, pm, v);
            }
        }
    }
}

// AVX2 transpose_bias: whole 8x8 blocks in registers, the edges (P or C not a multiple of 8) in
// scalar code with the same arithmetic.
__attribute__((target("avx2,fma"))) static void transpose_bias_avx2(long P, long C, const float *in, long ldin,
                                                                   const float *bias, float *out) {
    long P8 = P & ~7L, C8 = C & ~7L;
    for (long p0 = 0; p0 < P8; p0 += 8) {
        for (long c0 = 0; c0 < C8; c0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(in + (p0 + i) * ldin + c0);
            transpose8(r);
            for (int c = 0; c < 8; c++) {
                __m256 v = bias ? _mm256_add_ps(r[c], _mm256_set1_ps(bias[c0 + c])) : r[c];
                _mm256_storeu_ps(out + (c0 + c) * P + p0, v);
            }
        }
        for (long c = C8; c < C; c++)
            for (long p = p0; p < p0 + 8; p++) out[c * P + p] = bias ? in[p * ldin + c] + bias[c] : in[p * ldin + c];
    }
    for (long c = 0; c < C; c++)
        for (long p = P8; p < P; p++) out[c * P + p] = bias ? in[p * ldin + c] + bias[c] : in[p * ldin + c];
}

static void transpose_bias(long P, long C, const float *in, long ldin, const float *bias, float *out) {
    if (strata_cpu_isa() >= 2) { transpose_bias_avx512(P, C, in, ldin, bias, out); return; }
    if (strata_cpu_isa() >= 1) { transpose_bias_avx2(P, C, in, ldin, bias, out); return; }
    for (long c = 0; c < C; c++) {
        float b = bias ? bias[c] : 0.0f;
        for (long p = 0; p < P; p++) out[c * P + p] = in[p * ldin + c] + b;
    }
}

// xt[h + ph][w + pw][ci] = x[ci][h][w], zero elsewhere in its `rows` rows of rs floats.
static void padded_channels_last(const sk_conv_shape *s, const float *x, long rs, long rows, float *xt) {
    long H = s->h, W = s->w, C = s->c;
    memset(xt, 0, (size_t)rows * rs * sizeof(float));
    // Row h is a transpose of its W x C block: transpose_bias's out[c' * P + p] = in[p * ld + c']
    // with p = c and c' = w.
    for (long h = 0; h < H; h++) transpose_bias(C, W, x + h * W, H * W, 0, xt + (h + s->ph) * rs + s->pw * C);
}

// ---- forward -------------------------------------------------------------------------------------
// Per image and group (K = Cg*KH*KW, P = OH*OW):
//   col[K, P] = im2col(x);  Y^T[P, Cog] = col^T @ W^T (W packed once per call);  y = (Y^T)^T + bias

typedef struct {
    const sk_conv_shape *s;
    const float *x, *w, *bias, *gy;
    float *y, *gx, *gw, *gb;
    long per;                 // images per task
    float *partials;          // backward: per task, dW^T blocks then gb
    const float *wpack;       // weights packed for the forward (B) or backward-data (A) product
    size_t wpack_group;       // floats per group in wpack
    int threaded_gemm;        // 1: one image at a time, GEMMs use the pool
    int weights_as_a;         // forward orientation: W as the A operand (output in NCHW directly)
    int pooled;               // fused 2x2 max pooling: y and gy are the pooled tensors
    int relu;                 // ... followed by ReLU (dead outputs get code 4)
    uint8_t *codes;           // fused pooling: winner position per pooled output
    int wino;                 // Winograd (winograd.c) tile size m for the forward or weight gradient, 0: not
    int wino_gx;              // ... for the input gradient; wpack then holds its transformed filters
    int winners;              // fused pooling: the backward from the winners (wpack: channels-last weights)
    int direct;               // few input channels: conv_direct.c for the forward and weight gradient
    int wino_small;           // forward: one image at a time, channels last (sk_winograd_forward_small)
    int decided;              // forward: wino, wino_small and direct were set by the caller (a split block)
    int serial;               // forward: the calling thread only (one block of conv_forward_split_task)
    sk_conv_prepared *prep;   // forward: weight forms kept across calls, or NULL
} conv_job;

// Images per GEMM: several images' columns side by side make taller products (fewer edge tiles,
// fewer calls) while the column buffer still fits in L2.
static long chunk_images(const sk_conv_shape *s) {
    long K = (s->c / s->groups) * s->kh * s->kw, P = s->oh * s->ow;
    if (P >= 8 * (s->cout / s->groups)) return 1;   // products are already tall enough per image
    long b = (256 * 1024) / (K * P > 0 ? K * P : 1);   // floats in a 1 MB buffer
    if (b < 1) b = 1;
    if (b > 8) b = 8;
    return b;
}

// Forward for images [n0, n0 + nb).
// Forward for images [n0, n0 + nb); their outputs go to `out` (image n0 first, then the next).
static void conv_forward_chunk(const conv_job *j, long n0, long nb, float *out) {
    const sk_conv_shape *s = j->s;
    long G = s->groups, cg = s->c / G, cog = s->cout / G;
    long K = cg * s->kh * s->kw, P = s->oh * s->ow, HW = s->h * s->w;
    int point = is_pointwise(s);
    if (j->wino) {
        sk_winograd_forward(s, j->wino, j->x + n0 * s->c * HW, nb, j->wpack, j->wpack_group, j->bias, out, j->threaded_gemm);
        return;
    }
    if (j->wino_small) {
        // Zero-padded channels last (4*th + 2 rows of 4*tw + 2 pixels), the transforms and
        // products, then [P, Cout] back to NCHW with the bias, as the im2col path does.
        long th = (s->oh + 3) / 4, wp = 4 * ((s->ow + 3) / 4) + 2;
        float *xt = sk_scratch(0, (size_t)(4 * th + 2) * wp * s->c), *yt = sk_scratch(4, (size_t)P * s->cout);
        for (long n = n0; n < n0 + nb; n++) {
            padded_channels_last(s, j->x + n * s->c * HW, wp * s->c, 4 * th + 2, xt);
            sk_winograd_forward_small(s, xt, wp, j->wpack, j->wpack_group, yt);
            transpose_bias(P, s->cout, yt, s->cout, j->bias, out + (n - n0) * s->cout * P);
        }
        return;
    }
    if (j->direct) {
        sk_direct_conv_forward(s, j->x + n0 * s->c * HW, nb, j->w, j->bias, out);
        return;
    }
    for (long g = 0; g < G; g++) {
        const float *bias = j->bias ? j->bias + g * cog : 0;
        if (j->weights_as_a || point) {
            // y[Cog, P] = W[Cog, K] @ col[K, P] per image, straight into NCHW.
            for (long n = n0; n < n0 + nb; n++) {
                const float *xg = j->x + n * s->c * HW + g * cg * HW;
                const float *col = xg;
                if (!point) {
                    float *buf = sk_scratch(0, (size_t)K * P);
                    im2col(s, cg, xg, buf, P);
                    col = buf;
                }
                float *yg = out + (n - n0) * s->cout * P + g * cog * P;
                if (j->weights_as_a) {
                    sk_gemm_operand a = {0, 0, 0, j->wpack + g * j->wpack_group}, b = {col, P, 0, 0};
                    strata_sgemm_ex(cog, P, K, 1.0f, &a, &b, 0.0f, yg, P, j->threaded_gemm);
                    if (bias) for (long co = 0; co < cog; co++) add_scalar(P, bias[co], yg + co * P);
                } else {
                    float *yt = sk_scratch(4, (size_t)P * cog);
                    sk_gemm_operand a = {col, P, 1, 0}, b = {0, 0, 0, j->wpack + g * j->wpack_group};
                    strata_sgemm_ex(P, cog, K, 1.0f, &a, &b, 0.0f, yt, cog, j->threaded_gemm);
                    transpose_bias(P, cog, yt, cog, bias, yg);
                }
            }
            continue;
        }
        // Y^T[nb*P, Cog] = col^T @ W^T for the whole chunk, then each image transposed back.
        long ld = nb * P;
        const float *xg = j->x + n0 * s->c * HW + g * cg * HW;
        sk_gemm_operand a = {0, ld, 1, 0}, bw = {0, 0, 0, j->wpack + g * j->wpack_group};
        if (im2col_packs(s, ld, K)) {
            a.packed = im2col_pack_a(s, cg, xg, s->c * HW, ld);
        } else {
            float *col = sk_scratch(0, (size_t)K * ld);
            for (long b = 0; b < nb; b++) im2col(s, cg, xg + b * s->c * HW, col + b * P, ld);
            a.data = col;
        }
        float *yt = sk_scratch(4, (size_t)ld * cog);
        strata_sgemm_ex(ld, cog, K, 1.0f, &a, &bw, 0.0f, yt, cog, j->threaded_gemm);
        for (long b = 0; b < nb; b++)
            transpose_bias(P, cog, yt + b * P * cog, cog, bias, out + b * s->cout * P + g * cog * P);
    }
}

// ReLU on pooled outputs: those it zeroes (not NaN) keep no winner (code 4), so the backward
// expansion writes zero gradient for their whole window. code NULL: the values alone (inference).
// (restrict and selects, no branches in the loops: so they vectorise.)
SK_BODY void relu_pooled_body(long n, float *restrict y, uint8_t *restrict code) {
    if (!code) {
        for (long i = 0; i < n; i++) y[i] = y[i] <= 0.0f ? 0.0f : y[i];   // NaN compares false: stays NaN
        return;
    }
    for (long i = 0; i < n; i++) {
        float v = y[i];
        uint8_t c = code[i];
        y[i] = v <= 0.0f ? 0.0f : v;   // NaN compares false: stays NaN
        code[i] = v > 0.0f ? c : (uint8_t)4;
    }
}
SK_MULTI_ISA_VOID(static, relu_pooled, (long n, float *restrict y, uint8_t *restrict code), (n, y, code))

// Images per forward chunk: chunk_images, or for Winograd enough images for WINO_CHUNK_TILES
// output tiles, so its (m + 2)^2 GEMMs are not a few tiles wide (a 16x16 output has 16 4x4 tiles
// an image; one image at a time measured 1.5x slower with 2 threads on AVX-512, whose kernel is
// 32 columns wide).
#define WINO_CHUNK_TILES 64
static long forward_chunk_images(const conv_job *j) {
    const sk_conv_shape *s = j->s;
    long b = chunk_images(s);
    if (j->wino) {
        long tiles = ((s->oh + j->wino - 1) / j->wino) * ((s->ow + j->wino - 1) / j->wino);
        long w = (WINO_CHUNK_TILES + tiles - 1) / tiles;
        if (w > b) b = w;
    }
    return b;
}

static void conv_forward_task(void *ctx, long t) {
    const conv_job *j = ctx;
    long n0 = t * j->per, n1 = n0 + j->per < j->s->n ? n0 + j->per : j->s->n;
    if (n0 >= n1) return;
    if (!j->pooled) { conv_forward_chunk(j, n0, n1 - n0, j->y + n0 * j->s->cout * j->s->oh * j->s->ow); return; }
    // Fused pooling: conv outputs of one chunk at a time stay in scratch, only pooled values leave.
    const sk_conv_shape *s = j->s;
    long P = s->oh * s->ow, PH = s->oh / 2, PW = s->ow / 2, b = forward_chunk_images(j);
    for (long n = n0; n < n1; n += b) {
        long nb = n1 - n < b ? n1 - n : b;
        float *tmp = sk_scratch(5, (size_t)nb * s->cout * P);
        conv_forward_chunk(j, n, nb, tmp);
        // No codes (inference: nothing to back-propagate) leaves the winners unrecorded.
        uint8_t *codes = j->codes ? j->codes + n * s->cout * PH * PW : 0;
        for (long pl = 0; pl < nb * s->cout; pl++)
            maxpool_2x2_codes(s->oh, s->ow, PH, PW, tmp + pl * P, j->y + (n * s->cout + pl) * PH * PW, codes ? codes + pl * PH * PW : 0);
        if (j->relu) relu_pooled(nb * s->cout * PH * PW, j->y + n * s->cout * PH * PW, codes);
    }
}

// A weight's packed forms, each group's [Cog, K] on its own: the forward's W^T as B
// ([P, K] @ W^T) or W as A (W @ [K, P], NCHW out), the input gradient's W^T as A (W^T @ gy), or
// the forward's Winograd-transformed filters. form_size gives floats per group (per matrix for
// Winograd) and their count; form_pack writes them all to dst.
enum { FORM_B, FORM_A, FORM_AT, FORM_WINO, FORM_WINO_B };
static size_t form_size(const sk_conv_shape *s, int form, int m, long *count) {
    long G = s->groups, cog = s->cout / G, K = (s->c / G) * s->kh * s->kw;
    *count = form == FORM_WINO ? (long)(m + 2) * (m + 2) : form == FORM_WINO_B ? 36 : G;
    if (form == FORM_WINO) return sk_winograd_packed_floats(s, 0);
    if (form == FORM_WINO_B) return sk_winograd_packed_floats_b(s);
    size_t per = form == FORM_A ? strata_gemm_packed_size_a(cog, K)
               : form == FORM_AT ? strata_gemm_packed_size_a(K, cog) : strata_gemm_packed_size_b(cog, K);
    return (per + 15) & ~(size_t)15;
}

static void form_pack(const sk_conv_shape *s, const float *w, int form, int m, float *dst) {
    if (form == FORM_WINO) { sk_winograd_pack_weights_into(s, w, 0, m, dst); return; }
    if (form == FORM_WINO_B) { sk_winograd_pack_weights_b_into(s, w, dst); return; }
    long G = s->groups, cog = s->cout / G, K = (s->c / G) * s->kh * s->kw, count;
    size_t per = form_size(s, form, m, &count);
    for (long g = 0; g < G; g++) {
        const float *wg = w + g * cog * K;
        if (form == FORM_A) strata_gemm_pack_a(0, cog, K, wg, K, dst + g * per);         // op(A) = W [Cog, K]
        else if (form == FORM_AT) strata_gemm_pack_a(1, K, cog, wg, K, dst + g * per);   // op(A) = W^T [K, Cog]
        else strata_gemm_pack_b(1, cog, K, wg, K, dst + g * per);                        // op(B) = W^T [K, Cog]
    }
}

// The form packed for this call alone, into the calling thread's scratch (Winograd's own for its
// filters); returns form_size's floats per group.
static size_t scratch_form(const sk_conv_shape *s, const float *w, int form, int m, const float **out) {
    if (form == FORM_WINO) return sk_winograd_pack_weights(s, w, 0, m, out);
    long count;
    size_t per = form_size(s, form, m, &count);
    float *buf = sk_scratch(3, per * (size_t)count);
    form_pack(s, w, form, m, buf);
    *out = buf;
    return per;
}

// ---- weight forms kept across calls (sk_conv_prepared) -------------------------------------------
// A form depends on the weights (w: a split block's start differs), their shape, the form, the
// Winograd tile and the ISA (the GEMM's panel widths); entries are never removed, so a returned
// form stays valid until sk_conv_prepared_free.
#define PREP_FORMS 8
typedef struct {
    const float *w;
    long cout, c, kh, kw, groups;
    int form, m, isa;
    float *buf;
    size_t per;
} prep_form;
struct sk_conv_prepared {
    pthread_mutex_t lock;
    int n;
    prep_form f[PREP_FORMS];
};

sk_conv_prepared *sk_conv_prepared_new(void) {
    sk_conv_prepared *p = calloc(1, sizeof *p);
    if (p) pthread_mutex_init(&p->lock, 0);
    return p;
}

void sk_conv_prepared_free(sk_conv_prepared *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->f[i].buf);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int sk_conv_prepared_forms(sk_conv_prepared *p) {
    pthread_mutex_lock(&p->lock);
    int n = p->n;
    pthread_mutex_unlock(&p->lock);
    return n;
}

static int same_form(const prep_form *f, const prep_form *k) {
    return f->w == k->w && f->cout == k->cout && f->c == k->c && f->kh == k->kh && f->kw == k->kw &&
           f->groups == k->groups && f->form == k->form && f->m == k->m && f->isa == k->isa;
}

// The entry equal to key, or NULL; with p->lock held.
static const prep_form *find_form(const sk_conv_prepared *p, const prep_form *key) {
    for (int i = 0; i < p->n; i++)
        if (same_form(&p->f[i], key)) return &p->f[i];
    return 0;
}

// The form from p, made now if missing (packed outside the lock: split blocks pack in parallel);
// NULL when p is full or memory runs out.
static const float *prepared_form(sk_conv_prepared *p, const sk_conv_shape *s, const float *w, int form, int m,
                                  size_t *per) {
    prep_form key = {w, s->cout, s->c, s->kh, s->kw, s->groups, form, m, strata_cpu_isa(), 0, 0};
    pthread_mutex_lock(&p->lock);
    const prep_form *found = find_form(p, &key);
    pthread_mutex_unlock(&p->lock);
    if (found) { *per = found->per; return found->buf; }
    long count;
    key.per = form_size(s, form, m, &count);
    void *mem = 0;
    if (posix_memalign(&mem, 64, key.per * (size_t)count * sizeof(float)) != 0) return 0;
    key.buf = mem;
    form_pack(s, w, form, m, key.buf);
    pthread_mutex_lock(&p->lock);
    found = find_form(p, &key);
    if (!found && p->n < PREP_FORMS) { p->f[p->n] = key; found = &p->f[p->n++]; key.buf = 0; }
    pthread_mutex_unlock(&p->lock);
    free(key.buf);   // another thread made the same form first, or p is full
    if (!found) return 0;
    *per = found->per;
    return found->buf;
}

// The forward's weights in `form`: kept in j->prep where there is one, else packed into scratch
// for this call. Returns floats per group (per matrix for Winograd).
static size_t forward_weights(conv_job *j, int form) {
    size_t per;
    const float *kept = j->prep ? prepared_form(j->prep, j->s, j->w, form, j->wino, &per) : 0;
    if (kept) { j->wpack = kept; return per; }
    return scratch_form(j->s, j->w, form, j->wino, &j->wpack);
}

// One image over several threads: each thread takes a block of output channels and runs the
// single-thread path on it (its own im2col, packing and GEMM), so threads share only the input
// and the weights and never hand a column buffer or product to each other. Handing them over
// (threaded GEMMs on one shared column buffer) made batch-1 latency swing 0.10-0.23 ms on a host
// whose two vCPUs sometimes pass cache lines slowly; the copies each thread makes instead are
// small next to its share of the product.
#define SPLIT_MIN_MACS (1L << 20)
typedef struct {
    const conv_job *j;
    long per;   // output channels per task, a multiple of 16
} split_job;

static void conv_forward_run(conv_job *j);

static void conv_forward_split_task(void *ctx, long t) {
    const split_job *sj = ctx;
    const conv_job *j = sj->j;
    const sk_conv_shape *s = j->s;
    long c0 = t * sj->per, c1 = c0 + sj->per < s->cout ? c0 + sj->per : s->cout;
    if (c0 >= c1) return;
    long K = s->c * s->kh * s->kw, P = s->oh * s->ow, out = j->pooled ? (s->oh / 2) * (s->ow / 2) : P;
    sk_conv_shape sub = *s;
    sub.cout = c1 - c0;
    conv_job part = {0};
    part.s = &sub; part.x = j->x; part.w = j->w + c0 * K; part.bias = j->bias ? j->bias + c0 : 0;
    part.y = j->y + c0 * out; part.pooled = j->pooled; part.relu = j->relu;
    part.codes = j->codes ? j->codes + c0 * out : 0;
    part.serial = 1;
    part.prep = j->prep;
    // The whole convolution's choice (split_channels rules out wino and direct): a block's own
    // could differ, having fewer channels.
    part.decided = 1;
    part.wino_small = j->wino_small;
    conv_forward_run(&part);
}

// Whether one image runs as output-channel blocks on the pool (see conv_forward_split_task).
static int split_channels(const conv_job *j, int threads) {
    const sk_conv_shape *s = j->s;
    long macs = s->cout * s->c * s->kh * s->kw * s->oh * s->ow;
    return !j->serial && threads > 1 && s->n == 1 && s->groups == 1 && !j->wino && !j->direct && s->cout >= 32 &&
           macs >= SPLIT_MIN_MACS && strata_split_small_work((double)macs);
}

// Packs the weights for the chosen orientation, then runs chunks of images in parallel (or, for
// small batches, one chunk at a time with threaded GEMMs).
static void conv_forward_run(conv_job *j) {
    const sk_conv_shape *s = j->s;
    long P = s->oh * s->ow, cog = s->cout / s->groups;
    // Many output pixels per channel: W as A writes NCHW directly and skips the transpose.
    j->weights_as_a = P >= 8 * cog;
    if (!j->decided) {
        j->wino = sk_winograd_applies(s);
        // Kept filters (inference) make Winograd pay on single small images too.
        j->wino_small = !j->wino && j->prep ? sk_winograd_applies_small(s) : 0;
        j->direct = !j->wino && !j->wino_small && sk_direct_conv_applies(s, 0);
    }
    int threads = j->serial ? 1 : strata_get_num_threads();
    if (split_channels(j, threads)) {
        long per = ((s->cout + threads - 1) / threads + 15) & ~15L;
        split_job sj = {j, per};
        strata_parallel_for((s->cout + per - 1) / per, conv_forward_split_task, &sj);
        return;
    }
    if (j->wino) j->wpack_group = forward_weights(j, FORM_WINO);
    else if (j->wino_small) j->wpack_group = forward_weights(j, FORM_WINO_B);
    else if (!j->direct) j->wpack_group = forward_weights(j, j->weights_as_a ? FORM_A : FORM_B);
    long b = forward_chunk_images(j);
    if (s->n >= 2 * threads && threads > 1) {
        // Chunks of up to b images, at least two per thread.
        j->per = b < (s->n + 2 * threads - 1) / (2 * threads) ? b : (s->n + 2 * threads - 1) / (2 * threads);
        strata_parallel_for((s->n + j->per - 1) / j->per, conv_forward_task, j);
    } else {
        j->threaded_gemm = threads > 1;
        j->per = s->n;
        conv_forward_task(j, 0);
    }
}

void sk_conv2d_forward(const sk_conv_shape *s, const float *x, const float *w, const float *bias, float *y) {
    sk_conv2d_forward_prepared(s, x, w, bias, y, 0);
}

void sk_conv2d_forward_prepared(const sk_conv_shape *s, const float *x, const float *w, const float *bias, float *y,
                                sk_conv_prepared *p) {
    conv_job j = {0};
    j.s = s; j.x = x; j.w = w; j.bias = bias; j.y = y; j.prep = p;
    conv_forward_run(&j);
}

// ---- fused pooling's input gradient, from the winners only ---------------------------------------
// A pooled output's gradient g reaches one convolution output, its window's winner (oh, ow), and
// from there the winner's KH x KW input window: gx[ci][oh - ph + kh*dh][ow - pw + kw*dw] +=
// g * w[co][ci][kh][kw] (stride 1). At most a quarter of the outputs win (none where ReLU zeroed
// them), so this is at most a quarter of the dense product's multiply-adds, with no unpooled
// gradient, column buffer or col2im. It runs as a gather: the winners are first listed per
// convolution output (channel and gradient, in channel order), then each input pixel sums the
// lists of the outputs its taps reach, a block of channels at a time in registers (a scatter into
// memory measured over 2x slower: every update a load and a store). wr holds the weights as
// [Cout][KH][KW][Cin]. Groups = 1.

typedef struct { int32_t off; float g; } winner_t;   // off: the channel's first weight in wr

// list[start[o] .. start[o + 1]): the winners at convolution output o = oh * OW + ow, in channel
// order: a counting sort, so the lists take one entry per winner. Branch-free: a window without a
// winner (code 4) writes its entry to a spare slot past the end. cursor: OH * OW ints of scratch.
static void list_winners(const sk_conv_shape *s, const float *gy, const uint8_t *codes, int32_t *start, int32_t *cursor,
                         winner_t *list) {
    long OW = s->ow, PH = s->oh / 2, PW = s->ow / 2, taps = s->kh * s->kw, outs = s->oh * OW;
    memset(cursor, 0, (size_t)outs * sizeof(int32_t));
    for (long co = 0; co < s->cout; co++)
        for (long ph = 0; ph < PH; ph++)
            for (long pw = 0; pw < PW; pw++) {
                int c = codes[(co * PH + ph) * PW + pw];
                cursor[(2 * ph + ((c >> 1) & 1)) * OW + 2 * pw + (c & 1)] += c < 4;
            }
    start[0] = 0;
    for (long o = 0; o < outs; o++) {
        start[o + 1] = start[o] + cursor[o];
        cursor[o] = start[o];
    }
    int32_t spare = start[outs];
    for (long co = 0; co < s->cout; co++) {
        int32_t off = (int32_t)(co * taps * s->c);
        for (long ph = 0; ph < PH; ph++)
            for (long pw = 0; pw < PW; pw++) {
                long p = (co * PH + ph) * PW + pw;
                int c = codes[p];
                long o = (2 * ph + ((c >> 1) & 1)) * OW + 2 * pw + (c & 1);
                list[c < 4 ? cursor[o] : spare] = (winner_t){off, gy[p]};
                cursor[o] += c < 4;
            }
    }
}

// acc[0 .. RB) += e.g * src[e.off .. e.off + RB) for one winner e.
#define ADD_WINNER(acc, e, src, RB)                                   \
    do {                                                              \
        float g_ = (e).g;                                             \
        const float *x_ = (src) + (e).off;                            \
        for (int i_ = 0; i_ < (RB); i_++) (acc)[i_] += g_ * x_[i_];   \
    } while (0)

// acc0 += the winners list[e .. e1) of one output, in NS (1, 2 or 4, a constant) interleaved sets
// acc0..acc3 that hide the multiply-add's latency. (A loop over the sets, even one asked to
// unroll, left them in memory: the weight gradient 1.7x slower.)
#define ADD_WINNERS(acc0, acc1, acc2, acc3, list, e, e1, src, RB, NS)                                                      \
    do {                                                                                                                   \
        if ((NS) == 4)                                                                                                     \
            for (; e + 4 <= e1; e += 4) {                                                                                  \
                ADD_WINNER(acc0, list[e], src, RB); ADD_WINNER(acc1, list[e + 1], src, RB);                                \
                ADD_WINNER(acc2, list[e + 2], src, RB); ADD_WINNER(acc3, list[e + 3], src, RB);                            \
            }                                                                                                              \
        if ((NS) == 2)                                                                                                     \
            for (; e + 2 <= e1; e += 2) { ADD_WINNER(acc0, list[e], src, RB); ADD_WINNER(acc1, list[e + 1], src, RB); }    \
        for (; e < e1; e++) ADD_WINNER(acc0, list[e], src, RB);                                                            \
    } while (0)

// gx[ci0 .. ci0 + CB) of every input pixel: the sum over its taps of their outputs' winners.
// CB and NS are constants, so the NS sets of sums stay in registers; with NS independent sets,
// successive winners' multiply-adds do not wait on each other (1, 2 and 4 sets measured the same
// on Zen 5, whose bound here is elsewhere).
SK_BODY void gather_winners_block(const sk_conv_shape *s, const int32_t *restrict start, const winner_t *restrict list,
                                  const float *restrict wr, long ci0, const int CB, const int NS, float *restrict gx) {
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow, cin = s->c;
    for (long h = 0; h < H; h++)
        for (long w = 0; w < W; w++) {
            float a0[CB], a1[CB], a2[CB], a3[CB];
            for (int i = 0; i < CB; i++) { a0[i] = 0.0f; a1[i] = 0.0f; a2[i] = 0.0f; a3[i] = 0.0f; }
            for (long kh = 0; kh < s->kh; kh++) {
                long oh = h + s->ph - kh * s->dh;
                if (oh < 0 || oh >= OH) continue;
                for (long kw = 0; kw < s->kw; kw++) {
                    long ow = w + s->pw - kw * s->dw;
                    if (ow < 0 || ow >= OW) continue;
                    const float *wt = wr + (kh * s->kw + kw) * cin + ci0;
                    long e = start[oh * OW + ow], e1 = start[oh * OW + ow + 1];
                    ADD_WINNERS(a0, a1, a2, a3, list, e, e1, wt, CB, NS);
                }
            }
            for (int i = 0; i < CB; i++) gx[(ci0 + i) * H * W + h * W + w] = (a0[i] + a1[i]) + (a2[i] + a3[i]);
        }
}

SK_BODY void winners_input_grad_body(const sk_conv_shape *s, const int32_t *restrict start, const winner_t *restrict list,
                                     const float *restrict wr, float *restrict gx) {
    // Channel blocks whose sets of sums take 8 registers: on AVX-512, 64 channels in 2 sets or 32
    // in 4; AVX2 has 16 registers, so 32 channels in 2 sets. Smaller blocks for the rest.
    long ci0 = 0;
    if (strata_cpu_isa() >= 2) {
        for (; ci0 + 64 <= s->c; ci0 += 64) gather_winners_block(s, start, list, wr, ci0, 64, 2, gx);
        for (; ci0 + 32 <= s->c; ci0 += 32) gather_winners_block(s, start, list, wr, ci0, 32, 4, gx);
    } else {
        for (; ci0 + 32 <= s->c; ci0 += 32) gather_winners_block(s, start, list, wr, ci0, 32, 2, gx);
    }
    for (; ci0 + 16 <= s->c; ci0 += 16) gather_winners_block(s, start, list, wr, ci0, 16, 4, gx);
    for (; ci0 + 8 <= s->c; ci0 += 8) gather_winners_block(s, start, list, wr, ci0, 8, 4, gx);
    for (; ci0 < s->c; ci0++) gather_winners_block(s, start, list, wr, ci0, 1, 4, gx);
}
SK_MULTI_ISA_VOID(static, winners_input_grad,
                  (const sk_conv_shape *s, const int32_t *restrict start, const winner_t *restrict list, const float *restrict wr,
                   float *restrict gx),
                  (s, start, list, wr, gx))

// The input gradient of image n of a fused conv + pooling, from its pooled gradient and codes.
static void winners_input_grad_image(const conv_job *j, long n) {
    const sk_conv_shape *s = j->s;
    long PP = (s->oh / 2) * (s->ow / 2), outs = s->oh * s->ow;
    int32_t *start = (int32_t *)sk_scratch(0, (size_t)2 * outs + 1);
    winner_t *list = (winner_t *)sk_scratch(1, (size_t)2 * (s->cout * PP + 1));
    list_winners(s, j->gy + n * s->cout * PP, j->codes + n * s->cout * PP, start, start + outs + 1, list);
    winners_input_grad(s, start, list, j->wpack, j->gx + n * s->c * s->h * s->w);
}

// wr[co][kh][kw][ci] = w[co][ci][kh][kw], for winners_input_grad.
static const float *weights_channels_last(const sk_conv_shape *s, const float *w) {
    long taps = s->kh * s->kw;
    float *wr = sk_scratch(3, (size_t)s->cout * taps * s->c);
    for (long co = 0; co < s->cout; co++)
        for (long ci = 0; ci < s->c; ci++)
            for (long t = 0; t < taps; t++) wr[(co * taps + t) * s->c + ci] = w[(co * s->c + ci) * taps + t];
    return wr;
}

// The weight gradient from the winners: dW[co][ci][kh][kw] = the sum over co's winners (oh, ow)
// of g * x[ci][oh - ph + kh*dh][ow - pw + kw] (stride 1, column dilation 1). With x channels-last
// and padded, xt[H + 2ph][W + 2pw][Cin], a winner's taps of row kh are one run of KW * Cin floats,
// xt[oh + kh*dh][ow .. ow + KW), so dW (kept as dwr[Cout][KH][KW][Cin]) gains g times that run:
// again a quarter of the dense product's multiply-adds at most, and no transforms or packing.

// The winners of each output channel of one image: list[co * PP ..][0 .. count[co]) holds
// (offset of the winner's patch in xt, g) in window order; gb (when not NULL) gets their sum
// (= when first, else +=). Branch-free, like list_winners.
static void list_channel_winners(const sk_conv_shape *s, const float *gy, const uint8_t *codes, long rs, int32_t *count,
                                 winner_t *list, float *gb, int first) {
    long PH = s->oh / 2, PW = s->ow / 2, PP = PH * PW;
    for (long co = 0; co < s->cout; co++) {
        winner_t *l = list + co * PP;
        int32_t n = 0;
        float sum = 0.0f;
        for (long ph = 0; ph < PH; ph++)
            for (long pw = 0; pw < PW; pw++) {
                long p = (co * PH + ph) * PW + pw;
                int c = codes[p];
                float g = gy[p];
                l[n] = (winner_t){(int32_t)((2 * ph + ((c >> 1) & 1)) * rs + (2 * pw + (c & 1)) * s->c), g};
                n += c < 4;
                sum += c < 4 ? g : 0.0f;
            }
        count[co] = n;
        if (gb) gb[co] = first ? sum : gb[co] + sum;
    }
}

// dst[0 .. RB) += the sum over the n winners e of e.g * src[e.off .. e.off + RB), with RB and NS
// constants so that the sums stay in registers.
SK_BODY void winner_runs_block(long n, const winner_t *restrict list, const float *restrict src, const int RB, const int NS,
                               float *restrict dst) {
    float a0[RB], a1[RB], a2[RB], a3[RB];
    for (int i = 0; i < RB; i++) { a0[i] = dst[i]; a1[i] = 0.0f; a2[i] = 0.0f; a3[i] = 0.0f; }
    long e = 0;
    ADD_WINNERS(a0, a1, a2, a3, list, e, n, src, RB, NS);
    for (int i = 0; i < RB; i++) dst[i] = (a0[i] + a1[i]) + (a2[i] + a3[i]);
}

// dwr += one image's weight gradient, from its channels' winner lists and its xt (rows rs apart).
SK_BODY void winners_weight_grad_body(const sk_conv_shape *s, const int32_t *restrict count, const winner_t *restrict list,
                                      const float *restrict xt, long rs, float *restrict dwr) {
    long R = s->kw * s->c, PP = (s->oh / 2) * (s->ow / 2);
    // Runs in blocks of up to 8 AVX-512 or AVX2 registers of sums.
    int wide = strata_cpu_isa() >= 2;
    for (long co = 0; co < s->cout; co++) {
        long n = count[co];
        const winner_t *l = list + co * PP;
        for (long kh = 0; kh < s->kh; kh++) {
            const float *src = xt + kh * s->dh * rs;
            float *dst = dwr + (co * s->kh + kh) * R;
            long r = 0;
            if (wide) {
                for (; r + 128 <= R; r += 128) winner_runs_block(n, l, src + r, 128, 1, dst + r);
                for (; r + 64 <= R; r += 64) winner_runs_block(n, l, src + r, 64, 2, dst + r);
            }
            for (; r + 32 <= R; r += 32) winner_runs_block(n, l, src + r, 32, wide ? 4 : 2, dst + r);
            for (; r + 8 <= R; r += 8) winner_runs_block(n, l, src + r, 8, 4, dst + r);
            for (; r < R; r++) winner_runs_block(n, l, src + r, 1, 4, dst + r);
        }
    }
}
SK_MULTI_ISA_VOID(static, winners_weight_grad,
                  (const sk_conv_shape *s, const int32_t *restrict count, const winner_t *restrict list, const float *restrict xt,
                   long rs, float *restrict dwr),
                  (s, count, list, xt, rs, dwr))

// The whole backward of images [n0, n1) from their winners: gx per image, and the task's weight
// gradient gwt (conv.c's [K, Cout] layout, =) and bias gradient gb (=).
static void winners_backward_task(const conv_job *j, long n0, long n1, float *gwt, float *gb) {
    const sk_conv_shape *s = j->s;
    long PP = (s->oh / 2) * (s->ow / 2), taps = s->kh * s->kw, rs = (s->w + 2 * s->pw) * s->c;
    float *dwr = 0, *xt = 0;
    if (gwt) {
        dwr = sk_scratch(6, (size_t)s->cout * taps * s->c);
        memset(dwr, 0, (size_t)s->cout * taps * s->c * sizeof(float));
        xt = sk_scratch(5, (size_t)(s->h + 2 * s->ph) * rs);
    }
    for (long n = n0; n < n1; n++) {
        if (j->gx) winners_input_grad_image(j, n);
        if (!gwt && !gb) continue;
        int32_t *count = (int32_t *)sk_scratch(4, (size_t)s->cout + 2 * (size_t)s->cout * PP);
        winner_t *list = (winner_t *)(count + s->cout);
        list_channel_winners(s, j->gy + n * s->cout * PP, j->codes + n * s->cout * PP, rs, count, list, gb, n == n0);
        if (!gwt) continue;
        padded_channels_last(s, j->x + n * s->c * s->h * s->w, rs, s->h + 2 * s->ph, xt);
        winners_weight_grad(s, count, list, xt, rs, dwr);
    }
    if (gwt)
        for (long co = 0; co < s->cout; co++)
            for (long t = 0; t < taps; t++)
                for (long ci = 0; ci < s->c; ci++) gwt[(ci * taps + t) * s->cout + co] = dwr[(co * taps + t) * s->c + ci];
}

// ---- backward ------------------------------------------------------------------------------------
//   dW^T[K, Cog] += col[K, P] @ gy^T          (per-task partials, summed in a fixed order)
//   dcol[K, P]    = W^T[K, Cog] @ gy[Cog, P];  gx = col2im(dcol)   (W packed once per call)
//   gb           += sum_P gy

// Backward for images [n0, n0 + nb), whose columns share one buffer (see chunk_images).
// `gyb` holds the output gradients of images n0.. consecutively.
static void conv_backward_chunk(const conv_job *j, long n0, long nb, const float *gyb, float *gwt, float *gb, int first) {
    const sk_conv_shape *s = j->s;
    long G = s->groups, cg = s->c / G, cog = s->cout / G;
    long K = cg * s->kh * s->kw, P = s->oh * s->ow, HW = s->h * s->w;
    long ld = nb * P;
    int tg = j->threaded_gemm, point = is_pointwise(s);
    if (j->wino_gx && j->gx) sk_winograd_backward_data(s, j->wino_gx, gyb, nb, j->wpack, j->wpack_group, j->gx + n0 * s->c * HW, tg);
    if (gwt && j->direct) sk_direct_conv_weight_grad(s, j->x + n0 * s->c * HW, gyb, nb, gwt, first);
    int gemm_gw = gwt && !j->wino && !j->direct, gemm_gx = j->gx && !j->wino_gx;
    for (long g = 0; g < G && (gemm_gw || gemm_gx); g++) {
        // gy of the chunk side by side: [Cog, nb*P].
        const float *gyc;
        if (nb == 1) {
            gyc = gyb + g * cog * P;
        } else {
            float *buf = sk_scratch(4, (size_t)cog * ld);
            for (long b = 0; b < nb; b++)
                for (long co = 0; co < cog; co++)
                    memcpy(buf + co * ld + b * P, gyb + b * s->cout * P + (g * cog + co) * P, (size_t)P * sizeof(float));
            gyc = buf;
        }
        if (gemm_gw) {
            const float *col;
            if (point && nb == 1) {
                col = j->x + n0 * s->c * HW + g * cg * HW;
            } else {
                float *buf = sk_scratch(0, (size_t)K * ld);
                for (long b = 0; b < nb; b++) {
                    const float *xg = j->x + (n0 + b) * s->c * HW + g * cg * HW;
                    if (point) for (long c = 0; c < cg; c++) memcpy(buf + c * ld + b * P, xg + c * HW, (size_t)P * sizeof(float));
                    else im2col(s, cg, xg, buf + b * P, ld);
                }
                col = buf;
            }
            // dW^T[K, Cog] += col[K, nb*P] @ gy^T[nb*P, Cog]
            sk_gemm_operand a = {col, ld, 0, 0}, b = {gyc, ld, 1, 0};
            strata_sgemm_ex(K, cog, ld, 1.0f, &a, &b, first ? 0.0f : 1.0f, gwt + g * K * cog, cog, tg);
        }
        if (gemm_gx) {
            // dcol[K, nb*P] = W^T[K, Cog] @ gy[Cog, nb*P]; gx = col2im(dcol) per image
            sk_gemm_operand a = {0, 0, 0, j->wpack + g * j->wpack_group}, b = {gyc, ld, 0, 0};
            float *gcol = sk_scratch(1, (size_t)K * ld);
            strata_sgemm_ex(K, ld, cog, 1.0f, &a, &b, 0.0f, gcol, ld, tg);
            for (long bi = 0; bi < nb; bi++) {
                float *gxg = j->gx + (n0 + bi) * s->c * HW + g * cg * HW;
                if (point) {
                    for (long c = 0; c < cg; c++) memcpy(gxg + c * HW, gcol + c * ld + bi * P, (size_t)P * sizeof(float));
                } else {
                    memset(gxg, 0, (size_t)cg * HW * sizeof(float));
                    col2im(s, cg, gcol + bi * P, gxg, ld);
                }
            }
        }
    }
    if (gb)
        for (long b = 0; b < nb; b++) {
            const float *gyn = gyb + b * s->cout * P;
            for (long co = 0; co < s->cout; co++) {
                float acc = sk_sum(P, gyn + co * P);
                gb[co] = (first && b == 0) ? acc : gb[co] + acc;
            }
        }
}

static void conv_backward_task(void *ctx, long t) {
    const conv_job *j = ctx;
    const sk_conv_shape *s = j->s;
    long wsize = s->cout * (s->c / s->groups) * s->kh * s->kw;
    float *gwt = j->gw ? j->partials + t * (wsize + s->cout) : 0;
    float *gb = j->gb ? j->partials + t * (wsize + s->cout) + wsize : 0;
    long n0 = t * j->per, n1 = n0 + j->per < s->n ? n0 + j->per : s->n;
    if (j->winners) { winners_backward_task(j, n0, n1, gwt, gb); return; }
    long P = s->oh * s->ow, PH = s->oh / 2, PW = s->ow / 2, HW = s->h * s->w;
    // Chunks of b images for the im2col products (see chunk_images); Winograd blocks its tiles
    // itself, so its weight gradient takes chunks of up to bw (a pooled one's gradient up to 4 MB)
    // and transforms its filter sums back once per chunk.
    long b = chunk_images(s), bw = b;
    if (j->wino) {
        long cap = j->pooled ? (1L << 20) / (s->cout * P) : n1 - n0;
        if (cap > bw) bw = cap;
        if (j->wino_gx || !j->gx) b = bw;
    }
    for (long n = n0; n < n1; n += bw) {
        long nb = n1 - n < bw ? n1 - n : bw;
        const float *gyb = j->gy + n * s->cout * P;
        if (j->pooled) {   // expand the pooled gradient of this chunk into scratch
            float *tmp = sk_scratch(5, (size_t)nb * s->cout * P);
            for (long pl = 0; pl < nb * s->cout; pl++)
                maxpool_2x2_backward_codes(s->oh, s->ow, PH, PW, j->codes + (n * s->cout + pl) * PH * PW,
                                           j->gy + (n * s->cout + pl) * PH * PW, tmp + pl * P);
            gyb = tmp;
        }
        if (j->wino && gwt) sk_winograd_backward_weights(s, j->wino, j->x + n * s->c * HW, gyb, nb, gwt, n == n0, j->threaded_gemm);
        for (long m = n; m < n + nb; m += b) {
            long mb = n + nb - m < b ? n + nb - m : b;
            conv_backward_chunk(j, m, mb, gyb + (m - n) * s->cout * P, gwt, gb, m == n0);
        }
    }
}

// gx, gw, gb may each be NULL (not needed). gw and gb are overwritten, not accumulated.
static void conv_backward_run(const sk_conv_shape *s, const float *x, const float *w, const float *gy,
                              float *gx, float *gw, float *gb, const uint8_t *codes);

void sk_conv2d_backward(const sk_conv_shape *s, const float *x, const float *w, const float *gy,
                        float *gx, float *gw, float *gb) {
    conv_backward_run(s, x, w, gy, gx, gw, gb, 0);
}

static void conv_backward_run(const sk_conv_shape *s, const float *x, const float *w, const float *gy,
                              float *gx, float *gw, float *gb, const uint8_t *codes) {
    conv_job j = {0};
    j.s = s; j.x = x; j.w = w; j.gy = gy; j.gx = gx; j.gw = gw; j.gb = gb;
    j.pooled = codes != 0; j.codes = (uint8_t *)codes;
    long G = s->groups, cog = s->cout / G, K = (s->c / G) * s->kh * s->kw;
    long wsize = s->cout * K;
    // A fused pooling's gradients come from the winners (a quarter of the products or less), where
    // a winner's row of taps is at least 16 floats: shorter runs (a first layer's single channel)
    // measured slower than the dense products.
    // The lists' offsets are 32-bit.
    j.winners = codes && G == 1 && s->sh == 1 && s->sw == 1 && s->dw == 1 && s->kw * s->c >= 16 &&
                (s->h + 2 * s->ph) * (s->w + 2 * s->pw) * s->c < INT32_MAX && s->cout * s->kh * s->kw * s->c < INT32_MAX;
    j.wino = j.winners ? 0 : sk_winograd_applies_weight_grad(s);   // tile sizes, not flags
    j.wino_gx = gx && !j.winners ? sk_winograd_applies_input_grad(s) : 0;
    j.direct = !j.winners && !j.wino && sk_direct_conv_applies(s, 1);
    if (j.winners) {
        if (gx) j.wpack = weights_channels_last(s, w);
    } else if (j.wino_gx) {
        j.wpack_group = sk_winograd_pack_weights(s, w, 1, j.wino_gx, &j.wpack);
    } else if (gx) {
        j.wpack_group = scratch_form(s, w, FORM_AT, 0, &j.wpack);
    }
    int threads = strata_get_num_threads();
    long tasks = 1;
    if (s->n >= threads && threads > 1) {
        tasks = threads;
        j.per = (s->n + tasks - 1) / tasks;
        tasks = (s->n + j.per - 1) / j.per;
    } else {
        j.threaded_gemm = 1;
        j.per = s->n;
    }
    j.partials = sk_scratch(2, (size_t)tasks * (wsize + s->cout));
    if (tasks > 1) strata_parallel_for(tasks, conv_backward_task, &j);
    else conv_backward_task(&j, 0);
    // Fixed-order sum of the per-task partials keeps results reproducible; dW^T -> dW per group.
    if (gw) {
        float *acc = j.partials;
        for (long t = 1; t < tasks; t++) {
            const float *p = j.partials + t * (wsize + s->cout);
            for (long i = 0; i < wsize; i++) acc[i] += p[i];
        }
        for (long g = 0; g < G; g++) transpose_bias(K, cog, acc + g * K * cog, cog, 0, gw + g * cog * K);
    }
    if (gb) {
        for (long co = 0; co < s->cout; co++) {
            float v = 0;
            for (long t = 0; t < tasks; t++) v += j.partials[t * (wsize + s->cout) + wsize + co];
            gb[co] = v;
        }
    }
}

// ---- fused convolution + 2x2 max pooling -----------------------------------------------------------

int sk_conv2d_maxpool_supported(const sk_conv_shape *s);

void sk_conv2d_maxpool_forward(const sk_conv_shape *s, const float *x, const float *w, const float *bias,
                               float *y, uint8_t *codes, int relu) {
    sk_conv2d_maxpool_forward_prepared(s, x, w, bias, y, codes, relu, 0);
}

void sk_conv2d_maxpool_forward_prepared(const sk_conv_shape *s, const float *x, const float *w, const float *bias,
                                        float *y, uint8_t *codes, int relu, sk_conv_prepared *p) {
    conv_job j = {0};
    j.s = s; j.x = x; j.w = w; j.bias = bias; j.y = y; j.pooled = 1; j.codes = codes; j.relu = relu; j.prep = p;
    conv_forward_run(&j);
}

void sk_conv2d_maxpool_backward(const sk_conv_shape *s, const float *x, const float *w, const uint8_t *codes,
                                const float *gy, float *gx, float *gw, float *gb) {
    conv_backward_run(s, x, w, gy, gx, gw, gb, codes);
}

// ---- pooling -------------------------------------------------------------------------------------
// Planes are (n, c) pairs; each runs independently.

typedef struct {
    const sk_pool_shape *s;
    const float *x, *gy;
    float *y, *gx;
    int32_t *idx;
    int avg;
    uint8_t *code;   // 2x2 fast path: winner position per output
} pool_job;

// 2x2 windows, stride 2, no padding: the common case, branch-free so it vectorises.
SK_BODY void maxpool_2x2_body(long H, long W, long OH, long OW, const float *x, float *y, int32_t *id) {
    for (long oh = 0; oh < OH; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        float *yo = y + oh * OW;
        if (id) {
            int32_t *io = id + oh * OW;
            int32_t base = (int32_t)(2 * oh * W);
            for (long ow = 0; ow < OW; ow++) {
                float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
                int32_t ia = base + 2 * (int32_t)ow;
                float m0 = b > a ? b : a;
                int32_t i0 = b > a ? ia + 1 : ia;
                float m1 = d > c ? d : c;
                int32_t i1 = d > c ? ia + (int32_t)W + 1 : ia + (int32_t)W;
                yo[ow] = m1 > m0 ? m1 : m0;
                io[ow] = m1 > m0 ? i1 : i0;
            }
        } else {
            for (long ow = 0; ow < OW; ow++) {
                float m0 = r0[2 * ow + 1] > r0[2 * ow] ? r0[2 * ow + 1] : r0[2 * ow];
                float m1 = r1[2 * ow + 1] > r1[2 * ow] ? r1[2 * ow + 1] : r1[2 * ow];
                yo[ow] = m1 > m0 ? m1 : m0;
            }
        }
    }
    (void)H;
}
SK_MULTI_ISA_VOID(static, maxpool_2x2, (long H, long W, long OH, long OW, const float *x, float *y, int32_t *id), (H, W, OH, OW, x, y, id))

// AVX-512 2x2/stride-2 pooling rows: 16 outputs from 32 inputs of each of two input rows;
// permutes split even and odd columns. With `code`, also writes which window position won
// (0..3, row-major, first on ties) as one byte per output, for the backward pass.
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void maxpool_2x2_avx512(long W, long OH, long OW, const float *x, float *y,
                                                                          uint8_t *code) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (long oh = 0; oh < OH; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        for (long ow = 0; ow < OW; ow += 16) {
            long n = OW - ow < 16 ? OW - ow : 16;               // outputs in this step
            __mmask16 om = (__mmask16)((1u << n) - 1);
            long in = 2 * n;                                    // inputs per row
            __mmask16 m0 = (__mmask16)(in >= 16 ? 0xFFFF : (1u << in) - 1);
            __mmask16 m1 = (__mmask16)(in > 16 ? (1u << (in - 16)) - 1 : 0);
            __m512 a0 = _mm512_maskz_loadu_ps(m0, r0 + 2 * ow), a1 = _mm512_maskz_loadu_ps(m1, r0 + 2 * ow + 16);
            __m512 b0 = _mm512_maskz_loadu_ps(m0, r1 + 2 * ow), b1 = _mm512_maskz_loadu_ps(m1, r1 + 2 * ow + 16);
            __m512 te = _mm512_permutex2var_ps(a0, even, a1), to = _mm512_permutex2var_ps(a0, odd, a1);
            __m512 be = _mm512_permutex2var_ps(b0, even, b1), bo = _mm512_permutex2var_ps(b0, odd, b1);
            __m512 top = _mm512_max_ps(to, te), bot = _mm512_max_ps(bo, be);
            __m512 m = _mm512_max_ps(bot, top);
            _mm512_mask_storeu_ps(y + oh * OW + ow, om, m);
            if (code) {
                __mmask16 k0 = _mm512_cmp_ps_mask(te, m, _CMP_EQ_OQ);
                __mmask16 k1 = _mm512_cmp_ps_mask(to, m, _CMP_EQ_OQ) & ~k0;
                __mmask16 k2 = _mm512_cmp_ps_mask(be, m, _CMP_EQ_OQ) & ~(k0 | k1);
                __mmask16 k3 = ~(k0 | k1 | k2);
                __m512i c = _mm512_setzero_si512();
                c = _mm512_mask_mov_epi32(c, k1, _mm512_set1_epi32(1));
                c = _mm512_mask_mov_epi32(c, k2, _mm512_set1_epi32(2));
                c = _mm512_mask_mov_epi32(c, k3, _mm512_set1_epi32(3));
                _mm_mask_storeu_epi8(code + oh * OW + ow, om, _mm512_cvtepi32_epi8(c));
            }
        }
    }
}

// Backward of 2x2/stride-2 max pooling from the stored winner codes (4: none, the whole window gets
// zero). Writes every element of gx.
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void maxpool_2x2_backward_codes_avx512(long H, long W, long OH, long OW, const uint8_t *code,
                                                                                  const float *gy, float *gx) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (long oh = 0; oh < OH; oh++) {
        float *g0 = gx + 2 * oh * W, *g1 = g0 + W;
        for (long ow = 0; ow < OW; ow += 16) {
            long n = OW - ow < 16 ? OW - ow : 16;
            __mmask16 om = (__mmask16)((1u << n) - 1);
            long in = 2 * n;
            __mmask16 m0 = (__mmask16)(in >= 16 ? 0xFFFF : (1u << in) - 1);
            __mmask16 m1 = (__mmask16)(in > 16 ? (1u << (in - 16)) - 1 : 0);
            __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(om, code + oh * OW + ow));
            __m512 g = _mm512_maskz_loadu_ps(om, gy + oh * OW + ow);
            __m512 z = _mm512_setzero_ps();
            __m512 gte = _mm512_mask_mov_ps(z, _mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(0)), g);
            __m512 gto = _mm512_mask_mov_ps(z, _mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(1)), g);
            __m512 gbe = _mm512_mask_mov_ps(z, _mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(2)), g);
            __m512 gbo = _mm512_mask_mov_ps(z, _mm512_cmpeq_epi32_mask(c, _mm512_set1_epi32(3)), g);
            // Interleave even/odd columns back into input order.
            _mm512_mask_storeu_ps(g0 + 2 * ow, m0, _mm512_permutex2var_ps(gte, lo, gto));
            _mm512_mask_storeu_ps(g0 + 2 * ow + 16, m1, _mm512_permutex2var_ps(gte, hi, gto));
            _mm512_mask_storeu_ps(g1 + 2 * ow, m0, _mm512_permutex2var_ps(gbe, lo, gbo));
            _mm512_mask_storeu_ps(g1 + 2 * ow + 16, m1, _mm512_permutex2var_ps(gbe, hi, gbo));
        }
        // Odd widths leave a last input column outside every window.
        if (W > 2 * OW) { for (long r = 0; r < 2; r++) gx[(2 * oh + r) * W + W - 1] = 0.0f; }
    }
    // Odd heights leave a last input row outside every window.
    if (H > 2 * OH) for (long w = 0; w < W; w++) gx[(H - 1) * W + w] = 0.0f;
}

// AVX2 twin of maxpool_2x2_avx512: 8 outputs from 16 inputs of each of two rows, the same max
// order (so the same values, NaN included) and the same codes. Even/odd columns are split by
// in-lane shuffles, which leave the outputs in the order 0 1 4 5 | 2 3 6 7; one permute restores
// the values, and the codes are put back in order while packing them to bytes.
__attribute__((target("avx2,fma"))) static inline void maxpool_2x2_step8(__m256 a0, __m256 a1, __m256 b0, __m256 b1, float *y, uint8_t *code) {
    __m256 te = _mm256_shuffle_ps(a0, a1, 0x88), to = _mm256_shuffle_ps(a0, a1, 0xDD);
    __m256 be = _mm256_shuffle_ps(b0, b1, 0x88), bo = _mm256_shuffle_ps(b0, b1, 0xDD);
    __m256 top = _mm256_max_ps(to, te), bot = _mm256_max_ps(bo, be);
    __m256 m = _mm256_max_ps(bot, top);
    _mm256_storeu_ps(y, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), 0xD8)));
    if (!code) return;
    // First match in row-major order: 0 if te, else 1 if to, else 2 if be, else 3.
    __m256i c = _mm256_set1_epi32(3);
    c = _mm256_blendv_epi8(c, _mm256_set1_epi32(2), _mm256_castps_si256(_mm256_cmp_ps(be, m, _CMP_EQ_OQ)));
    c = _mm256_blendv_epi8(c, _mm256_set1_epi32(1), _mm256_castps_si256(_mm256_cmp_ps(to, m, _CMP_EQ_OQ)));
    c = _mm256_blendv_epi8(c, _mm256_setzero_si256(), _mm256_castps_si256(_mm256_cmp_ps(te, m, _CMP_EQ_OQ)));
    __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(c, c), _mm256_setzero_si256());   // bytes 0 1 4 5 | 2 3 6 7
    __m128i v = _mm_unpacklo_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    _mm_storel_epi64((__m128i *)code, v);
}

__attribute__((target("avx2,fma"))) static void maxpool_2x2_avx2(long W, long OH, long OW, const float *x, float *y, uint8_t *code) {
    for (long oh = 0; oh < OH; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        float *yo = y + oh * OW;
        uint8_t *co = code ? code + oh * OW : 0;
        if (OW < 8 && OW >= 4 && oh + 1 < OH) {
            // Rows of 4 to 7 outputs but the last: one whole step. Its loads (W + 16 floats from r0)
            // stay inside rows 2 oh to 2 oh + 3 (4W floats, W >= 8), and its stores run past the row
            // into the next one, whose own step then writes those places again. (A masked step a
            // row, with two memcpy calls, cost CNN training held to AVX2: it pools 14 x 14 to 7 x 7.)
            maxpool_2x2_step8(_mm256_loadu_ps(r0), _mm256_loadu_ps(r0 + 8), _mm256_loadu_ps(r1), _mm256_loadu_ps(r1 + 8), yo, co);
            continue;
        }
        if (OW < 8) {   // one masked step into a local buffer
            float yb[8];
            uint8_t cb[8];
            __m256i m0 = lanes8(0, 2 * OW), m1 = lanes8(0, 2 * OW - 8);
            maxpool_2x2_step8(_mm256_maskload_ps(r0, m0), _mm256_maskload_ps(r0 + 8, m1),
                              _mm256_maskload_ps(r1, m0), _mm256_maskload_ps(r1 + 8, m1), yb, co ? cb : 0);
            memcpy(yo, yb, (size_t)OW * sizeof(float));
            if (co) memcpy(co, cb, (size_t)OW);
            continue;
        }
        for (long q = 0; 8 * q < OW; q++) {
            long o = step8(q, OW);
            maxpool_2x2_step8(_mm256_loadu_ps(r0 + 2 * o), _mm256_loadu_ps(r0 + 2 * o + 8),
                              _mm256_loadu_ps(r1 + 2 * o), _mm256_loadu_ps(r1 + 2 * o + 8), yo + o, co ? co + o : 0);
        }
    }
}

// AVX2 twin of maxpool_2x2_backward_codes_avx512. Writes every element of gx.
__attribute__((target("avx2,fma"))) static void maxpool_2x2_backward_codes_avx2(long H, long W, long OH, long OW, const uint8_t *code,
                                                                               const float *gy, float *gx) {
    for (long oh = 0; oh < OH; oh++) {
        float *g0 = gx + 2 * oh * W, *g1 = g0 + W;
        const uint8_t *co = code + oh * OW;
        const float *go = gy + oh * OW;
        if (OW < 8) {
            for (long ow = 0; ow < OW; ow++) {
                float g = go[ow];
                int c = co[ow];
                g0[2 * ow] = c == 0 ? g : 0.0f;
                g0[2 * ow + 1] = c == 1 ? g : 0.0f;
                g1[2 * ow] = c == 2 ? g : 0.0f;
                g1[2 * ow + 1] = c == 3 ? g : 0.0f;
            }
        } else {
            for (long q = 0; 8 * q < OW; q++) {
                long o = step8(q, OW);
                __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(co + o)));
                __m256 g = _mm256_loadu_ps(go + o);
                __m256 gte = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_setzero_si256())));
                __m256 gto = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_set1_epi32(1))));
                __m256 gbe = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_set1_epi32(2))));
                __m256 gbo = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(c, _mm256_set1_epi32(3))));
                // Interleave even/odd columns back into input order.
                __m256 tl = _mm256_unpacklo_ps(gte, gto), th = _mm256_unpackhi_ps(gte, gto);   // 0 1 | 4 5 and 2 3 | 6 7
                __m256 bl = _mm256_unpacklo_ps(gbe, gbo), bh = _mm256_unpackhi_ps(gbe, gbo);
                _mm256_storeu_ps(g0 + 2 * o, _mm256_permute2f128_ps(tl, th, 0x20));
                _mm256_storeu_ps(g0 + 2 * o + 8, _mm256_permute2f128_ps(tl, th, 0x31));
                _mm256_storeu_ps(g1 + 2 * o, _mm256_permute2f128_ps(bl, bh, 0x20));
                _mm256_storeu_ps(g1 + 2 * o + 8, _mm256_permute2f128_ps(bl, bh, 0x31));
            }
        }
        // Odd widths leave a last input column outside every window.
        if (W > 2 * OW) { g0[W - 1] = 0.0f; g1[W - 1] = 0.0f; }
    }
    // Odd heights leave a last input row outside every window.
    if (H > 2 * OH) memset(gx + (H - 1) * W, 0, (size_t)W * sizeof(float));
}

// Portable 2x2/stride-2 pooling with codes, the same comparisons as the vector kernels
// (max(a, b) = a > b ? a : b), so codes recorded on one ISA are read back correctly on another.
static void maxpool_2x2_codes_generic(long W, long OH, long OW, const float *x, float *y, uint8_t *code) {
    for (long oh = 0; oh < OH; oh++) {
        const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
        for (long ow = 0; ow < OW; ow++) {
            float te = r0[2 * ow], to = r0[2 * ow + 1], be = r1[2 * ow], bo = r1[2 * ow + 1];
            float top = to > te ? to : te, bot = bo > be ? bo : be;
            float m = bot > top ? bot : top;
            y[oh * OW + ow] = m;
            code[oh * OW + ow] = (uint8_t)(te == m ? 0 : to == m ? 1 : be == m ? 2 : 3);
        }
    }
}

static void maxpool_2x2_backward_codes_generic(long H, long W, long OH, long OW, const uint8_t *code, const float *gy, float *gx) {
    memset(gx, 0, (size_t)H * W * sizeof(float));
    for (long oh = 0; oh < OH; oh++)
        for (long ow = 0; ow < OW; ow++) {
            int c = code[oh * OW + ow];
            if (c > 3) continue;   // no winner (a fused ReLU zeroed the output)
            gx[(2 * oh + (c >> 1)) * W + 2 * ow + (c & 1)] = gy[oh * OW + ow];
        }
}

static int has_avx512bw(void);

// 2x2/stride-2 pooling of one plane, recording winner codes when `code` is not NULL.
static void maxpool_2x2_codes(long H, long W, long OH, long OW, const float *x, float *y, uint8_t *code) {
    if (has_avx512bw()) maxpool_2x2_avx512(W, OH, OW, x, y, code);
    else if (strata_cpu_isa() >= 1) maxpool_2x2_avx2(W, OH, OW, x, y, code);
    else if (code) maxpool_2x2_codes_generic(W, OH, OW, x, y, code);
    else maxpool_2x2(H, W, OH, OW, x, y, 0);
}

static void maxpool_2x2_backward_codes(long H, long W, long OH, long OW, const uint8_t *code, const float *gy, float *gx) {
    if (has_avx512bw()) maxpool_2x2_backward_codes_avx512(H, W, OH, OW, code, gy, gx);
    else if (strata_cpu_isa() >= 1) maxpool_2x2_backward_codes_avx2(H, W, OH, OW, code, gy, gx);
    else maxpool_2x2_backward_codes_generic(H, W, OH, OW, code, gy, gx);
}

static int is_pool_2x2(const sk_pool_shape *s) {
    return s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && s->ph == 0 && s->pw == 0 && s->dh == 1 && s->dw == 1 &&
           2 * s->oh <= s->h && 2 * s->ow <= s->w;   // no partial window at the end (ceil mode)
}

// The AVX-512 pooling kernels also use byte operations (AVX-512BW). The CPU's answer is kept; the
// level is asked each time, so a level lowered for a while (tests, STRATA_ISA) is not remembered.
static int has_avx512bw(void) {
    static int v = -1;
    if (v < 0) { __builtin_cpu_init(); v = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"); }
    return v && strata_cpu_isa() >= 2;
}

static void maxpool_plane(const pool_job *j, long plane) {
    const sk_pool_shape *s = j->s;
    const float *x = j->x + plane * s->h * s->w;
    float *y = j->y + plane * s->oh * s->ow;
    int32_t *id = j->idx ? j->idx + plane * s->oh * s->ow : 0;
    if (is_pool_2x2(s) && !id) {
        maxpool_2x2_codes(s->h, s->w, s->oh, s->ow, x, y, j->code ? j->code + plane * s->oh * s->ow : 0);
        return;
    }
    if (is_pool_2x2(s)) {
        maxpool_2x2(s->h, s->w, s->oh, s->ow, x, y, id);
        return;
    }
    for (long oh = 0; oh < s->oh; oh++)
        for (long ow = 0; ow < s->ow; ow++) {
            float best = -__builtin_inff();
            long bi = -1;
            int nan = 0;
            for (long kh = 0; kh < s->kh && !nan; kh++) {
                long ih = oh * s->sh - s->ph + kh * s->dh;
                if (ih < 0 || ih >= s->h) continue;
                for (long kw = 0; kw < s->kw; kw++) {
                    long iw = ow * s->sw - s->pw + kw * s->dw;
                    if (iw < 0 || iw >= s->w) continue;
                    float v = x[ih * s->w + iw];
                    if (v > best || bi < 0) { best = v; bi = ih * s->w + iw; }
                    if (v != v) { best = v; bi = ih * s->w + iw; nan = 1; break; }
                }
            }
            y[oh * s->ow + ow] = best;
            if (id) id[oh * s->ow + ow] = (int32_t)bi;
        }
}

// How many of a window's k taps (d apart, the first at start) fall in [lo, hi).
static long taps_within(long start, long k, long d, long lo, long hi) {
    long n = 0;
    for (long t = 0; t < k; t++) n += start + t * d >= lo && start + t * d < hi;
    return n;
}

// An average's divisor along one axis for the window at start: the taps inside the padded input
// (ceil mode's partial windows count less), or with exclude_pad inside the input itself.
static long avg_taps(const sk_pool_shape *s, long start, long k, long d, long pad, long end_pad, long size) {
    return s->exclude_pad ? taps_within(start, k, d, 0, size) : taps_within(start, k, d, -pad, size + end_pad);
}

// Whether every window lies inside the padded input and the padding counts, so each divides by
// the whole kernel (PyTorch's defaults: no ceil mode's partial window, no exclude_pad). Counting
// taps per window costs the 2x2 average half as much again.
static int avg_uniform(const sk_pool_shape *s) {
    return !s->exclude_pad && (s->oh - 1) * s->sh + (s->kh - 1) * s->dh + 1 <= s->h + s->ph + s->eh &&
           (s->ow - 1) * s->sw + (s->kw - 1) * s->dw + 1 <= s->w + s->pw + s->ew;
}

// 1 / the divisor of the average at output (oh, ow): `whole` (1 / the kernel's size) where uniform.
static inline float avg_scale(const sk_pool_shape *s, int uniform, float whole, long oh, long ow) {
    if (uniform) return whole;
    long n = avg_taps(s, oh * s->sh - s->ph, s->kh, s->dh, s->ph, s->eh, s->h) * avg_taps(s, ow * s->sw - s->pw, s->kw, s->dw, s->pw, s->ew, s->w);
    return n > 0 ? 1.0f / (float)n : 0;
}

// The sum of a window's taps inside the input (dh, dw apart, the first at h0, w0).
static inline float window_sum(const sk_pool_shape *s, const float *x, long h0, long w0, long dh, long dw) {
    float acc = 0;
    for (long kh = 0; kh < s->kh; kh++) {
        long ih = h0 + kh * dh;
        if (ih < 0 || ih >= s->h) continue;
        for (long kw = 0; kw < s->kw; kw++) {
            long iw = w0 + kw * dw;
            if (iw >= 0 && iw < s->w) acc += x[ih * s->w + iw];
        }
    }
    return acc;
}

static void avgpool_plane(const pool_job *j, long plane) {
    const sk_pool_shape *s = j->s;
    const float *x = j->x + plane * s->h * s->w;
    float *y = j->y + plane * s->oh * s->ow;
    int uniform = avg_uniform(s);
    float whole = 1.0f / (float)(s->kh * s->kw);
    // PyTorch's defaults: constant taps 1 apart and one divisor (what DlibResNet's 2x2 averages run).
    if (uniform && s->dh == 1 && s->dw == 1) {
        for (long oh = 0; oh < s->oh; oh++)
            for (long ow = 0; ow < s->ow; ow++) y[oh * s->ow + ow] = window_sum(s, x, oh * s->sh - s->ph, ow * s->sw - s->pw, 1, 1) * whole;
        return;
    }
    for (long oh = 0; oh < s->oh; oh++)
        for (long ow = 0; ow < s->ow; ow++)
            y[oh * s->ow + ow] = window_sum(s, x, oh * s->sh - s->ph, ow * s->sw - s->pw, s->dh, s->dw) * avg_scale(s, uniform, whole, oh, ow);
}

static void pool_backward_plane(const pool_job *j, long plane) {
    const sk_pool_shape *s = j->s;
    const float *gy = j->gy + plane * s->oh * s->ow;
    float *gx = j->gx + plane * s->h * s->w;
    if (!j->avg && j->code) {   // 2x2 fast path: winners from their position codes
        maxpool_2x2_backward_codes(s->h, s->w, s->oh, s->ow, j->code + plane * s->oh * s->ow, gy, gx);
        return;
    }
    memset(gx, 0, (size_t)s->h * s->w * sizeof(float));
    if (!j->avg) {
        const int32_t *id = j->idx + plane * s->oh * s->ow;
        for (long o = 0; o < s->oh * s->ow; o++)
            if (id[o] >= 0) gx[id[o]] += gy[o];
        return;
    }
    int uniform = avg_uniform(s);
    float whole = 1.0f / (float)(s->kh * s->kw);
    for (long oh = 0; oh < s->oh; oh++) {
        long h0 = oh * s->sh - s->ph;
        for (long ow = 0; ow < s->ow; ow++) {
            long w0 = ow * s->sw - s->pw;
            float g = gy[oh * s->ow + ow] * avg_scale(s, uniform, whole, oh, ow);
            for (long kh = 0; kh < s->kh; kh++) {
                long ih = h0 + kh * s->dh;
                if (ih < 0 || ih >= s->h) continue;
                for (long kw = 0; kw < s->kw; kw++) {
                    long iw = w0 + kw * s->dw;
                    if (iw >= 0 && iw < s->w) gx[ih * s->w + iw] += g;
                }
            }
        }
    }
}

static void pool_forward_task(void *ctx, long p) {
    const pool_job *j = ctx;
    if (j->avg) avgpool_plane(j, p); else maxpool_plane(j, p);
}
static void pool_backward_task(void *ctx, long p) { pool_backward_plane(ctx, p); }

static void run_planes(const sk_pool_shape *s, strata_task_fn fn, pool_job *j) {
    long planes = s->n * s->c;
    if (planes * s->h * s->w < 32768) for (long p = 0; p < planes; p++) fn(j, p);
    else strata_parallel_for(planes, fn, j);
}

void sk_maxpool2d_forward(const sk_pool_shape *s, const float *x, float *y, int32_t *idx) {
    pool_job j = {s, x, 0, y, 0, idx, 0};
    run_planes(s, pool_forward_task, &j);
}

void sk_maxpool2d_backward(const sk_pool_shape *s, const int32_t *idx, const float *gy, float *gx) {
    pool_job j = {s, 0, gy, 0, gx, (int32_t *)idx, 0};
    run_planes(s, pool_backward_task, &j);
}

int sk_maxpool2d_uses_codes(const sk_pool_shape *s) { return is_pool_2x2(s) && strata_cpu_isa() >= 1; }

// Worth it when images are spread over threads, or for a single image, whose output channels
// are spread over threads (conv_forward_split_task: each pools its own channels). Two or three
// images on two threads are faster through the separate ops, whose GEMM and pooling each use
// every thread.
int sk_conv2d_maxpool_supported(const sk_conv_shape *s) {
    int threads = strata_get_num_threads();
    return strata_cpu_isa() >= 1 && s->oh >= 2 && s->ow >= 2 && (threads <= 1 || s->n >= 2 * threads || s->n == 1);
}

void sk_maxpool2d_forward_codes(const sk_pool_shape *s, const float *x, float *y, uint8_t *codes) {
    pool_job j = {s, x, 0, y, 0, 0, 0, codes};
    run_planes(s, pool_forward_task, &j);
}

void sk_maxpool2d_backward_codes(const sk_pool_shape *s, const uint8_t *codes, const float *gy, float *gx) {
    pool_job j = {s, 0, gy, 0, gx, 0, 0, (uint8_t *)codes};
    run_planes(s, pool_backward_task, &j);
}

void sk_avgpool2d_forward(const sk_pool_shape *s, const float *x, float *y) {
    pool_job j = {s, x, 0, y, 0, 0, 1};
    run_planes(s, pool_forward_task, &j);
}

void sk_avgpool2d_backward(const sk_pool_shape *s, const float *gy, float *gx) {
    pool_job j = {s, 0, gy, 0, gx, 0, 1};
    run_planes(s, pool_backward_task, &j);
}

// Adaptive pooling (PyTorch's AdaptiveAvgPool2d and AdaptiveMaxPool2d): output cell i of an
// axis pools input [floor(i*n/out), ceil((i+1)*n/out)), so the bins cover the input and may overlap.
typedef struct {
    long h, w, oh, ow;
    int max;
    const float *x, *gy;
    float *y, *gx;
    int32_t *idx;
} adaptive_job;

static long bin_start(long i, long n, long out) { return i * n / out; }
static long bin_end(long i, long n, long out) { return ((i + 1) * n + out - 1) / out; }

static void adaptive_forward_plane(void *ctx, long p) {
    const adaptive_job *j = ctx;
    const float *x = j->x + p * j->h * j->w;
    float *y = j->y + p * j->oh * j->ow;
    int32_t *id = j->idx ? j->idx + p * j->oh * j->ow : 0;
    for (long i = 0; i < j->oh; i++) {
        long h0 = bin_start(i, j->h, j->oh), h1 = bin_end(i, j->h, j->oh);
        for (long k = 0; k < j->ow; k++) {
            long w0 = bin_start(k, j->w, j->ow), w1 = bin_end(k, j->w, j->ow);
            if (!j->max) {
                float acc = 0;
                for (long r = h0; r < h1; r++)
                    for (long c = w0; c < w1; c++) acc += x[r * j->w + c];
                y[i * j->ow + k] = acc / (float)((h1 - h0) * (w1 - w0));
                continue;
            }
            long bi = h0 * j->w + w0;
            float best = x[bi];
            for (long r = h0; r < h1; r++)
                for (long c = w0; c < w1; c++) {
                    float v = x[r * j->w + c];
                    if (v > best || (v != v && best == best)) { best = v; bi = r * j->w + c; }   // NaN wins, as in PyTorch
                }
            y[i * j->ow + k] = best;
            if (id) id[i * j->ow + k] = (int32_t)bi;
        }
    }
}

static void adaptive_backward_plane(void *ctx, long p) {
    const adaptive_job *j = ctx;
    const float *gy = j->gy + p * j->oh * j->ow;
    float *gx = j->gx + p * j->h * j->w;
    memset(gx, 0, (size_t)(j->h * j->w) * sizeof(float));
    if (j->max) {
        const int32_t *id = j->idx + p * j->oh * j->ow;
        for (long o = 0; o < j->oh * j->ow; o++) gx[id[o]] += gy[o];
        return;
    }
    for (long i = 0; i < j->oh; i++) {
        long h0 = bin_start(i, j->h, j->oh), h1 = bin_end(i, j->h, j->oh);
        for (long k = 0; k < j->ow; k++) {
            long w0 = bin_start(k, j->w, j->ow), w1 = bin_end(k, j->w, j->ow);
            float g = gy[i * j->ow + k] / (float)((h1 - h0) * (w1 - w0));
            for (long r = h0; r < h1; r++)
                for (long c = w0; c < w1; c++) gx[r * j->w + c] += g;
        }
    }
}

static void run_adaptive(long planes, strata_task_fn fn, adaptive_job *j) {
    if (planes * j->h * j->w < 32768) for (long p = 0; p < planes; p++) fn(j, p);
    else strata_parallel_for(planes, fn, j);
}

void sk_adaptive_pool2d_forward(long planes, long h, long w, long oh, long ow, int max, const float *x, float *y, int32_t *argmax) {
    adaptive_job j = {h, w, oh, ow, max, x, 0, y, 0, argmax};
    run_adaptive(planes, adaptive_forward_plane, &j);
}

void sk_adaptive_pool2d_backward(long planes, long h, long w, long oh, long ow, int max, const int32_t *argmax, const float *gy, float *gx) {
    adaptive_job j = {h, w, oh, ow, max, 0, gy, 0, gx, (int32_t *)argmax};
    run_adaptive(planes, adaptive_backward_plane, &j);
}
