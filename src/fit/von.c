/* Variational online Newton (VON) with a full-covariance Gaussian, and exact Bayesian linear
 * regression, the conjugate model on which one VON step with rate 1 is exact.
 *
 * The update is the Bayesian learning rule for a Gaussian candidate q = N(m, S⁻¹) (Khan & Rue,
 * "The Bayesian Learning Rule", JMLR 24(281), 2023: the section deriving Newton's method from
 * the rule with a multivariate Gaussian candidate, which gives the variational online Newton
 * (VON) update, and the section on conjugate models, where ρ = 1 recovers ridge regression /
 * the exact posterior). The natural parameters η = (S m, −½ S) move a fraction ρ of the way
 * toward the prior's natural parameters plus the natural gradient of the expected
 * log-likelihood. Written in (m, S) that natural-gradient step reads
 *   S ← (1 − ρ) S + ρ (H + S0),   m ← m − ρ S⁻¹ (g + S0 (m − m0)),
 * with S on the right of the mean update the new precision, g and H the gradient and Hessian of
 * the expected negative log-likelihood, and N(m0, S0⁻¹) the prior. In the paper's notation the
 * loss ℓ̄ includes the negative log prior, so E_q[∇ℓ̄] = g + S0 (m − m0) and
 * E_q[∇²ℓ̄] = H + S0. For a linear model with Gaussian noise g and H are exact and H does not
 * depend on q, so ρ = 1 returns Bayes' rule whatever q was.
 *
 * Everything is in double precision with plain loops rather than cblas, so the module builds
 * and gives the same numbers without BLAS (BNN_BLAS=OFF); every factorisation and inverse is
 * LAPACK's (dpotrf, dpotrs, dpotri), never hand-written.
 *
 * The matrices passed to LAPACK are symmetric, so their row-major storage is also their
 * column-major storage. We therefore call LAPACKE with LAPACK_COL_MAJOR: the row-major
 * interface would transpose into a buffer it allocates itself on every call, which is wasted
 * work and an allocation outside the plan-then-run discipline of STYLE.md. The Cholesky
 * factor is then kept in the column-major lower triangle, which is element [j * d + i] for
 * i >= j in our row-major indexing; only its diagonal is read directly (for log det), so the
 * layout stays internal. */
#include "core/internal.h"

#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Bytes for nmat d × d matrices and nvec d-vectors of double, or 0 on overflow (which the
 * callers report as BNN_ENOMEM, since no allocation of that size can succeed). */
static size_t scratch_bytes(int64_t d, int64_t nmat, int64_t nvec) {
    size_t mat = bnn__bytes(d, sizeof(double));
    if (mat == 0 || (uint64_t)d > SIZE_MAX / mat) return 0;
    mat *= (size_t)d;
    size_t vec = bnn__bytes(d, sizeof(double));
    if ((uint64_t)nmat > SIZE_MAX / mat) return 0;
    size_t total = (size_t)nmat * mat;
    if ((uint64_t)nvec > (SIZE_MAX - total) / vec) return 0;
    return total + (size_t)nvec * vec;
}

/* LAPACK takes sizes as lapack_int (32-bit in the usual LP64 build), so a d that does not fit
 * cannot be served; checked up front so that no cast below can truncate. */
static int fits_lapack(int64_t d) { return (int64_t)(lapack_int)d == d; }

/* A (d × d) = Σ_i x_i x_iᵀ · scale over the n rows x_i of X (n × d). The lower triangle is
 * accumulated row by row in a fixed order, then mirrored, so A is exactly symmetric and the
 * result does not depend on the thread count or on BLAS. */
static void gram(double *A, const double *X, int64_t n, int64_t d, double scale) {
    memset(A, 0, (size_t)d * (size_t)d * sizeof *A);
    for (int64_t i = 0; i < n; i++) {
        const double *x = X + i * d;
        for (int64_t j = 0; j < d; j++) {
            const double xj = x[j];
            double *row = A + j * d;
            for (int64_t k = 0; k <= j; k++)
                row[k] += xj * x[k];
        }
    }
    for (int64_t j = 0; j < d; j++)
        for (int64_t k = 0; k <= j; k++) {
            A[j * d + k] *= scale;
            A[k * d + j] = A[j * d + k];
        }
}

/* Copies the triangle that LAPACK filled (column-major lower, i.e. [j * d + i] for i >= j in
 * row-major indexing) onto the other one, so the caller gets a full symmetric matrix. */
static void mirror_from_lapack_lower(double *A, int64_t d) {
    for (int64_t j = 0; j < d; j++)
        for (int64_t i = j + 1; i < d; i++)
            A[i * d + j] = A[j * d + i];
}

/* ---------------------------------------------------------------- VON step */

int bnn_von_step(double *m, double *S, const double *g, const double *H, const double *m0,
                 const double *S0, int64_t d, double rho) {
    /* m (d), S (d × d), g (d), H (d × d), m0 (d), S0 (d × d); S, H, S0 symmetric. */
    if (d < 1)
        return bnn__error(BNN_EINVAL, "bnn_von_step: d = %lld, expected d >= 1", (long long)d);
    if (!(rho > 0.0 && rho <= 1.0))
        return bnn__error(BNN_EINVAL, "bnn_von_step: rho = %g is outside (0, 1]", rho);
    if (!m || !S || !g || !H || !m0 || !S0)
        return bnn__error(BNN_EINVAL, "bnn_von_step: a NULL array argument");
    if (!fits_lapack(d))
        return bnn__error(BNN_EINVAL, "bnn_von_step: d = %lld exceeds LAPACK's integer range",
                          (long long)d);
    const size_t bytes = scratch_bytes(d, 2, 1);
    double *buf = bytes ? bnn__alloc(bytes) : NULL;
    if (!buf)
        return bnn__error(BNN_ENOMEM, "bnn_von_step: cannot allocate scratch for d = %lld",
                          (long long)d);
    /* NaN or Inf in an input, named here rather than by what LAPACK makes of it (after the
     * allocation: a d no memory holds is ENOMEM before any array is read) */
    const double *vecs[3] = {m, g, m0}, *mats[3] = {S, H, S0};
    const char *vn[3] = {"m", "g", "m0"}, *mn[3] = {"S", "H", "S0"};
    for (int a = 0; a < 3; a++) {
        const char *bad = NULL;
        int64_t at = 0;
        for (int64_t i = 0; !bad && i < d; i++)
            if (!isfinite(vecs[a][i])) bad = vn[a], at = i;
        for (int64_t i = 0; !bad && i < d * d; i++)
            if (!isfinite(mats[a][i])) bad = mn[a], at = i;
        if (bad) {
            bnn__free(buf);
            return bnn__error(BNN_EINVAL, "bnn_von_step: %s[%lld] is not finite", bad,
                              (long long)at);
        }
    }
    /* Everything is computed in scratch and copied out only on success, so that a failed step
     * (not positive definite, non-finite) leaves the caller's m and S as they were. */
    double *Snew = buf, *L = buf + d * d, *r = L + d * d;
    const double keep = 1.0 - rho;
    /* S_new = (1 − ρ) S + ρ (H + S0), symmetrised as ½(A + Aᵀ). For exactly symmetric inputs
     * this changes nothing (the two halves are equal bit for bit); for a Hessian with rounding
     * asymmetry (a GGN summed in another order) it stops the asymmetry from accumulating over
     * many steps and makes S_new the matrix that the Cholesky factor (which reads one
     * triangle only) actually describes. */
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < d; j++)
            Snew[i * d + j] = keep * S[i * d + j] + rho * (H[i * d + j] + S0[i * d + j]);
    for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < i; j++) {
            const double a = 0.5 * (Snew[i * d + j] + Snew[j * d + i]);
            Snew[i * d + j] = a;
            Snew[j * d + i] = a;
        }
    int rc = 0;
    if (!bnn__all_finite(Snew, d * d)) {
        rc = bnn__error(BNN_EINVAL, "bnn_von_step: the new precision has a NaN or Inf entry "
                                    "(non-finite S, H or S0)");
        goto done;
    }
    memcpy(L, Snew, (size_t)d * (size_t)d * sizeof *L);
    bnn__blas_pin();
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)d, L, (lapack_int)d);
    if (info > 0) {
        rc = bnn__error(BNN_EINVAL,
                        "bnn_von_step: the new precision (1 - rho) S + rho (H + S0) is not "
                        "positive definite (leading minor %d); m and S are unchanged",
                        (int)info);
        goto done;
    }
    if (info < 0) {
        rc =
            bnn__error(BNN_EINVAL, "bnn_von_step: LAPACKE_dpotrf rejected argument %d", (int)-info);
        goto done;
    }
    /* r = g + S0 (m − m0): the gradient of the expected negative log joint at the old mean,
     * with S0's symmetric part as in S_new (a symmetric S0 gives the same bits). */
    for (int64_t i = 0; i < d; i++) {
        double s = g[i];
        for (int64_t j = 0; j < d; j++)
            s += 0.5 * (S0[i * d + j] + S0[j * d + i]) * (m[j] - m0[j]);
        r[i] = s;
    }
    info =
        LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', (lapack_int)d, 1, L, (lapack_int)d, r, (lapack_int)d);
    if (info != 0) {
        rc = bnn__error(BNN_EINVAL, "bnn_von_step: LAPACKE_dpotrs failed (info %d)", (int)info);
        goto done;
    }
    /* r now holds S_new⁻¹ (g + S0 (m − m0)); turn it into the new mean. */
    for (int64_t i = 0; i < d; i++)
        r[i] = m[i] - rho * r[i];
    if (!bnn__all_finite(r, d)) {
        rc = bnn__error(BNN_EINVAL, "bnn_von_step: the new mean is not finite (NaN or Inf in "
                                    "g, m or m0); m and S are unchanged");
        goto done;
    }
    memcpy(m, r, (size_t)d * sizeof *m);
    memcpy(S, Snew, (size_t)d * (size_t)d * sizeof *S);
done:
    bnn__free(buf);
    return rc;
}

/* ---------------------------------------------------------------- Bayesian linear regression */

int bnn_blr_fit(double *mean, double *precision, double *covariance, struct bnn_blr_result *res,
                const double *X, const double *y, int64_t n, int64_t d, double alpha,
                double noise_var) {
    /* X (n × d), y (n) -> mean (d), precision (d × d), covariance (d × d). */
    if (d < 1)
        return bnn__error(BNN_EINVAL, "bnn_blr_fit: d = %lld, expected d >= 1", (long long)d);
    if (n < 0) return bnn__error(BNN_EINVAL, "bnn_blr_fit: n = %lld is negative", (long long)n);
    if (!(alpha > 0.0) || !isfinite(alpha))
        return bnn__error(BNN_EINVAL,
                          "bnn_blr_fit: prior precision alpha = %g, expected a "
                          "finite positive value",
                          alpha);
    if (!(noise_var > 0.0) || !isfinite(noise_var))
        return bnn__error(BNN_EINVAL,
                          "bnn_blr_fit: noise variance = %g, expected a finite "
                          "positive value",
                          noise_var);
    if (n > 0 && (!X || !y)) return bnn__error(BNN_EINVAL, "bnn_blr_fit: X or y is NULL");
    if (!fits_lapack(d))
        return bnn__error(BNN_EINVAL, "bnn_blr_fit: d = %lld exceeds LAPACK's integer range",
                          (long long)d);
    const size_t bytes = scratch_bytes(d, 2, 2);
    double *buf = bytes ? bnn__alloc(bytes) : NULL;
    if (!buf)
        return bnn__error(BNN_ENOMEM, "bnn_blr_fit: cannot allocate scratch for d = %lld",
                          (long long)d);
    /* The mean and the factor are needed for the evidence even when the caller asks for neither,
     * so they always live in scratch and are copied out on request. */
    double *P = buf, *L = buf + d * d, *b = L + d * d, *mu = b + d;
    const double inv_var = 1.0 / noise_var;
    int rc = 0;

    /* Posterior precision S = α I + Xᵀ X / σ² and the natural mean b = Xᵀ y / σ² (Bishop,
     * "Pattern Recognition and Machine Learning", 2006, Eqs. 3.53–3.54 with β = 1/σ²). */
    gram(P, X, n, d, inv_var);
    for (int64_t j = 0; j < d; j++)
        P[j * d + j] += alpha;
    for (int64_t i = 0; i < n; i++) {
        const double yi = y[i];
        const double *x = X + i * d;
        for (int64_t j = 0; j < d; j++)
            b[j] += x[j] * yi;
    }
    for (int64_t j = 0; j < d; j++)
        b[j] *= inv_var;
    if (!bnn__all_finite(P, d * d) || !bnn__all_finite(b, d)) {
        rc = bnn__error(BNN_EINVAL, "bnn_blr_fit: NaN or Inf in X or y (or X^T X overflows)");
        goto done;
    }

    memcpy(L, P, (size_t)d * (size_t)d * sizeof *L);
    bnn__blas_pin();
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)d, L, (lapack_int)d);
    if (info != 0) {
        /* With α > 0 the precision is positive definite in exact arithmetic; this can only
         * happen when α is tiny next to an ill-conditioned Xᵀ X / σ². */
        rc = bnn__error(BNN_EINVAL,
                        "bnn_blr_fit: the posterior precision is numerically not "
                        "positive definite (dpotrf info %d); increase alpha",
                        (int)info);
        goto done;
    }
    /* log det S = 2 Σ log L_jj from the Cholesky factor S = L Lᵀ. */
    double logdet = 0.0;
    for (int64_t j = 0; j < d; j++)
        logdet += log(L[j * d + j]);
    logdet *= 2.0;

    memcpy(mu, b, (size_t)d * sizeof *mu);
    info = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', (lapack_int)d, 1, L, (lapack_int)d, mu,
                          (lapack_int)d);
    if (info != 0) {
        rc = bnn__error(BNN_EINVAL, "bnn_blr_fit: LAPACKE_dpotrs failed (info %d)", (int)info);
        goto done;
    }

    if (res) {
        /* The evidence by the d × d formula (Bishop 2006, Eq. 3.86, with the noise variance σ²
         * in place of 1/β), which costs O(n d) here instead of the O(n³) of factorising the
         * n × n covariance σ² I + X Xᵀ / α; the two agree to rounding (checked in tests):
         *   log p(y) = −(n/2) log(2πσ²) − ‖y − X m‖² / (2σ²) − (α/2) ‖m‖²
         *              + (d/2) log α − ½ log det S. */
        double rss = 0.0, mm = 0.0;
        for (int64_t i = 0; i < n; i++) {
            const double *x = X + i * d;
            double f = 0.0;
            for (int64_t j = 0; j < d; j++)
                f += x[j] * mu[j];
            const double e = y[i] - f;
            rss += e * e;
        }
        for (int64_t j = 0; j < d; j++)
            mm += mu[j] * mu[j];
        const double two_pi = 6.283185307179586476925286766559;
        res->logdet_precision = logdet;
        res->log_marginal_likelihood = -0.5 * (double)n * log(two_pi * noise_var) -
                                       0.5 * rss * inv_var - 0.5 * alpha * mm +
                                       0.5 * (double)d * log(alpha) - 0.5 * logdet;
    }
    if (covariance) {
        /* S⁻¹ from the same factor (dpotri), which fills one triangle; mirror it. */
        memcpy(covariance, L, (size_t)d * (size_t)d * sizeof *covariance);
        info = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'L', (lapack_int)d, covariance, (lapack_int)d);
        if (info != 0) {
            rc = bnn__error(BNN_EINVAL, "bnn_blr_fit: LAPACKE_dpotri failed (info %d)", (int)info);
            goto done;
        }
        mirror_from_lapack_lower(covariance, d);
    }
    if (mean) memcpy(mean, mu, (size_t)d * sizeof *mean);
    if (precision) memcpy(precision, P, (size_t)d * (size_t)d * sizeof *precision);
done:
    bnn__free(buf);
    return rc;
}

void bnn_blr_grad_hess(double *g, double *H, const double *X, const double *y, const double *m,
                       int64_t n, int64_t d, double noise_var) {
    /* X (n × d), y (n), m (d) -> g (d), H (d × d); either output may be NULL. */
    BNN_ASSERT(d >= 1 && n >= 0);
    const double inv_var = 1.0 / noise_var;
    if (g) {
        /* g = Xᵀ (X m − y) / σ², one row at a time so no n-vector of residuals is needed. */
        memset(g, 0, (size_t)d * sizeof *g);
        for (int64_t i = 0; i < n; i++) {
            const double *x = X + i * d;
            double f = 0.0;
            for (int64_t j = 0; j < d; j++)
                f += x[j] * m[j];
            const double e = f - y[i];
            for (int64_t j = 0; j < d; j++)
                g[j] += x[j] * e;
        }
        for (int64_t j = 0; j < d; j++)
            g[j] *= inv_var;
    }
    /* H = Xᵀ X / σ², independent of m: the model is linear, so the Hessian is exact. */
    if (H) gram(H, X, n, d, inv_var);
}
