/* Core: error table, whole-number parsing, output checks, arena, Philox generator, GEMM seam (OpenBLAS against the C reference). */
#include "check.h"
#include "core/internal.h"

#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_errors(void) {
    int codes[] = {BNN_ENOMEM, BNN_EIO, BNN_EFORMAT, BNN_EINVAL, BNN_ESHAPE, BNN_ENOTFOUND,
                   BNN_EDIVERGED, BNN_EUNSUPPORTED};
    int n = (int)(sizeof codes / sizeof codes[0]);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) CHECK(strcmp(bnn_strerror(codes[i]), bnn_strerror(codes[j])));
    CHECK(!strcmp(bnn_strerror(-999), "unknown error"));
    int rc = bnn__error(BNN_EFORMAT, "file %s: field %s", "a.bin", "shape");
    CHECK_EQ_INT(rc, BNN_EFORMAT);
    CHECK(!strcmp(bnn_last_error(), "file a.bin: field shape"));
    bnn__error_clear();
    CHECK(bnn_last_error()[0] == '\0');
    /* A message longer than the buffer keeps both ends, the middle left out: the reason at the
     * end survives a long path (which once filled the message, with no reason left). Cuts fall
     * between UTF-8 characters (é is 2 bytes: an odd cut would leave half of one). */
    for (int odd = 0; odd < 2; odd++) {
        static char path[3001];
        int k = 0;
        if (odd) path[k++] = 'x';
        while (k + 2 <= 3000) path[k++] = (char)0xc3, path[k++] = (char)0xa9;
        path[k] = '\0';
        bnn__error(BNN_EIO, "%s: cannot open: %s", path, "No such file or directory");
        const char *e = bnn_last_error();
        const size_t len = strlen(e), tail = strlen(": cannot open: No such file or directory");
        CHECK(len > 900 && len < 1024 && strstr(e, " ... ") != NULL);
        CHECK(len >= tail && !strcmp(e + len - tail, ": cannot open: No such file or directory"));
        CHECK(!strncmp(e, path, 100));
        bool utf8 = true; /* every 0xc3 is followed by its 0xa9, and no 0xa9 stands alone */
        for (size_t i = 0; i < len; i++) {
            const unsigned char c = (unsigned char)e[i];
            if (c == 0xc3) utf8 = utf8 && (unsigned char)e[i + 1] == 0xa9, i++;
            else utf8 = utf8 && c != 0xa9;
        }
        CHECK(utf8);
    }
    /* Bytes that are continuations only (a damaged file's) are cut anywhere: the message keeps
     * its length (the cuts once walked back over all of them, leaving " ... " and the end). */
    static char junk[3001];
    memset(junk, 0x80, 3000);
    bnn__error(BNN_EFORMAT, "%s: bad", junk);
    CHECK(strlen(bnn_last_error()) > 1000);
}

/* The CSV reader's fast decimal path gives strtod's very bits whenever it takes a number, and
 * takes the usual short forms. Random strings of the decimal grammar (and near misses). */
static void test_parse_decimal(void) {
    bnn_rng r = bnn_rng_make(11, 0);
    int64_t taken = 0, wrong = 0;
    const int64_t trials = 400000;
    for (int64_t t = 0; t < trials; t++) {
        char buf[96];
        size_t n = 0;
        const uint64_t pick = bnn_rng_below(&r, 1000000);
        const int sign = (int)(pick % 3), ni = (int)(pick / 3 % 13), nf = (int)(pick / 39 % 13);
        const int form = (int)(pick / 507 % 7);
        if (sign) buf[n++] = sign == 1 ? '-' : '+';
        for (int i = 0; i < ni; i++) buf[n++] = (char)('0' + bnn_rng_below(&r, i == 0 ? 3 : 10));
        if (form != 0) buf[n++] = '.';
        for (int i = 0; i < nf; i++) buf[n++] = (char)('0' + bnn_rng_below(&r, 10));
        if (form >= 3) {
            buf[n++] = form == 6 ? 'E' : 'e';
            if (form >= 4) buf[n++] = form == 4 ? '-' : '+';
            const int ne = 1 + (int)bnn_rng_below(&r, 3);
            for (int i = 0; i < ne; i++) buf[n++] = (char)('0' + bnn_rng_below(&r, 10));
        }
        if (bnn_rng_below(&r, 50) == 0) /* a near miss: one character replaced */
            buf[bnn_rng_below(&r, n + 1)] = " x.e-"[bnn_rng_below(&r, 5)];
        buf[n] = '\0';
        double fast;
        if (!bnn__parse_decimal(buf, n, &fast)) continue;
        taken++;
        char *end;
        const double slow = strtod(buf, &end);
        if (end != buf + n || memcmp(&fast, &slow, sizeof fast)) {
            if (wrong++ < 5) fprintf(stderr, "'%s': fast %.17g, strtod %.17g\n", buf, fast, slow);
        }
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(taken > trials / 4); /* the test exercises the fast path, not only the fallback */
    const char *common[] = {"0.123457", "-12.5", "3e-05", "1E+10", "0", "-0", "784", ".5"};
    for (int i = 0; i < 8; i++) {
        double x;
        CHECK(bnn__parse_decimal(common[i], strlen(common[i]), &x) && x == strtod(common[i], NULL));
    }
    /* In every rounding mode: the sign goes in before the one rounding (negating after it gave
     * -0.099999999999999992 for -0.1 under FE_DOWNWARD). */
    const char *neg[] = {"-0.1", "-1.3", "-3e-5", "-123.456", "0.1", "2.7"};
    const int modes[] = {FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
    for (int mo = 0; mo < 3; mo++) {
        REQUIRE(fesetround(modes[mo]) == 0);
        for (int i = 0; i < 6; i++) {
            double f = 0.0;
            const double want = strtod(neg[i], NULL);
            CHECK(bnn__parse_decimal(neg[i], strlen(neg[i]), &f) && !memcmp(&f, &want, sizeof f));
        }
        fesetround(FE_TONEAREST);
    }
    double x = 1.0;
    CHECK(bnn__parse_decimal("-0", 2, &x) && signbit(x));
    const char *others[] = {"", "-", ".", "1e", "1e+", "0x10", " 1", "1 ", "inf", "nan", "1e23",
                            "12345678901234567890", "9007199254740993", "1,5"};
    for (int i = 0; i < 14; i++) CHECK(!bnn__parse_decimal(others[i], strlen(others[i]), &x));
}

/* One grammar for whole numbers: an optional '-' and digits, nothing else, within int64. */
/* Real numbers: strtod's decimal forms, not C's hexadecimal (strtod reads 0x10 as 16). */
static void test_strtod(void) {
    const char *good[] = {"2.5", "-1e-3", "  7", "+0", "0.5x", "1e400"};
    const double want[] = {2.5, -1e-3, 7.0, 0.0, 0.5, HUGE_VAL};
    const size_t used[] = {3, 5, 3, 2, 3, 5};
    for (int i = 0; i < 6; i++) {
        char *end = NULL;
        CHECK(bnn_strtod(good[i], &end) == want[i]);
        CHECK(end == good[i] + used[i]);
    }
    const char *hex[] = {"0x10", "0X1p3", "-0x8", " +0xA"};
    for (int i = 0; i < 4; i++) {
        char *end = NULL;
        CHECK(bnn_strtod(hex[i], &end) == 0.0);
        CHECK(end == hex[i]); /* nothing read */
    }
}

static void test_parse_int(void) {
    const char *good[] = {"0", "7", "-12", "007", "9223372036854775807", "-9223372036854775808"};
    const int64_t want[] = {0, 7, -12, 7, INT64_MAX, INT64_MIN};
    for (int i = 0; i < 6; i++) {
        int64_t x = -1;
        CHECK_EQ_INT(bnn_parse_int(good[i], &x), 0);
        CHECK(x == want[i]);
    }
    const char *bad[] = {"", "-", " 5", "+5", "5 ", "5\n", "--5", "-+5", "1e3", "0x10", "1.0",
                         "9223372036854775808", "-9223372036854775809", "five"};
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        int64_t x = 42;
        const int rc = bnn_parse_int(bad[i], &x);
        if (rc != BNN_EINVAL) fprintf(stderr, "bnn_parse_int accepted '%s'\n", bad[i]);
        CHECK_EQ_INT(rc, BNN_EINVAL);
        CHECK(x == 42);
        CHECK(strstr(bnn_last_error(), "not a whole number") != NULL);
    }
    CHECK_EQ_INT(bnn_parse_int(NULL, &(int64_t){0}), BNN_EINVAL);
    /* Inside a longer string: the number's end is reported; nothing may come before it. */
    const char *end = NULL;
    int64_t x = 0;
    CHECK_EQ_INT(bnn__parse_int_prefix("61:21", &end, &x), 0);
    CHECK(x == 61 && end && *end == ':');
    CHECK_EQ_INT(bnn__parse_int_prefix(" 61:21", &end, &x), BNN_EINVAL);
    CHECK_EQ_INT(bnn__parse_int_prefix("+61", &end, &x), BNN_EINVAL);
    CHECK_EQ_INT(bnn__parse_int_prefix(":21", &end, &x), BNN_EINVAL);
}

/* bnn_check_output says beforehand what bnn_write_file will do with a path. */
static void test_check_output(void) {
    const char *dir = BNN_TEST_TMP "/check_output_dir";
    const char *missing = BNN_TEST_TMP "/check_output_no_such_dir/f.bin";
    const char *file = BNN_TEST_TMP "/check_output_file.bin";
    const char *link = BNN_TEST_TMP "/check_output_link.bin";
    mkdir(dir, 0755);
    remove(file), remove(link);
    CHECK_EQ_INT(bnn_check_output(""), BNN_EINVAL);
    /* the writer's own classification, for callers that refuse some kinds (train's checkpoint) */
    CHECK_EQ_INT(bnn_output_kind(""), BNN_EINVAL);
    CHECK_EQ_INT(bnn_output_kind("-"), BNN_OUTPUT_STDOUT);
    {
        const char *fifo = "/tmp/bnn_test_output_kind.fifo"; /* not stdout, whatever it is */
        remove(fifo);
        REQUIRE(mkfifo(fifo, 0600) == 0);
        CHECK_EQ_INT(bnn_output_kind(fifo), BNN_OUTPUT_DEVICE);
        remove(fifo);
    }
    CHECK_EQ_INT(bnn_output_kind("/tmp/bnn_no_such_output.st"), BNN_OUTPUT_FILE);
    CHECK_EQ_INT(bnn_write_file("", "x", 1), BNN_EINVAL);
    CHECK_EQ_INT(bnn_check_output(dir), BNN_EIO);
    CHECK(strstr(bnn_last_error(), "is a directory") != NULL);
    CHECK_EQ_INT(bnn_write_file(dir, "x", 1), BNN_EIO);
    CHECK_EQ_INT(bnn_check_output(missing), BNN_EIO);
    CHECK(strstr(bnn_last_error(), "does not exist") != NULL);
    CHECK_EQ_INT(bnn_write_file(missing, "x", 1), BNN_EIO);
    CHECK_EQ_INT(bnn_check_output("/dev/null"), 0);
    CHECK_EQ_INT(bnn_write_file("/dev/null", "x", 1), 0);
    CHECK_EQ_INT(bnn_check_output(file), 0);
    CHECK_EQ_INT(bnn_write_file(file, "x", 1), 0);
    /* A link to a file is written through (the file it names is replaced, the link stays). */
    REQUIRE(symlink(file, link) == 0);
    CHECK_EQ_INT(bnn_check_output(link), 0);
    CHECK_EQ_INT(bnn_write_file(link, "yz", 2), 0);
    struct stat lb, fb;
    CHECK(lstat(link, &lb) == 0 && S_ISLNK(lb.st_mode));
    CHECK(stat(file, &fb) == 0 && fb.st_size == 2);
    remove(link), remove(file), rmdir(dir);
}

/* A write that fails part-way (here at the file size limit, as on a full disk) is BNN_EIO and
 * leaves neither the file nor its temporary file. */
static void test_write_failure_leaves_nothing(void) {
    const char *path = BNN_TEST_TMP "/fsize_limit.bin";
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    remove(path);
    static char big[1 << 16];
    struct rlimit old, lim;
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    const int rc = bnn_write_file(path, big, sizeof big);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, prev);
    CHECK_EQ_INT(rc, BNN_EIO);
    CHECK(access(path, F_OK) != 0);
    CHECK(access(tmp, F_OK) != 0);
}

/* A signal while held files are renamed (a report and its plot) waits until both are in place,
 * then ends the process as it would have; one before the commit removes both temporary files and
 * leaves the old pair. Each case runs in a child, which the signal kills. */
static void on_term(int sig) {
    if (bnn_output_abandon_sig(sig)) return;
    signal(sig, SIG_DFL);
    raise(sig);
}
static void term_now(void) { raise(SIGTERM); }

static bool holds(const char *path, const char *text) {
    char buf[16] = {0};
    FILE *f = fopen(path, "rb");
    const bool ok = f && fread(buf, 1, sizeof buf - 1, f) == strlen(text) && !strcmp(buf, text);
    if (f) fclose(f);
    return ok;
}

static void signal_during_commit(bool during) {
    const char *a = BNN_TEST_TMP "/sig_a.json", *b = BNN_TEST_TMP "/sig_b.svg";
    REQUIRE(bnn_write_file(a, "old", 3) == 0 && bnn_write_file(b, "old", 3) == 0);
    fflush(NULL);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct sigaction sa = {.sa_handler = on_term};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        bnn_output_hold();
        if (bnn_write_file(a, "new", 3) || bnn_write_file(b, "new", 3)) _exit(3);
        if (during) bnn__commit_hook = term_now; /* after the first rename */
        else raise(SIGTERM);
        bnn_output_commit();
        _exit(4); /* the signal should have ended the child */
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    const char *want = during ? "new" : "old";
    CHECK(holds(a, want) && holds(b, want));
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", a, (long)pid);
    CHECK(access(tmp, F_OK) != 0);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", b, (long)pid);
    CHECK(access(tmp, F_OK) != 0);
    remove(a), remove(b);
}

static void test_signal_during_commit(void) {
    signal_during_commit(true);
    signal_during_commit(false);
}

/* Writes from several threads (found by a ThreadSanitizer audit): two threads saving one path
 * each use their own temporary name, so every save succeeds and the file is one of the two
 * whole (they shared PATH.tmp.PID: most renames failed); and a hold is its thread's own: another
 * thread's write lands at once, and the holder's discard leaves it (it was held, then deleted). */
struct same_path {
    const char *path;
    char fill;
    int failures;
};
static void *write_same_path(void *arg) {
    struct same_path *a = arg;
    static char buf[2][65536];
    char *b = buf[a->fill == 'b'];
    memset(b, a->fill, sizeof buf[0]);
    for (int r = 0; r < 100; r++) a->failures += bnn_write_file(a->path, b, sizeof buf[0]) != 0;
    return NULL;
}
static void *write_other(void *arg) {
    *(int *)arg = bnn_write_file(BNN_TEST_TMP "/thr_other.txt", "other", 5);
    return NULL;
}
static void test_threads_writing(void) {
    const char *path = BNN_TEST_TMP "/thr_same.bin";
    struct same_path a = {path, 'a', 0}, b = {path, 'b', 0};
    pthread_t ta, tb;
    REQUIRE(pthread_create(&ta, NULL, write_same_path, &a) == 0);
    REQUIRE(pthread_create(&tb, NULL, write_same_path, &b) == 0);
    pthread_join(ta, NULL), pthread_join(tb, NULL);
    CHECK_EQ_INT(a.failures + b.failures, 0);
    static char got[65536 + 1];
    FILE *f = fopen(path, "rb");
    const size_t n = f ? fread(got, 1, sizeof got, f) : 0;
    if (f) fclose(f);
    CHECK(n == 65536 && (got[0] == 'a' || got[0] == 'b') && got[n - 1] == got[0] &&
          memchr(got, got[0] == 'a' ? 'b' : 'a', n) == NULL);
    remove(path);

    const char *held = BNN_TEST_TMP "/thr_held.txt", *other = BNN_TEST_TMP "/thr_other.txt";
    remove(held), remove(other);
    bnn_output_hold();
    CHECK_EQ_INT(bnn_write_file(held, "held", 4), 0);
    int rc = -1;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, write_other, &rc) == 0);
    pthread_join(t, NULL);
    CHECK_EQ_INT(rc, 0);
    CHECK(access(other, F_OK) == 0); /* written at once: the hold is not its thread's */
    CHECK(access(held, F_OK) != 0);
    bnn_output_discard();
    CHECK(access(other, F_OK) == 0 && access(held, F_OK) != 0);
    remove(other);
}

/* The thread count is clamped to [1, BNN_MAX_THREADS]. */
static void test_thread_bounds(void) {
    const int saved = bnn_get_threads();
    bnn_set_threads(-3);
    CHECK_EQ_INT(bnn_get_threads(), 1);
    bnn_set_threads(BNN_MAX_THREADS + 1);
    CHECK_EQ_INT(bnn_get_threads(), BNN_MAX_THREADS);
    bnn_set_threads(saved);
}

static void test_arena(void) {
    bnn__arena a;
    REQUIRE(bnn__arena_init(&a, 1000) == 0);
    char *p = bnn__arena_push(&a, 10), *q = bnn__arena_push(&a, 100);
    CHECK(p && q && ((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0 && q >= p + 10);
    CHECK(bnn__arena_push(&a, 2000) == NULL); /* over capacity: NULL, not a crash */
    bnn__arena_reset(&a);
    CHECK(bnn__arena_push(&a, 10) == p);
    bnn__arena_free(&a);
    CHECK(bnn__bytes(-1, 4) == 0);
    CHECK(bnn__bytes(INT64_MAX, 8) == 0);
    CHECK(bnn__bytes(3, 4) == 12);
    /* An array whose size has no size_t is no memory, not bnn__bytes' 0 made one byte. */
    CHECK(bnn__alloc_array(INT64_MAX / 4, 8) == NULL);
    CHECK(bnn__alloc_array(-1, 4) == NULL);
    void *z = bnn__alloc_array(0, 8), *t = bnn__alloc_array(3, 8);
    CHECK(z && t && ((uintptr_t)t % 64) == 0);
    bnn__free(z), bnn__free(t);
}

/* Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors): counter
 * (c0..c3), key (k0, k1), output. Our (counter, stream, seed) map to (c0|c1, c2|c3, k0|k1). */
static void test_philox_kat(void) {
    struct {
        uint32_t c[4], k[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
         {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
         {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t o[4];
        uint64_t counter = (uint64_t)kat[i].c[1] << 32 | kat[i].c[0];
        uint64_t stream = (uint64_t)kat[i].c[3] << 32 | kat[i].c[2];
        uint64_t seed = (uint64_t)kat[i].k[1] << 32 | kat[i].k[0];
        bnn_philox(o, seed, stream, counter);
        for (int j = 0; j < 4; j++) CHECK_EQ_INT(o[j], kat[i].out[j]);
    }
}

static void test_rng_stats_and_threads(void) {
    const int64_t n = 1000001; /* odd: the last pair is half used */
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    REQUIRE(a && b);
    bnn_set_threads(1);
    bnn_rng r = bnn_rng_make(42, 7);
    bnn_rng_normal(&r, a, n);
    CHECK_EQ_INT(r.counter, (n + 3) / 4);
    bnn_set_threads(2);
    r = bnn_rng_make(42, 7);
    bnn_rng_normal(&r, b, n);
    CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0);
    double s = 0, s2 = 0, s4 = 0;
    for (int64_t i = 0; i < n; i++) s += a[i], s2 += (double)a[i] * a[i], s4 += pow(a[i], 4);
    double mean = s / n, var = s2 / n - mean * mean;
    CHECK_NEAR(mean, 0.0, 5.0 / sqrt((double)n));
    CHECK_NEAR(var, 1.0, 0.01);
    CHECK_NEAR(s4 / n, 3.0, 0.05); /* Gaussian kurtosis */
    r = bnn_rng_make(42, 7);
    bnn_rng_uniform(&r, a, n);
    CHECK_EQ_INT(r.counter, (n + 3) / 4);
    double lo = 1, hi = 0;
    s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += a[i];
        if (a[i] < lo) lo = a[i];
        if (a[i] > hi) hi = a[i];
    }
    CHECK(lo > 0.0 && hi < 1.0);
    CHECK_NEAR(s / n, 0.5, 0.002);
    /* Different streams and seeds give different numbers. */
    bnn_rng r1 = bnn_rng_make(1, 0), r2 = bnn_rng_make(1, 1), r3 = bnn_rng_make(2, 0);
    float x1, x2, x3;
    bnn_rng_uniform(&r1, &x1, 1), bnn_rng_uniform(&r2, &x2, 1), bnn_rng_uniform(&r3, &x3, 1);
    CHECK(x1 != x2 && x1 != x3);
    /* bnn_rng_below stays in range and hits every value. */
    int hits[7] = {0};
    bnn_rng rb = bnn_rng_make(3, 3);
    for (int i = 0; i < 7000; i++) {
        uint64_t v = bnn_rng_below(&rb, 7);
        REQUIRE(v < 7);
        hits[v]++;
    }
    for (int i = 0; i < 7; i++) CHECK(hits[i] > 850 && hits[i] < 1150);
    free(a), free(b);
}

/* op(A)·op(B) in double for one entry, used as the tolerance scale. */
static void test_gemm(void) {
    if (!bnn_have_blas()) {
        fprintf(stderr, "note: built without OpenBLAS; GEMM comparison skipped\n");
    }
    /* 128 × 512 × 784 goes to the BLAS path in 4 blocks split along N; 300 × 17 × 129 in 2 along
     * M, and 40 × 1000 × 20 in 7 along N with uneven edges (gemm_blocks, src/core/gemm.c), so
     * each block's offsets into A, B and C are checked for every transpose. */
    const int64_t sizes[][3] = {{1, 1, 1},      {3, 5, 7},     {17, 33, 65}, {128, 512, 784},
                                {129, 255, 31}, {64, 10, 256}, {2, 300, 1},  {1, 1, 1000},
                                {67, 1, 13},    {300, 17, 129}, {40, 1000, 20}};
    bnn_rng rng = bnn_rng_make(9, 0);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        float *A = malloc((size_t)(M * K) * 4), *B = malloc((size_t)(K * N) * 4);
        float *C1 = malloc((size_t)(M * N) * 4), *C2 = malloc((size_t)(M * N) * 4);
        float *C0 = malloc((size_t)(M * N) * 4);
        REQUIRE(A && B && C1 && C2 && C0);
        bnn_rng_normal(&rng, A, M * K);
        bnn_rng_normal(&rng, B, K * N);
        bnn_rng_normal(&rng, C0, M * N);
        for (int t = 0; t < 4; t++) {
            bool ta = t & 1, tb = t & 2;
            float betas[] = {0.0f, 1.0f, 0.5f};
            for (int bi = 0; bi < 3; bi++) {
                memcpy(C1, C0, (size_t)(M * N) * 4);
                memcpy(C2, C0, (size_t)(M * N) * 4);
                bnn_gemm_with(BNN_GEMM_REF, C1, A, B, M, N, K, ta, tb, 0.75f, betas[bi]);
                bnn_gemm_with(BNN_GEMM_BLAS, C2, A, B, M, N, K, ta, tb, 0.75f, betas[bi]);
                double worst = 0;
                for (int64_t i = 0; i < M * N; i++) {
                    double d = fabs((double)C1[i] - C2[i]);
                    if (d > worst) worst = d;
                }
                /* Float rounding of a K-term sum of N(0,1)·N(0,1) products: ~ √K · 2^-24 · few. */
                CHECK_NEAR(worst, 0.0, 1e-6 * (double)K + 1e-5);
            }
            /* The reference itself against a direct double sum, one entry per shape. */
            bnn_gemm_with(BNN_GEMM_REF, C1, A, B, M, N, K, ta, tb, 1.0f, 0.0f);
            int64_t i = M - 1, j = N - 1;
            double ref = 0;
            for (int64_t k = 0; k < K; k++)
                ref += (double)(ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
            CHECK_NEAR(C1[i * N + j], ref, 1e-5 * (1 + fabs(ref)));
        }
        free(A), free(B), free(C1), free(C2), free(C0);
    }
    /* beta = 0 must not read C: NaN in C must not leak into the result. */
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[4] = {NAN, NAN, NAN, NAN};
    for (int be = 1; be <= 2; be++) {
        C[0] = C[1] = C[2] = C[3] = NAN;
        bnn_gemm_with((bnn_gemm_backend)be, C, A, B, 2, 2, 3, false, false, 1.0f, 0.0f);
        CHECK_NEAR(C[0], 4, 0);
        CHECK_NEAR(C[1], 5, 0);
        CHECK_NEAR(C[2], 10, 0);
        CHECK_NEAR(C[3], 11, 0);
        C[0] = C[1] = C[2] = C[3] = NAN;
        bnn_gemm_with((bnn_gemm_backend)be, C, A, B, 2, 2, 0, false, false, 1.0f, 0.0f);
        CHECK(C[0] == 0 && C[3] == 0);
    }
}

/* bnn_gemm gives the same bits for any thread count (the shapes of the Fashion-MNIST MLP and
 * others that made OpenBLAS's own threading differ). */
static void test_gemm_thread_invariance(void) {
    const int64_t sh[][5] = {{128, 512, 784, 0, 1}, {128, 300, 600, 0, 1}, {512, 784, 128, 1, 0},
                             {128, 256, 512, 0, 0}, {1000, 37, 301, 1, 1}, {96, 512, 784, 0, 1}};
    bnn_rng rng = bnn_rng_make(4, 4);
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int64_t M = sh[s][0], N = sh[s][1], K = sh[s][2];
        float *A = malloc((size_t)(M * K) * 4), *B = malloc((size_t)(K * N) * 4);
        float *C1 = calloc((size_t)(M * N), 4), *C2 = calloc((size_t)(M * N), 4);
        REQUIRE(A && B && C1 && C2);
        bnn_rng_normal(&rng, A, M * K);
        bnn_rng_normal(&rng, B, K * N);
        bnn_set_threads(1);
        bnn_gemm(C1, A, B, M, N, K, sh[s][3], sh[s][4], 1.0f, 0.0f);
        bnn_set_threads(2);
        bnn_gemm(C2, A, B, M, N, K, sh[s][3], sh[s][4], 1.0f, 0.0f);
        CHECK(memcmp(C1, C2, (size_t)(M * N) * 4) == 0);
        free(A), free(B), free(C1), free(C2);
    }
}

/* bnn_syrk and bnn__syrk_serial: the BLAS tiles and the one-call form against the reference
 * (upper triangle), the reference against the GEMM reference (the same double sums, so equal to
 * the bit), the strictly lower triangle left alone, beta = 0 not reading C, and the same bits for
 * 1 and 2 threads. */
static void test_syrk(void) {
    const int64_t sizes[][2] = {{1, 1},    {5, 3},     {17, 65},  {64, 10},  {128, 40},
                                {256, 256}, {257, 1024}, {300, 7}, {520, 33}, {33, 0}};
    bnn_rng rng = bnn_rng_make(10, 0);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t N = sizes[s][0], K = sizes[s][1];
        float *A = malloc((size_t)(K * N + 1) * 4), *C0 = malloc((size_t)(N * N) * 4);
        float *C1 = malloc((size_t)(N * N) * 4), *C2 = malloc((size_t)(N * N) * 4);
        float *G = malloc((size_t)(N * N) * 4), *C3 = malloc((size_t)(N * N) * 4);
        REQUIRE(A && C0 && C1 && C2 && G && C3);
        bnn_rng_normal(&rng, A, K * N);
        bnn_rng_normal(&rng, C0, N * N);
        for (int64_t i = 0; i < N; i++) /* a sentinel below the diagonal */
            for (int64_t j = 0; j < i; j++)
                C0[i * N + j] = 12345.0f;
        const float betas[] = {0.0f, 1.0f, 0.5f};
        for (int bi = 0; bi < 3; bi++) {
            memcpy(C1, C0, (size_t)(N * N) * 4);
            memcpy(C2, C0, (size_t)(N * N) * 4);
            memcpy(G, C0, (size_t)(N * N) * 4);
            memcpy(C3, C0, (size_t)(N * N) * 4);
            bnn_syrk_with(BNN_GEMM_REF, C1, A, N, K, 0.75f, betas[bi]);
            bnn_syrk_with(BNN_GEMM_BLAS, C2, A, N, K, 0.75f, betas[bi]);
            bnn__syrk_serial(C3, A, N, K, 0.75f, betas[bi]); /* the untiled call */
            bnn_gemm_with(BNN_GEMM_REF, G, A, A, N, N, K, true, false, 0.75f, betas[bi]);
            double worst = 0;
            int64_t lower_changed = 0, ref_differs = 0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t j = 0; j < N; j++) {
                    const int64_t e = i * N + j;
                    if (j < i) {
                        lower_changed += C1[e] != 12345.0f || C2[e] != 12345.0f ||
                                         C3[e] != 12345.0f;
                        continue;
                    }
                    worst = fmax(worst, fabs((double)C1[e] - C2[e]));
                    worst = fmax(worst, fabs((double)C1[e] - C3[e]));
                    ref_differs += C1[e] != G[e];
                }
            CHECK_EQ_INT(lower_changed, 0);
            CHECK_EQ_INT(ref_differs, 0);
            CHECK_NEAR(worst, 0.0, 1e-6 * (double)K + 1e-5);
        }
        /* beta = 0 does not read C. */
        for (int be = 1; be <= 2; be++) {
            for (int64_t i = 0; i < N * N; i++)
                C1[i] = NAN;
            bnn_syrk_with((bnn_gemm_backend)be, C1, A, N, K, 1.0f, 0.0f);
            int64_t bad = 0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t j = i; j < N; j++)
                    bad += !isfinite(C1[i * N + j]);
            CHECK_EQ_INT(bad, 0);
        }
        if (N * N * K >= 1000000) { /* shapes that tile: the same bits for 1 and 2 threads */
            bnn_set_threads(1);
            bnn_syrk(C1, A, N, K, 1.0f, 0.0f);
            bnn_set_threads(2);
            bnn_syrk(C2, A, N, K, 1.0f, 0.0f);
            int64_t diff = 0;
            for (int64_t i = 0; i < N; i++)
                diff += memcmp(C1 + i * N + i, C2 + i * N + i, (size_t)(N - i) * 4) != 0;
            CHECK_EQ_INT(diff, 0);
        }
        free(A), free(C0), free(C1), free(C2), free(G), free(C3);
    }
}

/* bnn__dsyrk and bnn__dsyrk_serial (the full GGN's double sums): BLAS tiles, the one-call form
 * and the plain loop (BNN_GEMM_REF) against sums written out in long double, on the upper
 * triangle, with the strictly lower triangle left alone; beta = 0 not reading C; K = 0 scaling C
 * by beta and N = 0 touching nothing; the same bits for 1 and 2 threads where the shape tiles. */
static void test_dsyrk(void) {
    const int64_t sizes[][2] = {{1, 1}, {5, 3}, {17, 65}, {130, 40}, {300, 200}, {33, 0}, {0, 4}};
    bnn_rng rng = bnn_rng_make(12, 0);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t N = sizes[s][0], K = sizes[s][1], nc = N * N + 1;
        double *A = malloc((size_t)(K * N + 1) * 8), *C0 = malloc((size_t)nc * 8);
        double *C[3] = {malloc((size_t)nc * 8), malloc((size_t)nc * 8), malloc((size_t)nc * 8)};
        float *r = malloc((size_t)(K * N + nc) * 4);
        REQUIRE(A && C0 && C[0] && C[1] && C[2] && r);
        bnn_rng_normal(&rng, r, K * N + nc);
        for (int64_t i = 0; i < K * N; i++)
            A[i] = r[i];
        for (int64_t i = 0; i < N; i++) /* a sentinel below the diagonal */
            for (int64_t j = 0; j < N; j++)
                C0[i * N + j] = j < i ? 12345.0 : r[K * N + i * N + j];
        const double betas[] = {0.0, 1.0, 0.5};
        for (int bi = 0; bi < 3; bi++) {
            const double beta = betas[bi];
            for (int v = 0; v < 3; v++) {
                memcpy(C[v], C0, (size_t)(N * N) * 8);
                if (beta == 0.0) /* beta = 0 must not read C */
                    for (int64_t i = 0; i < N; i++)
                        for (int64_t j = i; j < N; j++)
                            C[v][i * N + j] = NAN;
            }
            bnn__dsyrk(C[0], A, N, K, 0.75, beta);
            bnn__dsyrk_serial(C[1], A, N, K, 0.75, beta);
            bnn_gemm_set_backend(BNN_GEMM_REF);
            bnn__dsyrk(C[2], A, N, K, 0.75, beta);
            bnn_gemm_set_backend(BNN_GEMM_AUTO);
            double worst = 0;
            int64_t lower_changed = 0;
            for (int64_t i = 0; i < N; i++)
                for (int64_t j = 0; j < N; j++) {
                    const int64_t e = i * N + j;
                    if (j < i) {
                        for (int v = 0; v < 3; v++)
                            lower_changed += C[v][e] != 12345.0;
                        continue;
                    }
                    long double ref = 0;
                    for (int64_t k = 0; k < K; k++)
                        ref += (long double)A[k * N + i] * A[k * N + j];
                    ref = 0.75L * ref + (beta == 0.0 ? 0.0L : (long double)beta * C0[e]);
                    for (int v = 0; v < 3; v++)
                        worst = fmax(worst, isnan(C[v][e]) ? INFINITY
                                                           : fabs((double)(C[v][e] - ref)));
                }
            CHECK_EQ_INT(lower_changed, 0);
            CHECK_NEAR(worst, 0.0, 1e-13 * (double)(K + 1));
        }
        if (N * N * K >= 1000000) { /* shapes that tile: the same bits for 1 and 2 threads */
            bnn_set_threads(1);
            bnn__dsyrk(C[0], A, N, K, 1.0, 0.0);
            bnn_set_threads(2);
            bnn__dsyrk(C[1], A, N, K, 1.0, 0.0);
            int64_t diff = 0;
            for (int64_t i = 0; i < N; i++)
                diff += memcmp(C[0] + i * N + i, C[1] + i * N + i, (size_t)(N - i) * 8) != 0;
            CHECK_EQ_INT(diff, 0);
        }
        free(A), free(C0), free(C[0]), free(C[1]), free(C[2]), free(r);
    }
}

/* Files and directories put_file made, removed in reverse order by remove_put (a fresh directory
 * each run: a second run found the first one's files). */
static char put_made[64][1024];
static int put_n;

static void put_file(const char *dir, const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *q = path + strlen(dir) + 1; (q = strchr(q, '/')); q++) { /* its directories */
        *q = 0;
        if (mkdir(path, 0755) == 0 && put_n < 64) snprintf(put_made[put_n++], 1024, "%s", path);
        *q = '/';
    }
    FILE *f = fopen(path, "r");
    const bool existed = f != NULL;
    if (f) fclose(f);
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
    if (!existed && put_n < 64) snprintf(put_made[put_n++], 1024, "%s", path);
}

static void remove_put(void) {
    while (put_n > 0) remove(put_made[--put_n]);
}

/* bnn__cgroup_limit on a made-up /proc/self/cgroup, mountinfo and hierarchy (the mount points
 * under a scratch directory, the prefix): v1's memory controller (in a list of controllers) and
 * v2's unified line, the smallest limit over a cgroup and its ancestors, "max" and v1's
 * "unlimited" value as no limit, v2 at the root and under unified/ (a hybrid system), a v1
 * hierarchy mounted elsewhere with another controller, a container's mount whose root is its own
 * cgroup, and mountinfo's escapes. */
static void test_cgroup_limit(void) {
    char root[512], proc[600], info[600];
    snprintf(root, sizeof root, "%s/cgroupXXXXXX", BNN_TEST_TMP);
    REQUIRE(mkdtemp(root) != NULL);
    snprintf(proc, sizeof proc, "%s/proc_cgroup", root);
    snprintf(info, sizeof info, "%s/mountinfo", root);
    CHECK(bnn__cgroup_limit(proc, info, root) == 0.0); /* no such files */
    put_file(root, "proc_cgroup", "1:cpu:/z\n4:cpu,memory:/a/b\n0::/x/y\n");
    put_file(root, "mountinfo",
             "25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
             "31 25 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
             "32 31 0:29 / /sys/fs/cgroup/cpu rw shared:9 - cgroup cgroup rw,cpu\n"
             "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
             "36 31 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
    CHECK(bnn__cgroup_limit(proc, info, root) == 0.0); /* no limit files */
    put_file(root, "sys/fs/cgroup/memory/a/b/memory.limit_in_bytes", "9223372036854771712\n");
    put_file(root, "sys/fs/cgroup/cpu/z/memory.max", "1000\n"); /* the cpu line's: not memory */
    CHECK(bnn__cgroup_limit(proc, info, root) == 0.0);
    put_file(root, "sys/fs/cgroup/memory/a/memory.limit_in_bytes", "3000000\n");
    CHECK(bnn__cgroup_limit(proc, info, root) == 3000000.0); /* the parent binds */
    put_file(root, "sys/fs/cgroup/unified/x/y/memory.max", "max\n");
    put_file(root, "sys/fs/cgroup/unified/x/memory.max", "2000000\n");
    CHECK(bnn__cgroup_limit(proc, info, root) == 2000000.0);
    put_file(root, "sys/fs/cgroup/unified/memory.max", "1500000\n"); /* v2's root */
    CHECK(bnn__cgroup_limit(proc, info, root) == 1500000.0);
    put_file(root, "sys/fs/cgroup/unified/memory.max", "15x\n"); /* not a number: ignored */
    CHECK(bnn__cgroup_limit(proc, info, root) == 2000000.0);
    /* v1's memory comounted with cpu somewhere else (its path with an escaped space), and v2 at
     * the root of /sys/fs/cgroup shown as a container sees it: its mount's root is its own
     * cgroup /x, so /x/y is y under the mount point. */
    put_file(root, "mountinfo",
             "40 25 0:40 / /cg/cpu\\040mem rw - cgroup cgroup rw,cpu,memory\n"
             "41 25 0:41 /x /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
    put_file(root, "cg/cpu mem/a/b/memory.limit_in_bytes", "4000000\n");
    CHECK(bnn__cgroup_limit(proc, info, root) == 4000000.0);
    put_file(root, "sys/fs/cgroup/y/memory.max", "3500000\n");
    CHECK(bnn__cgroup_limit(proc, info, root) == 3500000.0);
    put_file(root, "sys/fs/cgroup/memory.max", "max\n"); /* the mount's root: /x itself */
    CHECK(bnn__cgroup_limit(proc, info, root) == 3500000.0);
    /* A mountinfo line longer than the reader's 4096 bytes is skipped whole: its tail, which
     * here reads as a cgroup2 mount, is not a line of its own. */
    {
        static char longinfo[8192];
        const char *tail = "99 25 0:99 / /fake rw - cgroup2 cgroup2 rw\n";
        int at = snprintf(longinfo, sizeof longinfo, "50 25 0:50 / /pad");
        while (at < 4095) longinfo[at++] = 'x';
        snprintf(longinfo + at, sizeof longinfo - (size_t)at, "%s", tail);
        put_file(root, "mountinfo", longinfo);
        put_file(root, "fake/x/y/memory.max", "1000\n");
        CHECK(bnn__cgroup_limit(proc, info, root) == 0.0);
    }
    /* A cgroup outside the mount's root is not under it, nor one a namespace shows as a
     * sibling ("/../w", whose path would climb out of the mount point). */
    put_file(root, "proc_cgroup", "0::/w\n");
    CHECK(bnn__cgroup_limit(proc, info, root) == 0.0);
    put_file(root, "mountinfo", "41 25 0:41 / /sys/fs/cgroup/in rw - cgroup2 cgroup2 rw\n");
    put_file(root, "proc_cgroup", "0::/../w\n");
    put_file(root, "sys/fs/cgroup/w/memory.max", "6000000\n");
    CHECK(bnn__cgroup_limit(proc, info, root) == 0.0);
    remove_put();
    CHECK(rmdir(root) == 0);
}

/* bnn__dgemm_serial, A and B plain and transposed, C overwritten (beta 0) and accumulated (beta
 * 0.5): BLAS against the plain loop on sub-matrices (strides wider than the shapes), the elements
 * outside C's M × N block left alone, and against sums written out. */
static void test_dgemm_serial(void) {
    const int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {64, 128, 256}, {10, 130, 33}, {5, 4, 0}};
    bnn_rng rng = bnn_rng_make(11, 0);
    for (size_t s = 0; s < 8 * sizeof shapes / sizeof shapes[0]; s++) {
        const bool tb = s % 2, ta = s / 2 % 2;
        const double beta = s / 4 % 2 ? 0.5 : 0.0;
        const int64_t M = shapes[s / 8][0], N = shapes[s / 8][1], K = shapes[s / 8][2];
        const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = 2 * N + 1;
        const int64_t na = (ta ? K : M) * lda, nb = (tb ? N : K) * ldb;
        double *A = malloc((size_t)(na + 1) * 8), *B = malloc((size_t)(nb + 1) * 8);
        double *C[2] = {malloc((size_t)(M * ldc) * 8), malloc((size_t)(M * ldc) * 8)};
        float *r = malloc((size_t)(na + nb + 1) * 4);
        REQUIRE(A && B && C[0] && C[1] && r);
        bnn_rng_normal(&rng, r, na + nb);
        for (int64_t i = 0; i < na; i++)
            A[i] = r[i];
        for (int64_t i = 0; i < nb; i++)
            B[i] = r[na + i];
        for (int be = 0; be < 2; be++) {
            for (int64_t i = 0; i < M * ldc; i++)
                C[be][i] = 777.0;
            bnn_gemm_set_backend(be ? BNN_GEMM_BLAS : BNN_GEMM_REF);
            bnn__dgemm_serial(C[be], A, B, M, N, K, lda, ldb, ldc, ta, tb, beta);
        }
        bnn_gemm_set_backend(BNN_GEMM_AUTO);
        double worst = 0;
        int64_t outside = 0;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < ldc; j++) {
                if (j >= N) {
                    outside += C[0][i * ldc + j] != 777.0 || C[1][i * ldc + j] != 777.0;
                    continue;
                }
                double ref = beta * 777.0;
                for (int64_t k = 0; k < K; k++)
                    ref += (ta ? A[k * lda + i] : A[i * lda + k]) *
                           (tb ? B[j * ldb + k] : B[k * ldb + j]);
                worst = fmax(worst, fabs(C[0][i * ldc + j] - ref));
                worst = fmax(worst, fabs(C[1][i * ldc + j] - ref));
            }
        CHECK_EQ_INT(outside, 0);
        CHECK_NEAR(worst, 0.0, 1e-12 * (double)(K + 1) + 1e-13 * beta * 777.0);
        free(A), free(B), free(C[0]), free(C[1]), free(r);
    }
}


/* bnn__syev, both methods (AUTO takes dsyevr only from n = 32,767 on, which no test can afford:
 * forced here), against the definition: A Q = Q Λ, QᵀQ = I, Λ ascending, the trace kept; on a
 * random symmetric matrix and on H D H with D = diag(1, then 2, 3 and 4 twelve times each) and H
 * a Householder reflection (eigenvalues repeated, known). bnn__syevr's top 3 of the second.
 * And bnn__qr_basis: an orthonormal basis of the same span. */
static double test_d(int64_t k) { return k == 0 ? 1.0 : 2.0 + (double)((k - 1) / 12); }

static void test_lapack(void) {
    CHECK_EQ_INT(bnn__syev_method(32766), BNN__SYEV_DC);
    CHECK_EQ_INT(bnn__syev_method(32767), BNN__SYEV_MRRR);
    CHECK(bnn__syev_bytes(32767) < bnn__syev_bytes(32766)); /* MRRR: n² doubles, not 2n² */
    enum { N = 37 };
    static double A[N * N], Q[N * N], Hr[N * N], w[N];
    bnn_rng rng = bnn_rng_make(5, 0);
    float r[N * N];
    bnn_rng_normal(&rng, r, N * N);
    double vv = 0;
    for (int64_t i = 0; i < N; i++) vv += (double)r[i] * r[i];
    for (int64_t i = 0; i < N; i++) /* H = I − 2 v vᵀ / vᵀv, v the first N draws */
        for (int64_t j = 0; j < N; j++) Hr[i * N + j] = (i == j) - 2.0 * r[i] * r[j] / vv;
    for (int mat = 0; mat < 2; mat++) {
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j <= i; j++) {
                double a = (double)r[i * N + j];
                if (mat) {
                    a = 0;
                    for (int64_t k = 0; k < N; k++) a += Hr[i * N + k] * test_d(k) * Hr[k * N + j];
                }
                A[i * N + j] = A[j * N + i] = a;
            }
        for (int method = BNN__SYEV_DC; method <= BNN__SYEV_MRRR; method++) {
            memcpy(Q, A, sizeof Q);
            REQUIRE(bnn__syev(Q, N, w, method) == 0);
            double res = 0, orth = 0, tr = 0, known = 0;
            for (int64_t k = 0; k < N; k++) {
                if (k) CHECK(w[k] >= w[k - 1]);
                tr += w[k] - A[k * N + k];
                if (mat) known = fmax(known, fabs(w[k] - test_d(k)));
                for (int64_t i = 0; i < N; i++) { /* column k of Q (column-major: Q[k N + i]) */
                    double aq = 0;
                    for (int64_t j = 0; j < N; j++) aq += A[i * N + j] * Q[k * N + j];
                    res = fmax(res, fabs(aq - w[k] * Q[k * N + i]));
                }
                for (int64_t l = 0; l <= k; l++) {
                    double d = 0;
                    for (int64_t i = 0; i < N; i++) d += Q[k * N + i] * Q[l * N + i];
                    orth = fmax(orth, fabs(d - (k == l)));
                }
            }
            CHECK_NEAR(res, 0.0, 1e-12);
            CHECK_NEAR(orth, 0.0, 1e-12);
            CHECK_NEAR(tr, 0.0, 1e-11);
            CHECK_NEAR(known, 0.0, 1e-12);
        }
    }
    /* the top 3 of H D H: 4, 4, 4, with eigenvectors */
    static double Z[N * 3];
    memcpy(Q, A, sizeof Q);
    REQUIRE(bnn__syevr(Q, N, N - 2, N, w, Z) == 0);
    double top = 0;
    for (int64_t k = 0; k < 3; k++) {
        top = fmax(top, fabs(w[k] - 4.0));
        for (int64_t i = 0; i < N; i++) {
            double aq = 0;
            for (int64_t j = 0; j < N; j++) aq += A[i * N + j] * Z[k * N + j];
            top = fmax(top, fabs(aq - 4.0 * Z[k * N + i]));
        }
    }
    CHECK_NEAR(top, 0.0, 1e-12);
    CHECK(bnn__syevr(Q, N, 3, 2, w, Z) < 0); /* an empty range */
    CHECK(bnn__syev(Q, 0, w, BNN__SYEV_AUTO) < 0);
    /* QR: 37 × 5 from the first 5 columns of A (column-major) */
    enum { M = N, K = 5 };
    static double V[M * K], tau[K];
    memcpy(V, A, sizeof V);
    REQUIRE(bnn__qr_basis(V, M, K, tau) == 0);
    double orth = 0, span = 0;
    for (int64_t k = 0; k < K; k++) {
        for (int64_t l = 0; l <= k; l++) {
            double d = 0;
            for (int64_t i = 0; i < M; i++) d += V[k * M + i] * V[l * M + i];
            orth = fmax(orth, fabs(d - (k == l)));
        }
        /* column k of the input minus its projection on the basis: nothing left */
        double c[K] = {0}, left = 0;
        for (int64_t l = 0; l < K; l++)
            for (int64_t i = 0; i < M; i++) c[l] += V[l * M + i] * A[k * M + i];
        for (int64_t i = 0; i < M; i++) {
            double x = A[k * M + i];
            for (int64_t l = 0; l < K; l++) x -= c[l] * V[l * M + i];
            left = fmax(left, fabs(x));
        }
        span = fmax(span, left);
    }
    CHECK_NEAR(orth, 0.0, 1e-13);
    CHECK_NEAR(span, 0.0, 1e-12);
    CHECK(bnn__qr_basis(V, 3, K, tau) < 0); /* fewer rows than columns */
}

int main(void) {
    mkdir(BNN_TEST_TMP, 0755);
    test_signal_during_commit();
    test_threads_writing();
    test_dgemm_serial();
    test_lapack();
    test_syrk();
    test_dsyrk();
    test_cgroup_limit();
    test_gemm_thread_invariance();
    test_errors();
    test_parse_int();
    test_strtod();
    test_parse_decimal();
    test_check_output();
    test_write_failure_leaves_nothing();
    test_thread_bounds();
    test_arena();
    test_philox_kat();
    test_rng_stats_and_threads();
    test_gemm();
    return CHECK_DONE();
}
