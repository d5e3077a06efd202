/* Inverted dropout (Srivastava et al., JMLR 2014, as in PyTorch's nn.Dropout): in training each
 * feature is kept with probability 1 − p and scaled by 1/(1 − p); at evaluation it is the
 * identity. The mask is drawn from the caller's counter-based generator, so it is reproducible
 * and independent of the thread count. */
#include "nn/layer.h"

#include <string.h>

static int64_t no_params(const bnn__layer *l) { return 0; }

static int dropout_reserve(bnn__layer *l, int64_t max_batch) {
    bnn__free(l->scratch);
    size_t bytes = bnn__bytes(max_batch * l->in, sizeof(float));
    l->scratch = bytes ? bnn__alloc(bytes) : NULL;
    if (!l->scratch) return bnn__error(BNN_ENOMEM, "cannot allocate a dropout mask for %lld rows",
                                       (long long)max_batch);
    return 0;
}

static void dropout_release(bnn__layer *l) {
    bnn__free(l->scratch);
    l->scratch = NULL;
}

/* y (b × in) = x ⊙ mask, mask ∈ {0, 1/(1−p)} */
static void dropout_forward(bnn__layer *l, float *y, const float *x, const float *w, int64_t b,
                            bool train, bnn_rng *rng) {
    const int64_t n = b * l->in;
    l->active = train && l->rate > 0.0f;
    if (!l->active) {
        memcpy(y, x, (size_t)n * sizeof(float));
        return;
    }
    BNN_ASSERT(rng != NULL);
    float *mask = l->scratch;
    const float keep = 1.0f - l->rate, scale = 1.0f / keep;
    bnn_rng_uniform(rng, mask, n);
    for (int64_t i = 0; i < n; i++) {
        mask[i] = mask[i] < keep ? scale : 0.0f;
        y[i] = x[i] * mask[i];
    }
}

static void dropout_backward(bnn__layer *l, float *dx, float *dw, const float *dy, const float *x,
                             const float *y, const float *w, int64_t b) {
    const int64_t n = b * l->in;
    if (!l->active) {
        memcpy(dx, dy, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * l->scratch[i];
}

const bnn__layer_vt bnn__dropout_vt = {
    .kind = "dropout",
    .torch = "Dropout",
    .elementwise = true,
    .nparams = no_params,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .reserve = dropout_reserve,
    .release = dropout_release,
};
