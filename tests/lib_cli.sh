# Shared helpers of the CLI test scripts (sourced, not run). The caller sets T (a scratch
# directory). Each check adds to pass or fail; cli_done prints the tally and sets the status.
HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
rm -rf "$T" && mkdir -p "$T"
pass=0 fail=0

ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# run DESC CMD...: exit 0 (stdout in $T/out, stderr in $T/err). A JSON report the command wrote
# to a file (--json FILE or --json=FILE) is then checked against docs/eval.schema.json, so every
# report the tests make is validated, not a chosen few.
run() {
  local desc=$1; shift
  if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "$desc (exit $?)"; cat "$T/err" >&2; return; fi
  local a prev="" report
  for a in "$@"; do
    report=""
    [ "$prev" = "--json" ] && report=$a
    case $a in --json=*) report=${a#--json=} ;; esac
    case $report in -* | /dev/*) report="" ;; esac # stdout or a device: nothing to read back
    if [ -n "$report" ] && [ -f "$report" ]; then
      cp "$T/out" "$T/out.run" && cp "$T/err" "$T/err.run"
      validate "$report"
      mv "$T/out.run" "$T/out" && mv "$T/err.run" "$T/err"
    fi
    prev=$a
  done
}

# expect_fail DESC PATTERN CMD...: a non-zero exit below 128 (no crash), and exactly one stderr
# line matching PATTERN.
expect_fail() {
  local desc=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"
  local rc=$? lines
  last_rc=$rc
  lines=$(wc -l <"$T/err")
  if [ $rc -eq 0 ]; then bad "$desc: exit 0"; return; fi
  if [ $rc -ge 128 ]; then bad "$desc: crashed (exit $rc)"; cat "$T/err" >&2; return; fi
  if ! grep -q -- "$pat" "$T/err"; then bad "$desc: stderr lacks '$pat'"; cat "$T/err" >&2; return; fi
  if [ "$lines" -ne 1 ]; then
    bad "$desc: $lines stderr lines, expected 1"; cat "$T/err" >&2; return; fi
  ok
}

# expect_usage DESC PATTERN CMD...: expect_fail, and the exit status is 2 (a usage error).
expect_usage() {
  expect_fail "$@"
  [ "$last_rc" -eq 2 ] && ok || bad "$1: exit $last_rc, expected 2 (a usage error)"
}

# val KEY: the second field of the table line of $T/out that starts with KEY.
val() { awk -v k="$1" '$1 == k {print $2}' "$T/out"; }

# num_holds COND NAME=VALUE...: the awk condition COND over the named values holds, and each value
# looks like a number. (Debian's awk, mawk, compares a value 'nan' as a string, and its NaN compares
# equal to every number: either would let a check pass on a NaN.)
num_holds() {
  local cond=$1 kv prog="" args=()
  shift
  for kv in "$@"; do
    args+=(-v "$kv")
    prog+="if (${kv%%=*} !~ /^[-+]?[0-9.]/) exit 1; ${kv%%=*} += 0; "
  done
  awk "${args[@]}" "BEGIN { ${prog}exit !($cond) }"
}

# gt A B: A > B as numbers.
gt() { num_holds 'a > b' a="$1" b="$2"; }

# validate FILE: a JSON report against docs/eval.schema.json (Debian's python3-jsonschema); run
# calls it for every report a command writes.
validate() {
  if /usr/bin/python3 -c "import jsonschema" 2>/dev/null; then
    if /usr/bin/python3 "$HERE/json_validate.py" "$HERE/../docs/eval.schema.json" "$1" \
        >"$T/out" 2>"$T/err"; then ok; else bad "schema $1"; cat "$T/err" >&2; fi
  else echo "note: python3-jsonschema missing; schema check of $1 skipped" >&2; fi
}

cli_done() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
