// Vectors of 4 floats or ints (clang vector extensions) for kernels written once and compiled for
// every ISA (multi_isa.h): each copy maps them to its own registers, and they need no cross-lane
// shuffles (slow on a Zen 1). Loads and stores go through memcpy, so pointers need no alignment.
#ifndef STRATA_VEC4_H
#define STRATA_VEC4_H
#include <stdint.h>
#include <string.h>

typedef float wf4 __attribute__((vector_size(16), aligned(4)));
typedef int32_t wi4 __attribute__((vector_size(16), aligned(4)));
typedef uint8_t wb4 __attribute__((vector_size(4), aligned(1)));

static inline __attribute__((always_inline)) wf4 load4(const float *p) { wf4 v; memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void store4(float *p, wf4 v) { memcpy(p, &v, sizeof v); }

// A store that bypasses the caches (p: 16-byte aligned), for output the next kernels will not read
// soon. Stores like these are weakly ordered: the writer ends with stream_fence() before another
// thread may read them.
typedef float wf4_aligned __attribute__((vector_size(16)));
static inline __attribute__((always_inline)) void store4_stream(float *p, wf4 v) {
    __builtin_nontemporal_store((wf4_aligned)v, (wf4_aligned *)p);
}
static inline __attribute__((always_inline)) void stream_fence(void) { __builtin_ia32_sfence(); }

// Four bytes widened to ints, and four ints (0-255) narrowed to bytes.
static inline __attribute__((always_inline)) wi4 load4_u8(const uint8_t *p) {
    wb4 v;
    memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, wi4);
}
static inline __attribute__((always_inline)) void store4_u8(uint8_t *p, wi4 v) {
    wb4 b = __builtin_convertvector(v, wb4);
    memcpy(p, &b, sizeof b);
}

// mask ? a : b, lane by lane (mask: a comparison's all-ones or zero lanes).
static inline __attribute__((always_inline)) wf4 select4(wi4 mask, wf4 a, wf4 b) {
    return (wf4)(((wi4)a & mask) | ((wi4)b & ~mask));
}
static inline __attribute__((always_inline)) wi4 select4i(wi4 mask, wi4 a, wi4 b) { return (a & mask) | (b & ~mask); }
#endif
