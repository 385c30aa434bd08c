#!/usr/bin/env python3
"""Compares the .npy outputs of `flashline logits` with the reference's: float arrays within a
relative tolerance (default 1e-6; bit-identical is expected in exact numerics), integer arrays
identical. Exit status 1 names the first file that differs and where."""
import argparse
import os
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("reference")
    ap.add_argument("--rel", type=float, default=1e-6)
    a = ap.parse_args()
    names = sorted(f for f in os.listdir(a.reference) if f.endswith(".npy"))
    if not names:
        sys.exit(f"{a.reference}: no .npy files")
    ok = True
    for name in names:
        ref = np.load(os.path.join(a.reference, name))
        path = os.path.join(a.ours, name)
        if not os.path.exists(path):
            print(f"{name}: missing from {a.ours}")
            ok = False
            continue
        got = np.load(path)
        if got.shape != ref.shape or got.dtype != ref.dtype:
            print(f"{name}: {got.dtype}{list(got.shape)} vs reference {ref.dtype}{list(ref.shape)}")
            ok = False
            continue
        if ref.dtype.kind == "i":
            bad = np.flatnonzero(got.reshape(-1) != ref.reshape(-1))
        else:
            d = np.abs(got.astype(np.float64) - ref.astype(np.float64))
            bad = np.flatnonzero(~(d <= a.rel * np.abs(ref.astype(np.float64))))
        same = int((got == ref).sum())
        if bad.size:
            i = int(bad[0])
            print(f"{name}: {bad.size} of {ref.size} differ (first at flat index {i}: "
                  f"{got.reshape(-1)[i]} vs {ref.reshape(-1)[i]})")
            ok = False
        else:
            print(f"{name}: {same}/{ref.size} identical")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
