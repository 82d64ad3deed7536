"""mAP@k and exact kNN, checked against a plain reference implementation."""

import numpy as np
import pytest

from primo.errors import UsageError
from primo.evaluation.neighbors import average_precision_at_k, knn, map_at_k
from primo.features.store import FeatureStore, write_features


def _ref_map(q, ql, db, dl, k, exclude_self=False):
    aps = []
    for i in range(len(q)):
        d = np.sqrt(((db.astype(np.float64) - q[i]) ** 2).sum(1))
        order = sorted(range(len(db)), key=lambda j: (d[j], j))
        if exclude_self:
            order = [j for j in order if j != i]
        top = order[:k]
        hits, s = 0, 0.0
        for r, j in enumerate(top, 1):
            if dl[j] == ql[i]:
                hits += 1
                s += hits / r
        aps.append(s / hits if hits else 0.0)
    return float(np.mean(aps))


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 5)) * 3
    dl = rng.integers(0, 4, 300)
    db = (centres[dl] + rng.normal(size=(300, 5)) * 2).astype(np.float32)
    ql = rng.integers(0, 4, 40)
    q = (centres[ql] + rng.normal(size=(40, 5)) * 2).astype(np.float32)
    return q, ql, db, dl


@pytest.mark.parametrize("k", [1, 5, 10])
@pytest.mark.parametrize("chunksize", [7, 512])
def test_map_matches_reference(data, k, chunksize):
    q, ql, db, dl = data
    got = map_at_k(q, ql, db, dl, k, chunksize=chunksize)
    assert got == pytest.approx(_ref_map(q, ql, db, dl, k), abs=1e-12)


def test_map_exclude_self_and_store_database(data, tmp_path):
    q, ql, db, dl = data
    got = map_at_k(db[:60], dl[:60], db[:60], dl[:60], 10, exclude_self=True, chunksize=16)
    assert got == pytest.approx(_ref_map(db[:60], dl[:60], db[:60], dl[:60], 10, exclude_self=True))
    p = tmp_path / "db.h5"
    write_features(p, [f"d{i}" for i in range(len(db))], db, chunk_rows=32)
    with FeatureStore.open(p) as fs:
        idx_s, dist_s = knn(q, fs, 10, db_block=50)
    idx_a, dist_a = knn(q, db, 10)
    assert np.array_equal(idx_s, idx_a) and np.allclose(dist_s, dist_a)
    brute = np.sqrt(((q[:, None, :].astype(np.float64) - db[None]) ** 2).sum(-1))
    assert np.array_equal(idx_a, np.argsort(brute, axis=1, kind="stable")[:, :10])


def test_average_precision_examples():
    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1]], bool)
    ap = average_precision_at_k(rel)
    assert ap == pytest.approx([(1 + 2 / 3) / 2, 0.0, (1 / 2 + 2 / 3 + 3 / 4) / 3, 1.0])


def test_map_bad_arguments(data):
    q, ql, db, dl = data
    with pytest.raises(UsageError, match="k=0"):
        map_at_k(q, ql, db, dl, 0)
    with pytest.raises(UsageError, match="labels"):
        map_at_k(q, ql[:3], db, dl, 5)
    with pytest.raises(UsageError, match="dimensions"):
        knn(q[:, :3], db, 2)
