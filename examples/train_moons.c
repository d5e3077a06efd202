/* Using bnn as a library: train a small MLP on the two-moons problem, report test accuracy and
 * NLL, and save the model. Build: linked against libbnn by the project's CMake (build/train_moons).
 * Every fallible call returns 0 or a negative code; bnn_last_error() says what went wrong. */
#include "bnn.h"

#include <stdio.h>

static int fail(const char *what, int rc) {
    fprintf(stderr, "train_moons: %s: %s (%s)\n", what, bnn_strerror(rc), bnn_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *out = argc > 1 ? argv[1] : "moons.safetensors";
    bnn_dataset *train, *test;
    int rc;
    if ((rc = bnn_toy_moons(&train, 1000, 0.1, 1))) return fail("data", rc);
    if ((rc = bnn_toy_moons(&test, 500, 0.1, 2))) return fail("data", rc);

    bnn_model *m;
    if ((rc = bnn_model_new(&m, "mlp:2-50-50-2:tanh"))) return fail("model", rc);

    struct bnn_train_params tp = bnn_train_default_params();
    tp.epochs = 30, tp.batch_size = 32, tp.lr = 1e-2f, tp.lr_schedule = BNN_LR_COSINE;
    if ((rc = bnn_train(m, train, &tp))) return fail("train", rc);

    struct bnn_predict_params pp = bnn_predict_default_params();
    struct bnn_eval_result r;
    if ((rc = bnn_evaluate(m, NULL, test, &pp, 15, &r))) return fail("eval", rc);
    printf("test accuracy %.4f  nll %.4f\n", r.accuracy, r.nll);

    if ((rc = bnn_model_save(m, out, BNN_TASK_CLASSIFICATION, NULL, NULL, 0)))
        return fail("save", rc);
    printf("saved %s\n", out);
    bnn_model_free(m);
    bnn_dataset_free(train);
    bnn_dataset_free(test);
    return 0;
}
