/* bnn eval: metrics of a saved model or posterior on a test split, out-of-distribution detection
 * and a rotation sweep, as a table, as JSON and as SVG plots. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const score_names[NSCORES] = {"max_prob", "entropy", "mutual_info"};

typedef struct ood_result {
    const char *spec;
    int64_t n;
    double auroc[NSCORES], aupr[NSCORES], mean_entropy, mean_mi;
} ood_result;

typedef struct shift_result {
    double angle, accuracy, nll, ece, mean_entropy;
} shift_result;

static cJSON *numbers(const double *v, const int64_t *ints, int64_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber(ints ? (double)ints[i] : v[i]);
        if (!x) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, x);
    }
    return a;
}

/* Everything as one JSON object (the schema is in docs/eval.schema.json). */
static int write_json(const char *cmd, const char *path, cJSON *o) {
    char *text = cJSON_Print(o);
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
    const char *model_path = NULL, *json_path = NULL, *split = "test", *plot = NULL;
    const char *shift = NULL;
    cli_list ood = {0};
    int64_t batch = 256, threads = 0, samples = -1, bins = 15, seed = 0, link = 0;
    const char *linkname = NULL;
    bnn_link lk = BNN_LINK_PROBIT;
    bool lrt = false;
    double sigma = 0, temperature = 0;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model_path, "FILE", "the model file written by bnn train, laplace, von or calibrate (required)", 0},
        {"data", 'd', OPT_STR, &df.data, "SPEC", "data to evaluate on (default: the training data's spec)", 0},
        {"split", 0, OPT_STR, &split, "NAME", "test (default) or train (the whole training file, a model's hold-out included)", 0},
        CLI_PREDICT_OPTS(samples, seed, link, linkname),
        CLI_LRT_OPT(lrt),
        {"ood", 0, OPT_LIST, &ood, "SPEC", "out-of-distribution data (repeatable; classifiers): AUROC and AUPR of each uncertainty score, e.g. fmnist:flip, noise", 0},
        {"shift", 0, OPT_STR, &shift, "rot", "sweep rotations 0..180 degrees in 15-degree steps of fmnist data (classifiers): accuracy, NLL, ECE per angle (the same weight samples at every angle)", 0},
        {"bins", 0, OPT_INT, &bins, "N", "classifiers: reliability-diagram bins for ECE, 1 to 256 (default 15)", 0},
        {"json", 0, OPT_STR, &json_path, "FILE", "also write every number (reliability bins, OOD, shift) as JSON", 0},
        {"plot", 0, OPT_STR, &plot, "FILE.svg", "write the reliability diagram (with --shift: the sweep) as SVG (classifiers)", 0},
        {"temperature", 0, OPT_FLOAT, &temperature, "T", "divide the logits by T (default: the file's, from bnn calibrate, else 1)", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N", "examples per forward pass (default 256)", 0},
        {"noise", 0, OPT_FLOAT, &sigma, "SIGMA", "regression: noise std for the NLL (default: the file's: the training value, or the one a Laplace marglik tuned)", 0},
        {"threads", 't', OPT_INT, &threads, "N", "threads (default and 0: all cores)", 0},
        CLI_CSV_OPTS(df),
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, nopts, cmd, pos, 1, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "[-m] MODEL [--data SPEC] [--samples S] [--ood SPEC]... [--shift rot] [--json FILE] [--plot FILE.svg]",
                  "Evaluates a saved model or posterior. Classification: accuracy, NLL, Brier\n"
                  "score, ECE and MCE (equal-width bins over the top-class confidence), mean\n"
                  "predictive entropy and mutual information; with --ood, how well each\n"
                  "uncertainty score separates the test data from other data (AUROC, AUPR).\n"
                  "Regression: RMSE, the NLL of the Gaussian with the predictive's mean and\n"
                  "variance, and the coverage of its ±1σ and ±2σ intervals; averaged over\n"
                  "samples, also the NLL under the samples' mixture itself ('nll mix').\n"
                  "An IVON or MFVI posterior predicts by Monte-Carlo model averaging over\n"
                  "--samples draws; a Laplace or VON posterior by its linearised (GLM)\n"
                  "predictive, or by sampling with --samples S > 0.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (model_path && npos)
        return cli_usage_error(cmd, "unexpected argument '%s' (the model is given by -m)", pos[0]);
    if (!model_path && npos == 1) model_path = pos[0];
    if (!model_path) return cli_usage_error(cmd, "a model is required (-m MODEL, or MODEL alone)");
    if (strcmp(split, "test") && strcmp(split, "train"))
        return cli_usage_error(cmd, "--split must be test or train, got '%s'", split);
    if (batch < 1) return cli_usage_error(cmd, "--batch-size must be >= 1");
    if (bins < 1 || bins > BNN_MAX_BINS)
        return cli_usage_error(cmd, "--bins must be between 1 and %d", BNN_MAX_BINS);
    if (cli_check_predict_opts(cmd, opts, nopts, samples, seed, &link, linkname, &lk)) return 2;
    if (shift && strcmp(shift, "rot")) return cli_usage_error(cmd, "--shift supports 'rot' only");
    if (cli_seen(opts, nopts, "temperature") && cli_temperature_opt(cmd, temperature)) return 2;
    if (cli_set_threads(cmd, threads)) return 2;
    if (cli_same_path(json_path, plot))
        return cli_usage_error(cmd, "--json and --plot name the same file");
    if (plot && cli_raster_name(plot))
        return cli_usage_error(cmd, "--plot writes SVG (a vector picture every browser shows); "
                               "name it .svg, not %s", plot);

    bnn_model *m = NULL;
    bnn_dataset *ds = NULL;
    bnn_st *st = NULL;
    bnn_posterior *q = NULL;
    pred in = {0};
    ood_result oods[CLI_LIST_MAX];
    shift_result shifts[13];
    int nshift = 0;
    cJSON *js = NULL;
    bool held = false; /* the plot and the report are written together */
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
    const bnn_posterior_kind kind = bnn_posterior_kind_of(q);
    const bool diag = kind == BNN_POSTERIOR_DIAG, lap = kind == BNN_POSTERIOR_LAPLACE;
    /* A diagonal posterior predicts by sampling; a Laplace posterior by its GLM predictive. */
    samples = cli_samples_for(q, samples);
    const bool sampled = kind != BNN_POSTERIOR_POINT && samples > 0;
    /* Mutual information exists for a sampled predictive, for Monte-Carlo over a Laplace
     * posterior's linearised logits and for the Laplace bridge's Dirichlet. */
    const bool has_mi =
        sampled || (lap && lk != BNN_LINK_PROBIT && task == BNN_TASK_CLASSIFICATION);
    if (!cli_seen(opts, nopts, "temperature")) {
        if ((rc = cli_meta_temperature(cmd, model_path, st, task, &temperature))) goto done;
    }
    df.seed = seed;
    if ((rc = cli_model_data(cmd, model_path, st, &df, cli_seen(opts, nopts, "target-col"))) ||
        (rc = cli_check_csv_flags(cmd, opts, nopts, df.data, false)))
        goto done;
    bool seeded = cli_predict_draws(q, samples, link) || cli_spec_uses_seed(df.data, st, false);
    for (int o = 0; o < ood.n; o++) seeded = seeded || cli_spec_uses_seed(ood.v[o], st, true);
    if ((rc = cli_check_seed_used(cmd, opts, nopts, seeded))) goto done;
    if (shift && strncmp(df.data, "fmnist", 6)) {
        rc = cli_usage_error(cmd, "--shift rot rotates the built-in image data (fmnist specs); %s "
                             "is not one", df.data);
        goto done;
    }
    /* The sweep's angles are the rotation of the images it is given: already rotated ones
     * would be reported as 0°, 15°, ... while they are not. */
    if (shift && strstr(df.data, ":rot=")) {
        rc = cli_usage_error(cmd, "--shift rot sweeps the angles itself; %s is already rotated "
                             "(give the unrotated data)", df.data);
        goto done;
    }
    if (task == BNN_TASK_REGRESSION && (ood.n || shift || plot)) {
        rc = cli_usage_error(cmd, "--ood, --shift and --plot are for classification models (bnn "
                             "plot draws regression models)");
        goto done;
    }
    /* The reports against every input, now that the data is known (it may come from the
     * model's metadata). */
    for (int o = -1; o < ood.n; o++) {
        char under[CLI_SPEC_MAX];
        const char *spec = o < 0 ? cli_data_spec(&df, under) : ood.v[o];
        if ((rc = cli_check_output_of(cmd, json_path, model_path, NULL, spec)) ||
            (rc = cli_check_output_of(cmd, plot, model_path, NULL, spec)))
            goto done;
    }
    df.task = task == BNN_TASK_REGRESSION ? "regression" : "classification";
    if ((rc = cli_load_data(cmd, &df, split, task, true, &ds))) goto done;
    const bnn_lik_kind lik = bnn_model_lik(m, task);
    if (lik == BNN_LIK_HETERO_GAUSSIAN && cli_seen(opts, nopts, "noise")) {
        rc = cli_usage_error(cmd, "--noise is for a gaussian likelihood; %s predicts its own "
                             "noise (hetero-gaussian)", model_path);
        goto done;
    }
    if (!cli_seen(opts, nopts, "noise")) {
        const char *s = bnn_st_meta(st, "bnn.sigma");
        if ((rc = cli_meta_positive(cmd, model_path, "bnn.sigma", s, &sigma))) goto done;
    }
    if (!(sigma > 0)) {
        rc = cli_usage_error(cmd, "--noise must be positive");
        goto done;
    }
    if (cli_seen(opts, nopts, "noise") && (rc = cli_float_range(cmd, "noise", sigma))) goto done;
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = samples, pp.seed = (uint64_t)seed, pp.batch_size = batch, pp.sigma = sigma;
    pp.temperature = temperature, pp.link_samples = link, pp.link = lk, pp.local_reparam = lrt;
    struct bnn_eval_result r;
    memset(&r, 0, sizeof r);
    if ((rc = cli_check_data(cmd, df.data, ds, m, task, true, model_path, st))) goto done;
    if (file_link) cli_note_link(model_path, lk); /* once the options and the data stand */
    cli_note_bridge_temperature(model_path, q, samples, lk, temperature);
    if (task == BNN_TASK_CLASSIFICATION) {
        if ((rc = predict_scores(cmd, m, q, ds, &pp, &in))) goto done;
        if ((rc = bnn_metrics_classification_log(&r.cls, in.logp, bnn_dataset_clabels(ds), in.n,
                                                 in.k, bins))) {
            rc = cli_fail(cmd, rc, NULL);
            goto done;
        }
        r.task = task, r.n = in.n, r.accuracy = r.cls.accuracy, r.nll = r.cls.nll;
        r.mean_mi = mean_of(in.mi, in.n);
        for (int o = 0; o < ood.n; o++) {
            bnn_dataset *od = NULL;
            if ((rc = cli_load_ood(cmd, ood.v[o], seed, df.target_col, m, &od))) goto done;
            if ((rc = cli_check_data(cmd, ood.v[o], od, m, task, false, model_path, st))) {
                bnn_dataset_free(od);
                goto done;
            }
            pred op;
            rc = predict_scores(cmd, m, q, od, &pp, &op);
            bnn_dataset_free(od);
            if (rc) goto done;
            ood_result *res = &oods[o];
            res->spec = ood.v[o], res->n = op.n;
            for (int s = 0; s < NSCORES; s++) {
                res->auroc[s] = bnn_auroc(op.score[s], op.n, in.score[s], in.n);
                res->aupr[s] = bnn_aupr(op.score[s], op.n, in.score[s], in.n);
            }
            res->mean_entropy = mean_of(op.score[1], op.n);
            res->mean_mi = mean_of(op.mi, op.n);
            pred_free(&op);
        }
        if (shift) {
            for (int a = 0; a <= 180; a += 15) {
                char spec[256];
                snprintf(spec, sizeof spec, "%s:rot=%d", df.data, a);
                bnn_dataset *sd = NULL;
                cli_data_flags sf = {.data = spec, .target_col = -1, .seed = seed};
                if ((rc = cli_load_data(cmd, &sf, split, BNN_TASK_CLASSIFICATION, false, &sd)))
                    goto done;
                pred sp;
                struct bnn_cls_metrics cm;
                rc = predict_scores(cmd, m, q, sd, &pp, &sp);
                if (!rc && (rc = bnn_metrics_classification_log(
                                &cm, sp.logp, bnn_dataset_clabels(sd), sp.n, sp.k, bins)))
                    rc = cli_fail(cmd, rc, spec);
                bnn_dataset_free(sd);
                if (rc) {
                    pred_free(&sp);
                    goto done;
                }
                shifts[nshift++] = (shift_result){a, cm.accuracy, cm.nll, cm.ece, cm.mean_entropy};
                pred_free(&sp);
            }
        }
    } else if ((rc = bnn_evaluate(m, q, ds, &pp, bins, &r))) {
        rc = cli_fail_fit(cmd, rc); /* targets that do not fit the model: a usage error */
        goto done;
    }

    /* The table. */
    char glm[64];
    snprintf(glm, sizeof glm, "linearised (GLM)%s%s", task == BNN_TASK_CLASSIFICATION ? ", " : "",
             task == BNN_TASK_CLASSIFICATION ? cli_link_words(lk) : "");
    const char *how = kind == BNN_POSTERIOR_POINT ? "point estimate"
                      : sampled                    ? "Monte-Carlo average"
                      : lap                        ? glm
                                                   : "posterior mean";
    printf("model      %s (%s, %lld parameters)\n", model_path, bnn_model_spec(m),
           (long long)bnn_model_nparams(m));
    printf("likelihood %s\n", bnn_lik_name(lik));
    if (diag) {
        double lo, mean, hi;
        bnn_posterior_std_summary(q, &lo, &mean, &hi);
        printf("posterior  diagonal Gaussian, std min %.3g mean %.3g max %.3g\n", lo, mean, hi);
    }
    if (lap) {
        const bnn_curv *c = bnn_laplace_curv(bnn_posterior_laplace(q));
        const bnn_hessian h = bnn_curv_structure(c);
        const char *pn = cli_posterior_name(st);
        if (pn && !strcmp(pn, "VON"))
            printf("posterior  VON, a full-covariance Gaussian over %lld parameters, ",
                   (long long)bnn_curv_nparams(c));
        else
            printf("posterior  Laplace, %s Hessian over %lld parameters, ",
                   h == BNN_HESS_DIAG   ? "diagonal"
                   : h == BNN_HESS_KRON ? "Kronecker-factored"
                   : h == BNN_HESS_FULL ? "full"
                                        : "low-rank",
                   (long long)bnn_curv_nparams(c));
        cli_put_prior(stdout, m, bnn_posterior_laplace(q));
        printf("\n");
    }
    printf("predict    %s", how);
    if (sampled) printf(" over %lld samples (seed %lld)", (long long)samples, (long long)seed);
    if (!sampled && lap && task == BNN_TASK_CLASSIFICATION && lk == BNN_LINK_MC)
        printf(" (%lld draws, seed %lld)", (long long)link, (long long)seed);
    if (sampled && lrt) printf(", first layer by local reparameterisation");
    if (temperature != 1.0) printf(", temperature %.4g", temperature);
    if (cli_one_split(df.data))
        printf("\ndata       %s, %lld examples (one file serves both splits)\n", df.data,
               (long long)r.n);
    else
        printf("\ndata       %s, %s split, %lld examples\n", df.data, split, (long long)r.n);
    char nb[32];
    if (task == BNN_TASK_CLASSIFICATION) {
        printf("accuracy   %.4f\n", r.cls.accuracy);
        printf("nll        %s\n", cli_num4(nb, r.cls.nll));
        printf("brier      %.4f\n", r.cls.brier);
        printf("ece        %.4f   (%lld bins)\n", r.cls.ece, (long long)bins);
        printf("mce        %.4f\n", r.cls.mce);
        printf("entropy    %.4f   (mean predictive entropy, nats)\n", r.cls.mean_entropy);
        if (has_mi) printf("mutual inf %.4f   (mean, nats)\n", r.mean_mi);
        if (ood.n) {
            /* the first column as wide as the longest name, the test data's included (16 at
             * least), so the rest align (names of ASCII characters) */
            int w = (int)strlen(df.data) > 16 ? (int)strlen(df.data) : 16;
            for (int o = 0; o < ood.n; o++)
                w = (int)strlen(oods[o].spec) > w ? (int)strlen(oods[o].spec) : w;
            printf("\nout-of-distribution detection (AUROC / AUPR, OOD as positive)\n");
            printf("%-*s %8s %24s %24s %24s\n", w, "data", "entropy", "score: 1 - max prob",
                   "score: entropy", "score: mutual info");
            for (int o = 0; o < ood.n; o++) {
                printf("%-*s %8.4f", w, oods[o].spec, oods[o].mean_entropy);
                for (int s = 0; s < NSCORES; s++) {
                    if (s == 2 && !has_mi) printf(" %24s", "-");
                    else printf("          %.4f / %.4f", oods[o].auroc[s], oods[o].aupr[s]);
                }
                printf("\n");
            }
            printf("%-*s %8.4f   (in-distribution mean entropy)\n", w, df.data,
                   r.cls.mean_entropy);
        }
        if (shift) {
            printf("\nrotation  accuracy      nll      ece  entropy\n");
            for (int i = 0; i < nshift; i++)
                printf("%6.0f°   %8.4f %8.4f %8.4f %8.4f\n", shifts[i].angle, shifts[i].accuracy,
                       shifts[i].nll, shifts[i].ece, shifts[i].mean_entropy);
        }
    } else {
        printf("rmse       %s\n", cli_num4(nb, r.rmse));
        if (lik == BNN_LIK_HETERO_GAUSSIAN)
            printf("nll        %s   (Gaussian, the predicted noise)\n", cli_num4(nb, r.nll));
        else
            printf("nll        %s   (Gaussian, noise std %g)\n", cli_num4(nb, r.nll), sigma);
        if (!isnan(r.nll_mixture))
            printf("nll mix    %s   (under the mixture of the %lld samples' Gaussians)\n",
                   cli_num4(nb, r.nll_mixture), (long long)samples);
        printf("coverage   %.3f within 1 sd, %.3f within 2 sd\n", r.reg.coverage_1sd,
               r.reg.coverage_2sd);
    }

    if (json_path) {
        js = cJSON_CreateObject();
        bool ok = js != NULL;
        ok = ok && cJSON_AddStringToObject(js, "model", model_path);
        ok = ok && cJSON_AddStringToObject(js, "spec", bnn_model_spec(m));
        ok = ok && cJSON_AddStringToObject(js, "data", df.data);
        ok = ok && cJSON_AddStringToObject(js, "split", split);
        ok = ok && cJSON_AddStringToObject(js, "task", df.task);
        ok = ok && cJSON_AddStringToObject(js, "likelihood", bnn_lik_name(lik));
        /* bnn von's posterior keeps the Laplace layout; the report names it as the text does. */
        const char *pn = cli_posterior_name(st);
        ok = ok && cJSON_AddStringToObject(js, "posterior",
                                           lap ? (pn && !strcmp(pn, "VON") ? "von" : "laplace")
                                           : diag ? "diag"
                                                  : "point");
        ok = ok && cJSON_AddNumberToObject(js, "samples", (double)(sampled ? samples : 0));
        if (diag) ok = ok && cJSON_AddBoolToObject(js, "local_reparam", sampled && lrt);
        if (lap) {
            ok = ok && cJSON_AddNumberToObject(
                           js, "link_samples",
                           (double)(!sampled && task == BNN_TASK_CLASSIFICATION ? link : 0));
            if (!sampled && task == BNN_TASK_CLASSIFICATION)
                ok = ok && cJSON_AddStringToObject(js, "link", bnn_link_name(lk));
        }
        /* What reproduces a report's draws: weight samples, the mc link's, generated data's */
        if (seeded) { /* written whole: a double holds integers to 2^53 only */
            char sv[24];
            snprintf(sv, sizeof sv, "%lld", (long long)seed);
            ok = ok && cJSON_AddRawToObject(js, "seed", sv);
        }
        ok = ok && cJSON_AddNumberToObject(js, "temperature", temperature);
        ok = ok && cJSON_AddNumberToObject(js, "n", (double)r.n);
        ok = ok && cJSON_AddNumberToObject(js, "nll", r.nll);
        if (task == BNN_TASK_CLASSIFICATION) {
            const struct bnn_cls_metrics *c = &r.cls;
            ok = ok && cJSON_AddNumberToObject(js, "accuracy", c->accuracy);
            ok = ok && cJSON_AddNumberToObject(js, "brier", c->brier);
            ok = ok && cJSON_AddNumberToObject(js, "ece", c->ece);
            ok = ok && cJSON_AddNumberToObject(js, "mce", c->mce);
            ok = ok && cJSON_AddNumberToObject(js, "mean_entropy", c->mean_entropy);
            /* None for a Laplace posterior's probit, which has no draws to measure it by (predict
             * writes nan); 0 for a point estimate or a prediction at the mean. */
            if (!lap || has_mi) ok = ok && cJSON_AddNumberToObject(js, "mean_mutual_info", r.mean_mi);
            cJSON *rel = ok ? cJSON_AddObjectToObject(js, "reliability") : NULL;
            ok = ok && rel && cJSON_AddNumberToObject(rel, "bins", (double)c->nbins);
            cJSON *a1 = numbers(NULL, c->bin_count, c->nbins);
            cJSON *a2 = numbers(c->bin_accuracy, NULL, c->nbins);
            cJSON *a3 = numbers(c->bin_confidence, NULL, c->nbins);
            ok = ok && a1 && a2 && a3;
            if (ok) {
                cJSON_AddItemToObject(rel, "count", a1);
                cJSON_AddItemToObject(rel, "accuracy", a2);
                cJSON_AddItemToObject(rel, "confidence", a3);
            } else {
                cJSON_Delete(a1), cJSON_Delete(a2), cJSON_Delete(a3);
            }
            if (ood.n) {
                cJSON *arr = ok ? cJSON_AddArrayToObject(js, "ood") : NULL;
                ok = ok && arr;
                for (int o = 0; ok && o < ood.n; o++) {
                    cJSON *e = cJSON_CreateObject(), *au = cJSON_CreateObject();
                    cJSON *ap = cJSON_CreateObject();
                    ok = e && au && ap;
                    for (int s = 0; ok && s < NSCORES; s++) {
                        if (s == 2 && !has_mi) continue;
                        ok = cJSON_AddNumberToObject(au, score_names[s], oods[o].auroc[s]) &&
                             cJSON_AddNumberToObject(ap, score_names[s], oods[o].aupr[s]);
                    }
                    ok = ok && cJSON_AddStringToObject(e, "data", oods[o].spec);
                    ok = ok && cJSON_AddNumberToObject(e, "n", (double)oods[o].n);
                    ok = ok && cJSON_AddNumberToObject(e, "mean_entropy", oods[o].mean_entropy);
                    if (!lap || has_mi)
                        ok = ok && cJSON_AddNumberToObject(e, "mean_mutual_info", oods[o].mean_mi);
                    if (ok) {
                        cJSON_AddItemToObject(e, "auroc", au);
                        cJSON_AddItemToObject(e, "aupr", ap);
                        cJSON_AddItemToArray(arr, e);
                    } else {
                        cJSON_Delete(e), cJSON_Delete(au), cJSON_Delete(ap);
                    }
                }
            }
            if (shift) {
                cJSON *arr = ok ? cJSON_AddArrayToObject(js, "shift") : NULL;
                ok = ok && arr;
                for (int i = 0; ok && i < nshift; i++) {
                    cJSON *e = cJSON_CreateObject();
                    ok = e && cJSON_AddNumberToObject(e, "rotation", shifts[i].angle) &&
                         cJSON_AddNumberToObject(e, "accuracy", shifts[i].accuracy) &&
                         cJSON_AddNumberToObject(e, "nll", shifts[i].nll) &&
                         cJSON_AddNumberToObject(e, "ece", shifts[i].ece) &&
                         cJSON_AddNumberToObject(e, "mean_entropy", shifts[i].mean_entropy);
                    if (ok) cJSON_AddItemToArray(arr, e);
                    else cJSON_Delete(e);
                }
            }
        } else {
            ok = ok && cJSON_AddNumberToObject(js, "rmse", r.rmse);
            if (lik == BNN_LIK_GAUSSIAN) ok = ok && cJSON_AddNumberToObject(js, "sigma", sigma);
            ok = ok && cJSON_AddNumberToObject(js, "coverage_1sd", r.reg.coverage_1sd);
            ok = ok && cJSON_AddNumberToObject(js, "coverage_2sd", r.reg.coverage_2sd);
            if (!isnan(r.nll_mixture))
                ok = ok && cJSON_AddNumberToObject(js, "nll_mixture", r.nll_mixture);
        }
        if (!ok) {
            rc = cli_error(cmd, "out of memory while building %s", json_path);
            goto done;
        }
    }
    /* The report on stdout first: if it cannot be written, no file is. */
    if ((plot || json_path) && (rc = cli_check_stdout(cmd))) goto done;
    if (plot && json_path) bnn_output_hold(), held = true;
    if (plot) {
        char title[256];
        if (shift) {
            double x[13], acc[13], ece[13], ent[13];
            for (int i = 0; i < nshift; i++)
                x[i] = shifts[i].angle, acc[i] = shifts[i].accuracy, ece[i] = shifts[i].ece,
                ent[i] = shifts[i].mean_entropy;
            const double *ys[3] = {acc, ece, ent};
            const char *names[3] = {"accuracy", "ECE", "mean entropy (nats)"};
            snprintf(title, sizeof title, "%s under rotation, %s", df.data, how);
            rc = bnn_svg_lines(plot, title, "rotation (degrees)", "", x, nshift, ys, names, 3);
        } else {
            snprintf(title, sizeof title, "%s%s%s, %s", df.data, cli_one_split(df.data) ? "" : " ",
                     cli_one_split(df.data) ? "" : split, how);
            rc = bnn_svg_reliability(plot, &r.cls, title);
        }
        if (rc) {
            rc = cli_fail(cmd, rc, "cannot write the plot");
            goto done;
        }
    }
    /* The report last, so that a run failing before its end leaves no new one; with a plot
     * too, both are held until both are written, so a failing one does not leave the other. */
    if (json_path && (rc = write_json(cmd, json_path, js))) goto done;
    if (held && (rc = bnn_output_commit())) rc = cli_fail(cmd, rc, NULL);
    held = false;
done:
    if (held) bnn_output_discard();
    cJSON_Delete(js);
    pred_free(&in);
    bnn_posterior_free(q);
    bnn_st_free(st);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    return rc;
}
