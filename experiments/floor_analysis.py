#!/usr/bin/env python
"""Why unrelated feature regions bind: the random-sequence floor of the simulator.

Three measurements, each with the real simulator (ViennaRNA, DNA parameters, the paper's strands):

1. **What predicts binding among random pairs.** ``--pairs`` random 80-mer pairs are simulated at
   21 °C; for those reaching yield 0.5, how well do simple sequence features separate them from the
   rest (ROC AUC; 0.5 = no better than chance): in-register matches (overall, near the toehold,
   in the best 20-nt window), the longest run of matches in register and at any shift up to 8 nt,
   and ViennaRNA's hybrid-only duplex energy (``RNA.duplexfold``, no intramolecular structure).
   The local-match predictor of DESIGN.md sees in-register matches (and +-1 shifts) only.
2. **Hybridization temperature.** Random pairs and mutated pairs (30 % / 40 % of positions
   changed, i.e. similar documents) at ``--temperatures``.
3. **Sequence composition.** Random pairs and mutated pairs drawn from restricted families
   (GC 35 %, three-letter alphabets, alternating purine/pyrimidine) at 21 °C.

    python experiments/floor_analysis.py [--pairs 3000] [--family-pairs 600] [-j 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

BASES = np.array(list("ACGT"))


def _seqs(codes):
    return ["".join(BASES[r]) for r in codes]


def family(name, rng, n):
    """n x 80 base codes (A=0 C=1 G=2 T=3) of a sequence family."""
    if name == "uniform":
        return rng.integers(0, 4, (n, 80))
    if name == "gc35":
        return rng.choice(4, (n, 80), p=[0.325, 0.175, 0.175, 0.325])
    if name in ("ACT", "AGT", "ACG"):
        return np.array(["ACGT".index(c) for c in name])[rng.integers(0, 3, (n, 80))]
    if name == "RY":  # even positions A/G, odd positions C/T
        x = rng.integers(0, 2, (n, 80))
        return np.where(np.arange(80) % 2 == 0, np.array([0, 2])[x], np.array([1, 3])[x])
    raise SystemExit(f"unknown family {name!r}")


def mutate(codes, fraction, rng, name):
    """Change ``fraction`` of the positions of each row to another base of the family."""
    allowed = [sorted(set(family(name, np.random.default_rng(p), 400)[:, p].tolist()))
               for p in range(80)]
    out = codes.copy()
    k = int(round(fraction * codes.shape[1]))
    for r in out:
        for p in rng.choice(codes.shape[1], k, replace=False):
            r[p] = rng.choice([b for b in allowed[p] if b != r[p]])
    return out


def auc(score, label):
    """ROC AUC of ``score`` for boolean ``label`` (ties averaged)."""
    from scipy.stats import rankdata

    r = rankdata(score)
    p = int(label.sum())
    n = len(label) - p
    if p == 0 or n == 0:
        return float("nan")
    return float((r[label].sum() - p * (p + 1) / 2) / (p * n))


def _longest_run(a):
    best = np.zeros(len(a), int)
    cur = np.zeros(len(a), int)
    for j in range(a.shape[1]):
        cur = np.where(a[:, j], cur + 1, 0)
        best = np.maximum(best, cur)
    return best


def predictors_of_binding(t, q, y, n_duplex, temperature: float = 21.0):
    import RNA

    from primo.thermo import vienna as thermo_vienna
    from primo.thermo.simulator import query_strand, target_strand

    lab = y >= 0.5
    m = t == q
    cs = np.cumsum(np.pad(m, ((0, 0), (1, 0))), 1)
    shifts = []
    for s in range(-8, 9):
        a = t[:, s:] == q[:, :80 - s] if s >= 0 else t[:, :80 + s] == q[:, -s:]
        shifts.append(_longest_run(a))
    feats = {
        "in-register matches": m.sum(1),
        "in-register matches, 20 nt next to the toehold": m[:, 60:].sum(1),
        "in-register matches, best 20-nt window": (cs[:, 20:] - cs[:, :-20]).max(1),
        "longest in-register run of matches": shifts[8],
        "longest run of matches at any shift <= 8": np.max(shifts, 0),
    }
    rows = [(k, auc(v, lab), len(lab)) for k, v in feats.items()]
    thermo_vienna.ensure_parameters()
    # RNA.duplexfold takes no model details: it reads ViennaRNA's global defaults, so the
    # temperature is set there (an RNA.md() object made here would be ignored: 37 °C)
    old_t = RNA.cvar.temperature
    RNA.cvar.temperature = float(temperature)
    try:
        k = min(n_duplex, len(y))
        e = np.array([RNA.duplexfold(target_strand(a), query_strand(b)).energy
                      for a, b in zip(_seqs(t[:k]), _seqs(q[:k]))])
    finally:
        RNA.cvar.temperature = old_t
    rows.append(("ViennaRNA hybrid-only duplex energy (duplexfold)", auc(-e, lab[:k]), k))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--pairs", type=int, default=3000, help="random pairs for the AUC table")
    ap.add_argument("--duplex-pairs", type=int, default=2000,
                    help="of which scored with RNA.duplexfold")
    ap.add_argument("--family-pairs", type=int, default=600,
                    help="random pairs per temperature / family")
    ap.add_argument("--mutant-pairs", type=int, default=150,
                    help="mutated pairs per temperature / family and mutation rate")
    ap.add_argument("--temperatures", default="21,30,40")
    ap.add_argument("--families", default="uniform,gc35,ACT,RY")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-j", "--processes", type=int, default=None)
    args = ap.parse_args(argv)

    from primo.parallel import get_mapper
    from primo.thermo.simulator import Simulator

    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    with get_mapper(args.processes) as mp:
        sim = Simulator()
        t = family("uniform", rng, args.pairs)
        q = family("uniform", rng, args.pairs)
        y = sim.yields(_seqs(t), _seqs(q), mapper=mp, progress=False)
        print(f"1. {args.pairs:,} random 80-mer pairs at 21 °C: {(y >= 0.5).mean():.2%} reach "
              f"yield 0.5 ({int((y >= 0.5).sum())} pairs). ROC AUC of simple features for them:")
        for name, a, n in predictors_of_binding(t, q, y, args.duplex_pairs, sim.temperature):
            print(f"   {a:.3f}  {name} (n={n:,})")
        print(flush=True)

        def table(label, sim, name):
            t = family(name, rng, args.family_pairs)
            q = family(name, rng, args.family_pairs)
            yr = sim.yields(_seqs(t), _seqs(q), mapper=mp, progress=False)
            k = args.mutant_pairs
            out = [f"random {(yr >= 0.5).mean():6.2%}"]
            for f in (0.3, 0.4):
                ym = sim.yields(_seqs(t[:k]), _seqs(mutate(t[:k], f, rng, name)), mapper=mp,
                                progress=False)
                out.append(f"{int(100 * f)} % mutated {(ym >= 0.5).mean():6.1%}")
            print(f"   {label:14s} " + "   ".join(out), flush=True)

        print(f"2. share of pairs reaching yield 0.5 by hybridization temperature "
              f"({args.family_pairs} random, {args.mutant_pairs} mutated pairs each):")
        for T in (float(x) for x in args.temperatures.split(",")):
            table(f"{T:g} °C", Simulator(temperature=T), "uniform")
        print()
        print("3. ... by sequence family at 21 °C:")
        for name in args.families.split(","):
            table(name, sim, name)
    print(f"\n({time.time() - t0:.0f} s on {mp.describe()})")


if __name__ == "__main__":
    sys.exit(main())
