"""primo benchmark: exact neighbours, instrumented peers, primo curves, CLI and bad input."""

import csv
import gzip
import json
import warnings

import numpy as np
import pytest

from primo.benchmark import peers as ann
from primo.benchmark.core import (
    BENCHMARK_COLUMNS, BenchmarkRow, PeerSkippedWarning, mean_points,
    primo_rows_from_counts, primo_rows_from_points, read_counts_table,
    run_benchmark,
)
from primo.errors import DataError, UsageError
from primo.evaluation.neighbors import exact_knn
from primo.evaluation.recall import pareto_frontier, proportion_at_recall
from primo.features.store import write_features


def clustered(n=3000, d=32, m=12, seed=0, centers=16):
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((centers, d)) * 3
    X = (C[rng.integers(0, centers, n)] + rng.standard_normal((n, d))).astype(np.float32)
    Q = (C[rng.integers(0, centers, m)] + rng.standard_normal((m, d))).astype(np.float32)
    return X, Q


@pytest.fixture(scope="module")
def data():
    X, Q = clustered()
    nn, dist = exact_knn(X, Q, k=50, chunksize=700)
    return X, Q, nn, dist


# ------------------------------------------------------------------ exact neighbours
def test_exact_knn_matches_numpy_brute_force(data):
    X, Q, nn, dist = data
    d2 = ((Q[:, None, :].astype(np.float64) - X[None, :, :].astype(np.float64)) ** 2).sum(-1)
    ref = np.argsort(d2, axis=1, kind="stable")[:, :50]
    assert np.array_equal(nn, ref)
    assert np.allclose(dist, np.sqrt(np.take_along_axis(d2, ref, axis=1)))


def test_exact_knn_streams_chunks_and_mapper(data):
    from primo.parallel import get_mapper

    X, Q, nn, _ = data
    chunks = ((None, X[a:a + 512]) for a in range(0, len(X), 512))
    with get_mapper(processes=2) as m:
        nn2, _ = exact_knn(chunks, Q, k=50, mapper=m)
    assert np.array_equal(nn, nn2)


def test_exact_knn_ties_broken_by_row():
    X = np.array([[1.0], [-1.0], [1.0], [5.0]], dtype=np.float32)
    rows, dist = exact_knn(X, np.zeros((1, 1)), k=3, chunksize=2)
    assert rows.tolist() == [[0, 1, 2]]
    assert np.allclose(dist, 1.0)


def test_exact_knn_k_larger_than_database():
    with pytest.raises(UsageError, match="larger than the database"):
        exact_knn(np.zeros((5, 3), np.float32), np.zeros((1, 3)), k=6)


# ------------------------------------------------------------------ LSH (hand-checkable)
def test_lsh_buckets_hand_checked():
    # hyperplanes = the two axes: a bucket is a quadrant, key = 2*[x>0] + [y>0]
    X = np.array([[1, 1], [2, 3], [-1, 2], [-2, -1], [3, -1], [0.5, 0.5]], dtype=np.float32)
    lsh = ann.RandomProjectionLSH(n_bits=2, n_tables=1, projections=np.eye(2), center=False).fit(X)
    assert lsh.query_keys(np.array([[1.0, 1.0], [-1, 1], [1, -1], [-1, -1]]))[:, 0].tolist() == [3, 1, 2, 0]
    q = np.array([4.0, 4.0])
    assert lsh.candidates(q).tolist() == [0, 1, 5]                    # quadrant (+, +)
    assert lsh.candidates(q, radius=1).tolist() == [0, 1, 2, 4, 5]   # + (-, +) and (+, -)
    assert lsh.candidates(q, radius=2).tolist() == [0, 1, 2, 3, 4, 5]
    assert lsh.candidates(q, n_bits=1).tolist() == [0, 1, 4, 5]      # first bit only: x > 0
    assert lsh.candidates(np.array([-1.0, -5.0])).tolist() == [3]


def test_lsh_tables_union_and_centering():
    # two tables: table 0 splits on x, table 1 on y (1 bit each); centred at the mean (2, 2)
    X = np.array([[0, 0], [4, 0], [0, 4], [4, 4]], dtype=np.float32)
    P = np.array([[1.0, 0.0], [0.0, 1.0]])
    lsh = ann.RandomProjectionLSH(n_bits=1, n_tables=2, projections=P).fit(X)
    assert np.allclose(lsh.center_, [2, 2])
    q = np.array([3.0, 3.0])
    assert lsh.candidates(q, n_tables=1).tolist() == [1, 3]
    assert lsh.candidates(q, n_tables=2).tolist() == [1, 2, 3]


def test_lsh_candidates_shrink_with_bits_grow_with_tables(data):
    X, Q, nn, _ = data
    lsh = ann.RandomProjectionLSH(n_bits=12, n_tables=4, seed=1).fit(X)
    for q in Q[:4]:
        sizes_b = [len(lsh.candidates(q, n_bits=b, n_tables=1)) for b in range(1, 13)]
        assert sizes_b == sorted(sizes_b, reverse=True)
        sets_t = [set(lsh.candidates(q, n_bits=8, n_tables=t).tolist()) for t in range(1, 5)]
        assert all(a <= b for a, b in zip(sets_t, sets_t[1:]))
        # brute-force bucket membership agrees
        keys = lsh._keys(X)[:, 0] >> np.uint64(4)
        qk = lsh.query_keys(q)[0, 0] >> np.uint64(4)
        assert lsh.candidates(q, n_bits=8, n_tables=1).tolist() == np.flatnonzero(keys == qk).tolist()


def test_count_found():
    mark = np.zeros(10, dtype=bool)
    assert ann.count_found([1, 2, 2, 9, -1], np.array([2, 3, 9]), mark) == 2
    assert not mark.any()


# ------------------------------------------------------------------ peers
def _sweep(name, X, Q, nn, **opts):
    (peer,), skipped = ann.resolve_peers([name], {name: opts} if opts else None)
    assert skipped == []
    peer.build(X)
    return peer, list(peer.sweep(Q, nn, nn.shape[1]))


def _sane(points, N, k):
    for p in points:
        assert p.n_retrieved.dtype.kind == "i" and p.n_found.dtype.kind == "i"
        assert (p.n_found >= 0).all() and (p.n_found <= k).all()
        assert (p.n_retrieved >= p.n_found).all() and (p.n_retrieved <= N).all()


def test_ivf_flat_counts_equal_faiss_stats_and_are_monotone(data):
    import faiss

    X, Q, nn, _ = data
    peer, pts = _sweep("faiss-ivf", X, Q, nn, nlist=40)
    _sane(pts, len(X), 50)
    assert [int(p.params.split("nprobe=")[1]) for p in pts] == [1, 2, 4, 8, 16, 32, 40]
    ret = np.array([p.n_retrieved for p in pts])
    found = np.array([p.n_found for p in pts])
    assert (np.diff(ret, axis=0) >= 0).all() and (np.diff(found, axis=0) >= 0).all()
    assert (ret[-1] == len(X)).all() and (found[-1] == 50).all()     # all lists: everything
    assert (ret[0] >= 1).all()
    # the candidate count is what faiss itself scans, and found = what its search returns
    p = faiss.SearchParametersIVF()
    p.nprobe = 4
    for i in range(len(Q)):
        faiss.cvar.indexIVF_stats.reset()
        _, I = peer.index.search(Q[i:i + 1], 50, params=p)
        assert faiss.cvar.indexIVF_stats.ndis == ret[2, i]
        assert len(set(I[0][I[0] >= 0].tolist()) & set(nn[i].tolist())) == found[2, i]


def test_ivfpq_counts(data):
    X, Q, nn, _ = data
    _, pts = _sweep("faiss-ivfpq", X, Q, nn, nlist=40, m=8)
    _sane(pts, len(X), 50)
    ret = np.array([p.n_retrieved for p in pts])
    assert (np.diff(ret, axis=0) >= 0).all() and (ret[-1] == len(X)).all()
    assert np.array([p.n_found for p in pts])[-1].mean() > 10    # PQ codes rank roughly right


def test_hnsw_counts_distance_computations(data):
    X, Q, nn, _ = data
    peer, pts = _sweep("hnsw", X, Q, nn, ef_search=[10, 50, 100, 400, 3000])
    _sane(pts, len(X), 50)
    assert [p.params.split("efSearch=")[1] for p in pts] == ["50", "100", "400", "3000"]  # >= k
    ret = np.array([p.n_retrieved for p in pts])
    assert (ret[0] >= 50).all()                                    # at least the k returned
    assert (ret.mean(axis=1)[1:] >= ret.mean(axis=1)[:-1]).all()
    assert (ret[-1] >= 0.95 * len(X)).all()                       # ef >= N visits (nearly) all
    assert (np.array([p.n_found for p in pts])[-1] == 50).all()
    assert np.array([p.n_found for p in pts])[0].mean() > 40


def test_hnsw_sq_and_annoy_and_mrpt(data):
    X, Q, nn, _ = data
    _, pts = _sweep("hnsw-sq", X, Q, nn, ef_search=[50, 200])
    _sane(pts, len(X), 50)
    _, pts = _sweep("annoy", X, Q, nn, n_trees=5, search_k=[50, 500, 5000, 15000])
    _sane(pts, len(X), 50)
    ret = np.array([p.n_retrieved for p in pts])
    assert (np.diff(ret, axis=0) >= 0).all()
    assert (ret[0] >= 50 // 5).all()   # >= search_k items collected, at most 5 copies of each (5 trees)
    assert (ret[-1] == len(X)).all() and (np.array([p.n_found for p in pts])[-1] == 50).all()
    _, pts = _sweep("mrpt", X, Q, nn, n_trees=[1, 8], votes=[1, 2])
    _sane(pts, len(X), 50)
    by = {p.params: p for p in pts}
    d = pts[0].params.split()[0]
    assert (by[f"{d} n_trees=8 votes=1"].n_retrieved >= by[f"{d} n_trees=8 votes=2"].n_retrieved).all()


def test_lsh_peer(data):
    X, Q, nn, _ = data
    _, pts = _sweep("lsh", X, Q, nn, n_bits=[4, 8], n_tables=[1, 4], radius=[0, 1])
    _sane(pts, len(X), 50)
    by = {p.params: p for p in pts}
    assert (by["bits=4 tables=1 radius=0"].n_retrieved >= by["bits=8 tables=1 radius=0"].n_retrieved).all()
    assert (by["bits=8 tables=4 radius=0"].n_retrieved >= by["bits=8 tables=1 radius=0"].n_retrieved).all()
    assert (by["bits=8 tables=1 radius=1"].n_found >= by["bits=8 tables=1 radius=0"].n_found).all()


def test_unknown_peer_and_bad_option():
    with pytest.raises(UsageError, match="unknown peer 'nope'.*choose from"):
        ann.resolve_peers("hnsw,nope")
    with pytest.raises(UsageError, match="bad option for peer faiss-ivf.*nlist"):
        ann.resolve_peers(["faiss-ivf"], {"faiss-ivf": {"bogus": 1}})


class _NeedsMissingLibrary(ann.LSHPeer):
    name = "test-missing-lib"
    requires = ("primo_test_no_such_ann_library",)


def test_missing_peer_library_is_skipped_with_message(data):
    X, Q, _, _ = data
    ann.register_peer(_NeedsMissingLibrary)
    try:
        reason = ann.peer_unavailable_reason("test-missing-lib")
        assert reason.startswith("peer test-missing-lib skipped: its library "
                                 "'primo_test_no_such_ann_library' does not import")
        assert "install it" in reason and "\n" not in reason
        with pytest.warns(PeerSkippedWarning, match="test-missing-lib skipped"):
            res = run_benchmark(X[:500], Q[:3], k=10, peers=["test-missing-lib", "faiss-ivf"])
        assert res.skipped == [reason]
        assert {r.algorithm for r in res.rows} == {"faiss-ivf"}
    finally:
        ann.PEERS.pop("test-missing-lib")


# ------------------------------------------------------------------ curves and primo
def test_frontier_and_interpolation():
    pts = [(0.02, 0.4, "a"), (0.5, 0.3, "b"), (0.1, 0.95, "c")]
    assert [p[2] for p in pareto_frontier(pts)] == ["a", "c"]
    assert proportion_at_recall(pts, 0.2) == pytest.approx(0.01)      # subsampling of "a"
    assert proportion_at_recall(pts, 0.9) == pytest.approx(0.02 + 0.5 / 0.55 * 0.08)
    assert proportion_at_recall(pts, 0.96) is None


def test_primo_rows_from_counts_and_points():
    nn = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    counts = {"a": (np.array([0, 1, 8, 9]), np.array([100, 10, 50, 1])),
              "b": (np.array([4]), np.array([5]))}
    rows = primo_rows_from_counts(counts, nn, ["a", "b", "c"], db_size=20, k=4, n_thresholds=3)
    got = {(r.query_id, r.params): (r.n_retrieved, r.n_found) for r in rows}
    assert got == {("a", "threshold=1"): (4, 2), ("a", "threshold=10"): (3, 2),
                   ("a", "threshold=100"): (1, 1), ("b", "threshold=1"): (1, 1),
                   ("b", "threshold=10"): (0, 0), ("b", "threshold=100"): (0, 0)}
    pts = mean_points(rows)["primo"]
    assert sorted(pts)[0][:2] == (0.025, 0.125)
    rows = primo_rows_from_points(["a", "a"], [0.1, 0.5], [0.25, 1.0], ["t=2", "t=1"], 20, 4)
    assert [(r.n_retrieved, r.n_found) for r in rows] == [(2, 1), (10, 4)]
    with pytest.raises(DataError, match="out of range"):
        primo_rows_from_points(["a"], [1.5], [0.2], ["t"], 20, 4)


def test_run_benchmark_rows_and_summary(data):
    X, Q, nn, _ = data
    rows = primo_rows_from_points(["q0"] * 2, [0.01, 0.2], [0.5, 0.9], ["t=9", "t=1"], len(X), 50)
    res = run_benchmark(X, Q, k=50, peers=["faiss-ivf", "lsh"], primo_rows=rows,
                        peer_options={"faiss-ivf": {"nlist": 40}, "lsh": {"n_tables": 2}})
    s = res.summary()
    assert set(s) == {"faiss-ivf", "lsh", "primo", "chance", "oracle"}
    assert s["primo"]["proportion_at_recall"] == {"0.5": 0.01, "0.9": 0.2}
    assert s["primo"]["read_off"] == {"0.5": "measured", "0.9": "measured"}
    assert s["primo"]["setting_near"] == {"0.5": "t=9", "0.9": "t=1"}
    assert res.summary([0.25])["primo"]["read_off"] == {"0.25": "subsampled smallest setting"}
    assert s["oracle"]["proportion_at_recall"]["0.5"] == pytest.approx(0.5 * 50 / len(X), rel=1e-5)
    assert 0 < s["faiss-ivf"]["proportion_at_recall"]["0.9"] < 1
    assert all(0 <= r.n_found <= 50 and 0 <= r.n_retrieved <= len(X) for r in res.rows)
    assert set(res.how_counted()) >= {"faiss-ivf", "lsh", "primo", "chance", "oracle"}


# ------------------------------------------------------------------ CLI
@pytest.fixture
def stores(tmp_path):
    X, Q = clustered(n=1200, d=16, m=5, seed=3)
    f = tmp_path / "db.h5"
    q = tmp_path / "q.h5"
    write_features(f, [f"d{i}" for i in range(len(X))], X, {"extractor": "test"})
    write_features(q, [f"query{i}" for i in range(len(Q))], Q, {"extractor": "test"})
    return tmp_path, f, q, X, Q


def test_cli_end_to_end_with_counts(run_cli, stores):
    tmp, f, q, X, Q = stores
    nn, _ = exact_knn(X, Q, k=20)
    cdir = tmp / "counts"
    cdir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(len(Q)):
        count = rng.poisson(1.0, len(X))
        count[nn[i]] += 30          # a good experiment: neighbours get many reads
        with gzip.open(cdir / f"query{i}.csv.gz", "wt") as fh:
            fh.write("ImageID,Count\n")
            fh.writelines(f"d{j},{c}\n" for j, c in enumerate(count) if c)
    out = tmp / "out"
    res, stdout, err = run_cli(["benchmark", "--features", f, "--queries", q, "-o", out, "--neighbors", 20,
                                "--peers", "faiss-ivf,lsh,annoy", "--counts-dir", cdir,
                                "--peer-option", "annoy.n_trees=3", "--processes", 1])
    assert res.exit_code == 0, err
    assert "primo" in stdout and "faiss-ivf" in stdout
    with open(out / "benchmarks.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == BENCHMARK_COLUMNS
    assert {r[0] for r in rows[1:]} == {"primo", "faiss-ivf", "lsh", "annoy"}
    assert all(r[3] == "1200" and r[4] == "20" for r in rows[1:])
    assert {r[1] for r in rows[1:]} == {f"query{i}" for i in range(5)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["command"].startswith("primo benchmark")
    assert summary["parameters"]["k"] == 20 and summary["parameters"]["database_size"] == 1200
    p = summary["algorithms"]["primo"]["proportion_at_recall"]
    assert p["0.9"] is not None and p["0.9"] < 0.1
    assert (out / "benchmarks.png").stat().st_size > 10_000
    # feed primo's own rows back as a --primo-curve
    out2 = tmp / "out2"
    res, _, err = run_cli(["benchmark", "-f", f, "-Q", q, "-o", out2, "--neighbors", 20, "--peers", "none",
                           "--primo-curve", out / "benchmarks.csv"])
    assert res.exit_code == 0, err
    s2 = json.loads((out2 / "summary.json").read_text())
    assert s2["algorithms"]["primo"]["proportion_at_recall"] == p


def _expect_error(run_cli, args, exit_code, *fragments):
    res, _, err = run_cli(args)
    assert res.exit_code == exit_code, err
    assert err.count("\n") == 1 and err.startswith("primo benchmark: error: ")
    for frag in fragments:
        assert frag in err, err
    return err


def test_cli_query_store_with_no_queries(run_cli, stores):
    tmp, f, _, _, Q = stores
    empty = tmp / "empty.h5"
    write_features(empty, [], np.zeros((0, Q.shape[1]), np.float32), {"extractor": "test"})
    _expect_error(run_cli, ["benchmark", "-f", f, "-Q", empty, "-o", tmp / "o"], 1,
                  str(empty), "holds no queries", "extract at least one query")
    assert not (tmp / "o").exists()


def test_cli_dimension_mismatch(run_cli, stores):
    tmp, f, _, _, Q = stores
    q8 = tmp / "q8.h5"
    write_features(q8, ["a", "b"], np.ones((2, 8), np.float32), {"extractor": "other"})
    _expect_error(run_cli, ["benchmark", "-f", f, "-Q", q8, "-o", tmp / "o"], 1,
                  str(q8), "queries have 8 dimensions but the database has 16", "same extractor")


def test_cli_k_larger_than_database(run_cli, stores):
    tmp, f, q, _, _ = stores
    _expect_error(run_cli, ["benchmark", "-f", f, "-Q", q, "-o", tmp / "o", "--neighbors", 5000], 2,
                  "--neighbors: k = 5000 is larger than the database (1200 documents)", "use 1200 or less")


def test_cli_duplicate_ids(run_cli, stores):
    import h5py

    tmp, f, q, _, _ = stores
    dup = tmp / "dup.h5"
    write_features(dup, ["x", "y", "z"], np.ones((3, 16), np.float32), {"extractor": "test"})
    with h5py.File(dup, "r+") as h:          # a damaged store: two rows share an ID
        h["ids"][2] = "x"
    _expect_error(run_cli, ["benchmark", "-f", dup, "-Q", q, "-o", tmp / "o", "--neighbors", 2], 1,
                  str(dup), "record 1", "duplicate document ID 'x' (2 rows)", "must be unique")


def test_cli_duplicate_image_id_in_counts(run_cli, stores):
    tmp, f, q, _, _ = stores
    cdir = tmp / "c"
    cdir.mkdir()
    (cdir / "query0.csv").write_text("ImageID,Count\nd1,4\nd2,3\nd1,7\n")
    _expect_error(run_cli, ["benchmark", "-f", f, "-Q", q, "-o", tmp / "o", "--peers", "none",
                            "--neighbors", 10, "--counts-dir", cdir], 1,
                  str(cdir / "query0.csv"), "line 4", "ImageID 'd1' appears twice")
    (cdir / "query0.csv").write_text("ImageID,Count\nd1,4\nnot-a-doc,3\n")
    _expect_error(run_cli, ["benchmark", "-f", f, "-Q", q, "-o", tmp / "o", "--peers", "none",
                            "--neighbors", 10, "--counts-dir", cdir], 1,
                  "line 3", "ImageID 'not-a-doc' is not in the database", "same database")


def test_cli_missing_peer_library_warns_and_continues(run_cli, stores):
    tmp, f, q, _, _ = stores
    ann.register_peer(_NeedsMissingLibrary)
    try:
        res, _, err = run_cli(["benchmark", "-f", f, "-Q", q, "-o", tmp / "o", "--neighbors", 10,
                               "--peers", "test-missing-lib,faiss-ivf"])
    finally:
        ann.PEERS.pop("test-missing-lib")
    assert res.exit_code == 0, err
    assert ("primo benchmark: warning: peer test-missing-lib skipped: its library "
            "'primo_test_no_such_ann_library' does not import") in err
    summary = json.loads((tmp / "o" / "summary.json").read_text())
    assert summary["skipped"][0].startswith("peer test-missing-lib skipped")
    assert "faiss-ivf" in summary["algorithms"]


def test_cli_unknown_peer_is_usage_error(run_cli, stores):
    tmp, f, q, _, _ = stores
    _expect_error(run_cli, ["benchmark", "-f", f, "-Q", q, "-o", tmp / "o", "--peers", "hnws"], 2,
                  "unknown peer 'hnws'", "choose from")


def test_benchmark_row_csv_format():
    assert BenchmarkRow("primo", "q", 12.0, 100, 10, 3.5, "t=1").as_csv() == \
        ["primo", "q", "12", "100", "10", "3.5", "t=1"]


def test_cli_ranking_by_enrichment(run_cli, stores):
    """``--ranking enrichment`` reads DIR/<query>/enrichment.csv.gz (primo simulate
    --input-library); an enrichment table that ranks the neighbours first gives the better curve."""
    tmp, f, q, X, Q = stores
    nn, _ = exact_knn(X, Q, k=20)
    cdir = tmp / "sim"
    rng = np.random.default_rng(1)
    for i in range(len(Q)):
        (cdir / f"query{i}").mkdir(parents=True)
        count = rng.poisson(2.0, len(X))
        with gzip.open(cdir / f"query{i}" / "counts.csv.gz", "wt") as fh:
            fh.write("ImageID,Count\n")
            fh.writelines(f"d{j},{c}\n" for j, c in enumerate(count))
        enr = rng.random(len(X))
        enr[nn[i]] += 1.0
        with gzip.open(cdir / f"query{i}" / "enrichment.csv.gz", "wt") as fh:
            fh.write("ImageID,Enrichment\n")
            fh.writelines(f"d{j},{e:.6g}\n" for j, e in enumerate(enr))
    outs = {}
    for ranking in ("counts", "enrichment"):
        out = tmp / ranking
        res, _, err = run_cli(["benchmark", "-f", f, "-Q", q, "-o", out, "--neighbors", 20, "--peers",
                               "none", "--counts-dir", cdir, "--ranking", ranking])
        assert res.exit_code == 0, err
        outs[ranking] = json.loads((out / "summary.json").read_text())
    assert outs["enrichment"]["parameters"]["primo_ranking"] == "enrichment"
    pe = outs["enrichment"]["algorithms"]["primo"]["proportion_at_recall"]["0.9"]
    pc = outs["counts"]["algorithms"]["primo"]["proportion_at_recall"]["0.9"]
    assert pe is not None and pe < 0.05 and (pc is None or pc > 0.5)
    # no enrichment tables: a one-line usage error that says how to make them
    _expect_error(run_cli, ["benchmark", "-f", f, "-Q", q, "-o", tmp / "x", "--peers", "none",
                            "--counts-dir", tmp / "counts-none", "--ranking", "enrichment"], 2,
                  "is not a directory")
    (tmp / "plain").mkdir()
    _expect_error(run_cli, ["benchmark", "-f", f, "-Q", q, "-o", tmp / "x", "--peers", "none",
                            "--counts-dir", tmp / "plain", "--ranking", "enrichment"], 2,
                  "no enrichment table", "input library")


def test_cli_bootstrap_intervals_and_map_with_labels(run_cli, tmp_path):
    """With labels on both stores the summary carries mAP@10 of exact search and of primo's read
    counts, and every proportion at a recall level has a 95 % bootstrap interval over queries."""
    X, Q = clustered(n=600, d=8, m=12, seed=5)
    nn, _ = exact_knn(X, Q, k=20)
    # a document's label is its nearest query's index: each query's neighbours share its label
    db_labels = exact_knn(Q, X, k=1)[0][:, 0]
    f, q = tmp_path / "db.h5", tmp_path / "q.h5"
    write_features(f, [f"d{i}" for i in range(len(X))], X, {"extractor": "test"}, labels=db_labels)
    write_features(q, [f"query{i}" for i in range(len(Q))], Q, {"extractor": "test"},
                   labels=np.arange(len(Q)))
    cdir = tmp_path / "counts"
    cdir.mkdir()
    rng = np.random.default_rng(1)
    for i in range(len(Q)):
        count = rng.poisson(0.5, len(X))
        count[nn[i]] += rng.poisson(15, 20)  # the neighbours get reads, and some other
        count[rng.choice(len(X), 5 + 10 * i, replace=False)] += 15   # documents: queries differ
        (cdir / f"query{i}.csv").write_text(
            "ImageID,Count\n" + "".join(f"d{j},{c}\n" for j, c in enumerate(count) if c))
    out = tmp_path / "out"
    res, _, err = run_cli(["benchmark", "-f", f, "-Q", q, "-o", out, "--neighbors", 20,
                           "--peers", "none", "--counts-dir", cdir])
    assert res.exit_code == 0, err
    s = json.loads((out / "summary.json").read_text())
    primo = s["algorithms"]["primo"]
    assert primo["queries"] == len(Q)
    p50 = primo["proportion_at_recall"]["0.5"]
    lo, hi = primo["proportion_at_recall_ci95"]["0.5"]
    assert lo <= p50 <= hi and lo < hi
    assert primo["recall_reached_share"]["0.5"] == 1.0
    m = s["map_at_k"]
    assert m["k"] == 10 and m["exact"]["queries"] == len(Q) and m["primo"]["queries"] == len(Q)
    for who in ("exact", "primo"):
        lo, hi = m[who]["ci95"]
        assert 0 <= lo <= m[who]["value"] <= hi <= 1
    # the same run again gives the same intervals (seeded)
    out2 = tmp_path / "out2"
    run_cli(["benchmark", "-f", f, "-Q", q, "-o", out2, "--neighbors", 20, "--peers", "none",
             "--counts-dir", cdir])
    s2 = json.loads((out2 / "summary.json").read_text())
    assert s2["algorithms"]["primo"]["proportion_at_recall_ci95"] == \
        primo["proportion_at_recall_ci95"]
