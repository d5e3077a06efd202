/* Datasets by name: the spec strings the command line accepts and the fixed sizes of the built-in
 * problems.
 *
 *   fmnist, moons, sine-gap, sine-hetero   built-in data; p->split picks the split
 *   noise, noise:D, noise:D:N  N (default 10000) examples of D (default 784, shaped 28 × 28)
 *                              features drawn U(0, 1) from p->seed: unlabeled out-of-distribution
 *                              inputs, given one class with every label 0; the same for both splits
 *   csv:PATH, csv:TRAIN,TEST   a CSV file, or one per split
 *   idx:IMAGES                 the user's own IDX images, scaled to [0, 1]; unlabeled (one class,
 *                              every label 0)
 *   idx:IMAGES,LABELS          the same with u8 labels; classes = the largest label + 1
 *   npy:X, npy:X,Y             NumPy arrays (src/data/npy.c), the targets read for p->csv.task;
 *                              without Y unlabeled; the same files for both splits, as idx:
 *
 * fmnist, moons, sine-gap, sine-hetero and noise take modifiers after a colon, applied left to
 * right to every example of the split: rot=DEG (turn each image DEG degrees counter-clockwise
 * about its centre, bilinear, background 0) and flip (turn it upside down). They need data with an image shape, so
 * "fmnist:rot=30", "fmnist:flip:rot=-15" and "noise:rot=45" are valid and "moons:flip" is not. A
 * csv:, idx: or npy: spec takes the rest of the string as file names, which may contain colons,
 * so it takes no modifiers. */
#include "data/data.h"

#include <errno.h>
#include <math.h>
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
#define SINE_HETERO_TRAIN_N 500
#define SINE_HETERO_TEST_N 1000
/* Uniform noise defaults: the size and shape of the Fashion-MNIST test split, so "noise" is an
 * OOD set for the Fashion-MNIST models as it stands. */
#define NOISE_N 10000
#define NOISE_D 784
/* IDX labels are unsigned bytes, so no label file can name more classes than this. */
#define IDX_MAX_CLASSES 256
/* More modifiers than this in one spec is a typing accident, not an experiment. */
#define MAX_MODIFIERS 16

#define VALID_SPECS                                                                                \
    "fmnist, moons, sine-gap, sine-hetero, noise, noise:D, noise:D:N, csv:PATH, csv:TRAIN,TEST, "  \
    "idx:IMAGES, idx:IMAGES,LABELS, npy:X, npy:X,Y; the built-in sets take the modifiers "         \
    ":rot=DEG and :flip on image data, e.g. fmnist:rot=30"
#define VALID_MODIFIERS "rot=DEG, flip"

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

const char *bnn_fmnist_dir(void) {
    const char *dir = getenv("BNN_FMNIST_DIR");
    return dir && *dir ? dir : FMNIST_DEFAULT_DIR;
}

static int load_fmnist(bnn_dataset **out, bool test) {
    const char *dir = bnn_fmnist_dir();
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

/* Splits "FIRST" or "FIRST,SECOND" (kind is "csv", "idx" or "npy", for messages). A single comma
 * splits the two files; more than one is ambiguous, since a path may itself contain a comma.
 * *first is a malloc'd copy owned by the caller; *second points into rest, or is NULL without a
 * comma. */
static int split_paths(const char *kind, const char *rest, const char *forms, char **first,
                       const char **second) {
    *first = NULL, *second = NULL;
    const char *comma = strchr(rest, ',');
    if (comma && strchr(comma + 1, ','))
        return bnn__error(BNN_EINVAL,
                          "%s:%s: more than one comma; write %s with paths that contain no comma",
                          kind, rest, forms);
    size_t len = comma ? (size_t)(comma - rest) : strlen(rest);
    if (len == 0 || (comma && comma[1] == '\0'))
        return bnn__error(BNN_EINVAL, "%s:%s: an empty file name; write %s", kind, rest, forms);
    char *path = malloc(len + 1);
    if (!path) return bnn__error(BNN_ENOMEM, "cannot allocate a file name");
    memcpy(path, rest, len);
    path[len] = '\0';
    *first = path;
    *second = comma ? comma + 1 : NULL;
    return 0;
}

/* "csv:PATH" or "csv:TRAIN,TEST": the second file serves the test split. */
static int load_csv(bnn_dataset **out, const char *rest, bool test,
                    const struct bnn_csv_params *cp) {
    char *train = NULL;
    const char *test_path = NULL;
    int rc = split_paths("csv", rest, "csv:PATH or csv:TRAIN,TEST", &train, &test_path);
    if (rc) return rc;
    rc = bnn_csv_load(out, test && test_path ? test_path : train, cp);
    free(train);
    return rc;
}

/* "idx:IMAGES" or "idx:IMAGES,LABELS": the user's own files, the same for both splits. With
 * labels, the class count is the largest label + 1, the only count the file itself supports; a
 * set that lacks the top classes therefore reports fewer classes than the model was trained on. */
static int load_idx(bnn_dataset **out, const char *rest) {
    char *images = NULL;
    const char *labels = NULL;
    int rc = split_paths("idx", rest, "idx:IMAGES or idx:IMAGES,LABELS", &images, &labels);
    if (rc) return rc;
    if (!labels) {
        rc = bnn_idx_load(out, images, NULL, 1);
        free(images);
        return rc;
    }
    rc = bnn_idx_load(out, images, labels, IDX_MAX_CLASSES);
    free(images);
    if (rc) return rc;
    int32_t top = 0;
    for (int64_t i = 0; i < (*out)->n; i++)
        if ((*out)->labels[i] > top) top = (*out)->labels[i];
    (*out)->k = (int64_t)top + 1;
    return 0;
}

/* "npy:X" or "npy:X,Y": NumPy arrays, the same for both splits. */
static int load_npy(bnn_dataset **out, const char *rest, bnn_task task) {
    char *x = NULL;
    const char *y = NULL;
    int rc = split_paths("npy", rest, "npy:X or npy:X,Y", &x, &y);
    if (rc) return rc;
    rc = bnn_npy_load(out, x, y, task);
    free(x);
    return rc;
}

/* ---------------------------------------------------------------- modifiers */

typedef enum { MOD_ROT, MOD_FLIP } mod_kind;
typedef struct modifier {
    mod_kind kind;
    double degrees; /* MOD_ROT */
} modifier;

/* Parses one modifier tok[0..len) of spec into m. */
static int parse_modifier(const char *spec, const char *tok, size_t len, modifier *m) {
    if (len == 0)
        return bnn__error(BNN_EINVAL, "%s: an empty modifier (valid: " VALID_MODIFIERS ")", spec);
    if (len == 4 && memcmp(tok, "flip", 4) == 0) {
        m->kind = MOD_FLIP, m->degrees = 0.0;
        return 0;
    }
    if ((len == 3 && memcmp(tok, "rot", 3) == 0) || (len == 4 && memcmp(tok, "rot=", 4) == 0))
        return bnn__error(BNN_EINVAL, "%s: rot needs an angle in degrees, e.g. rot=15 or rot=-30",
                          spec);
    if (len > 4 && memcmp(tok, "rot=", 4) == 0) {
        /* strtod needs a terminated string; an angle longer than the buffer is no angle. It would
         * also skip leading spaces and accept "inf" and "nan", which are refused here. */
        char num[64];
        size_t nlen = len - 4;
        double deg = 0.0;
        bool ok = nlen < sizeof num && tok[4] != ' ' && tok[4] != '\t';
        if (ok) {
            memcpy(num, tok + 4, nlen);
            num[nlen] = '\0';
            char *end = NULL;
            errno = 0;
            deg = bnn_strtod(num, &end);
            ok = end == num + nlen && errno == 0 && isfinite(deg);
        }
        if (!ok)
            return bnn__error(BNN_EINVAL,
                              "%s: '%.*s' is not an angle; write rot=DEG with a finite number of "
                              "degrees, e.g. rot=15 or rot=-30",
                              spec, (int)nlen, tok + 4);
        m->kind = MOD_ROT, m->degrees = deg;
        return 0;
    }
    return bnn__error(BNN_EINVAL,
                      "%s: unknown modifier '%.*s' (valid: " VALID_MODIFIERS
                      "; e.g. fmnist:rot=30, fmnist:flip)",
                      spec, (int)len, tok);
}

/* A whole number >= 1 in tok[0..len), digits only. */
static bool parse_count(const char *tok, size_t len, int64_t *v) {
    if (len == 0 || len > 18) return false; /* 18 digits always fit in int64_t */
    int64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] < '0' || tok[i] > '9') return false;
        x = 10 * x + (tok[i] - '0');
    }
    *v = x;
    return true;
}

/* The part of a built-in spec after its name: for noise up to two counts (D, then N), then the
 * modifiers, all separated by colons. Everything is checked before any data is loaded, so a typo
 * costs no read of 60000 images. */
static int parse_tail(const char *spec, const char *tail, bool noise, int64_t counts[2],
                      modifier *mods, int *nmods) {
    *nmods = 0;
    int ncounts = 0;
    while (tail) {
        const char *tok = tail + 1; /* past the colon */
        const char *next = strchr(tok, ':');
        size_t len = next ? (size_t)(next - tok) : strlen(tok);
        bool modifier_like =
            (len == 4 && memcmp(tok, "flip", 4) == 0) || (len >= 3 && memcmp(tok, "rot", 3) == 0);
        if (noise && ncounts < 2 && *nmods == 0 && !modifier_like) {
            int64_t v = 0;
            if (!parse_count(tok, len, &v))
                return bnn__error(BNN_EINVAL,
                                  "%s: '%.*s' is not a whole number >= 1; write noise, noise:D "
                                  "or noise:D:N (D features, N examples; default 784 and 10000)",
                                  spec, (int)len, tok);
            if (v < 1)
                return bnn__error(BNN_EINVAL, "%s: the number of %s must be >= 1 (got %lld)", spec,
                                  ncounts == 0 ? "features D" : "examples N", (long long)v);
            counts[ncounts++] = v;
        } else {
            if (*nmods == MAX_MODIFIERS)
                return bnn__error(BNN_EINVAL, "%s: more than %d modifiers", spec, MAX_MODIFIERS);
            int rc = parse_modifier(spec, tok, len, &mods[*nmods]);
            if (rc) return rc;
            (*nmods)++;
        }
        tail = next;
    }
    return 0;
}

/* Applies the modifiers in the order written. Both need an image shape: turning a row of two moons
 * coordinates has no meaning. */
static int apply_modifiers(bnn_dataset *ds, const char *spec, const char *name,
                           const modifier *mods, int nmods) {
    for (int i = 0; i < nmods; i++) {
        const char *what = mods[i].kind == MOD_ROT ? "rot" : "flip";
        int64_t shape[3];
        bnn_dataset_image_shape(ds, shape);
        if (shape[0] == 0)
            return bnn__error(BNN_EINVAL,
                              "%s: %s needs image data, but %s has %lld feature%s and no image "
                              "shape",
                              spec, what, name, (long long)bnn_dataset_dim(ds),
                              bnn_dataset_dim(ds) == 1 ? "" : "s");
        int rc = mods[i].kind == MOD_ROT ? bnn__dataset_rotate(ds, mods[i].degrees)
                                         : bnn__dataset_flip_vertical(ds);
        if (rc) return rc;
    }
    return 0;
}

/* The built-in datasets, by the index bnn_data_load switches on; 1 to 4 are generated. */
static const char *const builtin[] = {"fmnist", "moons", "sine-gap", "noise", "sine-hetero"};

/* The built-in name spec starts with (then ':' or its end), or -1. */
static int builtin_of(const char *spec) {
    const char *tail = strchr(spec, ':');
    const size_t nlen = tail ? (size_t)(tail - spec) : strlen(spec);
    for (int i = 0; i < 5; i++)
        if (strlen(builtin[i]) == nlen && strncmp(spec, builtin[i], nlen) == 0) return i;
    return -1;
}

bool bnn_data_generated(const char *spec) { return spec && builtin_of(spec) > 0; }

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
    if (strncmp(spec, "csv:", 4) == 0) {
        rc = load_csv(out, spec + 4, test, &p->csv);
    } else if (strncmp(spec, "idx:", 4) == 0) {
        rc = load_idx(out, spec + 4);
    } else if (strncmp(spec, "npy:", 4) == 0) {
        rc = load_npy(out, spec + 4, p->csv.task);
    } else {
        /* A built-in name, then optional ":"-separated counts (noise) and modifiers. */
        const char *tail = strchr(spec, ':');
        const int which = builtin_of(spec);
        if (which < 0)
            return bnn__error(BNN_EINVAL, "unknown dataset '%s' (valid: " VALID_SPECS ")", spec);
        int64_t counts[2] = {NOISE_D, NOISE_N};
        modifier mods[MAX_MODIFIERS];
        int nmods = 0;
        if ((rc = parse_tail(spec, tail, which == 3, counts, mods, &nmods))) return rc;
        switch (which) {
        case 0: rc = load_fmnist(out, test); break;
        case 1:
            rc = test ? bnn__toy_moons_stream(out, MOONS_TEST_N, MOONS_NOISE, p->seed,
                                              BNN__STREAM_MOONS_TEST)
                      : bnn__toy_moons_stream(out, MOONS_TRAIN_N, MOONS_NOISE, p->seed,
                                              BNN__STREAM_MOONS_TRAIN);
            break;
        case 2:
            rc = bnn_toy_sine_gap(out, test ? SINE_GAP_TEST_N : SINE_GAP_TRAIN_N, SINE_GAP_NOISE,
                                  p->seed, test);
            break;
        case 4:
            rc = bnn_toy_sine_hetero(out, test ? SINE_HETERO_TEST_N : SINE_HETERO_TRAIN_N, p->seed,
                                     test);
            break;
        default: rc = bnn__noise_uniform(out, counts[1], counts[0], p->seed); break;
        }
        if (!rc && (rc = apply_modifiers(*out, spec, builtin[which], mods, nmods))) {
            bnn_dataset_free(*out);
            *out = NULL;
        }
    }
    if (rc) return rc;
    /* Every reader checks its values already; validating here too keeps the promise that a
     * loaded dataset is clean even when a reader changes. It is one pass over memory. */
    if ((rc = bnn_dataset_validate(*out))) {
        bnn_dataset_free(*out);
        *out = NULL;
    } else {
        (*out)->checked = true; /* training, evaluation and the fits need not scan it again */
    }
    return rc;
}
