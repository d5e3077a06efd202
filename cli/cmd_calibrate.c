/* bnn calibrate: temperature scaling (Guo et al., ICML 2017), the non-Bayesian calibration
 * baseline: one temperature fitted on held-out data by minimising NLL, stored in a copy of the
 * model file and applied by eval and predict. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Copies every tensor and metadata pair of st to path, with bnn.temperature set to T. */
static int save_with_temperature(const char *cmd, const bnn_st *st, const char *path, double T) {
    bnn_st_writer *w;
    int rc = bnn_st_writer_new(&w);
    if (rc) return cli_fail(cmd, rc, NULL);
    char tv[40];
    cli_fmt_double(tv, sizeof tv, T);
    for (int64_t i = 0; !rc && i < bnn_st_meta_count(st); i++) {
        const char *k, *v;
        if ((rc = bnn_st_meta_at(st, i, &k, &v))) break;
        if (strcmp(k, "bnn.temperature")) rc = bnn_st_writer_meta(w, k, v);
    }
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.temperature", tv);
    for (int64_t i = 0; !rc && i < bnn_st_count(st); i++) {
        bnn_st_tensor t;
        if (!(rc = bnn_st_at(st, i, &t)))
            rc = bnn_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data);
    }
    if (!rc) rc = bnn_st_writer_save(w, path);
    bnn_st_writer_free(w);
    return rc ? cli_fail(cmd, rc, "cannot write the calibrated model") : 0;
}

int cmd_calibrate(int argc, char **argv) {
    const char *cmd = "calibrate";
    cli_data_flags df = {.target_col = -1};
    const char *model_path = NULL, *output = NULL, *split = "test";
    int64_t batch = 256, threads = 0;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model_path, "FILE", "the model file (required)", 0},
        {"output", 'o', OPT_STR, &output, "FILE", "write the calibrated model here (required)", 0},
        {"data", 'd', OPT_STR, &df.data, "SPEC", "validation data (default: the examples held out by train --holdout; also when SPEC reads the model's training file)", 0},
        {"split", 0, OPT_STR, &split, "NAME", "split of --data to use (default test; a test "
         "split T is fitted on no longer scores the model without bias)", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N", "examples per forward pass (default 256)", 0},
        {"threads", 't', OPT_INT, &threads, "N", "threads (default and 0: all cores)", 0},
        CLI_CSV_OPTS(df),
        CLI_QUIET_OPT,
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, nopts, cmd, pos, 0, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "-m MODEL -o CALIBRATED [--data SPEC]",
                  "Fits one temperature T on validation data by minimising the NLL of\n"
                  "softmax(logits / T) and writes a copy of the model that eval and predict\n"
                  "apply it to. Train with --holdout N to keep a validation split aside.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (!model_path || !output) return cli_usage_error(cmd, "-m MODEL and -o FILE are required");
    if (cli_check_file_output(cmd, output, "calibrated model")) return 2;
    if (!df.data && cli_seen(opts, nopts, "split"))
        return cli_usage_error(cmd, "--split chooses a split of --data (without it, the model's "
                               "hold-out is used)");
    if (batch < 1) return cli_usage_error(cmd, "--batch-size must be >= 1");
    if (cli_set_threads(cmd, threads)) return 2;
    bnn_model *m = NULL;
    bnn_st *st = NULL;
    bnn_dataset *all = NULL, *val = NULL;
    float *logits = NULL;
    bnn_task task;
    if ((rc = bnn_model_load(&m, model_path, &task, &st))) return cli_fail(cmd, rc, NULL);
    if (task != BNN_TASK_CLASSIFICATION) {
        rc = cli_usage_error(cmd, "temperature scaling is for classification models; %s is a "
                             "%s regression model", model_path,
                             bnn_lik_name(bnn_model_lik(m, task)));
        goto done;
    }
    /* Temperature scaling rescales one network's logits; a posterior predicts by averaging over
     * weights (or by its GLM predictive), which a temperature fitted to the mean's logits would
     * not calibrate. */
    const char *post = cli_posterior_name(st);
    if (post && strcmp(post, "point")) {
        rc = cli_usage_error(cmd, "%s holds a posterior (%.40s); temperature scaling is the "
                             "calibration baseline for a point estimate (a MAP network from "
                             "adamw or sgd)",
                             model_path, post);
        goto done;
    }
    /* The file's metadata is copied into the output: check it as eval will read it. */
    double sigma_unused = 1.0;
    if ((rc = cli_meta_positive(cmd, model_path, "bnn.sigma", bnn_st_meta(st, "bnn.sigma"),
                                &sigma_unused)))
        goto done;
    const bool bern = bnn_model_lik(m, task) == BNN_LIK_BERNOULLI;
    const bool given_data = df.data != NULL;
    /* Without --data, and with a --data split that reads the model's own training file, the fit
     * is on the model's hold-out (the last rows of that file): a temperature fitted on the
     * examples trained on calibrates the fit, not new data. */
    const bool held_out = !given_data || cli_reads_trained_rows(st, df.data, split);
    int64_t holdout = 0;
    if (held_out) {
        const char *ho = bnn_st_meta(st, "bnn.data.holdout");
        if ((rc = cli_meta_count(cmd, model_path, "bnn.data.holdout", ho, &holdout))) goto done;
        if (holdout <= 0 || !bnn_st_meta(st, "bnn.data")) {
            if (given_data)
                rc = cli_usage_error(cmd, "--data %s%s%s reads the examples %s was trained on, "
                                     "all of them: a temperature fitted there would calibrate the "
                                     "fit, not new data; pass other validation data, or train "
                                     "with --holdout N", df.data,
                                     cli_one_split(df.data) ? "" : ", split ",
                                     cli_one_split(df.data) ? "" : split, model_path);
            else
                rc = cli_usage_error(cmd, "%s was trained on all its training data; pass "
                                     "validation data with --data SPEC, or train with --holdout N",
                                     model_path);
            goto done;
        }
    }
    /* --data, or the model's own data read as it was trained. The model itself may be updated in
     * place (the write is atomic); its data may not. */
    df.task = "classification";
    if ((rc = cli_check_csv_flags(cmd, opts, nopts,
                                  given_data ? df.data : bnn_st_meta(st, "bnn.data"), false)) ||
        (rc = cli_model_data(cmd, model_path, st, &df, cli_seen(opts, nopts, "target-col"))) ||
        (rc = cli_check_output_data(cmd, output, NULL, NULL, &df)))
        goto done;
    if (!held_out) {
        if ((rc = cli_load_data(cmd, &df, split, BNN_TASK_CLASSIFICATION, true, &val))) goto done;
    } else {
        /* (--data's split that reads the training file, or the model's own train split) */
        if ((rc = cli_load_data(cmd, &df, given_data ? split : "train", BNN_TASK_CLASSIFICATION,
                                true, &all)))
            goto done;
        const int64_t n = bnn_dataset_n(all);
        if (holdout >= n || (rc = bnn_dataset_slice(&val, all, n - holdout, n))) {
            rc = cli_error(cmd, "the held-out split (%lld examples) does not fit %s", (long long)holdout,
                           df.data);
            goto done;
        }
    }
    /* k: the classes. A Bernoulli logit f enters as the 2-class logits (0, f): softmax((0, f)/T)
     * is (1 − sigmoid(f/T), sigmoid(f/T)), so this is temperature scaling of the Bernoulli. */
    const int64_t n = bnn_dataset_n(val), k = bnn_model_pred_dim(m, task);
    const int64_t d = bnn_model_input_dim(m);
    if ((rc = cli_check_data(cmd, df.data, val, m, task, true, model_path, st))) goto done;
    logits = malloc((size_t)(n * k) * sizeof(float));
    if (batch > n) batch = n; /* activations for more rows than there are cost memory only */
    if (!logits || (rc = bnn_model_reserve(m, batch))) {
        rc = logits ? cli_fail(cmd, rc, NULL) : cli_error(cmd, "out of memory");
        goto done;
    }
    for (int64_t lo = 0; lo < n; lo += batch) {
        int64_t b = lo + batch <= n ? batch : n - lo;
        const float *f = bnn_model_forward(m, bnn_model_cparams(m), bnn_dataset_cx(val) + lo * d, b,
                                           false, NULL);
        if (bern)
            for (int64_t i = 0; i < b; i++) logits[(lo + i) * 2] = 0.0f, logits[(lo + i) * 2 + 1] = f[i];
        else
            memcpy(logits + lo * k, f, (size_t)(b * k) * sizeof(float));
    }
    double T;
    if ((rc = bnn_temperature_fit(&T, logits, bnn_dataset_clabels(val), n, k))) {
        rc = cli_fail(cmd, rc, NULL);
        goto done;
    }
    /* The validation NLL before (at the file's temperature: a calibrated file is refitted, and
     * T = 1 would not be what it predicted) and after, as the evidence that T helps. */
    double T0;
    if ((rc = cli_meta_temperature(cmd, model_path, st, BNN_TASK_CLASSIFICATION, &T0))) goto done;
    struct bnn_predict_params pp = bnn_predict_default_params();
    struct bnn_eval_result r1, r2;
    pp.temperature = T0;
    if ((rc = bnn_evaluate(m, NULL, val, &pp, 15, &r1))) goto fail_eval;
    pp.temperature = T;
    if ((rc = bnn_evaluate(m, NULL, val, &pp, 15, &r2))) goto fail_eval;
    if (!isfinite(r2.nll)) {
        rc = cli_error(cmd, "the validation NLL is not finite even at the fitted temperature "
                       "(%g): the model's predictions are unusable; not saved", T);
        goto done;
    }
    if (!held_out && cli_one_split(df.data))
        printf("temperature %.4f   (fitted on %lld examples of %s)\n", T, (long long)n, df.data);
    else if (!held_out)
        printf("temperature %.4f   (fitted on %lld examples of %s, %s split)\n", T, (long long)n,
               df.data, split);
    else
        printf("temperature %.4f   (fitted on %lld held-out examples of %s)\n", T, (long long)n,
               df.data);
    printf("validation  nll %.4f -> %.4f, ece %.4f -> %.4f", r1.nll, r2.nll, r1.cls.ece,
           r2.cls.ece);
    if (T0 != 1.0) printf("   (before: at the file's temperature %.4g)", T0);
    printf("\n");
    /* bnn_temperature_fit returns a bound of its search, [1e-3, 1e3], when the optimum lies
     * beyond it. */
    if (T <= 1e-3)
        fprintf(stderr, "note: the temperature stopped at its lower bound 0.001: the logits "
                "separate the %lld validation examples perfectly, so a smaller one would always "
                "fit them better (more validation data?)\n", (long long)n);
    else if (T >= 1e3)
        fprintf(stderr, "note: the temperature stopped at its upper bound 1000: on these %lld "
                "validation examples the logits tell nothing (or the opposite) about the labels, "
                "so the calibrated model predicts about uniformly\n", (long long)n);
    if ((rc = cli_check_stdout(cmd)) || (rc = save_with_temperature(cmd, st, output, T))) goto done;
    if (!cli_quiet) fprintf(stderr, "saved %s\n", cli_out_name(output));
    rc = 0;
    goto done;
fail_eval:
    rc = cli_fail(cmd, rc, NULL);
done:
    free(logits);
    bnn_model_free(m);
    bnn_st_free(st);
    bnn_dataset_free(all);
    bnn_dataset_free(val);
    return rc;
}
