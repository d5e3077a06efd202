/* IDX images without a labels file ("idx:IMAGES"), for a user's own out-of-distribution set.
 * The format and its checks are those of bnn_idx_load (src/data/idx.c): a magic of two zero bytes,
 * a dtype byte and a rank byte, one big-endian u32 per dimension, then the elements; read through
 * zlib's gzopen, so plain and gzip-compressed files both work. bnn_idx_load requires a labels
 * file, and its helpers are private to idx.c, so the image half is repeated here. */
#include "data/data.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

/* As in idx.c: more elements than this is a corrupted header, and the bound keeps every product
 * of dimensions inside int64_t. */
#define IDX_MAX_ELEMENTS ((int64_t)1 << 40)
/* The payload is read in growing pieces, so a header that claims more data than the file holds
 * costs at most about twice the bytes actually present before the truncation is reported. */
#define IDX_FIRST_PIECE ((size_t)1 << 20)

/* A short gzread becomes BNN_EIO (the operating system failed), BNN_EFORMAT (damaged gzip data or
 * a file that ends too soon) or BNN_ENOMEM (zlib ran out of memory). */
static int read_failure(gzFile f, const char *path, const char *what, size_t want, size_t got) {
    int zerr = Z_OK;
    const char *zmsg = gzerror(f, &zerr);
    if (zerr == Z_ERRNO)
        return bnn__error(BNN_EIO, "%s: read error in the %s: %s", path, what, strerror(errno));
    if (zerr == Z_DATA_ERROR)
        return bnn__error(BNN_EFORMAT, "%s: corrupt gzip data in the %s: %s", path, what, zmsg);
    if (zerr == Z_MEM_ERROR)
        return bnn__error(BNN_ENOMEM, "%s: out of memory while decompressing", path);
    return bnn__error(BNN_EFORMAT,
                      "%s: truncated: the %s needs %zu bytes but the file ends after %zu", path,
                      what, want, got);
}

/* Reads exactly len bytes into buf, growing buf from a small first piece so that memory follows
 * the bytes actually present; *buf is malloc'd and owned by the caller on success. */
static int read_bytes(gzFile f, const char *path, const char *what, size_t len,
                      unsigned char **out) {
    *out = NULL;
    size_t cap = len < IDX_FIRST_PIECE ? len : IDX_FIRST_PIECE, got = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes", path, cap);
    while (got < len) {
        if (got == cap) {
            size_t next = cap > len / 2 ? len : cap * 2;
            unsigned char *grown = realloc(buf, next);
            if (!grown) {
                free(buf);
                return bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes", path, next);
            }
            buf = grown, cap = next;
        }
        size_t ask = cap - got;
        if (ask > (size_t)1 << 30) ask = (size_t)1 << 30; /* one gzread takes at most INT_MAX */
        int r = gzread(f, buf + got, (unsigned)ask);
        if (r <= 0) {
            free(buf);
            return read_failure(f, path, what, len, got);
        }
        got += (size_t)r;
    }
    *out = buf;
    return 0;
}

int bnn__idx_load_images(bnn_dataset **out, const char *path) {
    if (!out) return bnn__error(BNN_EINVAL, "idx: out is NULL");
    *out = NULL;
    if (!path || !*path) return bnn__error(BNN_EINVAL, "idx: no images file given");

    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return bnn__error(BNN_EIO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
    unsigned char *head = NULL, *pixels = NULL;
    bnn_dataset *ds = NULL;
    int rc;

    unsigned char magic[4];
    int r = gzread(f, magic, 4);
    if (r != 4) {
        int zerr = Z_OK;
        gzerror(f, &zerr);
        rc = (r == 0 && zerr == Z_OK)
                 ? bnn__error(BNN_EFORMAT, "%s: the file is empty", path)
                 : read_failure(f, path, "magic number", 4, r > 0 ? (size_t)r : 0);
        goto fail;
    }
    if (magic[0] != 0 || magic[1] != 0 || magic[2] < 0x08 || magic[2] > 0x0E || magic[3] == 0) {
        rc = bnn__error(BNN_EFORMAT,
                        "%s: bad magic number %02x %02x %02x %02x: not an IDX file (expected "
                        "00 00, a dtype in 08..0e and a rank >= 1)",
                        path, magic[0], magic[1], magic[2], magic[3]);
        goto fail;
    }
    const int ndim = magic[3];
    if (magic[2] != 0x08 || ndim < 2) {
        rc = bnn__error(BNN_EFORMAT,
                        "%s: images must be unsigned bytes (dtype 08) with rank >= 2; this "
                        "file has dtype %02x and rank %d",
                        path, magic[2], ndim);
        goto fail;
    }
    if ((rc = read_bytes(f, path, "dimensions", 4 * (size_t)ndim, &head))) goto fail;
    int64_t dims[255] = {0}, total = 1;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *p = head + 4 * i;
        dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                            (uint32_t)p[3]);
        if (dims[i] == 0) {
            rc = bnn__error(BNN_EFORMAT, "%s: dimension %d is 0 (an empty IDX file)", path, i);
            goto fail;
        }
        if (dims[i] > IDX_MAX_ELEMENTS / total) {
            rc = bnn__error(BNN_EFORMAT,
                            "%s: the dimensions describe more than 2^40 elements (a corrupted "
                            "header?)",
                            path);
            goto fail;
        }
        total *= dims[i];
    }
    const int64_t n = dims[0], d = total / dims[0];
    if (bnn__bytes(total, 1) == 0) {
        rc = bnn__error(BNN_ENOMEM, "%s: %lld x %lld pixels do not fit in memory here", path,
                        (long long)n, (long long)d);
        goto fail;
    }
    if ((rc = read_bytes(f, path, "pixel data", (size_t)total, &pixels))) goto fail;
    /* zlib checks a gzip member's CRC only on reaching the member's end; asking for one more byte
     * gets there, so a corrupted .gz is reported rather than loaded (as in idx.c). */
    unsigned char extra;
    if (gzread(f, &extra, 1) < 0) {
        rc = read_failure(f, path, "pixel data", (size_t)total, (size_t)total);
        goto fail;
    }
    r = gzclose(f);
    f = NULL;
    if (r != Z_OK) {
        rc = bnn__error(BNN_EIO, "%s: error closing the file (zlib code %d)", path, r);
        goto fail;
    }

    /* Unlabeled: one class, every label 0 (bnn_dataset_new zeroes them), as for "noise". */
    if ((rc = bnn_dataset_new(&ds, BNN_TASK_CLASSIFICATION, n, d, 0, 1))) goto fail;
    /* p / 255 as a float division, as bnn_idx_load and torchvision's ToTensor compute it. */
    float scale[256];
    for (int v = 0; v < 256; v++)
        scale[v] = (float)v / 255.0f;
    for (int64_t i = 0; i < total; i++)
        ds->x[i] = scale[pixels[i]];
    /* Rank 3 is (n, h, w): one-channel images, as in bnn_idx_load. */
    if (ndim == 3) {
        int64_t shape[3] = {1, dims[1], dims[2]};
        bnn_dataset_set_image_shape(ds, shape);
    }
    free(head);
    free(pixels);
    *out = ds;
    return 0;

fail:
    /* The error detail is already recorded; closing here cannot make it more useful. */
    if (f) gzclose(f);
    free(head);
    free(pixels);
    bnn_dataset_free(ds);
    return rc;
}
