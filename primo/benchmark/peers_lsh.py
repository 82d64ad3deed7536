"""Random-projection locality-sensitive hashing (paper 004), implemented here:
:class:`RandomProjectionLSH` and its peer :class:`LSHPeer`.

How each peer counts its candidate set is described in :mod:`primo.benchmark.peers` (every
name here is importable from there).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..arrays import unique
from ..errors import UsageError
from .peers_base import Peer, SweepPoint, _params, _seq, count_found

__all__ = ["RandomProjectionLSH", "LSHPeer"]


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
                   "documents in the union of the probed buckets; found = true neighbors in it")

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
