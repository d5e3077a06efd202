/* Numbers in text. Whole numbers are read one way everywhere (options, file metadata, the lists
 * inside metadata): an optional '-' and decimal digits. strtoll alone would also take leading
 * spaces and a '+', so " 5" would be a holdout size to one reader and malformed to another.
 * Real numbers: bnn_strtod (strtod without C's hexadecimal forms) and, for CSV fields, a fast
 * exact path for the common short decimals (bnn__parse_decimal). Like strtod, these expect the
 * C locale's decimal point, which a program has unless it calls setlocale (bnn.h). */
#include "core/internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <stdint.h>
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

/* Clinger's fast path ("How to read floating point numbers accurately", PLDI 1990): a decimal
 * m · 10^e with m <= 2^53 and |e| <= 22 is one correctly rounded IEEE product or quotient of two
 * exact doubles, so the result has strtod's bits. Everything else (more than 19 significant
 * digits, larger exponents, inf, nan, hexadecimal, spaces) is left to strtod. A CSV of numbers
 * spends most of its loading time in strtod (about 1000 instructions a number); this takes a
 * quarter of that. Needs double arithmetic in double (FLT_EVAL_METHOD 0: SSE2, AArch64), not
 * x87's extended registers, which would round twice. */
bool bnn__parse_decimal(const char *s, size_t len, double *out) {
#if FLT_EVAL_METHOD == 0
    static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = s, *const e = s + len;
    const bool neg = p < e && *p == '-';
    if (p < e && (*p == '-' || *p == '+')) p++;
    uint64_t m = 0;
    int digits = 0, sig = 0, scale = 0; /* scale: digits after the point */
    for (; p < e && *p >= '0' && *p <= '9'; p++, digits++)
        if (sig || *p != '0') {
            if (++sig > 19) return false;
            m = 10 * m + (uint64_t)(*p - '0');
        }
    if (p < e && *p == '.') {
        for (p++; p < e && *p >= '0' && *p <= '9'; p++, digits++, scale++)
            if (sig || *p != '0') {
                if (++sig > 19) return false;
                m = 10 * m + (uint64_t)(*p - '0');
            }
    }
    if (digits == 0) return false;
    int ex = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        const bool eneg = p < e && *p == '-';
        if (p < e && (*p == '-' || *p == '+')) p++;
        if (p == e || *p < '0' || *p > '9') return false;
        for (; p < e && *p >= '0' && *p <= '9'; p++) {
            if (ex > 1000) return false;
            ex = 10 * ex + (*p - '0');
        }
        if (eneg) ex = -ex;
    }
    if (p != e || m > ((uint64_t)1 << 53)) return false;
    const int k = ex - scale;
    if (k < -22 || k > 22) return false;
    /* The sign first: then the one rounding is strtod's in every rounding mode (negating after
     * it would round -0.1 towards zero under FE_DOWNWARD, for one). */
    const double x = neg ? -(double)m : (double)m;
    *out = k < 0 ? x / p10[-k] : x * p10[k];
    return true;
#else
    (void)s, (void)len, (void)out;
    return false;
#endif
}

int bnn__name_parse(const char *const *names, int n, const char *name, const char *what,
                    int *out) {
    for (int i = 0; name && i < n; i++)
        if (!strcmp(name, names[i])) {
            *out = i;
            return 0;
        }
    char choices[256] = "";
    size_t at = 0;
    for (int i = 0; i < n && at < sizeof choices; i++)
        at += (size_t)snprintf(choices + at, sizeof choices - at, "%s%s",
                               i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
    if (!name) return bnn__error(BNN_EINVAL, "no %s given (NULL; choose %s)", what, choices);
    return bnn__error(BNN_EINVAL, "unknown %s '%.40s' (choose %s)", what, name, choices);
}
