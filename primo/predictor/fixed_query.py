"""Exact fast evaluation of the yield predictor for one query against many targets.

In the in-silico experiment one probe meets every database document. For a fixed query the
predictor's first stages are linear in the target one-hot: the local-match features are products
``t[p+i, c] * q[p+j, c]`` (linear in ``t``), average pooling is linear, and the convolution's
pre-activation is affine. So for that query the whole front of the network is one affine map
``z = onehot(t) @ B + b0`` (``B``: ``(L*4) x (positions*filters)``, 320 x 864 for the paper's
sizes), found exactly by evaluating the Keras layers on the zero target and the 320 basis targets.
What remains — tanh, global average, logistic — is a few element-wise operations. One matrix
product per chunk of documents replaces the Keras graph: ~10x faster on a CPU, same numbers to
float32 rounding.

:class:`FixedQueryPredictor` checks its own answers against the Keras model on a sample of random
targets when it is built and refuses (``ValueError``) a predictor whose architecture does not have
this shape; callers then fall back to the Keras model.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FixedQueryPredictor"]

_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "linear": lambda x: x,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


class FixedQueryPredictor:
    """``predictor([t, q])`` for a fixed query ``q``, as an affine map plus element-wise tail.

    Parameters
    ----------
    predictor : keras.Model
        the yield predictor (:func:`primo.predictor.model.build_predictor` structure: layers
        ``local_match``, ``local_pool``, ``conv``, ``global_pool``, ``yield``).
    query_onehot : array (L, 4)
        the query feature region, one-hot, in the same sense as the targets.
    check : int
        random targets on which the result is compared with the Keras model (0: no check).
    """

    def __init__(self, predictor, query_onehot, check: int = 256, tolerance: float = 1e-4,
                 seed: int = 0):
        import keras

        q = np.asarray(query_onehot, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != 4:
            raise ValueError(f"query one-hot must be L x 4, got {q.shape}")
        names = {layer.name for layer in predictor.layers}
        needed = {"local_pool", "conv", "global_pool", "yield"}
        if not needed <= names:
            raise ValueError(f"predictor lacks layers {sorted(needed - names)}")
        conv = predictor.get_layer("conv")
        dense = predictor.get_layer("yield")
        act_name = keras.activations.serialize(conv.activation)
        act_name = act_name if isinstance(act_name, str) else act_name.get("config", {}).get("name", "")
        dense_act = keras.activations.serialize(dense.activation)
        dense_act = dense_act if isinstance(dense_act, str) else dense_act.get("config", {}).get("name", "")
        if act_name not in _ACTIVATIONS or dense_act != "sigmoid":
            raise ValueError(f"unsupported activations {act_name!r} / {dense_act!r}")
        if conv.get_config().get("padding", "valid") != "valid" or \
                tuple(conv.get_config().get("strides", (1,))) != (1,) or \
                tuple(conv.get_config().get("dilation_rate", (1,))) != (1,):
            raise ValueError("unsupported convolution settings")
        L = q.shape[0]
        front = keras.Model(predictor.inputs, predictor.get_layer("local_pool").output)
        basis = np.concatenate([np.zeros((1, L * 4), np.float32),
                                np.eye(L * 4, dtype=np.float32)]).reshape(-1, L, 4)
        pooled = np.asarray(front([basis, np.broadcast_to(q, basis.shape)], training=False),
                            dtype=np.float64)
        p0, pb = pooled[0], pooled[1:] - pooled[0]
        kernel, bias = [np.asarray(w, dtype=np.float64) for w in conv.get_weights()[:2]]
        width = kernel.shape[0]
        n_out = p0.shape[0] - width + 1

        def conv_linear(P):  # (..., n_pool, F) -> (..., n_out, filters), no bias
            return sum(np.einsum("...pg,gf->...pf", P[..., w:w + n_out, :], kernel[w])
                       for w in range(width))

        self.B = conv_linear(pb).reshape(L * 4, -1).astype(np.float32)
        self.b0 = (conv_linear(p0) + bias).reshape(-1).astype(np.float32)
        self.n_out, self.filters = n_out, kernel.shape[2]
        self.activation = _ACTIVATIONS[act_name]
        w, b = dense.get_weights()[:2]
        self.dense_w = np.asarray(w, dtype=np.float32).reshape(-1)
        self.dense_b = float(np.asarray(b).reshape(-1)[0])
        self.length = L
        if check:
            rng = np.random.default_rng(seed)
            codes = rng.integers(0, 4, (check, L)).astype(np.uint8)
            codes[0] = q.argmax(-1)  # the perfect match too
            t = np.eye(4, dtype=np.float32)[codes]
            ref = np.asarray(predictor([t, np.broadcast_to(q, t.shape)], training=False)).reshape(-1)
            got = self(codes)
            err = float(np.max(np.abs(ref - got)))
            if not err <= tolerance:
                raise ValueError(f"fast predictor disagrees with the Keras model by {err:.2g}")

    def __call__(self, codes, chunksize: int = 32768) -> np.ndarray:
        """Yields for targets given as uint8 codes (N x L, A=0 C=1 G=2 T=3)."""
        codes = np.asarray(codes)
        n = len(codes)
        out = np.empty(n, dtype=np.float32)
        eye = np.eye(4, dtype=np.float32)
        for a in range(0, n, chunksize):
            t = eye[codes[a:a + chunksize]].reshape(-1, self.length * 4)
            z = t @ self.B
            z += self.b0
            h = self.activation(z).reshape(len(t), self.n_out, self.filters).mean(axis=1)
            logit = h @ self.dense_w + self.dense_b
            out[a:a + len(t)] = 1.0 / (1.0 + np.exp(-logit))
        return out
