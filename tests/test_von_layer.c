/* Tests of VON on the last layer (src/fit/von_layer.c) against computations written here in
 * double from the model's weights, without the library's curvature or gradient code:
 * - a linear model with a Gaussian likelihood: one step with ρ = 1 is Bayesian linear
 *   regression's posterior (bnn_blr_fit on the design with a column of ones, which is itself
 *   checked against the exact formulas in test_von);
 * - a tanh network's softmax last layer, delta method, ρ = 1: the steps converge to the point
 *   where the gradient of Σ loss + ½δ‖m‖² vanishes, with the precision GGN(m) + δI there;
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
    REQUIRE(bnn_von_last_layer(&la, m, ds, &p) == 0);
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
    bnn_laplace_free(la);
    bnn_dataset_free(ds);
    bnn_model_free(m);
}

/* ------------------------------------------------------------ a softmax last layer, by hand */

enum { CN = 60, CD = 4, CH = 6, CK = 3, CP = CK * (CH + 1) };

/* φ̃ (n × (H+1)) of the net mlp:4-6-3:tanh from its flat weights [W1 (H × D), b1, W2, b2]. */
static void features(double *phit, const float *w, const float *x, int64_t n) {
    const float *W1 = w, *b1 = w + CH * CD;
    for (int64_t r = 0; r < n; r++) {
        for (int h = 0; h < CH; h++) {
            double a = b1[h];
            for (int d = 0; d < CD; d++)
                a += (double)W1[h * CD + d] * x[r * CD + d];
            phit[r * (CH + 1) + h] = tanh(a);
        }
        phit[r * (CH + 1) + CH] = 1.0;
    }
}

/* The gradient (CP) and GGN (CP × CP) of Σ_r CE_r with respect to the last layer θ
 * (W2 row-major, then b2) at θ, and Σ_r CE_r. */
static double softmax_layer(double *g, double *H, const double *phit, const double *theta,
                            const int32_t *lab, int64_t n) {
    memset(g, 0, CP * sizeof *g);
    if (H) memset(H, 0, (size_t)CP * CP * sizeof *H);
    double loss = 0.0;
    for (int64_t r = 0; r < n; r++) {
        const double *ph = phit + r * (CH + 1);
        double f[CK], pr[CK], mx = -INFINITY, z = 0.0;
        for (int k = 0; k < CK; k++) {
            f[k] = theta[CK * CH + k];
            for (int i = 0; i < CH; i++)
                f[k] += theta[k * CH + i] * ph[i];
            mx = fmax(mx, f[k]);
        }
        for (int k = 0; k < CK; k++)
            z += exp(f[k] - mx);
        for (int k = 0; k < CK; k++)
            pr[k] = exp(f[k] - mx) / z;
        loss += log(z) + mx - f[lab[r]];
        /* parameter index of (k, i): weights k·H + i for i < H, the bias K·H + k for i = H */
#define IDX(k, i) ((i) < CH ? (k) * CH + (i) : CK * CH + (k))
        for (int k = 0; k < CK; k++) {
            const double d = pr[k] - (k == lab[r]);
            for (int i = 0; i <= CH; i++)
                g[IDX(k, i)] += d * ph[i];
        }
        if (!H) continue;
        for (int k = 0; k < CK; k++)
            for (int k2 = 0; k2 < CK; k2++) {
                const double L = (k == k2 ? pr[k] : 0.0) - pr[k] * pr[k2];
                for (int i = 0; i <= CH; i++)
                    for (int i2 = 0; i2 <= CH; i2++)
                        H[IDX(k, i) * CP + IDX(k2, i2)] += L * ph[i] * ph[i2];
            }
#undef IDX
    }
    return loss;
}

static void make_classifier(bnn_model **m, bnn_dataset **ds) {
    REQUIRE(bnn_model_new(m, "mlp:4-6-3:tanh") == 0);
    bnn_model_init(*m, 5);
    REQUIRE(bnn_dataset_new(ds, BNN_TASK_CLASSIFICATION, CN, CD, 0, CK) == 0);
    float *x = bnn_dataset_x(*ds);
    int32_t *lab = bnn_dataset_labels(*ds);
    bnn_rng r = bnn_rng_make(21, 0);
    bnn_rng_normal(&r, x, CN * CD);
    for (int i = 0; i < CN; i++) { /* a noisy teacher, so the classes overlap */
        const double s = x[i * CD] + 0.5 * x[i * CD + 1] + 0.3 * (double)bnn_rng_below(&r, 3);
        lab[i] = s < -0.4 ? 0 : s < 0.6 ? 1 : 2;
    }
}

static void test_delta_converges(void) {
    bnn_model *m = NULL;
    bnn_dataset *ds = NULL;
    make_classifier(&m, &ds);
    const double delta = 0.5;
    struct bnn_von_params p = bnn_von_default_params();
    p.steps = 25, p.prior_prec = delta;
    bnn_laplace *la = NULL;
    REQUIRE(bnn_von_last_layer(&la, m, ds, &p) == 0);
    const float *w = bnn_model_cparams(m);
    const int64_t off = bnn_model_nparams(m) - CP;
    double *phit = alloc_d(CN * (CH + 1)), *theta = alloc_d(CP), *g = alloc_d(CP);
    double *H = alloc_d(CP * CP), *S = alloc_d(CP * CP);
    features(phit, w, bnn_dataset_x(ds), CN);
    for (int i = 0; i < CP; i++)
        theta[i] = w[off + i];
    softmax_layer(g, H, phit, theta, bnn_dataset_labels(ds), CN);
    /* stationary: ∇(Σ CE + ½δ‖θ‖²) = 0 up to the float mean, relative to the data term */
    double gn = 0.0, dn = 0.0;
    for (int i = 0; i < CP; i++) {
        gn = fmax(gn, fabs(g[i] + delta * theta[i]));
        dn = fmax(dn, fabs(g[i]));
    }
    printf("delta method, 25 steps: max |grad| %.2e (data term %.2e)\n", gn, dn);
    CHECK(gn < 1e-5 * (dn > 1.0 ? dn : 1.0));
    CHECK(dn > 1e-2); /* the prior pulls: not a trivial optimum */
    for (int i = 0; i < CP; i++)
        H[i * CP + i] += delta;
    REQUIRE(bnn_laplace_precision_dense(la, S) == 0);
    const double ep = rel_err(S, H, CP * CP);
    printf("delta method: precision vs GGN(m) + delta I by hand: rel err %.2e\n", ep);
    CHECK(ep < 1e-5);
    CHECK_NEAR(bnn_laplace_prior_prec(la), delta, 0.0);

    /* as a posterior: the GLM predictive is a distribution, and it survives a file */
    bnn_posterior *q = NULL;
    REQUIRE(bnn_posterior_from_laplace(&q, m, la) == 0);
    struct bnn_predict_params pp = bnn_predict_default_params();
    double probs[CN * CK], probs2[CN * CK];
    REQUIRE(bnn_predict(m, q, bnn_dataset_x(ds), CN, BNN_TASK_CLASSIFICATION, &pp, probs, NULL,
                        NULL, NULL) == 0);
    bool dist = true;
    for (int r = 0; r < CN; r++) {
        double s = 0.0;
        for (int k = 0; k < CK; k++) {
            dist &= probs[r * CK + k] > 0.0 && probs[r * CK + k] < 1.0;
            s += probs[r * CK + k];
        }
        dist &= fabs(s - 1.0) < 1e-12;
    }
    CHECK(dist);
    char path[] = "/tmp/bnn_von_layer_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(bnn_laplace_save(bnn_posterior_laplace(q), m, BNN_TASK_CLASSIFICATION, path, NULL,
                             NULL, 0) == 0);
    bnn_st *st = NULL;
    bnn_posterior *q2 = NULL;
    REQUIRE(bnn_st_read(&st, path) == 0);
    REQUIRE(bnn_posterior_load(&q2, m, st) == 0);
    REQUIRE(bnn_predict(m, q2, bnn_dataset_x(ds), CN, BNN_TASK_CLASSIFICATION, &pp, probs2, NULL,
                        NULL, NULL) == 0);
    CHECK(memcmp(probs, probs2, sizeof probs) == 0);
    unlink(path);
    bnn_st_free(st);
    bnn_posterior_free(q2);
    bnn_posterior_free(q);
    free(phit), free(theta), free(g), free(H), free(S);
    bnn_dataset_free(ds);
    bnn_model_free(m);
}

/* One Monte-Carlo step, replayed: q0 = N(m0, S0⁻¹) with S0 = GGN(m0) + δI; two draws
 * θ_s = m0 + L⁻ᵀε_s (S0 = LLᵀ, ε from VON's stream, taken to float as the layer holds them);
 * ḡ, H̄ their means; S1 = (1 − ρ) S0 + ρ(H̄ + δI), m1 = m0 − ρ S1⁻¹(ḡ + δ m0). */
static void test_mc_step(void) {
    bnn_model *m = NULL;
    bnn_dataset *ds = NULL;
    make_classifier(&m, &ds);
    const double delta = 0.8, rho = 0.4;
    const int64_t off = bnn_model_nparams(m) - CP;
    double *phit = alloc_d(CN * (CH + 1)), *m0 = alloc_d(CP), *S0 = alloc_d(CP * CP);
    double *L = alloc_d(CP * CP), *gb = alloc_d(CP), *Hb = alloc_d(CP * CP), *g = alloc_d(CP);
    double *H = alloc_d(CP * CP), *th = alloc_d(CP), *m1 = alloc_d(CP), *S1 = alloc_d(CP * CP);
    features(phit, bnn_model_cparams(m), bnn_dataset_x(ds), CN);
    for (int i = 0; i < CP; i++)
        m0[i] = bnn_model_cparams(m)[off + i];
    softmax_layer(g, S0, phit, m0, bnn_dataset_labels(ds), CN);
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
        softmax_layer(g, H, phit, th, bnn_dataset_labels(ds), CN);
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
    REQUIRE(bnn_von_last_layer(&la, m, ds, &p) == 0);
    double got[CP], S[CP * CP];
    for (int i = 0; i < CP; i++)
        got[i] = bnn_model_cparams(m)[off + i];
    REQUIRE(bnn_laplace_precision_dense(la, S) == 0);
    const double em = rel_err(got, m1, CP), ep = rel_err(S, S1, CP * CP), moved = rel_err(m0, m1, CP);
    printf("Monte Carlo, one step (2 draws, rho %.1f): mean rel err %.2e (the step moved it "
           "%.2e), precision %.2e\n",
           rho, em, moved, ep);
    CHECK(em < 1e-5 && moved > 1e-3);
    CHECK(ep < 1e-5);
    bnn_laplace_free(la);
    free(phit), free(m0), free(S0), free(L), free(gb), free(Hb), free(g), free(H), free(th);
    free(m1), free(S1);
    bnn_dataset_free(ds);
    bnn_model_free(m);
}

/* ------------------------------------------------------------ errors */

static void test_errors(void) {
    bnn_model *m = NULL;
    bnn_dataset *ds = NULL;
    make_classifier(&m, &ds);
    const int64_t np = bnn_model_nparams(m);
    float *before = malloc((size_t)np * sizeof(float));
    memcpy(before, bnn_model_cparams(m), (size_t)np * sizeof(float));
    bnn_laplace *la = (bnn_laplace *)1;
    struct bnn_von_params p = bnn_von_default_params();
    p.steps = 0;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p), BNN_EINVAL);
    CHECK(la == NULL && strstr(bnn_last_error(), "steps") != NULL);
    p = bnn_von_default_params(), p.rho = 1.5;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "rho") != NULL);
    p = bnn_von_default_params(), p.prior_prec = 0.0;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p), BNN_EINVAL);
    p = bnn_von_default_params(), p.sigma = NAN;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p), BNN_EINVAL);
    p = bnn_von_default_params(), p.mc_samples = -1;
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p), BNN_EINVAL);
    /* too little memory for the P × P arrays: refused with the size, before any step */
    p = bnn_von_default_params(), p.max_bytes = 8.0 * CP * CP * sizeof(double);
    CHECK_EQ_INT(bnn_von_last_layer(&la, m, ds, &p), BNN_ENOMEM);
    printf("too little memory: %s\n", bnn_last_error());
    CHECK(strstr(bnn_last_error(), "21 parameters") != NULL);
    /* bad data: named by the curvature's data check, nothing changed */
    bnn_dataset_labels(ds)[3] = CK; /* outside the classes: the data check names it */
    p = bnn_von_default_params();
    CHECK(bnn_von_last_layer(&la, m, ds, &p) != 0);
    CHECK(la == NULL);
    CHECK(memcmp(before, bnn_model_cparams(m), (size_t)np * sizeof(float)) == 0);
    bnn_dataset_labels(ds)[3] = 0;
    /* a prior so weak that the precision is singular in the softmax's null directions (the
     * same shift of every class's logit): the Monte-Carlo draw cannot be formed, and the model
     * is left as it was */
    p = bnn_von_default_params(), p.mc_samples = 1, p.steps = 3, p.prior_prec = 1e-300;
    CHECK(bnn_von_last_layer(&la, m, ds, &p) != 0);
    printf("singular precision: %s\n", bnn_last_error());
    CHECK(la == NULL);
    CHECK(memcmp(before, bnn_model_cparams(m), (size_t)np * sizeof(float)) == 0);
    free(before);
    bnn_dataset_free(ds);
    bnn_model_free(m);
}

int main(void) {
    test_linear_gaussian();
    test_delta_converges();
    test_mc_step();
    test_errors();
    return CHECK_DONE();
}
