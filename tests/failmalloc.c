/* LD_PRELOAD shim for the allocation-failure tests (cli_robust): with BNN_FAIL_AT=N the N-th call
 * of malloc, calloc, realloc, aligned_alloc or posix_memalign (counted together, from the start of
 * the process) fails with ENOMEM; every other call goes to glibc. With BNN_FAIL_COUNT=FILE the
 * number of calls is written to FILE when the process exits normally, so a sweep knows how many
 * there are. Not built into bnn; only the sanitizer-free test run uses it (AddressSanitizer has its
 * own allocator).
 *
 * The N-th call is left to succeed when it comes straight from OpenBLAS, libgomp, libgfortran or
 * the dynamic loader (which allocates a new thread's TLS when libgomp starts its threads): they
 * do not survive their own failed allocations (OpenBLAS 0.3.21's small-matrix sgemm kernel for
 * AVX-512 machines mallocs on every call and writes through the result unchecked, a segmentation
 * fault inside cblas_sgemm; libgomp exits with "Thread creation failed"), and nothing bnn does
 * can change that. Failures of bnn's own allocations and of those made for it by the C library,
 * zlib or cJSON are the test. */
#define _GNU_SOURCE
#include <dlfcn.h>
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

/* Whether the allocation asked for at code address `caller` is one of the libraries above. */
static int from_skipped_library(void *caller) {
    Dl_info info;
    if (!caller || !dladdr(caller, &info) || !info.dli_fname) return 0;
    static const char *const skip[] = {"libopenblas", "libgomp", "libgfortran", "ld-linux"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strstr(info.dli_fname, skip[i])) return 1;
    return 0;
}

static int fail_now(void *caller) {
    if (fail_at == -2) {
        const char *s = getenv("BNN_FAIL_AT");
        fail_at = s ? atol(s) : -1;
    }
    const long n = atomic_fetch_add(&calls, 1) + 1;
    if (fail_at > 0 && n == fail_at && !from_skipped_library(caller)) {
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

void *malloc(size_t n) { return fail_now(__builtin_return_address(0)) ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) {
    return fail_now(__builtin_return_address(0)) ? NULL : __libc_calloc(a, b);
}
/* bnn__alloc's (the weights, arenas, datasets). */
void *aligned_alloc(size_t align, size_t n) {
    return fail_now(__builtin_return_address(0)) ? NULL : __libc_memalign(align, n);
}
void *realloc(void *p, size_t n) {
    return fail_now(__builtin_return_address(0)) ? NULL : __libc_realloc(p, n);
}
int posix_memalign(void **out, size_t align, size_t n) {
    if (fail_now(__builtin_return_address(0))) return ENOMEM;
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
