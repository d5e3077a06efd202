#!/usr/bin/env bash
# End-to-end tests of evaluation in the bnn command: metrics, OOD detection, the rotation sweep,
# JSON (validated against docs/eval.schema.json), SVG plots, predict's CSV, temperature scaling,
# compare, and the bad inputs the issue names.
# usage: cli_eval.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"
svg_ok() { head -c 300 "$1" | grep -q "<svg" && grep -q "</svg>" "$1" && ok || bad "$1 is not an SVG"; }

# plot_bands MODEL: bnn plot's regression figure draws what bnn predict computes at the same x
# (tests/plot_check.py bands: the mean line at the predictive mean, the bands at mean ± sd and
# mean ± 2 sd, positions read back through the figure's axes).
plot_bands() {
  run "plot bands" "$BNN" plot -m "$1" -o "$T/bands.svg"
  python3 "$HERE/plot_check.py" bands "$BNN" "$1" "$T/bands.svg" "$T" && ok ||
    bad "plot of $1: mean and bands differ from predict"
}

# plot_cells MODEL WHAT: each cell of bnn plot's 12 x 12 map has the viridis colour of what bnn
# predict computes at the cell's centre (tests/plot_check.py cells).
plot_cells() {
  run "plot $2" "$BNN" plot -m "$1" --what "$2" --grid 12 -o "$T/cells.svg"
  python3 "$HERE/plot_check.py" cells "$BNN" "$1" "$T/cells.svg" "$T" "$2" && ok ||
    bad "plot --what $2 of $1: cells differ from predict"
}

# --- moons: MAP with a hold-out, IVON; OOD against uniform noise in the plane
run "train map" "$BNN" train --data moons --epochs 30 --batch-size 32 --lr 1e-2 --holdout 200 -q -o "$T/map.safetensors"
run "train ivon" "$BNN" train --data moons --method ivon --epochs 30 --batch-size 32 --lr 0.5 --hess-init 0.1 -q -o "$T/ivon.safetensors"
run "eval ood" "$BNN" eval -m "$T/ivon.safetensors" --samples 8 --ood noise:2:500 --json "$T/ivon.json" --plot "$T/rel.svg"
grep -q "out-of-distribution" "$T/out" && ok || bad "eval prints the OOD table"
grep -q '"ood":' "$T/ivon.json" && grep -q '"auroc":' "$T/ivon.json" && ok || bad "JSON has OOD AUROC"
svg_ok "$T/rel.svg"
# The in-distribution means are predict's per-example scores averaged (the same 8 draws).
run "predict ivon, 8 samples" "$BNN" predict -m "$T/ivon.safetensors" --data moons --samples 8 -o "$T/ivon_in.csv"
/usr/bin/python3 -c "
import csv, json, sys
d, rows = json.load(open(sys.argv[1])), list(csv.DictReader(open(sys.argv[2])))
mi = sum(float(r['mutual_info']) for r in rows) / len(rows)
ent = sum(float(r['entropy']) for r in rows) / len(rows)
sys.exit(not (abs(d['mean_mutual_info'] - mi) < 1e-6 and abs(d['mean_entropy'] - ent) < 1e-6 and mi < 0.5 * ent and d['samples'] == 8))" \
  "$T/ivon.json" "$T/ivon_in.csv" && ok || bad "eval's mean entropy and mutual information are not predict's"
run "eval map json" "$BNN" eval -m "$T/map.safetensors" --json "$T/map.json"
# The seed is in a report whose draws it made, and only there.
grep -q '"seed"' "$T/map.json" && bad "a MAP report on the model's own data records a seed" || ok
run "eval ivon, seed 7" "$BNN" eval -m "$T/ivon.safetensors" --samples 4 --seed 7 --json "$T/ivon7.json"
grep -q '"seed":	7,' "$T/ivon7.json" && ok || bad "a sampled report does not record its seed"
# eval's OOD numbers, recomputed from predict's per-example scores of the same inputs: AUROC with
# the OOD set as positives (for the entropy and for 1 - max prob), AUPR, the mean OOD entropy.
run "eval map ood" "$BNN" eval -m "$T/map.safetensors" --ood noise:2:500 --json "$T/mapood.json"
# A name longer than 16 characters widens the table's first column: every line of it as long.
printf 'a,b,y\n3,3,0\n4,-3,1\n-5,2,0\n6,6,1\n' >"$T/far_away_points_outside.csv"
run "eval, a long OOD name" "$BNN" eval -m "$T/map.safetensors" --ood noise:2:500 --ood "csv:$T/far_away_points_outside.csv"
[ "$(awk '/^out-of-distribution/ { t = 1; next } /in-distribution mean/ { t = 0 } t { print length }' "$T/out" | sort -u | wc -l)" -eq 1 ] &&
  ok || bad "the OOD table's lines differ in length: $(cat "$T/out")"
run "predict map test" "$BNN" predict -m "$T/map.safetensors" --data moons -o "$T/map_in.csv"
run "predict map noise" "$BNN" predict -m "$T/map.safetensors" --data noise:2:500 -o "$T/map_ood.csv"
grep -q '"seed":	0,' "$T/mapood.json" && ok || bad "a report with generated --ood data does not record the seed"
run "OOD numbers recomputed" /usr/bin/python3 "$HERE/ood_check.py" "$T/mapood.json" "$T/map_in.csv" "$T/map_ood.csv"
# Saturated logits: the last layer scaled by 30 puts most examples' smaller probability far below
# the double's 1e-16 resolution near 1, where 1 - max prob by subtraction is 0 for them all. For
# two classes that score and the entropy both grow with the smaller probability, so they rank the
# examples alike and must give the same AUROC and AUPR (before, 0.5 against the entropy's).
run "scaled map" /usr/bin/python3 "$HERE/st_scale.py" "$T/map.safetensors" "$T/sharp.safetensors" 30 4.weight 4.bias
run "eval saturated ood" "$BNN" eval -m "$T/sharp.safetensors" --ood noise:2:500 --json "$T/sharp.json"
/usr/bin/python3 -c "
import json, sys
o = json.load(open(sys.argv[1]))['ood'][0]
sys.exit(not (o['auroc']['max_prob'] == o['auroc']['entropy'] and o['aupr']['max_prob'] == o['aupr']['entropy']
              and 0.55 < o['auroc']['entropy'] < 1))" "$T/sharp.json" \
  && ok || bad "1 - max prob ranks saturated predictions unlike the entropy: $(grep -A3 '"auroc"' "$T/sharp.json" | tr -d '\n\t')"
# Logits thousands apart (the last layer scaled by 3000): a wrong prediction's true class lies
# more than 745 nats behind, its probability 0 in double. The NLL comes from log-probabilities,
# finite and equal to numpy's log-softmax of the same network (as PyTorch's cross-entropy gives);
# from probabilities it was +inf.
run "scaled map, 3000" /usr/bin/python3 "$HERE/st_scale.py" "$T/map.safetensors" "$T/huge.safetensors" 3000 4.weight 4.bias
/usr/bin/python3 -c "
import numpy as np
r = np.random.default_rng(1)
x = r.uniform(-3, 3, size=(300, 2)); y = (x[:, 1] > 0).astype(int)
np.savetxt('$T/far.csv', np.c_[x, y], delimiter=',', fmt='%.6f')"
run "eval huge logits" "$BNN" eval -m "$T/huge.safetensors" --data "csv:$T/far.csv" --json "$T/huge.json"
/usr/bin/python3 - "$T/huge.safetensors" "$T/far.csv" "$T/huge.json" "$HERE" <<'PY' && ok || bad "NLL of logits thousands apart is not numpy's log-softmax NLL"
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[4])
from st_meta import read_st
header, data = read_st(sys.argv[1])
def t(name):
    lo, hi = header[name]["data_offsets"]
    return np.frombuffer(data[lo:hi], dtype="<f4").reshape(header[name]["shape"]).astype(np.float64)
spec = header["__metadata__"]["bnn.model"].split(":")
act = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0)}[spec[2] if len(spec) > 2 else "relu"]
d = np.loadtxt(sys.argv[2], delimiter=",")
h = d[:, :2]
for i in (0, 2):
    h = act(h @ t("%d.weight" % i).T + t("%d.bias" % i))
f = h @ t("4.weight").T + t("4.bias")
m = f.max(axis=1, keepdims=True)
lp = f - m - np.log(np.exp(f - m).sum(axis=1, keepdims=True))
nll = -lp[np.arange(len(d)), d[:, 2].astype(int)].mean()
got = json.load(open(sys.argv[3]))["nll"]
print("nll", got, "numpy", nll, file=sys.stderr)
sys.exit(not (np.isfinite(got) and nll > 50 and abs(got - nll) <= 1e-4 * nll))
PY
# S samples of a probability 1 summed in log space can come out 9e-16 above log S: the averaged
# probability was 1 + 2e-15, which the metrics refused (for 197 samples here).
run "scaled ivon, 3000" /usr/bin/python3 "$HERE/st_scale.py" "$T/ivon.safetensors" "$T/hugeivon.safetensors" 3000 4.weight 4.bias
run "eval saturated, 197 samples" "$BNN" eval -m "$T/hugeivon.safetensors" --data "csv:$T/far.csv" --samples 197
# --ood moons on a moons model, both seeds 0 (the defaults): a fresh sample of the same
# distribution, not the test split again (which gave AUROC exactly 0.5 and equal entropies).
run "eval --ood moons" "$BNN" eval -m "$T/map.safetensors" --ood moons --json "$T/oodm.json"
/usr/bin/python3 -c "
import json, sys
d = json.load(open(sys.argv[1])); o = d['ood'][0]
sys.exit(not (o['auroc']['entropy'] != 0.5 and abs(o['mean_entropy'] - d['mean_entropy']) > 1e-9))" "$T/oodm.json" \
  && ok || bad "--ood moons is the test split again: $(tr -d '\n\t' <"$T/oodm.json" | head -c 300)"
auroc=$(/usr/bin/python3 -c "import json, sys; print('%.4f' % json.load(open(sys.argv[1]))['ood'][0]['auroc']['entropy'])" "$T/mapood.json")
run "compare map ood" "$BNN" compare -m "$T/map.safetensors" --ood noise:2:500
grep -q "^OOD AUROC, noise:2:500  *$auroc$" "$T/out" && ok || bad "compare's OOD AUROC is eval's $auroc: $(grep AUROC "$T/out")"
rows=$(/usr/bin/python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print('%.4f %.4f %.4f %.4f' % (d['accuracy'], d['nll'], d['ece'], d['brier']))" "$T/mapood.json")
[ "$(awk '/^test (accuracy|NLL|ECE|Brier)/ { printf "%s%s", sep, $NF; sep = " " }' "$T/out")" = "$rows" ] \
  && ok || bad "compare's accuracy, NLL, ECE and Brier rows are not eval's $rows: $(grep '^test' "$T/out" | tr '\n' ';')"
run "compare" "$BNN" compare -m "$T/map.safetensors" -m "$T/ivon.safetensors" --samples 4 --ood noise:2:300
grep -q "^moons" "$T/out" && grep -q "OOD AUROC, noise:2:300" "$T/out" && ok || bad "compare table"
grep -q "^moons  *adamw  *ivon$" "$T/out" && ! grep -q "safetensors" "$T/out" && ok || bad "compare: columns of distinct methods are named by method alone"
! grep -q "drawn with seed" "$T/err" && ok || bad "compare of models of one draw notes a seed"
# A model trained on another draw of the same generated data is scored on the first model's draw
# (its numbers are not eval's), and compare says so.
run "train map, seed 5" "$BNN" train --data moons --epochs 2 --seed 5 -q -o "$T/map5.safetensors"
run "compare, another draw" "$BNN" compare -m "$T/map.safetensors" -m "$T/map5.safetensors"
grep -q "^note: $T/map5.safetensors was trained on moons drawn with seed 5; like every model here it is scored on the draw with seed 0 (the first model's), so its numbers are not eval's$" "$T/err" \
  && ok || bad "compare does not note the second draw: $(cat "$T/err")"
# A model trained on other data, with another seed, gets no note: its draw is not in question.
python3 -c "
import random
random.seed(4)
for i in range(200): print('%.4f,%.4f,%d' % (random.gauss(i % 2, 0.5), random.gauss(0, 0.5), i % 2))" >"$T/two.csv"
run "train on a CSV, seed 9" "$BNN" train --data "csv:$T/two.csv" --epochs 2 --seed 9 -q -o "$T/csv9.safetensors"
run "compare, a model of other data" "$BNN" compare -m "$T/map.safetensors" -m "$T/csv9.safetensors"
! grep -q "drawn with seed" "$T/err" && ok || bad "compare notes the draw of a model trained on other data: $(cat "$T/err")"
# Two models of one method: numbered columns and a legend of their files.
run "compare two of a method" "$BNN" compare -m "$T/map.safetensors" -m "$T/ivon.safetensors" -m "$T/map.safetensors"
grep -q "^moons  *adamw-1  *ivon  *adamw-2$" "$T/out" && grep -q "^adamw-1  *$T/map.safetensors$" "$T/out" \
  && grep -q "^ivon  *$T/ivon.safetensors$" "$T/out" && ok || bad "compare numbers repeated methods: $(cat "$T/out")"

# --- predict: the CSV's columns and rows
run "predict" "$BNN" predict -m "$T/ivon.safetensors" --data moons --samples 4 -o "$T/pred.csv"
[ "$(head -1 "$T/pred.csv")" = "p_0,p_1,pred,max_prob,entropy,mutual_info" ] && ok || bad "predict header: $(head -1 "$T/pred.csv")"
[ "$(wc -l <"$T/pred.csv")" -eq 501 ] && ok || bad "predict rows: $(wc -l <"$T/pred.csv")"
awk -F, 'NR > 1 { s = $1 + $2; if ($0 ~ /nan|inf/ || !(s > 0.999 && s < 1.001 && $6 + 0 >= 0)) bad = 1 } END { exit bad }' "$T/pred.csv" && ok || bad "probabilities sum to 1, MI >= 0"
printf '0.5,0.25\n-1,0.5\n1.5,-0.5\n' >"$T/in.csv"
run "predict csv input" "$BNN" predict -m "$T/map.safetensors" --input "$T/in.csv" -o "$T/pred2.csv"
[ "$(wc -l <"$T/pred2.csv")" -eq 4 ] && awk -F, 'NR > 1 && $6 != 0 { exit 1 }' "$T/pred2.csv" && ok || bad "point estimate: 3 rows, MI 0"

# --- temperature scaling on the held-out examples
run "calibrate" "$BNN" calibrate -m "$T/map.safetensors" -o "$T/cal.safetensors"
grep -q "^temperature" "$T/out" && ok || bad "calibrate prints the temperature"
grep -q "stopped at its" "$T/err" && bad "a note for a temperature inside the bounds" || ok
# The held-out examples are the training file's last rows: calibrating on those rows given as
# --data fits the same temperature.
/usr/bin/python3 - "$T/blob.csv" "$T/blob_val.csv" <<'PY'
import random, sys
random.seed(5)
with open(sys.argv[1], "w") as f, open(sys.argv[2], "w") as g:
    f.write("x,y,label\n"), g.write("x,y,label\n")
    for i in range(400):
        c = random.randrange(2)
        line = "%.5f,%.5f,%d\n" % (random.gauss(1.2 * c, 1), random.gauss(-0.8 * c, 1), c)
        f.write(line)
        if i >= 300: g.write(line)
PY
run "train blobs" "$BNN" train --data "csv:$T/blob.csv" --epochs 20 --holdout 100 -q -o "$T/blob.safetensors"
run "calibrate held out" "$BNN" calibrate -m "$T/blob.safetensors" -o "$T/blob_c1.safetensors"
t1=$(awk '/^temperature/ {print $2}' "$T/out")
run "calibrate on those rows" "$BNN" calibrate -m "$T/blob.safetensors" --data "csv:$T/blob_val.csv" -o "$T/blob_c2.safetensors"
t2=$(awk '/^temperature/ {print $2}' "$T/out")
[ -n "$t1" ] && [ "$t1" = "$t2" ] && ok || bad "held-out rows: temperature '$t1' against '$t2' on the last 100 rows"
# --data naming the model's own file is its own data: the same hold-out, not all 400 rows
run "calibrate, --data the training file" "$BNN" calibrate -m "$T/blob.safetensors" --data "csv:$T/blob.csv" -o "$T/blob_c3.safetensors"
grep -q "^temperature $t1 .*(fitted on 100 held-out examples of csv:" "$T/out" && cmp -s "$T/blob_c1.safetensors" "$T/blob_c3.safetensors" &&
  ok || bad "calibrate --data its own file: $(head -1 "$T/out") against $t1"
# ... judged by the file a split reads: a model trained on csv:TRAIN,TEST keeps its hold-out for
# --data csv:TRAIN and for csv:TRAIN,TEST's train split, and takes TEST whole
run "train blobs on a pair" "$BNN" train --data "csv:$T/blob.csv,$T/blob_val.csv" --epochs 20 --holdout 100 -q -o "$T/pair.safetensors"
run "calibrate the pair" "$BNN" calibrate -m "$T/pair.safetensors" -o "$T/pair_c0.safetensors"
tp=$(awk '/^temperature/ {print $2}' "$T/out")
for d in "csv:$T/blob.csv" "csv:$T/blob.csv,$T/blob_val.csv --split train"; do
  # shellcheck disable=SC2086  # d is a spec and maybe an option
  run "calibrate the pair, --data $d" "$BNN" calibrate -m "$T/pair.safetensors" --data $d -o "$T/pair_c1.safetensors"
  grep -q "^temperature $tp .*(fitted on 100 held-out examples of csv:" "$T/out" && cmp -s "$T/pair_c0.safetensors" "$T/pair_c1.safetensors" &&
    ok || bad "calibrate the pair, --data $d: $(head -1 "$T/out") against $tp"
done
run "calibrate the pair, its test file" "$BNN" calibrate -m "$T/pair.safetensors" --data "csv:$T/blob.csv,$T/blob_val.csv" -o "$T/pair_c2.safetensors"
grep -q "(fitted on 100 examples of csv:.*, test split)" "$T/out" && ok || bad "calibrate the pair's test file: $(head -1 "$T/out")"
run "eval calibrated" "$BNN" eval -m "$T/cal.safetensors" --json "$T/cal.json"
grep -q "temperature" "$T/out" && ok || bad "eval applies the temperature"
run "laplace of a calibrated model" "$BNN" laplace -m "$T/cal.safetensors" --hessian kron -o "$T/cal_la.safetensors"
grep -q "note: .*calibrated (temperature .*not the temperature" "$T/err" && ok || bad "laplace says it drops the temperature"
run "train map without holdout" "$BNN" train --data moons --epochs 2 -q -o "$T/map_all.safetensors"
# A temperature at a bound of the search says so: labels the logits cannot tell apart (1000),
# and validation data the logits separate perfectly (0.001).
# (validation files apart from the training file: calibrate fits no temperature on the rows
# trained on)
printf '0,0,0\n0,0,1\n0,0,0\n0,0,1\n0,0,0\n0,0,1\n' | tee "$T/same_val.csv" >"$T/same.csv"
run "train on indistinguishable rows" "$BNN" train --data "csv:$T/same.csv" --epochs 1 -q -o "$T/same.safetensors"
run "calibrate at the upper bound" "$BNN" calibrate -m "$T/same.safetensors" --data "csv:$T/same_val.csv" -o "$T/same_cal.safetensors"
grep -q "^temperature 1000.0000" "$T/out" && grep -q "^note: the temperature stopped at its upper bound 1000: on these 6 validation" "$T/err" \
  && ok || bad "calibrate at T = 1000 without the note: $(cat "$T/out" "$T/err")"
printf '0,0,0\n1,1,1\n0,0,0\n1,1,1\n' | tee "$T/sep_val.csv" >"$T/sep.csv"
run "train on separable rows" "$BNN" train --data "csv:$T/sep.csv" --epochs 200 --lr 0.05 -q -o "$T/sep.safetensors"
run "calibrate at the lower bound" "$BNN" calibrate -m "$T/sep.safetensors" --data "csv:$T/sep_val.csv" -o "$T/sep_cal.safetensors"
grep -q "^temperature 0.0010" "$T/out" && grep -q "^note: the temperature stopped at its lower bound 0.001: the logits separate the 4 validation" "$T/err" \
  && ok || bad "calibrate at T = 0.001 without the note: $(cat "$T/out" "$T/err")"
expect_fail "calibrate without holdout" "holdout" "$BNN" calibrate -m "$T/map_all.safetensors" -o "$T/never.safetensors"

# --- plot on the toy problems
run "plot moons" "$BNN" plot -m "$T/ivon.safetensors" --samples 4 --what entropy -o "$T/moons.svg"
svg_ok "$T/moons.svg"
plot_cells "$T/map.safetensors" prob
plot_cells "$T/map.safetensors" entropy
# Unlabelled points are drawn without classes (they were shown as "class 0").
run "plot over unlabelled data" "$BNN" plot -m "$T/map.safetensors" --data noise:2:50 -o "$T/noise.svg"
svg_ok "$T/noise.svg"
! grep -q "class 0" "$T/noise.svg" && ok || bad "unlabelled points drawn as class 0"
# A constant coordinate at 3e10, where a margin of 1e-6 vanished and the picture was refused.
awk 'BEGIN { srand(2); print "a,b,y"; for (i = 0; i < 40; i++) { v = rand(); printf "3e10,%.4f,%d\n", v, (v > 0.5) } }' >"$T/const.csv"
run "train with a constant coordinate" "$BNN" train --data "csv:$T/const.csv" --epochs 2 -q -o "$T/const.safetensors"
run "plot it" "$BNN" plot -m "$T/const.safetensors" -o "$T/const.svg"
svg_ok "$T/const.svg"
run "train sine" "$BNN" train --data sine-gap --epochs 100 --batch-size 16 --lr 1e-2 --noise 0.1 -q -o "$T/sine.safetensors"
run "plot sine" "$BNN" plot -m "$T/sine.safetensors" -o "$T/sine.svg"
svg_ok "$T/sine.svg"
plot_bands "$T/sine.safetensors"
run "eval sine json" "$BNN" eval -m "$T/sine.safetensors" --json "$T/sine.json"
expect_usage "--bins for a regressor" "--bins sets a classifier's reliability bins (ECE); .*sine.safetensors is a regression model" \
  "$BNN" eval -m "$T/sine.safetensors" --bins 10
# predict's regression columns: mean, then variance (a point estimate's is the noise, 0.1^2).
run "predict sine" "$BNN" predict -m "$T/sine.safetensors" --data sine-gap -o "$T/sine.csv"
[ "$(awk -F, 'NR > 1 { print $2 }' "$T/sine.csv" | sort -u)" = 0.01 ] && \
  [ "$(awk -F, 'NR > 1 { print $1 }' "$T/sine.csv" | sort -u | wc -l)" -gt 100 ] && ok || bad "predict sine: mean,var columns: $(head -3 "$T/sine.csv")"

# --- a rotation sweep on images (a small model on Fashion-MNIST, one epoch)
if [ -d "${BNN_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}" ]; then
  run "train fmnist small" "$BNN" train --data fmnist --model mlp:784-32-10 --epochs 1 -q -o "$T/fm.safetensors"
  run "eval shift" "$BNN" eval -m "$T/fm.safetensors" --shift rot --ood fmnist:flip --json "$T/fm.json" --plot "$T/shift.svg"
  [ "$(grep -c '°' "$T/out")" -eq 13 ] && ok || bad "13 rotation rows"
  expect_usage "shift on rotated data" "fmnist:rot=10 is already rotated" "$BNN" eval -m "$T/fm.safetensors" --shift rot --data fmnist:rot=10
  # The sweep rotates the split asked for: at 0 degrees it is that split's own report.
  run "eval shift, train split" "$BNN" eval -m "$T/fm.safetensors" --split train --shift rot --json "$T/fmtr.json"
  /usr/bin/python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
z = [r for r in d['shift'] if r['rotation'] == 0][0]
sys.exit(not (d['split'] == 'train' and abs(z['accuracy'] - d['accuracy']) < 1e-9 and abs(z['nll'] - d['nll']) < 1e-9))" "$T/fmtr.json" \
    && ok || bad "the train split's sweep at 0 degrees is not its report"
  svg_ok "$T/shift.svg"
else
  echo "note: Fashion-MNIST not installed; shift sweep skipped" >&2
fi

# --- bad input: wrong column count for the model, labels outside the classes, an empty file
printf '0.1,0.2,0.3\n' >"$T/cols.csv"
expect_usage "predict wrong columns" "expects 2" "$BNN" predict -m "$T/map.safetensors" --input "$T/cols.csv" -o "$T/never.csv"
printf 'a,b,label\n0.1,0.2,0\n0.3,0.1,5\n' >"$T/labels.csv"
expect_fail "labels outside classes" "classes" "$BNN" eval -m "$T/map.safetensors" --data "csv:$T/labels.csv"
: >"$T/empty.csv"
expect_fail "empty input" "empty" "$BNN" predict -m "$T/map.safetensors" --input "$T/empty.csv" -o "$T/never.csv"
expect_usage "ood wrong width" "features" "$BNN" eval -m "$T/map.safetensors" --ood noise:3
expect_fail "shift on moons" "rot" "$BNN" eval -m "$T/map.safetensors" --shift rot
expect_usage "plot of a 784-input model" "is a classifier with 784 inputs and 10 classes: plot draws classifiers of 2 inputs and regressors of 1 input and one target" "$BNN" plot -m "$T/fm.safetensors" -o "$T/never.svg"
[ ! -e "$T/never.csv" ] && [ ! -e "$T/never.svg" ] && [ ! -e "$T/never.safetensors" ] && ok || bad "a failed command left a file"

cli_done
