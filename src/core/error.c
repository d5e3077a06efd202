/* Error codes, their messages, and the per-thread detail of the last error. */
#include "core/internal.h"

#include <stdarg.h>
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

int bnn__error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
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
