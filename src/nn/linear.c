/* Fully connected layer y = x Wᵀ + b with W stored [out, in] row-major followed by b [out],
 * exactly PyTorch's nn.Linear layout, so flat vectors and files interoperate with it. */
#include "nn/layer.h"

#include <math.h>
#include <string.h>

static int64_t linear_nparams(const bnn__layer *l) { return l->out * l->in + l->out; }

/* PyTorch's default: kaiming_uniform_(a=√5) for W, which is U(−1/√in, 1/√in), and the same
 * bound for b (torch.nn.Linear.reset_parameters). */
static void linear_init(const bnn__layer *l, float *w, bnn_rng *rng) {
    int64_t n = linear_nparams(l);
    float bound = 1.0f / sqrtf((float)l->in);
    bnn_rng_uniform(rng, w, n);
    for (int64_t i = 0; i < n; i++) w[i] = (2.0f * w[i] - 1.0f) * bound;
}

/* y (b × out) = x (b × in) · Wᵀ + bias */
static void linear_forward(bnn__layer *l, float *y, const float *x, const float *w, int64_t b,
                           bool train, bnn_rng *rng) {
    const int64_t in = l->in, out = l->out;
    const float *bias = w + out * in;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (b * out > 65536)
#endif
    for (int64_t r = 0; r < b; r++) memcpy(y + r * out, bias, (size_t)out * sizeof(float));
    bnn_gemm(y, x, w, b, out, in, false, true, 1.0f, 1.0f);
}

void bnn__linear_moments(const bnn__layer *l, float *mean, float *var, const float *x,
                         const float *mu, const float *sig2, int64_t b, float *x2) {
    const int64_t in = l->in, out = l->out;
    for (int64_t r = 0; r < b; r++) {
        memcpy(mean + r * out, mu + out * in, (size_t)out * sizeof(float));
        memcpy(var + r * out, sig2 + out * in, (size_t)out * sizeof(float));
    }
    bnn_gemm(mean, x, mu, b, out, in, false, true, 1.0f, 1.0f);
    const int64_t n = b * in;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) x2[i] = x[i] * x[i];
    bnn_gemm(var, x2, sig2, b, out, in, false, true, 1.0f, 1.0f);
}

/* dW (out × in) += dyᵀ · x; db += Σ_rows dy; dx (b × in) = dy · W */
static void linear_backward(bnn__layer *l, float *dx, float *dw, const float *dy, const float *x,
                            const float *y, const float *w, int64_t b) {
    const int64_t in = l->in, out = l->out;
    bnn_gemm(dw, dy, x, out, in, b, true, false, 1.0f, 1.0f);
    float *db = dw + out * in;
    /* Column sums of dy, rows added in ascending order so the result is the same for any thread
     * count; the inner loop runs along a row, so it is contiguous and vectorises. */
    for (int64_t r = 0; r < b; r++) {
        const float *row = dy + r * out;
        /* must stay vectorised (tests/vectorised.sh) */
        for (int64_t j = 0; j < out; j++) db[j] += row[j];
    }
    if (dx) bnn_gemm(dx, dy, w, b, in, out, false, false, 1.0f, 0.0f);
}

const bnn__layer_vt bnn__linear_vt = {
    .kind = "linear",
    .torch = "Linear",
    .nparams = linear_nparams,
    .init = linear_init,
    .forward = linear_forward,
    .backward = linear_backward,
};
