// WebP through libwebp: a file too large for any picture within the pixel limit is refused
// unread, the header (WebPGetFeatures) is checked against the limit before any pixel is
// allocated, and the pixels are decoded straight into our buffer. Animated WebP is refused (its
// first frame is not the picture).
#include "strata_io.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    uint8_t *data = NULL, *buf = NULL;
    size_t size = 0;
    if (sio_read_picture_file(path, "WebP", &data, &size, err, errlen)) return 1;
    // The header: RIFF, then VP8/VP8L or VP8X with the canvas size.
    WebPBitstreamFeatures feat;
    VP8StatusCode s = WebPGetFeatures(data, size, &feat);
    if (s != VP8_STATUS_OK) { snprintf(err, errlen, "not a readable WebP (header: %s)", webp_status_text(s)); goto fail; }
    if (feat.width <= 0 || feat.height <= 0) { snprintf(err, errlen, "WebP header claims %dx%d pixels", feat.width, feat.height); goto fail; }
    if (sio_pixel_limit_exceeded("WebP", (uint64_t)feat.width, (uint64_t)feat.height, NULL, err, errlen)) goto fail;
    uint64_t area = (uint64_t)feat.width * (uint64_t)feat.height;   // each side under 2^24
    if (feat.has_animation) { snprintf(err, errlen, "an animated WebP, not a still picture"); goto fail; }
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
    *pixels = buf;
    *width = feat.width;
    *height = feat.height;
    *channels = ch;
    return 0;
fail:
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
