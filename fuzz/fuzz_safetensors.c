/* libFuzzer harness: safetensors files and everything bnn reads out of one.
 *
 * The input is a whole file image. It goes through bnn_st_parse, and when that accepts it:
 *  - every tensor is looked up (bnn_st_at, bnn_st_get) and converted to f32 and f64;
 *  - every metadata pair is read (bnn_st_meta_at, bnn_st_meta) and its value parsed as the
 *    readers of metadata do (bnn_parse_int);
 *  - the model (bnn_model_from_st) and its posterior (bnn_posterior_load: point, diag, and the
 *    Laplace families diag / kron / full / lowrank with segments, layers and per-layer priors)
 *    are loaded; a loaded posterior is sampled once, a Laplace one asked for its log-det, and
 *    the predictive of two inputs is computed as `bnn eval` does (at the mean / the GLM
 *    predictive for Laplace, then with 2 weight samples), so an inconsistent posterior accepted
 *    from a file shows up as a sanitizer error;
 *  - the file is copied tensor by tensor and pair by pair through bnn_st_writer (as
 *    `bnn calibrate` copies a model file) and the copy must read back with the same counts;
 *  - a file with bnn.state.step (a training checkpoint) is resumed with bnn_trainer_resume
 *    against the two-moons data (resume takes a path, so the image is written to a temp file);
 *  - bnn_st_drop_tensors, then the metadata again (what `bnn eval` does).
 * A custom mutator keeps the 8-byte header length in step with the JSON header most of the
 * time (mutating the header text or the data area and rewriting the length), so mutations of
 * metadata and tensor entries reach the loaders instead of failing the length check; one
 * mutation in eight is a plain byte-level one of the whole image, for the length checks.
 * Only the public API (bnn.h) is used. Temp files live in a per-process directory under
 * /dev/shm (tmpfs: bnn's atomic writer fsyncs, which costs nothing there) or /tmp. */
#include "bnn.h"

#include "fuzz_util.h"

#include <math.h>

/* Tensors above this many elements are not converted: the buffers would be the harness's
 * allocation, not the library's (a 64 KiB input cannot hold more data than that anyway). */
#define MAX_CONVERT ((int64_t)1 << 24)
/* Sampling a posterior is O(P) for diag and up to O(P^2) for Laplace; keep executions fast. */
#define MAX_SAMPLE_PARAMS 4096

static const char *g_ckpt, *g_copy;
static bnn_dataset *g_moons;

/* The predictive for two inputs (zeros, then ones), as bnn eval / bnn predict compute it: at the
 * mean (for a Laplace posterior the GLM predictive with the probit) and with two samples. */
static void predict(bnn_model *m, const bnn_posterior *q, bnn_task task) {
    const int64_t n = 2, d = bnn_model_input_dim(m), c = bnn_model_pred_dim(m, task);
    if (d < 1 || c < 1 || d > 4096 || c > 4096) return;
    float *x = calloc((size_t)(n * d), sizeof *x);
    double *a = calloc((size_t)(n * c), sizeof *a), *b = calloc((size_t)(n * c), sizeof *b);
    double *mi = calloc((size_t)n, sizeof *mi);
    if (x && a && b && mi) {
        for (int64_t i = d; i < n * d; i++) x[i] = 1.0f;
        struct bnn_predict_params p = bnn_predict_default_params();
        for (int s = 0; s < 2; s++) {
            p.samples = s ? 2 : 0;
            if (task == BNN_TASK_CLASSIFICATION) (void)bnn_predict(m, q, x, n, task, &p, a, mi, NULL, NULL);
            else (void)bnn_predict(m, q, x, n, task, &p, NULL, NULL, a, b);
        }
        /* The Laplace bridge's links at the mean (a GLM predictive of a damaged posterior can
         * give the bridge any variances). */
        if (task == BNN_TASK_CLASSIFICATION) {
            for (int norm = 0; norm < 2; norm++) {
                p.samples = 0, p.link = norm ? BNN_LINK_BRIDGE_NORM : BNN_LINK_BRIDGE;
                p.log_probs = norm;
                if (bnn_predict(m, q, x, n, task, &p, a, mi, NULL, NULL)) continue;
                /* a success is a distribution per example, with its mutual information */
                for (int64_t i = 0; i < n; i++) {
                    double sum = 0;
                    for (int64_t j = 0; j < c; j++) sum += norm ? exp(a[i * c + j]) : a[i * c + j];
                    if (!(fabs(sum - 1.0) < 1e-9) || !(mi[i] >= 0.0)) abort();
                }
            }
        }
    }
    free(x), free(a), free(b), free(mi);
}

static void free_moons(void) { bnn_dataset_free(g_moons); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_ckpt = fuzz_path("ckpt.safetensors");
    g_copy = fuzz_path("copy.safetensors");
    bnn_set_threads(1);
    /* The data a checkpoint is resumed against: moons (2 features, 2 classes, 1000 rows). */
    if (bnn_data_load(&g_moons, "moons", NULL)) abort();
    atexit(free_moons);
    return 0;
}

/* Copies st through the writer (all metadata, all tensors) and reads the copy back. A file the
 * reader accepted must survive the copy: any failure to write it or read it back is reported. */
static void roundtrip(const bnn_st *st) {
    bnn_st_writer *w;
    if (bnn_st_writer_new(&w)) return;
    int rc = 0;
    for (int64_t i = 0; !rc && i < bnn_st_meta_count(st); i++) {
        const char *k, *v;
        if (!(rc = bnn_st_meta_at(st, i, &k, &v))) rc = bnn_st_writer_meta(w, k, v);
    }
    for (int64_t i = 0; !rc && i < bnn_st_count(st); i++) {
        bnn_st_tensor t;
        if ((rc = bnn_st_at(st, i, &t))) break;
        rc = bnn_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data);
    }
    if (!rc) rc = bnn_st_writer_save(w, g_copy);
    bnn_st_writer_free(w);
    if (rc) {
        fprintf(stderr, "roundtrip: a file bnn_st_parse accepted cannot be copied: %s\n",
                bnn_last_error());
        abort();
    }
    bnn_st *back;
    if ((rc = bnn_st_read(&back, g_copy))) {
        fprintf(stderr, "roundtrip: the copy does not read back: %s\n", bnn_last_error());
        abort();
    }
    if (bnn_st_count(back) != bnn_st_count(st) || bnn_st_meta_count(back) != bnn_st_meta_count(st)) {
        fprintf(stderr, "roundtrip: the copy holds other counts\n");
        abort();
    }
    bnn_st_free(back);
}

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint64_t hlen = 0;
    for (int i = 7; size >= 8 && i >= 0; i--) hlen = hlen << 8 | data[i];
    if (size < 8 || seed % 8 == 0 || hlen > size - 8 || max_size < size)
        return LLVMFuzzerMutate(data, size, max_size);
    const size_t dlen = size - 8 - (size_t)hlen;
    if (seed % 8 == 1) { /* the data area only */
        size_t nd = LLVMFuzzerMutate(data + 8 + hlen, dlen, max_size - 8 - (size_t)hlen);
        return 8 + (size_t)hlen + nd;
    }
    /* The header text: mutated in a copy, then the data moved behind it and the length set. */
    const size_t cap = max_size - 8 - dlen;
    uint8_t *h = malloc(cap ? cap : 1), *d = malloc(dlen ? dlen : 1);
    if (!h || !d) {
        free(h), free(d);
        return LLVMFuzzerMutate(data, size, max_size);
    }
    memcpy(h, data + 8, (size_t)hlen);
    memcpy(d, data + 8 + hlen, dlen);
    size_t nh = LLVMFuzzerMutate(h, (size_t)hlen, cap);
    for (int i = 0; i < 8; i++) data[i] = (uint8_t)((uint64_t)nh >> (8 * i));
    memcpy(data + 8, h, nh);
    memcpy(data + 8 + nh, d, dlen);
    free(h), free(d);
    return 8 + nh + dlen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bnn_st *st = NULL;
    if (bnn_st_parse(&st, data, size, "fuzz")) return 0;

    /* Tensors: lookup by index and by name, conversion of every dtype to f32 and f64. */
    for (int64_t i = 0; i < bnn_st_count(st); i++) {
        bnn_st_tensor t, u;
        if (bnn_st_at(st, i, &t)) abort();
        if (bnn_st_get(st, t.name, &u) || u.data != t.data) abort();
        if (t.numel < 0 || t.numel > MAX_CONVERT) continue;
        size_t n = (size_t)t.numel ? (size_t)t.numel : 1;
        float *f = malloc(n * sizeof *f);
        double *d = malloc(n * sizeof *d);
        if (f && d) {
            if (bnn_st_to_f32(&t, f) || bnn_st_to_f64(&t, d)) abort();
        }
        free(f), free(d);
    }
    /* Metadata: by index and by key; values parsed as bnn reads counts. */
    for (int64_t i = 0; i < bnn_st_meta_count(st); i++) {
        const char *k, *v;
        int64_t x;
        if (bnn_st_meta_at(st, i, &k, &v)) abort();
        if (bnn_st_meta(st, k) != v) abort();
        (void)bnn_parse_int(v, &x);
    }

    /* The model and its posterior. */
    bnn_model *m = NULL;
    bnn_task task;
    if (bnn_model_from_st(&m, st, "fuzz", &task) == 0) {
        (void)bnn_model_pred_dim(m, task);
        bnn_posterior *q = NULL;
        if (bnn_posterior_load(&q, m, st) == 0) {
            double lo, mean, hi;
            bnn_posterior_std_summary(q, &lo, &mean, &hi);
            const bnn_laplace *la = bnn_posterior_laplace(q);
            if (la) (void)bnn_laplace_logdet(la);
            const int64_t np = bnn_model_nparams(m);
            if (np <= MAX_SAMPLE_PARAMS) {
                float *theta = malloc((size_t)np * sizeof *theta);
                bnn_rng rng = bnn_rng_make(1, 2);
                if (theta) (void)bnn_posterior_sample(q, &rng, theta);
                free(theta);
                predict(m, q, task);
            }
            bnn_posterior_free(q);
        }
        bnn_model_free(m);
    }

    /* The copy `bnn calibrate` makes of a model file. */
    roundtrip(st);

    /* A training checkpoint: resumed against the moons data. */
    if (bnn_st_meta(st, "bnn.state.step")) {
        fuzz_write(g_ckpt, data, size, 0, 0);
        bnn_trainer *tr = NULL;
        bnn_model *rm = NULL;
        if (bnn_trainer_resume(&tr, &rm, g_ckpt, g_moons, 0) == 0) {
            bnn_posterior *q = NULL;
            if (bnn_trainer_posterior(tr, &q) == 0) bnn_posterior_free(q);
        }
        bnn_trainer_free(tr);
        bnn_model_free(rm);
    }

    /* Dropping the tensors keeps the metadata readable. */
    bnn_st_drop_tensors(st);
    if (bnn_st_count(st) != 0) abort();
    for (int64_t i = 0; i < bnn_st_meta_count(st); i++) {
        const char *k, *v;
        if (bnn_st_meta_at(st, i, &k, &v) || bnn_st_meta(st, k) != v) abort();
    }
    bnn_st_free(st);
    return 0;
}
