#!/usr/bin/env python3
"""Compares the layout of two checkpoints in the release format: config.json (without the
"generator" entry, whose seed and name must still agree), model.safetensors.index.json (which
shard holds each tensor, total_size) and every shard's safetensors header (tensor names, dtypes,
shapes, byte ranges). Tensor values are not compared: the two generators draw from different
random number generators.

usage: compare_release_layout.py OURS REFERENCE      exit 0 when equal, 1 with every difference
"""
import json
import os
import struct
import sys


def header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        size = os.fstat(f.fileno()).st_size
    h.pop("__metadata__", None)
    return h, size - 8 - n


def main(ours, ref):
    problems = []

    def differ(what, a, b):
        if a != b:
            problems.append(f"{what}: ours {a!r}, reference {b!r}")

    ca = json.load(open(os.path.join(ours, "config.json")))
    cb = json.load(open(os.path.join(ref, "config.json")))
    ga, gb = ca.pop("generator", {}), cb.pop("generator", {})
    for k in ("name", "seed", "init_gains"):
        differ(f"config.json generator.{k}", ga.get(k), gb.get(k))
    for k in sorted(set(ca) | set(cb)):
        differ(f"config.json {k}", ca.get(k), cb.get(k))

    ia = json.load(open(os.path.join(ours, "model.safetensors.index.json")))
    ib = json.load(open(os.path.join(ref, "model.safetensors.index.json")))
    differ("index total_size", ia["metadata"]["total_size"], ib["metadata"]["total_size"])
    wa, wb = ia["weight_map"], ib["weight_map"]
    for name in sorted(set(wa) - set(wb)):
        problems.append(f"index: {name} only in ours")
    for name in sorted(set(wb) - set(wa)):
        problems.append(f"index: {name} only in the reference")
    for name in sorted(set(wa) & set(wb)):
        differ(f"index: shard of {name}", wa[name], wb[name])

    tensors = 0
    for shard in sorted(set(wb.values())):
        ha, da = header(os.path.join(ours, shard))
        hb, db = header(os.path.join(ref, shard))
        differ(f"{shard}: data bytes", da, db)
        for name in sorted(set(ha) ^ set(hb)):
            problems.append(f"{shard}: {name} only in {'ours' if name in ha else 'the reference'}")
        for name in sorted(set(ha) & set(hb)):
            a, b = ha[name], hb[name]
            tensors += 1
            differ(f"{shard}: {name} dtype", a["dtype"], b["dtype"])
            differ(f"{shard}: {name} shape", a["shape"], b["shape"])
            differ(f"{shard}: {name} bytes", a["data_offsets"][1] - a["data_offsets"][0],
                   b["data_offsets"][1] - b["data_offsets"][0])
            differ(f"{shard}: {name} data_offsets", a["data_offsets"], b["data_offsets"])
    if problems:
        for p in problems[:50]:
            print(p)
        print(f"FAIL: {len(problems)} differences between {ours} and {ref}")
        return 1
    print(f"{tensors} tensors: names, dtypes, shapes and bytes equal the reference's")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
