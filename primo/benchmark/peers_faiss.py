"""The faiss peers: HNSW (flat and 8-bit scalar-quantized) and IVF (flat and PQ), each
instrumented to count the vectors a search compares.

How each peer counts its candidate set is described in :mod:`primo.benchmark.peers` (every
name here is importable from there).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UsageError
from ..progress import silenced_stderr
from .peers_base import Peer, SweepPoint, _geometric, _params, _seq, count_found

__all__ = ["HNSWPeer", "HNSWSQPeer", "IVFFlatPeer", "IVFPQPeer"]


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
                   "(distance computations, capped at N); found = true neighbors among the k "
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
                   "capped at N); found = true neighbors among the k returned (approximate "
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
                   "nearest the query (= indexIVF_stats.ndis); found = true neighbors in them")

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
        # true neighbors per list, per query: found(nprobe) is a cumulative sum over probe order
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
                   "codes compared); found = true neighbors among the k returned (approximate "
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
