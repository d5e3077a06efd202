/* IVON (Shen et al., "Variational Learning is Effective for Large Deep Networks", ICML 2024,
 * Algorithm 1), with the conventions of the official PyTorch implementation
 * (github.com/team-approx-bayes/ivon, v0.1.3) as recorded in fixtures/ivon: the noise scale, ĥ,
 * the correction term of the h update, the preconditioner and the δm term all use δ; the loss
 * itself carries no weight decay. Elementwise over flat vectors, so the OpenMP split cannot
 * change a result. */
#include "core/internal.h"

#include <math.h>

struct bnn_ivon_params bnn_ivon_default_params(void) {
    struct bnn_ivon_params p = {
        .lr = 0.1f,
        .ess = 0.0,
        .hess_init = 1.0f,
        .beta1 = 0.9,
        .beta2 = 0.99999,
        .weight_decay = 1e-4f,
        .mc_samples = 1,
        .clip_radius = INFINITY,
        .rescale_lr = true,
        .debias = true,
    };
    return p;
}

/* θ (n) = m + ε / √(λ (h + δ)) */
void bnn_ivon_sample(float *theta, const float *m, const float *h, const float *eps, int64_t n,
                     const struct bnn_ivon_params *p) {
    const float lam = (float)p->ess, wd = p->weight_decay;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) theta[i] = m[i] + eps[i] / sqrtf(lam * (h[i] + wd));
}

int bnn_ivon_step(float *m, float *h, float *g, const float *gbar, const float *geps, int64_t n,
                  int64_t t, const struct bnn_ivon_params *p) {
    BNN_ASSERT(t >= 1);
    const float lam = (float)p->ess, wd = p->weight_decay, r = p->clip_radius;
    /* Coefficients in double first: 1 − β2 for β2 = 0.99999 must not lose digits. */
    const float b1 = (float)p->beta1, omb1 = (float)(1.0 - p->beta1);
    const float b2 = (float)p->beta2, omb2 = (float)(1.0 - p->beta2);
    const float half_omb2_sq = (float)(0.5 * (1.0 - p->beta2) * (1.0 - p->beta2));
    const float debias = p->debias ? (float)(1.0 - pow(p->beta1, (double)t)) : 1.0f;
    const float alpha = p->rescale_lr ? p->lr * (p->hess_init + wd) : p->lr;
    int bad = 0;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) reduction(| : bad) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) {
        const float hi = h[i];
        /* ĥ = λ(h+δ) · mean_s (θ_s − m) ⊙ ĝ_s = √(λ(h+δ)) · mean_s ε_s ⊙ ĝ_s */
        const float hhat = sqrtf(lam * (hi + wd)) * geps[i];
        const float gi = b1 * g[i] + omb1 * gbar[i];
        const float d = hi - hhat;
        const float hn = b2 * hi + omb2 * hhat + half_omb2_sq * d * d / (hi + wd);
        float step = (gi / debias + wd * m[i]) / (hn + wd);
        step = step > r ? r : (step < -r ? -r : step);
        const float mi = m[i] - alpha * step;
        g[i] = gi, h[i] = hn, m[i] = mi;
        bad |= !(isfinite(mi) && isfinite(hn));
    }
    if (bad)
        return bnn__error(BNN_EDIVERGED, "IVON step %lld produced non-finite weights or Hessian",
                          (long long)t);
    return 0;
}
