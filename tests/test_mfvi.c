/* Mean-field VI (Bayes by backprop with the local reparameterisation trick): finite-difference
 * gradients of the negative ELBO with respect to every μ and ρ under replayed noise, the closed
 * form KL, softplus and its inverse at extreme arguments, the moments of a local-
 * reparameterisation sample, the σ → 0 limit, finiteness at tiny σ, thread-count independence,
 * and a short training run on two moons. */
#include "check.h"
#include "core/internal.h"

#include <string.h>

#define FD_H 1e-2f

/* |fd − an| ≤ atol + rtol·|an| per entry; returns the number of misses (as in test_nn.c). */
static int compare(const char *what, const double *fd, const float *an, int64_t n, double atol,
                   double rtol) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs(fd[i] - an[i]) <= atol + rtol * fabs(an[i]))) {
            if (bad < 5)
                fprintf(stderr, "  %s[%lld]: finite difference %.6g, analytic %.6g\n", what,
                        (long long)i, fd[i], an[i]);
            bad++;
        }
    }
    return bad;
}

/* A model with μ from PyTorch's initialisation scaled up (so every layer matters) and ρ around
 * softplus⁻¹(0.3) with some spread, so that the variance path carries real weight. The model's
 * own parameter buffer is filled with NaN: bnn_mfvi_loss must not read it. */
static bnn_model *make_model(const char *spec, int64_t b, float **mu, float **rho) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, spec) == 0);
    REQUIRE(bnn_model_reserve(m, b) == 0);
    bnn_model_init(m, 7);
    const int64_t np = bnn_model_nparams(m);
    *mu = malloc((size_t)np * 4), *rho = malloc((size_t)np * 4);
    REQUIRE(*mu && *rho);
    float *w = bnn_model_params(m);
    bnn_rng rng = bnn_rng_make(21, 0);
    bnn_rng_uniform(&rng, *rho, np);
    const float rho0 = bnn_softplus_inv(0.3f);
    for (int64_t i = 0; i < np; i++) {
        (*mu)[i] = 2.0f * w[i];
        (*rho)[i] = rho0 + 0.6f * ((*rho)[i] - 0.5f);
        w[i] = NAN;
    }
    return m;
}

struct problem {
    const float *x, *t;
    const int32_t *lab;
    int64_t b, n_train;
    bnn_lik lik;
    struct bnn_mfvi_params p;
};

/* The loss with the noise (and dropout masks) replayed from the same generator state. */
static double loss_at(bnn_model *m, const float *mu, const float *rho, const struct problem *pr,
                      float *gmu, float *grho) {
    bnn_rng rng = bnn_rng_make(99, 0);
    return bnn_mfvi_loss(m, mu, rho, pr->x, pr->lab, pr->t, pr->b, &pr->lik, pr->n_train, &pr->p,
                         &rng, gmu, grho);
}

static void check_gradients(const char *spec, bnn_lik_kind kind, int64_t mc_samples) {
    const int64_t b = 5;
    float *mu, *rho;
    bnn_model *m = make_model(spec, b, &mu, &rho);
    const int64_t np = bnn_model_nparams(m), d = bnn_model_input_dim(m),
                  k = bnn_model_output_dim(m);
    float *x = malloc((size_t)(b * d) * 4), *t = malloc((size_t)(b * k) * 4);
    float *gmu = calloc((size_t)np, 4), *grho = calloc((size_t)np, 4);
    float *junk_mu = calloc((size_t)np, 4), *junk_rho = calloc((size_t)np, 4);
    double *fdmu = calloc((size_t)np, 8), *fdrho = calloc((size_t)np, 8);
    int32_t lab[5];
    REQUIRE(x && t && gmu && grho && junk_mu && junk_rho && fdmu && fdrho);
    bnn_rng rng = bnn_rng_make(8, 0);
    bnn_rng_normal(&rng, x, b * d);
    bnn_rng_normal(&rng, t, b * k);
    for (int i = 0; i < b; i++)
        lab[i] = (int32_t)(i % k);
    /* A small n_train, a prior precision other than 1 and a KL weight other than 1, so that the
     * KL term and each of its factors show in the gradient. */
    struct problem pr = {x, t, lab, b, 12, {kind, 0.5}, bnn_mfvi_default_params()};
    pr.p.prior_prec = 2.0, pr.p.kl_weight = 0.7, pr.p.mc_samples = mc_samples;

    double l0 = loss_at(m, mu, rho, &pr, gmu, grho);
    CHECK(isfinite(l0));
    for (int64_t i = 0; i < np; i++) {
        float s = mu[i];
        mu[i] = s + FD_H;
        double lp = loss_at(m, mu, rho, &pr, junk_mu, junk_rho);
        mu[i] = s - FD_H;
        double lm = loss_at(m, mu, rho, &pr, junk_mu, junk_rho);
        mu[i] = s;
        fdmu[i] = (lp - lm) / (2.0 * FD_H);
        s = rho[i];
        rho[i] = s + FD_H;
        lp = loss_at(m, mu, rho, &pr, junk_mu, junk_rho);
        rho[i] = s - FD_H;
        lm = loss_at(m, mu, rho, &pr, junk_mu, junk_rho);
        rho[i] = s;
        fdrho[i] = (lp - lm) / (2.0 * FD_H);
    }
    char name[96];
    snprintf(name, sizeof name, "%s mu", spec);
    int bad = compare(name, fdmu, gmu, np, 3e-3, 3e-2);
    snprintf(name, sizeof name, "%s rho", spec);
    bad += compare(name, fdrho, grho, np, 3e-3, 3e-2);
    if (bad)
        fprintf(stderr, "mfvi %s (S=%lld): %d gradient entries disagree\n", spec,
                (long long)mc_samples, bad);
    CHECK_EQ_INT(bad, 0);

    /* The check has teeth only if the ρ gradients are well above its absolute tolerance. */
    float gmax = 0.0f;
    for (int64_t i = 0; i < np; i++)
        gmax = fmaxf(gmax, fabsf(grho[i]));
    CHECK(gmax > 0.03f);

    /* The gradients are added: a second call with the same noise doubles them, and the loss is
     * bit-identical under replayed noise. The model's NaN parameters were never read. */
    float *g2mu = malloc((size_t)np * 4), *g2rho = malloc((size_t)np * 4);
    REQUIRE(g2mu && g2rho);
    memcpy(g2mu, gmu, (size_t)np * 4), memcpy(g2rho, grho, (size_t)np * 4);
    CHECK(loss_at(m, mu, rho, &pr, g2mu, g2rho) == l0);
    int doubled = 1;
    for (int64_t i = 0; i < np; i++) {
        doubled &= fabsf(g2mu[i] - 2 * gmu[i]) <= 1e-6f * (1 + fabsf(gmu[i]));
        doubled &= fabsf(g2rho[i] - 2 * grho[i]) <= 1e-6f * (1 + fabsf(grho[i]));
    }
    CHECK(doubled);
    CHECK(isnan(bnn_model_params(m)[0]));

    /* The value is the data term plus kl_weight · KL / n_train: with the KL weight set to 0 the
     * difference is exactly that (same noise, so the same data term). */
    struct problem pr0 = pr;
    pr0.p.kl_weight = 0.0;
    double l_nokl = loss_at(m, mu, rho, &pr0, junk_mu, junk_rho);
    CHECK_NEAR(l0 - l_nokl, 0.7 * bnn_mfvi_kl(mu, rho, np, 2.0) / 12.0, 1e-9 * (1 + fabs(l0)));

    free(x), free(t), free(gmu), free(grho), free(junk_mu), free(junk_rho), free(fdmu);
    free(fdrho), free(g2mu), free(g2rho), free(mu), free(rho);
    bnn_model_free(m);
}

static void test_gradients(void) {
    check_gradients("mlp:4-6-3:tanh", BNN_LIK_CATEGORICAL, 1);
    check_gradients("mlp:3-5-1:gelu", BNN_LIK_GAUSSIAN, 1);
    check_gradients("mlp:4-7-5-3:gelu:dropout=0.3", BNN_LIK_CATEGORICAL, 1);
    check_gradients("mlp:3-5-4-2:tanh", BNN_LIK_GAUSSIAN, 3); /* averaged over 3 samples */
    check_gradients("mlp:3-2", BNN_LIK_GAUSSIAN, 1);          /* a single Linear layer */
}

/* Closed form KL(N(μ, σ²) ‖ N(0, 1/λ)) = ½[λ(σ² + μ²) − 1 − log λ] − log σ, against values
 * worked out with Python's math module. */
static void test_kl(void) {
    float mu1[1] = {0.5f}, rho1[1] = {0.0f}; /* σ = log 2 */
    CHECK_NEAR(bnn_mfvi_kl(mu1, rho1, 1, 2.0), 0.2503923442198931, 1e-6);
    float mu2[1] = {-1.0f}, rho2[1] = {bnn_softplus_inv(0.5f)};
    CHECK_NEAR(bnn_mfvi_kl(mu2, rho2, 1, 1.0), 0.8181471805599453, 1e-6);
    float mu3[1] = {0.0f}, rho3[1] = {bnn_softplus_inv(0.1f)};
    CHECK_NEAR(bnn_mfvi_kl(mu3, rho3, 1, 4.0), 1.1294379124341, 1e-6);
    /* A sum over weights. */
    float mus[3] = {0.5f, -1.0f, 0.0f}, rhos[3] = {0.0f, bnn_softplus_inv(0.5f), 0.0f};
    CHECK_NEAR(bnn_mfvi_kl(mus, rhos, 3, 1.0),
               bnn_mfvi_kl(mus, rhos, 1, 1.0) + bnn_mfvi_kl(mus + 1, rhos + 1, 1, 1.0) +
                   bnn_mfvi_kl(mus + 2, rhos + 2, 1, 1.0),
               1e-12);
    /* q equal to the prior gives 0, for several precisions; anything else gives more. */
    const double precs[3] = {1.0, 4.0, 0.25};
    for (int j = 0; j < 3; j++) {
        float z[4] = {0, 0, 0, 0}, r[4];
        for (int i = 0; i < 4; i++)
            r[i] = bnn_softplus_inv((float)(1.0 / sqrt(precs[j])));
        CHECK_NEAR(bnn_mfvi_kl(z, r, 4, precs[j]), 0.0, 1e-10);
        z[2] = 0.1f;
        CHECK(bnn_mfvi_kl(z, r, 4, precs[j]) > 1e-4);
        z[2] = 0.0f, r[1] += 0.1f;
        CHECK(bnn_mfvi_kl(z, r, 4, precs[j]) > 1e-4);
    }
    /* A tiny σ (the default initialisation and far beyond) gives a large but finite KL. */
    float zt[2] = {0, 0}, rt[2] = {bnn_softplus_inv(1e-3f), -200.0f};
    double klt = bnn_mfvi_kl(zt, rt, 2, 1.0);
    CHECK(isfinite(klt) && klt > 40.0);
    CHECK(isnan(bnn_mfvi_kl(zt, rt, 2, 0.0)));
    CHECK_EQ_INT(bnn_mfvi_kl(zt, rt, 0, 1.0) == 0.0, 1);
}

static void test_softplus(void) {
    CHECK_NEAR(bnn_softplus(0.0f), log(2.0), 1e-7);
    CHECK_NEAR(bnn_softplus(1.0f), log1p(exp(1.0)), 1e-6);
    CHECK_REL(bnn_softplus(-20.0f), 2.061153620314381e-09, 1e-6, 0.0);
    CHECK_REL(bnn_softplus(-100.0f), 3.720075976020836e-44, 5e-2, 0.0); /* subnormal: few bits */
    CHECK(bnn_softplus(-100.0f) > 0.0f);
    CHECK(bnn_softplus(-1000.0f) == 0.0f); /* underflows cleanly, no NaN */
    CHECK(bnn_softplus(20.0f) == 20.0f);   /* 20 + 2e-9 rounds to 20 in float */
    CHECK(bnn_softplus(100.0f) == 100.0f);
    CHECK(bnn_softplus(1e30f) == 1e30f); /* no overflow of eˣ */
    CHECK(isinf(bnn_softplus(INFINITY)) && bnn_softplus(-INFINITY) == 0.0f);
    /* The inverse, including tiny and huge σ. */
    CHECK_REL(bnn_softplus_inv(1e-30f), log(1e-30), 1e-6, 0.0);
    CHECK_REL(bnn_softplus_inv(1e-3f), log(expm1(1e-3)), 1e-6, 0.0);
    CHECK(bnn_softplus_inv(1e6f) == 1e6f);
    CHECK(bnn_softplus_inv(1e30f) == 1e30f);
    CHECK_NEAR(bnn_softplus_inv((float)log(2.0)), 0.0, 1e-6);
    const float ys[] = {1e-30f, 1e-12f, 1e-6f, 1e-3f, 0.3f, 1.0f, 5.0f, 30.0f, 1e3f, 1e6f};
    for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++)
        CHECK_REL(bnn_softplus(bnn_softplus_inv(ys[i])), ys[i], 1e-6, 0.0);
    const float rs[] = {-60.0f, -15.0f, -5.0f, -0.5f, 0.0f, 0.5f, 5.0f, 15.0f};
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++)
        CHECK_NEAR(bnn_softplus_inv(bnn_softplus(rs[i])), rs[i], 1e-6 * (1 + fabs(rs[i])));
}

/* The local-reparameterisation sample of one Linear layer is N(xμ_Wᵀ + μ_b, x²σ_W²ᵀ + σ_b²):
 * 20000 draws per output (1000 identical rows × 20 calls), means within 5 standard errors and
 * variances within 5 standard errors of a sample variance (√(2/N) relative). */
static void test_lrt_moments(void) {
    const int64_t rows = 1000, calls = 20, in = 3, out = 2, N = rows * calls;
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:3-2") == 0);
    REQUIRE(bnn_model_reserve(m, rows) == 0);
    const float mu[8] = {0.5f, -1.0f, 2.0f, 0.3f, 0.0f, -0.7f, /* W */ 0.25f, -2.0f /* b */};
    const float sd[8] = {0.2f, 0.5f, 0.1f, 1.0f, 0.3f, 0.05f, 0.4f, 0.01f};
    float rho[8];
    for (int i = 0; i < 8; i++)
        rho[i] = bnn_softplus_inv(sd[i]);
    const float xr[3] = {1.5f, -0.5f, 2.0f};
    float *x = malloc((size_t)(rows * in) * 4);
    REQUIRE(x);
    for (int64_t r = 0; r < rows; r++)
        memcpy(x + r * in, xr, sizeof xr);
    double s1[2] = {0, 0}, s2[2] = {0, 0};
    bnn_rng rng = bnn_rng_make(5, 1);
    for (int64_t c = 0; c < calls; c++) {
        const float *f = bnn_mfvi_forward(m, mu, rho, x, rows, &rng);
        REQUIRE(f);
        for (int64_t r = 0; r < rows; r++)
            for (int j = 0; j < out; j++) {
                double v = f[r * out + j];
                s1[j] += v, s2[j] += v * v;
            }
    }
    for (int j = 0; j < out; j++) {
        double mean = mu[6 + j], var = (double)sd[6 + j] * sd[6 + j];
        for (int i = 0; i < in; i++) {
            mean += (double)xr[i] * mu[j * in + i];
            var += (double)xr[i] * xr[i] * sd[j * in + i] * sd[j * in + i];
        }
        double m1 = s1[j] / (double)N, v1 = s2[j] / (double)N - m1 * m1;
        CHECK_NEAR(m1, mean, 5.0 * sqrt(var / (double)N));
        CHECK_NEAR(v1, var, 5.0 * var * sqrt(2.0 / (double)N));
    }
    free(x);
    bnn_model_free(m);
}

/* As σ → 0 the local-reparameterisation forward pass becomes the deterministic network at μ
 * (and dropout is off in prediction). */
static void test_small_sigma_limit(void) {
    const int64_t b = 7;
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:4-6-5-3:tanh:dropout=0.3") == 0);
    REQUIRE(bnn_model_reserve(m, b) == 0);
    bnn_model_init(m, 3);
    const int64_t np = bnn_model_nparams(m), k = 3;
    float *mu = malloc((size_t)np * 4), *rho = malloc((size_t)np * 4), *x = malloc(b * 4 * 4);
    float f1[21];
    REQUIRE(mu && rho && x);
    memcpy(mu, bnn_model_params(m), (size_t)np * 4);
    for (int64_t i = 0; i < np; i++)
        rho[i] = bnn_softplus_inv(1e-6f);
    bnn_rng rng = bnn_rng_make(4, 4);
    bnn_rng_normal(&rng, x, b * 4);
    const float *f = bnn_mfvi_forward(m, mu, rho, x, b, &rng);
    REQUIRE(f);
    memcpy(f1, f, sizeof f1); /* the next forward reuses the model's output buffer */
    const float *g = bnn_model_forward(m, bnn_model_params(m), x, b, false, NULL);
    double worst = 0.0, spread = 0.0;
    for (int64_t i = 0; i < b * k; i++) {
        worst = fmax(worst, fabs((double)f1[i] - g[i]));
        spread = fmax(spread, fabs((double)g[i] - g[0]));
    }
    CHECK(worst < 1e-4);
    CHECK(spread > 0.05); /* the outputs are not trivially constant */
    /* With σ = 0.3 the same comparison fails: the check above can detect noise. */
    for (int64_t i = 0; i < np; i++)
        rho[i] = bnn_softplus_inv(0.3f);
    f = bnn_mfvi_forward(m, mu, rho, x, b, &rng);
    worst = 0.0;
    memcpy(f1, f, sizeof f1);
    g = bnn_model_forward(m, bnn_model_params(m), x, b, false, NULL);
    for (int64_t i = 0; i < b * k; i++)
        worst = fmax(worst, fabs((double)f1[i] - g[i]));
    CHECK(worst > 1e-2);
    free(mu), free(rho), free(x);
    bnn_model_free(m);
}

/* Training applies dropout: with σ tiny the loss hardly depends on the weight noise, so two
 * different generator states give clearly different losses only through the dropout masks. */
static void test_dropout_in_loss(void) {
    const char *specs[2] = {"mlp:4-16-16-3:gelu:dropout=0.3", "mlp:4-16-16-3:gelu"};
    double diff[2];
    for (int j = 0; j < 2; j++) {
        bnn_model *m;
        REQUIRE(bnn_model_new(&m, specs[j]) == 0);
        REQUIRE(bnn_model_reserve(m, 8) == 0);
        bnn_model_init(m, 5);
        const int64_t np = bnn_model_nparams(m);
        float *rho = malloc((size_t)np * 4), *g1 = calloc((size_t)np, 4),
              *g2 = calloc((size_t)np, 4);
        float x[32];
        int32_t lab[8];
        REQUIRE(rho && g1 && g2);
        for (int64_t i = 0; i < np; i++)
            rho[i] = bnn_softplus_inv(1e-6f);
        bnn_rng rng = bnn_rng_make(6, 0);
        bnn_rng_normal(&rng, x, 32);
        for (int i = 0; i < 8; i++)
            lab[i] = i % 3;
        bnn_lik lik = {BNN_LIK_CATEGORICAL, 1.0};
        struct bnn_mfvi_params p = bnn_mfvi_default_params();
        p.kl_weight = 0.0;
        double l[2];
        for (int s = 0; s < 2; s++) {
            rng = bnn_rng_make(40 + (uint64_t)s, 0);
            l[s] = bnn_mfvi_loss(m, bnn_model_params(m), rho, x, lab, NULL, 8, &lik, 100, &p, &rng,
                                 g1, g2);
        }
        diff[j] = fabs(l[0] - l[1]);
        free(rho), free(g1), free(g2);
        bnn_model_free(m);
    }
    CHECK(diff[0] > 1e-3);
    CHECK(diff[1] < 1e-4);
}

/* The default σ = 1e-3, and ρ so negative that softplus underflows: loss and gradients stay
 * finite (σ is held at 2⁻⁶³ so that δ ≥ FLT_MIN), also for an all-zero input row. */
static void test_tiny_sigma_finite(void) {
    const int64_t b = 4;
    const float rhos[3] = {bnn_softplus_inv(1e-3f), -60.0f, -200.0f};
    for (int j = 0; j < 3; j++) {
        bnn_model *m;
        REQUIRE(bnn_model_new(&m, "mlp:3-8-8-2:gelu") == 0);
        REQUIRE(bnn_model_reserve(m, b) == 0);
        bnn_model_init(m, 1);
        const int64_t np = bnn_model_nparams(m);
        float *mu = malloc((size_t)np * 4), *rho = malloc((size_t)np * 4);
        float *gmu = calloc((size_t)np, 4), *grho = calloc((size_t)np, 4);
        REQUIRE(mu && rho && gmu && grho);
        memcpy(mu, bnn_model_params(m), (size_t)np * 4);
        for (int64_t i = 0; i < np; i++)
            rho[i] = rhos[j];
        float x[12] = {0, 0, 0, 1, -2, 0.5f, 3, 0.1f, -1, 0, 0, 0};
        int32_t lab[4] = {0, 1, 1, 0};
        bnn_lik lik = {BNN_LIK_CATEGORICAL, 1.0};
        struct bnn_mfvi_params p = bnn_mfvi_default_params();
        bnn_rng rng = bnn_rng_make(2, 2);
        double l = bnn_mfvi_loss(m, mu, rho, x, lab, NULL, b, &lik, 100, &p, &rng, gmu, grho);
        CHECK(isfinite(l));
        int finite = 1;
        for (int64_t i = 0; i < np; i++)
            finite &= isfinite(gmu[i]) && isfinite(grho[i]);
        CHECK(finite);
        /* The KL pulls a tiny σ up: ∂KL/∂ρ → −1 per weight as ρ → −∞, before the clamp. */
        if (j == 1) CHECK(grho[0] < 0.0f);
        free(mu), free(rho), free(gmu), free(grho);
        bnn_model_free(m);
    }
}

/* σ = softplus(ρ), held at 2^-63 from below (what a saved posterior keeps for a ρ driven far
 * below zero, so that its σ is never 0), and NaN for a NaN ρ (so that a diverged run shows). */
static void test_sigma_clamp(void) {
    CHECK_NEAR(bnn_mfvi_sigma(0.0f), log(2.0), 1e-7);
    CHECK_REL(bnn_mfvi_sigma(-20.0f), 2.061153620314381e-09, 1e-6, 0.0);
    CHECK(bnn_mfvi_sigma(-100.0f) == 0x1p-63f);
    CHECK(bnn_mfvi_sigma(-1e30f) == 0x1p-63f);
    CHECK(bnn_mfvi_sigma(50.0f) == 50.0f);
    CHECK(isnan(bnn_mfvi_sigma(NAN)));
    CHECK(isinf(bnn_mfvi_sigma(INFINITY)) && bnn_mfvi_sigma(-INFINITY) == 0x1p-63f);
    /* The vectorisable softplus (its own exp and log, src/fit/mfvi.c) against double precision
     * on a fine grid of ρ, every exponent range and both branches: within 6 · 2⁻²⁴ relative
     * (4.8 · 2⁻²⁴ on this grid when written, 5.5 · 2⁻²⁴ at ρ = −5.507 over every float; expf
     * and log1pf of libm: about 2). */
    double worst = 0;
    for (float r = -43.5f; r < 40.0f; r += 0.0137f) {
        const double ex = r > 0 ? r + log1p(exp(-(double)r)) : log1p(exp((double)r));
        worst = fmax(worst, fabs(bnn_mfvi_sigma(r) - ex) / ex);
    }
    CHECK(worst < 6 * 0x1p-24);
    /* and the KL's log σ, taken in double from σ's bits: to 1e-13 relative, as libm's log */
    float mu[64], rho[64];
    for (int i = 0; i < 64; i++)
        mu[i] = 0.01f * (float)(i - 32), rho[i] = -40.0f + 1.37f * (float)i;
    for (int i = 0; i < 64; i++) {
        const double sg = bnn_mfvi_sigma(rho[i]), lam = 3.0, m2 = (double)mu[i] * mu[i];
        const double ex = 0.5 * (lam * (sg * sg + m2) - 1.0 - log(lam)) - log(sg);
        CHECK_REL(bnn_mfvi_kl(mu + i, rho + i, 1, lam), ex, 1e-13, 1e-13);
    }
    /* q equal to the prior N(0, σ²) itself gives 0 to within double's rounding, which tests the
     * log at the ends of its series' range (σ's mantissa near √½ and √2) and between */
    const float sigmas[] = {0.7072f, 0.75f, 0.99f, 1.2f, 1.4141f, 3e-5f, 1e3f};
    for (size_t i = 0; i < sizeof sigmas / sizeof sigmas[0]; i++) {
        float z[1] = {0}, r[1] = {bnn_softplus_inv(sigmas[i])};
        const double sg = bnn_mfvi_sigma(r[0]);
        CHECK_NEAR(bnn_mfvi_kl(z, r, 1, 1.0 / (sg * sg)), 0.0, 1e-14);
    }
}

/* Invalid settings give NaN and an error message rather than an abort. */
static void test_invalid(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-2") == 0);
    REQUIRE(bnn_model_reserve(m, 1) == 0);
    float mu[6] = {0}, rho[6] = {0}, g1[6] = {0}, g2[6] = {0}, x[2] = {1, 2};
    int32_t lab[1] = {1};
    bnn_lik lik = {BNN_LIK_CATEGORICAL, 1.0};
    struct bnn_mfvi_params p = bnn_mfvi_default_params();
    CHECK(p.prior_prec == 1.0 && p.init_std == 1e-3f && p.mc_samples == 1 && p.kl_weight == 1.0);
    bnn_rng rng = bnn_rng_make(0, 0);
    p.mc_samples = 0;
    CHECK(isnan(bnn_mfvi_loss(m, mu, rho, x, lab, NULL, 1, &lik, 10, &p, &rng, g1, g2)));
    CHECK(strlen(bnn_last_error()) > 0);
    p = bnn_mfvi_default_params();
    p.prior_prec = 0.0;
    CHECK(isnan(bnn_mfvi_loss(m, mu, rho, x, lab, NULL, 1, &lik, 10, &p, &rng, g1, g2)));
    p = bnn_mfvi_default_params();
    CHECK(isnan(bnn_mfvi_loss(m, mu, rho, x, lab, NULL, 1, &lik, 0, &p, &rng, g1, g2)));
    CHECK(isfinite(bnn_mfvi_loss(m, mu, rho, x, lab, NULL, 1, &lik, 10, &p, &rng, g1, g2)));
    bnn_model_free(m);
}

/* Same loss and gradients, bit for bit, with 1 and 2 threads, on a model wide enough to take
 * the threaded elementwise loops and multi-threaded GEMM. */
static void test_threads(void) {
    const int64_t b = 64;
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:64-400-300-4:gelu:dropout=0.1") == 0);
    REQUIRE(bnn_model_reserve(m, b) == 0);
    bnn_model_init(m, 9);
    const int64_t np = bnn_model_nparams(m);
    float *mu = bnn_model_params(m), *rho = malloc((size_t)np * 4), *x = malloc(b * 64 * 4);
    float *g[2][2];
    int32_t lab[64];
    REQUIRE(rho && x);
    for (int64_t i = 0; i < np; i++)
        rho[i] = bnn_softplus_inv(0.05f);
    bnn_rng rng = bnn_rng_make(3, 3);
    bnn_rng_normal(&rng, x, b * 64);
    for (int i = 0; i < b; i++)
        lab[i] = i % 4;
    bnn_lik lik = {BNN_LIK_CATEGORICAL, 1.0};
    struct bnn_mfvi_params p = bnn_mfvi_default_params();
    p.mc_samples = 2;
    double l[2];
    for (int t = 0; t < 2; t++) {
        bnn_set_threads(t + 1);
        g[t][0] = calloc((size_t)np, 4), g[t][1] = calloc((size_t)np, 4);
        REQUIRE(g[t][0] && g[t][1]);
        rng = bnn_rng_make(17, 0);
        l[t] = bnn_mfvi_loss(m, mu, rho, x, lab, NULL, b, &lik, 1000, &p, &rng, g[t][0], g[t][1]);
    }
    CHECK(isfinite(l[0]) && l[0] == l[1]);
    CHECK(memcmp(g[0][0], g[1][0], (size_t)np * 4) == 0);
    CHECK(memcmp(g[0][1], g[1][1], (size_t)np * 4) == 0);
    /* Many KL blocks here: the loss's KL term is bnn_mfvi_kl's (same noise, KL weight 0 and 1). */
    p.kl_weight = 0.0;
    rng = bnn_rng_make(17, 0);
    double l_nokl =
        bnn_mfvi_loss(m, mu, rho, x, lab, NULL, b, &lik, 1000, &p, &rng, g[0][0], g[0][1]);
    CHECK_NEAR(l[1] - l_nokl, bnn_mfvi_kl(mu, rho, np, 1.0) / 1000.0, 1e-9 * l[1]);
    bnn_set_threads(2);
    free(g[0][0]), free(g[0][1]), free(g[1][0]), free(g[1][1]), free(rho), free(x);
    bnn_model_free(m);
}

/* The whole path: Bayes by backprop with AdamW over the concatenated [μ; ρ] vector on two moons,
 * 30 epochs, then accuracy of the network at μ on a fresh test set. */
static void test_learns_moons(void) {
    bnn_dataset *tr, *te;
    REQUIRE(bnn_toy_moons(&tr, 1000, 0.1, 1) == 0);
    REQUIRE(bnn_toy_moons(&te, 500, 0.1, 2) == 0);
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-50-50-2:tanh") == 0);
    const int64_t n = 1000, bs = 50, np = bnn_model_nparams(m), steps = n / bs;
    REQUIRE(bnn_model_reserve(m, bs) == 0);
    bnn_model_init(m, 0);
    struct bnn_mfvi_params p = bnn_mfvi_default_params();
    float *th = malloc((size_t)(2 * np) * 4), *g = malloc((size_t)(2 * np) * 4);
    float *s1 = calloc((size_t)(2 * np), 4), *s2 = calloc((size_t)(2 * np), 4);
    float *xb = malloc((size_t)(bs * 2) * 4);
    int32_t *yb = malloc((size_t)bs * 4);
    int64_t *perm = malloc((size_t)n * 8);
    REQUIRE(th && g && s1 && s2 && xb && yb && perm);
    float *mu = th, *rho = th + np;
    memcpy(mu, bnn_model_params(m), (size_t)np * 4);
    const float rho0 = bnn_softplus_inv(p.init_std);
    for (int64_t i = 0; i < np; i++)
        rho[i] = rho0;
    struct bnn_adamw_params ap = bnn_adamw_default_params();
    ap.lr = 1e-2f, ap.weight_decay = 0.0f; /* the KL term is the regulariser */
    bnn_lik lik = {BNN_LIK_CATEGORICAL, 1.0};
    bnn_rng rng = bnn_rng_make(0, 7);
    int64_t t = 0;
    double first = 0.0, last = 0.0;
    for (int64_t epoch = 0; epoch < 30; epoch++) {
        REQUIRE(bnn_permutation(perm, n, 0, (uint64_t)epoch) == 0);
        double sum = 0.0;
        for (int64_t s = 0; s < steps; s++) {
            bnn_dataset_gather(tr, perm + s * bs, bs, xb, yb, NULL);
            memset(g, 0, (size_t)(2 * np) * 4);
            double l = bnn_mfvi_loss(m, mu, rho, xb, yb, NULL, bs, &lik, n, &p, &rng, g, g + np);
            REQUIRE(isfinite(l));
            sum += l;
            bnn_adamw_step(th, s1, s2, g, 2 * np, ++t, &ap);
        }
        if (epoch == 0) first = sum / (double)steps;
        last = sum / (double)steps;
    }
    CHECK(last < 0.5 * first);
    /* Accuracy of the network at μ, in batches through the plain forward pass. */
    int64_t correct = 0;
    const int64_t nte = bnn_dataset_n(te);
    for (int64_t lo = 0; lo < nte; lo += bs) {
        int64_t nb = lo + bs <= nte ? bs : nte - lo;
        const float *f = bnn_model_forward(m, mu, bnn_dataset_cx(te) + lo * 2, nb, false, NULL);
        for (int64_t r = 0; r < nb; r++)
            correct += (f[2 * r + 1] > f[2 * r]) == (bnn_dataset_clabels(te)[lo + r] == 1);
    }
    double acc = (double)correct / (double)nte;
    fprintf(stderr, "mfvi moons: negative ELBO %.4f -> %.4f, test accuracy at mu %.4f\n", first,
            last, acc);
    CHECK(acc > 0.95);
    /* σ moved away from its initial value in both directions' reach: it was trained. */
    int moved = 0;
    for (int64_t i = 0; i < np; i++)
        moved += fabsf(rho[i] - rho0) > 0.1f;
    CHECK(moved > np / 2);
    free(th), free(g), free(s1), free(s2), free(xb), free(yb), free(perm);
    bnn_model_free(m);
    bnn_dataset_free(tr);
    bnn_dataset_free(te);
}

/* A batch beyond the reserved rows is an error reported as the header says (NaN or NULL with a
 * message), not an abort. */
static void test_batch_limits(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:4-3-2") == 0);
    REQUIRE(bnn_model_reserve(m, 4) == 0);
    const int64_t np = bnn_model_nparams(m);
    float *rho = calloc((size_t)np, sizeof(float)), *g1 = calloc((size_t)np, sizeof(float));
    float *g2 = calloc((size_t)np, sizeof(float)), x[32] = {0};
    int32_t lab[8] = {0};
    bnn_lik lik = {BNN_LIK_CATEGORICAL, 1.0};
    struct bnn_mfvi_params p = bnn_mfvi_default_params();
    bnn_rng rng = bnn_rng_make(1, 0);
    CHECK(isnan(bnn_mfvi_loss(m, bnn_model_params(m), rho, x, lab, NULL, 8, &lik, 100, &p, &rng,
                              g1, g2)));
    CHECK(strstr(bnn_last_error(), "batch of 8") != NULL);
    CHECK(bnn_mfvi_forward(m, bnn_model_params(m), rho, x, 8, &rng) == NULL);
    CHECK(bnn_mfvi_forward(m, bnn_model_params(m), rho, x, 2, NULL) == NULL);
    CHECK(bnn_mfvi_forward(m, bnn_model_params(m), rho, x, 2, &rng) != NULL);
    free(rho), free(g1), free(g2);
    bnn_model_free(m);
}

int main(void) {
    bnn_set_threads(2);
    test_batch_limits();
    test_softplus();
    test_sigma_clamp();
    test_kl();
    test_gradients();
    test_lrt_moments();
    test_small_sigma_limit();
    test_dropout_in_loss();
    test_tiny_sigma_finite();
    test_invalid();
    test_threads();
    test_learns_moons();
    return CHECK_DONE();
}
