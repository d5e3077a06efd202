/* The training loop for every method: shuffled mini-batches, the likelihood's mean loss,
 * backward, one optimizer step. MAP (SGD, AdamW), IVON and mean-field VI share it; they differ
 * in what is sampled before the forward pass and which update follows. All buffers are
 * allocated when the trainer is made, never inside a step.
 *
 * Random streams (all keyed by the run's seed): 0..L−1 the layers' initialisation, 2^32 + epoch
 * the dropout masks of an epoch, 2·2^32 + epoch the shuffle (src/data/data.h), 4·2^32 the
 * weight noise of IVON and mean-field VI (its counter is the "generator position" a checkpoint
 * saves). */
#include "core/internal.h"

#include <errno.h>
#include <math.h>
#include <string.h>

struct bnn_trainer {
    bnn_model *m;
    const bnn_dataset *ds;
    struct bnn_train_params p;
    int64_t n, np, k, bs, steps; /* examples, parameters, outputs, batch, steps per epoch */
    int64_t epoch, t;            /* completed epochs and optimizer steps */
    /* The steps of the current epoch already taken (0 at an epoch boundary, up to steps while
     * its end is pending), its dropout generator and its loss sum: a run the progress callback
     * stopped inside an epoch continues with the next bnn_trainer_run at the next step, exactly
     * as an uninterrupted run would. Checkpoints are taken at epoch boundaries only. */
    int64_t in_epoch;
    bnn_rng in_drop;
    double in_sum; /* Σ batch loss × batch size over the epoch's steps so far */
    /* The last finished epoch's mean loss per example (NaN before one finishes in this
     * process), for bnn_trainer_check. */
    double last_mean;
    bnn_rng noise;               /* IVON / MFVI weight noise */
    bnn_lik lik;                 /* the model's likelihood, with the noise σ of training */
    /* State vectors, all of np floats, in the model's layout. */
    float *grad;
    float *s1, *s2;       /* sgd: buf; adamw: m, v; ivon: h, g; mfvi: μ's m, v */
    float *rho, *s3, *s4; /* mfvi: ρ and its AdamW m, v */
    float *grad_rho;      /* mfvi */
    void *mfvi_work;      /* mfvi: scratch of bnn_mfvi_loss_ws, allocated once */
    float *theta, *gbar;  /* ivon: the weight sample, the mean gradient */
    float *eps, *geps;    /* ivon with several samples: ε and mean ε ⊙ ĝ */
    float *nu;            /* ivon, one sample: ν = ε ⊙ σ, the noise θ adds to m (for ĥ) */
    /* ivon, one sample: θ already holds the next step's sample, drawn by the fused step, and the
     * noise counter has moved past it. A run ends by handing that draw back (ivon_settle), so
     * between runs (and in checkpoints) the state is just m, h, g and the counter. */
    bool theta_drawn;
    /* The first step's mini-batch loss (NaN until it is taken): a loss that grows far past it
     * is a diverging run even while it is still finite (run_epochs). Kept in checkpoints. */
    double loss_ref;
    uint64_t data_hash; /* bnn__dataset_hash(ds), taken once: checkpoints keep it */
    /* Batch buffers. */
    float *xb, *dout, *yt;
    int32_t *yl;
    int64_t *perm;
};

const char *bnn_method_name(bnn_method m) {
    switch (m) {
    case BNN_METHOD_SGD: return "sgd";
    case BNN_METHOD_ADAMW: return "adamw";
    case BNN_METHOD_IVON: return "ivon";
    case BNN_METHOD_MFVI: return "mfvi";
    }
    return "?";
}

int bnn_method_parse(const char *name, bnn_method *out) {
    if (!name || !out) return bnn__error(BNN_EINVAL, "bnn_method_parse: name and out are required");
    const char *names[BNN_METHOD_MFVI + 1];
    for (int i = 0; i <= BNN_METHOD_MFVI; i++) names[i] = bnn_method_name((bnn_method)i);
    int i;
    const int rc = bnn__name_parse(names, BNN_METHOD_MFVI + 1, name, "method", &i);
    if (!rc) *out = (bnn_method)i;
    return rc;
}

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
        .lr_schedule = BNN_LR_CONSTANT,
        .warmup_epochs = 0,
    };
    p.ivon = bnn_ivon_default_params();
    p.mfvi = bnn_mfvi_default_params();
    return p;
}

float bnn_lr_at(bnn_lr_schedule sched, float lr, int64_t t, int64_t total, int64_t warmup) {
    if (sched != BNN_LR_CONSTANT && sched != BNN_LR_COSINE) return NAN; /* (it acted as cosine) */
    /* the cosine is periodic: past the end it would rise again; and it ends at total whatever
     * the warm-up (a warm-up longer than the run is cut off there) */
    if (sched == BNN_LR_COSINE && t >= total) return 0.0f;
    if (warmup > 0 && t < warmup) return lr * (float)(t + 1) / (float)warmup;
    if (sched == BNN_LR_CONSTANT) return lr;
    double frac = (double)(t - warmup) / (double)(total - warmup);
    return (float)((double)lr * 0.5 * (1.0 + cos(3.14159265358979323846 * frac)));
}

int bnn__check_data(const bnn_model *m, const bnn_dataset *ds) {
    if (ds->n < 1) return bnn__error(BNN_EINVAL, "the dataset is empty");
    /* NaN or Inf features and labels outside the classes, named by row, rather than a run that
     * "diverges" or a likelihood that meets an impossible label. A set that bnn_data_load
     * validated and nobody could have changed since (ds->checked) is not scanned again: on
     * Fashion-MNIST the scan alone takes about 6 ms, near a last-layer diag fit's own work. */
    int rc = ds->checked ? 0 : bnn_dataset_validate(ds);
    if (rc) return rc;
    if (ds->unlabelled)
        return bnn__error(BNN_EINVAL, "the data has no labels (inputs only): it can be predicted "
                          "on or serve as out-of-distribution data, not be trained or scored on");
    if (ds->d != bnn_model_input_dim(m))
        return bnn__error(BNN_ESHAPE, "the data has %lld feature%s but model %s expects %lld",
                          (long long)ds->d, ds->d == 1 ? "" : "s", bnn_model_spec(m),
                          (long long)bnn_model_input_dim(m));
    const bnn_lik_kind lik = bnn_model_lik(m, ds->task);
    const int64_t k = bnn_model_output_dim(m), c = bnn_lik_pred_dim(lik, k);
    if (bnn_lik_task(lik) != ds->task)
        return bnn__error(BNN_EINVAL, "model %s has a %s likelihood, which is for %s, but the data "
                          "is for %s", bnn_model_spec(m), bnn_lik_name(lik),
                          bnn_lik_task(lik) == BNN_TASK_REGRESSION ? "regression" : "classification",
                          ds->task == BNN_TASK_REGRESSION ? "regression" : "classification");
    if (lik == BNN_LIK_BERNOULLI && ds->k > 2)
        return bnn__error(BNN_ESHAPE, "the data has %lld classes but a bernoulli likelihood is "
                          "for 2 (labels 0 and 1): a categorical likelihood is for more", (long long)ds->k);
    if (lik == BNN_LIK_HETERO_GAUSSIAN && ds->k != 1)
        return bnn__error(BNN_ESHAPE, "the data has %lld target%s but a hetero-gaussian "
                          "likelihood is for one", (long long)ds->k, ds->k == 1 ? "" : "s");
    if (ds->task == BNN_TASK_CLASSIFICATION && ds->k > c)
        return bnn__error(BNN_ESHAPE, "the data has %lld classes but model %s has %lld output%s%s",
                          (long long)ds->k, bnn_model_spec(m), (long long)k, k == 1 ? "" : "s",
                          k == 1 && ds->k == 2 ? " (one logit for 2 classes: a bernoulli "
                                                 "likelihood)" : "");
    if (ds->task == BNN_TASK_REGRESSION && ds->k != c)
        return bnn__error(BNN_ESHAPE, "the data has %lld target%s but model %s has %lld output%s",
                          (long long)ds->k, ds->k == 1 ? "" : "s", bnn_model_spec(m),
                          (long long)k, k == 1 ? "" : "s");
    return 0;
}

static int check_params(const struct bnn_train_params *p, const bnn_dataset *ds) {
    if (p->method < BNN_METHOD_SGD || p->method > BNN_METHOD_MFVI)
        return bnn__error(BNN_EINVAL, "unknown method %d", (int)p->method);
    if (p->lr_schedule != BNN_LR_CONSTANT && p->lr_schedule != BNN_LR_COSINE)
        return bnn__error(BNN_EINVAL, "unknown learning-rate schedule %d", (int)p->lr_schedule);
    if (p->epochs < 0 || p->epochs > BNN_MAX_EPOCHS || p->batch_size < 1)
        return bnn__error(BNN_EINVAL, "epochs must be in [0, %d] and batch size >= 1 (got %lld "
                          "and %lld)", BNN_MAX_EPOCHS, (long long)p->epochs,
                          (long long)p->batch_size);
    if (!(p->lr > 0.0f) || !isfinite(p->lr))
        return bnn__error(BNN_EINVAL, "learning rate must be a positive float (got %g)",
                          (double)p->lr);
    if (!(p->weight_decay >= 0.0f) || !isfinite(p->weight_decay))
        return bnn__error(BNN_EINVAL, "weight decay must be a float >= 0 (got %g)",
                          (double)p->weight_decay);
    if (p->method == BNN_METHOD_SGD && !(p->momentum >= 0.0f && p->momentum < 1.0f))
        return bnn__error(BNN_EINVAL, "sgd momentum must be in [0, 1) (got %g)",
                          (double)p->momentum);
    if (p->warmup_epochs < 0 || p->warmup_epochs > p->epochs)
        return bnn__error(BNN_EINVAL, "warm-up epochs must be between 0 and the number of epochs");
    /* Only regression uses σ, but every saved file records it and the other commands refuse a
     * file whose bnn.sigma is not positive: a classifier's run (a resumed checkpoint whose σ was
     * damaged) must not write one. */
    if (!(p->sigma > 0.0 && isfinite(p->sigma)))
        return bnn__error(BNN_EINVAL, "noise scale sigma must be positive and finite (got %g)",
                          p->sigma);
    if (p->method == BNN_METHOD_IVON) {
        const struct bnn_ivon_params *q = &p->ivon;
        if (!(q->ess >= 0.0) || !isfinite(q->ess))
            return bnn__error(BNN_EINVAL, "IVON: ess must be positive (0 means the data size)");
        if (!(q->hess_init > 0.0f) || !isfinite(q->hess_init))
            return bnn__error(BNN_EINVAL, "IVON: hess-init must be positive and finite (got %g)",
                              (double)q->hess_init);
        if (!(q->beta1 >= 0.0 && q->beta1 < 1.0) || !(q->beta2 >= 0.0 && q->beta2 < 1.0))
            return bnn__error(BNN_EINVAL, "IVON: beta1 and beta2 must be in [0, 1)");
        if (q->mc_samples < 1 || q->mc_samples > BNN_MAX_MC_SAMPLES)
            return bnn__error(BNN_EINVAL, "IVON: mc-samples must be in [1, %d]", BNN_MAX_MC_SAMPLES);
        if (!(q->clip_radius > 0.0f))
            return bnn__error(BNN_EINVAL, "IVON: clip radius must be > 0 (inf for none)");
    }
    if (p->method == BNN_METHOD_MFVI) {
        const struct bnn_mfvi_params *q = &p->mfvi;
        if (!(q->prior_prec > 0.0) || !isfinite(q->prior_prec))
            return bnn__error(BNN_EINVAL, "MFVI: prior precision must be > 0");
        if (!(q->init_std > 0.0f) || !isfinite(q->init_std))
            return bnn__error(BNN_EINVAL, "MFVI: initial std must be > 0");
        if (q->init_std < BNN_MFVI_MIN_STD)
            return bnn__error(BNN_EINVAL, "MFVI: initial std %g is below the smallest std MFVI "
                              "represents, 2^-63 = %.3g", (double)q->init_std,
                              (double)BNN_MFVI_MIN_STD);
        if (q->mc_samples < 1 || q->mc_samples > BNN_MAX_MC_SAMPLES)
            return bnn__error(BNN_EINVAL, "MFVI: mc-samples must be in [1, %d]", BNN_MAX_MC_SAMPLES);
        if (!(q->kl_weight >= 0.0) || !isfinite(q->kl_weight))
            return bnn__error(BNN_EINVAL, "MFVI: KL weight must be finite and >= 0 (got %g)",
                              (double)q->kl_weight);
        /* named here, before a first step that could only "diverge" */
        if (bnn__mfvi_kl_factor(q->kl_weight, q->prior_prec, ds->n) > FLT_MAX)
            return bnn__error(BNN_EINVAL, "MFVI: KL weight %g times prior precision %g over %lld "
                              "examples is beyond float range: the KL term's gradient would be "
                              "infinite", q->kl_weight, q->prior_prec, (long long)ds->n);
    }
    return 0;
}

void bnn_trainer_free(bnn_trainer *tr) {
    if (!tr) return;
    float *v[] = {tr->grad, tr->s1, tr->s2, tr->rho, tr->s3, tr->s4, tr->grad_rho, tr->theta,
                  tr->eps, tr->nu, tr->gbar, tr->geps, tr->xb, tr->dout, tr->yt};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) bnn__free(v[i]);
    bnn__free(tr->yl);
    bnn__free(tr->perm);
    bnn__free(tr->mfvi_work);
    free(tr);
}

/* Allocates everything the method needs; initialises the state as at step 0. */
static int trainer_alloc(bnn_trainer **out, bnn_model *m, const bnn_dataset *ds,
                         const struct bnn_train_params *p) {
    *out = NULL;
    if (!m || !ds || !p)
        return bnn__error(BNN_EINVAL, "training needs a model, a dataset and params");
    int rc = bnn__check_data(m, ds);
    /* One class present, whatever the label's number (labels 2 alone make a 3-output model whose
     * classes 0 and 1 have no example): nothing to tell apart. */
    bool one_class = !rc && ds->task == BNN_TASK_CLASSIFICATION;
    for (int64_t i = 1; one_class && i < ds->n; i++) one_class = ds->labels[i] == ds->labels[0];
    if (one_class)
        rc = bnn__error(BNN_EINVAL, "the training data has one class only (every label is %d); "
                        "classification needs examples of at least 2", (int)ds->labels[0]);
    if (!rc) rc = check_params(p, ds);
    if (rc) return rc;
    bnn_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return bnn__error(BNN_ENOMEM, "out of memory");
    tr->m = m, tr->ds = ds, tr->p = *p;
    tr->n = ds->n, tr->np = bnn_model_nparams(m), tr->k = bnn_model_output_dim(m);
    tr->lik = (bnn_lik){bnn_model_lik(m, ds->task), p->sigma};
    tr->bs = p->batch_size < ds->n ? p->batch_size : ds->n;
    tr->steps = (tr->n + tr->bs - 1) / tr->bs;
    if (p->method == BNN_METHOD_IVON && tr->p.ivon.ess == 0.0) tr->p.ivon.ess = (double)ds->n;
    tr->noise = bnn_rng_make(p->seed, BNN_STREAM_NOISE);
    tr->loss_ref = NAN;
    tr->last_mean = NAN;
    tr->data_hash = bnn__dataset_hash(ds);
    /* The method's arrays of np floats, listed once: counted against the memory limit here,
     * allocated below. */
    const bnn_method me = p->method;
    float **arr[10];
    int narr = 0;
    arr[narr++] = &tr->grad, arr[narr++] = &tr->s1;
    if (me != BNN_METHOD_SGD) arr[narr++] = &tr->s2;
    if (me == BNN_METHOD_MFVI)
        arr[narr++] = &tr->rho, arr[narr++] = &tr->s3, arr[narr++] = &tr->s4,
        arr[narr++] = &tr->grad_rho;
    if (me == BNN_METHOD_IVON) arr[narr++] = &tr->theta, arr[narr++] = &tr->gbar;
    if (me == BNN_METHOD_IVON && p->ivon.mc_samples > 1)
        arr[narr++] = &tr->eps, arr[narr++] = &tr->geps;
    else if (me == BNN_METHOD_IVON)
        arr[narr++] = &tr->nu;
    const size_t mfvi_ws = me == BNN_METHOD_MFVI ? bnn_mfvi_workspace_bytes(m, tr->bs) : 0;
    /* With the weights themselves, which the model already holds, the model's activations for a
     * batch (bnn_model_reserve) and the batch's own copies below (inputs, output gradient,
     * targets, labels) and the epoch's permutation; and the posterior's std that saving an IVON
     * or MFVI run forms (bnn_trainer_save; its other tensors are written from these arrays). */
    const int nsave = me == BNN_METHOD_IVON || me == BNN_METHOD_MFVI;
    const double need = (double)(narr + 1 + nsave) * (double)tr->np * sizeof(float) +
                        (double)mfvi_ws +
                        bnn__model_reserve_bytes(m, tr->bs) +
                        (double)tr->bs * (double)(ds->d + tr->k + ds->k + 1) * sizeof(float) +
                        (double)tr->n * sizeof(int64_t);
    double limit;
    char sl[80];
    if ((rc = bnn__byte_limit("training", 0.0, &limit, sl, sizeof sl))) {
        free(tr);
        return rc;
    }
    if (need > limit) {
        char sn[32];
        bnn__format_bytes(sn, sizeof sn, need);
        rc = bnn__error(BNN_ENOMEM,
                        "%s training of %lld parameters needs about %s (the weights, the gradient, "
                        "the optimizer's state, a batch's activations and saving), more than %s of "
                        "memory",
                        bnn_method_name(me), (long long)tr->np, sn, sl);
        free(tr);
        return rc;
    }
    if ((rc = bnn_model_reserve(m, tr->bs))) {
        free(tr);
        return rc;
    }
    const size_t pb = bnn__bytes(tr->np, sizeof(float));
    bool ok = true;
    for (int i = 0; ok && i < narr; i++) ok = pb && (*arr[i] = bnn__alloc(pb)) != NULL;
    if (me == BNN_METHOD_MFVI) ok = ok && mfvi_ws && (tr->mfvi_work = bnn__alloc(mfvi_ws));
    ok = ok && (tr->xb = bnn__alloc_array(tr->bs * ds->d, sizeof(float)));
    ok = ok && (tr->dout = bnn__alloc_array(tr->bs * tr->k, sizeof(float)));
    if (ds->targets) ok = ok && (tr->yt = bnn__alloc_array(tr->bs * ds->k, sizeof(float)));
    if (ds->labels) ok = ok && (tr->yl = bnn__alloc_array(tr->bs, sizeof(int32_t)));
    ok = ok && (tr->perm = bnn__alloc_array(tr->n, sizeof(int64_t)));
    if (!ok) {
        bnn_trainer_free(tr);
        return bnn__error(BNN_ENOMEM, "cannot allocate %s training state for %lld parameters",
                          bnn_method_name(me), (long long)tr->np);
    }
    if (me == BNN_METHOD_IVON)
        for (int64_t i = 0; i < tr->np; i++) tr->s1[i] = p->ivon.hess_init;
    if (me == BNN_METHOD_MFVI) {
        const float r0 = bnn_softplus_inv(p->mfvi.init_std);
        for (int64_t i = 0; i < tr->np; i++) tr->rho[i] = r0;
    }
    *out = tr;
    return 0;
}

int bnn_trainer_new(bnn_trainer **out, bnn_model *m, const bnn_dataset *ds,
                    const struct bnn_train_params *p) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_trainer_new: out is NULL");
    int rc = trainer_alloc(out, m, ds, p);
    if (!rc && p->init) bnn_model_init(m, p->seed);
    return rc;
}

int64_t bnn_trainer_epoch(const bnn_trainer *tr) { return tr->epoch; }
const struct bnn_train_params *bnn_trainer_params(const bnn_trainer *tr) { return &tr->p; }

void bnn_trainer_set_progress(bnn_trainer *tr,
                              int (*fn)(void *ctx, int64_t epoch, int64_t step, int64_t steps,
                                        double mean_loss, bool epoch_done),
                              void *ctx) {
    tr->p.progress = fn;
    tr->p.progress_ctx = ctx;
}

/* v[0 .. n) = 0, the threads sharing it: a gradient vector of a large model is megabytes, and one
 * core's memset of it shows in a training step. */
static void zero_floats(float *v, int64_t n) {
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (n >= 131072)
#endif
    for (int64_t i = 0; i < n; i++) v[i] = 0.0f;
}

/* One IVON step (Shen et al. 2024, Alg. 1): for each of S samples draw ε, θ = m + ε/√(λ(h+δ)),
 * back-propagate the batch's mean loss at θ, and average ĝ and ε ⊙ ĝ; then the update. With one
 * sample (the usual case) the step is one fused pass after the backward pass: the update, with
 * ĥ from the sample's noise ν = ε ⊙ σ as the official implementation forms it (not from θ − m,
 * which rounds ν to the floats around m), and the next step's noise and θ drawn in the same loop.
 * So IVON adds to AdamW's step only the noise and a longer update. */
static double ivon_step(bnn_trainer *tr, int64_t b, float lr, bnn_rng *drop, int *rc) {
    const int64_t np = tr->np, S = tr->p.ivon.mc_samples;
    struct bnn_ivon_params ip = tr->p.ivon;
    ip.lr = lr, ip.weight_decay = tr->p.weight_decay;
    const bnn_lik lik = tr->lik;
    float *w = bnn_model_params(tr->m), *gb = tr->gbar;
    double loss = 0.0;
    if (S == 1) {
        /* After a fused step gb is zero already (and θ drawn). */
        if (!tr->theta_drawn) {
            bnn__ivon_draw(tr->theta, NULL, tr->nu, w, tr->s1, np, &ip, &tr->noise);
            zero_floats(gb, np);
        }
        tr->theta_drawn = false;
        const float *f = bnn_model_forward(tr->m, tr->theta, tr->xb, b, true, drop);
        loss = bnn_lik_loss(&lik, tr->dout, f, tr->yl, tr->yt, b, tr->k);
        if (!isfinite(loss)) return loss;
        bnn_model_backward(tr->m, tr->theta, tr->dout, gb);
        *rc = bnn__ivon_step_draw(w, tr->s1, tr->s2, tr->theta, tr->nu, gb, np, tr->t + 1, &ip,
                                  &tr->noise);
        tr->theta_drawn = *rc == 0;
        return loss;
    }
    float *ge = tr->geps, *e = tr->eps, *g = tr->grad;
    zero_floats(gb, np);
    zero_floats(ge, np);
    const float inv_s = 1.0f / (float)S;
    for (int64_t s = 0; s < S; s++) {
        bnn__ivon_draw(tr->theta, e, NULL, w, tr->s1, np, &ip, &tr->noise);
        const float *f = bnn_model_forward(tr->m, tr->theta, tr->xb, b, true, drop);
        loss += bnn_lik_loss(&lik, tr->dout, f, tr->yl, tr->yt, b, tr->k) / (double)S;
        zero_floats(g, np);
        bnn_model_backward(tr->m, tr->theta, tr->dout, g);
#if defined(BNN_HAVE_OPENMP)
#pragma omp parallel for schedule(static) if (np > 32768)
#endif
        for (int64_t i = 0; i < np; i++) {
            gb[i] += g[i] * inv_s;
            ge[i] += e[i] * g[i] * inv_s;
        }
    }
    if (isfinite(loss)) *rc = bnn_ivon_step(w, tr->s1, tr->s2, gb, ge, np, tr->t + 1, &ip);
    return loss;
}

/* Hands back a sample drawn ahead by the fused step: the counter goes back to before it, so the
 * next step draws the very same θ from the same m and h (bnn__ivon_draw and the fused step give
 * the same bits), whether it comes in this process or after a checkpoint. */
static void ivon_settle(bnn_trainer *tr) {
    if (!tr->theta_drawn) return;
    tr->noise.counter -= (uint64_t)((tr->np + 3) / 4);
    tr->theta_drawn = false;
}

/* One mean-field VI step: the negative ELBO's gradient for μ (the model's weights) and ρ, then
 * AdamW on each (no weight decay: the prior is in the KL term). */
static double mfvi_step(bnn_trainer *tr, int64_t b, float lr, bnn_rng *drop, int *rc) {
    const int64_t np = tr->np;
    const bnn_lik lik = tr->lik;
    float *mu = bnn_model_params(tr->m);
    zero_floats(tr->grad, np);
    zero_floats(tr->grad_rho, np);
    (void)drop; /* dropout masks in MFVI come from the noise generator */
    double loss = bnn_mfvi_loss_ws(tr->m, mu, tr->rho, tr->xb, tr->yl, tr->yt, b, &lik, tr->n,
                                   &tr->p.mfvi, &tr->noise, tr->grad, tr->grad_rho,
                                   tr->mfvi_work);
    if (!isfinite(loss)) return loss;
    struct bnn_adamw_params ap = {lr, 0.9, 0.999, 1e-8, 0.0};
    const int rc_mu = bnn_adamw_step(mu, tr->s1, tr->s2, tr->grad, np, tr->t + 1, &ap);
    const int rc_rho =
        rc_mu ? 0 : bnn_adamw_step(tr->rho, tr->s3, tr->s4, tr->grad_rho, np, tr->t + 1, &ap);
    *rc = rc_mu ? rc_mu : rc_rho;
    /* The user chose mfvi: say which of its parameters the inner AdamW update broke. */
    if (*rc) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", bnn_last_error());
        bnn__error(*rc, "the update of %s (mean-field VI's AdamW): %s",
                   rc_mu ? "the means mu" : "the scales rho", msg);
    }
    return loss;
}

static double map_step(bnn_trainer *tr, int64_t b, float lr, bnn_rng *drop, int *rc) {
    const int64_t np = tr->np;
    const bnn_lik lik = tr->lik;
    float *w = bnn_model_params(tr->m);
    const float *f = bnn_model_forward(tr->m, w, tr->xb, b, true, drop);
    double loss = bnn_lik_loss(&lik, tr->dout, f, tr->yl, tr->yt, b, tr->k);
    if (!isfinite(loss)) return loss;
    zero_floats(tr->grad, np);
    bnn_model_backward(tr->m, w, tr->dout, tr->grad);
    if (tr->p.method == BNN_METHOD_ADAMW) {
        struct bnn_adamw_params ap = {lr, 0.9, 0.999, 1e-8, tr->p.weight_decay};
        *rc = bnn_adamw_step(w, tr->s1, tr->s2, tr->grad, np, tr->t + 1, &ap);
    } else {
        struct bnn_sgd_params sp = {lr, tr->p.momentum, tr->p.weight_decay, 0.0f, false};
        *rc = bnn_sgd_step(w, tr->s1, tr->grad, np, tr->t + 1, &sp);
    }
    return loss;
}

static int run_epochs(bnn_trainer *tr, int64_t until_epoch);

/* A run can diverge without its loss overflowing: a too-large learning rate can grow the weights
 * by tens of orders of magnitude and leave every number finite (a loss of 1e37 after three
 * epochs). A run whose last epoch's mean loss is more than DIVERGE_GROWTH times the first step's
 * above it (in units of at least 1, for losses near or below zero) has diverged: at a random start
 * the cross-entropy is about ln K and the squared error about the targets' variance, and training
 * lowers both. Only the last epoch is judged, not each step: IVON's early steps, with the
 * Hessian estimate still at its start, can spike by eight orders of magnitude and recover
 * (tests/cli_variational.sh, "ivon sine"). */
#define DIVERGE_GROWTH 1e4
static bool loss_blew_up(double loss, double ref) {
    return loss > ref + DIVERGE_GROWTH * fmax(fabs(ref), 1.0);
}

/* The mean loss per example at the weights as they are now (IVON: its mean; dropout off), over
 * the first JUDGE_ROWS examples of the current epoch's order: a random sample of the training
 * data, large enough that no single heavy-tailed target decides (one batch could be that one
 * example). Each step's loss is taken before its update, so without this the last update would
 * never be looked at (a run of two steps could blow up in its second and pass). */
#define JUDGE_ROWS 8192
static double loss_now(bnn_trainer *tr) {
    const int64_t rows = tr->n < JUDGE_ROWS ? tr->n : JUDGE_ROWS;
    double sum = 0.0;
    for (int64_t lo = 0; lo < rows; lo += tr->bs) {
        const int64_t b = lo + tr->bs <= rows ? tr->bs : rows - lo;
        bnn_dataset_gather(tr->ds, tr->perm + lo, b, tr->xb, tr->yl, tr->yt);
        const float *f = bnn_model_forward(tr->m, bnn_model_params(tr->m), tr->xb, b, false, NULL);
        sum += bnn_lik_loss(&tr->lik, NULL, f, tr->yl, tr->yt, b, tr->k) * (double)b;
    }
    double mean = sum / (double)rows;
    /* MFVI's objective, which the first step's loss is of, also holds kl_weight · KL / n_train:
     * at the means alone a σ blown up by the last steps (a learning rate of 1e4) went unseen. */
    if (tr->p.method == BNN_METHOD_MFVI)
        mean += tr->p.mfvi.kl_weight / (double)tr->n *
                bnn_mfvi_kl(bnn_model_params(tr->m), tr->rho, bnn_model_nparams(tr->m),
                            tr->p.mfvi.prior_prec);
    return isnan(mean) ? INFINITY : mean;
}

/* The largest |value| among the features and regression targets (diverge_hint). In float (the
 * largest of floats is one of them, exactly): GCC 12's aarch64 vectoriser stops with an internal
 * compiler error on an fmax reduction of floats into a double (-O3, the Release build on a
 * Raspberry Pi's Debian 12). */
static double data_max(const bnn_dataset *ds) {
    float mx = 0.0f;
    for (int64_t i = 0; i < ds->n * ds->d; i++) mx = fmaxf(mx, fabsf(ds->x[i]));
    for (int64_t i = 0; ds->targets && i < ds->n * ds->k; i++)
        mx = fmaxf(mx, fabsf(ds->targets[i]));
    return (double)mx;
}

/* What a divergence message suggests: a smaller learning rate, and standardised data where its
 * values are large (targets of 1e20 overflow Adam's second moment at any learning rate). The
 * data are scanned only here, after a divergence. MFVI's KL gradients carry the factor
 * kl_weight · max(λ, 1) / n: from about 1e20 their squares overflow Adam's second moment at any
 * learning rate (check_params refuses a factor beyond FLT_MAX; 1e15 is far above any sensible
 * setting, the default being 1/n). */
static const char *diverge_hint(const bnn_trainer *tr, char buf[160]) {
    const struct bnn_mfvi_params *q = &tr->p.mfvi;
    const double kl = bnn__mfvi_kl_factor(q->kl_weight, q->prior_prec, tr->n);
    if (tr->p.method == BNN_METHOD_MFVI && kl >= 1e15) {
        snprintf(buf, 160, "MFVI's KL term weighs kl_weight x max(prior precision, 1) / n = %.3g "
                 "per example: lower the KL weight", kl);
        return buf;
    }
    const double mx = data_max(tr->ds);
    if (mx >= 1e6)
        snprintf(buf, 160, "the data's values reach %.3g: standardise the features and targets, "
                 "or try a smaller learning rate", mx);
    else
        snprintf(buf, 160, "try a smaller learning rate, and check the scale of the other "
                 "settings");
    return buf;
}

/* Judges the weights a run would be saved with: at the run's last epoch (with_mean) that epoch's
 * mean loss, and always the loss at the weights it ended with (loss_now). A run stopped early is
 * judged by its weights alone: an epoch that spiked and recovered (IVON's early epochs) does not
 * make good weights bad. */
static int judge_run(bnn_trainer *tr, bool with_mean) {
    if (isnan(tr->last_mean) || isnan(tr->loss_ref)) return 0;
    char hint[160];
    /* MFVI's loss is its objective, the negative ELBO per example: with the KL term */
    const char *kl = tr->p.method == BNN_METHOD_MFVI ? " (with the KL term)" : "";
    if (with_mean && loss_blew_up(tr->last_mean, tr->loss_ref))
        return bnn__error(BNN_EDIVERGED, "training diverged: the last epoch's mean loss%s is "
                          "%.4g, against %.4g at the first step (%s)", kl,
                          tr->last_mean, tr->loss_ref, diverge_hint(tr, hint));
    const double now = loss_now(tr);
    if (loss_blew_up(now, tr->loss_ref))
        return bnn__error(BNN_EDIVERGED, "training diverged: at the weights it ended with the mean "
                          "loss%s on %lld training examples is %.4g, against %.4g at the first "
                          "step (%s)", kl, (long long)(tr->n < JUDGE_ROWS ? tr->n : JUDGE_ROWS),
                          now, tr->loss_ref, diverge_hint(tr, hint));
    return 0;
}

int bnn_trainer_check(bnn_trainer *tr) {
    if (!tr) return bnn__error(BNN_EINVAL, "bnn_trainer_check: the trainer is NULL");
    return judge_run(tr, false);
}

int bnn_trainer_run(bnn_trainer *tr, int64_t until_epoch) {
    if (!tr) return bnn__error(BNN_EINVAL, "bnn_trainer_run: the trainer is NULL");
    if (tr->ds->n != tr->n)
        return bnn__error(BNN_ESHAPE, "bnn_trainer_run: the dataset has %lld rows, the trainer "
                          "was made for %lld (its shuffles are of that many)",
                          (long long)tr->ds->n, (long long)tr->n);
    /* changed through a writable view since: scanned again, as on every entry */
    int rc = tr->ds->checked ? 0 : bnn__check_data(tr->m, tr->ds);
    if (rc) return rc;
    rc = run_epochs(tr, until_epoch);
    ivon_settle(tr);
    return rc;
}

static int run_epochs(bnn_trainer *tr, int64_t until_epoch) {
    const struct bnn_train_params *p = &tr->p;
    if (until_epoch > p->epochs) until_epoch = p->epochs;
    const int64_t n = tr->n, bs = tr->bs, steps = tr->steps;
    int rc = 0;
    while (tr->epoch < until_epoch) {
        const int64_t epoch = tr->epoch;
        if ((rc = bnn_permutation(tr->perm, n, p->seed, (uint64_t)epoch))) return rc;
        bnn_rng drop = bnn_rng_make(p->seed, BNN_STREAM_DROPOUT + (uint64_t)epoch);
        double sum = 0.0;
        const int64_t first = tr->in_epoch;
        if (first > 0) drop = tr->in_drop, sum = tr->in_sum;
        for (int64_t s = first; s < steps; s++) {
            const int64_t lo = s * bs, b = (lo + bs <= n) ? bs : n - lo;
            bnn_dataset_gather(tr->ds, tr->perm + lo, b, tr->xb, tr->yl, tr->yt);
            const float lr = bnn_lr_at(p->lr_schedule, p->lr, tr->t, steps * p->epochs,
                                       steps * p->warmup_epochs);
            double loss;
            int step_rc = 0;
            switch (p->method) {
            case BNN_METHOD_IVON: loss = ivon_step(tr, b, lr, &drop, &step_rc); break;
            case BNN_METHOD_MFVI: loss = mfvi_step(tr, b, lr, &drop, &step_rc); break;
            default: loss = map_step(tr, b, lr, &drop, &step_rc); break;
            }
            if (!isfinite(loss) || step_rc) {
                /* The optimizer's own words when it refused its step (which state overflowed). */
                char what[160];
                if (step_rc && isfinite(loss))
                    snprintf(what, sizeof what, "%s", bnn_last_error());
                else
                    snprintf(what, sizeof what, "the loss became %s", isnan(loss) ? "NaN" : "Inf");
                char hint[160];
                return bnn__error(BNN_EDIVERGED, "training diverged at epoch %lld, step %lld of "
                                  "%lld: %s (%s)",
                                  (long long)epoch + 1, (long long)s + 1, (long long)steps, what,
                                  diverge_hint(tr, hint));
            }
            if (isnan(tr->loss_ref)) tr->loss_ref = loss;
            tr->t++;
            /* Weighted by the batch's size: a short last batch counts for its examples, not
             * as much as a full one (a 1-example tail could halve a 2-batch epoch's mean). */
            sum += loss * (double)b;
            tr->in_epoch = s + 1, tr->in_drop = drop, tr->in_sum = sum;
            if (p->progress && p->progress(p->progress_ctx, epoch, s + 1, steps,
                                           sum / (double)(lo + b), false))
                return bnn__error(BNN_EINVAL, "training stopped by the caller");
        }
        /* Counted before the callback, so a checkpoint saved from it holds the finished epoch. */
        tr->epoch++;
        tr->in_epoch = 0;
        tr->last_mean = sum / (double)n;
        if (tr->epoch == p->epochs && (rc = judge_run(tr, true))) return rc;
        if (p->progress &&
            p->progress(p->progress_ctx, epoch, steps, steps, tr->last_mean, true))
            return bnn__error(BNN_EINVAL, "training stopped by the caller");
    }
    return rc;
}

/* sd (np) = the posterior's standard deviations of an IVON or MFVI run. */
static void posterior_std(const bnn_trainer *tr, float *sd) {
    const int64_t np = tr->np;
    if (tr->p.method == BNN_METHOD_IVON) {
        /* σ = 1/√(λ (h + δ)) (Shen et al. 2024, section 2) */
        const double lam = tr->p.ivon.ess, wd = tr->p.weight_decay;
        for (int64_t i = 0; i < np; i++) sd[i] = (float)(1.0 / sqrt(lam * (tr->s1[i] + wd)));
    } else {
        BNN_ASSERT(tr->p.method == BNN_METHOD_MFVI);
        /* The σ the training used (clamped as there): a ρ driven far negative would otherwise
         * save σ = 0, which no reader takes as a posterior. */
        for (int64_t i = 0; i < np; i++) sd[i] = bnn_mfvi_sigma(tr->rho[i]);
    }
}

int bnn_trainer_posterior(const bnn_trainer *tr, bnn_posterior **out) {
    if (!tr || !out) return bnn__error(BNN_EINVAL, "bnn_trainer_posterior: tr and out are required");
    const int64_t np = tr->np;
    const bool diag = tr->p.method == BNN_METHOD_IVON || tr->p.method == BNN_METHOD_MFVI;
    int rc = bnn_posterior_new(out, diag ? BNN_POSTERIOR_DIAG : BNN_POSTERIOR_POINT, np);
    if (rc) return rc;
    memcpy(bnn_posterior_mean(*out), bnn_model_cparams(tr->m), (size_t)np * sizeof(float));
    if (diag) posterior_std(tr, bnn_posterior_std(*out));
    return 0;
}

int bnn_train(bnn_model *m, const bnn_dataset *ds, const struct bnn_train_params *p) {
    bnn_trainer *tr;
    int rc = bnn_trainer_new(&tr, m, ds, p);
    if (rc) return rc; /* p is not NULL past here */
    rc = bnn_trainer_run(tr, p->epochs);
    bnn_trainer_free(tr);
    return rc;
}

/* ---------------------------------------------------------------- saving and resuming */

#define NKV 24

static void fmt_float(char *buf, size_t len, double x) {
    const float f = (float)x;
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, len, "%.*g", prec, x);
        if ((float)strtod(buf, NULL) == f) return; /* how resume reads it back */
    }
}

/* The settings that determine the run, as metadata pairs. */
static int params_meta(bnn_st_writer *w, const bnn_trainer *tr) {
    const struct bnn_train_params *p = &tr->p;
    char v[NKV][40];
    const char *k[NKV];
    int n = 0;
#define KV_I(key, x) (k[n] = key, snprintf(v[n], sizeof v[n], "%lld", (long long)(x)), n++)
    /* A float setting is written as the shortest text that reads back to the same float
     * (1e-4f as 0.0001, not 9.999999747378752e-05); a double as the shortest for the double. */
#define KV_D(key, x)                                                                          \
    (k[n] = key,                                                                              \
     _Generic((x), float: fmt_float, default: bnn__fmt_double)(v[n], sizeof v[n], (x)), n++)
#define KV_S(key, x) (k[n] = key, snprintf(v[n], sizeof v[n], "%s", x), n++)
    KV_S("bnn.method", bnn_method_name(p->method));
    KV_I("bnn.epochs", p->epochs);
    KV_I("bnn.batch_size", p->batch_size);
    KV_D("bnn.lr", p->lr);
    KV_S("bnn.lr_schedule", p->lr_schedule == BNN_LR_COSINE ? "cosine" : "constant");
    KV_I("bnn.warmup_epochs", p->warmup_epochs);
    /* MFVI has no weight decay (its prior is bnn.mfvi.prior_prec, in the KL term): the file
     * does not claim one. */
    if (p->method != BNN_METHOD_MFVI) KV_D("bnn.weight_decay", p->weight_decay);
    KV_I("bnn.seed", p->seed);
    KV_D("bnn.sigma", p->sigma);
    if (p->method == BNN_METHOD_SGD) KV_D("bnn.momentum", p->momentum);
    if (p->method == BNN_METHOD_IVON) {
        KV_D("bnn.ivon.ess", p->ivon.ess);
        KV_D("bnn.ivon.hess_init", p->ivon.hess_init);
        KV_D("bnn.ivon.beta1", p->ivon.beta1);
        KV_D("bnn.ivon.beta2", p->ivon.beta2);
        KV_I("bnn.ivon.mc_samples", p->ivon.mc_samples);
        KV_D("bnn.ivon.clip_radius", p->ivon.clip_radius);
        KV_I("bnn.ivon.rescale_lr", p->ivon.rescale_lr);
        KV_I("bnn.ivon.debias", p->ivon.debias);
    }
    if (p->method == BNN_METHOD_MFVI) {
        KV_D("bnn.mfvi.prior_prec", p->mfvi.prior_prec);
        KV_D("bnn.mfvi.init_std", p->mfvi.init_std);
        KV_I("bnn.mfvi.mc_samples", p->mfvi.mc_samples);
        KV_D("bnn.mfvi.kl_weight", p->mfvi.kl_weight);
    }
#undef KV_I
#undef KV_D
#undef KV_S
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) rc = bnn_st_writer_meta(w, k[i], v[i]);
    return rc;
}

int bnn_trainer_save(const bnn_trainer *tr, const char *path, bool state, const char *const *keys,
                     const char *const *values, int64_t nkv) {
    if (!tr || !path || nkv < 0 || (nkv > 0 && (!keys || !values)))
        return bnn__error(BNN_EINVAL, "bnn_trainer_save: tr, path, and nkv >= 0 keys and values "
                          "are required");
    if (state && tr->in_epoch > 0)
        return bnn__error(BNN_EINVAL, "bnn_trainer_save: a checkpoint (state) is taken at an "
                          "epoch boundary, and this run is at step %lld of %lld in epoch %lld; "
                          "save it without state, or run to the epoch's end first",
                          (long long)tr->in_epoch, (long long)tr->steps, (long long)tr->epoch + 1);
    for (int64_t i = 0; i < nkv; i++)
        if (!keys || !values || !keys[i] || !values[i])
            return bnn__error(BNN_EINVAL, "bnn_trainer_save: metadata entry %lld of %lld has a NULL "
                              "key or value", (long long)i, (long long)nkv);
    bnn_st_writer *w;
    int rc = bnn_st_writer_new(&w);
    if (rc) return rc;
    const int64_t np = tr->np;
    const bnn_method me = tr->p.method;
    const bool diag = me == BNN_METHOD_IVON || me == BNN_METHOD_MFVI;
    /* The tensors are borrowed (no copies); the std is the one array saving adds, counted by
     * trainer_alloc's memory check. */
    float *sd = NULL;
    if (diag && !(sd = bnn__alloc_array(np, sizeof(float))))
        rc = bnn__error(BNN_ENOMEM, "cannot allocate the posterior's std (%lld floats) to save",
                        (long long)np);
    if (sd) posterior_std(tr, sd);
    if (!rc) rc = bnn__model_write(tr->m, w, tr->ds->task, bnn_model_cparams(tr->m));
    if (!rc) rc = params_meta(w, tr);
    for (int64_t i = 0; !rc && i < nkv; i++) rc = bnn_st_writer_meta(w, keys[i], values[i]);
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.posterior", diag ? "diag" : "point");
    if (!rc && diag) rc = bnn__st_writer_add_ref(w, "posterior.std", BNN_DT_F32, 1, &np, sd);
    if (!rc && me == BNN_METHOD_IVON) /* the Hessian estimate, for inspection and resuming */
        rc = bnn__st_writer_add_ref(w, "ivon.hess", BNN_DT_F32, 1, &np, tr->s1);
    if (!rc && state) {
        char sv[3][32];
        snprintf(sv[0], sizeof sv[0], "%lld", (long long)tr->t);
        snprintf(sv[1], sizeof sv[1], "%lld", (long long)tr->epoch);
        /* A sample drawn ahead (a save from inside a run) is not part of the state. */
        const uint64_t ahead = tr->theta_drawn ? (uint64_t)((tr->np + 3) / 4) : 0;
        snprintf(sv[2], sizeof sv[2], "%llu", (unsigned long long)(tr->noise.counter - ahead));
        rc = bnn_st_writer_meta(w, "bnn.state.step", sv[0]);
        if (!rc) rc = bnn_st_writer_meta(w, "bnn.state.epoch", sv[1]);
        if (!rc) rc = bnn_st_writer_meta(w, "bnn.state.rng_counter", sv[2]);
        if (!rc && !isnan(tr->loss_ref)) {
            char lv[40];
            bnn__fmt_double(lv, sizeof lv, tr->loss_ref);
            rc = bnn_st_writer_meta(w, "bnn.state.loss_ref", lv);
        }
        if (!rc) {
            char hv[24];
            snprintf(hv, sizeof hv, "%016llx", (unsigned long long)tr->data_hash);
            rc = bnn_st_writer_meta(w, "bnn.state.data_hash", hv);
        }
        const char *names[4] = {0};
        const float *vecs[4] = {0};
        switch (me) {
        case BNN_METHOD_SGD: names[0] = "state.sgd.buf", vecs[0] = tr->s1; break;
        case BNN_METHOD_ADAMW:
            names[0] = "state.adamw.m", vecs[0] = tr->s1;
            names[1] = "state.adamw.v", vecs[1] = tr->s2;
            break;
        case BNN_METHOD_IVON: names[0] = "state.ivon.momentum", vecs[0] = tr->s2; break;
        case BNN_METHOD_MFVI:
            names[0] = "state.mfvi.rho", vecs[0] = tr->rho;
            names[1] = "state.mfvi.mu_m", vecs[1] = tr->s1;
            names[2] = "state.mfvi.mu_v", vecs[2] = tr->s2;
            names[3] = "state.mfvi.rho_m", vecs[3] = tr->s3;
            break;
        }
        for (int i = 0; !rc && i < 4 && names[i]; i++)
            rc = bnn__st_writer_add_ref(w, names[i], BNN_DT_F32, 1, &np, vecs[i]);
        if (!rc && me == BNN_METHOD_MFVI)
            rc = bnn__st_writer_add_ref(w, "state.mfvi.rho_v", BNN_DT_F32, 1, &np, tr->s4);
    }
    if (!rc) rc = bnn_st_writer_save(w, path);
    bnn_st_writer_free(w);
    bnn__free(sd);
    return rc;
}

/* A checkpoint's optimizer state that no run can produce (a second moment below 0, an IVON
 * Hessian with h + δ <= 0) is a damaged file, named here; resumed, it would only "diverge" and
 * blame the learning rate. strict: v must exceed lo, else v >= lo. */
static int state_above(const float *v, int64_t n, float lo, bool strict, const char *name,
                       const char *path) {
    for (int64_t i = 0; i < n; i++)
        if (strict ? !(v[i] > lo) : !(v[i] >= lo))
            return bnn__error(BNN_EFORMAT, "%s: tensor '%s' holds %g at %lld, which no run "
                              "produces (%s %g): a damaged checkpoint", path, name, (double)v[i],
                              (long long)i, strict ? "it must exceed" : "it must be at least",
                              (double)lo);
    return 0;
}

/* Metadata value parsed as a number; BNN_EFORMAT naming the key when absent or malformed. */
static int meta_num(const bnn_st *st, const char *path, const char *key, double *out) {
    const char *v = bnn_st_meta(st, key);
    if (!v) return bnn__error(BNN_EFORMAT, "%s: checkpoint lacks '%s'", path, key);
    char *end;
    errno = 0;
    *out = bnn_strtod(v, &end);
    if (errno == ERANGE || end == v || *end)
        return bnn__error(BNN_EFORMAT, "%s: '%s' is '%s', not a number", path, key, v);
    return 0;
}

/* Metadata value parsed as a whole number in [lo, hi] (exactly: counts, the seed and the
 * generator position must not pass through a double); BNN_EFORMAT naming the key when absent,
 * malformed or out of range. The seed is written as a signed number and read back as one. */
static int meta_int(const bnn_st *st, const char *path, const char *key, int64_t lo, int64_t hi,
                    int64_t *out) {
    const char *v = bnn_st_meta(st, key);
    if (!v) return bnn__error(BNN_EFORMAT, "%s: checkpoint lacks '%s'", path, key);
    int64_t x;
    if (bnn_parse_int(v, &x) || x < lo || x > hi)
        return bnn__error(BNN_EFORMAT, "%s: '%s' is '%.40s', not a whole number in [%lld, %lld]",
                          path, key, v, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

/* The generator position: an unsigned 64-bit count. */
static int meta_u64(const bnn_st *st, const char *path, const char *key, uint64_t *out) {
    const char *v = bnn_st_meta(st, key);
    if (!v) return bnn__error(BNN_EFORMAT, "%s: checkpoint lacks '%s'", path, key);
    char *end;
    errno = 0;
    const unsigned long long x = strtoull(v, &end, 10);
    if (errno == ERANGE || end == v || *end || !(v[0] >= '0' && v[0] <= '9'))
        return bnn__error(BNN_EFORMAT, "%s: '%s' is '%.40s', not an unsigned whole number", path,
                          key, v);
    *out = x;
    return 0;
}

int bnn_trainer_resume(bnn_trainer **out, bnn_model **mout, const char *path,
                       const bnn_dataset *ds, int64_t epochs) {
    if (!out || !mout || !path || !ds)
        return bnn__error(BNN_EINVAL, "bnn_trainer_resume: out, mout, path and ds are required");
    if (epochs < 0)
        return bnn__error(BNN_EINVAL, "bnn_trainer_resume: epochs is %lld (0 keeps the "
                          "checkpoint's total, a positive number replaces it)", (long long)epochs);
    *out = NULL, *mout = NULL;
    bnn_model *m;
    bnn_st *st;
    bnn_task task;
    int rc = bnn_model_load(&m, path, &task, &st);
    if (rc) return rc;
    struct bnn_train_params p = bnn_train_default_params();
    double d[24];
    const char *method = bnn_st_meta(st, "bnn.method");
    const char *sched = bnn_st_meta(st, "bnn.lr_schedule");
    bnn_trainer *tr = NULL;
    if (!bnn_st_meta(st, "bnn.state.step")) {
        rc = bnn__error(BNN_EFORMAT, "%s is a model file, not a checkpoint (save one with "
                        "--checkpoint)", path);
        goto fail;
    }
    if (!method || bnn_method_parse(method, &p.method)) {
        rc = bnn__error(BNN_EFORMAT, "%s: bnn.method is missing or unknown", path);
        goto fail;
    }
    if (task != ds->task) {
        rc = bnn__error(BNN_EINVAL, "%s was trained for %s, the data is for %s", path,
                        task == BNN_TASK_REGRESSION ? "regression" : "classification",
                        ds->task == BNN_TASK_REGRESSION ? "regression" : "classification");
        goto fail;
    }
    const char *keys[] = {"bnn.lr", "bnn.sigma", "bnn.weight_decay"};
    d[2] = p.weight_decay; /* an MFVI file has none */
    for (int i = 0; i < (p.method == BNN_METHOD_MFVI ? 2 : 3); i++)
        if ((rc = meta_num(st, path, keys[i], &d[i]))) goto fail;
    int64_t seed = 0, step = 0, epoch = 0;
    uint64_t counter = 0;
    if ((rc = meta_int(st, path, "bnn.epochs", 0, BNN_MAX_EPOCHS, &p.epochs)) ||
        (rc = meta_int(st, path, "bnn.batch_size", 1, INT64_MAX, &p.batch_size)) ||
        (rc = meta_int(st, path, "bnn.warmup_epochs", 0, BNN_MAX_EPOCHS, &p.warmup_epochs)) ||
        (rc = meta_int(st, path, "bnn.seed", INT64_MIN, INT64_MAX, &seed)) ||
        (rc = meta_int(st, path, "bnn.state.step", 0, INT64_MAX, &step)) ||
        (rc = meta_int(st, path, "bnn.state.epoch", 0, p.epochs, &epoch)) ||
        (rc = meta_u64(st, path, "bnn.state.rng_counter", &counter)))
        goto fail;
    p.lr = (float)d[0], p.sigma = d[1], p.weight_decay = (float)d[2];
    p.seed = (uint64_t)seed, p.init = false;
    if (!sched || (strcmp(sched, "cosine") && strcmp(sched, "constant"))) {
        rc = bnn__error(BNN_EFORMAT, "%s: bnn.lr_schedule is %s (expected constant or cosine)",
                        path, sched ? "not constant or cosine" : "missing");
        goto fail;
    }
    p.lr_schedule = !strcmp(sched, "cosine") ? BNN_LR_COSINE : BNN_LR_CONSTANT;
    if (p.method == BNN_METHOD_SGD && (rc = meta_num(st, path, "bnn.momentum", &d[10]))) goto fail;
    if (p.method == BNN_METHOD_SGD) p.momentum = (float)d[10];
    if (p.method == BNN_METHOD_IVON) {
        const char *ik[] = {"bnn.ivon.ess", "bnn.ivon.hess_init", "bnn.ivon.beta1",
                            "bnn.ivon.beta2", "bnn.ivon.mc_samples", "bnn.ivon.clip_radius",
                            "bnn.ivon.rescale_lr", "bnn.ivon.debias"};
        for (int i = 0; i < 6; i++)
            if (i != 4 && (rc = meta_num(st, path, ik[i], &d[10 + i]))) goto fail;
        /* The two switches are written as 0 or 1; anything else (nan read as "not 0") is a
         * damaged file. */
        int64_t sw[2];
        if ((rc = meta_int(st, path, ik[4], 1, BNN_MAX_MC_SAMPLES, &p.ivon.mc_samples)) ||
            (rc = meta_int(st, path, ik[6], 0, 1, &sw[0])) ||
            (rc = meta_int(st, path, ik[7], 0, 1, &sw[1])))
            goto fail;
        p.ivon.ess = d[10], p.ivon.hess_init = (float)d[11], p.ivon.beta1 = d[12];
        p.ivon.beta2 = d[13];
        p.ivon.clip_radius = (float)d[15], p.ivon.rescale_lr = sw[0] != 0;
        p.ivon.debias = sw[1] != 0;
    }
    if (p.method == BNN_METHOD_MFVI) {
        const char *mk[] = {"bnn.mfvi.prior_prec", "bnn.mfvi.init_std", "bnn.mfvi.mc_samples",
                            "bnn.mfvi.kl_weight"};
        for (int i = 0; i < 4; i++)
            if (i != 2 && (rc = meta_num(st, path, mk[i], &d[10 + i]))) goto fail;
        if ((rc = meta_int(st, path, mk[2], 1, BNN_MAX_MC_SAMPLES, &p.mfvi.mc_samples))) goto fail;
        p.mfvi.prior_prec = d[10], p.mfvi.init_std = (float)d[11], p.mfvi.kl_weight = d[13];
    }
    if (epochs > 0) {
        if (epochs < epoch) {
            rc = bnn__error(BNN_EINVAL, "%s has already completed %lld epochs; --epochs %lld "
                            "is fewer", path, (long long)epoch, (long long)epochs);
            goto fail;
        }
        if (epochs < p.warmup_epochs) {
            rc = bnn__error(BNN_EINVAL, "%s warms up over %lld epochs; --epochs %lld is fewer",
                            path, (long long)p.warmup_epochs, (long long)epochs);
            goto fail;
        }
        if (p.lr_schedule == BNN_LR_COSINE && epochs != p.epochs) {
            rc = bnn__error(BNN_EINVAL, "%s uses a cosine schedule over %lld epochs; changing the "
                            "total would change the schedule it was trained under", path,
                            (long long)p.epochs);
            goto fail;
        }
        p.epochs = epochs;
    }
    if ((rc = trainer_alloc(&tr, m, ds, &p))) goto fail;
    if (step != epoch * tr->steps) {
        rc = bnn__error(BNN_EINVAL, "%s: %lld steps after %lld epoch%s, but its data and batch "
                        "size make %lld steps per epoch (%lld after %lld): is this the data it "
                        "was trained on?", path, (long long)step, (long long)epoch,
                        epoch == 1 ? "" : "s", (long long)tr->steps,
                        (long long)(epoch * tr->steps), (long long)epoch);
        goto fail;
    }
    /* The data's fingerprint (checkpoints from before it was kept have none): the same number of
     * rows is not the same data, and a resumed run on other data would not be the run it claims
     * to continue. */
    const char *hv = bnn_st_meta(st, "bnn.state.data_hash");
    if (hv) {
        char now[24];
        snprintf(now, sizeof now, "%016llx", (unsigned long long)tr->data_hash);
        if (strcmp(hv, now) != 0) {
            rc = bnn__error(BNN_EINVAL, "%s was trained on other data (fingerprint %.20s, this "
                            "data's %s): a resumed run must see the data it started on", path, hv,
                            now);
            goto fail;
        }
    }
    /* The first step's loss, which judges the run's last epoch (absent: the next step's). */
    if (bnn_st_meta(st, "bnn.state.loss_ref")) {
        if ((rc = meta_num(st, path, "bnn.state.loss_ref", &tr->loss_ref))) goto fail;
        if (!isfinite(tr->loss_ref)) {
            rc = bnn__error(BNN_EFORMAT, "%s: bnn.state.loss_ref is not finite", path);
            goto fail;
        }
    }
    tr->t = step, tr->epoch = epoch;
    tr->noise.counter = counter;
    const int64_t np = tr->np;
    switch (p.method) {
    case BNN_METHOD_SGD: rc = bnn__st_vector(st, "state.sgd.buf", tr->s1, np, path); break;
    case BNN_METHOD_ADAMW:
        rc = bnn__st_vector(st, "state.adamw.m", tr->s1, np, path);
        if (!rc) rc = bnn__st_vector(st, "state.adamw.v", tr->s2, np, path);
        if (!rc) rc = state_above(tr->s2, np, 0.0f, false, "state.adamw.v", path);
        break;
    case BNN_METHOD_IVON:
        rc = bnn__st_vector(st, "ivon.hess", tr->s1, np, path);
        /* IVON's update keeps h + δ > 0 (its step refuses anything else). */
        if (!rc) rc = state_above(tr->s1, np, -p.weight_decay, true, "ivon.hess", path);
        if (!rc) rc = bnn__st_vector(st, "state.ivon.momentum", tr->s2, np, path);
        break;
    case BNN_METHOD_MFVI:
        rc = bnn__st_vector(st, "state.mfvi.rho", tr->rho, np, path);
        if (!rc) rc = bnn__st_vector(st, "state.mfvi.mu_m", tr->s1, np, path);
        if (!rc) rc = bnn__st_vector(st, "state.mfvi.mu_v", tr->s2, np, path);
        if (!rc) rc = bnn__st_vector(st, "state.mfvi.rho_m", tr->s3, np, path);
        if (!rc) rc = bnn__st_vector(st, "state.mfvi.rho_v", tr->s4, np, path);
        if (!rc) rc = state_above(tr->s2, np, 0.0f, false, "state.mfvi.mu_v", path);
        if (!rc) rc = state_above(tr->s4, np, 0.0f, false, "state.mfvi.rho_v", path);
        break;
    }
    if (rc) goto fail;
    bnn_st_free(st);
    *out = tr, *mout = m;
    return 0;
fail:
    bnn_trainer_free(tr);
    bnn_model_free(m);
    bnn_st_free(st);
    return rc;
}
