"""The Keras yield predictor: local-match layer against a plain loop, save/load, behaviour."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from primo.dna import onehot  # noqa: E402
from primo.predictor.model import (LocalMatch, build_predictor, load_predictor,  # noqa: E402
                                   local_match_reference)


def _soft(rng, shape):
    x = rng.random(shape).astype("float32")
    return x / x.sum(-1, keepdims=True)


@pytest.mark.parametrize("length,window", [(80, 3), (12, 3), (9, 1), (10, 5)])
def test_local_match_equals_naive_loop(length, window):
    rng = np.random.default_rng(length + window)
    t = _soft(rng, (3, length, 4))
    q = _soft(rng, (3, length, 4))
    got = np.asarray(LocalMatch(window)([t, q]))
    want = local_match_reference(t, q, window)
    assert got.shape == (3, length - window + 1, 4 * window * window)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_local_match_of_one_hots_marks_aligned_matches():
    seq = "ACGTACGTAA"
    x = onehot([seq])
    out = np.asarray(LocalMatch(3)([x, x]))[0]  # (8, 36)
    # identical sequences: each channel's 3x3 block has its diagonal set where the base is that channel
    for p in range(8):
        for c in range(4):
            block = out[p, c * 9:(c + 1) * 9].reshape(3, 3)
            for i in range(3):
                assert block[i, i] == (1.0 if "ACGT".index(seq[p + i]) == c else 0.0)
    assert out.sum() == pytest.approx(
        sum(sum(seq[p + i] == seq[p + j] for i in range(3) for j in range(3)) for p in range(8)))


def test_predictor_architecture_and_range():
    model = build_predictor(seed=0)
    names = [type(layer).__name__ for layer in model.layers]
    assert names == ["InputLayer", "InputLayer", "LocalMatch", "AveragePooling1D", "Conv1D",
                     "GlobalAveragePooling1D", "Dense"]
    conv = model.get_layer("conv")
    assert conv.filters == 36 and conv.kernel_size == (3,)
    assert model.get_layer("local_match").output.shape[1:] == (78, 36)
    rng = np.random.default_rng(1)
    y = np.asarray(model([_soft(rng, (5, 80, 4)), _soft(rng, (5, 80, 4))]))
    assert y.shape == (5, 1) and ((y > 0) & (y < 1)).all()


def test_predictor_save_load_safe_mode_round_trip(tmp_path):
    model = build_predictor(seed=3)
    rng = np.random.default_rng(2)
    t, q = _soft(rng, (4, 80, 4)), _soft(rng, (4, 80, 4))
    before = np.asarray(model([t, q]))
    path = tmp_path / "p.keras"
    model.save(path)
    loaded = load_predictor(path)  # safe_mode=True
    np.testing.assert_array_equal(np.asarray(loaded([t, q])), before)
    assert isinstance(loaded.get_layer("local_match"), LocalMatch)


def test_predictor_seed_gives_same_weights():
    a, b = build_predictor(seed=7), build_predictor(seed=7)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_predictor_learns_identity_vs_random_on_simulated_yields():
    """A few epochs on real simulator yields separate perfect duplexes from random pairs."""
    import keras

    from primo.thermo.simulator import Simulator
    from primo.training.trainer import seed_pair_codes

    rng = np.random.default_rng(0)
    t, q = seed_pair_codes(24, rng)
    q[:12] = t[:12]  # half perfect matches
    from primo.dna import decode_seqs

    y = Simulator().yields(decode_seqs(t), decode_seqs(q))
    assert (y[:12] > 0.9).all()
    eye = np.eye(4, dtype="float32")
    model = build_predictor(seed=0)
    model.compile(keras.optimizers.RMSprop(1e-2), "binary_crossentropy")
    model.fit([eye[t], eye[q]], y.astype("float32"), epochs=60, batch_size=24, verbose=0)
    p = np.asarray(model([eye[t], eye[q]])).ravel()
    assert p[:12].mean() > p[12:].mean() + 0.3


def test_context_appends_the_toehold_and_round_trips(tmp_path):
    from primo.constants import RP
    from primo.predictor.model import AppendContext

    x = onehot(["ACGT" * 20])
    out = np.asarray(AppendContext(RP[:6])(x))
    assert out.shape == (1, 86, 4)
    np.testing.assert_array_equal(out[0, 80:], onehot([RP[:6]])[0])
    np.testing.assert_array_equal(out[0, :80], x[0])
    model = build_predictor(context=RP[:6], global_pool="both", seed=1)
    assert model.get_layer("local_match").output.shape[1:] == (84, 36)
    rng = np.random.default_rng(5)
    t, q = _soft(rng, (3, 80, 4)), _soft(rng, (3, 80, 4))
    before = np.asarray(model([t, q]))
    model.save(tmp_path / "p.keras")
    np.testing.assert_array_equal(np.asarray(load_predictor(tmp_path / "p.keras")([t, q])), before)
    with pytest.raises(ValueError):
        AppendContext("ACGN")
