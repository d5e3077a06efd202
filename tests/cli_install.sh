#!/usr/bin/env bash
# Installation: `cmake --install` puts the command, the static library, bnn.h and a pkg-config
# file under a prefix; a program built with nothing but `pkg-config --cflags --libs bnn` links and
# runs; the pkg-config file stays right when the installed tree is moved.
# usage: cli_install.sh PATH/TO/bnn SCRATCH_DIR
set -u
BNN=$1
T=$2
. "$(dirname "$0")/lib_cli.sh"
BUILD=$(dirname "$BNN")
SRC=$(cd "$(dirname "$0")/.." && pwd)

rm -rf "$T/prefix" "$T/moved"
run "cmake --install" cmake --install "$BUILD" --prefix "$T/prefix"
pc=$(find "$T/prefix" -name bnn.pc)
for f in "$T/prefix/bin/bnn" "$T/prefix/include/bnn.h" "$pc"; do
  [ -n "$f" ] && [ -f "$f" ] && ok || bad "installed file missing: ${f:-bnn.pc}"
done
[ -n "$(find "$T/prefix" -name libbnn.a)" ] && ok || bad "libbnn.a was not installed"
run "installed bnn version" "$T/prefix/bin/bnn" version
grep -q "^bnn $(awk -F'"' '/#define BNN_VERSION / {print $2}' "$SRC/include/bnn.h")" "$T/out" && ok ||
  bad "installed bnn version: $(cat "$T/out")"

# A program outside the tree, built from the installed files only.
build_example() { # PCDIR OUTPUT
  local flags
  flags=$(PKG_CONFIG_PATH="$1" pkg-config --cflags --libs bnn) || { bad "pkg-config bnn failed"; return 1; }
  # The build's compiler (BNN_CC, from CMake): the flags are that compiler's (clang's OpenMP
  # flag is not gcc's).
  "${BNN_CC:-cc}" -std=c11 -o "$2" "$SRC/examples/train_moons.c" $flags 2>"$T/err" ||
    { bad "build against the installed bnn: $(head -c 300 "$T/err")"; return 1; }
  ok
}
if ! command -v pkg-config >/dev/null; then
  bad "pkg-config is not installed (make deps installs it)"
elif build_example "$(dirname "$pc")" "$T/train_moons"; then
  ( cd "$T" && ./train_moons "$T/m.safetensors" ) >"$T/out" 2>"$T/err"
  acc=$(awk '$1 == "test" && $2 == "accuracy" { print $3 }' "$T/out")
  num_holds 'a > 0.95' a="$acc" && ok || bad "the installed library's program: $(cat "$T/out" "$T/err")"
  # Moved elsewhere (the old place gone), the tree still builds: the .pc finds its prefix from
  # its own place.
  mv "$T/prefix" "$T/moved"
  build_example "$T/moved/$(dirname "${pc#"$T/prefix/"}")" "$T/train_moons2"
fi
cli_done
