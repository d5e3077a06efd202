/* Metrics: hand-computed cases and brute-force references (always run), then the numpy /
 * scikit-learn reference values of shared/fixtures/metrics (skipped with a note when the
 * fixtures are not there). */
#include "check.h"
#include "core/internal.h"

#include <string.h>

/* Relative tolerance for fixture values; values below FLOOR in size are compared absolutely at
 * TOL · FLOOR = 1e-12 (mutual information of identical samples, entropy of one-hot rows). */
#define TOL 1e-9
#define FLOOR 1e-3

/* ---------------------------------------------------------------- hand cases */

static void test_argmax_entropy(void) {
    const double tie[4] = {0.1, 0.4, 0.4, 0.1};
    CHECK_EQ_INT(bnn_argmax(tie, 4), 1); /* ties go to the lowest index */
    const double last[3] = {0.2, 0.3, 0.5};
    CHECK_EQ_INT(bnn_argmax(last, 3), 2);
    CHECK_EQ_INT(bnn_argmax(last, 0), -1);
    const double uni[5] = {0.2, 0.2, 0.2, 0.2, 0.2};
    CHECK_NEAR(bnn_entropy(uni, 5), log(5.0), 1e-15);
    const double one[3] = {0.0, 1.0, 0.0};
    CHECK(bnn_entropy(one, 3) == 0.0); /* 0 · log 0 = 0, and 1 · log 1 = 0 exactly */
    const double half[2] = {0.5, 0.5};
    CHECK_NEAR(bnn_entropy(half, 2), log(2.0), 1e-15);
}

/* The bin rule e_b < c ≤ e_{b+1} checked at and one ulp either side of every edge, for every
 * allowed bin count. */
static void test_bins(void) {
    int bad = 0;
    for (int64_t nb = 1; nb <= BNN_MAX_BINS; nb++) {
        if (bnn_reliability_bin(0.0, nb) != 0) bad++;
        if (bnn_reliability_bin(1.0, nb) != nb - 1) bad++;
        for (int64_t i = 1; i < nb; i++) {
            const double e = (double)i / (double)nb;
            if (bnn_reliability_bin(e, nb) != i - 1) bad++;              /* on the edge: lower */
            if (bnn_reliability_bin(nextafter(e, 2.0), nb) != i) bad++;  /* just above: upper */
            if (bnn_reliability_bin(nextafter(e, 0.0), nb) != i - 1) bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(bnn_reliability_bin(nextafter(0.0, 1.0), 15), 0);
    CHECK_EQ_INT(bnn_reliability_bin(0.5, 15), 7);  /* 0.5 is inside bin 7, (7/15, 8/15] */
    CHECK_EQ_INT(bnn_reliability_bin(-0.25, 10), 0);
    CHECK_EQ_INT(bnn_reliability_bin(1.5, 10), 9);
    CHECK_EQ_INT(bnn_reliability_bin(NAN, 10), -1);
    CHECK_EQ_INT(bnn_reliability_bin(0.5, 0), -1);
    /* The shortcut ceil(15c) − 1 goes wrong one ulp above 11/15: 15c rounds down onto 11. */
    const double c = nextafter(11.0 / 15.0, 1.0);
    CHECK_EQ_INT(bnn_reliability_bin(c, 15), 11);
}

static void test_classification_hand(void) {
    struct bnn_cls_metrics m;
    /* A perfect, fully confident classifier: every score is at its best value. */
    const double onehot[6] = {1, 0, 0, 0, 0, 1};
    const int32_t y2[2] = {0, 2};
    REQUIRE(bnn_metrics_classification(&m, onehot, y2, 2, 3, 15) == 0);
    CHECK(m.accuracy == 1.0);
    CHECK(m.nll == 0.0);
    CHECK(m.brier == 0.0);
    CHECK(m.ece == 0.0);
    CHECK(m.mce == 0.0);
    CHECK(m.mean_entropy == 0.0);
    CHECK_EQ_INT(m.bin_count[14], 2);
    CHECK(m.bin_accuracy[14] == 1.0 && m.bin_confidence[14] == 1.0);
    CHECK_EQ_INT(m.n, 2);
    CHECK_EQ_INT(m.nbins, 15);

    /* Four rows of two classes in two bins, [0, 0.5] and (0.5, 1], with one tied row. */
    const double p[8] = {0.6, 0.4, 0.3, 0.7, 0.5, 0.5, 0.2, 0.8};
    const int32_t y[4] = {0, 0, 1, 1};
    REQUIRE(bnn_metrics_classification(&m, p, y, 4, 2, 2) == 0);
    /* Predictions 0, 1, 0 (tie → lowest), 1: right, wrong, wrong, right. */
    CHECK_NEAR(m.accuracy, 0.5, 1e-15);
    CHECK_NEAR(m.nll, -(log(0.6) + log(0.3) + log(0.5) + log(0.8)) / 4, 1e-15);
    /* Brier per row: 2·0.4², 2·0.7², 2·0.5², 2·0.2². */
    CHECK_NEAR(m.brier, 2 * (0.16 + 0.49 + 0.25 + 0.04) / 4, 1e-15);
    /* Bin 0 = [0, 0.5] holds the tie row (conf 0.5, wrong); bin 1 holds 0.6 ✓, 0.7 ✗, 0.8 ✓. */
    CHECK_EQ_INT(m.bin_count[0], 1);
    CHECK_EQ_INT(m.bin_count[1], 3);
    CHECK_NEAR(m.bin_accuracy[0], 0.0, 0);
    CHECK_NEAR(m.bin_confidence[0], 0.5, 0);
    CHECK_NEAR(m.bin_accuracy[1], 2.0 / 3.0, 1e-15);
    CHECK_NEAR(m.bin_confidence[1], 0.7, 1e-15);
    /* ECE = ¼·|0 − 0.5| + ¾·|2/3 − 0.7|; MCE = 0.5. */
    CHECK_NEAR(m.ece, 0.25 * 0.5 + 0.75 * (0.7 - 2.0 / 3.0), 1e-15);
    CHECK_NEAR(m.mce, 0.5, 1e-15);
    CHECK_NEAR(m.mean_entropy,
               (bnn_entropy(p, 2) + bnn_entropy(p + 2, 2) + log(2.0) + bnn_entropy(p + 6, 2)) / 4,
               1e-15);
    CHECK_EQ_INT(m.bin_count[2], 0); /* bins past nbins are zeroed */

    /* A zero probability on the true class is an infinite NLL, not clamped. */
    const double z[2] = {1.0, 0.0};
    const int32_t y1[1] = {1};
    REQUIRE(bnn_metrics_classification(&m, z, y1, 1, 2, 10) == 0);
    CHECK(isinf(m.nll) && m.nll > 0);
    CHECK(m.brier == 2.0);
    CHECK(m.ece == 1.0);
}

/* The same metrics from log-probabilities: equal to the probabilities' where those are exact, and
 * an exact NLL where the true class's probability underflows to 0 in double. */
static void test_classification_log(void) {
    struct bnn_cls_metrics a, b;
    const double p[8] = {0.6, 0.4, 0.3, 0.7, 0.5, 0.5, 0.2, 0.8};
    const int32_t y[4] = {0, 0, 1, 1};
    double lp[8];
    for (int i = 0; i < 8; i++) lp[i] = log(p[i]);
    REQUIRE(bnn_metrics_classification(&a, p, y, 4, 2, 2) == 0);
    REQUIRE(bnn_metrics_classification_log(&b, lp, y, 4, 2, 2) == 0);
    CHECK(a.accuracy == b.accuracy);
    CHECK_NEAR(b.nll, a.nll, 1e-15);
    CHECK_NEAR(b.brier, a.brier, 1e-15);
    CHECK_NEAR(b.ece, a.ece, 1e-15);
    CHECK_NEAR(b.mce, a.mce, 1e-15);
    CHECK_NEAR(b.mean_entropy, a.mean_entropy, 1e-15);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(b.bin_count[i], a.bin_count[i]);
        CHECK_NEAR(b.bin_confidence[i], a.bin_confidence[i], 1e-15);
    }
    /* log p_y = −800: p_y is 0 in double, which gives +inf from probabilities. */
    const double lz[4] = {0.0, -800.0, -1e-3, log1p(-exp(-1e-3))};
    const int32_t yz[2] = {1, 0};
    REQUIRE(bnn_metrics_classification_log(&b, lz, yz, 2, 2, 10) == 0);
    CHECK(b.nll == (800.0 + 1e-3) / 2);
    CHECK(b.accuracy == 0.5);
    CHECK_NEAR(b.brier, (2.0 + 2 * pow(-expm1(-1e-3), 2)) / 2, 1e-15);
    /* A class of probability 0 (−inf) is allowed; above 0 or NaN is not. */
    const double linf[2] = {0.0, -INFINITY}, lpos[2] = {1e-12, -30.0}, lnan[2] = {NAN, 0.0};
    const int32_t y0[1] = {0};
    REQUIRE(bnn_metrics_classification_log(&b, linf, y0, 1, 2, 10) == 0);
    CHECK(b.nll == 0.0 && b.mean_entropy == 0.0 && b.brier == 0.0);
    bnn__error_clear();
    CHECK_EQ_INT(bnn_metrics_classification_log(&b, lpos, y0, 1, 2, 10), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "log-probability") != NULL);
    CHECK_EQ_INT(bnn_metrics_classification_log(&b, lnan, y0, 1, 2, 10), BNN_EINVAL);
    CHECK_EQ_INT(bnn_metrics_classification_log(&b, NULL, y0, 1, 2, 10), BNN_EINVAL);
}

static void test_classification_errors(void) {
    struct bnn_cls_metrics m;
    const double p[4] = {0.5, 0.5, 0.9, 0.1};
    const int32_t y[2] = {0, 1};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, y, 2, 2, 0), BNN_EINVAL);
    CHECK(bnn_last_error()[0] != '\0');
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, y, 2, 2, BNN_MAX_BINS + 1), BNN_EINVAL);
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, y, 2, 2, BNN_MAX_BINS), 0);
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, y, 0, 2, 15), BNN_EINVAL);
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, y, -3, 2, 15), BNN_EINVAL);
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, y, 2, 0, 15), BNN_EINVAL);
    CHECK_EQ_INT(bnn_metrics_classification(NULL, p, y, 2, 2, 15), BNN_EINVAL);
    const int32_t yneg[2] = {0, -1}, ybig[2] = {2, 0};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, yneg, 2, 2, 15), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "row 1") != NULL);
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, ybig, 2, 2, 15), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "row 0") != NULL);
    const double pnan[4] = {0.5, 0.5, NAN, 0.1}, pneg[4] = {1.5, -0.5, 0.5, 0.5};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_metrics_classification(&m, pnan, y, 2, 2, 15), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "row 1") != NULL);
    CHECK_EQ_INT(bnn_metrics_classification(&m, pneg, y, 2, 2, 15), BNN_EINVAL);
    /* Rows that are not distributions: unnormalised scores, or k given wrong for a valid
     * matrix (two rows of two read as one row of four, which sums to 2). */
    const double punnorm[4] = {0.5, 0.5, 0.2, 0.2};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_metrics_classification(&m, punnorm, y, 2, 2, 15), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "row 1 sum to 0.4") != NULL);
    const int32_t y4[1] = {0};
    CHECK_EQ_INT(bnn_metrics_classification(&m, p, y4, 1, 4, 15), BNN_EINVAL);
    /* Within the tolerance (float32 rounding) a row is accepted, on either side of 1. */
    const double pclose[4] = {0.5, 0.5 + 0.9 * BNN_PROB_SUM_TOL, 0.9, 0.1 - 0.9 * BNN_PROB_SUM_TOL};
    CHECK_EQ_INT(bnn_metrics_classification(&m, pclose, y, 2, 2, 15), 0);
    const double pfar[4] = {0.5, 0.5, 0.9, 0.1 - 1.1 * BNN_PROB_SUM_TOL};
    CHECK_EQ_INT(bnn_metrics_classification(&m, pfar, y, 2, 2, 15), BNN_EINVAL);
    /* The same from log-probabilities. */
    const double lunnorm[2] = {log(0.3), log(0.3)}, lok[2] = {log(0.3), log(0.7)};
    const int32_t y0[1] = {0};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_metrics_classification_log(&m, lunnorm, y0, 1, 2, 15), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "row 0 sum to 0.6") != NULL);
    CHECK_EQ_INT(bnn_metrics_classification_log(&m, lok, y0, 1, 2, 15), 0);
}

static void test_mutual_info_hand(void) {
    /* S = 2, n = 2, k = 2. Example 0: two one-hot samples on different classes, so the mean is
     * uniform and I = log 2 − 0. Example 1: identical samples, I = 0. */
    const double s[8] = {1, 0, 0.3, 0.7, /* sample 0 */ 0, 1, 0.3, 0.7 /* sample 1 */};
    double mi[2], mean[4];
    bnn_mutual_info(mi, mean, s, 2, 2, 2);
    CHECK_NEAR(mi[0], log(2.0), 1e-15);
    CHECK_NEAR(mi[1], 0.0, 1e-15);
    CHECK(mean[0] == 0.5 && mean[1] == 0.5 && mean[2] == 0.3 && mean[3] == 0.7);
    double mi_only[2];
    bnn_mutual_info(mi_only, NULL, s, 2, 2, 2);
    CHECK(mi_only[0] == mi[0] && mi_only[1] == mi[1]);
}

/* O(n·m) definition of AUROC, the reference for the sorted version. */
static double auroc_pairs(const double *p, int64_t np, const double *q, int64_t nq) {
    double u = 0;
    for (int64_t i = 0; i < np; i++)
        for (int64_t j = 0; j < nq; j++) u += p[i] > q[j] ? 1.0 : p[i] == q[j] ? 0.5 : 0.0;
    return u / ((double)np * (double)nq);
}

/* Average precision from its definition: for each distinct score t (in any order), the recall
 * step it makes when thresholds run from high to low, times the precision at t. */
static double aupr_direct(const double *p, int64_t np, const double *q, int64_t nq) {
    double ap = 0;
    for (int64_t a = 0; a < np + nq; a++) {
        const double t = a < np ? p[a] : q[a - np];
        int seen = 0; /* count each distinct value once */
        for (int64_t b = 0; b < a; b++) seen |= (b < np ? p[b] : q[b - np]) == t;
        if (seen) continue;
        int64_t tp = 0, fp = 0, at = 0;
        for (int64_t i = 0; i < np; i++) tp += p[i] >= t, at += p[i] == t;
        for (int64_t j = 0; j < nq; j++) fp += q[j] >= t;
        ap += ((double)at / (double)np) * ((double)tp / (double)(tp + fp));
    }
    return ap;
}

static void test_ood_hand(void) {
    const double hi[3] = {3, 4, 5}, lo[4] = {0, 1, 2, 2.5};
    CHECK(bnn_auroc(hi, 3, lo, 4) == 1.0); /* separable */
    CHECK(bnn_auroc(lo, 4, hi, 3) == 0.0); /* reversed */
    CHECK(bnn_aupr(hi, 3, lo, 4) == 1.0);
    const double t1[3] = {7, 7, 7}, t2[2] = {7, 7};
    CHECK(bnn_auroc(t1, 3, t2, 2) == 0.5); /* all tied */
    CHECK_NEAR(bnn_aupr(t1, 3, t2, 2), 0.6, 1e-15); /* one threshold: precision 3/5, recall 1 */
    /* Ties across the sets count half: pairs (1,1) ½, (1,0) 1, (2,1) 1, (2,0) 1 → 3.5 / 4. */
    const double a[2] = {1, 2}, b[2] = {1, 0};
    CHECK(bnn_auroc(a, 2, b, 2) == 0.875);
    /* The positive ranks last: precision 1/3 at recall 1. */
    const double p1[1] = {1}, n2[2] = {2, 3};
    CHECK_NEAR(bnn_aupr(p1, 1, n2, 2), 1.0 / 3.0, 1e-15);
    /* Positives at 0.9 and 0.4, negatives at 0.9 and 0.1: thresholds 0.9 (P ½, R ½) and 0.4
     * (P ⅔, R 1) → AP = ½·½ + ½·⅔. */
    const double pa[2] = {0.9, 0.4}, na[2] = {0.1, 0.9};
    CHECK_NEAR(bnn_aupr(pa, 2, na, 2), 0.25 + 1.0 / 3.0, 1e-15);
    CHECK(bnn_aupr(pa, 2, na, 0) == 1.0); /* no negatives: every precision is 1 */
    /* Undefined cases return NaN and say why. */
    bnn__error_clear();
    CHECK(isnan(bnn_auroc(a, 2, b, 0)));
    CHECK(bnn_last_error()[0] != '\0');
    CHECK(isnan(bnn_auroc(a, 0, b, 2)));
    CHECK(isnan(bnn_aupr(a, 0, b, 2)));
    const double withnan[2] = {1, NAN};
    CHECK(isnan(bnn_auroc(withnan, 2, b, 2)));
    CHECK(isnan(bnn_aupr(a, 2, withnan, 2)));
    const double inf[2] = {INFINITY, -INFINITY}, fin[1] = {0};
    CHECK(bnn_auroc(inf, 2, fin, 1) == 0.5);

    /* Random scores on a coarse grid (many ties within and across the sets) against the
     * definitions, with the sets in shuffled order. */
    bnn_rng rng = bnn_rng_make(42, 7);
    float u[700];
    double p[300], q[400];
    int bad_roc = 0, bad_pr = 0;
    for (int rep = 0; rep < 20; rep++) {
        const int64_t np = 1 + rep * 14, nq = 1 + rep * 19;
        bnn_rng_uniform(&rng, u, np + nq);
        for (int64_t i = 0; i < np; i++) p[i] = floor(u[i] * 12.0) / 4.0 + 0.5;
        for (int64_t j = 0; j < nq; j++) q[j] = floor(u[np + j] * 12.0) / 4.0;
        const double r1 = bnn_auroc(p, np, q, nq), r2 = auroc_pairs(p, np, q, nq);
        if (!(fabs(r1 - r2) <= 1e-14)) bad_roc++;
        const double a1 = bnn_aupr(p, np, q, nq), a2 = aupr_direct(p, np, q, nq);
        if (!(fabs(a1 - a2) <= 1e-13)) bad_pr++;
    }
    CHECK_EQ_INT(bad_roc, 0);
    CHECK_EQ_INT(bad_pr, 0);
}

static void test_regression_hand(void) {
    struct bnn_reg_metrics r;
    /* Targets on, inside and outside the intervals: |d| = 1 = 1σ (inside, closed), |d| = 4 =
     * 2σ with σ = 2 (inside 2σ only), |d| = 3 with σ = 1 (outside both). */
    const double mu[3] = {0, 1, -1}, v[3] = {1, 4, 1}, y[3] = {1, -3, 2};
    REQUIRE(bnn_metrics_regression(&r, mu, v, y, 3) == 0);
    CHECK_EQ_INT(r.n, 3);
    CHECK_NEAR(r.rmse, sqrt((1.0 + 16.0 + 9.0) / 3.0), 1e-15);
    const double c = 0.5 * log(2 * 3.14159265358979323846);
    CHECK_NEAR(r.nll, ((c + 0.5) + (c + 0.5 * log(4.0) + 2.0) + (c + 4.5)) / 3.0, 1e-14);
    CHECK(r.coverage_1sd == 1.0 / 3.0);
    CHECK(r.coverage_2sd == 2.0 / 3.0);
    /* One ulp outside the 1σ edge is outside. */
    const double y2[1] = {nextafter(1.0, 2.0)};
    REQUIRE(bnn_metrics_regression(&r, mu, v, y2, 1) == 0);
    CHECK(r.coverage_1sd == 0.0 && r.coverage_2sd == 1.0);

    CHECK_EQ_INT(bnn_metrics_regression(&r, mu, v, y, 0), BNN_EINVAL);
    const double v0[2] = {1, 0}, vn[1] = {NAN};
    bnn__error_clear();
    CHECK_EQ_INT(bnn_metrics_regression(&r, mu, v0, y, 2), BNN_EINVAL);
    CHECK(strstr(bnn_last_error(), "example 1") != NULL);
    CHECK_EQ_INT(bnn_metrics_regression(&r, mu, vn, y, 1), BNN_EINVAL);
    const double ynan[1] = {NAN};
    CHECK_EQ_INT(bnn_metrics_regression(&r, mu, v, ynan, 1), BNN_EINVAL);

    /* A mixture of one component is that Gaussian; of two identical ones, the same again. */
    const double ms[2] = {0.5, 0.5}, vs[2] = {2.0, 2.0}, yt[1] = {1.5};
    double mm, mv, nll;
    bnn_gaussian_mixture(&mm, &mv, &nll, ms, vs, yt, 1, 1);
    CHECK(mm == 0.5 && mv == 2.0);
    CHECK_NEAR(nll, c + 0.5 * log(2.0) + 0.25, 1e-15);
    double nll2;
    bnn_gaussian_mixture(NULL, NULL, &nll2, ms, vs, yt, 2, 1);
    CHECK_NEAR(nll2, nll, 1e-15);
    /* Components N(−1, 1) and N(3, 2): mean 1, variance 1.5 + 4 (total variance). */
    const double m2[2] = {-1, 3}, v2[2] = {1, 2}, y0[1] = {0};
    bnn_gaussian_mixture(&mm, &mv, &nll, m2, v2, y0, 2, 1);
    CHECK(mm == 1.0 && mv == 5.5);
    const double dens = 0.5 * (exp(-0.5) / sqrt(2 * 3.14159265358979323846) +
                               exp(-9.0 / 4.0) / sqrt(4 * 3.14159265358979323846));
    CHECK_NEAR(nll, -log(dens), 1e-14);
    /* A target far in the tail: every density underflows, log-sum-exp does not. */
    const double yfar[1] = {1e4};
    bnn_gaussian_mixture(NULL, NULL, &nll, m2, v2, yfar, 2, 1);
    CHECK(isfinite(nll) && nll > 1e7);
    /* A NaN target (or NaN components) gives NaN, not the +∞ of "every density 0". */
    const double ynan1[1] = {NAN}, mnan[2] = {NAN, 3};
    bnn_gaussian_mixture(NULL, NULL, &nll, m2, v2, ynan1, 2, 1);
    CHECK(isnan(nll));
    bnn_gaussian_mixture(NULL, NULL, &nll, mnan, v2, y0, 2, 1);
    CHECK(isnan(nll));
}

/* ---------------------------------------------------------------- fixtures */

/* Reads tensor `name` of st as doubles, requiring numel elements. The caller frees. */
static double *load(const bnn_st *st, const char *name, int64_t numel) {
    bnn_st_tensor t;
    int rc = bnn_st_get(st, name, &t);
    if (rc) fprintf(stderr, "missing tensor %s: %s\n", name, bnn_last_error());
    REQUIRE(rc == 0);
    if (t.numel != numel)
        fprintf(stderr, "%s has %lld elements, expected %lld\n", name, (long long)t.numel,
                (long long)numel);
    REQUIRE(t.numel == numel);
    double *d = malloc((size_t)numel * sizeof *d);
    REQUIRE(d != NULL);
    REQUIRE(bnn_st_to_f64(&t, d) == 0);
    return d;
}

static bnn_st *open_fixture(const char *file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics/%s", BNN_FIXTURES, file);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fclose(f);
    bnn_st *st = NULL;
    int rc = bnn_st_read(&st, path);
    if (rc) fprintf(stderr, "%s: %s\n", path, bnn_last_error());
    REQUIRE(rc == 0); /* present but unreadable is a failure, not a skip */
    return st;
}

static int fixture_classification(void) {
    bnn_st *st = open_fixture("classification.safetensors");
    if (!st) return 0;
    enum { N = 2000, K = 10, S = 8, NB = 15 };
    double *probs = load(st, "probs", N * K), *lab = load(st, "labels", N);
    double *samples = load(st, "samples", (int64_t)S * N * K);
    double *r_acc = load(st, "ref.accuracy", 1), *r_nll = load(st, "ref.nll", 1);
    double *r_brier = load(st, "ref.brier", 1), *r_ece = load(st, "ref.ece", 1);
    double *r_mce = load(st, "ref.mce", 1);
    double *r_nll_ex = load(st, "ref.nll_per_example", N);
    double *r_brier_ex = load(st, "ref.brier_per_example", N);
    double *r_pred = load(st, "ref.pred", N), *r_conf = load(st, "ref.confidence", N);
    double *r_edges = load(st, "ref.bin_edges", NB + 1), *r_bin = load(st, "ref.bin", N);
    double *r_bcount = load(st, "ref.bin_count", NB), *r_bacc = load(st, "ref.bin_accuracy", NB);
    double *r_bconf = load(st, "ref.bin_confidence", NB), *r_ent = load(st, "ref.entropy", N);
    double *r_mi = load(st, "ref.mutual_info", N), *r_smean = load(st, "ref.samples_mean", N * K);
    double *r_hmean = load(st, "ref.samples_entropy_of_mean", N);
    double *r_meanh = load(st, "ref.samples_mean_entropy", N);

    int32_t *labels = malloc(N * sizeof *labels);
    REQUIRE(labels != NULL);
    for (int i = 0; i < N; i++) labels[i] = (int32_t)lab[i];

    struct bnn_cls_metrics m;
    REQUIRE(bnn_metrics_classification(&m, probs, labels, N, K, NB) == 0);
    CHECK_REL(m.accuracy, r_acc[0], TOL, FLOOR);
    CHECK_REL(m.nll, r_nll[0], TOL, FLOOR);
    CHECK_REL(m.brier, r_brier[0], TOL, FLOOR);
    CHECK_REL(m.ece, r_ece[0], TOL, FLOOR);
    CHECK_REL(m.mce, r_mce[0], TOL, FLOOR);
    for (int b = 0; b < NB; b++) {
        CHECK_EQ_INT(m.bin_count[b], (int64_t)r_bcount[b]);
        CHECK_REL(m.bin_accuracy[b], r_bacc[b], TOL, FLOOR);
        CHECK_REL(m.bin_confidence[b], r_bconf[b], TOL, FLOOR);
    }
    /* The edges are i / 15.0 exactly, and each edge itself belongs to the bin below. */
    for (int i = 0; i <= NB; i++) {
        CHECK(r_edges[i] == (double)i / (double)NB);
        CHECK_EQ_INT(bnn_reliability_bin(r_edges[i], NB), i == 0 ? 0 : i - 1);
    }

    /* Per example, with exact comparisons where the reference is an integer or a copy. Failures
     * are counted so that one bad rule prints one line, not thousands. */
    int bad_pred = 0, bad_conf = 0, bad_bin = 0, bad_nll = 0, bad_brier = 0, bad_ent = 0;
    double ent_sum = 0;
    for (int i = 0; i < N; i++) {
        const double *p = probs + i * K;
        const int64_t pred = bnn_argmax(p, K);
        bad_pred += pred != (int64_t)r_pred[i];
        bad_conf += p[pred] != r_conf[i];
        bad_bin += bnn_reliability_bin(p[pred], NB) != (int64_t)r_bin[i];
        const double h = bnn_entropy(p, K);
        ent_sum += h;
        bad_ent += !(fabs(h - r_ent[i]) <= TOL * fmax(fabs(r_ent[i]), FLOOR));
        struct bnn_cls_metrics one;
        REQUIRE(bnn_metrics_classification(&one, p, labels + i, 1, K, NB) == 0);
        bad_nll += !(fabs(one.nll - r_nll_ex[i]) <= TOL * fmax(fabs(r_nll_ex[i]), FLOOR));
        bad_brier += !(fabs(one.brier - r_brier_ex[i]) <= TOL * fmax(fabs(r_brier_ex[i]), FLOOR));
        bad_bin += one.bin_count[(int64_t)r_bin[i]] != 1;
    }
    CHECK_EQ_INT(bad_pred, 0);
    CHECK_EQ_INT(bad_conf, 0);
    CHECK_EQ_INT(bad_bin, 0);
    CHECK_EQ_INT(bad_ent, 0);
    CHECK_EQ_INT(bad_nll, 0);
    CHECK_EQ_INT(bad_brier, 0);
    CHECK_REL(m.mean_entropy, ent_sum / N, 1e-12, FLOOR);

    /* Mutual information: the reference holds values as small as 1e-16 for identical samples,
     * so small values are compared absolutely (1e-12) through FLOOR. */
    double *mi = malloc(N * sizeof *mi), *mean = malloc(N * K * sizeof *mean);
    REQUIRE(mi && mean);
    bnn_mutual_info(mi, mean, samples, S, N, K);
    int bad_mi = 0, bad_mean = 0, bad_parts = 0;
    for (int i = 0; i < N; i++) {
        bad_mi += !(fabs(mi[i] - r_mi[i]) <= TOL * fmax(fabs(r_mi[i]), FLOOR));
        for (int j = 0; j < K; j++)
            bad_mean += !(fabs(mean[i * K + j] - r_smean[i * K + j]) <=
                          TOL * fmax(fabs(r_smean[i * K + j]), FLOOR));
        /* The two terms of I separately, from the public helpers. */
        const double hm = bnn_entropy(mean + i * K, K);
        double he = 0;
        for (int s = 0; s < S; s++) he += bnn_entropy(samples + ((int64_t)s * N + i) * K, K);
        he /= S;
        bad_parts += !(fabs(hm - r_hmean[i]) <= TOL * fmax(fabs(r_hmean[i]), FLOOR));
        bad_parts += !(fabs(he - r_meanh[i]) <= TOL * fmax(fabs(r_meanh[i]), FLOOR));
    }
    CHECK_EQ_INT(bad_mi, 0);
    CHECK_EQ_INT(bad_mean, 0);
    CHECK_EQ_INT(bad_parts, 0);
    /* Rows 0–19 (identical samples) must come out at rounding level, not merely within 1e-9. */
    double worst = 0;
    for (int i = 0; i < 20; i++) worst = fmax(worst, fabs(mi[i]));
    CHECK_NEAR(worst, 0.0, 1e-12);

    free(mi), free(mean), free(labels);
    double *all[] = {probs,   lab,    samples, r_acc,  r_nll,   r_brier, r_ece,   r_mce,
                     r_nll_ex, r_brier_ex, r_pred, r_conf, r_edges, r_bin, r_bcount, r_bacc,
                     r_bconf, r_ent,  r_mi,    r_smean, r_hmean, r_meanh};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    bnn_st_free(st);
    return 1;
}

static int fixture_ood(void) {
    bnn_st *st = open_fixture("ood.safetensors");
    if (!st) return 0;
    double *in = load(st, "scores_in", 1000), *out = load(st, "scores_out", 800);
    double *r_auroc = load(st, "ref.auroc", 1), *r_out = load(st, "ref.aupr_out", 1);
    double *r_in = load(st, "ref.aupr_in", 1);
    CHECK_REL(bnn_auroc(out, 800, in, 1000), r_auroc[0], TOL, FLOOR);
    CHECK_REL(bnn_auroc(out, 800, in, 1000), 0.679780625, TOL, FLOOR); /* README's value */
    CHECK_REL(bnn_auroc(out, 800, in, 1000), auroc_pairs(out, 800, in, 1000), 1e-15, FLOOR);
    CHECK_REL(bnn_aupr(out, 800, in, 1000), r_out[0], TOL, FLOOR);
    /* In-distribution as the positive class: negate the scores so higher means "in". */
    double *nin = malloc(1000 * sizeof *nin), *nout = malloc(800 * sizeof *nout);
    REQUIRE(nin && nout);
    for (int i = 0; i < 1000; i++) nin[i] = -in[i];
    for (int i = 0; i < 800; i++) nout[i] = -out[i];
    CHECK_REL(bnn_aupr(nin, 1000, nout, 800), r_in[0], TOL, FLOOR);
    /* Swapping the roles and negating leaves AUROC unchanged. */
    CHECK_REL(bnn_auroc(nin, 1000, nout, 800), r_auroc[0], TOL, FLOOR);
    free(nin), free(nout), free(in), free(out), free(r_auroc), free(r_out), free(r_in);
    bnn_st_free(st);
    return 1;
}

static int fixture_regression(void) {
    bnn_st *st = open_fixture("regression.safetensors");
    if (!st) return 0;
    enum { N = 500, S = 8 };
    double *mu = load(st, "mean", N), *var = load(st, "var", N), *y = load(st, "target", N);
    double *mm = load(st, "mix_means", S * N), *mv = load(st, "mix_vars", S * N);
    double *r_rmse = load(st, "ref.rmse", 1), *r_nll = load(st, "ref.gaussian_nll", 1);
    double *r_nll_ex = load(st, "ref.gaussian_nll_per_example", N);
    double *r_c1 = load(st, "ref.coverage_1sd", 1), *r_c2 = load(st, "ref.coverage_2sd", 1);
    double *r_mmean = load(st, "ref.mixture_mean", N), *r_mvar = load(st, "ref.mixture_var", N);
    double *r_mnll = load(st, "ref.mixture_nll", 1);
    double *r_mnll_ex = load(st, "ref.mixture_nll_per_example", N);

    struct bnn_reg_metrics r;
    REQUIRE(bnn_metrics_regression(&r, mu, var, y, N) == 0);
    CHECK_REL(r.rmse, r_rmse[0], TOL, FLOOR);
    CHECK_REL(r.nll, r_nll[0], TOL, FLOOR);
    /* Coverage is a count over n, so it must agree exactly. */
    CHECK(r.coverage_1sd == r_c1[0]);
    CHECK(r.coverage_2sd == r_c2[0]);
    /* Rows 0–7 lie exactly on an interval edge (|y − μ| = 1σ or 2σ): the closed interval holds
     * them, so each is inside its 2σ interval, and inside 1σ exactly when |y − μ| = σ. */
    int bad_edge = 0, bad_nll = 0;
    for (int i = 0; i < N; i++) {
        struct bnn_reg_metrics one;
        REQUIRE(bnn_metrics_regression(&one, mu + i, var + i, y + i, 1) == 0);
        bad_nll += !(fabs(one.nll - r_nll_ex[i]) <= TOL * fmax(fabs(r_nll_ex[i]), FLOOR));
        if (i < 8) {
            const double d = fabs(y[i] - mu[i]), sd = sqrt(var[i]);
            bad_edge += !(d == sd || d == 2 * sd); /* the fixture's promise */
            bad_edge += one.coverage_2sd != 1.0;
            bad_edge += one.coverage_1sd != (d == sd ? 1.0 : 0.0);
        }
    }
    CHECK_EQ_INT(bad_edge, 0);
    CHECK_EQ_INT(bad_nll, 0);

    double *gm = malloc(N * sizeof *gm), *gv = malloc(N * sizeof *gv), *gn = malloc(N * sizeof *gn);
    REQUIRE(gm && gv && gn);
    bnn_gaussian_mixture(gm, gv, gn, mm, mv, y, S, N);
    int bad_mix = 0;
    double nll_sum = 0;
    for (int i = 0; i < N; i++) {
        bad_mix += !(fabs(gm[i] - r_mmean[i]) <= TOL * fmax(fabs(r_mmean[i]), FLOOR));
        bad_mix += !(fabs(gv[i] - r_mvar[i]) <= TOL * fmax(fabs(r_mvar[i]), FLOOR));
        bad_mix += !(fabs(gn[i] - r_mnll_ex[i]) <= TOL * fmax(fabs(r_mnll_ex[i]), FLOOR));
        nll_sum += gn[i];
    }
    CHECK_EQ_INT(bad_mix, 0);
    CHECK_REL(nll_sum / N, r_mnll[0], TOL, FLOOR);

    free(gm), free(gv), free(gn);
    double *all[] = {mu, var, y, mm, mv, r_rmse, r_nll, r_nll_ex, r_c1, r_c2, r_mmean, r_mvar,
                     r_mnll, r_mnll_ex};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    bnn_st_free(st);
    return 1;
}

int main(void) {
    test_argmax_entropy();
    test_bins();
    test_classification_hand();
    test_classification_log();
    test_classification_errors();
    test_mutual_info_hand();
    test_ood_hand();
    test_regression_hand();
    const int found = fixture_classification() + fixture_ood() + fixture_regression();
    if (found < 3)
        fprintf(stderr, "note: %d of 3 metrics fixtures not found under %s/metrics; skipped them\n",
                3 - found, BNN_FIXTURES);
    return CHECK_DONE();
}
