#!/usr/bin/env python
"""How well does the two-state line dG(T) = dH - T dS fit ViennaRNA's binding free energies?

Pairs of 80-nt feature sequences at several mismatch fractions (and random pairs) are evaluated
directly at every temperature of a grid; dH/dS are fitted from the ``--fit`` temperatures only
(the capture model's choice: the final temperature and one higher), and the fit is compared with
the direct values at the other temperatures. Prints the median and 95th-percentile absolute error
in kcal/mol and in log10 K, per mismatch level and overall, for the pairs that matter to an
anneal (those whose K at the final temperature reaches the locking threshold).

    python scripts/thermo_fit_error.py [--pairs 12] [--fit 21 60] [--grid 21 30 40 50 60 70 80 90]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--pairs", type=int, default=12, help="pairs per mismatch level")
    ap.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.2, 0.3, 0.4, 0.5, 1.0],
                    help="fraction of bases changed (1.0 = an unrelated random sequence)")
    ap.add_argument("--fit", type=float, nargs="+", default=[21.0, 60.0])
    ap.add_argument("--grid", type=float, nargs="+",
                    default=[21.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-j", "--processes", type=int, default=None)
    args = ap.parse_args()

    from primo.parallel import get_mapper
    from primo.predictor.equilibrium import GAS_CONSTANT
    from primo.predictor.simulator import Simulator, mutate
    from primo.simulation.thermo import KELVIN, fit_line

    rng = np.random.default_rng(args.seed)
    targets, queries, level = [], [], []
    for f in args.levels:
        for _ in range(args.pairs):
            t = "".join(rng.choice(list("ACGT"), 80))
            q = "".join(rng.choice(list("ACGT"), 80)) if f >= 1 else mutate(t, f, rng)
            targets.append(t)
            queries.append(q)
            level.append(f)
    level = np.asarray(level)
    temps = sorted(set(args.grid) | set(args.fit))
    sim = Simulator(temperature=min(temps))
    direct = {}
    with get_mapper(processes=args.processes) as mapper:
        for t in temps:
            t0 = time.time()
            direct[t] = sim.at_temperature(t).binding_energies(targets, queries, mapper=mapper)
            print(f"{t:5.1f} °C: {len(targets)} pairs in {time.time() - t0:.1f} s", flush=True)
    fit_cols = np.stack([direct[t] for t in args.fit], axis=-1)
    dh, ds = fit_line(args.fit, fit_cols)
    t_final = min(args.fit)
    lock = -direct[t_final] / (GAS_CONSTANT * (t_final + KELVIN)) >= np.log(1.2e9)
    print(f"\nfit from {args.fit} °C; pairs that can lock the probe at {t_final} °C: "
          f"{int(lock.sum())} of {len(lock)}")
    print("| temperature | median |err| kcal/mol | 95th pct | median |err| log10 K | 95th pct |")
    print("| --- | --- | --- | --- | --- |")
    for t in temps:
        if t in args.fit:
            continue
        pred = dh - (t + KELVIN) * ds
        ok = lock & np.isfinite(direct[t])
        err = np.abs(pred[ok] - direct[t][ok])
        lk = err / (GAS_CONSTANT * (t + KELVIN) * np.log(10))
        print(f"| {t:.0f} °C | {np.median(err):.2f} | {np.percentile(err, 95):.2f} | "
              f"{np.median(lk):.2f} | {np.percentile(lk, 95):.2f} |")
    print("\nper mismatch level (locking pairs, all grid temperatures):")
    for f in args.levels:
        m = (level == f) & lock
        errs = [np.abs(dh[m] - (t + KELVIN) * ds[m] - direct[t][m]) for t in temps
                if t not in args.fit]
        errs = np.concatenate(errs) if errs else np.zeros(0)
        errs = errs[np.isfinite(errs)]
        med_dg = np.median(direct[t_final][level == f])
        print(f"  {f:.0%} changed: dG({t_final:.0f} °C) median {med_dg:.1f} kcal/mol, locking "
              f"{int(m.sum())}/{int((level == f).sum())}, |err| median "
              f"{np.median(errs) if errs.size else float('nan'):.2f}, max "
              f"{errs.max() if errs.size else float('nan'):.2f} kcal/mol")


if __name__ == "__main__":
    main()
