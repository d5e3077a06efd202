/* IDX reader (the MNIST / Fashion-MNIST format, LeCun et al., http://yann.lecun.com/exdb/mnist/):
 * a magic of two zero bytes, a dtype byte and a rank byte, then one big-endian u32 per dimension,
 * then the elements in row-major order. Files are read through zlib's gzopen/gzread, which reads
 * gzip-compressed and plain files alike, so "x.gz" and "x" both work. */
#include "data/data.h"

#include <string.h>

/* More elements than this in one file is a corrupted header, not a dataset: 2^40 u8 elements
 * would be a terabyte. The bound also keeps every product of dimensions inside int64_t. */
#define IDX_MAX_ELEMENTS ((int64_t)1 << 40)

typedef struct idx_header {
    int dtype;
    int ndim;
    int64_t dims[255];
    int64_t items;    /* dims[0] */
    int64_t per_item; /* product of dims[1..ndim) (1 when ndim is 1) */
} idx_header;

static const char *dtype_name(int dtype) {
    switch (dtype) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return NULL;
    }
}

static int read_header(gzFile f, const char *path, idx_header *h) {
    unsigned char magic[4];
    int r = gzread(f, magic, 4);
    if (r == 0) {
        int zerr = Z_OK;
        gzerror(f, &zerr);
        if (zerr == Z_OK) return bnn__error(BNN_EFORMAT, "%s: the file is empty", path);
    }
    if (r != 4) return bnn__gz_read_failure(f, path, "magic number", 4, r > 0 ? (size_t)r : 0);
    /* NumPy's mark (\x93NUMPY): a file read as IDX by its name (a pipe, told apart by name
     * alone) that holds an array from np.save */
    if (magic[0] == 0x93 && magic[1] == 'N' && magic[2] == 'U' && magic[3] == 'M')
        return bnn__error(BNN_EFORMAT, "%s: a NumPy file (np.save), not IDX", path);
    if (magic[0] != 0 || magic[1] != 0 || !dtype_name(magic[2]) || magic[3] == 0)
        return bnn__error(BNN_EFORMAT,
                          "%s: bad magic number %02x %02x %02x %02x: not an IDX file "
                          "(expected 00 00, a dtype in 08..0e and a rank >= 1)",
                          path, magic[0], magic[1], magic[2], magic[3]);
    h->dtype = magic[2];
    h->ndim = magic[3];
    unsigned char raw[4 * 255];
    int rc = bnn__gz_read_exact(f, path, "dimensions", raw, 4 * (size_t)h->ndim);
    if (rc) return rc;
    int64_t total = 1;
    h->per_item = 1;
    for (int i = 0; i < h->ndim; i++) {
        const unsigned char *p = raw + 4 * i;
        h->dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                               (uint32_t)p[3]);
        if (h->dims[i] == 0)
            return bnn__error(BNN_EFORMAT, "%s: dimension %d is 0 (an empty IDX file)", path, i);
        if (h->dims[i] > IDX_MAX_ELEMENTS / total)
            return bnn__error(BNN_EFORMAT,
                              "%s: the dimensions describe more than 2^40 elements "
                              "(a corrupted header?)",
                              path);
        total *= h->dims[i];
        if (i > 0) h->per_item *= h->dims[i];
    }
    h->items = h->dims[0];
    return 0;
}

/* Fills the dataset from the raw bytes. Pixels become p / 255 exactly as torchvision's ToTensor
 * computes them (a float division per value), so inputs match a PyTorch pipeline bit for bit. */
static void convert(bnn_dataset *ds, const unsigned char *pixels, const unsigned char *labels,
                    const idx_header *hi) {
    float scale[256];
    for (int v = 0; v < 256; v++)
        scale[v] = (float)v / 255.0f;
    for (int64_t i = 0; i < ds->n * ds->d; i++)
        ds->x[i] = scale[pixels[i]];
    for (int64_t i = 0; i < ds->n; i++)
        ds->labels[i] = labels ? labels[i] : 0;
    /* A rank-3 file is (n, h, w): one-channel images. Other ranks give no image shape, since
     * (n, h, w, c) and (n, c, h, w) cannot be told apart from the header. */
    if (hi->ndim == 3) {
        int64_t shape[3] = {1, hi->dims[1], hi->dims[2]};
        bnn_dataset_set_image_shape(ds, shape);
    }
}

int bnn_idx_load(bnn_dataset **out, const char *images_path, const char *labels_path,
                 int64_t classes) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_idx_load: out is NULL");
    *out = NULL;
    if (!images_path) return bnn__error(BNN_EINVAL, "bnn_idx_load: the images path is NULL");
    /* Without a labels file the set has one class whatever `classes` says (it is ignored). */
    if (labels_path && (classes < 1 || classes > INT32_MAX))
        return bnn__error(BNN_EINVAL, "bnn_idx_load: classes must be in 1 .. 2^31 - 1 (got %lld)",
                          (long long)classes);

    gzFile fi = NULL, fl = NULL;
    unsigned char *pixels = NULL, *labels = NULL;
    bnn_dataset *ds = NULL;
    idx_header hi, hl;
    int64_t n = 0, d = 0;
    int rc;
    if ((rc = bnn__gz_open(&fi, images_path))) goto fail;
    if ((rc = read_header(fi, images_path, &hi))) goto fail;
    if (hi.dtype != 0x08 || hi.ndim < 2) {
        rc = bnn__error(BNN_EFORMAT,
                        "%s: images must be unsigned bytes (dtype 08) with rank >= 2; "
                        "this file holds %s with rank %d",
                        images_path, dtype_name(hi.dtype), hi.ndim);
        goto fail;
    }
    /* Without a labels file the images are unlabelled (one class, labels 0), e.g. OOD inputs. */
    if (!labels_path) hl = hi, classes = 1;
    if (labels_path && (rc = bnn__gz_open(&fl, labels_path))) goto fail;
    if (labels_path && (rc = read_header(fl, labels_path, &hl))) goto fail;
    if (labels_path && (hl.dtype != 0x08 || hl.ndim != 1)) {
        rc = bnn__error(BNN_EFORMAT,
                        "%s: labels must be unsigned bytes (dtype 08) with rank 1; "
                        "this file holds %s with rank %d",
                        labels_path, dtype_name(hl.dtype), hl.ndim);
        goto fail;
    }
    /* Compare counts before reading either payload, so a mismatched pair fails at once. */
    if (hl.items != hi.items) {
        rc = bnn__error(BNN_EFORMAT, "%s holds %lld images but %s holds %lld labels", images_path,
                        (long long)hi.items, labels_path, (long long)hl.items);
        goto fail;
    }
    n = hi.items, d = hi.per_item;
    if (bnn__bytes(n * d, 1) == 0) {
        rc = bnn__error(BNN_ENOMEM, "%s: %lld x %lld pixels do not fit in memory here", images_path,
                        (long long)n, (long long)d);
        goto fail;
    }

    if (labels_path && (rc = bnn__gz_read_payload(fl, labels_path, "labels", (size_t)n, &labels)))
        goto fail;
    for (int64_t i = 0; labels && i < n; i++) {
        if (labels[i] >= classes) {
            rc = bnn__error(BNN_EFORMAT,
                            "%s: label %d of item %lld (counting from 0) is not in "
                            "[0, %lld)",
                            labels_path, labels[i], (long long)i, (long long)classes);
            goto fail;
        }
    }
    rc = fl ? bnn__gz_close(fl, labels_path) : 0;
    fl = NULL;
    if (rc) goto fail;

    if ((rc = bnn__gz_read_payload(fi, images_path, "pixel data", (size_t)(n * d), &pixels)))
        goto fail;
    rc = bnn__gz_close(fi, images_path);
    fi = NULL;
    if (rc) goto fail;

    if ((rc = bnn_dataset_new(&ds, BNN_TASK_CLASSIFICATION, n, d, 0, classes))) goto fail;
    convert(ds, pixels, labels, &hi);
    ds->unlabelled = !labels_path;
    free(pixels);
    free(labels);
    *out = ds;
    return 0;

fail:
    /* The error detail is already recorded; closing here cannot make it more useful. */
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    free(pixels);
    free(labels);
    bnn_dataset_free(ds);
    return rc;
}
