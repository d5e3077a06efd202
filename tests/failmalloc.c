/* LD_PRELOAD shim for the allocation-failure tests (cli_robust): with BNN_FAIL_AT=N the N-th call
 * of malloc, calloc, realloc, aligned_alloc or posix_memalign (counted together, from the start of the process)
 * fails with ENOMEM; every other call goes to glibc. With BNN_FAIL_COUNT=FILE the number of calls
 * is written to FILE when the process exits normally, so a sweep knows how many there are. Not
 * built into bnn; only the sanitizer-free test run uses it (AddressSanitizer has its own
 * allocator). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_long calls;
static long fail_at = -2; /* -2: not read yet; -1: never */

static int fail_now(void) {
    if (fail_at == -2) {
        const char *s = getenv("BNN_FAIL_AT");
        fail_at = s ? atol(s) : -1;
    }
    const long n = atomic_fetch_add(&calls, 1) + 1;
    if (fail_at > 0 && n == fail_at) {
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void *malloc(size_t n) { return fail_now() ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return fail_now() ? NULL : __libc_calloc(a, b); }
/* bnn__alloc's (the weights, arenas, datasets). */
void *aligned_alloc(size_t align, size_t n) { return fail_now() ? NULL : __libc_memalign(align, n); }
void *realloc(void *p, size_t n) { return fail_now() ? NULL : __libc_realloc(p, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    if (fail_now()) return ENOMEM;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

/* Runs at a normal exit (exit or a return from main), after bnn's own atexit handlers. */
__attribute__((destructor)) static void report_count(void) {
    const char *path = getenv("BNN_FAIL_COUNT");
    if (!path) return;
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "%ld\n", (long)atomic_load(&calls));
    fclose(f);
}
