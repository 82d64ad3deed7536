"""``primo train`` end to end on a tiny store with the real simulator: outputs, card, metrics,
resume after an interruption, seed reproducibility (1 and 2 processes), bad input."""

import csv
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from primo.errors import DataError  # noqa: E402
from primo.features.store import FeatureStore, write_features  # noqa: E402

TINY = ["--hidden", "32", "--rounds", "2", "--steps", "8", "--batch-size", "16",
        "--seed-pairs", "16", "--seed-epochs", "2", "--sim-pairs", "12", "--predictor-epochs", "2",
        "--heldout-rows", "40", "--eval-pairs", "4", "--final-eval-pairs", "6",
        "--threshold", "auto", "--threshold-quantile", "0.1", "--seed", "3"]


def _store(path, n=200, dim=8, k=5, seed=0, extractor="synthetic-test"):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 3
    lab = rng.integers(0, k, n)
    X = (centers[lab] + rng.normal(size=(n, dim)) * 0.6).astype("float32")
    write_features(path, [f"doc{i}" for i in range(n)], X, {"extractor": extractor}, labels=lab)
    return X


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    p = tmp_path_factory.mktemp("train") / "F.h5"
    _store(p)
    return p


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory):
    """One full CLI run (1 process)."""
    from primo.cli import main

    out = tmp_path_factory.mktemp("runs") / "MODEL"
    res = main(["train", "--features", str(store), "-o", str(out), "-j", "1", *TINY])
    assert res.exit_code == 0, res.error
    return out


def _weights(model_dir):
    from primo.model_dir import load_model

    m = load_model(model_dir)
    return m.encoder.get_weights() + m.predictor.get_weights()


def test_model_directory_is_complete(trained, store):
    names = {p.name for p in trained.iterdir()}
    assert {"encoder.keras", "predictor.keras", "card.json", "metrics.csv", "yields.png", "logs",
            "checkpoint"} <= names
    assert any(p.name.startswith("events.out.tfevents") for p in (trained / "logs").iterdir())
    assert (trained / "yields.png").read_bytes()[:4] == b"\x89PNG"


def test_metrics_csv_has_a_row_per_round(trained):
    rows = list(csv.DictReader(open(trained / "metrics.csv")))
    assert [r["round"] for r in rows] == ["0", "1", "2"]
    for r in rows[1:]:
        assert float(r["encoder_loss"]) > 0
        assert int(r["fresh_pairs"]) == 12
        assert 0 <= float(r["fresh_agree"]) <= 1 and float(r["fresh_mae"]) >= 0
        assert float(r["time_simulation_s"]) > 0
    # held-out pairs are evaluated every eval_every (5) rounds and at the last one
    assert rows[1]["sim_pos_similar"] == "" and rows[1]["sim_pos_dissimilar"] == ""
    last = rows[-1]
    assert 0 <= float(last["sim_pos_similar"]) <= 1 and 0 <= float(last["sim_pos_dissimilar"]) <= 1
    assert float(rows[0]["predictor_loss"]) > 0


def test_card_fields(trained, store):
    import keras
    import tensorflow as tf

    from primo import __version__
    from primo.model_dir import file_sha256, load_model

    card = json.loads((trained / "card.json").read_text())
    thr = card["threshold"]
    assert thr["method"] == "quantile" and thr["quantile"] == 0.1 and thr["value"] > 0
    assert card["layout"]["rp"] == "GTCCTCAACAACCTCCTG" and card["layout"]["feature_length"] == 80
    assert card["features"] == {"dim": 8, "extractor": "synthetic-test",
                                "metadata": {"extractor": "synthetic-test", "dim": 8}}
    assert card["training"]["seed"] == 3 and card["training"]["rounds"] == 2
    assert card["training"]["rounds_completed"] == 2
    timing = card["training"]["timing"]
    assert timing["simulation_total_s"] > 0
    # every second of the run is in one phase (the simulator's parts of two are not added again)
    phases = {k: v for k, v in timing.items() if k not in (
        "total_s", "simulation_total_s", "shares", "eval_simulation_s", "capture_simulation_s")}
    assert {"pairs_s", "finish_s", "other_s", "setup_s", "encoder_s"} <= set(phases)
    assert sum(phases.values()) == pytest.approx(timing["total_s"], rel=1e-6)
    assert sum(timing["shares"].values()) == pytest.approx(timing["total_s"], rel=1e-6)
    assert timing["shares"]["simulator_s"] >= timing["simulation_total_s"]
    from primo.training.trainer import default_train_temperature

    assert card["simulator"]["backend"] == "vienna"
    assert card["simulator"]["temperature_c"] == default_train_temperature(21.0)
    assert card["hybridization"]["temperature_c"] == 21.0
    assert card["simulator"]["loop_enthalpies"] == "clipped"
    assert card["data"]["n"] == 200 and card["data"]["fingerprint"].startswith("sha256:")
    assert card["data"]["path"] == str(store)
    v = card["versions"]
    assert v["primo"] == __version__ and v["keras"] == keras.__version__
    assert v["tensorflow"] == tf.__version__ and v["viennarna"]
    assert card["files"]["encoder"]["sha256"] == file_sha256(trained / "encoder.keras")
    for key in ("sim_pos_similar", "sim_pos_dissimilar", "eval_agree", "fresh_agree_last"):
        assert key in card["metrics"]
    assert card["provenance"]["command"].startswith("primo train")
    m = load_model(trained)
    with FeatureStore.open(store) as fs:
        seqs = m.encode_features(fs.read(0, 10))
    assert len(seqs) == 10 and all(len(s) == 80 and set(s) <= set("ACGT") for s in seqs)


def _tiny_settings():
    from primo.training.trainer import TrainSettings

    return TrainSettings(hidden=32, rounds=2, steps=8, batch_size=16, seed_pairs=16, seed_epochs=2,
                         sim_pairs=12, predictor_epochs=2, heldout_rows=40, eval_pairs=4,
                         final_eval_pairs=6, threshold=None, threshold_quantile=0.1, seed=3,
                         neighbors=None)   # as the CLI's --threshold auto gives it


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_model(trained, store, tmp_path, run_cli):
    """Stop after round 1 (as Ctrl-C would), resume: same model as the uninterrupted run."""
    from primo.model_dir import load_model
    from primo.training.trainer import train

    out = tmp_path / "MODEL"

    def stop_after_first(row):
        if row["round"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(store, out, _tiny_settings(), on_round=stop_after_first)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["round"] == 1 and not (out / "card.json").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(DataError, match="`resume`"):
        load_model(out)
    res, _, err = run_cli(["train", "--features", store, "-o", out, "--resume", "-j", "1"])
    assert res.exit_code == 0, err
    assert res.value.rounds_done == 2
    assert [r["round"] for r in csv.DictReader(open(out / "metrics.csv"))] == ["0", "1", "2"]
    for a, b in zip(_weights(out), _weights(trained)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_resume_can_extend_a_finished_run(trained, store, tmp_path):
    import shutil

    from primo.training.trainer import TrainSettings, train

    out = tmp_path / "MODEL"
    shutil.copytree(trained, out)
    result = train(store, out, TrainSettings(rounds=3), resume=True)
    assert result.rounds_done == 3 and result.card["training"]["rounds"] == 3
    assert [r["round"] for r in result.metrics] == [0, 1, 2, 3]


@pytest.mark.slow
def test_same_seed_same_model_with_two_processes(trained, store, tmp_path, run_cli):
    out = tmp_path / "MODEL"
    res, _, err = run_cli(["train", "--features", store, "-o", out, "-j", "2", *TINY])
    assert res.exit_code == 0, err
    for a, b in zip(_weights(out), _weights(trained)):
        np.testing.assert_array_equal(a, b)
    m1 = list(csv.DictReader(open(out / "metrics.csv")))
    m2 = list(csv.DictReader(open(trained / "metrics.csv")))
    for r1, r2 in zip(m1, m2):
        assert r1["encoder_loss"] == r2["encoder_loss"] and r1["fresh_mae"] == r2["fresh_mae"]


# ---------------------------------------------------------------------------------- bad input
def test_empty_feature_store(tmp_path, run_cli):
    p = tmp_path / "empty.h5"
    FeatureStore.create(p, 8, {"extractor": "t"}).close()
    res, _, err = run_cli(["train", "--features", p, "-o", tmp_path / "M", *TINY])
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    assert "empty.h5" in err and "no rows" in err and "primo extract" in err
    assert len(err.strip().splitlines()) == 1


def test_threshold_without_similar_pairs_suggests_auto(store, tmp_path, run_cli):
    args = [a for a in TINY]
    args[args.index("auto")] = "0.001"
    res, _, err = run_cli(["train", "--features", store, "-o", tmp_path / "M", *args])
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    assert "leaves no similar pairs" in err and "--threshold auto" in err
    assert "F.h5" in err
    assert "closest pair at distance" in err
    assert len(err.strip().splitlines()) == 1


def test_existing_output_needs_resume_or_overwrite(trained, store, run_cli):
    res, _, err = run_cli(["train", "--features", store, "-o", trained, *TINY])
    assert res.exit_code == 2 and "holds an earlier `primo train` run" in err and "resume" in err
    assert "overwrite" in err and len(err.strip().splitlines()) == 1


def test_resume_without_checkpoint(store, tmp_path, run_cli):
    res, _, err = run_cli(["train", "--features", store, "-o", tmp_path / "M", "--resume"])
    assert res.exit_code == 2 and "nothing to resume" in err


def test_resume_with_other_features_is_refused(trained, tmp_path, run_cli):
    import shutil

    other = tmp_path / "G.h5"
    _store(other, seed=5)
    out = tmp_path / "M"
    shutil.copytree(trained, out)
    res, _, err = run_cli(["train", "--features", other, "-o", out, "--resume", "--rounds", "3"])
    assert res.exit_code == 1 and "differ from those the interrupted run" in err and "G.h5" in err


def test_bad_threshold_value(store, tmp_path, run_cli):
    res, _, err = run_cli(["train", "--features", store, "-o", tmp_path / "M", "--threshold", "abc"])
    assert res.exit_code == 2 and "neither a distance nor 'auto'" in err
    res, _, err = run_cli(["train", "--features", store, "-o", tmp_path / "M", "--steps", "0"])
    assert res.exit_code == 2 and "--steps" in err and "not in the range 1<=x" in err
    # the library says the same in its own terms
    from primo.errors import UsageError
    from primo.training.trainer import TrainSettings

    with pytest.raises(UsageError, match="steps must be a whole number from 1"):
        TrainSettings(steps=0).check()


@pytest.mark.slow
def test_temperature_goes_to_the_simulator_and_the_card(store, tmp_path, run_cli):
    """--anneal-to (the hybridization temperature), --train-temperature and --loop-enthalpies train
    against the simulator so set; the card records them and primo simulate reuses them."""
    from primo.model_dir import load_model
    from primo.workflows.experiment import simulator_for

    args = [a for a in TINY]
    args[args.index("--rounds") + 1] = "1"
    out = tmp_path / "M40"
    res, _, err = run_cli(["train", "--features", store, "-o", out, "-j", "1",
                           "--anneal-to", "40", "--train-temperature", "40",
                           "--loop-enthalpies", "shipped", *args])
    assert res.exit_code == 0, err
    card = json.loads((out / "card.json").read_text())
    assert card["simulator"]["temperature_c"] == 40.0
    assert load_model(out).hybridization_c == 40.0
    assert card["simulator"]["loop_enthalpies"] == "shipped"
    assert simulator_for(load_model(out)).temperature == 40.0
    assert simulator_for(load_model(out)).loop_enthalpies == "shipped"
    res, _, err = run_cli(["train", "--features", store, "-o", tmp_path / "M", "--anneal-to",
                           "500", *TINY])
    assert res.exit_code == 2 and "--anneal-to" in err and "500" in err
    assert not (tmp_path / "M").exists()


def test_missing_store(tmp_path, run_cli):
    res, _, err = run_cli(["train", "--features", tmp_path / "nope.h5", "-o", tmp_path / "M"])
    assert res.exit_code == 2 and "nope.h5" in err and "does not exist" in err


@pytest.mark.slow
def test_dask_scheduler_gives_the_same_model(trained, store, tmp_path, run_cli):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "MODEL"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=":0") as cluster:
        res, _, err = run_cli(["train", "--features", store, "-o", out,
                               "--scheduler", cluster.scheduler_address, *TINY])
    assert res.exit_code == 0, err
    assert json.loads((out / "card.json").read_text())["training"]["mapper"].startswith("dask")
    for a, b in zip(_weights(out), _weights(trained)):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_from_another_primo_version(trained, store, tmp_path, run_cli):
    import shutil

    out = tmp_path / "M"
    shutil.copytree(trained, out)
    state_path = out / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    state["primo_version"] = "7.0.0"
    state_path.write_text(json.dumps(state))
    res, _, err = run_cli(["train", "--features", store, "-o", out, "--resume", "--rounds", "3"])
    assert res.exit_code == 1 and "primo 7.0.0" in err and "checkpoint" in err
