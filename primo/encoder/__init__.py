"""Feature vector -> 80-nt DNA feature region: the learned encoder.

The Keras model and its regularizers live in :mod:`primo.encoder.model` (imports TensorFlow); this
package itself stays light and offers discretization of soft one-hots (argmax per position, channels
A, C, G, T) and batched encoding with any Keras encoder:

>>> import numpy as np
>>> to_sequences(np.eye(4, dtype="float32")[[[0, 1, 2, 3]]])
['ACGT']
"""

from __future__ import annotations

import numpy as np

from ..dna import decode_seqs

__all__ = ["to_sequences", "to_hard_onehot", "encode_onehot", "build_encoder", "load_encoder"]


def to_sequences(soft: np.ndarray) -> list[str]:
    """Soft one-hots (N x L x 4) -> DNA strings, reading each position by argmax."""
    soft = np.asarray(soft)
    if soft.ndim == 2:
        soft = soft[None]
    return decode_seqs(soft.argmax(axis=-1).astype(np.uint8))


def to_hard_onehot(soft: np.ndarray) -> np.ndarray:
    """Soft one-hots -> exact one-hots (float32) of their argmax sequences."""
    soft = np.asarray(soft)
    return np.eye(soft.shape[-1], dtype=np.float32)[soft.argmax(axis=-1)]


def encode_onehot(encoder, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Run ``encoder`` (a Keras model) over ``X`` in batches; returns soft one-hots (float32)."""
    X = np.asarray(X, dtype=np.float32)
    out = []
    for start in range(0, len(X), batch_size):
        out.append(np.asarray(encoder(X[start:start + batch_size], training=False)))
    if not out:
        return np.zeros((0, *encoder.output_shape[1:]), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def build_encoder(*args, **kwargs):
    """See :func:`primo.encoder.model.build_encoder` (imports TensorFlow on first use)."""
    from .model import build_encoder as _build

    return _build(*args, **kwargs)


def load_encoder(path):
    """See :func:`primo.encoder.model.load_encoder` (imports TensorFlow on first use)."""
    from .model import load_encoder as _load

    return _load(path)
