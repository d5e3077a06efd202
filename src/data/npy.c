/* NPY reader: the format of NumPy's np.save (numpy.lib.format, versions 1.0, 2.0 and 3.0).
 *
 * A file is the magic "\x93NUMPY", a major and a minor version byte, the header's length (2 bytes
 * little-endian in version 1, 4 bytes in versions 2 and 3), then the header: the text of a Python
 * dict with exactly the keys 'descr' (the dtype, e.g. '<f4'), 'fortran_order' (True or False) and
 * 'shape' (a tuple of integers), padded with spaces and ended by a newline. The elements follow,
 * in C (row-major) order unless fortran_order is True. The header is parsed here by a small
 * reader of just that grammar, never evaluated. Files are read through zlib (src/data/gz.c), so a
 * gzip-compressed .npy.gz works too.
 *
 * Supported: bool, signed and unsigned integers of 1, 2, 4 and 8 bytes, and floats of 2, 4 and 8
 * bytes, in either byte order. Refused with a message: structured dtypes (a list of fields),
 * complex, strings, objects, dates; .npz archives (a zip of .npy files). */
#include "data/data.h"

#include <math.h>
#include <string.h>

/* More elements than this is a corrupted header, not a dataset (2^40 float32 values would be
 * 4 TiB). The bound also keeps every product of dimensions and the byte count inside int64_t. */
#define NPY_MAX_ELEMENTS ((int64_t)1 << 40)
/* numpy's own reader refuses headers over 10000 bytes unless told otherwise; this one allows
 * more, but a header of megabytes is damage, not a shape. */
#define NPY_MAX_HEADER 65536
/* numpy 2 allows 64 dimensions (numpy 1: 32). */
#define NPY_MAX_DIMS 64

typedef struct npy_array {
    const char *path;
    char order;   /* '<' little-endian, '>' big-endian (a one-byte dtype: '<') */
    char kind;    /* 'b' bool, 'i' signed, 'u' unsigned integer, 'f' float */
    int size;     /* bytes per element */
    bool fortran; /* column-major: the first index varies fastest */
    int ndim;
    int64_t dims[NPY_MAX_DIMS];
    int64_t count; /* the product of dims (1 for a scalar) */
    unsigned char *data;
} npy_array;

/* ---------------------------------------------------------------- the header's text */

typedef struct lexer {
    const char *p, *end;
} lexer;

static void skip_space(lexer *lx) {
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

/* Consumes c (after white space) if it is next. */
static bool eat(lexer *lx, char c) {
    skip_space(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "...") into buf; the header's strings need no escapes, so a
 * backslash is refused rather than interpreted, and so are control characters (NUL among
 * them: Python refuses a header that holds one). */
static bool read_string(lexer *lx, char *buf, size_t cap) {
    skip_space(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"')) return false;
    const char q = *lx->p++;
    size_t len = 0;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\' || (unsigned char)*lx->p < 0x20 || len + 1 >= cap) return false;
        buf[len++] = *lx->p++;
    }
    if (lx->p >= lx->end) return false;
    lx->p++;
    buf[len] = '\0';
    return true;
}

/* A whole number >= 0 (Python 2's numpy wrote a trailing L on long integers). */
static bool read_count(lexer *lx, int64_t *v) {
    skip_space(lx);
    int64_t x = 0;
    const char *start = lx->p;
    while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
        if (x > (INT64_MAX - 9) / 10) return false;
        x = 10 * x + (*lx->p++ - '0');
    }
    if (lx->p == start) return false;
    if (lx->p < lx->end && *lx->p == 'L') lx->p++;
    *v = x;
    return true;
}

static bool read_word(lexer *lx, const char *w) {
    skip_space(lx);
    size_t n = strlen(w);
    if ((size_t)(lx->end - lx->p) < n || memcmp(lx->p, w, n) != 0) return false;
    lx->p += n;
    return true;
}

static bool little_endian_host(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Decodes a dtype string such as '<f4', '|u1', '>i8' or '|b1'. */
static int parse_descr(npy_array *a, const char *descr) {
    const char *d = descr;
    char order = *d;
    if (order == '<' || order == '>' || order == '|' || order == '=')
        d++;
    else
        order = '|';
    /* '=', '|' or none: native, this machine's order (as numpy reads them; np.save itself
     * writes '<' or '>' for every multi-byte dtype). */
    if (order == '=' || order == '|') order = little_endian_host() ? '<' : '>';
    const char kind = d[0];
    int size = 0;
    if (d[0] && d[1] >= '1' && d[1] <= '8' && d[2] == '\0') size = d[1] - '0';
    bool ok =
        (kind == 'b' && size == 1) ||
        ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
        (kind == 'f' && (size == 2 || size == 4 || size == 8));
    if (!ok)
        return bnn__error(
            BNN_EFORMAT,
            "%s: dtype '%s' is not supported (bool, integer and float arrays are: "
            "e.g. '<f4', '<f8', '<i8', '|u1'); convert it with arr.astype(np.float32)",
            a->path, descr);
    a->order = size == 1 ? '<' : order, a->kind = kind, a->size = size;
    return 0;
}

/* The header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } in any key
 * order, each key once. */
static int parse_header(npy_array *a, const char *text, size_t len) {
    lexer lx = {text, text + len};
    bool have_descr = false, have_order = false, have_shape = false;
    char key[32], descr[32];
    if (!eat(&lx, '{')) goto bad;
    while (!eat(&lx, '}')) {
        if (!read_string(&lx, key, sizeof key) || !eat(&lx, ':')) goto bad;
        if (!strcmp(key, "descr") && !have_descr) {
            skip_space(&lx);
            if (lx.p < lx.end && *lx.p == '[')
                return bnn__error(BNN_EFORMAT,
                                  "%s: a structured dtype (a list of fields) is not supported; "
                                  "save a plain numeric array",
                                  a->path);
            if (!read_string(&lx, descr, sizeof descr)) goto bad;
            have_descr = true;
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            if (read_word(&lx, "True"))
                a->fortran = true;
            else if (read_word(&lx, "False"))
                a->fortran = false;
            else
                goto bad;
            have_order = true;
        } else if (!strcmp(key, "shape") && !have_shape) {
            if (!eat(&lx, '(')) goto bad;
            a->ndim = 0;
            while (!eat(&lx, ')')) {
                if (a->ndim == NPY_MAX_DIMS)
                    return bnn__error(BNN_EFORMAT, "%s: more than %d dimensions", a->path,
                                      NPY_MAX_DIMS);
                if (!read_count(&lx, &a->dims[a->ndim])) goto bad;
                a->ndim++;
                if (!eat(&lx, ',')) {
                    /* (6) is the number 6 in Python, not a tuple: numpy refuses it. */
                    if (a->ndim == 1 || !eat(&lx, ')')) goto bad;
                    break;
                }
            }
            have_shape = true;
        } else {
            const bool known =
                !strcmp(key, "descr") || !strcmp(key, "fortran_order") || !strcmp(key, "shape");
            return bnn__error(BNN_EFORMAT,
                              "%s: the header has %s key '%s' (an NPY header holds 'descr', "
                              "'fortran_order' and 'shape', once each)",
                              a->path, known ? "a repeated" : "an unknown", key);
        }
        if (!eat(&lx, ',')) {
            if (!eat(&lx, '}')) goto bad;
            break;
        }
    }
    skip_space(&lx);
    if (lx.p != lx.end) goto bad;
    if (!have_descr || !have_order || !have_shape)
        return bnn__error(BNN_EFORMAT, "%s: the header lacks '%s'", a->path,
                          !have_descr   ? "descr"
                          : !have_order ? "fortran_order"
                                        : "shape");
    int rc = parse_descr(a, descr);
    if (rc) return rc;
    a->count = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->dims[i] > 0 && a->count > NPY_MAX_ELEMENTS / a->dims[i])
            return bnn__error(BNN_EFORMAT,
                              "%s: the shape describes more than 2^40 elements (a corrupted "
                              "header?)",
                              a->path);
        a->count *= a->dims[i];
    }
    return 0;
bad:;
    char shown[81];
    size_t n = len < sizeof shown - 1 ? len : sizeof shown - 1;
    for (size_t i = 0; i < n; i++)
        shown[i] = text[i] >= 0x20 && text[i] < 0x7f ? text[i] : ' ';
    shown[n] = '\0';
    return bnn__error(BNN_EFORMAT,
                      "%s: cannot read the NPY header (near character %zu of \"%s%s\")", a->path,
                      (size_t)(lx.p - text), shown, len > n ? "..." : "");
}

/* ---------------------------------------------------------------- reading */

/* Reads the header of the NPY file at path into a and, with stream NULL, the payload into a->data.
 * With stream non-NULL the payload is left unread and *stream is the open file positioned at its
 * first byte (the caller reads it and closes the file). */
static int read_array(npy_array *a, const char *path, gzFile *stream) {
    memset(a, 0, sizeof *a);
    if (stream) *stream = NULL;
    a->path = path;
    gzFile f = NULL;
    char *text = NULL;
    int rc = bnn__gz_open(&f, path);
    if (rc) return rc;
    unsigned char pre[12];
    int got = gzread(f, pre, 10);
    if (got < 0) {
        rc = bnn__gz_read_failure(f, path, "magic string", 10, 0);
        goto done;
    }
    if (got >= 4 && memcmp(pre, "PK\x03\x04", 4) == 0) {
        rc = bnn__error(BNN_EFORMAT,
                        "%s: a zip archive (np.savez writes NPZ files as zips of .npy files), not "
                        "an NPY file: save each array with np.save, or unzip the archive and "
                        "name its .npy files",
                        path);
        goto done;
    }
    if (got > 0 && got < 8 && memcmp(pre, "\x93NUMPY", got < 6 ? (size_t)got : 6) == 0) {
        rc = bnn__gz_read_failure(f, path, "magic string and version", 8, (size_t)got);
        goto done;
    }
    if (got < 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rc = got == 0 ? bnn__error(BNN_EFORMAT, "%s: the file is empty", path)
                      : bnn__error(BNN_EFORMAT,
                                   "%s: not an NPY file (it does not start with \\x93NUMPY, the "
                                   "mark np.save writes)",
                                   path);
        goto done;
    }
    const int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0) {
        rc = bnn__error(BNN_EFORMAT,
                        "%s: NPY format version %d.%d is not supported (1.0, 2.0 and 3.0 are)",
                        path, major, minor);
        goto done;
    }
    const int lenbytes = major == 1 ? 2 : 4;
    if (got == 10 && lenbytes == 4) {
        const int more = gzread(f, pre + 10, 2);
        got += more > 0 ? more : 0;
    }
    if (got < 8 + lenbytes) {
        rc = bnn__gz_read_failure(f, path, "header length", (size_t)lenbytes, (size_t)got - 8);
        goto done;
    }
    uint64_t hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
    if (lenbytes == 4) hlen |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    if (hlen == 0 || hlen > NPY_MAX_HEADER) {
        rc = bnn__error(BNN_EFORMAT, "%s: a header of %llu bytes (a corrupted file?)", path,
                        (unsigned long long)hlen);
        goto done;
    }
    if (!(text = malloc((size_t)hlen))) {
        rc = bnn__error(BNN_ENOMEM, "%s: cannot allocate the header", path);
        goto done;
    }
    if ((rc = bnn__gz_read_exact(f, path, "header", (unsigned char *)text, (size_t)hlen)))
        goto done;
    if ((rc = parse_header(a, text, (size_t)hlen))) goto done;
    const size_t bytes = (size_t)a->count * (size_t)a->size;
    if (a->count > 0 && bnn__bytes(a->count, (size_t)a->size) == 0) {
        rc = bnn__error(BNN_ENOMEM, "%s: %lld elements do not fit in memory here", path,
                        (long long)a->count);
        goto done;
    }
    if (stream) {
        *stream = f;
        f = NULL;
        goto done;
    }
    if (bytes > 0 && (rc = bnn__gz_read_payload(f, path, "data", bytes, &a->data))) goto done;
    rc = bnn__gz_close(f, path);
    f = NULL;
done:
    if (f) gzclose(f);
    free(text);
    if (rc) {
        free(a->data);
        a->data = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------- values */

/* IEEE half precision to float, exactly (every half is a float). */
static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31;
    const int exp = (h >> 10) & 0x1f;
    const uint32_t mant = h & 0x3ff;
    float v;
    if (exp == 0x1f) {
        const uint32_t bits = sign | 0x7f800000u | mant << 13;
        memcpy(&v, &bits, sizeof v);
        return v;
    }
    v = exp == 0 ? ldexpf((float)mant, -24) : ldexpf((float)(mant | 0x400), exp - 25);
    return sign ? -v : v;
}

/* Element g's bytes as an integer in this machine's order. */
static uint64_t bits_of(const npy_array *a, const unsigned char *p) {
    uint64_t u = 0;
    if (a->order == '>')
        for (int b = 0; b < a->size; b++)
            u = u << 8 | p[b];
    else
        for (int b = a->size - 1; b >= 0; b--)
            u = u << 8 | p[b];
    return u;
}
static uint64_t bits_at(const npy_array *a, int64_t g) {
    return bits_of(a, a->data + (size_t)g * (size_t)a->size);
}

/* A signed integer element, sign-extended from its width. */
static int64_t signed_of(const npy_array *a, uint64_t u) {
    if (a->size < 8 && (u >> (8 * a->size - 1)) & 1) u |= ~(uint64_t)0 << (8 * a->size);
    int64_t s;
    memcpy(&s, &u, sizeof s);
    return s;
}

/* Element g of the file (in the file's own order) as a double; every supported dtype but the
 * 8-byte integers beyond 2^53 converts exactly. */
static double value_of(const npy_array *a, const unsigned char *p) {
    uint64_t u = bits_of(a, p);
    switch (a->kind) {
    case 'b': return u != 0;
    case 'u': return (double)u;
    case 'i': return (double)signed_of(a, u);
    default:
        if (a->size == 2) return half_to_float((uint16_t)u);
        if (a->size == 4) {
            const uint32_t w = (uint32_t)u;
            float f;
            memcpy(&f, &w, sizeof f);
            return f;
        }
        double v;
        memcpy(&v, &u, sizeof v);
        return v;
    }
}
static double value_at(const npy_array *a, int64_t g) {
    return value_of(a, a->data + (size_t)g * (size_t)a->size);
}

/* Where element g of the file goes in C order: the file's own position unless it is in Fortran
 * order. Walks the file's positions in sequence, so the caller visits g = 0, 1, 2, ... */
typedef struct walker {
    const npy_array *a;
    int64_t idx[NPY_MAX_DIMS], stride[NPY_MAX_DIMS], pos;
} walker;

static void walker_init(walker *w, const npy_array *a) {
    memset(w, 0, sizeof *w);
    w->a = a;
    int64_t s = 1;
    for (int i = a->ndim - 1; i >= 0; i--) {
        w->stride[i] = s;
        s *= a->dims[i];
    }
}

/* The C-order position of the current element; then steps to the next one. */
static int64_t walker_next(walker *w) {
    const npy_array *a = w->a;
    const int64_t here = w->pos;
    if (!a->fortran) {
        w->pos++;
        return here;
    }
    for (int i = 0; i < a->ndim; i++) { /* the first index varies fastest */
        w->pos += w->stride[i];
        if (++w->idx[i] < a->dims[i]) break;
        w->idx[i] = 0;
        w->pos -= w->stride[i] * a->dims[i];
    }
    return here;
}

static void shape_text(char *buf, size_t cap, const npy_array *a) {
    size_t len = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < a->ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? ", %lld" : "%lld", (long long)a->dims[i]);
    if (len < cap) snprintf(buf + len, cap - len, a->ndim == 1 ? ",)" : ")");
}

/* Position p of a C-order (n, ...) array as "row r, column c" with the columns flattened. */
static void element_text(char *buf, size_t cap, int64_t p, int64_t cols) {
    snprintf(buf, cap, "row %lld, column %lld (counting from 0)", (long long)(p / cols),
             (long long)(p % cols));
}

/* ---------------------------------------------------------------- the dataset */

static int feature_error(const npy_array *x, int64_t p, int64_t d, double v) {
    char where[96];
    element_text(where, sizeof where, p, d);
    return bnn__error(BNN_EFORMAT, "%s: the feature at %s is %g%s", x->path, where, v,
                      isfinite(v) ? ", beyond single precision" : "");
}

/* float32 in this machine's order, row-major (what np.save writes for float32 data): the bytes
 * are the dataset's as they are. */
static bool native_f32(const npy_array *x) {
    return x->kind == 'f' && x->size == 4 && !x->fortran &&
           (x->order == '<') == little_endian_host();
}

/* Bytes of the file read per piece by stream_features. */
#define NPY_PIECE ((size_t)1 << 20)

/* An element of features of any dtype but native float32 (its bytes at `at`) as a float; false
 * when that float is not finite (*wide: the value before the conversion). */
static bool feature_value(const npy_array *x, const unsigned char *at, float *out, double *wide) {
    /* Integers convert straight to float: through double, a 64-bit one beyond 2^53 would be
     * rounded twice. */
    if (x->kind == 'u' || x->kind == 'i') {
        const uint64_t u = bits_of(x, at);
        *out = x->kind == 'u' ? (float)u : (float)signed_of(x, u);
        return true;
    }
    *wide = value_of(x, at);
    *out = (float)*wide;
    return isfinite(*out);
}

/* The features of a C-order file of any dtype but native float32 (float64 is what np.save writes
 * for NumPy's default floats), converted to float as they are read, a piece of NPY_PIECE bytes
 * at a time, from the stream read_array left at the payload: the file's own bytes are never all
 * in memory (the peak was 12 bytes a value for float64 instead of 4). The floats grow as the
 * data arrive (doubling from one piece's worth), so a header that claims more than the file
 * holds is reported as truncated, as bnn__gz_read_payload reports it, without the claimed size
 * being allocated. On success *out is a malloc'd array of x->count floats, for the dataset to
 * adopt, and *bad_at the first element that is not finite as a float (*bad_value before the
 * conversion), or −1: the caller reports it after the targets are checked, in the order the
 * errors came when the whole file was read first. Closes nothing. */
static int stream_features(float **out, const npy_array *x, gzFile f, int64_t *bad_at,
                           double *bad_value) {
    *out = NULL;
    *bad_at = -1;
    const size_t size = (size_t)x->size, want = (size_t)x->count * size;
    const size_t per = NPY_PIECE / size; /* elements a piece */
    unsigned char *piece = malloc(NPY_PIECE);
    size_t cap = (size_t)x->count < per ? (size_t)x->count : per;
    float *v = malloc(cap * sizeof *v);
    int rc = 0;
    if (!piece || !v) {
        rc = bnn__error(BNN_ENOMEM, "%s: cannot allocate a read buffer", x->path);
        goto fail;
    }
    for (int64_t g0 = 0; g0 < x->count;) {
        const size_t m = (size_t)(x->count - g0) < per ? (size_t)(x->count - g0) : per;
        if ((size_t)g0 + m > cap) {
            const size_t next = cap > (size_t)x->count / 2 ? (size_t)x->count : cap * 2;
            float *grown = realloc(v, next * sizeof *v);
            if (!grown) {
                rc = bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes", x->path,
                                next * sizeof *v);
                goto fail;
            }
            v = grown, cap = next;
        }
        if ((rc = bnn__gz_read_part(f, x->path, "data", piece, m * size, (size_t)g0 * size,
                                    want)))
            goto fail;
        for (size_t i = 0; i < m; i++) {
            double wide = 0.0;
            if (!feature_value(x, piece + i * size, v + g0 + i, &wide) && *bad_at < 0)
                *bad_at = g0 + (int64_t)i, *bad_value = wide;
        }
        g0 += (int64_t)m;
    }
    if ((rc = bnn__gz_read_end(f, x->path, "data", want))) goto fail;
    free(piece);
    *out = v;
    return 0;
fail:
    free(piece), free(v);
    return rc;
}

/* Checks or fills ds->x: native_f32 data already are its buffer (bnn_npy_load hands them over)
 * and are only checked; a Fortran-order file's whole payload in x->data is rearranged into C
 * order (C-order files of other dtypes were converted as they were read, stream_features). */
static int load_features(bnn_dataset *ds, const npy_array *x) {
    if (native_f32(x)) {
        for (int64_t p = 0; p < x->count; p++)
            if (!isfinite(ds->x[p])) return feature_error(x, p, ds->d, ds->x[p]);
        return 0;
    }
    walker w;
    walker_init(&w, x);
    for (int64_t g = 0; g < x->count; g++) {
        const int64_t p = walker_next(&w);
        double wide = 0.0;
        if (!feature_value(x, x->data + (size_t)g * (size_t)x->size, ds->x + p, &wide))
            return feature_error(x, p, ds->d, wide);
    }
    return 0;
}

static int load_targets(bnn_dataset *ds, const npy_array *y) {
    const bool cls = ds->task == BNN_TASK_CLASSIFICATION;
    walker w;
    walker_init(&w, y);
    int64_t top = -1;
    for (int64_t g = 0; g < y->count; g++) {
        const int64_t p = walker_next(&w);
        const double v = value_at(y, g);
        if (cls) {
            if (isfinite(v) && v >= (double)INT32_MAX && v == floor(v)) {
                char shown[32]; /* an integer as stored, not as the double rounds it */
                const uint64_t u = bits_at(y, g);
                if (y->kind == 'u')
                    snprintf(shown, sizeof shown, "%llu", (unsigned long long)u);
                else if (y->kind == 'i')
                    snprintf(shown, sizeof shown, "%lld", (long long)signed_of(y, u));
                else
                    snprintf(shown, sizeof shown, "%.17g", v);
                return bnn__error(BNN_EFORMAT,
                                  "%s: the target of row %lld (counting from 0) is %s, "
                                  "beyond the largest class label %d",
                                  y->path, (long long)p, shown, INT32_MAX - 1);
            }
            if (!(v >= 0.0 && v < (double)INT32_MAX && v == floor(v)))
                return bnn__error(BNN_EFORMAT,
                                  "%s: the target of row %lld (counting from 0) is %g, not a "
                                  "class label (a whole number >= 0): regression targets?",
                                  y->path, (long long)p, v);
            ds->labels[p] = (int32_t)v;
            if (ds->labels[p] > top) top = ds->labels[p];
        } else {
            /* Integers straight to float, as for the features. */
            if (y->kind == 'u' || y->kind == 'i') {
                const uint64_t u = bits_at(y, g);
                ds->targets[p] = y->kind == 'u' ? (float)u : (float)signed_of(y, u);
                continue;
            }
            ds->targets[p] = (float)v;
            if (!isfinite(ds->targets[p])) {
                char where[96];
                element_text(where, sizeof where, p, ds->k);
                return bnn__error(BNN_EFORMAT, "%s: the target at %s is %g%s", y->path, where, v,
                                  isfinite(v) ? ", beyond single precision" : "");
            }
        }
    }
    if (cls) ds->k = top + 1; /* as for IDX and CSV labels: the largest label + 1 */
    return 0;
}

int bnn_npy_load(bnn_dataset **out, const char *x_path, const char *y_path, bnn_task task) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_npy_load: out is NULL");
    *out = NULL;
    if (!x_path) return bnn__error(BNN_EINVAL, "bnn_npy_load: the features path is NULL");
    /* Without targets the task is not used (an unlabelled set), so it is not checked either. */
    if (y_path && task != BNN_TASK_CLASSIFICATION && task != BNN_TASK_REGRESSION)
        return bnn__error(BNN_EINVAL, "bnn_npy_load: unknown task %d", (int)task);
    npy_array x, y;
    memset(&y, 0, sizeof y);
    bnn_dataset *ds = NULL;
    char sx[256], sy[256];
    gzFile xf = NULL;
    float *conv = NULL; /* the features as floats, when they were converted as read */
    int rc = read_array(&x, x_path, &xf);
    if (rc) return rc;
    shape_text(sx, sizeof sx, &x);
    if (x.ndim == 0 || x.count == 0) {
        rc = bnn__error(BNN_EFORMAT, "%s: an array of shape %s %s", x_path, sx,
                        x.ndim == 0      ? "is a scalar (the features need shape (n, d) or (n,))"
                        : x.dims[0] == 0 ? "holds no examples"
                                         : "holds no features");
        goto done;
    }
    const int64_t n = x.dims[0], d = x.count / n;
    /* The payload: native float32 as it is (the dataset adopts it), other dtypes in C order
     * converted as they are read (stream_features), Fortran order whole and then rearranged. */
    int64_t bad_at = -1; /* a feature that is not finite as a float, reported after the targets */
    double bad_value = 0.0;
    if (!native_f32(&x) && !x.fortran)
        rc = stream_features(&conv, &x, xf, &bad_at, &bad_value);
    else
        rc = bnn__gz_read_payload(xf, x_path, "data", (size_t)x.count * (size_t)x.size, &x.data);
    if (!rc)
        rc = bnn__gz_close(xf, x_path);
    else
        gzclose(xf);
    xf = NULL;
    if (rc) goto done;
    int64_t t = 1;
    if (y_path) {
        if ((rc = read_array(&y, y_path, NULL))) goto done;
        shape_text(sy, sizeof sy, &y);
        const bool cls = task == BNN_TASK_CLASSIFICATION;
        if (y.ndim < 1 || y.ndim > 2 || y.dims[0] != n || (cls && y.ndim == 2 && y.dims[1] != 1) ||
            (y.ndim == 2 && y.dims[1] == 0)) {
            rc = bnn__error(BNN_EFORMAT,
                            "%s: targets of shape %s do not fit %s of shape %s: give %s", y_path,
                            sy, x_path, sx,
                            cls ? "one class label per example, shape (n,) or (n, 1) (one-hot "
                                  "labels: save labels.argmax(1))"
                                : "one row of targets per example, shape (n,) or (n, t)");
            goto done;
        }
        if (y.ndim == 2) t = y.dims[1];
    }
    /* The dataset adopts the features' floats where they are ready instead of copying them into
     * a second buffer of the same size: native float32 as read, other C-order dtypes as
     * converted while read (conv). The buffers have malloc's alignment rather than bnn__alloc's
     * 64 bytes, which nothing reading a dataset relies on. Fortran-order files are rearranged
     * into the dataset's own buffer by load_features, which also checks native float32. */
    const bool converted = conv != NULL;
    float *adopt = converted ? conv : native_f32(&x) ? (float *)(void *)x.data : NULL;
    if ((rc = bnn__dataset_make(&ds, y_path ? task : BNN_TASK_CLASSIFICATION, n, d, t, 1, adopt)))
        goto done;
    if (converted)
        conv = NULL;
    else if (adopt)
        x.data = NULL;
    if (bad_at >= 0) {
        rc = feature_error(&x, bad_at, d, bad_value);
        goto done;
    }
    if (!converted && (rc = load_features(ds, &x))) goto done;
    if (y_path) {
        if ((rc = load_targets(ds, &y))) goto done;
    } else {
        memset(ds->labels, 0, (size_t)n * sizeof(int32_t));
        ds->unlabelled = true;
    }
    /* (n, h, w): one-channel images; (n, c, h, w): PyTorch's layout of c-channel images. */
    if (x.ndim == 3 || x.ndim == 4) {
        const int64_t shape[3] = {x.ndim == 4 ? x.dims[1] : 1, x.dims[x.ndim - 2],
                                  x.dims[x.ndim - 1]};
        bnn_dataset_set_image_shape(ds, shape);
    }
done:
    if (xf) gzclose(xf);
    free(conv);
    free(x.data);
    free(y.data);
    if (rc) {
        bnn_dataset_free(ds);
        ds = NULL;
    }
    *out = ds;
    return rc;
}
