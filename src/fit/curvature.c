/* Curvature of the summed training loss for Laplace approximations ("Laplace Redux", Daxberger,
 * Kristiadi, Immer, Eschenhagen, Bauer & Hennig, NeurIPS 2021), with the conventions of
 * laplace-torch (github.com/aleximmer/Laplace) that fixtures/laplace/README.md spells out:
 *
 *   loss = Σ_n CE(f(x_n), y_n)   or   ½ Σ_n (f(x_n) − y_n)²            (README convention 1)
 *   GGN  H = Σ_n J_nᵀ Λ_n J_n,  Λ_n = diag(p_n) − p_n p_nᵀ (softmax) or I (Gaussian, σ = 1)
 *   EF   H = Σ_n g_n g_nᵀ,      g_n = J_nᵀ ∂loss_n/∂f                  (README convention 2)
 *
 * with J_n = ∂f(x_n)/∂θ over the chosen subset of parameters, everything summed (not averaged)
 * over the N training points and taken at σ = 1 (the posterior applies hf = 1/σ² later; hf² to
 * the empirical Fisher of a Gaussian likelihood, whose gradients carry 1/σ² each). The
 * subset is a set of whole Linear layers (all, the last, or any chosen ones); its parameters are
 * the selected layers' weights and biases concatenated in model order, which in the flat vector
 * are one or more runs (bnn_curv_segment), so H over {0, 2} is H over all layers restricted to
 * the rows and columns of layers 0 and 2.
 *
 * How it is computed. The model's curvature hook (bnn__model_backward_hook) runs a backward pass
 * of the last forward and hands us, for every Linear layer, its input activations A (b × in) and
 * the gradient G (b × out) of whatever was fed in as dout with respect to its output s = A Wᵀ + b.
 * Row r of G is v_rᵀ ∂f_r/∂s_r for the vector v_r = dout[r, :], so the per-example "gradient" of
 * vᵀf with respect to the layer's weights is the outer product G_r ⊗ A_r (W row-major: entry
 * o·in + i is G[r,o]·A[r,i]) and with respect to its bias G_r. Every structure below is built
 * from such rows:
 *
 *  - GGN (exact). Factor Λ_n = L_n L_nᵀ and run K backward passes per batch, pass c with
 *    dout[r, :] = L_r[:, c]; then J_nᵀ Λ_n J_n = Σ_c (J_nᵀ L_n[:,c]) (J_nᵀ L_n[:,c])ᵀ is a sum of
 *    K outer products of per-example rows. For the softmax,
 *        L = diag(√p) − p √pᵀ,  column c = √p_c (e_c − p),
 *    because L Lᵀ = diag(p) − 2 p pᵀ + p (√pᵀ√p) pᵀ = diag(p) − p pᵀ as Σ_c p_c = 1. (This is the
 *    symmetric factorisation of the softmax output Hessian that BackPACK back-propagates for its
 *    exact GGN, Dangel, Kunstner & Hennig, "BackPACK: Packing more into backprop", ICLR 2020.) For
 * the Gaussian likelihood at σ = 1, Λ = I and L = I; for Bernoulli Λ = L² = p(1 − p); for the
 *    heteroscedastic Gaussian Λ is the Fisher diag(e^{−η}, ½) (src/lik/lik.c says why), with the
 *    loss its full NLL. Every likelihood-specific piece (state, factor, rows) is in src/lik/lik.c.
 *  - EF. One pass with dout = ∂loss_n/∂f = p_n − e_{y_n} (softmax) or f_n − y_n (Gaussian): the
 *    rows are the true per-example gradients g_n.
 *  - GGN-MC, the sampled Fisher (Martens & Grosse, "Optimizing Neural Networks with
 *    Kronecker-factored Approximate Curvature", ICML 2015; laplace-torch's
 *    stochastic=True backends with one sample). One pass with dout = p_n − e_ỹ, ỹ ~ Cat(p_n):
 *    E[(p − e_ỹ)(p − e_ỹ)ᵀ] = diag(p) − p pᵀ = Λ, so its expectation is the exact GGN. For the
 *    Gaussian, ỹ ~ N(f, σ²) and the score of the σ-likelihood is (f − ỹ)/σ², whose outer product
 *    has expectation I/σ² = hf·Λ; since H is defined at σ = 1 (hf is applied by the posterior),
 *    the score is multiplied by σ, giving dout = (f − ỹ)/σ = −ε with ε ~ N(0, I). σ therefore
 *    cancels: the draw is the same for every σ, and dout = ε is used directly (the sign drops
 *    out of d dᵀ; no rounding through f + σε). bnn_curv_params.sigma is validated but changes
 *    nothing.
 *
 * Structures, from the rows (all summed over the passes c and the examples n; matrix-free low
 * rank has no rows, see "low rank" below):
 *  - diag: Σ (G∘G)ᵀ(A∘A) for a weight matrix (out × in, row-major like W) and Σ_r G∘G for a bias.
 *    This is exact for the GGN and EF because each row is one rank-one per-example gradient.
 *  - kron (KFAC, Martens & Grosse 2015, Sec. 3; with the exact output factorisation above it is
 *    KFLR, Botev, Ritter & Barber, "Practical Gauss-Newton Optimisation for Deep Learning",
 *    ICML 2017): per Linear layer B = Σ GᵀG (out × out, summed) and A = (1/N) Σ AᵀA
 *    (in × in, averaged; laplace-torch's Kron.kfacs, where each batch's A is scaled by M/N so the
 *    factors do not depend on the batch size). A does not depend on the pass, so it is taken from
 *    the first pass only. The weight block is B ⊗ A and the bias block is B alone.
 *    laplace-torch stores regression weight blocks as (√2·B, A/√2) (curvlinops' MSELoss has
 *    output Hessian 2 and laplace-torch spreads its ½ over both factors); bnn stores the plain
 *    (B, A) for both likelihoods: only the product B ⊗ A is defined, and plain factors make the
 *    weight and bias blocks of a layer share B.
 *  - lowrank: the top-r eigenpairs of `full`'s H, from the dense matrix or matrix-free through
 *    the linearised network (see "low rank" below).
 *  - full: the per-example rows over the subset (b × P per pass), H += JᵀJ.
 * The symmetric products (GᵀG, AᵀA, JᵀJ) are symmetric rank-b updates (bnn_syrk, or bnn__dsyrk
 * for full: the upper triangle only, half the multiply-adds of a GEMM), mirrored once at the end.
 *
 * When the subset is the network's last Linear layer, none of this needs a backward pass: see
 * "the last layer" below (one forward pass per batch, the output-space curvature formed in
 * double, one symmetric update for kron's input factor, one small GEMM for diag, and for full
 * K(K+1)/2 symmetric updates instead of K passes of per-example rows).
 *
 * Precision. The model runs in float32, so A and G carry float32 rounding (~6e-8 relative) to
 * begin with. The products over a batch for kron and diag (GᵀG, AᵀA, (G∘G)ᵀ(A∘A)) go through
 * bnn_gemm and bnn_syrk in float, which is where nearly all their work is; a float sum of at most
 * K·b products of float data adds well under 1e-5 relative error to an entry. Each batch's result
 * is then added into double accumulators, so the error does not grow with N, and the loss, the
 * bias sums and the last layer's output-space sums are accumulated in double directly. The
 * fixtures ask for 1e-4 and we measure ~1e-7 (see tests/test_curvature.c).
 *   `full` forms its rows in double (products of two floats are exact there) and sums JᵀJ in
 * double (bnn__dsyrk; about twice the time of float). Entrywise a float sum would do, but its
 * errors are ~1e-7 of the largest eigenvalue in every direction, and the smallest eigenvalues,
 * which log det(H + δI) compares with δ, are what `full` is chosen for: a heteroscedastic model
 * predicting little noise (e^{−η} ~ 1e4 in Λ) had eigenvalues of −0.78 at λ_max 8.8e6 where the
 * true ones are ~0, a log marginal likelihood 1.2 nats off and no marglik optimum (log of a
 * negative λ + δ). In double the matrix is positive semi-definite to ~1e-16 of λ_max: the float
 * rows only move it to the GGN of slightly other Jacobians, which is positive semi-definite too.
 * Over the last layer, BNN_SUMS_FLOAT keeps float sums (half the time: Fashion-MNIST's 2570 × 2570
 * GGN in 1.2 instead of 2.4 s), reported by bnn_curv_unit so that a caller can sum again in
 * double when unit × λ_max is not small beside δ (bnn_laplace_rounding; the CLI's laplace and
 * VON do). Kronecker factors are summed in float (their eigenvalues clipped at 0) unless
 * BNN_SUMS_DOUBLE: then G and A go into double first and their exact products are summed in
 * double (bnn__dsyrk), for the same ill-conditioned models (the CLI redoes a kron fit so). */
#include "nn/layer.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* One block of a Kronecker-factored curvature: a weight block has two factors (f0 = B, out × out;
 * f1 = A, in × in), a bias block one (f0 = B; f1 NULL, n1 = 0). */
struct curv_block {
    int nf;
    int64_t n0, n1;
    double *f0, *f1;
};

struct bnn_curv {
    bnn_hessian structure;
    int64_t P, offset, N, K;
    double loss;
    /* The unit roundoff of the sums that formed it, for bnn_curv_unit: 2^-24 (float: kron, and
     * full over the last layer, unless BNN_SUMS_DOUBLE / with BNN_SUMS_FLOAT), 2^-53 (double), 0
     * (diag, whose entries round relatively; a curvature from arrays or a file: unknown). */
    double unit;
    double *diag;  /* diag: P */
    double *dense; /* full: P × P */
    int64_t nblocks;
    struct curv_block *blocks; /* kron */
    /* lowrank: rank r, U (P × r, row-major: U[i·r + j] is component i of eigenvector j, so
     * column j is the eigenvector of eig[j]) and eig (r, descending). */
    int64_t rank;
    double *U, *eig;
    /* Where the subset lies in the flat vector: nseg maximal runs (seg_off, seg_len), whose
     * concatenation is the subset's order; nseg = 0 means the single run [offset, offset + P)
     * (a curvature built from arrays). offset is always the first run's start. */
    int64_t nseg;
    int64_t *seg_off, *seg_len;
    /* The groups of a per-layer prior precision, in subset order: parameters per group; 0 when
     * unknown (built from arrays without a layout). bnn_curv_compute records one group per
     * parameter tensor (each Linear layer's weight, then its bias), laplace-torch's "layers";
     * files written before that record one per Linear layer (weight and bias together). */
    int64_t nlayers;
    int64_t *layer_sizes;
    /* The likelihood the curvature was computed for (set by bnn_curv_compute, or from a file);
     * unknown (has_lik false) for a curvature built from arrays without one. */
    bool has_lik;
    bnn_lik_kind lik;
    /* Which curvature (GGN, sampled Fisher, empirical Fisher), set by bnn_curv_compute or from a
     * file; unknown (has_kind false) for one built from arrays. The posterior needs it for the
     * empirical Fisher of a Gaussian likelihood, which scales with the noise as 1/σ⁴, not 1/σ². */
    bool has_kind;
    bnn_curvature kind;
};

int bnn__curv_lik(const bnn_curv *c, bnn_lik_kind *kind) {
    if (c->has_lik) *kind = c->lik;
    return c->has_lik ? 0 : -1;
}

void bnn__curv_set_lik(bnn_curv *c, bnn_lik_kind kind) {
    c->has_lik = true, c->lik = kind;
}

int bnn__curv_kind(const bnn_curv *c, bnn_curvature *kind) {
    if (c->has_kind) *kind = c->kind;
    return c->has_kind ? 0 : -1;
}

void bnn__curv_set_kind(bnn_curv *c, bnn_curvature kind) {
    c->has_kind = true, c->kind = kind;
}

int bnn__curv_layers(const bnn_curv *c, int64_t *nlayers, const int64_t **sizes) {
    *nlayers = c->nlayers, *sizes = c->layer_sizes;
    return 0;
}

int bnn__curv_set_layers(bnn_curv *c, int64_t nlayers, const int64_t *sizes) {
    int64_t s = 0;
    for (int64_t i = 0; i < nlayers; i++) {
        if (sizes[i] < 1) return bnn__error(BNN_EINVAL, "layer %lld has no parameters", (long long)i);
        if (sizes[i] > c->P - s) /* more than the curvature holds (and no overflow) */
            return bnn__error(BNN_ESHAPE, "the layers hold more than the curvature's %lld "
                              "parameters", (long long)c->P);
        s += sizes[i];
    }
    if (nlayers < 1 || s != c->P)
        return bnn__error(BNN_ESHAPE, "%lld layers hold %lld parameters, the curvature %lld",
                          (long long)nlayers, (long long)s, (long long)c->P);
    int64_t *copy = malloc((size_t)nlayers * sizeof *copy);
    if (!copy) return bnn__error(BNN_ENOMEM, "out of memory");
    memcpy(copy, sizes, (size_t)nlayers * sizeof *copy);
    free(c->layer_sizes);
    c->layer_sizes = copy, c->nlayers = nlayers;
    return 0;
}

/* CURV_BATCH, CURV_BATCH_LL and CURV_BATCH_DIAG (the automatic batch sizes) are in
 * core/internal.h, where bench_laplace reads them too. */

/* How the last-layer full curvature's K(K+1)/2 blocks (struct ll_ctx) use the threads, decided
 * by K alone so that the bits never depend on the thread count: with at least LL_FULL_WHOLE
 * blocks the threads take whole blocks, each with its own scratch, and each block's symmetric
 * update is one single-threaded call (bnn__syrk_serial, faster than tiles on one thread); with
 * fewer (K <= 2: regression, Bernoulli, heteroscedastic) the blocks run one after another and
 * each update spreads bnn_syrk's tiles over the threads. Returns the threads that take blocks. */
#define LL_FULL_WHOLE 6
static bool ll_full_whole(int64_t K) { return K * (K + 1) / 2 >= LL_FULL_WHOLE; }
static int64_t ll_full_threads(int64_t K) { return ll_full_whole(K) ? bnn_get_threads() : 1; }

struct bnn_curv_params bnn_curv_default_params(void) {
    struct bnn_curv_params p = {
        .curvature = BNN_CURV_GGN,
        .hessian = BNN_HESS_KRON,
        .subset = BNN_SUBSET_LAST_LAYER,
        .batch_size = 0, /* automatic: CURV_BATCH_LL, CURV_BATCH_DIAG or CURV_BATCH */
        .seed = 0,
        .sigma = 1.0,
        .max_bytes = 0.0, /* BNN_MEMORY_LIMIT, else the machine's memory */
        .rank = 20,
    };
    return p;
}

void bnn_curv_free(bnn_curv *c) {
    if (!c) return;
    bnn__free(c->diag);
    bnn__free(c->dense);
    bnn__free(c->U);
    bnn__free(c->eig);
    if (c->blocks)
        for (int64_t i = 0; i < c->nblocks; i++) {
            bnn__free(c->blocks[i].f0);
            bnn__free(c->blocks[i].f1);
        }
    free(c->blocks);
    free(c->layer_sizes);
    free(c->seg_off), free(c->seg_len);
    free(c);
}

bnn_hessian bnn_curv_structure(const bnn_curv *c) { return c->structure; }
int64_t bnn_curv_nparams(const bnn_curv *c) { return c->P; }
int64_t bnn_curv_offset(const bnn_curv *c) { return c->offset; }

int64_t bnn_curv_nsegments(const bnn_curv *c) { return c->nseg ? c->nseg : 1; }

int bnn_curv_segment(const bnn_curv *c, int64_t i, int64_t *offset, int64_t *len) {
    if (!c || i < 0 || i >= bnn_curv_nsegments(c))
        return bnn__error(BNN_EINVAL, "bnn_curv_segment: segment %lld out of range (%lld segments)",
                          (long long)i, c ? (long long)bnn_curv_nsegments(c) : 0LL);
    if (offset) *offset = c->nseg ? c->seg_off[i] : c->offset;
    if (len) *len = c->nseg ? c->seg_len[i] : c->P;
    return 0;
}

void bnn_curv_gather(const bnn_curv *c, const float *full, float *sub) {
    if (!c->nseg) {
        memcpy(sub, full + c->offset, (size_t)c->P * sizeof(float));
        return;
    }
    for (int64_t i = 0, at = 0; i < c->nseg; at += c->seg_len[i], i++)
        memcpy(sub + at, full + c->seg_off[i], (size_t)c->seg_len[i] * sizeof(float));
}

void bnn_curv_scatter(const bnn_curv *c, const float *sub, float *full) {
    if (!c->nseg) {
        memcpy(full + c->offset, sub, (size_t)c->P * sizeof(float));
        return;
    }
    for (int64_t i = 0, at = 0; i < c->nseg; at += c->seg_len[i], i++)
        memcpy(full + c->seg_off[i], sub + at, (size_t)c->seg_len[i] * sizeof(float));
}

int bnn_curv_set_segments(bnn_curv *c, int64_t nseg, const int64_t *offsets, const int64_t *lens) {
    const char *fn = "bnn_curv_set_segments";
    if (!c || nseg < 1 || !offsets || !lens)
        return bnn__error(BNN_EINVAL, "%s: need a curvature and at least one segment", fn);
    int64_t sum = 0;
    for (int64_t i = 0; i < nseg; i++) {
        if (offsets[i] < 0 || lens[i] < 1 || lens[i] > INT64_MAX - offsets[i])
            return bnn__error(BNN_EINVAL,
                              "%s: segment %lld (offset %lld, length %lld) is not valid", fn,
                              (long long)i, (long long)offsets[i], (long long)lens[i]);
        if (i && offsets[i] < offsets[i - 1] + lens[i - 1])
            return bnn__error(BNN_EINVAL,
                              "%s: segment %lld (offset %lld) starts before segment %lld ends "
                              "(at %lld); segments must be ascending without overlap",
                              fn, (long long)i, (long long)offsets[i], (long long)(i - 1),
                              (long long)(offsets[i - 1] + lens[i - 1]));
        sum += lens[i];
    }
    if (sum != c->P)
        return bnn__error(BNN_EINVAL,
                          "%s: the segments hold %lld parameters, the curvature P = %lld", fn,
                          (long long)sum, (long long)c->P);
    int64_t *so = malloc((size_t)nseg * sizeof *so), *sl = malloc((size_t)nseg * sizeof *sl);
    if (!so || !sl) {
        free(so), free(sl);
        return bnn__error(BNN_ENOMEM, "out of memory");
    }
    int64_t n = 0; /* runs that touch are merged, so the form is unique */
    for (int64_t i = 0; i < nseg; i++) {
        if (n && so[n - 1] + sl[n - 1] == offsets[i])
            sl[n - 1] += lens[i];
        else
            so[n] = offsets[i], sl[n] = lens[i], n++;
    }
    free(c->seg_off), free(c->seg_len);
    c->seg_off = so, c->seg_len = sl, c->nseg = n, c->offset = so[0];
    return 0;
}

/* dst's placement in the flat vector from src (same P). */
static int copy_segments(bnn_curv *dst, const bnn_curv *src) {
    dst->offset = src->offset;
    return src->nseg ? bnn_curv_set_segments(dst, src->nseg, src->seg_off, src->seg_len) : 0;
}
int64_t bnn_curv_ndata(const bnn_curv *c) { return c->N; }
int64_t bnn_curv_noutputs(const bnn_curv *c) { return c->K; }
double bnn_curv_loss(const bnn_curv *c) { return c->loss; }
double bnn_curv_unit(const bnn_curv *c) { return c->unit; }
const double *bnn_curv_diag(const bnn_curv *c) {
    return c->structure == BNN_HESS_DIAG ? c->diag : NULL;
}
const double *bnn_curv_dense(const bnn_curv *c) {
    return c->structure == BNN_HESS_FULL ? c->dense : NULL;
}
int bnn_curv_lowrank(const bnn_curv *c, const double **U, const double **eig, int64_t *r) {
    if (!c || c->structure != BNN_HESS_LOWRANK)
        return bnn__error(BNN_EINVAL, "bnn_curv_lowrank: the curvature is not low-rank");
    if (U) *U = c->U;
    if (eig) *eig = c->eig;
    if (r) *r = c->rank;
    return 0;
}

int64_t bnn_curv_nblocks(const bnn_curv *c) {
    return c->structure == BNN_HESS_KRON ? c->nblocks : 0;
}

int bnn_curv_block(const bnn_curv *c, int64_t i, int *nfactors, const double **f0, int64_t *n0,
                   const double **f1, int64_t *n1) {
    if (!c || c->structure != BNN_HESS_KRON)
        return bnn__error(BNN_EINVAL, "bnn_curv_block: the curvature is not Kronecker-factored");
    if (i < 0 || i >= c->nblocks)
        return bnn__error(BNN_EINVAL, "bnn_curv_block: block %lld out of range (%lld blocks)",
                          (long long)i, (long long)c->nblocks);
    const struct curv_block *b = &c->blocks[i];
    if (nfactors) *nfactors = b->nf;
    if (f0) *f0 = b->f0;
    if (n0) *n0 = b->n0;
    if (f1) *f1 = b->f1;
    if (n1) *n1 = b->n1;
    return 0;
}

/* ------------------------------------------------------------------ names */

static const char *const curv_names[] = {[BNN_CURV_GGN] = "ggn", [BNN_CURV_GGN_MC] = "ggn-mc",
                                         [BNN_CURV_EF] = "ef"};
static const char *const hess_names[] = {[BNN_HESS_DIAG] = "diag", [BNN_HESS_KRON] = "kron",
                                         [BNN_HESS_FULL] = "full", [BNN_HESS_LOWRANK] = "lowrank"};
#define NCURV ((int)(sizeof curv_names / sizeof *curv_names))
#define NHESS ((int)(sizeof hess_names / sizeof *hess_names))

const char *bnn_curvature_name(bnn_curvature c) {
    return (int)c >= 0 && (int)c < NCURV ? curv_names[c] : "?";
}

int bnn_curvature_parse(const char *name, bnn_curvature *out) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_curvature_parse: out is NULL");
    int i;
    const int rc = bnn__name_parse(curv_names, NCURV, name, "curvature", &i);
    if (!rc) *out = (bnn_curvature)i;
    return rc;
}

const char *bnn_hessian_name(bnn_hessian h) {
    return (int)h >= 0 && (int)h < NHESS ? hess_names[h] : "?";
}

int bnn_hessian_parse(const char *name, bnn_hessian *out) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_hessian_parse: out is NULL");
    int i;
    const int rc = bnn__name_parse(hess_names, NHESS, name, "Hessian structure", &i);
    if (!rc) *out = (bnn_hessian)i;
    return rc;
}

/* ------------------------------------------------------------------ construction helpers */

static const char *structure_name(bnn_hessian h) {
    switch (h) {
    case BNN_HESS_DIAG: return "diagonal";
    case BNN_HESS_KRON: return "Kronecker-factored";
    case BNN_HESS_FULL: return "full";
    case BNN_HESS_LOWRANK: return "low-rank";
    }
    return "?";
}

static double *alloc_doubles(int64_t n) {
    size_t bytes = bnn__bytes(n, sizeof(double));
    return bytes ? bnn__alloc(bytes) : NULL;
}

static float *alloc_floats(int64_t n) {
    size_t bytes = bnn__bytes(n, sizeof(float));
    return bytes ? bnn__alloc(bytes) : NULL;
}

/* An empty curvature with storage for the structure: diag P, dense P × P, or nblocks blocks of
 * sizes n0[i] (× n1[i] where has_f1[i]). Returns NULL when an allocation fails. */
static bnn_curv *curv_alloc(bnn_hessian structure, int64_t P, int64_t nblocks, const int64_t *n0,
                            const int64_t *n1, const bool *has_f1) {
    bnn_curv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->structure = structure;
    c->P = P;
    bool ok = true;
    if (structure == BNN_HESS_DIAG) {
        ok = (c->diag = alloc_doubles(P)) != NULL;
    } else if (structure == BNN_HESS_FULL) {
        ok = P <= INT64_MAX / P && (c->dense = alloc_doubles(P * P)) != NULL;
    } else {
        c->blocks = calloc((size_t)nblocks, sizeof *c->blocks);
        ok = c->blocks != NULL;
        if (ok) c->nblocks = nblocks;
        for (int64_t i = 0; ok && i < nblocks; i++) {
            struct curv_block *b = &c->blocks[i];
            b->nf = has_f1[i] ? 2 : 1;
            b->n0 = n0[i];
            b->n1 = has_f1[i] ? n1[i] : 0;
            ok = (b->f0 = alloc_doubles(b->n0 * b->n0)) != NULL;
            if (ok && has_f1[i]) ok = (b->f1 = alloc_doubles(b->n1 * b->n1)) != NULL;
        }
    }
    if (!ok) {
        bnn_curv_free(c);
        return NULL;
    }
    return c;
}

static int check_finite(const double *v, int64_t n, const char *what) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return bnn__error(BNN_EINVAL, "%s: entry %lld is not finite (%g)", what, (long long)i,
                              v[i]);
    return 0;
}

/* A curvature is positive semi-definite, so a symmetric n × n matrix of it has a non-negative
 * diagonal and equal mirrored entries (to rounding: 1e-9 of its largest entry), and a diagonal
 * or a spectrum has no negative value (beyond rounding, for eigenvalues). Catches a sign flip or
 * a damaged array, which would otherwise pass as a wrong posterior. */
static int check_psd_matrix(const double *A, int64_t n, const char *what) {
    double mx = 0.0;
    for (int64_t i = 0; i < n * n; i++) mx = fmax(mx, fabs(A[i]));
    for (int64_t i = 0; i < n; i++) {
        if (A[i * n + i] < 0.0)
            return bnn__error(BNN_EINVAL, "%s: diagonal entry %lld is negative (%g); a curvature "
                              "is positive semi-definite", what, (long long)i, A[i * n + i]);
        for (int64_t j = i + 1; j < n; j++)
            if (fabs(A[i * n + j] - A[j * n + i]) > 1e-9 * mx)
                return bnn__error(BNN_EINVAL, "%s: not symmetric at (%lld, %lld): %g vs %g", what,
                                  (long long)i, (long long)j, A[i * n + j], A[j * n + i]);
    }
    return 0;
}

static int check_nonneg(const double *v, int64_t n, double tol, const char *what) {
    double mx = 0.0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, fabs(v[i]));
    for (int64_t i = 0; i < n; i++)
        if (v[i] < -tol * mx)
            return bnn__error(BNN_EINVAL, "%s: entry %lld is negative (%g); a curvature is "
                              "positive semi-definite", what, (long long)i, v[i]);
    return 0;
}

int bnn_curv_from_arrays(bnn_curv **out, bnn_hessian structure, int64_t P, int64_t offset,
                         int64_t ndata, int64_t noutputs, double loss, const double *diag,
                         const double *dense, int64_t nblocks, const int64_t *n0, const int64_t *n1,
                         const double *const *f0, const double *const *f1) {
    const char *fn = "bnn_curv_from_arrays";
    if (!out) return bnn__error(BNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (structure != BNN_HESS_DIAG && structure != BNN_HESS_KRON && structure != BNN_HESS_FULL)
        return bnn__error(BNN_EINVAL, "%s: unknown structure %d", fn, (int)structure);
    if (P < 1 || offset < 0 || ndata < 0 || noutputs < 1)
        return bnn__error(BNN_EINVAL,
                          "%s: need P >= 1, offset >= 0, ndata >= 0 and noutputs >= 1 (got P=%lld, "
                          "offset=%lld, ndata=%lld, noutputs=%lld)",
                          fn, (long long)P, (long long)offset, (long long)ndata,
                          (long long)noutputs);
    if (!isfinite(loss)) return bnn__error(BNN_EINVAL, "%s: the loss is not finite", fn);
    if (structure == BNN_HESS_DIAG && !diag)
        return bnn__error(BNN_EINVAL, "%s: a diagonal curvature needs diag (P values)", fn);
    if (structure == BNN_HESS_FULL && !dense)
        return bnn__error(BNN_EINVAL, "%s: a full curvature needs dense (P x P values)", fn);
    if (structure == BNN_HESS_FULL && P > INT64_MAX / P)
        return bnn__error(BNN_ENOMEM, "%s: P = %lld is too large for a dense matrix", fn,
                          (long long)P);

    bool *has_f1 = NULL;
    if (structure == BNN_HESS_KRON) {
        if (nblocks < 1 || !n0 || !f0)
            return bnn__error(BNN_EINVAL, "%s: a Kronecker curvature needs nblocks >= 1, n0 and f0",
                              fn);
        has_f1 = calloc((size_t)nblocks, sizeof *has_f1);
        if (!has_f1) return bnn__error(BNN_ENOMEM, "out of memory");
        /* Every block must be described, and together they must cover exactly P parameters. */
        int64_t count = 0;
        for (int64_t i = 0; i < nblocks; i++) {
            has_f1[i] = f1 && f1[i];
            int64_t a = n0[i], b = has_f1[i] ? (n1 ? n1[i] : 0) : 1;
            if (!f0[i] || a < 1 || b < 1 || a > (1LL << 31) || b > (1LL << 31)) {
                free(has_f1);
                return bnn__error(BNN_EINVAL,
                                  "%s: block %lld: missing factor or bad size "
                                  "(n0=%lld, n1=%lld)",
                                  fn, (long long)i, (long long)a, (long long)b);
            }
            count += a * b;
            if (count > P) break;
        }
        if (count != P) {
            free(has_f1);
            return bnn__error(BNN_ESHAPE,
                              "%s: the %lld blocks cover %s%lld parameters, not P = "
                              "%lld",
                              fn, (long long)nblocks, count > P ? "more than " : "",
                              (long long)count, (long long)P);
        }
    }

    bnn_curv *c = curv_alloc(structure, P, nblocks, n0, n1, has_f1);
    free(has_f1);
    if (!c)
        return bnn__error(BNN_ENOMEM,
                          "%s: cannot allocate a %s curvature over %lld "
                          "parameters",
                          fn, structure_name(structure), (long long)P);
    c->offset = offset, c->N = ndata, c->K = noutputs, c->loss = loss;
    int rc = 0;
    if (structure == BNN_HESS_DIAG) {
        memcpy(c->diag, diag, (size_t)P * sizeof(double));
        rc = check_finite(c->diag, P, "the curvature's diagonal");
        if (!rc) rc = check_nonneg(c->diag, P, 0.0, "the curvature's diagonal");
    } else if (structure == BNN_HESS_FULL) {
        memcpy(c->dense, dense, (size_t)(P * P) * sizeof(double));
        rc = check_finite(c->dense, P * P, "the curvature matrix");
        if (!rc) rc = check_psd_matrix(c->dense, P, "the curvature matrix");
    } else {
        for (int64_t i = 0; i < nblocks && !rc; i++) {
            struct curv_block *b = &c->blocks[i];
            memcpy(b->f0, f0[i], (size_t)(b->n0 * b->n0) * sizeof(double));
            rc = check_finite(b->f0, b->n0 * b->n0, "a Kronecker factor");
            if (!rc) rc = check_psd_matrix(b->f0, b->n0, "a Kronecker factor");
            if (!rc && b->f1) {
                memcpy(b->f1, f1[i], (size_t)(b->n1 * b->n1) * sizeof(double));
                rc = check_finite(b->f1, b->n1 * b->n1, "a Kronecker factor");
                if (!rc) rc = check_psd_matrix(b->f1, b->n1, "a Kronecker factor");
            }
        }
    }
    if (rc) {
        bnn_curv_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* An empty low-rank curvature of rank r over P parameters (U and eig allocated), or NULL. */
static bnn_curv *lowrank_alloc(int64_t P, int64_t r) {
    bnn_curv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->structure = BNN_HESS_LOWRANK;
    c->P = P, c->rank = r;
    if (P > INT64_MAX / r || !(c->U = alloc_doubles(P * r)) || !(c->eig = alloc_doubles(r))) {
        bnn_curv_free(c);
        return NULL;
    }
    return c;
}

int bnn_curv_lowrank_from_arrays(bnn_curv **out, int64_t P, int64_t offset, int64_t ndata,
                                 int64_t noutputs, double loss, int64_t r, const double *U,
                                 const double *eig) {
    const char *fn = "bnn_curv_lowrank_from_arrays";
    if (!out) return bnn__error(BNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (P < 1 || offset < 0 || ndata < 0 || noutputs < 1 || r < 1 || r > P)
        return bnn__error(BNN_EINVAL,
                          "%s: need P >= 1, 1 <= r <= P, offset >= 0, ndata >= 0 and noutputs >= 1 "
                          "(got P=%lld, r=%lld, offset=%lld, ndata=%lld, noutputs=%lld)",
                          fn, (long long)P, (long long)r, (long long)offset, (long long)ndata,
                          (long long)noutputs);
    if (!U || !eig) return bnn__error(BNN_EINVAL, "%s: U (P x r) and eig (r) are required", fn);
    if (!isfinite(loss)) return bnn__error(BNN_EINVAL, "%s: the loss is not finite", fn);
    bnn_curv *c = lowrank_alloc(P, r);
    if (!c)
        return bnn__error(BNN_ENOMEM,
                          "%s: cannot allocate a rank-%lld curvature over %lld "
                          "parameters",
                          fn, (long long)r, (long long)P);
    c->offset = offset, c->N = ndata, c->K = noutputs, c->loss = loss;
    memcpy(c->U, U, (size_t)(P * r) * sizeof(double));
    memcpy(c->eig, eig, (size_t)r * sizeof(double));
    int rc = check_finite(c->U, P * r, "the low-rank curvature's eigenvectors");
    if (!rc) rc = check_finite(c->eig, r, "the low-rank curvature's eigenvalues");
    if (!rc) rc = check_nonneg(c->eig, r, 1e-4, "the low-rank curvature's eigenvalues");
    if (rc) {
        bnn_curv_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------ the curvature pass */

/* A Linear layer of the subset: its index in the model, its shape, and where its weight and
 * bias start relative to the subset's first parameter. */
#define BNN_MAX_CURV_LAYERS 256

struct lin {
    int64_t layer, in, out, w, b;
    int64_t block; /* kron: index of its weight block (the bias block follows) */
    int64_t sq;    /* diag: where its squared inputs start in struct pass's asq */
};

/* The subset's entry of model layer `layer`, or NULL when the layer is not in it. */
static const struct lin *find_lin(const struct lin *lin, int64_t nlin, int64_t layer) {
    for (int64_t i = 0; i < nlin; i++)
        if (lin[i].layer == layer) return &lin[i];
    return NULL;
}

/* State shared with the hook during one backward pass. */
struct pass {
    bnn_curv *c;
    const struct lin *lin;
    int64_t nlin;
    bool first; /* the first pass of the batch: the only one that adds to the A factors */
    /* Scratch: diag: sg (b × maxout), asq (b × in per layer: A∘A, formed in the first pass of
     * a batch and kept for the others), dacc (P: the batch's weight sums over its passes, in
     * float like full's, added into the double result once per batch); kron: prod
     * (max(maxout, maxin)²), and with BNN_SUMS_DOUBLE gd, ad (b × maxout, b × maxin: G and A
     * in double); full: jac (b × P, in double: see "Precision" above). */
    float *sg, *asq, *dacc, *prod;
    double *jac, *gd, *ad;
};

/* H (n × n, upper triangle) += XᵀX for the float rows X (b × n), their products formed exactly
 * and summed in double (BNN_SUMS_DOUBLE); xd: b × n doubles of scratch. */
static void add_gram_double(double *H, double *xd, const float *X, int64_t n, int64_t b) {
    for (int64_t j = 0; j < b * n; j++)
        xd[j] = (double)X[j];
    bnn__dsyrk(H, xd, n, b, 1.0, 1.0);
}

/* Adds the upper triangle of the float n × n matrix M into the double matrix H (same layout). */
static void add_upper(double *H, const float *M, int64_t n) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static, 8) if (n * n >= 131072)
#endif
    for (int64_t i = 0; i < n; i++) {
        double *h = H + i * n;
        const float *m = M + i * n;
        for (int64_t j = i; j < n; j++)
            h[j] += (double)m[j];
    }
}

/* Copies the upper triangle of the n × n matrix H onto its lower triangle. */
static void mirror_upper(double *H, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++)
            H[i * n + j] = H[j * n + i];
}

/* The curvature hook: adds one pass's contribution of one Linear layer (A: b × in, G: b × out). */
static void curv_hook(void *ctx, int64_t layer, const float *A, const float *G, int64_t b,
                      int64_t in, int64_t out) {
    struct pass *ps = ctx;
    const struct lin *l = find_lin(ps->lin, ps->nlin, layer);
    if (!l) return; /* a layer outside the subset */
    BNN_ASSERT(l->in == in && l->out == out);
    bnn_curv *c = ps->c;
    switch (c->structure) {
    case BNN_HESS_DIAG: {
        /* diag of Σ_r (G_r ⊗ A_r)(G_r ⊗ A_r)ᵀ at (o,i) is Σ_r G[r,o]² A[r,i]²: one GEMM of the
         * squares per pass, summed over the batch's passes in dacc. A is the same in every pass. */
        float *sg = ps->sg, *sa = ps->asq + l->sq;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for simd schedule(static) if (b * out >= 65536)
#endif
        for (int64_t j = 0; j < b * out; j++)
            sg[j] = G[j] * G[j];
        if (ps->first) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for simd schedule(static) if (b * in >= 65536)
#endif
            for (int64_t j = 0; j < b * in; j++)
                sa[j] = A[j] * A[j];
        }
        bnn_gemm(ps->dacc + l->w, sg, sa, out, in, b, true, false, 1.0f, ps->first ? 0.0f : 1.0f);
        double *db = c->diag + l->b;
        for (int64_t r = 0; r < b; r++)
            for (int64_t o = 0; o < out; o++)
                db[o] += (double)sg[r * out + o];
        break;
    }
    case BNN_HESS_KRON: {
        /* B += GᵀG (Martens & Grosse 2015, eq. 1's G factor, here with the GGN's output
         * factorisation folded into G); A += AᵀA from the first pass only (A is the same in every
         * pass); the 1/N is applied at the end. */
        struct curv_block *wb = &c->blocks[l->block];
        if (ps->gd) { /* BNN_SUMS_DOUBLE */
            add_gram_double(wb->f0, ps->gd, G, out, b);
            if (ps->first) add_gram_double(wb->f1, ps->ad, A, in, b);
            break;
        }
        bnn_syrk(ps->prod, G, out, b, 1.0f, 0.0f); /* symmetric: upper triangles until the end */
        add_upper(wb->f0, ps->prod, out);
        if (ps->first) {
            bnn_syrk(ps->prod, A, in, b, 1.0f, 0.0f);
            add_upper(wb->f1, ps->prod, in);
        }
        break;
    }
    case BNN_HESS_LOWRANK: /* matrix-free: no per-example rows (lowrank_hvp) */
        BNN_ASSERT(0);
        break;
    case BNN_HESS_FULL: {
        /* The layer's columns of the per-example rows: vec(G_r ⊗ A_r), then G_r. */
        const int64_t P = c->P;
        for (int64_t r = 0; r < b; r++) {
            double *row = ps->jac + r * P;
            const float *g = G + r * out, *a = A + r * in;
            for (int64_t o = 0; o < out; o++) {
                double *wr = row + l->w + o * in;
                const double go = (double)g[o];
                for (int64_t i = 0; i < in; i++) /* exact: a product of two floats */
                    wr[i] = go * (double)a[i];
                row[l->b + o] = go;
            }
        }
        break;
    }
    }
}

/* The Kronecker factors' elements over the subset's Linear layers (A, and G for the weight and
 * for the bias: in² + 2 out² each) and the largest factor's order (*nmax, may be NULL). */
static double kron_elems(const struct lin *lin, int64_t nlin, double *nmax) {
    double elems = 0.0, mx = 0.0;
    for (int64_t i = 0; i < nlin; i++) {
        const double ni = (double)lin[i].in, no = (double)lin[i].out;
        elems += ni * ni + 2.0 * no * no;
        mx = fmax(mx, fmax(ni, no));
    }
    if (nmax) *nmax = mx;
    return elems;
}

/* Bytes a computation needs: the result (double) and its scratch (float), for the refusal
 * message. Computed in double so that no size can overflow. ll: the last layer without a backward
 * pass (struct ll_ctx's arrays). */
static double needed_bytes(bnn_hessian h, const struct lin *lin, int64_t nlin, int64_t P, int64_t b,
                           int64_t K, bool ll) {
    double maxin = 0, maxout = 0;
    for (int64_t i = 0; i < nlin; i++) {
        maxin = fmax(maxin, (double)lin[i].in);
        maxout = fmax(maxout, (double)lin[i].out);
    }
    const double kron = kron_elems(lin, nlin, NULL);
    const double db = (double)b, dK = (double)K, dP = (double)P;
    double common = db * dK * (sizeof(float) + sizeof(double)); /* dout, probs */
    if (ll) common += 2.0 * 8.0 * db * dK;                      /* dg, u */
    switch (h) {
    case BNN_HESS_DIAG: {
        if (ll) return dP * 8.0 + common + 4.0 * (db * dK + dK * maxin); /* wd, prod */
        double sumin = 0;
        for (int64_t i = 0; i < nlin; i++) sumin += (double)lin[i].in;
        return dP * (8.0 + 4.0) + common + 4.0 * db * (maxout + sumin);
    }
    case BNN_HESS_KRON: {
        double m = maxout > maxin ? maxout : maxin;
        return kron * 8.0 + common + 4.0 * m * m + 8.0 * db * 2.0 * m; /* + gd, ad (double) */
    }
    case BNN_HESS_FULL:
        if (ll) { /* φ̃; per thread its scaled rows (b × (in+1), double), rows and √|w|; the
                   * double blocks */
            const double n1 = (double)lin[nlin - 1].in + 1.0, nt = (double)ll_full_threads(K);
            return dP * dP * 8.0 + common + 4.0 * db * n1 + nt * (8.0 * db * n1 + 16.0 * db) +
                   8.0 * dK * (dK + 1.0) / 2.0 * n1 * n1;
        }
        return dP * dP * 8.0 + common + 8.0 * db * dP; /* the result; the rows in double */
    case BNN_HESS_LOWRANK: return INFINITY; /* see lowrank_bytes */
    }
    return INFINITY;
}

/* The examples per pass: the one asked for, else the automatic size for the structure, at most
 * the data's n. */
static int64_t pass_batch(int64_t asked, bool shortcut, bnn_hessian h, int64_t n) {
    const int64_t bs = asked      ? asked
                       : shortcut ? CURV_BATCH_LL
                       : h == BNN_HESS_DIAG ? CURV_BATCH_DIAG
                                            : CURV_BATCH;
    return bs < n ? bs : n;
}

/* needed_bytes, or what a Laplace posterior on the curvature holds after the pass where that is
 * more: its mean, λ and δ per parameter (double) and the mean in float, 28 P bytes, beside the
 * structure: a diagonal as it is; a full one with its decomposition (needed_bytes); Kronecker
 * factors with each factor's eigenvectors and bnn__syev's workspace for one factor at a time (the
 * largest); the pass's scratch is gone by then. mlp:6000-2's last layer peaked at 1.10 GiB where
 * the pass alone counted 418 MiB. */
static double total_bytes(bnn_hessian h, const struct lin *lin, int64_t nlin, int64_t P, int64_t b,
                          int64_t K, bool ll) {
    const double need = needed_bytes(h, lin, nlin, P, b, K, ll);
    double held = 28.0 * (double)P;
    if (h == BNN_HESS_FULL) held += 32.0 * (double)P * (double)P;
    if (h == BNN_HESS_DIAG) held += 8.0 * (double)P;
    if (h == BNN_HESS_KRON) {
        double nmax;
        const double elems = kron_elems(lin, nlin, &nmax);
        held += 16.0 * elems + bnn__syev_bytes((int64_t)nmax);
    }
    return held > need ? held : need;
}

/* BNN_EINVAL naming the example when a model output (b × K) is not finite or a label is out of
 * range. */
static int check_outputs(const float *f, const bnn_dataset *ds, int64_t start, int64_t b,
                         int64_t K, int64_t C) {
    for (int64_t r = 0; r < b; r++) {
        for (int64_t j = 0; j < K; j++)
            if (!isfinite(f[r * K + j]))
                return bnn__error(BNN_EINVAL,
                                  "the model's output %lld for example %lld is "
                                  "not finite (%g); are the weights or the data NaN or Inf?",
                                  (long long)j, (long long)(start + r), (double)f[r * K + j]);
        if (ds->task == BNN_TASK_CLASSIFICATION) {
            const int32_t y = ds->labels[start + r];
            if (y < 0 || y >= C)
                return bnn__error(BNN_EINVAL,
                                  "label %d of example %lld is not in [0, %lld)",
                                  (int)y, (long long)(start + r), (long long)C);
        }
    }
    return 0;
}

/* The generator stream of the sampled Fisher's draws (ASCII "curv"). Example n uses blocks
 * n·per_ex .. of it, so the draws do not depend on the batch size. */
#define CURV_STREAM 0x63757276u

/* The per-example state of a batch of outputs f (b × K, checked by the caller) for the likelihood
 * (src/lik/lik.c: softmax p, the residual f − y, sigmoid(f) or (μ − y, e^{−η})) into st (b × K,
 * double), and each example's loss into lossr (b; may be NULL). The examples are independent, so
 * the threads share them; the caller sums lossr in example order. */
static void batch_state(double *st, double *lossr, bnn_lik_kind lik, const float *f,
                        const bnn_dataset *ds, int64_t start, int64_t b, int64_t K) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (b * K >= 8192)
#endif
    for (int64_t r = 0; r < b; r++) {
        const int32_t y = ds->labels ? ds->labels[start + r] : 0;
        const float *t = ds->targets ? ds->targets + (start + r) * ds->k : NULL;
        const double l = bnn__lik_curv_state(lik, st + r * K, f + r * K, K, y, t);
        if (lossr) lossr[r] = l;
    }
}

/* dout (b × K) for pass c of a batch starting at example `start`: the vector whose per-example
 * rows the hook turns into curvature (and the factor L_c of lowrank_hvp's output Hessian), from
 * the likelihood's state prob (b × K, batch_state). */
static void fill_dout(float *dout, const double *prob, const bnn_dataset *ds, bnn_lik_kind lik,
                      int64_t start, int64_t b, int64_t K, int64_t c,
                      const struct bnn_curv_params *p) {
    const uint64_t per_ex = bnn__lik_sample_blocks(lik, K);
    for (int64_t r = 0; r < b; r++) {
        const double *pr = prob + r * K;
        float *d = dout + r * K;
        switch (p->curvature) {
        case BNN_CURV_GGN: /* column c of L_r, L_r L_rᵀ = Λ_r */
            bnn__lik_factor_col(lik, d, pr, K, c);
            break;
        case BNN_CURV_EF: /* ∂loss_r/∂f at the true label */
            bnn__lik_grad_row(lik, d, pr, K, ds->labels ? ds->labels[start + r] : 0);
            break;
        case BNN_CURV_GGN_MC: { /* the score at a label drawn from the model */
            bnn_rng rng = bnn_rng_make(p->seed, CURV_STREAM);
            rng.counter = (uint64_t)(start + r) * per_ex;
            bnn__lik_sample_row(lik, d, pr, K, &rng);
            break;
        }
        }
    }
}

/* ------------------------------------------------------------------ the last layer */

/* When the subset is the Linear layer that ends the network, its output is f itself, so the
 * curvature needs no backward pass at all: with φ_r the layer's input (the penultimate features,
 * cached by the forward pass) and φ̃_r = [φ_r, 1], the Jacobian is J_r = [I_K ⊗ φ_rᵀ, I_K]
 * (README §7) and every structure is a function of the K × K output-space matrices
 *   W_r = diag(dg_r) + sgn · u_r u_rᵀ:
 *   exact GGN, softmax:  Λ_r = diag(p_r) − p_r p_rᵀ   (dg = p, u = p, sgn = −1);
 *   exact GGN, Gaussian: I                              (dg = 1, sgn = 0);
 *   EF and GGN-MC:       d_r d_rᵀ                       (dg = 0, u = d, sgn = +1; d the single
 *                                                        dout row of the one-pass methods).
 * W_r is formed in double from p (or d); nothing is back-propagated K times.
 *  - kron: B = Σ_r W_r (K × K, summed in double) and the input factor Σ_r φ_r φ_rᵀ (one
 *    symmetric rank-b update per batch, bnn_syrk: half the multiply-adds of a GEMM).
 *  - diag: diag(J_rᵀ W_r J_r) at weight (k, i) is W_r[k,k] φ_ri² and at bias k W_r[k,k], so the
 *    whole diagonal is one K × in × b GEMM of the W_r[k,k] against the squared features, instead
 *    of one GEMM per pass.
 *  - full: H[(k,i),(k',i')] = Σ_r W_r[k,k'] φ̃_ri φ̃_ri' (i = in: the bias of output k). Each of
 *    the K(K+1)/2 blocks k <= k' is φ̃ᵀ diag(w) φ̃ with w_r = W_r[k,k'], a symmetric matrix:
 *    rows with w_r > 0 scaled by √w_r and rows with w_r < 0 by √−w_r go into two symmetric
 *    rank updates (bnn__dsyrk, alpha +1 and −1; for the softmax GGN the diagonal blocks have only
 *    the first kind and the others only the second). That is ¼K²(in+1)²b multiply-adds per
 *    batch, against K·P²·b = K³(in+1)²b for K passes of per-example rows. Each block is summed
 *    in double in its own (in+1)² array and spread into the P × P matrix once at the end. */
struct ll_ctx {
    int64_t K, in, n1; /* outputs, features, features + 1 */
    int sgn;           /* −1, 0 or +1 */
    double *u;         /* K × b, transposed: u[k·b + r] */
    const double *dg;  /* K × b like u: u itself (softmax GGN), diag, or NULL (dg = 0) */
    double *diag;      /* K × b, a diagonal output Hessian (Gaussian, heteroscedastic GGN) */
    float *wd;         /* diag: K × b, W_r[k,k] */
    double *sa;        /* full: b × n1, the scaled rows (double: see "Precision" above) ... */
    float *saf;        /* ... or in float with BNN_SUMS_FLOAT, summed in prod first */
    bool fsum;         /* full: BNN_SUMS_FLOAT */
    double *phid;      /* kron with BNN_SUMS_DOUBLE: b × in, φ in double */
    float *phit;       /* full: b × n1, φ̃ */
    int64_t *rows;     /* full: b, the rows of a block with w_r ≠ 0 ... */
    double *sw;        /* full: b, ... and their √|w_r| */
    float *prod;       /* kron: in × in; diag: K × in; full with float sums: n1 × n1 */
    int nt;            /* full: threads; sa, saf, rows, sw and prod have one copy per thread */
    double *blocks;    /* full: K(K+1)/2 blocks of n1 × n1 (upper triangles), k <= k' in order */
};

/* dg and u of a batch (see above) from the likelihood's state (src/lik/lik.c), in double:
 *  - exact GGN with a full output Hessian (softmax; Bernoulli, K = 1, where diag(p) − p² is
 *    p(1 − p)): dg = u = p, sgn = −1;
 *  - exact GGN with a diagonal one (Gaussian: I; heteroscedastic: diag(e^{−η}, ½)): dg = that
 *    diagonal, sgn = 0;
 *  - EF and GGN-MC: u = the single dout row fill_dout formed (the gradient at the true or at a
 *    sampled label), sgn = +1. */
static void ll_weights(struct ll_ctx *ll, bnn_lik_kind lik, const double *prob, const float *dout,
                       int64_t b, bnn_curvature cv) {
    const int64_t K = ll->K;
    if (cv == BNN_CURV_GGN && bnn__lik_diag_hess(lik)) {
        ll->sgn = 0, ll->dg = ll->diag;
        for (int64_t k = 0; k < K; k++)
            for (int64_t r = 0; r < b; r++)
                ll->diag[k * b + r] = bnn__lik_out_hess(lik, prob + r * K, k, k);
        return;
    }
    ll->sgn = cv == BNN_CURV_GGN ? -1 : 1;
    ll->dg = cv == BNN_CURV_GGN ? ll->u : NULL;
    for (int64_t k = 0; k < K; k++) {
        double *u = ll->u + k * b;
        if (cv == BNN_CURV_GGN)
            for (int64_t r = 0; r < b; r++)
                u[r] = prob[r * K + k];
        else
            for (int64_t r = 0; r < b; r++)
                u[r] = (double)dout[r * K + k];
    }
}

/* W_r[k,k'] of example r of the batch. */
static inline double ll_w(const struct ll_ctx *ll, int64_t b, int64_t r, int64_t k, int64_t k2) {
    double w = k == k2 && ll->dg ? ll->dg[k * b + r] : 0.0;
    if (ll->sgn) w += (double)ll->sgn * ll->u[k * b + r] * ll->u[k2 * b + r];
    return w;
}

/* Σ_r W_r[k,k'] over the batch, in double. */
static double ll_wsum(const struct ll_ctx *ll, int64_t b, int64_t k, int64_t k2) {
    const double *uk = ll->u + k * b, *uk2 = ll->u + k2 * b, *dk = ll->dg ? ll->dg + k * b : NULL;
    double s = 0.0, d = 0.0;
    if (ll->sgn) {
#if defined(BNN_HAVE_OPENMP) || defined(BNN_HAVE_OMP_SIMD)
#pragma omp simd reduction(+ : s)
#endif
        for (int64_t r = 0; r < b; r++)
            s += uk[r] * uk2[r];
    }
    if (k == k2 && dk) {
#if defined(BNN_HAVE_OPENMP) || defined(BNN_HAVE_OMP_SIMD)
#pragma omp simd reduction(+ : d)
#endif
        for (int64_t r = 0; r < b; r++)
            d += dk[r];
    }
    return d + (double)ll->sgn * s;
}

/* diag: prod[k, j] = Σ_r wd[k, r] φ[r, j]² (K × in) for a batch (wd: K × b, φ: b × in), summed
 * in float. One pass over the features instead of squaring them into a b × in array for a GEMM
 * whose K = 10 rows are too few for BLAS to run well: a tile of LL_TILE feature columns times
 * LL_KG outputs is summed in registers while the tile's rows stream by (the columns past `in` in
 * the last tile are zeros). Each column is summed over the rows in order by one thread, so the
 * thread count cannot change a bit. */
/* The vector tiles' 12 output weight rows w0 .. w11 (one named pointer each), row k0 + q of
 * wd; outputs past K read row k0 again, and their sums are not stored. */
#define LL_W(q) (wd + (k0 + (q) * (nk > (q))) * b)
#define LL_WEIGHT_ROWS                                                                             \
    const float *w0 = LL_W(0), *w1 = LL_W(1), *w2 = LL_W(2), *w3 = LL_W(3), *w4 = LL_W(4);         \
    const float *w5 = LL_W(5), *w6 = LL_W(6), *w7 = LL_W(7), *w8 = LL_W(8), *w9 = LL_W(9);         \
    const float *w10 = LL_W(10), *w11 = LL_W(11)
#if defined(__AVX512F__)
#define LL_TILE 32
#define LL_KG 12
/* The tile's LL_KG × 32 sums in 24 zmm registers (named ones: GCC keeps arrays of vectors on the
 * stack, storing them on every row): per row two (masked) loads, two squares, and per output a
 * broadcast and two FMAs. 12 outputs at a time read the features once for 10 classes. */
static void ll_diag_tile(float *prod, const float *wd, const float *phi, int64_t b, int64_t in,
                         int64_t j0, int64_t nj, int64_t k0, int64_t nk) {
    const __mmask16 m0 = nj >= 16 ? 0xffff : (__mmask16)((1u << nj) - 1);
    const __mmask16 m1 = nj >= 32 ? 0xffff : nj <= 16 ? 0 : (__mmask16)((1u << (nj - 16)) - 1);
    LL_WEIGHT_ROWS;
    const __m512 z = _mm512_setzero_ps();
    /* a<q>0, a<q>1: output k0 + q, columns j0 .. j0 + 15 and j0 + 16 .. j0 + 31 */
    __m512 a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z, a40 = z, a41 = z;
    __m512 a50 = z, a51 = z, a60 = z, a61 = z, a70 = z, a71 = z, a80 = z, a81 = z, a90 = z, a91 = z;
    __m512 a100 = z, a101 = z, a110 = z, a111 = z;
    for (int64_t r = 0; r < b; r++) {
        const float *pr = phi + r * in + j0;
        __m512 x0 = _mm512_maskz_loadu_ps(m0, pr), x1 = _mm512_maskz_loadu_ps(m1, pr + 16);
        x0 = _mm512_mul_ps(x0, x0), x1 = _mm512_mul_ps(x1, x1);
#define LL_FMA(q)                                                                                 \
    do {                                                                                          \
        const __m512 wk = _mm512_set1_ps(w##q[r]);                                                \
        a##q##0 = _mm512_fmadd_ps(wk, x0, a##q##0), a##q##1 = _mm512_fmadd_ps(wk, x1, a##q##1);   \
    } while (0)
        LL_FMA(0); LL_FMA(1); LL_FMA(2); LL_FMA(3); LL_FMA(4); LL_FMA(5);
        LL_FMA(6); LL_FMA(7); LL_FMA(8); LL_FMA(9); LL_FMA(10); LL_FMA(11);
#undef LL_FMA
    }
    const __m512 acc[LL_KG][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31},
                                  {a40, a41}, {a50, a51}, {a60, a61}, {a70, a71},
                                  {a80, a81}, {a90, a91}, {a100, a101}, {a110, a111}};
    for (int64_t kk = 0; kk < nk; kk++) {
        _mm512_mask_storeu_ps(prod + (k0 + kk) * in + j0, m0, acc[kk][0]);
        _mm512_mask_storeu_ps(prod + (k0 + kk) * in + j0 + 16, m1, acc[kk][1]);
    }
}
#elif defined(__AVX2__) && defined(__FMA__)
/* AVX2 with FMA (every AVX2 CPU but a few VIA ones has both; -mavx2 alone does not promise FMA,
 * and then the portable tile below serves): a tile of 8 columns (one ymm register) times LL_KG
 * outputs, the 12 sums in registers (16 ymm: the sums, the squared features and a broadcast
 * weight). GCC keeps the portable version's arrays on the stack and re-reads the features for
 * every 4 outputs. */
#define LL_TILE 8
#define LL_KG 12
static void ll_diag_tile(float *prod, const float *wd, const float *phi, int64_t b, int64_t in,
                         int64_t j0, int64_t nj, int64_t k0, int64_t nk) {
    const bool full = nj == LL_TILE;
    const __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nj), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    LL_WEIGHT_ROWS;
    const __m256 z = _mm256_setzero_ps();
    __m256 a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z, a8 = z, a9 = z;
    __m256 a10 = z, a11 = z;
    for (int64_t r = 0; r < b; r++) {
        const float *pr = phi + r * in + j0;
        __m256 x = full ? _mm256_loadu_ps(pr) : _mm256_maskload_ps(pr, mask);
        x = _mm256_mul_ps(x, x);
#define LL_FMA(q) a##q = _mm256_fmadd_ps(_mm256_broadcast_ss(w##q + r), x, a##q)
        LL_FMA(0); LL_FMA(1); LL_FMA(2); LL_FMA(3); LL_FMA(4); LL_FMA(5);
        LL_FMA(6); LL_FMA(7); LL_FMA(8); LL_FMA(9); LL_FMA(10); LL_FMA(11);
#undef LL_FMA
    }
    const __m256 acc[LL_KG] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
    for (int64_t kk = 0; kk < nk; kk++)
        _mm256_maskstore_ps(prod + (k0 + kk) * in + j0, mask, acc[kk]);
}
#else
#define LL_TILE 32
#define LL_KG 4
static void ll_diag_tile(float *prod, const float *wd, const float *phi, int64_t b, int64_t in,
                         int64_t j0, int64_t nj, int64_t k0, int64_t nk) {
    float acc[LL_KG][LL_TILE] = {{0.0f}};
    for (int64_t r = 0; r < b; r++) {
        const float *pr = phi + r * in + j0;
        float sq[LL_TILE];
        for (int64_t j = 0; j < LL_TILE; j++)
            sq[j] = j < nj ? pr[j] * pr[j] : 0.0f;
        for (int64_t kk = 0; kk < LL_KG; kk++) {
            const float w = kk < nk ? wd[(k0 + kk) * b + r] : 0.0f;
            for (int64_t j = 0; j < LL_TILE; j++)
                acc[kk][j] += w * sq[j];
        }
    }
    for (int64_t kk = 0; kk < nk; kk++)
        memcpy(prod + (k0 + kk) * in + j0, acc[kk], (size_t)nj * sizeof(float));
}
#endif
#undef LL_WEIGHT_ROWS
#undef LL_W

static void ll_diag_batch(float *prod, const float *wd, const float *phi, int64_t b, int64_t K,
                          int64_t in) {
    const int64_t ntile = (in + LL_TILE - 1) / LL_TILE, nkg = (K + LL_KG - 1) / LL_KG;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for collapse(2) schedule(static) if (b * K * in >= 262144)
#endif
    for (int64_t t = 0; t < ntile; t++) {
        for (int64_t g = 0; g < nkg; g++) {
            const int64_t j0 = t * LL_TILE, k0 = g * LL_KG;
            ll_diag_tile(prod, wd, phi, b, in, j0, in - j0 < LL_TILE ? in - j0 : LL_TILE, k0,
                         K - k0 < LL_KG ? K - k0 : LL_KG);
        }
    }
}

/* One batch of the last layer (phi: b × in) into c. kron's B and A and full's blocks are kept as
 * upper triangles until the end of the pass. */
static void ll_batch(bnn_curv *c, struct ll_ctx *ll, const float *phi, int64_t b) {
    const int64_t K = ll->K, in = ll->in, n1 = ll->n1;
    switch (c->structure) {
    case BNN_HESS_KRON: {
        double *B = c->blocks[0].f0;
        for (int64_t k = 0; k < K; k++)
            for (int64_t k2 = k; k2 < K; k2++)
                B[k * K + k2] += ll_wsum(ll, b, k, k2);
        if (ll->phid) { /* BNN_SUMS_DOUBLE */
            add_gram_double(c->blocks[0].f1, ll->phid, phi, in, b);
            break;
        }
        bnn_syrk(ll->prod, phi, in, b, 1.0f, 0.0f);
        add_upper(c->blocks[0].f1, ll->prod, in);
        break;
    }
    case BNN_HESS_DIAG: {
        double *dw = c->diag, *db = c->diag + K * in;
        for (int64_t k = 0; k < K; k++) {
            double s = 0.0;
            for (int64_t r = 0; r < b; r++) {
                const double w = ll_w(ll, b, r, k, k);
                ll->wd[k * b + r] = (float)w;
                s += w;
            }
            db[k] += s;
        }
        ll_diag_batch(ll->prod, ll->wd, phi, b, K, in);
        for (int64_t j = 0; j < K * in; j++)
            dw[j] += (double)ll->prod[j];
        break;
    }
    case BNN_HESS_FULL: {
        for (int64_t r = 0; r < b; r++) {
            memcpy(ll->phit + r * n1, phi + r * in, (size_t)in * sizeof(float));
            ll->phit[r * n1 + in] = 1.0f;
        }
        /* The K(K+1)/2 blocks are independent: with enough of them each thread takes whole
         * blocks with its own scratch; with few they run one after another and each update uses
         * the threads itself (ll_full_whole). */
        const int64_t nblk = K * (K + 1) / 2;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(dynamic) num_threads(ll->nt) if (ll->nt > 1)
#endif
        for (int64_t q = 0; q < nblk; q++) {
            const int64_t tid = bnn__thread_id();
            int64_t k = 0, k2 = q; /* block q is (k, k2), k <= k2, in row order */
            while (k2 >= K - k) k2 -= K - k, k++;
            k2 += k;
            double *sa = ll->fsum ? NULL : ll->sa + tid * b * n1, *sw = ll->sw + tid * b;
            int64_t *rows = ll->rows + tid * b;
            /* Rows with w > 0 first (scaled by √w), then those with w < 0 (by √−w). */
            int64_t npos = 0, nsel = 0;
            for (int pass = 0; pass < 2; pass++) {
                for (int64_t r = 0; r < b; r++) {
                    const double w = ll_w(ll, b, r, k, k2);
                    if (pass == 0 ? !(w > 0.0) : !(w < 0.0)) continue;
                    rows[nsel] = r, sw[nsel++] = sqrt(fabs(w));
                }
                if (pass == 0) npos = nsel;
            }
            const int64_t nneg = nsel - npos;
            if (nsel == 0) continue;
            double *blk = ll->blocks + q * n1 * n1;
            if (ll->fsum) { /* BNN_SUMS_FLOAT: the batch's update in float, then into the block */
                float *saf = ll->saf + tid * b * n1, *prod = ll->prod + tid * n1 * n1;
                for (int64_t i = 0; i < nsel; i++) {
                    float *dst = saf + i * n1;
                    const float *src = ll->phit + rows[i] * n1, si = (float)sw[i];
                    for (int64_t j = 0; j < n1; j++)
                        dst[j] = si * src[j];
                }
                void (*fsyrk)(float *, const float *, int64_t, int64_t, float, float) =
                    ll_full_whole(K) ? bnn__syrk_serial : bnn_syrk;
                fsyrk(prod, saf, n1, npos, 1.0f, 0.0f);
                if (nneg) fsyrk(prod, saf + npos * n1, n1, nneg, -1.0f, 1.0f);
                add_upper(blk, prod, n1);
                continue;
            }
            for (int64_t i = 0; i < nsel; i++) {
                double *dst = sa + i * n1;
                const float *src = ll->phit + rows[i] * n1;
                const double si = sw[i];
                for (int64_t j = 0; j < n1; j++)
                    dst[j] = si * (double)src[j];
            }
            /* straight into the block's upper triangle, in double */
            void (*syrk)(double *, const double *, int64_t, int64_t, double, double) =
                ll_full_whole(K) ? bnn__dsyrk_serial : bnn__dsyrk;
            if (npos) syrk(blk, sa, n1, npos, 1.0, 1.0);
            if (nneg) syrk(blk, sa + npos * n1, n1, nneg, -1.0, 1.0);
        }
        break;
    }
    case BNN_HESS_LOWRANK: /* never: dense low rank is FULL here, matrix-free has no ll path */
        BNN_ASSERT(0);
        break;
    }
}

/* full: the blocks (upper triangles) into the dense P × P matrix H. Parameter (k, i) is weight
 * k·in + i for i < in and bias K·in + k for i = in. */
static void ll_full_spread(double *H, const struct ll_ctx *ll) {
    const int64_t K = ll->K, in = ll->in, n1 = ll->n1, P = K * n1;
    const double *blk = ll->blocks;
    for (int64_t k = 0; k < K; k++)
        for (int64_t k2 = k; k2 < K; k2++, blk += n1 * n1)
            for (int64_t i = 0; i < n1; i++)
                for (int64_t i2 = 0; i2 < n1; i2++) {
                    const double v = i <= i2 ? blk[i * n1 + i2] : blk[i2 * n1 + i];
                    const int64_t a = i < in ? k * in + i : K * in + k;
                    const int64_t a2 = i2 < in ? k2 * in + i2 : K * in + k2;
                    H[a * P + a2] = v, H[a2 * P + a] = v;
                }
}

/* ------------------------------------------------------------------ low rank */

/* The low-rank curvature H ≈ U diag(λ) Uᵀ with the top-r eigenpairs of the GGN (or EF, or
 * sampled Fisher) over the subset: the low-rank Hessian approximation of Daxberger et al. 2021
 * (laplace-torch's LowRankLaplace, which takes the eigenpairs from an iterative eigensolver on
 * Hessian-vector products). U is stored row-major P × r (U[i·r + j] = component i of eigenvector
 * j, so column j is the eigenvector of λ_j), λ in descending order; the same layout as a C-order
 * [P, r] tensor, which is how a file stores it.
 *
 * Two ways, chosen by the memory limit:
 *  - dense: when the P × P matrix of `full` fits, it is built exactly as for `full` and its top r
 *    eigenpairs taken by LAPACK's dsyevr (MRRR, RANGE = 'I'); with r = P this is `full`'s
 *    eigendecomposition.
 *  - matrix-free: randomized subspace iteration (Halko, Martinsson & Tropp, "Finding structure
 *    with randomness", SIAM Review 2011: Algorithm 4.4 with Rayleigh–Ritz as in Algorithm 5.3)
 *    with l = r + 10 columns. Products H V = Σ_n J_nᵀ Λ_n J_n V are formed batch by batch through
 *    the linearised network (lowrank_hvp), in double, without ever storing P × P or a per-example
 *    row: memory O(P·l + l·b·width). It iterates until every wanted Ritz pair has residual
 *    ‖H u − θ u‖ ≤ 1e-10·θ_max (which bounds the eigenvector's angle by the residual over the
 *    gap), within LOWRANK_MAXPASS passes over the data; after its first steps each step applies
 *    a Chebyshev filter of degree LOWRANK_DEGREE instead of H alone (see lowrank_matfree).
 * p->lowrank_method forces a path: 0 chooses (dense when it fits the limit and LOWRANK_DENSE_MAX,
 * else matrix-free), 1 dense, 2 matrix-free.
 */
#define LOWRANK_OVERSAMPLE 10
/* Where bnn_curv_compute's automatic low-rank choice stops forming the dense P × P matrix (8 GiB,
 * P about 30000): past it the O(P³) eigendecomposition is the cost, and the matrix-free
 * iteration is used whenever memory allows it. */
#define LOWRANK_DENSE_MAX (8.0 * 1024.0 * 1024.0 * 1024.0)
#define LOWRANK_MAXPASS 200 /* passes over the data, the first product included */
#define LOWRANK_PLAIN 2      /* plain subspace-iteration steps before the Chebyshev filter */
#define LOWRANK_DEGREE 3     /* the filter's degree: products per step after them */
#define LOWRANK_RESTOL 1e-10
#define LOWRANK_STREAM 0x6c6f7772u /* "lowr": the random start Ω */
/* The matrix-free way forms Ritz vectors in tiles of this many parameters, over the threads. */
#define RITZ_TILE 1024

/* Bytes of the extra arrays of the two ways, on top of needed_bytes. */
static double lowrank_dense_extra(int64_t P, int64_t r) {
    return 8.0 * (2.0 * (double)P * (double)r + 40.0 * (double)P) + 4.0 * 10.0 * (double)P;
}
/* The matrix-free way: V, H V and the Chebyshev filter's third block (l × P each; the random
 * start Ω is drawn into the third), the result U (P × r), the Rayleigh–Ritz arrays, the double weights of the
 * layers it goes through (nw), the tangents (two of l × b × maxw), the layers' inputs and
 * derivatives (b × sumw) and a float derivative's scratch (two of b × maxw), the likelihood's
 * dout and state (b × K). */
static double lowrank_matfree_bytes(int64_t P, int64_t r, int64_t l, int64_t b, int64_t K,
                                    int64_t nw, int64_t maxw, int64_t sumw) {
    const double dP = (double)P, dl = (double)l, db = (double)b;
    /* LAPACK's workspaces (bnn__syev's and the QR's blocks: bnn__syev_bytes(l) < 4 l² + 70 l), the
     * Ritz tiles' residuals and the batch's losses: small, counted anyway. */
    const double small = 8.0 * (4.0 * dl * dl + 70.0 * dl + (dP / RITZ_TILE + 1.0) * (double)r + db);
    return small + 8.0 * (3.0 * dl * dP + dP * (double)r) +
           8.0 * (double)nw + 16.0 * dl * db * (double)maxw + 8.0 * db * (double)sumw +
           8.0 * db * (double)maxw + db * (double)K * (sizeof(float) + sizeof(double));
}

/* Top r eigenpairs of the symmetric P × P matrix H (destroyed) into lr (descending). */
static int lowrank_from_dense(bnn_curv *lr, double *H, int64_t P, int64_t r) {
    double *w = alloc_doubles(P), *Z = alloc_doubles(P * r);
    int rc = 0;
    if (!w || !Z) {
        rc = bnn__error(BNN_ENOMEM, "bnn_curv_compute: no memory for the eigenpairs");
        goto out;
    }
    /* H is symmetric: its row-major storage is its column-major storage (finite: checked by the
     * caller). */
    const int info = bnn__syevr(H, P, P - r + 1, P, w, Z);
    if (info == LAPACK_WORK_MEMORY_ERROR) {
        rc = bnn__error(BNN_ENOMEM, "bnn_curv_compute: no memory for LAPACK's dsyevr");
        goto out;
    }
    if (info != 0) {
        rc = bnn__error(BNN_EINVAL,
                        "bnn_curv_compute: the top %lld eigenpairs of the %lld × %lld GGN failed "
                        "(LAPACK dsyevr info %d)",
                        (long long)r, (long long)P, (long long)P, info);
        goto out;
    }
    for (int64_t j = 0; j < r; j++) { /* ascending column j of Z → descending column r−1−j */
        const int64_t jd = r - 1 - j;
        lr->eig[jd] = w[j];
        for (int64_t i = 0; i < P; i++)
            lr->U[i * r + jd] = Z[j * P + i];
    }
out:
    bnn__free(w), bnn__free(Z);
    return rc;
}

/* What the matrix-free products need to re-run the forward pass and push vectors through the
 * linearised network. */
struct mf_ctx {
    bnn_model *m;
    const bnn_dataset *ds;
    const struct bnn_curv_params *p;
    const struct lin *lin;
    int64_t nlin;
    int64_t first, nlayers; /* the subset's first layer (where everything starts); the model's */
    bnn_lik_kind lik;
    int64_t bmax, K, D, P, npass, l;
    int64_t maxw;    /* the widest output of the layers from `first` on */
    float *dout;     /* b × K */
    double *prob;    /* b × K */
    double *Wd;      /* the parameters of the layers above `first`, in double, from w0 */
    int64_t w0;      /* where they start in the flat vector */
    double *t0, *t1; /* l blocks of bmax × maxw: tangents, then cotangents */
    double *lay;     /* per batch: a subset layer's input, an elementwise layer's derivative */
    int64_t *lay_off; /* nlayers: where layer i's array starts in lay; −1 for none */
    float *fone, *fder; /* bmax × maxw: ones, and an elementwise layer's derivative in float */
};

/* Whether lowrank_hvp keeps a per-batch array for model layer i (struct mf_ctx's lay): a subset
 * layer's input, or an elementwise layer's derivative, from the subset's first layer on. */
static bool mf_keeps(bnn_model *m, const struct lin *lin, int64_t nlin, int64_t first,
                     int64_t i) {
    return i >= first &&
           (bnn__model_layer(m, i)->vt != &bnn__linear_vt || find_lin(lin, nlin, i) != NULL);
}

/* Each of the l blocks (stride S) of t times d, elementwise over n values. */
static void scale_blocks(double *t, const double *d, int64_t l, int64_t S, int64_t n) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (int64_t k = 0; k < l; k++) {
        double *tk = t + k * S;
        for (int64_t j = 0; j < n; j++)
            tk[j] *= d[j];
    }
}

/* HV = H V for the l vectors V (l × P, row k = vector k over the subset's parameters), H =
 * Σ_n J_nᵀ Λ_n J_n with J_n the Jacobian of example n's outputs with respect to the subset and
 * Λ_n = Σ_c L_nc L_ncᵀ the output factorisation of the passes (fill_dout's rows: the GGN's columns,
 * or the one gradient of EF and GGN-MC). Per batch, in double, for all l vectors at once:
 *  - forward-mode (the linearised network, Jacobian-vector products): from the subset's first
 *    layer up, a Linear layer maps the tangent dx to dx·Wᵀ + A·V_Wᵀ + v_b (the last two for the
 *    layer's own part of the vector, A its input), an elementwise layer multiplies it by its
 *    derivative; at the outputs U = J V;
 *  - the output factor: G = Λ U, per example;
 *  - reverse-mode (vector-Jacobian products) down to the first layer: a Linear layer adds Gᵀ·A and
 *    the column sums of G to its part of HV and passes G·W down, an elementwise layer multiplies
 *    by its derivative.
 * That is about 4·b·l multiply-adds per weight (the first layer's two input-side products are
 * not needed), in dgemm calls, against 2·b·K·l for products with per-example Jacobian rows, which
 * also need b × P floats for the rows. The derivatives come from each elementwise layer's own
 * backward with dy = 1, the inputs from the forward pass's cache, both in float as the other
 * structures use them. The vectors are independent, so the threads share them: every element is
 * computed by the same single-threaded calls whatever the thread count. */
static void lowrank_hvp(struct mf_ctx *x, double *HV, const double *V) {
    const int64_t P = x->P, K = x->K, N = x->ds->n, l = x->l, L = x->nlayers;
    const int64_t S = x->bmax * x->maxw; /* block stride of the tangents */
    bnn_model *m = x->m;
    const float *theta = bnn_model_cparams(m);
    memset(HV, 0, (size_t)(P * l) * sizeof(double));
    for (int64_t start = 0; start < N; start += x->bmax) {
        const int64_t b = N - start < x->bmax ? N - start : x->bmax;
        const float *xb = x->ds->x + start * x->D;
        const float *f = bnn_model_forward(m, theta, xb, b, false, NULL);
        batch_state(x->prob, NULL, x->lik, f, x->ds, start, b, K); /* checked by the caller */
        for (int64_t i = x->first; i < L; i++) {
            if (x->lay_off[i] < 0) continue; /* a Linear layer outside the subset */
            bnn__layer *ly = bnn__model_layer(m, i);
            const float *in = i ? bnn__model_act(m, i - 1) : xb;
            double *d = x->lay + x->lay_off[i];
            const float *src = in;
            if (ly->vt != &bnn__linear_vt) {
                BNN_ASSERT(ly->vt->elementwise && ly->in == ly->out);
                ly->vt->backward(ly, x->fder, NULL, x->fone, in, bnn__model_act(m, i),
                                 theta + ly->off, b);
                src = x->fder;
            }
            for (int64_t j = 0; j < b * ly->in; j++)
                d[j] = (double)src[j];
        }

        /* Forward mode: t ← J V, l blocks of b × width. */
        double *t = x->t0, *u = x->t1;
        for (int64_t i = x->first; i < L; i++) {
            const bnn__layer *ly = bnn__model_layer(m, i);
            const double *d = x->lay_off[i] < 0 ? NULL : x->lay + x->lay_off[i];
            const int64_t in = ly->in, out = ly->out;
            if (ly->vt != &bnn__linear_vt) { /* elementwise: its Jacobian is diagonal */
                scale_blocks(t, d, l, S, b * in);
                continue;
            }
            const double *W = i > x->first ? x->Wd + (ly->off - x->w0) : NULL;
            const struct lin *s = find_lin(x->lin, x->nlin, i);
            BNN_ASSERT(s || i > x->first);
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static)
#endif
            for (int64_t k = 0; k < l; k++) {
                double *z = u + k * S;
                if (i > x->first)
                    bnn__dgemm_serial(z, t + k * S, W, b, out, in, in, in, out, false, true, 0.0);
                if (s) {
                    const double *vk = V + k * P;
                    bnn__dgemm_serial(z, d, vk + s->w, b, out, in, in, in, out, false, true,
                                      i > x->first ? 1.0 : 0.0);
                    for (int64_t r = 0; r < b; r++)
                        for (int64_t o = 0; o < out; o++)
                            z[r * out + o] += vk[s->b + o];
                }
            }
            double *sw = t;
            t = u, u = sw;
        }

        /* The output factor: u ← Λ t per example, Λ = Σ_c L_c L_cᵀ. */
        for (int64_t c_ = 0; c_ < x->npass; c_++) {
            fill_dout(x->dout, x->prob, x->ds, x->lik, start, b, K, c_, x->p);
            const float *dd = x->dout;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static)
#endif
            for (int64_t k = 0; k < l; k++) {
                const double *tk = t + k * S;
                double *uk = u + k * S;
                for (int64_t r = 0; r < b; r++) {
                    double sdot = 0.0;
                    for (int64_t o = 0; o < K; o++)
                        sdot += (double)dd[r * K + o] * tk[r * K + o];
                    for (int64_t o = 0; o < K; o++)
                        uk[r * K + o] = (c_ ? uk[r * K + o] : 0.0) + (double)dd[r * K + o] * sdot;
                }
            }
        }

        /* Reverse mode: HV += Jᵀ u, down to the first layer. */
        double *g = u, *h = t;
        for (int64_t i = L - 1; i >= x->first; i--) {
            const bnn__layer *ly = bnn__model_layer(m, i);
            const double *d = x->lay_off[i] < 0 ? NULL : x->lay + x->lay_off[i];
            const int64_t in = ly->in, out = ly->out;
            if (ly->vt != &bnn__linear_vt) {
                scale_blocks(g, d, l, S, b * in);
                continue;
            }
            const double *W = i > x->first ? x->Wd + (ly->off - x->w0) : NULL;
            const struct lin *s = find_lin(x->lin, x->nlin, i);
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static)
#endif
            for (int64_t k = 0; k < l; k++) {
                const double *gk = g + k * S;
                if (s) {
                    double *hk = HV + k * P;
                    bnn__dgemm_serial(hk + s->w, gk, d, out, in, b, out, in, in, true, false, 1.0);
                    for (int64_t r = 0; r < b; r++)
                        for (int64_t o = 0; o < out; o++)
                            hk[s->b + o] += gk[r * out + o];
                }
                if (i > x->first)
                    bnn__dgemm_serial(h + k * S, gk, W, b, in, out, out, in, in, false, false, 0.0);
            }
            double *sw = g;
            g = h, h = sw;
        }
    }
}

/* The scaled Chebyshev filter of degree m ≥ 1 (Zhou, Saad, Tiago & Chelikowsky, "Parallel
 * self-consistent-field calculations via Chebyshev-filtered subspace acceleration", Phys. Rev. E
 * 2006; Zhou & Saad, "A Chebyshev-Davidson algorithm for large symmetric eigenproblems", SIAM J.
 * Matrix Anal. Appl. 2007): with e = c = lo/2 (the damped interval [0, lo] is c ± e),
 *   Y_k = T_k((H − cI)/e) X / T_k((hi − c)/e),
 * T_k the Chebyshev polynomials, so every eigenvalue in [0, lo] is scaled by at most 1/T_k(·) and
 * hi by exactly 1 (nothing overflows), through the three-term recurrence
 *   σ₁ = e/(hi − c), Y₁ = (σ₁/e)(H − cI) X,
 *   σ_{k+1} = 1/(2/σ₁ − σ_k), Y_{k+1} = (2σ_{k+1}/e)(H − cI) Y_k − σ_k σ_{k+1} Y_{k−1}.
 * An eigenvalue λ = (1 + δ)·lo grows by T₃(1 + 2δ)^{1/3} ≈ 1 + 6δ per product at degree 3 (e^{2√δ}
 * for large degrees) against 1 + δ for a plain product. On entry *x holds X and *y holds H X (the
 * first product, not made here); *w is a third buffer; all are n values (l blocks: H applies to
 * each). On return *y holds Y_m and *x, *w the two others, free. Makes m − 1 products through
 * `product` (which returns non-zero to stop, passed on). The updates are elementwise. */
int bnn__chebyshev_filter(double **x, double **y, double **w, int64_t n, int64_t m, double lo,
                          double hi, int (*product)(void *ctx, double *out, const double *in),
                          void *ctx) {
    BNN_ASSERT(m >= 1 && lo > 0.0 && hi > lo);
    const double e = 0.5 * lo, c = 0.5 * lo, s1 = e / (hi - c), t2 = 2.0 / s1;
    double sg = s1, *X = *x, *Y = *y, *W = *w;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for simd schedule(static)
#endif
    for (int64_t j = 0; j < n; j++) /* Y₁ = (σ₁/e)(H X − cX) */
        Y[j] = s1 / e * (Y[j] - c * X[j]);
    for (int64_t d = 2; d <= m; d++) {
        const int rc = product(ctx, W, Y);
        if (rc) return rc;
        const double sn = 1.0 / (t2 - sg), a1 = 2.0 * sn / e, a0 = sg * sn;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for simd schedule(static)
#endif
        for (int64_t j = 0; j < n; j++) /* Y_d = (2σ_d/e)(H Y_{d−1} − cY_{d−1}) − σ_{d−1}σ_d Y_{d−2} */
            W[j] = a1 * (W[j] - c * Y[j]) - a0 * X[j];
        double *t = X;
        X = Y, Y = W, W = t, sg = sn;
    }
    *x = X, *y = Y, *w = W;
    return 0;
}

/* The iteration's products (bnn__chebyshev_filter's too): lowrank_hvp, counted, its result
 * checked. */
struct mf_product {
    struct mf_ctx *x;
    int64_t n, *passes;
};

static int mf_product(void *ctx, double *out, const double *in) {
    struct mf_product *mp = ctx;
    lowrank_hvp(mp->x, out, in);
    ++*mp->passes;
    return check_finite(out, mp->n, "bnn_curv_compute: the low-rank products (overflow?)");
}

/* A LAPACK failure of the low-rank iteration: out of memory for LAPACKE's workspace or copy,
 * else the routine's info. */
static int lapack_failed(lapack_int info, const char *what) {
    if (info == LAPACK_WORK_MEMORY_ERROR)
        return bnn__error(BNN_ENOMEM, "bnn_curv_compute: out of memory (LAPACK: %s)", what);
    return bnn__error(BNN_EINVAL, "bnn_curv_compute: %s failed (LAPACK info %d)", what, (int)info);
}

/* Randomized subspace iteration with Rayleigh–Ritz (see above) into lr. V, Z and the filter's W
 * are l × P: row k is basis vector k, i.e. the P × l basis in column-major order, which is how
 * LAPACK takes it. */
static int lowrank_matfree(bnn_curv *lr, struct mf_ctx *x, int64_t r, uint64_t seed) {
    const int64_t P = x->P, l = x->l, n = P * l;
    const int64_t ntile = (P + RITZ_TILE - 1) / RITZ_TILE;
    double *buf[3] = {alloc_doubles(n), alloc_doubles(n), alloc_doubles(n)};
    double *B = alloc_doubles(l * l), *th = alloc_doubles(l), *tau = alloc_doubles(l);
    double *res = alloc_doubles(ntile * r);
    int64_t passes = 0;
    struct mf_product mp = {.x = x, .n = n, .passes = &passes};
    int rc = 0;
    if (!buf[0] || !buf[1] || !buf[2] || !B || !th || !tau || !res) {
        rc = bnn__error(BNN_ENOMEM, "bnn_curv_compute: no memory for the low-rank iteration");
        goto out;
    }
    double *V = buf[0], *Z = buf[1], *W = buf[2];
    { /* Ω: P × l standard normal draws in row-major order (row i for parameter i), as floats in
       * W's storage (n doubles hold 2n floats), then into V's layout */
        float *om = (float *)W;
        bnn_rng rng = bnn_rng_make(seed, LOWRANK_STREAM);
        bnn_rng_normal(&rng, om, n);
        for (int64_t i = 0; i < P; i++)
            for (int64_t k = 0; k < l; k++)
                V[k * P + i] = om[i * l + k];
    }
    if ((rc = mf_product(&mp, Z, V))) goto out; /* Y = H Ω */
    for (int64_t it = 0;; it++) {
        /* V = orth(Z) by Householder QR (orthonormal even where Z is rank-deficient). */
        memcpy(V, Z, (size_t)n * sizeof(double));
        /* Z is a product (checked) or the filter's combination of products: LAPACK is given
         * nothing non-finite (it would orthonormalise NaN without a word). */
        if ((rc = check_finite(V, n, "bnn_curv_compute: the low-rank basis (overflow?)"))) goto out;
        int info = bnn__qr_basis(V, P, l, tau);
        if (info) {
            rc = lapack_failed(info, "QR of the low-rank basis");
            goto out;
        }
        if ((rc = mf_product(&mp, Z, V))) goto out; /* Z = H V */
        /* B = Vᵀ H V = V Zᵀ in this layout, symmetrised; B = W diag(θ) Wᵀ (W's columns, ascending
         * θ, are B's rows after bnn__syev: column-major). */
        bnn__dgemm_serial(B, V, Z, l, l, P, P, P, l, false, true, 0.0);
        for (int64_t a = 0; a < l; a++)
            for (int64_t c = 0; c < a; c++)
                B[a * l + c] = B[c * l + a] = 0.5 * (B[a * l + c] + B[c * l + a]);
        info = bnn__syev(B, l, th, BNN__SYEV_AUTO); /* B is symmetric: either storage order */
        if (info) {
            rc = lapack_failed(info, "the Rayleigh–Ritz eigenproblem");
            goto out;
        }
        /* Ritz pairs u_j = V w, H u_j = Z w (w row l−1−j of B) for the wanted (top r) ones,
         * and their residuals ‖H u_j − θ u_j‖², tile by tile, summed in tile order. */
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static)
#endif
        for (int64_t tl = 0; tl < ntile; tl++) {
            const int64_t i0 = tl * RITZ_TILE, nt = P - i0 < RITZ_TILE ? P - i0 : RITZ_TILE;
            double u[RITZ_TILE], hu[RITZ_TILE];
            for (int64_t j = 0; j < r; j++) {
                const int64_t k = l - 1 - j;
                for (int64_t i = 0; i < nt; i++)
                    u[i] = hu[i] = 0.0;
                for (int64_t a = 0; a < l; a++) {
                    const double w = B[k * l + a], *va = V + a * P + i0, *za = Z + a * P + i0;
                    for (int64_t i = 0; i < nt; i++)
                        u[i] += va[i] * w, hu[i] += za[i] * w;
                }
                double sq = 0.0;
                for (int64_t i = 0; i < nt; i++) {
                    const double dlt = hu[i] - th[k] * u[i];
                    sq += dlt * dlt;
                    lr->U[(i0 + i) * r + j] = u[i];
                }
                res[tl * r + j] = sq;
            }
        }
        const double tmax = fabs(th[l - 1]) > fabs(th[0]) ? fabs(th[l - 1]) : fabs(th[0]);
        double worst = 0.0;
        for (int64_t j = 0; j < r; j++) {
            double sq = 0.0;
            for (int64_t tl = 0; tl < ntile; tl++)
                sq += res[tl * r + j];
            lr->eig[j] = th[l - 1 - j];
            if (sqrt(sq) > worst) worst = sqrt(sq);
        }
        /* Z is finite, so tmax is; tmax = 0 only for H V = 0 (H is semi-definite), where the
         * residuals are 0 too. */
        if (x->p->progress && x->p->progress(x->p->progress_ctx, passes,
                                             tmax > 0.0 ? worst / tmax : 0.0, LOWRANK_RESTOL)) {
            rc = bnn__error(BNN_EINVAL, "bnn_curv_compute: the low-rank iteration was stopped by "
                            "the caller after %lld passes over the data", (long long)passes);
            goto out;
        }
        if (worst <= LOWRANK_RESTOL * tmax || passes >= LOWRANK_MAXPASS) break;

        /* The next block: Z = H V as it is (a step of subspace iteration), or, after the first
         * LOWRANK_PLAIN steps, p(H) V with the Chebyshev filter bnn__chebyshev_filter damping
         * the unwanted [0, θ_min] (H is semi-definite, so 0 bounds its spectrum from below;
         * θ_min, the block's smallest Ritz value, stands for its upper end; the wanted
         * eigenvalues are at least θ_min by interlacing). Its first product, H V, is the Z just
         * formed; m − 1 more here and one in the next step stay within LOWRANK_MAXPASS (passes
         * is below it here). */
        const double lo = th[0], hi = th[l - 1];
        if (it + 1 < LOWRANK_PLAIN || !(lo > 1e-12 * hi) || !(hi > lo * (1.0 + 1e-6))) continue;
        const int64_t m = LOWRANK_DEGREE < LOWRANK_MAXPASS - passes ? LOWRANK_DEGREE
                                                                    : LOWRANK_MAXPASS - passes;
        if ((rc = bnn__chebyshev_filter(&V, &Z, &W, n, m, lo, hi, mf_product, &mp))) goto out;
        /* The filtered block is in Z; the next QR overwrites V. */
    }
out:
    bnn__free(buf[0]), bnn__free(buf[1]), bnn__free(buf[2]), bnn__free(B), bnn__free(th);
    bnn__free(tau), bnn__free(res);
    return rc;
}

int bnn_curv_compute(bnn_curv **out, bnn_model *m, const bnn_dataset *ds,
                     const struct bnn_curv_params *p) {
    const char *fn = "bnn_curv_compute";
    if (!out) return bnn__error(BNN_EINVAL, "%s: out is NULL", fn);
    *out = NULL;
    if (!m || !ds || !p)
        return bnn__error(BNN_EINVAL, "%s: model, dataset and params are required", fn);
    if (p->curvature != BNN_CURV_GGN && p->curvature != BNN_CURV_GGN_MC &&
        p->curvature != BNN_CURV_EF)
        return bnn__error(BNN_EINVAL, "%s: unknown curvature %d", fn, (int)p->curvature);
    if (p->hessian != BNN_HESS_DIAG && p->hessian != BNN_HESS_KRON && p->hessian != BNN_HESS_FULL &&
        p->hessian != BNN_HESS_LOWRANK)
        return bnn__error(BNN_EINVAL, "%s: unknown Hessian structure %d", fn, (int)p->hessian);
    if (p->sums < BNN_SUMS_AUTO || p->sums > BNN_SUMS_DOUBLE)
        return bnn__error(BNN_EINVAL, "%s: sums must be BNN_SUMS_AUTO, _FLOAT or _DOUBLE, got %d",
                          fn, p->sums);
    if (p->lowrank_method < 0 || p->lowrank_method > 2)
        return bnn__error(BNN_EINVAL, "%s: lowrank_method must be 0 (choose), 1 (dense) or 2 "
                          "(matrix-free), got %d", fn, p->lowrank_method);
    if (p->hessian == BNN_HESS_LOWRANK && p->rank < 1)
        return bnn__error(BNN_EINVAL, "%s: the low-rank rank must be at least 1 (got %lld)", fn,
                          (long long)p->rank);
    if (p->subset != BNN_SUBSET_ALL && p->subset != BNN_SUBSET_LAST_LAYER &&
        p->subset != BNN_SUBSET_LAYERS)
        return bnn__error(BNN_EINVAL, "%s: unknown subset %d", fn, (int)p->subset);
    if (p->subset == BNN_SUBSET_LAYERS && (p->nlayers_sel < 1 || !p->layers))
        return bnn__error(BNN_EINVAL, "%s: a subset of layers needs at least one layer index", fn);
    if (p->batch_size < 0)
        return bnn__error(BNN_EINVAL, "%s: batch size must be at least 1, or 0 for automatic (got %lld)", fn,
                          (long long)p->batch_size);
    if (!(p->sigma > 0.0) || !isfinite(p->sigma))
        return bnn__error(BNN_EINVAL, "%s: sigma must be positive and finite (got %g)", fn,
                          p->sigma);
    double limit;
    char sl[80]; /* the limit, named for a message */
    {
        const int rc = bnn__byte_limit(fn, p->max_bytes, &limit, sl, sizeof sl);
        if (rc) return rc;
    }

    const bnn_task task = ds->task;
    const int64_t N = ds->n, D = ds->d, K = bnn_model_output_dim(m);
    const bnn_lik_kind lik = bnn_model_lik(m, task);
    const int64_t C = bnn_lik_pred_dim(lik, K); /* classes or targets the outputs serve */
    /* The data against the model as training and evaluation check it (bnn__check_data): labelled,
     * finite, labels within the classes, the features and classes or targets the model and its
     * likelihood take. */
    {   /* its message is about the user's data, and says so without a function's name */
        const int rc = bnn__check_data(m, ds);
        if (rc) return rc;
    }

    /* The Linear layers of the subset. Parameter-free layers own no parameters, so a Linear
     * layer's weight and bias are one run of the flat vector, and the subset is the runs of its
     * layers in model order: lin[].w and lin[].b are positions within the subset (the
     * concatenation), seg_off the layers' starts in the flat vector. */
    const int64_t nlayers = bnn_model_nlayers(m);
    struct lin *lin = calloc((size_t)nlayers, sizeof *lin);
    int64_t *seg_off = calloc((size_t)nlayers, sizeof *seg_off);
    int64_t *seg_len = calloc((size_t)nlayers, sizeof *seg_len);
    if (!lin || !seg_off || !seg_len) {
        free(lin), free(seg_off), free(seg_len);
        return bnn__error(BNN_ENOMEM, "out of memory");
    }
    int64_t nlin = 0;
    for (int64_t i = 0; i < nlayers; i++) {
        int64_t woff, wshape[2], boff, blen;
        if (strcmp(bnn_model_layer_kind(m, i), "linear") != 0) continue;
        int rc = bnn_model_layer_tensors(m, i, &woff, wshape, &boff, &blen);
        BNN_ASSERT(rc == 0 && boff == woff + wshape[0] * wshape[1] && blen == wshape[0]);
        lin[nlin++] =
            (struct lin){.layer = i, .in = wshape[1], .out = wshape[0], .w = woff, .b = boff};
    }
    BNN_ASSERT(nlin >= 1);
    const int64_t nlin_model = nlin, last_linear = lin[nlin - 1].layer;
    struct lin last_only = lin[nlin - 1]; /* the last-layer subset (for a refusal's hint) */
    last_only.w = 0, last_only.b = last_only.out * last_only.in, last_only.block = 0;
    if (p->subset == BNN_SUBSET_LAST_LAYER) {
        lin[0] = lin[nlin - 1];
        nlin = 1;
    } else if (p->subset == BNN_SUBSET_LAYERS) {
        for (int64_t j = 0; j < p->nlayers_sel; j++) {
            const int64_t l = p->layers[j];
            const char *why = l < 0 || l >= nlin_model     ? "is out of range"
                              : j && l <= p->layers[j - 1] ? "is not above the one before it (the "
                                                             "list must be ascending, without "
                                                             "duplicates)"
                                                           : NULL;
            if (why) {
                free(lin), free(seg_off), free(seg_len);
                return bnn__error(BNN_EINVAL,
                                  "%s: layer index %lld (entry %lld of the list) %s; the model "
                                  "(%s) has %lld Linear layers, numbered 0..%lld",
                                  fn, (long long)l, (long long)j, why, bnn_model_spec(m),
                                  (long long)nlin_model, (long long)(nlin_model - 1));
            }
        }
        for (int64_t j = 0; j < p->nlayers_sel; j++) /* ascending: lin[l] is not yet overwritten */
            lin[j] = lin[p->layers[j]];
        nlin = p->nlayers_sel;
    }
    int64_t P = 0;
    for (int64_t i = 0; i < nlin; i++) {
        const int64_t size = lin[i].out * lin[i].in + lin[i].out;
        seg_off[i] = lin[i].w, seg_len[i] = size;
        lin[i].w = P, lin[i].b = P + lin[i].out * lin[i].in;
        lin[i].block = 2 * i;
        P += size;
    }

    /* A subset that is just the Linear layer ending the network (last-layer, or a list naming
     * only that layer) needs no backward pass at all: its output gradient is dout itself and its
     * input the previous layer's cached activations. Other subsets back-propagate down to their
     * first layer only (bnn__model_backward_hook_to). */
    const struct lin *last = &lin[nlin - 1];
    const bool single_last = p->subset != BNN_SUBSET_ALL && nlin == 1 && last->layer == last_linear;
    const bool shortcut = single_last && last->layer == nlayers - 1;
    const int64_t first_layer = lin[0].layer;
    const int64_t bmax = pass_batch(p->batch_size, shortcut, p->hessian, N);

    /* Low rank: through the dense P × P matrix when it fits, else matrix-free (see above).
     * `hess` is the structure the passes below build. */
    bnn_hessian hess = p->hessian;
    const bool lowrank = p->hessian == BNN_HESS_LOWRANK;
    const int64_t rank = lowrank ? (p->rank < P ? p->rank : P) : 0;
    const int64_t lcols = rank + LOWRANK_OVERSAMPLE < P ? rank + LOWRANK_OVERSAMPLE : P;
    double need;
    /* The matrix-free way's sizes (struct mf_ctx): the widest output from the first layer on,
     * the inputs of the subset's layers and elementwise layers (its lay), and the parameters of
     * the layers above the first (its Wd, from mf_w0). */
    int64_t mf_maxw = 0, mf_sumw = 0;
    const int64_t mf_w0 = seg_off[0] + seg_len[0], mf_nw = bnn_model_nparams(m) - mf_w0;
    for (int64_t i = first_layer; i < nlayers; i++) {
        const bnn__layer *ly = bnn__model_layer(m, i);
        if (ly->out > mf_maxw) mf_maxw = ly->out;
        if (mf_keeps(m, lin, nlin, first_layer, i)) mf_sumw += ly->in;
    }
    if (lowrank) {
        const double dense_need = needed_bytes(BNN_HESS_FULL, lin, nlin, P, bmax, K, shortcut) +
                                  lowrank_dense_extra(P, rank);
        const double mf_need = lowrank_matfree_bytes(P, rank, lcols, bmax, K,
                                                     mf_nw, mf_maxw, mf_sumw);
        const bool dense_fits = dense_need <= limit && dense_need <= (double)SIZE_MAX;
        const bool mf_fits = mf_need <= limit && mf_need <= (double)SIZE_MAX;
        /* The automatic choice takes the dense eigendecomposition up to LOWRANK_DENSE_MAX only:
         * beyond it, its O(P³) time, not its memory, is what rules it out. */
        const bool dense_pref = dense_fits && (dense_need <= LOWRANK_DENSE_MAX || !mf_fits);
        const int mode = p->lowrank_method;
        if ((mode == 1 && !dense_fits) || (mode != 1 && !dense_fits && !mf_fits) ||
            (mode == 2 && !mf_fits)) {
            char sn[32];
            bnn__format_bytes(sn, sizeof sn, mode == 1 ? dense_need : mf_need);
            free(lin), free(seg_off), free(seg_len);
            return bnn__error(BNN_ENOMEM,
                              "a low-rank Hessian (rank %lld) over %lld parameters needs %s even "
                              "without forming the %lld x %lld matrix, more than %s; %s",
                              (long long)rank, (long long)P, sn, (long long)P, (long long)P, sl,
                              single_last ? "lower --rank or --batch-size, or use --hessian diag"
                              : p->subset == BNN_SUBSET_LAYERS
                                  ? "lower --rank or --batch-size, or select fewer layers "
                                    "(--subset last-layer)"
                                  : "lower --rank or --batch-size, or use --subset last-layer");
        }
        if (mode == 1 || (mode == 0 && dense_pref)) {
            hess = BNN_HESS_FULL;
            need = dense_need;
        } else {
            need = mf_need;
        }
    }
    /* The last layer without a backward pass (struct ll_ctx); matrix-free low rank has its own
     * products (lowrank_hvp). */
    const bool ll = shortcut && hess != BNN_HESS_LOWRANK;

    /* Refuse before allocating anything large. A full curvature is there to be decomposed: a
     * Laplace posterior on it holds H, its P × P eigenvectors and, while LAPACK's dsyevd runs, a
     * workspace of 2 P² doubles (when saved, the writer's copies of H and the eigenvectors
     * instead): 32 P² bytes at the peak, measured as the maximum RSS of `bnn laplace --hessian
     * full` (504 MB at P = 3962), beyond the 12 P² of the curvature pass itself. */
    if (!lowrank) need = total_bytes(hess, lin, nlin, P, bmax, K, ll);
    if (!(need <= limit) || need > (double)SIZE_MAX) {
        /* What would fit instead, each worked out as this one was, with the batch's
         * activations (bnn_model_reserve's check): another structure (a diagonal's per-batch
         * scratch can exceed a small network's Kronecker factors, so diag is not always smaller),
         * each at the batch it would get; this one at a batch of 1; the last layer alone (at its
         * own automatic batch of 1024, which can need more than the whole network at 256). For a
         * list of layers without the last one, fewer layers, unchecked. */
        char sn[32], hint[200] = "", alts[24] = "";
        bnn__format_bytes(sn, sizeof sn, need);
        const bnn_hessian alt[2] = {BNN_HESS_KRON, BNN_HESS_DIAG};
        const char *alt_name[2] = {"kron", "diag"};
        for (int i = 0; hess != BNN_HESS_DIAG && i < 2; i++) {
            const int64_t ab = pass_batch(p->batch_size, shortcut, alt[i], N);
            if (alt[i] != hess && total_bytes(alt[i], lin, nlin, P, ab, K, shortcut) <= limit &&
                bnn__model_reserve_bytes(m, ab) <= limit)
                snprintf(alts + strlen(alts), sizeof alts - strlen(alts), "%s%s",
                         alts[0] ? " or " : "", alt_name[i]);
        }
        const char *part[3] = {NULL, NULL, NULL};
        char hpart[40];
        int np = 0;
        if (alts[0]) snprintf(hpart, sizeof hpart, "--hessian %s", alts), part[np++] = hpart;
        if (bmax > 1 && total_bytes(hess, lin, nlin, P, 1, K, ll) <= limit)
            part[np++] = "a lower --batch-size";
        if (!single_last && lin[nlin - 1].layer == last_linear) {
            const bool sc = last_linear == nlayers - 1;
            const int64_t lb = pass_batch(p->batch_size, sc, p->hessian, N);
            const int64_t lp = last_only.out * last_only.in + last_only.out;
            if (total_bytes(hess, &last_only, 1, lp, lb, K, sc) <= limit &&
                bnn__model_reserve_bytes(m, lb) <= limit)
                part[np++] = "--subset last-layer";
        } else if (!single_last) {
            part[np++] = "fewer layers";
        }
        for (int i = 0; i < np; i++)
            snprintf(hint + strlen(hint), sizeof hint - strlen(hint), "%s%s",
                     i == 0 ? "try " : ", or ", part[i]);
        if (!hint[0]) snprintf(hint, sizeof hint, "raise the limit (BNN_MEMORY_LIMIT)");
        free(lin), free(seg_off), free(seg_len);
        return bnn__error(BNN_ENOMEM, "a %s Hessian over %lld parameters needs %s, more than %s; %s",
                          structure_name(p->hessian), (long long)P, sn, sl, hint);
    }

    int rc = bnn_model_reserve(m, bmax);
    if (rc) {
        free(lin), free(seg_off), free(seg_len);
        return rc;
    }

    /* Result and scratch. */
    int64_t *bn0 = NULL, *bn1 = NULL;
    bool *bf1 = NULL;
    int64_t nblocks = 0;
    if (p->hessian == BNN_HESS_KRON) {
        nblocks = 2 * nlin;
        bn0 = calloc((size_t)nblocks, sizeof *bn0);
        bn1 = calloc((size_t)nblocks, sizeof *bn1);
        bf1 = calloc((size_t)nblocks, sizeof *bf1);
        if (!bn0 || !bn1 || !bf1) {
            free(bn0), free(bn1), free(bf1), free(lin), free(seg_off), free(seg_len);
            return bnn__error(BNN_ENOMEM, "out of memory");
        }
        for (int64_t i = 0; i < nlin; i++) {
            bn0[2 * i] = bn0[2 * i + 1] = lin[i].out;
            bn1[2 * i] = lin[i].in;
            bf1[2 * i] = true;
        }
    }
    bnn_curv *c = hess == BNN_HESS_LOWRANK ? lowrank_alloc(P, rank)
                                           : curv_alloc(hess, P, nblocks, bn0, bn1, bf1);
    free(bn0), free(bn1), free(bf1);
    int64_t maxin = 0, maxout = 0;
    for (int64_t i = 0; i < nlin; i++) {
        if (lin[i].in > maxin) maxin = lin[i].in;
        if (lin[i].out > maxout) maxout = lin[i].out;
    }
    struct pass ps = {.c = c, .lin = lin, .nlin = nlin};
    struct mf_ctx mf = {0};
    struct ll_ctx llc = {.K = K, .in = last->in, .n1 = last->in + 1};
    float *dout = alloc_floats(bmax * K);
    double *prob = alloc_doubles(bmax * K), *lossr = alloc_doubles(bmax);
    bool ok = c && dout && prob && lossr;
    if (ok && ll) {
        const int64_t in = llc.in, n1 = llc.n1;
        ok = (llc.u = alloc_doubles(K * bmax)) && (llc.diag = alloc_doubles(K * bmax));
        if (ok && hess == BNN_HESS_KRON)
            ok = (llc.prod = alloc_floats(in * in)) != NULL &&
                 (p->sums != BNN_SUMS_DOUBLE || (llc.phid = alloc_doubles(bmax * in)) != NULL);
        if (ok && hess == BNN_HESS_DIAG)
            ok = (llc.wd = alloc_floats(bmax * K)) && (llc.prod = alloc_floats(K * in));
        if (ok && hess == BNN_HESS_FULL)
            ok = (llc.nt = ll_full_threads(K)) >= 1 && (llc.phit = alloc_floats(bmax * n1)) &&
                 ((llc.fsum = p->sums == BNN_SUMS_FLOAT)
                      ? (llc.saf = alloc_floats(llc.nt * bmax * n1)) &&
                            (llc.prod = alloc_floats(llc.nt * n1 * n1))
                      : (llc.sa = alloc_doubles(llc.nt * bmax * n1)) != NULL) &&
                 (llc.rows = bnn__alloc_array(llc.nt * bmax, sizeof(int64_t))) &&
                 (llc.sw = alloc_doubles(llc.nt * bmax)) &&
                 (llc.blocks = alloc_doubles(K * (K + 1) / 2 * n1 * n1));
    } else if (ok && p->hessian == BNN_HESS_DIAG) {
        int64_t sumin = 0;
        for (int64_t i = 0; i < nlin; i++) lin[i].sq = sumin, sumin += bmax * lin[i].in;
        ok = (ps.sg = alloc_floats(bmax * maxout)) && (ps.asq = alloc_floats(sumin)) &&
             (ps.dacc = alloc_floats(P));
    } else if (ok && p->hessian == BNN_HESS_KRON) {
        int64_t mx = maxout > maxin ? maxout : maxin;
        ok = (ps.prod = alloc_floats(mx * mx)) != NULL &&
             (p->sums != BNN_SUMS_DOUBLE || ((ps.gd = alloc_doubles(bmax * maxout)) != NULL &&
                                             (ps.ad = alloc_doubles(bmax * maxin)) != NULL));
    }
    if (ok && !ll && hess == BNN_HESS_FULL)
        ok = (ps.jac = alloc_doubles(bmax * P)) != NULL;
    else if (ok && hess == BNN_HESS_LOWRANK) {
        ok = (mf_nw == 0 || (mf.Wd = alloc_doubles(mf_nw))) &&
             (mf.t0 = alloc_doubles(lcols * bmax * mf_maxw)) &&
             (mf.t1 = alloc_doubles(lcols * bmax * mf_maxw)) &&
             (mf.lay = alloc_doubles(bmax * mf_sumw)) &&
             (mf.lay_off = calloc((size_t)nlayers, sizeof *mf.lay_off)) &&
             (mf.fone = alloc_floats(bmax * mf_maxw)) && (mf.fder = alloc_floats(bmax * mf_maxw));
        if (ok) {
            const float *th = bnn_model_cparams(m) + mf_w0;
            for (int64_t i = 0; i < mf_nw; i++)
                mf.Wd[i] = (double)th[i];
            for (int64_t i = 0; i < bmax * mf_maxw; i++)
                mf.fone[i] = 1.0f;
            for (int64_t i = 0, o = 0; i < nlayers; i++) {
                const bool kept = mf_keeps(m, lin, nlin, first_layer, i);
                mf.lay_off[i] = kept ? o : -1;
                if (kept) o += bmax * bnn__model_layer(m, i)->in;
            }
        }
    }
    if (!ok) {
        char sn[32];
        bnn__format_bytes(sn, sizeof sn, need);
        rc = bnn__error(BNN_ENOMEM, "%s: cannot allocate a %s Hessian over %lld parameters (%s)",
                        fn, structure_name(p->hessian), (long long)P, sn);
        goto done;
    }
    c->N = N, c->K = K;
    if ((rc = bnn_curv_set_segments(c, nlin, seg_off, seg_len))) goto done;
    { /* the prior's groups: each Linear layer's weight, then its bias (laplace-torch's layers) */
        int64_t sizes[BNN_MAX_CURV_LAYERS];
        for (int64_t i = 0; i < nlin && 2 * i + 1 < BNN_MAX_CURV_LAYERS; i++)
            sizes[2 * i] = lin[i].out * lin[i].in, sizes[2 * i + 1] = lin[i].out;
        if (2 * nlin <= BNN_MAX_CURV_LAYERS && (rc = bnn__curv_set_layers(c, 2 * nlin, sizes)))
            goto done;
    }

    const float *theta = bnn_model_cparams(m);
    const int64_t npass = p->curvature == BNN_CURV_GGN ? K : 1;
    double loss = 0.0;
    int64_t bad_ex = -1; /* the first example whose loss is not finite */

    for (int64_t start = 0; start < N; start += bmax) {
        const int64_t b = N - start < bmax ? N - start : bmax;
        const float *x = ds->x + start * D;
        const float *f = bnn_model_forward(m, theta, x, b, false, NULL);

        if ((rc = check_outputs(f, ds, start, b, K, C))) goto done;
        batch_state(prob, lossr, lik, f, ds, start, b, K);
        for (int64_t r = 0; r < b; r++) { /* in example order, whatever the thread count */
            loss += lossr[r];
            if (!isfinite(lossr[r]) && bad_ex < 0) bad_ex = start + r;
        }

        if (hess == BNN_HESS_LOWRANK) continue; /* matrix-free: the products come after */
        const float *A_last = last->layer > 0 ? bnn__model_act(m, last->layer - 1) : x;
        if (ll) {
            if (p->curvature != BNN_CURV_GGN) fill_dout(dout, prob, ds, lik, start, b, K, 0, p);
            ll_weights(&llc, lik, prob, dout, b, p->curvature);
            ll_batch(c, &llc, A_last, b);
            continue;
        }
        for (int64_t c_ = 0; c_ < npass; c_++) {
            fill_dout(dout, prob, ds, lik, start, b, K, c_, p);
            ps.first = c_ == 0; /* (the last layer alone went through ll above) */
            bnn__model_backward_hook_to(m, theta, dout, curv_hook, &ps, first_layer);
            if (hess == BNN_HESS_FULL) /* each pass into the upper triangle, in double */
                bnn__dsyrk(c->dense, ps.jac, P, b, 1.0, 1.0);
        }
        if (hess == BNN_HESS_DIAG) { /* the weights' sums of this batch (the biases are in) */
            double *dg = c->diag;
            const float *da = ps.dacc;
            for (int64_t i = 0; i < nlin; i++) {
                const int64_t w0 = lin[i].w, nw = lin[i].out * lin[i].in;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for simd schedule(static) if (nw >= 65536)
#endif
                for (int64_t j = w0; j < w0 + nw; j++)
                    dg[j] += (double)da[j];
            }
        }
    }

    if (!isfinite(loss)) {
        if (bad_ex >= 0)
            rc = bnn__error(BNN_EINVAL, "the loss of training example %lld is not finite at the "
                            "model's weights%s", (long long)bad_ex,
                            lik == BNN_LIK_HETERO_GAUSSIAN
                                ? " (its predicted noise exp(log variance) under- or overflows)"
                                : "");
        else
            rc = bnn__error(BNN_EINVAL, "the summed loss over the training data overflows at the "
                            "model's weights");
        goto done;
    }
    c->loss = loss;
    c->unit = hess == BNN_HESS_DIAG                        ? 0.0
              : hess == BNN_HESS_KRON ? (p->sums == BNN_SUMS_DOUBLE ? 0x1p-53 : 0x1p-24)
              : ll && p->sums == BNN_SUMS_FLOAT ? 0x1p-24
                                                           : 0x1p-53;
    if (p->hessian == BNN_HESS_KRON) {
        /* A = (1/N) Σ a aᵀ (laplace-torch's averaged input factor); the bias block is B. Both
         * were summed as upper triangles. */
        for (int64_t i = 0; i < nlin; i++) {
            struct curv_block *wb = &c->blocks[2 * i], *bb = &c->blocks[2 * i + 1];
            mirror_upper(wb->f0, wb->n0);
            mirror_upper(wb->f1, wb->n1);
            for (int64_t j = 0; j < wb->n1 * wb->n1; j++)
                wb->f1[j] /= (double)N;
            memcpy(bb->f0, wb->f0, (size_t)(wb->n0 * wb->n0) * sizeof(double));
        }
        for (int64_t i = 0; i < c->nblocks && !rc; i++) {
            rc = check_finite(c->blocks[i].f0, c->blocks[i].n0 * c->blocks[i].n0,
                              "the curvature: a Kronecker factor (overflow?)");
            if (!rc && c->blocks[i].f1)
                rc = check_finite(c->blocks[i].f1, c->blocks[i].n1 * c->blocks[i].n1,
                                  "the curvature: a Kronecker factor (overflow?)");
        }
    } else if (p->hessian == BNN_HESS_DIAG) {
        rc = check_finite(c->diag, P, "the curvature: its diagonal (overflow?)");
    } else if (hess == BNN_HESS_FULL) {
        if (ll)
            ll_full_spread(c->dense, &llc);
        else
            mirror_upper(c->dense, P);
        rc = check_finite(c->dense, P * P, "the curvature: its matrix (overflow?)");
        if (!rc && lowrank) { /* dense way: the top eigenpairs of the full matrix */
            bnn_curv *lr = lowrank_alloc(P, rank);
            if (!lr) {
                rc = bnn__error(BNN_ENOMEM, "%s: cannot allocate a rank-%lld curvature", fn,
                                (long long)rank);
            } else {
                lr->N = c->N, lr->K = c->K, lr->loss = c->loss, lr->unit = c->unit;
                bnn__free(ps.jac), ps.jac = NULL; /* the scratch is no longer needed */
                rc = copy_segments(lr, c);
                /* The layer sizes too, as the matrix-free way records them. */
                if (!rc && c->nlayers) rc = bnn__curv_set_layers(lr, c->nlayers, c->layer_sizes);
                if (!rc) rc = lowrank_from_dense(lr, c->dense, P, rank);
                bnn_curv_free(c);
                c = lr;
            }
        }
    } else { /* matrix-free low rank */
        mf.m = m, mf.ds = ds, mf.p = p, mf.lin = lin, mf.nlin = nlin;
        mf.first = first_layer, mf.nlayers = nlayers, mf.w0 = mf_w0, mf.maxw = mf_maxw;
        mf.bmax = bmax, mf.K = K, mf.D = D, mf.P = P, mf.npass = npass, mf.lik = lik;
        mf.l = lcols, mf.dout = dout, mf.prob = prob;
        rc = lowrank_matfree(c, &mf, rank, p->seed);
        if (!rc) rc = check_finite(c->U, P * rank, "the curvature: its eigenvectors");
        if (!rc) rc = check_finite(c->eig, rank, "the curvature: its eigenvalues (overflow?)");
    }

done:
    bnn__free(dout), bnn__free(prob), bnn__free(lossr);
    bnn__free(llc.u), bnn__free(llc.diag), bnn__free(llc.wd), bnn__free(llc.sa), bnn__free(llc.phit);
    bnn__free(llc.prod), bnn__free(llc.blocks), bnn__free(llc.rows), bnn__free(llc.sw);
    bnn__free(llc.saf), bnn__free(llc.phid), bnn__free(ps.gd), bnn__free(ps.ad);
    bnn__free(ps.sg), bnn__free(ps.asq), bnn__free(ps.dacc), bnn__free(ps.prod), bnn__free(ps.jac);
    bnn__free(mf.Wd), bnn__free(mf.t0), bnn__free(mf.t1), bnn__free(mf.lay);
    bnn__free(mf.fone), bnn__free(mf.fder), free(mf.lay_off);
    free(lin), free(seg_off), free(seg_len);
    if (rc) {
        bnn_curv_free(c);
        return rc;
    }
    /* What the posterior needs to know of whichever object this is (the dense way's low rank
     * included): the likelihood (without it a regression curvature reads as homoscedastic
     * Gaussian, and the posterior tuned a noise σ for a heteroscedastic model) and the kind (the
     * empirical Fisher of a Gaussian likelihood scales as 1/σ⁴). */
    bnn__curv_set_lik(c, lik);
    bnn__curv_set_kind(c, p->curvature);
    *out = c;
    return 0;
}
