/* bnn info: what a bnn file holds — architecture, training settings and tensors. */
#include "cli.h"

#include <string.h>

/* The Linear layers (by the index the layers line shows) whose weights a Laplace subset holds. */
/* A file's text in a column of `width`, without its control characters (JSON escapes such as
 * \n decode to them). */
static void put_field(const char *s, int width) {
    cli_put_printable(stdout, s);
    const int n = (int)strlen(s);
    printf("%*s", n < width ? width - n : 0, "");
}

static void print_subset(const bnn_model *m, const bnn_curv *c) {
    int64_t nlin = 0, nin = 0;
    printf("subset    Linear layers");
    for (int64_t i = 0; i < bnn_model_nlayers(m); i++) {
        if (strcmp(bnn_model_layer_kind(m, i), "linear")) continue;
        if (cli_linear_in_subset(m, c, i)) printf("%s%lld", nin++ ? "," : " ", (long long)nlin);
        nlin++;
    }
    printf(" of 0..%lld: parameters", (long long)(nlin - 1));
    for (int64_t s = 0; s < bnn_curv_nsegments(c); s++) {
        int64_t so, sl;
        if (!bnn_curv_segment(c, s, &so, &sl))
            printf("%s %lld..%lld", s ? "," : "", (long long)so, (long long)(so + sl - 1));
    }
    printf("\n");
}

int cmd_info(int argc, char **argv) {
    const char *cmd = "info";
    cli_opt opts[1] = {{"", 0, OPT_FLAG, NULL, NULL, "", 0}};
    const char *pos[1];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, 0, cmd, pos, 1, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "FILE", "Shows what a bnn (safetensors) file holds: the model, "
                  "its training settings\nand every tensor with its shape.", opts, 0);
        return 0;
    }
    if (rc) return 2;
    if (npos != 1) return cli_usage_error(cmd, "expects one FILE");
    bnn_st *st;
    if ((rc = bnn_st_read(&st, pos[0]))) return cli_fail(cmd, rc, NULL);
    printf("file      %s\n", pos[0]);
    const char *spec = bnn_st_meta(st, "bnn.model");
    /* The model from the file read above (read once: a full posterior's file is 100 MB). Loaded
     * rather than built from the spec alone: the loader checks the spec against the values the
     * file holds before allocating, so a damaged spec costs nothing. */
    bnn_model *m = NULL;
    bnn_task task = BNN_TASK_CLASSIFICATION;
    char why[512] = "", bad[600] = ""; /* bad: why the file is unusable, for the exit status */
    /* Out of memory says nothing about the file: a failure, not a description (exit 1). */
    if (spec && (rc = bnn_model_from_st(&m, st, pos[0], &task))) {
        if (rc == BNN_ENOMEM) {
            bnn_st_free(st);
            return cli_fail(cmd, rc, NULL);
        }
        snprintf(why, sizeof why, "%s", bnn_last_error());
    }
    if (m) {
        printf("model     %s, %lld parameters\n", bnn_model_spec(m),
               (long long)bnn_model_nparams(m));
        /* Linear layers carry their index for bnn laplace --subset layers:I,J,... */
        printf("layers   ");
        for (int64_t i = 0, j = 0; i < bnn_model_nlayers(m); i++) {
            const char *kind = bnn_model_layer_kind(m, i);
            int64_t wo, ws[2], bo, bl;
            if (!strcmp(kind, "linear") && !bnn_model_layer_tensors(m, i, &wo, ws, &bo, &bl))
                printf(" %s[%lld] linear %lld->%lld", i ? "> " : "", (long long)j++,
                       (long long)ws[1], (long long)ws[0]);
            else
                printf(" %s%s", i ? "> " : "", kind);
        }
        printf("\n");
        /* Files from before bnn.lik follow their task. */
        const bnn_lik_kind lik = bnn_model_lik(m, task);
        printf("likelihood %s (%s, %lld output%s%s)\n", bnn_lik_name(lik),
               task == BNN_TASK_REGRESSION ? "regression" : "classification",
               (long long)bnn_model_output_dim(m), bnn_model_output_dim(m) == 1 ? "" : "s",
               lik == BNN_LIK_BERNOULLI        ? ": p(y = 1) = sigmoid(f)"
               : lik == BNN_LIK_HETERO_GAUSSIAN ? ": mean and log variance"
                                                : "");
    } else if (spec) {
        printf("model     ");
        cli_put_printable(stdout, spec);
        printf(" (does not load: %s)\n", why);
        printf("likelihood unknown: the model does not load (%s)\n", why);
        snprintf(bad, sizeof bad, "the model does not load: %s", why);
    } else {
        printf("model     (not a bnn model file: no bnn.model in the metadata)\n");
    }
    /* The posterior, when the file holds one (or the standard deviations of one without its
     * tag, which the loader refuses: said here too). */
    bnn_st_tensor std_t;
    if (m && (bnn_st_meta(st, "bnn.posterior") || !bnn_st_get(st, "posterior.std", &std_t))) {
        bnn_posterior *q;
        if ((rc = bnn_posterior_load(&q, m, st)) == BNN_ENOMEM) {
            bnn_model_free(m);
            bnn_st_free(st);
            return cli_fail(cmd, rc, NULL);
        }
        if (rc == 0) {
            if (bnn_posterior_kind_of(q) == BNN_POSTERIOR_LAPLACE) {
                const bnn_laplace *la = bnn_posterior_laplace(q);
                const char *pn = cli_posterior_name(st);
                printf("posterior %s over %lld parameters, ",
                       pn && !strcmp(pn, "VON") ? "VON (a full-covariance Gaussian)" : "Laplace",
                       (long long)bnn_curv_nparams(bnn_laplace_curv(la)));
                cli_put_prior(stdout, m, la);
                /* the grid's link (bnn.link), checked as the predicting commands check it */
                const char *gl = bnn_st_meta(st, "bnn.link");
                bnn_link gk;
                if (gl && !bnn_link_parse(gl, &gk))
                    printf(" (chosen through the %s link, the predictive's default)",
                           bnn_link_name(gk));
                else if (gl)
                    snprintf(bad, sizeof bad, "bnn.link is not probit, mc, bridge or "
                             "bridge-norm");
                printf("\n");
                print_subset(m, bnn_laplace_curv(la));
            } else if (bnn_posterior_kind_of(q) == BNN_POSTERIOR_DIAG) {
                double lo, mean, hi;
                bnn_posterior_std_summary(q, &lo, &mean, &hi);
                printf("posterior diagonal Gaussian N(mean = the weights, std), std min %.4g "
                       "mean %.4g max %.4g\n", lo, mean, hi);
            } else {
                printf("posterior point estimate (the weights)\n");
            }
            bnn_posterior_free(q);
        } else {
            printf("posterior invalid: %s\n", bnn_last_error());
            snprintf(bad, sizeof bad, "the posterior is invalid: %s", bnn_last_error());
        }
    }
    const bool loaded = m != NULL;
    bnn_model_free(m);
    const char *meth = bnn_st_meta(st, "bnn.method");
    if (meth && !strcmp(meth, "ivon") && !bnn_st_get(st, "posterior.std", &std_t))
        printf("ivon      std = 1/sqrt(ess (h + delta)), ess %s, delta %s\n",
               bnn_st_meta(st, "bnn.ivon.ess") ? bnn_st_meta(st, "bnn.ivon.ess") : "?",
               bnn_st_meta(st, "bnn.weight_decay") ? bnn_st_meta(st, "bnn.weight_decay") : "?");
    if (bnn_st_meta(st, "bnn.state.step")) {
        /* What train --resume would do with it: it refuses a calibrated copy (its temperature
         * fits the weights as they are), and a finished run trains on only under a constant
         * schedule with a larger --epochs. */
        const char *ep = bnn_st_meta(st, "bnn.state.epoch"), *total = bnn_st_meta(st, "bnn.epochs");
        const char *sched = bnn_st_meta(st, "bnn.lr_schedule");
        const bool done = ep && total && !strcmp(ep, total);
        printf("state     checkpoint after epoch %s%s%s (step %s)", ep ? ep : "?",
               total ? " of " : "", total ? total : "", bnn_st_meta(st, "bnn.state.step"));
        if (bnn_st_meta(st, "bnn.temperature"))
            printf(", calibrated: resume the checkpoint it was calibrated from\n");
        else if (!done)
            printf(": resume with bnn train --resume\n");
        else if (sched && !strcmp(sched, "constant"))
            printf(": the run is complete (bnn train --resume with a larger --epochs trains on)\n");
        else
            printf(": the run is complete\n");
    }
    int64_t nm = bnn_st_meta_count(st);
    if (nm) printf("metadata\n");
    for (int64_t i = 0; i < nm; i++) {
        const char *k, *v;
        if (bnn_st_meta_at(st, i, &k, &v)) continue;
        printf("  ");
        put_field(k, 20);
        printf(" ");
        put_field(v, 0);
        printf("\n");
    }
    int64_t nt = bnn_st_count(st), total = 0;
    printf("tensors   %lld\n", (long long)nt);
    for (int64_t i = 0; i < nt; i++) {
        bnn_st_tensor t;
        if (bnn_st_at(st, i, &t)) continue;
        char shape[128];
        size_t p = 0;
        shape[0] = '\0';
        for (int d = 0; d < t.ndim && p < sizeof shape; d++)
            p += (size_t)snprintf(shape + p, sizeof shape - p, "%s%lld", d ? ", " : "",
                                  (long long)t.shape[d]);
        printf("  ");
        put_field(t.name, 20);
        printf(" %-4s [%s]\n", bnn_dtype_name(t.dtype), shape);
        total += t.numel;
    }
    printf("elements  %lld\n", (long long)total);
    /* Everything the file holds is shown; a bnn file that cannot be used then fails (exit 1),
     * so that a script can tell. A safetensors file that is not a bnn model is only described.
     * The metadata the predicting commands read are checked as they check them. */
    if (bad[0]) {
        bnn_st_free(st);
        return cli_error(cmd, "%s: %s", pos[0], bad);
    }
    if (loaded) {
        double x;
        int64_t seed, count; /* (the values are checked, not used) */
        rc = cli_meta_temperature(cmd, pos[0], st, task, &x);
        if (!rc) rc = cli_meta_positive(cmd, pos[0], "bnn.sigma", bnn_st_meta(st, "bnn.sigma"), &x);
        if (!rc)
            rc = cli_meta_int(cmd, pos[0], "bnn.seed", bnn_st_meta(st, "bnn.seed"), 0, 0, &seed);
        /* (the hold-out that laplace, von, calibrate and --resume read; its size against the
         * data is theirs to check, the data being elsewhere) */
        if (!rc)
            rc = cli_meta_count(cmd, pos[0], "bnn.data.holdout",
                                bnn_st_meta(st, "bnn.data.holdout"), &count);
        if (!rc)
            rc = cli_meta_int(cmd, pos[0], "bnn.data.target_col",
                              bnn_st_meta(st, "bnn.data.target_col"), INT64_MIN + 1, 0, &count);
        if (!rc) rc = cli_note_range(cmd, pos[0], NULL, pos[0], st);
    }
    bnn_st_free(st);
    return rc ? 1 : 0;
}
