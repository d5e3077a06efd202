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
    if (bnn_st_read(&pr->st, path) != 0) return false;
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
