#!/usr/bin/env bash
# Renders an SVG figure to PNG with headless Chromium, to look at what bnn_svg_* drew (a tool,
# not a ctest: the test suite must not need a browser).
#   usage: tests/render_svg.sh IN.svg OUT.png [WIDTHxHEIGHT]   (default 800x600)
# On Debian: apt-get install chromium. The flags keep Chromium off the network and away from the
# user's profile, so the render is the same on any machine.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 IN.svg OUT.png [WIDTHxHEIGHT]" >&2
  exit 2
fi
in=$1
out=$2
size=${3:-800x600}
if ! [[ $size =~ ^([0-9]+)x([0-9]+)$ ]]; then
  echo "error: size '$size' is not WIDTHxHEIGHT (e.g. 800x600)" >&2
  exit 2
fi
if [ ! -r "$in" ]; then
  echo "error: cannot read $in" >&2
  exit 1
fi
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "error: no chromium found (on Debian: apt-get install chromium)" >&2
  exit 1
fi

# Chromium wants absolute file URLs and writes the screenshot relative to its own cwd.
abs_in=$(cd "$(dirname "$in")" && pwd)/$(basename "$in")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$abs_out"
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --screenshot="$abs_out" --window-size="${BASH_REMATCH[1]},${BASH_REMATCH[2]}" \
  "file://$abs_in" >/dev/null 2>&1 || true
# Chromium's exit status is not reliable in headless mode; the file is.
if [ ! -s "$abs_out" ]; then
  echo "error: chromium did not write $out" >&2
  exit 1
fi
echo "$out"
