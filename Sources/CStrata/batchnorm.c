// Batch normalisation over the channel axis of x [N, C, HW] (HW = 1 for [N, C]), forward and
// backward as a pair. One task per channel; sums use 16 partial lanes so they vectorise.
#include "strata_kernels.h"
#include "multi_isa.h"
#include "vec4.h"
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
    float *k;                 // backward: k1, k2, k3 of each channel
    uint8_t *code;
    float eps;
    int relu, stream, by_channel;
} bnp_job;

// Each pass takes the sums over the batch per channel, then makes its output plane by plane (one
// image's channel). Where a channel's x fits in L2 (BY_CHANNEL_MAX bytes), one task per channel
// does both, and its second read of x hits the cache. Larger channels take two jobs, the second
// over the planes in memory order: a channel's planes are C * H * W floats apart, and a probe that
// walked them a channel at a task (64 images of 32 x 64 x 64, AVX2) stored at 13 GB/s, against 32
// in memory order and 43 with streaming stores.
// What the next kernel does not read at once (the forward's xw, the backward's gx) is written past
// the caches where the vector loop writes all of it: rows of whole vectors, 16-byte aligned, and
// no line shared with the stores of a scalar tail. (A 12 x 12 backward, whose tail columns went
// through the cache into the same lines, ran 20x slower than with no streaming at all.)
#define BY_CHANNEL_MAX (512 * 1024)

// Four windows of the forward at once (x: their two rows, 8 floats each), with the scalar loop's
// comparisons in the same order, so the same winners, codes and values (NaN included).
SK_BODY void pool4(const float *r0, const float *r1, float scale, float shift, int relu, float *y, float *xw, uint8_t *code,
                   const int stream) {
    wf4 p0 = load4(r0), p1 = load4(r0 + 4), q0 = load4(r1), q1 = load4(r1 + 4);
    wf4 xte = __builtin_shufflevector(p0, p1, 0, 2, 4, 6), xto = __builtin_shufflevector(p0, p1, 1, 3, 5, 7);
    wf4 xbe = __builtin_shufflevector(q0, q1, 0, 2, 4, 6), xbo = __builtin_shufflevector(q0, q1, 1, 3, 5, 7);
    wf4 te = xte * scale + shift, to = xto * scale + shift, be = xbe * scale + shift, bo = xbo * scale + shift;
    wf4 top = select4(to > te, to, te), bot = select4(bo > be, bo, be);
    wf4 m = select4(bot > top, bot, top);
    // Lowest priority first, so the first equal position in row order wins.
    wi4 c = {3, 3, 3, 3};
    wf4 w = xbo;
    wi4 e = be == m;
    c = select4i(e, (wi4){2, 2, 2, 2}, c);
    w = select4(e, xbe, w);
    e = to == m;
    c = select4i(e, (wi4){1, 1, 1, 1}, c);
    w = select4(e, xto, w);
    e = te == m;
    c = select4i(e, (wi4){0, 0, 0, 0}, c);
    w = select4(e, xte, w);
    if (relu) {
        m = select4(m <= 0.0f, (wf4){0, 0, 0, 0}, m);   // NaN compares false: stays NaN
        c = select4i(m > 0.0f, c, (wi4){4, 4, 4, 4});
    }
    store4(y, m);
    store4_u8(code, c);
    if (stream) store4_stream(xw, w);
    else store4(xw, w);
}

// Plane p = i * C + ch of the forward.
SK_BODY void forward_plane(const bnp_job *j, long p) {
    long ch = p % j->c, W = j->w, OW = j->ow;
    float scale = j->wt[ch] / sqrtf(j->var[ch] + j->eps), shift = j->b[ch] - j->mean[ch] * scale;
    const float *x = j->x + p * j->h * W;
    long o = p * j->oh * OW;
    float *y = j->y + o, *xw = j->xw + o;
    uint8_t *code = j->code + o;
    for (long r = 0; r < j->oh; r++) {
        const float *r0 = x + 2 * r * W, *r1 = r0 + W;
        long q = 0;
        if (j->stream)
            for (; q + 4 <= OW; q += 4)
                pool4(r0 + 2 * q, r1 + 2 * q, scale, shift, j->relu, y + r * OW + q, xw + r * OW + q, code + r * OW + q, 1);
        else
            for (; q + 4 <= OW; q += 4)
                pool4(r0 + 2 * q, r1 + 2 * q, scale, shift, j->relu, y + r * OW + q, xw + r * OW + q, code + r * OW + q, 0);
        for (; q < OW; q++) {
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

SK_BODY void bn_pool_moments_task_body(void *ctx, long ch) {
    bnp_job *j = ctx;
    bn_job bj = {.n = j->n, .c = j->c, .hw = j->h * j->w, .x = j->x};
    channel_moments(&bj, ch, &j->mean[ch], &j->var[ch]);
    if (!j->by_channel) return;
    for (long i = 0; i < j->n; i++) forward_plane(j, i * j->c + ch);
    if (j->stream) stream_fence();
}
SK_MULTI_ISA_VOID(static, bn_pool_moments_task, (void *ctx, long ch), (ctx, ch))

SK_BODY void bn_pool_forward_task_body(void *ctx, long p) {
    forward_plane(ctx, p);
    if (((bnp_job *)ctx)->stream) stream_fence();
}
SK_MULTI_ISA_VOID(static, bn_pool_forward_task, (void *ctx, long p), (ctx, p))

void sk_batchnorm_maxpool_forward(long n, long c, long h, long w, const float *x, const float *weight, const float *bias,
                                  float *y, uint8_t *code, float *xw, float *mean, float *var, float eps, int relu) {
    bnp_job j = {.n = n, .c = c, .h = h, .w = w, .oh = h / 2, .ow = w / 2, .x = x, .wt = weight, .b = bias,
                 .y = y, .code = code, .xw = xw, .mean = mean, .var = var, .eps = eps, .relu = relu,
                 .stream = (uintptr_t)xw % 16 == 0 && (w / 2) % 4 == 0,
                 .by_channel = n * h * w * (long)sizeof(float) <= BY_CHANNEL_MAX};
    strata_parallel_for(c, bn_pool_moments_task, &j);
    if (!j.by_channel) strata_parallel_for(n * c, bn_pool_forward_task, &j);
}

// Per channel: gb, gw, and gx's k1, k2, k3 (when gx is wanted).
SK_BODY void channel_grad_sums(const bnp_job *j, long ch) {
    float mean = j->mean[ch], inv = 1 / sqrtf(j->var[ch] + j->eps);
    long PP = j->oh * j->ow;
    double sg = 0, sgx = 0;
    for (long i = 0; i < j->n; i++) {
        long o = (i * j->c + ch) * PP;
        const float *g = j->gy + o, *xw = j->xw_in + o;
        const uint8_t *code = j->code_in + o;
        float a1[16] = {0}, a2[16] = {0};
        long p = 0;
        for (; p + 16 <= PP; p += 16)
            for (int u = 0; u < 16; u++) {
                float gl = g[p + u], gv = code[p + u] <= 3 ? gl : 0.0f;   // (a plain load, not a masked one)
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
    double count = (double)(j->n * j->h * j->w);
    if (j->gb) j->gb[ch] = (float)sg;
    if (j->gw) j->gw[ch] = (float)(sgx * inv);
    if (!j->gx) return;
    float k1 = j->wt[ch] * inv;
    float k2 = (float)(-(double)k1 * inv * inv * sgx / count);
    float k3 = (float)(-(double)k1 * sg / count) - k2 * mean;
    j->k[3 * ch] = k1;
    j->k[3 * ch + 1] = k2;
    j->k[3 * ch + 2] = k3;
}

// gx of four windows' two rows (x0, x1: 8 floats each): k2 * x + k3 everywhere, plus k1 * g at
// each window's winner (code 0-3; 4: none), in registers before one store per 4 floats. (The
// scalar loop stored the rows, then added each winner with a load and a store.)
SK_BODY void unpool4(const float *x0, const float *x1, const float *g, const uint8_t *code, float k1, float k2, float k3,
                     float *gx0, float *gx1, const int stream) {
    wi4 c = load4_u8(code);
    wf4 kg = k1 * load4(g), zero = {0, 0, 0, 0};
    wf4 a0 = select4(c == 0, kg, zero), a1 = select4(c == 1, kg, zero);
    wf4 a2 = select4(c == 2, kg, zero), a3 = select4(c == 3, kg, zero);
    wf4 u0 = k2 * load4(x0) + k3, u1 = k2 * load4(x0 + 4) + k3;
    wf4 v0 = k2 * load4(x1) + k3, v1 = k2 * load4(x1 + 4) + k3;
    wf4 s0 = u0 + __builtin_shufflevector(a0, a1, 0, 4, 1, 5), s1 = u1 + __builtin_shufflevector(a0, a1, 2, 6, 3, 7);
    wf4 s2 = v0 + __builtin_shufflevector(a2, a3, 0, 4, 1, 5), s3 = v1 + __builtin_shufflevector(a2, a3, 2, 6, 3, 7);
    if (stream) {
        store4_stream(gx0, s0); store4_stream(gx0 + 4, s1); store4_stream(gx1, s2); store4_stream(gx1 + 4, s3);
    } else {
        store4(gx0, s0); store4(gx0 + 4, s1); store4(gx1, s2); store4(gx1 + 4, s3);
    }
}

// gx of plane p = i * C + ch.
SK_BODY void backward_plane(const bnp_job *j, long p) {
    long ch = p % j->c, W = j->w, OW = j->ow;
    float k1 = j->k[3 * ch], k2 = j->k[3 * ch + 1], k3 = j->k[3 * ch + 2];
    const float *x = j->x + p * j->h * W;
    float *gx = j->gx + p * j->h * W;
    const float *g = j->gy + p * j->oh * OW;
    const uint8_t *code = j->code_in + p * j->oh * OW;
    for (long r = 0; r < j->h; r += 2) {
        long rows = r + 1 < j->h ? 2 : 1;
        // A row outside the windows (odd H) has BN's part alone; windows go 4 at a time, then the
        // odd column and the last windows (branch-free: a window without a winner adds 0 to its
        // first).
        if (r / 2 >= j->oh) {
            for (long t = 0; t < rows * W; t++) gx[r * W + t] = k2 * x[r * W + t] + k3;
            continue;
        }
        const uint8_t *cr = code + (r / 2) * OW;
        const float *gr = g + (r / 2) * OW;
        float *g0 = gx + r * W;
        long q0 = OW & ~3L;
        if (j->stream)
            for (long q = 0; q < q0; q += 4)
                unpool4(x + r * W + 2 * q, x + (r + 1) * W + 2 * q, gr + q, cr + q, k1, k2, k3, g0 + 2 * q, g0 + W + 2 * q, 1);
        else
            for (long q = 0; q < q0; q += 4)
                unpool4(x + r * W + 2 * q, x + (r + 1) * W + 2 * q, gr + q, cr + q, k1, k2, k3, g0 + 2 * q, g0 + W + 2 * q, 0);
        for (long t = 2 * q0; t < W; t++) {
            g0[t] = k2 * x[r * W + t] + k3;
            g0[W + t] = k2 * x[(r + 1) * W + t] + k3;
        }
        for (long q = q0; q < OW; q++) {
            int cd = cr[q], won = cd <= 3;
            long pos = won ? (cd >> 1) * W + 2 * q + (cd & 1) : 2 * q;
            g0[pos] += won ? k1 * gr[q] : 0.0f;
        }
    }
}

SK_BODY void bn_pool_sums_task_body(void *ctx, long ch) {
    bnp_job *j = ctx;
    channel_grad_sums(j, ch);
    if (!j->by_channel || !j->gx) return;
    for (long i = 0; i < j->n; i++) backward_plane(j, i * j->c + ch);
    if (j->stream) stream_fence();
}
SK_MULTI_ISA_VOID(static, bn_pool_sums_task, (void *ctx, long ch), (ctx, ch))

SK_BODY void bn_pool_backward_task_body(void *ctx, long p) {
    backward_plane(ctx, p);
    if (((bnp_job *)ctx)->stream) stream_fence();
}
SK_MULTI_ISA_VOID(static, bn_pool_backward_task, (void *ctx, long p), (ctx, p))

void sk_batchnorm_maxpool_backward(long n, long c, long h, long w, const float *x, const float *weight, const float *mean,
                                   const float *var, const uint8_t *code, const float *xw, const float *gy, float eps,
                                   float *gx, float *gw, float *gb) {
    bnp_job j = {.n = n, .c = c, .h = h, .w = w, .oh = h / 2, .ow = w / 2, .x = x, .wt = weight, .gy = gy, .xw_in = xw,
                 .code_in = code, .gx = gx, .gw = gw, .gb = gb, .mean = (float *)mean, .var = (float *)var, .eps = eps,
                 .stream = (uintptr_t)gx % 16 == 0 && w % 8 == 0 && (h % 2 == 0 || w % 16 == 0),
                 .by_channel = n * h * w * (long)sizeof(float) <= BY_CHANNEL_MAX};
    if (gx) j.k = sk_scratch(0, (size_t)3 * c);   // the caller's; no task here uses scratch
    strata_parallel_for(c, bn_pool_sums_task, &j);
    if (gx && !j.by_channel) strata_parallel_for(n * c, bn_pool_backward_task, &j);
}
