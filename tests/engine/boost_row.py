#!/usr/bin/python3
"""Scales one row of lm_head.weight, in place, in a single-file f32 model made
by tools/gen_model.py (untied): the row's logit grows by the factor, so a
random model emits that token often. For tests that need the model to end its
thinking by itself.

    boost_row.py MODEL.safetensors TOKEN_ID FACTOR"""
import json
import struct
import sys

import numpy as np


def main(path, row, factor):
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        t = header.get("lm_head.weight")
        if t is None or t["dtype"] != "F32":
            sys.exit(f"boost_row: {path}: no f32 lm_head.weight (generate with --no-tie --dtype f32)")
        cols = t["shape"][1]
        start = 8 + n + t["data_offsets"][0] + row * cols * 4
        f.seek(start)
        v = np.frombuffer(f.read(cols * 4), "<f4") * np.float32(factor)
        f.seek(start)
        f.write(v.astype("<f4").tobytes())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
