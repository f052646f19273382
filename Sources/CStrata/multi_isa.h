// Kernels written once in plain C and compiled three times, for AVX-512, AVX2 and baseline x86-64
// (the features target_clones gave them), and chosen at each call by strata_cpu_isa(): so
// STRATA_ISA=avx2 holds them to AVX2 like the hand-written kernels, where target_clones would
// choose by the CPU alone.
//
//   SK_BODY void scale_body(long n, float a, float *x) { for (long i = 0; i < n; i++) x[i] *= a; }
//   SK_MULTI_ISA_VOID(static, scale, (long n, float a, float *x), (n, a, x))
#ifndef STRATA_MULTI_ISA_H
#define STRATA_MULTI_ISA_H

#include "strata_kernels.h"

#define SK_BODY static inline __attribute__((always_inline))

#define SK_MULTI_ISA_VOID(linkage, name, params, args) SK_MULTI_ISA_VOID_WITH((), linkage, name, params, args)

// The same with extra attributes on each copy, e.g. SK_NO_LIBC_CALLS: short copy and zero loops
// stay inline instead of becoming memcpy / memset calls.
#define SK_NO_LIBC_CALLS (no_builtin("memset", "memcpy"))
#define SK_MULTI_ISA_VOID_WITH(attrs, linkage, name, params, args)                                          \
    __attribute__((target("avx512f"))) __attribute__(attrs) static void name##_v_avx512 params { name##_body args; } \
    __attribute__((target("avx2"))) __attribute__(attrs) static void name##_v_avx2 params { name##_body args; }      \
    __attribute__(attrs) static void name##_v_generic params { name##_body args; }                                    \
    linkage void name params {                                                                 \
        int isa_ = strata_cpu_isa();                                                           \
        if (isa_ >= 2) name##_v_avx512 args;                                                     \
        else if (isa_ == 1) name##_v_avx2 args;                                                  \
        else name##_v_generic args;                                                              \
    }

#define SK_MULTI_ISA(linkage, ret, name, params, args)                                                 \
    __attribute__((target("avx512f"))) static ret name##_v_avx512 params { return name##_body args; } \
    __attribute__((target("avx2"))) static ret name##_v_avx2 params { return name##_body args; }      \
    static ret name##_v_generic params { return name##_body args; }                                    \
    linkage ret name params {                                                                        \
        int isa_ = strata_cpu_isa();                                                                 \
        return isa_ >= 2 ? name##_v_avx512 args : isa_ == 1 ? name##_v_avx2 args : name##_v_generic args;  \
    }

#endif
