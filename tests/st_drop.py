#!/usr/bin/env python3
"""Copies a safetensors file without the named tensors, for tests that need a file as an older
bnn wrote it: st_drop.py IN OUT NAME... Standard library only."""
import json
import struct
import sys


def main():
    src, dst, drop = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    with open(src, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    data = blob[8 + hlen:]
    missing = drop - set(header)
    if missing:
        sys.exit("st_drop.py: %s has no tensor %s" % (src, ", ".join(sorted(missing))))
    out, parts, at = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            out[name] = info
            continue
        if name in drop:
            continue
        lo, hi = info["data_offsets"]
        parts.append(data[lo:hi])
        out[name] = dict(info, data_offsets=[at, at + hi - lo])
        at += hi - lo
    text = json.dumps(out).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned, as writers do
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(parts))


if __name__ == "__main__":
    main()
