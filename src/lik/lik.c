/* Likelihoods (DESIGN.md "Likelihoods"): for each, the loss of a mini-batch and its gradient with
 * respect to the network output (training), and per example what the curvature pass and the
 * predictive need — the output Hessian in factored form, the empirical and the sampled Fisher's
 * rows, the class log-probabilities or the Gaussian noise.
 *
 *   categorical      K logits, softmax.
 *   gaussian         T means, fixed noise σ.
 *   bernoulli        one logit f, p(y = 1) = sigmoid(f). A 2-class softmax with logits (0, f) is
 *                    the same model (softmax(0, f)_1 = sigmoid(f)), which is how the predictive
 *                    reports it: two class probabilities.
 *   hetero-gaussian  f = (μ, η), y ~ N(μ, e^η): the mean-variance network (Nix & Weigend,
 *                    "Estimating the mean and variance of the target probability distribution",
 *                    ICNN 1994) with the log-variance output of Kendall & Gal ("What
 *                    uncertainties do we need in Bayesian deep learning for computer vision?",
 *                    NeurIPS 2017, eq. 8).
 *
 * The output Hessian of the heteroscedastic NLL in (μ, η),
 *   ∇²_f = [[e^{−η}, r e^{−η}], [r e^{−η}, ½ r² e^{−η}]],  r = y − μ,
 * has determinant −½ r² e^{−2η} ≤ 0: it is indefinite wherever r ≠ 0, so a "GGN" built from it
 * would not be a curvature. We use its expectation under the model, the Fisher information
 *   Λ = E_y[∇²_f] = diag(e^{−η}, ½),
 * which is PSD and does not depend on y. This is the GGN that Immer, Palumbo, Marx & Vogt
 * ("Effective Bayesian Heteroscedastic Regression with Deep Neural Networks", NeurIPS 2023,
 * Sec. 3) obtain by writing the Gaussian in its natural parameters, where the NLL is convex, and
 * linearising the map from the network to them: the Fisher transforms with the Jacobian of the
 * parameterisation, so it is the same matrix in every parameterisation, and for an exponential
 * family in natural parameters the Fisher is the GGN. It is diagonal because μ and log σ² are
 * orthogonal parameters of the Gaussian. */
#include "core/internal.h"

#include <math.h>
#include <string.h>

#define LIK_HALF_LOG_2PI 0.91893853320467274178 /* ½ log 2π */

static const char *const lik_names[] = {"categorical", "gaussian", "bernoulli", "hetero-gaussian"};

const char *bnn_lik_name(bnn_lik_kind kind) {
    return kind >= BNN_LIK_CATEGORICAL && kind <= BNN_LIK_HETERO_GAUSSIAN ? lik_names[kind] : "?";
}

int bnn_lik_parse(const char *name, bnn_lik_kind *out) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_lik_parse: out is NULL");
    int i;
    const int rc = bnn__name_parse(lik_names, BNN_LIK_HETERO_GAUSSIAN + 1, name, "likelihood", &i);
    if (!rc) *out = (bnn_lik_kind)i;
    return rc;
}

bnn_task bnn_lik_task(bnn_lik_kind kind) {
    return kind == BNN_LIK_GAUSSIAN || kind == BNN_LIK_HETERO_GAUSSIAN ? BNN_TASK_REGRESSION
                                                                       : BNN_TASK_CLASSIFICATION;
}

int64_t bnn_lik_outputs(bnn_lik_kind kind, int64_t k) {
    if (k < 1) return 0;
    switch (kind) {
    case BNN_LIK_CATEGORICAL:
    case BNN_LIK_GAUSSIAN: return k;
    case BNN_LIK_BERNOULLI: return k <= 2 ? 1 : 0;
    case BNN_LIK_HETERO_GAUSSIAN: return k == 1 ? 2 : 0;
    }
    return 0;
}

int64_t bnn_lik_pred_dim(bnn_lik_kind kind, int64_t outputs) {
    switch (kind) {
    case BNN_LIK_BERNOULLI: return 2;
    case BNN_LIK_HETERO_GAUSSIAN: return outputs / 2;
    default: return outputs;
    }
}

/* softplus(x) = log(1 + eˣ) without overflow: max(x, 0) + log1p(e^{−|x|}). */
static double softplus(double x) { return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x))); }

/* sigmoid(x) without overflow: the exponential is of −|x| only. */
static double sigmoid(double x) {
    const double e = exp(-fabs(x));
    return x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

/* Softmax cross-entropy, computed by log-sum-exp in double: loss_r = lse(f_r) − f_r[y_r];
 * ∂/∂f_r = (softmax(f_r) − e_{y_r}) / b. */
static double categorical(float *dout, const float *f, const int32_t *labels, int64_t b,
                          int64_t k) {
    double total = 0.0;
    for (int64_t r = 0; r < b; r++) {
        const float *row = f + r * k;
        double mx = row[0];
        for (int64_t j = 1; j < k; j++)
            if (row[j] > mx) mx = row[j];
        double s = 0.0;
        for (int64_t j = 0; j < k; j++)
            s += exp((double)row[j] - mx);
        /* The loss keeps mx and log s apart: with logits beyond ~1e16, mx + log s rounds to mx
         * and the loss of tied classes would be 0, not log 2. The gradient keeps the sum (its
         * bits are those every recorded run was trained with; at such logits a network has
         * diverged, and the training loop stops on the non-finite weights that follow). */
        const double ls = log(s), lse = mx + ls;
        int32_t y = labels[r];
        if (y < 0 || y >= k) {
            bnn__error(BNN_EINVAL, "label %d of example %lld is not in [0, %lld)", (int)y,
                       (long long)r, (long long)k);
            return NAN;
        }
        total += (mx - (double)row[y]) + ls;
        if (dout) {
            float *d = dout + r * k;
            for (int64_t j = 0; j < k; j++)
                d[j] = (float)((exp((double)row[j] - lse) - (j == y ? 1.0 : 0.0)) / (double)b);
        }
    }
    return total / (double)b;
}

/* Gaussian with fixed noise σ: loss_r = Σ_j (f − y)²/(2σ²) + log σ + ½ log 2π;
 * ∂/∂f = (f − y) / (σ² b). */
static double gaussian(float *dout, const float *f, const float *targets, int64_t b, int64_t k,
                       double sigma) {
    const double inv_var = 1.0 / (sigma * sigma);
    const double c = log(sigma) + 0.5 * log(2.0 * 3.14159265358979323846);
    double total = 0.0;
    for (int64_t i = 0; i < b * k; i++) {
        double r = (double)f[i] - (double)targets[i];
        total += 0.5 * r * r * inv_var + c;
        if (dout) dout[i] = (float)(r * inv_var / (double)b);
    }
    return total / (double)b;
}

/* Bernoulli on one logit: loss_r = softplus(f) − y f, which is softplus(f) for y = 0 and
 * softplus(−f) for y = 1 (= −log sigmoid(±f)): no log of a rounded probability and no
 * cancellation of softplus(f) against f; ∂/∂f = (sigmoid(f) − y) / b. */
static double bernoulli(float *dout, const float *f, const int32_t *labels, int64_t b) {
    double total = 0.0;
    for (int64_t r = 0; r < b; r++) {
        const int32_t y = labels[r];
        if (y != 0 && y != 1) {
            bnn__error(BNN_EINVAL, "label %d of example %lld is not 0 or 1 (bernoulli)", (int)y,
                       (long long)r);
            return NAN;
        }
        const double x = f[r];
        total += softplus(y ? -x : x);
        if (dout) dout[r] = (float)((sigmoid(x) - (double)y) / (double)b);
    }
    return total / (double)b;
}

/* Heteroscedastic Gaussian on (μ, η): loss_r = ½ log 2π + ½ η + ½ r² e^{−η} with r = y − μ;
 * ∂/∂μ = −r e^{−η} / b, ∂/∂η = (½ − ½ r² e^{−η}) / b. */
static double hetero(float *dout, const float *f, const float *targets, int64_t b) {
    double total = 0.0;
    for (int64_t r = 0; r < b; r++) {
        const double mu = f[2 * r], eta = f[2 * r + 1], res = (double)targets[r] - mu;
        const double w = exp(-eta), q = res * res * w;
        total += LIK_HALF_LOG_2PI + 0.5 * eta + 0.5 * q;
        if (dout) {
            dout[2 * r] = (float)(-res * w / (double)b);
            dout[2 * r + 1] = (float)((0.5 - 0.5 * q) / (double)b);
        }
    }
    return total / (double)b;
}

double bnn_lik_loss(const bnn_lik *lik, float *dout, const float *f, const int32_t *labels,
                    const float *targets, int64_t b, int64_t k) {
    BNN_ASSERT(b >= 1 && k >= 1);
    if (lik && (lik->kind < BNN_LIK_CATEGORICAL || lik->kind > BNN_LIK_HETERO_GAUSSIAN)) {
        bnn__error(BNN_EINVAL, "bnn_lik_loss: unknown likelihood kind %d", (int)lik->kind);
        return NAN;
    }
    const bool cls = lik && bnn_lik_task(lik->kind) == BNN_TASK_CLASSIFICATION;
    if (!lik || !f || (cls ? !labels : !targets)) { /* dout may be NULL: the loss alone */
        bnn__error(BNN_EINVAL, "bnn_lik_loss: the likelihood, f and the %s are required",
                   cls ? "labels" : "targets");
        return NAN;
    }
    switch (lik->kind) {
    case BNN_LIK_CATEGORICAL: return categorical(dout, f, labels, b, k);
    case BNN_LIK_GAUSSIAN:
        if (!(lik->sigma > 0.0) || !isfinite(lik->sigma)) {
            bnn__error(BNN_EINVAL, "bnn_lik_loss: the Gaussian noise sigma must be positive and "
                       "finite (got %g)", lik->sigma);
            return NAN;
        }
        return gaussian(dout, f, targets, b, k, lik->sigma);
    case BNN_LIK_BERNOULLI: BNN_ASSERT(k == 1); return bernoulli(dout, f, labels, b);
    case BNN_LIK_HETERO_GAUSSIAN: BNN_ASSERT(k == 2); return hetero(dout, f, targets, b);
    }
    BNN_ASSERT(!"unknown likelihood");
    return NAN;
}

/* ------------------------------------------------------------------ curvature */

double bnn__lik_curv_state(bnn_lik_kind kind, double *st, const float *f, int64_t k, int32_t label,
                           const float *target) {
    switch (kind) {
    case BNN_LIK_CATEGORICAL: {
        double mx = f[0], s = 0.0;
        for (int64_t j = 1; j < k; j++)
            if (f[j] > mx) mx = f[j];
        for (int64_t j = 0; j < k; j++)
            s += (st[j] = exp((double)f[j] - mx));
        for (int64_t j = 0; j < k; j++)
            st[j] /= s;
        return (mx - (double)f[label]) + log(s); /* mx and log s apart, as in categorical */
    }
    case BNN_LIK_GAUSSIAN: {
        double loss = 0.0;
        for (int64_t j = 0; j < k; j++) {
            double e = (double)f[j] - (double)target[j];
            loss += 0.5 * e * e;
            st[j] = e; /* the residual, for the empirical Fisher */
        }
        return loss;
    }
    case BNN_LIK_BERNOULLI:
        st[0] = sigmoid(f[0]);
        return softplus(label ? -(double)f[0] : (double)f[0]);
    case BNN_LIK_HETERO_GAUSSIAN: {
        const double res = (double)f[0] - (double)target[0], w = exp(-(double)f[1]);
        st[0] = res, st[1] = w;
        return LIK_HALF_LOG_2PI + 0.5 * (double)f[1] + 0.5 * res * res * w;
    }
    }
    BNN_ASSERT(!"unknown likelihood");
    return NAN;
}

void bnn__lik_factor_col(bnn_lik_kind kind, float *d, const double *st, int64_t k, int64_t c) {
    switch (kind) {
    case BNN_LIK_CATEGORICAL: /* √p_c (e_c − p) */
        for (int64_t j = 0; j < k; j++)
            d[j] = (float)(sqrt(st[c]) * ((j == c ? 1.0 : 0.0) - st[j]));
        return;
    case BNN_LIK_GAUSSIAN: /* e_c */
        for (int64_t j = 0; j < k; j++)
            d[j] = (float)(j == c);
        return;
    case BNN_LIK_BERNOULLI: /* √(p (1 − p)) */ d[0] = (float)sqrt(st[0] * (1.0 - st[0])); return;
    case BNN_LIK_HETERO_GAUSSIAN: /* columns of diag(e^{−η/2}, 1/√2) */
        d[0] = c == 0 ? (float)sqrt(st[1]) : 0.0f;
        d[1] = c == 1 ? (float)sqrt(0.5) : 0.0f;
        return;
    }
}

double bnn__lik_out_hess(bnn_lik_kind kind, const double *st, int64_t i, int64_t j) {
    switch (kind) {
    case BNN_LIK_CATEGORICAL: return (i == j ? st[i] : 0.0) - st[i] * st[j];
    case BNN_LIK_GAUSSIAN: return i == j ? 1.0 : 0.0;
    case BNN_LIK_BERNOULLI: return st[0] * (1.0 - st[0]);
    case BNN_LIK_HETERO_GAUSSIAN: return i != j ? 0.0 : i == 0 ? st[1] : 0.5;
    }
    return NAN;
}

bool bnn__lik_diag_hess(bnn_lik_kind kind) {
    return kind == BNN_LIK_GAUSSIAN || kind == BNN_LIK_HETERO_GAUSSIAN;
}

void bnn__lik_grad_row(bnn_lik_kind kind, float *d, const double *st, int64_t k, int32_t label) {
    switch (kind) {
    case BNN_LIK_CATEGORICAL: /* p − e_y */
        for (int64_t j = 0; j < k; j++)
            d[j] = (float)(st[j] - (j == label));
        return;
    case BNN_LIK_GAUSSIAN: /* f − y */
        for (int64_t j = 0; j < k; j++)
            d[j] = (float)st[j];
        return;
    case BNN_LIK_BERNOULLI: d[0] = (float)(st[0] - (double)label); return;
    case BNN_LIK_HETERO_GAUSSIAN: /* ((μ − y) e^{−η}, ½ − ½ (μ − y)² e^{−η}) */
        d[0] = (float)(st[0] * st[1]);
        d[1] = (float)(0.5 - 0.5 * st[0] * st[0] * st[1]);
        return;
    }
}

uint64_t bnn__lik_sample_blocks(bnn_lik_kind kind, int64_t k) {
    return kind == BNN_LIK_GAUSSIAN ? (uint64_t)((k + 3) / 4) : 1;
}

void bnn__lik_sample_row(bnn_lik_kind kind, float *d, const double *st, int64_t k, bnn_rng *rng) {
    switch (kind) {
    case BNN_LIK_CATEGORICAL: {
        /* ỹ ~ Cat(p) by inversion; the last class with p > 0 absorbs rounding. */
        float u;
        bnn_rng_uniform(rng, &u, 1);
        int64_t yt = -1;
        double cum = 0.0;
        for (int64_t j = 0; j < k; j++) {
            if (st[j] > 0.0) yt = j;
            cum += st[j];
            if ((double)u < cum && st[j] > 0.0) break;
        }
        for (int64_t j = 0; j < k; j++)
            d[j] = (float)(st[j] - (j == yt));
        return;
    }
    case BNN_LIK_GAUSSIAN:
        /* At σ = 1 the score (f − ỹ) with ỹ = f + ε is −ε; the sign does not matter. */
        bnn_rng_normal(rng, d, k);
        return;
    case BNN_LIK_BERNOULLI: {
        float u;
        bnn_rng_uniform(rng, &u, 1);
        d[0] = (float)(st[0] - ((double)u < st[0] ? 1.0 : 0.0));
        return;
    }
    case BNN_LIK_HETERO_GAUSSIAN: {
        /* ỹ = μ + σ z: the score is (−z/σ, ½ − ½ z²), whose outer product has expectation Λ. */
        float z;
        bnn_rng_normal(rng, &z, 1);
        d[0] = (float)(-(double)z * sqrt(st[1]));
        d[1] = (float)(0.5 - 0.5 * (double)z * (double)z);
        return;
    }
    }
}

/* ------------------------------------------------------------------ predictive */

void bnn__lik_log_probs(bnn_lik_kind kind, double *lp, const float *f, int64_t k, double T) {
    if (kind == BNN_LIK_BERNOULLI) { /* log(1 − p) = −softplus(z), log p = −softplus(−z) */
        const double z = (double)f[0] / T;
        lp[0] = -softplus(z), lp[1] = -softplus(-z);
        return;
    }
    double mx = (double)f[0] / T;
    for (int64_t j = 1; j < k; j++)
        mx = (double)f[j] / T > mx ? (double)f[j] / T : mx;
    double s = 0.0;
    for (int64_t j = 0; j < k; j++)
        s += exp((double)f[j] / T - mx);
    /* (f/T − mx) − log s, not f/T − (mx + log s): beyond |f/T| ~1e16 the sum rounds to mx and
     * tied classes would each get log-probability 0 (found with --temperature 1e-20). */
    const double ls = log(s);
    for (int64_t j = 0; j < k; j++)
        lp[j] = ((double)f[j] / T - mx) - ls;
}

void bnn__lik_noise(bnn_lik_kind kind, double *mean, double *noise_var, const float *f, int64_t k,
                    double sigma) {
    if (kind == BNN_LIK_HETERO_GAUSSIAN) {
        mean[0] = f[0], noise_var[0] = exp((double)f[1]);
        return;
    }
    for (int64_t j = 0; j < k; j++)
        mean[j] = f[j], noise_var[j] = sigma * sigma;
}
