"""The TensorFlow side of training: the encoder, the predictor, their optimizers and the compiled
steps (the only module of :mod:`primo.training` that imports TensorFlow at use)."""

from __future__ import annotations

import math

import numpy as np

from ..constants import FEATURE_LENGTH, RP, TOEHOLD
from ..errors import DataError
from ..thermo.equilibrium import GAS_CONSTANT
from .settings import TrainSettings

__all__ = ["Models", "setup_tf", "energy_targets", "context_bases"]

#: RT at 21 °C (kcal/mol): local-match has no energy head; its "energy" for the rank objective is
#: -RT logit(yield), the two-state binding energy relative to the half-yield point
_RT21 = GAS_CONSTANT * (273.15 + 21.0)


def energy_targets(e) -> np.ndarray:
    """Simulated binding energies as regression targets: no duplex (inf) -> 0, clipped to
    [-200, 10] kcal/mol."""
    e = np.nan_to_num(np.asarray(e, dtype=np.float64), nan=0.0, posinf=0.0, neginf=-200.0)
    return np.clip(e, -200.0, 10.0).astype(np.float32)


def context_bases(context: str) -> str:
    return RP[:TOEHOLD] if context == "toehold" else ""


class Models:
    """Encoder, predictor, their optimizers and compiled steps."""

    def __init__(self, s: TrainSettings, dim: int, center, scale, seed: int,
                 encoder=None, predictor=None):
        import keras
        import tensorflow as tf

        from ..encoder.model import SequenceRegularization, build_encoder
        from ..predictor.model import build_predictor, build_scan_predictor

        self.tf = tf
        self.keras = keras
        if encoder is None:
            encoder = build_encoder(dim, hidden=s.hidden, length=FEATURE_LENGTH,
                                    output_activation=s.output_activation, entropy=s.entropy,
                                    gc_balance=s.gc_balance, gc_target=s.gc_target,
                                    homopolymer=s.homopolymer,
                                    max_run=s.max_run, scaling=s.scaling, center=center,
                                    scale=scale, seed=seed)
        if predictor is None and s.predictor == "scan":
            predictor = build_scan_predictor(FEATURE_LENGTH)
        if predictor is None:
            predictor = build_predictor(FEATURE_LENGTH, window=s.window, pool_size=s.pool_size,
                                        conv_filters=s.conv_filters, conv_width=s.conv_width,
                                        global_pool=s.global_pool,
                                        context=context_bases(s.context), seed=seed + 100,
                                        energy_head=s.uses_energies)
        self.encoder = encoder
        self.predictor = predictor
        self.reg = next(l for l in encoder.layers if isinstance(l, SequenceRegularization))
        self.enc_opt = keras.optimizers.get({"class_name": s.encoder_optimizer,
                                             "config": {"learning_rate": s.encoder_lr}})
        self.pred_opt = keras.optimizers.get({"class_name": s.predictor_optimizer,
                                              "config": {"learning_rate": s.predictor_lr}})
        self.enc_opt.build(encoder.trainable_variables)
        self.pred_opt.build(predictor.trainable_variables)

        self.straight_through = s.relaxation == "straight-through"
        self._compile_yield_steps(s)
        self._compile_triplet_step(s)
        self._compile_io()

    # -- the pieces every compiled step shares
    _EPS = 1e-7

    def _bce(self, y, p, w_neg=1.0):
        tf = self.tf
        p = tf.clip_by_value(tf.reshape(p, [-1]), self._EPS, 1 - self._EPS)
        return -tf.reduce_mean(y * tf.math.log(p) + w_neg * (1 - y) * tf.math.log(1 - p))

    def _specs(self):
        """Fixed signatures (any batch size, one trace each): the same graphs, hence the same
        numerics, in a fresh run and in a resumed one."""
        tf = self.tf
        return (tf.TensorSpec([None, self.encoder.input_shape[-1]], tf.float32),
                tf.TensorSpec([None, FEATURE_LENGTH, 4], tf.float32),
                tf.TensorSpec([None], tf.float32))

    def _encode(self, xa, xb):
        """Soft encodings of both sides, and what the predictor sees (straight-through: the
        discrete bases forward, the soft gradient backward)."""
        tf = self.tf
        s_ = self.encoder(tf.concat([xa, xb], 0), training=False)
        h = s_
        if self.straight_through:
            h = s_ + tf.stop_gradient(tf.one_hot(tf.argmax(s_, axis=-1), 4) - s_)
        return s_, h

    def _energy(self, t, q):
        """Predicted binding energy (kcal/mol); without an energy head, -RT logit(yield)."""
        from ..predictor.model import predictor_outputs

        tf = self.tf
        p, en = predictor_outputs(self.predictor([t, q], training=False))
        if en is not None:
            return tf.reshape(en, [-1])
        p = tf.clip_by_value(tf.reshape(p, [-1]), self._EPS, 1 - self._EPS)
        return -_RT21 * (tf.math.log(p) - tf.math.log(1 - p))

    @staticmethod
    def _huber(tf, d):
        a = tf.abs(d)
        return tf.reduce_mean(tf.where(a < 1.0, 0.5 * d * d, a - 0.5))

    # -- compiled steps
    def _compile_yield_steps(self, s: TrainSettings) -> None:
        """The paper's encoder step and the predictor's fit steps (with and without energies)."""
        from ..predictor.model import predictor_outputs

        tf = self.tf
        enc, pred, reg, eopt, popt = (self.encoder, self.predictor, self.reg, self.enc_opt,
                                      self.pred_opt)
        straight_through = self.straight_through
        w_dis = float(s.dissimilar_weight)
        w_energy = float(s.energy_weight)
        feat, onehot, vec = self._specs()

        @tf.function(input_signature=[feat, feat, vec])
        def enc_step(xa, xb, y):
            n = tf.shape(xa)[0]
            with tf.GradientTape() as tape:
                s_, h = self._encode(xa, xb)
                p = predictor_outputs(pred([h[:n], h[n:]], training=False))[0]
                loss_bce = self._bce(y, p, w_dis)
                loss_reg = reg.penalty(s_, h if straight_through else None)
                loss = loss_bce + loss_reg
            grads = tape.gradient(loss, enc.trainable_variables)
            eopt.apply_gradients(zip(grads, enc.trainable_variables))
            acc = tf.reduce_mean(tf.cast(tf.equal(tf.reshape(p, [-1]) > 0.5, y > 0.5), tf.float32))
            return loss, loss_bce, loss_reg, acc

        @tf.function(input_signature=[onehot, onehot, vec])
        def pred_step(t, q, y):
            with tf.GradientTape() as tape:
                loss = self._bce(y, predictor_outputs(pred([t, q], training=True))[0])
            grads = tape.gradient(loss, pred.trainable_variables)
            popt.apply_gradients(zip(grads, pred.trainable_variables))
            return loss

        @tf.function(input_signature=[onehot, onehot, vec, vec])
        def pred_energy_step(t, q, y, e):
            """Yield cross-entropy + energy regression (Huber on kcal/mol / 10)."""
            with tf.GradientTape() as tape:
                p, en = predictor_outputs(pred([t, q], training=True))
                loss = self._bce(y, p)
                if en is not None:
                    loss += w_energy * self._huber(tf, (tf.reshape(en, [-1]) - e) / 10.0)
            grads = tape.gradient(loss, pred.trainable_variables)
            popt.apply_gradients(zip(grads, pred.trainable_variables))
            return loss

        self.enc_step, self.pred_step, self.pred_energy_step = enc_step, pred_step, pred_energy_step

    def _compile_triplet_step(self, s: TrainSettings) -> None:
        """The encoder step of rank / hamming-triplet."""
        tf = self.tf
        enc, reg, eopt = self.encoder, self.reg, self.enc_opt
        straight_through = self.straight_through
        margin = s.margin_value
        objective = s.objective
        feat, _, _ = self._specs()
        idx = tf.TensorSpec([None, None], tf.int32)
        mat = tf.TensorSpec([None, None], tf.float32)

        @tf.function(input_signature=[feat, feat, idx, idx, mat])
        def triplet_step(xa, xb, anchors, neg, w):
            """anchors (A,) index similar pairs (xa[a], xb[a]); neg (A, K) index dissimilar
            candidates among xb, w (A, K) their weights (0 = no candidate)."""
            n = tf.shape(xa)[0]
            anchors = tf.reshape(anchors, [-1])
            k = tf.shape(neg)[1]
            with tf.GradientTape() as tape:
                s_, h = self._encode(xa, xb)
                src = s_ if objective == "hamming-triplet" else h
                ha = tf.gather(src[:n], anchors)                   # (A, L, 4)
                hp = tf.gather(src[n:], anchors)                   # their positives
                hn = tf.gather(src[n:], tf.reshape(neg, [-1]))     # (A*K, L, 4)
                ha_k = tf.repeat(ha, k, axis=0)
                if objective == "hamming-triplet":
                    d_pos = 1.0 - tf.reduce_mean(tf.reduce_sum(ha * hp, -1), -1)
                    d_neg = 1.0 - tf.reduce_mean(tf.reduce_sum(ha_k * hn, -1), -1)
                    viol = tf.nn.relu(d_pos[:, None] - tf.reshape(d_neg, [-1, k]) + margin)
                    wsum = tf.maximum(tf.reduce_sum(w), 1.0)
                    loss_obj = tf.reduce_sum(viol * w) / wsum
                    ok = tf.cast(d_pos[:, None] < tf.reshape(d_neg, [-1, k]), tf.float32)
                    acc = tf.reduce_sum(ok * w) / wsum
                else:
                    e_pos = self._energy(ha, hp)                               # (A,)
                    e_neg = tf.reshape(self._energy(ha_k, hn), [-1, k])        # (A, K)
                    # the hardest candidate: the far document the predictor says binds best
                    e_neg = tf.where(w > 0, e_neg, tf.constant(1e9, tf.float32))
                    hard = tf.reduce_min(e_neg, axis=1)
                    has = tf.cast(tf.reduce_max(w, axis=1) > 0, tf.float32)
                    viol = tf.nn.relu(e_pos - hard + margin) * has
                    loss_obj = tf.reduce_sum(viol) / tf.maximum(tf.reduce_sum(has), 1.0)
                    acc = (tf.reduce_sum(tf.cast(e_pos < hard, tf.float32) * has)
                           / tf.maximum(tf.reduce_sum(has), 1.0))
                loss_reg = reg.penalty(s_, h if straight_through else None)
                loss = loss_obj + loss_reg
            grads = tape.gradient(loss, enc.trainable_variables)
            eopt.apply_gradients(zip(grads, enc.trainable_variables))
            return loss, loss_obj, loss_reg, acc

        self.triplet_step = triplet_step

    def _compile_io(self) -> None:
        """Encoding to codes and predicting yields (no training)."""
        from ..predictor.model import predictor_outputs

        tf = self.tf
        enc, pred = self.encoder, self.predictor
        feat, onehot, _ = self._specs()

        @tf.function(input_signature=[feat])
        def encode_codes(x):
            return tf.cast(tf.argmax(enc(x, training=False), axis=-1), tf.uint8)

        @tf.function(input_signature=[onehot, onehot])
        def predict(t, q):
            return tf.reshape(predictor_outputs(pred([t, q], training=False))[0], [-1])

        self._encode_codes, self._predict = encode_codes, predict

    def encode_codes(self, X, batch: int = 4096) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        out = [self._encode_codes(X[a:a + batch]).numpy() for a in range(0, len(X), batch)]
        return np.concatenate(out) if out else np.zeros((0, FEATURE_LENGTH), np.uint8)

    def predict_codes(self, t_codes, q_codes, batch: int = 4096) -> np.ndarray:
        eye = np.eye(4, dtype=np.float32)
        out = [self._predict(eye[t_codes[a:a + batch]], eye[q_codes[a:a + batch]]).numpy()
               for a in range(0, len(t_codes), batch)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def fit_predictor(self, t_codes, q_codes, y, epochs: int, batch: int,
                      rng: np.random.Generator, energies=None, desc: str = "predictor fit") -> float:
        """Refit the predictor; with ``energies`` (kcal/mol, one per pair) its energy head too.
        A progress bar over the epochs (silent with ``primo -q`` or off a terminal)."""
        from ..progress import progress

        eye = np.eye(4, dtype=np.float32)
        if energies is not None:
            e = energy_targets(energies)
        n = len(y)
        last = math.nan
        for _ in progress(range(epochs), total=epochs, desc=desc, unit="epoch", leave=False):
            order = rng.permutation(n)
            losses = []
            for a in range(0, n, batch):
                idx = order[a:a + batch]
                if len(idx) == 0:
                    continue
                if energies is not None:
                    losses.append(float(self.pred_energy_step(
                        eye[t_codes[idx]], eye[q_codes[idx]], y[idx].astype(np.float32), e[idx])))
                    continue
                losses.append(float(self.pred_step(eye[t_codes[idx]], eye[q_codes[idx]],
                                                   y[idx].astype(np.float32))))
            last = float(np.mean(losses)) if losses else math.nan
        return last

    # -- optimizer state, for checkpoints
    def optimizer_arrays(self) -> dict:
        out = {}
        for name, opt in (("enc_opt", self.enc_opt), ("pred_opt", self.pred_opt)):
            for k, v in enumerate(opt.variables):
                out[f"{name}_{k}"] = np.asarray(v)
        return out

    def load_optimizer_arrays(self, arrays) -> None:
        for name, opt in (("enc_opt", self.enc_opt), ("pred_opt", self.pred_opt)):
            for k, v in enumerate(opt.variables):
                key = f"{name}_{k}"
                if key not in arrays:
                    raise DataError(f"checkpoint lacks optimizer state {key}",
                                    hint="start again without `resume`")
                v.assign(arrays[key])


def setup_tf(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass
