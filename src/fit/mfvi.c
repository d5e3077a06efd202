/* Mean-field variational inference, "Bayes by backprop" (Blundell, Cornebise, Kavukcuoglu &
 * Wierstra, "Weight Uncertainty in Neural Networks", ICML 2015): every weight has
 * q(w) = N(μ, σ²) with σ = softplus(ρ) (their Sec. 3.2), and we minimise the negative ELBO per
 * example, E_q[mean NLL of the batch] + kl_weight · KL(q ‖ p) / n_train, with the prior
 * p = N(0, 1/prior_prec) whose KL is in closed form.
 *
 * Linear layers use the local reparameterisation trick (Kingma, Salimans & Welling, "Variational
 * Dropout and the Local Reparameterization Trick", NeurIPS 2015, Sec. 2.3 and eq. 6): instead of
 * sampling a weight matrix we sample every pre-activation from its exact Gaussian,
 *   γ = x μ_Wᵀ + μ_b,   δ = (x∘x)(σ_W∘σ_W)ᵀ + σ_b²,   y = γ + √δ ∘ ε,   ε ~ N(0, 1),
 * which costs one extra GEMM, gives each example of the batch its own weight sample and so a
 * lower-variance gradient. The backward pass, with dy = ∂L/∂y:
 *   ∂L/∂γ = dy,   ∂L/∂δ = dy ∘ ε / (2√δ) =: dδ,
 *   ∂L/∂μ_W = dyᵀ x,   ∂L/∂μ_b = Σ_rows dy,
 *   ∂L/∂σ_W² = dδᵀ (x∘x),   ∂L/∂σ_b² = Σ_rows dδ,   ∂L/∂ρ = 2σ · sigmoid(ρ) · ∂L/∂σ²,
 *   ∂L/∂x = dy μ_W + 2 x ∘ (dδ σ_W²).
 * Parameter-free layers (activations, dropout) run their ordinary vtable forward and backward.
 * The KL gradient follows from KL = ½ Σ [λ(σ² + μ²) − 1 − log λ − 2 log σ]:
 * ∂KL/∂μ = λμ and ∂KL/∂σ = λσ − 1/σ, with λ = prior_prec.
 *
 * Memory. The variance GEMM needs σ² laid out as a matrix (and the backward pass ∂σ²/∂ρ, kept
 * so that a step evaluates softplus once per weight), and the backward pass needs, per Linear
 * layer, the factor ε/(2√δ) of the forward pass. None of it fits into the model's buffers: its
 * activations are all live until the backward pass reaches them (ReLU and tanh read their
 * output, GELU its input, the next Linear layer its input), and its two gradient buffers are
 * max_batch × widest layer, smaller than a weight matrix. The API has no handle to own a
 * workspace, so each call allocates one block (2·nparams + b·Σ out floats) and frees it before
 * returning; the model's activation and gradient buffers serve for everything else (x∘x, δ, the
 * noise of a prediction, ∂L/∂activations). A handle (bnn_mfvi_new(m, max_batch)) owning the
 * block would remove the per-step allocation; the header does not have one yet. */
#include "nn/layer.h"

#include <math.h>
#include <string.h>

#if defined(BNN_HAVE_OPENMP)
#define BNN_OMP_ELEMENTWISE _Pragma("omp parallel for schedule(static) if (n > 32768)")
#else
#define BNN_OMP_ELEMENTWISE
#endif

/* The smallest σ used. Below it σ² would be a subnormal or zero in float, and then δ = σ_b² +
 * ... could be 0 for an input of zeros, making ε/(2√δ) infinite. 2⁻⁶³ gives σ² = 2⁻¹²⁶ =
 * FLT_MIN exactly, so δ ≥ FLT_MIN and ε/(2√δ) ≤ |ε|·2⁶² stays finite. softplus(ρ) falls below it
 * only for ρ < −43.7, far beyond any useful σ; there σ is held at this value (forward pass and
 * KL), while ∂σ/∂ρ keeps its unclamped value sigmoid(ρ). The KL's pull on ρ fades with it, as
 * e^ρ (1.7e-17 at ρ = −80, exactly 0 below −87): a ρ that far down stays there, so an initial σ
 * below this floor is refused (bnn_trainer_new) rather than held at it. */
#define MFVI_SIGMA_MIN BNN_MFVI_MIN_STD

/* The KL is summed in double over fixed blocks of this many weights, each block in index order,
 * then the blocks in order: the blocks can run on any number of threads and the sum is the same
 * (bnn_set_threads: "every reduction has a fixed order"). */
#define MFVI_KL_BLOCK 4096

struct bnn_mfvi_params bnn_mfvi_default_params(void) {
    struct bnn_mfvi_params p = {
        .prior_prec = 1.0,
        .init_std = 1e-3f,
        .mc_samples = 1,
        .kl_weight = 1.0,
    };
    return p;
}

double bnn__mfvi_kl_factor(double kl_weight, double prior_prec, int64_t n_train) {
    return kl_weight / (double)n_train * fmax(prior_prec, 1.0);
}

/* softplus(x) = log(1 + eˣ) = max(x, 0) + log1p(e^−|x|): the exponent is never positive, so
 * nothing overflows for large x and log1p keeps full precision for very negative x. */
float bnn_softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

/* softplus⁻¹(y) = log(eʸ − 1) = y + log(1 − e^−y) = y + log(−expm1(−y)): no overflow for large y,
 * and expm1 keeps full precision for tiny y (where the result is ≈ log y). Defined for y > 0;
 * y = 0 gives −∞ and y < 0 gives NaN. */
float bnn_softplus_inv(float y) { return y + logf(-expm1f(-y)); }

/* Speed. A step evaluates σ = softplus(ρ), its slope and the KL term for every weight, and with
 * libm's expf, log1pf and log (which GCC does not vectorise without -ffast-math, ruled out by
 * STYLE.md) that pass was over half of an MFVI epoch (perf, 2026-12-06). The functions below
 * (and bnn__exp_nonpos, core/internal.h) are branchless and written out in basic arithmetic, so
 * the loops over the weights vectorise, and the build's -ffp-contract=off makes them round the
 * same on every instruction set. Each keeps close to libm's accuracy (test_mfvi checks them
 * against double precision). */

/* ln x for a positive normal float x, in float. x = 2^j m with m in [√½, √2) (bnn__log_reduce,
 * exact), ln m = 2 atanh(t) with t = (m − 1)/(m + 1), |t| < 0.1716, by its
 * series to t⁹ (truncation below 8e-10 relative). */
static inline float log_posf(float x) {
    int32_t ji;
    const float m = bnn__log_reduce(x, &ji), j = (float)ji;
    const float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    const float lm = 2.0f * t * (1.0f + t2 * (3.33333333e-1f + t2 * (0.2f + t2 * (1.42857143e-1f +
                                                                     t2 * 1.11111111e-1f))));
    return (j * -2.12194440e-4f + lm) + j * 0.693359375f;
}

/* ln x in double for the same x, for the KL (summed in double): m is exact in double, and the
 * atanh series runs to t²¹ (truncation below 1e-17 relative). */
static inline double log_pos(float x) {
    int32_t ji;
    const double m = (double)bnn__log_reduce(x, &ji), j = (double)ji;
    const double t = (m - 1.0) / (m + 1.0), t2 = t * t;
    double q = 1.0 / 21.0;
    q = q * t2 + 1.0 / 19.0, q = q * t2 + 1.0 / 17.0, q = q * t2 + 1.0 / 15.0;
    q = q * t2 + 1.0 / 13.0, q = q * t2 + 1.0 / 11.0, q = q * t2 + 1.0 / 9.0;
    q = q * t2 + 1.0 / 7.0, q = q * t2 + 1.0 / 5.0, q = q * t2 + 1.0 / 3.0;
    q = q * t2 + 1.0;
    return j * 0.69314718055994531 + 2.0 * t * q;
}

/* σ = softplus(ρ) = max(ρ, 0) + ln(1 + e) with e = e^−|ρ| (which cannot overflow), held at
 * MFVI_SIGMA_MIN from below, and when slope is not NULL also ∂softplus/∂ρ = sigmoid(ρ) from the
 * same e. ln(1 + e) = ln u + (e − (u − 1))/u with u = 1 + e rounded to float: u − 1 is exact, and
 * the second term puts back what the rounding of u lost (for e below 2⁻²⁴, u = 1 and it is e
 * itself). The clamp is a comparison rather than fmaxf so that a NaN ρ gives a NaN σ and a
 * diverged run shows in the loss. */
static inline float sigma_of(float rho, float *slope) {
    const float e = bnn__exp_nonpos(-fabsf(rho));
    const float u = 1.0f + e, ru = 1.0f / u;
    float s = (rho > 0.0f ? rho : 0.0f) + (log_posf(u) + (e - (u - 1.0f)) * ru);
    if (slope) *slope = (rho >= 0.0f ? 1.0f : e) * ru;
    return s < MFVI_SIGMA_MIN ? MFVI_SIGMA_MIN : s;
}

float bnn_mfvi_sigma(float rho) { return sigma_of(rho, NULL); }

/* KL(N(μ, σ²) ‖ N(0, 1/λ)) = ½ [λ(σ² + μ²) − 1 − log λ − 2 log σ] for one weight, in double.
 * log σ is taken directly (not log(λσ²)) so that a tiny σ cannot underflow inside the log. */
static inline double kl_term(float mu, float sigma, double lambda, double log_lambda) {
    const double s = (double)sigma, m = (double)mu;
    return 0.5 * (lambda * (s * s + m * m) - 1.0 - log_lambda) - log_pos(sigma);
}

/* The sum of a block's KL terms (at most MFVI_KL_BLOCK), in a fixed order that does not depend
 * on the vector width: 16 running sums, term i into sum i mod 16, then added pairwise. (A single
 * running sum is a chain of dependent additions, one addition's latency per weight.) */
static double block_sum(const double *t, int64_t len) {
    double acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= len; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += t[i + j];
    for (int j = 0; i + j < len; j++) acc[j] += t[i + j];
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    return acc[0];
}

double bnn_mfvi_kl(const float *mu, const float *rho, int64_t n, double prior_prec) {
    if (!(prior_prec > 0.0) || !mu || !rho || n < 0) return NAN;
    const double log_lambda = log(prior_prec);
    double kl = 0.0, t[MFVI_KL_BLOCK];
    /* The blocking and order of bnn_mfvi_loss, so that both give the same bits. */
    for (int64_t lo = 0; lo < n; lo += MFVI_KL_BLOCK) {
        const int64_t len = lo + MFVI_KL_BLOCK < n ? MFVI_KL_BLOCK : n - lo;
        for (int64_t j = 0; j < len; j++)
            t[j] = kl_term(mu[lo + j], sigma_of(rho[lo + j], NULL), prior_prec, log_lambda);
        kl += block_sum(t, len);
    }
    return kl;
}

/* dst (n) = src ∘ src */
static void square(float *dst, const float *src, int64_t n) {
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++)
        dst[i] = src[i] * src[i];
}

/* A Linear layer's local-reparameterisation forward pass: y (b × out) from x (b × in) with
 * means mu and variances sig2 in the layer's [W (out × in), b (out)] layout. x2 and var are
 * scratch of b × in and b × out floats. When kappa is not NULL the noise is drawn into it and
 * replaced by ε/(2√δ), the factor the backward pass needs; otherwise the noise goes to x2 once
 * x∘x has been used. */
static void lrt_forward(const bnn__layer *l, float *y, const float *x, const float *mu,
                        const float *sig2, int64_t b, bnn_rng *rng, float *x2, float *var,
                        float *kappa) {
    /* γ = x μ_Wᵀ + μ_b and δ = (x∘x) σ_Wᵀ² + σ_b², positive because σ_b² ≥ FLT_MIN (see
     * MFVI_SIGMA_MIN). */
    bnn__linear_moments(l, y, var, x, mu, sig2, b, x2);
    float *eps = kappa ? kappa : x2;
    const int64_t n = b * l->out;
    bnn_rng_normal(rng, eps, n);
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) {
        float sd = sqrtf(var[i]);
        y[i] += sd * eps[i];
        if (kappa) kappa[i] = 0.5f * eps[i] / sd;
    }
}

/* The whole network's forward pass: Linear layers by local reparameterisation, the others by
 * their vtable. kappa (b·Σ out over Linear layers, may be NULL) receives each Linear layer's
 * ε/(2√δ) in layer order. Returns the model's output buffer. */
static const float *network_forward(bnn_model *m, const float *mu, const float *sig2,
                                    const float *x, int64_t b, bool train, bnn_rng *rng,
                                    float *kappa) {
    const int64_t nl = bnn_model_nlayers(m);
    float *x2 = bnn__model_grad_buf(m, 0), *var = bnn__model_grad_buf(m, 1);
    const float *cur = x;
    for (int64_t i = 0; i < nl; i++) {
        bnn__layer *l = bnn__model_layer(m, i);
        float *y = bnn__model_act(m, i);
        if (l->vt == &bnn__linear_vt) {
            lrt_forward(l, y, cur, mu + l->off, sig2 + l->off, b, rng, x2, var, kappa);
            if (kappa) kappa += b * l->out;
        } else {
            BNN_ASSERT(l->vt->nparams(l) == 0);
            l->vt->forward(l, y, cur, NULL, b, train, rng);
        }
        cur = y;
    }
    return cur;
}

/* ∂L/∂ρ += (∂σ²/∂ρ) ∘ G with G = ∂L/∂σ² (n values, in sig2 where the GEMM put them) and
 * ∂σ²/∂ρ = 2σ · sigmoid(ρ) precomputed in dvar. With restore, σ² goes back into sig2 for the
 * next Monte-Carlo sample (recomputed: storing a copy would cost another nparams floats). */
static void rho_grad_from_var_grad(float *restrict grad_rho, float *restrict sig2,
                                   const float *restrict dvar, const float *restrict rho,
                                   int64_t n, bool restore) {
    /* two loops: the portable build's GCC did not vectorise one with the test inside */
    if (!restore) {
        /* must stay vectorised (tests/vectorised.sh) */
        BNN_OMP_ELEMENTWISE
        for (int64_t i = 0; i < n; i++) grad_rho[i] += dvar[i] * sig2[i];
        return;
    }
    /* must stay vectorised (tests/vectorised.sh) */
    BNN_OMP_ELEMENTWISE
    for (int64_t i = 0; i < n; i++) {
        grad_rho[i] += dvar[i] * sig2[i];
        const float s = sigma_of(rho[i], NULL);
        sig2[i] = s * s;
    }
}

/* A Linear layer's backward pass (equations at the top of the file). dy (b × out) is
 * ∂L/∂y and is used as scratch once it is no longer needed; kappa (b × out) holds ε/(2√δ) and is
 * overwritten by ∂L/∂δ; sig2 (the layer's σ², out·in + out) is overwritten by ∂L/∂σ² and, with
 * restore, put back. dvar holds ∂σ²/∂ρ. dx (b × in) receives ∂L/∂x when not NULL. */
static void lrt_backward(const bnn__layer *l, float *dx, float *dy, const float *x, const float *mu,
                         const float *rho, float *sig2, const float *dvar, float *kappa, int64_t b,
                         bool restore, float *grad_mu, float *grad_rho) {
    const int64_t in = l->in, out = l->out;
    /* ∂L/∂μ_W += dyᵀ x; ∂L/∂μ_b += Σ_rows dy, rows in ascending order as in linear.c. */
    bnn_gemm(grad_mu, dy, x, out, in, b, true, false, 1.0f, 1.0f);
    float *gmu_b = grad_mu + out * in;
    for (int64_t r = 0; r < b; r++)
        for (int64_t j = 0; j < out; j++)
            gmu_b[j] += dy[r * out + j];
    /* dδ = dy ∘ ε/(2√δ), in place. */
    float *dd = kappa;
    {
        const int64_t n = b * out;
        BNN_OMP_ELEMENTWISE
        for (int64_t i = 0; i < n; i++)
            dd[i] *= dy[i];
    }
    if (dx) {
        /* ∂L/∂x = dy μ_W + 2 x ∘ (dδ σ_W²), while sig2 still holds σ². */
        bnn_gemm(dx, dd, sig2, b, in, out, false, false, 1.0f, 0.0f);
        const int64_t n = b * in;
        BNN_OMP_ELEMENTWISE
        for (int64_t i = 0; i < n; i++)
            dx[i] *= 2.0f * x[i];
        bnn_gemm(dx, dy, mu, b, in, out, false, false, 1.0f, 1.0f);
    }
    /* dy is dead now, so it holds x∘x (b × in fits: the buffer is max_batch × widest). */
    float *x2 = dy;
    square(x2, x, b * in);
    /* ∂L/∂σ_W² = dδᵀ (x∘x) and ∂L/∂σ_b² = Σ_rows dδ, into the layer's slot of sig2. */
    bnn_gemm(sig2, dd, x2, out, in, b, true, false, 1.0f, 0.0f);
    float *gs_b = sig2 + out * in;
    memset(gs_b, 0, (size_t)out * sizeof(float));
    for (int64_t r = 0; r < b; r++)
        for (int64_t j = 0; j < out; j++)
            gs_b[j] += dd[r * out + j];
    rho_grad_from_var_grad(grad_rho, sig2, dvar, rho, out * in + out, restore);
}

/* The whole network's backward pass from dout = ∂L/∂output, which lies in the model's gradient
 * buffer nlayers & 1 (so that layer i writes ∂L/∂input into buffer i & 1, as in model.c). */
static void network_backward(bnn_model *m, const float *mu, const float *rho, float *sig2,
                             const float *dvar, const float *x, int64_t b, float *kappa_end,
                             bool restore, float *grad_mu, float *grad_rho) {
    const int64_t nl = bnn_model_nlayers(m);
    float *dy = bnn__model_grad_buf(m, (int)(nl & 1));
    float *kappa = kappa_end;
    for (int64_t i = nl - 1; i >= 0; i--) {
        bnn__layer *l = bnn__model_layer(m, i);
        const float *xi = i ? bnn__model_act(m, i - 1) : x;
        /* The input gradient of the first layer is not needed: it would be a whole GEMM. */
        float *dx = i ? bnn__model_grad_buf(m, (int)(i & 1)) : NULL;
        if (l->vt == &bnn__linear_vt) {
            kappa -= b * l->out;
            lrt_backward(l, dx, dy, xi, mu + l->off, rho + l->off, sig2 + l->off, dvar + l->off,
                         kappa, b, restore, grad_mu + l->off, grad_rho + l->off);
        } else {
            if (!dx) break;
            l->vt->backward(l, dx, NULL, dy, xi, bnn__model_act(m, i), NULL, b);
        }
        dy = dx;
    }
}

/* Σ over Linear layers of their output width: the kappa floats per batch row. */
static int64_t linear_outputs(bnn_model *m) {
    int64_t s = 0;
    for (int64_t i = 0; i < bnn_model_nlayers(m); i++) {
        const bnn__layer *l = bnn__model_layer(m, i);
        if (l->vt == &bnn__linear_vt) s += l->out;
    }
    return s;
}

/* The scratch layout: the KL's per-block partial sums (doubles, padded to 64 bytes), then σ²
 * and ∂σ²/∂ρ (nparams floats each), then ε/(2√δ) of every Linear layer (b·Σ out floats). */
static int64_t workspace_floats(bnn_model *m, int64_t b, int64_t *nhead, int64_t *nkappa) {
    const int64_t np = bnn_model_nparams(m), outs = linear_outputs(m);
    const int64_t nblk = (np + MFVI_KL_BLOCK - 1) / MFVI_KL_BLOCK;
    *nhead = (2 * nblk + 15) / 16 * 16;
    if (outs > 0 && b > (INT64_MAX / 2 - *nhead - 2 * np) / outs) return -1; /* overflows */
    *nkappa = b * outs;
    return *nhead + 2 * np + *nkappa;
}

size_t bnn_mfvi_workspace_bytes(bnn_model *m, int64_t b) {
    if (!m || b < 1) return 0; /* no batch, no workspace */
    int64_t nhead, nkappa;
    const int64_t nf = workspace_floats(m, b, &nhead, &nkappa);
    return nf < 0 ? 0 : bnn__bytes(nf, sizeof(float)); /* 0: no size_t holds it */
}

/* A batch the model was reserved for; the message for the NaN or NULL the callers return. */
static bool batch_ok(const bnn_model *m, int64_t b) {
    if (b >= 1 && b <= bnn_model_max_batch(m)) return true;
    if (bnn_model_max_batch(m) < 1)
        bnn__error(BNN_EINVAL, "mean-field VI: the model is not reserved for any batch "
                   "(bnn_model_reserve)");
    else
        bnn__error(BNN_EINVAL, "mean-field VI: a batch of %lld rows, the model is reserved for "
                   "1..%lld", (long long)b, (long long)bnn_model_max_batch(m));
    return false;
}

double bnn_mfvi_loss(bnn_model *m, const float *mu, const float *rho, const float *x,
                     const int32_t *labels, const float *targets, int64_t b, const bnn_lik *lik,
                     int64_t n_train, const struct bnn_mfvi_params *p, bnn_rng *rng, float *grad_mu,
                     float *grad_rho) {
    if (!m) return bnn__error(BNN_EINVAL, "mean-field VI: the model is NULL"), NAN;
    if (!batch_ok(m, b)) return NAN; /* before sizing the scratch by it */
    const size_t ws = bnn_mfvi_workspace_bytes(m, b); /* 0: no size_t holds it */
    float *work = ws ? bnn__alloc(ws) : NULL;
    if (!work) {
        bnn__error(BNN_ENOMEM, "mean-field VI: cannot allocate %zu bytes of scratch", ws);
        return NAN;
    }
    double loss = bnn_mfvi_loss_ws(m, mu, rho, x, labels, targets, b, lik, n_train, p, rng,
                                   grad_mu, grad_rho, work);
    bnn__free(work);
    return loss;
}

/* One block of a step's pass over the weights (at most MFVI_KL_BLOCK): σ² and ∂σ²/∂ρ = 2σ ·
 * sigmoid(ρ) into s2 and dv, the gradient of kl_weight · KL / n_train added to gm and gr (c_mu =
 * that scale times λ, c_inv the scale: ∂KL/∂μ = λμ, ∂KL/∂σ = λσ − 1/σ, times sigmoid(ρ) for ρ),
 * and the block's KL returned. A function of its own so that its pointers are restrict
 * parameters, which GCC trusts (inside the OpenMP loop it wanted more than ten run-time alias
 * checks and left the loop scalar). */
static double weight_pass(float *restrict s2, float *restrict dv, float *restrict gm,
                          float *restrict gr, const float *restrict mu, const float *restrict rho,
                          int64_t len, double lambda, double log_lambda, float c_mu, float c_inv) {
    double t[MFVI_KL_BLOCK];
    /* must stay vectorised (tests/vectorised.sh) */
    for (int64_t j = 0; j < len; j++) {
        float slope, s = sigma_of(rho[j], &slope);
        s2[j] = s * s;
        dv[j] = 2.0f * s * slope;
        t[j] = kl_term(mu[j], s, lambda, log_lambda);
        gm[j] += c_mu * mu[j];
        gr[j] += (c_mu * s - c_inv / s) * slope;
    }
    return block_sum(t, len);
}

double bnn_mfvi_loss_ws(bnn_model *m, const float *mu, const float *rho, const float *x,
                        const int32_t *labels, const float *targets, int64_t b, const bnn_lik *lik,
                        int64_t n_train, const struct bnn_mfvi_params *p, bnn_rng *rng,
                        float *grad_mu, float *grad_rho, void *work) {
    /* The loss returns a double, so invalid settings are reported as NaN with the detail in
     * bnn_last_error() rather than by asserting: they may come from a user's command line. */
    if (m && !batch_ok(m, b)) return NAN;
    const bool cls = lik && bnn_lik_task(lik->kind) == BNN_TASK_CLASSIFICATION;
    if (!m || !mu || !rho || !x || !lik || !p || !rng || !grad_mu || !grad_rho || !work ||
        (cls ? !labels : !targets)) {
        bnn__error(BNN_EINVAL, "mean-field VI: a required argument is NULL");
        return NAN;
    }
    if (n_train < 1 || p->mc_samples < 1 || !(p->prior_prec > 0.0) || !isfinite(p->prior_prec) ||
        !(p->kl_weight >= 0.0) || !isfinite(p->kl_weight)) {
        bnn__error(BNN_EINVAL,
                   "mean-field VI: need n_train >= 1, mc_samples >= 1, prior_prec > "
                   "0 and kl_weight >= 0 (got %lld, %lld, %g, %g)",
                   (long long)n_train, (long long)p->mc_samples, p->prior_prec, p->kl_weight);
        return NAN;
    }
    if (bnn__mfvi_kl_factor(p->kl_weight, p->prior_prec, n_train) > FLT_MAX) {
        bnn__error(BNN_EINVAL, "mean-field VI: kl_weight %g times prior_prec %g over n_train "
                   "%lld is beyond float range: the KL term's gradient would be infinite",
                   p->kl_weight, p->prior_prec, (long long)n_train);
        return NAN;
    }
    const int64_t np = bnn_model_nparams(m), k = bnn_model_output_dim(m);
    if (lik->kind < BNN_LIK_CATEGORICAL || lik->kind > BNN_LIK_HETERO_GAUSSIAN ||
        bnn_lik_outputs(lik->kind, bnn_lik_pred_dim(lik->kind, k)) != k) {
        bnn__error(BNN_ESHAPE, "mean-field VI: a %s likelihood does not fit model %s's %lld "
                   "output%s", bnn_lik_name(lik->kind), bnn_model_spec(m), (long long)k,
                   k == 1 ? "" : "s");
        return NAN;
    }
    const int64_t nblk = (np + MFVI_KL_BLOCK - 1) / MFVI_KL_BLOCK;
    int64_t nhead, nkappa;
    workspace_floats(m, b, &nhead, &nkappa);
    float *block = work;
    double *kl_part = (double *)(void *)block;
    float *sig2 = block + nhead, *dvar = sig2 + np, *kappa = dvar + np;

    /* One pass over the weights: σ², ∂σ²/∂ρ = 2σ·sigmoid(ρ), the KL term and the gradient of
     * kl_weight · KL / n_train (∂KL/∂μ = λμ, ∂KL/∂σ = λσ − 1/σ, times sigmoid(ρ) for ρ). */
    const double lambda = p->prior_prec, log_lambda = log(lambda);
    const double scale = p->kl_weight / (double)n_train;
    const float c_mu = (float)(scale * lambda), c_inv = (float)scale;
    {
        const int64_t n = np;
        BNN_OMP_ELEMENTWISE
        for (int64_t blk = 0; blk < nblk; blk++) {
            const int64_t lo = blk * MFVI_KL_BLOCK;
            const int64_t len = lo + MFVI_KL_BLOCK < n ? MFVI_KL_BLOCK : n - lo;
            kl_part[blk] = weight_pass(sig2 + lo, dvar + lo, grad_mu + lo, grad_rho + lo,
                                       mu + lo, rho + lo, len, lambda, log_lambda, c_mu, c_inv);
        }
    }
    double kl = 0.0;
    for (int64_t blk = 0; blk < nblk; blk++)
        kl += kl_part[blk];

    /* The data term: the mean over mc_samples of the batch's mean NLL, each sample with fresh
     * noise from rng. Scaling ∂L/∂output by 1/S makes the backward passes add the average. */
    const int64_t nl = bnn_model_nlayers(m), S = p->mc_samples;
    float *dout = bnn__model_grad_buf(m, (int)(nl & 1));
    double data = 0.0;
    for (int64_t s = 0; s < S; s++) {
        const float *f = network_forward(m, mu, sig2, x, b, true, rng, kappa);
        data += bnn_lik_loss(lik, dout, f, labels, targets, b, k);
        if (S > 1) {
            const float inv = 1.0f / (float)S;
            for (int64_t i = 0; i < b * k; i++)
                dout[i] *= inv;
        }
        network_backward(m, mu, rho, sig2, dvar, x, b, kappa + nkappa, s + 1 < S, grad_mu,
                         grad_rho);
    }
    return data / (double)S + scale * kl;
}

const float *bnn_mfvi_forward(bnn_model *m, const float *mu, const float *rho, const float *x,
                              int64_t b, bnn_rng *rng) {
    if (!m || !mu || !rho || !x || !rng) {
        bnn__error(BNN_EINVAL, "mean-field VI: a required argument is NULL");
        return NULL;
    }
    if (!batch_ok(m, b)) return NULL;
    const int64_t np = bnn_model_nparams(m);
    float *sig2 = bnn__alloc_array(np, sizeof(float));
    if (!sig2) {
        bnn__error(BNN_ENOMEM, "mean-field VI: cannot allocate %lld floats of scratch",
                   (long long)np);
        return NULL;
    }
    {
        const int64_t n = np;
        /* must stay vectorised (tests/vectorised.sh) */
        BNN_OMP_ELEMENTWISE
        for (int64_t i = 0; i < n; i++) {
            float s = sigma_of(rho[i], NULL);
            sig2[i] = s * s;
        }
    }
    /* Prediction samples the weights' posterior only; dropout is the identity (train=false). */
    const float *f = network_forward(m, mu, sig2, x, b, false, rng, NULL);
    bnn__free(sig2);
    return f;
}
