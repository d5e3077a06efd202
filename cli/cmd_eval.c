/* bnn eval: metrics of a saved model on a test split, as a table and optionally as JSON. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    cli_data_flags df = {.target_col = -1};
    const char *model_path = NULL, *json_path = NULL, *split = "test";
    int64_t batch = 256, threads = 0;
    double sigma = 0;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model_path, "FILE", "the model file written by bnn train (required)", 0},
        {"data", 'd', OPT_STR, &df.data, "SPEC", "data to evaluate on (default: the training data's spec)", 0},
        {"split", 0, OPT_STR, &split, "NAME", "test (default) or train", 0},
        {"json", 0, OPT_STR, &json_path, "FILE", "also write the metrics as a JSON object", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N", "examples per forward pass (default 256)", 0},
        {"noise", 0, OPT_FLOAT, &sigma, "SIGMA", "regression: noise std for the NLL (default: the training value)", 0},
        {"seed", 's', OPT_INT, &df.seed, "N", "seed of the toy data generators (default 0)", 0},
        {"threads", 't', OPT_INT, &threads, "N", "threads (default: all cores)", 0},
        {"target-col", 0, OPT_INT, &df.target_col, "N", "csv data: target column (default -1)", 0},
        {"header", 0, OPT_FLAG, &df.header, NULL, "csv data: the first line is a header", 0},
        {"no-header", 0, OPT_FLAG, &df.no_header, NULL, "csv data: the first line is data", 0},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, nopts, cmd, pos, 1, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "-m MODEL [--data SPEC] [--json FILE]",
                  "Evaluates a saved model: accuracy and negative log-likelihood (NLL) for\n"
                  "classification, RMSE and Gaussian NLL for regression.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (!model_path && npos == 1) model_path = pos[0];
    if (!model_path) return cli_usage_error(cmd, "-m MODEL is required");
    if (strcmp(split, "test") && strcmp(split, "train"))
        return cli_usage_error(cmd, "--split must be test or train, got '%s'", split);
    if (batch < 1) return cli_usage_error(cmd, "--batch-size must be >= 1");
    if (threads < 0) return cli_usage_error(cmd, "--threads must be >= 1");
    if (threads) bnn_set_threads((int)threads);

    bnn_model *m = NULL;
    bnn_dataset *ds = NULL;
    bnn_st *st = NULL;
    bnn_task task;
    if ((rc = bnn_model_load(&m, model_path, &task, &st))) return cli_fail(cmd, rc, NULL);
    if (!df.data) df.data = bnn_st_meta(st, "bnn.data");
    if (!df.data) {
        rc = cli_usage_error(cmd, "%s does not record its data; pass --data SPEC", model_path);
        goto done;
    }
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
    if ((rc = bnn_model_reserve(m, batch))) {
        rc = cli_fail(cmd, rc, NULL);
        goto done;
    }
    bnn_lik lik = {task == BNN_TASK_REGRESSION ? BNN_LIK_GAUSSIAN : BNN_LIK_CATEGORICAL, sigma};
    struct bnn_eval_result r;
    if ((rc = bnn_evaluate(m, ds, &lik, &r))) {
        rc = cli_fail(cmd, rc, NULL);
        goto done;
    }
    printf("model     %s (%s, %lld parameters)\n", model_path, bnn_model_spec(m),
           (long long)bnn_model_nparams(m));
    printf("data      %s, %s split, %lld examples\n", df.data, split, (long long)r.n);
    if (task == BNN_TASK_CLASSIFICATION) {
        printf("accuracy  %.4f\n", r.accuracy);
        printf("nll       %.4f\n", r.nll);
    } else {
        printf("rmse      %.4f\n", r.rmse);
        printf("nll       %.4f   (Gaussian, noise std %g)\n", r.nll, sigma);
    }
    if (json_path) {
        cJSON *o = cJSON_CreateObject();
        char *text = NULL;
        bool ok = o != NULL;
        ok = ok && cJSON_AddStringToObject(o, "model", model_path);
        ok = ok && cJSON_AddStringToObject(o, "spec", bnn_model_spec(m));
        ok = ok && cJSON_AddStringToObject(o, "data", df.data);
        ok = ok && cJSON_AddStringToObject(o, "split", split);
        ok = ok && cJSON_AddStringToObject(o, "task", df.task);
        ok = ok && cJSON_AddNumberToObject(o, "n", (double)r.n);
        if (task == BNN_TASK_CLASSIFICATION) {
            ok = ok && cJSON_AddNumberToObject(o, "accuracy", r.accuracy);
        } else {
            ok = ok && cJSON_AddNumberToObject(o, "rmse", r.rmse);
            ok = ok && cJSON_AddNumberToObject(o, "sigma", sigma);
        }
        ok = ok && cJSON_AddNumberToObject(o, "nll", r.nll);
        if (ok) text = cJSON_Print(o);
        cJSON_Delete(o);
        if (!text) {
            rc = cli_error(cmd, "out of memory while writing %s", json_path);
            goto done;
        }
        size_t len = strlen(text);
        char *withnl = malloc(len + 2);
        if (withnl) {
            memcpy(withnl, text, len);
            withnl[len] = '\n', withnl[len + 1] = '\0';
        }
        free(text);
        rc = withnl ? cli_write_atomic(cmd, json_path, withnl) : cli_error(cmd, "out of memory");
        free(withnl);
        if (rc) goto done;
    }
    rc = 0;
done:
    bnn_st_free(st);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    return rc;
}
