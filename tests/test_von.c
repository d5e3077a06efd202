/* Tests of the VON step and exact Bayesian linear regression (src/fit/von.c): small conjugate
 * cases worked by hand, the argument and failure contract of bnn_von_step, and the diabetes
 * fixture (numpy float64 reference, ../shared/fixtures/blr/), where one step with ρ = 1 from an
 * arbitrary Gaussian must land on the exact posterior and the evidence must agree with the
 * n × n formula computed here independently. */
#include "check.h"
#include "core/internal.h"

#include <lapacke.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#ifndef BNN_FIXTURES
#define BNN_FIXTURES "../shared/fixtures"
#endif

static const double LOG_2PI = 1.8378770664093454835606594728112;

/* The norm-wise relative error max|c − r| / max|r| over n values: the measure the fixture
 * README quotes (1e-10), which does not blow up on entries that are near zero. */
static double rel_err(const double *c, const double *r, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs(c[i] - r[i]);
        if (!(e <= num)) num = e; /* also catches NaN in c */
        if (fabs(r[i]) > den) den = fabs(r[i]);
    }
    return den > 0.0 ? num / den : num;
}

/* A relative-error check that prints the measured error, so the log shows how close we are
 * and not only whether we passed. */
#define CHECK_ARR(c, r, n, tol, what)                                                              \
    do {                                                                                           \
        double e_ = rel_err((c), (r), (n));                                                        \
        fprintf(stderr, "  %-44s rel err %.3g (tol %.0e)\n", (what), e_, (double)(tol));           \
        check_count++;                                                                             \
        if (!(e_ <= (tol))) {                                                                      \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK_ARR failed: %s rel err %.3g > %.3g\n", __FILE__,         \
                    __LINE__, (what), e_, (double)(tol));                                          \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------------- hand cases */

/* d = 1, the textbook conjugate Gaussian: y_i = w x_i + ε, ε ~ N(0, σ²), w ~ N(0, 1/α). The
 * posterior precision is α + Σx²/σ², the mean (Σxy/σ²) / precision, and the evidence follows
 * from Sherman–Morrison and the matrix determinant lemma on K = σ² I + x xᵀ/α:
 *   yᵀK⁻¹y = (‖y‖² − (xᵀy)² / (ασ² + ‖x‖²)) / σ²,  log det K = n log σ² + log(1 + ‖x‖²/(ασ²)).
 * None of this uses the library's formulas. */
static void test_d1_conjugate(void) {
    const double x[5] = {1.0, 2.0, -1.0, 0.5, 3.0};
    const double y[5] = {0.9, 2.3, -0.7, 0.1, 2.8};
    const int64_t n = 5;
    const double alpha = 2.0, s2 = 0.25;
    double sxx = 0, sxy = 0, syy = 0;
    for (int i = 0; i < n; i++)
        sxx += x[i] * x[i], sxy += x[i] * y[i], syy += y[i] * y[i];
    const double prec = alpha + sxx / s2, mean = (sxy / s2) / prec;
    const double quad = (syy - sxy * sxy / (alpha * s2 + sxx)) / s2;
    const double logdetK = n * log(s2) + log1p(sxx / (alpha * s2));
    const double lml = -0.5 * quad - 0.5 * logdetK - 0.5 * n * LOG_2PI;

    double m = -1, P = -1, C = -1;
    struct bnn_blr_result res = {0, 0};
    CHECK_EQ_INT(bnn_blr_fit(&m, &P, &C, &res, x, y, n, 1, alpha, s2), 0);
    CHECK_REL(P, prec, 1e-14, 1e-300);
    CHECK_REL(m, mean, 1e-14, 1e-300);
    CHECK_REL(C, 1.0 / prec, 1e-14, 1e-300);
    CHECK_REL(res.logdet_precision, log(prec), 1e-14, 1e-300);
    CHECK_REL(res.log_marginal_likelihood, lml, 1e-13, 1e-300);

    /* Gradient and Hessian of ½‖y − x w‖²/σ² at w = 0.7. */
    double g = 0, H = 0;
    const double w = 0.7;
    bnn_blr_grad_hess(&g, &H, x, y, &w, n, 1, s2);
    CHECK_REL(g, (w * sxx - sxy) / s2, 1e-14, 1e-300);
    CHECK_REL(H, sxx / s2, 1e-14, 1e-300);

    /* One VON step with ρ = 1 from q = N(0.7, 1/3) with the prior N(m0, 1/α), m0 = 0.2:
     * Bayes' rule gives precision α + Σx²/σ² and mean (Σxy/σ² + α m0) / precision. */
    const double m0 = 0.2, S0 = alpha;
    double mq = w, Sq = 3.0;
    CHECK_EQ_INT(bnn_von_step(&mq, &Sq, &g, &H, &m0, &S0, 1, 1.0), 0);
    CHECK_REL(Sq, prec, 1e-14, 1e-300);
    CHECK_REL(mq, (sxy / s2 + alpha * m0) / prec, 1e-14, 1e-300);

    /* With ρ = 0.3 the natural parameters interpolate (fixture README, "Why one
     * natural-gradient step lands here"): S' = 0.7 S + 0.3 S_post and
     * S' m' = 0.7 S m + 0.3 S_post m_post, with S_post m_post = Σxy/σ² + α m0. */
    mq = w, Sq = 3.0;
    CHECK_EQ_INT(bnn_von_step(&mq, &Sq, &g, &H, &m0, &S0, 1, 0.3), 0);
    const double Sr = 0.7 * 3.0 + 0.3 * prec;
    CHECK_REL(Sq, Sr, 1e-14, 1e-300);
    CHECK_REL(mq, (0.7 * 3.0 * w + 0.3 * (sxy / s2 + alpha * m0)) / Sr, 1e-14, 1e-300);

    /* No data: the posterior is the prior and the evidence of an empty data set is 1. */
    CHECK_EQ_INT(bnn_blr_fit(&m, &P, &C, &res, NULL, NULL, 0, 1, alpha, s2), 0);
    CHECK_NEAR(m, 0.0, 0.0);
    CHECK_REL(P, alpha, 1e-15, 1e-300);
    CHECK_NEAR(res.log_marginal_likelihood, 0.0, 1e-15);
}

/* d = 3 on a small design with a non-diagonal Gram matrix and a non-zero prior mean. A VON step
 * with ρ = 1 must satisfy the posterior's defining equations exactly, S' = H + S0 and
 * S' m' = Xᵀy/σ² + S0 m0; the posterior must be a fixed point of further steps (any ρ); and a
 * second step with ρ = 1 from elsewhere must land on the same place. */
static double lml_nxn(const double *X, const double *y, int64_t n, int64_t d, double alpha,
                      double s2);

static void test_d3_steps(void) {
    enum { N = 6, D = 3 };
    const double X[N * D] = {1, 0.5, -1,   1, -1.5, 0.2, 1, 2.0, 0.7,
                             1, 0.1, -0.3, 1, -0.8, 1.1, 1, 1.3, 0.4};
    const double y[N] = {0.3, -1.2, 2.1, 0.0, -0.4, 1.5};
    const double s2 = 0.7;
    const double m0[D] = {0.5, -0.25, 1.0};
    /* A full, positive definite prior precision S0 (diagonally dominant). */
    const double S0[D * D] = {2.0, 0.3, -0.1, 0.3, 1.5, 0.2, -0.1, 0.2, 1.0};
    double m[D] = {3.0, -2.0, 0.5};
    double S[D * D] = {4.0, 1.0, 0.0, 1.0, 3.0, -0.5, 0.0, -0.5, 2.0};
    double g[D], H[D * D];
    bnn_blr_grad_hess(g, H, X, y, m, N, D, s2);
    /* The Hessian is symmetric bit for bit (the library mirrors one triangle). */
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++)
            CHECK(H[i * D + j] == H[j * D + i]);
    CHECK_EQ_INT(bnn_von_step(m, S, g, H, m0, S0, D, 1.0), 0);

    double b[D] = {0}, Sm[D];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            b[j] += X[i * D + j] * y[i] / s2;
    double HS0[D * D];
    for (int k = 0; k < D * D; k++)
        HS0[k] = H[k] + S0[k];
    CHECK_ARR(S, HS0, D * D, 1e-15, "d=3 rho=1: S' = H + S0");
    for (int i = 0; i < D; i++) {
        Sm[i] = 0;
        for (int j = 0; j < D; j++)
            Sm[i] += S[i * D + j] * m[j];
    }
    double rhs[D];
    for (int i = 0; i < D; i++) {
        rhs[i] = b[i];
        for (int j = 0; j < D; j++)
            rhs[i] += S0[i * D + j] * m0[j];
    }
    CHECK_ARR(Sm, rhs, D, 1e-13, "d=3 rho=1: S' m' = X^T y / s2 + S0 m0");

    /* The posterior is a fixed point: the gradient of the negative log joint vanishes there,
     * and H does not depend on m, so any further step leaves (m, S) where it is. */
    const double mpost[D] = {m[0], m[1], m[2]};
    double Spost[D * D];
    memcpy(Spost, S, sizeof S);
    for (int t = 0; t < 3; t++) {
        bnn_blr_grad_hess(g, NULL, X, y, m, N, D, s2);
        CHECK_EQ_INT(bnn_von_step(m, S, g, H, m0, S0, D, t == 1 ? 0.25 : 1.0), 0);
    }
    CHECK_ARR(m, mpost, D, 1e-13, "d=3: posterior is a fixed point (mean)");
    CHECK_ARR(S, Spost, D * D, 1e-15, "d=3: posterior is a fixed point (precision)");

    /* Many small steps (ρ = 0.2) from far away converge to the same posterior: the error in
     * the natural parameters shrinks by 0.8 each step. */
    double m2[D] = {-5.0, 5.0, 5.0};
    double S2[D * D] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (int t = 0; t < 200; t++) {
        bnn_blr_grad_hess(g, NULL, X, y, m2, N, D, s2);
        CHECK_EQ_INT(bnn_von_step(m2, S2, g, H, m0, S0, D, 0.2), 0);
    }
    CHECK_ARR(m2, mpost, D, 1e-12, "d=3: 200 steps of rho=0.2 reach the posterior");
    CHECK_ARR(S2, Spost, D * D, 1e-12, "d=3: 200 steps of rho=0.2 (precision)");

    /* bnn_blr_fit with an isotropic prior equals a ρ = 1 step with m0 = 0, S0 = αI. */
    const double alpha = 0.8;
    const double zero[D] = {0};
    double Siso[D * D] = {0}, miso[D] = {1, 2, 3}, Sq[D * D] = {5, 0, 0, 0, 5, 0, 0, 0, 5};
    for (int j = 0; j < D; j++)
        Siso[j * D + j] = alpha;
    bnn_blr_grad_hess(g, H, X, y, miso, N, D, s2);
    CHECK_EQ_INT(bnn_von_step(miso, Sq, g, H, zero, Siso, D, 1.0), 0);
    double mf[D], Pf[D * D], Cf[D * D];
    struct bnn_blr_result res;
    CHECK_EQ_INT(bnn_blr_fit(mf, Pf, Cf, &res, X, y, N, D, alpha, s2), 0);
    CHECK_ARR(miso, mf, D, 1e-13, "d=3: rho=1 step == bnn_blr_fit (mean)");
    CHECK_ARR(Sq, Pf, D * D, 1e-15, "d=3: rho=1 step == bnn_blr_fit (precision)");
    /* The evidence against the n x n form, at alpha != 1 and d > 1 (the other cases have one or
     * the other: (d/2) log alpha is visible only here). */
    CHECK_REL(res.log_marginal_likelihood, lml_nxn(X, y, N, D, alpha, s2), 1e-12, 1e-300);
    /* The covariance is the inverse of the precision: P C = I. */
    double PC[D * D], I3[D * D] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            PC[i * D + j] = 0;
            for (int k = 0; k < D; k++)
                PC[i * D + j] += Pf[i * D + k] * Cf[k * D + j];
        }
    CHECK_ARR(PC, I3, D * D, 1e-14, "d=3: precision x covariance = I");
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++)
            CHECK(Cf[i * D + j] == Cf[j * D + i]);

    /* Every output may be NULL, and asking for fewer outputs changes none of the others. */
    double mf2[D], Cf2[D * D];
    struct bnn_blr_result res2;
    CHECK_EQ_INT(bnn_blr_fit(NULL, NULL, NULL, NULL, X, y, N, D, alpha, s2), 0);
    CHECK_EQ_INT(bnn_blr_fit(mf2, NULL, NULL, NULL, X, y, N, D, alpha, s2), 0);
    CHECK(memcmp(mf2, mf, sizeof mf) == 0);
    CHECK_EQ_INT(bnn_blr_fit(NULL, NULL, Cf2, &res2, X, y, N, D, alpha, s2), 0);
    CHECK(memcmp(Cf2, Cf, sizeof Cf) == 0);
    CHECK(res2.log_marginal_likelihood == res.log_marginal_likelihood);
    CHECK(res2.logdet_precision == res.logdet_precision);

    /* A prior precision that is not symmetric enters through its symmetric part, in the mean
     * as in the precision (the mean used S0 as given): S0 + A with A antisymmetric steps as S0
     * does, to rounding. */
    double S0a[D * D], ma[D] = {3.0, -2.0, 0.5}, mb[D] = {3.0, -2.0, 0.5};
    double Sa[D * D] = {4.0, 1.0, 0.0, 1.0, 3.0, -0.5, 0.0, -0.5, 2.0}, Sb[D * D];
    memcpy(Sb, Sa, sizeof Sa);
    const double A[D * D] = {0, 0.5, -0.25, -0.5, 0, 0.75, 0.25, -0.75, 0};
    for (int k = 0; k < D * D; k++) S0a[k] = S0[k] + A[k];
    bnn_blr_grad_hess(g, H, X, y, ma, N, D, s2);
    CHECK_EQ_INT(bnn_von_step(ma, Sa, g, H, m0, S0a, D, 0.5), 0);
    CHECK_EQ_INT(bnn_von_step(mb, Sb, g, H, m0, S0, D, 0.5), 0);
    CHECK_ARR(ma, mb, D, 1e-14, "d=3: a non-symmetric S0 steps as its symmetric part (mean)");
    CHECK_ARR(Sa, Sb, D * D, 1e-15, "d=3: a non-symmetric S0 steps as its symmetric part (S)");
}

/* ---------------------------------------------------------------- failure contract */

static void test_von_errors(void) {
    enum { D = 2 };
    /* H has a large negative curvature (as a GGN never would, but a true Hessian may), so the
     * new precision (1 − ρ) S + ρ (H + S0) = diag(0.5 + 0.5(−4 + 1), …) is indefinite. */
    const double H[D * D] = {-4.0, 0.0, 0.0, 1.0};
    const double S0[D * D] = {1.0, 0.0, 0.0, 1.0};
    const double g[D] = {0.5, -0.5}, m0[D] = {0.0, 0.0};
    double m[D] = {0.25, -0.75}, S[D * D] = {1.0, 0.2, 0.2, 1.0};
    double m_keep[D], S_keep[D * D];
    memcpy(m_keep, m, sizeof m);
    memcpy(S_keep, S, sizeof S);

    bnn__error_clear();
    CHECK_EQ_INT(bnn_von_step(m, S, g, H, m0, S0, D, 0.5), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "positive definite") != NULL);
    CHECK(memcmp(m, m_keep, sizeof m) == 0);
    CHECK(memcmp(S, S_keep, sizeof S) == 0);
    CHECK_EQ_INT(bnn_von_step(m, S, g, H, m0, S0, D, 1.0), BNN_EINVAL);
    CHECK(memcmp(m, m_keep, sizeof m) == 0);
    CHECK(memcmp(S, S_keep, sizeof S) == 0);
    /* A singular (positive semi-definite, not definite) result is refused too. */
    const double Hsing[D * D] = {-1.0, 0.0, 0.0, 1.0};
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hsing, m0, S0, D, 1.0), BNN_EINVAL);
    CHECK(memcmp(S, S_keep, sizeof S) == 0);
    /* A small enough step keeps S positive definite even with that H: 0.9 S + 0.1 (H + S0). */
    CHECK_EQ_INT(bnn_von_step(m, S, g, H, m0, S0, D, 0.1), 0);
    CHECK_NEAR(S[0], 0.9 * 1.0 + 0.1 * (-4.0 + 1.0), 1e-15);
    memcpy(m, m_keep, sizeof m);
    memcpy(S, S_keep, sizeof S);

    /* Bad arguments, each refused before anything is read or written. */
    const double Hok[D * D] = {1.0, 0.0, 0.0, 1.0};
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, m0, S0, 0, 0.5), BNN_EINVAL);
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, m0, S0, -3, 0.5), BNN_EINVAL);
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, m0, S0, D, 0.0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, m0, S0, D, -0.5), BNN_EINVAL);
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, m0, S0, D, 1.0 + 1e-12), BNN_EINVAL);
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, m0, S0, D, NAN), BNN_EINVAL);
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, NULL, S0, D, 0.5), BNN_EINVAL);
    /* A non-finite gradient would turn m into NaN: refused, m and S untouched. */
    const double gnan[D] = {NAN, 0.0};
    CHECK_EQ_INT(bnn_von_step(m, S, gnan, Hok, m0, S0, D, 0.5), BNN_EINVAL);
    const double Hinf[D * D] = {INFINITY, 0.0, 0.0, 1.0};
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hinf, m0, S0, D, 0.5), BNN_EINVAL);
    CHECK(memcmp(m, m_keep, sizeof m) == 0);
    CHECK(memcmp(S, S_keep, sizeof S) == 0);
    /* A d whose d × d scratch cannot be addressed is an allocation failure, reported before any
     * array is touched (2e9² doubles overflow size_t, so nothing is actually requested). */
    CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, m0, S0, 2000000000, 0.5), BNN_ENOMEM);
    CHECK_EQ_INT(bnn_blr_fit(NULL, NULL, NULL, NULL, NULL, NULL, 0, 2000000000, 1.0, 1.0),
                 BNN_ENOMEM);
    /* A d beyond LAPACK's 32-bit sizes is refused as invalid. */
    if (sizeof(lapack_int) == 4)
        CHECK_EQ_INT(bnn_von_step(m, S, g, Hok, m0, S0, (int64_t)1 << 40, 0.5), BNN_EINVAL);

    /* bnn_blr_fit's arguments. */
    const double X[2 * D] = {1, 2, 3, 4}, y[2] = {1, -1};
    double mean[D];
    CHECK_EQ_INT(bnn_blr_fit(mean, NULL, NULL, NULL, X, y, 2, 0, 1.0, 1.0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_blr_fit(mean, NULL, NULL, NULL, X, y, -1, D, 1.0, 1.0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_blr_fit(mean, NULL, NULL, NULL, X, y, 2, D, 0.0, 1.0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_blr_fit(mean, NULL, NULL, NULL, X, y, 2, D, 1.0, -1.0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_blr_fit(mean, NULL, NULL, NULL, X, y, 2, D, NAN, 1.0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_blr_fit(mean, NULL, NULL, NULL, X, y, 2, D, 1.0, INFINITY), BNN_EINVAL);
    CHECK_EQ_INT(bnn_blr_fit(mean, NULL, NULL, NULL, NULL, y, 2, D, 1.0, 1.0), BNN_EINVAL);
    const double ynan[2] = {1, NAN};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_blr_fit(mean, NULL, NULL, NULL, X, ynan, 2, D, 1.0, 1.0), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "NaN") != NULL);
}

/* ---------------------------------------------------------------- diabetes fixture */

/* Reads tensor `name` of the expected element count as double into a new buffer. */
static double *load(const bnn_st *st, const char *name, int64_t numel) {
    bnn_st_tensor t;
    int rc = bnn_st_get(st, name, &t);
    if (rc) fprintf(stderr, "%s: %s\n", name, bnn_last_error());
    REQUIRE(rc == 0);
    CHECK_EQ_INT(t.dtype, BNN_DT_F64);
    CHECK_EQ_INT(t.numel, numel);
    REQUIRE(t.numel == numel);
    double *p = malloc((size_t)numel * sizeof *p);
    REQUIRE(p != NULL);
    REQUIRE(bnn_st_to_f64(&t, p) == 0);
    return p;
}

/* log N(y | 0, σ² I + X Xᵀ / α), the n × n form of the evidence, by a Cholesky factor of the
 * n × n covariance K: log p = −½ yᵀK⁻¹y − Σ log L_ii − (n/2) log 2π. Independent of the
 * library's d × d formula; it costs O(n³) and is only for the test. */
static double lml_nxn(const double *X, const double *y, int64_t n, int64_t d, double alpha,
                      double s2) {
    double *K = malloc((size_t)(n * n) * sizeof *K), *z = malloc((size_t)n * sizeof *z);
    REQUIRE(K && z);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < d; k++)
                s += X[i * d + k] * X[j * d + k];
            K[i * n + j] = s / alpha + (i == j ? s2 : 0.0);
        }
    REQUIRE(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, K, (lapack_int)n) == 0);
    memcpy(z, y, (size_t)n * sizeof *z);
    REQUIRE(LAPACKE_dpotrs(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, 1, K, (lapack_int)n, z, 1) == 0);
    double quad = 0, logdet = 0;
    for (int64_t i = 0; i < n; i++)
        quad += y[i] * z[i], logdet += log(K[i * n + i]);
    free(K);
    free(z);
    return -0.5 * quad - logdet - 0.5 * (double)n * LOG_2PI;
}

static void test_fixture(void) {
    struct stat sb;
    if (stat(BNN_FIXTURES, &sb) != 0) {
        fprintf(stderr, "note: %s not found; skipping the diabetes fixture checks\n", BNN_FIXTURES);
        return;
    }
    const char *path = BNN_FIXTURES "/blr/diabetes.safetensors";
    bnn_st *st = NULL;
    int rc = bnn_st_read(&st, path);
    if (rc) fprintf(stderr, "%s\n", bnn_last_error());
    REQUIRE(rc == 0);
    bnn_st_tensor t;
    REQUIRE(bnn_st_get(st, "X", &t) == 0);
    REQUIRE(t.ndim == 2);
    const int64_t n = t.shape[0], d = t.shape[1];
    CHECK_EQ_INT(n, 442);
    CHECK_EQ_INT(d, 11);
    double *X = load(st, "X", n * d), *y = load(st, "y", n);
    double *a = load(st, "prior_precision", 1), *v = load(st, "noise_variance", 1);
    const double alpha = a[0], s2 = v[0];
    double *r_prec = load(st, "post_precision", d * d), *r_cov = load(st, "post_cov", d * d);
    double *r_mean = load(st, "post_mean", d);
    double *r_logdet = load(st, "logdet_post_precision", 1);
    double *r_lml = load(st, "log_marginal_likelihood", 1);
    double *q0m = load(st, "q0_mean", d), *q0S = load(st, "q0_precision", d * d);
    double *r1m = load(st, "rho1_mean", d), *r1S = load(st, "rho1_precision", d * d);
    double *r5m = load(st, "rho05_mean", d), *r5S = load(st, "rho05_precision", d * d);
    CHECK_NEAR(alpha, 1.0, 0.0);
    CHECK_NEAR(s2, 0.5, 0.0);

    /* (1) The exact posterior and evidence. */
    double *mean = calloc((size_t)d, sizeof *mean), *prec = calloc((size_t)(d * d), sizeof *prec);
    double *cov = calloc((size_t)(d * d), sizeof *cov);
    REQUIRE(mean && prec && cov);
    struct bnn_blr_result res;
    rc = bnn_blr_fit(mean, prec, cov, &res, X, y, n, d, alpha, s2);
    if (rc) fprintf(stderr, "%s\n", bnn_last_error());
    CHECK_EQ_INT(rc, 0);
    CHECK_ARR(mean, r_mean, d, 1e-10, "blr_fit mean vs post_mean");
    CHECK_ARR(prec, r_prec, d * d, 1e-10, "blr_fit precision vs post_precision");
    CHECK_ARR(cov, r_cov, d * d, 1e-10, "blr_fit covariance vs post_cov");
    CHECK_ARR(&res.logdet_precision, r_logdet, 1, 1e-10, "blr_fit logdet vs reference");
    CHECK_ARR(&res.log_marginal_likelihood, r_lml, 1, 1e-10, "blr_fit lml (d x d) vs reference");
    fprintf(stderr, "  lml = %.17g (reference %.17g)\n", res.log_marginal_likelihood, r_lml[0]);

    /* (4) The same evidence by the n × n formula, computed here. */
    const double lml_big = lml_nxn(X, y, n, d, alpha, s2);
    CHECK_ARR(&res.log_marginal_likelihood, &lml_big, 1, 1e-10, "lml d x d vs n x n (LAPACKE)");
    CHECK_ARR(&lml_big, r_lml, 1, 1e-10, "lml n x n vs reference");

    /* (2) One VON step with ρ = 1 from q0, prior N(0, α⁻¹ I), g and H at q0's mean. */
    double *g = malloc((size_t)d * sizeof *g), *H = malloc((size_t)(d * d) * sizeof *H);
    double *S0 = calloc((size_t)(d * d), sizeof *S0), *m0 = calloc((size_t)d, sizeof *m0);
    double *m = malloc((size_t)d * sizeof *m), *S = malloc((size_t)(d * d) * sizeof *S);
    REQUIRE(g && H && S0 && m0 && m && S);
    for (int64_t j = 0; j < d; j++)
        S0[j * d + j] = alpha;
    memcpy(m, q0m, (size_t)d * sizeof *m);
    memcpy(S, q0S, (size_t)(d * d) * sizeof *S);
    bnn_blr_grad_hess(g, H, X, y, m, n, d, s2);
    /* H = Xᵀ X / σ² is the posterior precision less the prior's. */
    for (int64_t j = 0; j < d; j++)
        H[j * d + j] += alpha;
    CHECK_ARR(H, r_prec, d * d, 1e-10, "grad_hess H + alpha I vs post_precision");
    for (int64_t j = 0; j < d; j++)
        H[j * d + j] -= alpha;
    rc = bnn_von_step(m, S, g, H, m0, S0, d, 1.0);
    if (rc) fprintf(stderr, "%s\n", bnn_last_error());
    CHECK_EQ_INT(rc, 0);
    CHECK_ARR(m, r_mean, d, 1e-8, "von rho=1 mean vs exact posterior");
    CHECK_ARR(S, r_prec, d * d, 1e-8, "von rho=1 precision vs exact posterior");
    CHECK_ARR(m, mean, d, 1e-8, "von rho=1 mean vs bnn_blr_fit");
    CHECK_ARR(m, r1m, d, 1e-10, "von rho=1 mean vs rho1_mean");
    CHECK_ARR(S, r1S, d * d, 1e-10, "von rho=1 precision vs rho1_precision");

    /* (3) One step with ρ = 0.5 from q0. */
    memcpy(m, q0m, (size_t)d * sizeof *m);
    memcpy(S, q0S, (size_t)(d * d) * sizeof *S);
    bnn_blr_grad_hess(g, H, X, y, m, n, d, s2);
    CHECK_EQ_INT(bnn_von_step(m, S, g, H, m0, S0, d, 0.5), 0);
    CHECK_ARR(m, r5m, d, 1e-10, "von rho=0.5 mean vs rho05_mean");
    CHECK_ARR(S, r5S, d * d, 1e-10, "von rho=0.5 precision vs rho05_precision");

    free(g), free(H), free(S0), free(m0), free(m), free(S);
    free(mean), free(prec), free(cov);
    free(X), free(y), free(a), free(v), free(r_prec), free(r_cov), free(r_mean), free(r_logdet);
    free(r_lml), free(q0m), free(q0S), free(r1m), free(r1S), free(r5m), free(r5S);
    bnn_st_free(st);
}

int main(void) {
    test_d1_conjugate();
    test_d3_steps();
    test_von_errors();
    test_fixture();
    return CHECK_DONE();
}
