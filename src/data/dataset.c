/* The in-memory dataset: construction, accessors, validation, shuffling and row gathering. */
#include "data/data.h"

#include <math.h>
#include <string.h>

int bnn_dataset_new(bnn_dataset **out, bnn_task task, int64_t n, int64_t d, int64_t t,
                    int64_t classes) {
    return bnn__dataset_make(out, task, n, d, t, classes, NULL);
}

int bnn__dataset_make(bnn_dataset **out, bnn_task task, int64_t n, int64_t d, int64_t t,
                      int64_t classes, float *x) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_dataset_new: out is NULL");
    *out = NULL;
    if (task != BNN_TASK_CLASSIFICATION && task != BNN_TASK_REGRESSION)
        return bnn__error(BNN_EINVAL, "bnn_dataset_new: unknown task %d", (int)task);
    if (n < 0 || d < 1)
        return bnn__error(BNN_EINVAL,
                          "bnn_dataset_new: need n >= 0 and d >= 1 (got n=%lld, d=%lld)",
                          (long long)n, (long long)d);
    /* Labels are int32, so a class count beyond INT32_MAX could not be represented. */
    int64_t k = task == BNN_TASK_CLASSIFICATION ? classes : t;
    if (k < 1 || (task == BNN_TASK_CLASSIFICATION && k > INT32_MAX))
        return bnn__error(BNN_EINVAL, "bnn_dataset_new: %s must be %s (got %lld)",
                          task == BNN_TASK_CLASSIFICATION ? "classes" : "target columns",
                          task == BNN_TASK_CLASSIFICATION ? "in 1 .. 2^31 - 1" : ">= 1",
                          (long long)k);
    /* n·d and n·k are element counts in int64_t; check them before bnn__bytes checks the byte
     * size, so a huge request fails cleanly instead of wrapping around. */
    if (n > INT64_MAX / d || (task == BNN_TASK_REGRESSION && n > INT64_MAX / k))
        return bnn__error(BNN_ENOMEM, "bnn_dataset_new: %lld x %lld is too large", (long long)n,
                          (long long)d);
    size_t xb = bnn__bytes(n * d, sizeof(float));
    size_t yb = task == BNN_TASK_CLASSIFICATION ? bnn__bytes(n, sizeof(int32_t))
                                                : bnn__bytes(n * k, sizeof(float));
    if (n > 0 && (xb == 0 || yb == 0))
        return bnn__error(BNN_ENOMEM, "bnn_dataset_new: %lld x %lld is too large", (long long)n,
                          (long long)d);

    bnn_dataset *ds = bnn__alloc(sizeof *ds);
    if (!ds) return bnn__error(BNN_ENOMEM, "cannot allocate a dataset");
    ds->task = task;
    ds->n = n, ds->d = d, ds->k = k;
    ds->x = x ? x : bnn__alloc(xb);
    if (task == BNN_TASK_CLASSIFICATION)
        ds->labels = bnn__alloc(yb);
    else
        ds->targets = bnn__alloc(yb);
    if (!ds->x || (!ds->labels && !ds->targets)) {
        if (x) ds->x = NULL; /* not taken: the caller still owns it */
        bnn_dataset_free(ds);
        return bnn__error(BNN_ENOMEM, "cannot allocate a dataset of %lld x %lld", (long long)n,
                          (long long)d);
    }
    *out = ds;
    return 0;
}

void bnn_dataset_free(bnn_dataset *ds) {
    if (!ds) return;
    bnn__free(ds->x);
    bnn__free(ds->labels);
    bnn__free(ds->targets);
    bnn__free(ds);
}

/* The accessors accept NULL and answer "nothing", so a caller's cleanup path never crashes. */
bnn_task bnn_dataset_task(const bnn_dataset *ds) { return ds ? ds->task : BNN_TASK_CLASSIFICATION; }
int64_t bnn_dataset_n(const bnn_dataset *ds) { return ds ? ds->n : 0; }
int64_t bnn_dataset_dim(const bnn_dataset *ds) { return ds ? ds->d : 0; }
int64_t bnn_dataset_outputs(const bnn_dataset *ds) { return ds ? ds->k : 0; }
bool bnn_dataset_labelled(const bnn_dataset *ds) { return ds && !ds->unlabelled; }
/* A caller holding a writable pointer may change the data at any time, so the set is no longer
 * known to be clean (checked) and every later entry check scans it. */
float *bnn_dataset_x(bnn_dataset *ds) {
    if (!ds) return NULL;
    ds->checked = false;
    return ds->x;
}
int32_t *bnn_dataset_labels(bnn_dataset *ds) {
    if (!ds) return NULL;
    ds->checked = false;
    return ds->labels;
}
float *bnn_dataset_targets(bnn_dataset *ds) {
    if (!ds) return NULL;
    ds->checked = false;
    return ds->targets;
}
const float *bnn_dataset_cx(const bnn_dataset *ds) { return ds ? ds->x : NULL; }
const int32_t *bnn_dataset_clabels(const bnn_dataset *ds) { return ds ? ds->labels : NULL; }
const float *bnn_dataset_ctargets(const bnn_dataset *ds) { return ds ? ds->targets : NULL; }

void bnn_dataset_image_shape(const bnn_dataset *ds, int64_t shape[3]) {
    if (!shape) return;
    for (int i = 0; i < 3; i++)
        shape[i] = ds ? ds->image[i] : 0;
}

void bnn_dataset_set_image_shape(bnn_dataset *ds, const int64_t shape[3]) {
    if (!ds) return;
    /* A shape that does not describe the d features would mislead a convolutional layer, and
     * this call cannot report an error, so such a shape (or NULL) clears it instead. */
    bool ok = shape && shape[0] > 0 && shape[1] > 0 && shape[2] > 0 &&
              shape[1] <= ds->d / shape[0] && shape[2] <= ds->d / (shape[0] * shape[1]) &&
              shape[0] * shape[1] * shape[2] == ds->d;
    for (int i = 0; i < 3; i++)
        ds->image[i] = ok ? shape[i] : 0;
}

/* Whether n floats are all finite, in one branch-free pass that vectorises and is shared among
 * the threads: a float is Inf or NaN exactly when its exponent bits are all ones. The data is
 * validated wherever it enters (loading; training, evaluation and the curvature pass unless the
 * set is still as loaded, ds->checked), and an early-exit scan of Fashion-MNIST's 47M features
 * took 24 ms each time; this one is memory-bound. */
static bool floats_finite(const float *x, int64_t n) {
    const int64_t blk = 1 << 16, nblk = (n + blk - 1) / blk;
    uint32_t bad = 0;
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) reduction(| : bad) if (nblk > 4)
#endif
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t hi = (b + 1) * blk < n ? (b + 1) * blk : n;
        uint32_t o = 0;
        for (int64_t i = b * blk; i < hi; i++) {
            uint32_t u;
            memcpy(&u, x + i, sizeof u);
            o |= (u & 0x7f800000u) == 0x7f800000u;
        }
        bad |= o;
    }
    return !bad;
}

/* ---------------------------------------------------------------- fingerprint */

/* The finaliser of SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014): a bijection of 64-bit words that spreads every input bit. */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* len bytes, in four interleaved lanes of 8-byte words; each step (a ^ w)·odd, then a ^= a >> 29
 * is a bijection of the lane for a fixed word, so changing any one word changes the result. */
static uint64_t hash_bytes(const unsigned char *p, size_t len, uint64_t seed) {
    uint64_t a[4] = {seed, seed + 1, seed + 2, seed + 3};
    size_t i = 0;
    for (; i + 32 <= len; i += 32)
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, p + i + 8 * (size_t)l, sizeof w);
            a[l] = (a[l] ^ w) * 0x9e3779b97f4a7c15ull;
            a[l] ^= a[l] >> 29;
        }
    uint64_t tail = 0;
    for (size_t j = 0; i + j < len; j++)
        tail = tail << 8 | p[i + j];
    return mix64(a[0] ^ mix64(a[1] ^ mix64(a[2] ^ mix64(a[3] ^ mix64(tail ^ len)))));
}

/* A region in blocks of HASH_BLOCK bytes hashed independently (shared among the threads) and
 * folded in order, so the thread count cannot change the result. */
#define HASH_BLOCK ((size_t)1 << 18)
static uint64_t hash_block(const unsigned char *p, size_t len, int64_t b) {
    const size_t lo = (size_t)b * HASH_BLOCK;
    return hash_bytes(p + lo, len - lo < HASH_BLOCK ? len - lo : HASH_BLOCK, (uint64_t)b);
}
static uint64_t hash_region(const void *data, size_t len, uint64_t h) {
    const unsigned char *p = data;
    const int64_t nb = (int64_t)((len + HASH_BLOCK - 1) / HASH_BLOCK);
    /* Without memory for the block hashes, the same ones one after another. */
    uint64_t *bh = nb > 1 ? malloc((size_t)nb * sizeof *bh) : NULL;
    if (bh) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static)
#endif
        for (int64_t b = 0; b < nb; b++)
            bh[b] = hash_block(p, len, b);
    }
    for (int64_t b = 0; b < nb; b++)
        h = mix64(h ^ (bh ? bh[b] : hash_block(p, len, b)));
    free(bh);
    return mix64(h ^ len);
}

uint64_t bnn__dataset_hash(const bnn_dataset *ds) {
    BNN_ASSERT(ds);
    uint64_t h = mix64((uint64_t)ds->task ^
                       mix64((uint64_t)ds->n ^ mix64((uint64_t)ds->d ^ mix64((uint64_t)ds->k))));
    h = hash_region(ds->x, (size_t)(ds->n * ds->d) * sizeof(float), h);
    if (ds->labels) h = hash_region(ds->labels, (size_t)ds->n * sizeof(int32_t), h);
    if (ds->targets) h = hash_region(ds->targets, (size_t)(ds->n * ds->k) * sizeof(float), h);
    return h;
}

int bnn_dataset_validate(const bnn_dataset *ds) {
    if (!ds) return bnn__error(BNN_EINVAL, "bnn_dataset_validate: dataset is NULL");
    /* Rows and columns are reported 0-based, matching how the data is indexed in code. The fast
     * pass says whether to look; the loop finds the first bad value to name it. */
    const bool x_finite = floats_finite(ds->x, ds->n * ds->d);
    for (int64_t i = 0; !x_finite && i < ds->n; i++) {
        const float *row = ds->x + i * ds->d;
        for (int64_t j = 0; j < ds->d; j++)
            if (!isfinite(row[j]))
                return bnn__error(BNN_EFORMAT,
                                  "row %lld, feature %lld is %s (rows and columns "
                                  "count from 0)",
                                  (long long)i, (long long)j, isnan(row[j]) ? "NaN" : "infinite");
    }
    if (ds->task == BNN_TASK_CLASSIFICATION) {
        for (int64_t i = 0; i < ds->n; i++)
            if (ds->labels[i] < 0 || ds->labels[i] >= ds->k)
                return bnn__error(BNN_EFORMAT,
                                  "row %lld: label %d is outside [0, %lld) (rows "
                                  "count from 0)",
                                  (long long)i, (int)ds->labels[i], (long long)ds->k);
    } else {
        for (int64_t i = 0; i < ds->n; i++)
            for (int64_t j = 0; j < ds->k; j++)
                if (!isfinite(ds->targets[i * ds->k + j]))
                    return bnn__error(BNN_EFORMAT,
                                      "row %lld, target %lld is %s (rows and "
                                      "columns count from 0)",
                                      (long long)i, (long long)j,
                                      isnan(ds->targets[i * ds->k + j]) ? "NaN" : "infinite");
    }
    return 0;
}

int bnn_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t epoch) {
    if (n < 0 || (n > 0 && !perm))
        return bnn__error(BNN_EINVAL, "bnn_permutation: need n >= 0 and a buffer of n indices");
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    /* Fisher–Yates (Durstenfeld's in-place form; Knuth, TAOCP vol. 2, Algorithm 3.4.2 P): swap
     * each position from the top down with a uniform earlier-or-equal one. The generator is made
     * fresh from (seed, epoch), so an epoch's order does not depend on earlier epochs. */
    bnn_rng rng = bnn_rng_make(seed, BNN__STREAM_SHUFFLE + epoch);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)bnn_rng_below(&rng, (uint64_t)i + 1);
        int64_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    return 0;
}

void bnn_dataset_gather(const bnn_dataset *ds, const int64_t *idx, int64_t b, float *x,
                        int32_t *labels, float *targets) {
    /* An index outside the dataset is a bug in the caller (indices come from bnn_permutation or
     * from the caller's own loop), not bad input, so it is an assertion. */
    BNN_ASSERT(ds && (b == 0 || idx) && b >= 0);
    const size_t row = (size_t)ds->d * sizeof(float);
    /* The rows are scattered over the dataset, so one thread waits on memory most of the time;
     * two or more keep more of those loads in flight (a copy: the thread count changes nothing). */
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (b * ds->d >= 65536)
#endif
    for (int64_t r = 0; r < b; r++) {
        int64_t i = idx[r];
        BNN_ASSERT(i >= 0 && i < ds->n);
        if (x) memcpy(x + r * ds->d, ds->x + i * ds->d, row);
        if (labels && ds->labels) labels[r] = ds->labels[i];
        if (targets && ds->targets)
            memcpy(targets + r * ds->k, ds->targets + i * ds->k, (size_t)ds->k * sizeof(float));
    }
}

int bnn_dataset_slice(bnn_dataset **out, const bnn_dataset *ds, int64_t lo, int64_t hi) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_dataset_slice: out is NULL");
    *out = NULL;
    if (!ds) return bnn__error(BNN_EINVAL, "bnn_dataset_slice: the dataset is NULL");
    if (lo < 0 || hi > ds->n || lo >= hi)
        return bnn__error(BNN_EINVAL, "rows [%lld, %lld) are not a non-empty range of the %lld "
                          "examples", (long long)lo, (long long)hi, (long long)ds->n);
    bnn_dataset *s;
    int rc = bnn_dataset_new(&s, ds->task, hi - lo, ds->d, ds->k, ds->k);
    if (rc) return rc;
    memcpy(s->x, ds->x + lo * ds->d, (size_t)((hi - lo) * ds->d) * sizeof(float));
    if (ds->labels) memcpy(s->labels, ds->labels + lo, (size_t)(hi - lo) * sizeof(int32_t));
    if (ds->targets)
        memcpy(s->targets, ds->targets + lo * ds->k, (size_t)((hi - lo) * ds->k) * sizeof(float));
    s->k = ds->k;
    memcpy(s->image, ds->image, sizeof s->image);
    s->unlabelled = ds->unlabelled;
    s->checked = ds->checked; /* the same values as rows of a checked set */
    *out = s;
    return 0;
}

int bnn_dataset_truncate(bnn_dataset *ds, int64_t n) {
    if (!ds) return bnn__error(BNN_EINVAL, "bnn_dataset_truncate: the dataset is NULL");
    if (n < 1 || n > ds->n)
        return bnn__error(BNN_EINVAL, "bnn_dataset_truncate: %lld rows is not between 1 and the "
                          "%lld examples", (long long)n, (long long)ds->n);
    ds->n = n; /* rows are contiguous from the start: x, labels and targets need no move */
    return 0;
}
