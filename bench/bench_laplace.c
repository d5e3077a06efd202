/* Benchmark: Laplace approximations of the Fashion-MNIST MAP MLP 784-512-256-10 (trained here:
 * AdamW, 10 epochs, cosine schedule, the `make demo` recipe).
 *   1. Quality: last-layer KFAC Laplace, prior precision by the marginal likelihood (100 Adam
 *      steps), GLM probit predictive, against the MAP network: test accuracy, NLL, ECE; the time
 *      to fit; the same posterior through the other links (Monte Carlo over the logits, the
 *      Laplace bridge and its normalised form); each last-layer structure's curvature time
 *      (diag, kron, full) against one forward pass over the training data, with the
 *      floating-point work it adds to that pass.
 *   2. Speed: the all-weights fits (--subset all) with --hessian kron and diag, exact GGN (one
 *      backward pass per class column, K = 10) and sampled Fisher (one pass), at their automatic
 *      batch sizes, against OpenBLAS (its own threads; sgemm, and ssyrk for the symmetric
 *      products) on exactly the matrix products each fit performs per batch. Reports each fit's
 *      achieved GFLOP/s (the work those products need over the fit's whole time) as a fraction
 *      of OpenBLAS's rate on that mix (target ≥ 0.5).
 *   3. Use: each last-layer posterior (marglik prior) saved, loaded as `bnn eval` loads it, and
 *      its GLM probit predictive over the 10,000 test images: file size, load and predict times.
 * usage: bench_laplace [threads] */
#include "core/internal.h"

#include <string.h>
#include <time.h>
#if defined(BNN_HAVE_BLAS)
#include <cblas.h>
#endif

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct gemm_shape {
    int64_t M, N, K;
    bool ta, tb;
    bool sym; /* AᵀA (M = N): a symmetric rank-K update, half the multiply-adds (cblas_ssyrk) */
} gemm_shape;

static const int64_t L[4] = {784, 512, 256, 10};
#define NL 3

/* The matrix products of one batch of b examples for a structure and number of passes, as
 * curvature.c performs them: the forward pass; per pass the input gradients of layers 2 and 1
 * (dy·W) and the structure's product per layer (kron: GᵀG, symmetric; diag: (G∘G)ᵀ(A∘A));
 * kron's AᵀA (symmetric) once per batch. */
static int mix(gemm_shape *s, bnn_hessian h, int64_t passes, int64_t b) {
    int n = 0;
    for (int l = 0; l < NL; l++) s[n++] = (gemm_shape){b, L[l + 1], L[l], false, true, false};
    for (int64_t p = 0; p < passes; p++) {
        for (int l = NL - 1; l >= 0; l--) {
            if (h == BNN_HESS_KRON)
                s[n++] = (gemm_shape){L[l + 1], L[l + 1], b, true, false, true};
            else
                s[n++] = (gemm_shape){L[l + 1], L[l], b, true, false, false};
            if (l > 0) s[n++] = (gemm_shape){b, L[l], L[l + 1], false, false, false};
        }
    }
    if (h == BNN_HESS_KRON)
        for (int l = 0; l < NL; l++) s[n++] = (gemm_shape){L[l], L[l], b, true, false, true};
    return n;
}

/* The floating-point work the products need: 2MNK for a GEMM, N(N+1)K for a symmetric update
 * (its upper triangle). */
static double flops_of(const gemm_shape *s, int n) {
    double f = 0;
    for (int i = 0; i < n; i++)
        f += s[i].sym ? (double)s[i].N * (double)(s[i].N + 1) * (double)s[i].K
                      : 2.0 * (double)s[i].M * (double)s[i].N * (double)s[i].K;
    return f;
}

/* Seconds per run of the mix through OpenBLAS with its own threads (best of 20 trials of 10 runs:
 * a short trial catches the machine undisturbed more often than a long one). */
static double sgemm_time(const gemm_shape *s, int n, float *A, float *B, float *C) {
    double best = 1e30;
#if defined(BNN_HAVE_BLAS)
    openblas_set_num_threads(bnn_get_threads());
    for (int trial = 0; trial < 20; trial++) {
        double t0 = now();
        for (int r = 0; r < 10; r++)
            for (int i = 0; i < n; i++)
                if (s[i].sym)
                    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)s[i].N, (int)s[i].K,
                                1.0f, A, (int)s[i].N, 0.0f, C, (int)s[i].N);
                else
                    cblas_sgemm(CblasRowMajor, s[i].ta ? CblasTrans : CblasNoTrans,
                                s[i].tb ? CblasTrans : CblasNoTrans, (int)s[i].M, (int)s[i].N,
                                (int)s[i].K, 1.0f, A, s[i].ta ? (int)s[i].M : (int)s[i].K, B,
                                s[i].tb ? (int)s[i].K : (int)s[i].N, 0.0f, C, (int)s[i].N);
        double dt = (now() - t0) / 10;
        if (dt < best) best = dt;
    }
    openblas_set_num_threads(1);
#else
    (void)s, (void)n, (void)A, (void)B, (void)C;
#endif
    return best;
}

int main(int argc, char **argv) {
    bnn_restart_tuned(argv); /* the kernels and OpenMP spins bnn itself runs with (bnn.h) */
    if (argc > 1) bnn_set_threads(atoi(argv[1]));
    bnn_dataset *tr, *te;
    struct bnn_data_params dp = bnn_data_default_params();
    if (bnn_data_load(&tr, "fmnist", &dp)) goto fail;
    dp.split = "test";
    if (bnn_data_load(&te, "fmnist", &dp)) goto fail;
    bnn_model *m;
    if (bnn_model_new(&m, "mlp:784-512-256-10")) goto fail;
    struct bnn_train_params tp = bnn_train_default_params();
    tp.epochs = 10, tp.lr = 1e-3f, tp.weight_decay = 1e-4f, tp.lr_schedule = BNN_LR_COSINE;
    fprintf(stderr, "bench_laplace: training the MAP network (10 epochs)...\n");
    if (bnn_train(m, tr, &tp)) goto fail;
    const int64_t N = bnn_dataset_n(tr);

    /* 1. Quality and the cost of a last-layer fit. */
    struct bnn_predict_params pp = bnn_predict_default_params();
    struct bnn_eval_result rmap, rla;
    if (bnn_evaluate(m, NULL, te, &pp, 15, &rmap)) goto fail;
    /* The cost of a last-layer fit against one forward pass over the training data, both at the
     * batch size a last-layer fit picks (1024 rows). The forward pass and the diag and kron fits
     * alternate for LL_ROUNDS rounds, so that a busy machine inflates neither side alone, and
     * each keeps its fastest; the difference is also taken within each round (a fit against the
     * forward pass just before it) and its median reported, which a host whose speed drifts
     * between rounds moves less than the difference of two minima from different rounds. full
     * (seconds) runs once, in the last round, when the first round's cold start is past. */
    const int64_t lbs = CURV_BATCH_LL; /* what a last-layer fit picks by itself */
    if (bnn_model_reserve(m, lbs)) goto fail;
    struct bnn_curv_params cp = bnn_curv_default_params();
    cp.subset = BNN_SUBSET_LAST_LAYER, cp.batch_size = lbs;
    /* full in float, as `bnn laplace` sums it first (and keeps it: see the rounding printed
     * below the saved posteriors) */
    cp.sums = BNN_SUMS_FLOAT;
    const bnn_hessian lh[3] = {BNN_HESS_DIAG, BNN_HESS_KRON, BNN_HESS_FULL};
    enum { LL_ROUNDS = 11 };
    double t_fwd = 1e30, t0, t_ll_curv[3] = {1e30, 1e30, 1e30};
    double t_round_fwd = 0.0, paired[3][LL_ROUNDS]; /* fit − the round's forward pass */
    bnn_curv *c;
    for (int rep = 0; rep < LL_ROUNDS; rep++)
        for (int i = -1; i < 3; i++) {
            if (i == 2 && rep < LL_ROUNDS - 1) continue;
            t0 = now();
            if (i < 0) {
                for (int64_t lo = 0; lo < N; lo += lbs)
                    bnn_model_forward(m, bnn_model_cparams(m), bnn_dataset_cx(tr) + lo * 784,
                                      lo + lbs <= N ? lbs : N - lo, false, NULL);
            } else {
                cp.hessian = lh[i];
                if (bnn_curv_compute(&c, m, tr, &cp)) goto fail;
                bnn_curv_free(c);
            }
            const double dt = now() - t0;
            double *best = i < 0 ? &t_fwd : &t_ll_curv[i];
            if (dt < *best) *best = dt;
            if (i < 0)
                t_round_fwd = dt;
            else
                paired[i][rep] = dt - t_round_fwd;
        }
    double paired_median[3];
    for (int i = 0; i < 2; i++) {
        qsort(paired[i], LL_ROUNDS, sizeof(double), cmp_double);
        paired_median[i] = paired[i][LL_ROUNDS / 2];
    }
    paired_median[2] = paired[2][LL_ROUNDS - 1]; /* full: its one round */
    cp.hessian = BNN_HESS_KRON;
    bnn_laplace *la;
    bnn_posterior *q;
    t0 = now();
    if (bnn_curv_compute(&c, m, tr, &cp)) goto fail;
    if (bnn_laplace_new_from_params(&la, c, bnn_model_cparams(m), BNN_TASK_CLASSIFICATION))
        goto fail;
    if (bnn_laplace_optimize(la, 100)) goto fail;
    const double t_ll = now() - t0;
    const double delta = bnn_laplace_prior_prec(la);
    if (bnn_posterior_from_laplace(&q, m, la)) goto fail;
    if (bnn_evaluate(m, q, te, &pp, 15, &rla)) goto fail;
    /* The same posterior through laplace-torch's other links: Monte Carlo over the logits (its
     * default 100 draws), the Laplace bridge and its normalised form. */
    struct bnn_eval_result rlink[3];
    const bnn_link links[3] = {BNN_LINK_MC, BNN_LINK_BRIDGE, BNN_LINK_BRIDGE_NORM};
    for (int i = 0; i < 3; i++) {
        struct bnn_predict_params lp = pp;
        lp.link = links[i], lp.link_samples = links[i] == BNN_LINK_MC ? 100 : 0;
        if (bnn_evaluate(m, q, te, &lp, 15, &rlink[i])) goto fail;
    }
    bnn_posterior_free(q);

    printf("bnn bench_laplace: Fashion-MNIST MLP 784-512-256-10 (MAP: AdamW, 10 epochs, cosine), %d threads\n\n",
           bnn_get_threads());
    printf("| model | predict | test accuracy | test NLL | ECE (15 bins) | Brier | time to fit |\n");
    printf("|---|---|---|---|---|---|---|\n");
    printf("| MAP | at the weights | %.4f | %.4f | %.4f | %.4f | — |\n", rmap.cls.accuracy,
           rmap.cls.nll, rmap.cls.ece, rmap.cls.brier);
    printf("| last-layer KFAC Laplace, marglik δ = %.4g | GLM probit | %.4f | %.4f | %.4f | %.4f | %.3f s |\n",
           delta, rla.cls.accuracy, rla.cls.nll, rla.cls.ece, rla.cls.brier, t_ll);
    const char *const link_words[3] = {"GLM, Monte Carlo over the logits (100)",
                                       "GLM, Laplace bridge", "GLM, normalised Laplace bridge"};
    for (int i = 0; i < 3; i++)
        printf("| the same posterior | %s | %.4f | %.4f | %.4f | %.4f | — |\n", link_words[i],
               rlink[i].cls.accuracy, rlink[i].cls.nll, rlink[i].cls.ece, rlink[i].cls.brier);
    /* What the last-layer structures cannot avoid beyond the forward pass, counted in flops:
     * diag Σ_n (W_n)_rr a_n² (K · in per example), kron AᵀA (in² per example, symmetric),
     * full Σ_n W_n ⊗ a_n a_nᵀ (K(K+1)/2 symmetric in² blocks per example). */
    const double in1 = (double)L[2] + 1, kk = (double)L[3], nn = (double)N;
    const double extra[3] = {2 * kk * in1 * nn, in1 * in1 * nn, kk * (kk + 1) / 2 * in1 * in1 * nn};
    printf("\none forward pass over the %lld training examples (batch %lld, best of %d): %.3f s\n",
           (long long)N, (long long)lbs, (int)LL_ROUNDS, t_fwd);
    printf("| --subset last-layer | curvature (best of %d; full once) | beyond the forward pass "
           "(best against best) | the same, median of the %d rounds' differences | "
           "its own extra work |\n|---|---|---|---|---|\n", (int)LL_ROUNDS, (int)LL_ROUNDS);
    for (int i = 0; i < 3; i++)
        printf("| --hessian %s | %.3f s | %+.0f ms | %+.0f ms%s | %.2f GFLOP |\n",
               i == 0 ? "diag" : i == 1 ? "kron" : "full", t_ll_curv[i],
               1e3 * (t_ll_curv[i] - t_fwd), 1e3 * paired_median[i], i == 2 ? " (one)" : "",
               extra[i] / 1e9);
    printf("kron with marglik (100 steps): %.3f s\n\n", t_ll);

    /* 3. Saved, loaded and predicting, as `bnn laplace` then `bnn eval` do it. */
    printf("| last-layer posterior, saved | file | load (read + set up) | GLM probit, %lld test "
           "images | test NLL |\n|---|---|---|---|---|\n", (long long)bnn_dataset_n(te));
    const char *tmp = "bench_laplace.tmp.safetensors";
    double full_round = 0.0, full_ratio = 0.0, full_delta = 0.0;
    for (int i = 0; i < 3; i++) {
        cp.hessian = lh[i];
        if (bnn_curv_compute(&c, m, tr, &cp)) goto fail;
        if (bnn_laplace_new_from_params(&la, c, bnn_model_cparams(m), BNN_TASK_CLASSIFICATION))
            goto fail;
        if (bnn_laplace_optimize(la, 100)) goto fail;
        if (i == 2)
            full_round = bnn_laplace_rounding(la), full_ratio = bnn_laplace_rounding_ratio(la),
            full_delta = bnn_laplace_prior_prec(la);
        const int rc = bnn_laplace_save(la, m, BNN_TASK_CLASSIFICATION, tmp, NULL, NULL, 0);
        bnn_laplace_free(la);
        if (rc) goto fail;
        bnn_model *m2;
        bnn_st *st;
        bnn_task task;
        struct bnn_eval_result r;
        t0 = now();
        if (bnn_model_load(&m2, tmp, &task, &st)) goto fail;
        if (bnn_posterior_load(&q, m2, st)) goto fail;
        const double t_load = now() - t0;
        t0 = now();
        if (bnn_evaluate(m2, q, te, &pp, 15, &r)) goto fail;
        const double t_pred = now() - t0;
        FILE *f = fopen(tmp, "rb");
        long bytes = -1;
        if (f && fseek(f, 0, SEEK_END) == 0) bytes = ftell(f);
        if (f) fclose(f);
        printf("| --hessian %s | %.1f MB | %.3f s | %.3f s | %.4f |\n",
               i == 0 ? "diag" : i == 1 ? "kron" : "full", (double)bytes / 1e6, t_load, t_pred,
               r.cls.nll);
        bnn_posterior_free(q), bnn_model_free(m2), bnn_st_free(st);
        remove(tmp);
    }
    printf("full's float sums moved its eigenvalues by about %.2g, %.2g of the posterior "
           "precision's smallest (prior precision %.4g; bnn laplace sums again in double above "
           "1e-2)\n\n", full_round, full_ratio, full_delta);

    /* 2. Speed of the all-weights fits against sgemm on the same products. */
    /* Operands for every product of the mixes: at most 1024 × 784 floats each. */
    const int64_t big = 1024 * 1024;
    float *A = bnn__alloc(big * 4), *B = bnn__alloc(big * 4), *C = bnn__alloc(big * 4);
    if (!A || !B || !C) {
        bnn__error(BNN_ENOMEM, "cannot allocate 3 x %lld floats of operands", (long long)big);
        goto fail;
    }
    bnn_rng rng = bnn_rng_make(1, 1);
    bnn_rng_normal(&rng, A, big);
    bnn_rng_normal(&rng, B, big);
    printf("| --subset all | curvature | batch | time | work (GEMM 2MNK, SYRK N²K) | achieved | OpenBLAS on the same products | fraction |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    const bnn_hessian hs[2] = {BNN_HESS_KRON, BNN_HESS_DIAG};
    const bnn_curvature cs[2] = {BNN_CURV_GGN, BNN_CURV_GGN_MC};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            cp.subset = BNN_SUBSET_ALL, cp.hessian = hs[i], cp.curvature = cs[j];
            /* The automatic batch sizes (bnn.h), set here so that the work counted below is
             * that of the fit timed. */
            const int64_t fb = hs[i] == BNN_HESS_DIAG ? CURV_BATCH_DIAG : CURV_BATCH;
            cp.batch_size = fb;
            t0 = now();
            if (bnn_curv_compute(&c, m, tr, &cp)) goto fail;
            double t_fit = now() - t0;
            bnn_curv_free(c);
            gemm_shape s[128];
            const int64_t passes = cs[j] == BNN_CURV_GGN ? 10 : 1;
            int n = mix(s, hs[i], passes, fb);
            double per_batch = flops_of(s, n), work = per_batch * (double)N / (double)fb;
            double rate = per_batch / sgemm_time(s, n, A, B, C) / 1e9;
            double achieved = work / t_fit / 1e9;
            printf("| --hessian %s | %s | %lld | %.2f s | %.0f GFLOP | %.1f GFLOP/s | %.1f GFLOP/s | %.3f |\n",
                   i ? "diag" : "kron", j ? "ggn-mc" : "ggn", (long long)fb, t_fit, work / 1e9,
                   achieved, rate, achieved / rate);
        }
    printf("\ntarget: fraction >= 0.5\n");
    bnn__free(A), bnn__free(B), bnn__free(C);
    bnn_model_free(m);
    bnn_dataset_free(tr), bnn_dataset_free(te);
    return 0;
fail:
    fprintf(stderr, "bench_laplace: %s\n", bnn_last_error());
    return 1;
}
