/* CSV reader: numeric features with one target column. Every field is checked, and an error
 * names the file, the line and the column (both counted from 1, as editors show them; the target
 * column's also as --target-col counts it, from 0). The
 * file is read through zlib's gzopen/gzread, so a gzip-compressed CSV works as well.
 *
 * Deliberately not supported: quoted fields (a header name with the delimiter inside quotes
 * would be split) and locales whose decimal point is not '.': numbers are parsed with strtod,
 * which follows the C locale unless the program calls setlocale. */
#include "data/data.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>
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

/* The file is read a piece at a time (CSV_PIECE bytes, through zlib, so .gz works too) and
 * handed out line by line; only the floats of the rows parsed so far and one piece (or the
 * longest line) are in memory, never the whole text beside the data (which made the peak about
 * three times the features' floats). Errors come in the file's order: a bad field is reported
 * before a NUL byte, a truncated or corrupt gzip stream, or a read error further on (when the
 * whole file was read first, those came first). */
#define CSV_PIECE ((size_t)1 << 20)

typedef struct csv_reader {
    const char *path;
    gzFile f;
    char *buf;
    size_t cap, start, end; /* unread bytes: buf[start, end) */
    size_t offset;          /* bytes of the file before buf[0] */
    bool eof;
    int64_t lineno;
} csv_reader;

/* Closes the file (an error closing it is BNN_EIO, when nothing else went wrong: rc 0). */
static int reader_close(csv_reader *r, int rc) {
    const int z = r->f ? gzclose(r->f) : Z_OK;
    free(r->buf);
    r->f = NULL, r->buf = NULL;
    if (!rc && z != Z_OK) rc = bnn__error(BNN_EIO, "%s: error closing the file", r->path);
    return rc;
}

/* zlib's message without the "PATH: " it puts before its own words (ours come after the path). */
static const char *own_words(const char *zmsg, const char *path) {
    const size_t n = strlen(path);
    return zmsg && !strncmp(zmsg, path, n) && zmsg[n] == ':' && zmsg[n + 1] == ' ' ? zmsg + n + 2
                                                                                   : zmsg;
}

/* Reads more of the file after the unread bytes (moved to the front of the buffer, which grows
 * when they fill it: a line longer than a piece). At the end of the file sets r->eof, after
 * checking that a gzip stream did not end early (its data would be silently cut). */
static int reader_fill(csv_reader *r) {
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->offset += r->start, r->end -= r->start, r->start = 0;
    }
    if (r->end == r->cap) {
        if (r->cap > SIZE_MAX / 2)
            return bnn__error(BNN_ENOMEM, "%s: a line is too long to hold", r->path);
        char *grown = realloc(r->buf, r->cap * 2);
        if (!grown)
            return bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes for a line", r->path,
                              r->cap * 2);
        r->buf = grown, r->cap *= 2;
    }
    size_t ask = r->cap - r->end;
    if (ask > (size_t)1 << 30) ask = (size_t)1 << 30;
    const int got = gzread(r->f, r->buf + r->end, (unsigned)ask);
    if (got < 0) {
        int zerr = Z_OK;
        const char *zmsg = own_words(gzerror(r->f, &zerr), r->path);
        const int code = zerr == Z_ERRNO ? BNN_EIO : BNN_EFORMAT;
        return bnn__error(code, "%s: cannot read: %s", r->path,
                          zerr == Z_ERRNO ? strerror(errno) : zmsg);
    }
    if (got == 0) {
        int zerr = Z_OK;
        const char *zmsg = own_words(gzerror(r->f, &zerr), r->path);
        if (zerr != Z_OK)
            return bnn__error(zerr == Z_ERRNO ? BNN_EIO : BNN_EFORMAT,
                              "%s: cannot read (truncated or corrupt?): %s", r->path, zmsg);
        r->eof = true;
        return 0;
    }
    /* Text has no NUL byte: stop at the first one rather than read on (csv:/dev/zero read until
     * memory ran out). */
    const char *nul = memchr(r->buf + r->end, '\0', (size_t)got);
    if (nul)
        return bnn__error(BNN_EFORMAT, "%s: byte %zu is NUL: not a text (CSV) file", r->path,
                          r->offset + (size_t)(nul - r->buf));
    r->end += (size_t)got;
    return 0;
}

/* Opens path and reads its first piece. */
static int reader_open(csv_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    const int rc0 = bnn__gz_open(&r->f, path);
    if (rc0) return rc0;
    /* 64 KiB to start with (a small file needs no more), grown to a piece by the first one. */
    r->cap = (size_t)1 << 16;
    if (!(r->buf = malloc(r->cap)))
        return bnn__error(BNN_ENOMEM, "%s: cannot allocate a read buffer", path);
    /* The first piece whole (gzread may return less), after a byte-order mark, and one byte more:
     * the line-ending check on the start of the file sees a whole piece and the byte after its
     * last CR. */
    while (!r->eof && r->end < CSV_PIECE + 4) {
        const int rc = reader_fill(r);
        if (rc) return rc;
    }
    return 0;
}

/* One line of the file, without its line ending. */
typedef struct csv_line {
    const char *s;
    size_t len;
    int64_t no; /* 1-based line number */
} csv_line;

/* The next line of the file into l (valid until the next call): 1, or 0 at the end of the file,
 * or an error code (negative). Handles LF and CRLF endings and a last line without a newline. */
static int next_line(csv_reader *r, csv_line *l) {
    /* Bytes of the line already searched for its newline: a fill moves the line to the front of
     * the buffer but keeps them, so a long line read in small pieces (from a pipe) is not
     * searched again from its start after every piece. */
    size_t searched = 0;
    for (;;) {
        const char *s = r->buf + r->start;
        const char *nl = memchr(s + searched, '\n', r->end - r->start - searched);
        if (nl || (r->eof && r->start < r->end)) {
            const char *e = nl ? nl : r->buf + r->end;
            r->start = nl ? (size_t)(nl + 1 - r->buf) : r->end;
            if (e > s && e[-1] == '\r') e--;
            l->s = s, l->len = (size_t)(e - s), l->no = ++r->lineno;
            return 1;
        }
        if (r->eof) return 0;
        searched = r->end - r->start;
        const int rc = reader_fill(r);
        if (rc) return rc;
    }
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

/* s without the blanks around it. */
static void trim(const char **s, size_t *len) {
    while (*len && (**s == ' ' || **s == '\t')) (*s)++, (*len)--;
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t')) (*len)--;
}

/* A number in double quotes, blanks allowed around the quotes and inside them ("0.1", " 1 "). */
static bool quoted_number(const char *s, size_t len) {
    trim(&s, &len);
    if (len < 2 || s[0] != '"' || s[len - 1] != '"') return false;
    s++, len -= 2;
    trim(&s, &len);
    double v;
    const num_status st = parse_number(s, len, &v);
    return st == NUM_OK || st == NUM_NONFINITE || st == NUM_RANGE;
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
        return bnn__error(BNN_EFORMAT, "%s, line %lld, column %lld: '%s' is not a number%s", path,
                          (long long)l->no, (long long)col + 1, shown,
                          quoted_number(s, len) ? " (quoted fields are not read: write numbers "
                                                  "without quotes)" : "");
    }
}

/* Whether the field is digits alone (blanks around them aside). */
static bool plain_integer(const char *s, size_t len) {
    trim(&s, &len);
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return len > 0;
}
/* Whether the field is a word that data files write for a missing value. */
static bool missing_word(const char *s, size_t len) {
    static const char *const words[] = {"na", "n/a", "null", "none", "missing"};
    trim(&s, &len);
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
        if (len == strlen(words[w]) && !strncasecmp(s, words[w], len)) return true;
    return false;
}

/* A field that is not a number reads as a name when it starts (after blanks) with a letter,
 * '_', a quote or a non-ASCII byte. A number in quotes too: R's write.csv quotes a frame's
 * column names, numeric ones included ("1","2" over unquoted rows). */
static bool is_name(const char *s, size_t len) {
    trim(&s, &len);
    const char c = len ? s[0] : '\0';
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '"' ||
           (unsigned char)c >= 0x80;
}

/* True when the line reads as a header: no field is empty, some field is a name — not a number
 * and starting with a letter, '_' or a quote ("x1,x2,label", and pandas' "0,1,label") — and every
 * number in it is a plain integer (pandas' names of unnamed columns). So a first data row with an
 * empty or mistyped number ("1,,0", "1,2.o,0"), or a word among its numbers ("0.5,NA,1", "0.5,x,1",
 * R's missing value), is reported as bad data rather than silently dropped as a header; "nan" and
 * "inf" count as numbers (not integers) for the same reason, and a missing-value word (NA, N/A,
 * null, none, missing, in any case) is not a name. Other headers need --header. */
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
        if (st != NUM_BAD && !plain_integer(s, len)) return false;
        name = name || (st == NUM_BAD && is_name(s, len) && !missing_word(s, len));
    }
    return name;
}

/* A line of names with an empty field, which looks_like_header does not take for a header: 0
 * when the line is not that (a number in it, no name, no empty field), 1 when the empty field is
 * the last (a trailing delimiter), 2 when one in the middle is. */
static int names_with_empty(const csv_line *l, char delim) {
    size_t pos = 0;
    bool name = false, number = false, last_empty = false;
    int empties = 0;
    while (pos <= l->len) {
        const char *s;
        size_t len;
        double v;
        next_field(l, &pos, delim, &s, &len);
        const num_status st = parse_number(s, len, &v);
        last_empty = st == NUM_EMPTY;
        empties += last_empty;
        name = name || (st == NUM_BAD && is_name(s, len));
        number = number || st == NUM_OK || st == NUM_NONFINITE || st == NUM_RANGE;
    }
    if (!name || number || !empties) return 0;
    return last_empty && empties == 1 ? 1 : 2;
}

/* The rows parsed so far: features row-major, and the target column as labels (classification)
 * or targets (regression). The arrays double as rows arrive; the dataset adopts x. */
typedef struct csv_rows {
    float *x, *targets;
    int32_t *labels;
    int64_t n, cap, d;
} csv_rows;

/* Room for one more row; the target array only where a column is the target (cls: labels). */
static int rows_grow(csv_rows *t, const char *path, bool target, bool cls) {
    if (t->n < t->cap) return 0;
    /* From about a piece's worth of features, doubling. */
    int64_t next = t->cap ? t->cap * 2 : (int64_t)(CSV_PIECE / sizeof(float)) / t->d + 1;
    if (next > INT64_MAX / t->d / 2 || (size_t)next > SIZE_MAX / sizeof(float) / (size_t)t->d)
        return bnn__error(BNN_ENOMEM, "%s: too many rows to hold", path);
    float *x = realloc(t->x, (size_t)(next * t->d) * sizeof(float));
    if (x) t->x = x;
    void *y = !x || !target ? NULL
                            : realloc(cls ? (void *)t->labels : (void *)t->targets,
                                      (size_t)next * (cls ? sizeof(int32_t) : sizeof(float)));
    if (!x || (target && !y))
        return bnn__error(BNN_ENOMEM, "%s: cannot allocate %lld rows of %lld features", path,
                          (long long)next, (long long)t->d);
    if (target && cls)
        t->labels = y;
    else if (target)
        t->targets = y;
    t->cap = next;
    return 0;
}

/* Reads the file's lines in one pass: the first non-blank line fixes the column count and may be
 * the header; every later non-blank line is a data row, parsed into a growing csv_rows. */
static int parse_csv(bnn_dataset **out, csv_reader *r, const struct bnn_csv_params *p) {
    const char *path = r->path;
    const char delim = p->delimiter;
    /* Spreadsheet programs often start a UTF-8 CSV with a byte-order mark; it is not data. */
    if (r->end - r->start >= 3 && memcmp(r->buf + r->start, "\xEF\xBB\xBF", 3) == 0) r->start += 3;
    /* Lines ended by a carriage return alone (classic Mac OS) would read as one long line: more
     * CRs without an LF after them than LFs (in the first MiB, which the first fill holds with
     * the byte after it) says the file is written so. A CR inside a quoted field of an LF file,
     * or CR LF endings, do not; a CR at the very end of the buffer is the file's last byte. */
    int64_t bare_cr = 0, lf = 0;
    const char *pos = r->buf + r->start, *end = r->buf + r->end;
    const char *scan_end = end - pos > (1 << 20) ? pos + (1 << 20) : end;
    BNN_ASSERT(scan_end < end || r->eof);
    for (const char *c = pos; c < scan_end; c++)
        if (*c == '\n') lf++;
        else if (*c == '\r' && (c + 1 >= end || c[1] != '\n')) bare_cr++;
    if (bare_cr > lf)
        return bnn__error(BNN_EFORMAT,
                          "%s: its lines end in a carriage return alone (classic Mac OS line "
                          "endings); convert them, e.g. tr '\\r' '\\n' < IN > OUT",
                          path);

    const bool no_target = p->target_col == BNN_CSV_NO_TARGET;
    /* Without a target column the set is unlabelled whatever the task asked: a classification
     * set of one class, labels 0 (a regression set would have all its targets 0, and train). */
    const bnn_task task = no_target ? BNN_TASK_CLASSIFICATION : p->task;
    const bool cls = task == BNN_TASK_CLASSIFICATION;
    int64_t first_no = 0, ncols = 0, tc = -1, max_label = -1;
    csv_rows t = {0};
    csv_line l = {0};
    int rc, more;
    while ((more = next_line(r, &l)) > 0) {
        if (is_blank(&l)) continue;
        if (first_no == 0) {
            first_no = l.no;
            ncols = count_fields(&l, delim);
            if (p->header || (p->header_auto && looks_like_header(&l, delim))) continue;
        }
        if (t.n == 0) {
            /* The first data row: the column count and the target column are checked now (a file
             * without data rows is reported as such first). */
            if (ncols < 2 && !no_target) {
                char dn[16];
                rc = bnn__error(BNN_EFORMAT,
                                "%s, line %lld: one column, but a feature and a target "
                                "are needed (is the delimiter %s right?)",
                                path, (long long)first_no, delim_name(delim, dn));
                goto fail;
            }
            /* Features only: no column is the target (tc = −1 never matches a column). */
            tc = no_target ? -1 : p->target_col < 0 ? ncols + p->target_col : p->target_col;
            if (!no_target && (tc < 0 || tc >= ncols)) {
                rc = bnn__error(BNN_EINVAL,
                                "%s: target column %lld does not exist (the file has %lld "
                                "columns; negative values count from the end)",
                                path, (long long)p->target_col, (long long)ncols);
                goto fail;
            }
            t.d = no_target ? ncols : ncols - 1;
        }
        int64_t nf = count_fields(&l, delim);
        if (nf != ncols) {
            char dn[16];
            rc = bnn__error(BNN_EFORMAT,
                            "%s, line %lld: %lld field%s, expected %lld as on line "
                            "%lld (delimiter %s)",
                            path, (long long)l.no, (long long)nf, nf == 1 ? "" : "s",
                            (long long)ncols, (long long)first_no, delim_name(delim, dn));
            goto fail;
        }
        if ((rc = rows_grow(&t, path, !no_target, cls))) goto fail;
        size_t fp = 0;
        float *x = t.x + t.n * t.d;
        for (int64_t c = 0; c < ncols; c++) {
            const char *fs;
            size_t len;
            double v = 0.0;
            next_field(&l, &fp, delim, &fs, &len);
            num_status st = parse_number(fs, len, &v);
            if (st != NUM_OK) {
                rc = field_error(path, &l, c, st, fs, len);
                /* A first line of names that was not taken for a header only because a field
                 * is empty (a trailing delimiter, as some spreadsheets write): say why. */
                const int why = l.no == first_no && st == NUM_BAD && p->header_auto &&
                                        !p->header ? names_with_empty(&l, delim) : 0;
                if (why) {
                    char msg[512];
                    snprintf(msg, sizeof msg, "%s", bnn_last_error());
                    rc = bnn__error(rc, "%s (a header with an empty field is not taken for one: "
                                    "%s)", msg, why == 1 ? "a trailing delimiter? remove it from "
                                    "every line that has it" : "name every column, or pass "
                                    "--header");
                }
                goto fail;
            }
            if (c != tc) {
                *x++ = (float)v;
            } else if (!cls) {
                t.targets[t.n] = (float)v;
            } else {
                char shown[48];
                if (isfinite(v) && v >= (double)INT32_MAX && v == floor(v)) {
                    rc = bnn__error(BNN_EFORMAT,
                                    "%s, line %lld, column %lld (the target, --target-col %lld): "
                                    "class label '%s' is beyond the largest class label bnn "
                                    "takes (%d)",
                                    path, (long long)l.no, (long long)c + 1, (long long)c,
                                    printable(shown, sizeof shown, fs, len), INT32_MAX - 1);
                    goto fail;
                }
                if (v < 0.0 || v != floor(v)) {
                    rc = bnn__error(BNN_EFORMAT,
                                    "%s, line %lld, column %lld (the target, --target-col %lld): "
                                    "'%s' is not a class label (a non-negative integer): "
                                    "regression data, or the wrong target column?",
                                    path, (long long)l.no, (long long)c + 1, (long long)c,
                                    printable(shown, sizeof shown, fs, len));
                    goto fail;
                }
                t.labels[t.n] = (int32_t)v;
                if (t.labels[t.n] > max_label) max_label = t.labels[t.n];
            }
        }
        t.n++;
    }
    if ((rc = more) < 0) goto fail;
    if (t.n == 0) {
        rc = bnn__error(BNN_EFORMAT, "%s: %s", path,
                        first_no == 0 ? "the file is empty"
                                      : "the file has a header but no data rows");
        goto fail;
    }
    /* The dataset adopts the features (trimmed to the rows read) and gets the targets copied. */
    float *x = realloc(t.x, (size_t)(t.n * t.d) * sizeof(float));
    if (x) t.x = x;
    bnn_dataset *ds = NULL;
    if ((rc = bnn__dataset_make(&ds, task, t.n, t.d, 1, 1, t.x))) goto fail;
    t.x = NULL;
    if (no_target) {
        memset(ds->labels, 0, (size_t)t.n * sizeof(int32_t));
        ds->k = 1, ds->unlabelled = true;
    } else if (cls) {
        memcpy(ds->labels, t.labels, (size_t)t.n * sizeof(int32_t));
        ds->k = max_label + 1; /* the class count: the largest label + 1 */
    } else {
        memcpy(ds->targets, t.targets, (size_t)t.n * sizeof(float));
    }
    free(t.labels), free(t.targets);
    *out = ds;
    return 0;
fail:
    free(t.x), free(t.labels), free(t.targets);
    return rc;
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

    csv_reader r;
    int rc = reader_open(&r, path);
    if (!rc) rc = parse_csv(out, &r, p);
    rc = reader_close(&r, rc);
    if (rc && *out) bnn_dataset_free(*out), *out = NULL;
    return rc;
}
