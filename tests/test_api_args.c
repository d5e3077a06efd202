/* The public API against bad arguments and misuse: each case here crashed, read freed memory,
 * aborted, or returned a silent wrong answer before it was checked (a review of include/bnn.h
 * under AddressSanitizer and UndefinedBehaviorSanitizer). Each call must return an error code
 * (or NaN) with bnn_last_error() set, and leave nothing behind. */
#include "bnn.h"
#include "check.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool has_error(const char *needle) {
    const char *e = bnn_last_error();
    return e && strstr(e, needle) != NULL;
}

/* Case c of a table of refusals: the last error says want. */
static void check_case_error(int c, const char *want) {
    if (has_error(want)) return;
    fprintf(stderr, "case %d: '%s' lacks '%s'\n", c, bnn_last_error(), want);
    CHECK(0);
}

/* A Laplace subset that does not fit the model: the error message read the curvature after
 * freeing it (heap-use-after-free under ASan). la is owned and freed on every path. */
static void test_from_laplace_mismatch(void) {
    const double d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float mean[8] = {0};
    bnn_curv *c;
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_DIAG, 8, 9, 10, 2, 1.0, d, NULL, 0, NULL, NULL, NULL,
                                 NULL) == 0);
    bnn_laplace *la;
    REQUIRE(bnn_laplace_new(&la, c, mean, BNN_TASK_CLASSIFICATION) == 0);
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-2") == 0); /* 6 parameters: [9, 17) does not fit */
    bnn_posterior *q = (bnn_posterior *)1;
    CHECK_EQ_INT(bnn_posterior_from_laplace(&q, m, la), BNN_ESHAPE);
    CHECK(q == NULL);
    CHECK(has_error("does not fit a model of 6 parameters"));
    CHECK_EQ_INT(bnn_posterior_from_laplace(&q, m, NULL), BNN_EINVAL);
    bnn_model_free(m);
    /* A subset that is a whole layer of the network, but of a network with another number of
     * outputs than the posterior's 2: refused up front, as every prediction would refuse it. */
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_DIAG, 8, 0, 10, 2, 1.0, d, NULL, 0, NULL, NULL,
                                 NULL, NULL) == 0);
    REQUIRE(bnn_laplace_new(&la, c, mean, BNN_TASK_CLASSIFICATION) == 0);
    REQUIRE(bnn_model_new(&m, "mlp:7-1") == 0); /* 7 weights and a bias: [0, 8) */
    CHECK_EQ_INT(bnn_posterior_from_laplace(&q, m, la), BNN_ESHAPE);
    CHECK(q == NULL && has_error("the network has 1 outputs and the Laplace posterior over it 2"));
    bnn_model_free(m);
}

/* A Laplace posterior of a 2-input, 2-class network's last layer, for the cases below. */
static bnn_laplace *small_laplace(bnn_model **m) {
    REQUIRE(bnn_model_new(m, "mlp:2-3-2") == 0);
    float *w = bnn_model_params(*m);
    for (int64_t i = 0; i < bnn_model_nparams(*m); i++) w[i] = 0.1f * (float)((i % 7) - 3);
    double d[8];
    for (int i = 0; i < 8; i++) d[i] = 1.0 + i;
    bnn_curv *c;
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_DIAG, 8, 9, 10, 2, 1.0, d, NULL, 0, NULL, NULL, NULL,
                                 NULL) == 0);
    bnn_laplace *la;
    REQUIRE(bnn_laplace_new_from_params(&la, c, w, BNN_TASK_CLASSIFICATION) == 0);
    return la;
}

/* bnn_laplace_predict is public: it checks what bnn_predict checks (it relied on bnn_predict). */
static void test_laplace_predict_args(void) {
    bnn_model *m;
    bnn_laplace *la = small_laplace(&m);
    const float x[4] = {0.5f, -0.25f, 1.0f, 2.0f};
    double probs[4], mean[2], var[2];
    struct bnn_predict_params p = bnn_predict_default_params();
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, NULL, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    CHECK(has_error("probs is required"));
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, NULL, probs, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_REGRESSION, &p, NULL, NULL, mean, var),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_laplace_predict(NULL, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_predict(m, NULL, x, 2, (bnn_task)5, &p, probs, NULL, NULL, NULL), BNN_EINVAL);
    CHECK(has_error("unknown task 5"));
    /* A negative temperature negated the logits: the other class won. */
    p.temperature = -1.0;
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    /* T² at the ends of double range (1e-160: a denormal 1e-320, below 1e-162 it is 0 and a zero
     * variance became 0/0): refused. */
    const double bad_t[] = {1e-160, 1e160, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        p.temperature = bad_t[i];
        CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL,
                                         NULL, NULL),
                     BNN_EINVAL);
        CHECK(has_error("from 1e-150 to 1e150"));
    }
    p.temperature = 1e-100; /* within range: a distribution */
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 0);
    CHECK(isfinite(probs[0]) && fabs(probs[0] + probs[1] - 1.0) < 1e-12);
    p.temperature = 1.0, p.link_samples = -3;
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    p.link_samples = 0;
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 0);
    CHECK_NEAR(probs[0] + probs[1], 1.0, 1e-12);
    /* The link: Monte Carlo needs draws, the bridges take none, and nothing else is a link. */
    p.link = BNN_LINK_MC;
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    CHECK(has_error("needs link_samples > 0"));
    p.link = BNN_LINK_BRIDGE, p.link_samples = 4;
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    CHECK(has_error("not the bridge link"));
    p.link = (bnn_link)4, p.link_samples = 0;
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 BNN_EINVAL);
    CHECK(has_error("unknown link 4"));
    p.link = BNN_LINK_BRIDGE_NORM;
    CHECK_EQ_INT(bnn_laplace_predict(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, probs, NULL, NULL,
                                     NULL),
                 0);
    CHECK_NEAR(probs[0] + probs[1], 1.0, 1e-12);
    p.link = BNN_LINK_PROBIT;
    /* First-layer weights of 3e38 overflow the second input's hidden units (example 0's stay
     * finite): no Dirichlet there, so the bridge refuses and names that example, whether or not
     * mutual information is asked for (a row of 1s, laplace-torch's nan_to_num, would be scored
     * otherwise). */
    {
        bnn_model *mz;
        REQUIRE(bnn_model_new(&mz, "mlp:2-3-2") == 0);
        float *wz = bnn_model_params(mz);
        for (int64_t i = 0; i < bnn_model_nparams(mz); i++)
            wz[i] = i < 6 ? 3e38f : i < 9 ? 0.0f : 0.1f * (float)i;
        double dz[8] = {1, 2, 3, 4, 5, 6, 7, 8}, miz[2];
        bnn_curv *cz;
        REQUIRE(bnn_curv_from_arrays(&cz, BNN_HESS_DIAG, 8, 9, 10, 2, 1.0, dz, NULL, 0, NULL, NULL,
                                     NULL, NULL) == 0);
        bnn_laplace *lz;
        REQUIRE(bnn_laplace_new_from_params(&lz, cz, wz, BNN_TASK_CLASSIFICATION) == 0);
        for (int with_mi = 0; with_mi < 2; with_mi++) {
            p.link = with_mi ? BNN_LINK_BRIDGE_NORM : BNN_LINK_BRIDGE;
            CHECK_EQ_INT(bnn_laplace_predict(lz, mz, x, 2, BNN_TASK_CLASSIFICATION, &p, probs,
                                             with_mi ? miz : NULL, NULL, NULL),
                         BNN_EDIVERGED);
            CHECK(has_error("the Laplace bridge has no Dirichlet for example 1"));
            const float xr[4] = {1.0f, 2.0f, 0.5f, -0.25f}; /* the other way round */
            CHECK_EQ_INT(bnn_laplace_predict(lz, mz, xr, 2, BNN_TASK_CLASSIFICATION, &p, probs,
                                             with_mi ? miz : NULL, NULL, NULL),
                         BNN_EDIVERGED);
            CHECK(has_error("the Laplace bridge has no Dirichlet for example 0"));
            CHECK_EQ_INT(bnn_laplace_predict(lz, mz, x, 1, BNN_TASK_CLASSIFICATION, &p, probs,
                                             with_mi ? miz : NULL, NULL, NULL),
                         0);
            CHECK_NEAR(probs[0] + probs[1], 1.0, 1e-12);
        }
        /* At several prior precisions (a grid search) the message names the precision too. */
        const double dz2[2] = {0.5, 2.0};
        double pz[8];
        p.link = BNN_LINK_BRIDGE;
        CHECK_EQ_INT(bnn_laplace_predict_priors(lz, mz, x, 2, BNN_TASK_CLASSIFICATION, &p, dz2, 2,
                                                pz, NULL, NULL),
                     BNN_EDIVERGED);
        CHECK(has_error("no Dirichlet for example 1 at prior precision 0.5: its linearised"));
        p.link = BNN_LINK_PROBIT;
        bnn_laplace_free(lz);
        bnn_model_free(mz);
    }
    /* bnn_laplace_predict_priors checks what bnn_laplace_predict checks, under its own name, and
     * its list of precisions. */
    {
        const double dd[2] = {0.5, NAN};
        double pr2[8];
        CHECK_EQ_INT(bnn_laplace_predict_priors(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, dd, 2,
                                                NULL, NULL, NULL),
                     BNN_EINVAL);
        CHECK(has_error("bnn_laplace_predict_priors: probs is required"));
        CHECK_EQ_INT(bnn_laplace_predict_priors(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, dd, 2,
                                                pr2, NULL, NULL),
                     BNN_EINVAL);
        CHECK(has_error("prior precision nan (number 1) must be positive and finite"));
        CHECK_EQ_INT(bnn_laplace_predict_priors(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, dd,
                                                INT64_MAX / 4, pr2, NULL, NULL),
                     BNN_EINVAL);
        CHECK(has_error("prior precisions (at least 1, and no more than memory can address"));
        CHECK_EQ_INT(bnn_laplace_predict_priors(la, m, x, 2, BNN_TASK_CLASSIFICATION, &p, dd, 1,
                                                pr2, NULL, NULL),
                     0);
        CHECK_NEAR(pr2[0] + pr2[1], 1.0, 1e-12);
    }
    /* Names both ways. */
    for (int l = 0; l < 4; l++) {
        bnn_link back = (bnn_link)7;
        CHECK(bnn_link_parse(bnn_link_name((bnn_link)l), &back) == 0 && back == (bnn_link)l);
    }
    bnn_link back = BNN_LINK_MC;
    CHECK_EQ_INT(bnn_link_parse("bridge_norm", &back), BNN_EINVAL);
    CHECK(has_error("unknown link 'bridge_norm' (choose probit, mc, bridge or bridge-norm)"));
    CHECK(back == BNN_LINK_MC && !strcmp(bnn_link_name((bnn_link)9), "?"));

    /* lml and logdet are NaN at a prior or sigma that is not positive (logdet was log det H at
     * 0 and finite garbage below it). */
    CHECK(isnan(bnn_laplace_lml(la, 0.0, 1.0, NULL, NULL)));
    CHECK(isnan(bnn_laplace_lml(la, -1.0, 1.0, NULL, NULL)));
    CHECK(isfinite(bnn_laplace_lml(la, 1.0, 1.0, NULL, NULL)));
    bnn_laplace_set_prior(la, 0.0, 1.0);
    CHECK(isnan(bnn_laplace_logdet(la)));
    bnn_laplace_set_prior(la, -0.5, 1.0);
    CHECK(isnan(bnn_laplace_logdet(la)));
    bnn_laplace_set_prior(la, 2.0, 1.0);
    CHECK(isfinite(bnn_laplace_logdet(la)));
    const double one = 1.0, neg = -1.0;
    CHECK(isfinite(bnn_laplace_lml_layers(la, &one, 1, 1.0, NULL, NULL)) ||
          bnn_laplace_nlayers(la) != 1);
    if (bnn_laplace_nlayers(la) == 1) CHECK(isnan(bnn_laplace_lml_layers(la, &neg, 1, 1.0, NULL, NULL)));
    CHECK_EQ_INT(bnn_laplace_optimize(NULL, 10), BNN_EINVAL);
    /* a typo of a step count is refused, not run for years */
    CHECK_EQ_INT(bnn_laplace_optimize(la, INT64_MAX), BNN_EINVAL);
    CHECK(has_error("0 to 1000000"));
    CHECK_EQ_INT(bnn_laplace_optimize_layers(la, BNN_LAPLACE_MAX_STEPS + 1), BNN_EINVAL);
    CHECK(isnan(bnn_laplace_lml_layers(la, NULL, bnn_laplace_nlayers(la), 1.0, NULL, NULL)));
    CHECK(has_error("NULL precisions"));
    CHECK_EQ_INT(bnn_laplace_precision_diag(NULL, NULL), BNN_EINVAL);
    bnn_laplace_free(la);
    bnn_model_free(m);
}

/* Two writes of one path under a hold keep one temporary file: commit renamed the first, failed
 * on the second and dropped every file after it. */
static void test_hold_same_path(void) {
    const char *a = BNN_TEST_TMP "/hold_a.txt", *b = BNN_TEST_TMP "/hold_b.txt";
    mkdir(BNN_TEST_TMP, 0755);
    remove(a), remove(b);
    bnn_output_hold();
    CHECK_EQ_INT(bnn_write_file(a, "first", 5), 0);
    CHECK_EQ_INT(bnn_write_file(a, "second", 6), 0);
    CHECK_EQ_INT(bnn_write_file(b, "b", 1), 0);
    CHECK(access(a, F_OK) != 0); /* nothing renamed before the commit */
    CHECK_EQ_INT(bnn_check_output(a), 0); /* its probe must not take the held file's slot */
    CHECK_EQ_INT(bnn_output_commit(), 0);
    char buf[16] = {0};
    FILE *f = fopen(a, "rb");
    CHECK(f && fread(buf, 1, sizeof buf - 1, f) == 6 && !strcmp(buf, "second"));
    if (f) fclose(f);
    CHECK(access(b, F_OK) == 0);
    /* Discard removes what was held; the targets stay as they were. */
    bnn_output_hold();
    CHECK_EQ_INT(bnn_write_file(b, "changed", 7), 0);
    bnn_output_discard();
    f = fopen(b, "rb");
    memset(buf, 0, sizeof buf);
    CHECK(f && fread(buf, 1, sizeof buf - 1, f) == 1 && buf[0] == 'b');
    if (f) fclose(f);
    CHECK_EQ_INT(bnn_output_commit(), 0); /* nothing held: nothing to do */
    CHECK_EQ_INT(bnn_write_file(a, NULL, 5), BNN_EINVAL); /* fwrite(NULL) before */
    remove(a), remove(b);
}

/* "PATH.tmp.PID": the temporary name bnn_write_file uses. */
static bool tmp_exists(const char *path) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    return access(tmp, F_OK) == 0;
}

/* bnn_write_file_emit: what the emitter prints is the file; an emitter that fails (here after
 * printing half of its text) leaves the old file as it was and no temporary file, with
 * BNN_EIO; no emitter is BNN_EINVAL. */
static int emit_lines(FILE *f, void *ctx) {
    const int *fail_after = ctx;
    for (int i = 0; i < 1000; i++) {
        if (*fail_after >= 0 && i == *fail_after) {
            errno = ENOSPC;
            return -1;
        }
        if (fprintf(f, "line %d\n", i) < 0) return -1;
    }
    return 0;
}

static void test_write_emit(void) {
    const char *a = BNN_TEST_TMP "/emit.txt";
    mkdir(BNN_TEST_TMP, 0755);
    remove(a);
    int never = -1, half = 500;
    CHECK_EQ_INT(bnn_write_file_emit(a, emit_lines, &never), 0);
    FILE *f = fopen(a, "rb");
    char buf[32];
    int lines = 0, last = -1;
    while (f && fgets(buf, sizeof buf, f))
        lines++, last = atoi(buf + 5);
    if (f) fclose(f);
    CHECK(lines == 1000 && last == 999);
    CHECK_EQ_INT(bnn_write_file_emit(a, emit_lines, &half), BNN_EIO);
    CHECK(strstr(bnn_last_error(), "emit.txt") != NULL);
    CHECK(!tmp_exists(a));
    f = fopen(a, "rb");
    lines = 0;
    while (f && fgets(buf, sizeof buf, f))
        lines++;
    if (f) fclose(f);
    CHECK_EQ_INT(lines, 1000); /* the old file, whole */
    CHECK_EQ_INT(bnn_write_file_emit(a, NULL, NULL), BNN_EINVAL);
    remove(a);
}

/* A commit that fails on one file (its name became a directory) renames the files written before
 * it, drops those after it, and leaves no temporary file; a discard leaves none either. */
static void test_commit_failure(void) {
    const char *a = BNN_TEST_TMP "/cf_a.txt", *d = BNN_TEST_TMP "/cf_d";
    const char *c = BNN_TEST_TMP "/cf_c.txt";
    remove(a), rmdir(d), remove(c);
    bnn_output_hold();
    CHECK_EQ_INT(bnn_write_file(a, "a", 1), 0);
    CHECK_EQ_INT(bnn_write_file(d, "d", 1), 0);
    CHECK_EQ_INT(bnn_write_file(c, "c", 1), 0);
    REQUIRE(mkdir(d, 0755) == 0);
    CHECK_EQ_INT(bnn_output_commit(), BNN_EIO);
    CHECK(access(a, F_OK) == 0); /* before the failure: renamed */
    CHECK(access(c, F_OK) != 0); /* after it: dropped */
    CHECK(!tmp_exists(a) && !tmp_exists(d) && !tmp_exists(c));
    bnn_output_hold();
    CHECK_EQ_INT(bnn_write_file(c, "c", 1), 0);
    bnn_output_discard();
    CHECK(access(c, F_OK) != 0 && !tmp_exists(c));
    remove(a), rmdir(d);
}

/* Every write gives its slot back, whether it succeeded or failed: after more writes than there
 * are slots, a held write still gets one. An empty write (NULL, 0) makes an empty file. */
static void test_write_slots(void) {
    const char *a = BNN_TEST_TMP "/slots_a.txt", *missing = BNN_TEST_TMP "/no_such_dir/x.txt";
    for (int i = 0; i < 12; i++) {
        CHECK_EQ_INT(bnn_write_file(a, "x", 1), 0);
        CHECK_EQ_INT(bnn_write_file(missing, "x", 1), BNN_EIO);
    }
    bnn_output_hold();
    CHECK_EQ_INT(bnn_write_file(a, "y", 1), 0);
    CHECK_EQ_INT(bnn_output_commit(), 0);
    struct stat sb;
    CHECK_EQ_INT(bnn_write_file(a, NULL, 0), 0);
    CHECK(stat(a, &sb) == 0 && sb.st_size == 0);
    remove(a);
}

/* An unknown schedule trained as cosine and was saved as constant: resume was not exact. */
static void test_trainer_schedule(void) {
    bnn_model *m;
    bnn_dataset *ds;
    REQUIRE(bnn_model_new(&m, "mlp:2-2") == 0);
    REQUIRE(bnn_toy_moons(&ds, 20, 0.1, 1) == 0);
    struct bnn_train_params p = bnn_train_default_params();
    p.lr_schedule = (bnn_lr_schedule)7;
    bnn_trainer *tr;
    CHECK_EQ_INT(bnn_trainer_new(&tr, m, ds, &p), BNN_EINVAL);
    CHECK(has_error("unknown learning-rate schedule 7"));
    CHECK_EQ_INT(bnn_trainer_run(NULL, 1), BNN_EINVAL);
    CHECK_EQ_INT(bnn_trainer_check(NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_trainer_posterior(NULL, NULL), BNN_EINVAL);
    bnn_trainer *tr2;
    bnn_model *m2;
    CHECK_EQ_INT(bnn_trainer_resume(&tr2, &m2, "x", NULL, 0), BNN_EINVAL);
    {
        bnn_dataset *dsr;
        CHECK_EQ_INT(bnn_toy_moons(&dsr, 8, 0.1, 1), 0);
        CHECK_EQ_INT(bnn_trainer_resume(&tr2, &m2, "x", dsr, -1), BNN_EINVAL);
        CHECK(has_error("epochs is -1"));
        bnn_dataset_free(dsr);
    }
    bnn_method me;
    CHECK_EQ_INT(bnn_method_parse(NULL, &me), BNN_EINVAL);
    bnn_link lkn;
    CHECK_EQ_INT(bnn_link_parse(NULL, &lkn), BNN_EINVAL);
    CHECK(has_error("no link given (NULL; choose probit, mc, bridge or bridge-norm)"));
    CHECK_EQ_INT(bnn_model_set_lik(NULL, BNN_LIK_GAUSSIAN), BNN_EINVAL);
    CHECK_EQ_INT(bnn_model_reserve(NULL, 4), BNN_EINVAL);
    struct bnn_eval_result r;
    struct bnn_predict_params pp = bnn_predict_default_params();
    CHECK_EQ_INT(bnn_evaluate(m, NULL, ds, &pp, 15, NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_evaluate(NULL, NULL, ds, &pp, 15, &r), BNN_EINVAL);
    bnn_posterior *q;
    CHECK_EQ_INT(bnn_posterior_new(NULL, BNN_POSTERIOR_POINT, 3), BNN_EINVAL);
    REQUIRE(bnn_posterior_new(&q, BNN_POSTERIOR_POINT, 3) == 0);
    CHECK_EQ_INT(bnn_posterior_sample(q, NULL, NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_posterior_sample(NULL, NULL, NULL), BNN_EINVAL);
    bnn_posterior_free(q);
    bnn_dataset_free(ds);
    bnn_model_free(m);
}

/* bnn_trainer_new refuses every setting out of range with BNN_EINVAL and a message naming it,
 * before anything is allocated (the CLI checks the same ranges first, so only callers of the
 * library see these). Infinite hess-init (a rescaled step of inf * 0) and KL weight were taken. */
static void test_train_params(void) {
    bnn_model *m;
    bnn_dataset *ds;
    REQUIRE(bnn_model_new(&m, "mlp:2-2") == 0);
    REQUIRE(bnn_toy_moons(&ds, 20, 0.1, 1) == 0);
    for (int c = 0; c < 24; c++) {
        struct bnn_train_params p = bnn_train_default_params();
        const char *want = NULL;
        switch (c) {
        case 0: p.method = (bnn_method)9, want = "unknown method 9"; break;
        case 1: p.epochs = -1, want = "epochs must be in [0,"; break;
        case 2: p.batch_size = 0, want = "batch size >= 1"; break;
        case 3: p.lr = NAN, want = "learning rate must be a positive float"; break;
        case 4: p.weight_decay = INFINITY, want = "weight decay must be a float >= 0"; break;
        case 5: p.method = BNN_METHOD_SGD, p.momentum = 1.0f, want = "sgd momentum"; break;
        case 6: p.epochs = 2, p.warmup_epochs = 3, want = "warm-up epochs"; break;
        case 7: p.sigma = 0.0, want = "noise scale sigma"; break;
        case 8: p.method = BNN_METHOD_IVON, p.ivon.ess = -1.0, want = "IVON: ess"; break;
        case 9: p.method = BNN_METHOD_IVON, p.ivon.hess_init = 0.0f, want = "IVON: hess-init"; break;
        case 10: p.method = BNN_METHOD_IVON, p.ivon.hess_init = INFINITY, want = "IVON: hess-init"; break;
        case 11: p.method = BNN_METHOD_IVON, p.ivon.beta1 = 1.0, want = "IVON: beta1 and beta2"; break;
        case 12: p.method = BNN_METHOD_IVON, p.ivon.beta2 = -0.1, want = "IVON: beta1 and beta2"; break;
        case 13: p.method = BNN_METHOD_IVON, p.ivon.mc_samples = 0, want = "IVON: mc-samples"; break;
        case 14: p.method = BNN_METHOD_IVON, p.ivon.clip_radius = NAN, want = "IVON: clip radius"; break;
        case 15: p.method = BNN_METHOD_MFVI, p.mfvi.prior_prec = 0.0, want = "MFVI: prior precision"; break;
        case 16: p.method = BNN_METHOD_MFVI, p.mfvi.init_std = INFINITY, want = "MFVI: initial std"; break;
        case 17: p.method = BNN_METHOD_MFVI, p.mfvi.mc_samples = BNN_MAX_MC_SAMPLES + 1, want = "MFVI: mc-samples"; break;
        case 18: p.method = BNN_METHOD_MFVI, p.mfvi.kl_weight = -1.0, want = "MFVI: KL weight"; break;
        case 19: p.method = BNN_METHOD_MFVI, p.mfvi.kl_weight = INFINITY, want = "MFVI: KL weight"; break;
        case 20: p.method = BNN_METHOD_IVON, p.ivon.ess = INFINITY, want = "IVON: ess"; break;
        case 21: p.method = BNN_METHOD_SGD, p.momentum = NAN, want = "sgd momentum"; break;
        /* below MFVI's σ floor: the KL's pull on ρ vanishes there, and σ stayed at the floor */
        case 22: p.method = BNN_METHOD_MFVI, p.mfvi.init_std = 1e-20f, want = "MFVI: initial std 1e-20 is below the smallest std MFVI represents, 2^-63"; break;
        /* finite, but the KL gradient's factor 1e300 / 20 is no float: step 1 would diverge */
        case 23: p.method = BNN_METHOD_MFVI, p.mfvi.kl_weight = 1e300, want = "MFVI: KL weight 1e+300 times prior precision 1 over 20 examples is beyond float range"; break;
        }
        bnn_trainer *tr = (bnn_trainer *)&p; /* set to NULL on failure */
        CHECK_EQ_INT(bnn_trainer_new(&tr, m, ds, &p), BNN_EINVAL);
        check_case_error(c, want);
        CHECK(tr == NULL);
    }
    bnn_dataset_free(ds);
    bnn_model_free(m);
}

/* bnn_curv_compute's refusals of settings out of range, each BNN_EINVAL naming it with *out
 * NULL; bnn_predict's of a sample count out of range and a posterior of another size. */
static void test_curv_predict_params(void) {
    bnn_model *m;
    bnn_dataset *ds;
    REQUIRE(bnn_model_new(&m, "mlp:2-3-2") == 0);
    bnn_model_init(m, 1);
    REQUIRE(bnn_toy_moons(&ds, 20, 0.1, 1) == 0);
    for (int c = 0; c < 7; c++) {
        struct bnn_curv_params p = bnn_curv_default_params();
        const char *want = NULL;
        switch (c) {
        case 0: p.curvature = (bnn_curvature)9, want = "unknown curvature 9"; break;
        case 1: p.hessian = (bnn_hessian)9, want = "unknown Hessian structure 9"; break;
        case 2: p.sums = 3, want = "sums must be BNN_SUMS_AUTO, _FLOAT or _DOUBLE, got 3"; break;
        case 3: p.lowrank_method = 3, want = "lowrank_method must be 0 (choose), 1 (dense) or 2"; break;
        case 4: p.hessian = BNN_HESS_LOWRANK, p.rank = 0, want = "rank must be at least 1 (got 0)"; break;
        case 5: p.subset = (bnn_subset)9, want = "unknown subset 9"; break;
        case 6: p.subset = BNN_SUBSET_LAYERS, p.nlayers_sel = 0, want = "needs at least one layer index"; break;
        }
        bnn_curv *cv = (bnn_curv *)&p;
        CHECK_EQ_INT(bnn_curv_compute(&cv, m, ds, &p), BNN_EINVAL);
        check_case_error(c, want);
        CHECK(cv == NULL);
    }
    {
        /* A classifier's curvature under a regression's posterior is refused (it was built, and
         * optimised, predicted and saved as a Gaussian model's) */
        struct bnn_curv_params p = bnn_curv_default_params();
        bnn_curv *cv;
        bnn_laplace *la = NULL;
        REQUIRE(bnn_curv_compute(&cv, m, ds, &p) == 0);
        CHECK_EQ_INT(bnn_laplace_new_from_params(&la, cv, bnn_model_cparams(m),
                                                 BNN_TASK_REGRESSION), BNN_EINVAL);
        CHECK(has_error("the curvature is of a categorical likelihood, for classification, and "
                        "the task is regression"));
        CHECK(la == NULL);
        REQUIRE(bnn_curv_compute(&cv, m, ds, &p) == 0);
        CHECK_EQ_INT(bnn_laplace_new_from_params(&la, cv, bnn_model_cparams(m),
                                                 BNN_TASK_CLASSIFICATION), 0);
        bnn_laplace_free(la);
    }
    struct bnn_predict_params pp = bnn_predict_default_params();
    double probs[4];
    float x[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    pp.samples = -1;
    CHECK_EQ_INT(bnn_predict(m, NULL, x, 2, BNN_TASK_CLASSIFICATION, &pp, probs, NULL, NULL, NULL),
                 BNN_EINVAL);
    CHECK(has_error("the number of samples must be in [0,"));
    pp.samples = 2;
    bnn_posterior *q;
    REQUIRE(bnn_posterior_new(&q, BNN_POSTERIOR_DIAG, bnn_model_nparams(m) + 1) == 0);
    CHECK_EQ_INT(bnn_predict(m, q, x, 2, BNN_TASK_CLASSIFICATION, &pp, probs, NULL, NULL, NULL),
                 BNN_ESHAPE);
    CHECK(has_error("the posterior has 18 parameters, the model 17"));
    bnn_posterior_free(q);
    bnn_dataset_free(ds);
    bnn_model_free(m);
    /* An infinite regression noise is a bad setting as 0 is (it came back BNN_EDIVERGED). */
    REQUIRE(bnn_model_new(&m, "mlp:2-1") == 0);
    pp = bnn_predict_default_params();
    double mean[2], var[2];
    for (int c = 0; c < 2; c++) {
        pp.sigma = c ? INFINITY : 0.0;
        CHECK_EQ_INT(bnn_predict(m, NULL, x, 2, BNN_TASK_REGRESSION, &pp, NULL, NULL, mean, var),
                     BNN_EINVAL);
        CHECK(has_error("regression noise sigma must be positive and finite"));
    }
    /* One whose square underflows to 0 left a zero predictive variance at the weights, which was
     * blamed on a heteroscedastic model's predicted noise. */
    pp.sigma = 1e-170;
    CHECK_EQ_INT(bnn_predict(m, NULL, x, 2, BNN_TASK_REGRESSION, &pp, NULL, NULL, mean, var),
                 BNN_EINVAL);
    CHECK(has_error("regression noise sigma 1e-170 is too small: its square underflows to 0"));
    bnn_model_free(m);
    /* A spec too deep says so: the message echoed all of it, and the 1023 bytes kept none of the
     * reason after it. */
    char deep[4096] = "mlp:2";
    for (int i = 0; i < 600; i++) strcat(deep, "-2");
    CHECK_EQ_INT(bnn_model_new(&m, deep), BNN_EINVAL);
    CHECK(has_error("': more than 64 sizes (layers)"));
}

/* Direct optimizer calls: ess 0 (the trainer's "data size") gave infinite samples and a Hessian
 * forced to 0; t = 0 and NULL params aborted or crashed. */
static void test_optimizer_args(void) {
    float m[2] = {0.5f, -0.5f}, h[2] = {1, 1}, g[2] = {0, 0}, gb[2] = {1, 1}, ge[2] = {1, 1};
    float th[2], e[2] = {1, -1}, v[2] = {0, 0};
    struct bnn_ivon_params p = bnn_ivon_default_params(); /* ess 0 */
    CHECK_EQ_INT(bnn_ivon_sample(th, m, h, e, 2, &p), BNN_EINVAL);
    CHECK(has_error("ess"));
    CHECK_EQ_INT(bnn_ivon_step(m, h, g, gb, ge, 2, 1, &p), BNN_EINVAL);
    CHECK(m[0] == 0.5f && m[1] == -0.5f); /* untouched */
    p.ess = 100.0;
    CHECK_EQ_INT(bnn_ivon_step(m, h, g, gb, ge, 2, 0, &p), BNN_EINVAL);
    CHECK_EQ_INT(bnn_ivon_step(m, h, g, gb, ge, 2, 1, NULL), BNN_EINVAL);
    p.beta1 = 1.0; /* refused before anything is written (it divided by 1 − β1^t = 0) */
    CHECK_EQ_INT(bnn_ivon_step(m, h, g, gb, ge, 2, 1, &p), BNN_EINVAL);
    CHECK(has_error("beta1 and beta2") && m[0] == 0.5f && isfinite(g[0]) && isfinite(h[0]));
    p.beta1 = 0.9, p.weight_decay = -1.0f;
    CHECK_EQ_INT(bnn_ivon_step(m, h, g, gb, ge, 2, 1, &p), BNN_EINVAL);
    p.weight_decay = 1e-4f;
    CHECK_EQ_INT(bnn_ivon_sample(th, m, h, e, 2, &p), 0);
    CHECK(isfinite(th[0]) && isfinite(th[1]));
    CHECK_EQ_INT(bnn_ivon_step(m, h, g, gb, ge, 2, 1, &p), 0);
    struct bnn_adamw_params ap = bnn_adamw_default_params();
    CHECK_EQ_INT(bnn_adamw_step(m, g, v, gb, 2, 0, &ap), BNN_EINVAL);
    CHECK_EQ_INT(bnn_sgd_step(m, g, gb, 2, 1, NULL), BNN_EINVAL);
    struct bnn_sgd_params sp = bnn_sgd_default_params();
    CHECK_EQ_INT(bnn_sgd_step(m, g, gb, 2, 0, &sp), BNN_EINVAL); /* t counts from 1 */
    CHECK(has_error("t >= 1"));
    CHECK_EQ_INT(bnn_sgd_step(m, g, gb, -1, 1, &sp), BNN_EINVAL);
    CHECK(has_error("(got n -1, t 1)")); /* the count named, not only the step */
    {
        bnn_dataset *dn;
        CHECK_EQ_INT(bnn_dataset_new(&dn, BNN_TASK_CLASSIFICATION, 0, 2, 0, 1LL << 40), BNN_EINVAL);
        CHECK(has_error("classes must be in 1 .. 2^31 - 1 (got 1099511627776)"));
    }
    /* settings torch.optim refuses: named, and nothing written (AdamW with beta1 = 1 wrote NaN
     * weights and said only that the step diverged) */
    const float m0 = m[0], v0 = v[0], g0 = g[0];
    const float bad_ab[][3] = {{1.0f, 0.999f, 1e-3f}, {0.9f, 1.0f, 1e-3f}, {0.9f, 0.999f, -1e-3f},
                               {-0.1f, 0.999f, 1e-3f}, {0.9f, 0.999f, NAN}};
    for (int i = 0; i < 5; i++) {
        ap.beta1 = bad_ab[i][0], ap.beta2 = bad_ab[i][1], ap.lr = bad_ab[i][2];
        CHECK_EQ_INT(bnn_adamw_step(m, g, v, gb, 2, 1, &ap), BNN_EINVAL);
        CHECK(has_error("bnn_adamw_step: need") && m[0] == m0 && g[0] == g0 && v[0] == v0);
    }
    ap = bnn_adamw_default_params(), ap.eps = -1e-8f;
    CHECK_EQ_INT(bnn_adamw_step(m, g, v, gb, 2, 1, &ap), BNN_EINVAL);
    const float bad_sgd[][4] = {{-0.1f, 0.9f, 0, 0}, {0.1f, -0.5f, 0, 0}, {0.1f, 1.5f, 0, 0},
                                {0.1f, 0.9f, -1e-4f, 0}, {0.1f, 0.9f, 0, 2.0f}, {NAN, 0.9f, 0, 0}};
    for (int i = 0; i < 6; i++) {
        sp = bnn_sgd_default_params();
        sp.lr = bad_sgd[i][0], sp.momentum = bad_sgd[i][1], sp.weight_decay = bad_sgd[i][2];
        sp.dampening = bad_sgd[i][3];
        CHECK_EQ_INT(bnn_sgd_step(m, g, gb, 2, 1, &sp), BNN_EINVAL);
        CHECK(has_error("bnn_sgd_step: need") && m[0] == m0 && g[0] == g0);
    }
    sp = bnn_sgd_default_params(), sp.nesterov = true, sp.dampening = 0.1f;
    CHECK_EQ_INT(bnn_sgd_step(m, g, gb, 2, 1, &sp), BNN_EINVAL);
    sp.dampening = 0.0f; /* torch accepts Nesterov with momentum and no dampening */
    CHECK_EQ_INT(bnn_sgd_step(m, g, gb, 2, 1, &sp), 0);
    /* bnn_lik_loss and bnn_mfvi_loss without the labels a classifier needs: NaN, not a crash. */
    const bnn_lik lik = {BNN_LIK_CATEGORICAL, 1.0};
    const float f[2] = {0.1f, 0.2f};
    CHECK(isnan(bnn_lik_loss(&lik, NULL, f, NULL, NULL, 1, 2)));
    CHECK(has_error("labels are required"));
    const bnn_lik odd = {(bnn_lik_kind)7, 1.0}; /* an unknown kind: NaN too (it aborted) */
    const int32_t y0[1] = {0};
    CHECK(isnan(bnn_lik_loss(&odd, NULL, f, y0, NULL, 1, 2)));
    CHECK(has_error("unknown likelihood kind 7"));
    const bnn_lik g0s = {BNN_LIK_GAUSSIAN, 0.0}; /* NaN without a word before */
    CHECK(isnan(bnn_lik_loss(&g0s, NULL, f, NULL, f, 1, 2)));
    CHECK(has_error("noise sigma must be positive"));
    CHECK(isnan(bnn_mfvi_kl(NULL, NULL, 3, 1.0))); /* it dereferenced NULL */
    /* an h with h + δ <= 0 has no σ: refused, not NaN weights with 0 returned */
    const float hneg[2] = {-1.0f, 1.0f};
    p.ess = 100.0;
    CHECK_EQ_INT(bnn_ivon_sample(th, m, hneg, e, 2, &p), BNN_EINVAL);
    CHECK(has_error("h + delta <= 0"));
}

/* NULL handles and outputs (found by an audit of bnn.h's "a NULL handle gets an error code"
 * under UBSan: each was a null-pointer member access). */
static void test_null_handles(void) {
    bnn_model *m;
    bnn_laplace *la = small_laplace(&m);
    int64_t wo, ws[2], bo, bl;
    CHECK_EQ_INT(bnn_model_layer_tensors(NULL, 0, &wo, ws, &bo, &bl), BNN_EINVAL);
    CHECK_EQ_INT(bnn_model_layer_tensors(m, 0, NULL, ws, &bo, &bl), BNN_EINVAL);
    CHECK(has_error("bnn_model_layer_tensors"));
    REQUIRE(bnn_model_layer_tensors(m, 0, &wo, ws, &bo, &bl) == 0);
    CHECK_EQ_INT(bnn_model_layer_tensors(m, 99, &wo, ws, &bo, &bl), BNN_EINVAL);
    CHECK(has_error("layer 99 is out of range (the model has 3 layers)"));
    CHECK_EQ_INT(bnn_model_layer_tensors(m, 1, &wo, ws, &bo, &bl), BNN_EINVAL);
    CHECK(has_error("layer 1 (relu) has no parameters"));
    char path[512];
    snprintf(path, sizeof path, "%s/api_null.safetensors", BNN_TEST_TMP);
    unlink(path);
    CHECK_EQ_INT(bnn_laplace_save(NULL, m, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_laplace_save(la, NULL, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK(has_error("bnn_laplace_save") && access(path, F_OK) != 0);
    /* Extra pairs checked as bnn_model_save checks them (NULL keys were dereferenced); a task
     * other than the posterior's, and a model the subset does not fit, refused before writing
     * (a file that bnn_posterior_load then refused was written). */
    CHECK_EQ_INT(bnn_laplace_save(la, m, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 3), BNN_EINVAL);
    CHECK_EQ_INT(bnn_laplace_save(la, m, BNN_TASK_CLASSIFICATION, path, NULL, NULL, -1),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_laplace_save(la, m, BNN_TASK_REGRESSION, path, NULL, NULL, 0), BNN_EINVAL);
    CHECK(has_error("fitted for classification"));
    bnn_model *small;
    REQUIRE(bnn_model_new(&small, "mlp:2-2") == 0);
    CHECK_EQ_INT(bnn_laplace_save(la, small, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 0),
                 BNN_ESHAPE);
    CHECK(has_error("does not fit a model of 6 parameters") && access(path, F_OK) != 0);
    bnn_model_free(small);
    double *dense = NULL;
    CHECK_EQ_INT(bnn_laplace_precision_dense(la, dense), BNN_EINVAL);
    CHECK_EQ_INT(bnn_laplace_precision_diag(la, dense), BNN_EINVAL);
    REQUIRE(bnn_laplace_save(la, m, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 0) == 0);
    bnn_st *st;
    REQUIRE(bnn_st_read(&st, path) == 0);
    bnn_posterior *q = (bnn_posterior *)1;
    CHECK_EQ_INT(bnn_posterior_load(&q, NULL, st), BNN_EINVAL);
    CHECK(q == NULL);
    CHECK_EQ_INT(bnn_posterior_load(&q, m, NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_posterior_load(NULL, m, st), BNN_EINVAL);
    /* The mean is the model's weights: a model of another architecture than the file's, also one
     * of as many weights, is refused (it gave a posterior with the wrong network's weights). */
    bnn_model *other, *same_n;
    REQUIRE(bnn_model_new(&other, "mlp:2-4-2") == 0);
    REQUIRE(bnn_model_new(&same_n, "mlp:2-3-2:tanh") == 0);
    CHECK_EQ_INT(bnn_posterior_load(&q, other, st), BNN_EINVAL);
    CHECK(has_error("the model (mlp:2-4-2) is not the file's (mlp:2-3-2)"));
    CHECK_EQ_INT(bnn_posterior_load(&q, same_n, st), BNN_EINVAL);
    CHECK(has_error("the model (mlp:2-3-2:tanh) is not the file's"));
    bnn_model_free(other);
    bnn_model_free(same_n);
    REQUIRE(bnn_posterior_load(&q, m, st) == 0);
    CHECK(bnn_posterior_kind_of(q) == BNN_POSTERIOR_LAPLACE);
    bnn_posterior_free(q);
    bnn_st_free(st);
    /* A point-mass file loads without leaving an error behind: the probe for posterior.std is
     * not a failure (it left "no tensor named 'posterior.std'", read as one). */
    REQUIRE(bnn_model_save(m, path, BNN_TASK_CLASSIFICATION, NULL, NULL, 0) == 0);
    REQUIRE(bnn_st_read(&st, path) == 0);
    CHECK_EQ_INT(bnn_parse_int("x", &wo), BNN_EINVAL);
    char before[256];
    snprintf(before, sizeof before, "%s", bnn_last_error());
    REQUIRE(bnn_posterior_load(&q, m, st) == 0);
    CHECK(bnn_posterior_kind_of(q) == BNN_POSTERIOR_POINT);
    CHECK(!strcmp(bnn_last_error(), before));
    bnn_posterior_free(q);
    bnn_st_free(st);
    CHECK_EQ_INT(bnn_lik_parse("gaussian", NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_parse_int("5", NULL), BNN_EINVAL);
    bnn_laplace_free(la);
    bnn_model_free(m);
}

/* A Kronecker factor that is symmetric with a positive diagonal but indefinite (eigenvalues 11
 * and −9; a file edited by hand) is refused as a full curvature's is, instead of having its
 * negative eigenvalue set to 0 (an audit of altered files). A factor rounded slightly below 0,
 * as float sums leave them, is still taken. */
static void test_kron_indefinite(void) {
    const double bad[4] = {1, 10, 10, 1}, eye[4] = {1, 0, 0, 1},
                 round[4] = {1, 1 + 1e-9, 1 + 1e-9, 1};
    const double *f0[1] = {bad}, *f1[1] = {eye};
    const int64_t n0[1] = {2}, n1[1] = {2};
    const float mean[4] = {0};
    bnn_curv *c;
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_KRON, 4, 0, 10, 2, 1.0, NULL, NULL, 1, n0, n1, f0,
                                 f1) == 0);
    bnn_laplace *la = (bnn_laplace *)1;
    CHECK_EQ_INT(bnn_laplace_new(&la, c, mean, BNN_TASK_CLASSIFICATION), BNN_EINVAL);
    CHECK(la == NULL);
    CHECK(has_error("kron block 0 factor 0 has eigenvalue -9 (largest 11): it is not positive "
                    "semi-definite"));
    f0[0] = round; /* eigenvalues 2 + 1e-9 and −1e-9 */
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_KRON, 4, 0, 10, 2, 1.0, NULL, NULL, 1, n0, n1, f0,
                                 f1) == 0);
    REQUIRE(bnn_laplace_new(&la, c, mean, BNN_TASK_CLASSIFICATION) == 0);
    bnn_laplace_free(la);
}

/* A full curvature whose smallest eigenvalue rounding made −10 (within the −1e-4 of the largest,
 * 1e6, that bnn_laplace_new lets through): both prior optimisations stop at their first step,
 * where δ = 1 leaves the posterior precision indefinite, with BNN_EDIVERGED naming the step and
 * the eigenvalues, and leave the prior as it was. */
static void test_optimize_indefinite(void) {
    const double a = 5e5 - 5, b = 5e5 + 5, dense[4] = {a, b, b, a}; /* eigenvalues 1e6, −10 */
    const float mean[2] = {0.5f, -0.5f};
    bnn_curv *c;
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_FULL, 2, 0, 10, 2, 1.0, NULL, dense, 0, NULL, NULL,
                                 NULL, NULL) == 0);
    bnn_laplace *la;
    REQUIRE(bnn_laplace_new(&la, c, mean, BNN_TASK_CLASSIFICATION) == 0);
    const double before = bnn_laplace_prior_prec(la);
    CHECK_EQ_INT(bnn_laplace_optimize(la, 10), BNN_EDIVERGED);
    CHECK(has_error("not finite at step 1 of the prior's optimisation (prior precision 1): the "
                    "posterior precision is not positive definite there (the curvature's "
                    "smallest eigenvalue -10 against a largest of 1e+06"));
    CHECK(bnn_laplace_prior_prec(la) == before);
    const int64_t L = bnn_laplace_nlayers(la);
    CHECK_EQ_INT(bnn_laplace_optimize_layers(la, 10), BNN_EDIVERGED);
    CHECK(has_error("not finite at step 1 of the per-layer prior's optimisation (smallest prior "
                    "precision 1): the posterior precision is not positive definite"));
    double d[2] = {0, 0};
    CHECK(L >= 1 && L <= 2 && bnn_laplace_prior_layers(la, d, L) == 0 && d[0] == before);
    bnn_laplace_free(la);
}

/* Low-rank eigenvectors that are not orthonormal (scaled by 1.2, or two equal columns) are
 * refused: the Woodbury solves assume UᵀU = I, and such a file predicted with a curvature that
 * matches no U diag(λ) Uᵀ (an audit of altered files). */
static void test_lowrank_not_orthonormal(void) {
    const double s = sqrt(0.5), eig[2] = {3.0, 1.0};
    const double ok[6] = {s, 0, s, 0, 0, 1}, scaled[6] = {1.2 * s, 0, 1.2 * s, 0, 0, 1.2},
                 same[6] = {s, s, s, s, 0, 0};
    const double *Us[3] = {ok, scaled, same};
    const float mean[3] = {0};
    for (int i = 0; i < 3; i++) {
        bnn_curv *c;
        REQUIRE(bnn_curv_lowrank_from_arrays(&c, 3, 0, 10, 2, 1.0, 2, Us[i], eig) == 0);
        bnn_laplace *la = NULL;
        const int rc = bnn_laplace_new(&la, c, mean, BNN_TASK_CLASSIFICATION);
        CHECK_EQ_INT(rc, i == 0 ? 0 : BNN_EINVAL);
        if (i) CHECK(has_error("the low-rank eigenvectors are not orthonormal"));
        bnn_laplace_free(la);
    }
}

/* A likelihood whose width does not fit the model: mean-field VI asserted inside bnn_lik_loss
 * (an abort on a caller's argument); now NaN naming it. A workspace size that overflows: 0,
 * not signed overflow (UBSan). */
static void test_mfvi_lik_width(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-4-2") == 0);
    REQUIRE(bnn_model_reserve(m, 4) == 0);
    const int64_t np = bnn_model_nparams(m);
    float *mu = calloc((size_t)np, sizeof(float)), *rho = calloc((size_t)np, sizeof(float));
    float *gm = calloc((size_t)np, sizeof(float)), *gr = calloc((size_t)np, sizeof(float));
    REQUIRE(mu && rho && gm && gr);
    const float x[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    const int32_t lab[4] = {0, 1, 0, 1};
    const float tg[4] = {0.5f, 1.5f, 2.5f, 3.5f};
    struct bnn_mfvi_params mp = bnn_mfvi_default_params();
    bnn_rng r = bnn_rng_make(0, 0);
    const bnn_lik ber = {BNN_LIK_BERNOULLI, 1.0}, het = {BNN_LIK_HETERO_GAUSSIAN, 1.0};
    CHECK(isnan(bnn_mfvi_loss(m, mu, rho, x, lab, NULL, 4, &ber, 100, &mp, &r, gm, gr)));
    CHECK(has_error("a bernoulli likelihood does not fit model mlp:2-4-2's 2 outputs"));
    /* a KL gradient factor beyond float range (1e300 · 1 / 100), named; and 1e41 / 100 for σ at
     * a prior precision of 1e-3 */
    const bnn_lik cat = {BNN_LIK_CATEGORICAL, 1.0};
    struct bnn_mfvi_params big = mp;
    big.kl_weight = 1e300;
    CHECK(isnan(bnn_mfvi_loss(m, mu, rho, x, lab, NULL, 4, &cat, 100, &big, &r, gm, gr)));
    CHECK(has_error("kl_weight 1e+300 times prior_prec 1 over n_train 100 is beyond float range"));
    big.kl_weight = 1e41, big.prior_prec = 1e-3;
    CHECK(isnan(bnn_mfvi_loss(m, mu, rho, x, lab, NULL, 4, &cat, 100, &big, &r, gm, gr)));
    CHECK(has_error("kl_weight 1e+41 times prior_prec 0.001"));
    bnn_model *m3;
    REQUIRE(bnn_model_new(&m3, "mlp:2-4-3") == 0);
    REQUIRE(bnn_model_reserve(m3, 4) == 0);
    float *mu3 = calloc((size_t)bnn_model_nparams(m3), sizeof(float));
    float *rho3 = calloc((size_t)bnn_model_nparams(m3), sizeof(float));
    float *g3 = calloc((size_t)bnn_model_nparams(m3), sizeof(float));
    float *h3 = calloc((size_t)bnn_model_nparams(m3), sizeof(float));
    REQUIRE(mu3 && rho3 && g3 && h3);
    CHECK(isnan(bnn_mfvi_loss(m3, mu3, rho3, x, NULL, tg, 4, &het, 100, &mp, &r, g3, h3)));
    CHECK(has_error("hetero-gaussian likelihood does not fit"));
    CHECK(bnn_mfvi_workspace_bytes(m, INT64_MAX) == 0);
    CHECK(bnn_mfvi_workspace_bytes(m, 4) > 0);
    free(mu3), free(rho3), free(g3), free(h3), bnn_model_free(m3);
    free(mu), free(rho), free(gm), free(gr), bnn_model_free(m);
}

/* A dataset changed under a trainer: a shorter one aborted in the gather (the shuffles are of
 * the old size), a label changed through the writable view read as divergence. */
static void test_trainer_data_changed(void) {
    for (int what = 0; what < 2; what++) {
        bnn_dataset *ds;
        REQUIRE(bnn_toy_moons(&ds, 64, 0.1, 1) == 0);
        bnn_model *m;
        REQUIRE(bnn_model_new(&m, "mlp:2-8-2") == 0);
        struct bnn_train_params tp = bnn_train_default_params();
        tp.epochs = 2, tp.method = BNN_METHOD_SGD, tp.lr = 0.01f, tp.batch_size = 16;
        bnn_trainer *tr;
        REQUIRE(bnn_trainer_new(&tr, m, ds, &tp) == 0);
        if (what == 0) {
            const char *keys[2] = {"user.a", NULL}, *vals[2] = {"1", "2"};
            CHECK_EQ_INT(bnn_trainer_save(tr, "never.safetensors", false, keys, vals, 2),
                         BNN_EINVAL);
            CHECK(has_error("metadata entry 1 of 2 has a NULL key or value"));
            REQUIRE(bnn_dataset_truncate(ds, 10) == 0);
            CHECK_EQ_INT(bnn_trainer_run(tr, 2), BNN_ESHAPE);
            CHECK(has_error("the dataset has 10 rows, the trainer was made for 64"));
        } else {
            bnn_dataset_labels(ds)[3] = 7;
            CHECK_EQ_INT(bnn_trainer_run(tr, 2), BNN_EFORMAT);
            CHECK(has_error("label 7"));
        }
        bnn_trainer_free(tr), bnn_model_free(m), bnn_dataset_free(ds);
    }
}

/* Inputs whose count times the model's width no memory holds: refused, not an int64 overflow. */
static void test_predict_huge_n(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-3") == 0);
    bnn_dataset *ds; /* bins are bnn_evaluate's to name (the metrics' function was named) */
    REQUIRE(bnn_toy_moons(&ds, 20, 0.1, 1) == 0);
    bnn_model *m2;
    REQUIRE(bnn_model_new(&m2, "mlp:2-2") == 0);
    struct bnn_eval_result er;
    const struct bnn_predict_params pp0 = bnn_predict_default_params();
    CHECK_EQ_INT(bnn_evaluate(m2, NULL, ds, &pp0, 0, &er), BNN_EINVAL);
    CHECK(has_error("bnn_evaluate: 0 calibration bins"));
    bnn_model_free(m2), bnn_dataset_free(ds);
    const float x[2] = {0, 0};
    double probs[3];
    struct bnn_predict_params pp = bnn_predict_default_params();
    CHECK_EQ_INT(bnn_predict(m, NULL, x, INT64_MAX, BNN_TASK_CLASSIFICATION, &pp, probs, NULL, NULL,
                             NULL),
                 BNN_EINVAL);
    CHECK(has_error("more than memory can address"));
    bnn_model_free(m);
}

/* NaN in a VON step's input is named, not left to LAPACK ("dpotrs failed (info -7)"). */
static void test_von_step_nan(void) {
    double m[2] = {0, 0}, S[4] = {1, 0, 0, 1}, g[2] = {NAN, 0}, H[4] = {1, 0, 0, 1};
    const double m0[2] = {0, 0}, S0[4] = {1, 0, 0, 1};
    CHECK_EQ_INT(bnn_von_step(m, S, g, H, m0, S0, 2, 1.0), BNN_EINVAL);
    CHECK(has_error("g[0] is not finite") && m[0] == 0 && S[0] == 1);
}

/* bnn_posterior_save: a hand-made diagonal posterior comes back from the file as it went in
 * (the mean as the model's weights, the std as posterior.std, the caller's metadata), a point
 * mass likewise; what loading would refuse is not written. */
static void test_posterior_save(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-3-2") == 0);
    const int64_t n = bnn_model_nparams(m);
    bnn_posterior *q, *p;
    REQUIRE(bnn_posterior_new(&q, BNN_POSTERIOR_DIAG, n) == 0);
    for (int64_t i = 0; i < n; i++) {
        bnn_posterior_mean(q)[i] = 0.1f * (float)(i - 7);
        bnn_posterior_std(q)[i] = 0.01f * (float)(i + 1);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/api_posterior.safetensors", BNN_TEST_TMP);
    unlink(path);
    const char *k[1] = {"my.note"}, *v[1] = {"hand-made"};
    REQUIRE(bnn_posterior_save(q, m, BNN_TASK_CLASSIFICATION, path, k, v, 1) == 0);
    bnn_model *m2;
    bnn_st *st;
    bnn_task task;
    REQUIRE(bnn_model_load(&m2, path, &task, &st) == 0);
    CHECK(task == BNN_TASK_CLASSIFICATION && !strcmp(bnn_st_meta(st, "my.note"), "hand-made"));
    REQUIRE(bnn_posterior_load(&p, m2, st) == 0);
    CHECK(bnn_posterior_kind_of(p) == BNN_POSTERIOR_DIAG);
    CHECK(!memcmp(bnn_model_cparams(m2), bnn_posterior_cmean(q), (size_t)n * sizeof(float)));
    CHECK(!memcmp(bnn_posterior_cmean(p), bnn_posterior_cmean(q), (size_t)n * sizeof(float)));
    CHECK(!memcmp(bnn_posterior_cstd(p), bnn_posterior_cstd(q), (size_t)n * sizeof(float)));
    bnn_posterior_free(p);
    bnn_st_free(st);
    bnn_model_free(m2);
    /* a point mass */
    bnn_posterior *pt;
    REQUIRE(bnn_posterior_new(&pt, BNN_POSTERIOR_POINT, n) == 0);
    memcpy(bnn_posterior_mean(pt), bnn_posterior_cmean(q), (size_t)n * sizeof(float));
    REQUIRE(bnn_posterior_save(pt, m, BNN_TASK_REGRESSION, path, NULL, NULL, 0) == 0);
    REQUIRE(bnn_model_load(&m2, path, &task, &st) == 0);
    REQUIRE(bnn_posterior_load(&p, m2, st) == 0);
    CHECK(task == BNN_TASK_REGRESSION && bnn_posterior_kind_of(p) == BNN_POSTERIOR_POINT);
    CHECK(!memcmp(bnn_posterior_cmean(p), bnn_posterior_cmean(q), (size_t)n * sizeof(float)));
    bnn_posterior_free(p);
    bnn_st_free(st);
    bnn_model_free(m2);
    /* refused, and nothing written */
    unlink(path);
    bnn_posterior_std(q)[3] = 0.0f;
    CHECK_EQ_INT(bnn_posterior_save(q, m, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK(has_error("std[3] = 0 is not finite and positive"));
    bnn_posterior_std(q)[3] = 0.04f;
    bnn_posterior_mean(q)[5] = NAN;
    CHECK_EQ_INT(bnn_posterior_save(q, m, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK(has_error("mean[5] = nan is not finite"));
    bnn_model *small;
    REQUIRE(bnn_model_new(&small, "mlp:2-2") == 0);
    CHECK_EQ_INT(bnn_posterior_save(pt, small, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 0),
                 BNN_ESHAPE);
    CHECK_EQ_INT(bnn_posterior_save(pt, m, (bnn_task)9, path, NULL, NULL, 0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_posterior_save(pt, m, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 1),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_posterior_save(NULL, m, BNN_TASK_CLASSIFICATION, path, NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK(access(path, F_OK) != 0);
    bnn_model_free(small);
    bnn_posterior_free(pt);
    bnn_posterior_free(q);
    bnn_model_free(m);
}

int main(void) {
    test_posterior_save();
    test_mfvi_lik_width();
    test_trainer_data_changed();
    test_predict_huge_n();
    test_von_step_nan();
    test_from_laplace_mismatch();
    test_kron_indefinite();
    test_lowrank_not_orthonormal();
    test_optimize_indefinite();
    test_null_handles();
    test_laplace_predict_args();
    test_hold_same_path();
    test_commit_failure();
    test_write_emit();
    test_write_slots();
    test_trainer_schedule();
    test_train_params();
    test_curv_predict_params();
    test_optimizer_args();
    return CHECK_DONE();
}
