/* Benchmark: IVON against AdamW on Fashion-MNIST, MLP 784-512-256-10, 10 epochs, batch 128,
 * both trained by bnn in this one run (issue 3's acceptance settings):
 *   AdamW: lr 1e-3, weight decay 1e-4, constant schedule; evaluated at its weights (MAP).
 *   IVON:  lr 1.0, λ = 60000, h0 = 0.1, β2 = 0.99999, δ = 1e-4, one warm-up epoch then cosine
 *          decay to 0, 1 training sample; evaluated by model averaging over 64 samples.
 * Prints test accuracy, NLL and ECE (15 bins) for both, and the epoch-time ratio IVON / AdamW
 * (median epoch pair; target ≤ 1.10), the same ratio from short alternating epochs that a busy
 * machine cannot skew (steady_ratio), and where IVON's extra time goes (breakdown). IVON is also
 * evaluated with the first layer by local reparameterisation (pp.local_reparam: the same
 * predictive, other draws), and both evaluations are timed.
 *
 * Both methods are trained once per seed (seed, seed + 1, ...; three by default): a row per seed
 * and method, the verdicts per seed and on the means, and the epoch pairs of all seeds pooled.
 * One seed's ECE difference can lie within the spread between seeds, and between machines (whose
 * BLAS kernels sum in different orders). It can also lie within the Monte-Carlo noise of the
 * 64-sample predictive itself: each IVON posterior is evaluated again with REDRAWS more draws of
 * its 64 weight samples (prediction seeds 1 to REDRAWS; the row is seed 0), and a line per seed
 * gives the spread of its NLL and ECE over those draws. The verdicts stay on the rows.
 *
 * usage: bench_ivon [epochs (default 10)] [threads (default: all)] [seed (default 0)]
 *                   [seeds (default 3, at most 8)] */
#include "core/internal.h"

#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define REDRAWS 4

typedef struct run {
    const char *name;
    bnn_model *m;
    bnn_trainer *t;
    double times[64], epoch_median, epoch_min, total;
    struct bnn_eval_result r, r_lrt; /* r_lrt: with local reparameterisation (samples > 0) */
    double nll[REDRAWS + 1], ece[REDRAWS + 1]; /* samples > 0: r's and those of other draws */
    double t_eval, t_eval_lrt;       /* the two evaluations' times */
} run;

static int start(run *r, const char *name, const struct bnn_train_params *p, const bnn_dataset *tr) {
    r->name = name;
    r->total = 0;
    int rc = bnn_model_new(&r->m, "mlp:784-512-256-10");
    return rc ? rc : bnn_trainer_new(&r->t, r->m, tr, p);
}

static int epoch(run *r, int64_t e) {
    double t0 = now();
    int rc = bnn_trainer_run(r->t, e + 1);
    r->times[e] = now() - t0;
    r->total += r->times[e];
    fprintf(stderr, "  %s epoch %lld: %.3f s\n", r->name, (long long)e + 1, r->times[e]);
    return rc;
}

static int finish(run *r, int64_t epochs, const bnn_dataset *te, int64_t samples) {
    double sorted[64];
    memcpy(sorted, r->times, (size_t)epochs * sizeof(double));
    qsort(sorted, (size_t)epochs, sizeof(double), cmp_double);
    r->epoch_median = sorted[epochs / 2], r->epoch_min = sorted[0];
    bnn_posterior *q;
    int rc = bnn_trainer_posterior(r->t, &q);
    if (rc) return rc;
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = samples;
    double t0 = now();
    rc = bnn_evaluate(r->m, q, te, &pp, 15, &r->r);
    r->t_eval = now() - t0;
    r->nll[0] = r->r.cls.nll, r->ece[0] = r->r.cls.ece;
    for (int d = 1; !rc && samples > 0 && d <= REDRAWS; d++) {
        struct bnn_eval_result e;
        pp.seed = (uint64_t)d;
        rc = bnn_evaluate(r->m, q, te, &pp, 15, &e);
        r->nll[d] = e.cls.nll, r->ece[d] = e.cls.ece;
    }
    pp.seed = 0;
    if (!rc && samples > 0) {
        pp.local_reparam = true;
        t0 = now();
        rc = bnn_evaluate(r->m, q, te, &pp, 15, &r->r_lrt);
        r->t_eval_lrt = now() - t0;
    }
    bnn_posterior_free(q);
    bnn_trainer_free(r->t);
    bnn_model_free(r->m);
    return rc;
}

/* Where IVON's extra time goes, per step, each part timed alone on the network's 535,818 weights
 * (best of 50, the parts alternating): the Gaussian noise alone, the fused IVON pass (update +
 * noise + next sample), and AdamW's update. */
static void breakdown(double adamw_step) {
    const int64_t n = 535818;
    float *a = bnn__alloc(n * 4), *b = bnn__alloc(n * 4), *c = bnn__alloc(n * 4);
    float *d = bnn__alloc(n * 4), *e = bnn__alloc(n * 4), *f = bnn__alloc(n * 4);
    if (!a || !b || !c || !d || !e || !f) return;
    bnn_rng r = bnn_rng_make(1, 2);
    bnn_rng_normal(&r, a, n);
    for (int64_t i = 0; i < n; i++) b[i] = 0.1f, c[i] = 0.0f, d[i] = a[i], f[i] = 1e-3f * a[i];
    struct bnn_ivon_params ip = bnn_ivon_default_params();
    ip.ess = 60000, ip.hess_init = 0.1f, ip.lr = 1e-3f;
    struct bnn_adamw_params ap = {1e-3, 0.9, 0.999, 1e-8, 1e-4};
    double best[3] = {1e9, 1e9, 1e9};
    for (int rep = 0; rep < 50; rep++) {
        double t0 = now();
        bnn_rng_normal(&r, e, n);
        double t1 = now();
        for (int64_t i = 0; i < n; i++) e[i] *= 1e-3f; /* a gradient */
        double t2 = now();
        bnn__ivon_step_draw(a, b, c, d, f, e, n, rep + 1, &ip, &r);
        double t3 = now();
        bnn_rng_normal(&r, e, n);
        double t4 = now();
        bnn_adamw_step(d, b, c, e, n, rep + 1, &ap);
        double t5 = now();
        for (int64_t i = 0; i < n; i++) b[i] = 0.1f, c[i] = 0.0f;
        double dt[3] = {t1 - t0, t3 - t2, t5 - t4};
        for (int k = 0; k < 3; k++) best[k] = dt[k] < best[k] ? dt[k] : best[k];
    }
    printf("per step, alone (best of 50): Gaussian noise for 535,818 weights %.3f ms = %.1f%% of an "
           "AdamW step (%.3f ms);\n  fused IVON pass (update, noise, next sample) %.3f ms; AdamW "
           "update %.3f ms; difference %.3f ms = %.1f%% of the step\n",
           1e3 * best[0], 100 * best[0] / adamw_step, 1e3 * adamw_step, 1e3 * best[1],
           1e3 * best[2], 1e3 * (best[1] - best[2]), 100 * (best[1] - best[2]) / adamw_step);
    bnn__free(a), bnn__free(b), bnn__free(c), bnn__free(d), bnn__free(e), bnn__free(f);
}

/* The same ratio measured so that a busy machine cannot decide it: both trainers (the benchmark's
 * settings, fresh weights) run alternating short epochs of STEADY_STEPS steps on the first
 * STEADY_STEPS · 128 training examples, STEADY_ROUNDS rounds; each method's fastest epoch is its
 * time undisturbed. The per-step work (shuffle, forward, backward, update, noise) is that of a
 * full epoch; each run of the IVON trainer draws its first sample afresh (the fused step's draw
 * ahead is handed back at the end of a run), one extra noise pass per 16 steps (about +0.5%)
 * that a full epoch spreads over 469. */
#define STEADY_STEPS 16
#define STEADY_ROUNDS 100
static int steady_ratio(const struct bnn_train_params *a, const struct bnn_train_params *v,
                        const bnn_dataset *tr, double *ratio, double *adamw_step) {
    bnn_dataset *sub;
    int rc = bnn_dataset_slice(&sub, tr, 0, STEADY_STEPS * 128);
    if (rc) return rc;
    struct bnn_train_params pa = *a, pv = *v;
    pa.epochs = pv.epochs = STEADY_ROUNDS;
    run ra, rv;
    if ((rc = start(&ra, "adamw", &pa, sub)) || (rc = start(&rv, "ivon", &pv, sub))) {
        bnn_dataset_free(sub);
        return rc;
    }
    double best[2] = {1e30, 1e30};
    run *rs[2] = {&ra, &rv};
    for (int64_t e = 0; e < STEADY_ROUNDS && !rc; e++)
        for (int i = 0; i < 2 && !rc; i++) {
            const double t0 = now();
            rc = bnn_trainer_run(rs[i]->t, e + 1);
            const double dt = now() - t0;
            if (dt < best[i]) best[i] = dt;
        }
    *ratio = best[1] / best[0], *adamw_step = best[0] / STEADY_STEPS;
    for (int i = 0; i < 2; i++) bnn_trainer_free(rs[i]->t), bnn_model_free(rs[i]->m);
    bnn_dataset_free(sub);
    return rc;
}

#define MAX_SEEDS 8

static void row(const char *name, const char *how, const struct bnn_eval_result *r, double median,
                double total, const char *seed) {
    printf("| %s | %s | %s | %.4f | %.4f | %.4f | %.4f | %.3f s | %.1f s |\n", name, how, seed,
           r->cls.accuracy, r->cls.nll, r->cls.ece, r->cls.brier, median, total);
}

static void verdict(const char *what, const struct bnn_eval_result *a,
                    const struct bnn_eval_result *v) {
    const double diff = 100.0 * (v->cls.accuracy - a->cls.accuracy);
    printf("%s: accuracy IVON - AdamW %+.2f points (target: at most 0.5 below: %s); NLL lower with "
           "IVON: %s; ECE lower with IVON: %s\n",
           what, diff, diff >= -0.5 ? "yes" : "NO", v->cls.nll < a->cls.nll ? "yes" : "NO",
           v->cls.ece < a->cls.ece ? "yes" : "NO");
}

int main(int argc, char **argv) {
    bnn_restart_tuned(argv); /* the kernels and OpenMP spins bnn itself runs with (bnn.h) */
    int64_t epochs = argc > 1 ? atoll(argv[1]) : 10;
    if (argc > 2) bnn_set_threads(atoi(argv[2]));
    uint64_t seed0 = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    int nseeds = argc > 4 ? atoi(argv[4]) : 3;
    if (epochs < 2 || epochs > 64) epochs = 10;
    if (nseeds < 1 || nseeds > MAX_SEEDS) nseeds = 3;
    bnn_dataset *tr, *te;
    struct bnn_data_params dp = bnn_data_default_params();
    if (bnn_data_load(&tr, "fmnist", &dp)) goto fail;
    dp.split = "test";
    if (bnn_data_load(&te, "fmnist", &dp)) goto fail;

    struct bnn_train_params a = bnn_train_default_params();
    a.method = BNN_METHOD_ADAMW, a.epochs = epochs, a.batch_size = 128, a.lr = 1e-3f;
    a.weight_decay = 1e-4f, a.seed = seed0;
    struct bnn_train_params v = a;
    v.method = BNN_METHOD_IVON, v.lr = 1.0f, v.ivon.ess = 60000, v.ivon.hess_init = 0.1f;
    v.ivon.beta2 = 0.99999, v.weight_decay = 1e-4f, v.warmup_epochs = 1;
    v.lr_schedule = BNN_LR_COSINE, v.ivon.mc_samples = 1;
    fprintf(stderr, "bench_ivon: %lld epochs, %d threads\n", (long long)epochs, bnn_get_threads());
    /* Per seed and row (AdamW; IVON; IVON predicted by local reparameterisation, with IVON's
     * training times): the result, the median epoch, the total; and every epoch pair. */
    struct bnn_eval_result res[MAX_SEEDS][3];
    double redraw_nll[MAX_SEEDS][REDRAWS + 1], redraw_ece[MAX_SEEDS][REDRAWS + 1];
    double median[MAX_SEEDS][3], total[MAX_SEEDS][3], mins[2] = {1e30, 1e30};
    double t_eval[2] = {1e30, 1e30}; /* IVON's evaluation, fastest over the seeds: plain, lrt */
    double ratios[MAX_SEEDS * 64];
    int64_t npairs = 0;
    for (int k = 0; k < nseeds; k++) {
        run ra, rv;
        a.seed = v.seed = seed0 + (uint64_t)k;
        if (start(&ra, "adamw", &a, tr) || start(&rv, "ivon", &v, tr)) goto fail;
        /* The epochs alternate (AdamW e, IVON e) so both methods see the same machine: on a
         * shared machine the speed drifts over a run, and training one after the other would
         * charge that drift to one method. The ratio is taken per epoch pair. */
        for (int64_t e = 0; e < epochs; e++) {
            if (epoch(&ra, e) || epoch(&rv, e)) goto fail;
            ratios[npairs++] = rv.times[e] / ra.times[e];
        }
        if (finish(&ra, epochs, te, 0) || finish(&rv, epochs, te, 64)) goto fail;
        run *rs[2] = {&ra, &rv};
        for (int i = 0; i < 2; i++) {
            res[k][i] = rs[i]->r, median[k][i] = rs[i]->epoch_median, total[k][i] = rs[i]->total;
            if (rs[i]->epoch_min < mins[i]) mins[i] = rs[i]->epoch_min;
        }
        res[k][2] = rv.r_lrt, median[k][2] = median[k][1], total[k][2] = total[k][1];
        memcpy(redraw_nll[k], rv.nll, sizeof rv.nll), memcpy(redraw_ece[k], rv.ece, sizeof rv.ece);
        if (rv.t_eval < t_eval[0]) t_eval[0] = rv.t_eval;
        if (rv.t_eval_lrt < t_eval[1]) t_eval[1] = rv.t_eval_lrt;
    }
    qsort(ratios, (size_t)npairs, sizeof(double), cmp_double);
    if (nseeds == 1)
        printf("bnn bench_ivon: Fashion-MNIST MLP 784-512-256-10, %lld epochs, batch 128, %d "
               "threads, seed %llu\n",
               (long long)epochs, bnn_get_threads(), (unsigned long long)seed0);
    else
        printf("bnn bench_ivon: Fashion-MNIST MLP 784-512-256-10, %lld epochs, batch 128, %d "
               "threads, seeds %llu to %llu\n",
               (long long)epochs, bnn_get_threads(), (unsigned long long)seed0,
               (unsigned long long)(seed0 + (uint64_t)nseeds - 1));
    printf("| method | predict | seed | test accuracy | test NLL | ECE (15 bins) | Brier | median "
           "epoch | total train |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    const char *name[3] = {"adamw", "ivon", "ivon"};
    const char *how[3] = {"at the weights (MAP)", "64-sample average",
                          "64-sample average, first layer by local reparameterisation"};
    struct bnn_eval_result mean[3];
    memset(mean, 0, sizeof mean);
    for (int i = 0; i < 3; i++) {
        double med = 0.0, tot = 0.0;
        for (int k = 0; k < nseeds; k++) {
            char sd[32];
            snprintf(sd, sizeof sd, "%llu", (unsigned long long)(seed0 + (uint64_t)k));
            row(name[i], how[i], &res[k][i], median[k][i], total[k][i], sd);
            mean[i].cls.accuracy += res[k][i].cls.accuracy / nseeds;
            mean[i].cls.nll += res[k][i].cls.nll / nseeds;
            mean[i].cls.ece += res[k][i].cls.ece / nseeds;
            mean[i].cls.brier += res[k][i].cls.brier / nseeds;
            med += median[k][i] / nseeds, tot += total[k][i] / nseeds;
        }
        if (nseeds > 1) row(name[i], how[i], &mean[i], med, tot, "mean");
    }
    for (int k = 0; k < nseeds; k++) {
        char what[32];
        snprintf(what, sizeof what, "seed %llu", (unsigned long long)(seed0 + (uint64_t)k));
        verdict(what, &res[k][0], &res[k][1]);
    }
    if (nseeds > 1) verdict("mean over the seeds", &mean[0], &mean[1]);
    for (int k = 0; k < nseeds; k++) {
        double lo[2] = {1e30, 1e30}, hi[2] = {-1e30, -1e30}, avg[2] = {0, 0};
        int below = 0;
        for (int d = 0; d <= REDRAWS; d++) {
            const double x[2] = {redraw_nll[k][d], redraw_ece[k][d]};
            for (int j = 0; j < 2; j++) {
                lo[j] = fmin(lo[j], x[j]), hi[j] = fmax(hi[j], x[j]);
                avg[j] += x[j] / (REDRAWS + 1);
            }
            below += redraw_ece[k][d] < res[k][0].cls.ece;
        }
        printf("seed %llu, IVON over %d draws of its 64 test samples (the row's and %d more): NLL "
               "%.4f to %.4f (mean %.4f), ECE %.4f to %.4f (mean %.4f; below AdamW's %.4f in %d of "
               "%d)\n",
               (unsigned long long)(seed0 + (uint64_t)k), REDRAWS + 1, REDRAWS, lo[0], hi[0], avg[0],
               lo[1], hi[1], avg[1], res[k][0].cls.ece, below, REDRAWS + 1);
    }
    printf("epoch time IVON / AdamW: %.3f (median of the %lld epoch pairs), %.3f (best epochs)   "
           "(target <= 1.10)\n",
           ratios[npairs / 2], (long long)npairs, mins[1] / mins[0]);
    double steady, adamw_step;
    if (steady_ratio(&a, &v, tr, &steady, &adamw_step)) goto fail;
    printf("epoch time IVON / AdamW undisturbed: %.3f (fastest of %d alternating %d-step epochs "
           "each; AdamW step %.3f ms)\n", steady, STEADY_ROUNDS, STEADY_STEPS, 1e3 * adamw_step);
    breakdown(adamw_step);
    printf("IVON's 64-sample evaluation of the %lld test images (fastest over the seeds): weight "
           "samples %.2f s, first layer by local reparameterisation %.2f s (%.2fx faster)\n",
           (long long)bnn_dataset_n(te), t_eval[0], t_eval[1], t_eval[0] / t_eval[1]);
    bnn_dataset_free(tr), bnn_dataset_free(te);
    return 0;
fail:
    fprintf(stderr, "bench_ivon: %s\n", bnn_last_error());
    return 1;
}
