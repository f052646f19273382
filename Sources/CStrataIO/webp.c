// WebP through libwebp: the header (WebPGetFeatures, from the first bytes) is checked against the
// pixel limit before the file is read whole or any pixel is allocated, and the pixels are decoded
// straight into our buffer. Animated WebP is refused (its first frame is not the picture).
#include "strata_io.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <webp/decode.h>
#include <webp/encode.h>

static const char *webp_status_text(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt data";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "a feature libwebp does not support";
    case VP8_STATUS_SUSPENDED: return "decoding suspended";
    case VP8_STATUS_USER_ABORT: return "decoding aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated";
    default: return "unknown error";
    }
}

int sio_webp_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen) {
    *pixels = NULL;
    const sio_limits_t *lim = sio_limits();
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open: %s", strerror(errno)); return 1; }
    uint8_t *data = NULL, *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) { snprintf(err, errlen, "cannot read: %s", strerror(errno)); goto fail; }
    // A WebP stores no more than its pixels: 4 bytes a pixel (lossless worst case) and 1 MiB of
    // chunks (ICC, EXIF, XMP) bound any file whose picture is within the pixel limit.
    uint64_t max_file = lim->max_image_pixels * 4 + (1u << 20);
    if ((uint64_t)st.st_size > max_file) {
        char limit[64];
        sio_pixels_text(limit, sizeof limit, lim->max_image_pixels);
        snprintf(err, errlen, "WebP file of %lld bytes, larger than any picture within the limit of %s (set STRATA_MAX_IMAGE_PIXELS to change it)",
                 (long long)st.st_size, limit);
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    // The header first: RIFF, then VP8/VP8L or VP8X with the canvas size, within 64 bytes.
    uint8_t head[64];
    size_t nhead = fread(head, 1, sizeof head, f);
    WebPBitstreamFeatures feat;
    VP8StatusCode s = WebPGetFeatures(head, nhead, &feat);
    if (s != VP8_STATUS_OK) { snprintf(err, errlen, "not a readable WebP (header: %s)", webp_status_text(s)); goto fail; }
    if (feat.width <= 0 || feat.height <= 0) { snprintf(err, errlen, "WebP header claims %dx%d pixels", feat.width, feat.height); goto fail; }
    if (sio_pixel_limit_exceeded("WebP", (uint64_t)feat.width, (uint64_t)feat.height, NULL, err, errlen)) goto fail;
    uint64_t area = (uint64_t)feat.width * (uint64_t)feat.height;   // each side under 2^24
    if (feat.has_animation) { snprintf(err, errlen, "an animated WebP, not a still picture"); goto fail; }
    data = malloc(size ? size : 1);
    if (!data) { snprintf(err, errlen, "out of memory for %zu bytes", size); goto fail; }
    rewind(f);
    if (fread(data, 1, size, f) != size) { snprintf(err, errlen, "cannot read: %s", ferror(f) ? strerror(errno) : "the file shrank while it was read"); goto fail; }
    int ch = feat.has_alpha ? 4 : 3;
    buf = malloc((size_t)area * ch);
    if (!buf) { snprintf(err, errlen, "out of memory for %dx%d pixels", feat.width, feat.height); goto fail; }
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) { snprintf(err, errlen, "libwebp version mismatch"); goto fail; }
    config.output.colorspace = feat.has_alpha ? MODE_RGBA : MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = buf;
    config.output.u.RGBA.stride = feat.width * ch;
    config.output.u.RGBA.size = (size_t)area * ch;
    s = WebPDecode(data, size, &config);
    WebPFreeDecBuffer(&config.output);   // frees nothing of ours (external memory)
    if (s != VP8_STATUS_OK) { snprintf(err, errlen, "not a readable WebP (%s)", webp_status_text(s)); goto fail; }
    free(data);
    fclose(f);
    *pixels = buf;
    *width = feat.width;
    *height = feat.height;
    *channels = ch;
    return 0;
fail:
    fclose(f);
    free(data);
    free(buf);
    return 1;
}

int sio_webp_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                    uint8_t **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    *len = 0;
    if (channels != 3 && channels != 4) { snprintf(err, errlen, "WebP needs 3 or 4 channels, got %d", channels); return 1; }
    uint8_t *enc = NULL;
    size_t n;
    int stride = width * channels;
    if (quality < 0)
        n = channels == 3 ? WebPEncodeLosslessRGB(pixels, width, height, stride, &enc) : WebPEncodeLosslessRGBA(pixels, width, height, stride, &enc);
    else
        n = channels == 3 ? WebPEncodeRGB(pixels, width, height, stride, (float)quality, &enc)
                          : WebPEncodeRGBA(pixels, width, height, stride, (float)quality, &enc);
    if (n == 0) { WebPFree(enc); snprintf(err, errlen, "cannot encode %dx%d pixels as WebP", width, height); return 1; }
    // Handed out with malloc, so that sio_free releases it like every other buffer here.
    *out = malloc(n);
    if (!*out) { WebPFree(enc); snprintf(err, errlen, "out of memory"); return 1; }
    memcpy(*out, enc, n);
    WebPFree(enc);
    *len = n;
    return 0;
}
