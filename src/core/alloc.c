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

void *bnn__alloc_array(int64_t n, size_t size) {
    const size_t bytes = bnn__bytes(n, size);
    return bytes || n == 0 || size == 0 ? bnn__alloc(bytes) : NULL;
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

/* The next whole line of f in line (len bytes, its newline dropped); a line too long for it is
 * read to its end and skipped (so that its tail is not taken for a line of its own). false at
 * the end of the file. */
static bool whole_line(FILE *f, char *line, size_t len) {
    while (fgets(line, (int)len, f)) {
        const size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\n') {
            line[n - 1] = 0;
            return true;
        }
        if (feof(f)) return true; /* the last line, without a newline */
        int c;
        while ((c = fgetc(f)) != EOF && c != '\n') {
        }
    }
    return false;
}

/* A cgroup hierarchy's mount, from /proc/self/mountinfo: the cgroup its root is (root, "/" unless
 * a container's namespace) and where it is mounted (point). */
typedef struct cg_mount {
    char root[1024], point[1024];
    bool v2; /* cgroup2; else a v1 hierarchy with the memory controller */
} cg_mount;

/* mountinfo's octal escapes (\040 for a space) undone in place. */
static void unescape(char *s) {
    char *o = s;
    for (const char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

/* The cgroup2 mounts and the v1 mounts with the memory controller in mountinfo (at most max):
 * "ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS". */
static int cgroup_mounts(const char *mountinfo, cg_mount *m, int max) {
    FILE *f = fopen(mountinfo, "r");
    if (!f) return 0;
    char line[4096];
    int n = 0;
    while (n < max && whole_line(f, line, sizeof line)) {
        char *field[64];
        int nf = 0;
        for (char *save = NULL, *t = strtok_r(line, " ", &save); t && nf < 64;
             t = strtok_r(NULL, " ", &save))
            field[nf++] = t;
        int dash = 6;
        while (dash < nf && strcmp(field[dash], "-")) dash++;
        if (dash + 3 >= nf) continue;
        const char *type = field[dash + 1], *super = field[dash + 3];
        const bool v2 = !strcmp(type, "cgroup2");
        if (!v2 && (strcmp(type, "cgroup") || !has_word(super, "memory"))) continue;
        if (strlen(field[3]) >= sizeof m[n].root || strlen(field[4]) >= sizeof m[n].point)
            continue;
        strcpy(m[n].root, field[3]), strcpy(m[n].point, field[4]);
        unescape(m[n].root), unescape(m[n].point);
        m[n++].v2 = v2;
    }
    fclose(f);
    return n;
}

double bnn__cgroup_limit(const char *proc_cgroup, const char *mountinfo, const char *prefix) {
    cg_mount mounts[64];
    const int nm = cgroup_mounts(mountinfo, mounts, 64);
    FILE *f = nm > 0 ? fopen(proc_cgroup, "r") : NULL;
    if (!f) return 0.0;
    char line[2048];
    double best = 0.0;
    while (whole_line(f, line, sizeof line)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        *c2 = 0;
        /* v2 (no controllers: the unified hierarchy) or v1's memory controller. */
        const bool v2 = !c1[1];
        if (!v2 && !has_word(c1 + 1, "memory")) continue;
        const char *cg = c2 + 1;
        if (strstr(cg, "/..")) continue; /* (a namespace's view of a sibling: not below a mount) */
        for (int i = 0; i < nm; i++) {
            const cg_mount *mt = &mounts[i];
            /* The mount shows the part of the hierarchy under its root: the process's cgroup
             * must lie there (a container's own mount does not show its parents). */
            const size_t rl = strcmp(mt->root, "/") ? strlen(mt->root) : 0;
            if (mt->v2 != v2 || strncmp(cg, mt->root, rl) || (cg[rl] && cg[rl] != '/')) continue;
            /* The cgroup and each of its ancestors up to the mount: a parent's limit binds its
             * children. */
            char path[2048];
            snprintf(path, sizeof path, "%s", cg + rl);
            for (;;) {
                char file[4400];
                snprintf(file, sizeof file, "%s%s%s/%s", prefix, mt->point,
                         strcmp(path, "/") ? path : "", v2 ? "memory.max" : "memory.limit_in_bytes");
                const double v = limit_file(file);
                if (v > 0.0 && (best == 0.0 || v < best)) best = v;
                char *slash = strrchr(path, '/');
                if (!slash || !path[0] || !strcmp(path, "/")) break;
                *slash = 0;
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
        /* K, M, G or T (either case; powers of 1024), then optionally B or iB: 16G, 16g,
         * 16GB and 16GiB are one size */
        const char u = (char)(*end & ~0x20);
        const double unit = u == 'K'   ? 1024.0
                            : u == 'M' ? 1048576.0
                            : u == 'G' ? 1073741824.0
                            : u == 'T' ? 1099511627776.0
                                       : 1.0;
        if (unit > 1.0) {
            end++;
            if ((*end == 'i' || *end == 'I') && (end[1] == 'B' || end[1] == 'b')) end++;
            if (*end == 'B' || *end == 'b') end++;
        }
        *limited = true;
        return end != env && !*end && v > 0.0 && isfinite(v) ? v * unit : -1.0;
    }
    const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    const double phys = pages > 0 && size > 0 ? (double)pages * (double)size : 0.0;
    const double cg = bnn__cgroup_limit("/proc/self/cgroup", "/proc/self/mountinfo", "");
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
                          "number with K, M, G or T)", getenv("BNN_MEMORY_LIMIT"));
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
