#!/usr/bin/env bash
# bnn calls LAPACK through LAPACKE's *_work entry points only (src/core/lapack.c says why): the
# plain ones scan the matrix for NaN with a 32-bit index that overflows, and reads outside the
# matrix, from order 46,341 on. This fails when a plain entry point comes back into src/.
# usage: lapack_calls.sh SOURCE_DIR
set -u
src=$1/src
[ -d "$src" ] || { echo "FAIL: no $src"; exit 1; }
calls=$(grep -rnoE 'LAPACKE_[a-z0-9_]+[[:space:]]*\(' "$src" --include='*.c' --include='*.h' |
  grep -vE 'LAPACKE_[a-z0-9]+_work[[:space:]]*\(|LAPACKE_[sd]lamch[[:space:]]*\(')
work=$(grep -rhoE 'LAPACKE_[a-z0-9]+_work[[:space:]]*\(' "$src" --include='*.c' | wc -l)
if [ -n "$calls" ]; then
  echo "FAIL: LAPACKE entry points with the 32-bit NaN scan (use the *_work ones):"
  echo "$calls"
  exit 1
fi
# the pattern sees the calls at all (a renamed header or macro would leave nothing to match)
[ "$work" -ge 10 ] || { echo "FAIL: only $work LAPACKE *_work calls found in $src"; exit 1; }
echo "LAPACKE: $work *_work calls, no plain entry point"
