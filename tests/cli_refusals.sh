#!/usr/bin/env bash
# The checks a coverage run found no test reaching: every command's refusals of out-of-range
# options (one stderr line, exit 2, nothing written), damaged posterior files (one line naming the
# key, exit 1), and the CLI wiring of options only the library tests used (train --clip-radius,
# --beta1, --init-std, --kl-weight).
# usage: cli_refusals.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"
PY=/usr/bin/python3

printf 'a,b,price\n1,2,3\n2,3,5\n3,4,7\n' >"$T/ints.csv"
run "map" "$BNN" train --data moons --model mlp:2-16-2 --epochs 2 -q -o "$T/map.st"
run "ivon" "$BNN" train --data moons --model mlp:2-16-2 --epochs 2 --method ivon -q -o "$T/ivon.st"
# 33 Linear layers: one more than --prior marglik-layers' 64 tensors allow
deep=$(printf -- '-2%.0s' $(seq 32))
run "deep map" "$BNN" train --data moons --model "mlp:2$deep-2" --epochs 1 -q -o "$T/deep.st"
$PY "$HERE/st_meta.py" "$T/map.st" "$T/nodata.st" bnn.data || bad "st_meta.py failed"

# ---------------------------------------------------------------- options out of range
M=(--data moons --model mlp:2-4-2 -o "$T/no.st")
while IFS='|' read -r desc pat args; do
  # shellcheck disable=SC2086  # args is a list of words
  expect_usage "$desc" "$pat" "$BNN" $args
done <<EOF
stray argument|unexpected argument 'moons'|train moons
an option as a value|--output needs a value; the next argument, --lr, is an option (write --output=--lr|train --data moons -o --lr 0.1
a short option as a value|--output needs a value; the next argument, -q, is an option|train --data moons -o -q
help as a value|--output needs a value; the next argument, --help, is an option|train --data moons -o --help
holdout beyond the data|--holdout must be between 0 and 999 (one less than the 1000 training examples)|train ${M[*]} --holdout 100000
holdout taking every class but one|--holdout 999 leaves 1 training example, all of class 1: training needs examples of at least 2 classes|train ${M[*]} --holdout 999
stop-after 0|--stop-after must be >= 1|train ${M[*]} --stop-after 0
unknown schedule|unknown --lr-schedule 'linear' (choose constant or cosine)|train ${M[*]} --lr-schedule linear
warm-up beyond the epochs|--warmup-epochs must be between 0 and --epochs|train ${M[*]} --warmup-epochs 20 --epochs 10
train batch 0|--batch-size must be >= 1|train ${M[*]} -b 0
lr 0|--lr must be positive|train ${M[*]} --lr 0
negative weight decay|--weight-decay must be >= 0|train ${M[*]} --weight-decay -1
hess-init 0|--hess-init must be positive|train ${M[*]} --method ivon --hess-init 0
clip-radius 0|--clip-radius must be positive|train ${M[*]} --method ivon --clip-radius 0
mfvi prior 0|--prior-precision must be positive|train ${M[*]} --method mfvi --prior-precision 0
init-std 0|--init-std must be positive|train ${M[*]} --method mfvi --init-std 0
init-std below MFVI's floor|--init-std must be at least 2^-63 = 1.08e-19, the smallest std MFVI represents|train ${M[*]} --method mfvi --init-std 1e-20
negative kl-weight|--kl-weight must be >= 0|train ${M[*]} --method mfvi --kl-weight -1
noise 0|--noise must be positive|train ${M[*]} --noise 0
noise on integer CSV targets|--noise is the noise of a gaussian likelihood; csv:$T/ints.csv is classification data (categorical likelihood); --task regression reads its targets as numbers|train --data csv:$T/ints.csv -o $T/no.st --noise 0.5
noise on a toy classification set|likelihood)$|train ${M[*]} --noise 0.5
header on a toy set|--header is for CSV data (csv:FILE); moons is not|train ${M[*]} --header
task on a toy set|--task is for CSV data|train ${M[*]} --task regression
unknown curvature|--curvature must be ggn, ggn-mc or ef|laplace -m $T/map.st --curvature foo -o $T/no.st
per-layer prior on lowrank|--prior marglik-layers needs --hessian diag, kron or full|laplace -m $T/map.st --prior marglik-layers --hessian lowrank -o $T/no.st
laplace steps 0|--steps must be between 1 and 1000000|laplace -m $T/map.st --steps 0 -o $T/no.st
laplace batch 0|--batch-size must be >= 1|laplace -m $T/map.st -b 0 -o $T/no.st
rank 0|--rank must be >= 1|laplace -m $T/map.st --hessian lowrank --rank 0 -o $T/no.st
per-layer prior over 66 tensors, refused before the data are read|--prior marglik-layers supports at most 64 weight and bias tensors (the subset has 33 Linear layers, 66 tensors)|laplace -m $T/deep.st --subset all --prior marglik-layers --data csv:$T/missing.csv -o $T/no.st
layer out of range|layer 4 is out of range; mlp:2-16-2 has 2 Linear layers, 0..1|laplace -m $T/map.st --subset layers:0,1,4 -o $T/no.st
eval split|--split must be test or train, got 'val'|eval -m $T/map.st --split val
eval bins 0|--bins must be between 1 and 256|eval -m $T/map.st --bins 0
eval bins 257|--bins must be between 1 and 256|eval -m $T/map.st --bins 257
eval noise on a classifier|--noise is a regression model's noise; .*map.st is a classifier|eval -m $T/map.st --noise 0.5
eval temperature 0|--temperature must be positive|eval -m $T/map.st --temperature 0
eval temperature 1e7|--temperature must be at most 1e6 (bnn calibrate searches 1e-3 to 1e3;|eval -m $T/map.st --temperature 1e7
predict temperature 1e7|--temperature must be at most 1e6|predict -m $T/map.st --data moons --temperature 1e7 -o $T/no.csv
eval batch 0|--batch-size must be >= 1|eval -m $T/map.st -b 0
eval unknown shift|--shift supports 'rot' only|eval -m $T/map.st --shift foo
eval without a model|a model is required (-m MODEL, or MODEL alone)|eval
predict without -o|-o FILE is required|predict -m $T/map.st --data moons
predict without input or data|nodata.st does not record its data; pass --data SPEC or --input FILE|predict -m $T/nodata.st -o $T/no.csv
predict with both inputs|give --data or --input, not both|predict -m $T/map.st --data moons --input $T/x.csv -o $T/no.csv
predict temperature 0|--temperature must be positive|predict -m $T/map.st --data moons --temperature 0 -o $T/no.csv
predict batch 0|--batch-size must be >= 1|predict -m $T/map.st --data moons -b 0 -o $T/no.csv
plot what|--what must be prob or entropy|plot -m $T/map.st --what foo -o $T/no.svg
plot grid|--grid must be between 10 and 400|plot -m $T/map.st --grid 5 -o $T/no.svg
von batch 0|--batch-size must be >= 1|von -m $T/map.st -b 0 -o $T/no.st
calibrate batch 0|--batch-size must be >= 1|calibrate -m $T/map.st -b 0 -o $T/no.st
compare nine models|give 1 to 8 models|compare -m $T/map.st -m $T/map.st -m $T/map.st -m $T/map.st -m $T/map.st -m $T/map.st -m $T/map.st -m $T/map.st -m $T/map.st
compare nine models given alone|give 1 to 8 models|compare $T/map.st $T/map.st $T/map.st $T/map.st $T/map.st $T/map.st $T/map.st $T/map.st $T/map.st
compare five with -m and four alone|give 1 to 8 models|compare -m $T/map.st -m $T/map.st -m $T/map.st -m $T/map.st -m $T/map.st $T/map.st $T/map.st $T/map.st $T/map.st
EOF
expect_fail "32 Linear layers are allowed (the missing data refused instead)" "missing.csv: cannot open" \
  "$BNN" laplace -m "$T/deep.st" --subset layers:$(seq -s, 0 31) --prior marglik-layers --data "csv:$T/missing.csv" -o "$T/no.st"
ls "$T"/no.* >/dev/null 2>&1 && bad "a refused command wrote an output: $(ls "$T"/no.*)" || ok
# bnn alone: the usage on stderr, exit 2
"$BNN" >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && [ ! -s "$T/out" ] && grep -q "^usage: bnn COMMAND" "$T/err" && ok ||
  bad "bnn with no command: usage on stderr and exit 2"
expect_fail "plot into a missing directory" "cannot write $T/nodir/p.svg: the directory $T/nodir does not exist" \
  "$BNN" plot -m "$T/map.st" -o "$T/nodir/p.svg"
# A file where the directory should be is named as such (it did "not exist").
expect_fail "plot under a file" "cannot write $T/map.st/p.svg: $T/map.st is not a directory" \
  "$BNN" plot -m "$T/map.st" -o "$T/map.st/p.svg"
expect_fail "plot under a file, deeper" "cannot write $T/map.st/d/p.svg: a part of $T/map.st/d is a file, not a directory" \
  "$BNN" plot -m "$T/map.st" -o "$T/map.st/d/p.svg"
# plot draws labelled points by class: data with more classes than the model predicts is
# refused, as by every command that reads labels.
printf '0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,2\n' >"$T/c3.csv"
expect_usage "plot, data with a class the model lacks" "csv:$T/c3.csv has 3 classes but model mlp:2-16-2 predicts 2" \
  "$BNN" plot -m "$T/map.st" --data "csv:$T/c3.csv" -o "$T/no.svg"
[ -e "$T/no.svg" ] && bad "a refused plot wrote its file" || ok

# ---------------------------------------------------------------- damaged posterior files
run "laplace kron" "$BNN" laplace -m "$T/map.st" --subset all --hessian kron -o "$T/kron.st"
run "laplace lowrank" "$BNN" laplace -m "$T/map.st" --hessian lowrank -o "$T/lr.st"
run "laplace layers" "$BNN" laplace -m "$T/map.st" --subset layers:0 --prior marglik-layers --hessian diag -o "$T/ld.st"
damaged() { # damaged DESC PATTERN TOOL ARGS...: TOOL makes $T/bad.st, then eval must refuse it
  local desc=$1 pat=$2; shift 2
  rm -f "$T/bad.st"
  if ! $PY "$HERE/$1" "${@:2}" >/dev/null; then bad "$desc: $1 failed"; return; fi
  expect_fail "$desc" "bad.st: .*$pat" "$BNN" eval -m "$T/bad.st"
}
while IFS='|' read -r desc pat tool args; do
  # shellcheck disable=SC2086
  damaged "$desc" "$pat" "$tool" $args
done <<EOF
unknown hessian|bnn.laplace.hessian is missing or unknown (diag, kron, full, lowrank)|st_meta.py|$T/kron.st $T/bad.st bnn.laplace.hessian cube
no low-rank eigenvalues|laplace.lowrank.eig is missing or not a vector of 1..34 values|st_drop.py|$T/lr.st $T/bad.st laplace.lowrank.eig
layers short of the curvature|bnn.laplace.layers '32,16,32': 3 layers hold 80 parameters, the curvature 82|st_meta.py|$T/kron.st $T/bad.st bnn.laplace.layers 32,16,32
layers not numbers|bnn.laplace.layers '32,x,32,2': not a comma-separated list of sizes|st_meta.py|$T/kron.st $T/bad.st bnn.laplace.layers 32,x,32,2
negative layer prior|bnn.laplace.prior_layers '1.7,-2':.*prior precision -2 of layer 1|st_meta.py|$T/ld.st $T/bad.st bnn.laplace.prior_layers 1.7,-2
too few layer priors|bnn.laplace.prior_layers '1.7':.*1 precisions given, the subset has 2 layers|st_meta.py|$T/ld.st $T/bad.st bnn.laplace.prior_layers 1.7
overlapping segments|bnn.laplace.segments '0:10,5:3' is not ascending offset:length pairs|st_meta.py|$T/lr.st $T/bad.st bnn.laplace.segments 0:10,5:3
unknown task|bnn.task is 'nonsense', expected classification or regression|st_meta.py|$T/map.st $T/bad.st bnn.task nonsense
data range not a number|bnn.data.min is 'x', not a finite number|st_meta.py|$T/map.st $T/bad.st bnn.data.min x
data range infinite|bnn.data.max is 'inf', not a finite number|st_meta.py|$T/map.st $T/bad.st bnn.data.max inf
data range upside down|bnn.data.min (5) is above bnn.data.max|st_meta.py|$T/map.st $T/bad.st bnn.data.min 5
half a data range|bnn.data.max is missing beside bnn.data.min|st_meta.py|$T/map.st $T/bad.st bnn.data.max
no posterior std|tensor 'posterior.std' is missing|st_drop.py|$T/ivon.st $T/bad.st posterior.std
negative posterior std|posterior.std\[0\] = -.* is not positive|st_scale.py|$T/ivon.st $T/bad.st -1 posterior.std
EOF
# A NaN in a float64 curvature tensor (st_scale.py edits float32 only).
$PY - "$T/ld.st" "$T/bad.st" <<PY
import struct, sys
sys.path.insert(0, "$HERE")
from st_meta import read_st, write_st
header, data = read_st(sys.argv[1])
a = header["laplace.diag"]["data_offsets"][0] + 8 * 5
data = data[:a] + struct.pack("<d", float("nan")) + data[a + 8:]
write_st(sys.argv[2], header, data)
PY
expect_fail "NaN in laplace.diag" "bad.st: .*tensor .laplace.diag. holds NaN or Inf" "$BNN" eval -m "$T/bad.st"

# ---------------------------------------------------------------- damaged checkpoints
run "checkpoint" "$BNN" train --data moons --model mlp:2-8-2 --epochs 2 --method ivon --checkpoint "$T/ck.st" -q -o "$T/ckm.st"
while IFS='|' read -r desc pat key value; do
  $PY "$HERE/st_meta.py" "$T/ck.st" "$T/bad.st" "$key" $value || bad "$desc: st_meta.py failed"
  expect_fail "resume, $desc" "bad.st:* $pat" "$BNN" train --resume "$T/bad.st" --epochs 3 -q -o "$T/no.st"
done <<EOF
no method|bnn.method is missing or unknown|bnn.method|
unknown schedule|bnn.lr_schedule is not constant or cosine|bnn.lr_schedule|linear
loss_ref NaN|bnn.state.loss_ref is not finite|bnn.state.loss_ref|nan
another batch size|16 steps after 2 epochs, but its data and batch size make 16 steps per epoch (32 after 2)|bnn.batch_size|64
another data set|was trained on other data (fingerprint 0123456789abcdef, this data's|bnn.state.data_hash|0123456789abcdef
EOF
[ ! -e "$T/no.st" ] && ok || bad "a refused resume wrote its output"

# ---------------------------------------------------------------- options only the library tested
# --clip-radius r bounds every step to lr (h0 + delta) r (rescale_lr): 16 steps of 0.5 * 1.0001 *
# 1e-4 from the initial weights (epochs 0, the same seed), which the gradients here all reach.
run "ivon init" "$BNN" train --data moons --model mlp:2-16-2 --epochs 0 --method ivon -q -o "$T/i0.st"
run "ivon clipped" "$BNN" train --data moons --model mlp:2-16-2 --epochs 2 --method ivon --clip-radius 1e-4 -q -o "$T/ic.st"
# tensor_diff A B PREFIX...: the largest absolute difference between the F32 tensors of two files
# whose names start with a PREFIX (metadata left out: it differs whenever a setting does).
tensor_diff() {
  $PY - "$@" <<PY
import struct, sys
sys.path.insert(0, "$HERE")
from st_meta import read_st
def values(path, prefixes):
    header, data = read_st(path)
    out = []
    for name in sorted(k for k in header if k != "__metadata__" and k.startswith(prefixes)):
        a, b = header[name]["data_offsets"]
        out += struct.unpack("<%df" % ((b - a) // 4), data[a:b])
    return out
x, y = values(sys.argv[1], tuple(sys.argv[3:])), values(sys.argv[2], tuple(sys.argv[3:]))
print(max(abs(p - q) for p, q in zip(x, y)) if x and len(x) == len(y) else "none")
PY
}
moved=$(tensor_diff "$T/i0.st" "$T/ic.st" 0 1 2 3 4 5 6 7 8 9)
num_holds 'd > 0.9992 * s && d < 1.0008 * s' d="$moved" s=8.0008e-4 && ok ||
  bad "--clip-radius 1e-4: the weights moved by $moved, expected 16 clipped steps = 8.0008e-4"
run "info clipped" "$BNN" info "$T/ic.st"
grep -q "bnn.ivon.clip_radius 0.0001" "$T/out" && ok || bad "info lacks the clip radius"
run "ivon beta1" "$BNN" train --data moons --model mlp:2-16-2 --epochs 2 --method ivon --beta1 0.5 -q -o "$T/ib.st"
run "info beta1" "$BNN" info "$T/ib.st"
grep -q "bnn.ivon.beta1 *0.5$" "$T/out" && ok || bad "info lacks beta1 0.5"
d=$(tensor_diff "$T/ivon.st" "$T/ib.st" 0 1 2 3 4 5 6 7 8 9)
num_holds 'd > 1e-4' d="$d" && ok || bad "--beta1 0.5 trained the weights of the default (difference $d)"
# --init-std sets the posterior's std at the start: two epochs leave it near 0.1 (default 1e-3).
run "mfvi init-std" "$BNN" train --data moons --model mlp:2-16-2 --epochs 2 --method mfvi --init-std 0.1 --kl-weight 0 -q -o "$T/m1.st"
run "info mfvi" "$BNN" info "$T/m1.st"
mean=$(sed -n 's/^posterior .* std min .* mean \([^ ]*\) max .*/\1/p' "$T/out")
num_holds 'm > 0.09 && m < 0.11' m="$mean" && ok || bad "--init-std 0.1: posterior std mean $mean"
grep -q "bnn.mfvi.kl_weight *0$" "$T/out" && ok || bad "info lacks kl_weight 0"
run "mfvi kl 1" "$BNN" train --data moons --model mlp:2-16-2 --epochs 2 --method mfvi --init-std 0.1 -q -o "$T/m2.st"
d=$(tensor_diff "$T/m1.st" "$T/m2.st" posterior.std)
num_holds 'd > 1e-6' d="$d" && ok || bad "--kl-weight 0 trained the posterior std of 1 (difference $d)"
# A KL weight whose gradient factor (weight x prior precision / examples) is beyond float range is
# named before training; one whose gradients' squares overflow Adam's second moment (from about
# 1e20) diverges at its first steps, and the message names the KL weight, not the learning rate.
rm -f "$T/no.st"
expect_fail "kl-weight 1e300" "MFVI: KL weight 1e+300 times prior precision 0.001 over 1000 examples is beyond float range" \
  "$BNN" train --data moons --model mlp:2-4-2 --method mfvi --kl-weight 1e300 --prior-precision 1e-3 -o "$T/no.st"
[ ! -e "$T/no.st" ] && ok || bad "kl-weight 1e300 wrote its output"
expect_fail "kl-weight 1e25" "training diverged at epoch 1, step 1 of 8: .*(MFVI's KL term weighs kl_weight x max(prior precision, 1) / n = 1e+22 per example: lower the KL weight)" \
  "$BNN" train --data moons --model mlp:2-4-2 --method mfvi --kl-weight 1e25 -q -o "$T/no.st"
[ ! -e "$T/no.st" ] && ok || bad "kl-weight 1e25 wrote its output"

# ---------------------------------------------------------------- CSV options after training
# laplace, von, calibrate and compare read another CSV layout with --target-col (and a header of
# numbers with --header) as eval does: the same rows with the target first give the same report.
$PY - "$T" <<'PY'
import sys
import numpy as np
r = np.random.default_rng(1)
X = r.normal(size=(200, 3))
y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
def save(name, a, hdr):
    np.savetxt(sys.argv[1] + "/" + name, a, delimiter=",", fmt="%.6g", header=hdr, comments="")
save("last.csv", np.c_[X, y], "a,b,c,y")
save("first.csv", np.c_[y, X], "y,a,b,c")
save("numhdr.csv", np.c_[X, y], "0,1,2,3")
PY
run "train on csv" "$BNN" train --data "csv:$T/last.csv" --model mlp:3-8-3 --epochs 3 -q -o "$T/csvm.st"
same_report() { # same_report DESC CMD ARGS...: CMD's stdout, but for the lines naming the data or timing, is the last one's
  # (runs of blanks as one: compare's first column is as wide as the data's name)
  local desc=$1; shift
  "$@" >"$T/rep2" 2>"$T/err" || { bad "$desc: exit $?"; cat "$T/err" >&2; return; }
  if diff <(grep -v "^data\|^time\|csv:\|fitted on" "$T/out" | tr -s ' ') <(grep -v "^data\|^time\|csv:\|fitted on" "$T/rep2" | tr -s ' ') >/dev/null; then ok
  else bad "$desc: reports differ:"; diff "$T/out" "$T/rep2" >&2; fi
}
for c in laplace von; do
  run "$c on the training csv" "$BNN" $c -m "$T/csvm.st" --data "csv:$T/last.csv" -o "$T/c1.st"
  same_report "$c, target first" "$BNN" $c -m "$T/csvm.st" --data "csv:$T/first.csv" --target-col 0 -o "$T/c2.st"
  same_report "$c, numeric header" "$BNN" $c -m "$T/csvm.st" --data "csv:$T/numhdr.csv" --header -o "$T/c3.st"
  expect_usage "$c --header on a toy set" "--header is for CSV data (csv:FILE); moons is not" "$BNN" $c -m "$T/map.st" --header -o "$T/no.st"
done
# (calibrate refuses the model's own training rows, which it has no hold-out of: a copy of them)
cp "$T/last.csv" "$T/last_copy.csv"
expect_usage "calibrate on the rows trained on" "reads the examples .*csvm.st was trained on, all of them" "$BNN" calibrate -m "$T/csvm.st" --data "csv:$T/last.csv" -o "$T/no.st"
run "calibrate on the training csv" "$BNN" calibrate -m "$T/csvm.st" --data "csv:$T/last_copy.csv" -o "$T/cal1.st"
same_report "calibrate, target first" "$BNN" calibrate -m "$T/csvm.st" --data "csv:$T/first.csv" --target-col 0 -o "$T/cal2.st"
run "compare on the training csv" "$BNN" compare -m "$T/csvm.st" -m "$T/c1.st" --data "csv:$T/last.csv"
same_report "compare, target first" "$BNN" compare -m "$T/csvm.st" -m "$T/c1.st" --data "csv:$T/first.csv" --target-col 0
expect_usage "compare --target-col on a toy set" "--target-col is for CSV data (csv:FILE); moons is not" "$BNN" compare -m "$T/map.st" --target-col 0

# -q: the commands that write files say nothing on stderr but their notes and errors.
quiet() { # quiet DESC CMD ARGS...: exits 0, writes stdout as usual and nothing on stderr
  local desc=$1; shift
  if "$@" -q >"$T/out" 2>"$T/err" && [ ! -s "$T/err" ]; then ok
  else bad "$desc -q: exit $? or stderr: $(head -c 200 "$T/err")"; fi
}
quiet "laplace" "$BNN" laplace -m "$T/csvm.st" -o "$T/q1.st"
grep -q "^log ML" "$T/out" && ok || bad "laplace -q lost its report"
quiet "von" "$BNN" von -m "$T/csvm.st" -o "$T/q2.st"
quiet "calibrate" "$BNN" calibrate -m "$T/csvm.st" --data "csv:$T/last_copy.csv" -o "$T/q3.st"
quiet "predict" "$BNN" predict -m "$T/csvm.st" --data "csv:$T/last.csv" -o "$T/q.csv"
[ "$(wc -l <"$T/q.csv")" -eq 201 ] && ok || bad "predict -q wrote $(wc -l <"$T/q.csv") lines"
quiet "plot" "$BNN" plot -m "$T/map.st" -o "$T/q.svg"
# predict --split train: the training split's rows (moons: 1000 against the test split's 500).
quiet "predict the training split" "$BNN" predict -m "$T/map.st" --data moons --split train -o "$T/ptr.csv"
[ "$(wc -l <"$T/ptr.csv")" -eq 1001 ] && ok || bad "predict --split train wrote $(wc -l <"$T/ptr.csv") lines"
expect_usage "predict --split foo" "--split must be test or train, got 'foo'" "$BNN" predict -m "$T/map.st" --data moons --split foo -o "$T/no.csv"
expect_usage "predict --split with --input" "--split chooses a split of --data" "$BNN" predict -m "$T/map.st" -i "$T/last.csv" --split train -o "$T/no.csv"
[ -s "$T/q.svg" ] && ok || bad "plot -q wrote no picture"

cli_done
