// Separable resampling of 8-bit images with interleaved channels (StrataData's Image.resized).
// Each axis comes as taps in compressed rows: output o reads source indices idx[off[o] ..< off[o+1]]
// with weights wt[same]. Rows first: an output row is the weighted sum of its source rows, a loop
// over all w * ch values that vectorises; then each output pixel sums its source columns of that
// row. Sums are in double, as the non-separable loop this replaced had them, so the bytes come out
// the same but where the exact sum is a half, which either order of summation may round either way.
// Contraction into FMAs is off, so every ISA's copy gives the same bytes.
#include "strata_kernels.h"
#include "multi_isa.h"

#pragma clang fp contract(off)

SK_BODY void sk_resample_u8_body(const unsigned char *in, long w, long ch, unsigned char *out, long ow, long oh,
                                 const long *xoff, const long *xidx, const double *xwt,
                                 const long *yoff, const long *yidx, const double *ywt, double *row) {
    const long n = w * ch;
    for (long y = 0; y < oh; y++) {
        // row[0 ..< w*ch] = sum over the row taps of weight * source row
        const long k0 = yoff[y], k1 = yoff[y + 1];
        const unsigned char *s = in + yidx[k0] * n;
        const double f0 = ywt[k0];
        for (long i = 0; i < n; i++) row[i] = f0 * (double)s[i];
        for (long k = k0 + 1; k < k1; k++) {
            const unsigned char *r = in + yidx[k] * n;
            const double f = ywt[k];
            for (long i = 0; i < n; i++) row[i] += f * (double)r[i];
        }
        // out[y][x][c] = sum over the column taps of weight * row[column][c], rounded half away from zero
        unsigned char *o = out + y * ow * ch;
        for (long x = 0; x < ow; x++) {
            const long j0 = xoff[x], j1 = xoff[x + 1];
            for (long c = 0; c < ch; c++) {
                double v = 0.0;
                for (long j = j0; j < j1; j++) v += xwt[j] * row[xidx[j] * ch + c];
                v = __builtin_round(v);
                o[x * ch + c] = (unsigned char)(v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v);
            }
        }
    }
}
SK_MULTI_ISA_VOID(, sk_resample_u8,
                  (const unsigned char *in, long w, long ch, unsigned char *out, long ow, long oh, const long *xoff, const long *xidx,
                   const double *xwt, const long *yoff, const long *yidx, const double *ywt, double *row),
                  (in, w, ch, out, ow, oh, xoff, xidx, xwt, yoff, yidx, ywt, row))
