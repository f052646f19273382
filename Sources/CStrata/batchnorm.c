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

// ---- training-mode batch normalisation fused with 2x2/stride-2 max pooling (+ ReLU) ---------------
// The same values and gradients as the separate ops (BatchNorm2d, then MaxPool2D(2), then ReLU),
// without the normalised full-size tensor: the forward pools each window's four normalised values
// as it makes them, and the backward takes the channel sums from the winners alone (only they get
// a gradient) and then makes gx in one pass over x. Per channel:
//   forward    v = x * scale + shift (the BN forward's expression), y = the window's max (first
//              winner in row order, as the pooling kernels), code = its position (4: ReLU zeroed
//              it), xw = the winner's x (for the backward's sums)
//   backward   gb = sum(g), gw = inv * sum(g * (xw - mean)) over winners; gx = k2 * x + k3 for
//              every input, plus k1 * g at each winner (the BN backward's k1 * gd + k2 * x + k3 with
//              the pooling's expanded gradient gd, summed in another order: equal up to rounding)
typedef struct {
    long n, c, h, w, oh, ow;
    const float *x, *wt, *b, *gy, *xw_in;
    const uint8_t *code_in;
    float *y, *xw, *gx, *gw, *gb, *mean, *var;
    uint8_t *code;
    float eps;
    int relu;
} bnp_job;

SK_BODY void bn_pool_forward_task_body(void *ctx, long ch) {
    bnp_job *j = ctx;
    bn_job bj = {.n = j->n, .c = j->c, .hw = j->h * j->w, .x = j->x};
    float mean, var;
    channel_moments(&bj, ch, &mean, &var);
    j->mean[ch] = mean;
    j->var[ch] = var;
    float scale = j->wt[ch] / sqrtf(var + j->eps), shift = j->b[ch] - mean * scale;
    long W = j->w, OW = j->ow;
    for (long i = 0; i < j->n; i++) {
        const float *x = j->x + (i * j->c + ch) * j->h * W;
        long o = (i * j->c + ch) * j->oh * OW;
        float *y = j->y + o, *xw = j->xw + o;
        uint8_t *code = j->code + o;
        for (long r = 0; r < j->oh; r++) {
            const float *r0 = x + 2 * r * W, *r1 = r0 + W;
            for (long q = 0; q < OW; q++) {
                float xte = r0[2 * q], xto = r0[2 * q + 1], xbe = r1[2 * q], xbo = r1[2 * q + 1];
                float te = xte * scale + shift, to = xto * scale + shift, be = xbe * scale + shift, bo = xbo * scale + shift;
                float top = to > te ? to : te, bot = bo > be ? bo : be;
                float m = bot > top ? bot : top;
                int c = te == m ? 0 : to == m ? 1 : be == m ? 2 : 3;
                xw[r * OW + q] = c == 0 ? xte : c == 1 ? xto : c == 2 ? xbe : xbo;
                if (j->relu) {
                    y[r * OW + q] = m <= 0.0f ? 0.0f : m;   // NaN compares false: stays NaN
                    code[r * OW + q] = (uint8_t)(m > 0.0f ? c : 4);
                } else {
                    y[r * OW + q] = m;
                    code[r * OW + q] = (uint8_t)c;
                }
            }
        }
    }
}
SK_MULTI_ISA_VOID(static, bn_pool_forward_task, (void *ctx, long ch), (ctx, ch))

void sk_batchnorm_maxpool_forward(long n, long c, long h, long w, const float *x, const float *weight, const float *bias,
                                  float *y, uint8_t *code, float *xw, float *mean, float *var, float eps, int relu) {
    bnp_job j = {.n = n, .c = c, .h = h, .w = w, .oh = h / 2, .ow = w / 2, .x = x, .wt = weight, .b = bias,
                 .y = y, .code = code, .xw = xw, .mean = mean, .var = var, .eps = eps, .relu = relu};
    strata_parallel_for(c, bn_pool_forward_task, &j);
}

SK_BODY void bn_pool_backward_task_body(void *ctx, long ch) {
    bnp_job *j = ctx;
    float mean = j->mean[ch], inv = 1 / sqrtf(j->var[ch] + j->eps);
    long W = j->w, OW = j->ow, PP = j->oh * OW;
    double sg = 0, sgx = 0;
    for (long i = 0; i < j->n; i++) {
        long o = (i * j->c + ch) * PP;
        const float *g = j->gy + o, *xw = j->xw_in + o;
        const uint8_t *code = j->code_in + o;
        float a1[16] = {0}, a2[16] = {0};
        long p = 0;
        for (; p + 16 <= PP; p += 16)
            for (int u = 0; u < 16; u++) {
                float gv = code[p + u] <= 3 ? g[p + u] : 0.0f;
                a1[u] += gv;
                a2[u] += gv * (xw[p + u] - mean);
            }
        float s1 = 0, s2 = 0;
        for (int u = 0; u < 16; u++) { s1 += a1[u]; s2 += a2[u]; }
        for (; p < PP; p++) {
            float gv = code[p] <= 3 ? g[p] : 0.0f;
            s1 += gv;
            s2 += gv * (xw[p] - mean);
        }
        sg += s1;
        sgx += s2;
    }
    double count = (double)(j->n * j->h * W);
    if (j->gb) j->gb[ch] = (float)sg;
    if (j->gw) j->gw[ch] = (float)(sgx * inv);
    if (!j->gx) return;
    float k1 = j->wt[ch] * inv;
    float k2 = (float)(-(double)k1 * inv * inv * sgx / count);
    float k3 = (float)(-(double)k1 * sg / count) - k2 * mean;
    for (long i = 0; i < j->n; i++) {
        const float *x = j->x + (i * j->c + ch) * j->h * W;
        float *gx = j->gx + (i * j->c + ch) * j->h * W;
        const float *g = j->gy + (i * j->c + ch) * PP;
        const uint8_t *code = j->code_in + (i * j->c + ch) * PP;
        for (long r = 0; r < j->h; r += 2) {
            long rows = r + 1 < j->h ? 2 : 1;
            // Every input as if its gradient were zero (a contiguous loop that vectorises; stride-2
            // window stores measured slower than the separate ops), then the winners' k1 * g added
            // while the two rows are in L1 (branch-free: a window without one adds 0 to its first).
            for (long t = 0; t < rows * W; t++) gx[r * W + t] = k2 * x[r * W + t] + k3;
            if (r / 2 >= j->oh) continue;
            const uint8_t *cr = code + (r / 2) * OW;
            const float *gr = g + (r / 2) * OW;
            float *g0 = gx + r * W;
            for (long q = 0; q < OW; q++) {
                int cd = cr[q], won = cd <= 3;
                long pos = won ? (cd >> 1) * W + 2 * q + (cd & 1) : 2 * q;
                g0[pos] += won ? k1 * gr[q] : 0.0f;
            }
        }
    }
}
SK_MULTI_ISA_VOID(static, bn_pool_backward_task, (void *ctx, long ch), (ctx, ch))

void sk_batchnorm_maxpool_backward(long n, long c, long h, long w, const float *x, const float *weight, const float *mean,
                                   const float *var, const uint8_t *code, const float *xw, const float *gy, float eps,
                                   float *gx, float *gw, float *gb) {
    bnp_job j = {.n = n, .c = c, .h = h, .w = w, .oh = h / 2, .ow = w / 2, .x = x, .wt = weight, .gy = gy, .xw_in = xw,
                 .code_in = code, .gx = gx, .gw = gw, .gb = gb, .mean = (float *)mean, .var = (float *)var, .eps = eps};
    strata_parallel_for(c, bn_pool_backward_task, &j);
}
