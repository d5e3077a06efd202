/* bnn von: variational learning of a full-covariance Gaussian over a network's last Linear layer
 * (the Bayesian learning rule's VON update with the GGN, bnn_von_last_layer), starting from a
 * trained network — or from an untrained linear model, for Bayesian linear and logistic
 * regression. The result is saved as a full posterior over the layer that eval, predict,
 * compare and plot use like a Laplace one (linearised predictive, or --samples). */
#include "cli.h"

#include <math.h>
#include <string.h>
#include <time.h>

int cmd_von(int argc, char **argv) {
    const char *cmd = "von";
    cli_data_flags df = {.target_col = -1};
    const char *model_path = NULL, *output = NULL;
    struct bnn_von_params vp = bnn_von_default_params();
    int64_t steps = vp.steps, mc = vp.mc_samples, seed = 0, batch = 0, threads = 0;
    double rho = vp.rho, prior = vp.prior_prec;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model_path, "FILE",
         "the network to start from: a trained (MAP) model, or a linear model (required)", 0},
        {"output", 'o', OPT_STR, &output, "FILE", "write the posterior here (required)", 0},
        {"data", 'd', OPT_STR, &df.data, "SPEC",
         "training data (default: the model's, without its hold-out)", 0},
        {"steps", 0, OPT_INT, &steps, "N", "VON steps, 1 to 100000 (default 10)", 0},
        {"rho", 0, OPT_FLOAT, &rho, "R",
         "step size in (0, 1] (default 1; with --mc-samples take e.g. 0.1-0.5 and more steps)", 0},
        {"mc-samples", 0, OPT_INT, &mc, "S",
         "0 (default): gradient and GGN at the mean; 1 to 10000: averaged over S draws from q per "
         "step",
         0},
        {"prior-precision", 0, OPT_FLOAT, &prior, "D",
         "precision of the prior N(0, 1/D) over the layer (default 1; --prior-prec is the same)", 0},
        {"seed", 's', OPT_INT, &seed, "N", "--mc-samples: seed of the draws (default 0)", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N", "examples per pass (default 1024)", 0},
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
        cli_usage(
            stdout, cmd,
            "-m MODEL.safetensors [--steps N] [--rho R] [--mc-samples S] [--prior-precision D] -o "
            "VON.safetensors",
            "Learns q = N(m, S^-1), a Gaussian with a full covariance over the weights and\n"
            "bias of the network's last Linear layer (the layers below stay as trained), by\n"
            "the Bayesian learning rule's variational online Newton update with the\n"
            "generalised Gauss-Newton matrix: S <- (1-rho) S + rho (E_q[GGN] + D I),\n"
            "m <- m - rho S^-1 (E_q[gradient] + D m), over the summed loss of the data.\n"
            "q starts at the model's weights with the precision GGN + D I there. At the mean\n"
            "with rho 1 this is Newton's method (a step that would raise the loss plus the\n"
            "prior is retried at half the rate) and ends at the Laplace posterior of the\n"
            "layer's MAP; with --mc-samples it is stochastic variational inference. For a\n"
            "linear model with a Gaussian likelihood one step at the mean is the exact\n"
            "Bayesian linear regression posterior. eval, predict and compare use the result\n"
            "like a Laplace posterior (linearised predictive, or --samples S).",
            opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (!model_path || !output) return cli_usage_error(cmd, "-m MODEL and -o FILE are required");
    if (cli_check_file_output(cmd, output, "posterior")) return 2;
    if (steps < 1 || steps > 100000) return cli_usage_error(cmd, "--steps must be in 1..100000");
    if (!(rho > 0.0 && rho <= 1.0)) return cli_usage_error(cmd, "--rho must be in (0, 1]");
    if (mc < 0 || mc > BNN_MAX_MC_SAMPLES)
        return cli_usage_error(cmd, "--mc-samples must be in 0..%d", BNN_MAX_MC_SAMPLES);
    if (!(prior > 0.0) || !isfinite(prior))
        return cli_usage_error(cmd, "--prior-precision must be a positive number");
    if (seed < 0) return cli_usage_error(cmd, "--seed must be >= 0");
    if (cli_seen(opts, nopts, "seed") && mc == 0)
        return cli_usage_error(cmd, "--seed is for --mc-samples (nothing else is random)");
    if (batch < 0 || (batch == 0 && cli_seen(opts, nopts, "batch-size")))
        return cli_usage_error(cmd, "--batch-size must be >= 1");
    if (cli_set_threads(cmd, threads)) return 2;
    vp.steps = steps, vp.rho = rho, vp.mc_samples = mc, vp.prior_prec = prior;
    vp.seed = (uint64_t)seed, vp.batch_size = batch;

    bnn_model *m = NULL;
    bnn_st *st = NULL;
    bnn_dataset *all = NULL, *train = NULL, *val = NULL;
    bnn_laplace *la = NULL;
    bnn_task task;
    if ((rc = bnn_model_load(&m, model_path, &task, &st))) return cli_fail(cmd, rc, NULL);
    const char *kind = cli_posterior_name(st);
    if (kind && strcmp(kind, "point")) {
        rc = cli_usage_error(cmd,
                             "%s already holds a %.40s posterior; VON starts from a network's "
                             "weights (a model trained with --method adamw or sgd, or a new one)",
                             model_path, kind);
        goto done;
    }
    if ((rc = cli_note_temperature(cmd, model_path, st, "the VON posterior starts from")))
        goto done;
    bool own;
    int64_t holdout;
    if ((rc = cli_fit_data(cmd, m, model_path, st, task, &df, opts, nopts, output, &all, &train, &val,
                           &own, &holdout)))
        goto done;
    const bnn_dataset *fit = train ? train : all;
    const bool noise = bnn_model_lik(m, task) == BNN_LIK_GAUSSIAN;
    vp.sigma = 1.0;
    if (noise && (rc = cli_meta_positive(cmd, model_path, "bnn.sigma", bnn_st_meta(st, "bnn.sigma"),
                                         &vp.sigma)))
        goto done;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct bnn_von_result vr;
    if ((rc = bnn_von_last_layer(&la, m, fit, &vp, &vr))) {
        rc = cli_fail_fit(cmd, rc);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const bnn_curv *c = bnn_laplace_curv(la);
    const int64_t P = bnn_curv_nparams(c), nfit = bnn_dataset_n(fit);
    /* The objective's loss (the summed negative log-likelihood), not bnn_curv_loss: for the
     * Gaussian that is laplace-torch's ½ Σ (f − y)² at σ = 1, which does not add up with the
     * prior to the objective printed below it. */
    const double loss = vr.nll;
    printf("data       %lld examples of %s\n", (long long)nfit, df.data);
    printf("layer      the last Linear layer: %lld parameters (offset %lld), a full covariance\n",
           (long long)P, (long long)bnn_curv_offset(c));
    if (mc == 0)
        printf("von        %lld step%s, rho %g, gradient and GGN at the mean\n", (long long)steps,
               steps == 1 ? "" : "s", rho);
    else
        printf("von        %lld step%s, rho %g, %lld draw%s per step (seed %lld)\n",
               (long long)steps, steps == 1 ? "" : "s", rho, (long long)mc, mc == 1 ? "" : "s",
               (long long)seed);
    printf("prior      precision %g%s", prior, noise ? "" : "\n");
    if (noise) printf(", noise sigma %g (the model's)\n", vp.sigma);
    printf("loss       %.6g at the mean (summed negative log-likelihood; %.6g per example)\n", loss,
           loss / (double)nfit);
    printf(
        "objective  loss + prior %.6g at the start, %.6g at the mean; the last step moved the mean "
        "by %.2g of its largest weight%s",
        vr.objective0, vr.objective, vr.last_change, mc ? "\n" : "");
    if (!mc) printf(", %lld halving%s\n", (long long)vr.halvings, vr.halvings == 1 ? "" : "s");
    /* Laplace's log marginal likelihood with q's mean and precision (bnn laplace prints the same
     * for its posterior): for a linear model with a Gaussian likelihood, after one full step,
     * the exact evidence of Bayesian linear regression. */
    char lml_txt[48];
    printf("log ML     %s (Laplace's, at q's mean and precision)\n",
           cli_fmt_lml(lml_txt, bnn_laplace_lml(la, prior, bnn_laplace_sigma(la), NULL, NULL)));
    if (vr.double_sums)
        fprintf(stderr, "note: the layer's curvature spans too many decades for float sums beside "
                "prior precision %g: summed in double (twice the time)\n", prior);
    /* With a Gaussian likelihood the objective is quadratic in the last layer's weights and its
     * GGN is the exact Hessian: a full step (rho 1, no halving) lands on the optimum, however
     * far it moved (the README's exact Bayesian linear regression is one such step). */
    const bool exact = noise && rho == 1.0 && vr.halvings == 0;
    if (!mc && !exact && vr.last_change > 1e-3)
        fprintf(stderr,
                "note: the steps have not settled (the last moved the mean by %.2g of its "
                "largest weight); more --steps may help\n",
                vr.last_change);
    printf("time       %.3f s\n",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    char sv[40], rv[40], pv[40], steps_txt[24], mc_txt[24];
    cli_fmt_double(sv, sizeof sv, bnn_laplace_sigma(la));
    cli_fmt_double(rv, sizeof rv, rho);
    cli_fmt_double(pv, sizeof pv, prior);
    snprintf(steps_txt, sizeof steps_txt, "%lld", (long long)steps);
    snprintf(mc_txt, sizeof mc_txt, "%lld", (long long)mc);
    const char *keys[18], *vals[18];
    int nkv = 0;
    keys[nkv] = "bnn.method", vals[nkv++] = "von";
    if (bnn_st_text_ok(model_path)) keys[nkv] = "bnn.von.start", vals[nkv++] = model_path;
    keys[nkv] = "bnn.von.steps", vals[nkv++] = steps_txt;
    keys[nkv] = "bnn.von.rho", vals[nkv++] = rv;
    keys[nkv] = "bnn.von.mc_samples", vals[nkv++] = mc_txt;
    keys[nkv] = "bnn.von.prior_precision", vals[nkv++] = pv;
    keys[nkv] = "bnn.laplace.subset", vals[nkv++] = "last-layer";
    keys[nkv] = "bnn.sigma", vals[nkv++] = sv;
    rc = cli_save_posterior(cmd, la, m, task, output, st, &df, fit, keys, vals, nkv);
done:
    bnn_laplace_free(la);
    bnn_model_free(m);
    bnn_st_free(st);
    bnn_dataset_free(all), bnn_dataset_free(train), bnn_dataset_free(val);
    return rc;
}
