/* Model files: the weights as F32 tensors named like PyTorch's nn.Sequential state dict, with
 * the architecture in __metadata__ (DESIGN.md "Files"), so
 * `torch.nn.Sequential(...).load_state_dict(safetensors.torch.load_file(path))` works. */
#include "core/internal.h"

#include <math.h>
#include <string.h>

#define BNN_FORMAT_VERSION "1"

static const char *task_name(bnn_task t) {
    return t == BNN_TASK_REGRESSION ? "regression" : "classification";
}

int bnn__model_write(const bnn_model *m, bnn_st_writer *w, bnn_task task, const float *params) {
    int rc = bnn_st_writer_meta(w, "format", "pt");
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.version", BNN_VERSION);
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.format", BNN_FORMAT_VERSION);
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.model", bnn_model_spec(m));
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.task", task_name(task));
    for (int64_t i = 0; !rc && i < bnn_model_nlayers(m); i++) {
        int64_t w_off, shape[2], b_off, b_len;
        if (bnn_model_layer_tensors(m, i, &w_off, shape, &b_off, &b_len)) continue;
        bnn__error_clear();
        char name[64];
        snprintf(name, sizeof name, "%lld.weight", (long long)i);
        rc = bnn_st_writer_add(w, name, BNN_DT_F32, 2, shape, params + w_off);
        snprintf(name, sizeof name, "%lld.bias", (long long)i);
        if (!rc) rc = bnn_st_writer_add(w, name, BNN_DT_F32, 1, &b_len, params + b_off);
    }
    return rc;
}

int bnn_model_save(const bnn_model *m, const char *path, bnn_task task, const char *const *keys,
                   const char *const *values, int64_t nkv) {
    bnn_st_writer *w;
    int rc = bnn_st_writer_new(&w);
    if (rc) return rc;
    rc = bnn__model_write(m, w, task, bnn_model_cparams(m));
    for (int64_t i = 0; !rc && i < nkv; i++) rc = bnn_st_writer_meta(w, keys[i], values[i]);
    if (!rc) rc = bnn_st_writer_save(w, path);
    bnn_st_writer_free(w);
    return rc;
}

int bnn__st_vector(const bnn_st *st, const char *name, float *dst, int64_t n, const char *what) {
    bnn_st_tensor t;
    if (bnn_st_get(st, name, &t))
        return bnn__error(BNN_EFORMAT, "%s: tensor '%s' is missing", what, name);
    if (t.dtype != BNN_DT_F32 || t.ndim != 1 || t.shape[0] != n)
        return bnn__error(BNN_EFORMAT, "%s: tensor '%s' should be F32 of shape [%lld]", what, name,
                          (long long)n);
    int rc = bnn_st_to_f32(&t, dst);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return bnn__error(BNN_EFORMAT, "%s: tensor '%s' holds NaN or Inf at %lld", what, name,
                              (long long)i);
    return 0;
}

int bnn_posterior_load(bnn_posterior **out, const bnn_model *m, const bnn_st *st) {
    *out = NULL;
    const char *kind = bnn_st_meta(st, "bnn.posterior");
    const int64_t n = bnn_model_nparams(m);
    bnn_posterior_kind k = BNN_POSTERIOR_POINT;
    if (kind && !strcmp(kind, "diag")) k = BNN_POSTERIOR_DIAG;
    else if (kind && strcmp(kind, "point"))
        return bnn__error(BNN_EFORMAT, "bnn.posterior is '%s', expected point or diag", kind);
    bnn_posterior *q;
    int rc = bnn_posterior_new(&q, k, n);
    if (rc) return rc;
    memcpy(bnn_posterior_mean(q), bnn_model_cparams(m), (size_t)n * sizeof(float));
    if (k == BNN_POSTERIOR_DIAG) {
        float *sd = bnn_posterior_std(q);
        rc = bnn__st_vector(st, "posterior.std", sd, n, "diagonal posterior");
        for (int64_t i = 0; !rc && i < n; i++)
            if (!(sd[i] > 0.0f))
                rc = bnn__error(BNN_EFORMAT, "posterior.std[%lld] = %g is not positive",
                                (long long)i, sd[i]);
        if (rc) {
            bnn_posterior_free(q);
            return rc;
        }
    }
    *out = q;
    return 0;
}

int bnn_model_load(bnn_model **out, const char *path, bnn_task *task, bnn_st **st_out) {
    *out = NULL;
    if (st_out) *st_out = NULL;
    bnn_st *st;
    int rc = bnn_st_read(&st, path);
    if (rc) return rc;
    bnn_model *m = NULL;
    const char *spec = bnn_st_meta(st, "bnn.model");
    const char *tk = bnn_st_meta(st, "bnn.task");
    if (!spec) {
        rc = bnn__error(BNN_EFORMAT, "%s: not a bnn model (no 'bnn.model' in __metadata__)", path);
        goto fail;
    }
    bnn_task t = BNN_TASK_CLASSIFICATION;
    if (tk && !strcmp(tk, "regression")) t = BNN_TASK_REGRESSION;
    else if (tk && strcmp(tk, "classification")) {
        rc = bnn__error(BNN_EFORMAT, "%s: bnn.task is '%s', expected classification or regression",
                        path, tk);
        goto fail;
    }
    if ((rc = bnn_model_new(&m, spec))) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bnn_last_error());
        rc = bnn__error(rc, "%s: bnn.model: %s", path, msg);
        goto fail;
    }
    float *params = bnn_model_params(m);
    for (int64_t i = 0; i < bnn_model_nlayers(m); i++) {
        int64_t off[2], shape[2][2], len;
        if (bnn_model_layer_tensors(m, i, &off[0], shape[0], &off[1], &len)) continue;
        shape[1][0] = len;
        for (int j = 0; j < 2; j++) {
            char name[64];
            snprintf(name, sizeof name, "%lld.%s", (long long)i, j ? "bias" : "weight");
            bnn_st_tensor tsr;
            if (bnn_st_get(st, name, &tsr)) {
                rc = bnn__error(BNN_EFORMAT, "%s: tensor '%s' of model %s is missing", path, name,
                                spec);
                goto fail;
            }
            int ndim = j ? 1 : 2;
            bool ok = tsr.dtype == BNN_DT_F32 && tsr.ndim == ndim && tsr.shape[0] == shape[j][0] &&
                      (ndim == 1 || tsr.shape[1] == shape[j][1]);
            if (!ok) {
                char want[64];
                if (ndim == 2)
                    snprintf(want, sizeof want, "[%lld, %lld]", (long long)shape[j][0],
                             (long long)shape[j][1]);
                else snprintf(want, sizeof want, "[%lld]", (long long)shape[j][0]);
                rc = bnn__error(BNN_EFORMAT, "%s: tensor '%s' should be F32 of shape %s, as "
                                "model %s needs", path, name, want, spec);
                goto fail;
            }
            if ((rc = bnn_st_to_f32(&tsr, params + off[j]))) goto fail;
        }
    }
    for (int64_t i = 0; i < bnn_model_nparams(m); i++) {
        if (!isfinite(params[i])) {
            rc = bnn__error(BNN_EFORMAT, "%s: the weights contain NaN or Inf (parameter %lld)",
                            path, (long long)i);
            goto fail;
        }
    }
    if (task) *task = t;
    *out = m;
    if (st_out) *st_out = st;
    else bnn_st_free(st);
    return 0;
fail:
    bnn_model_free(m);
    bnn_st_free(st);
    return rc;
}
