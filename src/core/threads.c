/* Thread count for OpenMP loops and OpenBLAS. */
#include "core/internal.h"

#include <stdatomic.h>

#include <pthread.h>
#if defined(BNN_HAVE_OPENMP)
#include <omp.h>
#endif

/* OpenBLAS's thread count. OpenBLAS is in the process whenever bnn_gemm uses it (BNN_BLAS) and
 * also behind LAPACK: Debian's liblapack.so.3 is OpenBLAS's when libopenblas is installed. Weak,
 * so that a build against another LAPACK links and runs too (the call is then skipped). */
void openblas_set_num_threads(int num_threads);
#pragma weak openblas_set_num_threads

/* OpenBLAS splits a product differently for different thread counts, and that changes the
 * rounding (seen in dgemm with K = 600 and 784, and in dsyevd's eigenvectors from n = 100 on, 1
 * against 2 threads). So OpenBLAS always runs single-threaded: bnn_gemm shares the work among
 * OpenMP threads in blocks fixed by the shape (gemm.c), and LAPACK runs on one thread. Its own
 * default is every core, so this must come before the first BLAS or LAPACK call of the process,
 * not only the first bnn_gemm: a posterior loaded for eval factorises before any product. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) {
    if (openblas_set_num_threads) openblas_set_num_threads(1);
}

void bnn__blas_pin(void) { pthread_once(&blas_once, blas_single_thread); }

/* Process-wide (bnn.h): atomic, so that a thread may read it while another sets it. */
static atomic_int bnn_threads;

void bnn_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > BNN_MAX_THREADS) n = BNN_MAX_THREADS;
    atomic_store(&bnn_threads, n);
#if defined(BNN_HAVE_OPENMP)
    omp_set_num_threads(n);
#endif
    /* OpenBLAS itself stays single-threaded (bnn__blas_pin). */
}

int bnn_get_threads(void) {
    const int n = atomic_load(&bnn_threads);
    if (n > 0) return n;
#if defined(BNN_HAVE_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int64_t bnn__thread_id(void) {
#if defined(BNN_HAVE_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}
