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

/* How many of a field's cells at column x, row y have the fill colour `fill` (1 if drawn so). */
static int cell_fill(const char *s, int x, int y, const char *fill) {
    char key[96];
    snprintf(key, sizeof key, "<rect x=\"%d\" y=\"%d\" width=\"1\" height=\"1\" fill=\"%s\"", x, y,
             fill);
    return count_str(s, key);
}

/* ---------------------------------------------------------------- geometry
 * What a figure means, read back from it: the frames (the plotting areas), the rectangles of a
 * group, the points of a polyline or polygon and the y tick labels, so that a test can compare
 * drawn positions with the values they stand for. Coordinates are printed to 0.01. */

#define PX_TOL 0.011

/* The number in attribute `name` of the tag that starts at `tag`; NAN when the tag has none. */
static double attr_num(const char *tag, const char *name) {
    const char *end = strchr(tag, '>');
    char key[48];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *p = strstr(tag, key);
    if (!p || !end || p > end) return NAN;
    return strtod(p + strlen(key), NULL);
}

/* Whether the tag that starts at `tag` contains `text`. */
static bool tag_has(const char *tag, const char *text) {
    const char *end = strchr(tag, '>'), *p = strstr(tag, text);
    return p && end && p < end;
}

/* x, y, width and height of the <rect>s from `from` up to `to` (NULL: the end) that contain
 * `with` (NULL: any); their count, at most max. */
static int rects(const char *from, const char *to, const char *with, double (*r)[4], int max) {
    int n = 0;
    for (const char *p = strstr(from, "<rect "); p && (!to || p < to) && n < max;
         p = strstr(p + 1, "<rect ")) {
        if (with && !tag_has(p, with)) continue;
        r[n][0] = attr_num(p, "x");
        r[n][1] = attr_num(p, "y");
        r[n][2] = attr_num(p, "width");
        r[n][3] = attr_num(p, "height");
        n++;
    }
    return n;
}

/* The frames of a figure (left, top, width, height), in the order drawn. */
static int frames(const char *s, double (*r)[4], int max) {
    return rects(s, NULL, "fill=\"none\" stroke=\"#444444\"", r, max);
}

/* The <rect>s of the group with id `id`. */
static int group_rects(const char *s, const char *id, double (*r)[4], int max) {
    char key[64];
    snprintf(key, sizeof key, "<g id=\"%s\"", id);
    const char *p = strstr(s, key);
    if (!p) return 0;
    return rects(p, strstr(p, "</g>"), NULL, r, max);
}

/* The "x,y x,y ..." points of the element that starts at `tag`; their count, at most max. */
static int tag_points(const char *tag, double (*pt)[2], int max) {
    const char *p = strstr(tag, " points=\"");
    if (!p || p > strchr(tag, '>')) return 0;
    p += 9;
    int n = 0;
    while (*p != '"' && n < max) {
        char *e;
        pt[n][0] = strtod(p, &e);
        if (*e != ',') break;
        pt[n][1] = strtod(e + 1, &e);
        n++;
        p = e;
        while (*p == ' ')
            p++;
    }
    return n;
}

/* The y tick labels of a figure (right-aligned 11.5-unit text): value and baseline y. */
static int yticks(const char *s, double (*t)[2], int max) {
    int n = 0;
    for (const char *p = strstr(s, "<text "); p && n < max; p = strstr(p + 1, "<text ")) {
        if (!tag_has(p, "text-anchor=\"end\" font-size=\"11.5\"")) continue;
        const char *v = strchr(p, '>') + 1;
        double sign = 1.0;
        if (strncmp(v, "\xe2\x88\x92", 3) == 0) { /* U+2212 MINUS SIGN */
            sign = -1.0;
            v += 3;
        }
        t[n][0] = sign * strtod(v, NULL);
        t[n][1] = attr_num(p, "y");
        n++;
    }
    return n;
}

/* Tick labels sit 0.36 of their font size below their tick. */
#define TICK_BASELINE (0.36 * 11.5)

/* Pixel y of value v on an axis that shows [lo, hi] over the frame top T, height H. */
static double px_y(double T, double H, double lo, double hi, double v) {
    return T + H - (v - lo) / (hi - lo) * H;
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
        /* The geometry: the y axis runs from 0 at the frame's bottom to 1 at its top, labelled
         * 0.0, 0.2, ..., 1.0; a bin's bar spans the bin and reaches its accuracy; a gap spans
         * accuracy to confidence; the diagonal runs from (0, 0) to (1, 1); and a count bar
         * reaches its count on the count axis below. */
        double fr[2][4], bars[8][4], gap[8][4], cnts[8][4], tk[32][2];
        REQUIRE(frames(s, fr, 2) == 2);
        const double L = fr[0][0], T = fr[0][1], W = fr[0][2], H = fr[0][3];
        const int nt = yticks(s, tk, 32);
        int main_ticks = 0;
        for (int k = 0; k < nt; k++) {
            if (tk[k][1] > T + H + TICK_BASELINE + 1) continue; /* the count axis */
            CHECK_NEAR(tk[k][0], 0.2 * main_ticks, 1e-9);
            CHECK_NEAR(tk[k][1] - TICK_BASELINE, px_y(T, H, 0, 1, tk[k][0]), PX_TOL);
            main_ticks++;
        }
        CHECK_EQ_INT(main_ticks, 6);
        const int filled[3] = {1, 3, 4};
        REQUIRE(group_rects(s, "bnn-bars", bars, 8) == 3);
        for (int k = 0; k < 3; k++) {
            const int i = filled[k];
            CHECK_NEAR(bars[k][0], L + W * i / 5.0, PX_TOL);
            CHECK_NEAR(bars[k][2], W / 5.0, PX_TOL);
            CHECK_NEAR(bars[k][1], px_y(T, H, 0, 1, h.bin_accuracy[i]), PX_TOL);
            CHECK_NEAR(bars[k][1] + bars[k][3], T + H, PX_TOL);
        }
        REQUIRE(group_rects(s, "bnn-gaps", gap, 8) == 2);
        for (int k = 0; k < 2; k++) {
            const int i = filled[k + 1];
            const double a = h.bin_accuracy[i], c = h.bin_confidence[i];
            CHECK_NEAR(gap[k][0], L + W * i / 5.0, PX_TOL);
            CHECK_NEAR(gap[k][1], px_y(T, H, 0, 1, fmax(a, c)), PX_TOL);
            CHECK_NEAR(gap[k][3], H * fabs(a - c), PX_TOL);
        }
        const char *diag = strstr(s, "stroke-dasharray=\"6 4\"");
        while (diag && diag > s && strncmp(diag, "<line ", 6) != 0)
            diag--;
        REQUIRE(diag && strncmp(diag, "<line ", 6) == 0);
        CHECK_NEAR(attr_num(diag, "x1"), L, PX_TOL);
        CHECK_NEAR(attr_num(diag, "y1"), T + H, PX_TOL);
        CHECK_NEAR(attr_num(diag, "x2"), L + W, PX_TOL);
        CHECK_NEAR(attr_num(diag, "y2"), T, PX_TOL);
        /* The count axis, from its lowest and highest tick labels. */
        const double HT = fr[1][1], HH = fr[1][3];
        double v0 = NAN, y0 = 0, v1 = NAN, y1 = 0;
        for (int k = 0; k < nt; k++)
            if (tk[k][1] > HT) {
                if (isnan(v0)) v0 = tk[k][0], y0 = tk[k][1];
                v1 = tk[k][0], y1 = tk[k][1];
            }
        REQUIRE(!isnan(v0) && v1 > v0);
        REQUIRE(group_rects(s, "bnn-counts", cnts, 8) == 3);
        for (int k = 0; k < 3; k++) {
            const int i = filled[k];
            CHECK_NEAR(cnts[k][0], L + W * i / 5.0, PX_TOL);
            CHECK_NEAR(v0 + (cnts[k][1] - (y0 - TICK_BASELINE)) / (y1 - y0) * (v1 - v0),
                       (double)h.bin_count[i], 0.01);
            CHECK_NEAR(cnts[k][1] + cnts[k][3], HT + HH, PX_TOL);
            CHECK(cnts[k][1] >= HT - PX_TOL);
        }
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
    /* An overlong encoding (of '/') is not UTF-8 either: each of its bytes becomes U+FFFD. Control
     * characters, which XML 1.0 forbids, become spaces (tab, newline and return stay). */
    CHECK_EQ_INT(bnn_svg_reliability(path, &h, "over\xe0\x80\xaflong, esc \x1b[1m, \x01\x1f end"),
                 0);
    s = check_figure(path);
    if (s) {
        CHECK(strstr(s, "over\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdlong, esc  [1m,    end</text>") !=
              NULL);
        for (const char *c = s; *c; c++)
            if ((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t' && *c != '\r') {
                CHECK(!"a control character in the figure");
                break;
            }
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
        /* Each drawn point sits at its value: the axes span the data of all series with a
         * margin of 5% of their range on each side. */
        double lo = INFINITY, hi = -INFINITY, fr[1][4], pt[N][2];
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < N; i++)
                if (isfinite(ys[k][i])) lo = fmin(lo, ys[k][i]), hi = fmax(hi, ys[k][i]);
        const double ry = hi - lo, rx = x[N - 1] - x[0];
        REQUIRE(frames(s, fr, 1) == 1);
        const char *g = strstr(s, "<g id=\"bnn-lines\"");
        REQUIRE(g != NULL);
        const char *pl = strstr(g, "<polyline ");
        int drawn = 0;
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < N && pl;) {
                int np = tag_points(pl, pt, N);
                for (int j = 0; j < np; j++, i++) {
                    while (i < N && !isfinite(ys[k][i]))
                        i++;
                    REQUIRE(i < N);
                    CHECK_NEAR(pt[j][0],
                               fr[0][0] + (x[i] - x[0] + 0.05 * rx) / (1.1 * rx) * fr[0][2],
                               PX_TOL);
                    CHECK_NEAR(pt[j][1],
                               px_y(fr[0][1], fr[0][3], lo - 0.05 * ry, hi + 0.05 * ry, ys[k][i]),
                               PX_TOL);
                    drawn++;
                }
                pl = strstr(pl + 1, "<polyline ");
                while (i < N && !isfinite(ys[k][i]))
                    i++;
            }
        CHECK_EQ_INT(drawn, 3 * N - 1);
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
    /* The axes cover every series, not only the first: each marker of a series ten times
     * higher than the first is inside the frame. */
    double low[8], high[8], fr[1][4];
    for (int i = 0; i < 8; i++)
        low[i] = 0.1 * i, high[i] = i;
    const double *two[2] = {low, high};
    path = tmp_path("svg_lines_two.svg");
    CHECK_EQ_INT(bnn_svg_lines(path, "two", "x", "y", xs, 8, two, NULL, 2), 0);
    s = check_figure(path);
    if (s) {
        REQUIRE(frames(s, fr, 1) == 1);
        const char *g = strstr(s, "<g id=\"bnn-markers\"");
        REQUIRE(g != NULL);
        int inside = 0;
        for (const char *c = strstr(g, "<circle "); c && c < strstr(g, "</g>");
             c = strstr(c + 1, "<circle ")) {
            const double cx = attr_num(c, "cx"), cy = attr_num(c, "cy");
            inside += cx >= fr[0][0] && cx <= fr[0][0] + fr[0][2] && cy >= fr[0][1] &&
                      cy <= fr[0][1] + fr[0][3];
        }
        CHECK_EQ_INT(inside, 16);
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
        CHECK_EQ_INT(cell_fill(s, 0, 1, "#440154"), 1);
        CHECK_EQ_INT(cell_fill(s, 2, 1, "#fde725"), 1);
        CHECK_EQ_INT(cell_fill(s, 1, 0, "#fde725"), 1);
        CHECK_EQ_INT(cell_fill(s, 2, 0, "#440154"), 1);
        CHECK_EQ_INT(count_str(s, "fill=\"#21908c\""), 1); /* 0.5 is the middle knot */
        CHECK_EQ_INT(count_str(s, NASTY_ESCAPED), 2);      /* title and colour-bar label */
        /* The point of class 12 is not drawn (NaN coordinate), so the legend does not name it. */
        CHECK_EQ_INT(count_in_group(s, "bnn-legend", "circle"), 2);
        CHECK(strstr(s, "class 10+") == NULL);
        free(s);
    }
    /* No points at all; colour limits [-1, 1], so 0 is the middle of the map and 0.5 three
     * quarters up it (viridis' seventh knot). */
    path = tmp_path("svg_field_nopoints.svg");
    CHECK_EQ_INT(bnn_svg_field(path, "empty", small, 3, 2, 0, 1, 0, 1, -1, 1, NULL, NULL, NULL, 0),
                 0);
    s = check_figure(path);
    if (s) {
        CHECK_EQ_INT(cell_fill(s, 0, 1, "#21908c"), 1);
        CHECK_EQ_INT(cell_fill(s, 1, 1, "#5dc863"), 1);
        CHECK_EQ_INT(cell_fill(s, 2, 0, "#440154"), 1);
        free(s);
    }

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
        /* Each band and the mean line at their values: the first polygon is mean ± 2 sd, the
         * second mean ± sd (upper edge left to right, lower edge back), on a y axis that spans
         * the ±2 sd band and the data with a margin of 5% of their range on each side. */
        double lo = INFINITY, hi = -INFINITY, fr[1][4], pt[2 * N][2];
        for (int i = 0; i < N; i++)
            lo = fmin(lo, mean[i] - 2 * sd[i]), hi = fmax(hi, mean[i] + 2 * sd[i]);
        double xlo = x[0], xhi = x[N - 1];
        for (int64_t j = 0; j < nd; j++) {
            lo = fmin(lo, dy[j]), hi = fmax(hi, dy[j]);
            xlo = fmin(xlo, dx[j]), xhi = fmax(xhi, dx[j]);
        }
        const double r = hi - lo;
        lo -= 0.05 * r, hi += 0.05 * r;
        REQUIRE(frames(s, fr, 1) == 1);
        const double T = fr[0][1], H = fr[0][3];
        const char *pg = strstr(s, "<polygon ");
        for (int band = 0; band < 2; band++) {
            const double k = band == 0 ? 2.0 : 1.0;
            REQUIRE(pg && tag_points(pg, pt, 2 * N) == 2 * N);
            for (int i = 0; i < N; i++) {
                CHECK_NEAR(pt[i][1], px_y(T, H, lo, hi, mean[i] + k * sd[i]), PX_TOL);
                CHECK_NEAR(pt[2 * N - 1 - i][1], px_y(T, H, lo, hi, mean[i] - k * sd[i]), PX_TOL);
                CHECK_NEAR(pt[i][0], pt[2 * N - 1 - i][0], 1e-9);
            }
            pg = strstr(pg + 1, "<polygon ");
        }
        const char *ml = strstr(s, "<polyline id=\"bnn-mean\"");
        REQUIRE(ml && tag_points(ml, pt, N) == N);
        for (int i = 0; i < N; i++) {
            CHECK_NEAR(pt[i][0], fr[0][0] + (x[i] - xlo) / (xhi - xlo) * fr[0][2], PX_TOL);
            CHECK_NEAR(pt[i][1], px_y(T, H, lo, hi, mean[i]), PX_TOL);
        }
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
