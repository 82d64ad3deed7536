"""The block's pairs (neighbourhood radii, similar and near pairs) are exactly what the first,
plain implementation found: the faster one (buffers, a few rows at a time, the k-th smallest
without partitioning whole rows) changes no pair, no radius and no random draw, so a seed still
gives the same model. No TensorFlow."""

import math

import numpy as np
import pytest

from primo.training import data as _data
from primo.training.data import ArrayFeatures, PairSampler, _kth_smallest, neighbor_radii


# ---- the plain implementation, as it was (the reference)
def _ref_radii(X, k, chunksize):
    X = np.asarray(X, dtype=np.float64)
    m = len(X)
    k = int(min(max(int(k), 1), m - 1))
    norms = (X ** 2).sum(1)
    r2 = np.empty(m)
    for a in range(0, m, chunksize):
        b = min(m, a + chunksize)
        D = norms[a:b, None] + norms[None, :] - 2.0 * X[a:b] @ X.T
        D[np.arange(b - a), np.arange(a, b)] = np.inf
        r2[a:b] = np.partition(D, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(r2, 0.0))


def _ref_pairs(X, radii, threshold, near_factor, max_similar, step, rng):
    m = len(X)
    thr2 = threshold ** 2
    total_pairs = m * (m - 1) // 2
    found, near = [], []
    n_found = 0
    near2 = (near_factor * threshold) ** 2 if near_factor else None
    Xd = X.astype(np.float64)
    norms = (Xd ** 2).sum(1)
    min_distance = math.inf

    def keep(hit, quota, offset, out):
        ii, jj = np.nonzero(hit)
        n = len(ii)
        if n > quota:
            pick = rng.choice(len(ii), size=quota, replace=False)
            ii, jj = ii[pick], jj[pick]
        if n:
            out.append(np.stack([ii + offset, jj + offset], axis=1))
        return n

    for a in range(0, m, step):
        b = min(m, a + step)
        D = norms[a:b, None] + norms[None, a:] - 2.0 * Xd[a:b] @ Xd[a:].T
        if radii is not None:
            D = np.maximum(D, 0.0) / _data._pair_scale(radii[a:b, None], radii[None, a:]) ** 2
        upper = np.arange(a, m)[None, :] > np.arange(a, b)[:, None]
        if upper.any():
            min_distance = min(min_distance, float(np.sqrt(max(D[upper].min(), 0.0))))
        chunk_pairs = (b - a) * (m - a) - (b - a) * (b - a + 1) // 2
        quota = int(np.ceil(max_similar * chunk_pairs / max(total_pairs, 1))) + 1
        if near2 is not None:
            keep((D > thr2) & (D <= near2) & upper, quota, a, near)
        n_found += keep((D <= thr2) & upper, quota, a, found)
    z = np.zeros((0, 2), np.int64)
    return (np.concatenate(found) if found else z, np.concatenate(near) if near else z,
            n_found, min_distance)


def _data_with_ties(n=700, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(5, dim)) * 3
    X = centers[rng.integers(0, 5, n)] + rng.normal(size=(n, dim)) * rng.choice([0.2, 1.0], n)[:, None]
    X[10:14] = X[3]                       # repeated rows: ties and zero distances
    X[100:110] = np.round(X[100:110], 1)
    return X.astype(np.float32)


@pytest.mark.parametrize("k", [1, 3, 7, 40])
def test_kth_smallest_is_the_partition(k):
    rng = np.random.default_rng(k)
    D = rng.normal(size=(23, 3000))
    D[:, ::7] = np.round(D[:, ::7], 1)    # ties
    D[0] = 5.0                            # a row of one value
    D[1, :2000] = np.inf                  # a row far from the others
    want = np.partition(D, k - 1, axis=1)[:, k - 1]
    np.testing.assert_array_equal(_kth_smallest(D, k), want)


@pytest.mark.parametrize("cache_rows", [None, 1, 7])
def test_radii_are_exactly_the_plain_ones(monkeypatch, cache_rows):
    if cache_rows:
        monkeypatch.setattr(_data, "_cache_rows", lambda width: cache_rows)
    X = _data_with_ties()
    for k, chunk in ((5, 64), (30, 333), (1, 700)):
        np.testing.assert_array_equal(neighbor_radii(X, k, chunksize=chunk),
                                      _ref_radii(X, k, chunk))


@pytest.mark.parametrize("neighbors,threshold,near_factor,max_similar,cache_rows", [
    (8, 1.0, 2.0, 500, None),        # the default: neighbourhoods, hard negatives, a capped list
    (8, 1.0, 2.0, 500, 3),           # the same, a few rows at a time
    (8, 1.0, None, 10**6, 5),
    (None, 1.5, 2.0, 800, 4),        # a global threshold
    (None, 1.5, None, 10**6, None),
])
def test_block_pairs_are_exactly_the_plain_ones(monkeypatch, neighbors, threshold, near_factor,
                                                 max_similar, cache_rows):
    if cache_rows:
        monkeypatch.setattr(_data, "_cache_rows", lambda width: cache_rows)
    X = _data_with_ties()
    smp = PairSampler(ArrayFeatures(X), threshold, np.random.default_rng(3), chunksize=97,
                      max_similar=max_similar, near_factor=near_factor, neighbors=neighbors)
    smp.refresh()
    radii = None
    if neighbors:
        radii = _ref_radii(X, _data.scaled_neighbors(neighbors, len(X), len(X)),
                           _data._chunk_rows(len(X)))
        np.testing.assert_array_equal(smp.radii, radii)
    rng = np.random.default_rng(3)
    sim, near, total, dmin = _ref_pairs(X, radii, smp.threshold, smp.near_factor, max_similar,
                                        min(97, _data._chunk_rows(len(X))), rng)
    np.testing.assert_array_equal(smp.similar, sim)
    np.testing.assert_array_equal(smp.near, near)
    assert smp.similar_total == total and smp.min_distance == dmin
    assert total > len(sim) or max_similar > 10**5     # the cap drew random pairs where set
    # and the random stream is where the plain implementation left it
    assert smp.rng.bit_generator.state == rng.bit_generator.state
