/* MAP optimizers as plain loops over flat vectors (DESIGN.md "Flat parameters"): the weights,
 * the gradient and every state vector share one layout, so an optimizer never needs to know the
 * model. Each element is independent, so the OpenMP split cannot change the result. */
#include "core/internal.h"

#include <math.h>

#if defined(BNN_HAVE_OPENMP)
#define BNN_OMP_FOR _Pragma("omp parallel for schedule(static) reduction(| : bad) if (n > 16384)")
#else
#define BNN_OMP_FOR
#endif

/* A step's weights, checked in its own loop (a comparison per weight, no second pass): an
 * overflowing update is caught at the step that made it, as IVON's is, whether or not the loss
 * shows it (an infinite weight behind a ReLU that is off leaves the loss finite). */
static int diverged(int bad, const char *fn, int64_t t) {
    return bad ? bnn__error(BNN_EDIVERGED, "%s's update at t = %lld produced non-finite weights "
                            "or moments", fn, (long long)t)
               : 0;
}

struct bnn_sgd_params bnn_sgd_default_params(void) {
    struct bnn_sgd_params p = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.0f,
                               .dampening = 0.0f, .nesterov = false};
    return p;
}

/* torch.optim.SGD (PyTorch 2.x, foreach=False path): weight decay is added to the gradient, the
 * momentum buffer starts as the first gradient, dampening applies from the second step. */
int bnn_sgd_step(float *w, float *buf, const float *g, int64_t n, int64_t t,
                 const struct bnn_sgd_params *p) {
    if (!w || !g || !p || (p->momentum != 0.0f && !buf) || n < 0 || t < 1)
        return bnn__error(BNN_EINVAL, "bnn_sgd_step: w, g, p (and buf with momentum) are "
                          "required, n >= 0 and the step t >= 1 (got n %lld, t %lld)",
                          (long long)n, (long long)t);
    /* torch.optim.SGD's own checks (lr, momentum, weight decay >= 0; Nesterov needs momentum
     * and no dampening), and finite values: a bad setting is named and w left untouched. */
    if (!(p->lr >= 0.0f) || !isfinite(p->lr) || !(p->momentum >= 0.0f) || !(p->momentum <= 1.0f) ||
        !(p->weight_decay >= 0.0f) || !isfinite(p->weight_decay) || !(p->dampening >= 0.0f) ||
        !(p->dampening <= 1.0f) || (p->nesterov && (p->momentum <= 0.0f || p->dampening != 0.0f)))
        return bnn__error(BNN_EINVAL, "bnn_sgd_step: need finite lr >= 0 (got %g), momentum and "
                          "dampening in [0, 1] (got %g, %g), weight decay >= 0 (got %g), and for "
                          "Nesterov momentum > 0 with no dampening", (double)p->lr,
                          (double)p->momentum, (double)p->dampening, (double)p->weight_decay);
    const float lr = p->lr, mom = p->momentum, wd = p->weight_decay, damp = 1.0f - p->dampening;
    const bool first = t <= 1, nesterov = p->nesterov;
    int bad = 0;
    /* must stay vectorised (tests/vectorised.sh) */
    BNN_OMP_FOR
    for (int64_t i = 0; i < n; i++) {
        float d = g[i] + wd * w[i];
        if (mom != 0.0f) {
            float b = first ? d : flush_subnormal(mom * buf[i] + damp * d);
            buf[i] = b;
            d = nesterov ? d + mom * b : b;
        }
        w[i] -= lr * d;
        bad |= !isfinite(w[i]);
    }
    return diverged(bad, "SGD", t);
}

struct bnn_adamw_params bnn_adamw_default_params(void) {
    struct bnn_adamw_params p = {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                                 .weight_decay = 1e-2};
    return p;
}

/* torch.optim.AdamW (single-tensor path), in its order of operations: decoupled decay
 * w ← w·(1 − lr·wd); m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
 * w ← w − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps). */
int bnn_adamw_step(float *w, float *m, float *v, const float *g, int64_t n, int64_t t,
                   const struct bnn_adamw_params *p) {
    if (!w || !m || !v || !g || !p || n < 0 || t < 1)
        return bnn__error(BNN_EINVAL, "bnn_adamw_step: w, m, v, g and p are required, n >= 0 and "
                          "the step t >= 1 (got n %lld, t %lld)", (long long)n, (long long)t);
    /* torch.optim.AdamW's own checks (lr, eps, weight decay >= 0; 0 <= beta < 1), and finite
     * values: a bad setting is named and w, m, v left untouched. */
    if (!(p->lr >= 0.0) || !isfinite(p->lr) || !(p->eps >= 0.0) || !isfinite(p->eps) ||
        !(p->beta1 >= 0.0) || !(p->beta1 < 1.0) || !(p->beta2 >= 0.0) || !(p->beta2 < 1.0) ||
        !(p->weight_decay >= 0.0) || !isfinite(p->weight_decay))
        return bnn__error(BNN_EINVAL, "bnn_adamw_step: need finite lr, eps and weight decay >= 0 "
                          "and betas in [0, 1) (got lr %g, eps %g, weight decay %g, betas %g, %g)",
                          p->lr, p->eps, p->weight_decay, p->beta1, p->beta2);
    /* Each factor as PyTorch has it (its Python floats rounded to the tensor's float once): 1 − β2
     * formed in float from a float β2 would be 1.3e-5 off. */
    const float b1 = (float)p->beta1, c1 = (float)(1.0 - p->beta1);
    const float b2 = (float)p->beta2, c2 = (float)(1.0 - p->beta2), eps = (float)p->eps;
    const float decay = (float)(1.0 - p->lr * p->weight_decay);
    const double bc1 = 1.0 - pow(p->beta1, (double)t), bc2 = 1.0 - pow(p->beta2, (double)t);
    const float step = (float)(p->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    int bad = 0;
    /* must stay vectorised (tests/vectorised.sh) */
    BNN_OMP_FOR
    for (int64_t i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float mi = flush_subnormal(b1 * m[i] + c1 * g[i]);
        float vi = b2 * v[i] + c2 * g[i] * g[i];
        m[i] = mi, v[i] = vi;
        w[i] = wi - step * mi / (sqrtf(vi) / bc2_sqrt + eps);
        /* A gradient beyond ~1.8e19 overflows g² to Inf: the step m/√v is then 0 and the weight
         * would stop moving for good, with every number finite. */
        bad |= !isfinite(w[i]) || !isfinite(vi);
    }
    return diverged(bad, "AdamW", t);
}
