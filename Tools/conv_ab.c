// Times the fused convolution + 2x2 max pooling + ReLU (forward and backward) of two or more
// builds of CStrata side by side, in one process, call after call: so a host whose speed drifts
// from minute to minute slows every build alike, which separate runs cannot promise.
//
//   # each build's objects as a shared library (repeat per checkout, e.g. into /tmp/old, /tmp/new)
//   gcc -shared -o /tmp/new/lib.so .build/release/CStrata.build/*.c.o -lpthread -lm
//   gcc -O2 -I Sources/CStrata/include Tools/conv_ab.c -ldl -o /tmp/conv_ab
//   /tmp/conv_ab /tmp/old/lib.so /tmp/new/lib.so           # the CNN's second convolution
//   SHAPE=32,64,128,28 REPS=40 /tmp/conv_ab ...             # N, Cin, Cout, H (= W), 3x3, padding 1
//   OP=conv SHAPE=64,3,32,64 /tmp/conv_ab ...               # the plain convolution (no pooling)
//   OP=conv GX=0 ...                                         # ... without the input gradient (a first layer)
//   BWD=0 SHAPE=1,32,64,14 ...                               # the forward alone (inference, batch 1)
//   MODES=0,3 /tmp/conv_ab lib.so lib.so                     # one build, direct against F(4x4) Winograd
//
// Each library has its own thread pool, whose workers spin a little after each job; the builds
// alternate, so each pays the same for the other's.
#include "strata_kernels.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*forward_fn)(const sk_conv_shape *, const float *, const float *, const float *, float *, uint8_t *, int);
typedef void (*backward_fn)(const sk_conv_shape *, const float *, const float *, const uint8_t *, const float *, float *,
                            float *, float *);
typedef void (*conv_forward_fn)(const sk_conv_shape *, const float *, const float *, const float *, float *);
typedef void (*conv_backward_fn)(const sk_conv_shape *, const float *, const float *, const float *, float *, float *,
                                 float *);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float uniform(void) { return rand() / (float)RAND_MAX - 0.5f; }

int main(int argc, char **argv) {
    enum { MAX_BUILDS = 4 };
    int builds = argc - 1;
    if (builds < 1 || builds > MAX_BUILDS) {
        fprintf(stderr, "usage: %s lib.so [lib.so ...] (at most %d)\n", argv[0], MAX_BUILDS);
        return 1;
    }
    long N = 64, C = 32, CO = 64, H = 14;
    if (getenv("SHAPE") && sscanf(getenv("SHAPE"), "%ld,%ld,%ld,%ld", &N, &C, &CO, &H) != 4) {
        fprintf(stderr, "SHAPE must be N,Cin,Cout,H\n");
        return 1;
    }
    int reps = getenv("REPS") ? atoi(getenv("REPS")) : 200;
    if (N < 1 || C < 1 || CO < 1 || H < 2 || reps < 1) {
        fprintf(stderr, "SHAPE and REPS must be positive (H at least 2)\n");
        return 1;
    }
    int plain = getenv("OP") && strcmp(getenv("OP"), "conv") == 0;
    int want_gx = !getenv("GX") || atoi(getenv("GX")) != 0;
    int want_bwd = !getenv("BWD") || atoi(getenv("BWD")) != 0;
    forward_fn fwd[MAX_BUILDS];
    backward_fn bwd[MAX_BUILDS];
    conv_forward_fn cfwd[MAX_BUILDS];
    conv_backward_fn cbwd[MAX_BUILDS];
    void (*force[MAX_BUILDS])(int);
    // MODES=a,b,...: the Winograd mode each build runs under (sk_winograd_force; -1 its default),
    // so one library can be timed against itself, e.g. direct (0) against F(4x4) (3).
    int modes[MAX_BUILDS] = {-1, -1, -1, -1};
    if (getenv("MODES")) {
        const char *m = getenv("MODES");
        for (int v = 0; v < MAX_BUILDS && *m; v++) {
            modes[v] = atoi(m);
            while (*m && *m != ',') m++;
            if (*m == ',') m++;
        }
    }
    for (int v = 0; v < builds; v++) {
        void *h = dlopen(argv[v + 1], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        fwd[v] = (forward_fn)dlsym(h, "sk_conv2d_maxpool_forward");
        bwd[v] = (backward_fn)dlsym(h, "sk_conv2d_maxpool_backward");
        cfwd[v] = (conv_forward_fn)dlsym(h, "sk_conv2d_forward");
        cbwd[v] = (conv_backward_fn)dlsym(h, "sk_conv2d_backward");
        force[v] = (void (*)(int))dlsym(h, "sk_winograd_force");
        if (!fwd[v] || !bwd[v] || !cfwd[v] || !cbwd[v]) {
            fprintf(stderr, "%s: no fused convolution + pooling kernels\n", argv[v + 1]);
            return 1;
        }
    }
    sk_conv_shape s = {0};
    s.n = N; s.c = C; s.h = H; s.w = H; s.cout = CO; s.kh = 3; s.kw = 3; s.sh = 1; s.sw = 1;
    s.ph = 1; s.pw = 1; s.dh = 1; s.dw = 1; s.groups = 1; s.oh = H; s.ow = H;
    long xs = N * C * H * H, ws = CO * C * 9, ys = plain ? N * CO * H * H : N * CO * (H / 2) * (H / 2);
    float *x = malloc(xs * sizeof(float)), *w = malloc(ws * sizeof(float)), *b = malloc(CO * sizeof(float));
    float *y = malloc(ys * sizeof(float)), *gy = malloc(ys * sizeof(float)), *gx = malloc(xs * sizeof(float));
    float *gw = malloc(ws * sizeof(float)), *gb = malloc(CO * sizeof(float));
    uint8_t *codes = malloc(ys);
    double *tf = calloc((size_t)builds * reps, sizeof(double)), *tb = calloc((size_t)builds * reps, sizeof(double));
    if (!x || !w || !b || !y || !gy || !gx || !gw || !gb || !codes || !tf || !tb) {
        fprintf(stderr, "out of memory for SHAPE %ld,%ld,%ld,%ld\n", N, C, CO, H);
        return 1;
    }
    srand(1);
    for (long i = 0; i < xs; i++) x[i] = uniform();
    for (long i = 0; i < ws; i++) w[i] = 0.2f * uniform();
    for (long i = 0; i < CO; i++) b[i] = 0.01f * i;
    for (long i = 0; i < ys; i++) gy[i] = uniform();
    for (int r = -3; r < reps; r++)   // three rounds of warm-up
        for (int v = 0; v < builds; v++) {
            if (force[v]) force[v](modes[v]);
            double t0 = now();
            if (plain) cfwd[v](&s, x, w, b, y);
            else fwd[v](&s, x, w, b, y, codes, 1);
            double t1 = now();
            if (!want_bwd) {
            } else if (plain) cbwd[v](&s, x, w, gy, want_gx ? gx : 0, gw, gb);
            else bwd[v](&s, x, w, codes, gy, want_gx ? gx : 0, gw, gb);
            double t2 = now();
            if (r >= 0) {
                tf[v * reps + r] = t1 - t0;
                tb[v * reps + r] = t2 - t1;
            }
        }
    for (int v = 0; v < builds; v++) {
        qsort(tf + v * reps, reps, sizeof(double), by_value);
        qsort(tb + v * reps, reps, sizeof(double), by_value);
        printf("%-32s forward best %.3f median %.3f ms | backward best %.3f median %.3f ms\n", argv[v + 1],
               tf[v * reps] * 1e3, tf[v * reps + reps / 2] * 1e3, tb[v * reps] * 1e3, tb[v * reps + reps / 2] * 1e3);
    }
    return 0;
}
