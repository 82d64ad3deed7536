#!/usr/bin/env python
"""One query's capture, document by document: who takes the probe during the anneal (issue 16).

Re-runs one query of ``experiments/capture_experiment.py`` (same seeded pool, selection and energies:
pass the run's ``counts.npz`` and the query's index in it) and prints:

* the probe's split between simulated and imputed documents;
* for the query's nearest neighbours, their binding free energy at the final temperature, the
  temperature at which their duplex with the probe locks during the anneal (``K >= k_on * t_step``;
  the earliest lockers keep the probe), their captured fraction and their Hamming distance to the
  query's feature region;
* the non-neighbours that lock earliest, and the donors whose energies the most imputed documents
  borrow (``n imputed``: how many unsimulated documents copy that donor).

    .venv/bin/python experiments/trace_capture.py --model MODEL --counts RUN/counts.npz --query 13 \\
        [--work fashion_work] [--refine 100] [--sample 100] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--counts", type=Path, required=True, help="counts.npz of capture_experiment")
    ap.add_argument("--query", type=int, required=True, help="index of the query in counts.npz")
    ap.add_argument("--work", type=Path, default=Path("fashion_work"),
                    help="holds fashion_train.h5 / fashion_test.h5 (as for capture_experiment.py)")
    ap.add_argument("--refine", type=int, default=100)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loop-enthalpies", choices=["card", "clipped", "shipped"], default="card",
                    help="ViennaRNA loop enthalpies (as in the capture_experiment run traced)")
    args = ap.parse_args(argv)

    import primo  # noqa: F401  (importing primo silences TensorFlow's start-up lines)
    from primo.features.store import FeatureStore
    from primo.model_dir import load_model
    from primo.parallel import get_mapper
    from primo.simulation import capture_from_ramp, protocol_simulator, query_ramp_energies
    from primo.simulation.capture import Protocol
    from primo.simulation.search import load_database, predict_all, simulator_for
    from primo.simulation.wetlab import WetLabModel, pool_abundance

    import tensorflow  # noqa: F401
    z = np.load(args.counts)
    J = args.query
    nn = z["nearest"][J]
    model = load_model(args.model)
    sim = simulator_for(model, loop_enthalpies=None if args.loop_enthalpies == "card"
                        else args.loop_enthalpies)
    with FeatureStore.open(args.work / "fashion_test.h5") as st:
        pos = {v: i for i, v in enumerate(np.asarray(st.ids).astype(str))}
        Q = st.read(0, st.n)[[pos[str(z["query_ids"][J])]]]
    db = load_database(model, features=args.work / "fashion_train.h5", progress=False)
    q = model.encode_features(Q)[0]
    pred = predict_all(model, db, q, progress=False)
    n = len(pred)
    base = Protocol(anneal_to=model.hybridization_c)  # the protocol ends where the lab hybridizes
    sim = protocol_simulator(base, sim)
    wet = WetLabModel(reads_per_document=10.0)
    ab = pool_abundance(n, wet, np.random.default_rng([args.seed, 1]))
    rng = np.random.default_rng([args.seed, 2, J])   # as capture_experiment draws it
    with get_mapper(processes=1) as mp:
        en = query_ramp_energies(model, db, q, base, sim, capture="anneal", refine=args.refine,
                                 must=nn, sample=args.sample, decoys=0, decoy_sample=300,
                                 predicted=pred, rng=rng, mapper=mp)
    cap = capture_from_ramp(en, base, sim, ab, capture="anneal")
    th, simpos, frac = en.thermo, np.asarray(en.selection.simulated), cap.fraction
    ramp = base.ramp()
    lk = np.stack([th.log_k(t)[0][:len(simpos)] for t in ramp])
    locked = lk >= base.lock_log_k
    lock_t = np.where(locked.any(0), ramp[np.argmax(locked, 0)], np.nan)
    row_of = {int(p): i for i, p in enumerate(simpos)}

    def seq(d):
        return db.sequences([int(d)])[0]

    def ham(d):
        return sum(a != b for a, b in zip(seq(d), q))

    st = cap.stats
    print(f"query {z['query_ids'][J]}: probe on simulated documents "
          f"{st['probe_bound_simulated']:.1%}, on imputed {st['probe_bound_imputed']:.1%}, free "
          f"{st['probe_free']:.1%}; documents simulated {len(simpos)}")
    print("neighbour rank | dG at the final temperature (kcal/mol) | locks at (°C) | captured "
          "fraction | Hamming distance to the query")
    for r in sorted(set(list(range(10)) + [19, 49, len(nn) - 1])):
        i = row_of[int(nn[r])]
        print(f"{r + 1} | {th.dg_ab[i, 0]:.1f} | {lock_t[i]:g} | {frac[nn[r]]:.2e} | {ham(nn[r])}")
    nnset = set(int(d) for d in nn)
    others = [i for i, p in enumerate(simpos) if int(p) not in nnset]
    first = sorted(others, key=lambda i: -np.nan_to_num(lock_t[i], nan=0.0))[:10]
    print("non-neighbours that lock first: document | dG | locks at | fraction | Hamming | "
          "predicted")
    for i in first:
        d = int(simpos[i])
        print(f"{d} | {th.dg_ab[i, 0]:.1f} | {lock_t[i]:g} | {frac[d]:.2e} | {ham(d)} | "
              f"{pred[d]:.3f}")
    bins = [20, 30, 40, 50, 60, 70, 80, 90, 96]
    for name, rows in (("neighbours", [row_of[int(d)] for d in nn]), ("others", others)):
        t = lock_t[rows]
        print(f"lock temperatures, {name} ({len(rows)}): "
              + ", ".join(f"{a}-{b} °C {c}" for a, b, c in
                          zip(bins, bins[1:], np.histogram(t[np.isfinite(t)], bins)[0]))
              + f", never {int((~np.isfinite(t)).sum())}")
    don = en.donor
    imp = np.flatnonzero((don >= 0) & ~np.isin(np.arange(n), simpos))
    dons, cnt = np.unique(don[imp], return_counts=True)
    print(f"imputed documents {len(imp)}, captured {frac[imp].sum():.1f} document-equivalents; "
          f"donors that lock first: donor | n imputed | locks at | dG | predicted")
    order = sorted(zip(dons, cnt), key=lambda x: -np.nan_to_num(lock_t[row_of[int(x[0])]],
                                                                 nan=0.0))[:8]
    for d, c in order:
        i = row_of[int(d)]
        print(f"{int(d)} | {int(c)} | {lock_t[i]:g} | {th.dg_ab[i, 0]:.1f} | {pred[d]:.3f}")


if __name__ == "__main__":
    main()
