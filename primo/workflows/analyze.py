"""Read counts -> search quality for one query: the flow that ``primo analyze``, ``primo simulate``
and the demo share.

:func:`analyze` is ``primo analyze`` without its options: reads (or a counts file) -> counts ->
enrichment -> the evaluation of the query. :func:`evaluate_query` is the evaluation of one query's
counts, used by :func:`analyze`, by :func:`primo.workflows.experiment.run_experiment` for every
simulated query and by the demo for every query read back.

Outputs (into an existing directory)
------------------------------------
``counts.csv.gz``, ``stats.json``
    (:func:`analyze`) :meth:`primo.reads.ReadCounts.write`.
``enrichment.csv.gz``
    With an input library (the pool sequenced without hybridization):
    ``ImageID,Count,Input Count,Enrichment`` for every document (pool order), the enrichment of
    :func:`primo.evaluation.recall.enrichment_scores` with 6 significant digits. (``primo
    simulate`` wrote only ``ImageID,Enrichment`` up to primo 0.1.0.)
``thresholds.csv``, ``recall.png``
    The curve of the ranking (:func:`evaluate_counts`): by read count, or
    by enrichment when ``rank_by_enrichment`` (``primo analyze --input-counts``).
``enrichment/thresholds.csv``, ``enrichment/recall.png``
    With an input library and a ranking by read count (``simulate``, the demo): the enrichment
    ranking's curve as well.
``report.html``
    (:func:`analyze`, with distances) the query's results page (:mod:`primo.workflows.report`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["analyze", "count", "evaluate_counts", "evaluate_query", "write_enrichment",
           "ENRICHMENT_COLUMNS"]

#: the layout of ``enrichment.csv.gz``
ENRICHMENT_COLUMNS = ["ImageID", "Count", "Input Count", "Enrichment"]

#: k of the mAP@k figures when labels are given
DEFAULT_MAP_KS = (5, 10, 100)


def write_enrichment(path, image_ids, counts, input_counts) -> np.ndarray:
    """Enrichment scores of ``counts`` over the input library's ``input_counts`` (both in pool
    order), written to ``path`` in the ``enrichment.csv.gz`` layout; returns the scores."""
    from ..evaluation.recall import enrichment_scores
    from ..io import write_table

    e = enrichment_scores(counts, input_counts)
    write_table(path, ENRICHMENT_COLUMNS,
                [np.asarray(image_ids).tolist(), np.asarray(counts).tolist(),
                 np.asarray(input_counts).tolist(), [f"{v:.6g}" for v in e]])
    return e


def evaluate_counts(counts, image_ids, distances, out_dir, *, k: int = 100, name: str = "primo",
                    labels=None, query_label=None, map_ks=DEFAULT_MAP_KS,
                    plot: bool = True) -> dict:
    """Write ``thresholds.csv`` (and ``recall.png``) for one query; return a summary dict.

    Parameters
    ----------
    counts : int array (n_db,)
    image_ids : array of str (n_db,)
    distances : float array (n_db,) or None
        The query's distance to every document (pool order); None: only mAP@k.
    out_dir : path
        Existing directory (the CLI passes the temporary output directory).
    labels : array (n_db,), optional
        Document labels; with ``query_label``, mAP@k for each k in ``map_ks``.
    """
    from ..evaluation.plots import plot_recall
    from ..evaluation.recall import map_at_k_from_scores, nearest_neighbors, recall_curve

    out_dir = Path(out_dir)
    summary = {"name": name}
    if distances is not None:
        curve = recall_curve(counts, distances, k=k, name=name)
        curve.write_csv(out_dir / "thresholds.csv")
        summary = curve.summary()
        nn = nearest_neighbors(distances, k)
        summary["nearest_neighbors_seen"] = int((np.asarray(counts)[nn] > 0).sum())
    if labels is not None:
        if query_label is None:
            raise UsageError("mAP@k needs the query's label",
                             hint="put the query's ImageID in `labels` or give `query_label`")
        summary["map_at_k"] = {str(kk): map_at_k_from_scores(counts, labels, query_label, kk)[0]
                               for kk in map_ks}
        summary["query_label"] = str(query_label)
    if plot and distances is not None:
        plot_recall([curve], out_dir / "recall.png", n_db=len(counts), k=k)
    return summary


def evaluate_query(out_dir, counts, image_ids, distances, *, name: str, k: int = 100,
                   enrichment=None, rank_by_enrichment: bool = False, labels=None,
                   query_label=None, map_ks=DEFAULT_MAP_KS, page: bool = True,
                   page_id: str | None = None, gallery: int = 10):
    """One query's counts -> ``thresholds.csv``, ``recall.png`` (and ``enrichment/``); see the
    module docstring.

    Parameters
    ----------
    out_dir : path
        Existing directory.
    counts : array (n_db,)
        Read counts, pool order.
    image_ids : array of str (n_db,)
    distances : array (n_db,) or None
        The query's distance to every document; None: only mAP@k (with labels).
    name : str
        The curve's label.
    enrichment : array (n_db,), optional
        Enrichment scores over an input library (:func:`write_enrichment`).
    rank_by_enrichment : bool
        The top-level curve ranks by ``enrichment`` (``primo analyze``); otherwise by read count,
        and the enrichment ranking goes to ``enrichment/``.
    labels, query_label, map_ks
        mAP@k (see :func:`evaluate_counts`).
    page : bool
        Also condense the query for a results page (with distances).
    page_id, gallery
        The page's query name (default ``name``) and the documents with the most reads it draws.

    Returns
    -------
    (summary dict, :class:`primo.evaluation.results.QueryResults` or None)
    """
    from ..evaluation.results import summarize_query

    out_dir = Path(out_dir)
    by_enrichment = rank_by_enrichment and enrichment is not None
    mapk = {"labels": labels, "query_label": query_label, "map_ks": tuple(map_ks)}
    summary = evaluate_counts(enrichment if by_enrichment else counts, image_ids, distances,
                              out_dir, k=k, name=name, **mapk)
    if enrichment is not None and not by_enrichment:
        (out_dir / "enrichment").mkdir()
        summary["enrichment"] = evaluate_counts(enrichment, image_ids, distances,
                                                out_dir / "enrichment", k=k, name=name, **mapk)
    res = None
    if page and distances is not None:
        res = summarize_query(page_id or name, counts, distances, image_ids, k=k, gallery=gallery,
                              labels=labels, query_label=query_label, enrichment=enrichment)
    return summary, res


def count(*, pool_path=None, reads=(), counts_file=None, paired=None, exclude=(),
          structure_options=None, mapper=None, **count_options):
    """The read counts of ``primo analyze``: ``reads`` decoded against the pool at ``pool_path``,
    or an ``ImageID,Count`` file (aligned to the pool if given); ``exclude`` ImageIDs set to 0.
    ``structure_options`` go to :class:`primo.reads.ReadStructure`, ``count_options`` to
    :func:`primo.reads.count_reads`."""
    import time

    from .. import reads as R
    from ..oligos.pool import read_pool

    pool = None
    if pool_path:
        t = time.perf_counter()
        pool = read_pool(pool_path, sequences=False)
        pool_seconds = time.perf_counter() - t
    if reads:
        structure = R.ReadStructure.from_layout(pool.layout, **(structure_options or {}))
        _check_prefix_length(structure.prefix_length, reads)
        rc = R.count_reads(pool, list(reads), paired=paired, structure=structure,
                           exclude=exclude, mapper=mapper, **count_options)
        rc.stats["pool"]["source"] = str(pool_path)
        rc.stats["pool"]["load_seconds"] = round(pool_seconds, 3)
        return rc
    rc = R.ReadCounts.read(counts_file)
    if pool is not None:
        rc = R.align_counts(rc, pool.image_ids, source=counts_file)
    return R.apply_exclusions(rc, exclude)


def _check_prefix_length(prefix_length: int, reads) -> None:
    """Refuse a random prefix as long as the reads (the longest of the first 1,000 reads of the
    first file): no oligo could follow it, and every read would be placed by IP alone."""
    if not prefix_length or not reads:
        return
    longest = 0
    try:
        import dnaio

        with dnaio.open(str(reads[0])) as fh:
            for i, rec in enumerate(fh):
                longest = max(longest, len(rec.sequence))
                if i >= 999:
                    break
    except Exception:  # noqa: BLE001 -- an unreadable file is reported by the counting itself
        return
    if longest and prefix_length >= longest:
        raise UsageError(f"the random prefix ({prefix_length} nt) is as long as the reads "
                         f"(the longest of the first reads of {reads[0]} has {longest} nt)",
                         option="prefix_length",
                         hint="give the number of random nt before FP (25 in the published runs)")


def analyze(out_dir, rc, *, input_counts=None, distances=None, features=None, query=None,
            query_id=None, k: int = 100, labels=None, query_label=None, map_ks=(),
            name=None, gallery: int = 10, images=None):
    """Enrichment and the search evaluation of ``primo analyze`` for counts ``rc`` (a
    :class:`primo.reads.ReadCounts`), written into ``out_dir`` with ``rc`` itself.

    The query's distances come from a distances file (``distances``) or from feature stores
    (``features`` and ``query``, ``query_id``); ``labels`` is an ``ImageID,Label`` file. Returns
    the search summary (None without distances or labels); it is also ``rc.stats["search"]``.
    """
    out_dir = Path(out_dir)
    scores = None
    if input_counts:
        scores = _enrichment(out_dir, rc, input_counts)
    search = None
    if distances or features or labels:
        search = _search(out_dir, rc, scores, distances=distances, features=features,
                         query=query, query_id=query_id, k=k, labels=labels,
                         query_label=query_label, map_ks=map_ks, name=name, gallery=gallery,
                         images=images)
        if scores is not None:
            search["ranking"] = f"enrichment over the input library {input_counts}"
        rc.stats["search"] = search
    rc.write(out_dir)
    return search


def _enrichment(out_dir, rc, input_counts):
    from .. import reads as R

    inp = R.align_counts(R.ReadCounts.read(input_counts), rc.image_ids, source=input_counts)
    if inp.counts.sum() == 0:
        raise DataError("the input library has no reads", path=input_counts,
                        hint="give the counts of the pool sequenced without hybridization")
    e = write_enrichment(out_dir / "enrichment.csv.gz", rc.image_ids, rc.counts, inp.counts)
    rc.stats["input_library"] = {"source": str(input_counts), "reads": int(inp.counts.sum()),
                                 "documents_seen": int((inp.counts > 0).sum())}
    return e


def _search(out_dir, rc, scores, *, distances, features, query, query_id, k, labels,
            query_label, map_ks, name, gallery, images):
    from ..evaluation import recall as Q
    from .report import ImageSource, write_results_page

    dist = None
    qid = query_id
    if distances:
        dist = Q.load_distances(distances, rc.image_ids)
        qid = qid or Path(distances).name.split(".")[0]
    elif features:
        dist, qid = Q.distances_from_features(features, query, rc.image_ids, query_id=query_id)
    lab = None
    if labels:
        lab, table = Q.read_labels(labels, rc.image_ids)
        if query_label is None:
            if qid is None or str(qid) not in table:
                raise UsageError("the query's label is unknown",
                                 hint="give `query_label`, or a row for the query in `labels`")
            query_label = table[str(qid)]
    page_id = qid or name or "query"
    search, res = evaluate_query(out_dir, rc.counts, rc.image_ids, dist,
                                 name=name or qid or "primo", k=k, enrichment=scores,
                                 rank_by_enrichment=True, labels=lab, query_label=query_label,
                                 map_ks=tuple(map_ks) or DEFAULT_MAP_KS, page_id=page_id,
                                 gallery=gallery)
    if res is not None:
        info = write_results_page(out_dir, [res],
                                  images=ImageSource([features, query], images_dir=images),
                                  gallery=gallery > 0, title=f"primo analyze: query {page_id}")
        search["report"] = {"page": "report.html", "pictures": info["pictures"],
                            "placeholders": len(info["placeholders"]),
                            "why_no_pictures": info["why_no_pictures"]}
    return search
