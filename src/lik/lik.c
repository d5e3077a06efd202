/* Likelihoods: the loss of a mini-batch and its gradient with respect to the network output. */
#include "core/internal.h"

#include <math.h>

/* Softmax cross-entropy, computed by log-sum-exp in double: loss_r = lse(f_r) − f_r[y_r];
 * ∂/∂f_r = (softmax(f_r) − e_{y_r}) / b. */
static double categorical(float *dout, const float *f, const int32_t *labels, int64_t b,
                          int64_t k) {
    double total = 0.0;
    for (int64_t r = 0; r < b; r++) {
        const float *row = f + r * k;
        double mx = row[0];
        for (int64_t j = 1; j < k; j++)
            if (row[j] > mx) mx = row[j];
        double s = 0.0;
        for (int64_t j = 0; j < k; j++) s += exp((double)row[j] - mx);
        double lse = mx + log(s);
        int32_t y = labels[r];
        BNN_ASSERT(y >= 0 && y < k);
        total += lse - (double)row[y];
        if (dout) {
            float *d = dout + r * k;
            for (int64_t j = 0; j < k; j++)
                d[j] = (float)((exp((double)row[j] - lse) - (j == y ? 1.0 : 0.0)) / (double)b);
        }
    }
    return total / (double)b;
}

/* Gaussian with fixed noise σ: loss_r = Σ_j (f − y)²/(2σ²) + log σ + ½ log 2π;
 * ∂/∂f = (f − y) / (σ² b). */
static double gaussian(float *dout, const float *f, const float *targets, int64_t b, int64_t k,
                       double sigma) {
    const double inv_var = 1.0 / (sigma * sigma);
    const double c = log(sigma) + 0.5 * log(2.0 * 3.14159265358979323846);
    double total = 0.0;
    for (int64_t i = 0; i < b * k; i++) {
        double r = (double)f[i] - (double)targets[i];
        total += 0.5 * r * r * inv_var + c;
        if (dout) dout[i] = (float)(r * inv_var / (double)b);
    }
    return total / (double)b;
}

double bnn_lik_loss(const bnn_lik *lik, float *dout, const float *f, const int32_t *labels,
                    const float *targets, int64_t b, int64_t k) {
    BNN_ASSERT(b >= 1 && k >= 1);
    switch (lik->kind) {
    case BNN_LIK_CATEGORICAL: return categorical(dout, f, labels, b, k);
    case BNN_LIK_GAUSSIAN: return gaussian(dout, f, targets, b, k, lik->sigma);
    }
    BNN_ASSERT(!"unknown likelihood");
    return NAN;
}
