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

static void tanh_forward(bnn__layer *l, float *y, const float *x, const float *w, int64_t b,
                         bool train, bnn_rng *rng) {
    const int64_t n = b * l->in;
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

/* d tanh(x)/dx = 1 − tanh(x)² */
static void tanh_backward(bnn__layer *l, float *dx, float *dw, const float *dy, const float *x,
                          const float *y, const float *w, int64_t b) {
    const int64_t n = b * l->in;
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

/* GELU(x) = x·Φ(x) with Φ the standard normal CDF (Hendrycks & Gimpel, 2016). */
static void gelu_forward(bnn__layer *l, float *y, const float *x, const float *w, int64_t b,
                         bool train, bnn_rng *rng) {
    const int64_t n = b * l->in;
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

/* d GELU/dx = Φ(x) + x·φ(x) */
static void gelu_backward(bnn__layer *l, float *dx, float *dw, const float *dy, const float *x,
                          const float *y, const float *w, int64_t b) {
    const int64_t n = b * l->in;
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * x[i] * x[i]);
        dx[i] = dy[i] * (cdf + x[i] * pdf);
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
