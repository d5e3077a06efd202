/* bnn laplace: a post-hoc Laplace approximation around a trained (MAP) network ("Laplace Redux",
 * Daxberger et al., NeurIPS 2021; the conventions of laplace-torch): the curvature over a subset
 * of the weights, the prior precision (and for regression the noise) tuned by the marginal
 * likelihood or on held-out data, saved as a posterior that eval, predict and compare use. */
#include "cli.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The matrix-free low-rank iteration: a redrawn line on a terminal while it runs (a step is 1 to 3
 * passes over the data, and a large network takes a minute for one), and the last one kept for
 * the summary and its note. */
typedef struct lowrank_progress {
    bool tty;
    int64_t passes;
    double residual, target, start;
} lowrank_progress;

static int lowrank_step(void *vctx, int64_t passes, double residual, double target) {
    lowrank_progress *lp = vctx;
    lp->passes = passes, lp->residual = residual, lp->target = target;
    if (lp->tty)
        fprintf(stderr, "\r\033[Klowrank: %lld passes over the data, residual %.2g (stops at %.2g), "
                "%.1f s", (long long)passes, residual, target, now_s() - lp->start);
    return 0;
}

/* The prior's optimisation: on a terminal a redrawn line per step; otherwise, once the first
 * step shows the whole will take more than 10 s (a per-layer prior over a full Hessian factorises
 * the P × P precision every step), one line saying how long. Cleared (terminal) by the caller. */
typedef struct prior_progress {
    bool tty, quiet, shown;
    double start;
    const char *what;
} prior_progress;

static void prior_step(void *vctx, int64_t step, int64_t steps) {
    prior_progress *pp = vctx;
    if (pp->quiet) return;
    const double t = now_s() - pp->start;
    if (pp->tty) {
        fprintf(stderr, "\r\033[K%s: step %lld of %lld, %.1f s", pp->what, (long long)step,
                (long long)steps, t);
        pp->shown = true;
    } else if (step == 1 && t * (double)steps > 10.0) {
        fprintf(stderr, "%s: %lld steps of about %.2g s each (%.0f s in all)\n", pp->what,
                (long long)steps, t, t * (double)steps);
    }
}

/* A note when the marginal likelihood was still rising at the last of `steps` Adam steps: a move
 * along its gradient (in the logs of the prior precisions and the noise, the largest coordinate
 * moving by 0.03, 0.1, 0.3, 1 or 3) raises it by more than half a nat. At a settled optimum every
 * move lowers it. The moves are a factor of about 3 apart, so that one of them lands near the
 * optimum of the line: it then gains at least 0.82 of the line's remaining rise (of a quadratic),
 * and a fit more than about 0.6 nat short is noted. Before, a fit on targets of scale 1e30 saved
 * sigma 31, 146 or 2781 for 100, 1000 or 10000 steps, silently; with a move of 0.1 alone a steady
 * climb of 2 nats per unit of log σ (three identical examples: σ 1.6e-4 after 100 steps, 4.4e-7
 * and 10.7 nats higher after 1000) went unsaid; and with moves of 0.1 and 1 alone so did a fit 1.1
 * nats short after one step (the optimum 0.46 away in log δ: 0.1 gained 0.41, 1 overshot). */
static void warn_unsettled(const bnn_laplace *la, const double *lay, int64_t nlay, int64_t steps,
                           bool noise, double lml) {
    double gs = 0.0, gl[64] = {0}, moved[64]; /* (gradients stay 0 if lml refuses the point) */
    const double sig = bnn_laplace_sigma(la), d = bnn_laplace_prior_prec(la);
    if (!lay) bnn_laplace_lml(la, d, sig, gl, &gs);
    else bnn_laplace_lml_layers(la, lay, nlay, sig, gl, &gs);
    if (!noise) gs = 0.0;
    const int64_t np = lay ? nlay : 1;
    double big = fabs(gs); /* the largest coordinate of the gradient */
    for (int64_t i = 0; i < np; i++) big = fmax(big, fabs(gl[i]));
    if (!(big > 0.0) || !isfinite(big)) return;
    static const double moves[] = {0.03, 0.1, 0.3, 1.0, 3.0};
    double best = 0.5, best_h = 0.0;
    for (size_t j = 0; j < sizeof moves / sizeof moves[0]; j++) {
        const double h = moves[j] / big;
        if (!lay) moved[0] = d * exp(h * gl[0]);
        for (int64_t i = 0; lay && i < nlay; i++) moved[i] = lay[i] * exp(h * gl[i]);
        const double sig2 = sig * exp(h * gs);
        const double next = lay ? bnn_laplace_lml_layers(la, moved, nlay, sig2, NULL, NULL)
                                : bnn_laplace_lml(la, moved[0], sig2, NULL, NULL);
        if (next - lml > best) best = next - lml, best_h = moves[j];
    }
    if (best_h > 0.0)
        fprintf(stderr, "note: the marginal likelihood was still rising after %lld step%s (a move "
                "of %g in the log prior%s along its gradient adds %.3g to it); more --steps may "
                "help\n", (long long)steps, steps == 1 ? "" : "s", best_h,
                noise ? " and noise" : "", best);
}

/* --link mc's draws in the grid search (laplace-torch's default n_samples), recorded in the
 * file with the link. */
#define GRID_MC_DRAWS 100

/* Validation NLL of the GLM predictive (a classifier's through link lk, Monte Carlo with
 * GRID_MC_DRAWS draws from seed, as laplace-torch's grid search takes its link_approx; Gaussian
 * with the predictive variance) at each of nd prior precisions (the grid search), from one pass
 * of the network over the validation data. The library's error code (negative), or 1 when out
 * of memory here (said). */
static int val_nll(const char *cmd, bnn_model *m, bnn_laplace *la, const bnn_dataset *val,
                   const double *deltas, int64_t nd, double sigma, bnn_link lk, uint64_t seed,
                   double *nll) {
    /* the noise the predictive is taken with (the precisions are the list's) */
    bnn_laplace_set_prior(la, bnn_laplace_prior_prec(la), sigma);
    const bnn_task task = bnn_dataset_task(val);
    const int64_t n = bnn_dataset_n(val), k = bnn_model_pred_dim(m, task);
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.sigma = sigma, pp.link = lk, pp.link_samples = lk == BNN_LINK_MC ? GRID_MC_DRAWS : 0;
    pp.seed = seed;
    /* The predictions of as many precisions at a time as 64 MiB holds (all 21 unless the
     * hold-out is large or the classes many), a pass of the network each time. */
    int64_t ns = (int64_t)((64u << 20) / sizeof(double)) / (n * k);
    ns = ns < 1 ? 1 : ns > nd ? nd : ns;
    const size_t sz = (size_t)(ns * n * k) * sizeof(double);
    double *a = malloc(sz), *v = task == BNN_TASK_CLASSIFICATION ? NULL : malloc(sz);
    if (!a || (!v && task != BNN_TASK_CLASSIFICATION)) {
        free(a), free(v);
        return cli_error(cmd, "--prior grid: out of memory for the predictions on the hold-out");
    }
    int rc = 0;
    for (int64_t d = 0; !rc && d < nd; d++) {
        if (d % ns == 0 &&
            (rc = bnn_laplace_predict_priors(la, m, bnn_dataset_cx(val), n, task, &pp, deltas + d,
                                             nd - d < ns ? nd - d : ns,
                                             task == BNN_TASK_CLASSIFICATION ? a : NULL,
                                             v ? a : NULL, v)))
            break;
        const double *ad = a + d % ns * n * k, *vd = v ? v + d % ns * n * k : NULL;
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) {
            if (task == BNN_TASK_CLASSIFICATION) {
                s -= log(ad[i * k + bnn_dataset_clabels(val)[i]]);
            } else {
                for (int64_t j = 0; j < k; j++) {
                    const double r = ad[i * k + j] - bnn_dataset_ctargets(val)[i * k + j];
                    s += 0.5 * log(2 * 3.14159265358979323846 * vd[i * k + j]) +
                         0.5 * r * r / vd[i * k + j];
                }
            }
        }
        nll[d] = s / (double)n;
    }
    free(a), free(v);
    return rc;
}

/* --subset layers:I,J,...: Linear-layer indices (as `bnn info` numbers them), in any order;
 * sorted here, since the subset always follows the model's order. Returns a usage error (exit 2)
 * for an empty list, a non-number, a duplicate or too many entries. */
#define MAX_SUBSET_LAYERS 256
/* Whether the posterior at its chosen prior can be used: a weight sample (fixed seed) must be
 * finite. A prior precision far below the curvature's scale on a flat direction gives variances
 * beyond float range, and such a file would fail in every later eval --samples, so it is refused
 * here. Near that edge a sample can be finite and the network's outputs at it still overflow;
 * eval --samples reports that itself. */
static int check_sample(const char *cmd, const bnn_laplace *la, int64_t P) {
    float *theta = malloc((size_t)P * sizeof *theta);
    if (!theta) return cli_error(cmd, "out of memory");
    bnn_rng rng = bnn_rng_make(0, 0);
    int rc = bnn_laplace_sample(la, &rng, theta);
    if (rc && rc != BNN_EINVAL)
        rc = cli_fail(cmd, rc, NULL);
    else if (rc)
        rc = cli_error(cmd, "at prior precision %g a weight sample is not finite (the posterior "
                       "variance overflows); choose a larger --prior (nothing saved)",
                       bnn_laplace_prior_prec(la));
    free(theta);
    return rc;
}

/* The same for the default predictive, the linearised (GLM) one (a classifier's through link lk,
 * the one the file records), on the first 16 rows of the data fitted: a prior at which its
 * variance overflows (a kron or low-rank posterior of a heteroscedastic model at --prior 1e-30)
 * made a file that every eval and predict refused. Such a prior fails at every input; 16 rows
 * keep the check's cost small beside the fit (an all-weights low-rank GLM on Fashion-MNIST's MLP
 * takes about 0.13 s per row). */
static int check_glm(const char *cmd, const bnn_laplace *la, bnn_model *m, const bnn_dataset *ds,
                     bnn_task task, bnn_link lk) {
    const int64_t n = bnn_dataset_n(ds) < 16 ? bnn_dataset_n(ds) : 16;
    const int64_t C = bnn_model_pred_dim(m, task);
    double *a = malloc((size_t)(n * C) * sizeof *a), *b = malloc((size_t)(n * C) * sizeof *b);
    int rc = 0;
    if (!a || !b) {
        rc = cli_error(cmd, "out of memory");
    } else {
        struct bnn_predict_params pp = bnn_predict_default_params();
        pp.sigma = bnn_laplace_sigma(la);
        const bool cls = task == BNN_TASK_CLASSIFICATION;
        if (cls) /* the link the file will record (the grid's), which eval then takes */
            pp.link = lk, pp.link_samples = lk == BNN_LINK_MC ? GRID_MC_DRAWS : 0;
        rc = bnn_laplace_predict(la, m, bnn_dataset_cx(ds), n, task, &pp, cls ? a : NULL, NULL,
                                 cls ? NULL : a, cls ? NULL : b);
        if (rc == BNN_EDIVERGED)
            rc = cli_error(cmd, "at prior precision %g %s; choose a larger --prior (nothing "
                           "saved)", bnn_laplace_prior_prec(la), bnn_last_error());
        else if (rc)
            rc = cli_fail(cmd, rc, NULL);
        /* A classifier's GLM predictive flattened to uniform on every row where the network
         * itself is not (a prior precision so small that the logits' variances swamp their
         * means, e.g. --prior 1e-12): usable, but not what the user wants; said, and saved. */
        if (!rc && cls && n > 0 &&
            (rc = bnn_predict(m, NULL, bnn_dataset_cx(ds), n, task, &pp, b, NULL, NULL, NULL)))
            rc = cli_fail(cmd, rc, NULL);
        else if (!rc && cls && n > 0) {
            double dev = 0.0, top = 0.0; /* the GLM's largest |p - 1/C|; the MAP's mean max */
            for (int64_t i = 0; i < n; i++) {
                double mx = 0.0;
                for (int64_t c = 0; c < C; c++) {
                    dev = fmax(dev, fabs(a[i * C + c] - 1.0 / (double)C));
                    mx = fmax(mx, b[i * C + c]);
                }
                top += mx / (double)n;
            }
            if (dev < 1e-3 && top > 1.0 / (double)C + 0.1)
                fprintf(stderr, "note: at prior precision %g the GLM predictive is uniform "
                        "within %.1g on the first %lld examples fitted, where the network's "
                        "largest probability averages %.2f: the prior leaves the logits almost "
                        "unconstrained (a larger --prior, or marglik, gives a usable "
                        "posterior)\n", bnn_laplace_prior_prec(la), fmax(dev, 1e-16),
                        (long long)n, top);
        }
    }
    free(a), free(b);
    return rc;
}

static int parse_layers(const char *cmd, const char *subset, int64_t *idx, int64_t *n) {
    const char *q = subset + strlen("layers:");
    *n = 0;
    if (!*q)
        return cli_usage_error(cmd, "--subset layers: needs Linear-layer indices, e.g. "
                                    "layers:0,2 (see bnn info MODEL)");
    while (*q) {
        const char *start = q;
        int64_t v = 0;
        /* All the digits are read (those past 1e8 were once taken for "not a layer index"); an
         * index the caller cannot quote (over 18 digits) is out of range here. */
        while (*q >= '0' && *q <= '9') {
            if (q - start == 18)
                return cli_usage_error(cmd, "--subset %s: layer %.*s is out of range", subset,
                                       (int)strspn(start, "0123456789"), start);
            v = v * 10 + (*q++ - '0');
        }
        if (q == start || (*q && *q != ','))
            return cli_usage_error(cmd,
                                   "--subset %s: '%.*s' is not a layer index (expected "
                                   "layers:I,J,... with indices 0, 1, ...)",
                                   subset, (int)strcspn(start, ","), start);
        if (*q == ',' && !q[1])
            return cli_usage_error(cmd, "--subset %s: the list ends with a comma", subset);
        if (*n == MAX_SUBSET_LAYERS)
            return cli_usage_error(cmd, "--subset %s: at most %d layers", subset,
                                   MAX_SUBSET_LAYERS);
        idx[(*n)++] = v;
        if (*q == ',') q++;
    }
    for (int64_t i = 1; i < *n; i++) /* insertion sort: a handful of entries */
        for (int64_t j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
            const int64_t t = idx[j];
            idx[j] = idx[j - 1], idx[j - 1] = t;
        }
    for (int64_t i = 1; i < *n; i++)
        if (idx[i] == idx[i - 1])
            return cli_usage_error(cmd, "--subset %s: layer %lld is listed twice", subset,
                                   (long long)idx[i]);
    return 0;
}

int cmd_laplace(int argc, char **argv) {
    const char *cmd = "laplace";
    cli_data_flags df = {.target_col = -1};
    const char *model_path = NULL, *output = NULL, *subset = "last-layer", *hessian = "kron";
    const char *curvature = "ggn", *prior = "marglik", *linkname = NULL;
    int64_t steps = 100, batch = 0, threads = 0, seed = 0, rank = 20;
    cli_opt opts[] = {
        {"model", 'm', OPT_STR, &model_path, "FILE", "the trained (MAP) model (required)", 0},
        {"output", 'o', OPT_STR, &output, "FILE", "write the Laplace posterior here (required)", 0},
        {"data", 'd', OPT_STR, &df.data, "SPEC",
         "training data for the curvature (default: the model's; the model's hold-out is left "
         "out of its own data, also when given here by the same spec)", 0},
        {"subset", 0, OPT_STR, &subset, "NAME",
         "last-layer (default), all, or layers:I,J,... (Linear layers by the index bnn info shows, "
         "e.g. layers:0,2)",
         0},
        {"hessian", 0, OPT_STR, &hessian, "NAME", "kron (default), diag, full or lowrank", 0},
        {"rank", 0, OPT_INT, &rank, "R", "lowrank: eigenpairs of the GGN kept (default 20)", 0},
        {"curvature", 0, OPT_STR, &curvature, "NAME",
         "ggn (exact, default), ggn-mc (sampled Fisher) or ef (empirical Fisher)", 0},
        {"prior", 0, OPT_STR, &prior, "HOW",
         "marglik (default: maximise the marginal likelihood), marglik-layers (one precision per "
         "weight and per bias tensor, laplace-torch's layer-wise prior), grid (on the hold-out), "
         "or a number; marglik and marglik-layers also tune a Gaussian regression model's noise "
         "sigma (a heteroscedastic model predicts its own), grid and a number keep it as trained",
         0},
        {"link", 0, OPT_STR, &linkname, "NAME",
         "grid, a classifier: the link whose validation NLL scores each prior precision, as "
         "eval's --link: probit (default), mc (100 draws from --seed), bridge or bridge-norm; "
         "the file records it, and eval, predict, compare and plot predict through it", 0},
        {"steps", 0, OPT_INT, &steps, "N",
         "marglik, marglik-layers: Adam steps on the log prior precision (default 100; a note says "
         "when the optimum is not reached)", 0},
        {"seed", 's', OPT_INT, &seed, "N",
         "ggn-mc: seed of the sampled labels; lowrank: of its random subspace; --link mc under "
         "--prior grid: of its draws (default 0)", 0},
        {"batch-size", 'b', OPT_INT, &batch, "N",
         "examples per pass (default: 1024 for the network's last layer or --hessian diag, else 256)", 0},
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
        cli_usage(stdout, cmd, "-m MAP.safetensors [--subset S] [--hessian H] [--curvature C] [--prior P] -o LA.safetensors",
                  "Fits a Laplace approximation N(θ_MAP, (H/σ² + δI)⁻¹) over a subset of a trained\n"
                  "network's weights (H/σ⁴ for --curvature ef with a Gaussian likelihood: the\n"
                  "empirical Fisher of noise σ). eval, predict and compare then use its linearised\n"
                  "(GLM) predictive (probit for classification), or weight samples with --samples S.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    if (!model_path || !output) return cli_usage_error(cmd, "-m MODEL and -o FILE are required");
    if (cli_check_file_output(cmd, output, "posterior")) return 2;
    struct bnn_curv_params cp = bnn_curv_default_params();
    int64_t sel[MAX_SUBSET_LAYERS], nsel = 0;
    char subset_txt[MAX_SUBSET_LAYERS * 12 + 8];
    if (!strcmp(subset, "last-layer")) cp.subset = BNN_SUBSET_LAST_LAYER;
    else if (!strcmp(subset, "all")) cp.subset = BNN_SUBSET_ALL;
    else if (!strncmp(subset, "layers:", 7)) {
        if ((rc = parse_layers(cmd, subset, sel, &nsel))) return rc;
        cp.subset = BNN_SUBSET_LAYERS, cp.layers = sel, cp.nlayers_sel = nsel;
        /* Printed and saved in the sorted form: layers:0,2 for layers:2,0. */
        size_t at = (size_t)snprintf(subset_txt, sizeof subset_txt, "layers:");
        for (int64_t i = 0; i < nsel && at < sizeof subset_txt; i++)
            at += (size_t)snprintf(subset_txt + at, sizeof subset_txt - at, "%s%lld", i ? "," : "",
                                   (long long)sel[i]);
        subset = subset_txt;
    } else
        return cli_usage_error(cmd, "--subset must be last-layer, all or layers:I,J,...");
    if (bnn_hessian_parse(hessian, &cp.hessian))
        return cli_usage_error(cmd, "--hessian must be kron, diag, full or lowrank");
    if (rank < 1) return cli_usage_error(cmd, "--rank must be >= 1");
    if (cli_seen(opts, nopts, "rank") && cp.hessian != BNN_HESS_LOWRANK)
        return cli_usage_error(cmd, "--rank is for --hessian lowrank");
    cp.rank = rank;
    if (bnn_curvature_parse(curvature, &cp.curvature))
        return cli_usage_error(cmd, "--curvature must be ggn, ggn-mc or ef");
    double fixed = 0;
    if (strcmp(prior, "marglik") && strcmp(prior, "grid") && strcmp(prior, "marglik-layers")) {
        char *end;
        fixed = bnn_strtod(prior, &end);
        const bool number = end != prior && !*end && !isspace((unsigned char)*prior);
        /* +inf from digits (1e400) is too large; "inf", "nan" and negatives are not positive
         * numbers (below) */
        if (number && fixed == INFINITY && !strpbrk(prior, "iInN"))
            return cli_usage_error(cmd, "--prior %s is beyond the largest double", prior);
        if (!number || !(fixed > 0) || !isfinite(fixed))
            return cli_usage_error(cmd, "--prior must be marglik, marglik-layers, grid or a positive "
                                   "number");
    }
    if (!strcmp(prior, "marglik-layers") && cp.hessian == BNN_HESS_LOWRANK)
        return cli_usage_error(cmd, "--prior marglik-layers needs --hessian diag, kron or full (a "
                               "low-rank curvature has no per-layer blocks)");
    if (steps < 1 || steps > BNN_LAPLACE_MAX_STEPS)
        return cli_usage_error(cmd, "--steps must be between 1 and %d", BNN_LAPLACE_MAX_STEPS);
    bnn_link glink = BNN_LINK_PROBIT; /* the grid's link */
    if (linkname && strcmp(prior, "grid"))
        return cli_usage_error(cmd, "--link sets the link whose validation NLL scores the prior "
                               "precisions of --prior grid; --prior %s has none", prior);
    if (linkname && bnn_link_parse(linkname, &glink))
        return cli_usage_error(cmd, "--link: %s", bnn_last_error());
    if (seed < 0) return cli_usage_error(cmd, "--seed must be >= 0");
    if (cli_seen(opts, nopts, "seed") && cp.curvature != BNN_CURV_GGN_MC &&
        cp.hessian != BNN_HESS_LOWRANK && glink != BNN_LINK_MC)
        return cli_usage_error(cmd, "--seed is for --curvature ggn-mc (its sampled labels), "
                               "--hessian lowrank (its random subspace) and --link mc (the grid's "
                               "draws); nothing else is random");
    if (cli_seen(opts, nopts, "steps") && strcmp(prior, "marglik") &&
        strcmp(prior, "marglik-layers"))
        return cli_usage_error(cmd, "--steps is for --prior marglik and marglik-layers");
    if (batch < 0 || (batch == 0 && cli_seen(opts, nopts, "batch-size")))
        return cli_usage_error(cmd, "--batch-size must be >= 1");
    if (cli_set_threads(cmd, threads)) return 2;
    cp.batch_size = batch, cp.seed = (uint64_t)seed;

    bnn_model *m = NULL;
    bnn_st *st = NULL;
    bnn_dataset *all = NULL, *train = NULL, *val = NULL;
    bnn_curv *c = NULL;
    bnn_laplace *la = NULL;
    bnn_task task;
    if ((rc = bnn_model_load(&m, model_path, &task, &st))) return cli_fail(cmd, rc, NULL);
    const char *kind = cli_posterior_name(st);
    if (kind && strcmp(kind, "point")) {
        rc = cli_usage_error(cmd, "%s already holds a %.40s posterior; Laplace starts from a "
                             "MAP network (train with --method adamw or sgd)", model_path, kind);
        goto done;
    }
    if ((rc = cli_note_temperature(cmd, model_path, st, "the Laplace posterior uses"))) goto done;
    /* The subset against the model, before any work: layers:'s indices, and marglik-layers'
     * limit of one precision per tensor (the curvature's groups: each Linear layer's weight and
     * bias). */
    int64_t nlin = 0, nsub = 0;
    for (int64_t i = 0; i < bnn_model_nlayers(m); i++) {
        if (strcmp(bnn_model_layer_kind(m, i), "linear")) continue;
        for (int64_t j = 0; cp.subset == BNN_SUBSET_LAYERS && j < nsel; j++) nsub += sel[j] == nlin;
        nlin++;
    }
    nsub = cp.subset == BNN_SUBSET_ALL ? nlin : cp.subset == BNN_SUBSET_LAST_LAYER ? 1 : nsub;
    if (cp.subset == BNN_SUBSET_LAYERS) {
        if (sel[nsel - 1] >= nlin) {
            rc = cli_usage_error(cmd,
                                 "--subset %s: layer %lld is out of range; %s has %lld Linear "
                                 "layers, 0..%lld (see bnn info %s)",
                                 subset, (long long)sel[nsel - 1], bnn_model_spec(m),
                                 (long long)nlin, (long long)(nlin - 1), model_path);
            goto done;
        }
    }
    if (!strcmp(prior, "marglik-layers") && 2 * nsub > 64) {
        rc = cli_usage_error(cmd, "--prior marglik-layers supports at most 64 weight and bias "
                             "tensors (the subset has %lld Linear layers, %lld tensors)",
                             (long long)nsub, (long long)(2 * nsub));
        goto done;
    }
    /* The hold-out belongs to the model's own data: also when --data names that same spec
     * (fitting the curvature on the validation rows would leak them into the grid search).
     * --seed is the sampled labels'; generated data is drawn with the model's seed (bnn.seed),
     * also for another spec given with --data. */
    const char *given = df.data, *own = bnn_st_meta(st, "bnn.data");
    bool own_data;
    int64_t model_holdout;
    if ((rc = cli_fit_data(cmd, m, model_path, st, task, &df, opts, nopts, output, &all, &train, &val,
                           &own_data, &model_holdout)))
        goto done;
    if ((rc = cli_check_link_model(cmd, linkname ? "link" : NULL, glink, model_path, task,
                                   bnn_lik_name(bnn_model_lik(m, task)))))
        goto done;
    if (!strcmp(prior, "grid") && !val) {
        if (!own_data && model_holdout > 0)
            rc = cli_usage_error(cmd, "--prior grid needs held-out data: %s holds out examples of "
                                 "its own data (%s), not of --data %s", model_path,
                                 own ? own : "?", given);
        else
            rc = cli_usage_error(cmd, "--prior grid needs held-out data: train the model with "
                                 "--holdout N");
        goto done;
    }
    const bnn_dataset *fit = train ? train : all;
    const char *s = bnn_st_meta(st, "bnn.sigma");
    /* Only the Gaussian likelihood has a noise σ to start from and tune. */
    const bool noise = bnn_model_lik(m, task) == BNN_LIK_GAUSSIAN;
    double sigma = 1.0;
    if (noise && (rc = cli_meta_positive(cmd, model_path, "bnn.sigma", s, &sigma))) goto done;
    double t0 = now_s();
    /* Float sums first (full over the last layer: half the time), then everything again in
     * double where float's rounding is not small beside the posterior precision's smallest
     * eigenvalue at the prior chosen (or the prior's search met an eigenvalue that rounding made
     * negative): full, lowrank and kron alike. */
    cp.sums = BNN_SUMS_FLOAT;
    double grid_best = NAN, grid_d = 0.0; /* --prior grid: reported once the fit stands */
    int grid_i = -1;
    char redo_note[256] = ""; /* why the fit was summed again in double: said once it stands */
again:;
    const double t_c0 = now_s(); /* the curvature's time: the final computation's */
    lowrank_progress lp = {.tty = isatty(2) && !cli_quiet, .start = t_c0};
    cp.progress = lowrank_step, cp.progress_ctx = &lp;
    rc = bnn_curv_compute(&c, m, fit, &cp);
    if (lp.tty && lp.passes) fprintf(stderr, "\r\033[K");
    if (rc) {
        rc = cli_fail_fit(cmd, rc);
        goto done;
    }
    double t_curv = now_s() - t_c0;
    const int64_t off = bnn_curv_offset(c), P = bnn_curv_nparams(c), nseg = bnn_curv_nsegments(c);
    char where[256]; /* "offset 1234", or "segments at offsets 0+60, 1234+39" */
    snprintf(where, sizeof where, "offset %lld", (long long)off);
    if (nseg > 1) {
        size_t at = (size_t)snprintf(where, sizeof where, "%lld segments:", (long long)nseg);
        for (int64_t i = 0; i < nseg && at < sizeof where; i++) {
            int64_t so, sl;
            bnn_curv_segment(c, i, &so, &sl);
            at += (size_t)snprintf(where + at, sizeof where - at, "%s %lld..%lld", i ? "," : "",
                                   (long long)so, (long long)(so + sl - 1));
        }
    }
    int64_t kept = 0; /* lowrank: the eigenpairs kept (at most the subset's size) */
    if (cp.hessian == BNN_HESS_LOWRANK) bnn_curv_lowrank(c, NULL, NULL, &kept);
    const bool redo_ok = cp.sums != BNN_SUMS_DOUBLE && bnn_curv_unit(c) > 0x1p-30;
    /* a failure from an eigenvalue that rounding made negative: not kron's, clipped at 0 */
    const bool redo_neg = redo_ok && cp.hessian != BNN_HESS_KRON;
    rc = bnn_laplace_new_from_params(&la, c, bnn_model_cparams(m), task);
    c = NULL; /* owned by the Laplace object, freed with it (also on failure) */
    if (rc) {
        rc = cli_fail(cmd, rc, NULL);
        goto done;
    }
    double lml1 = bnn_laplace_lml(la, 1.0, sigma, NULL, NULL);
    char what[48];
    snprintf(what, sizeof what, "prior (%s)", prior);
    prior_progress ppg = {.tty = isatty(2), .quiet = cli_quiet, .start = now_s(), .what = what};
    bnn_laplace_set_progress(la, prior_step, &ppg);
    if (!strcmp(prior, "marglik")) {
        rc = bnn_laplace_optimize(la, steps);
        if (ppg.shown) fprintf(stderr, "\r\033[K");
        if (rc) {
            if (rc == BNN_EDIVERGED && redo_neg) goto redo_failed;
            rc = cli_fail(cmd, rc, NULL);
            goto done;
        }
    } else if (!strcmp(prior, "marglik-layers")) {
        rc = bnn_laplace_optimize_layers(la, steps);
        if (ppg.shown) fprintf(stderr, "\r\033[K");
        if (rc) {
            if (rc == BNN_EDIVERGED && redo_neg) goto redo_failed;
            rc = cli_fail(cmd, rc, NULL);
            goto done;
        }
    } else if (!strcmp(prior, "grid")) {
        /* 21 values log-spaced over [1e-4, 1e4]; the validation NLL of the GLM predictive. */
        double best = INFINITY, best_d = 1.0, deltas[21], v[21];
        int best_i = 10;
        for (int i = 0; i <= 20; i++) deltas[i] = pow(10.0, -4.0 + 0.4 * i);
        if ((rc = val_nll(cmd, m, la, val, deltas, 21, sigma, glink, (uint64_t)seed, v))) {
            /* a variance that float rounding made negative at a small prior */
            if (rc == BNN_EDIVERGED && redo_neg) goto redo_failed;
            rc = rc > 0 ? rc : cli_fail(cmd, rc, NULL);
            goto done;
        }
        for (int i = 0; i <= 20; i++)
            if (v[i] < best) best = v[i], best_d = deltas[i], best_i = i;
        if (!isfinite(best)) { /* no value won: the middle one would be saved as if it had */
            rc = cli_error(cmd, "--prior grid: the validation NLL is not finite at any prior "
                           "precision of the grid (1e-4 to 1e4): the model's predictions on the "
                           "held-out data are unusable (nothing saved)");
            goto done;
        }
        bnn_laplace_set_prior(la, best_d, sigma);
        grid_best = best, grid_d = best_d, grid_i = best_i;
    } else {
        bnn_laplace_set_prior(la, fixed, sigma);
    }
    const double delta = bnn_laplace_prior_prec(la), sig = bnn_laplace_sigma(la);
    const int64_t nlay = bnn_laplace_nlayers(la);
    double lay[64];
    const bool by_layer = !strcmp(prior, "marglik-layers") && nlay <= 64 &&
                          bnn_laplace_prior_layers(la, lay, nlay) == 0;
    /* float's rounding of the eigenvalues against the posterior precision's smallest */
    const double rounding = bnn_laplace_rounding(la), ratio = bnn_laplace_rounding_ratio(la);
    if (redo_ok && ratio > 1e-2) {
        if (isfinite(ratio))
            snprintf(redo_note, sizeof redo_note, "float sums moved the curvature's eigenvalues "
                     "by about %.2g, %.2g of the posterior precision's smallest", rounding, ratio);
        else
            snprintf(redo_note, sizeof redo_note, "float sums moved the curvature's eigenvalues "
                     "by about %.2g and left the posterior precision not positive definite",
                     rounding);
        goto redo;
    }
    /* With -q only where it carries a note (the best is an end of the grid). */
    if (grid_i >= 0 && (!cli_quiet || grid_i == 0 || grid_i == 20))
        fprintf(stderr, "grid: best validation NLL %.4f%s%s%s at prior precision %g%s\n",
                grid_best, glink != BNN_LINK_PROBIT ? " (" : "",
                glink != BNN_LINK_PROBIT ? cli_link_words(glink) : "",
                glink != BNN_LINK_PROBIT ? ")" : "", grid_d,
                grid_i == 0 || grid_i == 20 ? " (the grid's end: the best may lie beyond "
                                              "it; try --prior with values past it)"
                                            : "");
    double t_fit = 0; /* the fit's time, its checks included (below) */
    const double lml = by_layer ? bnn_laplace_lml_layers(la, lay, nlay, sig, NULL, NULL)
                                : bnn_laplace_lml(la, delta, sig, NULL, NULL);
    if (!isfinite(lml)) { /* the library says why: H + δI not positive definite, an overflow */
        rc = cli_error(cmd, "%s (nothing saved)", bnn_last_error());
        goto done;
    }
    if ((rc = check_sample(cmd, la, P)) || (rc = check_glm(cmd, la, m, fit, task, glink)))
        goto done;
    t_fit = now_s() - t0;
    if (*redo_note) fprintf(stderr, "note: %s; summed again in double\n", redo_note);
    printf("data       %lld examples of %s\n", (long long)bnn_dataset_n(fit), df.data);
    printf("subset     %s: %lld parameters (%s)\n", subset, (long long)P, where);
    if (cp.hessian == BNN_HESS_LOWRANK) {
        printf("hessian    %s (rank %lld), %s curvature\n", hessian, (long long)kept, curvature);
        if (lp.passes) /* the matrix-free way: how far its iteration got */
            printf("lowrank    matrix-free: %lld passes over the data, residual %.2g of the top "
                   "eigenvalue (target %.2g)\n",
                   (long long)lp.passes, lp.residual, lp.target);
        if (lp.passes && lp.residual > lp.target) {
            fflush(stdout); /* the note after the line it is about */
            fprintf(stderr, "note: the low-rank iteration stopped at its limit of %lld passes "
                    "with a residual of %.2g, above its target %.2g: the eigenpairs are "
                    "approximate\n",
                    (long long)lp.passes, lp.residual, lp.target);
        }
        if (kept < rank)
            fprintf(stderr, "note: %s %lld is more than the subset's %lld parameters; rank "
                    "%lld is kept\n", cli_seen(opts, nopts, "rank") ? "--rank" : "the default rank",
                    (long long)rank, (long long)P, (long long)kept);
    } else {
        printf("hessian    %s, %s curvature\n", hessian, curvature);
    }
    char num[48];
    printf("log ML     %s at prior precision 1%s\n", cli_fmt_lml(num, lml1),
           noise ? " (sigma as trained)" : "");
    char layers_txt[64 * 26] = "";
    if (by_layer) {
        size_t at = 0;
        for (int64_t i = 0; i < nlay && at < sizeof layers_txt; i++)
            at += (size_t)snprintf(layers_txt + at, sizeof layers_txt - at, "%s%.6g", i ? ", " : "",
                                   lay[i]);
    }
    if (!strcmp(prior, "marglik-layers"))
        printf("prior      precisions %s (%s: one per weight and bias tensor, in order)\n",
               layers_txt, prior);
    /* How it was chosen: a method's name, or "given" for a number (not "5 (5)") */
    printf("prior      precision %.6g (%s%s%s%s)%s", delta,
           !strcmp(prior, "marglik-layers") ? "their mean, " : "", fixed > 0 ? "given" : prior,
           glink != BNN_LINK_PROBIT ? ", link " : "",
           glink != BNN_LINK_PROBIT ? bnn_link_name(glink) : "", noise ? "" : "\n");
    if (noise) printf(", noise sigma %.6g%s\n", sig, strncmp(prior, "marglik", 7) ? " (as trained)" : "");
    printf("log ML     %s at the chosen prior\n", cli_fmt_lml(num, lml));
    if (!strncmp(prior, "marglik", 7)) {
        fflush(stdout); /* the note after the table, as a terminal shows them */
        warn_unsettled(la, by_layer ? lay : NULL, nlay, steps, noise, lml);
    }
    printf("time       curvature %.3f s, total %.3f s\n", t_curv, t_fit);
    /* The posterior file: the MAP weights, the curvature, and the data settings for eval. */
    char sv[40];
    cli_fmt_double(sv, sizeof sv, sig);
    const char *keys[16], *vals[16];
    int nkv = 0;
    keys[nkv] = "bnn.method", vals[nkv++] = "laplace";
    if (bnn_st_text_ok(model_path)) keys[nkv] = "bnn.laplace.map", vals[nkv++] = model_path;
    keys[nkv] = "bnn.laplace.subset", vals[nkv++] = subset;
    keys[nkv] = "bnn.sigma", vals[nkv++] = sv;
    /* The grid's link, which eval, predict, compare and plot then take by default (the probit
     * is theirs without it). */
    if (glink != BNN_LINK_PROBIT) keys[nkv] = "bnn.link", vals[nkv++] = bnn_link_name(glink);
    char draws[24];
    snprintf(draws, sizeof draws, "%d", GRID_MC_DRAWS);
    if (glink == BNN_LINK_MC) keys[nkv] = "bnn.link_samples", vals[nkv++] = draws;
    rc = cli_save_posterior(cmd, la, m, task, output, st, &df, fit, keys, vals, nkv);
done:
    bnn_laplace_free(la);
    bnn_curv_free(c);
    bnn_model_free(m);
    bnn_st_free(st);
    bnn_dataset_free(all), bnn_dataset_free(train), bnn_dataset_free(val);
    return rc;

redo_failed: /* the prior's fit above failed on an eigenvalue rounding made negative */
    snprintf(redo_note, sizeof redo_note, "with float sums the prior met an eigenvalue that "
             "rounding made negative");
redo: /* the whole fit again, summed in double */
    bnn_laplace_free(la), la = NULL;
    cp.sums = BNN_SUMS_DOUBLE;
    grid_i = -1;
    goto again;
}
