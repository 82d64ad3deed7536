"""Retrieval quality of a feature space: mAP@k (paper 004) by exact Euclidean search.

For each query the database is ranked by Euclidean distance (ties: lower database row first) and the
top ``k`` are kept. A retrieved item is relevant when its label equals the query's label. The
average precision at k of one query is

    AP@k = sum_{i=1..k} P(i) * rel(i) / (number of relevant items among the top k),

where P(i) is the precision of the top i; a query with no relevant item in its top k has AP 0. This
is the "average of the precision at every rank where a relevant item is found" of paper 004 (its
equation (5)); mAP@k is the mean over queries.

Everything is vectorised and chunked: queries ``chunksize`` at a time against the database in blocks,
keeping only a running top-k, so neither side needs a full distance matrix.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["map_at_k", "knn", "exact_knn", "average_precision_at_k", "squared_distances",
           "query_distances"]


def squared_distances(A, B) -> np.ndarray:
    """Squared Euclidean distances of every row of ``A`` to every row of ``B`` (float64, >= 0).

    The products ``A @ B.T`` and the row norms are computed in the inputs' precision (float32 BLAS
    for float32 features, float64 when either side is float64) and combined in float64: for
    4096-d float32 features this is several times faster than converting to float64 first, and the
    error stays far below the spread of distances between distinct documents.

    >>> squared_distances(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([[0.0, 0.0]])).tolist()
    [[0.0], [25.0]]
    """
    dtype = np.float64 if np.float64 in (np.asarray(A).dtype, np.asarray(B).dtype) else np.float32
    A = np.ascontiguousarray(A, dtype=dtype)
    B = np.ascontiguousarray(B, dtype=dtype)
    an = np.einsum("ij,ij->i", A, A).astype(np.float64)
    bn = np.einsum("ij,ij->i", B, B).astype(np.float64)
    d2 = (A @ B.T).astype(np.float64)
    d2 *= -2.0
    d2 += an[:, None]
    d2 += bn[None, :]
    return np.maximum(d2, 0.0, out=d2)


def query_distances(database, Q, chunksize: int | None = None):
    """Euclidean distances of every database row to every query, streamed in the store's order.

    Yields ``(ids, D)`` per chunk of ``database`` (a :class:`~primo.features.store.FeatureStore`):
    the chunk's ImageIDs and their distances to the queries ``Q`` (float64, rows x queries),
    computed by :func:`squared_distances` in float64.

    >>> class Store:
    ...     def iter_chunks(self, chunksize=None):
    ...         yield ["a", "b"], np.array([[0.0, 0.0], [3.0, 4.0]])
    >>> [(ids, D.tolist()) for ids, D in query_distances(Store(), [[0.0, 0.0]])]
    [(['a', 'b'], [[0.0], [5.0]])]
    """
    Q64 = np.atleast_2d(np.asarray(Q, dtype=np.float64))
    for ids, X in database.iter_chunks(chunksize):
        yield ids, np.sqrt(squared_distances(np.asarray(X, dtype=np.float64), Q64))


def _db_blocks(db_X, block_rows):
    """The database's rows in blocks, in order: an array, or a FeatureStore streamed in chunks."""
    if hasattr(db_X, "iter_chunks"):
        for _, X in db_X.iter_chunks(block_rows):
            yield X
    else:
        for a in range(0, len(db_X), block_rows):
            yield db_X[a:a + block_rows]


def knn(query_X, db_X, k: int, *, exclude_self: bool = False, chunksize: int = 512,
        db_block: int = 8192):
    """Exact k nearest neighbors by Euclidean distance (:func:`exact_knn`, queries in chunks).

    Parameters
    ----------
    query_X : array (Q, D)
    db_X : array (N, D) or FeatureStore
        The database; a :class:`~primo.features.store.FeatureStore` is streamed in blocks.
    k : int
    exclude_self : bool
        Query ``i`` is database row ``i`` (same set); do not return it as its own neighbor.
    chunksize : int
        Queries per step.
    db_block : int
        Database rows per step.

    Returns
    -------
    idx : int64 array (Q, k)
        Database rows, nearest first (ties: lower row first).
    dist : float64 array (Q, k)
        Their Euclidean distances.
    """
    query_X = np.asarray(query_X)
    n_db = db_X.n if hasattr(db_X, "iter_chunks") else len(db_X)
    dim_db = db_X.dim if hasattr(db_X, "iter_chunks") else np.asarray(db_X).shape[1]
    if query_X.ndim != 2 or query_X.shape[1] != dim_db:
        raise UsageError(f"queries have shape {query_X.shape}, database vectors have {dim_db} dimensions")
    k = int(k)
    avail = n_db - (1 if exclude_self else 0)
    if k < 1 or k > avail:
        raise UsageError(f"k={k} must be between 1 and the database size ({avail})")
    if exclude_self and len(query_X) != n_db:
        raise UsageError("exclude_self needs the queries to be the database itself (same rows)")
    Q = len(query_X)
    idx_out = np.empty((Q, k), dtype=np.int64)
    dist_out = np.empty((Q, k), dtype=np.float64)
    for qa in range(0, Q, chunksize):
        qb = min(Q, qa + chunksize)
        if exclude_self:
            idx, dist = _without_self(query_X, db_X, k, qa, qb, db_block)
        else:
            idx, dist = exact_knn(_db_blocks(db_X, db_block), query_X[qa:qb], k)
        idx_out[qa:qb], dist_out[qa:qb] = idx, dist
    return idx_out, dist_out


def average_precision_at_k(relevant: np.ndarray) -> np.ndarray:
    """AP@k of each row of a boolean (Q, k) relevance matrix (ranked, best first)."""
    rel = np.asarray(relevant, dtype=bool)
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)
    prec_sum = (hits / ranks * rel).sum(axis=1)
    n_rel = rel.sum(axis=1)
    return np.where(n_rel > 0, prec_sum / np.maximum(n_rel, 1), 0.0)


def map_at_k(query_X, query_labels, db_X, db_labels, k: int = 10, *, exclude_self: bool = False,
             chunksize: int = 512, return_per_query: bool = False):
    """Mean average precision at ``k`` of Euclidean retrieval, relevance = same label.

    Parameters
    ----------
    query_X : array (Q, D)
    query_labels : array (Q,)
    db_X : array (N, D) or FeatureStore
    db_labels : array (N,)
    k : int
    exclude_self : bool
        Queries are the database rows themselves (e.g. test vs test): skip each query's own row.
    chunksize : int
        Queries per step (memory ~ chunksize x database block).
    return_per_query : bool
        Also return the AP@k of every query.

    Returns
    -------
    float, or (float, array (Q,)) with ``return_per_query``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]]); y = np.array([0, 0, 1, 1])
    >>> map_at_k(X, y, X, y, k=1, exclude_self=True)
    1.0
    """
    query_labels = np.asarray(query_labels)
    db_labels = np.asarray(db_labels)
    if len(query_labels) != len(query_X):
        raise UsageError(f"{len(query_labels)} query labels for {len(query_X)} queries")
    n_db = db_X.n if hasattr(db_X, "iter_chunks") else len(db_X)
    if len(db_labels) != n_db:
        raise UsageError(f"{len(db_labels)} database labels for {n_db} database vectors")
    aps = np.empty(len(query_X), dtype=np.float64)
    for qa in range(0, len(query_X), chunksize):
        qb = min(len(query_X), qa + chunksize)
        if exclude_self:
            # the queries are database rows qa:qb (global row numbers)
            idx, _ = _without_self(query_X, db_X, k, qa, qb, chunksize)
        else:
            idx, _ = knn(query_X[qa:qb], db_X, k, chunksize=chunksize)
        rel = db_labels[idx] == query_labels[qa:qb, None]
        aps[qa:qb] = average_precision_at_k(rel)
    m = float(aps.mean()) if len(aps) else 0.0
    return (m, aps) if return_per_query else m


def _without_self(query_X, db_X, k, qa, qb, db_block):
    """k-NN of queries qa:qb (which are database rows qa:qb) excluding each one's own row."""
    idx, dist = exact_knn(_db_blocks(db_X, db_block), query_X[qa:qb], k + 1)
    own = idx == np.arange(qa, qb)[:, None]
    # drop the query's own row if present, else the (k+1)-th neighbor
    keep = ~own
    no_self = ~own.any(axis=1)
    keep[no_self, -1] = False
    idx = idx[keep].reshape(qb - qa, k)
    dist = dist[keep].reshape(qb - qa, k)
    return idx, dist


def _chunk_topk(item):
    """Best ``kk`` rows of one database chunk for every query: (rows, float64 squared distances)."""
    offset, Xc, Q, k = item
    Xc = np.ascontiguousarray(Xc, dtype=np.float32)
    C = Xc.shape[0]
    M, D = Q.shape
    kk = min(C, k + max(8, k // 8))
    d2 = squared_distances(Q.astype(np.float32), Xc)
    if kk < C:
        part = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(C), (M, C)).copy()
    exact = np.empty(part.shape, dtype=np.float64)
    Q64 = Q.astype(np.float64)
    block = max(1, (1 << 23) // max(1, kk * D))
    for a in range(0, M, block):
        b = min(M, a + block)
        diff = Xc[part[a:b]].astype(np.float64) - Q64[a:b, None, :]
        exact[a:b] = np.einsum("mkd,mkd->mk", diff, diff)
    return part.astype(np.int64) + offset, exact


def _merge_topk(rows_a, d_a, rows_b, d_b, k):
    rows = np.concatenate([rows_a, rows_b], axis=1)
    d = np.concatenate([d_a, d_b], axis=1)
    order = np.lexsort((rows, d), axis=-1)[:, :k]
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(d, order, axis=1)


def _iter_chunks(database, chunksize):
    if isinstance(database, np.ndarray):
        for a in range(0, database.shape[0], chunksize):
            yield database[a:a + chunksize]
        return
    for ch in database:
        yield ch[1] if isinstance(ch, tuple) else ch


def exact_knn(database, Q, k: int = 100, chunksize: int = 65536, mapper=None):
    """Exact k nearest neighbors (Euclidean) of each query, streaming the database in chunks.

    Parameters
    ----------
    database : numpy.ndarray or iterable
        N x D matrix, or an iterable of row chunks in order (arrays, or ``(ids, X)`` tuples such as
        :meth:`primo.features.store.FeatureStore.iter_chunks` yields).
    Q : array (M x D)
        Queries.
    k : int
        Neighbors per query (the database must have at least k rows).
    chunksize : int
        Rows per chunk when ``database`` is an array.
    mapper : primo.parallel.Mapper, optional
        Where chunks are scored (serial by default).

    Returns
    -------
    rows : numpy.ndarray (M x k, int64)
        Database row numbers, nearest first (ties broken by the smaller row).
    dist : numpy.ndarray (M x k, float64)
        Their Euclidean distances.

    Examples
    --------
    >>> X = np.array([[0.0], [3.0], [1.0], [10.0]], dtype=np.float32)
    >>> rows, dist = exact_knn(X, np.array([[0.9]]), k=2, chunksize=3)
    >>> rows.tolist(), np.round(dist, 3).tolist()
    ([[2, 0]], [[0.1, 0.9]])
    """
    Q = np.atleast_2d(np.asarray(Q, dtype=np.float32))
    if k < 1:
        raise UsageError(f"k must be at least 1, got {k}")
    M = Q.shape[0]
    rows = np.empty((M, 0), dtype=np.int64)
    dist = np.empty((M, 0), dtype=np.float64)
    offsets = {"n": 0}

    def items():
        for Xc in _iter_chunks(database, int(chunksize)):
            if Xc.shape[1] != Q.shape[1]:
                raise DataError(f"database vectors have {Xc.shape[1]} dimensions, queries "
                                f"{Q.shape[1]}", hint="use features from the same extractor")
            off = offsets["n"]
            offsets["n"] += Xc.shape[0]
            yield off, Xc, Q, k

    results = mapper.imap(_chunk_topk, items()) if mapper is not None else map(_chunk_topk, items())
    for r, d in results:
        rows, dist = _merge_topk(rows, dist, r, d, k)
    if offsets["n"] < k:
        raise UsageError(f"k={k} is larger than the database ({offsets['n']} documents)",
                         hint=f"use {max(1, offsets['n'])} or less", option="k")
    return rows, np.sqrt(np.maximum(dist, 0.0))
