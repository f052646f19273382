// Batch normalisation over the channel axis of x [N, C, HW] (HW = 1 for [N, C]), forward and
// backward as a pair. One task per channel; sums use 16 partial lanes so they vectorise.
#include "strata_kernels.h"
#include "multi_isa.h"
#include <math.h>

typedef struct {
    long n, c, hw;
    const float *x, *w, *b, *gy;
    float *y, *gx, *gw, *gb;
    float *mean, *var;        // forward: batch statistics out (training) or running ones in
    float eps;
    int training;
} bn_job;

// Sums of d = x - k and of d^2 over one channel's rows [i0, i1) of HW floats.
SK_BODY void channel_sums_body(const bn_job *j, long ch, long i0, long i1, float k, double *sum, double *sq) {
    double t1 = 0, t2 = 0;
    for (long i = i0; i < i1; i++) {
        const float *x = j->x + (i * j->c + ch) * j->hw;
        float a1[16] = {0}, a2[16] = {0};
        long p = 0;
        // Two loops over the row (in L1 by the second) vectorise better than one with both sums.
        for (; p + 16 <= j->hw; p += 16)
            for (int u = 0; u < 16; u++) a1[u] += x[p + u] - k;
        for (long q = 0; q + 16 <= j->hw; q += 16)
            for (int u = 0; u < 16; u++) { float d = x[q + u] - k; a2[u] += d * d; }
        float s1 = 0, s2 = 0;
        for (int u = 0; u < 16; u++) { s1 += a1[u]; s2 += a2[u]; }
        for (; p < j->hw; p++) { float d = x[p] - k; s1 += d; s2 += d * d; }
        t1 += s1;
        t2 += s2;
    }
    *sum = t1;
    if (sq) *sq = t2;
}
SK_MULTI_ISA_VOID(static, channel_sums, (const bn_job *j, long ch, long i0, long i1, float k, double *sum, double *sq), (j, ch, i0, i1, k, sum, sq))

// Mean and (biased) variance of one channel in one pass over x: var = E[d^2] - E[d]^2 with
// d = x - k, where the shift k is the mean of the channel's first images (at least 256 values),
// so E[d] is a small fraction of the spread and the subtraction loses almost nothing. (Two
// passes, mean then squared deviations, read x once more.)
static void channel_moments(const bn_job *j, long ch, float *mean, float *var) {
    long first = (256 + j->hw - 1) / j->hw;
    if (first > j->n) first = j->n;
    double s0;
    channel_sums(j, ch, 0, first, 0.0f, &s0, NULL);
    float k = (float)(s0 / (double)(first * j->hw));
    double s1, s2, count = (double)(j->n * j->hw);
    channel_sums(j, ch, 0, j->n, k, &s1, &s2);
    double md = s1 / count, v = s2 / count - md * md;
    *mean = (float)(k + md);
    *var = v < 0 ? 0.0f : (float)v;   // rounding can go just below 0; NaN stays NaN
}

SK_BODY void bn_forward_task_body(void *ctx, long ch) {
    bn_job *j = ctx;
    float mean, var;
    if (j->training) {
        channel_moments(j, ch, &mean, &var);
        j->mean[ch] = mean;
        j->var[ch] = var;
    } else {
        mean = j->mean[ch];
        var = j->var[ch];
    }
    float scale = j->w[ch] / sqrtf(var + j->eps), shift = j->b[ch] - mean * scale;
    for (long i = 0; i < j->n; i++) {
        const float *x = j->x + (i * j->c + ch) * j->hw;
        float *y = j->y + (i * j->c + ch) * j->hw;
        for (long p = 0; p < j->hw; p++) y[p] = x[p] * scale + shift;
    }
}
SK_MULTI_ISA_VOID(static, bn_forward_task, (void *ctx, long ch), (ctx, ch))

void sk_batchnorm_forward(long n, long c, long hw, const float *x, const float *w, const float *b, float *y,
                          float *mean, float *var, float eps, int training) {
    bn_job j = {.n = n, .c = c, .hw = hw, .x = x, .w = w, .b = b, .y = y, .mean = mean, .var = var, .eps = eps, .training = training};
    strata_parallel_for(c, bn_forward_task, &j);
}

// Per channel, with xhat = (x - mean) * inv and M = N * HW:
//   gb = sum(gy), gw = sum(gy * xhat), gx = w * inv * (gy - gb / M - xhat * gw / M).
SK_BODY void bn_backward_task_body(void *ctx, long ch) {
    bn_job *j = ctx;
    float mean = j->mean[ch], inv = 1 / sqrtf(j->var[ch] + j->eps);
    double sg = 0, sgx = 0;
    for (long i = 0; i < j->n; i++) {
        const float *x = j->x + (i * j->c + ch) * j->hw, *g = j->gy + (i * j->c + ch) * j->hw;
        float a1[16] = {0}, a2[16] = {0};
        long p = 0;
        for (; p + 16 <= j->hw; p += 16)
            for (int u = 0; u < 16; u++) { a1[u] += g[p + u]; a2[u] += g[p + u] * (x[p + u] - mean); }
        float s1 = 0, s2 = 0;
        for (int u = 0; u < 16; u++) { s1 += a1[u]; s2 += a2[u]; }
        for (; p < j->hw; p++) { s1 += g[p]; s2 += g[p] * (x[p] - mean); }
        sg += s1;
        sgx += s2;
    }
    double count = (double)(j->n * j->hw);
    if (j->gb) j->gb[ch] = (float)sg;
    if (j->gw) j->gw[ch] = (float)(sgx * inv);
    if (!j->gx) return;
    // gx = k1 * gy + k2 * x + k3
    float k1 = j->w[ch] * inv;
    float k2 = (float)(-(double)k1 * inv * inv * sgx / count);
    float k3 = (float)(-(double)k1 * sg / count) - k2 * mean;
    for (long i = 0; i < j->n; i++) {
        const float *x = j->x + (i * j->c + ch) * j->hw, *g = j->gy + (i * j->c + ch) * j->hw;
        float *gx = j->gx + (i * j->c + ch) * j->hw;
        for (long p = 0; p < j->hw; p++) gx[p] = k1 * g[p] + k2 * x[p] + k3;
    }
}
SK_MULTI_ISA_VOID(static, bn_backward_task, (void *ctx, long ch), (ctx, ch))

void sk_batchnorm_backward(long n, long c, long hw, const float *x, const float *w, const float *mean, const float *var,
                           const float *gy, float eps, float *gx, float *gw, float *gb) {
    bn_job j = {.n = n, .c = c, .hw = hw, .x = x, .w = w, .gy = gy, .gx = gx, .gw = gw, .gb = gb,
                .mean = (float *)mean, .var = (float *)var, .eps = eps};
    strata_parallel_for(c, bn_backward_task, &j);
}
