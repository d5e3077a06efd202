/* Training end to end on small problems: it learns, it is bit-reproducible (run twice, and with
 * 1 and 2 threads), a saved model predicts bit-identically after loading, divergence and shape
 * errors are reported. */
#include "check.h"
#include "core/internal.h"

#include <string.h>

/* A random classification problem wide enough to take the threaded paths (OpenMP loops and
 * multi-threaded OpenBLAS): labels from a random linear map of the inputs. */
static bnn_dataset *wide_problem(void) {
    bnn_dataset *ds;
    REQUIRE(bnn_dataset_new(&ds, BNN_TASK_CLASSIFICATION, 1024, 64, 0, 4) == 0);
    bnn_rng rng = bnn_rng_make(5, 0);
    float *x = bnn_dataset_x(ds), proj[64 * 4];
    bnn_rng_normal(&rng, x, 1024 * 64);
    bnn_rng_normal(&rng, proj, 64 * 4);
    for (int64_t i = 0; i < 1024; i++) {
        int best = 0;
        float bv = -1e30f;
        for (int c = 0; c < 4; c++) {
            float s = 0;
            for (int j = 0; j < 64; j++) s += x[i * 64 + j] * proj[j * 4 + c];
            if (s > bv) bv = s, best = c;
        }
        bnn_dataset_labels(ds)[i] = best;
    }
    return ds;
}

static float *train_copy(const char *spec, bnn_dataset *ds, int threads, bnn_method method,
                         int64_t *np) {
    bnn_set_threads(threads);
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, spec) == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.epochs = 2, p.batch_size = 128, p.seed = 3, p.method = method;
    if (method == BNN_METHOD_SGD) p.lr = 0.05f;
    REQUIRE(bnn_train(m, ds, &p) == 0);
    *np = bnn_model_nparams(m);
    float *w = malloc((size_t)*np * 4);
    memcpy(w, bnn_model_params(m), (size_t)*np * 4);
    bnn_model_free(m);
    return w;
}

static void test_reproducible(void) {
    bnn_dataset *ds = wide_problem();
    const char *spec = "mlp:64-600-300-4:gelu:dropout=0.1";
    for (int method = 0; method < 2; method++) {
        int64_t np;
        float *a = train_copy(spec, ds, 1, (bnn_method)method, &np);
        float *b = train_copy(spec, ds, 1, (bnn_method)method, &np);
        float *c = train_copy(spec, ds, 2, (bnn_method)method, &np);
        CHECK(memcmp(a, b, (size_t)np * 4) == 0);
        CHECK(memcmp(a, c, (size_t)np * 4) == 0);
        free(a), free(b), free(c);
    }
    /* A different seed gives different weights. */
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:64-8-4") == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.epochs = 1;
    REQUIRE(bnn_train(m, ds, &p) == 0);
    float w0 = bnn_model_params(m)[0];
    p.seed = 1;
    REQUIRE(bnn_train(m, ds, &p) == 0);
    CHECK(bnn_model_params(m)[0] != w0);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    bnn_set_threads(2);
}

static void test_learns(void) {
    bnn_dataset *tr, *te;
    REQUIRE(bnn_toy_moons(&tr, 1000, 0.1, 1) == 0);
    REQUIRE(bnn_toy_moons(&te, 500, 0.1, 2) == 0);
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-50-50-2:tanh") == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.epochs = 30, p.batch_size = 32, p.lr = 1e-2f;
    REQUIRE(bnn_train(m, tr, &p) == 0);
    struct bnn_predict_params pp = bnn_predict_default_params();
    struct bnn_eval_result r;
    REQUIRE(bnn_evaluate(m, NULL, te, &pp, 15, &r) == 0);
    fprintf(stderr, "moons: test accuracy %.4f, nll %.4f\n", r.accuracy, r.nll);
    CHECK(r.accuracy > 0.97);
    CHECK(r.nll < 0.1);

    /* Save and load: predictions are bit-identical. */
    char path[512];
    snprintf(path, sizeof path, "%s/train_moons.safetensors", BNN_TEST_TMP);
    REQUIRE(bnn_model_save(m, path, BNN_TASK_CLASSIFICATION, NULL, NULL, 0) == 0);
    bnn_model *m2;
    bnn_task task = BNN_TASK_REGRESSION;
    bnn_st *st;
    REQUIRE(bnn_model_load(&m2, path, &task, &st) == 0);
    CHECK(task == BNN_TASK_CLASSIFICATION);
    CHECK(!strcmp(bnn_st_meta(st, "bnn.model"), "mlp:2-50-50-2:tanh"));
    bnn_st_tensor t;
    CHECK(bnn_st_get(st, "2.weight", &t) == 0 && t.shape[0] == 50 && t.shape[1] == 50);
    bnn_st_free(st);
    REQUIRE(bnn_model_reserve(m2, 500) == 0);
    REQUIRE(bnn_model_reserve(m, 500) == 0);
    const float *f1 = bnn_model_forward(m, bnn_model_params(m), bnn_dataset_x(te), 500, false, NULL);
    float *copy = malloc(1000 * 4);
    memcpy(copy, f1, 1000 * 4);
    const float *f2 = bnn_model_forward(m2, bnn_model_params(m2), bnn_dataset_x(te), 500, false, NULL);
    CHECK(memcmp(copy, f2, 1000 * 4) == 0);
    free(copy);
    bnn_model_free(m2);
    bnn_model_free(m);
    bnn_dataset_free(tr), bnn_dataset_free(te);

    /* Regression on sine-gap fits the training data. */
    REQUIRE(bnn_toy_sine_gap(&tr, 64, 0.1, 1, false) == 0);
    REQUIRE(bnn_model_new(&m, "mlp:1-50-50-1:tanh") == 0);
    p = bnn_train_default_params();
    p.epochs = 300, p.batch_size = 16, p.lr = 1e-2f, p.sigma = 0.1;
    REQUIRE(bnn_train(m, tr, &p) == 0);
    pp.sigma = 0.1;
    REQUIRE(bnn_evaluate(m, NULL, tr, &pp, 15, &r) == 0);
    fprintf(stderr, "sine-gap: train rmse %.4f, nll %.4f\n", r.rmse, r.nll);
    CHECK(r.rmse < 0.15);
    bnn_model_free(m);
    bnn_dataset_free(tr);
}

static void test_errors(void) {
    bnn_dataset *ds;
    REQUIRE(bnn_toy_moons(&ds, 100, 0.1, 1) == 0);
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-16-2") == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.method = BNN_METHOD_SGD, p.lr = 1e8f, p.epochs = 5;
    int rc = bnn_train(m, ds, &p);
    CHECK_EQ_INT(rc, BNN_EDIVERGED);
    CHECK(strstr(bnn_last_error(), "epoch") != NULL);
    bnn_model_free(m);
    REQUIRE(bnn_model_new(&m, "mlp:3-16-2") == 0);
    p = bnn_train_default_params();
    CHECK_EQ_INT(bnn_train(m, ds, &p), BNN_ESHAPE);
    CHECK(strstr(bnn_last_error(), "features") != NULL);
    bnn_model_free(m);
    REQUIRE(bnn_model_new(&m, "mlp:2-16-1") == 0); /* 1 output for 2 classes */
    CHECK_EQ_INT(bnn_train(m, ds, &p), BNN_ESHAPE);
    bnn_model_free(m);
    REQUIRE(bnn_model_new(&m, "mlp:2-16-2") == 0);
    p.lr = -1;
    CHECK_EQ_INT(bnn_train(m, ds, &p), BNN_EINVAL);
    p = bnn_train_default_params();
    p.method = BNN_METHOD_SGD, p.momentum = 5.0f;
    CHECK_EQ_INT(bnn_train(m, ds, &p), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "momentum") != NULL);
    /* Bad data is named by row before any step: a label outside the classes (which the
     * likelihood would otherwise meet as an impossible label) and a NaN feature (which would
     * otherwise read as a divergence). */
    p = bnn_train_default_params();
    p.epochs = 1;
    bnn_dataset_labels(ds)[5] = 7;
    CHECK_EQ_INT(bnn_train(m, ds, &p), BNN_EFORMAT);
    CHECK(strstr(bnn_last_error(), "row 5") != NULL && strstr(bnn_last_error(), "label 7"));
    bnn_dataset_labels(ds)[5] = 1;
    bnn_dataset_x(ds)[2 * 9 + 1] = NAN;
    CHECK_EQ_INT(bnn_train(m, ds, &p), BNN_EFORMAT);
    CHECK(strstr(bnn_last_error(), "row 9") != NULL && strstr(bnn_last_error(), "NaN"));
    bnn_model_free(m);
    bnn_dataset_free(ds);
    /* Unlabelled inputs cannot be trained on, nor can one class. */
    struct bnn_data_params dp = bnn_data_default_params();
    REQUIRE(bnn_data_load(&ds, "noise:2:50", &dp) == 0);
    CHECK(!bnn_dataset_labelled(ds));
    REQUIRE(bnn_model_new(&m, "mlp:2-16-2") == 0);
    CHECK_EQ_INT(bnn_train(m, ds, &p), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "no labels") != NULL);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    /* Loading: a missing file and a file that is not a model. */
    bnn_task task;
    CHECK(bnn_model_load(&m, "/nonexistent/model.safetensors", &task, NULL) == BNN_EIO);
    CHECK(m == NULL);
}

/* Train 2 epochs, save the state, resume for the third: bit-identical to 3 epochs in one go,
 * for every method (the cosine schedule spans the 3 epochs in both runs). */
static void test_resume(void) {
    bnn_dataset *ds;
    REQUIRE(bnn_toy_moons(&ds, 300, 0.1, 1) == 0);
    for (int me = 0; me <= BNN_METHOD_MFVI; me++) {
        struct bnn_train_params p = bnn_train_default_params();
        p.method = (bnn_method)me, p.epochs = 3, p.batch_size = 32, p.seed = 4;
        p.lr = me == BNN_METHOD_IVON ? 0.1f : me == BNN_METHOD_SGD ? 0.05f : 1e-2f;
        p.lr_schedule = BNN_LR_COSINE, p.warmup_epochs = 1;
        const char *spec = "mlp:2-16-16-2:tanh:dropout=0.1";
        bnn_model *a, *b;
        bnn_trainer *ta, *tb;
        REQUIRE(bnn_model_new(&a, spec) == 0);
        REQUIRE(bnn_trainer_new(&ta, a, ds, &p) == 0);
        REQUIRE(bnn_trainer_run(ta, 3) == 0);
        REQUIRE(bnn_model_new(&b, spec) == 0);
        REQUIRE(bnn_trainer_new(&tb, b, ds, &p) == 0);
        REQUIRE(bnn_trainer_run(tb, 2) == 0);
        CHECK_EQ_INT(bnn_trainer_epoch(tb), 2);
        char path[512];
        snprintf(path, sizeof path, "%s/resume_%s.safetensors", BNN_TEST_TMP, bnn_method_name(p.method));
        REQUIRE(bnn_trainer_save(tb, path, true, NULL, NULL, 0) == 0);
        bnn_trainer_free(tb);
        bnn_model_free(b);
        bnn_model *c;
        bnn_trainer *tc;
        int rc = bnn_trainer_resume(&tc, &c, path, ds, 0);
        if (rc) fprintf(stderr, "resume %s: %s\n", bnn_method_name(p.method), bnn_last_error());
        REQUIRE(rc == 0);
        REQUIRE(bnn_trainer_run(tc, 3) == 0);
        const int64_t np = bnn_model_nparams(a);
        bool same = memcmp(bnn_model_params(a), bnn_model_params(c), (size_t)np * 4) == 0;
        if (!same) fprintf(stderr, "resume %s: weights differ\n", bnn_method_name(p.method));
        CHECK(same);
        /* The posteriors agree too (IVON's h, MFVI's rho). */
        bnn_posterior *qa, *qc;
        REQUIRE(bnn_trainer_posterior(ta, &qa) == 0 && bnn_trainer_posterior(tc, &qc) == 0);
        if (bnn_posterior_std(qa))
            CHECK(memcmp(bnn_posterior_std(qa), bnn_posterior_std(qc), (size_t)np * 4) == 0);
        CHECK(bnn_posterior_kind_of(qa) == (me >= BNN_METHOD_IVON ? BNN_POSTERIOR_DIAG
                                                                  : BNN_POSTERIOR_POINT));
        bnn_posterior_free(qa), bnn_posterior_free(qc);
        /* A model file (no state) cannot be resumed; a different dataset size is refused. */
        REQUIRE(bnn_trainer_save(tc, path, false, NULL, NULL, 0) == 0);
        bnn_trainer_free(tc), bnn_model_free(c);
        CHECK_EQ_INT(bnn_trainer_resume(&tc, &c, path, ds, 0), BNN_EFORMAT);
        CHECK(strstr(bnn_last_error(), "checkpoint") != NULL);
        bnn_trainer_free(ta), bnn_model_free(a);
    }
    {
        /* A new total below the warm-up is refused, naming it (trainer_alloc's message said
         * only that warm-up epochs must be within the epochs). */
        struct bnn_train_params p = bnn_train_default_params();
        p.epochs = 5, p.batch_size = 64, p.warmup_epochs = 3;
        bnn_model *a, *c;
        bnn_trainer *ta, *tc = NULL;
        REQUIRE(bnn_model_new(&a, "mlp:2-8-2") == 0);
        REQUIRE(bnn_trainer_new(&ta, a, ds, &p) == 0);
        REQUIRE(bnn_trainer_run(ta, 2) == 0);
        char path[512];
        snprintf(path, sizeof path, "%s/resume_warm.safetensors", BNN_TEST_TMP);
        REQUIRE(bnn_trainer_save(ta, path, true, NULL, NULL, 0) == 0);
        CHECK_EQ_INT(bnn_trainer_resume(&tc, &c, path, ds, 2), BNN_EINVAL);
        CHECK(strstr(bnn_last_error(), "warms up over 3 epochs; --epochs 2 is fewer") != NULL);
        CHECK_EQ_INT(bnn_trainer_resume(&tc, &c, path, ds, 3), 0);
        bnn_trainer_free(tc), bnn_model_free(c);
        bnn_trainer_free(ta), bnn_model_free(a);
    }
    bnn_dataset_free(ds);
}

/* A checkpoint written from inside a run (the progress callback at the end of epoch 2) resumes to
 * the same bits as 3 epochs in one go. For IVON this is the case where the fused step has already
 * drawn the next sample, which the checkpoint must not count as used. */
struct save_ctx {
    bnn_trainer *tr;
    const char *path;
    int rc;
};
static int save_at_epoch_2(void *ctx, int64_t epoch, int64_t step, int64_t steps, double loss,
                           bool epoch_done) {
    struct save_ctx *c = ctx;
    (void)step, (void)steps, (void)loss;
    if (epoch_done && epoch == 1) c->rc = bnn_trainer_save(c->tr, c->path, true, NULL, NULL, 0);
    return 0;
}

/* A diverging run names the step that made the weights non-finite, for every method: every step
 * the progress callback saw before it left finite weights, and the named one is the next. (With
 * one step per epoch an overflowing SGD, AdamW or MFVI update was once caught only at the end of
 * the epoch, naming no step.) */
struct watch_ctx {
    const bnn_model *m;
    int64_t done;
    bool finite;
};

static int watch_steps(void *ctx, int64_t epoch, int64_t step, int64_t steps, double loss,
                       bool epoch_done) {
    struct watch_ctx *c = ctx;
    (void)epoch, (void)step, (void)steps, (void)loss;
    if (epoch_done) return 0;
    c->done++;
    const float *w = bnn_model_cparams(c->m);
    for (int64_t i = 0; i < bnn_model_nparams(c->m); i++) c->finite = c->finite && isfinite(w[i]);
    return 0;
}

static void test_diverge_step(void) {
    bnn_dataset *ds;
    REQUIRE(bnn_toy_moons(&ds, 100, 0.1, 1) == 0);
    const bnn_method ms[4] = {BNN_METHOD_SGD, BNN_METHOD_ADAMW, BNN_METHOD_MFVI, BNN_METHOD_IVON};
    const float lrs[4] = {1e30f, 3e38f, 3e38f, 1e30f};
    const int64_t bss[2] = {1000, 32}; /* one step per epoch; four, the last one short */
    for (int mi = 0; mi < 4; mi++)
        for (int bi = 0; bi < 2; bi++) {
            bnn_model *m;
            REQUIRE(bnn_model_new(&m, "mlp:2-16-2") == 0);
            struct bnn_train_params p = bnn_train_default_params();
            p.method = ms[mi], p.lr = lrs[mi], p.epochs = 6, p.batch_size = bss[bi];
            struct watch_ctx c = {m, 0, true};
            p.progress = watch_steps, p.progress_ctx = &c;
            CHECK_EQ_INT(bnn_train(m, ds, &p), BNN_EDIVERGED);
            long long e = 0, st = 0;
            const char *at = strstr(bnn_last_error(), "at epoch ");
            const int64_t steps = (100 + bss[bi] - 1) / bss[bi];
            const bool named = at && sscanf(at, "at epoch %lld, step %lld", &e, &st) == 2;
            if (!named || (e - 1) * steps + st != c.done + 1 || !c.finite)
                fprintf(stderr, "method %d, batch %lld: '%s' after %lld good steps\n", (int)ms[mi],
                        (long long)bss[bi], bnn_last_error(), (long long)c.done);
            CHECK(named && (e - 1) * steps + st == c.done + 1 && c.finite);
            bnn_model_free(m);
        }
    bnn_dataset_free(ds);
}

/* The trainer's IVON against a loop written here from Algorithm 1 of Shen et al. (2024), in
 * double: the same noise stream (BNN_STREAM_NOISE), batches and learning rates, its own averaging
 * of ĝ and ε ⊙ ĝ over the samples and its own update. m must agree, and h as recovered from the
 * saved posterior std (h = 1/(λσ²) − δ). Covers what the fixture replay (test_ivon, the step
 * function alone) does not: the trainer's multi-sample path, ess ≠ N, a finite clip, no
 * rescale or debias, warm-up and cosine, regression, a batch larger than N. */
static double ref_lr(bnn_lr_schedule sched, double lr, int64_t t, int64_t total, int64_t w) {
    if (w > 0 && t < w) return lr * (double)(t + 1) / (double)w;
    if (sched == BNN_LR_CONSTANT || total <= w) return lr;
    return lr * 0.5 * (1 + cos(3.14159265358979323846 * (double)(t - w) / (double)(total - w)));
}

static void ivon_reference_case(const char *name, int S, double ess, float wd, float h0, float clip,
                                int epochs, int bs, int warm, bnn_lr_schedule sched, bool rescale,
                                bool debias, double beta2, bool regression) {
    const int N = 100;
    bnn_dataset *ds;
    REQUIRE((regression ? bnn_toy_sine_gap(&ds, N, 0.1, 1, false) : bnn_toy_moons(&ds, N, 0.1, 1)) ==
            0);
    const char *spec = regression ? "mlp:1-8-1:tanh" : "mlp:2-8-2:tanh";
    bnn_model *m, *r;
    REQUIRE(bnn_model_new(&m, spec) == 0 && bnn_model_new(&r, spec) == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.method = BNN_METHOD_IVON, p.epochs = epochs, p.batch_size = bs, p.seed = 5, p.lr = 0.2f;
    p.weight_decay = wd, p.lr_schedule = sched, p.warmup_epochs = warm, p.sigma = 0.5;
    p.ivon.mc_samples = S, p.ivon.ess = ess, p.ivon.hess_init = h0, p.ivon.clip_radius = clip;
    p.ivon.rescale_lr = rescale, p.ivon.debias = debias, p.ivon.beta2 = beta2;
    bnn_trainer *tr;
    REQUIRE(bnn_trainer_new(&tr, m, ds, &p) == 0);
    REQUIRE(bnn_trainer_run(tr, epochs) == 0);
    bnn_posterior *q;
    REQUIRE(bnn_trainer_posterior(tr, &q) == 0);

    bnn_model_init(r, p.seed); /* the trainer's starting weights */
    const int64_t np = bnn_model_nparams(r), k = bnn_model_output_dim(r);
    const int64_t d = bnn_model_input_dim(r);
    const double lam = ess > 0 ? ess : N;
    double *mm = malloc((size_t)np * 8), *hh = malloc((size_t)np * 8), *gg = calloc((size_t)np, 8);
    double *gb = malloc((size_t)np * 8), *ge = malloc((size_t)np * 8);
    float *th = malloc((size_t)np * 4), *e = malloc((size_t)np * 4), *gr = malloc((size_t)np * 4);
    const int bsz = bs < N ? bs : N, steps = (N + bsz - 1) / bsz;
    float *xb = malloc((size_t)(bsz * d) * 4), *yt = malloc((size_t)(bsz * k) * 4);
    float *dout = malloc((size_t)(bsz * k) * 4);
    int32_t *yl = malloc((size_t)bsz * 4);
    int64_t *perm = malloc((size_t)N * 8);
    REQUIRE(mm && hh && gg && gb && ge && th && e && gr && xb && yt && dout && yl && perm);
    REQUIRE(bnn_model_reserve(r, bsz) == 0);
    for (int64_t i = 0; i < np; i++) mm[i] = bnn_model_params(r)[i], hh[i] = h0;
    bnn_rng noise = bnn_rng_make(p.seed, BNN_STREAM_NOISE);
    const bnn_lik lik = {regression ? BNN_LIK_GAUSSIAN : BNN_LIK_CATEGORICAL, 0.5};
    int64_t t = 0;
    for (int ep = 0; ep < epochs; ep++) {
        REQUIRE(bnn_permutation(perm, N, p.seed, (uint64_t)ep) == 0);
        for (int s = 0; s < steps; s++) {
            const int lo = s * bsz, b = lo + bsz <= N ? bsz : N - lo;
            bnn_dataset_gather(ds, perm + lo, b, xb, yl, yt);
            const double lr = ref_lr(sched, p.lr, t, (int64_t)steps * epochs, (int64_t)steps * warm);
            memset(gb, 0, (size_t)np * 8), memset(ge, 0, (size_t)np * 8);
            for (int smp = 0; smp < S; smp++) {
                bnn_rng_normal(&noise, e, np);
                for (int64_t i = 0; i < np; i++)
                    th[i] = (float)(mm[i] + e[i] / sqrt(lam * (hh[i] + wd)));
                const float *f = bnn_model_forward(r, th, xb, b, true, NULL);
                bnn_lik_loss(&lik, dout, f, yl, yt, b, k);
                memset(gr, 0, (size_t)np * 4);
                bnn_model_backward(r, th, dout, gr);
                for (int64_t i = 0; i < np; i++)
                    gb[i] += gr[i] / (double)S, ge[i] += e[i] * (double)gr[i] / S;
            }
            t++;
            const double alpha = rescale ? lr * ((double)h0 + wd) : lr;
            const double deb = debias ? 1 - pow(0.9, (double)t) : 1;
            for (int64_t i = 0; i < np; i++) {
                const double hhat = sqrt(lam * (hh[i] + wd)) * ge[i], dh = hh[i] - hhat;
                gg[i] = 0.9 * gg[i] + 0.1 * gb[i];
                const double hn = beta2 * hh[i] + (1 - beta2) * hhat +
                                  0.5 * (1 - beta2) * (1 - beta2) * dh * dh / (hh[i] + wd);
                double st = (gg[i] / deb + wd * mm[i]) / (hn + wd);
                st = st > clip ? clip : (st < -clip ? -clip : st);
                mm[i] -= alpha * st;
                hh[i] = hn;
            }
        }
    }
    const float *mw = bnn_model_cparams(m), *sd = bnn_posterior_std(q);
    double em = 0, dm = 0, eh = 0, dhm = 0;
    for (int64_t i = 0; i < np; i++) {
        em = fmax(em, fabs(mw[i] - mm[i])), dm = fmax(dm, fabs(mm[i]));
        const double hs = 1.0 / (lam * (double)sd[i] * sd[i]) - wd;
        eh = fmax(eh, fabs(hs - hh[i])), dhm = fmax(dhm, fabs(hh[i]));
    }
    fprintf(stderr, "ivon vs reference, %s: m rel err %.2e, h (from the std) rel err %.2e\n", name,
            em / dm, eh / dhm);
    CHECK(em <= 1e-5 * dm);
    CHECK(eh <= 1e-5 * dhm);
    free(mm), free(hh), free(gg), free(gb), free(ge), free(th), free(e), free(gr), free(xb);
    free(yt), free(dout), free(yl), free(perm);
    bnn_posterior_free(q);
    bnn_trainer_free(tr);
    bnn_model_free(m), bnn_model_free(r), bnn_dataset_free(ds);
}

static void test_ivon_reference(void) {
    ivon_reference_case("1 sample", 1, 0, 1e-3f, 0.5f, INFINITY, 3, 32, 0, BNN_LR_CONSTANT, true,
                        true, 0.99999, false);
    ivon_reference_case("3 samples, ess 250, clip, warm-up + cosine", 3, 250, 1e-3f, 0.05f, 0.01f,
                        3, 32, 1, BNN_LR_COSINE, true, true, 0.99, false);
    ivon_reference_case("2 samples, no rescale, no debias", 2, 0, 1e-2f, 2.0f, INFINITY, 2, 30, 0,
                        BNN_LR_COSINE, false, false, 0.99, false);
    ivon_reference_case("2 samples, regression, batch > N", 2, 40, 1e-3f, 1e-4f, INFINITY, 3, 500,
                        1, BNN_LR_COSINE, true, true, 0.99, true);
}

static void test_save_inside_run(void) {
    bnn_dataset *ds;
    REQUIRE(bnn_toy_moons(&ds, 300, 0.1, 1) == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.method = BNN_METHOD_IVON, p.epochs = 3, p.batch_size = 32, p.seed = 6, p.lr = 0.1f;
    const char *spec = "mlp:2-16-16-2:tanh";
    bnn_model *a, *c;
    bnn_trainer *ta, *tc;
    REQUIRE(bnn_model_new(&a, spec) == 0);
    REQUIRE(bnn_trainer_new(&ta, a, ds, &p) == 0);
    char path[512];
    snprintf(path, sizeof path, "%s/inside_run.safetensors", BNN_TEST_TMP);
    struct save_ctx sc = {ta, path, -1};
    bnn_trainer_set_progress(ta, save_at_epoch_2, &sc);
    REQUIRE(bnn_trainer_run(ta, 3) == 0);
    REQUIRE(sc.rc == 0);
    int rc = bnn_trainer_resume(&tc, &c, path, ds, 0);
    if (rc) fprintf(stderr, "resume: %s\n", bnn_last_error());
    REQUIRE(rc == 0);
    CHECK_EQ_INT(bnn_trainer_epoch(tc), 2);
    REQUIRE(bnn_trainer_run(tc, 3) == 0);
    CHECK(memcmp(bnn_model_params(a), bnn_model_params(c),
                 (size_t)bnn_model_nparams(a) * 4) == 0);
    bnn_trainer_free(ta), bnn_model_free(a), bnn_trainer_free(tc), bnn_model_free(c);
    bnn_dataset_free(ds);
}

/* The progress callback stops a run inside an epoch (step 13 of 10 per epoch, and at an epoch's
 * last step, before its end is counted); the next bnn_trainer_run continues at the next step and
 * ends on the same bits as a run never stopped, for every method, with dropout and a cosine
 * schedule. A checkpoint (state) is refused there; a model file is not. Before, the stopped epoch
 * was replayed from its first step with the step counter already advanced. */
struct stop_ctx {
    int64_t at, seen;
};
static int stop_at(void *ctx, int64_t epoch, int64_t step, int64_t steps, double loss,
                   bool epoch_done) {
    struct stop_ctx *c = ctx;
    (void)epoch, (void)step, (void)steps, (void)loss;
    if (epoch_done) return 0;
    return ++c->seen == c->at;
}

static void test_stop_inside_epoch(void) {
    bnn_dataset *ds;
    REQUIRE(bnn_toy_moons(&ds, 300, 0.1, 1) == 0);
    const char *spec = "mlp:2-16-16-2:tanh:dropout=0.1";
    for (int me = 0; me <= BNN_METHOD_MFVI; me++) {
        for (int w = 0; w < 2; w++) {
            struct bnn_train_params p = bnn_train_default_params();
            p.method = (bnn_method)me, p.epochs = 3, p.batch_size = 32, p.seed = 4;
            p.lr = me == BNN_METHOD_IVON ? 0.1f : me == BNN_METHOD_SGD ? 0.05f : 1e-2f;
            p.lr_schedule = BNN_LR_COSINE, p.warmup_epochs = 1;
            bnn_model *a, *b;
            bnn_trainer *ta, *tb;
            REQUIRE(bnn_model_new(&a, spec) == 0 && bnn_model_new(&b, spec) == 0);
            REQUIRE(bnn_trainer_new(&ta, a, ds, &p) == 0);
            REQUIRE(bnn_trainer_run(ta, 3) == 0);
            struct stop_ctx c = {w ? 20 : 13, 0}; /* 10 steps per epoch */
            p.progress = stop_at, p.progress_ctx = &c;
            REQUIRE(bnn_trainer_new(&tb, b, ds, &p) == 0);
            CHECK_EQ_INT(bnn_trainer_run(tb, 3), BNN_EINVAL);
            CHECK_EQ_INT(bnn_trainer_epoch(tb), 1);
            char path[512];
            snprintf(path, sizeof path, "%s/stopped.safetensors", BNN_TEST_TMP);
            CHECK_EQ_INT(bnn_trainer_save(tb, path, true, NULL, NULL, 0), BNN_EINVAL);
            CHECK(strstr(bnn_last_error(), w ? "step 10 of 10 in epoch 2" : "step 3 of 10 in "
                                                                          "epoch 2"));
            CHECK_EQ_INT(bnn_trainer_save(tb, path, false, NULL, NULL, 0), 0);
            REQUIRE(bnn_trainer_run(tb, 3) == 0);
            CHECK_EQ_INT(bnn_trainer_epoch(tb), 3);
            const int64_t np = bnn_model_nparams(a);
            const bool same = memcmp(bnn_model_params(a), bnn_model_params(b), (size_t)np * 4) == 0;
            if (!same) fprintf(stderr, "stopped %s at %lld: weights differ\n",
                               bnn_method_name(p.method), (long long)c.at);
            CHECK(same);
            bnn_trainer_free(ta), bnn_model_free(a), bnn_trainer_free(tb), bnn_model_free(b);
        }
    }
    bnn_dataset_free(ds);
    /* The cosine schedule is 0 from its last step on (it is periodic: it rose again past it). */
    CHECK(bnn_lr_at(BNN_LR_COSINE, 1.0f, 12, 12, 0) == 0.0f);
    CHECK(bnn_lr_at(BNN_LR_COSINE, 1.0f, 13, 12, 2) == 0.0f);
    CHECK(bnn_lr_at(BNN_LR_COSINE, 1.0f, 11, 12, 0) > 0.0f);
    /* A schedule that is all warm-up (total <= warmup) ends at 0 too, as bnn.h says. */
    CHECK(bnn_lr_at(BNN_LR_COSINE, 1.0f, 0, 0, 0) == 0.0f);
    CHECK(bnn_lr_at(BNN_LR_COSINE, 1.0f, 4, 4, 4) == 0.0f);
    CHECK(bnn_lr_at(BNN_LR_COSINE, 1.0f, 3, 4, 4) == 1.0f);
    CHECK(bnn_lr_at(BNN_LR_COSINE, 1.0f, 4, 4, 6) == 0.0f); /* a warm-up past the end is cut */
    CHECK(bnn_lr_at(BNN_LR_CONSTANT, 1.0f, 4, 4, 6) > 0.0f);  /* constant: warm-up goes on */
    CHECK(isnan(bnn_lr_at((bnn_lr_schedule)7, 1.0f, 3, 12, 0))); /* unknown: NaN, not cosine */
}

/* IVON learns the moons and its posterior averages to a lower NLL than the point at its mean
 * would suggest is overconfident; a diverging IVON run names the step. */
static void test_ivon(void) {
    bnn_dataset *tr, *te;
    REQUIRE(bnn_toy_moons(&tr, 1000, 0.1, 1) == 0);
    REQUIRE(bnn_toy_moons(&te, 500, 0.1, 2) == 0);
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-50-50-2:tanh") == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.method = BNN_METHOD_IVON, p.epochs = 30, p.batch_size = 32, p.lr = 0.5f;
    p.ivon.hess_init = 0.1f, p.lr_schedule = BNN_LR_COSINE;
    bnn_trainer *t;
    REQUIRE(bnn_trainer_new(&t, m, tr, &p) == 0);
    REQUIRE(bnn_trainer_run(t, p.epochs) == 0);
    bnn_posterior *q;
    REQUIRE(bnn_trainer_posterior(t, &q) == 0);
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = 16;
    struct bnn_eval_result r;
    REQUIRE(bnn_evaluate(m, q, te, &pp, 15, &r) == 0);
    fprintf(stderr, "ivon moons: accuracy %.4f nll %.4f ece %.4f mi %.4f\n", r.accuracy, r.nll,
            r.cls.ece, r.mean_mi);
    CHECK(r.accuracy > 0.97);
    CHECK(r.mean_mi > 0.0); /* samples disagree somewhere */
    /* σ = 1/√(λ(h+δ)) with λ = n: positive and below the prior's 1/√(λδ). */
    double lo, mean, hi;
    bnn_posterior_std_summary(q, &lo, &mean, &hi);
    CHECK(lo > 0 && hi <= 1.0 / sqrt(1000.0 * 1e-4) + 1e-6);
    bnn_posterior_free(q);
    bnn_trainer_free(t);
    p.lr = 1e30f, p.epochs = 2;
    REQUIRE(bnn_trainer_new(&t, m, tr, &p) == 0);
    CHECK_EQ_INT(bnn_trainer_run(t, 2), BNN_EDIVERGED);
    CHECK(strstr(bnn_last_error(), "step") != NULL);
    bnn_trainer_free(t);
    bnn_model_free(m);
    bnn_dataset_free(tr), bnn_dataset_free(te);
}

/* Dropout draws fresh masks every epoch (the stream is BNN_STREAM_DROPOUT + epoch). Four equal
 * rows, so the shuffle cannot change a loss, and a learning rate too small to move a float
 * weight: the epochs' mean losses then differ only through their masks. */
static int record_epochs(void *ctx, int64_t epoch, int64_t step, int64_t steps, double loss,
                         bool epoch_done) {
    (void)step, (void)steps;
    if (epoch_done && epoch < 3) ((double *)ctx)[epoch] = loss;
    return 0;
}

static void test_dropout_epochs(void) {
    bnn_dataset *ds;
    REQUIRE(bnn_dataset_new(&ds, BNN_TASK_REGRESSION, 4, 2, 1, 0) == 0);
    for (int i = 0; i < 4; i++) {
        bnn_dataset_x(ds)[2 * i] = 0.5f, bnn_dataset_x(ds)[2 * i + 1] = -0.3f;
        bnn_dataset_targets(ds)[i] = 1.0f;
    }
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-32-1:relu:dropout=0.5") == 0);
    bnn_model_init(m, 3);
    struct bnn_train_params p = bnn_train_default_params();
    p.method = BNN_METHOD_SGD, p.lr = 1e-30f, p.epochs = 3, p.batch_size = 4;
    double loss[3] = {0, 0, 0};
    p.progress = record_epochs, p.progress_ctx = loss;
    REQUIRE(bnn_train(m, ds, &p) == 0);
    CHECK(loss[0] != loss[1] && loss[1] != loss[2] && loss[0] != loss[2]);
    bnn_model_free(m);
    bnn_dataset_free(ds);
}

int main(void) {
    test_dropout_epochs();
    test_diverge_step();
    test_ivon_reference();
    test_resume();
    test_save_inside_run();
    test_stop_inside_epoch();
    test_ivon();
    test_reproducible();
    test_learns();
    test_errors();
    return CHECK_DONE();
}
