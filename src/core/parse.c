/* Whole numbers in text, read one way everywhere (options, file metadata, the lists inside
 * metadata): an optional '-' and decimal digits. strtoll alone would also take leading spaces and
 * a '+', so " 5" would be a holdout size to one reader and malformed to another. */
#include "core/internal.h"

#include <errno.h>
#include <stdint.h>
#include <ctype.h>
#include <stdlib.h>

int bnn__parse_int_prefix(const char *s, const char **end, int64_t *out) {
    const char *p = s + (*s == '-');
    if (*p < '0' || *p > '9') return BNN_EINVAL;
    char *e;
    errno = 0;
    const long long x = strtoll(s, &e, 10);
    if (errno == ERANGE) return BNN_EINVAL;
    *end = e;
    *out = (int64_t)x;
    return 0;
}

int bnn_parse_int(const char *s, int64_t *out) {
    const char *end;
    int64_t x;
    if (!s || !out) return bnn__error(BNN_EINVAL, "bnn_parse_int: the string and out are required");
    if (bnn__parse_int_prefix(s, &end, &x) || *end)
        return bnn__error(BNN_EINVAL, "'%.40s' is not a whole number", s);
    *out = x;
    return 0;
}

double bnn_strtod(const char *s, char **end) {
    const char *p = s;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '+' || *p == '-') p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        if (end) *end = (char *)(uintptr_t)s; /* read nothing, as strtod does for no number */
        return 0.0;
    }
    return strtod(s, end);
}
