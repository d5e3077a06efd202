/* Benchmark: one training epoch of the Fashion-MNIST MLP 784-512-256-10 (batch 128, AdamW) and,
 * in the same run, OpenBLAS sgemm on exactly the matrix products one training step performs.
 * Reports the training step's achieved GFLOP/s (GEMM flops only, over the whole step time) as a
 * fraction of the sgemm rate: the share of the step spent doing useful matrix work.
 *
 * usage: bench_train [rounds (default 5)] [threads (default: all)] */
#include "core/internal.h"

#include <string.h>
#include <time.h>
#if defined(BNN_HAVE_BLAS)
#include <cblas.h>
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One GEMM of a step: C (M×N) = op(A)·op(B), as bnn_gemm is called by the Linear layer. */
typedef struct shape {
    int64_t M, N, K;
    bool ta, tb;
    const char *what;
} shape;

int main(int argc, char **argv) {
    bnn_restart_tuned(argv); /* the kernels and OpenMP spins bnn itself runs with (bnn.h) */
    int epochs = argc > 1 ? atoi(argv[1]) : 5;
    if (argc > 2) bnn_set_threads(atoi(argv[2]));
    if (epochs < 1) epochs = 1;
    const int64_t B = 128, L[4] = {784, 512, 256, 10};
    bnn_dataset *ds;
    struct bnn_data_params dp = bnn_data_default_params();
    if (bnn_data_load(&ds, "fmnist", &dp)) {
        fprintf(stderr, "bench_train: %s\n", bnn_last_error());
        return 1;
    }
    /* The GEMMs of one step: forward x·Wᵀ per layer; backward dyᵀ·x per layer and dy·W for
     * every layer but the first (its input gradient is not needed). */
    shape shapes[16];
    int ns = 0;
    for (int l = 0; l < 3; l++) shapes[ns++] = (shape){B, L[l + 1], L[l], false, true, "fwd"};
    for (int l = 2; l >= 0; l--) {
        shapes[ns++] = (shape){L[l + 1], L[l], B, true, false, "dW"};
        if (l > 0) shapes[ns++] = (shape){B, L[l], L[l + 1], false, false, "dx"};
    }
    double flops_step = 0;
    for (int i = 0; i < ns; i++) flops_step += 2.0 * shapes[i].M * shapes[i].N * shapes[i].K;

    /* Rounds of (OpenBLAS sgemm on the step's shapes, bnn_gemm on them, one training epoch):
     * the machine's speed drifts on a shared host, so each round's ratio compares measurements
     * taken back to back, and the median round is reported. */
    float *A = bnn__alloc(784 * 512 * 4), *Bm = bnn__alloc(784 * 512 * 4), *C = bnn__alloc(784 * 512 * 4);
    bnn_rng rng = bnn_rng_make(1, 1);
    bnn_rng_normal(&rng, A, 784 * 512);
    bnn_rng_normal(&rng, Bm, 784 * 512);
    bnn_model *m;
    if (bnn_model_new(&m, "mlp:784-512-256-10")) return 1;
    struct bnn_train_params tp = bnn_train_default_params();
    tp.epochs = 1, tp.batch_size = B;
    bnn_train(m, ds, &tp); /* warm-up epoch */
    const int64_t steps = (bnn_dataset_n(ds) + B - 1) / B;
    /* The last batch is smaller (60000 = 468·128 + 96): count its flops exactly. */
    const double epoch_flops = flops_step * (double)(bnn_dataset_n(ds)) / (double)B;
    double ratio[16], t_gemm[16], t_bnn[16], t_epoch[16];
    if (epochs > 16) epochs = 16;
    for (int e = 0; e < epochs; e++) {
        const int reps = 100;
#if defined(BNN_HAVE_BLAS)
        openblas_set_num_threads(bnn_get_threads());
        double t0 = now();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < ns; i++) {
                const shape *q = &shapes[i];
                cblas_sgemm(CblasRowMajor, q->ta ? CblasTrans : CblasNoTrans,
                            q->tb ? CblasTrans : CblasNoTrans, (int)q->M, (int)q->N, (int)q->K, 1.0f,
                            A, q->ta ? (int)q->M : (int)q->K, Bm, q->tb ? (int)q->K : (int)q->N,
                            0.0f, C, (int)q->N);
            }
        t_gemm[e] = (now() - t0) / reps;
        openblas_set_num_threads(1);
#endif
        double t1 = now();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < ns; i++)
                bnn_gemm(C, A, Bm, shapes[i].M, shapes[i].N, shapes[i].K, shapes[i].ta,
                         shapes[i].tb, 1.0f, 0.0f);
        t_bnn[e] = (now() - t1) / reps;
        if (!bnn_have_blas()) t_gemm[e] = t_bnn[e];
        tp.seed = (uint64_t)e + 1;
        double t2 = now();
        if (bnn_train(m, ds, &tp)) {
            fprintf(stderr, "bench_train: %s\n", bnn_last_error());
            return 1;
        }
        t_epoch[e] = now() - t2;
        ratio[e] = (epoch_flops / t_epoch[e]) / (flops_step / t_gemm[e]);
        fprintf(stderr, "  round %d: sgemm %.3f ms/step, bnn_gemm %.3f ms/step, epoch %.3f s, "
                "fraction %.3f\n", e + 1, t_gemm[e] * 1e3, t_bnn[e] * 1e3, t_epoch[e], ratio[e]);
    }
    int ord[16];
    for (int i = 0; i < epochs; i++) ord[i] = i;
    for (int i = 0; i < epochs; i++) /* sort rounds by ratio (few: insertion sort) */
        for (int j = i; j > 0 && ratio[ord[j]] < ratio[ord[j - 1]]; j--) {
            int t = ord[j];
            ord[j] = ord[j - 1], ord[j - 1] = t;
        }
    const int med = ord[epochs / 2];
    const double best_gemm = t_gemm[med], best_bnn_gemm = t_bnn[med], best_epoch = t_epoch[med];
    double gemm_rate = flops_step / best_gemm / 1e9;
    double step_time = best_epoch / (double)steps;
    double train_rate = epoch_flops / best_epoch / 1e9;
    printf("bnn bench_train: Fashion-MNIST MLP 784-512-256-10, batch %lld, AdamW, %d thread%s, %s\n",
           (long long)B, bnn_get_threads(), bnn_get_threads() == 1 ? "" : "s",
           bnn_have_blas() ? "OpenBLAS" : "plain C GEMM");
    printf("  GEMM work per step           %.1f MFLOP (%d products)\n", flops_step / 1e6, ns);
    printf("  OpenBLAS sgemm, step shapes  %.3f ms/step  %.1f GFLOP/s\n", best_gemm * 1e3, gemm_rate);
    printf("  bnn_gemm, step shapes        %.3f ms/step  %.1f GFLOP/s\n", best_bnn_gemm * 1e3,
           flops_step / best_bnn_gemm / 1e9);
    printf("  training epoch               %.3f s  (%lld steps, %.3f ms/step)\n", best_epoch,
           (long long)steps, step_time * 1e3);
    printf("  training achieved            %.1f GFLOP/s\n", train_rate);
    printf("  fraction of OpenBLAS rate    %.3f   (median of %d rounds; lowest %.3f, highest %.3f; "
           "target >= 0.70)\n", train_rate / gemm_rate, epochs, ratio[ord[0]],
           ratio[ord[epochs - 1]]);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    bnn__free(A), bnn__free(Bm), bnn__free(C);
    return 0;
}
