"""Feature sources, pair sampling and threshold calibration for training.

Training needs pairs of feature vectors labelled *similar* (Euclidean distance <= threshold) or
not, drawn from feature stores that may be much larger than memory (1.6 M x 4096 floats = 26 GB).

Block sampling scheme (:class:`PairSampler`)
--------------------------------------------
* The rows of the store are cut into *segments* of ``segment_rows`` consecutive rows (a whole
  number of HDF5 chunks, so reading one costs one contiguous read).
* A *block* is ``block_rows`` rows made of randomly chosen segments (at most ``block_rows`` x D
  floats in memory; by default about 256 MB and at most ``2e11 / D`` rows, so that the brute
  force below stays a few seconds). Stores that fit in one block are loaded whole, once.
* In a block, every similar pair is found by a chunked brute-force distance computation (upper
  triangle, ``chunksize`` rows at a time; at most ``max_similar`` pairs are kept, a uniform random
  subset when there are more).
* Balanced batches take half their pairs from that list and half from uniformly random pairs of the
  block that are *not* similar; predictor batches take uniformly random pairs (not balanced).
* :meth:`PairSampler.refresh` loads a new block (the trainer refreshes every ``refresh_every``
  rounds), so over a training run the pairs come from the whole store.
* Held-out rows (for the figures and the separation metrics, :func:`choose_heldout`) are whole
  segments too; they never enter a training block.

Similar pairs are pairs *within* a block, so in a store whose rows are sorted by content (e.g. by
class), similar pairs inside a segment are over-represented; a shuffled store avoids that.

Threshold calibration (:func:`calibrate_threshold`): the ``quantile`` of the Euclidean distances of
all pairs of a random sample of rows (``--threshold auto``; the quantile, the sample size and the
resulting distance are recorded in the model card). VGG16-FC2 features keep the paper's fixed 75.

Why one module of ~630 lines: the block sampling above is one design. The training blocks and
the held-out rows are cut from the same segment layout (``_segments``, ``_rows_of``, the block
budgets); the threshold is calibrated outside the held-out rows with the same distances
(:func:`pairwise_sq_distances`) the sampler finds similar pairs with; :class:`PairSampler`,
:func:`choose_heldout`, :func:`calibrate_threshold` and :func:`heldout_pairs` read best beside the
rules they share.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

__all__ = [
    "ArrayFeatures", "open_features", "fingerprint", "calibrate_threshold", "choose_heldout",
    "PairSampler", "pairwise_sq_distances", "default_block_rows", "row_norm_stats",
    "heldout_pairs", "neighbor_radii", "scaled_neighbors",
]

#: brute-force budget per block (rows^2 x dim multiply-adds)
_BLOCK_FLOPS = 2e11
#: memory budget of a block, bytes
_BLOCK_BYTES = 256 << 20


class ArrayFeatures:
    """An in-memory matrix with the reading interface of :class:`primo.features.store.FeatureStore`.

    Parameters
    ----------
    X : array (N x D)
        Feature vectors.
    ids : sequence of str, optional
        Document IDs (default ``"0"``, ``"1"``, ...).
    metadata : dict, optional
        Extractor description, copied into model cards.
    labels : array of int, optional
        Class labels (only used for reports).
    """

    def __init__(self, X, ids=None, metadata: dict | None = None, labels=None, path=None):
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise DataError(f"features must be a 2-D matrix, got shape {X.shape}")
        self._X = X
        self._ids = (np.array([str(i) for i in range(len(X))]) if ids is None
                     else np.asarray([str(i) for i in ids]))
        self.metadata = dict(metadata or {})
        self.labels = None if labels is None else np.asarray(labels)
        self.path = Path(path) if path is not None else None
        self.chunk_rows = 1024

    @property
    def n(self) -> int:
        return int(self._X.shape[0])

    @property
    def dim(self) -> int:
        return int(self._X.shape[1])

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        return self._X[start:stop]

    def read_index(self, rows) -> np.ndarray:
        return self._X[np.asarray(rows, dtype=np.int64)]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_features(path):
    """Open a feature store for training; an empty store is a :class:`DataError`."""
    from ..features.store import FeatureStore

    fs = FeatureStore.open(path)
    if fs.n == 0:
        fs.close()
        raise DataError("feature store has no rows, nothing to train on", path=path,
                        hint="extract features into it first with `primo extract ... -o FILE.h5`")
    if fs.n < 4:
        n = fs.n
        fs.close()
        raise DataError(f"feature store has only {n} rows; training needs at least 4", path=path,
                        hint="extract more documents")
    try:
        _check_unique_ids(fs.ids, path)
    except BaseException:
        fs.close()
        raise
    return fs


def _check_unique_ids(ids, path) -> None:
    """A repeated document ID is a DataError naming it and its rows: the model card, the pool and
    every count table key documents by ID, so two rows of one ID cannot both be trained on."""
    from ..arrays import unique

    ids = np.asarray(ids)
    if len(unique(ids)) == len(ids):
        return
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    k = int(np.flatnonzero(s[1:] == s[:-1])[0])
    a, b = sorted((int(order[k]), int(order[k + 1])))
    raise DataError(f"document ID {str(s[k])!r} appears twice (rows {a} and {b})", path=path,
                    record=b, hint="document IDs must be unique; re-create the store with one "
                                   "row per document")


def fingerprint(source, sample: int = 256) -> str:
    """A checksum-like fingerprint of a feature source: n, dim, IDs at both ends, sampled rows."""
    h = hashlib.sha256()
    n, dim = int(source.n), int(source.dim)
    h.update(f"{n}x{dim}".encode())
    ids = source.ids
    for part in (ids[:sample], ids[max(0, n - sample):]):
        h.update("\n".join(map(str, part)).encode())
    rows = np.unique(np.linspace(0, n - 1, num=min(n, sample)).astype(np.int64))
    h.update(np.ascontiguousarray(source.read_index(rows), dtype=np.float32).tobytes())
    return "sha256:" + h.hexdigest()[:32]


def pairwise_sq_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows of A and rows of B (float64, clipped at 0)."""
    from ..evaluation.neighbors import squared_distances

    return squared_distances(np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64))


def default_block_rows(dim: int) -> int:
    """Rows per training block for ``dim``-dimensional features (memory and brute-force budgets)."""
    by_mem = _BLOCK_BYTES // (4 * max(1, dim))
    by_flops = int(np.sqrt(_BLOCK_FLOPS / max(1, dim)))
    return int(max(256, min(by_mem, by_flops, 50_000)))


def _segments(n: int, segment_rows: int) -> np.ndarray:
    return np.arange(0, n, segment_rows, dtype=np.int64)


def _rows_of(starts, segment_rows: int, n: int) -> np.ndarray:
    if len(starts) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(s, min(n, s + segment_rows), dtype=np.int64)
                           for s in sorted(starts)])


def _segment_rows_for(source, block_rows: int) -> int:
    chunk = int(getattr(source, "chunk_rows", 1024) or 1024)
    want = max(1, block_rows // 32)
    if want >= chunk:
        return int(want // chunk * chunk)
    return int(max(1, want))


def choose_heldout(source, n_rows: int, rng: np.random.Generator, segment_rows: int | None = None):
    """Pick about ``n_rows`` held-out rows as random whole segments.

    Returns
    -------
    rows : ndarray of int64
        Sorted held-out row numbers.
    segment_rows : int
        The segment length used (recorded so that a resumed run rebuilds the same split).
    """
    n = int(source.n)
    n_rows = int(min(max(0, n_rows), n // 2))
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64), int(segment_rows or 1)
    if segment_rows is None:
        segment_rows = max(1, min(_segment_rows_for(source, default_block_rows(source.dim)),
                                  max(1, n_rows // 16)))
    starts = _segments(n, segment_rows)
    k = int(min(len(starts), max(1, round(n_rows / segment_rows))))
    chosen = rng.choice(starts, size=k, replace=False)
    return _rows_of(chosen, segment_rows, n), int(segment_rows)


def row_norm_stats(source, rows: np.ndarray | None = None, max_rows: int = 100_000,
                   rng: np.random.Generator | None = None, chunksize: int = 8192):
    """Mean vector and mean squared norm of centered rows, over at most ``max_rows`` rows.

    Used for the encoder's input scaling. Reads in chunks of ``chunksize`` rows.
    """
    n = int(source.n)
    if rows is None:
        rows = np.arange(n, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) > max_rows:
        rng = rng or np.random.default_rng(0)
        rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
    s = np.zeros(source.dim, dtype=np.float64)
    ss = 0.0
    for a in range(0, len(rows), chunksize):
        X = np.asarray(source.read_index(rows[a:a + chunksize]), dtype=np.float64)
        s += X.sum(0)
        ss += float((X * X).sum())
    m = len(rows)
    mean = s / max(m, 1)
    # E|x - mean|^2 = E|x|^2 - |mean|^2
    msq = max(ss / max(m, 1) - float(mean @ mean), 0.0)
    return mean.astype(np.float32), msq


def calibrate_threshold(source, quantile: float, rng: np.random.Generator,
                        sample_rows: int = 3000, exclude: np.ndarray | None = None):
    """The ``quantile`` of pairwise Euclidean distances in a random sample of rows.

    Parameters
    ----------
    source : FeatureStore or ArrayFeatures
    quantile : float
        Fraction of random pairs that will count as similar, in (0, 0.5].
    rng : numpy.random.Generator
    sample_rows : int
        Rows in the sample (``sample_rows * (sample_rows - 1) / 2`` pairs).
    exclude : array of int, optional
        Rows not to use (held-out rows).

    Returns
    -------
    threshold : float
    info : dict
        ``{"method": "quantile", "quantile", "sample_rows", "sample_pairs"}`` for the model card.
    """
    if not 0 < quantile <= 0.5:
        raise UsageError(f"the threshold quantile must be in (0, 0.5], got {quantile}",
                         option="threshold_quantile", hint="e.g. 0.01")
    n = int(source.n)
    avail = np.setdiff1d(np.arange(n, dtype=np.int64), exclude if exclude is not None else [])
    m = int(min(sample_rows, len(avail)))
    if m < 2:
        raise DataError(f"too few rows ({m}) to calibrate a threshold",
                        path=getattr(source, "path", None), option="threshold",
                        hint="give a numeric `threshold`")
    rows = np.sort(rng.choice(avail, size=m, replace=False))
    X = source.read_index(rows)
    d2 = []
    for a in range(0, m, 1024):
        b = min(m, a + 1024)
        D = pairwise_sq_distances(X[a:b], X[a:])
        upper = np.arange(a, m)[None, :] > np.arange(a, b)[:, None]
        d2.append(D[upper])
    d = np.sqrt(np.concatenate(d2))
    thr = float(np.quantile(d, quantile))
    if thr <= 0:
        positive = d[d > 0]
        thr = float(positive.min()) if len(positive) else 0.0
    info = {"method": "quantile", "quantile": float(quantile), "sample_rows": m,
            "sample_pairs": int(len(d))}
    return thr, info


def scaled_neighbors(neighbors: int, rows: int, total: int) -> int:
    """The neighbour rank in a subset of ``rows`` rows that stands for rank ``neighbors`` among
    ``total`` rows (at least 1, at most ``rows - 1``)."""
    k = int(round(int(neighbors) * rows / max(int(total), 1)))
    return int(max(1, min(k, max(int(rows) - 1, 1))))


def neighbor_radii(X: np.ndarray, k: int, chunksize: int | None = None) -> np.ndarray:
    """Euclidean distance from each row of ``X`` to its ``k``-th nearest other row (exact,
    brute force in chunks of rows so that one distance matrix stays about 16 M entries).

    >>> neighbor_radii(np.array([[0.0], [1.0], [3.0]]), 1).tolist()
    [1.0, 1.0, 2.0]
    """
    X = np.asarray(X, dtype=np.float64)
    m = len(X)
    if m < 2:
        return np.zeros(m)
    k = int(min(max(int(k), 1), m - 1))
    norms = (X ** 2).sum(1)
    step = chunksize or _chunk_rows(m)
    r2 = np.empty(m)
    # one Gram buffer for every chunk (no fresh ~100 MB arrays a step); the distances are made
    # a few rows at a time from it, in a buffer that stays in the cache
    buf_g = np.empty(min(step, m) * m)
    sub = _cache_rows(m)
    buf_d = np.empty(min(sub, m) * m)
    for a in range(0, m, step):
        b = min(m, a + step)
        G = buf_g[:(b - a) * m].reshape(b - a, m)
        np.matmul(2.0 * X[a:b], X.T, out=G)
        for r0 in range(0, b - a, sub):
            r1 = min(b - a, r0 + sub)
            D = buf_d[:(r1 - r0) * m].reshape(r1 - r0, m)
            # the same operations, in the same order, as norms_a + norms - 2 X_a @ X.T
            np.add(norms[a + r0:a + r1, None], norms[None, :], out=D)
            np.subtract(D, G[r0:r1], out=D)
            D[np.arange(r1 - r0), np.arange(a + r0, a + r1)] = np.inf   # not its own neighbour
            r2[a + r0:a + r1] = _kth_smallest(D, k)
    return np.sqrt(np.maximum(r2, 0.0))


def _cache_rows(width: int) -> int:
    """Rows of ``width`` float64 that make about 2 MB (a block of distances that stays in cache)."""
    return int(max(1, (1 << 18) // max(int(width), 1)))


def _kth_smallest(D: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-th smallest value of each row of ``D`` (no NaN), exactly what
    ``np.partition(D, k - 1, axis=1)[:, k - 1]`` gives, without partitioning whole rows.

    The ``k``-th smallest of a strided subset of a row's columns bounds the row's ``k``-th
    smallest from above, so the row's values at or below that bound hold its ``k`` smallest
    (with repeats): the answer is the ``k``-th smallest of those few (about ``k * stride``).
    """
    rows, n = D.shape
    stride = int(math.sqrt(n / max(k, 1)))
    if stride < 4 or rows == 0:
        return np.partition(D, k - 1, axis=1)[:, k - 1]
    bound = np.partition(D[:, ::stride], k - 1, axis=1)[:, k - 1]
    mask = D <= bound[:, None]
    counts = mask.sum(1)
    vals = D[mask]                       # row by row
    width = int(counts.max())
    if width >= n // 2:                  # a row far from the others: no gain
        return np.partition(D, k - 1, axis=1)[:, k - 1]
    P = np.full((rows, width), np.inf)
    starts = np.cumsum(counts) - counts
    P[np.repeat(np.arange(rows), counts), np.arange(len(vals)) - np.repeat(starts, counts)] = vals
    return np.partition(P, k - 1, axis=1)[:, k - 1]


def _pair_scale(ra, rb):
    """The unit of a pair's distance in neighbourhood mode: the larger of the two radii (so a
    pair is similar when either document is among the other's neighbours); never 0.
    Widened by 1e-9 so that the K-th neighbour itself, whose scaled distance is 1 up to rounding
    (its distance is computed again, in other chunks), stays inside."""
    return np.maximum(np.maximum(ra, rb) * (1.0 + 1e-9), 1e-300)


class PairSampler:
    """Similar / dissimilar pairs from blocks of a (possibly huge) feature store.

    Parameters
    ----------
    source : FeatureStore or ArrayFeatures
    threshold : float
        Pairs at Euclidean distance <= threshold are similar.  With ``neighbors``, every distance
        the sampler returns or compares is in units of the pair's neighbourhood radius (see
        below), and the threshold is 1.
    rng : numpy.random.Generator
    block_rows : int, optional
        Rows per block (default :func:`default_block_rows`).
    exclude : array of int, optional
        Rows never used (held-out rows).
    chunksize : int
        Rows per step of the brute-force similar-pair search.
    max_similar : int
        Most similar pairs (and most near pairs) kept per block.
    near_factor : float, optional
        Also collect *near* dissimilar pairs, ``threshold < distance <= near_factor *
        threshold`` (hard negatives for :meth:`balanced`).
    neighbors : int, optional
        Similarity by neighbourhood instead of one global distance: a pair is similar when either
        document is among the other's ``neighbors`` nearest neighbours (of all the rows the
        sampler may use; a block of fewer rows uses the proportional rank,
        :func:`scaled_neighbors`). Each row's radius is the distance to that neighbour
        (:func:`neighbor_radii`), and a pair's distance is divided by the larger of its two
        radii, so the similar pairs are those at scaled distance <= 1 whatever the local density
        of the feature space.
    """

    def __init__(self, source, threshold: float, rng: np.random.Generator, *,
                 block_rows: int | None = None, exclude=None, chunksize: int = 2048,
                 max_similar: int = 500_000, near_factor: float | None = None,
                 neighbors: int | None = None):
        self.source = source
        self.neighbors = None if neighbors is None else int(neighbors)
        self.threshold = 1.0 if self.neighbors else float(threshold)
        self.radii = None
        self.last_radii = None
        self.rng = rng
        self.n = int(source.n)
        self.block_rows = int(block_rows or default_block_rows(source.dim))
        self.exclude = np.zeros(0, np.int64) if exclude is None else np.asarray(exclude, np.int64)
        self.chunksize = int(chunksize)
        self.max_similar = int(max_similar)
        self.near_factor = None if not near_factor or near_factor <= 1 else float(near_factor)
        self.near = np.zeros((0, 2), np.int64)
        self.segment_rows = _segment_rows_for(source, self.block_rows)
        self.n_available = self.n - len(self.exclude)
        self.whole = self.n_available <= self.block_rows
        self.segments: list[int] = []
        self.rows = np.zeros(0, np.int64)
        self.X = np.zeros((0, source.dim), np.float32)
        self.similar = np.zeros((0, 2), np.int64)
        self.similar_total = 0
        self.block_pairs = 0
        self.min_distance = math.inf

    # ------------------------------------------------------------------ blocks
    def refresh(self, segments=None) -> None:
        """Load a new block (or the given segment starts) and find its similar pairs."""
        if self.whole and self.rows.size:
            return
        if self.whole:
            starts = [0]
            rows = np.arange(self.n, dtype=np.int64)
        else:
            if segments is None:
                all_starts = _segments(self.n, self.segment_rows)
                k = int(min(len(all_starts), max(1, self.block_rows // self.segment_rows)))
                segments = self.rng.choice(all_starts, size=k, replace=False)
            starts = sorted(int(s) for s in segments)
            rows = _rows_of(starts, self.segment_rows, self.n)
        keep = ~np.isin(rows, self.exclude)
        self.segments = starts
        Xs = []
        if self.whole:
            Xs.append(np.asarray(self.source.read(0, self.n), dtype=np.float32))
        else:
            for s in starts:
                Xs.append(np.asarray(self.source.read(s, min(self.n, s + self.segment_rows)),
                                     dtype=np.float32))
        X = np.concatenate(Xs)[keep]
        self.rows = rows[keep]
        self.X = X
        if self.neighbors:
            self.radii = neighbor_radii(X, scaled_neighbors(self.neighbors, len(X),
                                                            self.n_available))
        self._find_similar()

    def _find_similar(self) -> None:
        X = self.X
        m = len(X)
        thr2 = self.threshold ** 2
        total_pairs = m * (m - 1) // 2
        self.block_pairs = total_pairs
        found, near = [], []
        n_found = 0
        near2 = (self.near_factor * self.threshold) ** 2 if self.near_factor else None
        Xd = X.astype(np.float64)
        norms = (Xd ** 2).sum(1)
        self.min_distance = math.inf
        step = min(self.chunksize, _chunk_rows(m))
        # each pair's squared unit, max(q_i, q_j): the same numbers as _pair_scale(ri, rj) ** 2
        # (rounding is monotone, so the larger radius gives the larger scaled square)
        q = None if self.radii is None else _pair_scale(self.radii, self.radii) ** 2
        # one Gram buffer for every chunk; the distances are made a few rows at a time from it,
        # in buffers that stay in the cache
        buf_g = np.empty(min(step, m) * m)
        buf_d = np.empty(max(1 << 18, m))     # _cache_rows(w) rows of w <= m columns
        buf_s = None if q is None else np.empty(len(buf_d))
        lower = np.tril(np.ones((min(step, m), min(step, m)), bool))   # c <= r: not a pair
        for a in range(0, m, step):
            b = min(m, a + step)
            w = m - a
            G = buf_g[:(b - a) * w].reshape(b - a, w)
            np.matmul(2.0 * Xd[a:b], Xd[a:].T, out=G)
            sims, nears, mins = [], [], []
            sub = _cache_rows(w)
            for r0 in range(0, b - a, sub):
                r1 = min(b - a, r0 + sub)
                D = buf_d[:(r1 - r0) * w].reshape(r1 - r0, w)
                # the same operations, in the same order, as norms_a + norms - 2 X_a @ X.T
                np.add(norms[a + r0:a + r1, None], norms[None, a:], out=D)
                np.subtract(D, G[r0:r1], out=D)
                if q is not None:
                    S = buf_s[:(r1 - r0) * w].reshape(r1 - r0, w)
                    np.maximum(q[a + r0:a + r1, None], q[None, a:], out=S)
                    np.maximum(D, 0.0, out=D)
                    np.divide(D, S, out=D)
                # only c > r (the upper triangle) are pairs: the others out
                D[:, :r1][lower[r0:r1, :r1]] = np.inf
                mins.append(D.min())
                flat = D.reshape(-1)
                # row by row, as np.nonzero; positions in the chunk's (b - a) x w matrix
                if near2 is not None:
                    hit = np.flatnonzero(flat <= near2)
                    is_sim = flat[hit] <= thr2
                    nears.append(hit[~is_sim] + r0 * w)
                    hit = hit[is_sim]
                else:
                    hit = np.flatnonzero(flat <= thr2)
                sims.append(hit + r0 * w)
            if m - 1 > a:
                self.min_distance = min(self.min_distance,
                                        float(np.sqrt(max(np.min(mins), 0.0))))
            # keep a uniform share of this chunk's pairs when the block has too many
            chunk_pairs = (b - a) * (m - a) - (b - a) * (b - a + 1) // 2
            quota = int(np.ceil(self.max_similar * chunk_pairs / max(total_pairs, 1))) + 1
            if near2 is not None:
                self._keep_flat(np.concatenate(nears), w, quota, a, near)
            n_found += self._keep_flat(np.concatenate(sims), w, quota, a, found)
        self.similar = np.concatenate(found) if found else np.zeros((0, 2), np.int64)
        self.near = np.concatenate(near) if near else np.zeros((0, 2), np.int64)
        self.similar_total = n_found

    def _keep_flat(self, hit: np.ndarray, width: int, quota: int, offset: int, out: list) -> int:
        """Append to ``out`` the (row, row) pairs at the flat positions ``hit`` (row by row) of a
        ``width``-column distance matrix whose first row and column are row ``offset`` (a uniform
        ``quota`` of them when there are more); return how many there were."""
        n = len(hit)
        if n > quota:
            hit = hit[self.rng.choice(n, size=quota, replace=False)]
        if n:
            ii, jj = np.divmod(hit, width)
            out.append(np.stack([ii + offset, jj + offset], axis=1))
        return n

    @property
    def similar_fraction(self) -> float:
        return self.similar_total / max(self.block_pairs, 1)

    # ------------------------------------------------------------------ pairs
    def _random_pairs(self, k: int):
        m = len(self.X)
        i = self.rng.integers(0, m, size=k)
        j = (i + self.rng.integers(1, m, size=k)) % m
        return i, j

    def _dist(self, i, j):
        d = self.X[i].astype(np.float64) - self.X[j].astype(np.float64)
        d = np.sqrt((d * d).sum(1))
        if self.radii is not None:
            d = d / _pair_scale(self.radii[i], self.radii[j])
        return d

    def dissimilar_pairs(self, k: int):
        """``k`` uniformly random pairs of the block whose distance is above the threshold."""
        out_i, out_j, got = [], [], 0
        for _ in range(100):
            i, j = self._random_pairs(max(2 * (k - got), 16))
            ok = self._dist(i, j) > self.threshold
            out_i.append(i[ok])
            out_j.append(j[ok])
            got += int(ok.sum())
            if got >= k:
                break
        i = np.concatenate(out_i)[:k]
        j = np.concatenate(out_j)[:k]
        if len(i) < k:
            raise DataError(f"similarity threshold {self.threshold:g} leaves almost no dissimilar "
                            f"pairs", path=getattr(self.source, "path", None),
                            option="threshold", hint="lower `threshold` or use `threshold` auto")
        return i, j

    def balanced(self, batch_size: int, hard_fraction: float = 0.0):
        """A batch of ``batch_size`` pairs, half similar: ``(Xa, Xb, similar)`` (float32).

        A ``hard_fraction`` of the dissimilar half comes from the near pairs (``near_factor``).
        With ``neighbors``, the rows' radii are left in ``last_radii`` (``(ra, rb)``).
        """
        if len(self.similar) == 0:
            raise DataError(f"similarity threshold {self.threshold:g} leaves no similar pairs "
                            f"in a block of {len(self.X)} rows",
                            path=getattr(self.source, "path", None),
                            option="threshold",
                            hint="use `threshold` auto, or a larger `threshold`")
        k_sim = batch_size // 2
        pick = self.rng.integers(0, len(self.similar), size=k_sim)
        si, sj = self.similar[pick, 0], self.similar[pick, 1]
        flip = self.rng.random(k_sim) < 0.5
        si, sj = np.where(flip, sj, si), np.where(flip, si, sj)
        k_dis = batch_size - k_sim
        k_hard = int(round(k_dis * hard_fraction)) if len(self.near) else 0
        di, dj = self.dissimilar_pairs(k_dis - k_hard)
        if k_hard:
            pick = self.rng.integers(0, len(self.near), size=k_hard)
            di = np.concatenate([di, self.near[pick, 0]])
            dj = np.concatenate([dj, self.near[pick, 1]])
        i = np.concatenate([si, di])
        j = np.concatenate([sj, dj])
        y = np.concatenate([np.ones(k_sim, np.float32), np.zeros(len(di), np.float32)])
        self.last_radii = None if self.radii is None else (self.radii[i], self.radii[j])
        return self.X[i], self.X[j], y

    def random(self, k: int, similar_fraction: float = 0.0, docs: int | None = None,
               near_fraction: float = 0.0):
        """``k`` random pairs, a ``similar_fraction`` of them drawn from the similar pairs and a
        ``near_fraction`` from the near pairs (see ``near_factor``).

        With ``docs``, the random pairs are drawn among ``docs`` random rows of the block, so
        each document takes part in about ``2 k / docs`` pairs (the simulator then computes each
        document's strand ensembles once for all its pairs).

        Returns ``(Xa, Xb, distance)``.
        """
        k_sim = int(round(k * similar_fraction)) if len(self.similar) else 0
        k_near = int(round(k * near_fraction)) if len(self.near) else 0
        k_near = min(k_near, k - k_sim)
        k_rnd = k - k_sim - k_near
        m = len(self.X)
        if docs is not None and 2 <= docs < m:
            pool = self.rng.choice(m, size=int(docs), replace=False)
            a = self.rng.integers(0, len(pool), size=k_rnd)
            b = (a + self.rng.integers(1, len(pool), size=k_rnd)) % len(pool)
            i, j = pool[a], pool[b]
        else:
            i, j = self._random_pairs(k_rnd)
        for n_pick, pairs in ((k_sim, self.similar), (k_near, self.near)):
            if n_pick:
                pick = self.rng.integers(0, len(pairs), size=n_pick)
                i = np.concatenate([i, pairs[pick, 0]])
                j = np.concatenate([j, pairs[pick, 1]])
        return self.X[i], self.X[j], self._dist(i, j)


def heldout_pairs(X: np.ndarray, threshold: float, n_similar: int, n_random: int,
                  rng: np.random.Generator, chunksize: int | None = None,
                  random_docs: int | None = None, neighbors: int | None = None,
                  reference_rows: int | None = None):
    """Evaluation pairs among held-out rows ``X``: up to ``n_similar`` similar pairs (uniform among
    all similar pairs) and ``n_random`` uniformly random pairs (among ``random_docs`` random rows
    when given, so that each document's strands serve several pairs).

    With ``neighbors`` (see :class:`PairSampler`), similarity is by neighbourhood among the
    held-out rows, at the rank that stands for ``neighbors`` among ``reference_rows`` rows, the
    returned distances are in units of the pairs' radii and ``threshold`` is 1.

    Returns ``(i, j, distance, kind)`` with ``kind`` 1 for the similar set, 0 for the random set.
    """
    m = len(X)
    if m < 2:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0), z
    chunksize = chunksize or _chunk_rows(m)
    radii = None
    if neighbors:
        threshold = 1.0
        radii = neighbor_radii(X, scaled_neighbors(neighbors, m, reference_rows or m))
    thr2 = float(threshold) ** 2
    Xd = X.astype(np.float64)
    norms = (Xd ** 2).sum(1)
    sims = []
    for a in range(0, m, chunksize):
        b = min(m, a + chunksize)
        D = norms[a:b, None] + norms[None, a:] - 2.0 * Xd[a:b] @ Xd[a:].T
        if radii is not None:
            D = np.maximum(D, 0.0) / _pair_scale(radii[a:b, None], radii[None, a:]) ** 2
        r = np.arange(a, b)[:, None]
        c = np.arange(a, m)[None, :]
        ii, jj = np.nonzero((D <= thr2) & (c > r))
        if len(ii):
            sims.append(np.stack([ii + a, jj + a], 1))
    sims = np.concatenate(sims) if sims else np.zeros((0, 2), np.int64)
    if len(sims) > n_similar:
        sims = sims[np.sort(rng.choice(len(sims), size=n_similar, replace=False))]
    # similar pairs in random order, random target/query roles
    sims = sims[rng.permutation(len(sims))]
    flip = rng.random(len(sims)) < 0.5
    sims = np.where(flip[:, None], sims[:, ::-1], sims)
    pool = np.arange(m)
    if random_docs is not None and 2 <= random_docs < m:
        pool = rng.choice(m, size=int(random_docs), replace=False)
    a = rng.integers(0, len(pool), size=n_random)
    b = (a + rng.integers(1, len(pool), size=n_random)) % len(pool)
    ri, rj = pool[a], pool[b]
    i = np.concatenate([sims[:, 0], ri]).astype(np.int64)
    j = np.concatenate([sims[:, 1], rj]).astype(np.int64)
    kind = np.concatenate([np.ones(len(sims), np.int64), np.zeros(n_random, np.int64)])
    d = X[i].astype(np.float64) - X[j].astype(np.float64)
    d = np.sqrt((d * d).sum(1))
    if radii is not None:
        d = d / _pair_scale(radii[i], radii[j])
    return i, j, d, kind


def _chunk_rows(m: int) -> int:
    """Rows per brute-force step so that one distance matrix stays about 16 M entries."""
    return int(max(16, min(4096, (16 << 20) // max(m, 1))))
