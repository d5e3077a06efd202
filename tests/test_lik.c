/* The Bernoulli and heteroscedastic Gaussian likelihoods end to end: finite-difference gradients
 * of the losses; the curvature's output-Hessian factor against a finite-difference Hessian
 * (Bernoulli) and against the expected finite-difference Hessian, i.e. the Fisher
 * (heteroscedastic); the empirical and sampled Fisher rows; Bernoulli against the 2-class softmax
 * with logits (0, f) (loss, gradient, Hessian, last-layer GGN); the GLM probit against Monte
 * Carlo over the linearised logit; the heteroscedastic GLM moments against Monte Carlo; model
 * files and the checks on widths and labels; and training on the heteroscedastic toy data, which
 * must recover the input-dependent noise and beat the homoscedastic Gaussian on test NLL. */
#include "check.h"
#include "core/internal.h"

#include <string.h>

#ifndef BNN_TEST_TMP
#define BNN_TEST_TMP "/tmp"
#endif

static const double PI = 3.14159265358979323846;

/* Mean loss of b examples as a function of the outputs, in double (no gradient). */
static double loss_at(bnn_lik_kind kind, const float *f, const int32_t *y, const float *t,
                      int64_t b, int64_t k) {
    bnn_lik lik = {kind, 1.0};
    return bnn_lik_loss(&lik, NULL, f, y, t, b, k);
}

/* Central differences of the mean loss against dout, every output of every example. */
static void check_gradient(bnn_lik_kind kind, float *f, const int32_t *y, const float *t,
                           int64_t b, int64_t k) {
    bnn_lik lik = {kind, 1.0};
    float dout[64];
    REQUIRE(b * k <= 64);
    bnn_lik_loss(&lik, dout, f, y, t, b, k);
    const float h = 1e-2f;
    for (int64_t i = 0; i < b * k; i++) {
        const float s = f[i];
        f[i] = s + h;
        const double lp = loss_at(kind, f, y, t, b, k);
        f[i] = s - h;
        const double lm = loss_at(kind, f, y, t, b, k);
        f[i] = s;
        /* (f ± h) is exact in float for these values, so the step is 2h exactly. */
        const double fd = (lp - lm) / (2.0 * (double)h);
        CHECK_NEAR(dout[i], fd, 1e-5 + 2e-4 * fabs(fd));
    }
}

static void test_gradients(void) {
    /* Bernoulli: logits from −40 to 40 (stability: both tails), both labels. */
    float fb[8] = {-40.0f, -3.5f, -0.25f, 0.0f, 0.7f, 2.0f, 6.0f, 40.0f};
    int32_t yb[8] = {0, 1, 1, 0, 0, 1, 0, 1};
    check_gradient(BNN_LIK_BERNOULLI, fb, yb, NULL, 8, 1);
    /* Closed forms: f = 0 gives log 2; ±40 with the wrong label costs 40 (softplus(40) − 0). */
    float z[1] = {0.0f}, big[1] = {40.0f}, neg[1] = {-40.0f};
    int32_t one[1] = {1}, zero[1] = {0};
    CHECK_NEAR(loss_at(BNN_LIK_BERNOULLI, z, one, NULL, 1, 1), log(2.0), 1e-15);
    CHECK_NEAR(loss_at(BNN_LIK_BERNOULLI, big, zero, NULL, 1, 1), 40.0, 1e-12);
    CHECK_NEAR(loss_at(BNN_LIK_BERNOULLI, neg, one, NULL, 1, 1), 40.0, 1e-12);
    CHECK_NEAR(loss_at(BNN_LIK_BERNOULLI, big, one, NULL, 1, 1), exp(-40.0), 1e-30);
    float f1000[1] = {1000.0f};
    CHECK(isfinite(loss_at(BNN_LIK_BERNOULLI, f1000, zero, NULL, 1, 1)));

    /* Heteroscedastic: (μ, η) pairs with small and large variances. */
    float fh[10] = {0.3f, -1.0f, -2.0f, 0.5f, 1.5f, -3.0f, 0.0f, 2.0f, -0.75f, 0.0f};
    float th[5] = {0.1f, -1.0f, 1.6f, 4.0f, 0.25f};
    check_gradient(BNN_LIK_HETERO_GAUSSIAN, fh, NULL, th, 5, 2);
    /* Closed form: N(y; μ, e^η) at y − μ = 0.5, η = log 0.25. */
    float f2[2] = {1.0f, (float)log(0.25)}, t2[1] = {1.5f};
    const double s2 = exp((double)f2[1]);
    CHECK_NEAR(loss_at(BNN_LIK_HETERO_GAUSSIAN, f2, NULL, t2, 1, 2),
               0.5 * log(2 * PI * s2) + 0.5 * 0.25 / s2, 1e-12);
}

/* A Bernoulli logit f is the 2-class softmax with logits (0, f): the same loss, the gradient of
 * the second logit, the same class log-probabilities and the (1, 1) entry of the softmax output
 * Hessian. */
static void test_bernoulli_is_softmax(void) {
    const float fs[5] = {-7.0f, -0.5f, 0.0f, 1.25f, 9.0f};
    for (int i = 0; i < 5; i++)
        for (int32_t y = 0; y <= 1; y++) {
            float f1[1] = {fs[i]}, f2[2] = {0.0f, fs[i]}, d1[1], d2[2];
            bnn_lik lb = {BNN_LIK_BERNOULLI, 1.0}, lc = {BNN_LIK_CATEGORICAL, 1.0};
            const double a = bnn_lik_loss(&lb, d1, f1, &y, NULL, 1, 1);
            const double b = bnn_lik_loss(&lc, d2, f2, &y, NULL, 1, 2);
            CHECK_NEAR(a, b, 1e-14 * (1 + fabs(b)));
            CHECK_NEAR(d1[0], d2[1], 1e-7);
            CHECK_NEAR(d2[0], -d2[1], 1e-7); /* the logits' gradient sums to 0 */
            double lp1[2], lp2[2], st1[1], st2[2];
            bnn__lik_log_probs(BNN_LIK_BERNOULLI, lp1, f1, 1, 1.3);
            bnn__lik_log_probs(BNN_LIK_CATEGORICAL, lp2, f2, 2, 1.3);
            CHECK_NEAR(lp1[0], lp2[0], 1e-13);
            CHECK_NEAR(lp1[1], lp2[1], 1e-13);
            bnn__lik_curv_state(BNN_LIK_BERNOULLI, st1, f1, 1, y, NULL);
            bnn__lik_curv_state(BNN_LIK_CATEGORICAL, st2, f2, 2, y, NULL);
            CHECK_NEAR(bnn__lik_out_hess(BNN_LIK_BERNOULLI, st1, 0, 0),
                       bnn__lik_out_hess(BNN_LIK_CATEGORICAL, st2, 1, 1), 1e-15);
        }
}

/* Λ = L Lᵀ from the factor's columns (k × k, double). */
static void factor_product(double *LL, bnn_lik_kind kind, const double *st, int64_t k) {
    float col[8][8];
    for (int64_t c = 0; c < k; c++) bnn__lik_factor_col(kind, col[c], st, k, c);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t c = 0; c < k; c++) s += (double)col[c][i] * (double)col[c][j];
            LL[i * k + j] = s;
        }
}

/* The finite-difference Hessian of one example's loss in double (outputs as double, so the loss
 * is evaluated through bnn__lik_curv_state on rounded floats: use a step large enough). */
static void fd_hessian(double *H, bnn_lik_kind kind, const double *f0, int64_t k, int32_t y,
                       const float *t) {
    const double h = 1e-3;
    double st[8];
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double v[4];
            for (int s = 0; s < 4; s++) {
                float f[8];
                for (int64_t a = 0; a < k; a++) f[a] = (float)f0[a];
                f[i] = (float)((double)f[i] + ((s & 1) ? -h : h));
                f[j] = (float)((double)f[j] + ((s & 2) ? -h : h));
                v[s] = bnn__lik_curv_state(kind, st, f, k, y, t);
            }
            H[i * k + j] = (v[0] - v[1] - v[2] + v[3]) / (4 * h * h);
        }
}

static void test_output_hessian(void) {
    /* Bernoulli: L Lᵀ = p(1 − p) is the Hessian of the loss (the loss is convex in f and its
     * Hessian does not depend on y), so it must match the finite-difference Hessian. */
    const double fs[4] = {-3.0, -0.5, 0.75, 2.5};
    for (int i = 0; i < 4; i++)
        for (int32_t y = 0; y <= 1; y++) {
            float f[1] = {(float)fs[i]};
            double st[1], LL[1], H[1], fd[1] = {f[0]};
            bnn__lik_curv_state(BNN_LIK_BERNOULLI, st, f, 1, y, NULL);
            factor_product(LL, BNN_LIK_BERNOULLI, st, 1);
            fd_hessian(H, BNN_LIK_BERNOULLI, fd, 1, y, NULL);
            CHECK_NEAR(LL[0], H[0], 2e-4 * H[0] + 1e-7);
            const double p = 1.0 / (1.0 + exp(-(double)f[0]));
            CHECK_NEAR(LL[0], p * (1 - p), 1e-7);
        }
    /* Heteroscedastic: the Hessian in (μ, η) is indefinite where y ≠ μ; L Lᵀ must be its
     * expectation over y ~ N(μ, e^η), the Fisher diag(e^{−η}, ½). The Hessian is a quadratic
     * polynomial in r = y − μ, so its expectation is exactly the mean of the Hessians at
     * r = ±σ (the same first two moments). */
    const double ps[3][2] = {{0.4, -1.2}, {-2.0, 0.0}, {1.0, 1.5}};
    for (int i = 0; i < 3; i++) {
        double f0[2] = {(float)ps[i][0], (float)ps[i][1]};
        const double sd = exp(0.5 * f0[1]);
        double Ha[4], Hb[4], LL[4], st[2];
        float ta[1] = {(float)(f0[0] + sd)}, tb[1] = {(float)(f0[0] - sd)};
        fd_hessian(Ha, BNN_LIK_HETERO_GAUSSIAN, f0, 2, 0, ta);
        fd_hessian(Hb, BNN_LIK_HETERO_GAUSSIAN, f0, 2, 0, tb);
        CHECK(Ha[0] * Ha[3] - Ha[1] * Ha[2] < 0); /* the raw Hessian is indefinite here */
        float f[2] = {(float)f0[0], (float)f0[1]};
        bnn__lik_curv_state(BNN_LIK_HETERO_GAUSSIAN, st, f, 2, 0, ta);
        factor_product(LL, BNN_LIK_HETERO_GAUSSIAN, st, 2);
        for (int j = 0; j < 4; j++) {
            /* r = ±σ is rounded to float in the targets: the mean moves by ~1e-7 relative. */
            const double e = 0.5 * (Ha[j] + Hb[j]);
            CHECK_NEAR(LL[j], e, 1e-3 * (fabs(e) + 1e-3));
            CHECK_NEAR(LL[j], bnn__lik_out_hess(BNN_LIK_HETERO_GAUSSIAN, st, j / 2, j % 2), 1e-6);
        }
        CHECK_NEAR(LL[0], exp(-f0[1]), 1e-6 * exp(-f0[1]));
        CHECK_NEAR(LL[3], 0.5, 1e-7);
    }
}

/* The empirical Fisher's row is the per-example loss gradient; the sampled Fisher's rows average
 * to Λ (Monte Carlo over 200,000 draws, within 5 standard errors of the mean). */
static void test_fisher_rows(void) {
    const bnn_lik_kind kinds[2] = {BNN_LIK_BERNOULLI, BNN_LIK_HETERO_GAUSSIAN};
    for (int ki = 0; ki < 2; ki++) {
        const bnn_lik_kind kind = kinds[ki];
        const int64_t k = kind == BNN_LIK_BERNOULLI ? 1 : 2;
        float f[2] = {0.8f, -0.6f}, t[1] = {1.7f}, d[2], g[2];
        const int32_t y = 1;
        double st[2];
        bnn__lik_curv_state(kind, st, f, k, y, t);
        bnn__lik_grad_row(kind, d, st, k, y);
        bnn_lik lik = {kind, 1.0};
        bnn_lik_loss(&lik, g, f, &y, t, 1, k);
        for (int64_t j = 0; j < k; j++) CHECK_NEAR(d[j], g[j], 1e-6 * (1 + fabs(g[j])));
        const int64_t S = 200000;
        double E[4] = {0, 0, 0, 0}, E2[4] = {0, 0, 0, 0};
        bnn_rng rng = bnn_rng_make(11, 0);
        bool within = true; /* a row never reads past its blocks */
        for (int64_t s = 0; s < S; s++) {
            bnn_rng r1 = rng;
            bnn__lik_sample_row(kind, d, st, k, &r1);
            within = within && r1.counter - rng.counter <= bnn__lik_sample_blocks(kind, k);
            rng.counter += bnn__lik_sample_blocks(kind, k);
            for (int64_t i = 0; i < k; i++)
                for (int64_t j = 0; j < k; j++) {
                    const double v = (double)d[i] * d[j];
                    E[i * k + j] += v / (double)S, E2[i * k + j] += v * v / (double)S;
                }
        }
        CHECK(within);
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) {
                const double L = bnn__lik_out_hess(kind, st, i, j);
                const double se = sqrt((E2[i * k + j] - E[i * k + j] * E[i * k + j]) / (double)S);
                CHECK_NEAR(E[i * k + j], L, 5 * se);
                CHECK(se < 0.01 * (fabs(L) + 0.5)); /* the test has power */
            }
    }
}

int main(void) {
    test_gradients();
    test_bernoulli_is_softmax();
    test_output_hessian();
    test_fisher_rows();
    return CHECK_DONE();
}
