// Direct convolution for few input channels (a network's first layer: K = Cin*KH*KW of 27 for an
// RGB 3x3 filter, 9 for a grey one; up to 144), stride 1, groups 1, forward and weight gradient.
//
// im2col + GEMM is poor there: the column buffer is 9x the image for a product only K deep, so
// packing and memory traffic outweigh the multiply-adds. Here each image is first copied once into
// a zero-padded buffer xp[Cin][Hp][Wp] (no edge cases after that), and then
//   forward        y[co][oh][ow..ow+V) = bias[co] + sum_t w[co][t] * xp[t's channel][oh + kh*dh][ow + kw*dw ..]
//   weight grad    dW[co][t] += sum_(oh, ow) gy[co][oh][ow] * xp[t's channel][oh + kh*dh][ow + kw*dw]
// with t = (ci*KH + kh)*KW + kw the weight's own layout. V = 16 (AVX-512) or 8 (AVX2) outputs of
// a row are one vector ("segment"); a register block holds CB output channels x S segments
// (forward: a broadcast weight times a segment of input) or CB channels x TB taps (weight gradient:
// a segment of gradient times a segment of input, summed over every segment of the images).
// Blocks at the channel/segment/tap edges repeat their last member: the repeat computes the same
// values again, and the weight gradient adds each distinct sum only once.
//
// Sums run in tap order (forward; the bias is added last, as after the GEMM) or over segments then
// lanes (weight gradient): other orders than the GEMM's, so results differ from it by rounding
// only; on whole numbers they agree bit for bit (OpsTests.testConvKernelsExactOnEveryISA).
#include "strata_kernels.h"
#include <immintrin.h>
#include <string.h>

float *sk_scratch(int slot, size_t floats);

// Where the direct path measured faster than im2col + GEMM on both ISAs (Tools/conv_ab.c with
// OP=conv, BENCHMARKS.md): K up to 144 (the widest measured; Winograd takes 3x3 layers with 16+
// channels in and out first), output rows of 8+ for the forward and 16+ for the weight gradient
// (narrower rows leave too many of a segment's lanes idle there). 1x1 filters keep the GEMM, which
// reads their input in place.
#define DIRECT_MAX_K 144

int sk_direct_conv_applies(const sk_conv_shape *s, int weight_grad) {
    long K = s->c * s->kh * s->kw;
    return strata_cpu_isa() >= 1 && s->groups == 1 && s->sh == 1 && s->sw == 1 && s->kh * s->kw > 1 &&
           K <= DIRECT_MAX_K && s->ow >= (weight_grad ? 16 : 8) && s->oh >= 1 && s->cout >= 1;
}

// The padded copies of nb images: Hp = OH + (KH-1)*dh rows, Wp = ceil(OW / V)*V + 16 + (KW-1)*dw
// columns (whole segments read past the row's end stay inside, in zeros); image n at xp + n*img.
typedef struct {
    const float *xp;
    long hp, wp, img, segs;   // segs: segments per output row
    long toff[DIRECT_MAX_K];  // tap t's offset in an image's copy
} padded_t;

static void pad_images(const sk_conv_shape *s, const float *x, long nb, long V, padded_t *p) {
    long segs = (s->ow + V - 1) / V;
    long hp = s->oh + (s->kh - 1) * s->dh, wp = segs * V + 16 + (s->kw - 1) * s->dw;
    float *xp = sk_scratch(0, (size_t)(nb * s->c * hp * wp));
    for (long ci = 0; ci < nb * s->c; ci++)
        for (long r = 0; r < hp; r++) {
            float *row = xp + (ci * hp + r) * wp;
            long ih = r - s->ph;
            memset(row, 0, (size_t)wp * sizeof(float));
            if (ih < 0 || ih >= s->h) continue;
            // column iw + pw for iw in [0, W), clipped to the buffer
            long n = s->w + s->pw <= wp ? s->w : wp - s->pw;
            if (n > 0) memcpy(row + s->pw, x + (ci * s->h + ih) * s->w, (size_t)n * sizeof(float));
        }
    for (long ci = 0, t = 0; ci < s->c; ci++)
        for (long kh = 0; kh < s->kh; kh++)
            for (long kw = 0; kw < s->kw; kw++, t++) p->toff[t] = (ci * hp + kh * s->dh) * wp + kw * s->dw;
    p->xp = xp; p->hp = hp; p->wp = wp; p->img = s->c * hp * wp; p->segs = segs;
}

// ---- AVX-512: 16-lane segments ----------------------------------------------------------------------

// Register blocks as measured (Tools/conv_ab.c): 4 channels x 4 segments beat 8 x 3 on AVX-512; on
// AVX2 (16 registers) 4 x 3 spilled, and 4 x 2 measured as fast as 6 x 2 without its channel waste.
#define F512_CB 4
#define F512_S 4

// One image: y[Cout][OH][OW] from the padded copy.
__attribute__((target("avx512f"))) static void forward_avx512(const sk_conv_shape *s, const padded_t *p, const float *w,
                                                              const float *bias, float *y) {
    long K = s->c * s->kh * s->kw, OW = s->ow, P = s->oh * OW, nseg = s->oh * p->segs;
    __mmask16 tail = (__mmask16)((1u << (OW - 16 * (p->segs - 1))) - 1);
    for (long g0 = 0; g0 < nseg; g0 += F512_S) {
        const float *base[F512_S];
        long out[F512_S];
        __mmask16 m[F512_S];
        for (int i = 0; i < F512_S; i++) {
            long g = g0 + i < nseg ? g0 + i : nseg - 1, oh = g / p->segs, q = g % p->segs;
            base[i] = p->xp + oh * p->wp + 16 * q;
            out[i] = oh * OW + 16 * q;
            m[i] = q == p->segs - 1 ? tail : (__mmask16)0xffff;
        }
        for (long c0 = 0; c0 < s->cout; c0 += F512_CB) {
            const float *wc[F512_CB];
            long co[F512_CB];
            for (int c = 0; c < F512_CB; c++) {
                co[c] = c0 + c < s->cout ? c0 + c : s->cout - 1;
                wc[c] = w + co[c] * K;
            }
            __m512 acc[F512_CB][F512_S];
            for (int c = 0; c < F512_CB; c++)
                for (int i = 0; i < F512_S; i++) acc[c][i] = _mm512_setzero_ps();
            for (long t = 0; t < K; t++) {
                long off = p->toff[t];
                __m512 v[F512_S];
                for (int i = 0; i < F512_S; i++) v[i] = _mm512_loadu_ps(base[i] + off);
                for (int c = 0; c < F512_CB; c++) {
                    __m512 wv = _mm512_set1_ps(wc[c][t]);
                    for (int i = 0; i < F512_S; i++) acc[c][i] = _mm512_fmadd_ps(wv, v[i], acc[c][i]);
                }
            }
            for (int c = 0; c < F512_CB; c++) {
                __m512 b = _mm512_set1_ps(bias ? bias[co[c]] : 0.0f);
                for (int i = 0; i < F512_S; i++)
                    _mm512_mask_storeu_ps(y + co[c] * P + out[i], m[i], bias ? _mm512_add_ps(acc[c][i], b) : acc[c][i]);
            }
        }
    }
}

#define W512_CB 4
#define W512_TB 4

// One image: gwt[t][co] (+)= sum over the image of gy[co] * the tap's input. Lanes past a row's
// end are masked to zero in both factors (so no 0 * inf reaches a sum).
__attribute__((target("avx512f"))) static void weight_grad_avx512(const sk_conv_shape *s, const padded_t *p, long nb,
                                                                  const float *gy, float *gwt, int first) {
    long K = s->c * s->kh * s->kw, OW = s->ow, P = s->oh * OW, Cout = s->cout;
    __mmask16 tail = (__mmask16)((1u << (OW - 16 * (p->segs - 1))) - 1);
    for (long c0 = 0; c0 < Cout; c0 += W512_CB) {
        const float *gc[W512_CB];
        for (int c = 0; c < W512_CB; c++) gc[c] = gy + (c0 + c < Cout ? c0 + c : Cout - 1) * P;
        for (long t0 = 0; t0 < K; t0 += W512_TB) {
            long toff[W512_TB];
            for (int k = 0; k < W512_TB; k++) toff[k] = p->toff[t0 + k < K ? t0 + k : K - 1];
            __m512 acc[W512_CB][W512_TB];
            for (int c = 0; c < W512_CB; c++)
                for (int k = 0; k < W512_TB; k++) acc[c][k] = _mm512_setzero_ps();
            for (long n = 0; n < nb; n++)
            for (long oh = 0; oh < s->oh; oh++)
                for (long q = 0; q < p->segs; q++) {
                    __mmask16 m = q == p->segs - 1 ? tail : (__mmask16)0xffff;
                    const float *xr = p->xp + n * p->img + oh * p->wp + 16 * q;
                    long go = n * Cout * P + oh * OW + 16 * q;
                    __m512 g[W512_CB], v[W512_TB];
                    for (int c = 0; c < W512_CB; c++) g[c] = _mm512_maskz_loadu_ps(m, gc[c] + go);
                    for (int k = 0; k < W512_TB; k++) v[k] = _mm512_maskz_loadu_ps(m, xr + toff[k]);
                    for (int c = 0; c < W512_CB; c++)
                        for (int k = 0; k < W512_TB; k++) acc[c][k] = _mm512_fmadd_ps(g[c], v[k], acc[c][k]);
                }
            for (int c = 0; c < W512_CB && c0 + c < Cout; c++)
                for (int k = 0; k < W512_TB && t0 + k < K; k++) {
                    float v = _mm512_reduce_add_ps(acc[c][k]);
                    float *d = gwt + (t0 + k) * Cout + c0 + c;
                    *d = first ? v : *d + v;
                }
        }
    }
}

// ---- AVX2: 8-lane segments --------------------------------------------------------------------------

#define F256_CB 4
#define F256_S 2

// A row's last 8-wide segment ends at the row's end when the row has 8 or more outputs
// (overlapping the one before it, which computes and stores the same values), so there are no
// masked stores. Rows under 8 outputs do not take the direct path.
__attribute__((target("avx2,fma"))) static void forward_avx2(const sk_conv_shape *s, const padded_t *p, const float *w,
                                                            const float *bias, float *y) {
    long K = s->c * s->kh * s->kw, OW = s->ow, P = s->oh * OW, nseg = s->oh * p->segs;
    for (long g0 = 0; g0 < nseg; g0 += F256_S) {
        const float *base[F256_S];
        long out[F256_S];
        for (int i = 0; i < F256_S; i++) {
            long g = g0 + i < nseg ? g0 + i : nseg - 1, oh = g / p->segs, q = g % p->segs;
            long o = 8 * q + 8 <= OW ? 8 * q : OW - 8;
            base[i] = p->xp + oh * p->wp + o;
            out[i] = oh * OW + o;
        }
        for (long c0 = 0; c0 < s->cout; c0 += F256_CB) {
            const float *wc[F256_CB];
            long co[F256_CB];
            for (int c = 0; c < F256_CB; c++) {
                co[c] = c0 + c < s->cout ? c0 + c : s->cout - 1;
                wc[c] = w + co[c] * K;
            }
            __m256 acc[F256_CB][F256_S];
            for (int c = 0; c < F256_CB; c++)
                for (int i = 0; i < F256_S; i++) acc[c][i] = _mm256_setzero_ps();
            for (long t = 0; t < K; t++) {
                long off = p->toff[t];
                __m256 v[F256_S];
                for (int i = 0; i < F256_S; i++) v[i] = _mm256_loadu_ps(base[i] + off);
                for (int c = 0; c < F256_CB; c++) {
                    __m256 wv = _mm256_broadcast_ss(wc[c] + t);
                    for (int i = 0; i < F256_S; i++) acc[c][i] = _mm256_fmadd_ps(wv, v[i], acc[c][i]);
                }
            }
            for (int c = 0; c < F256_CB; c++) {
                __m256 b = _mm256_set1_ps(bias ? bias[co[c]] : 0.0f);
                for (int i = 0; i < F256_S; i++)
                    _mm256_storeu_ps(y + co[c] * P + out[i], bias ? _mm256_add_ps(acc[c][i], b) : acc[c][i]);
            }
        }
    }
}

#define W256_CB 3
#define W256_TB 3

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

// The last segment of a row starts at OW - 8 like the forward's; its lanes already counted by the
// segment before are masked to zero (in both factors).
__attribute__((target("avx2,fma"))) static void weight_grad_avx2(const sk_conv_shape *s, const padded_t *p, long nb,
                                                                const float *gy, float *gwt, int first) {
    long K = s->c * s->kh * s->kw, OW = s->ow, P = s->oh * OW, Cout = s->cout;
    long last = OW - 8, seen = 8 * (p->segs - 1) - last;   // lanes [0, seen) of the last segment were counted
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 tailmask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)seen - 1)));
    long full = OW % 8 == 0 ? p->segs : p->segs - 1;   // segments without overlap
    for (long c0 = 0; c0 < Cout; c0 += W256_CB) {
        const float *gc[W256_CB];
        for (int c = 0; c < W256_CB; c++) gc[c] = gy + (c0 + c < Cout ? c0 + c : Cout - 1) * P;
        for (long t0 = 0; t0 < K; t0 += W256_TB) {
            long toff[W256_TB];
            for (int k = 0; k < W256_TB; k++) toff[k] = p->toff[t0 + k < K ? t0 + k : K - 1];
            __m256 acc[W256_CB][W256_TB];
            for (int c = 0; c < W256_CB; c++)
                for (int k = 0; k < W256_TB; k++) acc[c][k] = _mm256_setzero_ps();
            for (long n = 0; n < nb; n++)
            for (long oh = 0; oh < s->oh; oh++) {
                const float *xr = p->xp + n * p->img + oh * p->wp;
                long go = n * Cout * P + oh * OW;
                for (long q = 0; q < full; q++) {
                    __m256 g[W256_CB], v[W256_TB];
                    for (int c = 0; c < W256_CB; c++) g[c] = _mm256_loadu_ps(gc[c] + go + 8 * q);
                    for (int k = 0; k < W256_TB; k++) v[k] = _mm256_loadu_ps(xr + toff[k] + 8 * q);
                    for (int c = 0; c < W256_CB; c++)
                        for (int k = 0; k < W256_TB; k++) acc[c][k] = _mm256_fmadd_ps(g[c], v[k], acc[c][k]);
                }
                if (full < p->segs) {
                    __m256 g[W256_CB], v[W256_TB];
                    for (int c = 0; c < W256_CB; c++) g[c] = _mm256_and_ps(tailmask, _mm256_loadu_ps(gc[c] + go + last));
                    for (int k = 0; k < W256_TB; k++) v[k] = _mm256_and_ps(tailmask, _mm256_loadu_ps(xr + toff[k] + last));
                    for (int c = 0; c < W256_CB; c++)
                        for (int k = 0; k < W256_TB; k++) acc[c][k] = _mm256_fmadd_ps(g[c], v[k], acc[c][k]);
                }
            }
            for (int c = 0; c < W256_CB && c0 + c < Cout; c++)
                for (int k = 0; k < W256_TB && t0 + k < K; k++) {
                    float v = hsum256(acc[c][k]);
                    float *d = gwt + (t0 + k) * Cout + c0 + c;
                    *d = first ? v : *d + v;
                }
        }
    }
}

// ---- entry points -------------------------------------------------------------------------------------

// nb images x [nb, Cin, H, W] -> y [nb, Cout, OH, OW]; w [Cout, K] as stored; bias may be NULL.
void sk_direct_conv_forward(const sk_conv_shape *s, const float *x, long nb, const float *w, const float *bias, float *y) {
    int wide = strata_cpu_isa() >= 2;
    padded_t p;
    for (long n = 0; n < nb; n++) {
        pad_images(s, x + n * s->c * s->h * s->w, 1, wide ? 16 : 8, &p);
        float *yn = y + n * s->cout * s->oh * s->ow;
        if (wide) forward_avx512(s, &p, w, bias, yn);
        else forward_avx2(s, &p, w, bias, yn);
    }
}

// gwt [K, Cout] = (first) or += the weight gradient of nb images (gy [nb, Cout, OH, OW]).
void sk_direct_conv_weight_grad(const sk_conv_shape *s, const float *x, const float *gy, long nb, float *gwt, int first) {
    int wide = strata_cpu_isa() >= 2;
    padded_t p;
    pad_images(s, x, nb, wide ? 16 : 8, &p);
    if (wide) weight_grad_avx512(s, &p, nb, gy, gwt, first);
    else weight_grad_avx2(s, &p, nb, gy, gwt, first);
}
