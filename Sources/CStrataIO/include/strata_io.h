// File-format helpers over the system's zlib, libpng, libjpeg-turbo, libexif, libwebp and libheif. Every function
// except sio_exif_orientation (which cannot fail) returns 0 on success, or nonzero with a message
// in `err` (errlen bytes), so callers can name the file.
#ifndef STRATA_IO_H
#define STRATA_IO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The limits every decoder here checks before it allocates, read once per process from the
// environment (this is the only place that reads it); a variable that is unset, empty, not a
// whole number or out of range leaves the default. docs/LIMITS.md measures them.
typedef struct {
    // STRATA_MAX_IMAGE_PIXELS: the most pixels of one decoded picture (PNG, JPEG after DCT
    // scaling, PGM/PPM). Also the most a PNG may claim in either side (png_set_user_limits).
    uint64_t max_image_pixels;
    // STRATA_MAX_DECOMPRESSED_MB (MiB, stored here in bytes): the most bytes gzip input (IDX
    // files) may inflate to.
    uint64_t max_decompressed_bytes;
    // Not a variable of its own: the most libjpeg may allocate for its own buffers, 6 bytes a
    // pixel of max_image_pixels and 16 MiB more. A progressive JPEG keeps every coefficient of
    // the stored picture (2 bytes a sample, 3 samples a pixel without chroma subsampling), even
    // when it is decoded at a reduced DCT scale; so any progressive picture within the pixel
    // limit fits, and a larger one decoded at a reduced scale fits while its coefficients do.
    uint64_t max_jpeg_memory;
    // STRATA_MAX_JPEG_SCANS: the most scans of a progressive JPEG (normal files have about 10;
    // each scan costs a pass over every block of the picture).
    uint32_t max_jpeg_scans;
    // STRATA_MAX_AUDIO_SECONDS: the longest WAV recording read.
    uint32_t max_audio_seconds;
} sio_limits_t;

#define SIO_DEFAULT_MAX_IMAGE_PIXELS 50000000ULL
#define SIO_DEFAULT_MAX_DECOMPRESSED_MB 192
#define SIO_DEFAULT_MAX_JPEG_SCANS 256
#define SIO_DEFAULT_MAX_AUDIO_SECONDS 600
// The most bytes one ancillary PNG chunk (text, ICC profile) may take once decompressed.
#define SIO_PNG_MAX_CHUNK_BYTES (8u << 20)
// The most ancillary PNG chunks kept (libpng's default is 1000).
#define SIO_PNG_MAX_CHUNKS 256

// The limits in force (environment read on the first call; thread-safe).
const sio_limits_t *sio_limits(void);

// A pixel count in words for messages: "50 megapixels", "12.58 megapixels", "1600 pixels".
void sio_pixels_text(char *out, size_t n, uint64_t pixels);

// 0 when a width x height picture is within max_image_pixels; otherwise 1, with the message
// every decoder gives ("PNG header claims WxH pixels (N megapixels NOTE), over the limit of ...
// (set STRATA_MAX_IMAGE_PIXELS to change it)") in err. Sides must be under 2^32.
int sio_pixel_limit_exceeded(const char *format, uint64_t width, uint64_t height, const char *note, char *err, size_t errlen);

// Reads a whole compressed picture file (WebP, HEIF) into *out (len bytes, malloc'ed; sio_free).
// A file over 4 bytes a pixel of the pixel limit plus 1 MiB (for metadata) is refused unread:
// no compressed picture within the limit is that large. `format` names it in the message.
int sio_read_picture_file(const char *path, const char *format, uint8_t **out, size_t *len, char *err, size_t errlen);

// Reads a whole file, inflating it when it is gzip-compressed (plain files pass through). More
// than max_bytes bytes (after inflating) is an error that names the limit, found as soon as the
// output passes it; nothing larger than max_bytes + 1 is allocated. *out is malloc'ed; free it
// with sio_free.
int sio_read_maybe_gz(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len, char *err, size_t errlen);

// The first max_bytes bytes of a file after inflating (all of it when shorter; plain files pass
// through): no error when more follows, *len says how many there were. The buffer grows with the
// data, so a short file costs its own length, not max_bytes. *out is malloc'ed (sio_free).
int sio_read_maybe_gz_prefix(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len, char *err, size_t errlen);

// Decodes a PNG to 8-bit samples, `channels` 1 (grey), 3 (RGB) or 4 (RGBA) as stored after
// expanding palettes (and tRNS to alpha), dropping alpha from grey and keeping the high byte of
// 16-bit samples (as PIL does); no gamma conversion. Through libpng's low-level API with png_set_user_limits
// (each side at most max_image_pixels, and more than max_image_pixels in all refused after the
// header, before the pixels are allocated) and png_set_chunk_malloc_max. *pixels is malloc'ed
// (h*w*channels bytes).
int sio_png_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                   char *err, size_t errlen);

// Encodes 8-bit pixels (channels 1, 3 or 4) as PNG into *out (len bytes, malloc'ed; free it with
// sio_free). Callers write the bytes to a file themselves (atomically).
int sio_png_encode(const uint8_t *pixels, int width, int height, int channels, uint8_t **out, size_t *len,
                   char *err, size_t errlen);


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
// *scale_denom (when not NULL) gets d. Limits (sio_limits): pictures over max_image_pixels
// after scaling are refused after the header, before jpeg_start_decompress; libjpeg's own
// memory is capped at max_jpeg_memory; a progressive file of more than max_jpeg_scans scans is
// refused as soon as scan max_jpeg_scans + 1 starts (a progress monitor, as libjpeg-turbo's
// own fuzzers do).
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

// Decodes a still WebP (lossy or lossless) to 8-bit RGB, or RGBA when it has alpha. The header
// is read first: a picture over max_image_pixels, or a file larger than such a picture could be,
// is refused before the file is read whole or pixels are allocated; an animated WebP is refused.
int sio_webp_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen);

// Encodes 8-bit RGB or RGBA pixels as WebP, lossy at `quality` (0-100) or lossless when quality
// is negative, into *out (len bytes, malloc'ed; free it with sio_free). For tests.
int sio_webp_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                    uint8_t **out, size_t *len, char *err, size_t errlen);

// Decodes the primary picture of a HEIF file (HEIC from phones, AVIF) with libheif to 8-bit RGB,
// or RGBA when it has alpha, upright: the file's rotation, mirroring and crop (irot, imir, clap)
// applied, and deeper samples reduced to 8 bits. Every picture size the file declares (ispe,
// grid and overlay canvases, HEVC parameter sets, AV1 sequence headers) is checked against
// max_image_pixels before libheif reads the file, each side is capped while it does, and the
// picture checked again before decoding. The file itself is bounded as sio_read_picture_file's.
int sio_heif_decode(const char *path, uint8_t **pixels, int *width, int *height, int *channels,
                    char *err, size_t errlen);

// Writes 8-bit RGB pixels as a HEIC file (HEVC; AVIF with `av1` nonzero; lossy `quality` 0-100)
// whose picture is to be shown in EXIF orientation `orientation` (1-8, stored as irot/imir
// boxes). Needs libheif's HEVC encoder (x265) or AV1 encoder (aom). For tests.
int sio_heif_encode_file(const char *path, const uint8_t *pixels, int width, int height, int quality, int orientation,
                         int av1, char *err, size_t errlen);

void sio_free(void *p);

#ifdef __cplusplus
}
#endif
#endif
