/* Built-in toy problems: two moons (classification), a 1-D sine with a gap and a 1-D sine with
 * input-dependent noise (regression). */
#include "data/data.h"

#include <math.h>

static const double PI = 3.14159265358979323846;

/* numpy.linspace(start, stop, m)[i]: step (stop − start)/(m − 1), with the last point set to stop
 * exactly, so the moons' end points match scikit-learn's to the last bit. */
static double linspace_at(double start, double stop, int64_t m, int64_t i) {
    if (m == 1) return start;
    if (i == m - 1) return stop;
    return start + (double)i * ((stop - start) / (double)(m - 1));
}

int bnn__toy_moons_stream(bnn_dataset **out, int64_t n, double noise, uint64_t seed,
                          uint64_t stream) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_toy_moons: out is NULL");
    *out = NULL;
    if (n < 2)
        return bnn__error(BNN_EINVAL, "moons: need at least 2 points (got %lld)", (long long)n);
    if (!(noise >= 0.0) || !isfinite(noise))
        return bnn__error(BNN_EINVAL, "moons: noise must be a finite number >= 0 (got %g)", noise);
    bnn_dataset *ds = NULL;
    int rc = bnn_dataset_new(&ds, BNN_TASK_CLASSIFICATION, n, 2, 0, 2);
    if (rc) return rc;

    /* scikit-learn's make_moons: n/2 (rounded down) points on the upper outer half-circle
     * (cos t, sin t), label 0, and the rest on the lower inner one (1 − cos t, 1 − sin t − 0.5),
     * label 1, with t = linspace(0, π) on each; then the rows are shuffled and N(0, noise²) is
     * added to every coordinate, in that order as scikit-learn does. */
    const int64_t n_out = n / 2, n_in = n - n_out;
    for (int64_t i = 0; i < n_out; i++) {
        double t = linspace_at(0.0, PI, n_out, i);
        ds->x[2 * i] = (float)cos(t);
        ds->x[2 * i + 1] = (float)sin(t);
        ds->labels[i] = 0;
    }
    for (int64_t i = 0; i < n_in; i++) {
        double t = linspace_at(0.0, PI, n_in, i);
        ds->x[2 * (n_out + i)] = (float)(1.0 - cos(t));
        ds->x[2 * (n_out + i) + 1] = (float)(1.0 - sin(t) - 0.5);
        ds->labels[n_out + i] = 1;
    }

    /* One stream serves the shuffle and then the noise, so a (seed, stream) pair fixes both. */
    bnn_rng rng = bnn_rng_make(seed, stream);
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher–Yates, as in bnn_permutation */
        int64_t j = (int64_t)bnn_rng_below(&rng, (uint64_t)i + 1);
        float x0 = ds->x[2 * i], x1 = ds->x[2 * i + 1];
        int32_t y = ds->labels[i];
        ds->x[2 * i] = ds->x[2 * j], ds->x[2 * i + 1] = ds->x[2 * j + 1];
        ds->labels[i] = ds->labels[j];
        ds->x[2 * j] = x0, ds->x[2 * j + 1] = x1, ds->labels[j] = y;
    }
    if (noise > 0.0) {
        float *eps = bnn__alloc_array(2 * n, sizeof(float));
        if (!eps) {
            bnn_dataset_free(ds);
            return bnn__error(BNN_ENOMEM, "moons: cannot allocate %lld noise values",
                              (long long)(2 * n));
        }
        bnn_rng_normal(&rng, eps, 2 * n);
        for (int64_t i = 0; i < 2 * n; i++)
            ds->x[i] = (float)((double)ds->x[i] + noise * eps[i]);
        bnn__free(eps);
    }
    *out = ds;
    return 0;
}

int bnn_toy_moons(bnn_dataset **out, int64_t n, double noise, uint64_t seed) {
    return bnn__toy_moons_stream(out, n, noise, seed, BNN__STREAM_MOONS_TRAIN);
}

int bnn_toy_sine_gap(bnn_dataset **out, int64_t n, double noise, uint64_t seed, bool test) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_toy_sine_gap: out is NULL");
    *out = NULL;
    if (n < 2)
        return bnn__error(BNN_EINVAL, "sine-gap: need at least 2 points (got %lld)", (long long)n);
    if (!test && (!(noise >= 0.0) || !isfinite(noise)))
        return bnn__error(BNN_EINVAL, "sine-gap: noise must be a finite number >= 0 (got %g)",
                          noise);
    bnn_dataset *ds = NULL;
    int rc = bnn_dataset_new(&ds, BNN_TASK_REGRESSION, n, 1, 1, 0);
    if (rc) return rc;

    if (test) {
        /* The test set is the noise-free function on an even grid over [-6, 6]; it uses neither
         * noise nor seed, so every run is scored on the same points, the gap (-1, 1) and the
         * regions beyond ±4 included, where a good posterior should be uncertain. */
        for (int64_t i = 0; i < n; i++) {
            double x = linspace_at(-6.0, 6.0, n, i);
            ds->x[i] = (float)x;
            ds->targets[i] = (float)sin(x);
        }
        *out = ds;
        return 0;
    }

    /* Training inputs: the first n/2 (rounded down) uniform on [-4, -1], the rest on [1, 4]. The
     * uniforms lie strictly inside (0, 1), so no input falls in the gap or on its edge. The
     * uniforms are drawn first, then the noise, from one stream. */
    float *u = bnn__alloc_array(2 * n, sizeof(float));
    if (!u) {
        bnn_dataset_free(ds);
        return bnn__error(BNN_ENOMEM, "sine-gap: cannot allocate %lld draws", (long long)(2 * n));
    }
    float *eps = u + n;
    bnn_rng rng = bnn_rng_make(seed, BNN__STREAM_SINE_GAP_TRAIN);
    bnn_rng_uniform(&rng, u, n);
    bnn_rng_normal(&rng, eps, n);
    const int64_t n_left = n / 2;
    for (int64_t i = 0; i < n; i++) {
        double x = (i < n_left ? -4.0 : 1.0) + 3.0 * (double)u[i];
        ds->x[i] = (float)x;
        ds->targets[i] = (float)(sin(x) + noise * (double)eps[i]);
    }
    bnn__free(u);
    *out = ds;
    return 0;
}

double bnn_toy_sine_hetero_sigma(double x) { return 0.1 + 0.2 * fabs(x); }

int bnn_toy_sine_hetero(bnn_dataset **out, int64_t n, uint64_t seed, bool test) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_toy_sine_hetero: out is NULL");
    *out = NULL;
    if (n < 2)
        return bnn__error(BNN_EINVAL, "sine-hetero: need at least 2 points (got %lld)",
                          (long long)n);
    bnn_dataset *ds = NULL;
    int rc = bnn_dataset_new(&ds, BNN_TASK_REGRESSION, n, 1, 1, 0);
    if (rc) return rc;
    float *u = bnn__alloc_array(2 * n, sizeof(float));
    if (!u) {
        bnn_dataset_free(ds);
        return bnn__error(BNN_ENOMEM, "sine-hetero: cannot allocate %lld draws",
                          (long long)(2 * n));
    }
    /* The uniforms first, then the noise, from the split's own stream. */
    float *eps = u + n;
    bnn_rng rng = bnn_rng_make(seed, test ? BNN__STREAM_SINE_HETERO_TEST
                                          : BNN__STREAM_SINE_HETERO_TRAIN);
    bnn_rng_uniform(&rng, u, n);
    bnn_rng_normal(&rng, eps, n);
    for (int64_t i = 0; i < n; i++) {
        const double x = -3.0 + 6.0 * (double)u[i];
        ds->x[i] = (float)x;
        ds->targets[i] = (float)(sin(x) + bnn_toy_sine_hetero_sigma(x) * (double)eps[i]);
    }
    bnn__free(u);
    *out = ds;
    return 0;
}
