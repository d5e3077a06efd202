/* The bnn command: git-style subcommands over the library. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "bnn %s — Bayesian deep learning in C\n\n"
            "usage: bnn COMMAND [options]\n\n"
            "commands:\n"
            "  train   train a network (adamw, sgd; ivon, mfvi: a posterior) and save it\n"
            "  laplace a Laplace approximation around a trained network (post hoc)\n"
            "  von     a full-covariance Gaussian over the last layer by the Bayesian learning rule\n"
            "  eval    metrics, OOD detection and shift sweeps of a saved model or posterior\n"
            "  predict per-example probabilities and uncertainties as CSV\n"
            "  plot    pictures of 2-D classifiers and 1-D regressors with their uncertainty\n"
            "  compare several models side by side (accuracy, NLL, ECE, OOD entropy)\n"
            "  calibrate  temperature scaling on held-out data\n"
            "  info    what a model file holds\n"
            "  version print the version\n\n"
            "'bnn COMMAND --help' describes each command's options.\n"
            "example:\n"
            "  bnn train --data fmnist --model mlp:784-512-256-10 --epochs 10 -o map.safetensors\n"
            "  bnn eval -m map.safetensors\n",
            BNN_VERSION);
}

static int dispatch(int argc, char **argv);

/* Ctrl-C, a kill or a closed terminal during a write would leave OUT.tmp.PID behind: remove it,
 * then end as the signal would have. While a report and its plot are being renamed into place
 * the signal waits until both are (bnn_output_abandon_sig), so that they stand together. */
static void on_signal(int sig) {
    if (bnn_output_abandon_sig(sig)) return;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A report that could not be written (a full disk, /dev/full) is a failure, not exit 0: stdout
 * is flushed and checked before exiting. */
int main(int argc, char **argv) {
    /* On a CPU that OpenBLAS does not recognise (a virtual machine's masked model) it takes its
     * generic SSE3 kernels, at half the speed or less of those the CPU can run; and OpenMP's
     * waiting threads spin long enough to make two bnn runs on the same cores fight for them:
     * start again with the right kernels and short spins (bnn.h; OPENBLAS_CORETYPE,
     * GOMP_SPINCOUNT or OMP_WAIT_POLICY set by the user are left alone). */
    bnn_restart_tuned(argv);
    /* A closed pipe is a failed write, not a kill: a reader that stops early (`2>&1 | head`, a
     * log viewer closed) would otherwise end a training run with nothing saved. Progress lost on
     * stderr is then only lost; a report lost on stdout fails the command below (exit 1). */
    signal(SIGPIPE, SIG_IGN);
    /* A file-size limit (ulimit -f) reached is a failed write (EFBIG), whose error path removes
     * the temporary file, instead of a kill that left it. */
    signal(SIGXFSZ, SIG_IGN);
    /* The usual signals that end a process (timeout -s USR1 and an alarm among them), each only
     * while it has its default action: one the parent set to be ignored (nohup's SIGHUP, a batch
     * system's warning signal) stays ignored, and a handler installed before main (a
     * profiler's SIGPROF) stays in place. */
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM,
                        SIGPROF};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa = {.sa_handler = on_signal};
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL) continue;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
    int rc = dispatch(argc, argv);
    /* A command that failed has said why; a lost report is then not news. */
    if ((fflush(stdout) != 0 || ferror(stdout)) && !rc) {
        fprintf(stderr, "bnn%s%s: cannot write the standard output: %s\n", argc > 1 ? " " : "",
                argc > 1 ? argv[1] : "", strerror(errno));
        rc = 1;
    }
    return rc;
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(c, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(c, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(c, "predict")) return cmd_predict(argc - 1, argv + 1);
    if (!strcmp(c, "plot")) return cmd_plot(argc - 1, argv + 1);
    if (!strcmp(c, "calibrate")) return cmd_calibrate(argc - 1, argv + 1);
    if (!strcmp(c, "compare")) return cmd_compare(argc - 1, argv + 1);
    if (!strcmp(c, "laplace")) return cmd_laplace(argc - 1, argv + 1);
    if (!strcmp(c, "von")) return cmd_von(argc - 1, argv + 1);
    if (!strcmp(c, "version") || !strcmp(c, "--version")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            printf("usage: bnn version\n\nPrints bnn's version and the matrix-multiply backend "
                   "it was built with.\n");
            return 0;
        }
        if (argc > 2) {
            fprintf(stderr, "bnn version: takes no arguments (got '%s')\n", argv[2]);
            return 2;
        }
        const char *core = bnn_blas_core(), *better = bnn_blas_better_core();
        const char *was = bnn_blas_fallback_core();
        if (!bnn_have_blas()) printf("bnn %s (plain C GEMM)\n", BNN_VERSION);
        else if (core) printf("bnn %s (OpenBLAS, %s kernels)\n", BNN_VERSION, core);
        else printf("bnn %s (OpenBLAS)\n", BNN_VERSION);
        if (was)
            printf("note: bnn set OPENBLAS_CORETYPE=%s, since OpenBLAS takes its generic %s "
                   "kernels for this CPU (OPENBLAS_CORETYPE=%s keeps them)\n", core, was, was);
        else if (better)
            printf("note: OpenBLAS chose its generic %s kernels for this CPU, which has the "
                   "instructions of its %s ones (twice as fast or more): run with "
                   "OPENBLAS_CORETYPE=%s\n", core, better, better);
        return 0;
    }
    if (!strcmp(c, "help") && argc >= 3 && strcmp(argv[2], "help") != 0) {
        /* 'bnn help CMD' is 'bnn CMD --help' */
        char *args[] = {argv[0], argv[2], "--help", NULL};
        return dispatch(3, args);
    }
    if (!strcmp(c, "help") || !strcmp(c, "--help") || !strcmp(c, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "bnn: unknown command '%s' (commands: train, laplace, von, eval, predict, plot, compare, calibrate, info, version; see 'bnn "
            "--help')\n", c);
    return 2;
}
