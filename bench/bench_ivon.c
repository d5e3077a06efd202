/* Benchmark: IVON against AdamW on Fashion-MNIST, MLP 784-512-256-10, 10 epochs, batch 128,
 * both trained by bnn in this one run (issue 3's acceptance settings):
 *   AdamW: lr 1e-3, weight decay 1e-4, constant schedule; evaluated at its weights (MAP).
 *   IVON:  lr 1.0, λ = 60000, h0 = 0.1, β2 = 0.99999, δ = 1e-4, one warm-up epoch then cosine
 *          decay to 0, 1 training sample; evaluated by model averaging over 64 samples.
 * Prints test accuracy, NLL and ECE (15 bins) for both, and the epoch-time ratio IVON / AdamW
 * (median epoch; target ≤ 1.10).
 *
 * usage: bench_ivon [epochs (default 10)] [threads (default: all)] [seed (default 0)] */
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

typedef struct run {
    const char *name;
    double epoch_median, epoch_min, total;
    struct bnn_eval_result r;
} run;

static int train_eval(run *out, const char *name, const struct bnn_train_params *p,
                      const bnn_dataset *tr, const bnn_dataset *te, int64_t samples) {
    bnn_model *m;
    bnn_trainer *t;
    bnn_posterior *q;
    int rc = bnn_model_new(&m, "mlp:784-512-256-10");
    if (rc) return rc;
    if ((rc = bnn_trainer_new(&t, m, tr, p))) return rc;
    double times[64], t0 = now();
    for (int64_t e = 0; e < p->epochs; e++) {
        double t1 = now();
        if ((rc = bnn_trainer_run(t, e + 1))) return rc;
        times[e] = now() - t1;
        fprintf(stderr, "  %s epoch %lld: %.3f s\n", name, (long long)e + 1, times[e]);
    }
    out->total = now() - t0;
    qsort(times, (size_t)p->epochs, sizeof(double), cmp_double);
    out->epoch_median = times[p->epochs / 2], out->epoch_min = times[0];
    out->name = name;
    if ((rc = bnn_trainer_posterior(t, &q))) return rc;
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = samples;
    rc = bnn_evaluate(m, q, te, &pp, 15, &out->r);
    bnn_posterior_free(q);
    bnn_trainer_free(t);
    bnn_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    int64_t epochs = argc > 1 ? atoll(argv[1]) : 10;
    if (argc > 2) bnn_set_threads(atoi(argv[2]));
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    if (epochs < 2 || epochs > 64) epochs = 10;
    bnn_dataset *tr, *te;
    struct bnn_data_params dp = bnn_data_default_params();
    if (bnn_data_load(&tr, "fmnist", &dp)) goto fail;
    dp.split = "test";
    if (bnn_data_load(&te, "fmnist", &dp)) goto fail;

    struct bnn_train_params a = bnn_train_default_params();
    a.method = BNN_METHOD_ADAMW, a.epochs = epochs, a.batch_size = 128, a.lr = 1e-3f;
    a.weight_decay = 1e-4f, a.seed = seed;
    struct bnn_train_params v = a;
    v.method = BNN_METHOD_IVON, v.lr = 1.0f, v.ivon.ess = 60000, v.ivon.hess_init = 0.1f;
    v.ivon.beta2 = 0.99999, v.weight_decay = 1e-4f, v.warmup_epochs = 1;
    v.lr_schedule = BNN_LR_COSINE, v.ivon.mc_samples = 1;
    run ra, rv;
    fprintf(stderr, "bench_ivon: %lld epochs, %d threads\n", (long long)epochs, bnn_get_threads());
    if (train_eval(&ra, "adamw", &a, tr, te, 0)) goto fail;
    if (train_eval(&rv, "ivon", &v, tr, te, 64)) goto fail;

    printf("bnn bench_ivon: Fashion-MNIST MLP 784-512-256-10, %lld epochs, batch 128, %d threads, seed %llu\n",
           (long long)epochs, bnn_get_threads(), (unsigned long long)seed);
    printf("| method | predict | test accuracy | test NLL | ECE (15 bins) | Brier | median epoch | total train |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    run *rs[2] = {&ra, &rv};
    const char *how[2] = {"at the weights (MAP)", "64-sample average"};
    for (int i = 0; i < 2; i++)
        printf("| %s | %s | %.4f | %.4f | %.4f | %.4f | %.3f s | %.1f s |\n", rs[i]->name, how[i],
               rs[i]->r.cls.accuracy, rs[i]->r.cls.nll, rs[i]->r.cls.ece, rs[i]->r.cls.brier,
               rs[i]->epoch_median, rs[i]->total);
    double ratio = rv.epoch_median / ra.epoch_median;
    printf("accuracy difference IVON - AdamW: %+.2f points (target: within 0.5)\n",
           100.0 * (rv.r.cls.accuracy - ra.r.cls.accuracy));
    printf("NLL lower with IVON: %s; ECE lower with IVON: %s\n",
           rv.r.cls.nll < ra.r.cls.nll ? "yes" : "NO", rv.r.cls.ece < ra.r.cls.ece ? "yes" : "NO");
    printf("epoch time IVON / AdamW: %.3f (median), %.3f (best)   (target <= 1.10)\n", ratio,
           rv.epoch_min / ra.epoch_min);
    bnn_dataset_free(tr), bnn_dataset_free(te);
    return 0;
fail:
    fprintf(stderr, "bench_ivon: %s\n", bnn_last_error());
    return 1;
}
