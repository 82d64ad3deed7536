"""The encoder: architecture, regularizers, discretization, save/load with safe_mode."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from primo.dna import gc_fraction, longest_homopolymer  # noqa: E402
from primo.encoder import encode_onehot, to_hard_onehot, to_sequences  # noqa: E402
from primo.encoder.model import (FeatureScaling, SequenceRegularization,  # noqa: E402
                                 build_encoder, entropy_penalty, feature_scaling_from_stats,
                                 gc_penalty, homopolymer_penalty, load_encoder)


def _soft(rng, shape):
    x = rng.random(shape) ** 3
    return (x / x.sum(-1, keepdims=True)).astype("float32")


def test_architecture_defaults():
    enc = build_encoder(4096, seed=0)
    kinds = [type(layer).__name__ for layer in enc.layers]
    assert kinds == ["InputLayer", "FeatureScaling", "Dense", "Dense", "Reshape", "Softmax",
                     "SequenceRegularization"]
    assert enc.get_layer("hidden").units == 2048
    assert enc.get_layer("hidden").activation.__name__ == "relu"
    assert enc.get_layer("logits").units == 320
    assert enc.output_shape == (None, 80, 4)
    assert enc.get_layer("regularization").entropy == pytest.approx(1e-2)


def test_outputs_are_distributions_per_position():
    enc = build_encoder(16, hidden=32, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 16)).astype("float32")
    p = np.asarray(enc(x))
    assert p.shape == (5, 80, 4)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)


def test_entropy_regularizer_value():
    rng = np.random.default_rng(0)
    p = _soft(rng, (6, 80, 4))
    want = float(np.mean(-(p * np.log(p + 1e-10)).sum(-1)))
    assert float(entropy_penalty(p)) == pytest.approx(want, rel=1e-5)
    # uniform positions: log(4); one-hot positions: 0
    assert float(entropy_penalty(np.full((1, 80, 4), 0.25, "float32"))) == pytest.approx(np.log(4), rel=1e-5)
    assert float(entropy_penalty(np.eye(4, dtype="float32")[np.zeros((1, 80), int)])) == pytest.approx(0, abs=1e-6)
    layer = SequenceRegularization(entropy=1e-2)
    assert float(layer.penalty(p)) == pytest.approx(1e-2 * want, rel=1e-5)


def test_regularizer_is_a_model_loss_in_training_only():
    enc = build_encoder(8, hidden=16, entropy=0.5, seed=2)
    x = np.random.default_rng(1).normal(size=(4, 8)).astype("float32")
    p = enc(x, training=True)
    assert len(enc.losses) == 1
    assert float(enc.losses[0]) == pytest.approx(0.5 * float(entropy_penalty(p)), rel=1e-5)
    enc(x, training=False)
    assert len(enc.losses) == 0


def test_gc_and_homopolymer_penalties_match_hard_sequences():
    seqs = ["A" * 40 + "GC" * 20, "ACGT" * 20]
    x = np.eye(4, dtype="float32")[[["ACGT".index(b) for b in s] for s in seqs]]
    want_gc = np.mean([(gc_fraction(s) - 0.5) ** 2 for s in seqs])
    assert float(gc_penalty(x)) == pytest.approx(want_gc, abs=1e-6)
    # runs of 4 equal bases: sequence 1 has 37 windows of AAAA out of 77, sequence 2 none
    assert float(homopolymer_penalty(x, max_run=3)) == pytest.approx((37 / 77) / 2, rel=1e-5)
    assert longest_homopolymer(seqs[0]) == 40


def test_synthesizability_regularizers_configurable():
    enc = build_encoder(8, hidden=16, gc_balance=2.0, homopolymer=3.0, max_run=4, gc_target=0.4,
                        seed=0)
    reg = enc.get_layer("regularization")
    assert (reg.gc_balance, reg.homopolymer, reg.max_run, reg.gc_target) == (2.0, 3.0, 4, 0.4)
    p = _soft(np.random.default_rng(3), (2, 80, 4))
    want = (1e-2 * float(entropy_penalty(p)) + 2.0 * float(gc_penalty(p, 0.4))
            + 3.0 * float(homopolymer_penalty(p, 4)))
    assert float(reg.penalty(p)) == pytest.approx(want, rel=1e-5)


def test_feature_scaling_layer():
    X = np.random.default_rng(0).normal(3.0, 10.0, size=(200, 6)).astype("float32")
    mean = X.mean(0)
    msq = float(((X - mean) ** 2).sum(1).mean())
    center, scale = feature_scaling_from_stats(mean, msq, 6)
    layer = FeatureScaling(6, scale)
    layer.build((None, 6))
    layer.set_stats(center, scale)
    Y = np.asarray(layer(X))
    np.testing.assert_allclose((Y ** 2).sum(1).mean() / 6, 1.0, rtol=1e-4)
    # distances are only scaled
    d = np.linalg.norm(X[0] - X[1]) / scale
    assert np.linalg.norm(Y[0] - Y[1]) == pytest.approx(d, rel=1e-4)


def test_save_load_safe_mode_round_trip(tmp_path):
    X = np.random.default_rng(4).normal(size=(7, 12)).astype("float32")
    enc = build_encoder(12, hidden=64, gc_balance=0.1, center=X.mean(0), scale=2.5, seed=5)
    before = np.asarray(enc(X))
    path = tmp_path / "e.keras"
    enc.save(path)
    loaded = load_encoder(path)
    np.testing.assert_array_equal(np.asarray(loaded(X)), before)
    assert loaded.get_layer("regularization").gc_balance == pytest.approx(0.1)
    assert float(np.asarray(loaded.get_layer("feature_scaling").scale)) == pytest.approx(2.5)
    assert to_sequences(before) == to_sequences(np.asarray(loaded(X)))


def test_discretization_argmax():
    p = np.zeros((2, 5, 4), "float32")
    p[0, :, :] = [0.1, 0.6, 0.2, 0.1]  # C
    p[1, :, :] = [0.1, 0.2, 0.3, 0.4]  # T
    assert to_sequences(p) == ["CCCCC", "TTTTT"]
    hard = to_hard_onehot(p)
    assert hard.sum() == 10 and hard[0, 0, 1] == 1 and hard[1, 0, 3] == 1
    enc = build_encoder(4, hidden=8, seed=0)
    X = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
    out = encode_onehot(enc, X, batch_size=3)
    np.testing.assert_allclose(out, np.asarray(enc(X)), rtol=1e-6, atol=1e-6)
    assert all(len(s) == 80 and set(s) <= set("ACGT") for s in to_sequences(out))


def test_synthesizability_terms_on_the_read_sequences():
    """With straight-through training the GC / homopolymer terms see the argmax sequences."""
    reg = SequenceRegularization(entropy=0.0, gc_balance=1.0, homopolymer=1.0, max_run=3)
    p = _soft(np.random.default_rng(8), (3, 80, 4))
    hard = to_hard_onehot(p)
    want = float(gc_penalty(hard)) + float(homopolymer_penalty(hard, 3))
    assert float(reg.penalty(p, hard)) == pytest.approx(want, rel=1e-5)
    assert float(reg.penalty(p)) != pytest.approx(want, rel=1e-3)
