/* bnn eval: metrics of a saved model or posterior on a test split, as a table and as JSON. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Adds an array of n doubles (or of int64 counts when ints is not NULL) to o. */
static bool add_array(cJSON *o, const char *name, const double *v, const int64_t *ints, int64_t n) {
    cJSON *a = cJSON_AddArrayToObject(o, name);
    if (!a) return false;
    for (int64_t i = 0; i < n; i++) {
        cJSON *x = cJSON_CreateNumber(ints ? (double)ints[i] : v[i]);
        if (!x) return false;
        cJSON_AddItemToArray(a, x);
    }
    return true;
}

static int write_json(const char *cmd, const char *path, const char *model_path, const bnn_model *m,
                      const char *data, const char *split, const char *posterior, int64_t samples,
                      const struct bnn_eval_result *r, double sigma) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    ok = ok && cJSON_AddStringToObject(o, "model", model_path);
    ok = ok && cJSON_AddStringToObject(o, "spec", bnn_model_spec(m));
    ok = ok && cJSON_AddStringToObject(o, "data", data);
    ok = ok && cJSON_AddStringToObject(o, "split", split);
    ok = ok && cJSON_AddStringToObject(o, "task", r->task == BNN_TASK_REGRESSION ? "regression"
                                                                                : "classification");
    ok = ok && cJSON_AddStringToObject(o, "posterior", posterior);
    ok = ok && cJSON_AddNumberToObject(o, "samples", (double)samples);
    ok = ok && cJSON_AddNumberToObject(o, "n", (double)r->n);
    ok = ok && cJSON_AddNumberToObject(o, "nll", r->nll);
    if (r->task == BNN_TASK_CLASSIFICATION) {
        const struct bnn_cls_metrics *c = &r->cls;
        ok = ok && cJSON_AddNumberToObject(o, "accuracy", c->accuracy);
        ok = ok && cJSON_AddNumberToObject(o, "brier", c->brier);
        ok = ok && cJSON_AddNumberToObject(o, "ece", c->ece);
        ok = ok && cJSON_AddNumberToObject(o, "mce", c->mce);
        ok = ok && cJSON_AddNumberToObject(o, "mean_entropy", c->mean_entropy);
        ok = ok && cJSON_AddNumberToObject(o, "mean_mutual_info", r->mean_mi);
        cJSON *rel = ok ? cJSON_AddObjectToObject(o, "reliability") : NULL;
        ok = ok && rel && cJSON_AddNumberToObject(rel, "bins", (double)c->nbins);
        ok = ok && add_array(rel, "count", NULL, c->bin_count, c->nbins);
        ok = ok && add_array(rel, "accuracy", c->bin_accuracy, NULL, c->nbins);
        ok = ok && add_array(rel, "confidence", c->bin_confidence, NULL, c->nbins);
    } else {
        ok = ok && cJSON_AddNumberToObject(o, "rmse", r->rmse);
        ok = ok && cJSON_AddNumberToObject(o, "sigma", sigma);
        ok = ok && cJSON_AddNumberToObject(o, "coverage_1sd", r->reg.coverage_1sd);
        ok = ok && cJSON_AddNumberToObject(o, "coverage_2sd", r->reg.coverage_2sd);
    }
    char *text = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) return cli_error(cmd, "out of memory while writing %s", path);
    size_t len = strlen(text);
    char *withnl = malloc(len + 2);
    int rc;
    if (withnl) {
        memcpy(withnl, text, len);
        withnl[len] = '\n', withnl[len + 1] = '\0';
        rc = cli_write_atomic(cmd, path, withnl);
    } else {
        rc = cli_error(cmd, "out of memory");
    }
    free(text);
    free(withnl);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    cli_data_flags df = {.target_col = -1};
    const char *model_path = NULL, *json_path = NULL, *split = "test";
    int64_t batch = 256, threads = 0, samples = -1, bins = 15, seed = 0;
    double sigma = 0;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model_path, "FILE", "the model file written by bnn train (required)", 0},
        {"data", 'd', OPT_STR, &df.data, "SPEC", "data to evaluate on (default: the training data's spec)", 0},
        {"split", 0, OPT_STR, &split, "NAME", "test (default) or train", 0},
        {"samples", 'S', OPT_INT, &samples, "S", "weight samples to average (0: predict at the mean; default 32 for a posterior, 0 for a point estimate)", 0},
        {"seed", 's', OPT_INT, &seed, "N", "seed of the weight samples and toy data (default 0)", 0},
        {"bins", 0, OPT_INT, &bins, "N", "reliability-diagram bins for ECE (default 15)", 0},
        {"json", 0, OPT_STR, &json_path, "FILE", "also write the metrics and reliability bins as JSON", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N", "examples per forward pass (default 256)", 0},
        {"noise", 0, OPT_FLOAT, &sigma, "SIGMA", "regression: noise std for the NLL (default: the training value)", 0},
        {"threads", 't', OPT_INT, &threads, "N", "threads (default: all cores)", 0},
        {"target-col", 0, OPT_INT, &df.target_col, "N", "csv data: target column (default: as trained)", 0},
        {"header", 0, OPT_FLAG, &df.header, NULL, "csv data: the first line is a header", 0},
        {"no-header", 0, OPT_FLAG, &df.no_header, NULL, "csv data: the first line is data", 0},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, nopts, cmd, pos, 1, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "-m MODEL [--data SPEC] [--samples S] [--json FILE]",
                  "Evaluates a saved model or posterior. Classification: accuracy, NLL, Brier\n"
                  "score, ECE and MCE (equal-width bins over the top-class confidence), mean\n"
                  "predictive entropy and mutual information. Regression: RMSE, Gaussian NLL and\n"
                  "the coverage of the ±1σ and ±2σ intervals. A posterior predicts by Monte-Carlo\n"
                  "model averaging over --samples weight draws.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (!model_path && npos == 1) model_path = pos[0];
    if (!model_path) return cli_usage_error(cmd, "-m MODEL is required");
    if (strcmp(split, "test") && strcmp(split, "train"))
        return cli_usage_error(cmd, "--split must be test or train, got '%s'", split);
    if (batch < 1) return cli_usage_error(cmd, "--batch-size must be >= 1");
    if (bins < 1 || bins > BNN_MAX_BINS)
        return cli_usage_error(cmd, "--bins must be between 1 and %d", BNN_MAX_BINS);
    if (cli_seen(opts, nopts, "samples") && samples < 0)
        return cli_usage_error(cmd, "--samples must be >= 0");
    if (seed < 0) return cli_usage_error(cmd, "--seed must be >= 0");
    if (threads < 0) return cli_usage_error(cmd, "--threads must be >= 1");
    if (threads) bnn_set_threads((int)threads);

    bnn_model *m = NULL;
    bnn_dataset *ds = NULL;
    bnn_st *st = NULL;
    bnn_posterior *q = NULL;
    bnn_task task;
    if ((rc = bnn_model_load(&m, model_path, &task, &st))) return cli_fail(cmd, rc, NULL);
    if ((rc = bnn_posterior_load(&q, m, st))) {
        rc = cli_fail(cmd, rc, model_path);
        goto done;
    }
    const bool diag = bnn_posterior_kind_of(q) == BNN_POSTERIOR_DIAG;
    if (samples < 0) samples = diag ? 32 : 0;
    if (!df.data) {
        df.data = bnn_st_meta(st, "bnn.data");
        const char *tc = bnn_st_meta(st, "bnn.data.target_col"), *hd = bnn_st_meta(st, "bnn.data.header");
        if (!cli_seen(opts, nopts, "target-col") && tc) df.target_col = strtoll(tc, NULL, 10);
        if (!df.header && !df.no_header && hd) {
            df.header = !strcmp(hd, "yes");
            df.no_header = !strcmp(hd, "no");
        }
    }
    if (!df.data) {
        rc = cli_usage_error(cmd, "%s does not record its data; pass --data SPEC", model_path);
        goto done;
    }
    df.seed = seed;
    df.task = task == BNN_TASK_REGRESSION ? "regression" : "classification";
    if ((rc = cli_load_data(cmd, &df, split, task, true, &ds))) goto done;
    if (bnn_dataset_task(ds) != task) {
        rc = cli_error(cmd, "%s is a %s model but %s is %s data", model_path, df.task, df.data,
                       bnn_dataset_task(ds) == BNN_TASK_REGRESSION ? "regression"
                                                                   : "classification");
        goto done;
    }
    if (!cli_seen(opts, nopts, "noise")) {
        const char *s = bnn_st_meta(st, "bnn.sigma");
        sigma = s ? strtod(s, NULL) : 1.0;
    }
    if (!(sigma > 0)) {
        rc = cli_usage_error(cmd, "--noise must be positive");
        goto done;
    }
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = samples, pp.seed = (uint64_t)seed, pp.batch_size = batch, pp.sigma = sigma;
    struct bnn_eval_result r;
    if ((rc = bnn_evaluate(m, q, ds, &pp, bins, &r))) {
        rc = cli_fail(cmd, rc, NULL);
        goto done;
    }
    const char *post = diag ? "diag" : "point";
    const char *how = !diag ? "point estimate" : samples ? "Monte-Carlo average" : "posterior mean";
    printf("model      %s (%s, %lld parameters)\n", model_path, bnn_model_spec(m),
           (long long)bnn_model_nparams(m));
    if (diag) {
        double lo, mean, hi;
        bnn_posterior_std_summary(q, &lo, &mean, &hi);
        printf("posterior  diagonal Gaussian, std min %.3g mean %.3g max %.3g\n", lo, mean, hi);
    }
    printf("predict    %s%s", how, diag && samples ? "" : "\n");
    if (diag && samples) printf(" over %lld samples (seed %lld)\n", (long long)samples, (long long)seed);
    printf("data       %s, %s split, %lld examples\n", df.data, split, (long long)r.n);
    if (task == BNN_TASK_CLASSIFICATION) {
        printf("accuracy   %.4f\n", r.cls.accuracy);
        printf("nll        %.4f\n", r.cls.nll);
        printf("brier      %.4f\n", r.cls.brier);
        printf("ece        %.4f   (%lld bins)\n", r.cls.ece, (long long)bins);
        printf("mce        %.4f\n", r.cls.mce);
        printf("entropy    %.4f   (mean predictive entropy, nats)\n", r.cls.mean_entropy);
        if (diag && samples) printf("mutual inf %.4f   (mean, nats)\n", r.mean_mi);
    } else {
        printf("rmse       %.4f\n", r.rmse);
        printf("nll        %.4f   (Gaussian, noise std %g)\n", r.nll, sigma);
        printf("coverage   %.3f within 1 sd, %.3f within 2 sd\n", r.reg.coverage_1sd,
               r.reg.coverage_2sd);
    }
    if (json_path && (rc = write_json(cmd, json_path, model_path, m, df.data, split, post,
                                      diag ? samples : 0, &r, sigma)))
        goto done;
    rc = 0;
done:
    bnn_posterior_free(q);
    bnn_st_free(st);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    return rc;
}
