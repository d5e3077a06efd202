/* LAPACK through LAPACKE's *_work entry points, with our own workspace queries.
 *
 * Why not the plain LAPACKE_x calls. (1) They first scan the matrix for NaN (LAPACKE's
 * "nancheck") with the 32-bit index i + j·lda, which overflows, and reads outside the matrix,
 * from order 46,341 on (n² − 1 > 2^31 − 1). bnn checks its matrices itself (bnn__all_finite)
 * before every call: LAPACK does not refuse NaN (OpenBLAS's dpotrf factors a matrix with NaN
 * entries and returns 0).
 * (2) dsyevd's workspace, 1 + 6n + 2n² doubles, has no 32-bit lapack_int from n = 32,767 on, and
 * LAPACK's own query then wraps around to a size far too small. Above that order bnn__syev takes
 * dsyevr instead (Dhillon, Parlett & Vömel's MRRR: workspace linear in n, plus a separate n × n
 * output), so a large Kronecker factor or full posterior is decomposed, not corrupted. */
#include "core/internal.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(lapack_int) == sizeof(int), "an LP64 LAPACKE (32-bit lapack_int)");

/* dsyevd for vectors needs lwork >= 1 + 6n + 2n², liwork >= 3 + 5n (LAPACK's dsyevd). */
static bool dc_fits(int64_t n) { return n <= 32766; }
/* 1 + 6·32766 + 2·32766² = 2,147,418,109 <= INT32_MAX < the same at 32,767 (2,147,549,181) */
_Static_assert(1 + 6 * 32766LL + 2 * 32766LL * 32766LL <= 2147483647LL &&
                   1 + 6 * 32767LL + 2 * 32767LL * 32767LL > 2147483647LL,
               "dsyevd's largest order with a 32-bit workspace");

int bnn__syev_method(int64_t n) { return dc_fits(n) ? BNN__SYEV_DC : BNN__SYEV_MRRR; }

/* dsyevr's minimum lwork is 26n and liwork 10n; its query asks for (nb + 1)n with LAPACK's
 * block size nb (33n here), counted as 64n. */
double bnn__syev_bytes(int64_t n) {
    const double d = (double)n;
    if (dc_fits(n)) return 8.0 * (1.0 + 6.0 * d + 2.0 * d * d) + 4.0 * (3.0 + 5.0 * d);
    return 8.0 * d * d + 8.0 * 64.0 * d + 4.0 * 12.0 * d;
}

static lapack_int query_size(double q, int64_t least) {
    const double v = q > (double)least ? q : (double)least;
    return v < 2147483647.0 ? (lapack_int)v : -1;
}

int bnn__syev(double *a, int64_t n, double *w, int method) {
    if (n < 1 || (int64_t)(lapack_int)n != n) return -4; /* LAPACK's "argument 4 (N) is bad" */
    if (method == BNN__SYEV_AUTO) method = bnn__syev_method(n);
    if (method == BNN__SYEV_DC && !dc_fits(n)) return -9; /* lwork */
    const lapack_int nn = (lapack_int)n;
    double q = 0.0;
    lapack_int iq = 0, info;
    bnn__blas_pin();
    if (method == BNN__SYEV_DC) {
        info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', nn, a, nn, w, &q, -1, &iq, -1);
        if (info) return info;
        const lapack_int lw = query_size(q, 1 + 6 * n + 2 * n * n), liw = query_size(iq, 3 + 5 * n);
        if (lw < 0 || liw < 0) return -9;
        double *work = malloc((size_t)lw * sizeof *work);
        lapack_int *iwork = malloc((size_t)liw * sizeof *iwork);
        info = work && iwork ? LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', nn, a, nn, w, work,
                                                   lw, iwork, liw)
                             : LAPACK_WORK_MEMORY_ERROR;
        free(work), free(iwork);
        return info;
    }
    /* MRRR: all eigenpairs into z, then z over a. */
    double *z = malloc((size_t)n * (size_t)n * sizeof *z);
    info = z ? bnn__syevr(a, n, 1, n, w, z) : LAPACK_WORK_MEMORY_ERROR;
    if (!info) memcpy(a, z, (size_t)n * (size_t)n * sizeof *a);
    free(z);
    return info;
}

int bnn__syevr(double *a, int64_t n, int64_t il, int64_t iu, double *w, double *z) {
    if (n < 1 || (int64_t)(lapack_int)n != n) return -4;
    if (il < 1 || iu < il || iu > n) return -9;
    const lapack_int nn = (lapack_int)n, m = (lapack_int)(iu - il + 1);
    const double abstol = LAPACKE_dlamch('S');
    double q = 0.0, *work = NULL;
    lapack_int iq = 0, found = 0, *iwork = NULL;
    lapack_int *isuppz = malloc((size_t)(2 * m) * sizeof *isuppz);
    if (!isuppz) return LAPACK_WORK_MEMORY_ERROR;
    bnn__blas_pin();
    lapack_int info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'V', m == nn ? 'A' : 'I', 'L', nn, a,
                                          nn, 0.0, 0.0, (lapack_int)il, (lapack_int)iu, abstol,
                                          &found, w, z, nn, isuppz, &q, -1, &iq, -1);
    if (!info) {
        const lapack_int lw = query_size(q, 26 * n), liw = query_size(iq, 10 * n);
        work = lw > 0 ? malloc((size_t)lw * sizeof *work) : NULL;
        iwork = liw > 0 ? malloc((size_t)liw * sizeof *iwork) : NULL;
        info = work && iwork ? LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'V', m == nn ? 'A' : 'I', 'L',
                                                   nn, a, nn, 0.0, 0.0, (lapack_int)il,
                                                   (lapack_int)iu, abstol, &found, w, z, nn,
                                                   isuppz, work, lw, iwork, liw)
                             : LAPACK_WORK_MEMORY_ERROR;
    }
    if (!info && found != m) info = m - found; /* eigenvalues missing: no convergence */
    free(isuppz), free(work), free(iwork);
    return info;
}

bool bnn__all_finite(const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

int bnn__qr_basis(double *a, int64_t m, int64_t n, double *tau) {
    if (n < 1 || m < n || (int64_t)(lapack_int)m != m) return n < 1 || m < n ? -3 : -2;
    const lapack_int mm = (lapack_int)m, nn = (lapack_int)n;
    double q1 = 0.0, q2 = 0.0;
    bnn__blas_pin();
    lapack_int info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, mm, nn, a, mm, tau, &q1, -1);
    if (!info) info = LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, mm, nn, nn, a, mm, tau, &q2, -1);
    if (info) return info;
    const lapack_int lw = query_size(q1 > q2 ? q1 : q2, n);
    if (lw < 0) return -8;
    double *work = malloc((size_t)lw * sizeof *work);
    if (!work) return LAPACK_WORK_MEMORY_ERROR;
    info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, mm, nn, a, mm, tau, work, lw);
    if (!info) info = LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, mm, nn, nn, a, mm, tau, work, lw);
    free(work);
    return info;
}
