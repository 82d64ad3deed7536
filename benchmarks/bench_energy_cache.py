#!/usr/bin/env python
"""Benchmark ``primo simulate --energy-cache``: the same run with and without the store, side by side.

Four runs of ``primo simulate`` on the same queries, in one process after another:

1. without the store (what every run cost before it);
2. with a new store (it computes everything, as 1, and writes the energies);
3. the same command again with that store (the energies are read back);
4. another capture physics on that store, ``--k-on`` ``--other-k-on`` (the kinetics change, the
   free energies do not: what ``experiments/robustness.py`` does cell after cell).

It prints each run's time, the values the store reused and computed, the ratios to run 1, and
checks that the yields and read counts of runs 2 and 3 equal run 1's to the last digit written.

Data: ``-m`` a model, ``-f`` the database's store and ``-Q`` the queries (the first
``--query-count`` of them); without them, the bundled demo data of ``bench_capture.py``
(60,000 jittered copies of the 2,000 Fashion-MNIST demo images, a tiny model).

    python benchmarks/bench_energy_cache.py [-m MODEL -f train.h5 -Q test.h5] [--query-count 1]
        [--refine 1000 --sample 1000] [-j 2] [--workdir /tmp/primo-bench-energy-cache]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _rows(path: Path):
    with gzip.open(path, "rt") as fh:
        return list(csv.DictReader(fh))


def _outputs(out: Path) -> dict:
    return {str(p.relative_to(out)): _rows(p) for p in sorted(out.rglob("*.csv.gz"))
            if p.name in ("counts.csv.gz", "yields.csv.gz")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", type=Path)
    ap.add_argument("-f", "--features", type=Path)
    ap.add_argument("-Q", "--queries", type=Path)
    ap.add_argument("--query-count", type=int, default=1)
    ap.add_argument("--refine", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--other-k-on", default="1e7")
    ap.add_argument("-j", "--processes", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/primo-bench-energy-cache"))
    args = ap.parse_args(argv)
    from primo.cli import main as primo
    from primo.features.store import FeatureStore, write_features

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        try:
            from .bench_capture import ensure_data   # python -m benchmarks.bench_x
        except ImportError:
            from bench_capture import ensure_data    # python benchmarks/bench_x.py

        base, features, model = ensure_data(work, 60_000)
        source = base
    else:
        if args.features is None or args.queries is None:
            ap.error("-m needs -f and -Q")
        model, features, source = args.model, args.features, args.queries
    queries = work / "queries.h5"
    with FeatureStore.open(source) as st:
        n = min(args.query_count, st.n)
        ids, X, meta = [f"q-{i}" for i in list(st.ids)[:n]], st.read(0, n), st.metadata
    if queries.exists():
        queries.unlink()
    write_features(queries, ids, X, meta)
    cache = work / "energies.sqlite"
    if cache.exists():
        cache.unlink()
    base_args = ["-q", "simulate", "-m", model, "-f", features, "-Q", queries, "--refine",
                 args.refine, "--sample", args.sample, "-j", args.processes, "--gallery", 0,
                 "--overwrite"]
    runs = [("without the store", []), ("new store", ["--energy-cache", cache]),
            ("same run, store", ["--energy-cache", cache]),
            (f"--k-on {args.other_k_on}, store", ["--energy-cache", cache, "--k-on",
                                                   args.other_k_on])]
    results = []
    for i, (name, extra) in enumerate(runs):
        out = work / f"run{i}"
        t = time.perf_counter()
        r = primo([str(a) for a in base_args + ["-o", out] + extra])
        dt = time.perf_counter() - t
        if r.exit_code != 0:
            raise SystemExit(f"{name}: primo simulate failed: {r.error}")
        summary = json.loads((out / "summary.json").read_text())
        results.append((name, dt, summary.get("energy_cache") or {}, _outputs(out)))
    t0 = results[0][1]
    print(f"primo simulate, {n} quer{'y' if n == 1 else 'ies'}, --refine {args.refine} "
          f"--sample {args.sample}, -j {args.processes}")
    print(f"{'run':<24} {'seconds':>9} {'reused':>8} {'computed':>9} {'ratio':>7}  same outputs")
    for i, (name, dt, ec, outs) in enumerate(results):
        same = ("yes" if outs == results[0][3] else "NO") if i < 3 else "(other kinetics)"
        print(f"{name:<24} {dt:>9.1f} {ec.get('values_reused', '-')!s:>8} "
              f"{ec.get('values_computed', '-')!s:>9} {t0 / dt:>6.1f}×  {same}")
    shutil.rmtree(work / "run0", ignore_errors=True)
    if any(results[i][3] != results[0][3] for i in (1, 2)):
        raise SystemExit("the store changed the outputs")


if __name__ == "__main__":
    main()
