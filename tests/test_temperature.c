/* Temperature scaling (bnn_temperature_fit, Guo et al., ICML 2017). The library's objective and
 * derivatives are checked against an independent plain NLL written here: the fitted T must
 * recover a known temperature, sit at a minimum of this NLL, beat T = 1, and agree with a brute-
 * force grid. Edge cases (separable, uninformative and inverted logits) and invalid inputs are
 * checked too, and the result must not depend on the thread count. */
#include "bnn.h"
#include "check.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The reference objective: mean NLL of softmax(z / T) in double, by log-sum-exp. Written
 * independently of the library (no moments, no chunking) so that a shared mistake is unlikely. */
static double ref_nll(const float *z, const int32_t *y, int64_t n, int64_t k, double T) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *zi = z + i * k;
        double m = -INFINITY;
        for (int64_t j = 0; j < k; j++)
            if ((double)zi[j] / T > m) m = (double)zi[j] / T;
        double s = 0.0;
        for (int64_t j = 0; j < k; j++)
            s += exp((double)zi[j] / T - m);
        total += m + log(s) - (double)zi[y[i]] / T;
    }
    return total / (double)n;
}

/* Mean over examples of Var_{softmax(s_i)}(s_i): the Fisher information per example of the
 * inverse temperature β at β = 1 for labels drawn from softmax(β s). */
static double fisher_beta(const float *s, int64_t n, int64_t k) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *si = s + i * k;
        double m = -INFINITY;
        for (int64_t j = 0; j < k; j++)
            if (si[j] > m) m = si[j];
        double s0 = 0.0, s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < k; j++) {
            double e = exp(si[j] - m);
            s0 += e, s1 += e * si[j], s2 += e * si[j] * si[j];
        }
        total += s2 / s0 - (s1 / s0) * (s1 / s0);
    }
    return total / (double)n;
}

/* A known softmax model: s (n × k) ~ N(0, sd²) and labels y_i ~ softmax(sign · s_i), drawn by
 * inverting the CDF with one uniform per row. The logits returned are z = a · s, whose true
 * temperature is therefore a (sign = +1). */
static void make_data(float *z, float *s, int32_t *y, int64_t n, int64_t k, double a, double sd,
                      double sign, uint64_t seed) {
    bnn_rng rng = bnn_rng_make(seed, 0);
    bnn_rng_normal(&rng, s, n * k);
    for (int64_t i = 0; i < n * k; i++)
        s[i] = (float)(sd * s[i]);
    float *u = malloc((size_t)n * sizeof(float));
    REQUIRE(u != NULL);
    bnn_rng_uniform(&rng, u, n);
    double p[64];
    REQUIRE(k <= 64);
    for (int64_t i = 0; i < n; i++) {
        const float *si = s + i * k;
        double m = -INFINITY, tot = 0.0;
        for (int64_t j = 0; j < k; j++)
            if (sign * si[j] > m) m = sign * si[j];
        for (int64_t j = 0; j < k; j++)
            tot += p[j] = exp(sign * si[j] - m);
        double target = (double)u[i] * tot, c = 0.0;
        int32_t lab = (int32_t)(k - 1);
        for (int64_t j = 0; j < k; j++) {
            c += p[j];
            if (target < c) {
                lab = (int32_t)j;
                break;
            }
        }
        y[i] = lab;
    }
    for (int64_t i = 0; i < n * k; i++)
        z[i] = (float)(a * s[i]);
    free(u);
}

/* (1)–(3): a known temperature is recovered within its sampling error, the fitted T is a local
 * minimum of the reference NLL to 1e-4 in log T, and it beats the uncalibrated T = 1. */
static void test_recovers_temperature(double a, uint64_t seed) {
    const int64_t n = 50000, k = 10;
    float *z = malloc((size_t)(n * k) * sizeof(float));
    float *s = malloc((size_t)(n * k) * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    REQUIRE(z && s && y);
    make_data(z, s, y, n, k, a, 2.0, 1.0, seed);

    double T = -1.0;
    CHECK_EQ_INT(bnn_temperature_fit(&T, z, y, n, k), BNN_OK);

    /* The MLE of β = 1/T for s has standard deviation 1/√(n I) (I: Fisher information per
     * example), so T/a − 1 ≈ −(β̂ − 1) is within five of those with overwhelming probability. */
    const double sd_rel = 1.0 / sqrt((double)n * fisher_beta(s, n, k));
    fprintf(stderr, "true T = %.3f, fitted T = %.6f (T/a - 1 = %+.5f, sampling sd %.5f)\n", a, T,
            T / a - 1.0, sd_rel);
    CHECK_NEAR(T / a, 1.0, 5.0 * sd_rel);
    CHECK(sd_rel < 0.01); /* the check above is only meaningful when the data pin T down */

    /* The derivative at T is ~0: moving log T by ±1e-4 cannot lower the reference NLL. */
    const double f = ref_nll(z, y, n, k, T);
    const double fm = ref_nll(z, y, n, k, T * (1.0 - 1e-4));
    const double fp = ref_nll(z, y, n, k, T * (1.0 + 1e-4));
    fprintf(stderr,
            "  NLL(T) = %.15f, NLL(T(1-1e-4)) - NLL(T) = %.3g, NLL(T(1+1e-4)) - NLL(T) = "
            "%.3g\n",
            f, fm - f, fp - f);
    CHECK(fm >= f);
    CHECK(fp >= f);

    /* Calibration improves the NLL over T = 1; with a true T far from 1 it must do so clearly. */
    const double f1 = ref_nll(z, y, n, k, 1.0);
    fprintf(stderr, "  NLL(1) = %.6f, NLL(T) = %.6f\n", f1, f);
    CHECK(f <= f1);
    CHECK(f1 - f > 1e-2);

    free(z), free(s), free(y);
}

/* (4): a brute-force grid of 1000 log-spaced temperatures over [1e-2, 1e2] finds its minimum
 * within one grid step of the fitted T (the NLL is unimodal in log T, so the minimiser lies
 * within a step of the best grid point). */
static void test_grid(double a, uint64_t seed) {
    const int64_t n = 4000, k = 10, npts = 1000;
    float *z = malloc((size_t)(n * k) * sizeof(float));
    float *s = malloc((size_t)(n * k) * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    REQUIRE(z && s && y);
    make_data(z, s, y, n, k, a, 2.0, 1.0, seed);

    double T = -1.0;
    CHECK_EQ_INT(bnn_temperature_fit(&T, z, y, n, k), BNN_OK);
    const double lo = log(1e-2), hi = log(1e2), step = (hi - lo) / (double)(npts - 1);
    double best_f = INFINITY, best_u = 0.0;
    for (int64_t g = 0; g < npts; g++) {
        const double u = lo + step * (double)g;
        const double f = ref_nll(z, y, n, k, exp(u));
        if (f < best_f) best_f = f, best_u = u;
    }
    fprintf(stderr, "grid (a = %.2f): fitted T = %.6f, grid T = %.6f, step ratio %.5f\n", a, T,
            exp(best_u), exp(step));
    CHECK_NEAR(log(T), best_u, step);
    CHECK(ref_nll(z, y, n, k, T) <= best_f);
    free(z), free(s), free(y);
}

/* The bounds of the search: perfectly separable data have no minimiser (T → 0) and give 1e-3;
 * ties at the top reach the same bound through the search itself; logits that carry no or
 * inverted information give the upper bound 1e3; logits equal within every row leave L flat and
 * T = 1 is kept. */
static void test_edges(void) {
    double T = -1.0;
    /* Separable: every label's logit strictly above the others. */
    const float zs[3 * 3] = {3, 1, 0, -1, 2, 0.5f, 0, 0, 0.25f};
    const int32_t ys[3] = {0, 1, 2};
    CHECK_EQ_INT(bnn_temperature_fit(&T, zs, ys, 3, 3), BNN_OK);
    CHECK(T == 1e-3);

    /* One tie at the top (row 1): not strictly separable, yet L still decreases to T → 0. */
    const float zt[3 * 2] = {2, -1, 1, 1, -3, 0};
    const int32_t yt[3] = {0, 0, 1};
    T = -1.0;
    CHECK_EQ_INT(bnn_temperature_fit(&T, zt, yt, 3, 2), BNN_OK);
    CHECK(T == 1e-3);

    /* Constant rows: q is uniform at every T, L = log k is flat and dL/du = 0 at the start. */
    const float zc[2 * 3] = {1, 1, 1, -2, -2, -2};
    const int32_t yc[2] = {0, 2};
    T = -1.0;
    CHECK_EQ_INT(bnn_temperature_fit(&T, zc, yc, 2, 3), BNN_OK);
    CHECK(T == 1.0);

    /* Inverted logits: labels drawn from softmax(−s) while z = s. The best β is negative, so on
     * T > 0 the NLL keeps decreasing towards T = ∞. */
    const int64_t n = 2000, k = 5;
    float *z = malloc((size_t)(n * k) * sizeof(float));
    float *s = malloc((size_t)(n * k) * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    REQUIRE(z && s && y);
    make_data(z, s, y, n, k, 1.0, 2.0, -1.0, 7);
    T = -1.0;
    CHECK_EQ_INT(bnn_temperature_fit(&T, z, y, n, k), BNN_OK);
    CHECK(T == 1e3);

    /* Nearly separable: one mistake among confident, correct rows puts the optimum at a small but
     * interior T, found by the search and checked against the reference NLL. */
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < k; j++)
            z[i * k + j] = (float)(j == i % k ? 4.0 : 0.0);
        y[i] = (int32_t)(i % k);
    }
    y[0] = 1;
    T = -1.0;
    CHECK_EQ_INT(bnn_temperature_fit(&T, z, y, n, k), BNN_OK);
    const double f = ref_nll(z, y, n, k, T);
    fprintf(stderr, "nearly separable: fitted T = %.6f\n", T);
    CHECK(T > 1e-3 && T < 1.0);
    CHECK(ref_nll(z, y, n, k, T * (1.0 - 1e-4)) >= f);
    CHECK(ref_nll(z, y, n, k, T * (1.0 + 1e-4)) >= f);
    free(z), free(s), free(y);
}

/* The fit is bit-identical for every thread count (fixed chunks, combined in a fixed order).
 * This catches races in the parallel sum; a change of summation order alone moves the gradient
 * only in its last bits, which the converged T rarely shows, so that property rests on the
 * construction documented in temperature.c. */
static void test_threads(void) {
    const int64_t n = 30000, k = 10;
    float *z = malloc((size_t)(n * k) * sizeof(float));
    float *s = malloc((size_t)(n * k) * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    REQUIRE(z && s && y);
    make_data(z, s, y, n, k, 1.7, 2.0, 1.0, 3);
    const int saved = bnn_get_threads();
    double T1 = -1.0, T4 = -2.0;
    bnn_set_threads(1);
    CHECK_EQ_INT(bnn_temperature_fit(&T1, z, y, n, k), BNN_OK);
    bnn_set_threads(4);
    CHECK_EQ_INT(bnn_temperature_fit(&T4, z, y, n, k), BNN_OK);
    bnn_set_threads(3);
    double T3 = -3.0;
    CHECK_EQ_INT(bnn_temperature_fit(&T3, z, y, n, k), BNN_OK);
    CHECK(memcmp(&T1, &T3, sizeof T1) == 0);
    bnn_set_threads(saved);
    fprintf(stderr, "threads: T(1 thread) = %.17g, T(4 threads) = %.17g\n", T1, T4);
    CHECK(memcmp(&T1, &T4, sizeof T1) == 0);
    free(z), free(s), free(y);
}

/* (5): invalid input returns BNN_EINVAL, names the problem in bnn_last_error() and leaves *T. */
static void expect_einval(const float *z, const int32_t *y, int64_t n, int64_t k,
                          const char *needle) {
    double T = 123.0;
    const int rc = bnn_temperature_fit(&T, z, y, n, k);
    CHECK_EQ_INT(rc, BNN_EINVAL);
    CHECK(T == 123.0);
    const char *msg = bnn_last_error();
    CHECK(msg && strstr(msg, "bnn_temperature_fit") != NULL);
    CHECK(msg && strstr(msg, needle) != NULL);
    if (msg && !strstr(msg, needle)) fprintf(stderr, "  detail '%s' lacks '%s'\n", msg, needle);
}

static void test_invalid(void) {
    float z[2 * 3] = {1, 2, 3, 0, -1, 0.5f};
    int32_t y[2] = {2, 0};
    double T = 0.0;
    expect_einval(z, y, 0, 3, "n = 0");
    expect_einval(z, y, -5, 3, "n = -5");
    expect_einval(z, y, 2, 1, "k = 1");
    expect_einval(NULL, y, 2, 3, "NULL");
    expect_einval(z, NULL, 2, 3, "NULL");
    CHECK_EQ_INT(bnn_temperature_fit(NULL, z, y, 2, 3), BNN_EINVAL);
    expect_einval(z, y, INT64_MAX / 2, 3, "overflows");

    y[1] = 3;
    expect_einval(z, y, 2, 3, "labels[1] = 3");
    y[1] = -1;
    expect_einval(z, y, 2, 3, "labels[1] = -1");
    y[1] = 0;

    z[4] = NAN;
    expect_einval(z, y, 2, 3, "logits[1][1]");
    z[4] = INFINITY;
    expect_einval(z, y, 2, 3, "logits[1][1]");
    z[4] = -INFINITY;
    expect_einval(z, y, 2, 3, "logits[1][1]");
    z[4] = -1.0f;

    /* The same data, now valid, fit. */
    CHECK_EQ_INT(bnn_temperature_fit(&T, z, y, 2, 3), BNN_OK);
    CHECK(T >= 1e-3 && T <= 1e3);
}

int main(void) {
    test_recovers_temperature(2.5, 42);
    test_recovers_temperature(0.5, 43);
    test_grid(2.5, 11);
    test_grid(0.5, 12);
    test_edges();
    test_threads();
    test_invalid();
    return CHECK_DONE();
}
