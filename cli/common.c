/* Flag parsing, error lines and atomic output for the bnn command. */
#define _XOPEN_SOURCE 700 /* realpath (glibc declares it only with X/Open here) */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static cli_opt *find_exact(cli_opt *opts, int nopts, const char *name, size_t len) {
    for (int i = 0; i < nopts; i++)
        if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) return &opts[i];
    return NULL;
}

/* Other names of an option, accepted wherever the command has the option itself: the prior
 * precision is --prior-precision in train and von (train's was --prior-prec before). */
static const struct {
    const char *alias, *name;
} long_aliases[] = {{"prior-prec", "prior-precision"}};

static cli_opt *find_long(cli_opt *opts, int nopts, const char *name, size_t len) {
    cli_opt *o = find_exact(opts, nopts, name, len);
    for (size_t k = 0; !o && k < sizeof long_aliases / sizeof long_aliases[0]; k++)
        if (strlen(long_aliases[k].alias) == len && !strncmp(long_aliases[k].alias, name, len))
            o = find_exact(opts, nopts, long_aliases[k].name, strlen(long_aliases[k].name));
    return o;
}

/* Edit distance (insertions, deletions, substitutions) between a[0..la) and b, capped: any
 * distance above 3 comes back as 4. Names are short (under 32 characters here). */
static int edit_distance(const char *a, size_t la, const char *b) {
    enum { CAP = 4, MAXN = 64 };
    const size_t lb = strlen(b);
    if (la >= MAXN || lb >= MAXN) return CAP;
    int prev[MAXN], cur[MAXN];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int d = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < d) d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            cur[j] = d;
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb] < CAP ? prev[lb] : CAP;
}

/* The option a user most likely meant by an unknown long name: one whose name begins with the
 * other's, over three letters at least (--lr-schedule for --lr-s, laplace's --prior for
 * --prior-precision), else the nearest within len/3 edits, one at least and two at most
 * (--seed for --sed; --x is not --lr); NULL when none is close. */
static const cli_opt *suggest_long(const cli_opt *opts, int nopts, const char *name, size_t len) {
    for (int i = 0; i < nopts; i++) {
        const size_t lo = strlen(opts[i].name);
        const size_t m = lo < len ? lo : len;
        if (m >= 3 && !strncmp(opts[i].name, name, m)) return &opts[i];
    }
    const cli_opt *best = NULL;
    int bd = len / 3 < 1 ? 1 : len / 3 > 2 ? 2 : (int)(len / 3);
    for (int i = 0; i < nopts; i++) {
        const int d = edit_distance(name, len, opts[i].name);
        if (d <= bd) bd = d - 1, best = &opts[i];
    }
    return best;
}

static cli_opt *find_short(cli_opt *opts, int nopts, char c) {
    for (int i = 0; i < nopts; i++)
        if (opts[i].short_name == c) return &opts[i];
    return NULL;
}

static int set_value(const char *cmd, cli_opt *o, const char *v) {
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_STR:
        /* No option takes an empty value: an unset shell variable should not pass as a name. */
        if (!*v) return cli_usage_error(cmd, "--%s is empty", o->name);
        *(const char **)o->dst = v;
        return 0;
    case OPT_INT: {
        int64_t x;
        if (bnn_parse_int(v, &x)) {
            /* A whole number too large for 64 bits is out of range, not "not an integer". */
            const char *d = v + (*v == '-'); /* "+1" is refused as written, not as a range */
            bool digits = *d != '\0';
            for (; *d; d++) digits = digits && *d >= '0' && *d <= '9';
            if (digits)
                return cli_usage_error(cmd, "--%s %s is beyond a 64-bit signed integer's range "
                                       "(-2^63 to 2^63 - 1)", o->name, v);
            return cli_usage_error(cmd, "--%s expects an integer, got '%s'", o->name, v);
        }
        *(int64_t *)o->dst = x;
        return 0;
    }
    case OPT_FLOAT: {
        /* strtod skips leading spaces; an integer option refuses them, and so does this */
        double x = bnn_strtod(v, &end);
        if (errno == ERANGE && end != v && !*end && !isspace((unsigned char)*v))
            return cli_usage_error(cmd, "--%s %s is too %s for a double", o->name, v,
                                   fabs(x) < 1.0 ? "small" : "large");
        if (errno || end == v || *end || !isfinite(x) || isspace((unsigned char)*v))
            return cli_usage_error(cmd, "--%s expects a number, got '%s'", o->name, v);
        *(double *)o->dst = x;
        return 0;
    }
    case OPT_FLAG: *(bool *)o->dst = true; return 0;
    case OPT_LIST: {
        cli_list *l = o->dst;
        if (!*v) return cli_usage_error(cmd, "--%s is empty", o->name);
        if (l->n >= CLI_LIST_MAX)
            return cli_usage_error(cmd, "--%s given more than %d times", o->name, CLI_LIST_MAX);
        l->v[l->n++] = v;
        return 0;
    }
    }
    return 1;
}

int cli_parse(int argc, char **argv, cli_opt *opts, int nopts, const char *cmd, const char **pos,
              int max_pos, int *npos, bool *help) {
    *npos = 0;
    *help = false;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*npos >= max_pos)
                return cli_usage_error(cmd, "unexpected argument '%s'", a);
            pos[(*npos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = true;
            return 1;
        }
        cli_opt *o;
        const char *val = NULL;
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            const size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            o = find_long(opts, nopts, a + 2, len);
            const cli_opt *near = o ? NULL : suggest_long(opts, nopts, a + 2, len);
            if (near)
                return cli_usage_error(cmd, "unknown option '%.*s': did you mean --%s? (see 'bnn "
                                       "%s --help')", (int)len + 2, a, near->name, cmd);
            if (eq) val = eq + 1;
        } else {
            o = a[2] == '\0' ? find_short(opts, nopts, a[1]) : NULL;
        }
        if (!o) return cli_usage_error(cmd, "unknown option '%s' (see 'bnn %s --help')", a, cmd);
        /* A second value would silently replace the first; only lists take several. */
        if (o->seen && o->type != OPT_LIST && o->type != OPT_FLAG)
            return cli_usage_error(cmd, "--%s given twice", o->name);
        o->seen = true;
        if (o->type == OPT_FLAG) {
            if (val) return cli_usage_error(cmd, "--%s takes no value", o->name);
            *(bool *)o->dst = true;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) return cli_usage_error(cmd, "--%s needs a value", o->name);
            val = argv[++i];
            /* A value that is one of this command's options (`-o --lr 0.1`, `-o -q`, or
             * help) is a missing value; --output=--lr or ./--lr names such a file. "-" and
             * negative numbers are values. */
            const char *eq = val[0] == '-' && val[1] == '-' ? strchr(val + 2, '=') : NULL;
            const size_t vlen = eq ? (size_t)(eq - val - 2) : strlen(val + 2);
            const bool is_opt =
                val[0] == '-' &&
                (val[1] == '-' ? val[2] && (find_long(opts, nopts, val + 2, vlen) ||
                                            !strcmp(val, "--help"))
                               : val[1] && !val[2] && (find_short(opts, nopts, val[1]) ||
                                                       val[1] == 'h'));
            if (is_opt)
                return cli_usage_error(cmd, "--%s needs a value; the next argument, %s, is an "
                                       "option (write --%s=%s for a value that starts so)",
                                       o->name, val, o->name, val);
        }
        if (set_value(cmd, o, val)) return 2;
    }
    return 0;
}

bool cli_seen(const cli_opt *opts, int nopts, const char *name) {
    for (int i = 0; i < nopts; i++)
        if (!strcmp(opts[i].name, name)) return opts[i].seen;
    return false;
}

void cli_usage(FILE *f, const char *cmd, const char *synopsis, const char *about,
               const cli_opt *opts, int nopts) {
    fprintf(f, "usage: bnn %s %s\n\n%s\n\noptions:\n", cmd, synopsis, about);
    for (int i = 0; i < nopts; i++) {
        char left[64];
        const cli_opt *o = &opts[i];
        if (o->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        fprintf(f, "  %-28s %s\n", left, o->help);
    }
    fprintf(f, "  %-28s %s\n", "-h, --help", "show this help");
}

int cli_check_stdout(const char *cmd) {
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    fprintf(stderr, "bnn %s: cannot write the standard output: %s; nothing saved\n", cmd,
            strerror(errno));
    return 1;
}

int cli_fail(const char *cmd, int rc, const char *what) {
    const char *detail = bnn_last_error();
    if (detail && *detail)
        fprintf(stderr, "bnn %s: %s%s%s\n", cmd, what ? what : "", what ? ": " : "", detail);
    else
        fprintf(stderr, "bnn %s: %s%s%s\n", cmd, what ? what : "", what ? ": " : "",
                bnn_strerror(rc));
    return 1;
}

void cli_put_printable(FILE *f, const char *s) {
    for (; *s; s++) fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

/* One line on stderr whatever the values quoted (a file's metadata may hold a newline or an
 * escape sequence), as the library's own messages (bnn__error). */
static int report(int code, const char *cmd, const char *fmt, va_list ap) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "bnn %s: ", cmd);
    cli_put_printable(stderr, msg);
    fputc('\n', stderr);
    return code;
}

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int rc = report(1, cmd, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int rc = report(2, cmd, fmt, ap);
    va_end(ap);
    return rc;
}

int cli_float_range(const char *cmd, const char *flag, double v) {
    if (fabs(v) > FLT_MAX || (v != 0 && fabs(v) < FLT_MIN))
        return cli_usage_error(cmd, "--%s %g is outside the range of a float (%g to %g)", flag, v,
                               (double)FLT_MIN, (double)FLT_MAX);
    return 0;
}

int cli_temperature_opt(const char *cmd, double t) {
    if (!(t > 0)) return cli_usage_error(cmd, "--temperature must be positive");
    if (t > CLI_MAX_TEMPERATURE)
        return cli_usage_error(cmd, "--temperature must be at most 1e6 (bnn calibrate searches "
                               "1e-3 to 1e3; far larger ones flatten the probabilities until "
                               "classes tie and the predicted class changes)");
    return cli_float_range(cmd, "temperature", t);
}

int cli_write_atomic(const char *cmd, const char *path, const char *text) {
    int rc = bnn_write_file(path, text, strlen(text));
    return rc ? cli_fail(cmd, rc, NULL) : 0;
}

int cli_meta_positive(const char *cmd, const char *path, const char *key, const char *v,
                      double *out) {
    if (!v) {
        *out = 1.0;
        return 0;
    }
    char *end;
    errno = 0;
    const double x = bnn_strtod(v, &end);
    if (errno || end == v || *end || !(x > 0) || !isfinite(x))
        return cli_error(cmd, "%s: %s is '%.40s', not a positive number", path, key, v);
    /* The range the options (--temperature, --noise) accept: a temperature of 1e-300 gave an
     * infinite NLL and a noise of 1e-300 zero variances, exit 0. */
    if (x < FLT_MIN || x > FLT_MAX)
        return cli_error(cmd, "%s: %s is %g, outside the range of a float (%g to %g)", path, key, x,
                         (double)FLT_MIN, (double)FLT_MAX);
    *out = x;
    return 0;
}

int cli_meta_temperature(const char *cmd, const char *path, const bnn_st *st, bnn_task task,
                         double *out) {
    const char *t = bnn_st_meta(st, "bnn.temperature");
    if (t && task == BNN_TASK_REGRESSION)
        return cli_error(cmd,
                         "%s: bnn.temperature is '%.40s' but the model is a regression model "
                         "(a temperature divides a classifier's logits)",
                         path, t);
    int rc = cli_meta_positive(cmd, path, "bnn.temperature", t, out);
    if (!rc && *out > CLI_MAX_TEMPERATURE) /* as --temperature (cli_temperature_opt) */
        rc = cli_error(cmd, "%s: bnn.temperature is %g, above 1e6 (bnn calibrate searches 1e-3 to "
                       "1e3; far larger ones make classes tie)", path, *out);
    return rc;
}

int cli_meta_int(const char *cmd, const char *path, const char *key, const char *v, int64_t lo,
                 int64_t dflt, int64_t *out) {
    *out = dflt;
    if (!v) return 0;
    int64_t x;
    if (bnn_parse_int(v, &x) || x < lo) {
        if (lo <= INT64_MIN + 1) /* no bound worth naming */
            return cli_error(cmd, "%s: %s is '%.40s', not a whole number", path, key, v);
        return cli_error(cmd, "%s: %s is '%.40s', not a whole number >= %lld", path, key, v,
                         (long long)lo);
    }
    *out = x;
    return 0;
}

int cli_meta_count(const char *cmd, const char *path, const char *key, const char *v,
                   int64_t *out) {
    return cli_meta_int(cmd, path, key, v, 0, 0, out);
}

static int cli_spec_files(const char *spec, char buf[2][1024], const char *files[2]);

/* A model's recorded data directory, where its relative file names are looked up: absolute and
 * without a comma (which would split the name in a spec); NULL otherwise. */
static const char *lookup_dir(const char *dir) {
    return dir && dir[0] == '/' && !strchr(dir, ',') ? dir : NULL;
}

/* Whether the relative name file exists under dir (from lookup_dir; NULL: no), as p. */
static bool found_under(const char *dir, const char *file, char *p, size_t len) {
    return dir && file[0] != '/' && (size_t)snprintf(p, len, "%s/%s", dir, file) < len &&
           !access(p, F_OK);
}

/* The model's own data, named by a relative path that is not under the directory it was trained
 * in (the tree moved, or the directory was never recorded): the file read is the current
 * directory's, which may be another file of the same name, so say which. (train's --resume
 * checks the data's fingerprint instead.) */
static void note_data_here(const char *model_path, const cli_data_flags *df) {
    char fb[2][1024], p[2100];
    const char *files[2];
    const char *dir = lookup_dir(df->dir);
    for (int i = 0, n = cli_spec_files(df->data, fb, files); i < n; i++) {
        if (files[i][0] == '/' || access(files[i], F_OK)) continue; /* the loader says */
        if (found_under(dir, files[i], p, sizeof p)) continue;     /* where it was trained */
        char msg[4600]; /* one line, whatever the metadata holds (as report() does) */
        snprintf(msg, sizeof msg, "%s's data %s %s%s%s; reading %s%s in the current directory "
                 "(--data SPEC names another)", model_path, files[i],
                 dir ? "is no longer in " : "was read in a directory ",
                 dir ? dir : model_path, dir ? "" : " does not record",
                 strchr(files[i], '/') ? "" : "./", files[i]);
        fputs("note: ", stderr);
        cli_put_printable(stderr, msg);
        fputc('\n', stderr);
    }
}

int cli_model_data(const char *cmd, const char *model_path, const bnn_st *st, cli_data_flags *df,
                   bool seen_target_col) {
    const char *recorded = bnn_st_meta(st, "bnn.data");
    const bool from_model = !df->data && recorded;
    if (from_model) {
        df->data = recorded;
        df->dir = bnn_st_meta(st, "bnn.data.dir"), df->from = model_path;
        if (strcmp(cmd, "train")) note_data_here(model_path, df);
    }
    if (!df->data)
        return cli_usage_error(cmd, "%s does not record its data; pass --data SPEC%s", model_path,
                               strcmp(cmd, "predict") ? "" : " or --input FILE");
    /* A CSV file's target column is the one the model was trained with, for its own data and
     * for any other file too (a test file has its training file's layout; reading another
     * column as the target would score the model against one of its features). */
    int rc;
    if (!seen_target_col &&
        (rc = cli_meta_int(cmd, model_path, "bnn.data.target_col",
                           bnn_st_meta(st, "bnn.data.target_col"), INT64_MIN + 1, -1,
                           &df->target_col)))
        return rc;
    if (!from_model && !cli_own_data(st, df->data)) return 0;
    /* The data it was trained on: read it the way it was read then. */
    const char *hd = bnn_st_meta(st, "bnn.data.header");
    if (!df->header && !df->no_header && hd) {
        df->header = !strcmp(hd, "yes");
        df->no_header = !strcmp(hd, "no");
    }
    /* Generated data (moons, sine-gap, ...) is the model's own draw: its seed, always; a
     * command's --seed is for its weight samples and for other data. */
    return cli_meta_int(cmd, model_path, "bnn.seed", bnn_st_meta(st, "bnn.seed"), 0, df->seed,
                        &df->seed); /* train's --seed is >= 0 */
}

int cli_check_predict_opts(const char *cmd, const cli_opt *opts, int nopts, int64_t samples,
                           int64_t seed, int64_t *link, const char *linkname, bnn_link *lk) {
    if ((cli_seen(opts, nopts, "samples") && samples < 0) || samples > BNN_MAX_SAMPLES)
        return cli_usage_error(cmd, "--samples must be between 0 and %d", BNN_MAX_SAMPLES);
    if (seed < 0) return cli_usage_error(cmd, "--seed must be >= 0");
    if (*link < 0 || *link > BNN_MAX_SAMPLES)
        return cli_usage_error(cmd, "--link-samples must be between 0 and %d", BNN_MAX_SAMPLES);
    const bool ls_seen = cli_seen(opts, nopts, "link-samples");
    if (samples > 0 && (ls_seen || linkname))
        return cli_usage_error(cmd, "--%s is for a Laplace or VON posterior's linearised "
                               "predictive, which --samples S > 0 replaces by weight samples: "
                               "give one of them",
                               linkname ? "link" : "link-samples");
    *lk = *link > 0 ? BNN_LINK_MC : BNN_LINK_PROBIT;
    if (!linkname) return 0;
    if (bnn_link_parse(linkname, lk))
        return cli_usage_error(cmd, "--link: %s", bnn_last_error());
    if (*lk == BNN_LINK_MC) {
        if (!ls_seen) *link = 100; /* laplace-torch's default n_samples */
        if (*link == 0)
            return cli_usage_error(cmd, "--link mc draws the logits --link-samples times: give "
                                   "S > 0");
    } else if (*link > 0) {
        return cli_usage_error(cmd, "--link-samples is the number of draws of --link mc; --link "
                               "%s takes none", linkname);
    }
    return 0;
}

int cli_check_link_model(const char *cmd, const char *opt, bnn_link lk, const char *path,
                         bnn_task task, const char *lik) {
    if (opt && task == BNN_TASK_REGRESSION)
        return cli_usage_error(cmd, "--%s sets how a classifier's linearised logits become "
                               "probabilities; %s is a regression model, whose linearised "
                               "predictive is in closed form", opt, path);
    if ((lk == BNN_LINK_BRIDGE || lk == BNN_LINK_BRIDGE_NORM) && lik &&
        strcmp(lik, bnn_lik_name(BNN_LIK_CATEGORICAL)))
        return cli_usage_error(cmd, "--link %s is a Dirichlet over the classes of a categorical "
                               "classifier; %s has a %s likelihood", bnn_link_name(lk), path, lik);
    return 0;
}

int cli_meta_link(const char *cmd, const cli_opt *opts, int nopts, int64_t samples,
                  const char *path, const bnn_st *st, bnn_task task, const char *lik, bool *taken,
                  bnn_link *lk, int64_t *link) {
    if (taken) *taken = false;
    const char *v = bnn_st_meta(st, "bnn.link"), *s = bnn_st_meta(st, "bnn.link_samples");
    if (!v && !s) return 0;
    if (!v) return cli_error(cmd, "%s: bnn.link_samples is '%.40s' without bnn.link", path, s);
    bnn_link fl;
    if (bnn_link_parse(v, &fl))
        return cli_error(cmd, "%s: bnn.link is '%.40s', not probit, mc, bridge or bridge-norm",
                         path, v);
    const char *kind = bnn_st_meta(st, "bnn.posterior");
    if (!kind || strcmp(kind, "laplace"))
        return cli_error(cmd, "%s: bnn.link is '%s', a link for a Laplace posterior's linearised "
                         "predictive, but the file holds %s", path, v,
                         !kind || !strcmp(kind, "point") ? "a point estimate"
                                                         : "a diagonal Gaussian posterior");
    const char *meth = bnn_st_meta(st, "bnn.method");
    if (meth && !strcmp(meth, "von"))
        return cli_error(cmd, "%s: bnn.link is '%s', but the file holds a VON posterior, whose "
                         "prior is given, not chosen through a link", path, v);
    if (task == BNN_TASK_REGRESSION)
        return cli_error(cmd, "%s: bnn.link is '%s' but the model is a regression model (a link "
                         "turns a classifier's linearised logits into probabilities)", path, v);
    if ((fl == BNN_LINK_BRIDGE || fl == BNN_LINK_BRIDGE_NORM) && lik &&
        strcmp(lik, bnn_lik_name(BNN_LIK_CATEGORICAL)))
        return cli_error(cmd, "%s: bnn.link is '%s', a Dirichlet over the classes of a categorical "
                         "classifier, but the model has a %s likelihood", path, v, lik);
    int64_t ns = 0;
    if (fl == BNN_LINK_MC) {
        int rc = cli_meta_int(cmd, path, "bnn.link_samples", s, 1, 100, &ns);
        if (rc) return rc;
        if (ns > BNN_MAX_SAMPLES)
            return cli_error(cmd, "%s: bnn.link_samples is %lld, above %d", path, (long long)ns,
                             BNN_MAX_SAMPLES);
    } else if (s) {
        return cli_error(cmd, "%s: bnn.link_samples is '%.40s' but bnn.link '%s' takes no draws",
                         path, s, v);
    }
    /* The command's own choice stands: a link option, or weight samples instead of the GLM
     * predictive. */
    if (cli_seen(opts, nopts, "link") || cli_seen(opts, nopts, "link-samples") || samples > 0)
        return 0;
    *lk = fl, *link = ns;
    if (taken) *taken = true;
    return 0;
}

void cli_note_link(const char *path, bnn_link lk) {
    if (lk != BNN_LINK_PROBIT)
        fprintf(stderr, "note: %s's prior precision was chosen with --link %s, which it predicts "
                "with (--link probit for the probit)\n", path, bnn_link_name(lk));
}

void cli_note_bridge_temperature(const char *path, const bnn_posterior *q, int64_t samples,
                                 bnn_link lk, double T) {
    if (lk == BNN_LINK_BRIDGE_NORM && T != 1.0 && samples == 0 &&
        bnn_posterior_kind_of(q) == BNN_POSTERIOR_LAPLACE)
        fprintf(stderr, "note: the temperature (%g) does not change %s's normalised Laplace "
                "bridge: its normalisation undoes the scaling of the logits\n", T, path);
}

const char *cli_link_words(bnn_link lk) {
    switch (lk) {
    case BNN_LINK_MC: return "Monte-Carlo over the logits";
    case BNN_LINK_BRIDGE: return "Laplace bridge";
    case BNN_LINK_BRIDGE_NORM: return "normalised Laplace bridge";
    default: return "probit";
    }
}

const char *cli_num4(char buf[32], double v) {
    const bool fixed = !isfinite(v) || v == 0.0 || (fabs(v) < 1e6 && fabs(v) >= 1e-3);
    snprintf(buf, 32, fixed ? "%.4f" : "%.6g", v);
    return buf;
}

const char *cli_fmt_lml(char buf[48], double v) {
    if (!isfinite(v)) snprintf(buf, 48, "not finite");
    else snprintf(buf, 48, fabs(v) < 1e15 ? "%.4f" : "%.6g", v);
    return buf;
}

bool cli_raster_name(const char *name) {
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".gif", ".pdf", ".eps", ".bmp",
                                      ".tif", ".tiff", ".webp"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (cli_ends_with(name, ext[i])) return true;
    return false;
}

int cli_load_ood(const char *cmd, const char *spec, int64_t seed, int64_t target_col,
                 const bnn_model *m, bnn_dataset **out) {
    cli_data_flags of = {.data = spec, .target_col = -1, .seed = seed};
    /* A generated set that also serves as training data (moons, sine-gap, sine-hetero) comes
     * from a seed derived from --seed: its test split at --seed itself is a model's own test
     * data when both seeds are the default 0, which made `--ood moons` the test set again
     * (AUROC exactly 0.5). The derivation is one splitmix64 step (Steele, Lea & Flood, OOPSLA
     * 2014): add the golden-ratio increment, then the finaliser. */
    if (!strncmp(spec, "moons", 5) || !strncmp(spec, "sine-", 5)) {
        uint64_t z = (uint64_t)seed + 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        of.seed = (int64_t)((z ^ (z >> 31)) >> 1);
    }
    const bool csv = !strncmp(spec, "csv:", 4);
    if (csv) of.target_col = BNN_CSV_NO_TARGET;
    /* NumPy targets, if given, are read as regression targets (any finite number will do): only
     * the inputs are used. */
    const bool npy = !strncmp(spec, "npy:", 4);
    if (npy) of.task = "regression";
    int rc = cli_load_data(cmd, &of, "test", npy ? BNN_TASK_REGRESSION : BNN_TASK_CLASSIFICATION,
                           false, out);
    if (!rc && csv && bnn_dataset_dim(*out) == bnn_model_input_dim(m) + 1) {
        /* One column more than the model's inputs: a labelled file, its target at the column
         * the model was trained with (negative: from the end, as the CSV reader counts). Only
         * the inputs are used, so that column is dropped from the rows already read (any number
         * is fine there) instead of parsing the file again. */
        const int64_t n = bnn_dataset_n(*out), d = bnn_model_input_dim(m);
        const int64_t tc = target_col < 0 ? d + 1 + target_col : target_col;
        if (tc < 0 || tc > d) {
            rc = cli_error(cmd, "%s: target column %lld does not exist (the file has %lld "
                           "columns)", spec, (long long)target_col, (long long)(d + 1));
        } else {
            bnn_dataset *x = NULL;
            if ((rc = bnn_dataset_new(&x, BNN_TASK_CLASSIFICATION, n, d, 0, 1))) {
                rc = cli_fail(cmd, rc, spec);
            } else {
                const float *src = bnn_dataset_x(*out);
                float *dst = bnn_dataset_x(x);
                for (int64_t i = 0; i < n; i++) {
                    const float *r = src + i * (d + 1);
                    memcpy(dst + i * d, r, (size_t)tc * sizeof(float));
                    memcpy(dst + i * d + tc, r + tc + 1, (size_t)(d - tc) * sizeof(float));
                }
            }
            bnn_dataset_free(*out);
            *out = x;
        }
        if (rc) bnn_dataset_free(*out), *out = NULL;
    } else if (!rc && csv && bnn_dataset_dim(*out) != bnn_model_input_dim(m)) {
        /* Its columns were all read as features: say columns, and what fits. */
        rc = cli_usage_error(cmd, "%s has %lld columns; as --ood data it needs the model's %lld "
                             "inputs, with or without a label column", spec,
                             (long long)bnn_dataset_dim(*out), (long long)bnn_model_input_dim(m));
        bnn_dataset_free(*out), *out = NULL;
    }
    return rc;
}

int cli_check_csv_flags(const char *cmd, const cli_opt *opts, int nopts, const char *spec,
                        bool input_csv) {
    const bool csv = spec && !strncmp(spec, "csv:", 4);
    const bool npy = spec && !strncmp(spec, "npy:", 4); /* its targets are read for --task */
    const char *flags[] = {"task", "target-col", "header", "no-header"};
    for (int i = 0; i < 4; i++) {
        if (!cli_seen(opts, nopts, flags[i]) || csv || (input_csv && i >= 2) || (npy && i == 0))
            continue;
        if (input_csv || (!spec && i < 2))
            return cli_usage_error(cmd, "--%s is for --data csv:FILE (an --input file holds "
                                   "features only)", flags[i]);
        return cli_usage_error(cmd, "--%s is for CSV data (csv:FILE%s); %s is not", flags[i],
                               i == 0 ? ") and NumPy data (npy:X,Y" : "",
                               spec ? spec : "the input");
    }
    return 0;
}

int cli_check_applies(const char *cmd, const cli_opt *opts, int nopts, const char *path,
                      const bnn_st *st, bnn_task task, bnn_lik_kind lik, const bnn_posterior *q,
                      int64_t samples, bnn_link *lk, int64_t *link, bool *file_link) {
    *file_link = false;
    const bnn_posterior_kind kind = bnn_posterior_kind_of(q);
    if (task == BNN_TASK_REGRESSION && cli_seen(opts, nopts, "bins"))
        return cli_usage_error(cmd, "--bins sets a classifier's reliability bins (ECE); %s is a "
                               "regression model", path);
    if (task == BNN_TASK_REGRESSION && cli_seen(opts, nopts, "temperature"))
        return cli_usage_error(cmd, "--temperature divides a classifier's logits; %s is a "
                               "regression model", path);
    if (task == BNN_TASK_CLASSIFICATION && cli_seen(opts, nopts, "noise"))
        return cli_usage_error(cmd, "--noise is a regression model's noise; %s is a classifier",
                               path);
    /* --samples 0 asks for the prediction at the weights, which a point estimate gives. */
    if (kind == BNN_POSTERIOR_POINT && samples > 0)
        return cli_usage_error(cmd, "--samples averages over weights drawn from a posterior; %s "
                               "holds a point estimate (train it with --method ivon or mfvi, or "
                               "fit bnn laplace or bnn von to it)", path);
    /* (a posterior without a linearised predictive says so first, whatever the task) */
    const char *lopt = cli_seen(opts, nopts, "link")           ? "link"
                       : cli_seen(opts, nopts, "link-samples") ? "link-samples"
                                                               : NULL;
    if (kind != BNN_POSTERIOR_LAPLACE && lopt)
        return cli_usage_error(cmd, "--%s is for a Laplace or VON posterior's linearised "
                               "predictive; %s holds %s", lopt, path,
                               kind == BNN_POSTERIOR_POINT ? "a point estimate"
                                                           : "a diagonal Gaussian posterior");
    int rc = cli_check_link_model(cmd, lopt, *lk, path, task, bnn_lik_name(lik));
    if (!rc)
        rc = cli_meta_link(cmd, opts, nopts, samples, path, st, task, bnn_lik_name(lik),
                           file_link, lk, link);
    if (rc) return rc;
    if (cli_seen(opts, nopts, "local-reparam") && kind != BNN_POSTERIOR_DIAG)
        return cli_usage_error(cmd, "--local-reparam is for the weight samples of a diagonal "
                               "Gaussian posterior (ivon, mfvi); %s holds %s", path,
                               kind == BNN_POSTERIOR_POINT ? "a point estimate"
                                                           : "a Laplace or VON posterior");
    if (cli_seen(opts, nopts, "local-reparam") && samples == 0)
        return cli_usage_error(cmd, "--local-reparam is for weight samples; --samples 0 predicts "
                               "at the mean");
    return 0;
}

int64_t cli_samples_for(const bnn_posterior *q, int64_t samples) {
    const bnn_posterior_kind kind = bnn_posterior_kind_of(q);
    if (kind == BNN_POSTERIOR_POINT) return 0;
    if (samples >= 0) return samples;
    return kind == BNN_POSTERIOR_DIAG ? 32 : 0;
}

bool cli_spec_uses_seed(const char *spec, const bnn_st *st, bool ood) {
    const bool generated = bnn_data_generated(spec);
    /* The model's own data keeps its training seed only when the file records one (without
     * bnn.seed, cli_model_data draws it from --seed too). */
    const char *own = st && bnn_st_meta(st, "bnn.seed") ? bnn_st_meta(st, "bnn.data") : NULL;
    return generated && (ood || !own || !cli_same_data(spec, own));
}

bool cli_predict_draws(const bnn_posterior *q, int64_t samples, int64_t link) {
    return samples > 0 || (bnn_posterior_kind_of(q) == BNN_POSTERIOR_LAPLACE && link > 0);
}

int cli_check_seed_used(const char *cmd, const cli_opt *opts, int nopts, bool used) {
    if (used || !cli_seen(opts, nopts, "seed")) return 0;
    return cli_usage_error(cmd, "--seed is for weight samples, Monte-Carlo over a Laplace "
                           "posterior's linearised logits and generated data other than the "
                           "model's own; nothing here is random");
}

int cli_set_threads(const char *cmd, int64_t threads) {
    if (threads < 0 || threads > BNN_MAX_THREADS)
        return cli_usage_error(cmd, "--threads must be between 1 and %d, or 0 for all cores "
                               "(got %lld)", BNN_MAX_THREADS, (long long)threads);
    if (threads) bnn_set_threads((int)threads);
    return 0;
}

/* path with its directory resolved (realpath) into buf: "/real/dir/name"; false if the
 * directory does not resolve. */
static bool resolve_parent(const char *path, char *buf, size_t len) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    char *real = realpath(dir, NULL);
    if (!real) return false;
    const bool fits = snprintf(buf, len, "%s/%s", real, slash ? slash + 1 : path) < (int)len;
    free(real);
    return fits;
}

/* path with its symbolic links followed, dangling ones included (a write may create their
 * target: bnn's own writer replaces a dangling link, but the first epoch of a checkpoint written
 * through one of its names creates the file), into buf: a link's relative target is relative to
 * the link's directory. False after 40 links (Linux's own limit; a loop ends there too) or if a
 * target does not fit. */
static bool follow_links(const char *path, char *buf, size_t len) {
    if (snprintf(buf, len, "%s", path) >= (int)len) return false;
    for (int hop = 0; hop <= 40; hop++) {
        struct stat sl;
        char tgt[4096];
        if (lstat(buf, &sl) || !S_ISLNK(sl.st_mode)) return true;
        const ssize_t n = readlink(buf, tgt, sizeof tgt - 1);
        if (n < 0) return true;
        tgt[n] = '\0';
        const char *slash = strrchr(buf, '/');
        char next[8192];
        const int w = tgt[0] == '/' || !slash
                          ? snprintf(next, sizeof next, "%s", tgt)
                          : snprintf(next, sizeof next, "%.*s/%s", (int)(slash - buf), buf, tgt);
        if (w >= (int)sizeof next || snprintf(buf, len, "%s", next) >= (int)len) return false;
    }
    return false;
}

bool cli_same_path(const char *a, const char *b) {
    if (!a || !b) return false;
    struct stat sa, sb;
    const bool ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    /* Not both there: compared by name, through any links (a dangling link may name the file a
     * write through it creates) and with the directories resolved. Links that do not resolve (a
     * loop, too many) may lead anywhere: taken for the same, so that an output is refused. */
    char la[8192], lb[8192], ra[8192], rb[8192];
    if (!follow_links(a, la, sizeof la) || !follow_links(b, lb, sizeof lb)) return true;
    if (!resolve_parent(la, ra, sizeof ra) || !resolve_parent(lb, rb, sizeof rb))
        return !strcmp(la, lb);
    return !strcmp(ra, rb);
}

bool cli_one_split(const char *spec) {
    if (!strncmp(spec, "idx:", 4) || !strncmp(spec, "npy:", 4)) return true;
    return !strncmp(spec, "csv:", 4) && !strchr(spec + 4, ',');
}

bool cli_ends_with(const char *s, const char *suffix) {
    const size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

const char *cli_out_name(const char *path) {
    return strcmp(path, "-") ? path : "the standard output";
}

int cli_check_output(const char *cmd, const char *out, const char *const *inputs, int ninputs) {
    if (!out) return 0;
    struct stat so;
    if (*out && strcmp(out, "-") && stat(out, &so) == 0 && !S_ISDIR(so.st_mode))
        for (int i = 0; i < ninputs; i++) {
            struct stat si;
            if (inputs[i] && stat(inputs[i], &si) == 0 && si.st_dev == so.st_dev &&
                si.st_ino == so.st_ino)
                return cli_usage_error(cmd, "the output %s is the input %s: writing it would "
                                       "destroy the input", out, inputs[i]);
        }
    /* Everything else as bnn_write_file will decide it, checked now rather than after a long
     * run. */
    const int rc = bnn_check_output(out);
    if (rc == BNN_EINVAL) return cli_usage_error(cmd, "%s", bnn_last_error());
    return rc ? cli_error(cmd, "%s", bnn_last_error()) : 0;
}

int cli_check_file_output(const char *cmd, const char *out, const char *what) {
    struct stat so, sf;
    /* (a device other than a terminal, /dev/null for both, keeps nothing to read) */
    if (out && (!strcmp(out, "-") ||
                (stat(out, &sf) == 0 && fstat(STDOUT_FILENO, &so) == 0 &&
                 sf.st_dev == so.st_dev && sf.st_ino == so.st_ino &&
                 (!S_ISCHR(sf.st_mode) || isatty(STDOUT_FILENO)))))
        return cli_usage_error(cmd, "-o %s is standard output, where %s prints its report: the "
                               "%s would follow the report and could not be read; give it a file "
                               "name", out, cmd, what);
    return 0;
}

/* The data spec's files, for cli_check_output: csv:A[,B] and idx:A[,B] name one or two. */
static int cli_spec_files(const char *spec, char buf[2][1024], const char *files[2]) {
    files[0] = files[1] = NULL;
    if (!spec || (strncmp(spec, "csv:", 4) && strncmp(spec, "idx:", 4) && strncmp(spec, "npy:", 4)))
        return 0;
    const char *s = spec + 4, *comma = strchr(s, ',');
    if (comma) {
        snprintf(buf[0], 1024, "%.*s", (int)(comma - s), s);
        snprintf(buf[1], 1024, "%s", comma + 1);
        files[0] = buf[0], files[1] = buf[1];
        return 2;
    }
    snprintf(buf[0], 1024, "%s", s);
    files[0] = buf[0];
    return 1;
}

/* spec with each relative file name looked up under dir (a model's bnn.data.dir) where that file
 * exists there, else as given (a tree moved as a whole is still found from its new root).
 * Returns spec itself, or buf holding the spec with the names found under dir. */
static const char *spec_under(const char *spec, const char *dir, char *buf, size_t len) {
    char fb[2][1024], parts[2][2100];
    const char *files[2];
    dir = lookup_dir(dir);
    const int n = dir ? cli_spec_files(spec, fb, files) : 0;
    bool moved = false;
    for (int i = 0; i < n; i++) {
        char p[2100];
        const bool there = found_under(dir, files[i], p, sizeof p);
        snprintf(parts[i], sizeof parts[i], "%s", there ? p : files[i]);
        moved = moved || there;
    }
    if (!moved || (size_t)snprintf(buf, len, "%.4s%s%s%s", spec, parts[0], n == 2 ? "," : "",
                                   n == 2 ? parts[1] : "") >= len)
        return spec;
    return buf;
}

const char *cli_data_spec(const cli_data_flags *df, char *buf) {
    return spec_under(df->data, df->dir, buf, CLI_SPEC_MAX);
}

/* Whether spec names a file by a relative path. */
static bool spec_relative(const char *spec) {
    char fb[2][1024];
    const char *files[2];
    bool relative = false;
    for (int i = 0, n = cli_spec_files(spec, fb, files); i < n; i++)
        relative = relative || files[i][0] != '/';
    return relative;
}

const char *cli_data_dir(const cli_data_flags *df, char *buf, size_t len) {
    if (!spec_relative(df->data)) return NULL;
    /* A model's recorded directory where its files were found there (cli_data_spec); else the
     * current one, where they were read (a tree moved since: recording the old directory sent
     * the next command there). */
    char under[CLI_SPEC_MAX];
    const bool there = df->dir && cli_data_spec(df, under) != df->data;
    const char *dir = there ? df->dir : getcwd(buf, len);
    return dir && !strchr(dir, ',') ? dir : NULL; /* a spec cannot name a path with a comma */
}

bool cli_own_data(const bnn_st *st, const char *spec) {
    const char *recorded = bnn_st_meta(st, "bnn.data");
    char under[CLI_SPEC_MAX];
    return recorded &&
           cli_same_data(spec, spec_under(recorded, bnn_st_meta(st, "bnn.data.dir"), under,
                                          sizeof under));
}

/* The file a split of spec reads (NULL for built-in data): csv:TRAIN,TEST's second for the test
 * split, else its first (idx:/npy:'s second file holds the labels of the first). */
static const char *split_file(const char *spec, const char *split, char fb[2][1024]) {
    const char *files[2];
    const int n = cli_spec_files(spec, fb, files);
    if (n == 0) return NULL;
    return n == 2 && !strncmp(spec, "csv:", 4) && strcmp(split, "train") ? files[1] : files[0];
}

bool cli_reads_trained_rows(const bnn_st *st, const char *spec, const char *split) {
    const char *recorded = bnn_st_meta(st, "bnn.data");
    char under[CLI_SPEC_MAX], fa[2][1024], fb[2][1024];
    if (!recorded || !spec) return false;
    const char *rec = spec_under(recorded, bnn_st_meta(st, "bnn.data.dir"), under, sizeof under);
    if (strncmp(spec, rec, 4)) return false; /* csv: against idx:, or another built-in set */
    const char *a = split_file(spec, split, fa), *b = split_file(rec, "train", fb);
    if (!a || !b) return !a && !b && !strcmp(spec, rec) && !strcmp(split, "train");
    return cli_same_path(a, b);
}

int cli_check_output_data(const char *cmd, const char *out, const char *file1, const char *file2,
                          const cli_data_flags *df) {
    char under[CLI_SPEC_MAX];
    return cli_check_output_of(cmd, out, file1, file2, cli_data_spec(df, under));
}

bool cli_same_data(const char *a, const char *b) {
    if (!a || !b) return false;
    if (!strcmp(a, b)) return true;
    char ba[2][1024], bb[2][1024];
    const char *fa[2], *fb[2];
    if (strncmp(a, b, 4)) return false; /* csv: against idx:, or built-in data */
    const int na = cli_spec_files(a, ba, fa), nb = cli_spec_files(b, bb, fb);
    if (na == 0 || na != nb) return false;
    for (int i = 0; i < na; i++)
        if (!cli_same_path(fa[i], fb[i])) return false;
    return true;
}

int cli_check_output_of(const char *cmd, const char *out, const char *file1, const char *file2,
                        const char *spec) {
    char buf[2][1024], fm[8][4200]; /* (the loader takes directory names of up to 4095 bytes) */
    const char *in[12] = {file1, file2};
    cli_spec_files(spec, buf, in + 2);
    /* fmnist's files too (either split, compressed or not), which may be the system's copy. */
    if (spec && !strncmp(spec, "fmnist", 6) && (!spec[6] || spec[6] == ':'))
        for (int i = 0; i < 8; i++) {
            snprintf(fm[i], sizeof fm[i], "%s/%s-%s-ubyte%s", bnn_fmnist_dir(),
                     i & 4 ? "t10k" : "train", i & 2 ? "labels-idx1" : "images-idx3",
                     i & 1 ? ".gz" : "");
            in[4 + i] = fm[i];
        }
    return cli_check_output(cmd, out, in, 12);
}

/* The smallest and largest of ds's features (NaN and infinities never load). */
static void features_range(const bnn_dataset *ds, float *lo, float *hi) {
    const float *x = bnn_dataset_cx(ds);
    const int64_t len = bnn_dataset_n(ds) * bnn_dataset_dim(ds);
    float a = len ? x[0] : 0.0f, b = a;
    for (int64_t i = 0; i < len; i++) {
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
    }
    *lo = a, *hi = b;
}

void cli_data_meta_range(cli_data_meta *dm, const bnn_dataset *ds) {
    float lo, hi;
    features_range(ds, &lo, &hi);
    /* %.9g: the float itself again when read back */
    snprintf(dm->lo, sizeof dm->lo, "%.9g", (double)lo);
    snprintf(dm->hi, sizeof dm->hi, "%.9g", (double)hi);
    dm->keys[dm->n] = "bnn.data.min", dm->vals[dm->n++] = dm->lo;
    dm->keys[dm->n] = "bnn.data.max", dm->vals[dm->n++] = dm->hi;
}

static int meta_finite(const char *cmd, const char *path, const char *key, const char *v,
                       double *out) {
    char *end;
    errno = 0;
    const double x = bnn_strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        return cli_error(cmd, "%s: %s is '%.40s', not a finite number", path, key, v);
    *out = x;
    return 0;
}

int cli_note_range(const char *cmd, const char *spec, const bnn_dataset *ds,
                   const char *model_path, const bnn_st *st) {
    const char *vlo = st ? bnn_st_meta(st, "bnn.data.min") : NULL;
    const char *vhi = st ? bnn_st_meta(st, "bnn.data.max") : NULL;
    if (!vlo && !vhi) return 0;
    if (!vlo || !vhi)
        return cli_error(cmd, "%s: bnn.data.%s is missing beside bnn.data.%s (a damaged file?)",
                         model_path, vlo ? "max" : "min", vlo ? "min" : "max");
    double lo = 0.0, hi = 0.0;
    int rc;
    if ((rc = meta_finite(cmd, model_path, "bnn.data.min", vlo, &lo)) ||
        (rc = meta_finite(cmd, model_path, "bnn.data.max", vhi, &hi)))
        return rc;
    if (lo > hi)
        return cli_error(cmd, "%s: bnn.data.min (%g) is above bnn.data.max (%g)", model_path, lo,
                         hi);
    if (bnn_dataset_n(ds) == 0) return 0;
    float a, b;
    features_range(ds, &a, &b);
    /* Beyond the range by more than its width (a constant feature: by more than its size, at
     * least 1), or spread over less than 1/64 of it: new inputs may well leave the range a
     * little or cover only part of it, differently scaled ones miss it by far (0..255 against
     * 0..1: 254 widths beyond; 0..1 against 0..255: 1/255 of the width). The narrow test only
     * for 16 features or more (images, where each row spans the pixel values): a few points of a
     * low-dimensional problem, or a grid over part of its range, are narrow by choice. */
    const double w = hi > lo ? hi - lo : fmax(fabs(hi), 1.0), win = (double)b - (double)a;
    const bool beyond = (double)a < lo - w || (double)b > hi + w;
    const bool narrow =
        bnn_dataset_dim(ds) >= 16 && hi > lo && win > 0.0 && win < (hi - lo) / 64.0;
    if (!beyond && !narrow) return 0;
    /* Said once per data and recorded range: compare's models trained on the same data would
     * repeat it word for word but the file name. */
    static char said[512];
    char key[512];
    snprintf(key, sizeof key, "%.400s|%.17g|%.17g", spec, lo, hi);
    if (!strcmp(key, said)) return 0;
    snprintf(said, sizeof said, "%s", key);
    fprintf(stderr, "note: %s's features range over [%g, %g], the data %s was trained on over "
            "[%g, %g]: were they scaled the same way? (predictions for inputs scaled otherwise "
            "mean nothing)\n", spec, (double)a, (double)b, model_path, lo, hi);
    return 0;
}

int cli_check_data(const char *cmd, const char *spec, const bnn_dataset *ds, const bnn_model *m,
                   bnn_task task, bool scored, const char *model_path, const bnn_st *st) {
    /* the task first: regression data under a classifier has other widths too, but the task is
     * what is wrong */
    int rc = scored ? cli_check_task(cmd, model_path, task, spec, ds) : 0;
    if (rc) return rc;
    if (bnn_dataset_dim(ds) != bnn_model_input_dim(m))
        return cli_usage_error(cmd, "%s has %lld feature%s but model %s expects %lld", spec,
                               (long long)bnn_dataset_dim(ds), bnn_dataset_dim(ds) == 1 ? "" : "s",
                               bnn_model_spec(m), (long long)bnn_model_input_dim(m));
    if ((rc = cli_note_range(cmd, spec, ds, model_path, st))) return rc;
    if (!scored || task != BNN_TASK_CLASSIFICATION) return 0;
    const int64_t k = bnn_model_pred_dim(m, BNN_TASK_CLASSIFICATION);
    if (bnn_dataset_outputs(ds) > k)
        return cli_usage_error(cmd, "%s has %lld classes but model %s predicts %lld", spec,
                               (long long)bnn_dataset_outputs(ds), bnn_model_spec(m), (long long)k);
    return 0;
}

int cli_fail_fit(const char *cmd, int rc) {
    const int status = cli_fail(cmd, rc, NULL);
    return rc == BNN_ESHAPE ? 2 : status;
}

void cli_default_model(char *buf, size_t len, const char *data_spec, const bnn_dataset *ds,
                       int64_t outputs) {
    int64_t d = bnn_dataset_dim(ds), k = outputs;
    if (!strncmp(data_spec, "fmnist", 6)) snprintf(buf, len, "mlp:%lld-512-256-%lld", (long long)d,
                                               (long long)k);
    else snprintf(buf, len, "mlp:%lld-50-50-%lld:tanh", (long long)d, (long long)k);
}

int cli_load_data(const char *cmd, const cli_data_flags *f, const char *split, bnn_task want,
                  bool have_want, bnn_dataset **out) {
    struct bnn_data_params dp = bnn_data_default_params();
    dp.split = split;
    dp.seed = (uint64_t)f->seed;
    if (f->header && f->no_header)
        return cli_usage_error(cmd, "--header and --no-header exclude each other");
    if (f->header || f->no_header) {
        dp.csv.header_auto = false;
        dp.csv.header = f->header;
    }
    dp.csv.target_col = f->target_col;
    if (f->task) {
        if (!strcmp(f->task, "classification")) dp.csv.task = BNN_TASK_CLASSIFICATION;
        else if (!strcmp(f->task, "regression")) dp.csv.task = BNN_TASK_REGRESSION;
        else return cli_usage_error(cmd, "--task must be classification or regression, got '%s'",
                                    f->task);
    } else if (have_want) {
        dp.csv.task = want;
    }
    char under[CLI_SPEC_MAX];
    int rc = bnn_data_load(out, cli_data_spec(f, under), &dp);
    const char *detail = bnn_last_error();
    if (rc == BNN_EIO && f->from && detail) {
        /* The user never typed this spec: say where it came from. */
        const bool relative = spec_relative(f->data);
        fprintf(stderr, "bnn %s: %s (the data %s was trained on%s%s; %s)\n", cmd, detail, f->from,
                !relative ? "" : f->dir ? ", in " : ", a path relative to where it was trained",
                relative && f->dir ? f->dir : "",
                strcmp(cmd, "train") ? "give --data SPEC"
                : f->fixed ? "put it back: the checkpoint keeps no fingerprint to check other "
                             "files against"
                           : "--data SPEC names it where it is now (its fingerprint is checked)");
        return 1;
    }
    if (rc == BNN_EFORMAT && !f->task && !strcmp(cmd, "train") && detail &&
        strstr(detail, "not a class label")) {
        /* Only train has --task: say how to read the targets as numbers. */
        fprintf(stderr, "bnn %s: %s (--task regression reads the targets as numbers)\n", cmd,
                detail);
        return 1;
    }
    /* BNN_EINVAL from the loaders is the request, not the file: an unknown or malformed spec, a
     * target column the file lacks. A usage error, as an option that cannot apply is. */
    if (rc) {
        cli_fail(cmd, rc, NULL);
        return rc == BNN_EINVAL ? 2 : 1;
    }
    return 0;
}

void pred_free(pred *p) {
    free(p->probs), free(p->logp), free(p->mi);
    for (int i = 0; i < NSCORES; i++) free(p->score[i]);
    memset(p, 0, sizeof *p);
}

int predict_scores(const char *cmd, bnn_model *m, const bnn_posterior *q,
                          const bnn_dataset *ds, const struct bnn_predict_params *pp, pred *out) {
    const int64_t n = bnn_dataset_n(ds), k = bnn_model_pred_dim(m, BNN_TASK_CLASSIFICATION);
    memset(out, 0, sizeof *out);
    out->n = n, out->k = k;
    out->probs = malloc((size_t)(n * k) * sizeof(double));
    out->logp = malloc((size_t)(n * k) * sizeof(double));
    out->mi = malloc((size_t)n * sizeof(double));
    for (int i = 0; i < NSCORES; i++) out->score[i] = malloc((size_t)n * sizeof(double));
    if (!out->probs || !out->logp || !out->mi || !out->score[0] || !out->score[1] ||
        !out->score[2]) {
        pred_free(out);
        return cli_error(cmd, "out of memory");
    }
    struct bnn_predict_params pl = *pp;
    pl.log_probs = true;
    int rc = bnn_predict(m, q, bnn_dataset_cx(ds), n, BNN_TASK_CLASSIFICATION, &pl, out->logp,
                         out->mi, NULL, NULL);
    if (rc) {
        pred_free(out);
        return cli_fail(cmd, rc, NULL);
    }
    for (int64_t i = 0; i < n * k; i++) out->probs[i] = exp(out->logp[i]);
    for (int64_t i = 0; i < n; i++) {
        const double *p = out->probs + i * k;
        /* 1 − max prob as the sum of the other probabilities: it keeps its resolution where the
         * largest rounds to 1 (logits 1e4 apart give 0 by subtraction for every example). */
        const int64_t top = bnn_argmax(p, k);
        double rest = 0.0;
        for (int64_t j = 0; j < k; j++) rest += j == top ? 0.0 : p[j];
        out->score[0][i] = rest;
        out->score[1][i] = bnn_entropy(p, k);
        out->score[2][i] = out->mi[i];
    }
    return 0;
}



double mean_of(const double *v, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    return s / (double)n;
}

void cli_fmt_double(char *buf, size_t len, double v) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

bool cli_linear_in_subset(const bnn_model *m, const bnn_curv *c, int64_t i) {
    int64_t wo, ws[2], bo, bl;
    if (strcmp(bnn_model_layer_kind(m, i), "linear") ||
        bnn_model_layer_tensors(m, i, &wo, ws, &bo, &bl))
        return false;
    for (int64_t s = 0; s < bnn_curv_nsegments(c); s++) {
        int64_t so, sl;
        if (!bnn_curv_segment(c, s, &so, &sl) && wo >= so && bo + bl <= so + sl) return true;
    }
    return false;
}

void cli_put_prior(FILE *f, const bnn_model *m, const bnn_laplace *la) {
    const int64_t n = bnn_laplace_nlayers(la);
    double *d = n > 1 ? malloc((size_t)n * sizeof(double)) : NULL;
    bool differ = false;
    if (d && !bnn_laplace_prior_layers(la, d, n))
        for (int64_t i = 1; i < n; i++) differ = differ || d[i] != d[0];
    if (!differ) {
        fprintf(f, "prior precision %.4g", bnn_laplace_prior_prec(la));
    } else {
        fprintf(f, "prior precisions ");
        for (int64_t i = 0; i < n; i++) fprintf(f, "%s%.4g", i ? ", " : "", d[i]);
        /* Files from before one δ per tensor hold one per Linear layer. */
        int64_t nlin = 0;
        for (int64_t i = 0; i < bnn_model_nlayers(m); i++)
            nlin += cli_linear_in_subset(m, bnn_laplace_curv(la), i);
        fprintf(f, " (one per %s)", n == 2 * nlin ? "weight and bias tensor" : "Linear layer");
    }
    free(d);
}

int cli_check_task(const char *cmd, const char *model_path, bnn_task task, const char *data,
                   const bnn_dataset *ds) {
    /* Inputs alone load as an unlabelled set of either kind: say that, not "the wrong kind". */
    if (!bnn_dataset_labelled(ds))
        return cli_usage_error(cmd, "%s has no %s (inputs only): it can be predicted on or passed "
                               "as --ood data, not scored or fitted to", data,
                               task == BNN_TASK_REGRESSION ? "targets" : "labels");
    const bnn_task dt = bnn_dataset_task(ds);
    if (dt == task) return 0;
    return cli_usage_error(cmd, "%s is a %s model but %s is %s data", model_path,
                           task == BNN_TASK_REGRESSION ? "regression" : "classification", data,
                           dt == BNN_TASK_REGRESSION ? "regression" : "classification");
}

int cli_fit_data(const char *cmd, const bnn_model *m, const char *model_path, const bnn_st *st,
                 bnn_task task,
                 cli_data_flags *df, const cli_opt *opts, int nopts, const char *output,
                 bnn_dataset **all, bnn_dataset **train, bnn_dataset **val, bool *own,
                 int64_t *model_holdout) {
    *all = *train = *val = NULL;
    const char *given = df->data, *spec = given ? given : bnn_st_meta(st, "bnn.data");
    *own = !given || cli_own_data(st, given);
    int rc = spec ? cli_check_csv_flags(cmd, opts, nopts, spec, false) : 0;
    if (rc) return rc;
    if ((rc = cli_meta_count(cmd, model_path, "bnn.data.holdout",
                             bnn_st_meta(st, "bnn.data.holdout"), model_holdout)))
        return rc;
    const int64_t holdout = *own ? *model_holdout : 0;
    if ((rc = cli_meta_int(cmd, model_path, "bnn.seed", bnn_st_meta(st, "bnn.seed"), 0, 0,
                           &df->seed)) ||
        (rc = cli_model_data(cmd, model_path, st, df, cli_seen(opts, nopts, "target-col"))))
        return rc;
    df->task = task == BNN_TASK_REGRESSION ? "regression" : "classification";
    /* Not over the model it starts from, nor over its data (known only now: it may come from
     * the model's metadata). */
    if ((rc = cli_check_output_data(cmd, output, model_path, NULL, df))) return rc;
    if ((rc = cli_load_data(cmd, df, "train", task, true, all)) ||
        /* the model's own data is its range: no need to scan 47 M values for fmnist */
        (rc = cli_check_data(cmd, df->data, *all, m, task, true, model_path, *own ? NULL : st)))
        return rc;
    const int64_t n = bnn_dataset_n(*all);
    if (holdout >= n)
        return cli_error(cmd, "%s holds out %lld examples but %s has only %lld", model_path,
                         (long long)holdout, df->data, (long long)n);
    /* The held-out rows are copied, and the rest is the loaded set itself, cut in place (two
     * copies beside it made the peak memory about twice the data's). */
    if (holdout > 0) {
        if ((rc = bnn_dataset_slice(val, *all, n - holdout, n)) ||
            (rc = bnn_dataset_truncate(*all, n - holdout)))
            return cli_fail(cmd, rc, NULL);
        *train = *all, *all = NULL;
    }
    return 0;
}

bool cli_quiet;

void cli_data_meta_make(cli_data_meta *dm, const cli_data_flags *df) {
    snprintf(dm->target_col, sizeof dm->target_col, "%lld", (long long)df->target_col);
    dm->n = 0;
    /* A safetensors header holds UTF-8 only: a name from a Latin-1 file system is left out (the
     * writer would refuse it after all the work), and the commands that read the file again
     * need --data; the CSV settings below still apply to what they are given. */
    const bool named = bnn_st_text_ok(df->data);
    if (!named)
        fprintf(stderr, "note: the data's name is not valid UTF-8, which a safetensors file "
                "cannot hold: the saved file does not record its data (give --data to the "
                "commands that read it; they then cannot tell rows held out from others)\n");
    if (named) dm->keys[dm->n] = "bnn.data", dm->vals[dm->n++] = df->data;
    /* Relative file names are the training directory's: eval and resume find them from
     * anywhere. */
    const char *dir = named ? cli_data_dir(df, dm->dir, sizeof dm->dir) : NULL;
    if (dir && !bnn_st_text_ok(dir)) {
        fprintf(stderr, "note: the current directory, where %s's relative names were read, has a "
                "name that is not valid UTF-8, which a safetensors file cannot hold: the saved "
                "file does not record it (the commands that read the file look for those names "
                "where they run)\n", df->data);
        dir = NULL;
    }
    if (dir) dm->keys[dm->n] = "bnn.data.dir", dm->vals[dm->n++] = dir;
    dm->keys[dm->n] = "bnn.data.target_col", dm->vals[dm->n++] = dm->target_col;
    dm->keys[dm->n] = "bnn.data.header",
    dm->vals[dm->n++] = df->header ? "yes" : (df->no_header ? "no" : "auto");
}

int cli_save_posterior(const char *cmd, const bnn_laplace *la, const bnn_model *m, bnn_task task,
                       const char *output, const bnn_st *st, const cli_data_flags *df,
                       const bnn_dataset *fit, const char **keys, const char **vals, int nkv) {
    const char *keep[] = {"bnn.data",     "bnn.data.dir", "bnn.data.target_col", "bnn.data.header",
                          "bnn.data.min", "bnn.data.max", "bnn.seed"};
    cli_data_meta dm;
    char seed[32];
    if (!bnn_st_meta(st, "bnn.data") && df->data) {
        /* A network that records no data (a PyTorch state dict, say): the data fitted on, as
         * train records its own, so eval and predict read it again without --data. */
        cli_data_meta_make(&dm, df);
        if (fit) cli_data_meta_range(&dm, fit);
        for (int i = 0; i < dm.n; i++) keys[nkv] = dm.keys[i], vals[nkv++] = dm.vals[i];
        keep[0] = keep[1] = keep[2] = keep[3] = keep[4] = keep[5] = "";
        /* generated data (moons, ...) is a draw of its seed: the one fitted on */
        if (bnn_data_generated(df->data) && !bnn_st_meta(st, "bnn.seed")) {
            snprintf(seed, sizeof seed, "%lld", (long long)df->seed);
            keys[nkv] = "bnn.seed", vals[nkv++] = seed;
        }
    }
    /* The model's own data is recorded as it was read now: without --data, with the directory it
     * was found in (the recorded one, or the current one where the tree has moved since:
     * cli_data_dir); named by --data (the same files), as named there, with the current
     * directory for a relative name. The recorded directory could be one that no longer holds
     * the files, which sent eval there. */
    const bool given = keep[0][0] && !df->from && df->data && bnn_st_text_ok(df->data) &&
                       cli_own_data(st, df->data);
    const bool own = keep[1][0] && (df->from || given);
    const char *dir = own ? cli_data_dir(df, dm.dir, sizeof dm.dir) : NULL;
    if (dir && !bnn_st_text_ok(dir)) dir = NULL; /* (train's note says why) */
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const char *v = given && i == 0 ? df->data
                        : own && i == 1 ? dir
                        : *keep[i]      ? bnn_st_meta(st, keep[i])
                                        : NULL;
        if (v) keys[nkv] = keep[i], vals[nkv++] = v;
    }
    if (cli_check_stdout(cmd)) return 1;
    int rc = bnn_laplace_save(la, m, task, output, keys, vals, nkv);
    if (rc) return cli_fail(cmd, rc, "cannot save the posterior");
    if (!cli_quiet) fprintf(stderr, "saved %s\n", cli_out_name(output));
    return 0;
}

int cli_note_temperature(const char *cmd, const char *model_path, const bnn_st *st,
                         const char *what) {
    const char *v = bnn_st_meta(st, "bnn.temperature");
    if (!v) return 0;
    double T = 1.0;
    int rc = cli_meta_positive(cmd, model_path, "bnn.temperature", v, &T);
    if (rc) return rc;
    fprintf(stderr, "note: %s was calibrated (temperature %.4g); %s its weights only, not the "
            "temperature\n", model_path, T, what);
    return 0;
}

const char *cli_posterior_name(const bnn_st *st) {
    const char *meth = bnn_st_meta(st, "bnn.method"), *kind = bnn_st_meta(st, "bnn.posterior");
    return kind && meth && !strcmp(meth, "von") ? "VON" : kind;
}
