"""Issue 16: search quality under the capture model during training (held-out mini-database,
best round kept), predictor-phase sampling, and local-match's energy head."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from primo.features.store import write_features  # noqa: E402


def _store(path, n=300, dim=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 3
    lab = rng.integers(0, k, n)
    X = (centers[lab] + rng.normal(size=(n, dim)) * 0.6).astype("float32")
    write_features(path, [f"doc{i}" for i in range(n)], X, {"extractor": "synthetic-test"},
                   labels=lab)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    p = tmp_path_factory.mktemp("capeval") / "F.h5"
    _store(p)
    return p


def _settings(**kw):
    from primo.training.trainer import TrainSettings

    base = dict(hidden=16, rounds=3, steps=4, batch_size=8, seed_pairs=12, seed_epochs=1,
                sim_pairs=8, predictor_epochs=1, heldout_rows=60, eval_pairs=3,
                final_eval_pairs=3, threshold=None, threshold_quantile=0.1, seed=7,
                capture_eval_docs=40, capture_eval_queries=3, capture_eval_k=5,
                capture_eval_every=1, capture_eval_refine=8, capture_eval_sample=6,
                objective="rank", rank_candidates=4)
    base.update(kw)
    return TrainSettings(**base)


def test_make_capture_eval_set_draws_disjoint_heldout_rows_and_exact_neighbours(store):
    from primo.features.store import FeatureStore
    from primo.training.capture_eval import make_capture_eval_set

    with FeatureStore.open(store) as fs:
        held = np.arange(100, 160)
        es = make_capture_eval_set(fs, held, 40, 3, 5, np.random.default_rng(0))
        X = fs.read()
        labels = fs.labels
    assert len(es.query_rows) == 3 and es.n_db == 40
    assert not set(es.query_rows) & set(es.db_rows)
    assert set(es.query_rows) | set(es.db_rows) <= set(held.tolist())
    for i, q in enumerate(es.query_rows):
        d = np.linalg.norm(X[es.db_rows] - X[q], axis=1)
        assert es.nn[i].tolist() == np.argsort(d, kind="stable")[:5].tolist()
    assert (es.labels_db == labels[es.db_rows]).all()
    # too few held-out rows for 2 k documents: no mini-database
    with FeatureStore.open(store) as fs:
        assert make_capture_eval_set(fs, np.arange(15), 40, 3, 10, np.random.default_rng(0)) is None


def test_curve_points_and_better():
    from primo.training.capture_eval import _curve_points, better

    # two queries over 4 documents; neighbours {0} and {1}
    F = np.array([[0.9, 0.1, 0.0, 0.2], [0.3, 0.8, 0.5, 0.0]])
    pts = dict(_curve_points(F, np.array([[0], [1]])))
    # threshold 0.8: query 0 retrieves {0}, query 1 {1} -> proportion 1/4, recall 1
    assert pts[0.25] == 1.0
    assert better({"capture_p50": 0.1, "capture_map10": 0.2}, {"capture_p50": 0.2, "capture_map10": 0.9})
    assert not better({"capture_p50": float("nan"), "capture_map10": 1.0},
                      {"capture_p50": 0.9, "capture_map10": 0.0})
    assert better({"capture_p50": 0.1, "capture_map10": 0.5}, {"capture_p50": 0.1, "capture_map10": 0.4})
    assert better({"capture_p50": 0.5}, None)


@pytest.mark.slow
def test_training_evaluates_capture_and_keeps_the_best_round(store, tmp_path):
    """Every round captures the mini-database (metrics.csv, card.json); the final model is the
    best round's, which the card names."""
    import keras

    from primo.model_dir import load_model
    from primo.training.trainer import train

    out = tmp_path / "MODEL"
    kept = tmp_path / "rounds"
    kept.mkdir()

    def copy_round(row):
        shutil.copy(out / "checkpoint" / "encoder.keras", kept / f"encoder{row['round']}.keras")

    res = train(store, out, _settings(), on_round=copy_round)
    rows = [r for r in res.metrics if r["round"] >= 1]
    assert all(np.isfinite(r["capture_map10"]) and 0 <= r["capture_map10"] <= 1 for r in rows)
    assert all(0 <= r["capture_probe_far"] <= 1 for r in rows)
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"capture_p50", "capture_map10", "buffer_sim_pos", "fresh_far_sim_pos"} <= set(header)
    card = json.loads((out / "card.json").read_text())
    ce = card["capture_eval"]
    assert ce["documents"] == 40 and ce["queries"] == 3 and ce["k"] == 5
    assert ce["map10_relevance"] == "label" and ce["protocol"]["probe_nm"] == 0.5
    assert set(ce["rounds"]) == {"1", "2", "3"}
    from primo.training.capture_eval import better

    best = None
    for r in rows:
        if better(r, best):
            best = r
    assert ce["best"]["round"] == best["round"] == card["selection"]["kept_round"]
    assert not (out / "checkpoint-best").exists()
    final = load_model(out).encoder.get_weights()
    kept_w = keras.saving.load_model(str(kept / f"encoder{best['round']}.keras"),
                                     safe_mode=True, compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(final, kept_w))
    # the paper's objective keeps its last round (the paper does)
    out2 = tmp_path / "PAPER"
    res2 = train(store, out2, _settings(objective="paper", rounds=2, capture_eval_every=5))
    card2 = json.loads((out2 / "card.json").read_text())
    assert card2["selection"]["kept_round"] == 2 and card2["selection"]["by"] == "last round"
    assert list(card2["capture_eval"]["rounds"]) == ["2"]   # the last round only (every 5)
    assert card2["predictor"]["energy_head"] is False


def test_fresh_pairs_oversample_uncertain_and_far_binders():
    """_choose_fresh takes the pairs predicted closest to 0.5, then the far pairs predicted to bind
    best, then random ones; none twice."""
    from primo.training.trainer import TrainSettings, _Run

    run = _Run.__new__(_Run)
    run.s = TrainSettings(sim_pairs=4, sim_candidates=3, sim_uncertain=0.25, sim_far_binders=0.5)
    run.threshold = 1.0
    run.rngs = {"fresh": np.random.default_rng(0)}
    p = np.array([0.0, 0.49, 0.9, 0.95, 0.1, 0.7, 0.2, 0.3, 0.99, 0.05, 0.6, 0.8])
    dist = np.array([0.5, 0.5, 2.0, 0.5, 2.0, 2.0, 0.5, 0.5, 0.5, 2.0, 2.0, 2.0])

    class M:
        def predict_codes(self, t, q):
            return p

    pick, n_unc, n_far = run._choose_fresh(M(), None, None, dist)
    assert (n_unc, n_far) == (1, 2) and len(pick) == 4 and len(set(pick.tolist())) == 4
    assert 1 in pick                          # |0.49 - 0.5| is the smallest
    assert {2, 11} <= set(pick.tolist())      # far pairs predicted to bind best (0.9, 0.8)


def test_sampling_settings_are_checked():
    from primo.errors import UsageError
    from primo.training.trainer import TrainSettings

    for bad in (dict(sim_candidates=0), dict(sim_uncertain=0.7, sim_far_binders=0.5),
                dict(capture_eval_k=0), dict(capture_eval_docs=-1)):
        with pytest.raises(UsageError):
            TrainSettings(**bad).check()


def test_local_match_energy_head_saves_and_loads_safely(tmp_path):
    import keras

    from primo.predictor.model import build_predictor, load_predictor, predictor_outputs

    m = build_predictor(seed=0, energy_head=True)
    eye = np.eye(4, dtype="float32")
    rng = np.random.default_rng(0)
    t, q = eye[rng.integers(0, 4, (3, 80))], eye[rng.integers(0, 4, (3, 80))]
    y, e = predictor_outputs(m([t, q]))
    assert y.shape == (3, 1) and e.shape == (3, 1)
    m.save(tmp_path / "p.keras")
    m2 = load_predictor(tmp_path / "p.keras")
    y2, e2 = predictor_outputs(m2([t, q]))
    assert np.allclose(np.asarray(e), np.asarray(e2)) and np.allclose(np.asarray(y), np.asarray(y2))
    # the paper's predictor has one output, as before
    assert not isinstance(build_predictor(seed=0)([t, q]), (list, tuple))
    assert keras.saving.get_registered_object("primo>LocalMatch") is not None


@pytest.mark.slow
def test_capture_evaluation_leaves_the_papers_training_unchanged(store, tmp_path):
    """The paper's setting trains the same model, bit for bit, with the capture evaluation on or
    off: it only reads the models (and keeps the last round)."""
    from primo.model_dir import load_model
    from primo.training.trainer import train

    kw = dict(objective="paper", rounds=2, capture_eval_every=1)
    train(store, tmp_path / "ON", _settings(**kw))
    train(store, tmp_path / "OFF", _settings(capture_eval_docs=0, **kw))
    on, off = load_model(tmp_path / "ON"), load_model(tmp_path / "OFF")
    for a, b in ((on.encoder, off.encoder), (on.predictor, off.predictor)):
        assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    card_on = json.loads((tmp_path / "ON" / "card.json").read_text())
    card_off = json.loads((tmp_path / "OFF" / "card.json").read_text())
    assert set(card_on["capture_eval"]["rounds"]) == {"1", "2"} and card_off["capture_eval"] is None
