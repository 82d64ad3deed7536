#!/usr/bin/env python
"""Objectives and predictors side by side under the capture model (issue 16).

Trains one model per configuration and seed on the same features with the same settings, apart
from the objective and the predictor, and reads each model card's capture evaluation: the
held-out mini-database (``--set capture_eval_docs=3000``, 20 queries, their 10 nearest neighbours)
captured with the default protocol (the anneal, probe:pool 1:300) at the evaluated rounds, and the
round each configuration keeps (the paper keeps its last; the others the best evaluated one).

Configurations (``--configs``, default all):

* ``paper``: the paper's yield objective + local-match (the paper's method);
* ``paper-scan``: the paper's yield objective against the soft duplex scan, which also sees the
  shifted and bulged duplexes through which random pairs bind;
* ``paper-knn``: the paper's objective and predictor, with similarity by neighbourhood
  (``--similar-neighbors 100``: each document's 100 nearest training documents) instead of the
  paper's global distance threshold; ``paper-knn200`` and ``paper-knn300`` the same with
  ``--similar-neighbors 200`` and ``300``;
* ``rank-local``: rank objective + local-match with an energy head;
* ``rank-scan``: rank objective + the soft duplex scan;
* ``hamming``: hamming-triplet (predictor-free encoder loss; the predictor only picks what the
  capture evaluation simulates);
* ``rank-scan-oversample``: rank-scan with predictor-phase oversampling of uncertain and
  far-binding pairs.

Each run is a subprocess (``--run NAME SEED``) writing ``WORK/NAME-sSEED/``; finished runs are
not trained again, so the script can be re-run to add seeds. Prints one markdown table: per
configuration, the mean and spread over seeds of the kept round's proportion at 50 % recall,
mAP@10, the probe share held by documents outside the 10 nearest neighbours, proportion at 90 %
recall, and the training time with its simulation and TensorFlow shares.

    .venv/bin/python experiments/compare_objectives.py --features fashion_work/fashion_train.h5 \\
        --work compare_work [--configs paper rank-scan] [--seeds 0 1 2] [-j 2] [--set key=value]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

#: what each configuration changes from ``primo train``'s defaults (which are the measured
#: winner, ``paper-knn``); ``THRESHOLD`` is the paper's similarity, calibrated on these features
THRESHOLD = dict(threshold="auto", threshold_quantile=0.005)
CONFIGS = {
    "paper": dict(objective="paper", predictor="local-match", **THRESHOLD),
    "paper-scan": dict(objective="paper", predictor="scan", **THRESHOLD),
    "paper-knn": dict(),   # primo train's defaults
    "paper-knn200": dict(neighbors=200),
    "paper-knn300": dict(neighbors=300),
    "rank-local": dict(objective="rank", predictor="local-match", **THRESHOLD),
    "rank-scan": dict(objective="rank", predictor="scan", **THRESHOLD),
    "hamming": dict(objective="hamming-triplet", predictor="local-match", **THRESHOLD),
    "rank-scan-oversample": dict(objective="rank", predictor="scan", sim_candidates=4,
                                 sim_uncertain=0.25, sim_far_binders=0.25, **THRESHOLD),
}


def _parse_set(items):
    out = {}
    for item in items or []:
        k, _, v = item.partition("=")
        try:
            out[k.strip().replace("-", "_")] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip().replace("-", "_")] = v
    return out


def run_one(name, seed, args):
    from primo.parallel import get_mapper
    from primo.training.trainer import TrainSettings, train

    out = Path(args.work) / f"{name}-s{seed}"
    s = TrainSettings.from_options(**{**CONFIGS[name], **_parse_set(args.set), "seed": seed})
    resume = (out / "checkpoint" / "state.json").exists()  # an interrupted run continues
    sim = None
    if args.temperature is not None and not resume:
        from primo.thermo.simulator import Simulator

        sim = Simulator(temperature=args.temperature)
    with get_mapper(args.processes) as mp:
        train(args.features, out, None if resume else s, simulator=sim, mapper=mp,
              overwrite=not resume, resume=resume,
              log=lambda m: print(f"[{name} s{seed}] {m}", flush=True))


def summarize(card):
    ce = card.get("capture_eval") or {}
    kept = str(card["selection"]["kept_round"])
    row = dict((ce.get("rounds") or {}).get(kept) or {})
    t = card["training"]["timing"]
    tf_s = t["encoder_s"] + t["predictor_s"] + t["seed_fit_s"]
    sim_s = t["simulation_total_s"] + t["eval_s"]
    row.update({"total_s": t["total_s"], "sim_s": sim_s, "tf_s": tf_s,
                "capture_s": t.get("capture_eval_s", 0.0), "kept": int(kept)})
    return row


def fmt_pct(vals):
    """Mean ± standard deviation over seeds, the per-seed values, and how many reached it."""
    n = len(vals)
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return "not reached"
    each = " / ".join(f"{v:.2%}" for v in vals)
    if len(vals) == 1:
        out = f"{vals[0]:.2%}"
    else:
        out = f"{np.mean(vals):.2%} ± {np.std(vals, ddof=1):.2%} ({each})"
    return out if len(vals) == n else f"{out}, reached by {len(vals)} of {n} seeds"


def fmt(vals, f="{:.3f}"):
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f.format(vals[0])
    return f"{f.format(np.mean(vals))} ± {f.format(np.std(vals, ddof=1))}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--features", required=True)
    ap.add_argument("--work", default="compare_work")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--set", action="append", default=[], help="override a setting: key=value")
    ap.add_argument("--temperature", type=float, default=None,
                    help="training simulator temperature (°C; default: primo train's); the "
                         "hybridization temperature follows it unless --set hybridization_c=C")
    ap.add_argument("-j", "--processes", type=int, default=2)
    ap.add_argument("--no-train", action="store_true",
                    help="only tabulate the runs already finished")
    ap.add_argument("--run", nargs=2, metavar=("NAME", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        run_one(args.run[0], int(args.run[1]), args)
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for name in args.configs:
        if name not in CONFIGS:
            raise SystemExit(f"unknown configuration {name!r} (known: {', '.join(CONFIGS)})")
        for seed in args.seeds:
            if args.no_train or (work / f"{name}-s{seed}" / "card.json").exists():
                continue
            t = time.time()
            cmd = [sys.executable, __file__, "--features", args.features, "--work", args.work,
                   "-j", str(args.processes), "--run", name, str(seed)]
            for item in args.set:
                cmd += ["--set", item]
            if args.temperature is not None:
                cmd += ["--temperature", str(args.temperature)]
            with open(work / f"{name}-s{seed}.log", "w") as log:
                rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
            print(f"{name} seed {seed}: exit {rc} in {time.time() - t:.0f} s", flush=True)
    print("\n| configuration | seeds | proportion at 50 % recall | mAP@10 | probe on far documents "
          "| proportion at 90 % recall | kept round | training (s) | of which capture eval. (s) | simulation | TensorFlow |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.configs:
        rows = []
        for seed in args.seeds:
            p = work / f"{name}-s{seed}" / "card.json"
            if p.exists():
                rows.append(summarize(json.loads(p.read_text())))
        if not rows:
            continue
        col = lambda k: [r.get(k) for r in rows]  # noqa: E731
        tot = np.mean(col("total_s"))
        print(f"| {name} | {len(rows)} | {fmt_pct(col('capture_p50'))} | {fmt(col('capture_map10'))} "
              f"| {fmt_pct(col('capture_probe_far'))} | {fmt_pct(col('capture_p90'))} "
              f"| {', '.join(str(r['kept']) for r in rows)} | {tot:.0f} "
              f"| {np.mean(col('capture_s')):.0f} "
              f"| {np.mean(col('sim_s')) / tot:.0%} | {np.mean(col('tf_s')) / tot:.0%} |")
    print("\nCapture figures: the kept round's capture evaluation in each model card (a "
          "held-out mini-database, primo/training/capture_eval.py). Training time includes the "
          "capture evaluations (column 'of which capture eval.'); simulation = seed, fresh and "
          "held-out pairs; TensorFlow = encoder steps and predictor fits.")


if __name__ == "__main__":
    main()
