/* Internal declarations shared by the files of the data module. Not part of the public API. */
#ifndef BNN_DATA_DATA_H
#define BNN_DATA_DATA_H

#include "core/internal.h"

#include <zlib.h>

/* Philox streams used by the data module. The high 32 bits name the purpose, so these streams
 * never meet the model's per-layer initialisation streams (0, 1, ...) or the trainer's dropout
 * streams (2^32 + epoch), and a draw here never shifts a draw there.
 *   shuffling:  2·2^32 + epoch      (bnn_permutation)
 *   toy data:   3·2^32 + generator  (one stream per generator and split; uniform OOD noise is
 *               generator 3, one stream for both splits)
 * (4·2^32 is the trainer's noise stream and 5·2^32 prediction's, in src/fit and src/predict.) */
#define BNN__STREAM_SHUFFLE ((uint64_t)2 << 32)
#define BNN__STREAM_TOY ((uint64_t)3 << 32)
#define BNN__STREAM_MOONS_TRAIN (BNN__STREAM_TOY + 0)
#define BNN__STREAM_MOONS_TEST (BNN__STREAM_TOY + 1)
#define BNN__STREAM_SINE_GAP_TRAIN (BNN__STREAM_TOY + 2)
#define BNN__STREAM_NOISE_OOD (BNN__STREAM_TOY + 3)
#define BNN__STREAM_SINE_HETERO_TRAIN (BNN__STREAM_TOY + 4)
#define BNN__STREAM_SINE_HETERO_TEST (BNN__STREAM_TOY + 5)

/* bnn_dataset_new, taking x (n × d floats from malloc, or NULL to allocate them) as the features
 * buffer: the set frees it (bnn__free is free). Loaders that already hold the features in the
 * dataset's layout hand them over instead of copying them. On failure x is not taken. */
int bnn__dataset_make(bnn_dataset **out, bnn_task task, int64_t n, int64_t d, int64_t t,
                      int64_t classes, float *x);

/* bnn_toy_moons with an explicit Philox stream, so that bnn_data_load can draw a test split
 * that is independent of the training split made from the same seed. */
int bnn__toy_moons_stream(bnn_dataset **out, int64_t n, double noise, uint64_t seed,
                          uint64_t stream);

/* n examples of d features drawn U(0, 1) from (seed, BNN__STREAM_NOISE_OOD): out-of-distribution
 * inputs ("noise", "noise:D", "noise:D:N"). Unlabeled, so the set is a classification set with one
 * class and every label 0. A square d gets the image shape (1, √d, √d). BNN_EINVAL for n or d < 1,
 * BNN_ENOMEM when n × d floats cannot be allocated. */
int bnn__noise_uniform(bnn_dataset **out, int64_t n, int64_t d, uint64_t seed);


/* Image operations for shifted inputs (src/data/shift.c). Both take one single-channel h × w image
 * (row-major) and write a new one of the same shape into out, which must not overlap in.
 *
 * bnn__image_rotate turns the picture by `degrees` (any finite value; positive is counter-
 * clockwise as displayed, row 0 at the top) about the grid centre ((w − 1)/2, (h − 1)/2), with
 * bilinear interpolation and 0 for everything that comes from outside the input, as
 * torchvision's rotate with bilinear interpolation and its default fill (None; not fill=0,
 * which also multiplies the border by the resampled mask). Multiples of 90° use exact sines
 * and cosines, so they permute pixels exactly where the grid allows it (square images, or
 * h − w even).
 *
 * bnn__image_flip_vertical turns the image upside down: out row r is in row h − 1 − r. */
void bnn__image_rotate(float *out, const float *in, int64_t h, int64_t w, double degrees);
void bnn__image_flip_vertical(float *out, const float *in, int64_t h, int64_t w);

/* Apply the operations above to every channel of every example of ds, in place (OpenMP over the
 * examples when built with it; the result is the same for any thread count). BNN_EINVAL when ds
 * has no image shape (or a non-finite angle), BNN_ENOMEM when the per-thread scratch images
 * cannot be allocated. */
int bnn__dataset_rotate(bnn_dataset *ds, double degrees);
int bnn__dataset_flip_vertical(bnn_dataset *ds);

/* BNN_EIO naming the path if it is a directory (a pipe or a device passes: it can be read). Every
 * file reader calls it first, so a directory is named as one rather than as a read error. */
int bnn__not_a_directory(const char *path);

/* Binary files read through zlib (src/data/gz.c), plain or gzip-compressed alike. Each returns 0
 * or records an error naming path and `what` (the part being read): BNN_EIO for the operating
 * system's failures, BNN_EFORMAT for a damaged gzip stream or a file that ends too soon,
 * BNN_ENOMEM. bnn__gz_read_payload allocates its buffer in growing pieces, so a header that
 * claims more data than the file holds costs about twice what is there before the truncation is
 * reported, and afterwards reads one byte more so that zlib checks a gzip member's CRC. */
int bnn__gz_open(gzFile *f, const char *path);
int bnn__gz_read_failure(gzFile f, const char *path, const char *what, size_t want, size_t got);
int bnn__gz_read_exact(gzFile f, const char *path, const char *what, unsigned char *buf,
                       size_t len);
/* bnn__gz_read_exact for a part of a larger whole: a short read reports the whole's total bytes
 * and how many of them were read (before this part, and of it). */
int bnn__gz_read_part(gzFile f, const char *path, const char *what, unsigned char *buf,
                      size_t len, size_t before, size_t total);
/* After the last of want payload bytes: reads one byte more, so that zlib reaches the end of a
 * gzip member and checks its CRC (a damaged .gz is an error), and refuses a file with bytes
 * beyond the payload (BNN_EFORMAT). */
int bnn__gz_read_end(gzFile f, const char *path, const char *what, size_t want);
int bnn__gz_read_payload(gzFile f, const char *path, const char *what, size_t want,
                         unsigned char **out);
int bnn__gz_close(gzFile f, const char *path);

#endif
