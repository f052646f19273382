// Strata's C kernels. Everything here works on contiguous row-major float32 buffers.
// Each kernel is compiled for several CPU feature levels and the best one is chosen at run time,
// so the library never executes an instruction the CPU lacks.
#ifndef STRATA_KERNELS_H
#define STRATA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- CPU features ---------------------------------------------------------------------------
// 2 = AVX-512F, 1 = AVX2+FMA, 0 = generic C. `strata_force_isa` lowers it (for tests).
int strata_cpu_isa(void);
void strata_force_isa(int isa);
const char *strata_cpu_isa_name(void);

// ---- Thread pool ------------------------------------------------------------------------------
typedef void (*strata_task_fn)(void *ctx, long index);
// Runs fn(ctx, i) for i in [0, n) on the pool; the calling thread takes part. A call made from
// inside a task, or while another thread holds the pool, runs serially on the caller.
void strata_parallel_for(long n, strata_task_fn fn, void *ctx);
// The same, but thread k (the caller is 0) runs the k-th contiguous share of [0, n) first and
// helps with the others after: for loops that touch the same data on every call (optimizer
// steps), so each share stays in one core's cache instead of moving between the cores.
void strata_parallel_for_owned(long n, strata_task_fn fn, void *ctx);
// How long a job takes to reach a spinning worker (ns; falls to a lower sample at once, rises by
// at most 16 ns a sample, so single slow handoffs do not count), or -1 when no fresh
// measurement (20 ms); strata_cores_far: whether that is slow enough (> 170 ns, the host running
// the cores far apart) that batch-1 work (one image's convolution split by channels, products of
// 1-2 rows) runs on the calling thread alone. strata_split_small_work(macs) decides for such
// work: not while the cores are far, nor while the workers sleep unless it has 8M
// multiply-adds or more (16 smaller ones within 1 ms wake them for the next).
// strata_force_cores_far(0/1) fixes both answers for tests, -1 measures again.
long strata_handoff_ns(void);
// The estimate after one more sample (the rule above).
long strata_handoff_next_estimate(long estimate, long sample);
int strata_cores_far(void);
int strata_split_small_work(double macs);
// For tests: workers asleep now; workers woken without a job so far.
int strata_workers_asleep(void);
long strata_workers_poked(void);
void strata_force_cores_far(int far);
// The cores this process may use: those its CPU affinity allows (taskset, a launcher's binding),
// at most its cgroup's CPU quota rounded up (docker --cpus, a CI runner's limit), at most 64. The
// pool's default thread count when STRATA_NUM_THREADS does not say. strata_cpu_quota_cores
// reads a cgroup v2 cpu.max line ("150000 100000" is 2 cores; "max 100000", none: 0).
int strata_available_cores(void);
// The machine's online cores at most the cgroup's quota: what the processes on it share.
int strata_machine_cores(void);
int strata_cpu_quota_cores(const char *cpu_max);
void strata_set_num_threads(int n);
int strata_get_num_threads(void);

// ---- GEMM ---------------------------------------------------------------------------------------
// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major with leading dimensions.
// op(A) = A (A is M x K, lda >= K) or A^T when transA (A is K x M, lda >= M); same for B.
// beta == 0 never reads C.
void strata_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                  const float *A, long lda, const float *B, long ldb, float beta, float *C, long ldc);
// Same, single-threaded (for callers that parallelise at a coarser level).
void strata_sgemm_serial(int transA, int transB, long M, long N, long K, float alpha,
                         const float *A, long lda, const float *B, long ldb, float beta,
                         float *C, long ldc);


// GEMM with operands that may be pre-packed. Pack an operand once when many products share it
// (a convolution's weights across a batch): the packed buffer holds
// strata_gemm_packed_size_a/b floats, 64-byte aligned.
typedef struct {
    const float *data;    // row-major source (when packed is NULL)
    long ld;
    int trans;            // use the transpose of data
    const float *packed;  // output of strata_gemm_pack_a/b, or NULL
} sk_gemm_operand;
size_t strata_gemm_packed_size_a(long M, long K);
size_t strata_gemm_packed_size_b(long N, long K);
void strata_gemm_pack_a(int transA, long M, long K, const float *A, long lda, float *dst);
// The packed A layout, for callers that pack it themselves: blocks of kc_block columns of op(A)
// (the last one shorter); in each, panels of mr rows (rows padded to a multiple of mr), each
// panel column by column, mr floats per column.
void strata_gemm_a_layout(long K, int *mr, long *kc_block);
void strata_gemm_pack_b(int transB, long N, long K, const float *B, long ldb, float *dst);
void strata_sgemm_ex(long M, long N, long K, float alpha, const sk_gemm_operand *A,
                     const sk_gemm_operand *B, float beta, float *C, long ldc, int threaded);
// strata_sgemm_ex, then C[i, j] = act(C[i, j] + bias[j]) on each tile as it is finished (while it
// is in cache): a linear layer's bias and activation without another pass over C. bias: N
// floats or NULL.
enum { SK_GEMM_NONE = 0, SK_GEMM_GELU = 1 };
void strata_sgemm_epilogue(long M, long N, long K, float alpha, const sk_gemm_operand *A,
                           const sk_gemm_operand *B, float beta, float *C, long ldc, int threaded,
                           const float *bias, int act);

// ---- batch normalisation ---------------------------------------------------------------------------
// x, y: [N, C, HW]; per channel y = (x - mean) / sqrt(var + eps) * w + b. training: mean and
// var (biased) are the batch's and are written out; otherwise they are read (running statistics).
void sk_batchnorm_forward(long n, long c, long hw, const float *x, const float *w, const float *b, float *y,
                          float *mean, float *var, float eps, int training);
// Gradients of the training-mode forward (batch statistics mean, var); any output may be NULL.
void sk_batchnorm_backward(long n, long c, long hw, const float *x, const float *w, const float *mean, const float *var,
                           const float *gy, float eps, float *gx, float *gw, float *gb);
// Training-mode batch normalisation of x [N, C, H, W] fused with 2x2/stride-2 max pooling (floor of
// odd sizes) and, with relu, ReLU: y [N, C, H/2, W/2]; code (winner position, 4 where ReLU zeroed
// it) and xw (the winner's x) per pooled output are for the backward, which takes the pooled
// gradient gy. The same results as the separate kernels; the normalised full-size tensor is never made.
void sk_batchnorm_maxpool_forward(long n, long c, long h, long w, const float *x, const float *weight, const float *bias,
                                  float *y, uint8_t *code, float *xw, float *mean, float *var, float eps, int relu);
void sk_batchnorm_maxpool_backward(long n, long c, long h, long w, const float *x, const float *weight, const float *mean,
                                   const float *var, const uint8_t *code, const float *xw, const float *gy, float eps,
                                   float *gx, float *gw, float *gb);

// ---- elementwise ---------------------------------------------------------------------------------
#define SK_MAX_DIMS 16

enum {
    SK_ADD, SK_SUB, SK_MUL, SK_DIV, SK_POW, SK_MAX, SK_MIN,
    SK_EQ, SK_NE, SK_LT, SK_LE, SK_GT, SK_GE
};
enum {
    SK_NEG, SK_EXP, SK_LOG, SK_SQRT, SK_ABS, SK_TANH, SK_SIGMOID, SK_RELU, SK_LEAKY_RELU, SK_GELU,
    SK_SCALE, SK_ADD_SCALAR, SK_SQUARE, SK_RECIPROCAL, SK_POW_SCALAR, SK_SIGN
};
enum { SK_R_SUM, SK_R_MAX, SK_R_MIN, SK_R_ARGMAX, SK_R_ARGMIN };

// out (contiguous, `shape`) = a op b, where a and b are read through element strides
// (0 along broadcast axes). ndim <= SK_MAX_DIMS.
void sk_binary(int op, int ndim, const long *shape, float *out, const float *a, const long *as,
               const float *b, const long *bs);
// y = f(x) elementwise; p is the op's parameter (leaky slope, scale, exponent).
void sk_unary(int op, long n, const float *x, float *y, float p);
void sk_relu_inplace(long n, float *x);
// dx = g * f'(x), given the forward input x and/or output y (the rule uses what it needs).
void sk_unary_backward(int op, long n, const float *x, const float *y, const float *g, float *dx,
                       float p);
void sk_copy_strided(int ndim, const long *shape, const float *src, const long *src_strides,
                     float *dst, const long *dst_strides);
void sk_transpose2d(long batch, long rows, long cols, const float *src, float *dst);
void sk_axpy(long n, float a, const float *x, float *y);
void sk_fill(long n, float v, float *y);
void sk_where(long n, const float *cond, const float *a, const float *b, float *out);

void sk_adam_step(long n, float *p, const float *g, float *m, float *v, float lr, float beta1,
                  float beta2, float eps, float bc1, float bc2, float wd, int decoupled);
void sk_sgd_step(long n, float *p, const float *g, float *buf, float lr, float momentum,
                 float dampening, float wd, int nesterov, int first);
// gavg (centered) and buf (momentum) may be NULL.
void sk_rmsprop_step(long n, float *p, const float *g, float *v, float *gavg, float *buf, float lr,
                     float alpha, float eps, float wd, float momentum);
double sk_sum_squares(long n, const float *x);

// ---- reductions and softmax over the middle axis of an (outer, r, inner) view ---------------------
void sk_reduce(int op, long outer, long r, long inner, const float *x, float *out);
// Sum of n contiguous floats (16 partial sums, fixed order).
float sk_sum(long n, const float *x);
void sk_softmax(long outer, long r, long inner, const float *x, float *y, int log);
void sk_softmax_backward(long outer, long r, long inner, const float *y, const float *g, float *dx,
                         int log);

// ---- convolution and pooling (NCHW) ---------------------------------------------------------------
typedef struct {
    long n, c, h, w;        // input
    long cout, kh, kw;      // weight is [cout, c/groups, kh, kw]
    long sh, sw, ph, pw, dh, dw, groups;
    long oh, ow;            // output
} sk_conv_shape;

void sk_conv2d_forward(const sk_conv_shape *s, const float *x, const float *w, const float *bias,
                       float *y);
void sk_conv2d_backward(const sk_conv_shape *s, const float *x, const float *w, const float *gy,
                        float *gx, float *gw, float *gb);

// Convolution fused with 2x2/stride-2 max pooling of its output (floor of odd sizes): the
// unpooled output only ever lives in per-thread scratch. y is [n, cout, oh/2, ow/2]; codes (one
// byte per pooled output; NULL for none) record the winners for the backward pass. AVX-512BW/VL or AVX2.
// With relu, y = relu(pool(conv)) and a pooled output that ReLU zeroes gets code 4 (no winner,
// so no gradient); NaN stays NaN, as in the separate ReLU. The backward (groups 1, stride 1,
// column dilation 1, KW * Cin >= 16) works from the winners alone: at most a quarter of the
// outputs carry gradient, so a quarter of the dense products' multiply-adds or less.
int sk_conv2d_maxpool_supported(const sk_conv_shape *s);
void sk_conv2d_maxpool_forward(const sk_conv_shape *s, const float *x, const float *w, const float *bias,
                               float *y, uint8_t *codes, int relu);
void sk_conv2d_maxpool_backward(const sk_conv_shape *s, const float *x, const float *w, const uint8_t *codes,
                                const float *gy, float *gx, float *gw, float *gb);

// A weight's forms that the forward kernels read (GEMM panels, Winograd-transformed filters),
// kept across calls for inference: sk_conv2d_forward_prepared and
// sk_conv2d_maxpool_forward_prepared make each form the first time a call needs it (a batch-1
// call split over threads makes one per block of output channels) and reuse it after. The
// caller must drop the sk_conv_prepared when the weight's values change. Safe to share between
// threads. At most 8 forms are kept; past that, calls pack into scratch as the plain calls do.
typedef struct sk_conv_prepared sk_conv_prepared;
sk_conv_prepared *sk_conv_prepared_new(void);
void sk_conv_prepared_free(sk_conv_prepared *p);
int sk_conv_prepared_forms(sk_conv_prepared *p);   // forms made so far (tests)
void sk_conv2d_forward_prepared(const sk_conv_shape *s, const float *x, const float *w, const float *bias,
                                float *y, sk_conv_prepared *p);
void sk_conv2d_maxpool_forward_prepared(const sk_conv_shape *s, const float *x, const float *w, const float *bias,
                                        float *y, uint8_t *codes, int relu, sk_conv_prepared *p);

// Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3, stride 1, dilation 1, groups 1 convolutions with
// outputs of at least 2x2 (winograd.c): sk_conv2d_forward/backward and the fused conv+pool use it
// when sk_winograd_applies (forward) / _weight_grad / _input_grad. Mode 0 off, 1 F(4x4, 3x3) where
// it pays (the default: 16+ channels in and out, for the input gradient 64+ or 32+ at 32x32 and
// up, 256+ 2x2 output tiles per thread), 2 F(2x2, 3x3) for every such shape, 3 F(4x4, 3x3) for
// every such shape (tests): STRATA_WINOGRAD=0..3 (read once) or sk_winograd_force (-1: back to the
// environment/default).
int sk_winograd_enabled(void);
void sk_winograd_force(int mode);
int sk_winograd_shape_ok(const sk_conv_shape *s);
// Each returns the output tile size m to use for its pass (2: F(2x2, 3x3), 4: F(4x4, 3x3)), or 0.
int sk_winograd_applies(const sk_conv_shape *s);
int sk_winograd_applies_weight_grad(const sk_conv_shape *s);
int sk_winograd_applies_input_grad(const sk_conv_shape *s);
// 4 where one image's forward takes the channels-last F(4x4, 3x3) path (sk_winograd_forward_small)
// once its filters are kept (mode 1, 16+ channels in and out, 16 to 64 output tiles), else 0.
int sk_winograd_applies_small(const sk_conv_shape *s);
// The transformed filters packed for the (m + 2)^2 GEMMs (input_grad: rotated and
// channel-transposed, for the input gradient); in the calling thread's scratch; returns floats per
// matrix.
size_t sk_winograd_pack_weights(const sk_conv_shape *s, const float *w, int input_grad, int m, const float **packed);
// The same into dst: (m + 2)^2 matrices of sk_winograd_packed_floats each.
size_t sk_winograd_packed_floats(const sk_conv_shape *s, int input_grad);
void sk_winograd_pack_weights_into(const sk_conv_shape *s, const float *w, int input_grad, int m, float *dst);
// nb images in m x m tiles: y [nb, cout, oh, ow] (+ bias); gx [nb, c, h, w] overwritten; gwt
// [c*9, cout] is the weight gradient transposed (= when first, else +=). threaded: spread each
// step over the pool.
void sk_winograd_forward(const sk_conv_shape *s, int m, const float *x, long nb, const float *packed, size_t per,
                         const float *bias, float *y, int threaded);
// One image, channels last: xt [4*th + 2][wp][c] the input zero-padded (at row ph, column pw;
// wp >= 4*tw + 2, th x tw the 4x4 output tiles), Ub from sk_winograd_pack_weights_b_into, yt
// [oh*ow][cout] written without bias. Runs on the calling thread.
size_t sk_winograd_packed_floats_b(const sk_conv_shape *s);
void sk_winograd_pack_weights_b_into(const sk_conv_shape *s, const float *w, float *dst);
void sk_winograd_forward_small(const sk_conv_shape *s, const float *xt, long wp, const float *Ub, size_t uper,
                               float *yt);
void sk_winograd_backward_data(const sk_conv_shape *s, int m, const float *gy, long nb, const float *packed, size_t per,
                               float *gx, int threaded);
void sk_winograd_backward_weights(const sk_conv_shape *s, int m, const float *x, const float *gy, long nb, float *gwt,
                                  int first, int threaded);

// Direct convolution for few input channels (conv_direct.c): K = Cin*KH*KW from 2 taps up to 144,
// stride 1, groups 1, rows of 8+ outputs (16+ for the weight gradient), AVX2 or AVX-512. nb
// images; w as stored [Cout, K]; gwt [K, Cout] is the weight gradient transposed (= when first,
// else +=). Runs on the calling thread.
int sk_direct_conv_applies(const sk_conv_shape *s, int weight_grad);
void sk_direct_conv_forward(const sk_conv_shape *s, const float *x, long nb, const float *w, const float *bias, float *y);
void sk_direct_conv_weight_grad(const sk_conv_shape *s, const float *x, const float *gy, long nb, float *gwt, int first);

// ph/pw pad the start of each row and column, eh/ew their end (the same for PyTorch's symmetric
// padding; ONNX's may differ). oh/ow may include ceil mode's partial windows at the end. An
// average divides by the taps inside the padded input, or with exclude_pad inside the input only.
typedef struct {
    long n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
    long eh, ew, exclude_pad;
} sk_pool_shape;

void sk_maxpool2d_forward(const sk_pool_shape *s, const float *x, float *y, int32_t *argmax);
void sk_maxpool2d_backward(const sk_pool_shape *s, const int32_t *argmax, const float *gy,
                           float *gx);
// 2x2/stride-2 max pooling on AVX-512BW or AVX2 keeps one byte per output (which window position won)
// instead of an int32 index: 1/16 of the input's size for the backward pass to read.
int sk_maxpool2d_uses_codes(const sk_pool_shape *s);
void sk_maxpool2d_forward_codes(const sk_pool_shape *s, const float *x, float *y, uint8_t *codes);
void sk_maxpool2d_backward_codes(const sk_pool_shape *s, const uint8_t *codes, const float *gy, float *gx);
void sk_avgpool2d_forward(const sk_pool_shape *s, const float *x, float *y);
void sk_avgpool2d_backward(const sk_pool_shape *s, const float *gy, float *gx);
// Adaptive pooling of `planes` planes of h x w into oh x ow bins (PyTorch's AdaptiveAvgPool2d and
// AdaptiveMaxPool2d): bin i of an axis of n covers [floor(i*n/out), ceil((i+1)*n/out)). argmax
// (max pooling; may be null in the forward pass) records each bin's winner for the backward pass.
void sk_adaptive_pool2d_forward(long planes, long h, long w, long oh, long ow, int max, const float *x, float *y, int32_t *argmax);
void sk_adaptive_pool2d_backward(long planes, long h, long w, long oh, long ow, int max, const int32_t *argmax, const float *gy, float *gx);

// ---- Transformer inference (attention.c) ----------------------------------------------------------
// Multi-head attention of n sequences packed without padding: sequence b holds lengths[b] >= 1
// tokens at rows starts[b]...; head h of its token i reads q/k/v at
// [(starts[b] + i) * ldqkv + h * dh] and ctx gets softmax(scale q k^T) v at
// [(starts[b] + i) * ldctx + h * dh]. weights, when not NULL, is [n, heads, t, t] (t >= every
// length), zeroed by the caller; the valid query rows and key columns are written.
void sk_attention(long n, long t, long heads, long dh, const float *q, const float *k, const float *v, long ldqkv,
                  const long *lengths, const long *starts, float scale, float *ctx, long ldctx, float *weights);
// out[r] = LayerNorm(x[r] + res[r]) * gamma + beta over rows of h (res may be NULL; out may be x).
void sk_add_layernorm(long rows, long h, const float *x, const float *res, const float *gamma, const float *beta,
                      float eps, float *out);

// Bilinear affine warp with edge clamping (warp.c): out[k][y][x] samples plane k of `in` (h x w)
// at (x0 + dxdx x + dxdy y, y0 + dydx x + dydy y), for `planes` planes; out is planes x oh x ow.
void sk_warp_bilinear(const float *in, long w, long h, float *out, long ow, long oh, long planes,
                      float x0, float y0, float dxdx, float dxdy, float dydx, float dydy);

// Separable resampling of 8-bit pixels, `ch` interleaved channels (resample.c): out (oh x ow x ch)
// from in (h x w x ch, h implied by the row taps). Output column x reads source columns
// xidx[xoff[x] ..< xoff[x + 1]] with weights xwt[same]; rows likewise. row: w * ch doubles of scratch.
void sk_resample_u8(const unsigned char *in, long w, long ch, unsigned char *out, long ow, long oh,
                    const long *xoff, const long *xidx, const double *xwt,
                    const long *yoff, const long *yidx, const double *ywt, double *row);

// Per-thread scratch buffer that only grows. Slots 0-5 are used by the conv kernels, slot
// SK_SCRATCH_ATTENTION by sk_attention.
enum { SK_SCRATCH_ATTENTION = 6 };
float *sk_scratch(int slot, size_t floats);

// ---- autograd mode (thread-local) --------------------------------------------------------------
int sk_grad_enabled(void);
void sk_set_grad_enabled(int on);
int sk_backward_frees_graph(void);
void sk_set_backward_frees_graph(int on);

#ifdef __cplusplus
}
#endif
#endif
