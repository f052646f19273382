// Reductions over the middle axis of an (outer, r, inner) view, and softmax along that axis.
#include "strata_kernels.h"
#include "multi_isa.h"
#include "mathfun.h"
#include <string.h>

// Sum of n contiguous floats with 16 independent partial sums (vectorises; fixed order).
SK_BODY float sk_sum_body(long n, const float *x) {
    float acc[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int u = 0; u < 16; u++) acc[u] += x[i + u];
    float s = 0;
    for (int u = 0; u < 16; u++) s += acc[u];
    for (; i < n; i++) s += x[i];
    return s;
}
SK_MULTI_ISA(, float, sk_sum, (long n, const float *x), (n, x))

// Max (or min) of n contiguous floats; NaN if any element is NaN. 16 lanes so it vectorises.
SK_BODY float max_contig_body(long n, const float *x, int want_min) {
    float acc[16];
    int nan[16] = {0};
    for (int u = 0; u < 16; u++) acc[u] = x[0];
    long i = 0;
    if (want_min) {
        for (; i + 16 <= n; i += 16)
            for (int u = 0; u < 16; u++) { float v = x[i + u]; acc[u] = v < acc[u] ? v : acc[u]; nan[u] |= v != v; }
    } else {
        for (; i + 16 <= n; i += 16)
            for (int u = 0; u < 16; u++) { float v = x[i + u]; acc[u] = v > acc[u] ? v : acc[u]; nan[u] |= v != v; }
    }
    float m = acc[0];
    int any = 0;
    for (int u = 0; u < 16; u++) { m = want_min ? (acc[u] < m ? acc[u] : m) : (acc[u] > m ? acc[u] : m); any |= nan[u]; }
    for (; i < n; i++) { float v = x[i]; m = want_min ? (v < m ? v : m) : (v > m ? v : m); any |= v != v; }
    return any ? __builtin_nanf("") : m;
}
SK_MULTI_ISA(static, float, max_contig, (long n, const float *x, int want_min), (n, x, want_min))

// out[o, i] = reduce_j x[o, j, i]
typedef struct {
    int op;
    long outer, r, inner;
    const float *x;
    float *out;
} reduce_job;

SK_BODY void reduce_one_body(const reduce_job *j, long o) {
    const float *x = j->x + o * j->r * j->inner;
    float *out = j->out + o * j->inner;
    long r = j->r, inner = j->inner;
    if (inner == 1) {
        switch (j->op) {
        case SK_R_SUM: out[0] = sk_sum(r, x); break;
        case SK_R_MAX: out[0] = max_contig(r, x, 0); break;
        case SK_R_MIN: out[0] = max_contig(r, x, 1); break;
        case SK_R_ARGMAX:
        case SK_R_ARGMIN: {
            long best = 0;
            for (long k = 1; k < r; k++)
                if (j->op == SK_R_ARGMAX ? x[k] > x[best] : x[k] < x[best]) best = k;
            out[0] = (float)best;
            break;
        }
        }
        return;
    }
    switch (j->op) {
    case SK_R_SUM:
        memcpy(out, x, (size_t)inner * sizeof(float));
        for (long k = 1; k < r; k++) {
            const float *xk = x + k * inner;
            for (long i = 0; i < inner; i++) out[i] += xk[i];
        }
        break;
    case SK_R_MAX:
    case SK_R_MIN:
        memcpy(out, x, (size_t)inner * sizeof(float));
        for (long k = 1; k < r; k++) {
            const float *xk = x + k * inner;
            if (j->op == SK_R_MAX)
                for (long i = 0; i < inner; i++) out[i] = (xk[i] > out[i] || xk[i] != xk[i]) ? xk[i] : out[i];
            else
                for (long i = 0; i < inner; i++) out[i] = (xk[i] < out[i] || xk[i] != xk[i]) ? xk[i] : out[i];
        }
        break;
    case SK_R_ARGMAX:
    case SK_R_ARGMIN:
        for (long i = 0; i < inner; i++) {
            long best = 0;
            for (long k = 1; k < r; k++) {
                float v = x[k * inner + i], b = x[best * inner + i];
                if (j->op == SK_R_ARGMAX ? v > b : v < b) best = k;
            }
            out[i] = (float)best;
        }
        break;
    }
}
SK_MULTI_ISA_VOID(static, reduce_one, (const reduce_job *j, long o), (j, o))

static void reduce_task(void *ctx, long o) { reduce_one(ctx, o); }

typedef struct {
    const reduce_job *j;
    long chunk;
} reduce_split;

// When outer is small, split the inner axis instead so both cores work.
static void reduce_inner_task(void *ctx, long t) {
    const reduce_split *s = ctx;
    const reduce_job *j = s->j;
    long i0 = t * s->chunk, i1 = i0 + s->chunk < j->inner ? i0 + s->chunk : j->inner;
    if (i0 >= i1) return;
    for (long o = 0; o < j->outer; o++) {
        // Build a view whose inner slice is [i0, i1): reduce row by row with a stride.
        const float *x = j->x + o * j->r * j->inner + i0;
        float *out = j->out + o * j->inner + i0;
        long w = i1 - i0;
        memcpy(out, x, (size_t)w * sizeof(float));
        for (long k = 1; k < j->r; k++) {
            const float *xk = x + k * j->inner;
            if (j->op == SK_R_SUM) for (long i = 0; i < w; i++) out[i] += xk[i];
            else if (j->op == SK_R_MAX) for (long i = 0; i < w; i++) out[i] = (xk[i] > out[i] || xk[i] != xk[i]) ? xk[i] : out[i];
            else for (long i = 0; i < w; i++) out[i] = (xk[i] < out[i] || xk[i] != xk[i]) ? xk[i] : out[i];
        }
    }
}

void sk_reduce(int op, long outer, long r, long inner, const float *x, float *out) {
    reduce_job j = {op, outer, r, inner, x, out};
    long total = outer * r * inner;
    int threads = strata_get_num_threads();
    if (total < 65536 || threads <= 1) {
        for (long o = 0; o < outer; o++) reduce_one(&j, o);
    } else if (outer >= threads) {
        strata_parallel_for(outer, reduce_task, &j);
    } else if (inner >= 64 && op != SK_R_ARGMAX && op != SK_R_ARGMIN) {
        reduce_split s = {&j, ((inner + threads - 1) / threads + 15) & ~15L};
        strata_parallel_for(threads, reduce_inner_task, &s);
    } else {
        for (long o = 0; o < outer; o++) reduce_one(&j, o);
    }
}

// ---- softmax along the middle axis of (outer, r, inner) -----------------------------------------

typedef struct {
    long outer, r, inner;
    const float *x, *y, *g;
    float *out;
    int log;
} softmax_job;

SK_BODY void softmax_row_body(long r, const float *x, float *y, int log) {
    float m = max_contig(r, x, 0);
    float s = 0;
    if (log) {
        for (long k = 0; k < r; k++) s += sf_exp(x[k] - m);
        float ls = m + sf_log(s);
        for (long k = 0; k < r; k++) y[k] = x[k] - ls;
    } else {
        for (long k = 0; k < r; k++) { y[k] = sf_exp(x[k] - m); s += y[k]; }
        float inv = 1.0f / s;
        for (long k = 0; k < r; k++) y[k] *= inv;
    }
}
SK_MULTI_ISA_VOID(static, softmax_row, (long r, const float *x, float *y, int log), (r, x, y, log))

SK_BODY void softmax_one_body(const softmax_job *j, long o) {
    long r = j->r, inner = j->inner;
    const float *x = j->x + o * r * inner;
    float *y = j->out + o * r * inner;
    if (inner == 1) { softmax_row(r, x, y, j->log); return; }
    // Strided rows: work through a column at a time over the inner axis.
    for (long i = 0; i < inner; i++) {
        float m = x[i];
        for (long k = 1; k < r; k++) m = x[k * inner + i] > m ? x[k * inner + i] : m;
        float s = 0;
        for (long k = 0; k < r; k++) s += sf_exp(x[k * inner + i] - m);
        if (j->log) {
            float ls = m + sf_log(s);
            for (long k = 0; k < r; k++) y[k * inner + i] = x[k * inner + i] - ls;
        } else {
            float inv = 1.0f / s;
            for (long k = 0; k < r; k++) y[k * inner + i] = sf_exp(x[k * inner + i] - m) * inv;
        }
    }
}
SK_MULTI_ISA_VOID(static, softmax_one, (const softmax_job *j, long o), (j, o))

// softmax: dx = y * (g - sum(g * y));  log-softmax: dx = g - exp(y) * sum(g)
SK_BODY void softmax_backward_one_body(const softmax_job *j, long o) {
    long r = j->r, inner = j->inner;
    const float *y = j->y + o * r * inner, *g = j->g + o * r * inner;
    float *dx = j->out + o * r * inner;
    for (long i = 0; i < inner; i++) {
        float s = 0;
        if (j->log) {
            for (long k = 0; k < r; k++) s += g[k * inner + i];
            for (long k = 0; k < r; k++) dx[k * inner + i] = g[k * inner + i] - sf_exp(y[k * inner + i]) * s;
        } else {
            for (long k = 0; k < r; k++) s += g[k * inner + i] * y[k * inner + i];
            for (long k = 0; k < r; k++) dx[k * inner + i] = y[k * inner + i] * (g[k * inner + i] - s);
        }
    }
}
SK_MULTI_ISA_VOID(static, softmax_backward_one, (const softmax_job *j, long o), (j, o))

static void softmax_task(void *ctx, long o) { softmax_one(ctx, o); }
static void softmax_backward_task(void *ctx, long o) { softmax_backward_one(ctx, o); }

void sk_softmax(long outer, long r, long inner, const float *x, float *y, int log) {
    softmax_job j = {outer, r, inner, x, 0, 0, y, log};
    if (outer * r * inner < 32768) for (long o = 0; o < outer; o++) softmax_one(&j, o);
    else strata_parallel_for(outer, softmax_task, &j);
}

void sk_softmax_backward(long outer, long r, long inner, const float *y, const float *g, float *dx,
                         int log) {
    softmax_job j = {outer, r, inner, 0, y, g, dx, log};
    if (outer * r * inner < 32768) for (long o = 0; o < outer; o++) softmax_backward_one(&j, o);
    else strata_parallel_for(outer, softmax_backward_task, &j);
}
