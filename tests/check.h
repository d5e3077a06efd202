/* A small assert header for the ctest executables. A failed check prints what was compared and
 * makes the test exit non-zero at the end (CHECK_DONE), or at once for REQUIRE. */
#ifndef BNN_CHECK_H
#define BNN_CHECK_H

#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures = 0;
static int check_count = 0;
/* Cases skipped with a note (a reference fixture that is not there): a test whose every case was
 * skipped passes; one that checked nothing otherwise fails. */
static int check_skips = 0;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        check_count++;                                                                        \
        if (!(cond)) {                                                                        \
            check_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);          \
        }                                                                                     \
    } while (0)

#define REQUIRE(cond)                                                                         \
    do {                                                                                      \
        check_count++;                                                                        \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond);        \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

/* |a - b| <= tol (absolute). */
#define CHECK_NEAR(a, b, tol)                                                                 \
    do {                                                                                      \
        double ca_ = (double)(a), cb_ = (double)(b), ct_ = (double)(tol);                    \
        check_count++;                                                                        \
        if (!(fabs(ca_ - cb_) <= ct_)) {                                                      \
            check_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.17g, %s = %.17g, |diff| %.3g > %.3g\n", \
                    __FILE__, __LINE__, #a, ca_, #b, cb_, fabs(ca_ - cb_), ct_);              \
        }                                                                                     \
    } while (0)

/* |a - b| <= tol * max(|b|, floor) (relative). */
#define CHECK_REL(a, b, tol, floor)                                                           \
    do {                                                                                      \
        double ca_ = (double)(a), cb_ = (double)(b), ct_ = (double)(tol);                    \
        double cs_ = fabs(cb_) > (floor) ? fabs(cb_) : (floor);                               \
        check_count++;                                                                        \
        if (!(fabs(ca_ - cb_) <= ct_ * cs_)) {                                                \
            check_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK_REL failed: %s = %.17g, %s = %.17g, rel %.3g > %.3g\n", \
                    __FILE__, __LINE__, #a, ca_, #b, cb_, fabs(ca_ - cb_) / cs_, ct_);        \
        }                                                                                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                    \
    do {                                                                                      \
        long long ca_ = (long long)(a), cb_ = (long long)(b);                                 \
        check_count++;                                                                        \
        if (ca_ != cb_) {                                                                     \
            check_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", __FILE__,       \
                    __LINE__, #a, ca_, #b, cb_);                                              \
        }                                                                                     \
    } while (0)

/* Norm-wise relative error max|c − r| / max|r| of n doubles (NaN propagates as a failure). */
static inline double check_relerr(const double *c, const double *r, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(c[i] - r[i]);
        if (!(d <= num)) num = d;
        if (fabs(r[i]) > den) den = fabs(r[i]);
    }
    return den > 0.0 ? num / den : num;
}

/* Checks and reports (always, for the record) a norm-wise relative error of at most tol. */
#define CHECK_RELERR(what, c, r, n, tol)                                                      \
    do {                                                                                      \
        double e_ = check_relerr((c), (r), (n));                                              \
        fprintf(stderr, "  %-48s rel err %.2e\n", (what), e_);                                \
        check_count++;                                                                        \
        if (!(e_ <= (tol))) {                                                                 \
            check_failures++;                                                                 \
            fprintf(stderr, "%s:%d: %s: relative error %.3g > %.3g\n", __FILE__, __LINE__,    \
                    (what), e_, (double)(tol));                                               \
        }                                                                                     \
    } while (0)

/* Prints the tally and returns the exit status for main. */
#define CHECK_DONE()                                                                          \
    (fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures),                  \
     (check_failures || (check_count == 0 && check_skips == 0)) ? 1 : 0)

#endif
