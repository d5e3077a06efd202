#!/usr/bin/env python3
"""Recomputes bnn eval's OOD numbers from bnn predict's CSVs of the same inputs.

usage: ood_check.py EVAL.json IN.csv OOD.csv
The JSON's first OOD entry must agree with scores recomputed here, independently of the library:
AUROC with the OOD examples as positives (ties count one half) for the entropy and for
1 - max_prob, average precision (scikit-learn's definition) for the entropy, and the mean OOD
entropy. The CSVs hold 9 significant digits (earlier 6), hence the tolerances. Exit 1 on a mismatch."""
import csv
import json
import sys


def column(path, name):
    with open(path) as f:
        return [float(r[name]) for r in csv.DictReader(f)]


def auroc(pos, neg):
    wins = 0.0
    for p in pos:
        for q in neg:
            wins += 1.0 if p > q else 0.5 if p == q else 0.0
    return wins / (len(pos) * len(neg))


def average_precision(pos, neg):
    scored = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg], key=lambda t: -t[0])
    ap, tp, fp, i = 0.0, 0, 0, 0
    while i < len(scored):
        j, dp = i, 0
        while j < len(scored) and scored[j][0] == scored[i][0]:
            dp += scored[j][1]
            j += 1
        tp += dp
        fp += (j - i) - dp
        if dp:
            ap += dp / len(pos) * tp / (tp + fp)
        i = j
    return ap


def main():
    rep = json.load(open(sys.argv[1]))["ood"][0]
    ent_in, ent_ood = column(sys.argv[2], "entropy"), column(sys.argv[3], "entropy")
    mp_in = [1.0 - v for v in column(sys.argv[2], "max_prob")]
    mp_ood = [1.0 - v for v in column(sys.argv[3], "max_prob")]
    checks = [
        ("auroc.entropy", rep["auroc"]["entropy"], auroc(ent_ood, ent_in), 2e-3),
        ("auroc.max_prob", rep["auroc"]["max_prob"], auroc(mp_ood, mp_in), 2e-3),
        ("aupr.entropy", rep["aupr"]["entropy"], average_precision(ent_ood, ent_in), 5e-3),
        ("mean_entropy", rep["mean_entropy"], sum(ent_ood) / len(ent_ood), 1e-5),
    ]
    bad = 0
    for name, got, want, tol in checks:
        status = "ok" if abs(got - want) <= tol else "MISMATCH"
        bad += status != "ok"
        print("%-15s eval %.6f  recomputed %.6f  %s" % (name, got, want, status))
    # The scores must separate the sets somewhat, or a flipped AUROC (1 - x) would look the same.
    if abs(rep["auroc"]["entropy"] - 0.5) < 0.05:
        print("AUROC too close to 0.5 to tell a direction")
        bad += 1
    sys.exit(1 if bad else 0)


main()
