"""MODEL/ directories: card validation (schema, version, checksum, file hashes), PrimoModel API."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from primo import __version__  # noqa: E402
from primo.errors import DataError, UsageError  # noqa: E402
from primo.model_dir import (CARD_NAME, card_checksum, load_model, read_card,  # noqa: E402
                             versions_compatible, write_card)

DIM = 6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from primo.encoder.model import build_encoder
    from primo.predictor.model import build_predictor

    d = tmp_path_factory.mktemp("model")
    build_encoder(DIM, hidden=16, seed=0).save(d / "encoder.keras")
    build_predictor(seed=0).save(d / "predictor.keras")
    card = {
        "threshold": {"value": 1.5, "method": "fixed"},
        "layout": {"feature_length": 80},
        "features": {"dim": DIM, "extractor": "toy-extractor", "metadata": {"extractor": "toy-extractor"}},
        "encoder": {"hidden": 16}, "predictor": {}, "training": {"seed": 0},
        "metrics": {"sim_pos_similar": float("nan")},
    }
    write_card(d, card)
    return d


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def _edit_card(d, fn, fix_checksum=False):
    p = d / CARD_NAME
    card = json.loads(p.read_text())
    fn(card)
    if fix_checksum:
        card["checksum"] = card_checksum(card)
    p.write_text(json.dumps(card, indent=2))


def test_load_valid_model_and_api(model_dir):
    m = load_model(model_dir)
    assert m.feature_dim == DIM and m.threshold == 1.5 and m.extractor == "toy-extractor"
    card = json.loads((model_dir / CARD_NAME).read_text())
    assert card["primo_version"] == __version__
    assert card["metrics"]["sim_pos_similar"] is None  # NaN stored as null, strict JSON
    X = np.random.default_rng(0).normal(size=(5, DIM)).astype("float32")
    soft = m.encode_onehot(X, batch_size=2)
    assert soft.shape == (5, 80, 4)
    seqs = m.encode_features(X)
    assert len(seqs) == 5 and all(len(s) == 80 for s in seqs)
    hard = np.eye(4, dtype="float32")[np.argmax(soft, -1)]
    y = m.predict_yields(hard, hard, batch_size=3)
    assert y.shape == (5,) and ((y >= 0) & (y <= 1)).all()
    m.check_features(DIM, {"extractor": "toy-extractor"})


def test_dimension_mismatch_names_both_dims_and_extractor(model_dir):
    m = load_model(model_dir)
    with pytest.raises(DataError) as e:
        m.check_features(4096, {"extractor": "vgg16"}, path="Q.h5")
    msg = str(e.value)
    assert "4096" in msg and str(DIM) in msg and "toy-extractor" in msg and "vgg16" in msg
    assert "Q.h5" in msg and "\n" not in msg
    with pytest.raises(DataError, match="expects 6-dimensional"):
        m.encode_features(np.zeros((2, 5), "float32"))


def test_other_extractor_same_dim_is_refused(model_dir):
    with pytest.raises(DataError, match="extractor 'other'"):
        load_model(model_dir).check_features(DIM, {"extractor": "other"})


def test_model_from_another_primo_version(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "m")
    _edit_card(d, lambda c: c.update(primo_version="9.3.0"), fix_checksum=True)
    with pytest.raises(DataError) as e:
        load_model(d)
    msg = str(e.value)
    assert "primo 9.3.0" in msg and __version__ in msg and "retrain" in msg and CARD_NAME in msg
    assert e.value.exit_code == 1


def test_versions_compatible():
    assert versions_compatible("0.1.0", "0.1.7")
    assert not versions_compatible("0.1.0", "0.2.0")
    assert not versions_compatible("1.1.0", "0.1.0")


def test_tampered_card_fails_checksum(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "m")
    _edit_card(d, lambda c: c["threshold"].update(value=99.0))
    with pytest.raises(DataError) as e:
        load_model(d)
    assert "tampered" in str(e.value) and "card.json" in str(e.value)


def test_tampered_model_file_fails_hash(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "m")
    with open(d / "encoder.keras", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(DataError) as e:
        read_card(d)
    assert "encoder.keras" in str(e.value) and "tampered" in str(e.value)


def test_missing_file_and_missing_fields(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path / "m")
    (d / "predictor.keras").unlink()
    with pytest.raises(DataError, match="predictor.keras.*missing"):
        load_model(d)
    d2 = _copy(model_dir, tmp_path / "m2")
    _edit_card(d2, lambda c: c.pop("threshold"), fix_checksum=True)
    with pytest.raises(DataError, match="lacks field.*threshold"):
        load_model(d2)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "half" / "checkpoint").mkdir(parents=True)
    with pytest.raises(DataError, match="`resume`"):
        load_model(tmp_path / "half")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / CARD_NAME).write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_model(tmp_path / "bad")
