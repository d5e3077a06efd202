/* bnn train: fit a network by MAP (SGD or AdamW) and save it. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct progress_ctx {
    bool tty, quiet;
    int64_t epochs;
    double start, last_draw, epoch_start;
} progress_ctx;

/* The shortest decimal text that reads back as the same double, for the file's metadata. */
static void fmt_double(char *buf, size_t len, double v) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A redrawn progress line on a terminal; one summary line per epoch otherwise. */
static int progress(void *vctx, int64_t epoch, int64_t step, int64_t steps, double loss,
                    bool done) {
    progress_ctx *c = vctx;
    if (c->quiet) return 0;
    double t = now_seconds();
    if (step == 1 && !done) c->epoch_start = t;
    if (done) {
        fprintf(stderr, "%sepoch %lld/%lld  train loss %.4f  %.1fs\n", c->tty ? "\r\033[K" : "",
                (long long)epoch + 1, (long long)c->epochs, loss, t - c->epoch_start);
    } else if (c->tty && t - c->last_draw > 0.1) {
        c->last_draw = t;
        fprintf(stderr, "\r\033[Kepoch %lld/%lld  step %lld/%lld  loss %.4f", (long long)epoch + 1,
                (long long)c->epochs, (long long)step, (long long)steps, loss);
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    cli_data_flags df = {.target_col = -1};
    const char *model = NULL, *method = "adamw", *output = NULL, *schedule = "constant";
    int64_t epochs = 10, batch = 128, threads = 0, warmup = 0;
    double lr = 0, wd = 1e-4, momentum = 0.9, sigma = 1.0;
    bool quiet = false;
    cli_opt opts[] = {
        {"data", 'd', OPT_STR, &df.data, "SPEC", "training data: fmnist, moons, sine-gap, csv:FILE (required)", 0},
        {"model", 0, OPT_STR, &model, "SPEC", "architecture, e.g. mlp:784-512-256-10 or mlp:2-50-50-2:tanh (default: one that fits the data)", 0},
        {"method", 0, OPT_STR, &method, "NAME", "optimizer: adamw (default) or sgd", 0},
        {"epochs", 'e', OPT_INT, &epochs, "N", "passes over the data (default 10)", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N", "mini-batch size (default 128)", 0},
        {"lr", 0, OPT_FLOAT, &lr, "X", "learning rate (default 1e-3 for adamw, 0.05 for sgd)", 0},
        {"lr-schedule", 0, OPT_STR, &schedule, "NAME", "constant (default) or cosine (decay to 0 at the end)", 0},
        {"warmup-epochs", 0, OPT_INT, &warmup, "N", "linear learning-rate warm-up over the first N epochs (default 0)", 0},
        {"weight-decay", 0, OPT_FLOAT, &wd, "X", "weight decay (default 1e-4)", 0},
        {"momentum", 0, OPT_FLOAT, &momentum, "X", "sgd momentum (default 0.9)", 0},
        {"noise", 0, OPT_FLOAT, &sigma, "SIGMA", "regression: Gaussian noise std of the likelihood (default 1)", 0},
        {"seed", 's', OPT_INT, &df.seed, "N", "random seed for initialisation, shuffling, dropout (default 0)", 0},
        {"threads", 't', OPT_INT, &threads, "N", "threads (default: all cores); results do not depend on it", 0},
        {"task", 0, OPT_STR, &df.task, "NAME", "csv data: classification or regression (default: from the model's output width)", 0},
        {"target-col", 0, OPT_INT, &df.target_col, "N", "csv data: target column, 0-based, negative from the end (default -1)", 0},
        {"header", 0, OPT_FLAG, &df.header, NULL, "csv data: the first line is a header (default: detect)", 0},
        {"no-header", 0, OPT_FLAG, &df.no_header, NULL, "csv data: the first line is data", 0},
        {"output", 'o', OPT_STR, &output, "FILE", "write the trained model here (.safetensors)", 0},
        {"quiet", 'q', OPT_FLAG, &quiet, NULL, "no progress output", 0},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, nopts, cmd, pos, 0, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "--data SPEC [--model SPEC] [options] -o FILE",
                  "Trains a network by maximum a posteriori (MAP) estimation and saves it as a\n"
                  "safetensors file that `bnn eval` and PyTorch can read.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (!df.data) return cli_usage_error(cmd, "--data is required (e.g. --data fmnist)");
    struct bnn_train_params tp = bnn_train_default_params();
    if (!strcmp(method, "adamw")) tp.method = BNN_METHOD_ADAMW;
    else if (!strcmp(method, "sgd")) tp.method = BNN_METHOD_SGD;
    else return cli_usage_error(cmd, "unknown --method '%s' (choose adamw or sgd)", method);
    if (epochs < 0) return cli_usage_error(cmd, "--epochs must be >= 0");
    if (!strcmp(schedule, "constant")) tp.lr_schedule = BNN_LR_CONSTANT;
    else if (!strcmp(schedule, "cosine")) tp.lr_schedule = BNN_LR_COSINE;
    else return cli_usage_error(cmd, "unknown --lr-schedule '%s' (choose constant or cosine)",
                                schedule);
    if (warmup < 0 || warmup > epochs)
        return cli_usage_error(cmd, "--warmup-epochs must be between 0 and --epochs");
    tp.warmup_epochs = warmup;
    if (batch < 1) return cli_usage_error(cmd, "--batch-size must be >= 1");
    if (!cli_seen(opts, nopts, "lr")) lr = tp.method == BNN_METHOD_SGD ? 0.05 : 1e-3;
    if (!(lr > 0)) return cli_usage_error(cmd, "--lr must be positive");
    if (wd < 0) return cli_usage_error(cmd, "--weight-decay must be >= 0");
    if (!(sigma > 0)) return cli_usage_error(cmd, "--noise must be positive");
    if (df.seed < 0) return cli_usage_error(cmd, "--seed must be >= 0");
    if (threads < 0) return cli_usage_error(cmd, "--threads must be >= 1");
    if (threads) bnn_set_threads((int)threads);

    /* The model is built before the data so a bad spec fails fast; its output width tells a
     * CSV file's task when --task is absent. */
    bnn_model *m = NULL;
    bnn_dataset *ds = NULL;
    char spec[256];
    if (model && (rc = bnn_model_new(&m, model))) return cli_fail(cmd, rc, NULL);
    bnn_task want = (m && bnn_model_output_dim(m) == 1) ? BNN_TASK_REGRESSION
                                                          : BNN_TASK_CLASSIFICATION;
    if ((rc = cli_load_data(cmd, &df, "train", want, m != NULL, &ds))) goto done;
    if (!m) {
        cli_default_model(spec, sizeof spec, df.data, ds);
        if ((rc = bnn_model_new(&m, spec))) {
            rc = cli_fail(cmd, rc, NULL);
            goto done;
        }
    }
    progress_ctx pc = {.tty = isatty(2), .quiet = quiet, .epochs = epochs};
    pc.start = now_seconds();
    tp.epochs = epochs, tp.batch_size = batch, tp.lr = (float)lr, tp.weight_decay = (float)wd;
    tp.momentum = (float)momentum, tp.seed = (uint64_t)df.seed, tp.sigma = sigma;
    tp.progress = progress, tp.progress_ctx = &pc;
    if (!quiet)
        fprintf(stderr, "training %s (%lld parameters) on %s: %lld examples, %s, %lld epochs, "
                "batch %lld, lr %g (%s), %d thread%s\n", bnn_model_spec(m),
                (long long)bnn_model_nparams(m), df.data, (long long)bnn_dataset_n(ds), method,
                (long long)epochs, (long long)batch, lr, schedule, bnn_get_threads(),
                bnn_get_threads() == 1 ? "" : "s");
    if ((rc = bnn_train(m, ds, &tp))) {
        if (pc.tty && !quiet) fputc('\n', stderr);
        rc = cli_fail(cmd, rc, NULL);
        if (output) fprintf(stderr, "bnn train: %s was not written\n", output);
        goto done;
    }
    if (output) {
        char s_epochs[32], s_batch[32], s_lr[32], s_wd[32], s_seed[32], s_sigma[32], s_mom[32];
        char s_warm[32];
        snprintf(s_warm, sizeof s_warm, "%lld", (long long)warmup);
        snprintf(s_epochs, sizeof s_epochs, "%lld", (long long)epochs);
        snprintf(s_batch, sizeof s_batch, "%lld", (long long)batch);
        fmt_double(s_lr, sizeof s_lr, lr);
        fmt_double(s_wd, sizeof s_wd, wd);
        fmt_double(s_mom, sizeof s_mom, momentum);
        snprintf(s_seed, sizeof s_seed, "%lld", (long long)df.seed);
        fmt_double(s_sigma, sizeof s_sigma, sigma);
        const char *keys[] = {"bnn.method", "bnn.data", "bnn.epochs", "bnn.batch_size", "bnn.lr",
                              "bnn.weight_decay", "bnn.momentum", "bnn.seed", "bnn.sigma",
                              "bnn.lr_schedule", "bnn.warmup_epochs"};
        const char *vals[] = {method, df.data, s_epochs, s_batch, s_lr, s_wd, s_mom, s_seed,
                              s_sigma, schedule, s_warm};
        bnn_task task = bnn_dataset_task(ds);
        if ((rc = bnn_model_save(m, output, task, keys, vals, 11))) {
            rc = cli_fail(cmd, rc, "cannot save the model");
            goto done;
        }
        if (!quiet) fprintf(stderr, "saved %s\n", output);
    } else if (!quiet) {
        fprintf(stderr, "note: no --output given, so the model was not saved\n");
    }
    rc = 0;
done:
    bnn_model_free(m);
    bnn_dataset_free(ds);
    return rc;
}
