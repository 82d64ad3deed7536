"""primo's curves in the benchmark: rows from read counts or yields thresholded on a shared grid
(:func:`primo_rows_from_counts`), from precomputed points (:func:`primo_rows_from_points`,
:func:`read_primo_curve`), and the counts tables they are read from (:func:`read_counts_table`,
:func:`read_counts_dir`).

Every name here is importable from :mod:`primo.benchmark.core`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..io import path_inside, read_csv_rows, read_id_table
from .rows import BenchmarkRow, _num

__all__ = ["primo_rows_from_counts", "primo_rows_from_points", "read_counts_table",
           "read_counts_dir", "read_primo_curve", "PRIMO_HOW_COUNTED"]


PRIMO_HOW_COUNTED = ("primo: retrieved = documents whose read count (or simulated yield) is at or "
                     "above the threshold; found = true neighbors among them; thresholds on a "
                     "shared log-spaced grid so that queries can be averaged per threshold")


def _threshold_grid(max_count: float, n_thresholds: int) -> np.ndarray:
    if max_count <= 0:
        return np.array([1.0])
    if float(max_count).is_integer() and max_count >= 1:
        return np.unique(np.logspace(0, math.log10(max_count), n_thresholds).astype(np.int64)).astype(float)
    lo = max_count * 1e-6
    return np.unique(np.logspace(math.log10(lo), math.log10(max_count), n_thresholds))


def primo_rows_from_counts(counts_by_query: dict, nn, query_ids, db_size: int, k: int,
                           n_thresholds: int = 500, algorithm: str = "primo"):
    """Benchmark rows of primo from per-document counts (or yields) per query.

    Parameters
    ----------
    counts_by_query : dict
        ``{query id: (rows, values)}``: database row numbers and their count (or yield); rows not
        given count 0. Queries missing from the dict get no primo rows.
    nn : array (M x k)
        Exact neighbor rows of the queries, in ``query_ids`` order.
    n_thresholds : int
        Size of the shared log-spaced threshold grid (1 .. the largest count), as in the
        original analysis.

    Examples
    --------
    >>> rows = primo_rows_from_counts({"q": (np.array([0, 1, 2]), np.array([9, 3, 1]))},
    ...                               np.array([[0, 2]]), ["q"], db_size=10, k=2, n_thresholds=3)
    >>> [(r.params, r.n_retrieved, r.n_found) for r in rows]
    [('threshold=1', 3, 2), ('threshold=3', 2, 1), ('threshold=9', 1, 1)]
    """
    present = [(i, q) for i, q in enumerate(query_ids) if q in counts_by_query]
    if not present:
        return []
    mx = 0.0
    for _, q in present:
        v = np.asarray(counts_by_query[q][1], dtype=float)
        if len(v):
            mx = max(mx, float(v.max()))
    grid = _threshold_grid(mx, n_thresholds)
    rows = []
    for i, q in present:
        r, v = counts_by_query[q]
        r = np.asarray(r, dtype=np.int64)
        v = np.asarray(v, dtype=float)
        full = np.zeros(db_size, dtype=float)
        full[r] = v
        srt = np.sort(v[v > 0])
        nn_vals = full[np.asarray(nn[i], dtype=np.int64)]
        for t in grid:
            n_ret = len(srt) - int(np.searchsorted(srt, t, side="left"))
            found = int(np.count_nonzero(nn_vals >= t))
            rows.append(BenchmarkRow(algorithm, str(q), n_ret, db_size, k, found,
                                     f"threshold={_num(t)}"))
    return rows


def primo_rows_from_points(query_ids, proportion, recall, params, db_size: int, k: int,
                           algorithm: str = "primo"):
    """Benchmark rows of primo from (proportion retrieved, recall fraction) arrays.

    All four sequences have one entry per point; ``params`` labels the setting (e.g. the
    threshold) so that points of different queries can be averaged together.
    """
    n = len(query_ids)
    if not (len(proportion) == len(recall) == len(params) == n):
        raise UsageError("query_ids, proportion, recall and params must have the same length")
    rows = []
    for q, p, r, s in zip(query_ids, proportion, recall, params):
        p, r = float(p), float(r)
        if not (0 <= p <= 1 and 0 <= r <= 1):
            raise DataError(f"primo point of query {q!r} out of range (proportion {p}, recall {r})",
                            hint="proportion and recall are fractions between 0 and 1")
        rows.append(BenchmarkRow(algorithm, str(q), round(p * db_size, 6), db_size, k,
                                 round(r * k, 6), str(s)))
    return rows


def read_counts_table(path, db_index: dict, what: str = "counts table", column: str = "Count"):
    """Read an ``ImageID,Count`` table (plain or gzip) into ``(rows, counts)`` of the database.

    Counts may be integers (reads) or non-negative reals (yields, enrichment scores: ``column``
    names the value column). An ImageID that is not in the database, a repeated ImageID, or a bad
    count raises :class:`DataError` naming file and line.
    """
    ids, vals, lines = read_id_table(
        path, column, what=what, convert=float, kind="a number",
        check=lambda c: "" if math.isfinite(c) and c >= 0 else "is negative or not finite",
        hint="counts are read counts or yields (>= 0), e.g. 12 or 0.37")
    rows = []
    for iid, line in zip(ids, lines):
        r = db_index.get(iid)
        if r is None:
            raise DataError(f"ImageID {iid!r} is not in the database feature store", path=path,
                            line=line, hint="use counts of the same database as `features`")
        rows.append(r)
    return np.array(rows, dtype=np.int64), np.array(vals, dtype=float)


def _counts_file(directory: Path, qid: str, ranking: str = "counts"):
    cands = ((f"{qid}.csv.gz", f"{qid}.csv", f"{qid}/counts.csv.gz", f"{qid}/counts.csv")
             if ranking == "counts" else (f"{qid}/enrichment.csv.gz", f"{qid}/enrichment.csv"))
    for cand in cands:
        # the query ID comes from the query store, which may be someone else's
        p = path_inside(directory, cand, what="query ID", record=qid, follow_links=False)
        if p.is_file():
            return p
    return None


def _magnitude_limit(dim: int) -> float:
    """The largest feature value whose squared distances still fit float32 (the exact
    neighbors and every peer compute them in float32): 4 m^2 D < 3.4e38."""
    return float(np.sqrt(np.finfo(np.float32).max / (4.0 * max(int(dim), 1))))


def _check_magnitude(X, limit: float, path, item=None):
    """``item`` (default ``X``), after checking that no value of ``X`` (or of a ``(rows, X)``
    chunk) makes distances overflow: they would all be inf, and every ranking a tie."""
    M = X[1] if isinstance(X, tuple) else X
    m = float(np.max(np.abs(M))) if np.size(M) else 0.0
    if m > limit:
        raise DataError(f"feature values as large as {m:.3g} make squared Euclidean distances "
                        f"overflow (float32; the largest usable magnitude at this dimension is "
                        f"{limit:.3g})", path=path,
                        hint="rescale the features (e.g. divide by their largest value)")
    return X if item is None else item


def read_counts_dir(directory, query_ids, db_index: dict, ranking: str = "counts"):
    """Counts of every query that has a table in ``directory``.

    A query's table is ``DIR/<query id>.csv[.gz]`` or ``DIR/<query id>/counts.csv[.gz]`` (the
    layout ``primo analyze`` / ``primo simulate`` write); with ``ranking="enrichment"``,
    ``DIR/<query id>/enrichment.csv[.gz]`` (``primo simulate --input-library``), column
    ``Enrichment``. Queries without one are reported in the second return value.
    """
    if ranking not in ("counts", "enrichment"):
        raise UsageError(f"unknown ranking {ranking!r}", hint="use counts or enrichment")
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"the counts directory {directory} is not a directory", option="counts_dir")
    out, missing = {}, []
    for q in query_ids:
        p = _counts_file(directory, str(q), ranking)
        if p is None:
            missing.append(str(q))
            continue
        out[str(q)] = read_counts_table(p, db_index,
                                        column="Count" if ranking == "counts" else "Enrichment")
    if not out:
        raise UsageError(f"the counts directory {directory} has no {ranking} table for any query",
                         hint="name them <query id>.csv.gz with columns ImageID,Count"
                         if ranking == "counts" else "simulate one with an input library")
    return out, missing


def read_primo_curve(path, query_ids=None, db_size: int | None = None, k: int | None = None):
    """primo rows from a CSV in the benchmarks layout (other algorithms' rows are ignored).

    Required columns: ``Query ID``, ``Number Retrieved``, ``Nearest Neighbor Recall``; optional:
    ``Algorithm`` (rows whose value is not ``primo`` are skipped), ``Database Size``,
    ``# of Nearest Neighbors`` (must match this benchmark), ``Algorithm Parameters``.
    """
    req = ["Query ID", "Number Retrieved", "Nearest Neighbor Recall"]
    rows = []
    known = None if query_ids is None else {str(q) for q in query_ids}
    for line, rec in read_csv_rows(path, req, "primo curve"):
        if rec.get("Algorithm", "primo").strip() not in ("primo", ""):
            continue
        q = rec["Query ID"].strip()
        if known is not None and q not in known:
            raise DataError(f"Query ID {q!r} is not in the query store", path=path, line=line,
                            hint="use the IDs of `queries`")
        try:
            nr, nf = float(rec["Number Retrieved"]), float(rec["Nearest Neighbor Recall"])
            n_db = int(float(rec.get("Database Size") or db_size or 0))
            kk = int(float(rec.get("# of Nearest Neighbors") or k or 0))
        except ValueError:
            raise DataError("a number column holds something that is not a number", path=path,
                            line=line) from None
        if db_size is not None and n_db != db_size:
            raise DataError(f"Database Size {n_db} differs from the database ({db_size})",
                            path=path, line=line, hint="use a curve of the same database")
        if k is not None and kk != k:
            raise DataError(f"# of Nearest Neighbors {kk} differs from k = {k}", path=path,
                            line=line, hint=f"run with k = {kk}", option="k")
        if not (0 <= nr <= n_db and 0 <= nf <= kk):
            raise DataError(f"Number Retrieved {nr} / recall {nf} out of range", path=path,
                            line=line)
        rows.append(BenchmarkRow("primo", q, nr, n_db, kk, nf,
                                 (rec.get("Algorithm Parameters") or f"row={line}").strip()))
    if not rows:
        raise DataError("no primo rows", path=path,
                        hint="the file needs rows with Algorithm=primo (or no Algorithm column)")
    return rows
