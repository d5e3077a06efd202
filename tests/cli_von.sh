#!/usr/bin/env bash
# End-to-end tests of bnn von (a full-covariance Gaussian over the last layer by the Bayesian
# learning rule): Bayesian linear regression from a linear model in one step, checked against
# tests/von_blr.py; a classifier refitted at the mean and by Monte Carlo, its file read by info,
# eval (linearised and sampled), predict and compare; the same seed giving the same file; and
# bad input refused with one line.
# usage: cli_von.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"

# ---------------------------------------------------------------- linear regression: exact
/usr/bin/python3 - "$T/lin.csv" <<'PY'
import random, sys
random.seed(3)
with open(sys.argv[1], "w") as f:
    f.write("x1,x2,y\n")
    for i in range(80):
        a, b = random.gauss(0, 1), random.gauss(0, 1)
        f.write("%.6f,%.6f,%.6f\n" % (a, b, 0.8 * a - 1.3 * b + 0.4 + random.gauss(0, 0.5)))
PY
run "linear model" "$BNN" train --data "csv:$T/lin.csv" --task regression --model mlp:2-1 --noise 0.5 --epochs 0 -q -o "$T/lin.st"
run "von linear" "$BNN" von -m "$T/lin.st" --steps 1 --prior-precision 2 -o "$T/vlin.st"
# One full step on a Gaussian likelihood is exact: no note that the steps have not settled.
! grep -q "have not settled" "$T/err" && ok || bad "von linear, one step: $(cat "$T/err")"
grep -q "noise sigma 0.5 (the model's)" "$T/out" && ok || bad "von uses the model's noise"
# the printed loss is the summed negative log-likelihood, which with the prior makes the objective
loss=$(awk '$1 == "loss" { print $2 }' "$T/out")
obj=$(sed -n 's/^objective .* at the start, \([^ ]*\) at the mean.*/\1/p' "$T/out")
run "BLR posterior" /usr/bin/python3 "$HERE/von_blr.py" "$T/lin.csv" "$T/vlin.st" 2 0.5 "$loss" "$obj"
cat "$T/out"
run "eval linear" "$BNN" eval -m "$T/vlin.st"
grep -q "^posterior  VON, a full-covariance Gaussian over 3 parameters, prior precision 2" "$T/out" && ok || bad "eval names the VON posterior"

# ---------------------------------------------------------------- a classifier's last layer
run "train moons" "$BNN" train --data moons --epochs 30 --holdout 200 -q -o "$T/map.st"
run "von at the mean" "$BNN" von -m "$T/map.st" --prior-precision 1 -o "$T/v.st"
grep -q "^data       800 examples of moons" "$T/out" && ok || bad "the hold-out is left out"
grep -q "^layer      the last Linear layer: 102 parameters (offset 2700)" "$T/out" && ok || bad "the layer: $(grep '^layer' "$T/out")"
grep -q "^von        10 steps, rho 1, gradient and GGN at the mean" "$T/out" && ok || bad "the settings"
grep -q "^objective  loss + prior .* at the start, .* at the mean; the last step moved the mean by .* halving" "$T/out" && ok || bad "the objective line"
grep -q "not settled" "$T/err" && bad "a settled run says it has not settled" || ok
grep -q "too many decades" "$T/err" && bad "a well-conditioned layer was summed in double" || ok
run "von one step" "$BNN" von -m "$T/map.st" --steps 1 -o "$T/v1.st"
grep -q "^note: the steps have not settled" "$T/err" && ok || bad "one step from the MAP has not settled, and says so"
run "info von" "$BNN" info "$T/v.st"
grep -q "^posterior VON (a full-covariance Gaussian) over 102 parameters, prior precision 1" "$T/out" && ok || bad "info names the posterior"
grep -q "bnn.method  *von" "$T/out" && ok || bad "bnn.method von"
grep -q "bnn.von.steps  *10" "$T/out" && ok || bad "bnn.von.steps"
run "eval map" "$BNN" eval -m "$T/map.st"
nll_map=$(val nll)
run "eval von" "$BNN" eval -m "$T/v.st" --json "$T/v.json"
nll_von=$(val nll) acc_von=$(val accuracy)
grep -q '"posterior":[[:space:]]*"von"' "$T/v.json" && ok || bad "the report calls VON's posterior: $(grep '"posterior"' "$T/v.json")"
# the MAP network stopped early (30 epochs); the refitted last layer is better on the test split
gt "$nll_map" "$nll_von" && ok || bad "VON's test NLL '$nll_von' not below the MAP's '$nll_map'"
gt "$acc_von" 0.95 && ok || bad "VON accuracy '$acc_von'"
run "eval von sampled" "$BNN" eval -m "$T/v.st" --samples 32
grep -q "^predict    .* over 32 samples" "$T/out" && ok || bad "the sampling predictive"
run "predict von" "$BNN" predict -m "$T/v.st" --data moons -o "$T/v.csv"
[ "$(wc -l <"$T/v.csv")" -eq 501 ] && ok || bad "predict rows"
run "compare" "$BNN" compare "$T/map.st" "$T/v.st"
grep -q "von" "$T/out" && ok || bad "compare names the VON column"
run "von monte carlo" "$BNN" von -m "$T/map.st" --mc-samples 4 --rho 0.3 --steps 15 --seed 3 -o "$T/vmc.st"
grep -q "^von        15 steps, rho 0.3, 4 draws per step (seed 3)" "$T/out" && ok || bad "MC settings"
run "von monte carlo again" "$BNN" von -m "$T/map.st" --mc-samples 4 --rho 0.3 --steps 15 --seed 3 -o "$T/vmc2.st"
cmp -s "$T/vmc.st" "$T/vmc2.st" && ok || bad "the same seed gives the same file"
run "von monte carlo, another seed" "$BNN" von -m "$T/map.st" --mc-samples 4 --rho 0.3 --steps 15 --seed 4 -o "$T/vmc3.st"
cmp -s "$T/vmc.st" "$T/vmc3.st" && bad "another seed gives the same file" || ok
run "eval von monte carlo" "$BNN" eval -m "$T/vmc.st"
gt "$(val accuracy)" 0.95 && ok || bad "MC VON accuracy $(val accuracy)"

# ---------------------------------------------------------------- the other likelihoods
run "train bernoulli" "$BNN" train --data moons --lik bernoulli --epochs 30 -q -o "$T/ber.st"
run "eval bernoulli map" "$BNN" eval -m "$T/ber.st"
nll_ber=$(val nll)
run "von bernoulli" "$BNN" von -m "$T/ber.st" -o "$T/vber.st"
grep -q "^layer      the last Linear layer: 51 parameters" "$T/out" && ok || bad "bernoulli: one output"
run "eval von bernoulli" "$BNN" eval -m "$T/vber.st"
gt "$nll_ber" "$(val nll)" && ok || bad "bernoulli VON's test NLL $(val nll) not below the MAP's $nll_ber"
run "train hetero" "$BNN" train --data sine-hetero --lik hetero-gaussian --epochs 100 -q -o "$T/het.st"
run "eval hetero map" "$BNN" eval -m "$T/het.st"
nll_het=$(val nll)
run "von hetero" "$BNN" von -m "$T/het.st" -o "$T/vhet.st"
grep -q "^layer      the last Linear layer: 102 parameters" "$T/out" && ok || bad "hetero: two outputs"
grep -q "noise sigma" "$T/out" && bad "hetero has no fixed noise to print" || ok
run "eval von hetero" "$BNN" eval -m "$T/vhet.st"
gt "$nll_het" "$(val nll)" && ok || bad "hetero VON's test NLL $(val nll) not below the MAP's $nll_het"
run "calibrate" "$BNN" calibrate -m "$T/map.st" -o "$T/cal.st"
run "von from a calibrated model" "$BNN" von -m "$T/cal.st" -o "$T/vcal.st"
grep -q "^note: .*cal.st was calibrated (temperature" "$T/err" && ok || bad "the dropped temperature is said"

# ---------------------------------------------------------------- bad input
expect_fail "rho 0" "rho must be in (0, 1]" "$BNN" von -m "$T/map.st" --rho 0 -o "$T/x.st"
expect_fail "rho 1.5" "rho must be in (0, 1]" "$BNN" von -m "$T/map.st" --rho 1.5 -o "$T/x.st"
expect_fail "steps 0" "steps must be in" "$BNN" von -m "$T/map.st" --steps 0 -o "$T/x.st"
expect_fail "prior 0" "prior-precision must be" "$BNN" von -m "$T/map.st" --prior-precision 0 -o "$T/x.st"
expect_fail "seed without draws" "seed is for --mc-samples" "$BNN" von -m "$T/map.st" --seed 2 -o "$T/x.st"
expect_fail "mc-samples -1" "mc-samples must be in" "$BNN" von -m "$T/map.st" --mc-samples -1 -o "$T/x.st"
expect_fail "no output" "required" "$BNN" von -m "$T/map.st"
expect_fail "weak prior" "^bnn von: step 1: the new precision is not positive definite" "$BNN" von -m "$T/map.st" --prior-precision 1e-300 -o "$T/x.st"
BNN_MEMORY_LIMIT=64K expect_fail "memory limit" "^bnn von: a full covariance over the last layer's 102 parameters needs 888 KiB, more than BNN_MEMORY_LIMIT's 64 KiB" "$BNN" von -m "$T/map.st" -o "$T/x.st"
# A damaged VON file: the error names the VON posterior (the file uses the Laplace layout).
/usr/bin/python3 "$HERE/st_meta.py" "$T/v.st" "$T/vbad.st" bnn.laplace.prior_prec -3
expect_fail "damaged VON file" "^bnn eval: .*vbad.st: VON posterior: metadata 'bnn.laplace.prior_prec' is -3, not a positive number" "$BNN" eval -m "$T/vbad.st"
expect_usage "from a posterior" "already holds a VON posterior" "$BNN" von -m "$T/v.st" -o "$T/x.st"
expect_usage "laplace from a VON file" "already holds a VON posterior" "$BNN" laplace -m "$T/v.st" -o "$T/x.st"
expect_usage "calibrate a VON file" "holds a posterior (VON)" "$BNN" calibrate -m "$T/v.st" -o "$T/x.st"
expect_fail "over its own model" "map.st" "$BNN" von -m "$T/map.st" -o "$T/map.st"
expect_usage "wrong data" "fmnist has 784 features but model mlp:2-50-50-2:tanh expects 2" "$BNN" von -m "$T/map.st" --data fmnist -o "$T/x.st"
[ -e "$T/x.st" ] && bad "a refused run left an output" || ok
cli_done
