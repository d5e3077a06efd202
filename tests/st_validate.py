#!/usr/bin/env python3
"""Strict check of a .safetensors file by the rules of the format's reference reader (the
`safetensors` crate's deserialize: huggingface/safetensors README, "Format"), written with the
standard library only because the reference package cannot be installed here.

Rules: 8-byte little-endian header size N (at most 100 MB); N bytes of UTF-8 JSON starting with
'{' (trailing spaces allowed); every entry but __metadata__ has a known dtype, a list of
non-negative integer dims and data_offsets [begin, end] with end - begin = numel * itemsize;
sorted by offset the tensors tile the data area exactly from 0 to its end (no holes, no
overlaps, nothing after); __metadata__ maps strings to strings.

usage: st_validate.py FILE [NAME=DIM,DIM ...]   exits non-zero with a message on the first problem
and checks each NAME has the given shape."""
import json
import struct
import sys

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
         "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def fail(msg):
    print(f"st_validate: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    path = sys.argv[1]
    data = open(path, "rb").read()
    if len(data) < 8:
        fail("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000 or 8 + n > len(data):
        fail(f"header size {n} invalid")
    raw = data[8:8 + n]
    if not raw.startswith(b"{"):
        fail("header does not start with '{'")
    header = json.loads(raw.decode("utf-8").rstrip(" "))
    body = len(data) - 8 - n
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in info.items()):
                fail("__metadata__ is not a map of strings")
            continue
        if set(info) != {"dtype", "shape", "data_offsets"}:
            fail(f"{name}: keys {sorted(info)}")
        if info["dtype"] not in SIZES:
            fail(f"{name}: dtype {info['dtype']}")
        shape = info["shape"]
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            fail(f"{name}: shape {shape}")
        numel = 1
        for d in shape:
            numel *= d
        b, e = info["data_offsets"]
        if e - b != numel * SIZES[info["dtype"]]:
            fail(f"{name}: offsets {b},{e} do not match shape {shape}")
        spans.append((b, e, name))
    pos = 0
    for b, e, name in sorted(spans):
        if b != pos:
            fail(f"{name}: starts at {b}, expected {pos} (hole or overlap)")
        pos = e
    if pos != body:
        fail(f"tensors cover {pos} bytes of a {body}-byte data area")
    for want in sys.argv[2:]:
        name, dims = want.split("=")
        shape = [int(d) for d in dims.split(",")]
        if name not in header or header[name]["shape"] != shape:
            fail(f"{name}: expected shape {shape}")
    print(f"ok: {len(spans)} tensors, {len(header.get('__metadata__', {}))} metadata keys")


main()
