// 16x16 (AVX-512) and 8x8 (AVX2) float transposes in registers, shared by the packing and layout kernels.
#ifndef STRATA_SIMD_TRANSPOSE_H
#define STRATA_SIMD_TRANSPOSE_H
#include <immintrin.h>

// r[i] holds row i (16 floats); afterwards r[c] holds column c.
__attribute__((target("avx512f"))) static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));   // columns 0,4,8,12 of rows 4i..4i+3
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));   // columns 1,5,9,13
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));   // columns 2,6,10,14
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));   // columns 3,7,11,15
    }
    for (int q = 0; q < 4; q++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88), v1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
        __m512 w0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD), w1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
        r[q] = _mm512_shuffle_f32x4(v0, v1, 0x88);
        r[q + 8] = _mm512_shuffle_f32x4(v0, v1, 0xDD);
        r[q + 4] = _mm512_shuffle_f32x4(w0, w1, 0x88);
        r[q + 12] = _mm512_shuffle_f32x4(w0, w1, 0xDD);
    }
}


// r[i] holds row i (8 floats); afterwards r[c] holds column c.
__attribute__((target("avx2"))) static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);       // r0[0] r1[0] r0[1] r1[1] | [4] [5]
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);   // r0[2] r1[2] r0[3] r1[3] | [6] [7]
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);       // columns 0 | 4 of rows 4i..4i+3
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);       // columns 1 | 5
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);   // columns 2 | 6
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);   // columns 3 | 7
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
    }
}

#endif
