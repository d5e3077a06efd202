#!/usr/bin/env python3
"""Copies a safetensors file with DELTA added to one element of a tensor (F32 or F64), for tests
that need a file damaged by a given amount: st_poke.py IN OUT NAME INDEX DELTA (INDEX into the
flattened tensor). Standard library only."""
import struct
import sys

from st_meta import read_st, write_st


def main():
    src, dst, name = sys.argv[1], sys.argv[2], sys.argv[3]
    index, delta = int(sys.argv[4]), float(sys.argv[5])
    header, data = read_st(src)
    if name not in header:
        sys.exit("st_poke.py: %s has no tensor %s" % (src, name))
    info = header[name]
    fmt = {"F32": "<f", "F64": "<d"}.get(info["dtype"])
    if fmt is None:
        sys.exit("st_poke.py: %s is %s, not F32 or F64" % (name, info["dtype"]))
    size = struct.calcsize(fmt)
    lo, hi = info["data_offsets"]
    if not 0 <= index < (hi - lo) // size:
        sys.exit("st_poke.py: %s has no element %d" % (name, index))
    data = bytearray(data)
    at = lo + size * index
    (v,) = struct.unpack(fmt, data[at:at + size])
    data[at:at + size] = struct.pack(fmt, v + delta)
    write_st(dst, header, bytes(data))


if __name__ == "__main__":
    main()
