/* libFuzzer harness: the string parsers of bnn.h.
 *
 * Byte 0 holds options (bit 0: split "test" instead of "train"; bits 1-3: the seed); the rest,
 * cut at the first NUL, is the string given to
 *   bnn_model_new          model specs "mlp:D-H-...-K[:act][:dropout=P]"; a model that parses
 *                          must give a canonical spec (bnn_model_spec) that parses to the same
 *                          parameter count, and take every likelihood bnn_model_set_lik allows
 *   bnn_data_load          dataset specs: moons, sine-gap, sine-hetero, noise[:D[:N]] and the
 *                          :rot=DEG / :flip modifiers, fmnist, csv:..., idx:..., npy:...
 *   bnn_lik_parse, bnn_method_parse, bnn_parse_int
 *
 * Guards, each a harness choice and not a library limit:
 *  - Model specs whose layer sizes ask for more than ~1e7 parameters are not built:
 *    bnn_model_new legitimately allocates nparams floats (sizes up to 2^24 are valid, so
 *    "mlp:16777216-16777216" is a 1 TiB request by design). The count is computed here the way
 *    the spec is parsed (sizes separated by '-' after "mlp:", up to ':' or the end).
 *  - "noise" specs are only loaded when D x N <= 2^20 values (the default 784 x 10000 is 7.8M
 *    and would only slow the fuzzer; huge D x N is a legitimate allocation).
 *  - The process works in an empty temp directory with BNN_FMNIST_DIR pointing at it, so
 *    "fmnist" fails fast with "not found" after its modifiers are parsed, and csv:/idx:/npy: specs
 *    are only tried when they contain no '/' (relative names in the empty directory: the
 *    spec's path splitting and error paths run, but no real file, /dev/zero or FIFO, is read). */
#include "bnn.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MODEL_PARAMS 10000000.0
#define MAX_NOISE_VALUES ((double)(1 << 20))

static char g_dir[64];

static void cleanup(void) { rmdir(g_dir); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    snprintf(g_dir, sizeof g_dir, "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm/bnnfuzz-XXXXXX"
                                                                       : "/tmp/bnnfuzz-XXXXXX");
    if (!mkdtemp(g_dir) || chdir(g_dir) != 0) abort();
    setenv("BNN_FMNIST_DIR", g_dir, 1);
    bnn_set_threads(1);
    atexit(cleanup);
    return 0;
}

/* Parameters of "mlp:a-b-c..." as the spec parser reads the sizes; 0 when it is not one. */
static double model_params(const char *s) {
    if (strncmp(s, "mlp:", 4)) return 0.0;
    const char *p = s + 4;
    double total = 0.0, prev = -1.0;
    while (isdigit((unsigned char)*p)) {
        char *end;
        double v = strtod(p, &end); /* digits only here; a double never overflows to wrap */
        while (isdigit((unsigned char)*p)) p++;
        if (prev >= 0.0) total += (prev + 1.0) * v;
        prev = v;
        if (*p != '-') break;
        p++;
    }
    return total;
}

/* D x N of a "noise[:D[:N]]" spec (defaults 784 and 10000), or -1 when it is not noise. */
static double noise_values(const char *s) {
    if (strncmp(s, "noise", 5) || (s[5] && s[5] != ':')) return -1.0;
    double c[2] = {784.0, 10000.0};
    const char *p = s + 5;
    for (int i = 0; i < 2 && *p == ':'; i++) {
        p++;
        if (!isdigit((unsigned char)*p)) break; /* a modifier: the counts are over */
        c[i] = strtod(p, NULL);
        while (isdigit((unsigned char)*p)) p++;
    }
    return c[0] * c[1];
}

static void model(const char *s) {
    if (model_params(s) > MAX_MODEL_PARAMS) return;
    bnn_model *m = NULL;
    if (bnn_model_new(&m, s)) {
        if (!bnn_last_error()[0]) abort();
        return;
    }
    /* The canonical spec must describe the same model. */
    bnn_model *m2 = NULL;
    if (bnn_model_new(&m2, bnn_model_spec(m)) ||
        bnn_model_nparams(m2) != bnn_model_nparams(m) ||
        strcmp(bnn_model_spec(m2), bnn_model_spec(m))) {
        fprintf(stderr, "spec '%s' -> canonical '%s' does not round-trip\n", s, bnn_model_spec(m));
        abort();
    }
    bnn_model_free(m2);
    for (int k = 0; k <= BNN_LIK_HETERO_GAUSSIAN; k++) (void)bnn_model_set_lik(m, (bnn_lik_kind)k);
    for (int64_t i = 0; i < bnn_model_nlayers(m); i++) {
        int64_t w_off, w_shape[2], b_off, b_len;
        (void)bnn_model_layer_kind(m, i);
        (void)bnn_model_layer_tensors(m, i, &w_off, w_shape, &b_off, &b_len);
    }
    bnn_model_free(m);
}

static void dataset(const char *s, uint8_t opt) {
    if ((!strncmp(s, "csv:", 4) || !strncmp(s, "idx:", 4) || !strncmp(s, "npy:", 4)) &&
        strchr(s, '/'))
        return;
    if (noise_values(s) > MAX_NOISE_VALUES) return;
    struct bnn_data_params p = bnn_data_default_params();
    p.split = opt & 1 ? "test" : "train";
    p.seed = (opt >> 1) & 7;
    bnn_dataset *ds = NULL;
    if (bnn_data_load(&ds, s, &p) == 0) {
        if (bnn_dataset_validate(ds)) abort(); /* bnn_data_load validated it already */
        bnn_dataset_free(ds);
    } else if (!bnn_last_error()[0]) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *s = malloc(size);
    if (!s) return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0'; /* the string ends at its first NUL or here */

    model(s);
    dataset(s, data[0]);
    bnn_lik_kind lk;
    if (bnn_lik_parse(s, &lk) == 0 && strcmp(bnn_lik_name(lk), s)) abort();
    bnn_method me;
    if (bnn_method_parse(s, &me) == 0 && strcmp(bnn_method_name(me), s)) abort();
    int64_t x;
    if (bnn_parse_int(s, &x) == 0) {
        char back[32];
        snprintf(back, sizeof back, "%lld", (long long)x);
        /* Leading zeros and "-0" are accepted; otherwise the number prints back as written. */
        if (strcmp(back, s) && s[0] != '0' && strncmp(s, "-0", 2)) abort();
    }
    free(s);
    return 0;
}
