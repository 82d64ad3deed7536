"""``primo train --predictor scan`` and ``--objective rank|hamming-triplet`` (issue 16): tiny runs
with the real simulator, gradients reaching the encoder, the model card, bad input."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from primo.errors import DataError, UsageError  # noqa: E402
from primo.features.store import write_features  # noqa: E402

TINY = ["--hidden", "16", "--rounds", "1", "--steps", "3", "--batch-size", "8",
        "--seed-pairs", "8", "--seed-epochs", "1", "--sim-pairs", "6", "--predictor-epochs", "1",
        "--heldout-rows", "40", "--eval-pairs", "3", "--final-eval-pairs", "3",
        "--rank-candidates", "4", "--threshold", "auto", "--threshold-quantile", "0.1",
        "--seed", "5"]


def _store(path, n=120, dim=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 3
    lab = rng.integers(0, k, n)
    X = (centers[lab] + rng.normal(size=(n, dim)) * 0.6).astype("float32")
    write_features(path, [f"doc{i}" for i in range(n)], X, {"extractor": "synthetic-test"},
                   labels=lab)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    p = tmp_path_factory.mktemp("obj") / "F.h5"
    _store(p)
    return p


@pytest.mark.slow
@pytest.mark.parametrize("predictor,objective", [("scan", "rank"),
                                                 ("local-match", "hamming-triplet")])
def test_train_runs_and_records_predictor_and_objective(store, tmp_path, run_cli, predictor,
                                                        objective):
    from primo.model_dir import load_model

    out = tmp_path / "MODEL"
    res, _, err = run_cli(["train", "-f", str(store), "-o", str(out), "-j", "1", *TINY,
                           "--predictor", predictor, "--objective", objective])
    assert res.exit_code == 0, err
    card = json.loads((out / "card.json").read_text())
    assert card["predictor"]["kind"] == predictor
    assert card["training"]["predictor"] == predictor
    assert card["objective"]["name"] == objective
    assert card["objective"]["margin"] == {"paper": None, "rank": 2.0,
                                           "hamming-triplet": 0.1}[objective]
    from primo.training.trainer import DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR

    named = card["objective"]["primo_default"]  # every card names primo's default
    assert (named["objective"], named["predictor"]) == (DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR)
    assert named["this_model"] == ((objective, predictor) == (DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR))
    m = load_model(out)
    y = m.predict_yields(np.eye(4, dtype="float32")[np.zeros((2, 80), int)],
                         np.eye(4, dtype="float32")[np.zeros((2, 80), int)])
    assert y.shape == (2,) and np.isfinite(y).all()


@pytest.mark.parametrize("predictor,objective", [("local-match", "paper"), ("scan", "paper"),
                                                 ("local-match", "rank"), ("scan", "rank"),
                                                 ("local-match", "hamming-triplet")])
def test_gradients_reach_the_encoder(predictor, objective):
    """One encoder step of each objective against each predictor moves every encoder weight
    matrix, by finite amounts; the predictor is left alone."""
    import tensorflow as tf

    from primo.training.trainer import TrainSettings, Models, _triplets

    s = TrainSettings(hidden=8, predictor=predictor, objective=objective, seed=0,
                      encoder_optimizer="sgd", encoder_lr=0.5)
    rng = np.random.default_rng(0)
    m = Models(s, 6, None, 1.0, 0)
    xa = rng.normal(size=(6, 6)).astype("float32")
    xb = np.concatenate([xa[:3] + 0.01, rng.normal(size=(3, 6)) * 5]).astype("float32")
    y = np.array([1, 1, 1, 0, 0, 0], "float32")
    before = [w.copy() for w in m.encoder.get_weights()]
    pred_before = [w.copy() for w in m.predictor.get_weights()]
    if objective == "paper":
        out = m.enc_step(tf.constant(xa), tf.constant(xb), tf.constant(y))
    else:
        anchors, neg, w = _triplets(xa, xb, y, 1.0, 3, rng)
        assert anchors.ravel().tolist() == [0, 1, 2] and (w == 1).all()
        out = m.triplet_step(tf.constant(xa), tf.constant(xb), tf.constant(anchors),
                             tf.constant(neg), tf.constant(w))
    assert all(np.isfinite(float(v)) for v in out)
    after = m.encoder.get_weights()
    kernels = [(b, a) for b, a in zip(before, after) if b.ndim == 2]
    assert kernels and all(np.isfinite(a).all() and not np.array_equal(a, b) for b, a in kernels)
    assert all(np.array_equal(a, b) for a, b in zip(pred_before, m.predictor.get_weights()))


def test_scan_predictor_phase_fits_the_energy_head():
    """With energies the scan's energy head is fit too (its loss falls on a fixed batch)."""
    from primo.training.trainer import TrainSettings, Models

    s = TrainSettings(hidden=8, predictor="scan", seed=0, predictor_lr=0.05)
    m = Models(s, 6, None, 1.0, 0)
    rng = np.random.default_rng(1)
    t = rng.integers(0, 4, (16, 80)).astype(np.uint8)
    q = t.copy()
    q[8:] = rng.integers(0, 4, (8, 80))
    y = np.r_[np.ones(8), np.zeros(8)].astype("float32")
    e = np.r_[np.full(8, -100.0), np.full(8, np.inf)]  # no duplex (inf) -> 0 kcal/mol
    first = m.fit_predictor(t, q, y, 1, 16, rng, energies=e)
    last = m.fit_predictor(t, q, y, 15, 16, rng, energies=e)
    assert last < first


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args,message", [
    (["--predictor", "transformer"], "'transformer' is not one of 'local-match', 'scan'"),
    (["--objective", "contrastive"], "'contrastive' is not one of 'paper', 'rank'"),
    (["--objective", "rank", "--margin", "0"], "--margin"),
    (["--objective", "hamming-triplet", "--margin", "-1"], "--margin"),
    (["--margin", "nan"], "'nan' is not a finite number"),
    (["--encoder-optimizer", "adamx"], "'adamx' is not one of"),
])
def test_bad_predictor_objective_or_margin(store, tmp_path, run_cli, args, message):
    out = tmp_path / "M"
    res, _, err = run_cli(["train", "-f", str(store), "-o", str(out), *TINY, *args])
    assert res.exit_code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_rank_needs_three_documents_with_a_similar_neighbour(tmp_path, run_cli):
    """One close pair among far-apart documents: 2 anchors, fewer than rank needs."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(60, 6)) * 100).astype("float32")
    X[1] = X[0] + 0.1
    p = tmp_path / "few.h5"
    write_features(p, [f"d{i}" for i in range(60)], X, {"extractor": "t"})
    out = tmp_path / "M"
    args = [a for a in TINY]
    args[args.index("auto")] = "1.0"
    args += ["--heldout-rows", "0", "--objective", "rank"]
    res, _, err = run_cli(["train", "-f", str(p), "-o", str(out), *args])
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    assert err.startswith("primo train: error: --objective: ")
    assert "the rank objective needs at least 3 documents that have a similar neighbor" in err
    assert "gives 2" in err and "few.h5" in err and len(err.strip().splitlines()) == 1
    assert not (out / "card.json").exists() and not (out / "checkpoint").exists()
    assert not list(out.glob("*.keras"))


def test_card_naming_an_unknown_predictor(store, tmp_path, run_cli):
    from primo.model_dir import card_checksum, load_model

    out = tmp_path / "MODEL"
    i = TINY.index("--threshold")   # no similarity flag either: primo's default throughout
    res, _, err = run_cli(["train", "-f", str(store), "-o", str(out), "-j", "1",
                           *TINY[:i], *TINY[i + 4:]])
    assert res.exit_code == 0, err
    card = json.loads((out / "card.json").read_text())
    from primo.training.trainer import DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR

    # no --objective / --predictor / similarity flag: the default, and the card says so
    assert card["threshold"]["method"] == "neighbors"
    assert card["predictor"]["kind"] == DEFAULT_PREDICTOR
    assert card["objective"]["name"] == DEFAULT_OBJECTIVE
    assert card["objective"]["primo_default"]["this_model"] is True
    card["predictor"]["kind"] = "transformer"
    card["checksum"] = card_checksum(card)
    (out / "card.json").write_text(json.dumps(card))
    with pytest.raises(DataError,
                       match="names predictor 'transformer', which primo .* does not know"):
        load_model(out)
    res, _, err = run_cli(["simulate", "--model", str(out), "--features", str(store),
                           "--query", str(store), "-o", str(tmp_path / "SIM")])
    assert res.exit_code == 1 and "names predictor 'transformer'" in err
    assert "card.json" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "SIM").exists()
