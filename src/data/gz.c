/* Reading binary data files through zlib (IDX and NPY): gzopen/gzread read gzip-compressed and
 * plain files alike, so "x.gz" and "x" both work. Every failure is an error naming the file and
 * the part being read; see data.h. */
#include "data/data.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* The payload is read in growing pieces, so a header that claims more data than the file holds
 * costs at most about twice the bytes actually present before the truncation is reported. */
#define GZ_FIRST_PIECE ((size_t)1 << 20)

int bnn__not_a_directory(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return bnn__error(BNN_EIO, "%s: is a directory, not a data file", path);
    return 0;
}

int bnn__gz_open(gzFile *f, const char *path) {
    *f = NULL;
    int rc = bnn__not_a_directory(path);
    if (rc) return rc;
    errno = 0;
    *f = gzopen(path, "rb");
    if (!*f)
        return bnn__error(BNN_EIO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    /* A larger zlib input buffer than the 8 KiB default halves the time to inflate an image set. */
    gzbuffer(*f, 1 << 17);
    return 0;
}

/* Turns a short gzread into the right error: an operating-system read failure is BNN_EIO, a
 * damaged gzip stream or a file that simply ends too soon is BNN_EFORMAT. */
int bnn__gz_read_failure(gzFile f, const char *path, const char *what, size_t want, size_t got) {
    int zerr = Z_OK;
    const char *zmsg = gzerror(f, &zerr);
    if (zerr == Z_ERRNO)
        return bnn__error(BNN_EIO, "%s: read error in the %s: %s", path, what, strerror(errno));
    if (zerr == Z_DATA_ERROR)
        return bnn__error(BNN_EFORMAT, "%s: corrupt gzip data in the %s: %s", path, what, zmsg);
    if (zerr == Z_MEM_ERROR)
        return bnn__error(BNN_ENOMEM, "%s: out of memory while decompressing", path);
    return bnn__error(BNN_EFORMAT,
                      "%s: truncated: the %s needs %zu bytes but the file ends after "
                      "%zu of them",
                      path, what, want, got);
}

int bnn__gz_read_part(gzFile f, const char *path, const char *what, unsigned char *buf,
                      size_t len, size_t before, size_t total) {
    size_t got = 0;
    while (got < len) {
        size_t ask = len - got;
        if (ask > (size_t)1 << 30) ask = (size_t)1 << 30;
        int r = gzread(f, buf + got, (unsigned)ask);
        if (r <= 0) return bnn__gz_read_failure(f, path, what, total, before + got);
        got += (size_t)r;
    }
    return 0;
}

/* Reads exactly len bytes or fails, looping because one gzread is limited to INT_MAX bytes. */
int bnn__gz_read_exact(gzFile f, const char *path, const char *what, unsigned char *buf,
                       size_t len) {
    return bnn__gz_read_part(f, path, what, buf, len, 0, len);
}

int bnn__gz_read_end(gzFile f, const char *path, const char *what, size_t want) {
    /* zlib checks a gzip member's CRC only when it reaches the member's end, which reading the
     * payload alone does not do. Asking for one more byte gets there, so a corrupted .gz is
     * reported rather than loaded. A byte there means the file holds more than its header
     * describes (two arrays np.save'd into one file, IDX files concatenated, a damaged count):
     * refused, as a truncated one is, rather than read in part. */
    unsigned char extra;
    const int r = gzread(f, &extra, 1);
    if (r < 0) return bnn__gz_read_failure(f, path, what, want, want);
    if (r > 0)
        return bnn__error(BNN_EFORMAT, "%s: more bytes follow the %zu bytes of %s its header "
                          "describes (a damaged file, or several saved into one? bnn reads one "
                          "per file)", path, want, what);
    return 0;
}

/* Reads the next want bytes into a new malloc'd buffer of exactly that size. */
int bnn__gz_read_payload(gzFile f, const char *path, const char *what, size_t want,
                         unsigned char **out) {
    *out = NULL;
    size_t cap = want < GZ_FIRST_PIECE ? want : GZ_FIRST_PIECE, got = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) return bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes", path, cap);
    while (got < want) {
        if (got == cap) {
            size_t next = cap > want / 2 ? want : cap * 2;
            unsigned char *grown = realloc(buf, next);
            if (!grown) {
                free(buf);
                return bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes", path, next);
            }
            buf = grown, cap = next;
        }
        size_t ask = cap - got;
        if (ask > (size_t)1 << 30) ask = (size_t)1 << 30;
        int r = gzread(f, buf + got, (unsigned)ask);
        if (r <= 0) {
            free(buf);
            return bnn__gz_read_failure(f, path, what, want, got);
        }
        got += (size_t)r;
    }
    const int rc = bnn__gz_read_end(f, path, what, want);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

int bnn__gz_close(gzFile f, const char *path) {
    int r = gzclose(f);
    /* Z_BUF_ERROR: the gzip stream ends early (a truncated trailer); Z_DATA_ERROR: its check
     * value is wrong. Both are a damaged file, not an I/O failure. */
    if (r == Z_BUF_ERROR || r == Z_DATA_ERROR)
        return bnn__error(BNN_EFORMAT,
                          "%s: the gzip stream is truncated or corrupt (zlib code "
                          "%d)",
                          path, r);
    if (r != Z_OK) return bnn__error(BNN_EIO, "%s: error closing the file (zlib code %d)", path, r);
    return 0;
}
