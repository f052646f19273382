// Bilinear sampling of an affine warp (StrataData's Augmentation and Warp): output pixel (x, y)
// reads the input at (x0 + dxdx x + dxdy y, y0 + dydx x + dydy y), clamped to the image so edge
// pixels repeat. Per run of up to 64 output pixels of a row, the four source indices and weights
// are computed once (a loop that vectorises), then each plane is gathered with them.
#include "strata_kernels.h"
#include "multi_isa.h"

#define RUN 64

SK_BODY void sk_warp_bilinear_body(const float *in, long w, long h, float *out, long ow, long oh, long planes,
                             float x0, float y0, float dxdx, float dxdy, float dydx, float dydy) {
    int i00[RUN], i01[RUN], i10[RUN], i11[RUN];
    float w00[RUN], w01[RUN], w10[RUN], w11[RUN];
    const float maxX = (float)(w - 1), maxY = (float)(h - 1);
    const long inPlane = w * h, outPlane = ow * oh;
    for (long y = 0; y < oh; y++) {
        const float rx = x0 + dxdy * (float)y, ry = y0 + dydy * (float)y;
        for (long x = 0; x < ow; x += RUN) {
            const int n = ow - x < RUN ? (int)(ow - x) : RUN;
            for (int i = 0; i < n; i++) {
                float sx = rx + dxdx * (float)(x + i), sy = ry + dydx * (float)(x + i);
                float xc = sx > 0.0f ? (sx < maxX ? sx : maxX) : 0.0f;   // NaN -> 0
                float yc = sy > 0.0f ? (sy < maxY ? sy : maxY) : 0.0f;
                int xi = (int)xc, yi = (int)yc;
                int x1 = xi + 1 < w ? xi + 1 : (int)w - 1, y1 = yi + 1 < h ? yi + 1 : (int)h - 1;
                float fx = xc - (float)xi, fy = yc - (float)yi;
                i00[i] = yi * (int)w + xi; i01[i] = yi * (int)w + x1;
                i10[i] = y1 * (int)w + xi; i11[i] = y1 * (int)w + x1;
                w00[i] = (1 - fx) * (1 - fy); w01[i] = fx * (1 - fy);
                w10[i] = (1 - fx) * fy;       w11[i] = fx * fy;
            }
            for (long k = 0; k < planes; k++) {
                const float *p = in + k * inPlane;
                float *o = out + k * outPlane + y * ow + x;
                for (int i = 0; i < n; i++) o[i] = p[i00[i]] * w00[i] + p[i01[i]] * w01[i] + p[i10[i]] * w10[i] + p[i11[i]] * w11[i];
            }
        }
    }
}
SK_MULTI_ISA_VOID(, sk_warp_bilinear, (const float *in, long w, long h, float *out, long ow, long oh, long planes, float x0, float y0, float dxdx, float dxdy, float dydx, float dydy), (in, w, h, out, ow, oh, planes, x0, y0, dxdx, dxdy, dydx, dydy))
