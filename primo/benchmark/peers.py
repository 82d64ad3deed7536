"""In-silico similarity search peers, each instrumented to report its candidate set.

The paper (Bee et al., "Benchmarking of in silico algorithms") compares DNA similarity search with
approximate nearest-neighbour (ANN) indexes by their *candidate set*: the documents an algorithm
retrieves from memory and compares to the query. Its size divided by the database size is the
*proportion retrieved*; the number of the query's true k nearest neighbours in it is the *k-NN
recall*. Every peer here runs the real library and reports, per query and per search parameter,
``(number retrieved, true neighbours found)``. How each one is counted:

``hnsw`` -- faiss ``IndexHNSWFlat`` (M=16, efConstruction=100), ``efSearch`` swept.
    Retrieved = ``faiss.cvar.hnsw_stats.ndis`` for a one-query search: the number of distance
    computations the search made, every one of which reads a full vector and compares it with
    the query. hnswlib (the same algorithm) does not expose this count, which is why the faiss
    implementation is used. The greedy descent through the upper layers has no visited table,
    so a node compared on two layers counts twice: the figure is an upper bound on the number of
    distinct documents, too high by at most the upper-layer work, which does not depend on
    efSearch (Fashion-MNIST, 60,000 x 784, M=16: 73 of the 765 comparisons at efSearch=100, on
    54 distinct nodes; so at most ~10 % high there, ~4 % at efSearch=400). It is capped at N. Found = true neighbours among the k returned; because
    faiss offers every compared vector to its top-k result heap, the k returned are the exact
    top k of the candidate set, so this equals the true neighbours *in* the candidate set.
``hnsw-sq`` -- the paper's "quantized HNSW": faiss ``IndexHNSWSQ`` (8-bit scalar quantizer).
    Retrieved = ``ndis`` as above (8-bit codes are read and compared). Found = true neighbours
    among the k returned: the comparison uses approximate distances, so a true neighbour that
    was scanned but mis-ranked is not counted (a scanned document only counts once identified).
``faiss-ivf`` -- faiss ``IndexIVFFlat`` (nlist ~ 4 sqrt(N) k-means lists), ``nprobe`` swept.
    Retrieved = the summed sizes of the ``nprobe`` inverted lists whose centroids are nearest to
    the query (read from the index's own coarse quantizer and inverted lists; equal to faiss's
    ``indexIVF_stats.ndis``). Found = true neighbours whose IDs are in those lists. The
    nprobe lists are nested, so both grow monotonically with nprobe.
``faiss-ivfpq`` -- faiss ``IndexIVFPQ`` (same coarse quantizer layout, PQ codes of 8 bits per
    sub-vector), ``nprobe`` swept. Retrieved = summed sizes of the probed lists (every PQ code in
    them is read and compared -- approximately, through lookup tables). Found = true
    neighbours among the k returned, since approximate distances can mis-rank scanned ones.
``annoy`` -- Spotify annoy (Euclidean, ``n_trees`` trees), ``search_k`` swept. annoy collects
    leaves from its trees until it holds ``search_k`` items (duplicates included), removes
    duplicates, computes the exact distance of each distinct item and returns the best n. Asking
    for ``n`` = N returns *all* of them, so retrieved = the length of that answer, and found =
    true neighbours in it. A leaf holds up to about D items, so annoy cannot go below roughly
    one leaf per tree.
``mrpt`` -- MRPT (multiple random projection trees, the maintained successor of the RPForest
    family the paper used; lyst/rpforest does not build on Python 3.11), depth and number of
    trees and ``votes_required`` swept. Candidates are the points that fall in the query's leaf in
    at least ``votes_required`` trees; MRPT computes their exact distances. Asking for k = N
    returns all of them (the rest is padded with -1), so retrieved = the non-negative answers.
    MRPT's Python binding takes no seed (its trees come from ``std::random_device``), so its
    points vary slightly from run to run; every other peer is seeded and repeatable.
``lsh`` -- random-projection locality-sensitive hashing (paper 004), implemented here
    (:class:`RandomProjectionLSH`): ``n_bits`` sign bits of random hyperplanes through the
    database mean per table, ``n_tables`` tables, optionally multi-probe of every bucket within
    Hamming ``radius`` of the query's. Retrieved = the distinct documents in the union of the
    probed buckets; found = true neighbours among them.

Peers that need a library which does not import are skipped with a one-line warning
(:func:`resolve_peers`). Add a peer by subclassing :class:`Peer` and calling :func:`register_peer`.

Examples
--------
>>> import numpy as np
>>> X = np.array([[1, 1], [2, 1], [-1, 1], [-1, -2], [1, -1]], dtype=np.float32)
>>> lsh = RandomProjectionLSH(n_bits=2, n_tables=1, projections=np.eye(2), center=False).fit(X)
>>> lsh.candidates(np.array([3.0, 2.0])).tolist()      # same quadrant (+, +)
[0, 1]
>>> lsh.candidates(np.array([3.0, 2.0]), radius=1).tolist()   # plus quadrants one bit away
[0, 1, 2, 4]
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
import itertools
import math
from typing import Iterator

import numpy as np

from ..arrays import unique
from ..progress import silenced_stderr

from ..errors import UsageError

__all__ = [
    "SweepPoint", "Peer", "HNSWPeer", "HNSWSQPeer", "IVFFlatPeer", "IVFPQPeer", "AnnoyPeer",
    "MRPTPeer", "LSHPeer", "RandomProjectionLSH", "PEERS", "DEFAULT_PEERS", "register_peer",
    "peer_unavailable_reason", "resolve_peers", "count_found",
]


@dataclasses.dataclass
class SweepPoint:
    """One search-parameter setting of one peer, measured on every query.

    Attributes
    ----------
    params : str
        The index and search parameters, ``key=value`` separated by spaces.
    n_retrieved : numpy.ndarray
        Candidate-set size per query (int64, shape (M,)).
    n_found : numpy.ndarray
        True k nearest neighbours counted per query (int64, shape (M,)).
    """

    params: str
    n_retrieved: np.ndarray
    n_found: np.ndarray


def count_found(candidates, nn_row, mark: np.ndarray) -> int:
    """Number of the true neighbours ``nn_row`` among ``candidates``.

    ``mark`` is a reusable boolean array of the database size, all False on entry and on return.
    """
    mark[nn_row] = True
    try:
        c = np.asarray(candidates, dtype=np.int64)
        c = c[c >= 0]
        return int(np.count_nonzero(mark[unique(c)])) if len(c) else 0
    finally:
        mark[nn_row] = False


def _seq(v) -> tuple:
    """An option given as one value or several, as a tuple of ints."""
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        v = [v]
    try:
        return tuple(int(x) for x in v)
    except (TypeError, ValueError):
        raise UsageError(f"peer option value {', '.join(map(str, v))} is not a whole number "
                         "(or a comma-separated list of them)",
                         option="peer_options",
                         hint="e.g. hnsw.ef_search=100,200,400") from None


def _params(**kw) -> str:
    return " ".join(f"{k}={v}" for k, v in kw.items())


class Peer(abc.ABC):
    """Base class of an instrumented ANN peer.

    Subclasses set :attr:`name`, :attr:`requires` (modules that must import) and
    :attr:`how_counted`, and implement :meth:`build` and :meth:`sweep`.
    """

    name = "peer"
    requires: tuple = ()
    how_counted = ""

    def __init__(self, seed: int = 0, threads: int | None = None):
        self.seed = int(seed)
        self.threads = threads

    @abc.abstractmethod
    def build(self, X: np.ndarray) -> None:
        """Build the index over the database matrix ``X`` (N x D float32)."""

    @abc.abstractmethod
    def sweep(self, Q: np.ndarray, nn: np.ndarray, k: int) -> Iterator[SweepPoint]:
        """Yield one :class:`SweepPoint` per search parameter, for queries ``Q`` (M x D).

        ``nn`` (M x k, int64) are the exact nearest-neighbour row numbers of each query.
        """

    def describe(self) -> str:
        return self.name


def _geometric(lo: int, hi: int, factor: float = 2.0) -> list[int]:
    out, v = [], float(max(1, lo))
    while v < hi:
        out.append(int(round(v)))
        v *= factor
    out.append(int(hi))
    return sorted(set(out))


# ---------------------------------------------------------------------------------------- faiss
def _faiss():
    import faiss

    return faiss


class _FaissPeer(Peer):
    requires = ("faiss",)

    def _set_threads(self):
        if self.threads:
            _faiss().omp_set_num_threads(int(self.threads))


class HNSWPeer(_FaissPeer):
    """HNSW graph (faiss IndexHNSWFlat); retrieved = distance computations (``hnsw_stats.ndis``)."""

    name = "hnsw"
    how_counted = ("faiss IndexHNSWFlat; retrieved = hnsw_stats.ndis of a one-query search "
                   "(distance computations, capped at N); found = true neighbours among the k "
                   "returned (= in the candidate set, exact distances)")

    def __init__(self, M: int = 16, ef_construction: int = 100, ef_search=None, **kw):
        super().__init__(**kw)
        self.M = int(M)
        self.ef_construction = int(ef_construction)
        self.ef_search = ef_search

    def _make_index(self, d):
        return _faiss().IndexHNSWFlat(d, self.M)

    def build(self, X):
        faiss = _faiss()
        self._set_threads()
        self.N = X.shape[0]
        idx = self._make_index(X.shape[1])
        idx.hnsw.efConstruction = self.ef_construction
        if not idx.is_trained:
            with silenced_stderr():  # faiss' k-means sample-size notes
                idx.train(X)
        idx.add(X)
        self.index = idx
        self._faiss = faiss

    def _ef_values(self, k):
        # faiss searches with max(efSearch, k): smaller values repeat efSearch = k
        if self.ef_search is not None:
            return sorted({max(e, k) for e in _seq(self.ef_search)})
        mult = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32)
        return sorted({int(k * m) for m in mult if k * m <= max(2 * self.N, k)})

    def sweep(self, Q, nn, k):
        faiss = self._faiss
        stats = faiss.cvar.hnsw_stats
        mark = np.zeros(self.N, dtype=bool)
        for ef in self._ef_values(k):
            params = faiss.SearchParametersHNSW()
            params.efSearch = int(ef)
            n_ret = np.empty(len(Q), dtype=np.int64)
            n_found = np.empty(len(Q), dtype=np.int64)
            for i in range(len(Q)):
                stats.reset()
                _, I = self.index.search(Q[i:i + 1], k, params=params)
                n_ret[i] = min(int(stats.ndis), self.N)
                n_found[i] = count_found(I[0], nn[i], mark)
            yield SweepPoint(_params(M=self.M, efConstruction=self.ef_construction, efSearch=ef),
                             n_ret, n_found)


class HNSWSQPeer(HNSWPeer):
    """Quantized HNSW (faiss IndexHNSWSQ, 8-bit scalar quantizer)."""

    name = "hnsw-sq"
    how_counted = ("faiss IndexHNSWSQ (8-bit codes); retrieved = hnsw_stats.ndis (codes compared, "
                   "capped at N); found = true neighbours among the k returned (approximate "
                   "distances)")

    def _make_index(self, d):
        faiss = _faiss()
        return faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, self.M)

    def sweep(self, Q, nn, k):
        for p in super().sweep(Q, nn, k):
            p.params = "sq=8bit " + p.params
            yield p


def _default_nlist(N: int) -> int:
    # ~4 sqrt(N) lists, but keep >= 39 training points per centroid (faiss's k-means minimum)
    return int(max(1, min(round(4 * math.sqrt(N)), N // 39)))


class IVFFlatPeer(_FaissPeer):
    """faiss IndexIVFFlat; retrieved = sizes of the probed inverted lists."""

    name = "faiss-ivf"
    how_counted = ("faiss IndexIVFFlat; retrieved = summed sizes of the nprobe inverted lists "
                   "nearest the query (= indexIVF_stats.ndis); found = true neighbours in them")

    def __init__(self, nlist: int | None = None, nprobe=None, train_size: int = 100_000, **kw):
        super().__init__(**kw)
        self.nlist = nlist
        self.nprobe = nprobe
        self.train_size = int(train_size)

    def _make_index(self, quantizer, d, nlist):
        return _faiss().IndexIVFFlat(quantizer, d, nlist)

    def _train_sample(self, X):
        if X.shape[0] <= self.train_size:
            return X
        rng = np.random.default_rng(self.seed)
        return X[np.sort(rng.choice(X.shape[0], self.train_size, replace=False))]

    def build(self, X):
        faiss = _faiss()
        self._set_threads()
        N, d = X.shape
        self.N = N
        self.nlist_ = int(self.nlist or _default_nlist(N))
        quantizer = faiss.IndexFlatL2(d)
        idx = self._make_index(quantizer, d, self.nlist_)
        idx.cp.seed = self.seed
        idx.cp.min_points_per_centroid = 1  # small test sets: no warning spam
        with silenced_stderr():  # faiss' k-means sample-size notes (PQ on small data)
            idx.train(self._train_sample(X))
        idx.add(X)
        self.quantizer = quantizer
        self.index = idx
        invl = idx.invlists
        self.list_sizes = np.array([invl.list_size(i) for i in range(self.nlist_)], dtype=np.int64)
        self._list_ids = None

    def list_ids(self) -> list:
        """Row numbers in each inverted list (read from the index)."""
        if self._list_ids is None:
            faiss = _faiss()
            invl = self.index.invlists
            out = []
            for i in range(self.nlist_):
                n = invl.list_size(i)
                if n == 0:
                    out.append(np.empty(0, dtype=np.int64))
                    continue
                ptr = invl.get_ids(i)
                out.append(faiss.rev_swig_ptr(ptr, n).astype(np.int64).copy())
                invl.release_ids(i, ptr)
            self._list_ids = out
        return self._list_ids

    def _nprobe_values(self):
        if self.nprobe is not None:
            return sorted({p for p in _seq(self.nprobe) if 1 <= p <= self.nlist_})
        return _geometric(1, self.nlist_)

    def probed_lists(self, Q, nprobe: int) -> np.ndarray:
        """The ``nprobe`` inverted lists nearest each query (M x nprobe), as faiss probes them."""
        _, L = self.quantizer.search(np.ascontiguousarray(Q, dtype=np.float32), int(nprobe))
        return L

    def sweep(self, Q, nn, k):
        probes = self._nprobe_values()
        L = self.probed_lists(Q, max(probes))
        ids = self.list_ids()
        # true neighbours per list, per query: found(nprobe) is a cumulative sum over probe order
        list_of_row = np.empty(self.N, dtype=np.int64)
        for li, rows in enumerate(ids):
            list_of_row[rows] = li
        for p in probes:
            lists = L[:, :p]
            n_ret = np.where(lists >= 0, self.list_sizes[np.maximum(lists, 0)], 0).sum(axis=1)
            n_found = np.array([np.isin(list_of_row[nn[i]], lists[i]).sum() for i in range(len(Q))],
                               dtype=np.int64)
            yield SweepPoint(_params(nlist=self.nlist_, nprobe=p), n_ret.astype(np.int64), n_found)


class IVFPQPeer(IVFFlatPeer):
    """faiss IndexIVFPQ; retrieved = sizes of the probed lists (PQ codes compared)."""

    name = "faiss-ivfpq"
    how_counted = ("faiss IndexIVFPQ; retrieved = summed sizes of the probed inverted lists (PQ "
                   "codes compared); found = true neighbours among the k returned (approximate "
                   "distances)")

    def __init__(self, m: int | None = None, nbits: int | None = None, **kw):
        super().__init__(**kw)
        self.m = m
        self.nbits = nbits

    def _make_index(self, quantizer, d, nlist):
        faiss = _faiss()
        m = self.m or _pq_m(d)
        if d % m:
            raise UsageError(f"IVF-PQ sub-quantizers m={m} must divide the dimension {d}")
        nbits = self.nbits or int(max(4, min(8, math.floor(math.log2(max(2, self.N // 39))))))
        self.m_, self.nbits_ = m, nbits
        return faiss.IndexIVFPQ(quantizer, d, nlist, m, nbits)

    def build(self, X):
        super().build(X)
        self.index.pq.cp.seed = self.seed

    def sweep(self, Q, nn, k):
        faiss = _faiss()
        mark = np.zeros(self.N, dtype=bool)
        for p in self._nprobe_values():
            L = self.probed_lists(Q, p)
            n_ret = np.where(L >= 0, self.list_sizes[np.maximum(L, 0)], 0).sum(axis=1)
            params = faiss.SearchParametersIVF()
            params.nprobe = int(p)
            _, I = self.index.search(np.ascontiguousarray(Q, dtype=np.float32), k, params=params)
            n_found = np.array([count_found(I[i], nn[i], mark) for i in range(len(Q))], dtype=np.int64)
            yield SweepPoint(_params(nlist=self.nlist_, m=self.m_, nbits=self.nbits_, nprobe=p),
                             n_ret.astype(np.int64), n_found)


def _pq_m(d: int) -> int:
    """Sub-quantizer count: the largest divisor of d that is <= min(64, d // 2) (at least 1)."""
    cap = max(1, min(64, d // 2))
    return max(m for m in range(1, cap + 1) if d % m == 0)


# ---------------------------------------------------------------------------------------- annoy
class AnnoyPeer(Peer):
    """Spotify annoy; retrieved = every distinct item annoy scores for a given search_k."""

    name = "annoy"
    requires = ("annoy",)
    how_counted = ("annoy (euclidean); retrieved = length of get_nns_by_vector(q, N, search_k), "
                   "i.e. every distinct item whose distance annoy computes; found = true "
                   "neighbours in it")

    def __init__(self, n_trees: int = 50, search_k=None, **kw):
        super().__init__(**kw)
        self.n_trees = int(n_trees)
        self.search_k = search_k

    def build(self, X):
        from annoy import AnnoyIndex

        self.N, d = X.shape
        idx = AnnoyIndex(d, "euclidean")
        idx.set_seed(self.seed)
        for i in range(self.N):
            idx.add_item(i, X[i])
        idx.build(self.n_trees, n_jobs=int(self.threads or -1))
        self.index = idx

    def _search_k_values(self, k):
        if self.search_k is not None:
            return sorted(set(_seq(self.search_k)))
        return _geometric(k, self.N * self.n_trees, 2.0)

    def sweep(self, Q, nn, k):
        mark = np.zeros(self.N, dtype=bool)
        for sk in self._search_k_values(k):
            n_ret = np.empty(len(Q), dtype=np.int64)
            n_found = np.empty(len(Q), dtype=np.int64)
            for i in range(len(Q)):
                res = self.index.get_nns_by_vector(Q[i].tolist(), self.N, search_k=int(sk))
                n_ret[i] = len(res)
                n_found[i] = count_found(res, nn[i], mark)
            yield SweepPoint(_params(n_trees=self.n_trees, search_k=sk), n_ret, n_found)


# ---------------------------------------------------------------------------------------- MRPT
class MRPTPeer(Peer):
    """MRPT random-projection-tree forest (the RPForest family); retrieved = elected candidates."""

    name = "mrpt"
    requires = ("mrpt",)
    how_counted = ("MRPT random projection trees; retrieved = points in the query's leaf in at "
                   "least votes_required trees (all returned by ann(q, k=N)); found = true "
                   "neighbours among them")

    def __init__(self, depth=None, n_trees=(1, 2, 4, 8, 16, 32, 64), votes=(1, 2, 3, 5, 8), **kw):
        super().__init__(**kw)
        self.depth = depth
        self.n_trees = _seq(n_trees)
        self.votes = _seq(votes)

    def build(self, X):
        import mrpt

        self.N = X.shape[0]
        # leaves of ~ 2^(log2 N - depth) points; default: leaves of ~64-128 points
        self.depth_ = int(self.depth or max(1, int(math.log2(max(2, self.N))) - 6))
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        # one forest per tree count (MRPT cannot query a subset of its trees)
        self._indexes = {}
        for t in self.n_trees:
            idx = mrpt.MRPTIndex(self.X)
            idx.build(depth=self.depth_, n_trees=t)
            self._indexes[t] = idx

    def sweep(self, Q, nn, k):
        mark = np.zeros(self.N, dtype=bool)
        for t in self.n_trees:
            idx = self._indexes[t]
            for v in self.votes:
                if v > t:
                    continue
                n_ret = np.empty(len(Q), dtype=np.int64)
                n_found = np.empty(len(Q), dtype=np.int64)
                for i in range(len(Q)):
                    res = np.asarray(idx.ann(np.ascontiguousarray(Q[i], dtype=np.float32), k=self.N,
                                             votes_required=v))
                    res = res[res >= 0]
                    n_ret[i] = len(res)
                    n_found[i] = count_found(res, nn[i], mark)
                yield SweepPoint(_params(depth=self.depth_, n_trees=t, votes=v), n_ret, n_found)
            self._indexes.pop(t, None)


# ---------------------------------------------------------------------------------------- LSH
class RandomProjectionLSH:
    """Sign-random-projection LSH with several tables and Hamming multi-probe (numpy).

    Each table hashes a vector to ``n_bits`` bits: bit j is 1 when ``(x - center) . r_j > 0`` for
    a Gaussian random direction ``r_j``. Keys keep the first bit most significant, so the key of
    the first ``b`` bits is ``key >> (n_bits - b)``: one index serves every ``b <= n_bits`` and
    every number of tables ``<= n_tables`` (the first tables), and candidate sets shrink as bits
    are added and grow as tables are added.

    Parameters
    ----------
    n_bits : int
        Bits per table (at most 62).
    n_tables : int
        Number of tables.
    seed : int
        Seed of the random directions.
    center : bool
        Project ``x - mean(X)`` (default) rather than ``x``: hyperplanes through the data's mean
        split non-negative data (pixels, ReLU features) evenly.
    projections : array, optional
        D x (n_tables * n_bits) directions to use instead of random ones (table t uses columns
        ``t*n_bits:(t+1)*n_bits``).
    """

    def __init__(self, n_bits: int = 16, n_tables: int = 1, seed: int = 0, center: bool = True,
                 projections=None):
        if not 1 <= int(n_bits) <= 62:
            raise UsageError(f"LSH n_bits must be between 1 and 62, got {n_bits}")
        if int(n_tables) < 1:
            raise UsageError(f"LSH n_tables must be at least 1, got {n_tables}")
        self.n_bits, self.n_tables, self.seed = int(n_bits), int(n_tables), int(seed)
        self.center = bool(center)
        self.projections = None if projections is None else np.asarray(projections, dtype=np.float64)

    def _keys(self, X):
        P = (np.asarray(X, dtype=np.float64) - self.center_) @ self.projections
        bits = (P > 0).reshape(len(X), self.n_tables, self.n_bits)
        weights = np.left_shift(np.uint64(1), np.arange(self.n_bits - 1, -1, -1, dtype=np.uint64))
        return (bits.astype(np.uint64) * weights).sum(axis=2, dtype=np.uint64)  # (n, n_tables)

    def fit(self, X, chunksize: int = 65536) -> "RandomProjectionLSH":
        """Hash the database ``X`` (N x D) into the tables; returns self."""
        X = np.asarray(X)
        N, d = X.shape
        if self.projections is None:
            rng = np.random.default_rng(self.seed)
            self.projections = rng.standard_normal((d, self.n_tables * self.n_bits))
        if self.projections.shape != (d, self.n_tables * self.n_bits):
            raise UsageError(f"LSH projections must have shape ({d}, {self.n_tables * self.n_bits}), "
                             f"got {self.projections.shape}")
        if self.center:
            s = np.zeros(d)
            for a in range(0, N, chunksize):
                s += X[a:a + chunksize].sum(axis=0, dtype=np.float64)
            self.center_ = s / max(N, 1)
        else:
            self.center_ = np.zeros(d)
        keys = np.empty((N, self.n_tables), dtype=np.uint64)
        for a in range(0, N, chunksize):
            keys[a:a + chunksize] = self._keys(X[a:a + chunksize])
        self.N = N
        self.order_ = np.argsort(keys, axis=0, kind="stable").T.copy()          # (n_tables, N)
        self.sorted_keys_ = np.take_along_axis(keys, self.order_.T, axis=0).T.copy()
        self._shifted = {}
        return self

    def _sorted_keys(self, t, n_bits):
        shift = self.n_bits - n_bits
        if shift == 0:
            return self.sorted_keys_[t]
        key = (t, n_bits)
        if key not in self._shifted:
            self._shifted[key] = self.sorted_keys_[t] >> np.uint64(shift)
        return self._shifted[key]

    @staticmethod
    def probe_masks(n_bits: int, radius: int) -> np.ndarray:
        """XOR masks of every key within Hamming distance ``radius`` (including 0)."""
        masks = [0]
        for r in range(1, min(radius, n_bits) + 1):
            for pos in itertools.combinations(range(n_bits), r):
                masks.append(sum(1 << p for p in pos))
        return np.array(masks, dtype=np.uint64)

    def query_keys(self, Q) -> np.ndarray:
        """Full-length keys of queries (M x n_tables, uint64)."""
        Q = np.atleast_2d(np.asarray(Q))
        return self._keys(Q)

    def candidates(self, q, n_bits: int | None = None, n_tables: int | None = None,
                   radius: int = 0, keys=None) -> np.ndarray:
        """Sorted distinct database rows in the query's buckets (and those within ``radius``)."""
        n_bits = self.n_bits if n_bits is None else int(n_bits)
        n_tables = self.n_tables if n_tables is None else int(n_tables)
        if not 1 <= n_bits <= self.n_bits or not 1 <= n_tables <= self.n_tables:
            raise UsageError(f"LSH query with {n_bits} bits / {n_tables} tables exceeds the index "
                             f"({self.n_bits} bits, {self.n_tables} tables)")
        if keys is None:
            keys = self.query_keys(q)[0]
        masks = self.probe_masks(n_bits, radius)
        parts = []
        shift = np.uint64(self.n_bits - n_bits)
        for t in range(n_tables):
            sk = self._sorted_keys(t, n_bits)
            probes = unique((keys[t] >> shift) ^ masks)
            lo = np.searchsorted(sk, probes, side="left")
            hi = np.searchsorted(sk, probes, side="right")
            for a, b in zip(lo.tolist(), hi.tolist()):
                if b > a:
                    parts.append(self.order_[t, a:b])
        if not parts:
            return np.empty(0, dtype=np.int64)
        return unique(np.concatenate(parts)).astype(np.int64)


class LSHPeer(Peer):
    """Random-projection LSH (paper 004); retrieved = distinct documents in the probed buckets."""

    name = "lsh"
    requires = ()
    how_counted = ("sign random projections (hyperplanes through the database mean), n_bits per "
                   "table, n_tables tables, Hamming multi-probe radius; retrieved = distinct "
                   "documents in the union of the probed buckets; found = true neighbours in it")

    def __init__(self, n_bits=None, n_tables=(1, 4, 16), radius=(0, 1), **kw):
        super().__init__(**kw)
        self.bits = n_bits
        self.tables = _seq(n_tables)
        self.radii = _seq(radius)

    def build(self, X):
        self.N = X.shape[0]
        lg = int(math.ceil(math.log2(max(2, self.N))))
        self.bits_ = (sorted(set(_seq(self.bits))) if self.bits is not None
                      else list(range(max(2, lg - 8), min(62, lg + 5) + 1, 2)))
        self.lsh = RandomProjectionLSH(n_bits=max(self.bits_), n_tables=max(self.tables),
                                       seed=self.seed).fit(X)

    def sweep(self, Q, nn, k):
        mark = np.zeros(self.N, dtype=bool)
        keys = self.lsh.query_keys(Q)
        for L in self.tables:
            for r in self.radii:
                for b in self.bits_:
                    if r >= b:
                        continue
                    n_ret = np.empty(len(Q), dtype=np.int64)
                    n_found = np.empty(len(Q), dtype=np.int64)
                    for i in range(len(Q)):
                        c = self.lsh.candidates(None, n_bits=b, n_tables=L, radius=r, keys=keys[i])
                        n_ret[i] = len(c)
                        n_found[i] = count_found(c, nn[i], mark)
                    yield SweepPoint(_params(bits=b, tables=L, radius=r), n_ret, n_found)


# ---------------------------------------------------------------------------------------- registry
PEERS: dict[str, type] = {}


def register_peer(cls: type) -> type:
    """Add a :class:`Peer` subclass to :data:`PEERS` under ``cls.name`` (usable as a decorator)."""
    PEERS[cls.name] = cls
    return cls


for _cls in (HNSWPeer, HNSWSQPeer, IVFFlatPeer, IVFPQPeer, AnnoyPeer, MRPTPeer, LSHPeer):
    register_peer(_cls)

#: the peers run when none are named
DEFAULT_PEERS = ("hnsw", "hnsw-sq", "faiss-ivf", "faiss-ivfpq", "annoy", "lsh", "mrpt")


def peer_unavailable_reason(name: str) -> str | None:
    """None if peer ``name`` can run here, else a one-line reason (a library that does not import).

    Raises
    ------
    UsageError
        ``name`` is not a known peer.
    """
    if name not in PEERS:
        raise UsageError(f"unknown peer {name!r}", hint=f"choose from {', '.join(sorted(PEERS))}")
    for mod in PEERS[name].requires:
        try:
            importlib.import_module(mod)
        except Exception as e:  # ImportError, or a broken binary wheel raising something else
            return (f"peer {name} skipped: its library {mod!r} does not import "
                    f"({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                    f"install it (pip install 'primo[ann]') to benchmark {name}")
    return None


def resolve_peers(names, options: dict | None = None, seed: int = 0, threads: int | None = None):
    """Instantiate the named peers; those whose library is missing are skipped.

    Parameters
    ----------
    names : iterable of str, or a comma-separated str
        Peer names (see :data:`PEERS`); duplicates are ignored.
    options : dict, optional
        ``{peer name: {option: value}}`` passed to the peer's constructor.

    Returns
    -------
    peers : list of Peer
    skipped : list of str
        One-line messages, one per skipped peer.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    if not names:
        raise UsageError("no peers to run", hint=f"choose from {', '.join(sorted(PEERS))}")
    options = options or {}
    for n in options:
        if n not in PEERS:
            raise UsageError(f"option given for unknown peer {n!r}",
                             hint=f"choose from {', '.join(sorted(PEERS))}")
    peers, skipped = [], []
    for n in names:
        reason = peer_unavailable_reason(n)
        if reason:
            skipped.append(reason)
            continue
        opts = options.get(n, {})
        for k, v in opts.items():
            _check_option_value(n, k, v)
        try:
            peers.append(PEERS[n](seed=seed, threads=threads, **opts))
        except (TypeError, ValueError, OverflowError) as e:   # unknown option, wrong kind
            raise UsageError(f"bad option for peer {n} ({e})",
                             hint=f"options of {n}: {_option_names(PEERS[n])}") from None
    return peers, skipped


_OPTION_MAX = 2**31 - 1   # the peers' libraries take C ints


def _check_option_value(peer: str, name: str, value) -> None:
    """A numeric peer option must be finite and fit a C int (the libraries would overflow or
    hang far below Python's limits)."""
    import math

    for v in (value if isinstance(value, (list, tuple)) else [value]):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not math.isfinite(v) or abs(v) > _OPTION_MAX:
            raise UsageError(f"peer option {peer}.{name} = {v} is out of range",
                             hint=f"give a finite value of at most {_OPTION_MAX:,}",
                             option="peer_options")


def _option_names(cls) -> str:
    import inspect

    names = []
    for c in cls.__mro__:
        if c is object or "__init__" not in c.__dict__:
            continue
        names += [p for p in inspect.signature(c.__init__).parameters if p not in ("self", "kw")]
    return ", ".join(dict.fromkeys(n for n in names if n not in ("seed", "threads"))) or "none"
