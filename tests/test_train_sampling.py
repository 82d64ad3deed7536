"""Pair sampling from feature stores, threshold calibration, seed pairs (no TensorFlow)."""

import numpy as np
import pytest

from primo.errors import DataError, UsageError
from primo.features.store import write_features
from primo.training.data import (ArrayFeatures, PairSampler, calibrate_threshold, choose_heldout,
                                 fingerprint, heldout_pairs, open_features, pairwise_sq_distances,
                                 row_norm_stats)
from primo.training.trainer import mutate_codes, seed_pair_codes


def _clusters(n=300, dim=5, k=6, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 4
    lab = rng.integers(0, k, n)
    return (centers[lab] + rng.normal(size=(n, dim)) * 0.5).astype("float32")


def _brute_similar(X, thr):
    D = np.sqrt(pairwise_sq_distances(X, X))
    i, j = np.nonzero(np.triu(D <= thr, k=1))
    return set(zip(i.tolist(), j.tolist()))


def test_sampler_finds_every_similar_pair_in_chunks():
    X = _clusters()
    smp = PairSampler(ArrayFeatures(X), 1.0, np.random.default_rng(0), chunksize=37)
    smp.refresh()
    assert smp.whole
    got = set(map(tuple, smp.similar.tolist()))
    assert got == _brute_similar(X, 1.0)
    assert smp.similar_total == len(got)


def test_balanced_batches_are_half_similar_with_correct_labels():
    X = _clusters()
    smp = PairSampler(ArrayFeatures(X), 1.0, np.random.default_rng(1))
    smp.refresh()
    xa, xb, y = smp.balanced(64)
    d = np.linalg.norm(xa - xb, axis=1)
    assert y.sum() == 32
    assert (d[y == 1] <= 1.0 + 1e-5).all() and (d[y == 0] > 1.0).all()
    xa, xb, dist = smp.random(50, docs=10)
    assert len(np.unique(np.concatenate([xa, xb]), axis=0)) <= 10
    np.testing.assert_allclose(dist, np.linalg.norm(xa - xb, axis=1), rtol=1e-5)


def test_blocks_stream_from_a_store_larger_than_a_block(tmp_path):
    X = _clusters(n=2000, seed=2)
    path = tmp_path / "f.h5"
    write_features(path, [f"d{i}" for i in range(len(X))], X, {"extractor": "t"}, chunk_rows=50)
    with open_features(path) as fs:
        held, seg = choose_heldout(fs, 200, np.random.default_rng(0))
        smp = PairSampler(fs, 1.0, np.random.default_rng(0), block_rows=400, exclude=held)
        assert not smp.whole and smp.segment_rows == 400 // 32
        seen = set()
        for _ in range(5):
            smp.refresh()
            assert len(smp.X) <= 400
            assert not np.isin(smp.rows, held).any()
            np.testing.assert_array_equal(smp.X, X[smp.rows])
            # similar pairs of the block are exactly the brute-force ones
            assert set(map(tuple, smp.similar.tolist())) == _brute_similar(smp.X, 1.0)
            seen.update(smp.rows.tolist())
        assert len(seen) > 800  # refreshing reaches much of the store


def test_max_similar_caps_memory():
    X = _clusters(n=400, k=2)
    smp = PairSampler(ArrayFeatures(X), 3.0, np.random.default_rng(0), max_similar=500, chunksize=64)
    smp.refresh()
    assert smp.similar_total > 5000
    assert len(smp.similar) <= 500 + 400 // 64 + 8


def test_no_similar_pairs_is_a_data_error():
    X = _clusters()
    smp = PairSampler(ArrayFeatures(X), 1e-6, np.random.default_rng(0))
    smp.refresh()
    with pytest.raises(DataError, match="`threshold` auto"):
        smp.balanced(10)


def test_calibrated_threshold_is_the_distance_quantile():
    X = _clusters(n=150)
    thr, info = calibrate_threshold(ArrayFeatures(X), 0.05, np.random.default_rng(0), sample_rows=150)
    D = np.sqrt(pairwise_sq_distances(X, X))[np.triu_indices(150, 1)]
    assert thr == pytest.approx(np.quantile(D, 0.05), rel=1e-6)
    assert info == {"method": "quantile", "quantile": 0.05, "sample_rows": 150,
                    "sample_pairs": 150 * 149 // 2}
    with pytest.raises(UsageError, match="quantile"):
        calibrate_threshold(ArrayFeatures(X), 0.9, np.random.default_rng(0))


def test_heldout_pairs_and_stats():
    X = _clusters(n=120)
    i, j, d, kind = heldout_pairs(X, 1.0, 30, 40, np.random.default_rng(0), random_docs=12)
    assert (kind == 1).sum() == min(30, len(_brute_similar(X, 1.0))) and (kind == 0).sum() == 40
    assert (d[kind == 1] <= 1.0 + 1e-6).all()
    assert len(np.unique(np.concatenate([i[kind == 0], j[kind == 0]]))) <= 12
    np.testing.assert_allclose(d, np.linalg.norm(X[i] - X[j], axis=1), rtol=1e-5)
    mean, msq = row_norm_stats(ArrayFeatures(X), chunksize=7)
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-4, atol=1e-5)
    assert msq == pytest.approx(((X - X.mean(0)) ** 2).sum(1).mean(), rel=1e-4)


def test_fingerprint_changes_with_data():
    X = _clusters(n=50)
    a = fingerprint(ArrayFeatures(X))
    assert a == fingerprint(ArrayFeatures(X.copy()))
    X2 = X.copy()
    X2[-1, 0] += 1
    assert a != fingerprint(ArrayFeatures(X2))


def test_empty_store_is_a_data_error(tmp_path):
    from primo.features.store import FeatureStore

    path = tmp_path / "empty.h5"
    FeatureStore.create(path, 8, {"extractor": "t"}).close()
    with pytest.raises(DataError) as e:
        open_features(path)
    assert "no rows" in str(e.value) and "empty.h5" in str(e.value)


def test_mutants_have_the_requested_rate():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, size=(4, 2000)).astype(np.uint8)
    q = mutate_codes(t, [0.0, 0.25, 0.5, 1.0], rng)
    frac = (q != t).mean(1)
    assert frac[0] == 0 and frac[3] == 1
    assert abs(frac[1] - 0.25) < 0.03 and abs(frac[2] - 0.5) < 0.03
    t, q = seed_pair_codes(10, np.random.default_rng(1), mutants=4)
    assert t.shape == q.shape == (10, 80)
    assert (t[0] == t[3]).all() and not (t[0] == t[4]).all()


def test_hard_negatives_come_from_just_above_the_threshold():
    X = _clusters()
    smp = PairSampler(ArrayFeatures(X), 1.0, np.random.default_rng(3), near_factor=2.0, chunksize=50)
    smp.refresh()
    D = np.sqrt(pairwise_sq_distances(X, X))
    i, j = np.nonzero(np.triu((D > 1.0) & (D <= 2.0), k=1))
    assert set(map(tuple, smp.near.tolist())) == set(zip(i.tolist(), j.tolist()))
    xa, xb, y = smp.balanced(80, hard_fraction=1.0)
    d = np.linalg.norm(xa - xb, axis=1)
    assert y.sum() == 40
    assert ((d[y == 0] > 1.0) & (d[y == 0] <= 2.0 + 1e-5)).all()
