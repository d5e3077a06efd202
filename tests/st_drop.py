#!/usr/bin/env python3
"""Copies a safetensors file without the named tensors, for tests that need a file as an older
bnn wrote it: st_drop.py IN OUT NAME... Standard library only."""
import sys

from st_meta import read_st, write_st


def main():
    src, dst, drop = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    header, data = read_st(src)
    missing = drop - set(header)
    if missing:
        sys.exit("st_drop.py: %s has no tensor %s" % (src, ", ".join(sorted(missing))))
    out, parts, at = {}, [], 0
    for name, info in header.items():
        if name == "__metadata__":
            out[name] = info
        elif name not in drop:
            lo, hi = info["data_offsets"]
            parts.append(data[lo:hi])
            out[name] = dict(info, data_offsets=[at, at + hi - lo])
            at += hi - lo
    write_st(dst, out, b"".join(parts))


if __name__ == "__main__":
    main()
