"""NaN / inf feature rows are refused as they are read, or left out with --skip-bad-rows
(issue 15, section 2); feature stores written by other tools (unchunked, float64, int) are read."""

import json
import shutil

import h5py
import numpy as np
import pytest

from primo.errors import DataError
from primo.features.store import FeatureStore, bad_rows_policy, skipped_rows, write_features


def _store(path, n=10, dim=4, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    ids = [f"d{i:02d}" for i in range(n)]
    write_features(path, ids, X, {"extractor": "t"}, labels=np.arange(n) if labels else None,
                   chunk_rows=3)
    return ids, X


def _poison(path, rows, value=np.nan):
    with h5py.File(path, "r+") as f:
        for r in rows:
            f["features"][r, 1] = value


def test_every_read_refuses_nan_naming_file_row_and_id(tmp_path):
    p = tmp_path / "f.h5"
    ids, X = _store(p)
    _poison(p, [4])
    with FeatureStore.open(p) as fs:
        for read in [lambda: fs.read(), lambda: list(fs.iter_chunks(3)),
                     lambda: fs.read_ids(["d01", "d04"]), lambda: fs.read_index([4]),
                     lambda: fs.read_rows(2, 6)]:
            with pytest.raises(DataError) as e:
                read()
            msg = str(e.value)
            assert str(p) in msg and "row index 4" in msg and "'d04'" in msg and "NaN" in msg
            assert "`skip_bad_rows`" in msg
        # rows without the bad one read fine
        assert np.array_equal(fs.read(0, 4), X[:4])
        assert np.array_equal(fs.read_ids(["d09", "d00"]), X[[9, 0]])
    _poison(p, [4], np.inf)
    with FeatureStore.open(p) as fs, pytest.raises(DataError, match="row index 4: infinite"):
        fs.read()


def test_skip_bad_rows_reads_the_store_without_them(tmp_path):
    p = tmp_path / "f.h5"
    ids, X = _store(p)
    _poison(p, [0, 4, 5], np.nan)
    _poison(p, [9], -np.inf)
    keep = [1, 2, 3, 6, 7, 8]
    told = []
    with bad_rows_policy(skip=True, warn=told.append):
        with FeatureStore.open(p) as fs:
            assert fs.n == len(keep) and len(fs) == len(keep)
            assert fs.ids.tolist() == [ids[i] for i in keep]
            assert np.array_equal(fs.read(), X[keep])
            assert np.array_equal(fs.labels, np.array(keep))
            chunks = list(fs.iter_chunks(4, labels=True))
            assert [c[0].tolist() for c in chunks] == [[ids[i] for i in keep[:4]],
                                                       [ids[i] for i in keep[4:]]]
            assert np.array_equal(np.concatenate([c[1] for c in chunks]), X[keep])
            assert np.array_equal(np.concatenate([c[2] for c in chunks]), np.array(keep))
            assert np.array_equal(fs.read_index([5, 0]), X[[8, 1]])
            assert np.array_equal(fs.read_ids(["d07", "d02"]), X[[7, 2]])
            assert np.array_equal(fs.read(2, 5), X[[3, 6, 7]])
            with pytest.raises(DataError, match="'d04' is not in the feature store"):
                fs.read_ids(["d04"])
        listed = skipped_rows()
    assert [(d["row"], d["id"], d["problem"]) for d in listed] == [
        (0, "d00", "NaN"), (4, "d04", "NaN"), (5, "d05", "NaN"), (9, "d09", "infinite")]
    assert all(d["path"] == str(p) for d in listed)
    assert len(told) == 1 and "left out 4 row(s)" in told[0] and str(p) in told[0]
    assert skipped_rows() == []   # only inside the policy
    # a store without bad rows is untouched by the policy
    q = tmp_path / "g.h5"
    _store(q)
    with bad_rows_policy(skip=True, warn=told.append):
        with FeatureStore.open(q) as fs:
            assert fs.n == 10
        assert skipped_rows() == []


@pytest.mark.parametrize("dtype", ["float64", "int32", "float16"])
@pytest.mark.parametrize("chunked", [False, True], ids=["contiguous", "chunked"])
def test_stores_written_by_other_tools_are_read_as_float32(tmp_path, dtype, chunked):
    p = tmp_path / "other.h5"
    X = (np.arange(24).reshape(6, 4) * 1.5).astype(dtype)
    with h5py.File(p, "w") as f:
        f.attrs.update({"primo_format": "primo-features", "format_version": 1, "dim": 4,
                        "n_rows": 6, "metadata": "{}"})
        f.create_dataset("features", data=X, chunks=(2, 4) if chunked else None)
        f.create_dataset("ids", data=np.array([f"x{i}" for i in range(6)], dtype=object),
                         dtype=h5py.string_dtype())
    with FeatureStore.open(p) as fs:
        assert fs.chunk_rows >= 1
        got = fs.read()
        assert got.dtype == np.float32 and np.array_equal(got, X.astype(np.float32))
        assert np.array_equal(np.concatenate([c[1] for c in fs.iter_chunks(4)]), got)
        assert np.array_equal(fs.read_index([5, 1]), got[[5, 1]])
        assert fs.default_chunksize() >= 1


def test_ids_shorter_than_features_message_says_which(tmp_path):
    p = tmp_path / "f.h5"
    _store(p, labels=False)
    with h5py.File(p, "r+") as f:
        f["ids"].resize((7,))
    with pytest.raises(DataError) as e:
        FeatureStore.open(p)
    assert "n_rows=10 but the datasets hold 10 feature rows and 7 IDs" in str(e.value)


# ---- the commands ------------------------------------------------------------------------------
@pytest.fixture
def nan_features(tiny_workspace, tmp_path):
    p = tmp_path / "nan.h5"
    shutil.copy(tiny_workspace.features, p)
    _poison(p, [5])
    with h5py.File(p, "r") as f:
        bad_id = f["ids"].asstr()[5]
    return p, bad_id


def _err_line(err):
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning" not in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_encode_db_refuses_or_skips_nan_rows(tiny_workspace, nan_features, tmp_path, run_cli):
    p, bad_id = nan_features
    out = tmp_path / "pool"
    res, _, err = run_cli(["encode-db", "-m", tiny_workspace.model, "-f", p, "-o", out,
                           "--qc", "warn"])
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    line = _err_line(err)
    assert str(p) in line and "row index 5" in line and repr(bad_id) in line
    assert "homopolymer" not in line and not out.exists()
    res, _, err = run_cli(["encode-db", "-m", tiny_workspace.model, "-f", p, "-o", out,
                           "--qc", "warn", "--skip-bad-rows"])
    assert res.exit_code == 0, err
    assert "primo encode-db: warning:" in err and repr(bad_id) in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(d["row"], d["id"]) for d in manifest["skipped_rows"]] == [(5, bad_id)]
    with FeatureStore.open(tiny_workspace.features) as fs:
        n = fs.n
    assert res.value.n_documents == n - 1
    marker = json.loads((out / ".primo-output.json").read_text())
    assert marker["skipped_rows"][0]["id"] == bad_id


def test_query_refuses_or_skips_a_nan_query(tiny_workspace, nan_features, tmp_path, run_cli):
    p, bad_id = nan_features
    out = tmp_path / "probes.csv"
    res, _, err = run_cli(["query", "-m", tiny_workspace.model, "-f", p, "--query-id", bad_id,
                           "-o", out])
    assert res.exit_code == 1 and repr(bad_id) in _err_line(err) and str(p) in err
    assert not out.exists()
    res, _, err = run_cli(["query", "-m", tiny_workspace.model, "-f", p, "-o", out,
                           "--skip-bad-rows"])
    assert res.exit_code == 0, err
    assert bad_id not in res.value.query_ids
    man = json.loads((tmp_path / "probes_manifest.json").read_text())
    assert [d["id"] for d in man["skipped_rows"]] == [bad_id]


def test_benchmark_and_train_refuse_nan_rows(tiny_workspace, nan_features, tmp_path, run_cli):
    p, bad_id = nan_features
    res, _, err = run_cli(["benchmark", "-f", p, "-Q", tiny_workspace.features, "-o",
                           tmp_path / "b", "--peers", "none", "--neighbors", "5"])
    assert res.exit_code == 1 and repr(bad_id) in _err_line(err)
    res, _, err = run_cli(["benchmark", "-f", p, "-Q", p, "-o", tmp_path / "b", "--peers", "none",
                           "--neighbors", "5", "--skip-bad-rows"])
    assert res.exit_code == 0, err
    summ = json.loads((tmp_path / "b" / "summary.json").read_text())
    # the database and the queries are the same store: its bad row is listed and warned of once
    assert [d["id"] for d in summ["skipped_rows"]] == [bad_id]
    assert err.count("warning:") == 1
    assert summ["parameters"]["database_size"] == res.value["parameters"]["database_size"]
    res, _, err = run_cli(["train", "-f", p, "-o", tmp_path / "m", "--threshold", "auto",
                           "--rounds", "1", "--steps", "2", "-j", "1"])
    assert res.exit_code == 1 and repr(bad_id) in _err_line(err) and "threshold nan" not in err
    assert not (tmp_path / "m" / "card.json").exists()


def test_training_source_leaves_out_bad_rows(tmp_path):
    from primo.training.data import fingerprint, open_features

    p = tmp_path / "f.h5"
    ids, X = _store(p, n=12)
    _poison(p, [3])
    with pytest.raises(DataError, match="row index 3"):
        with open_features(p) as fs:
            fingerprint(fs)
    with bad_rows_policy(skip=True):
        with open_features(p) as fs:
            assert fs.n == 11 and "d03" not in fs.ids.tolist()
            assert np.array_equal(fs.read_index(np.arange(11)), np.delete(X, 3, axis=0))
            fingerprint(fs)
