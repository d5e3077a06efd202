/* CSV reader: numeric features with one target column. Every field is checked, and an error
 * names the file, the line and the column (both counted from 1, as editors show them). The
 * file is read through zlib's gzopen/gzread, so a gzip-compressed CSV works as well.
 *
 * Deliberately not supported: quoted fields (a header name with the delimiter inside quotes
 * would be split) and locales whose decimal point is not '.': numbers are parsed with strtod,
 * which follows the C locale unless the program calls setlocale. */
#include "data/data.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <zlib.h>

/* No number needs this many characters; a longer field is reported as not a number. */
#define CSV_MAX_FIELD 255

struct bnn_csv_params bnn_csv_default_params(void) {
    struct bnn_csv_params p = {
        .header = false,
        .header_auto = true,
        .target_col = -1,
        .task = BNN_TASK_CLASSIFICATION,
        .delimiter = ',',
    };
    return p;
}

/* Reads the whole file into a NUL-terminated malloc'd buffer. */
static int read_all(const char *path, char **out, size_t *len) {
    *out = NULL, *len = 0;
    if (bnn__not_a_directory(path)) return BNN_EIO;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return bnn__error(BNN_EIO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    size_t cap = (size_t)1 << 16, got = 0;
    char *buf = malloc(cap);
    if (!buf) {
        gzclose(f);
        return bnn__error(BNN_ENOMEM, "%s: cannot allocate a read buffer", path);
    }
    for (;;) {
        if (cap - got < 2) {
            if (cap > SIZE_MAX / 2) {
                free(buf), gzclose(f);
                return bnn__error(BNN_ENOMEM, "%s: the file is too large", path);
            }
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf), gzclose(f);
                return bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes", path, cap * 2);
            }
            buf = grown, cap *= 2;
        }
        size_t ask = cap - got - 1;
        if (ask > (size_t)1 << 30) ask = (size_t)1 << 30;
        int r = gzread(f, buf + got, (unsigned)ask);
        if (r < 0) {
            int zerr = Z_OK;
            const char *zmsg = gzerror(f, &zerr);
            int code = zerr == Z_ERRNO ? BNN_EIO : BNN_EFORMAT;
            const char *why = zerr == Z_ERRNO ? strerror(errno) : zmsg;
            /* The message first: zlib's text lives in f, which gzclose frees. */
            const int rc = bnn__error(code, "%s: cannot read: %s", path, why);
            free(buf), gzclose(f);
            return rc;
        }
        if (r == 0) break;
        /* Text has no NUL byte: stop at the first one rather than read on (csv:/dev/zero read
         * until memory ran out). */
        const char *nul = memchr(buf + got, '\0', (size_t)r);
        if (nul) {
            const int rc = bnn__error(BNN_EFORMAT, "%s: byte %zu is NUL: not a text (CSV) file",
                                      path, (size_t)(nul - buf));
            free(buf), gzclose(f);
            return rc;
        }
        got += (size_t)r;
    }
    /* A gzip file that ends early reads as a short file with an error recorded; the data would
     * be silently cut, so it is an error. */
    int zerr = Z_OK;
    const char *zmsg = gzerror(f, &zerr);
    if (zerr != Z_OK) {
        const int rc = bnn__error(zerr == Z_ERRNO ? BNN_EIO : BNN_EFORMAT,
                                  "%s: cannot read (truncated or corrupt?): %s", path, zmsg);
        free(buf), gzclose(f);
        return rc;
    }
    if (gzclose(f) != Z_OK) {
        free(buf);
        return bnn__error(BNN_EIO, "%s: error closing the file", path);
    }
    buf[got] = '\0';
    *out = buf, *len = got;
    return 0;
}

/* One line of the file, without its line ending. */
typedef struct csv_line {
    const char *s;
    size_t len;
    int64_t no; /* 1-based line number */
} csv_line;

/* Steps *pos to the next line; false at the end of the buffer. Handles LF and CRLF endings and
 * a last line without a newline. */
static bool next_line(const char **pos, const char *end, int64_t *lineno, csv_line *l) {
    if (*pos >= end) return false;
    const char *s = *pos;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *e = nl ? nl : end;
    *pos = nl ? nl + 1 : end;
    if (e > s && e[-1] == '\r') e--;
    l->s = s, l->len = (size_t)(e - s), l->no = ++*lineno;
    return true;
}

static bool is_space(char c, char delim) {
    return c != delim && (c == ' ' || c == '\t' || c == '\r');
}

static bool is_blank(const csv_line *l) {
    for (size_t i = 0; i < l->len; i++)
        if (!is_space(l->s[i], '\0')) return false;
    return true;
}

static int64_t count_fields(const csv_line *l, char delim) {
    int64_t n = 1;
    for (size_t i = 0; i < l->len; i++)
        n += l->s[i] == delim;
    return n;
}

/* The field starting at *pos within the line: sets *s and *len (trimmed of spaces and tabs)
 * and moves *pos past the following delimiter. */
static void next_field(const csv_line *l, size_t *pos, char delim, const char **s, size_t *len) {
    size_t a = *pos, b = a;
    while (b < l->len && l->s[b] != delim)
        b++;
    *pos = b + 1;
    while (a < b && is_space(l->s[a], delim))
        a++;
    while (b > a && is_space(l->s[b - 1], delim))
        b--;
    *s = l->s + a, *len = b - a;
}

typedef enum { NUM_OK, NUM_EMPTY, NUM_BAD, NUM_NONFINITE, NUM_RANGE } num_status;

/* Parses a whole field as a finite number that also fits in a float. strtod needs a
 * NUL-terminated string, so the field is copied; parsing in place could run into the next
 * field. */
static num_status parse_number(const char *s, size_t len, double *v) {
    if (len == 0) return NUM_EMPTY;
    if (len > CSV_MAX_FIELD) return NUM_BAD;
    double y;
    if (bnn__parse_decimal(s, len, &y)) { /* strtod's bits, without the copy */
        if (!isfinite((float)y)) return NUM_RANGE;
        *v = y;
        return NUM_OK;
    }
    char tmp[CSV_MAX_FIELD + 1];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end = NULL;
    errno = 0;
    double x = bnn_strtod(tmp, &end); /* decimal only: no CSV writer means 0x10 as 16 */
    if (end != tmp + len) return NUM_BAD;
    if (isnan(x) || isinf(x)) return errno == ERANGE ? NUM_RANGE : NUM_NONFINITE;
    if (!isfinite((float)x)) return NUM_RANGE;
    *v = x;
    return NUM_OK;
}

/* Copies a field into buf for a message, replacing bytes that are not printable ASCII by '?'
 * (a binary file must not garble the user's terminal) and cutting long fields. */
static const char *printable(char *buf, size_t cap, const char *s, size_t len) {
    const bool cut = len > cap - 4;
    size_t n = cut ? cap - 4 : len;
    for (size_t i = 0; i < n; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (cut) memcpy(buf + n, "...", 3), n += 3;
    buf[n] = '\0';
    return buf;
}

/* The delimiter as a message shows it: quoted, or named when it is not printable. */
static const char *delim_name(char delim, char buf[16]) {
    if (delim == '\t') return "tab";
    if (delim >= 0x20 && delim < 0x7f)
        snprintf(buf, 16, "'%c'", delim);
    else
        snprintf(buf, 16, "byte %d", (int)(unsigned char)delim);
    return buf;
}

static int field_error(const char *path, const csv_line *l, int64_t col, num_status st,
                       const char *s, size_t len) {
    char shown[48];
    printable(shown, sizeof shown, s, len);
    switch (st) {
    case NUM_EMPTY:
        return bnn__error(BNN_EFORMAT, "%s, line %lld, column %lld: the field is empty", path,
                          (long long)l->no, (long long)col + 1);
    case NUM_NONFINITE:
        return bnn__error(BNN_EFORMAT, "%s, line %lld, column %lld: '%s' is not a finite number",
                          path, (long long)l->no, (long long)col + 1, shown);
    case NUM_RANGE:
        return bnn__error(BNN_EFORMAT,
                          "%s, line %lld, column %lld: '%s' is out of the range of "
                          "a float",
                          path, (long long)l->no, (long long)col + 1, shown);
    default:
        return bnn__error(BNN_EFORMAT, "%s, line %lld, column %lld: '%s' is not a number", path,
                          (long long)l->no, (long long)col + 1, shown);
    }
}

/* True when the line reads as a header: no field is empty, and some field is a name — not a
 * number and starting with a letter, '_' or a quote ("x1,x2,label", and pandas' "0,1,label").
 * So a first data row with an empty or mistyped number ("1,,0", "1,2.o,0") is reported as bad
 * data rather than silently dropped as a header; "nan" and "inf" count as numbers for the same
 * reason. Other headers need --header. */
static bool looks_like_header(const csv_line *l, char delim) {
    size_t pos = 0;
    bool name = false;
    while (pos <= l->len) {
        const char *s;
        size_t len;
        double v;
        next_field(l, &pos, delim, &s, &len);
        num_status st = parse_number(s, len, &v);
        if (st == NUM_EMPTY) return false;
        if (st == NUM_BAD) {
            size_t i = 0;
            while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
            const char c = i < len ? s[i] : '\0';
            name = name || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                   c == '"' || (unsigned char)c >= 0x80;
        }
    }
    return name;
}

/* Parses the data rows into ds. tc is the target column; ncols the expected field count. */
static int parse_rows(bnn_dataset *ds, const char *path, const char *pos, const char *end,
                      int64_t lineno, int64_t ncols, int64_t tc, int64_t header_no, char delim) {
    const bool cls = ds->task == BNN_TASK_CLASSIFICATION;
    int64_t row = 0, max_label = -1;
    csv_line l;
    while (next_line(&pos, end, &lineno, &l)) {
        if (is_blank(&l)) continue;
        int64_t nf = count_fields(&l, delim);
        if (nf != ncols) {
            char dn[16];
            return bnn__error(BNN_EFORMAT,
                              "%s, line %lld: %lld fields, expected %lld as on line "
                              "%lld (delimiter %s)",
                              path, (long long)l.no, (long long)nf, (long long)ncols,
                              (long long)header_no, delim_name(delim, dn));
        }
        size_t fp = 0;
        float *x = ds->x + row * ds->d;
        for (int64_t c = 0; c < ncols; c++) {
            const char *s;
            size_t len;
            double v = 0.0;
            next_field(&l, &fp, delim, &s, &len);
            num_status st = parse_number(s, len, &v);
            if (st != NUM_OK) return field_error(path, &l, c, st, s, len);
            if (c != tc) {
                *x++ = (float)v;
            } else if (!cls) {
                ds->targets[row] = (float)v;
            } else {
                char shown[48];
                if (v < 0.0 || v != floor(v) || v >= (double)INT32_MAX)
                    return bnn__error(BNN_EFORMAT,
                                      "%s, line %lld, column %lld: target '%s' is "
                                      "not a class label (a non-negative integer): "
                                      "regression data, or the wrong target column?",
                                      path, (long long)l.no, (long long)c + 1,
                                      printable(shown, sizeof shown, s, len));
                ds->labels[row] = (int32_t)v;
                if (ds->labels[row] > max_label) max_label = ds->labels[row];
            }
        }
        row++;
    }
    BNN_ASSERT(row == ds->n);
    /* The class count is known only once every label is read: K = max label + 1. */
    if (cls) ds->k = max_label + 1;
    return 0;
}

/* Finds the header and the shape in the buffer, then parses the rows into a new dataset. */
static int parse_buffer(bnn_dataset **out, const char *path, const char *buf, size_t len,
                        const struct bnn_csv_params *p) {
    const char delim = p->delimiter;
    const char *pos = buf, *end = buf + len;
    /* Spreadsheet programs often start a UTF-8 CSV with a byte-order mark; it is not data. */
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) pos += 3;
    /* Lines ended by a carriage return alone (classic Mac OS) would read as one long line: more
     * CRs without an LF after them than LFs (in the first MiB) says the file is written so. A CR
     * inside a quoted field of an LF file, or CR LF endings, do not. */
    int64_t bare_cr = 0, lf = 0;
    const char *scan_end = end - pos > (1 << 20) ? pos + (1 << 20) : end;
    for (const char *c = pos; c < scan_end; c++)
        if (*c == '\n') lf++;
        else if (*c == '\r' && (c + 1 >= end || c[1] != '\n')) bare_cr++;
    if (bare_cr > lf)
        return bnn__error(BNN_EFORMAT,
                          "%s: its lines end in a carriage return alone (classic Mac OS line "
                          "endings); convert them, e.g. tr '\\r' '\\n' < IN > OUT",
                          path);

    /* Pass 1: the first non-blank line fixes the column count and may be the header; then the
     * data rows are counted so the dataset is allocated once. */
    int64_t lineno = 0, first_no = 0, n = 0, ncols = 0;
    bool header = false;
    const char *data_start = NULL;
    int64_t data_lineno = 0;
    csv_line l;
    while (next_line(&pos, end, &lineno, &l)) {
        if (is_blank(&l)) continue;
        if (first_no == 0) {
            first_no = l.no;
            ncols = count_fields(&l, delim);
            header = p->header || (p->header_auto && looks_like_header(&l, delim));
            if (header) {
                data_start = pos, data_lineno = lineno;
                continue;
            }
            data_start = l.s, data_lineno = lineno - 1;
        }
        n++;
    }
    if (n == 0)
        return bnn__error(BNN_EFORMAT, "%s: %s", path,
                          first_no == 0 ? "the file is empty"
                                        : "the file has a header but no data rows");
    const bool no_target = p->target_col == BNN_CSV_NO_TARGET;
    if (ncols < 2 && !no_target) {
        char dn[16];
        return bnn__error(BNN_EFORMAT,
                          "%s, line %lld: one column, but a feature and a target "
                          "are needed (is the delimiter %s right?)",
                          path, (long long)first_no, delim_name(delim, dn));
    }
    /* Features only: no column is the target (tc = −1 never matches a column). */
    int64_t tc = no_target ? -1 : p->target_col < 0 ? ncols + p->target_col : p->target_col;
    if (!no_target && (tc < 0 || tc >= ncols))
        return bnn__error(BNN_EINVAL,
                          "%s: target column %lld does not exist (the file has %lld "
                          "columns; negative values count from the end)",
                          path, (long long)p->target_col, (long long)ncols);

    /* Pass 2: parse into a dataset with one target column (regression) or int labels. */
    bnn_dataset *ds = NULL;
    /* Without a target column the set is unlabelled whatever the task asked: a classification
     * set of one class, labels 0 (a regression set would have all its targets 0, and train). */
    int rc = bnn_dataset_new(&ds, no_target ? BNN_TASK_CLASSIFICATION : p->task, n,
                             no_target ? ncols : ncols - 1, 1, 1);
    if (rc) return rc;
    rc = parse_rows(ds, path, data_start, end, data_lineno, ncols, tc, first_no, delim);
    if (!rc && no_target) ds->k = 1, ds->unlabelled = true;
    if (rc) {
        bnn_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return 0;
}

int bnn_csv_load(bnn_dataset **out, const char *path, const struct bnn_csv_params *p) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_csv_load: out is NULL");
    *out = NULL;
    if (!path) return bnn__error(BNN_EINVAL, "bnn_csv_load: path is NULL");
    struct bnn_csv_params dp = bnn_csv_default_params();
    if (!p) p = &dp;
    const char delim = p->delimiter;
    char dn[16];
    if (p->task != BNN_TASK_CLASSIFICATION && p->task != BNN_TASK_REGRESSION)
        return bnn__error(BNN_EINVAL, "%s: unknown task %d in the CSV settings", path,
                          (int)p->task);
    /* A delimiter that can occur inside a number or a line ending would make fields ambiguous. */
    if (delim == '\0' || delim == '\n' || delim == '\r' || (delim >= '0' && delim <= '9') ||
        strchr(".+-eE", delim))
        return bnn__error(BNN_EINVAL, "%s: %s cannot be a CSV delimiter", path,
                          delim_name(delim, dn));

    char *buf = NULL;
    size_t len = 0;
    int rc = read_all(path, &buf, &len);
    if (rc) return rc;
    rc = parse_buffer(out, path, buf, len, p);
    free(buf);
    return rc;
}
