/* Internal helpers shared by the library's modules. Not part of the public API. */
#ifndef BNN_INTERNAL_H
#define BNN_INTERNAL_H

#include "bnn.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define BNN__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BNN__PRINTF(a, b)
#endif

/* Records the detail string of an error on this thread and returns code, so a failing path
 * reads `return bnn__error(BNN_EFORMAT, "%s: bad header", path);`. */
int bnn__error(int code, const char *fmt, ...) BNN__PRINTF(2, 3);
/* Clears the last-error detail. */
void bnn__error_clear(void);

/* The calling thread's number in the current OpenMP team (0 outside one, or without OpenMP), for
 * loops that give each thread its own scratch. */
int64_t bnn__thread_id(void);
/* Makes OpenBLAS single-threaded, once per process; call it before every BLAS or LAPACK call
 * (outside OpenMP regions where possible). Its results then never depend on the core count. */
void bnn__blas_pin(void);

/* LAPACK without LAPACKE's 32-bit NaN scan and with workspaces sized in 64 bits (src/core/lapack.c).
 * The results are LAPACK's info: 0, > 0 a failure to converge, < 0 a bad argument, or
 * LAPACKE's LAPACK_WORK_MEMORY_ERROR (-1010) when a workspace cannot be allocated. */
enum { BNN__SYEV_AUTO = 0, BNN__SYEV_DC = 1, BNN__SYEV_MRRR = 2 };
/* Eigendecomposition of the symmetric n × n matrix a (column-major, lower triangle read): w (n)
 * ascending, a's column k eigenvector k. AUTO: dsyevd (divide and conquer) while its workspace
 * fits a 32-bit lapack_int (n <= 32,766), else dsyevr; the others force one (tests). */
int bnn__syev(double *a, int64_t n, double *w, int method);
/* Eigenpairs il..iu (1-based, ascending) of the symmetric n × n matrix a (column-major, lower
 * triangle read, destroyed) by dsyevr: w (n; the first iu − il + 1 set) and z (n × (iu − il + 1),
 * column-major, column j eigenvector il + j). */
int bnn__syevr(double *a, int64_t n, int64_t il, int64_t iu, double *w, double *z);
/* Whether all n values are finite: LAPACK is given none that is not (see src/core/lapack.c). */
bool bnn__all_finite(const double *x, int64_t n);
/* The method AUTO takes for order n, and the bytes bnn__syev allocates beside a and w. */
int bnn__syev_method(int64_t n);
double bnn__syev_bytes(int64_t n);
/* a (m × n, column-major, m >= n) replaced by an orthonormal basis of its columns' span
 * (Householder QR: dgeqrf, then dorgqr); tau (n) is scratch. */
int bnn__qr_basis(double *a, int64_t m, int64_t n, double *tau);

/* bnn_syrk as one single-threaded BLAS call over the whole triangle, for callers that spread
 * independent updates over the threads themselves (the last-layer full curvature's blocks): on
 * one thread it is faster than bnn_syrk's tiles (one packing of A instead of one per tile: 82
 * against 70 GFLOP/s for N = 257, K = 1024 on the CI machine). Its bits depend only on (N, K)
 * too, but are not bnn_syrk's. */
void bnn__syrk_serial(float *C, const float *A, int64_t N, int64_t K, float alpha, float beta);
/* bnn_syrk and bnn__syrk_serial in double (the upper triangle of C = alpha·AᵀA + beta·C, A K × N
 * row-major; C not read when beta is 0): for the exact curvature products. */
void bnn__dsyrk(double *C, const double *A, int64_t N, int64_t K, double alpha, double beta);
void bnn__dsyrk_serial(double *C, const double *A, int64_t N, int64_t K, double alpha, double beta);
/* C (M × N, row stride ldc) = op(A) · op(B) + beta·C in double, row-major: op(A) = A (M × K,
 * stride lda) or, with ta, Aᵀ for A (K × M, stride lda); op(B) = B (K × N, stride ldb) or, with
 * tb, Bᵀ for B (N × K, stride ldb); C is not read when beta is 0. One single-threaded BLAS call (a
 * plain loop without BLAS or with BNN_GEMM_REF), for callers that spread fixed tiles over the
 * threads themselves. */
void bnn__dgemm_serial(double *C, const double *A, const double *B, int64_t M, int64_t N, int64_t K,
                       int64_t lda, int64_t ldb, int64_t ldc, bool ta, bool tb, double beta);

/* The scaled Chebyshev filter of the matrix-free low-rank curvature (src/fit/curvature.c): *y ←
 * T_m((H − cI)/e) X / T_m((hi − c)/e) with e = c = lo/2, from X in *x and H X in *y (n values;
 * *w a third buffer); m − 1 products H·in through `product` (non-zero stops, returned). On
 * return *x and *w are the two free buffers. */
int bnn__chebyshev_filter(double **x, double **y, double **w, int64_t n, int64_t m, double lo,
                          double hi, int (*product)(void *ctx, double *out, const double *in),
                          void *ctx);

/* Programmer errors (impossible states). Stays on in release builds. */
#define BNN_ASSERT(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) bnn__assert_fail(#cond, __FILE__, __LINE__);                             \
    } while (0)
_Noreturn void bnn__assert_fail(const char *cond, const char *file, int line);

/* Writes the concatenation of nparts byte ranges to path atomically (PATH.tmp.PID, fsync,
 * rename); on failure nothing is left behind. BNN_EIO / BNN_ENOMEM naming the path. */
int bnn__write_atomic(const char *path, const void *const *parts, const size_t *lens,
                      int64_t nparts);

/* 64-byte aligned allocation (zeroed); free with bnn__free. NULL on failure. */
void *bnn__alloc(size_t bytes);
void bnn__free(void *p);

/* Overflow-checked n*size for allocation sizes; returns 0 on overflow or negative n. */
size_t bnn__bytes(int64_t n, size_t size);
/* bnn__alloc of n elements of size bytes (a minimal block for n = 0); NULL, as for no memory,
 * where n is negative or n · size has no size_t (bnn__bytes' 0 passed on would allocate one
 * byte for it). */
void *bnn__alloc_array(int64_t n, size_t size);
/* Tests only: called by bnn_output_commit after each rename (NULL otherwise), to deliver a
 * signal in the middle of a commit. */
extern void (*bnn__commit_hook)(void);
/* log N(y; mu, v), the Gaussian log density with variance v (metrics.c). */
double bnn__log_normal(double y, double mu, double v);
/* The bytes a fit may allocate: max_bytes when positive, else (0) the environment's
 * BNN_MEMORY_LIMIT (bytes, or with a K, M or G suffix: a job's share of a node), else this
 * machine's physical memory, else (neither can be told) no limit (INFINITY). Linux hands out
 * memory it does not have and kills the process when the pages are used; a size above this is
 * refused up front instead. what (len bytes) names it for a message: "the limit of 8 GiB",
 * "BNN_MEMORY_LIMIT's 1 KiB", "this machine's 23 GiB". BNN_EINVAL naming fn for a negative or NaN
 * max_bytes or a BNN_MEMORY_LIMIT that is not a size. */
int bnn__byte_limit(const char *fn, double max_bytes, double *limit, char *what, size_t len);
/* The memory limit (bytes) of the cgroup proc_cgroup (a /proc/PID/cgroup file) names, the
 * smallest over it and its ancestors, in the hierarchies the mountinfo file (a
 * /proc/PID/mountinfo) shows mounted, wherever they are (cgroup2's memory.max; a v1 hierarchy
 * with the memory controller, also mounted with others, its memory.limit_in_bytes), with prefix
 * put before each mount point (tests: a made-up tree; else ""); 0 where none is set or the files
 * are not there. Without BNN_MEMORY_LIMIT, the memory limit is this process's cgroup's where
 * that is below the machine's memory. */
double bnn__cgroup_limit(const char *proc_cgroup, const char *mountinfo, const char *prefix);
/* A byte count for messages: "2.1 TiB", "8 GiB", "512 KiB". */
void bnn__format_bytes(char *buf, size_t len, double bytes);

/* Arena: a bump allocator for per-step scratch, reset each step. */
typedef struct bnn__arena {
    unsigned char *base;
    size_t cap, used, high;
} bnn__arena;
int bnn__arena_init(bnn__arena *a, size_t cap);
void bnn__arena_free(bnn__arena *a);
/* 64-byte aligned bytes from the arena, or NULL when it is full. */
void *bnn__arena_push(bnn__arena *a, size_t bytes);
void bnn__arena_reset(bnn__arena *a);

/* Dataset fields (the handle is opaque to users). */
struct bnn_dataset {
    bnn_task task;
    int64_t n, d;
    int64_t k;        /* classes (classification) or target columns (regression) */
    float *x;         /* n × d */
    int32_t *labels;  /* n */
    float *targets;   /* n × k */
    int64_t image[3]; /* (c, h, w) or zeros */
    bool unlabelled;  /* classification without labels (every label 0, one class): OOD inputs */
    /* Validated by bnn_data_load (or sliced from such a set) and no writable pointer handed out
     * since: bnn__check_data trusts it instead of scanning the features again. The writable
     * accessors clear it for good, so data a caller may have changed is always scanned. */
    bool checked;
};
/* A 64-bit fingerprint of a dataset's shape, features and labels or targets, to tell whether a
 * checkpoint is resumed on the data it was trained on. It catches changes, not tampering (it is
 * not a cryptographic hash); the same for any thread count. */
uint64_t bnn__dataset_hash(const bnn_dataset *ds);

/* Model internals for fitters that traverse the layers themselves (mean-field VI). */
struct bnn__layer;
struct bnn__layer *bnn__model_layer(bnn_model *m, int64_t i);
/* The parameter count of a model spec, without allocating the parameters (a file's spec is
 * checked against the values it holds before a model is built from it). */
int bnn__spec_nparams(const char *spec, int64_t *n);
/* Whether spec describes model m's architecture (the same canonical spec), without allocating its
 * weights; an error code for a spec that does not parse. */
int bnn__spec_is(const char *spec, const bnn_model *m, bool *same);
/* The model's cached activation buffer of layer i (max_batch × out) and the input of the last
 * forward; fitters with their own forward pass write into them so that the model's backward
 * buffers stay in one place. */
float *bnn__model_act(bnn_model *m, int64_t i);
/* The forward pass through layers lo .. hi − 1 only, x being layer lo's input (b rows); returns
 * layer hi − 1's output. bnn_model_forward is the range 0 .. nlayers. After a range with lo > 0
 * the model holds no input for a backward pass. */
const float *bnn__model_forward_range(bnn_model *m, const float *theta, const float *x, int64_t b,
                                      int64_t lo, int64_t hi, bool train, bnn_rng *rng);
/* The first layer owning a parameter at index >= p (nlayers if none), and layer i's input width. */
int64_t bnn__model_first_layer_at(const bnn_model *m, int64_t p);
int64_t bnn__model_layer_in(const bnn_model *m, int64_t i);
/* Floats bnn_predict may keep of the layers a sampled Laplace posterior leaves fixed (64 MiB; the
 * inputs are taken in chunks that fit). A variable so that tests can make the chunks small. */
extern int64_t bnn__predict_feat_floats;
/* The first weight a sample of q can differ from q's mean in: 0 for a diagonal Gaussian, the
 * subset's first weight for a Laplace posterior, n for a point mass. */
int64_t bnn__posterior_first_varied(const bnn_posterior *q);
float *bnn__model_grad_buf(bnn_model *m, int which);
/* The bytes bnn_model_reserve(m, b) allocates: each layer's output for b rows, a dropout layer's
 * mask, and the two gradient buffers of the widest layer. bnn_model_reserve refuses (BNN_ENOMEM)
 * beyond the memory limit (bnn__byte_limit); the trainer counts it with its own arrays. */
double bnn__model_reserve_bytes(const bnn_model *m, int64_t b);

/* bnn_st_writer_add without the copy: data is the caller's and must stay unchanged until the
 * writer is saved or freed. bnn's own writers (models, posteriors, checkpoints) add their tensors
 * this way, so saving needs no second copy of them (an IVON network's save peaked at 1.8x its
 * training state, and the training-state check had not counted it). A zero-size tensor may pass
 * NULL. */
int bnn__st_writer_add_ref(bnn_st_writer *w, const char *name, bnn_dtype dt, int ndim,
                           const int64_t *shape, const void *data);
/* Writes the model's metadata (spec, task, version) and its weight tensors taken from params
 * (nparams floats, the model's layout, borrowed until w is saved: bnn__st_writer_add_ref) into
 * w. */
int bnn__model_write(const bnn_model *m, bnn_st_writer *w, bnn_task task, const float *params);
/* Reads the F32 vector tensor `name` of n values into dst, checking shape and finiteness; `what`
 * names the file or structure in error messages. */
int bnn__st_vector(const bnn_st *st, const char *name, float *dst, int64_t n, const char *what);
/* Whether st holds a tensor called name, without setting the last error (a probe, not a failure). */
bool bnn__st_has(const bnn_st *st, const char *name);

/* The public name → enum parsers (bnn_lik_parse, bnn_method_parse, bnn_curvature_parse,
 * bnn_hessian_parse, bnn_link_parse): the index of name in names[0 .. n) in *out, or BNN_EINVAL
 * saying "unknown WHAT 'name' (choose a, b or c)". */
int bnn__name_parse(const char *const *names, int n, const char *name, const char *what,
                    int *out);

/* bnn_parse_int's grammar for a number inside a longer string: parses the whole number at s
 * (an optional '-' and digits; nothing before them) and sets *end past it. BNN_EINVAL, without
 * a message, when s does not start with one or it overflows int64. */
int bnn__parse_int_prefix(const char *s, const char **end, int64_t *out);
/* The decimal number s[0..len) exactly as strtod reads it in the C locale, for the common short
 * forms only: false (nothing written) for anything else, which the caller gives to strtod. */
bool bnn__parse_decimal(const char *s, size_t len, double *out);

/* The normals bnn_rng_normal draws come in chunks of BNN_RNG_CHUNK values: chunk c holds the
 * values it would write at [c·CHUNK, (c+1)·CHUNK) when called at rng's position. This writes chunk
 * c to out without advancing rng, so a loop can draw its noise chunk by chunk (in any order, on
 * any thread) and then advance rng->counter by ceil(n/4) itself: the same numbers as one call. */
#define BNN_RNG_CHUNK 128
void bnn__rng_normal_chunk(float *out, const bnn_rng *rng, int64_t c);
/* The trainer's generator streams (bnn_rng_make(seed, stream)): dropout masks (one stream per
 * epoch from here on) and IVON's and MFVI's weight noise. Tests replay them. */
#define BNN_STREAM_DROPOUT ((uint64_t)1 << 32)
#define BNN_STREAM_NOISE ((uint64_t)4 << 32)

/* IVON internals for the trainer (src/fit/ivon.c), drawing their noise from rng (advanced by
 * ceil(n/4), like bnn_rng_normal):
 * bnn__ivon_draw: θ = m + ν with ν = ε ⊙ σ(h), σ = 1/√(λ(h+δ)); ε is also written to eps and ν
 *   to nu, each unless NULL.
 * bnn__ivon_step_draw: the one-sample step whose ĥ is λ(h+δ) ν ⊙ ḡ (ν the noise of the sample the
 *   gradient ḡ was taken at, as a draw wrote it to nu; the official implementation's noise ⊙
 *   grad), followed at once by the next sample θ ← m + ν, ν ← ε ⊙ σ(h), with the new m and h: one
 *   pass over the weights instead of three. The new θ and ν have the same bits bnn__ivon_draw
 *   gives from the new m and h at that position. gbar is left zeroed, ready for the next step's
 *   gradient (saves a pass of its own). Returns BNN_EDIVERGED as bnn_ivon_step does. */
void bnn__ivon_draw(float *theta, float *eps, float *nu, const float *m, const float *h,
                    int64_t n, const struct bnn_ivon_params *p, bnn_rng *rng);
int bnn__ivon_step_draw(float *m, float *h, float *g, float *theta, float *nu, float *gbar,
                        int64_t n, int64_t t, const struct bnn_ivon_params *p, bnn_rng *rng);

/* The curvature hook (DESIGN.md "Curvature hooks"): a backward pass of the last forward that calls
 * hook(ctx, layer, A, G, b, in, out) for every Linear layer with its input activations A (b × in)
 * and the back-propagated gradient of its output G (b × out). grad (nparams) receives the weight
 * gradient when not NULL; with NULL only G is propagated (cheaper: no weight GEMMs). */
typedef void (*bnn__curv_hook)(void *ctx, int64_t layer, const float *A, const float *G, int64_t b,
                               int64_t in, int64_t out);
void bnn__model_backward_hook(bnn_model *m, const float *theta, const float *dout, float *grad,
                              bnn__curv_hook hook, void *ctx);
/* The same without parameter gradients, stopping at layer `first` (0 ≤ first < nlayers): the hook
 * sees the Linear layers first.. only, and nothing is propagated below `first` (a curvature over
 * a subset of layers needs nothing under its first one). bnn__model_backward_hook with
 * grad = NULL is this with first = 0. */
void bnn__model_backward_hook_to(bnn_model *m, const float *theta, const float *dout,
                                 bnn__curv_hook hook, void *ctx, int64_t first);

/* bnn_laplace_glm at nprior scalar prior precisions at once (the posterior's σ; per-layer
 * precisions it holds are not used): one pass of the network over x, f_var nprior blocks of
 * n × K × K, each equal to the last bit to bnn_laplace_glm's after bnn_laplace_set_prior with
 * that precision (src/fit/laplace.c; bnn_laplace_predict_priors). fn names the caller in
 * messages. */
int bnn__laplace_glm_priors(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n,
                            const double *prior_precs, int64_t nprior, double *f_mu,
                            double *f_var, const char *fn);

/* The inputs a GLM pass of la over m takes per chunk (bnn_laplace_glm's; the chunks of a call
 * start at its first input): calls that start at multiples of it give every input the values a
 * single call would. */
int bnn__laplace_glm_chunk(const bnn_laplace *la, const bnn_model *m, int64_t *nb,
                           const char *fn);
/* The bytes of 1/(hf λ + δ) rows a GLM pass over several prior precisions holds at once (256 MiB;
 * more precisions take more passes, each precision's values the same). Tests lower it. */
extern size_t bnn__glm_prior_budget;

/* Laplace internals (src/fit/laplace.c), for tests against float64 references:
 * bnn_laplace_new with a double-precision mean, and the eigenvalues of a Kronecker factor
 * (factor 0 = B, 1 = A) of block `block`. */
int bnn__laplace_new_f64(bnn_laplace **out, bnn_curv *c, const double *mean, bnn_task task);
int bnn__laplace_kron_eigvals(const bnn_laplace *la, int64_t block, int factor, const double **vals,
                              int64_t *n);
/* bnn_laplace_new_from_params for a full curvature whose eigendecomposition is known (a file
 * that saved it): *eigvec (P × P, eigenvectors as columns, (*eigvec)[i·P + k], from malloc) and
 * eigval (P, ascending), trusted, so the caller checks them against the curvature. The posterior
 * takes *eigvec over and sets it to NULL (the caller frees it if still set). Other structures
 * ignore both. */
int bnn__laplace_new_eig(bnn_laplace **out, bnn_curv *c, const float *params, bnn_task task,
                         double **eigvec, const double *eigval);
/* A full posterior's eigendecomposition of its curvature, in the layout above (borrowed). */
int bnn__laplace_full_eig(const bnn_laplace *la, const double **eigvec, const double **eigval);
/* Marks la as a VON posterior (bnn_von_last_layer's): its precision
 * is q's, not a curvature plus a prior to be tuned, so the marginal-likelihood optimisers refuse
 * it. */
void bnn__laplace_set_von(bnn_laplace *la);
/* BNN_ESHAPE (messages prefixed with fn) unless the posterior's subset lies within m's parameters
 * and is whole Linear layers of m, in model order, with Kronecker blocks that match them, and m
 * has the posterior's number of outputs: what the GLM predictive and sampling into m's weights
 * rely on (the same check as bnn__laplace_glm_chunk's). */
int bnn__laplace_check_model(const bnn_laplace *la, const bnn_model *m, const char *fn);
/* bnn_posterior_from_laplace with its messages naming the posterior what ("VON posterior" for
 * a file of bnn von, which keeps the Laplace layout). */
int bnn__posterior_from_laplace(bnn_posterior **out, const bnn_model *m, bnn_laplace *la,
                                const char *what);
/* The task the posterior was fitted for. */
bnn_task bnn__laplace_task(const bnn_laplace *la);
/* The power of 1/σ² that scales the posterior's curvature: 2 for the empirical Fisher of a
 * Gaussian likelihood with a free σ, else 1 (src/fit/laplace.c, hpow). */
int bnn__laplace_hpow(const bnn_laplace *la);

/* Whether text[0..n) is JSON that cJSON accepts, found without allocating (src/io/safetensors.c):
 * a failed parse of such text ran out of memory. */
bool bnn__json_syntax_ok(const char *text, size_t n);

/* Monte-Carlo over linearised logits (src/predict/predict.c): for b inputs with logit mean fm
 * (b × k) and covariance fv (b × k × k), probs (b × k) averages softmax over S draws from rng's
 * stream (with log_probs: its logarithm); mi (b, may be NULL) the mutual information of the
 * draws. first: the number of the first input, which places its draws in the stream (input
 * first + i at counter rng->counter + (first + i)·S·⌈k/4⌉; rng is not advanced) and names it in
 * messages. A covariance that is not finite is BNN_EDIVERGED (as the probit's non-finite
 * predictive), one not positive semi-definite BNN_EINVAL, each naming the first such input. */
int bnn__mc_link(double *probs, double *mi, const double *fm, const double *fv, int64_t b,
                 int64_t k, int64_t S, const bnn_rng *rng, bool log_probs, int64_t first);
/* bnn_probit, or with log_probs the logarithms of its probabilities (src/fit/laplace.c). */
void bnn__probit(double *out, const double *f_mu, const double *f_var, int64_t n, int64_t k,
                 bool log_probs);
/* The Laplace bridge (bnn_laplace_bridge; norm: bnn_laplace_bridge_norm); with log_probs the
 * log-probabilities; mi (n, may be NULL) its Dirichlet's mutual information; *bad (may be NULL)
 * the first row without a Dirichlet (logits that are not finite, or a variance after the
 * zero-sum correction that is not positive beyond rounding), else −1. 0 or BNN_ENOMEM. */
int bnn__bridge(double *out, const double *f_mu, const double *f_var, int64_t n, int64_t k,
                bool norm, bool log_probs, double *mi, int64_t *bad);
/* g(x) = ψ(x + 1) − ln x from lx = ln x (the bridge's mutual information, a sum of p_i g(α_i)). */
double bnn__dirichlet_g(double lx);
/* log((1/S) Σ_s p_s) from lse = log Σ_s p_s. At most 0: S samples of p = 1 can sum by
 * log-sum-exp to up to 9e-16 above log S, a probability 1 + 2e-15. */
static inline double bnn__log_mean(double lse, int64_t S) {
    const double l = lse - log((double)S);
    return l > 0.0 ? 0.0 : l;
}

/* A momentum below FLT_MIN in magnitude, stored as 0. A weight whose gradient is exactly 0 from
 * some step on (one on a pixel that is 0 in every image of the later batches: a tenth of the
 * Fashion-MNIST MLP's weights) has its momentum decay by β1 into the subnormals and stay there
 * (0.9 · 4·2⁻¹⁴⁹ rounds back to 4·2⁻¹⁴⁹), and on Intel CPUs an operation on a subnormal is a
 * microcode assist of about a hundred cycles: an AdamW epoch took 1.2 s instead of 0.86 s
 * (2026-12-06). Such a momentum moves its weight by under 1e-30, so the weights stay the same to
 * the bit (checked over three epochs of AdamW, SGD and IVON); only the stored state differs from
 * PyTorch's, below FLT_MIN. A compare and a blend: the loops stay vectorised. */
static inline float flush_subnormal(float x) { return fabsf(x) < FLT_MIN ? 0.0f : x; }

/* A float's bits and back (memcpy: no aliasing question; compilers emit a move). For the
 * branchless logarithms and exponentials of rng.c and mfvi.c. */
static inline uint32_t bnn__f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float bnn__u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The range reduction of the branchless logarithms (Box–Muller's in rng.c, MFVI's in mfvi.c):
 * a positive normal float x = 2^j m with m in [√½, √2), exactly, from x's bits moved by those of
 * √½. Returns m; j in *j. */
static inline float bnn__log_reduce(float x, int32_t *j) {
    const uint32_t ix = bnn__f2u(x) + (0x3f800000u - 0x3f3504f3u);
    *j = (int32_t)(ix >> 23) - 127;
    return bnn__u2f((ix & 0x007fffffu) + 0x3f3504f3u);
}

/* eˣ for x ≤ 0 (a NaN stays NaN), branchless in float so that loops over it vectorise (libm's
 * expf does not without -ffast-math), and rounding the same on every instruction set under the
 * build's -ffp-contract=off (MFVI's softplus, the tanh and GELU layers). Below −87 it is 0 (e⁻⁸⁷
 * = 1.6e-38 is the last normal float it gives; subnormal results would cost microcode assists,
 * see flush_subnormal), computed with x held at −87 so that k stays in range. x = k ln 2 + r
 * with k = round(x / ln 2), taken by adding 1.5·2²³ (which leaves k in the low bits of the sum),
 * and ln 2 in two parts (Cody & Waite: 0.693359375 has 9 bits, so k times it is exact), so
 * |r| ≤ ln 2 / 2 + ulp; e^r by its Taylor series to r⁷ (truncation below 6e-9 relative); 2^k
 * from k's bits. */
static inline float bnn__exp_nonpos(float x0) {
    const float x = x0 < -87.0f ? -87.0f : x0;
    const float v = x * 1.44269504f + 12582912.0f;
    const float k = v - 12582912.0f;
    const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    const float p =
        1.0f + r * (1.0f + r * (0.5f + r * (1.66666667e-1f + r * (4.16666667e-2f +
                    r * (8.33333333e-3f + r * (1.38888889e-3f + r * 1.98412698e-4f))))));
    /* 2^k for k in [−126, 0]: in unsigned arithmetic, so that no conversion is undefined */
    const float e = p * bnn__u2f((bnn__f2u(v) - bnn__f2u(12582912.0f) + 127u) << 23);
    return x0 < -87.0f ? 0.0f : e;
}

/* The Linear layers of a curvature's subset: parameters per layer (weight and bias), in order
 * (0 layers when unknown); set by bnn_curv_compute, or from a file. */
int bnn__curv_layers(const bnn_curv *c, int64_t *nlayers, const int64_t **sizes);
int bnn__curv_set_layers(bnn_curv *c, int64_t nlayers, const int64_t *sizes);

/* The likelihood a curvature was computed for: 0 with *kind set, or −1 when unknown (built from
 * arrays without one; a Laplace posterior then follows its task). */
int bnn__curv_lik(const bnn_curv *c, bnn_lik_kind *kind);
void bnn__curv_set_lik(bnn_curv *c, bnn_lik_kind kind);

/* The curvature a curvature object holds (GGN, sampled Fisher or empirical Fisher): 0 with *kind
 * set, or −1 when unknown (built from arrays; a posterior then scales it as a GGN). */
int bnn__curv_kind(const bnn_curv *c, bnn_curvature *kind);
void bnn__curv_set_kind(bnn_curv *c, bnn_curvature kind);

/* The subset's layer sizes for a Laplace posterior whose curvature does not record them
 * (src/fit/laplace.c); resets the prior to the scalar δ. */
int bnn__laplace_set_layout(bnn_laplace *la, int64_t nlayers, const int64_t *sizes);

/* Likelihood internals (src/lik/lik.c) for the curvature pass and the predictive; kind is the
 * likelihood, k the network's output width.
 * bnn__lik_curv_state: the example's loss as the curvature records it (laplace-torch's
 *   convention: cross-entropy; ½ Σ (f − y)² for the Gaussian at σ = 1; the full NLL for
 *   Bernoulli and heteroscedastic) and its state st (k doubles) that the rows are formed from:
 *   softmax p; the residual f − y; p = sigmoid(f); (μ − y, e^{−η}).
 * bnn__lik_factor_col: column c of L with L Lᵀ = Λ, the output Hessian (Fisher for the
 *   heteroscedastic Gaussian) at σ = 1, into d (k floats); Λ has k columns.
 * bnn__lik_out_hess: Λ[i][j]; bnn__lik_diag_hess: Λ is diagonal for every example.
 * bnn__lik_grad_row: ∂loss/∂f at the example's label (the empirical Fisher's row).
 * bnn__lik_sample_row: the score at a label drawn from the model (the sampled Fisher's row),
 *   consuming bnn__lik_sample_blocks(kind, k) blocks of rng at most.
 * bnn__lik_log_probs: the class log-probabilities (bnn_lik_pred_dim values) of outputs f with
 *   the logits divided by T.
 * bnn__lik_noise: per target the mean and the noise variance of the Gaussian at outputs f. */
double bnn__lik_curv_state(bnn_lik_kind kind, double *st, const float *f, int64_t k,
                           int32_t label, const float *target);
void bnn__lik_factor_col(bnn_lik_kind kind, float *d, const double *st, int64_t k, int64_t c);
double bnn__lik_out_hess(bnn_lik_kind kind, const double *st, int64_t i, int64_t j);
bool bnn__lik_diag_hess(bnn_lik_kind kind);
void bnn__lik_grad_row(bnn_lik_kind kind, float *d, const double *st, int64_t k, int32_t label);
uint64_t bnn__lik_sample_blocks(bnn_lik_kind kind, int64_t k);
void bnn__lik_sample_row(bnn_lik_kind kind, float *d, const double *st, int64_t k, bnn_rng *rng);
void bnn__lik_log_probs(bnn_lik_kind kind, double *lp, const float *f, int64_t k, double T);
void bnn__lik_noise(bnn_lik_kind kind, double *mean, double *noise_var, const float *f, int64_t k,
                    double sigma);

/* The shortest decimal text (at most 17 digits) that reads back as the same double. */
void bnn__fmt_double(char *buf, size_t len, double v);

/* Checks that a dataset fits a model and its likelihood: features = inputs; the likelihood serves
 * the data's task; classes ≤ the predictive's width (classification) or targets = it
 * (regression); not empty. BNN_ESHAPE / BNN_EINVAL naming both sizes. */
int bnn__check_data(const bnn_model *m, const bnn_dataset *ds);
/* The larger of MFVI's KL gradient factors, kl_weight·λ/n for μ and kl_weight/n for σ: they are
 * used as floats, so beyond FLT_MAX every step's gradient is infinite (fit/mfvi.c), and from
 * about 1e20 the gradients' squares overflow Adam's second moment (fit/train.c). */
double bnn__mfvi_kl_factor(double kl_weight, double prior_prec, int64_t n_train);

/* bnn_curv_compute: */
/* The automatic batch size: the last layer needs one forward pass per batch and no backward pass,
 * so a large batch costs only activations (about 6 MiB for the Fashion-MNIST MLP) and gives the
 * matrix products of both the forward pass and the curvature more rows per call (bench_laplace:
 * the input factor's symmetric update runs about 1.4 times faster with 1024 rows than with 256).
 * A diagonal over layers with backward passes also takes 1024: each pass's GEMM of squares
 * ((G∘G)ᵀ(A∘A), out × in over the batch) is a product over the batch, so more rows per call
 * amortise packing its operands (bench_laplace: --subset all --hessian diag, exact GGN, 6.0 s with
 * 1024 rows against 7.2–8.3 s with 256). Other passes with backward passes keep 256 rows (kron
 * measured slower with more: 3.7 s at 256, 4.9 s at 1024; the per-example rows of `full` are
 * b × P). */
#define CURV_BATCH 256
#define CURV_BATCH_LL 1024
#define CURV_BATCH_DIAG 1024


#endif
