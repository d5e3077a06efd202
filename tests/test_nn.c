/* Finite-difference gradient checks for every layer, every likelihood and whole models, plus the
 * model spec parser. Each check perturbs one input or weight by ±h in float, recomputes a scalar
 * loss in double and compares (L(+h) − L(−h)) / 2h with the analytic gradient. */
#include "check.h"
#include "nn/layer.h"

#include <string.h>

#define FD_H 1e-2f

/* Relative-to-scale agreement: |fd − an| ≤ atol + rtol·|an|. Returns the number of misses. */
static int compare(const char *what, const double *fd, const float *an, int64_t n, double atol,
                   double rtol) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs(fd[i] - an[i]) <= atol + rtol * fabs(an[i]))) {
            if (bad < 5)
                fprintf(stderr, "  %s[%lld]: finite difference %.6g, analytic %.6g\n", what,
                        (long long)i, fd[i], an[i]);
            bad++;
        }
    }
    return bad;
}

/* L = Σ y ⊙ R for a layer, with a fixed random R, so ∂L/∂y = R. */
static double layer_loss(bnn__layer *l, const float *x, const float *w, const float *R, float *y,
                         int64_t b, bool train, uint64_t rseed) {
    bnn_rng rng = bnn_rng_make(rseed, 0); /* replayed, so dropout masks are the same each call */
    l->vt->forward(l, y, x, w, b, train, &rng);
    double s = 0;
    for (int64_t i = 0; i < b * l->out; i++) s += (double)y[i] * R[i];
    return s;
}

static void check_layer(const bnn__layer_vt *vt, int64_t in, int64_t out, float rate, bool train,
                        bool away_from_zero) {
    const int64_t b = 4;
    bnn__layer l = {.vt = vt, .in = in, .out = out, .rate = rate};
    if (vt->reserve) REQUIRE(vt->reserve(&l, b) == 0);
    int64_t np = vt->nparams(&l);
    float *x = calloc((size_t)(b * in), 4), *y = calloc((size_t)(b * out), 4);
    float *R = calloc((size_t)(b * out), 4), *w = calloc((size_t)np + 1, 4);
    float *dx = calloc((size_t)(b * in), 4), *dw = calloc((size_t)np + 1, 4);
    double *fdx = calloc((size_t)(b * in), 8), *fdw = calloc((size_t)np + 1, 8);
    REQUIRE(x && y && R && w && dx && dw && fdx && fdw);
    bnn_rng rng = bnn_rng_make(11, 0);
    bnn_rng_normal(&rng, x, b * in);
    bnn_rng_normal(&rng, R, b * out);
    if (np) bnn_rng_normal(&rng, w, np);
    if (away_from_zero) /* keep ReLU inputs clear of the kink by more than the step */
        for (int64_t i = 0; i < b * in; i++) x[i] += x[i] >= 0 ? 0.1f : -0.1f;
    layer_loss(&l, x, w, R, y, b, train, 5);
    vt->backward(&l, dx, np ? dw : NULL, R, x, y, w, b);
    float *ycopy = calloc((size_t)(b * out), 4);
    for (int64_t i = 0; i < b * in; i++) {
        float s = x[i];
        x[i] = s + FD_H;
        double lp = layer_loss(&l, x, w, R, ycopy, b, train, 5);
        x[i] = s - FD_H;
        double lm = layer_loss(&l, x, w, R, ycopy, b, train, 5);
        x[i] = s;
        fdx[i] = (lp - lm) / (2.0 * FD_H);
    }
    for (int64_t i = 0; i < np; i++) {
        float s = w[i];
        w[i] = s + FD_H;
        double lp = layer_loss(&l, x, w, R, ycopy, b, train, 5);
        w[i] = s - FD_H;
        double lm = layer_loss(&l, x, w, R, ycopy, b, train, 5);
        w[i] = s;
        fdw[i] = (lp - lm) / (2.0 * FD_H);
    }
    char name[64];
    snprintf(name, sizeof name, "%s dx", vt->kind);
    int bad = compare(name, fdx, dx, b * in, 2e-3, 2e-3);
    snprintf(name, sizeof name, "%s dw", vt->kind);
    bad += compare(name, fdw, dw, np, 2e-3, 2e-3);
    if (bad) fprintf(stderr, "layer %s: %d gradient entries disagree\n", vt->kind, bad);
    CHECK_EQ_INT(bad, 0);
    if (vt->release) vt->release(&l);
    free(x), free(y), free(R), free(w), free(dx), free(dw), free(fdx), free(fdw), free(ycopy);
}

static void test_layers(void) {
    check_layer(&bnn__linear_vt, 5, 3, 0, false, false);
    check_layer(&bnn__linear_vt, 1, 7, 0, false, false);
    check_layer(&bnn__relu_vt, 6, 6, 0, false, true);
    check_layer(&bnn__tanh_vt, 6, 6, 0, false, false);
    check_layer(&bnn__gelu_vt, 6, 6, 0, false, false);
    check_layer(&bnn__dropout_vt, 6, 6, 0.4f, true, false);
    check_layer(&bnn__dropout_vt, 6, 6, 0.4f, false, false);
}

/* Dropout: about p of the features are zeroed in training, the rest scaled by 1/(1−p). */
static void test_dropout_statistics(void) {
    const int64_t b = 100, n = 100;
    bnn__layer l = {.vt = &bnn__dropout_vt, .in = n, .out = n, .rate = 0.3f};
    REQUIRE(bnn__dropout_vt.reserve(&l, b) == 0);
    float *x = malloc(b * n * 4), *y = malloc(b * n * 4);
    for (int64_t i = 0; i < b * n; i++) x[i] = 1.0f;
    bnn_rng rng = bnn_rng_make(1, 2);
    bnn__dropout_vt.forward(&l, y, x, NULL, b, true, &rng);
    int64_t zeros = 0;
    double s = 0;
    for (int64_t i = 0; i < b * n; i++) {
        zeros += y[i] == 0.0f;
        CHECK(y[i] == 0.0f || fabsf(y[i] - 1.0f / 0.7f) < 1e-6f);
        s += y[i];
    }
    CHECK_NEAR((double)zeros / (b * n), 0.3, 0.02);
    CHECK_NEAR(s / (b * n), 1.0, 0.03);
    bnn__dropout_vt.release(&l);
    free(x), free(y);
}

static void test_likelihoods(void) {
    const int64_t b = 5, k = 4;
    float f[20], dout[20], t[20];
    int32_t labels[5] = {0, 3, 1, 2, 3};
    bnn_rng rng = bnn_rng_make(3, 0);
    bnn_rng_normal(&rng, f, b * k);
    bnn_rng_normal(&rng, t, b * k);
    f[3] = 30.0f; /* a large logit: the log-sum-exp must stay finite */
    bnn_lik liks[2] = {{BNN_LIK_CATEGORICAL, 1.0}, {BNN_LIK_GAUSSIAN, 0.7}};
    for (int li = 0; li < 2; li++) {
        bnn_lik_loss(&liks[li], dout, f, labels, t, b, k);
        double fd[20];
        for (int64_t i = 0; i < b * k; i++) {
            float s = f[i];
            f[i] = s + 1e-2f;
            double lp = bnn_lik_loss(&liks[li], NULL, f, labels, t, b, k);
            f[i] = s - 1e-2f;
            double lm = bnn_lik_loss(&liks[li], NULL, f, labels, t, b, k);
            f[i] = s;
            fd[i] = (lp - lm) / 2e-2;
        }
        CHECK_EQ_INT(compare(li ? "gaussian" : "categorical", fd, dout, b * k, 1e-4, 1e-3), 0);
    }
    /* Closed forms: uniform logits give log K; a Gaussian residual of σ gives ½ + log σ + ½ log 2π. */
    float zero[4] = {0, 0, 0, 0}, one[1] = {0.7f}, z1[1] = {0};
    int32_t lab[1] = {2};
    CHECK_NEAR(bnn_lik_loss(&liks[0], NULL, zero, lab, NULL, 1, 4), log(4.0), 1e-12);
    CHECK_NEAR(bnn_lik_loss(&liks[1], NULL, one, NULL, z1, 1, 1),
               0.5 * pow(0.7f / 0.7, 2) + log(0.7) + 0.5 * log(2 * 3.14159265358979323846), 1e-7);
    float big[2] = {1000.0f, -1000.0f};
    int32_t l0[1] = {1};
    CHECK_NEAR(bnn_lik_loss(&liks[0], NULL, big, l0, NULL, 1, 2), 2000.0, 1e-9);
}

/* Whole model: mean loss of the likelihood, gradients for every parameter and the input. */
static void check_model(const char *spec, bnn_lik_kind kind, bool train) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, spec) == 0);
    const int64_t b = 6, d = bnn_model_input_dim(m), k = bnn_model_output_dim(m);
    const int64_t np = bnn_model_nparams(m);
    REQUIRE(bnn_model_reserve(m, b) == 0);
    bnn_model_init(m, 7);
    float *w = bnn_model_params(m);
    /* Larger weights than the default initialisation make every layer matter. */
    for (int64_t i = 0; i < np; i++) w[i] *= 3.0f;
    float *x = malloc(b * d * 4), *t = malloc(b * k * 4), *dout = malloc(b * k * 4);
    float *g = calloc(np, 4), *dx = calloc(b * d, 4);
    double *fd = calloc(np, 8), *fdx = calloc(b * d, 8);
    int32_t lab[6];
    bnn_rng rng = bnn_rng_make(8, 0);
    bnn_rng_normal(&rng, x, b * d);
    bnn_rng_normal(&rng, t, b * k);
    for (int i = 0; i < b; i++) lab[i] = (int32_t)(i % k);
    bnn_lik lik = {kind, 0.5};
#define LOSS()                                                                                    \
    (rng = bnn_rng_make(99, 0),                                                                  \
     bnn_lik_loss(&lik, NULL, bnn_model_forward(m, w, x, b, train, &rng), lab, t, b, k))
    rng = bnn_rng_make(99, 0);
    const float *f = bnn_model_forward(m, w, x, b, train, &rng);
    bnn_lik_loss(&lik, dout, f, lab, t, b, k);
    bnn_model_backward_input(m, w, dout, g, dx);
    for (int64_t i = 0; i < np; i++) {
        float s = w[i];
        w[i] = s + FD_H;
        double lp = LOSS();
        w[i] = s - FD_H;
        double lm = LOSS();
        w[i] = s;
        fd[i] = (lp - lm) / (2.0 * FD_H);
    }
    for (int64_t i = 0; i < b * d; i++) {
        float s = x[i];
        x[i] = s + FD_H;
        double lp = LOSS();
        x[i] = s - FD_H;
        double lm = LOSS();
        x[i] = s;
        fdx[i] = (lp - lm) / (2.0 * FD_H);
    }
#undef LOSS
    int bad = compare(spec, fd, g, np, 3e-3, 3e-2) + compare("dx", fdx, dx, b * d, 3e-3, 3e-2);
    if (bad) fprintf(stderr, "model %s: %d gradient entries disagree\n", spec, bad);
    CHECK_EQ_INT(bad, 0);
    /* backward adds into the gradient: a second call doubles it. */
    float *g2 = malloc(np * 4);
    memcpy(g2, g, np * 4);
    rng = bnn_rng_make(99, 0);
    bnn_model_forward(m, w, x, b, train, &rng); /* the FD loop left a perturbed forward cached */
    bnn_model_backward(m, w, dout, g2);
    int doubled = 1;
    for (int64_t i = 0; i < np; i++) doubled &= fabsf(g2[i] - 2 * g[i]) <= 1e-6f * (1 + fabsf(g[i]));
    CHECK(doubled);
    free(x), free(t), free(dout), free(g), free(g2), free(dx), free(fd), free(fdx);
    bnn_model_free(m);
}

static void test_models(void) {
    check_model("mlp:4-6-5-3:tanh", BNN_LIK_CATEGORICAL, false);
    check_model("mlp:3-8-2:gelu", BNN_LIK_GAUSSIAN, false);
    check_model("mlp:4-7-7-3:gelu:dropout=0.3", BNN_LIK_CATEGORICAL, true);
    check_model("mlp:5-4-1:tanh", BNN_LIK_GAUSSIAN, false);
}

static void test_spec(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:784-512-256-10") == 0);
    CHECK_EQ_INT(bnn_model_nparams(m), 784 * 512 + 512 + 512 * 256 + 256 + 256 * 10 + 10);
    CHECK_EQ_INT(bnn_model_nlayers(m), 5);
    CHECK(!strcmp(bnn_model_layer_kind(m, 1), "relu"));
    CHECK(!strcmp(bnn_model_spec(m), "mlp:784-512-256-10"));
    CHECK(((uintptr_t)bnn_model_params(m) % 64) == 0);
    int64_t wo, ws[2], bo, bl;
    REQUIRE(bnn_model_layer_tensors(m, 2, &wo, ws, &bo, &bl) == 0);
    CHECK_EQ_INT(wo, 784 * 512 + 512);
    CHECK(ws[0] == 256 && ws[1] == 512 && bl == 256 && bo == wo + 256 * 512);
    CHECK(bnn_model_layer_tensors(m, 1, &wo, ws, &bo, &bl) == BNN_EINVAL);
    bnn_model_free(m);
    REQUIRE(bnn_model_new(&m, "mlp:2-50-50-1:tanh:dropout=0.25") == 0);
    CHECK(!strcmp(bnn_model_spec(m), "mlp:2-50-50-1:tanh:dropout=0.25"));
    CHECK_EQ_INT(bnn_model_nlayers(m), 7);
    CHECK(!strcmp(bnn_model_layer_kind(m, 2), "dropout"));
    bnn_model_free(m);
    /* The canonical spec keeps the rate the layers use (a float), so a file's spec rebuilds the
     * same model: %g's six digits once made 0.1000004 into 0.1 and broke bit-exact resume. */
    const char *rates[][2] = {{"0.1000004", "0.1000004"}, {"0.333333333333", "0.33333334"},
                              {"1e-7", "1e-07"}, {"0.5", "0.5"}, {"1e-45", "1e-45"},
                              /* near the midpoint of two floats: formatting the double at 9
                               * digits gave the neighbouring float */
                              {"0.27681548893451685", "0.27681547"}};
    for (int i = 0; i < 6; i++) {
        char spec[64], want[64];
        snprintf(spec, sizeof spec, "mlp:2-3-2:dropout=%s", rates[i][0]);
        snprintf(want, sizeof want, "mlp:2-3-2:dropout=%s", rates[i][1]);
        REQUIRE(bnn_model_new(&m, spec) == 0);
        CHECK(!strcmp(bnn_model_spec(m), want));
        bnn_model *m2;
        REQUIRE(bnn_model_new(&m2, bnn_model_spec(m)) == 0);
        CHECK(!strcmp(bnn_model_spec(m2), want));
        CHECK((float)strtod(rates[i][0], NULL) == (float)strtod(rates[i][1], NULL));
        bnn_model_free(m2), bnn_model_free(m);
    }
    const char *bad[] = {"", "mlp", "mlp:", "mlp:10", "mlp:10-", "mlp:10-x-3", "mlp:0-3",
                         "cnn:3-4", "mlp:3-4:sigmoid", "mlp:3-4:dropout=1", "mlp:3-4:dropout=",
                         "mlp:3-4:dropout=-0.1", "mlp:3--4", "mlp:3-99999999999-2", "mlp:3-4:",
                         "mlp:3-4:relu:tanh", "mlp:3-4:tanh:tanh", "mlp:3-4:dropout=0.5:dropout=0.1",
                         "mlp:3-4:dropout=0.99999999",
                         /* 0 as a float: dropout layers dropping nothing, a spec without them */
                         "mlp:3-4:dropout=1e-50"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = (bnn_model *)1;
        int rc = bnn_model_new(&m, bad[i]);
        if (rc != BNN_EINVAL) fprintf(stderr, "spec '%s' gave %d\n", bad[i], rc);
        CHECK_EQ_INT(rc, BNN_EINVAL);
        CHECK(m == NULL);
        CHECK(strlen(bnn_last_error()) > 0);
    }
    /* A size that is not all decimal digits is named as written, counting the input's size as 1
     * (strtoll would have read 0x10 as 0, 5x as 5 and -5 as an empty size). */
    const char *named[][2] = {{"mlp:2-0x10-2", "size 2, '0x10', is not a whole number"},
                              {"mlp:2-5x-2", "size 2, '5x',"},
                              {"mlp:2--5-2", "size 2, '',"},
                              {"mlp:2-16777217", "size 2, '16777217',"},
                              {"mlp:+2-3", "size 1, '+2',"}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        CHECK_EQ_INT(bnn_model_new(&m, named[i][0]), BNN_EINVAL);
        if (!strstr(bnn_last_error(), named[i][1]))
            fprintf(stderr, "spec '%s': %s\n", named[i][0], bnn_last_error());
        CHECK(strstr(bnn_last_error(), named[i][1]) != NULL);
    }
    /* Activations beyond the memory limit are refused before anything is allocated, with the
     * size: 256 rows through layers of 100000, 100000 (relu) and 2 outputs, plus two gradient
     * buffers of 100000, are 256 · 400002 floats. */
    REQUIRE(bnn_model_new(&m, "mlp:2-100000-2") == 0);
    setenv("BNN_MEMORY_LIMIT", "64M", 1);
    CHECK_EQ_INT(bnn_model_reserve(m, 256), BNN_ENOMEM);
    CHECK(strstr(bnn_last_error(), "a batch of 256 rows through model mlp:2-100000-2 needs about "
                                    "391 MiB for its activations") != NULL);
    CHECK_EQ_INT(bnn_model_reserve(m, 32), 0); /* 48.8 MiB */
    unsetenv("BNN_MEMORY_LIMIT");
    bnn_model_free(m);
    /* The initialisation follows PyTorch's nn.Linear bounds and is reproducible by seed. */
    REQUIRE(bnn_model_new(&m, "mlp:100-30-2") == 0);
    bnn_model_init(m, 1);
    float w1 = bnn_model_params(m)[5], mx = 0;
    for (int64_t i = 0; i < 3000; i++) mx = fmaxf(mx, fabsf(bnn_model_params(m)[i]));
    CHECK(mx <= 0.1f && mx > 0.09f);
    bnn_model_init(m, 1);
    CHECK(bnn_model_params(m)[5] == w1);
    bnn_model_init(m, 2);
    CHECK(bnn_model_params(m)[5] != w1);
    bnn_model_free(m);
}

/* The curvature hook sees each Linear layer's input and output gradient; with a gradient buffer
 * the hooked backward equals bnn_model_backward, and without one it still reaches every layer. */
typedef struct hook_log {
    int calls;
    int64_t layers[8];
    float last_G0, last_A0;
} hook_log;

static void record(void *ctx, int64_t layer, const float *A, const float *G, int64_t b, int64_t in,
                   int64_t out) {
    hook_log *h = ctx;
    if (h->calls < 8) h->layers[h->calls] = layer;
    if (h->calls == 0) h->last_G0 = G[0], h->last_A0 = A[0];
    h->calls++;
    (void)b, (void)in, (void)out;
}

static void test_hook(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:3-5-4-2:tanh") == 0);
    REQUIRE(bnn_model_reserve(m, 4) == 0);
    bnn_model_init(m, 3);
    const int64_t np = bnn_model_nparams(m);
    float x[12], dout[8], *g1 = calloc(np, 4), *g2 = calloc(np, 4);
    bnn_rng r = bnn_rng_make(1, 1);
    bnn_rng_normal(&r, x, 12);
    bnn_rng_normal(&r, dout, 8);
    const float *f = bnn_model_forward(m, bnn_model_params(m), x, 4, false, NULL);
    float f_last_in = 0; /* the last layer's input is the second tanh's output */
    (void)f;
    bnn_model_backward(m, bnn_model_params(m), dout, g1);
    hook_log h = {0};
    bnn__model_backward_hook(m, bnn_model_params(m), dout, g2, record, &h);
    CHECK(memcmp(g1, g2, np * 4) == 0);
    CHECK_EQ_INT(h.calls, 3);
    CHECK(h.layers[0] == 4 && h.layers[1] == 2 && h.layers[2] == 0);
    CHECK(h.last_G0 == dout[0]); /* the last layer's output gradient is dout itself */
    f_last_in = bnn__model_act(m, 3)[0];
    CHECK(h.last_A0 == f_last_in);
    hook_log h2 = {0};
    bnn__model_backward_hook(m, bnn_model_params(m), dout, NULL, record, &h2);
    CHECK_EQ_INT(h2.calls, 3);
    free(g1), free(g2);
    bnn_model_free(m);
}

/* A batch so large that batch × width overflows is refused, and the model stays usable. */
static void test_reserve_limits(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:3-5-2") == 0);
    CHECK_EQ_INT(bnn_model_reserve(m, INT64_MAX / 2), BNN_ENOMEM);
    CHECK(strstr(bnn_last_error(), "too large") != NULL);
    CHECK_EQ_INT(bnn_model_reserve(m, 0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_model_reserve(m, 8), 0);
    bnn_model_free(m);
}

/* The tanh layer's own branchless tanh (activation.c) against double precision on a fine grid
 * through both of its branches and their seam at 0.55, tiny and huge inputs, and the edge
 * cases; enough values (40,000) for the threaded, vectorised loop. */
static void test_tanh_accuracy(void) {
    enum { N = 40000 };
    static float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = -10.0f + 20.0f * (float)i / N;
    x[0] = 1e-30f, x[1] = -3e-8f, x[2] = 0.55f, x[3] = nextafterf(0.55f, 0.0f), x[4] = 50.0f;
    x[5] = -INFINITY, x[6] = NAN, x[7] = -0.0f, x[8] = 1e-40f;
    bnn__layer l = {.vt = &bnn__tanh_vt, .in = N, .out = N};
    l.vt->forward(&l, y, x, NULL, 1, false, NULL);
    double worst = 0;
    for (int i = 0; i < N; i++)
        if (i != 5 && i != 6 && x[i] != 0.0f)
            worst = fmax(worst, fabs(y[i] / tanh((double)x[i]) - 1));
    fprintf(stderr, "tanh layer: worst relative error %.2f * 2^-24\n", worst / 0x1p-24);
    CHECK(worst < 4 * 0x1p-24);
    CHECK(y[5] == -1.0f && isnan(y[6]) && y[7] == 0.0f && signbit(y[7]) && y[4] == 1.0f);
    CHECK(y[8] == 1e-40f); /* a subnormal input is its own tanh */
    /* GELU's own Φ (activation.c), relative to double precision's x·Φ(x) on [−12, 9]. On this
     * grid when written: 17.6 · 2⁻²⁴ on [−3, 9] and 284 · 2⁻²⁴ below (exp(−x²/2) of a float x²);
     * over every float, 23.9 · 2⁻²⁴ at −2.979 and 302 · 2⁻²⁴ at −11.86. The former
     * 0.5x(1 + erff(x/√2)) had 169 · 2⁻²⁴ on [−3, 9] and gave 0 below about −5.5. */
    for (int i = 0; i < N; i++) x[i] = -12.0f + 21.0f * (float)i / N;
    l.vt = &bnn__gelu_vt;
    l.vt->forward(&l, y, x, NULL, 1, false, NULL);
    worst = 0;
    double worst_tail = 0;
    for (int i = 0; i < N; i++) {
        const double g = x[i] * 0.5 * erfc(-(double)x[i] / sqrt(2.0));
        if (g == 0) continue;
        const double e = fabs(y[i] / g - 1);
        if (x[i] > -3.0f) worst = fmax(worst, e);
        else worst_tail = fmax(worst_tail, e);
    }
    fprintf(stderr, "GELU layer: worst relative error %.2f * 2^-24 on [-3, 9], %.2f below\n",
            worst / 0x1p-24, worst_tail / 0x1p-24);
    CHECK(worst < 32 * 0x1p-24);
    CHECK(worst_tail < 512 * 0x1p-24);
    /* far out: the value and the gradient go to 0 (below −13.2) and to x and 1, also where x²
     * overflows (once the exponential was held at e⁻⁸⁷ there: GELU(−14) = −1.9e-38 and
     * GELU′(FLT_MAX) = 3.2) */
    float xe[6] = {-20.0f, -14.0f, -1e30f, -FLT_MAX, FLT_MAX, 30.0f}, ye[6], de[6], ones[6];
    for (int i = 0; i < 6; i++) ones[i] = 1.0f;
    l.in = l.out = 6;
    l.vt->forward(&l, ye, xe, NULL, 1, false, NULL);
    l.vt->backward(&l, de, NULL, ones, xe, ye, NULL, 1);
    for (int i = 0; i < 4; i++) CHECK(ye[i] == 0.0f && de[i] == 0.0f);
    CHECK(ye[4] == FLT_MAX && de[4] == 1.0f && ye[5] == 30.0f && de[5] == 1.0f);
}

int main(void) {
    test_tanh_accuracy();
    test_reserve_limits();
    test_hook();
    test_layers();
    test_dropout_statistics();
    test_likelihoods();
    test_models();
    test_spec();
    return CHECK_DONE();
}
