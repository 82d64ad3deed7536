"""Synthetic FC2-like features for scale tests and benchmarks (10^6+ documents, seeded, streaming).

VGG16-FC2 vectors are 4096-d ReLU outputs: non-negative, sparse, and clustered (near-duplicates and
images of the same kind of scene). The generator mimics that:

* ``n_clusters`` centres ``c_j ~ N(0, I)`` in pre-activation space, cluster sizes from a
  Dirichlet(1) draw (some clusters large, some small);
* document ``i`` in cluster ``j``: pre-activation ``z_i = sqrt(1 - noise^2) c_j + noise e_i`` with
  ``e_i ~ N(0, I)`` (so every coordinate is N(0, 1) and ``noise`` sets how tight clusters are);
* feature ``x_i = scale * max(0, z_i - t)`` with ``t`` the ``sparsity`` quantile of N(0, 1): exactly
  that share of coordinates is zero on average.

``scale`` is calibrated so that a chosen share of all document pairs lies within Euclidean
distance ``threshold`` (75 for FC2, the paper's "similar" threshold): since distances scale
linearly with ``scale``, it is ``threshold / q`` where ``q`` is the ``similar_share`` quantile of
pair distances among ``calibration_docs`` documents drawn from the same distribution at scale 1 (an
exact solution of what a bisection on ``scale`` would find). :func:`pair_share_within` measures it.

Documents are generated in fixed blocks of :data:`BLOCK` rows, each from its own seeded stream
(``numpy.random.default_rng([seed, 1, block])``), so the output does not depend on the chunk size
or the number of worker processes. IDs are ``syn-<row>`` (zero-padded), labels the cluster number.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..errors import UsageError

__all__ = ["SyntheticFC2", "write_synthetic", "pair_share_within", "BLOCK"]

BLOCK = 1024


def _norm_ppf(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


class SyntheticFC2:
    """A seeded, streamable FC2-like data set of ``n`` documents (see the module docstring).

    Parameters
    ----------
    n : int
        Number of documents.
    dim : int
        Dimension (4096 like FC2).
    n_clusters : int, optional
        Default: n / 100, between 2 and 2,000.
    similar_share : float
        Share of all pairs within ``threshold`` (0 < share < 1).
    threshold : float
        The "similar" distance (75 for FC2).
    sparsity : float
        Expected share of zero coordinates.
    noise : float
        Within-cluster spread in (0, 1): 0 = identical copies, 1 = no clusters.
    seed : int
    calibration_docs : int
        Documents drawn to calibrate ``scale``.
    scale : float, optional
        Use this scale instead of calibrating it.
    """

    def __init__(self, n: int, dim: int = 4096, *, n_clusters: int | None = None,
                 similar_share: float = 1e-3, threshold: float = 75.0, sparsity: float = 0.75,
                 noise: float = 0.6, seed: int = 0, calibration_docs: int = 2000,
                 scale: float | None = None):
        self.n = int(n)
        self.dim = int(dim)
        if self.n < 1:
            raise UsageError(f"number of synthetic documents must be at least 1, got {n}")
        if self.dim < 2:
            raise UsageError(f"dimension must be at least 2, got {dim}")
        if not 0 < similar_share < 1:
            raise UsageError(f"similar share must be between 0 and 1, got {similar_share}")
        if not 0 <= sparsity < 1:
            raise UsageError(f"sparsity must be in [0, 1), got {sparsity}")
        if not 0 < noise <= 1:
            raise UsageError(f"noise must be in (0, 1], got {noise}")
        if threshold <= 0:
            raise UsageError(f"threshold must be positive, got {threshold}")
        self.n_clusters = int(n_clusters or min(2000, max(2, self.n // 100)))
        if self.n_clusters < 1:
            raise UsageError(f"n_clusters must be at least 1, got {n_clusters}")
        self.similar_share = float(similar_share)
        self.threshold = float(threshold)
        self.sparsity = float(sparsity)
        self.noise = float(noise)
        self.seed = int(seed)
        self._t = _norm_ppf(self.sparsity) if self.sparsity > 0 else -np.inf
        rng = np.random.default_rng([self.seed, 0])
        self._weights = rng.dirichlet(np.ones(self.n_clusters))
        self._centres = rng.standard_normal((self.n_clusters, self.dim), dtype=np.float32)
        self._centres *= np.float32(math.sqrt(1.0 - self.noise ** 2))
        self.scale = 1.0
        self.calibration_docs = int(calibration_docs)
        self.scale = float(scale) if scale is not None else self._calibrate(self.calibration_docs)

    # ------------------------------------------------------------------ generation
    def _make(self, rng, size: int):
        labels = rng.choice(self.n_clusters, size=size, p=self._weights)
        z = rng.standard_normal((size, self.dim), dtype=np.float32)
        z *= np.float32(self.noise)
        z += self._centres[labels]
        if np.isfinite(self._t):
            z -= np.float32(self._t)
        np.maximum(z, 0, out=z)
        z *= np.float32(self.scale)
        return z, labels.astype(np.int64)

    def _calibrate(self, m: int) -> float:
        m = max(2, min(m, max(self.n, 2)))
        X, _ = self._make(np.random.default_rng([self.seed, 2]), m)
        sq = (X.astype(np.float64) ** 2).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T).astype(np.float64)
        iu = np.triu_indices(m, 1)
        d = np.sqrt(np.maximum(d2[iu], 0))
        q = float(np.quantile(d, self.similar_share))
        if q <= 0:
            raise UsageError("cannot calibrate: too many identical synthetic documents",
                             hint="raise noise or lower similar_share")
        return self.threshold / q

    def block(self, b: int):
        """Rows ``b*BLOCK`` to ``(b+1)*BLOCK`` (fewer at the end): ``(X float32, labels int64)``."""
        start = b * BLOCK
        size = min(BLOCK, self.n - start)
        if size <= 0:
            return np.empty((0, self.dim), np.float32), np.empty(0, np.int64)
        return self._make(np.random.default_rng([self.seed, 1, int(b)]), size)

    def ids(self, start: int, stop: int) -> list:
        width = max(7, len(str(self.n - 1)))
        return [f"syn-{i:0{width}d}" for i in range(start, stop)]

    def params(self) -> dict:
        return {"generator": "primo.features.synthetic.SyntheticFC2", "n": self.n, "dim": self.dim,
                "n_clusters": self.n_clusters, "similar_share": self.similar_share,
                "threshold": self.threshold, "sparsity": self.sparsity, "noise": self.noise,
                "seed": self.seed, "scale": self.scale, "calibration_docs": self.calibration_docs}

    def iter_chunks(self, chunksize: int = 8 * BLOCK, mapper=None):
        """Yield ``(ids, X, labels)`` of about ``chunksize`` rows (whole blocks), in order."""
        per = max(1, int(chunksize) // BLOCK)
        n_blocks = (self.n + BLOCK - 1) // BLOCK
        spec = tuple(sorted(self.params().items()))
        groups = [(spec, list(range(g, min(n_blocks, g + per)))) for g in range(0, n_blocks, per)]
        if mapper is None:
            _GENERATORS[spec] = self
        results = map(_make_group, groups) if mapper is None else mapper.imap(_make_group, groups)
        for (_, blocks), (X, labels) in zip(groups, results):
            start = blocks[0] * BLOCK
            yield self.ids(start, start + len(X)), X, labels

    def generate(self):
        """Everything in memory: ``(ids, X, labels)`` (small n only)."""
        ids, Xs, Ls = [], [], []
        for i, X, lab in self.iter_chunks():
            ids += i
            Xs.append(X)
            Ls.append(lab)
        return ids, np.concatenate(Xs), np.concatenate(Ls)



_GENERATORS: dict = {}


def _make_group(args):
    """Worker: blocks of a generator given by its parameters (rebuilt once per process, no
    re-calibration: the scale is one of the parameters)."""
    spec, blocks = args
    gen = _GENERATORS.get(spec)
    if gen is None:
        p = dict(spec)
        p.pop("generator")
        n, dim = p.pop("n"), p.pop("dim")
        _GENERATORS.clear()
        gen = _GENERATORS[spec] = SyntheticFC2(n, dim, **p)
    parts = [gen.block(b) for b in blocks]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def pair_share_within(X, threshold: float = 75.0, max_docs: int = 4000, seed: int = 0) -> float:
    """Share of document pairs within Euclidean ``threshold`` (on at most ``max_docs`` documents)."""
    X = np.asarray(X)
    if len(X) > max_docs:
        X = X[np.random.default_rng(seed).choice(len(X), max_docs, replace=False)]
    sq = (X.astype(np.float64) ** 2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T).astype(np.float64)
    iu = np.triu_indices(len(X), 1)
    return float((d2[iu] <= threshold ** 2).mean())


def write_synthetic(output, n: int, *, chunksize: int = 8 * BLOCK, mapper=None, overwrite: bool = False,
                    **params) -> dict:
    """Write ``n`` synthetic FC2-like documents (with cluster labels) to a feature store, atomically.

    Returns the generator parameters (also stored in the store's metadata) plus timing.
    """
    from ..io import atomic_file
    from ..progress import progress
    from .store import FeatureStore

    output = Path(output)
    if output.exists() and not overwrite:
        raise UsageError(f"{output} already exists", option="output",
                         hint="use `overwrite` to replace it")
    t0 = time.time()
    gen = SyntheticFC2(n, **params)
    meta = {"extractor": "synthetic-fc2", "preprocessing": "none (synthetic)", "weights": "none",
            "synthetic": gen.params()}
    with atomic_file(output, suffix=".h5") as tmp:
        with FeatureStore.create(tmp, gen.dim, meta, labels=True, overwrite=True) as fs:
            bar = progress(total=gen.n, desc="synthetic", unit="doc")
            try:
                for ids, X, labels in gen.iter_chunks(chunksize, mapper=mapper):
                    fs.append(ids, X, labels)
                    bar.update(len(ids))
            finally:
                bar.close()
    out = gen.params()
    out["seconds"] = time.time() - t0
    return out
