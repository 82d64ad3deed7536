"""The tree peers: Spotify annoy (random projection trees, ``search_k`` swept) and MRPT
(multiple random projection trees with voting).

How each peer counts its candidate set is described in :mod:`primo.benchmark.peers` (every
name here is importable from there).
"""

from __future__ import annotations

import math

import numpy as np

from .peers_base import Peer, SweepPoint, _geometric, _params, _seq, count_found

__all__ = ["AnnoyPeer", "MRPTPeer"]


# ---------------------------------------------------------------------------------------- annoy
class AnnoyPeer(Peer):
    """Spotify annoy; retrieved = every distinct item annoy scores for a given search_k."""

    name = "annoy"
    requires = ("annoy",)
    how_counted = ("annoy (euclidean); retrieved = length of get_nns_by_vector(q, N, search_k), "
                   "i.e. every distinct item whose distance annoy computes; found = true "
                   "neighbors in it")

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
                   "neighbors among them")

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
