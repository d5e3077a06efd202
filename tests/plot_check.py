#!/usr/bin/env python3
"""Checks that a figure of bnn plot draws what bnn predict computes at the same inputs.

usage: plot_check.py bands BNN MODEL FIGURE.svg TMPDIR
       plot_check.py cells BNN MODEL FIGURE.svg TMPDIR prob|entropy
Positions are read back through the figure's own axes: its frame, and its first and last tick
labels on each axis (a y label's baseline sits 0.36 of its 11.5-unit font below its tick).
  bands: the mean line is at predict's mean, the outer band at mean ± 2 sd and the inner at
         mean ± sd (sd = sqrt(var)), each within 2e-3, at every x the line is drawn at.
  cells: each cell of the map has the viridis colour (8 bits a channel, within 3 levels) of
         p(class 1) over [0, 1] or of the entropy over [0, log 2] nats at the cell's centre.
Exit 1 on a mismatch, naming the first few."""
import csv
import math
import re
import subprocess
import sys

TICK = r'<text x="([-\d.]+)" y="([-\d.]+)" text-anchor="%s" font-size="11.5">([^<]*)</text>'

# viridis at 9 evenly spaced knots, as src/metrics/svg.c interpolates it.
VIRIDIS = [(0x44, 0x01, 0x54), (0x47, 0x2D, 0x7B), (0x3B, 0x52, 0x8B), (0x2C, 0x72, 0x8E),
           (0x21, 0x90, 0x8C), (0x27, 0xAD, 0x81), (0x5D, 0xC8, 0x63), (0xAA, 0xDC, 0x32),
           (0xFD, 0xE7, 0x25)]


def num(text):
    return float(text.replace("\u2212", "-"))


def axes(svg):
    """Pixel -> value maps for x and y, from each axis' first and last tick label."""
    xt = [(float(x), num(v)) for x, _, v in re.findall(TICK % "middle", svg)]
    yt = [(float(y) - 0.36 * 11.5, num(v)) for _, y, v in re.findall(TICK % "end", svg)]

    def axis(t):
        (p0, v0), (p1, v1) = t[0], t[-1]
        return lambda p: v0 + (p - p0) * (v1 - v0) / (p1 - p0)
    return axis(xt), axis(yt)


def predict(bnn, model, rows, header, tmp):
    """bnn predict's rows for the given inputs (a CSV with a dummy target column)."""
    with open(tmp + "/check_in.csv", "w") as f:
        f.write(header + "\n" + "".join(",".join("%.9g" % v for v in r) + ",0\n" for r in rows))
    subprocess.run([bnn, "predict", "-m", model, "--data", "csv:" + tmp + "/check_in.csv", "-o",
                    tmp + "/check_pred.csv"], check=True, capture_output=True)
    with open(tmp + "/check_pred.csv") as f:
        return list(csv.DictReader(f))


def points(tag):
    pts = re.search(r' points="([^"]*)"', tag).group(1).split()
    return [tuple(map(float, p.split(","))) for p in pts]


def bands(bnn, model, svg, tmp):
    fx, fy = axes(svg)
    mean = points(re.search(r'<polyline id="bnn-mean"[^>]*>', svg).group(0))
    polys = [points(t) for t in re.findall(r'<polygon [^>]*>', svg)]
    n = len(mean)
    if len(polys) != 2 or any(len(b) != 2 * n for b in polys):
        return ["%d points, bands of %s" % (n, [len(b) for b in polys])]
    rows = predict(bnn, model, [(fx(px),) for px, _ in mean], "x,y", tmp)
    bad = []
    for i, r in enumerate(rows):
        mu, sd = float(r["mean"]), math.sqrt(float(r["var"]))
        got, want = [fy(mean[i][1])], [mu]
        for k, b in zip((2, 1), polys):  # upper edge left to right, lower edge back
            got += [fy(b[i][1]), fy(b[2 * n - 1 - i][1])]
            want += [mu + k * sd, mu - k * sd]
        if max(abs(a - b) for a, b in zip(got, want)) > 2e-3:
            bad.append("x %.4g: drawn %s, predict %s" % (fx(mean[i][0]), got, want))
    return bad


def viridis(t):
    u = 8 * min(max(t, 0.0), 1.0)
    k = min(int(u), 7)
    return [math.floor((1 - (u - k)) * VIRIDIS[k][c] + (u - k) * VIRIDIS[k + 1][c] + 0.5)
            for c in range(3)]


def cells(bnn, model, svg, tmp, what):
    fx, fy = axes(svg)
    frame = re.search(r'<rect x="([-\d.]+)" y="([-\d.]+)" width="([\d.]+)" height="([\d.]+)" '
                      r'fill="none" stroke="#444444"', svg)
    L, T, W, H = map(float, frame.groups())
    x0, x1, y0, y1 = fx(L), fx(L + W), fy(T + H), fy(T)
    g = svg[svg.index('<g id="bnn-cells"'):]
    found = re.findall(r'<rect x="(\d+)" y="(\d+)" width="1" height="1" fill="#([0-9a-f]{6})"/>',
                       g[:g.index("</g>")])
    n = math.isqrt(len(found))
    if n < 2 or n * n != len(found):
        return ["%d cells" % len(found)]
    centres = [(x0 + (int(i) + 0.5) / n * (x1 - x0), y1 - (int(j) + 0.5) / n * (y1 - y0))
               for i, j, _ in found]  # row j counts from the top
    rows = predict(bnn, model, centres, "x1,x2,y", tmp)
    bad = []
    for (i, j, col), r in zip(found, rows):
        t = float(r["p_1"]) if what == "prob" else float(r["entropy"]) / math.log(2)
        want, got = viridis(t), [int(col[c:c + 2], 16) for c in (0, 2, 4)]
        if max(abs(a - b) for a, b in zip(want, got)) > 3:
            bad.append("cell (%s, %s): #%s, predict %.4g: %s" % (i, j, col, t, want))
    return bad


def main():
    mode, bnn, model, path, tmp = sys.argv[1:6]
    with open(path, encoding="utf-8") as f:
        svg = f.read()
    bad = bands(bnn, model, svg, tmp) if mode == "bands" else cells(bnn, model, svg, tmp,
                                                                     sys.argv[6])
    for b in bad[:3]:
        print(b, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
