#!/usr/bin/env bash
# Runs every harness in turn, one process at a time, for SECONDS each (default 60), on the corpus
# under CORPUS (made by fuzz/seeds.sh; new inputs are added there). Findings are written to
# ARTIFACTS (default /tmp/fuzz-crashes) and make the script exit non-zero.
#
#   fuzz/run.sh BUILD_DIR CORPUS_DIR [SECONDS] [ARTIFACTS]
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
B=${1:?usage: fuzz/run.sh BUILD_DIR CORPUS_DIR [SECONDS] [ARTIFACTS]}
C=${2:?usage: fuzz/run.sh BUILD_DIR CORPUS_DIR [SECONDS] [ARTIFACTS]}
S=${3:-60}
A=${4:-/tmp/fuzz-crashes}
mkdir -p "$A" "$C"
# Absolute paths: fuzz_spec works in a temporary directory of its own.
A=$(cd "$A" && pwd) B=$(cd "$B" && pwd) C=$(cd "$C" && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
status=0
for h in safetensors spec csv idx npy; do
    case $h in spec | csv) len=4096 ;; *) len=65536 ;; esac
    dict=()
    [ -e "$HERE/$h.dict" ] && dict=(-dict="$HERE/$h.dict")
    mkdir -p "$C/fuzz_$h"
    echo "fuzz_$h: $S s"
    if ! "$B/fuzz_$h" -max_len=$len -timeout=10 -rss_limit_mb=4096 -max_total_time="$S" \
        "${dict[@]}" -artifact_prefix="$A/$h-" "$C/fuzz_$h" 2>"$B/fuzz_$h.log"; then
        echo "fuzz_$h: a finding, see $B/fuzz_$h.log and $A/" >&2
        status=1
    fi
    grep -E '^#[0-9]+.*DONE' "$B/fuzz_$h.log" | tail -1
done
exit $status
