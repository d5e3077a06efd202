/* libFuzzer harness: the IDX reader (bnn_idx_load), plain and gzip-compressed.
 *
 * Input layout: byte 0 holds flags, bytes 1-2 (big-endian) the split point; the rest is cut
 * there into an images file and a labels file.
 *   bit 0  write the images through zlib's gzwrite (.gz)
 *   bit 1  write the labels through gzwrite
 *   bit 2  truncate the gzip stream of the images by (byte 1 & 15) bytes, to reach the
 *          truncated-trailer and bad-CRC paths (only with bit 0)
 *   bits 3-4  classes: 10, 1, 2, 256
 * Each input is loaded twice: with the labels file and classes, and with labels NULL
 * (unlabelled images). A loaded set must pass bnn_dataset_validate. Files are written to a
 * per-process temp directory. */
#include "bnn.h"

#include "fuzz_util.h"

static const char *g_img, *g_lbl;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_img = fuzz_path("images");
    g_lbl = fuzz_path("labels");
    return 0;
}

static void load(const char *labels, int64_t classes) {
    bnn_dataset *ds = NULL;
    const int rc = bnn_idx_load(&ds, g_img, labels, classes);
    fuzz_check_load(rc, ds, "idx");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const uint8_t flags = data[0];
    size_t rest = size - 3;
    size_t cut = rest ? ((size_t)data[1] << 8 | data[2]) % (rest + 1) : 0;
    const uint8_t *img = data + 3, *lbl = data + 3 + cut;
    static const int64_t classes[4] = {10, 1, 2, 256};

    fuzz_write(g_img, img, cut, flags & 1, (flags & 4) ? (data[1] & 15) : 0);
    fuzz_write(g_lbl, lbl, rest - cut, flags & 2, 0);

    load(g_lbl, classes[(flags >> 3) & 3]);
    load(NULL, 10);
    return 0;
}
