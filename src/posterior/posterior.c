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
float *bnn_posterior_mean(bnn_posterior *q) { return q->mean; }
float *bnn_posterior_std(bnn_posterior *q) { return q->std; }
const float *bnn_posterior_cmean(const bnn_posterior *q) { return q->mean; }
const float *bnn_posterior_cstd(const bnn_posterior *q) { return q->std; }

void bnn_posterior_sample(const bnn_posterior *q, bnn_rng *rng, float *theta) {
    const int64_t n = q->n;
    if (q->kind == BNN_POSTERIOR_POINT) {
        memcpy(theta, q->mean, (size_t)n * sizeof(float));
        return;
    }
    if (q->kind == BNN_POSTERIOR_LAPLACE) {
        /* The subset is drawn from the Laplace Gaussian; every other weight keeps its MAP value. */
        memcpy(theta, q->mean, (size_t)n * sizeof(float));
        const bnn_curv *c = bnn_laplace_curv(q->la);
        if (bnn_curv_nsegments(c) == 1) { /* one run: sampled in place */
            int rc = bnn_laplace_sample(q->la, rng, theta + bnn_curv_offset(c));
            BNN_ASSERT(rc == 0);
            return;
        }
        /* Several runs (a chosen set of layers): the subset's sample, then into its segments. */
        float *sub = bnn__alloc(bnn__bytes(bnn_curv_nparams(c), sizeof(float)));
        BNN_ASSERT(sub);
        int rc = bnn_laplace_sample(q->la, rng, sub);
        BNN_ASSERT(rc == 0);
        bnn_curv_scatter(c, sub, theta);
        bnn__free(sub);
        return;
    }
    /* θ = m + σ ⊙ ε, with ε drawn straight into θ so no scratch is needed. */
    bnn_rng_normal(rng, theta, n);
    const float *m = q->mean, *s = q->std;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) theta[i] = m[i] + s[i] * theta[i];
}

void bnn_posterior_std_summary(const bnn_posterior *q, double *min, double *mean, double *max) {
    *min = *mean = *max = 0.0;
    if (q->kind != BNN_POSTERIOR_DIAG) return;
    double lo = INFINITY, hi = 0.0, sum = 0.0;
    for (int64_t i = 0; i < q->n; i++) {
        double v = q->std[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    *min = lo, *mean = sum / (double)q->n, *max = hi;
}

int bnn_posterior_from_laplace(bnn_posterior **out, const bnn_model *m, bnn_laplace *la) {
    *out = NULL;
    const bnn_curv *c = bnn_laplace_curv(la);
    const int64_t n = bnn_model_nparams(m);
    int64_t last_off = 0, last_len = 0; /* segments are ascending: the last one ends the subset */
    bnn_curv_segment(c, bnn_curv_nsegments(c) - 1, &last_off, &last_len);
    if (bnn_curv_offset(c) < 0 || last_off + last_len > n) {
        bnn_laplace_free(la);
        return bnn__error(BNN_ESHAPE,
                          "the Laplace subset [%lld, %lld) does not fit a model of "
                          "%lld parameters",
                          (long long)bnn_curv_offset(c), (long long)(last_off + last_len),
                          (long long)n);
    }
    /* Each segment must start at a Linear layer's weight and end with a Linear layer's bias
     * (the parameters of whole layers), else samples would perturb parts of layers. */
    for (int64_t sg = 0; sg < bnn_curv_nsegments(c); sg++) {
        int64_t so = 0, sl = 0;
        bnn_curv_segment(c, sg, &so, &sl);
        bool starts = false, ends = false;
        for (int64_t i = 0; i < bnn_model_nlayers(m); i++) {
            int64_t woff, wshape[2], boff, blen;
            if (strcmp(bnn_model_layer_kind(m, i), "linear") != 0 ||
                bnn_model_layer_tensors(m, i, &woff, wshape, &boff, &blen))
                continue;
            starts |= woff == so;
            ends |= boff + blen == so + sl;
        }
        if (!starts || !ends) {
            bnn_laplace_free(la);
            return bnn__error(BNN_ESHAPE,
                              "the Laplace subset's parameters %lld..%lld are not whole Linear "
                              "layers of the model (%s)",
                              (long long)so, (long long)(so + sl - 1), bnn_model_spec(m));
        }
    }
    bnn_posterior *q;
    int rc = bnn_posterior_new(&q, BNN_POSTERIOR_POINT, n);
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
