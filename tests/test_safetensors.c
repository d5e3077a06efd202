/* Tests of the safetensors reader and writer: round trips of every dtype with metadata, the
 * header layout the writer produces, a real fixture, every malformed-header case the reader
 * must refuse (with the right code and a message naming the file and tensor), and the atomic
 * save. */
#include "check.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BNN_TEST_TMP
#define BNN_TEST_TMP "/tmp"
#endif
#ifndef BNN_FIXTURES
#define BNN_FIXTURES "../shared/fixtures"
#endif

static char *tmp_path(const char *leaf) {
    static char buf[4][1024];
    static int next = 0;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/st_%ld_%s", BNN_TEST_TMP, (long)getpid(), leaf);
    return p;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Reads a whole file into a malloc'd buffer (the test's own reader, independent of bnn). */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

static int spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Builds a file image: the 8-byte length of json, json itself, then data_len bytes of data. */
static unsigned char *image(const char *json, size_t data_len, size_t *len) {
    size_t n = strlen(json);
    *len = 8 + n + data_len;
    unsigned char *b = calloc(1, *len + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, json, n);
    for (size_t i = 0; i < data_len; i++)
        b[8 + n + i] = (unsigned char)(i * 37 + 1);
    return b;
}

/* Parses an image built from json; returns the code and frees any result. */
static int parse_json(const char *json, size_t data_len) {
    size_t len;
    unsigned char *b = image(json, data_len, &len);
    bnn_st *st = (bnn_st *)1;
    bnn__error_clear();
    int rc = bnn_st_parse(&st, b, len, "bad.st");
    if (rc) CHECK(st == NULL);
    bnn_st_free(st);
    free(b);
    return rc;
}

/* ---------------------------------------------------------------- round trip */

static void test_round_trip(void) {
    const char *path = tmp_path("rt.safetensors");
    /* U8 first, with an odd length: the writer still puts every tensor at a multiple of its
     * element size (the conversions of unaligned data are tested on images made by hand). */
    uint8_t u8[7] = {0, 1, 2, 127, 128, 254, 255};
    float f32[6] = {1.5f, -2.25f, 3.0e-38f, -0.0f, 1e30f, 0.1f};
    double f64[4] = {0.1, -1e-300, 3.141592653589793, 1e300};
    int64_t i64[6] = {INT64_MIN, -1, 0, 1, INT64_MAX, 1234567890123LL};
    int32_t i32[5] = {INT32_MIN, -7, 0, 7, INT32_MAX};
    double scalar = 42.0;
    int64_t s_u8[1] = {7}, s_f32[2] = {2, 3}, s_f64[1] = {4}, s_i64[3] = {3, 1, 2}, s_i32[1] = {5};
    int64_t s_empty[2] = {3, 0};

    bnn_st_writer *w = NULL;
    REQUIRE(bnn_st_writer_new(&w) == 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "u8", BNN_DT_U8, 1, s_u8, u8), 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "layer.f32", BNN_DT_F32, 2, s_f32, f32), 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "f64", BNN_DT_F64, 1, s_f64, f64), 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "i64", BNN_DT_I64, 3, s_i64, i64), 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "i32", BNN_DT_I32, 1, s_i32, i32), 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "scalar", BNN_DT_F64, 0, NULL, &scalar), 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "empty", BNN_DT_F32, 2, s_empty, NULL), 0);
    /* Metadata that needs JSON escaping, and a non-ASCII name and value. */
    const char *keys[4] = {"zeta", "alpha", "quote\"back\\slash", "caf\xc3\xa9"};
    const char *vals[4] = {"last inserted first?", "line\nbreak\ttab\x01", "\"", "\xe2\x82\xac 5"};
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(bnn_st_writer_meta(w, keys[i], vals[i]), 0);

    /* The data is copied at add: scribbling on the caller's arrays must not change the file. */
    float f32_orig[6];
    memcpy(f32_orig, f32, sizeof f32);
    f32[0] = 99.0f;

    CHECK_EQ_INT(bnn_st_writer_save(w, path), 0);
    bnn_st_writer_free(w);
    memcpy(f32, f32_orig, sizeof f32);

    bnn_st *st = NULL;
    REQUIRE(bnn_st_read(&st, path) == 0);
    REQUIRE(st != NULL);
    CHECK_EQ_INT(bnn_st_count(st), 7);

    /* Tensors come back in the header's order: by element size, largest first, and in insertion
     * order among equals (the reference writer's order by alignment), so that each starts at a
     * multiple of its element size in the 8-byte-aligned data area: the F64 tensors were 4 bytes
     * off after the odd U8 run. */
    const char *names[7] = {"f64", "i64", "scalar", "layer.f32", "i32", "empty", "u8"};
    const unsigned char *base = NULL;
    for (int i = 0; i < 7; i++) {
        bnn_st_tensor t;
        CHECK_EQ_INT(bnn_st_at(st, i, &t), 0);
        CHECK(strcmp(t.name, names[i]) == 0);
        if (i == 0) base = t.data; /* packed: the first tensor starts the data area */
        if (t.numel) CHECK(((const unsigned char *)t.data - base) % bnn_dtype_size(t.dtype) == 0);
    }

    struct {
        const char *name;
        bnn_dtype dt;
        int ndim;
        const int64_t *shape;
        const void *data;
        int64_t numel;
    } want[7] = {
        {"u8", BNN_DT_U8, 1, s_u8, u8, 7},          {"layer.f32", BNN_DT_F32, 2, s_f32, f32, 6},
        {"f64", BNN_DT_F64, 1, s_f64, f64, 4},      {"i64", BNN_DT_I64, 3, s_i64, i64, 6},
        {"i32", BNN_DT_I32, 1, s_i32, i32, 5},      {"scalar", BNN_DT_F64, 0, NULL, &scalar, 1},
        {"empty", BNN_DT_F32, 2, s_empty, NULL, 0},
    };
    for (int i = 0; i < 7; i++) {
        bnn_st_tensor t;
        REQUIRE(bnn_st_get(st, want[i].name, &t) == 0);
        CHECK(strcmp(t.name, want[i].name) == 0);
        CHECK_EQ_INT(t.dtype, want[i].dt);
        CHECK_EQ_INT(t.ndim, want[i].ndim);
        CHECK_EQ_INT(t.numel, want[i].numel);
        for (int k = 0; k < t.ndim; k++)
            CHECK_EQ_INT(t.shape[k], want[i].shape[k]);
        size_t nbytes = (size_t)t.numel * bnn_dtype_size(t.dtype);
        if (nbytes) CHECK(memcmp(t.data, want[i].data, nbytes) == 0); /* bit-identical */
    }

    /* Conversions. */
    bnn_st_tensor t;
    double d[8];
    float fl[8];
    REQUIRE(bnn_st_get(st, "u8", &t) == 0);
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);
    CHECK_EQ_INT(bnn_st_to_f32(&t, fl), 0);
    for (int i = 0; i < 7; i++)
        CHECK(d[i] == (double)u8[i] && fl[i] == (float)u8[i]);
    REQUIRE(bnn_st_get(st, "layer.f32", &t) == 0);
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);
    CHECK_EQ_INT(bnn_st_to_f32(&t, fl), 0);
    for (int i = 0; i < 6; i++)
        CHECK(d[i] == (double)f32[i] && memcmp(&fl[i], &f32[i], 4) == 0);
    REQUIRE(bnn_st_get(st, "f64", &t) == 0);
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);
    CHECK_EQ_INT(bnn_st_to_f32(&t, fl), 0);
    for (int i = 0; i < 4; i++)
        CHECK(memcmp(&d[i], &f64[i], 8) == 0 && fl[i] == (float)f64[i]);
    REQUIRE(bnn_st_get(st, "i64", &t) == 0);
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);
    for (int i = 0; i < 6; i++)
        CHECK(d[i] == (double)i64[i]);
    REQUIRE(bnn_st_get(st, "i32", &t) == 0);
    CHECK_EQ_INT(bnn_st_to_f32(&t, fl), 0);
    for (int i = 0; i < 5; i++)
        CHECK(fl[i] == (float)i32[i]);
    REQUIRE(bnn_st_get(st, "scalar", &t) == 0);
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);
    CHECK(d[0] == 42.0);
    REQUIRE(bnn_st_get(st, "empty", &t) == 0);
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);

    /* Metadata, in insertion order. */
    CHECK_EQ_INT(bnn_st_meta_count(st), 4);
    for (int i = 0; i < 4; i++) {
        const char *k = NULL, *v = NULL;
        CHECK_EQ_INT(bnn_st_meta_at(st, i, &k, &v), 0);
        CHECK(k && strcmp(k, keys[i]) == 0);
        CHECK(v && strcmp(v, vals[i]) == 0);
        CHECK(bnn_st_meta(st, keys[i]) && strcmp(bnn_st_meta(st, keys[i]), vals[i]) == 0);
    }
    CHECK(bnn_st_meta(st, "missing") == NULL);

    /* Lookups that fail. */
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_get(st, "nope", &t), BNN_ENOTFOUND);
    CHECK(bnn_last_error()[0] != '\0');
    CHECK_EQ_INT(bnn_st_at(st, 7, &t), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_at(st, -1, &t), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_meta_at(st, 4, NULL, NULL), BNN_EINVAL);

    /* Dropping the tensors keeps the metadata (read from copies of the header's strings), and
     * leaves no tensor to look up; dropping twice is harmless (ASan checks the frees). */
    CHECK(bnn_st_count(st) == 7);
    bnn_st_drop_tensors(st);
    bnn_st_drop_tensors(st);
    CHECK(bnn_st_count(st) == 0);
    CHECK_EQ_INT(bnn_st_get(st, "f32", &t), BNN_ENOTFOUND);
    CHECK_EQ_INT(bnn_st_at(st, 0, &t), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_meta_count(st), 4);
    for (int i = 0; i < 4; i++)
        CHECK(bnn_st_meta(st, keys[i]) && strcmp(bnn_st_meta(st, keys[i]), vals[i]) == 0);
    bnn_st_drop_tensors(NULL);
    bnn_st_free(st);

    /* The file layout: 8 + N is a multiple of 8, the padding is spaces, the tensors are packed
     * in the order above from offset 0 with no gaps, and the file ends with the last one. */
    size_t len;
    unsigned char *b = slurp(path, &len);
    REQUIRE(b != NULL && len >= 8);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | b[i];
    CHECK_EQ_INT((8 + n) % 8, 0);
    REQUIRE(n <= len - 8);
    size_t close = 0;
    for (size_t i = 0; i < n; i++)
        if (b[8 + i] == '}') close = i;
    for (size_t i = close + 1; i < n; i++)
        CHECK(b[8 + i] == ' ');
    CHECK(n - (close + 1) < 8);
    size_t data_bytes = sizeof u8 + sizeof f32 + sizeof f64 + sizeof i64 + sizeof i32 + 8;
    CHECK_EQ_INT(len, 8 + n + data_bytes);
    /* The header begins with the metadata, as the reference writer's does. */
    CHECK(memcmp(b + 8, "{\"__metadata__\":{", 17) == 0);
    CHECK(memcmp(b + 8 + n, f64, sizeof f64) == 0);
    CHECK(memcmp(b + 8 + n + sizeof f64 + sizeof i64 + 8, f32, sizeof f32) == 0);
    CHECK(memcmp(b + len - sizeof u8, u8, sizeof u8) == 0);
    free(b);
    remove(path);

    /* Files from other writers may hold a tensor at an offset that is no multiple of its size
     * (the format allows it): read and converted all the same. */
    {
        const char *js = "{\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                         "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[3,19]},"
                         "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[19,21]}}";
        size_t il;
        unsigned char *im = image(js, 21, &il);
        const size_t hn = strlen(js);
        const double dv[2] = {-0.1, 1e300};
        memcpy(im + 8 + hn + 3, dv, sizeof dv);
        im[8 + hn + 19] = 0x00, im[8 + hn + 20] = 0x3c; /* F16 1.0 */
        bnn_st *su = NULL;
        REQUIRE(bnn_st_parse(&su, im, il, "unaligned.st") == 0);
        bnn_st_tensor td;
        double dd[2];
        float ff[2];
        REQUIRE(bnn_st_get(su, "d", &td) == 0);
        CHECK_EQ_INT(bnn_st_to_f64(&td, dd), 0);
        CHECK(dd[0] == -0.1 && dd[1] == 1e300);
        CHECK_EQ_INT(bnn_st_to_f32(&td, ff), 0);
        CHECK(ff[0] == (float)-0.1 && isinf(ff[1]));
        REQUIRE(bnn_st_get(su, "h", &td) == 0);
        CHECK_EQ_INT(bnn_st_to_f32(&td, ff), 0);
        CHECK(ff[0] == 1.0f);
        bnn_st_free(su);
        free(im);
    }
}

/* A writer with no tensors and no metadata still makes a valid file. */
static void test_empty_file(void) {
    const char *path = tmp_path("empty.safetensors");
    bnn_st_writer *w;
    REQUIRE(bnn_st_writer_new(&w) == 0);
    CHECK_EQ_INT(bnn_st_writer_save(w, path), 0);
    bnn_st_writer_free(w);
    bnn_st *st;
    REQUIRE(bnn_st_read(&st, path) == 0);
    CHECK_EQ_INT(bnn_st_count(st), 0);
    CHECK_EQ_INT(bnn_st_meta_count(st), 0);
    bnn_st_tensor t;
    CHECK_EQ_INT(bnn_st_get(st, "x", &t), BNN_ENOTFOUND);
    bnn_st_free(st);
    remove(path);
}

/* ---------------------------------------------------------------- writer errors */

static void test_writer_errors(void) {
    bnn_st_writer *w;
    REQUIRE(bnn_st_writer_new(&w) == 0);
    float x[4] = {1, 2, 3, 4};
    int64_t s1[1] = {4}, bad[1] = {-1}, big[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int64_t ovf[3] = {INT64_C(1) << 40, INT64_C(1) << 40, 1};
    CHECK_EQ_INT(bnn_st_writer_add(w, "a", BNN_DT_F32, 1, s1, x), 0);
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_writer_add(w, "a", BNN_DT_F32, 1, s1, x), BNN_EINVAL); /* duplicate */
    CHECK(strstr(bnn_last_error(), "'a'") != NULL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "b", (bnn_dtype)17, 1, s1, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "b", BNN_DT_F32, 1, bad, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "b", BNN_DT_F32, 9, big, x), BNN_EUNSUPPORTED);
    CHECK_EQ_INT(bnn_st_writer_add(w, "b", BNN_DT_F32, -1, s1, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "b", BNN_DT_F32, 1, s1, NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "b", BNN_DT_F32, 1, NULL, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "b", BNN_DT_F32, 3, ovf, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "__metadata__", BNN_DT_F32, 1, s1, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "", BNN_DT_F32, 1, s1, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, "\xff", BNN_DT_F32, 1, s1, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(w, NULL, BNN_DT_F32, 1, s1, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_add(NULL, "b", BNN_DT_F32, 1, s1, x), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_meta(w, "k", "v"), 0);
    CHECK_EQ_INT(bnn_st_writer_meta(w, "k", "w"), BNN_EINVAL); /* duplicate key */
    CHECK_EQ_INT(bnn_st_writer_meta(w, "k2", NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_meta(w, "k3", "\xc0\x80"), BNN_EINVAL);     /* overlong NUL */
    CHECK_EQ_INT(bnn_st_writer_meta(w, "k3", "\xe0\x80\xaf"), BNN_EINVAL); /* overlong '/' */
    CHECK_EQ_INT(bnn_st_writer_meta(w, "k3", "\xed\xa0\x80"), BNN_EINVAL); /* surrogate */
    CHECK_EQ_INT(bnn_st_writer_meta(w, "k3", "\xe2\x82"), BNN_EINVAL);     /* truncated */
    /* bnn_st_text_ok says beforehand what the writer takes (the CLI leaves such names out) */
    CHECK(!bnn_st_text_ok("\xe2\x82") && !bnn_st_text_ok("d\xe9.csv") && !bnn_st_text_ok(NULL));
    CHECK(bnn_st_text_ok("d\xc3\xa9.csv") && bnn_st_text_ok(""));
    CHECK_EQ_INT(bnn_st_writer_save(w, NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_writer_save(NULL, "x"), BNN_EINVAL);
    /* Failed adds leave the writer usable: the file holds exactly the good entries. */
    const char *path = tmp_path("werr.safetensors");
    CHECK_EQ_INT(bnn_st_writer_save(w, path), 0);
    bnn_st_writer_free(w);
    bnn_st *st;
    REQUIRE(bnn_st_read(&st, path) == 0);
    CHECK_EQ_INT(bnn_st_count(st), 1);
    CHECK_EQ_INT(bnn_st_meta_count(st), 1);
    CHECK(bnn_st_meta(st, "k") && strcmp(bnn_st_meta(st, "k"), "v") == 0);
    bnn_st_free(st);
    remove(path);
    bnn_st_writer_free(NULL);
    bnn_st_free(NULL);
}

/* ---------------------------------------------------------------- atomic save */

static void test_atomic_save(void) {
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    int64_t sa[1] = {2}, sb[1] = {3};
    char tmpname[1200];

    /* A save into a directory that does not exist fails and leaves nothing behind. */
    const char *missing = tmp_path("no_such_dir/x.safetensors");
    bnn_st_writer *w;
    REQUIRE(bnn_st_writer_new(&w) == 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "a", BNN_DT_F32, 1, sa, a), 0);
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_writer_save(w, missing), BNN_EIO);
    CHECK(bnn_last_error()[0] != '\0');
    CHECK(!file_exists(missing));
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", missing, (long)getpid());
    CHECK(!file_exists(tmpname));

    /* A save to a directory fails (before any temporary file is made) and leaves none. */
    const char *dir = tmp_path("a_directory");
    mkdir(dir, 0755);
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_writer_save(w, dir), BNN_EIO);
    CHECK(bnn_last_error()[0] != '\0');
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", dir, (long)getpid());
    CHECK(!file_exists(tmpname));
    rmdir(dir);

    /* A save over an existing file replaces it, with no temporary file left over. */
    const char *path = tmp_path("replace.safetensors");
    CHECK_EQ_INT(bnn_st_writer_save(w, path), 0);
    bnn_st_writer_free(w);
    REQUIRE(bnn_st_writer_new(&w) == 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "b", BNN_DT_F32, 1, sb, b), 0);
    CHECK_EQ_INT(bnn_st_writer_meta(w, "version", "2"), 0);
    CHECK_EQ_INT(bnn_st_writer_save(w, path), 0);
    bnn_st_writer_free(w);
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    CHECK(!file_exists(tmpname));
    bnn_st *st;
    REQUIRE(bnn_st_read(&st, path) == 0);
    bnn_st_tensor t;
    CHECK_EQ_INT(bnn_st_count(st), 1);
    CHECK_EQ_INT(bnn_st_get(st, "a", &t), BNN_ENOTFOUND);
    REQUIRE(bnn_st_get(st, "b", &t) == 0);
    CHECK_EQ_INT(t.numel, 3);
    CHECK(memcmp(t.data, b, sizeof b) == 0);
    CHECK(bnn_st_meta(st, "version") && strcmp(bnn_st_meta(st, "version"), "2") == 0);
    bnn_st_free(st);
    remove(path);
}

/* ---------------------------------------------------------------- fixture */

static void test_fixture(void) {
    struct stat sb;
    if (stat(BNN_FIXTURES, &sb) != 0) {
        fprintf(stderr, "note: %s not found; skipping the fixture checks\n", BNN_FIXTURES);
        return;
    }
    const char *path = BNN_FIXTURES "/blr/diabetes.safetensors";
    bnn_st *st;
    bnn__error_clear();
    int rc = bnn_st_read(&st, path);
    if (rc) fprintf(stderr, "%s\n", bnn_last_error());
    REQUIRE(rc == 0);
    bnn_st_tensor t;
    REQUIRE(bnn_st_get(st, "X", &t) == 0);
    CHECK_EQ_INT(t.dtype, BNN_DT_F64);
    CHECK_EQ_INT(t.ndim, 2);
    CHECK_EQ_INT(t.shape[0], 442);
    CHECK_EQ_INT(t.shape[1], 11);
    CHECK_EQ_INT(t.numel, 442 * 11);
    double *x = malloc(442 * 11 * sizeof *x);
    REQUIRE(x != NULL);
    CHECK_EQ_INT(bnn_st_to_f64(&t, x), 0);
    /* The design's first column is the intercept, all ones; the features are z-scored, so each
     * column's mean is 0 to rounding. */
    int ones = 1;
    for (int i = 0; i < 442; i++)
        ones &= x[i * 11] == 1.0;
    CHECK(ones);
    for (int j = 1; j < 11; j++) {
        double s = 0;
        for (int i = 0; i < 442; i++)
            s += x[i * 11 + j];
        CHECK_NEAR(s / 442, 0.0, 1e-12);
    }
    free(x);
    REQUIRE(bnn_st_get(st, "y", &t) == 0);
    CHECK_EQ_INT(t.ndim, 1);
    CHECK_EQ_INT(t.shape[0], 442);
    const char *cols = bnn_st_meta(st, "columns");
    CHECK(cols != NULL && strncmp(cols, "intercept,", 10) == 0);
    bnn_st_free(st);

    /* Every other fixture file parses too (a broad check of the reader on real files). */
    const char *others[] = {"ivon/case_A.safetensors",
                            "ivon/case_C.safetensors",
                            "laplace/cls_all_kron.safetensors",
                            "laplace/reg_ll_full.safetensors",
                            "metrics/classification.safetensors",
                            "metrics/ood.safetensors"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", BNN_FIXTURES, others[i]);
        if (!file_exists(p)) continue;
        rc = bnn_st_read(&st, p);
        if (rc) fprintf(stderr, "%s\n", bnn_last_error());
        CHECK_EQ_INT(rc, 0);
        if (!rc) CHECK(bnn_st_count(st) > 0);
        bnn_st_free(st);
    }
}

/* ---------------------------------------------------------------- malformed input */

static void test_malformed_headers(void) {
    static const struct {
        const char *json;
        size_t data_len;
        int code;
        const char *mention; /* a string the message must contain, besides the file name */
    } cases[] = {
        {"", 0, BNN_EFORMAT, "JSON"},
        {"[1,2]", 0, BNN_EFORMAT, "object"},
        {"\"str\"", 0, BNN_EFORMAT, "object"},
        {"{\"a\":", 0, BNN_EFORMAT, "JSON"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, BNN_EFORMAT,
         "after"},
        {"{\"__metadata__\":{\"k\":\"\xff\"}}", 0, BNN_EFORMAT, "UTF-8"},
        {"{\"tname\":5}", 0, BNN_EFORMAT, "tname"},
        {"{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, BNN_EFORMAT,
         "empty name"},
        {"{\"tname\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT, "dtype"},
        {"{\"tname\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT, "dtype"},
        {"{\"tname\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
         BNN_EUNSUPPORTED, "C64"},
        {"{\"tname\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT, "shape"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "shape"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "number '-1' (at byte 41) is not a whole number written plainly"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2,2.5],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "number '2.5'"},
        /* whole values written otherwise: cJSON reads them as 8 and 0, the reference reader
         * refuses them (they were taken) */
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "number '2.0'"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]}}", 8, BNN_EFORMAT,
         "number '8e0'"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-0,8]}}", 8, BNN_EFORMAT,
         "number '-0'"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "number '02'"},
        /* found after a name with an escaped quote (which a scan without escapes would take
         * for the string's end, and the shape for a string) */
        {"{\"t\\\"\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "number '2.0'"},
        /* a number in the metadata is named as such, not as a shape */
        {"{\"__metadata__\":{\"lr\":0.5}}", 0, BNN_EFORMAT, "value of 'lr' is not a string"},
        {"\xef\xbb\xbf{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         BNN_EFORMAT, "byte-order mark"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]}}", 8, BNN_EFORMAT,
         "empty tensor 'e' is at data byte 4, where the tensors before it end at 8"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "shape[0]"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "number '1e300'"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,8]}}", 8, BNN_EFORMAT,
         "shape[0]"},
        {"{\"tname\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4],"
         "\"data_offsets\":[0,8]}}",
         8, BNN_EFORMAT, "overflow"},
        {"{\"tname\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
         BNN_EUNSUPPORTED, "dimensions"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, BNN_EFORMAT, "data_offsets"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8, BNN_EFORMAT,
         "data_offsets"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 16, BNN_EFORMAT,
         "data_offsets"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"a\":1}}}", 8, BNN_EFORMAT,
         "data_offsets"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 16, BNN_EFORMAT,
         "number '8.5'"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, BNN_EFORMAT,
         "number '-8'"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, BNN_EFORMAT,
         "before"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 16, BNN_EFORMAT,
         "needs"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9]}}", 9, BNN_EFORMAT,
         "needs"},
        {"{\"tname\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 48, BNN_EFORMAT,
         "needs"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, BNN_EFORMAT,
         "beyond"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 12, BNN_EFORMAT,
         "beyond"},
        {"{\"first\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, BNN_EFORMAT, "overlap"},
        {"{\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]},"
         "\"tname\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[15,16]}}",
         16, BNN_EFORMAT, "overlap"},
        {"{\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"tname\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         16, BNN_EFORMAT, "twice"},
        {"{\"__metadata__\":[1]}", 0, BNN_EFORMAT, "__metadata__"},
        {"{\"__metadata__\":{\"tname\":1}}", 0, BNN_EFORMAT, "tname"},
        {"{\"__metadata__\":{\"tname\":null}}", 0, BNN_EFORMAT, "tname"},
        {"{\"__metadata__\":{\"tname\":\"a\",\"tname\":\"b\"}}", 0, BNN_EFORMAT, "tname"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, BNN_EFORMAT, "__metadata__"},
        /* Bytes after the last tensor: a header length one short reads like this, with every
         * tensor shifted by a byte (the reference reader refuses it too). */
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5, BNN_EFORMAT,
         "header length"},
        /* A NUL written as an escape would cut the decoded string short: "mlp:2-4". */
        {"{\"__metadata__\":{\"bnn.model\":\"mlp:2-4\\u0000-3-2\"}}", 0, BNN_EFORMAT, "u0000"},
        {"{\"__metadata__\":{\"k\":\"a\tb\"}}", 0, BNN_EFORMAT, "control character"},
        /* The data area is packed from byte 0, as the reference reader requires: unused bytes
         * before the first tensor or between two are a damaged offset. */
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, BNN_EFORMAT,
         "data bytes [0, 4) belong to no tensor (the next, 'a', starts at 4)"},
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[6,10]}}", 10, BNN_EFORMAT,
         "data bytes [4, 6) belong to no tensor (the next, 'b'"},
        /* A field given twice: refused, not the first copy silently used. */
        {"{\"a\":{\"dtype\":\"I32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         BNN_EFORMAT, "\"dtype\" appears 2 times"},
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4],\"shape\":[1]}}", 4,
         BNN_EFORMAT, "\"shape\" appears 2 times"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse_json(cases[i].json, cases[i].data_len);
        const char *msg = bnn_last_error();
        if (rc != cases[i].code || !strstr(msg, "bad.st") || !strstr(msg, cases[i].mention))
            fprintf(stderr, "case %zu (%s): rc %d, message '%s'\n", i, cases[i].json, rc, msg);
        CHECK_EQ_INT(rc, cases[i].code);
        CHECK(strstr(msg, "bad.st") != NULL);
        CHECK(strstr(msg, cases[i].mention) != NULL);
    }
    /* A tensor-level error names the tensor. */
    parse_json("{\"tname\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    CHECK(strstr(bnn_last_error(), "tname") != NULL);

    /* Unusual but valid headers are accepted: a scalar, empty tensors (also at the same offset
     * as others), unknown fields, an unpadded header, JSON whitespace and an empty metadata
     * map. */
    static const struct {
        const char *json;
        size_t data_len;
        int64_t count;
    } good[] = {
        {"{}", 0, 0},
        {"  {\n\"__metadata__\" : {} }\n\t ", 0, 0},
        {"{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8, 1},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},"
         "\"f\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[8,8]}}",
         8, 3},
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":[1]}}", 4, 1},
        /* an unknown field's numbers are not shapes: any JSON number (ignored, as the reference
         * reader ignores the field); escaped quotes in names and values, around text that
         * looks like an array of numbers */
        {"{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4],"
         "\"extra\":[1.5,-1,2e3,01]}}", 4, 1},
        {"{\"x\\\"shape\\\":[1.5\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"__metadata__\":{\"k\\\"\":\"\\\"data_offsets\\\":[-2.5]\"}}", 1, 1},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,3],\"data_offsets\":[0,3]}}", 3, 1},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t len;
        unsigned char *b = image(good[i].json, good[i].data_len, &len);
        bnn_st *st = NULL;
        int rc = bnn_st_parse(&st, b, len, "good.st");
        if (rc) fprintf(stderr, "good case %zu: %s\n", i, bnn_last_error());
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(bnn_st_count(st), good[i].count);
        bnn_st_free(st);
        free(b);
    }
}

/* Images that are wrong before the JSON: too short, or a bad header length. */
static void test_malformed_lengths(void) {
    bnn_st *st = (bnn_st *)1;
    unsigned char small[5] = {1, 0, 0, 0, 0};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_parse(&st, small, sizeof small, "bad.st"), BNN_EFORMAT);
    CHECK(st == NULL);
    CHECK(strstr(bnn_last_error(), "bad.st") != NULL);
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_parse(&st, small, 0, "bad.st"), BNN_EFORMAT);
    CHECK(bnn_last_error()[0] != '\0');
    CHECK_EQ_INT(bnn_st_parse(&st, NULL, 10, "bad.st"), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_parse(NULL, small, 5, "bad.st"), BNN_EINVAL);

    /* The header length exceeds the file by one byte. */
    size_t len;
    unsigned char *b = image("{}", 0, &len);
    b[0] = 3;
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_parse(&st, b, len, "bad.st"), BNN_EFORMAT);
    CHECK(strstr(bnn_last_error(), "exceeds") != NULL);
    /* Absurd lengths: 2^40, 2^64 - 1, and just over 100 MiB. */
    memset(b, 0, 8);
    b[5] = 1;
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_parse(&st, b, len, "bad.st"), BNN_EFORMAT);
    CHECK(strstr(bnn_last_error(), "absurd") != NULL);
    memset(b, 0xff, 8);
    CHECK_EQ_INT(bnn_st_parse(&st, b, len, "bad.st"), BNN_EFORMAT);
    uint64_t n = ((uint64_t)100 << 20) + 1;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(n >> (8 * i));
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_parse(&st, b, len, "bad.st"), BNN_EFORMAT);
    CHECK(strstr(bnn_last_error(), "absurd") != NULL);
    free(b);

    /* An embedded NUL inside the header ends the JSON text early and is refused. */
    unsigned char nul[8 + 8] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, ' ', ' ', ' ', ' ', ' '};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_parse(&st, nul, sizeof nul, "bad.st"), BNN_EFORMAT);
    CHECK(bnn_last_error()[0] != '\0');
}

/* Files on disk: truncated, missing, or not a regular file. */
static void test_bad_files(void) {
    /* torch.save's formats, named with what to do instead (the message said the header length
     * was absurd) */
    {
        const unsigned char zip[16] = "PK\x03\x04\x14\x00\x00\x00\x08\x00zzzzzz";
        const unsigned char pkl[16] = "\x80\x02}q\x00(X\x05\x00\x00\x00" "ghijk";
        bnn_st *st = NULL;
        CHECK_EQ_INT(bnn_st_parse(&st, zip, sizeof zip, "m.pt"), BNN_EFORMAT);
        CHECK(strstr(bnn_last_error(), "m.pt: not a safetensors file but a zip archive, as "
                     "torch.save writes: save the state dict with safetensors.torch.save_file"));
        CHECK_EQ_INT(bnn_st_parse(&st, pkl, sizeof pkl, "m.pt"), BNN_EFORMAT);
        CHECK(strstr(bnn_last_error(), "but a pickle stream"));
        /* a safetensors header of 0x380 bytes starts 80 03 too: cut short, it is a truncated
         * file, not a pickle */
        unsigned char cut[16] = {0x80, 0x03, 0, 0, 0, 0, 0, 0, '{', '"'};
        CHECK_EQ_INT(bnn_st_parse(&st, cut, sizeof cut, "cut.st"), BNN_EFORMAT);
        CHECK(strstr(bnn_last_error(), "header length 896 exceeds the 8 bytes that follow it"));
    }
    const char *good = tmp_path("full.safetensors");
    const char *cut = tmp_path("cut.safetensors");
    double v[16];
    for (int i = 0; i < 16; i++)
        v[i] = i * 0.5;
    int64_t s[2] = {4, 4};
    bnn_st_writer *w;
    REQUIRE(bnn_st_writer_new(&w) == 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "v", BNN_DT_F64, 2, s, v), 0);
    CHECK_EQ_INT(bnn_st_writer_save(w, good), 0);
    bnn_st_writer_free(w);
    size_t len;
    unsigned char *b = slurp(good, &len);
    REQUIRE(b != NULL);

    /* Truncated in the data area, inside the header, and inside the length field. */
    size_t cuts[3] = {len - 1, 20, 5};
    for (int i = 0; i < 3; i++) {
        REQUIRE(spit(cut, b, cuts[i]) == 0);
        bnn_st *st = (bnn_st *)1;
        bnn__error_clear();
        CHECK_EQ_INT(bnn_st_read(&st, cut), BNN_EFORMAT);
        CHECK(st == NULL);
        CHECK(strstr(bnn_last_error(), cut) != NULL);
    }
    free(b);
    remove(cut);
    remove(good);

    bnn_st *st;
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_read(&st, tmp_path("does_not_exist.safetensors")), BNN_EIO);
    CHECK(strstr(bnn_last_error(), "does_not_exist") != NULL);
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_read(&st, BNN_TEST_TMP), BNN_EIO);
    CHECK(bnn_last_error()[0] != '\0');
    CHECK_EQ_INT(bnn_st_read(&st, NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_read(NULL, good), BNN_EINVAL);
}

/* bnn_st_read_meta: the metadata of a file, without its tensors, checked as bnn_st_read checks a
 * header; a file damaged only in its data area still gives its metadata (the tensors are not
 * read), one damaged in the length or header does not. */
static void test_read_meta(void) {
    const char *good = tmp_path("meta.safetensors");
    const char *cut = tmp_path("meta_cut.safetensors");
    double v[16] = {0};
    int64_t s[2] = {4, 4};
    bnn_st_writer *w;
    REQUIRE(bnn_st_writer_new(&w) == 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, "v", BNN_DT_F64, 2, s, v), 0);
    CHECK_EQ_INT(bnn_st_writer_meta(w, "bnn.posterior", "diag"), 0);
    CHECK_EQ_INT(bnn_st_writer_meta(w, "k", "caf\xc3\xa9"), 0);
    CHECK_EQ_INT(bnn_st_writer_save(w, good), 0);
    bnn_st_writer_free(w);
    bnn_st *st = NULL;
    REQUIRE(bnn_st_read_meta(&st, good) == 0);
    CHECK_EQ_INT(bnn_st_count(st), 0);
    CHECK_EQ_INT(bnn_st_meta_count(st), 2);
    CHECK(bnn_st_meta(st, "bnn.posterior") && !strcmp(bnn_st_meta(st, "bnn.posterior"), "diag"));
    CHECK(bnn_st_meta(st, "k") && !strcmp(bnn_st_meta(st, "k"), "caf\xc3\xa9"));
    bnn_st_tensor t;
    CHECK_EQ_INT(bnn_st_get(st, "v", &t), BNN_ENOTFOUND);
    bnn_st_free(st);

    size_t len;
    unsigned char *b = slurp(good, &len);
    REQUIRE(b != NULL);
    /* Cut in the data area: bnn_st_read refuses it, the header alone is whole. */
    REQUIRE(spit(cut, b, len - 1) == 0);
    CHECK_EQ_INT(bnn_st_read(&st, cut), BNN_EFORMAT);
    REQUIRE(bnn_st_read_meta(&st, cut) == 0);
    CHECK_EQ_INT(bnn_st_meta_count(st), 2);
    bnn_st_free(st);
    /* Cut inside the header, and inside the length field. */
    const size_t cuts[2] = {20, 5};
    const char *words[2] = {"exceeds", "shorter than the 8-byte"};
    for (int i = 0; i < 2; i++) {
        REQUIRE(spit(cut, b, cuts[i]) == 0);
        st = (bnn_st *)1;
        bnn__error_clear();
        CHECK_EQ_INT(bnn_st_read_meta(&st, cut), BNN_EFORMAT);
        CHECK(st == NULL);
        CHECK(strstr(bnn_last_error(), words[i]) != NULL);
    }
    /* An absurd length, and a header that is not JSON. */
    unsigned char bad[16];
    memcpy(bad, b, 16);
    memset(bad, 0xff, 8);
    REQUIRE(spit(cut, bad, 16) == 0);
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_read_meta(&st, cut), BNN_EFORMAT);
    CHECK(strstr(bnn_last_error(), "absurd") != NULL);
    b[9] = '[';
    REQUIRE(spit(cut, b, len) == 0);
    bnn__error_clear();
    CHECK_EQ_INT(bnn_st_read_meta(&st, cut), BNN_EFORMAT);
    CHECK(strstr(bnn_last_error(), "JSON") != NULL);
    free(b);
    CHECK_EQ_INT(bnn_st_read_meta(&st, tmp_path("does_not_exist.safetensors")), BNN_EIO);
    CHECK_EQ_INT(bnn_st_read_meta(&st, BNN_TEST_TMP), BNN_EIO);
    CHECK_EQ_INT(bnn_st_read_meta(&st, NULL), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_read_meta(NULL, good), BNN_EINVAL);
    remove(cut);
    remove(good);
}

/* Conversion arguments and dtype sizes. */
/* F16 (IEEE binary16) and BF16 tensors, as half-precision PyTorch checkpoints hold them, convert
 * exactly: normal and subnormal numbers, signed zero, infinities, NaN; the bit patterns and their
 * values are from the formats' definitions (IEEE 754-2008 binary16; bfloat16 = a float's top
 * half). */
static void test_half_floats(void) {
    static const uint16_t h[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400,
                                 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x3555};
    const double hv[] = {1.0, -2.0, 65504.0, 0x1p-24, 1023 * 0x1p-24, 0x1p-14,
                         -0.0, INFINITY, -INFINITY, NAN, 0x1.554p-2};
    static const uint16_t b[] = {0x3F80, 0x4049, 0xFF80, 0x0001, 0x7FC0, 0xC2F7};
    const double bv[] = {1.0, 3.140625, -INFINITY, 0x1p-133, NAN, -123.5};
    const char *json = "{\"h\":{\"dtype\":\"F16\",\"shape\":[11],\"data_offsets\":[0,22]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[6],\"data_offsets\":[22,34]}}";
    const size_t n = strlen(json);
    unsigned char img[8 + 256 + 34];
    REQUIRE(n <= 256);
    for (int i = 0; i < 8; i++) img[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(img + 8, json, n);
    for (int i = 0; i < 11; i++) img[8 + n + 2 * i] = h[i] & 0xff, img[8 + n + 2 * i + 1] = h[i] >> 8;
    for (int i = 0; i < 6; i++)
        img[8 + n + 22 + 2 * i] = b[i] & 0xff, img[8 + n + 22 + 2 * i + 1] = b[i] >> 8;
    bnn_st *st;
    REQUIRE(bnn_st_parse(&st, img, 8 + n + 34, "half.st") == 0);
    bnn_st_tensor t;
    double d[11];
    float f[11];
    REQUIRE(bnn_st_get(st, "h", &t) == 0);
    CHECK(t.dtype == BNN_DT_F16 && t.numel == 11 && !strcmp(bnn_dtype_name(t.dtype), "F16"));
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);
    CHECK_EQ_INT(bnn_st_to_f32(&t, f), 0);
    for (int i = 0; i < 11; i++) {
        if (isnan(hv[i])) {
            CHECK(isnan(d[i]) && isnan(f[i]));
        } else {
            CHECK(d[i] == hv[i] && !signbit(d[i]) == !signbit(hv[i]));
            CHECK((double)f[i] == hv[i] && !signbit(f[i]) == !signbit(hv[i]));
        }
    }
    REQUIRE(bnn_st_get(st, "b", &t) == 0);
    CHECK(t.dtype == BNN_DT_BF16 && t.numel == 6 && !strcmp(bnn_dtype_name(t.dtype), "BF16"));
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);
    CHECK_EQ_INT(bnn_st_to_f32(&t, f), 0);
    for (int i = 0; i < 6; i++)
        CHECK(isnan(bv[i]) ? isnan(d[i]) && isnan(f[i]) : d[i] == bv[i] && (double)f[i] == bv[i]);
    bnn_st_free(st);
    /* The other dtypes of the format (a PyTorch file may hold a BOOL mask or a U64 counter beside
     * the weights): each converts, little-endian; the 8-bit floats per the OCP specification
     * (E4M3: 0x7E = 448, its largest, 0x01 = 2^-9, 0x7F NaN; E5M2: binary16's top byte, 0x7C = Inf). */
    static const struct {
        const char *dtype;
        int size;
        unsigned char bytes[8];
        double value;
    } one[] = {
        {"BOOL", 1, {0x02}, 1.0},        {"I8", 1, {0x80}, -128.0},
        {"I16", 2, {0x00, 0x80}, -32768.0}, {"U16", 2, {0xff, 0xff}, 65535.0},
        {"U32", 4, {0xff, 0xff, 0xff, 0xff}, 4294967295.0},
        {"U64", 8, {0, 0, 0, 0, 0, 0, 0, 0x80}, 9223372036854775808.0},
        {"F8_E5M2", 1, {0x3c}, 1.0},     {"F8_E5M2", 1, {0xfc}, -INFINITY},
        {"F8_E5M2", 1, {0x01}, 0x1p-16}, {"F8_E4M3", 1, {0x38}, 1.0},
        {"F8_E4M3", 1, {0x7e}, 448.0},   {"F8_E4M3", 1, {0x01}, 0x1p-9},
        {"F8_E4M3", 1, {0xb4}, -0.75},   {"F8_E4M3", 1, {0x7f}, NAN},
    };
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        char js[160];
        snprintf(js, sizeof js, "{\"x\":{\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":[0,%d]}}",
                 one[i].dtype, one[i].size);
        const size_t jn = strlen(js);
        unsigned char im[8 + 160 + 8] = {0};
        for (int k = 0; k < 8; k++) im[k] = (unsigned char)((uint64_t)jn >> (8 * k));
        memcpy(im + 8, js, jn);
        memcpy(im + 8 + jn, one[i].bytes, (size_t)one[i].size);
        REQUIRE(bnn_st_parse(&st, im, 8 + jn + (size_t)one[i].size, "one.st") == 0);
        REQUIRE(bnn_st_get(st, "x", &t) == 0);
        CHECK(!strcmp(bnn_dtype_name(t.dtype), one[i].dtype) &&
              bnn_dtype_size(t.dtype) == (size_t)one[i].size);
        CHECK_EQ_INT(bnn_st_to_f64(&t, d), 0);
        CHECK_EQ_INT(bnn_st_to_f32(&t, f), 0);
        if (isnan(one[i].value)) CHECK(isnan(d[0]) && isnan(f[0]));
        else CHECK(d[0] == one[i].value && (double)f[0] == (double)(float)one[i].value);
        bnn_st_free(st);
    }
    CHECK_EQ_INT(bnn_dtype_size(BNN_DT_F16), 2);
    CHECK_EQ_INT(bnn_dtype_size(BNN_DT_BF16), 2);
    CHECK(!strcmp(bnn_dtype_name((bnn_dtype)99), "?"));
}

static void test_misc(void) {
    CHECK_EQ_INT(bnn_dtype_size(BNN_DT_F32), 4);
    CHECK_EQ_INT(bnn_dtype_size(BNN_DT_F64), 8);
    CHECK_EQ_INT(bnn_dtype_size(BNN_DT_I64), 8);
    CHECK_EQ_INT(bnn_dtype_size(BNN_DT_I32), 4);
    CHECK_EQ_INT(bnn_dtype_size(BNN_DT_U8), 1);
    CHECK_EQ_INT(bnn_dtype_size((bnn_dtype)99), 0);
    double d[2];
    float f[2];
    bnn_st_tensor t = {0};
    t.dtype = (bnn_dtype)99;
    t.numel = 1;
    t.data = d;
    CHECK_EQ_INT(bnn_st_to_f64(&t, d), BNN_EINVAL);
    t.dtype = BNN_DT_F64;
    t.data = NULL;
    CHECK_EQ_INT(bnn_st_to_f32(&t, f), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_to_f64(NULL, d), BNN_EINVAL);
    CHECK_EQ_INT(bnn_st_count(NULL), 0);
    CHECK_EQ_INT(bnn_st_meta_count(NULL), 0);
    CHECK(bnn_st_meta(NULL, "k") == NULL);

    /* A model file whose names are long and not ASCII: the message that lists them cuts each
     * between characters (it split a two-byte é, and the message was no longer UTF-8). */
    char name[96] = "x"; /* then 40 bytes of é: byte 24 is inside one */
    for (int i = 0; i < 20; i++) strcat(name, "\xc3\xa9");
    strcat(name, "_encoder_layer_projection.0.weight");
    const float w4[4] = {0};
    const int64_t sh[1] = {4}; /* the four values mlp:1-2 needs, under another name */
    bnn_st_writer *w;
    REQUIRE(bnn_st_writer_new(&w) == 0);
    CHECK_EQ_INT(bnn_st_writer_add(w, name, BNN_DT_F32, 1, sh, w4), 0);
    CHECK_EQ_INT(bnn_st_writer_meta(w, "bnn.model", "mlp:1-2"), 0);
    const char *path = tmp_path("utf8names.safetensors");
    CHECK_EQ_INT(bnn_st_writer_save(w, path), 0);
    bnn_st_writer_free(w);
    bnn_model *m = NULL;
    CHECK_EQ_INT(bnn_model_load(&m, path, NULL, NULL), BNN_EFORMAT);
    CHECK(strstr(bnn_last_error(), "_projection.0.weight'") != NULL);
    CHECK(bnn_st_text_ok(bnn_last_error()));
    remove(path);
}

/* The JSON header is padded with spaces to a multiple of 8 bytes, so the tensor data starts
 * 8-byte aligned (the safetensors format's alignment), whatever the names' lengths. */
static void test_header_alignment(void) {
    const char *path = tmp_path("align.safetensors");
    for (int len = 1; len <= 8; len++) {
        char name[16] = "wwwwwwww";
        name[len] = '\0';
        bnn_st_writer *w = NULL;
        REQUIRE(bnn_st_writer_new(&w) == 0);
        const int64_t shape[1] = {1};
        const double v = 1.5;
        REQUIRE(bnn_st_writer_add(w, name, BNN_DT_F64, 1, shape, &v) == 0);
        REQUIRE(bnn_st_writer_save(w, path) == 0);
        bnn_st_writer_free(w);
        FILE *f = fopen(path, "rb");
        REQUIRE(f != NULL);
        unsigned char h[8];
        REQUIRE(fread(h, 1, 8, f) == 8);
        fclose(f);
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | h[i];
        CHECK(n % 8 == 0);
    }
    remove(path);
}

/* The allocation-free JSON check that tells a parse that ran out of memory from a malformed
 * header: it must never pass text cJSON refuses (that would call a damaged file "out of memory"),
 * and it passes the JSON a header holds. */
static void test_json_syntax(void) {
    static const char *const good[] = {
        "{}", " { \"a\" : [1, -2.5e-3, 0, 1E+2, true, false, null, \"x\"] } ",
        /* one string over two lines (parenthesised, or clang's -Wstring-concatenation asks) */
        ("{\"__metadata__\":{\"bnn.model\":\"mlp:2-2\"},\"0.weight\":{\"dtype\":\"F32\","
         "\"shape\":[2,2],\"data_offsets\":[0,16]}}"),
        "[\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\"]", "{\"a\":{\"b\":{\"c\":[[[]]]}}}", "0", "\"s\""};
    static const char *const bad[] = {
        "", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "[01]", "[1.]", "[.5]", "[+1]",
        "[1e]", "[\"\\ud83d\"]", "[\"\\ude00\"]", "[\"\\ud83d\\u0041\"]", "[\"\\x\"]", "[\"\\u12\"]",
        "[tru]", "[nul]", "{} x", "[\"a]", "{'a':1}", "[1 2]", "{1:2}", "[\"tab\there\"]"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const bool ok = bnn__json_syntax_ok(good[i], strlen(good[i]));
        if (!ok) fprintf(stderr, "json check refused good %s\n", good[i]);
        CHECK(ok);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const bool ok = bnn__json_syntax_ok(bad[i], strlen(bad[i]));
        if (ok) fprintf(stderr, "json check passed bad %s\n", bad[i]);
        CHECK(!ok);
    }
    /* Never more lenient than cJSON: everything it passes here, cJSON parses. */
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cJSON *j = cJSON_ParseWithLength(good[i], strlen(good[i]));
        CHECK(j != NULL);
        cJSON_Delete(j);
    }
    /* Random strings of JSON's tokens (200,000, up to 24 tokens): whatever the check passes,
     * cJSON parses. Many pass: the alphabet is mostly whole tokens. */
    static const char *const tok[] = {"{", "}", "[", "]", ",", ":", "\"a\"", "\"", "1", "-",
                                      "0", ".5", "e3", "true", "null", "fals", " ", "\\u",
                                      "d83d", "de00", "\"\\ud83d\\ude00\"", "\"\\n\"", "2"};
    bnn_rng r = bnn_rng_make(42, 0);
    int passed = 0, lenient = 0;
    for (int t = 0; t < 200000; t++) {
        char buf[512];
        size_t len = 0;
        const int ntok = 1 + (int)bnn_rng_below(&r, 24);
        for (int k = 0; k < ntok; k++) {
            const char *w = tok[bnn_rng_below(&r, sizeof tok / sizeof tok[0])];
            memcpy(buf + len, w, strlen(w));
            len += strlen(w);
        }
        if (!bnn__json_syntax_ok(buf, len)) continue;
        passed++;
        cJSON *j = cJSON_ParseWithLength(buf, len);
        if (!j && lenient++ < 5) fprintf(stderr, "json check passed what cJSON refuses: %.*s\n",
                                         (int)len, buf);
        cJSON_Delete(j);
    }
    fprintf(stderr, "json check: %d of 200000 random token strings passed, all parsed by cJSON "
            "(%d not)\n", passed, lenient);
    CHECK(lenient == 0);
    CHECK(passed > 1000);
    /* cJSON's nesting limit: 1000 levels pass, 1001 do not (as for cJSON). */
    char deep[2 * 1001 + 1];
    for (int d = 1000; d <= 1001; d++) {
        for (int k = 0; k < d; k++) deep[k] = '[', deep[2 * d - 1 - k] = ']';
        const size_t len = (size_t)(2 * d);
        cJSON *j = cJSON_ParseWithLength(deep, len);
        CHECK(bnn__json_syntax_ok(deep, len) == (j != NULL));
        CHECK((j != NULL) == (d == 1000));
        cJSON_Delete(j);
    }
}

int main(void) {
    mkdir(BNN_TEST_TMP, 0755); /* normally made by CMake; harmless when it exists */
    test_json_syntax();
    test_header_alignment();
    test_round_trip();
    test_empty_file();
    test_writer_errors();
    test_atomic_save();
    test_fixture();
    test_malformed_headers();
    test_malformed_lengths();
    test_bad_files();
    test_read_meta();
    test_misc();
    test_half_floats();
    return CHECK_DONE();
}
