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
 *  - The library never prints and never exits on bad input.
 */
#ifndef BNN_H
#define BNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BNN_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

enum {
    BNN_OK = 0,
    BNN_ENOMEM = -1,      /* an allocation failed */
    BNN_EIO = -2,         /* a file could not be opened, read or written */
    BNN_EFORMAT = -3,     /* a file's contents are malformed */
    BNN_EINVAL = -4,      /* an argument or setting is invalid */
    BNN_ESHAPE = -5,      /* shapes or sizes do not agree */
    BNN_ENOTFOUND = -6,   /* a named item (tensor, dataset, key) does not exist */
    BNN_EDIVERGED = -7,   /* training produced NaN or Inf */
    BNN_EUNSUPPORTED = -8 /* a valid request this build cannot serve */
};

/* The fixed message for an error code ("out of memory", ...). Never NULL. */
const char *bnn_strerror(int code);
/* The detail string of the last error raised on this thread (empty if none). */
const char *bnn_last_error(void);

/* ---------------------------------------------------------------- runtime */

/* Sets the number of threads used by OpenMP loops and by OpenBLAS (n >= 1). Results do not
 * depend on it: every reduction has a fixed order. */
void bnn_set_threads(int n);
int bnn_get_threads(void);

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
/* out[i] ~ U(0, 1) (never exactly 0 or 1), n values; advances the counter by ceil(n/4). */
void bnn_rng_uniform(bnn_rng *rng, float *out, int64_t n);
/* out[i] ~ N(0, 1) by Box–Muller, n values; advances the counter by ceil(n/2). */
void bnn_rng_normal(bnn_rng *rng, float *out, int64_t n);
/* One uniform integer in [0, n). Advances the counter by 1. */
uint64_t bnn_rng_below(bnn_rng *rng, uint64_t n);

/* ---------------------------------------------------------------- GEMM seam */

typedef enum { BNN_GEMM_AUTO = 0, BNN_GEMM_REF = 1, BNN_GEMM_BLAS = 2 } bnn_gemm_backend;

/* C (M×N) = alpha · op(A) · op(B) + beta · C, row-major and contiguous. op(A) is M×K: A is
 * stored M×K, or K×M when ta. op(B) is K×N: B is stored K×N, or N×K when tb. When beta is 0, C
 * is not read (NaN in C does not propagate). */
void bnn_gemm(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K, bool ta,
              bool tb, float alpha, float beta);
/* The same through a chosen backend; BNN_GEMM_REF is the plain C reference. */
void bnn_gemm_with(bnn_gemm_backend be, float *C, const float *A, const float *B, int64_t M,
                   int64_t N, int64_t K, bool ta, bool tb, float alpha, float beta);
/* Selects the backend bnn_gemm uses (AUTO: OpenBLAS when built with it). */
void bnn_gemm_set_backend(bnn_gemm_backend be);
/* True when this build has OpenBLAS. */
bool bnn_have_blas(void);

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
float *bnn_dataset_x(bnn_dataset *ds);          /* n × d */
int32_t *bnn_dataset_labels(bnn_dataset *ds);   /* n, or NULL for regression */
float *bnn_dataset_targets(bnn_dataset *ds);    /* n × t, or NULL for classification */
const float *bnn_dataset_cx(const bnn_dataset *ds);
const int32_t *bnn_dataset_clabels(const bnn_dataset *ds);
const float *bnn_dataset_ctargets(const bnn_dataset *ds);
/* Image shape (channels, height, width) when the features are an image, else all 0. */
void bnn_dataset_image_shape(const bnn_dataset *ds, int64_t shape[3]);
void bnn_dataset_set_image_shape(bnn_dataset *ds, const int64_t shape[3]);
/* Checks every feature and target is finite and every label is in range. BNN_EFORMAT if not,
 * naming the row and column. */
int bnn_dataset_validate(const bnn_dataset *ds);

/* IDX (the MNIST format; .gz read through zlib). Images (u8, any rank >= 2) become features
 * scaled to [0, 1]; the labels file gives class labels in [0, classes). */
int bnn_idx_load(bnn_dataset **out, const char *images_path, const char *labels_path,
                 int64_t classes);

struct bnn_csv_params {
    bool header;        /* the first line holds column names (default: auto-detect) */
    bool header_auto;   /* detect a header: first line has a field that is not a number */
    int64_t target_col; /* target column, 0-based; negative counts from the end (default -1) */
    bnn_task task;      /* classification: targets must be integers 0..K-1 */
    char delimiter;     /* default ',' */
};
struct bnn_csv_params bnn_csv_default_params(void);
int bnn_csv_load(bnn_dataset **out, const char *path, const struct bnn_csv_params *p);

/* Built-in toy problems. Two interleaved half-moons with Gaussian noise (2 classes). */
int bnn_toy_moons(bnn_dataset **out, int64_t n, double noise, uint64_t seed);
/* 1-D regression: x uniform on [-4,-1] ∪ [1,4] (a gap in the middle), y = sin(x) + noise·N(0,1).
 * Test sets use test=true: x evenly spaced on [-6, 6] covering the gap. */
int bnn_toy_sine_gap(bnn_dataset **out, int64_t n, double noise, uint64_t seed, bool test);

/* Looks up a dataset by spec: "fmnist" (Fashion-MNIST from $BNN_FMNIST_DIR or
 * /usr/share/datasets/fashion-mnist), "moons", "sine-gap", "csv:PATH". split is "train" or
 * "test". For csv the same file serves both splits unless "csv:TRAIN,TEST" is given. */
struct bnn_data_params {
    const char *split;      /* "train" (default) or "test" */
    uint64_t seed;          /* for the toy generators */
    struct bnn_csv_params csv;
};
struct bnn_data_params bnn_data_default_params(void);
int bnn_data_load(bnn_dataset **out, const char *spec, const struct bnn_data_params *p);

/* Shuffled mini-batches: a permutation of 0..n-1 drawn from (seed, epoch), so epoch e of a run
 * is the same whatever happened before it. */
int bnn_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch);
/* Copies rows idx[0..b) of ds into x (b × d) and labels / targets. */
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
 * outputs (b × output_dim), owned by the model and valid until the next forward. */
const float *bnn_model_forward(bnn_model *m, const float *theta, const float *x, int64_t b,
                               bool train, bnn_rng *rng);
/* Backward pass for the last forward: given dout (b × output_dim) = ∂loss/∂output, ADDS
 * ∂loss/∂theta into grad (nparams floats). */
void bnn_model_backward(bnn_model *m, const float *theta, const float *dout, float *grad);
/* Like backward, and also returns ∂loss/∂x (b × input_dim) in dx. */
void bnn_model_backward_input(bnn_model *m, const float *theta, const float *dout, float *grad,
                              float *dx);

/* Layer introspection (for files and later the curvature pass). */
int64_t bnn_model_nlayers(const bnn_model *m);
const char *bnn_model_layer_kind(const bnn_model *m, int64_t i); /* "linear", "relu", ... */
/* For a layer with parameters: offsets and shapes of its tensors in the flat vector. */
int bnn_model_layer_tensors(const bnn_model *m, int64_t i, int64_t *w_off, int64_t w_shape[2],
                            int64_t *b_off, int64_t *b_len);

/* ---------------------------------------------------------------- likelihoods */

typedef enum { BNN_LIK_CATEGORICAL = 0, BNN_LIK_GAUSSIAN = 1 } bnn_lik_kind;

typedef struct bnn_lik {
    bnn_lik_kind kind;
    double sigma; /* Gaussian noise standard deviation (> 0) */
} bnn_lik;

/* Mean negative log-likelihood over b examples of outputs f (b × k), with labels (categorical)
 * or targets (Gaussian, b × k). When dout is not NULL it receives ∂(mean loss)/∂f (b × k).
 * Categorical: softmax cross-entropy by log-sum-exp. Gaussian: (f−y)²/(2σ²) + log σ + ½ log 2π
 * summed over the k outputs. Accumulates in double. */
double bnn_lik_loss(const bnn_lik *lik, float *dout, const float *f, const int32_t *labels,
                    const float *targets, int64_t b, int64_t k);

/* ---------------------------------------------------------------- optimizers */

/* Plain functions over flat vectors of n floats. g is the gradient of the data loss. */
struct bnn_sgd_params {
    float lr, momentum, weight_decay, dampening;
    bool nesterov;
};
struct bnn_sgd_params bnn_sgd_default_params(void);
/* PyTorch torch.optim.SGD semantics: d = g + wd·w; buf = d at t = 1, else momentum·buf +
 * (1−dampening)·d; w −= lr·(nesterov ? d + momentum·buf : buf). t counts from 1. */
void bnn_sgd_step(float *w, float *buf, const float *g, int64_t n, int64_t t,
                  const struct bnn_sgd_params *p);

struct bnn_adamw_params {
    float lr, beta1, beta2, eps, weight_decay;
};
struct bnn_adamw_params bnn_adamw_default_params(void);
/* PyTorch torch.optim.AdamW semantics (Loshchilov & Hutter, ICLR 2019): w ·= 1 − lr·wd;
 * m = β1 m + (1−β1) g; v = β2 v + (1−β2) g²; w −= lr/(1−β1^t) · m / (√v / √(1−β2^t) + eps). */
void bnn_adamw_step(float *w, float *m, float *v, const float *g, int64_t n, int64_t t,
                    const struct bnn_adamw_params *p);

/* ---------------------------------------------------------------- training */

typedef enum { BNN_METHOD_SGD = 0, BNN_METHOD_ADAMW = 1 } bnn_method;
typedef enum { BNN_LR_CONSTANT = 0, BNN_LR_COSINE = 1 } bnn_lr_schedule;

/* The learning rate of step t (0-based) of `total` steps: linear warm-up from lr/warmup to lr over
 * the first `warmup` steps, then constant, or cosine decay to 0 at step `total`
 * (Loshchilov & Hutter, "SGDR", ICLR 2017, without restarts): lr · ½(1 + cos(π·(t−w)/(total−w))). */
float bnn_lr_at(bnn_lr_schedule sched, float lr, int64_t t, int64_t total, int64_t warmup);

struct bnn_train_params {
    bnn_method method;
    int64_t epochs;      /* default 10 */
    int64_t batch_size;  /* default 128 */
    float lr;            /* default 1e-3 (adamw), use 0.05 for sgd */
    float weight_decay;  /* default 1e-4 */
    float momentum;      /* sgd momentum, default 0.9 */
    bnn_lr_schedule lr_schedule; /* default constant */
    int64_t warmup_epochs;       /* linear warm-up epochs before the schedule, default 0 */
    uint64_t seed;       /* default 0: initialisation, shuffling and dropout */
    bool init;           /* initialise the weights from seed (default true) */
    double sigma;        /* Gaussian likelihood noise for regression, default 1 */
    /* Called after each epoch (and every few steps) with progress; may be NULL. Returning
     * non-zero stops training with BNN_EINVAL. */
    int (*progress)(void *ctx, int64_t epoch, int64_t step, int64_t steps_per_epoch,
                    double mean_loss, bool epoch_done);
    void *progress_ctx;
};
struct bnn_train_params bnn_train_default_params(void);
/* Trains m on ds (minimising mean NLL with the chosen optimizer). Returns BNN_EDIVERGED, naming
 * the epoch and step, when the loss or the weights become NaN or Inf; the model's weights are
 * then those before the failing step. */
int bnn_train(bnn_model *m, const bnn_dataset *ds, const struct bnn_train_params *p);

/* ---------------------------------------------------------------- evaluation */

struct bnn_eval_result {
    bnn_task task;
    int64_t n;
    double accuracy; /* classification */
    double nll;      /* mean negative log-likelihood (Gaussian with lik.sigma for regression) */
    double rmse;     /* regression */
};
/* Evaluates the model at its weights on ds in batches (b ≤ max_batch). */
int bnn_evaluate(bnn_model *m, const bnn_dataset *ds, const bnn_lik *lik,
                 struct bnn_eval_result *out);

/* ---------------------------------------------------------------- files (safetensors) */

typedef enum { BNN_DT_F32 = 0, BNN_DT_F64 = 1, BNN_DT_I64 = 2, BNN_DT_I32 = 3, BNN_DT_U8 = 4 } bnn_dtype;
size_t bnn_dtype_size(bnn_dtype dt);

typedef struct bnn_st bnn_st; /* a safetensors file read into memory */
typedef struct bnn_st_tensor {
    const char *name;
    bnn_dtype dtype;
    int ndim;
    int64_t shape[8];
    int64_t numel;
    const void *data; /* little-endian bytes inside the file buffer; may be unaligned */
} bnn_st_tensor;

/* Reads and validates a safetensors file: header length within the file, valid JSON object,
 * known dtypes, shapes whose product matches data_offsets, offsets inside the data area, no
 * overlaps. Error messages name the file and the offending tensor or field. */
int bnn_st_read(bnn_st **out, const char *path);
/* Parses an in-memory image (copied); `name` is used in error messages. */
int bnn_st_parse(bnn_st **out, const void *buf, size_t len, const char *name);
void bnn_st_free(bnn_st *st);
int64_t bnn_st_count(const bnn_st *st);
int bnn_st_at(const bnn_st *st, int64_t i, bnn_st_tensor *t);
int bnn_st_get(const bnn_st *st, const char *name, bnn_st_tensor *t); /* BNN_ENOTFOUND */
/* Metadata value for key, or NULL. */
const char *bnn_st_meta(const bnn_st *st, const char *key);
int64_t bnn_st_meta_count(const bnn_st *st);
/* i-th metadata key and value. */
int bnn_st_meta_at(const bnn_st *st, int64_t i, const char **key, const char **value);
/* Copies a tensor converted to double / float (from F32, F64, I64, I32 or U8). dst holds numel. */
int bnn_st_to_f64(const bnn_st_tensor *t, double *dst);
int bnn_st_to_f32(const bnn_st_tensor *t, float *dst);

typedef struct bnn_st_writer bnn_st_writer;
int bnn_st_writer_new(bnn_st_writer **out);
void bnn_st_writer_free(bnn_st_writer *w);
/* Adds a tensor; the data is copied. Names must be unique. */
int bnn_st_writer_add(bnn_st_writer *w, const char *name, bnn_dtype dt, int ndim,
                      const int64_t *shape, const void *data);
int bnn_st_writer_meta(bnn_st_writer *w, const char *key, const char *value);
/* Writes atomically: PATH.tmp.PID then rename, so a failure never leaves a half-written PATH. */
int bnn_st_writer_save(const bnn_st_writer *w, const char *path);

/* ---------------------------------------------------------------- model files */

/* Saves a model with its weights as F32 tensors named like PyTorch's nn.Sequential state dict
 * ("0.weight", "0.bias", "2.weight", ...) and metadata: bnn.model (spec), bnn.task, plus the
 * caller's extra key/value pairs (may be NULL / 0). */
int bnn_model_save(const bnn_model *m, const char *path, bnn_task task, const char *const *keys,
                   const char *const *values, int64_t nkv);
/* Loads a model saved by bnn_model_save (or a compatible file: metadata bnn.model and every
 * tensor present with the right shape). *task receives bnn.task; st (if not NULL) receives the
 * opened file for further metadata, to be freed by the caller. */
int bnn_model_load(bnn_model **out, const char *path, bnn_task *task, bnn_st **st);

#ifdef __cplusplus
}
#endif
#endif /* BNN_H */
