#!/usr/bin/env python3
"""Copies a safetensors file with one __metadata__ value replaced (or added), for tests that
need a damaged or edited file: st_meta.py IN OUT KEY VALUE. read_st and write_st are shared with
st_drop.py. Standard library only."""
import json
import struct
import sys


def read_st(path):
    """The file's JSON header (a dict) and its data bytes."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + hlen]), blob[8 + hlen:]


def write_st(path, header, data):
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # keep the data 8-byte aligned, as writers do
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def main():
    src, dst, key, value = sys.argv[1:5]
    header, data = read_st(src)
    header.setdefault("__metadata__", {})[key] = value
    write_st(dst, header, data)


if __name__ == "__main__":
    main()
