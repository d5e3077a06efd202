/* Aligned allocation and the per-step scratch arena. */
#include "core/internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BNN__ALIGN 64

size_t bnn__bytes(int64_t n, size_t size) {
    if (n < 0 || size == 0) return 0;
    if ((uint64_t)n > SIZE_MAX / size) return 0;
    return (size_t)n * size;
}

void *bnn__alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    size_t rounded = (bytes + BNN__ALIGN - 1) / BNN__ALIGN * BNN__ALIGN;
    if (rounded < bytes) return NULL;
    void *p = aligned_alloc(BNN__ALIGN, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void bnn__free(void *p) { free(p); }

int bnn__arena_init(bnn__arena *a, size_t cap) {
    memset(a, 0, sizeof *a);
    a->base = bnn__alloc(cap);
    if (!a->base) return bnn__error(BNN_ENOMEM, "cannot allocate a %zu-byte scratch arena", cap);
    a->cap = cap;
    return 0;
}

void bnn__arena_free(bnn__arena *a) {
    bnn__free(a->base);
    memset(a, 0, sizeof *a);
}

void *bnn__arena_push(bnn__arena *a, size_t bytes) {
    size_t start = (a->used + BNN__ALIGN - 1) / BNN__ALIGN * BNN__ALIGN;
    if (start > a->cap || bytes > a->cap - start) return NULL;
    a->used = start + bytes;
    if (a->used > a->high) a->high = a->used;
    return a->base + start;
}

void bnn__arena_reset(bnn__arena *a) { a->used = 0; }

/* A cgroup limit file's value in bytes, or 0 for none ("max", v1's "unlimited" 2^63 − page, or
 * no such file). */
static double limit_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0.0;
    char buf[64];
    double v = 0.0;
    if (fgets(buf, sizeof buf, f)) {
        char *end;
        const unsigned long long u = strtoull(buf, &end, 10);
        if (end != buf && (*end == '\n' || !*end) && u > 0 && u < (1ull << 60)) v = (double)u;
    }
    fclose(f);
    return v;
}

/* Whether the comma-separated list has the word. */
static bool has_word(const char *list, const char *word) {
    const size_t n = strlen(word);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (!strncmp(p, word, n) && (p[n] == ',' || !p[n])) return true;
    return false;
}

double bnn__cgroup_limit(const char *proc_cgroup, const char *root) {
    FILE *f = fopen(proc_cgroup, "r");
    if (!f) return 0.0;
    char line[2048];
    double best = 0.0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        *c2 = 0;
        /* v2 (no controllers: the unified hierarchy, at the root or, on hybrid systems, under
         * unified/) or v1's memory controller. */
        const bool v2 = !c1[1];
        if (!v2 && !has_word(c1 + 1, "memory")) continue;
        const char *const dirs[2] = {v2 ? "" : "/memory", v2 ? "/unified" : NULL};
        for (int d = 0; d < 2 && dirs[d]; d++) {
            /* The cgroup and each of its ancestors: a parent's limit binds its children. */
            char path[2048];
            snprintf(path, sizeof path, "%s", c2 + 1);
            for (;;) {
                char file[4400];
                snprintf(file, sizeof file, "%s%s%s/%s", root, dirs[d], strcmp(path, "/") ? path : "",
                         v2 ? "memory.max" : "memory.limit_in_bytes");
                const double v = limit_file(file);
                if (v > 0.0 && (best == 0.0 || v < best)) best = v;
                char *slash = strrchr(path, '/');
                if (!slash || !strcmp(path, "/")) break;
                if (slash == path) path[1] = 0;
                else *slash = 0;
            }
        }
    }
    fclose(f);
    return best;
}

/* BNN_MEMORY_LIMIT's value when set (*limited; −1 when it is not a size), else the physical
 * memory or the cgroup's limit where lower (*cgroup), else 0. */
static double memory_limit(bool *limited, bool *cgroup) {
    *limited = *cgroup = false;
    const char *env = getenv("BNN_MEMORY_LIMIT");
    if (env && *env) {
        char *end;
        double v = bnn_strtod(env, &end);
        const double unit = *end == 'K'   ? 1024.0
                            : *end == 'M' ? 1048576.0
                            : *end == 'G' ? 1073741824.0
                                          : 1.0;
        if (unit > 1.0) end++;
        *limited = true;
        return end != env && !*end && v > 0.0 && isfinite(v) ? v * unit : -1.0;
    }
    const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    const double phys = pages > 0 && size > 0 ? (double)pages * (double)size : 0.0;
    const double cg = bnn__cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup");
    if (cg > 0.0 && (phys == 0.0 || cg < phys)) {
        *cgroup = true;
        return cg;
    }
    return phys;
}

int bnn__byte_limit(const char *fn, double max_bytes, double *limit, char *what, size_t len) {
    char sz[32];
    if (max_bytes > 0.0) {
        bnn__format_bytes(sz, sizeof sz, max_bytes);
        snprintf(what, len, "the limit of %s", sz);
        *limit = max_bytes;
        return 0;
    }
    if (max_bytes != 0.0)
        return bnn__error(BNN_EINVAL, "%s: max_bytes must be positive, or 0 for the memory "
                          "limit (got %g)", fn, max_bytes);
    bool limited, cgroup;
    const double v = memory_limit(&limited, &cgroup);
    if (v < 0.0)
        return bnn__error(BNN_EINVAL, "BNN_MEMORY_LIMIT is '%.40s', not a size (bytes, or a "
                          "number with K, M or G)", getenv("BNN_MEMORY_LIMIT"));
    *limit = v > 0.0 ? v : INFINITY;
    bnn__format_bytes(sz, sizeof sz, v);
    snprintf(what, len, "%s %s",
             limited ? "BNN_MEMORY_LIMIT's" : cgroup ? "this cgroup's" : "this machine's", sz);
    return 0;
}

void bnn__format_bytes(char *buf, size_t len, double bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 6)
        bytes /= 1024.0, u++;
    double r = bytes < 100.0 ? round(bytes * 10.0) / 10.0 : round(bytes);
    if (r == floor(r))
        snprintf(buf, len, "%.0f %s", r, units[u]);
    else
        snprintf(buf, len, "%.1f %s", r, units[u]);
}
