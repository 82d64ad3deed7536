#!/usr/bin/env python
"""Benchmark the hybridization simulator: naive vs cached, serial vs 2 processes vs Dask.

On the same (target, query) pairs, in one run:

1. naive   every ensemble of every pair recomputed (A, B, AA, BB, AB: five partition functions)
2. cached  per-strand ensembles computed once per distinct strand, one AB ensemble per pair
3. procs   the cached computation over N local worker processes (primo.parallel)
4. dask    the same over a Dask LocalCluster of N single-threaded workers

Pairs: ``--targets`` random 80-nt targets x ``--queries`` queries (each query a mutated copy of a
random target, mismatch fraction uniform in [0, 0.8]), every target with every query, like a
query-vs-database experiment. All four runs must give the same numbers (checked). Worker pools
are started and warmed up before the clock starts; the configurations run in ``--repeat``
interleaved rounds, each run from an empty cache, and the best time of each counts (other jobs
on shared CPUs only slow runs down, and interleaving exposes all to the same background).
Prints pairs/s and the ratios, and the load average, since other work on the CPUs changes the
parallel figures.

    python benchmarks/bench_yields.py                  # 16 x 16 = 256 pairs, 2 workers
    python benchmarks/bench_yields.py --targets 8 --queries 8 --no-dask
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import numpy as np

from primo.parallel import SerialMapper, get_mapper
from primo.thermo import Simulator, mutate


def make_pairs(n_targets, n_queries, seed):
    rng = np.random.default_rng(seed)
    targets = ["".join(rng.choice(list("ACGT"), 80)) for _ in range(n_targets)]
    queries = [mutate(targets[rng.integers(n_targets)], rng.uniform(0, 0.8), rng)
               for _ in range(n_queries)]
    tt = [t for t in targets for _ in queries]
    qq = [q for _ in targets for q in queries]
    return tt, qq


def warm_up(mapper, n_workers):
    """Start every worker and load the energy parameters there (not timed)."""
    rng = np.random.default_rng(12345)
    strands = ["".join(rng.choice(list("ACGT"), 80)) for _ in range(4 * n_workers)]
    Simulator(cache_strands=False).free_energies(strands, strands[::-1], mapper=mapper, chunksize=1)


def run_rounds(configs, n, repeat):
    """Run every configuration once per round, ``repeat`` rounds, interleaved.

    Interleaving exposes all configurations to the same background load; the best time of each
    counts (other jobs on shared CPUs only ever slow a run down). Returns {label: (yields, rate)}.
    """
    times = {label: [] for label, _ in configs}
    cpus = {label: [] for label, _ in configs}
    out = {}
    for _ in range(repeat):
        for label, fn in configs:
            t0, c0 = time.perf_counter(), time.process_time()
            out[label] = fn()
            times[label].append(time.perf_counter() - t0)
            cpus[label].append(time.process_time() - c0)
    rates = {}
    for label, _ in configs:
        best = min(times[label])
        runs = " ".join(f"{t:.2f}" for t in times[label])
        print(f"{label:<40s} {best:7.2f} s {n / best:8.1f} pairs/s   (runs: {runs} s; "
              f"CPU here {min(cpus[label]):.2f} s)")
        rates[label] = (out[label], n / best)
    return rates


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=int, default=16)
    ap.add_argument("--queries", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunksize", type=int, default=8, help="pairs per task")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (best time counts)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args(argv)

    tt, qq = make_pairs(args.targets, args.queries, args.seed)
    n = len(tt)
    print(f"{n} pairs ({args.targets} targets x {args.queries} queries, 80 nt), "
          f"{args.workers} workers, chunksize {args.chunksize}, best of {args.repeat} "
          f"interleaved rounds, CPUs {os.cpu_count()}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cs = args.chunksize
    with contextlib.ExitStack() as stack:
        procs = stack.enter_context(get_mapper(processes=args.workers))
        warm_up(procs, args.workers)
        # every run starts from an empty strand cache (a new Simulator)
        configs = [
            ("naive (all 5 ensembles per pair)",
             lambda: Simulator(cache_strands=False).yields(tt, qq, mapper=SerialMapper(),
                                                           chunksize=cs)),
            ("cached, serial",
             lambda: Simulator().yields(tt, qq, mapper=SerialMapper(), chunksize=cs)),
            (f"cached, {args.workers} local processes",
             lambda: Simulator().yields(tt, qq, mapper=procs, chunksize=cs)),
        ]
        if not args.no_dask:
            from distributed import LocalCluster

            cluster = stack.enter_context(LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                                       dashboard_address=":0"))
            dask = stack.enter_context(get_mapper(scheduler=cluster.scheduler_address))
            warm_up(dask, args.workers)
            configs.append((f"cached, Dask LocalCluster ({args.workers} workers)",
                            lambda: Simulator().yields(tt, qq, mapper=dask, chunksize=cs)))
        rates = run_rounds(configs, n, args.repeat)
    labels = [label for label, _ in configs]
    y_cached = rates[labels[1]][0]
    for label in labels:
        y = rates[label][0]
        if not np.array_equal(y, y_cached):
            raise SystemExit(f"MISMATCH: {label} differs from cached serial "
                             f"(max {np.abs(y - y_cached).max():.3g})")
    print("all runs give identical yields")
    r_naive, r_cached, r_proc = (rates[label][1] for label in labels[:3])
    print(f"caching speed-up over naive:        {r_cached / r_naive:5.2f}x  (goal >= 2.5)")
    print(f"{args.workers} processes over serial (cached):  {r_proc / r_cached:5.2f}x  "
          "(goal >= 1.8)")
    if not args.no_dask:
        print(f"Dask over local processes:          {rates[labels[3]][1] / r_proc:5.2f}x  "
              "(goal >= 0.8)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
