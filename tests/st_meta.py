#!/usr/bin/env python3
"""Copies a safetensors file with one __metadata__ value replaced (or added), for tests that
need a damaged or edited file: st_meta.py IN OUT KEY VALUE. Standard library only."""
import json
import struct
import sys


def main():
    src, dst, key, value = sys.argv[1:5]
    with open(src, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    header.setdefault("__metadata__", {})[key] = value
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned, as writers do
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob[8 + hlen:])


if __name__ == "__main__":
    main()
