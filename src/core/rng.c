/* Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011, section 4.2; constants from the Random123 reference).
 * The 128-bit counter is (counter low, counter high, stream low, stream high) and the 64-bit key
 * is the seed, so every block is a pure function of (seed, stream, counter).
 *
 * Speed. IVON draws one normal per weight per step, so bnn_rng_normal is on the training step's
 * critical path. Blocks are made RNG_BATCH at a time with their words in plain arrays (structure
 * of arrays), so the Philox rounds run across independent counters in vector registers, and the
 * transforms to uniforms and normals are elementwise loops that GCC vectorises. Those loops use
 * our own branchless float log, sin and cos (below) because libm's do not vectorise without
 * -ffast-math, which the build rules out (STYLE.md). Every value is defined per block, so the
 * batching, the call chunking and the thread count never change one. */
#include "core/internal.h"

#include <math.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void bnn_philox(uint32_t out[4], uint64_t seed, uint64_t stream, uint64_t counter) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32);
    uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0, c1 = n1, c2 = n2, c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

bnn_rng bnn_rng_make(uint64_t seed, uint64_t stream) {
    bnn_rng r = {seed, stream, 0};
    return r;
}

/* Blocks per batch: 2 x 16 lanes (zmm); larger batches spill registers in the Philox rounds. */
#define RNG_BATCH 32
/* Batches below this count (16384 values) run on one thread: a fork costs more than it saves. */
#define RNG_PAR_BATCHES 128

/* ---------------------------------------------------------------- Philox, RNG_BATCH at a time */

/* x[j][i] = word j of block ctr + i: bnn_philox for RNG_BATCH consecutive counters (mod 2^64).
 * The known-answer tests pin bnn_philox; test_rng checks the outputs built on this against it. */
#if defined(__AVX512F__)
/* GCC 12 vectorises the portable loop below with zero-extensions and 64x64-bit vpmullq; said
 * directly with vpmuludq (32x32 -> 64 bits, the product a round needs) it runs 30% faster. */
static void philox_batch(uint32_t x[4][RNG_BATCH], uint64_t seed, uint64_t stream, uint64_t ctr) {
    enum { V = RNG_BATCH / 8 };
    /* A word per 64-bit lane; only the low halves are meaningful (vpmuludq reads only those). */
    __m512i c0[V], c1[V], c2[V], c3[V];
    const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    for (int v = 0; v < V; v++) {
        __m512i c = _mm512_add_epi64(_mm512_set1_epi64((long long)(ctr + 8 * (uint64_t)v)), lane);
        c0[v] = c, c1[v] = _mm512_srli_epi64(c, 32);
        c2[v] = _mm512_set1_epi64((long long)(stream & 0xffffffffu));
        c3[v] = _mm512_set1_epi64((long long)(stream >> 32));
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        const __m512i kk0 = _mm512_set1_epi64(k0), kk1 = _mm512_set1_epi64(k1);
        for (int v = 0; v < V; v++) {
            __m512i p0 = _mm512_mul_epu32(c0[v], m0), p1 = _mm512_mul_epu32(c2[v], m1);
            /* The products' high halves brought down by a dword swap (a shuffle port) rather
             * than a shift (the multiplier's port): the high halves it leaves are never read. 2%
             * off the normals on an Emerald Rapids core (2026-12-07). */
            c0[v] = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p1, _MM_PERM_CDAB), c1[v], kk0,
                                              0x96);
            c2[v] = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p0, _MM_PERM_CDAB), c3[v], kk1,
                                              0x96);
            c1[v] = p1, c3[v] = p0;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    /* The low halves of two 8-lane vectors make one 16-lane vector; whole-register stores let
     * the transform's loads be forwarded from them. */
    const __m512i even =
        _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int v = 0; v < V; v += 2) {
        _mm512_storeu_si512(&x[0][8 * v], _mm512_permutex2var_epi32(c0[v], even, c0[v + 1]));
        _mm512_storeu_si512(&x[1][8 * v], _mm512_permutex2var_epi32(c1[v], even, c1[v + 1]));
        _mm512_storeu_si512(&x[2][8 * v], _mm512_permutex2var_epi32(c2[v], even, c2[v + 1]));
        _mm512_storeu_si512(&x[3][8 * v], _mm512_permutex2var_epi32(c3[v], even, c3[v + 1]));
    }
}
#elif defined(__AVX2__)
/* AVX2 (machines without AVX-512, this workplace's Zen 3 machines among them). GCC 12
 * vectorises the portable loop below with a widening and a narrowing shuffle around every round's
 * products: 1.49 ms for 134k blocks on one Zen 3 core. Kept in 64-bit lanes for all ten rounds as
 * above, with the words packed once at the end: 0.43 ms (0.47 with the rounds not unrolled). */
static void philox_batch(uint32_t x[4][RNG_BATCH], uint64_t seed, uint64_t stream, uint64_t ctr) {
    enum { V = RNG_BATCH / 4 };
    /* A word per 64-bit lane; only the low halves are meaningful (vpmuludq reads only those). */
    __m256i c0[V], c1[V], c2[V], c3[V];
    const __m256i lane = _mm256_set_epi64x(3, 2, 1, 0);
    const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
    for (int v = 0; v < V; v++) {
        __m256i c = _mm256_add_epi64(_mm256_set1_epi64x((long long)(ctr + 4 * (uint64_t)v)), lane);
        c0[v] = c, c1[v] = _mm256_srli_epi64(c, 32);
        c2[v] = _mm256_set1_epi64x((long long)(stream & 0xffffffffu));
        c3[v] = _mm256_set1_epi64x((long long)(stream >> 32));
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma GCC unroll 10
    for (int r = 0; r < 10; r++) {
        const __m256i kk0 = _mm256_set1_epi64x(k0), kk1 = _mm256_set1_epi64x(k1);
        for (int v = 0; v < V; v++) {
            __m256i p0 = _mm256_mul_epu32(c0[v], m0), p1 = _mm256_mul_epu32(c2[v], m1);
            c0[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c1[v]), kk0);
            c2[v] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3[v]), kk1);
            c1[v] = p1, c3[v] = p0;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    /* Two 4-lane vectors make one 8-lane vector: shufps takes the low halves of both (blocks 0,
     * 1, 4, 5 | 2, 3, 6, 7 of the pair) and a 64-bit permute puts them in block order. */
    __m256i *w[4] = {c0, c1, c2, c3};
    for (int v = 0; v < V; v += 2) {
        for (int j = 0; j < 4; j++) {
            __m256 e = _mm256_shuffle_ps(_mm256_castsi256_ps(w[j][v]),
                                         _mm256_castsi256_ps(w[j][v + 1]), _MM_SHUFFLE(2, 0, 2, 0));
            _mm256_storeu_si256((__m256i *)&x[j][4 * v],
                                _mm256_permute4x64_epi64(_mm256_castps_si256(e), 0xD8));
        }
    }
}
#else
/* Portable: GCC vectorises the 32x32 -> 64-bit products as widening multiplies (pmuludq on SSE2,
 * which this form suits better than 64-bit lanes: 0.62 against 1.85 ms for 134k blocks). */
static void philox_batch(uint32_t x[4][RNG_BATCH], uint64_t seed, uint64_t stream, uint64_t ctr) {
    uint32_t c0[RNG_BATCH], c1[RNG_BATCH], c2[RNG_BATCH], c3[RNG_BATCH];
    for (int i = 0; i < RNG_BATCH; i++) {
        uint64_t c = ctr + (uint64_t)i;
        c0[i] = (uint32_t)c, c1[i] = (uint32_t)(c >> 32);
        c2[i] = (uint32_t)stream, c3[i] = (uint32_t)(stream >> 32);
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        for (int i = 0; i < RNG_BATCH; i++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[i];
            uint64_t p1 = (uint64_t)PHILOX_M1 * c2[i];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[i] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[i] ^ k1;
            c1[i] = (uint32_t)p1, c3[i] = (uint32_t)p0;
            c0[i] = n0, c2[i] = n2;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    memcpy(x[0], c0, sizeof c0), memcpy(x[1], c1, sizeof c1);
    memcpy(x[2], c2, sizeof c2), memcpy(x[3], c3, sizeof c3);
}
#endif

/* ---------------------------------------------------------------- uniforms */

/* A u32 to a float strictly inside (0, 1): the top 24 bits plus half, times 2^-24. Above 1/2
 * floats are 2^-24 apart, so there the sum rounds (to even), and for the top 24 bits all ones it
 * rounds to 1 itself: that one value is kept just below 1 (2^26 draws of seed 0 held 5 ones, which
 * a caller's log(1 − u) would take to −inf). */
static inline float u32_to_unit(uint32_t u) {
    const float x = ((float)(int32_t)(u >> 8) + 0.5f) * (1.0f / 16777216.0f);
    return x < 0x1.fffffep-1f ? x : 0x1.fffffep-1f; /* (a compare, not fminf: it vectorises) */
}

/* out[4i + j] = u32_to_unit(word j of block ctr + i), for the blocks of one batch. */
static void uniform_batch(float *out, uint64_t seed, uint64_t stream, uint64_t ctr) {
    uint32_t x[4][RNG_BATCH];
    philox_batch(x, seed, stream, ctr);
    /* must stay vectorised (tests/vectorised.sh) */
    for (int i = 0; i < RNG_BATCH; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = u32_to_unit(x[j][i]);
}

/* ---------------------------------------------------------------- normals */

/* One Box-Muller pair (Box & Muller, "A note on the generation of random normal deviates", Ann.
 * Math. Statist. 29, 1958): z0 = R cos(2 pi a), z1 = R sin(2 pi a), R = sqrt(-2 ln u), from two
 * Philox words. Written branchless in float so that the loop over a batch vectorises.
 *
 * The uniforms. u = ((ru >> 1) + 1/2) 2^-31, rounded to float, lies in (0, 1]: 31 bits, so |z|
 * reaches 6.66 (it rounds to 1, giving z = 0, for the top 128 values of ru only). a = (ra >> 8)
 * 2^-24 in [0, 1). test_rng compares every output against double-precision Box-Muller on these
 * same u and a.
 *
 * -2 ln u. u = 2^e m with m in [sqrt(1/2), sqrt(2)); -2 ln m = -4 atanh(s) = s q(s^2) with
 * s = (m - 1)/(m + 1), |s| < 0.172, and q a minimax quadratic (Remez fit for this file, relative
 * error 1.2e-7). m - 1 is exact, so the relative error stays small as u -> 1.
 *
 * sin and cos. The angle is reduced exactly in integers: turned by an eighth of a circle, the
 * top two bits of ra are the quadrant k and the next 22 give x in [-1, 1), the angle being
 * (k + x/2) pi/2. sin(pi/4 x) = x S(x^2) and cos(pi/4 x) = C(x^2) with S, C minimax cubics
 * (Remez fits for this file; errors 3e-9 relative and 3e-8 absolute). A quarter turn k maps
 * (cos, sin) to (-sin, cos): odd k swaps the two, and the signs come from the bits of k. */
static inline void box_muller(float *z0, float *z1, uint32_t ru, uint32_t ra) {
    float f = (float)(int32_t)(ru >> 1) + 0.5f; /* u = f 2^-31 */
    int32_t jf;
    float m = bnn__log_reduce(f, &jf);
    float e = (float)(jf - 31); /* u = 2^e m */
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float q = -4.00000047f + s2 * (-1.33304447f + s2 * -0.825927457f);
    float rad = sqrtf(e * -1.38629436f + s * q); /* -2 ln u = -2 e ln 2 - 2 ln m */

    uint32_t t = ra + (1u << 29); /* an eighth turn on: bits 31, 30 are the quadrant k */
    /* bits 29..8 as x in [-1, 1) */
    float x = bnn__u2f(0x40000000u | ((t >> 7) & 0x7ffffeu)) - 3.0f;
    float x2 = x * x;
    float sn =
        x * (0.785398161f + x2 * (-0.0807454325f + x2 * (0.00249000102f + x2 * -3.59504522e-05f)));
    float cs = 0.999999972f + x2 * (-0.308424254f + x2 * (0.0158499153f + x2 * -0.000318880508f));
    int odd = (t >> 30) & 1;
    float c = odd ? sn : cs, sv = odd ? cs : sn;
    /* cos is negative in quadrants 1 and 2, sin in 2 and 3. */
    *z0 = rad * bnn__u2f(bnn__f2u(c) ^ ((t + (1u << 30)) & 0x80000000u));
    *z1 = rad * bnn__u2f(bnn__f2u(sv) ^ (t & 0x80000000u));
}

/* out[4i .. 4i+3] = the four normals of block ctr + i: pairs from words (0, 1) and (2, 3). */
static void normal_batch(float *out, uint64_t seed, uint64_t stream, uint64_t ctr) {
    uint32_t x[4][RNG_BATCH];
    philox_batch(x, seed, stream, ctr);
    float z[4][RNG_BATCH];
    /* must stay vectorised (tests/vectorised.sh) */
    for (int i = 0; i < RNG_BATCH; i++) {
        box_muller(&z[0][i], &z[1][i], x[0][i], x[1][i]);
        box_muller(&z[2][i], &z[3][i], x[2][i], x[3][i]);
    }
    /* must stay vectorised (tests/vectorised.sh) */
    for (int i = 0; i < RNG_BATCH; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = z[j][i];
}

/* ---------------------------------------------------------------- driver */

typedef void (*batch_fn)(float *out, uint64_t seed, uint64_t stream, uint64_t ctr);

/* out[0 .. n) from four values per block, from block rng->counter on, in whole batches; the last
 * partial batch goes through scratch. Advances the counter by ceil(n / 4). */
static void fill4(batch_fn fn, bnn_rng *rng, float *out, int64_t n) {
    BNN_ASSERT(n >= 0);
    const int64_t per = 4 * RNG_BATCH;
    const int64_t full = n / per;
    const uint64_t seed = rng->seed, stream = rng->stream, base = rng->counter;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (full >= RNG_PAR_BATCHES)
#endif
    for (int64_t b = 0; b < full; b++)
        fn(out + b * per, seed, stream, base + (uint64_t)b * RNG_BATCH);
    const int64_t rest = n - full * per;
    if (rest > 0) {
        float tmp[4 * RNG_BATCH];
        fn(tmp, seed, stream, base + (uint64_t)full * RNG_BATCH);
        memcpy(out + full * per, tmp, (size_t)rest * sizeof(float));
    }
    rng->counter += (uint64_t)((n + 3) / 4);
}

_Static_assert(4 * RNG_BATCH == BNN_RNG_CHUNK, "a chunk is one batch of blocks");

void bnn__rng_normal_chunk(float *out, const bnn_rng *rng, int64_t c) {
    normal_batch(out, rng->seed, rng->stream, rng->counter + (uint64_t)c * RNG_BATCH);
}

void bnn_rng_uniform(bnn_rng *rng, float *out, int64_t n) { fill4(uniform_batch, rng, out, n); }

void bnn_rng_normal(bnn_rng *rng, float *out, int64_t n) { fill4(normal_batch, rng, out, n); }

uint64_t bnn_rng_below(bnn_rng *rng, uint64_t n) {
    BNN_ASSERT(n > 0);
    uint32_t r[4];
    bnn_philox(r, rng->seed, rng->stream, rng->counter++);
    /* A 64-bit draw (two of the block's words) reduced by multiply-high: the bias is below
     * n / 2^64. */
    uint64_t u = (uint64_t)r[0] << 32 | r[1];
    return (uint64_t)(((unsigned __int128)u * n) >> 64);
}
