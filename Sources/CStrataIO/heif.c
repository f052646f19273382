// HEIF pictures (HEIC, as phones store photos; AVIF) through libheif: the primary image, with the
// file's rotation, mirroring and crop applied (as libheif and PIL's pillow-heif do), as 8-bit RGB
// or RGBA. Every stored picture, canvas and coded picture size (HEVC parameter sets, AV1 sequence
// headers) the file declares is checked against the pixel limit before libheif reads it, each side is capped while libheif parses it, and the picture to decode
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
// and depth pictures); libde265 and dav1d allocate the picture an HEVC parameter set or an AV1
// sequence header declares. So before libheif sees the file, the meta box is walked: every ispe,
// the canvas of every grid and iovl item, and the picture of every HEVC sequence parameter set
// and AV1 sequence header (in hvcC and av1C properties, and in the items' coded data) are held to
// the pixel limit. A malformed meta box is refused here too: no reading
// of it may be trusted that this walk could not follow.

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

typedef struct { uint32_t id, type; } item_t;   // an item of a type the walk checks

static int cmp_id(const void *a, const void *b) {
    uint32_t x = ((const item_t *)a)->id, y = ((const item_t *)b)->id;
    return (x > y) - (x < y);
}

// Where an item's data lies (one iloc entry): `from` is the file, or the idat box's payload for
// construction method 1; `ext` the entry's extents, each index, offset and length fields.
typedef struct {
    span_t from;
    uint64_t base;
    const uint8_t *ext;
    int n_ext, index_size, offset_size, length_size;
} item_loc_t;

// Extent i as a span of loc->from (a length of 0 runs to the end); 0 when it starts outside.
static int extent_span(const item_loc_t *loc, int i, span_t *out) {
    const uint8_t *x = loc->ext + (size_t)i * (loc->index_size + loc->offset_size + loc->length_size) + loc->index_size;
    uint64_t off = loc->base + be(x, loc->offset_size), len = be(x + loc->offset_size, loc->length_size);
    if (off < loc->base || off >= loc->from.n) return 0;   // overflowed or out of range
    uint64_t avail = loc->from.n - off;
    if (len == 0 || len > avail) len = avail;
    out->p = loc->from.p + off;
    out->n = (size_t)len;
    return 1;
}

// Up to `want` bytes from the start of an item's data into out; the count found.
static size_t item_bytes(const item_loc_t *loc, uint8_t *out, size_t want) {
    size_t got = 0;
    span_t e;
    for (int i = 0; i < loc->n_ext && got < want && extent_span(loc, i, &e); i++) {
        size_t take = e.n < want - got ? e.n : want - got;
        memcpy(out + got, e.p, take);
        got += take;
    }
    return got;
}

// ---- HEVC sequence parameter sets: libde265 allocates the picture they declare ----
// An SPS (in an hvcC property, or among an item's coded NAL units) states the coded picture's
// size; libde265 allocates it whatever the file's ispe says (a 391-byte file declaring 16384x16384
// cost 1.6 GB). Only the fields before the size are read.

typedef struct { uint8_t b[512]; size_t n, bit; } rbsp_t;   // room for the longest AV1 sequence header

static int rb_bits(rbsp_t *r, int n, uint32_t *v) {   // n <= 32
    if (r->bit + (size_t)n > r->n * 8) return -1;
    uint32_t x = 0;
    for (int i = 0; i < n; i++, r->bit++) x = x << 1 | (uint32_t)(r->b[r->bit >> 3] >> (7 - (r->bit & 7)) & 1);
    *v = x;
    return 0;
}

static int rb_ue(rbsp_t *r, uint32_t *v) {   // Exp-Golomb, as H.265 9.2
    int zeros = 0;
    uint32_t bit, rest = 0;
    for (;;) {
        if (rb_bits(r, 1, &bit)) return -1;
        if (bit) break;
        if (++zeros > 31) return -1;
    }
    if (zeros && rb_bits(r, zeros, &rest)) return -1;
    *v = (uint32_t)((1ull << zeros) - 1 + rest);
    return 0;
}

// The picture size an SPS NAL unit (with its 2-byte header) declares; -1 when it is cut short.
static int hevc_sps_size(const uint8_t *nal, size_t len, uint32_t *w, uint32_t *h) {
    rbsp_t r = { .n = 0, .bit = 0 };
    int zeros = 0;
    for (size_t i = 2; i < len && r.n < sizeof r.b; i++) {   // drop emulation-prevention bytes
        if (zeros >= 2 && nal[i] == 3) { zeros = 0; continue; }
        zeros = nal[i] == 0 ? zeros + 1 : 0;
        r.b[r.n++] = nal[i];
    }
    uint32_t v, sub_layers, profile[8], level[8];
    if (rb_bits(&r, 4, &v) || rb_bits(&r, 3, &sub_layers) || rb_bits(&r, 1, &v)) return -1;
    r.bit += 96;   // general profile, tier and level (H.265 7.3.3)
    for (uint32_t i = 0; i < sub_layers; i++)
        if (rb_bits(&r, 1, &profile[i]) || rb_bits(&r, 1, &level[i])) return -1;
    if (sub_layers > 0) r.bit += 2 * (8 - sub_layers);
    for (uint32_t i = 0; i < sub_layers; i++) r.bit += (profile[i] ? 88 : 0) + (level[i] ? 8 : 0);
    if (rb_ue(&r, &v) || rb_ue(&r, &v)) return -1;   // sps id, chroma_format_idc
    if (v == 3 && rb_bits(&r, 1, &v)) return -1;     // separate_colour_plane_flag
    return rb_ue(&r, w) || rb_ue(&r, h) ? -1 : 0;
}

static int is_sps(const uint8_t *nal, size_t len) { return len >= 2 && (nal[0] >> 1 & 0x3F) == 33; }

static int sps_exceeds_limit(const uint8_t *nal, size_t len, char *err, size_t errlen) {
    uint32_t w, h;
    return hevc_sps_size(nal, len, &w, &h) == 0
        && sio_pixel_limit_exceeded("HEVC", w, h, " in a sequence parameter set", err, errlen);
}

// The parameter sets of an hvcC property (ISO/IEC 14496-15 8.3.3: 22 bytes, then arrays of
// 2-byte-length NAL units).
static int hvcc_exceeds_limit(span_t hvcc, char *err, size_t errlen) {
    if (hvcc.n < 23) return 0;
    size_t pos = 23;
    for (int a = 0, arrays = hvcc.p[22]; a < arrays; a++) {
        if (hvcc.n - pos < 3) return 0;
        size_t count = (size_t)be(hvcc.p + pos + 1, 2);
        pos += 3;
        for (size_t k = 0; k < count; k++) {
            if (hvcc.n - pos < 2) return 0;
            size_t len = (size_t)be(hvcc.p + pos, 2);
            pos += 2;
            if (hvcc.n - pos < len) return 0;
            if (is_sps(hvcc.p + pos, len) && sps_exceeds_limit(hvcc.p + pos, len, err, errlen)) return 1;
            pos += len;
        }
    }
    return 0;
}

// Every complete NAL unit of an HEVC item's data, across its extents, as libheif hands them to
// libde265 (each after a 4-byte big-endian length): an SPS among them is checked too.
static int hevc_item_exceeds_limit(const item_loc_t *loc, char *err, size_t errlen) {
    uint8_t head[4], nal[256];
    size_t have_head = 0, have_nal = 0;
    uint64_t left = 0;   // bytes of the current NAL unit still to come
    span_t e;
    for (int i = 0; i < loc->n_ext && extent_span(loc, i, &e); i++) {
        while (e.n > 0) {
            if (left == 0) {   // a length prefix
                head[have_head++] = *e.p++;
                e.n--;
                if (have_head == 4) { left = be(head, 4); have_head = have_nal = 0; }
                continue;
            }
            size_t take = e.n < left ? e.n : (size_t)left;
            if (have_nal < sizeof nal) {
                size_t keep = take < sizeof nal - have_nal ? take : sizeof nal - have_nal;
                memcpy(nal + have_nal, e.p, keep);
                have_nal += keep;
            }
            e.p += take;
            e.n -= take;
            left -= take;
            if (left == 0 && is_sps(nal, have_nal) && sps_exceeds_limit(nal, have_nal, err, errlen)) return 1;
        }
    }
    return 0;
}

// ---- AV1 sequence headers: dav1d allocates the frames they allow ----
// AVIF's counterpart of the SPS: a sequence header OBU (in an av1C property, or among an item's
// OBUs) states the largest frame; fields before it are skipped as AV1 5.5 lays them out.

static int av1_seq_size(const uint8_t *payload, size_t len, uint32_t *w, uint32_t *h) {
    rbsp_t r = { .n = len < sizeof r.b ? len : sizeof r.b, .bit = 0 };
    memcpy(r.b, payload, r.n);
    uint32_t v, reduced, timing = 0, model = 0, delay_len = 0, display_delay = 0, ops = 0;
    if (rb_bits(&r, 3, &v) || rb_bits(&r, 1, &v) || rb_bits(&r, 1, &reduced)) return -1;
    if (reduced) {
        if (rb_bits(&r, 5, &v)) return -1;   // seq_level_idx
    } else {
        if (rb_bits(&r, 1, &timing)) return -1;
        if (timing) {
            r.bit += 64;   // num_units_in_display_tick, time_scale
            if (rb_bits(&r, 1, &v)) return -1;
            if (v) {       // num_ticks_per_picture_minus_1, uvlc()
                int zeros = 0;
                for (;;) {
                    if (rb_bits(&r, 1, &v)) return -1;
                    if (v) break;
                    zeros++;
                }
                if (zeros < 32) r.bit += (size_t)zeros;
            }
            if (rb_bits(&r, 1, &model)) return -1;
            if (model) {
                if (rb_bits(&r, 5, &delay_len)) return -1;
                r.bit += 32 + 5 + 5;
            }
        }
        if (rb_bits(&r, 1, &display_delay) || rb_bits(&r, 5, &ops)) return -1;
        for (uint32_t i = 0; i <= ops; i++) {
            if (rb_bits(&r, 12, &v) || rb_bits(&r, 5, &v)) return -1;   // operating_point_idc, seq_level_idx
            if (v > 7 && rb_bits(&r, 1, &v)) return -1;                 // seq_tier
            if (model) {
                if (rb_bits(&r, 1, &v)) return -1;
                if (v) r.bit += 2 * (delay_len + 1) + 1;
            }
            if (display_delay) {
                if (rb_bits(&r, 1, &v)) return -1;
                if (v) r.bit += 4;
            }
        }
    }
    uint32_t wbits, hbits;
    if (rb_bits(&r, 4, &wbits) || rb_bits(&r, 4, &hbits) || rb_bits(&r, (int)wbits + 1, w) || rb_bits(&r, (int)hbits + 1, h)) return -1;
    *w += 1;
    *h += 1;
    return 0;
}

static int av1_seq_exceeds_limit(const uint8_t *payload, size_t len, char *err, size_t errlen) {
    uint32_t w, h;
    return av1_seq_size(payload, len, &w, &h) == 0
        && sio_pixel_limit_exceeded("AV1", w, h, " in a sequence header", err, errlen);
}

// Every complete OBU of a stream (an av1C's configOBUs, or an AV1 item's data across its
// extents): header, optional extension byte, LEB128 size (or, without one, the rest), payload.
typedef struct {
    int state;                 // 0 header, 1 extension, 2 size, 3 payload
    int has_ext, has_size, type, size_bytes;
    uint64_t left, total_left;  // payload bytes to come; stream bytes to come
    uint8_t keep[512];         // the payload's start: a sequence header is at most about 400 bytes
    size_t kept;
} obu_scan_t;

static int obu_feed(obu_scan_t *s, span_t e, char *err, size_t errlen) {
    while (e.n > 0) {
        uint8_t b = *e.p;
        if (s->state == 3) {
            size_t take = e.n < s->left ? e.n : (size_t)s->left;
            if (s->kept < sizeof s->keep) {
                size_t k = take < sizeof s->keep - s->kept ? take : sizeof s->keep - s->kept;
                memcpy(s->keep + s->kept, e.p, k);
                s->kept += k;
            }
            e.p += take; e.n -= take; s->left -= take; s->total_left -= take;
        } else {
            e.p++; e.n--; s->total_left--;
            if (s->state == 0) {
                s->type = b >> 3 & 15;
                s->has_ext = b >> 2 & 1;
                s->has_size = b >> 1 & 1;
                s->left = 0;
                s->size_bytes = 0;
                s->kept = 0;
                s->state = s->has_ext ? 1 : s->has_size ? 2 : 3;
                if (s->state == 3) s->left = s->total_left;
            } else if (s->state == 1) {
                s->state = s->has_size ? 2 : 3;
                if (s->state == 3) s->left = s->total_left;
            } else {
                if (s->size_bytes < 8) s->left |= (uint64_t)(b & 0x7F) << (7 * s->size_bytes);
                s->size_bytes++;
                if (!(b & 0x80)) s->state = 3;
            }
        }
        if (s->state == 3 && s->left == 0) {
            if (s->type == 1 && av1_seq_exceeds_limit(s->keep, s->kept, err, errlen)) return 1;
            s->state = 0;
        }
    }
    return 0;
}

static int av1c_exceeds_limit(span_t av1c, char *err, size_t errlen) {
    if (av1c.n <= 4) return 0;
    obu_scan_t s = { 0 };
    s.total_left = av1c.n - 4;
    return obu_feed(&s, (span_t){ av1c.p + 4, av1c.n - 4 }, err, errlen);
}

static int av1_item_exceeds_limit(const item_loc_t *loc, char *err, size_t errlen) {
    obu_scan_t s = { 0 };
    span_t e;
    for (int i = 0; i < loc->n_ext && extent_span(loc, i, &e); i++) s.total_left += e.n;
    for (int i = 0; i < loc->n_ext && extent_span(loc, i, &e); i++)
        if (obu_feed(&s, e, err, errlen)) return 1;
    return 0;
}

// The boxes of a HEIF's meta box that the walk reads (at most 8 of each, as libheif reads one).
typedef struct {
    span_t iinf[8], iloc[8], idat, ipco[8];
    int n_iinf, n_iloc, n_ipco;
} meta_boxes_t;

#define MALFORMED_META "not a readable HEIF/HEIC/AVIF picture (a malformed box in its meta box)"

// Collects the file's meta boxes: 1 when found, 0 without a meta box (libheif refuses the file
// itself), -1 with a message for a malformed box.
static int find_meta_boxes(span_t file, meta_boxes_t *m, char *err, size_t errlen) {
    span_t meta = {0}, box;
    uint32_t type;
    size_t pos = 0;
    int r;
    memset(m, 0, sizeof *m);
    while ((r = next_box(file, &pos, &type, &box)) > 0)
        if (type == fourcc("meta")) { meta = box; break; }
    if (!meta.p || meta.n < 4) return 0;
    meta.p += 4; meta.n -= 4;               // version and flags
    for (pos = 0; (r = next_box(meta, &pos, &type, &box)) > 0;) {
        if (type == fourcc("iinf") && m->n_iinf < 8) m->iinf[m->n_iinf++] = box;
        else if (type == fourcc("iloc") && m->n_iloc < 8) m->iloc[m->n_iloc++] = box;
        else if (type == fourcc("idat") && !m->idat.p) m->idat = box;
        else if (type == fourcc("iprp")) {
            size_t q = 0;
            span_t child;
            while ((r = next_box(box, &q, &type, &child)) > 0)
                if (type == fourcc("ipco") && m->n_ipco < 8) m->ipco[m->n_ipco++] = child;
            if (r < 0) break;
        }
    }
    if (r < 0) { snprintf(err, errlen, MALFORMED_META); return -1; }
    return 1;
}

// Every ispe (the stored size of some picture in the file), then every hvcC's and av1C's
// parameter sets: 1 with a message when one is over the limit or a box is malformed.
static int properties_exceed_limit(const meta_boxes_t *m, char *err, size_t errlen) {
    span_t box;
    uint32_t type;
    int r;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < m->n_ipco; k++) {
            size_t q = 0;
            while ((r = next_box(m->ipco[k], &q, &type, &box)) > 0) {
                if (pass == 0 && type == fourcc("ispe") && box.n >= 12
                    && sio_pixel_limit_exceeded("HEIF", be(box.p + 4, 4), be(box.p + 8, 4), " stored", err, errlen)) return 1;
                if (pass == 1 && type == fourcc("hvcC") && hvcc_exceeds_limit(box, err, errlen)) return 1;
                if (pass == 1 && type == fourcc("av1C") && av1c_exceeds_limit(box, err, errlen)) return 1;
            }
            if (r < 0) { snprintf(err, errlen, MALFORMED_META); return 1; }
        }
    return 0;
}

// The grid, overlay, HEVC and AV1 items (infe version 2 or 3 names the item's type), sorted by
// id, into *items (the caller frees it): their count, or -1 with a message.
static long checked_items(const meta_boxes_t *m, item_t **items, char *err, size_t errlen) {
    span_t box;
    uint32_t type;
    int r;
    size_t n = 0, cap = 0;
    *items = NULL;
    for (int k = 0; k < m->n_iinf; k++) {
        span_t iinf = m->iinf[k];
        if (iinf.n < 6) continue;
        span_t entries = { iinf.p + (iinf.p[0] == 0 ? 6 : 8), 0 };
        if ((size_t)(entries.p - iinf.p) > iinf.n) continue;
        entries.n = iinf.n - (size_t)(entries.p - iinf.p);
        size_t q = 0;
        while ((r = next_box(entries, &q, &type, &box)) > 0) {
            if (type != fourcc("infe") || box.n < 4 || box.p[0] < 2) continue;
            int idlen = box.p[0] == 2 ? 2 : 4;
            if (box.n < (size_t)(4 + idlen + 2 + 4)) continue;
            uint32_t item_type = (uint32_t)be(box.p + 4 + idlen + 2, 4);
            if (item_type != fourcc("grid") && item_type != fourcc("iovl") && item_type != fourcc("hvc1")
                && item_type != fourcc("av01")) continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;   // grows with boxes present, not with a count
                item_t *d = realloc(*items, ncap * sizeof *d);
                if (!d) { snprintf(err, errlen, "out of memory"); return -1; }
                *items = d;
                cap = ncap;
            }
            (*items)[n].id = (uint32_t)be(box.p + 4, idlen);
            (*items)[n++].type = item_type;
        }
        if (r < 0) { snprintf(err, errlen, MALFORMED_META); return -1; }
    }
    if (n) qsort(*items, n, sizeof **items, cmp_id);
    return (long)n;
}

// A grid's or overlay's canvas, from the item's data: grid: version, flags, rows-1, columns-1,
// then width and height; iovl: version, flags, four 16-bit fill values, then width and height.
// Both 32-bit with flags bit 0.
static int canvas_exceeds_limit(const item_loc_t *loc, int overlay, char *err, size_t errlen) {
    uint8_t d[20];
    size_t got = item_bytes(loc, d, sizeof d);
    size_t at = overlay ? 10 : 4, field = got >= 2 && (d[1] & 1) ? 4 : 2;
    if (got < at + 2 * field) {
        snprintf(err, errlen, "not a readable HEIF/HEIC/AVIF picture (the size of a grid or overlay picture cannot be read)");
        return 1;
    }
    return sio_pixel_limit_exceeded("HEIF", be(d + at, (int)field), be(d + at + field, (int)field),
                                    overlay ? " on its overlay canvas" : " in its grid", err, errlen);
}

// Each entry of one iloc box that locates a checked item: the item's data is found and checked
// (parameter sets for coded items, the canvas for grids and overlays). 1 with a message when one
// is over the limit or the box is malformed.
static int iloc_items_exceed_limit(span_t iloc, span_t file, span_t idat, const item_t *items, size_t n_items,
                                   char *err, size_t errlen) {
    const uint8_t *p = iloc.p, *end = iloc.p + iloc.n;
    if (iloc.n < 8) goto bad_iloc;
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
    for (uint64_t i = 0; i < count; i++) {
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
        item_t key = { id, 0 };
        const item_t *item = bsearch(&key, items, n_items, sizeof *items, cmp_id);
        if (!item) continue;
        item_loc_t loc = { method == 1 ? idat : file, base, ext_p, method <= 1 ? n_ext : 0, index_size, offset_size, length_size };
        int over = item->type == fourcc("hvc1") ? hevc_item_exceeds_limit(&loc, err, errlen)
                 : item->type == fourcc("av01") ? av1_item_exceeds_limit(&loc, err, errlen)
                 : canvas_exceeds_limit(&loc, item->type == fourcc("iovl"), err, errlen);
        if (over) return 1;
    }
    return 0;
bad_iloc:
    snprintf(err, errlen, "not a readable HEIF/HEIC/AVIF picture (its iloc box is malformed)");
    return 1;
}

// 0 when the file's pictures are all within the pixel limit (or it is not a walkable HEIF, left
// to libheif to refuse); 1 with a message otherwise.
static int heif_sizes_exceed_limit(span_t file, char *err, size_t errlen) {
    meta_boxes_t m;
    int found = find_meta_boxes(file, &m, err, errlen);
    if (found <= 0) return found < 0;
    if (properties_exceed_limit(&m, err, errlen)) return 1;
    item_t *items;
    long n_items = checked_items(&m, &items, err, errlen);
    int result = n_items < 0;
    for (int k = 0; k < m.n_iloc && n_items > 0 && !result; k++)
        result = iloc_items_exceed_limit(m.iloc[k], file, m.idat, items, (size_t)n_items, err, errlen);
    free(items);
    return result;
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
                         int av1, char *err, size_t errlen) {
    struct heif_context *ctx = heif_context_alloc();
    struct heif_encoder *enc = NULL;
    struct heif_image *img = NULL;
    struct heif_encoding_options *opt = NULL;
    int rc = 1;
    char why[256];
    if (!ctx) { snprintf(err, errlen, "out of memory"); return 1; }
    struct heif_error e = heif_context_get_encoder_for_format(ctx, av1 ? heif_compression_AV1 : heif_compression_HEVC, &enc);
    if (e.code != heif_error_Ok) { snprintf(err, errlen, "no %s encoder in libheif (%s)", av1 ? "AV1" : "HEVC", one_line(why, sizeof why, e.message)); goto done; }
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
    if (e.code != heif_error_Ok) { snprintf(err, errlen, "cannot encode %s (%s)", av1 ? "AVIF" : "HEIC", one_line(why, sizeof why, e.message)); goto done; }
    rc = 0;
done:
    if (opt) heif_encoding_options_free(opt);
    if (img) heif_image_release(img);
    if (enc) heif_encoder_release(enc);
    heif_context_free(ctx);
    return rc;
}
