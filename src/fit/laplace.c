/* The Laplace posterior N(θ_MAP, (hf·H + δ I)⁻¹) over a subset of the weights ("Laplace Redux —
 * Effortless Bayesian Deep Learning", Daxberger et al., NeurIPS 2021), with the conventions of
 * laplace-torch (github.com/aleximmer/Laplace, commit 44ea62ac) that fixtures/laplace/README.md
 * spells out in §1–§8: H is the curvature of the loss summed over the N training points at σ = 1,
 * hf = 1/(σ² T) with temperature T = 1, and the prior is N(0, δ⁻¹ I). Below, "hf·H" is read
 * as hscale(σ)·H: hf², not hf, for the empirical Fisher of a Gaussian likelihood (hpow in
 * struct bnn_laplace; ∂/∂log σ of its log-determinant term doubles accordingly).
 *
 * Every structure is held in one common form: an orthonormal basis in which H is diagonal, with
 * its P eigenvalues λ_i in lam[]. For `diag` the basis is the identity and λ_i = H_ii; for `full`
 * it is the eigendecomposition of H (LAPACK dsyevd, once, at construction, or read from a file
 * that saved it, bnn__laplace_new_eig); for `kron` it is
 * Q_B ⊗ Q_A per weight block and Q_b per bias block, with λ = λB_k·λA_j (laplace-torch's
 * KronDecomposed; negative factor eigenvalues, i.e. rounding noise, clipped to 0). The posterior
 * precision then has eigenvalues hf·λ_i + δ in the same basis, so the log marginal likelihood
 * and both of its hyperparameter derivatives cost O(P) for any (δ, σ), and solves and samples
 * are exact for the decomposition. For `lowrank` (H ≈ U diag(λ) Uᵀ, U orthonormal P × r) lam is
 * λ_1..λ_r followed by P − r zeros (the basis completed by any orthonormal complement of U, which
 * is never formed): lml, its derivatives, logdet and the optimiser hold unchanged, and the
 * predictive, the samples and the precision use U only (Woodbury; nothing P × P except
 * precision_dense's output). δ is added to the product λB·λA, not to each factor: this is
 * hf·(B ⊗ A) + δ I exactly, not laplace-torch's damped variant (README §3).
 *
 * As in src/fit/von.c, the numerics are double precision with plain loops (no cblas), so the
 * module gives the same numbers with BNN_BLAS=OFF. The matrices handed to LAPACK are symmetric,
 * so their row-major storage is their column-major storage and we call LAPACKE with
 * LAPACK_COL_MAJOR (no transposed copy). The eigenvectors come back column-major, i.e. as the
 * rows of our row-major array; sym_eig transposes them once into Q (Q[i·n + k] = component i of
 * eigenvector k, eigenvectors as columns) so that products with Q and Qᵀ run as row updates
 * (axpy) that vectorise and skip the zeros of sparse operands. */
#include "core/internal.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#define LAPLACE_PI 3.14159265358979323846

/* A Kronecker block: weight (B ⊗ A, nf = 2) or bias (B alone, nf = 1), as eigendecompositions. */
typedef struct kblock {
    int nf;          /* 2: weight block B ⊗ A; 1: bias block B */
    int64_t n0, n1;  /* out and in (n1 = 1 for a bias block) */
    int64_t off;     /* first parameter of the block within the subset */
    double *l0, *l1; /* eigenvalues of B and A, ascending, clipped at 0 (l1 NULL for bias) */
    double *Q0, *Q1; /* eigenvectors as columns, Q[i·n + k] (Q1 NULL for bias) */
    /* A bias block whose B is its weight block's, bit for bit (bnn's own KFAC shares it; a
     * laplace-torch regression file scales the weight's): l0 and Q0 are copied, not decomposed
     * again, and the GLM projects the output gradients once for both blocks. */
    bool shared;
} kblock;

struct bnn_laplace {
    bnn_curv *c; /* owned */
    bnn_task task;
    bool von; /* bnn__laplace_set_von */
    /* The likelihood has a free noise σ (homoscedastic Gaussian regression): log_lik carries it
     * and the marginal likelihood tunes it. Classification and the heteroscedastic Gaussian,
     * whose network predicts its own noise, have none: σ stays 1 (hf = 1) there. */
    bool noise;
    /* The power of hf = 1/σ² that scales H: 1 for a GGN or sampled Fisher (the curvature of
     * the loss at σ = 1, README §2), 2 for the empirical Fisher of the Gaussian likelihood with
     * a free σ, whose per-example gradients J ᵀ(f − y)/σ² make Σ g gᵀ = H/σ⁴ (H: the gradients'
     * outer products at σ = 1). laplace-torch scales every curvature by 1/σ² (and its regression
     * EF by another 2, from MSELoss): at σ = 0.5 its EF posterior's curvature term is half the
     * empirical Fisher's (8 against 16 times H), so where the prior is small beside it its
     * standard deviations are √2 times. */
    int hpow;
    bnn_hessian structure;
    int64_t P, N, K;
    double loss; /* laplace-torch's `loss`: Σ_n CE or ½ Σ_n (f − y)² at the MAP (README §1) */
    double *mean;  /* θ_MAP of the subset (P) */
    float *meanf;  /* the same in float, for forward passes and samples */
    double theta2; /* ‖θ_MAP − 0‖² */
    double *lam;   /* P eigenvalues of H in the basis described above */
    double *Q;     /* full: P × P eigenvectors of H as columns (Q[i·P + k]); else NULL */
    int64_t nblocks;
    kblock *blk; /* kron: nblocks blocks; else NULL */
    /* lowrank: U (P × r row-major, column j the eigenvector of lam[j]; borrowed from c) and
     * r. lam holds the r eigenvalues followed by P − r zeros, so that every formula written
     * over the P eigenvalues (lml, its derivatives, logdet, optimize) holds unchanged. */
    const double *U;
    int64_t rank;
    double delta, sigma;
    /* Per-layer prior (laplace-torch's layer-wise prior_precision, one δ per parameter tensor):
     * group l owns parameters lay_off[l] .. lay_off[l+1] − 1. From the curvature when it
     * records them (bnn_curv_compute: each Linear layer's weight, then its bias; files written
     * before: one group per layer); else kron: one per block (a block is one tensor); diag,
     * full and lowrank: one group, unless bnn__laplace_set_layout gives them. A kron group is
     * whole blocks, so that δ_l is exact in the blocks' eigenbasis. dl holds δ_l. While the
     * δ_l are all equal, layered is false and every computation takes the scalar path with
     * delta (unchanged); otherwise dpar[i] = δ_{l(i)} and, for full, Lt
     * is L⁻ᵀ for the Cholesky factor L Lᵀ = hf·H + diag(δ_{l(i)}) at the current σ, so that
     * Σ = Lt Ltᵀ takes the place of Q diag(1/(hf λ + δ)) Qᵀ in the predictive and samples. */
    int64_t nlay;
    int64_t *lay_off; /* nlay + 1 */
    double *dl;       /* nlay */
    bool layered;
    double *dpar; /* P, when layered */
    double *Lt;   /* full and layered: P × P, upper triangular (row-major) */
    /* bnn_laplace_set_progress: called after each step of the prior's optimisation */
    void (*progress)(void *ctx, int64_t step, int64_t steps);
    void *progress_ctx;
};

void bnn_laplace_set_progress(bnn_laplace *la, void (*progress)(void *ctx, int64_t step,
                                                                int64_t steps),
                              void *ctx) {
    if (la) la->progress = progress, la->progress_ctx = ctx;
}

/* The factor on H in the posterior precision at noise σ: hf = 1/σ², or hf² for the empirical
 * Fisher of a Gaussian likelihood (hpow above). The log-likelihood's own hf is always 1/σ². */
static inline double hscale(const bnn_laplace *la, double sigma) {
    const double hf = 1.0 / (sigma * sigma);
    return la->hpow == 2 ? hf * hf : hf;
}

/* δ for parameter i: the scalar δ unless per-layer precisions differ. */
static inline double dlt(const bnn_laplace *la, int64_t i) {
    return la->layered ? la->dpar[i] : la->delta;
}

/* ------------------------------------------------------------------ construction */

/* A GGN or Fisher, and each Kronecker factor of one, is positive semi-definite. Their float sums
 * leave eigenvalues of about −1e-8 of the largest (−6e-7 of 54 on moons), which are clipped to 0;
 * below −1e-4 of it the matrix is damaged (a file edited by hand), not rounded. w: n eigenvalues,
 * ascending. */
static int check_psd_eig(const double *w, int64_t n, const char *what) {
    if (w[0] < -1e-4 * fmax(fabs(w[0]), fabs(w[n - 1])))
        return bnn__error(BNN_EINVAL,
                          "Laplace: %s has eigenvalue %g (largest %g): it is not "
                          "positive semi-definite",
                          what, w[0], w[n - 1]);
    return 0;
}

/* The low-rank solves, log-determinant and samples (Woodbury) assume orthonormal eigenvectors,
 * UᵀU = I. Both ways of computing U give it to rounding (max |UᵀU − I| 9e-16 from LAPACK's dense
 * eigenvectors and 1.6e-15 from the matrix-free Rayleigh–Ritz, rank 20 over moons' 2802 weights);
 * a U off by more than 1e-6 was altered (a file edited by hand), and would give predictions that
 * match no U diag(λ) Uᵀ. O(P r²), on setting up the posterior only. U: P × r, row-major. */
static int check_orthonormal(const double *U, int64_t P, int64_t r) {
    double *G = calloc((size_t)(r * r), sizeof *G);
    if (!G)
        return bnn__error(BNN_ENOMEM, "Laplace: cannot allocate %lld × %lld", (long long)r,
                          (long long)r);
    for (int64_t i = 0; i < P; i++) {
        const double *u = U + i * r;
        for (int64_t a = 0; a < r; a++)
            for (int64_t b = 0; b <= a; b++)
                G[a * r + b] += u[a] * u[b];
    }
    double worst = 0.0;
    int64_t wa = 0, wb = 0;
    for (int64_t a = 0; a < r; a++)
        for (int64_t b = 0; b <= a; b++) {
            const double e = fabs(G[a * r + b] - (a == b ? 1.0 : 0.0));
            if (e > worst) worst = e, wa = a, wb = b;
        }
    free(G);
    if (worst > 1e-6)
        return bnn__error(BNN_EINVAL,
                          "Laplace: the low-rank eigenvectors are not orthonormal "
                          "(column %lld · column %lld is off by %g)",
                          (long long)wa, (long long)wb, worst);
    return 0;
}

/* w (n) ascending eigenvalues and Q (n × n, column k = eigenvector k) of the symmetric n × n
 * matrix S (row-major), by LAPACK's divide-and-conquer dsyevd (dsyevr from n = 32,767 on:
 * bnn__syev). */
static int sym_eig(double *Q, double *w, const double *S, int64_t n, const char *what) {
    if (!bnn__all_finite(S, n * n))
        return bnn__error(BNN_EINVAL, "laplace: %s has non-finite entries", what);
    memcpy(Q, S, (size_t)(n * n) * sizeof(double));
    const int info = bnn__syev(Q, n, w, BNN__SYEV_AUTO);
    if (info == LAPACK_WORK_MEMORY_ERROR)
        return bnn__error(BNN_ENOMEM, "laplace: no memory for the eigendecomposition of %s", what);
    if (info != 0)
        return bnn__error(BNN_EINVAL,
                          "laplace: eigendecomposition of %s (%lld × %lld) failed "
                          "(LAPACK %s info %d)",
                          what, (long long)n, (long long)n,
                          bnn__syev_method(n) == BNN__SYEV_DC ? "dsyevd" : "dsyevr", info);
    for (int64_t i = 0; i < n; i++) /* LAPACK's columns are our rows: transpose */
        for (int64_t k = 0; k < i; k++) {
            const double t = Q[i * n + k];
            Q[i * n + k] = Q[k * n + i], Q[k * n + i] = t;
        }
    return 0;
}

static void *alloc_doubles(int64_t n) {
    size_t bytes = bnn__bytes(n > 0 ? n : 1, sizeof(double));
    return bytes ? bnn__alloc(bytes) : NULL;
}

void bnn_laplace_free(bnn_laplace *la) {
    if (!la) return;
    for (int64_t b = 0; la->blk && b < la->nblocks; b++) {
        bnn__free(la->blk[b].l0), bnn__free(la->blk[b].l1);
        bnn__free(la->blk[b].Q0), bnn__free(la->blk[b].Q1);
    }
    bnn__free(la->blk);
    bnn__free(la->Lt), bnn__free(la->dpar), bnn__free(la->dl), bnn__free(la->lay_off);
    bnn__free(la->Q), bnn__free(la->lam), bnn__free(la->meanf), bnn__free(la->mean);
    bnn_curv_free(la->c);
    bnn__free(la);
}

/* Kronecker blocks (README §2–3): each factor eigendecomposed once, negative eigenvalues set to
 * 0 as laplace-torch's Kron.decompose does, and lam[off + k·n1 + j] = λB_k·λA_j, which is the
 * eigenvalue of B ⊗ A for eigenvector (Q_B e_k) ⊗ (Q_A e_j) in row-major (out × in) order. */
static int kron_setup(bnn_laplace *la) {
    const bnn_curv *c = la->c;
    la->nblocks = bnn_curv_nblocks(c);
    if (la->nblocks < 1) return bnn__error(BNN_EINVAL, "laplace: kron curvature has no blocks");
    la->blk = bnn__alloc_array(la->nblocks, sizeof(kblock));
    if (!la->blk)
        return bnn__error(BNN_ENOMEM, "laplace: cannot allocate %lld kron blocks",
                          (long long)la->nblocks);
    int64_t off = 0;
    const double *prev_f0 = NULL; /* the previous block's B */
    for (int64_t b = 0; b < la->nblocks; b++) {
        kblock *k = &la->blk[b];
        int nf = 0;
        const double *f0 = NULL, *f1 = NULL;
        int64_t n0 = 0, n1 = 0;
        int rc = bnn_curv_block(c, b, &nf, &f0, &n0, &f1, &n1);
        if (rc) return rc;
        if ((nf != 1 && nf != 2) || !f0 || n0 < 1 || (nf == 2 && (!f1 || n1 < 1)))
            return bnn__error(BNN_EINVAL,
                              "laplace: kron block %lld is malformed (%d factors, "
                              "%lld × %lld)",
                              (long long)b, nf, (long long)n0, (long long)n1);
        if (nf == 1) n1 = 1;
        k->nf = nf, k->n0 = n0, k->n1 = n1, k->off = off;
        if (off + n0 * n1 > la->P)
            return bnn__error(BNN_ESHAPE, "laplace: kron blocks hold more than P = %lld parameters",
                              (long long)la->P);
        k->l0 = alloc_doubles(n0), k->Q0 = alloc_doubles(n0 * n0);
        if (nf == 2) k->l1 = alloc_doubles(n1), k->Q1 = alloc_doubles(n1 * n1);
        if (!k->l0 || !k->Q0 || (nf == 2 && (!k->l1 || !k->Q1)))
            return bnn__error(BNN_ENOMEM, "laplace: cannot allocate kron block %lld", (long long)b);
        char what[64];
        snprintf(what, sizeof what, "kron block %lld factor 0", (long long)b);
        const kblock *w = b > 0 ? &la->blk[b - 1] : NULL;
        k->shared = nf == 1 && w && w->nf == 2 && w->n0 == n0 &&
                    !memcmp(f0, prev_f0, (size_t)(n0 * n0) * sizeof(double));
        if (k->shared) { /* what the decomposition of the same matrix gives */
            memcpy(k->Q0, w->Q0, (size_t)(n0 * n0) * sizeof(double));
            memcpy(k->l0, w->l0, (size_t)n0 * sizeof(double));
        } else {
            if ((rc = sym_eig(k->Q0, k->l0, f0, n0, what)) ||
                (rc = check_psd_eig(k->l0, n0, what)))
                return rc;
            for (int64_t i = 0; i < n0; i++)
                k->l0[i] = k->l0[i] > 0 ? k->l0[i] : 0.0;
        }
        prev_f0 = f0;
        if (nf == 2) {
            snprintf(what, sizeof what, "kron block %lld factor 1", (long long)b);
            if ((rc = sym_eig(k->Q1, k->l1, f1, n1, what)) || (rc = check_psd_eig(k->l1, n1, what)))
                return rc;
            for (int64_t j = 0; j < n1; j++)
                k->l1[j] = k->l1[j] > 0 ? k->l1[j] : 0.0;
        }
        for (int64_t i = 0; i < n0; i++)
            for (int64_t j = 0; j < n1; j++)
                la->lam[off + i * n1 + j] = nf == 2 ? k->l0[i] * k->l1[j] : k->l0[i];
        off += n0 * n1;
    }
    if (off != la->P)
        return bnn__error(BNN_ESHAPE,
                          "laplace: kron blocks hold %lld parameters, expected P = %lld",
                          (long long)off, (long long)la->P);
    return 0;
}

/* The layer layout (see struct bnn_laplace): n layers of the given sizes (summing to P). */
static int layout_set(bnn_laplace *la, int64_t n, const int64_t *sizes) {
    int64_t *off = bnn__alloc_array(n + 1, sizeof(int64_t));
    double *dl = alloc_doubles(n), *dpar = la->dpar ? la->dpar : alloc_doubles(la->P);
    if (!off || !dl || !dpar) {
        bnn__free(off), bnn__free(dl);
        if (dpar != la->dpar) bnn__free(dpar);
        return bnn__error(BNN_ENOMEM, "laplace: cannot allocate %lld layers", (long long)n);
    }
    off[0] = 0;
    for (int64_t l = 0; l < n; l++)
        off[l + 1] = off[l] + sizes[l], dl[l] = la->delta;
    bnn__free(la->lay_off), bnn__free(la->dl), bnn__free(la->Lt);
    la->lay_off = off, la->dl = dl, la->dpar = dpar, la->Lt = NULL;
    la->nlay = n, la->layered = false;
    return 0;
}

/* kron: whether every group boundary is a block boundary (the groups are whole blocks). */
static bool kron_aligned(const bnn_laplace *la, int64_t n, const int64_t *sizes) {
    int64_t b = 0, bend = 0, gend = 0;
    for (int64_t l = 0; l < n; l++) {
        gend += sizes[l];
        for (; b < la->nblocks && bend < gend; b++) bend += la->blk[b].n0 * la->blk[b].n1;
        if (bend != gend) return false;
    }
    return true;
}

/* The groups from the curvature when it records them; else kron: one per block; else one. */
static int layout_setup(bnn_laplace *la) {
    int64_t one = la->P;
    int64_t cn;
    const int64_t *cs;
    bnn__curv_layers(la->c, &cn, &cs);
    if (cn > 0) {
        if (la->structure == BNN_HESS_KRON && !kron_aligned(la, cn, cs))
            return bnn__error(BNN_ESHAPE, "laplace: the curvature's layer sizes (a file's "
                              "bnn.laplace.layers) do not fall on its Kronecker blocks' bounds");
        return layout_set(la, cn, cs);
    }
    if (la->structure != BNN_HESS_KRON) return layout_set(la, 1, &one);
    int64_t *sizes = bnn__alloc_array(la->nblocks, sizeof(int64_t));
    if (!sizes)
        return bnn__error(BNN_ENOMEM, "laplace: cannot allocate %lld layers", (long long)la->nblocks);
    for (int64_t b = 0; b < la->nblocks; b++) sizes[b] = la->blk[b].n0 * la->blk[b].n1;
    int rc = layout_set(la, la->nblocks, sizes);
    bnn__free(sizes);
    return rc;
}

/* Internal: the groups of the subset for structures whose curvature does not record them
 * (diag, full, lowrank); kron's must be whole blocks. Resets the prior to the scalar δ. */
int bnn__laplace_set_layout(bnn_laplace *la, int64_t nlayers, const int64_t *sizes) {
    if (!la || nlayers < 1 || !sizes)
        return bnn__error(BNN_EINVAL, "bnn__laplace_set_layout: bad arguments");
    int64_t s = 0;
    for (int64_t l = 0; l < nlayers; l++) {
        if (sizes[l] < 1 || sizes[l] > la->P - s)
            return bnn__error(sizes[l] < 1 ? BNN_EINVAL : BNN_ESHAPE,
                              "bnn__laplace_set_layout: layer %lld has %lld parameters",
                              (long long)l, (long long)sizes[l]);
        s += sizes[l];
    }
    if (s != la->P)
        return bnn__error(BNN_ESHAPE,
                          "bnn__laplace_set_layout: layers hold %lld parameters, P = %lld",
                          (long long)s, (long long)la->P);
    if (la->structure == BNN_HESS_KRON && !kron_aligned(la, nlayers, sizes))
        return bnn__error(BNN_ESHAPE, "bnn__laplace_set_layout: the layers do not match the kron "
                          "blocks");
    return layout_set(la, nlayers, sizes);
}

/* The constructor in double: the posterior keeps θ_MAP in double (its ‖θ‖² enters the marginal
 * likelihood), so callers holding a double MAP (files, tests against float64 references) lose
 * nothing. Takes ownership of c, also on failure. */
static int laplace_create(bnn_laplace **out, bnn_curv *c, const double *mean, bnn_task task,
                          double **eigvec, const double *eigval);

int bnn__laplace_new_f64(bnn_laplace **out, bnn_curv *c, const double *mean, bnn_task task) {
    return laplace_create(out, c, mean, task, NULL, NULL);
}

/* The constructor, for a full curvature with its eigendecomposition given (*eigvec, eigval: the
 * eigenvectors are taken over, *eigvec set to NULL; either NULL: computed here). */
static int laplace_create(bnn_laplace **out, bnn_curv *c, const double *mean, bnn_task task,
                          double **eigvec, const double *eigval) {
    if (out) *out = NULL;
    if (!out || !c || !mean) {
        bnn_curv_free(c);
        return bnn__error(BNN_EINVAL, "bnn_laplace_new: NULL argument");
    }
    if (task != BNN_TASK_CLASSIFICATION && task != BNN_TASK_REGRESSION) {
        bnn_curv_free(c);
        return bnn__error(BNN_EINVAL, "bnn_laplace_new: unknown task %d", (int)task);
    }
    /* A curvature that knows its likelihood (bnn_curv_compute's, a file's) is for that
     * likelihood's task: a softmax GGN under a regression's Gaussian predictive would be another
     * model's posterior, and every later step would succeed on it. */
    bnn_lik_kind clik;
    if (bnn__curv_lik(c, &clik) == 0 && bnn_lik_task(clik) != task) {
        bnn_curv_free(c);
        return bnn__error(BNN_EINVAL, "bnn_laplace_new: the curvature is of a %s likelihood, "
                          "for %s, and the task is %s", bnn_lik_name(clik),
                          task == BNN_TASK_REGRESSION ? "classification" : "regression",
                          task == BNN_TASK_REGRESSION ? "regression" : "classification");
    }
    bnn_laplace *la = bnn__alloc(sizeof *la);
    if (!la) {
        bnn_curv_free(c);
        return bnn__error(BNN_ENOMEM, "bnn_laplace_new: out of memory");
    }
    la->c = c, la->task = task, la->structure = bnn_curv_structure(c);
    bnn_lik_kind lik;
    la->noise = task == BNN_TASK_REGRESSION &&
                (bnn__curv_lik(c, &lik) != 0 || lik == BNN_LIK_GAUSSIAN);
    bnn_curvature kind;
    la->hpow = la->noise && bnn__curv_kind(c, &kind) == 0 && kind == BNN_CURV_EF ? 2 : 1;
    la->P = bnn_curv_nparams(c), la->N = bnn_curv_ndata(c), la->K = bnn_curv_noutputs(c);
    la->loss = bnn_curv_loss(c);
    la->delta = 1.0, la->sigma = 1.0;
    int rc = 0;
    if (la->P < 1 || la->N < 1 || la->K < 1 || bnn_curv_offset(c) < 0)
        rc = bnn__error(BNN_EINVAL,
                        "the Laplace posterior: the curvature needs at least one parameter, data "
                        "point and output and an offset >= 0 (it has P = %lld, N = %lld, "
                        "K = %lld, offset %lld)",
                        (long long)la->P, (long long)la->N, (long long)la->K,
                        (long long)bnn_curv_offset(c));
    else if (!isfinite(la->loss))
        rc = bnn__error(BNN_EINVAL, "Laplace: the curvature's loss is %g (not finite)", la->loss);
    if (!rc) {
        la->mean = alloc_doubles(la->P), la->lam = alloc_doubles(la->P);
        la->meanf = bnn__alloc_array(la->P, sizeof(float));
        if (!la->mean || !la->lam || !la->meanf)
            rc = bnn__error(BNN_ENOMEM, "bnn_laplace_new: cannot allocate P = %lld values",
                            (long long)la->P);
    }
    if (!rc) {
        double s = 0;
        for (int64_t i = 0; i < la->P; i++) {
            la->mean[i] = mean[i], la->meanf[i] = (float)mean[i];
            s += mean[i] * mean[i];
        }
        la->theta2 = s;
        if (!isfinite(s))
            rc = bnn__error(BNN_EINVAL, "Laplace: the mean (the weights) is not finite");
    }
    if (!rc) switch (la->structure) {
        case BNN_HESS_DIAG: {
            const double *d = bnn_curv_diag(c);
            if (!d) {
                rc = bnn__error(BNN_EINVAL, "bnn_laplace_new: diag curvature without a diagonal");
                break;
            }
            if (!bnn__all_finite(d, la->P)) {
                rc = bnn__error(BNN_EINVAL,
                                "Laplace: the curvature's diagonal has non-finite entries");
                break;
            }
            memcpy(la->lam, d, (size_t)la->P * sizeof(double));
            break;
        }
        case BNN_HESS_FULL: {
            const double *H = bnn_curv_dense(c);
            if (!H) {
                rc = bnn__error(BNN_EINVAL, "bnn_laplace_new: full curvature without a matrix");
                break;
            }
            /* Not clipped: log det(hf·H + δ I) is then exact, as laplace-torch's torch.logdet.
             * A file that saved the eigendecomposition gives it (its reader checked it against H,
             * and hands its P × P eigenvectors over rather than have them copied); else LAPACK
             * computes it, the one O(P³) step of loading. */
            if (eigvec && *eigvec && eigval) {
                la->Q = *eigvec, *eigvec = NULL;
                memcpy(la->lam, eigval, (size_t)la->P * sizeof(double));
            } else if (!(la->Q = alloc_doubles(la->P * la->P))) {
                rc = bnn__error(BNN_ENOMEM,
                                "bnn_laplace_new: cannot allocate %lld × %lld "
                                "eigenvectors",
                                (long long)la->P, (long long)la->P);
                break;
            } else {
                rc = sym_eig(la->Q, la->lam, H, la->P, "the full curvature");
            }
            if (!rc) rc = check_psd_eig(la->lam, la->P, "the full curvature");
            break;
        }
        case BNN_HESS_KRON: rc = kron_setup(la); break;
        case BNN_HESS_LOWRANK: {
            const double *U = NULL, *eig = NULL;
            int64_t r = 0;
            if ((rc = bnn_curv_lowrank(c, &U, &eig, &r))) break;
            if (!U || !eig || r < 1 || r > la->P) {
                rc = bnn__error(BNN_EINVAL,
                                "bnn_laplace_new: low-rank curvature of rank %lld "
                                "over P = %lld",
                                (long long)r, (long long)la->P);
                break;
            }
            if (!bnn__all_finite(eig, r) || !bnn__all_finite(U, la->P * r)) {
                rc = bnn__error(BNN_EINVAL, "Laplace: the low-rank curvature has "
                                            "non-finite entries");
                break;
            }
            if ((rc = check_orthonormal(U, la->P, r))) break;
            la->U = U, la->rank = r;
            memset(la->lam, 0, (size_t)la->P * sizeof(double));
            memcpy(la->lam, eig, (size_t)r * sizeof(double));
            break;
        }
        default:
            rc =
                bnn__error(BNN_EINVAL, "bnn_laplace_new: unknown structure %d", (int)la->structure);
        }
    if (!rc) rc = layout_setup(la);
    if (rc) {
        bnn_laplace_free(la);
        return rc;
    }
    *out = la;
    return 0;
}

/* bnn_laplace_new and bnn_laplace_new_from_params: the mean in double from v, which is the
 * subset's P values (full = false) or the model's whole flat vector, read at the subset's
 * segments (full = true). */
static int laplace_new_from(bnn_laplace **out, bnn_curv *c, const float *v, bool full,
                            bnn_task task, const char *fn, double **eigvec,
                            const double *eigval) {
    if (out) *out = NULL;
    if (!out || !c || !v) {
        bnn_curv_free(c);
        return bnn__error(BNN_EINVAL, "%s: NULL argument", fn);
    }
    const int64_t P = bnn_curv_nparams(c);
    double *m = alloc_doubles(P);
    if (!m) {
        bnn_curv_free(c);
        return bnn__error(BNN_ENOMEM, "%s: cannot allocate P = %lld values", fn, (long long)P);
    }
    for (int64_t sg = 0, at = 0; sg < (full ? bnn_curv_nsegments(c) : 1); sg++) {
        int64_t so = 0, sl = P;
        if (full) bnn_curv_segment(c, sg, &so, &sl);
        for (int64_t i = 0; i < sl; i++)
            m[at + i] = v[so + i];
        at += sl;
    }
    int rc = laplace_create(out, c, m, task, eigvec, eigval);
    bnn__free(m);
    return rc;
}

int bnn_laplace_new(bnn_laplace **out, bnn_curv *c, const float *mean, bnn_task task) {
    return laplace_new_from(out, c, mean, false, task, "bnn_laplace_new", NULL, NULL);
}

int bnn_laplace_new_from_params(bnn_laplace **out, bnn_curv *c, const float *params,
                                bnn_task task) {
    return laplace_new_from(out, c, params, true, task, "bnn_laplace_new_from_params", NULL,
                            NULL);
}

int bnn__laplace_new_eig(bnn_laplace **out, bnn_curv *c, const float *params, bnn_task task,
                         double **eigvec, const double *eigval) {
    if (c && bnn_curv_structure(c) != BNN_HESS_FULL) eigvec = NULL, eigval = NULL;
    return laplace_new_from(out, c, params, true, task, "bnn_laplace_new_from_params", eigvec,
                            eigval);
}

int bnn__laplace_full_eig(const bnn_laplace *la, const double **eigvec, const double **eigval) {
    if (la->structure != BNN_HESS_FULL || !la->Q)
        return bnn__error(BNN_EINVAL, "laplace: not a full posterior");
    *eigvec = la->Q, *eigval = la->lam;
    return 0;
}

int bnn__laplace_kron_eigvals(const bnn_laplace *la, int64_t block, int factor, const double **vals,
                              int64_t *n) {
    if (la->structure != BNN_HESS_KRON || block < 0 || block >= la->nblocks || factor < 0 ||
        factor >= la->blk[block].nf)
        return bnn__error(BNN_EINVAL, "laplace: no kron factor %d in block %lld", factor,
                          (long long)block);
    const kblock *k = &la->blk[block];
    *vals = factor ? k->l1 : k->l0;
    *n = factor ? k->n1 : k->n0;
    return 0;
}

const bnn_curv *bnn_laplace_curv(const bnn_laplace *la) { return la->c; }

/* σ is fixed at 1 for classification (laplace-torch refuses any other value there) and for the
 * heteroscedastic Gaussian (its noise is a network output, part of the loss). Values are
 * stored as given; the calls that use them check them (lml returns NaN, the others BNN_EINVAL). */
void bnn_laplace_set_prior(bnn_laplace *la, double prior_prec, double sigma) {
    la->delta = prior_prec;
    la->sigma = la->noise ? sigma : 1.0;
    la->layered = false;
    for (int64_t l = 0; l < la->nlay; l++)
        la->dl[l] = prior_prec;
    bnn__free(la->Lt), la->Lt = NULL;
}
double bnn_laplace_prior_prec(const bnn_laplace *la) { return la->delta; }
double bnn_laplace_sigma(const bnn_laplace *la) { return la->sigma; }

bnn_task bnn__laplace_task(const bnn_laplace *la) { return la->task; }
int bnn__laplace_hpow(const bnn_laplace *la) { return la->hpow; }

/* A prior precision and σ the posterior can be evaluated at. */
static bool prior_ok(double delta, double sigma) {
    return delta > 0 && isfinite(delta) && sigma > 0 && isfinite(sigma);
}

static int check_prior(const bnn_laplace *la, const char *fn) {
    if (!la) return bnn__error(BNN_EINVAL, "%s: the posterior is NULL", fn);
    if (!prior_ok(la->delta, la->sigma))
        return bnn__error(BNN_EINVAL, "%s: prior precision %g and σ %g must be positive and finite",
                          fn, la->delta, la->sigma);
    return 0;
}

/* ------------------------------------------------------------------ marginal likelihood */

/* The smallest of n > 0 values. */
static double min_of(const double *x, int64_t n) {
    double m = x[0];
    for (int64_t i = 1; i < n; i++)
        m = x[i] < m ? x[i] : m;
    return m;
}

/* Why the log marginal likelihood at prior precision delta (the smallest, for a per-layer prior)
 * and noise σ is not finite, as the error message (BNN_EDIVERGED). The usual cause
 * is a curvature whose rounding left an eigenvalue below −δ (float Kronecker factors, or an
 * extreme model: a heteroscedastic one predicting σ ~ 1e-9), so that H + δI is not positive
 * definite; then a prior term that overflows; then the loss. */
static int lml_not_finite(const bnn_laplace *la, double delta, double sigma, const char *at) {
    if (!la->noise) sigma = 1.0;
    const double hf = 1.0 / (sigma * sigma), hs = hscale(la, sigma);
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < la->P; i++) {
        const double v = hs * la->lam[i];
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    if (!(lo + delta > 0.0))
        return bnn__error(BNN_EDIVERGED, "the log marginal likelihood is not finite %s: the "
                          "posterior precision is not positive definite there (the curvature's "
                          "smallest eigenvalue %.3g against a largest of %.3g: rounding at that "
                          "scale; a larger prior precision keeps clear of it)", at, lo, hi);
    if (!isfinite(delta * la->theta2))
        return bnn__error(BNN_EDIVERGED, "the log marginal likelihood is not finite %s: its prior "
                          "term δ‖θ‖²/2 overflows (a smaller prior precision keeps clear of it)", at);
    if (!isfinite(hf * la->loss))
        return bnn__error(BNN_EDIVERGED, "the log marginal likelihood is not finite %s: its loss "
                          "term overflows", at);
    return bnn__error(BNN_EDIVERGED, "the log marginal likelihood is not finite %s (the "
                      "curvature's eigenvalues run from %.3g to %.3g)", at, lo, hi);
}

/* The log-likelihood term of the log marginal likelihood at noise σ (1 without a free noise) and
 * ∂lml/∂log σ (0 without one) given tr_lik = Σ hs λ/(hs λ + δ), the trace of the likelihood's
 * share of the posterior precision: see below. */
static double loglik_terms(const bnn_laplace *la, double sigma, double tr_lik, double *dlog_sigma) {
    const bool reg = la->noise;
    const double hf = 1.0 / (sigma * sigma), NK = (double)la->N * (double)la->K;
    if (dlog_sigma) *dlog_sigma = reg ? 2.0 * hf * la->loss - NK + la->hpow * tr_lik : 0.0;
    return reg ? -hf * la->loss - NK * log(sigma * sqrt(2.0 * LAPLACE_PI)) : -la->loss;
}

/* README §4 (Daxberger et al. 2021, eq. 4; laplace-torch BaseLaplace.log_marginal_likelihood):
 *   lml(δ, σ) = log_lik − ½ [ Σ_i log(hf λ_i + δ) − P log δ + δ ‖θ‖² ],
 * log_lik = −loss (classification, and the heteroscedastic Gaussian, whose loss is its whole
 * NLL) or −hf·loss − N·K·log(σ √(2π)) (Gaussian regression, §1), and
 *   ∂lml/∂log δ = −½ [ Σ_i δ/(hf λ_i + δ) − P + δ ‖θ‖² ],
 *   ∂lml/∂log σ = 2 hf·loss − N·K + Σ_i hf λ_i/(hf λ_i + δ)   (∂hf/∂log σ = −2 hf;
 * with hs = hf² on H, the empirical Fisher's, the last sum is 2 Σ_i hs λ_i/(hs λ_i + δ)).
 * The σ-derivative is the exact one, also for kron (laplace-torch's autograd loses the log-det
 * term there, README §6 "Kron quirk"; we do not reproduce that). */
double bnn_laplace_lml(const bnn_laplace *la, double prior_prec, double sigma, double *dlog_prior,
                       double *dlog_sigma) {
    if (!la) {
        bnn__error(BNN_EINVAL, "bnn_laplace_lml: the posterior is NULL");
        return NAN;
    }
    const bool reg = la->noise;
    if (!reg) sigma = 1.0;
    if (!prior_ok(prior_prec, sigma)) {
        bnn__error(BNN_EINVAL, "bnn_laplace_lml: prior precision %g and σ %g must be positive "
                   "and finite", prior_prec, sigma);
        return NAN;
    }
    const double delta = prior_prec, hs = hscale(la, sigma);
    double logdet = 0, tr_prior = 0, tr_lik = 0;
    for (int64_t i = 0; i < la->P; i++) {
        const double hl = hs * la->lam[i], d = hl + delta;
        logdet += log(d);
        tr_prior += delta / d;
        tr_lik += hl / d;
    }
    const double loglik = loglik_terms(la, sigma, tr_lik, dlog_sigma);
    const double P = (double)la->P;
    if (dlog_prior) *dlog_prior = -0.5 * (tr_prior - P + delta * la->theta2);
    const double lml = loglik - 0.5 * (logdet - P * log(delta) + delta * la->theta2);
    if (!isfinite(lml)) {
        char at[96];
        snprintf(at, sizeof at, "at prior precision %g", delta);
        if (reg) snprintf(at + strlen(at), sizeof at - strlen(at), " and noise sigma %g", sigma);
        lml_not_finite(la, delta, sigma, at);
    }
    return lml;
}

double bnn_laplace_rounding(const bnn_laplace *la) {
    if (!la) return NAN;
    const double hf = hscale(la, la->sigma);
    double hi = 0.0;
    for (int64_t i = 0; i < la->P; i++)
        hi = fmax(hi, fabs(hf * la->lam[i]));
    return bnn_curv_unit(la->c) * hi;
}

double bnn_laplace_rounding_ratio(const bnn_laplace *la) {
    if (!la) return NAN;
    const double r = bnn_laplace_rounding(la), hf = hscale(la, la->sigma);
    /* lowrank: only the r kept eigenvalues come from the sums (the rest are exact zeros) */
    const int64_t n = la->structure == BNN_HESS_LOWRANK ? la->rank : la->P;
    double lo = INFINITY;
    if (la->layered && la->structure == BNN_HESS_FULL) {
        /* lam is in H's eigenbasis and the δ_i in parameter space: Weyl's lower bound,
         * λ_min(hf·H + diag(δ)) ≥ hf·λ_min(H) + min δ_i */
        double lmin = INFINITY, dmin = INFINITY;
        for (int64_t i = 0; i < n; i++)
            lmin = fmin(lmin, hf * la->lam[i]), dmin = fmin(dmin, la->dpar[i]);
        lo = lmin + dmin;
    } else {
        for (int64_t i = 0; i < n; i++) /* diag and kron: λ_i and δ_i of the same direction */
            lo = fmin(lo, hf * la->lam[i] + dlt(la, i));
    }
    return n > 0 && lo > 0.0 ? r / lo : (r > 0.0 ? INFINITY : 0.0);
}

double bnn_laplace_logdet(const bnn_laplace *la) {
    if (check_prior(la, "bnn_laplace_logdet")) return NAN;
    const double hf = hscale(la, la->sigma);
    double s = 0;
    if (la->layered && la->structure == BNN_HESS_FULL) {
        for (int64_t i = 0; i < la->P; i++) /* L⁻ᵀ has diagonal 1/L_ii */
            s -= 2.0 * log(la->Lt[i * la->P + i]);
        return s;
    }
    for (int64_t i = 0; i < la->P; i++)
        s += log(hf * la->lam[i] + dlt(la, i));
    return s;
}

/* README §5–6: Adam on x = log δ (classification and heteroscedastic, from 0) or
 * x = (log δ, log σ) (Gaussian regression, from (1, 1)), minimising −lml, exactly as
 * torch.optim.Adam (PyTorch 1.13 single-tensor path,
 * lr 0.1, betas (0.9, 0.999), eps 1e-8) computes it in float64:
 *   m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g·g;
 *   x ← x − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps).
 * This is laplace-torch's optimize_prior_precision(method='marglik') and its regression example. */
void bnn__laplace_set_von(bnn_laplace *la) { la->von = true; }

/* A VON posterior's δ is part of q (S was formed with it): tuning it would describe another
 * distribution than the one learnt. */
static int refuse_von(const bnn_laplace *la, const char *fn) {
    return la->von ? bnn__error(BNN_EINVAL, "%s: a VON posterior (bnn_von_last_layer): its prior "
                                "precision is part of q, not one to tune by the marginal "
                                "likelihood", fn)
                   : 0;
}

int bnn_laplace_optimize(bnn_laplace *la, int64_t steps) {
    if (!la) return bnn__error(BNN_EINVAL, "bnn_laplace_optimize: the posterior is NULL");
    if (refuse_von(la, "bnn_laplace_optimize")) return BNN_EINVAL;
    if (steps < 0 || steps > BNN_LAPLACE_MAX_STEPS)
        return bnn__error(BNN_EINVAL, "bnn_laplace_optimize: steps = %lld (0 to %d)",
                          (long long)steps, BNN_LAPLACE_MAX_STEPS);
    const bool reg = la->noise;
    const int nx = reg ? 2 : 1;
    const double lr = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    double x[2] = {reg ? 1.0 : 0.0, reg ? 1.0 : 0.0}, m[2] = {0, 0}, v[2] = {0, 0};
    for (int64_t t = 1; t <= steps; t++) {
        double g[2] = {0, 0};
        double lml = bnn_laplace_lml(la, exp(x[0]), reg ? exp(x[1]) : 1.0, &g[0], &g[1]);
        g[0] = -g[0], g[1] = -g[1];
        if (!isfinite(lml) || !isfinite(g[0]) || !isfinite(g[1])) {
            char at[128];
            snprintf(at, sizeof at, "at step %lld of the prior's optimisation (prior precision %g",
                     (long long)t, exp(x[0]));
            if (reg) snprintf(at + strlen(at), sizeof at - strlen(at), ", noise sigma %g", exp(x[1]));
            snprintf(at + strlen(at), sizeof at - strlen(at), ")");
            return lml_not_finite(la, exp(x[0]), reg ? exp(x[1]) : 1.0, at);
        }
        const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
        const double step_size = lr / bc1, bc2_sqrt = sqrt(bc2);
        for (int j = 0; j < nx; j++) {
            m[j] = m[j] * beta1 + (1.0 - beta1) * g[j];
            v[j] = v[j] * beta2 + (1.0 - beta2) * g[j] * g[j];
            const double denom = sqrt(v[j]) / bc2_sqrt + eps;
            x[j] = x[j] + -step_size * m[j] / denom;
        }
        if (la->progress) la->progress(la->progress_ctx, t, steps);
    }
    const double delta = exp(x[0]), sigma = reg ? exp(x[1]) : 1.0;
    if (!isfinite(delta) || !(delta > 0) || !isfinite(sigma) || !(sigma > 0))
        return bnn__error(BNN_EDIVERGED,
                          "the marginal-likelihood optimisation diverged: it ended at prior "
                          "precision %g, noise %g",
                          delta, sigma);
    bnn_laplace_set_prior(la, delta, sigma);
    return 0;
}

/* ------------------------------------------------------------------ per-layer prior */

/* Per-layer prior precision (laplace-torch's BaseLaplace with prior_precision of shape
 * [n_layers], expanded by prior_precision_diag to δ_{l(i)} per parameter): the posterior
 * precision is hf·H + D with D = diag(δ_{l(i)}), and (Immer et al., "Scalable marginal
 * likelihood estimation for model selection in deep learning", ICML 2021)
 *   lml = log_lik − ½ [ log det(hf·H + D) − Σ_l P_l log δ_l + Σ_l δ_l ‖θ_l‖² ],
 *   ∂lml/∂log δ_l = −½ [ δ_l tr_l((hf·H + D)⁻¹) − P_l + δ_l ‖θ_l‖² ],
 *   ∂lml/∂log σ = 2 hf·loss − N·K + tr(Σ hf·H) = 2 hf·loss − N·K + P − Σ_i δ_{l(i)} Σ_ii,
 * (hpow times the trace term where hf·H is hf²·H, the empirical Fisher's), with
 * Σ = (hf·H + D)⁻¹ and tr_l the trace over layer l's coordinates. diag and kron: every
 * eigenvector of H lies in one layer (a kron block is one layer's weight or bias), so D is
 * diagonal in the same basis and the posterior eigenvalues are hf λ_i + δ_{l(i)}. full: D does
 * not commute with H, so log det and diag(Σ) come from a Cholesky factorisation (LAPACK dpotrf)
 * and the inverse of its factor (dtrtri) per evaluation. */

int64_t bnn_laplace_nlayers(const bnn_laplace *la) { return la ? la->nlay : 0; }

/* hf·H + diag(dpar) into A (P × P) and its Cholesky factor in place (column-major lower, i.e.
 * Lᵀ in the row-major view, L_ii on the diagonal). */
static int full_chol(const bnn_laplace *la, double *A, double hf, const double *dpar,
                     const char *fn) {
    const int64_t P = la->P;
    const double *H = bnn_curv_dense(la->c);
    for (int64_t i = 0; i < P * P; i++)
        A[i] = hf * H[i];
    for (int64_t i = 0; i < P; i++)
        A[i * P + i] += dpar[i];
    if (!bnn__all_finite(A, P * P)) /* an infinite 1/σ² times a zero of H, say */
        return bnn__error(BNN_EINVAL, "%s: the posterior precision has non-finite entries (the "
                          "prior precisions or the noise sigma out of range)", fn);
    bnn__blas_pin();
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)P, A, (lapack_int)P);
    if (info != 0)
        return bnn__error(BNN_EINVAL,
                          "%s: the posterior precision is not positive definite "
                          "(LAPACKE_dpotrf info %d)",
                          fn, (int)info);
    return 0;
}

/* The per-layer lml and its gradients (dlog_prior: nlayers values) at the given δ_l and σ; work
 * is P × P scratch for full (NULL: allocated here). NaN on failure (error set). */
static double lml_layers(const bnn_laplace *la, const double *dl, double sigma, double *dlog_prior,
                         double *dlog_sigma, double *work) {
    const char *fn = "bnn_laplace_lml_layers";
    if (la->structure == BNN_HESS_LOWRANK) {
        bnn__error(BNN_EUNSUPPORTED, "%s: no per-layer prior for a low-rank curvature", fn);
        return NAN;
    }
    const bool reg = la->noise;
    if (!reg) sigma = 1.0;
    if (!(sigma > 0) || !isfinite(sigma)) {
        bnn__error(BNN_EINVAL, "%s: σ = %g", fn, sigma);
        return NAN;
    }
    for (int64_t l = 0; l < la->nlay; l++)
        if (!(dl[l] > 0) || !isfinite(dl[l])) {
            bnn__error(BNN_EINVAL, "%s: prior precision %g of layer %lld", fn, dl[l], (long long)l);
            return NAN;
        }
    const int64_t P = la->P;
    const double hs = hscale(la, sigma);
    double logdet = 0, tr_lik = 0, bracket = 0;
    double *A = NULL, *own = NULL, *dpar = la->structure == BNN_HESS_FULL ? alloc_doubles(P) : NULL;
    if (la->structure == BNN_HESS_FULL) {
        A = work ? work : (own = alloc_doubles(P * P));
        if (!A || !dpar) {
            bnn__free(own), bnn__free(dpar);
            bnn__error(BNN_ENOMEM, "%s: out of memory", fn);
            return NAN;
        }
        for (int64_t l = 0; l < la->nlay; l++)
            for (int64_t i = la->lay_off[l]; i < la->lay_off[l + 1]; i++)
                dpar[i] = dl[l];
        if (full_chol(la, A, hs, dpar, fn)) {
            bnn__free(own), bnn__free(dpar);
            return NAN;
        }
        for (int64_t i = 0; i < P; i++)
            logdet += 2.0 * log(A[i * P + i]);
        /* Only diag(Σ) is needed: with Σ = L⁻ᵀL⁻¹, Σ_ii is the squared norm of column i of
         * L⁻¹ (dtrtri, in place), rows i and below; forming the whole Σ would cost another
         * P³/3. The norms go into dpar, no longer needed. */
        bnn__blas_pin();
        lapack_int info =
            LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)P, A, (lapack_int)P);
        if (info != 0) {
            bnn__free(own), bnn__free(dpar);
            bnn__error(BNN_EINVAL, "%s: LAPACKE_dtrtri info %d", fn, (int)info);
            return NAN;
        }
        for (int64_t i = 0; i < P; i++) {
            const double *col = A + i * P;
            double ss = 0.0;
            for (int64_t r = i; r < P; r++)
                ss += col[r] * col[r];
            dpar[i] = ss;
        }
    }
    for (int64_t l = 0; l < la->nlay; l++) {
        const double d = dl[l];
        const int64_t i0 = la->lay_off[l], i1 = la->lay_off[l + 1];
        double tr = 0, t2 = 0; /* δ_l tr_l(Σ), ‖θ_l‖² */
        for (int64_t i = i0; i < i1; i++) {
            t2 += la->mean[i] * la->mean[i];
            if (A) {
                const double sd = d * dpar[i]; /* δ_l Σ_ii */
                tr += sd;
                tr_lik += 1.0 - sd;
            } else {
                const double hl = hs * la->lam[i], e = hl + d;
                logdet += log(e);
                tr += d / e;
                tr_lik += hl / e;
            }
        }
        const double Pl = (double)(i1 - i0);
        bracket += -Pl * log(d) + d * t2;
        if (dlog_prior) dlog_prior[l] = -0.5 * (tr - Pl + d * t2);
    }
    bnn__free(own), bnn__free(dpar);
    return loglik_terms(la, sigma, tr_lik, dlog_sigma) - 0.5 * (logdet + bracket);
}

/* Internal (tests): lml at per-layer δ_l (nlayers values) and σ, with ∂/∂log δ_l (nlayers
 * values, may be NULL) and ∂/∂log σ (may be NULL). NaN with the error set on bad input. */
double bnn_laplace_lml_layers(const bnn_laplace *la, const double *prior_precs, int64_t nlayers,
                               double sigma, double *dlog_prior, double *dlog_sigma) {
    if (!la || !prior_precs || nlayers != la->nlay) {
        if (la && !prior_precs) bnn__error(BNN_EINVAL, "bnn_laplace_lml_layers: NULL precisions");
        else bnn__error(BNN_EINVAL, "bnn_laplace_lml_layers: %lld layers given, the subset has %lld",
                        (long long)nlayers, la ? (long long)la->nlay : 0LL);
        return NAN;
    }
    bool ok = true;
    for (int64_t l = 0; ok && l < nlayers; l++) ok = prior_ok(prior_precs[l], la->noise ? sigma : 1.0);
    if (!ok) {
        bnn__error(BNN_EINVAL, "bnn_laplace_lml_layers: every prior precision and σ must be "
                   "positive and finite");
        return NAN;
    }
    const double lml = lml_layers(la, prior_precs, sigma, dlog_prior, dlog_sigma, NULL);
    if (!isfinite(lml)) {
        const double dmin = min_of(prior_precs, nlayers);
        char at[96];
        snprintf(at, sizeof at, "at smallest prior precision %g", dmin);
        lml_not_finite(la, dmin, sigma, at);
    }
    return lml;
}

int bnn_laplace_set_prior_layers(bnn_laplace *la, const double *prior_precs, int64_t nlayers) {
    const char *fn = "bnn_laplace_set_prior_layers";
    if (!la || !prior_precs) return bnn__error(BNN_EINVAL, "%s: NULL argument", fn);
    if (la->structure == BNN_HESS_LOWRANK)
        return bnn__error(BNN_EUNSUPPORTED, "%s: no per-layer prior for a low-rank curvature", fn);
    if (nlayers != la->nlay)
        return bnn__error(BNN_EINVAL, "%s: %lld precisions given, the subset has %lld layers", fn,
                          (long long)nlayers, (long long)la->nlay);
    bool equal = true;
    double sum = 0;
    for (int64_t l = 0; l < nlayers; l++) {
        if (!(prior_precs[l] > 0) || !isfinite(prior_precs[l]))
            return bnn__error(BNN_EINVAL, "%s: prior precision %g of layer %lld", fn,
                              prior_precs[l], (long long)l);
        if (prior_precs[l] != prior_precs[0]) equal = false;
        sum += prior_precs[l];
    }
    if (equal) { /* the scalar path, bit for bit */
        bnn_laplace_set_prior(la, prior_precs[0], la->sigma);
        return 0;
    }
    const int64_t P = la->P;
    double *Lt = NULL;
    if (la->structure == BNN_HESS_FULL) {
        double *dpar = alloc_doubles(P);
        Lt = alloc_doubles(P * P);
        if (!Lt || !dpar) {
            bnn__free(Lt), bnn__free(dpar);
            return bnn__error(BNN_ENOMEM, "%s: out of memory", fn);
        }
        for (int64_t l = 0; l < nlayers; l++)
            for (int64_t i = la->lay_off[l]; i < la->lay_off[l + 1]; i++)
                dpar[i] = prior_precs[l];
        int rc = full_chol(la, Lt, hscale(la, la->sigma), dpar, fn);
        bnn__free(dpar);
        lapack_int info = 0;
        if (!rc) /* full_chol pinned OpenBLAS (bnn__blas_pin) */
            info = LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)P, Lt, (lapack_int)P);
        if (!rc && info != 0)
            rc = bnn__error(BNN_EINVAL, "%s: LAPACKE_dtrtri info %d", fn, (int)info);
        if (rc) {
            bnn__free(Lt);
            return rc;
        }
        /* Column-major L⁻¹ (lower) is L⁻ᵀ (upper) in the row-major view; clear the rest. */
        for (int64_t i = 0; i < P; i++)
            for (int64_t j = 0; j < i; j++)
                Lt[i * P + j] = 0.0;
    }
    bnn__free(la->Lt);
    la->Lt = Lt;
    for (int64_t l = 0; l < nlayers; l++) {
        la->dl[l] = prior_precs[l];
        for (int64_t i = la->lay_off[l]; i < la->lay_off[l + 1]; i++)
            la->dpar[i] = prior_precs[l];
    }
    la->delta = sum / (double)nlayers;
    la->layered = true;
    return 0;
}

int bnn_laplace_prior_layers(const bnn_laplace *la, double *prior_precs, int64_t nlayers) {
    if (!la || !prior_precs)
        return bnn__error(BNN_EINVAL, "bnn_laplace_prior_layers: NULL argument");
    if (nlayers != la->nlay)
        return bnn__error(BNN_EINVAL, "bnn_laplace_prior_layers: %lld values asked, %lld layers",
                          (long long)nlayers, (long long)la->nlay);
    memcpy(prior_precs, la->dl, (size_t)nlayers * sizeof(double));
    return 0;
}

/* As bnn_laplace_optimize (README §5–6, torch.optim.Adam elementwise), on x_l = log δ_l (from 0,
 * regression from 1) and, for regression, log σ (from 1). */
int bnn_laplace_optimize_layers(bnn_laplace *la, int64_t steps) {
    const char *fn = "bnn_laplace_optimize_layers";
    if (!la) return bnn__error(BNN_EINVAL, "%s: the posterior is NULL", fn);
    if (refuse_von(la, fn)) return BNN_EINVAL;
    if (steps < 0 || steps > BNN_LAPLACE_MAX_STEPS)
        return bnn__error(BNN_EINVAL, "%s: steps = %lld (0 to %d)", fn, (long long)steps,
                          BNN_LAPLACE_MAX_STEPS);
    if (la->structure == BNN_HESS_LOWRANK)
        return bnn__error(BNN_EUNSUPPORTED, "%s: no per-layer prior for a low-rank curvature", fn);
    const bool reg = la->noise;
    const int64_t L = la->nlay, nx = L + (reg ? 1 : 0);
    const double lr = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    double *buf = alloc_doubles(5 * nx);
    double *work = la->structure == BNN_HESS_FULL ? alloc_doubles(la->P * la->P) : NULL;
    if (!buf || (la->structure == BNN_HESS_FULL && !work)) {
        bnn__free(buf), bnn__free(work);
        return bnn__error(BNN_ENOMEM, "%s: out of memory", fn);
    }
    double *x = buf, *m = buf + nx, *v = buf + 2 * nx, *g = buf + 3 * nx, *d = buf + 4 * nx;
    for (int64_t j = 0; j < nx; j++)
        x[j] = reg ? 1.0 : 0.0, m[j] = v[j] = 0.0;
    int rc = 0;
    for (int64_t t = 1; t <= steps && !rc; t++) {
        for (int64_t l = 0; l < L; l++)
            d[l] = exp(x[l]);
        double gs = 0;
        const double lml = lml_layers(la, d, reg ? exp(x[L]) : 1.0, g, &gs, work);
        if (reg) g[L] = gs;
        bool finite = isfinite(lml);
        for (int64_t j = 0; j < nx; j++) {
            g[j] = -g[j];
            if (!isfinite(g[j])) finite = false;
        }
        if (!finite) {
            const double dmin = min_of(d, L);
            char at[128];
            snprintf(at, sizeof at, "at step %lld of the per-layer prior's optimisation (smallest "
                     "prior precision %g)", (long long)t, dmin);
            rc = lml_not_finite(la, dmin, reg ? exp(x[L]) : 1.0, at);
            break;
        }
        const double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
        const double step_size = lr / bc1, bc2_sqrt = sqrt(bc2);
        for (int64_t j = 0; j < nx; j++) {
            m[j] = m[j] * beta1 + (1.0 - beta1) * g[j];
            v[j] = v[j] * beta2 + (1.0 - beta2) * g[j] * g[j];
            const double denom = sqrt(v[j]) / bc2_sqrt + eps;
            x[j] = x[j] + -step_size * m[j] / denom;
        }
        if (la->progress) la->progress(la->progress_ctx, t, steps);
    }
    if (!rc) {
        for (int64_t l = 0; l < L; l++)
            d[l] = exp(x[l]);
        const double sigma = reg ? exp(x[L]) : 1.0, old = la->sigma;
        if (!isfinite(sigma) || !(sigma > 0))
            rc = bnn__error(BNN_EDIVERGED, "%s: ended at σ = %g", fn, sigma);
        if (!rc) {
            la->sigma = sigma;
            rc = bnn_laplace_set_prior_layers(la, d, L);
            if (rc) la->sigma = old;
        }
    }
    bnn__free(work), bnn__free(buf);
    return rc;
}

/* ------------------------------------------------------------------ precision */

/* hf·H + δ I from the curvature as given (kron: from the factors, not their clipped
 * decompositions; the two differ by rounding only). */
int bnn_laplace_precision_dense(const bnn_laplace *la, double *out) {
    int rc = check_prior(la, "bnn_laplace_precision_dense");
    if (rc) return rc;
    if (!out) return bnn__error(BNN_EINVAL, "bnn_laplace_precision_dense: out is required");
    const int64_t P = la->P;
    const double hf = hscale(la, la->sigma);
    memset(out, 0, (size_t)(P * P) * sizeof(double));
    switch (la->structure) {
    case BNN_HESS_DIAG:
        for (int64_t i = 0; i < P; i++)
            out[i * P + i] = hf * la->lam[i] + dlt(la, i);
        break;
    case BNN_HESS_FULL: {
        const double *H = bnn_curv_dense(la->c);
        for (int64_t i = 0; i < P * P; i++)
            out[i] = hf * H[i];
        for (int64_t i = 0; i < P; i++)
            out[i * P + i] += dlt(la, i);
        break;
    }
    case BNN_HESS_KRON:
        for (int64_t b = 0; b < la->nblocks; b++) {
            const kblock *k = &la->blk[b];
            int nf;
            const double *B, *A = NULL;
            int64_t n0, n1;
            if ((rc = bnn_curv_block(la->c, b, &nf, &B, &n0, &A, &n1))) return rc;
            const int64_t m1 = k->n1;
            /* entry ((o,i),(o',i')) = hf·B[o,o']·A[i,i'] (README §2) */
            for (int64_t o = 0; o < k->n0; o++)
                for (int64_t i = 0; i < m1; i++) {
                    double *row = out + (k->off + o * m1 + i) * P + k->off;
                    for (int64_t o2 = 0; o2 < k->n0; o2++)
                        for (int64_t i2 = 0; i2 < m1; i2++)
                            row[o2 * m1 + i2] =
                                hf * B[o * k->n0 + o2] * (k->nf == 2 ? A[i * m1 + i2] : 1.0);
                }
        }
        for (int64_t i = 0; i < P; i++)
            out[i * P + i] += dlt(la, i);
        break;
    case BNN_HESS_LOWRANK: { /* δ I + hf U diag(λ) Uᵀ, row by row */
        const int64_t r = la->rank;
        for (int64_t i = 0; i < P; i++) {
            double *row = out + i * P;
            const double *ui = la->U + i * r;
            for (int64_t j = 0; j < r; j++) {
                const double a = hf * la->lam[j] * ui[j];
                if (a == 0.0) continue;
                for (int64_t k = 0; k < P; k++)
                    row[k] += a * la->U[k * r + j];
            }
            row[i] += la->delta;
        }
        break;
    }
    }
    return 0;
}

int bnn_laplace_precision_diag(const bnn_laplace *la, double *out) {
    int rc = check_prior(la, "bnn_laplace_precision_diag");
    if (rc) return rc;
    if (!out) return bnn__error(BNN_EINVAL, "bnn_laplace_precision_diag: out is required");
    const int64_t P = la->P;
    const double hf = hscale(la, la->sigma);
    switch (la->structure) {
    case BNN_HESS_DIAG:
        for (int64_t i = 0; i < P; i++)
            out[i] = hf * la->lam[i] + dlt(la, i);
        break;
    case BNN_HESS_FULL: {
        const double *H = bnn_curv_dense(la->c);
        for (int64_t i = 0; i < P; i++)
            out[i] = hf * H[i * P + i] + dlt(la, i);
        break;
    }
    case BNN_HESS_KRON:
        for (int64_t b = 0; b < la->nblocks; b++) {
            const kblock *k = &la->blk[b];
            int nf;
            const double *B, *A = NULL;
            int64_t n0, n1;
            if ((rc = bnn_curv_block(la->c, b, &nf, &B, &n0, &A, &n1))) return rc;
            for (int64_t o = 0; o < k->n0; o++)
                for (int64_t i = 0; i < k->n1; i++)
                    out[k->off + o * k->n1 + i] =
                        hf * B[o * k->n0 + o] * (k->nf == 2 ? A[i * k->n1 + i] : 1.0) +
                        dlt(la, k->off + o * k->n1 + i);
        }
        break;
    case BNN_HESS_LOWRANK: /* hf Σ_j λ_j U_ij² + δ */
        for (int64_t i = 0; i < P; i++) {
            const double *ui = la->U + i * la->rank;
            double s = 0;
            for (int64_t j = 0; j < la->rank; j++)
                s += la->lam[j] * ui[j] * ui[j];
            out[i] = hf * s + la->delta;
        }
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------ GLM predictive */

/* A Linear layer of the subset: its weight (out × in) and bias (out) at woff and boff within the
 * subset, and (kron) the index of its weight block; the bias block follows it. */
typedef struct glm_layer {
    int64_t layer, in, out, woff, boff, blk;
} glm_layer;

typedef struct glm_ctx {
    const bnn_laplace *la;
    const glm_layer *sub;
    int64_t nsub;
    /* nd prior precisions at once (bnn__laplace_glm_priors; 1 for bnn_laplace_glm): inv_d holds
     * nd rows of P, f_var nd outputs fstride apart, and deltas the scalar δ of each (lowrank's
     * residual term). Whatever depends on δ is done once per δ, in the order a single call
     * takes, so each output is that call's to the last bit. */
    int64_t nd, fstride;
    const double *deltas;
    const double *inv_d;    /* nd × P: 1/(hf λ_i + δ), the posterior covariance in the eigenbasis */
    const double *Qf;       /* full: the basis (la->Q, or L⁻ᵀ with inv_d = 1 when layered) */
    int64_t nb, rep;        /* inputs in the chunk; rows per input in the batch (K, or 1) */
    double *f_var;          /* nb × K × K of this chunk, accumulated */
    double *J;              /* full: the chunk's Jacobian, column-major: J[i·R + t·K + c] */
    double *U;              /* full: U = J·Q, R × P row-major */
    int64_t R;              /* full: rows of J and U (nb·K of the largest chunk) */
    int64_t max_in, max_out, nth; /* nth: threads that take inputs, each with its scratch */
    double *ks;                   /* kron, diag: nth × glm_batch_scratch */
    double *phid;           /* full, last layer: the chunk's features in double, nb × in */
} glm_ctx;

/* One Linear layer's share of f_var = J Σ Jᵀ for input t, from its input a (in) and the output
 * gradients G (K × out, row c = ∂f_c/∂s). The Jacobian of f_c with respect to the layer is
 * G[c,:] ⊗ a (weight, row-major out × in) and G[c,:] (bias); no dense P × P is formed:
 *  - diag: Σ_{o,i} G_co G_c'o a_i² / p_oi + Σ_o G_co G_c'o / p_o (glm_diag_batch);
 *  - kron: see glm_kron_batch; both do it for several inputs at once;
 *  - full (here): the rows are written into J and projected onto the eigenvectors afterwards. */
static void glm_accumulate(glm_ctx *g, const glm_layer *L, int64_t t, const float *a,
                           const float *G) {
    const bnn_laplace *la = g->la;
    const int64_t K = la->K, in = L->in, out = L->out;
    switch (la->structure) {
    case BNN_HESS_FULL:
    case BNN_HESS_LOWRANK: {
        const int64_t R = g->R;
        for (int64_t c = 0; c < K; c++) {
            double *col = g->J + t * K + c;
            for (int64_t o = 0; o < out; o++) {
                const double go = G[c * out + o];
                double *wc = col + (L->woff + o * in) * R;
                for (int64_t i = 0; i < in; i++)
                    wc[i * R] = go * (double)a[i];
                col[(L->boff + o) * R] = go;
            }
        }
        break;
    }
    case BNN_HESS_DIAG:
    case BNN_HESS_KRON: BNN_ASSERT(0); /* glm_batch_chunk */
    }
}

/* kron: the projection onto Q_B ⊗ Q_A of a rank-one Jacobian row is (Q_Bᵀ g_c) ⊗ (Q_Aᵀ a), so
 * an input adds Σ_k (Q_Bᵀ g_c)_k (Q_Bᵀ g_c')_k Σ_j (Q_Aᵀ a)_j² / (hf λB_k λA_j + δ), plus the bias
 * block in its own basis Q_b. Done for GLM_KB inputs at a time as matrix products
 * (bnn__dgemm_serial): with the layer's inputs A_t (rows of Ad, every rep-th row of A) and output
 * Jacobians G_t (K rows each, rows of Gd),
 *   V = Ad·Q_A,  W = (V∘V)·IDᵀ (ID: the block's 1/(hf λB_k λA_j + δ), out × in),
 *   U = Gd·Q_B,  Ub = Gd·Q_b,
 *   f_var[t][c,c'] += Σ_k U[tK+c,k] U[tK+c',k] W[t,k] + Ub[tK+c,k] Ub[tK+c',k] / (hf λb_k + δ).
 * A block of inputs is fixed in size, so the products' shapes, and every bit, do not depend on
 * the thread count. sc: this thread's scratch (glm_kron_scratch doubles). */
#define GLM_KB 8
static int64_t glm_kron_scratch(int64_t K, int64_t max_in, int64_t max_out) {
    return GLM_KB * (2 * max_in + max_out + 3 * K * max_out);
}
static void glm_kron_batch(glm_ctx *g, const glm_layer *L, int64_t t0, int64_t nt, const float *A,
                           const float *G, double *sc) {
    const bnn_laplace *la = g->la;
    const int64_t K = la->K, in = L->in, out = L->out, rep = g->rep;
    const kblock *kw = &la->blk[L->blk], *kb = &la->blk[L->blk + 1];
    double *Ad = sc, *V = Ad + GLM_KB * in, *W = V + GLM_KB * in, *Gd = W + GLM_KB * out;
    double *U = Gd + GLM_KB * K * out, *Ub = U + GLM_KB * K * out;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t i = 0; i < in; i++)
            Ad[t * in + i] = (double)A[(t0 + t) * rep * in + i];
    for (int64_t r = 0; r < nt * K; r++)
        for (int64_t o = 0; o < out; o++)
            Gd[r * out + o] = (double)G[(t0 * K + r) * out + o];
    bnn__dgemm_serial(V, Ad, kw->Q1, nt, in, in, in, in, in, false, false, 0.0);
    for (int64_t i = 0; i < nt * in; i++)
        V[i] *= V[i];
    bnn__dgemm_serial(U, Gd, kw->Q0, nt * K, out, out, out, out, out, false, false, 0.0);
    if (kb->shared) /* the same product */
        Ub = U;
    else
        bnn__dgemm_serial(Ub, Gd, kb->Q0, nt * K, out, out, out, out, out, false, false, 0.0);
    for (int64_t d = 0; d < g->nd; d++) {
        const double *inv_d = g->inv_d + d * la->P, *ib = inv_d + kb->off;
        bnn__dgemm_serial(W, V, inv_d + kw->off, nt, out, in, in, in, out, false, true, 0.0);
        for (int64_t t = 0; t < nt; t++) {
            double *fv = g->f_var + d * g->fstride + (t0 + t) * K * K;
            const double *w = W + t * out;
            for (int64_t c = 0; c < K; c++)
                for (int64_t c2 = 0; c2 <= c; c2++) {
                    const double *u1 = U + (t * K + c) * out, *u2 = U + (t * K + c2) * out;
                    const double *b1 = Ub + (t * K + c) * out, *b2 = Ub + (t * K + c2) * out;
                    double s = 0;
#if defined(BNN_HAVE_OPENMP) || defined(BNN_HAVE_OMP_SIMD)
#pragma omp simd reduction(+ : s)
#endif
                    for (int64_t k = 0; k < out; k++)
                        s += u1[k] * u2[k] * w[k] + b1[k] * b2[k] * ib[k];
                    fv[c * K + c2] += s;
                    if (c2 != c) fv[c2 * K + c] += s;
                }
        }
    }
}

/* diag for GLM_KB inputs at a time, in the same fixed blocks as kron: with the squared inputs
 * A_t∘A_t (rows of Ad) and ID the weights' 1/(hf h_oi + δ) (out × in),
 *   W = (A∘A)·IDᵀ (bnn__dgemm_serial) plus the biases' 1/(hf h_o + δ),
 *   f_var[t][c,c'] += Σ_o G_tco G_tc'o W[t,o].
 * (Input by input, as a loop of in·out multiply-adds each, an all-weights grid search over 21
 * precisions on Fashion-MNIST's MLP took 19.1 s, 5.6 s this way; its eval 2.30 → 0.94 s.) */
static int64_t glm_diag_scratch(int64_t max_in, int64_t max_out) {
    return GLM_KB * (max_in + max_out);
}
static void glm_diag_batch(glm_ctx *g, const glm_layer *L, int64_t t0, int64_t nt, const float *A,
                           const float *G, double *sc) {
    const bnn_laplace *la = g->la;
    const int64_t K = la->K, in = L->in, out = L->out, rep = g->rep;
    double *Ad = sc, *W = Ad + GLM_KB * in;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t i = 0; i < in; i++) {
            const double a = (double)A[(t0 + t) * rep * in + i];
            Ad[t * in + i] = a * a;
        }
    for (int64_t d = 0; d < g->nd; d++) {
        const double *inv_d = g->inv_d + d * la->P, *ib = inv_d + L->boff;
        bnn__dgemm_serial(W, Ad, inv_d + L->woff, nt, out, in, in, in, out, false, true, 0.0);
        for (int64_t t = 0; t < nt; t++) {
            double *fv = g->f_var + d * g->fstride + (t0 + t) * K * K, *w = W + t * out;
            const float *Gt = G + (t0 + t) * K * out;
            for (int64_t o = 0; o < out; o++)
                w[o] += ib[o];
            for (int64_t c = 0; c < K; c++)
                for (int64_t c2 = 0; c2 <= c; c2++) {
                    const float *g1 = Gt + c * out, *g2 = Gt + c2 * out;
                    double s = 0;
#if defined(BNN_HAVE_OPENMP) || defined(BNN_HAVE_OMP_SIMD)
#pragma omp simd reduction(+ : s)
#endif
                    for (int64_t o = 0; o < out; o++)
                        s += (double)g1[o] * (double)g2[o] * w[o];
                    fv[c * K + c2] += s;
                    if (c2 != c) fv[c2 * K + c] += s;
                }
        }
    }
}

/* The scratch per thread of glm_batch_chunk. */
static int64_t glm_batch_scratch(const bnn_laplace *la, int64_t max_in, int64_t max_out) {
    return la->structure == BNN_HESS_KRON ? glm_kron_scratch(la->K, max_in, max_out)
                                          : glm_diag_scratch(max_in, max_out);
}

/* kron or diag for the chunk's nb inputs: the blocks of GLM_KB inputs spread over the threads,
 * each thread with its own scratch (slot bnn__thread_id(): the thread's number in a team this
 * function starts, 0 in a caller's own team, whose numbers say nothing about the slots). A:
 * input t's features at row t·rep; G: its K Jacobian rows at rows t·K (the last-layer path
 * passes K-periodic identity rows). */
static void glm_batch_chunk(glm_ctx *g, const glm_layer *L, const float *A, const float *G) {
    const int64_t nblk = (g->nb + GLM_KB - 1) / GLM_KB;
    const int64_t per = glm_batch_scratch(g->la, g->max_in, g->max_out);
    const bool kron = g->la->structure == BNN_HESS_KRON;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) num_threads(g->nth) if (nblk > 1)
#endif
    for (int64_t q = 0; q < nblk; q++) {
        const int64_t t0 = q * GLM_KB, nt = g->nb - t0 < GLM_KB ? g->nb - t0 : GLM_KB;
        double *sc = g->ks + bnn__thread_id() * per;
        if (kron)
            glm_kron_batch(g, L, t0, nt, A, G, sc);
        else
            glm_diag_batch(g, L, t0, nt, A, G, sc);
    }
}

/* The curvature hook of the all-layers path: each input occupies rep = K consecutive rows, row c
 * back-propagating e_c, so G's rows are the output Jacobian ∂f_c/∂s of the layer. */
static void glm_hook(void *ctx, int64_t layer, const float *A, const float *G, int64_t b,
                     int64_t in, int64_t out) {
    glm_ctx *g = ctx;
    const glm_layer *L = NULL;
    for (int64_t s = 0; s < g->nsub; s++)
        if (g->sub[s].layer == layer) L = &g->sub[s];
    if (!L) return;
    BNN_ASSERT(L->in == in && L->out == out && b == g->nb * g->rep);
    /* The inputs are independent (each adds to its own f_var block, in layer order): diag and
     * kron spread them over the threads, each with its own scratch; full writes columns of one
     * shared Jacobian and stays in one thread. */
    if (g->la->structure == BNN_HESS_KRON || g->la->structure == BNN_HESS_DIAG) {
        glm_batch_chunk(g, L, A, G);
        return;
    }
    for (int64_t t = 0; t < g->nb; t++)
        glm_accumulate(g, L, t, A + t * g->rep * in, G + t * g->rep * out);
}

/* full: U = J·Q, then f_var[c,c'] = Σ_k U_ck U_c'k / (hf λ_k + δ) for each input of the chunk.
 * U is formed by column tiles of Q (GLM_TILE columns, so a tile of U stays in cache while the
 * rows of Q stream past), as row updates U[r, tile] += J[r,i]·Q[i, tile] that skip the zeros of
 * J: a last-layer Jacobian row has in + 1 non-zeros, so the product costs P² per input instead
 * of K·P². Every element of U is summed over i in the same order whatever the tiling and the
 * thread count, so the result does not depend on bnn_set_threads. */
#define GLM_TILE 128
/*
 * lowrank: the same with Q = U (P × r) and, U orthonormal,
 *   Σ = (hf U Λ Uᵀ + δ I)⁻¹ = U diag(1/(hf λ + δ)) Uᵀ + (I − U Uᵀ)/δ,
 * so f_var = (J U) diag(1/(hf λ + δ)) (J U)ᵀ + Rᵀ R / δ with R = J − U (Uᵀ J), the part of the
 * Jacobian outside the kept subspace, formed explicitly (glm_lowrank_residual); nothing is P × P.
 * Written as (1/δ) J Jᵀ − (J U) diag(hf λ / (δ (hf λ + δ))) (J U)ᵀ instead, two terms of size
 * |J|²/δ cancel where J lies in the subspace: at δ = 1e-14 the variance of a network whose
 * every eigenpair was kept was off by 0.026 in a probability. With all P kept, R = 0 exactly. */
static void glm_full_project(glm_ctx *g) {
    const bnn_laplace *la = g->la;
    const bool lowrank = la->structure == BNN_HESS_LOWRANK;
    const int64_t K = la->K, P = lowrank ? la->rank : la->P, R = g->R, rows = g->nb * K;
    const int64_t Prow = la->P; /* rows of Q and J */
    const int64_t ntiles = (P + GLM_TILE - 1) / GLM_TILE;
    const double *J = g->J, *Q = lowrank ? la->U : g->Qf;
    double *U = g->U;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if ((double)rows * (double)P * (double)P > 4e6)
#endif
    for (int64_t tile = 0; tile < ntiles; tile++) {
        const int64_t k0 = tile * GLM_TILE, w = P - k0 < GLM_TILE ? P - k0 : GLM_TILE;
        for (int64_t r = 0; r < rows; r++)
            memset(U + r * P + k0, 0, (size_t)w * sizeof(double));
        for (int64_t i = 0; i < Prow; i++) {
            const double *q = Q + i * P + k0, *jc = J + i * R;
            for (int64_t r = 0; r < rows; r++) {
                const double a = jc[r];
                if (a == 0.0) continue;
                double *u = U + r * P + k0;
                for (int64_t kk = 0; kk < w; kk++)
                    u[kk] += a * q[kk];
            }
        }
    }
}

/* lowrank with fewer than P eigenpairs kept: J (P × R) ← J − Q Uᵀ, the Jacobian rows' parts
 * outside the subspace, each element summed over k in order by one thread. */
static void glm_lowrank_residual(glm_ctx *g) {
    const bnn_laplace *la = g->la;
    const int64_t r = la->rank, R = g->R, rows = g->nb * la->K, Prow = la->P;
    const double *Q = la->U, *U = g->U;
    double *J = g->J;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if ((double)rows * (double)r * (double)Prow > 4e6)
#endif
    for (int64_t i = 0; i < Prow; i++) {
        const double *q = Q + i * r;
        for (int64_t row = 0; row < rows; row++) {
            const double *u = U + row * r;
            double s = 0;
            for (int64_t k = 0; k < r; k++) s += q[k] * u[k];
            J[i * R + row] -= s;
        }
    }
}

/* f_var from U (glm_full_project, or glm_full_last straight from the features). */
static void glm_full_finish(glm_ctx *g) {
    const bnn_laplace *la = g->la;
    const bool lowrank = la->structure == BNN_HESS_LOWRANK;
    const int64_t K = la->K, P = lowrank ? la->rank : la->P, R = g->R;
    const int64_t Prow = la->P; /* rows of J */
    const double *J = g->J, *U = g->U;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) \
    if ((double)g->nb * (double)(K * K) * (double)P * (double)g->nd > 1e6)
#endif
    for (int64_t t = 0; t < g->nb; t++) {
        for (int64_t c = 0; c < K; c++)
            for (int64_t c2 = 0; c2 <= c; c2++) {
                const double *u1 = U + (t * K + c) * P, *u2 = U + (t * K + c2) * P;
                double rr = 0;
                if (lowrank && P < Prow) /* J holds the residuals R (glm_lowrank_residual) */
                    for (int64_t i = 0; i < Prow; i++)
                        rr += J[i * R + t * K + c] * J[i * R + t * K + c2];
                for (int64_t d = 0; d < g->nd; d++) {
                    /* 1/(hf λ_k + δ), lowrank's r included */
                    const double *id = g->inv_d + d * Prow;
                    double *fv = g->f_var + d * g->fstride + t * K * K;
                    double s = 0;
                    /* "simd" lets GCC sum in vector lanes (an order fixed by the build, not by
                     * the threads); a full last-layer eval of 10,000 inputs: 5.37 -> 4.93 s. */
#if defined(BNN_HAVE_OPENMP) || defined(BNN_HAVE_OMP_SIMD)
#pragma omp simd reduction(+ : s)
#endif
                    for (int64_t k = 0; k < P; k++)
                        s += u1[k] * u2[k] * id[k];
                    if (lowrank && P < Prow) s += rr / g->deltas[d];
                    fv[c * K + c2] = fv[c2 * K + c] = s;
                }
            }
    }
}

/* full, the model's last layer: U = J·Q straight from the features, without forming J. The row
 * of input t and class c is e_c ⊗ (φ_t, 1), so
 *   U[t·K + c, :] = Σ_i φ_ti Q[woff + c·in + i, :] + Q[boff + c, :],
 * K products (nb × in)·(in × P) done as BLAS calls (bnn__dgemm_serial) on fixed column tiles of
 * GLM_TILE spread over the threads, so no element depends on the thread count. The same
 * multiply-adds as the sparse loop of glm_full_project at matrix-product speed (eval of a
 * 2570-parameter posterior on 10,000 inputs: 14.1 -> 4.9 s with the vector-lane sum below). */
static void glm_full_last(glm_ctx *g, const glm_layer *L, const float *phi) {
    const int64_t K = g->la->K, P = g->la->P, in = L->in, nb = g->nb;
    const int64_t ntiles = (P + GLM_TILE - 1) / GLM_TILE;
    double *ph = g->phid;
    for (int64_t i = 0; i < nb * in; i++)
        ph[i] = (double)phi[i];
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if ((double)nb * (double)in * (double)P * (double)K > 4e6)
#endif
    for (int64_t q = 0; q < K * ntiles; q++) {
        const int64_t c = q / ntiles, k0 = (q % ntiles) * GLM_TILE;
        const int64_t w = P - k0 < GLM_TILE ? P - k0 : GLM_TILE;
        const double *bias = g->Qf + (L->boff + c) * P + k0;
        double *C = g->U + c * P + k0; /* input t's row at C + t·K·P */
        bnn__dgemm_serial(C, ph, g->Qf + (L->woff + c * in) * P + k0, nb, w, in, in, P, K * P,
                          false, false, 0.0);
        for (int64_t t = 0; t < nb; t++) {
            double *ct = C + t * K * P;
            for (int64_t kk = 0; kk < w; kk++)
                ct[kk] += bias[kk];
        }
    }
}

/* The Linear layers covering the subset's segments of the flat vector (bnn_curv_segment), in
 * model order, with their weight and bias positions within the subset (the segments'
 * concatenation). */
static int glm_subset(const bnn_laplace *la, const bnn_model *m, glm_layer *sub, int64_t *nsub,
                      const char *fn) {
    const bnn_curv *c = la->c;
    const int64_t nl = bnn_model_nlayers(m), nseg = bnn_curv_nsegments(c);
    int64_t n = 0, covered = 0;
    for (int64_t i = 0; i < nl; i++) {
        if (strcmp(bnn_model_layer_kind(m, i), "linear") != 0) continue;
        int64_t woff, wshape[2], boff, blen;
        if (bnn_model_layer_tensors(m, i, &woff, wshape, &boff, &blen)) continue;
        const int64_t end = boff + blen;
        int64_t pos = -1;
        for (int64_t sg = 0, at = 0; sg < nseg; sg++) {
            int64_t so = 0, sl = 0;
            bnn_curv_segment(c, sg, &so, &sl);
            if (woff >= so && end <= so + sl) {
                pos = at + (woff - so);
                break;
            }
            if (woff < so + sl && end > so)
                return bnn__error(BNN_ESHAPE,
                                  "%s: the subset's parameters %lld..%lld cover only "
                                  "part of the model's layer %lld", fn,
                                  (long long)so, (long long)(so + sl), (long long)i);
            at += sl;
        }
        if (pos < 0) continue; /* a layer outside the subset */
        if (boff != woff + wshape[0] * wshape[1] || blen != wshape[0])
            return bnn__error(BNN_ESHAPE,
                              "%s: the subset does not match the model's "
                              "layers at layer %lld", fn,
                              (long long)i);
        sub[n] = (glm_layer){i, wshape[1], wshape[0], pos, pos + wshape[0] * wshape[1], 2 * n};
        if (n && pos <= sub[n - 1].woff)
            return bnn__error(BNN_ESHAPE,
                              "%s: the subset's layers are not in model order", fn);
        covered += wshape[0] * wshape[1] + blen;
        n++;
    }
    if (n == 0 || covered != la->P)
        return bnn__error(BNN_ESHAPE,
                          "%s: the subset's %lld parameters (from %lld, in %lld "
                          "segment%s) are not whole Linear layers of the model", fn,
                          (long long)la->P, (long long)bnn_curv_offset(c), (long long)nseg,
                          nseg == 1 ? "" : "s");
    if (la->structure == BNN_HESS_KRON) {
        if (la->nblocks != 2 * n)
            return bnn__error(BNN_ESHAPE,
                              "%s: %lld kron blocks for %lld Linear layers", fn,
                              (long long)la->nblocks, (long long)n);
        for (int64_t s = 0; s < n; s++) {
            const kblock *kw = &la->blk[2 * s], *kb = &la->blk[2 * s + 1];
            if (kw->nf != 2 || kw->n0 != sub[s].out || kw->n1 != sub[s].in ||
                kw->off != sub[s].woff || kb->nf != 1 || kb->n0 != sub[s].out ||
                kb->off != sub[s].boff)
                return bnn__error(BNN_ESHAPE,
                                  "%s: kron blocks %lld, %lld do not match "
                                  "layer %lld (%lld × %lld)", fn,
                                  (long long)(2 * s), (long long)(2 * s + 1),
                                  (long long)sub[s].layer, (long long)sub[s].out,
                                  (long long)sub[s].in);
        }
    }
    *nsub = n;
    return 0;
}

/* Linearised predictive (README §7; Daxberger et al. 2021 §3, laplace-torch's
 * _glm_predictive_distribution): f_mu = f(x; θ_MAP), f_var = J(x) P_post⁻¹ J(x)ᵀ. The model's
 * weights outside the subset are used as they are, the subset's are set to the posterior mean.
 * The subset may be any set of whole Linear layers (its segments in the flat vector); J's columns
 * are the concatenation of the selected layers' columns, in the subset's order.
 * When the subset is the model's last layer, J follows from that layer's input features φ(x)
 * (J[c, k·H + j] = [c = k] φ_j, J[c, K·H + k] = [c = k]) after one plain forward pass. Otherwise
 * each input is replicated K times, row c back-propagates e_c through the curvature hook, and
 * every Linear layer of the subset reads its input A and output Jacobian G from the hook. */
/* The subset's Linear layers (*sub, bnn__alloc_array'd for the caller to free, and *nsub),
 * whether they are the model's last layer alone (*last: J comes from the features), and the
 * inputs in a chunk of a GLM pass (*nb; a call of fewer inputs takes them in one). */
static int glm_plan(const bnn_laplace *la, const bnn_model *m, const char *fn, glm_layer **sub,
                    int64_t *nsub, bool *last, int64_t *nb) {
    const int64_t K = la->K, P = la->P, nl = bnn_model_nlayers(m);
    *nsub = 0;
    if (!(*sub = bnn__alloc_array(nl, sizeof(glm_layer))))
        return bnn__error(BNN_ENOMEM, "%s: out of memory", fn);
    int rc = glm_subset(la, m, *sub, nsub, fn);
    if (rc) {
        bnn__free(*sub), *sub = NULL;
        return rc;
    }
    /* Last-layer path: one Linear layer that is the model's output layer. */
    *last = *nsub == 1 && (*sub)[0].layer == nl - 1;
    const int64_t rep = *last ? 1 : K;
    /* Inputs per chunk: up to 256 batch rows (or the model's capacity), and for `full` at most
     * 64 MiB of Jacobian (and as much of J·Q). */
    const int64_t rows = bnn_model_max_batch(m) > 256 ? bnn_model_max_batch(m) : 256;
    int64_t b = rows / rep > 0 ? rows / rep : 1;
    if (la->structure == BNN_HESS_FULL || la->structure == BNN_HESS_LOWRANK) {
        int64_t cap = (int64_t)((64u << 20) / sizeof(double)) / (K * P);
        if (b > cap) b = cap > 0 ? cap : 1;
    }
    /* kron and diag over several layers work in blocks of GLM_KB inputs shared among the
     * threads: whole pairs of blocks keep two threads evenly busy (256 rows of 10 outputs made
     * blocks of 8, 8, 8 and 1 inputs, one thread idle a third of the time). Fixed by the shape,
     * not the thread count, so the blocks and the bits stay the same for every thread count. */
    if (!*last && (la->structure == BNN_HESS_KRON || la->structure == BNN_HESS_DIAG))
        b = (b + 2 * GLM_KB - 1) / (2 * GLM_KB) * (2 * GLM_KB);
    *nb = b;
    return 0;
}

/* The network against the posterior over it: the subset within its parameters (each bound
 * checked without overflow) and as many outputs. What every use of a posterior with a network
 * checks first: predictions, bnn_posterior_from_laplace, bnn_laplace_save. */
static int glm_check_model(const bnn_laplace *la, const bnn_model *m, const char *fn) {
    const int64_t n = bnn_model_nparams(m);
    int64_t last_off = 0, last_len = 0; /* segments are ascending: the last one ends the subset */
    bnn_curv_segment(la->c, bnn_curv_nsegments(la->c) - 1, &last_off, &last_len);
    if (bnn_curv_offset(la->c) < 0 || last_off < 0 || last_len < 0 || last_off > n ||
        last_len > n - last_off)
        return bnn__error(BNN_ESHAPE,
                          "%s: the subset (from %lld; last segment at %lld, %lld long) does not "
                          "fit a model of %lld parameters",
                          fn, (long long)bnn_curv_offset(la->c), (long long)last_off,
                          (long long)last_len, (long long)n);
    if (bnn_model_output_dim(m) != la->K)
        return bnn__error(BNN_ESHAPE,
                          "%s: the network has %lld outputs and the Laplace posterior over it "
                          "%lld",
                          fn, (long long)bnn_model_output_dim(m), (long long)la->K);
    return 0;
}

int bnn__laplace_glm_chunk(const bnn_laplace *la, const bnn_model *m, int64_t *nb,
                           const char *fn) {
    glm_layer *sub = NULL;
    int64_t nsub = 0;
    bool last = false;
    int rc = glm_check_model(la, m, fn);
    if (!rc) rc = glm_plan(la, m, fn, &sub, &nsub, &last, nb);
    bnn__free(sub);
    return rc;
}

int bnn__laplace_check_model(const bnn_laplace *la, const bnn_model *m, const char *fn) {
    int64_t nb = 0;
    return bnn__laplace_glm_chunk(la, m, &nb, fn);
}

size_t bnn__glm_prior_budget = 256u << 20;

/* bnn_laplace_glm (deltas NULL, nd 1: the posterior's own prior, per layer or not) and
 * bnn__laplace_glm_priors (nd scalar prior precisions; f_var nd blocks of n × K × K). */
static int glm_run(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n,
                   const double *deltas, int64_t nd, double *f_mu, double *f_var, const char *fn) {
    if (!la || !m || (!x && n > 0) || n < 0 || (n > 0 && (!f_mu || !f_var)) ||
        (deltas ? nd < 1 : nd != 1))
        return bnn__error(BNN_EINVAL, "%s: bad arguments", fn);
    int rc = check_prior(la, fn);
    if (rc) return rc;
    for (int64_t d = 0; deltas && d < nd; d++)
        if (!prior_ok(deltas[d], la->sigma))
            return bnn__error(BNN_EINVAL, "%s: prior precision %g (number %lld) must be positive "
                              "and finite", fn, deltas[d], (long long)d);
    const int64_t K = la->K, P = la->P, D = bnn_model_input_dim(m);
    const int64_t nparams = bnn_model_nparams(m);
    if ((rc = glm_check_model(la, m, fn))) return rc;
    if (n == 0) return 0;
    glm_layer *sub = NULL;
    int64_t nsub = 0, nb = 1;
    bool last = false;
    if ((rc = glm_plan(la, m, fn, &sub, &nsub, &last, &nb))) return rc;
    const int64_t rep = last ? 1 : K;
    int64_t max_in = 0, max_out = 0;
    for (int64_t s = 0; s < nsub; s++) {
        if (sub[s].in > max_in) max_in = sub[s].in;
        if (sub[s].out > max_out) max_out = sub[s].out;
    }
    if (nb > n) nb = n;
    const int64_t rows = nb * rep;
    /* The prior precisions go through the data in groups of at most bnn__glm_prior_budget bytes
     * of inv_d (256 MiB; a pass each), at least one. */
    int64_t group = (int64_t)(bnn__glm_prior_budget / sizeof(double)) / P;
    group = group < 1 ? 1 : group > nd ? nd : group;

    glm_ctx g = {.la = la, .sub = sub, .nsub = nsub, .rep = rep, .fstride = n * K * K};
    double *inv_d = alloc_doubles(group * P);
    float *theta = bnn__alloc_array(nparams, sizeof(float));
    float *xr = last ? NULL : bnn__alloc_array(rows * D, sizeof(float));
    /* dout: nb·K rows, row r = e_{r mod K}: the seeds of the backward passes, and for the
     * last-layer path every input's output Jacobian (the identity). */
    const int64_t drows = nb * K;
    float *dout = bnn__alloc_array(drows * K, sizeof(float));
    const int64_t nth = bnn_get_threads();
    g.max_in = max_in, g.max_out = max_out, g.nth = nth;
    if ((la->structure == BNN_HESS_KRON || la->structure == BNN_HESS_DIAG) &&
        !(g.ks = alloc_doubles(nth * glm_batch_scratch(la, max_in, max_out))))
        rc = bnn__error(BNN_ENOMEM, "%s: out of memory", fn);
    const bool dense_j = la->structure == BNN_HESS_FULL || la->structure == BNN_HESS_LOWRANK;
    const bool full_last = last && la->structure == BNN_HESS_FULL; /* U without J */
    if (dense_j) {
        g.R = nb * K;
        if (full_last)
            g.phid = alloc_doubles(nb * sub[0].in);
        else
            g.J = alloc_doubles(g.R * P);
        g.U = alloc_doubles(g.R * (la->structure == BNN_HESS_LOWRANK ? la->rank : P));
    }
    if (!inv_d || !theta || (!last && !xr) || !dout ||
        (dense_j && (!(g.J || g.phid) || !g.U)))
        rc = bnn__error(BNN_ENOMEM, "%s: out of memory", fn);
    if (!rc) rc = bnn_model_reserve(m, rows);
    const double hf = hscale(la, la->sigma);
    const bool chol = !deltas && la->layered && la->structure == BNN_HESS_FULL;
    g.inv_d = inv_d, g.Qf = chol ? la->Lt : la->Q;
    if (!rc) {
        memcpy(theta, bnn_model_cparams(m), (size_t)nparams * sizeof(float));
        bnn_curv_scatter(la->c, la->meanf, theta);
        for (int64_t r = 0; r < drows; r++)
            for (int64_t c = 0; c < K; c++)
                dout[r * K + c] = (r % K) == c ? 1.0f : 0.0f;
    }
    for (int64_t d0 = 0; !rc && d0 < nd; d0 += group) {
        g.nd = nd - d0 < group ? nd - d0 : group;
        g.deltas = deltas ? deltas + d0 : &la->delta;
        for (int64_t d = 0; d < g.nd; d++)
            for (int64_t i = 0; i < P; i++)
                inv_d[d * P + i] = chol     ? 1.0
                                   : deltas ? 1.0 / (hf * la->lam[i] + deltas[d0 + d])
                                            : 1.0 / (hf * la->lam[i] + dlt(la, i));
        for (int64_t t0 = 0; !rc && t0 < n; t0 += nb) {
            const int64_t nc = n - t0 < nb ? n - t0 : nb;
            g.nb = nc, g.f_var = f_var + d0 * g.fstride + t0 * K * K;
            for (int64_t d = 0; d < g.nd; d++)
                memset(g.f_var + d * g.fstride, 0, (size_t)(nc * K * K) * sizeof(double));
            if (g.J) memset(g.J, 0, (size_t)(g.R * P) * sizeof(double));
            const float *f;
            if (last) {
                f = bnn_model_forward(m, theta, x + t0 * D, nc, false, NULL);
                const float *phi = sub[0].layer ? bnn__model_act(m, sub[0].layer - 1) : x + t0 * D;
                if (full_last)
                    glm_full_last(&g, &sub[0], phi);
                else if (la->structure == BNN_HESS_KRON || la->structure == BNN_HESS_DIAG)
                    glm_batch_chunk(&g, &sub[0], phi, dout);
                else
                    for (int64_t t = 0; t < nc; t++)
                        glm_accumulate(&g, &sub[0], t, phi + t * sub[0].in, dout);
            } else {
                for (int64_t t = 0; t < nc; t++)
                    for (int64_t c = 0; c < K; c++)
                        memcpy(xr + (t * K + c) * D, x + (t0 + t) * D, (size_t)D * sizeof(float));
                f = bnn_model_forward(m, theta, xr, nc * K, false, NULL);
            }
            for (int64_t t = 0; t < nc; t++)
                for (int64_t c = 0; c < K; c++)
                    f_mu[(t0 + t) * K + c] = f[t * rep * K + c];
            if (!last) /* down to the subset's first layer only */
                bnn__model_backward_hook_to(m, theta, dout, glm_hook, &g, sub[0].layer);
            if (dense_j && !full_last) glm_full_project(&g);
            if (dense_j && la->structure == BNN_HESS_LOWRANK && la->rank < la->P)
                glm_lowrank_residual(&g);
            if (dense_j) glm_full_finish(&g);
        }
    }
    bnn__free(g.ks), bnn__free(g.phid), bnn__free(g.U), bnn__free(g.J);
    bnn__free(dout), bnn__free(xr), bnn__free(theta), bnn__free(inv_d), bnn__free(sub);
    return rc;
}

int bnn_laplace_glm(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n, double *f_mu,
                    double *f_var) {
    return glm_run(la, m, x, n, NULL, 1, f_mu, f_var, "bnn_laplace_glm");
}

int bnn__laplace_glm_priors(const bnn_laplace *la, bnn_model *m, const float *x, int64_t n,
                            const double *prior_precs, int64_t nprior, double *f_mu,
                            double *f_var, const char *fn) {
    if (!prior_precs) return bnn__error(BNN_EINVAL, "%s: the prior precisions are required", fn);
    return glm_run(la, m, x, n, prior_precs, nprior, f_mu, f_var, fn);
}

/* Probit approximation (MacKay 1992, "The evidence framework applied to classification
 * networks"; laplace-torch link_approx='probit'): κ_k = 1/√(1 + π/8 · f_var[k,k]),
 * p = softmax(κ ⊙ f_mu), by log-sum-exp (with log_probs: log p, each ≤ 0). */
void bnn__probit(double *out, const double *f_mu, const double *f_var, int64_t n, int64_t k,
                 bool log_probs) {
    for (int64_t t = 0; t < n; t++) {
        const double *mu = f_mu + t * k, *V = f_var + t * k * k;
        double *p = out + t * k, mx = -INFINITY;
        for (int64_t c = 0; c < k; c++) {
            p[c] = mu[c] / sqrt(1.0 + LAPLACE_PI / 8.0 * V[c * k + c]);
            if (p[c] > mx) mx = p[c];
        }
        double s = 0;
        for (int64_t c = 0; c < k; c++) s += exp(p[c] - mx);
        if (log_probs) {
            const double ls = log(s); /* s >= 1: every log-probability <= 0 */
            for (int64_t c = 0; c < k; c++) p[c] = (p[c] - mx) - ls;
        } else {
            for (int64_t c = 0; c < k; c++) p[c] = exp(p[c] - mx) / s;
        }
    }
}

/* The public links' argument checks (bnn_probit and the bridges): kmin classes at least, and
 * n·k·k doubles of f_var addressable. */
static int link_args(const char *fn, const double *probs, const double *f_mu, const double *f_var,
                     int64_t n, int64_t k, int64_t kmin) {
    if (!probs || (n > 0 && (!f_mu || !f_var)) || n < 0 || k < kmin || k > INT32_MAX ||
        (n > 0 && (uint64_t)n > SIZE_MAX / sizeof(double) / (uint64_t)k / (uint64_t)k))
        return bnn__error(BNN_EINVAL, "%s: probs, f_mu and f_var are required, n >= 0 and "
                          "%lld <= k < 2^31 (got n %lld, k %lld)", fn, (long long)kmin,
                          (long long)n, (long long)k);
    return 0;
}

int bnn_probit(double *probs, const double *f_mu, const double *f_var, int64_t n, int64_t k) {
    const int rc = link_args("bnn_probit", probs, f_mu, f_var, n, k, 1);
    if (rc) return rc;
    bnn__probit(probs, f_mu, f_var, n, k, false);
    for (int64_t t = 0; t < n; t++)
        for (int64_t c = 0; c < k; c++) {
            const double v = f_var[(t * k + c) * k + c], mu = f_mu[t * k + c];
            if (!(v >= 0.0) || !isfinite(mu))
                return bnn__error(BNN_EDIVERGED, "bnn_probit: row %lld, class %lld: %s %g (the "
                                  "probit needs finite logits and variances >= 0)", (long long)t,
                                  (long long)c, isfinite(mu) ? "variance" : "logit",
                                  isfinite(mu) ? v : mu);
        }
    return 0;
}

/* ψ(y) − ln y for y >= 16: −1/(2y) − Σ_k B_2k / (2k y^2k) to y^-12, the asymptotic series
 * ψ(y) = ln y − 1/(2y) − Σ_k B_2k / (2k y^2k) (Abramowitz & Stegun 6.3.18) without its ln y;
 * the first omitted term, y^-14 / 12, is under 2e-18 from y = 16 on. */
static double psi_tail(double y) {
    const double r = 1.0 / (y * y);
    const double series =
        r * (1.0 / 12 -
             r * (1.0 / 120 -
                  r * (1.0 / 252 - r * (1.0 / 240 - r * (1.0 / 132 - r * (691.0 / 32760))))));
    return -0.5 / y - series;
}

/* g(x) = ψ(x + 1) − ln x from lx = ln x, without the cancellation of the two for large x (both
 * about ln x; g about 1/(2x)): for x + 1 >= 16, ln(x + 1) − ln x is log1p(e^−lx); beyond
 * x = e^40, g = 1/(2x) to a relative 1e-18 (its next term is −1/(12x²), of relative 1/(6x)). */
double bnn__dirichlet_g(double lx) {
    if (lx > 40.0) return 0.5 * exp(-lx);
    const double x = exp(lx);
    double y = x + 1.0, acc = 0.0;
    if (y >= 16.0) return log1p(exp(-lx)) + psi_tail(y);
    while (y < 16.0) {
        acc -= 1.0 / y;
        y += 1.0;
    }
    return acc + log(y) - lx + psi_tail(y);
}

/* Laplace bridge (Hobbhahn, Kristiadi & Hennig, "Fast predictive uncertainty for classification
 * with Bayesian deep networks", UAI 2022), as laplace-torch's link_approx='bridge' computes it
 * (README §7): the zero-sum correction of mean and covariance, μ' = μ − s (Σ_j μ_j)/S and
 * V'_ii = V_ii − s_i c_i / S with row sums s, column sums c and total S of V, then the Dirichlet
 * parameters α_i = (1 − 2/K + e^{μ'_i} Σ_j e^{−μ'_j} / K²) / V'_ii and p = α / Σα. With `norm`
 * (link_approx='bridge_norm'), before the α: with c = mean_i V'_ii / √(K/2), μ' ← μ'/√c and
 * V'_ii ← V'_ii/c.
 *
 * Where the μ' are finite and every V'_ii positive beyond its rounding (a Dirichlet exists:
 * V'_ii > 64 K ε (|V_ii| + |s_i c_i / S|), the sums' rounding being about K ε of those terms, so
 * a corrected variance that is mostly rounding noise — V = L 11ᵀ + s I with L ≳ 1e14 s, a
 * direction the prior barely holds — is not taken for one), the α are formed in
 * log space: log α_i = log(1 − 2/K + e^{μ'_i + LSE(−μ') − 2 ln K}) − log V'_ii, and p (or, with
 * log_probs, log p) by a log-softmax of them. laplace-torch's direct form overflows for logit
 * gaps beyond about 709 — reached by the normalised bridge when the variances are small, where
 * it divides the means by √c — and turns the overflow into probabilities of exactly 0 and 1 (or
 * a row of 1s). Elsewhere (a row without a Dirichlet; K < 2) the direct form is kept as
 * laplace-torch computes it: NaN replaced by 1 (log 1 = 0 for log_probs) and ±Inf by ±DBL_MAX
 * (torch.nan_to_num), and *bad (may be NULL) is set to the first such row, else −1.
 *
 * mi (may be NULL): the Dirichlet's mutual information between the label and the class
 * probabilities π ~ Dir(α), I = H[p] − E[H[π]] with E[H[π]] = −Σ_i p_i (ψ(α_i + 1) − ψ(α_0 + 1)),
 * α_0 = Σα (Malinin & Gales, "Predictive uncertainty estimation via prior networks", NeurIPS
 * 2018, eq. 15). With g(x) = ψ(x + 1) − ln x and ln p_i = ln α_i − ln α_0, I = Σ_i p_i g(α_i) −
 * g(α_0), which does not cancel for large α (I → (K − 1)/(2 α_0)); clamped at 0 against rounding,
 * NaN for a row without a Dirichlet. Its accuracy is absolute (about 1e-15): where one class
 * dominates with a small α (α = (1e-5, 1e-25): I = 5e-19) the relative error can be large.
 * Returns 0, or BNN_ENOMEM for scratch (K > 256 only). */
int bnn__bridge(double *out, const double *f_mu, const double *f_var, int64_t n, int64_t k,
                bool norm, bool log_probs, double *mi, int64_t *bad) {
    double stack[2 * 256];
    double *sc = k <= 256 ? stack : malloc((size_t)(2 * k) * sizeof(double));
    if (!sc) return bnn__error(BNN_ENOMEM, "out of memory for the Laplace bridge (%lld classes)",
                               (long long)k);
    double *mu = sc, *v = sc + k; /* μ' and V'_ii */
    const double A = 1.0 - 2.0 / (double)k, lk2 = 2.0 * log((double)k);
    const double lA = A > 0.0 ? log(A) : -INFINITY; /* ln(1 − 2/K) */
    if (bad) *bad = -1;
    for (int64_t t = 0; t < n; t++) {
        const double *mu0 = f_mu + t * k, *V = f_var + t * k * k;
        double *p = out + t * k;
        double S = 0, musum = 0;
        for (int64_t i = 0; i < k; i++) {
            double si = 0;
            for (int64_t j = 0; j < k; j++) si += V[i * k + j];
            p[i] = si; /* row sums, in p for now */
            S += si;
            musum += mu0[i];
            v[i] = 0.0;
        }
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < k; j++) v[j] += V[i * k + j]; /* column sums */
        bool ok = k >= 2;
        double vsum = 0;
        const double tol = 64.0 * (double)k * DBL_EPSILON;
        for (int64_t i = 0; i < k; i++) {
            /* divided by S first: s_i c_i overflows (or underflows) for variances beyond 1e154
             * (or below 1e-154) where the quotient does not */
            const double corr = p[i] * (v[i] / S);
            mu[i] = mu0[i] - (p[i] / S) * musum;
            v[i] = V[i * k + i] - corr;
            ok = ok && isfinite(mu[i]) && isfinite(v[i]) &&
                 v[i] > tol * (fabs(V[i * k + i]) + fabs(corr));
            vsum += v[i];
        }
        if (norm) {
            const double c = vsum / (double)k / sqrt((double)k / 2.0), rc = 1.0 / sqrt(c);
            ok = ok && c > 0.0 && isfinite(rc);
            for (int64_t i = 0; i < k; i++) {
                mu[i] *= rc, v[i] /= c;
                ok = ok && isfinite(mu[i]) && v[i] > 0.0;
            }
        }
        if (ok) {
            double mx = -INFINITY, se = 0.0;
            for (int64_t i = 0; i < k; i++) mx = fmax(mx, -mu[i]);
            for (int64_t i = 0; i < k; i++) se += exp(-mu[i] - mx);
            const double lse = mx + log(se); /* ln Σ_j e^{−μ'_j} */
            double amax = -INFINITY;
            for (int64_t i = 0; i < k; i++) {
                const double lb = mu[i] + lse - lk2; /* ln(e^{μ'_i} Σ_j e^{−μ'_j} / K²) */
                double la = lb;                       /* ln(A + e^lb), A = 0 for K = 2 */
                if (A > 0.0) la = fmax(lA, lb) + log1p(exp(-fabs(lA - lb)));
                p[i] = la - log(v[i]); /* ln α_i */
                amax = fmax(amax, p[i]);
            }
            double ssum = 0.0;
            for (int64_t i = 0; i < k; i++) ssum += exp(p[i] - amax);
            /* ln p_i = (ln α_i − max) − ln Σ e^{ln α_j − max}: with ln α_0 formed first, its
             * rounding (half an ulp of a large max) would be in every ln p_i, and (1, 1, 0) came
             * out for a tie at α ~ e^37 */
            const double lss = log(ssum), l0 = amax + lss; /* ln α_0 */
            if (isfinite(l0)) {
                if (mi) {
                    double mut = -bnn__dirichlet_g(l0);
                    for (int64_t i = 0; i < k; i++)
                        mut += exp((p[i] - amax) - lss) * bnn__dirichlet_g(p[i]);
                    mi[t] = mut > 0.0 ? mut : 0.0;
                }
                for (int64_t i = 0; i < k; i++) {
                    const double lp = (p[i] - amax) - lss;
                    p[i] = log_probs ? lp : exp(lp);
                }
                continue;
            }
        }
        if (bad && *bad < 0) *bad = t;
        if (mi) mi[t] = NAN;
        double sum_exp = 0; /* laplace-torch's arithmetic as it is */
        for (int64_t i = 0; i < k; i++) sum_exp += exp(-mu[i]);
        double asum = 0;
        for (int64_t i = 0; i < k; i++) {
            p[i] = (A + exp(mu[i]) / (double)(k * k) * sum_exp) / v[i];
            asum += p[i];
        }
        for (int64_t i = 0; i < k; i++) {
            double q = p[i] / asum;
            if (isnan(q))
                q = 1.0;
            else if (isinf(q))
                q = q > 0 ? DBL_MAX : -DBL_MAX;
            p[i] = log_probs ? log(q) : q;
        }
    }
    if (sc != stack) free(sc);
    return 0;
}

/* The public bridges: argument checks, then bnn__bridge. probs are NaN where it fails. */
static int bridge_api(const char *fn, double *probs, const double *f_mu, const double *f_var,
                      int64_t n, int64_t k, bool norm) {
    const int arc = link_args(fn, probs, f_mu, f_var, n, k, 2);
    if (arc) return arc;
    int64_t bad = -1;
    const int rc = bnn__bridge(probs, f_mu, f_var, n, k, norm, false, NULL, &bad);
    if (rc)
        for (int64_t i = 0; i < n * k; i++) probs[i] = NAN;
    else if (bad >= 0)
        return bnn__error(BNN_EDIVERGED, "%s: row %lld has no Dirichlet (logits that are not "
                          "finite, or a variance after the zero-sum correction that is not "
                          "positive); it and any like it hold laplace-torch's arithmetic", fn,
                          (long long)bad);
    return rc;
}

int bnn_laplace_bridge(double *probs, const double *f_mu, const double *f_var, int64_t n,
                       int64_t k) {
    return bridge_api("bnn_laplace_bridge", probs, f_mu, f_var, n, k, false);
}

int bnn_laplace_bridge_norm(double *probs, const double *f_mu, const double *f_var, int64_t n,
                            int64_t k) {
    return bridge_api("bnn_laplace_bridge_norm", probs, f_mu, f_var, n, k, true);
}

/* ------------------------------------------------------------------ sampling */

/* θ = θ_MAP + P_post^{-1/2}-distributed noise, exactly for the decomposition: with ε ~ N(0, I),
 * z = ε / √(hf λ + δ) in the eigenbasis and θ − θ_MAP = Q z (diag: Q = I; full: the
 * eigenvectors of H; kron: per weight block Q_B Z Q_Aᵀ with Z the out × in reshape of z, per
 * bias block Q_b z). The covariance is Q diag(1/(hf λ + δ)) Qᵀ = P_post⁻¹ (the distribution of
 * Q ε equals that of ε, so this matches laplace-torch's samples in law). */
int bnn_laplace_sample(const bnn_laplace *la, bnn_rng *rng, float *theta) {
    if (!la || !rng || !theta) return bnn__error(BNN_EINVAL, "bnn_laplace_sample: NULL argument");
    int rc = check_prior(la, "bnn_laplace_sample");
    if (rc) return rc;
    const int64_t P = la->P;
    const double hf = hscale(la, la->sigma);
    float *eps = bnn__alloc_array(P, sizeof(float));
    double *z = alloc_doubles(P), *tmp = NULL, *At = NULL, *row = NULL;
    int64_t max_tmp = 0, max_in = 0;
    if (la->structure == BNN_HESS_KRON)
        for (int64_t b = 0; b < la->nblocks; b++) {
            if (la->blk[b].n0 * la->blk[b].n1 > max_tmp) max_tmp = la->blk[b].n0 * la->blk[b].n1;
            if (la->blk[b].n1 > max_in) max_in = la->blk[b].n1;
        }
    if (max_tmp) tmp = alloc_doubles(max_tmp), At = alloc_doubles(max_in * max_in);
    if (max_tmp) row = alloc_doubles(max_in);
    if (!eps || !z || (max_tmp && (!tmp || !At || !row))) {
        bnn__free(row), bnn__free(At), bnn__free(tmp), bnn__free(z), bnn__free(eps);
        return bnn__error(BNN_ENOMEM, "bnn_laplace_sample: out of memory");
    }
    bnn_rng_normal(rng, eps, P);
    for (int64_t i = 0; i < P; i++)
        z[i] = la->layered && la->structure == BNN_HESS_FULL
                   ? (double)eps[i] /* θ − θ_MAP = L⁻ᵀ ε, covariance L⁻ᵀ L⁻¹ = P_post⁻¹ */
                   : (double)eps[i] / sqrt(hf * la->lam[i] + dlt(la, i));
    switch (la->structure) {
    case BNN_HESS_DIAG:
        for (int64_t i = 0; i < P; i++)
            theta[i] = (float)(la->mean[i] + z[i]);
        break;
    case BNN_HESS_FULL:
        for (int64_t i = 0; i < P; i++) {
            /* (Q z)_i = Σ_k Q[i,k] z_k */
            const double *q = (la->layered ? la->Lt : la->Q) + i * P;
            double s = 0;
            for (int64_t k = 0; k < P; k++)
                s += q[k] * z[k];
            theta[i] = (float)(la->mean[i] + s);
        }
        break;
    case BNN_HESS_KRON:
        for (int64_t b = 0; b < la->nblocks; b++) {
            const kblock *k = &la->blk[b];
            const int64_t n0 = k->n0, n1 = k->n1;
            const double *Z = z + k->off;
            if (k->nf == 2) {
                /* W = Q_B Z Q_Aᵀ as row updates: T = Q_B Z (T[o,:] = Σ_r Q_B[o,r] Z[r,:]), then
                 * W[o,:] = Σ_j T[o,j] Q_Aᵀ[j,:] with Q_Aᵀ copied once into At. */
                for (int64_t i = 0; i < n1; i++)
                    for (int64_t j = 0; j < n1; j++)
                        At[j * n1 + i] = k->Q1[i * n1 + j];
                memset(tmp, 0, (size_t)(n0 * n1) * sizeof(double));
                for (int64_t o = 0; o < n0; o++)
                    for (int64_t r = 0; r < n0; r++) {
                        const double q = k->Q0[o * n0 + r], *zr = Z + r * n1;
                        double *t = tmp + o * n1;
                        for (int64_t i = 0; i < n1; i++)
                            t[i] += q * zr[i];
                    }
                for (int64_t o = 0; o < n0; o++) {
                    memset(row, 0, (size_t)n1 * sizeof(double));
                    for (int64_t j = 0; j < n1; j++) {
                        const double t = tmp[o * n1 + j], *aj = At + j * n1;
                        for (int64_t i = 0; i < n1; i++)
                            row[i] += t * aj[i];
                    }
                    for (int64_t i = 0; i < n1; i++) {
                        const int64_t idx = k->off + o * n1 + i;
                        theta[idx] = (float)(la->mean[idx] + row[i]);
                    }
                }
            } else {
                for (int64_t o = 0; o < n0; o++) {
                    double s = 0;
                    for (int64_t r = 0; r < n0; r++) /* (Q_b z)_o */
                        s += k->Q0[o * n0 + r] * Z[r];
                    theta[k->off + o] = (float)(la->mean[k->off + o] + s);
                }
            }
        }
        break;
    case BNN_HESS_LOWRANK: {
        /* Σ^{1/2} = (1/√δ) I + U diag(1/√(hf λ + δ) − 1/√δ) Uᵀ (U orthonormal): on span(U) the
         * scale is 1/√(hf λ + δ), on its complement 1/√δ, so Σ^{1/2} Σ^{1/2} = Σ. */
        const int64_t r = la->rank;
        const double sd = 1.0 / sqrt(la->delta);
        double *w = alloc_doubles(r);
        if (!w) {
            rc = bnn__error(BNN_ENOMEM, "bnn_laplace_sample: out of memory");
            break;
        }
        memset(w, 0, (size_t)r * sizeof(double));
        for (int64_t i = 0; i < P; i++) { /* w = Uᵀ ε */
            const double e = eps[i], *ui = la->U + i * r;
            for (int64_t j = 0; j < r; j++)
                w[j] += ui[j] * e;
        }
        for (int64_t j = 0; j < r; j++)
            w[j] *= 1.0 / sqrt(hf * la->lam[j] + la->delta) - sd;
        for (int64_t i = 0; i < P; i++) {
            const double *ui = la->U + i * r;
            double s = 0;
            for (int64_t j = 0; j < r; j++)
                s += ui[j] * w[j];
            theta[i] = (float)(la->mean[i] + sd * (double)eps[i] + s);
        }
        bnn__free(w);
        break;
    }
    }
    bnn__free(row), bnn__free(At), bnn__free(tmp), bnn__free(z), bnn__free(eps);
    /* An eigenvalue of the precision at or below 0 (NaN) or a variance beyond float range (a
     * prior precision of nearly 0 on a flat direction; Inf) is an error, not a sample. */
    for (int64_t i = 0; !rc && i < P; i++)
        if (!isfinite(theta[i]))
            rc = bnn__error(BNN_EINVAL, "Laplace: weight %lld of a sample is not "
                            "finite: at prior precision %g the posterior precision is not "
                            "positive definite or its variance overflows a float",
                            (long long)i, la->delta);
    return rc;
}
