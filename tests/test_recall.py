"""Counts -> search quality: nearest neighbours, threshold tables, recall curves, mAP@k, plots."""

import importlib

import numpy as np
import pytest

from primo.evaluation import recall as Q
from primo.workflows.analyze import evaluate_counts
from primo.errors import DataError, UsageError


def test_nearest_neighbors_ties_and_errors():
    d = np.array([5.0, 1.0, 3.0, 1.0, 3.0, 0.5])
    assert Q.nearest_neighbors(d, 4).tolist() == [5, 1, 3, 2]
    assert Q.nearest_neighbors(d, 6).tolist() == [5, 1, 3, 2, 4, 0]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 20, 1000).astype(float)   # many ties
    for k in (1, 17, 100, 1000):
        assert Q.nearest_neighbors(x, k).tolist() == np.lexsort((np.arange(1000), x))[:k].tolist()
    with pytest.raises(UsageError, match="only 6 documents"):
        Q.nearest_neighbors(d, 7)
    with pytest.raises(DataError, match="NaN"):
        Q.nearest_neighbors([1.0, np.nan], 1)


def test_threshold_table_against_brute_force():
    rng = np.random.default_rng(1)
    counts = rng.negative_binomial(1, 0.2, 5000)
    nn = rng.choice(5000, 100, replace=False)
    t, n, r = Q.threshold_table(counts, nn)
    assert t.tolist() == sorted(set(counts.tolist()))
    for ti, ni, ri in zip(t, n, r):
        assert ni == (counts >= ti).sum()
        assert ri == (counts[nn] >= ti).sum()
    assert n[0] == 5000 and r[0] == 100 and (np.diff(n) < 0).all() and (np.diff(r) <= 0).all()
    with pytest.raises(DataError, match="non-negative"):
        Q.threshold_table([1, -1], [0])


def test_recall_curve_csv_roundtrip(tmp_path):
    rng = np.random.default_rng(2)
    counts = rng.poisson(2, 400)
    dist = rng.random(400)
    c = Q.recall_curve(counts, dist, k=50, name="q")
    assert c.k == 50 and c.n_db == 400
    p = c.write_csv(tmp_path / "t.csv")
    lines = p.read_text().splitlines()
    assert lines[0] == "Threshold,Number Retrieved,50-Nearest-Neighbor Recall"
    back = Q.RecallCurve.read_csv(p, n_db=400)
    assert back.k == 50 and (back.retrieved == c.retrieved).all() and (back.recall == c.recall).all()
    assert c.proportion[0] == 1.0 and c.recall_fraction[0] == 1.0
    full = c.retrieved[c.recall == 50].min() / 400
    assert c.proportion_at_recall(1.0) == pytest.approx(full)
    assert c.proportion_at_recall(0.5) <= full
    s = c.summary()
    assert set(s["proportion_at_recall"]) == {"0.1", "0.5", "0.9", "1"}
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a thresholds file"):
        Q.RecallCurve.read_csv(tmp_path / "bad.csv", n_db=10)


def test_candidate_recall_and_reference_lines():
    assert Q.candidate_recall(["a", "x", "c"], ["a", "b", "c"]) == 2
    assert Q.candidate_recall([], [1, 2]) == 0
    r, p = Q.chance_curve(1000, k=100)
    assert np.allclose(r, p) and r[0] == pytest.approx(0.01) and r[-1] == 1
    r, p = Q.oracle_curve(1000, k=100)
    assert np.allclose(p, r * 100 / 1000)


def test_map_at_k_from_scores_brute_force():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 200).astype(str)
    scores = rng.integers(0, 5, (4, 200))     # many ties: broken by position
    ql = np.array(["0", "1", "2", "0"])
    m, per = Q.map_at_k_from_scores(scores, labels, ql, k=10)
    for i in range(4):
        order = sorted(range(200), key=lambda j: (-scores[i, j], j))[:10]
        rel = [labels[j] == ql[i] for j in order]
        hits, s = 0, 0.0
        for rank, x in enumerate(rel, 1):
            if x:
                hits += 1
                s += hits / rank
        assert per[i] == pytest.approx(s / hits if hits else 0.0)
    assert m == pytest.approx(per.mean())
    with pytest.raises(UsageError):
        Q.map_at_k_from_scores(scores, labels[:10], ql, k=5)


def test_load_distances_errors(tmp_path):
    ids = np.array(["a", "b", "c"])
    p = tmp_path / "d.csv"
    p.write_text("ImageID,Euclidean Distance\nc,3\na,1.5\nb,2\n")
    assert Q.load_distances(p, ids).tolist() == [1.5, 2.0, 3.0]
    cases = [
        ("ImageID,Euclidean Distance\na,1\nb,x\nc,1\n", "line 3.*not a number"),
        ("ImageID,Euclidean Distance\na,1\na,2\nc,1\n", "line 3.*appears twice"),
        ("ImageID,Euclidean Distance\na,1\nb,-2\nc,1\n", "non-negative"),
        ("ImageID,Distance\na,1\n", "lacks column"),
        ("", "empty"),
    ]
    for text, msg in cases:
        p.write_text(text)
        with pytest.raises(DataError, match=msg):
            Q.load_distances(p, ids)


def test_distances_from_features(tmp_path):
    from primo.features.store import write_features

    rng = np.random.default_rng(4)
    ids = [f"d{i}" for i in range(50)]
    X = rng.normal(size=(50, 8)).astype(np.float32)
    write_features(tmp_path / "db.h5", ids + ["extra"], np.vstack([X, X[:1]]))
    q = rng.normal(size=(2, 8)).astype(np.float32)
    write_features(tmp_path / "q.h5", ["q0", "q1"], q)
    pool_ids = np.array(ids[::-1])          # pool order differs from store order
    d, qid = Q.distances_from_features(tmp_path / "db.h5", tmp_path / "q.h5", pool_ids,
                                       query_id="q1", chunksize=7)
    expect = np.linalg.norm(X[::-1].astype(np.float64) - q[1].astype(np.float64), axis=1)
    assert qid == "q1" and np.allclose(d, expect, rtol=1e-6)
    with pytest.raises(UsageError, match="choose one by its ID") as e:
        Q.distances_from_features(tmp_path / "db.h5", tmp_path / "q.h5", pool_ids)
    # library terms in the message; the command line adds the option (--query-id)
    assert "--" not in str(e.value) and e.value.option == "query_id"
    with pytest.raises(UsageError, match="not in the query file"):
        Q.distances_from_features(tmp_path / "db.h5", tmp_path / "q.h5", pool_ids, query_id="zz")
    with pytest.raises(DataError, match="does not cover the pool.*'nope'"):
        Q.distances_from_features(tmp_path / "db.h5", tmp_path / "q.h5",
                                  np.array(ids + ["nope"]), query_id="q0")


def test_plot_recall_several_curves(tmp_path):
    rng = np.random.default_rng(5)
    curves = []
    for name in ("q1", "q2"):
        counts = rng.poisson(1, 2000)
        curves.append(Q.recall_curve(counts, rng.random(2000), k=100, name=name))
    curves.append(("tuple", np.array([0.1, 0.5, 1.0]), np.array([0.001, 0.01, 0.5])))
    from primo.evaluation.plots import plot_recall

    p = plot_recall(curves, tmp_path / "r.png", n_db=2000, title="test")
    data = p.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"primo" in data
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.png"]


def test_evaluate_counts_writes_files(tmp_path):
    rng = np.random.default_rng(6)
    counts = rng.poisson(1, 300)
    ids = np.array([f"i{k}" for k in range(300)])
    labels = np.where(np.arange(300) % 3 == 0, "a", "b").astype(object)
    s = evaluate_counts(counts, ids, rng.random(300), tmp_path, k=20, name="q",
                          labels=labels, query_label="a", map_ks=(5,))
    assert (tmp_path / "thresholds.csv").exists() and (tmp_path / "recall.png").exists()
    assert s["k"] == 20 and set(s["map_at_k"]) == {"5"}
    with pytest.raises(UsageError, match="query's label"):
        evaluate_counts(counts, ids, None, tmp_path, labels=labels)


def test_cli_features_query_and_counts_without_pool(run_cli, tmp_path):
    """primo analyze --counts C --features F --query Q: distances computed from the feature store."""
    import json

    from primo.features.store import write_features

    rng = np.random.default_rng(7)
    ids = [f"img{i:03d}" for i in range(300)]
    X = rng.normal(size=(300, 16)).astype(np.float32)
    write_features(tmp_path / "db.h5", ids, X)
    write_features(tmp_path / "q.h5", ["query"], X[:1] + 0.01)
    counts = rng.poisson(2, 300)
    counts[:5] += 50                       # the query's neighbourhood came back
    (tmp_path / "c.csv").write_text("ImageID,Count\n" + "".join(f"{i},{c}\n"
                                                              for i, c in zip(ids, counts)))
    out = tmp_path / "out"
    res, stdout, err = run_cli(["analyze", "--counts", tmp_path / "c.csv", "--features",
                                tmp_path / "db.h5", "--queries", tmp_path / "q.h5", "-o", out,
                                "--neighbors", "10", "--exclude", "img299"])
    assert res.exit_code == 0, err
    lines = (out / "thresholds.csv").read_text().splitlines()
    assert lines[0] == "Threshold,Number Retrieved,10-Nearest-Neighbor Recall"
    d = np.linalg.norm(X.astype(np.float64) - (X[:1] + 0.01).astype(np.float64), axis=1)
    before = int(counts[299])
    counts[299] = 0
    expect = Q.recall_curve(counts, d, k=10)
    got = np.array([[int(x) for x in ln.split(",")] for ln in lines[1:]])
    assert (got[:, 1] == expect.retrieved).all() and (got[:, 2] == expect.recall).all()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["search"]["name"] == "query" and stats["excluded"] == {"img299": before}
    assert stats["counted"] == int(counts.sum())
    from primo.reads import ReadCounts

    back = ReadCounts.read(out / "counts.csv.gz")
    assert back.image_ids.tolist() == ids and (back.counts == counts).all()
    assert (out / "recall.png").read_bytes()[:4] == b"\x89PNG"


def test_enrichment_scores_and_real_valued_thresholds(tmp_path):
    from primo.evaluation.recall import RecallCurve, enrichment_scores, recall_curve, threshold_table
    from primo.errors import DataError, UsageError

    c = np.array([0, 4, 4, 1, 9])
    u = np.array([3, 1, 7, 0, 9])
    e = enrichment_scores(c, u)
    assert e[0] == 0  # not sequenced in the selection: never retrieved
    a, n = 0.5, 5
    want = ((c + a) / (c.sum() + a * n)) / ((u + a) / (u.sum() + a * n))
    assert np.allclose(e[1:], want[1:])
    assert e[1] > e[4] > e[2]  # fewer input reads per selected read, more enrichment
    with pytest.raises(UsageError):
        enrichment_scores(c, u[:3])
    with pytest.raises(DataError):
        enrichment_scores(c, -u)
    # thresholds are the distinct scores; brute force
    t, r, k = threshold_table(e, [1, 3])
    assert t.dtype == np.float64 and t.tolist() == sorted(set(e.tolist()))
    for ti, ri, ki in zip(t, r, k):
        assert ri == (e >= ti).sum() and ki == (e[[1, 3]] >= ti).sum()
    with pytest.raises(DataError):
        threshold_table(np.array([0.5, np.nan]), [0])
    # integral floats stay counts
    assert threshold_table(np.array([2.0, 0.0]), [0])[0].dtype == np.int64
    curve = recall_curve(e, nn_positions=[1, 3], name="q")
    back = RecallCurve.read_csv(curve.write_csv(tmp_path / "t.csv"), n_db=5)
    assert np.allclose(back.thresholds, curve.thresholds, rtol=1e-8)
    assert back.retrieved.tolist() == curve.retrieved.tolist()
    assert back.recall.tolist() == curve.recall.tolist()


def test_plot_recall_many_queries_one_legend_entry_no_warning(tmp_path):
    """40 queries' curves (primo simulate's recall.png) draw without a 40-line legend that
    overflows the axes (matplotlib's 'Tight layout not applied' warning on stderr)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from primo.evaluation.plots import plot_recall

    rng = np.random.default_rng(7)
    curves = [Q.recall_curve(rng.poisson(1, 500), rng.random(500), k=50,
                             name=f"fmnist-test-{i:05d}") for i in range(40)]
    seen = {}
    real_close = plt.close

    def spy(fig=None):
        if fig is not None and fig.axes:
            leg = fig.axes[0].get_legend()
            seen["labels"] = [t.get_text() for t in leg.get_texts()]
        return real_close(fig)

    plt.close = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            plot_recall(curves, tmp_path / "r.png", n_db=500, k=50)
    finally:
        plt.close = real_close
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert seen["labels"][0] == "40 queries" and len(seen["labels"]) == 3  # + chance, oracle
