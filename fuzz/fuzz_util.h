/* What the file-reading harnesses share: a per-process temporary directory (in /dev/shm when it
 * is writable, so the many small writes stay in memory) whose files are removed at exit, and
 * writing an input there plain or through zlib's gzwrite. Any failure here is the harness's, so it
 * aborts. */
#ifndef BNN_FUZZ_UTIL_H
#define BNN_FUZZ_UTIL_H

#include "bnn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FUZZ_MAX_FILES 4

static char fuzz_dir[64], fuzz_files[FUZZ_MAX_FILES][128];
static int fuzz_nfiles;

static inline void fuzz_cleanup(void) {
    for (int i = 0; i < fuzz_nfiles; i++)
        unlink(fuzz_files[i]);
    rmdir(fuzz_dir);
}

/* The path of `name` in the temporary directory (made at the first call), removed at exit. */
static inline const char *fuzz_path(const char *name) {
    if (!fuzz_dir[0]) {
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm/bnnfuzz-XXXXXX" : "/tmp/bnnfuzz-XXXXXX");
        if (!mkdtemp(fuzz_dir)) abort();
        atexit(fuzz_cleanup);
    }
    if (fuzz_nfiles == FUZZ_MAX_FILES) abort();
    char *p = fuzz_files[fuzz_nfiles++];
    snprintf(p, sizeof fuzz_files[0], "%s/%s", fuzz_dir, name);
    return p;
}

/* Writes data to path, gzip-compressed when gz (then chopping `cut` bytes off the end of the
 * compressed file when cut > 0, to reach a truncated gzip stream). */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size, int gz,
                              long cut) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || (size && gzwrite(f, data, (unsigned)size) != (int)size) || gzclose(f) != Z_OK)
            abort();
        if (cut > 0) {
            FILE *g = fopen(path, "rb");
            if (!g || fseek(g, 0, SEEK_END) != 0) abort();
            const long len = ftell(g);
            fclose(g);
            if (len > cut && truncate(path, len - cut) != 0) abort();
        }
        return;
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    const size_t w = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || w != size) abort();
}

/* What a reader returned: a loaded set is well formed (n, d and outputs >= 1) and passes
 * bnn_dataset_validate (finite values, labels in range), and a failure says why. Frees ds. */
static inline void fuzz_check_load(int rc, bnn_dataset *ds, const char *what) {
    if (rc != 0) {
        if (ds || !bnn_last_error()[0]) abort();
        return;
    }
    if (bnn_dataset_n(ds) < 1 || bnn_dataset_dim(ds) < 1 || bnn_dataset_outputs(ds) < 1) abort();
    if (bnn_dataset_validate(ds)) {
        fprintf(stderr, "%s: a loaded set fails validation: %s\n", what, bnn_last_error());
        abort();
    }
    bnn_dataset_free(ds);
}

#endif
