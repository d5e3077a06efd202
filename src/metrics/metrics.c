/* Evaluation metrics: classification (accuracy, NLL, Brier, reliability bins, ECE/MCE,
 * entropy, mutual information), out-of-distribution detection (AUROC, average precision) and
 * regression (RMSE, Gaussian NLL, interval coverage, Gaussian mixtures).
 *
 * Every sum that decides a reported number is accumulated in double, in a fixed order, so the
 * results do not depend on the thread count. The conventions (tie rules, bin edges, closed
 * intervals) are those of shared/fixtures/metrics/README, which records the numpy /
 * scikit-learn reference values these functions are tested against. */
#include "core/internal.h"

#include <math.h>
#include <string.h>

/* 2π for the Gaussian log-density (M_PI is not part of C11). */
#define TWO_PI 6.28318530717958647692

/* ---------------------------------------------------------------- per-row helpers */

/* p: k probabilities. The first index of the largest value, so a tie goes to the lowest class
 * index (numpy.argmax, and therefore torch/scikit-learn pipelines built on it). A NaN entry
 * compares false and is never chosen unless it is p[0]; classification metrics reject NaN
 * before calling this. Returns −1 for k < 1. */
int64_t bnn_argmax(const double *p, int64_t k) {
    if (!p || k < 1) return -1;
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (p[j] > p[best]) best = j;
    return best;
}

/* p: k probabilities. Shannon entropy in nats, −Σ p log p. Only an exact 0 is skipped
 * (0 · log 0 = 0, the limit); a negative or NaN entry gives NaN rather than being hidden. */
double bnn_entropy(const double *p, int64_t k) {
    if (!p || k < 1) return NAN;
    double h = 0.0;
    for (int64_t j = 0; j < k; j++)
        if (p[j] != 0.0) h -= p[j] * log(p[j]);
    return h;
}

/* The reliability bin of a top-class confidence c among nbins equal-width bins: bin b holds
 * e_b < c ≤ e_{b+1} with e_i = i / (double)nbins, a correctly rounded division (the bins of
 * Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, Sec. 2, with the
 * right-closed convention of the fixtures). c ≤ 0 goes to bin 0 and c ≥ 1 to bin nbins − 1.
 *
 * The arithmetic guess floor(c · nbins) is only a starting point: c · nbins is rounded, so a
 * confidence one ulp above an edge can land on the edge (ceil(15c) − 1 misplaces three rows of
 * the fixture). The two loops then settle the bin by comparing c with the edges themselves,
 * which is the definition; each moves at most a step or two.
 *
 * Returns −1 for nbins < 1 or a NaN confidence, which have no bin. */
int64_t bnn_reliability_bin(double c, int64_t nbins) {
    if (nbins < 1 || isnan(c)) return -1;
    if (c <= 0.0) return 0;
    if (c >= 1.0) return nbins - 1;
    /* Here 0 < c < 1, so the product is in (0, nbins] and the conversion is defined. */
    double g = floor(c * (double)nbins);
    int64_t b = (int64_t)g;
    if (b > nbins - 1) b = nbins - 1;
    while (b > 0 && c <= (double)b / (double)nbins) b--;
    while (b < nbins - 1 && c > (double)(b + 1) / (double)nbins) b++;
    return b;
}

/* ---------------------------------------------------------------- classification */

/* v: n × k probabilities, or with is_log their natural logarithms. From log-probabilities the
 * NLL is exact where a probability underflows to 0 (a true class more than 745 nats behind,
 * which probabilities can only report as an infinite NLL); the other metrics use exp(v). */
static int cls_metrics(const char *fn, struct bnn_cls_metrics *out, const double *v, bool is_log,
                       const int32_t *labels, int64_t n, int64_t k, int64_t nbins) {
    if (!out || !v || !labels)
        return bnn__error(BNN_EINVAL, "%s: out, %s and labels must not be NULL", fn,
                          is_log ? "logp" : "probs");
    if (nbins < 1 || nbins > BNN_MAX_BINS)
        return bnn__error(BNN_EINVAL, "%s: nbins = %lld is outside 1..%d", fn, (long long)nbins,
                          BNN_MAX_BINS);
    if (n < 1) return bnn__error(BNN_EINVAL, "%s: n = %lld, need at least 1 example", fn,
                                 (long long)n);
    if (k < 1) return bnn__error(BNN_EINVAL, "%s: k = %lld, need at least 1 class", fn,
                                 (long long)k);
    /* Validate everything before computing anything, so a failure leaves *out untouched and
     * names the first offending row. A probability outside [0, 1] (NaN included: the negated
     * comparison is true for it) would turn the NLL, Brier score and bins into silent garbage. */
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= k)
            return bnn__error(BNN_EINVAL, "%s: label %d of row %lld is outside 0..%lld", fn,
                              (int)labels[i], (long long)i, (long long)(k - 1));
        const double *p = v + i * k;
        double sum = 0.0;
        for (int64_t j = 0; j < k; j++) {
            if (is_log ? !(p[j] <= 0.0) : !(p[j] >= 0.0 && p[j] <= 1.0))
                return bnn__error(BNN_EINVAL, "%s: %s %g at row %lld, class %lld is not in %s",
                                  fn, is_log ? "log-probability" : "probability", p[j],
                                  (long long)i, (long long)j, is_log ? "[-inf, 0]" : "[0, 1]");
            sum += is_log ? exp(p[j]) : p[j];
        }
        /* A row that is not a distribution (scores not yet normalised, the matrix transposed or
         * k wrong) would give a meaningless Brier score and entropy; float32 probabilities of
         * many classes sum to 1 within far less than the tolerance. */
        if (!(fabs(sum - 1.0) <= BNN_PROB_SUM_TOL))
            return bnn__error(BNN_EINVAL, "%s: the probabilities of row %lld sum to %.9g, not 1 "
                              "(within %g)", fn, (long long)i, sum, BNN_PROB_SUM_TOL);
    }

    memset(out, 0, sizeof *out);
    out->n = n;
    out->nbins = nbins;
    /* Per-bin sums of correct predictions and of confidences; counts are in out->bin_count. */
    double bin_correct[BNN_MAX_BINS] = {0};
    double bin_conf[BNN_MAX_BINS] = {0};
    double correct = 0.0, nll = 0.0, brier = 0.0, ent = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double *p = v + i * k;
        const int64_t y = labels[i];
        const int64_t pred = bnn_argmax(p, k); /* exp is monotonic: the same class either way */
        const double conf = is_log ? exp(p[pred]) : p[pred];
        const double hit = pred == y ? 1.0 : 0.0;
        correct += hit;
        /* No clamping of p_y: a zero probability on the true class is an infinite NLL, and
         * reporting it is more honest than a floor that depends on an arbitrary epsilon. */
        nll -= is_log ? p[y] : log(p[y]);
        /* Brier (1950), multi-class form summed over classes, range 0..2. */
        double b = 0.0, h = 0.0;
        for (int64_t j = 0; j < k; j++) {
            const double pj = is_log ? exp(p[j]) : p[j];
            const double d = pj - (j == y ? 1.0 : 0.0);
            b += d * d;
            if (is_log && pj != 0.0) h -= pj * log(pj); /* bnn_entropy of the exp'd row */
        }
        brier += b;
        ent += is_log ? h : bnn_entropy(p, k);
        const int64_t bin = bnn_reliability_bin(conf, nbins);
        out->bin_count[bin]++;
        bin_correct[bin] += hit;
        bin_conf[bin] += conf;
    }
    const double dn = (double)n;
    out->accuracy = correct / dn;
    out->nll = nll / dn;
    out->brier = brier / dn;
    out->mean_entropy = ent / dn;
    /* ECE and MCE as in Guo et al. 2017, Sec. 2 (after Naeini et al., AAAI 2015): ECE weights
     * each bin's gap |acc_b − conf_b| by its share of the examples, MCE takes the largest gap
     * over non-empty bins. An empty bin reports accuracy and confidence 0 and is left out of
     * both (weight 0 in ECE). */
    double ece = 0.0, mce = 0.0;
    for (int64_t b = 0; b < nbins; b++) {
        const int64_t cnt = out->bin_count[b];
        if (cnt == 0) continue;
        const double acc = bin_correct[b] / (double)cnt;
        const double cf = bin_conf[b] / (double)cnt;
        out->bin_accuracy[b] = acc;
        out->bin_confidence[b] = cf;
        const double gap = fabs(acc - cf);
        ece += ((double)cnt / dn) * gap;
        if (gap > mce) mce = gap;
    }
    out->ece = ece;
    out->mce = mce;
    return 0;
}

int bnn_metrics_classification(struct bnn_cls_metrics *out, const double *probs,
                               const int32_t *labels, int64_t n, int64_t k, int64_t nbins) {
    return cls_metrics("bnn_metrics_classification", out, probs, false, labels, n, k, nbins);
}

int bnn_metrics_classification_log(struct bnn_cls_metrics *out, const double *logp,
                                   const int32_t *labels, int64_t n, int64_t k, int64_t nbins) {
    return cls_metrics("bnn_metrics_classification_log", out, logp, true, labels, n, k, nbins);
}

/* samples: S × n × k, mean: n × k, mi: n. The BALD / epistemic term of the predictive entropy
 * (Houlsby et al. 2011; Depeweg et al., ICML 2018): I = H[mean_s p_s] − mean_s H[p_s]. The mean
 * is accumulated over s in order and then divided by S, as numpy's mean over axis 0 does, and
 * the entropy of the mean is taken from the same rounded values it writes. I is not clamped at
 * 0: identical samples give a value of the order of 1e-16 of either sign, which is the honest
 * result of the subtraction. Invalid sizes or NULL samples leave the outputs untouched. */
void bnn_mutual_info(double *mi, double *mean, const double *samples, int64_t s, int64_t n,
                     int64_t k) {
    if (!samples || s < 1 || n < 1 || k < 1 || (!mi && !mean)) return;
    const int64_t stride = n * k; /* distance between samples of the same example */
    for (int64_t i = 0; i < n; i++) {
        const double *row = samples + i * k;
        double h_mean = 0.0;
        for (int64_t j = 0; j < k; j++) {
            double m = 0.0;
            for (int64_t t = 0; t < s; t++) m += row[t * stride + j];
            m /= (double)s;
            if (mean) mean[i * k + j] = m;
            if (m != 0.0) h_mean -= m * log(m);
        }
        if (!mi) continue;
        double h_each = 0.0;
        for (int64_t t = 0; t < s; t++) h_each += bnn_entropy(row + t * stride, k);
        mi[i] = h_mean - h_each / (double)s;
    }
}

/* ---------------------------------------------------------------- OOD detection */

/* Descending order for qsort. The callers have already rejected NaN, so this is a total order
 * (glibc's qsort may read out of bounds with an inconsistent comparator). */
static int cmp_desc(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Copies pos and neg into one allocation, each part sorted in descending order. NULL (with the
 * error detail set) on NaN input or allocation failure. */
static double *sorted_desc(const double *pos, int64_t npos, const double *neg, int64_t nneg,
                           const char *fn) {
    for (int64_t i = 0; i < npos; i++)
        if (isnan(pos[i])) {
            bnn__error(BNN_EINVAL, "%s: positive score %lld is NaN", fn, (long long)i);
            return NULL;
        }
    for (int64_t i = 0; i < nneg; i++)
        if (isnan(neg[i])) {
            bnn__error(BNN_EINVAL, "%s: negative score %lld is NaN", fn, (long long)i);
            return NULL;
        }
    const size_t bytes = bnn__bytes(npos + nneg, sizeof(double));
    double *buf = bytes ? bnn__alloc(bytes) : NULL;
    if (!buf) {
        bnn__error(BNN_ENOMEM, "%s: no memory to sort %lld scores", fn, (long long)(npos + nneg));
        return NULL;
    }
    if (npos) memcpy(buf, pos, (size_t)npos * sizeof *buf);
    if (nneg) memcpy(buf + npos, neg, (size_t)nneg * sizeof *buf);
    qsort(buf, (size_t)npos, sizeof *buf, cmp_desc);
    qsort(buf + npos, (size_t)nneg, sizeof *buf, cmp_desc);
    return buf;
}

/* Walks the distinct score values of two descending arrays from the highest down. At each
 * threshold t it reports how many positives (dp) and negatives (dn) equal t, and how many of
 * each lie strictly above t (tp_above, fp_above). Both metrics below are sums over this walk,
 * which is what makes them O((n + m) log(n + m)): the sort dominates. */
typedef void (*step_fn)(void *ctx, int64_t dp, int64_t dn, int64_t tp_above, int64_t fp_above);
static void walk_thresholds(const double *p, int64_t np, const double *q, int64_t nq,
                            step_fn step, void *ctx) {
    int64_t i = 0, j = 0;
    while (i < np || j < nq) {
        double t;
        if (i == np) t = q[j];
        else if (j == nq) t = p[i];
        else t = p[i] > q[j] ? p[i] : q[j];
        int64_t i0 = i, j0 = j;
        while (i < np && p[i] == t) i++;
        while (j < nq && q[j] == t) j++;
        step(ctx, i - i0, j - j0, i0, j0);
    }
}

struct auroc_acc {
    int64_t nneg;
    double u; /* the Mann–Whitney U statistic */
};
/* The positives at this threshold beat every negative below it and tie with the dn equal ones,
 * which count half. */
static void auroc_step(void *ctx, int64_t dp, int64_t dn, int64_t tp_above, int64_t fp_above) {
    struct auroc_acc *a = ctx;
    (void)tp_above;
    const int64_t below = a->nneg - fp_above - dn;
    a->u += (double)dp * ((double)below + 0.5 * (double)dn);
}

/* The area under the ROC curve equals the Mann–Whitney U statistic over npos · nneg (Hanley &
 * McNeil, Radiology 1982): P(s_pos > s_neg) + ½ P(s_pos = s_neg), the value of scikit-learn's
 * roc_auc_score, whose trapezoids over tied scores count ties as half. Computed by sorting and
 * walking the distinct scores, never over all pairs. The integer-valued terms of U are exact in
 * double while U < 2^53. Returns NaN (detail in bnn_last_error) when either set is empty, a
 * score is NaN, or memory runs out: AUROC is undefined there, and scikit-learn raises. */
double bnn_auroc(const double *pos, int64_t npos, const double *neg, int64_t nneg) {
    static const char *fn = "bnn_auroc";
    if (!pos || !neg || npos < 1 || nneg < 1) {
        bnn__error(BNN_EINVAL, "%s: need at least one score of each class (npos %lld, nneg %lld)",
                   fn, (long long)npos, (long long)nneg);
        return NAN;
    }
    double *buf = sorted_desc(pos, npos, neg, nneg, fn);
    if (!buf) return NAN;
    struct auroc_acc a = {nneg, 0.0};
    walk_thresholds(buf, npos, buf + npos, nneg, auroc_step, &a);
    bnn__free(buf);
    return a.u / ((double)npos * (double)nneg);
}

struct aupr_acc {
    int64_t npos;
    double ap;
};
/* When everything scoring ≥ t is called positive, tp = tp_above + dp and fp = fp_above + dn;
 * recall rises by dp / npos and the step is weighted by the precision there. */
static void aupr_step(void *ctx, int64_t dp, int64_t dn, int64_t tp_above, int64_t fp_above) {
    struct aupr_acc *a = ctx;
    if (dp == 0) return; /* recall does not move, so the step adds nothing */
    const double tp = (double)(tp_above + dp), fp = (double)(fp_above + dn);
    a->ap += ((double)dp / (double)a->npos) * (tp / (tp + fp));
}

/* Average precision as scikit-learn's average_precision_score: AP = Σ_k (R_k − R_{k−1}) P_k
 * over the distinct scores t_1 > t_2 > …, with tied scores entering together and no
 * interpolation (unlike the trapezoidal area, which is optimistic; see the scikit-learn user
 * guide). With no negatives every precision is 1 and AP = 1. Returns NaN (detail in
 * bnn_last_error) with no positives, a NaN score, or no memory. */
double bnn_aupr(const double *pos, int64_t npos, const double *neg, int64_t nneg) {
    static const char *fn = "bnn_aupr";
    if (!pos || npos < 1 || nneg < 0 || (nneg > 0 && !neg)) {
        bnn__error(BNN_EINVAL, "%s: need at least one positive score (npos %lld, nneg %lld)", fn,
                   (long long)npos, (long long)nneg);
        return NAN;
    }
    double *buf = sorted_desc(pos, npos, neg, nneg, fn);
    if (!buf) return NAN;
    struct aupr_acc a = {npos, 0.0};
    walk_thresholds(buf, npos, buf + npos, nneg, aupr_step, &a);
    bnn__free(buf);
    return a.ap;
}

/* ---------------------------------------------------------------- regression */

int bnn_metrics_regression(struct bnn_reg_metrics *out, const double *mean, const double *var,
                           const double *y, int64_t n) {
    static const char *fn = "bnn_metrics_regression";
    if (!out || !mean || !var || !y)
        return bnn__error(BNN_EINVAL, "%s: out, mean, var and y must not be NULL", fn);
    if (n < 1) return bnn__error(BNN_EINVAL, "%s: n = %lld, need at least 1 example", fn,
                                 (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(mean[i]) || !isfinite(y[i]))
            return bnn__error(BNN_EINVAL, "the predicted mean %g or the target %g of example "
                              "%lld is not finite", mean[i], y[i], (long long)i);
        if (!(var[i] > 0.0) || isinf(var[i]))
            return bnn__error(BNN_EINVAL, "the predictive variance %g of example %lld is not "
                              "positive and finite", var[i], (long long)i);
    }
    double se = 0.0, nll = 0.0, in1 = 0.0, in2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double d = y[i] - mean[i], v = var[i];
        se += d * d;
        /* −log N(y; μ, v) = ½ log(2π v) + (y − μ)² / (2v). */
        nll += 0.5 * log(TWO_PI * v) + d * d / (2.0 * v);
        /* The closed interval |y − μ| ≤ z √v, in this form: √ is correctly rounded and scaling
         * by z = 1 or 2 is exact, so the test rounds once, exactly as the numpy reference
         * (abs(y - mean) <= z * sqrt(var)) does. Targets exactly on the edge (rows 0–7 of the
         * fixture) are inside. The squared form d² ≤ z² v rounds d² instead and could disagree
         * with the reference one ulp away from an edge. */
        const double ad = fabs(d), sd = sqrt(v);
        in1 += ad <= sd ? 1.0 : 0.0;
        in2 += ad <= 2.0 * sd ? 1.0 : 0.0;
    }
    const double dn = (double)n;
    out->n = n;
    out->rmse = sqrt(se / dn);
    out->nll = nll / dn;
    out->coverage_1sd = in1 / dn;
    out->coverage_2sd = in2 / dn;
    return 0;
}

/* log N(y; μ, v). */
double bnn__log_normal(double y, double mu, double v) {
    const double d = y - mu;
    return -0.5 * log(TWO_PI * v) - d * d / (2.0 * v);
}

/* means, vars: S × n; mean, var, nll: n. The moments of an equally weighted mixture: the mean of
 * the component means, and the law of total variance mean_s v_s + mean_s (μ_s − mean)², in that
 * two-pass form because E[x²] − E[x]² cancels (3e-14 off on the fixture). The NLL is
 * −(logsumexp_s log N(y; μ_s, v_s) − log S), shifted by the largest term so no exp underflows
 * to a log of 0 for a far target. Invalid sizes leave the outputs untouched; the NLL needs y. */
void bnn_gaussian_mixture(double *mean, double *var, double *nll, const double *means,
                          const double *vars, const double *y, int64_t s, int64_t n) {
    if (!means || !vars || s < 1 || n < 1) return;
    const double ds = (double)s;
    for (int64_t i = 0; i < n; i++) {
        if (mean || var) {
            double m = 0.0;
            for (int64_t t = 0; t < s; t++) m += means[t * n + i];
            m /= ds;
            if (mean) mean[i] = m;
            if (var) {
                double ev = 0.0, spread = 0.0;
                for (int64_t t = 0; t < s; t++) {
                    const double d = means[t * n + i] - m;
                    ev += vars[t * n + i];
                    spread += d * d;
                }
                var[i] = ev / ds + spread / ds;
            }
        }
        if (nll && y) {
            double mx = -INFINITY;
            bool nan = false; /* a NaN term makes the NLL NaN, also when every term is NaN */
            for (int64_t t = 0; t < s; t++) {
                const double l = bnn__log_normal(y[i], means[t * n + i], vars[t * n + i]);
                nan |= isnan(l);
                if (l > mx) mx = l;
            }
            double sum = 0.0;
            /* With every term −∞ (or NaN) the shift is not finite; the NLL is then +∞ (NaN),
             * which is the truth, so skip the exp that would produce NaN from −∞ − −∞. */
            if (isfinite(mx))
                for (int64_t t = 0; t < s; t++)
                    sum += exp(bnn__log_normal(y[i], means[t * n + i], vars[t * n + i]) - mx);
            nll[i] = nan ? NAN : isfinite(mx) ? -(mx + log(sum) - log(ds)) : -mx;
        }
    }
}
