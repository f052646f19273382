// Run-time CPU feature detection: the one place that decides which kernel variants run.
#include "strata_kernels.h"
#include <stdlib.h>
#include <string.h>

static int detected_isa = -1;
static int forced_isa = 99;

static int detect(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}

int strata_cpu_isa(void) {
    if (detected_isa < 0) {
        int isa = detect();
        // STRATA_ISA=avx2|generic lowers the level, e.g. to test the fallbacks on an AVX-512 CPU.
        const char *env = getenv("STRATA_ISA");
        if (env && strcmp(env, "avx2") == 0 && isa > 1) isa = 1;
        if (env && strcmp(env, "generic") == 0) isa = 0;
        detected_isa = isa;
    }
    return detected_isa < forced_isa ? detected_isa : forced_isa;
}

void strata_force_isa(int isa) { forced_isa = isa < 0 ? 99 : isa; }

const char *strata_cpu_isa_name(void) {
    switch (strata_cpu_isa()) {
    case 2: return "avx512";
    case 1: return "avx2";
    default: return "generic";
    }
}

// Autograd recording switch, per thread, so a no-grad scope on one thread does not affect another.
static _Thread_local int grad_disabled = 0;
int sk_grad_enabled(void) { return !grad_disabled; }
void sk_set_grad_enabled(int on) { grad_disabled = !on; }
// Set while this thread's backward() frees the graph as it goes (retainGraph false), so a
// backward rule may write its input gradient over a saved tensor nothing else holds.
static _Thread_local int backward_frees = 0;
int sk_backward_frees_graph(void) { return backward_frees; }
void sk_set_backward_frees_graph(int on) { backward_frees = on; }
