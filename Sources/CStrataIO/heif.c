// HEIF pictures (HEIC, as phones store photos; AVIF) through libheif: the primary image, with the
// file's rotation, mirroring and crop applied (as libheif and PIL's pillow-heif do), as 8-bit RGB
// or RGBA. Each side is capped while libheif parses the file, and the whole picture is checked
// against the pixel limit before any pixel is decoded.
#include "strata_io.h"
#include <libheif/heif.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// libheif's message on one line (some end in a newline), for quoting in ours.
static const char *one_line(char *dst, size_t n, const char *msg) {
    snprintf(dst, n, "%s", msg ? msg : "");
    size_t len = strlen(dst);
    for (size_t i = 0; i < len; i++) if ((unsigned char)dst[i] < 32) dst[i] = ' ';
    while (len > 0 && dst[len - 1] == ' ') dst[--len] = 0;
    return dst;
}

int sio_heif_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen) {
    *pixels = NULL;
    const sio_limits_t *lim = sio_limits();
    struct heif_context *ctx = heif_context_alloc();
    struct heif_image_handle *handle = NULL;
    struct heif_image *img = NULL;
    struct heif_decoding_options *opt = NULL;
    uint8_t *buf = NULL;
    if (!ctx) { snprintf(err, errlen, "out of memory"); return 1; }
    // libheif refuses a side over this while it reads the boxes (its default is 32768).
    heif_context_set_maximum_image_size_limit(ctx, lim->max_image_pixels < INT_MAX ? (int)lim->max_image_pixels : INT_MAX);
    char why[256];
    struct heif_error e = heif_context_read_from_file(ctx, path, NULL);
    if (e.code != heif_error_Ok && e.subcode == heif_suberror_Security_limit_exceeded) {
        snprintf(err, errlen, "HEIF picture refused: %s; at most %llu a side, the pixel limit (set STRATA_MAX_IMAGE_PIXELS to change it)",
                 one_line(why, sizeof why, e.message), (unsigned long long)lim->max_image_pixels);
        goto fail;
    }
    if (e.code != heif_error_Ok) { snprintf(err, errlen, "not a readable HEIF/HEIC/AVIF picture (%s)", one_line(why, sizeof why, e.message)); goto fail; }
    e = heif_context_get_primary_image_handle(ctx, &handle);
    if (e.code != heif_error_Ok) { snprintf(err, errlen, "no primary picture (%s)", one_line(why, sizeof why, e.message)); goto fail; }
    int w = heif_image_handle_get_width(handle), h = heif_image_handle_get_height(handle);
    if (w <= 0 || h <= 0) { snprintf(err, errlen, "HEIF picture of %dx%d pixels", w, h); goto fail; }
    if (sio_pixel_limit_exceeded("HEIF", (uint64_t)w, (uint64_t)h, NULL, err, errlen)) goto fail;
    // The stored picture before its crop (ispe) is what gets decoded: a crop cannot hide a huge one.
    int sw = heif_image_handle_get_ispe_width(handle), sh = heif_image_handle_get_ispe_height(handle);
    if (sw > 0 && sh > 0 && sio_pixel_limit_exceeded("HEIF", (uint64_t)sw, (uint64_t)sh, " stored, before its crop", err, errlen)) goto fail;
    uint64_t area = (uint64_t)w * (uint64_t)h;
    int ch = heif_image_handle_has_alpha_channel(handle) ? 4 : 3;
    opt = heif_decoding_options_alloc();
    if (!opt) { snprintf(err, errlen, "out of memory"); goto fail; }
    opt->convert_hdr_to_8bit = 1;   // 10-bit photos come back as 8 bits a sample
    e = heif_decode_image(handle, &img, heif_colorspace_RGB, ch == 4 ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, opt);
    if (e.code != heif_error_Ok) { snprintf(err, errlen, "cannot decode the picture (%s)", one_line(why, sizeof why, e.message)); goto fail; }
    int iw = heif_image_get_width(img, heif_channel_interleaved), ih = heif_image_get_height(img, heif_channel_interleaved);
    int stride = 0;
    const uint8_t *plane = heif_image_get_plane_readonly(img, heif_channel_interleaved, &stride);
    if (!plane || iw <= 0 || ih <= 0 || (uint64_t)iw * (uint64_t)ih > area || stride < iw * ch
        || heif_image_get_bits_per_pixel_range(img, heif_channel_interleaved) != 8) {
        snprintf(err, errlen, "unsupported HEIF layout (%dx%d decoded from %dx%d)", iw, ih, w, h);
        goto fail;
    }
    buf = malloc((size_t)iw * ih * ch);
    if (!buf) { snprintf(err, errlen, "out of memory for %dx%d pixels", iw, ih); goto fail; }
    for (int y = 0; y < ih; y++) memcpy(buf + (size_t)y * iw * ch, plane + (size_t)y * stride, (size_t)iw * ch);
    heif_image_release(img);
    heif_decoding_options_free(opt);
    heif_image_handle_release(handle);
    heif_context_free(ctx);
    *pixels = buf;
    *width = iw;
    *height = ih;
    *channels = ch;
    return 0;
fail:
    if (img) heif_image_release(img);
    if (opt) heif_decoding_options_free(opt);
    if (handle) heif_image_handle_release(handle);
    heif_context_free(ctx);
    free(buf);
    return 1;
}

int sio_heif_encode_file(const char *path, const uint8_t *pixels, int width, int height, int quality, int orientation,
                         char *err, size_t errlen) {
    struct heif_context *ctx = heif_context_alloc();
    struct heif_encoder *enc = NULL;
    struct heif_image *img = NULL;
    struct heif_encoding_options *opt = NULL;
    int rc = 1;
    char why[256];
    if (!ctx) { snprintf(err, errlen, "out of memory"); return 1; }
    struct heif_error e = heif_context_get_encoder_for_format(ctx, heif_compression_HEVC, &enc);
    if (e.code != heif_error_Ok) { snprintf(err, errlen, "no HEVC encoder in libheif (%s)", one_line(why, sizeof why, e.message)); goto done; }
    heif_encoder_set_lossy_quality(enc, quality);
    e = heif_image_create(width, height, heif_colorspace_RGB, heif_chroma_interleaved_RGB, &img);
    if (e.code == heif_error_Ok) e = heif_image_add_plane(img, heif_channel_interleaved, width, height, 8);
    if (e.code != heif_error_Ok) { snprintf(err, errlen, "cannot make a %dx%d picture (%s)", width, height, one_line(why, sizeof why, e.message)); goto done; }
    int stride = 0;
    uint8_t *plane = heif_image_get_plane(img, heif_channel_interleaved, &stride);
    for (int y = 0; y < height; y++) memcpy(plane + (size_t)y * stride, pixels + (size_t)y * width * 3, (size_t)width * 3);
    opt = heif_encoding_options_alloc();
    if (!opt) { snprintf(err, errlen, "out of memory"); goto done; }
    opt->image_orientation = (enum heif_orientation)orientation;   // written as irot/imir boxes
    e = heif_context_encode_image(ctx, img, enc, opt, NULL);
    if (e.code == heif_error_Ok) e = heif_context_write_to_file(ctx, path);
    if (e.code != heif_error_Ok) { snprintf(err, errlen, "cannot encode HEIC (%s)", one_line(why, sizeof why, e.message)); goto done; }
    rc = 0;
done:
    if (opt) heif_encoding_options_free(opt);
    if (img) heif_image_release(img);
    if (enc) heif_encoder_release(enc);
    heif_context_free(ctx);
    return rc;
}
