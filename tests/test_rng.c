/* Random numbers: the batched Philox and the float Box-Muller transform of src/core/rng.c against
 * bnn_philox and double-precision Box-Muller on the same uniforms; the distribution (moments,
 * Kolmogorov-Smirnov, tails); invariance to threads and to call chunking. */
#include "check.h"
#include "bnn.h"

#include <stdint.h>
#include <string.h>

static const double two_pi = 6.283185307179586;

/* The uniforms the transform documents: u from word ru (radius), a from word ra (angle). */
static double radius_uniform(uint32_t ru) {
    float f = (float)(int32_t)(ru >> 1) + 0.5f;
    return ldexp((double)f, -31);
}
static double angle_uniform(uint32_t ra) { return ldexp((double)(ra >> 8), -24); }

/* Standard normal CDF. */
static double phi(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Kolmogorov-Smirnov statistic of x[0..n) (sorted in place) against the CDF F. */
static double ks_stat(float *x, int64_t n, double (*F)(double)) {
    qsort(x, (size_t)n, sizeof(float), cmp_float);
    double d = 0;
    for (int64_t i = 0; i < n; i++) {
        double f = F(x[i]), lo = f - (double)i / n, hi = (double)(i + 1) / n - f;
        if (lo > d) d = lo;
        if (hi > d) d = hi;
    }
    return d;
}
/* The critical value of the KS statistic at level alpha (asymptotic). */
static double ks_crit(int64_t n, double alpha) {
    return sqrt(-0.5 * log(alpha / 2)) / sqrt((double)n);
}

static double unit_cdf(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

/* Every value against bnn_philox and Box-Muller in double on the same uniforms, from a counter
 * where the block index carries into the counter's high word (and one where it wraps). */
static void test_exact(uint64_t seed, uint64_t stream, uint64_t counter, int64_t n) {
    float *z = malloc((size_t)n * sizeof(float)), *u = malloc((size_t)n * sizeof(float));
    REQUIRE(z && u);
    bnn_rng r = {seed, stream, counter};
    bnn_rng_normal(&r, z, n);
    CHECK(r.counter == counter + (uint64_t)((n + 3) / 4));
    r.counter = counter;
    bnn_rng_uniform(&r, u, n);
    CHECK(r.counter == counter + (uint64_t)((n + 3) / 4));
    int64_t bad_z = 0, bad_u = 0;
    double max_abs = 0, max_rel = 0, max_over_r = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        bnn_philox(w, seed, stream, counter + (uint64_t)(i / 4));
        int j = (int)(i % 4);
        float uref = fminf(((float)(w[j] >> 8) + 0.5f) * (1.0f / 16777216.0f), 0x1.fffffep-1f);
        if (memcmp(&u[i], &uref, sizeof uref) != 0 || !(u[i] > 0.0f && u[i] < 1.0f)) bad_u++;
        uint32_t ru = w[j & 2], ra = w[(j & 2) + 1];
        double rad = sqrt(-2.0 * log(radius_uniform(ru))), ang = two_pi * angle_uniform(ra);
        double ref = rad * ((j & 1) ? sin(ang) : cos(ang));
        double err = fabs((double)z[i] - ref);
        if (err > max_abs) max_abs = err;
        if (fabs(ref) >= 1 && err / fabs(ref) > max_rel) max_rel = err / fabs(ref);
        if (rad > 0 && err / rad > max_over_r) max_over_r = err / rad;
        /* 1e-6 relative, or absolute below |z| = 1 (where cos or sin is near a root). */
        if (!(err <= 1e-6 * fmax(1.0, fabs(ref)))) {
            if (bad_z++ == 0)
                fprintf(stderr, "normal %lld: %.9g, double Box-Muller %.9g\n", (long long)i, z[i],
                        ref);
        }
    }
    CHECK_EQ_INT(bad_u, 0);
    CHECK_EQ_INT(bad_z, 0);
    fprintf(stderr,
            "transform vs double Box-Muller (%lld values): max |dz| %.3g, max |dz|/|z| (|z|>=1) "
            "%.3g, max |dz|/R %.3g\n",
            (long long)n, max_abs, max_rel, max_over_r);
    free(z), free(u);
}

static void test_moments_ks(void) {
    const int64_t n = 1 << 20;
    float *z = malloc((size_t)n * sizeof(float));
    REQUIRE(z);
    bnn_rng r = bnn_rng_make(42, 7);
    bnn_rng_normal(&r, z, n);
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = z[i], x2 = x * x;
        m1 += x, m2 += x2, m3 += x2 * x, m4 += x2 * x2;
    }
    m1 /= n, m2 /= n, m3 /= n, m4 /= n;
    /* Five standard errors: sd of the sample mean of z, z^2, z^3, z^4 is sqrt(1, 2, 15, 96 / n). */
    double se = 1 / sqrt((double)n);
    CHECK_NEAR(m1, 0.0, 5 * se);
    CHECK_NEAR(m2, 1.0, 5 * sqrt(2.0) * se);
    CHECK_NEAR(m3, 0.0, 5 * sqrt(15.0) * se);
    CHECK_NEAR(m4, 3.0, 5 * sqrt(96.0) * se);
    double d = ks_stat(z, n, phi);
    CHECK(d < ks_crit(n, 1e-3));
    fprintf(stderr, "normal KS D = %.3g (n = %lld, critical value at 1e-3: %.3g)\n", d,
            (long long)n, ks_crit(n, 1e-3));

    r = bnn_rng_make(42, 8);
    bnn_rng_uniform(&r, z, n);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++)
        s += z[i], s2 += (double)z[i] * z[i];
    CHECK_NEAR(s / n, 0.5, 5 * sqrt(1.0 / 12) * se);
    CHECK_NEAR(s2 / n, 1.0 / 3, 5 * sqrt(4.0 / 45) * se);
    d = ks_stat(z, n, unit_cdf);
    CHECK(d < ks_crit(n, 1e-3));
    free(z);
}

/* 10^7 normals: the counts beyond 4 and 4.5 are Poisson, checked within 5 standard deviations;
 * nothing exceeds sqrt(-2 ln 2^-32) = 6.66, the largest radius the 31-bit uniform gives. */
static void test_tails(void) {
    const int64_t chunk = 1 << 20, total = 10 * chunk;
    float *z = malloc((size_t)chunk * sizeof(float));
    REQUIRE(z);
    bnn_rng r = bnn_rng_make(2024, 1);
    int64_t over4 = 0, over45 = 0, over5 = 0;
    double zmax = 0;
    for (int64_t done = 0; done < total; done += chunk) {
        bnn_rng_normal(&r, z, chunk);
        for (int64_t i = 0; i < chunk; i++) {
            double a = fabs((double)z[i]);
            over4 += a > 4, over45 += a > 4.5, over5 += a > 5;
            if (a > zmax) zmax = a;
        }
    }
    double e4 = total * erfc(4 / sqrt(2.0)), e45 = total * erfc(4.5 / sqrt(2.0));
    CHECK_NEAR(over4, e4, 5 * sqrt(e4));
    CHECK_NEAR(over45, e45, 5 * sqrt(e45));
    CHECK(zmax < 6.67);
    fprintf(stderr,
            "tails of %lld: |z| > 4: %lld (expected %.1f), > 4.5: %lld (%.1f), > 5: %lld "
            "(%.1f), max |z| %.3f\n",
            (long long)total, (long long)over4, e4, (long long)over45, e45, (long long)over5,
            total * erfc(5 / sqrt(2.0)), zmax);
    free(z);
}

/* The same numbers for 1, 2 and 3 threads, bitwise. */
static void test_threads(void) {
    const int64_t n = 1000003; /* large enough to run in parallel; not a multiple of 4 */
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    REQUIRE(a && b);
    for (int kind = 0; kind < 2; kind++) {
        void (*gen)(bnn_rng *, float *, int64_t) = kind ? bnn_rng_uniform : bnn_rng_normal;
        bnn_set_threads(1);
        bnn_rng r = bnn_rng_make(5, 6);
        gen(&r, a, n);
        for (int t = 2; t <= 3; t++) {
            bnn_set_threads(t);
            bnn_rng r2 = bnn_rng_make(5, 6);
            gen(&r2, b, n);
            CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0);
            CHECK(r2.counter == r.counter);
        }
    }
    bnn_set_threads(1);
    free(a), free(b);
}

/* One call of n against calls that each take whole blocks (any sizes, in order), and a call that
 * ends inside a block: the rest of that block is skipped. */
static void test_chunking(void) {
    const int64_t n = 200001;
    float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
    REQUIRE(a && b);
    const int64_t sizes[] = {4, 128, 12, 4096, 508, 4 * 32 * 130, 8, 4 * 777, 124, 36};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    for (int kind = 0; kind < 2; kind++) {
        void (*gen)(bnn_rng *, float *, int64_t) = kind ? bnn_rng_uniform : bnn_rng_normal;
        const uint64_t start = 0xfffffffful - 5000; /* crosses into the high counter word */
        bnn_rng r = {77, 3, start};
        gen(&r, a, n);
        CHECK(r.counter == start + (uint64_t)((n + 3) / 4));
        bnn_rng r2 = {77, 3, start};
        int64_t done = 0;
        for (int k = 0; done < n; k++) {
            int64_t m = sizes[k % ns];
            if (m > n - done) m = n - done;
            gen(&r2, b + done, m);
            done += m;
        }
        CHECK(r2.counter == r.counter);
        CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0);
        /* 5 values use two blocks; the next call starts at the third (value 8). */
        bnn_rng r3 = {77, 3, start};
        float c[8];
        gen(&r3, c, 5);
        CHECK(r3.counter == start + 2);
        gen(&r3, c + 5, 3);
        CHECK(memcmp(c, a, 5 * sizeof(float)) == 0 && memcmp(c + 5, a + 8, 3 * sizeof(float)) == 0);
    }
    /* Advances: ceil(n / 4) blocks, nothing for n = 0. */
    bnn_rng r = bnn_rng_make(1, 1);
    float x[9];
    bnn_rng_normal(&r, x, 0);
    CHECK(r.counter == 0);
    bnn_rng_normal(&r, x, 1);
    CHECK(r.counter == 1);
    bnn_rng_normal(&r, x, 4);
    CHECK(r.counter == 2);
    bnn_rng_normal(&r, x, 9);
    CHECK(r.counter == 5);
    free(a), free(b);
}

/* Different seeds, streams and counters give unrelated numbers. */
static void test_streams_differ(void) {
    enum { N = 4096 };
    static float z[4][N];
    bnn_rng r[4] = {bnn_rng_make(1, 0), bnn_rng_make(1, 1), bnn_rng_make(2, 0), {1, 0, 1}};
    for (int k = 0; k < 4; k++)
        bnn_rng_normal(&r[k], z[k], N);
    for (int k = 0; k < 4; k++)
        for (int l = k + 1; l < 4; l++) {
            int same = 0;
            for (int i = 0; i < N; i++)
                same += z[k][i] == z[l][i];
            CHECK(same < 4);
        }
    /* The counter-offset stream is the same sequence shifted by one block. */
    CHECK(memcmp(z[3], z[0] + 4, (N - 4) * sizeof(float)) == 0);
}

/* A word whose top 24 bits are all ones gave exactly 1: (2^24 − 1 + 0.5) rounds to 2^24 in float.
 * Seed 0, stream 0 draws one at value 9,320,226; it is now the largest float below 1. */
static void test_uniform_below_one(void) {
    const int64_t n = 9320227;
    float *u = malloc((size_t)n * sizeof(float));
    REQUIRE(u);
    bnn_rng r = bnn_rng_make(0, 0);
    bnn_rng_uniform(&r, u, n);
    int64_t out = 0;
    for (int64_t i = 0; i < n; i++) out += !(u[i] > 0.0f && u[i] < 1.0f);
    CHECK_EQ_INT(out, 0);
    CHECK(u[n - 1] == 0x1.fffffep-1f);
    free(u);
}

int main(void) {
    test_uniform_below_one();
    test_exact(0x0123456789abcdefull, 0xfedcba9876543210ull, 0xffffffffull - 100000, 1 << 20);
    test_exact(3, 0, UINT64_MAX - 50, 1001); /* the block index wraps around 2^64 */
    test_moments_ks();
    test_tails();
    test_threads();
    test_chunking();
    test_streams_differ();
    return CHECK_DONE();
}
