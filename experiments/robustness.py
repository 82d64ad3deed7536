#!/usr/bin/env python
"""Does primo's advantage survive a physics the model was not trained on? (issue 27)

Every trained model (``--model NAME=DIR``; name seeds ``NAME-s0``, ``NAME-s1``, ... to get a spread
over seeds) is evaluated as a user would: ``primo simulate`` on the whole database (``-f``) with the
same ``--queries`` test queries (a seeded draw from ``-Q``, written once to ``OUT/queries.h5``), then
``primo benchmark --counts-dir`` for the curve, and the ANN peers once with ``primo benchmark`` on
the same queries. Each *cell* of the matrix changes the physics of ``primo simulate`` only:

* ``default``: the simulate defaults (the model card's physics, the default capture);
* ``anneal`` / ``kinetic`` / ``equilibrium``: the capture model;
* ``kon-1e5`` / ``kon-1e7``: the association rate constant (default 1e6 /M/s);
* ``santalucia`` / ``vienna``: the Watson-Crick stacks (the card's is the default);
* ``na-0.5``: 0.5 M Na+ instead of 1 M;
* ``hyb-minus3`` / ``hyb-plus3``: the hybridization temperature 3 °C below / above the card's;
* ``no-washes``: no washes after the capture (kinetic model);
* ``perturbed-sK``: every nearest-neighbour free energy perturbed (seeded, sigma 0.3 kcal/mol);
* ``probe-5nm`` / ``kon-1e5-probe-5nm`` / ``kon-1e5-60min`` / ``60min``: not physics but protocol
  answers to a slow association (10x the probe, so k_on x [probe] is the default's; a 3x slower
  uniform ramp), each also at the default k_on to see what it costs or gives when it is not needed;
* ``program`` / ``kon-1e5-program``: the same 25 h as the paper's ramp, spent unequally
  (:data:`PROGRAM`, ``primo simulate --ramp-program``), at the default k_on and at 1e5 (for
  primo's default model, trained at 80 °C, the program the ``auto`` rule gave before it took a
  5 °C margin and 70 % of the time, the ``margin5-share70`` cell);
* ``uniform`` / ``kon-1e5-uniform``: the paper's uniform ramp (``--ramp-program uniform``, the
  default before ``auto``), at the default k_on and at 1e5;
* ``margin5`` / ``share50`` / ``margin5-share70``: variants of the first ``auto`` rule (60 % of
  the 25 h above the training temperature, ``program``) for a model trained at 80 °C: 60 % of the
  time from 95 to 76 °C (a 5 °C margin below the training temperature), 50 % above 80 °C, or
  70 % from 95 to 76 °C (the ``auto`` rule since it won across physics: the ``default`` cell);
* ``A+B``: two cells joined (``perturbed-s0+uniform``: the perturbed physics under the uniform
  ramp; the later cell's value wins where both set an option). A joined cell that changes only
  what follows the energies of a cell already run reuses them from the energy cache.

Printed (and written to ``OUT/robustness.json``): per cell and model group, the proportion of the
database retrieved at 50 % and 90 % mean 100-NN recall (mean ± sd over seeds, each seed's value and
its 95 % bootstrap interval over queries), its ratio to MRPT, whether 90 % is reached, and mAP@10.
Finished runs (a ``summary.json``) are not run again, so the script can be re-run to add models,
seeds or cells. Each model's free energies are kept in ``OUT/NAME/energies.sqlite`` (``primo
simulate --energy-cache``; the same numbers as without it), so that the cells that change only what
follows the energies (the capture model, ``k_on``, the washes) reuse those of the cells before.

    python experiments/robustness.py -f train.h5 -Q test.h5 --out OUT \\
        --model default-s0=M0 --model paper-s0=P0 [--cells default kinetic ...] [--queries 40]
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

#: the ``program`` cells' thermocycler program (``primo simulate --ramp-program``): 25 h, as the
#: paper's uniform 20 min per °C from 95 to 21 °C
PROGRAM = "95-81:60,80-21:10"
#: the cells of the matrix: name -> the ``primo simulate`` options that make it
CELLS = {
    "default": [],
    "anneal": ["--capture", "anneal"],
    "kinetic": ["--capture", "kinetic"],
    "equilibrium": ["--capture", "equilibrium"],
    "kon-1e5": ["--capture", "kinetic", "--k-on", "1e5"],
    "kon-1e7": ["--capture", "kinetic", "--k-on", "1e7"],
    "santalucia": ["--stacks", "santalucia"],
    "vienna": ["--stacks", "vienna"],
    "na-0.5": ["--na-molar", "0.5"],
    "hyb-minus3": ["--anneal-to", "{hyb-3}"],
    "hyb-plus3": ["--anneal-to", "{hyb+3}"],
    "no-washes": ["--capture", "kinetic", "--washes", "0"],
    # protocol answers to a slow k_on (not physics cells): 10x the probe restores k_on x [probe]
    "probe-5nm": ["--capture", "kinetic", "--probe-nm", "5"],
    "kon-1e5-probe-5nm": ["--capture", "kinetic", "--k-on", "1e5", "--probe-nm", "5"],
    "kon-1e5-60min": ["--capture", "kinetic", "--k-on", "1e5", "--minutes-per-degree", "60",
                      "--ramp-program", "uniform"],
    "60min": ["--capture", "kinetic", "--minutes-per-degree", "60", "--ramp-program", "uniform"],
    # the paper's 25 h spent unequally: 60 min per °C from 95 to 81 °C (where the default model's
    # near neighbours bind, trained at 80 °C), 10 min per °C below
    "program": ["--capture", "kinetic", "--ramp-program", PROGRAM],
    "kon-1e5-program": ["--capture", "kinetic", "--k-on", "1e5", "--ramp-program", PROGRAM],
    # the paper's uniform 20 min per °C (the default ramp before the auto program)
    "uniform": ["--capture", "kinetic", "--ramp-program", "uniform"],
    "kon-1e5-uniform": ["--capture", "kinetic", "--k-on", "1e5", "--ramp-program", "uniform"],
    # variants of the auto rule for a model trained at 80 °C (the same 25 h): the hot band
    # 5 °C wider (60 % of the time from 95 to 76 °C), or half the time above 80 °C
    "margin5": ["--capture", "kinetic", "--ramp-program", "95-76:45,75-21:10.9091"],
    "share50": ["--capture", "kinetic", "--ramp-program", "95-81:50,80-21:12.5"],
    # both ways at once: 70 % of the time from 95 to 76 °C
    "margin5-share70": ["--capture", "kinetic", "--ramp-program", "95-76:52.5,75-21:8.18182"],
}
PERTURBED = re.compile(r"perturbed-s(\d+)")


def cell_options(cell: str, card: dict) -> list:
    """The ``primo simulate`` options of a cell for a model (its card's temperature); ``A+B``
    joins two cells (``perturbed-s0+uniform``: the perturbed physics under the uniform ramp; an
    option of ``B`` given by ``A`` too takes ``B``'s value, as on a command line)."""
    if "+" in cell:
        return [o for part in cell.split("+") for o in cell_options(part, card)]
    m = PERTURBED.fullmatch(cell)
    if m:
        return ["--perturb", "0.3", "--perturb-seed", m.group(1)]
    if cell not in CELLS:
        raise SystemExit(f"unknown cell {cell!r}; known: {', '.join(CELLS)}, perturbed-sN, "
                         "A+B")
    hyb = float((card.get("hybridization") or {}).get("temperature_c", 21.0))
    return [o.replace("{hyb-3}", f"{hyb - 3:g}").replace("{hyb+3}", f"{hyb + 3:g}")
            for o in CELLS[cell]]


def primo(*args, log: Path) -> None:
    """Run a primo command (the installed one, as a user would), its output to ``log``."""
    cmd = [sys.executable, "-m", "primo", *map(str, args)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write("$ primo " + " ".join(map(str, args)) + "\n")
        fh.flush()
        rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if rc != 0:
        raise SystemExit(f"primo {args[0]} failed (exit {rc}); see {log}")


def query_store(test, out: Path, n: int, seed: int) -> Path:
    """The first ``n`` of 100 test rows drawn with ``seed`` (sorted), as a feature store (the
    draw of experiments/capture_experiment.py, so that the figures compare)."""
    from primo.features.store import FeatureStore, write_features

    path = out / "queries.h5"
    if path.exists():
        return path
    with FeatureStore.open(test) as st:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(st.n, max(n, 100), replace=False))[:n]
        X = st.read(0, st.n)[rows]
        ids = [str(i) for i in np.asarray(st.ids)[rows]]
        labels = None if st.labels is None else np.asarray(st.labels)[rows]
        meta = dict(st.metadata)
    write_features(path, ids, X, metadata=meta, labels=labels)
    return path


def figures(bench_summary: dict, algorithm: str = "primo") -> dict:
    """The figures of one algorithm in a ``primo benchmark`` summary."""
    a = (bench_summary.get("algorithms") or {}).get(algorithm) or {}
    at = a.get("proportion_at_recall") or {}
    ci = a.get("proportion_at_recall_ci95") or {}
    m = (bench_summary.get("map_at_k") or {}).get(algorithm) or {}
    return {"p50": at.get("0.5"), "p90": at.get("0.9"), "ci50": ci.get("0.5"),
            "ci90": ci.get("0.9"), "best_recall": a.get("best_mean_recall"),
            "map10": m.get("value"), "map10_ci": m.get("ci95")}


def run_cell(model: Path, name: str, cell: str, args, queries: Path) -> dict:
    card = json.loads((model / "card.json").read_text())
    out = args.out / name / cell
    sim, bench = out / "simulate", out / "benchmark"
    if not (bench / "summary.json").exists():
        t = time.time()
        if not (sim / "summary.json").exists():
            cache = [] if args.no_energy_cache else \
                ["--energy-cache", args.out / name / "energies.sqlite"]
            primo("simulate", "-m", model, "-f", args.features, "-Q", queries, "-o", sim,
                  "--refine", args.refine, "--sample", args.sample, "-j", args.processes,
                  "--overwrite", *cell_options(cell, card), *cache, log=out / "log.txt")
        primo("benchmark", "-f", args.features, "-Q", queries, "--counts-dir", sim,
              "--peers", "none", "-o", bench, "--overwrite", log=out / "log.txt")
        print(f"{name} {cell}: {time.time() - t:.0f} s", flush=True)
    return figures(json.loads((bench / "summary.json").read_text()))


def mean_sd(vals, fmt):
    got = [v for v in vals if v is not None]
    if not got:
        return "not reached"
    s = fmt(got[0]) if len(got) == 1 else \
        f"{fmt(float(np.mean(got)))} ± {fmt(float(np.std(got, ddof=1)))}"
    each = " / ".join("–" if v is None else fmt(v) for v in vals)
    s += f" ({each})" if len(vals) > 1 else ""
    return s if len(got) == len(vals) else f"{s}; {len(got)} of {len(vals)} seeds"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-f", "--features", type=Path, required=True, help="the database's store")
    ap.add_argument("-Q", "--queries", type=Path, required=True, help="the test split's store")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=DIR")
    ap.add_argument("--cells", nargs="+", default=["default"],
                    help=f"cells of the matrix: {', '.join(CELLS)}, perturbed-sN (default: "
                         "default)")
    ap.add_argument("--query-count", type=int, default=40)
    ap.add_argument("--query-seed", type=int, default=0)
    ap.add_argument("--refine", type=int, default=100)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("-j", "--processes", type=int, default=2)
    ap.add_argument("--no-energy-cache", action="store_true",
                    help="do not keep each model's free energies in OUT/NAME/energies.sqlite "
                         "(primo simulate --energy-cache: the cells that change only the "
                         "kinetics or the capture then cost minutes, with the same numbers)")
    ap.add_argument("--peers", default="all",
                    help="peers for primo benchmark (comma-separated; 'none': no peers)")
    args = ap.parse_args(argv)
    models = []
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            ap.error(f"--model {item!r}: expected NAME=DIR")
        models.append((name, Path(path)))
    args.out.mkdir(parents=True, exist_ok=True)
    queries = query_store(args.queries, args.out, args.query_count, args.query_seed)
    peers = {}
    if args.peers != "none":
        pdir = args.out / "peers"
        if not (pdir / "summary.json").exists():
            extra = [] if args.peers == "all" else ["--peers", args.peers]
            primo("benchmark", "-f", args.features, "-Q", queries, "-o", pdir, "--overwrite",
                  *extra, log=args.out / "peers.log")
        ps = json.loads((pdir / "summary.json").read_text())
        peers = {a: figures(ps, a) for a in ps.get("algorithms", {})
                 if a not in ("primo", "oracle", "chance", "exact")}
    mrpt = (peers.get("mrpt") or {}).get("p50")
    results = {}
    for cell in args.cells:
        for name, path in models:
            results.setdefault(cell, {})[name] = run_cell(path, name, cell, args, queries)
    groups = {}
    for name, _ in models:
        m = re.fullmatch(r"(.+)-s(\d+)", name)
        groups.setdefault(m.group(1) if m else name, []).append(name)
    pct = lambda v: f"{100 * v:.3f} %"  # noqa: E731
    print(f"\n{len(models)} models, {args.query_count} queries; MRPT at 50 % recall: "
          f"{'–' if mrpt is None else pct(mrpt)}")
    print("| cell | model | 50 % recall at | × MRPT | 90 % recall at | mAP@10 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for cell, by_model in results.items():
        for g, names in groups.items():
            rs = [by_model[n] for n in names]
            ratio = [None if r["p50"] is None or not mrpt else r["p50"] / mrpt for r in rs]
            print(f"| {cell} | {g} | {mean_sd([r['p50'] for r in rs], pct)} "
                  f"| {mean_sd(ratio, lambda v: f'{v:.2f}×')} "
                  f"| {mean_sd([r['p90'] for r in rs], pct)} "
                  f"| {mean_sd([r['map10'] for r in rs], lambda v: f'{v:.3f}')} |")
    for a, v in peers.items():
        print(f"| peers | {a} | {'–' if v['p50'] is None else pct(v['p50'])} | "
              f"| {'–' if v['p90'] is None else pct(v['p90'])} | |")
    (args.out / "robustness.json").write_text(json.dumps(
        {"queries": args.query_count, "refine": args.refine, "sample": args.sample,
         "peers": peers, "cells": results}, indent=1))


if __name__ == "__main__":
    main()
