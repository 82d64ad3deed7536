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
                                "--sample", "0", "--no-neighbors", "--neighbors", "10", "-j", "1",
                                "--seed", "4"])
    assert res.exit_code == 0, err
    counts = _rows(out / "counts.csv.gz")
    with FeatureStore.open(ws.features) as st:
        assert [r["ImageID"] for r in counts] == list(st.ids)
    assert sum(int(r["Count"]) for r in counts) == 10 * len(counts)  # default depth
    ylds = _rows(out / "yields.csv.gz")
    assert sum(1 for r in ylds if r["Simulated Yield"] != "") == 15
    assert all(r["Imputed Yield"] == "" for r in ylds)
    assert all(0 <= float(r["Predicted Yield"]) <= 1 for r in ylds)
    head = (out / "thresholds.csv").read_text().splitlines()[0]
    assert head == "Threshold,Number Retrieved,10-Nearest-Neighbor Recall"
    assert (out / "recall.png").stat().st_size > 1000
    summ = json.loads((out / "summary.json").read_text())
    q = summ["queries"][0]
    assert q["refined"] == 15 and summ["config"]["refine"] == 15
    assert "simulate" in summ["provenance"]["command"]
    # the query itself is in the database: its own document is its nearest neighbour (distance 0),
    # it is refined, and its probe is its perfect complement (simulated yield ~1)
    own = q["query_id"].removeprefix("q-")
    dist = {r["ImageID"]: float(r["Euclidean Distance"]) for r in _rows(out / "distances.csv.gz")}
    assert dist[own] == 0 and min(dist.values()) == 0
    sim = {r["ImageID"]: float(r["Simulated Yield"]) for r in ylds if r["Simulated Yield"] != ""}
    assert sim[own] > 0.99
    # the summary counts what yields.csv.gz holds
    assert q["simulated_above_0.5"] == sum(y >= 0.5 for y in sim.values()) >= 1


@pytest.mark.slow
def test_simulate_is_deterministic_and_several_queries(tiny_workspace, queries, tmp_path, run_cli):
    ws = tiny_workspace
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                               "-o", out, "--refine", "5", "--neighbors", "10", "-j", "1",
                               "--seed", "9"])
        assert res.exit_code == 0, err
        outs.append(out)
    subdirs = sorted(p.name for p in outs[0].iterdir() if p.is_dir() and p.name != "report_files")
    assert len(subdirs) == 3
    for s in subdirs:
        assert _rows(outs[0] / s / "counts.csv.gz") == _rows(outs[1] / s / "counts.csv.gz")
    assert (outs[0] / "recall.png").exists()
    # the results page: one section per query, the pictures the feature store recorded
    page = (outs[0] / "report.html").read_text()
    assert page.count("<section class='query'") == 3 and "no-pictures" not in page
    from _browser import browser_available, check_page

    if browser_available():
        check_page(outs[0] / "report.html", [_qid(queries, i) for i in range(3)])


@pytest.mark.slow
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
                           "--refine", "-1", "--neighbors", "5", "-j", "2"])
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
                           "--neighbors", "100000", "-o", tmp_path / "o3"])
    assert res.exit_code == 2 and "larger than the database" in err
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                           "--query-id", "nope", "-o", tmp_path / "o4"])
    assert res.exit_code == 1 and "nope" in err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 5))


@pytest.mark.slow
def test_simulate_samples_the_rest_and_imputes_it(tiny_workspace, queries, tmp_path, run_cli):
    """Outside the refined set and the neighbours, a stratified random sample is simulated and its
    yields stand in for every other document (the predictor misses binders among unrelated
    documents; leaving them at predicted values would flatter the recall curve)."""
    from primo.evaluation.recall import nearest_neighbors

    ws = tiny_workspace
    out = tmp_path / "s"
    qid = _qid(queries, 1)
    res, stdout, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                                "--query-id", qid, "-o", out, "--refine", "10", "--sample", "30",
                                "--neighbors", "10", "-j", "1", "--seed", "2"])
    assert res.exit_code == 0, err
    ylds = _rows(out / "yields.csv.gz")
    dist = [float(r["Euclidean Distance"]) for r in _rows(out / "distances.csv.gz")]
    pred = np.array([float(r["Predicted Yield"]) for r in ylds])
    sim = np.array([float(r["Simulated Yield"]) if r["Simulated Yield"] else np.nan for r in ylds])
    imp = np.array([float(r["Imputed Yield"]) if r["Imputed Yield"] else np.nan for r in ylds])
    n = len(ylds)
    top = set(np.lexsort((np.arange(n), -pred))[:10].tolist())
    nn = set(nearest_neighbors(dist, 10).tolist())
    simulated = set(np.flatnonzero(~np.isnan(sim)).tolist())
    assert top | nn <= simulated
    sampled = simulated - top - nn
    assert 25 <= len(sampled) <= 30  # one stratum quota floor each
    # every document has exactly one of simulated / imputed, apart from none
    assert np.all(np.isnan(sim) != np.isnan(imp))
    # an imputed yield is the simulated yield of a sampled document
    pool = {round(float(sim[i]), 5) for i in sampled}
    assert {round(float(v), 5) for v in imp[~np.isnan(imp)]} <= pool
    q = json.loads((out / "summary.json").read_text())["queries"][0]
    assert q["sampled"] == len(sampled) and q["imputed"] == n - len(simulated)
    assert q["neighbours_simulated"] == 10
    rate = float(np.mean(sim[sorted(sampled)] >= 0.5))
    assert q["sampled_above_0.5"] == pytest.approx(rate)
    assert q["estimated_binders_outside_refined"] == round(rate * (n - len(top | nn)))
    assert "documents sampled outside the refined set" in stdout
    # counts follow the yields used: simulated, else imputed
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                           "--query-id", qid, "-o", tmp_path / "s2", "--refine", "10",
                           "--sample", "30", "--neighbors", "10", "-j", "1", "--seed", "2"])
    assert res.exit_code == 0, err
    assert _rows(out / "yields.csv.gz") == _rows(tmp_path / "s2" / "yields.csv.gz")


@pytest.mark.slow
def test_input_library_and_enrichment_ranking(tiny_workspace, queries, tmp_path, run_cli):
    """``--input-library`` sequences the pool without hybridization once per run; every query is
    also ranked by enrichment over it, and ``primo analyze --input-counts`` reproduces that
    ranking from the counts files."""
    ws = tiny_workspace
    out = tmp_path / "s"
    res, stdout, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                                "-o", out, "--refine", "5", "--sample", "10", "--neighbors", "10",
                                "--input-library", "20", "-j", "1", "--seed", "3"])
    assert res.exit_code == 0, err
    inp = _rows(out / "input_counts.csv.gz")
    with FeatureStore.open(ws.features) as st:
        ids = list(st.ids)
    assert [r["ImageID"] for r in inp] == ids
    assert sum(int(r["Count"]) for r in inp) == 20 * len(ids)
    assert "ranked by enrichment over the input library" in stdout
    summ = json.loads((out / "summary.json").read_text())
    assert summ["config"]["input_reads_per_document"] == 20
    qdirs = sorted(p for p in out.iterdir() if p.is_dir() and p.name != "report_files")
    assert len(qdirs) == 3
    for q, qs in zip(qdirs, sorted(summ["queries"], key=lambda x: x["query_id"])):
        enr = _rows(q / "enrichment.csv.gz")
        counts = _rows(q / "counts.csv.gz")
        assert [r["ImageID"] for r in enr] == ids
        # the layout primo analyze writes
        assert list(enr[0]) == ["ImageID", "Count", "Input Count", "Enrichment"]
        assert [e["Count"] for e in enr] == [c["Count"] for c in counts]
        # not sequenced in the selection: enrichment 0
        assert all(float(e["Enrichment"]) == 0 for e, c in zip(enr, counts) if c["Count"] == "0")
        assert (q / "enrichment" / "thresholds.csv").exists()
        assert qs["enrichment"]["proportion_at_recall"]["1"] is not None
    # primo analyze ranks the same way from the files
    q = qdirs[0]
    an = tmp_path / "an"
    res, stdout, err = run_cli(["analyze", "--counts", q / "counts.csv.gz", "--input-counts",
                                out / "input_counts.csv.gz", "--distances",
                                q / "distances.csv.gz", "--neighbors", "10", "-o", an])
    assert res.exit_code == 0, err
    assert "ranked by enrichment" in stdout
    a = np.loadtxt(an / "thresholds.csv", delimiter=",", skiprows=1)
    b = np.loadtxt(q / "enrichment" / "thresholds.csv", delimiter=",", skiprows=1)
    assert a.shape == b.shape and np.allclose(a, b, rtol=1e-6)
    e = _rows(an / "enrichment.csv.gz")
    assert list(e[0]) == ["ImageID", "Count", "Input Count", "Enrichment"]
    # an input library of another pool is refused, naming the file
    bad = tmp_path / "bad.csv"
    bad.write_text("ImageID,Count\n" + "".join(f"{i},3\n" for i in ids[:-1]))
    res, _, err = run_cli(["analyze", "--counts", q / "counts.csv.gz", "--input-counts", bad,
                           "-o", tmp_path / "an2"])
    assert res.exit_code == 1 and "bad.csv" in err and "does not cover" in err
    assert not (tmp_path / "an2").exists()
    empty = tmp_path / "empty.csv"
    empty.write_text("ImageID,Count\n" + "".join(f"{i},0\n" for i in ids))
    res, _, err = run_cli(["analyze", "--counts", q / "counts.csv.gz", "--input-counts", empty,
                           "-o", tmp_path / "an3"])
    assert res.exit_code == 1 and "no reads" in err


@pytest.mark.parametrize("capture", ["anneal", "equilibrium", "independent"])
def test_capture_models_and_protocol_in_the_summary(capture, tiny_workspace, queries, tmp_path,
                                                    run_cli):
    ws = tiny_workspace
    out = tmp_path / "s"
    args = ["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries, "--query-id",
            _qid(queries, 0), "-o", out, "--refine", "10", "--sample", "20", "--neighbors", "10", "-j",
            "1", "--capture", capture]
    if capture == "independent":
        # each document meets the probe alone: protocol settings would be ignored, so refused
        for extra, option in ((["--pool-nm", "20"], "--pool-nm"),
                              (["--anneal-to", "30"], "--anneal-to")):
            res, _, err = run_cli(args + extra)
            assert res.exit_code == 2 and option in err and "no protocol" in err, err
            assert err.count("\n") == 1 and not out.exists()
    else:
        args += ["--probe-nm", "0.05", "--pool-nm", "20", "--decoys", "50"]
    res, stdout, err = run_cli(args)
    assert res.exit_code == 0, err
    summ = json.loads((out / "summary.json").read_text())
    assert summ["capture"]["model"] == capture
    q = summ["queries"][0]
    if capture == "independent":
        assert summ["capture"]["protocol"] is None and "capture" not in q
        assert not (out / "capture.csv.gz").exists()
        return
    proto = summ["capture"]["protocol"]
    assert proto["probe_nm"] == 0.05 and proto["pool_nm"] == 20 and proto["decoys"] == 50
    assert proto["anneal_to"] == 21.0  # the model card's temperature
    cap = q["capture"]
    assert cap["capture_model"] == capture
    shares = (cap["probe_bound_simulated"] + cap["probe_bound_imputed"]
              + cap["probe_bound_decoys"] + cap["probe_free"] + cap["probe_homodimer"])
    assert shares == pytest.approx(1.0, abs=1e-6)
    assert cap["decoys_simulated"] == 50
    rows = _rows(out / "capture.csv.gz")
    frac = np.array([float(r["Captured Fraction"]) for r in rows])
    assert np.all((frac >= 0) & (frac <= 1))
    src = {r["Energies"] for r in rows}
    assert src <= {"simulated", "imputed"} and "simulated" in src
    assert f"capture ({capture})" in stdout


@pytest.mark.parametrize("extra, option", [
    (["--probe-nm", "0"], "--probe-nm"), (["--pool-nm", "-3"], "--pool-nm"),
    (["--anneal-from", "30", "--anneal-to", "40"], "--anneal-to"),
    (["--decoys", "-1"], "--decoys"), (["--minutes-per-degree", "0"], "--minutes-per-degree"),
    (["--anneal-from", "15"], "outside the anneal"),
])
def test_simulate_refuses_a_bad_protocol(extra, option, tiny_workspace, queries, tmp_path,
                                         run_cli):
    ws = tiny_workspace
    out = tmp_path / "o"
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries,
                           "-o", out, "--refine", "5"] + extra)
    assert res.exit_code == 2, err
    assert option in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_old_card_warns_that_its_loop_enthalpies_break_the_anneal(tiny_workspace, queries,
                                                                   tmp_path, run_cli):
    """A card written before --loop-enthalpies loads as 'shipped': the anneal says so (one
    warning line), and --loop-enthalpies clipped overrides it (recorded in the summary)."""
    import shutil

    from primo.model_dir import read_card, write_card

    ws = tiny_workspace
    old = tmp_path / "old_model"
    shutil.copytree(ws.model, old)
    card = read_card(old)
    assert card["simulator"]["loop_enthalpies"] == "clipped"   # trained with today's default
    del card["simulator"]["loop_enthalpies"]
    write_card(old, card)
    base = ["simulate", "-m", old, "-f", ws.features, "-Q", queries, "--query-id",
            _qid(queries, 0), "--refine", "5", "--sample", "5", "--neighbors", "5", "-j", "1"]
    res, _, err = run_cli(base + ["-o", tmp_path / "a"])
    assert res.exit_code == 0, err
    assert "warning: this model's simulator uses ViennaRNA's DNA loop enthalpies" in err
    assert "loop_enthalpies 'clipped'" in err
    assert sum("loop enthalpies" in line for line in err.splitlines()) == 1
    summ = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summ["simulator"]["loop_enthalpies"] == "shipped"
    res, _, err = run_cli(base + ["-o", tmp_path / "b", "--loop-enthalpies", "clipped"])
    assert res.exit_code == 0, err
    assert "loop enthalpies" not in err
    summ = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summ["simulator"]["loop_enthalpies"] == "clipped"
