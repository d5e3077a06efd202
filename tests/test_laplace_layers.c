/* Per-layer prior precision of the Laplace posterior (laplace-torch's layer-wise
 * prior_precision, one δ per parameter tensor; bnn_laplace_set_prior_layers and friends), on the
 * cls_all_* fixtures (fixtures/laplace, laplace-torch 44ea62ac, float64; Linear(4,12) and
 * Linear(12,3): tensors of 48, 12, 36 and 3 parameters):
 *  1. all δ_l equal reproduces the scalar lml, its gradient, log det and GLM f_var;
 *  2. distinct δ_l: lml equals a dense computation log_lik − ½[log det(H + D) − Σ P_l log δ_l +
 *     Σ δ_l ‖θ_l‖²] from the fixture's dense H (LAPACK Cholesky in the test);
 *  3. ∂lml/∂log δ_l against central differences;
 *  4. optimize_layers ends at least as high as the scalar optimum, with a small gradient, and
 *     with one group takes the scalar optimiser's steps;
 *  5. GLM f_var with distinct δ_l equals J (H + D)⁻¹ Jᵀ with J from back-propagation;
 *  6. errors: lowrank BNN_EUNSUPPORTED, wrong nlayers or δ ≤ 0 BNN_EINVAL. */
#include "check.h"
#include "core/internal.h"

#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

/* Internals of src/fit/laplace.c (not in a header yet). */

/* laplace-torch's layers are the parameter tensors: 0.weight, 0.bias, 2.weight, 2.bias. */
#define NL 4
static const int64_t SIZES[NL] = {48, 12, 36, 3};

/* The group (tensor) of parameter i. */
static int grp(int64_t i) {
    int l = 0;
    for (int64_t end = SIZES[0]; i >= end && l < NL - 1; end += SIZES[++l]) {}
    return l;
}

static double rel(double c, double r) { return fabs(c - r) / (fabs(r) > 0 ? fabs(r) : 1.0); }

static double worst[6];

static void report(int kind, const char *file, const char *what, double err, double tol) {
    if (!(err <= worst[kind])) worst[kind] = err;
    if (!(err <= tol)) {
        check_failures++;
        fprintf(stderr, "%s: %s error %.3g > %.3g\n", file, what, err, tol);
    }
    check_count++;
}

static bnn_st *open_fixture(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/laplace/%s.safetensors", BNN_FIXTURES, name);
    bnn_st *st = NULL;
    if (bnn_st_read(&st, path) != 0) {
        fprintf(stderr, "note: %s not readable; case skipped\n", path);
        check_skips++;
        return NULL;
    }
    return st;
}

static bool has(bnn_st *st, const char *name) {
    bnn_st_tensor t;
    return bnn_st_get(st, name, &t) == 0;
}

static double *tensor(bnn_st *st, const char *name, int64_t *numel) {
    bnn_st_tensor t;
    REQUIRE(bnn_st_get(st, name, &t) == 0);
    double *d = malloc((size_t)t.numel * sizeof(double));
    REQUIRE(d && bnn_st_to_f64(&t, d) == 0);
    if (numel) *numel = t.numel;
    return d;
}

static double scalar(bnn_st *st, const char *name) {
    double *d = tensor(st, name, NULL), v = d[0];
    free(d);
    return v;
}

/* The fixture's curvature as a bnn_curv (classification, subset all), and its dense form. */
static bnn_curv *fixture_curv(bnn_st *st, const char *hs, int64_t P, double *Hd) {
    const double loss = -scalar(st, "log_lik");
    bnn_curv *c = NULL;
    if (!strcmp(hs, "diag") || !strcmp(hs, "full")) {
        const bool full = !strcmp(hs, "full");
        double *H = tensor(st, "H", NULL);
        REQUIRE(bnn_curv_from_arrays(&c, full ? BNN_HESS_FULL : BNN_HESS_DIAG, P, 0, 90, 3, loss,
                                     full ? NULL : H, full ? H : NULL, 0, NULL, NULL, NULL,
                                     NULL) == 0);
        memset(Hd, 0, (size_t)(P * P) * sizeof(double));
        for (int64_t i = 0; i < P; i++)
            if (full)
                memcpy(Hd, H, (size_t)(P * P) * sizeof(double));
            else
                Hd[i * P + i] = H[i];
        free(H);
    } else {
        int64_t nb = 0, n0[8], n1[8];
        double *f0[8], *f1[8];
        char name[64];
        for (;; nb++) {
            snprintf(name, sizeof name, "H_kron.b%lld.f0", (long long)nb);
            if (!has(st, name)) break;
            REQUIRE(nb < 8);
            int64_t q;
            f0[nb] = tensor(st, name, &q);
            n0[nb] = (int64_t)llround(sqrt((double)q));
            snprintf(name, sizeof name, "H_kron.b%lld.f1", (long long)nb);
            f1[nb] = NULL, n1[nb] = 0;
            if (has(st, name)) {
                f1[nb] = tensor(st, name, &q);
                n1[nb] = (int64_t)llround(sqrt((double)q));
            }
        }
        REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_KRON, P, 0, 90, 3, loss, NULL, NULL, nb, n0, n1,
                                     (const double *const *)f0, (const double *const *)f1) == 0);
        for (int64_t b = 0; b < nb; b++)
            free(f0[b]), free(f1[b]);
        double *H = tensor(st, "H_dense", NULL);
        memcpy(Hd, H, (size_t)(P * P) * sizeof(double));
        free(H);
    }
    return c;
}

/* H + D by Cholesky: log det, and (when inv) the inverse. */
static double dense_logdet(double *inv, const double *Hd, const double *dl, int64_t P) {
    double *A = malloc((size_t)(P * P) * sizeof(double));
    memcpy(A, Hd, (size_t)(P * P) * sizeof(double));
    for (int64_t i = 0; i < P; i++)
        A[i * P + i] += dl[grp(i)];
    REQUIRE(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)P, A, (lapack_int)P) == 0);
    double s = 0;
    for (int64_t i = 0; i < P; i++)
        s += 2.0 * log(A[i * P + i]);
    if (inv) {
        REQUIRE(LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', (lapack_int)P, A, (lapack_int)P) == 0);
        for (int64_t i = 0; i < P; i++)
            for (int64_t j = 0; j <= i; j++)
                inv[i * P + j] = inv[j * P + i] = A[j * P + i];
    }
    free(A);
    return s;
}

/* bnn_laplace_set_progress's callback: the steps seen, in order. */
typedef struct steps_seen {
    int64_t calls, last, steps;
    bool in_order;
} steps_seen;

static void count_step(void *ctx, int64_t step, int64_t steps) {
    steps_seen *c = ctx;
    c->in_order = c->in_order && step == c->last + 1;
    c->calls++, c->last = step, c->steps = steps;
}

/* With one group the per-layer optimiser is the scalar one: the same Adam from the same start,
 * step for step (the end points alone would not show a wrong step: both reach the optimum). Both
 * report each step to the progress callback. */
static void one_group_steps(bnn_laplace *la, int64_t P, const char *file) {
    const int64_t one[1] = {P};
    REQUIRE(bnn__laplace_set_layout(la, 1, one) == 0);
    steps_seen seen = {.in_order = true};
    bnn_laplace_set_progress(la, count_step, &seen);
    REQUIRE(bnn_laplace_optimize(la, 5) == 0);
    CHECK(seen.calls == 5 && seen.last == 5 && seen.steps == 5 && seen.in_order);
    const double ds = bnn_laplace_prior_prec(la), ss = bnn_laplace_sigma(la);
    seen = (steps_seen){.in_order = true};
    REQUIRE(bnn_laplace_optimize_layers(la, 5) == 0);
    CHECK(seen.calls == 5 && seen.last == 5 && seen.steps == 5 && seen.in_order);
    bnn_laplace_set_progress(la, NULL, NULL);
    double d1;
    REQUIRE(bnn_laplace_prior_layers(la, &d1, 1) == 0);
    report(0, file, "one group, 5 Adam steps: δ vs scalar", rel(d1, ds), 1e-12);
    report(0, file, "one group, 5 Adam steps: σ vs scalar", rel(bnn_laplace_sigma(la), ss), 1e-12);
}

static void layers_case(const char *file, const char *hs) {
    bnn_st *st = open_fixture(file);
    if (!st) return;
    int64_t P;
    double *mean = tensor(st, "mean", &P), *theta_map = tensor(st, "theta_map", NULL);
    REQUIRE(P == 99);
    double *Hd = malloc((size_t)(P * P) * sizeof(double)), *Sig = malloc((size_t)(P * P) * 8);
    bnn_laplace *la;
    REQUIRE(bnn__laplace_new_f64(&la, fixture_curv(st, hs, P, Hd), mean, BNN_TASK_CLASSIFICATION) ==
            0);
    if (strcmp(hs, "kron")) { /* diag and full do not know the tensors: one group until told */
        CHECK_EQ_INT(bnn_laplace_nlayers(la), 1);
    } else { /* kron: one group per block, and groups must be whole blocks */
        CHECK_EQ_INT(bnn_laplace_nlayers(la), NL);
        const int64_t split[2] = {50, 49};
        CHECK_EQ_INT(bnn__laplace_set_layout(la, 2, split), BNN_ESHAPE);
    }
    /* Files written before the prior had one δ per tensor group a Linear layer's weight and bias
     * (60 and 39 here): still a valid layout, for kron too. */
    one_group_steps(la, P, file);
    const int64_t old[2] = {60, 39};
    REQUIRE(bnn__laplace_set_layout(la, 2, old) == 0);
    REQUIRE(bnn__laplace_set_layout(la, NL, SIZES) == 0);
    REQUIRE(bnn_laplace_nlayers(la) == NL);
    const double log_lik = scalar(st, "log_lik");

    /* 1. All equal: the scalar results. */
    {
        const double d = 0.37, dl[NL] = {d, d, d, d};
        double g[NL], gs, g1;
        const double lml = bnn_laplace_lml_layers(la, dl, NL, 1.0, g, &gs);
        const double ref = bnn_laplace_lml(la, d, 1.0, &g1, NULL);
        report(0, file, "equal δ_l: lml vs scalar", rel(lml, ref), 1e-12);
        report(0, file, "equal δ_l: Σ gradient vs scalar", fabs(g[0] + g[1] + g[2] + g[3] - g1),
               1e-10);
        bnn_laplace_set_prior(la, d, 1.0);
        const double ld = bnn_laplace_logdet(la);
        REQUIRE(bnn_laplace_set_prior_layers(la, dl, NL) == 0);
        report(0, file, "equal δ_l: logdet vs scalar", rel(bnn_laplace_logdet(la), ld), 1e-12);
        double back[NL];
        REQUIRE(bnn_laplace_prior_layers(la, back, NL) == 0);
        CHECK(back[0] == d && back[3] == d && bnn_laplace_prior_prec(la) == d);
    }

    /* 2. Distinct δ_l: the dense computation. */
    const double dl[NL] = {0.3, 3.0, 1.2, 0.05};
    {
        double t[NL] = {0}, bracket = 0;
        for (int64_t i = 0; i < P; i++)
            t[grp(i)] += mean[i] * mean[i];
        for (int l = 0; l < NL; l++)
            bracket += -(double)SIZES[l] * log(dl[l]) + dl[l] * t[l];
        const double ref = log_lik - 0.5 * (dense_logdet(Sig, Hd, dl, P) + bracket);
        const double lml = bnn_laplace_lml_layers(la, dl, NL, 1.0, NULL, NULL);
        report(1, file, "lml vs dense", rel(lml, ref), 1e-10);
        REQUIRE(bnn_laplace_set_prior_layers(la, dl, NL) == 0);
        report(1, file, "logdet vs dense",
               rel(bnn_laplace_logdet(la), dense_logdet(NULL, Hd, dl, P)), 1e-10);
        double back[NL];
        REQUIRE(bnn_laplace_prior_layers(la, back, NL) == 0);
        CHECK(back[0] == dl[0] && back[1] == dl[1] && back[2] == dl[2] && back[3] == dl[3]);
        CHECK_NEAR(bnn_laplace_prior_prec(la), (0.3 + 3.0 + 1.2 + 0.05) / 4, 1e-15);
        /* The precision reflects D. */
        double *Pd = malloc((size_t)(P * P) * sizeof(double)), *pdg = malloc((size_t)P * 8);
        REQUIRE(bnn_laplace_precision_dense(la, Pd) == 0);
        REQUIRE(bnn_laplace_precision_diag(la, pdg) == 0);
        double e = 0;
        for (int64_t i = 0; i < P; i++)
            for (int64_t j = 0; j < P; j++) {
                const double r = Hd[i * P + j] + (i == j ? dl[grp(i)] : 0.0);
                e = fmax(e, fabs(Pd[i * P + j] - r));
                if (i == j) e = fmax(e, fabs(pdg[i] - r));
            }
        report(1, file, "precision vs H + D", e, 1e-10);
        free(Pd), free(pdg);
    }

    /* 3. Gradient vs central differences in log δ_l. */
    {
        double g[NL];
        bnn_laplace_lml_layers(la, dl, NL, 1.0, g, NULL);
        for (int l = 0; l < NL; l++) {
            const double h = 1e-5;
            double dp[NL], dm[NL];
            memcpy(dp, dl, sizeof dp), memcpy(dm, dl, sizeof dm);
            dp[l] *= exp(h), dm[l] *= exp(-h);
            const double fd = (bnn_laplace_lml_layers(la, dp, NL, 1.0, NULL, NULL) -
                               bnn_laplace_lml_layers(la, dm, NL, 1.0, NULL, NULL)) /
                              (2 * h);
            report(2, file, "∂lml/∂log δ_l vs central differences", rel(g[l], fd), 1e-7);
        }
    }

    /* 5. GLM f_var with distinct δ_l: J (H + D)⁻¹ Jᵀ, J by back-propagation. */
    {
        bnn_model *m;
        REQUIRE(bnn_model_new(&m, "mlp:4-12-3:tanh") == 0);
        REQUIRE(bnn_model_nparams(m) == P);
        for (int64_t i = 0; i < P; i++)
            bnn_model_params(m)[i] = (float)theta_map[i];
        int64_t nx;
        double *Xt = tensor(st, "Xtest", &nx);
        const int64_t K = 3, n = nx / 4;
        float *x = malloc((size_t)nx * sizeof(float)), *grad = malloc((size_t)P * sizeof(float));
        for (int64_t i = 0; i < nx; i++)
            x[i] = (float)Xt[i];
        double *fmu = malloc((size_t)(n * K) * 8), *fv = malloc((size_t)(n * K * K) * 8);
        double *fv_ref = malloc((size_t)(n * K * K) * 8), *J = malloc((size_t)(K * P) * 8);
        REQUIRE(bnn_model_reserve(m, 8) == 0);
        for (int64_t t = 0; t < n; t++) {
            for (int64_t c = 0; c < K; c++) {
                float e[3] = {0, 0, 0};
                e[c] = 1;
                bnn_model_forward(m, bnn_model_params(m), x + t * 4, 1, false, NULL);
                memset(grad, 0, (size_t)P * sizeof(float));
                bnn_model_backward(m, bnn_model_params(m), e, grad);
                for (int64_t i = 0; i < P; i++)
                    J[c * P + i] = grad[i];
            }
            for (int64_t c = 0; c < K; c++)
                for (int64_t c2 = 0; c2 < K; c2++) {
                    double s = 0;
                    for (int64_t i = 0; i < P; i++)
                        for (int64_t j = 0; j < P; j++)
                            s += J[c * P + i] * Sig[i * P + j] * J[c2 * P + j];
                    fv_ref[(t * K + c) * K + c2] = s;
                }
        }
        REQUIRE(bnn_laplace_set_prior_layers(la, dl, NL) == 0);
        REQUIRE(bnn_laplace_glm(la, m, x, n, fmu, fv) == 0);
        report(4, file, "GLM f_var vs J (H + D)⁻¹ Jᵀ", check_relerr(fv, fv_ref, n * K * K), 1e-6);
        /* Equal δ_l: the scalar predictive, exactly (same code path). */
        double *fv1 = malloc((size_t)(n * K * K) * 8);
        bnn_laplace_set_prior(la, 0.37, 1.0);
        REQUIRE(bnn_laplace_glm(la, m, x, n, fmu, fv1) == 0);
        const double eq[NL] = {0.37, 0.37, 0.37, 0.37};
        REQUIRE(bnn_laplace_set_prior_layers(la, eq, NL) == 0);
        REQUIRE(bnn_laplace_glm(la, m, x, n, fmu, fv) == 0);
        report(0, file, "equal δ_l: GLM f_var vs scalar", check_relerr(fv, fv1, n * K * K), 1e-12);
        /* Nearly equal (takes the per-layer path): the scalar predictive to rounding. */
        const double ne[NL] = {0.37, 0.37, 0.37, 0.37 * (1 + 1e-14)};
        REQUIRE(bnn_laplace_set_prior_layers(la, ne, NL) == 0);
        REQUIRE(bnn_laplace_glm(la, m, x, n, fmu, fv) == 0);
        report(0, file, "nearly equal δ_l (per-layer path): GLM f_var vs scalar",
               check_relerr(fv, fv1, n * K * K), 1e-10);
        /* Precisions given in a list (a grid search) are scalar ones: the per-layer δ_l the
         * posterior holds are neither used (full's Cholesky factor of H + D among them) nor
         * changed; f_var at 0.37 is the scalar call's to the last bit. */
        {
            const double ds[2] = {5.0, 0.37};
            double *vv = malloc((size_t)(2 * n * K * K) * 8), back[NL];
            REQUIRE(bnn_laplace_set_prior_layers(la, dl, NL) == 0);
            REQUIRE(bnn__laplace_glm_priors(la, m, x, n, ds, 2, fmu, vv, "test") == 0);
            CHECK(memcmp(vv + n * K * K, fv1, (size_t)(n * K * K) * 8) == 0);
            REQUIRE(bnn_laplace_prior_layers(la, back, NL) == 0);
            CHECK(memcmp(back, dl, sizeof back) == 0);
            free(vv);
        }
        /* Samples: finite and different from the mean. */
        bnn_rng rng = bnn_rng_make(3, 0);
        float *th = malloc((size_t)P * sizeof(float));
        REQUIRE(bnn_laplace_set_prior_layers(la, dl, NL) == 0);
        REQUIRE(bnn_laplace_sample(la, &rng, th) == 0);
        bool fin = true;
        for (int64_t i = 0; i < P; i++)
            fin = fin && isfinite(th[i]);
        CHECK(fin);
        free(th), free(fv1), free(J), free(fv_ref), free(fv), free(fmu), free(grad), free(x),
            free(Xt);
        bnn_model_free(m);
    }

    /* 4. optimize_layers: at least the scalar optimum, with a small gradient. */
    {
        REQUIRE(bnn_laplace_optimize(la, 1000) == 0);
        const double ds = bnn_laplace_prior_prec(la);
        const double lml_s = bnn_laplace_lml(la, ds, 1.0, NULL, NULL);
        REQUIRE(bnn_laplace_optimize_layers(la, 1000) == 0);
        double d2[NL], g[NL], gmax = 0;
        REQUIRE(bnn_laplace_prior_layers(la, d2, NL) == 0);
        const double lml_l = bnn_laplace_lml_layers(la, d2, NL, 1.0, g, NULL);
        for (int l = 0; l < NL; l++) gmax = fmax(gmax, fabs(g[l]));
        report(3, file, "lml: scalar optimum − per-layer optimum", fmax(0.0, lml_s - lml_l), 1e-9);
        report(3, file, "|∂lml/∂log δ_l| at the per-layer optimum", gmax, 1e-3);
        printf("%s: scalar δ %.6g (lml %.8f); per-tensor δ (%.6g, %.6g, %.6g, %.6g) (lml %.8f)\n",
               file, ds, lml_s, d2[0], d2[1], d2[2], d2[3], lml_l);
    }

    /* 6. Errors. */
    {
        const double bad[NL] = {1.0, 1.0, 0.0, 1.0}, three[3] = {1, 1, 1};
        CHECK_EQ_INT(bnn_laplace_set_prior_layers(la, three, 3), BNN_EINVAL);
        CHECK_EQ_INT(bnn_laplace_set_prior_layers(la, bad, NL), BNN_EINVAL);
        double out3[3];
        CHECK_EQ_INT(bnn_laplace_prior_layers(la, out3, 3), BNN_EINVAL);
        CHECK(isnan(bnn_laplace_lml_layers(la, bad, NL, 1.0, NULL, NULL)));
    }
    bnn_laplace_free(la);
    free(Sig), free(Hd), free(theta_map), free(mean);
    bnn_st_free(st);
}

static void test_lowrank_unsupported(void) {
    const int64_t P = 6, r = 2;
    double U[12] = {0}, eig[2] = {3.0, 1.0}, mean[6] = {0.1, -0.2, 0.3, 0.0, 0.5, -0.1};
    U[0 * r + 0] = 1, U[1 * r + 1] = 1;
    bnn_curv *c;
    REQUIRE(bnn_curv_lowrank_from_arrays(&c, P, 0, 10, 1, 2.0, r, U, eig) == 0);
    bnn_laplace *la;
    REQUIRE(bnn__laplace_new_f64(&la, c, mean, BNN_TASK_REGRESSION) == 0);
    double d[1] = {2.0};
    const int64_t nl = bnn_laplace_nlayers(la);
    CHECK_EQ_INT(nl, 1);
    CHECK_EQ_INT(bnn_laplace_set_prior_layers(la, d, 1), BNN_EUNSUPPORTED);
    CHECK_EQ_INT(bnn_laplace_optimize_layers(la, 10), BNN_EUNSUPPORTED);
    bnn_laplace_free(la);
}

/* Regression (reg_all_kron, reg_all_diag: Linear(1,16) and Linear(16,1), tensors of 16, 16, 16
 * and 1 parameters): the
 * σ-derivative of the per-layer lml against central differences, and optimize_layers (which also
 * tunes σ) ends at least as high as the scalar optimum. */
static void reg_case(const char *file, bool kron) {
    bnn_st *st = open_fixture(file);
    if (!st) return;
    int64_t P;
    double *mean = tensor(st, "mean", &P);
    REQUIRE(P == 49);
    bnn_curv *c = NULL;
    const double loss = scalar(st, "loss_half_sse");
    if (kron) {
        int64_t n0[4], n1[4];
        double *f0[4], *f1[4];
        char name[64];
        for (int b = 0; b < 4; b++) {
            int64_t q;
            snprintf(name, sizeof name, "H_kron.b%d.f0", b);
            f0[b] = tensor(st, name, &q), n0[b] = (int64_t)llround(sqrt((double)q));
            snprintf(name, sizeof name, "H_kron.b%d.f1", b);
            f1[b] = NULL, n1[b] = 0;
            if (has(st, name))
                f1[b] = tensor(st, name, &q), n1[b] = (int64_t)llround(sqrt((double)q));
        }
        REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_KRON, P, 0, 60, 1, loss, NULL, NULL, 4, n0, n1,
                                     (const double *const *)f0, (const double *const *)f1) == 0);
        for (int b = 0; b < 4; b++)
            free(f0[b]), free(f1[b]);
    } else {
        double *H = tensor(st, "H", NULL);
        REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_DIAG, P, 0, 60, 1, loss, H, NULL, 0, NULL, NULL,
                                     NULL, NULL) == 0);
        free(H);
    }
    bnn_laplace *la;
    REQUIRE(bnn__laplace_new_f64(&la, c, mean, BNN_TASK_REGRESSION) == 0);
    one_group_steps(la, P, file);
    const int64_t sizes[4] = {16, 16, 16, 1};
    REQUIRE(bnn__laplace_set_layout(la, 4, sizes) == 0); /* kron: its blocks, as it began */
    REQUIRE(bnn_laplace_nlayers(la) == 4);
    const double dl[4] = {0.5, 2.0, 0.8, 4.0}, sg = 0.3, h = 1e-5;
    double gs;
    bnn_laplace_lml_layers(la, dl, 4, sg, NULL, &gs);
    const double fd = (bnn_laplace_lml_layers(la, dl, 4, sg * exp(h), NULL, NULL) -
                       bnn_laplace_lml_layers(la, dl, 4, sg * exp(-h), NULL, NULL)) /
                      (2 * h);
    report(2, file, "∂lml/∂log σ vs central differences", rel(gs, fd), 1e-7);
    REQUIRE(bnn_laplace_optimize(la, 1000) == 0);
    const double lml_s =
        bnn_laplace_lml(la, bnn_laplace_prior_prec(la), bnn_laplace_sigma(la), NULL, NULL);
    REQUIRE(bnn_laplace_optimize_layers(la, 1000) == 0);
    double d2[4];
    REQUIRE(bnn_laplace_prior_layers(la, d2, 4) == 0);
    const double lml_l = bnn_laplace_lml_layers(la, d2, 4, bnn_laplace_sigma(la), NULL, NULL);
    report(3, file, "lml: scalar optimum − per-layer optimum", fmax(0.0, lml_s - lml_l), 1e-9);
    printf("%s: per-tensor δ (%.6g, %.6g, %.6g, %.6g), σ %.6g (lml %.8f; scalar optimum %.8f)\n",
           file, d2[0], d2[1], d2[2], d2[3], bnn_laplace_sigma(la), lml_l, lml_s);
    bnn_laplace_free(la);
    free(mean);
    bnn_st_free(st);
}

/* A full posterior's precision hf·H + diag(δ) that is not finite (σ = 1e-170: hf = 1/σ² is
 * infinite, and ∞ · 0 is NaN) is refused, not handed to LAPACK, whose Cholesky factors NaN
 * without a word. */
static void test_full_not_finite(void) {
    const double H[4] = {1.0, 0.0, 0.0, 0.0};
    const float mean[2] = {0.5f, -0.5f};
    bnn_curv *c = NULL;
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_FULL, 2, 0, 10, 1, 0.0, NULL, H, 0, NULL, NULL,
                                 NULL, NULL) == 0);
    bnn_laplace *la = NULL;
    REQUIRE(bnn_laplace_new(&la, c, mean, BNN_TASK_REGRESSION) == 0);
    const int64_t sizes[2] = {1, 1}; /* two groups: distinct δ_l take the Cholesky way */
    REQUIRE(bnn__laplace_set_layout(la, 2, sizes) == 0);
    bnn_laplace_set_prior(la, 1.0, 1e-170);
    const double dl[2] = {1.0, 2.0};
    CHECK_EQ_INT(bnn_laplace_set_prior_layers(la, dl, 2), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "non-finite") != NULL);
    bnn_laplace_set_prior(la, 1.0, 1.0); /* and a sane one still works */
    CHECK_EQ_INT(bnn_laplace_set_prior_layers(la, dl, 2), 0);
    bnn_laplace_free(la);
}

int main(void) {
    layers_case("cls_all_diag", "diag");
    layers_case("cls_all_kron", "kron");
    layers_case("cls_all_full", "full");
    reg_case("reg_all_kron", true);
    reg_case("reg_all_diag", false);
    test_lowrank_unsupported();
    test_full_not_finite();
    printf("per-layer prior: worst errors: equal-δ vs scalar %.3g, lml/logdet vs dense %.3g, "
           "gradient vs FD %.3g, optimum (scalar − layers) %.3g, GLM f_var vs dense %.3g\n",
           worst[0], worst[1], worst[2], worst[3], worst[4]);
    return CHECK_DONE();
}
