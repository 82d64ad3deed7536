#!/usr/bin/env python
"""In-silico peers on Fashion-MNIST raw pixels: proportion scanned at 50% / 90% 100-NN recall.

Database = the 60,000 training images (784 raw pixel values each), queries = test-split images
(a seeded random sample, 100 by default). Runs every peer of ``primo benchmark`` through the same
code path as the command (two feature stores -> ``benchmark_stores``) and prints, per algorithm,
the proportion of the database it must scan (candidate-set size / N, mean over queries per
setting, Pareto frontier, interpolated) for 50 %, 52 %, 90 % and 99 % mean 100-NN recall. The
issue's reference points: faiss IVF-Flat ~0.5 % for 52 % recall, HNSW ~1.8 % for 99 %.

Usage::

    python experiments/fashion_benchmark_peers.py [-o OUT] [--queries 100] [--peers ...] [--dir IDX_DIR]

Writes OUT/benchmarks.csv, OUT/benchmarks.png, OUT/summary.json (default OUT: fashion_bench/).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RECALLS = (0.5, 0.52, 0.9, 0.99)


def load_split(split: str, directory: str | None):
    """uint8 images (N, 28, 28) of a Fashion-MNIST split (``--dir``, else primo's default:
    ``$PRIMO_FASHION_MNIST`` or the Debian dataset folder)."""
    from primo.features.datasets import load_fashion_mnist

    return load_fashion_mnist(split, directory)[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", default="fashion_bench")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--peers", default="hnsw,hnsw-sq,faiss-ivf,faiss-ivfpq,annoy,lsh,mrpt")
    ap.add_argument("--dir", default=None, help="directory of the Fashion-MNIST IDX files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=100)
    args = ap.parse_args(argv)

    from primo.benchmark.core import benchmark_stores
    from primo.features.store import write_features

    train = load_split("train", args.dir).reshape(-1, 784).astype(np.float32)
    test = load_split("test", args.dir).reshape(-1, 784).astype(np.float32)
    rng = np.random.default_rng(args.seed)
    qi = np.sort(rng.choice(len(test), args.queries, replace=False))
    with tempfile.TemporaryDirectory() as tmp:
        f, q = Path(tmp) / "train.h5", Path(tmp) / "queries.h5"
        write_features(f, [f"fmnist-train-{i:05d}" for i in range(len(train))], train,
                       {"extractor": "raw-pixels", "dataset": "fashion-mnist train"})
        write_features(q, [f"fmnist-test-{i:05d}" for i in qi], test[qi],
                       {"extractor": "raw-pixels", "dataset": "fashion-mnist test"})
        t0 = time.perf_counter()
        summary = benchmark_stores(f, q, args.out, k=args.k, peers=args.peers, seed=args.seed,
                                   recalls=RECALLS,
                                   title=f"Fashion-MNIST raw pixels: {len(train):,} documents, "
                                         f"{len(qi)} queries")
        wall = time.perf_counter() - t0
    N = summary["parameters"]["database_size"]
    print(f"Fashion-MNIST raw pixels: N={N}, D=784, {len(qi)} test queries, k={args.k} "
          f"({wall:.0f} s)")
    for msg in summary["skipped"]:
        print("skipped:", msg)
    head = " ".join(f"{'@' + format(r, 'g'):>9}" for r in RECALLS)
    print(f"{'algorithm':<12} {'best':>6} {head}   {'build s':>8} {'search s':>8}   "
          "(proportion of the database scanned)")
    for alg, d in summary["algorithms"].items():
        p = d["proportion_at_recall"]
        cells = " ".join(f"{'-' if p[format(r, 'g')] is None else format(100 * p[format(r, 'g')], '.3f') + '%':>9}"
                         for r in RECALLS)
        best = d.get("best_mean_recall")
        print(f"{alg:<12} {'' if best is None else format(best, '.3f'):>6} {cells}   "
              f"{d.get('build_s', ''):>8} {d.get('search_s', ''):>8}")
    print(f"wrote {args.out}/benchmarks.csv, benchmarks.png, summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
