#!/usr/bin/env python
"""The Fashion-MNIST experiment: primo's simulated search against in-silico peers.

Database = the 60,000 Fashion-MNIST training images; queries = ``--queries`` (default 100) images of
the test split (seeded draw); features = the bundled 64-d triplet-loss embedding (learned) and raw
pixels (784-d). Steps, each skipped when its output exists in ``WORK/``:

1. features: ``primo extract --fashion-mnist train|test --model fashion-embed|pixels``;
2. the model: ``--model MODEL`` (e.g. made by ``experiments/train_fashion.py``), or trained here with the
   settings of ``experiments/train_fashion.py``;
3. ``primo simulate``: each query's probe against the 60,000 documents (predictor for all, the
   simulator refining the top ``--refine``, the 100 nearest documents and a random ``--sample`` of
   the rest, whose yields are imputed to the documents not simulated), the wet lab, read counts;
4. ``primo benchmark`` on the learned features (primo's counts + HNSW, faiss IVF-Flat / IVF-PQ,
   annoy, LSH, MRPT, chance, oracle) and on raw pixels (the same peers in pixel space; primo's
   counts — from the embedding model — measured against the pixel-space neighbours);
5. a summary: proportion of the database retrieved at 50% and 90% mean 100-NN recall for primo and
   each peer, mAP@10 of primo's ranking by read count (relevance = same class) and of exact search;
   with ``--input-library R`` (default 10 reads per document) also primo ranked by enrichment over
   the simulated input library (the pool sequenced without hybridization; ``benchmark-enrichment/``).

    python experiments/fashion_experiment.py [--work fashion_work] [--model MODEL] [--queries 100]
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
PRIMO = [sys.executable, "-m", "primo"]


def primo(*args):
    t = time.time()
    r = subprocess.run(PRIMO + [str(a) for a in args])
    if r.returncode:
        sys.exit(f"primo {args[0]} failed (exit {r.returncode})")
    return time.time() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--work", type=Path, default=Path("fashion_work"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--refine", type=int, default=300)
    ap.add_argument("--sample", type=int, default=500,
                    help="documents outside the refined set and the 100-NN simulated per query; "
                         "their yields are imputed to the rest (see primo simulate --sample)")
    ap.add_argument("--reads-per-document", type=float, default=10.0)
    ap.add_argument("--input-library", type=float, default=10.0,
                    help="reads per document of the simulated input library (0: none); primo is "
                         "then also ranked by enrichment over it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-j", "--processes", type=int, default=None)
    args = ap.parse_args()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    jobs = [] if args.processes is None else ["-j", args.processes]
    timings = {}

    # 1. features
    for split in ("train", "test"):
        for model, tag in (("fashion-embed", "embed"), ("pixels", "pixels")):
            out = w / f"{split}-{tag}.h5"
            if not out.exists():
                timings[f"extract {split} {tag}"] = primo("extract", "--fashion-mnist", split,
                                                          "--model", model, "-o", out)

    # 2. model
    model = args.model or w / "model"
    if not Path(model).exists():
        t = time.time()
        r = subprocess.run([sys.executable, str(Path(__file__).parent / "train_fashion.py"),
                            "--work", str(w), "--features", str(w / "train-embed.h5"),
                            "--test-features", str(w / "test-embed.h5"), "-o", str(model)]
                           + [str(x) for x in jobs])
        if r.returncode:
            sys.exit("training failed")
        timings["train"] = time.time() - t

    # queries: a seeded draw from the test split, in both feature spaces
    import numpy as np

    from primo.features.store import FeatureStore, write_features

    rng = np.random.default_rng(args.seed)
    with FeatureStore.open(w / "test-embed.h5") as st:
        n_test = st.n
        rows = np.sort(rng.choice(n_test, args.queries, replace=False))
        qids = [str(i) for i in np.asarray(st.ids)[rows]]
        labels_test = st.labels
    for tag in ("embed", "pixels"):
        q = w / f"queries-{tag}.h5"
        if not q.exists():
            with FeatureStore.open(w / f"test-{tag}.h5") as st:
                write_features(q, qids, st.read_ids(qids), st.metadata,
                               labels=None if st.labels is None else st.labels[rows])
    # labels file for mAP@k (documents and queries)
    lab = w / "labels.csv"
    if not lab.exists():
        with open(lab, "w") as fh:
            fh.write("ImageID,Label\n")
            with FeatureStore.open(w / "train-embed.h5") as st:
                for i, l in zip(np.asarray(st.ids).tolist(), st.labels.tolist()):
                    fh.write(f"{i},{l}\n")
            for i, l in zip(qids, labels_test[rows].tolist()):
                fh.write(f"{i},{l}\n")

    # 3. simulate
    sim = w / "simulation"
    if not sim.exists():
        timings["simulate"] = primo("simulate", "-m", model, "-f", w / "train-embed.h5",
                                    "-Q", w / "queries-embed.h5", "-o", sim,
                                    "--refine", args.refine, "--sample", args.sample,
                                    "--labels", lab,
                                    "--reads-per-document", args.reads_per_document,
                                    "--input-library", args.input_library,
                                    "--seed", args.seed, *jobs)

    # 4. benchmarks
    for tag in ("embed", "pixels"):
        out = w / f"benchmark-{tag}"
        if not out.exists():
            timings[f"benchmark {tag}"] = primo(
                "benchmark", "-f", w / f"train-{tag}.h5", "-Q", w / f"queries-{tag}.h5",
                "-o", out, "--counts-dir", sim,
                "--title", f"Fashion-MNIST, {'learned embedding' if tag == 'embed' else 'raw pixels'}"
                f": 60,000 documents, {args.queries} queries", *jobs)

    if args.input_library > 0 and not (w / "benchmark-enrichment").exists():
        timings["benchmark enrichment"] = primo(
            "benchmark", "-f", w / "train-embed.h5", "-Q", w / "queries-embed.h5",
            "-o", w / "benchmark-enrichment", "--counts-dir", sim, "--ranking", "enrichment",
            "--peers", "none", "--title", "Fashion-MNIST, primo ranked by enrichment", *jobs)

    # 5. summary
    simsum = json.loads((sim / "summary.json").read_text())
    maps = [q.get("map_at_k", {}).get("10") for q in simsum["queries"]]
    maps = [m for m in maps if m is not None]
    from primo.evaluation.neighbors import map_at_k

    with FeatureStore.open(w / "train-embed.h5") as st:
        dbX, dbL = st.read(0, st.n), st.labels
    with FeatureStore.open(w / "queries-embed.h5") as st:
        qX, qL = st.read(0, st.n), st.labels
    exact_map = float(map_at_k(qX, qL, dbX, dbL, k=10))
    print()
    print(f"Fashion-MNIST: 60,000 documents, {args.queries} test queries; "
          f"model {model}; refine {args.refine}, sample {args.sample}")
    print(f"mAP@10: primo (ranking by read count) {np.mean(maps):.4f}; exact search on the "
          f"embedding {exact_map:.4f}")
    est = [q.get("estimated_binders_outside_refined") for q in simsum["queries"]]
    est = [e for e in est if e is not None]
    if est:
        print(f"documents binding at yield >= 0.5 outside the refined set and the 100-NN "
              f"(estimated from the sample): mean {np.mean(est):,.0f} per query "
              f"({np.mean(est) / 60000:.2%} of the database)")
    emaps = [(q.get("enrichment") or {}).get("map_at_k", {}).get("10") for q in simsum["queries"]]
    emaps = [m for m in emaps if m is not None]
    if emaps:
        print(f"mAP@10: primo ranked by enrichment over the input library ({args.input_library:g} "
              f"reads per document) {np.mean(emaps):.4f}")
    summary = {"queries": args.queries, "model": str(model), "map_at_10_primo": float(np.mean(maps)),
               "map_at_10_primo_enrichment": float(np.mean(emaps)) if emaps else None,
               "input_library_reads_per_document": args.input_library,
               "refine": args.refine, "sample": args.sample,
               "estimated_binders_outside_refined_mean": float(np.mean(est)) if est else None,
               "map_at_10_exact_embedding": exact_map, "timings_s": timings, "benchmarks": {}}
    for tag in ("embed", "pixels"):
        b = json.loads((w / f"benchmark-{tag}" / "summary.json").read_text())
        print(f"\nproportion of the database retrieved for mean 100-NN recall "
              f"({'learned embedding' if tag == 'embed' else 'raw pixels'} neighbours):")
        print(f"  {'algorithm':12s} {'50%':>9s} {'90%':>9s}")
        rows_ = {}
        for name, v in b["algorithms"].items():
            at = v.get("proportion_at_recall") or {}
            f = (lambda x: "-" if x is None else f"{100 * x:.3f}%")
            print(f"  {name:12s} {f(at.get('0.5')):>9s} {f(at.get('0.9')):>9s}")
            rows_[name] = at
        summary["benchmarks"][tag] = rows_
        if tag == "embed" and (w / "benchmark-enrichment").exists():
            b = json.loads((w / "benchmark-enrichment" / "summary.json").read_text())
            at = b["algorithms"]["primo"].get("proportion_at_recall") or {}
            print(f"  {'primo (enr.)':12s} {f(at.get('0.5')):>9s} {f(at.get('0.9')):>9s}"
                  "   (ranked by enrichment over the input library)")
            rows_["primo-enrichment"] = at
    (w / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {w / 'summary.json'}; plots: {w}/benchmark-*/benchmarks.png")


if __name__ == "__main__":
    main()
