/* The GEMM seam: every matrix product in bnn goes through bnn_gemm (or, for a Gram matrix AᵀA,
 * its symmetric half bnn_syrk), which calls OpenBLAS when the build has it and otherwise a plain
 * C loop. The plain loop is always built: it is the
 * reference the BLAS path is tested against. */
#include "core/internal.h"

#if defined(BNN_HAVE_BLAS)
#include <cblas.h>
#endif

static bnn_gemm_backend gemm_backend = BNN_GEMM_AUTO;

bool bnn_have_blas(void) {
#if defined(BNN_HAVE_BLAS)
    return true;
#else
    return false;
#endif
}

void bnn_gemm_set_backend(bnn_gemm_backend be) { gemm_backend = be; }

/* C (M×N) = alpha·op(A)·op(B) + beta·C in row-major order; accumulates each dot product in
 * double so the reference is more accurate than any fast path it checks. */
static void gemm_ref(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K,
                     bool ta, bool tb, float alpha, float beta) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (M * N * K > 65536)
#endif
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++) {
                float a = ta ? A[k * M + i] : A[i * K + k];
                float b = tb ? B[j * K + k] : B[k * N + j];
                s += (double)a * (double)b;
            }
            float prev = beta == 0.0f ? 0.0f : beta * C[i * N + j];
            C[i * N + j] = (float)(alpha * s) + prev;
        }
    }
}

#if defined(BNN_HAVE_BLAS)
/* OpenBLAS runs single-threaded (bnn__blas_pin, threads.c): bnn_gemm splits C itself into
 * blocks whose boundaries depend only on the shape, shared among OpenMP threads, so every element
 * is computed by the same single-threaded call whatever the thread count. */

/* Number of blocks for a product: 1 for small work, else up to 16, each at least 128 wide along
 * the split dimension. Each block is its own sgemm call, which copies the whole of the other
 * operand into OpenBLAS's panel layout, so the narrower the blocks the more often that copy is
 * made. On a Zen 3 machine the eight products of one training step of the 784-512-256-10 MLP
 * (batch 128) took about 19% longer in 32-wide blocks than in 128-wide ones (2 threads, best of
 * 400 alternating, three runs, 2026-12-07); 128 still gives 1 to 6 blocks for those products. */
#define GEMM_MIN_WIDTH 128
static int64_t gemm_blocks(int64_t M, int64_t N, int64_t K) {
    int64_t d = M > N ? M : N;
    if ((double)M * (double)N * (double)K < 262144.0 || d < 2 * GEMM_MIN_WIDTH) return 1;
    int64_t n = d / GEMM_MIN_WIDTH;
    return n < 16 ? n : 16;
}

static void gemm_blas(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K,
                      bool ta, bool tb, float alpha, float beta) {
    bnn__blas_pin();
    const int lda = ta ? (int)M : (int)K, ldb = tb ? (int)K : (int)N, ldc = (int)N;
    const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
    const int64_t nb = gemm_blocks(M, N, K);
    const bool split_n = N >= M;
    const int64_t d = split_n ? N : M;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (nb > 1)
#endif
    for (int64_t c = 0; c < nb; c++) {
        /* Block edges on multiples of 16 (the widest sgemm micro-kernel), the last one at d. */
        int64_t lo = (c * d / nb) / 16 * 16, hi = c + 1 == nb ? d : ((c + 1) * d / nb) / 16 * 16;
        if (hi <= lo) continue;
        if (split_n) {
            const float *Bc = tb ? B + lo * K : B + lo;
            cblas_sgemm(CblasRowMajor, opa, opb, (int)M, (int)(hi - lo), (int)K, alpha, A, lda, Bc,
                        ldb, beta, C + lo, ldc);
        } else {
            const float *Ac = ta ? A + lo : A + lo * K;
            cblas_sgemm(CblasRowMajor, opa, opb, (int)(hi - lo), (int)N, (int)K, alpha, Ac, lda, B,
                        ldb, beta, C + lo * N, ldc);
        }
    }
}
#endif

/* The upper triangle (i <= j) of C (N×N) = alpha·AᵀA + beta·C for A (K×N, row-major); the
 * reference for the symmetric rank-K update, with dot products in double like gemm_ref. */
static void syrk_ref(float *C, const float *A, int64_t N, int64_t K, float alpha, float beta) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(dynamic, 8) if (N * N * K > 131072)
#endif
    for (int64_t i = 0; i < N; i++) {
        for (int64_t j = i; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += (double)A[k * N + i] * (double)A[k * N + j];
            float prev = beta == 0.0f ? 0.0f : beta * C[i * N + j];
            C[i * N + j] = (float)(alpha * s) + prev;
        }
    }
}

/* Tiles of the symmetric update along N: 1 for small work, else N/64 up to 8 (so 256 gives 4
 * tiles of 64), their edges on multiples of 16 like gemm_blas's blocks. Tile pair (I, J) with
 * I < J is a GEMM of A's column blocks I and J; (I, I) is an SSYRK of block I. Together the
 * nt(nt+1)/2 calls do exactly the multiply-adds of one SSYRK (half those of the GEMM AᵀA), and
 * each element of C comes from one single-threaded call whose shape depends only on (N, K), so
 * the result is the same for every thread count. */
#define SYRK_MAX_TILES 8
#define SYRK_MAX_PAIRS (SYRK_MAX_TILES * (SYRK_MAX_TILES + 1) / 2)
struct syrk_plan {
    int64_t edge[SYRK_MAX_TILES + 1];
    int ti[SYRK_MAX_PAIRS], tj[SYRK_MAX_PAIRS], ntile;
};

static void syrk_plan(struct syrk_plan *sp, int64_t N, int64_t K) {
    int64_t nt = 1;
    if (!((double)N * (double)N * (double)K < 524288.0 || N < 128))
        nt = N / 64 < SYRK_MAX_TILES ? N / 64 : SYRK_MAX_TILES;
    for (int64_t t = 0; t <= nt; t++)
        sp->edge[t] = t == nt ? N : (t * N / nt) / 16 * 16;
    /* The off-diagonal GEMM tiles (twice the work of a diagonal one) first, so that a dynamic
     * schedule ends with the small ones. */
    sp->ntile = 0;
    for (int i = 0; i < nt; i++)
        for (int j = i + 1; j < nt; j++)
            sp->ti[sp->ntile] = i, sp->tj[sp->ntile++] = j;
    for (int i = 0; i < nt; i++)
        sp->ti[sp->ntile] = i, sp->tj[sp->ntile++] = i;
}

#if defined(BNN_HAVE_BLAS)
static void syrk_blas(float *C, const float *A, int64_t N, int64_t K, float alpha, float beta) {
    bnn__blas_pin();
    struct syrk_plan sp;
    syrk_plan(&sp, N, K);
    const int64_t *edge = sp.edge;
    const int *ti = sp.ti, *tj = sp.tj, ntile = sp.ntile;
    const int lda = (int)N, ldc = (int)N;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(dynamic) if (ntile > 1)
#endif
    for (int t = 0; t < ntile; t++) {
        const int64_t i0 = edge[ti[t]], wi = edge[ti[t] + 1] - i0;
        const int64_t j0 = edge[tj[t]], wj = edge[tj[t] + 1] - j0;
        if (ti[t] == tj[t])
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)wi, (int)K, alpha, A + i0, lda,
                        beta, C + i0 * N + i0, ldc);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)wi, (int)wj, (int)K, alpha,
                        A + i0, lda, A + j0, lda, beta, C + i0 * N + j0, ldc);
    }
}
#endif

/* The same in double: the curvature's exact products (full GGN), whose float sums leave
 * eigenvalues of −1e-7 of the largest where the true ones are ~0 (see src/fit/curvature.c). The
 * tiles are bnn_syrk's, so the bits do not depend on the thread count either. */
static void dsyrk_one(double *C, const double *A, int64_t N, int64_t K, double alpha, double beta,
                      int64_t i0, int64_t wi, int64_t j0, int64_t wj) {
#if defined(BNN_HAVE_BLAS)
    if (gemm_backend != BNN_GEMM_REF && N <= INT32_MAX && K <= INT32_MAX) {
        if (i0 == j0)
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)wi, (int)K, alpha, A + i0,
                        (int)N, beta, C + i0 * N + i0, (int)N);
        else
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)wi, (int)wj, (int)K, alpha,
                        A + i0, (int)N, A + j0, (int)N, beta, C + i0 * N + j0, (int)N);
        return;
    }
#endif
    for (int64_t i = i0; i < i0 + wi; i++) /* the reference: one dot product per element */
        for (int64_t j = i0 == j0 ? i : j0; j < j0 + wj; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += A[k * N + i] * A[k * N + j];
            C[i * N + j] = alpha * s + (beta == 0.0 ? 0.0 : beta * C[i * N + j]);
        }
}

/* What both double entries do first: true when nothing is left to sum (N = 0, or K = 0 with C
 * scaled by beta here, since BLAS would read C even when beta is 0). */
static bool dsyrk_trivial(double *C, int64_t N, int64_t K, double beta) {
    BNN_ASSERT(N >= 0 && K >= 0);
    bnn__blas_pin();
    if (N > 0 && K > 0) return false;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = i; j < N; j++)
            C[i * N + j] = beta == 0.0 ? 0.0 : beta * C[i * N + j];
    return true;
}

void bnn__dsyrk(double *C, const double *A, int64_t N, int64_t K, double alpha, double beta) {
    if (dsyrk_trivial(C, N, K, beta)) return;
    struct syrk_plan sp;
    syrk_plan(&sp, N, K);
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(dynamic) if (sp.ntile > 1)
#endif
    for (int t = 0; t < sp.ntile; t++) {
        const int64_t i0 = sp.edge[sp.ti[t]], j0 = sp.edge[sp.tj[t]];
        dsyrk_one(C, A, N, K, alpha, beta, i0, sp.edge[sp.ti[t] + 1] - i0, j0,
                  sp.edge[sp.tj[t] + 1] - j0);
    }
}

void bnn__dsyrk_serial(double *C, const double *A, int64_t N, int64_t K, double alpha,
                       double beta) {
    if (dsyrk_trivial(C, N, K, beta)) return;
    dsyrk_one(C, A, N, K, alpha, beta, 0, N, 0, N);
}

void bnn_syrk_with(bnn_gemm_backend be, float *C, const float *A, int64_t N, int64_t K,
                   float alpha, float beta) {
    BNN_ASSERT(N >= 0 && K >= 0);
    if (N == 0) return;
#if defined(BNN_HAVE_BLAS)
    /* As for GEMM: BLAS with K = 0 would read C even when beta is 0. */
    if (be != BNN_GEMM_REF && K > 0 && N <= INT32_MAX && K <= INT32_MAX) {
        syrk_blas(C, A, N, K, alpha, beta);
        return;
    }
#endif
    (void)be;
    syrk_ref(C, A, N, K, alpha, beta);
}

void bnn_syrk(float *C, const float *A, int64_t N, int64_t K, float alpha, float beta) {
    bnn_syrk_with(gemm_backend, C, A, N, K, alpha, beta);
}

void bnn__dgemm_serial(double *C, const double *A, const double *B, int64_t M, int64_t N, int64_t K,
                       int64_t lda, int64_t ldb, int64_t ldc, bool ta, bool tb, double beta) {
    BNN_ASSERT(M >= 0 && N >= 0 && K >= 0 && lda >= (ta ? M : K) && ldb >= (tb ? K : N) &&
               ldc >= N);
    if (M == 0 || N == 0) return;
#if defined(BNN_HAVE_BLAS)
    if (gemm_backend != BNN_GEMM_REF && K > 0 && M <= INT32_MAX && N <= INT32_MAX &&
        K <= INT32_MAX && lda <= INT32_MAX && ldb <= INT32_MAX && ldc <= INT32_MAX) {
        bnn__blas_pin();
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    (int)M, (int)N, (int)K, 1.0, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
        return;
    }
#endif
    for (int64_t i = 0; i < M; i++) { /* the reference: one dot product per element */
        for (int64_t j = 0; j < N; j++) {
            double s = 0.0;
            for (int64_t k = 0; k < K; k++)
                s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = beta == 0.0 ? s : s + beta * C[i * ldc + j];
        }
    }
}

void bnn__syrk_serial(float *C, const float *A, int64_t N, int64_t K, float alpha, float beta) {
    BNN_ASSERT(N >= 0 && K >= 0);
    if (N == 0) return;
#if defined(BNN_HAVE_BLAS)
    if (gemm_backend != BNN_GEMM_REF && K > 0 && N <= INT32_MAX && K <= INT32_MAX) {
        bnn__blas_pin();
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)N, (int)K, alpha, A, (int)N, beta,
                    C, (int)N);
        return;
    }
#endif
    syrk_ref(C, A, N, K, alpha, beta); /* in a parallel region its own loop runs in one thread */
}

void bnn_gemm_with(bnn_gemm_backend be, float *C, const float *A, const float *B, int64_t M,
                   int64_t N, int64_t K, bool ta, bool tb, float alpha, float beta) {
    BNN_ASSERT(M >= 0 && N >= 0 && K >= 0);
    if (M == 0 || N == 0) return;
#if defined(BNN_HAVE_BLAS)
    /* BLAS with K = 0 would only scale C by beta, reading C even when beta is 0. */
    if (be != BNN_GEMM_REF && K > 0 && M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX) {
        gemm_blas(C, A, B, M, N, K, ta, tb, alpha, beta);
        return;
    }
#endif
    (void)be;
    gemm_ref(C, A, B, M, N, K, ta, tb, alpha, beta);
}

void bnn_gemm(float *C, const float *A, const float *B, int64_t M, int64_t N, int64_t K, bool ta,
              bool tb, float alpha, float beta) {
    bnn_gemm_with(gemm_backend, C, A, B, M, N, K, ta, tb, alpha, beta);
}
