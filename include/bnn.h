/* bnn — Bayesian deep learning in C.
 *
 * This header is the reference for the public API. Conventions:
 *  - Every fallible call returns int: 0 on success or a negative BNN_E* code. The message for a
 *    code is bnn_strerror(code); the details of the last failure on this thread (file, offset,
 *    field, expected value) are in bnn_last_error().
 *  - Objects with state are opaque handles created by bnn_<x>_new / bnn_<x>_load and released by
 *    bnn_<x>_free (which accepts NULL). Settings come as struct bnn_<x>_params filled in by
 *    bnn_<x>_default_params().
 *  - Element counts and shapes are int64_t; byte sizes are size_t. Matrices are row-major.
 *  - The library never prints and never exits on bad input: a file, a spec, data, settings or
 *    a NULL handle get an error code from every function that returns one (int). Getters that
 *    return a value (bnn_model_nparams, bnn_posterior_mean, ...) need a valid handle, as
 *    strlen needs a string; the bnn_dataset_* getters alone also accept NULL. The per-step
 *    kernels of the layer and loss API (bnn_model_forward / backward, bnn_lik_loss,
 *    bnn_dataset_gather, bnn_rng_*, bnn_blr_grad_hess, bnn_gemm, bnn_syrk) assert
 *    their call-order and size preconditions instead (each says which): a violation there is a
 *    bug in the calling program, stopped at once with the condition named (BNN_ASSERT).
 *  - Threads: independent objects may be used from different threads at once (a model, trainer
 *    or Laplace posterior each; a const dataset or posterior may be shared), with the results
 *    of each alone. A model's buffers make it one thread's at a time. bnn_set_threads and
 *    bnn_gemm_set_backend are process-wide settings; bnn_output_hold holds the calling thread's
 *    writes only.
 *  - Numbers in text (CSV, file metadata, options) are read and written with the C library's
 *    strtod and printf, in the "C" locale's form (a '.' decimal point): every program has that
 *    locale until it calls setlocale. A program that sets LC_NUMERIC to a locale with a decimal
 *    comma must set it back to "C" (or uselocale a "C" locale on the thread) around bnn's calls.
 */
#ifndef BNN_H
#define BNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h> /* FILE, for bnn_write_file_emit */
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BNN_VERSION "0.1.0"

/* Upper limits on counts a caller sets: far above any real run, low enough that products such
 * as steps × epochs or samples × examples cannot overflow and a typo cannot start a run of
 * years. Larger values are refused with BNN_EINVAL (threads: clamped). */
#define BNN_MAX_EPOCHS 1000000      /* training epochs */
#define BNN_MAX_MC_SAMPLES 10000    /* weight samples per training step (IVON, MFVI) */
#define BNN_MAX_SAMPLES 1000000     /* weight samples of a predictive */
#define BNN_MAX_THREADS 1024        /* bnn_set_threads */

/* ---------------------------------------------------------------- errors */

enum {
    BNN_OK = 0,
    BNN_ENOMEM = -1,      /* an allocation failed */
    BNN_EIO = -2,         /* a file could not be opened, read or written */
    BNN_EFORMAT = -3,     /* a file's contents are malformed */
    BNN_EINVAL = -4,      /* an argument or setting is invalid */
    BNN_ESHAPE = -5,      /* shapes or sizes do not agree */
    BNN_ENOTFOUND = -6,   /* a named item looked up by name (a tensor, an installed dataset
                           * such as Fashion-MNIST) does not exist; a file that cannot be opened
                           * is BNN_EIO, an unknown spec BNN_EINVAL (a missing metadata key:
                           * bnn_st_meta returns NULL) */
    BNN_EDIVERGED = -7,   /* training, a fit or a prediction produced NaN or Inf, or a loss
                           * that blew up */
    BNN_EUNSUPPORTED = -8 /* a valid request this build cannot serve */
};

/* The fixed message for an error code ("out of memory", ...). Never NULL. */
const char *bnn_strerror(int code);
/* The detail string of the last error raised on this thread (empty if none). Read it after a call
 * failed: a call that succeeds need not clear it and may leave the message of an internal attempt
 * it recovered from (as with errno). */
const char *bnn_last_error(void);

/* ---------------------------------------------------------------- runtime */

/* Sets the number of threads of bnn's OpenMP loops (n is clamped to [1, BNN_MAX_THREADS]);
 * OpenBLAS runs on one thread, bnn sharing its products among its own. Results do not depend on
 * it: every reduction has a fixed order. The count bnn_get_threads reports is process-wide, but
 * OpenMP's team size is per thread: a program with threads of its own calls it in each thread
 * that runs bnn work (or sets OMP_NUM_THREADS). */
void bnn_set_threads(int n);
int bnn_get_threads(void);

/* Writes len bytes to path the way every bnn output is written: to a temporary name in the same
 * directory, synced, then renamed over path, so a failure leaves the old file (or none) and never
 * half a file. An existing path that is not a regular file (/dev/null, /dev/stdout, a pipe) is
 * written in place instead; "-" is the standard output. BNN_EIO naming the file on failure. */
int bnn_write_file(const char *path, const void *data, size_t len);
/* The same for a text that emit(f, ctx) prints straight into the temporary file, so a large
 * output is never built in memory first. emit returns 0, or non-zero on failure with errno
 * saying why (a failed fprintf sets it); the file is then not written (BNN_EIO). */
int bnn_write_file_emit(const char *path, int (*emit)(FILE *f, void *ctx), void *ctx);
/* Outputs that stand or fall together (a report and its plot). After bnn_output_hold, every file
 * bnn writes by rename is written and synced under its temporary name but not renamed;
 * bnn_output_commit renames them all in the order written (BNN_EIO naming the first that fails;
 * the ones after it are dropped), bnn_output_discard removes them, and either ends the hold. A
 * device or stream output is written at once. At most 8 files are held. A hold is the calling
 * thread's: other threads' writes go on as usual, and commit and discard touch only the calling
 * thread's files. */
void bnn_output_hold(void);
int bnn_output_commit(void);
void bnn_output_discard(void);
/* Removes the temporary files of the writes in progress or held, for a signal handler that ends
 * the process (async-signal-safe: it only calls unlink). */
void bnn_output_abandon(void);
/* The same for a handler of signal sig that keeps bnn_output_commit's files together: returns 0
 * after removing the temporary files, or, while a commit is renaming them, removes nothing,
 * returns 1 (the handler should then return) and the commit raises sig with its default action
 * once every held file is in place. Async-signal-safe. */
int bnn_output_abandon_sig(int sig);
/* Checks, before any work, that bnn_write_file could write path, decided as it decides: not an
 * empty name, not a directory, and for a file (written by rename) a directory that exists and
 * takes a new file (one is created there and removed). BNN_EINVAL or BNN_EIO naming the
 * problem (BNN_ENOMEM if a name cannot be copied); 0 also for a device or pipe. */
int bnn_check_output(const char *path);
/* How bnn_write_file writes path, as it decides it: BNN_OUTPUT_FILE (a new or regular file,
 * replaced by rename), BNN_OUTPUT_STDOUT or _STDERR ("-", /dev/stdout, a path that is the file
 * the stream goes to), BNN_OUTPUT_DEVICE (an existing device, pipe or terminal, written in
 * place), or a negative error code as bnn_check_output's for a name it cannot write. */
enum { BNN_OUTPUT_FILE = 0, BNN_OUTPUT_STDOUT = 1, BNN_OUTPUT_STDERR = 2, BNN_OUTPUT_DEVICE = 3 };
int bnn_output_kind(const char *path);

/* Parses s as a whole number the way every bnn reader does (command-line options, file metadata,
 * the lists inside metadata): an optional '-' and decimal digits, nothing else (no spaces, no
 * '+'), within int64. BNN_EINVAL otherwise, quoting s. */
int bnn_parse_int(const char *s, int64_t *out);
/* strtod for decimal text, as every bnn reader of real numbers uses it: C's hexadecimal form
 * ("0x10", which strtod reads as 16) is not a number here, so *end = s and 0 is returned, as
 * strtod does when there is no number. Everything else is strtod's (errno included). */
double bnn_strtod(const char *s, char **end);

/* ---------------------------------------------------------------- random numbers */

/* Counter-based generator (Philox4x32-10, Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3", SC 2011). A draw is a pure function of (seed, stream, counter), so a run gives the
 * same numbers whatever the thread count. The struct is the whole state: saving it saves the
 * generator position. */
typedef struct bnn_rng {
    uint64_t seed;
    uint64_t stream;
    uint64_t counter; /* number of 128-bit blocks consumed so far */
} bnn_rng;

bnn_rng bnn_rng_make(uint64_t seed, uint64_t stream);
/* The 128-bit block number `counter` of (seed, stream). */
void bnn_philox(uint32_t out[4], uint64_t seed, uint64_t stream, uint64_t counter);
/* out[i] ~ U(0, 1) (never exactly 0 or 1), n values; advances the counter by ceil(n/4).
 * Precondition (asserted), here and in bnn_rng_normal: n >= 0. */
void bnn_rng_uniform(bnn_rng *rng, float *out, int64_t n);
/* out[i] ~ N(0, 1) by Box–Muller, n values, four per 128-bit block; advances the counter by
 * ceil(n/4). The transform uses bnn's own vectorisable log/sin/cos (each value within 1e-6 of
 * exact Box–Muller on the same uniforms), identical on every x86-64 build. */
void bnn_rng_normal(bnn_rng *rng, float *out, int64_t n);
/* One uniform integer in [0, n). Advances the counter by 1. Precondition (asserted): n >= 1. */
uint64_t bnn_rng_below(bnn_rng *rng, uint64_t n);

/* ---------------------------------------------------------------- GEMM seam */

typedef enum { BNN_GEMM_AUTO = 0, BNN_GEMM_REF = 1, BNN_GEMM_BLAS = 2 } bnn_gemm_backend;

/* C (M×N) = alpha · op(A) · op(B) + beta · C, row-major and contiguous. op(A) is M×K: A is
 * stored M×K, or K×M when ta. op(B) is K×N: B is stored K×N, or N×K when tb. When beta is 0, C
 * is not read (NaN in C does not propagate). M, N, K >= 0 are asserted (a kernel). */
void bnn_gemm(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K, bool ta,
              bool tb, float alpha, float beta);
/* The same through a chosen backend; BNN_GEMM_REF is the plain C reference (any other value:
 * OpenBLAS when built with it). */
void bnn_gemm_with(bnn_gemm_backend be, float *C, const float *A, const float *B, int64_t M,
                   int64_t N, int64_t K, bool ta, bool tb, float alpha, float beta);
/* The symmetric rank-K update (BLAS SSYRK): the upper triangle (i <= j) of C (N×N) =
 * alpha · AᵀA + beta · C for A (K×N, row-major and contiguous), with half the multiply-adds of
 * bnn_gemm(C, A, A, N, N, K, true, false, ...). The strictly lower triangle of C is neither read
 * nor written; when beta is 0, C is not read. Like bnn_gemm, the result does not depend on the
 * thread count. */
void bnn_syrk(float *C, const float *A, int64_t N, int64_t K, float alpha, float beta);
void bnn_syrk_with(bnn_gemm_backend be, float *C, const float *A, int64_t N, int64_t K,
                   float alpha, float beta);
/* Selects the backend bnn_gemm and bnn_syrk use (AUTO: OpenBLAS when built with it), for the
 * whole process: set it before other threads run bnn work. A value other than the three acts as
 * AUTO. */
void bnn_gemm_set_backend(bnn_gemm_backend be);
/* True when this build has OpenBLAS. */
bool bnn_have_blas(void);
/* OpenBLAS's name for the kernels it chose for this CPU ("Haswell", "SkylakeX", "Zen", ...), or
 * NULL without OpenBLAS. */
const char *bnn_blas_core(void);
/* A better OPENBLAS_CORETYPE for this CPU when OpenBLAS fell back to pre-AVX2 kernels on one with
 * AVX2 and FMA ("Haswell") or AVX-512 ("SkylakeX"), as it does for a CPU it does not recognise
 * (a virtual machine's masked model): a training step then takes about twice as long. NULL
 * when its choice is fine, or off x86-64. OpenBLAS reads OPENBLAS_CORETYPE when it loads, so it
 * must be set in the environment before the program starts; the kernels differ in rounding, so
 * the results move in their last digits. */
const char *bnn_blas_better_core(void);
/* For a program's main, before anything else: when bnn_blas_better_core() names kernels and the
 * environment does not set OPENBLAS_CORETYPE, runs the program again (execve of /proc/self/exe
 * with the same argv, so the same pid, open files and standard input, and the environment plus
 * OPENBLAS_CORETYPE set to them and BNN_BLAS_FALLBACK to OpenBLAS's own choice; both stay in the
 * environment, for child processes too) and does not return. The new image gets the process
 * name back (the kernel would call it "exe"). Returns 0 when there is nothing to do (OpenBLAS's
 * choice is fine, OPENBLAS_CORETYPE is set, even to OpenBLAS's own choice, which is how to keep
 * it; no OpenBLAS; in the image this started; under valgrind; started through the dynamic
 * loader; an environment of over 4096 variables; not Linux), -1 when the new start failed (the
 * program goes on, with OpenBLAS's kernels). Start-up messages of the libraries (OpenMP's
 * OMP_DISPLAY_ENV, its warnings) then appear twice, once per image. */
int bnn_blas_use_better_core(char *const argv[]);
/* bnn_blas_use_better_core, and also, where neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY is set,
 * GOMP_SPINCOUNT=1000 (GCC's OpenMP runtime, which reads it when it loads; not with another
 * compiler's): its waiting threads
 * then sleep after about a thousand spins instead of 300,000, which costs a lone run nothing
 * measurable and keeps two busy processes on the same cores from taking 20 times as long (the
 * bnn command calls this). One new start for both; returns as bnn_blas_use_better_core. */
int bnn_restart_tuned(char *const argv[]);
/* After bnn_blas_use_better_core started the program again: the generic kernels OpenBLAS had
 * chosen ("Prescott"), while the ones in use are those it set; otherwise NULL. */
const char *bnn_blas_fallback_core(void);

/* ---------------------------------------------------------------- data */

typedef enum { BNN_TASK_CLASSIFICATION = 0, BNN_TASK_REGRESSION = 1 } bnn_task;

/* An in-memory dataset: n examples of d float features, with an int label in [0, classes) each
 * (classification) or t float targets each (regression). */
typedef struct bnn_dataset bnn_dataset;

/* Makes an empty dataset of n × d features (zeroed); labels or targets allocated per task
 * (targets: n × t; t is ignored for classification, classes for regression). */
int bnn_dataset_new(bnn_dataset **out, bnn_task task, int64_t n, int64_t d, int64_t t,
                    int64_t classes);
void bnn_dataset_free(bnn_dataset *ds);
bnn_task bnn_dataset_task(const bnn_dataset *ds);
int64_t bnn_dataset_n(const bnn_dataset *ds);
int64_t bnn_dataset_dim(const bnn_dataset *ds);
/* Number of classes (classification) or target columns (regression). */
int64_t bnn_dataset_outputs(const bnn_dataset *ds);
/* False for inputs without labels (uniform noise, IDX images without a labels file, a CSV read
 * with BNN_CSV_NO_TARGET): a classification set of one class whose labels are all 0, fit for
 * predictions and OOD scores but not for training or accuracy-type metrics. True otherwise. */
bool bnn_dataset_labelled(const bnn_dataset *ds);
/* Writable views, to fill or change a set. Training, evaluation and the curvature pass check
 * their data (bnn_dataset_validate) on entry; a set straight from bnn_data_load, or a slice of
 * one, was checked there and is not scanned again, until one of these three is called on it:
 * from then on every entry scans it. The const views below change nothing. */
float *bnn_dataset_x(bnn_dataset *ds);          /* n × d */
int32_t *bnn_dataset_labels(bnn_dataset *ds);   /* n, or NULL for regression */
float *bnn_dataset_targets(bnn_dataset *ds);    /* n × t, or NULL for classification */
const float *bnn_dataset_cx(const bnn_dataset *ds);
const int32_t *bnn_dataset_clabels(const bnn_dataset *ds);
const float *bnn_dataset_ctargets(const bnn_dataset *ds);
/* Image shape (channels, height, width) when the features are an image, else all 0. */
void bnn_dataset_image_shape(const bnn_dataset *ds, int64_t shape[3]);
/* Sets it; a shape whose product is not the feature count (or NULL) clears it to all 0. */
void bnn_dataset_set_image_shape(bnn_dataset *ds, const int64_t shape[3]);
/* Checks every feature and target is finite and every label is in range. BNN_EFORMAT if not,
 * naming the row and column. */
int bnn_dataset_validate(const bnn_dataset *ds);

/* IDX (the MNIST format; .gz read through zlib). Images (u8, any rank >= 2) become features
 * scaled to [0, 1]; the labels file gives class labels in [0, classes). labels_path may be NULL:
 * unlabelled images (one class, labels 0; classes is ignored). */
int bnn_idx_load(bnn_dataset **out, const char *images_path, const char *labels_path,
                 int64_t classes);

/* NPY (NumPy's np.save format, versions 1.0 to 3.0; .npy.gz read through zlib too). x_path holds
 * the features as they are (no scaling), one example per index of the first axis: shape (n,) (one
 * feature), (n, d), or (n, ...) flattened in C order; (n, h, w) gets the image shape (1, h, w)
 * and (n, c, h, w) the shape (c, h, w) (PyTorch's layout). Any bool, integer or float dtype of
 * either byte order, C or Fortran order. y_path holds the targets for task: class labels (whole
 * numbers >= 0 of any dtype; classes = the largest label + 1), shape (n,) or (n, 1); or regression
 * targets, shape (n,) or (n, t). y_path NULL: unlabelled (one class, labels 0; task ignored).
 * BNN_EFORMAT names the file and what is wrong (a dtype, a shape, a value that is not finite). */
int bnn_npy_load(bnn_dataset **out, const char *x_path, const char *y_path, bnn_task task);

struct bnn_csv_params {
    bool header;        /* the first line holds column names (default: auto-detect) */
    bool header_auto;   /* detect a header: the first line has no empty field and a name (a
                         * field that is not a number and starts with a letter, '_' or '"') */
    int64_t target_col; /* target column, 0-based; negative counts from the end (default -1);
                         * BNN_CSV_NO_TARGET: every column is a feature, an unlabelled set
                         * (one class, labels 0) whatever `task` says */
    bnn_task task;      /* classification: targets must be integers 0..K-1 */
    char delimiter;     /* default ',' */
};
#define BNN_CSV_NO_TARGET INT64_MIN
struct bnn_csv_params bnn_csv_default_params(void);
/* Fields are numbers with optional spaces around them; quoted fields are not read as such (a
 * delimiter inside quotes splits the field; a quote only makes a first line's field a name).
 * p NULL: bnn_csv_default_params(). */
int bnn_csv_load(bnn_dataset **out, const char *path, const struct bnn_csv_params *p);

/* Built-in toy problems. Two interleaved half-moons with Gaussian noise (2 classes). */
int bnn_toy_moons(bnn_dataset **out, int64_t n, double noise, uint64_t seed);
/* 1-D regression: x uniform on [-4,-1] ∪ [1,4] (a gap in the middle), y = sin(x) + noise·N(0,1).
 * Test sets use test=true: x evenly spaced on [-6, 6] covering the gap. */
int bnn_toy_sine_gap(bnn_dataset **out, int64_t n, double noise, uint64_t seed, bool test);
/* 1-D heteroscedastic regression: x uniform on [-3, 3], y = sin(x) + σ(x)·N(0,1) with noise
 * growing away from 0, σ(x) = bnn_toy_sine_hetero_sigma(x) = 0.1 + 0.2·|x| (0.1 at 0, 0.7 at ±3).
 * The test split (test=true) is a fresh draw from the same distribution, noise included (an
 * independent stream of the same seed), so a predictive's NLL can be judged on it. */
int bnn_toy_sine_hetero(bnn_dataset **out, int64_t n, uint64_t seed, bool test);
double bnn_toy_sine_hetero_sigma(double x);

/* Looks up a dataset by spec. split is "train" or "test".
 *   fmnist               Fashion-MNIST from $BNN_FMNIST_DIR or /usr/share/datasets/fashion-mnist
 *   moons, sine-gap, sine-hetero   the toy problems (p->seed)
 *   noise, noise:D, noise:D:N   uniform features in (0,1) (default 784 × 10000, image 1×28×28),
 *                        unlabeled: one class, labels 0; the same for both splits (p->seed)
 *   csv:PATH, csv:TRAIN,TEST    a CSV file (p->csv); the same file for both splits unless two
 *   idx:IMAGES, idx:IMAGES,LABELS   the user's IDX files (without labels: one class, labels 0)
 *   npy:X, npy:X,Y       the user's NPY files (bnn_npy_load with p->csv.task; without Y: one
 *                        class, labels 0); like idx:, the same files for both splits
 * Image data (fmnist, noise) take modifiers applied left to right: ":rot=DEG" (bilinear rotation
 * about the centre, counter-clockwise, zeros outside) and ":flip" (upside down), e.g.
 * "fmnist:rot=30", "fmnist:flip". csv:, idx: and npy: take the rest of the spec as file names. */
struct bnn_data_params {
    const char *split;      /* "train" (default) or "test" */
    uint64_t seed;          /* for the toy generators */
    struct bnn_csv_params csv; /* csv: files; npy: files take csv.task */
};
struct bnn_data_params bnn_data_default_params(void);
/* p NULL: bnn_data_default_params(). The toy problems' sizes (train / test): moons 1000 / 500
 * (noise 0.1; the test split an independent draw of the same seed), sine-gap 64 / 200 (noise 0.1),
 * sine-hetero 500 / 1000. Specs are case-sensitive. */
int bnn_data_load(bnn_dataset **out, const char *spec, const struct bnn_data_params *p);
/* The directory fmnist is read from: $BNN_FMNIST_DIR when set and not empty, else
 * /usr/share/datasets/fashion-mnist. Its files are {train,t10k}-{images-idx3,labels-idx1}-ubyte,
 * each gzip-compressed (.gz) or not. */
const char *bnn_fmnist_dir(void);
/* Whether spec names a generated dataset (moons, sine-gap, sine-hetero, noise, with or without
 * modifiers), which bnn_data_load draws from bnn_data_params.seed. */
bool bnn_data_generated(const char *spec);

/* A copy of rows [lo, hi) of ds (same task, classes and image shape), e.g. to hold out a
 * validation split. */
int bnn_dataset_slice(bnn_dataset **out, const bnn_dataset *ds, int64_t lo, int64_t hi);
/* Keeps the first n rows of ds (1 <= n <= its size) in place, as bnn_dataset_slice(ds, 0, n)
 * would copy them, without a second copy of the data (the memory of the rows dropped stays
 * allocated until bnn_dataset_free). BNN_EINVAL for another n. */
int bnn_dataset_truncate(bnn_dataset *ds, int64_t n);

/* Shuffled mini-batches: a permutation of 0..n-1 drawn from (seed, epoch), so epoch e of a run
 * is the same whatever happened before it. */
int bnn_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch);
/* Copies rows idx[0..b) of ds into x (b × d) and labels / targets. Precondition (asserted):
 * every idx[i] in [0, n). */
void bnn_dataset_gather(const bnn_dataset *ds, const int64_t *idx, int64_t b, float *x,
                        int32_t *labels, float *targets);

/* ---------------------------------------------------------------- model */

typedef struct bnn_model bnn_model;

/* Parses a model spec and builds the model (parameters allocated, not initialised).
 *   mlp:D-H1-...-K[:act][:dropout=P]   act in relu (default), tanh, gelu
 * e.g. "mlp:784-512-256-10", "mlp:2-50-50-1:tanh", "mlp:784-512-10:relu:dropout=0.2".
 * Layers follow PyTorch's nn.Sequential order (Linear, activation[, Dropout], Linear, ...). */
int bnn_model_new(bnn_model **out, const char *spec);
void bnn_model_free(bnn_model *m);
/* The canonical spec string (owned by the model). */
const char *bnn_model_spec(const bnn_model *m);
int64_t bnn_model_nparams(const bnn_model *m);
int64_t bnn_model_input_dim(const bnn_model *m);
int64_t bnn_model_output_dim(const bnn_model *m);
/* The flat parameter vector (nparams floats, 64-byte aligned). Layout: for each Linear layer,
 * weight [out, in] row-major then bias [out], in layer order (PyTorch parameters() order). */
float *bnn_model_params(bnn_model *m);
const float *bnn_model_cparams(const bnn_model *m);
/* Initialises the weights like PyTorch's nn.Linear: U(-1/√in, 1/√in) for weights and biases,
 * drawn from (seed, stream 0). */
void bnn_model_init(bnn_model *m, uint64_t seed);
/* Allocates activation buffers for batches of up to max_batch examples. Called once; forward
 * and backward then allocate nothing. */
int bnn_model_reserve(bnn_model *m, int64_t max_batch);
int64_t bnn_model_max_batch(const bnn_model *m);

/* Forward pass of b examples x (b × input_dim) with parameters theta (nparams floats; pass
 * bnn_model_params(m) for the model's own weights, or a sampled vector). train=true enables
 * dropout, whose mask is drawn from rng (may be NULL when the model has no dropout). Returns the
 * outputs (b × output_dim), owned by the model and valid until the next forward. Preconditions
 * (asserted): 1 <= b <= the reserved batch (bnn_model_reserve first), and rng when train is set
 * on a model with dropout. */
const float *bnn_model_forward(bnn_model *m, const float *theta, const float *x, int64_t b,
                               bool train, bnn_rng *rng);
/* Backward pass for the last forward: given dout (b × output_dim) = ∂loss/∂output, ADDS
 * ∂loss/∂theta into grad (nparams floats). Precondition (asserted): a forward came first. */
void bnn_model_backward(bnn_model *m, const float *theta, const float *dout, float *grad);
/* Like backward, and also returns ∂loss/∂x (b × input_dim) in dx. */
void bnn_model_backward_input(bnn_model *m, const float *theta, const float *dout, float *grad,
                              float *dx);

/* Layer introspection (for files and later the curvature pass). */
int64_t bnn_model_nlayers(const bnn_model *m);
const char *bnn_model_layer_kind(const bnn_model *m, int64_t i); /* "linear", "relu", ...;
                                                                    * NULL for i out of range */
/* For a layer with parameters: offsets and shapes of its tensors in the flat vector. */
int bnn_model_layer_tensors(const bnn_model *m, int64_t i, int64_t *w_off, int64_t w_shape[2],
                            int64_t *b_off, int64_t *b_len);

/* ---------------------------------------------------------------- likelihoods */

/* The likelihood p(y | f) of a network output f. The network's output width follows from it:
 *   categorical      K outputs for K classes: softmax cross-entropy (labels 0..K−1).
 *   gaussian         T outputs for T targets: N(y; f, σ²) with a fixed noise σ.
 *   bernoulli        1 output for 2 classes: p(y = 1) = sigmoid(f), labels 0 and 1.
 *   hetero-gaussian  2 outputs for 1 target: f = (μ, η) with η = log σ², N(y; μ, e^η) — the
 *                    mean-variance network of Nix & Weigend (ICNN 1994) with the log-variance
 *                    output of Kendall & Gal (NeurIPS 2017, eq. 8), which keeps σ² > 0 without a
 *                    constraint and never divides by zero.
 * Bernoulli's predictive is reported as two class probabilities (1 − p, p), so every
 * classification metric applies; a Bernoulli logit f is a 2-class softmax with logits (0, f). */
typedef enum {
    BNN_LIK_CATEGORICAL = 0,
    BNN_LIK_GAUSSIAN = 1,
    BNN_LIK_BERNOULLI = 2,
    BNN_LIK_HETERO_GAUSSIAN = 3
} bnn_lik_kind;

typedef struct bnn_lik {
    bnn_lik_kind kind;
    double sigma; /* gaussian: noise standard deviation (> 0); ignored by the others */
} bnn_lik;

/* "categorical", "gaussian", "bernoulli", "hetero-gaussian"; and back (BNN_EINVAL if unknown). */
const char *bnn_lik_name(bnn_lik_kind kind);
int bnn_lik_parse(const char *name, bnn_lik_kind *out);
/* The task a likelihood serves: classification (categorical, bernoulli) or regression. */
bnn_task bnn_lik_task(bnn_lik_kind kind);
/* Network outputs the likelihood needs for k classes (classification) or k targets
 * (regression): k, k, 1 (Bernoulli, k ≤ 2) and 2 (heteroscedastic, k = 1); 0 when the
 * likelihood cannot serve k (Bernoulli with more than 2 classes, heteroscedastic with more than
 * one target). */
int64_t bnn_lik_outputs(bnn_lik_kind kind, int64_t k);
/* The width of the predictive for a network of `outputs` outputs: classes (probabilities) or
 * targets (means and variances). Bernoulli: 2; heteroscedastic: outputs / 2; else outputs. */
int64_t bnn_lik_pred_dim(bnn_lik_kind kind, int64_t outputs);

/* Mean negative log-likelihood over b examples of outputs f (b × k, k the network's output
 * width), with labels (categorical, Bernoulli) or targets (b × k Gaussian, b × 1
 * heteroscedastic). When dout is not NULL it receives ∂(mean loss)/∂f (b × k). Accumulates in
 * double.
 *   categorical      log-sum-exp(f) − f_y.
 *   gaussian         Σ_j [(f_j − y_j)²/(2σ²) + log σ + ½ log 2π] over the T targets.
 *   bernoulli        softplus(f) − y f, as max(f, 0) + log1p(e^{−|f|}) − y f; ∂/∂f = sigmoid(f) − y.
 *   hetero-gaussian  ½ log 2π + ½ η + ½ (y − μ)² e^{−η}; ∂/∂μ = (μ − y) e^{−η},
 *                    ∂/∂η = ½ − ½ (y − μ)² e^{−η}.
 * A label outside the classes, an unknown lik->kind, a Gaussian σ that is not positive and
 * finite, or a NULL lik, f or labels (targets for regression), gives NaN with bnn_last_error()
 * naming it (dout is then partly written). b, k and
 * the output width the likelihood needs are preconditions (asserted). */
double bnn_lik_loss(const bnn_lik *lik, float *dout, const float *f, const int32_t *labels,
                    const float *targets, int64_t b, int64_t k);

/* The likelihood a model's outputs are read with. A model whose likelihood was never set follows
 * the task it is used for: categorical for classification, Gaussian for regression.
 * bnn_model_set_lik checks the output width against the kind: BNN_ESHAPE naming both when the
 * model has the wrong number of outputs (Bernoulli needs 1, heteroscedastic Gaussian 2),
 * BNN_EINVAL for an unknown kind. Model files store it (metadata bnn.lik) and bnn_model_load
 * restores it; training, curvature, Laplace and prediction all read it from the model. */
int bnn_model_set_lik(bnn_model *m, bnn_lik_kind kind);
bnn_lik_kind bnn_model_lik(const bnn_model *m, bnn_task task);
/* bnn_lik_pred_dim of the model's likelihood: the width of its predictive (probabilities n × C
 * or means and variances n × T in bnn_predict). */
int64_t bnn_model_pred_dim(const bnn_model *m, bnn_task task);

/* ---------------------------------------------------------------- optimizers */

/* Plain functions over flat vectors of n floats. g is the gradient of the data loss. */
struct bnn_sgd_params {
    float lr, momentum, weight_decay, dampening;
    bool nesterov;
};
struct bnn_sgd_params bnn_sgd_default_params(void);
/* PyTorch torch.optim.SGD semantics: d = g + wd·w; buf = d at t = 1, else momentum·buf +
 * (1−dampening)·d; w −= lr·(nesterov ? d + momentum·buf : buf). t counts from 1. Returns
 * BNN_EDIVERGED (the step applied) when an updated weight is NaN or infinite, else 0; BNN_EINVAL
 * (nothing written) for a setting torch.optim.SGD refuses (lr, momentum or weight decay < 0;
 * Nesterov without momentum or with dampening), or one not finite or above 1 (momentum,
 * dampening). */
int bnn_sgd_step(float *w, float *buf, const float *g, int64_t n, int64_t t,
                 const struct bnn_sgd_params *p);

/* Doubles, as torch.optim.AdamW's Python floats: PyTorch forms 1 − β2 and 1 − lr·wd in double and
 * rounds them to float once. From a float β2 = 0.999, 1 − β2 would be 0.00099998713, and the
 * second moment 1.3e-5 off PyTorch's. */
struct bnn_adamw_params {
    double lr, beta1, beta2, eps, weight_decay;
};
struct bnn_adamw_params bnn_adamw_default_params(void);
/* PyTorch torch.optim.AdamW semantics (Loshchilov & Hutter, ICLR 2019): w ·= 1 − lr·wd;
 * m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²; w −= lr/(1−β1^t) · m / (√v / √(1−β2^t) + eps).
 * The factors 1 − lr·wd, β1, 1 − β1, β2, 1 − β2, lr/(1−β1^t), √(1−β2^t) and eps are formed in
 * double and used as floats, as PyTorch does; the update itself is in float. Defaults: PyTorch's
 * (lr 1e-3, betas 0.9 and 0.999, eps 1e-8, weight decay 1e-2).
 * Returns BNN_EDIVERGED (the step applied) when an updated weight is NaN or infinite, else 0;
 * BNN_EINVAL (nothing written) for a setting torch.optim.AdamW refuses (lr, eps or weight decay
 * < 0, a beta outside [0, 1)) or one not finite. */
int bnn_adamw_step(float *w, float *m, float *v, const float *g, int64_t n, int64_t t,
                   const struct bnn_adamw_params *p);

/* ---------------------------------------------------------------- IVON */

/* IVON: Improved Variational Online Newton (Shen et al., "Variational Learning is Effective for
 * Large Deep Networks", ICML 2024, Algorithm 1; conventions of the official PyTorch code
 * github.com/team-approx-bayes/ivon v0.1.3). The posterior is N(m, σ²) per weight with
 * σ = 1/√(λ (h + δ)); m are the model's weights, h the Hessian estimate, g the momentum. */
struct bnn_ivon_params {
    float lr;           /* α, default 0.1 (0.1 .. 1 is typical) */
    double ess;         /* λ, effective sample size, usually the training-set size; default 0,
                         * which bnn_trainer takes as the data size: direct calls need ess > 0 */
    float hess_init;    /* h0, default 1.0 (the official IVON's); the posterior starts at std
                         * 1/√(λ(h0+δ)) and, with β2 = 0.99999, h moves slowly over a few
                         * thousand steps: small data sets keep nearly that std. The Fashion-MNIST
                         * recipe (README) uses 0.1 */
    double beta1;       /* default 0.9 */
    double beta2;       /* default 0.99999 (double: as a float, 1 − β2 would be 0.14% off) */
    float weight_decay; /* δ, default 1e-4 */
    int64_t mc_samples; /* weight samples per step, default 1 */
    float clip_radius;  /* elementwise clip of the preconditioned step, default INFINITY (none) */
    bool rescale_lr;    /* α ← lr·(h0 + δ), default true */
    bool debias;        /* momentum / (1 − β1^t), default true */
};
struct bnn_ivon_params bnn_ivon_default_params(void);
/* θ = m + ε / √(λ (h + δ)), n values (ε supplied by the caller: tests replay recorded noise). */
int bnn_ivon_sample(float *theta, const float *m, const float *h, const float *eps, int64_t n,
                    const struct bnn_ivon_params *p); /* BNN_EINVAL: NULL, n < 0, ess <= 0, or
                                                       * an h with h + δ <= 0 (no σ) */
/* One IVON step over n weights, t = 1 for the first step. gbar = mean over the MC samples of the
 * data-loss gradient ĝ_s at θ_s; geps = mean over the samples of ε_s ⊙ ĝ_s. Updates, with the h
 * of before the step on the right-hand sides:
 *   ĥ = √(λ(h+δ)) ⊙ geps;  g ← β1 g + (1−β1) gbar;
 *   h ← β2 h + (1−β2) ĥ + ½(1−β2)² (h − ĥ)² / (h + δ);
 *   m ← m − α · clip((g/(1−β1^t) + δ m) / (h + δ), −r, r)  (h the new value).
 * Returns 0, BNN_EINVAL for NULL arrays, t < 1, ess <= 0 or settings out of range (beta1, beta2
 * in [0, 1), weight_decay >= 0, clip_radius > 0, hess_init > 0 with rescale_lr; nothing is
 * written then), or BNN_EDIVERGED when m or h became non-finite (m, h, g are then undefined). */
int bnn_ivon_step(float *m, float *h, float *g, const float *gbar, const float *geps, int64_t n,
                  int64_t t, const struct bnn_ivon_params *p);

/* ---------------------------------------------------------------- VON / Bayesian linear regression */

/* The Bayesian learning rule (Khan & Rue, JMLR 2023) for a full-covariance Gaussian
 * q = N(m, S⁻¹) over d weights, in double precision. One step with rate ρ, given the gradient g
 * and Hessian H (d × d, symmetric) of the expected negative log-likelihood at m (exact for a
 * linear-Gaussian model, GGN otherwise), and a Gaussian prior N(m0, S0⁻¹):
 *   S ← (1 − ρ) S + ρ (H + S0);   m ← m − ρ S⁻¹ (g + S0 (m − m0)).
 * For a conjugate model one step with ρ = 1 from any q lands on the exact posterior. Cholesky by
 * LAPACK. Returns BNN_EINVAL when the new S is not positive definite, for d < 1, ρ outside
 * (0, 1] or non-finite input, BNN_ENOMEM on allocation failure; m and S are unchanged on any
 * failure. m0 must not be NULL. S, H and S0 enter through their symmetric parts, ½(A + Aᵀ): a
 * matrix that is not symmetric (a GGN with rounding asymmetry) is not refused, and S stays
 * exactly symmetric. */
int bnn_von_step(double *m, double *S, const double *g, const double *H, const double *m0,
                 const double *S0, int64_t d, double rho);

/* Exact Bayesian linear regression: prior N(0, α⁻¹ I) on d weights, noise variance σ², design X
 * (n × d), targets y (n). Outputs (each may be NULL): posterior mean (d), precision and
 * covariance (d × d), log det of the precision, and the log marginal likelihood
 * log N(y | 0, σ² I + X Xᵀ / α). */
struct bnn_blr_result {
    double logdet_precision;
    double log_marginal_likelihood;
};
/* BNN_EINVAL for d < 1, n < 0, α or σ² not positive and finite, NaN in X or y, or a precision
 * that is numerically not positive definite; BNN_ENOMEM. */
int bnn_blr_fit(double *mean, double *precision, double *covariance, struct bnn_blr_result *res,
                const double *X, const double *y, int64_t n, int64_t d, double alpha,
                double noise_var);
/* The gradient and Hessian of the negative log-likelihood ½‖y − Xm‖²/σ² at m, for bnn_von_step.
 * Preconditions (asserted): d >= 1, n >= 0. */
void bnn_blr_grad_hess(double *g, double *H, const double *X, const double *y, const double *m,
                       int64_t n, int64_t d, double noise_var);

/* ---------------------------------------------------------------- mean-field VI */

/* MFVI's smallest σ = softplus(ρ), 2⁻⁶³ ≈ 1.08e-19: below it σ is held there (bnn_mfvi_sigma),
 * where the KL no longer moves ρ, so an initial σ below it is refused. */
#define BNN_MFVI_MIN_STD 0x1p-63f

/* Mean-field variational inference, "Bayes by backprop" (Blundell et al., ICML 2015): per weight
 * q = N(μ, σ²) with σ = softplus(ρ), prior N(0, 1/prior_prec), trained by AdamW on the negative
 * ELBO per example: E_q[mean NLL of the batch] + KL(q ‖ p) / n_train, with the local
 * reparameterisation trick for Linear layers (Kingma, Salimans & Welling, NeurIPS 2015): each
 * pre-activation is sampled from its Gaussian N(x μ_Wᵀ + μ_b, x² σ_W²ᵀ + σ_b²). */
struct bnn_mfvi_params {
    double prior_prec;  /* precision of the N(0, 1/prior_prec) prior, default 1 */
    float init_std;     /* initial σ of every weight, default 1e-3; at least BNN_MFVI_MIN_STD */
    int64_t mc_samples; /* samples per step, default 1 */
    double kl_weight;   /* multiplies the KL term, default 1 (tempering / warm-up) */
};
struct bnn_mfvi_params bnn_mfvi_default_params(void);
/* softplus(x) = log(1 + eˣ), computed stably; bnn_softplus_inv(y) the ρ with softplus(ρ) = y
 * (−∞ at 0, NaN below). */
float bnn_softplus(float x);
float bnn_softplus_inv(float y);
/* A weight's σ as MFVI uses it in training and saves it: softplus(ρ), held at 2⁻⁶³ from below
 * (NaN stays NaN). Computed by bnn's own branchless exp and log (vectorised, the same bits on
 * every instruction set), within 6 · 2⁻²⁴ of the exact value; bnn_softplus is libm's. */
float bnn_mfvi_sigma(float rho);
/* KL(N(μ, σ²) ‖ N(0, 1/prior_prec)) summed over n weights, in double; NaN for NULL arrays,
 * n < 0 or a prior_prec that is not positive. */
double bnn_mfvi_kl(const float *mu, const float *rho, int64_t n, double prior_prec);
/* Negative ELBO per example on one batch and its gradients: the batch's mean NLL under one
 * local-reparameterisation sample (noise drawn from rng), plus kl_weight · KL / n_train.
 * ADDS the gradients with respect to μ and ρ into grad_mu and grad_rho (nparams each). The model
 * must be reserved for b rows; its parameter buffer is not read. Dropout layers are active
 * (their masks come from rng). It overwrites the model's activation buffers, so a following
 * bnn_model_backward needs a new bnn_model_forward first. On bad settings or a failed allocation
 * it returns NaN with bnn_last_error() set. mu, rho, grad_mu, grad_rho (and work below) must be
 * separate arrays: the pass over the weights takes them as restrict pointers. */
double bnn_mfvi_loss(bnn_model *m, const float *mu, const float *rho, const float *x,
                     const int32_t *labels, const float *targets, int64_t b,
                     const bnn_lik *lik, int64_t n_train, const struct bnn_mfvi_params *p,
                     bnn_rng *rng, float *grad_mu, float *grad_rho);
/* The same with caller-provided scratch `work` (bnn_mfvi_workspace_bytes(m, b) bytes, 64-byte
 * aligned), so a training loop allocates it once instead of at every step. */
size_t bnn_mfvi_workspace_bytes(bnn_model *m, int64_t b); /* 0 for b < 1, a NULL m or a size
                                                            * that overflows */
double bnn_mfvi_loss_ws(bnn_model *m, const float *mu, const float *rho, const float *x,
                        const int32_t *labels, const float *targets, int64_t b,
                        const bnn_lik *lik, int64_t n_train, const struct bnn_mfvi_params *p,
                        bnn_rng *rng, float *grad_mu, float *grad_rho, void *work);
/* Outputs of a local-reparameterisation forward pass without gradients (b × output_dim), owned
 * by the model, dropout off; NULL with bnn_last_error() set on failure. */
const float *bnn_mfvi_forward(bnn_model *m, const float *mu, const float *rho, const float *x,
                              int64_t b, bnn_rng *rng);

/* ---------------------------------------------------------------- metrics */

#define BNN_MAX_BINS 256

/* Classification metrics of predictive probabilities (n × k, double), following the field's
 * conventions (fixtures/metrics README): prediction = argmax with ties to the lowest index;
 * NLL = mean −log p_y; Brier = mean Σ_k (p_k − [k = y])²; reliability with nbins equal-width
 * bins over the top-class confidence where bin b holds e_b < c ≤ e_{b+1} (e_i = i/nbins, c = 0 in
 * bin 0); ECE = Σ_b (count_b/n)|acc_b − conf_b|, MCE = max over non-empty bins. */
struct bnn_cls_metrics {
    int64_t n, nbins;
    double accuracy, nll, brier, ece, mce;
    double mean_entropy; /* mean predictive entropy */
    int64_t bin_count[BNN_MAX_BINS];
    double bin_accuracy[BNN_MAX_BINS];   /* 0 for an empty bin */
    double bin_confidence[BNN_MAX_BINS]; /* 0 for an empty bin */
};
/* BNN_EINVAL for nbins outside 1..BNN_MAX_BINS, n < 1, k < 1, a label outside 0..k−1, a
 * probability outside [0, 1] (NaN included) or a row whose probabilities do not sum to 1 within
 * BNN_PROB_SUM_TOL; *out is untouched then. */
#define BNN_PROB_SUM_TOL 1e-3
int bnn_metrics_classification(struct bnn_cls_metrics *out, const double *probs,
                               const int32_t *labels, int64_t n, int64_t k, int64_t nbins);
/* The same from natural log-probabilities (n × k, each in [−inf, 0]; BNN_EINVAL otherwise, NaN
 * included): NLL = mean −logp_y exactly, also where p_y underflows to 0 in double (a true class
 * more than 745 nats behind, whose NLL probabilities can only give as +inf, where PyTorch's
 * cross-entropy gives the finite value); the other metrics use exp(logp). bnn_predict gives
 * log-probabilities with bnn_predict_params.log_probs. */
int bnn_metrics_classification_log(struct bnn_cls_metrics *out, const double *logp,
                                   const int32_t *labels, int64_t n, int64_t k, int64_t nbins);
int64_t bnn_argmax(const double *p, int64_t k); /* ties go to the lowest index; −1 for k < 1 */
double bnn_entropy(const double *p, int64_t k); /* −Σ p log p with 0·log 0 = 0; NaN if bad */
/* Bin of a confidence (e_b < c ≤ e_{b+1}; c ≤ 0 → 0, c > 1 → nbins − 1); −1 for NaN or nbins < 1. */
int64_t bnn_reliability_bin(double confidence, int64_t nbins);
/* From S sampled predictive distributions (S × n × k): the mean (n × k, may be NULL) and per
 * example the mutual information H[mean] − mean_s H[p_s] (n, may be NULL). Writes nothing when
 * samples is NULL or s, n or k is below 1. */
void bnn_mutual_info(double *mi, double *mean, const double *samples, int64_t s, int64_t n,
                     int64_t k);
/* AUROC of scores where higher means "positive": P(s_pos > s_neg) + ½ P(s_pos = s_neg).
 * bnn_auroc returns NaN (with bnn_last_error() set) for an empty set or a NaN score; bnn_aupr for
 * no positives or a NaN score (with no negatives every threshold has precision 1, so it returns
 * 1, as scikit-learn does). */
double bnn_auroc(const double *pos, int64_t npos, const double *neg, int64_t nneg);
/* Average precision with `pos` the positive class, step sum over distinct score thresholds
 * (scikit-learn's average_precision_score). */
double bnn_aupr(const double *pos, int64_t npos, const double *neg, int64_t nneg);

/* Regression metrics of a Gaussian predictive N(mean, var) per example and target: RMSE,
 * Gaussian NLL (with ½ log 2π), coverage of the closed central intervals mean ± 1σ and ± 2σ. */
struct bnn_reg_metrics {
    int64_t n;
    double rmse, nll, coverage_1sd, coverage_2sd;
};
/* BNN_EINVAL for n < 1, a non-finite mean or target, or a variance that is not positive. */
int bnn_metrics_regression(struct bnn_reg_metrics *out, const double *mean, const double *var,
                           const double *y, int64_t n);
/* An equally weighted mixture of S Gaussians per example (means, vars: S × n): its mean and
 * variance (n each, may be NULL) and per-example NLL −log((1/S) Σ_s N(y; μ_s, v_s)) by
 * log-sum-exp (n, may be NULL; needs y). Writes nothing when means or vars is NULL or s or n is
 * below 1. */
void bnn_gaussian_mixture(double *mean, double *var, double *nll, const double *means,
                          const double *vars, const double *y, int64_t s, int64_t n);

/* ---------------------------------------------------------------- posteriors */

/* A distribution q(θ) over the flat parameter vector (DESIGN.md "What is q(θ)"). Every fitter
 * that produces the same family shares this one type: IVON and mean-field VI (and later
 * Laplace-diag and SWAG-diag) all give a diagonal Gaussian. */
typedef enum {
    BNN_POSTERIOR_POINT = 0,
    BNN_POSTERIOR_DIAG = 1,
    BNN_POSTERIOR_LAPLACE = 2 /* a Laplace approximation over a subset (diag, kron or full) */
} bnn_posterior_kind;
typedef struct bnn_posterior bnn_posterior;

/* A posterior over n parameters with zero mean (and zero std). */
int bnn_posterior_new(bnn_posterior **out, bnn_posterior_kind kind, int64_t n);
void bnn_posterior_free(bnn_posterior *q);
bnn_posterior_kind bnn_posterior_kind_of(const bnn_posterior *q);
int64_t bnn_posterior_n(const bnn_posterior *q);
float *bnn_posterior_mean(bnn_posterior *q);       /* n */
float *bnn_posterior_std(bnn_posterior *q);        /* n, NULL for a point mass */
const float *bnn_posterior_cmean(const bnn_posterior *q);
const float *bnn_posterior_cstd(const bnn_posterior *q);
/* θ (n) ~ q: θ = mean + std ⊙ ε with ε ~ N(0, I) from rng (a point mass gives the mean; a
 * Laplace posterior samples its subset and keeps the other weights at the MAP). 0, or an error
 * from the Laplace sampler (BNN_ENOMEM for its scratch; BNN_EINVAL for a non-positive prior). */
int bnn_posterior_sample(const bnn_posterior *q, bnn_rng *rng, float *theta);
/* Summary statistics of the std (min, mean, max) for reports; zeros for a point mass or a NULL q,
 * NaN all three when a std is NaN. Any output may be NULL. */
void bnn_posterior_std_summary(const bnn_posterior *q, double *min, double *mean, double *max);

/* ---------------------------------------------------------------- prediction */

/* How a classifier's linearised logits f ~ N(f_mu, f_var) (the GLM predictive of a Laplace or VON
 * posterior) become probabilities, as laplace-torch's link_approx: the probit approximation
 * (bnn_probit), Monte Carlo over the logits (bnn_predict_params.link_samples draws), or the
 * Laplace bridge to a Dirichlet, plain (bnn_laplace_bridge) or with the variance normalisation
 * (bnn_laplace_bridge_norm). */
typedef enum {
    BNN_LINK_PROBIT = 0,
    BNN_LINK_MC = 1,
    BNN_LINK_BRIDGE = 2,
    BNN_LINK_BRIDGE_NORM = 3
} bnn_link;
/* "probit", "mc", "bridge", "bridge-norm" ("?" outside the enum), and back (BNN_EINVAL if
 * unknown). */
const char *bnn_link_name(bnn_link l);
int bnn_link_parse(const char *name, bnn_link *out);

struct bnn_predict_params {
    int64_t samples;    /* 0: predict at the posterior mean; S > 0: average over S weight samples */
    uint64_t seed;      /* for the weight samples, default 0 */
    int64_t batch_size; /* examples per forward pass, default 256. The results do not depend on
                         * the thread count, but may on this in their last bits (the matrix
                         * products' kernels differ with the number of rows) */
    double sigma;       /* gaussian likelihood: observation noise std, default 1 */
    double temperature; /* classification: logits are divided by it (temperature scaling),
                         * default 1; 1e-150 to 1e150 (its square divides variances). The
                         * normalised Laplace bridge (BNN_LINK_BRIDGE_NORM) does not change with
                         * it: its normalisation undoes exactly that scaling */
    int64_t link_samples; /* Laplace GLM predictive for classification: 0 (default) the link
                           * below; S > 0 averages softmax over S draws of the logits from
                           * N(f_mu, f_var) (Monte-Carlo over the linearised logits, covariances
                           * included), with `link` BNN_LINK_MC or left at BNN_LINK_PROBIT */
    bnn_link link;        /* the same predictive's link, default BNN_LINK_PROBIT (each logit
                           * scaled by 1/√(1 + π/8 · its own variance), the logits' covariances
                           * ignored, as laplace-torch does; it can be less sure than Monte Carlo
                           * over the logits). BNN_LINK_MC needs link_samples > 0 and the
                           * bridges take none (BNN_EINVAL otherwise, checked for any posterior);
                           * the bridges need a categorical likelihood (BNN_EINVAL) and give
                           * BNN_EDIVERGED for an example without a Dirichlet (linearised logits
                           * that are not finite, or a logit variance after the zero-sum
                           * correction that is not positive). Used only by a Laplace posterior's
                           * GLM predictive (samples = 0). */
    bool log_probs;       /* classification: probs receives the natural logarithms of the
                           * predictive probabilities, exact where a probability underflows to 0
                           * (for bnn_metrics_classification_log); default false */
    bool local_reparam;   /* samples > 0 from a diagonal Gaussian posterior: each sample draws
                           * the first (Linear) layer's outputs from their exact Gaussian,
                           * N(x Mᵀ + μ_b, (x∘x)(S∘S)ᵀ + s_b²), per example instead of from a
                           * weight sample (local reparameterisation); each example's predictive
                           * is the same, the first layer's two GEMMs (mean and variance) run
                           * once instead of one per sample, later layers use the same weight
                           * samples. Ignored where nothing is sampled; BNN_EINVAL for a Laplace
                           * posterior's samples or a first layer that is not Linear; default
                           * false */
};
struct bnn_predict_params bnn_predict_default_params(void);

/* The predictive distribution of model m with weights from q (NULL: the model's own weights) for
 * n inputs x (n × input_dim), read through the model's likelihood (bnn_model_lik(m, task)); C is
 * bnn_model_pred_dim(m, task). Classification: probs (n × C) is the Monte-Carlo model average
 * (1/S) Σ_s p(y | x, θ_s) (softmax, or for Bernoulli (1 − sigmoid(f), sigmoid(f))), computed in
 * log space (log-sum-exp over the samples); mi (n, may be NULL) the mutual information
 * H[p̄] − (1/S) Σ_s H[p_s] (0 at the mean). Regression: mean and var (n × C) are the moments of the
 * mixture of the samples' Gaussians N(μ_s, v_s) — v_s = σ² (Gaussian) or e^{η_s}
 * (heteroscedastic) —: var = the mean of the v_s + the variance of the μ_s. Pass NULL for the
 * outputs of the other task. Uses the model's buffers. BNN_EINVAL when the likelihood is not for
 * `task`, for n < 1, or a regression noise σ that is not positive and finite. */
/* A Laplace posterior with samples = 0 uses the linearised (GLM) predictive instead
 * (bnn_laplace_predict; mi is that of the logits' draws with the Monte-Carlo link, of the
 * Dirichlet with a Laplace bridge, and 0 with the probit). */
int bnn_predict(bnn_model *m, const bnn_posterior *q, const float *x, int64_t n, bnn_task task,
                const struct bnn_predict_params *p, double *probs, double *mi, double *mean,
                double *var);

/* ---------------------------------------------------------------- training */

typedef enum {
    BNN_METHOD_SGD = 0,
    BNN_METHOD_ADAMW = 1,
    BNN_METHOD_IVON = 2,
    BNN_METHOD_MFVI = 3
} bnn_method;
typedef enum { BNN_LR_CONSTANT = 0, BNN_LR_COSINE = 1 } bnn_lr_schedule;

/* Name of a method ("sgd", "adamw", "ivon", "mfvi"), and back (BNN_EINVAL if unknown). */
const char *bnn_method_name(bnn_method m);
int bnn_method_parse(const char *name, bnn_method *out);

/* The learning rate of step t (0-based) of `total` steps (NaN for an unknown schedule): linear
 * warm-up from lr/warmup to lr over the first `warmup` steps, then constant, or cosine decay to 0
 * at step `total`
 * (Loshchilov & Hutter, "SGDR", ICLR 2017, without restarts): lr · ½(1 + cos(π·(t−w)/(total−w))),
 * and 0 from t = total on. */
float bnn_lr_at(bnn_lr_schedule sched, float lr, int64_t t, int64_t total, int64_t warmup);

struct bnn_train_params {
    bnn_method method;
    int64_t epochs;      /* default 10 */
    int64_t batch_size;  /* default 128 */
    float lr;            /* default 1e-3 (adamw, mfvi); use ~0.05 for sgd, ~0.1–1 for ivon */
    float weight_decay;  /* default 1e-4; for IVON this is δ (prior precision per example);
                          * unused by MFVI, whose prior is mfvi.prior_prec */
    float momentum;      /* sgd momentum, default 0.9 */
    uint64_t seed;       /* default 0: initialisation, shuffling, dropout, weight noise */
    bool init;           /* initialise the weights from seed (default true) */
    double sigma;        /* Gaussian likelihood noise for regression, default 1; positive and
                          * finite for every task (a saved file records it) */
    bnn_lr_schedule lr_schedule; /* default constant */
    int64_t warmup_epochs;       /* linear warm-up epochs before the schedule, default 0 */
    struct bnn_ivon_params ivon; /* IVON's own settings (lr and δ come from above; ess 0 = n) */
    struct bnn_mfvi_params mfvi; /* mean-field VI settings */
    /* Called after every step and at the end of each epoch; may be NULL. Returning non-zero
     * stops training with BNN_EINVAL; a later bnn_trainer_run continues at the next step, with
     * the same result as a run never stopped. */
    int (*progress)(void *ctx, int64_t epoch, int64_t step, int64_t steps_per_epoch,
                    double mean_loss, bool epoch_done);
    void *progress_ctx;
};
struct bnn_train_params bnn_train_default_params(void);

/* A training run: the model, the optimizer's state vectors, the step counter and the generator
 * position. It can be saved at an epoch boundary and resumed; a resumed run continues exactly
 * (bit for bit) as an uninterrupted one. The model and dataset are borrowed. The data is checked
 * first: BNN_EFORMAT naming the row for a NaN or Inf feature or target or a label outside the
 * classes (bnn_dataset_validate), BNN_EINVAL for unlabelled data or a single class. Each
 * bnn_trainer_run checks it again when a writable view was taken since (see above), and refuses
 * a dataset whose size changed since bnn_trainer_new (BNN_ESHAPE): the run's shuffles are of
 * that many rows. */
typedef struct bnn_trainer bnn_trainer;
int bnn_trainer_new(bnn_trainer **out, bnn_model *m, const bnn_dataset *ds,
                    const struct bnn_train_params *p);
void bnn_trainer_free(bnn_trainer *tr);
/* Runs epochs until `until_epoch` (capped at p.epochs) has been completed. Returns
 * BNN_EDIVERGED naming the epoch and step when the loss or the weights become NaN or Inf, and at
 * the run's last epoch when its mean loss per example, or the mean loss at the final weights on
 * (up to 8192 of) the training examples, exceeds the first step's loss L by more than
 * 10^4·max(|L|, 1) (weights grown huge but finite); the weights are then unusable (do not save
 * them). The progress callback's mean_loss is per example (batches weighted by their size). */
int bnn_trainer_run(bnn_trainer *tr, int64_t until_epoch);
/* The judgement of the weights alone, for a run stopped before its last epoch whose weights are
 * about to be saved: BNN_EDIVERGED when the mean loss at the current weights on (up to 8192 of)
 * the training examples exceeds that bound (an epoch that spiked and recovered does not count);
 * 0 when no epoch has finished in this process. */
int bnn_trainer_check(bnn_trainer *tr);
int64_t bnn_trainer_epoch(const bnn_trainer *tr); /* completed epochs */
/* Replaces the progress callback (e.g. after bnn_trainer_resume, which starts without one). It is
 * called after every step (step 1..steps of the epoch, epoch_done false) and once more at the end
 * of each epoch (epoch_done true); `epoch` counts from 0, so during and at the end of the first
 * epoch it is 0 while bnn_trainer_epoch, the completed epochs, reads 1 from that end call on.
 * A non-zero return stops the run: bnn_trainer_run returns BNN_EINVAL, "training stopped by the
 * caller". bnn_trainer_save with state=true may be called from the end-of-epoch call (the epoch
 * is counted before it), not from a step's. */
void bnn_trainer_set_progress(bnn_trainer *tr,
                              int (*fn)(void *ctx, int64_t epoch, int64_t step, int64_t steps,
                                        double mean_loss, bool epoch_done),
                              void *ctx);
const struct bnn_train_params *bnn_trainer_params(const bnn_trainer *tr);
/* The posterior the run has produced: a point mass at the weights (sgd, adamw) or the diagonal
 * Gaussian (ivon: N(m, 1/(λ(h+δ))); mfvi: N(μ, softplus(ρ)²)). Caller frees. */
int bnn_trainer_posterior(const bnn_trainer *tr, bnn_posterior **out);
/* Saves the model and its posterior (a file for `bnn eval`); with state=true also the
 * optimizer's state, step counter and generator position, so the file can be resumed: only at an
 * epoch boundary, i.e. between bnn_trainer_run calls or from the end-of-epoch progress call
 * (BNN_EINVAL for a run stopped inside an epoch, or from a step's progress call).
 * The training settings go into __metadata__ with the caller's extra pairs. */
int bnn_trainer_save(const bnn_trainer *tr, const char *path, bool state, const char *const *keys,
                     const char *const *values, int64_t nkv);
/* Resumes a run saved with state=true: *m receives the model (caller frees it after the
 * trainer). The settings are those saved; `epochs` > 0 overrides the total (0 keeps it; negative,
 * fewer than the epochs done or than the warm-up's, or another total under a cosine schedule:
 * BNN_EINVAL). The dataset must be
 * the one the run was trained on: its steps per epoch are checked, and a fingerprint of its
 * values and targets (bnn.state.data_hash, in files from bnn since it was kept): BNN_EINVAL for
 * other data, also of the same size. The fingerprint is of the rows trained on: rows a caller
 * held out (bnn train --holdout) are not in it. Under a cosine schedule `epochs` may not change
 * the total. */
int bnn_trainer_resume(bnn_trainer **out, bnn_model **m, const char *path, const bnn_dataset *ds,
                       int64_t epochs);

/* Convenience: a trainer run to the end. */
int bnn_train(bnn_model *m, const bnn_dataset *ds, const struct bnn_train_params *p);

/* ---------------------------------------------------------------- evaluation */

struct bnn_eval_result {
    bnn_task task;
    int64_t n;
    double accuracy;    /* classification */
    double nll;         /* mean negative log-likelihood (regression: of the Gaussian with the
                         * predictive's mean and variance, summed over the targets) */
    double rmse;        /* regression */
    struct bnn_cls_metrics cls; /* classification: all metrics incl. ECE, Brier, reliability */
    struct bnn_reg_metrics reg; /* regression: RMSE, NLL, coverage */
    double mean_mi;     /* mean mutual information over the examples (sampled posteriors) */
    /* Regression averaged over S > 1 weight samples: the mean NLL under the predictive mixture
     * itself, −log((1/S) Σ_s Π_j N(y_j; μ_sj, v_sj)) per example (over its targets jointly), as
     * MC-dropout's UCI benchmarks score it. nll is that of the Gaussian with the mixture's
     * moments (deep ensembles' convention), which the two coverages use too. NAN otherwise. */
    double nll_mixture;
};
/* Evaluates the predictive of (m, q) on ds (q NULL: the model's weights). p->sigma is the
 * regression noise; nbins the reliability bins (15 is the field's default). The data is checked
 * as for training (BNN_EFORMAT for NaN or labels out of range, BNN_EINVAL when unlabelled). */
int bnn_evaluate(bnn_model *m, const bnn_posterior *q, const bnn_dataset *ds,
                 const struct bnn_predict_params *p, int64_t nbins, struct bnn_eval_result *out);

/* ---------------------------------------------------------------- calibration */

/* Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017): the
 * T > 0 that minimises the mean NLL of softmax(logits / T) over n examples (logits n × k, labels
 * in 0..k−1), found by a safeguarded 1-D Newton iteration on log T in double, searched in
 * [1e-3, 1e3]: when the optimum lies outside (e.g. separable data → T → 0) it returns 0 with T at
 * that bound. BNN_EINVAL (T unchanged) for NULL pointers, n < 1, k < 2, a label out of range or a
 * non-finite logit. */
int bnn_temperature_fit(double *T, const float *logits, const int32_t *labels, int64_t n,
                        int64_t k);

/* ---------------------------------------------------------------- plots (SVG) */

/* Small, dependency-free SVG figures, written atomically; they render in any browser. */
/* A reliability diagram: per-bin accuracy against confidence, the diagonal, bin counts. */
int bnn_svg_reliability(const char *path, const struct bnn_cls_metrics *m, const char *title);
/* Line plot of nseries curves over shared x (n points), with a legend and axis labels. */
int bnn_svg_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const double *x, int64_t n, const double *const *ys, const char *const *names,
                  int64_t nseries);
/* A 2-D field (ny × nx values on [x0,x1] × [y0,y1], row 0 at y0) as a colour map in [vmin, vmax]
 * with a colour bar labelled zlabel, and npts points (x, y pairs) coloured by label on top. */
int bnn_svg_field(const char *path, const char *title, const double *field, int64_t nx, int64_t ny,
                  double x0, double x1, double y0, double y1, double vmin, double vmax,
                  const char *zlabel, const float *pts, const int32_t *labels, int64_t npts);
/* 1-D regression: predictive mean with ±1σ and ±2σ bands over x (n sorted points), the training
 * data (ndata points) as dots. */
int bnn_svg_bands(const char *path, const char *title, const double *x, const double *mean,
                  const double *sd, int64_t n, const float *data_x, const float *data_y,
                  int64_t ndata);

/* ---------------------------------------------------------------- curvature and Laplace */

/* Laplace approximations ("Laplace Redux", Daxberger et al., NeurIPS 2021), with the conventions
 * of laplace-torch that fixtures/laplace/README.md spells out: the curvature H is of the loss
 * SUMMED over the N training points at σ = 1 (temperature 1), the posterior precision is
 * hf·H + δ I with hf = 1/σ², Kronecker blocks are B ⊗ A with B summed and A averaged over the
 * data, and the bias block is B alone. One exception, where laplace-torch's convention is not the
 * empirical Fisher it names: the empirical Fisher of a Gaussian likelihood with noise σ is
 * Σ_n g_n g_nᵀ with g_n = J_nᵀ(f_n − y_n)/σ², i.e. H/σ⁴ for H at σ = 1, so its posterior
 * precision is hf²·H + δ I (and marglik tunes σ with that dependence). The curvature records
 * which it is (a posterior file in bnn.laplace.curvature); one built from arrays is scaled as
 * a GGN. */
typedef enum { BNN_CURV_GGN = 0, BNN_CURV_GGN_MC = 1, BNN_CURV_EF = 2 } bnn_curvature;
typedef enum {
    BNN_HESS_DIAG = 0,
    BNN_HESS_KRON = 1,
    BNN_HESS_FULL = 2,
    BNN_HESS_LOWRANK = 3 /* H ≈ U diag(λ) Uᵀ, the top-`rank` eigenpairs of the GGN */
} bnn_hessian;
/* Names as `bnn laplace` and posterior files spell them ("ggn", "ggn-mc", "ef"; "diag", "kron",
 * "full", "lowrank"; "?" for a value outside the enum), and back (BNN_EINVAL if unknown). */
const char *bnn_curvature_name(bnn_curvature c);
int bnn_curvature_parse(const char *name, bnn_curvature *out);
const char *bnn_hessian_name(bnn_hessian h);
int bnn_hessian_parse(const char *name, bnn_hessian *out);
/* The weights the curvature covers: every Linear layer, the last one, or a chosen set of Linear
 * layers (bnn_curv_params.layers). Other layers have no parameters. */
typedef enum { BNN_SUBSET_ALL = 0, BNN_SUBSET_LAST_LAYER = 1, BNN_SUBSET_LAYERS = 2 } bnn_subset;

struct bnn_curv_params {
    bnn_curvature curvature; /* default GGN (exact: one backward pass per output) */
    bnn_hessian hessian;     /* default KRON */
    bnn_subset subset;       /* default LAST_LAYER */
    int64_t batch_size;      /* examples per pass; default 0: automatic, 1024 when the subset is
                              * the network's last layer (forward passes only) or the Hessian
                              * diagonal, else 256 */
    uint64_t seed;           /* ggn-mc: the sampled labels */
    double sigma;            /* regression noise σ, default 1: validated, changes nothing (the
                              * curvature is at σ = 1; the posterior applies 1/σ²) */
    double max_bytes;        /* refuse (BNN_ENOMEM, naming the size) above this; default 0: the
                              * environment's BNN_MEMORY_LIMIT, else the machine's memory. A
                              * full Hessian counts what a Laplace posterior adds when it
                              * decomposes the matrix: 32 P² bytes in all; kron likewise its
                              * factors' eigenvectors and LAPACK's workspace for the largest;
                              * every structure but lowrank the posterior's 28 bytes per
                              * parameter */
    int64_t rank;            /* lowrank: eigenpairs kept, default 20 (above P: P are kept) */
    /* How the products are summed (bnn_curv_unit says which were): BNN_SUMS_AUTO (0, default):
     * full (and dense lowrank) in double, kron's factors and diag in float; BNN_SUMS_FLOAT:
     * full over the network's last Linear layer in float too, about twice as fast; BNN_SUMS_DOUBLE:
     * kron's factors in double too (twice the time of their products). Float moves every
     * eigenvalue by about 2^-24 of the largest (bnn_laplace_rounding): harmless where that is
     * small beside the posterior precision's smallest eigenvalue, wrong where the curvature spans
     * many decades (a heteroscedastic model predicting little noise, a small regression noise).
     * diag's entries are sums of non-negative terms, rounded relatively: always float. */
    int sums;
    int lowrank_method;      /* lowrank: 0 (default) the dense eigendecomposition when P × P fits
                              * the limit and 8 GiB, else randomized subspace iteration without P × P
                              * (Halko et al. 2011); 1 forces dense, 2 the matrix-free iteration */
    /* BNN_SUBSET_LAYERS: the Linear layers to include, numbered 0, 1, ... over the model's
     * Linear layers only (the order `bnn info` prints them), strictly ascending, each below the
     * model's count of Linear layers; any other list is BNN_EINVAL naming the bad index. The
     * array is read during bnn_curv_compute only (the caller owns it). Default NULL, 0. */
    const int64_t *layers;
    int64_t nlayers_sel;
    /* lowrank, matrix-free: called after every Rayleigh–Ritz step of the subspace iteration with
     * the number of passes over the data so far (2 at the first call, then up by 1 to 3: the
     * Chebyshev filter's degree is 3, less just below the cap), the largest residual ‖H u − θ u‖
     * of the wanted Ritz pairs relative to the largest |θ|, and the value at which it stops
     * (1e-10); it stops there or after 200 passes, then with the residual reached (the result
     * is returned either way; compare the last residual with the target). Returning non-zero
     * stops the computation with BNN_EINVAL. It runs between two passes and must not use the
     * model. NULL (the default): not called; the dense way never calls it. */
    int (*progress)(void *ctx, int64_t passes, double residual, double target);
    void *progress_ctx;
};
enum { BNN_SUMS_AUTO = 0, BNN_SUMS_FLOAT = 1, BNN_SUMS_DOUBLE = 2 };
struct bnn_curv_params bnn_curv_default_params(void);

/* The curvature of a model at its weights over a dataset, for the chosen subset and structure,
 * in double, for the model's likelihood (bnn_model_lik): the output Hessian of the GGN is the
 * softmax's, I (Gaussian at σ = 1), p(1 − p) (Bernoulli) or the Fisher diag(e^{−η}, ½)
 * (heteroscedastic Gaussian, whose Hessian is indefinite). Also records N, K and the summed loss
 * (laplace-torch's `loss`: Σ CE, ½ Σ (f−y)² for the Gaussian, the summed NLL for Bernoulli and
 * the heteroscedastic Gaussian). The data are checked as for training: BNN_ESHAPE when its
 * features, classes or targets do not fit (a classifier may predict more classes than the data
 * holds, as a test set may lack one, not fewer), BNN_EINVAL for unlabelled or empty data, BNN_EFORMAT
 * naming the row for a NaN or Inf feature or a label outside the classes. */
typedef struct bnn_curv bnn_curv;
int bnn_curv_compute(bnn_curv **out, bnn_model *m, const bnn_dataset *ds,
                     const struct bnn_curv_params *p);
void bnn_curv_free(bnn_curv *c);
bnn_hessian bnn_curv_structure(const bnn_curv *c);
int64_t bnn_curv_nparams(const bnn_curv *c);  /* P: parameters in the subset */
/* The first parameter of the subset in the flat vector: the offset of its first segment (the
 * subset is exactly [offset, offset + P) only when bnn_curv_nsegments is 1). */
int64_t bnn_curv_offset(const bnn_curv *c);
/* Where the subset lies in the model's flat parameter vector: nsegments ≥ 1 maximal runs of
 * consecutive parameters, in ascending order and not touching each other; the subset's P values
 * are their concatenation in that order (`all` and `last-layer` are one segment; Linear layers
 * {0, 2} of a three-layer MLP are two). bnn_curv_segment gives segment i (offset in the flat
 * vector and length); BNN_EINVAL for a bad i. */
int64_t bnn_curv_nsegments(const bnn_curv *c);
int bnn_curv_segment(const bnn_curv *c, int64_t i, int64_t *offset, int64_t *len);
/* The subset's values of a full flat vector (sub: P values, from full at the segments), and the
 * reverse (full's other entries are left as they are). */
void bnn_curv_gather(const bnn_curv *c, const float *full, float *sub);
void bnn_curv_scatter(const bnn_curv *c, const float *sub, float *full);
/* Places the subset at nseg segments (offsets ascending, lengths ≥ 1, no overlap, lengths
 * summing to P; segments that touch are merged), e.g. for a curvature built from arrays, whose
 * subset is otherwise the single segment [offset, offset + P). BNN_EINVAL otherwise, the
 * curvature unchanged. */
int bnn_curv_set_segments(bnn_curv *c, int64_t nseg, const int64_t *offsets, const int64_t *lens);
int64_t bnn_curv_ndata(const bnn_curv *c);    /* N */
int64_t bnn_curv_noutputs(const bnn_curv *c); /* K */
double bnn_curv_loss(const bnn_curv *c);      /* the summed loss at the weights */
/* The unit roundoff of the sums that formed it: 2^-24 for float sums (kron; full over the last
 * layer with BNN_SUMS_FLOAT), 2^-53 for double ones (full otherwise, kron with BNN_SUMS_DOUBLE;
 * lowrank as full, or matrix-free),
 * 0 for diag (each entry a sum of non-negative terms, rounded relatively) and for a curvature
 * built from arrays or read from a file. Times its largest eigenvalue, this is about how far
 * rounding moves each eigenvalue (bnn_laplace_rounding). */
double bnn_curv_unit(const bnn_curv *c);
const double *bnn_curv_diag(const bnn_curv *c);  /* diag: P values, else NULL */
const double *bnn_curv_dense(const bnn_curv *c); /* full: P × P, else NULL */
/* lowrank: U (row-major P × r, U[i·r + j]: column j is the eigenvector of eigenvalue j, in
 * descending order) and λ (r); else BNN_EINVAL. */
int bnn_curv_lowrank(const bnn_curv *c, const double **U, const double **eig, int64_t *r);
int bnn_curv_lowrank_from_arrays(bnn_curv **out, int64_t P, int64_t offset, int64_t ndata,
                                 int64_t noutputs, double loss, int64_t r, const double *U,
                                 const double *eig);
/* kron: blocks in parameter order (per Linear layer of the subset: weight, then bias). A weight
 * block has two factors, f0 = B (out × out) and f1 = A (in × in); a bias block one, f0 = B. */
int64_t bnn_curv_nblocks(const bnn_curv *c);
int bnn_curv_block(const bnn_curv *c, int64_t i, int *nfactors, const double **f0, int64_t *n0,
                   const double **f1, int64_t *n1);
/* Builds a curvature from given arrays (tests and files): diag (P), dense (P × P) or kron blocks
 * laid out as bnn_curv_block returns them (f1 NULL for bias blocks). Data are copied. A
 * curvature is positive semi-definite; what costs O(n²) is checked here: BNN_EINVAL for a
 * negative entry of diag or on the diagonal of the matrix or a factor, or a matrix that is not
 * symmetric. Eigenvalues are checked where they are computed, by bnn_laplace_new: BNN_EINVAL for
 * a full matrix's or a Kronecker factor's eigenvalue below −1e-4 of its largest (above that,
 * negative ones are float rounding and clipped to 0). */
int bnn_curv_from_arrays(bnn_curv **out, bnn_hessian structure, int64_t P, int64_t offset,
                         int64_t ndata, int64_t noutputs, double loss, const double *diag,
                         const double *dense, int64_t nblocks, const int64_t *n0,
                         const int64_t *n1, const double *const *f0, const double *const *f1);

/* The Laplace posterior N(θ_MAP, (hf·H + δ I)⁻¹) over the subset. Kron blocks are held as
 * eigendecompositions of their factors (LAPACK's dsyevd, dsyevr from order 32,767 on; negative
 * eigenvalues of rounding's size clipped to 0, larger ones refused: bnn_curv_from_arrays) so
 * that log-determinants, solves and samples are exact for the decomposition. */
typedef struct bnn_laplace bnn_laplace;
/* Takes ownership of c (also on failure). mean: the subset's MAP values (P, in subset order:
 * bnn_curv_gather of the model's weights), copied. BNN_EINVAL for a task other than that of the
 * likelihood the curvature was computed for (where it records one: bnn_curv_compute's, a
 * file's). */
int bnn_laplace_new(bnn_laplace **out, bnn_curv *c, const float *mean, bnn_task task);
/* The same with the mean read from the model's whole flat parameter vector (its MAP weights,
 * bnn_model_cparams) at the subset's segments: what a fit at the model's weights wants. */
int bnn_laplace_new_from_params(bnn_laplace **out, bnn_curv *c, const float *params,
                                bnn_task task);
void bnn_laplace_free(bnn_laplace *la);
const bnn_curv *bnn_laplace_curv(const bnn_laplace *la);
/* Sets δ and σ as given (classification and the heteroscedastic Gaussian keep σ = 1); a
 * non-positive value makes the functions that use them and return int fail with BNN_EINVAL, and
 * lml / logdet return NaN (bnn_laplace_optimize and bnn_laplace_optimize_layers start from their
 * own values and replace them). */
void bnn_laplace_set_prior(bnn_laplace *la, double prior_prec, double sigma);
double bnn_laplace_prior_prec(const bnn_laplace *la);
double bnn_laplace_sigma(const bnn_laplace *la);
/* log marginal likelihood at (δ, σ): log_lik − ½[log det P_post − P log δ + δ‖θ‖²] (README §4),
 * and its derivatives with respect to log δ and log σ (either may be NULL). */
double bnn_laplace_lml(const bnn_laplace *la, double prior_prec, double sigma, double *dlog_prior,
                       double *dlog_sigma);
/* About how far the curvature's sums moved the eigenvalues of the likelihood's precision
 * (H/σ² at the current σ, H/σ⁴ for the empirical Fisher of a Gaussian likelihood; H otherwise):
 * bnn_curv_unit times the largest. The log-determinant compares the small eigenvalues with the
 * prior precision δ, so where this is not well below δ (say above 1e-2 δ) the log marginal
 * likelihood, the prior it tunes and the posterior's small variances carry that rounding: sum in
 * double (bnn_curv_params.sums BNN_SUMS_DOUBLE). 0 when unknown (a curvature from arrays or a
 * file, diag); NaN for NULL. */
double bnn_laplace_rounding(const bnn_laplace *la);
/* That rounding against the smallest eigenvalue of the posterior precision it moves (hf·λ + δ
 * at the current prior; for lowrank over the kept eigenpairs only, the others being exact
 * zeros; for full with per-layer precisions, hf·λ_min + min δ_l, Weyl's lower bound): above
 * about 1e-2, sum in double. INFINITY when that eigenvalue is not positive. */
double bnn_laplace_rounding_ratio(const bnn_laplace *la);
/* log det of the posterior precision at the current prior and σ. */
double bnn_laplace_logdet(const bnn_laplace *la);
/* The prior precision (classification and heteroscedastic; Gaussian regression also σ) by
 * maximising lml with Adam on the logs (lr 0.1, betas 0.9/0.999, eps 1e-8), `steps` steps from
 * δ = 1 (Gaussian regression from δ = σ = e), as laplace-torch's defaults (README §5–6). Sets the
 * result. steps: 0 to BNN_LAPLACE_MAX_STEPS (else BNN_EINVAL: a typo cannot start a run of
 * years). */
#define BNN_LAPLACE_MAX_STEPS 1000000
int bnn_laplace_optimize(bnn_laplace *la, int64_t steps);
/* Per-layer prior precision (laplace-torch's prior_precision of shape [n_layers], whose
 * "layers" are the parameter tensors): one δ_l per weight and per bias tensor of the subset,
 * in order (layer 0's weight, its bias, layer 1's weight, ...), so nlayers is twice the subset's
 * Linear layers (bnn_laplace_nlayers; a posterior read from a file written before this has one
 * per Linear layer, weight and bias together, and keeps it). Supported for diag, kron and full;
 * lowrank returns BNN_EUNSUPPORTED. lml, logdet, the GLM predictive and sampling then use
 * diag(δ_l) in place of δ I; bnn_laplace_prior_prec reports their mean, bnn_laplace_save keeps
 * them all. */
int64_t bnn_laplace_nlayers(const bnn_laplace *la);
int bnn_laplace_set_prior_layers(bnn_laplace *la, const double *prior_precs, int64_t nlayers);
/* The per-layer prior precisions (nlayers values; all equal after bnn_laplace_set_prior). */
int bnn_laplace_prior_layers(const bnn_laplace *la, double *prior_precs, int64_t nlayers);
/* lml at per-layer precisions (nlayers values) and σ, with ∂lml/∂log δ_l (nlayers, may be NULL)
 * and ∂lml/∂log σ (may be NULL); NaN with bnn_last_error() set for bad arguments. */
double bnn_laplace_lml_layers(const bnn_laplace *la, const double *prior_precs, int64_t nlayers,
                              double sigma, double *dlog_prior, double *dlog_sigma);
/* Maximises lml over the per-layer precisions: Adam on their logs (as bnn_laplace_optimize:
 * lr 0.1, betas 0.9/0.999, from δ_l = 1 (Gaussian regression from δ_l = σ = e), `steps` steps;
 * Gaussian regression also tunes σ). */
int bnn_laplace_optimize_layers(bnn_laplace *la, int64_t steps);
/* Called after each step of bnn_laplace_optimize and bnn_laplace_optimize_layers (step 1 ..
 * steps), for a caller to show progress: a per-layer step over a full Hessian factorises the
 * P × P posterior precision, about a second at P = 2800. NULL for none (the default). */
void bnn_laplace_set_progress(bnn_laplace *la,
                              void (*progress)(void *ctx, int64_t step, int64_t steps), void *ctx);
/* The posterior precision: dense (P × P, any structure where it fits) or its diagonal (P). */
int bnn_laplace_precision_dense(const bnn_laplace *la, double *out);
int bnn_laplace_precision_diag(const bnn_laplace *la, double *out);
/* Linearised (GLM) predictive for n inputs (README §7): f_mu (n × K, the network outputs at the
 * MAP) and f_var (n × K × K) = J Σ Jᵀ with J the Jacobian of the outputs with respect to the
 * subset. For last-layer subsets J comes from the features without building it. n = 0 does
 * nothing (0). Inputs are not checked: a NaN or infinite feature gives outputs that are not
 * finite, with 0 (bnn_laplace_predict and bnn_predict refuse them with BNN_EDIVERGED). */
int bnn_laplace_glm(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n, double *f_mu,
                    double *f_var);
/* The GLM predictive of a Laplace approximation for n inputs, as bnn_predict gives it for a
 * Laplace posterior with samples = 0 (p->samples is ignored), for callers that hold the
 * bnn_laplace itself (e.g. while choosing its prior). The model's likelihood decides the link:
 * probit or Monte Carlo over the logits (categorical; Bernoulli on the logits (0, f)),
 * N(f_mu, f_var + σ²) (Gaussian, with σ = p->sigma, as for every posterior in bnn_predict: pass
 * bnn_laplace_sigma(la) for the noise the posterior was fitted or optimised with, which f_var
 * already uses; `bnn eval` passes the file's bnn.sigma unless --noise is given), or the
 * closed-form mean f̄_μ and variance Σ_μμ + exp(f̄_η + ½ Σ_ηη) (heteroscedastic Gaussian). Shapes
 * as bnn_predict. */
int bnn_laplace_predict(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n,
                        bnn_task task, const struct bnn_predict_params *p, double *probs,
                        double *mi, double *mean, double *var);
/* bnn_laplace_predict at each of nprior scalar prior precisions (as with bnn_laplace_set_prior
 * to that precision and the posterior's own σ first; per-layer precisions the posterior holds
 * are not used, and it is not changed), from one pass of the network over x for all of them:
 * laplace-torch's grid search over the prior precision on held-out data, at the cost of about
 * one prediction. Each precision's outputs (probs, or mean and var; no mutual information) are
 * a block of n × C values, the blocks in the order of prior_precs, and each is what
 * bnn_laplace_predict gives at that precision, to the last bit (a Monte-Carlo link draws the
 * same values for every precision). BNN_EINVAL for nprior < 1 or a precision that is not
 * positive and finite; BNN_EDIVERGED names the precision where the predictive is not finite. */
int bnn_laplace_predict_priors(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n,
                               bnn_task task, const struct bnn_predict_params *p,
                               const double *prior_precs, int64_t nprior, double *probs,
                               double *mean, double *var);
/* Probit approximation p = softmax(κ ⊙ f_mu), κ_k = 1/√(1 + π/8 · f_var[k,k]) (MacKay 1992), for
 * f_mu (n, k) and f_var (n, k, k) (only the diagonals are read). Returns 0; BNN_EINVAL for a
 * missing array, n < 0 or k < 1; BNN_EDIVERGED, naming the first, for a logit that is not finite
 * or a variance that is negative or NaN (probs are filled all the same, and may be NaN there). */
int bnn_probit(double *probs, const double *f_mu, const double *f_var, int64_t n, int64_t k);
/* Laplace bridge as laplace-torch computes it (README §7). f_mu (n, k) and f_var (n, k, k) as
 * bnn_probit's. A row without a Dirichlet (logits that are not finite, or a variance after the
 * zero-sum correction that is not positive beyond rounding) gets laplace-torch's arithmetic as it
 * is, which need not be a distribution (NaN, or values that do not sum to 1), and the call returns
 * BNN_EDIVERGED naming the first such row (the other rows are filled as usual). Otherwise 0;
 * BNN_EINVAL for a missing array, n < 0 or k < 2; BNN_ENOMEM (probs all NaN) when its scratch
 * cannot be allocated (more than 256 classes). */
int bnn_laplace_bridge(double *probs, const double *f_mu, const double *f_var, int64_t n,
                       int64_t k);
/* (Through bnn_laplace_predict, the bridge also gives the mutual information of its Dirichlet,
 * I = Σ_i p_i (ψ(α_i + 1) − ψ(α_0 + 1) − ln p_i), the label's with the class probabilities.)
 * The same with laplace-torch's variance normalisation (link_approx='bridge_norm'): after the
 * zero-sum correction the means are divided by √c and the variances by c, c = mean_i V'_ii /
 * √(K/2), so the result does not change when f_mu is scaled by √s and f_var by s. */
int bnn_laplace_bridge_norm(double *probs, const double *f_mu, const double *f_var, int64_t n,
                            int64_t k);
/* One weight sample of the subset (P values in subset order, added to the MAP):
 * θ ~ N(mean, P_post⁻¹); bnn_curv_scatter puts it into a full weight vector. BNN_EINVAL when
 * the posterior precision is not positive definite or the sample is not finite (a prior
 * precision too small for a flat direction). */
int bnn_laplace_sample(const bnn_laplace *la, bnn_rng *rng, float *theta);

/* A posterior over the whole model from a Laplace approximation of its subset: the other weights
 * stay at the model's values. Takes ownership of la (also on failure). */
int bnn_posterior_from_laplace(bnn_posterior **out, const bnn_model *m, bnn_laplace *la);
const bnn_laplace *bnn_posterior_laplace(const bnn_posterior *q); /* NULL unless LAPLACE */
/* Saves the model with the Laplace posterior (curvature in F64 tensors laplace.*, settings in
 * metadata) so bnn_posterior_load restores it; extra metadata pairs as in bnn_model_save, except
 * bnn.laplace.curvature and bnn.laplace.ef_noise, which say how the curvature is scaled and are
 * the library's own (BNN_EINVAL), and the keys it writes itself (refused as set twice). */
int bnn_laplace_save(const bnn_laplace *la, const bnn_model *m, bnn_task task, const char *path,
                     const char *const *keys, const char *const *values, int64_t nkv);

/* ---------------------------------------------------------------- VON on the last layer */

/* Variational learning of a full-covariance Gaussian q = N(m, S⁻¹) over the weights and bias of
 * the model's last Linear layer (P = outputs · (inputs + 1); the layers below stay at their
 * weights), prior N(0, δ⁻¹ I): `steps` steps of the VON update of bnn_von_step,
 *   S ← (1 − ρ) S + ρ (H̄ + δI),   m ← m − ρ S⁻¹ (ḡ + δ m),
 * whose ḡ and H̄ are the expected gradient and GGN (the curvature bnn_curv_compute forms for the
 * model's likelihood; the heteroscedastic Gaussian's Fisher) of the summed loss over ds under
 * q — at the mean (mc_samples = 0, the delta method) or averaged over mc_samples draws from q per
 * step. q starts at the model's weights with the precision GGN + δI there.
 *   A linear model with a Gaussian likelihood: one step with rho = 1 at the mean
 *   (mc_samples = 0) is Bayesian linear regression's exact posterior (with draws, the averaged
 *   gradient is not the gradient at the mean, and the step lands near it, not on it). Delta
 *   method: Newton's method on Σ loss + ½δ‖m‖², converging to the layer's MAP under the prior
 *   with the GGN Laplace posterior around it; a step that would raise that objective is retried
 *   at half the rate (up to 40 times). S is the last step's, formed from the GGN at the mean
 *   before it.
 *   Monte Carlo: stochastic natural-gradient VI (take rho < 1, e.g. 0.1–0.5, and more steps).
 * The layers below run once (the layer's inputs are kept for every example). The result is
 * returned as a full Laplace posterior over the layer (mean m, precision S;
 * bnn_laplace_prior_prec is δ, bnn_curv_loss of its curvature the loss at m as bnn_curv_compute
 * records it), so its GLM and sampling predictives, bnn_posterior_from_laplace and
 * bnn_laplace_save apply; its marginal-likelihood functions do not describe q: the optimisers
 * (bnn_laplace_optimize, _optimize_layers) refuse it with BNN_EINVAL. res (may be NULL)
 * receives the objective Σ loss + ½δ‖m‖² at the start and at the result, the relative size of the last step (max |Δm| / max |m|: small when the steps have
 * settled) and the delta method's halvings. On success the model's last layer holds m (as
 * floats); on failure the model is unchanged. Errors: BNN_EINVAL for a setting out of range, a
 * model that does not end with a Linear layer or a precision that is not positive definite,
 * BNN_ENOMEM naming the size (about 9 P² doubles and the layer's inputs, against max_bytes),
 * BNN_EDIVERGED when the loss, a sample or the mean stops being finite or no step size lowers
 * the objective, and the data checks of training (named against m). */
struct bnn_von_params {
    int64_t steps;      /* default 10, at most 100000 */
    double rho;         /* step size in (0, 1], default 1 */
    double prior_prec;  /* δ > 0, default 1 */
    int64_t mc_samples; /* 0 (default): at the mean; 1 .. BNN_MAX_MC_SAMPLES draws per step */
    uint64_t seed;      /* the draws, default 0 */
    double sigma;       /* Gaussian likelihood: the observation noise σ, default 1 */
    int64_t batch_size; /* examples per pass, default 0: bnn_curv_compute's choice */
    double max_bytes;   /* refuse above this; default 0: BNN_MEMORY_LIMIT, else the machine's */
};
struct bnn_von_result {
    double objective0, objective; /* Σ loss + ½δ‖m‖² at the start and at the result */
    double nll;                   /* Σ loss at the result: the summed negative log-likelihood
                                   * (for the Gaussian with its 1/σ² and normalising constant,
                                   * unlike bnn_curv_loss's laplace-torch convention) */
    double last_change;           /* max |Δm| / max |m| of the last step */
    int64_t halvings;             /* delta method: steps retried at half the rate */
    /* The GGNs were summed in double: float sums (half the time) move the eigenvalues by about
     * 2^-24 of the largest, which at the start was not below 1e-2 δ. */
    bool double_sums;
};
struct bnn_von_params bnn_von_default_params(void);
int bnn_von_last_layer(bnn_laplace **out, bnn_model *m, const bnn_dataset *ds,
                       const struct bnn_von_params *p, struct bnn_von_result *res);

/* ---------------------------------------------------------------- files (safetensors) */

/* The tensor dtypes bnn reads: every dtype of the safetensors format but the C64, F8_E8M0, F4 and
 * F6 ones added to it later, which make a file unreadable here (F16 is IEEE binary16,
 * BF16 bfloat16, F8_E5M2 and F8_E4M3 the OCP 8-bit floats, E4M3 the "fn" variant without
 * infinities). Every one converts to float and double; a model's weights may be F32, F64, F16 or
 * BF16 (converted to F32 on load), other tensors in a file are read and ignored, and bnn writes
 * F32 (F64 for a Laplace posterior's curvature). */
typedef enum {
    BNN_DT_F32 = 0,
    BNN_DT_F64 = 1,
    BNN_DT_I64 = 2,
    BNN_DT_I32 = 3,
    BNN_DT_U8 = 4,
    BNN_DT_F16 = 5,
    BNN_DT_BF16 = 6,
    BNN_DT_BOOL = 7,
    BNN_DT_I8 = 8,
    BNN_DT_I16 = 9,
    BNN_DT_U16 = 10,
    BNN_DT_U32 = 11,
    BNN_DT_U64 = 12,
    BNN_DT_F8_E5M2 = 13,
    BNN_DT_F8_E4M3 = 14
} bnn_dtype;
size_t bnn_dtype_size(bnn_dtype dt);
/* The dtype's name in a file ("F32", "BF16", ...), or "?" for a value outside the enum. */
const char *bnn_dtype_name(bnn_dtype dt);

typedef struct bnn_st bnn_st; /* a safetensors file read into memory */
typedef struct bnn_st_tensor {
    const char *name;
    bnn_dtype dtype;
    int ndim;
    int64_t shape[8];
    int64_t numel;
    const void *data; /* little-endian bytes inside the file buffer; may be unaligned */
} bnn_st_tensor;

/* Reads and validates a safetensors file: header length within the file, valid JSON object
 * (no byte-order mark), known dtypes, shapes and data_offsets written as plain whole numbers
 * (not 8.0, 8e0, -0 or 08), shapes whose product matches data_offsets, offsets inside the data
 * area, the tensors packed from its first byte with no overlaps or gaps (an empty one where the
 * tensors before it end), no field given twice. Error messages name the file and the offending
 * tensor or field. */
int bnn_st_read(bnn_st **out, const char *path);
/* Reads only the header of a safetensors file, checked as bnn_st_read checks it (length, UTF-8,
 * JSON, the metadata) but without its tensor entries, which are neither read nor validated:
 * bnn_st_count is 0. For a caller that needs a large file's metadata alone. */
int bnn_st_read_meta(bnn_st **out, const char *path);
/* Parses an in-memory image (copied); `name` is used in error messages. */
int bnn_st_parse(bnn_st **out, const void *buf, size_t len, const char *name);
void bnn_st_free(bnn_st *st);
/* Frees the tensors (their bytes and their table) and keeps the metadata, for a caller done with
 * a large file's tensors that still reads its metadata (bnn eval holds a full Laplace posterior's
 * file, 108 MB for Fashion-MNIST's last layer, only for that). Afterwards st has no tensors
 * (bnn_st_count 0, bnn_st_get BNN_ENOTFOUND) and tensors got from it before are invalid. */
void bnn_st_drop_tensors(bnn_st *st);
int64_t bnn_st_count(const bnn_st *st);
/* The i-th tensor in the header's order (bnn_st_writer's: see bnn_st_writer_save). */
int bnn_st_at(const bnn_st *st, int64_t i, bnn_st_tensor *t);
int bnn_st_get(const bnn_st *st, const char *name, bnn_st_tensor *t); /* BNN_ENOTFOUND */
/* Metadata value for key, or NULL. */
const char *bnn_st_meta(const bnn_st *st, const char *key);
int64_t bnn_st_meta_count(const bnn_st *st);
/* i-th metadata key and value. */
int bnn_st_meta_at(const bnn_st *st, int64_t i, const char **key, const char **value);
/* Whether s (NUL-terminated; NULL: false) is well-formed UTF-8, which every name, metadata key
 * and value in a safetensors header must be: a file name from a Latin-1 file system is not, and
 * a writer refuses it. */
bool bnn_st_text_ok(const char *s);
/* Copies a tensor converted to double / float (from any bnn_dtype; F16 and BF16 exactly, F64 to
 * float rounded, ±Inf beyond float's range). dst holds numel. */
int bnn_st_to_f64(const bnn_st_tensor *t, double *dst);
int bnn_st_to_f32(const bnn_st_tensor *t, float *dst);

typedef struct bnn_st_writer bnn_st_writer;
int bnn_st_writer_new(bnn_st_writer **out);
void bnn_st_writer_free(bnn_st_writer *w);
/* Adds a tensor; the data is copied. Names must be unique. */
int bnn_st_writer_add(bnn_st_writer *w, const char *name, bnn_dtype dt, int ndim,
                      const int64_t *shape, const void *data);
int bnn_st_writer_meta(bnn_st_writer *w, const char *key, const char *value);
/* Writes atomically: PATH.tmp.PID then rename, so a failure never leaves a half-written PATH.
 * The tensors go in by element size, largest first, and in the order added among equals (as the
 * reference writer orders them by alignment): each then starts at a multiple of its element
 * size, and a reader gets them back in that order, not the order added. */
int bnn_st_writer_save(const bnn_st_writer *w, const char *path);

/* ---------------------------------------------------------------- model files */

/* Saves a model with its weights as F32 tensors named like PyTorch's nn.Sequential state dict
 * ("0.weight", "0.bias", "2.weight", ...) and metadata: bnn.model (spec), bnn.task, plus the
 * caller's extra key/value pairs (may be NULL / 0). */
int bnn_model_save(const bnn_model *m, const char *path, bnn_task task, const char *const *keys,
                   const char *const *values, int64_t nkv);
/* Loads a model saved by bnn_model_save (or a compatible file: metadata bnn.model and every
 * tensor present with the right shape; BNN_EFORMAT naming a tensor that is missing or misshapen,
 * or a state-dict tensor '<index>.<name>' at a layer index where the spec has no weights: a layer
 * the spec does not describe, such as a LayerNorm; or a posterior's tensors that bnn.posterior
 * disowns: posterior.std under another tag than "diag", laplace.* under another than "laplace",
 * as an edited file has).
 * *task (if not NULL) receives bnn.task; st (if not NULL) receives the opened file for further
 * metadata, to be freed by the caller. Files the bnn command writes also record, for a library
 * user to apply: bnn.sigma (a Gaussian model's noise σ: bnn_predict_params.sigma, and the
 * laplace functions' sigma), bnn.temperature (from `bnn calibrate`:
 * bnn_predict_params.temperature), and their training data (bnn.data, a spec for bnn_data_load;
 * bnn.data.dir, the directory its relative file names are relative to; bnn.data.target_col,
 * bnn.data.header "yes"/"no"/"auto";
 * bnn.data.holdout, the last rows kept out of training; bnn.seed, generated data's seed;
 * bnn.data.min and bnn.data.max, the smallest and largest training feature, against which the
 * command checks other inputs' scaling). bnn_model_load applies none of them: read them with
 * bnn_st_meta (bnn_strtod and bnn_parse_int for numbers). */
int bnn_model_load(bnn_model **out, const char *path, bnn_task *task, bnn_st **st);
/* bnn_model_load from a file already read (bnn_st_read or bnn_st_parse); name is the file's name
 * in error messages. st stays the caller's. */
int bnn_model_from_st(bnn_model **out, const bnn_st *st, const char *name, bnn_task *task);

/* The posterior stored in a file opened by bnn_model_load (metadata bnn.posterior: "point";
 * "diag" with the tensor posterior.std [nparams]; "laplace", as bnn_laplace_save writes it). m
 * must be the model bnn_model_load read from st: the posterior's mean is m's weights as they are
 * now (BNN_EINVAL for a model of another architecture than the file's bnn.model). A file without
 * bnn.posterior holds a point mass. The posterior copies what it needs: st may be freed at once.
 * Caller frees. */
int bnn_posterior_load(bnn_posterior **out, const bnn_model *m, const bnn_st *st);
/* Saves a point or diagonal posterior q over model m's weights (a posterior made with
 * bnn_posterior_new, say, by a fitter of your own) as the file bnn_model_load and
 * bnn_posterior_load read back and `bnn eval` takes: m's architecture with q's mean as its
 * weights, bnn.posterior "point" or "diag" with posterior.std, and the caller's extra metadata
 * pairs as in bnn_model_save. BNN_EINVAL for a Laplace posterior (bnn_laplace_save writes those),
 * a mean that is not finite or a std that is not finite and positive (what loading refuses);
 * BNN_ESHAPE when q's size is not m's. The file is written atomically. */
int bnn_posterior_save(const bnn_posterior *q, const bnn_model *m, bnn_task task, const char *path,
                       const char *const *keys, const char *const *values, int64_t nkv);

#ifdef __cplusplus
}
#endif
#endif /* BNN_H */
