#!/usr/bin/env python
"""Trained models side by side on the full Fashion-MNIST database under the capture model.

For each ``--model NAME=DIR`` this runs ``experiments/capture_experiment.py`` with the same test
queries (``--queries``, seeded draw), the same synthesized pool and wet lab, and the default
protocol only (the anneal, probe 0.5 nM against a 150 nM pool, 95 -> the model's temperature at
20 min/°C; no ratio or decoy sweep), and keeps its ``summary.json`` under ``OUT/NAME/``. Finished
models are not run again, so the script can be re-run to add models. The ANN peers run once, on
the same queries, in the first model's run.

Prints one markdown table: per model, the proportion of the database retrieved at 50 % and 90 %
mean 100-NN recall with 95 % bootstrap intervals over queries, the ratio of the 50 % figure to
the best peer's, mAP@10 (relevance: same class), the probe share held by the simulated documents,
and the simulation time; then the peers.

    .venv/bin/python experiments/compare_full_database.py --work W --out W/full \\
        --model paper=W/cmp/paper-s0 --model rank-local=W/cmp/rank-local-s0 \\
        [--queries 100] [--first N] [--refine 100] [--sample 100] [-j 2] \\
        [--loop-enthalpies clipped]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def run_model(name, path, args, peers):
    out = args.out / name
    summary = out / "summary.json"
    if summary.exists():
        return json.loads(summary.read_text())
    cmd = [sys.executable, str(HERE / "capture_experiment.py"), "--work", str(args.work),
           "--model", str(path), "-o", str(out), "--queries", str(args.queries),
           "--refine", str(args.refine), "--sample", str(args.sample), "--ratios",
           "--decoy-multiples", "--seed", str(args.seed),
           "--loop-enthalpies", args.loop_enthalpies]
    if args.anneal_to is not None:
        cmd += ["--anneal-to", str(args.anneal_to)]
    if args.first:
        cmd += ["--first", str(args.first)]
    if args.processes:
        cmd += ["-j", str(args.processes)]
    if not peers:
        cmd.append("--no-peers")
    out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    with open(args.out / f"{name}.log", "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    print(f"{name}: exit {rc} in {time.time() - t:.0f} s", flush=True)
    if rc != 0 or not summary.exists():
        return None
    d = json.loads(summary.read_text())
    d["wall_s"] = round(time.time() - t, 1)
    summary.write_text(json.dumps(d, indent=1))
    return d


def pct(x):
    return "not reached" if x is None else f"{100 * x:.3f} %"


def interval(d):
    i = d.get("interval95")
    return "" if not i else f" [{100 * i[0]:.2f}–{100 * i[1]:.2f}]"


def max_recall(setting):
    """Highest mean recall the read counts reach (documents with no read are never retrieved)."""
    pts = setting.get("points") or []
    return max((r for _, r in pts), default=None)


def mean_sd(vals, f):
    """``mean ± sd (each / each)`` over seeds, and how many seeds reached a figure."""
    got = [v for v in vals if v is not None]
    if not got:
        return "not reached"
    each = " / ".join(f(v) for v in vals if v is not None)
    out = f(got[0]) if len(got) == 1 else \
        f"{f(float(np.mean(got)))} ± {f(float(np.std(got, ddof=1)))} ({each})"
    return out if len(got) == len(vals) else f"{out}; reached by {len(got)} of {len(vals)} seeds"


def seed_groups(results):
    """``NAME-sK`` models grouped by NAME (only groups of two or more seeds)."""
    groups = {}
    for name, d in results.items():
        m = re.fullmatch(r"(.+)-s(\d+)", name)
        if m and d:
            groups.setdefault(m.group(1), []).append((int(m.group(2)), d))
    return {g: sorted(v, key=lambda x: x[0]) for g, v in groups.items() if len(v) >= 2}


def print_seed_table(results, best, setting="anneal"):
    groups = seed_groups(results)
    if not groups:
        return
    print(f"\nOver training seeds ({setting}): mean ± standard deviation (per seed)")
    print("| configuration | seeds | 50 % recall at | ratio to best peer | 90 % recall at "
          "| highest recall | mAP@10 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for g, runs in groups.items():
        sets = [d["settings"][setting] for _, d in runs]
        p5 = [a["at_recall"]["0.5"]["proportion"] for a in sets]
        p9 = [a["at_recall"]["0.9"]["proportion"] for a in sets]
        ratio = [None if v is None or not best else v / best for v in p5]
        print(f"| {g} | {', '.join(str(k) for k, _ in runs)} "
              f"| {mean_sd(p5, lambda v: f'{100 * v:.3f} %')} "
              f"| {mean_sd(ratio, lambda v: f'{v:.2f}×')} "
              f"| {mean_sd(p9, lambda v: f'{100 * v:.3f} %')} "
              f"| {mean_sd([max_recall(a) for a in sets], lambda v: f'{100 * v:.1f} %')} "
              f"| {mean_sd([a['map_at_10'] for a in sets], lambda v: f'{v:.3f}')} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--work", type=Path, required=True,
                    help="holds fashion_train.h5 and fashion_test.h5")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=DIR")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--first", type=int, default=None,
                    help="only the first N of the --queries drawn (a subset of a full run's)")
    ap.add_argument("--refine", type=int, default=100)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-j", "--processes", type=int, default=2)
    ap.add_argument("--loop-enthalpies", choices=["card", "clipped", "shipped"], default="card",
                    help="ViennaRNA loop enthalpies for every model (default: each card's)")
    ap.add_argument("--anneal-to", type=float, default=None,
                    help="end of the anneal for every model, °C (default: each card's)")
    args = ap.parse_args(argv)
    models = []
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            ap.error(f"--model {item!r}: expected NAME=DIR")
        models.append((name, Path(path)))
    args.out.mkdir(parents=True, exist_ok=True)
    results, peers = {}, {}
    for name, path in models:
        have_peers = any(r and r.get("peers") for r in results.values())
        d = run_model(name, path, args, peers=not have_peers)
        results[name] = d
        if d and d.get("peers"):
            peers = d["peers"]
    peers = {a: v for a, v in peers.items() if a not in ("oracle", "chance")}
    best = min((v["0.5"] for v in peers.values() if v and v.get("0.5") is not None),
               default=None)
    best_name = next((a for a, v in peers.items() if v and v.get("0.5") == best), None)
    n = next((d["documents"] for d in results.values() if d), 0)
    q = next((d["queries"] for d in results.values() if d), 0)
    print(f"\nFashion-MNIST, {n:,} documents, {q} test queries, default protocol (anneal); "
          f"best peer at 50 % recall: {best_name} {pct(best)}")
    print("| model | 50 % recall at | ratio to best peer | 90 % recall at | mAP@10 "
          "| highest recall | probe on simulated documents | energies (s) | wall (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, d in results.items():
        if not d:
            print(f"| {name} | failed (see {args.out / (name + '.log')}) | | | | | | | |")
            continue
        a = d["settings"]["anneal"]
        a5, a9 = a["at_recall"]["0.5"], a["at_recall"]["0.9"]
        ratio = "" if best is None or a5["proportion"] is None else \
            f"{a5['proportion'] / best:.2f}×"
        share = a["capture"].get("probe_bound_simulated")
        print(f"| {name} | {pct(a5['proportion'])}{interval(a5)} | {ratio} | "
              f"{pct(a9['proportion'])}{interval(a9)} | {a['map_at_10']:.3f} | "
              f"{100 * (max_recall(a) or 0):.1f} % | "
              f"{'' if share is None else f'{share:.1%}'} | {d['simulation_s']:.0f} | "
              f"{d.get('wall_s', '')} |")
    for alg, v in peers.items():
        print(f"| {alg} | {pct(v.get('0.5'))} | | {pct(v.get('0.9'))} | | | | | |")
    exact = next((d["map_at_10_exact"] for d in results.values() if d), None)
    if exact is not None:
        print(f"mAP@10 of exact search on the embedding: {exact:.3f}")
    print_seed_table(results, best)
    print_seed_table(results, best, "equilibrium")


if __name__ == "__main__":
    main()
