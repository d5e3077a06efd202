#!/usr/bin/env bash
# The hot elementwise loops of training stay vectorised. Each such loop has the comment
# "must stay vectorised (tests/vectorised.sh)" on a line above its `for` (only preprocessor and
# pragma lines between). Each file is compiled again with the build's own command (from
# compile_commands.json, object to /dev/null) plus -fopt-info-vec-optimized, and GCC's report
# must say "loop vectorized" for every marked loop: GCC reports a loop at its `for` line or at
# the first statement of its body, so at one of the two lines after the `for` at most. A
# divergence check with && in IVON's fused update once left that loop scalar (GCC 12: "control
# flow in loop") and IVON's step 1.85x AdamW's instead of 1.14x; no test failed and the table it
# trained was the same to the last digit.
# usage: vectorised.sh SOURCE_DIR compile_commands.json SCRATCH_DIR FILE.c...   (FILE.c relative to SOURCE_DIR)
set -u
src=$1
db=$2
rep=$3
shift 3
mkdir -p "$rep"
fail=0
checked=0
for f in "$@"; do
  name=$(basename "$f" .c)
  report="$rep/$name.txt"
  # The build's command for this file (with a cd to its directory), its object sent to /dev/null.
  if ! cmd=$(python3 - "$db" "$src/$f" <<'PY'
import json, os, shlex, sys
db, path = sys.argv[1], os.path.realpath(sys.argv[2])
for e in json.load(open(db)):
    if os.path.realpath(os.path.join(e["directory"], e["file"])) == path:
        args = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        i = args.index("-o")
        args[i + 1] = "/dev/null"
        print("cd", shlex.quote(e["directory"]), "&&", " ".join(shlex.quote(a) for a in args))
        break
else:
    sys.exit("no compile command for " + path + " in " + db)
PY
  ); then
    echo "FAIL: $f: no compile command in $db"
    fail=1
    continue
  fi
  (eval "$cmd -fopt-info-vec-optimized") >/dev/null 2>"$report" || {
    echo "FAIL: $f does not compile: $(head -c 300 "$report")"
    fail=1
    continue
  }
  # The `for` lines of the marked loops.
  lines=$(awk '/must stay vectorised \(tests\/vectorised\.sh\)/ { want = 1; next }
               want && /^[ \t]*(#|_Pragma|BNN_OMP)/ { next }
               want && /^[ \t]*for[ \t]*\(/ { print NR; want = 0; next }
               want { print "bad:" NR; want = 0 }' "$src/$f")
  if [ -z "$lines" ]; then
    echo "FAIL: $f has no loop marked \"must stay vectorised (tests/vectorised.sh)\""
    fail=1
    continue
  fi
  for l in $lines; do
    case $l in
    bad:*)
      echo "FAIL: $f:${l#bad:}: the marker is not followed by a for loop"
      fail=1
      continue
      ;;
    esac
    checked=$((checked + 1))
    if grep -Eq "(^|/)$f:($l|$((l + 1))|$((l + 2))):[0-9]+: optimized: loop vectorized" "$report"; then
      echo "ok: $f:$l vectorised ($(grep -E "(^|/)$f:($l|$((l + 1))|$((l + 2))):" "$report" | sed -n 's/.*loop vectorized using \([0-9]* byte vectors\).*/\1/p' | sort -u | tr '\n' ' '))"
    else
      echo "FAIL: $f:$l: GCC did not vectorise this loop; build with -fopt-info-vec-missed to see why: $(sed -n "${l}p" "$src/$f" | sed 's/^ *//')"
      fail=1
    fi
  done
done
echo "$checked loops checked"
[ $fail -eq 0 ] && [ $checked -gt 0 ]
