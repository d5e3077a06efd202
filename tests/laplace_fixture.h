/* Loading the laplace fixtures (the .safetensors files of fixtures/laplace) for the curvature and Laplace
 * tests: a tensor as doubles, a scalar, and the fixture's problem — the model with the MAP
 * weights theta_map and its training data. Include after check.h and core/internal.h. */
#ifndef BNN_LAPLACE_FIXTURE_H
#define BNN_LAPLACE_FIXTURE_H

#include <stdlib.h>
#include <string.h>

/* A tensor of the fixture as a malloc'ed double array; *numel (may be NULL) receives its size. */
static inline double *st_f64(const bnn_st *st, const char *name, int64_t *numel) {
    bnn_st_tensor t;
    if (bnn_st_get(st, name, &t) != 0) {
        fprintf(stderr, "fixture tensor %s missing: %s\n", name, bnn_last_error());
        REQUIRE(0);
    }
    double *v = malloc((size_t)(t.numel > 0 ? t.numel : 1) * sizeof *v);
    REQUIRE(v);
    REQUIRE(bnn_st_to_f64(&t, v) == 0);
    if (numel) *numel = t.numel;
    return v;
}

static inline double scalar(const bnn_st *st, const char *name) {
    double *v = st_f64(st, name, NULL), s = v[0];
    free(v);
    return s;
}

/* A random problem for the curvature tests: the model `spec` with its initial weights doubled
 * (so every layer matters) and n standard-normal inputs with random labels or targets. */
static inline void random_problem(bnn_model **m, bnn_dataset **ds, const char *spec, bnn_task task,
                                  int64_t n, uint64_t seed) {
    REQUIRE(bnn_model_new(m, spec) == 0);
    bnn_model_init(*m, seed);
    float *w = bnn_model_params(*m);
    for (int64_t i = 0; i < bnn_model_nparams(*m); i++)
        w[i] *= 2.0f;
    const int64_t d = bnn_model_input_dim(*m), k = bnn_model_output_dim(*m);
    REQUIRE(bnn_dataset_new(ds, task, n, d, k, k) == 0);
    bnn_rng rng = bnn_rng_make(seed, 99);
    bnn_rng_normal(&rng, bnn_dataset_x(*ds), n * d);
    if (task == BNN_TASK_CLASSIFICATION)
        for (int64_t i = 0; i < n; i++)
            bnn_dataset_labels(*ds)[i] = (int32_t)bnn_rng_below(&rng, (uint64_t)k);
    else
        bnn_rng_normal(&rng, bnn_dataset_targets(*ds), n * k);
}

/* After a forward pass of one example: J (K × ncols), row c = ∂f_c/∂θ at the parameters idx
 * (all np of them when idx is NULL), one backward pass per output. grad: np floats of scratch. */
static inline void example_jacobian(bnn_model *m, float *grad, double *J, const int64_t *idx,
                                    int64_t ncols) {
    const int64_t np = bnn_model_nparams(m), K = bnn_model_output_dim(m);
    float dout[64];
    REQUIRE(K <= 64);
    for (int64_t c = 0; c < K; c++) {
        for (int64_t j = 0; j < K; j++)
            dout[j] = j == c;
        memset(grad, 0, (size_t)np * sizeof *grad);
        bnn_model_backward(m, bnn_model_cparams(m), dout, grad);
        for (int64_t i = 0; i < ncols; i++)
            J[c * ncols + i] = grad[idx ? idx[i] : i];
    }
}

struct problem {
    bnn_st *st;
    bnn_model *m;
    bnn_dataset *ds;
    bool cls;
};

/* The model (weights theta_map) and training data of a fixture file ("cls_*" or "reg_*"); false
 * when the file cannot be read (no fixtures). */
static inline bool load_problem(struct problem *pr, const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/laplace/%s.safetensors", BNN_FIXTURES, file);
    if (bnn_st_read(&pr->st, path) != 0) {
        fprintf(stderr, "note: %s not readable; case skipped\n", path);
        check_skips++;
        return false;
    }
    const bool cls = pr->cls = file[0] == 'c';
    REQUIRE(bnn_model_new(&pr->m, cls ? "mlp:4-12-3:tanh" : "mlp:1-16-1:tanh") == 0);
    int64_t np, nx, ny;
    double *theta = st_f64(pr->st, "theta_map", &np);
    REQUIRE(np == bnn_model_nparams(pr->m));
    for (int64_t i = 0; i < np; i++) bnn_model_params(pr->m)[i] = (float)theta[i];
    free(theta);
    double *X = st_f64(pr->st, "X", &nx), *y = st_f64(pr->st, "y", &ny);
    const int64_t d = bnn_model_input_dim(pr->m), n = nx / d;
    REQUIRE(bnn_dataset_new(&pr->ds, cls ? BNN_TASK_CLASSIFICATION : BNN_TASK_REGRESSION, n, d, 1,
                            3) == 0);
    for (int64_t i = 0; i < nx; i++) bnn_dataset_x(pr->ds)[i] = (float)X[i];
    REQUIRE(ny == n);
    for (int64_t i = 0; i < n; i++) {
        if (cls) bnn_dataset_labels(pr->ds)[i] = (int32_t)y[i];
        else bnn_dataset_targets(pr->ds)[i] = (float)y[i];
    }
    free(X), free(y);
    REQUIRE(bnn_dataset_validate(pr->ds) == 0);
    return true;
}

static inline void free_problem(struct problem *pr) {
    bnn_st_free(pr->st);
    bnn_model_free(pr->m);
    bnn_dataset_free(pr->ds);
    memset(pr, 0, sizeof *pr);
}

#endif
