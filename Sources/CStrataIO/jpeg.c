// JPEG through libjpeg-turbo. libjpeg reports fatal errors through error_exit, which must not
// return: it longjmps back here so the error becomes a message instead of exit().
#include "strata_io.h"
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int warnings;
    char message[JMSG_LENGTH_MAX];
} sio_jpeg_error;

static void on_error(j_common_ptr cinfo) {
    sio_jpeg_error *e = (sio_jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    sio_jpeg_error *e = (sio_jpeg_error *)cinfo->err;
    if (level < 0) {   // warnings, e.g. "Premature end of JPEG file": remember the first one
        if (!e->warnings) (*cinfo->err->format_message)(cinfo, e->message);
        e->warnings++;
    }
}

// libjpeg's standard error manager in `e`, with fatal errors sent to on_error.
static struct jpeg_error_mgr *error_manager(sio_jpeg_error *e) {
    memset(e, 0, sizeof *e);
    struct jpeg_error_mgr *m = jpeg_std_error(&e->pub);
    e->pub.error_exit = on_error;
    return m;
}

int sio_jpeg_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen) {
    *pixels = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open: %s", strerror(errno)); return 1; }
    struct jpeg_decompress_struct cinfo;
    sio_jpeg_error jerr;
    cinfo.err = error_manager(&jerr);
    jerr.pub.emit_message = on_message;
    uint8_t *volatile buf = NULL, *volatile row = NULL;
    if (setjmp(jerr.jump)) {
        snprintf(err, errlen, "corrupt JPEG (%s)", jerr.message);
        goto fail;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk) cinfo.out_color_space = JCS_CMYK;
    else if (cinfo.num_components == 1) cinfo.out_color_space = JCS_GRAYSCALE;
    else cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, inch = cinfo.output_components;
    int outch = cmyk ? 3 : inch;
    buf = malloc((size_t)w * h * outch);
    uint8_t *line = malloc((size_t)w * inch);
    row = line;   // freed on an error exit
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW r = line;
        int y = (int)cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &r, 1);
        uint8_t *dst = buf + (size_t)y * w * outch;
        if (!cmyk) {
            memcpy(dst, line, (size_t)w * inch);
        } else {
            // Adobe writes inverted CMYK; libjpeg hands it back as stored. R = C*K/255 on inverted values.
            int inverted = cinfo.saw_Adobe_marker;
            for (int x = 0; x < w; x++) {
                int c = line[4 * x], m = line[4 * x + 1], yy = line[4 * x + 2], k = line[4 * x + 3];
                if (!inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
                dst[3 * x] = (uint8_t)(c * k / 255);
                dst[3 * x + 1] = (uint8_t)(m * k / 255);
                dst[3 * x + 2] = (uint8_t)(yy * k / 255);
            }
        }
    }
    free(row);
    row = NULL;
    if (jerr.warnings) {
        // libjpeg fills a truncated image with grey and only warns; treat that as corrupt.
        snprintf(err, errlen, "corrupt or truncated JPEG (%s)", jerr.message);
        goto fail;
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    *pixels = buf;
    *width = w;
    *height = h;
    *channels = outch;
    return 0;
fail:
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    free(row);
    free(buf);
    return 1;
}

int sio_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                    uint8_t **out, size_t *len, char *err, size_t errlen) {
    // 4 channels are written as CMYK with an Adobe marker (stored inverted, as Photoshop does).
    *out = NULL;
    if (channels != 1 && channels != 3 && channels != 4) { snprintf(err, errlen, "JPEG needs 1, 3 or 4 (CMYK) channels, got %d", channels); return 1; }
    FILE *f = open_memstream((char **)out, len);
    if (!f) { snprintf(err, errlen, "out of memory"); return 1; }
    struct jpeg_compress_struct cinfo;
    sio_jpeg_error jerr;
    cinfo.err = error_manager(&jerr);
    if (setjmp(jerr.jump)) {
        snprintf(err, errlen, "cannot write JPEG (%s)", jerr.message);
        jpeg_destroy_compress(&cinfo);
        fclose(f);
        free(*out);
        *out = NULL;
        return 1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW r = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * channels);
        jpeg_write_scanlines(&cinfo, &r, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    if (fclose(f) == 0) return 0;
    snprintf(err, errlen, "out of memory");
    free(*out);
    *out = NULL;
    return 1;
}
