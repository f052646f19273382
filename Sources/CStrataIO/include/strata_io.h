// File-format helpers over the system's zlib, libpng and libjpeg-turbo. Every function returns 0 on
// success, or nonzero with a message in `err` (errlen bytes), so callers can name the file.
#ifndef STRATA_IO_H
#define STRATA_IO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Reads a whole file, inflating it when it is gzip-compressed (plain files pass through).
// *out is malloc'ed; free it with sio_free.
int sio_read_maybe_gz(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen);

// Decodes a PNG to 8-bit samples, `channels` 1 (grey), 3 (RGB) or 4 (RGBA) as stored after
// expanding palettes and dropping 16-bit precision. *pixels is malloc'ed (h*w*channels bytes).
int sio_png_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                   char *err, size_t errlen);

// Encodes 8-bit pixels (channels 1, 3 or 4) as PNG into *out (len bytes, malloc'ed; free it with
// sio_free). Callers write the bytes to a file themselves (atomically).
int sio_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *len,
                   char *err, size_t errlen);

// Decodes a JPEG (baseline or progressive) to grey or RGB; CMYK/YCCK are converted to RGB.
// A truncated file is an error, not a grey bottom.
int sio_jpeg_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen);

// Encodes 8-bit grey or RGB pixels as JPEG with the given quality (1-100) into *out (len bytes,
// malloc'ed; free it with sio_free).
int sio_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                    uint8_t **out, size_t *len, char *err, size_t errlen);

void sio_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
