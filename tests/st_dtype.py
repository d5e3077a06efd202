#!/usr/bin/env python3
"""Copies a safetensors file with every F32 tensor stored as another float dtype, as a PyTorch
user's checkpoint may hold it (`net.double()`, `net.half()`, `net.bfloat16()`):
st_dtype.py IN OUT F64|F16|BF16 [--as-f32]. F16 and BF16 round to nearest even (as PyTorch's
conversions do). With --as-f32 the tensors stay F32 but hold those rounded values: a network
read from either file must give the same bits. Standard library only."""
import struct
import sys

from st_meta import read_st, write_st


def bf16_bits(u):
    """A float's bits rounded to its top 16 (nearest, ties to even); NaN stays NaN."""
    if (u & 0x7F800000) == 0x7F800000 and (u & 0x7FFFFF):
        return (u >> 16) | 0x40
    return (u + 0x7FFF + ((u >> 16) & 1)) >> 16


def main():
    src, dst, dtype = sys.argv[1], sys.argv[2], sys.argv[3]
    as_f32 = "--as-f32" in sys.argv[4:]
    header, data = read_st(src)
    out, parts, at = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            out[name] = info
            continue
        lo, hi = info["data_offsets"]
        blob = data[lo:hi]
        if info["dtype"] == "F32":
            n = (hi - lo) // 4
            vals = struct.unpack("<%df" % n, blob)
            if dtype == "F64":  # exact: as F32 the values are the original ones
                blob = blob if as_f32 else struct.pack("<%dd" % n, *vals)
            elif dtype == "F16":
                blob = struct.pack("<%de" % n, *vals)
                if as_f32:
                    blob = struct.pack("<%df" % n, *struct.unpack("<%de" % n, blob))
            elif dtype == "BF16":
                bits = [bf16_bits(u) for u in struct.unpack("<%dI" % n, struct.pack("<%df" % n, *vals))]
                blob = (struct.pack("<%dI" % n, *(b << 16 for b in bits)) if as_f32
                        else struct.pack("<%dH" % n, *bits))
            else:
                sys.exit("st_dtype.py: unknown dtype %s" % dtype)
            info = dict(info, dtype="F32" if as_f32 or dtype == "F32" else dtype)
        out[name] = dict(info, data_offsets=[at, at + len(blob)])
        parts.append(blob)
        at += len(blob)
    write_st(dst, out, b"".join(parts))


if __name__ == "__main__":
    main()
