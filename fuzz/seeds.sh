#!/usr/bin/env bash
# Writes small valid seed inputs for the harnesses into CORPUS/<harness>/ (default
# /tmp/fuzz-corpus), using a built bnn command (default build/bnn) for the model files. Nothing
# is written inside the repository.
#
#   fuzz/seeds.sh [CORPUS] [BNN]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CORPUS="${1:-/tmp/fuzz-corpus}"
BNN="${2:-$HERE/../build/bnn}"
T="$(mktemp -d /tmp/fuzz-seeds-XXXXXX)"
trap 'rm -rf "$T"' EXIT
mkdir -p "$CORPUS"/{fuzz_safetensors,fuzz_csv,fuzz_idx,fuzz_spec,fuzz_npy}

# ---- safetensors: model files, posteriors and checkpoints of tiny networks (a few KiB each).
st="$CORPUS/fuzz_safetensors"
q="-q -t 1"
"$BNN" train $q -d moons --model mlp:2-8-2 -e 1 -o "$T/map.st" --checkpoint "$T/adamw-ck.st"
"$BNN" train $q -d moons --model mlp:2-8-2 -e 1 --holdout 100 -o "$T/map-ho.st"
"$BNN" train $q -d moons --model mlp:2-4-4-2:tanh:dropout=0.1 --method sgd -e 1 -o "$T/sgd.st" --checkpoint "$T/sgd-ck.st"
"$BNN" train $q -d moons --model mlp:2-8-2 --method ivon -e 1 -o "$T/ivon.st" --checkpoint "$T/ivon-ck.st"
"$BNN" train $q -d moons --model mlp:2-8-2 --method mfvi -e 1 -o "$T/mfvi.st" --checkpoint "$T/mfvi-ck.st"
"$BNN" train $q -d moons --model mlp:2-8-1 --lik bernoulli -e 1 -o "$T/bern.st"
"$BNN" train $q -d sine-gap --model mlp:1-8-1 -e 1 -o "$T/reg.st"
"$BNN" train $q -d sine-hetero --model mlp:1-8-2 --lik hetero-gaussian -e 1 -o "$T/het.st"
"$BNN" train $q -d sine-gap --model mlp:1-8-1 --lr-schedule cosine -e 2 -o "$T/cos.st" --checkpoint "$T/cos-ck.st"
for h in diag kron full lowrank; do
    "$BNN" laplace -t 1 -m "$T/map.st" --hessian "$h" --prior 1 -o "$T/la-$h.st" >/dev/null 2>&1
    "$BNN" laplace -t 1 -m "$T/map.st" --hessian "$h" --subset all --prior 1 -o "$T/la-all-$h.st" >/dev/null 2>&1
done
"$BNN" laplace -t 1 -m "$T/map.st" --hessian kron --prior marglik-layers --steps 5 -o "$T/la-layers.st" >/dev/null 2>&1
"$BNN" laplace -t 1 -m "$T/sgd.st" --hessian diag --subset layers:0,2 --prior 1 -o "$T/la-seg.st" >/dev/null 2>&1
"$BNN" laplace -t 1 -m "$T/reg.st" --hessian full --prior 1 -o "$T/la-reg.st" >/dev/null 2>&1
"$BNN" von -t 1 -m "$T/map.st" -o "$T/von.st" >/dev/null 2>&1 || true
"$BNN" calibrate -t 1 -m "$T/map-ho.st" -o "$T/cal.st" >/dev/null 2>&1 || true
for f in "$T"/*.st; do
    [ "$(stat -c %s "$f")" -le 65536 ] && cp "$f" "$st/$(basename "$f" .st).safetensors"
done
# A minimal file with every dtype and an empty tensor (hand-written header).
python3 - "$st/dtypes.safetensors" <<'PY'
import json, struct, sys
hdr = {"__metadata__": {"k": "v"},
       "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
       "b": {"dtype": "F64", "shape": [1, 1], "data_offsets": [8, 16]},
       "c": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]},
       "d": {"dtype": "I32", "shape": [], "data_offsets": [24, 28]},
       "e": {"dtype": "U8", "shape": [4], "data_offsets": [28, 32]},
       "z": {"dtype": "F32", "shape": [0, 3], "data_offsets": [32, 32]}}
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(range(32)))
PY

# ---- CSV: byte 0 = options, byte 1 = delimiter byte (see fuzz_csv.c).
c="$CORPUS/fuzz_csv"
printf '\x00,x1,x2,label\n0.5,1e-3,0\n-2,3,1\n' > "$c/header-auto"
printf '\x01,a,b,y\n1,2,3\n' > "$c/header-yes"
printf '\x12,1.5,2,0.25\n3,4,-1\n\n5,6,7\r\n' > "$c/regression"
printf '\x28,1;2;3\n4;5;6\n' > "$c/no-target-semicolon"
printf '\x40\t1\t2\t0\n3\t4\t1\n' > "$c/tab"
printf '\x04,\xef\xbb\xbf1,2,3\n4,5,6\n' > "$c/bom-target0"
printf '\x6c|1|2|0\n3|4|1\n' > "$c/byte-delim"
printf '1,2,0\n3,4,1\n' | gzip -c | { printf '\x80,'; cat; } > "$c/gzip"

# ---- IDX: byte 0 = flags, bytes 1-2 = split point (see fuzz_idx.c).
i="$CORPUS/fuzz_idx"
img() { printf '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x02'; printf '\x00\x10\x20\x30\x40\x50\x60\xff'; }
lbl() { printf '\x00\x00\x08\x01\x00\x00\x00\x02\x01\x09'; }
{ printf '\x00\x00\x18'; img; lbl; } > "$i/plain"           # 24-byte images, then labels
{ printf '\x03\x00\x18'; img; lbl; } > "$i/gzip-both"
{ printf '\x05\x03\x18'; img; lbl; } > "$i/gzip-cut"
{ printf '\x18\x00\x0e'; printf '\x00\x00\x08\x02\x00\x00\x00\x01\x00\x00\x00\x02\x07\x08'; printf '\x00\x00\x08\x01\x00\x00\x00\x01\xff'; } > "$i/rank2-label255"

# ---- NPY: byte 0 = flags, bytes 1-2 = split point (see fuzz_npy.c); written without numpy.
python3 - "$CORPUS/fuzz_npy" <<'PY'
import struct, sys, os
def npy(descr, shape, payload, fortran=False, major=1):
    sh = "(" + "".join("%d, " % d for d in shape)[:-2] + ("," if len(shape) == 1 else "") + ")"
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, sh)
    lenb = 2 if major == 1 else 4
    pad = -(10 + (lenb - 2) + len(h) + 1) % 64
    h = (h + " " * pad + "\n").encode()
    return b"\x93NUMPY" + bytes([major, 0]) + (struct.pack("<H", len(h)) if lenb == 2 else struct.pack("<I", len(h))) + h + payload
def seed(name, flags, x, y):
    open(os.path.join(sys.argv[1], name), "wb").write(bytes([flags]) + struct.pack(">H", len(x)) + x + y)
x = npy("<f4", (3, 2), struct.pack("<6f", 0, 1, 2, 3, 4, 5))
seed("f4-i8", 0, x, npy("<i8", (3,), struct.pack("<3q", 0, 1, 1)))
seed("f8-reg", 4, npy("<f8", (2, 2), struct.pack("<4d", 1, 2, 3, 4)), npy("<f4", (2, 3), struct.pack("<6f", *range(6))))
seed("fortran-be", 0, npy(">i2", (2, 3), struct.pack(">6h", 1, -2, 3, 4, 5, 6), fortran=True), npy("|u1", (2, 1), b"\x00\x02"))
seed("img-f2-v2", 0, npy("<f2", (2, 2, 2), struct.pack("<8H", *([0x3c00] * 8)), major=2), npy("|b1", (2,), b"\x01\x00"))
seed("v3-gz", 3, npy("<u4", (1, 4), struct.pack("<4I", 1, 2, 3, 4), major=3), npy("<f8", (1,), struct.pack("<d", 0)))
PY

# ---- specs: byte 0 = options, then the string (see fuzz_spec.c).
s="$CORPUS/fuzz_spec"
n=0
for x in mlp:784-512-256-10 mlp:2-50-50-1:tanh mlp:784-512-10:relu:dropout=0.2 mlp:2-3:gelu \
         moons sine-gap sine-hetero noise:16:4 noise:784:2:rot=30 noise:9:3:flip:rot=-15 \
         fmnist:rot=30 fmnist:flip csv:a,b csv:x idx:img,lbl idx:img npy:x npy:x,y categorical gaussian \
         bernoulli hetero-gaussian sgd adamw ivon mfvi -12345 0 9223372036854775807; do
    printf '\x01%s' "$x" > "$s/seed-$n"; n=$((n + 1))
done
echo "seeds in $CORPUS: $(for d in "$CORPUS"/*/; do printf '%s=%s ' "$(basename "$d")" "$(ls "$d" | wc -l)"; done)"
