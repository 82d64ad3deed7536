#!/usr/bin/env python
"""Which of the 100 nearest neighbours a capture run misses, and why (issue 16).

Reads ``counts.npz`` written by ``experiments/capture_experiment.py`` (per-query read counts and the
exact nearest neighbours) and the database features, and prints for the anneal (and the other
settings in the file) the share of nearest neighbours without a single read:

* by neighbour rank (1-10, 11-50, 51-100);
* by how the model's training labelled the pair: similar (within the model's similarity
  threshold, or among each other's K nearest neighbours for ``--similar-neighbors`` models), near
  (within ``near_factor`` of it, the hard negatives), or far.

A neighbour without a read can never be retrieved, so this share bounds the recall.

    .venv/bin/python experiments/missed_neighbours.py --run W/seeds40/paper-s1 \\
        --features W/fashion_train.h5 [--test-features W/fashion_test.h5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


import numpy as np  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--run", type=Path, required=True, help="a capture_experiment output folder")
    ap.add_argument("--features", type=Path, required=True)
    ap.add_argument("--test-features", type=Path, default=None)
    args = ap.parse_args(argv)
    from primo.features.store import FeatureStore
    from primo.training.data import neighbor_radii, pairwise_sq_distances, scaled_neighbors

    z = np.load(args.run / "counts.npz")
    summary = json.loads((args.run / "summary.json").read_text())
    card = json.loads((Path(summary["model"]) / "card.json").read_text())
    thr = card["threshold"]
    near = float(card["training"].get("near_factor") or 2.0)
    tfeats = args.test_features or args.features.with_name("fashion_test.h5")
    with FeatureStore.open(args.features) as st:
        X = st.read(0, st.n)
    with FeatureStore.open(tfeats) as st:
        ids = np.asarray(st.ids).astype(str)
        pos = {v: i for i, v in enumerate(ids)}
        Q = st.read(0, st.n)[[pos[str(q)] for q in z["query_ids"]]]
    nn = z["nearest"]
    d = np.sqrt(((Q[:, None, :] - X[nn]) ** 2).sum(-1))
    if thr.get("method") == "neighbors":
        k = scaled_neighbors(thr["neighbors"], len(X),
                             card["data"].get("training_rows") or len(X))
        rx = neighbor_radii(X, k)
        # a query's radius: the distance to its k-th database neighbour
        dq = pairwise_sq_distances(Q, X)
        rq = np.sqrt(np.maximum(np.partition(dq, k - 1, axis=1)[:, k - 1], 0.0))
        scaled = d / np.maximum(rq[:, None], rx[nn])
        unit = f"among each other's {thr['neighbors']} nearest neighbours"
    else:
        scaled = d / float(thr["value"])
        unit = f"within the threshold {float(thr['value']):.4g}"
    kind = np.where(scaled <= 1, "similar", np.where(scaled <= near, "near", "far"))
    ranks = np.broadcast_to(np.arange(1, nn.shape[1] + 1), nn.shape)
    print(f"{args.run}: {len(nn)} queries x {nn.shape[1]} nearest neighbours; "
          f"similar = {unit}; near = up to {near:g}x that")
    for label in [f for f in z.files if f not in ("query_ids", "nearest")]:
        C = z[label]
        zero = np.take_along_axis(C, nn, axis=1) <= 0
        parts = [f"all {zero.mean():.1%} of {zero.size}"]
        for lo, hi in ((1, 10), (11, 50), (51, 100)):
            m = (ranks >= lo) & (ranks <= hi)
            parts.append(f"rank {lo}-{hi} {zero[m].mean():.1%}")
        for kd in ("similar", "near", "far"):
            m = kind == kd
            if m.any():
                parts.append(f"{kd} {zero[m].mean():.1%} of {int(m.sum())}")
        print(f"  {label}: neighbours without a read: " + "; ".join(parts))


if __name__ == "__main__":
    main()
