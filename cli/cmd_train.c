/* bnn train: fit a network — by MAP (SGD, AdamW) or variational learning (IVON, mean-field VI) —
 * and save it with its posterior; checkpoint and resume. */
#include "cli.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct progress_ctx {
    bool tty, quiet;
    int64_t epochs;
    double last_draw, epoch_start;
    /* this invocation's first and latest epoch means of the training loss, and its first step's
     * loss (NAN before it; after a resume inside an epoch, that epoch's mean so far) */
    int64_t first_epoch, last_epoch; /* 0 before the first */
    double first_loss, last_loss, first_step;
} progress_ctx;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A redrawn progress line on a terminal; one summary line per epoch otherwise. */
static int progress(void *vctx, int64_t epoch, int64_t step, int64_t steps, double loss,
                    bool done) {
    progress_ctx *c = vctx;
    if (!done && isnan(c->first_step)) c->first_step = loss;
    if (done) {
        if (!c->first_epoch) c->first_epoch = epoch + 1, c->first_loss = loss;
        c->last_epoch = epoch + 1, c->last_loss = loss;
    }
    if (c->quiet) return 0;
    double t = now_seconds();
    /* Four decimals, but a loss of 1e30 (unscaled data) or below 1e-3 in six digits (cli_num4). */
    char ls[32];
    cli_num4(ls, loss);
    if (done) {
        fprintf(stderr, "%sepoch %lld/%lld  train loss %s  %.2fs\n", c->tty ? "\r\033[K" : "",
                (long long)epoch + 1, (long long)c->epochs, ls, t - c->epoch_start);
    } else if (c->tty && t - c->last_draw > 0.1) {
        c->last_draw = t;
        fprintf(stderr, "\r\033[Kepoch %lld/%lld  step %lld/%lld  loss %s", (long long)epoch + 1,
                (long long)c->epochs, (long long)step, (long long)steps, ls);
    }
    return 0;
}

/* Keeps the first n − holdout training examples; the last `holdout` stay unseen for
 * `bnn calibrate` (the split is fixed by the data's order, so calibrate finds the same rows). */
static int apply_holdout(const char *cmd, bnn_dataset **ds, int64_t holdout) {
    if (holdout == 0) return 0;
    const int64_t n = bnn_dataset_n(*ds);
    if (holdout < 0 || holdout >= n)
        return cli_usage_error(cmd, "--holdout must be between 0 and %lld (one less than the %lld "
                               "training examples)", (long long)n - 1, (long long)n);
    /* A classifier's kept rows need two classes, which the whole set may have had: say that the
     * hold-out took the others (the trainer would blame the data). */
    if (bnn_dataset_task(*ds) == BNN_TASK_CLASSIFICATION && bnn_dataset_labelled(*ds)) {
        const int32_t *y = bnn_dataset_clabels(*ds);
        bool one = true, other = false;
        for (int64_t i = 1; i < n; i++) {
            if (i < n - holdout) one = one && y[i] == y[0];
            other = other || y[i] != y[0];
        }
        if (one && other)
            return cli_usage_error(cmd, "--holdout %lld leaves %lld training example%s, all of "
                                   "class %d: training needs examples of at least 2 classes "
                                   "(the hold-out is the data's last rows)", (long long)holdout,
                                   (long long)(n - holdout), n - holdout == 1 ? "" : "s",
                                   (int)y[0]);
    }
    /* In place: a copy beside the whole set raised the peak memory by the training rows. */
    const int rc = bnn_dataset_truncate(*ds, n - holdout);
    return rc ? cli_fail(cmd, rc, NULL) : 0;
}

/* Flags that change the training itself cannot be given with --resume. */
static const char *const settings_flags[] = {
    "model", "method", "batch-size", "lr", "lr-schedule", "warmup-epochs", "weight-decay",
    "momentum", "noise", "seed", "ess", "hess-init", "beta1", "beta2", "mc-samples",
    "clip-radius", "prior-precision", "init-std", "kl-weight", "task", "target-col",
    "header", "no-header", "holdout", "lik"};

/* Neither the model nor the checkpoint may overwrite the data's files; and a checkpoint, which
 * --resume reads back, is a regular file: the standard output got every epoch's checkpoint run
 * together, and /dev/null one that "resume with --resume /dev/null" could not read. */
static int check_outputs(const char *cmd, const char *output, const char *checkpoint,
                         const cli_data_flags *df) {
    /* as bnn_write_file will write them (its own classification, not a second one here) */
    const int ck_kind = checkpoint ? bnn_output_kind(checkpoint) : BNN_OUTPUT_FILE;
    if (ck_kind > BNN_OUTPUT_FILE)
        return cli_usage_error(cmd, "--checkpoint %s: a checkpoint is a file to resume from, not "
                               "%s", checkpoint,
                               ck_kind == BNN_OUTPUT_DEVICE ? "a device or pipe"
                                                            : "the standard output or error");
    /* -o - (or /dev/stdout): the model goes to the standard output, a pipe or a file; a terminal
     * would get its binary bytes, and a closed or read-only one was found only after the
     * training */
    if (output && bnn_output_kind(output) == BNN_OUTPUT_STDOUT) {
        const int fl = fcntl(1, F_GETFL);
        if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
            return cli_usage_error(cmd, "-o %s: the standard output is %s", output,
                                   fl < 0 ? "closed" : "open for reading only");
        if (isatty(1))
            return cli_usage_error(cmd, "-o %s: the standard output is a terminal, which would "
                                   "get the model's binary bytes (redirect it, or give -o FILE)",
                                   output);
    }
    int rc = cli_check_output_data(cmd, output, NULL, NULL, df);
    return rc ? rc : cli_check_output_data(cmd, checkpoint, NULL, NULL, df);
}

/* A note when a Gaussian likelihood's fixed noise σ is far from the targets' size, their root
 * mean square about 0 (over 1000 σ, or under σ/1000 and not all 0): targets of about 1e6 against
 * σ = 1 — widely spread, or years of 2000 ± 20 — gave a loss of 1e12 or 1e6, RMSEs of their own
 * size and no interval coverage, with exit 0; targets of 1e-4 would be lost in the noise. The
 * network starts at outputs near 0 and the likelihood expects residuals of about σ. */
static void note_target_scale(const bnn_dataset *ds, double sigma) {
    const int64_t n = bnn_dataset_n(ds), t = bnn_dataset_outputs(ds);
    const float *y = bnn_dataset_ctargets(ds);
    if (!y || n < 1) return;
    for (int64_t j = 0; j < t; j++) {
        double ss = 0.0;
        for (int64_t i = 0; i < n; i++) ss += (double)y[i * t + j] * (double)y[i * t + j];
        const double rms = sqrt(ss / (double)n);
        if (!(rms > 1e3 * sigma) && !(rms < 1e-3 * sigma && rms > 0.0)) continue;
        char which[64] = "the targets";
        if (t > 1) snprintf(which, sizeof which, "target %lld of %lld", (long long)j + 1,
                            (long long)t);
        fprintf(stderr, "note: %s have a root mean square of %.3g against the gaussian "
                "likelihood's noise sigma %g, the error it expects of a prediction: standardise "
                "the targets (sigma about 1 then), or give --noise the error you expect\n", which,
                rms, sigma);
        return;
    }
}

/* A classifier gets one output per label from 0 to the largest, so a single stray label (1000000
 * in a column of 0s and 1s) makes a model of a million classes. Says so, on one line, when some
 * of those classes have no training example; the run goes on (a class may be absent from a
 * small training set on purpose). */
static int warn_empty_classes(const char *cmd, const char *data, const bnn_dataset *ds) {
    const int64_t k = bnn_dataset_outputs(ds), n = bnn_dataset_n(ds);
    const int32_t *y = bnn_dataset_clabels(ds);
    if (!y || k < 2) return 0;
    unsigned char *seen = calloc((size_t)k, 1);
    if (!seen) return cli_error(cmd, "out of memory");
    for (int64_t i = 0; i < n; i++) seen[y[i]] = 1; /* labels are in [0, k): validated at load */
    int64_t empty = 0, first = -1;
    for (int64_t c = 0; c < k; c++)
        if (!seen[c]) empty++, first = first < 0 ? c : first;
    free(seen);
    if (empty)
        fprintf(stderr, "bnn %s: warning: %s has labels 0 .. %lld, so the model gets %lld "
                "outputs, but %lld of those classes %s no training example (the first: %lld)\n",
                cmd, data, (long long)(k - 1), (long long)k, (long long)empty,
                empty == 1 ? "has" : "have", (long long)first);
    return 0;
}

/* --stop-after N must stop the run early: a usage error (2) when N is not before its last epoch
 * (a fresh run knows its total at once, a resumed one from its checkpoint). */
static int stop_after_late(const char *cmd, int64_t stop_after, int64_t epochs) {
    if (stop_after <= 0 || stop_after < epochs) return 0;
    return cli_usage_error(cmd, "--stop-after %lld is not before the run's last epoch (%lld): the "
                           "run would not stop early", (long long)stop_after, (long long)epochs);
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    cli_data_flags df = {.target_col = -1};
    const char *model = NULL, *method = "adamw", *output = NULL, *schedule = "constant";
    const char *checkpoint = NULL, *resume = NULL, *lik_name = NULL;
    int64_t epochs = 10, batch = 128, threads = 0, warmup = 0, stop_after = 0, mc = 1, holdout = 0;
    double lr = 0, wd = 1e-4, momentum = 0.9, sigma = 1.0;
    double ess = 0, hess_init = 1.0, beta1 = 0.9, beta2 = 0.99999, clip = INFINITY;
    double prior_prec = 1.0, init_std = 1e-3, kl_weight = 1.0;
    cli_opt opts[] = {
        {"data", 'd', OPT_STR, &df.data, "SPEC", "training data: fmnist, moons, sine-gap, sine-hetero, csv:FILE, idx:IMAGES,LABELS, npy:X,Y (required; with --resume optional: where the checkpoint's data has moved to)", 0},
        {"model", 0, OPT_STR, &model, "SPEC", "architecture, e.g. mlp:784-512-256-10 or mlp:2-50-50-2:tanh (default: one that fits the data)", 0},
        {"method", 0, OPT_STR, &method, "NAME", "adamw (default), sgd: MAP; ivon, mfvi: variational (a posterior)", 0},
        {"epochs", 'e', OPT_INT, &epochs, "N", "passes over the data, 0 to 1000000 (default 10; with --resume a new total, default the saved one)", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N", "mini-batch size (default 128)", 0},
        {"lr", 0, OPT_FLOAT, &lr, "X", "learning rate (default: adamw, mfvi 1e-3; sgd 0.05; ivon 0.5)", 0},
        {"lr-schedule", 0, OPT_STR, &schedule, "NAME", "constant (default) or cosine (half-cosine decay towards 0 over the run)", 0},
        {"warmup-epochs", 0, OPT_INT, &warmup, "N", "linear learning-rate warm-up over the first N epochs (default 0)", 0},
        {"weight-decay", 0, OPT_FLOAT, &wd, "X", "weight decay; for ivon the prior precision delta (default 1e-4)", 0},
        {"momentum", 0, OPT_FLOAT, &momentum, "X", "sgd momentum (default 0.9)", 0},
        {"lik", 0, OPT_STR, &lik_name, "NAME", "likelihood: categorical, bernoulli (2 classes, 1 output), gaussian, hetero-gaussian (1 target, 2 outputs: mean, log variance) (default: categorical for classification, gaussian for regression)", 0},
        {"noise", 0, OPT_FLOAT, &sigma, "SIGMA", "gaussian likelihood: noise std (default 1)", 0},
        {"ess", 0, OPT_FLOAT, &ess, "N", "ivon: effective sample size lambda (default: training-set size)", 0},
        {"hess-init", 0, OPT_FLOAT, &hess_init, "X", "ivon: initial Hessian estimate h0 (default 1)", 0},
        {"beta1", 0, OPT_FLOAT, &beta1, "X", "ivon: momentum decay (default 0.9)", 0},
        {"beta2", 0, OPT_FLOAT, &beta2, "X", "ivon: Hessian decay (default 0.99999)", 0},
        {"mc-samples", 0, OPT_INT, &mc, "N", "ivon, mfvi: weight samples per step (default 1)", 0},
        {"clip-radius", 0, OPT_FLOAT, &clip, "X", "ivon: elementwise clip of the update (default: none)", 0},
        {"prior-precision", 0, OPT_FLOAT, &prior_prec, "X", "mfvi: prior precision of N(0, 1/X) (default 1; --prior-prec is the same)", 0},
        {"init-std", 0, OPT_FLOAT, &init_std, "X", "mfvi: initial posterior std, at least 1.08e-19 (default 1e-3)", 0},
        {"kl-weight", 0, OPT_FLOAT, &kl_weight, "X", "mfvi: weight of the KL term (default 1)", 0},
        {"seed", 's', OPT_INT, &df.seed, "N", "random seed: initialisation, shuffling, dropout, weight noise, generated data (default 0)", 0},
        {"threads", 't', OPT_INT, &threads, "N", "threads (default and 0: all cores); results do not depend on it", 0},
        {"task", 0, OPT_STR, &df.task, "NAME", "csv and npy data: classification or regression (default: from the model's output width)", 0},
        {"target-col", 0, OPT_INT, &df.target_col, "N", "csv data: target column, 0-based, negative from the end (default -1)", 0},
        {"header", 0, OPT_FLAG, &df.header, NULL, "csv data: the first line is a header (default: detect)", 0},
        {"no-header", 0, OPT_FLAG, &df.no_header, NULL, "csv data: the first line is data", 0},
        {"holdout", 0, OPT_INT, &holdout, "N", "keep the last N training examples out of training, for bnn calibrate and bnn laplace --prior grid (default 0)", 0},
        {"output", 'o', OPT_STR, &output, "FILE", "write the trained model and its posterior here (.safetensors; without it nothing is saved)", 0},
        {"checkpoint", 0, OPT_STR, &checkpoint, "FILE", "after every epoch, save the full training state here", 0},
        {"resume", 0, OPT_STR, &resume, "FILE", "continue the run saved in a checkpoint (its settings and data; takes -o, --checkpoint, --stop-after, --epochs, --data, -t, -q)", 0},
        {"stop-after", 0, OPT_INT, &stop_after, "N", "stop after epoch N (the schedule still spans --epochs; needs --checkpoint); resume later", 0},
        CLI_QUIET_OPT,
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, nopts, cmd, pos, 0, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "--data SPEC [--model SPEC] [--method NAME] [options] [-o FILE]\n"
                  "       bnn train --resume CHECKPOINT [-o FILE] [options]",
                  "Trains a network and saves it (and, for ivon and mfvi, its Gaussian posterior\n"
                  "over the weights) as a safetensors file that `bnn eval` and PyTorch read.\n"
                  "IVON: Shen et al., ICML 2024; mean-field VI: Blundell et al., ICML 2015.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    const bool quiet = cli_quiet; /* -q: also the epoch lines */
    if (cli_set_threads(cmd, threads)) return 2;
    if (stop_after < 0 || (stop_after == 0 && cli_seen(opts, nopts, "stop-after")))
        return cli_usage_error(cmd, "--stop-after must be >= 1");
    if (cli_seen(opts, nopts, "epochs") && (epochs < 0 || epochs > BNN_MAX_EPOCHS))
        return cli_usage_error(cmd, "--epochs must be between 0 and %d (0 saves the initial "
                               "weights)", BNN_MAX_EPOCHS);
    if (resume && cli_seen(opts, nopts, "epochs") && epochs == 0)
        return cli_usage_error(cmd, "--epochs with --resume sets the run's new total of epochs; "
                               "0 is none (leave --epochs out to keep the saved total)");
    /* Options that would do nothing are refused, not ignored. */
    if (stop_after > 0 && !checkpoint)
        return cli_usage_error(cmd, "--stop-after stops a run to resume it later: give "
                               "--checkpoint FILE to save it");
    if (!resume && stop_after_late(cmd, stop_after, epochs)) return 2;
    if (checkpoint && cli_seen(opts, nopts, "epochs") && epochs == 0 && !resume)
        return cli_usage_error(cmd, "--checkpoint saves after every epoch; --epochs 0 runs none");
    if (cli_same_path(output, checkpoint))
        return cli_usage_error(cmd, "-o and --checkpoint name the same file");
    /* The checkpoint may be updated in place, but the model would replace it. */
    if (cli_same_path(output, resume))
        return cli_usage_error(cmd, "-o names the checkpoint being resumed (%s): the model would "
                               "replace it", resume);
    progress_ctx pc = {.tty = isatty(2), .quiet = quiet, .first_step = NAN};
    bnn_model *m = NULL;
    bnn_dataset *ds = NULL;
    bnn_trainer *tr = NULL;
    bnn_st *ck = NULL;
    struct bnn_train_params tp = bnn_train_default_params();

    if (resume) {
        for (size_t i = 0; i < sizeof settings_flags / sizeof settings_flags[0]; i++)
            if (cli_seen(opts, nopts, settings_flags[i]))
                return cli_usage_error(cmd, "--%s cannot be combined with --resume: the run "
                                       "continues with the settings saved in %s",
                                       settings_flags[i], resume);
        /* The checkpoint names its data; load it as it was trained. Its header only: the CLI
         * reads metadata, bnn_trainer_resume the tensors (the whole file held here as well, for
         * the whole run, was 64 MB of a 4M-weight IVON resume's 232 MB peak). */
        if ((rc = bnn_st_read_meta(&ck, resume))) return cli_fail(cmd, rc, NULL);
        const char *task = bnn_st_meta(ck, "bnn.task");
        if (!bnn_st_meta(ck, "bnn.data") || !task) {
            rc = cli_error(cmd, "%s: not a bnn checkpoint (no bnn.data / bnn.task)", resume);
            goto done;
        }
        /* bnn calibrate copies a checkpoint whole: training on from the copy would drop the
         * temperature, which belongs to the weights it was fitted to. */
        if (bnn_st_meta(ck, "bnn.temperature")) {
            rc = cli_usage_error(cmd, "%s is a calibrated copy (bnn.temperature), whose "
                                 "temperature fits its weights as they are; resume the checkpoint "
                                 "it was calibrated from, then calibrate the result", resume);
            goto done;
        }
        /* A model file where a checkpoint belongs is the wrong kind of file, as a posterior
         * given to laplace is (bnn_trainer_resume refuses it too). */
        if (!bnn_st_meta(ck, "bnn.state.step")) {
            rc = cli_usage_error(cmd, "%s is a model file, not a checkpoint (save one with "
                                 "--checkpoint)", resume);
            goto done;
        }
        df.task = task;
        /* Its data spec, CSV settings and seed (none of them may be given with --resume), or
         * with --data the same data somewhere else: read as the checkpoint's, and its
         * fingerprint checked by bnn_trainer_resume (a checkpoint without one cannot tell). */
        const char *relocated = df.data;
        df.fixed = !bnn_st_meta(ck, "bnn.state.data_hash");
        if (relocated && df.fixed) {
            rc = cli_usage_error(cmd, "%s keeps no fingerprint of its data, so --data cannot be "
                                 "checked to be that data; resume it without --data", resume);
            goto done;
        }
        df.data = NULL; /* the recorded spec's settings, then --data's place for it */
        if ((rc = cli_model_data(cmd, resume, ck, &df, false))) goto done;
        if (relocated) df.data = relocated, df.dir = df.from = NULL;
        const char *ho = bnn_st_meta(ck, "bnn.data.holdout");
        if ((rc = cli_meta_count(cmd, resume, "bnn.data.holdout", ho, &holdout))) goto done;
        if ((rc = cli_load_data(cmd, &df, "train", BNN_TASK_CLASSIFICATION, false, &ds)) ||
            /* (another bnn.task is refused as the checkpoint loads) */
            ((!strcmp(task, "classification") || !strcmp(task, "regression")) &&
             (rc = cli_check_task(cmd, resume,
                                  strcmp(task, "regression") ? BNN_TASK_CLASSIFICATION
                                                             : BNN_TASK_REGRESSION,
                                  df.data, ds))) ||
            (rc = apply_holdout(cmd, &ds, holdout)))
            goto done;
        if (cli_seen(opts, nopts, "epochs")) {
            /* What --epochs may not do is a usage error (bnn_trainer_resume refuses it too). */
            int64_t total = 0, done_epochs = 0;
            const char *sched = bnn_st_meta(ck, "bnn.lr_schedule");
            if ((rc = cli_meta_int(cmd, resume, "bnn.epochs", bnn_st_meta(ck, "bnn.epochs"), 1, 0,
                                   &total)) ||
                (rc = cli_meta_int(cmd, resume, "bnn.state.epoch",
                                   bnn_st_meta(ck, "bnn.state.epoch"), 0, 0, &done_epochs)))
                goto done;
            if (epochs < done_epochs) {
                rc = cli_usage_error(cmd, "%s has already completed %lld epochs; --epochs %lld is "
                                     "fewer", resume, (long long)done_epochs, (long long)epochs);
                goto done;
            }
            int64_t warm = 0;
            if ((rc = cli_meta_int(cmd, resume, "bnn.warmup_epochs",
                                   bnn_st_meta(ck, "bnn.warmup_epochs"), 0, 0, &warm)))
                goto done;
            if (epochs < warm) {
                rc = cli_usage_error(cmd, "%s warms up over %lld epochs; --epochs %lld is fewer",
                                     resume, (long long)warm, (long long)epochs);
                goto done;
            }
            if (sched && !strcmp(sched, "cosine") && total > 0 && epochs != total) {
                rc = cli_usage_error(cmd, "%s uses a cosine schedule over %lld epochs; --epochs "
                                     "cannot change it (the schedule it was trained under would "
                                     "change)", resume, (long long)total);
                goto done;
            }
        }
        if ((rc = bnn_trainer_resume(&tr, &m, resume, ds, cli_seen(opts, nopts, "epochs") ? epochs : 0))) {
            /* data that do not fit the checkpoint's model: a usage error, naming the data, as in
             * a fresh run */
            rc = rc == BNN_ESHAPE ? (cli_fail(cmd, rc, df.data ? df.data : resume), 2)
                                  : cli_fail(cmd, rc, NULL);
            goto done;
        }
        tp = *bnn_trainer_params(tr);
        /* The refusals below come before the line that says the run resumes, so that each is the
         * only line. --stop-after against the run's total, known now, and against the epochs the
         * checkpoint has passed: nothing would run, and the saved model would say it stopped
         * after a later epoch than asked. */
        if ((rc = stop_after_late(cmd, stop_after, tp.epochs))) goto done;
        if (stop_after > 0 && stop_after <= bnn_trainer_epoch(tr)) {
            rc = cli_usage_error(cmd, "%s has already completed %lld epoch%s; --stop-after %lld "
                                 "is not after that", resume, (long long)bnn_trainer_epoch(tr),
                                 bnn_trainer_epoch(tr) == 1 ? "" : "s", (long long)stop_after);
            goto done;
        }
        /* Not over the data; the checkpoint being resumed may be replaced (every write is
         * atomic). */
        if ((rc = check_outputs(cmd, output, checkpoint, &df))) goto done;
        if (!quiet)
            fprintf(stderr, "resuming %s after epoch %lld of %lld (%s, %s)\n", resume,
                    (long long)bnn_trainer_epoch(tr), (long long)tp.epochs,
                    bnn_method_name(tp.method), bnn_model_spec(m));
    } else {
        if (!df.data) return cli_usage_error(cmd, "--data is required (e.g. --data fmnist)");
        if (bnn_method_parse(method, &tp.method))
            return cli_usage_error(cmd, "unknown --method '%s' (choose adamw, sgd, ivon or mfvi)",
                                   method);
        /* A setting of another method would be ignored without a word: refused instead. */
        static const struct {
            const char *flag, *methods;
            unsigned mask; /* bit m: accepted by method m */
        } only[] = {
            {"momentum", "sgd", 1u << BNN_METHOD_SGD},
            {"weight-decay", "sgd, adamw and ivon (mfvi's prior is --prior-precision)",
             1u << BNN_METHOD_SGD | 1u << BNN_METHOD_ADAMW | 1u << BNN_METHOD_IVON},
            {"ess", "ivon", 1u << BNN_METHOD_IVON},
            {"hess-init", "ivon", 1u << BNN_METHOD_IVON},
            {"beta1", "ivon", 1u << BNN_METHOD_IVON},
            {"beta2", "ivon", 1u << BNN_METHOD_IVON},
            {"clip-radius", "ivon", 1u << BNN_METHOD_IVON},
            {"mc-samples", "ivon and mfvi", 1u << BNN_METHOD_IVON | 1u << BNN_METHOD_MFVI},
            {"prior-precision", "mfvi", 1u << BNN_METHOD_MFVI},
            {"init-std", "mfvi", 1u << BNN_METHOD_MFVI},
            {"kl-weight", "mfvi", 1u << BNN_METHOD_MFVI},
        };
        for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
            if (cli_seen(opts, nopts, only[i].flag) && !(only[i].mask & (1u << tp.method)))
                return cli_usage_error(cmd, "--%s is a setting of %s, not of --method %s",
                                       only[i].flag, only[i].methods, bnn_method_name(tp.method));
        if (!strcmp(schedule, "constant")) tp.lr_schedule = BNN_LR_CONSTANT;
        else if (!strcmp(schedule, "cosine")) tp.lr_schedule = BNN_LR_COSINE;
        else return cli_usage_error(cmd, "unknown --lr-schedule '%s' (choose constant or cosine)",
                                    schedule);
        if (warmup < 0 || warmup > epochs)
            return cli_usage_error(cmd, "--warmup-epochs must be between 0 and --epochs");
        if (batch < 1) return cli_usage_error(cmd, "--batch-size must be >= 1");
        if (!cli_seen(opts, nopts, "lr"))
            lr = tp.method == BNN_METHOD_SGD ? 0.05 : tp.method == BNN_METHOD_IVON ? 0.5 : 1e-3;
        if (!(lr > 0)) return cli_usage_error(cmd, "--lr must be positive");
        if (wd < 0) return cli_usage_error(cmd, "--weight-decay must be >= 0");
        if (!(sigma > 0)) return cli_usage_error(cmd, "--noise must be positive");
        if (df.seed < 0) return cli_usage_error(cmd, "--seed must be >= 0");
        if (ess < 0 || (cli_seen(opts, nopts, "ess") && ess == 0))
            return cli_usage_error(cmd, "--ess must be positive (leave it out for the "
                                   "training-set size)");
        if (!(hess_init > 0)) return cli_usage_error(cmd, "--hess-init must be positive");
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
            return cli_usage_error(cmd, "--beta1 and --beta2 must be in [0, 1)");
        if (mc < 1 || mc > BNN_MAX_MC_SAMPLES)
            return cli_usage_error(cmd, "--mc-samples must be between 1 and %d",
                                   BNN_MAX_MC_SAMPLES);
        if (!(momentum >= 0 && momentum < 1))
            return cli_usage_error(cmd, "--momentum must be in [0, 1)");
        if (!(clip > 0)) return cli_usage_error(cmd, "--clip-radius must be positive");
        if (!(prior_prec > 0)) return cli_usage_error(cmd, "--prior-precision must be positive");
        if (!(init_std > 0)) return cli_usage_error(cmd, "--init-std must be positive");
        if (init_std < BNN_MFVI_MIN_STD)
            return cli_usage_error(cmd, "--init-std must be at least 2^-63 = %.3g, the smallest "
                                   "std MFVI represents", (double)BNN_MFVI_MIN_STD);
        if (kl_weight < 0) return cli_usage_error(cmd, "--kl-weight must be >= 0");
        /* These are stored as floats, or meet float weights (the noise σ, λ and the prior
         * precision scale them): a value that would round to 0 or overflow is refused here
         * rather than reported later as "must be positive" or as a diverged run. */
        const char *fnames[] = {"lr", "weight-decay", "hess-init", "init-std", "clip-radius",
                                "momentum", "noise", "ess", "prior-precision"};
        const double fvals[] = {lr, wd, hess_init, init_std, clip, momentum, sigma, ess, prior_prec};
        for (int i = 0; i < 9; i++)
            if (cli_seen(opts, nopts, fnames[i]) && cli_float_range(cmd, fnames[i], fvals[i]))
                return 2;
        tp.epochs = epochs, tp.batch_size = batch, tp.lr = (float)lr;
        tp.weight_decay = (float)wd, tp.momentum = (float)momentum, tp.seed = (uint64_t)df.seed;
        tp.sigma = sigma, tp.warmup_epochs = warmup;
        tp.ivon.ess = ess, tp.ivon.hess_init = (float)hess_init, tp.ivon.beta1 = beta1;
        tp.ivon.beta2 = beta2, tp.ivon.mc_samples = mc, tp.ivon.clip_radius = (float)clip;
        tp.mfvi.prior_prec = prior_prec, tp.mfvi.init_std = (float)init_std;
        tp.mfvi.mc_samples = mc, tp.mfvi.kl_weight = kl_weight;
        bnn_lik_kind lik = BNN_LIK_CATEGORICAL;
        if (lik_name && bnn_lik_parse(lik_name, &lik))
            return cli_usage_error(cmd, "unknown --lik '%s' (choose categorical, bernoulli, "
                                   "gaussian or hetero-gaussian)", lik_name);
        if (lik_name && lik != BNN_LIK_GAUSSIAN && cli_seen(opts, nopts, "noise"))
            return cli_usage_error(cmd, "--noise is the noise of --lik gaussian; %s has none",
                                   lik_name);
        /* The model is built before the data so a bad spec fails fast; the likelihood, or else
         * the output width, tells a CSV file's task when --task is absent. */
        /* A spec that does not parse is a bad option value (exit 2); one too large, memory. */
        if (model && (rc = bnn_model_new(&m, model))) {
            cli_fail(cmd, rc, NULL);
            return rc == BNN_EINVAL ? 2 : 1;
        }
        /* An activation or dropout acts between Linear layers: a model of one has none, and the
         * option would be dropped without a word. (Files that say so still load.) */
        if (m && bnn_model_nlayers(m) == 1 && strchr(model + 4, ':')) {
            bnn_model_free(m);
            return cli_usage_error(cmd, "--model %s has no hidden layer for its activation or "
                                   "dropout to act on", model);
        }
        bnn_task want = lik_name ? bnn_lik_task(lik)
                        : (m && bnn_model_output_dim(m) == 1) ? BNN_TASK_REGRESSION
                                                                : BNN_TASK_CLASSIFICATION;
        if ((rc = cli_check_csv_flags(cmd, opts, nopts, df.data, false)) ||
            (rc = cli_load_data(cmd, &df, "train", want, m != NULL || lik_name, &ds)))
            goto done;
        /* Data without labels does not fit a training run: a usage error, as for eval. */
        if (bnn_dataset_task(ds) == BNN_TASK_CLASSIFICATION && !bnn_dataset_labelled(ds)) {
            rc = cli_usage_error(cmd, "%s has no labels: it can be predicted on or passed as "
                                 "--ood data, not trained on", df.data);
            goto done;
        }
        if ((rc = apply_holdout(cmd, &ds, holdout))) goto done;
        const bnn_task task = bnn_dataset_task(ds);
        if (!strncmp(df.data, "csv:", 4) && strchr(df.data + 4, ',')) {
            /* A CSV pair: the test file is read now, so that a missing or mismatched one shows
             * before training rather than at eval. */
            bnn_dataset *test = NULL;
            cli_data_flags tf = df;
            tf.task = task == BNN_TASK_REGRESSION ? "regression" : "classification";
            if ((rc = cli_load_data(cmd, &tf, "test", task, true, &test))) goto done;
            const int64_t dt = bnn_dataset_dim(test), dd = bnn_dataset_dim(ds);
            const int64_t kt = bnn_dataset_outputs(test), kd = bnn_dataset_outputs(ds);
            bnn_dataset_free(test);
            if (dt != dd) {
                rc = cli_error(cmd, "%s: the test file has %lld feature%s but the training file "
                               "has %lld", df.data, (long long)dt, dt == 1 ? "" : "s", (long long)dd);
                goto done;
            }
            /* The default model predicts the training file's classes (a --model may have more:
             * eval checks those). */
            if (task == BNN_TASK_CLASSIFICATION ? !m && kt > kd : kt != kd) {
                rc = cli_error(cmd, "%s: the test file has %lld %s but the training file has "
                               "%lld", df.data, (long long)kt,
                               task == BNN_TASK_CLASSIFICATION ? "classes" : "targets",
                               (long long)kd);
                goto done;
            }
        }
        if (!lik_name) lik = task == BNN_TASK_REGRESSION ? BNN_LIK_GAUSSIAN : BNN_LIK_CATEGORICAL;
        if (lik != BNN_LIK_GAUSSIAN && cli_seen(opts, nopts, "noise")) {
            /* Integer targets read as classes unless --task says otherwise: say how. */
            const bool hint = task == BNN_TASK_CLASSIFICATION && !cli_seen(opts, nopts, "task") &&
                              (!strncmp(df.data, "csv:", 4) || !strncmp(df.data, "npy:", 4));
            rc = cli_usage_error(cmd, "--noise is the noise of a gaussian likelihood; %s is %s "
                                 "data (%s likelihood)%s", df.data,
                                 task == BNN_TASK_REGRESSION ? "regression" : "classification",
                                 bnn_lik_name(lik),
                                 hint ? "; --task regression reads its targets as numbers" : "");
            goto done;
        }
        if (bnn_lik_task(lik) != task) {
            rc = cli_usage_error(cmd, "--lik %s is for %s, but %s is %s data", lik_name,
                           bnn_lik_task(lik) == BNN_TASK_REGRESSION ? "regression" : "classification",
                           df.data, task == BNN_TASK_REGRESSION ? "regression" : "classification");
            goto done;
        }
        const int64_t outputs = bnn_lik_outputs(lik, bnn_dataset_outputs(ds));
        if (outputs == 0) {
            rc = cli_usage_error(cmd, "--lik %s does not fit %s: it has %lld %s, %s", lik_name, df.data,
                           (long long)bnn_dataset_outputs(ds),
                           task == BNN_TASK_REGRESSION ? "targets" : "classes",
                           lik == BNN_LIK_BERNOULLI ? "a Bernoulli likelihood is for 2 classes "
                                                      "(labels 0 and 1)"
                                                    : "a hetero-gaussian likelihood is for one "
                                                      "target");
            goto done;
        }
        if (!m) {
            char spec[256];
            if (outputs > (1 << 24)) { /* the widest layer a spec allows */
                rc = cli_error(cmd, "%s has %lld %s: more than a model's output layer can have "
                               "(16777216)", df.data, (long long)bnn_dataset_outputs(ds),
                               task == BNN_TASK_REGRESSION ? "targets"
                                                           : "classes (labels 0 .. the largest)");
                goto done;
            }
            cli_default_model(spec, sizeof spec, df.data, ds, outputs);
            if ((rc = bnn_model_new(&m, spec))) {
                rc = cli_fail(cmd, rc, NULL);
                goto done;
            }
        }
        if ((rc = bnn_model_set_lik(m, lik))) {
            rc = cli_fail_fit(cmd, rc); /* --lik and --model that do not fit: exit 2 */
            goto done;
        }
        if ((rc = bnn_trainer_new(&tr, m, ds, &tp))) {
            rc = cli_fail_fit(cmd, rc); /* --model and --data that do not fit: exit 2 */
            goto done;
        }
        tp = *bnn_trainer_params(tr); /* with defaults resolved, e.g. ess */
        /* Once the run is sure to start, so that a refusal stays the only line. */
        if (task == BNN_TASK_CLASSIFICATION && (rc = warn_empty_classes(cmd, df.data, ds)))
            goto done;
        /* Before the first epoch, not after hours of training, and before the header line so a
         * refusal is the only line (a resumed run is checked above). */
        if ((rc = check_outputs(cmd, output, checkpoint, &df))) goto done;
        if (lik == BNN_LIK_GAUSSIAN) note_target_scale(ds, sigma);
        if (!quiet) {
            char warm[48] = "";
            if (warmup > 0)
                snprintf(warm, sizeof warm, "%lld warm-up epoch%s, then ", (long long)warmup,
                         warmup == 1 ? "" : "s");
            /* a batch larger than the data is the data (the trainer takes min(batch, n)) */
            const int64_t nd = bnn_dataset_n(ds), bs = batch < nd ? batch : nd;
            fprintf(stderr, "training %s (%lld parameters, %s likelihood) on %s: %lld examples, "
                    "%s, %lld epoch%s, batch %lld%s, lr %g (%s%s), %d thread%s\n",
                    bnn_model_spec(m), (long long)bnn_model_nparams(m), bnn_lik_name(lik), df.data,
                    (long long)nd, bnn_method_name(tp.method), (long long)epochs,
                    epochs == 1 ? "" : "s", (long long)bs, bs < batch ? " (all the examples)" : "",
                    lr, warm, schedule, bnn_get_threads(), bnn_get_threads() == 1 ? "" : "s");
            if (tp.method == BNN_METHOD_IVON)
                fprintf(stderr, "ivon: ess %g, hess-init %g, delta %g, beta2 %g, %lld sample%s "
                        "per step\n", tp.ivon.ess, hess_init, wd, beta2, (long long)mc,
                        mc == 1 ? "" : "s");
        }
    }
    pc.epochs = tp.epochs;
    bnn_trainer_set_progress(tr, progress, &pc);
    /* Data settings travel in the saved file so that eval and resume find the same data, and
     * calibrate the rows held out. */
    cli_data_meta dm;
    char holdout_s[32], stopped_s[32];
    cli_data_meta_make(&dm, &df);
    cli_data_meta_range(&dm, ds);
    snprintf(holdout_s, sizeof holdout_s, "%lld", (long long)holdout);
    dm.keys[dm.n] = "bnn.data.holdout", dm.vals[dm.n++] = holdout_s;
    const int64_t until = stop_after > 0 ? stop_after : tp.epochs;
    /* the epoch the checkpoint file holds (the one resumed from, if it is that file) */
    int64_t ck_epoch = checkpoint && cli_same_path(checkpoint, resume) ? bnn_trainer_epoch(tr) : 0;
    while (bnn_trainer_epoch(tr) < until) {
        /* an epoch's time runs from here, not counting the checkpoint saved after it (taken at
         * the first step's progress call, it left that step out: all of a one-step epoch) */
        pc.epoch_start = now_seconds();
        if ((rc = bnn_trainer_run(tr, bnn_trainer_epoch(tr) + 1))) {
            if (pc.tty && !quiet) fputc('\n', stderr);
            /* One line: what went wrong, and that the output was not written. */
            const char *detail = bnn_last_error();
            /* a checkpoint saved after an earlier epoch is left as it is: said, since that
             * epoch may have been on its way to the divergence already */
            char held[4200] = "";
            if (ck_epoch > 0 && rc == BNN_EDIVERGED)
                snprintf(held, sizeof held, " (the checkpoint %s holds the run after epoch %lld, "
                         "which may have been diverging already)", checkpoint,
                         (long long)ck_epoch);
            if (output && detail && *detail) {
                fprintf(stderr, "bnn %s: %s; %s was not written%s\n", cmd, detail, output, held);
                rc = 1;
            } else if (held[0] && detail && *detail) {
                fprintf(stderr, "bnn %s: %s%s\n", cmd, detail, held);
                rc = 1;
            } else {
                rc = cli_fail(cmd, rc, NULL);
            }
            goto done;
        }
        if (checkpoint && (rc = bnn_trainer_save(tr, checkpoint, true, dm.keys, dm.vals, dm.n))) {
            rc = cli_fail(cmd, rc, "cannot save the checkpoint");
            goto done;
        }
        if (checkpoint) ck_epoch = bnn_trainer_epoch(tr);
    }
    if (output) {
        /* A model saved at --stop-after is the run so far: bnn.epochs keeps the schedule's
         * total, and bnn.stopped_after says how many of those epochs the weights have seen. */
        if (bnn_trainer_epoch(tr) < tp.epochs) {
            /* A stopped run's weights are judged as the last epoch's would be. */
            if ((rc = bnn_trainer_check(tr))) {
                fprintf(stderr, "bnn %s: %s; %s was not written%s%s%s\n", cmd, bnn_last_error(),
                        output, checkpoint ? " (the checkpoint " : "",
                        checkpoint ? checkpoint : "", checkpoint ? " holds the run)" : "");
                rc = 1;
                goto done;
            }
            snprintf(stopped_s, sizeof stopped_s, "%lld", (long long)bnn_trainer_epoch(tr));
            dm.keys[dm.n] = "bnn.stopped_after", dm.vals[dm.n++] = stopped_s;
        }
        if ((rc = bnn_trainer_save(tr, output, false, dm.keys, dm.vals, dm.n))) {
            rc = cli_fail(cmd, rc, "cannot save the model");
            goto done;
        }
        if (!quiet) fprintf(stderr, "saved %s\n", cli_out_name(output));
    } else if (!checkpoint) { /* a note, which -q keeps */
        fprintf(stderr, "note: no --output given, so the model was not saved\n");
    }
    /* A run whose loss ended well above where it began has not learnt (too large a step, most
     * often); below the divergence guard's growth it is saved, with this note (-q keeps it).
     * Where it began: the first epoch's mean, or the first step's loss when that is lower (a run
     * that blows up within its first epoch has a first epoch's mean as high as its last's). */
    const bool from_step = pc.first_step < pc.first_loss;
    const double ref = from_step ? pc.first_step : pc.first_loss;
    if (pc.last_epoch - pc.first_epoch >= 2 && pc.last_loss > ref + fmax(fabs(ref), 1.0)) {
        char a[32], b[32], from[40];
        cli_num4(a, ref), cli_num4(b, pc.last_loss);
        if (from_step)
            snprintf(from, sizeof from, "%s", resume ? "this run's first step" : "the first step");
        else
            snprintf(from, sizeof from, "epoch %lld", (long long)pc.first_epoch);
        fprintf(stderr, "note: the training loss rose from %s (%s) to %s (epoch %lld): "
                "the run looks unstable%s%s\n", a, from, b,
                (long long)pc.last_epoch, resume ? "" : "; a smaller --lr may help",
                !resume && tp.method == BNN_METHOD_IVON ? " (or --warmup-epochs, --clip-radius)"
                                                         : "");
    }
    if (!quiet && bnn_trainer_epoch(tr) < tp.epochs)
        fprintf(stderr, "stopped after epoch %lld of %lld%s%s\n", (long long)bnn_trainer_epoch(tr),
                (long long)tp.epochs, checkpoint ? "; resume with --resume " : "",
                checkpoint ? checkpoint : "");
    rc = 0;
done:
    bnn_trainer_free(tr);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    bnn_st_free(ck);
    return rc;
}
