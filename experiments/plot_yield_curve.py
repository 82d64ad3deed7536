#!/usr/bin/env python
"""Simulated yield vs mismatch fraction (the S-curve): prints the table and saves a PNG.

For each mismatch fraction f, every one of ``--pairs`` random 80-nt targets is paired with a copy
of itself in which round(80 f) positions were changed to another base; the pairs are simulated
(21 °C, 1 nM each, default settings unless told otherwise) and the mean, quartiles and median
yield per fraction are printed and plotted. A JSON sidecar (PNG + ".json") records the table,
the simulator settings and provenance.

    python experiments/plot_yield_curve.py -o yield_curve.png
    python experiments/plot_yield_curve.py -o curve30.png --temperature 30 --pairs 50 -j 2
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default="yield_curve.png", help="PNG to write")
    ap.add_argument("--pairs", type=int, default=30, help="pairs per mismatch fraction")
    ap.add_argument("--step", type=float, default=0.05, help="mismatch fraction step")
    ap.add_argument("--max-fraction", type=float, default=0.8)
    ap.add_argument("--temperature", type=float, default=21.0)
    ap.add_argument("--conc", type=float, default=1e-9, help="each strand, mol/L")
    ap.add_argument("--backend", default="vienna")
    ap.add_argument("-j", "--processes", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from primo.io import atomic_file, provenance, set_command, write_json
    from primo.parallel import get_mapper
    from primo.thermo import Simulator, mutate

    set_command(["experiments/plot_yield_curve.py", *(argv if argv is not None else
                                                  __import__("sys").argv[1:])])
    rng = np.random.default_rng(args.seed)
    targets = ["".join(rng.choice(list("ACGT"), 80)) for _ in range(args.pairs)]
    fractions = np.round(np.arange(0.0, args.max_fraction + 1e-9, args.step), 4)
    tt, qq, ff = [], [], []
    for f in fractions:
        for t in targets:
            tt.append(t)
            qq.append(mutate(t, f, rng))
            ff.append(f)
    ff = np.array(ff)
    sim = Simulator(backend=args.backend, temperature=args.temperature, target_conc=args.conc,
                    query_conc=args.conc)
    with get_mapper(processes=args.processes) as mapper:
        y = sim.yields(tt, qq, mapper=mapper, progress=True)

    rows = []
    print(f"{'mismatch':>8s} {'n':>4s} {'mean':>8s} {'q25':>8s} {'median':>8s} {'q75':>8s}")
    for f in fractions:
        yf = y[ff == f]
        q25, med, q75 = np.quantile(yf, [0.25, 0.5, 0.75])
        rows.append({"mismatch_fraction": float(f), "n": int(len(yf)), "mean": float(yf.mean()),
                     "q25": float(q25), "median": float(med), "q75": float(q75)})
        print(f"{f:8.2f} {len(yf):4d} {yf.mean():8.4f} {q25:8.4f} {med:8.4f} {q75:8.4f}")

    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.array([r["mismatch_fraction"] for r in rows])
    ax.fill_between(x, [r["q25"] for r in rows], [r["q75"] for r in rows], alpha=0.25,
                    label="interquartile range")
    ax.plot(x, [r["mean"] for r in rows], "o-", label="mean")
    ax.plot(x, [r["median"] for r in rows], "--", label="median")
    ax.set_xlabel("mismatch fraction (query vs target features)")
    ax.set_ylabel("simulated duplex yield")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{sim.backend}, {args.temperature:g} °C, {args.conc:g} M each, "
                 f"{args.pairs} pairs/point", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_file(args.output, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png",
                    metadata={"Software": f"primo {provenance()['primo_version']}"})
    write_json(args.output + ".json", provenance(table=rows, simulator=sim.to_dict(),
                                                 pairs_per_point=args.pairs, seed=args.seed))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
