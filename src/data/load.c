/* Datasets by name: the spec strings the command line accepts ("fmnist", "moons", "sine-gap",
 * "csv:PATH", "csv:TRAIN,TEST") and the fixed sizes of the built-in problems. */
#include "data/data.h"

#include <string.h>

#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_CLASSES 10
/* Built-in toy sizes: large enough to show a posterior's shape, small enough to train in
 * seconds. The moons test split is drawn from its own Philox stream (see data.h). */
#define MOONS_TRAIN_N 1000
#define MOONS_TEST_N 500
#define MOONS_NOISE 0.1
#define SINE_GAP_TRAIN_N 64
#define SINE_GAP_TEST_N 200
#define SINE_GAP_NOISE 0.1

#define VALID_SPECS "fmnist, moons, sine-gap, csv:PATH, csv:TRAIN,TEST"

struct bnn_data_params bnn_data_default_params(void) {
    struct bnn_data_params p = {.split = "train", .seed = 0, .csv = bnn_csv_default_params()};
    return p;
}

static bool file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fclose(f); /* Opened only to test for existence; nothing was read that could be lost. */
    return true;
}

/* dir/name.gz, or dir/name when only the uncompressed file is there (gzopen reads both). */
static int fmnist_path(char *buf, size_t cap, const char *dir, const char *name) {
    int w = snprintf(buf, cap, "%s/%s.gz", dir, name);
    if (w < 0 || (size_t)w >= cap)
        return bnn__error(BNN_EINVAL, "fmnist: the directory name %s is too long", dir);
    if (file_exists(buf)) return 0;
    char plain[4096];
    snprintf(plain, sizeof plain, "%s/%s", dir, name);
    if (file_exists(plain)) {
        memcpy(buf, plain, strlen(plain) + 1);
        return 0;
    }
    return bnn__error(BNN_ENOTFOUND,
                      "Fashion-MNIST not found: %s does not exist (looked in %s; "
                      "set BNN_FMNIST_DIR to the directory holding the IDX files, or run "
                      "`apt-get install dataset-fashion-mnist`, which installs them in %s)",
                      buf, dir, FMNIST_DEFAULT_DIR);
}

static int load_fmnist(bnn_dataset **out, bool test) {
    const char *dir = getenv("BNN_FMNIST_DIR");
    if (!dir || !*dir) dir = FMNIST_DEFAULT_DIR;
    /* The file names are those of the original distribution (Xiao et al., 2017). */
    const char *prefix = test ? "t10k" : "train";
    char name[64], images[4096], labels[4096];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    int rc = fmnist_path(images, sizeof images, dir, name);
    if (rc) return rc;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if ((rc = fmnist_path(labels, sizeof labels, dir, name))) return rc;
    return bnn_idx_load(out, images, labels, FMNIST_CLASSES);
}

/* "csv:PATH" or "csv:TRAIN,TEST". A single comma splits the two files; more than one is
 * ambiguous, since a path may itself contain a comma. */
static int load_csv(bnn_dataset **out, const char *rest, bool test,
                    const struct bnn_csv_params *cp) {
    const char *comma = strchr(rest, ',');
    if (comma && strchr(comma + 1, ','))
        return bnn__error(BNN_EINVAL,
                          "csv:%s: more than one comma; write csv:TRAIN,TEST with "
                          "paths that contain no comma",
                          rest);
    size_t len = comma ? (size_t)(comma - rest) : strlen(rest);
    if (len == 0 || (comma && comma[1] == '\0'))
        return bnn__error(BNN_EINVAL,
                          "csv:%s: an empty file name; write csv:PATH or "
                          "csv:TRAIN,TEST",
                          rest);
    if (test && comma) return bnn_csv_load(out, comma + 1, cp);
    char *path = malloc(len + 1);
    if (!path) return bnn__error(BNN_ENOMEM, "cannot allocate a file name");
    memcpy(path, rest, len);
    path[len] = '\0';
    int rc = bnn_csv_load(out, path, cp);
    free(path);
    return rc;
}

int bnn_data_load(bnn_dataset **out, const char *spec, const struct bnn_data_params *p) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_data_load: out is NULL");
    *out = NULL;
    if (!spec)
        return bnn__error(BNN_EINVAL, "bnn_data_load: no dataset given (valid: " VALID_SPECS ")");
    struct bnn_data_params dp = bnn_data_default_params();
    if (!p) p = &dp;
    const char *split = p->split ? p->split : "train";
    bool test;
    if (strcmp(split, "train") == 0)
        test = false;
    else if (strcmp(split, "test") == 0)
        test = true;
    else
        return bnn__error(BNN_EINVAL, "unknown split '%s' (valid: train, test)", split);

    int rc;
    if (strcmp(spec, "fmnist") == 0) {
        rc = load_fmnist(out, test);
    } else if (strcmp(spec, "moons") == 0) {
        rc = test ? bnn__toy_moons_stream(out, MOONS_TEST_N, MOONS_NOISE, p->seed,
                                          BNN__STREAM_MOONS_TEST)
                  : bnn__toy_moons_stream(out, MOONS_TRAIN_N, MOONS_NOISE, p->seed,
                                          BNN__STREAM_MOONS_TRAIN);
    } else if (strcmp(spec, "sine-gap") == 0) {
        rc = bnn_toy_sine_gap(out, test ? SINE_GAP_TEST_N : SINE_GAP_TRAIN_N, SINE_GAP_NOISE,
                              p->seed, test);
    } else if (strncmp(spec, "csv:", 4) == 0) {
        rc = load_csv(out, spec + 4, test, &p->csv);
    } else {
        return bnn__error(BNN_EINVAL, "unknown dataset '%s' (valid: " VALID_SPECS ")", spec);
    }
    if (rc) return rc;
    /* Every reader checks its values already; validating here too keeps the promise that a
     * loaded dataset is clean even when a reader changes. It is one pass over memory. */
    if ((rc = bnn_dataset_validate(*out))) {
        bnn_dataset_free(*out);
        *out = NULL;
    }
    return rc;
}
