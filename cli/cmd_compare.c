/* bnn compare: several models or posteriors side by side on the same test data — accuracy, NLL,
 * ECE, Brier, predictive entropy in distribution and on out-of-distribution data, and how well
 * the entropy separates the two (AUROC). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define MAXM 8

typedef struct column {
    const char *path;
    char name[64];
    struct bnn_cls_metrics c;
    double mi, ood_entropy[CLI_LIST_MAX], ood_auroc[CLI_LIST_MAX];
} column;

int cmd_compare(int argc, char **argv) {
    const char *cmd = "compare";
    cli_list models = {0}, ood = {0};
    const char *data = NULL;
    char data_buf[512];
    cli_data_flags csv = {.target_col = -1}; /* --target-col, --header, --no-header */
    int64_t samples = -1, seed = 0, threads = 0, link = 0;
    int64_t data_seed = -1; /* the seed generated test data was drawn with; -1: none */
    bool seed_first = false; /* whether that is the first model's own (else --seed's) */
    const char *linkname = NULL;
    bnn_link lk = BNN_LINK_PROBIT;
    bool lrt = false;
    cli_opt opts[] = {
        {"model", 'm', OPT_LIST, &models, "FILE", "a model file (repeat for each model, at most 8)", 0},
        {"data", 'd', OPT_STR, &data, "SPEC", "test data (default: the first model's training data)", 0},
        {"ood", 0, OPT_LIST, &ood, "SPEC", "out-of-distribution data (repeatable), e.g. fmnist:flip", 0},
        CLI_PREDICT_OPTS(samples, seed, link, linkname),
        CLI_LRT_OPT(lrt),
        {"threads", 't', OPT_INT, &threads, "N", "threads (default and 0: all cores)", 0},
        CLI_CSV_OPTS(csv),
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    /* room for more models than compare takes, so that a ninth gets the limit named, not
     * "unexpected argument" */
    const char *pos[CLI_LIST_MAX];
    int npos;
    bool help;
    int rc = cli_parse(argc, argv, opts, nopts, cmd, pos, CLI_LIST_MAX, &npos, &help);
    if (help) {
        cli_usage(stdout, cmd, "[-m] A.safetensors [-m] B.safetensors ... [--ood SPEC]",
                  "Evaluates classification models side by side on the same test split: a\n"
                  "point estimate at its weights, a posterior by model averaging.",
                  opts, nopts);
        return 0;
    }
    if (rc) return 2;
    const int given = models.n + npos; /* -m files and files given alone */
    if (given < 1 || given > MAXM) return cli_usage_error(cmd, "give 1 to %d models", MAXM);
    for (int i = 0; i < npos; i++) models.v[models.n++] = pos[i];
    if (cli_check_predict_opts(cmd, opts, nopts, samples, seed, &link, linkname, &lk)) return 2;
    if (cli_set_threads(cmd, threads)) return 2;
    column cols[MAXM];
    memset(cols, 0, sizeof cols);
    bnn_dataset *ds = NULL, *od[CLI_LIST_MAX] = {0};
    /* --samples, --link, --link-samples and --seed need a model (or data) they apply to: look
     * before evaluating any. */
    const char *lopt = linkname ? "link" : cli_seen(opts, nopts, "link-samples") ? "link-samples"
                                                                                : NULL;
    const bool link_seen = lopt != NULL;
    const bool seed_seen = cli_seen(opts, nopts, "seed");
    if (samples > 0 || link_seen || seed_seen || lrt) {
        bool any_laplace = false, any_posterior = false, any_diag = false, seeded = false;
        for (int i = 0; i < models.n; i++) {
            bnn_st *st = NULL;
            /* The header alone: the file is read whole when its model is evaluated. */
            if ((rc = bnn_st_read_meta(&st, models.v[i]))) return cli_fail(cmd, rc, NULL);
            const char *kind = bnn_st_meta(st, "bnn.posterior");
            const bool lap = kind && !strcmp(kind, "laplace");
            any_posterior = any_posterior || (kind && strcmp(kind, "point"));
            any_laplace = any_laplace || lap;
            any_diag = any_diag || (kind && !strcmp(kind, "diag"));
            bnn_link mlk = lk; /* its own link, as the loop below takes it */
            int64_t mlink = link;
            if (lap && ((rc = cli_check_link_model(cmd, NULL, lk, models.v[i],
                                                    BNN_TASK_CLASSIFICATION,
                                                    bnn_st_meta(st, "bnn.lik"))) ||
                        (rc = cli_meta_link(cmd, opts, nopts, samples, models.v[i], st,
                                            BNN_TASK_CLASSIFICATION, bnn_st_meta(st, "bnn.lik"),
                                            NULL, &mlk, &mlink)))) {
                bnn_st_free(st);
                return rc;
            }
            /* Weight samples: a diagonal Gaussian's by default, any posterior's with S > 0; a
             * Laplace posterior's Monte-Carlo link. The test data is the first model's. */
            seeded = seeded || (kind && strcmp(kind, "point") && (samples > 0 ||
                                (samples < 0 && !lap) || (lap && mlink > 0)));
            if (i == 0) {
                const char *spec = data ? data : bnn_st_meta(st, "bnn.data");
                seeded = seeded || (spec && cli_spec_uses_seed(spec, st, false));
            }
            bnn_st_free(st);
        }
        for (int o = 0; o < ood.n; o++) seeded = seeded || cli_spec_uses_seed(ood.v[o], NULL, true);
        if ((rc = cli_check_seed_used(cmd, opts, nopts, seeded))) return rc;
        if (!any_posterior && samples > 0)
            return cli_usage_error(cmd, "--samples averages over weights drawn from a posterior; "
                                   "every model here holds a point estimate");
        if (!any_laplace && link_seen)
            return cli_usage_error(cmd, "--%s is for a Laplace or VON posterior's "
                                   "linearised predictive; none of the models holds one", lopt);
        if (lrt && (!any_diag || samples == 0))
            return cli_usage_error(cmd, "--local-reparam is for the weight samples of a diagonal "
                                   "Gaussian posterior (ivon, mfvi); %s",
                                   samples == 0 ? "--samples 0 predicts at the mean"
                                                : "none of the models holds one");
    }
    for (int i = 0; i < models.n; i++) {
        bnn_model *m = NULL;
        bnn_st *st = NULL;
        bnn_posterior *q = NULL;
        bnn_task task;
        pred in = {0};
        column *c = &cols[i];
        c->path = models.v[i];
        if ((rc = bnn_model_load(&m, c->path, &task, &st))) {
            rc = cli_fail(cmd, rc, NULL);
            goto next;
        }
        if (task != BNN_TASK_CLASSIFICATION) {
            rc = cli_usage_error(cmd, "%s is a regression model; compare is for classifiers",
                                 c->path);
            goto next;
        }
        if ((rc = bnn_posterior_load(&q, m, st))) {
            rc = cli_fail(cmd, rc, c->path);
            goto next;
        }
        bnn_st_drop_tensors(st); /* only its metadata is read from here on */
        const char *meth = bnn_st_meta(st, "bnn.method");
        /* +T: a calibrated temperature; +lrt: predicted by local reparameterisation */
        snprintf(c->name, sizeof c->name, "%s%s%s", meth ? meth : "model",
                 bnn_st_meta(st, "bnn.temperature") ? "+T" : "",
                 lrt && bnn_posterior_kind_of(q) == BNN_POSTERIOR_DIAG ? "+lrt" : "");
        if (!ds) {
            /* Test data for every model: the first model's, read as it was trained. */
            cli_data_flags df = {.data = data, .task = "classification",
                                 .target_col = csv.target_col, .header = csv.header,
                                 .no_header = csv.no_header, .seed = seed};
            const bool seen_tc = cli_seen(opts, nopts, "target-col");
            if ((rc = cli_model_data(cmd, c->path, st, &df, seen_tc)) ||
                (rc = cli_check_csv_flags(cmd, opts, nopts, df.data, false)))
                goto next;
            /* df.data may point into st's metadata, freed with st below: keep a copy. */
            snprintf(data_buf, sizeof data_buf, "%s", df.data);
            data = df.data = data_buf;
            if ((rc = cli_load_data(cmd, &df, "test", BNN_TASK_CLASSIFICATION, true, &ds))) goto next;
            if (bnn_dataset_task(ds) != BNN_TASK_CLASSIFICATION) {
                rc = cli_usage_error(cmd, "%s is regression data; compare is for classifiers",
                                     data);
                goto next;
            }
            for (int o = 0; o < ood.n; o++) {
                if ((rc = cli_load_ood(cmd, ood.v[o], seed, df.target_col, m, &od[o]))) goto next;
            }
            if (bnn_data_generated(data)) {
                data_seed = df.seed;
                seed_first = cli_own_data(st, data) && bnn_st_meta(st, "bnn.seed");
            }
        } else if (data_seed >= 0 && cli_own_data(st, data)) {
            /* One draw scores every column: a model trained on another draw of the same data
             * gets other numbers here than from `bnn eval`, which reads its own draw. */
            const char *own = bnn_st_meta(st, "bnn.seed");
            int64_t s2;
            if (own && !bnn_parse_int(own, &s2) && s2 != data_seed)
                fprintf(stderr, "note: %s was trained on %s drawn with seed %lld; like every "
                        "model here it is scored on the draw with seed %lld (%s), so its "
                        "numbers are not eval's\n", c->path, data, (long long)s2,
                        (long long)data_seed, seed_first ? "the first model's" : "--seed");
        }
        /* Every model against the data: they need not share an input width. */
        if ((rc = cli_check_data(cmd, data, ds, m, task, true, c->path, st))) goto next;
        for (int o = 0; o < ood.n; o++)
            if ((rc = cli_check_data(cmd, ood.v[o], od[o], m, task, false, c->path, st))) goto next;
        struct bnn_predict_params pp = bnn_predict_default_params();
        /* ivon and mfvi average 32 samples by default; a Laplace file uses its GLM predictive
         * unless --samples asks for weight samples; a point estimate ignores both. */
        pp.samples = cli_samples_for(q, samples);
        pp.link_samples = link, pp.link = lk;
        bool file_link; /* the link the file's prior was chosen with, taken */
        if ((rc = cli_meta_link(cmd, opts, nopts, samples, c->path, st, BNN_TASK_CLASSIFICATION,
                                bnn_lik_name(bnn_model_lik(m, task)), &file_link, &pp.link,
                                &pp.link_samples)))
            goto next;
        if (file_link) cli_note_link(c->path, pp.link);
        /* +mc, +bridge, +bridge-norm: a Laplace column's GLM predictive through another link
         * than the probit (given, or the file's) */
        if (bnn_posterior_kind_of(q) == BNN_POSTERIOR_LAPLACE && pp.samples == 0 &&
            pp.link != BNN_LINK_PROBIT) {
            const size_t at = strlen(c->name);
            snprintf(c->name + at, sizeof c->name - at, "+%s", bnn_link_name(pp.link));
        }
        pp.seed = (uint64_t)seed;
        /* the diagonal posteriors only: a Laplace posterior's samples are not per weight */
        pp.local_reparam = lrt && bnn_posterior_kind_of(q) == BNN_POSTERIOR_DIAG;
        if ((rc = cli_meta_temperature(cmd, c->path, st, BNN_TASK_CLASSIFICATION,
                                       &pp.temperature)))
            goto next;
        cli_note_bridge_temperature(c->path, q, pp.samples, pp.link, pp.temperature);
        if ((rc = predict_scores(cmd, m, q, ds, &pp, &in))) goto next;
        if ((rc = bnn_metrics_classification_log(&c->c, in.logp, bnn_dataset_clabels(ds), in.n,
                                                 in.k, 15))) {
            rc = cli_fail(cmd, rc, c->path);
            goto next;
        }
        c->mi = mean_of(in.mi, in.n);
        for (int o = 0; o < ood.n; o++) {
            pred op;
            if ((rc = predict_scores(cmd, m, q, od[o], &pp, &op))) goto next;
            c->ood_entropy[o] = mean_of(op.score[1], op.n);
            c->ood_auroc[o] = bnn_auroc(op.score[1], op.n, in.score[1], in.n);
            pred_free(&op);
        }
    next:
        pred_free(&in);
        bnn_posterior_free(q);
        bnn_st_free(st);
        bnn_model_free(m);
        if (rc) goto done;
    }
    /* Columns of the same method are numbered (adamw-1, adamw-2), and a legend names their
     * files. */
    bool repeated = false;
    int number[MAXM] = {0}; /* 1, 2, ... among the columns of the same name; 0 for a unique one */
    for (int i = 0; i < models.n; i++) {
        int same = 0, k = 0;
        for (int j = 0; j < models.n; j++)
            if (!strcmp(cols[j].name, cols[i].name)) same++, k += j <= i;
        if (same > 1) number[i] = k, repeated = true;
    }
    for (int i = 0; i < models.n; i++) {
        char base[64];
        snprintf(base, sizeof base, "%s", cols[i].name);
        if (number[i]) snprintf(cols[i].name, sizeof cols[i].name, "%.50s-%d", base, number[i]);
    }
    int w = 12; /* the columns' width: the longest name, at least 12 */
    for (int i = 0; i < models.n; i++)
        if ((int)strlen(cols[i].name) > w) w = (int)strlen(cols[i].name);
    int lw = 28; /* the labels' width: the data's name and the OOD rows' labels, at least 28 */
    if ((int)strlen(data) > lw) lw = (int)strlen(data);
    for (int o = 0; o < ood.n; o++)
        if ((int)strlen(ood.v[o]) + 11 > lw) lw = (int)strlen(ood.v[o]) + 11; /* "OOD AUROC, " */
    printf("%-*s", lw, data);
    for (int i = 0; i < models.n; i++) printf(" %*s", w, cols[i].name);
    printf("\n");
#define ROW(label, expr)                                                                          \
    do {                                                                                          \
        printf("%-*s", lw, label);                                                                \
        for (int i = 0; i < models.n; i++) printf(" %*.4f", w, (expr));                           \
        printf("\n");                                                                             \
    } while (0)
    ROW("test accuracy", cols[i].c.accuracy);
    printf("%-*s", lw, "test NLL"); /* unbounded: cli_num4, as eval's table */
    for (int i = 0; i < models.n; i++) {
        char nb[32];
        printf(" %*s", w, cli_num4(nb, cols[i].c.nll));
    }
    printf("\n");
    ROW("test ECE (15 bins)", cols[i].c.ece);
    ROW("test Brier", cols[i].c.brier);
    ROW("entropy, test (nats)", cols[i].c.mean_entropy);
    for (int o = 0; o < ood.n; o++) {
        char label[64];
        snprintf(label, sizeof label, "entropy, %s", ood.v[o]);
        ROW(label, cols[i].ood_entropy[o]);
        snprintf(label, sizeof label, "OOD AUROC, %s", ood.v[o]);
        ROW(label, cols[i].ood_auroc[o]);
    }
#undef ROW
    if (repeated) {
        printf("\n");
        for (int i = 0; i < models.n; i++) printf("%-*s %s\n", w, cols[i].name, cols[i].path);
    }
    rc = 0;
done:
    bnn_dataset_free(ds);
    for (int o = 0; o < ood.n; o++) bnn_dataset_free(od[o]);
    return rc;
}
