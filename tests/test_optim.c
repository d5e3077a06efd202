/* Optimizers against closed forms of their PyTorch semantics. */
#include "check.h"
#include "core/internal.h"

/* AdamW with a constant gradient: m̂ = g and v̂ = g² at every step, so each step moves the
 * weight by lr·g/(|g| + eps) after the decoupled decay w ← w(1 − lr·wd). */
static void test_adamw(void) {
    struct bnn_adamw_params p = bnn_adamw_default_params();
    CHECK_NEAR(p.lr, 1e-3, 1e-9);
    CHECK_NEAR(p.beta2, 0.999, 1e-7);
    p.lr = 0.01, p.weight_decay = 0.1;
    float w[3] = {1.0f, -2.0f, 0.5f}, m[3] = {0}, v[3] = {0};
    const float g[3] = {0.3f, -1e-3f, 5.0f};
    double ref[3] = {1.0, -2.0, 0.5};
    for (int t = 1; t <= 50; t++) {
        bnn_adamw_step(w, m, v, g, 3, t, &p);
        for (int i = 0; i < 3; i++)
            ref[i] = ref[i] * (1.0 - 0.01 * 0.1) - 0.01 * g[i] / (fabs(g[i]) + 1e-8);
    }
    for (int i = 0; i < 3; i++) CHECK_NEAR(w[i], ref[i], 2e-5);
    /* Moments after 50 steps: m = g(1 − β1^50), v = g²(1 − β2^50). */
    CHECK_NEAR(m[0], 0.3 * (1 - pow(0.9, 50)), 1e-6);
    CHECK_NEAR(v[2], 25.0 * (1 - pow(0.999, 50)), 1e-4);
}

/* AdamW's states and weights against torch.optim.AdamW's update worked in double, over 300 steps
 * of gradients that change in size from step to step and across six orders of magnitude between
 * weights. PyTorch takes its settings (lr 1e-3, betas 0.9 and 0.999, weight decay 1e-4) as Python
 * floats, forms 1 − β, 1 − lr·wd, lr/(1 − β1^t) and √(1 − β2^t) in double and rounds each to the
 * tensor's float once: F() below. The reference rounds the weights to float where PyTorch does.
 * The states are what PyTorch shows as exp_avg and exp_avg_sq: with 1 − β2 formed in float from a
 * float 0.999 the second moment was 1.4e-5 off here; the update's float rounding leaves 3e-7 in m
 * and 9e-7 in v. */
#define F(x) ((double)(float)(x))
static void test_adamw_pytorch_factors(void) {
    enum { N = 64, T = 300 };
    struct bnn_adamw_params p = bnn_adamw_default_params();
    p.weight_decay = 1e-4;
    float w[N], m[N] = {0}, v[N] = {0}, g[N], u[N];
    double rw[N], rm[N] = {0}, rv[N] = {0};
    bnn_rng r = bnn_rng_make(3, 0);
    bnn_rng_uniform(&r, u, N);
    for (int i = 0; i < N; i++) w[i] = u[i] - 0.5f, rw[i] = w[i];
    double worst_m = 0, worst_v = 0, worst_w = 0;
    for (int t = 1; t <= T; t++) {
        bnn_rng_uniform(&r, u, N);
        for (int i = 0; i < N; i++) /* one sign per weight, so m never passes through 0 */
            g[i] = (i % 2 ? 1.0f : -1.0f) * powf(10.0f, -4.0f + 6.0f * (float)i / (N - 1)) *
                   (0.25f + u[i]);
        REQUIRE(bnn_adamw_step(w, m, v, g, N, t, &p) == 0);
        const double step = F(1e-3 / (1 - pow(0.9, t))), bc2_sqrt = F(sqrt(1 - pow(0.999, t)));
        for (int i = 0; i < N; i++) {
            rm[i] = F(0.9) * rm[i] + F(1 - 0.9) * g[i];
            rv[i] = F(0.999) * rv[i] + F(1 - 0.999) * g[i] * g[i];
            /* the weights are floats in PyTorch too, rounded after the decay (param.mul_) and after
             * the step (addcdiv_): a rounding of the same sign at each decay adds up over 300
             * steps to 4e-6 */
            rw[i] = F(rw[i] * F(1 - 1e-3 * 1e-4));
            rw[i] = F(rw[i] - step * rm[i] / (sqrt(rv[i]) / bc2_sqrt + F(1e-8)));
            worst_m = fmax(worst_m, fabs(m[i] - rm[i]) / fabs(rm[i]));
            worst_v = fmax(worst_v, fabs(v[i] - rv[i]) / rv[i]);
            worst_w = fmax(worst_w, fabs(w[i] - rw[i]));
        }
    }
    CHECK(worst_m < 4.5e-7); /* 1 − β1 formed in float: 6e-7 */
    CHECK(worst_v < 2e-6);
    CHECK(worst_w < 1e-6);
    if (worst_m >= 4.5e-7 || worst_v >= 2e-6 || worst_w >= 1e-6)
        fprintf(stderr, "adamw vs double: m %.3g, v %.3g (relative), w %.3g\n", worst_m, worst_v,
                worst_w);
}
#undef F

/* SGD with momentum μ and a constant gradient: buf_t = g(1 − μ^t)/(1 − μ); Nesterov steps by
 * g + μ·buf_t; weight decay adds wd·w to the gradient. */
static void test_sgd(void) {
    struct bnn_sgd_params p = bnn_sgd_default_params();
    p.lr = 0.1f, p.momentum = 0.9f;
    for (int nest = 0; nest < 2; nest++) {
        p.nesterov = nest;
        float w[2] = {1.0f, -1.0f}, buf[2] = {7, 7}; /* buf is overwritten at t = 1 */
        const float g[2] = {0.5f, -0.25f};
        double ref[2] = {1.0, -1.0};
        for (int t = 1; t <= 20; t++) {
            bnn_sgd_step(w, buf, g, 2, t, &p);
            for (int i = 0; i < 2; i++) {
                double b = g[i] * (1 - pow(0.9, t)) / (1 - 0.9);
                ref[i] -= 0.1 * (nest ? g[i] + 0.9 * b : b);
            }
        }
        CHECK_NEAR(w[0], ref[0], 1e-5);
        CHECK_NEAR(w[1], ref[1], 1e-5);
    }
    /* Plain gradient descent with weight decay: w ← w − lr(g + wd·w). */
    p.momentum = 0.0f, p.nesterov = false, p.weight_decay = 0.5f;
    float w[1] = {2.0f}, buf[1] = {0}, g[1] = {0.0f};
    for (int t = 1; t <= 10; t++) bnn_sgd_step(w, buf, g, 1, t, &p);
    CHECK_NEAR(w[0], 2.0 * pow(1 - 0.1 * 0.5, 10), 1e-6);
    /* Dampening applies from the second step on. */
    p.weight_decay = 0, p.momentum = 0.5f, p.dampening = 0.5f;
    float w2[1] = {0}, b2[1] = {0}, g2[1] = {1.0f};
    bnn_sgd_step(w2, b2, g2, 1, 1, &p); /* buf = 1 */
    bnn_sgd_step(w2, b2, g2, 1, 2, &p); /* buf = 0.5 + 0.5 = 1 */
    CHECK_NEAR(b2[0], 1.0, 1e-7);
    CHECK_NEAR(w2[0], -0.2, 1e-7);
}

/* Schedules: warm-up ramps linearly to lr, cosine passes lr/2 half-way and ends near 0. */
static void test_schedule(void) {
    CHECK_NEAR(bnn_lr_at(BNN_LR_CONSTANT, 0.1f, 57, 100, 0), 0.1, 1e-8);
    CHECK_NEAR(bnn_lr_at(BNN_LR_CONSTANT, 0.1f, 0, 100, 10), 0.01, 1e-8);
    CHECK_NEAR(bnn_lr_at(BNN_LR_COSINE, 0.1f, 9, 100, 10), 0.1, 1e-8);
    CHECK_NEAR(bnn_lr_at(BNN_LR_COSINE, 0.1f, 10, 100, 10), 0.1, 1e-8);
    CHECK_NEAR(bnn_lr_at(BNN_LR_COSINE, 0.1f, 55, 100, 10), 0.05, 1e-8);
    CHECK_NEAR(bnn_lr_at(BNN_LR_COSINE, 0.1f, 99, 100, 10),
               0.05 * (1 + cos(3.14159265358979 * 89.0 / 90.0)), 1e-8);
    CHECK_NEAR(bnn_lr_at(BNN_LR_COSINE, 2.0f, 25, 100, 0), 1.0 + cos(3.14159265358979 / 4), 1e-6);
}

/* A momentum that decays below FLT_MIN is stored as 0 (flush_subnormal, core/internal.h), by
 * AdamW, SGD and both IVON steps, on a vector long enough for the threaded, vectorised loops;
 * one still above FLT_MIN is kept to the bit, and so are the weights. */
static void test_subnormal_momentum(void) {
    enum { N = 40000 };
    static float w[N], m[N], v[N], g[N], h[N], th[N];
    const float tiny = 1.3e-38f, kept = 2e-38f; /* 0.9 × tiny < FLT_MIN < 0.9 × kept */
    struct bnn_adamw_params pa = bnn_adamw_default_params();
    for (int i = 0; i < N; i++) w[i] = 0.5f, m[i] = i % 2 ? kept : tiny, v[i] = 1e-12f, g[i] = 0;
    REQUIRE(bnn_adamw_step(w, m, v, g, N, 3, &pa) == 0);
    bool ok = true;
    const float decayed = 0.5f * (float)(1.0 - pa.lr * pa.weight_decay);
    for (int i = 0; i < N; i++)
        ok &= m[i] == (i % 2 ? (float)pa.beta1 * kept : 0.0f) && w[i] == decayed;
    CHECK(ok);
    struct bnn_sgd_params ps = bnn_sgd_default_params();
    for (int i = 0; i < N; i++) w[i] = 0.5f, m[i] = i % 2 ? kept : tiny;
    REQUIRE(bnn_sgd_step(w, m, g, N, 2, &ps) == 0);
    ok = true;
    for (int i = 0; i < N; i++) ok &= m[i] == (i % 2 ? ps.momentum * kept : 0.0f) && w[i] == 0.5f;
    CHECK(ok);
    /* IVON (β1 = 0.9), the plain step and the fused one */
    struct bnn_ivon_params pv = bnn_ivon_default_params();
    pv.ess = 1000;
    pv.weight_decay = 0;
    for (int fused = 0; fused < 2; fused++) {
        for (int i = 0; i < N; i++)
            w[i] = th[i] = 0.5f, h[i] = 1.0f, m[i] = i % 2 ? kept : tiny, g[i] = v[i] = 0;
        bnn_rng rng = bnn_rng_make(1, 2);
        REQUIRE((fused ? bnn__ivon_step_draw(w, h, m, th, v, g, N, 2, &pv, &rng)
                       : bnn_ivon_step(w, h, m, g, v, N, 2, &pv)) == 0);
        ok = true;
        for (int i = 0; i < N; i++) ok &= m[i] == (i % 2 ? (float)pv.beta1 * kept : 0.0f);
        CHECK(ok);
    }
}

int main(void) {
    test_subnormal_momentum();
    test_schedule();
    test_adamw();
    test_adamw_pytorch_factors();
    test_sgd();
    return CHECK_DONE();
}
