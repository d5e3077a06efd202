/* MAP training: shuffled mini-batches, the likelihood's mean loss, backward, one optimizer step.
 * All buffers are allocated before the first step. */
#include "core/internal.h"

#include <math.h>
#include <string.h>

struct bnn_train_params bnn_train_default_params(void) {
    struct bnn_train_params p = {
        .method = BNN_METHOD_ADAMW,
        .epochs = 10,
        .batch_size = 128,
        .lr = 1e-3f,
        .weight_decay = 1e-4f,
        .momentum = 0.9f,
        .seed = 0,
        .init = true,
        .sigma = 1.0,
    };
    return p;
}

float bnn_lr_at(bnn_lr_schedule sched, float lr, int64_t t, int64_t total, int64_t warmup) {
    if (warmup > 0 && t < warmup) return lr * (float)(t + 1) / (float)warmup;
    if (sched == BNN_LR_CONSTANT || total <= warmup) return lr;
    double frac = (double)(t - warmup) / (double)(total - warmup);
    return (float)((double)lr * 0.5 * (1.0 + cos(3.14159265358979323846 * frac)));
}

static int check_data(const bnn_model *m, const bnn_dataset *ds) {
    if (ds->n < 1) return bnn__error(BNN_EINVAL, "the dataset is empty");
    if (ds->d != bnn_model_input_dim(m))
        return bnn__error(BNN_ESHAPE, "the data has %lld features but model %s expects %lld",
                          (long long)ds->d, bnn_model_spec(m), (long long)bnn_model_input_dim(m));
    int64_t k = bnn_model_output_dim(m);
    if (ds->task == BNN_TASK_CLASSIFICATION && ds->k > k)
        return bnn__error(BNN_ESHAPE, "the data has %lld classes but model %s has %lld outputs",
                          (long long)ds->k, bnn_model_spec(m), (long long)k);
    if (ds->task == BNN_TASK_REGRESSION && ds->k != k)
        return bnn__error(BNN_ESHAPE, "the data has %lld targets but model %s has %lld outputs",
                          (long long)ds->k, bnn_model_spec(m), (long long)k);
    return 0;
}

int bnn_train(bnn_model *m, const bnn_dataset *ds, const struct bnn_train_params *p) {
    int rc = check_data(m, ds);
    if (rc) return rc;
    if (p->epochs < 0 || p->batch_size < 1)
        return bnn__error(BNN_EINVAL, "epochs must be >= 0 and batch size >= 1");
    if (!(p->lr > 0.0f) || !isfinite(p->lr))
        return bnn__error(BNN_EINVAL, "learning rate must be a positive number");
    if (!(p->weight_decay >= 0.0f)) return bnn__error(BNN_EINVAL, "weight decay must be >= 0");
    if (p->warmup_epochs < 0 || (p->epochs > 0 && p->warmup_epochs > p->epochs))
        return bnn__error(BNN_EINVAL, "warm-up epochs must be between 0 and the number of epochs");
    if (ds->task == BNN_TASK_REGRESSION && !(p->sigma > 0.0 && isfinite(p->sigma)))
        return bnn__error(BNN_EINVAL, "noise scale sigma must be positive");
    const int64_t n = ds->n, np = bnn_model_nparams(m), k = bnn_model_output_dim(m);
    const int64_t bs = p->batch_size < n ? p->batch_size : n;
    const int64_t steps = (n + bs - 1) / bs;
    if ((rc = bnn_model_reserve(m, bs))) return rc;

    size_t pb = bnn__bytes(np, sizeof(float));
    float *grad = bnn__alloc(pb), *s1 = bnn__alloc(pb), *s2 = bnn__alloc(pb);
    float *xb = bnn__alloc(bnn__bytes(bs * ds->d, sizeof(float)));
    float *dout = bnn__alloc(bnn__bytes(bs * k, sizeof(float)));
    float *yt = ds->targets ? bnn__alloc(bnn__bytes(bs * ds->k, sizeof(float))) : NULL;
    int32_t *yl = ds->labels ? bnn__alloc(bnn__bytes(bs, sizeof(int32_t))) : NULL;
    int64_t *perm = bnn__alloc(bnn__bytes(n, sizeof(int64_t)));
    if (!grad || !s1 || !s2 || !xb || !dout || !perm || (ds->targets && !yt) ||
        (ds->labels && !yl)) {
        rc = bnn__error(BNN_ENOMEM, "cannot allocate training buffers for %lld parameters",
                        (long long)np);
        goto done;
    }
    if (p->init) bnn_model_init(m, p->seed);
    bnn_lik lik = {ds->task == BNN_TASK_CLASSIFICATION ? BNN_LIK_CATEGORICAL : BNN_LIK_GAUSSIAN,
                   p->sigma};
    struct bnn_adamw_params ap = {p->lr, 0.9f, 0.999f, 1e-8f, p->weight_decay};
    struct bnn_sgd_params sp = {p->lr, p->momentum, p->weight_decay, 0.0f, false};
    float *w = bnn_model_params(m);
    int64_t t = 0;
    for (int64_t epoch = 0; epoch < p->epochs; epoch++) {
        if ((rc = bnn_permutation(perm, n, p->seed, (uint64_t)epoch))) goto done;
        /* Dropout masks come from a stream of their own per epoch, so they are reproducible
         * and independent of the shuffling. */
        bnn_rng drop = bnn_rng_make(p->seed, ((uint64_t)1 << 32) + (uint64_t)epoch);
        double sum = 0.0;
        for (int64_t s = 0; s < steps; s++) {
            int64_t lo = s * bs, b = (lo + bs <= n) ? bs : n - lo;
            bnn_dataset_gather(ds, perm + lo, b, xb, yl, yt);
            const float *f = bnn_model_forward(m, w, xb, b, true, &drop);
            double loss = bnn_lik_loss(&lik, dout, f, yl, yt, b, k);
            if (!isfinite(loss)) {
                rc = bnn__error(BNN_EDIVERGED, "the training loss became %s at epoch %lld, step "
                                "%lld (try a smaller learning rate)", isnan(loss) ? "NaN" : "Inf",
                                (long long)epoch + 1, (long long)s + 1);
                goto done;
            }
            sum += loss;
            memset(grad, 0, pb);
            bnn_model_backward(m, w, dout, grad);
            float lr = bnn_lr_at(p->lr_schedule, p->lr, t, steps * p->epochs,
                                 steps * p->warmup_epochs);
            ap.lr = sp.lr = lr;
            t++;
            if (p->method == BNN_METHOD_ADAMW) bnn_adamw_step(w, s1, s2, grad, np, t, &ap);
            else bnn_sgd_step(w, s1, grad, np, t, &sp);
            if (p->progress && p->progress(p->progress_ctx, epoch, s + 1, steps, sum / (double)(s + 1),
                                           false)) {
                rc = bnn__error(BNN_EINVAL, "training stopped by the caller");
                goto done;
            }
        }
        /* An overflowing update shows up in the weights before it shows in a loss. */
        for (int64_t i = 0; i < np; i++) {
            if (!isfinite(w[i])) {
                rc = bnn__error(BNN_EDIVERGED, "the weights became non-finite during epoch %lld "
                                "(try a smaller learning rate)", (long long)epoch + 1);
                goto done;
            }
        }
        if (p->progress &&
            p->progress(p->progress_ctx, epoch, steps, steps, sum / (double)steps, true)) {
            rc = bnn__error(BNN_EINVAL, "training stopped by the caller");
            goto done;
        }
    }
done:
    bnn__free(grad), bnn__free(s1), bnn__free(s2), bnn__free(xb), bnn__free(dout);
    bnn__free(yt), bnn__free(yl), bnn__free(perm);
    return rc;
}

int bnn_evaluate(bnn_model *m, const bnn_dataset *ds, const bnn_lik *lik,
                 struct bnn_eval_result *out) {
    memset(out, 0, sizeof *out);
    int rc = check_data(m, ds);
    if (rc) return rc;
    if (lik->kind == BNN_LIK_GAUSSIAN && !(lik->sigma > 0.0))
        return bnn__error(BNN_EINVAL, "noise scale sigma must be positive");
    const int64_t n = ds->n, k = bnn_model_output_dim(m);
    int64_t bs = bnn_model_max_batch(m);
    if (bs < 1) {
        if ((rc = bnn_model_reserve(m, n < 256 ? n : 256))) return rc;
        bs = bnn_model_max_batch(m);
    }
    double nll = 0.0, sse = 0.0;
    int64_t correct = 0;
    for (int64_t lo = 0; lo < n; lo += bs) {
        int64_t b = lo + bs <= n ? bs : n - lo;
        const float *f = bnn_model_forward(m, bnn_model_cparams(m), ds->x + lo * ds->d, b, false,
                                           NULL);
        const int32_t *yl = ds->labels ? ds->labels + lo : NULL;
        const float *yt = ds->targets ? ds->targets + lo * ds->k : NULL;
        nll += bnn_lik_loss(lik, NULL, f, yl, yt, b, k) * (double)b;
        for (int64_t r = 0; r < b; r++) {
            const float *row = f + r * k;
            if (ds->task == BNN_TASK_CLASSIFICATION) {
                int64_t best = 0; /* ties go to the lowest index */
                for (int64_t j = 1; j < k; j++)
                    if (row[j] > row[best]) best = j;
                correct += best == yl[r];
            } else {
                for (int64_t j = 0; j < k; j++) {
                    double e = (double)row[j] - (double)yt[r * k + j];
                    sse += e * e;
                }
            }
        }
    }
    out->task = ds->task;
    out->n = n;
    out->nll = nll / (double)n;
    if (ds->task == BNN_TASK_CLASSIFICATION) out->accuracy = (double)correct / (double)n;
    else out->rmse = sqrt(sse / (double)(n * k));
    if (!isfinite(out->nll))
        return bnn__error(BNN_EDIVERGED, "the model's predictions are not finite (NLL %g)",
                          out->nll);
    return 0;
}
