"""primo against in-silico similarity search: candidate-set size vs k-NN recall.

The paper (Bee et al., Fig. 4 and "Benchmarking of in silico algorithms") compares DNA similarity
search with approximate nearest-neighbor indexes on one footing. For a query, an algorithm's
*candidate set* is the set of documents it retrieves from memory and compares to the query; for
primo it is the set of documents whose read count (or simulated yield) reaches a threshold. Each
search parameter (or threshold) gives one point per query:

* proportion retrieved = |candidate set| / database size (y axis, log scale), and
* k-NN recall = (true k nearest neighbors in the candidate set) / k (x axis, log scale).

How each peer's candidate set is counted is written in :mod:`primo.benchmark.peers` (and in
``summary.json`` under ``how_counted``). The baselines are analytic: *chance* (a uniform random
subset: recall = proportion) and *oracle* (exactly the nearest neighbors: proportion = recall x
k / N). Algorithms that cannot produce small candidate sets are extended towards the origin by
uniform subsampling of their smallest candidate set, which scales size and recall by the same
factor (the paper's dashed lines).

Curves and figures are **means over queries per parameter setting** (one setting is what a user
deploys; a threshold is one setting for primo), then reduced to the Pareto frontier (no other
setting has both a smaller mean proportion and a higher mean recall). "Proportion at 50 % / 90 %
recall" is :func:`primo.evaluation.recall.proportion_at_recall` of those means: read off that
frontier by linear interpolation between neighboring settings (which a random mixture of the two
settings achieves) and from the origin to the first one (subsampling); ``None`` when the
algorithm never reaches that recall. Each figure has a 95 % bootstrap interval over queries
(``proportion_at_recall_ci95``: 1,000 seeded resamples of the queries, each read off as the figure
is; None unless 97.5 % of the resamples reach the recall, whose share is
``recall_reached_share``). When both stores carry labels, ``map_at_k`` gives mAP@10 (relevance:
the same label) of exact search and of primo's ranking by read count, with their intervals.

Exact k-NN comes from :func:`primo.evaluation.neighbors.exact_knn`, which streams the database in chunks (float32 BLAS
distances, then the best candidates of each chunk re-scored in float64; ties broken by row), so
1.6 M x 4096 databases pass in bounded memory. The peers themselves need the database in memory.

Output files (:func:`benchmark_stores`, ``primo benchmark``)
-------------------------------------------------------------
``benchmarks.csv``
    The published primo-data layout (``analysis/benchmarks.csv``), one row per algorithm, query
    and parameter setting, no comment lines::

        Algorithm,Query ID,Number Retrieved,Database Size,# of Nearest Neighbors,Nearest Neighbor Recall,Algorithm Parameters
        faiss-ivf,q0,1843,60000,100,61,nlist=980 nprobe=8

    ``Nearest Neighbor Recall`` is a *count* (how many of the ``# of Nearest Neighbors`` true
    neighbors the candidate set holds), as in the published file; divide by ``# of Nearest
    Neighbors`` for the fraction. ``Algorithm Parameters`` is ``key=value`` separated by spaces.
    Chance and oracle are plotted and summarised analytically, not written as rows.
``benchmarks.png``
    Fig. 4-style plot: mean proportion retrieved vs mean k-NN recall, log-log, one colour per
    algorithm (frontier line, dashed subsampling extension, faint dots for every setting), chance
    (grey dashed) and oracle (grey dash-dot).
``summary.json``
    ``provenance``, the parameters (k, database size, dimension, queries, peers and their
    options, seed), ``skipped`` peers with the reason, ``how_counted`` per algorithm, and per
    algorithm: settings measured, best mean recall, build and search seconds, and
    ``proportion_at_recall`` / ``retrieved_at_recall`` for 50 % and 90 %.

primo curves come from read counts or yields (``ImageID,Count`` tables, one per query; a
document absent from the table has count 0) thresholded on a shared log-spaced grid
(:func:`primo_rows_from_counts`), or from precomputed points in the benchmarks layout
(:func:`read_primo_curve`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
import warnings

import numpy as np

from ..errors import DataError, UsageError
from ..evaluation.neighbors import exact_knn
from ..evaluation.bootstrap import bootstrap_mean, bootstrap_proportion_at_recall
from ..evaluation.recall import pareto_frontier, proportion_at_recall, recall_key
from ..io import atomic_dir, open_output, provenance, write_json
# a row of benchmarks.csv and primo's curves are modules of their own; every name is importable
# from here
from .primo_curves import (PRIMO_HOW_COUNTED, _check_magnitude, _magnitude_limit,
                           primo_rows_from_counts, primo_rows_from_points, read_counts_dir,
                           read_counts_table, read_primo_curve)
from .rows import BENCHMARK_COLUMNS, BenchmarkRow

__all__ = [
    "BENCHMARK_COLUMNS", "BenchmarkRow", "BenchmarkResult", "PeerSkippedWarning",
    "run_benchmark", "run_peers", "primo_rows_from_counts", "primo_rows_from_points",
    "read_counts_table", "read_counts_dir", "read_primo_curve", "mean_points",
    "write_benchmarks_csv", "plot_benchmark", "benchmark_stores",
    "check_inputs",
]

#: recall levels reported in the summary
SUMMARY_RECALLS = (0.5, 0.9)


class PeerSkippedWarning(UserWarning):
    """A peer was skipped (its library is missing); the message is one line."""


# ------------------------------------------------------------------------------------ peers
def run_peers(X, Q, query_ids, nn, k, peers, progress_cb=None):
    """Build each peer over ``X`` and sweep its parameters on ``Q``.

    Returns ``(rows, info)`` where ``info[name]`` holds ``build_s``, ``search_s`` and
    ``how_counted``.
    """
    N = X.shape[0]
    rows, info = [], {}
    X = np.ascontiguousarray(X, dtype=np.float32)
    Q = np.ascontiguousarray(Q, dtype=np.float32)
    from ..progress import progress

    bar = progress(total=len(peers), desc="peers", unit="peer")
    for peer in peers:
        bar.set_postfix_str(peer.name)
        t0 = time.perf_counter()
        peer.build(X)
        t1 = time.perf_counter()
        n_settings = 0
        for point in peer.sweep(Q, nn, k):
            n_settings += 1
            for qid, nr, nf in zip(query_ids, point.n_retrieved.tolist(), point.n_found.tolist()):
                rows.append(BenchmarkRow(peer.name, str(qid), int(nr), N, k, int(nf), point.params))
            if progress_cb:
                progress_cb(peer.name, point)
        t2 = time.perf_counter()
        info[peer.name] = {"build_s": round(t1 - t0, 3), "search_s": round(t2 - t1, 3),
                           "settings": n_settings, "how_counted": peer.how_counted}
        # free the index before the next peer is built
        for attr in ("index", "lsh", "X", "_indexes", "quantizer", "_list_ids"):
            if hasattr(peer, attr):
                setattr(peer, attr, None)
        bar.update(1)
    bar.close()
    return rows, info


# ------------------------------------------------------------------------------------ curves
def mean_points(rows):
    """Mean (proportion retrieved, recall fraction) per algorithm and parameter setting.

    Returns ``{algorithm: [(mean proportion, mean recall, params, n queries), ...]}``.
    """
    acc: dict = {}
    for r in rows:
        key = (r.algorithm, r.params)
        a = acc.setdefault(key, [0.0, 0.0, 0])
        a[0] += r.n_retrieved / r.db_size
        a[1] += r.n_found / r.k
        a[2] += 1
    out: dict = {}
    for (alg, params), (p, rc, n) in acc.items():
        out.setdefault(alg, []).append((p / n, rc / n, params, n))
    return out


def query_matrices(rows, query_ids):
    """Per algorithm, ``(proportion, recall)`` arrays of shape ``(queries, settings)`` (NaN where a
    query has no row for a setting), the queries in ``query_ids`` order: what the bootstrap over
    queries resamples."""
    qpos = {q: i for i, q in enumerate(query_ids)}
    cols: dict = {}
    for r in rows:
        cols.setdefault(r.algorithm, {}).setdefault(r.params, len(cols[r.algorithm]))
    out = {a: (np.full((len(query_ids), len(c)), np.nan), np.full((len(query_ids), len(c)), np.nan))
           for a, c in cols.items()}
    for r in rows:
        i = qpos.get(r.query_id)
        if i is not None:
            P, R = out[r.algorithm]
            j = cols[r.algorithm][r.params]
            P[i, j], R[i, j] = r.n_retrieved / r.db_size, r.n_found / r.k
    return {a: (P[np.isfinite(P).any(axis=1)], R[np.isfinite(P).any(axis=1)])
            for a, (P, R) in out.items()}


# ------------------------------------------------------------------------------------ results
@dataclasses.dataclass
class BenchmarkResult:
    """Rows of every algorithm plus what the summary and plot need."""

    rows: list
    db_size: int
    dim: int
    k: int
    query_ids: list
    skipped: list
    info: dict
    seed: int = 0
    peer_options: dict = dataclasses.field(default_factory=dict)

    def points(self):
        return mean_points(self.rows)

    def summary(self, recalls=SUMMARY_RECALLS) -> dict:
        """Per algorithm: best mean recall and the proportion needed at each recall level."""
        algs = {}
        mats = query_matrices(self.rows, self.query_ids)
        for alg, pts in self.points().items():
            d = {"settings": len(pts), "best_mean_recall": round(max(p[1] for p in pts), 4)}
            boot = bootstrap_proportion_at_recall(*mats[alg], recalls, seed=self.seed)
            d["proportion_at_recall_ci95"] = {k: v["ci95"] for k, v in boot.items()}
            d["recall_reached_share"] = {k: v["reached"] for k, v in boot.items()}
            d["queries"] = int(len(mats[alg][0]))
            d.update({k: v for k, v in self.info.get(alg, {}).items() if k != "how_counted"})
            d["proportion_at_recall"], d["retrieved_at_recall"], d["setting_near"] = {}, {}, {}
            d["read_off"] = {}
            front = pareto_frontier(pts)
            for rc in recalls:
                pr = proportion_at_recall(pts, rc)
                key = recall_key(rc)
                d["proportion_at_recall"][key] = None if pr is None else float(f"{pr:.6g}")
                d["retrieved_at_recall"][key] = None if pr is None else round(pr * self.db_size, 1)
                if pr is not None:
                    d["setting_near"][key] = next(p[2] for p in front if p[1] >= rc)
                    # below the smallest setting the figure is the subsampling extension
                    d["read_off"][key] = ("subsampled smallest setting" if rc < front[0][1]
                                          else "measured" if any(p[1] == rc for p in front)
                                          else "interpolated between settings")
            algs[alg] = d
        n = self.db_size
        for rc in recalls:
            key = recall_key(rc)
            algs.setdefault("chance", {"proportion_at_recall": {}, "retrieved_at_recall": {}})
            algs.setdefault("oracle", {"proportion_at_recall": {}, "retrieved_at_recall": {}})
            algs["chance"]["proportion_at_recall"][key] = rc
            algs["chance"]["retrieved_at_recall"][key] = round(rc * n, 1)
            algs["oracle"]["proportion_at_recall"][key] = float(f"{rc * self.k / n:.6g}")
            algs["oracle"]["retrieved_at_recall"][key] = round(rc * self.k, 1)
        return algs

    def how_counted(self) -> dict:
        d = {name: v["how_counted"] for name, v in self.info.items() if "how_counted" in v}
        d["chance"] = "uniform random subset: expected recall = proportion retrieved (analytic)"
        d["oracle"] = "exactly the k nearest neighbors: proportion = recall x k / N (analytic)"
        return d


def check_inputs(N: int, D: int, Q, k: int, *, features=None, queries=None):
    """Raise the benchmark's input errors: no queries, dimension mismatch, k > N."""
    Q = np.asarray(Q)
    if Q.ndim != 2 or Q.shape[0] == 0:
        raise DataError("the query store holds no queries", path=queries,
                        hint="extract at least one query image into it")
    if N == 0:
        raise DataError("the database feature store holds no documents", path=features,
                        hint="extract the database images into it")
    if Q.shape[1] != D:
        raise DataError(f"queries have {Q.shape[1]} dimensions but the database has {D}",
                        path=queries, hint="extract queries and database with the same extractor")
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}", option="k")
    if k > N:
        raise UsageError(f"k = {k} is larger than the database ({N} documents)",
                         hint=f"use {N} or less", option="k")


def run_benchmark(X, Q, query_ids=None, k: int = 100, peers=None, peer_options=None,
                  primo_rows=None, seed: int = 0, threads: int | None = None,
                  chunksize: int = 65536, mapper=None, nn=None):
    """Benchmark peers (and primo rows, if given) on an in-memory database.

    Parameters
    ----------
    X : array (N x D)
        Database vectors.
    Q : array (M x D)
        Queries.
    query_ids : list of str, optional
        Defaults to ``q0, q1, ...``.
    peers : iterable of str or str, optional
        Peer names (:data:`primo.benchmark.peers.PEERS`; default
        :data:`~primo.benchmark.peers.DEFAULT_PEERS`). A peer whose library is missing is skipped
        with a :class:`PeerSkippedWarning`. Pass ``[]`` for none.
    peer_options : dict, optional
        ``{peer: {option: value}}``, e.g. ``{"faiss-ivf": {"nlist": 256}}``.
    primo_rows : list of BenchmarkRow, or callable ``nn -> rows``, optional
        primo's rows (a callable receives the exact neighbors, for :func:`primo_rows_from_counts`).
    nn : array (M x k), optional
        Exact neighbors if already known (else computed with :func:`exact_knn`).

    Returns
    -------
    BenchmarkResult
    """
    from .peers import DEFAULT_PEERS, resolve_peers

    X = np.asarray(X, dtype=np.float32)
    Q = np.atleast_2d(np.asarray(Q, dtype=np.float32))
    N, D = X.shape
    check_inputs(N, D, Q, k)
    query_ids = [f"q{i}" for i in range(len(Q))] if query_ids is None else [str(q) for q in query_ids]
    if len(query_ids) != len(Q):
        raise UsageError(f"{len(query_ids)} query IDs for {len(Q)} queries")
    peers = DEFAULT_PEERS if peers is None else peers
    if nn is None:
        nn, _ = exact_knn(X, Q, k, chunksize=chunksize, mapper=mapper)
    rows, skipped = [], []
    if peers:
        peer_objs, skipped = resolve_peers(peers, peer_options, seed=seed, threads=threads)
        for msg in skipped:
            warnings.warn(msg, PeerSkippedWarning, stacklevel=2)
        rows, info = run_peers(X, Q, query_ids, nn, k, peer_objs)
    else:
        info = {}
    if primo_rows is not None:
        pr = primo_rows(nn) if callable(primo_rows) else primo_rows
        rows.extend(pr)
        if pr:
            info.setdefault("primo", {"how_counted": PRIMO_HOW_COUNTED})
    return BenchmarkResult(rows, N, D, k, query_ids, skipped, info, seed, dict(peer_options or {}))


# ------------------------------------------------------------------------------------ output
def write_benchmarks_csv(path, rows) -> None:
    """Write rows in the published benchmarks layout (no comment lines), atomically."""
    from ..io import atomic_file

    with atomic_file(path) as tmp:
        with open_output(tmp) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(BENCHMARK_COLUMNS)
            for r in rows:
                w.writerow(r.as_csv())


_COLORS = {"primo": "tab:blue", "hnsw": "tab:orange", "hnsw-sq": "tab:red", "faiss-ivf": "tab:brown",
           "faiss-ivfpq": "tab:pink", "annoy": "tab:green", "mrpt": "tab:purple", "lsh": "tab:olive"}


def plot_benchmark(result: BenchmarkResult, path, title: str | None = None) -> None:
    """Fig. 4-style plot (mean over queries): proportion retrieved vs k-NN recall, log-log."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    N, k = result.db_size, result.k
    pts = result.points()
    fig, ax = plt.subplots(figsize=(7, 5.5))
    xmin = 1e-2
    x = np.logspace(math.log10(xmin), 0, 200)
    ax.plot(x, x, ls="--", color="grey", alpha=0.7, label="chance")
    ax.plot(x, x * k / N, ls="-.", color="grey", alpha=0.7, label="oracle")
    extra = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    order = sorted(pts, key=lambda a: (a != "primo", a))
    for alg in order:
        color = _COLORS.get(alg) or next(extra)
        allp = np.array([(p[1], p[0]) for p in pts[alg]])
        front = pareto_frontier(pts[alg])
        ax.scatter(allp[:, 0], allp[:, 1], s=6, color=color, alpha=0.25, linewidths=0)
        fr = np.array([(p[1], p[0]) for p in front if p[1] > 0])
        if len(fr) == 0:
            continue
        ax.plot(fr[:, 0], fr[:, 1], "-o", ms=3, color=color, lw=2 if alg == "primo" else 1.4,
                label=alg)
        r0, p0 = fr[0]
        if r0 > xmin:
            xs = np.array([xmin, r0])
            ax.plot(xs, p0 * xs / r0, ls="--", color=color, lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(xmin, 1.05)
    ax.set_ylim(k / N * xmin / 2, 1.5)
    ax.set_xlabel(f"{k}-nearest-neighbor recall (mean over {len(result.query_ids)} queries)")
    ax.set_ylabel("proportion of the database retrieved")
    ax.set_title(title or f"candidate set vs recall (N={N:,}, D={result.dim})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _read_store(path, what):
    from ..features.store import FeatureStore

    fs = FeatureStore.open(path)
    ids = fs.ids
    if len(ids):
        uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
        if len(uniq) != len(ids):
            d = int(np.argmax(counts > 1))
            fs.close()
            raise DataError(f"duplicate document ID {str(uniq[d])!r} ({int(counts[d])} rows) in "
                            f"the {what}", path=path, record=int(first[d]) + 1,
                            hint="document IDs must be unique; re-create the store")
    return fs, ids


def _check_same_extractor(db_meta, q_meta, queries):
    from ..features.extractors import extractor_mismatch

    diff = extractor_mismatch(q_meta, db_meta)
    if diff:
        raise DataError(f"queries and database come from different extractors ({diff})",
                        path=queries, hint="extract queries and database with the same `model` and `weights`")


#: mAP@k of the summary (relevance: the same label), as in the paper's Table 1
MAP_K = 10


def map_summary(counts, nn, query_ids, db_size: int, db_labels, query_labels, *,
                k: int = MAP_K, seed: int = 0) -> dict | None:
    """mAP@k (relevance: same label) of exact search and, given read counts, of primo's ranking
    by read count, each with a 95 % bootstrap interval over queries; None without labels on both
    sides."""
    from ..evaluation.neighbors import average_precision_at_k
    from ..evaluation.recall import map_at_k_from_scores

    if db_labels is None or query_labels is None or not len(query_ids):
        return None
    dl = np.asarray(db_labels, dtype=object)
    ql = np.asarray(query_labels, dtype=object)
    kk = min(int(k), np.asarray(nn).shape[1])
    ap = average_precision_at_k(dl[np.asarray(nn)[:, :kk]] == ql[:, None])
    out = {"k": kk, "relevance": "same label",
           "exact": {"value": float(f"{ap.mean():.6g}"), "ci95": bootstrap_mean(ap, seed=seed),
                     "queries": int(len(ap))}}
    if counts:
        per = []
        for i, q in enumerate(query_ids):
            if q in counts:
                r, v = counts[q]
                full = np.zeros(db_size)
                full[np.asarray(r, dtype=np.int64)] = np.asarray(v, dtype=float)
                per.append(map_at_k_from_scores(full, dl, ql[i], k=kk)[1][0])
        if per:
            out["primo"] = {"value": float(f"{np.mean(per):.6g}"),
                            "ci95": bootstrap_mean(per, seed=seed), "queries": len(per),
                            "ranking": "read count, ties by database position"}
    return out


def benchmark_stores(features, queries, out, k: int = 100, peers=None, peer_options=None,
                     counts_dir=None, primo_curve=None, seed: int = 0, threads: int | None = None,
                     chunksize: int | None = None, mapper=None, n_thresholds: int = 500,
                     title: str | None = None, recalls=SUMMARY_RECALLS,
                     ranking: str = "counts") -> dict:
    """Run the benchmark on two feature stores and write ``out/`` (atomically).

    ``out`` receives ``benchmarks.csv``, ``benchmarks.png`` and ``summary.json`` (see the module
    docstring). The exact neighbors stream the database; peers load it into memory (pass
    ``peers=[]`` to benchmark primo only on databases larger than memory).
    Returns the summary dict.
    """
    if counts_dir is not None and primo_curve is not None:
        raise UsageError("give either `counts_dir` or `primo_curve`, not both", option="primo_curve")
    from .peers import DEFAULT_PEERS

    peers = DEFAULT_PEERS if peers is None else peers
    if isinstance(peers, str):
        peers = [] if peers.strip().lower() in ("", "none") else [p.strip() for p in peers.split(",") if p.strip()]
    qfs, qids = _read_store(queries, "query store")
    with qfs:
        Q = qfs.read()
        qmeta = qfs.metadata
        q_labels = qfs.labels
    if len(set(qids.tolist())) != len(qids):
        raise DataError("duplicate query ID", path=queries)
    fs, db_ids = _read_store(features, "database feature store")
    with fs:
        N, D = fs.n, fs.dim
        check_inputs(N, D, Q, k, features=features, queries=queries)
        _check_same_extractor(fs.metadata, qmeta, queries)
        cs = int(chunksize or fs.default_chunksize())
        limit = _magnitude_limit(D)
        _check_magnitude(Q, limit, queries)
        nn, _ = exact_knn((_check_magnitude(c, limit, features, item=c)
                           for c in fs.iter_chunks(cs)), Q, k, mapper=mapper)
        X = fs.read() if peers else None
        db_labels = fs.labels
    qids = [str(q) for q in qids.tolist()]
    primo_rows, notes = None, []
    if counts_dir is not None:
        db_index = {i: r for r, i in enumerate(db_ids.tolist())}
        counts, missing = read_counts_dir(counts_dir, qids, db_index, ranking)
        if missing:
            notes.append(f"no counts table for {len(missing)} of {len(qids)} queries "
                         f"(e.g. {missing[0]!r}); primo is averaged over the others")
            warnings.warn(notes[-1], UserWarning, stacklevel=2)
        primo_rows = primo_rows_from_counts(counts, nn, qids, N, k, n_thresholds)
    elif primo_curve is not None:
        primo_rows = read_primo_curve(primo_curve, qids, N, k)
    if X is None:
        result = BenchmarkResult([], N, D, k, qids, [], {}, seed, dict(peer_options or {}))
        if primo_rows:
            result.rows.extend(primo_rows)
            result.info["primo"] = {"how_counted": PRIMO_HOW_COUNTED}
    else:
        result = run_benchmark(X, Q, qids, k, peers, peer_options, primo_rows, seed, threads,
                               nn=nn)
        del X
    maps = map_summary(counts if counts_dir is not None else None, nn, qids, N, db_labels,
                       q_labels, seed=seed)
    summary = {
        "provenance": provenance(),
        "parameters": {"features": str(features), "queries": str(queries), "k": k,
                       "database_size": N, "dim": D, "n_queries": len(qids),
                       "peers": list(peers), "peer_options": dict(peer_options or {}),
                       "seed": seed, "counts_dir": None if counts_dir is None else str(counts_dir),
                       "primo_ranking": ranking if counts_dir is not None else None,
                       "primo_curve": None if primo_curve is None else str(primo_curve),
                       "curves": "mean over queries per parameter setting, Pareto frontier, "
                                 "linear interpolation (subsampling below the smallest setting)"},
        "skipped": result.skipped,
        "skipped_rows": _skipped_rows(),   # NaN / inf rows left out with --skip-bad-rows
        "notes": notes,
        "how_counted": result.how_counted(),
        "algorithms": result.summary(recalls),
    }
    if maps:
        summary["map_at_k"] = maps
    with atomic_dir(out, command="benchmark") as tmp:
        write_benchmarks_csv(tmp / "benchmarks.csv", result.rows)
        plot_benchmark(result, tmp / "benchmarks.png", title)
        write_json(tmp / "summary.json", summary)
    return summary


def _skipped_rows():
    from ..features.store import skipped_rows

    return skipped_rows()
