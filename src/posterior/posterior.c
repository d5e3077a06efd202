/* Posterior families over the flat parameter vector. This release has the point mass and the
 * diagonal Gaussian; Kronecker-factored, full, low-rank and mixture families join them later
 * behind the same functions. */
#include "core/internal.h"

#include <math.h>
#include <string.h>

struct bnn_posterior {
    bnn_posterior_kind kind;
    int64_t n;
    float *mean;
    float *std;      /* diagonal Gaussian only */
    bnn_laplace *la; /* Laplace only: the approximation over a subset of the weights */
};

int bnn_posterior_new(bnn_posterior **out, bnn_posterior_kind kind, int64_t n) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_posterior_new: out is NULL");
    *out = NULL;
    if (n < 1) return bnn__error(BNN_EINVAL, "a posterior needs at least one parameter");
    if (kind != BNN_POSTERIOR_POINT && kind != BNN_POSTERIOR_DIAG)
        return bnn__error(BNN_EINVAL, "posterior kind %d cannot be made empty (a Laplace "
                          "posterior comes from bnn_posterior_from_laplace)", (int)kind);
    bnn_posterior *q = calloc(1, sizeof *q);
    if (!q) return bnn__error(BNN_ENOMEM, "out of memory");
    q->kind = kind, q->n = n;
    size_t bytes = bnn__bytes(n, sizeof(float));
    q->mean = bytes ? bnn__alloc(bytes) : NULL;
    if (kind == BNN_POSTERIOR_DIAG) q->std = bytes ? bnn__alloc(bytes) : NULL;
    if (!q->mean || (kind == BNN_POSTERIOR_DIAG && !q->std)) {
        bnn_posterior_free(q);
        return bnn__error(BNN_ENOMEM, "cannot allocate a posterior over %lld parameters",
                          (long long)n);
    }
    *out = q;
    return 0;
}

void bnn_posterior_free(bnn_posterior *q) {
    if (!q) return;
    bnn__free(q->mean);
    bnn__free(q->std);
    bnn_laplace_free(q->la);
    free(q);
}

bnn_posterior_kind bnn_posterior_kind_of(const bnn_posterior *q) { return q->kind; }
int64_t bnn_posterior_n(const bnn_posterior *q) { return q->n; }

int64_t bnn__posterior_first_varied(const bnn_posterior *q) {
    if (q->kind == BNN_POSTERIOR_POINT) return q->n;
    if (q->kind != BNN_POSTERIOR_LAPLACE) return 0;
    const bnn_curv *c = bnn_laplace_curv(q->la);
    int64_t first = q->n;
    for (int64_t sg = 0; sg < bnn_curv_nsegments(c); sg++) {
        int64_t off = 0, len = 0;
        bnn_curv_segment(c, sg, &off, &len);
        if (off < first) first = off;
    }
    return first;
}
float *bnn_posterior_mean(bnn_posterior *q) { return q->mean; }
float *bnn_posterior_std(bnn_posterior *q) { return q->std; }
const float *bnn_posterior_cmean(const bnn_posterior *q) { return q->mean; }
const float *bnn_posterior_cstd(const bnn_posterior *q) { return q->std; }

int bnn_posterior_sample(const bnn_posterior *q, bnn_rng *rng, float *theta) {
    if (!q || !rng || !theta)
        return bnn__error(BNN_EINVAL, "bnn_posterior_sample: q, rng and theta are required");
    const int64_t n = q->n;
    if (q->kind == BNN_POSTERIOR_POINT) {
        memcpy(theta, q->mean, (size_t)n * sizeof(float));
        return 0;
    }
    if (q->kind == BNN_POSTERIOR_LAPLACE) {
        /* The subset is drawn from the Laplace Gaussian; every other weight keeps its MAP value.
         * One run of the flat vector is sampled in place; several (a chosen set of layers) are
         * sampled in subset order, then put into their runs. */
        memcpy(theta, q->mean, (size_t)n * sizeof(float));
        const bnn_curv *c = bnn_laplace_curv(q->la);
        const bool one = bnn_curv_nsegments(c) == 1;
        float *sub = one ? theta + bnn_curv_offset(c)
                         : bnn__alloc_array(bnn_curv_nparams(c), sizeof(float));
        if (!sub) return bnn__error(BNN_ENOMEM, "bnn_posterior_sample: out of memory");
        int rc = bnn_laplace_sample(q->la, rng, sub);
        if (!one) {
            if (!rc) bnn_curv_scatter(c, sub, theta);
            bnn__free(sub);
        }
        return rc;
    }
    /* θ = m + σ ⊙ ε, with ε drawn straight into θ so no scratch is needed. */
    bnn_rng_normal(rng, theta, n);
    const float *m = q->mean, *s = q->std;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) theta[i] = m[i] + s[i] * theta[i];
    return 0;
}

void bnn_posterior_std_summary(const bnn_posterior *q, double *min, double *mean, double *max) {
    double lo = 0.0, avg = 0.0, hi = 0.0;
    if (q && q->kind == BNN_POSTERIOR_DIAG && q->n > 0) {
        double sum = 0.0;
        lo = INFINITY;
        for (int64_t i = 0; i < q->n; i++) {
            double v = q->std[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        avg = sum / (double)q->n;
        if (isnan(avg)) lo = hi = NAN; /* a NaN std: all three say so (min and max skipped it) */
    }
    if (min) *min = lo;
    if (mean) *mean = avg;
    if (max) *max = hi;
}

int bnn_posterior_from_laplace(bnn_posterior **out, const bnn_model *m, bnn_laplace *la) {
    return bnn__posterior_from_laplace(out, m, la, "Laplace posterior");
}

int bnn__posterior_from_laplace(bnn_posterior **out, const bnn_model *m, bnn_laplace *la,
                                const char *what) {
    if (!out || !m || !la) {
        bnn_laplace_free(la); /* owned whatever happens, as documented */
        return bnn__error(BNN_EINVAL, "bnn_posterior_from_laplace: out, m and la are required");
    }
    *out = NULL;
    const int64_t n = bnn_model_nparams(m);
    /* The subset must be whole Linear layers of m, else samples would perturb parts of layers. */
    int rc = bnn__laplace_check_model(la, m, what);
    if (rc) {
        bnn_laplace_free(la);
        return rc;
    }
    bnn_posterior *q;
    rc = bnn_posterior_new(&q, BNN_POSTERIOR_POINT, n);
    if (rc) {
        bnn_laplace_free(la);
        return rc;
    }
    q->kind = BNN_POSTERIOR_LAPLACE;
    q->la = la;
    memcpy(q->mean, bnn_model_cparams(m), (size_t)n * sizeof(float));
    *out = q;
    return 0;
}

const bnn_laplace *bnn_posterior_laplace(const bnn_posterior *q) {
    return q->kind == BNN_POSTERIOR_LAPLACE ? q->la : NULL;
}
