/* Reading and writing safetensors files, the tensor container of Hugging Face's `safetensors`
 * package (https://github.com/huggingface/safetensors, format described in its README):
 *
 *   8 bytes  header length N, unsigned 64-bit little-endian
 *   N bytes  a UTF-8 JSON object, padded with spaces
 *   ...      the raw little-endian tensor data ("data area")
 *
 * Each JSON entry other than "__metadata__" is
 *   name: {"dtype": D, "shape": [d0, d1, ...], "data_offsets": [begin, end]}
 * with offsets relative to the data area; "__metadata__" maps strings to strings.
 *
 * A file is untrusted input: every field is validated before anything points into the data, so
 * a malformed file yields BNN_EFORMAT (or BNN_EUNSUPPORTED for a valid but unsupported dtype or
 * rank) with a message naming the file and the tensor or field, never an out-of-bounds read. */
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header this large is certainly not a real tensor index; refusing it early keeps a corrupt
 * length field from turning into a huge allocation. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
#define ST_MAX_NDIM 8
/* JSON numbers reach us as doubles through cJSON; integers above 2^53 are no longer exact, so
 * dimensions and offsets beyond it are refused instead of being silently rounded. */
#define ST_MAX_EXACT 9007199254740992.0

/* Tensor names and dtypes come from the file, so they are printed with a bounded width to keep
 * error messages readable whatever the file holds. */
#define NAMEFMT "%.200s"

/* ---------------------------------------------------------------- dtypes */

static const char *const dtype_names[] = {"F32",  "F64", "I64", "I32", "U8",      "F16",    "BF16",
                                           "BOOL", "I8",  "I16", "U16", "U32", "U64", "F8_E5M2",
                                           "F8_E4M3"};
#define ST_NDTYPES ((int)(sizeof dtype_names / sizeof dtype_names[0]))

size_t bnn_dtype_size(bnn_dtype dt) {
    switch (dt) {
    case BNN_DT_F32: return 4;
    case BNN_DT_F64: return 8;
    case BNN_DT_I64: return 8;
    case BNN_DT_I32: return 4;
    case BNN_DT_U8: return 1;
    case BNN_DT_F16: return 2;
    case BNN_DT_BF16: return 2;
    case BNN_DT_BOOL: return 1;
    case BNN_DT_I8: return 1;
    case BNN_DT_I16: return 2;
    case BNN_DT_U16: return 2;
    case BNN_DT_U32: return 4;
    case BNN_DT_U64: return 8;
    case BNN_DT_F8_E5M2: return 1;
    case BNN_DT_F8_E4M3: return 1;
    }
    return 0;
}

/* The dtype's name in the file, or NULL for a value outside the enum. */
static const char *dtype_name(bnn_dtype dt) {
    if ((int)dt < 0 || (int)dt >= ST_NDTYPES) return NULL;
    return dtype_names[dt];
}

const char *bnn_dtype_name(bnn_dtype dt) {
    const char *n = dtype_name(dt);
    return n ? n : "?";
}

/* ---------------------------------------------------------------- UTF-8 */

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF). The reference implementation refuses headers that are not, so the reader does
 * the same and the writer refuses names it could not write in a readable file. */
static int utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* n continuation bytes follow a lead byte; min is the smallest code point that needs
         * that many, so anything below it is an overlong encoding. */
        int n = (c >= 0xC2 && c <= 0xDF)   ? 1
                : (c & 0xF0) == 0xE0       ? 2
                : (c >= 0xF0 && c <= 0xF4) ? 3
                                           : 0;
        if (n == 0) return 0;
        uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
        if ((size_t)n > len - i - 1) return 0;
        uint32_t cp = c & (0x3Fu >> n);
        for (int k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += (size_t)n + 1;
    }
    return 1;
}

bool bnn_st_text_ok(const char *s) { return s && utf8_valid(s, strlen(s)); }

/* ---------------------------------------------------------------- reader */

struct bnn_st {
    unsigned char *buf; /* the whole file image, owned */
    size_t len;
    int64_t n; /* tensors, in header order */
    bnn_st_tensor *t;
    char **names;           /* owned copies; t[i].name points at names[i] */
    bnn_st_tensor **sorted; /* the tensors sorted by name, for lookups */
    int64_t nmeta;          /* metadata pairs, in header order */
    char **keys;
    char **values;
};

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void bnn_st_drop_tensors(bnn_st *st) {
    if (!st) return;
    for (int64_t i = 0; st->names && i < st->n; i++)
        free(st->names[i]);
    free(st->names);
    free(st->sorted);
    bnn__free(st->t);
    free(st->buf);
    st->names = NULL, st->sorted = NULL, st->t = NULL, st->buf = NULL;
    st->n = 0, st->len = 0;
}

void bnn_st_free(bnn_st *st) {
    if (!st) return;
    bnn_st_drop_tensors(st);
    for (int64_t i = 0; st->keys && i < st->nmeta; i++)
        free(st->keys[i]);
    for (int64_t i = 0; st->values && i < st->nmeta; i++)
        free(st->values[i]);
    free(st->keys);
    free(st->values);
    free(st);
}

/* Reads a JSON number that must be an exact non-negative integer (dimensions and offsets). */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0 && d <= ST_MAX_EXACT)) return 0;
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return 0;
    *out = u;
    return 1;
}

static int cmp_tensor_name(const void *a, const void *b) {
    const bnn_st_tensor *x = *(const bnn_st_tensor *const *)a;
    const bnn_st_tensor *y = *(const bnn_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_string(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A tensor's byte range in the data area, for the overlap check. */
typedef struct span {
    uint64_t begin, end;
    int64_t idx;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Parses one tensor entry `item` into t (its name already set). data_len is the size of the
 * data area, data its first byte. */
static int parse_entry(const cJSON *item, bnn_st_tensor *t, const unsigned char *data,
                       uint64_t data_len, uint64_t offs[2], const char *file) {
    const char *name = t->name;
    if (!cJSON_IsObject(item))
        return bnn__error(BNN_EFORMAT, "%s: tensor '" NAMEFMT "': entry is not a JSON object", file,
                          name);

    /* A field given twice is refused, as the reference reader refuses it (a duplicate field in
     * its strict deserialisation), rather than the first copy silently winning. Other fields
     * are ignored, as there. */
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    for (int f = 0; f < 3; f++) {
        int seen = 0;
        for (const cJSON *c = item->child; c; c = c->next)
            seen += c->string && !strcmp(c->string, fields[f]);
        if (seen > 1)
            return bnn__error(BNN_EFORMAT, "%s: tensor '" NAMEFMT "': \"%s\" appears %d times",
                              file, name, fields[f], seen);
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!dt)
        return bnn__error(BNN_EFORMAT, "%s: tensor '" NAMEFMT "': missing \"dtype\"", file, name);
    if (!cJSON_IsString(dt) || !dt->valuestring)
        return bnn__error(BNN_EFORMAT, "%s: tensor '" NAMEFMT "': \"dtype\" is not a string", file,
                          name);
    int di = -1;
    for (int k = 0; k < ST_NDTYPES; k++)
        if (!strcmp(dt->valuestring, dtype_names[k])) di = k;
    if (di < 0)
        return bnn__error(BNN_EUNSUPPORTED,
                          "%s: tensor '" NAMEFMT "': dtype '" NAMEFMT
                          "' is not one this reader knows (F64, F32, F16, BF16, F8_E5M2, "
                          "F8_E4M3, I64, I32, I16, I8, U64, U32, U16, U8, BOOL; not the later "
                          "C64, F8_E8M0, F4 or F6 ones), and without its size the file's layout "
                          "cannot be checked",
                          file, name, dt->valuestring);
    t->dtype = (bnn_dtype)di;
    size_t esize = bnn_dtype_size(t->dtype);

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    if (!shape)
        return bnn__error(BNN_EFORMAT, "%s: tensor '" NAMEFMT "': missing \"shape\"", file, name);
    if (!cJSON_IsArray(shape))
        return bnn__error(BNN_EFORMAT, "%s: tensor '" NAMEFMT "': \"shape\" is not an array", file,
                          name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_NDIM)
        return bnn__error(BNN_EUNSUPPORTED,
                          "%s: tensor '" NAMEFMT "': %d dimensions, at most %d are supported", file,
                          name, ndim, ST_MAX_NDIM);
    t->ndim = ndim;
    int64_t numel = 1;
    int k = 0;
    for (const cJSON *d = shape->child; d; d = d->next, k++) {
        uint64_t v;
        if (!json_uint(d, &v))
            return bnn__error(BNN_EFORMAT,
                              "%s: tensor '" NAMEFMT "': shape[%d] is not a non-negative "
                              "integer (at most 2^53)",
                              file, name, k);
        t->shape[k] = (int64_t)v;
        if (v != 0 && numel > INT64_MAX / (int64_t)v)
            return bnn__error(BNN_EFORMAT,
                              "%s: tensor '" NAMEFMT "': the product of the shape overflows", file,
                              name);
        numel *= (int64_t)v;
    }
    t->numel = numel;

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!off)
        return bnn__error(BNN_EFORMAT, "%s: tensor '" NAMEFMT "': missing \"data_offsets\"", file,
                          name);
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &offs[0]) ||
        !json_uint(off->child->next, &offs[1]))
        return bnn__error(BNN_EFORMAT,
                          "%s: tensor '" NAMEFMT "': \"data_offsets\" is not a pair of "
                          "non-negative integers up to 2^53",
                          file, name);
    uint64_t begin = offs[0], end = offs[1];
    if (end < begin)
        return bnn__error(BNN_EFORMAT,
                          "%s: tensor '" NAMEFMT "': data_offsets end %llu is before begin %llu",
                          file, name, (unsigned long long)end, (unsigned long long)begin);
    /* Dividing instead of multiplying numel by the element size cannot overflow. */
    uint64_t nbytes = end - begin;
    if (nbytes % esize != 0 || nbytes / esize != (uint64_t)numel)
        return bnn__error(BNN_EFORMAT,
                          "%s: tensor '" NAMEFMT "': data_offsets span %llu bytes but %s of "
                          "%lld elements needs %llu",
                          file, name, (unsigned long long)nbytes, dtype_names[di], (long long)numel,
                          (unsigned long long)numel * esize);
    if (end > data_len)
        return bnn__error(BNN_EFORMAT,
                          "%s: tensor '" NAMEFMT "': data ends at byte %llu, beyond the "
                          "%llu-byte data area",
                          file, name, (unsigned long long)end, (unsigned long long)data_len);
    t->data = data + begin;
    return 0;
}

/* Parses the "__metadata__" object into st. */
static int parse_meta(bnn_st *st, const cJSON *meta, const char *file) {
    if (!cJSON_IsObject(meta))
        return bnn__error(BNN_EFORMAT, "%s: \"__metadata__\" is not a JSON object", file);
    int64_t m = cJSON_GetArraySize(meta);
    if (m == 0) return 0;
    st->keys = calloc((size_t)m, sizeof *st->keys);
    st->values = calloc((size_t)m, sizeof *st->values);
    if (!st->keys || !st->values)
        return bnn__error(BNN_ENOMEM, "%s: cannot allocate %lld metadata entries", file,
                          (long long)m);
    for (const cJSON *kv = meta->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv) || !kv->valuestring)
            return bnn__error(BNN_EFORMAT,
                              "%s: __metadata__ value of '" NAMEFMT "' is not a string", file,
                              kv->string ? kv->string : "");
        int64_t i = st->nmeta;
        st->keys[i] = dup_string(kv->string ? kv->string : "");
        st->values[i] = dup_string(kv->valuestring);
        st->nmeta++; /* counted now so bnn_st_free releases whatever was allocated */
        if (!st->keys[i] || !st->values[i])
            return bnn__error(BNN_ENOMEM, "%s: out of memory copying the metadata", file);
    }
    /* Duplicate keys make a lookup ambiguous, so they are refused; sorting a copy of the key
     * pointers finds them in O(m log m) even for an adversarially large header. */
    char **sorted = malloc((size_t)m * sizeof *sorted);
    if (!sorted) return bnn__error(BNN_ENOMEM, "%s: cannot allocate metadata index", file);
    memcpy(sorted, st->keys, (size_t)m * sizeof *sorted);
    qsort(sorted, (size_t)m, sizeof *sorted, cmp_string);
    for (int64_t i = 1; i < m; i++) {
        if (!strcmp(sorted[i - 1], sorted[i])) {
            int rc = bnn__error(BNN_EFORMAT, "%s: __metadata__ key '" NAMEFMT "' appears twice",
                                file, sorted[i]);
            free(sorted);
            return rc;
        }
    }
    free(sorted);
    return 0;
}

/* JSON strings hold no raw control character, and we take none written as \u0000: cJSON would
 * end the decoded C string there, so "mlp:2-4\u0000-3-2" would silently read as "mlp:2-4". The
 * offset of the first such byte, or -1. */
static int64_t json_bad_string_byte(const char *s, size_t n) {
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (!in) {
            if (c == '"') in = true;
            continue;
        }
        if (c < 0x20) return (int64_t)i;
        if (c == '"') in = false;
        else if (c == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && !strncmp(s + i + 2, "0000", 4)) return (int64_t)i;
            i++; /* the escaped character */
        }
    }
    return -1;
}

/* The shapes and data offsets of a safetensors header are whole and non-negative (the reference
 * reader takes them as unsigned integers, from JSON without leading zeros), and cJSON would read
 * "8.0", "8e0", "-0" or "08" as 8 and 0 alike. In the header text s[0..n), valid JSON: the
 * offset of the first number token in a tensor entry's "shape" or "data_offsets" array written
 * with a sign, a fraction, an exponent or a leading zero, or -1. Numbers elsewhere (an unknown
 * field's, the metadata's) are left to the checks of their own. Keys are compared as written
 * (a key spelt with escapes is not taken for "shape", which cJSON then reads as it is). */
static int64_t st_nonwhole_number(const char *s, size_t n) {
    int depth = 0, in_arr = 0; /* in_arr: the depth inside a checked array, else 0 */
    bool meta = false, checked = false;
    size_t str = 0, slen = 0; /* the last string token */
    for (size_t i = 0; i < n; i++) {
        const char c = s[i];
        if (c == '"') {
            const size_t at = ++i;
            for (; i < n && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
            str = at, slen = i - at;
            continue;
        }
        if (c == '{' || c == '[') {
            if (c == '[' && depth == 2 && checked && !meta) in_arr = 3;
            depth++;
            continue;
        }
        if (c == '}' || c == ']') {
            if (depth == in_arr) in_arr = 0;
            depth--;
            continue;
        }
        if (c == ':') { /* the last string is the key of the value that follows */
            if (depth == 1) meta = slen == 12 && !memcmp(s + str, "__metadata__", 12);
            if (depth == 2)
                checked = (slen == 5 && !memcmp(s + str, "shape", 5)) ||
                          (slen == 12 && !memcmp(s + str, "data_offsets", 12));
            continue;
        }
        if (c != '-' && (c < '0' || c > '9')) continue;
        const size_t at = i;
        bool plain = c != '-';
        for (; i + 1 < n && s[i + 1] && strchr("0123456789.eE+-", s[i + 1]); i++)
            plain = plain && s[i + 1] >= '0' && s[i + 1] <= '9';
        if (plain && c == '0' && i > at) plain = false; /* a leading zero */
        if (in_arr && depth == in_arr && !plain) return (int64_t)at;
    }
    return -1;
}

/* Validates the image in st->buf and fills in the tensors and metadata. */

/* Whether text[0..n) is JSON that cJSON accepts, checked without allocating anything: when
 * cJSON's parse fails on text that passes, it ran out of memory (cJSON does not say which). Strict
 * RFC 8259 with cJSON's own limits (nesting up to CJSON_NESTING_LIMIT, a \u escape of a UTF-16
 * surrogate only as a high-low pair), so it never passes text cJSON would refuse; where it is
 * stricter the header is called malformed, as cJSON called it. (cJSON's allocation hooks, which
 * would tell directly, are one setting for the whole process, and a program's own.) */
typedef struct {
    const char *s;
    size_t n, i;
} json_cur;
static void jws(json_cur *c) {
    while (c->i < c->n && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' ||
                           c->s[c->i] == '\r'))
        c->i++;
}
static bool jlit(json_cur *c, const char *w) {
    const size_t l = strlen(w);
    if (c->n - c->i < l || memcmp(c->s + c->i, w, l)) return false;
    c->i += l;
    return true;
}
static int jhex4(json_cur *c) { /* the 4 hex digits after \u, or -1 */
    if (c->n - c->i < 4) return -1;
    int v = 0;
    for (int k = 0; k < 4; k++) {
        const char h = c->s[c->i + (size_t)k];
        const int d = h >= '0' && h <= '9' ? h - '0'
                      : h >= 'a' && h <= 'f' ? h - 'a' + 10
                      : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                             : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    c->i += 4;
    return v;
}
static bool jstring(json_cur *c) {
    if (c->i >= c->n || c->s[c->i] != '"') return false;
    c->i++;
    while (c->i < c->n) {
        const unsigned char ch = (unsigned char)c->s[c->i++];
        if (ch == '"') return true;
        if (ch < 0x20) return false;
        if (ch != '\\') continue;
        if (c->i >= c->n) return false;
        const char e = c->s[c->i++];
        if (e == 'u') {
            const int u = jhex4(c);
            if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) return false;
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (!jlit(c, "\\u")) return false;
                const int lo = jhex4(c);
                if (lo < 0xDC00 || lo > 0xDFFF) return false;
            }
        } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
            return false;
        }
    }
    return false;
}
static bool jnumber(json_cur *c) {
    const size_t at = c->i;
    if (c->i < c->n && c->s[c->i] == '-') c->i++;
    if (c->i >= c->n) return false;
    if (c->s[c->i] == '0') c->i++;
    else if (c->s[c->i] >= '1' && c->s[c->i] <= '9')
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
    else return false;
    if (c->i < c->n && c->s[c->i] == '.') {
        const size_t d = ++c->i;
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
        if (c->i == d) return false;
    }
    if (c->i < c->n && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) c->i++;
        const size_t d = c->i;
        while (c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') c->i++;
        if (c->i == d) return false;
    }
    return c->i > at;
}
static bool jvalue(json_cur *c, int depth) {
    jws(c);
    if (c->i >= c->n) return false;
    const char ch = c->s[c->i];
    if (ch == '{' || ch == '[') {
        if (depth >= CJSON_NESTING_LIMIT) return false;
        const char close = ch == '{' ? '}' : ']';
        c->i++;
        jws(c);
        if (c->i < c->n && c->s[c->i] == close) return c->i++, true;
        for (;;) {
            if (ch == '{') {
                jws(c);
                if (!jstring(c)) return false;
                jws(c);
                if (!jlit(c, ":")) return false;
            }
            if (!jvalue(c, depth + 1)) return false;
            jws(c);
            if (jlit(c, ",")) continue;
            return c->i < c->n && c->s[c->i++] == close;
        }
    }
    if (ch == '"') return jstring(c);
    if (ch == 't') return jlit(c, "true");
    if (ch == 'f') return jlit(c, "false");
    if (ch == 'n') return jlit(c, "null");
    return jnumber(c);
}
bool bnn__json_syntax_ok(const char *text, size_t n) {
    json_cur c = {text, n, 0};
    if (!jvalue(&c, 0)) return false;
    jws(&c);
    return c.i == n;
}

/* total is the size of the whole file, st->len that of the image in st->buf: equal, or with
 * meta_only (bnn_st_read_meta) an image of the 8-byte length and, when that length fits the
 * file, the header; the length is checked against the file, the header as always, the metadata
 * kept and the tensor entries skipped. */
static int parse_image(bnn_st *st, const char *file, size_t total, bool meta_only) {
    const unsigned char *b = st->buf;
    const size_t len = total;
    if (len < 8)
        return bnn__error(
            BNN_EFORMAT, "%s: file is %zu bytes, shorter than the 8-byte header length", file, len);
    /* The length is assembled byte by byte so the reader does not depend on host order. */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | b[i];
    /* What a PyTorch user may hand over instead: torch.save's zip archive (PyTorch >= 1.6) or its
     * older pickle stream (protocol 2 and up start with 0x80, then the protocol). Both read as
     * header lengths far beyond any real one; a smaller length with those first bytes (0x380 is
     * 80 03 ...) is a safetensors header, of a truncated file if it runs past the end. */
    const bool zip = !memcmp(b, "PK\x03\x04", 4), pickle = b[0] == 0x80 && b[1] >= 2 && b[1] <= 5;
    if ((zip || pickle) && hlen > ST_MAX_HEADER)
        return bnn__error(BNN_EFORMAT, "%s: not a safetensors file but %s, as torch.save writes: "
                          "save the state dict with safetensors.torch.save_file instead", file,
                          zip ? "a zip archive" : "a pickle stream");
    if (hlen > ST_MAX_HEADER)
        return bnn__error(BNN_EFORMAT,
                          "%s: header length %llu is absurd (more than 100 MiB); not a "
                          "safetensors file?",
                          file, (unsigned long long)hlen);
    if (hlen > len - 8)
        return bnn__error(BNN_EFORMAT,
                          "%s: header length %llu exceeds the %zu bytes that follow it "
                          "(truncated file?)",
                          file, (unsigned long long)hlen, len - 8);
    const char *hdr = (const char *)b + 8;
    const unsigned char *data = b + 8 + hlen;
    uint64_t data_len = (uint64_t)(len - 8 - hlen);

    if (!utf8_valid(hdr, (size_t)hlen))
        return bnn__error(BNN_EFORMAT, "%s: header is not valid UTF-8", file);
    const int64_t bad = json_bad_string_byte(hdr, (size_t)hlen);
    if (bad >= 0)
        return bnn__error(BNN_EFORMAT, "%s: a string in the header holds a control character or "
                          "\\u0000 (at byte %lld)", file, (long long)(8 + bad));
    /* A byte-order mark is not JSON whitespace (RFC 8259 §8.1 lets a parser refuse it, and the
     * reference reader does). */
    if (hlen >= 3 && !memcmp(hdr, "\xef\xbb\xbf", 3))
        return bnn__error(BNN_EFORMAT, "%s: the header starts with a UTF-8 byte-order mark, which "
                          "safetensors does not allow", file);

    /* cJSON gets a NUL-terminated copy so that no parser path can read past the header, and an
     * embedded NUL simply ends the text (and then fails the trailing-bytes check below). */
    char *text = malloc((size_t)hlen + 1);
    if (!text) return bnn__error(BNN_ENOMEM, "%s: cannot allocate the header", file);
    memcpy(text, hdr, (size_t)hlen);
    text[hlen] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        /* Text cJSON accepts that it could not parse: it ran out of memory. */
        const bool oom = bnn__json_syntax_ok(text, (size_t)hlen);
        free(text);
        if (oom) return bnn__error(BNN_ENOMEM, "%s: out of memory while reading the header", file);
        return bnn__error(BNN_EFORMAT, "%s: header is not valid JSON (error near byte %zu)", file,
                          8 + at);
    }
    const int64_t frac = st_nonwhole_number(text, (size_t)(end - text));
    if (frac >= 0) {
        size_t nl = 1;
        while (nl < 24 && (size_t)frac + nl < hlen && text[frac + nl] &&
               strchr("0123456789.eE+-", text[frac + nl]))
            nl++;
        const int rc = bnn__error(BNN_EFORMAT, "%s: the header's number '%.*s' (at byte %lld) is "
                                  "not a whole number written plainly: shapes and data offsets "
                                  "are unsigned integers", file, (int)nl, text + frac,
                                  (long long)(8 + frac));
        cJSON_Delete(root);
        free(text);
        return rc;
    }
    /* Only the space padding (or other JSON whitespace) may follow the object. */
    for (size_t i = (size_t)(end - text); i < hlen; i++) {
        char c = text[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            cJSON_Delete(root);
            free(text);
            return bnn__error(BNN_EFORMAT,
                              "%s: unexpected bytes after the header's JSON object (at byte %zu)",
                              file, 8 + i);
        }
    }
    free(text);

    int rc = 0;
    span *spans = NULL;
    if (!cJSON_IsObject(root)) {
        rc = bnn__error(BNN_EFORMAT, "%s: header is not a JSON object", file);
        goto done;
    }

    int64_t cap = cJSON_GetArraySize(root);
    st->t = bnn__alloc_array(cap, sizeof *st->t);
    st->names = calloc((size_t)cap + 1, sizeof *st->names);
    st->sorted = calloc((size_t)cap + 1, sizeof *st->sorted);
    spans = calloc((size_t)cap + 1, sizeof *spans);
    if (!st->t || !st->names || !st->sorted || !spans) {
        rc =
            bnn__error(BNN_ENOMEM, "%s: cannot allocate %lld header entries", file, (long long)cap);
        goto done;
    }

    const cJSON *meta = NULL;
    for (const cJSON *item = root->child; item; item = item->next) {
        const char *key = item->string ? item->string : "";
        if (!strcmp(key, "__metadata__")) {
            if (meta) {
                rc = bnn__error(BNN_EFORMAT, "%s: \"__metadata__\" appears twice", file);
                goto done;
            }
            meta = item;
            if ((rc = parse_meta(st, item, file))) goto done;
            continue;
        }
        if (meta_only) continue;
        if (!key[0]) { /* which bnn_st_writer_add refuses too: a file names its tensors */
            rc = bnn__error(BNN_EFORMAT, "%s: a tensor with an empty name", file);
            goto done;
        }
        int64_t i = st->n;
        st->names[i] = dup_string(key);
        if (!st->names[i]) {
            rc = bnn__error(BNN_ENOMEM, "%s: out of memory copying the tensor names", file);
            goto done;
        }
        st->n++;
        st->t[i].name = st->names[i];
        uint64_t offs[2] = {0, 0};
        if ((rc = parse_entry(item, &st->t[i], data, data_len, offs, file))) goto done;
        spans[i] = (span){offs[0], offs[1], i};
        st->sorted[i] = &st->t[i];
    }

    /* Duplicate names: the same sort that serves bnn_st_get finds them. */
    qsort(st->sorted, (size_t)st->n, sizeof *st->sorted, cmp_tensor_name);
    for (int64_t i = 1; i < st->n; i++) {
        if (!strcmp(st->sorted[i - 1]->name, st->sorted[i]->name)) {
            rc = bnn__error(BNN_EFORMAT, "%s: tensor name '" NAMEFMT "' appears twice", file,
                            st->sorted[i]->name);
            goto done;
        }
    }

    if (meta_only) goto done;

    /* Overlaps and gaps: after sorting by start, each non-empty range must begin exactly where
     * the earlier ones end, the first at 0 — the data area is packed, as the reference reader
     * requires (unused bytes mean a damaged offset or a file not written as safetensors are).
     * Empty tensors occupy no bytes. */
    qsort(spans, (size_t)st->n, sizeof *spans, cmp_span);
    int64_t last = -1; /* the earlier non-empty span reaching furthest */
    for (int64_t i = 0; i < st->n; i++) {
        const uint64_t reached = last >= 0 ? spans[last].end : 0;
        /* An empty tensor sits where the tensors before it end, as the reference reader has it
         * (one inside another's bytes is a damaged offset, harmless as it is). */
        if (spans[i].begin == spans[i].end && spans[i].begin != reached) {
            rc = bnn__error(BNN_EFORMAT, "%s: empty tensor '" NAMEFMT "' is at data byte %llu, "
                            "where the tensors before it end at %llu", file,
                            st->t[spans[i].idx].name, (unsigned long long)spans[i].begin,
                            (unsigned long long)reached);
            goto done;
        }
        if (spans[i].begin == spans[i].end) continue;
        if (spans[i].begin > reached) {
            rc = bnn__error(BNN_EFORMAT,
                            "%s: data bytes [%llu, %llu) belong to no tensor (the next, '" NAMEFMT
                            "', starts at %llu); safetensors packs its tensors with no gaps",
                            file, (unsigned long long)reached, (unsigned long long)spans[i].begin,
                            st->t[spans[i].idx].name, (unsigned long long)spans[i].begin);
            goto done;
        }
        if (last >= 0 && spans[i].begin < spans[last].end) {
            rc = bnn__error(
                BNN_EFORMAT,
                "%s: tensors '" NAMEFMT "' [%llu, %llu) and '" NAMEFMT "' [%llu, %llu) overlap",
                file, st->t[spans[last].idx].name, (unsigned long long)spans[last].begin,
                (unsigned long long)spans[last].end, st->t[spans[i].idx].name,
                (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end);
            goto done;
        }
        if (last < 0 || spans[i].end > spans[last].end) last = i;
    }
    /* The tensors end where the file does: bytes past them mean a damaged header length (which
     * would shift every tensor) or a file with something appended. */
    const uint64_t used = last >= 0 ? spans[last].end : 0;
    if (used != data_len) {
        rc = bnn__error(BNN_EFORMAT, "%s: the tensors end at data byte %llu but the file has %llu "
                        "data bytes (damaged header length, or bytes appended?)", file,
                        (unsigned long long)used, (unsigned long long)data_len);
        goto done;
    }

done:
    free(spans);
    cJSON_Delete(root);
    return rc;
}

/* Takes ownership of buf (from malloc; the image is filled at once, so never zeroed first) and
 * parses it into a new bnn_st. */
static int parse_owned(bnn_st **out, unsigned char *buf, size_t len, const char *file,
                       size_t total, bool meta_only) {
    bnn_st *st = calloc(1, sizeof *st);
    if (!st) {
        free(buf);
        return bnn__error(BNN_ENOMEM, "%s: cannot allocate the file handle", file);
    }
    st->buf = buf;
    st->len = len;
    int rc = parse_image(st, file, total, meta_only);
    if (rc) {
        bnn_st_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

int bnn_st_parse(bnn_st **out, const void *buf, size_t len, const char *name) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_st_parse: out is NULL");
    *out = NULL;
    const char *file = name ? name : "<memory>";
    if (!buf && len) return bnn__error(BNN_EINVAL, "%s: buffer is NULL", file);
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) return bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes", file, len);
    if (len) memcpy(copy, buf, len);
    return parse_owned(out, copy, len, file, len, false);
}

/* Opens path for reading and gives its size. Opened without blocking (a FIFO would wait for a
 * writer forever in open), then read as usual. The size comes from fstat so a whole file is
 * read with one allocation; anything other than a regular file (a directory, a pipe) is
 * refused with a clear message. */
static int open_regular(const char *path, FILE **fp, size_t *len) {
    *fp = NULL;
    const int fd = open(path, O_RDONLY | O_NONBLOCK);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        const int e = errno;
        if (fd >= 0) close(fd);
        return bnn__error(BNN_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int e = errno;
        fclose(f);
        return bnn__error(BNN_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return bnn__error(BNN_EIO, "%s: not a regular file", path);
    }
    if (sb.st_size < 0 || (uintmax_t)sb.st_size >= (uintmax_t)SIZE_MAX) {
        fclose(f);
        return bnn__error(BNN_ENOMEM, "%s: file too large to read into memory", path);
    }
    *fp = f, *len = (size_t)sb.st_size;
    return 0;
}

/* Reads n bytes of f into buf; BNN_EIO naming path when the read falls short. */
static int read_exact(FILE *f, unsigned char *buf, size_t n, const char *path) {
    const size_t got = n ? fread(buf, 1, n, f) : 0;
    if (got == n) return 0;
    if (ferror(f)) return bnn__error(BNN_EIO, "%s: read error: %s", path, strerror(errno));
    return bnn__error(BNN_EIO, "%s: read %zu of %zu bytes (file changed while reading?)", path,
                      got, n);
}

/* bnn_st_read (the whole file) and bnn_st_read_meta (the length and the header only: parse_image
 * words a bad length from the file's size, as for a whole file). */
static int read_st(bnn_st **out, const char *path, bool meta_only, const char *fn) {
    if (!out) return bnn__error(BNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (!path) return bnn__error(BNN_EINVAL, "%s: path is NULL", fn);
    FILE *f;
    size_t total = 0;
    int rc = open_regular(path, &f, &total);
    if (rc) return rc;
    unsigned char head[8];
    size_t n = total, first = 0;
    if (meta_only) {
        first = total < 8 ? total : 8;
        if ((rc = read_exact(f, head, first, path))) {
            fclose(f);
            return rc;
        }
        uint64_t hlen = 0;
        for (int i = 7; first == 8 && i >= 0; i--) hlen = (hlen << 8) | head[i];
        const bool fits = first == 8 && hlen <= ST_MAX_HEADER && hlen <= total - 8;
        n = first + (fits ? (size_t)hlen : 0);
    }
    /* The whole image is held while it is read: a file beyond the memory limit is refused with
     * its size instead of being read until the machine runs out. (Not a header alone; and a
     * BNN_MEMORY_LIMIT that is no size is left to the checks that report it.) */
    double limit = INFINITY;
    char sl[80];
    if (!meta_only && bnn__byte_limit(fn, 0.0, &limit, sl, sizeof sl)) {
        bnn__error_clear();
        limit = INFINITY;
    }
    if ((double)n > limit) {
        char sn[32];
        bnn__format_bytes(sn, sizeof sn, (double)n);
        fclose(f);
        return bnn__error(BNN_ENOMEM, "%s: reading it needs %s, more than %s of memory", path, sn,
                          sl);
    }
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return bnn__error(BNN_ENOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    memcpy(buf, head, first);
    if ((rc = read_exact(f, buf + first, n - first, path))) {
        fclose(f);
        free(buf);
        return rc;
    }
    if (fclose(f) != 0) {
        const int e = errno;
        free(buf);
        return bnn__error(BNN_EIO, "%s: cannot close: %s", path, strerror(e));
    }
    return parse_owned(out, buf, n, path, total, meta_only);
}

int bnn_st_read_meta(bnn_st **out, const char *path) {
    return read_st(out, path, true, "bnn_st_read_meta");
}

int bnn_st_read(bnn_st **out, const char *path) { return read_st(out, path, false, "bnn_st_read"); }

int64_t bnn_st_count(const bnn_st *st) { return st ? st->n : 0; }

int bnn_st_at(const bnn_st *st, int64_t i, bnn_st_tensor *t) {
    if (!st || !t) return bnn__error(BNN_EINVAL, "bnn_st_at: NULL argument");
    if (i < 0 || i >= st->n)
        return bnn__error(BNN_EINVAL, "bnn_st_at: index %lld out of range [0, %lld)", (long long)i,
                          (long long)st->n);
    *t = st->t[i];
    return 0;
}

/* The tensor called name, or NULL (binary search of the sorted names). */
static const bnn_st_tensor *find(const bnn_st *st, const char *name) {
    int64_t lo = 0, hi = st->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->sorted[mid]->name, name);
        if (c == 0) return st->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool bnn__st_has(const bnn_st *st, const char *name) { return st && name && find(st, name); }

int bnn_st_get(const bnn_st *st, const char *name, bnn_st_tensor *t) {
    if (!st || !name || !t) return bnn__error(BNN_EINVAL, "bnn_st_get: NULL argument");
    const bnn_st_tensor *f = find(st, name);
    if (!f) return bnn__error(BNN_ENOTFOUND, "no tensor named '" NAMEFMT "'", name);
    *t = *f;
    return 0;
}

const char *bnn_st_meta(const bnn_st *st, const char *key) {
    if (!st || !key) return NULL;
    for (int64_t i = 0; i < st->nmeta; i++)
        if (!strcmp(st->keys[i], key)) return st->values[i];
    return NULL;
}

int64_t bnn_st_meta_count(const bnn_st *st) { return st ? st->nmeta : 0; }

int bnn_st_meta_at(const bnn_st *st, int64_t i, const char **key, const char **value) {
    if (!st) return bnn__error(BNN_EINVAL, "bnn_st_meta_at: NULL handle");
    if (i < 0 || i >= st->nmeta)
        return bnn__error(BNN_EINVAL, "bnn_st_meta_at: index %lld out of range [0, %lld)",
                          (long long)i, (long long)st->nmeta);
    if (key) *key = st->keys[i];
    if (value) *value = st->values[i];
    return 0;
}

/* ---------------------------------------------------------------- conversion */

/* Checks a tensor description before converting it; the struct is public, so it may have been
 * filled in by hand rather than by bnn_st_at / bnn_st_get. */
static int check_convert(const bnn_st_tensor *t, const void *dst, const char *fn) {
    if (!t || !dst) return bnn__error(BNN_EINVAL, "%s: NULL argument", fn);
    if (!dtype_name(t->dtype))
        return bnn__error(BNN_EINVAL, "%s: invalid dtype %d", fn, (int)t->dtype);
    if (t->numel < 0) return bnn__error(BNN_EINVAL, "%s: negative numel", fn);
    if (t->numel > 0 && !t->data) return bnn__error(BNN_EINVAL, "%s: data is NULL", fn);
    return 0;
}

/* The data may sit at any byte offset in the file buffer, so every element is fetched with
 * memcpy rather than through a typed pointer (which would be undefined when misaligned). */
#define CONVERT_LOOP(T, SRC_T)                                                                     \
    for (int64_t i = 0; i < n; i++) {                                                              \
        SRC_T v;                                                                                   \
        memcpy(&v, p + (size_t)i * sizeof v, sizeof v);                                            \
        dst[i] = (T)v;                                                                             \
    }
/* The same for the 16-bit floats, through their exact float values. */
#define CONVERT_LOOP16(T, FN)                                                                      \
    for (int64_t i = 0; i < n; i++) {                                                              \
        uint16_t v;                                                                                \
        memcpy(&v, p + (size_t)i * sizeof v, sizeof v);                                            \
        dst[i] = (T)FN(v);                                                                         \
    }

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE 754 binary16 (1 sign, 5 exponent, 10 fraction bits) to float, exactly: normal numbers
 * rebias the exponent (15 -> 127), subnormals (exponent 0) are fraction · 2^-24, and the top
 * exponent is ±Inf or NaN (its payload kept in the float's top fraction bits). */
static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, f = h & 0x3ffu;
    if (e == 0) {
        const float v = (float)f * (1.0f / 16777216.0f); /* 2^-24, exact for f < 2^11 */
        return sign ? -v : v;
    }
    if (e == 31) return bits_to_float(sign | 0x7f800000u | (f << 13));
    return bits_to_float(sign | ((e + 112) << 23) | (f << 13));
}

/* bfloat16 is a float's top 16 bits. */
static float bf16_to_float(uint16_t h) { return bits_to_float((uint32_t)h << 16); }

/* The OCP 8-bit floats (OCP "8-bit Floating Point Specification", 2023): E5M2 is binary16's top
 * byte; E4M3 ("fn") has exponent bias 7, subnormals m · 2^-9, no infinities, and NaN at
 * S.1111.111 (its largest number is 448). */
static float bool_to_float(uint8_t b) { return b ? 1.0f : 0.0f; } /* any non-zero byte is true */
static float e5m2_to_float(uint8_t b) { return half_to_float((uint16_t)(b << 8)); }
static float e4m3_to_float(uint8_t b) {
    const int e = (b >> 3) & 0xf, m = b & 7;
    float v = e == 15 && m == 7 ? NAN
              : e == 0          ? (float)m * (1.0f / 512.0f)
                                : ldexpf(1.0f + (float)m / 8.0f, e - 7);
    return b & 0x80 ? -v : v;
}
#define CONVERT_LOOP8(T, FN)                                                                       \
    for (int64_t i = 0; i < n; i++) dst[i] = (T)FN(p[i]);

int bnn_st_to_f64(const bnn_st_tensor *t, double *dst) {
    int rc = check_convert(t, dst, "bnn_st_to_f64");
    if (rc) return rc;
    const unsigned char *p = t->data;
    int64_t n = t->numel;
    switch (t->dtype) {
    case BNN_DT_F64:
        if (n) memcpy(dst, p, (size_t)n * sizeof *dst);
        break;
    case BNN_DT_F32: CONVERT_LOOP(double, float) break;
    case BNN_DT_I64: CONVERT_LOOP(double, int64_t) break;
    case BNN_DT_I32: CONVERT_LOOP(double, int32_t) break;
    case BNN_DT_U8: CONVERT_LOOP(double, uint8_t) break;
    case BNN_DT_F16: CONVERT_LOOP16(double, half_to_float) break;
    case BNN_DT_BF16: CONVERT_LOOP16(double, bf16_to_float) break;
    case BNN_DT_BOOL: CONVERT_LOOP8(double, bool_to_float) break;
    case BNN_DT_I8: CONVERT_LOOP(double, int8_t) break;
    case BNN_DT_I16: CONVERT_LOOP(double, int16_t) break;
    case BNN_DT_U16: CONVERT_LOOP(double, uint16_t) break;
    case BNN_DT_U32: CONVERT_LOOP(double, uint32_t) break;
    case BNN_DT_U64: CONVERT_LOOP(double, uint64_t) break;
    case BNN_DT_F8_E5M2: CONVERT_LOOP8(double, e5m2_to_float) break;
    case BNN_DT_F8_E4M3: CONVERT_LOOP8(double, e4m3_to_float) break;
    }
    return 0;
}

int bnn_st_to_f32(const bnn_st_tensor *t, float *dst) {
    int rc = check_convert(t, dst, "bnn_st_to_f32");
    if (rc) return rc;
    const unsigned char *p = t->data;
    int64_t n = t->numel;
    switch (t->dtype) {
    case BNN_DT_F32:
        if (n) memcpy(dst, p, (size_t)n * sizeof *dst);
        break;
    /* Doubles outside float's range become ±Inf (IEEE 754 rounding); callers that care, such
     * as model loading, check finiteness afterwards. */
    case BNN_DT_F64: CONVERT_LOOP(float, double) break;
    case BNN_DT_I64: CONVERT_LOOP(float, int64_t) break;
    case BNN_DT_I32: CONVERT_LOOP(float, int32_t) break;
    case BNN_DT_U8: CONVERT_LOOP(float, uint8_t) break;
    case BNN_DT_F16: CONVERT_LOOP16(float, half_to_float) break;
    case BNN_DT_BF16: CONVERT_LOOP16(float, bf16_to_float) break;
    case BNN_DT_BOOL: CONVERT_LOOP8(float, bool_to_float) break;
    case BNN_DT_I8: CONVERT_LOOP(float, int8_t) break;
    case BNN_DT_I16: CONVERT_LOOP(float, int16_t) break;
    case BNN_DT_U16: CONVERT_LOOP(float, uint16_t) break;
    case BNN_DT_U32: CONVERT_LOOP(float, uint32_t) break;
    case BNN_DT_U64: CONVERT_LOOP(float, uint64_t) break;
    case BNN_DT_F8_E5M2: CONVERT_LOOP8(float, e5m2_to_float) break;
    case BNN_DT_F8_E4M3: CONVERT_LOOP8(float, e4m3_to_float) break;
    }
    return 0;
}

/* ---------------------------------------------------------------- writer */

typedef struct wtensor {
    char *name;
    bnn_dtype dt;
    int ndim;
    int64_t shape[ST_MAX_NDIM];
    size_t nbytes;
    void *data; /* an owned copy, or the caller's (borrowed: bnn__st_writer_add_ref) */
    bool borrowed;
} wtensor;

struct bnn_st_writer {
    wtensor *t;
    int64_t n, cap;
    char **keys, **values;
    int64_t nmeta, capmeta;
};

int bnn_st_writer_new(bnn_st_writer **out) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_st_writer_new: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return bnn__error(BNN_ENOMEM, "cannot allocate a safetensors writer");
    return 0;
}

void bnn_st_writer_free(bnn_st_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n; i++) {
        free(w->t[i].name);
        if (!w->t[i].borrowed) bnn__free(w->t[i].data);
    }
    for (int64_t i = 0; i < w->nmeta; i++) {
        free(w->keys[i]);
        free(w->values[i]);
    }
    free(w->t);
    free(w->keys);
    free(w->values);
    free(w);
}

/* Grows *arr (of elements of size `size`) to hold at least need elements, doubling. */
static int grow(void **arr, int64_t *cap, int64_t need, size_t size) {
    if (need <= *cap) return 1;
    int64_t nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    size_t bytes = bnn__bytes(nc, size);
    if (!bytes) return 0;
    void *p = realloc(*arr, bytes);
    if (!p) return 0;
    *arr = p;
    *cap = nc;
    return 1;
}

static int writer_add(bnn_st_writer *w, const char *name, bnn_dtype dt, int ndim,
                      const int64_t *shape, const void *data, bool borrow) {
    if (!w || !name) return bnn__error(BNN_EINVAL, "bnn_st_writer_add: NULL argument");
    const char *dn = dtype_name(dt);
    if (!dn) return bnn__error(BNN_EINVAL, "tensor '" NAMEFMT "': invalid dtype %d", name, (int)dt);
    if (!name[0] || !strcmp(name, "__metadata__") || !utf8_valid(name, strlen(name)))
        return bnn__error(BNN_EINVAL,
                          "tensor name '" NAMEFMT "' is empty, reserved or not valid UTF-8", name);
    if (ndim < 0)
        return bnn__error(BNN_EINVAL, "tensor '" NAMEFMT "': negative ndim %d", name, ndim);
    if (ndim > ST_MAX_NDIM)
        return bnn__error(BNN_EUNSUPPORTED,
                          "tensor '" NAMEFMT "': %d dimensions, at most %d are supported", name,
                          ndim, ST_MAX_NDIM);
    if (ndim > 0 && !shape)
        return bnn__error(BNN_EINVAL, "tensor '" NAMEFMT "': shape is NULL", name);
    int64_t numel = 1;
    for (int k = 0; k < ndim; k++) {
        /* Dimensions above 2^53 could not be read back exactly by JSON readers that use
         * doubles (ours included), so they are refused here as well. */
        if (shape[k] < 0 || shape[k] > ((int64_t)1 << 53))
            return bnn__error(BNN_EINVAL, "tensor '" NAMEFMT "': shape[%d] = %lld is invalid", name,
                              k, (long long)shape[k]);
        if (shape[k] != 0 && numel > INT64_MAX / shape[k])
            return bnn__error(BNN_EINVAL,
                              "tensor '" NAMEFMT "': the product of the shape "
                              "overflows",
                              name);
        numel *= shape[k];
    }
    size_t esize = bnn_dtype_size(dt);
    size_t nbytes = bnn__bytes(numel, esize);
    if (numel > 0 && !nbytes)
        return bnn__error(BNN_EINVAL, "tensor '" NAMEFMT "': size overflows", name);
    if (nbytes && !data) return bnn__error(BNN_EINVAL, "tensor '" NAMEFMT "': data is NULL", name);
    /* A linear scan keeps the writer simple; files hold tens to hundreds of tensors. */
    for (int64_t i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return bnn__error(BNN_EINVAL, "tensor '" NAMEFMT "' was already added", name);

    if (!grow((void **)&w->t, &w->cap, w->n + 1, sizeof *w->t))
        return bnn__error(BNN_ENOMEM, "out of memory growing the writer's tensor list");
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = dup_string(name);
    static const char nothing = 0; /* what an empty borrowed tensor points at */
    t->borrowed = borrow;
    t->data = !borrow ? bnn__alloc(nbytes) : data ? (void *)data : (void *)&nothing;
    if (!t->name || !t->data) {
        free(t->name);
        if (!borrow) bnn__free(t->data);
        return borrow ? bnn__error(BNN_ENOMEM, "tensor '" NAMEFMT "': out of memory", name)
                      : bnn__error(BNN_ENOMEM, "tensor '" NAMEFMT "': out of memory copying %zu "
                                   "bytes", name, nbytes);
    }
    if (nbytes && !borrow) memcpy(t->data, data, nbytes);
    t->dt = dt;
    t->ndim = ndim;
    for (int k = 0; k < ndim; k++)
        t->shape[k] = shape[k];
    t->nbytes = nbytes;
    w->n++;
    return 0;
}

int bnn_st_writer_add(bnn_st_writer *w, const char *name, bnn_dtype dt, int ndim,
                      const int64_t *shape, const void *data) {
    return writer_add(w, name, dt, ndim, shape, data, false);
}

int bnn__st_writer_add_ref(bnn_st_writer *w, const char *name, bnn_dtype dt, int ndim,
                           const int64_t *shape, const void *data) {
    return writer_add(w, name, dt, ndim, shape, data, true);
}

int bnn_st_writer_meta(bnn_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return bnn__error(BNN_EINVAL, "bnn_st_writer_meta: NULL argument");
    if (!utf8_valid(key, strlen(key)) || !utf8_valid(value, strlen(value)))
        return bnn__error(BNN_EINVAL, "metadata '" NAMEFMT "': key or value is not valid UTF-8",
                          key);
    /* A repeated key would make the file ambiguous (and our reader refuses it), so it is an
     * error rather than a silent overwrite. */
    for (int64_t i = 0; i < w->nmeta; i++)
        if (!strcmp(w->keys[i], key))
            return bnn__error(BNN_EINVAL, "metadata key '" NAMEFMT "' was already set", key);
    if (!grow((void **)&w->keys, &w->capmeta, w->nmeta + 1, sizeof *w->keys))
        return bnn__error(BNN_ENOMEM, "out of memory growing the writer's metadata");
    /* keys and values share capmeta, so values is grown to the same capacity. */
    char **nv = realloc(w->values, (size_t)w->capmeta * sizeof *nv);
    if (!nv) return bnn__error(BNN_ENOMEM, "out of memory growing the writer's metadata");
    w->values = nv;
    char *k = dup_string(key), *v = dup_string(value);
    if (!k || !v) {
        free(k);
        free(v);
        return bnn__error(BNN_ENOMEM, "out of memory copying metadata '" NAMEFMT "'", key);
    }
    w->keys[w->nmeta] = k;
    w->values[w->nmeta] = v;
    w->nmeta++;
    return 0;
}

/* A growable text buffer for the header; `oom` latches the first allocation failure so the
 * builder code needs no check after every append. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *s, const char *src, size_t n) {
    if (s->oom) return;
    if (n > SIZE_MAX - s->len - 16) {
        s->oom = 1;
        return;
    }
    if (s->len + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 256;
        while (nc < s->len + n + 1)
            nc = nc > SIZE_MAX / 2 ? s->len + n + 1 : nc * 2;
        char *np = realloc(s->p, nc);
        if (!np) {
            s->oom = 1;
            return;
        }
        s->p = np;
        s->cap = nc;
    }
    memcpy(s->p + s->len, src, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_str(sbuf *s, const char *str) { sb_put(s, str, strlen(str)); }

static void sb_int(sbuf *s, uint64_t v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(s, tmp, (size_t)n);
}

/* Appends s as a JSON string literal (RFC 8259 section 7): quote, backslash and control
 * characters are escaped, all other bytes (already checked to be UTF-8) pass through. */
static void sb_json_string(sbuf *s, const char *str) {
    sb_put(s, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_put(s, "\\\"", 2); break;
        case '\\': sb_put(s, "\\\\", 2); break;
        case '\n': sb_put(s, "\\n", 2); break;
        case '\r': sb_put(s, "\\r", 2); break;
        case '\t': sb_put(s, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
                sb_put(s, esc, 6);
            } else {
                sb_put(s, (const char *)p, 1);
            }
        }
    }
    sb_put(s, "\"", 1);
}

/* The order the tensors are written in: by element size, largest first, and in insertion order
 * among equals, as the reference writer orders them by alignment: with the data area 8-byte
 * aligned, every tensor then starts at a multiple of its element size, which readers that map
 * the file and view its bytes as typed arrays need (an F64 tensor after an odd number of F32
 * values was 4 bytes off). */
static void write_order(const bnn_st_writer *w, int64_t *order) {
    int64_t n = 0;
    for (size_t size = 8; size >= 1; size /= 2)
        for (int64_t i = 0; i < w->n; i++)
            if (bnn_dtype_size(w->t[i].dt) == size) order[n++] = i;
}

/* Builds the header: __metadata__ first (as the reference writer does), then the tensors in
 * `order`, packed with no gaps, then space padding so that 8 + N is a multiple of 8 and the data
 * area starts 8-byte aligned. */
static int build_header(const bnn_st_writer *w, const int64_t *order, sbuf *s, const char *path) {
    sb_put(s, "{", 1);
    if (w->nmeta > 0) {
        sb_str(s, "\"__metadata__\":{");
        for (int64_t i = 0; i < w->nmeta; i++) {
            if (i) sb_put(s, ",", 1);
            sb_json_string(s, w->keys[i]);
            sb_put(s, ":", 1);
            sb_json_string(s, w->values[i]);
        }
        sb_put(s, "}", 1);
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n; i++) {
        const wtensor *t = &w->t[order[i]];
        if (i || w->nmeta > 0) sb_put(s, ",", 1);
        sb_json_string(s, t->name);
        sb_str(s, ":{\"dtype\":\"");
        sb_str(s, dtype_names[t->dt]);
        sb_str(s, "\",\"shape\":[");
        for (int k = 0; k < t->ndim; k++) {
            if (k) sb_put(s, ",", 1);
            sb_int(s, (uint64_t)t->shape[k]);
        }
        sb_str(s, "],\"data_offsets\":[");
        if (t->nbytes > UINT64_MAX - off)
            return bnn__error(BNN_EINVAL, "%s: total tensor size overflows", path);
        sb_int(s, off);
        sb_put(s, ",", 1);
        off += t->nbytes;
        sb_int(s, off);
        sb_str(s, "]}");
    }
    sb_put(s, "}", 1);
    while (!s->oom && s->len % 8 != 0)
        sb_put(s, " ", 1);
    if (s->oom) return bnn__error(BNN_ENOMEM, "%s: out of memory building the header", path);
    return 0;
}

int bnn_st_writer_save(const bnn_st_writer *w, const char *path) {
    if (!w || !path) return bnn__error(BNN_EINVAL, "bnn_st_writer_save: NULL argument");
    int64_t *order = malloc((size_t)(w->n + 1) * sizeof *order);
    if (!order) return bnn__error(BNN_ENOMEM, "%s: out of memory", path);
    write_order(w, order);
    sbuf hdr = {0};
    int rc = build_header(w, order, &hdr, path);
    if (rc) {
        free(hdr.p);
        free(order);
        return rc;
    }

    /* Byte by byte, so the length is little-endian whatever the host order. */
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    const void **parts = malloc((size_t)(w->n + 2) * sizeof *parts);
    size_t *lens = malloc((size_t)(w->n + 2) * sizeof *lens);
    if (!parts || !lens) {
        rc = bnn__error(BNN_ENOMEM, "%s: out of memory", path);
    } else {
        parts[0] = lenb, lens[0] = 8;
        parts[1] = hdr.p, lens[1] = hdr.len;
        for (int64_t i = 0; i < w->n; i++)
            parts[2 + i] = w->t[order[i]].data, lens[2 + i] = w->t[order[i]].nbytes;
        rc = bnn__write_atomic(path, parts, lens, w->n + 2);
    }
    free(order);
    free(parts);
    free(lens);
    free(hdr.p);
    return rc;
}
