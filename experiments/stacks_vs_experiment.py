#!/usr/bin/env python
"""ViennaRNA's melting temperatures with either stack set against measured ones (1 M Na+).

For each duplex of ``tests/data/melting/owczarzy2004_1M.csv`` (66 non-self-complementary
10-25 bp duplexes, Owczarzy et al. 2004, Biochemistry 43:3537, 1.02 M Na+, total strand
concentration 2 uM; the file names its source), the melting temperature is computed with primo's
own simulator (:class:`primo.thermo.Simulator`, ViennaRNA backend, its default duplex initiation
and loop enthalpies): the two strands (the sequence and its reverse complement, no primer), each
at Ct/2, complexes A, B, AA, BB, AB at equilibrium; Tm is the temperature at which half of the
strands are in the duplex, ``[AB] / (Ct/2) = 0.5``, found by bisection. Na+ is taken as the
parameters' 1 M reference (no salt correction; the measurements are at 1.02 M).

Prints, for ``--stacks vienna`` and ``santalucia``, the number of duplexes, the mean absolute
error and the bias (mean of predicted - measured) in °C, also by duplex length, and the same for
the closed-form two-state nearest-neighbour Tm of SantaLucia & Hicks (2004) (their Table 1 with
initiation and terminal A·T penalty) as a reference for what the published parameters alone give.

    .venv/bin/python experiments/stacks_vs_experiment.py [--data CSV] [--per-duplex]
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "melting" / "owczarzy2004_1M.csv"
R_KCAL = 1.98720425864083e-3  # kcal/(mol K)


def read_duplexes(path=DATA) -> list[dict]:
    """Rows of a melting-temperature CSV (``#`` lines are its citation): sequence, tm_c, ..."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(line for line in fh if not line.startswith("#")))
    return [{"sequence": r["sequence"].strip().upper(), "tm_c": float(r["tm_c"]),
             "na_molar": float(r["na_molar"]),
             "strand_conc_total_m": float(r["strand_conc_total_m"])} for r in rows]


def duplex_fraction(seq: str, temperature: float, *, stacks: str, strand_conc_total: float,
                    na_molar: float = 1.0, loop_enthalpies: str = "clipped") -> float:
    """Fraction of the strands of ``seq`` and its reverse complement (each at Ct/2) in duplex."""
    from primo.thermo import Simulator

    c = strand_conc_total / 2
    sim = Simulator(temperature=temperature, target_conc=c, query_conc=c, primer="", toehold=0,
                    feature_length=None, na_molar=na_molar, stacks=stacks,
                    loop_enthalpies=loop_enthalpies, cache_strands=False)
    return float(sim.yields([seq], [seq])[0])


def melting_temperature(seq: str, *, stacks: str, strand_conc_total: float, na_molar: float = 1.0,
                        lo: float = 0.0, hi: float = 120.0, tol: float = 0.005) -> float:
    """Temperature (°C) at which half of the strands are in the duplex (bisection)."""
    def f(t):
        return duplex_fraction(seq, t, stacks=stacks, strand_conc_total=strand_conc_total,
                               na_molar=na_molar) - 0.5

    f_lo, f_hi = f(lo), f(hi)
    if not (f_lo > 0 > f_hi):
        return math.nan
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def nn_two_state_tm(seq: str, strand_conc_total: float) -> float:
    """Closed-form two-state Tm (°C) of SantaLucia & Hicks (2004), non-self-complementary duplex.

    ``Tm = dH / (dS + R ln(Ct/4))`` with Table 1's stacks (dH, and dS from dG37), duplex
    initiation (0.2, 1.96) and terminal A·T penalty (2.2, 0.05) kcal/mol per A·T end.
    """
    from primo.dna import revcomp
    from primo.thermo.vienna import SANTALUCIA_2004_STACKS

    table = {}
    for nn, (dh, _ds, dg) in SANTALUCIA_2004_STACKS.items():
        top, bottom = nn[:2], nn[3:][::-1]  # 3'->5' bottom read 5'->3'
        table[top] = table[bottom] = (dh, dg)
    dh, dg = 0.2, 1.96
    for i in range(len(seq) - 1):
        h, g = table[seq[i:i + 2]] if seq[i:i + 2] in table else \
            table[revcomp(seq[i:i + 2])]
        dh, dg = dh + h, dg + g
    for end in (seq[0], seq[-1]):
        if end in "AT":
            dh, dg = dh + 2.2, dg + 0.05
    ds = (dh - dg) / 310.15
    return dh / (ds + R_KCAL * math.log(strand_conc_total / 4)) - 273.15


def summarize(pred, meas, lengths) -> dict:
    pred, meas, lengths = map(np.asarray, (pred, meas, lengths))
    ok = np.isfinite(pred)
    err = pred[ok] - meas[ok]
    out = {"n": int(ok.sum()), "mae": float(np.mean(np.abs(err))), "bias": float(np.mean(err)),
           "rmse": float(np.sqrt(np.mean(err ** 2))), "by_length": {}}
    for n in sorted(set(lengths[ok].tolist())):
        e = err[lengths[ok] == n]
        out["by_length"][int(n)] = (len(e), float(np.mean(np.abs(e))), float(np.mean(e)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="melting-temperature CSV")
    ap.add_argument("--per-duplex", action="store_true", help="print every duplex")
    args = ap.parse_args(argv)

    rows = read_duplexes(args.data)
    meas = [r["tm_c"] for r in rows]
    lengths = [len(r["sequence"]) for r in rows]
    results = {}
    for stacks in ("vienna", "santalucia"):
        results[stacks] = [melting_temperature(r["sequence"], stacks=stacks,
                                               strand_conc_total=r["strand_conc_total_m"])
                           for r in rows]
    results["NN formula"] = [nn_two_state_tm(r["sequence"], r["strand_conc_total_m"])
                             for r in rows]
    if args.per_duplex:
        print("sequence\tmeasured\tvienna\tsantalucia\tNN formula")
        for i, r in enumerate(rows):
            print(f"{r['sequence']}\t{meas[i]:.1f}\t" + "\t".join(
                f"{results[k][i]:.1f}" for k in ("vienna", "santalucia", "NN formula")))
    print(f"{args.data.name}: {len(rows)} duplexes, Ct {rows[0]['strand_conc_total_m']:g} M, "
          f"measured at {rows[0]['na_molar']:g} M Na+ (computed at the 1 M reference)")
    print("Tm predicted - measured (°C)")
    print(f"{'model':<34}{'n':>4}{'MAE':>7}{'bias':>7}{'RMSE':>7}   by length: n, MAE, bias")
    labels = {"vienna": "ViennaRNA, --stacks vienna",
              "santalucia": "ViennaRNA, --stacks santalucia",
              "NN formula": "two-state NN formula (SL&H 2004)"}
    for key, label in labels.items():
        s = summarize(results[key], meas, lengths)
        by = "; ".join(f"{n} bp: {c}, {m:.2f}, {b:+.2f}" for n, (c, m, b) in s["by_length"].items())
        print(f"{label:<34}{s['n']:>4}{s['mae']:>7.2f}{s['bias']:>+7.2f}{s['rmse']:>7.2f}   {by}")
    return results


if __name__ == "__main__":
    main()
