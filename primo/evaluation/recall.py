"""Read counts -> search quality: nearest neighbors, threshold tables, recall curves, mAP@k.

A similarity search "retrieves" the documents whose read count is at or above a threshold. For each
threshold the retrieved set is characterised by its size (the proportion of the database that must
be sequenced and sorted) and its k-nearest-neighbor recall: how many of the query's k nearest
neighbors in feature space (k = 100 in the paper) it contains (papers 001/002, Fig. 3B).

Files
-----
distances (``--distances``), the published ``analysis/distances`` layout::

    ImageID,Euclidean Distance
    e39871fd9fd74f55,123.4
    ...

One row per database document (every pool document must have one; rows for other ImageIDs are an
error). Plain or gzip (detected by content).

thresholds (``thresholds.csv``), the published ``analysis/thresholds`` layout::

    Threshold,Number Retrieved,100-Nearest-Neighbor Recall
    0,1600000,100
    1,523114,97
    ...

One row per distinct read count ``t`` (ascending): the number of documents with count >= t and
how many of the query's k nearest neighbors they include, as a **count out of k** (the published
README: "the number of the 100 nearest neighbors to the query in this set"). With k other than
100 the last header says ``<k>-Nearest-Neighbor Recall``. No comment lines; provenance goes to
``stats.json`` beside it.

labels (``--labels``)::

    ImageID,Label

Ranking for mAP@k
-----------------
Documents are ranked by read count, highest first; ties are broken by pool order (the row of the
document in the pool's ``database_seqs.csv.gz``), so the ranking, and mAP@k, are deterministic.
A retrieved document is relevant when its label equals the query's label; AP@k is
:func:`primo.evaluation.neighbors.average_precision_at_k` (paper 004's definition).

Nearest neighbors are ranked by Euclidean distance, ties again by pool order.

Proportion of the database retrieved at recall r
------------------------------------------------
One definition, :func:`proportion_at_recall`, used by ``analyze``, ``simulate``, ``benchmark``,
the demo and the scripts behind the README's figures. The settings of a search (thresholds of a
read count, parameters of an ANN index) give points (proportion retrieved, k-NN recall as a
fraction of k); for a benchmark they are means over queries per setting. Points beaten by another
(a smaller proportion and a higher recall) are dropped (:func:`pareto_frontier`), and the
proportion needed for recall r is read off the rest by linear interpolation between neighboring
points (a random mixture of the two settings achieves it) and from the origin to the first point
(uniform subsampling of the smallest retrieved set). It is None when recall r is never reached.

In JSON summaries the levels are keyed ``f"{r:g}"`` (:func:`recall_key`): ``"0.1"``, ``"0.5"``,
``"0.9"``, ``"1"``. Up to primo 0.1.0 the ``proportion_at_recall`` of ``analyze``'s ``stats.json``
and ``simulate``'s ``summary.json`` had ``"10%"``, ``"50%"``, ``"90%"``, ``"100%"`` keys and a step
function (the smallest proportion at a threshold reaching r), which is never below this one.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from ..arrays import unique
from ..errors import DataError, UsageError

__all__ = [
    "RecallCurve", "nearest_neighbors", "threshold_table", "recall_curve", "candidate_recall",
    "chance_curve", "oracle_curve", "load_distances", "distances_from_features", "read_labels",
    "map_at_k_from_scores", "enrichment_scores", "recall_header",
    "THRESHOLD_COLUMNS", "pareto_frontier", "proportion_at_recall", "recall_key", "SUMMARY_RECALLS",
]

THRESHOLD_COLUMNS = ("Threshold", "Number Retrieved", "100-Nearest-Neighbor Recall")


#: the recall levels of a curve's summary
SUMMARY_RECALLS = (0.1, 0.5, 0.9, 1.0)


def recall_key(recall: float) -> str:
    """The JSON key of a recall level: ``"0.5"`` for 50 %.

    >>> [recall_key(r) for r in (0.1, 0.5, 1.0)]
    ['0.1', '0.5', '1']
    """
    return f"{recall:g}"


def pareto_frontier(points):
    """Points not beaten by another (smaller proportion and higher recall), by proportion.

    ``points`` are ``(proportion, recall, ...)`` tuples; the result has strictly increasing
    proportion and recall.

    Examples
    --------
    >>> pareto_frontier([(0.1, 0.5), (0.2, 0.4), (0.3, 0.9), (0.05, 0.2)])
    [(0.05, 0.2), (0.1, 0.5), (0.3, 0.9)]
    """
    best, out = -1.0, []
    for p in sorted(points, key=lambda t: (t[0], -t[1])):
        if p[1] > best:
            out.append(p)
            best = p[1]
    return out


def proportion_at_recall(points, recall: float):
    """Proportion retrieved needed for ``recall`` (a fraction of k) on the frontier of ``points``
    (``(proportion, recall, ...)``); None if never reached. See the module docstring.

    Between the origin and the first frontier point the search is subsampled; between frontier
    points the two settings are mixed, so both are straight lines. A point whose recall equals
    ``recall`` (to 1e-12) gives its own proportion.

    Examples
    --------
    >>> proportion_at_recall([(0.01, 0.4), (0.05, 0.8)], 0.2)
    0.005
    >>> round(proportion_at_recall([(0.01, 0.4), (0.05, 0.8)], 0.6), 6)
    0.03
    >>> proportion_at_recall([(0.01, 0.4), (0.05, 0.8)], 0.8)
    0.05
    >>> proportion_at_recall([(0.01, 0.4)], 0.9) is None
    True
    """
    prev_p, prev_r = 0.0, 0.0
    for p, r, *_ in pareto_frontier(points):
        if r >= recall - 1e-12:
            if r <= recall or r == prev_r:
                return float(p)
            return float(prev_p + (recall - prev_r) * (p - prev_p) / (r - prev_r))
        prev_p, prev_r = p, r
    return None


def recall_header(k: int = 100) -> str:
    """Name of the recall column of thresholds.csv for ``k`` nearest neighbors."""
    return f"{int(k)}-Nearest-Neighbor Recall"


# --------------------------------------------------------------------------------------------------
# nearest neighbors and thresholds
# --------------------------------------------------------------------------------------------------
def nearest_neighbors(distances, k: int = 100) -> np.ndarray:
    """Positions of the ``k`` smallest distances, nearest first (ties: lower position first).

    >>> nearest_neighbors([3.0, 1.0, 2.0, 1.0], k=3).tolist()
    [1, 3, 2]
    """
    d = np.asarray(distances, dtype=np.float64).ravel()
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    if k > len(d):
        raise UsageError(f"k = {k} nearest neighbors, but the database has only {len(d)} documents",
                         hint="ask for fewer neighbors", option="k")
    if np.isnan(d).any():
        raise DataError(f"distance of document at position {int(np.flatnonzero(np.isnan(d))[0])} "
                        "is NaN")
    if k < len(d):
        v = np.partition(d, k - 1)[k - 1]
        below = np.flatnonzero(d < v)
        tie = np.flatnonzero(d == v)[: k - len(below)]
        sel = np.concatenate([below, tie])
    else:
        sel = np.arange(len(d))
    order = np.lexsort((sel, d[sel]))
    return sel[order].astype(np.int64)


def _scores(counts) -> np.ndarray:
    """Counts as int64, or non-integral scores (enrichment) as float64; never negative or NaN."""
    c = np.asarray(counts).ravel()
    if c.size and not np.issubdtype(c.dtype, np.integer):
        c = c.astype(np.float64)
        if np.isnan(c).any():
            raise DataError("read counts / scores must not be NaN")
        if np.all(c == np.round(c)):
            c = c.astype(np.int64)
    if c.size and (c < 0).any():
        raise DataError("read counts must be non-negative")
    return c if c.dtype == np.float64 else c.astype(np.int64)


def enrichment_scores(counts, input_counts, pseudocount: float = 0.5) -> np.ndarray:
    """Enrichment of each document over the input library: the ranking score with an input.

    ``((c + a) / (C + a n)) / ((u + a) / (U + a n))`` for selected counts ``c`` (total ``C``),
    input-library counts ``u`` (total ``U``), ``n`` documents and pseudocount ``a``; documents
    with no read in the selection score 0, so the retrieved sets stay sets of sequenced documents.

    >>> enrichment_scores([0, 4, 4], [3, 1, 7]).round(3).tolist()
    [0.0, 3.947, 0.789]
    """
    c = np.asarray(counts, dtype=np.float64).ravel()
    u = np.asarray(input_counts, dtype=np.float64).ravel()
    if c.shape != u.shape:
        raise UsageError(f"{len(u)} input counts for {len(c)} documents")
    if (c < 0).any() or (u < 0).any():
        raise DataError("read counts must be non-negative")
    if not pseudocount > 0:
        raise UsageError("the pseudocount must be > 0")
    n = len(c)
    a = float(pseudocount)
    e = ((c + a) / (c.sum() + a * n)) / ((u + a) / (u.sum() + a * n))
    e[c == 0] = 0.0
    return e


def threshold_table(counts, nn_positions):
    """Retrieved-set size and nearest-neighbor recall for every distinct read count.

    Parameters
    ----------
    counts : int array (n_db,)
        Read count of every document (pool order); or a float score per document (enrichment),
        whose distinct values are then the thresholds.
    nn_positions : int array (k,)
        Positions of the query's k nearest neighbors.

    Returns
    -------
    thresholds, retrieved, recall : int64 arrays
        For each distinct count ``t`` (ascending): documents with count >= t, and how many of the
        nearest neighbors they include (a count out of k).

    >>> t, n, r = threshold_table([0, 5, 2, 2, 9], [1, 2])
    >>> t.tolist(), n.tolist(), r.tolist()
    ([0, 2, 5, 9], [5, 4, 2, 1], [2, 2, 1, 0])
    """
    c = _scores(counts)
    nn = np.asarray(nn_positions, dtype=np.int64).ravel()
    if nn.size and (nn.min() < 0 or nn.max() >= len(c)):
        raise UsageError("nearest-neighbor positions outside the database")
    thresholds = unique(c)
    sc = np.sort(c)
    sn = np.sort(c[nn])
    retrieved = len(sc) - np.searchsorted(sc, thresholds, side="left")
    recall = len(sn) - np.searchsorted(sn, thresholds, side="left")
    return thresholds, retrieved.astype(np.int64), recall.astype(np.int64)


def candidate_recall(candidate_ids, nn_ids) -> int:
    """How many of the nearest neighbors ``nn_ids`` a candidate set contains (a count).

    Works with positions or IDs of any hashable/numpy type.

    >>> candidate_recall([4, 1, 9], [1, 2, 4])
    2
    """
    cand = np.asarray(candidate_ids).ravel()
    nn = np.asarray(nn_ids).ravel()
    if nn.size == 0:
        return 0
    return int(np.isin(nn, cand).sum())


@dataclasses.dataclass
class RecallCurve:
    """A retrieval curve: for each threshold, retrieved-set size and k-NN recall (a count).

    Attributes
    ----------
    name : str
        Label in plots (query, run).
    thresholds, retrieved, recall : int64 arrays
    k : int
        Nearest neighbors considered.
    n_db : int
        Database size (documents in the pool).
    """

    name: str
    thresholds: np.ndarray
    retrieved: np.ndarray
    recall: np.ndarray
    k: int
    n_db: int

    @property
    def proportion(self) -> np.ndarray:
        """Proportion of the database retrieved at each threshold."""
        return self.retrieved / max(self.n_db, 1)

    @property
    def recall_fraction(self) -> np.ndarray:
        """k-NN recall at each threshold as a fraction of k."""
        return self.recall / self.k

    def proportion_at_recall(self, fraction: float):
        """Proportion retrieved needed for recall ``fraction`` (:func:`proportion_at_recall` over
        the thresholds; None if never reached)."""
        return proportion_at_recall(zip(self.proportion.tolist(),
                                        self.recall_fraction.tolist()), fraction)

    def summary(self) -> dict:
        """Headline figures (JSON-serialisable)."""
        return {
            "name": self.name, "k": int(self.k), "database_size": int(self.n_db),
            "thresholds": int(len(self.thresholds)),
            "proportion_at_recall": {recall_key(f): self.proportion_at_recall(f)
                                     for f in SUMMARY_RECALLS},
        }

    def write_csv(self, path) -> Path:
        """Write the published thresholds layout (atomic)."""
        from ..io import atomic_file

        path = Path(path)
        with atomic_file(path) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(f"Threshold,Number Retrieved,{recall_header(self.k)}\n")
                fmt = "{:.9g}" if self.thresholds.dtype.kind == "f" else "{}"
                fh.write("".join(f"{fmt.format(t)},{n},{r}\n" for t, n, r in
                                 zip(self.thresholds.tolist(), self.retrieved.tolist(),
                                     self.recall.tolist())))
        return path

    @classmethod
    def read_csv(cls, path, n_db: int, k: int | None = None, name: str | None = None
                 ) -> "RecallCurve":
        """Read a thresholds file (the published layout, or one written by :meth:`write_csv`)."""
        from ..io import open_input

        path = Path(path)
        import csv

        with open_input(path, "thresholds file") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise DataError("thresholds file is empty", path=path,
                                hint=f"expected columns {', '.join(THRESHOLD_COLUMNS)}")
            header = [h.strip().lstrip("\ufeff") for h in header]
            rec_cols = [h for h in header if h.endswith("-Nearest-Neighbor Recall")]
            if header[:2] != ["Threshold", "Number Retrieved"] or len(rec_cols) != 1:
                raise DataError(f"not a thresholds file (header {', '.join(header)})", path=path,
                                line=1, hint=f"expected {', '.join(THRESHOLD_COLUMNS)}")
            kk = int(rec_cols[0].split("-")[0]) if k is None else int(k)
            rows = []
            for row in reader:
                if not row:
                    continue
                try:
                    rows.append([float(v) for v in row[:3]])
                except ValueError:
                    raise DataError(f"non-numeric row {row!r}", path=path,
                                    line=reader.line_num) from None
        a = np.array(rows, dtype=np.float64).reshape(-1, 3)
        t = a[:, 0] if (a[:, 0] != np.round(a[:, 0])).any() else a[:, 0].astype(np.int64)
        return cls(name or path.stem, t, a[:, 1].astype(np.int64), a[:, 2].astype(np.int64), kk,
                   int(n_db))


def recall_curve(counts, distances=None, *, nn_positions=None, k: int = 100,
                 name: str = "primo") -> RecallCurve:
    """The threshold curve of read counts against the query's k nearest neighbors.

    Give either the query's ``distances`` to every document (pool order) or ``nn_positions``.
    """
    counts = np.asarray(counts)
    if nn_positions is None:
        if distances is None:
            raise UsageError("recall_curve needs distances or nn_positions")
        d = np.asarray(distances, dtype=np.float64)
        if d.shape != counts.shape:
            raise UsageError(f"{len(d)} distances for {len(counts)} documents")
        nn_positions = nearest_neighbors(d, k)
    nn_positions = np.asarray(nn_positions, dtype=np.int64)
    t, n, r = threshold_table(counts, nn_positions)
    return RecallCurve(name, t, n, r, int(len(nn_positions)), int(len(counts)))


def chance_curve(n_db: int, k: int = 100, points: int = 200):
    """Random sampling of the database: recall fraction r needs proportion r (Fig. 3B, dashed).

    Returns ``(recall_fraction, proportion)`` arrays from 1/k to 1.
    """
    r = np.geomspace(1.0 / k, 1.0, points)
    return r, r.copy()


def oracle_curve(n_db: int, k: int = 100, points: int = 200):
    """A perfect search: recall fraction r retrieves exactly r*k documents (Fig. 3B, dash-dot).

    Returns ``(recall_fraction, proportion)`` arrays from 1/k to 1.
    """
    if n_db < 1:
        raise UsageError("database size must be positive")
    r = np.geomspace(1.0 / k, 1.0, points)
    return r, r * k / n_db


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------
def _pool_lookup(image_ids) -> dict:
    return {str(i): p for p, i in enumerate(np.asarray(image_ids).tolist())}


def load_distances(path, image_ids) -> np.ndarray:
    """Distances of a query to every pool document (pool order) from the published layout.

    Raises DataError for unknown ImageIDs (naming the line), duplicates, non-numeric or negative
    values, and for a file that does not cover every pool document.
    """
    from ..io import read_id_table

    lookup = _pool_lookup(image_ids)
    n = len(lookup)
    d = np.full(n, np.nan, dtype=np.float64)
    seen = np.zeros(n, dtype=bool)
    ids, values, lines = read_id_table(
        path, "Euclidean Distance", what="distances file", convert=float, kind="a number",
        check=lambda v: "" if math.isfinite(v) and v >= 0 else
        "is not a finite non-negative number")
    for iid, v, line in zip(ids, values, lines):
        p = lookup.get(iid)
        if p is None:
            raise DataError(f"ImageID {iid!r} is not a document of the pool", path=path, line=line,
                            hint="the distances must be to the documents of this pool")
        d[p] = v
        seen[p] = True
    missing = int((~seen).sum())
    if missing:
        first = str(np.asarray(image_ids)[np.flatnonzero(~seen)[0]])
        raise DataError(f"distances file does not cover the pool: {missing:,} of {n:,} documents "
                        f"have no distance (first: {first!r})", path=path,
                        hint="give the query's distance to every pool document")
    return d


def distances_from_features(features, query, image_ids, query_id=None, chunksize: int | None = None):
    """Euclidean distances of a query's feature vector to every pool document (pool order).

    Parameters
    ----------
    features : path or FeatureStore
        The database features; every pool ImageID must be in it (other rows are ignored).
    query : path or FeatureStore
        The query's features.
    image_ids : array of str
        The pool's ImageIDs (pool order).
    query_id : str, optional
        Which row of ``query``; required when it holds more than one.
    chunksize : int, optional
        Rows streamed at a time.

    Returns
    -------
    (distances float64 array, query_id str)
    """
    from ..features.store import FeatureStore

    own = []
    try:
        db = features if hasattr(features, "iter_chunks") else FeatureStore.open(features)
        if db is not features:
            own.append(db)
        qs = query if hasattr(query, "iter_chunks") else FeatureStore.open(query)
        if qs is not query:
            own.append(qs)
        qids = [str(x) for x in np.asarray(qs.ids).tolist()]
        if query_id is None:
            if len(qids) != 1:
                raise UsageError(f"the query file holds {len(qids)} vectors; choose one by its ID "
                                 f"(e.g. {qids[0] if qids else '?'})", option="query_id")
            query_id = qids[0]
        query_id = str(query_id)
        if query_id not in qids:
            raise UsageError(f"query {query_id!r} is not in the query file", option="query_id",
                             hint=f"it holds {', '.join(qids[:5])}{' ...' if len(qids) > 5 else ''}")
        q = np.asarray(qs.read_ids([query_id]), dtype=np.float64).reshape(-1)
        if q.shape[0] != db.dim:
            raise DataError(f"query vectors have {q.shape[0]} dimensions, the database {db.dim}",
                            hint="extract both with the same feature extractor")
        from ..features.extractors import extractor_mismatch

        diff = extractor_mismatch(getattr(qs, "metadata", None), getattr(db, "metadata", None))
        if diff:
            raise DataError(f"query and database features come from different extractors ({diff})",
                            path=query if isinstance(query, (str, Path)) else None,
                            hint="extract both with the same `model` and `weights`")
        lookup = _pool_lookup(image_ids)
        n = len(lookup)
        d = np.full(n, np.nan, dtype=np.float64)
        from .neighbors import query_distances

        for ids, dq in query_distances(db, q[None, :], chunksize):
            pos = np.fromiter((lookup.get(str(i), -1) for i in np.asarray(ids).tolist()),
                              dtype=np.int64, count=len(ids))
            keep = pos >= 0
            d[pos[keep]] = dq[keep, 0]
        missing = int(np.isnan(d).sum())
        if missing:
            first = str(np.asarray(image_ids)[np.flatnonzero(np.isnan(d))[0]])
            raise DataError(f"the feature store does not cover the pool: {missing:,} of {n:,} "
                            f"documents have no features (first: {first!r})",
                            path=getattr(db, "path", features),
                            hint="give the features of every pool document")
        return d, query_id
    finally:
        for s in own:
            s.close()


def read_labels(path, image_ids=None):
    """``ImageID,Label`` -> dict, or (with ``image_ids``) a label array in pool order.

    With ``image_ids`` every pool document needs a label; extra rows (e.g. the query's) are kept in
    the returned dict only.
    """
    from ..io import read_id_table

    ids, values, _ = read_id_table(path, "Label", what="labels file")
    labels = dict(zip(ids, values))
    if image_ids is None:
        return labels
    ids = [str(i) for i in np.asarray(image_ids).tolist()]
    missing = [i for i in ids if i not in labels]
    if missing:
        raise DataError(f"labels file does not cover the pool: {len(missing):,} of {len(ids):,} "
                        f"documents have no label (first: {missing[0]!r})", path=path,
                        hint="give a label for every pool document")
    return np.array([labels[i] for i in ids], dtype=object), labels


def map_at_k_from_scores(scores, db_labels, query_labels, k: int = 10):
    """mAP@k when each query ranks the database by a score (read count), highest first.

    Parameters
    ----------
    scores : array (n_db,) or (Q, n_db)
        A score per document (and query); ties are broken by position, lower first.
    db_labels : array (n_db,)
    query_labels : scalar or array (Q,)
    k : int

    Returns
    -------
    (mean AP@k, array of AP@k per query)

    >>> m, per = map_at_k_from_scores([5, 0, 3, 3], ["a", "b", "a", "b"], "a", k=2)
    >>> round(m, 3)
    1.0
    """
    from .neighbors import average_precision_at_k

    S = np.asarray(scores, dtype=np.float64)
    if S.ndim == 1:
        S = S[None, :]
    ql = np.atleast_1d(np.asarray(query_labels, dtype=object))
    dl = np.asarray(db_labels, dtype=object)
    if len(ql) != len(S):
        raise UsageError(f"{len(ql)} query labels for {len(S)} score rows")
    if S.shape[1] != len(dl):
        raise UsageError(f"{S.shape[1]} scores for {len(dl)} database labels")
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    k = min(k, S.shape[1])
    pos = np.arange(S.shape[1])
    rel = np.empty((len(S), k), dtype=bool)
    for i, row in enumerate(S):
        top = np.lexsort((pos, -row))[:k]
        rel[i] = dl[top] == ql[i]
    ap = average_precision_at_k(rel)
    return float(ap.mean()) if len(ap) else 0.0, ap
