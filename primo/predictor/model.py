"""The differentiable yield predictor (Keras 3): local-match layer -> pool -> conv -> logistic.

The predictor takes two one-hot DNA sequences of the same length *in the same sense*, the target
feature region and the query feature region (``B x L x 4`` each, channels A, C, G, T as in
:mod:`primo.dna`), and estimates the hybridization yield of the target strand with the **reverse
complement** of the query (the probe), as the thermodynamic simulator computes it. Identical
sequences therefore mean a perfect duplex.

Architecture (paper 002, Fig. S3), every size a parameter of :func:`build_predictor`:

1. :class:`LocalMatch`: for each interior position ``p`` (``L - 2`` of them) and each base channel
   ``c``, the outer product of the 3-nt windows of the two sequences, ``t[p-1:p+2, c] (x)
   q[p-1:p+2, c]`` (``4 x 3 x 3 = 36`` features per position, ordered channel, target offset,
   query offset). Diagonal entries are aligned matches, off-diagonal ones matches shifted by one or
   two bases. Vectorised (one einsum over the stacked windows), no loop over positions.
2. ``AveragePooling1D(3)``, 3. ``Conv1D(36, 3, tanh)``, 4. ``GlobalAveragePooling1D``,
5. ``Dense(1, sigmoid)``: the yield in [0, 1].

It is trained with binary cross-entropy against simulated yields
(:class:`primo.predictor.simulator.Simulator`). Saved models are ordinary ``.keras`` files that load
with ``keras.saving.load_model(path, safe_mode=True)`` once this module is imported (the custom layer
is registered as ``primo>LocalMatch``); :func:`load_predictor` does both.

This module imports TensorFlow/Keras; ``primo.predictor`` itself does not.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from ..constants import FEATURE_LENGTH  # noqa: E402

__all__ = ["LocalMatch", "AppendContext", "build_predictor", "load_predictor",
           "local_match_reference", "PREDICTOR_DEFAULTS"]

#: architecture defaults (DESIGN.md "Fixed facts")
PREDICTOR_DEFAULTS = {
    "length": FEATURE_LENGTH,
    "window": 3,
    "pool_size": 3,
    "conv_filters": 36,
    "conv_width": 3,
    "conv_activation": "tanh",
    "global_pool": "average",
    "context": "",
}


@keras.saving.register_keras_serializable(package="primo")
class LocalMatch(keras.layers.Layer):
    """Local matches between two one-hot sequences (paper 002, Fig. S3B).

    Call on ``[target, query]``, each ``(batch, L, 4)``; returns ``(batch, L - w + 1, 4 * w * w)``
    with ``w = window`` (3): feature ``c * w * w + i * w + j`` at output position ``p`` is
    ``target[p + i, c] * query[p + j, c]``.

    Parameters
    ----------
    window : int
        Window width (odd; 3 in the paper).
    """

    def __init__(self, window: int = 3, **kwargs):
        super().__init__(**kwargs)
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = int(window)

    def _windows(self, x):
        n = ops.shape(x)[1] - self.window + 1
        # (batch, n, w, 4): window offset i along axis 2 (a loop over w offsets, not positions)
        return ops.stack([x[:, i:i + n, :] for i in range(self.window)], axis=2)

    def call(self, inputs):
        target, query = inputs
        tw = self._windows(target)
        qw = self._windows(query)
        outer = ops.einsum("bpic,bpjc->bpcij", tw, qw)
        shape = ops.shape(outer)
        return ops.reshape(outer, (shape[0], shape[1], 4 * self.window * self.window))

    def compute_output_shape(self, input_shapes):
        t_shape = input_shapes[0]
        n = None if t_shape[1] is None else t_shape[1] - self.window + 1
        return (t_shape[0], n, 4 * self.window * self.window)

    def get_config(self):
        config = super().get_config()
        config.update({"window": self.window})
        return config


@keras.saving.register_keras_serializable(package="primo")
class AppendContext(keras.layers.Layer):
    """Append a constant DNA sequence (as one-hot, channels A, C, G, T) to one-hot sequences.

    ``(batch, L, 4) -> (batch, L + len(sequence), 4)``. The predictor uses it to show the local-match
    layer the primer bases that follow the feature region on both strands of the simulated
    reaction (the probe's toehold, ``RP[:6]``), so that matches next to the toehold, which extend
    the toehold duplex, look like what they are: part of one longer duplex.

    Parameters
    ----------
    sequence : str
        A/C/G/T bases appended after the last position.
    """

    def __init__(self, sequence: str, **kwargs):
        super().__init__(**kwargs)
        self.sequence = str(sequence).upper()
        if set(self.sequence) - set("ACGT"):
            raise ValueError(f"context must be A/C/G/T, got {sequence!r}")
        self._onehot = np.eye(4, dtype="float32")[["ACGT".index(b) for b in self.sequence]]

    def call(self, inputs):
        b = ops.shape(inputs)[0]
        ctx = ops.convert_to_tensor(self._onehot, dtype=inputs.dtype)
        ctx = ops.broadcast_to(ops.expand_dims(ctx, 0), (b, len(self.sequence), 4))
        return ops.concatenate([inputs, ctx], axis=1)

    def compute_output_shape(self, input_shape):
        n = None if input_shape[1] is None else input_shape[1] + len(self.sequence)
        return (input_shape[0], n, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"sequence": self.sequence})
        return config


def local_match_reference(target: np.ndarray, query: np.ndarray, window: int = 3) -> np.ndarray:
    """Plain-loop NumPy version of :class:`LocalMatch` (the reference the tests compare against)."""
    target = np.asarray(target, dtype=np.float64)
    query = np.asarray(query, dtype=np.float64)
    b, L, _ = target.shape
    n = L - window + 1
    out = np.zeros((b, n, 4 * window * window))
    for s in range(b):
        for p in range(n):
            for c in range(4):
                for i in range(window):
                    for j in range(window):
                        out[s, p, c * window * window + i * window + j] = (
                            target[s, p + i, c] * query[s, p + j, c])
    return out


def build_predictor(length: int = FEATURE_LENGTH, *, window: int = 3, pool_size: int = 3,
                    conv_filters: int = 36, conv_width: int = 3, conv_activation: str = "tanh",
                    global_pool: str = "average", context: str = "", seed: int | None = None,
                    name: str = "predictor") -> keras.Model:
    """The yield predictor as a functional Keras model with inputs ``target`` and ``query``.

    Parameters
    ----------
    length : int
        Feature-region length (80).
    window, pool_size, conv_filters, conv_width, conv_activation
        Architecture (defaults: :data:`PREDICTOR_DEFAULTS`).
    global_pool : {"average", "max", "both"}
        The paper's global average pooling, global max pooling (the strongest local interaction
        counts, however short), or both concatenated.
    context : str
        Bases appended to both sequences before the local-match layer (:class:`AppendContext`);
        "" in the paper; ``RP[:6]`` shows the predictor the probe's toehold.
    seed : int, optional
        Seed of the weight initializers (reproducible models).

    Returns
    -------
    keras.Model
        ``model([target, query]) -> (batch, 1)`` yields in [0, 1].
    """
    n_local = length + len(context) - window + 1
    if n_local // pool_size < conv_width:
        raise ValueError(f"sequences of {length} nt are too short for window {window}, "
                         f"pool {pool_size} and conv width {conv_width}")
    t = keras.Input((length, 4), name="target")
    q = keras.Input((length, 4), name="query")
    t_in, q_in = t, q
    if context:
        t_in = AppendContext(context, name="target_context")(t)
        q_in = AppendContext(context, name="query_context")(q)
    x = LocalMatch(window, name="local_match")([t_in, q_in])
    x = keras.layers.AveragePooling1D(pool_size, name="local_pool")(x)
    init = (lambda k: keras.initializers.GlorotUniform(seed=None if seed is None else seed + k))
    x = keras.layers.Conv1D(conv_filters, conv_width, activation=conv_activation,
                            kernel_initializer=init(1), name="conv")(x)
    if global_pool == "average":
        x = keras.layers.GlobalAveragePooling1D(name="global_pool")(x)
    elif global_pool == "max":
        x = keras.layers.GlobalMaxPooling1D(name="global_pool")(x)
    elif global_pool == "both":
        x = keras.layers.Concatenate(name="global_pool")(
            [keras.layers.GlobalAveragePooling1D(name="global_avg")(x),
             keras.layers.GlobalMaxPooling1D(name="global_max")(x)])
    else:
        raise ValueError(f"global_pool must be 'average', 'max' or 'both', got {global_pool!r}")
    y = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init(2), name="yield")(x)
    return keras.Model([t, q], y, name=name)


def load_predictor(path) -> keras.Model:
    """Load a predictor ``.keras`` file with ``safe_mode=True``."""
    return keras.saving.load_model(str(path), safe_mode=True, compile=False)
