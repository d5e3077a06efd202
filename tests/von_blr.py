#!/usr/bin/env python3
"""Checks a `bnn von` posterior of a linear model with a Gaussian likelihood against Bayesian
linear regression computed here: von_blr.py DATA.csv VON.safetensors PRIOR SIGMA [LOSS OBJECTIVE].
The CSV has a
header, feature columns and the target last; the model is mlp:D-1, whose one step with rho 1 must
be the exact posterior N(mean, A^-1), A = X'X/sigma^2 + prior I, mean = A^-1 X'y/sigma^2 over
X = [features (as float32, as bnn reads them), 1]. The file holds the mean as the layer's F32
weights and the curvature laplace.dense = sigma^2 (A - prior I) = X'X (F64). Standard library
only; prints the errors and exits 1 when they are over the tolerances (1e-5 for the float
weights, 1e-6 for X'X, which bnn sums in float within a batch and in double across batches).
LOSS and OBJECTIVE, when given, are what bnn von printed at the mean: the summed Gaussian negative
log-likelihood (with its 1/sigma^2 and normalising constant) and that plus prior/2 |mean|^2, each
checked to 1e-5 against the exact mean's."""
import csv
import math
import struct
import sys

from st_meta import read_st


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def tensor(header, data, name):
    t = header[name]
    a, b = t["data_offsets"]
    fmt = {"F32": "f", "F64": "d"}[t["dtype"]]
    n = (b - a) // struct.calcsize(fmt)
    return list(struct.unpack("<%d%s" % (n, fmt), data[a:b]))


def solve(A, b):
    """A x = b by Gaussian elimination with partial pivoting (A small and well conditioned)."""
    n = len(b)
    M = [row[:] + [b[i]] for i, row in enumerate(A)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(M[r][c]))
        M[c], M[p] = M[p], M[c]
        for r in range(c + 1, n):
            f = M[r][c] / M[c][c]
            for k in range(c, n + 1):
                M[r][k] -= f * M[c][k]
    x = [0.0] * n
    for r in reversed(range(n)):
        x[r] = (M[r][n] - sum(M[r][k] * x[k] for k in range(r + 1, n))) / M[r][r]
    return x


def main():
    path, st, prior, sigma = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    X = [[f32(float(v)) for v in r[:-1]] + [1.0] for r in rows]
    y = [f32(float(r[-1])) for r in rows]
    d = len(X[0])
    G = [[sum(x[i] * x[j] for x in X) for j in range(d)] for i in range(d)]
    A = [[G[i][j] / sigma**2 + (prior if i == j else 0.0) for j in range(d)] for i in range(d)]
    mean = solve(A, [sum(x[i] * t for x, t in zip(X, y)) / sigma**2 for i in range(d)])
    header, data = read_st(st)
    got = tensor(header, data, "0.weight") + tensor(header, data, "0.bias")
    dense = tensor(header, data, "laplace.dense")
    em = max(abs(g - m) for g, m in zip(got, mean)) / max(abs(m) for m in mean)
    ed = max(abs(dense[i * d + j] - G[i][j]) for i in range(d) for j in range(d)) / max(
        abs(G[i][j]) for i in range(d) for j in range(d))
    print("BLR: mean rel err %.2e, X'X rel err %.2e" % (em, ed))
    good = em < 1e-5 and ed < 1e-6
    if len(sys.argv) > 6:
        loss, obj = float(sys.argv[5]), float(sys.argv[6])
        nll = sum(0.5 * ((sum(a * m for a, m in zip(x, mean)) - t) / sigma) ** 2
                  + math.log(sigma) + 0.5 * math.log(2 * math.pi) for x, t in zip(X, y))
        J = nll + 0.5 * prior * sum(m * m for m in mean)
        el, eo = abs(loss - nll) / abs(nll), abs(obj - J) / abs(J)
        print("BLR: loss %.6g (exact %.6g, rel err %.2e), objective %.6g (exact %.6g, rel err %.2e)"
              % (loss, nll, el, obj, J, eo))
        good = good and el < 1e-5 and eo < 1e-5
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
