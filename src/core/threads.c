/* Thread count for OpenMP loops and OpenBLAS. */
#include "core/internal.h"

#if defined(BNN_HAVE_OPENMP)
#include <omp.h>
#endif

static int bnn_threads = 0;

void bnn_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > BNN_MAX_THREADS) n = BNN_MAX_THREADS;
    bnn_threads = n;
#if defined(BNN_HAVE_OPENMP)
    omp_set_num_threads(n);
#endif
    /* OpenBLAS itself stays single-threaded: bnn_gemm shares the work out (see gemm.c). */
}

int bnn_get_threads(void) {
    if (bnn_threads > 0) return bnn_threads;
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
