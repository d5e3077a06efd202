/* Model files: the weights as F32 tensors named like PyTorch's nn.Sequential state dict, with
 * the architecture in __metadata__ (DESIGN.md "Files"), so
 * `torch.nn.Sequential(...).load_state_dict(safetensors.torch.load_file(path))` works. */
#include "core/internal.h"
#include "nn/layer.h"

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
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.lik", bnn_lik_name(bnn_model_lik(m, task)));
    for (int64_t i = 0; !rc && i < bnn_model_nlayers(m); i++) {
        int64_t w_off, shape[2], b_off, b_len;
        if (bnn_model_layer_tensors(m, i, &w_off, shape, &b_off, &b_len)) continue;
        bnn__error_clear();
        char name[64];
        snprintf(name, sizeof name, "%lld.weight", (long long)i);
        rc = bnn__st_writer_add_ref(w, name, BNN_DT_F32, 2, shape, params + w_off);
        snprintf(name, sizeof name, "%lld.bias", (long long)i);
        if (!rc) rc = bnn__st_writer_add_ref(w, name, BNN_DT_F32, 1, &b_len, params + b_off);
    }
    return rc;
}

int bnn_model_save(const bnn_model *m, const char *path, bnn_task task, const char *const *keys,
                   const char *const *values, int64_t nkv) {
    if (!m || !path || nkv < 0 || (nkv > 0 && (!keys || !values)))
        return bnn__error(BNN_EINVAL, "bnn_model_save: a model, a path and nkv keys and values "
                          "are required");
    if (task != BNN_TASK_CLASSIFICATION && task != BNN_TASK_REGRESSION)
        return bnn__error(BNN_EINVAL, "bnn_model_save: unknown task %d", (int)task);
    bnn_st_writer *w;
    int rc = bnn_st_writer_new(&w);
    if (rc) return rc;
    rc = bnn__model_write(m, w, task, bnn_model_cparams(m));
    for (int64_t i = 0; !rc && i < nkv; i++) rc = bnn_st_writer_meta(w, keys[i], values[i]);
    if (!rc) rc = bnn_st_writer_save(w, path);
    bnn_st_writer_free(w);
    return rc;
}

int bnn_posterior_save(const bnn_posterior *q, const bnn_model *m, bnn_task task, const char *path,
                       const char *const *keys, const char *const *values, int64_t nkv) {
    if (!q || !m || !path || nkv < 0 || (nkv > 0 && (!keys || !values)))
        return bnn__error(BNN_EINVAL, "bnn_posterior_save: a posterior, a model, a path and nkv "
                          "keys and values are required");
    if (task != BNN_TASK_CLASSIFICATION && task != BNN_TASK_REGRESSION)
        return bnn__error(BNN_EINVAL, "bnn_posterior_save: unknown task %d", (int)task);
    const bnn_posterior_kind kind = bnn_posterior_kind_of(q);
    if (kind != BNN_POSTERIOR_POINT && kind != BNN_POSTERIOR_DIAG)
        return bnn__error(BNN_EINVAL, "bnn_posterior_save: a Laplace posterior is saved with "
                          "bnn_laplace_save");
    const int64_t n = bnn_model_nparams(m);
    if (bnn_posterior_n(q) != n)
        return bnn__error(BNN_ESHAPE, "bnn_posterior_save: the posterior has %lld parameters, "
                          "model %s has %lld", (long long)bnn_posterior_n(q), bnn_model_spec(m),
                          (long long)n);
    for (int64_t i = 0; i < nkv; i++)
        if (!keys[i] || !values[i])
            return bnn__error(BNN_EINVAL, "bnn_posterior_save: metadata entry %lld of %lld has a "
                              "NULL key or value", (long long)i, (long long)nkv);
    /* What loading checks, so that no file is written that bnn_posterior_load would refuse. */
    const float *mean = bnn_posterior_cmean(q);
    const float *sd = kind == BNN_POSTERIOR_DIAG ? bnn_posterior_cstd(q) : NULL;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(mean[i]))
            return bnn__error(BNN_EINVAL, "bnn_posterior_save: mean[%lld] = %g is not finite",
                              (long long)i, (double)mean[i]);
        if (sd && !(sd[i] > 0.0f && isfinite(sd[i])))
            return bnn__error(BNN_EINVAL, "bnn_posterior_save: std[%lld] = %g is not finite and "
                              "positive", (long long)i, (double)sd[i]);
    }
    bnn_st_writer *w;
    int rc = bnn_st_writer_new(&w);
    if (rc) return rc;
    rc = bnn__model_write(m, w, task, mean);
    for (int64_t i = 0; !rc && i < nkv; i++) rc = bnn_st_writer_meta(w, keys[i], values[i]);
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.posterior", sd ? "diag" : "point");
    if (!rc && sd) rc = bnn__st_writer_add_ref(w, "posterior.std", BNN_DT_F32, 1, &n, sd);
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

/* bnn.laplace.ef_noise of a file whose empirical Fisher of a Gaussian likelihood is scaled as
 * H/σ⁴ (every file since 2026-12-06); those from before scaled it as H/σ², like a GGN. */
#define EF_NOISE "1/sigma^4"

int bnn_laplace_save(const bnn_laplace *la, const bnn_model *m, bnn_task task, const char *path,
                     const char *const *keys, const char *const *values, int64_t nkv) {
    if (!la || !m || !path || nkv < 0 || (nkv > 0 && (!keys || !values)))
        return bnn__error(BNN_EINVAL, "bnn_laplace_save: the posterior, the model, the path and "
                                      "nkv >= 0 keys and values are required");
    if (task != bnn__laplace_task(la))
        return bnn__error(BNN_EINVAL, "bnn_laplace_save: the posterior was fitted for %s, not %s",
                          bnn__laplace_task(la) == BNN_TASK_REGRESSION ? "regression"
                                                                      : "classification",
                          task == BNN_TASK_REGRESSION       ? "regression"
                          : task == BNN_TASK_CLASSIFICATION ? "classification"
                                                            : "an unknown task");
    /* The keys that say how the curvature is scaled are the library's own, also where it leaves
     * them out (a curvature of unknown kind is written and read as a GGN); the others it writes
     * are refused as set twice by the writer. */
    for (int64_t i = 0; i < nkv; i++)
        if (keys[i] &&
            (!strcmp(keys[i], "bnn.laplace.curvature") || !strcmp(keys[i], "bnn.laplace.ef_noise")))
            return bnn__error(BNN_EINVAL, "bnn_laplace_save: metadata key '%s' is the library's "
                              "own", keys[i]);
    /* What loading it will check: a file that bnn_posterior_load would refuse is not written. */
    int rc = bnn__laplace_check_model(la, m, "bnn_laplace_save");
    if (rc) return rc;
    const bnn_curv *c = bnn_laplace_curv(la);
    bnn_st_writer *w;
    rc = bnn_st_writer_new(&w);
    if (rc) return rc;
    rc = bnn__model_write(m, w, task, bnn_model_cparams(m));
    char v[8][40];
    const int64_t P = bnn_curv_nparams(c), nb = bnn_curv_nblocks(c);
    bnn__fmt_double(v[0], sizeof v[0], bnn_laplace_prior_prec(la));
    bnn__fmt_double(v[1], sizeof v[1], bnn_laplace_sigma(la));
    bnn__fmt_double(v[2], sizeof v[2], bnn_curv_loss(c));
    snprintf(v[3], sizeof v[3], "%lld", (long long)bnn_curv_offset(c));
    snprintf(v[4], sizeof v[4], "%lld", (long long)P);
    snprintf(v[5], sizeof v[5], "%lld", (long long)bnn_curv_ndata(c));
    snprintf(v[6], sizeof v[6], "%lld", (long long)bnn_curv_noutputs(c));
    snprintf(v[7], sizeof v[7], "%lld", (long long)nb);
    const char *mk[] = {"bnn.laplace.prior_prec", "bnn.laplace.sigma", "bnn.laplace.loss",
                        "bnn.laplace.offset", "bnn.laplace.nparams", "bnn.laplace.ndata",
                        "bnn.laplace.noutputs", "bnn.laplace.nblocks"};
    if (!rc) rc = bnn_st_writer_meta(w, "bnn.posterior", "laplace");
    if (!rc)
        rc = bnn_st_writer_meta(w, "bnn.laplace.hessian", bnn_hessian_name(bnn_curv_structure(c)));
    bnn_curvature kind;
    if (!rc && bnn__curv_kind(c, &kind) == 0)
        rc = bnn_st_writer_meta(w, "bnn.laplace.curvature", bnn_curvature_name(kind));
    /* The empirical Fisher of a Gaussian likelihood is read as H/σ⁴ only from files that say so
     * (see the reader). */
    if (!rc && bnn__laplace_hpow(la) == 2)
        rc = bnn_st_writer_meta(w, "bnn.laplace.ef_noise", EF_NOISE);
    for (int i = 0; !rc && i < 8; i++) rc = bnn_st_writer_meta(w, mk[i], v[i]);
    {
        /* The subset's layer sizes, for per-layer prior precisions. */
        int64_t nl;
        const int64_t *ls;
        bnn__curv_layers(c, &nl, &ls);
        char buf[4096];
        size_t at = 0;
        buf[0] = '\0';
        for (int64_t i = 0; i < nl && at < sizeof buf; i++)
            at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%lld", i ? "," : "", (long long)ls[i]);
        if (!rc && nl > 0 && at < sizeof buf) rc = bnn_st_writer_meta(w, "bnn.laplace.layers", buf);
    }
    if (!rc) {
        /* Per-layer prior precisions, when they differ (bnn.laplace.prior_prec holds their mean;
         * equal ones are that value). */
        const int64_t nl = bnn_laplace_nlayers(la);
        double *dl = nl > 1 ? malloc((size_t)nl * sizeof(double)) : NULL;
        char *buf = dl ? malloc((size_t)nl * 32) : NULL;
        if (nl > 1 && (!dl || !buf)) rc = bnn__error(BNN_ENOMEM, "out of memory");
        if (!rc && dl && !bnn_laplace_prior_layers(la, dl, nl)) {
            bool differ = false;
            size_t at = 0;
            for (int64_t i = 0; i < nl; i++) {
                differ = differ || dl[i] != dl[0];
                at += (size_t)snprintf(buf + at, 32, "%s", i ? "," : "");
                bnn__fmt_double(buf + at, 30, dl[i]);
                at += strlen(buf + at);
            }
            if (differ) rc = bnn_st_writer_meta(w, "bnn.laplace.prior_layers", buf);
        }
        free(dl), free(buf);
    }
    if (!rc && bnn_curv_nsegments(c) > 1) {
        /* A subset in several runs of the flat vector (a chosen set of layers): "off:len,..." in
         * order. A subset in one run is [offset, offset + nparams), as files always held it. */
        const int64_t ns = bnn_curv_nsegments(c);
        size_t cap = (size_t)ns * 42 + 1, at = 0;
        char *buf = malloc(cap);
        if (!buf) rc = bnn__error(BNN_ENOMEM, "out of memory");
        for (int64_t i = 0; !rc && i < ns; i++) {
            int64_t so = 0, sl = 0;
            bnn_curv_segment(c, i, &so, &sl);
            at += (size_t)snprintf(buf + at, cap - at, "%s%lld:%lld", i ? "," : "", (long long)so,
                                   (long long)sl);
        }
        if (!rc) rc = bnn_st_writer_meta(w, "bnn.laplace.segments", buf);
        free(buf);
    }
    for (int64_t i = 0; !rc && i < nkv; i++) rc = bnn_st_writer_meta(w, keys[i], values[i]);
    if (!rc && bnn_curv_structure(c) == BNN_HESS_DIAG)
        rc = bnn__st_writer_add_ref(w, "laplace.diag", BNN_DT_F64, 1, &P, bnn_curv_diag(c));
    if (!rc && bnn_curv_structure(c) == BNN_HESS_FULL) {
        int64_t shape[2] = {P, P};
        rc = bnn__st_writer_add_ref(w, "laplace.dense", BNN_DT_F64, 2, shape, bnn_curv_dense(c));
        /* Its eigendecomposition too, so that loading skips the O(P³) step (2.8 s at P = 2570
         * of a 5.6 s eval): Q (columns the eigenvectors, as torch.linalg.eigh gives them) and λ
         * ascending. */
        const double *Q, *lam;
        if (!rc) rc = bnn__laplace_full_eig(la, &Q, &lam);
        if (!rc) rc = bnn__st_writer_add_ref(w, "laplace.eigvec", BNN_DT_F64, 2, shape, Q);
        if (!rc) rc = bnn__st_writer_add_ref(w, "laplace.eigval", BNN_DT_F64, 1, &P, lam);
    }
    if (!rc && bnn_curv_structure(c) == BNN_HESS_LOWRANK) {
        const double *U, *eig;
        int64_t r;
        if (!(rc = bnn_curv_lowrank(c, &U, &eig, &r))) {
            int64_t shape[2] = {P, r};
            rc = bnn__st_writer_add_ref(w, "laplace.lowrank.U", BNN_DT_F64, 2, shape, U);
            if (!rc) rc = bnn__st_writer_add_ref(w, "laplace.lowrank.eig", BNN_DT_F64, 1, &r, eig);
        }
    }
    for (int64_t i = 0; !rc && bnn_curv_structure(c) == BNN_HESS_KRON && i < nb; i++) {
        int nf;
        const double *f[2];
        int64_t nn[2];
        if ((rc = bnn_curv_block(c, i, &nf, &f[0], &nn[0], &f[1], &nn[1]))) break;
        for (int j = 0; !rc && j < nf; j++) {
            char name[64];
            int64_t shape[2] = {nn[j], nn[j]};
            snprintf(name, sizeof name, "laplace.b%lld.f%d", (long long)i, j);
            rc = bnn__st_writer_add_ref(w, name, BNN_DT_F64, 2, shape, f[j]);
        }
    }
    if (!rc) rc = bnn_st_writer_save(w, path);
    bnn_st_writer_free(w);
    return rc;
}

/* Reads a number from the metadata; BNN_EFORMAT naming the key. */
static int meta_double(const bnn_st *st, const char *what, const char *key, double *out) {
    const char *v = bnn_st_meta(st, key);
    char *end;
    if (!v || (*out = bnn_strtod(v, &end), end == v || *end))
        return bnn__error(BNN_EFORMAT, "%s: metadata '%s' is missing or not a number", what,
                          key);
    return 0;
}

/* Reads an F64 tensor of the given shape (d1 = 0 for a vector) into a new buffer. */
static int read_f64(const bnn_st *st, const char *what, const char *name, int64_t d0, int64_t d1,
                    double **out) {
    bnn_st_tensor t;
    *out = NULL;
    if (bnn_st_get(st, name, &t) || t.dtype != BNN_DT_F64 || t.ndim != (d1 ? 2 : 1) ||
        t.shape[0] != d0 || (d1 && t.shape[1] != d1))
        return bnn__error(BNN_EFORMAT,
                          "%s: tensor '%s' is missing or not F64 of the size the metadata says",
                          what, name);
    *out = malloc((size_t)t.numel * sizeof(double));
    if (!*out)
        return bnn__error(BNN_ENOMEM, "%s: out of memory decoding tensor '%s' (%lld values)", what,
                          name, (long long)t.numel);
    int rc = bnn_st_to_f64(&t, *out);
    for (int64_t i = 0; !rc && i < t.numel; i++)
        if (!isfinite((*out)[i]))
            rc = bnn__error(BNN_EFORMAT, "%s: tensor '%s' holds NaN or Inf", what, name);
    return rc;
}

/* The probes' seed for check_full_eig: a hash of the values checked (H, Q and λ, 2P² + P
 * doubles), so the same file always gets the same verdict. The check is against damage, not
 * tampering: the hash is not cryptographic, and a damaged file edited again (one bit of H) gets
 * new probes, so one that escapes them can be found by trying. Four independent
 * multiply–xorshift lanes, combined at the end; a few ms at P = 2570. */
static uint64_t content_seed(const double *H, const double *Q, const double *lam, int64_t P) {
    uint64_t h[4] = {0x243f6a8885a308d3u, 0x13198a2e03707344u, 0xa4093822299f31d0u,
                     0x082efa98ec4e6c89u};
    const double *const arr[3] = {H, Q, lam};
    const int64_t len[3] = {P * P, P * P, P};
    for (int a = 0; a < 3; a++)
        for (int64_t i = 0; i < len[a]; i++) {
            uint64_t x;
            memcpy(&x, &arr[a][i], sizeof x);
            uint64_t *l = &h[i & 3];
            *l = (*l ^ x) * 0x9e3779b97f4a7c15u;
            *l ^= *l >> 29;
        }
    uint64_t s = (uint64_t)P;
    for (int i = 0; i < 4; i++) s = (s ^ h[i]) * 0xbf58476d1ce4e5b9u, s ^= s >> 31;
    return s;
}

/* Whether eigvec (Q) and eigval (λ) read from a file are the eigendecomposition of its full
 * curvature H (P × P): λ ascending, and for two random probe vectors v, Q Qᵀ v = v and
 * H v = Q (λ ∘ Qᵀ v) to 1e-8 of their scale. O(P²), where computing them again is O(P³).
 * The probes come from a hash of the values (content_seed): probes drawn afresh on every load
 * made a borderline file pass or fail at random, and fixed ones would let every file damaged
 * along the same directions pass. For every real file the probes do not matter: its
 * residuals are bounded by ‖Qᵀ Q − I‖ and ‖H − Q Λ Qᵀ‖, about P · 1e-16 for LAPACK's, so any v
 * passes; and the values used are the file's, whatever the probes. A damaged pair passes only
 * when both probes are nearly orthogonal to what changed: an eigenvalue off by a relative ε
 * escapes, over the hashes of such damaged files, with probability about 0.64·P·(1e-8/ε)² (0.3%
 * for ε = 1e-6 at P = 46, 3e-7 for ε = 1e-4). */
static int check_full_eig(const char *what, const double *H, const double *Q, const double *lam,
                          int64_t P) {
    for (int64_t i = 1; i < P; i++)
        if (!(lam[i] >= lam[i - 1]))
            return bnn__error(BNN_EFORMAT, "%s: laplace.eigval is not ascending (value %lld)",
                              what, (long long)i);
    double *v = malloc((size_t)(3 * P) * sizeof(double));
    float *z = malloc((size_t)P * sizeof(float));
    if (!v || !z) {
        free(v), free(z);
        return bnn__error(BNN_ENOMEM, "out of memory");
    }
    double *u = v + P, *hv = u + P;
    bnn_rng rng = bnn_rng_make(content_seed(H, Q, lam, P), 0);
    const double scale = fmax(fabs(lam[0]), fabs(lam[P - 1]));
    double worst_orth = 0.0, worst_res = 0.0;
    for (int probe = 0; probe < 2; probe++) {
        double vv = 0.0;
        bnn_rng_normal(&rng, z, P);
        for (int64_t i = 0; i < P; i++) {
            v[i] = (double)z[i];
            vv += v[i] * v[i];
            u[i] = hv[i] = 0.0;
        }
        for (int64_t i = 0; i < P; i++) /* u = Qᵀ v, hv = H v (H symmetric: Hᵀ v) */
            for (int64_t k = 0; k < P; k++)
                u[k] += Q[i * P + k] * v[i], hv[k] += H[i * P + k] * v[i];
        double orth = 0.0, res = 0.0;
        for (int64_t i = 0; i < P; i++) {
            double w = 0.0, zi = 0.0;
            for (int64_t k = 0; k < P; k++)
                w += Q[i * P + k] * u[k], zi += Q[i * P + k] * (lam[k] * u[k]);
            orth += (w - v[i]) * (w - v[i]), res += (hv[i] - zi) * (hv[i] - zi);
        }
        const double nv = sqrt(vv);
        worst_orth = fmax(worst_orth, sqrt(orth) / nv);
        worst_res = fmax(worst_res, sqrt(res) / nv);
    }
    free(v), free(z);
    if (!(worst_orth <= 1e-8) || !(worst_res <= 1e-8 * scale))
        return bnn__error(BNN_EFORMAT, "%s: laplace.eigvec and laplace.eigval are "
                          "not the eigendecomposition of laplace.dense (orthogonality error %.3g, "
                          "residual %.3g of %.3g)", what, worst_orth, worst_res, scale);
    return 0;
}

/* bnn laplace saves a posterior only when a weight sample drawn from it is finite (a prior
 * precision far below the curvature on a flat direction gives variances beyond float range);
 * a file edited to such a prior is refused the same way here, instead of a GLM predictive that
 * is uniform at every input (variances near 1/δ) while every weight sample fails. The sample
 * costs about one matrix product per Kronecker block, small beside any predictive. */
static int check_sample(const bnn_laplace *la, const char *what) {
    const int64_t P = bnn_curv_nparams(bnn_laplace_curv(la));
    float *theta = malloc((size_t)P * sizeof *theta);
    if (!theta) return bnn__error(BNN_ENOMEM, "%s: out of memory for a weight sample", what);
    bnn_rng rng = bnn_rng_make(0, 0);
    int rc = bnn_laplace_sample(la, &rng, theta);
    free(theta);
    if (rc == BNN_EINVAL)
        rc = bnn__error(BNN_EFORMAT, "%s: at prior precision %g a weight sample is not finite "
                        "(the posterior variance overflows a float; bnn laplace does not save "
                        "such a posterior)", what, bnn_laplace_prior_prec(la));
    return rc;
}

/* Refused before decoding, with the size, where loading the posterior would not fit in memory
 * (bnn__byte_limit). Held at the peak, besides the file image F: the curvature tensors decoded (D)
 * and the curvature's own copy of them (D; for full, the decoded H is freed first, and D counts H
 * and the saved eigenvectors once each); kron also the eigendecomposition of every factor (D)
 * with dsyevd's workspace for the largest (2 n² doubles); full without saved eigenvectors their
 * computation (Q and a 2 P² workspace: 24 P² bytes), with them the Cholesky factor of per-layer
 * priors (8 P²). Measured: a full posterior of P = 4482 peaked at 32 P² when loaded. */
static int load_fits(const bnn_st *st, const char *what, bnn_hessian h, int64_t P) {
    double file = 0, decoded = 0, nmax = 0;
    bnn_st_tensor t;
    for (int64_t i = 0; i < bnn_st_count(st); i++) {
        if (bnn_st_at(st, i, &t)) continue;
        const double b = (double)t.numel * (double)bnn_dtype_size(t.dtype);
        file += b;
        if (t.dtype != BNN_DT_F64 || strncmp(t.name, "laplace.", 8)) continue;
        decoded += b;
        if (t.ndim == 2 && (double)t.shape[0] > nmax) nmax = (double)t.shape[0];
    }
    const double p2 = (double)P * (double)P;
    double need = file + 2.0 * decoded;
    if (h == BNN_HESS_KRON) need += decoded + 16.0 * nmax * nmax;
    if (h == BNN_HESS_FULL) {
        need = file + decoded;
        if (bnn_st_get(st, "laplace.eigvec", &t)) need += 24.0 * p2;
        else if (bnn_st_meta(st, "bnn.laplace.prior_layers")) need += 8.0 * p2;
    }
    double limit;
    char sl[80];
    int rc = bnn__byte_limit("loading a posterior", 0.0, &limit, sl, sizeof sl);
    if (rc) return rc;
    if (need <= limit) return 0;
    char sn[32];
    bnn__format_bytes(sn, sizeof sn, need);
    return bnn__error(BNN_ENOMEM, "%s: loading it needs about %s (the file, its curvature decoded%s), "
                      "more than %s of memory", what, sn,
                      h == BNN_HESS_FULL ? " and its eigendecomposition" : "", sl);
}

/* The posterior tag and the tensors must agree: a diagonal posterior's standard deviations
 * (posterior.std) beside any other tag, or a Laplace posterior's tensors (laplace.*) beside any
 * other, is an edited file, whose user may think they evaluate the posterior it holds. path: the
 * message's prefix (NULL: none). */
static int check_posterior_tag(const bnn_st *st, const char *path) {
    const char *kind = bnn_st_meta(st, "bnn.posterior");
    const bool point = !kind || !strcmp(kind, "point"), diag = kind && !strcmp(kind, "diag");
    const bool laplace = kind && !strcmp(kind, "laplace");
    if (!point && !diag && !laplace) return 0; /* a tag bnn_posterior_load refuses */
    const char *name = !diag && bnn__st_has(st, "posterior.std") ? "posterior.std" : NULL;
    for (int64_t i = 0; !name && !laplace && i < bnn_st_count(st); i++) {
        bnn_st_tensor t;
        if (!bnn_st_at(st, i, &t) && !strncmp(t.name, "laplace.", 8)) name = t.name;
    }
    if (!name) return 0;
    return bnn__error(BNN_EFORMAT, "%s%sbnn.posterior is %s%s%s but the file holds %.60s, a %s "
                      "posterior's (an edited file?)", path ? path : "", path ? ": " : "",
                      kind ? "'" : "", kind ? kind : "missing", kind ? "'" : "", name,
                      strncmp(name, "laplace.", 8) ? "diagonal" : "Laplace");
}

static int load_laplace(bnn_posterior **out, const bnn_model *m, const bnn_st *st) {
    /* bnn von stores its full-covariance Gaussian in this layout (bnn.method von): its errors
     * name the posterior the user made. */
    const char *meth = bnn_st_meta(st, "bnn.method");
    const char *what = meth && !strcmp(meth, "von") ? "VON posterior" : "Laplace posterior";
    double d[8];
    const char *mk[] = {"bnn.laplace.prior_prec", "bnn.laplace.sigma", "bnn.laplace.loss",
                        "bnn.laplace.offset", "bnn.laplace.nparams", "bnn.laplace.ndata",
                        "bnn.laplace.noutputs", "bnn.laplace.nblocks"};
    for (int i = 0; i < 3; i++) {
        int rc = meta_double(st, what, mk[i], &d[i]);
        if (rc) return rc;
        /* The prior precision and σ must be positive numbers, the loss finite. */
        const bool ok = i <= 1 ? d[i] > 0.0 && isfinite(d[i]) : isfinite(d[i]);
        if (!ok)
            return bnn__error(BNN_EFORMAT, "%s: metadata '%s' is %g, not %s", what, mk[i],
                              d[i], i <= 1 ? "a positive number" : "finite");
    }
    /* A Gaussian regression network's noise is recorded twice, bnn.sigma for its predictive
     * and bnn.laplace.sigma for the posterior's scale, and bnn laplace writes them equal: two
     * values mean an edited file, whose predictive would mix them. */
    const char *ts = bnn_st_meta(st, "bnn.task"), *bs = bnn_st_meta(st, "bnn.sigma");
    if (bs && ts && !strcmp(ts, "regression") &&
        bnn_model_lik(m, BNN_TASK_REGRESSION) == BNN_LIK_GAUSSIAN) {
        const double s = bnn_strtod(bs, NULL);
        if (!(fabs(s - d[1]) <= 1e-9 * d[1]))
            return bnn__error(BNN_EFORMAT,
                              "%s: bnn.sigma (%.40s) and bnn.laplace.sigma (%g) "
                              "disagree: the noise is recorded twice",
                              what, bs, d[1]);
    }
    /* The counts: whole numbers as bnn_parse_int reads them, at most 2^53 (kept as doubles
     * here, exactly). */
    for (int i = 3; i < 8; i++) {
        const char *v = bnn_st_meta(st, mk[i]);
        int64_t x;
        if (!v || bnn_parse_int(v, &x) || x < 0 || x > ((int64_t)1 << 53))
            return bnn__error(BNN_EFORMAT, "%s: metadata '%s' is %s%.40s%s, not a "
                              "whole number >= 0", what, mk[i], v ? "'" : "", v ? v : "missing",
                              v ? "'" : "");
        d[i] = (double)x;
    }
    const char *hs = bnn_st_meta(st, "bnn.laplace.hessian");
    bnn_hessian h;
    if (!hs || bnn_hessian_parse(hs, &h))
        return bnn__error(BNN_EFORMAT,
                          "%s: bnn.laplace.hessian is missing or unknown (diag, kron, full, "
                          "lowrank)", what);
    /* Which curvature (a file without the key, saved through the library from a curvature of
     * unknown kind, is read as a GGN). The empirical Fisher of a Gaussian likelihood scales as
     * 1/σ⁴; files from before 2026-12-06 (bnn laplace always wrote the key) scaled it as 1/σ²
     * and tuned their prior and noise so: refused below, unless bnn.laplace.ef_noise says. */
    const char *cs = bnn_st_meta(st, "bnn.laplace.curvature");
    bnn_curvature kind = BNN_CURV_GGN;
    if (cs && bnn_curvature_parse(cs, &kind))
        return bnn__error(BNN_EFORMAT,
                          "%s: bnn.laplace.curvature is '%.40s', not ggn, ggn-mc or ef", what, cs);
    const int64_t off = (int64_t)d[3], P = (int64_t)d[4], nb = (int64_t)d[7];
    /* The subset's segments: bnn.laplace.segments when it lies in several runs, else the one run
     * [offset, offset + nparams) (every file before segments existed). */
    const char *segs = bnn_st_meta(st, "bnn.laplace.segments");
    int64_t nseg = 0, *soff = NULL, *slen = NULL;
    if (segs && *segs) {
        int64_t cap = 1;
        for (const char *q = segs; *q; q++)
            cap += *q == ',';
        soff = malloc((size_t)cap * sizeof *soff), slen = malloc((size_t)cap * sizeof *slen);
        if (!soff || !slen) {
            free(soff), free(slen);
            return bnn__error(BNN_ENOMEM, "out of memory");
        }
        const char *q = segs;
        bool okp = true;
        while (okp && nseg < cap) {
            const char *end;
            okp = !bnn__parse_int_prefix(q, &end, &soff[nseg]) && *end == ':';
            if (okp) {
                q = end + 1;
                okp = !bnn__parse_int_prefix(q, &end, &slen[nseg]) &&
                      (*end == ',' ? end[1] != '\0' : !*end);
            }
            if (okp) nseg++, q = *end ? end + 1 : end;
            if (!*q) break;
        }
        int64_t sum = 0, prev = 0;
        for (int64_t i = 0; okp && i < nseg; i++) {
            okp = soff[i] >= prev && slen[i] >= 1 && slen[i] <= bnn_model_nparams(m) &&
                  soff[i] <= bnn_model_nparams(m) - slen[i];
            if (okp) prev = soff[i] + slen[i], sum += slen[i]; /* both bounded by the model */
        }
        if (!okp || nseg < 1 || sum != P || soff[0] != off) {
            free(soff), free(slen);
            return bnn__error(BNN_EFORMAT,
                              "%s: bnn.laplace.segments '%s' is not "
                              "ascending offset:length pairs within model %s holding the %lld "
                              "parameters from offset %lld", what,
                              segs, bnn_model_spec(m), (long long)P, (long long)off);
        }
    }
    if (off < 0 || P < 1 || (!nseg && off + P > bnn_model_nparams(m)) || nb < 0 || nb > 4096) {
        free(soff), free(slen);
        return bnn__error(BNN_EFORMAT, "%s: subset [%lld, +%lld) or %lld blocks do "
                          "not fit model %s", what, (long long)off, (long long)P, (long long)nb,
                          bnn_model_spec(m));
    }
    int rc = load_fits(st, what, h, P);
    if (rc) {
        free(soff), free(slen);
        return rc;
    }
    double *diag = NULL, *dense = NULL, **f = NULL, *eigvec = NULL, *eigval = NULL;
    int64_t *n0 = NULL, *n1 = NULL;
    if (h == BNN_HESS_DIAG) rc = read_f64(st, what, "laplace.diag", P, 0, &diag);
    if (h == BNN_HESS_FULL) rc = read_f64(st, what, "laplace.dense", P, P, &dense);
    int64_t rank = 0;
    if (h == BNN_HESS_LOWRANK) {
        bnn_st_tensor t;
        if (bnn_st_get(st, "laplace.lowrank.eig", &t) || t.ndim != 1 || t.shape[0] < 1 ||
            t.shape[0] > P)
            rc = bnn__error(BNN_EFORMAT, "%s: laplace.lowrank.eig is missing or "
                            "not a vector of 1..%lld values", what, (long long)P);
        else rank = t.shape[0];
        if (!rc) rc = read_f64(st, what, "laplace.lowrank.eig", rank, 0, &diag);
        if (!rc) rc = read_f64(st, what, "laplace.lowrank.U", P, rank, &dense);
    }
    if (h == BNN_HESS_KRON) {
        f = calloc((size_t)(2 * nb + 1), sizeof *f);
        n0 = calloc((size_t)nb + 1, sizeof *n0), n1 = calloc((size_t)nb + 1, sizeof *n1);
        if (!f || !n0 || !n1) rc = bnn__error(BNN_ENOMEM, "out of memory");
        for (int64_t i = 0; !rc && i < nb; i++) {
            for (int j = 0; !rc && j < 2; j++) {
                char name[64];
                bnn_st_tensor t;
                snprintf(name, sizeof name, "laplace.b%lld.f%d", (long long)i, j);
                if (bnn_st_get(st, name, &t)) {
                    if (j == 0) rc = bnn__error(BNN_EFORMAT, "%s: '%s' is missing", what, name);
                    continue; /* a bias block has one factor */
                }
                int64_t side = t.ndim == 2 ? t.shape[0] : 0;
                if (!(rc = read_f64(st, what, name, side, side, &f[2 * i + j])))
                    (j ? n1 : n0)[i] = side;
            }
        }
    }
    bnn_curv *c = NULL;
    bnn_laplace *la = NULL;
    if (!rc) {
        const double **f0 = NULL, **f1 = NULL;
        double *pf0[4096 + 1], *pf1[4096 + 1];
        if (f) {
            for (int64_t i = 0; i < nb; i++) pf0[i] = f[2 * i], pf1[i] = f[2 * i + 1];
            f0 = (const double **)pf0, f1 = (const double **)pf1;
        }
        if (h == BNN_HESS_LOWRANK)
            rc = bnn_curv_lowrank_from_arrays(&c, P, off, (int64_t)d[5], (int64_t)d[6], d[2], rank,
                                              dense, diag);
        else
            rc = bnn_curv_from_arrays(&c, h, P, off, (int64_t)d[5], (int64_t)d[6], d[2], diag,
                                      dense, nb, n0, n1, (const double *const *)f0,
                                      (const double *const *)f1);
    }
    /* The curvature holds its own copy of dense: freed before the eigenvectors are read, so that
     * a full posterior's load holds two P × P matrices besides the file, not four. */
    free(dense), dense = NULL;
    bnn_st_tensor et;
    /* Files from before bnn saved the eigendecomposition: computed on load, as then. */
    if (!rc && h == BNN_HESS_FULL && bnn_st_get(st, "laplace.eigvec", &et) == 0) {
        rc = read_f64(st, what, "laplace.eigvec", P, P, &eigvec);
        if (!rc) rc = read_f64(st, what, "laplace.eigval", P, 0, &eigval);
        if (!rc) rc = check_full_eig(what, bnn_curv_dense(c), eigvec, eigval, P);
        if (rc) {
            bnn_curv_free(c);
            c = NULL;
        }
    }
    if (!rc && nseg && (rc = bnn_curv_set_segments(c, nseg, soff, slen))) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", bnn_last_error());
        rc = bnn__error(BNN_EFORMAT, "%s: bnn.laplace.segments '%s': %s", what, segs, msg);
        bnn_curv_free(c);
        c = NULL;
    }
    free(soff), free(slen);
    const char *layers = bnn_st_meta(st, "bnn.laplace.layers");
    if (!rc && layers) {
        int64_t ls[256], nl = 0;
        const char *q = layers;
        bool okl = true;
        while (okl && *q && nl < 256) {
            const char *end;
            okl = !bnn__parse_int_prefix(q, &end, &ls[nl++]) &&
                  (*end == ',' ? end[1] != '\0' : !*end);
            if (okl) q = *end == ',' ? end + 1 : end;
        }
        if (!okl || *q)
            rc = bnn__error(BNN_EFORMAT, "not a comma-separated list of sizes");
        else rc = bnn__curv_set_layers(c, nl, ls);
        if (rc) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", bnn_last_error());
            rc = bnn__error(BNN_EFORMAT, "%s: bnn.laplace.layers '%s': %s", what, layers, msg);
            bnn_curv_free(c);
            c = NULL;
        }
    }
    const char *tk = bnn_st_meta(st, "bnn.task");
    bnn_task task = tk && !strcmp(tk, "regression") ? BNN_TASK_REGRESSION : BNN_TASK_CLASSIFICATION;
    if (!rc && c) bnn__curv_set_lik(c, bnn_model_lik(m, task));
    const char *efn = bnn_st_meta(st, "bnn.laplace.ef_noise");
    if (!rc && c && kind == BNN_CURV_EF && task == BNN_TASK_REGRESSION &&
        bnn_model_lik(m, task) == BNN_LIK_GAUSSIAN && !(efn && !strcmp(efn, EF_NOISE))) {
        rc = bnn__error(BNN_EFORMAT, "%s: an empirical-Fisher posterior of a Gaussian likelihood "
                        "written before bnn scaled it as 1/sigma^4 (it took 1/sigma^2, and tuned "
                        "its prior and noise so): fit it again with bnn laplace", what);
        bnn_curv_free(c);
        c = NULL;
    }
    if (!rc && c && cs) bnn__curv_set_kind(c, kind);
    /* bnn_laplace_new_from_params owns c from here on, also when it fails. */
    if (!rc && !(rc = bnn__laplace_new_eig(&la, c, bnn_model_cparams(m), task, &eigvec, eigval))) {
        bnn_laplace_set_prior(la, d[0], d[1]);
        /* Per-layer prior precisions, when the fit tuned one per layer. */
        const char *pl = bnn_st_meta(st, "bnn.laplace.prior_layers");
        if (pl) {
            /* Comma-separated numbers, one per group (bnn_laplace_set_prior_layers checks the
             * count and that each is positive and finite). */
            int64_t cap = 1, nv = 0;
            for (const char *q = pl; *q; q++) cap += *q == ',';
            double *v = malloc((size_t)cap * sizeof(double));
            const char *q = pl;
            bool okv = v != NULL;
            while (okv && nv < cap) {
                char *end;
                v[nv++] = bnn_strtod(q, &end);
                okv = end != q && (*end == ',' ? end[1] != '\0' : !*end);
                if (!*end) break;
                q = end + 1;
            }
            if (!v) rc = bnn__error(BNN_ENOMEM, "out of memory");
            else if (!okv) rc = bnn__error(BNN_EFORMAT, "not a comma-separated list of numbers");
            else rc = bnn_laplace_set_prior_layers(la, v, nv);
            free(v);
            if (rc) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s", bnn_last_error());
                rc = bnn__error(rc, "%s: bnn.laplace.prior_layers '%s': %s", what, pl, msg);
            }
        }
        if (!rc) rc = check_sample(la, what);
        /* bnn__posterior_from_laplace owns la, also on failure. */
        if (!rc) rc = bnn__posterior_from_laplace(out, m, la, what);
        else bnn_laplace_free(la);
    }
    free(diag), free(dense), free(eigvec), free(eigval), free(n0), free(n1);
    for (int64_t i = 0; f && i < 2 * nb; i++) free(f[i]);
    free(f);
    return rc;
}

/* An IVON file holds its posterior twice: posterior.std, which predictions use, and the state it
 * comes from, σ = 1/√(λ (h + δ)) with h = ivon.hess, λ = bnn.ivon.ess, δ = bnn.weight_decay
 * (which `bnn info` prints). They must agree (to float rounding, with room to spare), or the
 * file was edited and one of them is not the posterior that was trained. A file without
 * ivon.hess (not IVON's) has nothing to compare. */
static int check_ivon_std(const bnn_st *st, const float *sd, int64_t n) {
    const char *meth = bnn_st_meta(st, "bnn.method");
    bnn_st_tensor t;
    if (!meth || strcmp(meth, "ivon") || bnn_st_get(st, "ivon.hess", &t)) return 0;
    const char *what = "IVON posterior";
    double lam = 0, wd = 0;
    int rc;
    if ((rc = meta_double(st, what, "bnn.ivon.ess", &lam)) ||
        (rc = meta_double(st, what, "bnn.weight_decay", &wd)))
        return rc;
    if (!(lam > 0) || !isfinite(lam) || !(wd >= 0) || !isfinite(wd))
        return bnn__error(BNN_EFORMAT, "%s: bnn.ivon.ess %g must be positive and "
                          "bnn.weight_decay %g non-negative", what, lam, wd);
    float *h = malloc((size_t)n * sizeof *h);
    if (!h) return bnn__error(BNN_ENOMEM, "%s: out of memory", what);
    rc = bnn__st_vector(st, "ivon.hess", h, n, what);
    for (int64_t i = 0; !rc && i < n; i++) {
        const double want = 1.0 / sqrt(lam * ((double)h[i] + wd));
        if (!(fabs((double)sd[i] - want) <= 1e-5 * want))
            rc = bnn__error(BNN_EFORMAT, "%s: posterior.std[%lld] = %g but 1/sqrt(ess (h + delta)) "
                            "from ivon.hess, bnn.ivon.ess and bnn.weight_decay is %g: an edited "
                            "file?", what, (long long)i, (double)sd[i], want);
    }
    free(h);
    return rc;
}

int bnn_posterior_load(bnn_posterior **out, const bnn_model *m, const bnn_st *st) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_posterior_load: out is NULL");
    *out = NULL;
    if (!m || !st)
        return bnn__error(BNN_EINVAL, "bnn_posterior_load: the model and the file are required");
    /* The mean is m's weights: m must be the model read from this file, whose architecture at
     * least can be checked (another one took its weights from the wrong network, silently). */
    const char *spec = bnn_st_meta(st, "bnn.model");
    bool same = true;
    int rc0 = spec ? bnn__spec_is(spec, m, &same) : 0;
    if (rc0) return rc0; /* out of memory (bnn_model_load has parsed the spec) */
    if (!same)
        return bnn__error(BNN_EINVAL, "bnn_posterior_load: the model (%s) is not the file's "
                          "(%.80s); pass the model bnn_model_load read from the file",
                          bnn_model_spec(m), spec);
    const char *kind = bnn_st_meta(st, "bnn.posterior");
    const int64_t n = bnn_model_nparams(m);
    bnn_posterior_kind k = BNN_POSTERIOR_POINT;
    if (kind && !strcmp(kind, "laplace")) return load_laplace(out, m, st);
    if (kind && !strcmp(kind, "diag")) k = BNN_POSTERIOR_DIAG;
    else if (kind && strcmp(kind, "point"))
        return bnn__error(BNN_EFORMAT, "bnn.posterior is '%s', expected point, diag or laplace",
                          kind);
    if ((rc0 = check_posterior_tag(st, NULL))) return rc0;
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
        if (!rc) rc = check_ivon_std(st, sd, n);
        if (rc) {
            bnn_posterior_free(q);
            return rc;
        }
    }
    *out = q;
    return 0;
}

int bnn_model_load(bnn_model **out, const char *path, bnn_task *task, bnn_st **st_out) {
    if (!out || !path) return bnn__error(BNN_EINVAL, "bnn_model_load: out and path are required");
    *out = NULL;
    if (st_out) *st_out = NULL;
    bnn_st *st;
    int rc = bnn_st_read(&st, path);
    if (rc) return rc;
    if ((rc = bnn_model_from_st(out, st, path, task))) {
        bnn_st_free(st);
        return rc;
    }
    if (st_out) *st_out = st;
    else bnn_st_free(st);
    return 0;
}

/* For the messages about a file's weights: " (...)" naming what the file holds instead, when
 * that tells a PyTorch user what to change — a bias-free Linear layer, names with a prefix or
 * from a custom module, or other indices (a Sequential with Dropout layers) — or "". */
static void names_hint(char *buf, size_t len, const bnn_st *st) {
    bnn_st_tensor t;
    buf[0] = 0;
    /* A Sequential layer's weight ('<index>.weight') without its bias, at any index. */
    for (int64_t i = 0; i < bnn_st_count(st); i++) {
        char bias[80];
        size_t nl;
        if (bnn_st_at(st, i, &t) || (nl = strlen(t.name)) < 8 || nl - 7 >= 64 ||
            strcmp(t.name + nl - 7, ".weight") || strspn(t.name, "0123456789") != nl - 7)
            continue;
        snprintf(bias, sizeof bias, "%.*s.bias", (int)(nl - 7), t.name);
        bnn_st_tensor b;
        if (bnn_st_get(st, bias, &b)) {
            snprintf(buf, len, " (the file has '%s' but no '%s': bnn's Linear layers have "
                     "biases, and a layer made with bias=False cannot be read)", t.name, bias);
            return;
        }
    }
    /* Up to three names, a long one (a deep module path) cut in its middle so that its end,
     * which tells a weight from a bias, stays; the explanation always fits after them. */
    size_t at = (size_t)snprintf(buf, len, " (it holds ");
    const int64_t n = bnn_st_count(st);
    for (int64_t i = 0; i < n && i < 3 && at < len; i++) {
        if (bnn_st_at(st, i, &t)) continue;
        const int nl = (int)strlen(t.name);
        if (nl <= 56)
            at += (size_t)snprintf(buf + at, len - at, "%s'%s'", i ? ", " : "", t.name);
        else { /* cut between UTF-8 characters, not inside one */
            int head = 24, tail = nl - 29;
            while (head > 0 && ((unsigned char)t.name[head] & 0xC0) == 0x80) head--;
            while (tail < nl && ((unsigned char)t.name[tail] & 0xC0) == 0x80) tail++;
            at += (size_t)snprintf(buf + at, len - at, "%s'%.*s...%s'", i ? ", " : "", head,
                                   t.name, t.name + tail);
        }
    }
    if (at < len)
        snprintf(buf + at, len - at, "%s: bnn reads the names of the equivalent nn.Sequential's "
                 "state dict, where an activation or a Dropout takes an index too ('0.weight', "
                 "'0.bias', '2.weight', ... for mlp:A-B-C), without a prefix)",
                 n > 3 ? ", ..." : "");
}

/* A state-dict tensor '<index>.<name>' at an index where model m has no weights: the saved
 * network has a layer there that the spec does not describe (a LayerNorm or BatchNorm between
 * the Linear layers, or a layer after the last), and reading the file as the spec would compute
 * another function with no word of it. Tensors with other names are ignored (README). */
static int check_unmodelled(bnn_model *m, const bnn_st *st, const char *path, const char *spec) {
    const int64_t nl = bnn_model_nlayers(m);
    for (int64_t i = 0; i < bnn_st_count(st); i++) {
        bnn_st_tensor t;
        const char *end;
        int64_t idx;
        if (bnn_st_at(st, i, &t) || t.name[0] < '0' || t.name[0] > '9' ||
            bnn__parse_int_prefix(t.name, &end, &idx) || *end != '.')
            continue;
        int64_t off[2], shape[2], len;
        if (idx < nl && !bnn_model_layer_tensors(m, idx, &off[0], shape, &off[1], &len))
            continue; /* a Linear layer: its weight and bias were read */
        if (idx >= nl)
            return bnn__error(BNN_EFORMAT, "%s: tensor '%.60s' is of layer %lld of the saved "
                              "network, but model %s ends at layer %lld: is bnn.model complete?",
                              path, t.name, (long long)idx, spec, (long long)(nl - 1));
        return bnn__error(BNN_EFORMAT, "%s: tensor '%.60s' is of layer %lld of the saved "
                          "network, where model %s has a %s, which has no tensors: the network "
                          "has a layer there that bnn does not model (a LayerNorm or "
                          "BatchNorm?)", path, t.name, (long long)idx, spec,
                          bnn__model_layer(m, idx)->vt->torch);
    }
    return 0;
}

int bnn_model_from_st(bnn_model **out, const bnn_st *st, const char *path, bnn_task *task) {
    if (!out || !st || !path)
        return bnn__error(BNN_EINVAL, "bnn_model_from_st: out, st and name are required");
    *out = NULL;
    int rc = 0;
    bnn_model *m = NULL;
    const char *spec = bnn_st_meta(st, "bnn.model");
    const char *tk = bnn_st_meta(st, "bnn.task");
    if (!spec) {
        rc = bnn__error(BNN_EFORMAT, "%s: not a bnn model (no 'bnn.model' in __metadata__; for a "
                        "PyTorch state dict save it with metadata={\"bnn.model\": "
                        "\"mlp:IN-H1-...-OUT[:relu|tanh|gelu]\"}, see the README's model specs)",
                        path);
        goto fail;
    }
    /* bnn.format is the layout of what the file holds. A file without it (made by hand or by
     * PyTorch, with bnn.model added) is read as this format; a later format may hold things this
     * version would misread, so it is refused rather than half understood. */
    const char *fmt = bnn_st_meta(st, "bnn.format");
    if (fmt && strcmp(fmt, BNN_FORMAT_VERSION) != 0) {
        rc = bnn__error(BNN_EFORMAT, "%s: file format '%.20s' is not one this bnn (%s) reads "
                        "(format %s); it was written by another version", path, fmt, BNN_VERSION,
                        BNN_FORMAT_VERSION);
        goto fail;
    }
    if ((rc = check_posterior_tag(st, path))) goto fail;
    bnn_task t = BNN_TASK_CLASSIFICATION;
    /* Without bnn.task, a likelihood says which task it is for (bnn writes both). */
    bnn_lik_kind lk_kind;
    const char *lk0 = bnn_st_meta(st, "bnn.lik");
    if (!tk && lk0 && !bnn_lik_parse(lk0, &lk_kind)) t = bnn_lik_task(lk_kind);
    if (tk && !strcmp(tk, "regression")) t = BNN_TASK_REGRESSION;
    else if (tk && strcmp(tk, "classification")) {
        rc = bnn__error(BNN_EFORMAT, "%s: bnn.task is '%s', expected classification or regression",
                        path, tk);
        goto fail;
    }
    /* The spec's size against the values the file holds, before allocating it: a damaged spec
     * ("mlp:16777216-...") must not cost gigabytes to be found out. */
    int64_t need = 0, have = 0;
    if (!(rc = bnn__spec_nparams(spec, &need))) {
        for (int64_t i = 0; i < bnn_st_count(st); i++) {
            bnn_st_tensor ti;
            if (!bnn_st_at(st, i, &ti)) have += ti.numel;
        }
        if (need > have) {
            char hint[480];
            names_hint(hint, sizeof hint, st);
            rc = bnn__error(BNN_EFORMAT, "%s: bnn.model '%.80s' has %lld parameters but the file "
                            "holds %lld values%s", path, spec, (long long)need, (long long)have,
                            hint);
            goto fail;
        }
    }
    if ((rc = bnn_model_new(&m, spec))) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", bnn_last_error());
        rc = bnn__error(rc, "%s: bnn.model: %s", path, msg);
        goto fail;
    }
    /* The likelihood; files written before it was recorded follow their task. */
    const char *lk = bnn_st_meta(st, "bnn.lik");
    if (lk) {
        bnn_lik_kind kind;
        if (bnn_lik_parse(lk, &kind)) {
            rc = bnn__error(BNN_EFORMAT, "%s: bnn.lik is '%s', expected categorical, gaussian, "
                            "bernoulli or hetero-gaussian", path, lk);
            goto fail;
        }
        if (bnn_lik_task(kind) != t) {
            rc = bnn__error(BNN_EFORMAT, "%s: bnn.lik '%s' does not fit bnn.task '%s'", path, lk,
                            task_name(t));
            goto fail;
        }
        if ((rc = bnn_model_set_lik(m, kind))) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", bnn_last_error());
            rc = bnn__error(BNN_EFORMAT, "%s: bnn.lik: %s", path, msg);
            goto fail;
        }
    }
    /* A one-output network read as a softmax would predict its one class with certainty: what
     * such a file holds is a single logit or a regression, which the metadata must say. */
    if (t == BNN_TASK_CLASSIFICATION && bnn_model_lik(m, t) == BNN_LIK_CATEGORICAL &&
        bnn_model_output_dim(m) == 1) {
        rc = bnn__error(BNN_EFORMAT, "%s: model %s has one output, which a categorical "
                        "likelihood reads as one certain class: for a single-logit binary "
                        "classifier add bnn.lik=bernoulli, for a regression bnn.lik=gaussian",
                        path, spec);
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
                char hint[480];
                names_hint(hint, sizeof hint, st);
                rc = bnn__error(BNN_EFORMAT, "%s: tensor '%s' of model %s is missing%s", path,
                                name, spec, hint);
                goto fail;
            }
            int ndim = j ? 1 : 2;
            /* PyTorch checkpoints come in every float width: F64, F16 and BF16 convert to F32
             * (the 16-bit ones exactly), the weights bnn computes with. */
            const bool is_float = tsr.dtype == BNN_DT_F32 || tsr.dtype == BNN_DT_F64 ||
                                  tsr.dtype == BNN_DT_F16 || tsr.dtype == BNN_DT_BF16;
            bool ok = is_float && tsr.ndim == ndim && tsr.shape[0] == shape[j][0] &&
                      (ndim == 1 || tsr.shape[1] == shape[j][1]);
            if (!ok) {
                char want[64];
                if (ndim == 2)
                    snprintf(want, sizeof want, "[%lld, %lld]", (long long)shape[j][0],
                             (long long)shape[j][1]);
                else snprintf(want, sizeof want, "[%lld]", (long long)shape[j][0]);
                char have_shape[96] = "[";
                size_t at = 1;
                for (int d = 0; d < tsr.ndim && at < sizeof have_shape; d++)
                    at += (size_t)snprintf(have_shape + at, sizeof have_shape - at, "%s%lld",
                                           d ? ", " : "", (long long)tsr.shape[d]);
                if (at < sizeof have_shape) snprintf(have_shape + at, sizeof have_shape - at, "]");
                rc = bnn__error(BNN_EFORMAT, "%s: tensor '%s' should be a float tensor (F32, "
                                "F64, F16 or BF16) of shape %s, as model %s needs (it is %s %s)",
                                path, name, want, spec, bnn_dtype_name(tsr.dtype), have_shape);
                goto fail;
            }
            float *dst = params + off[j];
            if ((rc = bnn_st_to_f32(&tsr, dst))) goto fail;
            for (int64_t e = 0; e < tsr.numel; e++) {
                if (isfinite(dst[e])) continue;
                /* A finite double beyond float's range became ±Inf: say so, not "Inf". */
                double v = NAN;
                if (tsr.dtype == BNN_DT_F64)
                    memcpy(&v, (const unsigned char *)tsr.data + 8 * e, sizeof v);
                if (isfinite(v))
                    rc = bnn__error(BNN_EFORMAT, "%s: tensor '%s' holds %.9g at %lld, beyond a "
                                    "float's range (F64 weights are read as F32)", path, name, v,
                                    (long long)e);
                else
                    rc = bnn__error(BNN_EFORMAT, "%s: tensor '%s' holds %s at %lld (parameter "
                                    "%lld of the flat weights)", path, name,
                                    isnan(dst[e]) ? "NaN" : "Inf", (long long)e,
                                    (long long)(off[j] + e));
                goto fail;
            }
        }
    }
    if ((rc = check_unmodelled(m, st, path, spec))) goto fail;
    if (task) *task = t;
    *out = m;
    return 0;
fail:
    bnn_model_free(m);
    return rc;
}
