/* Low-rank Laplace (BNN_HESS_LOWRANK: H ≈ U diag(λ) Uᵀ, the top-r eigenpairs of the GGN;
 * Daxberger et al. 2021, laplace-torch's LowRankLaplace), src/fit/curvature.c and laplace.c:
 *
 *  1. rank = P on the fixture networks (fixtures/laplace cls_all_full, cls_ll_full, reg_ll_full;
 *     laplace-torch 44ea62ac): lml, log det, the tuned prior, the GLM f_var and the probit
 *     probabilities equal the fixture's full Laplace (1e-4, the float32 tolerance of the README).
 *  2. rank r < P: the eigenvalues are the top r of the fixture's H, U spans the same subspace
 *     (projectors U Uᵀ), log det is Σ_{i<r} log(hf λ_i + δ) + (P − r) log δ, the lml derivatives
 *     match central differences, the precision is δ I + hf U Λ Uᵀ, and the GLM predictive and
 *     samples equal those of a `full` posterior built from the truncated matrix U Λ Uᵀ.
 *  3. The matrix-free path (randomized subspace iteration) against the dense path, forced and
 *     chosen by the memory limit; BNN_ENOMEM when neither fits.
 *  4. Samples: the empirical covariance against Σ.
 *  5. The matrix-free products through every layer kind, for all weights and a middle layer,
 *     against LAPACK on the full matrix, and the same bits on 1 and 2 threads (test_layer_kinds);
 *     the progress callback (test_progress). */
#include "check.h"
#include "core/internal.h"
#include "laplace_fixture.h"

#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

static double worst_fix = 0, worst_eig = 0, worst_proj = 0, worst_mf = 0, worst_glm = 0;

static double rel(double c, double r) { return fabs(c - r) / (fabs(r) > 0 ? fabs(r) : 1.0); }
static double dmax(double a, double b) { return a > b ? a : b; }

static bnn_curv *lowrank_curv(struct problem *pr, bool last, int64_t rank, int mode,
                              bnn_curvature cv, int64_t batch, double max_bytes) {
    struct bnn_curv_params p = bnn_curv_default_params();
    CHECK_EQ_INT(p.rank, 20);
    p.hessian = BNN_HESS_LOWRANK, p.rank = rank, p.curvature = cv;
    p.subset = last ? BNN_SUBSET_LAST_LAYER : BNN_SUBSET_ALL;
    if (batch) p.batch_size = batch;
    if (max_bytes > 0) p.max_bytes = max_bytes;
    p.lowrank_method = mode;
    bnn_curv *c = NULL;
    int rc = bnn_curv_compute(&c, pr->m, pr->ds, &p);
    if (rc) fprintf(stderr, "bnn_curv_compute: %s\n", bnn_last_error());
    REQUIRE(rc == 0);
    return c;
}

static bnn_laplace *make_laplace(struct problem *pr, bnn_curv *c) {
    bnn_laplace *la;
    const float *w = bnn_model_cparams(pr->m) + bnn_curv_offset(c);
    REQUIRE(bnn_laplace_new(&la, c, w, pr->cls ? BNN_TASK_CLASSIFICATION : BNN_TASK_REGRESSION) ==
            0);
    return la;
}

/* eigenvalues (descending) and eigenvectors (P × P row-major, column j ↔ w[j]) of S. */
static void eig_desc(double *w, double *V, const double *S, int64_t P) {
    double *A = malloc((size_t)(P * P) * sizeof *A), *wa = malloc((size_t)P * sizeof *wa);
    memcpy(A, S, (size_t)(P * P) * sizeof *A);
    REQUIRE(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)P, A, (lapack_int)P, wa) == 0);
    for (int64_t j = 0; j < P; j++) {
        w[j] = wa[P - 1 - j];
        for (int64_t i = 0; i < P; i++)
            V[i * P + j] = A[i * P + (P - 1 - j)];
    }
    free(A), free(wa);
}

/* max |U Uᵀ − V Vᵀ| with U (P × r, ld lu) and V (P × r, ld lv). */
static double proj_diff(const double *U, int64_t lu, const double *V, int64_t lv, int64_t P,
                        int64_t r) {
    double worst = 0;
    for (int64_t i = 0; i < P; i++)
        for (int64_t k = 0; k < P; k++) {
            double a = 0, b = 0;
            for (int64_t j = 0; j < r; j++)
                a += U[i * lu + j] * U[k * lu + j], b += V[i * lv + j] * V[k * lv + j];
            worst = dmax(worst, fabs(a - b));
        }
    return worst;
}

/* The GLM variance with every eigenpair kept at a tiny prior precision, on a linear model whose
 * Jacobian is (x, 1): f_var = Σ_k (J·u_k)² / (hf λ_k + δ), recomputed here. Written as |J|²/δ
 * minus the subspace's share, two terms of size |J|²/δ cancelled: at δ = 1e-14 that was off by
 * about 1e-2 of the answer (a Bernoulli network's probability by 0.026). */
static void test_glm_all_kept(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:3-1") == 0);
    REQUIRE(bnn_model_reserve(m, 4) == 0);
    int64_t wo, ws[2], bo, bl;
    REQUIRE(bnn_model_layer_tensors(m, 0, &wo, ws, &bo, &bl) == 0);
    enum { P = 4 };
    const double h = 0.5; /* U: the orthonormal Hadamard matrix / 2, columns eigenvectors */
    const double U[P * P] = {h, h, h, h, h, -h, h, -h, h, h, -h, -h, h, -h, -h, h};
    const double eig[P] = {8.0, 4.0, 2.0, 1.0};
    const float mean[P] = {0.25f, -0.5f, 1.0f, 0.125f};
    bnn_curv *c;
    REQUIRE(bnn_curv_lowrank_from_arrays(&c, P, 0, 10, 1, 0.0, P, U, eig) == 0);
    bnn_laplace *la;
    REQUIRE(bnn_laplace_new(&la, c, mean, BNN_TASK_REGRESSION) == 0);
    const float x[2 * 3] = {0.5f, -1.0f, 2.0f, 3.0f, 0.25f, -0.75f};
    for (int t = 0; t < 2; t++) {
        const double delta = t ? 1e-14 : 1e-3;
        bnn_laplace_set_prior(la, delta, 1.0);
        double fm[2], fv[2];
        REQUIRE(bnn_laplace_glm(la, m, x, 2, fm, fv) == 0);
        for (int r = 0; r < 2; r++) {
            double J[P];
            for (int i = 0; i < 3; i++) J[wo + i] = (double)x[r * 3 + i];
            J[bo] = 1.0;
            double ref = 0;
            for (int k = 0; k < P; k++) {
                double ju = 0;
                for (int i = 0; i < P; i++) ju += J[i] * U[i * P + k];
                ref += ju * ju / (eig[k] + delta);
            }
            CHECK_REL(fv[r], ref, 1e-12, 1.0);
        }
    }
    bnn_laplace_free(la);
    bnn_model_free(m);
}

/* 1. rank = P against the fixture's full Laplace. */
static void test_full_rank(const char *file) {
    struct problem pr;
    if (!load_problem(&pr, file)) return; /* (a note says so) */
    const bool last = strstr(file, "_ll_") != NULL;
    int64_t P;
    double *mean = st_f64(pr.st, "mean", &P);
    free(mean);
    bnn_laplace *la = make_laplace(&pr, lowrank_curv(&pr, last, P + 5, 0, BNN_CURV_GGN, 0, 0));
    const bnn_curv *c = bnn_laplace_curv(la);
    CHECK_EQ_INT(bnn_curv_structure(c), BNN_HESS_LOWRANK);
    CHECK_EQ_INT(bnn_curv_nparams(c), P);
    const double *U, *eig;
    int64_t r;
    REQUIRE(bnn_curv_lowrank(c, &U, &eig, &r) == 0);
    CHECK_EQ_INT(r, P); /* clipped to P */
    for (int64_t j = 1; j < r; j++)
        CHECK(eig[j] <= eig[j - 1]);
    double e;
    if (pr.cls) {
        e = rel(bnn_laplace_lml(la, 1.0, 1.0, NULL, NULL), scalar(pr.st, "lml_at_prior1"));
        CHECK(e <= 1e-4);
        worst_fix = dmax(worst_fix, e);
        bnn_laplace_set_prior(la, 1.0, 1.0);
        e = rel(bnn_laplace_logdet(la), scalar(pr.st, "logdet_post_at_prior1"));
        CHECK(e <= 1e-4);
        worst_fix = dmax(worst_fix, e);
        /* the precision, dense and diagonal */
        double *Pd = malloc((size_t)(P * P) * sizeof *Pd), *Pg = malloc((size_t)P * sizeof *Pg);
        double *ref = st_f64(pr.st, "post_prec_at_prior1", NULL);
        REQUIRE(bnn_laplace_precision_dense(la, Pd) == 0);
        REQUIRE(bnn_laplace_precision_diag(la, Pg) == 0);
        e = check_relerr(Pd, ref, P * P);
        CHECK(e <= 1e-4);
        worst_fix = dmax(worst_fix, e);
        for (int64_t i = 0; i < P; i++)
            ref[i] = ref[i * P + i];
        e = check_relerr(Pg, ref, P);
        CHECK(e <= 1e-4);
        worst_fix = dmax(worst_fix, e);
        free(ref), free(Pd), free(Pg);
        REQUIRE(bnn_laplace_optimize(la, 100) == 0);
        e = rel(bnn_laplace_prior_prec(la), scalar(pr.st, "prior_prec_opt"));
        CHECK(e <= 1e-4);
        worst_fix = dmax(worst_fix, e);
    } else {
        e = rel(bnn_laplace_lml(la, 1.0, 1.0, NULL, NULL), scalar(pr.st, "lml_at_prior1_sigma1"));
        CHECK(e <= 1e-4);
        worst_fix = dmax(worst_fix, e);
        int64_t nt; /* the Adam steps of the fixture's trace (rows of log δ, log σ) */
        free(st_f64(pr.st, "log_hyper_trace", &nt));
        REQUIRE(bnn_laplace_optimize(la, nt / 2 - 1) == 0);
        /* The tuned (δ, σ) of regression move with the float32 loss ½Σ(f − y)² (0.32 at
         * σ ≈ 0.11, so hf·loss carries the forward pass's rounding): the `full` curvature of
         * bnn_curv_compute lands 3.2e-4 from the fixture too. Low rank must equal that `full`
         * run tightly, and the fixture within 1e-3. */
        struct bnn_curv_params q = bnn_curv_default_params();
        q.hessian = BNN_HESS_FULL, q.subset = last ? BNN_SUBSET_LAST_LAYER : BNN_SUBSET_ALL;
        bnn_curv *cf;
        REQUIRE(bnn_curv_compute(&cf, pr.m, pr.ds, &q) == 0);
        bnn_laplace *lf = make_laplace(&pr, cf);
        REQUIRE(bnn_laplace_optimize(lf, nt / 2 - 1) == 0);
        CHECK_REL(bnn_laplace_prior_prec(la), bnn_laplace_prior_prec(lf), 1e-8, 1.0);
        CHECK_REL(bnn_laplace_sigma(la), bnn_laplace_sigma(lf), 1e-8, 1.0);
        bnn_laplace_free(lf);
        e = rel(bnn_laplace_prior_prec(la), scalar(pr.st, "prior_prec_opt"));
        CHECK(e <= 1e-3);
        e = rel(bnn_laplace_sigma(la), scalar(pr.st, "sigma_noise_opt"));
        CHECK(e <= 1e-3);
    }
    /* GLM predictive at the fixture's tuned values. */
    const double d = scalar(pr.st, "prior_prec_opt"),
                 s = pr.cls ? 1.0 : scalar(pr.st, "sigma_noise_opt");
    bnn_laplace_set_prior(la, d, s);
    int64_t nx;
    double *Xt = st_f64(pr.st, "Xtest", &nx);
    const int64_t D = bnn_model_input_dim(pr.m), K = bnn_model_output_dim(pr.m), n = nx / D;
    float *x = malloc((size_t)nx * sizeof *x);
    for (int64_t i = 0; i < nx; i++)
        x[i] = (float)Xt[i];
    double *fmu = malloc((size_t)(n * K) * sizeof *fmu),
           *fv = malloc((size_t)(n * K * K) * sizeof *fv);
    double *p = malloc((size_t)(n * K) * sizeof *p);
    REQUIRE(bnn_laplace_glm(la, pr.m, x, n, fmu, fv) == 0);
    double *ref = st_f64(pr.st, "f_var", NULL);
    e = check_relerr(fv, ref, n * K * K);
    CHECK(e <= 1e-4);
    worst_fix = dmax(worst_fix, e);
    free(ref);

    if (pr.cls) {
        bnn_probit(p, fmu, fv, n, K);
        ref = st_f64(pr.st, "probs_probit", NULL);
        e = check_relerr(p, ref, n * K);
        CHECK(e <= 1e-4);
        worst_fix = dmax(worst_fix, e);
        free(ref);
    } else {
        for (int64_t i = 0; i < n; i++)
            p[i] = fv[i] + s * s;
        ref = st_f64(pr.st, "pred_var", NULL);
        e = check_relerr(p, ref, n);
        CHECK(e <= 1e-4);
        worst_fix = dmax(worst_fix, e);
        free(ref);
    }
    free(p), free(fv), free(fmu), free(x), free(Xt);
    bnn_laplace_free(la);
    free_problem(&pr);
}

/* 2–3. rank r < P: against the fixture's H, the formulas, a `full` posterior of U Λ Uᵀ, and the
 * matrix-free path. */
static void test_truncated(const char *file, int64_t r) {
    struct problem pr;
    if (!load_problem(&pr, file)) return;
    const bool last = strstr(file, "_ll_") != NULL;
    int64_t PP;
    double *H = st_f64(pr.st, "H", &PP);
    const int64_t P = (int64_t)sqrt((double)PP);
    double *wH = malloc((size_t)P * sizeof *wH), *VH = malloc((size_t)(P * P) * sizeof *VH);
    eig_desc(wH, VH, H, P);

    bnn_curv *cd = lowrank_curv(&pr, last, r, 1, BNN_CURV_GGN, 0, 0);
    const double *U, *eig;
    int64_t rr;
    REQUIRE(bnn_curv_lowrank(cd, &U, &eig, &rr) == 0);
    REQUIRE(rr == r);
    double e = 0;
    for (int64_t j = 0; j < r; j++)
        e = dmax(e, rel(eig[j], wH[j]));
    CHECK(e <= 1e-4);
    worst_eig = dmax(worst_eig, e);
    /* orthonormal columns */
    double orth = 0;
    for (int64_t a = 0; a < r; a++)
        for (int64_t b = 0; b < r; b++) {
            double s = 0;
            for (int64_t i = 0; i < P; i++)
                s += U[i * r + a] * U[i * r + b];
            orth = dmax(orth, fabs(s - (a == b)));
        }
    CHECK(orth <= 1e-10);
    e = proj_diff(U, r, VH, P, P, r);
    fprintf(stderr, "%s r=%lld: eigenvalue gap λ_r/λ_{r+1} = %.3g, projector error %.3g\n", file,
            (long long)r, wH[r - 1] / wH[r], e);
    CHECK(e <= 1e-4);
    worst_proj = dmax(worst_proj, e);

    /* Matrix-free, forced, with a small batch. The dense way sums each batch's P × P product in
     * float (as `full` does), the matrix-free one in double, so they differ by ~1e-7 of λ_1:
     * compare eigenvalues norm-wise (relative to λ_1), and both against the fixture's H. */
    bnn_curv *cm = lowrank_curv(&pr, last, r, 2, BNN_CURV_GGN, 16, 0);
    const double *Um, *eigm;
    REQUIRE(bnn_curv_lowrank(cm, &Um, &eigm, &rr) == 0);
    REQUIRE(rr == r);
    e = check_relerr(eigm, eig, r);
    CHECK(e <= 1e-6);
    worst_mf = dmax(worst_mf, e);
    e = proj_diff(Um, r, U, r, P, r);
    CHECK(e <= 1e-4);
    worst_mf = dmax(worst_mf, e);
    e = 0;
    for (int64_t j = 0; j < r; j++)
        e = dmax(e, rel(eigm[j], wH[j]));
    CHECK(e <= 1e-4);
    worst_eig = dmax(worst_eig, e);
    e = proj_diff(Um, r, VH, P, P, r);
    CHECK(e <= 1e-4);
    worst_proj = dmax(worst_proj, e);
    CHECK_REL(bnn_curv_loss(cm), bnn_curv_loss(cd), 1e-12, 1.0);
    bnn_curv_free(cm);

    /* Nothing fits. */
    {
        struct bnn_curv_params p = bnn_curv_default_params();
        p.hessian = BNN_HESS_LOWRANK, p.rank = r, p.max_bytes = 1000;
        p.subset = last ? BNN_SUBSET_LAST_LAYER : BNN_SUBSET_ALL;
        bnn_curv *c = (bnn_curv *)1;
        CHECK_EQ_INT(bnn_curv_compute(&c, pr.m, pr.ds, &p), BNN_ENOMEM);
        CHECK(c == NULL);
        CHECK(strstr(bnn_last_error(), "low-rank") != NULL);
        CHECK(strstr(bnn_last_error(), "limit") != NULL);
        p.rank = 0;
        CHECK_EQ_INT(bnn_curv_compute(&c, pr.m, pr.ds, &p), BNN_EINVAL);
    }

    /* A `full` posterior of the same truncated matrix U Λ Uᵀ, and a copy through from_arrays. */
    double *T = calloc((size_t)(P * P), sizeof *T);
    for (int64_t i = 0; i < P; i++)
        for (int64_t k = 0; k < P; k++)
            for (int64_t j = 0; j < r; j++)
                T[i * P + k] += U[i * r + j] * eig[j] * U[k * r + j];
    const int64_t off = bnn_curv_offset(cd), N = bnn_curv_ndata(cd), K = bnn_curv_noutputs(cd);
    const double loss = bnn_curv_loss(cd);
    bnn_curv *cf, *cc;
    REQUIRE(bnn_curv_from_arrays(&cf, BNN_HESS_FULL, P, off, N, K, loss, NULL, T, 0, NULL, NULL,
                                 NULL, NULL) == 0);
    REQUIRE(bnn_curv_lowrank_from_arrays(&cc, P, off, N, K, loss, r, U, eig) == 0);
    CHECK_EQ_INT(bnn_curv_lowrank(cf, NULL, NULL, NULL), BNN_EINVAL);
    {
        bnn_curv *bad = (bnn_curv *)1;
        CHECK_EQ_INT(bnn_curv_lowrank_from_arrays(&bad, P, off, N, K, loss, P + 1, U, eig),
                     BNN_EINVAL);
        CHECK(bad == NULL);
    }
    bnn_laplace *la = make_laplace(&pr, cd), *lf = make_laplace(&pr, cf),
                *lc = make_laplace(&pr, cc);
    const double hf = pr.cls ? 1.0 : 1.0 / (0.7 * 0.7);
    const double sig = pr.cls ? 1.0 : 0.7;
    for (int t = 0; t < 3; t++) {
        const double delta = t == 0 ? 0.3 : t == 1 ? 1.0 : 4.0;
        bnn_laplace_set_prior(la, delta, sig);
        bnn_laplace_set_prior(lc, delta, sig);
        double ld = (double)(P - r) * log(delta);
        for (int64_t j = 0; j < r; j++)
            ld += log(hf * eig[j] + delta);
        CHECK_REL(bnn_laplace_logdet(la), ld, 1e-12, 1.0);
        CHECK_REL(bnn_laplace_logdet(lc), ld, 1e-12, 1.0);
        CHECK_REL(bnn_laplace_lml(lc, delta, sig, NULL, NULL),
                  bnn_laplace_lml(la, delta, sig, NULL, NULL), 1e-12, 1.0);
        CHECK_REL(bnn_laplace_lml(lf, delta, sig, NULL, NULL),
                  bnn_laplace_lml(la, delta, sig, NULL, NULL), 1e-9, 1.0);
        /* derivatives against central differences */
        double dp, ds;
        bnn_laplace_lml(la, delta, sig, &dp, &ds);
        const double h = 1e-5;
        const double fp = (bnn_laplace_lml(la, delta * exp(h), sig, NULL, NULL) -
                           bnn_laplace_lml(la, delta * exp(-h), sig, NULL, NULL)) /
                          (2 * h);
        CHECK_NEAR(dp, fp, 1e-6 * (1 + fabs(fp)));
        if (!pr.cls) {
            const double fs = (bnn_laplace_lml(la, delta, sig * exp(h), NULL, NULL) -
                               bnn_laplace_lml(la, delta, sig * exp(-h), NULL, NULL)) /
                              (2 * h);
            CHECK_NEAR(ds, fs, 1e-6 * (1 + fabs(fs)));
        }
    }
    /* precision, GLM and the optimiser against the full posterior of U Λ Uᵀ */
    const double delta = 0.5;
    bnn_laplace_set_prior(la, delta, sig);
    bnn_laplace_set_prior(lf, delta, sig);
    double *A = malloc((size_t)(P * P) * sizeof *A), *B = malloc((size_t)(P * P) * sizeof *B);
    double *g = malloc((size_t)P * sizeof *g);
    REQUIRE(bnn_laplace_precision_dense(la, A) == 0);
    REQUIRE(bnn_laplace_precision_dense(lf, B) == 0);
    CHECK(check_relerr(A, B, P * P) <= 1e-12);
    REQUIRE(bnn_laplace_precision_diag(la, g) == 0);
    for (int64_t i = 0; i < P; i++)
        CHECK_REL(g[i], B[i * P + i], 1e-12, 1.0);
    int64_t nx;
    double *Xt = st_f64(pr.st, "Xtest", &nx);
    const int64_t D = bnn_model_input_dim(pr.m), n = nx / D;
    float *x = malloc((size_t)nx * sizeof *x);
    for (int64_t i = 0; i < nx; i++)
        x[i] = (float)Xt[i];
    double *m1 = malloc((size_t)(n * K) * sizeof(double)),
           *m2 = malloc((size_t)(n * K) * sizeof(double));
    double *v1 = malloc((size_t)(n * K * K) * sizeof(double)),
           *v2 = malloc((size_t)(n * K * K) * sizeof(double));
    REQUIRE(bnn_laplace_glm(la, pr.m, x, n, m1, v1) == 0);
    REQUIRE(bnn_laplace_glm(lf, pr.m, x, n, m2, v2) == 0);
    CHECK(check_relerr(m1, m2, n * K) == 0.0);
    e = check_relerr(v1, v2, n * K * K);
    CHECK(e <= 1e-9);
    worst_glm = dmax(worst_glm, e);
    /* Several precisions in one pass (a grid search): each one's f_var is bnn_laplace_glm's at
     * that precision to the last bit, the residual's 1/δ term included. */
    {
        const double ds[2] = {3.0, 0.02};
        double *vv = malloc((size_t)(2 * n * K * K) * sizeof(double));
        REQUIRE(bnn__laplace_glm_priors(la, pr.m, x, n, ds, 2, m2, vv, "test") == 0);
        for (int j = 0; j < 2; j++) {
            bnn_laplace_set_prior(la, ds[j], sig);
            REQUIRE(bnn_laplace_glm(la, pr.m, x, n, m1, v1) == 0);
            CHECK(memcmp(vv + j * n * K * K, v1, (size_t)(n * K * K) * sizeof(double)) == 0);
        }
        CHECK(memcmp(m1, m2, (size_t)(n * K) * sizeof(double)) == 0);
        bnn_laplace_set_prior(la, delta, sig);
        free(vv);
    }
    REQUIRE(bnn_laplace_optimize(la, 50) == 0);
    REQUIRE(bnn_laplace_optimize(lf, 50) == 0);
    CHECK_REL(bnn_laplace_prior_prec(la), bnn_laplace_prior_prec(lf), 1e-8, 1.0);

    /* 4. samples: empirical covariance against Σ = (δ I + hf U Λ Uᵀ)⁻¹ */
    bnn_laplace_set_prior(la, delta, sig);
    REQUIRE(bnn_laplace_precision_dense(la, A) == 0);
    REQUIRE(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)P, A, (lapack_int)P) == 0);
    REQUIRE(LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', (lapack_int)P, A, (lapack_int)P) == 0);
    for (int64_t i = 0; i < P; i++)
        for (int64_t j = 0; j < i; j++)
            A[i * P + j] = A[j * P + i];
    const int64_t S = 20000;
    float *th = malloc((size_t)P * sizeof *th);
    double *mu = calloc((size_t)P, sizeof *mu), *d = malloc((size_t)P * sizeof *d);
    memset(B, 0, (size_t)(P * P) * sizeof *B);
    bnn_rng rng = bnn_rng_make(7, 1);
    const float *w0 = bnn_model_cparams(pr.m) + off;
    for (int64_t s = 0; s < S; s++) {
        REQUIRE(bnn_laplace_sample(la, &rng, th) == 0);
        for (int64_t i = 0; i < P; i++)
            d[i] = (double)th[i] - (double)w0[i], mu[i] += d[i] / (double)S;
        for (int64_t i = 0; i < P; i++)
            for (int64_t k = 0; k < P; k++)
                B[i * P + k] += d[i] * d[k] / (double)S;
    }
    double zmax = 0;
    for (int64_t i = 0; i < P; i++) {
        zmax = dmax(zmax, fabs(mu[i]) / sqrt(A[i * P + i] / (double)S));
        for (int64_t k = 0; k < P; k++) {
            const double sd =
                sqrt((A[i * P + i] * A[k * P + k] + A[i * P + k] * A[i * P + k]) / (double)S);
            zmax = dmax(zmax, fabs(B[i * P + k] - A[i * P + k]) / sd);
        }
    }
    fprintf(stderr, "%s r=%lld: samples: worst |z| of mean and covariance entries %.3g\n", file,
            (long long)r, zmax);
    CHECK(zmax <= 5.5);
    free(th), free(mu), free(d);
    free(m1), free(m2), free(v1), free(v2), free(x), free(Xt), free(A), free(B), free(g), free(T);
    bnn_laplace_free(la), bnn_laplace_free(lf), bnn_laplace_free(lc);
    free(wH), free(VH), free(H);
    free_problem(&pr);
}

/* The matrix-free path for the empirical Fisher and the sampled Fisher (one pass each). */
static void test_other_curvatures(void) {
    struct problem pr;
    if (!load_problem(&pr, "cls_all_full")) return;
    for (int k = 0; k < 2; k++) {
        const bnn_curvature cv = k ? BNN_CURV_GGN_MC : BNN_CURV_EF;
        bnn_curv *cd = lowrank_curv(&pr, false, 6, 1, cv, 0, 0);
        bnn_curv *cm = lowrank_curv(&pr, false, 6, 2, cv, 32, 0);
        const double *U1, *e1, *U2, *e2;
        int64_t r1, r2;
        REQUIRE(bnn_curv_lowrank(cd, &U1, &e1, &r1) == 0);
        REQUIRE(bnn_curv_lowrank(cm, &U2, &e2, &r2) == 0);
        REQUIRE(r1 == 6 && r2 == 6);
        double e = check_relerr(e2, e1, 6);
        CHECK(e <= 1e-6);
        worst_mf = dmax(worst_mf, e);
        e = proj_diff(U1, 6, U2, 6, bnn_curv_nparams(cd), 6);
        CHECK(e <= 1e-4);
        worst_mf = dmax(worst_mf, e);
        bnn_curv_free(cd), bnn_curv_free(cm);
    }
    free_problem(&pr);
}

/* The matrix-free products through every layer kind (ReLU, GELU, tanh, and dropout, which is the
 * identity outside training), for all weights and for a middle layer alone (the tangents start
 * at layer 1 and pass a Linear layer outside the subset): the top eigenvalues and their subspace
 * against LAPACK on the full matrix that the per-example rows build; and the threads cannot change
 * a bit (the vectors are shared among them, each computed by the same calls). */
static void test_layer_kinds(void) {
    const char *specs[] = {"mlp:4-7-6-3:relu", "mlp:4-7-6-3:gelu", "mlp:4-7-6-3:tanh:dropout=0.3",
                           "mlp:4-7-6-3:relu:dropout=0.5"};
    const int64_t mid[1] = {1};
    for (size_t si = 0; si < sizeof specs / sizeof specs[0]; si++)
        for (int sub = 0; sub < 2; sub++) {
            bnn_model *m;
            bnn_dataset *ds;
            random_problem(&m, &ds, specs[si], BNN_TASK_CLASSIFICATION, 40, 3 + si);
            struct bnn_curv_params p = bnn_curv_default_params();
            p.subset = sub ? BNN_SUBSET_LAYERS : BNN_SUBSET_ALL, p.batch_size = 16;
            if (sub) p.layers = mid, p.nlayers_sel = 1;
            p.hessian = BNN_HESS_FULL;
            bnn_curv *cf, *cm, *c1;
            REQUIRE(bnn_curv_compute(&cf, m, ds, &p) == 0);
            const int64_t P = bnn_curv_nparams(cf), r = 4;
            double *w = malloc((size_t)P * sizeof *w), *VH = malloc((size_t)(P * P) * sizeof *VH);
            REQUIRE(w && VH);
            eig_desc(w, VH, bnn_curv_dense(cf), P);
            p.hessian = BNN_HESS_LOWRANK, p.rank = r, p.lowrank_method = 2;
            REQUIRE(bnn_curv_compute(&cm, m, ds, &p) == 0);
            const double *U, *eig, *U1, *eig1;
            int64_t rr;
            REQUIRE(bnn_curv_lowrank(cm, &U, &eig, &rr) == 0 && rr == r);
            char what[128];
            snprintf(what, sizeof what, "%s %s: matrix-free top %lld eigenvalues", specs[si],
                     sub ? "layers:1" : "all", (long long)r);
            CHECK_RELERR(what, eig, w, r, 1e-6);
            const double e = proj_diff(U, r, VH, P, P, r);
            fprintf(stderr, "  gap λ_r/λ_{r+1} = %.3g, projector error %.3g\n", w[r - 1] / w[r], e);
            CHECK(e <= 1e-4);
            worst_mf = dmax(worst_mf, e);
            if (si == 0 && !sub) {
                /* The memory limit chooses matrix-free: given what it says it needs (its refusal
                 * below that), the automatic choice takes it (the very bits of the forced way),
                 * the dense way needing more. */
                struct bnn_curv_params q = p;
                q.max_bytes = 1000;
                bnn_curv *no = (bnn_curv *)1;
                CHECK_EQ_INT(bnn_curv_compute(&no, m, ds, &q), BNN_ENOMEM);
                double kib = 0;
                const char *at = strstr(bnn_last_error(), "needs ");
                REQUIRE(at && sscanf(at, "needs %lf KiB", &kib) == 1);
                q.max_bytes = (kib + 1.0) * 1024.0, q.lowrank_method = 1;
                CHECK_EQ_INT(bnn_curv_compute(&no, m, ds, &q), BNN_ENOMEM); /* dense: no */
                q.lowrank_method = 0;
                REQUIRE(bnn_curv_compute(&c1, m, ds, &q) == 0);
                REQUIRE(bnn_curv_lowrank(c1, &U1, &eig1, &rr) == 0 && rr == r);
                CHECK(memcmp(U, U1, (size_t)(P * r) * sizeof *U) == 0);
                fprintf(stderr, "  the limit of %.0f KiB chooses matrix-free\n", kib + 1.0);
                bnn_curv_free(c1);
            }
            const int nt = bnn_get_threads();
            bnn_set_threads(nt > 1 ? 1 : 2);
            REQUIRE(bnn_curv_compute(&c1, m, ds, &p) == 0);
            bnn_set_threads(nt);
            REQUIRE(bnn_curv_lowrank(c1, &U1, &eig1, &rr) == 0 && rr == r);
            CHECK(memcmp(U, U1, (size_t)(P * r) * sizeof *U) == 0);
            CHECK(memcmp(eig, eig1, (size_t)r * sizeof *eig) == 0);
            free(w), free(VH);
            bnn_curv_free(cf), bnn_curv_free(cm), bnn_curv_free(c1);
            bnn_model_free(m), bnn_dataset_free(ds);
        }
}

/* bnn_curv_params.progress: called once per Rayleigh–Ritz step with the passes over the data so
 * far (2 at first, then rising by 1, or by 3 with the filter, at least once here), the last
 * residual at or below the target it reports (converged); never on the dense way; a non-zero return
 * stops the computation with BNN_EINVAL and no curvature. */
struct progress_log {
    int64_t calls, last, stop_at;
    bool in_order, filtered;
    double residual, target;
};

static int log_progress(void *ctx, int64_t passes, double residual, double target) {
    struct progress_log *pl = ctx;
    const int64_t step = passes - pl->last;
    pl->in_order = pl->in_order && (pl->calls ? step == 1 || step == 3 : passes == 2);
    pl->filtered = pl->filtered || step == 3;
    pl->calls++, pl->last = passes, pl->residual = residual, pl->target = target;
    return pl->calls == pl->stop_at;
}

static void test_progress(void) {
    bnn_model *m;
    bnn_dataset *ds;
    random_problem(&m, &ds, "mlp:4-7-6-3:relu", BNN_TASK_CLASSIFICATION, 40, 9);
    struct bnn_curv_params p = bnn_curv_default_params();
    p.subset = BNN_SUBSET_ALL, p.hessian = BNN_HESS_LOWRANK, p.rank = 4, p.lowrank_method = 2;
    struct progress_log pl = {.in_order = true};
    p.progress = log_progress, p.progress_ctx = &pl;
    bnn_curv *c = NULL;
    REQUIRE(bnn_curv_compute(&c, m, ds, &p) == 0);
    CHECK(pl.calls >= 2 && pl.in_order && pl.filtered);
    CHECK_NEAR(pl.target, 1e-10, 0.0);
    CHECK(pl.residual >= 0.0 && pl.residual <= pl.target);
    fprintf(stderr, "progress: %lld steps, %lld passes, residual %.3g\n", (long long)pl.calls,
            (long long)pl.last, pl.residual);
    bnn_curv_free(c);
    struct progress_log stop = {.in_order = true, .stop_at = 2};
    p.progress_ctx = &stop;
    c = (bnn_curv *)1;
    CHECK_EQ_INT(bnn_curv_compute(&c, m, ds, &p), BNN_EINVAL);
    CHECK(c == NULL);
    CHECK(stop.calls == 2 && strstr(bnn_last_error(), "stopped by the caller after 3 passes"));
    struct progress_log dense = {.in_order = true};
    p.progress_ctx = &dense, p.lowrank_method = 1;
    REQUIRE(bnn_curv_compute(&c, m, ds, &p) == 0);
    CHECK(dense.calls == 0);
    bnn_curv_free(c);
    bnn_model_free(m), bnn_dataset_free(ds);
}

/* The pass limit (LOWRANK_MAXPASS, 200): a spectrum without a gap for the iteration to use stops
 * it there with its residual above the target, and the Ritz pairs reached are still returned,
 * with the residual the callback reported being theirs. A linear regression (Gaussian, σ = 1)
 * whose GGN is diagonal: the inputs are columns 1..40 of the 64 × 64 Sylvester-Hadamard matrix
 * (±1, orthogonal to each other and to the bias's column of ones), column j scaled by
 * √(1 + 1e-4 j), so H = 64 diag(1 + 1e-4 j for the weights j = 1..40, 1 for the bias): 41
 * eigenvalues within 0.4% of each other. The filter gains about T_3(1 + 2·0.0028) ≈ 1.05 a step
 * on it, so the residual stays near 1e-4 of the top eigenvalue, far from 1e-10. */
static void test_pass_limit(void) {
    const int64_t n = 64, d = 40, r = 2;
    bnn_model *m;
    bnn_dataset *ds;
    REQUIRE(bnn_model_new(&m, "mlp:40-1") == 0);
    REQUIRE(bnn_model_set_lik(m, BNN_LIK_GAUSSIAN) == 0);
    bnn_model_init(m, 1);
    REQUIRE(bnn_dataset_new(&ds, BNN_TASK_REGRESSION, n, d, 1, 1) == 0);
    float *x = bnn_dataset_x(ds), *y = bnn_dataset_targets(ds);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 1; j <= d; j++)
            x[i * d + j - 1] =
                (__builtin_popcountll((unsigned long long)(i & j)) & 1 ? -1.0f : 1.0f) *
                sqrtf(1.0f + 1e-4f * (float)j);
        y[i] = (float)(i % 3) - 1.0f;
    }
    struct bnn_curv_params p = bnn_curv_default_params();
    p.subset = BNN_SUBSET_ALL, p.hessian = BNN_HESS_FULL;
    bnn_curv *cf, *cm;
    REQUIRE(bnn_curv_compute(&cf, m, ds, &p) == 0);
    const int64_t P = bnn_curv_nparams(cf);
    REQUIRE(P == d + 1);
    /* H in double from the inputs (J_n = [x_n, 1], weights before the bias); bnn_curv_dense
     * sums float rows (float rounding, 1e-7 of λ, would hide the residual's digits). */
    double *H = calloc((size_t)(P * P), sizeof *H);
    REQUIRE(H);
    for (int64_t i = 0; i < n; i++)
        for (int64_t a = 0; a < P; a++)
            for (int64_t b = 0; b < P; b++)
                H[a * P + b] +=
                    (a < d ? (double)x[i * d + a] : 1.0) * (b < d ? (double)x[i * d + b] : 1.0);
    CHECK_RELERR("the GGN of a linear model", bnn_curv_dense(cf), H, P * P, 1e-5);
    p.hessian = BNN_HESS_LOWRANK, p.rank = r, p.lowrank_method = 2;
    struct progress_log pl = {.in_order = true};
    p.progress = log_progress, p.progress_ctx = &pl;
    REQUIRE(bnn_curv_compute(&cm, m, ds, &p) == 0);
    const double *U, *eig;
    int64_t rr;
    REQUIRE(bnn_curv_lowrank(cm, &U, &eig, &rr) == 0 && rr == r);
    CHECK_EQ_INT((int)pl.last, 200); /* (its last step may be shorter than 3: not in_order) */
    CHECK(pl.filtered);
    CHECK(pl.residual > 1e3 * pl.target);
    /* The reported residual: max_j ‖H u_j − θ_j u_j‖ / θ_1, from the dense matrix. */
    double worst = 0.0;
    for (int64_t j = 0; j < r; j++) {
        double sq = 0.0;
        for (int64_t a = 0; a < P; a++) {
            double hu = 0.0;
            for (int64_t b = 0; b < P; b++)
                hu += H[a * P + b] * U[b * r + j];
            sq += (hu - eig[j] * U[a * r + j]) * (hu - eig[j] * U[a * r + j]);
        }
        worst = dmax(worst, sqrt(sq));
        /* Ritz values of a block lie within the spectrum, 64 to 64.256 */
        CHECK(eig[j] >= 64.0 * (1.0 - 1e-6) && eig[j] <= 64.0 * (1.0 + 40e-4) * (1.0 + 1e-6));
    }
    fprintf(stderr,
            "pass limit: %lld passes (in order %d, filtered %d), residual %.9g reported, "
            "%.9g from the dense H\n",
            (long long)pl.last, (int)pl.in_order, (int)pl.filtered, pl.residual, worst / eig[0]);
    CHECK(rel(worst / eig[0], pl.residual) <= 1e-6);
    free(H);
    bnn_curv_free(cf), bnn_curv_free(cm);
    bnn_model_free(m), bnn_dataset_free(ds);
}

/* bnn__chebyshev_filter against its definition, T_m((λ − c)/e) / T_m((hi − c)/e) with e = c =
 * lo/2, on a diagonal H (its product multiplies by the λ's), for degrees 1 to 6: every
 * coefficient of the recurrence shows (a wrong one only slows the iteration down, which no
 * comparison of eigenpairs notices); and the buffers come back as a permutation. */
struct diag_h {
    const double *lam;
    int64_t n, calls;
};

static int diag_product(void *ctx, double *out, const double *in) {
    struct diag_h *d = ctx;
    for (int64_t i = 0; i < d->n; i++)
        out[i] = d->lam[i] * in[i];
    d->calls++;
    return 0;
}

static double cheb_t(int64_t m, double t) {
    return fabs(t) <= 1.0 ? cos((double)m * acos(t)) : cosh((double)m * acosh(t));
}

static void test_chebyshev_filter(void) {
    enum { n = 64 };
    const double lo = 0.3, hi = 5.0, e = 0.5 * lo, c = 0.5 * lo;
    double lam[n], a[n], b[n], w[n];
    for (int64_t i = 0; i < n; i++)
        lam[i] = 6.0 * (double)i / (double)(n - 1); /* 0 .. 6: damped, wanted, past hi */
    lam[7] = lo, lam[50] = hi;
    double worst = 0.0;
    for (int64_t m = 1; m <= 6; m++) {
        struct diag_h d = {.lam = lam, .n = n};
        for (int64_t i = 0; i < n; i++)
            a[i] = 1.0 + 0.01 * (double)i, b[i] = lam[i] * a[i], w[i] = NAN;
        double *x = a, *y = b, *z = w;
        REQUIRE(bnn__chebyshev_filter(&x, &y, &z, n, m, lo, hi, diag_product, &d) == 0);
        CHECK_EQ_INT(d.calls, m - 1);
        CHECK(x != y && y != z && x != z && (x == a || x == b || x == w) &&
              (y == a || y == b || y == w) && (z == a || z == b || z == w));
        const double den = cheb_t(m, (hi - c) / e);
        for (int64_t i = 0; i < n; i++) {
            const double want = cheb_t(m, (lam[i] - c) / e) / den * (1.0 + 0.01 * (double)i);
            worst = dmax(worst, fabs(y[i] - want) / dmax(fabs(want), 1.0 / den));
        }
        CHECK_NEAR(y[50], 1.0 + 0.5, 1e-12); /* hi is scaled by exactly 1 */
    }
    fprintf(stderr, "  Chebyshev filter vs the T_m ratio, degrees 1..6: worst error %.2e\n", worst);
    CHECK(worst <= 1e-11);
}

int main(void) {
    test_full_rank("cls_all_full");
    test_full_rank("cls_ll_full");
    test_full_rank("reg_ll_full");
    test_truncated("cls_ll_full", 8);
    test_truncated("cls_all_full", 20);
    test_truncated("reg_ll_full", 5);
    test_other_curvatures();
    test_layer_kinds();
    test_progress();
    test_glm_all_kept();
    test_pass_limit();
    test_chebyshev_filter();
    fprintf(stderr,
            "lowrank: rank = P vs fixtures %.3g; top-r eigenvalues %.3g, projectors %.3g; "
            "matrix-free vs dense %.3g; GLM vs full(UΛUᵀ) %.3g\n",
            worst_fix, worst_eig, worst_proj, worst_mf, worst_glm);
    return CHECK_DONE();
}
