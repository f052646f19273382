// EXIF through libexif: the Orientation tag of a JPEG's APP1 segment, read (for Image.load) and
// written (for tests that need a phone-like file).
#include "strata_io.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libexif/exif-data.h>
#include <libexif/exif-utils.h>

static const unsigned char exif_header[6] = {'E', 'x', 'i', 'f', 0, 0};

int sio_exif_orientation(const uint8_t *payload, size_t len) {
    if (!payload || len < sizeof exif_header || memcmp(payload, exif_header, sizeof exif_header) != 0) return 1;
    if (len > 0xFFFF) len = 0xFFFF;   // one APP1 segment at most; libexif takes an unsigned int
    ExifData *ed = exif_data_new();
    if (!ed) return 1;
    // Left as found: "following the specification" would add default entries while loading.
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, payload, (unsigned int)len);
    int orientation = 1;
    // IFD 0 describes the main picture (IFD 1 the thumbnail). libexif drops what it cannot parse,
    // so a broken block simply has no entry here.
    ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->data && e->size >= 2) {
        int v = exif_get_short(e->data, exif_data_get_byte_order(ed));
        if (v >= 1 && v <= 8) orientation = v;
    }
    exif_data_unref(ed);
    return orientation;
}

int sio_exif_orientation_segment(int orientation, int big_endian, uint8_t **out, size_t *len,
                                 char *err, size_t errlen) {
    *out = NULL;
    *len = 0;
    if (orientation < 1 || orientation > 8) { snprintf(err, errlen, "EXIF orientation must be 1...8, got %d", orientation); return 1; }
    ExifData *ed = exif_data_new();   // with libexif's default IFDs, as a camera's file would have
    if (!ed) { snprintf(err, errlen, "out of memory"); return 1; }
    ExifByteOrder order = big_endian ? EXIF_BYTE_ORDER_MOTOROLA : EXIF_BYTE_ORDER_INTEL;
    exif_data_set_byte_order(ed, order);
    ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (!e) {
        e = exif_entry_new();
        if (!e) { exif_data_unref(ed); snprintf(err, errlen, "out of memory"); return 1; }
        exif_content_add_entry(ed->ifd[EXIF_IFD_0], e);
        exif_entry_initialize(e, EXIF_TAG_ORIENTATION);
        exif_entry_unref(e);   // the IFD holds it now
    }
    if (!e->data || e->size < 2) { exif_data_unref(ed); snprintf(err, errlen, "libexif made no Orientation entry"); return 1; }
    exif_set_short(e->data, order, (ExifShort)orientation);
    unsigned char *data = NULL;
    unsigned int size = 0;
    exif_data_save_data(ed, &data, &size);   // starts with "Exif\0\0"
    exif_data_unref(ed);
    if (!data || size < sizeof exif_header || size > 0xFFFF - 2) {
        free(data);
        snprintf(err, errlen, "libexif wrote no usable EXIF block (%u bytes)", size);
        return 1;
    }
    uint8_t *seg = malloc((size_t)size + 4);
    if (!seg) { free(data); snprintf(err, errlen, "out of memory"); return 1; }
    seg[0] = 0xFF;
    seg[1] = 0xE1;   // APP1
    seg[2] = (uint8_t)((size + 2) >> 8);   // the length counts its own two bytes
    seg[3] = (uint8_t)((size + 2) & 0xFF);
    memcpy(seg + 4, data, size);
    free(data);
    *out = seg;
    *len = (size_t)size + 4;
    return 0;
}
