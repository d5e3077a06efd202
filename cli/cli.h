/* Shared pieces of the bnn command: flag parsing, error reporting, output files. */
#ifndef BNN_CLI_H
#define BNN_CLI_H

#include "bnn.h"

#include <stdio.h>

typedef enum { OPT_STR, OPT_INT, OPT_FLOAT, OPT_FLAG, OPT_LIST } opt_type;

/* A repeatable option's values (OPT_LIST). */
#define CLI_LIST_MAX 16
typedef struct cli_list {
    const char *v[CLI_LIST_MAX];
    int n;
} cli_list;

typedef struct cli_opt {
    const char *name;    /* long name without dashes, e.g. "batch-size" */
    char short_name;     /* 0 if none */
    opt_type type;
    void *dst;           /* const char **, int64_t *, double *, bool * or cli_list * */
    const char *metavar; /* e.g. "N" */
    const char *help;
    bool seen;           /* set by the parser */
} cli_opt;

/* Parses argv[1..] against opts. Positional arguments are stored in pos (at most max_pos);
 * *npos receives their count. On error prints one line to stderr and returns non-zero.
 * `--help` prints usage and returns 1 with *help set. */
int cli_parse(int argc, char **argv, cli_opt *opts, int nopts, const char *cmd, const char **pos,
              int max_pos, int *npos, bool *help);
void cli_usage(FILE *f, const char *cmd, const char *synopsis, const char *about,
               const cli_opt *opts, int nopts);
bool cli_seen(const cli_opt *opts, int nopts, const char *name);

/* Whether spec names data whose train and test splits are the same rows: a single csv: file,
 * idx: and npy: files (eval then reports no "test split"). */
bool cli_one_split(const char *spec);

/* Whether s ends with suffix, ignoring case (file name extensions). */
bool cli_ends_with(const char *s, const char *suffix);

/* An output's name for a report line: "the standard output" for "-". */
const char *cli_out_name(const char *path);

/* Prints "bnn CMD: MESSAGE: DETAIL" for a library error code and returns 1. */
int cli_fail(const char *cmd, int rc, const char *what);
/* Flushes the report on stdout and returns 1 (with a one-line error) if it could not be written:
 * called before an output file is saved, so a run that fails leaves no file behind. */
int cli_check_stdout(const char *cmd);
/* Prints "bnn CMD: " plus a formatted message and returns 1 (or 2 for usage errors). */
int cli_error(const char *cmd, const char *fmt, ...);
int cli_usage_error(const char *cmd, const char *fmt, ...);
/* A usage error (returns 2) when --flag's value v is non-zero and outside the range of a float:
 * it would overflow, or round to zero or to a subnormal. 0 when it is in range. */
int cli_float_range(const char *cmd, const char *flag, double v);
/* --temperature's check (eval, predict): positive, at most 1e6 (a temperature of 1e15 made
 * moons' probabilities tie and its accuracy 0.736 read 0.796), and a float. */
int cli_temperature_opt(const char *cmd, double t);
/* The largest temperature --temperature and a file's bnn.temperature may hold. */
#define CLI_MAX_TEMPERATURE 1e6

/* The shortest decimal text that reads back as the same double (for file metadata). */
void cli_fmt_double(char *buf, size_t len, double v);
/* A Laplace posterior's prior, no newline: "prior precision 0.37", or with per-tensor
 * precisions that differ "prior precisions 0.32, 0.19, ... (one per weight and bias tensor)". */
void cli_put_prior(FILE *f, const bnn_model *m, const bnn_laplace *la);
/* Whether paths a and b name the same file: the same file when both exist, else the same name
 * in the same (resolved) directory ("x.st" and "./x.st"). */
bool cli_same_path(const char *a, const char *b);
/* Whether data specs a and b are the same data: equal, or csv:/idx: specs naming the same files
 * (cli_same_path), e.g. "csv:d.csv" and "csv:./d.csv". */
bool cli_same_data(const char *a, const char *b);
/* Whether model layer i is a Linear layer whose weight and bias lie in the curvature's subset. */
bool cli_linear_in_subset(const bnn_model *m, const bnn_curv *c, int64_t i);

/* Writes text to path atomically (bnn_write_file). Returns 0 or prints and returns 1. */
int cli_write_atomic(const char *cmd, const char *path, const char *text);

/* Writes s with control characters as '?' (a file's text shown on a terminal). cli_error and
 * cli_usage_error pass their whole message through it. */
void cli_put_printable(FILE *f, const char *s);
/* Metadata value v of key in file path as a positive number in a float's range into *out (1 when v
 * is NULL, the key absent); else prints a message naming the file and key and returns 1. */
int cli_meta_positive(const char *cmd, const char *path, const char *key, const char *v,
                      double *out);
/* The file's bnn.temperature (cli_meta_positive; 1 when absent). A regression model's file that
 * has one is refused (returns 1): a temperature divides a classifier's logits, and the option
 * --temperature is a usage error for regression models. */
int cli_meta_temperature(const char *cmd, const char *path, const bnn_st *st, bnn_task task,
                         double *out);

/* Metadata value v of key as a whole number >= lo (dflt when v is NULL); else prints a message
 * naming the file and key and returns 1. cli_meta_count: lo 0, dflt 0. */
int cli_meta_int(const char *cmd, const char *path, const char *key, const char *v, int64_t lo,
                 int64_t dflt, int64_t *out);
int cli_meta_count(const char *cmd, const char *path, const char *key, const char *v,
                   int64_t *out);

/* The options of every command that predicts (eval, predict, compare, plot), one text for all:
 * --samples (left at -1 when not given: cli_samples_for picks it once the posterior is known),
 * --seed, --link-samples and --link (linkname, a string left NULL when not given).
 * cli_check_predict_opts refuses values out of range (a usage error, returns 2) and resolves
 * the link. */
#define CLI_PREDICT_OPTS(samples, seed, link, linkname)                                            \
    {"samples", 'S', OPT_INT, &(samples), "S",                                                     \
     "weight samples to average (0: at the mean): default 32 for ivon and mfvi; a Laplace file "  \
     "uses its GLM predictive unless S > 0; a point estimate takes only 0", 0},                   \
    {"seed", 's', OPT_INT, &(seed), "N",                                                           \
     "seed of the weight samples and of --link mc's draws, and of generated data other than the "  \
     "model's own (which keeps its training seed) (default 0)", 0},                                \
    {"link", 0, OPT_STR, &(linkname), "NAME",                                                      \
     "Laplace or VON GLM predictive of a classifier, as laplace-torch's link_approx: probit "      \
     "(default, unless the file records the link its grid prior was chosen with), mc "             \
     "(Monte-Carlo over the linearised logits, --link-samples draws, default 100), "               \
     "bridge or bridge-norm (the Laplace bridge to a Dirichlet, plain or variance-normalised)",    \
     0},                                                                                           \
    {"link-samples", 0, OPT_INT, &(link), "S",                                                     \
     "draws of --link mc; S > 0 without --link also selects mc (0: probit)", 0}
/* --local-reparam, for eval, predict and compare (not plot: drawn per point, a plot's surface
 * would be speckled, and a 2-input first layer has little to save). */
#define CLI_LRT_OPT(lrt)                                                                           \
    {"local-reparam", 0, OPT_FLAG, &(lrt), NULL,                                                   \
     "ivon and mfvi samples: draw the first layer's outputs from their exact Gaussian per "       \
     "example instead of from a weight sample (the same predictive per example; the layer's two "  \
     "products, mean and variance, run once instead of once per sample)", 0}
/* The CSV options of every command that reads a model's data (all but train, which has its own
 * defaults, and predict, whose --input is features only): --target-col, --header, --no-header.
 * They apply to csv: data only (cli_check_csv_flags). */
#define CLI_CSV_OPTS(df)                                                                           \
    {"target-col", 0, OPT_INT, &(df).target_col, "N",                                              \
     "csv data: target column, from 0 (default: the one the model was trained with)", 0},          \
    {"header", 0, OPT_FLAG, &(df).header, NULL, "csv data: the first line is a header", 0},        \
    {"no-header", 0, OPT_FLAG, &(df).no_header, NULL, "csv data: the first line is data", 0}
/* -q: no progress (train's epoch lines, laplace's low-rank passes), "saved FILE" or "wrote FILE"
 * line on stderr; notes, warnings and errors stay. One flag for the commands that write files
 * (train, laplace, von, calibrate, predict, plot). */
extern bool cli_quiet;
#define CLI_QUIET_OPT                                                                              \
    {"quiet", 'q', OPT_FLAG, &cli_quiet, NULL,                                                     \
     "no progress or 'saved'/'wrote' line on stderr (notes and errors stay)", 0}
/* Also resolves --link and --link-samples: *lk the link, *link its draws (100 for --link mc
 * without --link-samples, else as given; 0 unless the link is mc). */
int cli_check_predict_opts(const char *cmd, const cli_opt *opts, int nopts, int64_t samples,
                           int64_t seed, int64_t *link, const char *linkname, bnn_link *lk);
/* Usage error (2) for a link option that cannot apply to the model at path: opt (the option
 * given, "link" or "link-samples", or NULL) for a regression model, a Laplace bridge (lk) for a
 * likelihood (lik, its name; NULL if unknown) other than categorical. */
int cli_check_link_model(const char *cmd, const char *opt, bnn_link lk, const char *path,
                         bnn_task task, const char *lik);
/* The link a Laplace file's prior precision was chosen through (bnn.link, and bnn.link_samples
 * for mc: bnn laplace --prior grid --link writes them), as the calibrated temperature is: the
 * GLM predictive's default where the command is given neither --link nor --link-samples nor
 * --samples S > 0, which then set *lk and *link. A key that is malformed, or that the model at
 * path cannot take (not a Laplace posterior, a regression model, a bridge for a likelihood lik
 * other than categorical), is an error (1) whether or not it would be used. *taken (if not
 * NULL): whether the file's link was taken. */
int cli_meta_link(const char *cmd, const cli_opt *opts, int nopts, int64_t samples,
                  const char *path, const bnn_st *st, bnn_task task, const char *lik, bool *taken,
                  bnn_link *lk, int64_t *link);
/* The note that a file's link (other than the probit) was taken, for once the command's
 * options have been checked. */
void cli_note_link(const char *path, bnn_link lk);
/* A note when a temperature T != 1 meets posterior q's GLM predictive through the normalised
 * bridge (samples == 0), which dividing the logits by T and their variances by T² leaves as it
 * was: a calibrated file predicted that way is not calibrated. */
void cli_note_bridge_temperature(const char *path, const bnn_posterior *q, int64_t samples,
                                 bnn_link lk, double T);
/* The GLM predictive's rule in words for the reports: "probit", "Monte-Carlo over the logits",
 * "Laplace bridge", "normalised Laplace bridge". */
const char *cli_link_words(bnn_link lk);
/* Out-of-distribution data for eval and compare: only its inputs matter. A CSV may be features
 * only (as for predict --input) or labelled (one column more than m's inputs: the column
 * target_col — the one the model was trained with, -1 the last — is the label and is dropped). */
/* Whether name ends as a raster or other non-SVG picture would (.png, .pdf, ...): such a name
 * would hold SVG, so plot -o and eval --plot refuse it. */
bool cli_raster_name(const char *name);
/* An unbounded metric (NLL, RMSE) for the tables: 4 decimals, or 6 significant digits from 1e6
 * on (a 1e32 NLL printed with %.4f is 33 digits) and below 1e-3 (an RMSE of 1e-28 read 0.0000).
 * buf holds 32 bytes; returns it. */
const char *cli_num4(char buf[32], double v);
/* A log marginal likelihood as laplace and von print it: four decimals, as ever (an all-weights
 * fit's is in the millions); 6 significant digits only for the absurd values of an absurd prior
 * (--prior 1e300 gives -6.5e302); "not finite" where it is not (laplace's at prior precision 1,
 * informational, can be where the chosen prior's is finite). */
const char *cli_fmt_lml(char buf[48], double v);
int cli_load_ood(const char *cmd, const char *spec, int64_t seed, int64_t target_col,
                 const bnn_model *m,
                 bnn_dataset **out);
/* Usage error (2) for the CSV options (--task, --target-col, --header, --no-header) given with
 * data that is not CSV; input_csv: predict's --input is a CSV (features only: the header options
 * apply, the others do not). */
int cli_check_csv_flags(const char *cmd, const cli_opt *opts, int nopts, const char *spec,
                        bool input_csv);
/* Usage error (2) for an option given that cannot apply to the loaded model: --temperature for
 * regression, --noise for a classifier, --samples S > 0 (the value given, -1 if none) for a
 * point estimate, --link or --link-samples without a Laplace posterior or for regression, a
 * Laplace bridge (*lk) for a likelihood other than categorical (lik). Then takes the link the
 * file at path records (cli_meta_link: st's metadata) into *lk and *link where the options leave
 * the choice to it, *file_link saying whether it did. */
int cli_check_applies(const char *cmd, const cli_opt *opts, int nopts, const char *path,
                      const bnn_st *st, bnn_task task, bnn_lik_kind lik, const bnn_posterior *q,
                      int64_t samples, bnn_link *lk, int64_t *link, bool *file_link);
/* --samples for posterior q: 0 for a point estimate (nothing to sample); else as given, and when
 * not given 32 for a diagonal Gaussian (ivon, mfvi) and 0 for a Laplace posterior (its GLM
 * predictive). */
int64_t cli_samples_for(const bnn_posterior *q, int64_t samples);
/* Whether loading data spec draws from the command's --seed: a generated set (moons, sine-gap,
 * sine-hetero, noise) that is not the model's own data (st's bnn.data, which keeps its training
 * seed); out-of-distribution data (ood) always draws from it. */
bool cli_spec_uses_seed(const char *spec, const bnn_st *st, bool ood);
/* Whether predicting from posterior q draws random numbers: weight samples (samples, as
 * cli_samples_for gives it, > 0) or Monte-Carlo over a Laplace posterior's linearised logits
 * (link > 0). */
bool cli_predict_draws(const bnn_posterior *q, int64_t samples, int64_t link);
/* --seed given where nothing draws from it (used false): prints a usage error and returns 2, as
 * laplace and von refuse it, instead of accepting an option that changes nothing. */
int cli_check_seed_used(const char *cmd, const cli_opt *opts, int nopts, bool used);

/* --threads: 0 leaves the default (all cores), 1..BNN_MAX_THREADS sets it; else a usage error
 * (returns 2). */
int cli_set_threads(const char *cmd, int64_t threads);

/* Before any work: refuses an output path that is one of the inputs (same device and inode), a
 * directory, or one whose directory does not exist or is not writable. NULL out is fine. */
int cli_check_output(const char *cmd, const char *out, const char *const *inputs, int ninputs);

/* For a command that prints its report on standard output and saves a safetensors file: refuses
 * (usage error, 2) an output that is standard output ("-", /dev/stdout, or the file stdout is
 * redirected to), where the file's bytes would follow the report and nothing could read them. */
int cli_check_file_output(const char *cmd, const char *out, const char *what);

/* cli_check_output against up to two files (NULL for none) and the files of a data spec. */
int cli_check_output_of(const char *cmd, const char *out, const char *file1, const char *file2,
                        const char *spec);

/* That ds fits model m: the feature count, and when `scored` (metrics against labels or a fit to
 * them), cli_check_task against the model's task first (labels or targets, of that task) and no
 * more classes than the model predicts. spec names the data in the message. Prints and returns 2
 * on a mismatch: data that cannot apply to the model is a usage error, as an option that cannot
 * apply is. */
int cli_check_data(const char *cmd, const char *spec, const bnn_dataset *ds, const bnn_model *m,
                   bnn_task task, bool scored, const char *model_path, const bnn_st *st);
/* A note on stderr when ds's features reach beyond the range the model file st records for its
 * training data (bnn.data.min, bnn.data.max) by more than that range's width, or (16 features or
 * more) span less than 1/64 of it: inputs scaled otherwise than the training data (images as
 * 0..255 where the model saw 0..1), for which its predictions mean nothing. Returns 0, or an error for a malformed recorded range; a file that
 * records none (older files, PyTorch's) is not checked. cli_check_data calls it. */
int cli_note_range(const char *cmd, const char *spec, const bnn_dataset *ds,
                   const char *model_path, const bnn_st *st);
/* cli_fail for a library call that checks the data against the model itself (training, the
 * curvature, VON): 2 when it found them not to fit (BNN_ESHAPE), as cli_check_data, else 1. */
int cli_fail_fit(const char *cmd, int rc);

/* The default model for a dataset spec: fmnist gets the MLP of the benchmarks, the small
 * problems a two-hidden-layer tanh MLP sized to the data, with `outputs` outputs (what the
 * likelihood needs). Writes into buf. */
void cli_default_model(char *buf, size_t len, const char *data_spec, const bnn_dataset *ds,
                       int64_t outputs);

/* Fills data params from the common data flags. */
typedef struct cli_data_flags {
    const char *data;
    const char *task;
    int64_t target_col;
    bool header, no_header;
    int64_t seed;
    /* Set by cli_model_data when data is the spec a model file records: the directory it was
     * trained in (bnn.data.dir; NULL for older files), where its relative file names are looked
     * up first, and the file's path, named when the data cannot be read. */
    const char *dir, *from;
    bool fixed; /* a resumed checkpoint without a data fingerprint: --data cannot stand in */
} cli_data_flags;
/* The directory a saved file records as bnn.data.dir for a data spec with relative file names:
 * the current one, or df->dir (a model's own data, resumed or fitted) where the files were found
 * under it; in buf; NULL for other specs. */
const char *cli_data_dir(const cli_data_flags *df, char *buf, size_t len);
/* The data settings a saved file records, so that eval, predict, calibrate and resume read the
 * same data again from anywhere: bnn.data, bnn.data.dir (for relative file names),
 * bnn.data.target_col and bnn.data.header, in keys[0 .. n); the rest is room for the caller's. */
typedef struct cli_data_meta {
    char target_col[32], dir[4096], lo[32], hi[32];
    const char *keys[10], *vals[10];
    int n;
} cli_data_meta;
void cli_data_meta_make(cli_data_meta *dm, const cli_data_flags *df);
/* Adds the smallest and largest feature value of ds (the training data) as bnn.data.min and
 * bnn.data.max, which cli_note_range checks other inputs against. */
void cli_data_meta_range(cli_data_meta *dm, const bnn_dataset *ds);
/* The spec as cli_load_data reads it: df->data, with its relative file names under df->dir where
 * they exist there. Returns df->data or buf (CLI_SPEC_MAX bytes). */
#define CLI_SPEC_MAX 4300
const char *cli_data_spec(const cli_data_flags *df, char *buf);
/* Whether spec names the data the model file st was trained on (its bnn.data, with relative
 * names under its bnn.data.dir as cli_load_data reads them): the same files, not the same text. */
bool cli_own_data(const bnn_st *st, const char *spec);
/* Whether reading `split` of spec reads the rows the model file st was trained on: the file that
 * split reads (csv:TRAIN,TEST's first or second; a one-file spec's only one) is the recorded
 * spec's training file, or a built-in set's train split is its own. */
bool cli_reads_trained_rows(const bnn_st *st, const char *spec, const char *split);
/* cli_check_output_of against the files df's spec names as cli_load_data reads them. */
int cli_check_output_data(const char *cmd, const char *out, const char *file1, const char *file2,
                          const cli_data_flags *df);
int cli_load_data(const char *cmd, const cli_data_flags *f, const char *split, bnn_task want,
                  bool have_want, bnn_dataset **out);

/* The data a command reads for a model file: df->data when given, else the model's recorded
 * bnn.data (a usage error, returned as 2, when neither exists). When the spec is the recorded
 * one it is read as it was in training: the CSV target column and header unless the command's
 * own flags set them (seen_target_col; --header and --no-header are seen when true), and the
 * generated data's seed (bnn.seed) always. Prints and returns non-zero on a bad metadata
 * value. */
int cli_model_data(const char *cmd, const char *model_path, const bnn_st *st, cli_data_flags *df,
                   bool seen_target_col);

/* The model's task against the data's (a generated set such as moons has its own): prints
 * "MODEL is a regression model but DATA is classification data" and returns 2 when they differ
 * (a model file tagged with the wrong task, e.g. an export without bnn.lik). */
int cli_check_task(const char *cmd, const char *model_path, bnn_task task, const char *data,
                   const bnn_dataset *ds);
/* The training data of a post-hoc fit (laplace, von) for the model file model_path (read as st,
 * of task `task`): --data (df->data) or the model's own, read as in training (cli_model_data,
 * with the command's CSV options in opts checked and applied, and generated data drawn from the
 * model's seed). The model's hold-out (bnn.data.holdout) stays
 * out of its own data, also when --data names that data: then *train holds the rows before it
 * (the loaded set, cut in place), *val the hold-out and *all is NULL; else both are NULL and
 * *all is everything. *own says whether the data
 * is the model's own, *model_holdout its hold-out count. output is checked against the model
 * file and the data, and the data against model m (cli_check_data). Prints and returns non-zero
 * on failure (the datasets are the caller's to free either way). */
int cli_fit_data(const char *cmd, const bnn_model *m, const char *model_path, const bnn_st *st,
                 bnn_task task,
                 cli_data_flags *df, const cli_opt *opts, int nopts, const char *output,
                 bnn_dataset **all, bnn_dataset **train, bnn_dataset **val, bool *own,
                 int64_t *model_holdout);
/* The kind of posterior a file holds as a user would name it: "VON" for a bnn von file (stored
 * as a Laplace posterior), else its bnn.posterior ("point", "diag", "laplace"), NULL if none. */
const char *cli_posterior_name(const bnn_st *st);
/* A temperature from bnn calibrate (bnn.temperature) belongs to the point estimate's predictive;
 * a posterior fitted from the model does not carry it. Said on stderr ("note: ... calibrated
 * (temperature T); <what> its weights only, not the temperature"), not silently dropped.
 * Prints and returns non-zero for a bad value. */
int cli_note_temperature(const char *cmd, const char *model_path, const bnn_st *st,
                         const char *what);
/* Saves a posterior fitted from the model file st (laplace, von) to output: the metadata pairs
 * given (keys/vals, with room for 9 more) plus what eval needs to read the model's data again
 * (bnn.data, the directory it was trained in, its CSV target column and header, bnn.seed, the
 * range of its features; for a model that records no data, df's, the data fitted on, `fit`),
 * then says "saved OUTPUT" on stderr. Returns 0, or prints and returns 1. */
int cli_save_posterior(const char *cmd, const bnn_laplace *la, const bnn_model *m, bnn_task task,
                       const char *output, const bnn_st *st, const cli_data_flags *df,
                       const bnn_dataset *fit, const char **keys, const char **vals, int nkv);

/* The predictive of one dataset (its probabilities and their logarithms, which keep an exact
 * NLL where a probability underflows), with the per-example uncertainty scores (higher = more
 * uncertain): 1 − max probability, predictive entropy, mutual information. */
#define NSCORES 3
typedef struct pred {
    int64_t n, k;
    double *probs, *logp, *mi, *score[NSCORES];
} pred;
int predict_scores(const char *cmd, bnn_model *m, const bnn_posterior *q, const bnn_dataset *ds,
                   const struct bnn_predict_params *pp, pred *out);
void pred_free(pred *p);
double mean_of(const double *v, int64_t n);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_laplace(int argc, char **argv);
int cmd_von(int argc, char **argv);

#endif
