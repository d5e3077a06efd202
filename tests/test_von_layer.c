/* Tests of VON on the last layer (src/fit/von_layer.c) against computations written here in
 * double from the model's weights, without the library's curvature or gradient code:
 * - a linear model with a Gaussian likelihood: one step with ρ = 1 is Bayesian linear
 *   regression's posterior (bnn_blr_fit on the design with a column of ones, which is itself
 *   checked against the exact formulas in test_von); with ρ = ½ (σ ≠ 1) each step halves the
 *   distance to that mean while the precision stays;
 * - a tanh network's last layer under the categorical, Bernoulli and heteroscedastic Gaussian
 *   likelihoods (the last two have another output width than the data's), delta method,
 *   ρ = 1: the steps converge to the point where the gradient of Σ loss + ½δ‖m‖² vanishes, with
 *   the precision GGN(m) + δI there and the recorded loss Σ loss at m;
 * - Monte Carlo, one step with ρ < 1 from the starting q: the update replayed by hand with the
 *   same noise (draws, expected gradient and GGN, the step);
 * - the result as a posterior (GLM predictive, save and load) and the error contract. */
#include "check.h"
#include "core/internal.h"

#include <lapacke.h>
#include <string.h>
#include <unistd.h>

/* max|c − r| / max|r| */
static double rel_err(const double *c, const double *r, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs(c[i] - r[i]);
        if (!(e <= num)) num = e;
        if (fabs(r[i]) > den) den = fabs(r[i]);
    }
    return den > 0.0 ? num / den : num;
}

static double *alloc_d(int64_t n) { return calloc((size_t)n, sizeof(double)); }

/* ------------------------------------------------------------ linear-Gaussian: BLR exactly */

static void test_linear_gaussian(void) {
    enum { N = 40, D = 3, P = D + 1 };
    bnn_model *m = NULL;
    REQUIRE(bnn_model_new(&m, "mlp:3-1") == 0);
    bnn_model_init(m, 3);
    bnn_dataset *ds = NULL;
    REQUIRE(bnn_dataset_new(&ds, BNN_TASK_REGRESSION, N, D, 1, 0) == 0);
    float *x = bnn_dataset_x(ds), *y = bnn_dataset_targets(ds);
    bnn_rng r = bnn_rng_make(11, 0);
    bnn_rng_normal(&r, x, N * D);
    float noise[N];
    bnn_rng_normal(&r, noise, N);
    for (int i = 0; i < N; i++)
        y[i] = 0.5f * x[i * D] - 1.25f * x[i * D + 1] + 0.3f + 0.7f * noise[i];
    const double alpha = 2.0, sigma = 0.7;
    /* the reference: exact BLR on [x, 1] (the layer's weights, then its bias) */
    double X[N * P], Y[N], mean[P], prec[P * P];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++)
            X[i * P + j] = x[i * D + j];
        X[i * P + D] = 1.0, Y[i] = y[i];
    }
    REQUIRE(bnn_blr_fit(mean, prec, NULL, NULL, X, Y, N, P, alpha, sigma * sigma) == 0);

    struct bnn_von_params p = bnn_von_default_params();
    p.steps = 1, p.rho = 1.0, p.prior_prec = alpha, p.sigma = sigma;
    bnn_laplace *la = NULL;
    struct bnn_von_result res;
    REQUIRE(bnn_von_last_layer(&la, m, ds, &p, &res) == 0);
    CHECK(res.objective < res.objective0 && res.halvings == 0 && res.last_change > 0.1);
    double got[P * P], gm[P];
    REQUIRE(bnn_laplace_precision_dense(la, got) == 0);
    const float *w = bnn_model_cparams(m);
    for (int i = 0; i < P; i++)
        gm[i] = w[i];
    const double em = rel_err(gm, mean, P), ep = rel_err(got, prec, P * P);
    printf("linear-Gaussian, one step rho = 1: mean rel err %.2e, precision %.2e\n", em, ep);
    CHECK(em < 1e-5);
    CHECK(ep < 1e-6);
    CHECK_NEAR(bnn_laplace_prior_prec(la), alpha, 0.0);
    CHECK_NEAR(bnn_laplace_sigma(la), sigma, 0.0);
    /* the recorded loss is laplace-torch's for the Gaussian: ½ Σ (f − y)², at the mean */
    double rss = 0.0;
    for (int i = 0; i < N; i++) {
        double f = gm[D];
        for (int j = 0; j < D; j++)
            f += gm[j] * x[i * D + j];
        rss += 0.5 * (f - y[i]) * (f - y[i]);
    }
    const double el = fabs(bnn_curv_loss(bnn_laplace_curv(la)) - rss) / rss;
    printf("linear-Gaussian: recorded loss %.6g, by hand %.6g (rel err %.1e)\n",
           bnn_curv_loss(bnn_laplace_curv(la)), rss, el);
    CHECK(el < 1e-5);
    bnn_laplace_free(la);

    /* ρ = ½ from other weights: S0 = H + αI is already the posterior precision, so S stays and
     * each step halves the distance to the posterior mean: m3 = mean + (m0 − mean)/8. */
    bnn_model_init(m, 4);
    double m0[P], want[P];
    for (int i = 0; i < P; i++)
        m0[i] = bnn_model_cparams(m)[i], want[i] = mean[i] + (m0[i] - mean[i]) / 8.0;
    p.steps = 3, p.rho = 0.5;
    REQUIRE(bnn_von_last_layer(&la, m, ds, &p, NULL) == 0);
    REQUIRE(bnn_laplace_precision_dense(la, got) == 0);
    for (int i = 0; i < P; i++)
        gm[i] = bnn_model_cparams(m)[i];
    const double em3 = rel_err(gm, want, P), ep3 = rel_err(got, prec, P * P);
    printf("linear-Gaussian, three steps rho = 1/2: mean rel err %.2e (%.2e from the posterior "
           "mean), precision %.2e\n",
           em3, rel_err(gm, mean, P), ep3);
    CHECK(em3 < 1e-5 && rel_err(gm, mean, P) > 1e-3);
    CHECK(ep3 < 1e-6);
    /* its δ is part of q: the marginal-likelihood optimisers refuse it (they replaced δ) */
    CHECK_EQ_INT(bnn_laplace_optimize(la, 10), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "a VON posterior") != NULL);
    CHECK_EQ_INT(bnn_laplace_optimize_layers(la, 10), BNN_EINVAL);
    CHECK(bnn_laplace_prior_prec(la) == p.prior_prec);
    bnn_laplace_free(la);
    bnn_dataset_free(ds);
    bnn_model_free(m);
}

/* ------------------------------------------------------------ a last layer, by hand */

enum { CN = 60, CH = 6, MAXK = 3, MAXP = MAXK * (CH + 1) };

/* A network mlp:D-6-K:tanh on CN examples, its last layer's likelihood, and the data. */
struct prob {
    bnn_model *m;
    bnn_dataset *ds;
    bnn_lik_kind lik;
    int64_t D, K, P; /* inputs, outputs, last-layer parameters K·(H + 1) */
};

/* φ̃ (n × (H+1)) from the flat weights [W1 (H × D), b1, W2, b2]. */
static void features(double *phit, const float *w, const float *x, int64_t n, int64_t D) {
    const float *W1 = w, *b1 = w + CH * D;
    for (int64_t r = 0; r < n; r++) {
        for (int h = 0; h < CH; h++) {
            double a = b1[h];
            for (int64_t d = 0; d < D; d++)
                a += (double)W1[h * D + d] * x[r * D + d];
            phit[r * (CH + 1) + h] = tanh(a);
        }
        phit[r * (CH + 1) + CH] = 1.0;
    }
}

/* The gradient (P) and GGN (P × P, may be NULL) of Σ_r ℓ_r with respect to the last layer θ
 * (W2 row-major, then b2) at θ; returns Σ_r ℓ_r. Per example, from the outputs f: the
 * gradient d = ∂ℓ/∂f and the output-space matrix W of the GGN —
 *   categorical:      ℓ = lse(f) − f_y,                     d = p − e_y,  W = diag(p) − ppᵀ;
 *   Bernoulli:        ℓ = softplus(f) − y f,                d = s − y,    W = s(1 − s);
 *   heteroscedastic:  ℓ = ½ log 2π + ½η + ½(y − μ)² e^{−η},
 *                     d = ((μ − y)e^{−η}, ½ − ½(y − μ)²e^{−η}),
 *                     W = diag(e^{−η}, ½) (the Fisher, which the library uses as its GGN). */
static double layer_by_hand(double *g, double *H, const struct prob *q, const double *phit,
                            const double *theta) {
    const int64_t K = q->K, P = q->P, n = CN;
    const int32_t *lab = bnn_dataset_labels(q->ds);
    const float *tg = bnn_dataset_targets(q->ds);
    memset(g, 0, (size_t)P * sizeof *g);
    if (H) memset(H, 0, (size_t)(P * P) * sizeof *H);
    double loss = 0.0;
    for (int64_t r = 0; r < n; r++) {
        const double *ph = phit + r * (CH + 1);
        double f[MAXK] = {0}, d[MAXK] = {0}, W[MAXK][MAXK] = {{0}};
        for (int64_t k = 0; k < K; k++) {
            f[k] = theta[K * CH + k];
            for (int i = 0; i < CH; i++)
                f[k] += theta[k * CH + i] * ph[i];
        }
        if (q->lik == BNN_LIK_CATEGORICAL) {
            double mx = -INFINITY, z = 0.0, pr[MAXK];
            for (int64_t k = 0; k < K; k++)
                mx = fmax(mx, f[k]);
            for (int64_t k = 0; k < K; k++)
                z += exp(f[k] - mx);
            for (int64_t k = 0; k < K; k++)
                pr[k] = exp(f[k] - mx) / z;
            loss += log(z) + mx - f[lab[r]];
            for (int64_t k = 0; k < K; k++) {
                d[k] = pr[k] - (k == lab[r]);
                for (int64_t k2 = 0; k2 < K; k2++)
                    W[k][k2] = (k == k2 ? pr[k] : 0.0) - pr[k] * pr[k2];
            }
        } else if (q->lik == BNN_LIK_BERNOULLI) {
            const double sg = 1.0 / (1.0 + exp(-f[0]));
            loss += fmax(f[0], 0.0) + log1p(exp(-fabs(f[0]))) - lab[r] * f[0];
            d[0] = sg - lab[r], W[0][0] = sg * (1.0 - sg);
        } else { /* heteroscedastic Gaussian */
            const double mu = f[0], eta = f[1], e = exp(-eta), res = tg[r] - mu;
            loss += 0.91893853320467274178 + 0.5 * eta + 0.5 * res * res * e;
            d[0] = -res * e, d[1] = 0.5 - 0.5 * res * res * e;
            W[0][0] = e, W[1][1] = 0.5;
        }
        /* parameter index of (k, i): weights k·H + i for i < H, the bias K·H + k for i = H */
#define IDX(k, i) ((i) < CH ? (k)*CH + (i) : K * CH + (k))
        for (int64_t k = 0; k < K; k++)
            for (int i = 0; i <= CH; i++)
                g[IDX(k, i)] += d[k] * ph[i];
        if (!H) continue;
        for (int64_t k = 0; k < K; k++)
            for (int64_t k2 = 0; k2 < K; k2++)
                for (int i = 0; i <= CH; i++)
                    for (int i2 = 0; i2 <= CH; i2++)
                        H[IDX(k, i) * P + IDX(k2, i2)] += W[k][k2] * ph[i] * ph[i2];
#undef IDX
    }
    return loss;
}

/* categorical: 4 inputs, 3 classes; Bernoulli: 4 inputs, 2 classes, one output;
 * heteroscedastic: 2 inputs, one target, two outputs (mean, log variance). */
static void make_problem(struct prob *q, bnn_lik_kind lik) {
    q->lik = lik;
    q->D = lik == BNN_LIK_HETERO_GAUSSIAN ? 2 : 4;
    q->K = lik == BNN_LIK_CATEGORICAL ? 3 : lik == BNN_LIK_BERNOULLI ? 1 : 2;
    q->P = q->K * (CH + 1);
    char spec[64];
    snprintf(spec, sizeof spec, "mlp:%lld-%d-%lld:tanh", (long long)q->D, CH, (long long)q->K);
    REQUIRE(bnn_model_new(&q->m, spec) == 0);
    REQUIRE(bnn_model_set_lik(q->m, lik) == 0);
    bnn_model_init(q->m, 5);
    const bool reg = lik == BNN_LIK_HETERO_GAUSSIAN;
    REQUIRE(bnn_dataset_new(&q->ds, reg ? BNN_TASK_REGRESSION : BNN_TASK_CLASSIFICATION, CN, q->D,
                            1, lik == BNN_LIK_CATEGORICAL ? 3 : 2) == 0);
    float *x = bnn_dataset_x(q->ds);
    bnn_rng r = bnn_rng_make(21, 0);
    bnn_rng_normal(&r, x, CN * q->D);
    for (int i = 0; i < CN; i++) { /* a noisy teacher, so the classes overlap */
        const double s = x[i * q->D] + 0.5 * x[i * q->D + 1] + 0.3 * (double)bnn_rng_below(&r, 3);
        if (reg)
            bnn_dataset_targets(q->ds)[i] = (float)(sin(2.0 * s) + 0.1 * (1.0 + fabs(s)) * s);
        else if (lik == BNN_LIK_BERNOULLI)
            bnn_dataset_labels(q->ds)[i] = s > 0.3;
        else
            bnn_dataset_labels(q->ds)[i] = s < -0.4 ? 0 : s < 0.6 ? 1 : 2;
    }
}

static void free_problem(struct prob *q) {
    bnn_dataset_free(q->ds);
    bnn_model_free(q->m);
}

static const char *lik_label(bnn_lik_kind k) {
    return k == BNN_LIK_CATEGORICAL ? "categorical"
           : k == BNN_LIK_BERNOULLI ? "bernoulli"
                                    : "hetero";
}

/* How far θ is from the stationary point of Σ loss + ½δ‖θ‖²: the Newton step
 * (GGN(θ) + δI)⁻¹ ∇ that is left, relative to max |θ| (the gradient alone scales with the
 * curvature; this is at the rounding of the float weights when converged). Hd receives
 * GGN(θ) + δI, *dn max |∇ Σ loss| (to show the prior pulls), and the loss is returned. */
static double newton_left(const struct prob *q, const double *phit, const double *theta,
                          double delta, double *Hd, double *dn, double *loss) {
    const int64_t P = q->P;
    double *g = alloc_d(P), *A = alloc_d(P * P), zero[MAXP] = {0};
    *loss = layer_by_hand(g, Hd, q, phit, theta);
    *dn = 0.0;
    for (int64_t i = 0; i < P; i++) {
        Hd[i * P + i] += delta;
        *dn = fmax(*dn, fabs(g[i]));
        g[i] += delta * theta[i];
    }
    memcpy(A, Hd, (size_t)(P * P) * sizeof *A);
    REQUIRE(LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', (lapack_int)P, 1, A, (lapack_int)P, g, 1) == 0);
    const double left = rel_err(g, zero, P) / rel_err(theta, zero, P);
    free(g), free(A);
    return left;
}

static void test_delta_converges(bnn_lik_kind lik) {
    struct prob q;
    make_problem(&q, lik);
    const int64_t P = q.P, off = bnn_model_nparams(q.m) - P;
    const double delta = 0.5;
    struct bnn_von_params p = bnn_von_default_params();
    p.steps = 30, p.prior_prec = delta;
    bnn_laplace *la = NULL;
    REQUIRE(bnn_von_last_layer(&la, q.m, q.ds, &p, NULL) == 0);
    const float *w = bnn_model_cparams(q.m);
    double *phit = alloc_d(CN * (CH + 1)), *theta = alloc_d(P);
    double *H = alloc_d(P * P), *S = alloc_d(P * P), dn, loss;
    features(phit, w, bnn_dataset_x(q.ds), CN, q.D);
    for (int64_t i = 0; i < P; i++)
        theta[i] = w[off + i];
    const double step = newton_left(&q, phit, theta, delta, H, &dn, &loss);
    printf("%s, delta method, %lld steps: Newton step left %.2e of max |theta| (data gradient "
           "%.2e)\n",
           lik_label(lik), (long long)p.steps, step, dn);
    CHECK(step < 1e-5);
    CHECK(dn > 1e-2); /* the prior pulls: not a trivial optimum */
    REQUIRE(bnn_laplace_precision_dense(la, S) == 0);
    const double ep = rel_err(S, H, P * P);
    const double el = fabs(bnn_curv_loss(bnn_laplace_curv(la)) - loss) / fabs(loss);
    printf("%s: precision vs GGN(m) + delta I by hand: rel err %.2e; recorded loss rel err %.1e\n",
           lik_label(lik), ep, el);
    CHECK(ep < 1e-5);
    CHECK(el < 1e-5);
    CHECK_NEAR(bnn_laplace_prior_prec(la), delta, 0.0);

    /* as a posterior: the GLM predictive, and it survives a file */
    bnn_posterior *qp = NULL;
    REQUIRE(bnn_posterior_from_laplace(&qp, q.m, la) == 0);
    const bnn_task task = bnn_dataset_task(q.ds);
    const int64_t C = bnn_model_pred_dim(q.m, task);
    struct bnn_predict_params pp = bnn_predict_default_params();
    double a[CN * MAXK], v[CN * MAXK], a2[CN * MAXK], v2[CN * MAXK];
    const bool cls = task == BNN_TASK_CLASSIFICATION;
    REQUIRE(bnn_predict(q.m, qp, bnn_dataset_x(q.ds), CN, task, &pp, cls ? a : NULL, NULL,
                        cls ? NULL : a, cls ? NULL : v) == 0);
    bool sane = true;
    for (int r = 0; r < CN; r++) {
        double s = 0.0;
        for (int64_t k = 0; k < C; k++) {
            sane &= cls ? a[r * C + k] > 0.0 && a[r * C + k] < 1.0 : v[r * C + k] > 0.0;
            s += a[r * C + k];
        }
        sane &= !cls || fabs(s - 1.0) < 1e-12;
    }
    CHECK(sane);
    char path[] = "/tmp/bnn_von_layer_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(bnn_laplace_save(bnn_posterior_laplace(qp), q.m, task, path, NULL, NULL, 0) == 0);
    bnn_st *st = NULL;
    bnn_posterior *q2 = NULL;
    REQUIRE(bnn_st_read(&st, path) == 0);
    REQUIRE(bnn_posterior_load(&q2, q.m, st) == 0);
    REQUIRE(bnn_predict(q.m, q2, bnn_dataset_x(q.ds), CN, task, &pp, cls ? a2 : NULL, NULL,
                        cls ? NULL : a2, cls ? NULL : v2) == 0);
    CHECK(memcmp(a, a2, (size_t)(CN * C) * sizeof(double)) == 0);
    CHECK(cls || memcmp(v, v2, (size_t)(CN * C) * sizeof(double)) == 0);
    unlink(path);
    bnn_st_free(st);
    bnn_posterior_free(q2);
    bnn_posterior_free(qp);
    free(phit), free(theta), free(H), free(S);
    free_problem(&q);
}

/* Newton's method from confident wrong weights (the last layer's weights turned around and
 * scaled up): with ρ = 1 a full step overshoots, so steps are halved until the objective falls;
 * the run still ends at the stationary point, lower than it started. And a prior so strong
 * (δ = 1e16) that S − δI would have lost the curvature to rounding: the curvature is kept
 * apart and still equals the GGN at the mean. */
static void test_overshoot_and_strong_prior(void) {
    struct prob q;
    make_problem(&q, BNN_LIK_CATEGORICAL);
    const int64_t P = q.P, off = bnn_model_nparams(q.m) - P;
    float *w = bnn_model_params(q.m);
    for (int64_t i = 0; i < P; i++)
        w[off + i] *= -30.0f;
    struct bnn_von_params p = bnn_von_default_params();
    p.steps = 40, p.prior_prec = 0.05;
    struct bnn_von_result res;
    bnn_laplace *la = NULL;
    REQUIRE(bnn_von_last_layer(&la, q.m, q.ds, &p, &res) == 0);
    double *phit = alloc_d(CN * (CH + 1)), *theta = alloc_d(P), *g = alloc_d(P);
    double *H = alloc_d(P * P), *C = alloc_d(P * P), dn, loss;
    features(phit, bnn_model_cparams(q.m), bnn_dataset_x(q.ds), CN, q.D);
    for (int64_t i = 0; i < P; i++)
        theta[i] = bnn_model_cparams(q.m)[off + i];
    const double left = newton_left(&q, phit, theta, p.prior_prec, H, &dn, &loss);
    printf("from confident wrong weights: objective %.4g -> %.4g, %lld halvings, Newton step left "
           "%.2e, last step %.2e\n",
           res.objective0, res.objective, (long long)res.halvings, left, res.last_change);
    CHECK(res.halvings > 0);
    CHECK(res.objective < 0.1 * res.objective0);
    CHECK(left < 1e-5 && res.last_change < 1e-5);
    bnn_laplace_free(la);

    p.steps = 5, p.prior_prec = 1e16;
    REQUIRE(bnn_von_last_layer(&la, q.m, q.ds, &p, &res) == 0);
    features(phit, bnn_model_cparams(q.m), bnn_dataset_x(q.ds), CN, q.D);
    for (int64_t i = 0; i < P; i++)
        theta[i] = bnn_model_cparams(q.m)[off + i];
    layer_by_hand(g, H, &q, phit, theta);
    memcpy(C, bnn_curv_dense(bnn_laplace_curv(la)), (size_t)(P * P) * sizeof *C);
    const double ec = rel_err(C, H, P * P);
    printf("prior precision 1e16: curvature vs GGN(m) by hand rel err %.2e\n", ec);
    CHECK(ec < 1e-5);
    bnn_laplace_free(la);
    free(phit), free(theta), free(g), free(H), free(C);
    free_problem(&q);
}

/* One Monte-Carlo step, replayed: q0 = N(m0, S0⁻¹) with S0 = GGN(m0) + δI; two draws
 * θ_s = m0 + L⁻ᵀε_s (S0 = LLᵀ, ε from VON's stream, taken to float as the layer holds them);
 * ḡ, H̄ their means; S1 = (1 − ρ) S0 + ρ(H̄ + δI), m1 = m0 − ρ S1⁻¹(ḡ + δ m0). */
static void test_mc_step(void) {
    struct prob q;
    make_problem(&q, BNN_LIK_CATEGORICAL);
    enum { CP = 3 * (CH + 1) };
    const double delta = 0.8, rho = 0.4;
    const int64_t off = bnn_model_nparams(q.m) - CP;
    double *phit = alloc_d(CN * (CH + 1)), *m0 = alloc_d(CP), *S0 = alloc_d(CP * CP);
    double *L = alloc_d(CP * CP), *gb = alloc_d(CP), *Hb = alloc_d(CP * CP), *g = alloc_d(CP);
    double *H = alloc_d(CP * CP), *th = alloc_d(CP), *m1 = alloc_d(CP), *S1 = alloc_d(CP * CP);
    features(phit, bnn_model_cparams(q.m), bnn_dataset_x(q.ds), CN, q.D);
    for (int i = 0; i < CP; i++)
        m0[i] = bnn_model_cparams(q.m)[off + i];
    layer_by_hand(g, S0, &q, phit, m0);
    for (int i = 0; i < CP; i++)
        S0[i * CP + i] += delta;
    memcpy(L, S0, (size_t)CP * CP * sizeof *L);
    REQUIRE(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', CP, L, CP) == 0);
    bnn_rng rng = bnn_rng_make(7, (uint64_t)6 << 32);
    for (int s = 0; s < 2; s++) {
        float e[CP];
        bnn_rng_normal(&rng, e, CP);
        for (int i = 0; i < CP; i++)
            th[i] = e[i];
        /* Lᵀ x = ε with L lower (row-major) */
        REQUIRE(LAPACKE_dtrtrs(LAPACK_ROW_MAJOR, 'L', 'T', 'N', CP, 1, L, CP, th, 1) == 0);
        for (int i = 0; i < CP; i++)
            th[i] = (double)(float)(m0[i] + th[i]);
        layer_by_hand(g, H, &q, phit, th);
        for (int i = 0; i < CP; i++)
            gb[i] += g[i] / 2.0;
        for (int i = 0; i < CP * CP; i++)
            Hb[i] += H[i] / 2.0;
    }
    for (int i = 0; i < CP * CP; i++)
        S1[i] = (1.0 - rho) * S0[i] + rho * (Hb[i] + (i % (CP + 1) == 0 ? delta : 0.0));
    memcpy(L, S1, (size_t)CP * CP * sizeof *L);
    for (int i = 0; i < CP; i++)
        m1[i] = gb[i] + delta * m0[i];
    REQUIRE(LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', CP, 1, L, CP, m1, 1) == 0);
    for (int i = 0; i < CP; i++)
        m1[i] = m0[i] - rho * m1[i];

    struct bnn_von_params p = bnn_von_default_params();
    p.steps = 1, p.rho = rho, p.prior_prec = delta, p.mc_samples = 2, p.seed = 7;
    bnn_laplace *la = NULL;
    REQUIRE(bnn_von_last_layer(&la, q.m, q.ds, &p, NULL) == 0);
    double got[CP], S[CP * CP];
    for (int i = 0; i < CP; i++)
        got[i] = bnn_model_cparams(q.m)[off + i];
    REQUIRE(bnn_laplace_precision_dense(la, S) == 0);
    const double em = rel_err(got, m1, CP), ep = rel_err(S, S1, CP * CP),
                 moved = rel_err(m0, m1, CP);
    printf("Monte Carlo, one step (2 draws, rho %.1f): mean rel err %.2e (the step moved it "
           "%.2e), precision %.2e\n",
           rho, em, moved, ep);
    CHECK(em < 1e-5 && moved > 1e-3);
    CHECK(ep < 1e-5);
    bnn_laplace_free(la);
    free(phit), free(m0), free(S0), free(L), free(gb), free(Hb), free(g), free(H), free(th);
    free(m1), free(S1);
    free_problem(&q);
}

/* ------------------------------------------------------------ errors */

static void test_errors(void) {
    struct prob q;
    make_problem(&q, BNN_LIK_CATEGORICAL);
    bnn_model *m = q.m;
    bnn_dataset *ds = q.ds;
    enum { CP = 3 * (CH + 1), CK = 3 };
    const int64_t np = bnn_model_nparams(m);
    float *before = malloc((size_t)np * sizeof(float));
    memcpy(before, bnn_model_cparams(m), (size_t)np * sizeof(float));
    bnn_laplace *la = (bnn_laplace *)1;
    struct bnn_von_params p = bnn_von_default_params();
    p.steps = 0;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p, NULL), BNN_EINVAL);
    CHECK(la == NULL && strstr(bnn_last_error(), "steps") != NULL);
    p = bnn_von_default_params(), p.rho = 1.5;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p, NULL), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "rho") != NULL);
    p = bnn_von_default_params(), p.prior_prec = 0.0;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p, NULL), BNN_EINVAL);
    p = bnn_von_default_params(), p.sigma = NAN;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p, NULL), BNN_EINVAL);
    p = bnn_von_default_params(), p.mc_samples = -1;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p, NULL), BNN_EINVAL);
    /* too little memory for the P × P arrays: refused with the size, before any step */
    p = bnn_von_default_params(), p.max_bytes = 8.0 * CP * CP * sizeof(double);
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p, NULL), BNN_ENOMEM);
    printf("too little memory: %s\n", bnn_last_error());
    CHECK(strstr(bnn_last_error(), "21 parameters") != NULL);
    /* bad data: named by the data check (against the model given), nothing changed */
    bnn_dataset_labels(ds)[3] = CK; /* outside the classes: the data check names it */
    p = bnn_von_default_params();
    CHECK(bnn_von_last_layer(&la, m, ds, &p, NULL) != 0);
    CHECK(la == NULL);
    CHECK(memcmp(before, bnn_model_cparams(m), (size_t)np * sizeof(float)) == 0);
    bnn_dataset_labels(ds)[3] = 0;
    /* a prior so weak that the precision is singular in the softmax's null directions (the
     * same shift of every class's logit): the Monte-Carlo draw cannot be formed, and the model
     * is left as it was */
    p = bnn_von_default_params(), p.mc_samples = 1, p.steps = 3, p.prior_prec = 1e-300;
    CHECK(bnn_von_last_layer(&la, m, ds, &p, NULL) != 0);
    printf("singular precision: %s\n", bnn_last_error());
    CHECK(la == NULL);
    CHECK(memcmp(before, bnn_model_cparams(m), (size_t)np * sizeof(float)) == 0);
    free(before);
    free_problem(&q);
}

int main(void) {
    test_linear_gaussian();
    test_delta_converges(BNN_LIK_CATEGORICAL);
    test_delta_converges(BNN_LIK_BERNOULLI);
    test_delta_converges(BNN_LIK_HETERO_GAUSSIAN);
    test_overshoot_and_strong_prior();
    test_mc_step();
    test_errors();
    return CHECK_DONE();
}
