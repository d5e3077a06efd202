/* Predictive rules: Monte-Carlo over linearised logits against Gauss–Hermite quadrature, and the
 * log-space model average of bnn_predict against a direct average of probabilities. */
#include "check.h"
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

/* E[softmax([f, 0])_0] for f ~ N(mu, v), i.e. E[sigmoid(f)], by 40-point Gauss–Hermite
 * quadrature on a fine grid (trapezoid over ±8σ is as good for this smooth integrand). */
static double expected_sigmoid(double mu, double v) {
    const int n = 4001;
    const double sd = sqrt(v), lo = mu - 8 * sd, hi = mu + 8 * sd, h = (hi - lo) / (n - 1);
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        double f = lo + i * h, w = (i == 0 || i == n - 1) ? 0.5 : 1.0;
        double pdf = exp(-0.5 * (f - mu) * (f - mu) / v) / sqrt(2 * 3.14159265358979323846 * v);
        s += w * pdf / (1.0 + exp(-f));
    }
    return s * h;
}

static void test_mc_link(void) {
    /* Two classes with logits (f, 0): only the first is uncertain. */
    const double cases[][2] = {{0.0, 1.0}, {2.0, 4.0}, {-1.5, 0.25}, {3.0, 9.0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double fm[2] = {cases[c][0], 0.0}, fv[4] = {cases[c][1], 0, 0, 0}, p[2], mi;
        bnn_rng rng = bnn_rng_make(3, (uint64_t)c);
        REQUIRE(bnn__mc_link(p, &mi, fm, fv, 1, 2, 40000, &rng, false, 0) == 0);
        double ref = expected_sigmoid(cases[c][0], cases[c][1]);
        /* Monte-Carlo error of a mean of 40000 draws of a value in [0, 1]: < 0.5/200 = 2.5e-3. */
        CHECK_NEAR(p[0], ref, 5e-3);
        CHECK_NEAR(p[0] + p[1], 1.0, 1e-12);
        CHECK(mi > 0.0);
    }
    /* No variance: exactly the softmax of the mean, mutual information 0. */
    double fm[3] = {1.0, -0.5, 0.25}, fv[9] = {0}, p[3], mi;
    bnn_rng rng = bnn_rng_make(1, 1);
    REQUIRE(bnn__mc_link(p, &mi, fm, fv, 1, 3, 10, &rng, false, 0) == 0);
    double z = exp(1.0) + exp(-0.5) + exp(0.25);
    CHECK_NEAR(p[0], exp(1.0) / z, 1e-12);
    CHECK_NEAR(p[2], exp(0.25) / z, 1e-12);
    CHECK_NEAR(mi, 0.0, 1e-12);
    /* A covariance that is not positive semi-definite is refused. */
    double bad[4] = {1.0, 5.0, 5.0, 1.0}, fm2[2] = {0, 0};
    CHECK_EQ_INT(bnn__mc_link(p, &mi, fm2, bad, 1, 2, 10, &rng, false, 0), BNN_EINVAL);
    /* Nor one with NaN, which LAPACK's Cholesky would factor without a word. */
    double nan_cov[4] = {1.0, NAN, NAN, 1.0};
    CHECK_EQ_INT(bnn__mc_link(p, &mi, fm2, nan_cov, 1, 2, 10, &rng, false, 7), BNN_EDIVERGED);
    CHECK(strstr(bnn_last_error(), "covariance of example 7 is not finite") != NULL);

    /* Each input draws at its own place in the stream: 800 inputs in one call on two threads
     * give, to the last bit, what one thread gives and what two calls give that split them at
     * input 117 (first = 117 for the second). The first failing input is the one named, however
     * the threads shared them out. (800 · 50 draws · 3 logits is past the 1e5 below which the
     * link stays on one thread.) */
    enum { B = 800, K3 = 3 };
    double *fmb = malloc(B * K3 * sizeof(double)), *fvb = calloc(B * K3 * K3, sizeof(double));
    double *pa = malloc(B * K3 * sizeof(double)), *pb = malloc(B * K3 * sizeof(double));
    double mia[B], mib[B];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < K3; j++) {
            fmb[i * K3 + j] = sin(0.1 * i + j);
            fvb[(i * K3 + j) * K3 + j] = 0.5 + 0.01 * (i % 7) + j;
            if (j) fvb[(i * K3 + j) * K3 + j - 1] = fvb[(i * K3 + j - 1) * K3 + j] = 0.2;
        }
    const bnn_rng r0 = bnn_rng_make(9, 4);
    bnn_set_threads(2);
    REQUIRE(bnn__mc_link(pa, mia, fmb, fvb, B, K3, 50, &r0, false, 0) == 0);
    bnn_set_threads(1);
    REQUIRE(bnn__mc_link(pb, mib, fmb, fvb, B, K3, 50, &r0, false, 0) == 0);
    CHECK(memcmp(pa, pb, B * K3 * sizeof(double)) == 0 && memcmp(mia, mib, sizeof mia) == 0);
    bnn_set_threads(2);
    REQUIRE(bnn__mc_link(pb, mib, fmb, fvb, 117, K3, 50, &r0, false, 0) == 0);
    REQUIRE(bnn__mc_link(pb + 117 * K3, mib + 117, fmb + 117 * K3, fvb + 117 * K3 * K3, B - 117,
                         K3, 50, &r0, false, 117) == 0);
    CHECK(memcmp(pa, pb, B * K3 * sizeof(double)) == 0 && memcmp(mia, mib, sizeof mia) == 0);
    /* Two inputs alike draw differently (a shared draw would give them the same average). */
    memcpy(fmb + 6 * K3, fmb + 5 * K3, K3 * sizeof(double));
    memcpy(fvb + 6 * K3 * K3, fvb + 5 * K3 * K3, K3 * K3 * sizeof(double));
    REQUIRE(bnn__mc_link(pb, mib, fmb, fvb, B, K3, 50, &r0, false, 0) == 0);
    CHECK(pb[5 * K3] != pb[6 * K3] && mib[5] != mib[6]);
    fvb[(290 * K3) * K3] = NAN, fvb[(40 * K3) * K3] = NAN, fvb[(41 * K3) * K3] = NAN;
    CHECK_EQ_INT(bnn__mc_link(pb, mib, fmb, fvb, B, K3, 50, &r0, false, 1000), BNN_EDIVERGED);
    CHECK(strstr(bnn_last_error(), "covariance of example 1040 is not finite") != NULL);
    free(fmb), free(fvb), free(pa), free(pb);

    /* Where the draws come from: input first + i takes its S·m normals from counter
     * rng.counter + (first + i)·S·⌈k/4⌉ on. Two logits, the first with variance v and the
     * second fixed at 0, so each draw's probability is sigmoid(f + √v z); S = 130 is two blocks
     * of 64 draws and a short one. Rebuilt here from the stream itself. */
    enum { NB = 6, S2 = 130 };
    double fm2b[NB * 2], fv2b[NB * 4] = {0}, p2[NB * 2], mi2[NB];
    for (int i = 0; i < NB; i++)
        fm2b[2 * i] = 0.3 * i - 1.0, fm2b[2 * i + 1] = 0.0, fv2b[4 * i] = 0.5 + i;
    REQUIRE(bnn__mc_link(p2, mi2, fm2b, fv2b, NB, 2, S2, &r0, false, 5) == 0);
    for (int i = 0; i < NB; i++) {
        bnn_rng r = r0;
        r.counter += (uint64_t)(5 + i) * S2; /* ⌈2/4⌉ = 1 */
        float zz[S2];
        bnn_rng_normal(&r, zz, S2);
        double sum = 0.0;
        for (int t = 0; t < S2; t++)
            sum += 1.0 / (1.0 + exp(-(fm2b[2 * i] + sqrt(fv2b[4 * i]) * (double)zz[t])));
        CHECK_NEAR(p2[2 * i], sum / S2, 1e-12);
    }

    /* A covariance that a tiny prior precision dominates with the direction of equal moves of
     * every logit, V = L 11ᵀ + W, which the softmax ignores. W here makes f_0 = f_1 exactly
     * (W = [[1, 1, 0], [1, 1, 0], [0, 0, 1]]), so V is singular beside L: with L + 1 = 4^18
     * its Cholesky meets a pivot of exactly 0. A jitter sized by V's mean variance (≈ L) would
     * add noise of variance about 1e-10 L = 6.9 to every logit. The draws are of the differences
     * from f_2 instead, u = f_0 − f_2 ~ N(μ_0 − μ_2, 2) with f_1 − f_2 = u: p_2 = E[1 / (1 +
     * 2 e^u)] = E[sigmoid(−u − ln 2)]. */
    const double Lb = 68719476735.0, fm3[3] = {0.4, 0.4, -0.3};
    double V3[9] = {Lb + 1, Lb + 1, Lb, Lb + 1, Lb + 1, Lb, Lb, Lb, Lb + 1}, p3[3], mi3;
    bnn_rng r3 = bnn_rng_make(5, 0);
    REQUIRE(bnn__mc_link(p3, &mi3, fm3, V3, 1, 3, 40000, &r3, false, 0) == 0);
    CHECK_NEAR(p3[2], expected_sigmoid(-(fm3[0] - fm3[2]) - log(2.0), 2.0), 5e-3);
    CHECK_NEAR(p3[0], p3[1], 1e-6); /* apart by the jitter of 1e-10 of D's variance */
    /* Where W is below the rounding of L (L = 1e17, W = diag(1, 0)), the differences' variance
     * is lost: refused. (Before, V's Cholesky took a pivot of rounding noise for f_1's own
     * variance.) */
    const double Lc = 1e17;
    double V2[4] = {Lc + 1, Lc, Lc, Lc}, fmc[2] = {2.0, 0.0}, pc[2];
    CHECK_EQ_INT(bnn__mc_link(pc, &mi, fmc, V2, 1, 2, 100, &r3, false, 41), BNN_EDIVERGED);
    CHECK(strstr(bnn_last_error(), "example 41") && strstr(bnn_last_error(), "lost in rounding"));
}

/* ref (n × k) = the average over S weight samples of q (the generator stream and order that
 * bnn_predict uses) of the softmax of the whole network's outputs; ent (n, unless NULL) = the
 * average over the samples of each softmax's entropy. */
/* ref (k) += softmax(f) / S and *ent (unless ent is NULL) += its entropy / S: one sample's share of
 * one example's average. */
static void add_softmax(double *ref, double *ent, const float *f, int64_t k, int64_t S) {
    double mx = f[0], z = 0;
    for (int64_t j = 1; j < k; j++)
        mx = fmax(mx, f[j]);
    for (int64_t j = 0; j < k; j++)
        z += exp(f[j] - mx);
    for (int64_t j = 0; j < k; j++) {
        const double pj = exp(f[j] - mx) / z;
        ref[j] += pj / S;
        if (ent && pj > 0) *ent -= pj * log(pj) / S;
    }
}

/* The forward passes in batches of bs rows, as bnn_predict runs them: a BLAS may round a product
 * of a few rows otherwise than one of many (OpenBLAS's generic Prescott kernels do: 1e-8 here
 * between batches of 2 and of 7), so only the same batches give the same bits. */
static void sampled_average(double *ref, double *ent, bnn_model *m, const bnn_posterior *q,
                            const float *x, int64_t n, int64_t k, int64_t S, uint64_t seed,
                            int64_t bs) {
    float *theta = malloc((size_t)bnn_model_nparams(m) * 4);
    REQUIRE(theta && bnn_model_reserve(m, bs) == 0);
    memset(ref, 0, (size_t)(n * k) * sizeof(double));
    if (ent) memset(ent, 0, (size_t)n * sizeof(double));
    bnn_rng rs = bnn_rng_make(seed, (uint64_t)5 << 32);
    for (int64_t s = 0; s < S; s++) {
        REQUIRE(bnn_posterior_sample(q, &rs, theta) == 0);
        for (int64_t lo = 0; lo < n; lo += bs) {
            const int64_t b = lo + bs <= n ? bs : n - lo;
            const float *f = bnn_model_forward(m, theta, x + lo * bnn_model_input_dim(m), b,
                                               false, NULL);
            for (int64_t i = 0; i < b; i++)
                add_softmax(ref + (lo + i) * k, ent ? ent + lo + i : NULL, f + i * k, k, S);
        }
    }
    free(theta);
}


/* A diagonal posterior around m's weights with the same std for every weight. */
static bnn_posterior *diag_around(const bnn_model *m, float std) {
    const int64_t np = bnn_model_nparams(m);
    bnn_posterior *q;
    REQUIRE(bnn_posterior_new(&q, BNN_POSTERIOR_DIAG, np) == 0);
    memcpy(bnn_posterior_mean(q), bnn_model_cparams(m), (size_t)np * 4);
    for (int64_t i = 0; i < np; i++) bnn_posterior_std(q)[i] = std;
    return q;
}

/* bnn_predict with a diagonal posterior: the log-space average equals a direct average of
 * sampled softmax probabilities. */
static void test_model_average(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:3-8-4:tanh") == 0);
    bnn_model_init(m, 2);
    const int64_t n = 5, k = 4, S = 6;
    bnn_posterior *q = diag_around(m, 0.3f);
    float x[15];
    bnn_rng r = bnn_rng_make(7, 7);
    bnn_rng_normal(&r, x, 15);
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = S, pp.seed = 11;
    double probs[20], mi[5];
    REQUIRE(bnn_predict(m, q, x, n, BNN_TASK_CLASSIFICATION, &pp, probs, mi, NULL, NULL) == 0);
    /* The same draws by hand: stream and order as bnn_predict uses them. */
    double ref[20], ent[5];
    sampled_average(ref, ent, m, q, x, n, k, S, 11, n);
    for (int64_t i = 0; i < n * k; i++) CHECK_NEAR(probs[i], ref[i], 1e-12);
    /* log_probs: the logarithms of the same average, the same mutual information. */
    double lp[20], mil[5];
    pp.log_probs = true;
    REQUIRE(bnn_predict(m, q, x, n, BNN_TASK_CLASSIFICATION, &pp, lp, mil, NULL, NULL) == 0);
    pp.log_probs = false;
    for (int64_t i = 0; i < n * k; i++) CHECK_NEAR(lp[i], log(ref[i]), 1e-11);
    for (int64_t i = 0; i < n; i++) CHECK(mil[i] == mi[i]);
    /* Mutual information: the entropy of the average minus the average entropy (BALD). */
    for (int64_t i = 0; i < n; i++) {
        double h = 0;
        for (int64_t j = 0; j < k; j++) h -= ref[i * k + j] * log(ref[i * k + j]);
        CHECK(h - ent[i] > 1e-4); /* the samples disagree: a check that can tell */
        CHECK_NEAR(mi[i], h - ent[i], 1e-10);
    }
    bnn_posterior_free(q);
    bnn_model_free(m);
}

/* Local reparameterisation (pp.local_reparam) on "mlp:3-7-4:tanh" (a first layer whose width is
 * not a multiple of 4, the generator's block) with a diagonal posterior whose stds vary by
 * weight:
 *  - by hand: sample s's θ from the weight-sample stream as without it (it sets layers 2 and 3),
 *    the first layer's output for example i as mean + sd ∘ ε, mean = x Mᵀ + μ_b and
 *    sd² = (x∘x)(S∘S)ᵀ + s_b² in double, ε from stream 5·2^32 + 2 at counter (s·n + i)·⌈7/4⌉;
 *    bnn_predict gives the same average (to float rounding), also in batches of 2 and in chunks
 *    of one batch (a draw depends on neither);
 *  - the predictive itself: with 20,000 samples each example's probabilities agree with plain
 *    weight samples' (they differ by 0.0028 at most here, the tolerance is 0.007; the variances
 *    taken as S instead of S∘S differ by 0.013) — the check that the trick is exact, which the
 *    replay by hand cannot tell;
 *  - a Laplace posterior is refused. */
static void lrt_by_hand(double *ref, bnn_model *m, const bnn_posterior *q, const float *x,
                        int64_t n, int64_t S, uint64_t seed) {
    const int64_t in = 3, hid = 7, k = 4, np = bnn_model_nparams(m);
    const float *M = bnn_posterior_cmean(q), *sd = bnn_posterior_cstd(q);
    float *theta = malloc((size_t)np * 4), y0[8];
    REQUIRE(theta && bnn_model_reserve(m, 1) == 0);
    memset(ref, 0, (size_t)(n * k) * sizeof(double));
    bnn_rng rs = bnn_rng_make(seed, (uint64_t)5 << 32);
    for (int64_t s = 0; s < S; s++) {
        REQUIRE(bnn_posterior_sample(q, &rs, theta) == 0);
        for (int64_t i = 0; i < n; i++) {
            bnn_rng re = bnn_rng_make(seed, ((uint64_t)5 << 32) + 2);
            re.counter = (uint64_t)(s * n + i) * 2;
            float eps[8];
            bnn_rng_normal(&re, eps, hid);
            for (int64_t j = 0; j < hid; j++) {
                double mu = M[hid * in + j], v = (double)sd[hid * in + j] * sd[hid * in + j];
                for (int64_t c = 0; c < in; c++) {
                    mu += (double)x[i * in + c] * M[j * in + c];
                    v += (double)x[i * in + c] * x[i * in + c] * sd[j * in + c] * sd[j * in + c];
                }
                y0[j] = (float)(mu + sqrt(v) * eps[j]);
            }
            const float *f = bnn__model_forward_range(m, theta, y0, 1, 1, bnn_model_nlayers(m),
                                                      false, NULL);
            add_softmax(ref + i * k, NULL, f, k, S);
        }
    }
    free(theta);
}

static void test_local_reparam(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:3-7-4:tanh") == 0);
    bnn_model_init(m, 4);
    const int64_t np = bnn_model_nparams(m), n = 5, k = 4;
    bnn_posterior *q = diag_around(m, 0.0f);
    for (int64_t i = 0; i < np; i++) bnn_posterior_std(q)[i] = 0.15f + 0.1f * (float)(i % 5);
    float x[15];
    bnn_rng r = bnn_rng_make(9, 9);
    bnn_rng_normal(&r, x, 15);
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = 7, pp.seed = 13, pp.local_reparam = true;
    double ref[20], probs[20], mi[5];
    lrt_by_hand(ref, m, q, x, n, 7, 13);
    for (int way = 0; way < 3; way++) {
        const int64_t saved = bnn__predict_feat_floats;
        pp.batch_size = way ? 2 : 256;
        if (way == 2) bnn__predict_feat_floats = 4 * 2 * 7 * 2; /* one batch of 2 rows a chunk */
        REQUIRE(bnn_predict(m, q, x, n, BNN_TASK_CLASSIFICATION, &pp, probs, mi, NULL, NULL) == 0);
        bnn__predict_feat_floats = saved;
        double worst = 0;
        for (int64_t i = 0; i < n * k; i++) worst = fmax(worst, fabs(probs[i] - ref[i]));
        CHECK_NEAR(worst, 0.0, 1e-5);
    }
    /* the same predictive as weight samples, by Monte Carlo */
    double plain[20];
    pp.samples = 20000, pp.batch_size = 256;
    REQUIRE(bnn_predict(m, q, x, n, BNN_TASK_CLASSIFICATION, &pp, probs, mi, NULL, NULL) == 0);
    pp.local_reparam = false;
    REQUIRE(bnn_predict(m, q, x, n, BNN_TASK_CLASSIFICATION, &pp, plain, NULL, NULL, NULL) == 0);
    double worst = 0, moved = 0;
    for (int64_t i = 0; i < n * k; i++) {
        worst = fmax(worst, fabs(probs[i] - plain[i]));
        moved = fmax(moved, fabs(plain[i] - 0.25));
    }
    CHECK(worst < 0.007);
    CHECK(moved > 0.05); /* the examples' predictives are not all uniform */
    /* a Laplace posterior is refused, and a first layer's mean unchanged by the option */
    bnn_curv *c;
    double diag[32];
    for (int i = 0; i < 32; i++) diag[i] = 1.0;
    REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_DIAG, 32, np - 32, 10, k, 1.0, diag, NULL, 0, NULL,
                                 NULL, NULL, NULL) == 0);
    bnn_laplace *la;
    REQUIRE(bnn_laplace_new_from_params(&la, c, bnn_model_cparams(m), BNN_TASK_CLASSIFICATION) ==
            0);
    bnn_posterior *ql;
    REQUIRE(bnn_posterior_from_laplace(&ql, m, la) == 0);
    pp.samples = 3, pp.local_reparam = true;
    CHECK_EQ_INT(bnn_predict(m, ql, x, n, BNN_TASK_CLASSIFICATION, &pp, probs, mi, NULL, NULL),
                 BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "not diagonal") != NULL);
    bnn_posterior_free(ql);
    bnn_posterior_free(q);
    bnn_model_free(m);
}

/* bnn_predict with a Laplace posterior over later layers runs the fixed layers once per input
 * and only the rest per sample: the same numbers as sampling whole weight vectors and running the
 * whole network (by hand, as in test_model_average), for a posterior over the last layer and over
 * the last two Linear layers, with several batches, and with the inputs split into chunks of one
 * batch (the generator restarts for each chunk). */
static void test_laplace_suffix(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:3-8-6-4:tanh") == 0);
    bnn_model_init(m, 5);
    const int64_t np = bnn_model_nparams(m), n = 7, k = 4, S = 5;
    const int64_t last = 4 * 6 + 4, mid = 6 * 8 + 6 + last; /* parameters of the subsets */
    float x[21];
    bnn_rng r = bnn_rng_make(8, 8);
    bnn_rng_normal(&r, x, 21);
    double *diag = malloc((size_t)mid * sizeof(double));
    REQUIRE(diag);
    for (int64_t i = 0; i < mid; i++)
        diag[i] = 0.5 + 0.1 * (double)(i % 7);
    for (int sub = 0; sub < 2; sub++) {
        const int64_t P = sub ? mid : last;
        for (int chunked = 0; chunked < 2; chunked++) {
            bnn_curv *c;
            REQUIRE(bnn_curv_from_arrays(&c, BNN_HESS_DIAG, P, np - P, 100, k, 1.0, diag, NULL, 0,
                                         NULL, NULL, NULL, NULL) == 0);
            bnn_laplace *la;
            REQUIRE(bnn_laplace_new_from_params(&la, c, bnn_model_cparams(m),
                                                BNN_TASK_CLASSIFICATION) == 0);
            bnn_laplace_set_prior(la, 2.0, 1.0);
            bnn_posterior *q;
            REQUIRE(bnn_posterior_from_laplace(&q, m, la) == 0);
            struct bnn_predict_params pp = bnn_predict_default_params();
            pp.samples = S, pp.seed = 3, pp.batch_size = 2;
            const int64_t saved = bnn__predict_feat_floats;
            if (chunked) bnn__predict_feat_floats = 8; /* one batch of 2 rows of <= 4 features */
            double probs[28], mi[7];
            REQUIRE(bnn_predict(m, q, x, n, BNN_TASK_CLASSIFICATION, &pp, probs, mi, NULL, NULL) ==
                    0);
            bnn__predict_feat_floats = saved;
            double ref[28];
            sampled_average(ref, NULL, m, q, x, n, k, S, 3, pp.batch_size);
            double worst = 0, spread = 0;
            for (int64_t i = 0; i < n * k; i++) {
                worst = fmax(worst, fabs(probs[i] - ref[i]));
                spread = fmax(spread, mi[i / k]);
            }
            CHECK_NEAR(worst, 0.0, 1e-12);
            CHECK(spread > 1e-4); /* the samples do differ */
            bnn_posterior_free(q);
        }
    }
    free(diag);
    bnn_model_free(m);
}

/* A diagonal posterior's sample is m + σ ⊙ ε with ε standard normal: the standardised draws of
 * 200,000 weights (half at σ = 0.3, half at σ = 2) have mean 0 and variance 1 in each half (the
 * tolerances are about 6 standard errors). Its std summary is the min, mean and max of σ. */
static void test_diag_posterior(void) {
    const int64_t n = 200000;
    bnn_posterior *q;
    REQUIRE(bnn_posterior_new(&q, BNN_POSTERIOR_DIAG, n) == 0);
    float *m = bnn_posterior_mean(q), *sd = bnn_posterior_std(q);
    for (int64_t i = 0; i < n; i++) m[i] = (float)(i % 7) - 3.0f, sd[i] = i < n / 2 ? 0.3f : 2.0f;
    float *th = malloc((size_t)n * sizeof *th);
    REQUIRE(th != NULL);
    bnn_rng rng = bnn_rng_make(11, 3);
    REQUIRE(bnn_posterior_sample(q, &rng, th) == 0);
    for (int h = 0; h < 2; h++) {
        double s1 = 0, s2 = 0;
        for (int64_t i = h * n / 2; i < (h + 1) * n / 2; i++) {
            const double z = ((double)th[i] - m[i]) / sd[i];
            s1 += z, s2 += z * z;
        }
        const double mean = s1 / (n / 2), var = s2 / (n / 2) - mean * mean;
        CHECK_NEAR(mean, 0.0, 0.015);
        CHECK_NEAR(var, 1.0, 0.03);
    }
    free(th);
    bnn_posterior_free(q);
    REQUIRE(bnn_posterior_new(&q, BNN_POSTERIOR_DIAG, 3) == 0);
    sd = bnn_posterior_std(q);
    sd[0] = 2.0f, sd[1] = 3.0f, sd[2] = 1.0f;
    double lo, mean, hi;
    bnn_posterior_std_summary(q, &lo, &mean, &hi);
    CHECK(lo == 1.0 && mean == 2.0 && hi == 3.0);
    /* NULL outputs are skipped (they were written through); a NaN std makes all three NaN (min
     * and max skipped it, and reported a finite range). */
    bnn_posterior_std_summary(q, NULL, &mean, NULL);
    CHECK(mean == 2.0);
    sd[1] = NAN;
    bnn_posterior_std_summary(q, &lo, &mean, &hi);
    CHECK(isnan(lo) && isnan(mean) && isnan(hi));
    bnn_posterior_free(q);
}

/* bnn_evaluate on regression with S > 1 weight samples also scores the predictive mixture
 * itself: −log((1/S) Σ_s Π_j N(y_j; f_sj, σ²)) per example, against the same draws by hand (two
 * targets, so the product over an example's targets is tested too). One sample, a prediction at
 * the mean and a point estimate have no mixture: NAN. */
static void test_mixture_nll(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:2-6-2:tanh") == 0);
    bnn_model_init(m, 3);
    const int64_t np = bnn_model_nparams(m), n = 7, k = 2, S = 5;
    bnn_posterior *q = diag_around(m, 0.4f);
    bnn_dataset *ds;
    REQUIRE(bnn_dataset_new(&ds, BNN_TASK_REGRESSION, n, 2, k, 0) == 0);
    bnn_rng r = bnn_rng_make(4, 4);
    bnn_rng_normal(&r, bnn_dataset_x(ds), n * 2);
    bnn_rng_normal(&r, bnn_dataset_targets(ds), n * k);
    struct bnn_predict_params pp = bnn_predict_default_params();
    pp.samples = S, pp.seed = 9, pp.sigma = 0.3;
    struct bnn_eval_result res;
    REQUIRE(bnn_evaluate(m, q, ds, &pp, 15, &res) == 0);
    /* By hand: the draws of bnn_predict (stream 5 << 32), a log-sum-exp per example. */
    float theta[64];
    REQUIRE(np <= 64 && bnn_model_reserve(m, n) == 0);
    double l[5][7];
    bnn_rng rs = bnn_rng_make(9, (uint64_t)5 << 32);
    for (int64_t s = 0; s < S; s++) {
        REQUIRE(bnn_posterior_sample(q, &rs, theta) == 0);
        const float *f = bnn_model_forward(m, theta, bnn_dataset_cx(ds), n, false, NULL);
        for (int64_t i = 0; i < n; i++) {
            l[s][i] = 0.0;
            for (int64_t j = 0; j < k; j++) {
                const double e = (double)bnn_dataset_ctargets(ds)[i * k + j] - f[i * k + j];
                l[s][i] += -0.5 * log(2 * 3.14159265358979323846 * 0.09) - e * e / (2 * 0.09);
            }
        }
    }
    double nll = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double mx = l[0][i], z = 0.0;
        for (int64_t s = 1; s < S; s++) mx = fmax(mx, l[s][i]);
        for (int64_t s = 0; s < S; s++) z += exp(l[s][i] - mx);
        nll -= (mx + log(z / S)) / n;
    }
    CHECK_NEAR(res.nll_mixture, nll, 1e-9 * fabs(nll));
    /* The moment-matched Gaussian's NLL is another number here (the samples disagree). */
    CHECK(fabs(res.nll - res.nll_mixture) > 1e-3);
    pp.samples = 1;
    REQUIRE(bnn_evaluate(m, q, ds, &pp, 15, &res) == 0);
    CHECK(isnan(res.nll_mixture));
    pp.samples = 0;
    REQUIRE(bnn_evaluate(m, q, ds, &pp, 15, &res) == 0);
    CHECK(isnan(res.nll_mixture));
    pp.samples = S;
    REQUIRE(bnn_evaluate(m, NULL, ds, &pp, 15, &res) == 0);
    CHECK(isnan(res.nll_mixture) && isfinite(res.nll));
    /* A noise whose square overflows: the averaged predictive variance is infinite, refused with
     * a reason (the sampled path's guard; a finite σ² is added per example otherwise). */
    pp.sigma = 1e200;
    CHECK_EQ_INT(bnn_evaluate(m, q, ds, &pp, 15, &res), BNN_EDIVERGED);
    CHECK(strstr(bnn_last_error(), "predictive variance is not finite") &&
          strstr(bnn_last_error(), "noise sigma 1e+200"));
    bnn_dataset_free(ds);
    bnn_posterior_free(q);
    bnn_model_free(m);
}

/* Logits thousands apart (a network's last layer scaled by 3000): log_probs keeps the
 * log-probability of a class whose probability is 0 in double, as log-softmax of the logits; at
 * the weights and for a Laplace posterior's probit (with the same variance-free logits, κ = 1) and
 * Monte-Carlo link. And an average of S saturated samples stays a probability: the log-sum-exp of
 * S values log p = 0 can come out above log S, which gave probabilities of 1 + 2e-15 (S = 197). */
static void test_log_probs(void) {
    bnn_model *m;
    REQUIRE(bnn_model_new(&m, "mlp:3-8-4:tanh") == 0);
    bnn_model_init(m, 2);
    const int64_t n = 5, k = 4, np = bnn_model_nparams(m);
    float *w = bnn_model_params(m);
    for (int64_t i = np - (8 * k + k); i < np; i++) w[i] *= 3000.0f; /* the last layer */
    float x[15];
    bnn_rng r = bnn_rng_make(7, 7);
    bnn_rng_normal(&r, x, 15);
    struct bnn_predict_params pp = bnn_predict_default_params();
    double p[20], lp[20];
    REQUIRE(bnn_predict(m, NULL, x, n, BNN_TASK_CLASSIFICATION, &pp, p, NULL, NULL, NULL) == 0);
    pp.log_probs = true;
    REQUIRE(bnn_predict(m, NULL, x, n, BNN_TASK_CLASSIFICATION, &pp, lp, NULL, NULL, NULL) == 0);
    const float *f = bnn_model_forward(m, w, x, n, false, NULL);
    REQUIRE(f != NULL);
    int underflow = 0;
    double fm[20], fv[20 * 4] = {0};
    for (int64_t i = 0; i < n; i++) {
        double mx = -INFINITY, s = 0;
        for (int64_t j = 0; j < k; j++) mx = fmax(mx, f[i * k + j]);
        for (int64_t j = 0; j < k; j++) s += exp(f[i * k + j] - mx);
        for (int64_t j = 0; j < k; j++) {
            const double ref = (f[i * k + j] - mx) - log(s);
            fm[i * k + j] = f[i * k + j];
            CHECK_NEAR(lp[i * k + j], ref, 1e-9 * fmax(1.0, fabs(ref)));
            underflow += p[i * k + j] == 0.0 && isfinite(lp[i * k + j]) && lp[i * k + j] < -745;
        }
    }
    CHECK(underflow > 0); /* the case that probabilities cannot tell */
    double lq[20], lm[20], mi[5];
    bnn__probit(lq, fm, fv, n, k, true);
    bnn_rng lr = bnn_rng_make(1, 1);
    REQUIRE(bnn__mc_link(lm, mi, fm, fv, n, k, 3, &lr, true, 0) == 0);
    for (int64_t i = 0; i < n * k; i++) {
        CHECK_NEAR(lq[i], lp[i], 1e-9 * fmax(1.0, fabs(lp[i])));
        CHECK_NEAR(lm[i], lp[i], 1e-9 * fmax(1.0, fabs(lp[i])));
    }
    /* 197 nearly identical saturated samples. */
    bnn_posterior *q = diag_around(m, 1e-6f);
    pp.samples = 197, pp.log_probs = false;
    REQUIRE(bnn_predict(m, q, x, n, BNN_TASK_CLASSIFICATION, &pp, p, NULL, NULL, NULL) == 0);
    int ones = 0;
    for (int64_t i = 0; i < n * k; i++) {
        CHECK(p[i] >= 0.0 && p[i] <= 1.0);
        ones += p[i] == 1.0;
    }
    CHECK(ones > 0);
    bnn_posterior_free(q);
    bnn_model_free(m);
}

int main(void) {
    test_log_probs();
    test_mixture_nll();
    test_diag_posterior();
    test_mc_link();
    test_model_average();
    test_laplace_suffix();
    test_local_reparam();
    return CHECK_DONE();
}
