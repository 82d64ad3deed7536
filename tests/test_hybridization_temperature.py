"""The hybridization temperature (the protocol's end) kept apart from the training simulator's
temperature: ``primo train --train-temperature``, the card's ``hybridization`` field, the capture
evaluation during training, and ``primo simulate`` / ``protocol_for`` reading it (old cards fall
back to their simulator's temperature)."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from primo.features.store import FeatureStore, write_features  # noqa: E402

TINY = ["--hidden", "16", "--rounds", "1", "--steps", "4", "--batch-size", "8",
        "--seed-pairs", "12", "--seed-epochs", "1", "--sim-pairs", "8", "--predictor-epochs", "1",
        "--heldout-rows", "60", "--eval-pairs", "3", "--final-eval-pairs", "3",
        "--threshold", "auto", "--threshold-quantile", "0.1", "--seed", "5",
        "--capture-eval-docs", "30", "--capture-eval-queries", "2", "-j", "1"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(1)
    n, dim, k = 240, 6, 4
    centers = rng.normal(size=(k, dim)) * 3
    lab = rng.integers(0, k, n)
    X = (centers[lab] + rng.normal(size=(n, dim)) * 0.6).astype("float32")
    p = tmp_path_factory.mktemp("hyb") / "F.h5"
    write_features(p, [f"doc{i}" for i in range(n)], X, {"extractor": "synthetic-test"},
                   labels=lab)
    return p


def test_old_cards_hybridize_at_their_simulators_temperature():
    from primo.model_dir import hybridization_temperature

    assert hybridization_temperature({"simulator": {"temperature_c": 40.0}}) == 40.0
    assert hybridization_temperature({}) == 21.0
    assert hybridization_temperature({"simulator": {"temperature_c": 80.0},
                                      "hybridization": {"temperature_c": 21.0}}) == 21.0


@pytest.mark.slow
def test_train_temperature_apart_from_the_hybridization(store, tmp_path, run_cli):
    """The predictor learns yields at --train-temperature; the card, the capture evaluation
    during training and the protocol of primo simulate end the anneal at --anneal-to."""
    from primo.model_dir import load_model
    from primo.simulation.search import protocol_for
    from primo.workflows.experiment import ExperimentConfig, simulator_for

    out = tmp_path / "M"
    res, _, err = run_cli(["train", "-f", store, "-o", out, "--anneal-to", "30",
                           "--train-temperature", "60", *TINY])
    assert res.exit_code == 0, err
    card = json.loads((out / "card.json").read_text())
    assert card["simulator"]["temperature_c"] == 60.0
    assert card["hybridization"]["temperature_c"] == 30.0
    assert card["hybridization"]["training_temperature_c"] == 60.0
    assert card["training"]["hybridization_c"] == 30.0
    assert card["capture_eval"]["protocol"]["anneal_to"] == 30.0
    model = load_model(out)
    assert model.hybridization_c == 30.0
    sim = simulator_for(model)
    assert sim.temperature == 60.0   # the predictor's simulator, as trained
    protocol, sim_end, conc = protocol_for(model, ExperimentConfig(), sim, np.ones(10))
    assert protocol.anneal_to == 30.0 and sim_end.temperature == 30.0
    assert conc.shape == (10,) and np.isclose(conc.sum(), protocol.pool_m)


@pytest.mark.slow
def test_without_train_temperature(store, tmp_path, run_cli):
    """--anneal-to alone: the simulator trains at primo's default for that hybridization
    temperature; with --paper, at the hybridization temperature itself."""
    from primo.training.trainer import default_train_temperature

    for extra, trained_at in (([], default_train_temperature(35.0)), (["--paper"], 35.0)):
        out = tmp_path / f"M{len(extra)}"
        res, _, err = run_cli(["train", "-f", store, "-o", out, "--anneal-to", "35", *extra,
                               *TINY])
        assert res.exit_code == 0, err
        card = json.loads((out / "card.json").read_text())
        assert card["simulator"]["temperature_c"] == trained_at
        assert card["hybridization"] == {**card["hybridization"], "temperature_c": 35.0,
                                         "training_temperature_c": trained_at}
        assert card["capture_eval"]["protocol"]["anneal_to"] == 35.0


@pytest.mark.parametrize("extra, words", [
    (["--anneal-to", "96"], "not in the range"),
    (["--anneal-to", "nan"], "not a finite number"),
    (["--train-temperature", "inf"], "not in the range"),
    (["--train-temperature", "200"], "not in the range"),
])
def test_bad_temperatures_are_usage_errors(extra, words, store, tmp_path, run_cli):
    out = tmp_path / "M"
    res, _, err = run_cli(["train", "-f", store, "-o", out, *extra, *TINY])
    assert res.exit_code == 2, err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_hybridization_setting_is_checked():
    from primo.errors import UsageError
    from primo.training.trainer import TrainSettings

    TrainSettings(hybridization_c=21.0).check()
    for bad in (96.0, float("nan"), -60.0, True):
        with pytest.raises(UsageError, match="hybridization temperature"):
            TrainSettings(hybridization_c=bad).check()


def test_simulate_ends_the_anneal_at_the_cards_hybridization_temperature(tiny_workspace,
                                                                         tmp_path, run_cli):
    """A card trained at 60 °C for a 30 °C hybridization: the anneal ends at 30 °C; the same card
    without the field (written before it) ends at its simulator's 60 °C; --anneal-to wins, colder
    or warmer than the card's (the lab hybridizing elsewhere than the model was trained for)."""
    from primo.model_dir import read_card, write_card

    ws = tiny_workspace
    with FeatureStore.open(ws.features) as st:
        ids, X, meta = np.asarray(st.ids), st.read(0, 1), st.metadata
    q = tmp_path / "q.h5"
    write_features(q, [f"q-{ids[0]}"], X, meta)
    cases = {"new": {"temperature_c": 30.0, "training_temperature_c": 60.0}, "old": None}
    ends = {}
    for name, hyb in cases.items():
        m = tmp_path / name
        shutil.copytree(ws.model, m)
        card = read_card(m)
        card["simulator"]["temperature_c"] = 60.0
        card.pop("hybridization", None)
        if hyb is not None:
            card["hybridization"] = hyb
        write_card(m, card)
        for extra in ([], ["--anneal-to", "25"]) + ((["--anneal-to", "33"],) if hyb else ()):
            out = tmp_path / f"s-{name}-{extra[-1] if extra else 0}"
            res, _, err = run_cli(["simulate", "-m", m, "-f", ws.features, "-Q", q, "-o", out,
                                   "--refine", "4", "--sample", "4", "--neighbors", "4",
                                   "-j", "1", *extra])
            assert res.exit_code == 0, err
            summ = json.loads((out / "summary.json").read_text())
            ends[name, extra[-1] if extra else ""] = summ["capture"]["protocol"]["anneal_to"]
    assert ends == {("new", ""): 30.0, ("new", "25"): 25.0, ("new", "33"): 33.0,
                    ("old", ""): 60.0, ("old", "25"): 25.0}
    # the independent capture: two-strand yields at the hybridization temperature too
    out = tmp_path / "s-independent"
    res, _, err = run_cli(["simulate", "-m", tmp_path / "new", "-f", ws.features, "-Q", q, "-o",
                           out, "--refine", "4", "--sample", "4", "--neighbors", "4", "-j", "1",
                           "--capture", "independent"])
    assert res.exit_code == 0, err
    summ = json.loads((out / "summary.json").read_text())
    assert summ["simulator"]["temperature_c"] == 30.0


@pytest.mark.slow
def test_default_train_temperature_and_the_papers_method(store, tmp_path, run_cli, monkeypatch):
    """Without --train-temperature the simulator trains at primo's default (never below the
    hybridization temperature); --paper trains where it hybridizes, with the global threshold."""
    import primo.training.settings as tr

    assert tr.default_train_temperature(21.0) == (
        21.0 if tr.DEFAULT_TRAIN_TEMPERATURE_C is None else max(tr.DEFAULT_TRAIN_TEMPERATURE_C, 21.0))
    monkeypatch.setattr(tr, "DEFAULT_TRAIN_TEMPERATURE_C", 60.0)
    assert tr.default_train_temperature(21.0) == 60.0 and tr.default_train_temperature(70.0) == 70.0
    quick = [a for a in TINY if a not in ("--threshold", "auto", "--threshold-quantile", "0.1")]
    cards = {}
    for name, extra in (("default", ["--neighbors", "5"]),
                        ("paper", ["--paper", "--threshold", "auto", "--threshold-quantile", "0.1"])):
        out = tmp_path / name
        res, _, err = run_cli(["train", "-f", store, "-o", out, *extra, *quick])
        assert res.exit_code == 0, err
        cards[name] = json.loads((out / "card.json").read_text())
    d, p = cards["default"], cards["paper"]
    assert d["simulator"]["temperature_c"] == 60.0 and d["hybridization"]["temperature_c"] == 21.0
    assert d["objective"]["primo_default"]["train_temperature_c"] == 60.0
    assert p["simulator"]["temperature_c"] == 21.0 and p["hybridization"]["temperature_c"] == 21.0
    assert p["training"]["neighbors"] is None and p["threshold"]["method"] == "quantile"
    assert p["objective"]["primo_default"]["this_model"] is False
    # the library's train() follows the same default when it builds the simulator
    from primo.training.trainer import TrainSettings, train

    s = TrainSettings(hidden=16, rounds=1, steps=2, batch_size=8, seed_pairs=8, seed_epochs=1,
                      sim_pairs=4, predictor_epochs=1, heldout_rows=40, eval_pairs=2,
                      final_eval_pairs=2, neighbors=5, seed=1, capture_eval_docs=0)
    card = train(store, tmp_path / "lib", s).card
    assert card["simulator"]["temperature_c"] == 60.0
    assert card["training"]["train_temperature_c"] == 60.0
    assert card["training"]["hybridization_c"] == 21.0


@pytest.mark.parametrize("extra, words", [
    (["--neighbors", "5"], "neighbors"), (["--objective", "rank"], "objective rank"),
    (["--predictor", "scan"], "predictor scan"), (["--train-temperature", "40"],
                                                  "train_temperature_c"),
])
def test_paper_refuses_options_that_change_the_method(extra, words, store, tmp_path, run_cli):
    out = tmp_path / "M"
    res, _, err = run_cli(["train", "-f", store, "-o", out, "--paper", *extra, *TINY])
    assert res.exit_code == 2, err
    assert "--paper: the paper's method fixes" in err and words in err and err.count("\n") == 1
    assert not out.exists()


def test_the_papers_settings_in_the_library():
    from primo.training.trainer import TrainSettings

    s = TrainSettings.paper(rounds=3)
    assert (s.threshold, s.neighbors, s.objective, s.predictor, s.keep_best) == (
        75.0, None, "paper", "local-match", False)
    assert s.hybridization_c == s.train_temperature_c == 21.0 and s.rounds == 3
    s = TrainSettings.paper(hybridization_c=40.0)
    assert s.train_temperature_c == 40.0
    s.check()
