/* Error codes, their messages, and the per-thread detail of the last error. */
#include "core/internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *bnn_strerror(int code) {
    switch (code) {
    case BNN_OK: return "success";
    case BNN_ENOMEM: return "out of memory";
    case BNN_EIO: return "input/output error";
    case BNN_EFORMAT: return "malformed input";
    case BNN_EINVAL: return "invalid argument";
    case BNN_ESHAPE: return "shape mismatch";
    case BNN_ENOTFOUND: return "not found";
    case BNN_EDIVERGED: return "diverged (a value became NaN or infinite)";
    case BNN_EUNSUPPORTED: return "not supported";
    default: return "unknown error";
    }
}

const char *bnn_last_error(void) { return last_error; }

void bnn__error_clear(void) { last_error[0] = '\0'; }

/* s (len bytes, len >= size) cut to fit size with its middle left out, so that the end of a
 * message, where the reason is, survives a long path or spec in it; the cuts fall between UTF-8
 * characters. */
static void keep_ends(char *out, size_t size, const char *s, size_t len) {
    static const char gap[] = " ... ";
    size_t head = (size - sizeof gap) / 2, tail = size - sizeof gap - head;
    /* at most 3 bytes each way: a character has at most 3 continuation bytes (bytes that are
     * continuations only, from a damaged file, are cut anywhere) */
    for (int k = 0; k < 3 && head > 0 && ((unsigned char)s[head] & 0xc0) == 0x80; k++) head--;
    const char *t = s + len - tail;
    for (int k = 0; k < 3 && *t && ((unsigned char)*t & 0xc0) == 0x80; k++) t++;
    memcpy(out, s, head);
    memcpy(out + head, gap, sizeof gap - 1);
    memcpy(out + head + sizeof gap - 1, t, strlen(t) + 1);
}

int bnn__error(int code, const char *fmt, ...) {
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    const int n = vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    char *whole = n >= (int)sizeof last_error ? malloc((size_t)n + 1) : NULL;
    if (whole) { /* else the message stays cut at its end */
        vsnprintf(whole, (size_t)n + 1, fmt, again);
        keep_ends(last_error, sizeof last_error, whole, (size_t)n);
        free(whole);
    }
    va_end(again);
    /* One line, whatever a file put in the values quoted: control characters (a newline or an
     * escape sequence in a damaged metadata value) become '?'. UTF-8 text stays. */
    for (char *c = last_error; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return code;
}

_Noreturn void bnn__assert_fail(const char *cond, const char *file, int line) {
    /* An assertion is a bug in bnn, not bad input, so stopping loudly is right here. */
    fprintf(stderr, "bnn: internal error: assertion '%s' failed at %s:%d\n", cond, file, line);
    abort();
}
