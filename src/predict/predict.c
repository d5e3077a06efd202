/* Predictive rules (DESIGN.md "How is q(θ) used to predict?"): at the posterior mean, and
 * Monte-Carlo Bayesian model averaging over weight samples. Classification averages
 * probabilities in log space: log p̄ = logsumexp_s log p_s − log S, so a sample whose softmax
 * underflows for the true class cannot send the average to log 0. Then the metrics. */
#include "core/internal.h"
#include "nn/layer.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

int64_t bnn__predict_feat_floats = (64 << 20) / (int64_t)sizeof(float);

struct bnn_predict_params bnn_predict_default_params(void) {
    struct bnn_predict_params p = {
        .samples = 0, .seed = 0, .batch_size = 256, .sigma = 1.0, .temperature = 1.0,
        .link_samples = 0, .link = BNN_LINK_PROBIT, .log_probs = false, .local_reparam = false};
    return p;
}

static const char *const link_names[] = {"probit", "mc", "bridge", "bridge-norm"};
enum { NLINK = (int)(sizeof link_names / sizeof link_names[0]) };

const char *bnn_link_name(bnn_link l) {
    return (int)l >= 0 && (int)l < NLINK ? link_names[l] : "?";
}

int bnn_link_parse(const char *name, bnn_link *out) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_link_parse: out is NULL");
    int i;
    const int rc = bnn__name_parse(link_names, NLINK, name, "link", &i);
    if (!rc) *out = (bnn_link)i;
    return rc;
}

/* Stream of the prediction weight samples, apart from training's streams (src/data/data.h
 * lists the data module's; training uses 0..2^32 for layers and 2^32 + epoch for dropout). */
#define BNN_STREAM_PREDICT ((uint64_t)5 << 32)
/* BNN_STREAM_PREDICT + 1: Monte-Carlo over linearised logits; + 2: the first layer's outputs
 * drawn by local reparameterisation (lrt_draw). */
#define LRT_STREAM (BNN_STREAM_PREDICT + 2)

/* The lower Cholesky factor of the m × m matrix A (row-major) into L (the upper part left
 * alone): false when A is not positive definite to working precision, that is when a pivot is
 * not positive beyond the rounding of the diagonal entry it is left of (a pivot of rounding
 * noise would put a variance of that noise's size into the draws). */
static bool chol_lower(double *L, const double *A, int64_t m) {
    const double tol = 64.0 * (double)m * DBL_EPSILON;
    for (int64_t j = 0; j < m; j++) {
        double s = A[j * m + j];
        for (int64_t p = 0; p < j; p++) s -= L[j * m + p] * L[j * m + p];
        if (!(s > tol * A[j * m + j])) return false;
        const double d = sqrt(s);
        L[j * m + j] = d;
        for (int64_t i = j + 1; i < m; i++) {
            double t = A[i * m + j];
            for (int64_t p = 0; p < j; p++) t -= L[i * m + p] * L[j * m + p];
            L[i * m + j] = t / d;
        }
    }
    return true;
}

/* Cov(f_i − f_r, f_j − f_r) from the k × k covariance V of the f. */
static inline double diff_cov(const double *V, int64_t k, int64_t i, int64_t j, int64_t r) {
    return V[i * k + j] - V[i * k + r] - V[r * k + j] + V[r * k + r];
}

/* Draws of the Monte-Carlo link taken together: per class, the log-sum-exp of a block's log
 * probabilities is folded into the running one once per block (not once per draw). */
#define MC_BLOCK 64

/* One input of bnn__mc_link: its S draws from rng (at the input's own place in the stream), the
 * averaged probabilities into probs (k) and the mutual information into *mi (unless NULL).
 * Scratch: A, L (k × k), z and lp (MC_BLOCK × k), lse, e and fd (k), act (k). Returns 0, or 1 for
 * a covariance that is not finite, 2 for one that is not positive semi-definite, 3 for one whose
 * logit differences have no variance beyond rounding. */
static int mc_one(double *probs, double *mi, const double *fm, const double *V, int64_t k,
                  int64_t S, bnn_rng rng, bool log_probs, double *A, double *L, float *z,
                  double *lp, double *lse, double *e, double *fd, int64_t *act) {
    /* Logits without variance (a logit the subset does not reach, or Bernoulli's fixed 0 of the
     * 2-class form (0, f)) are drawn as their mean: the Cholesky factor is taken of the m × m
     * block of the others only, so it stays exact where V is singular that way. */
    if (!bnn__all_finite(V, k * k)) return 1; /* a Cholesky would factor NaN without a word */
    int64_t m = 0;
    for (int64_t j = 0; j < k; j++)
        if (V[j * k + j] > 0.0) act[m++] = j;
    if (m) {
        for (int64_t r = 0; r < m; r++)
            for (int64_t c = 0; c < m; c++) A[r * m + c] = V[act[r] * k + act[c]];
    }
    if (m && !chol_lower(L, A, m)) {
        /* Not definite to working precision. The softmax does not change when every logit moves
         * by the same amount, so the draws may as well be of the differences d_j = f_j − f_r
         * from the last logit r = k − 1, with f_r held at 0: their covariance D_ij = V_ij − V_ir −
         * V_rj + V_rr gives the same predictive exactly, and leaves out the direction of equal
         * moves that the softmax GGN has no curvature in. That direction is what a small prior
         * precision makes large: V ≈ L 11ᵀ + W with L ≫ W, so a jitter sized by V's own mean
         * variance, L, would swamp W, the part that decides the prediction. Then a jitter of at
         * most 1e-6 of D's mean variance repairs rounding and nothing more, so a truly
         * indefinite matrix is still refused; and where a difference's variance is not positive
         * beyond the rounding of the four terms it is formed from (L ≳ 1e14 W, as for the
         * Laplace bridge's zero-sum correction), W is lost and the input is refused. */
        if (k < 2) return 2;
        const int64_t r = k - 1;
        const double tol = 64.0 * (double)k * DBL_EPSILON;
        m = 0;
        double tr = 0.0;
        for (int64_t j = 0; j < r; j++) {
            const double dj = diff_cov(V, k, j, j, r);
            const double size = fabs(V[j * k + j]) + fabs(V[j * k + r]) + fabs(V[r * k + j]) +
                                fabs(V[r * k + r]);
            if (size == 0.0) continue; /* f_j and f_r are both fixed: d_j is too */
            if (dj < -tol * size) return 2; /* indefinite beyond rounding */
            if (!(dj > tol * size)) return 3;
            act[m++] = j, tr += dj;
        }
        for (int64_t j = 0; j < k; j++) fd[j] = fm[j] - fm[r];
        fm = fd; /* the draws below add to the differences, f_r stays 0 */
        const double scale = m ? tr / (double)m : 0.0, rel[4] = {0.0, 1e-10, 1e-8, 1e-6};
        for (int attempt = 0; m > 0; attempt++) {
            if (attempt == 4) return 2;
            for (int64_t a = 0; a < m; a++)
                for (int64_t c = 0; c < m; c++) A[a * m + c] = diff_cov(V, k, act[a], act[c], r);
            for (int64_t j = 0; j < m; j++) A[j * m + j] += rel[attempt] * scale;
            if (chol_lower(L, A, m)) break;
        }
    }
    for (int64_t j = 0; j < k; j++) lse[j] = -INFINITY;
    double ent = 0.0;
    for (int64_t s0 = 0; s0 < S; s0 += MC_BLOCK) {
        const int64_t nb = S - s0 < MC_BLOCK ? S - s0 : MC_BLOCK;
        if (m) bnn_rng_normal(&rng, z, nb * m); /* the block's draws in one call */
        for (int64_t s = 0; s < nb; s++) {
            double *f = lp + s * k;
            const float *zs = z + s * m;
            for (int64_t j = 0; j < k; j++) f[j] = fm[j];
            for (int64_t r = 0; r < m; r++) {
                double v = 0.0;
                for (int64_t c = 0; c <= r; c++) v += L[r * m + c] * (double)zs[c];
                f[act[r]] += v;
            }
            /* log softmax, apart from the maximum as in bnn__lik_log_probs, and the draw's
             * entropy from the same exponentials */
            double mx = f[0], t = 0.0;
            for (int64_t j = 1; j < k; j++) mx = f[j] > mx ? f[j] : mx;
            for (int64_t j = 0; j < k; j++) t += (e[j] = exp(f[j] - mx));
            const double lt = log(t);
            for (int64_t j = 0; j < k; j++) {
                const double l = (f[j] - mx) - lt;
                f[j] = l;
                ent -= e[j] / t * l;
            }
        }
        for (int64_t j = 0; j < k; j++) { /* lse[j] ← log(e^lse[j] + Σ_s e^lp[s][j]) */
            double hi = lse[j];
            for (int64_t s = 0; s < nb; s++) hi = lp[s * k + j] > hi ? lp[s * k + j] : hi;
            if (hi == -INFINITY) continue;
            double t = lse[j] == -INFINITY ? 0.0 : exp(lse[j] - hi);
            for (int64_t s = 0; s < nb; s++) t += exp(lp[s * k + j] - hi);
            lse[j] = hi + log(t);
        }
    }
    double h = 0.0;
    for (int64_t j = 0; j < k; j++) {
        const double l = bnn__log_mean(lse[j], S), pj = exp(l);
        probs[j] = log_probs ? l : pj;
        h -= pj > 0.0 ? pj * l : 0.0;
    }
    if (mi) {
        const double v = h - ent / (double)S;
        *mi = v > 0.0 ? v : 0.0;
    }
    return 0;
}

/* Monte-Carlo over the linearised logits (laplace-torch's link_approx='mc'): for each input,
 * S draws f = f_mu + L z with L the Cholesky factor of f_var (K × K; where f_var is not definite
 * to working precision, draws of the logits' differences from the last one, with a tiny jitter
 * if need be: see mc_one), probabilities averaged in log space as in the weight-space predictive,
 * and the mutual information of the draws. Input first + i draws from counter
 * rng->counter + (first + i)·S·⌈k/4⌉ of rng's stream (a block of draws takes ⌈nb·m/4⌉ ≤
 * nb·⌈k/4⌉ counters), so its values depend neither on the calls nor on the threads that the
 * inputs are spread over (rng is not advanced). */
int bnn__mc_link(double *probs, double *mi, const double *fm, const double *fv, int64_t b,
                 int64_t k, int64_t S, const bnn_rng *rng, bool log_probs, int64_t first) {
    const uint64_t per = (uint64_t)S * (uint64_t)((k + 3) / 4);
    int64_t bad = b; /* the first input that failed, and how */
    int why = 0;
    bool nomem = false;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel if (b > 1 && (double)b * (double)S * (double)k > 1e5)
#endif
    {
        const int64_t blk = MC_BLOCK < S ? MC_BLOCK : S;
        double *A = malloc((size_t)(2 * k * k + blk * k + 3 * k) * sizeof(double));
        float *z = malloc((size_t)(blk * k) * sizeof(float));
        int64_t *act = malloc((size_t)k * sizeof(int64_t));
        if (!A || !z || !act) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp atomic write
#endif
            nomem = true;
        }
#if defined(BNN_HAVE_OPENMP)
#pragma omp for schedule(dynamic, 16)
#endif
        for (int64_t i = 0; i < b; i++) {
            if (!A || !z || !act) continue;
            bnn_rng r = *rng;
            r.counter += (uint64_t)(first + i) * per;
            const int w = mc_one(probs + i * k, mi ? mi + i : NULL, fm + i * k, fv + i * k * k,
                                 k, S, r, log_probs, A, A + k * k, z, A + 2 * k * k,
                                 A + 2 * k * k + blk * k, A + 2 * k * k + blk * k + k,
                                 A + 2 * k * k + blk * k + 2 * k, act);
            if (w) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp critical(bnn_mc_link)
#endif
                if (i < bad) bad = i, why = w;
            }
        }
        free(A), free(z), free(act);
    }
    if (nomem) return bnn__error(BNN_ENOMEM, "out of memory");
    if (bad < b && why == 3)
        return bnn__error(BNN_EDIVERGED, "the Monte-Carlo link cannot draw the logits of example "
                          "%lld: the variance of their differences is lost in rounding beside that "
                          "of their common shift (as when a tiny prior precision leaves a direction "
                          "almost unbounded)", (long long)(first + bad));
    if (bad < b)
        return why == 1 ? bnn__error(BNN_EDIVERGED, "the linearised logit covariance of example "
                                     "%lld is not finite", (long long)(first + bad))
                        : bnn__error(BNN_EINVAL, "the linearised logit covariance of example %lld "
                                     "is not positive semi-definite", (long long)(first + bad));
    return 0;
}

/* The arguments bnn_predict and bnn_laplace_predict share, checked the same way for both. */
static int check_args(const char *fn, const bnn_model *m, const float *x, int64_t n, bnn_task task,
                      const struct bnn_predict_params *p, const double *probs, const double *mean,
                      const double *var) {
    if (!m || !x || !p)
        return bnn__error(BNN_EINVAL, "%s: the model, inputs and params are required", fn);
    if (task != BNN_TASK_CLASSIFICATION && task != BNN_TASK_REGRESSION)
        return bnn__error(BNN_EINVAL, "%s: unknown task %d", fn, (int)task);
    if (task == BNN_TASK_CLASSIFICATION ? !probs : (!mean || !var))
        return bnn__error(BNN_EINVAL, "%s: %s", fn, task == BNN_TASK_CLASSIFICATION
                                                         ? "probs is required for classification"
                                                         : "mean and var are required for "
                                                           "regression");
    const bnn_lik_kind lik = bnn_model_lik(m, task);
    if (n < 1) return bnn__error(BNN_EINVAL, "%s: nothing to predict (n = %lld)", fn, (long long)n);
    /* x (n × inputs) and the outputs (n × outputs, twice for a regression's mean and variance)
     * must be addressable, and so every count formed from them */
    const int64_t in = bnn_model_input_dim(m), out = bnn_model_output_dim(m);
    const uint64_t wide = 2 * (uint64_t)(in > out ? in : out);
    if ((uint64_t)n > SIZE_MAX / sizeof(double) / wide)
        return bnn__error(BNN_EINVAL, "%s: n = %lld examples of %lld values each are more than "
                          "memory can address", fn, (long long)n, (long long)(wide / 2));
    if (p->batch_size < 1) return bnn__error(BNN_EINVAL, "batch size must be >= 1");
    if (bnn_lik_task(lik) != task)
        return bnn__error(BNN_EINVAL, "model %s has a %s likelihood, not one for %s",
                          bnn_model_spec(m), bnn_lik_name(lik),
                          task == BNN_TASK_REGRESSION ? "regression" : "classification");
    if (lik == BNN_LIK_GAUSSIAN && !(p->sigma > 0.0 && isfinite(p->sigma)))
        return bnn__error(BNN_EINVAL, "regression noise sigma must be positive and finite (got %g)",
                          p->sigma);
    /* the predictive variance adds σ², which must not round to 0 */
    if (lik == BNN_LIK_GAUSSIAN && !(p->sigma * p->sigma > 0.0))
        return bnn__error(BNN_EINVAL, "regression noise sigma %g is too small: its square "
                          "underflows to 0", p->sigma);
    if (p->link_samples < 0 || p->link_samples > BNN_MAX_SAMPLES)
        return bnn__error(BNN_EINVAL, "link samples must be in [0, %d] (got %lld)",
                          BNN_MAX_SAMPLES, (long long)p->link_samples);
    /* T² divides the logits' variances (bnn_laplace_predict): beyond 1e±150 it nears the ends
     * of double range (a denormal, then 0: a zero variance became 0/0; or ∞), and NaN or ∞
     * would reach the link. The CLI's bound is far inside (1e6). */
    if (!(p->temperature >= 1e-150 && p->temperature <= 1e150))
        return bnn__error(BNN_EINVAL, "the temperature must be a positive number from 1e-150 to "
                          "1e150 (got %g)", p->temperature);
    if ((int)p->link < 0 || (int)p->link >= NLINK)
        return bnn__error(BNN_EINVAL, "unknown link %d", (int)p->link);
    if (p->link == BNN_LINK_MC && p->link_samples == 0)
        return bnn__error(BNN_EINVAL, "the Monte-Carlo link needs link_samples > 0");
    if ((p->link == BNN_LINK_BRIDGE || p->link == BNN_LINK_BRIDGE_NORM) && p->link_samples > 0)
        return bnn__error(BNN_EINVAL, "link_samples is for the Monte-Carlo link, not the %s link",
                          bnn_link_name(p->link));
    return 0;
}

/* " at prior precision δ" for a message about precision j of a list, "" without one. */
static const char *at_prior(const double *deltas, int64_t j) {
    static _Thread_local char buf[48];
    if (!deltas) return "";
    snprintf(buf, sizeof buf, " at prior precision %g", deltas[j]);
    return buf;
}

/* The linearised (GLM) predictive of a Laplace posterior (Immer et al., AISTATS 2021; laplace-
 * torch's default): f ~ N(f_mu, f_var) in function space, then per likelihood
 *  - categorical: the probit approximation (MacKay 1992), Monte Carlo over the logits, or the
 *    Laplace bridge (plain or normalised; bnn__bridge), refused for an example where a logit's
 *    variance after its zero-sum correction is not positive (there is no Dirichlet);
 *  - Bernoulli: the same on the 2-class logits (0, f), whose covariance is [[0, 0], [0, v]]:
 *    the probit is then p = sigmoid(f̄ / √(1 + π v / 8)) exactly (MacKay, "The evidence framework
 *    applied to classification networks", Neural Computation 1992, eq. 25), and the Monte Carlo
 *    draws f ~ N(f̄, v) alone;
 *  - Gaussian: N(f_mu, f_var + σ²);
 *  - heteroscedastic Gaussian, f = (μ, η) ~ N(f̄, Σ): the predictive is a Gaussian mixture with
 *    mean E[μ] = f̄_μ and variance Var[μ] + E[e^η] = Σ_μμ + exp(f̄_η + ½ Σ_ηη) (the mean of a
 *    log-normal), both in closed form; it is reported as the Gaussian with these moments.
 * A temperature T scales the logits' distribution to N(f_mu / T, f_var / T²).
 * With deltas (bnn_laplace_predict_priors) the same at each of nd scalar prior precisions, the
 * outputs nd blocks of n × C, from one pass of the network: each block is what a call with that
 * precision set gives, to the last bit. */
static int laplace_predict(const char *fn, const bnn_laplace *la, bnn_model *m, const float *x,
                           int64_t n, bnn_task task, const struct bnn_predict_params *p,
                           const double *deltas, int64_t nd, double *probs, double *mi,
                           double *mean, double *var) {
    int rc = check_args(fn, m, x, n, task, p, probs, mean, var);
    if (rc) return rc;
    if (!la) return bnn__error(BNN_EINVAL, "%s: the posterior is required", fn);
    if (bnn__laplace_task(la) != task)
        return bnn__error(BNN_EINVAL, "%s: the posterior was fitted for %s, not %s", fn,
                          bnn__laplace_task(la) == BNN_TASK_REGRESSION ? "regression"
                                                                      : "classification",
                          task == BNN_TASK_REGRESSION ? "regression" : "classification");
    const uint64_t kk = (uint64_t)bnn_model_output_dim(m);
    if (deltas && (nd < 1 || (uint64_t)nd > SIZE_MAX / sizeof(double) / (uint64_t)n / (2 * kk) ||
                   (uint64_t)nd > (uint64_t)INT64_MAX / (kk * kk + kk + 6)))
        return bnn__error(BNN_EINVAL, "%s: %lld prior precisions (at least 1, and no more than "
                          "memory can address for %lld examples)", fn, (long long)nd,
                          (long long)n);
    const bnn_lik_kind lik = bnn_model_lik(m, task);
    const int64_t k = bnn_model_output_dim(m), d = bnn_model_input_dim(m);
    const int64_t C = bnn_lik_pred_dim(lik, k);
    const bool bridge = p->link_samples == 0 &&
                        (p->link == BNN_LINK_BRIDGE || p->link == BNN_LINK_BRIDGE_NORM);
    if (bridge && (lik != BNN_LIK_CATEGORICAL || k < 2))
        return bnn__error(BNN_EINVAL, "the Laplace bridge is a Dirichlet over the classes of a "
                          "categorical classifier; %s has a %s likelihood",
                          bnn_model_spec(m), bnn_lik_name(lik));
    const int64_t bs = p->batch_size < n ? p->batch_size : n;
    if ((rc = bnn_model_reserve(m, bs))) return rc;
    /* bnn_laplace_glm runs the network bs examples at a time itself but sets up its workspace
     * per call (for full, up to 64 MiB of J·Q, fresh pages each time), so each call gets as many
     * examples as 64 MiB of these buffers hold (Bernoulli's 2-class form: 6 more per example). */
    const bool bern = lik == BNN_LIK_BERNOULLI;
    if (!deltas) nd = 1;
    int64_t gs = (int64_t)((64u << 20) / sizeof(double)) / (nd * k * k + k + (bern ? 6 : 0));
    gs = gs < bs ? bs : gs > n ? n : gs;
    /* Calls of whole chunks of the GLM's own: an input's values do not depend on which call it
     * falls in, so they are the same for any number of prior precisions (the chunk's matrix
     * products are what could round differently). */
    if (gs < n) {
        int64_t chunk;
        if ((rc = bnn__laplace_glm_chunk(la, m, &chunk, fn))) return rc;
        gs = gs < chunk ? chunk : gs / chunk * chunk;
    }
    /* Where that floor holds more than 64 MiB of f_var for all the precisions (many classes),
     * they go in slices of ns, a pass of the network each. */
    int64_t ns = (int64_t)((64u << 20) / sizeof(double)) / (gs * k * k);
    ns = ns < 1 ? 1 : ns > nd ? nd : ns;
    double *fm = bnn__alloc_array(gs * k, sizeof(double));
    double *fvs = bnn__alloc_array(ns * gs * k * k, sizeof(double));
    double *fm2 = bern ? bnn__alloc_array(gs * 2, sizeof(double)) : NULL;
    double *fv2 = bern ? bnn__alloc_array(gs * 4, sizeof(double)) : NULL;
    if (!fm || !fvs || (bern && (!fm2 || !fv2))) {
        rc = bnn__error(BNN_ENOMEM, "out of memory for the GLM predictive");
        goto done;
    }
    const double T = p->temperature, s2 = p->sigma * p->sigma;
    /* The Monte-Carlo link's draws: each input at its own place in the stream, the same for
     * every precision */
    const bnn_rng rng = bnn_rng_make(p->seed, BNN_STREAM_PREDICT + 1);
    for (int64_t j0 = 0; j0 < nd; j0 += ns) {
        const int64_t nj = nd - j0 < ns ? nd - j0 : ns;
        for (int64_t lo = 0; lo < n; lo += gs) {
            const int64_t b = lo + gs <= n ? gs : n - lo;
            const float *xc = x + lo * d;
            rc = deltas ? bnn__laplace_glm_priors(la, m, xc, b, deltas + j0, nj, fm, fvs, fn)
                        : bnn_laplace_glm(la, m, xc, b, fm, fvs);
            if (rc) goto done;
            if (T != 1.0 && task == BNN_TASK_CLASSIFICATION)
                for (int64_t i = 0; i < b * k; i++) fm[i] /= T;
            for (int64_t jj = 0; jj < nj; jj++) {
                const int64_t j = j0 + jj;
                double *fv = fvs + jj * b * k * k;
                double *pj = probs ? probs + j * n * C : NULL;
                double *mj = mean ? mean + j * n * C : NULL, *vj = var ? var + j * n * C : NULL;
                if (task == BNN_TASK_CLASSIFICATION) {
                    if (T != 1.0)
                        for (int64_t i = 0; i < b * k * k; i++) fv[i] /= T * T;
                    const double *cm = fm, *cv = fv;
                    if (lik == BNN_LIK_BERNOULLI) { /* the 2-class logits (0, f) */
                        for (int64_t i = 0; i < b; i++) {
                            fm2[2 * i] = 0.0, fm2[2 * i + 1] = fm[i];
                            fv2[4 * i] = fv2[4 * i + 1] = fv2[4 * i + 2] = 0.0;
                            fv2[4 * i + 3] = fv[i];
                        }
                        cm = fm2, cv = fv2;
                    }
                    if (p->link_samples > 0) {
                        if ((rc = bnn__mc_link(pj + lo * C, mi ? mi + lo : NULL, cm, cv, b, C,
                                               p->link_samples, &rng, p->log_probs, lo))) {
                            if (deltas) { /* the message names the precision too */
                                char msg[1024];
                                snprintf(msg, sizeof msg, "%s", bnn_last_error());
                                rc = bnn__error(rc, "%s%s", msg, at_prior(deltas, j));
                            }
                            goto done;
                        }
                    } else if (bridge) {
                        int64_t bad;
                        if ((rc = bnn__bridge(pj + lo * C, cm, cv, b, C,
                                              p->link == BNN_LINK_BRIDGE_NORM, p->log_probs,
                                              mi ? mi + lo : NULL, &bad)))
                            goto done;
                        if (bad >= 0) {
                            rc = bnn__error(BNN_EDIVERGED,
                                            "the Laplace bridge has no Dirichlet for example "
                                            "%lld%s: its linearised logits are not finite, or a "
                                            "logit's variance after the zero-sum correction is not "
                                            "positive beyond rounding (as when a tiny prior "
                                            "precision leaves a direction almost unbounded)",
                                            (long long)(lo + bad), at_prior(deltas, j));
                            goto done;
                        }
                    } else {
                        bnn__probit(pj + lo * C, cm, cv, b, C, p->log_probs);
                        if (mi)
                            for (int64_t i = 0; i < b; i++) mi[lo + i] = 0.0;
                    }
                } else if (lik == BNN_LIK_HETERO_GAUSSIAN) {
                    for (int64_t i = 0; i < b; i++) {
                        const double *V = fv + i * 4;
                        mj[lo + i] = fm[2 * i];
                        vj[lo + i] = V[0] + exp(fm[2 * i + 1] + 0.5 * V[3]);
                    }
                } else {
                    for (int64_t i = 0; i < b; i++)
                        for (int64_t o = 0; o < k; o++) {
                            mj[(lo + i) * k + o] = fm[i * k + o];
                            vj[(lo + i) * k + o] = fv[(i * k + o) * k + o] + s2;
                        }
                }
            }
        }
    }
    for (int64_t i = 0; i < nd * n * C; i++) {
        double v = task != BNN_TASK_CLASSIFICATION ? var[i]
                   : p->log_probs                  ? exp(probs[i])
                                                   : probs[i];
        if (!isfinite(v) || (task == BNN_TASK_REGRESSION && (!isfinite(mean[i]) || !(v > 0.0)))) {
            const bool noise = task == BNN_TASK_REGRESSION && isfinite(mean[i]) &&
                               bnn_model_lik(m, task) == BNN_LIK_HETERO_GAUSSIAN;
            rc = bnn__error(BNN_EDIVERGED, "the GLM predictive is not finite (example %lld%s)%s",
                            (long long)(i % (n * C) / C), at_prior(deltas, i / (n * C)),
                            !noise       ? ""
                            : v > 0.0    ? ": its variance overflows (the predicted noise "
                                           "exp(log variance) is too large)"
                            : v == 0.0   ? ": its variance is 0 (the predicted noise exp(log "
                                           "variance) underflows)"
                                         : ": its variance is negative or NaN (a posterior "
                                           "precision that is not positive definite)");
            goto done;
        }
    }
done:
    bnn__free(fm), bnn__free(fvs), bnn__free(fm2), bnn__free(fv2);
    return rc;
}

int bnn_laplace_predict(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n,
                        bnn_task task, const struct bnn_predict_params *p, double *probs,
                        double *mi, double *mean, double *var) {
    return laplace_predict("bnn_laplace_predict", la, m, x, n, task, p, NULL, 1, probs, mi, mean,
                           var);
}

int bnn_laplace_predict_priors(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n,
                               bnn_task task, const struct bnn_predict_params *p,
                               const double *prior_precs, int64_t nprior, double *probs,
                               double *mean, double *var) {
    if (!prior_precs)
        return bnn__error(BNN_EINVAL, "bnn_laplace_predict_priors: the prior precisions are "
                          "required");
    return laplace_predict("bnn_laplace_predict_priors", la, m, x, n, task, p, prior_precs,
                           nprior, probs, NULL, mean, var);
}

/* Local reparameterisation of the first layer (Kingma, Salimans & Welling, "Variational dropout
 * and the local reparameterization trick", NeurIPS 2015) for predicting from a diagonal Gaussian
 * q: with W ~ N(M, S²) and bias ~ N(μ_b, s_b²) independent, the first Linear layer's output for
 * input x is exactly Gaussian, N(x Mᵀ + μ_b, (x∘x)(S∘S)ᵀ + s_b²), independently per unit. So
 * each sample draws that output directly instead of a weight matrix: the mean and standard
 * deviation are computed once per input (two GEMMs) where weight sampling costs a GEMM per
 * sample. Every example's predictive — the distribution of its S samples — is the same as with
 * weight samples; what changes is only that examples no longer share the first layer's draw.
 * The later layers take their weights from the same θ samples as without it. */

/* lmu, lsd (b × out) = the first layer l's output mean and standard deviation for the b inputs
 * x (bnn__linear_moments, then the square root once rather than per sample). */
static void lrt_moments(const bnn__layer *l, float *lmu, float *lsd, const float *x,
                        const float *w, const float *sig2, int64_t b, float *x2) {
    bnn__linear_moments(l, lmu, lsd, x, w, sig2, b, x2);
    const int64_t n = b * l->out;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) lsd[i] = sqrtf(lsd[i]);
}

/* y (b × out) = one draw of the first layer's outputs for examples first .. first + b − 1 in
 * sample s: lmu + lsd ∘ ε. Example i of sample s takes its ε from its own place in the stream
 * (counter (s·n + i)·⌈out/4⌉), so a draw does not depend on the batch, the chunk or the thread. */
static void lrt_draw(float *y, const float *lmu, const float *lsd, int64_t b, int64_t out,
                     uint64_t seed, int64_t s, int64_t n, int64_t first) {
    const uint64_t per = (uint64_t)((out + 3) / 4);
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (b * out > 32768)
#endif
    for (int64_t r = 0; r < b; r++) {
        bnn_rng rng = bnn_rng_make(seed, LRT_STREAM);
        rng.counter = ((uint64_t)s * (uint64_t)n + (uint64_t)(first + r)) * per;
        float *row = y + r * out;
        bnn_rng_normal(&rng, row, out);
        const float *mr = lmu + r * out, *sr = lsd + r * out;
        for (int64_t j = 0; j < out; j++) row[j] = mr[j] + sr[j] * row[j];
    }
}

/* bnn_predict; with y (n × C targets) and mix (n) for a sampled regression predictive, also each
 * example's NLL under the mixture itself (see bnn_evaluate), from a running log-sum-exp over the
 * samples. */
static int predict_impl(bnn_model *m, const bnn_posterior *q, const float *x, int64_t n,
                        bnn_task task, const struct bnn_predict_params *p, double *probs,
                        double *mi, double *mean, double *var, const double *y, double *mix) {
    int rc = check_args("bnn_predict", m, x, n, task, p, probs, mean, var);
    if (rc) return rc;
    const bnn_lik_kind lik = bnn_model_lik(m, task);
    const int64_t k = bnn_model_output_dim(m), d = bnn_model_input_dim(m);
    const int64_t C = bnn_lik_pred_dim(lik, k), np = bnn_model_nparams(m);
    if (p->samples < 0 || p->samples > BNN_MAX_SAMPLES)
        return bnn__error(BNN_EINVAL, "the number of samples must be in [0, %d] (got %lld)",
                          BNN_MAX_SAMPLES, (long long)p->samples);
    if (q && bnn_posterior_n(q) != np)
        return bnn__error(BNN_ESHAPE, "the posterior has %lld parameters, the model %lld",
                          (long long)bnn_posterior_n(q), (long long)np);
    if (q && bnn_posterior_kind_of(q) == BNN_POSTERIOR_LAPLACE && p->samples == 0)
        return bnn_laplace_predict(bnn_posterior_laplace(q), m, x, n, task, p, probs, mi, mean,
                                   var);
    const bool sampled = p->samples > 0 && q && bnn_posterior_kind_of(q) != BNN_POSTERIOR_POINT;
    const int64_t S = sampled ? p->samples : 1;
    bnn__layer *l0 = bnn__model_layer(m, 0);
    const bool lrt = sampled && p->local_reparam;
    if (lrt && (bnn_posterior_kind_of(q) != BNN_POSTERIOR_DIAG || l0->vt != &bnn__linear_vt))
        return bnn__error(BNN_EINVAL, "local reparameterisation draws a Linear first layer's "
                          "outputs under a diagonal Gaussian posterior (ivon, mfvi); %s",
                          l0->vt != &bnn__linear_vt ? "the model's first layer is not Linear"
                                                    : "this posterior is not diagonal");
    const int64_t bs = p->batch_size < n ? p->batch_size : n;
    if ((rc = bnn_model_reserve(m, bs))) return rc;
    float *theta = NULL, *feat = NULL, *sig2 = NULL, *x2 = NULL, *lmu = NULL, *lsd = NULL;
    double *lp = NULL, *ent = NULL, *nv = NULL, *mx = NULL;
    if (sampled && !(theta = bnn__alloc_array(np, sizeof(float))))
        return bnn__error(BNN_ENOMEM, "out of memory");
    if (task == BNN_TASK_CLASSIFICATION || !sampled) y = NULL;
    if (y) {
        /* mx: the running maximum of the samples' log densities, mix their shifted sum */
        if (!(mx = bnn__alloc_array(n, sizeof(double)))) {
            rc = bnn__error(BNN_ENOMEM, "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < n; i++) mx[i] = -INFINITY, mix[i] = 0.0;
    }
    if (task == BNN_TASK_CLASSIFICATION) {
        lp = bnn__alloc_array(C, sizeof(double));
        ent = bnn__alloc_array(n, sizeof(double));
        if (!lp || !ent) {
            rc = bnn__error(BNN_ENOMEM, "out of memory");
            goto done;
        }
        /* probs holds the running log-sum-exp of the log-probabilities over samples. */
        for (int64_t i = 0; i < n * C; i++) probs[i] = -INFINITY;
    } else {
        /* lp: one example's means and noise variances; nv: the running sum of the noise
         * variances (heteroscedastic: they differ between samples). */
        lp = bnn__alloc_array(2 * C, sizeof(double));
        nv = bnn__alloc_array(n * C, sizeof(double));
        if (!lp || !nv) {
            rc = bnn__error(BNN_ENOMEM, "out of memory");
            goto done;
        }
        memset(mean, 0, (size_t)(n * C) * sizeof(double));
        memset(var, 0, (size_t)(n * C) * sizeof(double));
    }
    const float *mean_w = q ? bnn_posterior_cmean(q) : bnn_model_cparams(m);
    /* The layers before the first weight a sampled posterior varies give every sample the same
     * output: for a Laplace posterior over the last layer (or any later layers) they run once
     * per input, their output kept for a chunk of inputs, and each sample runs only the rest
     * (64 samples of the Fashion-MNIST MLP's last layer: 5-6 s -> 0.5 s). The batches and the
     * samples are the ones of the plain loop (the generator restarts for every chunk), so the
     * numbers are too. */
    const int64_t nl = bnn_model_nlayers(m);
    int64_t from = sampled ? bnn__model_first_layer_at(m, bnn__posterior_first_varied(q)) : 0;
    int64_t chunk = n, width = 0;
    if (from >= nl || lrt) from = 0; /* lrt: a diagonal posterior, which varies from weight 0 */
    if (from > 0) {
        width = bnn__model_layer_in(m, from);
        const int64_t cap = bnn__predict_feat_floats / width / bs * bs;
        chunk = cap < bs ? bs : (cap < n ? cap : n);
        if (!(feat = bnn__alloc_array(chunk * width, sizeof(float)))) {
            rc = bnn__error(BNN_ENOMEM, "out of memory");
            goto done;
        }
    }
    const int64_t out0 = l0->out;
    if (lrt) {
        /* the first layer's output mean and standard deviation for a chunk of inputs, in a
         * quarter of the memory the fixed layers' outputs may take above (16 MiB: a smaller
         * chunk costs only more weight samples, 0.3 ms each for the Fashion-MNIST MLP, and
         * evaluated as fast) */
        const int64_t np0 = l0->vt->nparams(l0);
        const int64_t cap = bnn__predict_feat_floats / 4 / (2 * out0) / bs * bs;
        chunk = cap < bs ? bs : (cap < n ? cap : n);
        sig2 = bnn__alloc_array(np0, sizeof(float));
        x2 = bnn__alloc_array(bs * l0->in, sizeof(float));
        lmu = bnn__alloc_array(chunk * out0, sizeof(float));
        lsd = bnn__alloc_array(chunk * out0, sizeof(float));
        if (!sig2 || !x2 || !lmu || !lsd) {
            rc = bnn__error(BNN_ENOMEM, "out of memory");
            goto done;
        }
        const float *sd0 = bnn_posterior_cstd(q) + l0->off;
        for (int64_t i = 0; i < np0; i++) sig2[i] = sd0[i] * sd0[i];
    }
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        const int64_t cn = n - c0 < chunk ? n - c0 : chunk;
        for (int64_t lo = 0; lrt && lo < cn; lo += bs) {
            const int64_t b = lo + bs <= cn ? bs : cn - lo;
            lrt_moments(l0, lmu + lo * out0, lsd + lo * out0, x + (c0 + lo) * d,
                        mean_w + l0->off, sig2, b, x2);
        }
        for (int64_t lo = 0; from > 0 && lo < cn; lo += bs) {
            const int64_t b = lo + bs <= cn ? bs : cn - lo;
            const float *h =
                bnn__model_forward_range(m, mean_w, x + (c0 + lo) * d, b, 0, from, false, NULL);
            memcpy(feat + lo * width, h, (size_t)(b * width) * sizeof(float));
        }
        const float *w = mean_w;
        bnn_rng rng = bnn_rng_make(p->seed, BNN_STREAM_PREDICT);
        for (int64_t s = 0; s < S; s++) {
            if (sampled) {
                if ((rc = bnn_posterior_sample(q, &rng, theta))) goto done;
                w = theta;
            }
            for (int64_t lo = c0; lo < c0 + cn; lo += bs) {
                const int64_t b = lo + bs <= c0 + cn ? bs : c0 + cn - lo;
                const float *f;
                if (lrt) {
                    float *y0 = bnn__model_act(m, 0);
                    lrt_draw(y0, lmu + (lo - c0) * out0, lsd + (lo - c0) * out0, b, out0, p->seed,
                             s, n, lo);
                    f = nl > 1 ? bnn__model_forward_range(m, w, y0, b, 1, nl, false, NULL) : y0;
                } else {
                    f = from > 0 ? bnn__model_forward_range(m, w, feat + (lo - c0) * width, b,
                                                            from, nl, false, NULL)
                                 : bnn_model_forward(m, w, x + lo * d, b, false, NULL);
                }
                for (int64_t r = 0; r < b; r++) {
                    const int64_t i = lo + r;
                    if (task == BNN_TASK_CLASSIFICATION) {
                        bnn__lik_log_probs(lik, lp, f + r * k, k, p->temperature);
                        double h = 0.0;
                        for (int64_t j = 0; j < C; j++) {
                            double a = probs[i * C + j], c = lp[j];
                            double hi = a > c ? a : c;
                            probs[i * C + j] =
                                hi == -INFINITY ? hi : hi + log1p(exp(-fabs(a - c)));
                            h -= lp[j] > -INFINITY ? exp(lp[j]) * lp[j] : 0.0;
                        }
                        ent[i] += h;
                    } else {
                        /* Welford's update of the sampled means' mean and sum of squares. */
                        bnn__lik_noise(lik, lp, lp + C, f + r * k, k, p->sigma);
                        double l = 0.0; /* log Π_j N(y_j; μ_j, v_j) for this sample */
                        for (int64_t j = 0; j < C; j++) {
                            double v = lp[j], dm = v - mean[i * C + j];
                            mean[i * C + j] += dm / (double)(s + 1);
                            var[i * C + j] += dm * (v - mean[i * C + j]);
                            nv[i * C + j] += lp[C + j];
                            if (y) l += bnn__log_normal(y[i * C + j], v, lp[C + j]);
                        }
                        /* A −∞ term (a zero density) adds nothing; NaN is skipped likewise. */
                        if (y && l > mx[i]) {
                            mix[i] = mix[i] * exp(mx[i] - l) + 1.0;
                            mx[i] = l;
                        } else if (y && l > -INFINITY) {
                            mix[i] += exp(l - mx[i]);
                        }
                    }
                }
            }
        }
    }
    if (task == BNN_TASK_CLASSIFICATION) {
        for (int64_t i = 0; i < n; i++) {
            double h = 0.0;
            for (int64_t j = 0; j < C; j++) {
                const double l = bnn__log_mean(probs[i * C + j], S), pj = exp(l);
                probs[i * C + j] = p->log_probs ? l : pj;
                h -= pj > 0.0 ? pj * l : 0.0;
            }
            if (mi) {
                double v = h - ent[i] / (double)S;
                mi[i] = v > 0.0 ? v : 0.0; /* rounding can leave −1e-17 */
            }
        }
    } else {
        /* The mixture of N(μ_s, v_s): mean of the v_s plus the variance of the μ_s. */
        const double s2 = p->sigma * p->sigma;
        for (int64_t i = 0; i < n * C; i++)
            var[i] = (lik == BNN_LIK_GAUSSIAN ? s2 : nv[i] / (double)S) + var[i] / (double)S;
        if (y) /* every density 0: mx = −∞, mix = 0, NLL +∞ */
            for (int64_t i = 0; i < n; i++)
                mix[i] = -(mx[i] + log(mix[i]) - log((double)S));
    }
    for (int64_t i = 0; i < n * C; i++) {
        /* exp: a log-probability of −inf (a probability 0) is a finite prediction */
        double v = task != BNN_TASK_CLASSIFICATION ? mean[i] + var[i]
                   : p->log_probs                  ? exp(probs[i])
                                                   : probs[i];
        if (isfinite(v) && task == BNN_TASK_REGRESSION && !(var[i] > 0.0)) {
            rc = bnn__error(BNN_EDIVERGED, "the predictive variance of example %lld is 0: the "
                            "predicted noise exp(log variance) underflows (an input far from the "
                            "training data?)", (long long)(i / C));
            goto done;
        }
        if (!isfinite(v)) {
            if (task == BNN_TASK_REGRESSION && isfinite(mean[i]) && lik == BNN_LIK_GAUSSIAN)
                rc = bnn__error(BNN_EDIVERGED,
                                "the predictive variance is not finite (example %lld): noise "
                                "sigma %g, or the weight samples' spread, is too large",
                                (long long)(i / C), p->sigma);
            else if (task == BNN_TASK_REGRESSION && isfinite(mean[i]))
                rc = bnn__error(BNN_EDIVERGED,
                                "the predictive variance is not finite (example %lld): the "
                                "predicted noise, or the weight samples' spread, is too large",
                                (long long)(i / C));
            else
                rc = bnn__error(BNN_EDIVERGED,
                                "the model's predictions are not finite (example %lld)",
                                (long long)(i / C));
            goto done;
        }
    }
done:
    bnn__free(feat);
    bnn__free(sig2);
    bnn__free(x2);
    bnn__free(lmu);
    bnn__free(lsd);
    bnn__free(theta);
    bnn__free(lp);
    bnn__free(ent);
    bnn__free(nv);
    bnn__free(mx);
    return rc;
}

int bnn_predict(bnn_model *m, const bnn_posterior *q, const float *x, int64_t n, bnn_task task,
                const struct bnn_predict_params *p, double *probs, double *mi, double *mean,
                double *var) {
    return predict_impl(m, q, x, n, task, p, probs, mi, mean, var, NULL, NULL);
}

int bnn_evaluate(bnn_model *m, const bnn_posterior *q, const bnn_dataset *ds,
                 const struct bnn_predict_params *p, int64_t nbins, struct bnn_eval_result *out) {
    if (!m || !ds || !p || !out)
        return bnn__error(BNN_EINVAL, "bnn_evaluate: m, ds, p and out are required");
    if (bnn_dataset_task(ds) == BNN_TASK_CLASSIFICATION && (nbins < 1 || nbins > BNN_MAX_BINS))
        return bnn__error(BNN_EINVAL, "bnn_evaluate: %lld calibration bins (1 to %d)",
                          (long long)nbins, BNN_MAX_BINS);
    memset(out, 0, sizeof *out);
    int rc = bnn__check_data(m, ds);
    if (rc) return rc;
    const int64_t n = ds->n, k = bnn_model_pred_dim(m, ds->task);
    double *a = bnn__alloc_array(n * k, sizeof(double));
    double *b = bnn__alloc_array(n * k, sizeof(double));
    double *mi = bnn__alloc_array(n, sizeof(double));
    double *y = ds->task == BNN_TASK_REGRESSION ? bnn__alloc_array(n * k, sizeof(double)) : NULL;
    out->nll_mixture = NAN;
    if (!a || !b || !mi || (ds->task == BNN_TASK_REGRESSION && !y)) {
        rc = bnn__error(BNN_ENOMEM, "out of memory");
        goto done;
    }
    out->task = ds->task;
    out->n = n;
    if (ds->task == BNN_TASK_CLASSIFICATION) {
        struct bnn_predict_params pl = *p;
        pl.log_probs = true; /* an exact NLL where a probability underflows */
        if ((rc = bnn_predict(m, q, ds->x, n, ds->task, &pl, a, mi, NULL, NULL))) goto done;
        if ((rc = bnn_metrics_classification_log(&out->cls, a, ds->labels, n, k, nbins)))
            goto done;
        out->accuracy = out->cls.accuracy;
        out->nll = out->cls.nll;
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += mi[i];
        out->mean_mi = s / (double)n;
    } else {
        /* With S > 1 weight samples the predictive is a mixture; its own NLL goes beside the
         * NLL of the Gaussian with its moments (mi is n doubles: it holds the per-example NLL). */
        const bool mixture = p->samples > 1 && q && bnn_posterior_kind_of(q) != BNN_POSTERIOR_POINT;
        for (int64_t i = 0; i < n * k; i++) y[i] = ds->targets[i];
        if ((rc = predict_impl(m, q, ds->x, n, ds->task, p, NULL, NULL, a, b, mixture ? y : NULL,
                               mixture ? mi : NULL)))
            goto done;
        if ((rc = bnn_metrics_regression(&out->reg, a, b, y, n * k))) goto done;
        out->rmse = out->reg.rmse;
        out->nll = out->reg.nll * (double)k; /* per example, summed over the k outputs */
        if (mixture) {
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) s += mi[i];
            out->nll_mixture = s / (double)n;
        }
    }
done:
    bnn__free(a), bnn__free(b), bnn__free(mi), bnn__free(y);
    return rc;
}
