#!/usr/bin/env python3
"""Copies a safetensors file with one __metadata__ value replaced (or added), for tests that
need a damaged or edited file: st_meta.py IN OUT KEY VALUE; without VALUE the key is removed.
read_st and write_st are shared with st_drop.py. Standard library only."""
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
    src, dst, key = sys.argv[1:4]
    header, data = read_st(src)
    meta = header.setdefault("__metadata__", {})
    if len(sys.argv) > 4:
        meta[key] = sys.argv[4]
    elif meta.pop(key, None) is None:
        sys.exit("st_meta.py: %s has no metadata key %s" % (src, key))
    write_st(dst, header, data)


if __name__ == "__main__":
    main()
