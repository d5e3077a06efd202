/* Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011, section 4.2; constants from the Random123 reference).
 * The 128-bit counter is (counter low, counter high, stream low, stream high) and the 64-bit key
 * is the seed, so every block is a pure function of (seed, stream, counter). */
#include "core/internal.h"

#include <math.h>

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

/* A u32 to a float strictly inside (0, 1): the top 24 bits plus half an ulp. */
static float u32_to_unit(uint32_t u) { return ((float)(u >> 8) + 0.5f) * (1.0f / 16777216.0f); }

/* Two u32 to a double strictly inside (0, 1) with 53 bits. */
static double u64_to_unit(uint32_t hi, uint32_t lo) {
    uint64_t u = ((uint64_t)hi << 32 | lo) >> 11;
    return ((double)u + 0.5) * (1.0 / 9007199254740992.0);
}

void bnn_rng_uniform(bnn_rng *rng, float *out, int64_t n) {
    int64_t blocks = (n + 3) / 4;
    uint64_t base = rng->counter;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (blocks > 4096)
#endif
    for (int64_t bI = 0; bI < blocks; bI++) {
        uint32_t r[4];
        bnn_philox(r, rng->seed, rng->stream, base + (uint64_t)bI);
        for (int j = 0; j < 4 && bI * 4 + j < n; j++) out[bI * 4 + j] = u32_to_unit(r[j]);
    }
    rng->counter += (uint64_t)blocks;
}

void bnn_rng_normal(bnn_rng *rng, float *out, int64_t n) {
    /* Box–Muller on two 53-bit uniforms per pair, in double, so the tails are accurate. */
    int64_t blocks = (n + 1) / 2;
    uint64_t base = rng->counter;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (blocks > 4096)
#endif
    for (int64_t bI = 0; bI < blocks; bI++) {
        uint32_t r[4];
        bnn_philox(r, rng->seed, rng->stream, base + (uint64_t)bI);
        double u1 = u64_to_unit(r[0], r[1]), u2 = u64_to_unit(r[2], r[3]);
        double rad = sqrt(-2.0 * log(u1)), ang = 6.283185307179586 * u2;
        out[2 * bI] = (float)(rad * cos(ang));
        if (2 * bI + 1 < n) out[2 * bI + 1] = (float)(rad * sin(ang));
    }
    rng->counter += (uint64_t)blocks;
}

uint64_t bnn_rng_below(bnn_rng *rng, uint64_t n) {
    BNN_ASSERT(n > 0);
    uint32_t r[4];
    bnn_philox(r, rng->seed, rng->stream, rng->counter++);
    /* A 128-bit-wide draw reduced by multiply-high keeps the bias below 2^-64 · n. */
    uint64_t u = (uint64_t)r[0] << 32 | r[1];
    return (uint64_t)(((unsigned __int128)u * n) >> 64);
}
