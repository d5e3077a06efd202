/* Elementwise activations: ReLU, tanh and GELU (exact erf form, PyTorch's default). Backward
 * reads the cached output (ReLU, tanh) or input (GELU), so no extra scratch is needed. */
#include "nn/layer.h"

#include <math.h>

#if defined(BNN_HAVE_OPENMP)
#define BNN_OMP_ELEMENTWISE _Pragma("omp parallel for schedule(static) if (n > 32768)")
#else
#define BNN_OMP_ELEMENTWISE
#endif

static int64_t no_params(const bnn__layer *l) { return 0; }

/* y (b × n) = max(x, 0) */
static void relu_forward(bnn__layer *l, float *y, const float *x, const float *w, int64_t b,
                         bool train, bnn_rng *rng) {
    const int64_t n = b * l->in;
    BNN_OMP_ELEMENTWISE
    /* Written so that NaN propagates (NaN < 0 is false), as in PyTorch;
     * must stay vectorised (tests/vectorised.sh) */
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static void relu_backward(bnn__layer *l, float *dx, float *dw, const float *dy, const float *x,
                          const float *y, const float *w, int64_t b) {
    const int64_t n = b * l->in;
    /* dy is read whatever y is: a load under the condition vectorises only with masked loads
     * (AVX2, AVX-512), and the portable build (SSE2) left this loop scalar;
     * must stay vectorised (tests/vectorised.sh) */
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) {
        const float g = dy[i];
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

/* tanh, branchless so that the layer's loop vectorises (libm's tanhf does not without
 * -ffast-math, and cost a tanh network a third more per epoch than a ReLU one), and the same bits
 * on every instruction set and architecture (glibc's tanhf differs between x86-64 and ARM by up
 * to 3 ulps). For |x| < 0.55 its Taylor series to x¹⁷ (the terms fall by about x²·0.4 each:
 * truncation below 1e-8 relative); beyond, (1 − E)/(1 + E) with E = e^−2|x| ≤ 0.33
 * (bnn__exp_nonpos), with no cancellation; the sign put back. Within 4 · 2⁻²⁴ of double
 * precision (test_nn). */
static inline float tanh_f(float x) {
    const float a = fabsf(x), a2 = a * a;
    const float p =
        a * (1.0f + a2 * (-3.33333333e-1f + a2 * (1.33333333e-1f + a2 * (-5.39682540e-2f +
             a2 * (2.18694885e-2f + a2 * (-8.86323552e-3f + a2 * (3.59212803e-3f +
             a2 * (-1.45583438e-3f + a2 * 5.90027440e-4f))))))));
    const float e = bnn__exp_nonpos(-2.0f * a);
    const float t = a < 0.55f ? p : (1.0f - e) / (1.0f + e);
    return copysignf(t, x);
}

static void tanh_forward(bnn__layer *l, float *y, const float *x, const float *w, int64_t b,
                         bool train, bnn_rng *rng) {
    const int64_t n = b * l->in;
    /* must stay vectorised (tests/vectorised.sh) */
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) y[i] = tanh_f(x[i]);
}

/* d tanh(x)/dx = 1 − tanh(x)² */
static void tanh_backward(bnn__layer *l, float *dx, float *dw, const float *dy, const float *x,
                          const float *y, const float *w, int64_t b) {
    const int64_t n = b * l->in;
    /* must stay vectorised (tests/vectorised.sh) */
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* Φ(x), the standard normal CDF, branchless (as tanh_f, and for the same reasons: libm's erff
 * is scalar here). Φ(x) = ½ erfc(−x/√2), and for z ≥ 0 erfc(z) = t·exp(−z² + P(t)) with
 * t = 1/(1 + z/2) and P the degree-9 Chebyshev fit of Numerical Recipes' erfcc (Press et al.,
 * Numerical Recipes in C, 2nd ed., §6.2: fractional error below 1.2e-7 for every z ≥ 0);
 * erfc(−z) = 2 − erfc(z). Taking the small side from erfc keeps Φ's relative accuracy for very
 * negative x, where 1 + erff(x/√2) cancelled (relative error 1e-5 at x = −3, and 0 below about
 * −5.5): now within 1.5e-6 of double down to −3 and 1.8e-5 down to −12 (every float checked),
 * where the float x² in the exponent limits it; 0 below about −13.2 (bnn__exp_nonpos). */
static inline float normal_cdf(float x) {
    const float z = fabsf(x) * 0.70710678f;
    const float t = 1.0f / (1.0f + 0.5f * z);
    const float p =
        -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
        t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f +
        t * (-0.82215223f + t * 0.17087277f))))))));
    const float c = t * bnn__exp_nonpos(p - z * z); /* erfc(z); p − z² is at most ~1e-8 */
    return 0.5f * (x < 0.0f ? c : 2.0f - c);
}

/* GELU(x) = x·Φ(x) with Φ the standard normal CDF (Hendrycks & Gimpel, 2016). */
static void gelu_forward(bnn__layer *l, float *y, const float *x, const float *w, int64_t b,
                         bool train, bnn_rng *rng) {
    const int64_t n = b * l->in;
    /* must stay vectorised (tests/vectorised.sh) */
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * normal_cdf(x[i]);
}

/* d GELU/dx = Φ(x) + x·φ(x) */
static void gelu_backward(bnn__layer *l, float *dx, float *dw, const float *dy, const float *x,
                          const float *y, const float *w, int64_t b) {
    const int64_t n = b * l->in;
    /* must stay vectorised (tests/vectorised.sh) */
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) {
        const float pdf = 0.39894228f * bnn__exp_nonpos(-0.5f * x[i] * x[i]);
        dx[i] = dy[i] * (normal_cdf(x[i]) + x[i] * pdf);
    }
}

const bnn__layer_vt bnn__relu_vt = {
    .kind = "relu", .torch = "ReLU", .elementwise = true, .nparams = no_params,
    .forward = relu_forward, .backward = relu_backward,
};
const bnn__layer_vt bnn__tanh_vt = {
    .kind = "tanh", .torch = "Tanh", .elementwise = true, .nparams = no_params,
    .forward = tanh_forward, .backward = tanh_backward,
};
const bnn__layer_vt bnn__gelu_vt = {
    .kind = "gelu", .torch = "GELU", .elementwise = true, .nparams = no_params,
    .forward = gelu_forward, .backward = gelu_backward,
};
