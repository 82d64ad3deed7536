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
(:class:`primo.thermo.simulator.Simulator`). Saved models are ordinary ``.keras`` files that load
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
           "local_match_reference", "PREDICTOR_DEFAULTS", "PREDICTORS", "DuplexScan",
           "build_scan_predictor", "predictor_outputs"]

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
                    energy_head: bool = False, name: str = "predictor") -> keras.Model:
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
    energy_head : bool
        Also predict the binding free energy (kcal/mol at the hybridization temperature) with a
        linear head on the pooled features (not in the paper; the ``rank`` objective ranks by it).

    Returns
    -------
    keras.Model
        ``model([target, query]) -> (batch, 1)`` yields in [0, 1]; with ``energy_head``
        ``[yield, energy]``.
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
    if energy_head:
        e = keras.layers.Dense(1, kernel_initializer=init(3), name="energy")(x)
        return keras.Model([t, q], [y, e], name=name)
    return keras.Model([t, q], y, name=name)


def load_predictor(path) -> keras.Model:
    """Load a predictor ``.keras`` file with ``safe_mode=True``."""
    return keras.saving.load_model(str(path), safe_mode=True, compile=False)


# --------------------------------------------------------------------------- the soft duplex scan
#: predictors ``primo train --predictor`` knows; "local-match" is the paper's
from ..constants import PREDICTORS  # noqa: E402  (defined once, the card's vocabulary)

_NEG = -1.0e4  # "impossible" in the log semiring (finite: no NaN gradients through logsumexp)


@keras.saving.register_keras_serializable(package="primo")
class DuplexScan(keras.layers.Layer):
    """Soft Smith-Waterman over every diagonal of the target-strand x probe pairing matrix.

    Call on ``[target, query]``: one-hots (or soft one-hots) ``(batch, La, 4)`` and ``(batch, Lb,
    4)`` *in the same sense* (the probe is the reverse complement of ``query``), so that target
    position ``i`` pairs with query position ``j`` when their bases are equal, and an antiparallel
    helix runs along ``(i, j) -> (i + 1, j + 1)``. Returns ``(batch, 1)``: the log-partition
    function ``log Z`` (a soft maximum over every duplex) of a nearest-neighbor model with
    learned parameters, in units of ``RT`` (larger = binds more strongly):

    * ``stack``: a 16 x 16 table, target dinucleotide x query dinucleotide (mismatched stacks
      included), for each step ``(i-1, j-1) -> (i, j)`` of a helix;
    * ``pair_match`` / ``pair_mismatch``: the closing pair of a helix start, a bulge or a loop;
    * ``init``: starting a helix;
    * ``bulge1``, ``bulge2``: one or two unpaired bases on either strand (the helix moves to a
      neighboring diagonal); ``loop22``: a 2 x 2 internal loop.

    ``H_i[j]`` is the log-sum over all helices whose last pair is target base ``i`` with query
    base ``j``. Every move of a helix (stack, bulge, loop) goes down at least one row of the
    pairing matrix, so a whole row -- every query position, hence every diagonal that crosses
    it, of every pair in the batch -- is updated at once from the three rows above it: the
    sequential part is one ``tf.scan`` of ``La`` steps over ``(batch, Lb)`` tensors, in the
    exponential domain (sums and products, one rescaling per row). Every diagonal is seen, so
    shifted and bulged duplexes count, unlike :class:`LocalMatch`.

    ``loops``: with ``None`` (the row recursion above) every number of bulges and loops per
    duplex is summed. With an integer ``n`` the layer sums the duplexes with at most ``n``
    bulges/internal loops, with no sequential loop at all: along one diagonal a helix is a
    *linear* recurrence ``x_i = a_i x_(i-1) + b_i`` (stack, or start), which a cumulative
    log-sum-exp solves in parallel, ``log x_i = A_i + logcumsumexp_(k<=i)(log b_k - A_k)`` with
    ``A`` the cumulative stack weights. The matrix is skewed so that diagonals are columns, and
    each of the ``n + 1`` passes feeds the previous pass's helices, moved to the neighboring
    diagonals by a bulge or a loop, into the next one's starts. The sum converges to the exact
    one as ``n`` grows (the tests compare them); ``benchmarks/bench_predictors.py`` measures the
    speed.
    """

    def __init__(self, loops: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if loops is not None and int(loops) < 0:
            raise ValueError(f"loops must be None or >= 0, got {loops}")
        self.loops = None if loops is None else int(loops)

    def build(self, input_shapes):
        eye = np.eye(4, dtype="float32")
        # initial stack table: +1.5 for a matched step, -0.5 with one mismatch, -1 with two
        n_match = (eye[:, None, :, None] + eye[None, :, None, :]).reshape(16, 16)
        table = np.select([n_match == 2, n_match == 1], [1.5, -0.5], -1.0).astype("float32")
        const = keras.initializers.Constant
        self.stack = self.add_weight(name="stack", shape=(16, 16), initializer=const(table))
        self.scalars = {}
        for name, v in (("pair_match", 0.5), ("pair_mismatch", -1.0), ("init", -4.0),
                        ("bulge1", -3.0), ("bulge2", -4.0), ("loop22", -3.0)):
            self.scalars[name] = self.add_weight(name=name, shape=(), initializer=const(v))
        self._la, self._lb = int(input_shapes[0][1]), int(input_shapes[1][1])
        super().build(input_shapes)

    def _energies(self, t, q):
        """Log-weights of closing a pair at (i, j) and of the stack step (i-1, j-1) -> (i, j)."""
        la, lb = self._la, self._lb
        sc = self.scalars
        match = ops.einsum("bic,bjc->bij", t, q)  # (b, la, lb) soft match indicator
        pair = sc["pair_match"] * match + sc["pair_mismatch"] * (1.0 - match)
        # dinucleotides ending at each position (position 0: none -> zeros)
        dt = ops.reshape(ops.einsum("bia,bic->biac", t[:, :-1], t[:, 1:]), (-1, la - 1, 16))
        dq = ops.reshape(ops.einsum("bja,bjc->bjac", q[:, :-1], q[:, 1:]), (-1, lb - 1, 16))
        stk = ops.einsum("bix,xy,bjy->bij", dt, self.stack, dq)  # step (i-1,j-1)->(i,j)
        return pair, stk

    def call(self, inputs):
        if self.loops is not None:
            return self._call_parallel(inputs)
        import tensorflow as tf

        t, q = inputs
        la, lb = self._la, self._lb
        sc = self.scalars
        pair, stk = self._energies(t, q)
        stk = ops.pad(stk, ((0, 0), (1, 0), (1, 0)), constant_values=_NEG)
        # the recursion runs on exp(h - c): products and sums, no logarithm per cell; each row is
        # rescaled by its maximum and the scale c carried in log space (no overflow/underflow of
        # what matters)
        e_pair = tf.transpose(ops.exp(pair), (1, 0, 2))  # (la, b, lb)
        e_stk = tf.transpose(ops.exp(stk), (1, 0, 2))
        e_init = ops.exp(sc["init"])
        e_b1, e_b2, e_l22 = ops.exp(sc["bulge1"]), ops.exp(sc["bulge2"]), ops.exp(sc["loop22"])

        def shift(h, s):  # h[:, j - s], zeros shifted in
            pad = tf.zeros([tf.shape(h)[0], s], h.dtype)
            return tf.concat([pad, h[:, :lb - s]], axis=1)

        def step(carry, xs):
            h1, h2, h3, c1, c2, c3, logz = carry  # rows i-1, i-2, i-3 (scaled) and their log scales
            ep, es = xs
            c = tf.maximum(tf.maximum(c1, c2), c3)  # (b, 1)
            f1, f2, f3 = tf.exp(c1 - c), tf.exp(c2 - c), tf.exp(c3 - c)
            g1, g2, g3 = h1 * f1, h2 * f2, h3 * f3
            closing = (e_init * tf.exp(-c)
                       + e_b1 * (shift(g2, 1) + shift(g1, 2))   # bulge of 1 on either strand
                       + e_b2 * (shift(g3, 1) + shift(g1, 3))   # bulge of 2 on either strand
                       + e_l22 * shift(g3, 3))                  # 2 x 2 internal loop
            raw = shift(g1, 1) * es + closing * ep              # stack / close a new pair
            m = tf.reduce_max(raw, axis=1, keepdims=True)
            m = tf.maximum(m, tf.constant(1e-30, raw.dtype))
            h = raw / m
            cn = c + tf.math.log(m)
            row = tf.math.log(tf.reduce_sum(h, axis=1, keepdims=True)) + cn
            logz = tf.reduce_logsumexp(tf.concat([logz, row], axis=1), axis=1, keepdims=True)
            return (h, h1, h2, cn, c1, c2, logz)

        b = tf.shape(e_pair)[1]
        z0 = tf.zeros([b, lb], e_pair.dtype)
        c0 = tf.zeros([b, 1], e_pair.dtype)
        l0 = tf.fill([b, 1], tf.constant(_NEG, e_pair.dtype))
        out = tf.scan(step, (e_pair, e_stk), initializer=(z0, z0, z0, c0, c0, c0, l0))
        z = out[-1][-1]
        return ops.reshape(z, (-1, 1))

    def _skew_index(self):
        """Gather indices that make diagonals columns: cell (i, d) of the skewed matrix is (i, j =
        i + d - (la - 1)) of a row padded by ``la - 1`` on both sides; and which cells are real."""
        la, lb = self._la, self._lb
        w = lb + 2 * (la - 1)
        i = np.arange(la)[:, None]
        d = np.arange(la + lb - 1)[None, :]
        j = i + d - (la - 1)
        valid = (j >= 0) & (j < lb)
        start = valid & ((i == 0) | (j == 0))
        return (i * w + d + i).astype("int32"), valid, start, w

    def _call_parallel(self, inputs):
        import tensorflow as tf

        t, q = inputs
        la, lb = self._la, self._lb
        n_d = la + lb - 1
        sc = self.scalars
        pair, stk = self._energies(t, q)
        stk = ops.pad(stk, ((0, 0), (1, 0), (1, 0)))
        idx, valid, start, w = self._skew_index()

        def skew(m):  # (b, la, lb) -> (b, la, n_d), zeros outside the matrix
            m = tf.pad(m, [[0, 0], [0, 0], [la - 1, la - 1]])
            return tf.gather(tf.reshape(m, [-1, la * w]), idx, axis=1)

        neg = tf.constant(_NEG, pair.dtype)
        v = tf.constant(valid)
        # stack weight along each diagonal (0 where no helix continues: starts, outside)
        a = skew(stk) * tf.constant((valid & ~start).astype("float32"), pair.dtype)
        cum_a = tf.cumsum(a, axis=1)
        pair_s = skew(pair)

        def helices(log_b):  # x_i = a_i x_(i-1) + b_i along every diagonal, in log space
            b = tf.where(v, log_b, neg)
            h = cum_a + tf.math.cumulative_logsumexp(b - cum_a, axis=1)
            return tf.where(v, h, neg)

        def moved(h, di, dd):  # out[i, d] = h[i - di, d + dd], "impossible" outside
            h = tf.pad(h, [[0, 0], [di, 0], [max(0, -dd), max(0, dd)]], constant_values=_NEG)
            c0 = max(0, dd)
            return h[:, :la, c0:c0 + n_d]

        init = sc["init"] + tf.zeros_like(pair_s)
        h = helices(init + pair_s)
        for _ in range(self.loops):
            closing = tf.reduce_logsumexp(tf.stack([
                init,
                sc["bulge1"] + moved(h, 2, 1), sc["bulge1"] + moved(h, 1, -1),
                sc["bulge2"] + moved(h, 3, 2), sc["bulge2"] + moved(h, 1, -2),
                sc["loop22"] + moved(h, 3, 0)]), axis=0)
            h = helices(closing + pair_s)
        z = tf.reduce_logsumexp(tf.reshape(h, [tf.shape(h)[0], la * n_d]), axis=1)
        return ops.reshape(z, (-1, 1))

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], 1)

    def get_config(self):
        config = super().get_config()
        config.update({"loops": self.loops})
        return config


def build_scan_predictor(length: int = FEATURE_LENGTH, *, context: bool = True,
                         loops: int | None = None, name: str = "predictor") -> keras.Model:
    """The soft duplex scan predictor: ``model([target, query]) -> [yield, energy]``.

    Both sequences get their strands' primer context (target + RP, query + RP[:6], as in the
    simulator) with :class:`AppendContext`, :class:`DuplexScan` gives ``log Z``, and two affine
    heads read it: ``yield`` (Dense 1 sigmoid, in [0, 1]) and ``energy`` (Dense 1 linear, the
    binding free energy in kcal/mol at the hybridization temperature). Initialised from
    constants, so it needs no seed. ``loops``: see :class:`DuplexScan` (None: the row recursion).
    """
    from ..constants import RP, TOEHOLD

    t = keras.Input((length, 4), name="target")
    q = keras.Input((length, 4), name="query")
    t_in, q_in = t, q
    if context:
        t_in = AppendContext(RP, name="target_context")(t)
        q_in = AppendContext(RP[:TOEHOLD], name="query_context")(q)
    z = DuplexScan(loops=loops, name="duplex_scan")([t_in, q_in])
    const = keras.initializers.Constant
    y = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=const(1.0),
                           bias_initializer=const(-8.0), name="yield")(z)
    e = keras.layers.Dense(1, kernel_initializer=const(-1.0), bias_initializer=const(0.0),
                           name="energy")(z)
    return keras.Model([t, q], [y, e], name=name)


def predictor_outputs(out):
    """``(yield, energy or None)`` from a predictor's output (one tensor, or [yield, energy])."""
    if isinstance(out, (list, tuple)):
        return out[0], (out[1] if len(out) > 1 else None)
    if isinstance(out, dict):
        return out["yield"], out.get("energy")
    return out, None
