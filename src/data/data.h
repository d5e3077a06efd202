/* Internal declarations shared by the files of the data module. Not part of the public API. */
#ifndef BNN_DATA_DATA_H
#define BNN_DATA_DATA_H

#include "core/internal.h"

/* Philox streams used by the data module. The high 32 bits name the purpose, so these streams
 * never meet the model's per-layer initialisation streams (0, 1, ...) or the trainer's dropout
 * streams (2^32 + epoch), and a draw here never shifts a draw there.
 *   shuffling:  2·2^32 + epoch      (bnn_permutation)
 *   toy data:   3·2^32 + generator  (one stream per generator and split) */
#define BNN__STREAM_SHUFFLE ((uint64_t)2 << 32)
#define BNN__STREAM_TOY ((uint64_t)3 << 32)
#define BNN__STREAM_MOONS_TRAIN (BNN__STREAM_TOY + 0)
#define BNN__STREAM_MOONS_TEST (BNN__STREAM_TOY + 1)
#define BNN__STREAM_SINE_GAP_TRAIN (BNN__STREAM_TOY + 2)

/* bnn_toy_moons with an explicit Philox stream, so that bnn_data_load can draw a test split
 * that is independent of the training split made from the same seed. */
int bnn__toy_moons_stream(bnn_dataset **out, int64_t n, double noise, uint64_t seed,
                          uint64_t stream);

#endif
