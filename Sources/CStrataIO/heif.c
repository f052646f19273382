// HEIF pictures (HEIC, as phones store photos; AVIF) through libheif: the primary image, with the
// file's rotation, mirroring and crop applied (as libheif and PIL's pillow-heif do), as 8-bit RGB
// or RGBA. Every stored picture and canvas the file declares is checked against the pixel limit
// before libheif reads it, each side is capped while libheif parses it, and the picture to decode
// is checked again before any pixel is decoded.
#include "strata_io.h"
#include <libheif/heif.h>
#include <limits.h>
#include <stddef.h>
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

// ---- What libheif 1.15 sizes from the file without an area limit ----
// A grid's or an overlay's canvas comes from the item's own data (not from its ispe property),
// and libheif caps only each side of it, as it does for every ispe (tiles, thumbnails, alpha
// and depth pictures). So before libheif sees the file, the meta box is walked: every ispe, and
// the canvas of every grid and iovl item, is held to the pixel limit. A malformed meta box is
// refused here too: no reading of it may be trusted that this walk could not follow.

typedef struct { const uint8_t *p; size_t n; } span_t;

static uint64_t be(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
    return v;
}

static uint32_t fourcc(const char *s) { return (uint32_t)be((const uint8_t *)s, 4); }

// The box at *pos in s: its type and payload; *pos moves past it. 0 at the end, -1 if malformed.
static int next_box(span_t s, size_t *pos, uint32_t *type, span_t *payload) {
    if (*pos >= s.n) return 0;
    size_t left = s.n - *pos;
    if (left < 8) return -1;
    const uint8_t *b = s.p + *pos;
    uint64_t size = be(b, 4);
    size_t head = 8;
    *type = (uint32_t)be(b + 4, 4);
    if (size == 1) {
        if (left < 16) return -1;
        size = be(b + 8, 8);
        head = 16;
    } else if (size == 0) {
        size = left;   // to the end of the enclosing box
    }
    if (size < head || size > left) return -1;
    payload->p = b + head;
    payload->n = (size_t)size - head;
    *pos += (size_t)size;
    return 1;
}

typedef struct { uint32_t id, type; } derived_t;

static int cmp_id(const void *a, const void *b) {
    uint32_t x = ((const derived_t *)a)->id, y = ((const derived_t *)b)->id;
    return (x > y) - (x < y);
}

// Up to `want` bytes of an item's data from its iloc extents (file offsets, or idat offsets for
// construction method 1) into out; the count found.
static size_t item_bytes(span_t file, span_t idat, int method, uint64_t base, const uint64_t *ext, int n_ext,
                         uint8_t *out, size_t want) {
    span_t from = method == 1 ? idat : file;
    size_t got = 0;
    for (int i = 0; i < n_ext && got < want; i++) {
        uint64_t off = base + ext[2 * i], len = ext[2 * i + 1];
        if (off < base || off >= from.n) break;   // overflowed or out of range
        uint64_t avail = from.n - off;
        if (len == 0 || len > avail) len = avail;   // 0: to the end
        size_t take = len < want - got ? (size_t)len : want - got;
        memcpy(out + got, from.p + off, take);
        got += take;
        if (take < len) break;
    }
    return got;
}

// 0 when the file's pictures are all within the pixel limit (or it is not a walkable HEIF, left
// to libheif to refuse); 1 with a message otherwise.
static int heif_sizes_exceed_limit(span_t file, char *err, size_t errlen) {
    span_t meta = {0}, box;
    uint32_t type;
    size_t pos = 0;
    int r;
    while ((r = next_box(file, &pos, &type, &box)) > 0)
        if (type == fourcc("meta")) { meta = box; break; }
    if (!meta.p || meta.n < 4) return 0;   // no meta box: libheif refuses the file itself
    meta.p += 4; meta.n -= 4;               // version and flags
    span_t iinf[8], iloc[8], idat = {0}, ipco[8];
    int n_iinf = 0, n_iloc = 0, n_ipco = 0;
    for (pos = 0; (r = next_box(meta, &pos, &type, &box)) > 0;) {
        if (type == fourcc("iinf") && n_iinf < 8) iinf[n_iinf++] = box;
        else if (type == fourcc("iloc") && n_iloc < 8) iloc[n_iloc++] = box;
        else if (type == fourcc("idat") && !idat.p) idat = box;
        else if (type == fourcc("iprp")) {
            size_t q = 0;
            span_t child;
            while ((r = next_box(box, &q, &type, &child)) > 0)
                if (type == fourcc("ipco") && n_ipco < 8) ipco[n_ipco++] = child;
            if (r < 0) goto malformed;
        }
    }
    if (r < 0) goto malformed;
    // Every ispe: the stored size of some picture in the file.
    for (int k = 0; k < n_ipco; k++) {
        size_t q = 0;
        while ((r = next_box(ipco[k], &q, &type, &box)) > 0)
            if (type == fourcc("ispe") && box.n >= 12
                && sio_pixel_limit_exceeded("HEIF", be(box.p + 4, 4), be(box.p + 8, 4), " stored", err, errlen)) return 1;
        if (r < 0) goto malformed;
    }
    // The grid and overlay items (infe version 2 or 3 names the item's type).
    derived_t *derived = NULL;
    size_t n_derived = 0, cap = 0;
    for (int k = 0; k < n_iinf; k++) {
        if (iinf[k].n < 6) continue;
        span_t entries = { iinf[k].p + (iinf[k].p[0] == 0 ? 6 : 8), 0 };
        if ((size_t)(entries.p - iinf[k].p) > iinf[k].n) continue;
        entries.n = iinf[k].n - (size_t)(entries.p - iinf[k].p);
        size_t q = 0;
        while ((r = next_box(entries, &q, &type, &box)) > 0) {
            if (type != fourcc("infe") || box.n < 4 || box.p[0] < 2) continue;
            int idlen = box.p[0] == 2 ? 2 : 4;
            if (box.n < (size_t)(4 + idlen + 2 + 4)) continue;
            uint32_t item_type = (uint32_t)be(box.p + 4 + idlen + 2, 4);
            if (item_type != fourcc("grid") && item_type != fourcc("iovl")) continue;
            if (n_derived == cap) {
                size_t ncap = cap ? cap * 2 : 16;   // grows with boxes present, not with a count
                derived_t *d = realloc(derived, ncap * sizeof *d);
                if (!d) { free(derived); snprintf(err, errlen, "out of memory"); return 1; }
                derived = d;
                cap = ncap;
            }
            derived[n_derived].id = (uint32_t)be(box.p + 4, idlen);
            derived[n_derived++].type = item_type;
        }
        if (r < 0) { free(derived); goto malformed; }
    }
    if (n_derived == 0) return 0;
    qsort(derived, n_derived, sizeof *derived, cmp_id);
    int result = 0;
    for (int k = 0; k < n_iloc && !result; k++) {
        const uint8_t *p = iloc[k].p, *end = iloc[k].p + iloc[k].n;
        if (iloc[k].n < 8) goto bad_iloc;
        int version = p[0];
        if (version > 2) goto bad_iloc;
        int offset_size = p[4] >> 4, length_size = p[4] & 15, base_size = p[5] >> 4;
        int index_size = version >= 1 ? (p[5] & 15) : 0;
        int sizes[4] = {offset_size, length_size, base_size, index_size};
        for (int i = 0; i < 4; i++) if (sizes[i] != 0 && sizes[i] != 4 && sizes[i] != 8) goto bad_iloc;
        int idlen = version == 2 ? 4 : 2;
        p += 6;
        if (end - p < idlen) goto bad_iloc;
        uint64_t count = be(p, idlen);
        p += idlen;
        for (uint64_t i = 0; i < count && !result; i++) {
            if (end - p < idlen) goto bad_iloc;
            uint32_t id = (uint32_t)be(p, idlen);
            p += idlen;
            int method = 0;
            if (version >= 1) { if (end - p < 2) goto bad_iloc; method = p[1] & 15; p += 2; }
            if (end - p < 2 + base_size + 2) goto bad_iloc;
            uint64_t base = be(p + 2, base_size);
            p += 2 + base_size;
            int n_ext = (int)be(p, 2);
            p += 2;
            int per = index_size + offset_size + length_size;
            if (end - p < (ptrdiff_t)n_ext * per) goto bad_iloc;
            const uint8_t *ext_p = p;
            p += (size_t)n_ext * per;
            derived_t key = { id, 0 };
            const derived_t *item = bsearch(&key, derived, n_derived, sizeof *derived, cmp_id);
            if (!item) continue;
            // Only the first few extents can hold a canvas's 20 bytes.
            uint64_t ext[2 * 20];
            int n = n_ext < 20 ? n_ext : 20;
            for (int e = 0; e < n; e++) {
                const uint8_t *x = ext_p + (size_t)e * per + index_size;
                ext[2 * e] = be(x, offset_size);
                ext[2 * e + 1] = be(x + offset_size, length_size);
            }
            // grid: version, flags, rows-1, columns-1, then width and height; iovl: version,
            // flags, four 16-bit fill values, then width and height. Both 32-bit with flags bit 0.
            uint8_t d[20];
            size_t got = method <= 1 ? item_bytes(file, idat, method, base, ext, n, d, sizeof d) : 0;
            int overlay = item->type == fourcc("iovl");
            size_t at = overlay ? 10 : 4, field = got >= 2 && (d[1] & 1) ? 4 : 2;
            if (got < at + 2 * field) goto unreadable;
            if (sio_pixel_limit_exceeded("HEIF", be(d + at, (int)field), be(d + at + field, (int)field),
                                         overlay ? " on its overlay canvas" : " in its grid", err, errlen)) result = 1;
        }
        continue;
bad_iloc:
        snprintf(err, errlen, "not a readable HEIF/HEIC/AVIF picture (its iloc box is malformed)");
        result = 1;
        break;
unreadable:
        snprintf(err, errlen, "not a readable HEIF/HEIC/AVIF picture (the size of a grid or overlay picture cannot be read)");
        result = 1;
        break;
    }
    free(derived);
    return result;
malformed:
    snprintf(err, errlen, "not a readable HEIF/HEIC/AVIF picture (a malformed box in its meta box)");
    return 1;
}

int sio_heif_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen) {
    *pixels = NULL;
    const sio_limits_t *lim = sio_limits();
    struct heif_context *ctx = heif_context_alloc();
    struct heif_image_handle *handle = NULL;
    struct heif_image *img = NULL;
    struct heif_decoding_options *opt = NULL;
    uint8_t *buf = NULL, *file = NULL;
    size_t file_len = 0;
    if (!ctx) { snprintf(err, errlen, "out of memory"); return 1; }
    if (sio_read_picture_file(path, "HEIF", &file, &file_len, err, errlen)) goto fail;
    if (heif_sizes_exceed_limit((span_t){ file, file_len }, err, errlen)) goto fail;
    // libheif refuses a side over this while it reads the boxes (its default is 32768).
    heif_context_set_maximum_image_size_limit(ctx, lim->max_image_pixels < INT_MAX ? (int)lim->max_image_pixels : INT_MAX);
    char why[256];
    struct heif_error e = heif_context_read_from_memory_without_copy(ctx, file, file_len, NULL);
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
    // Again as libheif read them: the stored picture before its crop (ispe) is what gets decoded.
    int sw = heif_image_handle_get_ispe_width(handle), sh = heif_image_handle_get_ispe_height(handle);
    if (sw > 0 && sh > 0 && sio_pixel_limit_exceeded("HEIF", (uint64_t)sw, (uint64_t)sh, " stored", err, errlen)) goto fail;
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
    free(file);
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
    free(file);
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
