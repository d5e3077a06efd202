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

/* σ = 1/√(λ (h + δ)), the posterior standard deviation of one weight. Sampling and the update
 * both use exactly this expression, so a σ kept from the update equals one computed afresh. */
static inline float ivon_sigma(float lam, float h, float wd) { return 1.0f / sqrtf(lam * (h + wd)); }

/* θ (n) = m + ε ⊙ σ(h) */
void bnn_ivon_sample(float *theta, const float *m, const float *h, const float *eps, int64_t n,
                     const struct bnn_ivon_params *p) {
    const float lam = (float)p->ess, wd = p->weight_decay;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) theta[i] = m[i] + eps[i] * ivon_sigma(lam, h[i], wd);
}

/* θ (n) = m + ε ⊙ σ with σ kept by bnn__ivon_update: the same numbers as bnn_ivon_sample, one
 * multiply-add per weight instead of a square root and a division. */
void bnn__ivon_sample_sigma(float *theta, const float *m, const float *sigma, const float *eps,
                            int64_t n) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) theta[i] = m[i] + eps[i] * sigma[i];
}

void bnn__ivon_sigma(float *sigma, const float *h, int64_t n, const struct bnn_ivon_params *p) {
    const float lam = (float)p->ess, wd = p->weight_decay;
    for (int64_t i = 0; i < n; i++) sigma[i] = ivon_sigma(lam, h[i], wd);
}

/* One weight's update, written as a macro over local constants: with the constants in a struct
 * or behind a pointer, GCC assumes the stores to m, h and g may change them and does not
 * vectorise. GE is mean_s ε_s ⊙ ĝ_s for weight i; SIG runs after the update (it may use hn_).
 *   ĥ = λ(h+δ) · mean_s (θ_s − m) ⊙ ĝ_s = √(λ(h+δ)) · mean_s ε_s ⊙ ĝ_s
 *   g ← β1 g + (1−β1) ḡ;  h ← β2 h + (1−β2) ĥ + ½(1−β2)²(h − ĥ)²/(h + δ)
 *   m ← m − α clip((g/(1−β1^t) + δ m)/(h + δ), −r, r) */
#define IVON_ELEM(GE, SIG)                                                                        \
    do {                                                                                       \
        const float hi_ = h[i];                                                                \
        const float hhat_ = sqrtf(lam * (hi_ + wd)) * (GE);                                    \
        const float gi_ = b1 * g[i] + omb1 * gbar[i];                                          \
        const float d_ = hi_ - hhat_;                                                          \
        const float hn_ = b2 * hi_ + omb2 * hhat_ + half_omb2_sq * d_ * d_ / (hi_ + wd);        \
        float step_ = (gi_ / debias + wd * m[i]) / (hn_ + wd);                                 \
        step_ = step_ > r ? r : (step_ < -r ? -r : step_);                                     \
        const float mi_ = m[i] - alpha * step_;                                                \
        g[i] = gi_, h[i] = hn_, m[i] = mi_;                                                    \
        SIG;                                                                                   \
        bad |= !(isfinite(mi_) && isfinite(hn_));                                              \
    } while (0)

/* The loop variants are written out separately (rather than branching inside one loop) so that
 * each vectorises, and "simd" tells GCC the iterations are independent (without it GCC 12 keeps
 * these loops scalar); they share IVON_ELEM, so they compute the same numbers. */
#if defined(BNN_HAVE_OPENMP)
#define IVON_LOOP _Pragma("omp parallel for simd schedule(static) reduction(| : bad) if (n > 32768)")
#else
#define IVON_LOOP
#endif

int bnn__ivon_update(float *restrict m, float *restrict h, float *restrict g,
                     float *restrict sigma, const float *restrict gbar,
                     const float *restrict geps, const float *restrict eps, int64_t n, int64_t t,
                     const struct bnn_ivon_params *p) {
    BNN_ASSERT(t >= 1 && (geps || eps));
    const float lam = (float)p->ess, wd = p->weight_decay, r = p->clip_radius;
    /* Coefficients in double first: 1 − β2 for β2 = 0.99999 must not lose digits. */
    const float b1 = (float)p->beta1, omb1 = (float)(1.0 - p->beta1);
    const float b2 = (float)p->beta2, omb2 = (float)(1.0 - p->beta2);
    const float half_omb2_sq = (float)(0.5 * (1.0 - p->beta2) * (1.0 - p->beta2));
    const float debias = p->debias ? (float)(1.0 - pow(p->beta1, (double)t)) : 1.0f;
    const float alpha = p->rescale_lr ? p->lr * (p->hess_init + wd) : p->lr;
    int bad = 0;
    if (geps && !sigma) {
        IVON_LOOP
        for (int64_t i = 0; i < n; i++) IVON_ELEM(geps[i], (void)0);
    } else if (geps) {
        IVON_LOOP
        for (int64_t i = 0; i < n; i++) IVON_ELEM(geps[i], sigma[i] = ivon_sigma(lam, hn_, wd));
    } else {
        /* One sample: mean_s ε_s ⊙ ĝ_s is ε ⊙ ḡ, formed here instead of in its own pass. */
        BNN_ASSERT(sigma != NULL);
        IVON_LOOP
        for (int64_t i = 0; i < n; i++)
            IVON_ELEM(eps[i] * gbar[i], sigma[i] = ivon_sigma(lam, hn_, wd));
    }
    if (bad)
        return bnn__error(BNN_EDIVERGED, "IVON step %lld produced non-finite weights or Hessian",
                          (long long)t);
    return 0;
}

int bnn_ivon_step(float *m, float *h, float *g, const float *gbar, const float *geps, int64_t n,
                  int64_t t, const struct bnn_ivon_params *p) {
    return bnn__ivon_update(m, h, g, NULL, gbar, geps, NULL, n, t, p);
}
