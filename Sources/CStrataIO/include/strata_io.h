// File-format helpers over the system's zlib, libpng, libjpeg-turbo and libexif. Every function
// except sio_exif_orientation (which cannot fail) returns 0 on success, or nonzero with a message
// in `err` (errlen bytes), so callers can name the file.
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

// The most pixels a decoder here allocates for: a header that claims more is refused with a
// message that names this limit, before any pixel buffer is allocated.
#define SIO_MAX_PIXELS 100000000
// The most memory libjpeg may use for its own buffers (a progressive JPEG keeps all of its
// coefficients, two bytes per sample at full size, even when decoded at a reduced scale).
#define SIO_JPEG_MAX_MEMORY (1 << 30)

// Decodes a JPEG (baseline or progressive) to grey or RGB; CMYK/YCCK are converted to RGB. The
// picture comes back upright: the EXIF Orientation tag (2-8) of the first APP1 "Exif" segment is
// applied as PIL's ImageOps.exif_transpose does, so *width and *height are the turned sizes.
// Missing or unreadable EXIF leaves the picture as stored. A truncated file is an error, not a
// grey bottom. Same as sio_jpeg_decode_scaled with min_long_side 0.
int sio_jpeg_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen);

// sio_jpeg_decode at a DCT-reduced scale: 1/8, 1/4, 1/2 or 1, the smallest of these whose
// longer side, ceil(longer / d), is still at least min_long_side (1 when even the full size is
// smaller, or when min_long_side <= 0). Decoding at 1/d costs about 1/d^2 of the full work.
// Pictures over SIO_MAX_PIXELS after scaling are refused. *scale_denom (when not NULL) gets d.
int sio_jpeg_decode_scaled(const char *path, int min_long_side, int *scale_denom, uint8_t **pixels, int *width, int *height,
                           int *channels, char *err, size_t errlen);

// The EXIF Orientation (1-8) in an APP1 payload that starts with "Exif\0\0" (the bytes after
// the segment's length), read with libexif from IFD 0; 1 when there is none, when the payload is
// not EXIF, or when it is too broken to read. Never fails.
int sio_exif_orientation(const uint8_t *payload, size_t len);

// A whole JPEG APP1 segment (0xFFE1, length, "Exif\0\0", TIFF) written by libexif, with IFD 0
// holding Orientation `orientation` (1-8) in big-endian ("MM") or little-endian ("II") byte
// order; to be inserted after a JPEG's SOI marker. For tests. *out is malloc'ed (sio_free).
int sio_exif_orientation_segment(int orientation, int big_endian, uint8_t **out, size_t *len,
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
