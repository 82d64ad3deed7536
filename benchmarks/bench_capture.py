#!/usr/bin/env python
"""Benchmark the capture models: ``anneal`` and ``kinetic`` side by side on the same energies.

One query against 60,000 documents with the default cascade of ``primo simulate`` (the
predictor scores every document; the simulator computes the top ``--refine`` 1,000, the query's
100 nearest documents and a stratified ``--sample`` of 1,000 of the rest, imputed to the others;
imputed documents pooled per donor), in one run:

* the energies the kinetic model asks for (:func:`primo.simulation.query_ramp_energies`: 13
  nodes, every pair at 21 °C, the coarse nodes while a pair still matters, every node where a
  pair locks; :mod:`primo.thermo.ramp`, "The kinetic model's nodes"), timed, and with
  ``--time-anneal-energies`` the anneal's (every pair at the final temperature, the pairs that
  can lock at 4 nodes) too, with the simulator evaluations each made; cached in the work
  directory;
* the capture itself (:func:`primo.simulation.capture_from_ramp`) of both models on
  the **same** energies (the kinetic model's, a superset), timed over ``--repeat`` runs;

and prints both times and the ratio kinetic / anneal (goal: <= 1.5), for the capture alone and
for energies + capture.

Data: ``--features`` a database feature store (e.g. Fashion-MNIST's 60,000 training images through
the bundled ``fashion-embed`` extractor: ``primo extract`` of Debian's fashion-mnist package) and
``--queries`` a store to take the query from (row ``--query-row``); without them, the 2,000
bundled Fashion-MNIST demo images (``primo/data/fashion_demo.npz``) through the same extractor,
each repeated 30 times with a small seeded jitter (60,000 documents). A tiny model trained with
the public API on the 2,000 demo features (the benchmark times the capture, not search quality).

    python benchmarks/bench_capture.py [--workdir /tmp/primo-bench-capture] [-j 1]
        [--features train.h5 --queries test.h5] [--time-anneal-energies]
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def ensure_data(work: Path, n: int):
    from primo.cli import main
    from primo.features.datasets import demo_images
    from primo.features.store import FeatureStore, write_features

    work.mkdir(parents=True, exist_ok=True)
    base, db, model = work / "demo.h5", work / f"db-{n}.h5", work / "model"
    if not base.exists():
        paths, _ = demo_images(work / "imgs")
        r = main(["extract", str(work / "imgs"), "--model", "fashion-embed", "-o", str(base)])
        assert r.exit_code == 0, r.error
    if n and not db.exists():
        with FeatureStore.open(base) as st:
            X, ids, meta = st.read(0, st.n), np.asarray(st.ids), st.metadata
        rng = np.random.default_rng(0)
        reps = -(-n // len(X))
        Xn = np.concatenate([X + rng.normal(0, 0.05 * X.std(), X.shape).astype(X.dtype)
                             for _ in range(reps)])[:n]
        idn = [f"{i}-{r}" for r in range(reps) for i in ids][:n]
        write_features(db, idn, Xn, meta)
    if not model.exists():
        print("training a tiny model on the 2,000 demo features ...", flush=True)
        r = main(["train", "-f", str(base), "-o", str(model), "--threshold", "auto",
                  "--rounds", "1", "--steps", "20", "--seed-pairs", "100", "--seed-epochs", "2",
                  "--sim-pairs", "40", "--eval-pairs", "10", "--final-eval-pairs", "10",
                  "--hidden", "32", "--heldout-rows", "100", "--seed", "0", "-j", "1"])
        assert r.exit_code == 0, r.error
    return base, db, model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/primo-bench-capture"))
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--refine", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="captures timed (best of)")
    ap.add_argument("-j", "--processes", type=int, default=1)
    ap.add_argument("--time-anneal-energies", action="store_true",
                    help="also compute (and time) the anneal's own energies")
    ap.add_argument("--features", type=Path, default=None,
                    help="database feature store (fashion-embed features; default: the demo "
                         "images repeated to --n)")
    ap.add_argument("--queries", type=Path, default=None,
                    help="feature store to take the query from (default: the demo images)")
    ap.add_argument("--query-row", type=int, default=7, help="the query's row in it")
    args = ap.parse_args()
    base, db, model_dir = ensure_data(args.workdir, args.n if args.features is None else 0)
    if args.features is not None:
        db = args.features

    import primo  # noqa: F401  (importing primo silences TensorFlow's start-up lines)

    import tensorflow  # noqa: F401
    from primo.evaluation.neighbors import exact_knn
    from primo.features.store import FeatureStore
    from primo.model_dir import load_model
    from primo.parallel import get_mapper
    from primo.simulation import capture_from_ramp, protocol_simulator, query_ramp_energies
    from primo.simulation.capture import Protocol
    from primo.simulation.search import load_database, predict_all, simulator_for
    from primo.simulation.wetlab import WetLabModel, pool_abundance

    model = load_model(model_dir)
    sim = simulator_for(model)
    with FeatureStore.open(db) as st:
        X = st.read(0, st.n)
    with FeatureStore.open(base if args.queries is None else args.queries) as st:
        q = st.read(args.query_row, args.query_row + 1)
    n = len(X)
    nn, _ = exact_knn(X, q, 100)
    dbc = load_database(model, features=db, progress=False)
    qseq = model.encode_features(q)[0]
    proto = Protocol(anneal_to=model.hybridization_c)
    sim = protocol_simulator(proto, sim)
    abundance = pool_abundance(n, WetLabModel(), np.random.default_rng(1))
    pred = predict_all(model, dbc, qseq, progress=False)
    print(f"{n:,} documents; protocol "
          f"{proto.anneal_from:g} -> {proto.anneal_to:g} °C, {proto.minutes_per_degree:g} min/°C",
          flush=True)
    energies, t_en = {}, {}
    cache = args.workdir / f"energies-{Path(db).stem}-q{args.query_row}.pkl"
    if cache.exists():     # the simulator's part is cached: a rerun times the captures only
        with open(cache, "rb") as fh:
            energies, t_en = pickle.load(fh)
        print("energies from", cache, {k: round(v, 1) for k, v in t_en.items()})
    with get_mapper(processes=args.processes) as mapper:
        for cap in ("anneal", "kinetic") if args.time_anneal_energies else ("kinetic",):
            if cap in energies:
                continue
            sim.clear_cache()
            t = time.perf_counter()
            energies[cap] = query_ramp_energies(model, dbc, qseq, proto, sim, capture=cap,
                                                refine=args.refine, must=nn[0],
                                                sample=args.sample, predicted=pred,
                                                rng=np.random.default_rng(2), mapper=mapper)
            t_en[cap] = time.perf_counter() - t
            print(f"energies for {cap}: {t_en[cap]:.1f} s "
                  f"({len(energies[cap].thermo.nodes)} nodes)", flush=True)
            with open(cache, "wb") as fh:
                pickle.dump((energies, t_en), fh)
    th = energies["kinetic"].thermo
    print(f"documents simulated: {len(energies['kinetic'].selection.simulated):,}")
    rt = 0.0019872 * (th.nodes + 273.15)
    lk0 = -th.dg_ab[:, 0] / rt[0]
    lockable = lk0 >= proto.lock_log_k
    for cap, en in energies.items():
        ev = en.evaluated
        if ev is None:
            continue
        above = ev[:, 1:].sum(axis=1)
        print(f"pair evaluations for {cap}: {int(ev.sum()):,} ({len(ev):,} at "
              f"{en.thermo.nodes[0]:g} °C, {int(above[lockable].sum()):,} above it for the "
              f"{int(lockable.sum())} pairs that can lock, {int(above[~lockable].sum()):,} for "
              f"{int((above[~lockable] > 0).sum())} of the {int((~lockable).sum()):,} weaker ones)")
    t_cap, res = {}, {}
    for cap in ("anneal", "kinetic"):
        best = np.inf
        for _ in range(args.repeat):
            t = time.perf_counter()
            res[cap] = capture_from_ramp(energies["kinetic"], proto, sim, abundance, capture=cap)
            best = min(best, time.perf_counter() - t)
        t_cap[cap] = best
    st_k = res["kinetic"].stats
    print()
    print(f"species in the capture: {st_k['species']:,}; kinetic solver steps "
          f"{st_k['solver_steps']} (+{st_k['solver_rejected_steps']} rejected)")
    for cap in ("anneal", "kinetic"):
        s = res[cap].stats
        print(f"capture {cap:8s} {t_cap[cap]:8.3f} s   probe on simulated {s['probe_bound_simulated']:.3f}"
              f", imputed {s['probe_bound_imputed']:.3f}, free {s['probe_free']:.2e}")
    print(f"ratio kinetic / anneal, capture on the same energies: "
          f"{t_cap['kinetic'] / t_cap['anneal']:.2f}  (goal <= 1.5)")
    if "anneal" in t_en:
        ta = t_en["anneal"] + t_cap["anneal"]
        tk = t_en["kinetic"] + t_cap["kinetic"]
        print(f"energies + capture, each model's own energies: anneal {ta:.1f} s, kinetic "
              f"{tk:.1f} s, ratio {tk / ta:.2f}")
    else:
        print(f"energies for the kinetic model: {t_en['kinetic']:.1f} s (--time-anneal-energies "
              f"also times the anneal's)")
    fa, fk = res["anneal"].fraction, res["kinetic"].fraction
    near = nn[0]
    print(f"100 nearest documents captured >= 1e-3: anneal {(fa[near] >= 1e-3).sum()}, kinetic "
          f"{(fk[near] >= 1e-3).sum()}; documents captured >= 1e-3: anneal "
          f"{(fa >= 1e-3).sum():,}, kinetic {(fk >= 1e-3).sum():,}")


if __name__ == "__main__":
    main()
