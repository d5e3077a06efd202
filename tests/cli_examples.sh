#!/usr/bin/env bash
# The library examples (examples/*.c, built beside bnn) run, report sensible numbers, and save
# files the command line reads.
# usage: cli_examples.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"
EX=$(dirname "$BNN")

# train_moons: a MAP network through the public API.
run "train_moons" "$EX/train_moons" "$T/moons.safetensors"
acc=$(awk '$1 == "test" && $2 == "accuracy" { print $3 }' "$T/out")
num_holds 'a > 0.95' a="$acc" && ok || bad "train_moons: test accuracy '$acc'"
run "eval train_moons's file" "$BNN" eval -m "$T/moons.safetensors" --data moons
num_holds 'a > 0.95' a="$(val accuracy)" && ok || bad "eval of train_moons's file: accuracy $(val accuracy)"

# bayes_moons: AdamW, last-layer Laplace and IVON side by side.
run "bayes_moons" "$EX/bayes_moons" "$T/laplace.safetensors"
cp "$T/out" "$T/bayes.txt"
row() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$T/bayes.txt"; }
for m in adamw laplace ivon; do
  num_holds 'a > 0.95 && nll > 0 && nll < 0.3 && ece >= 0 && ece < 0.1' a="$(row $m 2)" \
    nll="$(row $m 3)" ece="$(row $m 4)" && ok || bad "bayes_moons: $m's row: $(grep "^$m " "$T/bayes.txt")"
done
# Far from the data the point estimate stays sure of itself; each posterior is less so.
for m in laplace ivon; do
  num_holds 'p > 2 * a' p="$(row $m 6)" a="$(row adamw 6)" && ok ||
    bad "bayes_moons: $m's entropy far from the data $(row $m 6) is not above twice adamw's $(row adamw 6)"
done
# The Laplace posterior it saved is the one it reports, and the command line predicts with it.
prior=$(awk '$1 == "laplace:" { print $7 }' "$T/bayes.txt")
run "info of bayes_moons's file" "$BNN" info "$T/laplace.safetensors"
grep -q "^posterior Laplace over 102 parameters" "$T/out" && ok || bad "bayes_moons's file: $(grep ^posterior "$T/out")"
saved=$(awk '$1 == "bnn.laplace.prior_prec" { print $2 }' "$T/out")
num_holds 's / p > 1 - 1e-3 && s / p < 1 + 1e-3' s="$saved" p="$prior" && ok || bad "bayes_moons reports prior precision '$prior', its file holds '$saved'"
run "eval bayes_moons's file" "$BNN" eval -m "$T/laplace.safetensors" --data moons
grep -q "linearised (GLM), probit" "$T/out" && ok || bad "eval of bayes_moons's file does not use the GLM predictive"
num_holds 'a > 0.95' a="$(val accuracy)" && ok || bad "eval of bayes_moons's file: accuracy $(val accuracy)"

cli_done
