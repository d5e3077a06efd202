/* Thread count for OpenMP loops and OpenBLAS. */
#include "core/internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/auxv.h>
#include <sys/prctl.h>
#endif

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
/* OpenBLAS's name for the kernels it chose for this CPU (weak, as above). */
char *openblas_get_corename(void);
#pragma weak openblas_get_corename

const char *bnn_blas_core(void) {
    return openblas_get_corename ? openblas_get_corename() : NULL;
}

const char *bnn_blas_better_core(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const char *core = bnn_blas_core();
    /* OpenBLAS's pre-AVX2 Intel families: what it falls back to for a CPU it does not know (a
     * virtual machine's masked "Intel(R) Xeon(R) Processor" gets Prescott, SSE3) */
    static const char *const old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem",
                                      "Sandybridge", "Katmai", "Coppermine", "Northwood",
                                      "Banias", "Atom"};
    bool generic = false;
    for (size_t i = 0; core && i < sizeof old / sizeof old[0]; i++)
        generic = generic || !strcmp(core, old[i]);
    if (!generic) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

/* Whether the program can start itself again: not under valgrind (its preload library; the new
 * image would run outside it, since valgrind does not follow exec by default, and valgrind does
 * not emulate AVX-512), nor when started through the dynamic loader (`ld-linux-x86-64.so.2 ./bnn
 * ...`, for a noexec mount or --library-path), where /proc/self/exe is the loader, which would
 * take the subcommand for the program to run (the loader's own base address, AT_BASE, is then
 * 0); only on Linux. */
static bool can_restart(void) {
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return false;
#if defined(__linux__)
    return getauxval(AT_BASE) != 0;
#else
    return false;
#endif
}

/* libgomp's waiting threads spin GOMP_SPINCOUNT times (300,000 by default: milliseconds, each
 * spin a pause instruction) at a barrier before they sleep. Two busy processes on the same cores
 * (two bnn runs at once, a sweep, a parallel make or ctest) then fight for them: two 1-epoch
 * Fashion-MNIST trainings side by side took 41.6 s on 2 cores instead of 1.9 s (2026-12-07), two
 * `eval --samples 64` 100 s instead of 5.6 s. A thousand spins (tens of microseconds) keep a lone
 * run's speed (a training epoch 1.06-1.11 s against 1.07-1.10 s; the eval 3.04 against 3.03 s)
 * and all but end the fight. Only for GCC's libgomp, and only where the user set neither. */
static bool want_short_spin(void) {
#if defined(BNN_HAVE_OPENMP) && defined(__GNUC__) && !defined(__clang__)
    return !getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY");
#else
    return false;
#endif
}

/* OpenBLAS reads OPENBLAS_CORETYPE, and libgomp GOMP_SPINCOUNT, in their constructors, before
 * main, and neither has a call to change it afterwards: the only way for a program to set them is
 * to start again with the variables set. /proc/self/exe rather than argv[0], which could name
 * another program on the PATH. BNN_BLAS_FALLBACK tells the new image (and `bnn version`) which
 * kernels OpenBLAS had chosen. The new environment is built on the stack and passed to execve,
 * so that nothing is allocated: a failed allocation here (setenv's) would have left the program
 * going on with other kernels and other bits than a run that had the memory.
 *
 * BNN_RESTARTED marks the new image, which takes it out of its environment again: it starts no
 * third one (a program that unsets the variables before calling would otherwise start itself
 * forever), and it gets back its process name, which the kernel takes from the path executed
 * ("exe"), so that ps, pgrep and killall still find "bnn". */
#define RESTARTED "BNN_RESTARTED="
static int restart_with(char *const argv[], bool blas, bool spin) {
#if defined(__linux__)
    const char *mark = getenv("BNN_RESTARTED");
    if (mark) {
        char name[16];
        snprintf(name, sizeof name, "%s", mark);
        prctl(PR_SET_NAME, name, 0, 0, 0);
        unsetenv("BNN_RESTARTED"); /* in place: no allocation */
        return 0;
    }
#endif
    if (!argv || !argv[0] || !can_restart()) return 0;
    const char *better = blas && !getenv("OPENBLAS_CORETYPE") ? bnn_blas_better_core() : NULL;
    const char *core = bnn_blas_core();
    const bool set_core = better && core, set_spin = spin && want_short_spin();
    if (!set_core && !set_spin) return 0;
    extern char **environ;
    enum { MAXENV = 4096 };
    char *env[MAXENV + 5], ct[64], fb[64], sc[] = "GOMP_SPINCOUNT=1000";
    char rs[sizeof RESTARTED + 16] = RESTARTED; /* the process name: 15 bytes at most */
    int n = 0;
    for (char **e = environ; e && *e; e++) {
        if (n == MAXENV) return 0; /* an environment this large goes on as it is */
        /* (the kernels OpenBLAS chose are said below, not by an earlier value) */
        if (!set_core || strncmp(*e, "BNN_BLAS_FALLBACK=", 18)) env[n++] = *e;
    }
    if (set_core) {
        snprintf(ct, sizeof ct, "OPENBLAS_CORETYPE=%s", better);
        snprintf(fb, sizeof fb, "BNN_BLAS_FALLBACK=%s", core);
        env[n++] = ct, env[n++] = fb;
    }
    if (set_spin) env[n++] = sc;
#if defined(__linux__)
    if (prctl(PR_GET_NAME, rs + sizeof RESTARTED - 1, 0, 0, 0) != 0 || !rs[sizeof RESTARTED - 1])
        snprintf(rs + sizeof RESTARTED - 1, 16, "bnn");
    env[n++] = rs;
#endif
    env[n] = NULL;
    fflush(NULL);
#if defined(__linux__)
    execve("/proc/self/exe", argv, env);
#endif
    return -1;
}

int bnn_blas_use_better_core(char *const argv[]) { return restart_with(argv, true, false); }

int bnn_restart_tuned(char *const argv[]) { return restart_with(argv, true, true); }

const char *bnn_blas_fallback_core(void) {
    const char *was = getenv("BNN_BLAS_FALLBACK"), *set = getenv("OPENBLAS_CORETYPE");
    const char *core = bnn_blas_core();
    /* only while the kernels in use are the ones bnn set */
    if (!was || !*was || !set || !core || strcasecmp(set, core) != 0) return NULL;
    return was;
}

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
