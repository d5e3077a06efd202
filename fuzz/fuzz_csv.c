/* libFuzzer harness: the CSV reader (bnn_csv_load).
 *
 * Input layout: byte 0 chooses the settings, byte 1 a delimiter, the rest is the file.
 *   bits 0-1  header: auto-detect, yes, no, auto-detect (twice as likely: the default)
 *   bits 2-3  target column: -1 (default), 0, BNN_CSV_NO_TARGET, -(byte 1) (far from the end)
 *   bit  4    task: classification or regression
 *   bits 5-6  delimiter: ',', ';', '\t', or byte 1 itself (to reach the delimiter checks)
 *   bit  7    write the file through zlib's gzwrite (the reader takes .gz transparently)
 * The file is written to a per-process temp directory (the API takes a path), loaded, checked
 * with bnn_dataset_validate (what bnn_data_load does after every reader) and freed. A CSV
 * accepted as classification must also have labels in range, which validate checks. */
#include "bnn.h"

#include "fuzz_util.h"

static const char *g_path;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_path = fuzz_path("data.csv");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    const uint8_t opt = data[0], b1 = data[1];
    struct bnn_csv_params p = bnn_csv_default_params();
    switch (opt & 3) {
    case 1: p.header = true, p.header_auto = false; break;
    case 2: p.header = false, p.header_auto = false; break;
    default: break; /* auto-detect */
    }
    switch ((opt >> 2) & 3) {
    case 0: p.target_col = -1; break;
    case 1: p.target_col = 0; break;
    case 2: p.target_col = BNN_CSV_NO_TARGET; break;
    default: p.target_col = -(int64_t)b1; break;
    }
    p.task = (opt >> 4) & 1 ? BNN_TASK_REGRESSION : BNN_TASK_CLASSIFICATION;
    static const char delims[3] = {',', ';', '\t'};
    p.delimiter = ((opt >> 5) & 3) == 3 ? (char)b1 : delims[(opt >> 5) & 3];

    fuzz_write(g_path, data + 2, size - 2, opt >> 7, 0);
    bnn_dataset *ds = NULL;
    const int rc = bnn_csv_load(&ds, g_path, &p);
    fuzz_check_load(rc, ds, "csv");
    return 0;
}
