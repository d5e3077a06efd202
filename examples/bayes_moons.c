/* Using bnn as a library for Bayesian deep learning: on the two-moons problem, one network trained
 * by AdamW (a point estimate), the same network made Bayesian after the fact by a last-layer
 * Kronecker-factored Laplace approximation (prior precision by the marginal likelihood, GLM
 * probit predictive), and a network trained by IVON (a Gaussian over every weight, predictions
 * averaged over 32 weight samples). It prints each one's test accuracy, NLL and ECE, and its mean
 * predictive entropy on the test points and on points far from the data (a ring of radius 6,
 * where no training point lies): a point estimate stays confident there; a posterior should not.
 * The Laplace posterior is saved, for `bnn eval`, `bnn predict` or `bnn info`.
 *
 * Build: linked against libbnn by the project's CMake (build/bayes_moons).
 * Run:   build/bayes_moons [laplace.safetensors]
 * Every fallible call returns 0 or a negative code; bnn_last_error() says what went wrong. */
#include "bnn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define N_FAR 400

static int fail(const char *what, int rc) {
    fprintf(stderr, "bayes_moons: %s: %s (%s)\n", what, bnn_strerror(rc), bnn_last_error());
    return 1;
}

/* Test metrics and mean predictive entropies (nats) of model m with posterior q (NULL: the
 * model's weights), predicting with S weight samples (0: at the mean, or Laplace's GLM). */
static int report(const char *name, bnn_model *m, const bnn_posterior *q, int64_t samples,
                  const bnn_dataset *test, const float *far) {
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = samples;
    struct bnn_eval_result r;
    int rc = bnn_evaluate(m, q, test, &pp, 15, &r);
    if (rc) return fail("evaluate", rc);
    double probs[N_FAR * 2], h_far = 0.0;
    if ((rc = bnn_predict(m, q, far, N_FAR, BNN_TASK_CLASSIFICATION, &pp, probs, NULL, NULL, NULL)))
        return fail("predict", rc);
    for (int i = 0; i < 2 * N_FAR; i++)
        h_far -= probs[i] > 0.0 ? probs[i] * log(probs[i]) / N_FAR : 0.0;
    printf("%-8s %9.4f %9.4f %9.4f %13.4f %13.4f\n", name, r.accuracy, r.nll, r.cls.ece,
           r.cls.mean_entropy, h_far);
    return 0;
}

int main(int argc, char **argv) {
    const char *out = argc > 1 ? argv[1] : "laplace_moons.safetensors";
    bnn_dataset *train, *test;
    int rc;
    if ((rc = bnn_toy_moons(&train, 1000, 0.1, 1))) return fail("data", rc);
    if ((rc = bnn_toy_moons(&test, 500, 0.1, 2))) return fail("data", rc);
    /* Far from the data: a ring of radius 6 about the moons' centre (0.5, 0.25). */
    static float far[N_FAR * 2];
    for (int i = 0; i < N_FAR; i++) {
        const double t = 2.0 * 3.14159265358979323846 * i / N_FAR;
        far[2 * i] = (float)(0.5 + 6.0 * cos(t)), far[2 * i + 1] = (float)(0.25 + 6.0 * sin(t));
    }

    /* 1. The point estimate: AdamW, cosine schedule. */
    bnn_model *map;
    if ((rc = bnn_model_new(&map, "mlp:2-50-50-2"))) return fail("model", rc);
    struct bnn_train_params tp = bnn_train_default_params();
    tp.epochs = 30, tp.batch_size = 32, tp.lr = 1e-2f, tp.lr_schedule = BNN_LR_COSINE;
    if ((rc = bnn_train(map, train, &tp))) return fail("train adamw", rc);

    /* 2. Laplace after the fact: the GGN of the last layer in Kronecker factors over the
     * training data, the prior precision by 100 Adam steps on the marginal likelihood. */
    struct bnn_curv_params cp = bnn_curv_default_params(); /* last layer, kron, exact GGN */
    bnn_curv *c;
    if ((rc = bnn_curv_compute(&c, map, train, &cp))) return fail("curvature", rc);
    bnn_laplace *la;
    if ((rc = bnn_laplace_new_from_params(&la, c, bnn_model_cparams(map), BNN_TASK_CLASSIFICATION)))
        return fail("laplace", rc);
    if ((rc = bnn_laplace_optimize(la, 100))) return fail("prior precision", rc);
    const double prior = bnn_laplace_prior_prec(la);
    if ((rc = bnn_laplace_save(la, map, BNN_TASK_CLASSIFICATION, out, NULL, NULL, 0)))
        return fail("save", rc);
    bnn_posterior *q_la;
    if ((rc = bnn_posterior_from_laplace(&q_la, map, la))) return fail("laplace posterior", rc);

    /* 3. IVON: the same architecture trained as a Gaussian posterior from the start. */
    bnn_model *vm;
    if ((rc = bnn_model_new(&vm, "mlp:2-50-50-2"))) return fail("model", rc);
    struct bnn_train_params vp = bnn_train_default_params();
    vp.method = BNN_METHOD_IVON, vp.epochs = 30, vp.batch_size = 32, vp.lr = 0.5f;
    vp.ivon.hess_init = 0.1f, vp.lr_schedule = BNN_LR_COSINE; /* ess: the training-set size */
    bnn_trainer *t;
    if ((rc = bnn_trainer_new(&t, vm, train, &vp))) return fail("ivon", rc);
    if ((rc = bnn_trainer_run(t, vp.epochs))) return fail("train ivon", rc);
    bnn_posterior *q_ivon;
    if ((rc = bnn_trainer_posterior(t, &q_ivon))) return fail("ivon posterior", rc);

    printf("two moons: 1000 training and 500 test points, MLP 2-50-50-2 (ReLU)\n");
    printf("%-8s %9s %9s %9s %13s %13s\n", "model", "accuracy", "NLL", "ECE", "entropy test",
           "entropy far");
    if (report("adamw", map, NULL, 0, test, far) || report("laplace", map, q_la, 0, test, far) ||
        report("ivon", vm, q_ivon, 32, test, far))
        return 1;
    printf("laplace: last layer, kron, prior precision %.3f (marginal likelihood); saved %s\n",
           prior, out);

    bnn_posterior_free(q_ivon);
    bnn_trainer_free(t);
    bnn_model_free(vm);
    bnn_posterior_free(q_la);
    bnn_model_free(map);
    bnn_dataset_free(train);
    bnn_dataset_free(test);
    return 0;
}
