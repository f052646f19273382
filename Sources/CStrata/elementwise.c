// Elementwise kernels: broadcasting binary ops, unary ops and their backward rules, strided copy.
// Each loop is written once and compiled for AVX-512, AVX2 and generic x86-64 (multi_isa.h).
#include "strata_kernels.h"
#include "multi_isa.h"
#include "mathfun.h"
#include <string.h>

#define PAR_MIN 32768   // below this many elements a loop runs on one thread

// ---- binary ------------------------------------------------------------------------------------

static inline float apply_binary(int op, float a, float b) {
    switch (op) {
    case SK_ADD: return a + b;
    case SK_SUB: return a - b;
    case SK_MUL: return a * b;
    case SK_DIV: return a / b;
    case SK_POW: return __builtin_powf(a, b);
    case SK_MAX: return (a > b || a != a) ? a : b;
    case SK_MIN: return (a < b || a != a) ? a : b;
    case SK_EQ: return a == b ? 1.0f : 0.0f;
    case SK_NE: return a != b ? 1.0f : 0.0f;
    case SK_LT: return a < b ? 1.0f : 0.0f;
    case SK_LE: return a <= b ? 1.0f : 0.0f;
    case SK_GT: return a > b ? 1.0f : 0.0f;
    case SK_GE: return a >= b ? 1.0f : 0.0f;
    default: return 0.0f;
    }
}

// One contiguous output row of n elements; sa/sb are the input strides (0 = broadcast).
// The switch sits outside the loops so that every (op, stride pattern) pair vectorises.
#define ROW_LOOP(EXPR)                                                                           \
    if (sa == 1 && sb == 1) { for (long i = 0; i < n; i++) { float x = a[i], y = b[i]; o[i] = (EXPR); } } \
    else if (sa == 1 && sb == 0) { float y = b[0]; for (long i = 0; i < n; i++) { float x = a[i]; o[i] = (EXPR); } } \
    else if (sa == 0 && sb == 1) { float x = a[0]; for (long i = 0; i < n; i++) { float y = b[i]; o[i] = (EXPR); } } \
    else { for (long i = 0; i < n; i++) { float x = a[i * sa], y = b[i * sb]; o[i] = (EXPR); } }

SK_BODY void binary_row_body(int op, long n, float *o, const float *a, long sa, const float *b,
                              long sb) {
    switch (op) {
    case SK_ADD: ROW_LOOP(x + y) break;
    case SK_SUB: ROW_LOOP(x - y) break;
    case SK_MUL: ROW_LOOP(x * y) break;
    case SK_DIV: ROW_LOOP(x / y) break;
    case SK_MAX: ROW_LOOP((x > y || x != x) ? x : y) break;
    case SK_MIN: ROW_LOOP((x < y || x != x) ? x : y) break;
    case SK_EQ: ROW_LOOP(x == y ? 1.0f : 0.0f) break;
    case SK_NE: ROW_LOOP(x != y ? 1.0f : 0.0f) break;
    case SK_LT: ROW_LOOP(x < y ? 1.0f : 0.0f) break;
    case SK_LE: ROW_LOOP(x <= y ? 1.0f : 0.0f) break;
    case SK_GT: ROW_LOOP(x > y ? 1.0f : 0.0f) break;
    case SK_GE: ROW_LOOP(x >= y ? 1.0f : 0.0f) break;
    default: for (long i = 0; i < n; i++) o[i] = apply_binary(op, a[i * sa], b[i * sb]); break;
    }
}
SK_MULTI_ISA_VOID(static, binary_row, (int op, long n, float *o, const float *a, long sa, const float *b, long sb), (op, n, o, a, sa, b, sb))

typedef struct {
    int op, ndim;
    const long *shape;
    float *out;
    const float *a, *b;
    const long *as, *bs;
    long rows, chunk, inner;
} binary_job;

// Rows [r0, r1) of the output viewed as (rows, inner).
static void binary_rows(const binary_job *j, long r0, long r1) {
    int nd = j->ndim;
    long idx[SK_MAX_DIMS];
    long rem = r0;
    for (int d = nd - 2; d >= 0; d--) { idx[d] = rem % j->shape[d]; rem /= j->shape[d]; }
    long ao = 0, bo = 0;
    for (int d = 0; d < nd - 1; d++) { ao += idx[d] * j->as[d]; bo += idx[d] * j->bs[d]; }
    for (long r = r0; r < r1; r++) {
        binary_row(j->op, j->inner, j->out + r * j->inner, j->a + ao, j->as[nd - 1], j->b + bo,
                   j->bs[nd - 1]);
        for (int d = nd - 2; d >= 0; d--) {
            idx[d]++;
            ao += j->as[d];
            bo += j->bs[d];
            if (idx[d] < j->shape[d]) break;
            ao -= idx[d] * j->as[d];
            bo -= idx[d] * j->bs[d];
            idx[d] = 0;
        }
    }
}

static void binary_task(void *ctx, long t) {
    const binary_job *j = ctx;
    if (j->rows == 1) {   // one long row: split it
        long s = t * j->chunk, e = s + j->chunk < j->inner ? s + j->chunk : j->inner;
        if (s >= e) return;
        long sa = j->as[j->ndim - 1], sb = j->bs[j->ndim - 1];
        binary_row(j->op, e - s, j->out + s, j->a + s * sa, sa, j->b + s * sb, sb);
    } else {
        long s = t * j->chunk, e = s + j->chunk < j->rows ? s + j->chunk : j->rows;
        if (s < e) binary_rows(j, s, e);
    }
}

void sk_binary(int op, int ndim, const long *shape, float *out, const float *a, const long *as,
               const float *b, const long *bs) {
    if (ndim == 0) { out[0] = apply_binary(op, a[0], b[0]); return; }
    long inner = shape[ndim - 1], rows = 1;
    for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
    long total = rows * inner;
    binary_job j = {op, ndim, shape, out, a, b, as, bs, rows, rows, inner};
    int threads = strata_get_num_threads();
    if (total < PAR_MIN || threads <= 1) { binary_rows(&j, 0, rows); return; }
    long tasks = threads;
    if (rows == 1) j.chunk = (inner + tasks - 1) / tasks;
    else { if (tasks > rows) tasks = rows; j.chunk = (rows + tasks - 1) / tasks; }
    strata_parallel_for(tasks, binary_task, &j);
}

// ---- unary ----------------------------------------------------------------------------------------

static inline float gelu(float x) { return 0.5f * x * (1.0f + sf_erf(x * 0.70710678118654752f)); }

SK_BODY void unary_range_body(int op, long n, const float *x, float *y, float p) {
    switch (op) {
    case SK_NEG: for (long i = 0; i < n; i++) y[i] = -x[i]; break;
    case SK_EXP: for (long i = 0; i < n; i++) y[i] = sf_exp(x[i]); break;
    case SK_LOG: for (long i = 0; i < n; i++) y[i] = sf_log(x[i]); break;
    case SK_SQRT: for (long i = 0; i < n; i++) y[i] = SK_SQRT_F(x[i]); break;
    case SK_ABS: for (long i = 0; i < n; i++) y[i] = __builtin_fabsf(x[i]); break;
    case SK_TANH: for (long i = 0; i < n; i++) y[i] = sf_tanh(x[i]); break;
    case SK_SIGMOID: for (long i = 0; i < n; i++) y[i] = sf_sigmoid(x[i]); break;
    case SK_RELU: for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : (x[i] != x[i] ? x[i] : 0.0f); break;
    case SK_LEAKY_RELU: for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : p * x[i]; break;
    case SK_GELU: for (long i = 0; i < n; i++) y[i] = gelu(x[i]); break;
    case SK_SCALE: for (long i = 0; i < n; i++) y[i] = p * x[i]; break;
    case SK_ADD_SCALAR: for (long i = 0; i < n; i++) y[i] = x[i] + p; break;
    case SK_SQUARE: for (long i = 0; i < n; i++) y[i] = x[i] * x[i]; break;
    case SK_RECIPROCAL: for (long i = 0; i < n; i++) y[i] = 1.0f / x[i]; break;
    case SK_POW_SCALAR: for (long i = 0; i < n; i++) y[i] = __builtin_powf(x[i], p); break;
    case SK_SIGN: for (long i = 0; i < n; i++) y[i] = x[i] > 0 ? 1.0f : (x[i] < 0 ? -1.0f : 0.0f); break;
    }
}
SK_MULTI_ISA_VOID(static, unary_range, (int op, long n, const float *x, float *y, float p), (op, n, x, y, p))

// dx = g * f'(x); `x` is the op's input and `y` its output (whichever the rule needs).
// g is read whether or not a branch uses it: a load under a condition compiles to masked loads
// (vmaskmovps), which are microcoded on AMD CPUs before Zen 3.
SK_BODY void unary_backward_range_body(int op, long n, const float *x, const float *y,
                                        const float *g, float *dx, float p) {
    switch (op) {
    case SK_NEG: for (long i = 0; i < n; i++) dx[i] = -g[i]; break;
    case SK_EXP: for (long i = 0; i < n; i++) dx[i] = g[i] * y[i]; break;
    case SK_LOG: for (long i = 0; i < n; i++) dx[i] = g[i] / x[i]; break;
    case SK_SQRT: for (long i = 0; i < n; i++) dx[i] = g[i] * 0.5f / y[i]; break;
    case SK_ABS: for (long i = 0; i < n; i++) { float gi = g[i]; dx[i] = x[i] > 0 ? gi : (x[i] < 0 ? -gi : 0.0f); } break;
    case SK_TANH: for (long i = 0; i < n; i++) dx[i] = g[i] * (1.0f - y[i] * y[i]); break;
    case SK_SIGMOID: for (long i = 0; i < n; i++) dx[i] = g[i] * y[i] * (1.0f - y[i]); break;
    case SK_RELU: for (long i = 0; i < n; i++) { float gi = g[i]; dx[i] = x[i] > 0 ? gi : 0.0f; } break;
    case SK_LEAKY_RELU: for (long i = 0; i < n; i++) { float gi = g[i]; dx[i] = x[i] > 0 ? gi : p * gi; } break;
    case SK_GELU:
        for (long i = 0; i < n; i++) {
            float v = x[i];
            float cdf = 0.5f * (1.0f + sf_erf(v * 0.70710678118654752f));
            float pdf = 0.3989422804014327f * sf_exp(-0.5f * v * v);
            dx[i] = g[i] * (cdf + v * pdf);
        }
        break;
    case SK_SCALE: for (long i = 0; i < n; i++) dx[i] = p * g[i]; break;
    case SK_ADD_SCALAR: for (long i = 0; i < n; i++) dx[i] = g[i]; break;
    case SK_SQUARE: for (long i = 0; i < n; i++) dx[i] = 2.0f * x[i] * g[i]; break;
    case SK_RECIPROCAL: for (long i = 0; i < n; i++) dx[i] = -g[i] * y[i] * y[i]; break;
    case SK_POW_SCALAR: for (long i = 0; i < n; i++) dx[i] = g[i] * p * __builtin_powf(x[i], p - 1.0f); break;
    case SK_SIGN: for (long i = 0; i < n; i++) dx[i] = 0.0f; break;
    }
}
SK_MULTI_ISA_VOID(static, unary_backward_range, (int op, long n, const float *x, const float *y, const float *g, float *dx, float p), (op, n, x, y, g, dx, p))

typedef struct {
    int op;
    long n, chunk;
    const float *x, *y, *g;
    float *out;
    float p;
    int backward;
} unary_job;

static void unary_task(void *ctx, long t) {
    const unary_job *j = ctx;
    long s = t * j->chunk, e = s + j->chunk < j->n ? s + j->chunk : j->n;
    if (s >= e) return;
    if (j->backward)
        unary_backward_range(j->op, e - s, j->x ? j->x + s : 0, j->y ? j->y + s : 0, j->g + s,
                             j->out + s, j->p);
    else
        unary_range(j->op, e - s, j->x + s, j->out + s, j->p);
}

static void run_unary(unary_job *j) {
    int threads = strata_get_num_threads();
    long tasks = (j->n < PAR_MIN || threads <= 1) ? 1 : threads;
    j->chunk = (j->n + tasks - 1) / tasks;
    // Keep chunk boundaries on whole cache lines.
    j->chunk = (j->chunk + 15) & ~15L;
    if (tasks == 1) unary_task(j, 0);
    else strata_parallel_for(tasks, unary_task, j);
}

void sk_unary(int op, long n, const float *x, float *y, float p) {
    unary_job j = {op, n, 0, x, 0, 0, y, p, 0};
    run_unary(&j);
}

void sk_unary_backward(int op, long n, const float *x, const float *y, const float *g, float *dx,
                       float p) {
    unary_job j = {op, n, 0, x, y, g, dx, p, 1};
    run_unary(&j);
}

// ---- strided copy -------------------------------------------------------------------------------

// dst[i...] = src[i...] for every index of `shape`, each side with its own element strides.
void sk_copy_strided(int ndim, const long *shape, const float *src, const long *ss, float *dst,
                     const long *ds) {
    if (ndim == 0) { dst[0] = src[0]; return; }
    long total = 1;
    for (int d = 0; d < ndim; d++) total *= shape[d];
    if (total == 0) return;
    long idx[SK_MAX_DIMS] = {0};
    long n = shape[ndim - 1], s1 = ss[ndim - 1], d1 = ds[ndim - 1];
    long rows = total / n;
    long so = 0, dof = 0;
    for (long r = 0; r < rows; r++) {
        const float *s = src + so;
        float *o = dst + dof;
        if (s1 == 1 && d1 == 1) memcpy(o, s, (size_t)n * sizeof(float));
        else if (s1 == 0) { float v = s[0]; for (long i = 0; i < n; i++) o[i * d1] = v; }
        else for (long i = 0; i < n; i++) o[i * d1] = s[i * s1];
        for (int d = ndim - 2; d >= 0; d--) {
            idx[d]++;
            so += ss[d];
            dof += ds[d];
            if (idx[d] < shape[d]) break;
            so -= idx[d] * ss[d];
            dof -= idx[d] * ds[d];
            idx[d] = 0;
        }
    }
}

// 2-D transpose in cache blocks: dst[c, r] = src[r, c] for a rows x cols source, `batch` times.
void sk_transpose2d(long batch, long rows, long cols, const float *src, float *dst) {
    const long B = 32;
    for (long b = 0; b < batch; b++) {
        const float *s = src + b * rows * cols;
        float *d = dst + b * rows * cols;
        for (long r0 = 0; r0 < rows; r0 += B)
            for (long c0 = 0; c0 < cols; c0 += B) {
                long r1 = r0 + B < rows ? r0 + B : rows, c1 = c0 + B < cols ? c0 + B : cols;
                for (long r = r0; r < r1; r++)
                    for (long c = c0; c < c1; c++) d[c * rows + r] = s[r * cols + c];
            }
    }
}

// ---- small helpers used by optimizers and losses --------------------------------------------------

SK_BODY void sk_axpy_body(long n, float a, const float *x, float *y) {
    for (long i = 0; i < n; i++) y[i] += a * x[i];
}
SK_MULTI_ISA_VOID(, sk_axpy, (long n, float a, const float *x, float *y), (n, a, x, y))

SK_BODY void sk_fill_body(long n, float v, float *y) {
    for (long i = 0; i < n; i++) y[i] = v;
}
SK_MULTI_ISA_VOID(, sk_fill, (long n, float v, float *y), (n, v, y))

// where(c != 0, a, b) on contiguous, same-shape inputs.
SK_BODY void sk_where_body(long n, const float *c, const float *a, const float *b, float *out) {
    for (long i = 0; i < n; i++) out[i] = c[i] != 0.0f ? a[i] : b[i];
}
SK_MULTI_ISA_VOID(, sk_where, (long n, const float *c, const float *a, const float *b, float *out), (n, c, a, b, out))

// ---- optimizer steps (one pass over each parameter) -----------------------------------------------

// Adam / AdamW. m, v are the moment estimates; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t.
// L2 weight decay (Adam) adds wd*p to the gradient; decoupled decay (AdamW) shrinks p by lr*wd.
SK_BODY void sk_adam_step_body(long n, float *p, const float *g, float *m, float *v, float lr, float beta1,
                         float beta2, float eps, float bc1, float bc2, float wd, int decoupled) {
    float step = lr / bc1, inv_sqrt_bc2 = 1.0f / SK_SQRT_F(bc2);
    float shrink = decoupled ? 1.0f - lr * wd : 1.0f, l2 = decoupled ? 0.0f : wd;
    for (long i = 0; i < n; i++) {
        float gi = g[i] + l2 * p[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * shrink - step * mi / (SK_SQRT_F(vi) * inv_sqrt_bc2 + eps);
    }
}
SK_MULTI_ISA_VOID(, sk_adam_step, (long n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2, float eps, float bc1, float bc2, float wd, int decoupled), (n, p, g, m, v, lr, beta1, beta2, eps, bc1, bc2, wd, decoupled))

// SGD with momentum (PyTorch semantics: buf = momentum*buf + (1-dampening)*g, first step buf = g).
// One loop per case: with `buf` tested inside, the AVX2 copy read and wrote buf with masked moves
// (vmaskmovps), whose stores are slow on AMD CPUs before Zen 3 (BENCHMARKS.md, issue 16).
SK_BODY void sk_sgd_step_body(long n, float *restrict p, const float *restrict g, float *restrict buf, float lr,
                              float momentum, float dampening, float wd, int nesterov, int first) {
    if (!buf) {
        for (long i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
    } else if (first) {
        for (long i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            buf[i] = gi;
            p[i] -= lr * (nesterov ? gi + momentum * gi : gi);
        }
    } else {
        for (long i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            float b = momentum * buf[i] + (1.0f - dampening) * gi;
            buf[i] = b;
            p[i] -= lr * (nesterov ? gi + momentum * b : b);
        }
    }
}
SK_MULTI_ISA_VOID(, sk_sgd_step, (long n, float *p, const float *g, float *buf, float lr, float momentum, float dampening, float wd, int nesterov, int first), (n, p, g, buf, lr, momentum, dampening, wd, nesterov, first))

// RMSprop, one loop per case: `centered` and `momentum` are constants where it is inlined, so no
// loop tests them per element (a test there became masked loads and stores, slow on a Zen 1).
SK_BODY void rmsprop_loop(long n, float *restrict p, const float *restrict g, float *restrict v, float *restrict gavg,
                          float *restrict buf, float lr, float alpha, float eps, float wd, float mom,
                          const int centered, const int momentum) {
    for (long i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        float vi = alpha * v[i] + (1.0f - alpha) * gi * gi;
        v[i] = vi;
        float ms = vi;
        if (centered) {
            float a = alpha * gavg[i] + (1.0f - alpha) * gi;
            gavg[i] = a;
            ms = vi - a * a;
        }
        float d = gi / (SK_SQRT_F(ms) + eps);
        if (momentum) {
            float b = mom * buf[i] + d;
            buf[i] = b;
            p[i] -= lr * b;
        } else {
            p[i] -= lr * d;
        }
    }
}

// RMSprop (PyTorch's torch.optim.RMSprop): v is the running mean of squared gradients; gavg, when
// given (centered), the running mean of gradients, whose square comes off v; buf, when given, the
// momentum buffer. L2 weight decay adds wd*p to the gradient.
SK_BODY void sk_rmsprop_step_body(long n, float *p, const float *g, float *v, float *gavg, float *buf, float lr,
                                  float alpha, float eps, float wd, float momentum) {
    if (gavg && buf) rmsprop_loop(n, p, g, v, gavg, buf, lr, alpha, eps, wd, momentum, 1, 1);
    else if (gavg) rmsprop_loop(n, p, g, v, gavg, buf, lr, alpha, eps, wd, momentum, 1, 0);
    else if (buf) rmsprop_loop(n, p, g, v, gavg, buf, lr, alpha, eps, wd, momentum, 0, 1);
    else rmsprop_loop(n, p, g, v, gavg, buf, lr, alpha, eps, wd, momentum, 0, 0);
}
SK_MULTI_ISA_VOID(, sk_rmsprop_step, (long n, float *p, const float *g, float *v, float *gavg, float *buf, float lr, float alpha, float eps, float wd, float momentum), (n, p, g, v, gavg, buf, lr, alpha, eps, wd, momentum))

// Sum of squares in double (for gradient-norm clipping).
SK_BODY double sk_sum_squares_body(long n, const float *x) {
    double acc[8] = {0};
    long i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) acc[u] += (double)x[i + u] * x[i + u];
    double s = 0;
    for (int u = 0; u < 8; u++) s += acc[u];
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
SK_MULTI_ISA(, double, sk_sum_squares, (long n, const float *x), (n, x))

// In-place ReLU (one pointer, so it vectorises; NaN stays NaN).
SK_BODY void relu_inplace_range_body(long n, float *x) {
    for (long i = 0; i < n; i++) x[i] = (x[i] > 0 || x[i] != x[i]) ? x[i] : 0.0f;
}
SK_MULTI_ISA_VOID(static, relu_inplace_range, (long n, float *x), (n, x))

static void relu_inplace_task(void *ctx, long t) {
    unary_job *j = ctx;
    long s = t * j->chunk, e = s + j->chunk < j->n ? s + j->chunk : j->n;
    if (s < e) relu_inplace_range(e - s, j->out + s);
}

void sk_relu_inplace(long n, float *x) {
    unary_job j = {SK_RELU, n, 0, 0, 0, 0, x, 0, 0};
    int threads = strata_get_num_threads();
    long tasks = (n < PAR_MIN || threads <= 1) ? 1 : threads;
    j.chunk = (((n + tasks - 1) / tasks) + 15) & ~15L;
    if (tasks == 1) relu_inplace_range(n, x);
    else strata_parallel_for(tasks, relu_inplace_task, &j);
}
