/* bnn predict: per-example predictions of a model or posterior as CSV. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

typedef enum { IN_CSV, IN_NPY, IN_IDX, IN_UNKNOWN } in_format;

/* The format of predict's --input, from its first bytes (through gzip) where the file can be read
 * twice. NumPy (also a zip archive, which the NPY reader names as the mistake it is) and IDX are
 * told by their magic numbers whatever the name; then a .csv, .csv.gz or .txt name, or text, is
 * CSV. A file that is none of these is IN_UNKNOWN, so its error says which formats were looked
 * for instead of what one reader made of it. A pipe goes by its name alone: .npy and .npy.gz
 * NumPy, .csv, .csv.gz and .txt CSV, any other IDX (as /dev/fd/N from the shell's <(...)). */
static in_format input_format(const char *path) {
    struct stat sb;
    const bool csv_name =
        cli_ends_with(path, ".csv") || cli_ends_with(path, ".csv.gz") || cli_ends_with(path, ".txt");
    const bool npy_name = cli_ends_with(path, ".npy") || cli_ends_with(path, ".npy.gz");
    /* Only a regular file can be read twice: a pipe's first bytes would be lost to the reader. */
    gzFile f = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) ? gzopen(path, "rb") : NULL;
    if (!f) return npy_name ? IN_NPY : csv_name ? IN_CSV : IN_IDX; /* the reader says what failed */
    unsigned char pre[64];
    const int got = gzread(f, pre, sizeof pre);
    gzclose(f);
    if ((got >= 6 && !memcmp(pre, "\x93NUMPY", 6)) || (got >= 4 && !memcmp(pre, "PK\x03\x04", 4)))
        return IN_NPY;
    if (got >= 4 && pre[0] == 0 && pre[1] == 0 && pre[2] >= 0x08 && pre[2] <= 0x0e && pre[3] > 0)
        return IN_IDX;
    if (csv_name || got <= 0) return npy_name ? IN_NPY : IN_CSV; /* empty: the reader says so */
    if (npy_name) return IN_NPY;
    for (int i = 0; i < got; i++)
        if (pre[i] < 0x20 && !isspace(pre[i])) return IN_UNKNOWN;
    return IN_CSV;
}

/* --input -: standard input copied to a temporary file (in $TMPDIR, else /tmp), unlinked at once
 * and read back as /dev/fd/N (*fd): the readers open files by name, and the format is told from
 * the first bytes before a reader reads them again, which a pipe cannot do. The file goes with
 * the process however it ends. (Linux opens /dev/fd/N afresh, at offset 0; systems where it
 * duplicates the descriptor would need a seek before each open.) Returns 0, or prints and
 * returns 1 (2 for a closed or terminal input). */
static int stdin_to_file(const char *cmd, int *fd, char *path, size_t len) {
    /* Closed, mkstemp would get descriptor 0 and the copy read itself; a terminal would wait
     * for typed features without a prompt. */
    if (fcntl(0, F_GETFD) < 0)
        return cli_usage_error(cmd, "--input -: the standard input is closed");
    if (isatty(0))
        return cli_usage_error(cmd, "--input -: the standard input is a terminal; pipe or "
                               "redirect the features into it");
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/bnn-stdin.XXXXXX", dir);
    if ((*fd = mkstemp(tmp)) < 0)
        return cli_error(cmd, "cannot create a temporary file in %s for the standard input: %s",
                         dir, strerror(errno));
    unlink(tmp);
    static char buf[1 << 16];
    for (;;) {
        const ssize_t got = read(0, buf, sizeof buf);
        if (got == 0) break;
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return cli_error(cmd, "cannot read the standard input: %s", strerror(errno));
        for (ssize_t off = 0; off < got;) {
            const ssize_t w = write(*fd, buf + off, (size_t)(got - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0)
                return cli_error(cmd, "cannot copy the standard input to %s: %s", dir,
                                 strerror(errno));
            off += w;
        }
    }
    snprintf(path, len, "/dev/fd/%d", *fd);
    return 0;
}

/* The predictions CSV (see the help above), printed row by row into f. Classification: p_0..p_K-1
 * (probabilities), pred, max_prob, entropy and mutual_info (nan under the probit link);
 * regression: mean and variance per output. */
struct pred_csv {
    const double *a, *b;
    int64_t n, k;
    bool cls, probit;
};

static int emit_pred_csv(FILE *f, void *ctx) {
    const struct pred_csv *pc = ctx;
    const int64_t n = pc->n, k = pc->k;
    const double *a = pc->a, *b = pc->b;
    bool ok = true;
    if (pc->cls) {
        for (int64_t j = 0; j < k; j++) ok = ok && fprintf(f, "p_%lld,", (long long)j) > 0;
        ok = ok && fprintf(f, "pred,max_prob,entropy,mutual_info\n") > 0;
        for (int64_t i = 0; ok && i < n; i++) {
            const double *p = a + i * k;
            for (int64_t j = 0; j < k; j++) ok = ok && fprintf(f, "%.9g,", p[j]) > 0;
            int64_t c = bnn_argmax(p, k);
            ok = ok && fprintf(f, "%lld,%.9g,%.9g,", (long long)c, p[c], bnn_entropy(p, k)) > 0;
            ok = ok && (pc->probit ? fputs("nan\n", f) >= 0 : fprintf(f, "%.9g\n", b[i]) > 0);
        }
    } else {
        if (k == 1) ok = fprintf(f, "mean,var\n") > 0;
        else
            for (int64_t j = 0; j < k; j++)
                ok = ok && fprintf(f, "mean_%lld,var_%lld%s", (long long)j, (long long)j,
                                   j + 1 < k ? "," : "\n") > 0;
        for (int64_t i = 0; ok && i < n; i++)
            for (int64_t j = 0; j < k; j++)
                ok = ok && fprintf(f, "%.8g,%.8g%s", a[i * k + j], b[i * k + j],
                                   j + 1 < k ? "," : "\n") > 0;
    }
    return ok ? 0 : -1;
}

int cmd_predict(int argc, char **argv) {
    const char *cmd = "predict";
    cli_data_flags df = {.target_col = -1};
    const char *model_path = NULL, *input = NULL, *output = NULL, *split = "test";
    int64_t samples = -1, seed = 0, batch = 256, threads = 0, link = 0;
    const char *linkname = NULL;
    bnn_link lk = BNN_LINK_PROBIT;
    bool lrt = false;
    double temperature = 0;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model_path, "FILE", "the model file (required)", 0},
        {"data", 'd', OPT_STR, &df.data, "SPEC", "predict for a dataset's test split, or its training split with --split train (same specs as eval; default: the data the model was trained on)", 0},
        {"split", 0, OPT_STR, &split, "NAME", "the data's test split (default) or train (the whole training file, a model's hold-out included)", 0},
        {"input", 'i', OPT_STR, &input, "FILE", "predict for the features in FILE: CSV (no target column), NPY (.npy, .npy.gz) or IDX images; - for standard input", 0},
        {"output", 'o', OPT_STR, &output, "FILE", "write the CSV here (required)", 0},
        CLI_PREDICT_OPTS(samples, seed, link, linkname),
        CLI_LRT_OPT(lrt),
        {"temperature", 0, OPT_FLOAT, &temperature, "T", "divide the logits by T (default: the file's, else 1)", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N", "examples per forward pass (default 256)", 0},
        {"threads", 't', OPT_INT, &threads, "N", "threads (default and 0: all cores)", 0},
        {"target-col", 0, OPT_INT, &df.target_col, "N", "csv --data: target column, from 0 (default: the one the model was trained with)", 0},
        {"header", 0, OPT_FLAG, &df.header, NULL, "csv input: the first line is a header", 0},
        {"no-header", 0, OPT_FLAG, &df.no_header, NULL, "csv input: the first line is data", 0},
        CLI_QUIET_OPT,
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, nopts, cmd, pos, 0, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "-m MODEL [--data SPEC | --input FILE] -o out.csv",
                  "Writes one CSV row per example with a header line. Classification:\n"
                  "p_0..p_{K-1},pred,max_prob,entropy,mutual_info (mutual information is 0 for a\n"
                  "point estimate, nan for a Laplace posterior's probit predictive, which\n"
                  "has none: --link mc or bridge gives it; a bernoulli model gives p_0, p_1);\n"
                  "regression: mean,var (var includes the noise variance, for hetero-gaussian\n"
                  "the predicted one; mean_j,var_j with several targets). Input files are told\n"
                  "apart by their content (NumPy and IDX headers; else text is CSV), except\n"
                  "that a .npy or .npy.gz name is always read as NumPy.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (!model_path) return cli_usage_error(cmd, "-m MODEL is required");
    if (!output) return cli_usage_error(cmd, "-o FILE is required");
    if (df.data && input) return cli_usage_error(cmd, "give --data or --input, not both");
    if (strcmp(split, "test") && strcmp(split, "train"))
        return cli_usage_error(cmd, "--split must be test or train, got '%s'", split);
    if (input && cli_seen(opts, nopts, "split"))
        return cli_usage_error(cmd, "--split chooses a split of --data; an --input file is one "
                               "set");
    if (batch < 1) return cli_usage_error(cmd, "--batch-size must be >= 1");
    if (cli_check_predict_opts(cmd, opts, nopts, samples, seed, &link, linkname, &lk)) return 2;
    if (cli_seen(opts, nopts, "temperature") && cli_temperature_opt(cmd, temperature)) return 2;
    if (cli_set_threads(cmd, threads)) return 2;
    const bool from_stdin = input && !strcmp(input, "-");
    const char *shown = from_stdin ? "the standard input" : input; /* its name in messages */
    if ((rc = cli_check_output_of(cmd, output, model_path, from_stdin ? NULL : input, df.data)))
        return rc;
    int stdin_fd = -1;
    char stdin_path[32];

    bnn_model *m = NULL;
    bnn_st *st = NULL;
    bnn_posterior *q = NULL;
    bnn_dataset *ds = NULL;
    double *a = NULL, *b = NULL;
    bnn_task task;
    if ((rc = bnn_model_load(&m, model_path, &task, &st))) return cli_fail(cmd, rc, NULL);
    if ((rc = bnn_posterior_load(&q, m, st))) {
        rc = cli_fail(cmd, rc, model_path);
        goto done;
    }
    bnn_st_drop_tensors(st); /* only its metadata is read from here on */
    bool file_link; /* the link the file's prior was chosen with, taken */
    if ((rc = cli_check_applies(cmd, opts, nopts, model_path, st, task, bnn_model_lik(m, task),
                                q, samples, &lk, &link, &file_link)))
        goto done;
    samples = cli_samples_for(q, samples);
    if (!cli_seen(opts, nopts, "temperature") &&
        (rc = cli_meta_temperature(cmd, model_path, st, task, &temperature)))
        goto done;
    if (from_stdin) {
        if ((rc = stdin_to_file(cmd, &stdin_fd, stdin_path, sizeof stdin_path))) goto done;
        input = stdin_path;
    }
    if (input) {
        const in_format fmt = input_format(input);
        if (fmt == IN_UNKNOWN) {
            rc = cli_error(cmd, "%s is not CSV, NPY or IDX: its first bytes are neither text nor "
                           "a NumPy or IDX header", shown);
            goto done;
        }
        const bool npy_in = fmt == IN_NPY, csv_in = fmt == IN_CSV;
        if ((rc = cli_check_csv_flags(cmd, opts, nopts, NULL, csv_in))) goto done;
        if (df.header && df.no_header) {
            rc = cli_usage_error(cmd, "--header and --no-header exclude each other");
            goto done;
        }
        if (npy_in) {
            rc = bnn_npy_load(&ds, input, NULL, BNN_TASK_CLASSIFICATION);
        } else if (csv_in) {
            struct bnn_csv_params cp = bnn_csv_default_params();
            cp.target_col = BNN_CSV_NO_TARGET;
            cp.task = BNN_TASK_REGRESSION;
            if (df.header || df.no_header) cp.header_auto = false, cp.header = df.header;
            rc = bnn_csv_load(&ds, input, &cp);
        } else {
            char spec[4096];
            snprintf(spec, sizeof spec, "idx:%s", input);
            struct bnn_data_params dp = bnn_data_default_params();
            dp.split = "test";
            rc = bnn_data_load(&ds, spec, &dp);
        }
        if (rc) {
            /* A pipe was typed by its name: say so where IDX was only the fallback. */
            struct stat sb;
            if (fmt == IN_IDX && rc == BNN_EFORMAT && stat(input, &sb) == 0 &&
                !S_ISREG(sb.st_mode)) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", bnn_last_error());
                rc = cli_error(cmd, "%s (%s is not a regular file, so its format goes by its name: "
                               ".csv, .csv.gz or .txt for CSV, .npy or .npy.gz for NumPy, "
                               "anything else IDX)", msg, input);
                goto done;
            }
            if (from_stdin) { /* the reader named the temporary file: name what it holds */
                const char *e = bnn_last_error(), *at = strstr(e, stdin_path);
                rc = at ? cli_error(cmd, "%.*sthe standard input%s", (int)(at - e), e,
                                    at + strlen(stdin_path))
                        : cli_error(cmd, "the standard input: %s", e);
                goto done;
            }
            rc = cli_fail(cmd, rc, NULL);
            goto done;
        }
    } else {
        df.task = task == BNN_TASK_REGRESSION ? "regression" : "classification";
        df.seed = seed;
        const bool given = df.data != NULL;
        if ((rc = cli_model_data(cmd, model_path, st, &df, cli_seen(opts, nopts, "target-col"))) ||
            (rc = cli_check_csv_flags(cmd, opts, nopts, df.data, false)) ||
            /* the model's own data is known only now */
            (!given && (rc = cli_check_output_data(cmd, output, model_path, NULL, &df))))
            goto done;
        if ((rc = cli_load_data(cmd, &df, split, task, true, &ds))) goto done;
    }
    if ((rc = cli_check_seed_used(cmd, opts, nopts,
                                  cli_predict_draws(q, samples, link) ||
                                      (!input && cli_spec_uses_seed(df.data, st, false)))))
        goto done;
    /* k: classes (probabilities) or targets (mean and variance) of the predictive. */
    const int64_t n = bnn_dataset_n(ds), k = bnn_model_pred_dim(m, task);
    if (bnn_dataset_dim(ds) != bnn_model_input_dim(m)) {
        rc = cli_usage_error(cmd, "%s has %lld feature%s (columns) but model %s expects %lld",
                             input ? shown : df.data,
                             (long long)bnn_dataset_dim(ds),
                             bnn_dataset_dim(ds) == 1 ? "" : "s", bnn_model_spec(m),
                             (long long)bnn_model_input_dim(m));
        goto done;
    }
    if ((rc = cli_note_range(cmd, input ? shown : df.data, ds, model_path, st))) goto done;
    if (file_link) cli_note_link(model_path, lk); /* once the options and the data stand */
    cli_note_bridge_temperature(model_path, q, samples, lk, temperature);
    a = malloc((size_t)(n * k) * sizeof(double));
    b = malloc((size_t)(n * (task == BNN_TASK_REGRESSION ? k : 1)) * sizeof(double));
    if (!a || !b) {
        rc = cli_error(cmd, "out of memory");
        goto done;
    }
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = samples, pp.seed = (uint64_t)seed, pp.batch_size = batch;
    pp.temperature = temperature, pp.link_samples = link, pp.link = lk, pp.local_reparam = lrt;
    if ((rc = cli_meta_positive(cmd, model_path, "bnn.sigma", bnn_st_meta(st, "bnn.sigma"),
                                &pp.sigma)))
        goto done;
    /* Probabilities as eval and compare take them, from the log-probabilities (the same bits
     * as the ones they score). */
    pp.log_probs = task == BNN_TASK_CLASSIFICATION;
    rc = task == BNN_TASK_CLASSIFICATION
             ? bnn_predict(m, q, bnn_dataset_cx(ds), n, task, &pp, a, b, NULL, NULL)
             : bnn_predict(m, q, bnn_dataset_cx(ds), n, task, &pp, NULL, NULL, a, b);
    if (rc) {
        rc = cli_fail(cmd, rc, NULL);
        goto done;
    }
    if (task == BNN_TASK_CLASSIFICATION)
        for (int64_t i = 0; i < n * k; i++) a[i] = exp(a[i]);
    /* The probit approximation gives the predictive's probabilities, not the spread of draws
     * or the Dirichlet behind them: its mutual information is unknown (nan), not 0 as for a
     * point estimate. */
    struct pred_csv pc = {a, b, n, k, task == BNN_TASK_CLASSIFICATION,
                          bnn_posterior_kind_of(q) == BNN_POSTERIOR_LAPLACE && samples == 0 &&
                              lk == BNN_LINK_PROBIT};
    /* Printed straight into the output's temporary file (bnn_write_file_emit: a temporary name,
     * then a rename), so a failure never leaves half a file and the text is never all in
     * memory. */
    if ((rc = bnn_write_file_emit(output, emit_pred_csv, &pc))) {
        rc = cli_fail(cmd, rc, NULL);
        goto done;
    }
    if (!cli_quiet)
        fprintf(stderr, "wrote %lld prediction%s to %s\n", (long long)n, n == 1 ? "" : "s",
                cli_out_name(output));
    rc = 0;
done:
    if (stdin_fd >= 0) close(stdin_fd);
    free(a), free(b);
    bnn_posterior_free(q);
    bnn_st_free(st);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    return rc;
}
