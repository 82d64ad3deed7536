#!/usr/bin/env python
"""How well do interpolated binding free energies follow ViennaRNA over the anneal's range?

Pairs of 80-nt feature sequences at several mismatch fractions are evaluated directly at every
temperature of a grid from the final temperature to the start of the ramp. Each scheme sees only
its own temperatures and predicts the rest:

* ``line``: the two-state line ``dG = dH - T dS`` through the final temperature and ``--line-hi``;
* ``nodes=K``: the capture model's scheme (:func:`primo.thermo.ramp.node_temperatures`,
  K temperatures evenly over the ramp, linear in between; the default is 4).

Printed per scheme: the median, 95th percentile and maximum absolute error in kcal/mol and in
decades of K, over the pairs that can lock the probe during an anneal (``K >= 1.2e9 /M`` at the
final temperature: the only pairs whose temperature dependence the capture uses) and the grid
temperatures that are not the scheme's own.

    python experiments/thermo_fit_error.py [--pairs 6] [--final 21] [--start 95] [-j 2]
"""

from __future__ import annotations

import argparse
import time


import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--pairs", type=int, default=6, help="pairs per mismatch level")
    ap.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.2, 0.3, 0.4, 0.45, 0.5],
                    help="fraction of bases changed")
    ap.add_argument("--final", type=float, default=21.0)
    ap.add_argument("--start", type=float, default=95.0)
    ap.add_argument("--step", type=float, default=5.0, help="grid spacing (°C)")
    ap.add_argument("--line-hi", type=float, default=60.0)
    ap.add_argument("--nodes", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-j", "--processes", type=int, default=None)
    args = ap.parse_args()

    from primo.parallel import get_mapper
    from primo.thermo.equilibrium import GAS_CONSTANT
    from primo.thermo.simulator import Simulator, mutate
    from primo.thermo.ramp import KELVIN, Thermo, fit_line, node_temperatures

    rng = np.random.default_rng(args.seed)
    targets, queries = [], []
    for f in args.levels:
        for _ in range(args.pairs):
            t = "".join(rng.choice(list("ACGT"), 80))
            targets.append(t)
            queries.append(mutate(t, f, rng))
    grid = list(np.arange(args.final, args.start + 1e-9, args.step))
    schemes = {"line": [args.final, args.line_hi]}
    for k in args.nodes:
        schemes[f"nodes={k}"] = [float(x) for x in node_temperatures(args.final, args.start, k)]
    temps = sorted(set(grid) | {t for v in schemes.values() for t in v})
    sim = Simulator(temperature=args.final)
    direct = {}
    t0 = time.time()
    with get_mapper(processes=args.processes) as mapper:
        for t in temps:
            direct[t] = sim.at_temperature(t).binding_energies(targets, queries, mapper=mapper)
    print(f"{len(targets)} pairs x {len(temps)} temperatures in {time.time() - t0:.0f} s")
    lock = -direct[args.final] / (GAS_CONSTANT * (args.final + KELVIN)) >= np.log(1.2e9)
    print(f"pairs that can lock the probe at {args.final:g} °C: {int(lock.sum())} of {len(lock)}")
    print("| scheme | temperatures | median kcal/mol | 95th pct | max | median decades of K "
          "| 95th pct |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, own in schemes.items():
        errs, decs = [], []
        if name == "line":
            dh, ds = fit_line(own, np.stack([direct[t] for t in own], axis=-1))
        else:
            th = Thermo(own, np.stack([direct[t] for t in own], axis=-1),
                        np.full((len(targets), len(own)), np.inf), np.full(len(own), np.inf))
        for t in grid:
            if any(abs(t - o) < 1e-9 for o in own):
                continue
            pred = dh - (t + KELVIN) * ds if name == "line" else th.dg(t)[0]
            ok = lock & np.isfinite(direct[t])
            e = np.abs(pred[ok] - direct[t][ok])
            errs.append(e)
            decs.append(e / (GAS_CONSTANT * (t + KELVIN) * np.log(10)))
        e, d = np.concatenate(errs), np.concatenate(decs)
        print(f"| {name} | {', '.join(f'{x:.1f}' for x in own)} | {np.median(e):.2f} | "
              f"{np.percentile(e, 95):.2f} | {e.max():.1f} | {np.median(d):.2f} | "
              f"{np.percentile(d, 95):.2f} |")


if __name__ == "__main__":
    main()
