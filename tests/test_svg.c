/* SVG figures: each function writes a file that a small checker finds well formed (every '<'
 * opens a tag, tags nest and close, entities are known), with the expected number of drawn
 * elements for a known input, its title escaped, and the error codes of the header for bad sizes
 * and unwritable paths. The figures are left in BNN_TEST_TMP (svg_*.svg) so that they can be
 * looked at or rendered with tests/render_svg.sh. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* getpid, access, mkdir; CMake defines the same value */
#endif
#include "check.h"
#include "core/internal.h"

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef BNN_TEST_TMP
#define BNN_TEST_TMP "/tmp"
#endif

/* The figures' special characters: each must come out escaped. */
#define NASTY "A & B <c> \"d\" 'e'"
#define NASTY_ESCAPED "A &amp; B &lt;c&gt; &quot;d&quot; &apos;e&apos;"

static const char *tmp_path(const char *leaf) {
    static char buf[4][512];
    static int k = 0;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", BNN_TEST_TMP, leaf);
    return p;
}

/* The whole file as a NUL-terminated string (caller frees), or NULL. */
static char *slurp(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1))) {
            if (fread(s, 1, (size_t)n, f) != (size_t)n) {
                free(s);
                s = NULL;
            } else {
                s[n] = '\0';
                if (size) *size = n;
            }
        }
    }
    fclose(f);
    return s;
}

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == ':' || c == '_';
}

/* A small well-formedness check, enough to catch what a hand-written writer gets wrong: every
 * '<' starts a declaration, a start tag, an end tag or an empty-element tag; end tags match the
 * open element; attribute values are quoted (so a '>' inside one cannot end a tag early); '&'
 * starts a known entity; one root element <svg>. Counts <svg> and <g> starts and ends. */
typedef struct xml_stats {
    int svg_open, svg_close, g_open, g_close, elements;
} xml_stats;

static bool well_formed(const char *s, xml_stats *st) {
    memset(st, 0, sizeof *st);
    enum { MAXD = 64 };
    char stack[MAXD][32];
    int depth = 0, roots = 0;
    for (const char *p = s; *p;) {
        if (*p == '&') {
            const char *ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            bool ok = false;
            for (int i = 0; i < 5; i++)
                ok = ok || strncmp(p, ents[i], strlen(ents[i])) == 0;
            if (!ok) return false;
            p++;
            continue;
        }
        if (*p == '>') return false; /* a bare '>' in text is legal XML but never written by us */
        if (*p != '<') {
            p++;
            continue;
        }
        if (p[1] == '?') { /* the declaration, only at the very start */
            if (p != s) return false;
            const char *e = strstr(p, "?>");
            if (!e) return false;
            p = e + 2;
            continue;
        }
        bool closing = p[1] == '/';
        const char *q = p + 1 + closing;
        char name[32];
        size_t nl = 0;
        while (name_char(*q) && nl < sizeof name - 1)
            name[nl++] = *q++;
        name[nl] = '\0';
        if (nl == 0) return false;
        /* Scans to the end of the tag, skipping quoted attribute values. */
        bool empty = false;
        for (;;) {
            if (!*q) return false;
            if (*q == '"') {
                const char *e = strchr(q + 1, '"');
                if (!e) return false;
                for (const char *c = q + 1; c < e; c++)
                    if (*c == '<') return false;
                q = e + 1;
                continue;
            }
            if (*q == '<') return false;
            if (*q == '/' && q[1] == '>') {
                empty = true;
                q += 2;
                break;
            }
            if (*q == '>') {
                q++;
                break;
            }
            q++;
        }
        bool is_svg = strcmp(name, "svg") == 0, is_g = strcmp(name, "g") == 0;
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0) return false;
            depth--;
            st->svg_close += is_svg;
            st->g_close += is_g;
        } else {
            st->elements++;
            st->svg_open += is_svg;
            st->g_open += is_g;
            if (depth == 0) roots++;
            if (!empty) {
                if (depth == MAXD) return false;
                snprintf(stack[depth++], sizeof stack[0], "%s", name);
            }
        }
        p = q;
    }
    return depth == 0 && roots == 1;
}

/* Occurrences of needle in s. */
static int count_str(const char *s, const char *needle) {
    int n = 0;
    size_t len = strlen(needle);
    for (const char *p = strstr(s, needle); p; p = strstr(p + len, needle))
        n++;
    return n;
}

/* Elements named `elem` inside the <g> whose id is `id`, nested groups included; −1 when there
 * is no such group. */
static int count_in_group(const char *s, const char *id, const char *elem) {
    char key[64];
    snprintf(key, sizeof key, "<g id=\"%s\"", id);
    const char *p = strstr(s, key);
    if (!p) return -1;
    p = strchr(p, '>');
    if (!p) return -1;
    int depth = 1, n = 0;
    size_t el = strlen(elem);
    for (p++; *p && depth > 0; p++) {
        if (*p != '<') continue;
        if (strncmp(p, "</g>", 4) == 0)
            depth--;
        else if (strncmp(p, "<g", 2) == 0 && (p[2] == ' ' || p[2] == '>'))
            depth++;
        else if (strncmp(p + 1, elem, el) == 0 && (p[1 + el] == ' ' || p[1 + el] == '/'))
            n++;
    }
    return n;
}

/* The checks every figure passes: it exists, opens with the XML declaration and an SVG root in
 * the SVG namespace with a viewBox, is well formed with balanced <svg> and <g>, and no temporary
 * file is left beside it. Returns the contents (caller frees) or NULL. */
static char *check_figure(const char *path) {
    long size = 0;
    char *s = slurp(path, &size);
    CHECK(s != NULL);
    if (!s) return NULL;
    CHECK(strncmp(s, "<?xml", 5) == 0 || strncmp(s, "<svg", 4) == 0);
    CHECK(strstr(s, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
    CHECK(strstr(s, "viewBox=\"0 0 ") != NULL);
    CHECK(strstr(s, "sans-serif") != NULL);
    xml_stats st;
    bool ok = well_formed(s, &st);
    CHECK(ok);
    if (!ok) fprintf(stderr, "  (%s is not well formed)\n", path);
    CHECK_EQ_INT(st.svg_open, 1);
    CHECK_EQ_INT(st.svg_close, 1);
    CHECK_EQ_INT(st.g_open, st.g_close);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    return s;
}

/* ---------------------------------------------------------------- reliability */

/* Over-confident predictions of a 3-class problem: the softmax of sharpened noisy logits, the
 * typical shape of an unregularised network's reliability diagram. */
static void make_overconfident(double *probs, int32_t *labels, int64_t n, int64_t k) {
    bnn_rng rng = bnn_rng_make(7, 0);
    float z[8];
    for (int64_t i = 0; i < n; i++) {
        labels[i] = (int32_t)(i % k);
        bnn_rng_normal(&rng, z, k);
        double lg[8], mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < k; j++) {
            lg[j] = 2.2 * (1.2 * z[j] + (j == labels[i] ? 1.6 : 0.0));
            mx = fmax(mx, lg[j]);
        }
        for (int64_t j = 0; j < k; j++)
            sum += exp(lg[j] - mx);
        for (int64_t j = 0; j < k; j++)
            probs[i * k + j] = exp(lg[j] - mx) / sum;
    }
}

static void test_reliability(void) {
    enum { N = 4000, K = 3 };
    double *probs = malloc(sizeof(double) * N * K);
    int32_t *labels = malloc(sizeof(int32_t) * N);
    REQUIRE(probs && labels);
    make_overconfident(probs, labels, N, K);
    struct bnn_cls_metrics m;
    REQUIRE(bnn_metrics_classification(&m, probs, labels, N, K, 15) == 0);
    int nonempty = 0, gaps = 0;
    for (int64_t i = 0; i < m.nbins; i++) {
        nonempty += m.bin_count[i] > 0;
        gaps += m.bin_count[i] > 0 && m.bin_accuracy[i] != m.bin_confidence[i];
    }
    const char *path = tmp_path("svg_reliability.svg");
    CHECK_EQ_INT(bnn_svg_reliability(path, &m, "Reliability: over-confident MLP"), 0);
    char *s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-bars", "rect"), nonempty);
        CHECK_EQ_INT(count_in_group(s, "bnn-gaps", "rect"), gaps);
        CHECK_EQ_INT(count_in_group(s, "bnn-counts", "rect"), nonempty);
        CHECK(strstr(s, ">Reliability: over-confident MLP</text>") != NULL);
        char ece[64];
        snprintf(ece, sizeof ece, "ECE = %.4f", m.ece);
        CHECK(strstr(s, ece) != NULL);
        CHECK(strstr(s, ">Confidence</text>") != NULL);
        free(s);
    }

    /* Hand-made bins: two of five empty, one perfectly calibrated. */
    struct bnn_cls_metrics h;
    memset(&h, 0, sizeof h);
    h.n = 10;
    h.nbins = 5;
    const int64_t cnt[5] = {0, 3, 0, 5, 2};
    const double acc[5] = {0, 0.3333333, 0, 0.6, 1.0}, conf[5] = {0, 0.35, 0, 0.7, 0.9};
    for (int i = 0; i < 5; i++) {
        h.bin_count[i] = cnt[i];
        h.bin_accuracy[i] = acc[i];
        h.bin_confidence[i] = conf[i];
    }
    h.bin_accuracy[1] = h.bin_confidence[1]; /* calibrated: no gap drawn */
    h.ece = 0.06;
    h.mce = 0.1;
    path = tmp_path("svg_reliability_small.svg");
    CHECK_EQ_INT(bnn_svg_reliability(path, &h, NASTY), 0);
    s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-bars", "rect"), 3);
        CHECK_EQ_INT(count_in_group(s, "bnn-gaps", "rect"), 2);
        CHECK_EQ_INT(count_in_group(s, "bnn-counts", "rect"), 3);
        CHECK(strstr(s, NASTY_ESCAPED) != NULL);
        CHECK(strstr(s, NASTY) == NULL);
        free(s);
    }
    /* Bytes that are not UTF-8 would make a browser reject the whole figure: they become
     * U+FFFD, while valid multi-byte characters pass through. */
    CHECK_EQ_INT(bnn_svg_reliability(path, &h, "bad \xff\xc3( byte, good \xcf\x83"), 0);
    s = check_figure(path);
    if (s) {
        CHECK(strstr(s, "bad \xef\xbf\xbd\xef\xbf\xbd( byte, good \xcf\x83</text>") != NULL);
        free(s);
    }
    /* No title at all is fine. */
    CHECK_EQ_INT(bnn_svg_reliability(path, &h, NULL), 0);

    /* Bad inputs: nothing is written. */
    const char *bad = tmp_path("svg_reliability_bad.svg");
    remove(bad);
    struct bnn_cls_metrics e = h;
    e.nbins = 0;
    CHECK_EQ_INT(bnn_svg_reliability(bad, &e, "t"), BNN_EINVAL);
    e = h;
    e.nbins = BNN_MAX_BINS + 1;
    CHECK_EQ_INT(bnn_svg_reliability(bad, &e, "t"), BNN_EINVAL);
    e = h;
    e.n = 0;
    CHECK_EQ_INT(bnn_svg_reliability(bad, &e, "t"), BNN_EINVAL);
    e = h;
    e.bin_count[0] = 1; /* the counts no longer sum to n */
    CHECK_EQ_INT(bnn_svg_reliability(bad, &e, "t"), BNN_EINVAL);
    e = h;
    e.bin_accuracy[3] = NAN;
    CHECK_EQ_INT(bnn_svg_reliability(bad, &e, "t"), BNN_EINVAL);
    e = h;
    e.bin_confidence[4] = 1.5;
    CHECK_EQ_INT(bnn_svg_reliability(bad, &e, "t"), BNN_EINVAL);
    e = h;
    e.ece = NAN;
    CHECK_EQ_INT(bnn_svg_reliability(bad, &e, "t"), BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_reliability(bad, NULL, "t"), BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_reliability(NULL, &h, "t"), BNN_EINVAL);
    CHECK(access(bad, F_OK) != 0);
    free(probs);
    free(labels);
}

/* ---------------------------------------------------------------- lines */

static void test_lines(void) {
    enum { N = 50 };
    double x[N], train[N], val[N], ece[N];
    for (int i = 0; i < N; i++) {
        x[i] = i + 1;
        train[i] = 0.25 + 2.0 * exp(-0.12 * i);
        val[i] = 0.38 + 1.9 * exp(-0.10 * i) + 0.004 * (i > 25 ? i - 25 : 0);
        ece[i] = 0.02 + 0.3 * exp(-0.08 * i);
    }
    ece[20] = NAN; /* a missing value splits the line in two */
    const double *ys[3] = {train, val, ece};
    const char *names[3] = {"train NLL", "val NLL <held-out> & more", "ECE"};
    const char *path = tmp_path("svg_lines.svg");
    CHECK_EQ_INT(bnn_svg_lines(path, "Training curves", "epoch", "loss", x, N, ys, names, 3), 0);
    char *s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-lines", "polyline"), 4);
        CHECK_EQ_INT(count_in_group(s, "bnn-legend", "line"), 3);
        CHECK_EQ_INT(count_str(s, "<g id=\"bnn-markers\""), 0); /* too many points for markers */
        CHECK(strstr(s, "val NLL &lt;held-out&gt; &amp; more") != NULL);
        CHECK(strstr(s, ">Training curves</text>") != NULL);
        CHECK(strstr(s, ">epoch</text>") != NULL);
        CHECK(strstr(s, ">loss</text>") != NULL);
        free(s);
    }

    /* Few points get markers; a single unnamed series gets no legend; a lone finite value
     * between gaps becomes a dot. */
    double xs[8], y1[8];
    for (int i = 0; i < 8; i++) {
        xs[i] = 0.5 * i - 1.0;
        y1[i] = xs[i] * xs[i];
    }
    y1[1] = NAN;
    y1[3] = NAN; /* y1[2] is alone */
    const double *one[1] = {y1};
    path = tmp_path("svg_lines_small.svg");
    CHECK_EQ_INT(bnn_svg_lines(path, NASTY, NULL, NULL, xs, 8, one, NULL, 1), 0);
    s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-lines", "polyline"), 1);
        CHECK_EQ_INT(count_in_group(s, "bnn-lines", "circle"), 2); /* the lone values */
        CHECK_EQ_INT(count_in_group(s, "bnn-markers", "circle"), 6);
        CHECK_EQ_INT(count_str(s, "bnn-legend"), 0);
        CHECK(strstr(s, NASTY_ESCAPED) != NULL);
        free(s);
    }
    /* A constant series still gets an axis. */
    double flat[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const double *fl[1] = {flat};
    path = tmp_path("svg_lines_flat.svg");
    CHECK_EQ_INT(bnn_svg_lines(path, "flat", "x", "y", xs, 8, fl, NULL, 1), 0);
    free(check_figure(path));

    const char *bad = tmp_path("svg_lines_bad.svg");
    remove(bad);
    CHECK_EQ_INT(bnn_svg_lines(bad, "t", "x", "y", x, 1, ys, names, 3), BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_lines(bad, "t", "x", "y", x, 0, ys, names, 3), BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_lines(bad, "t", "x", "y", x, N, ys, names, 0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_lines(bad, "t", "x", "y", NULL, N, ys, names, 3), BNN_EINVAL);
    const double *with_null[2] = {train, NULL};
    CHECK_EQ_INT(bnn_svg_lines(bad, "t", "x", "y", x, N, with_null, names, 2), BNN_EINVAL);
    double xnan[N];
    memcpy(xnan, x, sizeof x);
    xnan[7] = NAN;
    CHECK_EQ_INT(bnn_svg_lines(bad, "t", "x", "y", xnan, N, ys, names, 3), BNN_EINVAL);
    double allnan[8];
    for (int i = 0; i < 8; i++)
        allnan[i] = NAN;
    const double *an[1] = {allnan};
    CHECK_EQ_INT(bnn_svg_lines(bad, "t", "x", "y", xs, 8, an, NULL, 1), BNN_EINVAL);
    CHECK(access(bad, F_OK) != 0);
}

/* ---------------------------------------------------------------- field */

/* A Parzen-window classifier on the moons, p(class 1 | x) with a pseudo-count that pulls it to
 * ½ away from the data: the look of a Bayesian network's predictive on this toy problem. */
static void parzen_field(double *field, int64_t nx, int64_t ny, double x0, double x1, double y0,
                         double y1, const float *pts, const int32_t *labels, int64_t n) {
    for (int64_t j = 0; j < ny; j++)
        for (int64_t i = 0; i < nx; i++) {
            double gx = x0 + (x1 - x0) * (i + 0.5) / nx, gy = y0 + (y1 - y0) * (j + 0.5) / ny;
            double k[2] = {0.05, 0.05};
            for (int64_t p = 0; p < n; p++) {
                double dx = gx - pts[2 * p], dy = gy - pts[2 * p + 1];
                k[labels[p]] += exp(-(dx * dx + dy * dy) / (2 * 0.3 * 0.3));
            }
            field[j * nx + i] = k[1] / (k[0] + k[1]);
        }
}

static void test_field(void) {
    bnn_dataset *ds = NULL;
    REQUIRE(bnn_toy_moons(&ds, 160, 0.12, 3) == 0);
    const int64_t npts = bnn_dataset_n(ds);
    const float *pts = bnn_dataset_cx(ds);
    const int32_t *labels = bnn_dataset_clabels(ds);
    enum { NX = 120, NY = 90 };
    double *field = malloc(sizeof(double) * NX * NY);
    REQUIRE(field);
    const double x0 = -1.6, x1 = 2.6, y0 = -1.1, y1 = 1.6;
    parzen_field(field, NX, NY, x0, x1, y0, y1, pts, labels, npts);
    const char *path = tmp_path("svg_field.svg");
    CHECK_EQ_INT(bnn_svg_field(path, "Predictive p(y = 1 | x) on two moons", field, NX, NY, x0, x1,
                               y0, y1, 0.0, 1.0, "p(y = 1 | x)", pts, labels, npts),
                 0);
    char *s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-cells", "rect"), NX * NY);
        CHECK_EQ_INT(count_in_group(s, "bnn-points", "circle"), npts);
        CHECK_EQ_INT(count_in_group(s, "bnn-legend", "circle"), 2);
        CHECK(strstr(s, "crispEdges") != NULL);
        CHECK(strstr(s, ">Predictive p(y = 1 | x) on two moons</text>") != NULL);
        CHECK(strstr(s, "fill=\"#b3b3b3\"") == NULL); /* no NaN, no grey */
        /* The extreme colours of the map: its ends are viridis' own end colours. */
        free(s);
    }

    /* Known small field: the corners at the ends of the colour map, a NaN as a grey cell, a
     * point with a NaN coordinate skipped, labels escaped. */
    double small[3 * 2] = {0.0, 0.5, 1.0, NAN, 2.0, -1.0}; /* row 0 (bottom), row 1 (top) */
    float sp[3 * 2] = {0.1f, 0.1f, 0.9f, 0.9f, NAN, 0.5f};
    int32_t sl[3] = {0, 1, 12};
    path = tmp_path("svg_field_small.svg");
    CHECK_EQ_INT(
        bnn_svg_field(path, NASTY, small, 3, 2, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, NASTY, sp, sl, 3), 0);
    s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-cells", "rect"), 6);
        CHECK_EQ_INT(count_in_group(s, "bnn-points", "circle"), 2);
        CHECK_EQ_INT(count_str(s, "fill=\"#b3b3b3\""), 2); /* the NaN cell and its legend swatch */
        /* vmin and below map to viridis(0), vmax and above to viridis(1). */
        CHECK_EQ_INT(
            count_str(s, "<rect x=\"0\" y=\"1\" width=\"1\" height=\"1\" fill=\"#440154\""), 1);
        CHECK_EQ_INT(
            count_str(s, "<rect x=\"2\" y=\"1\" width=\"1\" height=\"1\" fill=\"#fde725\""), 1);
        CHECK_EQ_INT(
            count_str(s, "<rect x=\"1\" y=\"0\" width=\"1\" height=\"1\" fill=\"#fde725\""), 1);
        CHECK_EQ_INT(
            count_str(s, "<rect x=\"2\" y=\"0\" width=\"1\" height=\"1\" fill=\"#440154\""), 1);
        CHECK_EQ_INT(count_str(s, "fill=\"#21908c\""), 1); /* 0.5 is the middle knot */
        CHECK_EQ_INT(count_str(s, NASTY_ESCAPED), 2);      /* title and colour-bar label */
        free(s);
    }
    /* No points at all. */
    path = tmp_path("svg_field_nopoints.svg");
    CHECK_EQ_INT(bnn_svg_field(path, "empty", small, 3, 2, 0, 1, 0, 1, -1, 1, NULL, NULL, NULL, 0),
                 0);
    free(check_figure(path));

    /* The largest grid the CLI draws stays a few megabytes. */
    enum { BIG = 200 };
    double *big = malloc(sizeof(double) * BIG * BIG);
    REQUIRE(big);
    for (int i = 0; i < BIG * BIG; i++)
        big[i] = (double)(i % 997) / 997.0;
    path = tmp_path("svg_field_big.svg");
    CHECK_EQ_INT(
        bnn_svg_field(path, "200 x 200", big, BIG, BIG, 0, 1, 0, 1, 0, 1, "z", pts, labels, npts),
        0);
    long size = 0;
    s = slurp(path, &size);
    CHECK(s != NULL);
    if (s) CHECK_EQ_INT(count_in_group(s, "bnn-cells", "rect"), BIG * BIG);
    CHECK(size > 0 && size < 3L * 1024 * 1024);
    free(s);
    remove(path);
    free(big);

    const char *bad = tmp_path("svg_field_bad.svg");
    remove(bad);
    CHECK_EQ_INT(bnn_svg_field(bad, "t", small, 0, 2, 0, 1, 0, 1, 0, 1, "z", NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_field(bad, "t", small, 3, -1, 0, 1, 0, 1, 0, 1, "z", NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_field(bad, "t", small, 3, 2, 1, 0, 0, 1, 0, 1, "z", NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_field(bad, "t", small, 3, 2, 0, 1, 0, NAN, 0, 1, "z", NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_field(bad, "t", small, 3, 2, 0, 1, 0, 1, 1, 1, "z", NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_field(bad, "t", small, 3, 2, 0, 1, 0, 1, 0, INFINITY, "z", NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_field(bad, "t", small, 3, 2, 0, 1, 0, 1, 0, 1, "z", NULL, NULL, 2),
                 BNN_EINVAL);
    int32_t neg[3] = {0, -1, 1};
    CHECK_EQ_INT(bnn_svg_field(bad, "t", small, 3, 2, 0, 1, 0, 1, 0, 1, "z", sp, neg, 3),
                 BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_field(bad, "t", NULL, 3, 2, 0, 1, 0, 1, 0, 1, "z", NULL, NULL, 0),
                 BNN_EINVAL);
    CHECK(access(bad, F_OK) != 0);
    free(field);
    bnn_dataset_free(ds);
}

/* ---------------------------------------------------------------- bands */

static void test_bands(void) {
    bnn_dataset *train = NULL;
    REQUIRE(bnn_toy_sine_gap(&train, 40, 0.1, 5, false) == 0);
    const int64_t nd = bnn_dataset_n(train);
    const float *dx = bnn_dataset_cx(train), *dy = bnn_dataset_ctargets(train);
    enum { N = 121 };
    double x[N], mean[N], sd[N];
    /* A GP-like predictive: sin(x) near the data, reverting to 0 with growing σ in the gap. */
    for (int i = 0; i < N; i++) {
        x[i] = -6.0 + 12.0 * i / (N - 1);
        double d = INFINITY;
        for (int64_t j = 0; j < nd; j++)
            d = fmin(d, fabs(x[i] - dx[j]));
        double w = exp(-d * d / 0.8);
        mean[i] = w * sin(x[i]);
        sd[i] = 0.1 + 0.9 * (1.0 - w);
    }
    const char *path = tmp_path("svg_bands.svg");
    CHECK_EQ_INT(
        bnn_svg_bands(path, "Sine with a gap: predictive of the BNN", x, mean, sd, N, dx, dy, nd),
        0);
    char *s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-bands", "polygon"), 2);
        CHECK_EQ_INT(count_str(s, "<polyline id=\"bnn-mean\""), 1);
        CHECK_EQ_INT(count_in_group(s, "bnn-data", "circle"), nd);
        CHECK_EQ_INT(count_in_group(s, "bnn-legend", "text"), 4);
        CHECK(strstr(s, ">Sine with a gap: predictive of the BNN</text>") != NULL);
        free(s);
    }
    /* No data; a NaN data point is skipped; the title escaped. */
    float px[3] = {0.0f, NAN, 1.0f}, py[3] = {0.0f, 1.0f, 2.0f};
    path = tmp_path("svg_bands_small.svg");
    CHECK_EQ_INT(bnn_svg_bands(path, NASTY, x, mean, sd, N, px, py, 3), 0);
    s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-data", "circle"), 2);
        CHECK(strstr(s, NASTY_ESCAPED) != NULL);
        free(s);
    }
    CHECK_EQ_INT(bnn_svg_bands(path, "no data", x, mean, sd, N, NULL, NULL, 0), 0);
    s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(count_in_group(s, "bnn-data", "circle"), 0);
        CHECK_EQ_INT(count_in_group(s, "bnn-legend", "text"), 3);
        free(s);
    }

    const char *bad = tmp_path("svg_bands_bad.svg");
    remove(bad);
    CHECK_EQ_INT(bnn_svg_bands(bad, "t", x, mean, sd, 1, NULL, NULL, 0), BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_bands(bad, "t", x, mean, sd, N, NULL, NULL, 3), BNN_EINVAL);
    CHECK_EQ_INT(bnn_svg_bands(bad, "t", x, mean, sd, N, px, py, -1), BNN_EINVAL);
    double xr[N], mn[N], sn[N];
    memcpy(xr, x, sizeof x);
    xr[10] = xr[9] - 1.0; /* not sorted */
    CHECK_EQ_INT(bnn_svg_bands(bad, "t", xr, mean, sd, N, NULL, NULL, 0), BNN_EINVAL);
    memcpy(mn, mean, sizeof mean);
    mn[4] = NAN;
    CHECK_EQ_INT(bnn_svg_bands(bad, "t", x, mn, sd, N, NULL, NULL, 0), BNN_EINVAL);
    memcpy(sn, sd, sizeof sd);
    sn[4] = -0.1;
    CHECK_EQ_INT(bnn_svg_bands(bad, "t", x, mean, sn, N, NULL, NULL, 0), BNN_EINVAL);
    CHECK(access(bad, F_OK) != 0);
    bnn_dataset_free(train);
}

/* ---------------------------------------------------------------- files */

static void test_io(void) {
    double x[3] = {0, 1, 2}, y[3] = {1, 2, 1};
    const double *ys[1] = {y};
    /* A directory that does not exist: BNN_EIO, the detail names the path, nothing created. */
    const char *missing = tmp_path("svg_no_such_dir/fig.svg");
    CHECK_EQ_INT(bnn_svg_lines(missing, "t", "x", "y", x, 3, ys, NULL, 1), BNN_EIO);
    CHECK(strstr(bnn_last_error(), missing) != NULL);
    CHECK(access(missing, F_OK) != 0);

    /* A path that is a directory: the temporary file is written and then cannot be renamed
     * over it, which must remove the temporary file again. */
    const char *dir = tmp_path("svg_is_a_dir");
    mkdir(dir, 0755);
    struct stat sb;
    REQUIRE(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_EQ_INT(bnn_svg_lines(dir, "t", "x", "y", x, 3, ys, NULL, 1), BNN_EIO);
    CHECK(strstr(bnn_last_error(), dir) != NULL);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    rmdir(dir);

    double field[4] = {0, 1, 2, 3};
    CHECK_EQ_INT(bnn_svg_field(missing, "t", field, 2, 2, 0, 1, 0, 1, 0, 3, "z", NULL, NULL, 0),
                 BNN_EIO);
    CHECK_EQ_INT(bnn_svg_bands(missing, "t", x, y, y, 3, NULL, NULL, 0), BNN_EIO);
    struct bnn_cls_metrics m;
    memset(&m, 0, sizeof m);
    m.n = 1;
    m.nbins = 1;
    m.bin_count[0] = 1;
    m.bin_accuracy[0] = 1;
    m.bin_confidence[0] = 0.9;
    CHECK_EQ_INT(bnn_svg_reliability(missing, &m, "t"), BNN_EIO);

    /* Writing over an existing figure replaces it whole. */
    const char *path = tmp_path("svg_replace.svg");
    CHECK_EQ_INT(bnn_svg_lines(path, "first", "x", "y", x, 3, ys, NULL, 1), 0);
    CHECK_EQ_INT(bnn_svg_lines(path, "second", "x", "y", x, 3, ys, NULL, 1), 0);
    char *s = check_figure(path);
    if (s) {
        CHECK(strstr(s, ">second</text>") != NULL);
        CHECK(strstr(s, ">first</text>") == NULL);
        free(s);
    }
    remove(path);
}

int main(void) {
    mkdir(BNN_TEST_TMP, 0755); /* normally made by CMake; harmless when it exists */
    test_reliability();
    test_lines();
    test_field();
    test_bands();
    test_io();
    return CHECK_DONE();
}
