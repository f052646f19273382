// Times strata_sgemm of two or more builds of CStrata side by side, in one process, call after
// call, at one shape: so a host whose speed drifts from minute to minute slows every build alike.
//
//   gcc -shared -o /tmp/new/lib.so .build/release/CStrata.build/*.c.o -lpthread -lm   # per build
//   gcc -O2 -I Sources/CStrata/include Tools/gemm_ab.c -ldl -o /tmp/gemm_ab
//   SHAPE=64,256,784 TRANS=0,1 /tmp/gemm_ab /tmp/old/lib.so /tmp/new/lib.so   # M,N,K; op(A), op(B)
//
// Prints best and median GFLOP/s of ROUNDS rounds (default 15) per build, each round REPS calls.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*sgemm_fn)(int, int, long, long, long, float, const float *, long, const float *, long, float, float *,
                         long);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: gemm_ab LIB.so [LIB.so ...]\n"); return 1; }
    long M = 64, N = 256, K = 784;
    int ta = 0, tb = 1, rounds = 15, reps = 200;
    if (getenv("SHAPE") && sscanf(getenv("SHAPE"), "%ld,%ld,%ld", &M, &N, &K) != 3) { fprintf(stderr, "SHAPE: M,N,K\n"); return 1; }
    if (getenv("TRANS") && sscanf(getenv("TRANS"), "%d,%d", &ta, &tb) != 2) { fprintf(stderr, "TRANS: a,b\n"); return 1; }
    if (getenv("ROUNDS")) rounds = atoi(getenv("ROUNDS"));
    if (getenv("REPS")) reps = atoi(getenv("REPS"));
    int nl = argc - 1;
    sgemm_fn *fn = calloc(nl, sizeof *fn);
    for (int l = 0; l < nl; l++) {
        void *h = dlopen(argv[l + 1], RTLD_NOW | RTLD_LOCAL);
        if (!h || !(fn[l] = (sgemm_fn)dlsym(h, "strata_sgemm"))) { fprintf(stderr, "%s: %s\n", argv[l + 1], dlerror()); return 1; }
    }
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = malloc(sizeof(float) * M * N);
    for (long i = 0; i < M * K; i++) a[i] = (float)((i * 7919) % 1000) / 1000 - 0.5f;
    for (long i = 0; i < K * N; i++) b[i] = (float)((i * 104729) % 1000) / 1000 - 0.5f;
    long lda = ta ? M : K, ldb = tb ? K : N;
    double *t = calloc((size_t)nl * rounds, sizeof *t);
    for (int l = 0; l < nl; l++) for (int i = 0; i < 20; i++) fn[l](ta, tb, M, N, K, 1, a, lda, b, ldb, 0, c, N);
    for (int r = 0; r < rounds; r++)
        for (int l = 0; l < nl; l++) {
            double t0 = now();
            for (int i = 0; i < reps; i++) fn[l](ta, tb, M, N, K, 1, a, lda, b, ldb, 0, c, N);
            t[l * rounds + r] = 2.0 * M * N * K * reps / (now() - t0) / 1e9;
        }
    for (int l = 0; l < nl; l++) {
        qsort(t + l * rounds, rounds, sizeof *t, cmp);
        printf("%-28s M %ld N %ld K %ld op %d,%d: best %.1f, median %.1f GFLOP/s\n", argv[l + 1], M, N, K, ta, tb,
               t[l * rounds + rounds - 1], t[l * rounds + rounds / 2]);
    }
    return 0;
}
