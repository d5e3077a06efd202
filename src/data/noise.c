/* Out-of-distribution inputs: uniform noise ("noise", "noise:D", "noise:D:N"). A classifier that
 * knows what it does not know should be unsure on these, so they serve as the OOD set when
 * measuring how well predictive entropy separates in- from out-of-distribution inputs. */
#include "data/data.h"

#include <math.h>

int bnn__noise_uniform(bnn_dataset **out, int64_t n, int64_t d, uint64_t seed) {
    if (!out) return bnn__error(BNN_EINVAL, "noise: out is NULL");
    *out = NULL;
    if (n < 1 || d < 1)
        return bnn__error(BNN_EINVAL,
                          "noise: need N >= 1 examples and D >= 1 features (got %lld, %lld)",
                          (long long)n, (long long)d);
    /* The data is unlabeled, but every bnn dataset is either classification or regression. One
     * class with every label 0 keeps it a valid classification set that any classifier's
     * predictions can be computed on; accuracy-type metrics on it mean nothing. */
    bnn_dataset *ds = NULL;
    int rc = bnn_dataset_new(&ds, BNN_TASK_CLASSIFICATION, n, d, 0, 1);
    if (rc) return rc;
    ds->unlabelled = true;
    /* bnn_dataset_new zeroes the labels already. The generator never returns exactly 0 or 1, and
     * the whole set comes from one (seed, stream) pair, so a seed fixes it on every machine. */
    bnn_rng rng = bnn_rng_make(seed, BNN__STREAM_NOISE_OOD);
    bnn_rng_uniform(&rng, ds->x, n * d);
    /* A square feature count is given the shape of a one-channel square image (784: 28 × 28, as
     * Fashion-MNIST), so that image models and the rot/flip modifiers accept it. */
    int64_t side = (int64_t)llround(sqrt((double)d));
    while (side > 1 && side * side > d)
        side--;
    while ((side + 1) * (side + 1) <= d)
        side++;
    if (side >= 2 && side * side == d) {
        int64_t shape[3] = {1, side, side};
        bnn_dataset_set_image_shape(ds, shape);
    }
    *out = ds;
    return 0;
}
