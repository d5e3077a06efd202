/* Shifted and out-of-distribution inputs: the image rotation and flip (exact cases, a bilinear
 * value worked by hand, rotation invariance of a disk), the "fmnist:rot=DEG" / "fmnist:flip"
 * modifiers, uniform noise, the user's own IDX files, and the errors of bad specs. */
#include "check.h"
#include "data/data.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#ifndef BNN_TEST_TMP
#define BNN_TEST_TMP "/tmp"
#endif

static char tmp_path_buf[8][512];
static int tmp_path_next = 0;

/* A path in the scratch directory; a small ring of buffers lets a call use several at once. */
static const char *tmp_path(const char *name) {
    char *b = tmp_path_buf[tmp_path_next++ % 8];
    snprintf(b, sizeof tmp_path_buf[0], "%s/test_shift_%s", BNN_TEST_TMP, name);
    return b;
}

static bool contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* Checks that rc is the expected code and that the detail names each given fragment. */
static void expect_error(int rc, int code, ...) {
    CHECK_EQ_INT(rc, code);
    va_list ap;
    va_start(ap, code);
    for (const char *frag; (frag = va_arg(ap, const char *));) {
        if (!contains(bnn_last_error(), frag)) {
            fprintf(stderr, "  detail '%s' lacks '%s'\n", bnn_last_error(), frag);
            CHECK(contains(bnn_last_error(), frag));
        }
    }
    va_end(ap);
}

/* Largest |a − b| over n values. */
static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double dd = fabs((double)a[i] - (double)b[i]);
        if (dd > m) m = dd;
    }
    return m;
}

/* An image whose every pixel differs, so that any wrong permutation shows. */
static void fill_distinct(float *img, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        img[i] = (float)(i + 1);
}

static void flip_horizontal(float *out, const float *in, int64_t h, int64_t w) {
    for (int64_t r = 0; r < h; r++)
        for (int64_t c = 0; c < w; c++)
            out[r * w + c] = in[r * w + (w - 1 - c)];
}

/* ------------------------------------------------------------------ rotation */

static void test_rotate_identity(void) {
    enum { H = 5, W = 7 };
    float in[H * W], out[H * W];
    bnn_rng rng = bnn_rng_make(11, 0);
    bnn_rng_uniform(&rng, in, H * W);
    /* A zero angle samples every pixel at its own grid point with weights exactly 1 and 0. */
    bnn__image_rotate(out, in, H, W, 0.0);
    CHECK(memcmp(out, in, sizeof in) == 0);
    bnn__image_rotate(out, in, H, W, -0.0);
    CHECK(memcmp(out, in, sizeof in) == 0);
    /* Full turns are within float rounding of the identity (here exact too, since the angle is
     * reduced in degrees before any sine is taken). */
    const double turns[] = {360.0, -360.0, 720.0};
    for (int t = 0; t < 3; t++) {
        bnn__image_rotate(out, in, H, W, turns[t]);
        CHECK_NEAR(max_abs_diff(out, in, H * W), 0.0, 1e-5);
    }
}

/* A quarter turn counter-clockwise is an exact index permutation. For an h × w grid the source of
 * output (r, c) is row c + (h − w)/2, column (w − 1)/2 + (h − 1)/2 − r, which is a grid point when
 * h − w is even: odd and even squares both pivot on their centre (a pixel for odd sizes, the
 * corner shared by four pixels for even ones) and map the grid onto itself. */
static void check_quarter_turn(int64_t h, int64_t w) {
    float in[64], out[64], back[64];
    REQUIRE(h * w <= 64 && (h - w) % 2 == 0);
    fill_distinct(in, h * w);
    bnn__image_rotate(out, in, h, w, 90.0);
    int bad = 0;
    for (int64_t r = 0; r < h; r++)
        for (int64_t c = 0; c < w; c++) {
            int64_t rs = c + (h - w) / 2, cs = (w - 1 + h - 1) / 2 - r;
            float want = (rs >= 0 && rs < h && cs >= 0 && cs < w) ? in[rs * w + cs] : 0.0f;
            if (out[r * w + c] != want) bad++;
        }
    if (bad)
        fprintf(stderr, "  quarter turn of %lld x %lld: %d pixels wrong\n", (long long)h,
                (long long)w, bad);
    CHECK_EQ_INT(bad, 0);
    if (h == w) {
        /* A square loses nothing, so the opposite turn restores it bit for bit; 270 is −90. */
        bnn__image_rotate(back, out, h, w, -90.0);
        CHECK(memcmp(back, in, (size_t)(h * w) * sizeof(float)) == 0);
        bnn__image_rotate(back, in, h, w, 270.0);
        float cw[64];
        bnn__image_rotate(cw, in, h, w, -90.0);
        CHECK(memcmp(back, cw, (size_t)(h * w) * sizeof(float)) == 0);
    }
}

static void test_rotate_quarter(void) {
    /* The direction on a 2 × 2 picture: [[1, 2], [3, 4]] turned counter-clockwise (numpy.rot90)
     * is [[2, 4], [1, 3]]. */
    const float in[4] = {1, 2, 3, 4}, want[4] = {2, 4, 1, 3};
    float out[4];
    bnn__image_rotate(out, in, 2, 2, 90.0);
    CHECK(memcmp(out, want, sizeof want) == 0);
    check_quarter_turn(5, 5); /* odd: the centre is pixel (2, 2) */
    check_quarter_turn(4, 4); /* even: the centre is (1.5, 1.5), between pixels */
    check_quarter_turn(1, 1);
    check_quarter_turn(4, 6); /* not square, h − w even: two columns fall outside */
    check_quarter_turn(7, 3);
}

static void test_rotate_half(void) {
    /* Half a turn maps (r, c) to (h − 1 − r, w − 1 − c) for every size, odd or even. */
    const int64_t sizes[][2] = {{4, 6}, {5, 3}, {1, 4}, {6, 6}};
    for (int s = 0; s < 4; s++) {
        int64_t h = sizes[s][0], w = sizes[s][1];
        float in[36], rot[36], a[36], b[36];
        fill_distinct(in, h * w);
        bnn__image_rotate(rot, in, h, w, 180.0);
        flip_horizontal(a, in, h, w);
        bnn__image_flip_vertical(b, a, h, w);
        CHECK(memcmp(rot, b, (size_t)(h * w) * sizeof(float)) == 0);
        bnn__image_rotate(a, in, h, w, -180.0);
        CHECK(memcmp(rot, a, (size_t)(h * w) * sizeof(float)) == 0);
    }
}

/* Bilinear values worked by hand. A 2 × 3 image turned by 90° has its centre at (x, y) = (1, 0.5)
 * and samples output (r, c) at x = 1.5 − r, y = c − 0.5: every source lies halfway between four
 * pixels, so each value is the mean of four neighbours, with the zero background beyond row 0
 * and row 1. */
static void test_rotate_bilinear(void) {
    const float in[6] = {1, 2, 3, 4, 5, 6};
    float out[6];
    bnn__image_rotate(out, in, 2, 3, 90.0);
    const float want[6] = {
        0.25f * (0 + 0 + 2 + 3), /* (0, 0): x 1.5, y −0.5 */
        0.25f * (2 + 3 + 5 + 6), /* (0, 1): x 1.5, y 0.5 */
        0.25f * (5 + 6 + 0 + 0), /* (0, 2): x 1.5, y 1.5 */
        0.25f * (0 + 0 + 1 + 2), /* (1, 0): x 0.5, y −0.5 */
        0.25f * (1 + 2 + 4 + 5), /* (1, 1): x 0.5, y 0.5 */
        0.25f * (4 + 5 + 0 + 0), /* (1, 2): x 0.5, y 1.5 */
    };
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(out[i], want[i], 1e-6);

    /* A general angle: 3 × 3, 45°. Output (0, 1) is at (x, y) = (0, −1) from the centre (1, 1),
     * and its source is (1 + sin 45°, 1 − cos 45°) = (1.7071, 0.2929): between columns 1, 2 and
     * rows 0, 1 with fractions ax = ay' = √2/2 and ay = 1 − √2/2. */
    const float g[9] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f};
    float o[9];
    bnn__image_rotate(o, g, 3, 3, 45.0);
    double ax = sqrt(0.5), ay = 1.0 - sqrt(0.5);
    double top = (1 - ax) * g[1] + ax * g[2], bottom = (1 - ax) * g[4] + ax * g[5];
    CHECK_NEAR(o[1], (1 - ay) * top + ay * bottom, 1e-6);
    /* The centre pixel is the pivot and never moves. */
    CHECK(o[4] == g[4]);
}

/* Everything whose source falls a pixel or more outside the input is background. */
static void test_rotate_outside(void) {
    enum { N = 8 };
    float ones[N * N], out[N * N];
    for (int i = 0; i < N * N; i++)
        ones[i] = 1.0f;
    bnn__image_rotate(out, ones, N, N, 45.0);
    /* The corners are 3.5·√2 = 4.95 from the centre; turned by 45° their sources lie on an axis
     * at 4.95, beyond the edge row at 3.5 by more than one pixel. */
    CHECK(out[0] == 0.0f && out[N - 1] == 0.0f && out[N * (N - 1)] == 0.0f &&
          out[N * N - 1] == 0.0f);
    /* Pixels within 2.5 of the centre take all four neighbours from inside: 1 up to rounding. */
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++) {
            double dy = r - 3.5, dx = c - 3.5;
            if (dx * dx + dy * dy < 2.5 * 2.5) CHECK_NEAR(out[r * N + c], 1.0, 1e-6);
            CHECK(out[r * N + c] >= 0.0f && out[r * N + c] <= 1.0f + 1e-6f);
        }
    /* A quarter turn of a non-square image pushes whole columns outside; they are 0 exactly. */
    float tall[12], q[12];
    for (int i = 0; i < 12; i++)
        tall[i] = 1.0f;
    bnn__image_rotate(q, tall, 6, 2, 90.0); /* h 6, w 2: rows 0, 1 and 4, 5 come from outside */
    for (int c = 0; c < 2; c++) {
        CHECK(q[0 * 2 + c] == 0.0f && q[5 * 2 + c] == 0.0f);
        CHECK(q[2 * 2 + c] == 1.0f && q[3 * 2 + c] == 1.0f);
    }
}

/* A disk about the centre is invariant under rotation; only its rim changes, by interpolation. */
static void check_disk(int64_t n, double radius) {
    float disk[32 * 32], out[32 * 32];
    REQUIRE(n <= 32);
    double cen = 0.5 * (double)(n - 1), mass_in = 0.0, mass_out = 0.0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < n; c++) {
            double rho = hypot((double)r - cen, (double)c - cen);
            disk[r * n + c] = rho <= radius ? 1.0f : 0.0f;
            mass_in += disk[r * n + c];
        }
    bnn__image_rotate(out, disk, n, n, 45.0);
    /* A pixel at distance ρ samples at distance ρ, from neighbours within √2 of that point, so
     * every pixel farther than √2 from the rim is reproduced up to rounding. */
    double worst_inner = 0.0, worst_rim = 0.0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t c = 0; c < n; c++) {
            double rho = hypot((double)r - cen, (double)c - cen);
            double dd = fabs((double)out[r * n + c] - (double)disk[r * n + c]);
            mass_out += out[r * n + c];
            if (fabs(rho - radius) > 1.5) {
                if (dd > worst_inner) worst_inner = dd;
            } else if (dd > worst_rim) {
                worst_rim = dd;
            }
        }
    CHECK_NEAR(worst_inner, 0.0, 1e-6);
    CHECK(worst_rim <= 1.0);
    /* The disk's area survives the turn to within a few percent (the rim is ~2πr pixels whose
     * values move between 0 and 1 by interpolation, not all one way). */
    CHECK_REL(mass_out, mass_in, 0.03, 1.0);
}

static void test_rotate_disk(void) {
    check_disk(32, 10.0); /* even size: centre between pixels */
    check_disk(31, 9.0);  /* odd size: centre on a pixel */
}

/* A dataset's rotation (one sampling plan for all its images) gives, image by image and channel
 * by channel, the bits of bnn__image_rotate, the per-pixel definition: square and oblong images,
 * several channels, angles with and without exact quarter turns. */
static void test_rotate_dataset_matches_image(void) {
    const int64_t shapes[][3] = {{1, 28, 28}, {3, 5, 9}, {2, 8, 3}};
    const double angles[] = {37.0, -15.5, 90.0, 180.25, 1e-3};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int64_t *sh = shapes[si], hw = sh[1] * sh[2], d = sh[0] * hw, n = 7;
        for (size_t ai = 0; ai < sizeof angles / sizeof angles[0]; ai++) {
            bnn_dataset *ds = NULL;
            REQUIRE(bnn_dataset_new(&ds, BNN_TASK_CLASSIFICATION, n, d, 0, 2) == 0);
            bnn_dataset_set_image_shape(ds, sh);
            float *x = bnn_dataset_x(ds);
            for (int64_t i = 0; i < n * d; i++) x[i] = (float)sin(0.37 * (double)i) - 0.25f;
            float *orig = malloc((size_t)(n * d) * sizeof(float));
            float *want = malloc((size_t)hw * sizeof(float));
            REQUIRE(orig && want);
            memcpy(orig, x, (size_t)(n * d) * sizeof(float));
            REQUIRE(bnn__dataset_rotate(ds, angles[ai]) == 0);
            int64_t bad = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t k = 0; k < sh[0]; k++) {
                    bnn__image_rotate(want, orig + i * d + k * hw, sh[1], sh[2], angles[ai]);
                    bad += memcmp(want, x + i * d + k * hw, (size_t)hw * sizeof(float)) != 0;
                }
            CHECK_EQ_INT(bad, 0);
            free(orig), free(want);
            bnn_dataset_free(ds);
        }
    }
}

static void test_flip(void) {
    enum { H = 3, W = 4 };
    float in[H * W], out[H * W], back[H * W];
    fill_distinct(in, H * W);
    bnn__image_flip_vertical(out, in, H, W);
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++)
            CHECK(out[r * W + c] == in[(H - 1 - r) * W + c]);
    bnn__image_flip_vertical(back, out, H, W);
    CHECK(memcmp(back, in, sizeof in) == 0);
}

/* ------------------------------------------------------------------ noise */

static void test_noise(void) {
    struct bnn_data_params p = bnn_data_default_params();
    p.seed = 3;
    bnn_dataset *a = NULL, *b = NULL;
    REQUIRE(bnn_data_load(&a, "noise", &p) == 0);
    CHECK_EQ_INT(bnn_dataset_n(a), 10000);
    CHECK_EQ_INT(bnn_dataset_dim(a), 784);
    CHECK_EQ_INT(bnn_dataset_task(a), BNN_TASK_CLASSIFICATION);
    CHECK_EQ_INT(bnn_dataset_outputs(a), 1);
    int64_t shape[3];
    bnn_dataset_image_shape(a, shape);
    CHECK(shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    const float *x = bnn_dataset_cx(a);
    const int64_t total = 10000 * 784;
    double sum = 0.0, sq = 0.0;
    int outside = 0;
    for (int64_t i = 0; i < total; i++) {
        if (!(x[i] > 0.0f && x[i] < 1.0f)) outside++;
        sum += x[i];
        sq += (double)x[i] * x[i];
    }
    CHECK_EQ_INT(outside, 0);
    double mean = sum / (double)total;
    /* The standard error of the mean of 7.84 million U(0, 1) draws is 1/√12 / 2800 = 1e-4. */
    CHECK_NEAR(mean, 0.5, 1e-3);
    CHECK_NEAR(sq / (double)total - mean * mean, 1.0 / 12.0, 1e-3);
    int labelled = 0;
    for (int64_t i = 0; i < 10000; i++)
        labelled += bnn_dataset_clabels(a)[i] != 0;
    CHECK_EQ_INT(labelled, 0);

    /* The seed fixes the set; the split does not change it; another seed changes it. */
    p.split = "test";
    REQUIRE(bnn_data_load(&b, "noise", &p) == 0);
    CHECK(memcmp(bnn_dataset_cx(a), bnn_dataset_cx(b), (size_t)total * sizeof(float)) == 0);
    bnn_dataset_free(b);
    p.seed = 4;
    REQUIRE(bnn_data_load(&b, "noise", &p) == 0);
    CHECK(memcmp(bnn_dataset_cx(a), bnn_dataset_cx(b), (size_t)total * sizeof(float)) != 0);
    bnn_dataset_free(b);
    /* The public generator of the same stream gives the same values (one (seed, stream) pair). */
    float first[8];
    bnn_rng rng = bnn_rng_make(3, BNN__STREAM_NOISE_OOD);
    bnn_rng_uniform(&rng, first, 8);
    CHECK(memcmp(first, x, sizeof first) == 0);
    bnn_dataset_free(a);

    REQUIRE(bnn_data_load(&a, "noise:2:50", &p) == 0);
    CHECK_EQ_INT(bnn_dataset_n(a), 50);
    CHECK_EQ_INT(bnn_dataset_dim(a), 2);
    CHECK_EQ_INT(bnn_dataset_outputs(a), 1);
    bnn_dataset_image_shape(a, shape);
    CHECK(shape[0] == 0 && shape[1] == 0 && shape[2] == 0);
    bnn_dataset_free(a);
    REQUIRE(bnn_data_load(&a, "noise:2", &p) == 0);
    CHECK_EQ_INT(bnn_dataset_n(a), 10000);
    CHECK_EQ_INT(bnn_dataset_dim(a), 2);
    bnn_dataset_free(a);
    /* Every digit counts (9 features: a 3 × 3 image); one feature is no image. */
    REQUIRE(bnn_data_load(&a, "noise:9:4", &p) == 0);
    CHECK_EQ_INT(bnn_dataset_n(a), 4);
    CHECK_EQ_INT(bnn_dataset_dim(a), 9);
    bnn_dataset_image_shape(a, shape);
    CHECK(shape[0] == 1 && shape[1] == 3 && shape[2] == 3);
    bnn_dataset_free(a);
    REQUIRE(bnn_data_load(&a, "noise:1:5", &p) == 0);
    bnn_dataset_image_shape(a, shape);
    CHECK(shape[0] == 0 && shape[1] == 0 && shape[2] == 0);
    bnn_dataset_free(a);

    /* Modifiers apply to square noise like any image set, in the order written. */
    REQUIRE(bnn_data_load(&a, "noise:16:3", &p) == 0);
    REQUIRE(bnn_data_load(&b, "noise:16:3:rot=90:flip", &p) == 0);
    bnn_dataset_image_shape(b, shape);
    CHECK(shape[0] == 1 && shape[1] == 4 && shape[2] == 4);
    for (int i = 0; i < 3; i++) {
        float t[16], want[16];
        bnn__image_rotate(t, bnn_dataset_cx(a) + 16 * i, 4, 4, 90.0);
        bnn__image_flip_vertical(want, t, 4, 4);
        CHECK(memcmp(bnn_dataset_cx(b) + 16 * i, want, sizeof want) == 0);
    }
    bnn_dataset_free(a), bnn_dataset_free(b);
}

/* The threaded pass over examples gives the same bits as one thread. */
static void test_threads_deterministic(void) {
    struct bnn_data_params p = bnn_data_default_params();
    bnn_dataset *a = NULL, *b = NULL;
    int saved = bnn_get_threads();
    bnn_set_threads(1);
    REQUIRE(bnn_data_load(&a, "noise:784:300:rot=17.5:flip", &p) == 0);
    bnn_set_threads(4);
    REQUIRE(bnn_data_load(&b, "noise:784:300:rot=17.5:flip", &p) == 0);
    bnn_set_threads(saved);
    CHECK(memcmp(bnn_dataset_cx(a), bnn_dataset_cx(b), 300 * 784 * sizeof(float)) == 0);
    bnn_dataset_free(a), bnn_dataset_free(b);
}

/* ------------------------------------------------------------------ IDX files */

static void write_file(const char *path, const unsigned char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    REQUIRE(fwrite(data, 1, len, f) == len);
    REQUIRE(fclose(f) == 0);
}

/* An IDX file of u8 elements: magic 00 00 08 ndim, big-endian u32 dims, then the payload. */
static void write_idx(const char *path, int ndim, const uint32_t *dims,
                      const unsigned char *payload, size_t plen) {
    unsigned char buf[512];
    size_t o = 0;
    buf[o++] = 0, buf[o++] = 0, buf[o++] = 0x08, buf[o++] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[o++] = (unsigned char)(dims[i] >> 24), buf[o++] = (unsigned char)(dims[i] >> 16);
        buf[o++] = (unsigned char)(dims[i] >> 8), buf[o++] = (unsigned char)dims[i];
    }
    REQUIRE(o + plen <= sizeof buf);
    memcpy(buf + o, payload, plen);
    write_file(path, buf, o + plen);
}

static const unsigned char PIXELS[18] = {0,  255, 10,  20, 30, 40, 50, 60, 70,
                                         80, 90,  100, 1,  2,  3,  4,  5,  254};

static void write_idx_set(const char *img, const char *lab) {
    const uint32_t di[3] = {3, 2, 3}, dl[1] = {3};
    const unsigned char labels[3] = {0, 4, 2};
    write_idx(img, 3, di, PIXELS, sizeof PIXELS);
    write_idx(lab, 1, dl, labels, 3);
}

static void test_idx(void) {
    const char *img = tmp_path("images-idx3-ubyte"), *lab = tmp_path("labels-idx1-ubyte");
    write_idx_set(img, lab);
    struct bnn_data_params p = bnn_data_default_params();
    char spec[1200];
    bnn_dataset *ds = NULL;

    /* Images only: unlabeled, one class. */
    snprintf(spec, sizeof spec, "idx:%s", img);
    REQUIRE(bnn_data_load(&ds, spec, &p) == 0);
    CHECK_EQ_INT(bnn_dataset_n(ds), 3);
    CHECK_EQ_INT(bnn_dataset_dim(ds), 6);
    CHECK_EQ_INT(bnn_dataset_outputs(ds), 1);
    int64_t shape[3];
    bnn_dataset_image_shape(ds, shape);
    CHECK(shape[0] == 1 && shape[1] == 2 && shape[2] == 3);
    for (int i = 0; i < 18; i++)
        CHECK(bnn_dataset_cx(ds)[i] == (float)PIXELS[i] / 255.0f);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(bnn_dataset_clabels(ds)[i], 0);
    bnn_dataset_free(ds);

    /* With labels: classes = the largest label + 1; both splits read the same files. */
    snprintf(spec, sizeof spec, "idx:%s,%s", img, lab);
    p.split = "test";
    REQUIRE(bnn_data_load(&ds, spec, &p) == 0);
    CHECK_EQ_INT(bnn_dataset_n(ds), 3);
    CHECK_EQ_INT(bnn_dataset_outputs(ds), 5);
    CHECK_EQ_INT(bnn_dataset_clabels(ds)[1], 4);
    CHECK_EQ_INT(bnn_dataset_clabels(ds)[2], 2);
    CHECK(bnn_dataset_cx(ds)[1] == 1.0f);
    bnn_dataset_free(ds);
    /* The largest label in the last row counts too. */
    const char *lab_last = tmp_path("labels-last-idx1-ubyte");
    const uint32_t dl3[1] = {3};
    const unsigned char last_top[3] = {0, 2, 4};
    write_idx(lab_last, 1, dl3, last_top, 3);
    snprintf(spec, sizeof spec, "idx:%s,%s", img, lab_last);
    REQUIRE(bnn_data_load(&ds, spec, &p) == 0);
    CHECK_EQ_INT(bnn_dataset_outputs(ds), 5);
    bnn_dataset_free(ds);

    /* A rank-2 file is a set of flat vectors: no image shape. */
    const char *flat = tmp_path("flat-idx2-ubyte");
    const uint32_t d2[2] = {2, 3};
    write_idx(flat, 2, d2, PIXELS, 6);
    snprintf(spec, sizeof spec, "idx:%s", flat);
    REQUIRE(bnn_data_load(&ds, spec, &p) == 0);
    CHECK_EQ_INT(bnn_dataset_n(ds), 2);
    CHECK_EQ_INT(bnn_dataset_dim(ds), 3);
    bnn_dataset_image_shape(ds, shape);
    CHECK(shape[0] == 0);
    bnn_dataset_free(ds);

    /* Failures of the images-only reader. */
    ds = (bnn_dataset *)&ds;
    const char *missing = tmp_path("no-such-file");
    snprintf(spec, sizeof spec, "idx:%s", missing);
    expect_error(bnn_data_load(&ds, spec, &p), BNN_EIO, missing, "cannot open", NULL);
    CHECK(ds == NULL);
    snprintf(spec, sizeof spec, "idx:%s,%s", img, missing);
    expect_error(bnn_data_load(&ds, spec, &p), BNN_EIO, missing, NULL);
    const char *trunc = tmp_path("truncated-idx3-ubyte");
    unsigned char raw[64];
    const uint32_t di[3] = {3, 2, 3};
    write_idx(trunc, 3, di, PIXELS, sizeof PIXELS);
    FILE *f = fopen(trunc, "rb");
    REQUIRE(f != NULL);
    size_t got = fread(raw, 1, sizeof raw, f);
    REQUIRE(fclose(f) == 0);
    write_file(trunc, raw, got - 5);
    snprintf(spec, sizeof spec, "idx:%s", trunc);
    expect_error(bnn_data_load(&ds, spec, &p), BNN_EFORMAT, "truncated", NULL);
    raw[2] = 0x0D; /* float32 images */
    write_file(trunc, raw, got);
    expect_error(bnn_data_load(&ds, spec, &p), BNN_EFORMAT, "unsigned bytes", NULL);
    raw[2] = 0x08, raw[0] = 7;
    write_file(trunc, raw, got);
    expect_error(bnn_data_load(&ds, spec, &p), BNN_EFORMAT, "magic", NULL);
    write_file(trunc, raw, 0);
    expect_error(bnn_data_load(&ds, spec, &p), BNN_EFORMAT, "empty", NULL);
    expect_error(bnn_data_load(&ds, "idx:", &p), BNN_EINVAL, "idx:IMAGES", NULL);
    expect_error(bnn_data_load(&ds, "idx:a,", &p), BNN_EINVAL, "empty file name", NULL);
    expect_error(bnn_data_load(&ds, "idx:a,b,c", &p), BNN_EINVAL, "more than one comma", NULL);
    CHECK(ds == NULL);
}

/* ------------------------------------------------------------------ spec modifiers */

/* fmnist:rot / fmnist:flip on both splits, on small files with the real names. */
static void test_fmnist_modifiers(void) {
    const char *saved = getenv("BNN_FMNIST_DIR");
    char *saved_copy = saved ? strdup(saved) : NULL;
    const char *dir = tmp_path("fmnist");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    REQUIRE(system(cmd) == 0);
    char img[1024], lab[1024];
    const char *prefix[2] = {"train", "t10k"};
    for (int s = 0; s < 2; s++) {
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte", dir, prefix[s]);
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte", dir, prefix[s]);
        write_idx_set(img, lab);
    }
    REQUIRE(setenv("BNN_FMNIST_DIR", dir, 1) == 0);

    const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        struct bnn_data_params p = bnn_data_default_params();
        p.split = splits[s];
        bnn_dataset *plain = NULL, *ds = NULL;
        REQUIRE(bnn_data_load(&plain, "fmnist", &p) == 0);
        const float *x0 = bnn_dataset_cx(plain);

        /* Each modifier alone, and two in both orders (they do not commute). */
        const char *specs[4] = {"fmnist:rot=30", "fmnist:flip", "fmnist:rot=-15:flip",
                                "fmnist:flip:rot=-15"};
        for (int k = 0; k < 4; k++) {
            REQUIRE(bnn_data_load(&ds, specs[k], &p) == 0);
            CHECK_EQ_INT(bnn_dataset_n(ds), 3);
            CHECK_EQ_INT(bnn_dataset_outputs(ds), 10);
            CHECK(memcmp(bnn_dataset_clabels(ds), bnn_dataset_clabels(plain),
                         3 * sizeof(int32_t)) == 0);
            int64_t shape[3];
            bnn_dataset_image_shape(ds, shape);
            CHECK(shape[0] == 1 && shape[1] == 2 && shape[2] == 3);
            for (int i = 0; i < 3; i++) {
                float a[6], want[6];
                const float *src = x0 + 6 * i;
                if (k == 0) bnn__image_rotate(want, src, 2, 3, 30.0);
                if (k == 1) bnn__image_flip_vertical(want, src, 2, 3);
                if (k == 2) {
                    bnn__image_rotate(a, src, 2, 3, -15.0);
                    bnn__image_flip_vertical(want, a, 2, 3);
                }
                if (k == 3) {
                    bnn__image_flip_vertical(a, src, 2, 3);
                    bnn__image_rotate(want, a, 2, 3, -15.0);
                }
                CHECK(memcmp(bnn_dataset_cx(ds) + 6 * i, want, sizeof want) == 0);
            }
            bnn_dataset_free(ds);
        }
        bnn_dataset_free(plain);
    }

    if (saved_copy)
        setenv("BNN_FMNIST_DIR", saved_copy, 1);
    else
        unsetenv("BNN_FMNIST_DIR");
    free(saved_copy);
}

static void test_bad_specs(void) {
    struct bnn_data_params p = bnn_data_default_params();
    bnn_dataset *ds = (bnn_dataset *)&p;
    /* Modifiers are checked before any data is read, so these fail the same with or without
     * Fashion-MNIST installed. */
    expect_error(bnn_data_load(&ds, "fmnist:rot=abc", &p), BNN_EINVAL, "fmnist:rot=abc", "'abc'",
                 "rot=DEG", NULL);
    CHECK(ds == NULL);
    expect_error(bnn_data_load(&ds, "fmnist:rot", &p), BNN_EINVAL, "needs an angle", NULL);
    expect_error(bnn_data_load(&ds, "fmnist:rot=", &p), BNN_EINVAL, "needs an angle", NULL);
    expect_error(bnn_data_load(&ds, "fmnist:rot=15x", &p), BNN_EINVAL, "'15x'", NULL);
    expect_error(bnn_data_load(&ds, "fmnist:rot=inf", &p), BNN_EINVAL, "finite", NULL);
    expect_error(bnn_data_load(&ds, "fmnist:rot=nan", &p), BNN_EINVAL, "finite", NULL);
    expect_error(bnn_data_load(&ds, "fmnist:rot= 15", &p), BNN_EINVAL, "not an angle", NULL);
    expect_error(bnn_data_load(&ds, "fmnist:rot=0x10", &p), BNN_EINVAL, "'0x10'", NULL); /* decimal */
    expect_error(bnn_data_load(&ds, "fmnist:frob", &p), BNN_EINVAL, "unknown modifier 'frob'",
                 "rot=DEG", "flip", NULL);
    expect_error(bnn_data_load(&ds, "fmnist:flip:frob", &p), BNN_EINVAL, "'frob'", NULL);
    expect_error(bnn_data_load(&ds, "fmnist:", &p), BNN_EINVAL, "empty modifier", NULL);
    expect_error(bnn_data_load(&ds, "fmnist::flip", &p), BNN_EINVAL, "empty modifier", NULL);
    expect_error(bnn_data_load(&ds, "noise:0", &p), BNN_EINVAL, "features D", ">= 1", NULL);
    expect_error(bnn_data_load(&ds, "noise:2:0", &p), BNN_EINVAL, "examples N", NULL);
    expect_error(bnn_data_load(&ds, "noise:x", &p), BNN_EINVAL, "'x'", "noise:D:N", NULL);
    expect_error(bnn_data_load(&ds, "noise:-3", &p), BNN_EINVAL, "'-3'", NULL);
    expect_error(bnn_data_load(&ds, "noise:99999999999999999999", &p), BNN_EINVAL, "whole number",
                 NULL);
    expect_error(bnn_data_load(&ds, "noise:2:5:7", &p), BNN_EINVAL, "unknown modifier '7'", NULL);
    /* Counts come before the modifiers; an angle that underflows is no angle. */
    expect_error(bnn_data_load(&ds, "noise:16:flip:3", &p), BNN_EINVAL, "unknown modifier '3'",
                 NULL);
    expect_error(bnn_data_load(&ds, "noise:4:2:rot=1e-400", &p), BNN_EINVAL, "not an angle", NULL);
    /* At most 16 modifiers. */
    char many[256] = "noise:4:2";
    for (int i = 0; i < 16; i++)
        strcat(many, ":flip");
    REQUIRE(bnn_data_load(&ds, many, &p) == 0);
    bnn_dataset_free(ds);
    strcat(many, ":flip");
    expect_error(bnn_data_load(&ds, many, &p), BNN_EINVAL, "more than 16 modifiers", NULL);
    CHECK(ds == NULL);
    /* rot and flip need an image shape. */
    expect_error(bnn_data_load(&ds, "moons:rot=90", &p), BNN_EINVAL, "moons:rot=90", "image", NULL);
    p.split = "test";
    expect_error(bnn_data_load(&ds, "sine-gap:flip", &p), BNN_EINVAL, "image", NULL);
    expect_error(bnn_data_load(&ds, "noise:2:50:rot=45", &p), BNN_EINVAL, "image", NULL);
    CHECK(ds == NULL);
    /* An unknown name lists every valid spec. */
    expect_error(bnn_data_load(&ds, "mnist:rot=5", &p), BNN_EINVAL, "unknown dataset", "fmnist",
                 "moons", "sine-gap", "noise:D:N", "csv:PATH", "idx:IMAGES,LABELS", "rot=DEG",
                 "flip", NULL);
    expect_error(bnn_data_load(&ds, "fmnistx", &p), BNN_EINVAL, "unknown dataset", NULL);
    expect_error(bnn_data_load(&ds, "idx", &p), BNN_EINVAL, "unknown dataset", NULL);
    expect_error(bnn_data_load(&ds, "moon", &p), BNN_EINVAL, "unknown dataset", NULL);
    expect_error(bnn_data_load(&ds, "sine", &p), BNN_EINVAL, "unknown dataset", NULL);
    CHECK(ds == NULL);
}

/* ------------------------------------------------------------------ installed Fashion-MNIST */

static void test_fmnist_installed(void) {
    const char *dir = getenv("BNN_FMNIST_DIR");
    if (!dir || !*dir) dir = "/usr/share/datasets/fashion-mnist";
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/t10k-images-idx3-ubyte.gz", dir);
    FILE *f = fopen(probe, "rb");
    if (!f) {
        fprintf(stderr,
                "note: %s not found; skipping the rotated Fashion-MNIST check "
                "(apt-get install dataset-fashion-mnist provides it)\n",
                probe);
        return;
    }
    fclose(f);
    struct bnn_data_params p = bnn_data_default_params();
    p.split = "test";
    bnn_dataset *plain = NULL, *rot = NULL;
    int rc = bnn_data_load(&plain, "fmnist", &p);
    if (!rc) rc = bnn_data_load(&rot, "fmnist:rot=90", &p);
    if (rc) fprintf(stderr, "  fmnist: %s\n", bnn_last_error());
    REQUIRE(rc == 0);
    CHECK_EQ_INT(bnn_dataset_n(rot), 10000);
    CHECK_EQ_INT(bnn_dataset_dim(rot), 784);
    CHECK_EQ_INT(bnn_dataset_outputs(rot), 10);
    CHECK(memcmp(bnn_dataset_clabels(rot), bnn_dataset_clabels(plain), 10000 * sizeof(int32_t)) ==
          0);
    /* The rotation changed the pictures... */
    CHECK(memcmp(bnn_dataset_cx(rot), bnn_dataset_cx(plain), 784 * sizeof(float)) != 0);
    /* ...and turning image 0 back by −90° restores it. A 28 × 28 grid maps onto itself under a
     * quarter turn, so this holds everywhere; the interior is the promise for any angle. */
    float back[784];
    bnn__image_rotate(back, bnn_dataset_cx(rot), 28, 28, -90.0);
    const float *orig = bnn_dataset_cx(plain);
    double worst = 0.0;
    for (int r = 2; r < 26; r++)
        for (int c = 2; c < 26; c++) {
            double dd = fabs((double)back[r * 28 + c] - (double)orig[r * 28 + c]);
            if (dd > worst) worst = dd;
        }
    CHECK_NEAR(worst, 0.0, 1e-6);
    CHECK(memcmp(back, orig, sizeof back) == 0);
    bnn_dataset_free(plain), bnn_dataset_free(rot);
}

/* Bilinear interpolation reproduces a linear function exactly, so a rotated plane
 * f(x, y) = 0.3x − 0.7y + 2 must equal f at each output pixel's source point R(−θ)(p − c) + c
 * wherever that point lies inside the grid. The source here comes from sin and cos in radians,
 * independently of the library's reduction to a quadrant; the angles cover all four quadrants
 * away from the multiples of 90° (where sine or cosine vanishes and a sign slip hides). */
static void test_rotate_plane(void) {
    enum { H = 9, W = 11 };
    float in[H * W], out[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) in[y * W + x] = (float)(0.3 * x - 0.7 * y + 2.0);
    const double angles[] = {30, 120, 210, 300, -60, -150, 100, 250, 400, -290};
    const double cx = 0.5 * (W - 1), cy = 0.5 * (H - 1);
    for (size_t a = 0; a < sizeof angles / sizeof angles[0]; a++) {
        bnn__image_rotate(out, in, H, W, angles[a]);
        const double t = angles[a] * 3.14159265358979323846 / 180.0, s = sin(t), c = cos(t);
        int checked = 0;
        double worst = 0;
        for (int r = 0; r < H; r++)
            for (int col = 0; col < W; col++) {
                const double x = col - cx, y = r - cy;
                const double xs = cx + c * x - s * y, ys = cy + s * x + c * y;
                if (xs < 0 || xs > W - 1 || ys < 0 || ys > H - 1) continue;
                worst = fmax(worst, fabs(out[r * W + col] - (0.3 * xs - 0.7 * ys + 2.0)));
                checked++;
            }
        if (!(worst < 1e-5)) fprintf(stderr, "rotate %g: worst error %.3g\n", angles[a], worst);
        CHECK(worst < 1e-5 && checked > 40);
    }
}

int main(void) {
    test_rotate_plane();
    test_rotate_identity();
    test_rotate_quarter();
    test_rotate_half();
    test_rotate_bilinear();
    test_rotate_outside();
    test_rotate_disk();
    test_rotate_dataset_matches_image();
    test_flip();
    test_noise();
    test_threads_deterministic();
    test_idx();
    test_fmnist_modifiers();
    test_bad_specs();
    test_fmnist_installed();
    return CHECK_DONE();
}
