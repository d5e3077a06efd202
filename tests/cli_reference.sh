#!/usr/bin/env bash
# Every Bayesian method end to end through the command line against answers computed here with
# NumPy: closed forms of Bayesian linear regression (tests/conjugate.py) and, for the Bernoulli,
# softmax and heteroscedastic likelihoods, quadrature and grid integrals on models small enough
# for them (tests/nonconjugate.py). Both run; the test fails if either fails.
# usage: cli_reference.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
if ! /usr/bin/python3 -c "import numpy" 2>/dev/null; then
  echo "FAIL: python3-numpy is missing (make deps installs it)" >&2
  exit 1
fi
rm -rf "$T" && mkdir -p "$T"
rc=0
for t in conjugate nonconjugate; do
  echo "== $t.py"
  /usr/bin/python3 "$(dirname "$0")/$t.py" "$BNN" "$T/$t" || rc=1
done
exit $rc
