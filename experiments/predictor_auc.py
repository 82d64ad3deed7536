#!/usr/bin/env python
"""Which predictor sees the far pairs that bind? ROC AUC on held-out random 80-mer pairs.

The predictors ``primo train --predictor`` offers are fit, side by side, on the same simulated
pairs and scored on the same held-out ones:

* training: ``--train-pairs`` pairs (default 10,000), half random mutant pairs (a random target
  and a mutant of it at a rate ~ U[0, 1], 4 mutants per target: the distribution that seeds
  ``primo train``), half uniformly random pairs (the far pairs, about 3 % of which bind at 21 °C);
* test: ``--test-pairs`` new uniformly random pairs (default 3,000) and as many new mutant pairs,
  never trained on.

The labels are the simulator's (ViennaRNA, DNA parameters, 21 °C, 1 nM each): a pair *binds*
when its yield reaches 0.5. Reported per predictor: ROC AUC for "binds" among the random test
pairs (the floor of imperfect duplexes) with a 95 % bootstrap interval, among all test pairs, the
Spearman correlation of the predicted binding energy with the simulated one (predictors with an
energy head), the fit time, and the number of binders behind each AUC. Simulated pairs are cached
in ``WORK/auc_pairs_<seed>.npz`` (a re-run only refits).

    .venv/bin/python experiments/predictor_auc.py [--work auc_work] [-j 2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def auc(score, label):
    """ROC AUC (ties count half), NaN without both classes."""
    score = np.asarray(score, dtype=np.float64)
    label = np.asarray(label, dtype=bool)
    n1, n0 = int(label.sum()), int((~label).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    from scipy.stats import rankdata

    r = rankdata(score)
    return float((r[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def boot_auc(score, label, rng, n=1000):
    vals = []
    idx = np.arange(len(score))
    for _ in range(n):
        b = rng.choice(idx, len(idx))
        vals.append(auc(score[b], label[b]))
    vals = np.array(vals)
    vals = vals[np.isfinite(vals)]
    return np.quantile(vals, [0.025, 0.975]) if len(vals) else (np.nan, np.nan)


def simulate_pairs(args, work: Path):
    from primo.parallel import get_mapper
    from primo.thermo.simulator import Simulator
    from primo.training.pairs import seed_pair_codes, simulate_energies

    path = work / f"auc_pairs_{args.seed}.npz"
    if path.exists():
        d = dict(np.load(path))
        if len(d["train_t"]) >= args.train_pairs and len(d["rand_t"]) >= args.test_pairs:
            return d
    rng = np.random.default_rng(args.seed)
    h = args.train_pairs // 2
    mt, mq = seed_pair_codes(h, rng, mutants=4)
    rt = rng.integers(0, 4, (args.train_pairs - h, 80)).astype(np.uint8)
    rq = rng.integers(0, 4, (args.train_pairs - h, 80)).astype(np.uint8)
    xt, xq = seed_pair_codes(args.test_pairs, rng, mutants=4)
    ut = rng.integers(0, 4, (args.test_pairs, 80)).astype(np.uint8)
    uq = rng.integers(0, 4, (args.test_pairs, 80)).astype(np.uint8)
    sim = Simulator()
    out = {}
    t0 = time.time()
    with get_mapper(args.processes) as mp:
        for name, t, q in (("train", np.concatenate([mt, rt]), np.concatenate([mq, rq])),
                           ("rand", ut, uq), ("mut", xt, xq)):
            y, e = simulate_energies(sim, t, q, mp)
            out.update({f"{name}_t": t, f"{name}_q": q, f"{name}_y": y, f"{name}_e": e})
            print(f"simulated {len(t):,} {name} pairs ({time.time() - t0:.0f} s)", flush=True)
    out["simulate_s"] = np.array(time.time() - t0)
    np.savez(path, **out)
    return out


def fit_and_score(name, build, d, args):
    """Fit a fresh predictor as primo train's predictor phase does; scores on the test sets."""
    from primo.predictor.model import predictor_outputs
    from primo.training import TrainSettings
    from primo.training.steps import Models

    import tensorflow as tf

    kind, kw = build
    s = TrainSettings(hidden=8, predictor=kind, seed=args.seed, predictor_lr=args.lr, **kw)
    m = Models(s, 4, None, 1.0, args.seed)
    if kind == "scan" and args.loops is not None:
        from primo.predictor.model import build_scan_predictor

        m = Models(s, 4, None, 1.0, args.seed, predictor=build_scan_predictor(loops=args.loops))
    rng = np.random.default_rng(args.seed)
    energies = d["train_e"] if s.uses_energies else None
    t0 = time.time()
    m.fit_predictor(d["train_t"], d["train_q"], d["train_y"], args.epochs, 100, rng,
                    energies=energies)
    fit_s = time.time() - t0
    eye = np.eye(4, dtype=np.float32)
    res = {"predictor": name, "fit_s": fit_s}
    for split in ("rand", "mut"):
        t, q = d[f"{split}_t"], d[f"{split}_q"]
        ys, es = [], []
        for a in range(0, len(t), 1000):
            y, e = predictor_outputs(m.predictor([tf.constant(eye[t[a:a + 1000]]),
                                                  tf.constant(eye[q[a:a + 1000]])], training=False))
            ys.append(np.asarray(y).ravel())
            es.append(np.asarray(e).ravel() if e is not None else None)
        res[f"{split}_pred"] = np.concatenate(ys)
        res[f"{split}_energy"] = None if es[0] is None else np.concatenate(es)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--work", default="auc_work")
    ap.add_argument("--train-pairs", type=int, default=10000)
    ap.add_argument("--test-pairs", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--loops", type=int, default=None, help="scan: DuplexScan(loops=n)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-j", "--processes", type=int, default=2)
    args = ap.parse_args(argv)
    from scipy.stats import spearmanr

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    d = simulate_pairs(args, work)
    lab_r = d["rand_y"] >= 0.5
    lab_all = np.concatenate([lab_r, d["mut_y"] >= 0.5])
    print(f"training pairs: {len(d['train_y']):,} ({int((d['train_y'] >= 0.5).sum()):,} bind); "
          f"test: {len(lab_r):,} random pairs ({int(lab_r.sum())} bind), "
          f"{len(d['mut_y']):,} mutant pairs ({int((d['mut_y'] >= 0.5).sum())} bind); "
          f"simulation {float(d['simulate_s']):.0f} s")
    builds = [("local-match (paper)", ("local-match", {})),
              ("local-match + energy head", ("local-match", {"energy_head": True})),
              ("scan", ("scan", {}))]
    rng = np.random.default_rng(args.seed + 1)
    print("| predictor | ROC AUC, random pairs [95 % CI] | ROC AUC, all test pairs | "
          "Spearman energy (random / all) | fit (s) |")
    print("| --- | --- | --- | --- | --- |")
    for name, build in builds:
        r = fit_and_score(name, build, d, args)
        # rank by predicted energy when there is one (lower binds more), else by yield
        sc_r = -r["rand_energy"] if r["rand_energy"] is not None else r["rand_pred"]
        sc_m = -r["mut_energy"] if r["mut_energy"] is not None else r["mut_pred"]
        a_r = auc(sc_r, lab_r)
        lo, hi = boot_auc(sc_r, lab_r, rng)
        a_all = auc(np.concatenate([sc_r, sc_m]), lab_all)
        sp = "-"
        if r["rand_energy"] is not None:
            s1 = spearmanr(r["rand_energy"], d["rand_e"]).correlation
            s2 = spearmanr(np.concatenate([r["rand_energy"], r["mut_energy"]]),
                           np.concatenate([d["rand_e"], d["mut_e"]])).correlation
            sp = f"{s1:.2f} / {s2:.2f}"
        print(f"| {name} | {a_r:.3f} [{lo:.2f}-{hi:.2f}] | {a_all:.3f} | {sp} | {r['fit_s']:.0f} |",
              flush=True)
    # not learned: ViennaRNA's duplexfold at 21 °C on the random test pairs
    import RNA

    from primo.dna import decode_seqs
    from primo.thermo import vienna as thermo_vienna
    from primo.thermo.simulator import query_strand, target_strand

    thermo_vienna.ensure_parameters()
    old = RNA.cvar.temperature
    RNA.cvar.temperature = 21.0
    try:
        e = np.array([RNA.duplexfold(target_strand(a), query_strand(b)).energy
                      for a, b in zip(decode_seqs(d["rand_t"]), decode_seqs(d["rand_q"]))])
    finally:
        RNA.cvar.temperature = old
    lo, hi = boot_auc(-e, lab_r, rng)
    print(f"| ViennaRNA duplexfold MFE (not learned) | {auc(-e, lab_r):.3f} [{lo:.2f}-{hi:.2f}] "
          f"| - | - | - |")


if __name__ == "__main__":
    main()
