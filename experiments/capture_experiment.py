#!/usr/bin/env python
"""Fashion-MNIST under the capture models and a protocol sweep, side by side with the ANN peers.

For each of ``--queries`` test images (seeded draw) against the 60,000 training documents, the
expensive part is done **once**: the predictor scores every document, the simulator computes the
binding energies of the top ``--refine`` documents, the query's 100 nearest documents and a
stratified ``--sample`` of the rest at the anneal's node temperatures (plus a sample of random
decoy sequences). Every setting then re-uses those energies, so the settings differ in the capture
model or protocol only:

* capture models at the default protocol (probe 0.5 nM, pool 150 nM, 95 -> T °C at 20 min/°C):
  ``anneal``, ``equilibrium``, ``independent`` (two-strand yields at 1 nM, the paper's proxy);
* the anneal with probe:pool from 1:10 to 1:3,000 (``--ratios``);
* the anneal with decoys at 10x and 100x the database (``--decoy-multiples``).

One synthesized pool serves every query and setting (the same abundances); the wet lab (bead
capture with background, PCR, sequencing at ``--reads-per-document``) turns captured fractions
into read counts. Documents are retrieved by read-count threshold, as in the paper. The peers
(HNSW, faiss IVF-Flat / IVF-PQ, annoy, LSH, MRPT) run on the same queries. Printed: the
proportion of the database retrieved at 50 % and 90 % mean 100-NN recall (Pareto interpolation,
the definition of ``primo benchmark``) with a 95 % bootstrap interval over queries, mAP@10
(relevance = same class), and the share of the probe on simulated / imputed documents. Written to
``OUT/``: ``summary.json``, ``counts.npz`` (per-query read counts per setting),
``capture_models.png`` (capture models and peers) and
``protocol_sweep.png`` (the Fig. 4-like sweep).

    python experiments/capture_experiment.py --model MODEL [--work fashion_work] [--queries 30] [-j 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def settings(n_db, ratios, multiples):
    out = [("anneal", "anneal", {}), ("equilibrium", "equilibrium", {}),
           ("independent", "independent", {})]
    for r in ratios:
        out.append((f"anneal 1:{r:g}", "anneal", {"probe_nm": 150.0 / r}))
    for m in multiples:
        out.append((f"anneal decoys {m:g}x", "anneal", {"decoys": int(m * n_db)}))
    return out


def curve_matrix(counts_by_query, nn, grid):
    """(retrieved, found) per query and threshold."""
    R = np.zeros((len(counts_by_query), len(grid)))
    F = np.zeros_like(R)
    for i, c in enumerate(counts_by_query):
        srt = np.sort(c[c > 0])
        R[i] = len(srt) - np.searchsorted(srt, grid, side="left")
        nv = c[nn[i]]
        F[i] = (nv[:, None] >= grid[None, :]).sum(axis=0)
    return R, F


def at_recall(R, F, n_db, k, rc, idx=None):
    from primo.evaluation.recall import proportion_at_recall

    if idx is not None:
        R, F = R[idx], F[idx]
    pts = list(zip(R.mean(axis=0) / n_db, F.mean(axis=0) / k))
    return proportion_at_recall(pts, rc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--work", type=Path, default=Path("fashion_work"),
                    help="holds fashion_train.h5 / fashion_test.h5 (made by train_fashion.py)")
    ap.add_argument("--features", type=Path, default=None)
    ap.add_argument("--test-features", type=Path, default=None)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("-o", "--output", type=Path, default=None)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--first", type=int, default=None,
                    help="run only the first N of the --queries drawn (in test-set order), so "
                         "that a shorter run uses a subset of a longer one's queries")
    ap.add_argument("--refine", type=int, default=300)
    ap.add_argument("--sample", type=int, default=500)
    ap.add_argument("--decoy-sample", type=int, default=300)
    ap.add_argument("--ratios", type=float, nargs="*", default=[10, 30, 100, 1000, 3000])
    ap.add_argument("--decoy-multiples", type=float, nargs="*", default=[10, 100])
    ap.add_argument("--reads-per-document", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--anneal-to", type=float, default=None,
                    help="end of the anneal, °C (default: the model card's hybridization temperature)")
    ap.add_argument("--loop-enthalpies", choices=["card", "clipped", "shipped"], default="card",
                    help="ViennaRNA loop enthalpies: the model card's (default), or override "
                         "(cards written before the option say nothing and load as shipped)")
    ap.add_argument("-j", "--processes", type=int, default=None)
    args = ap.parse_args()
    feats = args.features or args.work / "fashion_train.h5"
    tfeats = args.test_features or args.work / "fashion_test.h5"
    out = args.output or args.work / f"capture-{args.model.name}"
    out.mkdir(parents=True, exist_ok=True)

    from primo.benchmark.core import run_benchmark
    from primo.evaluation.neighbors import exact_knn
    from primo.evaluation.recall import map_at_k_from_scores
    from primo.simulation.wetlab import WetLabModel, pool_abundance, simulate_counts
    import primo  # noqa: F401  (importing primo silences TensorFlow's start-up lines)
    from primo.features.store import FeatureStore
    from primo.model_dir import load_model
    from primo.parallel import get_mapper
    from primo.simulation import capture_from_ramp, protocol_simulator, query_ramp_energies
    from primo.simulation.capture import Protocol
    from primo.simulation.search import load_database, predict_all, simulator_for

    import tensorflow  # noqa: F401
    model = load_model(args.model)
    sim = simulator_for(model, loop_enthalpies=None if args.loop_enthalpies == "card"
                        else args.loop_enthalpies)
    t_card = sim.temperature
    with FeatureStore.open(feats) as st:
        X, ids, labels = st.read(0, st.n), np.asarray(st.ids), st.labels
    rng = np.random.default_rng(args.seed)
    with FeatureStore.open(tfeats) as st:
        rows = np.sort(rng.choice(st.n, args.queries, replace=False))[:args.first]
        Q = st.read(0, st.n)[rows]
        qids = [str(i) for i in np.asarray(st.ids)[rows]]
        qlab = st.labels[rows]
    n = len(X)
    k = 100
    nn, _ = exact_knn(X, Q, k)
    db = load_database(model, features=feats, progress=False)
    q_seqs = model.encode_features(Q)
    # the protocol ends at --anneal-to, else at the hybridization temperature the card names
    # (the training simulator's temperature for cards written before the field)
    anneal_to = model.hybridization_c if args.anneal_to is None else args.anneal_to
    # a model trained at another temperature is captured at this protocol's end temperature
    base = Protocol(anneal_to=anneal_to)
    sim = protocol_simulator(base, sim)
    sets = settings(n, args.ratios, args.decoy_multiples)
    max_decoys = max([p.get("decoys", 0) for _, _, p in sets] + [0])
    wet = WetLabModel(reads_per_document=args.reads_per_document)
    abundance = pool_abundance(n, wet, np.random.default_rng([args.seed, 1]))
    counts = {label: [] for label, _, _ in sets}
    stats = {label: [] for label, _, _ in sets}
    t_sim = t_cap = 0.0
    t0 = time.time()
    with get_mapper(processes=args.processes) as mapper:
        for j, q in enumerate(q_seqs):
            qrng = np.random.default_rng([args.seed, 2, j])
            pred = predict_all(model, db, q, progress=False)
            t = time.time()
            # the anneal's energies, once per query, for every setting below
            en = query_ramp_energies(model, db, q, base, sim, capture="anneal",
                                     refine=args.refine, must=nn[j], sample=args.sample,
                                     decoys=max_decoys, decoy_sample=args.decoy_sample,
                                     predicted=pred, rng=qrng, mapper=mapper)
            t_sim += time.time() - t
            t = time.time()
            for si, (label, cap_model, kw) in enumerate(sets):
                proto = dataclasses.replace(base, **kw)
                cap = capture_from_ramp(en, proto, sim, abundance, capture=cap_model)
                c = simulate_counts(cap.fraction, wet, rng=np.random.default_rng(
                    [args.seed, 3, j, si]), abundance=abundance)
                counts[label].append(c)
                stats[label].append(cap.stats)
            t_cap += time.time() - t
            print(f"query {j + 1}/{len(q_seqs)} ({qids[j]}): "
                  f"{len(en.selection.simulated)} simulated, "
                  f"{time.time() - t0:.0f} s", flush=True)

    # curves, bootstrap over queries
    boot = np.random.default_rng([args.seed, 4])
    B = 200
    res = {}
    for label, _, _ in sets:
        C = counts[label]
        mx = max(float(c.max()) for c in C)
        grid = np.unique(np.logspace(0, np.log10(max(mx, 1)), 500).astype(np.int64)).astype(float)
        R, F = curve_matrix(C, nn, grid)
        d = {}
        for rc in (0.5, 0.9):
            v = at_recall(R, F, n, k, rc)
            bs = [at_recall(R, F, n, k, rc, boot.integers(0, len(C), len(C))) for _ in range(B)]
            bs = [b for b in bs if b is not None]
            d[f"{rc:g}"] = {"proportion": v,
                            "interval95": ([float(np.percentile(bs, 2.5)),
                                            float(np.percentile(bs, 97.5))]
                                           if len(bs) >= 0.9 * B else None),
                            "bootstrap_reached": len(bs) / B}
        m, _ = map_at_k_from_scores(np.stack(C), labels, qlab, k=10)
        st = stats[label]
        capd = {}
        if st and "probe_bound_simulated" in st[0]:
            for key in ("probe_bound_simulated", "probe_bound_imputed", "probe_bound_decoys",
                        "probe_free", "documents_captured_half"):
                capd[key] = float(np.mean([s[key] for s in st]))
        res[label] = {"at_recall": d, "map_at_10": float(m), "capture": capd,
                      "points": [(float(p), float(r)) for p, r in
                                 zip(R.mean(axis=0) / n, F.mean(axis=0) / k)]}
    peers = {}
    if not args.no_peers:
        br = run_benchmark(X, Q, qids, k=k, nn=nn)
        for alg, v in br.summary().items():
            peers[alg] = v.get("proportion_at_recall")
        from primo.benchmark.core import mean_points
        from primo.evaluation.recall import pareto_frontier

        peer_pts = {a: [(p, r) for p, r, *_ in pareto_frontier(pts)]
                    for a, pts in mean_points(br.rows).items()}
    else:
        peer_pts = {}
    from primo.evaluation.neighbors import map_at_k

    exact_map = float(map_at_k(Q, qlab, X, labels, k=10))
    summary = {"queries": len(qids), "documents": n, "model": str(args.model),
               "model_temperature_c": t_card, "anneal_to_c": base.anneal_to,
               "simulator": sim.to_dict(), "refine": args.refine, "sample": args.sample,
               "decoy_sample": args.decoy_sample, "reads_per_document": args.reads_per_document,
               "protocol": base.to_dict(), "simulation_s": round(t_sim, 1),
               "capture_s": round(t_cap, 1), "settings": res, "peers": peers,
               "map_at_10_exact": exact_map}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    # per-query read counts, so that a subset of queries or another statistic can be computed
    # later without simulating again
    np.savez_compressed(out / "counts.npz", query_ids=np.asarray(qids), nearest=nn,
                        **{label.replace(" ", "_"): np.stack(counts[label]).astype(np.float32)
                           for label, _, _ in sets})

    def fmt(x):
        return "not reached" if x is None else f"{100 * x:.3f} %"

    def iv(d):
        i = d.get("interval95")
        return "" if not i else f" [{100 * i[0]:.2f}–{100 * i[1]:.2f}]"

    print(f"\nFashion-MNIST, {n:,} documents, {len(qids)} queries, model at {t_card:g} °C "
          f"({args.model}); energies {t_sim:.0f} s, captures {t_cap:.0f} s")
    print("| setting | 50 % recall at | 90 % recall at | mAP@10 | probe on simulated / imputed "
          "/ decoys / free |")
    print("| --- | --- | --- | --- | --- |")
    for label, v in res.items():
        a5, a9 = v["at_recall"]["0.5"], v["at_recall"]["0.9"]
        c = v["capture"]
        share = (f"{c['probe_bound_simulated']:.1%} / {c['probe_bound_imputed']:.1%} / "
                 f"{c['probe_bound_decoys']:.1%} / {c['probe_free']:.1%}") if c else "—"
        print(f"| primo {label} | {fmt(a5['proportion'])}{iv(a5)} | {fmt(a9['proportion'])}"
              f"{iv(a9)} | {v['map_at_10']:.3f} | {share} |")
    for alg, at in peers.items():
        print(f"| {alg} | {fmt(at.get('0.5'))} | {fmt(at.get('0.9'))} | | |")
    print(f"mAP@10 of exact search on the embedding: {exact_map:.3f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from primo.evaluation.recall import pareto_frontier

    def draw(path, labels_, title, with_peers):
        fig, ax = plt.subplots(figsize=(7.5, 5.2))
        for lab in labels_:
            pts = pareto_frontier(res[lab]["points"])
            ax.plot([p for p, _ in pts], [r for _, r in pts], lw=2, label=f"primo {lab}")
        if with_peers:
            for a, pts in peer_pts.items():
                if a == "primo":
                    continue
                ax.plot([p for p, _ in pts], [r for _, r in pts], lw=1, ls="--", label=a)
        xs = np.logspace(-4, 0, 100)
        ax.plot(xs, xs, color="grey", lw=1, ls=":", label="chance")
        ax.plot(np.minimum(xs, k / n), np.minimum(xs * n / k, 1), color="black", lw=1, ls=":",
                label="oracle")
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("proportion of the database retrieved (sequenced)")
        ax.set_ylabel("mean recall of the 100 nearest neighbours")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    draw(out / "capture_models.png", ["anneal", "equilibrium", "independent"],
         f"Fashion-MNIST, {len(qids)} queries: capture models vs peers", True)
    sweep = [lab for lab, _, _ in sets if lab.startswith("anneal ")] + ["anneal"]
    draw(out / "protocol_sweep.png", sweep,
         f"Fashion-MNIST, {len(qids)} queries: probe:pool and decoys (anneal)", False)
    print(f"wrote {out}/summary.json, capture_models.png, protocol_sweep.png")


if __name__ == "__main__":
    main()
