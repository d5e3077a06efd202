#!/usr/bin/env bash
# Builds bnn's libFuzzer harnesses with clang, AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   fuzz/build.sh [OUTDIR]      (default /tmp/fuzz-build)
#
# The library is compiled from src/*/*.c as CMake does (include dirs include/ and src/,
# _POSIX_C_SOURCE=200809L), but without OpenMP and without OpenBLAS: CMake's BNN_OPENMP=OFF and
# BNN_BLAS=OFF fallbacks, i.e. BNN_HAVE_OPENMP and BNN_HAVE_BLAS left undefined. LAPACKE, zlib,
# cJSON and libm are required as in CMakeLists.txt. Set SRC=/path/to/src to fuzz a patched copy.
# Nothing is written inside the repository.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="${1:-/tmp/fuzz-build}"
SRC="${SRC:-$ROOT/src}"
CC="${CC:-clang}"
JOBS="${JOBS:-2}"

SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer $SAN -D_POSIX_C_SOURCE=200809L \
  -I$ROOT/include -I$SRC -I/usr/include/cjson -Wall -Wno-unused-parameter"
LIBS="-llapacke -lz -lcjson -lm -lpthread"

mkdir -p "$OUT/obj"

# Library objects: instrumented for coverage (fuzzer-no-link), linked into every harness.
objs=()
for f in "$SRC"/*/*.c; do
    rel="${f#$SRC/}"
    o="$OUT/obj/${rel//\//_}.o"
    objs+=("$o")
    if [ ! -e "$o" ] || [ "$f" -nt "$o" ]; then
        echo "$CC -c $rel"
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$f" -o "$o" &
        while [ "$(jobs -r | wc -l)" -ge "$JOBS" ]; do wait -n; done
    fi
done
wait

for h in "$HERE"/fuzz_*.c; do
    name="$(basename "$h" .c)"
    echo "$CC $name"
    $CC $CFLAGS -fsanitize=fuzzer "$h" "${objs[@]}" $LIBS -o "$OUT/$name"
done
echo "built into $OUT: $(cd "$OUT" && ls fuzz_* | grep -v '\.log$' | tr '\n' ' ')"
