import numpy as np
import pytest

keras = pytest.importorskip("keras")

from primo.predictor.fixed_query import FixedQueryPredictor  # noqa: E402
from primo.predictor.model import build_predictor  # noqa: E402


def test_fixed_query_predictor_equals_keras_model():
    pred = build_predictor(seed=5)
    # make the logistic sensitive so that differences would show
    w = pred.get_layer("yield").get_weights()
    pred.get_layer("yield").set_weights([w[0] * 20, w[1] + 0.3])
    rng = np.random.default_rng(1)
    q_codes = rng.integers(0, 4, 80).astype(np.uint8)
    q = np.eye(4, dtype=np.float32)[q_codes]
    fast = FixedQueryPredictor(pred, q, check=64)
    codes = rng.integers(0, 4, (500, 80)).astype(np.uint8)
    codes[:50] = q_codes  # perfect matches
    codes[50:100, :40] = q_codes[:40]  # half matches
    t = np.eye(4, dtype=np.float32)[codes]
    ref = np.asarray(pred([t, np.broadcast_to(q, t.shape)])).reshape(-1)
    got = fast(codes, chunksize=77)
    assert np.abs(ref - got).max() < 1e-5
    assert got.std() > 1e-3


def test_fixed_query_predictor_refuses_other_architectures():
    inp_t = keras.Input((80, 4), name="target")
    inp_q = keras.Input((80, 4), name="query")
    x = keras.layers.Concatenate()([inp_t, inp_q])
    y = keras.layers.Dense(1, activation="sigmoid", name="yield")(keras.layers.Flatten()(x))
    other = keras.Model([inp_t, inp_q], y)
    with pytest.raises(ValueError):
        FixedQueryPredictor(other, np.eye(4, dtype=np.float32)[np.zeros(80, int)])
