/* libFuzzer harness: the NPY reader (bnn_npy_load), plain and gzip-compressed.
 *
 * Input layout as fuzz_idx: byte 0 holds flags, bytes 1-2 (big-endian) the split point; the rest
 * is cut there into a features file X and a targets file Y.
 *   bit 0  write X through zlib's gzwrite (.npy.gz)
 *   bit 1  write Y through gzwrite
 *   bit 2  task: regression instead of classification
 * Each input is loaded with Y and the task, and with Y NULL (unlabelled). A loaded set must pass
 * bnn_dataset_validate (the reader promises finite values and labels in range). Files are written
 * to a per-process temp directory. */
#include "bnn.h"

#include "fuzz_util.h"

static const char *g_x, *g_y;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_x = fuzz_path("x.npy");
    g_y = fuzz_path("y.npy");
    return 0;
}

static void load(const char *y, bnn_task task) {
    bnn_dataset *ds = NULL;
    const int rc = bnn_npy_load(&ds, g_x, y, task);
    fuzz_check_load(rc, ds, "npy");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const uint8_t flags = data[0];
    size_t rest = size - 3;
    size_t cut = rest ? ((size_t)data[1] << 8 | data[2]) % (rest + 1) : 0;
    fuzz_write(g_x, data + 3, cut, flags & 1, 0);
    fuzz_write(g_y, data + 3 + cut, rest - cut, flags & 2, 0);
    load(g_y, flags & 4 ? BNN_TASK_REGRESSION : BNN_TASK_CLASSIFICATION);
    load(NULL, BNN_TASK_CLASSIFICATION);
    return 0;
}
