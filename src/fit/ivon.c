/* IVON (Shen et al., "Variational Learning is Effective for Large Deep Networks", ICML 2024,
 * Algorithm 1), with the conventions of the official PyTorch implementation
 * (github.com/team-approx-bayes/ivon, v0.1.3) as recorded in fixtures/ivon: the noise scale, ĥ,
 * the correction term of the h update, the preconditioner and the δm term all use δ; the loss
 * itself carries no weight decay. Elementwise over flat vectors, so the OpenMP split cannot
 * change a result. */
#include "core/internal.h"

#include <math.h>
#include <string.h>

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

/* σ = 1/√(λ (h + δ)), the posterior standard deviation of one weight, formed as √(r/λ) from
 * r = 1/(h + δ): the fused step needs r for its own update, so there σ costs one square root.
 * Every sampler here uses this one expression, so a θ drawn inside the step has the same bits as
 * one drawn afresh from the same m, h and noise (which is what makes resuming exact). */
static inline float ivon_sigma_r(float inv_lam, float r) { return sqrtf(r * inv_lam); }
static inline float ivon_sigma(float inv_lam, float h, float wd) {
    return ivon_sigma_r(inv_lam, 1.0f / (h + wd));
}
static inline float inv_ess(const struct bnn_ivon_params *p) { return (float)(1.0 / p->ess); }

/* What a direct call needs (the trainer passes the data size as ess). */
static int check_ivon(const char *fn, const struct bnn_ivon_params *p, int64_t n) {
    if (!p || n < 0)
        return bnn__error(BNN_EINVAL, "%s: params are required and n >= 0", fn);
    if (!(p->ess > 0.0) || !isfinite(p->ess))
        return bnn__error(BNN_EINVAL, "%s: ess (lambda) must be positive and finite, got %g (the "
                          "default 0 stands for the data size, which only the trainer knows)",
                          fn, p->ess);
    /* The settings the trainer checks, for a direct call too: β1 = 1 divided by 1 − β1^t = 0
     * and wrote NaN into m, h and g before reporting a divergence. */
    if (!(p->beta1 >= 0.0 && p->beta1 < 1.0) || !(p->beta2 >= 0.0 && p->beta2 < 1.0))
        return bnn__error(BNN_EINVAL, "%s: beta1 and beta2 must be in [0, 1) (got %g, %g)", fn,
                          p->beta1, p->beta2);
    if (!(p->weight_decay >= 0.0f) || !isfinite(p->weight_decay) || !isfinite(p->lr) ||
        !(p->clip_radius > 0.0f) || (p->rescale_lr && !(p->hess_init > 0.0f)))
        return bnn__error(BNN_EINVAL, "%s: weight decay must be >= 0 and finite, lr finite, the "
                          "clip radius > 0 (inf for none) and hess_init > 0", fn);
    return 0;
}

int bnn_ivon_sample(float *theta, const float *m, const float *h, const float *eps, int64_t n,
                    const struct bnn_ivon_params *p) {
    if (!theta || !m || !h || !eps)
        return bnn__error(BNN_EINVAL, "bnn_ivon_sample: theta, m, h and eps are required");
    const int rc = check_ivon("bnn_ivon_sample", p, n);
    if (rc) return rc;
    const float il = inv_ess(p), wd = p->weight_decay;
    int bad = 0;
    /* must stay vectorised (tests/vectorised.sh) */
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) {
        theta[i] = m[i] + eps[i] * ivon_sigma(il, h[i], wd);
        bad |= !(h[i] + wd > 0.0f); /* no σ: the step refuses to make such an h */
    }
    if (bad)
        return bnn__error(BNN_EINVAL, "bnn_ivon_sample: a Hessian estimate h with h + delta <= 0 "
                          "(or NaN) has no sigma (theta is then partly NaN)");
    return 0;
}

/* Loops over the weights in chunks of the generator's BNN_RNG_CHUNK values: each chunk's noise is
 * drawn into a buffer on the stack (it stays in L1) and used at once, so the noise never makes a
 * trip through memory. Chunks are independent, so the thread split cannot change a value. */

/* Draws chunk c of the noise into e; returns its length and its first weight in *lo. */
static inline int64_t noise_chunk(float *e, const bnn_rng *rng, int64_t c, int64_t n, int64_t *lo) {
    bnn__rng_normal_chunk(e, rng, c);
    *lo = c * BNN_RNG_CHUNK;
    return n - *lo < BNN_RNG_CHUNK ? n - *lo : BNN_RNG_CHUNK;
}

void bnn__ivon_draw(float *restrict theta, float *restrict eps, float *restrict nu,
                    const float *restrict m, const float *restrict h, int64_t n,
                    const struct bnn_ivon_params *p, bnn_rng *rng) {
    const float il = inv_ess(p), wd = p->weight_decay;
    const int64_t chunks = (n + BNN_RNG_CHUNK - 1) / BNN_RNG_CHUNK;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n > 32768)
#endif
    for (int64_t c = 0; c < chunks; c++) {
        float e[BNN_RNG_CHUNK];
        int64_t lo;
        const int64_t len = noise_chunk(e, rng, c, n, &lo);
        float *restrict th = theta + lo;
        const float *restrict mc = m + lo, *restrict hc = h + lo;
        if (eps) memcpy(eps + lo, e, (size_t)len * sizeof(float));
        /* e becomes ν = ε ⊙ σ, the noise that θ adds to m */
        /* must stay vectorised (tests/vectorised.sh) */
#if defined(BNN_HAVE_OPENMP) || defined(BNN_HAVE_OMP_SIMD)
#pragma omp simd
#endif
        for (int64_t j = 0; j < len; j++) {
            e[j] *= ivon_sigma(il, hc[j], wd);
            th[j] = mc[j] + e[j];
        }
        if (nu) memcpy(nu + lo, e, (size_t)len * sizeof(float));
    }
    rng->counter += (uint64_t)((n + 3) / 4);
}

int bnn__ivon_step_draw(float *restrict m, float *restrict h, float *restrict g,
                        float *restrict theta, float *restrict nu, float *restrict gbar,
                        int64_t n, int64_t t, const struct bnn_ivon_params *p, bnn_rng *rng) {
    BNN_ASSERT(t >= 1);
    const float lam = (float)p->ess, il = inv_ess(p), wd = p->weight_decay, r = p->clip_radius;
    const float b1 = (float)p->beta1, omb1 = (float)(1.0 - p->beta1);
    const float b2 = (float)p->beta2, omb2 = (float)(1.0 - p->beta2);
    const float half_omb2_sq = (float)(0.5 * (1.0 - p->beta2) * (1.0 - p->beta2));
    /* 1/(1 − β1^t) as a factor: a division per weight costs as much as a memory stream here. */
    const float undebias = p->debias ? (float)(1.0 / (1.0 - pow(p->beta1, (double)t))) : 1.0f;
    const float alpha = p->rescale_lr ? p->lr * (p->hess_init + wd) : p->lr;
    const int64_t chunks = (n + BNN_RNG_CHUNK - 1) / BNN_RNG_CHUNK;
    int bad = 0;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) reduction(| : bad) if (n > 32768)
#endif
    for (int64_t c = 0; c < chunks; c++) {
        float e[BNN_RNG_CHUNK];
        int64_t lo;
        const int64_t len = noise_chunk(e, rng, c, n, &lo);
        float *restrict mc = m + lo, *restrict hc = h + lo, *restrict gc = g + lo;
        float *restrict th = theta + lo, *restrict nc = nu + lo;
        float *restrict gb = gbar + lo;
        /* must stay vectorised (tests/vectorised.sh) */
#if defined(BNN_HAVE_OPENMP) || defined(BNN_HAVE_OMP_SIMD)
#pragma omp simd reduction(| : bad)
#endif
        for (int64_t j = 0; j < len; j++) {
            const float hi = hc[j], mi = mc[j], gi = gb[j];
            /* ĥ = ĝ ν/σ² with σ² = 1/(λ(h + δ)) and ν = ε σ the noise that θ added to m. Not
             * θ − m: that is ν rounded to the spacing of floats around m, whose error divided by
             * σ² is comparable to h once σ is a few thousand ulps of m (after one epoch of a 3-8-3
             * network, h off by 0.7% at ess 1e8 and by 27% at 1e10). The official implementation
             * also multiplies the gradient by its noise tensor. */
            const float hhat = lam * (hi + wd) * (nc[j] * gi);
            const float mom = flush_subnormal(b1 * gc[j] + omb1 * gi);
            const float d = hi - hhat;
            const float hn = b2 * hi + omb2 * hhat + half_omb2_sq * d * d / (hi + wd);
            const float rn = 1.0f / (hn + wd);
            float step = (mom * undebias + wd * mi) * rn;
            step = step > r ? r : (step < -r ? -r : step);
            const float mn = mi - alpha * step;
            const float nj = e[j] * ivon_sigma_r(il, rn);
            gc[j] = mom, hc[j] = hn, mc[j] = mn, gb[j] = 0.0f;
            nc[j] = nj, th[j] = mn + nj;
            /* h + δ > 0 in exact arithmetic; in float (d·d underflowing, h0 ~1e-33 with δ = 0)
             * it can come out ≤ 0, which has no σ. Bitwise, not &&: a branch in the loop stops
             * GCC vectorising it; and isfinite's "non-zero" made 0 or 1 first, since two
             * different non-zero values could AND to 0. */
            bad |= !((isfinite(mn) != 0) & (isfinite(hn) != 0) & (hn + wd > 0.0f));
        }
    }
    rng->counter += (uint64_t)((n + 3) / 4);
    if (bad)
        return bnn__error(BNN_EDIVERGED, "IVON's update at t = %lld produced non-finite "
                          "weights or a Hessian estimate h with h + delta <= 0", (long long)t);
    return 0;
}

/* One weight's update (bnn_ivon_step), written as a macro over local constants: with the
 * constants in a struct or behind a pointer, GCC assumes the stores to m, h and g may change them
 * and does not vectorise. GE is mean_s ε_s ⊙ ĝ_s for weight i.
 *   ĥ = λ(h+δ) · mean_s (θ_s − m) ⊙ ĝ_s = √(λ(h+δ)) · mean_s ε_s ⊙ ĝ_s
 *   g ← β1 g + (1−β1) ḡ;  h ← β2 h + (1−β2) ĥ + ½(1−β2)²(h − ĥ)²/(h + δ)
 *   m ← m − α clip((g/(1−β1^t) + δ m)/(h + δ), −r, r) */
int bnn_ivon_step(float *restrict m, float *restrict h, float *restrict g,
                  const float *restrict gbar, const float *restrict geps, int64_t n, int64_t t,
                  const struct bnn_ivon_params *p) {
    if (!m || !h || !g || !gbar || !geps || t < 1)
        return bnn__error(BNN_EINVAL, "bnn_ivon_step: m, h, g, gbar and geps are required and "
                          "the step t >= 1 (got %lld)", (long long)t);
    const int rc0 = check_ivon("bnn_ivon_step", p, n);
    if (rc0) return rc0;
    const float lam = (float)p->ess, wd = p->weight_decay, r = p->clip_radius;
    /* Coefficients in double first: 1 − β2 for β2 = 0.99999 must not lose digits. */
    const float b1 = (float)p->beta1, omb1 = (float)(1.0 - p->beta1);
    const float b2 = (float)p->beta2, omb2 = (float)(1.0 - p->beta2);
    const float half_omb2_sq = (float)(0.5 * (1.0 - p->beta2) * (1.0 - p->beta2));
    const float debias = p->debias ? (float)(1.0 - pow(p->beta1, (double)t)) : 1.0f;
    const float alpha = p->rescale_lr ? p->lr * (p->hess_init + wd) : p->lr;
    int bad = 0;
    /* "simd" tells GCC the iterations are independent (without it GCC 12 keeps this scalar);
     * must stay vectorised (tests/vectorised.sh) */
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (n > 32768)
#endif
    for (int64_t i = 0; i < n; i++) {
        const float hi = h[i];
        const float hhat = sqrtf(lam * (hi + wd)) * geps[i];
        const float mom = flush_subnormal(b1 * g[i] + omb1 * gbar[i]);
        const float d = hi - hhat;
        const float hn = b2 * hi + omb2 * hhat + half_omb2_sq * d * d / (hi + wd);
        float step = (mom / debias + wd * m[i]) / (hn + wd);
        step = step > r ? r : (step < -r ? -r : step);
        const float mn = m[i] - alpha * step;
        g[i] = mom, h[i] = hn, m[i] = mn;
        bad |= !((isfinite(mn) != 0) & (isfinite(hn) != 0) & (hn + wd > 0.0f));
    }
    if (bad)
        return bnn__error(BNN_EDIVERGED, "IVON's update at t = %lld produced non-finite "
                          "weights or a Hessian estimate h with h + delta <= 0", (long long)t);
    return 0;
}
