#!/usr/bin/env bash
# Bayesian linear regression, where every method's answer is known in closed form: Laplace
# (full, diag, kron, GGN and empirical Fisher, marglik), the GLM predictive and eval's NLL, VON,
# mean-field VI and IVON, each through the command line against NumPy (tests/conjugate.py).
# usage: cli_conjugate.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
if ! /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  echo "FAIL: python3-numpy is missing (make deps installs it)" >&2
  exit 1
fi
rm -rf "$T" && mkdir -p "$T"
/usr/bin/python3 "$(dirname "$0")/conjugate.py" "$BNN" "$T"
