#!/usr/bin/env python
"""Benchmark ``primo simulate`` at scale: one query against N synthetic 4096-d documents.

Issue target: a 1.6 M-document database in <= 2 minutes on a 2-core machine, peak memory <= 2 GB,
with the default capture model (kinetic), timed side by side with ``--capture independent``.

Runs, in one run:

* primo: ``primo simulate --pool POOL`` end to end (reads the pool, predicts the yield of every
  document with the fixed-query predictor, simulates with ViennaRNA the top 1,000, the 100 nearest
  documents and a random sample of 1,000 of the rest (imputed to the others), the capture, wet
  lab, writes counts / yields / capture / distances / thresholds / recall.png) in a subprocess;
  wall time and peak RSS; once with the default capture model (``--capture kinetic``: energies at
  13 node temperatures for the pairs that matter, the rate equations down the ramp and the
  washes; ``--capture anneal`` times the former default) and once with ``--capture independent`` (two-strand yields at 1 nM), side by side;
* peers on the same documents: (a) the Keras predictor graph evaluated batch by batch (the direct
  way), timed on ``--peer-rows`` documents and projected; (b) the thermodynamic simulator on every
  document (what the cascade avoids), timed on ``--sim-pairs`` pairs and projected;

and prints documents/s and the ratios.

Needs the pool made by bench_encode_db.py (run it first) — or makes it.

Usage::

    python benchmarks/bench_simulate.py [--n 1600000] [--workdir /tmp/primo-scale]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

try:
    from ._scale_data import ensure_data, run   # python -m benchmarks.bench_x
except ImportError:
    from _scale_data import ensure_data, run    # python benchmarks/bench_x.py: its folder is on sys.path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--n", type=int, default=1_600_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/primo-scale"))
    ap.add_argument("--refine", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--peer-rows", type=int, default=100_000)
    ap.add_argument("--sim-pairs", type=int, default=200)
    ap.add_argument("--capture", default="kinetic", choices=["kinetic", "anneal", "equilibrium"],
                    help="the capture model timed against --capture independent")
    args = ap.parse_args()
    db, queries, model = ensure_data(args.workdir, args.n)
    pool = args.workdir / f"pool-{args.n}"
    if not pool.exists():
        print("encoding the database first ...", flush=True)
        run(["encode-db", "-m", model, "-f", db, "-o", pool, "--qc", "warn"], "encode-db")
    import h5py

    with h5py.File(queries) as f:
        qid = f["ids"][0].decode()
    times = {}
    for capture in ("independent", args.capture):
        out = args.workdir / f"sim-out-{capture}"
        if out.exists():
            shutil.rmtree(out)
        print(f"primo simulate --capture {capture}: 1 query x {args.n:,} documents, refine "
              f"{args.refine}, sample {args.sample} ...", flush=True)
        times[capture] = run(["simulate", "-m", model, "-f", db, "--pool", pool, "-Q", queries,
                              "--query-id", qid, "-o", out, "--refine", args.refine,
                              "--sample", args.sample, "--capture", capture], "simulate")
        print(f"  {times[capture][0]:.1f} s, peak RSS {times[capture][1]:.0f} MB", flush=True)
    dt, rss = times[args.capture]

    import numpy as np

    import primo  # noqa: F401  (importing primo silences TensorFlow's start-up lines)

    import tensorflow  # noqa: F401

    from primo.dna import onehot
    from primo.model_dir import load_model
    from primo.oligos.pool import read_pool
    from primo.thermo.simulator import Simulator

    m = load_model(model)
    p = read_pool(pool)
    feats = [str(f) for f in p.features[:max(args.peer_rows, args.sim_pairs)]]
    oh = onehot(feats)
    q = np.broadcast_to(oh[0], oh[:args.peer_rows].shape)
    m.predict_yields(oh[:1000], q[:1000])
    t = time.perf_counter()
    m.predict_yields(oh[:args.peer_rows], q)
    keras_rate = args.peer_rows / (time.perf_counter() - t)
    sim = Simulator()
    t = time.perf_counter()
    sim.yields(feats[:args.sim_pairs], [feats[0]] * args.sim_pairs)
    sim_rate = args.sim_pairs / (time.perf_counter() - t)

    rate = args.n / dt
    print()
    print(f"documents                        {args.n:,}")
    di, ri = times["independent"]
    print(f"primo simulate --capture {args.capture:11s} {dt:8.1f} s  {rate:12,.0f} docs/s  "
          f"peak RSS {rss:.0f} MB")
    print(f"primo simulate --capture independent {di:8.1f} s  {args.n / di:12,.0f} docs/s  "
          f"peak RSS {ri:.0f} MB")
    print(f"ratio {args.capture} / independent (time): {dt / di:.2f}")
    print(f"Keras predictor graph            {args.n / keras_rate:8.1f} s  {keras_rate:12,.0f} "
          f"docs/s  (projected from {args.peer_rows:,}; prediction only)")
    print(f"simulator on every document      {args.n / sim_rate:8.0f} s  {sim_rate:12,.1f} "
          f"docs/s  (projected from {args.sim_pairs} pairs, 1 core)")
    print(f"ratio primo / Keras graph: {rate / keras_rate:.2f}   primo / simulator: "
          f"{rate / sim_rate:,.0f}")
    print(f"target: <= 120 s for 1.6 M documents -> {'met' if dt <= 120 else 'NOT met'}")


if __name__ == "__main__":
    main()
