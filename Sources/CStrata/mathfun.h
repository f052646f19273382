// Branch-free float math that the compiler can vectorise (libm calls would stay scalar).
// Range reduction plus minimax/Cephes-style polynomials; about 1-2 ulp over the float range.
// NaN inputs give NaN outputs, which the trainer relies on to detect a diverged loss.
#ifndef STRATA_MATHFUN_H
#define STRATA_MATHFUN_H

#include <stdint.h>

// sqrt without errno (sqrtf may set errno for negative input, which blocks vectorisation).
#if defined(__has_builtin) && __has_builtin(__builtin_elementwise_sqrt)
#define SK_SQRT_F(x) __builtin_elementwise_sqrt(x)
#else
#define SK_SQRT_F(x) __builtin_sqrtf(x)
#endif

static inline float sf_bits_to_float(int32_t i) {
    union { int32_t i; float f; } u = {i};
    return u.f;
}
static inline int32_t sf_float_to_bits(float f) {
    union { float f; int32_t i; } u = {f};
    return u.i;
}

// exp(x): x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial, 2^n from the exponent bits.
static inline float sf_exp(float x) {
    // Written so that NaN fails the first test and takes the bound: converting NaN to int below
    // is undefined behaviour in C (UndefinedBehaviorSanitizer's float-cast-overflow).
    float xc = x < 88.37626f ? x : 88.37626f;
    xc = xc > -87.33654f ? xc : -87.33654f;
    float n = __builtin_rintf(xc * 1.44269504088896341f);
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.0f;
    float scale = sf_bits_to_float(((int32_t)n + 127) << 23);
    float y = p * scale;
    // Outside the clamp: +inf above, 0 below; NaN in, NaN out.
    y = x > 88.72283f ? __builtin_inff() : y;
    y = x < -103.0f ? 0.0f : y;
    y = x != x ? x : y;
    return y;
}

// log(x): x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) by a polynomial in (m - 1).
static inline float sf_log(float x) {
    int32_t bits = sf_float_to_bits(x);
    int32_t e = ((bits >> 23) & 0xff) - 126;
    float m = sf_bits_to_float((bits & 0x007fffff) | 0x3f000000);   // [0.5, 1)
    int small = m < 0.707106781186547524f;
    e = small ? e - 1 : e;
    m = small ? m + m - 1.0f : m - 1.0f;
    float z = m * m;
    float p = 7.0376836292E-2f;
    p = p * m - 1.1514610310E-1f;
    p = p * m + 1.1676998740E-1f;
    p = p * m - 1.2420140846E-1f;
    p = p * m + 1.4249322787E-1f;
    p = p * m - 1.6668057665E-1f;
    p = p * m + 2.0000714765E-1f;
    p = p * m - 2.4999993993E-1f;
    p = p * m + 3.3333331174E-1f;
    float fe = (float)e;
    float y = p * m * z;
    y = y + fe * -2.12194440e-4f;
    y = y - 0.5f * z;
    float r = m + y;
    r = r + fe * 0.693359375f;
    // Special cases: subnormals are treated as 0 (log -> -inf), negative -> NaN, inf -> inf.
    r = x < 1.17549435e-38f ? -__builtin_inff() : r;
    r = x < 0.0f ? __builtin_nanf("") : r;
    r = x == __builtin_inff() ? __builtin_inff() : r;
    r = x != x ? x : r;
    return r;
}

static inline float sf_sigmoid(float x) { return 1.0f / (1.0f + sf_exp(-x)); }

// tanh: an odd polynomial near 0 (no cancellation), 1 - 2/(exp(2|x|)+1) elsewhere.
static inline float sf_tanh(float x) {
    float ax = x < 0 ? -x : x;
    float z = x * x;
    float p = -5.70498872745E-3f;
    p = p * z + 2.06390887954E-2f;
    p = p * z - 5.37397155531E-2f;
    p = p * z + 1.33314422036E-1f;
    p = p * z - 3.33332819422E-1f;
    float small = x + x * z * p;
    float big = 1.0f - 2.0f / (sf_exp(2.0f * ax) + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : big;
}

// erf via erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + z/2) (fractional error < 1.2e-7).
static inline float sf_erf(float x) {
    float z = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    float erfc = t * sf_exp(-z * z + p);
    float r = 1.0f - erfc;
    return x < 0 ? -r : r;
}

#endif
