/* The model: a sequence of layers over one flat, aligned parameter vector (DESIGN.md "Flat
 * parameters"). Activations are cached per layer for the backward pass; all buffers are sized
 * once by bnn_model_reserve, so forward and backward allocate nothing. */
#include "nn/layer.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#define BNN_MAX_LAYERS 256

struct bnn_model {
    char *spec;
    int64_t nlayers;
    bnn__layer layers[BNN_MAX_LAYERS];
    int64_t nparams;
    float *params;
    int64_t max_batch; /* capacity of the buffers below */
    int64_t b;         /* rows of the last forward */
    const float *input;
    float *act[BNN_MAX_LAYERS]; /* act[i]: output of layer i (b × layers[i].out) */
    float *grad_buf[2];         /* ping-pong buffers for ∂loss/∂activations */
    int lik;                    /* a bnn_lik_kind, or −1: follow the task */
};

static const bnn__layer_vt *activation_by_name(const char *name) {
    if (!strcmp(name, "relu")) return &bnn__relu_vt;
    if (!strcmp(name, "tanh")) return &bnn__tanh_vt;
    if (!strcmp(name, "gelu")) return &bnn__gelu_vt;
    return NULL;
}

static int push_layer(bnn_model *m, const bnn__layer_vt *vt, int64_t in, int64_t out, float rate) {
    if (m->nlayers >= BNN_MAX_LAYERS)
        return bnn__error(BNN_EINVAL, "model spec '%.80s': more than %d layers", m->spec,
                          BNN_MAX_LAYERS);
    bnn__layer *l = &m->layers[m->nlayers++];
    memset(l, 0, sizeof *l);
    l->vt = vt, l->in = in, l->out = out, l->rate = rate;
    return 0;
}

/* Parses "mlp:D-H1-...-K[:act][:dropout=P]" into layer sizes and options. */
static int parse_spec(bnn_model *m, const char *spec) {
    const char *usage = "expected mlp:IN-H1-...-OUT[:relu|tanh|gelu][:dropout=P], "
                        "e.g. mlp:784-512-256-10";
    if (strncmp(spec, "mlp:", 4) != 0)
        return bnn__error(BNN_EINVAL, "unknown model spec '%.80s': %s", spec, usage);
    int64_t sizes[BNN_MAX_LAYERS];
    int nsizes = 0;
    const char *p = spec + 4;
    for (;;) {
        /* A size is the text up to the next '-' or ':', all of it decimal digits (so 0x10, 5x,
         * -5 and an empty size are named as they are written, not as what strtoll made of
         * them). Sizes count from the input's, 1. */
        const size_t len = strcspn(p, "-:");
        size_t ndig = 0;
        while (ndig < len && isdigit((unsigned char)p[ndig]))
            ndig++;
        errno = 0;
        char *end;
        const long long v = ndig == len && len > 0 ? strtoll(p, &end, 10) : 0;
        if (len == 0 || ndig != len || errno || v < 1 || v > (1LL << 24))
            return bnn__error(BNN_EINVAL,
                              "model spec '%.80s': size %d, '%.*s', is not a whole "
                              "number from 1 to 16777216; %s",
                              spec, nsizes + 1, len > 40 ? 40 : (int)len, p, usage);
        if (nsizes >= BNN_MAX_LAYERS / 4)
            return bnn__error(BNN_EINVAL, "model spec '%.80s': more than %d sizes (layers)", spec,
                              BNN_MAX_LAYERS / 4);
        sizes[nsizes++] = v;
        p += len;
        if (*p == '-') {
            p++;
            continue;
        }
        break; /* at the end or at ':' */
    }
    if (nsizes < 2)
        return bnn__error(BNN_EINVAL, "model spec '%.80s': needs at least an input and an output "
                          "size; %s", spec, usage);
    const bnn__layer_vt *act = &bnn__relu_vt;
    double rate = 0.0;
    bool seen_act = false, seen_rate = false;
    while (*p == ':') {
        p++;
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char opt[64];
        if (len == 0 || len >= sizeof opt)
            return bnn__error(BNN_EINVAL, "model spec '%.80s': empty or overlong option", spec);
        memcpy(opt, p, len);
        opt[len] = '\0';
        if (activation_by_name(opt)) {
            if (seen_act)
                return bnn__error(BNN_EINVAL, "model spec '%.80s': more than one activation", spec);
            act = activation_by_name(opt), seen_act = true;
        } else if (!strncmp(opt, "dropout=", 8)) {
            if (seen_rate)
                return bnn__error(BNN_EINVAL, "model spec '%.80s': more than one dropout", spec);
            seen_rate = true;
            char *e;
            errno = 0;
            rate = bnn_strtod(opt + 8, &e);
            /* The layers use it as a float: 0.99999999 would be 1 there. */
            if (errno || *e || e == opt + 8 || !(rate >= 0.0 && (float)rate < 1.0f))
                return bnn__error(BNN_EINVAL, "model spec '%.80s': dropout must be in [0, 1), got "
                                  "'%s'", spec, opt + 8);
            /* A rate that is 0 as a float would add dropout layers that drop nothing, and a
             * canonical spec (written from the float) that builds a model without them. */
            if (rate > 0.0 && (float)rate == 0.0f)
                return bnn__error(BNN_EINVAL, "model spec '%.80s': dropout=%s is 0 in single "
                                  "precision; write dropout=0 or leave it out", spec, opt + 8);
        } else {
            return bnn__error(BNN_EINVAL, "model spec '%.80s': unknown option '%s' (activations: "
                              "relu, tanh, gelu; dropout=P)", spec, opt);
        }
        p += len;
    }
    for (int i = 0; i + 1 < nsizes; i++) {
        int rc = push_layer(m, &bnn__linear_vt, sizes[i], sizes[i + 1], 0.0f);
        if (rc) return rc;
        if (i + 2 < nsizes) {
            if ((rc = push_layer(m, act, sizes[i + 1], sizes[i + 1], 0.0f))) return rc;
            if (rate > 0.0 &&
                (rc = push_layer(m, &bnn__dropout_vt, sizes[i + 1], sizes[i + 1], (float)rate)))
                return rc;
        }
    }
    /* The canonical spec: sizes, then the activation and dropout only when not default. */
    char canon[1024];
    size_t pos = (size_t)snprintf(canon, sizeof canon, "mlp:");
    for (int i = 0; i < nsizes && pos < sizeof canon; i++)
        pos += (size_t)snprintf(canon + pos, sizeof canon - pos, "%s%lld", i ? "-" : "",
                                (long long)sizes[i]);
    if (pos < sizeof canon && act != &bnn__relu_vt)
        pos += (size_t)snprintf(canon + pos, sizeof canon - pos, ":%s", act->kind);
    if (pos < sizeof canon && rate > 0.0) {
        /* The rate the layers use is a float: its shortest decimal, so that the spec read back
         * gives the same float (%g's six digits made 0.1000004 into 0.1, and a resumed run
         * then dropped different units). */
        char r[32];
        const double fr = (double)(float)rate; /* 9 digits always give a float back */
        for (int prec = 1; prec <= 9; prec++) {
            snprintf(r, sizeof r, "%.*g", prec, fr);
            if ((float)strtod(r, NULL) == (float)rate) break;
        }
        pos += (size_t)snprintf(canon + pos, sizeof canon - pos, ":dropout=%s", r);
    }
    if (pos >= sizeof canon) return bnn__error(BNN_EINVAL, "model spec '%.80s' is too long", spec);
    free(m->spec);
    m->spec = strdup(canon);
    return m->spec ? 0 : bnn__error(BNN_ENOMEM, "out of memory");
}

/* A model's layers from its spec, with their parameter offsets and the count, but no parameter
 * buffer yet (bnn__spec_nparams stops there). */
static int model_layout(bnn_model **out, const char *spec) {
    *out = NULL;
    bnn_model *m = calloc(1, sizeof *m);
    if (!m) return bnn__error(BNN_ENOMEM, "out of memory");
    m->lik = -1;
    m->spec = strdup(spec);
    int rc = m->spec ? parse_spec(m, spec) : bnn__error(BNN_ENOMEM, "out of memory");
    int64_t off = 0;
    for (int64_t i = 0; !rc && i < m->nlayers; i++) {
        const int64_t k = m->layers[i].vt->nparams(&m->layers[i]);
        if (k > INT64_MAX - off) {
            rc = bnn__error(BNN_ENOMEM, "model %s is too large", spec);
            break;
        }
        m->layers[i].off = off, off += k;
    }
    if (rc) {
        bnn_model_free(m);
        return rc;
    }
    m->nparams = off;
    *out = m;
    return 0;
}

int bnn__spec_nparams(const char *spec, int64_t *n) {
    bnn_model *m;
    int rc = model_layout(&m, spec);
    *n = rc ? 0 : m->nparams;
    bnn_model_free(m);
    return rc;
}

int bnn__spec_is(const char *spec, const bnn_model *m, bool *same) {
    bnn_model *l;
    int rc = model_layout(&l, spec);
    *same = !rc && !strcmp(l->spec, m->spec);
    bnn_model_free(l);
    return rc;
}

int bnn_model_new(bnn_model **out, const char *spec) {
    if (!out) return bnn__error(BNN_EINVAL, "bnn_model_new: out is NULL");
    *out = NULL;
    if (!spec) return bnn__error(BNN_EINVAL, "no model spec given");
    bnn_model *m;
    int rc = model_layout(&m, spec);
    if (rc) return rc;
    const int64_t off = m->nparams;
    /* The weights alone beyond the memory: said with their size, not as a failed allocation
     * (or, with overcommit, a kill while they are first written). */
    double limit;
    char sl[80], sn[32];
    if ((rc = bnn__byte_limit("bnn_model_new", 0.0, &limit, sl, sizeof sl))) {
        bnn_model_free(m);
        return rc;
    }
    bnn__format_bytes(sn, sizeof sn, (double)off * sizeof(float));
    if ((double)off * sizeof(float) > limit) {
        bnn__error(BNN_ENOMEM, "model %s has %lld parameters, whose weights alone need %s, more "
                   "than %s of memory", m->spec, (long long)off, sn, sl);
        bnn_model_free(m);
        return BNN_ENOMEM;
    }
    size_t bytes = bnn__bytes(off, sizeof(float));
    m->params = bytes ? bnn__alloc(bytes) : NULL;
    if (!m->params) {
        bnn__error(BNN_ENOMEM, "cannot allocate the %s of model %s's %lld parameters", sn, m->spec,
                   (long long)off);
        bnn_model_free(m);
        return BNN_ENOMEM;
    }
    *out = m;
    return 0;
}

static void release_buffers(bnn_model *m) {
    for (int64_t i = 0; i < m->nlayers; i++) {
        bnn__free(m->act[i]);
        m->act[i] = NULL;
        if (m->layers[i].vt->release) m->layers[i].vt->release(&m->layers[i]);
    }
    bnn__free(m->grad_buf[0]);
    bnn__free(m->grad_buf[1]);
    m->grad_buf[0] = m->grad_buf[1] = NULL;
    m->max_batch = 0;
}

void bnn_model_free(bnn_model *m) {
    if (!m) return;
    release_buffers(m);
    bnn__free(m->params);
    free(m->spec);
    free(m);
}

const char *bnn_model_spec(const bnn_model *m) { return m->spec; }
int64_t bnn_model_nparams(const bnn_model *m) { return m->nparams; }
int64_t bnn_model_input_dim(const bnn_model *m) { return m->layers[0].in; }
int64_t bnn_model_output_dim(const bnn_model *m) { return m->layers[m->nlayers - 1].out; }
float *bnn_model_params(bnn_model *m) { return m->params; }
const float *bnn_model_cparams(const bnn_model *m) { return m->params; }
int64_t bnn_model_max_batch(const bnn_model *m) { return m->max_batch; }

int bnn_model_set_lik(bnn_model *m, bnn_lik_kind kind) {
    if (!m) return bnn__error(BNN_EINVAL, "bnn_model_set_lik: the model is NULL");
    if (kind < BNN_LIK_CATEGORICAL || kind > BNN_LIK_HETERO_GAUSSIAN)
        return bnn__error(BNN_EINVAL, "unknown likelihood %d", (int)kind);
    const int64_t out = bnn_model_output_dim(m);
    if (bnn_lik_outputs(kind, bnn_lik_pred_dim(kind, out)) != out)
        return bnn__error(BNN_ESHAPE, "a %s likelihood needs %s, but model %s has %lld",
                          bnn_lik_name(kind),
                          kind == BNN_LIK_BERNOULLI ? "1 output (the logit)"
                                                    : "2 outputs (mean, log variance)",
                          m->spec, (long long)out);
    m->lik = (int)kind;
    return 0;
}

bnn_lik_kind bnn_model_lik(const bnn_model *m, bnn_task task) {
    if (m->lik >= 0) return (bnn_lik_kind)m->lik;
    return task == BNN_TASK_REGRESSION ? BNN_LIK_GAUSSIAN : BNN_LIK_CATEGORICAL;
}

int64_t bnn_model_pred_dim(const bnn_model *m, bnn_task task) {
    return bnn_lik_pred_dim(bnn_model_lik(m, task), bnn_model_output_dim(m));
}
int64_t bnn_model_nlayers(const bnn_model *m) { return m->nlayers; }
const char *bnn_model_layer_kind(const bnn_model *m, int64_t i) {
    return (i >= 0 && i < m->nlayers) ? m->layers[i].vt->kind : NULL;
}

int bnn_model_layer_tensors(const bnn_model *m, int64_t i, int64_t *w_off, int64_t w_shape[2],
                            int64_t *b_off, int64_t *b_len) {
    if (!m || !w_off || !w_shape || !b_off || !b_len)
        return bnn__error(BNN_EINVAL, "bnn_model_layer_tensors: the model and the four outputs "
                                      "are required");
    if (i < 0 || i >= m->nlayers)
        return bnn__error(BNN_EINVAL, "layer %lld is out of range (the model has %lld layers)",
                          (long long)i, (long long)m->nlayers);
    if (m->layers[i].vt != &bnn__linear_vt)
        return bnn__error(BNN_EINVAL, "layer %lld (%s) has no parameters", (long long)i,
                          m->layers[i].vt->kind);
    const bnn__layer *l = &m->layers[i];
    *w_off = l->off;
    w_shape[0] = l->out, w_shape[1] = l->in;
    *b_off = l->off + l->out * l->in;
    *b_len = l->out;
    return 0;
}

void bnn_model_init(bnn_model *m, uint64_t seed) {
    /* Each layer draws from its own stream so adding a layer does not shift the others. */
    for (int64_t i = 0; i < m->nlayers; i++) {
        const bnn__layer *l = &m->layers[i];
        if (!l->vt->init) continue;
        bnn_rng rng = bnn_rng_make(seed, (uint64_t)i);
        l->vt->init(l, m->params + l->off, &rng);
    }
}

double bnn__model_reserve_bytes(const bnn_model *m, int64_t b) {
    double floats = 0.0;
    int64_t widest = 0;
    for (int64_t i = 0; i < m->nlayers; i++) {
        const bnn__layer *l = &m->layers[i];
        floats += (double)b * (double)l->out;
        if (l->vt->reserve) floats += (double)b * (double)l->in; /* dropout's mask */
        if (l->in > widest) widest = l->in;
        if (l->out > widest) widest = l->out;
    }
    return (floats + 2.0 * (double)b * (double)widest) * sizeof(float);
}

int bnn_model_reserve(bnn_model *m, int64_t max_batch) {
    if (!m) return bnn__error(BNN_EINVAL, "bnn_model_reserve: the model is NULL");
    if (max_batch < 1) return bnn__error(BNN_EINVAL, "batch size must be at least 1");
    if (max_batch <= m->max_batch) return 0;
    for (int64_t i = 0; i < m->nlayers; i++) /* max_batch × width must not overflow */
        if (max_batch > INT64_MAX / 4 / (m->layers[i].in > m->layers[i].out ? m->layers[i].in
                                                                           : m->layers[i].out))
            return bnn__error(BNN_ENOMEM, "a batch of %lld is too large for model %s",
                              (long long)max_batch, m->spec);
    /* Refused up front rather than killed while the buffers are zeroed: a wide layer times the
     * batch can exceed the memory where the weights alone fit (mlp:2-16777216 at 128 rows needs
     * 24 GiB). */
    double limit;
    char sl[80];
    int rc = bnn__byte_limit("bnn_model_reserve", 0.0, &limit, sl, sizeof sl);
    if (rc) return rc;
    const double need = bnn__model_reserve_bytes(m, max_batch);
    if (need > limit) {
        char sn[32];
        bnn__format_bytes(sn, sizeof sn, need);
        return bnn__error(BNN_ENOMEM,
                          "a batch of %lld rows through model %s needs about %s for "
                          "its activations, more than %s of memory (a smaller batch needs less)",
                          (long long)max_batch, m->spec, sn, sl);
    }
    release_buffers(m);
    int64_t widest = 0;
    for (int64_t i = 0; i < m->nlayers; i++) {
        bnn__layer *l = &m->layers[i];
        if (l->in > widest) widest = l->in;
        if (l->out > widest) widest = l->out;
        size_t bytes = bnn__bytes(max_batch * l->out, sizeof(float));
        m->act[i] = bytes ? bnn__alloc(bytes) : NULL;
        rc = m->act[i] ? 0 : bnn__error(BNN_ENOMEM, "cannot allocate activations");
        if (!rc && l->vt->reserve) rc = l->vt->reserve(l, max_batch);
        if (rc) {
            release_buffers(m);
            return rc;
        }
    }
    size_t gbytes = bnn__bytes(max_batch * widest, sizeof(float));
    m->grad_buf[0] = gbytes ? bnn__alloc(gbytes) : NULL;
    m->grad_buf[1] = gbytes ? bnn__alloc(gbytes) : NULL;
    if (!m->grad_buf[0] || !m->grad_buf[1]) {
        release_buffers(m);
        return bnn__error(BNN_ENOMEM, "cannot allocate gradient buffers");
    }
    m->max_batch = max_batch;
    return 0;
}

const float *bnn_model_forward(bnn_model *m, const float *theta, const float *x, int64_t b,
                               bool train, bnn_rng *rng) {
    m->input = x;
    return bnn__model_forward_range(m, theta, x, b, 0, m->nlayers, train, rng);
}

const float *bnn__model_forward_range(bnn_model *m, const float *theta, const float *x, int64_t b,
                                      int64_t lo, int64_t hi, bool train, bnn_rng *rng) {
    BNN_ASSERT(b >= 1 && b <= m->max_batch && 0 <= lo && lo < hi && hi <= m->nlayers);
    m->b = b;
    const float *cur = x;
    for (int64_t i = lo; i < hi; i++) {
        bnn__layer *l = &m->layers[i];
        l->vt->forward(l, m->act[i], cur, theta + l->off, b, train, rng);
        cur = m->act[i];
    }
    return cur;
}

int64_t bnn__model_first_layer_at(const bnn_model *m, int64_t p) {
    for (int64_t i = 0; i < m->nlayers; i++) {
        const bnn__layer *l = &m->layers[i];
        if (l->vt->nparams(l) > 0 && l->off + l->vt->nparams(l) > p) return i;
    }
    return m->nlayers;
}

int64_t bnn__model_layer_in(const bnn_model *m, int64_t i) { return m->layers[i].in; }

void bnn_model_backward_input(bnn_model *m, const float *theta, const float *dout, float *grad,
                              float *dx) {
    BNN_ASSERT(m->b >= 1);
    const float *dy = dout;
    for (int64_t i = m->nlayers - 1; i >= 0; i--) {
        bnn__layer *l = &m->layers[i];
        const float *x = i ? m->act[i - 1] : m->input;
        /* The first layer's input gradient is only computed when asked for: it is a whole GEMM
         * (the largest one for image inputs) that training does not need. */
        float *d = i ? m->grad_buf[i & 1] : dx;
        if (!d && l->vt->nparams(l) == 0) break; /* nothing left to compute */
        float *dw = l->vt->nparams(l) ? grad + l->off : NULL;
        l->vt->backward(l, d, dw, dy, x, m->act[i], theta + l->off, m->b);
        dy = d;
    }
}

void bnn__model_backward_hook(bnn_model *m, const float *theta, const float *dout, float *grad,
                              bnn__curv_hook hook, void *ctx) {
    BNN_ASSERT(m->b >= 1);
    if (!grad) { /* no parameter gradients: only propagate, down to the first layer */
        bnn__model_backward_hook_to(m, theta, dout, hook, ctx, 0);
        return;
    }
    const float *dy = dout;
    for (int64_t i = m->nlayers - 1; i >= 0; i--) {
        bnn__layer *l = &m->layers[i];
        const float *x = i ? m->act[i - 1] : m->input;
        const bool linear = l->vt == &bnn__linear_vt;
        /* A Linear layer's input x (b × in) and output gradient dy (b × out) are exactly what a
         * curvature consumer needs (Kronecker factors, diagonal GGN, per-example gradients). */
        if (linear && hook) hook(ctx, i, x, dy, m->b, l->in, l->out);
        float *d = i ? m->grad_buf[i & 1] : NULL; /* the input gradient is never needed */
        if (!d && l->vt->nparams(l) == 0) break;
        l->vt->backward(l, d, l->vt->nparams(l) ? grad + l->off : NULL, dy, x, m->act[i],
                        theta + l->off, m->b);
        dy = d;
    }
}

void bnn__model_backward_hook_to(bnn_model *m, const float *theta, const float *dout,
                                 bnn__curv_hook hook, void *ctx, int64_t first) {
    BNN_ASSERT(m->b >= 1 && first >= 0 && first < m->nlayers);
    const float *dy = dout;
    for (int64_t i = m->nlayers - 1; i >= first; i--) {
        bnn__layer *l = &m->layers[i];
        const float *x = i ? m->act[i - 1] : m->input;
        const bool linear = l->vt == &bnn__linear_vt;
        if (linear && hook) hook(ctx, i, x, dy, m->b, l->in, l->out);
        if (i == first) break; /* nothing below the first layer is wanted */
        float *d = m->grad_buf[i & 1];
        if (linear) /* only propagate: dx = dy · W, no weight gradient */
            bnn_gemm(d, dy, theta + l->off, m->b, l->in, l->out, false, false, 1.0f, 0.0f);
        else
            l->vt->backward(l, d, NULL, dy, x, m->act[i], theta + l->off, m->b);
        dy = d;
    }
}

void bnn_model_backward(bnn_model *m, const float *theta, const float *dout, float *grad) {
    bnn_model_backward_input(m, theta, dout, grad, NULL);
}

struct bnn__layer *bnn__model_layer(bnn_model *m, int64_t i) {
    return (i >= 0 && i < m->nlayers) ? &m->layers[i] : NULL;
}
float *bnn__model_act(bnn_model *m, int64_t i) { return m->act[i]; }
float *bnn__model_grad_buf(bnn_model *m, int which) { return m->grad_buf[which & 1]; }
