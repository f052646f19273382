// Winograd convolution (Lavin & Gray 2015) for 3x3, stride 1, dilation 1, groups 1, any padding,
// in m x m output tiles: F(2x2, 3x3) does 16 multiplies per tile and channel pair where the direct
// path does 36 (2.25x fewer), F(4x4, 3x3) 36 where it does 144 (4x fewer).
//
// F(2x2, 3x3) (d a 4x4 input tile at (2i - ph, 2j - pw), g a 3x3 filter, y the 2x2 output tile):
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]     V = B^T d B
//   G   = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]          U = G g G^T
//   A^T = [1 1 1 0; 0 1 -1 -1]                         y = A^T (U . V) A
// F(4x4, 3x3) likewise with 6x6 input tiles at (4i - ph, 4j - pw) and the matrices given with its
// transforms below. With al = m + 2, element xi = al*k + l of a tile (k its row) is one matrix of
// the batched product (ne = al^2 of them: 16 or 36):
//   forward        M[xi][Cout, T] = U[xi][Cout, Cin] @ V[xi][Cin, T]            (ne GEMMs)
//   input grad     the forward on gy with 180-degree-rotated, channel-transposed weights and
//                  padding 2 - p (a full correlation; p > 2 crops, which works the same way)
//   weight grad    S[xi][Cout, Cin] = Z[xi][Cout, T] @ V[xi][Cin, T]^T, Z = A dy A^T of each m x m
//                  output-gradient tile (zero past the edge), then dW = G^T S G (the transpose of
//                  the forward's linear map, i.e. F(3x3, m x m))
// T counts the output tiles of a chunk of images (edge tiles past the size read zeros and drop
// the extra outputs), taken in blocks of nearly equal size that keep V and M (or Z) near L2.
// Per block and channel, the tiles' patches (F(4x4): runs of up to 64 tiles at a time) go into
// ne (or m^2) arrays indexed by tile (F(4x4) takes each patch row's transform on the way, 8 or 4
// tiles at a time), so the other transform pass is a plain loop over the tiles that the compiler
// vectorises whatever the image width (a 14x14 output has rows of only 7 or 4 tiles); they are
// compiled for AVX-512, AVX2 and generic x86-64 and chosen by strata_cpu_isa() like the other
// kernels. The GEMMs are strata_sgemm_ex, the transformed filters packed once per call.
// With a thread pool job per chunk of images (conv.c's batch split) everything runs on the task's
// thread; for batches too small to split, each step of a block (transforms per channel, GEMMs per
// xi) is spread over the pool.
//
// Error: F(2x2, 3x3)'s transforms use only +, - and multiplies by 1/2, so besides the GEMM's
// rounding the only extra error is the rounding of the transformed values (sums of up to 9
// terms); measured at most about 1e-6 of the result's largest magnitude (WinogradTests), which
// bounds it at 1e-5. On small whole numbers every intermediate is exact (multiples of 1/4), so
// F(2x2, 3x3) and the direct path agree bit for bit there. F(4x4, 3x3)'s transforms multiply by up
// to 5 and divide by 6 and 24: measured up to about 5e-6, bound 5e-5, and not exact on whole
// numbers.
//
// Called from conv.c (forward, fused conv+pool forward, both backward passes) when
// sk_winograd_applies / _weight_grad / _input_grad (see the modes below), which give the tile
// size. Single small images whose filters are kept (inference) take a channels-last F(4x4, 3x3)
// forward of their own (sk_winograd_forward_small, at the end of this file). A fused conv+pool's
// backward takes its gradients from the pooling winners instead (conv.c), where that applies.
#include "strata_kernels.h"
#include "multi_isa.h"
#include "vec4.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

// On where it pays by default (mode 1): measured faster in training (BENCHMARKS.md); STRATA_WINOGRAD=0 turns it off.
#define WINOGRAD_DEFAULT 1
// Mode 1 ("where it pays") leaves convolutions with fewer input or output channels than this on
// the direct path: with 1 input channel (a network's first layer) the 16 products have K = 1 or
// N = 1 and the weight-gradient pass measured several times slower than im2col.
#define WINOGRAD_MIN_CHANNELS 16
// ... and at least this many 2x2 output tiles per thread in the batch: with a few hundred tiles the
// 16 small GEMMs' fixed costs and the filter transform dominate (batch 1 at 14x14 and 28x28, and
// batch 2 at 14x14 with 128 channels, measured slower than the direct path).
#define WINOGRAD_MIN_TILES 256

// ---- switch -------------------------------------------------------------------------------------
// Modes: 0 off, 1 on where it pays (3x3/stride 1/dilation 1/1 group, outputs of at least 2x2,
// at least WINOGRAD_MIN_CHANNELS in and out (all three passes), and WINOGRAD_MIN_TILES per
// thread; tiles of WINOGRAD_TILE), 2 F(2x2, 3x3) for every such shape and pass, 3 F(4x4, 3x3) likewise (tests). STRATA_WINOGRAD=0..3, read once;
// sk_winograd_force overrides it (-1: back to it).

static int env_setting = WINOGRAD_DEFAULT;
static int forced = -1;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void read_env(void) {
    const char *e = getenv("STRATA_WINOGRAD");
    if (e && e[0] >= '0' && e[0] <= '3' && e[1] == 0) env_setting = e[0] - '0';
}

int sk_winograd_enabled(void) {
    int f = __atomic_load_n(&forced, __ATOMIC_RELAXED);
    if (f >= 0) return f;
    pthread_once(&env_once, read_env);
    return env_setting;
}

void sk_winograd_force(int mode) { __atomic_store_n(&forced, mode < 0 ? -1 : mode > 3 ? 3 : mode, __ATOMIC_RELAXED); }

int sk_winograd_shape_ok(const sk_conv_shape *s) {
    return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 && s->dh == 1 && s->dw == 1 && s->groups == 1 &&
           s->oh >= 2 && s->ow >= 2 && s->c > 0 && s->cout > 0;
}

// Mode 1's rule: enough channels in and out, enough tiles per thread.
static int pays(const sk_conv_shape *s, long min_channels) {
    long tiles = s->n * ((s->oh + 1) / 2) * ((s->ow + 1) / 2);
    return s->c >= min_channels && s->cout >= min_channels && tiles >= WINOGRAD_MIN_TILES * (long)strata_get_num_threads();
}

// Mode 1 takes F(4x4, 3x3) wherever it takes Winograd: measured faster than F(2x2, 3x3) on the
// face network's 32 -> 64 (32x32) and 64 -> 128 (16x16) layers in all three passes on AVX-512
// and AVX2 (1.3-1.5x), and level with it on the Fashion CNN's 32 -> 64 at 14x14.
#define WINOGRAD_TILE 4

static int applies(const sk_conv_shape *s, long min_channels) {
    int mode = sk_winograd_enabled();
    if (mode == 0 || !sk_winograd_shape_ok(s)) return 0;
    if (mode >= 2) return mode == 3 ? 4 : 2;
    return pays(s, min_channels) ? WINOGRAD_TILE : 0;
}

int sk_winograd_applies(const sk_conv_shape *s) { return applies(s, WINOGRAD_MIN_CHANNELS); }

// Small images whose filters are transformed once and kept (inference): the channels-last path
// below, per image, where an image has 16 to 64 output tiles of 4x4 (outputs of 13x13 to 32x32).
// Below 16 tiles its GEMMs are thinner than a kernel; above 64 its buffers outgrow L2. Mode 1
// only (the forced modes test the batched path).
#define SMALL_MIN_TILES 16
#define SMALL_MAX_TILES 64
int sk_winograd_applies_small(const sk_conv_shape *s) {
    if (sk_winograd_enabled() != 1 || !sk_winograd_shape_ok(s)) return 0;
    if (s->c < WINOGRAD_MIN_CHANNELS || s->cout < WINOGRAD_MIN_CHANNELS) return 0;
    long tiles = ((s->oh + 3) / 4) * ((s->ow + 3) / 4);
    return tiles >= SMALL_MIN_TILES && tiles <= SMALL_MAX_TILES ? 4 : 0;
}
int sk_winograd_applies_weight_grad(const sk_conv_shape *s) { return applies(s, WINOGRAD_MIN_CHANNELS); }

// The input gradient takes it where the forward does. (It used to need 64 channels below 32x32
// outputs; since the transforms work from the image rows and the filters transform in vectors,
// Winograd measured faster there too: held to AVX2, the backward of 64 images 32 -> 32 at 28x28
// 10.1 -> 7.5 ms, 32 -> 64 at 14x14 4.6 -> 4.1, 16 -> 16 at 28x28 3.5 -> 3.0, 24 -> 32 at 14x14
// 2.2 -> 2.0, and likewise on AVX-512.)
int sk_winograd_applies_input_grad(const sk_conv_shape *s) { return applies(s, WINOGRAD_MIN_CHANNELS); }

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

// A correlation of `in` [cin, h, w] per image with 3x3 filters into `out` [cout, oh, ow] in m x m
// output tiles (m = 2 or 4): the (m + 2)^2 input tile of output tile (i, j) starts at
// (m*i - ph, m*j - pw); th x tw tiles per image, ne = (m + 2)^2 transformed elements per tile.
typedef struct { long cin, h, w, cout, ph, pw, oh, ow, th, tw; int m, ne; } wgeom;

static wgeom make_geom(int m, long cin, long h, long w, long cout, long ph, long pw, long oh, long ow) {
    wgeom g = {cin, h, w, cout, ph, pw, oh, ow, (oh + m - 1) / m, (ow + m - 1) / m, m, (m + 2) * (m + 2)};
    return g;
}

// Tiles per block for T tiles in all: V and M (or Z) of one block take up to about 1.5 MB (each
// GEMM touches 1/ne of that), blocks of nearly equal size (a multiple of 16 but the last).
#define BLOCK_FLOATS (384 * 1024)
static long block_tiles(const wgeom *g, long T) {
    long tb = BLOCK_FLOATS / (g->ne * (g->cin + g->cout));
    if (tb < 32) tb = 32;
    if (tb > 1024) tb = 1024;
    long blocks = (T + tb - 1) / tb;
    tb = ((T + blocks - 1) / blocks + 15) / 16 * 16;
    return tb < T ? tb : T;
}

#define RUN_MAX 256   // tiles of one row handled at once


// dst[0, m) = plane[row][col0, col0 + m), zero outside the plane's h x w; dst must hold m rounded
// up to 4 floats. One store per 4 floats at dst + 4k, so the transforms' loads from there (also at
// multiples of 4) are forwarded from single stores; a chunk that crosses the plane's edge is put
// together in a register. (A select loop over the whole row took masked loads and 64-bit compares
// for every vector; plain loops became memset / memcpy calls, which cost more than they save on
// rows of 16 to 34 floats; a copy starting at the edge, 1 float off, stalled each load that
// spanned two of its stores.)
SK_BODY void padded_row(const float *plane, long h, long w, long row, long col0, long m, float *dst) {
    long lo = 0, hi = 0;   // x in [lo, hi) inside the plane
    if (row >= 0 && row < h) {
        lo = col0 < 0 ? (-col0 < m ? -col0 : m) : 0;
        hi = w - col0 < m ? w - col0 : m;
        if (hi < lo) hi = lo;
    }
    const float *r = lo < hi ? plane + row * w : plane;   // r[col0 + x] for x in [lo, hi)
    const wf4 zero = {0.0f, 0.0f, 0.0f, 0.0f};
    long x = 0;
    for (; x + 4 <= lo; x += 4) store4(dst + x, zero);
    if (x < lo && x < m) {   // the chunk with the left edge
        wf4 v = zero;
        if (x + 1 >= lo && x + 1 < hi) v[1] = r[col0 + x + 1];
        if (x + 2 >= lo && x + 2 < hi) v[2] = r[col0 + x + 2];
        if (x + 3 >= lo && x + 3 < hi) v[3] = r[col0 + x + 3];
        store4(dst + x, v);
        x += 4;
    }
    for (; x + 4 <= hi; x += 4) store4(dst + x, load4(r + col0 + x));
    if (x < hi) {   // the chunk with the right edge
        wf4 v = zero;
        v[0] = r[col0 + x];
        if (x + 1 < hi) v[1] = r[col0 + x + 1];
        if (x + 2 < hi) v[2] = r[col0 + x + 2];
        store4(dst + x, v);
        x += 4;
    }
    for (; x < m; x += 4) store4(dst + x, zero);
}

// Asks for rows [y0, y0 + count) of an h x w plane: each channel's plane is a few KB, too little
// for the hardware prefetcher to ramp up on.
SK_BODY void prefetch_rows(const float *plane, long h, long w, long y0, long count) {
    for (long y = y0 < 0 ? 0 : y0; y < y0 + count && y < h; y++)
        for (long x = 0; x < w; x += 16) __builtin_prefetch(plane + y * w + x);
}

// Visits the tiles [t0, t0 + tb) row by row: image b, tile row i, tiles (i, j0 .. j0 + n) at
// offset off in the block.
// (Divides once per call, then steps: three divisions a run cost some 10 % of the output
// transform with runs of 8 tiles.)
#define FOR_TILE_RUNS(g, t0, tb, ...)                                                          \
    for (long t_ = (t0), end_ = (t0) + (tb), b = t_ / ((g)->th * (g)->tw),                     \
              i = t_ % ((g)->th * (g)->tw) / (g)->tw, j0 = t_ % ((g)->th * (g)->tw) % (g)->tw; \
         t_ < end_;) {                                                                         \
        long n = (g)->tw - j0 < end_ - t_ ? (g)->tw - j0 : end_ - t_, off = t_ - (t0);         \
        if (n > RUN_MAX) n = RUN_MAX;                                                          \
        __VA_ARGS__                                                                            \
        t_ += n;                                                                               \
        if ((j0 += n) == (g)->tw) {                                                            \
            j0 = 0;                                                                            \
            if (++i == (g)->th) i = 0, b++;                                                    \
        }                                                                                      \
    }

// ---- transforms (bodies; compiled per ISA below) ----------------------------------------------------
// Each puts the block's tiles of one channel into ne (or m^2) arrays P[element][tile], so the
// arithmetic runs over all tiles at once whatever the image width (a 14x14 output has rows of
// only 7 tiles, or 4), then scatters or stores the results. F(2x2, 3x3) and F(4x4, 3x3) have
// their own functions: one function for both, with the tile size a run-time value, made
// F(2x2, 3x3) 18 % slower at 14x14.

// -- F(2x2, 3x3)

// V[xi][c][t - t0] = (B^T d B)[xi] for tiles [t0, t0 + tb) of input channel c. V's rows are tb long.
// P: 16 * tb floats of scratch.
SK_BODY void input2_body(const wgeom *g, const float *in, long c, long t0, long tb, float *V, float *P) {
    float rows[4][2 * RUN_MAX + 4];
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
SK_BODY void output2_body(const wgeom *g, const float *Mb, long co, long t0, long tb, float bias, float *out, float *Y) {
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
SK_BODY void grad2_body(const wgeom *g, const float *gy, long co, long t0, long tb, float *Z, float *P) {
    float rows[2][2 * RUN_MAX + 4];
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

// -- F(4x4, 3x3) (points 0, 1, -1, 2, -2, infinity), its 6x6 transforms in two passes, rows then
// columns, to keep the live values in registers:
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]

// Rows of tiles are short (8 tiles for a 32x32 output in 4x4 tiles, 4 for 16x16), so the row
// pass of a transform runs across the tiles of one row, 8 or 4 at a time, straight from the padded
// image row: 4x4 transposes in 128-bit lanes give each patch column as a vector of tiles. (A gather
// into P[element][tile] first took 36 short stride-4 copies per row of tiles: 43 % of the input
// transform's time, held to AVX2.) Vector extensions, so each ISA's copy (multi_isa.h) uses its own
// registers.
typedef float wf8 __attribute__((vector_size(32), aligned(4)));

// Two 4-float halves into one vector (a macro: a function returning wf8 warns of the AVX ABI in
// the generic copy).
#define LOAD4X2(lo, hi) __builtin_shufflevector(load4(lo), load4(hi), 0, 1, 2, 3, 4, 5, 6, 7)

// d[k][j] = p[4j + k] (k < kn, j < 8): columns 0..kn-1 of 8 tiles whose rows start 4 apart.
SK_BODY void columns8(const float *p, int kn, wf8 d[4]) {
    wf8 r0 = LOAD4X2(p, p + 16), r1 = LOAD4X2(p + 4, p + 20), r2 = LOAD4X2(p + 8, p + 24), r3 = LOAD4X2(p + 12, p + 28);
    wf8 t0 = __builtin_shufflevector(r0, r1, 0, 8, 1, 9, 4, 12, 5, 13), t2 = __builtin_shufflevector(r2, r3, 0, 8, 1, 9, 4, 12, 5, 13);
    d[0] = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13);
    d[1] = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
    if (kn > 2) {
        wf8 t1 = __builtin_shufflevector(r0, r1, 2, 10, 3, 11, 6, 14, 7, 15), t3 = __builtin_shufflevector(r2, r3, 2, 10, 3, 11, 6, 14, 7, 15);
        d[2] = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13);
        d[3] = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
    }
}

// The same for 4 tiles.
SK_BODY void columns4(const float *p, int kn, wf4 d[4]) {
    wf4 r0 = load4(p), r1 = load4(p + 4), r2 = load4(p + 8), r3 = load4(p + 12);
    wf4 t0 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5), t2 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5);
    d[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    d[1] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    if (kn > 2) {
        wf4 t1 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7), t3 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
        d[2] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
        d[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
    }
}

// Runs `STEP(T, d, q)` on each group of 8, then 4, of the n tiles of a row of 4x4 tiles (tile
// q's row at row + 4q): T the vector type, d[0..5] the patch columns 0..5 as vectors of tiles
// (columns 4 and 5 are the next tile's 0 and 1; read only with `six`), q the group's first tile.
// Returns the tiles done (a multiple of 4); the caller does the rest one by one. With `six`, row
// must have 4n + 4 readable floats, else 4n.
#define FOR_TILE_GROUPS(row, n, six, STEP)                   \
    ({                                                       \
        long q_ = 0;                                         \
        TILE_GROUPS_OF(8, wf8, columns8, row, n, six, STEP); \
        TILE_GROUPS_OF(4, wf4, columns4, row, n, six, STEP); \
        q_;                                                  \
    })
#define TILE_GROUPS_OF(W, T, columns, row, n, six, STEP)       \
    for (; q_ + (W) <= (n); q_ += (W)) {                       \
        T d_[6];                                               \
        columns((row) + 4 * q_, 4, d_);                        \
        if (six) columns((row) + 4 * q_ + 4, 2, d_ + 4);       \
        STEP(T, d_, q_);                                       \
    }

// dst[4j + c] = y[c * ys + j] for c < 4, j < 8: 8 tiles' output rows from vectors of tiles (the
// inverse of columns8).
SK_BODY void interleave8(const float *y, long ys, float *dst) {
    wf8 y0, y1, y2, y3;
    memcpy(&y0, y, sizeof y0);
    memcpy(&y1, y + ys, sizeof y1);
    memcpy(&y2, y + 2 * ys, sizeof y2);
    memcpy(&y3, y + 3 * ys, sizeof y3);
    wf8 t0 = __builtin_shufflevector(y0, y1, 0, 8, 1, 9, 4, 12, 5, 13), t1 = __builtin_shufflevector(y0, y1, 2, 10, 3, 11, 6, 14, 7, 15);
    wf8 t2 = __builtin_shufflevector(y2, y3, 0, 8, 1, 9, 4, 12, 5, 13), t3 = __builtin_shufflevector(y2, y3, 2, 10, 3, 11, 6, 14, 7, 15);
    wf8 o[4] = {__builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13), __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15),
                __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13), __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15)};
    for (int k = 0; k < 4; k++) {   // o[k] = tile k | tile k + 4
        store4(dst + 4 * k, __builtin_shufflevector(o[k], o[k], 0, 1, 2, 3));
        store4(dst + 16 + 4 * k, __builtin_shufflevector(o[k], o[k], 4, 5, 6, 7));
    }
}

// The same for 4 tiles.
SK_BODY void interleave4(const float *y, long ys, float *dst) {
    wf4 y0 = load4(y), y1 = load4(y + ys), y2 = load4(y + 2 * ys), y3 = load4(y + 3 * ys);
    wf4 t0 = __builtin_shufflevector(y0, y1, 0, 4, 1, 5), t1 = __builtin_shufflevector(y0, y1, 2, 6, 3, 7);
    wf4 t2 = __builtin_shufflevector(y2, y3, 0, 4, 1, 5), t3 = __builtin_shufflevector(y2, y3, 2, 6, 3, 7);
    store4(dst, __builtin_shufflevector(t0, t2, 0, 1, 4, 5));
    store4(dst + 4, __builtin_shufflevector(t0, t2, 2, 3, 6, 7));
    store4(dst + 8, __builtin_shufflevector(t1, t3, 0, 1, 4, 5));
    store4(dst + 12, __builtin_shufflevector(t1, t3, 2, 3, 6, 7));
}

// F(4x4, 3x3): Y[(4r + c) * tb + t] (row r, column c of tile t's 4x4 outputs) into image b's
// plane base + b * image_stride [oh, ow]; the parts of edge tiles past oh x ow are dropped.
SK_BODY void scatter_tiles4(const wgeom *g, long t0, long tb, const float *Y, float *base, long image_stride) {
    FOR_TILE_RUNS(g, t0, tb, {
        float *plane = base + b * image_stride;
        long cols = g->ow - 4 * j0;                // columns left in this row of tiles
        long full = cols / 4 < n ? cols / 4 : n;   // tiles whose 4 columns are all inside
        for (int r = 0; r < 4; r++) {
            long row = 4 * i + r;
            if (row >= g->oh) break;
            float *dst = plane + row * g->ow + 4 * j0;
            const float *y = Y + 4 * r * tb + off;
            long q = 0;
            for (; q + 8 <= full; q += 8) interleave8(y + q, tb, dst + 4 * q);
            for (; q + 4 <= full; q += 4) interleave4(y + q, tb, dst + 4 * q);
            for (; q < full; q++) {
                dst[4 * q] = y[q];
                dst[4 * q + 1] = y[tb + q];
                dst[4 * q + 2] = y[2 * tb + q];
                dst[4 * q + 3] = y[3 * tb + q];
            }
            if (full < n)   // the last tile, cut by the right edge
                for (long c = 0; c < cols - 4 * full; c++) dst[4 * full + c] = y[c * tb + full];
        }
    })
}


// B^T of F(4x4, 3x3) on values d0..d5 of type T (float or a vector of tiles), results to the
// lvalues o0..o5.
#define BT6_OF(T, d0, d1, d2, d3, d4, d5, o0, o1, o2, o3, o4, o5)                               \
    do {                                                                                       \
        T p1_ = (d1) + (d2), m1_ = (d1) - (d2), p2_ = (d4) - (d2), m2_ = (d3) - (d1);          \
        o0 = 4.0f * (d0) - 5.0f * (d2) + (d4);                                                 \
        o1 = ((d3) + (d4)) - 4.0f * p1_;                                                       \
        o2 = ((d4) - (d3)) + 4.0f * m1_;                                                       \
        o3 = p2_ + 2.0f * m2_;                                                                 \
        o4 = p2_ - 2.0f * m2_;                                                                 \
        o5 = 4.0f * (d1) - 5.0f * (d3) + (d5);                                                 \
    } while (0)

// The same on d0..d5 strided by `ds`, results to o0..o5 strided by `os` (o may be d).
#define BT6(d, ds, o, os)                                                                      \
    do {                                                                                       \
        float d0 = (d)[0], d1 = (d)[(ds)], d2 = (d)[2 * (ds)], d3 = (d)[3 * (ds)], d4 = (d)[4 * (ds)], \
              d5 = (d)[5 * (ds)];                                                              \
        BT6_OF(float, d0, d1, d2, d3, d4, d5, (o)[0], (o)[(os)], (o)[2 * (os)], (o)[3 * (os)], (o)[4 * (os)], \
               (o)[5 * (os)]);                                                                 \
    } while (0)

// Stores vector v at p (unaligned).
#define VSTORE(p, v)                       \
    do {                                   \
        __typeof__(v) v_ = (v);            \
        memcpy((p), &v_, sizeof v_);       \
    } while (0)

// The row pass of the input transform on one padded image row (4n + 4 readable floats) of n
// tiles: o[k * os + q] = (d B)[k] of tile q's patch row.
SK_BODY void bt6_row(const float *row, long n, float *o, long os) {
#define BT6_STEP(T, d, q)                                                                                       \
    do {                                                                                                        \
        T e0, e1, e2, e3, e4, e5;                                                                               \
        BT6_OF(T, d[0], d[1], d[2], d[3], d[4], d[5], e0, e1, e2, e3, e4, e5);                                  \
        VSTORE(o + (q), e0); VSTORE(o + os + (q), e1); VSTORE(o + 2 * os + (q), e2);                            \
        VSTORE(o + 3 * os + (q), e3); VSTORE(o + 4 * os + (q), e4); VSTORE(o + 5 * os + (q), e5);               \
    } while (0)
    long q = FOR_TILE_GROUPS(row, n, 1, BT6_STEP);
#undef BT6_STEP
    for (; q < n; q++) BT6(row + 4 * q, 1, o + q, os);
}

// A^T of F(4x4, 3x3) applied to m0..m5 (strided by `ms`), plus b, results to o0..o3 (strided by
// `os`). b = -0.0f adds nothing (the compiler drops x + -0.0f).
#define AT6(m, ms, o, os, b)                                                                    \
    do {                                                                                        \
        float m0 = (m)[0], m1 = (m)[(ms)], m2 = (m)[2 * (ms)], m3 = (m)[3 * (ms)], m4 = (m)[4 * (ms)], \
              m5 = (m)[5 * (ms)];                                                               \
        float p1 = m1 + m2, d1 = m1 - m2, p2 = m3 + m4, d2 = m3 - m4;                           \
        (o)[0] = m0 + p1 + p2 + (b);                                                            \
        (o)[(os)] = d1 + 2.0f * d2 + (b);                                                       \
        (o)[2 * (os)] = p1 + 4.0f * p2 + (b);                                                   \
        (o)[3 * (os)] = d1 + 8.0f * d2 + m5 + (b);                                              \
    } while (0)

// v[xi * xs + t - t0] = (B^T d B)[xi] for tiles [t0, t0 + tb) of one input channel. P: ne * tb
// floats of scratch.
SK_BODY void input_tiles(const wgeom *g, const float *in, long c, long t0, long tb, size_t xs, float *restrict v, float *P) {
    float *restrict p = P;
    // Rows of each patch from the image rows (P[6a + k][t] = (d B)[a][k]), then columns into V;
    // the column pass loops over tiles innermost, so it vectorises.
    float buf[4 * RUN_MAX + 4];   // padded_row zeroes the 2 floats past the row the last group reads
    FOR_TILE_RUNS(g, t0, tb, {
        const float *plane = in + (b * g->cin + c) * g->h * g->w;
        prefetch_rows(plane, g->h, g->w, 4 * i - g->ph + 6, 4);   // the rows the next row of tiles adds
        for (int a = 0; a < 6; a++) {
            padded_row(plane, g->h, g->w, 4 * i - g->ph + a, 4 * j0 - g->pw, 4 * n + 2, buf);
            bt6_row(buf, n, p + 6 * a * tb + off, tb);
        }
    })
    for (int k = 0; k < 6; k++) {
        const float *col = p + k * tb;
        float *dst = v + k * xs;
#pragma clang loop vectorize(assume_safety)
        for (long t = 0; t < tb; t++) BT6(col + t, 6 * tb, dst + t, 6 * xs);
    }
}

// out[b][co] = A^T M A (+ bias) for tiles [t0, t0 + tb), M[xi] at m[xi * xs + t - t0]; the parts
// of edge tiles past oh x ow are dropped. Y: 40 * tb floats of scratch.
SK_BODY void output_tiles(const wgeom *g, const float *restrict m, size_t xs, long co, long t0, long tb, float bias, float *out,
                          float *Y) {
    float *restrict y = Y;
    // A^T on each column l of the 6x6 tile: Q[r][l] (4 x 6), then on Q's rows: y[r][c].
    float *restrict q = Y + 16 * tb;
    for (int l = 0; l < 6; l++) {
        const float *ml = m + l * xs;
        float *ql = q + l * tb;
#pragma clang loop vectorize(assume_safety)
        for (long t = 0; t < tb; t++) AT6(ml + t, 6 * xs, ql + t, 6 * tb, -0.0f);
    }
    for (int r = 0; r < 4; r++) {
        const float *qr = q + 6 * r * tb;
        float *yr = y + 4 * r * tb;
#pragma clang loop vectorize(assume_safety)
        for (long t = 0; t < tb; t++) AT6(qr + t, tb, yr + t, tb, bias);
    }
    scatter_tiles4(g, t0, tb, Y, out + co * g->oh * g->ow, g->cout * g->oh * g->ow);
}

// A (6x4, the transpose of F(4x4, 3x3)'s A^T) applied to v0..v3 (strided by `vs`), results to
// z0..z5 (strided by `zs`).
#define A6_OF(T, v0, v1, v2, v3, z0, z1, z2, z3, z4, z5)                                       \
    do {                                                                                        \
        T e1_ = (v0) + (v2), o1_ = (v1) + (v3), e2_ = (v0) + 4.0f * (v2), o2_ = 2.0f * (v1) + 8.0f * (v3); \
        z0 = (v0);                                                                              \
        z1 = e1_ + o1_;                                                                         \
        z2 = e1_ - o1_;                                                                         \
        z3 = e2_ + o2_;                                                                         \
        z4 = e2_ - o2_;                                                                         \
        z5 = (v3);                                                                              \
    } while (0)
#define A6(v, vs, z, zs)                                                                        \
    do {                                                                                        \
        float v0 = (v)[0], v1 = (v)[(vs)], v2 = (v)[2 * (vs)], v3 = (v)[3 * (vs)];              \
        A6_OF(float, v0, v1, v2, v3, (z)[0], (z)[(zs)], (z)[2 * (zs)], (z)[3 * (zs)], (z)[4 * (zs)], (z)[5 * (zs)]); \
    } while (0)

// The row pass of the output-gradient transform on one image row (4n floats) of n tiles:
// o[e * os + q] = (v A^T)[e] of tile q's row.
SK_BODY void a6_row(const float *row, long n, float *o, long os) {
#define A6_STEP(T, d, q)                                                                                        \
    do {                                                                                                        \
        T z0, z1, z2, z3, z4, z5;                                                                               \
        A6_OF(T, d[0], d[1], d[2], d[3], z0, z1, z2, z3, z4, z5);                                               \
        VSTORE(o + (q), z0); VSTORE(o + os + (q), z1); VSTORE(o + 2 * os + (q), z2);                            \
        VSTORE(o + 3 * os + (q), z3); VSTORE(o + 4 * os + (q), z4); VSTORE(o + 5 * os + (q), z5);               \
    } while (0)
    long q = FOR_TILE_GROUPS(row, n, 0, A6_STEP);
#undef A6_STEP
    for (; q < n; q++) A6(row + 4 * q, 1, o + q, os);
}

// z[xi * xs + t - t0] = (A dy A^T)[xi] of the 4x4 tiles [t0, t0 + tb) of output-gradient
// channel co (zero past oh x ow). P: 24 * tb floats of scratch.
SK_BODY void grad_tiles(const wgeom *g, const float *gy, long co, long t0, long tb, size_t xs, float *restrict z, float *P) {
    // A on each row a of the 4x4 tile, from the image rows: Q[a][e] (4 x 6), then on Q's columns into Z.
    float *restrict q = P;
    float buf[4 * RUN_MAX];
    FOR_TILE_RUNS(g, t0, tb, {
        const float *plane = gy + (b * g->cout + co) * g->oh * g->ow;
        prefetch_rows(plane, g->oh, g->ow, 4 * i + 4, 4);
        for (int a = 0; a < 4; a++) {
            padded_row(plane, g->oh, g->ow, 4 * i + a, 4 * j0, 4 * n, buf);
            a6_row(buf, n, q + 6 * a * tb + off, tb);
        }
    })
    for (int e = 0; e < 6; e++) {
        const float *src = q + e * tb;
        float *dst = z + e * xs;
#pragma clang loop vectorize(assume_safety)
        for (long t = 0; t < tb; t++) A6(src + t, 6 * tb, dst + t, 6 * xs);
    }
}

// F(4x4, 3x3) takes the block's tiles in runs of SUB_TILES, so each run's patches and partial
// sums (P, Y: up to 40 floats a tile) stay in L1 between the gather, the two transform passes and
// the scatter.
#define SUB_TILES 64
#define FOR_SUB_RUNS(tb, ...)                                        \
    for (long s0 = 0; s0 < (tb); s0 += SUB_TILES) {                  \
        long n = (tb) - s0 < SUB_TILES ? (tb) - s0 : SUB_TILES;      \
        __VA_ARGS__                                                  \
    }

// V[xi][c][t - t0] = (B^T d B)[xi] for tiles [t0, t0 + tb) of input channel c. V's rows are tb
// long. P: 36 * SUB_TILES floats of scratch.
SK_BODY void input4_body(const wgeom *g, const float *in, long c, long t0, long tb, float *V, float *P) {
    FOR_SUB_RUNS(tb, input_tiles(g, in, c, t0 + s0, n, (size_t)g->cin * tb, V + c * tb + s0, P);)
}

// out[b][co] = A^T M A (+ bias) for tiles [t0, t0 + tb). Y: 40 * SUB_TILES floats of scratch.
SK_BODY void output4_body(const wgeom *g, const float *Mb, long co, long t0, long tb, float bias, float *out, float *Y) {
    FOR_SUB_RUNS(tb, output_tiles(g, Mb + co * tb + s0, (size_t)g->cout * tb, co, t0 + s0, n, bias, out, Y);)
}

// Z[xi][co][t - t0] = (A dy A^T)[xi] for tiles [t0, t0 + tb). P: 24 * SUB_TILES floats of scratch.
SK_BODY void grad4_body(const wgeom *g, const float *gy, long co, long t0, long tb, float *Z, float *P) {
    FOR_SUB_RUNS(tb, grad_tiles(g, gy, co, t0 + s0, n, (size_t)g->cout * tb, Z + co * tb + s0, P);)
}

// Eight input channels at once: their filters' values at one position are 8 consecutive floats
// of S, so every step below is one vector operation, in the scalar formula's order. (Written per
// channel, the compiler vectorised the 6-float rows of the tile instead, with masked moves, which
// are slow on AMD CPUs before Zen 3; see BENCHMARKS.md, issue 16.)
typedef float wf8 __attribute__((vector_size(32), aligned(4)));

// G^T of F(4x4, 3x3) applied to s0..s5 (strided by ss): three results to w[0], w[ws], w[2 ws].
SK_BODY void gt6(const wf8 *s, long ss, wf8 *w, long ws) {
    wf8 p1 = s[ss] + s[2 * ss], d1 = s[ss] - s[2 * ss], p2 = s[3 * ss] + s[4 * ss], d2 = s[3 * ss] - s[4 * ss];
    w[0] = 0.25f * s[0] - p1 * (1.0f / 6.0f) + p2 * (1.0f / 24.0f);
    w[ws] = -d1 * (1.0f / 6.0f) + d2 * (1.0f / 12.0f);
    w[2 * ws] = (p2 - p1) * (1.0f / 6.0f) + s[5 * ss];
}

// G^T of F(2x2, 3x3): (s0 + (s1 + s2)/2, (s1 - s2)/2, (s1 + s2)/2 + s3).
SK_BODY void gt4(const wf8 *s, long ss, wf8 *w, long ws) {
    wf8 p = 0.5f * (s[ss] + s[2 * ss]), m = 0.5f * (s[ss] - s[2 * ss]);
    w[0] = s[0] + p;
    w[ws] = m;
    w[2 * ws] = p + s[3 * ss];
}

// gwt[(ci*9 + a*3 + b) * cout + co] (=, or += when !first) (G^T S G)[a][b] for each ci of output
// channel co: the [K, Cout] layout conv.c's weight-gradient partials use.
SK_BODY void weight_grad_inverse_body(const wgeom *g, const float *S, long co, float *gwt, int first) {
    long cin = g->cin, cout = g->cout, t = g->m + 2;   // tile side: 6 or 4
    size_t xs = (size_t)cout * cin;
    for (long c0 = 0; c0 < cin; c0 += 8) {
        long nb = cin - c0 < 8 ? cin - c0 : 8;
        wf8 s[36], r[18], w3[9];
        for (long k = 0; k < t * t; k++) {
            const float *src = S + k * xs + co * cin + c0;
            if (nb == 8) memcpy(&s[k], src, sizeof s[k]);
            else {
                s[k] = (wf8){0};
                memcpy(&s[k], src, (size_t)nb * sizeof(float));
            }
        }
        // G^T on the columns (r[a][l], a row of t), then on r's rows (w3[a][b]).
        for (long l = 0; l < t; l++) {
            if (t == 6) gt6(s + l, 6, r + l, 6);
            else gt4(s + l, 4, r + l, 4);
        }
        for (int a = 0; a < 3; a++) {
            if (t == 6) gt6(r + 6 * a, 1, w3 + 3 * a, 1);
            else gt4(r + 4 * a, 1, w3 + 3 * a, 1);
        }
        for (long i = 0; i < nb; i++)
            for (int k = 0; k < 9; k++) {
                float *dst = gwt + ((c0 + i) * 9 + k) * cout + co;
                *dst = first ? w3[k][i] : *dst + w3[k][i];
            }
    }
}

// Per-ISA copies of the transform bodies (multi_isa.h).
SK_MULTI_ISA_VOID_WITH(SK_NO_LIBC_CALLS, static, input2, (const wgeom *g, const float *in, long c, long t0, long tb, float *V, float *P),
                  (g, in, c, t0, tb, V, P))
SK_MULTI_ISA_VOID(static, output2, (const wgeom *g, const float *Mb, long co, long t0, long tb, float bias, float *out, float *Y),
                  (g, Mb, co, t0, tb, bias, out, Y))
SK_MULTI_ISA_VOID_WITH(SK_NO_LIBC_CALLS, static, grad2, (const wgeom *g, const float *gy, long co, long t0, long tb, float *Z, float *P),
                  (g, gy, co, t0, tb, Z, P))
SK_MULTI_ISA_VOID_WITH(SK_NO_LIBC_CALLS, static, input4, (const wgeom *g, const float *in, long c, long t0, long tb, float *V, float *P),
                  (g, in, c, t0, tb, V, P))
SK_MULTI_ISA_VOID(static, output4, (const wgeom *g, const float *Mb, long co, long t0, long tb, float bias, float *out, float *Y),
                  (g, Mb, co, t0, tb, bias, out, Y))
SK_MULTI_ISA_VOID_WITH(SK_NO_LIBC_CALLS, static, grad4, (const wgeom *g, const float *gy, long co, long t0, long tb, float *Z, float *P),
                  (g, gy, co, t0, tb, Z, P))
SK_MULTI_ISA_VOID(static, weight_grad_inverse, (const wgeom *g, const float *S, long co, float *gwt, int first),
                  (g, S, co, gwt, first))

// ---- weights ----------------------------------------------------------------------------------------

// U[xi] = G g G^T of every filter for m x m tiles, packed as GEMM A operands [rows, cols]: forward
// rows = Cout, cols = Cin; for the input gradient rows = Cin, cols = Cout and the filters rotated
// 180 degrees. sk_winograd_pack_weights_into writes (m + 2)^2 matrices of
// sk_winograd_packed_floats each to dst.
size_t sk_winograd_packed_floats(const sk_conv_shape *s, int input_grad) {
    long rows = input_grad ? s->c : s->cout, cols = input_grad ? s->cout : s->c;
    return (strata_gemm_packed_size_a(rows, cols) + 15) & ~(size_t)15;
}

// U[xi][r][c] = (G f G^T)[xi] of filter (r, c) for the columns c of row r: 64 filters at a time
// copied to F[k][c] first (stride-9 loads), so the transform is a loop over c that vectorises
// and stores each of the ne matrices' rows contiguously (filter by filter, it was scalar and took
// 2 % of face training).
SK_BODY void filter_row_body(const sk_conv_shape *s, const float *w, int input_grad, int m, long r, float *U) {
    long cols = input_grad ? s->cout : s->c;
    size_t xs = (size_t)(input_grad ? s->c : s->cout) * cols;
    float F[9 * 64];
    for (long c0 = 0; c0 < cols; c0 += 64) {
        long cb = cols - c0 < 64 ? cols - c0 : 64;
        for (long c = 0; c < cb; c++) {
            const float *src = input_grad ? w + ((c0 + c) * s->c + r) * 9 : w + (r * s->c + c0 + c) * 9;
            for (int k = 0; k < 9; k++) F[k * 64 + c] = src[input_grad ? 8 - k : k];   // 180 degrees: (2-a, 2-b)
        }
        float *restrict u = U + r * cols + c0;
        const float *restrict f = F;
        // G applied to v0, v1, v2 into o[0], o[os], ... (al values)
#define G_APPLY(v0, v1, v2, o, os)                                                         \
        do {                                                                               \
            if (m == 4) {                                                                  \
                float e_ = v0 * (1.0f / 24.0f) + v2 * (1.0f / 6.0f), h_ = v1 * (1.0f / 12.0f); \
                (o)[0] = 0.25f * v0;                                                       \
                (o)[(os)] = -(v0 + v1 + v2) * (1.0f / 6.0f);                               \
                (o)[2 * (os)] = -(v0 - v1 + v2) * (1.0f / 6.0f);                           \
                (o)[3 * (os)] = e_ + h_;                                                   \
                (o)[4 * (os)] = e_ - h_;                                                   \
                (o)[5 * (os)] = v2;                                                        \
            } else {                                                                       \
                (o)[0] = v0;                                                               \
                (o)[(os)] = 0.5f * (v0 + v1 + v2);                                         \
                (o)[2 * (os)] = 0.5f * (v0 - v1 + v2);                                     \
                (o)[3 * (os)] = v2;                                                        \
            }                                                                              \
        } while (0)
        if (m == 4) {
#pragma clang loop vectorize(assume_safety)
            for (long c = 0; c < cb; c++) {
                float gg[6][3];
                for (int b = 0; b < 3; b++) G_APPLY(f[b * 64 + c], f[(3 + b) * 64 + c], f[(6 + b) * 64 + c], &gg[0][b], 3);   // G f
                for (int k = 0; k < 6; k++) G_APPLY(gg[k][0], gg[k][1], gg[k][2], u + (6 * k) * xs + c, xs);                  // (G f) G^T
            }
        } else {
#pragma clang loop vectorize(assume_safety)
            for (long c = 0; c < cb; c++) {
                float gg[4][3];
                for (int b = 0; b < 3; b++) G_APPLY(f[b * 64 + c], f[(3 + b) * 64 + c], f[(6 + b) * 64 + c], &gg[0][b], 3);
                for (int k = 0; k < 4; k++) G_APPLY(gg[k][0], gg[k][1], gg[k][2], u + (4 * k) * xs + c, xs);
            }
        }
#undef G_APPLY
    }
}
SK_MULTI_ISA_VOID(static, filter_row, (const sk_conv_shape *s, const float *w, int input_grad, int m, long r, float *U),
                  (s, w, input_grad, m, r, U))

// U[xi][rows, cols] = G g G^T of every filter, in the calling thread's scratch.
static const float *transformed_filters(const sk_conv_shape *s, const float *w, int input_grad, int m) {
    long rows = input_grad ? s->c : s->cout, cols = input_grad ? s->cout : s->c;
    size_t xs = (size_t)rows * cols;
    float *U = wscratch(1, (size_t)(m + 2) * (m + 2) * xs);
    for (long r = 0; r < rows; r++) filter_row(s, w, input_grad, m, r, U);
    return U;
}

void sk_winograd_pack_weights_into(const sk_conv_shape *s, const float *w, int input_grad, int m, float *dst) {
    long rows = input_grad ? s->c : s->cout, cols = input_grad ? s->cout : s->c;
    size_t xs = (size_t)rows * cols, per = sk_winograd_packed_floats(s, input_grad);
    const float *U = transformed_filters(s, w, input_grad, m);
    for (int xi = 0; xi < (m + 2) * (m + 2); xi++) strata_gemm_pack_a(0, rows, cols, U + xi * xs, cols, dst + xi * per);
}

// The forward's transformed filters as the B operand of the channels-last path (U[xi]^T [Cin,
// Cout] each), F(4x4, 3x3): 36 matrices of sk_winograd_packed_floats_b each.
size_t sk_winograd_packed_floats_b(const sk_conv_shape *s) {
    return (strata_gemm_packed_size_b(s->cout, s->c) + 15) & ~(size_t)15;
}

void sk_winograd_pack_weights_b_into(const sk_conv_shape *s, const float *w, float *dst) {
    size_t xs = (size_t)s->cout * s->c, per = sk_winograd_packed_floats_b(s);
    const float *U = transformed_filters(s, w, 0, 4);
    for (int xi = 0; xi < 36; xi++) strata_gemm_pack_b(1, s->cout, s->c, U + xi * xs, s->c, dst + xi * per);
}

// The same in the calling thread's scratch, valid until its next call; returns the floats per xi.
size_t sk_winograd_pack_weights(const sk_conv_shape *s, const float *w, int input_grad, int m, const float **packed) {
    size_t per = sk_winograd_packed_floats(s, input_grad);
    float *dst = wscratch(0, (size_t)(m + 2) * (m + 2) * per);
    sk_winograd_pack_weights_into(s, w, input_grad, m, dst);
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
    if (j->g->m == 4) input4(j->g, j->in, c, j->t0, j->tb, j->V, wscratch(4, (size_t)36 * SUB_TILES));
    else input2(j->g, j->in, c, j->t0, j->tb, j->V, wscratch(4, (size_t)16 * j->tb));
}

static void forward_gemm_task(void *ctx, long xi) {
    const wjob *j = ctx;
    const wgeom *g = j->g;
    sk_gemm_operand a = {0, 0, 0, j->U + xi * j->uper}, b = {j->V + xi * g->cin * j->tb, j->tb, 0, 0};
    strata_sgemm_ex(g->cout, j->tb, g->cin, 1.0f, &a, &b, 0.0f, j->M + xi * g->cout * j->tb, j->tb, 0);
}

static void output_task(void *ctx, long co) {
    const wjob *j = ctx;
    float bias = j->bias ? j->bias[co] : 0.0f;
    if (j->g->m == 4) output4(j->g, j->M, co, j->t0, j->tb, bias, j->out, wscratch(4, (size_t)40 * SUB_TILES));
    else output2(j->g, j->M, co, j->t0, j->tb, bias, j->out, wscratch(4, (size_t)4 * j->tb));
}

static void grad_task(void *ctx, long co) {
    const wjob *j = ctx;
    if (j->g->m == 4) grad4(j->g, j->gy, co, j->t0, j->tb, j->M, wscratch(4, (size_t)24 * SUB_TILES));
    else grad2(j->g, j->gy, co, j->t0, j->tb, j->M, wscratch(4, (size_t)4 * j->tb));
}

static void weight_gemm_task(void *ctx, long xi) {
    const wjob *j = ctx;
    const wgeom *g = j->g;
    sk_gemm_operand a = {j->M + xi * g->cout * j->tb, j->tb, 0, 0}, b = {j->V + xi * g->cin * j->tb, j->tb, 1, 0};
    strata_sgemm_ex(g->cout, g->cin, j->tb, 1.0f, &a, &b, j->first ? 0.0f : 1.0f, j->S + xi * g->cout * g->cin, g->cin, 0);
}

static void inverse_task(void *ctx, long co) {
    const wjob *j = ctx;
    weight_grad_inverse(j->g, j->S, co, j->gwt, j->first);
}

// out = correlation of nb images of `in` with the packed transformed filters (+ bias).
// threaded: the phases of each block run on the pool (otherwise on the calling thread only).
static void wino_correlate(const wgeom *g, const float *in, long nb, const float *U, size_t uper, const float *bias,
                           float *out, int threaded) {
    long T = nb * g->th * g->tw, tbmax = block_tiles(g, T);
    wjob j = {g, in, 0, U, bias, uper, out, 0, 0, 0, 0, 0, 0, 0};
    j.V = wscratch(1, (size_t)g->ne * g->cin * tbmax);
    j.M = wscratch(2, (size_t)g->ne * g->cout * tbmax);
    for (long t0 = 0; t0 < T; t0 += tbmax) {
        j.t0 = t0;
        j.tb = T - t0 < tbmax ? T - t0 : tbmax;
        run_phase(g->cin, input_task, &j, threaded);
        run_phase(g->ne, forward_gemm_task, &j, threaded);
        run_phase(g->cout, output_task, &j, threaded);
    }
}

void sk_winograd_forward(const sk_conv_shape *s, int m, const float *x, long nb, const float *U, size_t uper,
                         const float *bias, float *y, int threaded) {
    wgeom g = make_geom(m, s->c, s->h, s->w, s->cout, s->ph, s->pw, s->oh, s->ow);
    wino_correlate(&g, x, nb, U, uper, bias, y, threaded);
}

// gx [nb, c, h, w] (overwritten) from gy [nb, cout, oh, ow]; U from sk_winograd_pack_weights(.., 1, m, ..).
void sk_winograd_backward_data(const sk_conv_shape *s, int m, const float *gy, long nb, const float *U, size_t uper,
                               float *gx, int threaded) {
    wgeom g = make_geom(m, s->cout, s->oh, s->ow, s->c, 2 - s->ph, 2 - s->pw, s->h, s->w);
    wino_correlate(&g, gy, nb, U, uper, 0, gx, threaded);
}

// gwt [c*9, cout] (= when first, else +=) the weight gradient of nb images, in conv.c's dW^T layout.
void sk_winograd_backward_weights(const sk_conv_shape *s, int m, const float *x, const float *gy, long nb, float *gwt,
                                  int first, int threaded) {
    wgeom g = make_geom(m, s->c, s->h, s->w, s->cout, s->ph, s->pw, s->oh, s->ow);
    long T = nb * g.th * g.tw, tbmax = block_tiles(&g, T);
    wjob j = {&g, x, gy, 0, 0, 0, 0, 0, 0, 0, gwt, 0, 0, 0};
    j.V = wscratch(1, (size_t)g.ne * g.cin * tbmax);
    j.M = wscratch(2, (size_t)g.ne * g.cout * tbmax);
    j.S = wscratch(3, (size_t)g.ne * g.cout * g.cin);
    for (long t0 = 0; t0 < T; t0 += tbmax) {
        j.t0 = t0;
        j.tb = T - t0 < tbmax ? T - t0 : tbmax;
        j.first = t0 == 0;
        run_phase(g.cin, input_task, &j, threaded);
        run_phase(g.cout, grad_task, &j, threaded);
        run_phase(g.ne, weight_gemm_task, &j, threaded);
    }
    j.first = first;
    run_phase(g.cout, inverse_task, &j, threaded);
}

// ---- small images, channels last (kept filters, batch 1) ------------------------------------------
// At batch 1 a 14x14 output has only 16 tiles of 4x4, so the batched path's loops over tiles are a
// vector or two long and its gathers and scatters cost more than its products. Here the vectors
// run over channels instead: the image comes zero-padded and channels last, each tile's patch is
// 36 contiguous channel vectors, and the products are Mt[xi][T, Cout] = Vt[xi][T, Cin] @ U[xi]^T
// (filters packed as B once, sk_winograd_pack_weights_b_into), so their rows are tiles and
// their columns channels, as wide as the kernel whatever the tile count.

// Vt[xi][t][c] = (B^T d B)[xi] of tile t = (i, j) (tw tiles a row), d the 6x6 patch at row 4i,
// column 4j of xt [.][wp][cin]. tmp: 36 * cin floats.
SK_BODY void input_cl_body(long cin, long tw, long T, const float *xt, long wp, float *Vt, float *tmp) {
    size_t xs = (size_t)T * cin;
    for (long t = 0; t < T; t++) {
        const float *base = xt + (4 * (t / tw) * wp + 4 * (t % tw)) * cin;
        for (int a = 0; a < 6; a++) {   // rows: (d B)[a][.]
            const float *row = base + a * wp * cin;
            float *restrict o = tmp + 6 * a * cin;
#pragma clang loop vectorize(assume_safety)
            for (long c = 0; c < cin; c++) BT6(row + c, cin, o + c, cin);
        }
        for (int k = 0; k < 6; k++) {   // columns, into Vt
            const float *col = tmp + k * cin;
            float *restrict dst = Vt + k * xs + t * cin;
#pragma clang loop vectorize(assume_safety)
            for (long c = 0; c < cin; c++) BT6(col + c, 6 * cin, dst + c, 6 * xs);
        }
    }
}

// yt[p][co] = (A^T M A) of each tile (no bias), the parts inside oh x ow, from Mt[xi][t][co].
// tmp: 40 * cout floats.
SK_BODY void output_cl_body(long cout, long tw, long T, long oh, long ow, const float *Mt, float *yt, float *tmp) {
    size_t xs = (size_t)T * cout;
    float *restrict q = tmp, *restrict y4 = tmp + 24 * cout;
    for (long t = 0; t < T; t++) {
        long i = t / tw, j = t % tw;
        const float *m = Mt + t * cout;
        for (int l = 0; l < 6; l++) {   // A^T on column l: q[r][l]
            const float *ml = m + l * xs;
            float *ql = q + l * cout;
#pragma clang loop vectorize(assume_safety)
            for (long c = 0; c < cout; c++) AT6(ml + c, 6 * xs, ql + c, 6 * cout, -0.0f);
        }
        long cols = ow - 4 * j < 4 ? ow - 4 * j : 4;
        for (int r = 0; r < 4 && 4 * i + r < oh; r++) {   // ... then on q's rows: output row 4i + r
            const float *qr = q + 6 * r * cout;
            float *restrict dst = cols == 4 ? yt + ((4 * i + r) * ow + 4 * j) * cout : y4;
#pragma clang loop vectorize(assume_safety)
            for (long c = 0; c < cout; c++) AT6(qr + c, cout, dst + c, cout, -0.0f);
            if (cols < 4) memcpy(yt + ((4 * i + r) * ow + 4 * j) * cout, y4, (size_t)cols * cout * sizeof(float));
        }
    }
}

SK_MULTI_ISA_VOID(static, input_cl, (long cin, long tw, long T, const float *xt, long wp, float *Vt, float *tmp),
                  (cin, tw, T, xt, wp, Vt, tmp))
SK_MULTI_ISA_VOID(static, output_cl,
                  (long cout, long tw, long T, long oh, long ow, const float *Mt, float *yt, float *tmp),
                  (cout, tw, T, oh, ow, Mt, yt, tmp))

void sk_winograd_forward_small(const sk_conv_shape *s, const float *xt, long wp, const float *Ub, size_t uper,
                               float *yt) {
    long tw = (s->ow + 3) / 4, T = ((s->oh + 3) / 4) * tw, cin = s->c, cout = s->cout;
    float *Vt = wscratch(1, (size_t)36 * T * cin), *Mt = wscratch(2, (size_t)36 * T * cout);
    float *tmp = wscratch(4, (size_t)40 * (cin > cout ? cin : cout));
    input_cl(cin, tw, T, xt, wp, Vt, tmp);
    for (int xi = 0; xi < 36; xi++) {
        sk_gemm_operand a = {Vt + (size_t)xi * T * cin, cin, 0, 0}, b = {0, 0, 0, Ub + xi * uper};
        strata_sgemm_ex(T, cout, cin, 1.0f, &a, &b, 0.0f, Mt + (size_t)xi * T * cout, cout, 0);
    }
    output_cl(cout, tw, T, s->oh, s->ow, Mt, yt, tmp);
}
