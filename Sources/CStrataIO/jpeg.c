// JPEG through libjpeg-turbo, turned upright by the EXIF orientation (exif.c). libjpeg reports fatal errors through error_exit, which must not
// return: it longjmps back here so the error becomes a message instead of exit().
#include "strata_io.h"
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int warnings;
    char message[JMSG_LENGTH_MAX];
} sio_jpeg_error;

// A progress monitor that refuses a progressive file past `max_scans` scans. libjpeg calls it
// while jpeg_start_decompress reads every scan of a progressive file into its coefficient buffer,
// so a file of thousands of (cheap to write, costly to decode) scans stops at scan max_scans + 1.
typedef struct {
    struct jpeg_progress_mgr pub;
    sio_jpeg_error *errors;
    unsigned max_scans;
    int too_many_scans;
} sio_jpeg_progress;

static void on_progress(j_common_ptr cinfo) {
    sio_jpeg_progress *p = (sio_jpeg_progress *)cinfo->progress;
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > 0 && (unsigned)d->input_scan_number > p->max_scans) {
        p->too_many_scans = d->input_scan_number;
        longjmp(p->errors->jump, 1);
    }
}

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

// Where source pixel (x, y) of a w x h picture lands once turned upright for EXIF orientation o,
// as a pixel index into the turned picture: base + x * dx + y * dy. Orientations 5-8 swap the
// sides (the turned picture is h wide). As PIL's ImageOps.exif_transpose: 2 mirrors left-right,
// 3 turns 180 degrees, 4 mirrors top-bottom, 5 transposes, 6 turns 90 degrees clockwise,
// 7 transverses, 8 turns 90 degrees anticlockwise.
static void orientation_steps(int o, ptrdiff_t w, ptrdiff_t h, ptrdiff_t *base, ptrdiff_t *dx, ptrdiff_t *dy) {
    switch (o) {
    case 2: *base = w - 1; *dx = -1; *dy = w; break;
    case 3: *base = (h - 1) * w + w - 1; *dx = -1; *dy = -w; break;
    case 4: *base = (h - 1) * w; *dx = 1; *dy = -w; break;
    case 5: *base = 0; *dx = h; *dy = 1; break;
    case 6: *base = h - 1; *dx = h; *dy = -1; break;
    case 7: *base = (w - 1) * h + h - 1; *dx = -h; *dy = -1; break;
    case 8: *base = (w - 1) * h; *dx = -h; *dy = 1; break;
    default: *base = 0; *dx = 1; *dy = w; break;
    }
}

// The EXIF orientation of the first APP1 "Exif" segment that jpeg_read_header saved; 1 without one.
static int saved_orientation(j_decompress_ptr cinfo) {
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0)
            return sio_exif_orientation(m->data, m->data_length);
    }
    return 1;
}

enum { STRIP = 16 };   // rows decoded at a time before they are turned into place

int sio_jpeg_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen) {
    return sio_jpeg_decode_scaled(path, 0, NULL, pixels, width, height, channels, err, errlen);
}

int sio_jpeg_decode_scaled(const char *path, int min_long_side, int *scale_denom, uint8_t **pixels, int *width, int *height,
                           int *channels, char *err, size_t errlen) {
    *pixels = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open: %s", strerror(errno)); return 1; }
    struct jpeg_decompress_struct cinfo;
    sio_jpeg_error jerr;
    cinfo.err = error_manager(&jerr);
    jerr.pub.emit_message = on_message;
    const sio_limits_t *lim = sio_limits();
    sio_jpeg_progress progress;
    memset(&progress, 0, sizeof progress);
    progress.pub.progress_monitor = on_progress;
    progress.errors = &jerr;
    progress.max_scans = lim->max_jpeg_scans;
    uint8_t *volatile buf = NULL, *volatile strip = NULL;
    if (setjmp(jerr.jump)) {
        if (progress.too_many_scans)
            snprintf(err, errlen, "progressive JPEG with more than %u scans, the limit (it reached scan %d; set STRATA_MAX_JPEG_SCANS to change it)",
                     lim->max_jpeg_scans, progress.too_many_scans);
        else if (jerr.pub.msg_code == JERR_NO_BACKING_STORE || jerr.pub.msg_code == JERR_OUT_OF_MEMORY)
            snprintf(err, errlen, "JPEG too large to decode within %llu MiB, 6 bytes a pixel of the pixel limit (%s; set STRATA_MAX_IMAGE_PIXELS to change it)",
                     (unsigned long long)(lim->max_jpeg_memory >> 20), jerr.message);
        else
            snprintf(err, errlen, "corrupt JPEG (%s)", jerr.message);
        goto fail;
    }
    jpeg_create_decompress(&cinfo);
    // Caps libjpeg's own buffers (a progressive file keeps every coefficient of the picture).
    cinfo.mem->max_memory_to_use = lim->max_jpeg_memory > (uint64_t)LONG_MAX ? LONG_MAX : (long)lim->max_jpeg_memory;
    cinfo.progress = &progress.pub;
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    int orientation = saved_orientation(&cinfo);
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk) cinfo.out_color_space = JCS_CMYK;
    else if (cinfo.num_components == 1) cinfo.out_color_space = JCS_GRAYSCALE;
    else cinfo.out_color_space = JCS_RGB;
    unsigned denom = 1;
    if (min_long_side > 0) {
        // The largest DCT reduction whose longer side (ceil(side / denom), as libjpeg rounds) stays
        // at least min_long_side. Turning the picture does not change its longer side.
        unsigned long longer = cinfo.image_width > cinfo.image_height ? cinfo.image_width : cinfo.image_height;
        denom = 8;
        while (denom > 1 && (longer + denom - 1) / denom < (unsigned long)min_long_side) denom /= 2;
    }
    if (scale_denom) *scale_denom = (int)denom;
    cinfo.scale_num = 1;
    cinfo.scale_denom = denom;
    jpeg_calc_output_dimensions(&cinfo);
    // Sides are at most 65535 in a JPEG header: the product fits 64 bits.
    if (sio_pixel_limit_exceeded("JPEG", cinfo.output_width, cinfo.output_height, denom > 1 ? " after DCT scaling" : NULL, err, errlen)) goto fail;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, inch = cinfo.output_components;
    int outch = cmyk ? 3 : inch;
    int turned = orientation >= 5;
    ptrdiff_t base, dx, dy;
    orientation_steps(orientation, w, h, &base, &dx, &dy);
    buf = malloc((size_t)w * h * outch);
    if (!buf) { snprintf(err, errlen, "out of memory for %dx%d pixels", w, h); goto fail; }
    // Upright files without CMYK decode straight into place; the rest go through a strip of rows.
    int direct = orientation == 1 && !cmyk;
    if (!direct) {
        strip = malloc((size_t)STRIP * w * inch);
        if (!strip) { snprintf(err, errlen, "out of memory"); goto fail; }
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        int y0 = (int)cinfo.output_scanline;
        int n = h - y0 < STRIP ? h - y0 : STRIP;
        JSAMPROW rows[STRIP];
        for (int i = 0; i < n; i++)
            rows[i] = direct ? buf + (size_t)(y0 + i) * w * outch : strip + (size_t)i * w * inch;
        for (int got = 0; got < n;) {
            JDIMENSION r = jpeg_read_scanlines(&cinfo, rows + got, (JDIMENSION)(n - got));
            // libjpeg fills a truncated image with grey and only warns; treat that as corrupt, at once.
            if (jerr.warnings || r == 0) {
                snprintf(err, errlen, "corrupt or truncated JPEG (%s)", jerr.warnings ? jerr.message : "no rows decoded");
                goto fail;
            }
            got += (int)r;
        }
        if (direct) continue;
        if (cmyk) {
            // Adobe writes inverted CMYK; libjpeg hands it back as stored. R = C*K/255 on inverted
            // values. In place: pixel x's 3 bytes never overtake pixel x's 4.
            int inverted = cinfo.saw_Adobe_marker;
            for (int i = 0; i < n; i++) {
                uint8_t *line = rows[i];
                for (int x = 0; x < w; x++) {
                    int c = line[4 * x], m = line[4 * x + 1], yy = line[4 * x + 2], k = line[4 * x + 3];
                    if (!inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
                    line[3 * x] = (uint8_t)(c * k / 255);
                    line[3 * x + 1] = (uint8_t)(m * k / 255);
                    line[3 * x + 2] = (uint8_t)(yy * k / 255);
                }
            }
        }
        // Turned orientations write a strip column by column, so each source column lands as a
        // run of n neighbouring pixels in one row of the turned picture.
        if (turned) {
            for (int x = 0; x < w; x++) {
                for (int i = 0; i < n; i++) {
                    const uint8_t *s = rows[i] + (size_t)x * outch;
                    uint8_t *d = buf + (size_t)(base + x * dx + (ptrdiff_t)(y0 + i) * dy) * outch;
                    for (int c = 0; c < outch; c++) d[c] = s[c];
                }
            }
        } else {
            for (int i = 0; i < n; i++) {
                const uint8_t *s = rows[i];
                uint8_t *d = buf + (size_t)(base + (ptrdiff_t)(y0 + i) * dy) * outch;
                if (dx == 1) { memcpy(d, s, (size_t)w * outch); continue; }
                for (int x = 0; x < w; x++, s += outch, d -= outch)
                    for (int c = 0; c < outch; c++) d[c] = s[c];
            }
        }
    }
    free(strip);
    strip = NULL;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    *pixels = buf;
    *width = turned ? h : w;
    *height = turned ? w : h;
    *channels = outch;
    return 0;
fail:
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    free(strip);
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
