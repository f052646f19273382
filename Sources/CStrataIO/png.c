// PNG through libpng's simplified API (png_image), which reports errors as messages.
#include "strata_io.h"
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sio_png_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                   char *err, size_t errlen) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    *pixels = NULL;
    if (!png_image_begin_read_from_file(&img, path)) {
        snprintf(err, errlen, "not a readable PNG (%s)", img.message);
        return 1;
    }
    if ((unsigned long long)img.width * img.height > SIO_MAX_PIXELS) {
        snprintf(err, errlen, "PNG header claims %ux%u pixels (%.0f megapixels), over the limit of %d megapixels",
                 img.width, img.height, (double)img.width * img.height / 1e6, SIO_MAX_PIXELS / 1000000);
        png_image_free(&img);
        return 1;
    }
    int colour = img.format & PNG_FORMAT_FLAG_COLOR;
    int alpha = img.format & PNG_FORMAT_FLAG_ALPHA;
    img.format = colour ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB) : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
    int ch = PNG_IMAGE_SAMPLE_CHANNELS(img.format);
    size_t size = PNG_IMAGE_SIZE(img);
    uint8_t *buf = malloc(size);
    if (!buf) { png_image_free(&img); snprintf(err, errlen, "out of memory"); return 1; }
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        snprintf(err, errlen, "corrupt PNG data (%s)", img.message);
        free(buf);
        png_image_free(&img);
        return 1;
    }
    if (ch == 2) {   // grey + alpha: keep grey
        size_t n = (size_t)img.width * img.height;
        for (size_t i = 0; i < n; i++) buf[i] = buf[2 * i];
        ch = 1;
    }
    *pixels = buf;
    *width = (int)img.width;
    *height = (int)img.height;
    *channels = ch;
    return 0;
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
