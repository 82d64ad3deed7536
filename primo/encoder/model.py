"""The feature -> DNA encoder (Keras 3) and its regularizers.

Architecture (paper 002, Fig. S2; DESIGN.md), sizes being parameters of :func:`build_encoder`::

    features (D) -> [FeatureScaling] -> Dense 2048 ReLU -> Dense 320 -> reshape 80 x 4
                 -> softmax per position -> SequenceRegularization -> soft one-hot (80 x 4)

* :class:`FeatureScaling` (optional, recorded in the model): ``(x - center) / scale`` with a
  per-feature ``center`` and one scalar ``scale`` (so Euclidean geometry, and with it the similarity
  threshold, is kept up to a factor); its values come from the training features
  (:func:`feature_scaling_from_stats`). VGG16-FC2 features (norms ~100) and small learned embeddings
  (norms ~1) then reach the first Dense layer on the same scale.
* :class:`SequenceRegularization`: a pass-through layer that adds, as model losses,
  ``entropy * mean per-position entropy`` (so that each position has a clear base; 1e-2 in the
  paper) and the optional penalties ``gc_balance * mean (GC fraction - gc_target)^2`` (0.5 for
  synthesis; a lower target also makes unrelated sequences cross-hybridize less) and
  ``homopolymer * mean P(run of max_run + 1 equal bases)`` computed on the soft one-hots.
* Channels are A, C, G, T (:mod:`primo.dna`); a base is read by argmax (:func:`primo.encoder.to_sequences`).

Both custom layers are registered (``primo>FeatureScaling``, ``primo>SequenceRegularization``) so
that ``.keras`` files load with ``safe_mode=True`` (:func:`load_encoder`).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from ..constants import FEATURE_LENGTH  # noqa: E402

__all__ = [
    "FeatureScaling", "SequenceRegularization", "build_encoder", "load_encoder",
    "entropy_penalty", "gc_penalty", "homopolymer_penalty", "feature_scaling_from_stats",
    "ENCODER_DEFAULTS",
]

ENCODER_DEFAULTS = {
    "hidden": 2048,
    "length": FEATURE_LENGTH,
    "output_activation": None,  # Dense 320 is linear before the per-position softmax
    "entropy": 1e-2,
    "gc_balance": 0.0,
    "gc_target": 0.5,
    "homopolymer": 0.0,
    "max_run": 3,
    "scaling": "global",
}

_EPS = 1e-10


def entropy_penalty(p):
    """Mean per-position entropy (nats) of soft one-hots ``p`` (``... x L x 4``)."""
    return ops.mean(-ops.sum(p * ops.log(p + _EPS), axis=-1))


def gc_penalty(p, target: float = 0.5):
    """Mean over sequences of (expected GC fraction - target)^2; channels A, C, G, T."""
    gc = ops.mean(p[..., 1] + p[..., 2], axis=-1)
    return ops.mean(ops.square(gc - target))


def homopolymer_penalty(p, max_run: int = 3):
    """Mean probability, over windows of ``max_run + 1`` positions, that all are the same base."""
    k = max_run + 1
    n = ops.shape(p)[-2] - k + 1
    prod = p[..., 0:n, :]
    for i in range(1, k):
        prod = prod * p[..., i:i + n, :]
    return ops.mean(ops.sum(prod, axis=-1))


@keras.saving.register_keras_serializable(package="primo")
class SequenceRegularization(keras.layers.Layer):
    """Pass-through layer on soft one-hots that adds the encoder regularizers as model losses.

    Parameters
    ----------
    entropy : float
        Strength of the per-position entropy penalty (1e-2 in the paper).
    gc_balance : float
        Strength of the GC-balance penalty (0 = off).
    gc_target : float
        The GC fraction the GC penalty pulls towards (0.5).
    homopolymer : float
        Strength of the homopolymer penalty (0 = off).
    max_run : int
        Longest homopolymer run that is not penalised.
    """

    def __init__(self, entropy: float = 1e-2, gc_balance: float = 0.0, homopolymer: float = 0.0,
                 max_run: int = 3, gc_target: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.entropy = float(entropy)
        self.gc_balance = float(gc_balance)
        self.gc_target = float(gc_target)
        self.homopolymer = float(homopolymer)
        self.max_run = int(max_run)

    def penalty(self, p, hard=None):
        """The total regularization term for soft one-hots ``p``.

        ``hard``: the sequences actually read (e.g. straight-through one-hots carrying ``p``'s
        gradient); the GC and homopolymer terms are then computed on them, so they penalise the
        runs and GC content of the real sequences (the entropy term stays on ``p``).
        """
        seq = p if hard is None else hard
        total = self.entropy * entropy_penalty(p)
        if self.gc_balance:
            total = total + self.gc_balance * gc_penalty(seq, self.gc_target)
        if self.homopolymer:
            total = total + self.homopolymer * homopolymer_penalty(seq, self.max_run)
        return total

    def call(self, inputs, training=None):
        if training:
            self.add_loss(self.penalty(inputs))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"entropy": self.entropy, "gc_balance": self.gc_balance,
                       "homopolymer": self.homopolymer, "max_run": self.max_run,
                       "gc_target": self.gc_target})
        return config


@keras.saving.register_keras_serializable(package="primo")
class FeatureScaling(keras.layers.Layer):
    """``(x - center) / scale``: per-feature center, one scalar scale (both stored as weights).

    Parameters
    ----------
    dim : int
        Feature dimension.
    scale : float
        Initial scalar scale (the weights are overwritten by :meth:`set_stats` or on loading).
    """

    def __init__(self, dim: int, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self._init_scale = float(scale)

    def build(self, input_shape):
        self.center = self.add_weight(shape=(self.dim,), initializer="zeros", trainable=False,
                                      name="center")
        self.scale = self.add_weight(shape=(), trainable=False, name="scale",
                                     initializer=keras.initializers.Constant(self._init_scale))

    def set_stats(self, center, scale) -> None:
        self.center.assign(np.asarray(center, dtype="float32").reshape(self.dim))
        self.scale.assign(np.float32(scale))

    def call(self, inputs):
        return (inputs - self.center) / self.scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"dim": self.dim, "scale": self._init_scale})
        return config


def feature_scaling_from_stats(mean: np.ndarray, mean_sq_norm_centered: float, dim: int):
    """Center and scalar scale so that centered features have unit RMS per coordinate."""
    scale = float(np.sqrt(max(mean_sq_norm_centered, 1e-12) / max(dim, 1)))
    return np.asarray(mean, dtype=np.float32), scale


def build_encoder(input_dim: int, *, hidden: int = 2048, length: int = FEATURE_LENGTH,
                  output_activation: str | None = None, entropy: float = 1e-2,
                  gc_balance: float = 0.0, homopolymer: float = 0.0, max_run: int = 3,
                  gc_target: float = 0.5, scaling: str = "global", center=None, scale: float = 1.0,
                  seed: int | None = None, name: str = "encoder") -> keras.Model:
    """The encoder: ``(batch, input_dim)`` features -> ``(batch, length, 4)`` soft one-hots.

    Parameters
    ----------
    input_dim : int
        Feature dimension (4096 for VGG16-FC2).
    hidden : int
        Width of the ReLU hidden layer (2048 in the paper).
    length : int
        Feature-region length in nt (80).
    output_activation : str, optional
        Activation of the ``4 * length`` Dense layer before the softmax (None = linear).
    entropy, gc_balance, homopolymer, max_run, gc_target
        Regularizer strengths (see :class:`SequenceRegularization`).
    scaling : {"global", "none"}
        Whether the model starts with a :class:`FeatureScaling` layer (values ``center``, ``scale``).
    seed : int, optional
        Seed of the weight initializers.
    """
    if scaling not in ("global", "none"):
        raise ValueError(f"scaling must be 'global' or 'none', got {scaling!r}")
    init = (lambda k: keras.initializers.GlorotUniform(seed=None if seed is None else seed + k))
    x_in = keras.Input((input_dim,), name="features")
    x = x_in
    if scaling == "global":
        layer = FeatureScaling(input_dim, scale, name="feature_scaling")
        x = layer(x)
        if center is not None:
            layer.set_stats(center, scale)
    x = keras.layers.Dense(hidden, activation="relu", kernel_initializer=init(1), name="hidden")(x)
    x = keras.layers.Dense(4 * length, activation=output_activation, kernel_initializer=init(2),
                           name="logits")(x)
    x = keras.layers.Reshape((length, 4), name="to_positions")(x)
    x = keras.layers.Softmax(axis=-1, name="bases")(x)
    x = SequenceRegularization(entropy, gc_balance, homopolymer, max_run, gc_target,
                               name="regularization")(x)
    return keras.Model(x_in, x, name=name)


def load_encoder(path) -> keras.Model:
    """Load an encoder ``.keras`` file with ``safe_mode=True``."""
    return keras.saving.load_model(str(path), safe_mode=True, compile=False)
