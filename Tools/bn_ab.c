// Times the fused training-mode BatchNorm + 2x2 max pooling + ReLU (forward and backward) of up to
// four builds of CStrata in one process, call after call, as Tools/conv_ab.c does for convolutions.
//
//   gcc -shared -o /tmp/new/lib.so .build/release/CStrata.build/*.c.o -lpthread -lm   # per build
//   gcc -O2 Tools/bn_ab.c -ldl -o /tmp/bn_ab
//   SHAPE=64,32,64 REPS=30 /tmp/bn_ab /tmp/old/lib.so /tmp/new/lib.so   # N, C, H (= W): the face
//                                                                        # network's first layer
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
typedef void (*fwd_fn)(long, long, long, long, const float *, const float *, const float *, float *, uint8_t *, float *, float *, float *, float, int);
typedef void (*bwd_fn)(long, long, long, long, const float *, const float *, const float *, const float *, const uint8_t *, const float *, const float *, float, float *, float *, float *);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    long N = 64, C = 32, H = 64;
    if (getenv("SHAPE") && sscanf(getenv("SHAPE"), "%ld,%ld,%ld", &N, &C, &H) != 3) {
        fprintf(stderr, "SHAPE must be N,C,H\n");
        return 1;
    }
    int reps = getenv("REPS") ? atoi(getenv("REPS")) : 30, B = argc - 1;
    if (B < 1 || B > 4 || reps < 1 || reps > 400 || N < 1 || C < 1 || H < 2) {
        fprintf(stderr, "usage: SHAPE=N,C,H REPS=1..400 %s lib.so [lib.so ...] (at most 4)\n", argv[0]);
        return 1;
    }
    fwd_fn f[4]; bwd_fn b[4];
    for (int v = 0; v < B; v++) {
        void *h = dlopen(argv[v + 1], RTLD_NOW | RTLD_LOCAL);
        if (!h) { fprintf(stderr, "%s\n", dlerror()); return 1; }
        f[v] = (fwd_fn)dlsym(h, "sk_batchnorm_maxpool_forward");
        b[v] = (bwd_fn)dlsym(h, "sk_batchnorm_maxpool_backward");
        if (!f[v] || !b[v]) { fprintf(stderr, "%s: no fused BatchNorm + pooling kernels\n", argv[v + 1]); return 1; }
    }
    long xs = N * C * H * H, ys = xs / 4;
    float *x = malloc(xs * 4), *gx = malloc(xs * 4), *y = malloc(ys * 4), *xw = malloc(ys * 4), *gy = malloc(ys * 4);
    float *w = malloc(C * 4), *bb = malloc(C * 4), *mean = malloc(C * 4), *var = malloc(C * 4), *gw = malloc(C * 4), *gb = malloc(C * 4);
    uint8_t *code = malloc(ys);
    if (!x || !gx || !y || !xw || !gy || !w || !bb || !mean || !var || !gw || !gb || !code) {
        fprintf(stderr, "out of memory for SHAPE %ld,%ld,%ld\n", N, C, H);
        return 1;
    }
    srand(1);
    for (long i = 0; i < xs; i++) x[i] = rand() / (float)RAND_MAX - 0.4f;
    for (long i = 0; i < ys; i++) gy[i] = rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < C; i++) { w[i] = 1 + 0.01f * i; bb[i] = 0.1f; }
    double tf[4][400], tb[4][400];
    for (int r = -3; r < reps; r++)
        for (int v = 0; v < B; v++) {
            double t0 = now();
            f[v](N, C, H, H, x, w, bb, y, code, xw, mean, var, 1e-5f, 1);
            double t1 = now();
            b[v](N, C, H, H, x, w, mean, var, code, xw, gy, 1e-5f, gx, gw, gb);
            double t2 = now();
            if (r >= 0) { tf[v][r] = t1 - t0; tb[v][r] = t2 - t1; }
        }
    for (int v = 0; v < B; v++) {
        qsort(tf[v], reps, 8, cmp); qsort(tb[v], reps, 8, cmp);
        printf("%s fwd best %.3f med %.3f | bwd best %.3f med %.3f ms  (%.1f / %.1f GB/s of x)\n", argv[v + 1], tf[v][0] * 1e3, tf[v][reps / 2] * 1e3,
               tb[v][0] * 1e3, tb[v][reps / 2] * 1e3, xs * 4 / tf[v][0] / 1e9, xs * 4 / tb[v][0] / 1e9);
    }
    return 0;
}
