/* bnn plot: pictures of what a model knows on low-dimensional problems — the predictive
 * probability or entropy over the plane for 2-D classification (moons), the predictive mean with
 * ±1σ/±2σ bands for 1-D regression (sine-gap) — with the training data on top. */
#include "cli.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The room drawn beyond data over [lo, hi] on each side: a fraction of its range, and some for a
 * coordinate that is constant, also at a magnitude where 1e-6 vanishes (3e10; the grid is in
 * float, so tens of float steps). */
static double margin(double lo, double hi, double frac) {
    return frac * (hi - lo) + fmax(1e-6, 1e-5 * fmax(fabs(lo), fabs(hi)));
}

int cmd_plot(int argc, char **argv) {
    const char *cmd = "plot";
    cli_data_flags df = {.target_col = -1};
    const char *model_path = NULL, *output = NULL, *what = "prob";
    int64_t samples = -1, seed = 0, grid = 100, threads = 0, link = 0;
    const char *linkname = NULL;
    bnn_link lk = BNN_LINK_PROBIT;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model_path, "FILE", "the model file (required)", 0},
        {"output", 'o', OPT_STR, &output, "FILE.svg", "write the picture here (required)", 0},
        {"what", 0, OPT_STR, &what, "NAME", "2-D classification: prob (of class 1, default) or entropy", 0},
        CLI_PREDICT_OPTS(samples, seed, link, linkname),
        {"grid", 0, OPT_INT, &grid, "N", "2-D classification: grid points per axis, 10 to 400 (default 100)", 0},
        {"data", 'd', OPT_STR, &df.data, "SPEC", "the data to draw (default: the training data)", 0},
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
        cli_usage(stdout, cmd, "-m MODEL -o FILE.svg [--what prob|entropy]",
                  "Draws a model with 2 inputs (classification: a map of the predictive\n"
                  "probability or entropy) or 1 input and one target (regression: mean and ±1σ/±2σ\n"
                  "predictive bands), with its training data.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (!model_path || !output) return cli_usage_error(cmd, "-m MODEL and -o FILE.svg are required");
    if (cli_raster_name(output))
        return cli_usage_error(cmd, "plot writes SVG (a vector picture every browser shows); name "
                               "the output .svg, not %s", output);
    if (strcmp(what, "prob") && strcmp(what, "entropy"))
        return cli_usage_error(cmd, "--what must be prob or entropy");
    if (grid < 10 || grid > 400) return cli_usage_error(cmd, "--grid must be between 10 and 400");
    if (cli_check_predict_opts(cmd, opts, nopts, samples, seed, &link, linkname, &lk)) return 2;
    if (cli_set_threads(cmd, threads)) return 2;
    bnn_model *m = NULL;
    bnn_st *st = NULL;
    bnn_posterior *q = NULL;
    bnn_dataset *ds = NULL;
    float *x = NULL;
    double *a = NULL, *b = NULL, *field = NULL, *xs = NULL, *sd = NULL;
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
    const int64_t d = bnn_model_input_dim(m), k = bnn_model_pred_dim(m, task);
    if (!((task == BNN_TASK_CLASSIFICATION && d == 2) || (task == BNN_TASK_REGRESSION && d == 1 && k == 1))) {
        const bool cls = task == BNN_TASK_CLASSIFICATION;
        rc = cli_usage_error(cmd, "%s (%s) is a %s with %lld input%s and %lld %s: plot draws "
                             "classifiers of 2 inputs and regressors of 1 input and one target",
                             model_path, bnn_model_spec(m), cls ? "classifier" : "regressor",
                             (long long)d, d == 1 ? "" : "s", (long long)k,
                             cls ? (k == 1 ? "class" : "classes") : (k == 1 ? "target" : "targets"));
        goto done;
    }
    if (task == BNN_TASK_REGRESSION && (cli_seen(opts, nopts, "what") || cli_seen(opts, nopts, "grid"))) {
        rc = cli_usage_error(cmd, "--%s is for a 2-D classifier's map; %s is a regressor (drawn as "
                             "its mean and bands)", cli_seen(opts, nopts, "what") ? "what" : "grid",
                             model_path);
        goto done;
    }
    df.seed = seed;
    if ((rc = cli_model_data(cmd, model_path, st, &df, cli_seen(opts, nopts, "target-col"))) ||
        (rc = cli_check_csv_flags(cmd, opts, nopts, df.data, false)))
        goto done;
    if ((rc = cli_check_output_data(cmd, output, model_path, NULL, &df))) goto done;
    if ((rc = cli_check_seed_used(cmd, opts, nopts,
                                  cli_predict_draws(q, samples, link) ||
                                      cli_spec_uses_seed(df.data, st, false))))
        goto done;
    df.task = task == BNN_TASK_REGRESSION ? "regression" : "classification";
    if ((rc = cli_load_data(cmd, &df, "train", task, true, &ds))) goto done;
    /* Labelled points are drawn by class: as many classes as the model predicts, at most. */
    if ((rc = cli_check_data(cmd, df.data, ds, m, task, bnn_dataset_labelled(ds), model_path, st)))
        goto done;
    if (file_link) cli_note_link(model_path, lk); /* once the options and the data stand */
    const int64_t n = bnn_dataset_n(ds);
    const float *X = bnn_dataset_cx(ds);
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = samples, pp.seed = (uint64_t)seed, pp.link_samples = link, pp.link = lk;
    if ((rc = cli_meta_positive(cmd, model_path, "bnn.sigma", bnn_st_meta(st, "bnn.sigma"),
                                &pp.sigma)) ||
        (rc = cli_meta_temperature(cmd, model_path, st, task, &pp.temperature)))
        goto done;
    cli_note_bridge_temperature(model_path, q, samples, lk, pp.temperature);
    char title[256];
    const bool diag = bnn_posterior_kind_of(q) == BNN_POSTERIOR_DIAG;
    const bool lap = bnn_posterior_kind_of(q) == BNN_POSTERIOR_LAPLACE;
    const char *how = samples && (diag || lap) ? "model average"
                      : lap                    ? "linearised (GLM)"
                      : diag                   ? "posterior mean"
                                               : "point estimate";
    if (task == BNN_TASK_CLASSIFICATION) {
        double lo[2] = {DBL_MAX, DBL_MAX}, hi[2] = {-DBL_MAX, -DBL_MAX};
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < 2; j++) {
                lo[j] = fmin(lo[j], X[i * 2 + j]);
                hi[j] = fmax(hi[j], X[i * 2 + j]);
            }
        /* A margin around the data shows how the model extrapolates away from it. */
        for (int j = 0; j < 2; j++) {
            const double pad = margin(lo[j], hi[j], 0.25);
            lo[j] -= pad, hi[j] += pad;
        }
        const int64_t g = grid, G = g * g;
        x = malloc((size_t)(G * 2) * sizeof(float));
        a = malloc((size_t)(G * k) * sizeof(double));
        b = malloc((size_t)G * sizeof(double));
        field = malloc((size_t)G * sizeof(double));
        if (!x || !a || !b || !field) {
            rc = cli_error(cmd, "out of memory");
            goto done;
        }
        for (int64_t r = 0; r < g; r++)
            for (int64_t c = 0; c < g; c++) {
                x[(r * g + c) * 2] = (float)(lo[0] + (hi[0] - lo[0]) * ((double)c + 0.5) / (double)g);
                x[(r * g + c) * 2 + 1] = (float)(lo[1] + (hi[1] - lo[1]) * ((double)r + 0.5) / (double)g);
            }
        if ((rc = bnn_predict(m, q, x, G, task, &pp, a, b, NULL, NULL))) {
            rc = cli_fail(cmd, rc, NULL);
            goto done;
        }
        const bool ent = !strcmp(what, "entropy");
        for (int64_t i = 0; i < G; i++)
            field[i] = ent ? bnn_entropy(a + i * k, k) : (k > 1 ? a[i * k + 1] : a[i * k]);
        snprintf(title, sizeof title, "%s: %s (%s)", bnn_model_spec(m),
                 ent ? "predictive entropy" : "p(class 1)", how);
        rc = bnn_svg_field(output, title, field, g, g, lo[0], hi[0], lo[1], hi[1], 0.0,
                           ent ? log((double)k) : 1.0, ent ? "entropy (nats)" : "p(class 1)", X,
                           bnn_dataset_labelled(ds) ? bnn_dataset_clabels(ds) : NULL, n);
    } else {
        double lo = DBL_MAX, hi = -DBL_MAX;
        for (int64_t i = 0; i < n; i++) lo = fmin(lo, X[i]), hi = fmax(hi, X[i]);
        const double pad = margin(lo, hi, 0.35);
        lo -= pad, hi += pad;
        const int64_t g = 300;
        x = malloc((size_t)g * sizeof(float));
        xs = malloc((size_t)g * sizeof(double));
        a = malloc((size_t)g * sizeof(double));
        b = malloc((size_t)g * sizeof(double));
        sd = malloc((size_t)g * sizeof(double));
        if (!x || !xs || !a || !b || !sd) {
            rc = cli_error(cmd, "out of memory");
            goto done;
        }
        for (int64_t i = 0; i < g; i++) {
            xs[i] = lo + (hi - lo) * (double)i / (double)(g - 1);
            x[i] = (float)xs[i];
        }
        if ((rc = bnn_predict(m, q, x, g, task, &pp, NULL, NULL, a, b))) {
            rc = cli_fail(cmd, rc, NULL);
            goto done;
        }
        for (int64_t i = 0; i < g; i++) sd[i] = sqrt(b[i]);
        snprintf(title, sizeof title, "%s: predictive mean and bands (%s)", bnn_model_spec(m), how);
        rc = bnn_svg_bands(output, title, xs, a, sd, g, X, bnn_dataset_ctargets(ds), n);
    }
    if (rc) {
        rc = cli_fail(cmd, rc, "cannot write the plot");
        goto done;
    }
    if (!cli_quiet) fprintf(stderr, "wrote %s\n", cli_out_name(output));
    rc = 0;
done:
    free(x), free(a), free(b), free(field), free(xs), free(sd);
    bnn_posterior_free(q);
    bnn_st_free(st);
    bnn_model_free(m);
    bnn_dataset_free(ds);
    return rc;
}
