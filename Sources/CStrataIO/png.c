// PNG through libpng's low-level API, for its limits: png_set_user_limits refuses a header whose
// sides are over the limit while libpng reads it, and png_set_chunk_malloc_max caps what one
// ancillary chunk (zTXt, iCCP) may inflate to. libpng reports errors through a callback that must
// not return: it longjmps back here so they become messages. Encoding uses the simplified API.
#include "strata_io.h"
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char message[256];
    char limit_warning[256];   // why libpng refused IHDR when a side is over png_set_user_limits
} sio_png_error;

static void on_png_error(png_structp png, png_const_charp msg) {
    sio_png_error *e = png_get_error_ptr(png);
    snprintf(e->message, sizeof e->message, "%s", msg);
    png_longjmp(png, 1);
}

// libpng warns of a side over png_set_user_limits, then fails with "Invalid IHDR data": the
// warning is kept for the message. Other warnings are benign (a bad ancillary chunk is skipped).
static void on_png_warning(png_structp png, png_const_charp msg) {
    sio_png_error *e = png_get_error_ptr(png);
    if (strstr(msg, "exceeds user limit") && !e->limit_warning[0]) snprintf(e->limit_warning, sizeof e->limit_warning, "%s", msg);
}

int sio_png_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                   char *err, size_t errlen) {
    *pixels = NULL;
    const sio_limits_t *lim = sio_limits();
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open: %s", strerror(errno)); return 1; }
    sio_png_error perr;
    memset(&perr, 0, sizeof perr);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &perr, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile buf = NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) { snprintf(err, errlen, "out of memory"); goto fail; }
    if (setjmp(png_jmpbuf(png))) {
        // libpng's own words for a side over png_set_user_limits: name ours as well.
        if (perr.limit_warning[0])
            snprintf(err, errlen, "PNG header refused: %s, at most %llu a side, the pixel limit (set STRATA_MAX_IMAGE_PIXELS to change it)",
                     perr.limit_warning, (unsigned long long)lim->max_image_pixels);
        else
            snprintf(err, errlen, "not a readable PNG (%s)", perr.message);
        goto fail;
    }
    png_init_io(png, f);
    // Each side at most the pixel limit (libpng takes 32-bit sides, at most 2^31 - 1).
    png_uint_32 side = lim->max_image_pixels < 0x7fffffffu ? (png_uint_32)lim->max_image_pixels : 0x7fffffffu;
    png_set_user_limits(png, side, side);
    png_set_chunk_malloc_max(png, SIO_PNG_MAX_CHUNK_BYTES);
    png_set_chunk_cache_max(png, SIO_PNG_MAX_CHUNKS);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (sio_pixel_limit_exceeded("PNG", w, h, NULL, err, errlen)) goto fail;
    uint64_t area = (uint64_t)w * h;   // both under 2^31: no overflow
    int type = png_get_color_type(png, info);
    // 8-bit samples as stored: palettes become RGB (RGBA with tRNS), low bit depths 8 bits,
    // tRNS an alpha channel, 16-bit samples their high byte (as PIL reads them).
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || ch < 1 || ch > 4 || rowbytes != (size_t)w * ch) {
        snprintf(err, errlen, "unsupported PNG layout (colour type %d)", type);
        goto fail;
    }
    // area <= max_image_pixels <= 2^40 and ch <= 4, h < 2^31: every size below fits 64 bits.
    buf = malloc((size_t)area * ch);
    rows = malloc((size_t)h * sizeof(png_bytep));
    if (!buf || !rows) { snprintf(err, errlen, "out of memory for %ux%u pixels", w, h); goto fail; }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = buf + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    rows = NULL;
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    if (ch == 2) {   // grey + alpha: keep grey
        for (size_t i = 0; i < area; i++) buf[i] = buf[2 * i];
        ch = 1;
    }
    *pixels = buf;
    *width = (int)w;
    *height = (int)h;
    *channels = ch;
    return 0;
fail:
    if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    fclose(f);
    free(rows);
    free(buf);
    return 1;
}

int sio_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *len,
                   char *err, size_t errlen) {
    *out = NULL;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)width;
    img.height = (png_uint_32)height;
    switch (channels) {
    case 1: img.format = PNG_FORMAT_GRAY; break;
    case 3: img.format = PNG_FORMAT_RGB; break;
    case 4: img.format = PNG_FORMAT_RGBA; break;
    default: snprintf(err, errlen, "PNG needs 1, 3 or 4 channels, got %d", channels); return 1;
    }
    FILE *f = open_memstream((char **)out, len);
    if (!f) { snprintf(err, errlen, "out of memory"); return 1; }
    int ok = png_image_write_to_stdio(&img, f, 0, pixels, 0, NULL);
    if (!ok) snprintf(err, errlen, "cannot write PNG (%s)", img.message);
    if (fclose(f) != 0 && ok) { ok = 0; snprintf(err, errlen, "out of memory"); }
    if (!ok) { free(*out); *out = NULL; }
    return !ok;
}
