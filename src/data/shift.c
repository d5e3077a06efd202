/* Shifted inputs: image rotation and flips applied to every example of a dataset, for evaluating
 * a model under covariate shift ("fmnist:rot=DEG", "fmnist:flip").
 *
 * The rotation follows the conventions of torchvision.transforms.functional.rotate with
 * interpolation=BILINEAR and its default fill=None, which samples through
 * torch.nn.functional.grid_sample with zero padding (an explicit fill=0 differs at the border:
 * torchvision then also multiplies by the resampled mask of the image's extent): a positive
 * angle turns the picture counter-clockwise as it is displayed (row 0 at the top), the pivot is
 * the centre of the pixel grid ((w − 1)/2, (h − 1)/2), and every output pixel is the bilinear
 * interpolation of the input at the inversely rotated position, where pixels outside the input
 * count as 0 (background). */
#include "data/data.h"

#include <math.h>
#include <string.h>

#ifdef BNN_HAVE_OPENMP
#include <omp.h>
#endif

static const double PI = 3.14159265358979323846;

/* sin and cos of an angle in degrees, exact at every multiple of 90°. sin(π/2) computed in
 * radians is 1 but cos(π/2) is 6e-17, which would make a quarter turn blend neighbouring pixels
 * by that amount instead of permuting them. remquo reduces the angle exactly to r ∈ [−45°, 45°]
 * plus a quadrant, and the quadrant is applied by swapping and negating exact values (the same
 * reduction as Julia's sind/cosd and MATLAB's sind/cosd). */
static void sincos_degrees(double degrees, double *s, double *c) {
    int quo = 0;
    double r = remquo(degrees, 90.0, &quo);
    double rad = r * (PI / 180.0);
    double s0 = sin(rad), c0 = cos(rad);
    /* quo holds at least the three low bits of the quotient with its sign, so quo mod 4 is the
     * quadrant for negative angles as well. */
    switch (((quo % 4) + 4) % 4) {
    case 0: *s = s0, *c = c0; break;
    case 1: *s = c0, *c = -s0; break;
    case 2: *s = -s0, *c = -c0; break;
    default: *s = -c0, *c = s0; break;
    }
}

/* Bilinear sampling of the zero-extended h × w image at a real position: the offsets of its four
 * neighbours (top left, top right, bottom left, bottom right; −1 outside the image, which counts
 * as 0) and the fractions between them. A position at or beyond one pixel outside the grid
 * touches no pixel: four −1 and fractions 0, which give 0. At an integer position both fractions
 * are 0 and the value is the pixel itself, exactly, since the weights are then exactly 1 and 0. */
typedef struct rot_tap {
    int64_t at[4];
    double ax, ay;
} rot_tap;

static void tap_at(rot_tap *t, int64_t h, int64_t w, double xs, double ys) {
    t->at[0] = t->at[1] = t->at[2] = t->at[3] = -1;
    t->ax = t->ay = 0.0;
    if (!(xs > -1.0 && xs < (double)w && ys > -1.0 && ys < (double)h)) return;
    const double fx = floor(xs), fy = floor(ys);
    const int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
    t->ax = xs - fx, t->ay = ys - fy;
    for (int j = 0; j < 4; j++) {
        const int64_t y = y0 + j / 2, x = x0 + j % 2;
        if (y >= 0 && y < h && x >= 0 && x < w) t->at[j] = y * w + x;
    }
}

static float tap_value(const rot_tap *t, const float *in) {
    double p[4];
    for (int j = 0; j < 4; j++) p[j] = t->at[j] >= 0 ? (double)in[t->at[j]] : 0.0;
    const double top = (1.0 - t->ax) * p[0] + t->ax * p[1];
    const double bottom = (1.0 - t->ax) * p[2] + t->ax * p[3];
    return (float)((1.0 - t->ay) * top + t->ay * bottom);
}

/* Where output pixel (r, col) of an h × w image turned by the angle whose sine and cosine are s
 * and c samples the input. Image rows grow downwards, so a counter-clockwise turn on screen is a
 * clockwise one in (column, row) coordinates. The source of output pixel p is R(−θ)·(p − centre)
 * + centre in the usual upward frame, which in (x right, y down) reads as below. With an exact
 * quarter turn (s, c ∈ {0, ±1}) the source is an exact grid point whenever the centre allows one,
 * so the result is a permutation of the input pixels. */
static void rot_source(double s, double c, int64_t h, int64_t w, int64_t r, int64_t col,
                       double *xs, double *ys) {
    const double cx = 0.5 * (double)(w - 1), cy = 0.5 * (double)(h - 1);
    const double y = (double)r - cy, x = (double)col - cx;
    *xs = cx + c * x - s * y;
    *ys = cy + s * x + c * y;
}

void bnn__image_rotate(float *out, const float *in, int64_t h, int64_t w, double degrees) {
    /* out, in: h × w, distinct buffers */
    BNN_ASSERT(out && in && out != in && h > 0 && w > 0 && isfinite(degrees));
    double s, c;
    sincos_degrees(degrees, &s, &c);
    for (int64_t r = 0; r < h; r++)
        for (int64_t col = 0; col < w; col++) {
            double xs, ys;
            rot_tap t;
            rot_source(s, c, h, w, r, col, &xs, &ys);
            tap_at(&t, h, w, xs, ys);
            out[r * w + col] = tap_value(&t, in);
        }
}

/* One angle's sampling of an h × w image, the same for every image of a dataset: a dataset's
 * rotation works it out once, and each image is then bnn__image_rotate's arithmetic in its
 * order, so the same bits. */
static void rot_plan(rot_tap *taps, int64_t h, int64_t w, double degrees) {
    double s, c;
    sincos_degrees(degrees, &s, &c);
    for (int64_t r = 0; r < h; r++)
        for (int64_t col = 0; col < w; col++) {
            double xs, ys;
            rot_source(s, c, h, w, r, col, &xs, &ys);
            tap_at(&taps[r * w + col], h, w, xs, ys);
        }
}

void bnn__image_flip_vertical(float *out, const float *in, int64_t h, int64_t w) {
    /* out, in: h × w, distinct buffers */
    BNN_ASSERT(out && in && out != in && h > 0 && w > 0);
    for (int64_t r = 0; r < h; r++)
        memcpy(out + r * w, in + (h - 1 - r) * w, (size_t)w * sizeof(float));
}

typedef enum { SHIFT_ROTATE, SHIFT_FLIP_VERTICAL } shift_op;

/* Applies one image operation to every channel of every example in place. Each example is
 * transformed into a per-thread scratch image and copied back, so memory grows by one image per
 * thread rather than by a second copy of the dataset (Fashion-MNIST's training split is 188 MB).
 * Examples are independent and every pixel is computed the same way whatever thread computes it,
 * so the result does not depend on the thread count. */
static int apply(bnn_dataset *ds, shift_op op, double degrees, const char *what) {
    if (!ds) return bnn__error(BNN_EINVAL, "%s: dataset is NULL", what);
    const int64_t ch = ds->image[0], h = ds->image[1], w = ds->image[2];
    if (ch <= 0 || h <= 0 || w <= 0 || ch * h * w != ds->d)
        return bnn__error(BNN_EINVAL,
                          "%s needs image data, but this dataset's %lld features have no "
                          "image shape",
                          what, (long long)ds->d);
    if (op == SHIFT_ROTATE && !isfinite(degrees))
        return bnn__error(BNN_EINVAL, "%s: the angle must be a finite number of degrees", what);
    int nthreads = 1;
#ifdef BNN_HAVE_OPENMP
    nthreads = omp_get_max_threads();
    if (nthreads < 1) nthreads = 1;
#endif
    const int64_t hw = h * w, n = ds->n, d = ds->d;
    float *scratch = bnn__alloc_array((int64_t)nthreads * hw, sizeof(float));
    if (!scratch)
        return bnn__error(BNN_ENOMEM, "%s: cannot allocate scratch images of %lld x %lld", what,
                          (long long)h, (long long)w);
    /* A rotation's sampling, worked out once for all the images instead of for each (eval
     * --shift rot's 13 angles of Fashion-MNIST's test set: 1.57 to 1.35 s on 2 cores, the same
     * bits, 2026-12-07). */
    rot_tap *taps = NULL;
    if (op == SHIFT_ROTATE) {
        taps = bnn__alloc_array(hw, sizeof *taps);
        if (!taps) {
            bnn__free(scratch);
            return bnn__error(BNN_ENOMEM, "%s: cannot allocate the sampling of a %lld x %lld "
                              "image", what, (long long)h, (long long)w);
        }
        rot_plan(taps, h, w, degrees);
    }
    float *x = ds->x;
    /* Threads pay off only when there is enough work; a handful of small images is faster in one
     * thread than the cost of waking a team. */
#ifdef BNN_HAVE_OPENMP
#pragma omp parallel num_threads(nthreads) if (n * d > 65536)
#endif
    {
        int tid = 0;
#ifdef BNN_HAVE_OPENMP
        tid = omp_get_thread_num();
#endif
        float *tmp = scratch + (int64_t)tid * hw;
#ifdef BNN_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t i = 0; i < n; i++) {
            for (int64_t k = 0; k < ch; k++) {
                float *img = x + i * d + k * hw;
                if (taps)
                    for (int64_t p = 0; p < hw; p++) tmp[p] = tap_value(&taps[p], img);
                else
                    bnn__image_flip_vertical(tmp, img, h, w);
                memcpy(img, tmp, (size_t)hw * sizeof(float));
            }
        }
    }
    bnn__free(taps);
    bnn__free(scratch);
    return 0;
}

int bnn__dataset_rotate(bnn_dataset *ds, double degrees) {
    return apply(ds, SHIFT_ROTATE, degrees, "rot");
}

int bnn__dataset_flip_vertical(bnn_dataset *ds) {
    return apply(ds, SHIFT_FLIP_VERTICAL, 0.0, "flip");
}
