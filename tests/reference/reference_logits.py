#!/usr/bin/env python3
"""Writes the reference model's logits for a prompt in the layout of `flashline logits`:
prefill_logits.npy [n, vocab], decode_ids.npy / decode_logits.npy (greedy, row 0 = last prefill
position, row k = the step that consumed decode_ids[k-1]) and mtp_logits.npy (MTP block on the
final stream at positions 0..n-2 with ids 1..n-1). dsv4_ref.py beside this file is the
independent numpy reference of the DeepSeek-V4 forward pass the goldens come from.

usage: reference_logits.py MODEL_DIR OUT_DIR --ids 1,2,3 [--decode N]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dsv4_ref import Model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--decode", type=int, default=0)
    a = ap.parse_args()
    ids = [int(t) for t in a.ids.split(",")]
    os.makedirs(a.out, exist_ok=True)
    m = Model.load(a.model)
    st = m.new_state()
    logits, h = m.forward(ids, 0, st)
    np.save(os.path.join(a.out, "prefill_logits.npy"), logits.astype("<f4"))
    if m.cfg.n_mtp and len(ids) > 1:
        mtp = m.mtp_forward(h[:-1], ids[1:], 0, m.new_state(mtp=True))
        np.save(os.path.join(a.out, "mtp_logits.npy"), mtp.astype("<f4"))
    if a.decode:
        rows, fed = [logits[-1]], []
        for k in range(a.decode):
            fed.append(int(np.argmax(rows[-1])))
            if k + 1 == a.decode:
                break
            lg, _ = m.forward([fed[-1]], len(ids) + k, st)
            rows.append(lg[0])
        np.save(os.path.join(a.out, "decode_ids.npy"), np.array(fed, dtype="<i4"))
        np.save(os.path.join(a.out, "decode_logits.npy"), np.array(rows, dtype="<f4"))


if __name__ == "__main__":
    main()
