"""What one query retrieved, condensed for a results page (the paper's Fig. 3A/B/C).

A search "retrieves" the documents whose read count (or enrichment score) is at or above a
threshold (papers 001/002, Fig. 3). :func:`summarize_query` reduces a query's counts and distances
over the whole database (1.6 M documents in the paper) to what a page shows, in a few passes over
the arrays and without keeping them:

* **Fig. 3A**: the distribution of Euclidean distances to the query among the documents at or above
  each of a few thresholds, as box-plot statistics computed here (quartiles, 5th and 95th
  percentiles, mean), not as lists of distances, so a page stays small and fast at any size;
* **Fig. 3B**: the threshold curve (documents retrieved vs k-nearest-neighbor recall), with the
  thresholds of Fig. 3C marked;
* **Fig. 3C**: the 5 documents closest to the query within the retrieved set at 4 thresholds
  (:func:`choose_thresholds` says how they are chosen);
* the documents with the most reads (``gallery`` of them), with counts, distances and labels;
* with an input library, the same ranking by enrichment.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> d = rng.uniform(0, 10, 500)
>>> counts = rng.poisson(30 * np.exp(-d))          # closer documents get more reads
>>> r = summarize_query("q1", counts, d, [f"doc{i}" for i in range(500)], k=20, gallery=3)
>>> len(r.grid), [len(docs) for docs in r.grid.values()]
(4, [5, 5, 5, 5])
>>> r.top[0].count == int(counts.max())
True
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UsageError

__all__ = ["Doc", "QueryResults", "choose_thresholds", "distance_boxes", "summarize_query"]


@dataclasses.dataclass
class Doc:
    """One document shown on the page."""

    image_id: str
    count: float                 # read count (or enrichment score) of the ranking
    distance: float              # Euclidean distance to the query
    rank: int                    # 1 = the query's nearest document
    label: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class QueryResults:
    """One query's results, condensed (see the module docstring)."""

    query_id: str
    n_db: int
    k: int
    thresholds: np.ndarray       # ascending distinct counts
    retrieved: np.ndarray        # documents with count >= threshold
    recall: np.ndarray           # of the k nearest neighbors among them (a count out of k)
    chosen: list                 # the 4 Fig. 3C thresholds, permissive first
    boxes: list                  # Fig. 3A box statistics (dicts), "all documents" first
    kth_distance: float          # distance of the k-th nearest neighbor
    top: list                    # Doc: the most reads, highest first
    grid: dict                   # threshold -> Doc list, the closest retrieved documents first
    label: str | None = None
    total_reads: float = 0.0
    ranking: str = "reads"       # what the counts are ("reads" or "enrichment")
    enrichment: "QueryResults | None" = None
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def proportion(self) -> np.ndarray:
        return self.retrieved / max(self.n_db, 1)

    def proportion_at_recall(self, fraction: float):
        """Proportion retrieved needed for recall ``fraction``
        (:func:`primo.evaluation.recall.proportion_at_recall`; None if never reached)."""
        from .recall import proportion_at_recall

        return proportion_at_recall(zip(self.proportion.tolist(), (self.recall / self.k).tolist()),
                                    fraction)

    def at(self, threshold):
        """``(retrieved, recall)`` at one of the curve's thresholds."""
        i = int(np.searchsorted(self.thresholds, threshold))
        return int(self.retrieved[i]), int(self.recall[i])


def choose_thresholds(thresholds, retrieved, n: int = 4, min_retrieved: int = 5) -> list:
    """The Fig. 3C thresholds: from permissive to very aggressive, evenly spaced in log scale.

    The paper shows, for each query, the 5 closest images of the retrieved set at 4 read-count
    thresholds "from permissive to very aggressive" and marks them on the recall curve (Fig. 3B);
    its text notes that the most aggressive one keeps relevant images while retrieving ~1,000x
    fewer documents. It does not give a rule, so primo uses this one:

    1. candidates are the thresholds above 0 (a threshold of 0 retrieves the whole database, not a
       search) whose retrieved set still holds ``min_retrieved`` documents (5: a full row of
       pictures); if none does, those retrieving at least one document;
    2. the most permissive is the lowest candidate (every document with a read), the most
       aggressive the highest (the last with a full row);
    3. the others are the candidates whose retrieved-set sizes are nearest to sizes spaced
       evenly on a log scale between those two (so that they span the orders of magnitude of
       dilution the paper discusses), each threshold used once.

    Parameters
    ----------
    thresholds, retrieved : arrays
        The threshold curve (ascending thresholds; documents retrieved at each).
    n : int
        How many thresholds (4 in the paper).
    min_retrieved : int
        Documents a retrieved set must hold to be a candidate.

    Returns
    -------
    list of thresholds, ascending (permissive first); fewer than ``n`` when there are fewer
    candidates.

    >>> choose_thresholds([0, 1, 2, 3, 5, 8, 13, 40], [10000, 5000, 1500, 600, 100, 40, 8, 2])
    [1, 3, 5, 13]
    """
    t = np.asarray(thresholds)
    r = np.asarray(retrieved, dtype=np.float64)
    if t.shape != r.shape:
        raise UsageError(f"{len(t)} thresholds for {len(r)} retrieved-set sizes")
    if n < 1:
        return []
    cand = np.flatnonzero((t > 0) & (r >= min_retrieved))
    if not len(cand):
        cand = np.flatnonzero((t > 0) & (r >= 1))
    if len(cand) <= n:
        return [t[i].item() for i in cand]
    lo, hi = cand[0], cand[-1]
    targets = np.geomspace(r[lo], r[hi], n)
    picked = [lo, hi]
    logr = np.log(r[cand])
    for target in targets[1:-1]:
        order = np.argsort(np.abs(logr - np.log(target)), kind="stable")
        picked.append(next(cand[j] for j in order if cand[j] not in picked))
    return [t[i].item() for i in sorted(picked)]


def _box(values, label: str, threshold=None, retrieved: int | None = None) -> dict:
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return {"label": label, "threshold": threshold, "retrieved": 0}
    q = np.percentile(v, [5, 25, 50, 75, 95])
    return {"label": label, "threshold": threshold,
            "retrieved": int(len(v) if retrieved is None else retrieved),
            "whislo": float(q[0]), "q1": float(q[1]), "med": float(q[2]), "q3": float(q[3]),
            "whishi": float(q[4]), "mean": float(v.mean()), "min": float(v.min()),
            "max": float(v.max())}


def distance_boxes(counts, distances, thresholds) -> list:
    """Fig. 3A: box statistics of the distances of the documents at or above each threshold.

    One dict per threshold (``label``, ``threshold``, ``retrieved``, ``whislo`` = 5th percentile,
    ``q1``, ``med``, ``q3``, ``whishi`` = 95th percentile, ``mean``, ``min``, ``max``), after one
    for the whole database. Computed in one pass per threshold; nothing per document is kept.

    >>> b = distance_boxes([0, 1, 3, 3], [4.0, 3.0, 1.0, 2.0], [3])
    >>> [(x["label"], x["retrieved"], x["med"]) for x in b]
    [('all', 4, 2.5), ('>= 3', 2, 1.5)]
    """
    c = np.asarray(counts)
    d = np.asarray(distances, dtype=np.float64)
    out = [_box(d, "all")]
    for t in thresholds:
        out.append(_box(d[c >= t], f">= {_fmt(t)}", threshold=_item(t)))
    return out


def _fmt(t) -> str:
    t = float(t)
    return f"{t:.0f}" if t == round(t) and abs(t) < 1e15 else f"{t:.3g}"


def _item(t):
    return t.item() if hasattr(t, "item") else t


def _label_of(labels, i):
    if labels is None:
        return None
    v = labels[i]
    return None if v is None else str(v)


def summarize_query(query_id, counts, distances, image_ids, *, k: int = 100, gallery: int = 10,
                    per_threshold: int = 5, labels=None, query_label=None, enrichment=None,
                    n_thresholds: int = 4, n_boxes: int = 8, ranking: str = "reads",
                    extra: dict | None = None) -> QueryResults:
    """Condense one query's counts and distances for a results page (see the module docstring).

    Parameters
    ----------
    query_id : str
    counts : array (n_db,)
        Read count (or score) of every document, pool order.
    distances : array (n_db,)
        The query's Euclidean distance to every document, pool order.
    image_ids : array of str (n_db,)
    k : int
        Nearest neighbors for recall (100 in the paper).
    gallery : int
        Documents with the most reads to keep (the page draws them).
    per_threshold : int
        Closest documents kept per Fig. 3C threshold (5 in the paper).
    labels : array (n_db,), optional
        A label per document (class), shown under its picture.
    query_label : str, optional
    enrichment : array (n_db,), optional
        Enrichment scores over the input library: condensed the same way (``.enrichment``).
    n_thresholds : int
        Fig. 3C thresholds (4); ``n_boxes``: Fig. 3A thresholds besides those.
    """
    from .recall import nearest_neighbors, threshold_table

    c = np.asarray(counts)
    d = np.asarray(distances, dtype=np.float64)
    ids = np.asarray(image_ids)
    n = len(c)
    if d.shape != c.shape or len(ids) != n:
        raise UsageError(f"{len(c)} counts, {len(d)} distances and {len(ids)} document IDs: "
                         "give one of each per document")
    if n == 0:
        raise UsageError("no documents to summarize")
    k = min(int(k), n)
    nn = nearest_neighbors(d, k)
    t, ret, rec = threshold_table(c, nn)
    chosen = choose_thresholds(t, ret, n_thresholds, min_retrieved=per_threshold)
    more = choose_thresholds(t, ret, n_boxes, min_retrieved=1)
    box_t = sorted(set(chosen) | set(more))
    boxes = distance_boxes(c, d, box_t)
    sorted_d = np.sort(d)

    def doc(i) -> Doc:
        return Doc(str(ids[i]), c[i].item(), float(d[i]),
                   int(np.searchsorted(sorted_d, d[i], side="left")) + 1, _label_of(labels, i))

    pos = np.arange(n)
    if gallery > 0:
        m = min(int(gallery), n)
        part = np.argpartition(-c, m - 1)[:m] if m < n else pos
        # ties at the cut: take the lowest positions, as the full ranking would
        cut = c[part].min()
        above = np.flatnonzero(c > cut)
        tie = np.flatnonzero(c == cut)[: m - len(above)]
        sel = np.concatenate([above, tie])
        top_pos = sel[np.lexsort((sel, -c[sel]))]
    else:
        top_pos = np.zeros(0, np.int64)
    grid = {}
    for th in chosen:
        inside = np.flatnonzero(c >= th)
        m = min(per_threshold, len(inside))
        if m == 0:
            grid[th] = []
            continue
        dd = d[inside]
        part = np.argpartition(dd, m - 1)[:m] if m < len(inside) else np.arange(len(inside))
        part = part[np.lexsort((inside[part], dd[part]))]
        grid[th] = [doc(i) for i in inside[part]]
    res = QueryResults(
        query_id=str(query_id), n_db=n, k=k, thresholds=t, retrieved=ret, recall=rec,
        chosen=chosen, boxes=boxes, kth_distance=float(d[nn[-1]]),
        top=[doc(i) for i in top_pos], grid=grid,
        label=None if query_label is None else str(query_label),
        total_reads=float(c.sum()), ranking=ranking, extra=dict(extra or {}))
    if enrichment is not None:
        res.enrichment = summarize_query(query_id, enrichment, d, ids, k=k, gallery=gallery,
                                         per_threshold=per_threshold, labels=labels,
                                         query_label=query_label, n_thresholds=n_thresholds,
                                         n_boxes=n_boxes, ranking="enrichment")
    return res
