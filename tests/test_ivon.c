/* IVON against the official PyTorch implementation: replay the recorded noise of
 * fixtures/ivon (cases A, B, C) through bnn's model, likelihood and bnn_ivon_step, starting from
 * the recorded initial weights, and compare θ, the loss, the gradient and then m, h and the
 * momentum after every step. bnn runs in float32, so the agreement asked for is 1e-5
 * norm-wise relative (max|c − r| / max|r|, per step, worst step), as the fixture README says. */
#include "check.h"
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

static bnn_st *open_fixture(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/ivon/%s", BNN_FIXTURES, name);
    bnn_st *st;
    if (bnn_st_read(&st, path)) return NULL;
    return st;
}

static double *tensor(bnn_st *st, const char *name, int64_t *numel) {
    bnn_st_tensor t;
    REQUIRE(bnn_st_get(st, name, &t) == 0);
    double *d = malloc((size_t)t.numel * sizeof(double));
    REQUIRE(d && bnn_st_to_f64(&t, d) == 0);
    if (numel) *numel = t.numel;
    return d;
}

static double meta(bnn_st *st, const char *key) {
    const char *v = bnn_st_meta(st, key);
    REQUIRE(v != NULL);
    return strcmp(v, "inf") == 0 ? INFINITY : strtod(v, NULL);
}

/* max|c − r| / max|r| over n values */
static double normwise(const float *c, const double *r, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)c[i] - r[i]);
        if (d > num) num = d;
        if (fabs(r[i]) > den) den = fabs(r[i]);
    }
    return den > 0 ? num / den : num;
}

static void replay(const char *file, const char *spec, bool regression) {
    bnn_st *st = open_fixture(file);
    if (!st) {
        fprintf(stderr, "note: %s/ivon/%s not readable (%s); case skipped\n", BNN_FIXTURES, file,
                bnn_last_error());
        return;
    }
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, spec) == 0);
    const int64_t P = bnn_model_nparams(m), d = bnn_model_input_dim(m);
    const int64_t k = bnn_model_output_dim(m);
    int64_t nX, nbatch, ntheta;
    double *X = tensor(st, "X", &nX), *m0 = tensor(st, "m0", NULL), *y = tensor(st, "y", NULL);
    double *bidx = tensor(st, "batch_idx", &nbatch), *eps = tensor(st, "eps", &ntheta);
    double *theta_r = tensor(st, "theta", NULL), *grad_r = tensor(st, "grad", NULL);
    double *loss_r = tensor(st, "loss", NULL), *m_r = tensor(st, "m", NULL);
    double *h_r = tensor(st, "h", NULL), *mom_r = tensor(st, "momentum", NULL);
    const int64_t B = (int64_t)meta(st, "batch_size"), T = (int64_t)meta(st, "steps");
    const int64_t S = (int64_t)meta(st, "mc_samples");
    REQUIRE(nbatch == T * B && ntheta == T * S * P && (int64_t)meta(st, "n_params") == P);
    struct bnn_ivon_params p = bnn_ivon_default_params();
    p.lr = (float)meta(st, "lr"), p.ess = meta(st, "ess"), p.hess_init = (float)meta(st, "hess_init");
    p.beta1 = meta(st, "beta1"), p.beta2 = meta(st, "beta2");
    p.weight_decay = (float)meta(st, "weight_decay"), p.clip_radius = (float)meta(st, "clip_radius");
    p.rescale_lr = !strcmp(bnn_st_meta(st, "rescale_lr"), "true");
    p.debias = !strcmp(bnn_st_meta(st, "debias"), "true");
    p.mc_samples = S;

    float *mean = bnn_model_params(m);
    for (int64_t i = 0; i < P; i++) mean[i] = (float)m0[i];
    float *h = malloc(P * 4), *g = calloc(P, 4), *e = malloc(P * 4), *th = malloc(P * 4);
    float *gr = malloc(P * 4), *gbar = malloc(P * 4), *geps = malloc(P * 4);
    float *xb = malloc(B * d * 4), *tb = malloc(B * k * 4), *dout = malloc(B * k * 4);
    int32_t *lb = malloc(B * 4);
    for (int64_t i = 0; i < P; i++) h[i] = p.hess_init;
    REQUIRE(bnn_model_reserve(m, B) == 0);
    bnn_lik lik = {regression ? BNN_LIK_GAUSSIAN : BNN_LIK_CATEGORICAL, 1.0};
    double worst_theta = 0, worst_loss = 0, worst_grad = 0, worst_m = 0, worst_h = 0, worst_g = 0;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t r = 0; r < B; r++) {
            int64_t row = (int64_t)bidx[t * B + r];
            for (int64_t j = 0; j < d; j++) xb[r * d + j] = (float)X[row * d + j];
            if (regression) tb[r] = (float)y[row];
            else lb[r] = (int32_t)y[row];
        }
        memset(gbar, 0, P * 4);
        memset(geps, 0, P * 4);
        for (int64_t s = 0; s < S; s++) {
            const double *es = eps + (t * S + s) * P;
            for (int64_t i = 0; i < P; i++) e[i] = (float)es[i];
            bnn_ivon_sample(th, mean, h, e, P, &p);
            double dt = normwise(th, theta_r + (t * S + s) * P, P);
            if (dt > worst_theta) worst_theta = dt;
            const float *f = bnn_model_forward(m, th, xb, B, false, NULL);
            double loss = bnn_lik_loss(&lik, dout, f, lb, tb, B, k);
            /* The fixture's regression loss is ½ mean (f − y)²: ours adds log σ + ½ log 2π. */
            if (regression) loss -= 0.5 * log(2.0 * 3.14159265358979323846);
            double dl = fabs(loss - loss_r[t * S + s]) / fabs(loss_r[t * S + s]);
            if (dl > worst_loss) worst_loss = dl;
            memset(gr, 0, P * 4);
            bnn_model_backward(m, th, dout, gr);
            double dg = normwise(gr, grad_r + (t * S + s) * P, P);
            if (dg > worst_grad) worst_grad = dg;
            for (int64_t i = 0; i < P; i++) {
                gbar[i] += gr[i] / (float)S;
                geps[i] += e[i] * gr[i] / (float)S;
            }
        }
        REQUIRE(bnn_ivon_step(mean, h, g, gbar, geps, P, t + 1, &p) == 0);
        double a = normwise(mean, m_r + t * P, P), b = normwise(h, h_r + t * P, P);
        double c = normwise(g, mom_r + t * P, P);
        if (a > worst_m) worst_m = a;
        if (b > worst_h) worst_h = b;
        if (c > worst_g) worst_g = c;
    }
    fprintf(stderr, "%s: worst norm-wise relative error over %lld steps: theta %.2e loss %.2e "
            "grad %.2e m %.2e h %.2e momentum %.2e\n", file, (long long)T, worst_theta,
            worst_loss, worst_grad, worst_m, worst_h, worst_g);
    CHECK(worst_theta < 1e-5);
    CHECK(worst_loss < 1e-5);
    CHECK(worst_grad < 1e-5);
    CHECK(worst_m < 1e-5);
    CHECK(worst_h < 1e-5);
    CHECK(worst_g < 1e-5);
    free(X), free(m0), free(y), free(bidx), free(eps), free(theta_r), free(grad_r), free(loss_r);
    free(m_r), free(h_r), free(mom_r), free(h), free(g), free(e), free(th), free(gr), free(gbar);
    free(geps), free(xb), free(tb), free(dout), free(lb);
    bnn_model_free(m);
    bnn_st_free(st);
}

/* Closed forms of one step from h = h0, g = 0 with ε = 0: ĥ = 0, so h1 = β2 h0 + ½(1−β2)² h0²/(h0+δ),
 * g1 = (1−β1) ḡ, and m1 = m0 − α (g1/(1−β1) + δ m0)/(h1 + δ). A non-finite step is reported. */
static void test_closed_form(void) {
    struct bnn_ivon_params p = bnn_ivon_default_params();
    p.lr = 0.5f, p.ess = 100, p.hess_init = 0.2f, p.weight_decay = 0.01f, p.beta2 = 0.99999;
    float m[2] = {1.0f, -2.0f}, h[2] = {0.2f, 0.2f}, g[2] = {0, 0};
    const float gbar[2] = {0.3f, -0.1f}, geps[2] = {0, 0};
    REQUIRE(bnn_ivon_step(m, h, g, gbar, geps, 2, 1, &p) == 0);
    double h1 = 0.99999 * 0.2 + 0.5 * 1e-5 * 1e-5 * 0.2 * 0.2 / 0.21;
    CHECK_REL(h[0], h1, 1e-6, 1e-30);
    CHECK_REL(g[0], 0.1 * 0.3, 1e-6, 1e-30);
    double alpha = 0.5 * (0.2 + 0.01);
    CHECK_REL(m[0], 1.0 - alpha * (0.3 + 0.01 * 1.0) / (h1 + 0.01), 1e-6, 1e-30);
    CHECK_REL(m[1], -2.0 - alpha * (-0.1 + 0.01 * -2.0) / (h1 + 0.01), 1e-6, 1e-30);
    /* The posterior standard deviation: θ − m = ε/√(λ(h+δ)). */
    float th[2], e[2] = {1.0f, -2.0f};
    bnn_ivon_sample(th, m, h, e, 2, &p);
    CHECK_REL(th[1] - m[1], -2.0 / sqrt(100.0 * (h[1] + 0.01)), 1e-5, 1e-30);
    const float huge[2] = {1e38f, 1e38f};
    CHECK_EQ_INT(bnn_ivon_step(m, h, g, huge, huge, 2, 2, &p), BNN_EDIVERGED);
    CHECK(strstr(bnn_last_error(), "update at t = 2") != NULL);
}

static double normwise_f(const float *c, const float *r, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)c[i] - (double)r[i]));
        den = fmax(den, fabs((double)r[i]));
    }
    return num / den;
}

/* The trainer's fused one-sample path against the public functions it stands for:
 * - bnn__ivon_draw gives bnn_rng_normal's noise, bnn_ivon_sample's θ and ν = ε ⊙ σ (θ from
 *   m = 0), bit for bit, and moves the generator as far (n is not a multiple of the chunk);
 * - bnn__ivon_step_draw is bnn_ivon_step with geps = ε ⊙ ḡ (to rounding: it forms ĥ from ν, as
 *   the official implementation does), followed by a draw at the same position, whose θ and ν it
 *   must reproduce bit for bit from its own m and h (resuming relies on this);
 * - neither depends on the thread count.
 * At ess = 1e10 σ is about 2e-5 of m (m ~ N(0, 1)): θ − m, which rounds ν to the floats around m,
 * put h off by about 2e-3 there (the fused step once formed ĥ from it). */
static void test_fused_path(bool flags_on, double ess) {
    const int64_t n = 100003;
    struct bnn_ivon_params p = bnn_ivon_default_params();
    p.ess = ess, p.lr = 0.3f, p.hess_init = 0.2f, p.weight_decay = 1e-3f, p.clip_radius = 0.05f;
    /* The one-sample trainer takes this path whatever rescale_lr and debias say; without the
     * clip, so that every weight's step shows them. */
    if (!flags_on) p.rescale_lr = false, p.debias = false, p.clip_radius = INFINITY;
    float *m1 = malloc(n * 4), *h1 = malloc(n * 4), *g1 = calloc(n, 4), *m2 = malloc(n * 4);
    float *h2 = malloc(n * 4), *g2 = calloc(n, 4), *e = malloc(n * 4), *gb = malloc(n * 4);
    float *ge = malloc(n * 4), *e2 = malloc(n * 4), *t1 = malloc(n * 4), *t2 = malloc(n * 4);
    float *t3 = malloc(n * 4), *nu = malloc(n * 4), *nu3 = malloc(n * 4), *z = calloc(n, 4);
    bnn_rng data = bnn_rng_make(2, 2);
    bnn_rng_normal(&data, m1, n);
    memcpy(m2, m1, n * 4);
    for (int64_t i = 0; i < n; i++) h1[i] = h2[i] = p.hess_init;
    bnn_rng r1 = bnn_rng_make(5, 7), r2 = r1;
    bnn_rng_normal(&r1, e, n);
    bnn_ivon_sample(t1, m1, h1, e, n, &p);
    bnn__ivon_draw(t2, e2, nu, m2, h2, n, &p, &r2);
    CHECK(memcmp(e, e2, n * 4) == 0 && memcmp(t1, t2, n * 4) == 0);
    bnn_ivon_sample(t3, z, h1, e, n, &p);
    CHECK(memcmp(t3, nu, n * 4) == 0);
    CHECK(r1.counter == r2.counter && r1.counter == (uint64_t)(n + 3) / 4);
    double worst = 0;
    for (int64_t t = 1; t <= 3; t++) {
        bnn_rng_normal(&data, gb, n);
        for (int64_t i = 0; i < n; i++) ge[i] = e[i] * gb[i];
        REQUIRE(bnn_ivon_step(m1, h1, g1, gb, ge, n, t, &p) == 0);
        bnn_rng before = r2, again = r2;
        const int threads = bnn_get_threads();
        bnn_set_threads(t == 2 ? 1 : 2);
        REQUIRE(bnn__ivon_step_draw(m2, h2, g2, t2, nu, gb, n, t, &p, &r2) == 0);
        bnn_set_threads(threads);
        bool zeroed = true; /* left ready for the next gradient */
        for (int64_t i = 0; i < n; i++) zeroed &= gb[i] == 0.0f;
        CHECK(zeroed);
        worst = fmax(worst, normwise_f(m2, m1, n));
        worst = fmax(worst, normwise_f(h2, h1, n));
        worst = fmax(worst, normwise_f(g2, g1, n));
        /* the sample it drew: the same bits as a fresh draw from its m and h */
        bnn__ivon_draw(t3, NULL, nu3, m2, h2, n, &p, &again);
        CHECK(memcmp(t2, t3, n * 4) == 0 && memcmp(nu, nu3, n * 4) == 0 &&
              again.counter == r2.counter);
        CHECK(r2.counter - before.counter == (uint64_t)(n + 3) / 4);
        /* the reference's next sample from the same noise */
        bnn_rng_normal(&r1, e, n);
        bnn_ivon_sample(t1, m1, h1, e, n, &p);
        worst = fmax(worst, normwise_f(t2, t1, n));
    }
    printf("fused IVON step vs bnn_ivon_step (rescale_lr, debias %s, ess %g): worst norm-wise "
           "error %.2e\n", flags_on ? "on" : "off", ess, worst);
    CHECK(worst < 1e-5);
    /* one thread against two: the same bits */
    float *m3 = malloc(n * 4), *h3 = malloc(n * 4), *g3 = malloc(n * 4), *t4 = malloc(n * 4);
    memcpy(m3, m2, n * 4), memcpy(h3, h2, n * 4), memcpy(g3, g2, n * 4), memcpy(t4, t2, n * 4);
    memcpy(nu3, nu, n * 4);
    bnn_rng r3 = r2;
    const int threads = bnn_get_threads();
    bnn_rng_normal(&data, gb, n);
    memcpy(ge, gb, n * 4);
    bnn_set_threads(1);
    REQUIRE(bnn__ivon_step_draw(m2, h2, g2, t2, nu, gb, n, 4, &p, &r2) == 0);
    bnn_set_threads(2);
    REQUIRE(bnn__ivon_step_draw(m3, h3, g3, t4, nu3, ge, n, 4, &p, &r3) == 0);
    bnn_set_threads(threads);
    CHECK(memcmp(m2, m3, n * 4) == 0 && memcmp(h2, h3, n * 4) == 0 &&
          memcmp(g2, g3, n * 4) == 0 && memcmp(t2, t4, n * 4) == 0 && memcmp(nu, nu3, n * 4) == 0);
    /* divergence is reported with the step */
    const float huge = 1e38f;
    for (int64_t i = 0; i < 10; i++) gb[i] = huge;
    CHECK_EQ_INT(bnn__ivon_step_draw(m2, h2, g2, t2, nu, gb, n, 9, &p, &r2), BNN_EDIVERGED);
    CHECK(strstr(bnn_last_error(), "update at t = 9") != NULL);
    free(m1), free(h1), free(g1), free(m2), free(h2), free(g2), free(e), free(gb), free(ge);
    free(e2), free(t1), free(t2), free(t3), free(m3), free(h3), free(g3), free(t4);
    free(nu), free(nu3), free(z);
}

int main(void) {
    test_fused_path(true, 5000);
    test_fused_path(false, 5000);
    test_fused_path(true, 1e10);
    test_closed_form();
    replay("case_A.safetensors", "mlp:5-16-3:tanh", false);
    replay("case_B.safetensors", "mlp:5-16-3:tanh", false);
    replay("case_C.safetensors", "mlp:1-16-1:tanh", true);
    return CHECK_DONE();
}
