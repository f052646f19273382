// Winograd F(2x2, 3x3) convolution (Lavin & Gray 2015) for 3x3, stride 1, dilation 1, groups 1,
// any padding: 16 multiplies per 2x2 output tile and channel pair instead of 36 (2.25x fewer).
//
// Transforms (d a 4x4 input tile at (2i - ph, 2j - pw), g a 3x3 filter, y the 2x2 output tile):
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]     V = B^T d B
//   G   = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]          U = G g G^T
//   A^T = [1 1 1 0; 0 1 -1 -1]                         y = A^T (U . V) A
// Element xi = 4k + l of a 4x4 tile (k its row) is one matrix of the batched product:
//   forward        M[xi][Cout, T] = U[xi][Cout, Cin] @ V[xi][Cin, T]            (16 GEMMs)
//   input grad     the forward on gy with 180-degree-rotated, channel-transposed weights and
//                  padding 2 - p (a full correlation; p > 2 crops, which works the same way)
//   weight grad    S[xi][Cout, Cin] = Z[xi][Cout, T] @ V[xi][Cin, T]^T, Z = A dy A^T of each 2x2
//                  output-gradient tile (zero past the edge), then dW = G^T S G (the transpose of
//                  the forward's linear map, i.e. F(3x3, 2x2))
// T counts the 2x2 output tiles of a chunk of images (edge tiles past an odd size read zeros and
// drop the extra outputs), taken in blocks of nearly equal size that keep V and M (or Z) near L2.
// Per block and channel, the tiles' 4x4 (or 2x2) patches are first gathered into 16 (or 4) arrays
// indexed by tile, so the transforms are plain loops over every tile of the block that the
// compiler vectorises whatever the image width (a 14x14 output has rows of only 7 tiles); they
// are compiled for AVX-512, AVX2 and generic x86-64 and chosen by strata_cpu_isa() like the other
// kernels. The 16 GEMMs are strata_sgemm_ex, the transformed filters packed once per call. With a
// thread pool job per chunk of images (conv.c's batch split) everything runs on the task's thread;
// for batches too small to split, each step of a block (transforms per channel, GEMMs per xi) is
// spread over the pool.
//
// Error: the transforms use only +, - and multiplies by 1/2, so besides the GEMM's rounding the
// only extra error is the rounding of the transformed values (sums of up to 9 terms); measured at
// most about 1e-6 of the result's largest magnitude (WinogradTests), which bounds it at 1e-5.
// On small whole numbers every intermediate is exact (multiples of 1/4), so Winograd and the
// direct path agree bit for bit there (the conv tests on integers still hold with it on).
//
// Called from conv.c (forward, fused conv+pool forward, both backward passes) when
// sk_winograd_applies / sk_winograd_applies_input_grad (see the modes below). A fused conv+pool's
// backward takes its gradients from the pooling winners instead (conv.c), where that applies.
#include "strata_kernels.h"
#include "multi_isa.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// On where it pays by default (mode 1): measured faster in training (BENCHMARKS.md); STRATA_WINOGRAD=0 turns it off.
#define WINOGRAD_DEFAULT 1
// Mode 1 ("where it pays") leaves convolutions with fewer input or output channels than this on
// the direct path: with 1 input channel (a network's first layer) the 16 products have K = 1 or
// N = 1 and the weight-gradient pass measured several times slower than im2col.
#define WINOGRAD_MIN_CHANNELS 16
// The input gradient's direct path (one GEMM with K = Cout, then col2im) is the cheapest of the
// three; Winograd's measured faster there with 64 channels in and out, not with 32 -> 64 (the
// transform of the output gradient runs over the larger channel count).
#define WINOGRAD_MIN_CHANNELS_INPUT_GRAD 64
// ... and at least this many 2x2 output tiles per thread in the batch: with a few hundred tiles the
// 16 small GEMMs' fixed costs and the filter transform dominate (batch 1 at 14x14 and 28x28, and
// batch 2 at 14x14 with 128 channels, measured slower than the direct path).
#define WINOGRAD_MIN_TILES 256

// ---- switch -------------------------------------------------------------------------------------
// Modes: 0 off, 1 on where it pays (3x3/stride 1/dilation 1/1 group, outputs of at least 2x2,
// at least WINOGRAD_MIN_CHANNELS in and out, the input gradient WINOGRAD_MIN_CHANNELS_INPUT_GRAD,
// and WINOGRAD_MIN_TILES per thread), 2 on for every such shape and pass (tests). STRATA_WINOGRAD=0/1/2, read once; sk_winograd_force overrides it (-1: back to it).

static int env_setting = WINOGRAD_DEFAULT;
static int forced = -1;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void) {
    const char *e = getenv("STRATA_WINOGRAD");
    if (e && e[0] >= '0' && e[0] <= '2' && e[1] == 0) env_setting = e[0] - '0';
}

int sk_winograd_enabled(void) {
    int f = __atomic_load_n(&forced, __ATOMIC_RELAXED);
    if (f >= 0) return f;
    pthread_once(&env_once, read_env);
    return env_setting;
}

void sk_winograd_force(int mode) { __atomic_store_n(&forced, mode < 0 ? -1 : mode > 2 ? 2 : mode, __ATOMIC_RELAXED); }

int sk_winograd_shape_ok(const sk_conv_shape *s) {
    return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 && s->dh == 1 && s->dw == 1 && s->groups == 1 &&
           s->oh >= 2 && s->ow >= 2 && s->c > 0 && s->cout > 0;
}

// Mode 1's rule: enough channels in and out, enough tiles per thread.
static int pays(const sk_conv_shape *s, long min_channels) {
    long tiles = s->n * ((s->oh + 1) / 2) * ((s->ow + 1) / 2);
    return s->c >= min_channels && s->cout >= min_channels && tiles >= WINOGRAD_MIN_TILES * (long)strata_get_num_threads();
}

int sk_winograd_applies(const sk_conv_shape *s) {
    int mode = sk_winograd_enabled();
    if (mode == 0 || !sk_winograd_shape_ok(s)) return 0;
    return mode == 2 || pays(s, WINOGRAD_MIN_CHANNELS);
}

int sk_winograd_applies_input_grad(const sk_conv_shape *s) {
    int mode = sk_winograd_enabled();
    if (mode == 0 || !sk_winograd_shape_ok(s)) return 0;
    return mode == 2 || pays(s, WINOGRAD_MIN_CHANNELS_INPUT_GRAD);
}

// ---- per-thread scratch (0: packed weights, 1: V, 2: M or Z, 3: S, 4: gathered tiles) ---------

#define WSLOTS 5
typedef struct { float *p; size_t n; } wbuf;
static pthread_key_t wkey;
static pthread_once_t wkey_once = PTHREAD_ONCE_INIT;
static void wbuf_free(void *v) {
    wbuf *b = v;
    for (int i = 0; i < WSLOTS; i++) free(b[i].p);
    free(b);
}
static void wkey_init(void) { pthread_key_create(&wkey, wbuf_free); }

static float *wscratch(int slot, size_t floats) {
    pthread_once(&wkey_once, wkey_init);
    wbuf *b = pthread_getspecific(wkey);
    if (!b) {
        b = calloc(WSLOTS, sizeof(wbuf));
        pthread_setspecific(wkey, b);
    }
    if (b[slot].n < floats) {
        free(b[slot].p);
        size_t n = floats + floats / 4 + 64;
        b[slot].p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
        b[slot].n = n;
    }
    return b[slot].p;
}

// ---- geometry -------------------------------------------------------------------------------------

// A correlation of `in` [cin, h, w] per image with 3x3 filters into `out` [cout, oh, ow], the
// input tile of output tile (i, j) starting at (2i - ph, 2j - pw); th x tw tiles per image.
typedef struct { long cin, h, w, cout, ph, pw, oh, ow, th, tw; } wgeom;

static wgeom make_geom(long cin, long h, long w, long cout, long ph, long pw, long oh, long ow) {
    wgeom g = {cin, h, w, cout, ph, pw, oh, ow, (oh + 1) / 2, (ow + 1) / 2};
    return g;
}

// Tiles per block for T tiles in all: V and M (or Z) of one block take up to about 1.5 MB (each
// GEMM touches 1/16 of that), blocks of nearly equal size (a multiple of 16 but the last).
#define BLOCK_FLOATS (384 * 1024)
static long block_tiles(const wgeom *g, long T) {
    long tb = BLOCK_FLOATS / (16 * (g->cin + g->cout));
    if (tb < 32) tb = 32;
    if (tb > 1024) tb = 1024;
    long blocks = (T + tb - 1) / tb;
    tb = ((T + blocks - 1) / blocks + 15) / 16 * 16;
    return tb < T ? tb : T;
}

#define RUN_MAX 256   // tiles of one row handled at once

// dst[0, m) = plane[row][col0, col0 + m), zero outside the plane's h x w. One select loop (no
// memcpy/memset calls: the rows are short, 2 * 7 + 2 floats for a 14x14 output).
SK_BODY void padded_row(const float *plane, long h, long w, long row, long col0, long m, float *dst) {
    if (row < 0 || row >= h) {
        for (long x = 0; x < m; x++) dst[x] = 0.0f;
        return;
    }
    const float *r = plane + row * w;
    for (long x = 0; x < m; x++) {
        long c = col0 + x;
        dst[x] = c >= 0 && c < w ? r[c] : 0.0f;
    }
}

// Visits the tiles [t0, t0 + tb) row by row: image b, tile row i, tiles (i, j0 .. j0 + n) at
// offset off in the block.
#define FOR_TILE_RUNS(g, t0, tb, ...)                                                   \
    for (long t_ = (t0), end_ = (t0) + (tb); t_ < end_;) {                              \
        long per_ = (g)->th * (g)->tw, r_ = t_ % per_;                                  \
        long b = t_ / per_, i = r_ / (g)->tw, j0 = r_ % (g)->tw;                        \
        long n = (g)->tw - j0 < end_ - t_ ? (g)->tw - j0 : end_ - t_, off = t_ - (t0);  \
        if (n > RUN_MAX) n = RUN_MAX;                                                   \
        __VA_ARGS__                                                                     \
        t_ += n;                                                                        \
    }

// ---- transforms (bodies; compiled per ISA below) ----------------------------------------------------
// Each gathers the block's tiles of one channel into 16 (or 4) arrays P[element][tile], so the
// arithmetic runs over all tiles of the block at once whatever the image width (a 14x14 output
// has rows of only 7 tiles), then scatters or stores the results.

// V[xi][c][t - t0] = (B^T d B)[xi] for tiles [t0, t0 + tb) of input channel c. V's rows are tb long.
// P: 16 * tb floats of scratch.
SK_BODY void input_transform_body(const wgeom *g, const float *in, long c, long t0, long tb, float *V, float *P) {
    float rows[4][2 * RUN_MAX + 2];
    FOR_TILE_RUNS(g, t0, tb, {
        const float *plane = in + (b * g->cin + c) * g->h * g->w;
        for (int a = 0; a < 4; a++) padded_row(plane, g->h, g->w, 2 * i - g->ph + a, 2 * j0 - g->pw, 2 * n + 2, rows[a]);
        float *pt = P + off;
        for (long q = 0; q < n; q++)
            for (int a = 0; a < 4; a++)
                for (int k = 0; k < 4; k++) pt[(4 * a + k) * tb + q] = rows[a][2 * q + k];
    })
    size_t xs = (size_t)g->cin * tb;
    float *restrict v = V + c * tb;
    const float *restrict p = P;
    // The 16 rows of v are disjoint (tb <= xs apart); clang cannot prove it with runtime checks.
#pragma clang loop vectorize(assume_safety)
    for (long t = 0; t < tb; t++) {
        float d[4][4], u[4][4];
        for (int a = 0; a < 4; a++)
            for (int k = 0; k < 4; k++) d[a][k] = p[(4 * a + k) * tb + t];
        for (int k = 0; k < 4; k++) {   // B^T d: rows combined
            u[0][k] = d[0][k] - d[2][k];
            u[1][k] = d[1][k] + d[2][k];
            u[2][k] = d[2][k] - d[1][k];
            u[3][k] = d[1][k] - d[3][k];
        }
        for (int a = 0; a < 4; a++) {   // (.) B: columns combined
            v[(4 * a) * xs + t] = u[a][0] - u[a][2];
            v[(4 * a + 1) * xs + t] = u[a][1] + u[a][2];
            v[(4 * a + 2) * xs + t] = u[a][2] - u[a][1];
            v[(4 * a + 3) * xs + t] = u[a][1] - u[a][3];
        }
    }
}

// out[b][co] = A^T M A (+ bias) for tiles [t0, t0 + tb); the parts of edge tiles past oh x ow
// are dropped. Y: 4 * tb floats of scratch.
SK_BODY void output_transform_body(const wgeom *g, const float *Mb, long co, long t0, long tb, float bias, float *out, float *Y) {
    size_t xs = (size_t)g->cout * tb;
    const float *restrict m = Mb + co * tb;
    float *restrict y = Y;
    for (long t = 0; t < tb; t++) {
        float s0[4], s1[4];
        for (int l = 0; l < 4; l++) {
            float m0 = m[l * xs + t], m1 = m[(4 + l) * xs + t], m2 = m[(8 + l) * xs + t], m3 = m[(12 + l) * xs + t];
            s0[l] = m0 + m1 + m2;
            s1[l] = m1 - m2 - m3;
        }
        y[t] = s0[0] + s0[1] + s0[2] + bias;
        y[tb + t] = s0[1] - s0[2] - s0[3] + bias;
        y[2 * tb + t] = s1[0] + s1[1] + s1[2] + bias;
        y[3 * tb + t] = s1[1] - s1[2] - s1[3] + bias;
    }
    FOR_TILE_RUNS(g, t0, tb, {
        float *plane = out + (b * g->cout + co) * g->oh * g->ow;
        long full = 2 * (j0 + n) > g->ow ? n - 1 : n;   // tiles whose two columns are both inside
        for (int r = 0; r < 2; r++) {
            long row = 2 * i + r;
            if (row >= g->oh) break;
            float *dst = plane + row * g->ow + 2 * j0;
            const float *ya = Y + (2 * r) * tb + off, *yb = Y + (2 * r + 1) * tb + off;
            for (long q = 0; q < full; q++) { dst[2 * q] = ya[q]; dst[2 * q + 1] = yb[q]; }
            if (full < n) dst[2 * full] = ya[full];
        }
    })
}

// Z[xi][co][t - t0] = (A dy A^T)[xi] of the 2x2 output-gradient tiles (zero past oh x ow).
// P: 4 * tb floats of scratch.
SK_BODY void grad_transform_body(const wgeom *g, const float *gy, long co, long t0, long tb, float *Z, float *P) {
    float rows[2][2 * RUN_MAX];
    FOR_TILE_RUNS(g, t0, tb, {
        const float *plane = gy + (b * g->cout + co) * g->oh * g->ow;
        for (int a = 0; a < 2; a++) padded_row(plane, g->oh, g->ow, 2 * i + a, 2 * j0, 2 * n, rows[a]);
        float *pt = P + off;
        for (long q = 0; q < n; q++)
            for (int a = 0; a < 2; a++)
                for (int k = 0; k < 2; k++) pt[(2 * a + k) * tb + q] = rows[a][2 * q + k];
    })
    size_t xs = (size_t)g->cout * tb;
    float *restrict z = Z + co * tb;
    const float *restrict p = P;
    // A dy: rows (a, b), (a + c, b + d), (a - c, b - d), (-c, -d); then each row (u, v) -> (u, u + v, u - v, -v).
    // The 16 rows of z are disjoint.
#pragma clang loop vectorize(assume_safety)
    for (long t = 0; t < tb; t++) {
        float a = p[t], bb = p[tb + t], c = p[2 * tb + t], d = p[3 * tb + t];
        float u[4] = {a, a + c, a - c, -c}, v[4] = {bb, bb + d, bb - d, -d};
        for (int k = 0; k < 4; k++) {
            z[(4 * k) * xs + t] = u[k];
            z[(4 * k + 1) * xs + t] = u[k] + v[k];
            z[(4 * k + 2) * xs + t] = u[k] - v[k];
            z[(4 * k + 3) * xs + t] = -v[k];
        }
    }
}

// gwt[(ci*9 + a*3 + b) * cout + co] (=, or += when !first) (G^T S G)[a][b] for each ci of output
// channel co: the [K, Cout] layout conv.c's weight-gradient partials use.
SK_BODY void weight_grad_inverse_body(long cin, long cout, const float *S, long co, float *gwt, int first) {
    size_t xs = (size_t)cout * cin;
    for (long ci = 0; ci < cin; ci++) {
        float s[4][4], r[3][4];
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 4; l++) s[k][l] = S[(4 * k + l) * xs + co * cin + ci];
        // G^T on the rows: (s0 + (s1 + s2)/2, (s1 - s2)/2, (s1 + s2)/2 + s3)
        for (int l = 0; l < 4; l++) {
            float p = 0.5f * (s[1][l] + s[2][l]), m = 0.5f * (s[1][l] - s[2][l]);
            r[0][l] = s[0][l] + p;
            r[1][l] = m;
            r[2][l] = p + s[3][l];
        }
        for (int a = 0; a < 3; a++) {
            float p = 0.5f * (r[a][1] + r[a][2]), m = 0.5f * (r[a][1] - r[a][2]);
            float w3[3] = {r[a][0] + p, m, p + r[a][3]};
            for (int bcol = 0; bcol < 3; bcol++) {
                float *dst = gwt + (ci * 9 + a * 3 + bcol) * cout + co;
                *dst = first ? w3[bcol] : *dst + w3[bcol];
            }
        }
    }
}

// Per-ISA copies of the transform bodies (multi_isa.h).
SK_MULTI_ISA_VOID(static, input_transform, (const wgeom *g, const float *in, long c, long t0, long tb, float *V, float *P),
                  (g, in, c, t0, tb, V, P))
SK_MULTI_ISA_VOID(static, output_transform, (const wgeom *g, const float *Mb, long co, long t0, long tb, float bias, float *out, float *Y),
                  (g, Mb, co, t0, tb, bias, out, Y))
SK_MULTI_ISA_VOID(static, grad_transform, (const wgeom *g, const float *gy, long co, long t0, long tb, float *Z, float *P),
                  (g, gy, co, t0, tb, Z, P))
SK_MULTI_ISA_VOID(static, weight_grad_inverse, (long cin, long cout, const float *S, long co, float *gwt, int first),
                  (cin, cout, S, co, gwt, first))

// ---- weights ----------------------------------------------------------------------------------------

// U[xi] = G g G^T of every filter, packed as GEMM A operands [rows, cols]: forward rows = Cout,
// cols = Cin; for the input gradient rows = Cin, cols = Cout and the filters rotated 180 degrees.
// The packed buffer lives in the calling thread's scratch until its next call; returns the floats
// per xi.
size_t sk_winograd_pack_weights(const sk_conv_shape *s, const float *w, int input_grad, const float **packed) {
    long rows = input_grad ? s->c : s->cout, cols = input_grad ? s->cout : s->c;
    size_t xs = (size_t)rows * cols;
    float *U = wscratch(1, 16 * xs);
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < cols; c++) {
            float f[3][3], gg[4][3];
            const float *src = input_grad ? w + (c * s->c + r) * 9 : w + (r * s->c + c) * 9;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) f[a][b] = input_grad ? src[(2 - a) * 3 + (2 - b)] : src[a * 3 + b];
            for (int b = 0; b < 3; b++) {   // G f
                gg[0][b] = f[0][b];
                gg[1][b] = 0.5f * (f[0][b] + f[1][b] + f[2][b]);
                gg[2][b] = 0.5f * (f[0][b] - f[1][b] + f[2][b]);
                gg[3][b] = f[2][b];
            }
            for (int k = 0; k < 4; k++) {   // (G f) G^T
                float *u = U + (4 * k) * xs + r * cols + c;
                u[0] = gg[k][0];
                u[xs] = 0.5f * (gg[k][0] + gg[k][1] + gg[k][2]);
                u[2 * xs] = 0.5f * (gg[k][0] - gg[k][1] + gg[k][2]);
                u[3 * xs] = gg[k][2];
            }
        }
    size_t per = (strata_gemm_packed_size_a(rows, cols) + 15) & ~(size_t)15;
    float *dst = wscratch(0, 16 * per);
    for (int xi = 0; xi < 16; xi++) strata_gemm_pack_a(0, rows, cols, U + xi * xs, cols, dst + xi * per);
    *packed = dst;
    return per;
}

// ---- drivers ---------------------------------------------------------------------------------------

typedef struct {
    const wgeom *g;
    const float *in, *gy, *U, *bias;
    size_t uper;
    float *out, *V, *M, *S, *gwt;
    long t0, tb;
    int first;
} wjob;

static void run_phase(long n, strata_task_fn fn, void *ctx, int threaded) {
    if (threaded && n > 1) strata_parallel_for(n, fn, ctx);
    else for (long i = 0; i < n; i++) fn(ctx, i);
}

static void input_task(void *ctx, long c) {
    const wjob *j = ctx;
    input_transform(j->g, j->in, c, j->t0, j->tb, j->V, wscratch(4, (size_t)16 * j->tb));
}

static void forward_gemm_task(void *ctx, long xi) {
    const wjob *j = ctx;
    const wgeom *g = j->g;
    sk_gemm_operand a = {0, 0, 0, j->U + xi * j->uper}, b = {j->V + xi * g->cin * j->tb, j->tb, 0, 0};
    strata_sgemm_ex(g->cout, j->tb, g->cin, 1.0f, &a, &b, 0.0f, j->M + xi * g->cout * j->tb, j->tb, 0);
}

static void output_task(void *ctx, long co) {
    const wjob *j = ctx;
    output_transform(j->g, j->M, co, j->t0, j->tb, j->bias ? j->bias[co] : 0.0f, j->out, wscratch(4, (size_t)4 * j->tb));
}

static void grad_task(void *ctx, long co) {
    const wjob *j = ctx;
    grad_transform(j->g, j->gy, co, j->t0, j->tb, j->M, wscratch(4, (size_t)4 * j->tb));
}

static void weight_gemm_task(void *ctx, long xi) {
    const wjob *j = ctx;
    const wgeom *g = j->g;
    sk_gemm_operand a = {j->M + xi * g->cout * j->tb, j->tb, 0, 0}, b = {j->V + xi * g->cin * j->tb, j->tb, 1, 0};
    strata_sgemm_ex(g->cout, g->cin, j->tb, 1.0f, &a, &b, j->first ? 0.0f : 1.0f, j->S + xi * g->cout * g->cin, g->cin, 0);
}

static void inverse_task(void *ctx, long co) {
    const wjob *j = ctx;
    weight_grad_inverse(j->g->cin, j->g->cout, j->S, co, j->gwt, j->first);
}

// out = correlation of nb images of `in` with the packed transformed filters (+ bias).
// threaded: the phases of each block run on the pool (otherwise on the calling thread only).
static void wino_correlate(const wgeom *g, const float *in, long nb, const float *U, size_t uper, const float *bias,
                           float *out, int threaded) {
    long T = nb * g->th * g->tw, tbmax = block_tiles(g, T);
    wjob j = {g, in, 0, U, bias, uper, out, 0, 0, 0, 0, 0, 0, 0};
    j.V = wscratch(1, (size_t)16 * g->cin * tbmax);
    j.M = wscratch(2, (size_t)16 * g->cout * tbmax);
    for (long t0 = 0; t0 < T; t0 += tbmax) {
        j.t0 = t0;
        j.tb = T - t0 < tbmax ? T - t0 : tbmax;
        run_phase(g->cin, input_task, &j, threaded);
        run_phase(16, forward_gemm_task, &j, threaded);
        run_phase(g->cout, output_task, &j, threaded);
    }
}

void sk_winograd_forward(const sk_conv_shape *s, const float *x, long nb, const float *U, size_t uper, const float *bias,
                         float *y, int threaded) {
    wgeom g = make_geom(s->c, s->h, s->w, s->cout, s->ph, s->pw, s->oh, s->ow);
    wino_correlate(&g, x, nb, U, uper, bias, y, threaded);
}

// gx [nb, c, h, w] (overwritten) from gy [nb, cout, oh, ow]; U from sk_winograd_pack_weights(.., 1, ..).
void sk_winograd_backward_data(const sk_conv_shape *s, const float *gy, long nb, const float *U, size_t uper, float *gx,
                               int threaded) {
    wgeom g = make_geom(s->cout, s->oh, s->ow, s->c, 2 - s->ph, 2 - s->pw, s->h, s->w);
    wino_correlate(&g, gy, nb, U, uper, 0, gx, threaded);
}

// gwt [c*9, cout] (= when first, else +=) the weight gradient of nb images, in conv.c's dW^T layout.
void sk_winograd_backward_weights(const sk_conv_shape *s, const float *x, const float *gy, long nb, float *gwt, int first,
                                  int threaded) {
    wgeom g = make_geom(s->c, s->h, s->w, s->cout, s->ph, s->pw, s->oh, s->ow);
    long T = nb * g.th * g.tw, tbmax = block_tiles(&g, T);
    wjob j = {&g, x, gy, 0, 0, 0, 0, 0, 0, 0, gwt, 0, 0, 0};
    j.V = wscratch(1, (size_t)16 * g.cin * tbmax);
    j.M = wscratch(2, (size_t)16 * g.cout * tbmax);
    j.S = wscratch(3, (size_t)16 * g.cout * g.cin);
    for (long t0 = 0; t0 < T; t0 += tbmax) {
        j.t0 = t0;
        j.tb = T - t0 < tbmax ? T - t0 : tbmax;
        j.first = t0 == 0;
        run_phase(g.cin, input_task, &j, threaded);
        run_phase(g.cout, grad_task, &j, threaded);
        run_phase(16, weight_gemm_task, &j, threaded);
    }
    j.first = first;
    run_phase(g.cout, inverse_task, &j, threaded);
}
