#!/usr/bin/env python
"""Benchmark ``primo encode-db`` at scale: N synthetic 4096-d documents -> a pool directory.

Issue target: 1.6 M documents in <= 10 minutes with peak memory <= 2 GB on a 2-core machine.

Runs, in one run:

* primo: ``primo encode-db`` end to end (streams the HDF5 store in chunks, encodes, barcodes,
  QC, writes database_seqs.csv.gz / Twist sheet / manifest) in a subprocess; wall time and its peak
  RSS;
* peer: the bare Keras encoder on an in-memory numpy array (no I/O, no barcodes, no QC, no
  files) over the first ``--peer-rows`` rows — the floor set by the network itself;

and prints documents/s of both and the ratio (primo / bare encoder).

The store is dropped from the page cache before primo's run (``posix_fadvise(DONTNEED)`` on that
file alone), so that a store smaller than the machine's memory is read from the disk as the 26 GB
store of 1.6 M documents must be; ``--warm`` keeps whatever is cached.

Usage::

    python benchmarks/bench_encode_db.py [--n 1600000] [--workdir /tmp/primo-scale]
"""

from __future__ import annotations

import argparse
import os
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
    ap.add_argument("--peer-rows", type=int, default=100_000)
    ap.add_argument("--warm", action="store_true",
                    help="do not drop the store from the page cache before primo's run")
    args = ap.parse_args()
    db, _, model = ensure_data(args.workdir, args.n)
    pool = args.workdir / f"pool-{args.n}"
    if pool.exists():
        shutil.rmtree(pool)
    if not args.warm and hasattr(os, "posix_fadvise"):
        fd = os.open(db, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    print(f"primo encode-db: {args.n:,} documents ({'warm' if args.warm else 'cold'} page "
          f"cache) ...", flush=True)
    dt, rss = run(["encode-db", "-m", model, "-f", db, "-o", pool, "--qc", "warn"], "encode-db")
    primo_rate = args.n / dt

    import numpy as np

    import primo  # noqa: F401  (importing primo silences TensorFlow's start-up lines)

    import tensorflow  # noqa: F401

    from primo.features.store import FeatureStore
    from primo.model_dir import load_model

    m = load_model(model)
    with FeatureStore.open(db) as st:
        X = st.read(0, min(args.peer_rows, st.n))
    enc = m.encoder
    enc(X[:256])  # warm up
    t = time.perf_counter()
    for a in range(0, len(X), 4096):
        np.asarray(enc(X[a:a + 4096], training=False)).argmax(-1)
    peer_rate = len(X) / (time.perf_counter() - t)

    print()
    print(f"documents                 {args.n:,}")
    print(f"primo encode-db           {dt:8.1f} s   {primo_rate:10,.0f} docs/s   peak RSS "
          f"{rss:.0f} MB")
    print(f"bare Keras encoder (RAM)  {len(X) / peer_rate:8.1f} s   {peer_rate:10,.0f} docs/s   "
          f"({len(X):,} rows; {args.n / peer_rate:.0f} s projected for {args.n:,})")
    print(f"ratio primo / bare encoder: {primo_rate / peer_rate:.2f}")
    print(f"target: <= 600 s and <= 2048 MB for 1.6 M documents -> "
          f"{'met' if dt <= 600 and rss <= 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
