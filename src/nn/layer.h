/* The layer vtable. A layer maps a batch of b rows of `in` features to b rows of `out`
 * features; layers with weights own a contiguous slice of the model's flat parameter vector.
 * New layer kinds (conv2d, layer norm, attention) add a vtable here without touching the
 * existing ones; the curvature pass of later issues reads each Linear layer's cached input and
 * output gradient at the model level, so it needs no new vtable entry either. */
#ifndef BNN_LAYER_H
#define BNN_LAYER_H

#include "core/internal.h"

typedef struct bnn__layer bnn__layer;

typedef struct bnn__layer_vt {
    const char *kind;     /* "linear", "relu", ... */
    const char *torch;    /* the PyTorch module it corresponds to, for `bnn info` */
    /* Output j depends on input j alone (activations, dropout): the layer's Jacobian is diagonal,
     * and backward with dy = 1 writes it. The matrix-free curvature products (src/fit/
     * curvature.c) push tangents through such layers with it; a layer kind that is neither this
     * nor Linear needs its own tangent rule there. */
    bool elementwise;
    /* Number of parameters the layer owns in the flat vector (0 for parameter-free layers). */
    int64_t (*nparams)(const bnn__layer *l);
    /* Draws the initial weights w (nparams floats). May be NULL for parameter-free layers. */
    void (*init)(const bnn__layer *l, float *w, bnn_rng *rng);
    /* y (b × out) from x (b × in) with weights w. */
    void (*forward)(bnn__layer *l, float *y, const float *x, const float *w, int64_t b, bool train,
                    bnn_rng *rng);
    /* Given dy = ∂loss/∂y (b × out) and the cached forward input x and output y: ADDS ∂loss/∂w
     * into dw (may be NULL for parameter-free layers) and, when dx is not NULL, writes
     * ∂loss/∂x (b × in) into dx. */
    void (*backward)(bnn__layer *l, float *dx, float *dw, const float *dy, const float *x,
                     const float *y, const float *w, int64_t b);
    /* Optional per-layer scratch for batches of up to max_batch rows (e.g. a dropout mask). */
    int (*reserve)(bnn__layer *l, int64_t max_batch);
    void (*release)(bnn__layer *l);
} bnn__layer_vt;

struct bnn__layer {
    const bnn__layer_vt *vt;
    int64_t in, out; /* features per example */
    int64_t off;     /* offset of the layer's parameters in the flat vector */
    float rate;      /* dropout probability */
    float *scratch;  /* layer-owned scratch from reserve() */
    bool active;     /* dropout: whether the last forward applied a mask */
};

extern const bnn__layer_vt bnn__linear_vt;
extern const bnn__layer_vt bnn__relu_vt;
extern const bnn__layer_vt bnn__tanh_vt;
extern const bnn__layer_vt bnn__gelu_vt;
extern const bnn__layer_vt bnn__dropout_vt;

/* The output moments of Linear layer l for b inputs x under independent Gaussian weights with
 * means mu and variances sig2 (both in the layer's [W (out × in), b (out)] layout): mean =
 * x μ_Wᵀ + μ_b and var = (x∘x) σ²_Wᵀ + σ²_b (b × out each), the exact Gaussian of each output
 * (local reparameterisation: Kingma, Salimans & Welling, NeurIPS 2015). x2 is scratch of b × in
 * and holds x∘x afterwards. Mean-field VI trains with it; prediction from a diagonal posterior
 * may draw the first layer's outputs with it. */
void bnn__linear_moments(const bnn__layer *l, float *mean, float *var, const float *x,
                         const float *mu, const float *sig2, int64_t b, float *x2);

#endif
