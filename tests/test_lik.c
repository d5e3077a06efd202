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
static void check_gradient(bnn_lik_kind kind, float *f, const int32_t *y, const float *t, int64_t b,
                           int64_t k) {
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
    for (int64_t c = 0; c < k; c++)
        bnn__lik_factor_col(kind, col[c], st, k, c);
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t c = 0; c < k; c++)
                s += (double)col[c][i] * (double)col[c][j];
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
                for (int64_t a = 0; a < k; a++)
                    f[a] = (float)f0[a];
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
        for (int64_t j = 0; j < k; j++)
            CHECK_NEAR(d[j], g[j], 1e-6 * (1 + fabs(g[j])));
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

/* ------------------------------------------------------------------ curvature and Laplace */

/* A model with the given likelihood, initialised from seed. */
static bnn_model *lik_model(const char *spec, bnn_lik_kind lik, uint64_t seed) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, spec) == 0);
    REQUIRE(bnn_model_set_lik(m, lik) == 0);
    bnn_model_init(m, seed);
    return m;
}

/* A Bernoulli network and its 2-class softmax twin: the same hidden layers, and a last layer
 * whose class-0 row and bias are 0 and whose class-1 row is the Bernoulli's, so its logits are
 * (0, f). A 2-class dataset of n random points. */
static void make_twins(bnn_model **mb, bnn_model **mc, bnn_dataset **ds, int64_t n) {
    *mb = lik_model("mlp:3-6-5-1:tanh", BNN_LIK_BERNOULLI, 5);
    REQUIRE(bnn_model_new(mc, "mlp:3-6-5-2:tanh") == 0);
    float *wb = bnn_model_params(*mb), *wc = bnn_model_params(*mc);
    for (int64_t i = 0; i < bnn_model_nparams(*mb); i++)
        wb[i] *= 2.0f;                                 /* every layer matters */
    const int64_t hidden = bnn_model_nparams(*mb) - 6; /* before the last layer */
    memcpy(wc, wb, (size_t)hidden * sizeof(float));
    memset(wc + hidden, 0, 12 * sizeof(float));
    memcpy(wc + hidden + 5, wb + hidden, 5 * sizeof(float)); /* W row 1 */
    wc[hidden + 11] = wb[hidden + 5];                        /* bias 1 */
    REQUIRE(bnn_dataset_new(ds, BNN_TASK_CLASSIFICATION, n, 3, 0, 2) == 0);
    bnn_rng rng = bnn_rng_make(17, 1);
    bnn_rng_normal(&rng, bnn_dataset_x(*ds), n * 3);
    for (int64_t i = 0; i < n; i++)
        bnn_dataset_labels(*ds)[i] = (int32_t)bnn_rng_below(&rng, 2);
}

/* The parameter of the Bernoulli network that parameter i of the twin corresponds to, or −1 for
 * the twin's class-0 row and bias (which the Bernoulli network does not have). */
static int64_t twin_index(int64_t i, int64_t hidden) {
    if (i < hidden) return i;
    const int64_t j = i - hidden; /* W [2 × 5] then b [2] */
    if (j >= 5 && j < 10) return hidden + j - 5;
    if (j == 11) return hidden + 5;
    return -1;
}

/* Bernoulli's curvature is the softmax twin's restricted to the parameters they share: the exact
 * GGN (p(1 − p) is the (1, 1) entry of the softmax output Hessian, and the class-0 logit is a
 * constant) and the empirical Fisher (the second entry of p − e_y is sigmoid(f) − y), for the
 * last layer (full, through the Kronecker shortcut) and for all layers (diag and kron). */
static void test_bernoulli_curvature(void) {
    bnn_model *mb, *mc;
    bnn_dataset *ds;
    make_twins(&mb, &mc, &ds, 40);
    const int64_t hidden = bnn_model_nparams(mb) - 6;
    const bnn_hessian hs[3] = {BNN_HESS_FULL, BNN_HESS_DIAG, BNN_HESS_KRON};
    const bnn_subset ss[3] = {BNN_SUBSET_LAST_LAYER, BNN_SUBSET_ALL, BNN_SUBSET_ALL};
    const bnn_curvature cs[2] = {BNN_CURV_GGN, BNN_CURV_EF};
    for (int ci = 0; ci < 2; ci++)
        for (int h = 0; h < 3; h++) {
            struct bnn_curv_params p = bnn_curv_default_params();
            p.curvature = cs[ci], p.hessian = hs[h], p.subset = ss[h], p.batch_size = 16;
            bnn_curv *cb, *cc;
            REQUIRE(bnn_curv_compute(&cb, mb, ds, &p) == 0);
            REQUIRE(bnn_curv_compute(&cc, mc, ds, &p) == 0);
            CHECK_NEAR(bnn_curv_loss(cb), bnn_curv_loss(cc), 1e-9 * bnn_curv_loss(cc));
            bnn_lik_kind k;
            CHECK(bnn__curv_lik(cb, &k) == 0 && k == BNN_LIK_BERNOULLI);
            const int64_t ob = bnn_curv_offset(cb), oc = bnn_curv_offset(cc);
            const int64_t Pb = bnn_curv_nparams(cb), Pc = bnn_curv_nparams(cc);
            double worst = 0, scale = 0;
            if (hs[h] == BNN_HESS_FULL || hs[h] == BNN_HESS_DIAG) {
                const double *Hb = hs[h] == BNN_HESS_FULL ? bnn_curv_dense(cb) : bnn_curv_diag(cb);
                const double *Hc = hs[h] == BNN_HESS_FULL ? bnn_curv_dense(cc) : bnn_curv_diag(cc);
                const bool full = hs[h] == BNN_HESS_FULL;
                for (int64_t i = 0; i < Pc; i++)
                    for (int64_t j = 0; j < (full ? Pc : 1); j++) {
                        const int64_t a = twin_index(oc + i, hidden),
                                      b = twin_index(oc + j, hidden);
                        const double vc = full ? Hc[i * Pc + j] : Hc[i];
                        scale = fmax(scale, fabs(vc));
                        if (a < 0 || (full && b < 0)) continue; /* the class-0 logit's own */
                        const double vb = full ? Hb[(a - ob) * Pb + (b - ob)] : Hb[a - ob];
                        worst = fmax(worst, fabs(vb - vc));
                    }
            } else { /* kron: per layer, A equal; B of the last layer is the (1, 1) entry */
                const int64_t nb = bnn_curv_nblocks(cb);
                CHECK_EQ_INT(nb, bnn_curv_nblocks(cc));
                for (int64_t bl = 0; bl < nb; bl++) {
                    const double *b0, *b1, *c0, *c1;
                    int64_t bn0, bn1, cn0, cn1;
                    int nfb, nfc;
                    REQUIRE(bnn_curv_block(cb, bl, &nfb, &b0, &bn0, &b1, &bn1) == 0);
                    REQUIRE(bnn_curv_block(cc, bl, &nfc, &c0, &cn0, &c1, &cn1) == 0);
                    const bool last = bl >= nb - 2;
                    if (last) { /* B (1 × 1) against the twin's B[1][1] */
                        worst = fmax(worst, fabs(b0[0] - c0[3]));
                        scale = fmax(scale, fabs(c0[3]));
                    } else {
                        for (int64_t i = 0; i < bn0 * bn0; i++) {
                            worst = fmax(worst, fabs(b0[i] - c0[i]));
                            scale = fmax(scale, fabs(c0[i]));
                        }
                    }
                    for (int64_t i = 0; nfb == 2 && i < bn1 * bn1; i++)
                        worst = fmax(worst, fabs(b1[i] - c1[i]));
                }
            }
            if (worst > 1e-5 * scale)
                fprintf(stderr, "bernoulli vs softmax, curvature %d hessian %d: %.3g of %.3g\n", ci,
                        h, worst, scale);
            CHECK(scale > 0);
            CHECK(worst <= 1e-5 * scale);
            bnn_curv_free(cb), bnn_curv_free(cc);
        }
    /* A dataset with a third class does not fit a Bernoulli network. */
    bnn_dataset *d3;
    REQUIRE(bnn_dataset_new(&d3, BNN_TASK_CLASSIFICATION, 4, 3, 0, 3) == 0);
    bnn_curv *c3 = NULL;
    struct bnn_curv_params p = bnn_curv_default_params();
    CHECK_EQ_INT(bnn_curv_compute(&c3, mb, d3, &p), BNN_ESHAPE);
    CHECK_EQ_INT(bnn__check_data(mb, d3), BNN_ESHAPE);
    CHECK(strstr(bnn_last_error(), "bernoulli") != NULL);
    bnn_dataset_free(d3);
    bnn_model_free(mb), bnn_model_free(mc), bnn_dataset_free(ds);
}

/* Heteroscedastic: the curvature over all weights against an independent double reference
 * H = Σ_n J_nᵀ Λ_n J_n (Λ_n = diag(e^{−η_n}, ½), J_n from two single-example backward passes) and
 * EF = Σ_n g_n g_nᵀ; then the Laplace marginal likelihood in closed form, with no σ to tune. */
static void test_hetero_curvature(void) {
    bnn_model *m = lik_model("mlp:1-5-4-2:tanh", BNN_LIK_HETERO_GAUSSIAN, 3);
    const int64_t np = bnn_model_nparams(m), N = 30;
    bnn_dataset *ds;
    REQUIRE(bnn_toy_sine_hetero(&ds, N, 4, false) == 0);
    double *ggn = calloc((size_t)(np * np), sizeof(double)), *ef = calloc((size_t)(np * np), 8);
    float *J = malloc((size_t)(2 * np) * sizeof(float)), *g = malloc((size_t)np * sizeof(float));
    REQUIRE(ggn && ef && J && g && bnn_model_reserve(m, 1) == 0);
    double loss = 0;
    for (int64_t n = 0; n < N; n++) {
        const float *x = bnn_dataset_cx(ds) + n, *t = bnn_dataset_ctargets(ds) + n;
        float f[2];
        for (int c = 0; c < 2; c++) {
            memcpy(f, bnn_model_forward(m, bnn_model_params(m), x, 1, false, NULL), sizeof f);
            float e[2] = {(float)(c == 0), (float)(c == 1)};
            memset(J + c * np, 0, (size_t)np * sizeof(float));
            bnn_model_backward(m, bnn_model_params(m), e, J + c * np);
        }
        const double lam[2] = {exp(-(double)f[1]), 0.5};
        bnn_lik lik = {BNN_LIK_HETERO_GAUSSIAN, 1.0};
        float d[2];
        loss += bnn_lik_loss(&lik, d, f, NULL, t, 1, 2);
        for (int64_t i = 0; i < np; i++)
            g[i] = d[0] * J[i] + d[1] * J[np + i];
        for (int64_t i = 0; i < np; i++)
            for (int64_t j = 0; j < np; j++) {
                ggn[i * np + j] += lam[0] * J[i] * J[j] + lam[1] * J[np + i] * J[np + j];
                ef[i * np + j] += (double)g[i] * g[j];
            }
    }
    const bnn_curvature cs[2] = {BNN_CURV_GGN, BNN_CURV_EF};
    for (int ci = 0; ci < 2; ci++) {
        const double *ref = ci ? ef : ggn;
        struct bnn_curv_params p = bnn_curv_default_params();
        p.curvature = cs[ci], p.hessian = BNN_HESS_FULL, p.subset = BNN_SUBSET_ALL;
        p.batch_size = 7;
        bnn_curv *c;
        REQUIRE(bnn_curv_compute(&c, m, ds, &p) == 0);
        CHECK_NEAR(bnn_curv_loss(c), loss, 1e-9 * fabs(loss));
        const double *H = bnn_curv_dense(c);
        double worst = 0, scale = 0;
        for (int64_t i = 0; i < np * np; i++) {
            worst = fmax(worst, fabs(H[i] - ref[i]));
            scale = fmax(scale, fabs(ref[i]));
        }
        CHECK(worst <= 1e-5 * scale);
        if (ci == 0) {
            /* lml = −Σ NLL − ½[log det(H + δI) − P log δ + δ‖θ‖²]: σ plays no part. */
            bnn_laplace *la;
            REQUIRE(bnn_laplace_new(&la, c, bnn_model_cparams(m), BNN_TASK_REGRESSION) == 0);
            double *A = malloc((size_t)(np * np) * sizeof(double)), th = 0;
            REQUIRE(A != NULL);
            const double delta = 0.7;
            for (int64_t i = 0; i < np * np; i++)
                A[i] = ref[i] + (i % (np + 1) == 0 ? delta : 0);
            for (int64_t i = 0; i < np; i++)
                th += (double)bnn_model_cparams(m)[i] * bnn_model_cparams(m)[i];
            /* log det by Cholesky in double */
            double logdet = 0;
            for (int64_t j = 0; j < np; j++) {
                double dj = A[j * np + j];
                for (int64_t k = 0; k < j; k++)
                    dj -= A[j * np + k] * A[j * np + k];
                dj = sqrt(dj);
                A[j * np + j] = dj;
                logdet += 2 * log(dj);
                for (int64_t i = j + 1; i < np; i++) {
                    double v = A[i * np + j];
                    for (int64_t k = 0; k < j; k++)
                        v -= A[i * np + k] * A[j * np + k];
                    A[i * np + j] = v / dj;
                }
            }
            free(A);
            const double want = -loss - 0.5 * (logdet - (double)np * log(delta) + delta * th);
            double dls = 1;
            CHECK_NEAR(bnn_laplace_lml(la, delta, 3.0, NULL, &dls), want, 1e-6 * fabs(want));
            CHECK_NEAR(dls, 0.0, 0.0);
            REQUIRE(bnn_laplace_optimize(la, 300) == 0);
            CHECK_NEAR(bnn_laplace_sigma(la), 1.0, 0.0); /* no noise to tune */
            double dlp;
            bnn_laplace_lml(la, bnn_laplace_prior_prec(la), 1.0, &dlp, NULL);
            CHECK_NEAR(dlp, 0.0, 1e-3); /* the prior precision is at the optimum */
            CHECK(bnn_laplace_lml(la, bnn_laplace_prior_prec(la), 1.0, NULL, NULL) >=
                  bnn_laplace_lml(la, 1.0, 1.0, NULL, NULL));
            bnn_laplace_free(la);
            /* A low-rank curvature of full rank, by either way of computing it, is the same
             * posterior: the same lml, and no noise tuned (the dense way once lost the
             * likelihood and read as homoscedastic: lml −44.98 for −34.08, σ tuned to 1.85). */
            for (int way = 1; way <= 2; way++) {
                struct bnn_curv_params q = p;
                q.hessian = BNN_HESS_LOWRANK, q.rank = np, q.lowrank_method = way;
                bnn_curv *lc;
                REQUIRE(bnn_curv_compute(&lc, m, ds, &q) == 0);
                REQUIRE(bnn_laplace_new(&la, lc, bnn_model_cparams(m), BNN_TASK_REGRESSION) == 0);
                dls = 1;
                CHECK_NEAR(bnn_laplace_lml(la, delta, 3.0, NULL, &dls), want, 1e-5 * fabs(want));
                CHECK_NEAR(dls, 0.0, 0.0);
                REQUIRE(bnn_laplace_optimize(la, 300) == 0);
                CHECK_NEAR(bnn_laplace_sigma(la), 1.0, 0.0);
                bnn_laplace_free(la);
            }
        } else {
            bnn_curv_free(c);
        }
    }
    /* The last layer (forward passes only, its own code path): full and diag must be the last
     * layer's block of the same references. */
    const bnn_hessian hs[2] = {BNN_HESS_FULL, BNN_HESS_DIAG};
    for (int ci = 0; ci < 2; ci++)
        for (int hi = 0; hi < 2; hi++) {
            const double *ref = ci ? ef : ggn;
            struct bnn_curv_params p = bnn_curv_default_params();
            p.curvature = cs[ci], p.hessian = hs[hi], p.subset = BNN_SUBSET_LAST_LAYER;
            p.batch_size = 7;
            bnn_curv *c;
            REQUIRE(bnn_curv_compute(&c, m, ds, &p) == 0);
            const int64_t P = bnn_curv_nparams(c), o = bnn_curv_offset(c);
            CHECK(P == 4 * 2 + 2 && o == np - P);
            CHECK_NEAR(bnn_curv_loss(c), loss, 1e-9 * fabs(loss));
            double worst = 0, scale = 0;
            for (int64_t i = 0; i < P; i++)
                for (int64_t j = 0; j < P; j++) {
                    if (hs[hi] == BNN_HESS_DIAG && i != j) continue;
                    const double r = ref[(o + i) * np + o + j];
                    const double v = hs[hi] == BNN_HESS_FULL ? bnn_curv_dense(c)[i * P + j]
                                                            : bnn_curv_diag(c)[i];
                    worst = fmax(worst, fabs(v - r)), scale = fmax(scale, fabs(r));
                }
            if (!(worst <= 1e-5 * scale))
                fprintf(stderr, "hetero last layer, curvature %d, hessian %d: error %.3g of %.3g\n",
                        ci, hi, worst, scale);
            CHECK(worst <= 1e-5 * scale);
            bnn_curv_free(c);
        }
    free(ggn), free(ef), free(J), free(g);
    bnn_model_free(m), bnn_dataset_free(ds);
}

/* ------------------------------------------------------------------ predictive */

/* E[sigmoid(f)] and E[sigmoid(f)²] under f ~ N(m, v), by the trapezoidal rule on ±12 standard
 * deviations. */
static double sigmoid_gauss(double m, double v, double *second) {
    const int n = 20000;
    const double s = sqrt(v), a = m - 12 * s, h = 24 * s / n;
    double acc = 0, acc2 = 0;
    for (int i = 0; i <= n; i++) {
        const double f = a + i * h, w = (i == 0 || i == n) ? 0.5 : 1.0;
        const double p = 1 / (1 + exp(-f)), g = w * exp(-0.5 * (f - m) * (f - m) / v);
        acc += g * p, acc2 += g * p * p;
    }
    *second = acc2 * h / sqrt(2 * PI * v);
    return acc * h / sqrt(2 * PI * v);
}

/* A last-layer Laplace posterior of a model at a small prior precision (wide predictive). */
static bnn_laplace *fit_laplace(bnn_model *m, const bnn_dataset *ds, bnn_task task, double delta) {
    struct bnn_curv_params p = bnn_curv_default_params();
    p.hessian = BNN_HESS_FULL;
    bnn_curv *c;
    REQUIRE(bnn_curv_compute(&c, m, ds, &p) == 0);
    bnn_laplace *la;
    REQUIRE(bnn_laplace_new_from_params(&la, c, bnn_model_cparams(m), task) == 0);
    bnn_laplace_set_prior(la, delta, 1.0);
    return la;
}

static void test_bernoulli_predictive(void) {
    bnn_model *mb, *mc;
    bnn_dataset *ds;
    make_twins(&mb, &mc, &ds, 40);
    const int64_t n = 40;
    const float *x = bnn_dataset_cx(ds);
    struct bnn_predict_params pp = bnn_predict_default_params();
    /* At the weights and with a temperature: the twin's 2-class softmax, exactly. */
    double pb[80], pc[80], mi[40];
    pp.temperature = 1.7;
    REQUIRE(bnn_predict(mb, NULL, x, n, BNN_TASK_CLASSIFICATION, &pp, pb, mi, NULL, NULL) == 0);
    REQUIRE(bnn_predict(mc, NULL, x, n, BNN_TASK_CLASSIFICATION, &pp, pc, NULL, NULL, NULL) == 0);
    for (int64_t i = 0; i < 2 * n; i++)
        CHECK_NEAR(pb[i], pc[i], 1e-12);
    CHECK_EQ_INT(bnn_predict(mb, NULL, x, n, BNN_TASK_REGRESSION, &pp, NULL, NULL, pb, pc),
                 BNN_EINVAL);
    pp.temperature = 1.0;

    /* GLM: the probit is MacKay's sigmoid(f̄/√(1 + πv/8)); Monte Carlo over the linearised logit
     * converges to the exact ∫ sigmoid(f) N(f̄, v) df, which the probit approximates. */
    bnn_laplace *la = fit_laplace(mb, ds, BNN_TASK_CLASSIFICATION, 0.05);
    double fm[40], fv[40], mc_p[80], mc_mi[40];
    REQUIRE(bnn_laplace_glm(la, mb, x, n, fm, fv) == 0);
    REQUIRE(bnn_laplace_predict(la, mb, x, n, BNN_TASK_CLASSIFICATION, &pp, pb, mi, NULL, NULL) ==
            0);
    pp.link_samples = 20000;
    REQUIRE(bnn_laplace_predict(la, mb, x, n, BNN_TASK_CLASSIFICATION, &pp, mc_p, mc_mi, NULL,
                                NULL) == 0);
    double worst_mc = 0, worst_probit = 0, maxv = 0, max_se = 0;
    for (int64_t i = 0; i < n; i++) {
        double second;
        const double exact = sigmoid_gauss(fm[i], fv[i], &second);
        /* Monte Carlo's standard error: the sd of sigmoid(f) over √S. The average is taken in
         * log space, which moves it by O(1/S) only. */
        const double se = sqrt(fmax(second - exact * exact, 0) / 20000.0);
        max_se = fmax(max_se, se);
        CHECK_NEAR(pb[2 * i + 1], 1 / (1 + exp(-fm[i] / sqrt(1 + PI * fv[i] / 8))), 1e-12);
        CHECK_NEAR(pb[2 * i] + pb[2 * i + 1], 1.0, 1e-12);
        CHECK_NEAR(mc_p[2 * i] + mc_p[2 * i + 1], 1.0, 1e-12);
        CHECK_NEAR(mc_p[2 * i + 1], exact, 4.5 * se + 1e-5);
        worst_mc = fmax(worst_mc, fabs(mc_p[2 * i + 1] - exact));
        worst_probit = fmax(worst_probit, fabs(pb[2 * i + 1] - exact));
        maxv = fmax(maxv, fv[i]);
        CHECK(mc_mi[i] >= 0 && mi[i] == 0);
    }
    fprintf(stderr,
            "bernoulli GLM: max logit variance %.3g, |MC − exact| %.2g (largest standard "
            "error %.2g), |probit − exact| %.2g\n",
            maxv, worst_mc, max_se, worst_probit);
    CHECK(maxv > 1.0);          /* wide enough that the link matters */
    CHECK(max_se > 1e-4);       /* and the draws vary */
    CHECK(worst_probit < 0.02); /* the probit approximation's known accuracy */
    /* A temperature divides the linearised logit by T: its mean by T, its variance by T². */
    pp.link_samples = 0, pp.temperature = 2.0;
    REQUIRE(bnn_laplace_predict(la, mb, x, n, BNN_TASK_CLASSIFICATION, &pp, pb, NULL, NULL, NULL) ==
            0);
    for (int64_t i = 0; i < n; i++)
        CHECK_NEAR(pb[2 * i + 1], 1 / (1 + exp(-(fm[i] / 2) / sqrt(1 + PI * (fv[i] / 4) / 8))),
                   1e-12);
    /* The Laplace bridge is a Dirichlet over a categorical's classes: refused for Bernoulli. */
    pp.temperature = 1.0, pp.link = BNN_LINK_BRIDGE;
    CHECK_EQ_INT(bnn_laplace_predict(la, mb, x, n, BNN_TASK_CLASSIFICATION, &pp, pb, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "has a bernoulli likelihood") != NULL);
    pp.link = BNN_LINK_PROBIT;
    bnn_laplace_free(la);
    bnn_model_free(mb), bnn_model_free(mc), bnn_dataset_free(ds);
}

/* Heteroscedastic GLM: mean f̄_μ and variance Σ_μμ + exp(f̄_η + ½Σ_ηη), against Monte Carlo over
 * (μ, η) ~ N(f̄, Σ) with the mixture's moments. */
static void test_hetero_predictive(void) {
    bnn_model *m = lik_model("mlp:1-8-2:tanh", BNN_LIK_HETERO_GAUSSIAN, 8);
    bnn_dataset *ds;
    REQUIRE(bnn_toy_sine_hetero(&ds, 50, 2, false) == 0);
    bnn_laplace *la = fit_laplace(m, ds, BNN_TASK_REGRESSION, 0.5);
    const int64_t n = 8;
    float x[8];
    for (int i = 0; i < n; i++)
        x[i] = -4.0f + (float)i;
    double fm[16], fv[32], mean[8], var[8];
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.sigma = 123.0; /* not used: the noise is the network's */
    REQUIRE(bnn_laplace_glm(la, m, x, n, fm, fv) == 0);
    REQUIRE(bnn_laplace_predict(la, m, x, n, BNN_TASK_REGRESSION, &pp, NULL, NULL, mean, var) == 0);
    bnn_rng rng = bnn_rng_make(9, 9);
    const int64_t S = 400000;
    float *z = malloc((size_t)(2 * S) * sizeof(float));
    REQUIRE(z != NULL);
    for (int64_t i = 0; i < n; i++) {
        const double *V = fv + 4 * i;
        const double l00 = sqrt(V[0]), l10 = V[2] / l00, l11 = sqrt(V[3] - l10 * l10);
        bnn_rng_normal(&rng, z, 2 * S);
        double s1 = 0, s2 = 0, se = 0;
        for (int64_t s = 0; s < S; s++) {
            const double mu = fm[2 * i] + l00 * z[2 * s];
            const double eta = fm[2 * i + 1] + l10 * z[2 * s] + l11 * z[2 * s + 1];
            s1 += mu, s2 += mu * mu, se += exp(eta);
        }
        const double mmc = s1 / S, vmc = s2 / S - mmc * mmc + se / S;
        CHECK_NEAR(mean[i], fm[2 * i], 0.0);
        CHECK_NEAR(mean[i], mmc, 5 * sqrt(V[0] / S));
        CHECK_NEAR(var[i], vmc, 0.01 * vmc);
        CHECK(var[i] > V[0] + exp(fm[2 * i + 1])); /* the spread of η adds noise variance */
    }
    free(z);

    /* Weight samples of a diagonal posterior: the moments of the mixture of N(μ_s, e^{η_s}),
     * recomputed here from the same draws (prediction's stream 5·2^32 of the seed). */
    const int64_t np = bnn_model_nparams(m), S2 = 16;
    bnn_posterior *q;
    REQUIRE(bnn_posterior_new(&q, BNN_POSTERIOR_DIAG, np) == 0);
    memcpy(bnn_posterior_mean(q), bnn_model_cparams(m), (size_t)np * sizeof(float));
    for (int64_t i = 0; i < np; i++)
        bnn_posterior_std(q)[i] = 0.2f;
    pp.samples = S2, pp.seed = 4;
    REQUIRE(bnn_predict(m, q, x, n, BNN_TASK_REGRESSION, &pp, NULL, NULL, mean, var) == 0);
    float *theta = malloc((size_t)np * sizeof(float));
    double mu[16][8], nv[8] = {0};
    REQUIRE(theta != NULL);
    bnn_rng prng = bnn_rng_make(4, (uint64_t)5 << 32);
    for (int64_t s = 0; s < S2; s++) {
        REQUIRE(bnn_posterior_sample(q, &prng, theta) == 0);
        const float *f = bnn_model_forward(m, theta, x, n, false, NULL);
        for (int64_t i = 0; i < n; i++)
            mu[s][i] = f[2 * i], nv[i] += exp((double)f[2 * i + 1]) / S2;
    }
    for (int64_t i = 0; i < n; i++) {
        double mm = 0, vv = 0;
        for (int64_t s = 0; s < S2; s++)
            mm += mu[s][i] / S2;
        for (int64_t s = 0; s < S2; s++)
            vv += (mu[s][i] - mm) * (mu[s][i] - mm) / S2;
        CHECK_NEAR(mean[i], mm, 1e-9);
        CHECK_NEAR(var[i], nv[i] + vv, 1e-9 * (nv[i] + vv));
        CHECK(vv > 1e-4 * nv[i]); /* the spread of the means is part of it */
    }
    free(theta);
    bnn_posterior_free(q);
    bnn_laplace_free(la);
    bnn_model_free(m), bnn_dataset_free(ds);
}

/* ------------------------------------------------------------------ models, files, training */

static void test_model_lik(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-4-3") == 0);
    CHECK(bnn_model_lik(m, BNN_TASK_CLASSIFICATION) == BNN_LIK_CATEGORICAL);
    CHECK(bnn_model_lik(m, BNN_TASK_REGRESSION) == BNN_LIK_GAUSSIAN);
    CHECK_EQ_INT(bnn_model_set_lik(m, BNN_LIK_BERNOULLI), BNN_ESHAPE);
    CHECK(strstr(bnn_last_error(), "needs 1 output") != NULL);
    CHECK_EQ_INT(bnn_model_set_lik(m, BNN_LIK_HETERO_GAUSSIAN), BNN_ESHAPE);
    CHECK_EQ_INT(bnn_model_set_lik(m, (bnn_lik_kind)7), BNN_EINVAL);
    CHECK(bnn_model_lik(m, BNN_TASK_CLASSIFICATION) == BNN_LIK_CATEGORICAL); /* unchanged */
    bnn_model_free(m);
    CHECK_EQ_INT(bnn_lik_outputs(BNN_LIK_BERNOULLI, 2), 1);
    CHECK_EQ_INT(bnn_lik_outputs(BNN_LIK_BERNOULLI, 3), 0);
    CHECK_EQ_INT(bnn_lik_outputs(BNN_LIK_HETERO_GAUSSIAN, 1), 2);
    CHECK_EQ_INT(bnn_lik_outputs(BNN_LIK_HETERO_GAUSSIAN, 2), 0);
    CHECK_EQ_INT(bnn_lik_pred_dim(BNN_LIK_BERNOULLI, 1), 2);
    CHECK_EQ_INT(bnn_lik_pred_dim(BNN_LIK_HETERO_GAUSSIAN, 2), 1);
    for (int i = 0; i <= BNN_LIK_HETERO_GAUSSIAN; i++) {
        bnn_lik_kind k;
        CHECK(bnn_lik_parse(bnn_lik_name((bnn_lik_kind)i), &k) == 0 && k == (bnn_lik_kind)i);
    }
    bnn_lik_kind k;
    CHECK_EQ_INT(bnn_lik_parse("poisson", &k), BNN_EINVAL);
    CHECK(!strcmp(bnn_last_error(), "unknown likelihood 'poisson' (choose categorical, gaussian, "
                                    "bernoulli or hetero-gaussian)"));

    /* A file keeps the likelihood; a wrong one in the metadata is a format error. */
    REQUIRE(bnn_model_new(&m, "mlp:2-4-1") == 0);
    REQUIRE(bnn_model_set_lik(m, BNN_LIK_BERNOULLI) == 0);
    bnn_model_init(m, 1);
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/test_lik_bernoulli.safetensors", BNN_TEST_TMP);
    snprintf(bad, sizeof bad, "%s/test_lik_bad.safetensors", BNN_TEST_TMP);
    REQUIRE(bnn_model_save(m, path, BNN_TASK_CLASSIFICATION, NULL, NULL, 0) == 0);
    bnn_model *m2;
    bnn_task task;
    bnn_st *st;
    REQUIRE(bnn_model_load(&m2, path, &task, &st) == 0);
    CHECK(task == BNN_TASK_CLASSIFICATION && bnn_model_lik(m2, task) == BNN_LIK_BERNOULLI);
    CHECK(!strcmp(bnn_st_meta(st, "bnn.lik"), "bernoulli"));
    CHECK_EQ_INT(bnn_model_pred_dim(m2, task), 2);
    const char *vals[3] = {"poisson", "hetero-gaussian", "categorical"};
    /* A one-output network as a softmax would be one certain class: refused from a file (a
     * single logit is bernoulli, as this file says). */
    const char *want[3] = {"expected categorical", "does not fit", "reads as one certain class"};
    for (int i = 0; i < 3; i++) {
        bnn_st_writer *w;
        REQUIRE(bnn_st_writer_new(&w) == 0);
        for (int64_t j = 0; j < bnn_st_meta_count(st); j++) {
            const char *key, *v;
            REQUIRE(bnn_st_meta_at(st, j, &key, &v) == 0);
            REQUIRE(bnn_st_writer_meta(w, key, strcmp(key, "bnn.lik") ? v : vals[i]) == 0);
        }
        for (int64_t j = 0; j < bnn_st_count(st); j++) {
            bnn_st_tensor t;
            REQUIRE(bnn_st_at(st, j, &t) == 0);
            REQUIRE(bnn_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data) == 0);
        }
        REQUIRE(bnn_st_writer_save(w, bad) == 0);
        bnn_st_writer_free(w);
        bnn_model *m3 = NULL;
        const int rc = bnn_model_load(&m3, bad, &task, NULL);
        CHECK_EQ_INT(rc, BNN_EFORMAT);
        CHECK(strstr(bnn_last_error(), want[i]) != NULL);
        bnn_model_free(m3);
    }
    bnn_st_free(st);
    bnn_model_free(m2), bnn_model_free(m);
}

/* The toy data: noise σ(x) = 0.1 + 0.2|x| around sin x, train and test drawn independently. */
static void test_sine_hetero_data(void) {
    bnn_dataset *tr, *te;
    REQUIRE(bnn_toy_sine_hetero(&tr, 20000, 0, false) == 0);
    REQUIRE(bnn_toy_sine_hetero(&te, 100, 0, true) == 0);
    CHECK(bnn_dataset_task(tr) == BNN_TASK_REGRESSION && bnn_dataset_dim(tr) == 1);
    CHECK(bnn_dataset_cx(tr)[0] != bnn_dataset_cx(te)[0]);
    double s2[2] = {0, 0}, cnt[2] = {0, 0};
    bool inside = true;
    for (int64_t i = 0; i < 20000; i++) {
        const double x = bnn_dataset_cx(tr)[i], r = bnn_dataset_ctargets(tr)[i] - sin(x);
        inside = inside && x >= -3 && x <= 3;
        const int bin = fabs(x) < 0.5 ? 0 : fabs(x) > 2.5 ? 1 : -1;
        if (bin < 0) continue;
        s2[bin] += r * r / (bnn_toy_sine_hetero_sigma(x) * bnn_toy_sine_hetero_sigma(x));
        cnt[bin]++;
    }
    CHECK(inside);
    CHECK_NEAR(s2[0] / cnt[0], 1.0, 0.1); /* standardised residuals have unit variance */
    CHECK_NEAR(s2[1] / cnt[1], 1.0, 0.1);
    CHECK_NEAR(bnn_toy_sine_hetero_sigma(-3), 0.7, 1e-15);
    bnn_dataset_free(tr), bnn_dataset_free(te);
    bnn_dataset *d;
    struct bnn_data_params dp = bnn_data_default_params();
    REQUIRE(bnn_data_load(&d, "sine-hetero", &dp) == 0);
    CHECK_EQ_INT(bnn_dataset_n(d), 500);
    bnn_dataset_free(d);
}

/* The train and test splits of a built-in dataset. */
static void load_splits(const char *spec, bnn_dataset **tr, bnn_dataset **te) {
    struct bnn_data_params dp = bnn_data_default_params();
    REQUIRE(bnn_data_load(tr, spec, &dp) == 0);
    dp.split = "test";
    REQUIRE(bnn_data_load(te, spec, &dp) == 0);
}

/* Heteroscedastic training recovers the input-dependent noise and beats the homoscedastic
 * Gaussian (with its best constant σ, the training residuals' RMS) on the test NLL. */
static void test_hetero_training(void) {
    bnn_dataset *tr, *te;
    load_splits("sine-hetero", &tr, &te);
    bnn_model *mh, *mg;
    REQUIRE(bnn_model_new(&mh, "mlp:1-50-50-2:tanh") == 0);
    REQUIRE(bnn_model_new(&mg, "mlp:1-50-50-1:tanh") == 0);
    REQUIRE(bnn_model_set_lik(mh, BNN_LIK_HETERO_GAUSSIAN) == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.epochs = 150, p.batch_size = 50, p.lr = 3e-3f, p.lr_schedule = BNN_LR_COSINE;
    REQUIRE(bnn_train(mh, tr, &p) == 0);
    REQUIRE(bnn_train(mg, tr, &p) == 0);
    struct bnn_predict_params pp = bnn_predict_default_params();
    /* The homoscedastic model's σ: the RMS of its training residuals (maximum likelihood). */
    struct bnn_eval_result r;
    REQUIRE(bnn_evaluate(mg, NULL, tr, &pp, 15, &r) == 0);
    pp.sigma = r.rmse;
    struct bnn_eval_result rg, rh;
    REQUIRE(bnn_evaluate(mg, NULL, te, &pp, 15, &rg) == 0);
    REQUIRE(bnn_evaluate(mh, NULL, te, &pp, 15, &rh) == 0);
    float xs[4] = {-0.25f, 0.25f, -2.5f, 2.5f};
    double mean[4], var[4];
    REQUIRE(bnn_predict(mh, NULL, xs, 4, BNN_TASK_REGRESSION, &pp, NULL, NULL, mean, var) == 0);
    fprintf(stderr,
            "sine-hetero: test NLL hetero %.4f vs homoscedastic %.4f (sigma %.3f); RMSE "
            "%.4f vs %.4f; sigma at -0.25, 0.25, -2.5, 2.5: %.3f %.3f %.3f %.3f (truth 0.15, "
            "0.6)\n",
            rh.nll, rg.nll, pp.sigma, rh.rmse, rg.rmse, sqrt(var[0]), sqrt(var[1]), sqrt(var[2]),
            sqrt(var[3]));
    CHECK(rh.nll < rg.nll - 0.1);
    for (int i = 0; i < 4; i++) {
        const double truth = bnn_toy_sine_hetero_sigma(xs[i]);
        CHECK_NEAR(sqrt(var[i]), truth, 0.3 * truth);
        CHECK_NEAR(mean[i], sin(xs[i]), 0.25);
    }
    bnn_model_free(mh), bnn_model_free(mg), bnn_dataset_free(tr), bnn_dataset_free(te);
}

/* Bernoulli training by every method on the two moons: the data must be 2-class. */
static void test_bernoulli_training(void) {
    bnn_dataset *tr, *te;
    load_splits("moons", &tr, &te);
    const bnn_method methods[4] = {BNN_METHOD_SGD, BNN_METHOD_ADAMW, BNN_METHOD_IVON,
                                   BNN_METHOD_MFVI};
    const float lrs[4] = {0.05f, 1e-2f, 0.2f, 1e-2f};
    for (int i = 0; i < 4; i++) {
        bnn_model *m = lik_model("mlp:2-32-32-1:tanh", BNN_LIK_BERNOULLI, 0);
        struct bnn_train_params p = bnn_train_default_params();
        p.method = methods[i], p.epochs = 20, p.batch_size = 32, p.lr = lrs[i];
        /* The trainer's own run (it initialises the weights from p.seed), then its posterior. */
        bnn_trainer *t;
        bnn_posterior *q;
        REQUIRE(bnn_trainer_new(&t, m, tr, &p) == 0);
        REQUIRE(bnn_trainer_run(t, p.epochs) == 0 && bnn_trainer_posterior(t, &q) == 0);
        bnn_trainer_free(t);
        struct bnn_predict_params pp = bnn_predict_default_params();
        pp.samples = bnn_posterior_kind_of(q) == BNN_POSTERIOR_DIAG ? 8 : 0;
        struct bnn_eval_result r;
        REQUIRE(bnn_evaluate(m, q, te, &pp, 15, &r) == 0);
        fprintf(stderr, "moons, bernoulli, %s: accuracy %.4f, nll %.4f\n",
                bnn_method_name(methods[i]), r.accuracy, r.nll);
        CHECK(r.accuracy > 0.95);
        CHECK(r.cls.n == 500 && r.nll < 0.2);
        bnn_posterior_free(q);
        bnn_model_free(m);
    }
    bnn_dataset_free(tr), bnn_dataset_free(te);
}

/* A label outside the classes is an error with a message, not an abort. */
static void test_bad_labels(void) {
    const float f[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    const int32_t y[2] = {1, 2};
    CHECK(isnan(loss_at(BNN_LIK_CATEGORICAL, f, y, NULL, 2, 2)));
    CHECK(strstr(bnn_last_error(), "label 2") != NULL);
    const int32_t yb[2] = {0, -1};
    CHECK(isnan(loss_at(BNN_LIK_BERNOULLI, f, yb, NULL, 2, 1)));
    CHECK(strstr(bnn_last_error(), "label -1") != NULL);
    CHECK(isfinite(loss_at(BNN_LIK_CATEGORICAL, f, (const int32_t[2]){1, 0}, NULL, 2, 2)));
}

/* Gaussian GLM with two targets: target j's variance is f_var[j, j] + σ² (the diagonal of each
 * example's 2 x 2 block), its mean f_mu[j]. One target alone would not tell the diagonal from
 * the other entries. */
static void test_two_target_predictive(void) {
    bnn_model *m = lik_model("mlp:2-5-2:tanh", BNN_LIK_GAUSSIAN, 4);
    const int64_t n = 30;
    bnn_dataset *ds;
    REQUIRE(bnn_dataset_new(&ds, BNN_TASK_REGRESSION, n, 2, 2, 0) == 0);
    float *x = bnn_dataset_x(ds), *y = bnn_dataset_targets(ds);
    bnn_rng r = bnn_rng_make(8, 1);
    bnn_rng_normal(&r, x, 2 * n);
    for (int64_t i = 0; i < n; i++)
        y[2 * i] = sinf(x[2 * i]), y[2 * i + 1] = 0.5f * x[2 * i + 1] - 0.2f * x[2 * i];
    bnn_laplace *la = fit_laplace(m, ds, BNN_TASK_REGRESSION, 0.5);
    bnn_laplace_set_prior(la, 0.5, 0.7);
    double fm[60], fv[120], mean[60], var[60];
    REQUIRE(bnn_laplace_glm(la, m, x, n, fm, fv) == 0);
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.sigma = 0.7;
    REQUIRE(bnn_laplace_predict(la, m, x, n, BNN_TASK_REGRESSION, &pp, NULL, NULL, mean, var) ==
            0);
    double off = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < 2; j++) {
            CHECK_NEAR(mean[2 * i + j], fm[2 * i + j], 1e-12);
            CHECK_NEAR(var[2 * i + j], fv[(2 * i + j) * 2 + j] + 0.49, 1e-12);
            off = fmax(off, fabs(fv[4 * i + 3] - fv[4 * i + 1]));
        }
    CHECK(off > 1e-2); /* the diagonal differs from the off-diagonal */
    bnn_laplace_free(la);
    bnn_model_free(m), bnn_dataset_free(ds);
}

/* Tied logits beyond ~1e16: the log-sum-exp must keep log s apart from the maximum, or each tied
 * class gets log-probability 0 (probabilities summing to 2, an NLL of 0). Through a tiny
 * temperature (f/T = 1e20) and through the logits themselves; the loss and the curvature's loss
 * and softmax state the same. */
static void test_huge_logits(void) {
    const double l2 = log(2.0);
    double lp[3];
    const float big[3] = {1e20f, 1e20f, 0.0f}, one[3] = {1.0f, 1.0f, 0.0f};
    bnn__lik_log_probs(BNN_LIK_CATEGORICAL, lp, big, 3, 1.0);
    CHECK_NEAR(lp[0], -l2, 1e-15);
    CHECK_NEAR(lp[1], -l2, 1e-15);
    CHECK(lp[2] < -9e19);
    bnn__lik_log_probs(BNN_LIK_CATEGORICAL, lp, one, 3, 1e-20);
    CHECK_NEAR(lp[0], -l2, 1e-15);
    CHECK_NEAR(lp[1], -l2, 1e-15);
    bnn_lik lik = {BNN_LIK_CATEGORICAL, 1.0};
    const int32_t y[1] = {0};
    CHECK_NEAR(bnn_lik_loss(&lik, NULL, big, y, NULL, 1, 3), l2, 1e-15);
    double st[3];
    CHECK_NEAR(bnn__lik_curv_state(BNN_LIK_CATEGORICAL, st, big, 3, 1, NULL), l2, 1e-15);
    CHECK_NEAR(st[0], 0.5, 1e-15);
    CHECK_NEAR(st[1], 0.5, 1e-15);
}

int main(void) {
    test_huge_logits();
    test_two_target_predictive();
    test_bad_labels();
    test_gradients();
    test_bernoulli_is_softmax();
    test_output_hessian();
    test_fisher_rows();
    test_bernoulli_curvature();
    test_hetero_curvature();
    test_bernoulli_predictive();
    test_hetero_predictive();
    test_model_lik();
    test_sine_hetero_data();
    test_hetero_training();
    test_bernoulli_training();
    return CHECK_DONE();
}
