import csv
import gzip
import json

import numpy as np
import pytest

from primo.features.store import FeatureStore, write_features


def _rows(path):
    with gzip.open(path, "rt") as fh:
        return list(csv.DictReader(fh))


def _qid(path, i):
    with FeatureStore.open(path) as st:
        return str(st.ids[i])


@pytest.fixture
def queries(tiny_workspace, tmp_path):
    with FeatureStore.open(tiny_workspace.features) as st:
        ids, X, meta = np.asarray(st.ids), st.read(0, 3), st.metadata
    q = tmp_path / "q.h5"
    write_features(q, [f"q-{i}" for i in ids[:3]], X, meta)
    return q


def test_simulate_one_query_writes_published_layouts(tiny_workspace, queries, tmp_path, run_cli):
    ws = tiny_workspace
    out = tmp_path / "sim"
    res, stdout, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                                "--query-id", _qid(queries, 0), "-o", out, "--refine", "15",
                                "--k", "10", "-j", "1", "--seed", "4"])
    assert res.exit_code == 0, err
    counts = _rows(out / "counts.csv.gz")
    with FeatureStore.open(ws.features) as st:
        assert [r["ImageID"] for r in counts] == list(st.ids)
    assert sum(int(r["Count"]) for r in counts) == 10 * len(counts)  # default depth
    ylds = _rows(out / "yields.csv.gz")
    assert sum(1 for r in ylds if r["Simulated Yield"] != "") == 15
    assert all(0 <= float(r["Predicted Yield"]) <= 1 for r in ylds)
    head = (out / "thresholds.csv").read_text().splitlines()[0]
    assert head == "Threshold,Number Retrieved,10-Nearest-Neighbor Recall"
    assert (out / "recall.png").stat().st_size > 1000
    summ = json.loads((out / "summary.json").read_text())
    q = summ["queries"][0]
    assert q["refined"] == 15 and summ["config"]["refine"] == 15
    assert "simulate" in summ["provenance"]["command"]
    # the query itself is in the database: its own document is its nearest neighbour, the top
    # refined candidate has the highest simulated yield class
    assert q["simulated_above_0.5"] >= 0


def test_simulate_is_deterministic_and_several_queries(tiny_workspace, queries, tmp_path, run_cli):
    ws = tiny_workspace
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                               "-o", out, "--refine", "5", "--k", "10", "-j", "1", "--seed", "9"])
        assert res.exit_code == 0, err
        outs.append(out)
    subdirs = sorted(p.name for p in outs[0].iterdir() if p.is_dir())
    assert len(subdirs) == 3
    for s in subdirs:
        assert _rows(outs[0] / s / "counts.csv.gz") == _rows(outs[1] / s / "counts.csv.gz")
    assert (outs[0] / "recall.png").exists()


def test_simulated_reads_are_read_back_by_analyze(tiny_workspace, queries, tmp_path, run_cli):
    ws = tiny_workspace
    pool = tmp_path / "pool"
    res, _, err = run_cli(["encode-db", "-m", ws.model, "-f", ws.features, "-o", pool, "--qc", "off"])
    assert res.exit_code == 0, err
    sim = tmp_path / "sim"
    qid = _qid(queries, 1)
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "--pool", pool,
                           "-Q", queries, "--query-id", qid, "-o", sim, "--refine", "0",
                           "--reads", "--depth", "3000", "-j", "1"])
    assert res.exit_code == 0, err
    an = tmp_path / "an"
    res, _, err = run_cli(["analyze", "--pool", pool, sim / "reads.fastq.gz", "-o", an, "-j", "1"])
    assert res.exit_code == 0, err
    truth = {r["ImageID"]: int(r["Count"]) for r in _rows(sim / "counts.csv.gz")}
    got = {r["ImageID"]: int(r["Count"]) for r in _rows(an / "counts.csv.gz")}
    assert set(truth) == set(got)
    assert sum(got.values()) >= 0.97 * sum(truth.values())
    assert sum(max(0, got[k] - truth[k]) for k in truth) <= 0.001 * sum(truth.values()) + 1


def test_simulate_refine_all_uses_the_simulator_everywhere(tiny_workspace, queries, tmp_path,
                                                           run_cli):
    ws = tiny_workspace
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                           "--query-id", _qid(queries, 2), "-o", tmp_path / "s",
                           "--refine", "-1", "--k", "5", "-j", "2"])
    assert res.exit_code == 0, err
    ylds = _rows(tmp_path / "s" / "yields.csv.gz")
    assert all(r["Simulated Yield"] != "" for r in ylds)


def test_simulate_bad_input(tiny_workspace, queries, tmp_path, run_cli):
    ws = tiny_workspace
    empty = tmp_path / "empty.h5"
    with FeatureStore.create(empty, 64, {"extractor": "fashion-embed"}):
        pass
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", empty,
                           "-o", tmp_path / "o1"])
    assert res.exit_code == 1 and "no queries" in err and err.count("\n") == 1
    bad = tmp_path / "bad.h5"
    write_features(bad, ["x"], np.ones((1, 5), np.float32), {"extractor": "pixels"})
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", bad,
                           "-o", tmp_path / "o2"])
    assert res.exit_code == 1 and "5-dimensional" in err
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                           "--k", "100000", "-o", tmp_path / "o3"])
    assert res.exit_code == 2 and "larger than the database" in err
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                           "--query-id", "nope", "-o", tmp_path / "o4"])
    assert res.exit_code == 1 and "nope" in err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))
