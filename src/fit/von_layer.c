/* VON with a full-covariance Gaussian over the last Linear layer of a network (the layers below
 * kept at their weights): the Bayesian learning rule's Newton-like update (Khan & Rue, "The
 * Bayesian Learning Rule", JMLR 24(281), 2023, the variational online Newton section) with the
 * Hessian replaced by the generalised Gauss–Newton matrix, which makes it the variational
 * online Gauss–Newton method of Khan et al. ("Fast and Scalable Bayesian Deep Learning by
 * Weight-Perturbation in Adam", ICML 2018) in its full-covariance form. The update is
 * bnn_von_step's (von.c), written out here (von_update) to keep the prior's δI apart from the
 * curvature, to reuse the precision's Cholesky factor for the next draws and to retry a step at
 * a smaller rate; this file also supplies the expectations
 *   ḡ = E_q[∇ Σ_r ℓ_r],   H̄ = E_q[GGN of Σ_r ℓ_r]
 * over the training data — at the mean (the delta method) or by Monte Carlo over draws
 * θ = m + L⁻ᵀε from q = N(m, S⁻¹), S = L Lᵀ — and packs the result as a full Laplace-type
 * posterior (mean m, precision S) so that the GLM and sampling predictives, files, eval and
 * predict all apply to it.
 *
 * The layers below the last one are fixed, so they run once: the steps work on a one-layer model
 * with the layer's weights over a dataset of the layer's inputs. The GGN comes from
 * bnn_curv_compute (full structure), the gradient from a forward and backward pass of that
 * layer; both are summed over the examples in double. For a
 * linear-Gaussian model (one Linear layer, Gaussian likelihood) g and H are exact and one step
 * with ρ = 1 at the mean gives Bayesian linear regression's posterior whatever q was (with
 * draws, their averaged gradient lands near it, not on it); with the delta method
 * and ρ = 1 the steps are Newton's method on Σ ℓ + ½δ‖m‖², whose fixed point is the last
 * layer's MAP with the GGN Laplace posterior around it. */
#include "core/internal.h"
#include "data/data.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

/* The Philox stream of VON's weight draws (the others: data/data.h, BNN_STREAM_* in
 * core/internal.h, prediction's in predict.c). */
#define BNN__STREAM_VON ((uint64_t)6 << 32)

struct bnn_von_params bnn_von_default_params(void) {
    struct bnn_von_params p = {
        .steps = 10,
        .rho = 1.0,
        .prior_prec = 1.0,
        .mc_samples = 0,
        .seed = 0,
        .sigma = 1.0,
        .batch_size = 0,
        .max_bytes = 0.0, /* BNN_MEMORY_LIMIT, else the machine's memory */
    };
    return p;
}

static int check_params(const struct bnn_von_params *p) {
    if (p->steps < 1 || p->steps > 100000)
        return bnn__error(BNN_EINVAL, "bnn_von_last_layer: steps must be in [1, 100000] (got %lld)",
                          (long long)p->steps);
    if (!(p->rho > 0.0 && p->rho <= 1.0))
        return bnn__error(BNN_EINVAL, "bnn_von_last_layer: rho must be in (0, 1] (got %g)", p->rho);
    if (!(p->prior_prec > 0.0 && isfinite(p->prior_prec)))
        return bnn__error(BNN_EINVAL,
                          "bnn_von_last_layer: the prior precision must be positive and finite "
                          "(got %g)",
                          p->prior_prec);
    if (p->mc_samples < 0 || p->mc_samples > BNN_MAX_MC_SAMPLES)
        return bnn__error(BNN_EINVAL, "bnn_von_last_layer: mc-samples must be in [0, %d] (got %lld)",
                          BNN_MAX_MC_SAMPLES, (long long)p->mc_samples);
    if (!(p->sigma > 0.0 && isfinite(p->sigma)))
        return bnn__error(BNN_EINVAL, "bnn_von_last_layer: sigma must be positive and finite (got %g)", p->sigma);
    if (p->batch_size < 0)
        return bnn__error(BNN_EINVAL, "bnn_von_last_layer: batch size must be >= 0 (got %lld)",
                          (long long)p->batch_size);
    return 0; /* max_bytes: bnn__byte_limit, before any pass */
}

struct von_work {
    bnn_model *m;
    const bnn_dataset *ds;
    bnn_lik lik;
    struct bnn_curv_params cp;
    int64_t P, off, bmax;
    double hscale; /* 1/σ² for the Gaussian likelihood (the curvature is at σ = 1), else 1 */
    float *theta;  /* nparams: the weights the expectations are taken at */
    float *grad;   /* nparams: one batch's gradient */
    float *dout;   /* bmax × outputs */
};

/* g (P) = ∂/∂θ_subset Σ_r ℓ_r at w->theta, summed in double; *loss = Σ_r ℓ_r. The likelihood's
 * dout is the mean loss's gradient, so each batch's gradient is scaled by its size. */
static int subset_grad(struct von_work *w, double *g, double *loss) {
    const bnn_dataset *ds = w->ds;
    const int64_t N = ds->n, D = ds->d, np = bnn_model_nparams(w->m);
    memset(g, 0, (size_t)w->P * sizeof *g);
    double sum = 0.0;
    for (int64_t start = 0; start < N; start += w->bmax) {
        const int64_t b = N - start < w->bmax ? N - start : w->bmax;
        const float *f = bnn_model_forward(w->m, w->theta, ds->x + start * D, b, false, NULL);
        const double l = bnn_lik_loss(&w->lik, w->dout, f, ds->labels ? ds->labels + start : NULL,
                                      ds->targets ? ds->targets + start * ds->k : NULL, b,
                                      bnn_model_output_dim(w->m));
        if (!isfinite(l))
            return bnn__error(BNN_EDIVERGED, "the loss is not finite at the current weights");
        sum += l * (double)b;
        memset(w->grad, 0, (size_t)np * sizeof(float));
        bnn_model_backward(w->m, w->theta, w->dout, w->grad);
        for (int64_t i = 0; i < w->P; i++)
            g[i] += (double)w->grad[w->off + i] * (double)b;
    }
    *loss = sum;
    return 0;
}

/* The largest eigenvalue of a symmetric positive semi-definite A (P × P): 50 steps of the power
 * method, from a fixed vector with no structure (the vector of ones lies in a softmax layer's
 * null space: Σ_k of every output's weights moves no probability), times 1.1 since ‖Av‖/‖v‖
 * approaches λ_max from below. v, u: P scratch. */
static double lam_max(const double *A, int64_t P, double *v, double *u) {
    uint32_t s = 12345u;
    for (int64_t i = 0; i < P; i++) { /* a linear congruential sequence in [0.5, 1.5) */
        s = s * 1664525u + 1013904223u;
        v[i] = 0.5 + (double)(s >> 8) / 16777216.0;
    }
    double lam = 0.0;
    for (int it = 0; it < 50; it++) {
        bnn__dgemm_serial(u, A, v, P, 1, P, P, 1, 1, false, false, 0.0); /* u = A v */
        double nu = 0.0;
        for (int64_t i = 0; i < P; i++)
            nu += u[i] * u[i];
        double nv = 0.0;
        for (int64_t i = 0; i < P; i++)
            nv += v[i] * v[i];
        if (!(nu > 0.0)) return 0.0;
        lam = sqrt(nu / nv); /* ‖A v‖ / ‖v‖ */
        const double inv = 1.0 / sqrt(nu);
        for (int64_t i = 0; i < P; i++)
            v[i] = u[i] * inv;
    }
    return 1.1 * lam;
}

/* H (P × P) = the GGN of Σ_r ℓ_r over the subset at w->theta (scaled by hscale). The model's
 * weights are set to theta for bnn_curv_compute, which reads them. */
static int subset_ggn(struct von_work *w, double *H) {
    float *params = bnn_model_params(w->m);
    memcpy(params + w->off, w->theta + w->off, (size_t)w->P * sizeof(float));
    bnn_curv *c = NULL;
    int rc = bnn_curv_compute(&c, w->m, w->ds, &w->cp);
    if (rc) return rc;
    const double *Hc = bnn_curv_dense(c);
    const int64_t PP = w->P * w->P;
    for (int64_t i = 0; i < PP; i++)
        H[i] = Hc[i] * w->hscale;
    bnn_curv_free(c);
    return 0;
}

/* θ_subset = m + L⁻ᵀ ε, ε ~ N(0, I) from rng, with L the Cholesky factor of S held in Lc
 * (column-major lower triangle, as dpotrf leaves a row-major symmetric matrix read as
 * column-major; see von.c). eps: P scratch. */
static int draw(struct von_work *w, const double *m, const double *Lc, double *eps, float *e32,
                bnn_rng *rng) {
    const int64_t P = w->P;
    bnn_rng_normal(rng, e32, P);
    for (int64_t i = 0; i < P; i++)
        eps[i] = (double)e32[i];
    bnn__blas_pin();
    /* Lᵀ x = ε: with L lower in column-major, 'L', 'T' */
    lapack_int info = LAPACKE_dtrtrs_work(LAPACK_COL_MAJOR, 'L', 'T', 'N', (lapack_int)P, 1, Lc,
                                     (lapack_int)P, eps, (lapack_int)P);
    if (info != 0) return bnn__error(BNN_EINVAL, "the precision's triangular solve failed");
    for (int64_t i = 0; i < P; i++) {
        const float v = (float)(m[i] + eps[i]);
        if (!isfinite(v)) return bnn__error(BNN_EDIVERGED, "a weight sample is not finite");
        w->theta[w->off + i] = v;
    }
    return 0;
}

/* The steps never touch m: they work on lm, a one-layer model "mlp:in-out" with the last Linear
 * layer's weights (at offset off of m) and m's likelihood. The layers below it (L > 0) are
 * fixed, so they run once: *fds gets their outputs, the layer's inputs, for every example with
 * ds's labels or targets, and every step's passes then cost the layer alone. A linear model
 * (L = 0) is its own problem: *fds stays NULL and the steps read ds. */
static int layer_problem(bnn_model *m, const bnn_dataset *ds, int64_t L, int64_t off, int64_t in,
                         int64_t out, bnn_lik_kind lik, bnn_model **lm, bnn_dataset **fds) {
    char spec[64];
    snprintf(spec, sizeof spec, "mlp:%lld-%lld", (long long)in, (long long)out);
    int rc = bnn_model_new(lm, spec);
    if (!rc) rc = bnn_model_set_lik(*lm, lik);
    if (rc) return rc;
    memcpy(bnn_model_params(*lm), bnn_model_cparams(m) + off,
           (size_t)bnn_model_nparams(*lm) * sizeof(float));
    if (L == 0) return 0;
    if ((rc = bnn_dataset_new(fds, ds->task, ds->n, in, ds->k, ds->k))) return rc;
    bnn_dataset *f = *fds;
    if (ds->labels) memcpy(f->labels, ds->labels, (size_t)ds->n * sizeof(int32_t));
    if (ds->targets) memcpy(f->targets, ds->targets, (size_t)(ds->n * ds->k) * sizeof(float));
    const int64_t bmax = 1024;
    if ((rc = bnn_model_reserve(m, bmax))) return rc;
    const float *theta = bnn_model_cparams(m);
    for (int64_t start = 0; start < ds->n; start += bmax) {
        const int64_t b = ds->n - start < bmax ? ds->n - start : bmax;
        bnn_model_forward(m, theta, ds->x + start * ds->d, b, false, NULL);
        memcpy(f->x + start * in, bnn__model_act(m, L - 1), (size_t)(b * in) * sizeof(float));
    }
    return 0;
}

/* The summed loss as laplace-torch and bnn_curv_compute record it (bnn_curv_loss), from the
 * summed negative log-likelihood: the same for every likelihood but the Gaussian, whose
 * recorded loss is ½ Σ (f − y)² at σ = 1 without the normalising constant. */
static double recorded_loss(double nll, bnn_lik_kind lik, double sigma, int64_t n, int64_t k) {
    if (lik != BNN_LIK_GAUSSIAN) return nll;
    const double half_log_2pi = 0.91893853320467274178;
    return sigma * sigma * (nll - (double)(n * k) * (log(sigma) + half_log_2pi));
}

/* The objective of the delta method, Σ loss + ½δ‖θ‖², at the subset's weights in w->theta
 * (float: the weights the loss was taken at); *g and *loss as subset_grad gives them there. */
static int objective(struct von_work *w, double *g, double *loss, double delta, double *J) {
    int rc = subset_grad(w, g, loss);
    if (rc) return rc;
    double sq = 0.0;
    for (int64_t i = 0; i < w->P; i++)
        sq += (double)w->theta[w->off + i] * (double)w->theta[w->off + i];
    *J = *loss + 0.5 * delta * sq;
    return 0;
}

/* One VON step with rate r from q = N(m, (C + δI)⁻¹), C the curvature part of the precision
 * (the prior N(0, δ⁻¹I) kept apart, so C stays positive semi-definite however large δ is):
 *   Cn = (1 − r) C + r H,   mn = m − r (Cn + δI)⁻¹ (g + δ m),
 * which is bnn_von_step's update with S = C + δI, S0 = δI and m0 = 0. Lc receives the
 * Cholesky factor of Cn + δI (column-major lower triangle; row-major symmetric storage is also
 * column-major, see von.c), which the Monte-Carlo draws of the next step use. */
static int von_update(double *mn, double *Cn, double *Lc, const double *m, const double *C,
                      const double *H, const double *g, double delta, double r, int64_t P,
                      int64_t t) {
    for (int64_t i = 0; i < P * P; i++)
        Cn[i] = (1.0 - r) * C[i] + r * H[i];
    memcpy(Lc, Cn, (size_t)(P * P) * sizeof *Lc);
    for (int64_t i = 0; i < P; i++)
        Lc[i * P + i] += delta;
    for (int64_t i = 0; i < P; i++)
        mn[i] = g[i] + delta * m[i];
    if (!bnn__all_finite(Lc, P * P) || !bnn__all_finite(mn, P)) /* LAPACK takes NaN silently */
        return bnn__error(BNN_EINVAL, "step %lld: the new precision or the gradient is not finite",
                          (long long)t);
    bnn__blas_pin();
    if (LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)P, Lc, (lapack_int)P) != 0)
        return bnn__error(BNN_EINVAL,
                          "step %lld: the new precision is not positive definite "
                          "(a larger prior precision may help)",
                          (long long)t);
    if (LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', (lapack_int)P, 1, Lc, (lapack_int)P, mn,
                       (lapack_int)P) != 0)
        return bnn__error(BNN_EINVAL, "step %lld: the precision's solve failed", (long long)t);
    for (int64_t i = 0; i < P; i++) {
        mn[i] = m[i] - r * mn[i];
        if (!isfinite(mn[i]))
            return bnn__error(BNN_EDIVERGED, "step %lld: the mean is not finite", (long long)t);
    }
    return 0;
}

/* max |a − b| / max |b| (P values), the relative size of a step */
static double rel_change(const double *a, const double *b, int64_t P) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < P; i++) {
        num = fmax(num, fabs(a[i] - b[i]));
        den = fmax(den, fabs(b[i]));
    }
    return den > 0.0 ? num / den : num;
}

int bnn_von_last_layer(bnn_laplace **out, bnn_model *m, const bnn_dataset *ds,
                       const struct bnn_von_params *p, struct bnn_von_result *res) {
    if (!out || !m || !ds || !p) return bnn__error(BNN_EINVAL, "bnn_von_last_layer: NULL argument");
    *out = NULL;
    if (res) memset(res, 0, sizeof *res);
    int rc = check_params(p);
    if (rc) return rc;
    /* The last Linear layer (it ends every mlp): its size, place and input width. */
    const int64_t L = bnn_model_nlayers(m) - 1;
    int64_t w_off, w_shape[2], b_off, b_len;
    if (strcmp(bnn_model_layer_kind(m, L), "linear") != 0 ||
        bnn_model_layer_tensors(m, L, &w_off, w_shape, &b_off, &b_len) != 0)
        return bnn__error(BNN_EINVAL, "model %s does not end with a Linear layer",
                          bnn_model_spec(m));
    const int64_t K = w_shape[0], in = w_shape[1], P = K * in + b_len;
    BNN_ASSERT(b_off == w_off + K * in && b_len == K);
    /* Refused before any pass when it cannot fit: C, its candidate, H, one sample's GGN and the
     * Cholesky factor (P × P each) and a curvature's matrix, blocks and scratch (about four),
     * in double, and the layer's inputs for every example (float). */
    const double need = 9.0 * (double)P * (double)P * sizeof(double) +
                        (L > 0 ? (double)ds->n * (double)in * sizeof(float) : 0.0);
    double limit;
    char sl[80], sn[32];
    if ((rc = bnn__byte_limit("bnn_von_last_layer", p->max_bytes, &limit, sl, sizeof sl))) return rc;
    if (!(need <= limit)) {
        bnn__format_bytes(sn, sizeof sn, need);
        return bnn__error(BNN_ENOMEM,
                          "a full covariance over the last layer's %lld parameters needs "
                          "%s, more than %s", (long long)P, sn, sl);
    }
    if ((rc = bnn__check_data(m, ds))) return rc; /* named against m, before any work */
    const bnn_task task = bnn_dataset_task(ds);
    struct von_work w = {0};
    w.lik.kind = bnn_model_lik(m, task);
    w.lik.sigma = p->sigma;
    w.hscale = w.lik.kind == BNN_LIK_GAUSSIAN ? 1.0 / (p->sigma * p->sigma) : 1.0;
    w.cp = bnn_curv_default_params();
    w.cp.hessian = BNN_HESS_FULL;
    w.cp.subset = BNN_SUBSET_LAST_LAYER;
    w.cp.curvature = BNN_CURV_GGN;
    w.cp.batch_size = p->batch_size;
    /* The limit read above, not p->max_bytes: 0 would make every draw's curvature pass probe
     * the cgroup's files again (six opens per draw: a 2-weight layer with 1000 draws a step
     * spent 11 of its 14 s in the kernel). */
    w.cp.max_bytes = isfinite(limit) ? limit : p->max_bytes;
    w.cp.sums = BNN_SUMS_FLOAT; /* unless their rounding is not small beside δ: see below */
    bnn_model *lm = NULL;
    bnn_dataset *fds = NULL;
    if ((rc = layer_problem(m, ds, L, w_off, in, K, w.lik.kind, &lm, &fds))) {
        bnn_model_free(lm), bnn_dataset_free(fds);
        return rc;
    }
    w.m = lm, w.ds = fds ? fds : ds, w.off = 0, w.P = P;
    const int64_t np = bnn_model_nparams(w.m);
    const bool delta_method = p->mc_samples == 0;
    const double delta = p->prior_prec;

    /* The GGN at the starting weights: the starting precision's curvature C = GGN, and the
     * first step's H for the delta method. */
    bnn_curv *c0 = NULL;
    double *C = NULL, *Cn = NULL, *H = NULL, *Hs = NULL, *Lc = NULL, *mean = NULL, *mn = NULL;
    double *g = NULL, *gs = NULL, *eps = NULL;
    float *e32 = NULL;
    if ((rc = bnn_curv_compute(&c0, w.m, w.ds, &w.cp))) goto done;
    BNN_ASSERT(bnn_curv_nparams(c0) == P && bnn_curv_offset(c0) == w.off);
    w.bmax = bnn_model_max_batch(w.m);
    const size_t mat = bnn__bytes(P * P, sizeof(double)), vec = bnn__bytes(P, sizeof(double));
    C = bnn__alloc_array(P * P, sizeof(double)), Cn = bnn__alloc_array(P * P, sizeof(double));
    H = bnn__alloc_array(P * P, sizeof(double)), Lc = bnn__alloc_array(P * P, sizeof(double));
    Hs = delta_method ? NULL : bnn__alloc_array(P * P, sizeof(double));
    mean = bnn__alloc_array(P, sizeof(double)), mn = bnn__alloc_array(P, sizeof(double));
    g = bnn__alloc_array(P, sizeof(double)), gs = bnn__alloc_array(P, sizeof(double));
    eps = bnn__alloc_array(P, sizeof(double));
    e32 = bnn__alloc_array(P, sizeof(float));
    w.theta = bnn__alloc_array(np, sizeof(float));
    w.grad = bnn__alloc_array(np, sizeof(float));
    w.dout = bnn__alloc_array(w.bmax * K, sizeof(float));
    if (!C || !Cn || !H || !Lc || (!delta_method && !Hs) || !mean || !mn || !g || !gs || !eps ||
        !e32 || !w.theta || !w.grad || !w.dout) {
        char sz[32];
        bnn__format_bytes(sz, sizeof sz,
                          (double)(delta_method ? 4 : 5) * 8.0 * (double)P * (double)P +
                              (5.0 * 8.0 + 4.0) * (double)P + 8.0 * (double)np);
        rc = bnn__error(BNN_ENOMEM, "cannot allocate its work arrays over the last layer's %lld "
                        "parameters (about %s)", (long long)P, sz);
        goto done;
    }
    memcpy(w.theta, bnn_model_cparams(w.m), (size_t)np * sizeof(float));
    for (;;) {
        const double *H0 = bnn_curv_dense(c0);
        for (int64_t i = 0; i < P * P; i++)
            C[i] = H[i] = H0[i] * w.hscale;
        bnn_curv_free(c0);
        c0 = NULL;
        /* Float sums move every eigenvalue by about 2^-24 of the largest; the precision adds δ.
         * Where that rounding is not small beside δ (a curvature spanning many decades), every
         * GGN of the run is summed in double instead (twice the time). */
        if (w.cp.sums != BNN_SUMS_FLOAT || 0x1p-24 * lam_max(C, P, mn, g) <= 1e-2 * delta) break;
        w.cp.sums = BNN_SUMS_DOUBLE;
        if ((rc = bnn_curv_compute(&c0, w.m, w.ds, &w.cp))) goto done;
    }
    for (int64_t i = 0; i < P; i++)
        mean[i] = (double)w.theta[w.off + i];
    /* The starting precision's factor, for the first step's draws. */
    memcpy(Lc, C, mat);
    for (int64_t i = 0; i < P; i++)
        Lc[i * P + i] += delta;
    if (!bnn__all_finite(Lc, P * P)) {
        rc = bnn__error(BNN_EINVAL, "the starting precision is not finite");
        goto done;
    }
    bnn__blas_pin();
    if (!delta_method &&
        LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)P, Lc, (lapack_int)P) != 0) {
        rc = bnn__error(BNN_EINVAL, "the starting precision is not positive definite (a "
                                    "larger prior precision may help)");
        goto done;
    }
    double loss = 0.0, J = 0.0, change = 0.0;
    int64_t halvings = 0;
    if ((rc = objective(&w, g, &loss, delta, &J))) goto done; /* at the start */
    if (res) res->objective0 = J;
    bnn_rng rng = bnn_rng_make(p->seed, BNN__STREAM_VON);
    for (int64_t t = 1; t <= p->steps; t++) {
        if (delta_method) {
            /* g and the loss are at the mean already; H is the GGN there. A step that raises
             * the objective is retried at half the rate (Newton's method with ρ = 1 can
             * overshoot from confident wrong weights), the precision's update with it. */
            if (t > 1 && (rc = subset_ggn(&w, H))) goto done;
            double r = p->rho;
            for (int tries = 0;; tries++) {
                if ((rc = von_update(mn, Cn, Lc, mean, C, H, g, delta, r, P, t))) goto done;
                for (int64_t i = 0; i < P; i++)
                    w.theta[w.off + i] = (float)mn[i];
                double Jn, ln;
                rc = objective(&w, gs, &ln, delta, &Jn);
                if (rc && rc != BNN_EDIVERGED) goto done;
                /* a relative slack for the float weights' rounding near the optimum */
                if (!rc && Jn <= J + 1e-7 * fabs(J)) {
                    J = Jn, loss = ln;
                    memcpy(g, gs, vec);
                    break;
                }
                rc = 0;
                if (tries == 40) {
                    rc = bnn__error(BNN_EDIVERGED,
                                    "step %lld: no step size lowered the "
                                    "loss plus the prior",
                                    (long long)t);
                    goto done;
                }
                r *= 0.5, halvings++;
            }
        } else {
            /* S draws from q: the mean gradient and GGN over them */
            memset(g, 0, vec), memset(H, 0, mat);
            for (int64_t s = 0; s < p->mc_samples; s++) {
                if ((rc = draw(&w, mean, Lc, eps, e32, &rng)) ||
                    (rc = subset_grad(&w, gs, &loss)) || (rc = subset_ggn(&w, Hs)))
                    goto done;
                for (int64_t i = 0; i < P; i++)
                    g[i] += gs[i] / (double)p->mc_samples;
                for (int64_t i = 0; i < P * P; i++)
                    H[i] += Hs[i] / (double)p->mc_samples;
            }
            if ((rc = von_update(mn, Cn, Lc, mean, C, H, g, delta, p->rho, P, t))) goto done;
        }
        change = rel_change(mn, mean, P);
        memcpy(mean, mn, vec);
        double *tmp = C;
        C = Cn, Cn = tmp;
    }
    /* At the mean: the loss and objective (the delta method has them from its last step). */
    for (int64_t i = 0; i < P; i++)
        w.theta[w.off + i] = (float)mean[i];
    if (!delta_method && (rc = objective(&w, gs, &loss, delta, &J))) goto done;
    if (res) {
        res->objective = J, res->nll = loss, res->last_change = change, res->halvings = halvings;
        res->double_sums = w.cp.sums == BNN_SUMS_DOUBLE;
    }

    /* The posterior: the layer at the mean, and the full curvature C/hscale, whose Laplace
     * precision (curvature/σ² for the Gaussian, where hscale = 1/σ²; the curvature itself
     * otherwise) plus δI is C + δI = S. C is symmetric to the bit: elementwise combinations of
     * GGNs that bnn_curv_compute mirrors. */
    bnn__free(H), bnn__free(Lc), bnn__free(Hs); /* room for the curvature and its eigenvectors */
    H = Lc = Hs = NULL;
    loss = recorded_loss(loss, w.lik.kind, p->sigma, w.ds->n, K);
    for (int64_t i = 0; i < P * P; i++)
        Cn[i] = C[i] / w.hscale;
    bnn_curv *c = NULL;
    rc = bnn_curv_from_arrays(&c, BNN_HESS_FULL, P, w_off, ds->n, K, loss, NULL, Cn, 0, NULL, NULL,
                              NULL, NULL);
    if (!rc) {
        bnn__curv_set_lik(c, w.lik.kind);
        bnn__curv_set_kind(c, BNN_CURV_GGN);
        rc = bnn_laplace_new(out, c, w.theta + w.off, bnn_lik_task(w.lik.kind));
    }
    if (!rc) {
        bnn_laplace_set_prior(*out, delta, w.lik.kind == BNN_LIK_GAUSSIAN ? p->sigma : 1.0);
        bnn__laplace_set_von(*out);
        memcpy(bnn_model_params(m) + w_off, w.theta + w.off, (size_t)P * sizeof(float));
    }
done:
    bnn_curv_free(c0);
    bnn_model_free(lm), bnn_dataset_free(fds);
    bnn__free(C), bnn__free(Cn), bnn__free(H), bnn__free(Hs), bnn__free(Lc), bnn__free(mean);
    bnn__free(mn), bnn__free(g), bnn__free(gs), bnn__free(eps), bnn__free(e32);
    bnn__free(w.theta), bnn__free(w.grad), bnn__free(w.dout);
    return rc;
}
