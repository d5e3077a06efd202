#!/usr/bin/env python3
"""Copies a safetensors file with the named F32 tensors multiplied by a factor, for tests that
need a network with other weights (e.g. a last layer scaled so that its logits saturate):
st_scale.py IN OUT FACTOR NAME... Standard library only."""
import struct
import sys

from st_meta import read_st, write_st


def main():
    src, dst, factor, names = sys.argv[1], sys.argv[2], float(sys.argv[3]), set(sys.argv[4:])
    header, data = read_st(src)
    data = bytearray(data)
    missing = names - set(header)
    if missing:
        sys.exit("st_scale.py: %s has no tensor %s" % (src, ", ".join(sorted(missing))))
    for name in names:
        info = header[name]
        if info["dtype"] != "F32":
            sys.exit("st_scale.py: %s is %s, not F32" % (name, info["dtype"]))
        lo, hi = info["data_offsets"]
        n = (hi - lo) // 4
        vals = struct.unpack("<%df" % n, data[lo:hi])
        data[lo:hi] = struct.pack("<%df" % n, *(v * factor for v in vals))
    write_st(dst, header, bytes(data))


if __name__ == "__main__":
    main()
