#!/usr/bin/env bash
# End-to-end tests of bnn laplace: every structure on a MAP classifier and a regressor, the
# posterior file read back by eval/predict (GLM and sampling predictive), JSON against the
# schema, and a structure too large for memory refused up front with its size.
# usage: cli_laplace.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"

run "train map" "$BNN" train --data moons --epochs 30 --batch-size 32 --lr 1e-2 -q -o "$T/map.safetensors"
for subset in last-layer all; do
  for h in kron diag full; do
    run "laplace $subset $h" "$BNN" laplace -m "$T/map.safetensors" --subset $subset --hessian $h -o "$T/la_${subset}_$h.safetensors"
    grep -q "^prior      precision" "$T/out" && ok || bad "$subset $h prints the prior precision"
    run "eval $subset $h" "$BNN" eval -m "$T/la_${subset}_$h.safetensors" --json "$T/la.json"
    grep -q "linearised (GLM), probit" "$T/out" && ok || bad "$subset $h predicts with the GLM"
    acc=$(val accuracy)
    num_holds 'a > 0.95' a="$acc" && ok || bad "$subset $h accuracy $acc"
    if /usr/bin/python3 -c "import jsonschema" 2>/dev/null; then
      run "schema $subset $h" /usr/bin/python3 "$HERE/json_validate.py" "$HERE/../docs/eval.schema.json" "$T/la.json"
    fi
  done
done
grep -q '"posterior":	"laplace"' "$T/la.json" && ok || bad "JSON names the Laplace posterior"
for c in ef ggn-mc; do run "laplace $c" "$BNN" laplace -m "$T/map.safetensors" --curvature $c --subset all --hessian diag -o "$T/la_$c.safetensors"; done
# One prior precision per weight and per bias tensor (laplace-torch's layer-wise prior), tuned
# by the marginal likelihood, saved and read back: info and eval show the same values.
# (full with one δ per tensor needs a Cholesky of the P × P precision per step: the last layer.)
for h in diag kron full; do
  subset=all; n=6
  [ $h = full ] && subset=last-layer && n=2
  run "laplace layers $h" "$BNN" laplace -m "$T/map.safetensors" --subset $subset --hessian $h --prior marglik-layers -o "$T/la_layers_$h.safetensors"
  # the n values as printed by laplace (6 digits), saved in the file, shown by info and eval (4)
  sed -n 's/^prior      precisions \([^(]*\) (.*/\1/p' "$T/out" | tr -d ' ' | tr ',' '\n' >"$T/pl_fit"
  run "info layers $h" "$BNN" info "$T/la_layers_$h.safetensors"
  awk '$1 == "bnn.laplace.prior_layers" { print $2 }' "$T/out" | tr ',' '\n' >"$T/pl_file"
  sed -n 's/^posterior Laplace over [0-9]* parameters, prior precisions \([^(]*\) (one per weight and bias tensor)$/\1/p' "$T/out" | tr -d ' ' | tr ',' '\n' >"$T/pl_info"
  run "eval layers $h" "$BNN" eval -m "$T/la_layers_$h.safetensors"
  sed -n 's/^posterior .*, prior precisions \([^(]*\) (one per weight and bias tensor)$/\1/p' "$T/out" | tr -d ' ' | tr ',' '\n' >"$T/pl_eval"
  for w in fit info eval; do
    paste -d' ' "$T/pl_file" "$T/pl_$w" | awk -v n=$n '{ d = $1 - $2; if (d < 0) d = -d; if ($0 ~ /nan|inf/ || NF != 2 || d > 1e-3 * $1) bad = 1; c++ } END { exit bad || c != n }' && ok || bad "$h: $n per-tensor precisions in the file and from $w: $(tr '\n' ' ' <"$T/pl_$w")"
  done
  [ "$(sort -u "$T/pl_file" | wc -l)" -eq $n ] && ok || bad "$h: $n distinct precisions"
  acc=$(val accuracy)
  num_holds 'a > 0.95' a="$acc" && ok || bad "layers $h accuracy $acc"
done
run "laplace fixed prior" "$BNN" laplace -m "$T/map.safetensors" --prior 3.5 -o "$T/la_fixed.safetensors"
grep -q "precision 3.5 " "$T/out" && ok || bad "a fixed prior is used as given"
# A full posterior file as bnn wrote them before it saved the eigendecomposition: it loads by
# computing it, to the same report. Its numbers do not depend on OpenBLAS's thread count (its
# default is every core), though that eigendecomposition runs when the file is read, before
# any product.
python3 "$HERE/st_drop.py" "$T/la_all_full.safetensors" "$T/la_old_full.safetensors" laplace.eigvec laplace.eigval
run "eval all full" "$BNN" eval -m "$T/la_all_full.safetensors" --json "$T/new.json"
# The saved eigendecomposition's check probes it with vectors drawn from a hash of the file: a file
# damaged near the check's tolerance (one eigenvector entry off by 4e-7) gets the same verdict on
# every load (probes drawn afresh each time passed it about half the time).
P=$(sed -n 's/^posterior .* over \([0-9]*\) parameters.*/\1/p' "$T/out")
python3 "$HERE/st_poke.py" "$T/la_all_full.safetensors" "$T/la_edge.safetensors" laplace.eigvec $((100 * P + 200)) 4e-7
codes=""
for i in 1 2 3 4 5 6 7 8 9 10; do "$BNN" info "$T/la_edge.safetensors" >/dev/null 2>&1; codes="$codes$?"; done
case $codes in 0000000000|1111111111) ok ;; *) bad "a damaged eigendecomposition loaded with exit codes $codes" ;; esac
for t in 1 3; do
  OPENBLAS_NUM_THREADS=$t run "eval all full without the eigendecomposition, OpenBLAS at $t threads" "$BNN" eval -m "$T/la_old_full.safetensors" --json "$T/blas$t.json"
done
cmp -s "$T/blas1.json" "$T/blas3.json" && ok || bad "eval of a full posterior depends on OpenBLAS's thread count"
grep -v '"model"' "$T/new.json" > "$T/new.nomodel"
grep -v '"model"' "$T/blas1.json" > "$T/old.nomodel"
cmp -s "$T/new.nomodel" "$T/old.nomodel" && ok || bad "a full posterior without its saved eigendecomposition predicts differently"
# Sampling predictive and predict's CSV from a Laplace posterior.
run "eval samples" "$BNN" eval -m "$T/la_all_kron.safetensors" --samples 8
grep -q "Monte-Carlo average" "$T/out" && grep -q "mutual inf" "$T/out" && ok || bad "sampled Laplace predictive"
run "eval mc link" "$BNN" eval -m "$T/la_last-layer_kron.safetensors" --link-samples 200
grep -q "Monte-Carlo over the logits" "$T/out" && ok || bad "MC link is used"
acc=$(val accuracy)
num_holds 'a > 0.95' a="$acc" && ok || bad "MC link accuracy $acc"
run "predict laplace" "$BNN" predict -m "$T/la_last-layer_kron.safetensors" --data moons -o "$T/pred.csv"
[ "$(wc -l <"$T/pred.csv")" -eq 501 ] && ok || bad "predict rows"
run "info laplace" "$BNN" info "$T/la_all_kron.safetensors"
grep -q "laplace.b0.f0" "$T/out" && ok || bad "info lists the Kronecker factors"

# A chosen set of Linear layers, by the index bnn info shows: layers 0 and 2 of the three, two
# separate runs of the weights. laplace → eval (GLM and samples) → predict → info.
run "info map" "$BNN" info "$T/map.safetensors"
grep -q "\[0\] linear 2->50 > tanh > \[1\] linear 50->50 > tanh > \[2\] linear 50->2" "$T/out" && ok || bad "info numbers the Linear layers"
for h in diag kron full lowrank; do
  run "laplace layers:0,2 $h" "$BNN" laplace -m "$T/map.safetensors" --subset layers:2,0 --hessian $h -o "$T/la_sel_$h.safetensors"
  grep -q "^subset     layers:0,2: 252 parameters (2 segments: 0..149, 2700..2801)" "$T/out" && ok || bad "layers:0,2 $h: subset line: $(grep ^subset "$T/out")"
  run "eval layers:0,2 $h" "$BNN" eval -m "$T/la_sel_$h.safetensors"
  grep -q "linearised (GLM), probit" "$T/out" && ok || bad "layers:0,2 $h predicts with the GLM"
  acc=$(val accuracy)
  num_holds 'a > 0.95' a="$acc" && ok || bad "layers:0,2 $h accuracy $acc"
done
run "eval layers:0,2 samples" "$BNN" eval -m "$T/la_sel_kron.safetensors" --samples 8
grep -q "Monte-Carlo average" "$T/out" && ok || bad "sampled predictive of layers:0,2"
run "predict layers:0,2" "$BNN" predict -m "$T/la_sel_full.safetensors" --data moons -o "$T/pred_sel.csv"
[ "$(wc -l <"$T/pred_sel.csv")" -eq 501 ] && ok || bad "layers:0,2 predict rows"
run "info layers:0,2" "$BNN" info "$T/la_sel_kron.safetensors"
grep -q "^subset    Linear layers 0,2 of 0..2: parameters 0..149, 2700..2801" "$T/out" && ok || bad "info names the subset's layers"
grep -q "bnn.laplace.segments *0:150,2700:102" "$T/out" && ok || bad "the file records the segments"
run "info last-layer" "$BNN" info "$T/la_last-layer_kron.safetensors"
grep -q "^subset    Linear layers 2 of 0..2: parameters 2700..2801" "$T/out" && ok || bad "info names the last layer"
run "laplace layers:0,2 per-layer prior" "$BNN" laplace -m "$T/map.safetensors" --subset layers:0,2 --hessian kron --prior marglik-layers -o "$T/la_sel_pl.safetensors"
[ "$(sed -n 's/^prior      precisions \([^(]*\) (.*/\1/p' "$T/out" | tr ',' '\n' | wc -l)" -eq 4 ] && ok || bad "layers:0,2: 4 per-tensor precisions"
run "eval layers:0,2 per-layer prior" "$BNN" eval -m "$T/la_sel_pl.safetensors"
# layers:2 is last-layer: the same numbers.
run "laplace layers:2" "$BNN" laplace -m "$T/map.safetensors" --subset layers:2 -o "$T/la_sel_2.safetensors"
grep -v "^time\|^subset" "$T/out" >"$T/sel2.txt"
run "laplace last-layer again" "$BNN" laplace -m "$T/map.safetensors" --subset last-layer -o "$T/la_ll2.safetensors"
grep -v "^time\|^subset" "$T/out" | cmp -s - "$T/sel2.txt" && ok || bad "layers:2 differs from last-layer"
for bad_list in "layers:0,x|not a layer index" "layers:|needs Linear-layer indices" "layers:0,0|listed twice" \
                "layers:0,3|out of range; mlp:2-50-50-2:tanh has 3 Linear layers" "layers:0,|ends with a comma" \
                "layers:-1|not a layer index" "layer:0|must be last-layer, all or layers" \
                "layers:999999999999|layer 999999999999 is out of range"; do
  expect_fail "--subset ${bad_list%%|*}" "${bad_list#*|}" "$BNN" laplace -m "$T/map.safetensors" --subset "${bad_list%%|*}" -o "$T/never.safetensors"
  [ "$(set +e; "$BNN" laplace -m "$T/map.safetensors" --subset "${bad_list%%|*}" -o "$T/never.safetensors" 2>/dev/null; echo $?)" -eq 2 ] && ok || bad "--subset ${bad_list%%|*}: exit status is not 2"
done
[ ! -e "$T/never.safetensors" ] && ok || bad "a bad --subset left a file"

# Regression: the noise is tuned too, and the predictive variance includes it.
run "train sine" "$BNN" train --data sine-gap --epochs 200 --batch-size 16 --lr 1e-2 --noise 0.1 -q -o "$T/sine.safetensors"
run "laplace sine" "$BNN" laplace -m "$T/sine.safetensors" --subset all --hessian full -o "$T/la_sine.safetensors"
grep -q "noise sigma [0-9.e+-]*$" "$T/out" && ok || bad "regression Laplace tunes sigma: $(grep "noise sigma" "$T/out")"
# A regression model's linearised predictive is in closed form: --link-samples has nothing to sample.
expect_usage "link samples for regression" "is a regression model, whose linearised predictive is in closed form" "$BNN" predict -m "$T/la_sine.safetensors" --data sine-gap --link-samples 10 -o "$T/never.csv"
expect_usage "a link for regression" "is a regression model, whose linearised predictive is in closed form" "$BNN" eval -m "$T/la_sine.safetensors" --link bridge

# The links of the GLM predictive (laplace-torch's link_approx) on three classes, where the
# Laplace bridge depends on the variances (with two classes it is the logistic of the corrected
# means' difference): each gives its own NLL, named in the report and the JSON; predict's rows
# are distributions; bridge and probit take no draws, mc takes 100 unless told.
awk 'BEGIN { srand(7); for (i = 0; i < 240; i++) { c = i % 3; a = 2.0944 * c;
  printf "%.4f,%.4f,%d\n", 1.3 * cos(a) + 0.9 * (rand() - 0.5) * 2, 1.3 * sin(a) + 0.9 * (rand() - 0.5) * 2, c } }' >"$T/blobs.csv"
run "train 3 classes" "$BNN" train --data "csv:$T/blobs.csv" --model mlp:2-16-3 --epochs 40 --batch-size 16 --lr 1e-2 -q -o "$T/map3.st"
run "laplace 3 classes" "$BNN" laplace -m "$T/map3.st" --hessian full -q -o "$T/la3.st"
nlls=""
for l in probit mc bridge bridge-norm; do
  run "eval --link $l" "$BNN" eval -m "$T/la3.st" --data "csv:$T/blobs.csv" --split train --link $l --json "$T/l_$l.json"
  nlls="$nlls $(val nll)"
  grep -q "\"link\":	\"$l\"" "$T/l_$l.json" && ok || bad "--link $l: the JSON records the link"
done
grep -q "linearised (GLM), Laplace bridge" <("$BNN" eval -m "$T/la3.st" --data "csv:$T/blobs.csv" --link bridge) && ok || bad "eval names the bridge"
[ "$(echo $nlls | tr ' ' '\n' | sort -u | wc -l)" -eq 4 ] && ok || bad "four links, four NLLs: $nlls"
grep -q '"link_samples":	100' "$T/l_mc.json" && grep -q '"link_samples":	0' "$T/l_bridge.json" && ok || bad "--link mc draws 100 times, the bridge none"
run "predict --link bridge-norm" "$BNN" predict -m "$T/la3.st" --data "csv:$T/blobs.csv" --link bridge-norm -o "$T/p3.csv"
awk -F, 'NR > 1 { s = $1 + $2 + $3; if (s < 0.999999 || s > 1.000001 || $7 == "nan" || !($7 >= 0)) bad = 1; m += $7 } END { exit bad || !(m > 0) }' "$T/p3.csv" && ok || bad "predict --link bridge-norm: rows sum to 1, the Dirichlet's mutual information"
# The mutual information: of the Dirichlet with a bridge, of the draws with mc, none with the probit.
for l in bridge mc probit; do
  run "eval --link $l, mutual information" "$BNN" eval -m "$T/la3.st" --data "csv:$T/blobs.csv" --link $l --ood noise:2:60
  if [ $l = probit ]; then ! grep -q "^mutual inf" "$T/out" && ok || bad "the probit has no mutual information"
  else num_holds 'v > 0' v="$(awk '$1 == "mutual" {print $3}' "$T/out")" && grep -q "score: mutual info" "$T/out" && ok || bad "--link $l: mutual information and its OOD score"; fi
done
expect_usage "--link with its draws" "--link bridge takes none" "$BNN" eval -m "$T/la3.st" --link bridge --link-samples 8
expect_usage "--link mc without draws" "give S > 0" "$BNN" eval -m "$T/la3.st" --link mc --link-samples 0
# A temperature leaves the normalised bridge as it was: said, and the numbers are the same.
run "predict --link bridge-norm --temperature 3" "$BNN" predict -m "$T/la3.st" --data "csv:$T/blobs.csv" --link bridge-norm --temperature 3 -o "$T/p3t.csv"
grep -q "the temperature (3) does not change .*la3.st's normalised Laplace bridge" "$T/err" && ok || bad "no note for a temperature under bridge-norm: $(cat "$T/err")"
cmp -s "$T/p3.csv" "$T/p3t.csv" && ok || bad "the temperature changed the normalised bridge's predictions"
run "predict --link bridge --temperature 3" "$BNN" predict -m "$T/la3.st" --data "csv:$T/blobs.csv" --link bridge --temperature 3 -o "$T/p3b.csv"
grep -q "does not change" "$T/err" && bad "a note for the plain bridge, which a temperature changes" || ok
expect_usage "an unknown link" "unknown link 'bridge_norm' (choose probit, mc, bridge or bridge-norm)" "$BNN" eval -m "$T/la3.st" --link bridge_norm
expect_usage "--link with weight samples" "--link is for a Laplace or VON posterior's linearised predictive, which --samples S > 0 replaces" "$BNN" eval -m "$T/la3.st" --link mc --samples 4
expect_usage "--link on a point estimate" "--link is for a Laplace or VON posterior's linearised predictive; $T/map3.st holds a point estimate" "$BNN" eval -m "$T/map3.st" --link probit
expect_usage "compare --link without a Laplace model" "--link is for a Laplace or VON posterior's linearised predictive; none of the models holds one" "$BNN" compare -m "$T/map3.st" --link bridge
expect_usage "--link probit takes no draws" "--link probit takes none" "$BNN" eval -m "$T/la3.st" --link probit --link-samples 5
run "--link bridge --link-samples 0" "$BNN" eval -m "$T/la3.st" --link bridge --link-samples 0
# --seed: the Monte-Carlo link draws from it; the bridge draws nothing.
run "--link mc --seed" "$BNN" eval -m "$T/la3.st" --link mc --seed 3
expect_usage "--link bridge --seed" "--seed is for weight samples" "$BNN" eval -m "$T/la3.st" --link bridge --seed 3
# The bridge is a Dirichlet over a categorical's classes: a Bernoulli model's is refused.
run "train bernoulli" "$BNN" train --data moons --model mlp:2-8-1 --lik bernoulli --epochs 5 -q -o "$T/mapb.st"
run "laplace bernoulli" "$BNN" laplace -m "$T/mapb.st" -q -o "$T/lab.st"
for c in "eval -m $T/lab.st" "predict -m $T/lab.st -o $T/never.csv" "plot -m $T/lab.st -o $T/never.svg" \
         "compare -m $T/la3.st -m $T/lab.st"; do
  # shellcheck disable=SC2086
  expect_usage "${c%% *}: --link bridge, bernoulli" "lab.st has a bernoulli likelihood" "$BNN" $c --link bridge
done

# The grid search scores its prior precisions through the link given (laplace-torch's grid takes
# its link_approx): the validation NLL it reports is the link's.
run "train 3 classes, hold-out" "$BNN" train --data "csv:$T/blobs.csv" --model mlp:2-16-3 --holdout 60 --epochs 40 --batch-size 16 --lr 1e-2 -q -o "$T/map3h.st"
run "grid, probit" "$BNN" laplace -m "$T/map3h.st" --hessian full --prior grid -o "$T/g_probit.st"
gp=$(sed -n 's/^grid: best validation NLL \([0-9.]*\) at .*/\1/p' "$T/err")
grep -q "^prior      precision [0-9.e+-]* (grid)$" "$T/out" && ok || bad "grid, probit: $(grep prior "$T/out")"
run "grid, bridge" "$BNN" laplace -m "$T/map3h.st" --hessian full --prior grid --link bridge -o "$T/g_bridge.st"
gb=$(sed -n 's/^grid: best validation NLL \([0-9.]*\) (Laplace bridge) at .*/\1/p' "$T/err")
grep -q "^prior      precision [0-9.e+-]* (grid, link bridge)$" "$T/out" && ok || bad "grid, bridge: $(grep prior "$T/out")"
num_holds 'a != b' a="$gp" b="$gb" && ok || bad "the grid's NLL is the link's: probit $gp, bridge $gb"
run "grid, mc with a seed" "$BNN" laplace -m "$T/map3h.st" --hessian full --prior grid --link mc --seed 2 -o "$T/g_mc.st"
expect_usage "laplace --link without the grid" "--prior marglik has none" "$BNN" laplace -m "$T/map3h.st" --link bridge -o "$T/never.st"
expect_usage "laplace --link bridge --seed" "--seed is for --curvature ggn-mc" "$BNN" laplace -m "$T/map3h.st" --prior grid --link bridge --seed 2 -o "$T/never.st"
expect_usage "laplace --link for regression" "is a regression model" "$BNN" laplace -m "$T/sine.safetensors" --prior grid --link mc -o "$T/never.st"
expect_usage "laplace --link bridge, bernoulli" "mapb.st has a bernoulli likelihood" "$BNN" laplace -m "$T/mapb.st" --prior grid --link bridge -o "$T/never.st"
# A prior so small that the probit predictive is uniform where the network is confident: saved,
# with a note that says why; a usable prior gets none.
run "laplace, a tiny prior" "$BNN" laplace -m "$T/map.safetensors" --prior 1e-12 -q -o "$T/la_tiny.st"
top=$(sed -n "s/^note: at prior precision 1e-12 the GLM predictive is uniform within .* on the first 16 examples fitted, where the network's largest probability averages \([0-9.]*\): .*/\1/p" "$T/err")
num_holds 't > 0.9' t="$top" && ok || bad "a tiny prior's uniform predictive is noted: $(cat "$T/err")"
run "eval, a tiny prior" "$BNN" eval -m "$T/la_tiny.st"
num_holds 'v > 0.693 && v < 0.6935' v="$(val nll)" && ok || bad "the tiny prior's predictive is uniform: NLL $(val nll)"
run "laplace, marglik" "$BNN" laplace -m "$T/map.safetensors" -q -o "$T/la_ml.st"
grep -q "uniform" "$T/err" && bad "marglik's prior: no uniform note ($(cat "$T/err"))" || ok
# The file records the grid's link (bnn.link, bnn.link_samples), and the predicting commands take
# it by default, as they take a calibrated temperature: a prior chosen for the bridge, predicted
# through the probit, is another posterior predictive. --link probit still gives the probit.
run "info, the grid's link" "$BNN" info "$T/g_bridge.st"
grep -q "^posterior Laplace .*(chosen through the bridge link, the predictive's default)$" "$T/out" && ok || bad "info names the grid's link: $(grep ^posterior "$T/out")"
run "eval, the file's link" "$BNN" eval -m "$T/g_bridge.st" --json "$T/gl.json"
grep -q "linearised (GLM), Laplace bridge" "$T/out" && grep -q "g_bridge.st's prior precision was chosen with --link bridge" "$T/err" && ok || bad "eval takes the file's link"
nf=$(val nll)
run "eval, --link bridge" "$BNN" eval -m "$T/g_bridge.st" --link bridge
nb=$(val nll)
[ -s "$T/err" ] && bad "a link given: no note ($(cat "$T/err"))" || ok
run "eval, --link probit" "$BNN" eval -m "$T/g_bridge.st" --link probit
np=$(val nll)
grep -q "linearised (GLM), probit" "$T/out" && num_holds 'f == b && f != p' f="$nf" b="$nb" p="$np" && ok || bad "the file's link is the bridge's NLL: file $nf, bridge $nb, probit $np"
run "eval, weight samples over the file's link" "$BNN" eval -m "$T/g_bridge.st" --samples 4
grep -q "link" "$T/err" && bad "weight samples take no link: $(cat "$T/err")" || ok
run "predict, the file's link" "$BNN" predict -m "$T/g_bridge.st" --data "csv:$T/blobs.csv" -o "$T/gl.csv"
awk -F, 'NR > 1 { if ($7 == "nan" || !($7 >= 0)) bad = 1 } END { exit bad || NR < 2 }' "$T/gl.csv" && ok || bad "predict through the file's bridge: its mutual information"
run "compare, the file's link" "$BNN" compare -m "$T/g_bridge.st" -m "$T/g_probit.st"
nc=$(awk '$1 == "test" && $2 == "NLL" {print $3}' "$T/out")
run "compare, --link probit" "$BNN" compare -m "$T/g_bridge.st" -m "$T/g_probit.st" --link probit
ncp=$(awk '$1 == "test" && $2 == "NLL" {print $3}' "$T/out")
num_holds 'a != b' a="$nc" b="$ncp" && ok || bad "compare takes the file's link: $nc, --link probit $ncp"
# The columns name a link other than the probit, and widen for the longest name.
run "compare, the columns' links" "$BNN" compare -m "$T/g_bridge.st" -m "$T/g_mc.st" -m "$T/map3h.st"
head -1 "$T/out" | grep -Eq ' laplace\+bridge +laplace\+mc +adamw$' && ok || bad "compare names each column's link: $(head -1 "$T/out")"
awk 'NF { if (length($0) != n && n) bad = 1; n = length($0) } END { exit bad }' "$T/out" && ok || bad "compare's rows line up"
# mc: its 100 draws are recorded, and --seed then has something to draw.
run "eval, the file's mc link, a seed" "$BNN" eval -m "$T/g_mc.st" --seed 5 --json "$T/gm.json"
grep -q '"link":	"mc"' "$T/gm.json" && grep -q '"link_samples":	100' "$T/gm.json" && ok || bad "the file's mc link draws 100 times"
run "compare, the file's mc link, a seed" "$BNN" compare -m "$T/g_mc.st" --seed 5
expect_usage "--seed, the file's bridge" "--seed is for weight samples" "$BNN" eval -m "$T/g_bridge.st" --seed 3
# Which options replace the file's link: --link-samples (0: the probit), --samples S > 0; not
# --samples 0, which is the GLM predictive's own default.
run "eval, --samples 0 keeps the file's link" "$BNN" eval -m "$T/g_mc.st" --samples 0 --json "$T/gm0.json"
grep -q '"link":	"mc"' "$T/gm0.json" && ok || bad "--samples 0 keeps the file's mc link"
run "eval, --link-samples 0 over the file's link" "$BNN" eval -m "$T/g_mc.st" --link-samples 0 --json "$T/gm0.json"
grep -q '"link":	"probit"' "$T/gm0.json" && [ ! -s "$T/err" ] && ok || bad "--link-samples 0 gives the probit, without the note"
run "eval, --link-samples 7 over the file's link" "$BNN" eval -m "$T/g_mc.st" --link-samples 7 --json "$T/gm0.json"
grep -q '"link_samples":	7' "$T/gm0.json" && ok || bad "--link-samples 7 sets the draws"
# The note comes once the command's options and data stand, so an error is the one line.
expect_usage "the file's link, data of another task" "but sine-gap is regression data" "$BNN" eval -m "$T/g_bridge.st" --data sine-gap
expect_usage "predict, the file's link, data of another width" "sine-gap has 1 feature" "$BNN" predict -m "$T/g_bridge.st" --data sine-gap -o "$T/never.csv"
# The keys are checked as other metadata is: a damaged one is an error, used or not.
python3 "$HERE/st_meta.py" "$T/g_bridge.st" "$T/gx.st" bnn.link bridges
expect_fail "a file's unknown link" "gx.st: bnn.link is 'bridges', not probit, mc, bridge or bridge-norm" "$BNN" eval -m "$T/gx.st" --link probit
python3 "$HERE/st_meta.py" "$T/g_bridge.st" "$T/gx.st" bnn.link_samples 10
expect_fail "a file's bridge with draws" "bnn.link 'bridge' takes no draws" "$BNN" predict -m "$T/gx.st" --data "csv:$T/blobs.csv" -o "$T/never.csv"
python3 "$HERE/st_meta.py" "$T/g_mc.st" "$T/gx.st" bnn.link_samples 0
expect_fail "a file's mc with no draws" "gx.st: bnn.link_samples is '0', not a whole number >= 1" "$BNN" compare -m "$T/gx.st"
python3 "$HERE/st_meta.py" "$T/la_sine.safetensors" "$T/gx.st" bnn.link mc
expect_fail "a regression file's link" "gx.st: bnn.link is 'mc' but the model is a regression model" "$BNN" eval -m "$T/gx.st"
python3 "$HERE/st_meta.py" "$T/lab.st" "$T/gx.st" bnn.link bridge
expect_fail "a bernoulli file's bridge" "but the model has a bernoulli likelihood" "$BNN" plot -m "$T/gx.st" -o "$T/never.svg"
python3 "$HERE/st_meta.py" "$T/map3h.st" "$T/gx.st" bnn.link bridge
expect_fail "a point estimate's link" "a link for a Laplace posterior's linearised predictive, but the file holds a point estimate" "$BNN" eval -m "$T/gx.st"
run "von, 3 classes" "$BNN" von -m "$T/map3h.st" --prior-precision 1 -q -o "$T/v3.st"
python3 "$HERE/st_meta.py" "$T/v3.st" "$T/gx.st" bnn.link mc
expect_fail "a VON file's link" "gx.st: bnn.link is 'mc', but the file holds a VON posterior" "$BNN" eval -m "$T/gx.st"
# A Laplace or VON file whose tag says otherwise is refused, not read as its MAP weights.
python3 "$HERE/st_meta.py" "$T/g_mc.st" "$T/gx.st" bnn.posterior point
expect_fail "a Laplace file tagged point" "gx.st: bnn.posterior is 'point' but the file holds laplace\..*, a Laplace posterior's (an edited file?)" "$BNN" eval -m "$T/gx.st"
expect_fail "laplace of a Laplace file tagged point" "a Laplace posterior's (an edited file?)" "$BNN" laplace -m "$T/gx.st" -o "$T/never.st"
python3 "$HERE/st_meta.py" "$T/v3.st" "$T/gx.st" bnn.posterior
expect_fail "a VON file without its tag" "gx.st: bnn.posterior is missing but the file holds laplace\." "$BNN" predict -m "$T/gx.st" --data "csv:$T/blobs.csv" -o "$T/never.csv"
python3 "$HERE/st_meta.py" "$T/g_mc.st" "$T/gx.st" bnn.posterior diag
expect_fail "a Laplace file tagged diag" "bnn.posterior is 'diag' but the file holds laplace\." "$BNN" compare -m "$T/gx.st"
python3 - "$HERE" "$T/g_mc.st" "$T/gx.st" <<'PY'
import math, struct, sys
sys.path.insert(0, sys.argv[1])
from st_meta import read_st, write_st
h, data = read_st(sys.argv[2])
# an IVON file's std (one per weight) beside the Laplace tensors
n = sum(math.prod(t["shape"]) for k, t in h.items() if k[0].isdigit())
h["posterior.std"] = {"dtype": "F32", "shape": [n], "data_offsets": [len(data), len(data) + 4 * n]}
write_st(sys.argv[3], h, data + struct.pack("<%df" % n, *([0.1] * n)))
PY
expect_fail "a Laplace file with posterior.std" "gx.st: bnn.posterior is 'laplace' but the file holds posterior.std, a diagonal posterior's (an edited file?)" "$BNN" eval -m "$T/gx.st"
# The mc link's draws are named with their seed, in the text and in the JSON report.
run "eval --link mc, seed 3" "$BNN" eval -m "$T/la3.st" --data "csv:$T/blobs.csv" --link mc --link-samples 7 --seed 3 --json "$T/mc3.json"
grep -q "^predict    linearised (GLM), Monte-Carlo over the logits (7 draws, seed 3)$" "$T/out" && grep -q '"seed":	3,' "$T/mc3.json" \
  && ok || bad "the mc link's draws and seed: $(grep predict "$T/out")"
python3 "$HERE/st_meta.py" "$T/g_bridge.st" "$T/gx.st" bnn.link bridges
expect_fail "info, a file's unknown link" "gx.st: bnn.link is not probit, mc, bridge or bridge-norm" "$BNN" info "$T/gx.st"
[ ! -e "$T/never.csv" ] && [ ! -e "$T/never.svg" ] && ok || bad "a refused file's link wrote an output"

# Inputs alone are neither labels nor targets, whatever the model's task.
expect_usage "laplace, a regression model, inputs only" "noise:1:20 has no targets (inputs only)" "$BNN" laplace -m "$T/sine.safetensors" --data noise:1:20 -o "$T/never.safetensors"
expect_usage "eval, a regression model, inputs only" "noise:1:20 has no targets (inputs only)" "$BNN" eval -m "$T/sine.safetensors" --data noise:1:20
# A given prior keeps the trained noise, and the report says so.
run "laplace sine, a given prior" "$BNN" laplace -m "$T/sine.safetensors" --hessian kron --prior 2 -o "$T/la_sine_p2.safetensors"
grep -q "noise sigma 0.1 (as trained)" "$T/out" && ok || bad "a given prior keeps the trained sigma: $(grep "noise sigma" "$T/out")"
# A small noise (0.01: the curvature /σ² spans many decades) and a grid that reaches prior 1e-4:
# float sums left a negative eigenvalue and a negative predictive variance there, and the grid
# failed ("the GLM predictive is not finite"); the fit is summed again in double and stands.
run "train sine, little noise" "$BNN" train --data sine-gap --epochs 50 --noise 0.01 --holdout 50 -q -o "$T/sine01.safetensors"
run "laplace sine, little noise, grid" "$BNN" laplace -m "$T/sine01.safetensors" --hessian full --prior grid -o "$T/la_sine01.safetensors"
grep -q "^note: with float sums the prior met an eigenvalue that rounding made negative; summed again in double" "$T/err" && ok || bad "little noise, grid: $(cat "$T/err")"
[ "$(grep -c '^grid: best' "$T/err")" -eq 1 ] && ok || bad "the grid's result is reported once: $(cat "$T/err")"
run "eval sine" "$BNN" eval -m "$T/la_sine.safetensors" --json "$T/la_sine.json"
grep -q "coverage" "$T/out" && ok || bad "regression eval of a Laplace posterior"
# The GLM predictive draws no weights: the report says 0 samples.
/usr/bin/python3 -c "import json, sys; sys.exit(json.load(open(sys.argv[1]))['samples'] != 0)" "$T/la_sine.json" \
  && ok || bad "a GLM predictive's JSON records samples $(grep samples "$T/la_sine.json")"
# The file's noise sigma is the one the predictive uses: another sigma, another NLL. The noise
# is recorded twice (bnn.sigma, bnn.laplace.sigma); a file where they disagree was edited by hand
# and is refused.
python3 "$HERE/st_meta.py" "$T/la_sine.safetensors" "$T/la_sine_s1.safetensors" bnn.laplace.sigma 0.5
expect_fail "two noises" "bnn.sigma (.*) and bnn.laplace.sigma (0.5) disagree" "$BNN" eval -m "$T/la_sine_s1.safetensors"
python3 "$HERE/st_meta.py" "$T/la_sine_s1.safetensors" "$T/la_sine_s.safetensors" bnn.sigma 0.5
run "eval sine" "$BNN" eval -m "$T/la_sine.safetensors"
nll_s1=$(val nll)
run "eval sine, sigma 0.5" "$BNN" eval -m "$T/la_sine_s.safetensors"
[ -n "$nll_s1" ] && [ "$(val nll)" != "$nll_s1" ] && ok || bad "the file's sigma is ignored: nll $nll_s1 and $(val nll)"
run "plot sine" "$BNN" plot -m "$T/la_sine.safetensors" -o "$T/sine.svg"

# Too large: refused before allocating, with the size; bad settings and inputs.
run "train wide" "$BNN" train --data moons --model mlp:2-1500-1500-2 --epochs 1 -q -o "$T/wide.safetensors"
expect_fail "full too large" "TiB\|GiB" "$BNN" laplace -m "$T/wide.safetensors" --subset all --hessian full -o "$T/never.safetensors"
expect_fail "full too large, layers" "; try --hessian kron or diag, or fewer layers$" "$BNN" laplace -m "$T/wide.safetensors" --subset layers:0,1 --hessian full -o "$T/never.safetensors"
# The hint names only what would fit, each worked out with its own batch and that batch's
# activations: under a 195 KiB limit on the moons network, kron over all weights (354 KiB) must
# not send to diag (650 KiB at its automatic batch of 1024) nor to the last layer (865 KiB at
# 1024); diag's refusal says a lower --batch-size, which then fits, and so does the last layer's
# kron. Under 977 KiB, full over all weights is sent to kron, which fits.
BNN_MEMORY_LIMIT=200000 expect_fail "kron over the limit" "needs 354 KiB.*; raise the limit (BNN_MEMORY_LIMIT)$" "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian kron -o "$T/never.safetensors"
BNN_MEMORY_LIMIT=200000 expect_fail "diag over the limit" "needs 650 KiB.*; try a lower --batch-size$" "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian diag -o "$T/never.safetensors"
BNN_MEMORY_LIMIT=200000 run "diag with a lower batch" "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian diag -b 64 -o "$T/la_diag64.safetensors"
BNN_MEMORY_LIMIT=200000 expect_fail "last-layer kron over the limit" "needs 865 KiB.*; try a lower --batch-size$" "$BNN" laplace -m "$T/map.safetensors" --hessian kron -o "$T/never.safetensors"
BNN_MEMORY_LIMIT=200000 run "last-layer kron with a lower batch" "$BNN" laplace -m "$T/map.safetensors" --hessian kron -b 16 -o "$T/la_kron16.safetensors"
BNN_MEMORY_LIMIT=1000000 expect_fail "full over the limit" "; try --hessian kron$" "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian full -o "$T/never.safetensors"
BNN_MEMORY_LIMIT=1000000 run "kron then" "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian kron -o "$T/la_kron_lim.safetensors"
expect_fail "bad hessian" "--hessian" "$BNN" laplace -m "$T/map.safetensors" --hessian blockdiag -o "$T/never.safetensors"
# Low rank: kept eigenpairs of the GGN; saved and read back like the others.
run "laplace lowrank" "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian lowrank --rank 10 -o "$T/la_lr.safetensors"
grep -q "^hessian    lowrank (rank 10), ggn curvature" "$T/out" && ok || bad "laplace reports the rank kept"
! grep -q "^lowrank " "$T/out" && ok || bad "the dense way reports no iteration: $(grep lowrank "$T/out")"
lml_dense=$(awk '/^log ML .* at prior precision 1/ { print $3 }' "$T/out")
# A memory limit that the 2802 x 2802 matrix does not fit: the matrix-free iteration, which
# reports how far it got, and the same log ML as the dense way (to the 4 decimals printed).
run "laplace lowrank, matrix-free" env BNN_MEMORY_LIMIT=8M "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian lowrank --rank 10 -o "$T/la_lrmf.safetensors"
grep -q "^lowrank    matrix-free: [0-9][0-9]* passes over the data, residual [0-9.e-]* of the top eigenvalue (target 1e-10)$" "$T/out" \
  && ok || bad "matrix-free low rank reports its passes: $(grep lowrank "$T/out")"
# ... and it converges fast: its residual at the target in 6 passes here (Ritz vectors read from
# the wrong side of the small eigenproblem reached it only after 165).
mf=$(sed -n 's/^lowrank    matrix-free: \([0-9]*\) passes over the data, residual \([0-9.e-]*\) .*/\1 \2/p' "$T/out")
num_holds 'p <= 30 && r <= 1e-10' p="${mf% *}" r="${mf#* }" && ok || bad "matrix-free low rank converges: $mf"
lml_mf=$(awk '/^log ML .* at prior precision 1/ { print $3 }' "$T/out")
num_holds 'a - b <= 2e-4 && b - a <= 2e-4' a="$lml_dense" b="$lml_mf" \
  && ok || bad "lowrank log ML: matrix-free $lml_mf, dense $lml_dense"
# The iteration's pass limit: a linear regression whose GGN has 201 eigenvalues within 0.4% of
# each other (columns 1..200 of the 256 x 256 Sylvester-Hadamard matrix, column j scaled by
# sqrt(1 + 2e-5 j); no gap for the iteration to use) stops after 200 passes far above the
# target, says so in a note and still saves the eigenpairs it reached. The limit: what the
# matrix-free way says it needs, which the dense way exceeds.
python3 -c "
import math
for i in range(256):
    print(','.join('%.9g' % ((-1) ** bin(i & j).count('1') * math.sqrt(1 + 2e-5 * j)) for j in range(1, 201)) + ',%d' % (i % 3 - 1))
" >"$T/hadamard.csv"
run "train linear" "$BNN" train --data "csv:$T/hadamard.csv" --task regression --model mlp:200-1 --epochs 1 -q -o "$T/lin.safetensors"
BNN_MEMORY_LIMIT=2K "$BNN" laplace -m "$T/lin.safetensors" --data "csv:$T/hadamard.csv" --subset all --hessian lowrank --rank 2 -o "$T/never.safetensors" 2>"$T/err"
kib=$(sed -n 's/.* needs \([0-9]*\) KiB even without forming the 201 x 201 matrix.*/\1/p' "$T/err")
[ -n "$kib" ] && ok || bad "the matrix-free way's size: $(cat "$T/err")"
run "laplace lowrank at the pass limit" env BNN_MEMORY_LIMIT=$((kib + 1))K "$BNN" laplace -m "$T/lin.safetensors" --data "csv:$T/hadamard.csv" --subset all --hessian lowrank --rank 2 -o "$T/la_limit.safetensors"
grep -q "^lowrank    matrix-free: 200 passes over the data, residual [0-9.e-]* of the top eigenvalue (target 1e-10)$" "$T/out" &&
  grep -q "^note: the low-rank iteration stopped at its limit of 200 passes with a residual of [0-9.e-]*, above its target 1e-10: the eigenpairs are approximate$" "$T/err" &&
  [ -s "$T/la_limit.safetensors" ] && ok || bad "the pass limit is said: $(grep lowrank "$T/out") $(cat "$T/err")"
run "laplace lowrank, rank beyond the subset" "$BNN" laplace -m "$T/map.safetensors" --hessian lowrank --rank 500 -o "$T/la_lr500.safetensors"
grep -q "^hessian    lowrank (rank 102), " "$T/out" && grep -q "^note: --rank 500 is more than the subset's 102 parameters; rank 102 is kept" "$T/err" \
  && ok || bad "a rank beyond the subset is said: $(grep hessian "$T/out") $(cat "$T/err")"
run "eval lowrank" "$BNN" eval -m "$T/la_lr.safetensors"
grep -q "low-rank Hessian" "$T/out" && ok || bad "eval names the low-rank posterior"
acc=$(val accuracy)
num_holds 'a > 0.95' a="$acc" && ok || bad "lowrank accuracy $acc"
expect_fail "laplace of a posterior" "MAP" "$BNN" laplace -m "$T/la_all_kron.safetensors" -o "$T/never.safetensors"
expect_fail "grid without holdout" "holdout" "$BNN" laplace -m "$T/map.safetensors" --prior grid -o "$T/never.safetensors"
# The counts in a posterior's metadata are whole numbers as every bnn reader reads them.
n=$(sed -n 's/^  bnn.laplace.nparams *//p' <("$BNN" info "$T/la_all_kron.safetensors"))
python3 "$HERE/st_meta.py" "$T/la_all_kron.safetensors" "$T/signed.safetensors" bnn.laplace.nparams "+$n"
expect_fail "a signed parameter count" "bnn.laplace.nparams" "$BNN" eval -m "$T/signed.safetensors"
python3 "$HERE/st_meta.py" "$T/la_all_kron.safetensors" "$T/float.safetensors" bnn.laplace.nparams "$n.0"
expect_fail "a parameter count with a decimal point" "bnn.laplace.nparams" "$BNN" eval -m "$T/float.safetensors"
# The file says which curvature it holds (the empirical Fisher of a Gaussian likelihood scales
# as 1/σ⁴): the fit writes it, and a name bnn does not know is refused, not read as a GGN.
grep -q '"bnn.laplace.curvature":"ggn"' "$T/la_all_kron.safetensors" && ok || bad "bnn.laplace.curvature not written"
python3 "$HERE/st_meta.py" "$T/la_all_kron.safetensors" "$T/curv.safetensors" bnn.laplace.curvature "fisher"
expect_fail "an unknown curvature name" "bnn.laplace.curvature is 'fisher', not ggn, ggn-mc or ef" "$BNN" eval -m "$T/curv.safetensors"
# A prior precision that bnn laplace refuses to save (a weight sample would not be finite: softmax's
# GGN is flat along the all-ones logit direction, so the variance there is 1/δ) is refused in an
# edited file too, not turned into a uniform GLM predictive at every input.
python3 "$HERE/st_meta.py" "$T/la_last-layer_kron.safetensors" "$T/tiny_prior.safetensors" bnn.laplace.prior_prec 1e-320
expect_fail "eval, a prior precision whose samples overflow" "tiny_prior.safetensors: Laplace posterior: at prior precision .* a weight sample is not finite" "$BNN" eval -m "$T/tiny_prior.safetensors"
expect_fail "predict, a prior precision whose samples overflow" "a weight sample is not finite" "$BNN" predict -m "$T/tiny_prior.safetensors" --data moons -o "$T/never.csv"
# A huge given prior is a point estimate in all but name; its log ML is printed compactly.
run "laplace, a prior of 1e300" "$BNN" laplace -m "$T/map.safetensors" --prior 1e300 -o "$T/la_huge.safetensors"
grep -q "^log ML     -[0-9.]*e+30[0-9] at the chosen prior$" "$T/out" && ok || bad "a huge log ML printed as: $(grep "chosen prior" "$T/out")"
expect_usage "laplace, data without labels" "noise:2:100 has no labels" "$BNN" laplace -m "$T/map.safetensors" --data noise:2:100 -o "$T/never.safetensors"
expect_usage "von, data without labels" "noise:2:100 has no labels" "$BNN" von -m "$T/map.safetensors" --data noise:2:100 -o "$T/never.safetensors"
# A model file whose task is not the data's (a classifier tagged as regression, as an export
# without bnn.lik can be) is refused, as eval refuses it, instead of a categorical fit saved as a
# Gaussian posterior; von shares the check.
python3 "$HERE/st_meta.py" "$T/map.safetensors" "$T/reg1.safetensors" bnn.task regression
python3 "$HERE/st_meta.py" "$T/reg1.safetensors" "$T/reg_tagged.safetensors" bnn.lik
expect_usage "laplace, model task not the data's" "reg_tagged.safetensors is a regression model but moons is classification data" "$BNN" laplace -m "$T/reg_tagged.safetensors" -o "$T/never.safetensors"
expect_usage "von, model task not the data's" "is a regression model but moons is classification data" "$BNN" von -m "$T/reg_tagged.safetensors" -o "$T/never.safetensors"
[ ! -e "$T/never.safetensors" ] && ok || bad "a failed fit left a file"
run "train holdout" "$BNN" train --data moons --epochs 30 --batch-size 32 --lr 1e-2 --holdout 200 -q -o "$T/map_ho.safetensors"
run "laplace grid" "$BNN" laplace -m "$T/map_ho.safetensors" --prior grid -o "$T/la_grid.safetensors"
# The hold-out belongs to the model's data also when --data names the same spec; other data
# has none, and grid says why.
run "laplace own data by name" "$BNN" laplace -m "$T/map_ho.safetensors" --data moons -o "$T/la_own.safetensors"
grep -q "^data       800 examples of moons" "$T/out" && ok || bad "--data moons keeps the model's hold-out out: $(grep ^data "$T/out")"
awk 'BEGIN { srand(3); print "x1,x2,y"; for (i = 0; i < 400; i++) { c = i % 2; printf "%.4f,%.4f,%d\n", (c ? 1 : -1) * 0.8 + rand() * 2 - 1, rand() * 2 - 1, c } }' >"$T/blob.csv"
expect_fail "grid on other data" "holds out examples of its own data (moons), not of --data" "$BNN" laplace -m "$T/map_ho.safetensors" --data "csv:$T/blob.csv" --prior grid -o "$T/never.safetensors"
# The grid's choice, recomputed: each of its 21 values (10^-4 .. 10^4) fitted as a fixed prior
# and evaluated on the hold-out rows alone (the last 100 of a CSV); the grid must pick the one
# with the lowest NLL, and report that NLL.
run "train csv holdout" "$BNN" train --data "csv:$T/blob.csv" --holdout 100 --epochs 20 -q -o "$T/blob.safetensors"
(head -1 "$T/blob.csv"; tail -100 "$T/blob.csv") >"$T/blob_val.csv"
# The same CSV spelled another way is the model's own data: its hold-out stays out.
run "laplace, own CSV by another path" "$BNN" laplace -m "$T/blob.safetensors" --data "csv:$T/./blob.csv" -o "$T/blob_own.safetensors"
grep -q "^data       300 examples" "$T/out" && ok || bad "csv:DIR/./blob.csv keeps the hold-out out: $(grep ^data "$T/out")"
# A model without a hold-out, on other data: the grid's message says to train with one.
expect_fail "grid, no hold-out, other data" "train the model with --holdout N" "$BNN" laplace -m "$T/map.safetensors" --data "csv:$T/blob.csv" --prior grid -o "$T/never.safetensors"
"$BNN" laplace -m "$T/blob.safetensors" --prior grid -o "$T/blob_grid.safetensors" >"$T/out" 2>"$T/err" && ok || bad "grid on the CSV model"
: >"$T/grid_nll"
for i in $(seq 0 20); do
  d=$(awk -v i=$i 'BEGIN { printf "%.17g", 10 ^ (-4 + 0.4 * i) }')
  "$BNN" laplace -m "$T/blob.safetensors" --prior "$d" -o "$T/blob_d.safetensors" >/dev/null 2>&1 &&
    "$BNN" eval -m "$T/blob_d.safetensors" --data "csv:$T/blob_val.csv" --json "$T/blob_d.json" >/dev/null 2>&1 ||
    bad "fixed prior $d"
  echo "$d $(sed -n 's/.*"nll":[[:space:]]*\([-0-9.e+]*\).*/\1/p' "$T/blob_d.json" | head -1)" >>"$T/grid_nll"
done
chosen=$(sed -n 's/^grid: best validation NLL \([0-9.]*\) at prior precision \([0-9.e+-]*\)\( (.*)\)\{0,1\}$/\1 \2/p' "$T/err")
# A choice at either end of the grid says so (the best may lie beyond it); one inside does not.
case "${chosen#* }" in
  10000 | 0.0001) grep -q "(the grid's end: the best may lie beyond it" "$T/err" && ok || bad "grid at its end without a note" ;;
  *) grep -q "the grid's end" "$T/err" && bad "grid inside its range with the end note" || ok ;;
esac
awk -v c="$chosen" 'BEGIN { split(c, cc, " ") }
  { if (NR == 1 || $2 < min) min = $2; nll[$1] = $2 }
  END { ok = 0
        for (d in nll) if (d / cc[2] > 1 - 1e-5 && d / cc[2] < 1 + 1e-5 && nll[d] <= min * (1 + 1e-12) && (nll[d] - cc[1]) ^ 2 < 1e-8) ok = 1
        exit !(c != "" && NR == 21 && ok) }' "$T/grid_nll" && ok || bad "grid chose '$chosen'; recomputed: $(tr '\n' ';' <"$T/grid_nll")"
# A regression grid scores the hold-out by the Gaussian predictive's NLL: the NLL it reports is
# the one eval gives for the saved file on those rows (noise 0.1, so the variance matters).
awk 'BEGIN { srand(7); print "x,y"; for (i = 0; i < 300; i++) { x = 6 * rand() - 3; printf "%.5f,%.5f\n", x, sin(x) + 0.2 * (rand() - 0.5) } }' >"$T/reg.csv"
(head -1 "$T/reg.csv"; tail -100 "$T/reg.csv") >"$T/reg_val.csv"
run "train regression holdout" "$BNN" train --data "csv:$T/reg.csv" --task regression --noise 0.1 --holdout 100 --epochs 50 -q -o "$T/reg.safetensors"
run "laplace grid, regression" "$BNN" laplace -m "$T/reg.safetensors" --prior grid -o "$T/reg_grid.safetensors"
g=$(sed -n 's/^grid: best validation NLL \([-0-9.]*\) .*/\1/p' "$T/err")
run "eval the grid's file on the hold-out" "$BNN" eval -m "$T/reg_grid.safetensors" --data "csv:$T/reg_val.csv"
[ -n "$g" ] && [ "$g" = "$(val nll)" ] && ok || bad "regression grid NLL '$g', eval on the hold-out '$(val nll)'"
# ... and the file holds the prior it chose.
saved=$("$BNN" info "$T/blob_grid.safetensors" | awk '$1 == "bnn.laplace.prior_prec" { print $2 }')
num_holds 's / c > 1 - 1e-5 && s / c < 1 + 1e-5' s="$saved" c="${chosen#* }" && ok || bad "the grid's file holds prior precision '$saved', not the chosen '${chosen#* }'"

# Data that does not fit the network is a usage error (exit 2), as for every command.
cut -d, -f1,3 "$T/blob.csv" >"$T/blob1.csv"
expect_usage "laplace: data of another width" "blob1.csv has 1 feature but model .* expects 2" "$BNN" laplace -m "$T/map.safetensors" --data "csv:$T/blob1.csv" -o "$T/never.safetensors"
expect_usage "laplace: regression data for a classifier" "map.safetensors is a classification model but sine-gap is regression data" "$BNN" laplace -m "$T/map.safetensors" --data sine-gap -o "$T/never.safetensors"

# A network that records no data (as a PyTorch state dict): laplace and von record the --data
# they fitted on, relative names with their directory, so eval reads it again from anywhere.
cp "$T/map.safetensors" "$T/nodata.safetensors"
for k in bnn.data bnn.data.target_col bnn.data.header bnn.data.holdout bnn.data.min bnn.data.max bnn.seed; do # (moons: no directory)
  python3 "$HERE/st_meta.py" "$T/nodata.safetensors" "$T/nd.tmp" $k && mv "$T/nd.tmp" "$T/nodata.safetensors"
done
cp "$T/blob.csv" "$T/fitdata.csv"
mkdir -p "$T/elsewhere"
(cd "$T" && "$BNN" laplace -q -m nodata.safetensors --data csv:fitdata.csv -o la_nd.safetensors >/dev/null) && ok || bad "laplace of a model without data"
(cd "$T" && "$BNN" von -q -m nodata.safetensors --data csv:fitdata.csv --steps 2 -o von_nd.safetensors >/dev/null 2>&1) && ok || bad "von of a model without data"
for f in la_nd von_nd; do
  (cd "$T/elsewhere" && "$BNN" eval -m "../$f.safetensors" >"$T/out" 2>"$T/err") &&
    grep -q "^data *csv:fitdata.csv" "$T/out" && ok || bad "$f: eval without --data: $(cat "$T/err")"
done
# ... and generated data with the seed it was drawn with (eval drew other moons without it)
(cd "$T" && "$BNN" laplace -q -m nodata.safetensors --data moons -o la_ndm.safetensors >/dev/null 2>&1) && ok || bad "laplace of a model without data, on moons"
run "info of that posterior" "$BNN" info "$T/la_ndm.safetensors"
grep -q "bnn.seed  *0$" "$T/out" && ok || bad "the posterior does not record the data's seed: $(grep bnn. "$T/out" | head -5)"
# ... and the range of the features fitted on, for eval's scaling note (moons: about -1.2 .. 2.2)
lo=$(val bnn.data.min) hi=$(val bnn.data.max)
num_holds 'a > -1.5 && a < -0.9 && b > 1.9 && b < 2.5' a="${lo:-x}" b="${hi:-x}" && ok ||
  bad "the posterior's bnn.data.min / max: '$lo' '$hi'"

# A long prior optimisation says how long, once, on a stream that is not a terminal: a per-layer
# prior over a full Hessian factorises the 1882 x 1882 precision at every step (0.13 s here), so
# 1000 steps announce two minutes. The run is stopped once the line is out; being stopped, it
# leaves no output file. Two steps (under a second) announce nothing.
run "map for the long fit" "$BNN" train --data moons --model mlp:2-40-40-2 --epochs 1 -q -o "$T/m40.st"
"$BNN" laplace -m "$T/m40.st" --subset all --hessian full --prior marglik-layers --steps 1000 \
  -o "$T/long.st" >/dev/null 2>"$T/long.err" &
pid=$!
for _ in $(seq 600); do grep -qs "steps of about" "$T/long.err" && break; sleep 0.1; done
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
grep -q "^prior (marglik-layers): 1000 steps of about [0-9.e+-]* s each ([0-9]* s in all)$" "$T/long.err" &&
  ok || bad "no progress line for a long prior fit: $(cat "$T/long.err")"
[ ! -e "$T/long.st" ] && ok || bad "a stopped laplace left its output"
run "a short fit" "$BNN" laplace -m "$T/m40.st" --subset all --hessian full --prior marglik-layers --steps 2 -o "$T/short.st"
grep -q "steps of about" "$T/err" && bad "a progress line for a 2-step fit: $(cat "$T/err")" || ok

cli_done
