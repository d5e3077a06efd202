#!/usr/bin/env bash
# End-to-end tests of variational training in the bnn command: IVON and mean-field VI runs,
# evaluation by model averaging, posterior summaries, and checkpoint/resume (a resumed run must
# write the very same file as an uninterrupted one).
# usage: cli_variational.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"

# --- IVON on the moons: a posterior, model averaging, calibration numbers
run "ivon train" "$BNN" train --data moons --method ivon --epochs 30 --batch-size 32 --lr 0.5 \
  --hess-init 0.1 --lr-schedule cosine -q -o "$T/ivon.safetensors"
run "ivon eval" "$BNN" eval -m "$T/ivon.safetensors" --samples 16 --json "$T/ivon.json"
grep -q "diagonal Gaussian" "$T/out" && ok || bad "eval reports the posterior"
acc=$(val accuracy)
awk -v a="$acc" 'BEGIN { exit !(a > 0.97) }' && ok || bad "ivon moons accuracy $acc <= 0.97"
mi=$(awk '$1 == "mutual" {print $3}' "$T/out")
awk -v m="$mi" 'BEGIN { exit !(m > 0) }' && ok || bad "mutual information $mi not positive"
grep -q '"ece":' "$T/ivon.json" && grep -q '"reliability":' "$T/ivon.json" && grep -q '"samples":	16' "$T/ivon.json" \
  && ok || bad "JSON has ece, reliability bins and samples"
# At the mean (--samples 0) the mutual information is not reported and predictions are one network.
run "ivon eval at mean" "$BNN" eval -m "$T/ivon.safetensors" --samples 0
grep -q "posterior mean" "$T/out" && ! grep -q "mutual" "$T/out" && ok || bad "--samples 0 predicts at the mean"
run "ivon info" "$BNN" info "$T/ivon.safetensors"
grep -q "posterior diagonal Gaussian" "$T/out" && grep -q "ivon.hess" "$T/out" && ok || bad "info shows the posterior"

# --- mean-field VI
run "mfvi train" "$BNN" train --data moons --method mfvi --epochs 20 --batch-size 32 --lr 1e-2 -q -o "$T/mfvi.safetensors"
run "mfvi eval" "$BNN" eval -m "$T/mfvi.safetensors" --samples 8
acc=$(val accuracy)
awk -v a="$acc" 'BEGIN { exit !(a > 0.95) }' && ok || bad "mfvi moons accuracy $acc <= 0.95"
# A huge learning rate drives some ρ far below zero: the file keeps the σ training used (held at
# 2^-63), not softplus(ρ) = 0, so it stays a posterior eval can read.
run "mfvi, absurd learning rate" "$BNN" train --data sine-gap --method mfvi --epochs 5 --lr 1e10 -q -o "$T/mfvi_big.safetensors"
run "eval it" "$BNN" eval -m "$T/mfvi_big.safetensors" --samples 2

# --- IVON regression: the predictive variance includes the noise
run "ivon sine" "$BNN" train --data sine-gap --method ivon --epochs 100 --batch-size 16 --lr 0.5 --noise 0.1 -q -o "$T/sine.safetensors"
run "ivon sine eval" "$BNN" eval -m "$T/sine.safetensors" --samples 16
grep -q "coverage" "$T/out" && ok || bad "regression eval reports coverage"

# --- resume: 2 epochs + checkpoint, then resume → the same file as 3 epochs in one go
for m in ivon adamw mfvi; do
  run "$m full" "$BNN" train --data moons --method $m --epochs 3 --batch-size 64 --lr-schedule cosine --warmup-epochs 1 -q -o "$T/full_$m.safetensors"
  run "$m part" "$BNN" train --data moons --method $m --epochs 3 --batch-size 64 --lr-schedule cosine --warmup-epochs 1 -q --stop-after 2 --checkpoint "$T/ck_$m.safetensors"
  run "$m resume" "$BNN" train --resume "$T/ck_$m.safetensors" -q -o "$T/resumed_$m.safetensors"
  cmp -s "$T/full_$m.safetensors" "$T/resumed_$m.safetensors" && ok || bad "$m: resumed file differs from the uninterrupted one"
done
expect_fail "resume with a setting" "cannot be combined with --resume" "$BNN" train --resume "$T/ck_ivon.safetensors" --lr 0.3
expect_fail "resume a model file" "not a checkpoint" "$BNN" train --resume "$T/full_ivon.safetensors"
expect_fail "resume missing" "nothing.safetensors" "$BNN" train --resume "$T/nothing.safetensors"

# --- divergence names the step; bad settings are refused
expect_fail "ivon divergence" "step" "$BNN" train --data moons --method ivon --lr 1e30 --epochs 2 -q -o "$T/div.safetensors"
[ ! -e "$T/div.safetensors" ] && ok || bad "a diverged run left a file"
expect_fail "bad beta2" "beta" "$BNN" train --data moons --method ivon --beta2 1.5
expect_fail "bad method" "unknown --method" "$BNN" train --data moons --method laplace
expect_fail "bad samples" "samples" "$BNN" eval -m "$T/ivon.safetensors" --samples -3

cli_done
