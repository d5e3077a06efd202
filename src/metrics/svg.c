/* Small, dependency-free SVG figures: reliability diagrams, line plots, 2-D colour maps and 1-D
 * regression bands.
 *
 * A figure is composed in memory and then written in one piece to PATH.tmp.PID, which is renamed
 * over PATH, so a failure never leaves a half-written figure behind (the same scheme as
 * bnn_st_writer_save). Composing in memory keeps the error handling in one place: formatting
 * can only run out of memory, and only the final write can fail with an I/O error.
 *
 * The output is standalone SVG 1.1 with a viewBox, so it scales in any browser. Coordinates are
 * printed with at most two decimals in user units (pixels of the viewBox): finer positions are
 * invisible and only make the files larger. Element groups carry ids ("bnn-bars", "bnn-cells",
 * ...) so that tests and scripts can find the drawn elements without parsing geometry.
 *
 * Non-finite inputs: a line plot breaks its line at a non-finite y (a metric missing at some
 * epochs reads as a gap, not as an error); a colour map draws a non-finite value as a grey cell;
 * data points with a non-finite coordinate are skipped. Everything that sets the axes (x of a
 * line plot, means and standard deviations of bands, extents, colour limits, reliability bins)
 * must be finite, and BNN_EINVAL says which argument is not. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* getpid, fsync, fileno; CMake defines the same value */
#endif
#include "core/internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* DejaVu Sans is what Debian's browsers fall back to; the generic family makes any system
 * pick its own sans-serif face. */
#define FONT_FAMILY "DejaVu Sans, Helvetica, Arial, sans-serif"
#define TEXT_COLOUR "#222222"
#define GRID_COLOUR "#e6e6e6"
#define FRAME_COLOUR "#444444"
#define NAN_COLOUR "#b3b3b3"
#define OTHER_CLASS "#1a1a1a" /* points of class 10 and above: Tableau 10 already has a grey */

/* Font sizes in user units. */
#define FS_TITLE 16.0
#define FS_LABEL 13.0
#define FS_TICK 11.5
#define FS_LEGEND 12.0

/* The most cells a colour map may have: 1024 × 1024 already gives a file of about 50 MB. */
#define MAX_CELLS ((int64_t)1 << 20)

/* UTF-8 spellings of the few non-ASCII characters the figures use, written as bytes so that the
 * source does not depend on the compiler's execution character set. */
#define U_MINUS "\xe2\x88\x92" /* U+2212 MINUS SIGN, the typographic minus for tick labels */
#define U_PM "\xc2\xb1"        /* U+00B1 PLUS-MINUS SIGN */
#define U_SIGMA "\xcf\x83"     /* U+03C3 GREEK SMALL LETTER SIGMA */
#define U_SUB1 "\xe2\x82\x81"  /* U+2081 SUBSCRIPT ONE */
#define U_SUB2 "\xe2\x82\x82"  /* U+2082 SUBSCRIPT TWO */

/* ---------------------------------------------------------------- output buffer */

/* A growing string. After the first failed allocation every append is a no-op and `oom` stays
 * set, so the drawing code need not check each call; svg_save reports it once. */
typedef struct svgbuf {
    char *p;
    size_t len, cap;
    bool oom;
} svgbuf;

static bool buf_reserve(svgbuf *b, size_t extra) {
    if (b->oom) return false;
    if (extra <= b->cap - b->len) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void put(svgbuf *b, const char *s) {
    size_t n = strlen(s);
    if (!buf_reserve(b, n + 1)) return;
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void putf(svgbuf *b, const char *fmt, ...) BNN__PRINTF(2, 3);
static void putf(svgbuf *b, const char *fmt, ...) {
    /* Formats into the free space and, when it does not fit, grows once to the size vsnprintf
     * reported and formats again. */
    if (!buf_reserve(b, 256)) return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (!buf_reserve(b, (size_t)n + 1)) return;
    }
}

/* Length of the well-formed UTF-8 sequence at s that is a legal XML character, or 0. Overlong
 * forms, surrogates, code points past U+10FFFF and the non-characters U+FFFE and U+FFFF are
 * rejected (RFC 3629 Table 3; XML 1.0 section 2.2). */
static int utf8_len(const unsigned char *s) {
    unsigned char c = s[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (c == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF)) return 0;
    return n;
}

/* Appends s with the five XML special characters escaped. A browser refuses to show an SVG with
 * a single bad byte, so text from users (titles, series names, often read from files) is made
 * legal: control characters other than tab, newline and carriage return become spaces, and a
 * byte that does not start a valid UTF-8 character becomes U+FFFD REPLACEMENT CHARACTER. */
static void put_escaped(svgbuf *b, const char *s) {
    if (!s) return;
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned char c = *u;
        if (c >= 0x80) {
            int n = utf8_len(u);
            if (n == 0) {
                put(b, "\xef\xbf\xbd");
                u++;
            } else {
                char seq[5] = {0};
                memcpy(seq, u, (size_t)n);
                put(b, seq);
                u += n;
            }
            continue;
        }
        switch (c) {
        case '&': put(b, "&amp;"); break;
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '"': put(b, "&quot;"); break;
        case '\'': put(b, "&apos;"); break;
        default: {
            char one[2] = {(char)(c < 0x20 && c != '\t' && c != '\n' && c != '\r' ? ' ' : c), 0};
            put(b, one);
        }
        }
        u++;
    }
}

/* A coordinate as text: two decimals at most, trailing zeros dropped ("12.5", "40"), never
 * "-0". The struct is returned by value so several can appear in one putf call; the array of a
 * returned struct lives until the end of the full expression (C11 6.2.4p8). */
typedef struct numstr {
    char s[32];
} numstr;

static numstr N(double v) {
    numstr r;
    /* Coordinates are pixels of a viewBox of a few hundred units, so this clamp never changes a
     * drawn value; it only keeps a wild input from printing hundreds of digits. */
    if (!(v > -1e7)) v = -1e7;
    if (!(v < 1e7)) v = 1e7;
    snprintf(r.s, sizeof r.s, "%.2f", v);
    char *end = r.s + strlen(r.s) - 1;
    while (*end == '0')
        *end-- = '\0';
    if (*end == '.') *end = '\0';
    if (strcmp(r.s, "-0") == 0) strcpy(r.s, "0");
    return r;
}

/* Advance width of an ASCII character in em, rounded from DejaVu Sans's metrics: without a font
 * file a table of the narrow and wide classes sizes margins and legend boxes to within a few
 * percent, where one average width per character was off by a third on names like "ill". */
static double char_em(unsigned char c) {
    if (c == 'i' || c == 'j' || c == 'l' || c == '\'' || c == '.' || c == ',' || c == ':' ||
        c == ';' || c == '!' || c == '|')
        return 0.30;
    if (c == ' ') return 0.32;
    if (c == 'f' || c == 't' || c == 'r' || c == '(' || c == ')' || c == '[' || c == ']' ||
        c == '-' || c == '/')
        return 0.39;
    if (c == 'm') return 0.97;
    if (c == 'w' || c == 'M') return 0.86;
    if (c == 'W') return 0.99;
    if (c == '<' || c == '>' || c == '=' || c == '+' || c == '&' || c == '%') return 0.84;
    if (c >= 'A' && c <= 'Z') return 0.72;
    if (c >= '0' && c <= '9') return 0.64;
    return 0.60;
}

/* Width of a string in user units at font size fs. Characters beyond ASCII (σ, ±, −) are
 * counted once, at their UTF-8 lead byte, with a typical width. */
static double text_width(const char *s, double fs) {
    double em = 0.0;
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x80)
            em += char_em(c);
        else if ((c & 0xC0) != 0x80)
            em += 0.68;
    }
    return em * fs;
}

/* <text> at (x, y) with anchor "start", "middle" or "end"; `extra` adds attributes (weight,
 * rotation) and may be NULL. */
static void put_text(svgbuf *b, double x, double y, const char *anchor, double fs,
                     const char *extra, const char *s) {
    putf(b, "<text x=\"%s\" y=\"%s\" text-anchor=\"%s\" font-size=\"%s\"%s%s>", N(x).s, N(y).s,
         anchor, N(fs).s, extra ? " " : "", extra ? extra : "");
    put_escaped(b, s);
    put(b, "</text>\n");
}

/* Opens the document: declaration, root element with the namespace and viewBox, and the white
 * background (a transparent figure is unreadable on a dark page). */
static void svg_begin(svgbuf *b, double w, double h) {
    put(b, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
    putf(b,
         "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%s\" height=\"%s\" "
         "viewBox=\"0 0 %s %s\" font-family=\"" FONT_FAMILY "\" fill=\"" TEXT_COLOUR "\">\n",
         N(w).s, N(h).s, N(w).s, N(h).s);
    putf(b, "<rect width=\"%s\" height=\"%s\" fill=\"#ffffff\"/>\n", N(w).s, N(h).s);
}

/* The title is centred over the plot, but moved towards the middle of the canvas (width w)
 * where a long title over a narrow plot would run off an edge. Bold text is about 10% wider. */
static void svg_title(svgbuf *b, double cx, double y, double w, const char *title) {
    if (!title || !*title) return;
    double half = 0.55 * text_width(title, FS_TITLE) + 8;
    if (cx - half < 0) cx = half < w / 2 ? half : w / 2;
    if (cx + half > w) cx = w - half > w / 2 ? w - half : w / 2;
    put_text(b, cx, y, "middle", FS_TITLE, "font-weight=\"bold\"", title);
}

/* Writes the composed figure to PATH.tmp.PID, flushes and syncs it, and renames it over PATH; on
 * any failure the temporary file is removed. Frees the buffer in every case. */
static int svg_save(svgbuf *b, const char *path) {
    int rc = 0;
    if (!b->oom) put(b, "</svg>\n");
    if (b->oom) {
        rc = bnn__error(BNN_ENOMEM, "%s: out of memory while composing the figure", path);
        goto out;
    }
    {
        const void *part = b->p;
        size_t len = b->len;
        rc = bnn__write_atomic(path, &part, &len, 1);
    }
out:
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    return rc;
}

/* ---------------------------------------------------------------- axes */

/* "Nice" numbers for axis ticks (Heckbert, "Nice numbers for graph labels", Graphics Gems,
 * 1990): the 1, 2 or 5 times a power of ten closest to x. */
static double nice_number(double x) {
    double e = floor(log10(x));
    double f = x / pow(10.0, e);
    double nf = f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0;
    return nf * pow(10.0, e);
}

/* One axis: the data interval [lo, hi] it shows and its ticks t0 + i·step, i < nt. */
typedef struct axis {
    double lo, hi;
    double t0, step;
    int nt;
    int decimals; /* for fixed-point tick labels */
    bool sci;     /* %g labels: steps below 1e-4 or ticks of a million and more */
    int digits;   /* significant digits of %g labels, enough to tell neighbouring ticks apart */
} axis;

/* Ticks for data in [lo, hi], about `target` of them. A loose axis widens [lo, hi] to the
 * enclosing ticks (the count histogram, whose top then carries a label); a tight axis keeps
 * [lo, hi] and labels the ticks inside it (colour maps, whose extent the caller chose). A
 * zero-width range is widened so that a constant series still gets an axis. Returns false when the
 * range cannot be represented (infinite width). */
static bool axis_make(axis *a, double lo, double hi, int target, bool loose) {
    if (!(hi - lo > 0.0)) {
        double pad = lo != 0.0 ? 0.1 * fabs(lo) : 1.0;
        lo -= pad;
        hi += pad;
    }
    double range = hi - lo;
    if (!isfinite(range) || !(range > 0.0)) return false;
    /* Heckbert first rounds the range itself up to a nice number, which can halve the tick count
     * (a range of 12 becomes 20, steps of 5, an axis from −10 to 10 for data in [−6, 6]);
     * rounding only the step keeps the axis close to the data. */
    double step = nice_number(range / (double)(target - 1));
    if (!(step > 0.0) || !isfinite(step)) return false;
    double g0, g1;
    if (loose) {
        g0 = floor(lo / step) * step;
        g1 = ceil(hi / step) * step;
        a->lo = g0;
        a->hi = g1;
    } else {
        /* The small tolerance keeps a tick that sits on an edge up to rounding. */
        g0 = ceil(lo / step - 1e-9) * step;
        g1 = floor(hi / step + 1e-9) * step;
        a->lo = lo;
        a->hi = hi;
    }
    a->t0 = g0;
    a->step = step;
    double nt = floor((g1 - g0) / step + 0.5) + 1.0;
    a->nt = nt < 1.0 ? 0 : nt > 50.0 ? 50 : (int)nt;
    int dec = (int)-floor(log10(step) + 1e-9);
    a->decimals = dec < 0 ? 0 : dec;
    double big = fmax(fabs(g0), fabs(g1));
    a->sci = step < 1e-4 || big >= 1e6;
    /* Ticks 1e6 + k·2e-4 need eleven digits to differ; 3e6 and 5e-5 need one. */
    double sig = big > 0.0 ? ceil(log10(big / step) - 1e-9) + 1.0 : 1.0;
    a->digits = sig < 3.0 ? 3 : sig > 15.0 ? 15 : (int)sig;
    return true;
}

/* A tight axis over [lo, hi] widened by 5% of the range on each side, matplotlib's default
 * margin: a curve or band that reaches the extreme of the data then stays clear of the frame. */
static bool axis_make_margin(axis *a, double lo, double hi, int target) {
    double r = hi - lo;
    if (r > 0.0 && isfinite(r)) {
        lo -= 0.05 * r;
        hi += 0.05 * r;
    }
    return axis_make(a, lo, hi, target, false);
}

static double tick_value(const axis *a, int i) {
    double v = a->t0 + (double)i * a->step;
    /* Multiples of a step that crosses zero land on ±1e-17 rather than 0 in floating point. */
    return fabs(v) < 1e-9 * a->step ? 0.0 : v;
}

/* A tick label with the typographic minus sign; exponents lose printf's '+' and leading zeros
 * ("5e-05" reads "5e−5", "3e+06" reads "3e6"). */
static void tick_label(char *out, size_t cap, const axis *a, double v) {
    char tmp[48], pretty[64];
    if (a->sci)
        snprintf(tmp, sizeof tmp, "%.*g", a->digits, v);
    else
        snprintf(tmp, sizeof tmp, "%.*f", a->decimals, v);
    size_t o = 0;
    for (const char *c = tmp; *c && o + 4 < sizeof pretty; c++) {
        if (*c == '-') {
            memcpy(pretty + o, U_MINUS, 3);
            o += 3;
        } else if (*c == 'e') {
            pretty[o++] = 'e';
            if (c[1] == '+') c++;
            if (c[1] == '-') {
                memcpy(pretty + o, U_MINUS, 3);
                o += 3;
                c++;
            }
            while (c[1] == '0' && c[2])
                c++;
        } else {
            pretty[o++] = *c;
        }
    }
    pretty[o] = '\0';
    snprintf(out, cap, "%s", pretty);
}

/* Width of the widest tick label of an axis. */
static double axis_label_width(const axis *a) {
    double w = 0.0;
    char s[64];
    for (int i = 0; i < a->nt; i++) {
        tick_label(s, sizeof s, a, tick_value(a, i));
        w = fmax(w, text_width(s, FS_TICK));
    }
    return w;
}

/* A plotting area in user units: left, top, width, height. */
typedef struct frame {
    double L, T, W, H;
} frame;

static double map_x(const frame *f, const axis *a, double v) {
    return f->L + (v - a->lo) / (a->hi - a->lo) * f->W;
}

static double map_y(const frame *f, const axis *a, double v) {
    return f->T + f->H - (v - a->lo) / (a->hi - a->lo) * f->H;
}

/* Light grid lines at the ticks, drawn under the data. */
static void draw_grid(svgbuf *b, const frame *f, const axis *ax, const axis *ay) {
    put(b, "<g stroke=\"" GRID_COLOUR "\" stroke-width=\"1\">\n");
    for (int i = 0; ax && i < ax->nt; i++) {
        double x = map_x(f, ax, tick_value(ax, i));
        putf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", N(x).s, N(f->T).s, N(x).s,
             N(f->T + f->H).s);
    }
    for (int i = 0; ay && i < ay->nt; i++) {
        double y = map_y(f, ay, tick_value(ay, i));
        putf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", N(f->L).s, N(y).s,
             N(f->L + f->W).s, N(y).s);
    }
    put(b, "</g>\n");
}

/* The frame, outward ticks and tick labels (x below, y left), drawn over the data. Either axis
 * may be NULL; x tick labels can be left off where a panel below shares the axis. */
static void draw_axes(svgbuf *b, const frame *f, const axis *ax, bool xlabels, const axis *ay) {
    putf(b,
         "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"none\" stroke=\"" FRAME_COLOUR
         "\" stroke-width=\"1\"/>\n",
         N(f->L).s, N(f->T).s, N(f->W).s, N(f->H).s);
    char s[64];
    put(b, "<g stroke=\"" FRAME_COLOUR "\" stroke-width=\"1\">\n");
    for (int i = 0; ax && i < ax->nt; i++) {
        double x = map_x(f, ax, tick_value(ax, i));
        putf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", N(x).s, N(f->T + f->H).s,
             N(x).s, N(f->T + f->H + 5).s);
    }
    for (int i = 0; ay && i < ay->nt; i++) {
        double y = map_y(f, ay, tick_value(ay, i));
        putf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", N(f->L - 5).s, N(y).s,
             N(f->L).s, N(y).s);
    }
    put(b, "</g>\n");
    for (int i = 0; ax && xlabels && i < ax->nt; i++) {
        double v = tick_value(ax, i);
        tick_label(s, sizeof s, ax, v);
        put_text(b, map_x(f, ax, v), f->T + f->H + 8 + FS_TICK, "middle", FS_TICK, NULL, s);
    }
    for (int i = 0; ay && i < ay->nt; i++) {
        double v = tick_value(ay, i);
        tick_label(s, sizeof s, ay, v);
        put_text(b, f->L - 8, map_y(f, ay, v) + 0.36 * FS_TICK, "end", FS_TICK, NULL, s);
    }
}

/* An x-axis label centred under the frame, at baseline y. */
static void draw_xlabel(svgbuf *b, const frame *f, double y, const char *label) {
    if (label && *label) put_text(b, f->L + f->W / 2, y, "middle", FS_LABEL, NULL, label);
}

/* A y-axis label rotated to read upwards, centred beside the frame, with its baseline at x. */
static void draw_ylabel(svgbuf *b, const frame *f, double x, const char *label) {
    if (!label || !*label) return;
    double y = f->T + f->H / 2;
    char rot[96];
    snprintf(rot, sizeof rot, "transform=\"rotate(-90 %s %s)\"", N(x).s, N(y).s);
    put_text(b, x, y, "middle", FS_LABEL, rot, label);
}

/* A legend box: white, slightly transparent so that data under it stay visible. */
static void legend_box(svgbuf *b, double x, double y, double w, double h) {
    putf(b,
         "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" rx=\"3\" fill=\"#ffffff\" "
         "fill-opacity=\"0.9\" stroke=\"#cccccc\"/>\n",
         N(x).s, N(y).s, N(w).s, N(h).s);
}

/* Legend swatches, 22 units wide, centred vertically on y; the label starts at x + 30. */
#define SWATCH_W 22.0
static void legend_line(svgbuf *b, double x, double y, const char *style, const char *label) {
    putf(b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" %s/>\n", N(x).s, N(y).s,
         N(x + SWATCH_W).s, N(y).s, style);
    put_text(b, x + SWATCH_W + 8, y + 0.36 * FS_LEGEND, "start", FS_LEGEND, NULL, label);
}

static void legend_rect(svgbuf *b, double x, double y, const char *style, const char *label) {
    putf(b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"10\" %s/>\n", N(x).s, N(y - 5).s,
         N(SWATCH_W).s, style);
    put_text(b, x + SWATCH_W + 8, y + 0.36 * FS_LEGEND, "start", FS_LEGEND, NULL, label);
}

static void legend_dot(svgbuf *b, double x, double y, const char *style, const char *label) {
    putf(b, "<circle cx=\"%s\" cy=\"%s\" r=\"4\" %s/>\n", N(x + SWATCH_W / 2).s, N(y).s, style);
    put_text(b, x + SWATCH_W + 8, y + 0.36 * FS_LEGEND, "start", FS_LEGEND, NULL, label);
}

/* Categorical colours for series and class labels: Tableau 10 (the matplotlib default cycle),
 * chosen to be distinguishable by most colour-deficient viewers in its first few entries. */
static const char *const PALETTE[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* ---------------------------------------------------------------- reliability diagram */

/* The reliability diagram of Guo et al., "On Calibration of Modern Neural Networks" (ICML 2017,
 * Figure 1): per confidence bin a bar of the accuracy, a hatched bar for the gap to the mean
 * confidence of the bin (the quantity the ECE averages), the diagonal of perfect calibration,
 * and below it the histogram of how many examples fall in each bin. */
int bnn_svg_reliability(const char *path, const struct bnn_cls_metrics *m, const char *title) {
    if (!path || !m) return bnn__error(BNN_EINVAL, "bnn_svg_reliability: NULL argument");
    if (m->nbins < 1 || m->nbins > BNN_MAX_BINS)
        return bnn__error(BNN_EINVAL, "%s: nbins %lld is outside 1..%d", path, (long long)m->nbins,
                          BNN_MAX_BINS);
    if (m->n < 1) return bnn__error(BNN_EINVAL, "%s: n = %lld examples", path, (long long)m->n);
    int64_t total = 0, maxcount = 0;
    for (int64_t i = 0; i < m->nbins; i++) {
        int64_t c = m->bin_count[i];
        if (c < 0 || c > m->n)
            return bnn__error(BNN_EINVAL, "%s: bin %lld has count %lld (n = %lld)", path,
                              (long long)i, (long long)c, (long long)m->n);
        if (c > 0 && !(m->bin_accuracy[i] >= 0.0 && m->bin_accuracy[i] <= 1.0 &&
                       m->bin_confidence[i] >= 0.0 && m->bin_confidence[i] <= 1.0))
            return bnn__error(BNN_EINVAL,
                              "%s: bin %lld has accuracy %g and confidence %g, not both in [0, 1]",
                              path, (long long)i, m->bin_accuracy[i], m->bin_confidence[i]);
        total += c;
        if (c > maxcount) maxcount = c;
    }
    if (total != m->n)
        return bnn__error(BNN_EINVAL, "%s: the bin counts sum to %lld, not n = %lld", path,
                          (long long)total, (long long)m->n);
    if (!isfinite(m->ece) || !isfinite(m->mce))
        return bnn__error(BNN_EINVAL, "%s: ECE %g or MCE %g is not finite", path, m->ece, m->mce);

    axis ax, ay, ac;
    axis_make(&ax, 0.0, 1.0, 6, true);
    axis_make(&ay, 0.0, 1.0, 6, true);
    /* At least two so that small counts get whole-number ticks (0, 1, 2), not 0.5 steps. */
    axis_make(&ac, 0.0, fmax((double)maxcount, 2.0), 3, true);

    /* The left margin holds the y label and the widest tick label of either panel. */
    double tick_w = fmax(axis_label_width(&ay), axis_label_width(&ac));
    double L = 14 + FS_LABEL + 10 + tick_w + 8;
    frame main = {L, 70, 400, 400};
    frame hist = {L, main.T + main.H + 22, 400, 84};
    double width = L + main.W + 24;
    double height = hist.T + hist.H + 8 + FS_TICK + 36;

    svgbuf b = {0};
    svg_begin(&b, width, height);
    put(&b, "<defs>\n<pattern id=\"bnn-hatch\" width=\"6\" height=\"6\" "
            "patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\n"
            "<rect width=\"6\" height=\"6\" fill=\"#e15759\" fill-opacity=\"0.22\"/>\n"
            "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#d0393c\" stroke-width=\"1.6\"/>\n"
            "</pattern>\n</defs>\n");
    svg_title(&b, main.L + main.W / 2, 30, width, title);

    draw_grid(&b, &main, &ax, &ay);
    const double nb = (double)m->nbins;
    /* Bar outlines separate neighbouring bins, but on bars narrower than 4 units (more than 100
     * bins) they would cover the fill; those bars have none and are drawn with crisp edges, so
     * that anti-aliasing shows no seams between them. */
    const bool wide = main.W / nb >= 4.0;
    char bar_style[128], gap_style[128];
    snprintf(bar_style, sizeof bar_style, "%s",
             wide ? "stroke=\"#2b4a6f\" stroke-width=\"0.8\"" : "shape-rendering=\"crispEdges\"");
    snprintf(gap_style, sizeof gap_style, "%s",
             wide ? "stroke=\"#d0393c\" stroke-width=\"1\"" : "shape-rendering=\"crispEdges\"");
    /* Crisp edges round x and width separately, which can open a one-pixel seam; narrow bars
     * therefore reach half a unit into their (same-coloured) neighbour. */
    const double overlap = wide ? 0.0 : 0.5;
    /* Accuracy bars over equal-width bins; an empty bin says nothing about calibration and is
     * left out, as in Guo et al. */
    putf(&b, "<g id=\"bnn-bars\" fill=\"#4e79a7\" %s>\n", bar_style);
    for (int64_t i = 0; i < m->nbins; i++) {
        if (m->bin_count[i] == 0) continue;
        double x0 = map_x(&main, &ax, (double)i / nb), x1 = map_x(&main, &ax, (double)(i + 1) / nb);
        double y = map_y(&main, &ay, m->bin_accuracy[i]);
        putf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"/>\n", N(x0).s, N(y).s,
             N(x1 - x0 + overlap).s, N(main.T + main.H - y).s);
    }
    put(&b, "</g>\n");
    /* The gap between accuracy and mean confidence: above the bar when over-confident, cut out
     * of its top when under-confident. */
    putf(&b, "<g id=\"bnn-gaps\" fill=\"url(#bnn-hatch)\" %s>\n", gap_style);
    for (int64_t i = 0; i < m->nbins; i++) {
        if (m->bin_count[i] == 0 || m->bin_accuracy[i] == m->bin_confidence[i]) continue;
        double x0 = map_x(&main, &ax, (double)i / nb), x1 = map_x(&main, &ax, (double)(i + 1) / nb);
        double ya = map_y(&main, &ay, m->bin_accuracy[i]);
        double yc = map_y(&main, &ay, m->bin_confidence[i]);
        putf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"/>\n", N(x0).s,
             N(fmin(ya, yc)).s, N(x1 - x0 + overlap).s, N(fabs(ya - yc)).s);
    }
    put(&b, "</g>\n");
    putf(&b,
         "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"#555555\" stroke-width=\"1.3\" "
         "stroke-dasharray=\"6 4\"/>\n",
         N(main.L).s, N(main.T + main.H).s, N(main.L + main.W).s, N(main.T).s);
    draw_axes(&b, &main, &ax, false, &ay);

    /* A one-row legend between the title and the frame: inside the frame it would cover the
     * bars of an under-confident model, which fill the upper left. */
    {
        const char *lab[3] = {"Accuracy", "Gap", "Perfect calibration"};
        double w = 0.0;
        for (int i = 0; i < 3; i++)
            w += SWATCH_W + 8 + text_width(lab[i], FS_LEGEND) + 22;
        double x = main.L + (main.W - w + 22) / 2, y = main.T - 20;
        put(&b, "<g id=\"bnn-legend\">\n");
        legend_rect(&b, x, y, "fill=\"#4e79a7\" stroke=\"#2b4a6f\" stroke-width=\"0.8\"", lab[0]);
        x += SWATCH_W + 8 + text_width(lab[0], FS_LEGEND) + 22;
        legend_rect(&b, x, y, "fill=\"url(#bnn-hatch)\" stroke=\"#d0393c\"", lab[1]);
        x += SWATCH_W + 8 + text_width(lab[1], FS_LEGEND) + 22;
        legend_line(&b, x, y, "stroke=\"#555555\" stroke-width=\"1.3\" stroke-dasharray=\"6 4\"",
                    lab[2]);
        put(&b, "</g>\n");
    }
    /* ECE and MCE in the lower right corner, as in Guo et al.'s figure. */
    {
        char l1[64], l2[64], l3[64];
        snprintf(l1, sizeof l1, "ECE = %.4f", m->ece);
        snprintf(l2, sizeof l2, "MCE = %.4f", m->mce);
        snprintf(l3, sizeof l3, "n = %lld", (long long)m->n);
        double w = fmax(fmax(text_width(l1, FS_LEGEND), text_width(l2, FS_LEGEND)),
                        text_width(l3, FS_LEGEND)) +
                   20;
        double x = main.L + main.W - 10 - w, y = main.T + main.H - 10 - 64;
        legend_box(&b, x, y, w, 64);
        put_text(&b, x + 10, y + 19, "start", FS_LEGEND, NULL, l1);
        put_text(&b, x + 10, y + 37, "start", FS_LEGEND, NULL, l2);
        put_text(&b, x + 10, y + 55, "start", FS_LEGEND, "fill=\"#555555\"", l3);
    }
    draw_ylabel(&b, &main, 14 + FS_LABEL, "Accuracy");

    /* The histogram of bin counts shares the confidence axis. */
    draw_grid(&b, &hist, NULL, &ac);
    putf(&b, "<g id=\"bnn-counts\" fill=\"#a0cbe8\" %s>\n", bar_style);
    for (int64_t i = 0; i < m->nbins; i++) {
        if (m->bin_count[i] == 0) continue;
        double x0 = map_x(&hist, &ax, (double)i / nb), x1 = map_x(&hist, &ax, (double)(i + 1) / nb);
        double y = map_y(&hist, &ac, (double)m->bin_count[i]);
        putf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"/>\n", N(x0).s, N(y).s,
             N(x1 - x0 + overlap).s, N(hist.T + hist.H - y).s);
    }
    put(&b, "</g>\n");
    draw_axes(&b, &hist, &ax, true, &ac);
    draw_ylabel(&b, &hist, 14 + FS_LABEL, "Count");
    draw_xlabel(&b, &hist, hist.T + hist.H + 8 + FS_TICK + 24, "Confidence");
    return svg_save(&b, path);
}

/* ---------------------------------------------------------------- line plot */

/* Markers are drawn when the points are few enough to be told apart. */
#define LINES_MARKER_MAX 40

int bnn_svg_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const double *x, int64_t n, const double *const *ys, const char *const *names,
                  int64_t nseries) {
    if (!path || !x || !ys) return bnn__error(BNN_EINVAL, "bnn_svg_lines: NULL argument");
    if (n < 2)
        return bnn__error(BNN_EINVAL, "%s: a line needs n >= 2 points, got %lld", path,
                          (long long)n);
    if (nseries < 1)
        return bnn__error(BNN_EINVAL, "%s: nseries = %lld, need at least 1", path,
                          (long long)nseries);
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return bnn__error(BNN_EINVAL, "%s: x[%lld] = %g is not finite", path, (long long)i,
                              x[i]);
        xmin = fmin(xmin, x[i]);
        xmax = fmax(xmax, x[i]);
    }
    for (int64_t s = 0; s < nseries; s++) {
        if (!ys[s]) return bnn__error(BNN_EINVAL, "%s: series %lld is NULL", path, (long long)s);
        for (int64_t i = 0; i < n; i++)
            if (isfinite(ys[s][i])) {
                ymin = fmin(ymin, ys[s][i]);
                ymax = fmax(ymax, ys[s][i]);
            }
    }
    if (!(ymin <= ymax)) return bnn__error(BNN_EINVAL, "%s: no series has a finite value", path);

    axis ax, ay;
    if (!axis_make_margin(&ax, xmin, xmax, 7) || !axis_make_margin(&ay, ymin, ymax, 6))
        return bnn__error(BNN_EINVAL, "%s: the data range is too wide to plot", path);

    /* A legend names the series; a single unnamed series needs none. */
    bool legend = nseries > 1 || (names && names[0] && names[0][0]);
    char fallback[32];
    double name_w = 0.0;
    for (int64_t s = 0; legend && s < nseries; s++) {
        snprintf(fallback, sizeof fallback, "series %lld", (long long)s + 1);
        const char *nm = names && names[s] ? names[s] : fallback;
        name_w = fmax(name_w, text_width(nm, FS_LEGEND));
    }
    double legend_w = legend ? 10 + SWATCH_W + 8 + name_w + 12 : 0.0;
    bool has_ylabel = ylabel && *ylabel;
    double L = 14 + (has_ylabel ? FS_LABEL + 10 : 0) + axis_label_width(&ay) + 8;
    frame f = {L, 48, 0, 360};
    f.W = fmax(360.0, 720.0 - L - (legend ? legend_w + 36 : 24));
    double width = L + f.W + (legend ? legend_w + 36 : 24);
    double height = f.T + f.H + 8 + FS_TICK + 40;
    if (legend) height = fmax(height, f.T + 12 + 20.0 * (double)nseries + 16);

    svgbuf b = {0};
    svg_begin(&b, width, height);
    svg_title(&b, f.L + f.W / 2, 30, width, title);
    draw_grid(&b, &f, &ax, &ay);
    bool markers = n <= LINES_MARKER_MAX;
    /* One polyline per run of finite values; a non-finite y ends the run (a gap). */
    put(&b, "<g id=\"bnn-lines\" fill=\"none\" stroke-width=\"2\" stroke-linejoin=\"round\" "
            "stroke-linecap=\"round\">\n");
    for (int64_t s = 0; s < nseries; s++) {
        const char *col = PALETTE[s % 10];
        /* Past ten series the colours repeat, so the second round is dashed. */
        const char *dash = (s / 10) % 2 ? " stroke-dasharray=\"6 3\"" : "";
        const double *y = ys[s];
        for (int64_t i = 0; i < n;) {
            if (!isfinite(y[i])) {
                i++;
                continue;
            }
            int64_t j = i;
            while (j < n && isfinite(y[j]))
                j++;
            if (j - i == 1) {
                /* A lone value between gaps has no segment; a dot keeps it visible. */
                putf(&b, "<circle cx=\"%s\" cy=\"%s\" r=\"2.5\" fill=\"%s\" stroke=\"none\"/>\n",
                     N(map_x(&f, &ax, x[i])).s, N(map_y(&f, &ay, y[i])).s, col);
            } else {
                putf(&b, "<polyline stroke=\"%s\"%s points=\"", col, dash);
                for (int64_t k = i; k < j; k++)
                    putf(&b, "%s%s,%s", k > i ? " " : "", N(map_x(&f, &ax, x[k])).s,
                         N(map_y(&f, &ay, y[k])).s);
                put(&b, "\"/>\n");
            }
            i = j;
        }
    }
    put(&b, "</g>\n");
    if (markers) {
        put(&b, "<g id=\"bnn-markers\" stroke=\"#ffffff\" stroke-width=\"0.8\">\n");
        for (int64_t s = 0; s < nseries; s++)
            for (int64_t i = 0; i < n; i++)
                if (isfinite(ys[s][i]))
                    putf(&b, "<circle cx=\"%s\" cy=\"%s\" r=\"3\" fill=\"%s\"/>\n",
                         N(map_x(&f, &ax, x[i])).s, N(map_y(&f, &ay, ys[s][i])).s, PALETTE[s % 10]);
        put(&b, "</g>\n");
    }
    draw_axes(&b, &f, &ax, true, &ay);
    draw_xlabel(&b, &f, f.T + f.H + 8 + FS_TICK + 24, xlabel);
    draw_ylabel(&b, &f, 14 + FS_LABEL, ylabel);
    /* The legend sits outside the frame, so it never hides a curve. */
    if (legend) {
        double lx = f.L + f.W + 16, ly = f.T;
        legend_box(&b, lx, ly, legend_w, 12 + 20.0 * (double)nseries);
        put(&b, "<g id=\"bnn-legend\">\n");
        for (int64_t s = 0; s < nseries; s++) {
            snprintf(fallback, sizeof fallback, "series %lld", (long long)s + 1);
            const char *nm = names && names[s] ? names[s] : fallback;
            char style[96];
            snprintf(style, sizeof style, "stroke=\"%s\" stroke-width=\"2\"%s", PALETTE[s % 10],
                     (s / 10) % 2 ? " stroke-dasharray=\"6 3\"" : "");
            legend_line(&b, lx + 10, ly + 16 + 20.0 * (double)s, style, nm);
        }
        put(&b, "</g>\n");
    }
    return svg_save(&b, path);
}

/* ---------------------------------------------------------------- colour map */

/* Viridis (van der Walt and Smith, matplotlib 1.5, 2015) as a piecewise-linear map through nine
 * of its colours, those of R viridisLite's viridis(9). Between neighbouring knots the true map is
 * nearly linear in sRGB, so nine knots are within a few levels of it; the colour bar's gradient
 * uses the same knots, so it matches the cells exactly. */
static const unsigned char VIRIDIS[9][3] = {
    {0x44, 0x01, 0x54}, {0x47, 0x2D, 0x7B}, {0x3B, 0x52, 0x8B},
    {0x2C, 0x72, 0x8E}, {0x21, 0x90, 0x8C}, {0x27, 0xAD, 0x81},
    {0x5D, 0xC8, 0x63}, {0xAA, 0xDC, 0x32}, {0xFD, 0xE7, 0x25}};

/* t in [0, 1] (clamped) to "#rrggbb". */
static void viridis(char out[8], double t) {
    t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
    double u = t * 8.0;
    int k = (int)u;
    if (k > 7) k = 7;
    double w = u - (double)k;
    int rgb[3];
    for (int c = 0; c < 3; c++)
        rgb[c] = (int)lround((1.0 - w) * VIRIDIS[k][c] + w * VIRIDIS[k + 1][c]);
    snprintf(out, 8, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

int bnn_svg_field(const char *path, const char *title, const double *field, int64_t nx, int64_t ny,
                  double x0, double x1, double y0, double y1, double vmin, double vmax,
                  const char *zlabel, const float *pts, const int32_t *labels, int64_t npts) {
    if (!path || !field) return bnn__error(BNN_EINVAL, "bnn_svg_field: NULL argument");
    if (nx < 1 || ny < 1 || nx > MAX_CELLS || ny > MAX_CELLS || nx * ny > MAX_CELLS)
        return bnn__error(BNN_EINVAL, "%s: field of %lld x %lld cells (need 1 to %lld cells)", path,
                          (long long)nx, (long long)ny, (long long)MAX_CELLS);
    if (!(isfinite(x0) && isfinite(x1) && x0 < x1 && isfinite(y0) && isfinite(y1) && y0 < y1))
        return bnn__error(BNN_EINVAL, "%s: extent [%g, %g] x [%g, %g] is not increasing and finite",
                          path, x0, x1, y0, y1);
    if (!(isfinite(vmin) && isfinite(vmax) && vmin < vmax))
        return bnn__error(BNN_EINVAL, "%s: colour limits [%g, %g] are not increasing and finite",
                          path, vmin, vmax);
    if (npts < 0 || (npts > 0 && !pts))
        return bnn__error(BNN_EINVAL, "%s: %lld points without coordinates", path, (long long)npts);
    /* Distinct labels for the legend, kept as a bitmap of the first few classes. */
    enum { MAX_CLASSES_SHOWN = 10 };
    bool seen[MAX_CLASSES_SHOWN] = {false};
    int64_t nclasses_more = 0;
    for (int64_t i = 0; labels && i < npts; i++) {
        if (labels[i] < 0)
            return bnn__error(BNN_EINVAL, "%s: point %lld has label %d", path, (long long)i,
                              (int)labels[i]);
        /* Points that are not drawn do not put their class into the legend. */
        if (!isfinite(pts[2 * i]) || !isfinite(pts[2 * i + 1])) continue;
        if (labels[i] < MAX_CLASSES_SHOWN)
            seen[labels[i]] = true;
        else
            nclasses_more++;
    }
    bool any_nan = false;
    for (int64_t i = 0; i < nx * ny && !any_nan; i++)
        any_nan = !isfinite(field[i]);

    axis ax, ay, az;
    if (!axis_make(&ax, x0, x1, 6, false) || !axis_make(&ay, y0, y1, 6, false) ||
        !axis_make(&az, vmin, vmax, 6, false))
        return bnn__error(BNN_EINVAL, "%s: a range is too wide to plot", path);

    /* The frame keeps the aspect ratio of the extent, so that an input space looks like itself
     * (two moons are not squashed), within 520 × 440 and between 1:2 and 2:1. */
    double aspect = (x1 - x0) / (y1 - y0);
    aspect = aspect < 0.5 ? 0.5 : aspect > 2.0 ? 2.0 : aspect;
    double fw = 440.0 * aspect, fh = 440.0;
    if (fw > 520.0) {
        fw = 520.0;
        fh = 520.0 / aspect;
    }
    double L = 14 + FS_LABEL + 10 + axis_label_width(&ay) + 8;
    frame f = {L, 48, fw, fh};
    frame cb = {f.L + f.W + 22, f.T, 16, 0};
    bool legend = labels && npts > 0;
    int legend_rows = 0;
    for (int c = 0; c < MAX_CLASSES_SHOWN; c++)
        legend_rows += seen[c];
    legend_rows += nclasses_more > 0;
    /* The colour bar leaves room below it for the NaN swatch and the class legend. */
    cb.H = legend ? fmax(0.6 * f.H, 160.0) : any_nan ? f.H - 36 : f.H;
    double cb_right = cb.L + cb.W + 8 + axis_label_width(&az);
    bool has_z = zlabel && *zlabel;
    double width = cb_right + (has_z ? 10 + FS_LABEL : 0) + 18;
    double legend_w = 10 + SWATCH_W + 8 + text_width("class 10+", FS_LEGEND) + 12;
    if (legend) width = fmax(width, cb.L - 6 + legend_w + 18);
    double legend_bottom = cb.T + cb.H + (any_nan ? 26 : 0) + 26 + 20.0 * legend_rows;
    double height = fmax(f.T + f.H + 8 + FS_TICK + 40, legend ? legend_bottom + 16 : 0.0);

    svgbuf b = {0};
    svg_begin(&b, width, height);
    put(&b, "<defs>\n<clipPath id=\"bnn-clip\">");
    putf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"/>", N(f.L).s, N(f.T).s, N(f.W).s,
         N(f.H).s);
    put(&b,
        "</clipPath>\n<linearGradient id=\"bnn-viridis\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n");
    for (int k = 0; k < 9; k++)
        putf(&b, "<stop offset=\"%s\" stop-color=\"#%02x%02x%02x\"/>\n", N(k / 8.0).s,
             VIRIDIS[k][0], VIRIDIS[k][1], VIRIDIS[k][2]);
    put(&b, "</linearGradient>\n</defs>\n");
    svg_title(&b, f.L + f.W / 2, 30, width, title);

    /* One rect per cell on an integer grid scaled to the frame: integer coordinates keep the
     * file small, and crispEdges stops anti-aliasing from showing seams between cells. Row 0 is
     * at y0, the bottom of the frame. */
    /* The scale gets more digits than a coordinate because it multiplies up to 1024 cells. */
    putf(&b,
         "<g id=\"bnn-cells\" shape-rendering=\"crispEdges\" transform=\"translate(%s %s) "
         "scale(%.6g %.6g)\">\n",
         N(f.L).s, N(f.T).s, f.W / (double)nx, f.H / (double)ny);
    char col[8];
    for (int64_t j = 0; j < ny; j++) {
        for (int64_t i = 0; i < nx; i++) {
            double v = field[j * nx + i];
            if (isfinite(v))
                viridis(col, (v - vmin) / (vmax - vmin));
            else
                memcpy(col, NAN_COLOUR, 8);
            putf(&b, "<rect x=\"%lld\" y=\"%lld\" width=\"1\" height=\"1\" fill=\"%s\"/>",
                 (long long)i, (long long)(ny - 1 - j), col);
        }
        put(&b, "\n");
    }
    put(&b, "</g>\n");

    put(&b, "<g id=\"bnn-points\" clip-path=\"url(#bnn-clip)\" stroke=\"#ffffff\" "
            "stroke-width=\"1\">\n");
    for (int64_t i = 0; i < npts; i++) {
        double px = pts[2 * i], py = pts[2 * i + 1];
        if (!isfinite(px) || !isfinite(py)) continue;
        /* Classes past the tenth share the grey of the legend's "class 10+" entry rather than
         * repeat a colour that already names another class. */
        const char *pc = !labels                         ? "#222222"
                         : labels[i] < MAX_CLASSES_SHOWN ? PALETTE[labels[i]]
                                                         : OTHER_CLASS;
        putf(&b, "<circle cx=\"%s\" cy=\"%s\" r=\"3.5\" fill=\"%s\"/>\n", N(map_x(&f, &ax, px)).s,
             N(map_y(&f, &ay, py)).s, pc);
    }
    put(&b, "</g>\n");
    draw_axes(&b, &f, &ax, true, &ay);
    draw_xlabel(&b, &f, f.T + f.H + 8 + FS_TICK + 24, "x" U_SUB1);
    draw_ylabel(&b, &f, 14 + FS_LABEL, "x" U_SUB2);

    /* The colour bar, with its ticks on the right. */
    putf(&b,
         "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"url(#bnn-viridis)\" "
         "stroke=\"" FRAME_COLOUR "\" stroke-width=\"1\"/>\n",
         N(cb.L).s, N(cb.T).s, N(cb.W).s, N(cb.H).s);
    {
        char s[64];
        put(&b, "<g stroke=\"" FRAME_COLOUR "\" stroke-width=\"1\">\n");
        for (int i = 0; i < az.nt; i++) {
            double y = map_y(&cb, &az, tick_value(&az, i));
            putf(&b, "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", N(cb.L + cb.W).s, N(y).s,
                 N(cb.L + cb.W + 4).s, N(y).s);
        }
        put(&b, "</g>\n");
        for (int i = 0; i < az.nt; i++) {
            double v = tick_value(&az, i);
            tick_label(s, sizeof s, &az, v);
            put_text(&b, cb.L + cb.W + 8, map_y(&cb, &az, v) + 0.36 * FS_TICK, "start", FS_TICK,
                     NULL, s);
        }
        if (has_z) {
            double zx = cb_right + 10 + FS_LABEL * 0.8, zy = cb.T + cb.H / 2;
            char rot[96];
            snprintf(rot, sizeof rot, "transform=\"rotate(-90 %s %s)\"", N(zx).s, N(zy).s);
            put_text(&b, zx, zy, "middle", FS_LABEL, rot, zlabel);
        }
    }
    /* Below the colour bar: the swatch for missing values (only when there are some) and the
     * classes of the points. */
    double ly = cb.T + cb.H + 26;
    if (any_nan) {
        legend_rect(&b, cb.L, ly, "fill=\"" NAN_COLOUR "\" stroke=\"" FRAME_COLOUR "\"", "NaN");
        ly += 26;
    }
    if (legend) {
        legend_box(&b, cb.L - 6, ly - 10, legend_w, 8 + 20.0 * legend_rows);
        put(&b, "<g id=\"bnn-legend\">\n");
        ly += 4;
        char style[64], name[32];
        for (int c = 0; c < MAX_CLASSES_SHOWN; c++) {
            if (!seen[c]) continue;
            snprintf(style, sizeof style, "fill=\"%s\" stroke=\"#ffffff\"", PALETTE[c]);
            snprintf(name, sizeof name, "class %d", c);
            legend_dot(&b, cb.L, ly, style, name);
            ly += 20;
        }
        if (nclasses_more)
            legend_dot(&b, cb.L, ly, "fill=\"" OTHER_CLASS "\" stroke=\"#ffffff\"", "class 10+");
        put(&b, "</g>\n");
    }
    return svg_save(&b, path);
}

/* ---------------------------------------------------------------- regression bands */

int bnn_svg_bands(const char *path, const char *title, const double *x, const double *mean,
                  const double *sd, int64_t n, const float *data_x, const float *data_y,
                  int64_t ndata) {
    if (!path || !x || !mean || !sd) return bnn__error(BNN_EINVAL, "bnn_svg_bands: NULL argument");
    if (n < 2)
        return bnn__error(BNN_EINVAL, "%s: a band needs n >= 2 points, got %lld", path,
                          (long long)n);
    if (ndata < 0 || (ndata > 0 && (!data_x || !data_y)))
        return bnn__error(BNN_EINVAL, "%s: %lld data points without coordinates", path,
                          (long long)ndata);
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(mean[i]) || !isfinite(sd[i]) || sd[i] < 0.0)
            return bnn__error(BNN_EINVAL,
                              "%s: point %lld has x %g, mean %g, sd %g (need finite, sd >= 0)",
                              path, (long long)i, x[i], mean[i], sd[i]);
        if (i > 0 && x[i] < x[i - 1])
            return bnn__error(BNN_EINVAL, "%s: x is not sorted at %lld (%g after %g)", path,
                              (long long)i, x[i], x[i - 1]);
        xmin = fmin(xmin, x[i]);
        xmax = fmax(xmax, x[i]);
        ymin = fmin(ymin, mean[i] - 2.0 * sd[i]);
        ymax = fmax(ymax, mean[i] + 2.0 * sd[i]);
    }
    for (int64_t i = 0; i < ndata; i++) {
        if (!isfinite(data_x[i]) || !isfinite(data_y[i])) continue;
        xmin = fmin(xmin, data_x[i]);
        xmax = fmax(xmax, data_x[i]);
        ymin = fmin(ymin, data_y[i]);
        ymax = fmax(ymax, data_y[i]);
    }
    axis ax, ay;
    /* The bands span the frame from side to side (a tight x axis), as the predictive is drawn
     * over exactly the interval the caller evaluated it on. */
    if (!axis_make(&ax, xmin, xmax, 7, false) || !axis_make_margin(&ay, ymin, ymax, 6))
        return bnn__error(BNN_EINVAL, "%s: the data range is too wide to plot", path);

    double L = 14 + FS_LABEL + 10 + axis_label_width(&ay) + 8;
    frame f = {L, 70, 720 - L - 24, 340};
    double width = 720, height = f.T + f.H + 8 + FS_TICK + 40;

    svgbuf b = {0};
    svg_begin(&b, width, height);
    svg_title(&b, f.L + f.W / 2, 30, width, title);
    draw_grid(&b, &f, &ax, &ay);

    /* Each band is one polygon: along the upper edge left to right, back along the lower. */
    static const char *const BAND_STYLE[2] = {"fill=\"#c6dbef\"", "fill=\"#8fbbdc\""};
    put(&b, "<g id=\"bnn-bands\" stroke=\"none\">\n");
    for (int band = 0; band < 2; band++) {
        double k = band == 0 ? 2.0 : 1.0;
        putf(&b, "<polygon %s points=\"", BAND_STYLE[band]);
        for (int64_t i = 0; i < n; i++)
            putf(&b, "%s%s,%s", i ? " " : "", N(map_x(&f, &ax, x[i])).s,
                 N(map_y(&f, &ay, mean[i] + k * sd[i])).s);
        for (int64_t i = n - 1; i >= 0; i--)
            putf(&b, " %s,%s", N(map_x(&f, &ax, x[i])).s, N(map_y(&f, &ay, mean[i] - k * sd[i])).s);
        put(&b, "\"/>\n");
    }
    put(&b, "</g>\n");
    put(&b, "<polyline id=\"bnn-mean\" fill=\"none\" stroke=\"#08306b\" stroke-width=\"2\" "
            "stroke-linejoin=\"round\" points=\"");
    for (int64_t i = 0; i < n; i++)
        putf(&b, "%s%s,%s", i ? " " : "", N(map_x(&f, &ax, x[i])).s, N(map_y(&f, &ay, mean[i])).s);
    put(&b, "\"/>\n");
    put(&b, "<g id=\"bnn-data\" fill=\"#d9480f\" stroke=\"#ffffff\" stroke-width=\"0.6\">\n");
    for (int64_t i = 0; i < ndata; i++) {
        if (!isfinite(data_x[i]) || !isfinite(data_y[i])) continue;
        putf(&b, "<circle cx=\"%s\" cy=\"%s\" r=\"3\"/>\n", N(map_x(&f, &ax, data_x[i])).s,
             N(map_y(&f, &ay, data_y[i])).s);
    }
    put(&b, "</g>\n");
    draw_axes(&b, &f, &ax, true, &ay);
    draw_xlabel(&b, &f, f.T + f.H + 8 + FS_TICK + 24, "x");
    draw_ylabel(&b, &f, 14 + FS_LABEL, "y");

    /* A one-row legend between the title and the frame, where it cannot cover data. */
    {
        const char *lab[4] = {"Predictive mean", U_PM "1" U_SIGMA, U_PM "2" U_SIGMA, "Data"};
        int nlab = ndata > 0 ? 4 : 3;
        double w = 0.0;
        for (int i = 0; i < nlab; i++)
            w += SWATCH_W + 8 + text_width(lab[i], FS_LEGEND) + 22;
        double lx = f.L + (f.W - w + 22) / 2, ly = f.T - 20;
        put(&b, "<g id=\"bnn-legend\">\n");
        legend_line(&b, lx, ly, "stroke=\"#08306b\" stroke-width=\"2\"", lab[0]);
        lx += SWATCH_W + 8 + text_width(lab[0], FS_LEGEND) + 22;
        legend_rect(&b, lx, ly, BAND_STYLE[1], lab[1]);
        lx += SWATCH_W + 8 + text_width(lab[1], FS_LEGEND) + 22;
        legend_rect(&b, lx, ly, BAND_STYLE[0], lab[2]);
        lx += SWATCH_W + 8 + text_width(lab[2], FS_LEGEND) + 22;
        if (nlab == 4) legend_dot(&b, lx, ly, "fill=\"#d9480f\" stroke=\"#ffffff\"", lab[3]);
        put(&b, "</g>\n");
    }
    return svg_save(&b, path);
}
