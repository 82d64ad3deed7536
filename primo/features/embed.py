"""A small learned embedding for Fashion-MNIST, trained with a triplet loss (paper 003).

Architecture (defined here, weights shipped in ``primo/data/fashion_embed.npz``)::

    28 x 28 x 1 grayscale in [0, 1]
    -> Conv 32 3x3 ReLU -> Conv 32 3x3 ReLU -> MaxPool 2      (14 x 14)
    -> Conv 64 3x3 ReLU -> Conv 64 3x3 ReLU -> MaxPool 2      (7 x 7)
    -> Conv 128 3x3 ReLU -> MaxPool 2 -> Flatten              (3 x 3 x 128)
    -> Dense 64 -> L2 normalisation (keras UnitNormalization)

The embedding is L2-normalised, so Euclidean distances lie in [0, 2] and equal
sqrt(2 - 2 cos); with the triplet loss below this gives neighbors that share a class far more often
than raw pixels do: mAP@10 0.925 against 0.861 for raw pixels (queries: the 10,000 test images,
database: the 60,000 training images; see :func:`primo.evaluation.neighbors.map_at_k` and
``experiments/train_fashion_embed.py``).

Training: batches of P classes x K images drawn at random from the training split, "batch-all"
triplet loss (Hermans et al. 2017): every (anchor, positive, negative) triplet of the batch,
loss = mean of max(0, d(a, p) - d(a, n) + margin) over the triplets where it is positive; Adam
with a cosine-decayed learning rate (defaults: 10 epochs of 375 batches of 10 x 16 images, margin
0.3, flips and 2-pixel shifts; about 22 minutes on 2 busy CPU cores). No pickle anywhere: the weights
file is a plain ``.npz`` of float32 arrays (``w000``, ``w001``, ... in ``model.get_weights()`` order)
plus ``meta`` (a JSON string: architecture version, training settings, measured mAP@10), loaded
with ``allow_pickle=False`` into the architecture built here.

Input convention: as in Fashion-MNIST, the object is bright on a dark background. Photographs of
objects on white backgrounds should be inverted first (``invert=True`` in the extractor).
"""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["build_embedder", "load_embedder", "save_embedder", "embed", "train_embedder",
           "WEIGHTS_NAME", "EMBED_DIM", "INPUT_SIZE", "ARCH_VERSION"]

WEIGHTS_NAME = "fashion_embed.npz"
EMBED_DIM = 64
INPUT_SIZE = 28
ARCH_VERSION = "fashion-embed-cnn-v1"

_CACHE: dict = {}


def build_embedder(dim: int = EMBED_DIM):
    """The (untrained) Keras model: (N, 28, 28, 1) float in [0, 1] -> (N, dim), unit length."""
    import keras
    from keras import layers

    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="image")
    x = inp
    for i, (filters, n_conv) in enumerate([(32, 2), (64, 2), (128, 1)]):
        for j in range(n_conv):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}_{j}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dim, name="embedding")(x)
    out = layers.UnitNormalization(name="l2norm")(x)
    return keras.Model(inp, out, name="fashion_embed")


def save_embedder(model, path, meta: dict | None = None) -> None:
    """Write the weights (+ metadata) as a pickle-free ``.npz``."""
    from ..io import atomic_file

    arrays = {f"w{i:03d}": np.asarray(w, dtype=np.float32) for i, w in enumerate(model.get_weights())}
    meta = dict(meta or {})
    meta.setdefault("architecture", ARCH_VERSION)
    meta.setdefault("dim", int(model.output_shape[-1]))
    with atomic_file(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **arrays)


def _default_weights() -> Path:
    from .datasets import data_path

    return data_path(WEIGHTS_NAME)


def load_embedder(path=None):
    """``(model, meta)`` with the shipped (or given) weights; cached per path."""
    path = Path(path) if path is not None else _default_weights()
    key = str(path.resolve()) if path.exists() else str(path)
    if key in _CACHE:
        return _CACHE[key]
    if not path.is_file():
        raise UsageError(f"Fashion-MNIST embedder weights {path} not found",
                         hint="reinstall primo, or regenerate them with experiments/train_fashion_embed.py")
    from ..io import check_zip_size

    check_zip_size(path, "embedder weights file")   # an .npz is a zip archive
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            weights = [z[k] for k in sorted(k for k in z.files if k.startswith("w"))]
    except (ValueError, KeyError, OSError) as e:
        raise DataError(f"not a primo embedder weights file ({e})", path=path,
                        hint="use a file written by experiments/train_fashion_embed.py") from None
    if meta.get("architecture") != ARCH_VERSION:
        raise DataError(f"embedder weights are for architecture {meta.get('architecture')!r}, "
                        f"this primo builds {ARCH_VERSION!r}", path=path,
                        hint="regenerate them with experiments/train_fashion_embed.py")
    model = build_embedder(int(meta.get("dim", EMBED_DIM)))
    shapes = [tuple(w.shape) for w in model.get_weights()]
    if shapes != [tuple(w.shape) for w in weights]:
        raise DataError("embedder weights do not fit the architecture", path=path,
                        hint="regenerate them with experiments/train_fashion_embed.py")
    model.set_weights(weights)
    _CACHE[key] = (model, meta)
    return model, meta


def _as_input(images) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise UsageError(f"the Fashion-MNIST embedder takes N x 28 x 28 grayscale images, got {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    return x.astype(np.float32)[..., None]


_INFERENCE = weakref.WeakKeyDictionary()


def _inference(model):
    """The model's forward pass as one TensorFlow graph (traced once per model, any batch size).

    The network is many small ops; called op by op (Keras' eager ``model(x)``) it costs ~25 % more
    CPU than as a graph (measured: 532 against 416 us per image on 2 cores), and the values are the
    same, bit for bit (``tests/test_embed_graph.py``)."""
    try:
        return _INFERENCE[model]
    except (KeyError, TypeError):
        pass
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False), input_signature=[
        tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)])
    try:
        _INFERENCE[model] = fn
    except TypeError:  # pragma: no cover - a model that takes no weak reference
        pass
    return fn


def embed(images, batch_size: int = 1024, model=None) -> np.ndarray:
    """Embed images (N x 28 x 28, uint8 0-255 or float 0-1) with the shipped weights -> (N, 64) float32."""
    if model is None:
        model, _ = load_embedder()
    x = _as_input(images)
    out = np.empty((len(x), model.output_shape[-1]), dtype=np.float32)
    run = _inference(model)
    for a in range(0, len(x), batch_size):
        out[a:a + batch_size] = np.asarray(run(x[a:a + batch_size]))
    return out


def train_embedder(images, labels, *, epochs: int = 10, steps_per_epoch: int | None = None,
                   classes_per_batch: int = 10, per_class: int = 16, margin: float = 0.3,
                   mining: str = "all",
                   learning_rate: float = 1e-3, seed: int = 0, dim: int = EMBED_DIM,
                   augment: bool = True, log=None):
    """Train the embedder with a batch-hard triplet loss; returns ``(model, history)``.

    Parameters
    ----------
    images : uint8 (N, 28, 28)
    labels : int (N,)
    epochs, steps_per_epoch : int
        ``steps_per_epoch`` defaults to N / batch size.
    classes_per_batch, per_class : int
        Each batch holds ``per_class`` images of each of ``classes_per_batch`` classes.
    margin : float
        Triplet margin (embeddings are unit vectors, distances in [0, 2]).
    mining : {"all", "hard"}
        "all": mean loss over the batch's violating triplets (batch-all; stable on Fashion-MNIST,
        whose shirt / T-shirt / pullover classes overlap); "hard": batch-hard (hardest positive and
        negative per anchor), which tends to collapse here.
    augment : bool
        Random horizontal flips and shifts of up to 2 pixels.
    log : callable, optional
        Called with one line of text per epoch.

    Notes
    -----
    Seeds Python, numpy and TensorFlow globally (``keras.utils.set_random_seed(seed)``) so that a
    run is reproducible; call ``tf.config.experimental.enable_op_determinism()`` first for
    bit-identical weights (``experiments/train_fashion_embed.py`` does).
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels).astype(np.int64)
    classes = np.unique(labels)
    by_class = [np.flatnonzero(labels == c) for c in classes]
    P = min(classes_per_batch, len(classes))
    batch = P * per_class
    steps = steps_per_epoch or max(1, len(images) // batch)
    X = (np.asarray(images, dtype=np.float32) / 255.0)[..., None]
    model = build_embedder(dim)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps, alpha=0.05)
    opt = keras.optimizers.Adam(schedule)

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            e = model(x, training=True)
            d2 = tf.maximum(2.0 - 2.0 * tf.matmul(e, e, transpose_b=True), 0.0)
            d = tf.sqrt(d2 + 1e-12)
            same = tf.equal(y[:, None], y[None, :])
            eye = tf.eye(tf.shape(y)[0], dtype=tf.bool)
            pos = tf.logical_and(same, tf.logical_not(eye))
            if mining == "hard":
                hardest_pos = tf.reduce_max(tf.where(pos, d, 0.0), axis=1)
                hardest_neg = tf.reduce_min(tf.where(same, 4.0, d), axis=1)
                viol = hardest_pos - hardest_neg + margin
                loss = tf.reduce_mean(tf.nn.relu(viol))
                frac_active = tf.reduce_mean(tf.cast(viol > 0, tf.float32))
            else:
                # batch-all: every (anchor, positive, negative) of the batch, mean over the active ones
                t = d[:, :, None] - d[:, None, :] + margin
                valid = tf.logical_and(pos[:, :, None], tf.logical_not(same)[:, None, :])
                t = tf.where(valid, tf.nn.relu(t), 0.0)
                n_active = tf.reduce_sum(tf.cast(t > 1e-9, tf.float32))
                loss = tf.reduce_sum(t) / (n_active + 1e-9)
                frac_active = n_active / tf.reduce_sum(tf.cast(valid, tf.float32))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss, frac_active

    history = []
    for ep in range(epochs):
        losses, actives = [], []
        for _ in range(steps):
            cls = rng.choice(len(classes), P, replace=False)
            idx = np.concatenate([rng.choice(by_class[c], per_class, replace=len(by_class[c]) < per_class)
                                  for c in cls])
            xb = X[idx]
            if augment:
                xb = _augment(xb, rng)
            loss, act = step(tf.constant(xb), tf.constant(labels[idx]))
            losses.append(float(loss))
            actives.append(float(act))
        rec = {"epoch": ep + 1, "loss": float(np.mean(losses)), "active_triplets": float(np.mean(actives))}
        history.append(rec)
        if log:
            log(f"epoch {ep + 1}/{epochs}: loss {rec['loss']:.4f}, active triplets {rec['active_triplets']:.3f}")
    return model, history


def _augment(xb: np.ndarray, rng) -> np.ndarray:
    """Random horizontal flips and integer shifts of up to 2 pixels (zero fill)."""
    out = xb.copy()
    flip = rng.random(len(xb)) < 0.5
    out[flip] = out[flip, :, ::-1]
    shifts = rng.integers(-2, 3, size=(len(xb), 2))
    for s in np.unique(shifts, axis=0):
        sel = np.flatnonzero((shifts == s).all(axis=1))
        if not s.any():
            continue
        moved = np.roll(out[sel], shift=(int(s[0]), int(s[1])), axis=(1, 2))
        if s[0] > 0:
            moved[:, :s[0]] = 0
        elif s[0] < 0:
            moved[:, s[0]:] = 0
        if s[1] > 0:
            moved[:, :, :s[1]] = 0
        elif s[1] < 0:
            moved[:, :, s[1]:] = 0
        out[sel] = moved
    return out
