// Whole-file reads through zlib's gz* API, which handles plain and gzip input alike.
#include "strata_io.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int sio_read_maybe_gz(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen) {
    *out = NULL;
    *len = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno ? errno : ENOENT));
        return 1;
    }
    gzbuffer(f, 1 << 17);
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) { free(buf); gzclose(f); snprintf(err, errlen, "out of memory"); return 1; }
            buf = nb;
        }
        size_t want = cap - n;
        if (want > (1u << 30)) want = 1u << 30;
        int got = gzread(f, buf + n, (unsigned)want);
        if (got < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            snprintf(err, errlen, "corrupt or truncated gzip data (%s)", msg ? msg : "zlib error");
            free(buf);
            gzclose(f);
            return 1;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    // gzread returns 0 at a premature end of a gzip stream too; gzerror tells them apart.
    int code = Z_OK;
    const char *msg = gzerror(f, &code);
    if (code != Z_OK && code != Z_STREAM_END) {
        snprintf(err, errlen, "corrupt or truncated gzip data (%s)", msg ? msg : "zlib error");
        free(buf);
        gzclose(f);
        return 1;
    }
    gzclose(f);
    *out = buf;
    *len = n;
    return 0;
}

void sio_free(void *p) { free(p); }
