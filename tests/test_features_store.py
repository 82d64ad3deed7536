"""The HDF5 feature store: chunk boundaries, by-ID reads, bad input, crash safety."""

import json
import os

import h5py
import numpy as np
import pytest

from primo.errors import DataError, UsageError
from primo.features.store import FeatureStore, read_features, write_features


def _matrix(n, d, seed=0):
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


@pytest.fixture
def store4(tmp_path):
    """A store with HDF5 chunks of 4 rows, filled by appends of 3, 5, 4 and 1 rows."""
    X = _matrix(13, 6)
    ids = [f"doc{i:02d}" for i in range(13)]
    p = tmp_path / "f.h5"
    with FeatureStore.create(p, 6, {"extractor": "test"}, chunk_rows=4) as fs:
        a = 0
        for size in (3, 5, 4, 1):
            fs.append(ids[a:a + size], X[a:a + size])
            a += size
    return p, ids, X


def test_roundtrip_and_metadata(store4):
    p, ids, X = store4
    with FeatureStore.open(p) as fs:
        assert (fs.n, fs.dim, fs.chunk_rows) == (13, 6, 4)
        assert fs.ids.tolist() == ids
        assert np.array_equal(fs.read(), X)
        assert fs.metadata["extractor"] == "test" and fs.metadata["dim"] == 6
        assert fs.labels is None
        prov = fs.provenance
        assert prov[0]["action"] == "create" and "primo_version" in prov[0]
    rids, rX = read_features(p)
    assert rids.tolist() == ids and np.array_equal(rX, X)


@pytest.mark.parametrize("chunksize", [1, 3, 4, 5, 8, 12, 13, 100])
def test_iter_chunks_at_chunk_boundaries(store4, chunksize):
    p, ids, X = store4
    with FeatureStore.open(p) as fs:
        got_ids, got_X, sizes = [], [], []
        for cid, cX in fs.iter_chunks(chunksize):
            got_ids += cid.tolist()
            got_X.append(cX)
            sizes.append(len(cX))
        assert got_ids == ids
        assert np.array_equal(np.concatenate(got_X), X)
        assert all(s == chunksize for s in sizes[:-1]) and 0 < sizes[-1] <= chunksize
        # a window that starts and stops inside HDF5 chunks
        parts = [c[1] for c in fs.iter_chunks(chunksize, start=3, stop=9)]
        assert np.array_equal(np.concatenate(parts), X[3:9])


@pytest.mark.parametrize("start,stop", [(0, 4), (3, 5), (4, 8), (7, 13), (12, 13), (5, 5), (-3, None), (10, 99)])
def test_read_ranges(store4, start, stop):
    p, ids, X = store4
    with FeatureStore.open(p) as fs:
        assert np.array_equal(fs.read(start, stop), X[start:stop])
        rid, rX = fs.read_rows(start, stop)
        assert rid.tolist() == ids[start:stop]


def test_read_ids_in_requested_order(store4):
    p, ids, X = store4
    want = ["doc12", "doc00", "doc04", "doc03", "doc04", "doc07"]
    with FeatureStore.open(p) as fs:
        got = fs.read_ids(want)
        assert np.array_equal(got, X[[12, 0, 4, 3, 4, 7]])
        assert fs.read_ids([]).shape == (0, 6)
        rows = np.random.default_rng(1).integers(0, 13, 50)
        assert np.array_equal(fs.read_index(rows), X[rows])
        with pytest.raises(DataError, match="'nope' is not in the feature store") as e:
            fs.read_ids(["doc01", "nope"])
        assert str(p) in str(e.value)


def test_labels(tmp_path):
    p = tmp_path / "l.h5"
    X = _matrix(10, 3)
    write_features(p, [f"i{k}" for k in range(10)], X, {"extractor": "t"}, labels=np.arange(10) % 3,
                   chunk_rows=4)
    with FeatureStore.open(p) as fs:
        assert fs.labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
        chunks = list(fs.iter_chunks(4, labels=True))
        assert [c[2].tolist() for c in chunks] == [[0, 1, 2, 0], [1, 2, 0, 1], [2, 0]]
    with FeatureStore.open(p, "r+") as fs:
        with pytest.raises(DataError, match="needs labels"):
            fs.append(["x"], X[:1])


def test_append_resumes_in_place_and_records_sessions(store4):
    p, ids, X = store4
    more = _matrix(6, 6, seed=5)
    with FeatureStore.open(p, "r+") as fs:
        fs.append([f"new{i}" for i in range(6)], more)
    with FeatureStore.open(p) as fs:
        assert fs.n == 19
        assert np.array_equal(fs.read(13, 19), more)
        assert [r["action"] for r in fs.provenance] == ["create", "append"]
        assert fs.validate()["n"] == 19


def test_append_bad_input_names_the_id(store4):
    p, ids, X = store4
    with FeatureStore.open(p, "r+") as fs:
        with pytest.raises(DataError, match="cannot append 5-dimensional vectors to a store of 6-dimensional") as e:
            fs.append(["a", "b"], _matrix(2, 5))
        assert str(p) in str(e.value) and e.value.exit_code == 1
        bad = _matrix(3, 6)
        bad[1, 2] = np.nan
        with pytest.raises(DataError, match="NaN feature values .* document 'n1'"):
            fs.append(["n0", "n1", "n2"], bad)
        bad[1, 2] = np.inf
        with pytest.raises(DataError, match="infinite feature values .* document 'n1'"):
            fs.append(["n0", "n1", "n2"], bad)
        with pytest.raises(DataError, match="duplicate document ID 'x' in the batch"):
            fs.append(["x", "y", "x"], _matrix(3, 6))
        with pytest.raises(DataError, match="document ID 'doc05' is already in the store") as e:
            fs.append(["fresh", "doc05"], _matrix(2, 6))
        assert "hint" not in str(e.value) and "`resume`" in str(e.value)
        with pytest.raises(DataError, match="2 IDs for 3 feature rows"):
            fs.append(["u", "v"], _matrix(3, 6))
        with pytest.raises(DataError, match="bad document ID"):
            fs.append([" padded"], _matrix(1, 6))
        assert fs.n == 13  # nothing was written
    with FeatureStore.open(p) as fs:
        with pytest.raises(UsageError, match="read-only"):
            fs.append(["z"], _matrix(1, 6))
    assert read_features(p)[1].shape == (13, 6)


def test_not_a_feature_store(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.zeros((3, 3))
    with pytest.raises(DataError, match="not a primo feature store") as e:
        FeatureStore.open(other)
    assert str(other) in str(e.value) and "primo extract" in str(e.value) and "\n" not in str(e.value)
    text = tmp_path / "notes.h5"
    text.write_text("hello\n")
    with pytest.raises(DataError, match="not an HDF5 file") as e:
        FeatureStore.open(text)
    assert str(text) in str(e.value)
    with pytest.raises(UsageError, match="does not exist"):
        FeatureStore.open(tmp_path / "missing.h5")


def test_crash_mid_append_keeps_last_committed_rows(store4):
    """Simulate a crash after the data was written but before n_rows was raised."""
    p, ids, X = store4
    with h5py.File(p, "r+") as f:
        for name in ("features", "ids"):
            f[name].resize(17, axis=0)
        f["features"][13:17] = np.nan
        f["ids"][13:17] = ["doc00", "doc01", "junk", "junk"]
    with FeatureStore.open(p, "r+") as fs:
        assert fs.n == 13 and fs.ids.tolist() == ids
        assert fs.validate()["n"] == 13  # the uncommitted tail is invisible
        fs.append(["late0", "late1"], _matrix(2, 6, seed=9))
    with FeatureStore.open(p) as fs:
        assert fs.n == 15
        assert fs.ids.tolist()[-2:] == ["late0", "late1"]
        assert np.isfinite(fs.read()).all()


def test_validate_reports_damage_written_behind_its_back(store4):
    p, ids, X = store4
    with h5py.File(p, "r+") as f:
        f["ids"][7] = "doc02"
    with FeatureStore.open(p) as fs:
        with pytest.raises(DataError, match="duplicate document ID 'doc02'") as e:
            fs.validate()
        assert "record 3" in str(e.value)
    with h5py.File(p, "r+") as f:
        f["ids"][7] = "doc07"
        f["features"][9, 1] = np.inf
    with FeatureStore.open(p) as fs:
        with pytest.raises(DataError, match="NaN or infinite feature values in document 'doc09'") as e:
            fs.validate(chunksize=4)
        assert "record 10" in str(e.value)
    with h5py.File(p, "r+") as f:
        f.attrs["n_rows"] = 99
    with pytest.raises(DataError, match="damaged"):
        FeatureStore.open(p)


def test_write_features_is_atomic(tmp_path):
    p = tmp_path / "a.h5"
    X = _matrix(5, 4)
    write_features(p, list("abcde"), X, {"extractor": "first"})
    bad = X.copy()
    bad[2, 0] = np.nan
    with pytest.raises(DataError, match="document 'c'"):
        write_features(p, list("abcde"), bad, {"extractor": "second"})
    assert sorted(os.listdir(tmp_path)) == ["a.h5"]  # no temp files left behind
    with FeatureStore.open(p) as fs:
        assert fs.metadata["extractor"] == "first" and np.array_equal(fs.read(), X)


def test_create_refuses_existing_and_bad_dims(tmp_path):
    p = tmp_path / "x.h5"
    write_features(p, ["a"], _matrix(1, 2))
    with pytest.raises(UsageError, match="already exists"):
        FeatureStore.create(p, 2)
    with pytest.raises(UsageError, match="at least 1"):
        FeatureStore.create(tmp_path / "y.h5", 0)


def test_skipped_and_metadata_updates(tmp_path):
    p = tmp_path / "s.h5"
    with FeatureStore.create(p, 2, {"extractor": "t"}) as fs:
        fs.add_skipped([("a/b.jpg", "truncated\nimage")])
        fs.update_metadata(n_skipped=1)
    with FeatureStore.open(p) as fs:
        assert fs.skipped == [("a/b.jpg", "truncated image")]
        assert fs.metadata["n_skipped"] == 1
        assert json.loads(h5py.File(p, "r").attrs["metadata"])["extractor"] == "t"


def test_streaming_reads_stay_bounded(tmp_path):
    """Chunked reads never return more than chunksize rows, whatever the store size."""
    p = tmp_path / "big.h5"
    n, d = 5000, 64
    with FeatureStore.create(p, d, chunk_rows=256) as fs:
        for a in range(0, n, 1000):
            fs.append([f"r{i}" for i in range(a, a + 1000)], np.full((1000, d), a, np.float32))
    with FeatureStore.open(p) as fs:
        total = 0
        for cid, cX in fs.iter_chunks(700):
            assert len(cX) <= 700 and cX.nbytes <= 700 * d * 4
            total += len(cX)
        assert total == n
        assert fs.default_chunksize() % fs.chunk_rows == 0


def test_huge_finite_values_are_accepted(tmp_path):
    """Rows whose float32 sum overflows are still finite: only real NaN / inf are refused."""
    X = np.full((2, 8), 3e38, np.float32)
    with FeatureStore.create(tmp_path / "h.h5", 8) as fs:
        fs.append(["a", "b"], X)
        assert np.array_equal(fs.read(), X)
