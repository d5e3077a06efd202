/* Laplace posterior (src/fit/laplace.c) against closed forms and against laplace-torch.
 *
 *  1. A conjugate case that needs no fixtures: Bayesian linear regression, where the Laplace
 *     approximation at the MAP is exact, so its log marginal likelihood must equal the evidence
 *     log N(y | 0, σ² I + X Xᵀ/δ) (for full, kron and diag curvature); its δ- and σ-derivatives
 *     against central differences.
 *  2. The GLM predictive of a two-hidden-layer MLP for every structure, all weights and last
 *     layer, against J Σ Jᵀ with J from plain backward passes and Σ the inverse (LAPACK) of
 *     bnn_laplace_precision_dense.
 *  3. Samples: the empirical mean and covariance of many samples against θ_MAP and P_post⁻¹.
 *  4. fixtures/laplace (laplace-torch 44ea62ac, float64), all 10 cases: lml and its parts,
 *     posterior precision, kron eigenvalues, the Adam trajectories of the prior precision (and
 *     σ), the tuned values, and the GLM predictive (f_mu, f_var, probit, bridge, pred_var).
 *     Curvatures are built from the stored H with bnn_curv_from_arrays, so this test does not
 *     depend on the curvature pass. Everything from H to lml is double, so 1e-9 norm-wise
 *     relative is asked for (README "Tolerances"); the predictive goes through the float32
 *     model: 1e-4. */
#include "check.h"
#include "core/internal.h"

#include <float.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>


static const double PI_ = 3.14159265358979323846;

static double rel(double c, double r) { return fabs(c - r) / (fabs(r) > 0 ? fabs(r) : 1.0); }

/* A deterministic pseudo-random number in [-1, 1). */
static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* S⁻¹ of a symmetric positive definite d × d matrix (row-major), by Cholesky (LAPACK); its log
 * determinant in *logdet when not NULL. */
static void spd_inverse(double *inv, const double *S, int64_t d, double *logdet) {
    memcpy(inv, S, (size_t)(d * d) * sizeof(double));
    REQUIRE(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)d, inv, (lapack_int)d) == 0);
    if (logdet) {
        double s = 0;
        for (int64_t i = 0; i < d; i++)
            s += 2.0 * log(inv[i * d + i]);
        *logdet = s;
    }
    REQUIRE(LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', (lapack_int)d, inv, (lapack_int)d) == 0);
    for (int64_t i = 0; i < d; i++) /* mirror the column-major lower triangle */
        for (int64_t j = 0; j < i; j++)
            inv[i * d + j] = inv[j * d + i];
}

/* ------------------------------------------------------------------ 1. conjugate BLR */

static void check_derivatives(const bnn_laplace *la, double delta, double sigma, bool reg) {
    double dp, ds;
    bnn_laplace_lml(la, delta, sigma, &dp, &ds);
    const double h = 1e-5;
    const double fp = (bnn_laplace_lml(la, delta * exp(h), sigma, NULL, NULL) -
                       bnn_laplace_lml(la, delta * exp(-h), sigma, NULL, NULL)) /
                      (2 * h);
    CHECK_NEAR(dp, fp, 1e-6 * (1 + fabs(fp)));
    if (reg) {
        const double fs = (bnn_laplace_lml(la, delta, sigma * exp(h), NULL, NULL) -
                           bnn_laplace_lml(la, delta, sigma * exp(-h), NULL, NULL)) /
                          (2 * h);
        CHECK_NEAR(ds, fs, 1e-6 * (1 + fabs(fs)));
    } else {
        CHECK(ds == 0.0);
    }
}

/* y = X w + noise with prior w ~ N(0, δ⁻¹ I), noise N(0, σ²): the Laplace approximation at the
 * posterior mean is the posterior, and lml is the evidence (MacKay 1992; Bishop PRML eq. 3.86). */
static void test_blr_evidence(void) {
    enum { n = 9, dmax = 3 };
    const double delta = 0.7, sigma = 0.4;
    uint64_t seed = 42;
    double X[n * dmax], y[n];
    for (int i = 0; i < n * dmax; i++)
        X[i] = urand(&seed) * 2.0;
    for (int i = 0; i < n; i++)
        y[i] = 0.8 * X[i * dmax] - 0.5 * X[i * dmax + 1] + 0.3 * urand(&seed);

    for (int d = 1; d <= dmax; d += dmax - 1) { /* d = 1 (diag is exact) and d = 3 */
        /* X_d: the first d columns. H = X_dᵀ X_d (curvature of ½ Σ (x·w − y)² at σ = 1). */
        double H[dmax * dmax] = {0}, S[dmax * dmax], Sinv[dmax * dmax], b[dmax] = {0}, m[dmax];
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < d; j++)
                for (int t = 0; t < n; t++)
                    H[i * d + j] += X[t * dmax + i] * X[t * dmax + j];
            for (int t = 0; t < n; t++)
                b[i] += X[t * dmax + i] * y[t] / (sigma * sigma);
        }
        for (int i = 0; i < d * d; i++)
            S[i] = H[i] / (sigma * sigma);
        for (int i = 0; i < d; i++)
            S[i * d + i] += delta;
        spd_inverse(Sinv, S, d, NULL);
        for (int i = 0; i < d; i++) {
            m[i] = 0;
            for (int j = 0; j < d; j++)
                m[i] += Sinv[i * d + j] * b[j];
        }
        double loss = 0;
        for (int t = 0; t < n; t++) {
            double r = y[t];
            for (int i = 0; i < d; i++)
                r -= X[t * dmax + i] * m[i];
            loss += 0.5 * r * r;
        }
        /* Evidence by the n × n formula: C = σ² I + X Xᵀ/δ. */
        double C[n * n], Cinv[n * n], logdetC;
        for (int s = 0; s < n; s++)
            for (int t = 0; t < n; t++) {
                double v = s == t ? sigma * sigma : 0.0;
                for (int i = 0; i < d; i++)
                    v += X[s * dmax + i] * X[t * dmax + i] / delta;
                C[s * n + t] = v;
            }
        spd_inverse(Cinv, C, n, &logdetC);
        double quad = 0;
        for (int s = 0; s < n; s++)
            for (int t = 0; t < n; t++)
                quad += y[s] * Cinv[s * n + t] * y[t];
        const double evidence = -0.5 * quad - 0.5 * logdetC - 0.5 * n * log(2 * PI_);

        for (int st = 0; st < 3; st++) {
            const bnn_hessian structure = st == 0   ? BNN_HESS_FULL
                                          : st == 1 ? BNN_HESS_KRON
                                                    : BNN_HESS_DIAG;
            if (structure == BNN_HESS_DIAG && d != 1) continue;
            bnn_curv *c;
            /* kron: one weight block B ⊗ A with B = N (out = 1) and A = X_dᵀ X_d / N. */
            double B = n, A[dmax * dmax], diag[dmax];
            for (int i = 0; i < d * d; i++)
                A[i] = H[i] / n;
            for (int i = 0; i < d; i++)
                diag[i] = H[i * d + i];
            const int64_t n0 = 1, n1 = d;
            const double *f0[1] = {&B}, *f1[1] = {A};
            REQUIRE(bnn_curv_from_arrays(&c, structure, d, 0, n, 1, loss, diag, H, 1, &n0, &n1, f0,
                                         f1) == 0);
            bnn_laplace *la;
            REQUIRE(bnn__laplace_new_f64(&la, c, m, BNN_TASK_REGRESSION) == 0);
            const double lml = bnn_laplace_lml(la, delta, sigma, NULL, NULL);
            CHECK_REL(lml, evidence, 1e-12, 1.0);
            /* log det of the posterior precision, and the dense precision itself */
            bnn_laplace_set_prior(la, delta, sigma);
            double logdetS, Pd[dmax * dmax], Pdiag[dmax];
            spd_inverse(Sinv, S, d, &logdetS);
            CHECK_REL(bnn_laplace_logdet(la), logdetS, 1e-12, 1.0);
            CHECK(bnn_laplace_precision_dense(la, Pd) == 0);
            CHECK(check_relerr(Pd, S, d * d) < 1e-14);
            CHECK(bnn_laplace_precision_diag(la, Pdiag) == 0);
            for (int i = 0; i < d; i++)
                CHECK_REL(Pdiag[i], S[i * d + i], 1e-14, 1.0);
            CHECK(bnn_laplace_prior_prec(la) == delta && bnn_laplace_sigma(la) == sigma);
            check_derivatives(la, delta, sigma, true);
            check_derivatives(la, 2.5, 1.7, true);
            bnn_laplace_free(la);
        }
    }
}

/* The empirical Fisher of the Gaussian likelihood with noise σ is Σ_n (r_n/σ²)² x_n x_nᵀ = H/σ⁴
 * for H = Σ_n r_n² x_n x_nᵀ (the outer products at σ = 1): the posterior precision is H/σ⁴ + δI
 * for it, where the same H as a GGN gives H/σ² + δI; the log-determinant and its σ-derivative
 * (checked by differences) follow, and the log-likelihood term is the same for both. */
static void test_ef_gaussian(void) {
    enum { d = 3, n = 7 };
    const double delta = 0.9, sigma = 0.6, loss = 2.5;
    const double H[d * d] = {4.0, 1.0, 0.5, 1.0, 3.0, -0.2, 0.5, -0.2, 2.0};
    const double mean[d] = {0.3, -0.4, 0.1};
    double lml[2];
    for (int ef = 0; ef < 2; ef++) {
        const double s = ef ? pow(sigma, -4.0) : pow(sigma, -2.0);
        bnn_curv *c;
        REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_FULL, d, 0, n, 1, loss, NULL, H, 0, NULL, NULL,
                                     NULL, NULL) == 0);
        bnn__curv_set_lik(c, BNN_LIK_GAUSSIAN);
        bnn__curv_set_kind(c, ef ? BNN_CURV_EF : BNN_CURV_GGN);
        bnn_laplace *la;
        REQUIRE(bnn__laplace_new_f64(&la, c, mean, BNN_TASK_REGRESSION) == 0);
        bnn_laplace_set_prior(la, delta, sigma);
        double Pd[d * d], want[d * d], inv[d * d], logdet;
        for (int i = 0; i < d * d; i++)
            want[i] = s * H[i] + (i % (d + 1) == 0 ? delta : 0.0);
        CHECK(bnn_laplace_precision_dense(la, Pd) == 0);
        CHECK(check_relerr(Pd, want, d * d) < 1e-14);
        spd_inverse(inv, want, d, &logdet);
        CHECK_REL(bnn_laplace_logdet(la), logdet, 1e-12, 1.0);
        check_derivatives(la, delta, sigma, true);
        check_derivatives(la, 2.5, 1.7, true);
        /* lml − (−½ log det) is the same log-likelihood and prior terms for both */
        lml[ef] = bnn_laplace_lml(la, delta, sigma, NULL, NULL) + 0.5 * logdet;
        /* Per-layer priors (groups of 2 and 1 parameters): the Cholesky path, its σ-derivative
         * by differences, and the precision and log-determinant it keeps. */
        const int64_t sizes[2] = {2, 1};
        const double dl[2] = {0.7, 2.3}, h = 1e-5;
        REQUIRE(bnn__laplace_set_layout(la, 2, sizes) == 0);
        double gl[2], gs;
        bnn_laplace_lml_layers(la, dl, 2, sigma, gl, &gs);
        const double fs = (bnn_laplace_lml_layers(la, dl, 2, sigma * exp(h), NULL, NULL) -
                           bnn_laplace_lml_layers(la, dl, 2, sigma * exp(-h), NULL, NULL)) /
                          (2 * h);
        CHECK_NEAR(gs, fs, 1e-6 * (1 + fabs(fs)));
        REQUIRE(bnn_laplace_set_prior_layers(la, dl, 2) == 0);
        for (int i = 0; i < d * d; i++)
            want[i] = s * H[i] + (i % (d + 1) == 0 ? dl[i / d < 2 ? 0 : 1] : 0.0);
        CHECK(bnn_laplace_precision_dense(la, Pd) == 0);
        CHECK(check_relerr(Pd, want, d * d) < 1e-14);
        spd_inverse(inv, want, d, &logdet);
        CHECK_REL(bnn_laplace_logdet(la), logdet, 1e-12, 1.0);
        bnn_laplace_free(la);
    }
    CHECK_REL(lml[1], lml[0], 1e-14, 1.0);
}

/* The same formulas for classification: σ stays 1 and log_lik = −loss. */
static void test_cls_basics(void) {
    const double H[4] = {2.0, 0.5, 0.5, 1.0}, mean[2] = {0.3, -1.2}, loss = 3.25;
    bnn_curv *c;
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_FULL, 2, 0, 10, 2, loss, NULL, H, 0, NULL, NULL, NULL,
                                 NULL) == 0);
    bnn_laplace *la;
    REQUIRE(bnn__laplace_new_f64(&la, c, mean, BNN_TASK_CLASSIFICATION) == 0);
    const double delta = 0.6;
    const double det = (2 + delta) * (1 + delta) - 0.25;
    const double want = -loss - 0.5 * (log(det) - 2 * log(delta) + delta * (0.09 + 1.44));
    CHECK_REL(bnn_laplace_lml(la, delta, 5.0, NULL, NULL), want, 1e-14, 1.0);
    check_derivatives(la, delta, 1.0, false);
    bnn_laplace_set_prior(la, delta, 3.0);
    CHECK(bnn_laplace_sigma(la) == 1.0);
    CHECK_REL(bnn_laplace_logdet(la), log(det), 1e-14, 1.0);
    /* Invalid prior: the fallible users refuse it. */
    double out[4];
    bnn_laplace_set_prior(la, -1.0, 1.0);
    CHECK(bnn_laplace_precision_dense(la, out) == BNN_EINVAL);
    bnn_laplace_free(la);

    /* Probit with zero variance is the softmax; the bridge gives a distribution. */
    const double mu[3] = {1.0, -0.5, 0.25}, V0[9] = {0};
    double p[3], s = 0, z = exp(1.0) + exp(-0.5) + exp(0.25);
    CHECK(bnn_probit(p, mu, V0, 1, 3) == 0);
    {
        /* a negative variance (NaN below −8/π, a sharper softmax above it) is refused by row */
        const double Vneg[9] = {0, 0, 0, 0, -1.0, 0, 0, 0, 0};
        double pn[3];
        CHECK(bnn_probit(pn, mu, Vneg, 1, 3) == BNN_EDIVERGED);
        CHECK(strstr(bnn_last_error(), "row 0, class 1: variance -1") != NULL);
        const double mnan[3] = {0.5, NAN, 0.0};
        CHECK(bnn_probit(pn, mnan, V0, 1, 3) == BNN_EDIVERGED);
        CHECK(strstr(bnn_last_error(), "row 0, class 1: logit nan") != NULL);
        CHECK(bnn_probit(pn, mu, V0, 1, 0) == BNN_EINVAL);
    }
    CHECK_REL(p[0], exp(1.0) / z, 1e-15, 1.0);
    CHECK_REL(p[1], exp(-0.5) / z, 1e-15, 1.0);
    const double V[9] = {0.5, 0.1, -0.05, 0.1, 0.4, 0.0, -0.05, 0.0, 0.3};
    CHECK(bnn_laplace_bridge(p, mu, V, 1, 3) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(p[i] > 0 && p[i] < 1);
        s += p[i];
    }
    CHECK_NEAR(s, 1.0, 1e-15);
    /* Two classes by hand. Row sums s = (0.9, 0.6), S = 1.5 and Σμ = 0.5 correct the means to
     * (0.5, −0.5) and both variances to V'_ii = V_ii − s_i²/S = 0.16. With K = 2 the α are
     * (1 + e^{±d})/(4 V'_ii), d = μ'_1 − μ'_2, so p_1 = sigmoid(d) whatever the variance, and
     * the normalised bridge (c = 0.16/√1) takes d/√c = 2.5. */
    {
        const double m2[2] = {0.8, -0.3}, V2[4] = {0.7, 0.2, 0.2, 0.4};
        double q2[2];
        CHECK(bnn_laplace_bridge(q2, m2, V2, 1, 2) == 0);
        CHECK_REL(q2[0], 1.0 / (1.0 + exp(-1.0)), 1e-14, 1.0);
        CHECK(bnn_laplace_bridge_norm(q2, m2, V2, 1, 2) == 0);
        CHECK_REL(q2[0], 1.0 / (1.0 + exp(-2.5)), 1e-14, 1.0);
        CHECK_REL(q2[1], 1.0 / (1.0 + exp(2.5)), 1e-13, 1.0);
    }
    /* The public bridges check their arguments: nothing to divide among fewer than two classes,
     * a negative count, a missing array. Zero rows is nothing to do. */
    {
        double q1[2] = {7.0, 7.0};
        CHECK(bnn_laplace_bridge(q1, mu, V, 1, 1) == BNN_EINVAL);
        CHECK(bnn_laplace_bridge_norm(q1, mu, V, -1, 3) == BNN_EINVAL);
        CHECK(bnn_laplace_bridge(q1, NULL, V, 1, 3) == BNN_EINVAL);
        CHECK(bnn_laplace_bridge(NULL, mu, V, 1, 3) == BNN_EINVAL);
        CHECK(strstr(bnn_last_error(), "bnn_laplace_bridge") != NULL);
        CHECK(bnn_laplace_bridge(q1, NULL, NULL, 0, 3) == 0);
        CHECK(q1[0] == 7.0);
        /* A row without a Dirichlet (a zero variance, a NaN logit) is reported, by row, and the
         * good rows are filled all the same: the fallback gave (1, 1) with rc 0. */
        const double m3[4] = {1.0, -1.0, NAN, 0.0}, V3[8] = {0.7, 0.2, 0.2, 0.4, 1, 0, 0, 1};
        double q3[4];
        CHECK(bnn_laplace_bridge(q3, m3, V3, 2, 2) == BNN_EDIVERGED);
        CHECK(strstr(bnn_last_error(), "row 1 has no Dirichlet") != NULL);
        CHECK_REL(q3[0], 1.0 / (1.0 + exp(-2.0)), 1e-14, 1.0);
        const double Vz[4] = {0};
        CHECK(bnn_laplace_bridge_norm(q3, m3, Vz, 1, 2) == BNN_EDIVERGED);
        CHECK(strstr(bnn_last_error(), "bnn_laplace_bridge_norm: row 0") != NULL);
    }
    /* The normalisation with K = 3: it divides by c = mean_i V'_ii / √(K/2), so (1) at c = 1 it
     * is the plain bridge, and (2) scaling μ by √a and V by a changes nothing, where it changes
     * the plain bridge. */
    {
        double sr[3], S = 0, vmean = 0;
        for (int i = 0; i < 3; i++) {
            sr[i] = V[3 * i] + V[3 * i + 1] + V[3 * i + 2];
            S += sr[i];
        }
        for (int i = 0; i < 3; i++)
            vmean += (V[4 * i] - sr[i] * sr[i] / S) / 3.0;
        const double cn = vmean / sqrt(1.5);
        double Vc[9], pa[3], pb[3], mua[3], Va[9];
        for (int i = 0; i < 9; i++)
            Vc[i] = V[i] / cn;
        bnn_laplace_bridge(pa, mu, Vc, 1, 3);
        bnn_laplace_bridge_norm(pb, mu, Vc, 1, 3);
        for (int i = 0; i < 3; i++)
            CHECK_REL(pb[i], pa[i], 1e-13, 1.0);
        const double a = 3.7;
        for (int i = 0; i < 3; i++)
            mua[i] = mu[i] * sqrt(a);
        for (int i = 0; i < 9; i++)
            Va[i] = V[i] * a;
        bnn_laplace_bridge_norm(pa, mu, V, 1, 3);
        bnn_laplace_bridge_norm(pb, mua, Va, 1, 3);
        for (int i = 0; i < 3; i++)
            CHECK_REL(pb[i], pa[i], 1e-13, 1.0);
        bnn_laplace_bridge(pa, mu, V, 1, 3);
        bnn_laplace_bridge(pb, mua, Va, 1, 3);
        CHECK(fabs(pb[0] - pa[0]) > 1e-3);
    }
    /* The Dirichlet's mutual information, through g(x) = ψ(x + 1) − ln x (taking ln x) at known
     * points, ψ(n) = H_{n−1} − γ and ψ(3/2) = 2 − γ − 2 ln 2, down each of its branches: the
     * recurrence (x = 1/2, 1, 9), log1p and the series (x = 99), 1/(2x) (x = e^50), x = 0. */
    {
        const double gam = 0.57721566490153286;
        CHECK_REL(bnn__dirichlet_g(0.0), 1.0 - gam, 1e-14, 1e-300);
        CHECK_REL(bnn__dirichlet_g(log(0.5)), 2.0 - gam - log(2.0), 1e-14, 1e-300);
        double h = 0;
        for (int j = 1; j < 100; j++) {
            h += 1.0 / j;
            if (j == 9) CHECK_REL(bnn__dirichlet_g(log(9.0)), h - gam - log(9.0), 1e-12, 1e-300);
        }
        /* ψ(100) − ln 99 = 0.00518...: the reference itself cancels to about 1e-13 */
        CHECK_REL(bnn__dirichlet_g(log(99.0)), h - gam - log(99.0), 1e-11, 1e-300);
        CHECK_REL(bnn__dirichlet_g(50.0), 0.5 * exp(-50.0), 1e-15, 1e-300);
        CHECK_REL(bnn__dirichlet_g(-800.0), 800.0 - gam, 1e-15, 1e-300);
        /* μ = 0 and V = a I give V'_ii = a (K − 1)/K and α_i = (1 − 1/K)/V'_ii = 1/a: K = 2,
         * a = 1 is Dir(1, 1), I = ψ(2) − ψ(3) + ln 2 = ln 2 − 1/2; K = 3, a = 1/2 is Dir(2, 2, 2),
         * I = ψ(3) − ψ(7) + ln 3 = ln 3 − 19/20. */
        const double z3[3] = {0}, I2[4] = {1, 0, 0, 1}, I3[9] = {0.5, 0, 0, 0, 0.5, 0, 0, 0, 0.5};
        double pr[3], mi1[1], mi2[1];
        int64_t bad = 5;
        REQUIRE(bnn__bridge(pr, z3, I2, 1, 2, false, false, mi1, &bad) == 0);
        CHECK_REL(mi1[0], log(2.0) - 0.5, 1e-13, 1.0);
        CHECK(bad == -1);
        REQUIRE(bnn__bridge(pr, z3, I3, 1, 3, false, false, mi1, NULL) == 0);
        CHECK_REL(mi1[0], log(3.0) - 0.95, 1e-13, 1.0);
        CHECK_REL(pr[1], 1.0 / 3.0, 1e-15, 1.0);
        /* Large α: with V = 1e-12 I_2, Dir(1e12, 1e12), whose I = ψ(a + 1) − ψ(2a + 1) + ln 2 is
         * 1/(4a) + O(a^-2) — 2.5e-13, which the form with ψ(α_i + 1) − ψ(α_0 + 1) − ln p_i
         * computed to only an absolute 1e-15. */
        const double I2s[4] = {1e-12, 0, 0, 1e-12}, I2t[4] = {1e-20, 0, 0, 1e-20};
        REQUIRE(bnn__bridge(pr, z3, I2s, 1, 2, false, false, mi1, NULL) == 0);
        CHECK_REL(mi1[0], 0.25e-12, 1e-6, 1e-300);
        REQUIRE(bnn__bridge(pr, z3, I2t, 1, 2, false, false, mi1, NULL) == 0); /* α > e^40 */
        CHECK_REL(mi1[0], 0.25e-20, 1e-6, 1e-300);
        /* K = 300 (scratch from the heap): μ = 0, V = I gives Dir(1, ..., 1), uniform p and
         * I = ψ(2) − ψ(301) + ln 300 = 1 − H_300 + ln 300. */
        {
            enum { K3 = 300 };
            double *mz = calloc(K3, sizeof(double)), *Vi = calloc(K3 * K3, sizeof(double));
            double *pz = malloc(K3 * sizeof(double)), h300 = 0;
            REQUIRE(mz && Vi && pz);
            for (int i = 0; i < K3; i++) Vi[i * K3 + i] = 1.0, h300 += 1.0 / (i + 1);
            REQUIRE(bnn__bridge(pz, mz, Vi, 1, K3, false, false, mi1, &bad) == 0);
            CHECK(bad == -1);
            CHECK_REL(pz[0], 1.0 / K3, 1e-13, 1e-300);
            CHECK_REL(pz[K3 - 1], 1.0 / K3, 1e-13, 1e-300);
            CHECK_REL(mi1[0], 1.0 - h300 + log((double)K3), 1e-12, 1e-300);
            free(mz), free(Vi), free(pz);
        }
        /* A tie at large α (μ = (1e16, 1e16, 0), V = I): (1/2, 1/2, ~0), not (1, 1, 0). */
        {
            const double mt[3] = {1e16, 1e16, 0.0}, It[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
            REQUIRE(bnn__bridge(pr, mt, It, 1, 3, false, false, mi1, &bad) == 0);
            CHECK(bad == -1);
            CHECK_REL(pr[0], 0.5, 1e-15, 1e-300);
            CHECK_REL(pr[0] + pr[1] + pr[2], 1.0, 1e-15, 1e-300);
        }
        /* Scale: with K = 2 the plain bridge is sigmoid(μ'_1 − μ'_2) and μ' does not change with
         * V's scale: μ = (1, 0), V = diag(1, 3) s gives μ' = (3/4, −3/4), p_1 = sigmoid(3/2),
         * where s_i c_i overflowed (s = 1e160) or underflowed (s = 1e-200) in double. An
         * asymmetric V corrects the means by its row sums and the variances by row × column
         * sums (as laplace-torch): V = ((0.7, 0.3), (0.1, 0.4)) gives μ' = (7, −7)/15 and equal
         * V'_ii = 1/6, so p_1 = sigmoid(14/15). */
        {
            const double m1[2] = {1.0, 0.0}, sc[3] = {1.0, 1e160, 1e-200};
            for (int j = 0; j < 3; j++) {
                const double Vs[4] = {sc[j], 0, 0, 3 * sc[j]};
                REQUIRE(bnn__bridge(pr, m1, Vs, 1, 2, false, false, mi1, &bad) == 0);
                CHECK(bad == -1 && isfinite(mi1[0]));
                CHECK_REL(pr[0], 1.0 / (1.0 + exp(-1.5)), 1e-14, 1e-300);
            }
            const double mu2[2] = {0.8, -0.3}, Vas[4] = {0.7, 0.3, 0.1, 0.4};
            REQUIRE(bnn__bridge(pr, mu2, Vas, 1, 2, false, false, NULL, NULL) == 0);
            CHECK_REL(pr[0], 1.0 / (1.0 + exp(-14.0 / 15.0)), 1e-14, 1e-300);
        }
        /* A variance after the correction that is only rounding: V = 1e20 11ᵀ + I, where the
         * + I is lost in double and V' is 0 in exact arithmetic, has no Dirichlet at any K. */
        {
            enum { K4 = 300 };
            double *mz = calloc(K4, sizeof(double)), *Vl = malloc(K4 * K4 * sizeof(double));
            double *pz = malloc(K4 * sizeof(double));
            REQUIRE(mz && Vl && pz);
            const int ks[4] = {2, 3, 100, 300};
            for (int j = 0; j < 4; j++) {
                const int kk = ks[j];
                for (int i = 0; i < kk * kk; i++) Vl[i] = 1e20 + (i % (kk + 1) == 0 ? 1.0 : 0.0);
                REQUIRE(bnn__bridge(pz, mz, Vl, 1, kk, j % 2 == 1, false, mi1, &bad) == 0);
                CHECK(bad == 0 && isnan(mi1[0]));
            }
            free(mz), free(Vl), free(pz);
        }
        /* The normalised bridge's information: its own Dirichlet, the plain bridge's at c = 1,
         * and unchanged by (√a μ, a V) (cn, Vc, mua, Va as above). */
        double sr[3], S = 0, vmean = 0, Vc[9], Va[9], mua[3];
        for (int i = 0; i < 3; i++) {
            sr[i] = V[3 * i] + V[3 * i + 1] + V[3 * i + 2];
            S += sr[i];
        }
        for (int i = 0; i < 3; i++)
            vmean += (V[4 * i] - sr[i] * sr[i] / S) / 3.0;
        for (int i = 0; i < 9; i++)
            Vc[i] = V[i] / (vmean / sqrt(1.5)), Va[i] = V[i] * 3.7;
        for (int i = 0; i < 3; i++)
            mua[i] = mu[i] * sqrt(3.7);
        REQUIRE(bnn__bridge(pr, mu, Vc, 1, 3, false, false, mi1, NULL) == 0);
        REQUIRE(bnn__bridge(pr, mu, Vc, 1, 3, true, false, mi2, NULL) == 0);
        CHECK_REL(mi2[0], mi1[0], 1e-12, 1.0);
        REQUIRE(bnn__bridge(pr, mu, V, 1, 3, true, false, mi1, NULL) == 0);
        REQUIRE(bnn__bridge(pr, mua, Va, 1, 3, true, false, mi2, NULL) == 0);
        CHECK_REL(mi2[0], mi1[0], 1e-12, 1.0);
        REQUIRE(bnn__bridge(pr, mu, V, 1, 3, false, false, mi2, NULL) == 0);
        CHECK(fabs(mi2[0] - mi1[0]) > 1e-3 * mi1[0]); /* the normalisation changes it here */
        /* No Dirichlet where a variance after the correction is 0: NaN, the first such row is
         * named, and the public function gives laplace-torch's nan_to_num (NaN → 1). */
        const double Vz[4] = {1, 1, 1, 1};
        REQUIRE(bnn__bridge(pr, z3, Vz, 1, 2, false, false, mi1, &bad) == 0);
        CHECK(isnan(mi1[0]) && bad == 0);
        const double z6[6] = {0}, V3r[12] = {1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
        double p6[6], mi3[3];
        REQUIRE(bnn__bridge(p6, z6, V3r, 3, 2, false, false, mi3, &bad) == 0);
        CHECK(bad == 1 && !isnan(mi3[0]) && isnan(mi3[1]) && isnan(mi3[2]));
        bnn_laplace_bridge(pr, z3, Vz, 1, 2);
        CHECK(pr[0] == 1.0 && pr[1] == 1.0);
    }
#if LDBL_MAX_EXP > 5000
    /* Far-apart logits with small variances: the normalised bridge divides the means by
     * √c ≈ 0.0074, gaps of about 4000 where laplace-torch's e^{μ'} overflows double. Its
     * log-probabilities against the direct form in long double (range to e^11356). */
    {
        const double m3[3] = {0.0, 15.0, 30.0}, V3[9] = {1e-4, 0, 0, 0, 1e-4, 0, 0, 0, 1e-4};
        double lp[3], mi1[1];
        int64_t bad = 5;
        REQUIRE(bnn__bridge(lp, m3, V3, 1, 3, true, true, mi1, &bad) == 0);
        CHECK(bad == -1 && isfinite(mi1[0]) && mi1[0] >= 0.0);
        long double mp[3], vv[3], ms = 0, e = 0, a[3], as = 0;
        const long double S3 = 3e-4L, cl = (2e-4L / 3.0L) / sqrtl(1.5L); /* V'_ii = 2e-4/3 */
        for (int i = 0; i < 3; i++) ms += m3[i];
        for (int i = 0; i < 3; i++) {
            mp[i] = (m3[i] - 1e-4L * ms / S3) / sqrtl(cl);
            vv[i] = (1e-4L - 1e-8L / S3) / cl;
            e += expl(-mp[i]);
        }
        for (int i = 0; i < 3; i++) {
            a[i] = (1.0L / 3.0L + expl(mp[i]) / 9.0L * e) / vv[i];
            as += a[i];
        }
        for (int i = 0; i < 3; i++) {
            CHECK(isfinite(lp[i]));
            CHECK_REL(lp[i], (double)logl(a[i] / as), 1e-12, 1e-300);
        }
        CHECK(lp[0] < -1000.0); /* where double's direct form gave −DBL_MAX */
    }
#endif
    /* Errors: NULL arguments (ownership of c is taken even then). */
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_FULL, 2, 0, 10, 2, loss, NULL, H, 0, NULL, NULL, NULL,
                                 NULL) == 0);
    CHECK(bnn_laplace_new(&la, c, NULL, BNN_TASK_CLASSIFICATION) == BNN_EINVAL && la == NULL);
}

/* ------------------------------------------------------------------ 2. GLM predictive */

/* A random curvature of the given structure for the parameters [offset, offset + P) of m
 * (kron: per Linear layer a weight block and a bias block with random SPD factors). */
/* kron: each bias block takes its weight block's B (as bnn's own KFAC does) instead of its own. */
static bool random_shared_b = false;

static bnn_curv *random_curv(bnn_model *m, bnn_hessian structure, int64_t offset, int64_t P,
                             int64_t K, uint64_t *seed) {
    bnn_curv *c = NULL;
    if (structure == BNN_HESS_DIAG) {
        double *d = malloc((size_t)P * sizeof(double));
        for (int64_t i = 0; i < P; i++)
            d[i] = 2.0 + 1.5 * urand(seed);
        REQUIRE(bnn_curv_from_arrays(&c, structure, P, offset, 50, K, 7.0, d, NULL, 0, NULL, NULL,
                                     NULL, NULL) == 0);
        free(d);
    } else if (structure == BNN_HESS_FULL) {
        double *R = malloc((size_t)(P * P) * sizeof(double)),
               *H = calloc((size_t)(P * P), sizeof(double));
        for (int64_t i = 0; i < P * P; i++)
            R[i] = urand(seed);
        for (int64_t i = 0; i < P; i++)
            for (int64_t j = 0; j < P; j++)
                for (int64_t k = 0; k < P; k++)
                    H[i * P + j] += R[i * P + k] * R[j * P + k] / (double)P;
        REQUIRE(bnn_curv_from_arrays(&c, structure, P, offset, 50, K, 7.0, NULL, H, 0, NULL, NULL,
                                     NULL, NULL) == 0);
        free(R), free(H);
    } else {
        int64_t nb = 0, n0[64], n1[64];
        double *f0[64], *f1[64];
        for (int64_t i = 0; i < bnn_model_nlayers(m); i++) {
            int64_t woff, ws[2], boff, blen;
            if (bnn_model_layer_tensors(m, i, &woff, ws, &boff, &blen)) continue;
            if (woff < offset) continue;
            for (int blk = 0; blk < 2; blk++, nb++) {
                n0[nb] = ws[0], n1[nb] = blk ? 0 : ws[1];
                for (int f = 0; f < 2 - blk; f++) {
                    const int64_t q = f ? ws[1] : ws[0];
                    double *R = malloc((size_t)(q * q) * sizeof(double));
                    double *S = calloc((size_t)(q * q), sizeof(double));
                    for (int64_t a = 0; a < q * q; a++)
                        R[a] = urand(seed);
                    for (int64_t a = 0; a < q; a++) {
                        for (int64_t b = 0; b < q; b++)
                            for (int64_t k = 0; k < q; k++)
                                S[a * q + b] += R[a * q + k] * R[b * q + k];
                        S[a * q + a] += 0.1;
                    }
                    free(R);
                    if (f)
                        f1[nb] = S;
                    else
                        f0[nb] = S;
                }
                if (blk) f1[nb] = NULL;
                if (blk && random_shared_b)
                    memcpy(f0[nb], f0[nb - 1], (size_t)(ws[0] * ws[0]) * sizeof(double));
            }
        }
        REQUIRE(bnn_curv_from_arrays(&c, structure, P, offset, 50, K, 7.0, NULL, NULL, nb, n0, n1,
                                     (const double *const *)f0, (const double *const *)f1) == 0);
        for (int64_t b = 0; b < nb; b++)
            free(f0[b]), free(f1[b]);
    }
    return c;
}

/* bnn_laplace_predict_priors against bnn_laplace_predict with the posterior set to each
 * precision in turn, to the last bit, through each link of the task, and once more at
 * temperature 1.7 with the precisions' rows of 1/(hf λ + δ) two at a time (a grid search's
 * values must be the predictions the chosen precision gives). Leaves the posterior at the last
 * precision. */
static void priors_match(bnn_laplace *la, bnn_model *m, const float *x, int64_t n, bnn_task task,
                         double sigma) {
    const double deltas[3] = {0.3, 7.5, 0.004};
    const bool cls = task == BNN_TASK_CLASSIFICATION;
    const int64_t C = bnn_model_pred_dim(m, task);
    const size_t one = (size_t)(n * C) * sizeof(double);
    double *a = malloc(3 * one), *v = malloc(3 * one), *r = malloc(one), *rv = malloc(one);
    const bnn_link links[4] = {BNN_LINK_PROBIT, BNN_LINK_MC, BNN_LINK_BRIDGE, BNN_LINK_MC};
    const int nl = cls && C > 1 ? 4 : cls ? 2 : 1;
    for (int l = 0; l < nl; l++) {
        struct bnn_predict_params pp = bnn_predict_default_params();
        pp.sigma = sigma, pp.link = links[l], pp.link_samples = links[l] == BNN_LINK_MC ? 7 : 0;
        pp.seed = 11;
        const bool last = l == nl - 1;
        if (last) pp.temperature = 1.7, bnn__glm_prior_budget = (size_t)(2 * bnn_curv_nparams(
                                                              bnn_laplace_curv(la))) * 8;
        const int rc = bnn_laplace_predict_priors(la, m, x, n, task, &pp, deltas, 3,
                                                  cls ? a : NULL, cls ? NULL : a, cls ? NULL : v);
        bnn__glm_prior_budget = 256u << 20;
        REQUIRE(rc == 0);
        for (int j = 0; j < 3; j++) {
            bnn_laplace_set_prior(la, deltas[j], sigma);
            REQUIRE(bnn_laplace_predict(la, m, x, n, task, &pp, cls ? r : NULL, NULL,
                                        cls ? NULL : r, cls ? NULL : rv) == 0);
            CHECK(memcmp(a + j * n * C, r, one) == 0);
            if (!cls) CHECK(memcmp(v + j * n * C, rv, one) == 0);
        }
    }
    /* No precision, or one that is not positive and finite: refused. */
    const double bad[2] = {1.0, -1.0};
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.sigma = sigma;
    double *o1 = cls ? a : NULL, *o2 = cls ? NULL : a, *o3 = cls ? NULL : v;
    CHECK_EQ_INT(bnn_laplace_predict_priors(la, m, x, n, task, &pp, bad, 2, o1, o2, o3),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_laplace_predict_priors(la, m, x, n, task, &pp, bad, 0, o1, o2, o3),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_laplace_predict_priors(la, m, x, n, task, &pp, NULL, 1, o1, o2, o3),
                 BNN_EINVAL);
    free(a), free(v), free(r), free(rv);
}

/* The GLM predictive of model `spec` (K outputs, n random inputs) for every structure (or only
 * those in `structures`, a bit mask), all weights and last layer, against J Σ Jᵀ with J from
 * plain backward passes (one input and output at a time) and Σ = P_post⁻¹ by LAPACK. The model's
 * own weights are scrambled during the call: the predictive is at the posterior mean. */
static void glm_against_jacobian(const char *spec, int64_t n, int structures, bool both_tasks) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, spec) == 0);
    bnn_model_init(m, 7);
    const int64_t NP = bnn_model_nparams(m), K = bnn_model_output_dim(m);
    const int64_t D = bnn_model_input_dim(m);
    REQUIRE(bnn_model_reserve(m, 8) == 0);
    uint64_t seed = 1234;
    float *x = malloc((size_t)(n * D) * sizeof(float));
    for (int64_t i = 0; i < n * D; i++)
        x[i] = (float)(1.5 * urand(&seed));
    int64_t lw, lws[2], lb, lbl;
    REQUIRE(bnn_model_layer_tensors(m, bnn_model_nlayers(m) - 1, &lw, lws, &lb, &lbl) == 0);
    float *grad = malloc((size_t)NP * sizeof(float)), *e = calloc((size_t)K, sizeof(float));
    float *saved = malloc((size_t)NP * sizeof(float));
    double *fv = malloc((size_t)(n * K * K) * sizeof(double));
    double *fv_ref = malloc((size_t)(n * K * K) * sizeof(double));
    double *fmu = malloc((size_t)(n * K) * sizeof(double));
    for (int sub = 0; sub < 2; sub++) {
        const int64_t offset = sub ? lw : 0, P = NP - offset;
        double *J = malloc((size_t)(n * K * P) * sizeof(double)),
               *fmu_ref = malloc((size_t)(n * K) * sizeof(double));
        for (int64_t t = 0; t < n; t++)
            for (int64_t c = 0; c < K; c++) {
                const float *f =
                    bnn_model_forward(m, bnn_model_params(m), x + t * D, 1, false, NULL);
                fmu_ref[t * K + c] = f[c];
                memset(e, 0, (size_t)K * sizeof(float));
                e[c] = 1;
                memset(grad, 0, (size_t)NP * sizeof(float));
                bnn_model_backward(m, bnn_model_params(m), e, grad);
                for (int64_t i = 0; i < P; i++)
                    J[(t * K + c) * P + i] = grad[offset + i];
            }
        double *mean = malloc((size_t)P * sizeof(double));
        for (int64_t i = 0; i < P; i++)
            mean[i] = bnn_model_params(m)[offset + i];
        for (int st = 0; st < 3; st++) {
            if (!(structures & (1 << st))) continue;
            const bnn_hessian structure = (bnn_hessian)st;
            for (int task = both_tasks ? 0 : 1; task < 2; task++) {
                bnn_curv *c = random_curv(m, structure, offset, P, K, &seed);
                bnn_laplace *la;
                REQUIRE(bnn__laplace_new_f64(&la, c, mean, (bnn_task)task) == 0);
                bnn_laplace_set_prior(la, 0.3, 0.8);
                double *Pd = malloc((size_t)(P * P) * sizeof(double)),
                       *Sig = malloc((size_t)(P * P) * sizeof(double));
                REQUIRE(bnn_laplace_precision_dense(la, Pd) == 0);
                spd_inverse(Sig, Pd, P, NULL);
                for (int64_t t = 0; t < n; t++)
                    for (int64_t a = 0; a < K; a++)
                        for (int64_t b = 0; b < K; b++) {
                            const double *ja = J + (t * K + a) * P, *jb = J + (t * K + b) * P;
                            double s = 0;
                            for (int64_t i = 0; i < P; i++) {
                                const double *si = Sig + i * P;
                                double r = 0;
                                for (int64_t j = 0; j < P; j++)
                                    r += si[j] * jb[j];
                                s += ja[i] * r;
                            }
                            fv_ref[(t * K + a) * K + b] = s;
                        }
                memcpy(saved, bnn_model_params(m), (size_t)NP * sizeof(float));
                for (int64_t i = offset; i < NP; i++)
                    bnn_model_params(m)[i] = 100.0f;
                bnn_set_threads(1);
                REQUIRE(bnn_laplace_glm(la, m, x, n, fmu, fv) == 0);
                const double e_mu = check_relerr(fmu, fmu_ref, n * K),
                             e_var = check_relerr(fv, fv_ref, n * K * K);
                /* The same with two threads: identical to the last bit. */
                double *fv2 = malloc((size_t)(n * K * K) * sizeof(double));
                bnn_set_threads(2);
                REQUIRE(bnn_laplace_glm(la, m, x, n, fmu, fv2) == 0);
                CHECK(memcmp(fv, fv2, (size_t)(n * K * K) * sizeof(double)) == 0);
                free(fv2);
                memcpy(bnn_model_params(m), saved, (size_t)NP * sizeof(float));
                priors_match(la, m, x, n, (bnn_task)task, 0.8);
                if (!(e_mu < 1e-6 && e_var < 1e-5))
                    fprintf(stderr,
                            "glm vs J Σ Jᵀ (%s): subset %s, structure %d, task %d: f_mu %.3g, "
                            "f_var %.3g\n",
                            spec, sub ? "last-layer" : "all", st, task, e_mu, e_var);
                CHECK(e_mu < 1e-6);
                CHECK(e_var < 1e-5);
                free(Pd), free(Sig);
                bnn_laplace_free(la);
            }
        }
        free(mean), free(J), free(fmu_ref);
    }
    /* A curvature whose subset is not whole Linear layers is refused. */
    bnn_curv *c;
    double d[3] = {1, 1, 1}, mean[3] = {0, 0, 0};
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_DIAG, 3, 1, 10, K, 1.0, d, NULL, 0, NULL, NULL, NULL,
                                 NULL) == 0);
    bnn_laplace *la;
    REQUIRE(bnn__laplace_new_f64(&la, c, mean, BNN_TASK_CLASSIFICATION) == 0);
    CHECK(bnn_laplace_glm(la, m, x, 1, fmu, fv) == BNN_ESHAPE);
    bnn_laplace_free(la);
    free(fmu), free(fv_ref), free(fv), free(saved), free(e), free(grad), free(x);
    bnn_model_free(m);
}

static void test_glm_against_jacobian(void) {
    glm_against_jacobian("mlp:3-5-4-2:tanh", 5, 7, true);
    /* kron whose bias blocks share their weight block's B: one projection serves both. */
    random_shared_b = true;
    glm_against_jacobian("mlp:3-5-4-2:tanh", 5, 1 << BNN_HESS_KRON, true);
    random_shared_b = false;
    /* full with P = 772 (several column tiles of J·Q) and 130 inputs (two chunks); kron too. */
    glm_against_jacobian("mlp:3-20-30-2:tanh", 130, (1 << BNN_HESS_FULL) | (1 << BNN_HESS_KRON),
                         false);
}

/* A grid of 21 precisions over more inputs than bnn_laplace_predict_priors takes in one call
 * (64 MiB of f_var: here 3,976 of 4,500): every value is still the single-precision call's to
 * the last bit, since both cut the inputs at the same chunks of the GLM pass (cut elsewhere, the
 * chunks' matrix products rounded 13 of 21 precisions differently on Fashion-MNIST). */
static void test_priors_many_inputs(void) {
    enum { n = 4500, K = 10, ND = 21 };
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:6-24-10") == 0);
    bnn_model_init(m, 5);
    const int64_t NP = bnn_model_nparams(m);
    uint64_t seed = 77;
    float *x = malloc((size_t)(n * 6) * sizeof(float));
    for (int64_t i = 0; i < n * 6; i++)
        x[i] = (float)(2.0 * urand(&seed) - 1.0);
    double deltas[ND];
    for (int i = 0; i < ND; i++)
        deltas[i] = pow(10.0, -4.0 + 0.4 * i);
    double *a = malloc((size_t)(ND * n * K) * sizeof(double)), *r = malloc((size_t)(n * K) * 8);
    for (int st = 0; st < 2; st++) { /* all weights, diag; the last layer, kron */
        const bnn_hessian structure = st ? BNN_HESS_KRON : BNN_HESS_DIAG;
        const int64_t offset = st ? 6 * 24 + 24 : 0, P = NP - offset;
        bnn_curv *c = random_curv(m, structure, offset, P, K, &seed);
        bnn_laplace *la;
        REQUIRE(bnn_laplace_new_from_params(&la, c, bnn_model_cparams(m),
                                            BNN_TASK_CLASSIFICATION) == 0);
        struct bnn_predict_params pp = bnn_predict_default_params();
        REQUIRE(bnn_laplace_predict_priors(la, m, x, n, BNN_TASK_CLASSIFICATION, &pp, deltas, ND,
                                           a, NULL, NULL) == 0);
        int differ = 0;
        for (int j = 0; j < ND; j++) {
            bnn_laplace_set_prior(la, deltas[j], 1.0);
            REQUIRE(bnn_laplace_predict(la, m, x, n, BNN_TASK_CLASSIFICATION, &pp, r, NULL, NULL,
                                        NULL) == 0);
            differ += memcmp(a + j * n * K, r, (size_t)(n * K) * sizeof(double)) != 0;
        }
        if (differ) fprintf(stderr, "structure %d: %d of %d precisions differ\n", st, differ, ND);
        CHECK_EQ_INT(differ, 0);
        bnn_laplace_free(la);
    }
    free(a), free(r), free(x);
    bnn_model_free(m);
}

/* Many classes: 120 of them make f_var 14,400 values an input, so a call's smallest share of the
 * inputs (a batch of 256) holds more than 64 MiB for five precisions; they then go two at a time,
 * a pass each, and each is still what bnn_laplace_predict gives (through the Monte-Carlo link,
 * so its draws are placed as a single call's). */
static void test_priors_many_classes(void) {
    enum { n = 300, K = 120, ND = 5 };
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:4-8-120") == 0);
    bnn_model_init(m, 2);
    uint64_t seed = 5;
    float x[n * 4];
    for (int64_t i = 0; i < n * 4; i++)
        x[i] = (float)(2.0 * urand(&seed) - 1.0);
    const double deltas[ND] = {0.01, 0.1, 1.0, 10.0, 100.0};
    bnn_curv *c = random_curv(m, BNN_HESS_KRON, 4 * 8 + 8, 8 * K + K, K, &seed);
    bnn_laplace *la;
    REQUIRE(bnn_laplace_new_from_params(&la, c, bnn_model_cparams(m), BNN_TASK_CLASSIFICATION) ==
            0);
    double *a = malloc((size_t)(ND * n * K) * sizeof(double)), *r = malloc((size_t)(n * K) * 8);
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.link = BNN_LINK_MC, pp.link_samples = 3, pp.seed = 4;
    REQUIRE(bnn_laplace_predict_priors(la, m, x, n, BNN_TASK_CLASSIFICATION, &pp, deltas, ND, a,
                                       NULL, NULL) == 0);
    for (int j = 0; j < ND; j++) {
        bnn_laplace_set_prior(la, deltas[j], 1.0);
        REQUIRE(bnn_laplace_predict(la, m, x, n, BNN_TASK_CLASSIFICATION, &pp, r, NULL, NULL,
                                    NULL) == 0);
        CHECK(memcmp(a + j * n * K, r, (size_t)(n * K) * sizeof(double)) == 0);
    }
    free(a), free(r);
    bnn_laplace_free(la);
    bnn_model_free(m);
}

/* bnn_laplace_glm called from the caller's own OpenMP team, wider than the library's thread
 * count, each thread with its own model and posterior: every call gives what a call made alone
 * gives (a scratch slot chosen by the caller's thread number once wrote past its buffer). */
static void test_glm_in_caller_team(void) {
#if defined(_OPENMP)
    enum { T = 4, n = 9, K = 5 };
    const int64_t off = 6 * 20 + 20, P = 20 * K + K; /* mlp:6-20-5's last layer */
    float x[n * 6];
    bnn_rng r = bnn_rng_make(4, 4);
    bnn_rng_normal(&r, x, n * 6);
    bnn_set_threads(1);
    for (int st = 0; st < 2; st++) {
        const bnn_hessian structure = st ? BNN_HESS_KRON : BNN_HESS_DIAG;
        bnn_model *m[T];
        bnn_laplace *la[T];
        for (int t = 0; t < T; t++) {
            REQUIRE(bnn_model_new(&m[t], "mlp:6-20-5") == 0);
            bnn_model_init(m[t], 3);
            uint64_t seed = 9;
            bnn_curv *c = random_curv(m[t], structure, off, P, K, &seed);
            REQUIRE(bnn_laplace_new_from_params(&la[t], c, bnn_model_cparams(m[t]),
                                                BNN_TASK_CLASSIFICATION) == 0);
            bnn_laplace_set_prior(la[t], 0.5, 1.0);
        }
        double fm[T][n * K], fv[T][n * K * K], rm[n * K], rv[n * K * K];
        REQUIRE(bnn_laplace_glm(la[0], m[0], x, n, rm, rv) == 0);
        int rc[T];
#pragma omp parallel for num_threads(T)
        for (int t = 0; t < T; t++)
            rc[t] = bnn_laplace_glm(la[t], m[t], x, n, fm[t], fv[t]);
        for (int t = 0; t < T; t++) {
            CHECK_EQ_INT(rc[t], 0);
            CHECK(memcmp(fm[t], rm, sizeof rm) == 0);
            CHECK(memcmp(fv[t], rv, sizeof rv) == 0);
            bnn_laplace_free(la[t]);
            bnn_model_free(m[t]);
        }
    }
    bnn_set_threads(2);
#endif
}

/* ------------------------------------------------------------------ 3. sampling */

static void test_sampling(void) {
    bnn_model *m;
    /* One Linear(3, 3): P = 12, for kron's blocks. Three outputs, so that the output factor's
     * eigenvectors are not a symmetric matrix (a 2 x 2 one can be, and then using it transposed
     * went unseen). */
    REQUIRE(bnn_model_new(&m, "mlp:3-3") == 0);
    const int64_t P = 12, S = 200000;
    uint64_t seed = 99;
    double mean[12];
    for (int i = 0; i < P; i++)
        mean[i] = urand(&seed);
    for (int st = 0; st < 3; st++) {
        bnn_curv *c = random_curv(m, (bnn_hessian)st, 0, P, 3, &seed);
        bnn_laplace *la;
        REQUIRE(bnn__laplace_new_f64(&la, c, mean, BNN_TASK_REGRESSION) == 0);
        bnn_laplace_set_prior(la, 0.5, 0.7);
        double Pd[144], Sig[144], sum[12] = {0}, sq[144] = {0};
        REQUIRE(bnn_laplace_precision_dense(la, Pd) == 0);
        spd_inverse(Sig, Pd, P, NULL);
        bnn_rng rng = bnn_rng_make(5, 0);
        float th[12];
        int rc = 0;
        for (int64_t s = 0; s < S && !rc; s++) {
            rc = bnn_laplace_sample(la, &rng, th);
            for (int i = 0; i < P; i++) {
                const double di = th[i] - mean[i];
                sum[i] += di;
                for (int j = 0; j < P; j++)
                    sq[i * P + j] += di * (th[j] - mean[j]);
            }
        }
        CHECK(rc == 0);
        double maxvar = 0, emean = 0, ecov = 0;
        for (int i = 0; i < P; i++)
            maxvar = fmax(maxvar, Sig[i * P + i]);
        for (int i = 0; i < P; i++)
            emean = fmax(emean, fabs(sum[i] / S));
        for (int i = 0; i < P * P; i++)
            ecov = fmax(ecov, fabs(sq[i] / S - Sig[i]));
        /* Standard errors: √(var/S) for the mean, ≤ √(2/S)·maxvar for the covariance; the
         * tolerances are about 5 of them. */
        if (!(emean < 5 * sqrt(maxvar / S) && ecov < 7 * sqrt(2.0 / S) * maxvar))
            fprintf(stderr,
                    "sampling structure %d: mean error %.3g (max sd %.3g), covariance error "
                    "%.3g (max var %.3g)\n",
                    st, emean, sqrt(maxvar), ecov, maxvar);
        CHECK(emean < 5 * sqrt(maxvar / S));
        CHECK(ecov < 7 * sqrt(2.0 / S) * maxvar);
        bnn_laplace_free(la);
    }
    bnn_model_free(m);
}

/* ------------------------------------------------------------------ 4. fixtures */

static bnn_st *open_fixture(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/laplace/%s.safetensors", BNN_FIXTURES, name);
    bnn_st *st;
    if (bnn_st_read(&st, path)) return NULL;
    return st;
}

static bool has(bnn_st *st, const char *name) {
    bnn_st_tensor t;
    return bnn_st_get(st, name, &t) == 0;
}

static double *tensor(bnn_st *st, const char *name, int64_t *numel) {
    bnn_st_tensor t;
    if (bnn_st_get(st, name, &t) != 0) {
        fprintf(stderr, "missing tensor %s\n", name);
        exit(1);
    }
    double *d = malloc((size_t)t.numel * sizeof(double));
    REQUIRE(d && bnn_st_to_f64(&t, d) == 0);
    if (numel) *numel = t.numel;
    return d;
}

static double scalar(bnn_st *st, const char *name) {
    double *d = tensor(st, name, NULL), v = d[0];
    free(d);
    return v;
}

static const char *meta_str(bnn_st *st, const char *key) {
    const char *v = bnn_st_meta(st, key);
    REQUIRE(v != NULL);
    return v;
}

/* The fixture's curvature (README §2) as a bnn_curv. */
static bnn_curv *fixture_curv(bnn_st *st, bnn_task task, int64_t P, int64_t offset) {
    const char *hs = meta_str(st, "hessian_structure");
    const int64_t N = (int64_t)strtod(meta_str(st, "n_data"), NULL);
    const int64_t K = (int64_t)strtod(meta_str(st, "n_outputs"), NULL);
    const double loss =
        task == BNN_TASK_CLASSIFICATION ? -scalar(st, "log_lik") : scalar(st, "loss_half_sse");
    bnn_curv *c = NULL;
    if (!strcmp(hs, "diag") || !strcmp(hs, "full")) {
        int64_t nh;
        double *H = tensor(st, "H", &nh);
        const bool full = !strcmp(hs, "full");
        REQUIRE(nh == (full ? P * P : P));
        REQUIRE(bnn_curv_from_arrays(&c, full ? BNN_HESS_FULL : BNN_HESS_DIAG, P, offset, N, K,
                                     loss, full ? NULL : H, full ? H : NULL, 0, NULL, NULL, NULL,
                                     NULL) == 0);
        free(H);
    } else {
        REQUIRE(!strcmp(hs, "kron"));
        int64_t nb = 0, n0[16], n1[16];
        double *f0[16], *f1[16];
        char name[64];
        for (;; nb++) {
            snprintf(name, sizeof name, "H_kron.b%lld.f0", (long long)nb);
            if (!has(st, name)) break;
            REQUIRE(nb < 16);
            int64_t q;
            f0[nb] = tensor(st, name, &q);
            n0[nb] = (int64_t)llround(sqrt((double)q));
            snprintf(name, sizeof name, "H_kron.b%lld.f1", (long long)nb);
            f1[nb] = NULL, n1[nb] = 0;
            if (has(st, name)) {
                f1[nb] = tensor(st, name, &q);
                n1[nb] = (int64_t)llround(sqrt((double)q));
            }
        }
        REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_KRON, P, offset, N, K, loss, NULL, NULL, nb, n0,
                                     n1, (const double *const *)f0,
                                     (const double *const *)f1) == 0);
        for (int64_t b = 0; b < nb; b++)
            free(f0[b]), free(f1[b]);
    }
    return c;
}

/* Worst errors over all cases, by kind, for the summary line. */
static double worst_exact = 0, worst_pred = 0;

static void report(const char *file, const char *what, double err, double tol) {
    if (tol <= 1e-8)
        worst_exact = fmax(worst_exact, err);
    else
        worst_pred = fmax(worst_pred, err);
    if (!(err < tol)) {
        check_failures++;
        fprintf(stderr, "%s: %s: norm-wise error %.3g > %.3g\n", file, what, err, tol);
    } else if (getenv("BNN_TEST_VERBOSE")) {
        fprintf(stderr, "%s: %-28s %.3g\n", file, what, err);
    }
    check_count++;
}

static void fixture_case(const char *file) {
    bnn_st *st = open_fixture(file);
    if (!st) {
        fprintf(stderr, "note: %s/laplace/%s.safetensors not readable (%s); case skipped\n",
                BNN_FIXTURES, file, bnn_last_error());
        return;
    }
    const double EX = 1e-9, PR = 1e-4;
    const bool cls = !strcmp(meta_str(st, "likelihood"), "classification");
    const bnn_task task = cls ? BNN_TASK_CLASSIFICATION : BNN_TASK_REGRESSION;
    const char *hs = meta_str(st, "hessian_structure");
    const bool kron = !strcmp(hs, "kron"), full = !strcmp(hs, "full");
    const bool last = !strcmp(meta_str(st, "subset_of_weights"), "last_layer");
    int64_t P, NP;
    double *mean = tensor(st, "mean", &P), *theta_map = tensor(st, "theta_map", &NP);
    const int64_t offset = last ? NP - P : 0;
    bnn_laplace *la;
    REQUIRE(bnn__laplace_new_f64(&la, fixture_curv(st, task, P, offset), mean, task) == 0);
    char what[96];

    /* lml and its parts at fixed hyperparameters (README §4). */
    if (cls) {
        const double lml = bnn_laplace_lml(la, 1.0, 1.0, NULL, NULL);
        report(file, "lml_at_prior1", rel(lml, scalar(st, "lml_at_prior1")), EX);
        bnn_laplace_set_prior(la, 1.0, 1.0);
        const double logdet = bnn_laplace_logdet(la);
        report(file, "logdet_post_at_prior1", rel(logdet, scalar(st, "logdet_post_at_prior1")), EX);
        report(file, "logdet_prior_at_prior1",
               fabs(P * log(1.0) - scalar(st, "logdet_prior_at_prior1")), EX);
        /* the scatter δ‖θ‖² and log_lik, recovered from lml = log_lik − ½[...] */
        const double scatter = -2.0 * (lml + bnn_curv_loss(bnn_laplace_curv(la))) - logdet;
        report(file, "scatter_at_prior1", rel(scatter, scalar(st, "scatter_at_prior1")), EX);
        const double loglik = lml + 0.5 * (logdet + scalar(st, "scatter_at_prior1"));
        report(file, "log_lik", rel(loglik, scalar(st, "log_lik")), EX);
    } else {
        report(file, "lml_at_prior1_sigma1",
               rel(bnn_laplace_lml(la, 1.0, 1.0, NULL, NULL), scalar(st, "lml_at_prior1_sigma1")),
               EX);
        report(file, "lml_at_init",
               rel(bnn_laplace_lml(la, exp(1.0), exp(1.0), NULL, NULL), scalar(st, "lml_at_init")),
               EX);
        const double d = scalar(st, "prior_prec_opt"), s = scalar(st, "sigma_noise_opt");
        const double lml = bnn_laplace_lml(la, d, s, NULL, NULL);
        report(file, "lml_at_opt (fixture δ, σ)", rel(lml, scalar(st, "lml_at_opt")), EX);
        bnn_laplace_set_prior(la, d, s);
        const double logdet = bnn_laplace_logdet(la);
        report(file, "logdet_post_at_opt", rel(logdet, scalar(st, "logdet_post_at_opt")), EX);
        const double loglik = lml + 0.5 * (logdet - P * log(d) + scalar(st, "scatter_at_opt"));
        report(file, "log_lik_at_opt", rel(loglik, scalar(st, "log_lik_at_opt")), EX);
    }

    /* Posterior precision (README §3), at δ = 1 (classification) and at the tuned values. */
    double *Pd = malloc((size_t)(P * P) * sizeof(double)), *Pg = malloc((size_t)P * sizeof(double));
    for (int at = cls ? 0 : 1; at < 2; at++) {
        const double d = at ? scalar(st, "prior_prec_opt") : 1.0;
        const double s = at && !cls ? scalar(st, "sigma_noise_opt") : 1.0;
        bnn_laplace_set_prior(la, d, s);
        char name[64];
        snprintf(name, sizeof name, "%s_at_%s", kron ? "post_prec_dense" : "post_prec",
                 at ? "opt" : "prior1");
        double *ref = tensor(st, name, NULL);
        REQUIRE(bnn_laplace_precision_dense(la, Pd) == 0);
        REQUIRE(bnn_laplace_precision_diag(la, Pg) == 0);
        if (kron || full) {
            report(file, name, check_relerr(Pd, ref, P * P), EX);
            for (int64_t i = 0; i < P; i++)
                ref[i] = ref[i * P + i];
        }
        snprintf(what, sizeof what, "%s (diagonal)", name);
        report(file, what, check_relerr(Pg, ref, P), EX);
        free(ref);
    }
    free(Pg), free(Pd);

    /* Kron: the eigenvalues of every factor (never the eigenvectors: README "Tolerances"). */
    if (kron) {
        for (int64_t b = 0; b < 16; b++)
            for (int f = 0; f < 2; f++) {
                char name[64];
                snprintf(name, sizeof name, "eigvals.b%lld.f%d", (long long)b, f);
                if (!has(st, name)) continue;
                int64_t n, nv;
                double *ref = tensor(st, name, &n);
                const double *vals;
                REQUIRE(bnn__laplace_kron_eigvals(la, b, f, &vals, &nv) == 0);
                REQUIRE(nv == n);
                report(file, name, check_relerr(vals, ref, n), EX);
                free(ref);
            }
    }

    /* The Adam trajectory (README §5–6): step t of our optimiser against row t of the trace.
     * reg_all_kron: the trajectory with the exact σ-gradient (README §6 "Kron quirk"). */
    {
        const bool quirk = !cls && kron;
        const char *tname = cls     ? "log_prior_prec_trace"
                            : quirk ? "log_hyper_trace_exact_grad"
                                    : "log_hyper_trace";
        int64_t nt;
        double *trace = tensor(st, tname, &nt);
        const int64_t w = cls ? 1 : 2, T = nt / w - 1;
        double *mine = malloc((size_t)nt * sizeof(double));
        for (int64_t t = 0; t <= T; t++) {
            REQUIRE(bnn_laplace_optimize(la, t) == 0);
            mine[t * w] = log(bnn_laplace_prior_prec(la));
            if (!cls) mine[t * w + 1] = log(bnn_laplace_sigma(la));
        }
        report(file, tname, check_relerr(mine, trace, nt), EX);
        /* after the last step: the tuned values and lml there */
        const double d = bnn_laplace_prior_prec(la), s = bnn_laplace_sigma(la);
        if (quirk) {
            report(file, "prior_prec (exact-grad Adam)", rel(d, exp(trace[T * 2])), EX);
            report(file, "sigma (exact-grad Adam)", rel(s, exp(trace[T * 2 + 1])), EX);
            report(file, "lml_at_exact_grad_adam",
                   rel(bnn_laplace_lml(la, d, s, NULL, NULL), scalar(st, "lml_at_exact_grad_adam")),
                   EX);
        } else {
            report(file, "prior_prec_opt", rel(d, scalar(st, "prior_prec_opt")), EX);
            if (!cls) report(file, "sigma_noise_opt", rel(s, scalar(st, "sigma_noise_opt")), EX);
            report(file, "lml_at_opt",
                   rel(bnn_laplace_lml(la, d, s, NULL, NULL), scalar(st, "lml_at_opt")), EX);
        }
        free(mine), free(trace);
        /* The exact gradient at the fixture's tuned values (metadata). */
        double dp, ds;
        bnn_laplace_lml(la, scalar(st, "prior_prec_opt"), cls ? 1.0 : scalar(st, "sigma_noise_opt"),
                        &dp, &ds);
        const char *g =
            bnn_st_meta(st, cls ? "dlml_dlogprior_at_opt" : "dlml_dlogprior_dlogsigma_at_opt");
        REQUIRE(g != NULL);
        char *end;
        const double gp = strtod(g, &end);
        report(file, "dlml/dlogδ at opt", fabs(dp - gp) / (double)P, EX);
        if (!cls)
            report(file, "dlml/dlogσ at opt", fabs(ds - strtod(end + 1, NULL)) / (double)P, EX);
    }

    /* GLM predictive (README §7) through the float32 model, at the fixture's tuned values. */
    {
        bnn_model *m;
        REQUIRE(bnn_model_new(&m, cls ? "mlp:4-12-3:tanh" : "mlp:1-16-1:tanh") == 0);
        REQUIRE(bnn_model_nparams(m) == NP);
        for (int64_t i = 0; i < NP; i++)
            bnn_model_params(m)[i] = (float)theta_map[i];
        int64_t nx;
        double *Xt = tensor(st, "Xtest", &nx);
        const int64_t D = bnn_model_input_dim(m), K = bnn_model_output_dim(m), n = nx / D;
        float *x = malloc((size_t)nx * sizeof(float));
        for (int64_t i = 0; i < nx; i++)
            x[i] = (float)Xt[i];
        double *fmu = malloc((size_t)(n * K) * sizeof(double)),
               *fv = malloc((size_t)(n * K * K) * sizeof(double));
        double *p = malloc((size_t)(n * K) * sizeof(double));
        const double d = scalar(st, "prior_prec_opt"),
                     s = cls ? 1.0 : scalar(st, "sigma_noise_opt");
        bnn_laplace_set_prior(la, d, s);
        REQUIRE(bnn_laplace_glm(la, m, x, n, fmu, fv) == 0);
        double *ref = tensor(st, "f_mu", NULL);
        report(file, "f_mu", check_relerr(fmu, ref, n * K), PR);
        free(ref);
        ref = tensor(st, "f_var", NULL);
        report(file, "f_var", check_relerr(fv, ref, n * K * K), PR);
        free(ref);
        if (cls) {
            bnn_probit(p, fmu, fv, n, K);
            ref = tensor(st, "probs_probit", NULL);
            report(file, "probs_probit", check_relerr(p, ref, n * K), PR);
            free(ref);
            if (has(st, "probs_bridge")) {
                bnn_laplace_bridge(p, fmu, fv, n, K);
                ref = tensor(st, "probs_bridge", NULL);
                report(file, "probs_bridge", check_relerr(p, ref, n * K), PR);
                /* The same through the predictive, as `bnn eval --link bridge` takes it: its
                 * probabilities and its log-probabilities. */
                struct bnn_predict_params pp = bnn_predict_default_params();
                pp.link = BNN_LINK_BRIDGE;
                REQUIRE(bnn_laplace_predict(la, m, x, n, BNN_TASK_CLASSIFICATION, &pp, p, NULL,
                                            NULL, NULL) == 0);
                report(file, "probs_bridge (predict)", check_relerr(p, ref, n * K), PR);
                pp.log_probs = true;
                REQUIRE(bnn_laplace_predict(la, m, x, n, BNN_TASK_CLASSIFICATION, &pp, p, NULL,
                                            NULL, NULL) == 0);
                for (int64_t i = 0; i < n * K; i++)
                    p[i] = exp(p[i]);
                report(file, "probs_bridge (predict, log)", check_relerr(p, ref, n * K), PR);
                free(ref);
            }
        } else {
            for (int64_t i = 0; i < n; i++)
                p[i] = fv[i] + s * s;
            ref = tensor(st, "pred_var", NULL);
            report(file, "pred_var", check_relerr(p, ref, n), PR);
            free(ref);
            if (has(st, "f_var_at_exact_grad_adam")) {
                double *tr = tensor(st, "log_hyper_trace_exact_grad", &nx);
                bnn_laplace_set_prior(la, exp(tr[nx - 2]), exp(tr[nx - 1]));
                REQUIRE(bnn_laplace_glm(la, m, x, n, fmu, fv) == 0);
                ref = tensor(st, "f_var_at_exact_grad_adam", NULL);
                report(file, "f_var_at_exact_grad_adam", check_relerr(fv, ref, n), PR);
                free(ref), free(tr);
            }
        }
        free(p), free(fv), free(fmu), free(x), free(Xt);
        bnn_model_free(m);
    }
    bnn_laplace_free(la);

    /* The public constructor takes a float32 mean: lml moves by float rounding of ‖θ‖² only. */
    {
        float *mf = malloc((size_t)P * sizeof(float));
        for (int64_t i = 0; i < P; i++)
            mf[i] = (float)mean[i];
        REQUIRE(bnn_laplace_new(&la, fixture_curv(st, task, P, offset), mf, task) == 0);
        const double lml = bnn_laplace_lml(la, 1.0, 1.0, NULL, NULL);
        const double ref = cls ? scalar(st, "lml_at_prior1") : scalar(st, "lml_at_prior1_sigma1");
        report(file, "lml (float32 mean)", rel(lml, ref), 1e-6);
        bnn_laplace_free(la);
        free(mf);
    }
    free(theta_map), free(mean);
    bnn_st_free(st);
}

int main(void) {
    test_blr_evidence();
    test_ef_gaussian();
    test_cls_basics();
    test_glm_against_jacobian();
    test_glm_in_caller_team();
    test_priors_many_inputs();
    test_priors_many_classes();
    test_sampling();
    const char *cases[] = {"cls_ll_full",  "cls_ll_kron",  "cls_ll_diag",     "cls_all_full",
                           "cls_all_kron", "cls_all_diag", "cls_all_diag_ef", "reg_ll_full",
                           "reg_all_kron", "reg_all_diag"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        fixture_case(cases[i]);
    fprintf(stderr,
            "fixtures: worst error of the float64 quantities %.3g, of the predictive %.3g\n",
            worst_exact, worst_pred);
    return CHECK_DONE();
}
