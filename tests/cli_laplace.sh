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
    awk -v a="$acc" 'BEGIN { exit !(a > 0.95) }' && ok || bad "$subset $h accuracy $acc"
    if /usr/bin/python3 -c "import jsonschema" 2>/dev/null; then
      run "schema $subset $h" /usr/bin/python3 "$HERE/json_validate.py" "$HERE/../docs/eval.schema.json" "$T/la.json"
    fi
  done
done
grep -q '"posterior":	"laplace"' "$T/la.json" && ok || bad "JSON names the Laplace posterior"
for c in ef ggn-mc; do run "laplace $c" "$BNN" laplace -m "$T/map.safetensors" --curvature $c --subset all --hessian diag -o "$T/la_$c.safetensors"; done
# One prior precision per layer, tuned by the marginal likelihood, saved and read back.
# (full with one δ per layer needs a Cholesky of the P × P precision per step: the last layer here.)
for h in diag kron full; do
  subset=all; n=3
  [ $h = full ] && subset=last-layer && n=1
  run "laplace layers $h" "$BNN" laplace -m "$T/map.safetensors" --subset $subset --hessian $h --prior marglik-layers -o "$T/la_layers_$h.safetensors"
  [ "$(grep "per-layer precisions" "$T/out" | awk '{print $4}' | tr ',' '\n' | wc -l)" -eq $n ] && ok || bad "$h: $n per-layer precisions"
  run "eval layers $h" "$BNN" eval -m "$T/la_layers_$h.safetensors"
  acc=$(val accuracy)
  awk -v a="$acc" 'BEGIN { exit !(a > 0.95) }' && ok || bad "layers $h accuracy $acc"
done
run "laplace fixed prior" "$BNN" laplace -m "$T/map.safetensors" --prior 3.5 -o "$T/la_fixed.safetensors"
grep -q "precision 3.5 " "$T/out" && ok || bad "a fixed prior is used as given"
# Sampling predictive and predict's CSV from a Laplace posterior.
run "eval samples" "$BNN" eval -m "$T/la_all_kron.safetensors" --samples 8
grep -q "Monte-Carlo average" "$T/out" && grep -q "mutual inf" "$T/out" && ok || bad "sampled Laplace predictive"
run "eval mc link" "$BNN" eval -m "$T/la_last-layer_kron.safetensors" --link-samples 200
grep -q "Monte-Carlo over the logits" "$T/out" && ok || bad "MC link is used"
acc=$(val accuracy)
awk -v a="$acc" 'BEGIN { exit !(a > 0.95) }' && ok || bad "MC link accuracy $acc"
run "predict laplace" "$BNN" predict -m "$T/la_last-layer_kron.safetensors" --data moons -o "$T/pred.csv"
[ "$(wc -l <"$T/pred.csv")" -eq 501 ] && ok || bad "predict rows"
run "info laplace" "$BNN" info "$T/la_all_kron.safetensors"
grep -q "laplace.b0.f0" "$T/out" && ok || bad "info lists the Kronecker factors"

# Regression: the noise is tuned too, and the predictive variance includes it.
run "train sine" "$BNN" train --data sine-gap --epochs 200 --batch-size 16 --lr 1e-2 --noise 0.1 -q -o "$T/sine.safetensors"
run "laplace sine" "$BNN" laplace -m "$T/sine.safetensors" --subset all --hessian full -o "$T/la_sine.safetensors"
grep -q "noise sigma" "$T/out" && ok || bad "regression Laplace tunes sigma"
run "eval sine" "$BNN" eval -m "$T/la_sine.safetensors"
grep -q "coverage" "$T/out" && ok || bad "regression eval of a Laplace posterior"
run "plot sine" "$BNN" plot -m "$T/la_sine.safetensors" -o "$T/sine.svg"

# Too large: refused before allocating, with the size; bad settings and inputs.
run "train wide" "$BNN" train --data moons --model mlp:2-1500-1500-2 --epochs 1 -q -o "$T/wide.safetensors"
expect_fail "full too large" "TiB\|GiB" "$BNN" laplace -m "$T/wide.safetensors" --subset all --hessian full -o "$T/never.safetensors"
expect_fail "bad hessian" "--hessian" "$BNN" laplace -m "$T/map.safetensors" --hessian blockdiag -o "$T/never.safetensors"
# Low rank: kept eigenpairs of the GGN; saved and read back like the others.
run "laplace lowrank" "$BNN" laplace -m "$T/map.safetensors" --subset all --hessian lowrank --rank 10 -o "$T/la_lr.safetensors"
run "eval lowrank" "$BNN" eval -m "$T/la_lr.safetensors"
grep -q "low-rank Hessian" "$T/out" && ok || bad "eval names the low-rank posterior"
acc=$(val accuracy)
awk -v a="$acc" 'BEGIN { exit !(a > 0.95) }' && ok || bad "lowrank accuracy $acc"
expect_fail "laplace of a posterior" "MAP" "$BNN" laplace -m "$T/la_all_kron.safetensors" -o "$T/never.safetensors"
expect_fail "grid without holdout" "holdout" "$BNN" laplace -m "$T/map.safetensors" --prior grid -o "$T/never.safetensors"
[ ! -e "$T/never.safetensors" ] && ok || bad "a failed fit left a file"
run "train holdout" "$BNN" train --data moons --epochs 30 --batch-size 32 --lr 1e-2 --holdout 200 -q -o "$T/map_ho.safetensors"
run "laplace grid" "$BNN" laplace -m "$T/map_ho.safetensors" --prior grid -o "$T/la_grid.safetensors"

cli_done
