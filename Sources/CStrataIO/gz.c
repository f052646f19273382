// Whole-file reads through zlib's gz* API, which handles plain and gzip input alike; and the
// limits every decoder in this target checks (sio_limits), read from the environment here only.
#include "strata_io.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static sio_limits_t limits;
static pthread_once_t limits_once = PTHREAD_ONCE_INIT;

// The whole number in environment variable `name` when it is one in [lo, hi]; else `fallback`.
static uint64_t env_number(const char *name, uint64_t lo, uint64_t hi, uint64_t fallback) {
    const char *s = getenv(name);
    if (!s || !*s) return fallback;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "strata: ignoring %s=%s (a whole number from %llu to %llu); using %llu\n", name, s,
                (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)fallback);
        return fallback;
    }
    return v;
}

static void read_limits(void) {
    limits.max_image_pixels = env_number("STRATA_MAX_IMAGE_PIXELS", 1, 1ULL << 40, SIO_DEFAULT_MAX_IMAGE_PIXELS);
    // MiB to bytes: at most 2^40 MiB, so the product stays far below 2^64.
    limits.max_decompressed_bytes = env_number("STRATA_MAX_DECOMPRESSED_MB", 1, 1ULL << 40, SIO_DEFAULT_MAX_DECOMPRESSED_MB) << 20;
    // max_image_pixels <= 2^40: 6 times it stays far below 2^64.
    limits.max_jpeg_memory = 6 * limits.max_image_pixels + (16u << 20);
    limits.max_jpeg_scans = (uint32_t)env_number("STRATA_MAX_JPEG_SCANS", 1, 1000000, SIO_DEFAULT_MAX_JPEG_SCANS);
    limits.max_audio_seconds = (uint32_t)env_number("STRATA_MAX_AUDIO_SECONDS", 1, 1000000, SIO_DEFAULT_MAX_AUDIO_SECONDS);
}

const sio_limits_t *sio_limits(void) {
    pthread_once(&limits_once, read_limits);
    return &limits;
}

void sio_pixels_text(char *out, size_t n, uint64_t pixels) {
    if (pixels < 1000000) snprintf(out, n, "%llu pixels", (unsigned long long)pixels);
    else if (pixels % 1000000 == 0) snprintf(out, n, "%llu megapixels", (unsigned long long)(pixels / 1000000));
    else snprintf(out, n, "%.2f megapixels", pixels / 1e6);
}

int sio_pixel_limit_exceeded(const char *format, uint64_t width, uint64_t height, const char *note, char *err, size_t errlen) {
    const sio_limits_t *lim = sio_limits();
    // Callers' sides are under 2^32 each: the product fits 64 bits.
    uint64_t area = width * height;
    if (area <= lim->max_image_pixels) return 0;
    char claim[64], limit[64];
    sio_pixels_text(claim, sizeof claim, area);
    sio_pixels_text(limit, sizeof limit, lim->max_image_pixels);
    snprintf(err, errlen, "%s header claims %llux%llu pixels (%s%s), over the limit of %s (set STRATA_MAX_IMAGE_PIXELS to change it)",
             format, (unsigned long long)width, (unsigned long long)height, claim, note ? note : "", limit);
    return 1;
}

int sio_read_picture_file(const char *path, const char *format, uint8_t **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    *len = 0;
    const sio_limits_t *lim = sio_limits();
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open: %s", strerror(errno)); return 1; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) { snprintf(err, errlen, "cannot read: %s", strerror(errno)); fclose(f); return 1; }
    // max_image_pixels <= 2^40: the bound stays far below 2^64.
    uint64_t max_file = lim->max_image_pixels * 4 + (1u << 20);
    if ((uint64_t)st.st_size > max_file) {
        char limit[64];
        sio_pixels_text(limit, sizeof limit, lim->max_image_pixels);
        snprintf(err, errlen, "%s file of %lld bytes, larger than any picture within the limit of %s (set STRATA_MAX_IMAGE_PIXELS to change it)",
                 format, (long long)st.st_size, limit);
        fclose(f);
        return 1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data) { snprintf(err, errlen, "out of memory for %zu bytes", size); fclose(f); return 1; }
    if (fread(data, 1, size, f) != size) {
        snprintf(err, errlen, "cannot read: %s", ferror(f) ? strerror(errno) : "the file shrank while it was read");
        free(data);
        fclose(f);
        return 1;
    }
    fclose(f);
    *out = data;
    *len = size;
    return 0;
}

static gzFile open_gz(const char *path, char *err, size_t errlen) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) snprintf(err, errlen, "cannot open: %s", strerror(errno ? errno : ENOENT));
    else gzbuffer(f, 1 << 17);
    return f;
}

// Up to `want` bytes into buf; the count read, or -1 with a message in err.
static long long read_some(gzFile f, uint8_t *buf, size_t want, char *err, size_t errlen) {
    size_t n = 0;
    while (n < want) {
        size_t step = want - n < (1u << 30) ? want - n : (1u << 30);
        int got = gzread(f, buf + n, (unsigned)step);
        if (got < 0) break;
        if (got == 0) break;
        n += (size_t)got;
    }
    // gzread returns 0 (or short) at a premature end of a gzip stream too; gzerror tells them apart.
    int code = Z_OK;
    const char *msg = gzerror(f, &code);
    if (code != Z_OK && code != Z_STREAM_END) {
        snprintf(err, errlen, "corrupt or truncated gzip data (%s)", msg ? msg : "zlib error");
        return -1;
    }
    return (long long)n;
}

// Up to max_bytes (and, with `refuse_more`, one byte past it, to see that there is more) into a
// buffer that grows by doubling as data arrives, so a short file never costs what it claims.
static int read_upto(const char *path, uint64_t max_bytes, int refuse_more, uint8_t **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    *len = 0;
    if (max_bytes > SIZE_MAX / 2) max_bytes = SIZE_MAX / 2;
    gzFile f = open_gz(path, err, errlen);
    if (!f) return 1;
    size_t limit = (size_t)max_bytes + (refuse_more ? 1 : 0);
    size_t cap = limit < (1u << 20) ? (limit ? limit : 1) : (1u << 20), n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) { gzclose(f); snprintf(err, errlen, "out of memory"); return 1; }
    while (n < limit) {
        if (n == cap) {
            size_t next = cap > limit / 2 ? limit : cap * 2;
            uint8_t *nb = realloc(buf, next);
            if (!nb) { free(buf); gzclose(f); snprintf(err, errlen, "out of memory"); return 1; }
            buf = nb;
            cap = next;
        }
        long long got = read_some(f, buf + n, cap - n, err, errlen);
        if (got < 0) { free(buf); gzclose(f); return 1; }
        n += (size_t)got;
        if (n < cap) break;   // a short read is the end of the data
    }
    gzclose(f);
    if (refuse_more && n > max_bytes) {
        free(buf);
        if (max_bytes % (1 << 20) == 0)
            snprintf(err, errlen, "holds more than %llu MiB once inflated, over the limit (set STRATA_MAX_DECOMPRESSED_MB to change it)",
                     (unsigned long long)(max_bytes >> 20));
        else
            snprintf(err, errlen, "holds more than %llu bytes once inflated, over the limit", (unsigned long long)max_bytes);
        return 1;
    }
    *out = buf;
    *len = n;
    return 0;
}

int sio_read_maybe_gz(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len, char *err, size_t errlen) {
    return read_upto(path, max_bytes, 1, out, len, err, errlen);
}

int sio_read_maybe_gz_prefix(const char *path, uint64_t max_bytes, uint8_t **out, size_t *len, char *err, size_t errlen) {
    return read_upto(path, max_bytes, 0, out, len, err, errlen);
}

void sio_free(void *p) { free(p); }
