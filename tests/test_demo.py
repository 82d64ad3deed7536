import json

import pytest

from primo.workflows.demo import DemoSettings


@pytest.mark.slow
def test_quick_demo_runs_every_step(tmp_path, run_cli):
    out = tmp_path / "demo"
    res, _, err = run_cli(["demo", "-o", out, "--quick", "-j", "1"])
    assert res.exit_code == 0, err
    for p in ["features.h5", "queries.h5", "model/card.json", "model/encoder.keras",
              "pool/database_seqs.csv.gz", "pool/twist_order.csv", "probes.csv",
              "probes_idt_order.csv", "simulation/summary.json", "benchmark/benchmarks.csv",
              "benchmark/benchmarks.png", "report.md", "report.html", "demo.json"]:
        assert (out / p).exists(), p
    rep = json.loads((out / "demo.json").read_text())
    queries = rep["steps"]["images"]["queries"]
    assert len(queries) == 2
    for q in queries:
        stats = json.loads((out / "analysis" / q / "stats.json").read_text())
        assert (out / "analysis" / q / "recall.png").exists()
        assert stats["reads"] > 0
    md = (out / "report.md").read_text()
    assert "| primo |" in md and "![benchmark](benchmark/benchmarks.png)" in md
    # the simulation sampled unrelated documents with the simulator, and the report says so
    assert all(q["sampled"] > 0 for q in rep["steps"]["simulate"]["queries"])
    # the default capture model ran, its probe sized to the database (--probe-nm auto: room for
    # 2 x k = 200 of the 300 documents: 150 nM x 200 / 300), and the report says so
    cap = rep["steps"]["simulate"]["capture"]
    assert cap["model"] == "kinetic"
    assert cap["probe"]["rule"] == "auto" and cap["probe"]["room_documents"] == 200.0
    assert cap["protocol"]["probe_nm"] == 100.0
    assert cap["protocol"]["anneal_from"] == 95.0 and cap["protocol"]["anneal_to"] == 21.0
    # the report's first table: primo, the best peer and their ratio at 50 % recall
    head = rep["headline"]["0.5"]
    algos = rep["steps"]["benchmark"]["summary"]["algorithms"]
    peers = {a: v["proportion_at_recall"]["0.5"] for a, v in algos.items()
             if a not in ("primo", "chance", "oracle") and v["proportion_at_recall"].get("0.5")}
    assert head["best_peer"] == min(peers, key=peers.get)
    assert head["best_peer_value"] == peers[head["best_peer"]]
    assert head["primo"] == algos["primo"]["proportion_at_recall"]["0.5"]
    if head["primo"] is None:
        # --quick's model (one round of 30 steps, 300 documents) may not reach 50 % mean recall:
        # the headline then says so instead of dividing
        assert algos["primo"]["best_mean_recall"] < 0.5 and head["ratio"] is None
        shown = "n/a"
    else:
        assert head["ratio"] == pytest.approx(head["primo"] / head["best_peer_value"], abs=1e-3)
        shown = f"{head['ratio']:.2f}×"
    first_table = [line for line in md.splitlines() if line.startswith("|")][:5]
    assert first_table[0] == "| | 50 % recall | 90 % recall |"
    assert first_table[2].startswith("| primo (simulated reads) |")
    assert first_table[3].startswith(f"| best in-silico peer | {head['best_peer']}: ")
    assert first_table[4].startswith(f"| primo / best peer | {shown} |")
    # the model learnt its yields at primo's default training temperature, for a 21 °C capture
    from primo.training.trainer import default_train_temperature

    t = default_train_temperature(21.0)
    assert rep["steps"]["train"]["train_temperature_c"] == t
    assert rep["steps"]["train"]["hybridization_c"] == 21.0
    assert f"at the training temperature ({t:g} °C; the capture below anneals to 21 °C)" in md
    # the pool's input library, and each query ranked by enrichment over it
    assert (out / "simulation" / "input_counts.csv.gz").exists()
    for q in queries:
        assert (out / "analysis" / q / "enrichment" / "thresholds.csv").exists()
        assert "enrichment" in rep["steps"]["analyze"]["queries"][q]
    assert "50% at, ranked by enrichment" in md
    assert "<table" in (out / "report.html").read_text()
    # the results page: each query with its picture and the pictures it retrieved (Fig. 3C), the
    # benchmark figure; in a real browser every image loads and nothing is logged as an error
    page = (out / "report.html").read_text()
    assert "Fig. 3C" in page and "no-pictures" not in page and "benchmark/benchmarks.png" in page
    from _browser import browser_available, check_page

    if browser_available():
        shown = check_page(out / "report.html", queries)
        assert sum("/thumbs/" in src for src, _ in shown["images"]) >= len(queries) * (1 + 10)
    # an earlier demo is replaced only with --overwrite (not re-run here: it takes a while)
    res, _, err = run_cli(["demo", "-o", out, "--quick", "-j", "1"])
    assert res.exit_code == 2 and "pass --overwrite" in err
    from primo.io import check_output_dir

    assert check_output_dir(out, "demo", overwrite=True)["command"] == "demo"
    assert not [p for p in tmp_path.iterdir() if p.name != "demo"]  # no temporary directory left


def test_demo_refuses_a_foreign_directory(tmp_path, run_cli):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    res, _, err = run_cli(["demo", "-o", out, "--quick"])
    assert res.exit_code == 2 and "primo did not write (precious.txt)" in err
    assert (out / "precious.txt").read_text() == "keep me"


# (queries, rounds, encoder steps per round, seed pairs, refined and sampled documents per query)
SETTINGS = (5, 3, 300, 600, 150, 100)


def test_demo_settings():
    """The demo's settings (not its time: that is measured in README.md). Its capture sizes the
    probe to the database; the paper's 0.5 nM would leave room for ~6 of its 1,900 documents."""
    s = DemoSettings()
    assert s.probe_nm == "auto" and s.n_database == 1900
    assert (s.n_queries, s.rounds, s.steps, s.seed_pairs, s.refine, s.sample) == SETTINGS
    q = DemoSettings.quick()
    assert q.probe_nm == "auto" and q.n_database == 300 and q.rounds == 1


def test_headline_ratio_and_unreached_curves():
    from primo.workflows.demo import _headline_lines, headline

    summary = {"algorithms": {
        "primo": {"proportion_at_recall": {"0.5": 0.04, "0.9": None}},
        "mrpt": {"proportion_at_recall": {"0.5": 0.032, "0.9": 0.2}},
        "lsh": {"proportion_at_recall": {"0.5": 0.05, "0.9": 0.1}},
        "oracle": {"proportion_at_recall": {"0.5": 0.0005, "0.9": 0.0009}}}}
    h = headline(summary)
    assert h["0.5"] == {"primo": 0.04, "best_peer": "mrpt", "best_peer_value": 0.032,
                        "ratio": 1.25}
    # the best peer is chosen at each recall; primo's curve that never reaches 90 % gives no ratio
    assert h["0.9"]["best_peer"] == "lsh" and h["0.9"]["ratio"] is None
    lines = _headline_lines({"headline": h, "steps": {"images": {"queries": ["a", "b"]},
                                                      "benchmark": {}}})
    assert "| primo / best peer | 1.25× | n/a |" in lines
    assert "| best in-silico peer | mrpt: 3.20% | lsh: 10.00% |" in lines
