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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// ---- per-thread scratch that only grows (no allocation in steady state) -------------------------

#define SCRATCH_SLOTS 3
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
CLONES static void im2col(const sk_conv_shape *s, long cg, const float *x, float *col) {
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow;
    for (long c = 0; c < cg; c++)
        for (long kh = 0; kh < s->kh; kh++)
            for (long kw = 0; kw < s->kw; kw++) {
                float *row = col + ((c * s->kh + kh) * s->kw + kw) * OH * OW;
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

// gx[Cg, H, W] += col2im(gcol[Cg*KH*KW, OH*OW])
CLONES static void col2im(const sk_conv_shape *s, long cg, const float *gcol, float *gx) {
    long H = s->h, W = s->w, OH = s->oh, OW = s->ow;
    for (long c = 0; c < cg; c++)
        for (long kh = 0; kh < s->kh; kh++)
            for (long kw = 0; kw < s->kw; kw++) {
                const float *row = gcol + ((c * s->kh + kh) * s->kw + kw) * OH * OW;
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

static int is_pointwise(const sk_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0;
}

// ---- forward -------------------------------------------------------------------------------------

typedef struct {
    const sk_conv_shape *s;
    const float *x, *w, *bias, *gy;
    float *y, *gx, *gw, *gb;
    long per;          // images per task
    float *partials;   // backward: one gw (+ gb) block per task
    int threaded_gemm; // 1: one task, GEMMs use the pool
} conv_job;

static void conv_forward_image(const conv_job *j, long n) {
    const sk_conv_shape *s = j->s;
    long G = s->groups, cg = s->c / G, cog = s->cout / G;
    long K = cg * s->kh * s->kw, P = s->oh * s->ow;
    const float *xn = j->x + n * s->c * s->h * s->w;
    float *yn = j->y + n * s->cout * P;
    for (long g = 0; g < G; g++) {
        const float *xg = xn + g * cg * s->h * s->w;
        const float *col = xg;
        if (!is_pointwise(s)) {
            float *buf = sk_scratch(0, (size_t)K * P);
            im2col(s, cg, xg, buf);
            col = buf;
        }
        float *yg = yn + g * cog * P;
        if (j->threaded_gemm) strata_sgemm(0, 0, cog, P, K, 1.0f, j->w + g * cog * K, K, col, P, 0.0f, yg, P);
        else strata_sgemm_serial(0, 0, cog, P, K, 1.0f, j->w + g * cog * K, K, col, P, 0.0f, yg, P);
    }
    if (j->bias)
        for (long co = 0; co < s->cout; co++) {
            float b = j->bias[co];
            float *r = yn + co * P;
            for (long p = 0; p < P; p++) r[p] += b;
        }
}

static void conv_forward_task(void *ctx, long t) {
    const conv_job *j = ctx;
    long n0 = t * j->per, n1 = n0 + j->per < j->s->n ? n0 + j->per : j->s->n;
    for (long n = n0; n < n1; n++) conv_forward_image(j, n);
}

void sk_conv2d_forward(const sk_conv_shape *s, const float *x, const float *w, const float *bias,
                       float *y) {
    conv_job j = {s, x, w, bias, 0, y, 0, 0, 0, 1, 0, 0};
    int threads = strata_get_num_threads();
    if (s->n >= threads && threads > 1) {
        long tasks = threads * 4 < s->n ? threads * 4 : s->n;
        j.per = (s->n + tasks - 1) / tasks;
        tasks = (s->n + j.per - 1) / j.per;
        strata_parallel_for(tasks, conv_forward_task, &j);
    } else {
        j.threaded_gemm = 1;
        for (long n = 0; n < s->n; n++) conv_forward_image(&j, n);
    }
}

// ---- backward ------------------------------------------------------------------------------------

static void conv_backward_image(const conv_job *j, long n, float *gw, float *gb) {
    const sk_conv_shape *s = j->s;
    long G = s->groups, cg = s->c / G, cog = s->cout / G;
    long K = cg * s->kh * s->kw, P = s->oh * s->ow;
    const float *xn = j->x + n * s->c * s->h * s->w;
    const float *gyn = j->gy + n * s->cout * P;
    int tg = j->threaded_gemm;
    for (long g = 0; g < G; g++) {
        const float *gyg = gyn + g * cog * P;
        if (gw) {
            const float *xg = xn + g * cg * s->h * s->w;
            const float *col = xg;
            if (!is_pointwise(s)) {
                float *buf = sk_scratch(0, (size_t)K * P);
                im2col(s, cg, xg, buf);
                col = buf;
            }
            // gw[g][cog, K] += gy[cog, P] @ col[K, P]^T
            if (tg) strata_sgemm(0, 1, cog, K, P, 1.0f, gyg, P, col, P, 1.0f, gw + g * cog * K, K);
            else strata_sgemm_serial(0, 1, cog, K, P, 1.0f, gyg, P, col, P, 1.0f, gw + g * cog * K, K);
        }
        if (j->gx) {
            float *gxg = j->gx + n * s->c * s->h * s->w + g * cg * s->h * s->w;
            if (is_pointwise(s)) {
                // gx[cg, P] = w^T[cg, cog] @ gy[cog, P]
                if (tg) strata_sgemm(1, 0, K, P, cog, 1.0f, j->w + g * cog * K, K, gyg, P, 0.0f, gxg, P);
                else strata_sgemm_serial(1, 0, K, P, cog, 1.0f, j->w + g * cog * K, K, gyg, P, 0.0f, gxg, P);
            } else {
                float *gcol = sk_scratch(1, (size_t)K * P);
                if (tg) strata_sgemm(1, 0, K, P, cog, 1.0f, j->w + g * cog * K, K, gyg, P, 0.0f, gcol, P);
                else strata_sgemm_serial(1, 0, K, P, cog, 1.0f, j->w + g * cog * K, K, gyg, P, 0.0f, gcol, P);
                memset(gxg, 0, (size_t)cg * s->h * s->w * sizeof(float));
                col2im(s, cg, gcol, gxg);
            }
        }
    }
    if (gb)
        for (long co = 0; co < s->cout; co++) {
            const float *r = gyn + co * P;
            float acc = 0;
            for (long p = 0; p < P; p++) acc += r[p];
            gb[co] += acc;
        }
}

static void conv_backward_task(void *ctx, long t) {
    const conv_job *j = ctx;
    const sk_conv_shape *s = j->s;
    long wsize = s->cout * (s->c / s->groups) * s->kh * s->kw;
    float *gw = j->gw ? j->partials + t * (wsize + s->cout) : 0;
    float *gb = j->gb ? j->partials + t * (wsize + s->cout) + wsize : 0;
    if (gw) memset(gw, 0, (size_t)wsize * sizeof(float));
    if (gb) memset(gb, 0, (size_t)s->cout * sizeof(float));
    long n0 = t * j->per, n1 = n0 + j->per < s->n ? n0 + j->per : s->n;
    for (long n = n0; n < n1; n++) conv_backward_image(j, n, gw, gb);
}

// gx, gw, gb may each be NULL (not needed). gw and gb are overwritten, not accumulated.
void sk_conv2d_backward(const sk_conv_shape *s, const float *x, const float *w, const float *gy,
                        float *gx, float *gw, float *gb) {
    conv_job j = {s, x, w, 0, gy, 0, gx, gw, gb, 1, 0, 0};
    long wsize = s->cout * (s->c / s->groups) * s->kh * s->kw;
    int threads = strata_get_num_threads();
    if (s->n >= threads && threads > 1) {
        long tasks = threads;
        j.per = (s->n + tasks - 1) / tasks;
        tasks = (s->n + j.per - 1) / j.per;
        j.partials = sk_scratch(2, (size_t)tasks * (wsize + s->cout));
        strata_parallel_for(tasks, conv_backward_task, &j);
        // Fixed-order sum of the per-task partials keeps results reproducible.
        for (long t = 0; t < tasks; t++) {
            const float *p = j.partials + t * (wsize + s->cout);
            if (gw) { if (t == 0) memcpy(gw, p, (size_t)wsize * sizeof(float)); else for (long i = 0; i < wsize; i++) gw[i] += p[i]; }
            if (gb) { if (t == 0) memcpy(gb, p + wsize, (size_t)s->cout * sizeof(float)); else for (long i = 0; i < s->cout; i++) gb[i] += p[wsize + i]; }
        }
    } else {
        j.threaded_gemm = 1;
        if (gw) memset(gw, 0, (size_t)wsize * sizeof(float));
        if (gb) memset(gb, 0, (size_t)s->cout * sizeof(float));
        for (long n = 0; n < s->n; n++) conv_backward_image(&j, n, gw, gb);
    }
}

// ---- pooling -------------------------------------------------------------------------------------
// Planes are (n, c) pairs; each runs independently.

typedef struct {
    const sk_pool_shape *s;
    const float *x, *gy;
    float *y, *gx;
    int32_t *idx;
    int avg;
} pool_job;

// 2x2 windows, stride 2, no padding: the common case, branch-free so it vectorises.
CLONES static void maxpool_2x2(long H, long W, long OH, long OW, const float *x, float *y, int32_t *id) {
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

static void maxpool_plane(const pool_job *j, long plane) {
    const sk_pool_shape *s = j->s;
    const float *x = j->x + plane * s->h * s->w;
    float *y = j->y + plane * s->oh * s->ow;
    int32_t *id = j->idx ? j->idx + plane * s->oh * s->ow : 0;
    if (s->kh == 2 && s->kw == 2 && s->sh == 2 && s->sw == 2 && s->ph == 0 && s->pw == 0 && s->dh == 1 && s->dw == 1) {
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

static void avgpool_plane(const pool_job *j, long plane) {
    const sk_pool_shape *s = j->s;
    const float *x = j->x + plane * s->h * s->w;
    float *y = j->y + plane * s->oh * s->ow;
    float inv = 1.0f / (float)(s->kh * s->kw);
    for (long oh = 0; oh < s->oh; oh++)
        for (long ow = 0; ow < s->ow; ow++) {
            float acc = 0;
            for (long kh = 0; kh < s->kh; kh++) {
                long ih = oh * s->sh - s->ph + kh;
                if (ih < 0 || ih >= s->h) continue;
                for (long kw = 0; kw < s->kw; kw++) {
                    long iw = ow * s->sw - s->pw + kw;
                    if (iw >= 0 && iw < s->w) acc += x[ih * s->w + iw];
                }
            }
            y[oh * s->ow + ow] = acc * inv;
        }
}

static void pool_backward_plane(const pool_job *j, long plane) {
    const sk_pool_shape *s = j->s;
    const float *gy = j->gy + plane * s->oh * s->ow;
    float *gx = j->gx + plane * s->h * s->w;
    memset(gx, 0, (size_t)s->h * s->w * sizeof(float));
    if (!j->avg) {
        const int32_t *id = j->idx + plane * s->oh * s->ow;
        for (long o = 0; o < s->oh * s->ow; o++)
            if (id[o] >= 0) gx[id[o]] += gy[o];
        return;
    }
    float inv = 1.0f / (float)(s->kh * s->kw);
    for (long oh = 0; oh < s->oh; oh++)
        for (long ow = 0; ow < s->ow; ow++) {
            float g = gy[oh * s->ow + ow] * inv;
            for (long kh = 0; kh < s->kh; kh++) {
                long ih = oh * s->sh - s->ph + kh;
                if (ih < 0 || ih >= s->h) continue;
                for (long kw = 0; kw < s->kw; kw++) {
                    long iw = ow * s->sw - s->pw + kw;
                    if (iw >= 0 && iw < s->w) gx[ih * s->w + iw] += g;
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

void sk_avgpool2d_forward(const sk_pool_shape *s, const float *x, float *y) {
    pool_job j = {s, x, 0, y, 0, 0, 1};
    run_planes(s, pool_forward_task, &j);
}

void sk_avgpool2d_backward(const sk_pool_shape *s, const float *gy, float *gx) {
    pool_job j = {s, 0, gy, 0, gx, 0, 1};
    run_planes(s, pool_backward_task, &j);
}
