"""Shared set-up of the scale benchmarks (bench_encode_db.py, bench_simulate.py).

Makes, once, in a work directory (default ``/tmp/primo-scale``; ``--workdir``):

* ``db.h5``: N synthetic FC2-like documents (4096-d, ``primo extract --synthetic``; 26 GB for 1.6 M);
* ``queries.h5``: a few synthetic queries drawn from the same generator (another seed);
* ``model/``: a real primo model for 4096-d features, trained briefly (the benchmarks time
  encoding and simulation, not search quality, so a short training is enough);
* ``pool/``: the database encoded by ``primo encode-db`` (made by bench_encode_db.py).

Each step is skipped when its output exists.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

PRIMO = [sys.executable, "-m", "primo"]


def run(args, label):
    """Run ``primo ARGS`` in a subprocess; return (seconds, peak RSS of that process in MB)."""
    t = time.perf_counter()
    proc = subprocess.Popen(PRIMO + [str(a) for a in args], env={**os.environ, "PRIMO_QUIET": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{label} failed (exit {proc.returncode})")
    return dt, usage.ru_maxrss / 1024  # kB -> MB (Linux)


def ensure_data(workdir: Path, n: int, n_queries: int = 3):
    workdir.mkdir(parents=True, exist_ok=True)
    db, q, model = workdir / f"db-{n}.h5", workdir / "queries.h5", workdir / "model"
    if not db.exists():
        print(f"making {n:,} synthetic FC2-like documents in {db} ...", flush=True)
        dt, _ = run(["extract", "--synthetic", n, "-o", db, "--seed", 0, "-j", 2], "synthetic data")
        print(f"  {dt:.0f} s", flush=True)
    if not q.exists():
        run(["extract", "--synthetic", n_queries, "-o", q, "--seed", 1, "--clusters", 2],
            "synthetic queries")
    if not model.exists():
        print("training a short model on the synthetic features ...", flush=True)
        dt, _ = run(["train", "-f", db, "-o", model, "--rounds", 1, "--steps", 50,
                     "--seed-pairs", 200, "--seed-epochs", 5, "--sim-pairs", 100,
                     "--eval-pairs", 20, "--final-eval-pairs", 40, "--heldout-rows", 500,
                     "--block-rows", 20000, "--seed", 0], "training")
        print(f"  {dt:.0f} s", flush=True)
    return db, q, model
