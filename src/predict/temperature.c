/* Temperature scaling (Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks",
 * ICML 2017, Sec. 4.2): one scalar T > 0 divides every logit, chosen to minimise the mean
 * negative log-likelihood on held-out data,
 *
 *     L(T) = (1/n) Σ_i [ logsumexp_j(z_ij / T) − z_{i,y_i} / T ].
 *
 * The reference implementation (gpleiss/temperature_scaling) runs L-BFGS on T itself in float32.
 * We solve the same problem in double with a safeguarded Newton iteration on u = log T, which
 * keeps T positive without constraints and puts the small and large temperatures on one scale.
 *
 * Derivatives. With β = 1/T = e^{−u} and q_i = softmax(β z_i), L as a function of β is convex
 * (a mean of log-sum-exps of linear functions of β minus a linear term), with
 *     dL/dβ   = (1/n) Σ_i (E_q[z_i] − z_{i,y_i}),    d²L/dβ² = (1/n) Σ_i Var_q(z_i) ≥ 0.
 * Since dβ/du = −β,
 *     dL/du   = (1/n) Σ_i β (z_{i,y_i} − E_q[z_i])  (= T · dL/dT),
 *     d²L/du² = β² (1/n) Σ_i Var_q(z_i) − dL/du.
 * L is not convex in u, but u ↦ β is monotone, so L(u) inherits the unimodality of the convex
 * L(β): the sign of dL/du goes from negative to positive at most once. Every evaluation therefore
 * tells on which side of the minimiser it lies, and the iteration keeps a bracket [a, b] with
 * dL/du(a) < 0 < dL/du(b). A Newton step that leaves the bracket, meets non-positive curvature
 * or fails to decrease L is replaced by bisection of the bracket, which always converges.
 *
 * Limits. T is searched in [1e-3, 1e3]. When the minimiser lies outside (dL/du has one sign over
 * the whole bracket) the edge is returned with success: for perfectly separable data (every
 * label's logit strictly above all others) L decreases towards 0 as T → 0 and has no minimiser,
 * and 1e-3 is the bound, not an optimum; likewise 1e3 when the logits carry no or inverted
 * information about the labels (the unconstrained optimum would be T = ∞ or a negative T).
 *
 * Determinism. The sum over examples is cut into TEMP_NCHUNK fixed chunks of consecutive rows;
 * each chunk is summed in row order (the chunks in parallel with OpenMP when the data are large)
 * and the chunk sums are combined in chunk order on one thread. The result is therefore
 * bit-identical for every thread count and with or without OpenMP. */
#include "core/internal.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>

/* The search interval for T and the iteration limit. */
#define TEMP_MIN 1e-3
#define TEMP_MAX 1e3
#define TEMP_MAX_ITER 100
/* Chunks of the deterministic reduction: the rows are cut into TEMP_NCHUNK consecutive pieces
 * of ceil(n / TEMP_NCHUNK) rows, which depends on n alone. A fixed count keeps the partial sums
 * on the stack (no allocation, so no BNN_ENOMEM) and still feeds up to 64 threads. Changing it
 * changes results in the last bits. */
#define TEMP_NCHUNK 64
/* Below this many logits a pass costs less than forking threads. */
#define TEMP_PAR_MIN 65536

/* The objective and its first two derivatives in u = log T at one point. */
typedef struct {
    double u, f, g, h;
} temp_point;

typedef struct {
    const float *z;
    const int32_t *y;
    int64_t n, k;
} temp_problem;

/* out[3] = Σ over rows r0..r1−1 of (loss_i, dloss_i/du, β² Var_q(z_i)) at inverse temperature
 * beta. Each row is shifted by its maximum m, so every exponent is ≤ 0, the largest term of s0
 * is exactly 1, and logsumexp(β z) = β m + log s0 never overflows. The variance uses the shifted
 * moments s2/s0 − (s1/s0)²; it only sets the Newton step's curvature (convergence is judged on
 * the gradient), so its rounding in the rare case of heavy cancellation is harmless, and it is
 * clamped at 0. */
static void chunk_sums(double out[3], const float *z, const int32_t *y, int64_t r0, int64_t r1,
                       int64_t k, double beta) {
    double sl = 0.0, sg = 0.0, sv = 0.0;
    for (int64_t i = r0; i < r1; i++) {
        const float *zi = z + i * k;
        float m = zi[0];
        for (int64_t j = 1; j < k; j++)
            if (zi[j] > m) m = zi[j];
        const double md = (double)m;
        double s0 = 0.0, s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < k; j++) {
            const double d = (double)zi[j] - md;
            const double e = exp(beta * d);
            s0 += e;
            s1 += e * d;
            s2 += e * d * d;
        }
        const double mu = s1 / s0; /* E_q[z_i] − m */
        double var = s2 / s0 - mu * mu;
        if (var < 0.0) var = 0.0;
        const double dy = (double)zi[y[i]] - md; /* z_{i,y_i} − m */
        sl += log(s0) - beta * dy;
        sg += beta * (dy - mu);
        sv += beta * beta * var;
    }
    out[0] = sl, out[1] = sg, out[2] = sv;
}

/* L, dL/du and d²L/du² at u (see the derivation at the top of the file). */
static temp_point evaluate(const temp_problem *p, double u) {
    const double beta = exp(-u);
    const float *z = p->z;
    const int32_t *y = p->y;
    const int64_t n = p->n, k = p->k;
    const int64_t rows = (n + TEMP_NCHUNK - 1) / TEMP_NCHUNK;
    double part[TEMP_NCHUNK * 3];
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n * k > TEMP_PAR_MIN)
#endif
    for (int64_t c = 0; c < TEMP_NCHUNK; c++) {
        const int64_t r0 = c * rows < n ? c * rows : n;
        const int64_t r1 = r0 + rows < n ? r0 + rows : n;
        chunk_sums(part + 3 * c, z, y, r0, r1, k, beta);
    }
    double sl = 0.0, sg = 0.0, sv = 0.0;
    for (int64_t c = 0; c < TEMP_NCHUNK; c++) {
        sl += part[3 * c + 0];
        sg += part[3 * c + 1];
        sv += part[3 * c + 2];
    }
    temp_point pt;
    pt.u = u;
    pt.f = sl / (double)n;
    pt.g = sg / (double)n;
    pt.h = sv / (double)n - pt.g;
    return pt;
}

/* The stopping rule: |dL/du| < 1e-12 (1 + |L|). */
static bool converged(const temp_point *pt) { return fabs(pt->g) < 1e-12 * (1.0 + fabs(pt->f)); }

/* Keeps dL/du(a) < 0 < dL/du(b) with the sign of a new evaluation inside (a, b). */
static void shrink(double *a, double *b, const temp_point *pt) {
    if (pt->g > 0.0)
        *b = pt->u;
    else if (pt->g < 0.0)
        *a = pt->u;
}

static double clamp_temperature(double u) {
    const double t = exp(u);
    return t < TEMP_MIN ? TEMP_MIN : t > TEMP_MAX ? TEMP_MAX : t;
}

/* The minimising T in [TEMP_MIN, TEMP_MAX] for data that are not perfectly separable. */
static double search(const temp_problem *prob) {
    const double umin = log(TEMP_MIN), umax = log(TEMP_MAX);

    /* Start at T = 1 (the uncalibrated model). Its gradient's sign says on which side of u = 0
     * the minimiser lies; the edge on that side either closes the bracket or, when its gradient
     * has the same sign, is the answer because the minimiser lies beyond it. */
    temp_point cur = evaluate(prob, 0.0);
    double a, b;
    if (converged(&cur)) return 1.0;
    if (cur.g > 0.0) {
        const temp_point lo = evaluate(prob, umin);
        if (lo.g >= 0.0) return TEMP_MIN;
        a = umin, b = 0.0;
    } else {
        const temp_point hi = evaluate(prob, umax);
        if (hi.g <= 0.0) return TEMP_MAX;
        a = 0.0, b = umax;
    }

    /* Near the minimiser a Newton step lowers L by about g²/(2h), which drops below the rounding
     * of L itself (≈ 1e-16 |L|) while g is still far above the tolerance. Within that rounding
     * slack a step is also accepted when it shrinks |g|, so that Newton's quadratic convergence
     * is not cut short by a spurious "no decrease". */
    temp_point best = cur;
    bool done_ok = false;
    for (int it = 0; it < TEMP_MAX_ITER; it++) {
        bool stepped = false;
        if (cur.h > 0.0 && isfinite(cur.h)) {
            const double un = cur.u - cur.g / cur.h;
            if (un > a && un < b) {
                const temp_point nw = evaluate(prob, un);
                shrink(&a, &b, &nw);
                if (nw.f < best.f) best = nw;
                const double slack = 16.0 * DBL_EPSILON * (1.0 + fabs(cur.f));
                if (nw.f < cur.f || (nw.f <= cur.f + slack && fabs(nw.g) < fabs(cur.g))) {
                    cur = nw;
                    stepped = true;
                }
            }
        }
        if (!stepped) {
            /* Bisection on the sign of dL/du: the bracket always holds the minimiser. */
            cur = evaluate(prob, 0.5 * (a + b));
            shrink(&a, &b, &cur);
            if (cur.f < best.f) best = cur;
        }
        if (converged(&cur)) {
            done_ok = true;
            break;
        }
        /* The bracket cannot shrink below the spacing of doubles around u: the gradient test is
         * out of reach of rounding (very large logits), and u is as exact as it can be. */
        if (b - a <= 4.0 * DBL_EPSILON * fmax(1.0, fabs(cur.u))) {
            done_ok = true;
            break;
        }
    }
    /* After TEMP_MAX_ITER steps without meeting the tolerance (not seen in practice: bisection
     * alone halves the bracket 100 times), the lowest L found is the best answer we have. */
    return clamp_temperature(done_ok ? cur.u : best.u);
}

int bnn_temperature_fit(double *T, const float *logits, const int32_t *labels, int64_t n,
                        int64_t k) {
    static const char *fn = "bnn_temperature_fit";
    if (!T || !logits || !labels)
        return bnn__error(BNN_EINVAL, "%s: T, logits and labels must not be NULL", fn);
    if (n < 1)
        return bnn__error(BNN_EINVAL, "%s: n = %lld, need at least 1 example", fn, (long long)n);
    if (k < 2)
        return bnn__error(BNN_EINVAL, "%s: k = %lld, need at least 2 classes", fn, (long long)k);
    if (n > INT64_MAX / k)
        return bnn__error(BNN_EINVAL, "%s: n × k = %lld × %lld overflows", fn, (long long)n,
                          (long long)k);

    /* Validate everything before computing anything, so a failure names the first offending
     * entry and leaves *T untouched. A NaN or Inf logit would make every sum NaN and the search
     * would wander without a usable answer. The same pass finds out whether the data are
     * perfectly separable, which has no minimiser (see the top of the file). */
    bool separable = true;
    for (int64_t i = 0; i < n; i++) {
        const float *zi = logits + i * k;
        const int32_t yi = labels[i];
        if (yi < 0 || yi >= k)
            return bnn__error(BNN_EINVAL, "%s: labels[%lld] = %d is outside 0..%lld", fn,
                              (long long)i, (int)yi, (long long)(k - 1));
        for (int64_t j = 0; j < k; j++) {
            if (!isfinite(zi[j]))
                return bnn__error(BNN_EINVAL, "%s: logits[%lld][%lld] = %g is not finite", fn,
                                  (long long)i, (long long)j, (double)zi[j]);
            if (j != yi && !(zi[yi] > zi[j])) separable = false;
        }
    }
    if (separable) {
        /* Every margin is positive: L(T) → 0 as T → 0 and the bound is the answer. */
        *T = TEMP_MIN;
        return BNN_OK;
    }

    const temp_problem prob = {logits, labels, n, k};
    *T = search(&prob);
    return BNN_OK;
}
