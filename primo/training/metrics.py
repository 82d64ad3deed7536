"""Training metrics: separation and agreement measures, the per-round CSV log and TensorBoard.

``MODEL/metrics.csv`` (one row per round; round 0 is the untrained encoder after the predictor was
seeded) has the columns of :data:`COLUMNS`:

``round``
    Round number (0 = before encoder training).
``encoder_loss``, ``encoder_bce``, ``encoder_reg``, ``encoder_acc``
    Mean over the round's encoder steps of the total loss, its cross-entropy part, its
    regularization part, and the fraction of training pairs whose *predicted* yield is on the right
    side of 0.5.
``fresh_pairs``, ``fresh_mae``, ``fresh_bce``, ``fresh_agree``, ``fresh_sim_pos``
    Predictor against simulator on the round's fresh encoder outputs (random pairs, encoded,
    discretized and simulated) *before* the predictor is refit on them: mean absolute yield error,
    cross-entropy, fraction agreeing on "yield > 0.5", fraction simulated above 0.5.
``predictor_loss``
    The predictor's cross-entropy after its refit (last epoch).
``eval_similar``, ``eval_dissimilar``
    Held-out similar / dissimilar pairs simulated this round.
``sim_pos_similar``, ``sim_pos_dissimilar``, ``sim_median_similar``, ``sim_median_dissimilar``
    Fraction reaching simulated yield 0.5, and median simulated yield, of held-out similar and
    dissimilar pairs (the quality targets: >= 0.5 and <= 0.01).
``eval_agree``
    Predictor/simulator agreement on "yield > 0.5" over those held-out pairs.
``gc_mean``, ``max_homopolymer``
    Mean GC fraction and mean longest homopolymer of the held-out documents' sequences.
``fresh_uncertain``, ``fresh_far_picked``
    Fresh pairs chosen as the predictor's most uncertain, and as far pairs it predicts to bind
    (``sim_candidates`` > 1; empty otherwise).
``fresh_far_sim_pos``, ``buffer_sim_pos``
    The class balance: share of the fresh dissimilar pairs simulated to yield >= 0.5 (far pairs
    that bind), and of binders in the replay buffer the predictor is refit on.
``capture_p50``, ``capture_p90``, ``capture_map10``, ``capture_probe_far``, ``time_capture_s``
    The held-out mini-database captured with the default protocol
    (:mod:`primo.training.capture_eval`), in the rounds it is evaluated.
``time_encoder_s``, ``time_predictor_s``, ``time_simulation_s``, ``time_eval_s``, ``elapsed_s``
    Seconds spent this round in TensorFlow encoder steps, predictor refits, simulation of fresh
    pairs, held-out evaluation (simulation included); wall time since the start of training.

Plain CSV (no comment lines); the provenance of the run is in ``card.json``.
"""

from __future__ import annotations

import csv
import math

import numpy as np

from ..io import atomic_file

__all__ = ["COLUMNS", "separation", "agreement", "bce", "write_metrics_csv", "TensorBoardLog"]

COLUMNS = [
    "round", "encoder_loss", "encoder_bce", "encoder_reg", "encoder_acc",
    "fresh_pairs", "fresh_mae", "fresh_bce", "fresh_agree", "fresh_sim_pos", "predictor_loss",
    "eval_similar", "eval_dissimilar", "sim_pos_similar", "sim_pos_dissimilar",
    "sim_median_similar", "sim_median_dissimilar", "eval_agree", "gc_mean", "max_homopolymer",
    "time_encoder_s", "time_predictor_s", "time_simulation_s", "time_eval_s", "elapsed_s",
    "fresh_uncertain", "fresh_far_picked", "fresh_far_sim_pos", "buffer_sim_pos",
    "capture_p50", "capture_p90", "capture_map10", "capture_probe_far", "time_capture_s",
]


def _frac(mask) -> float:
    mask = np.asarray(mask)
    return float(mask.mean()) if mask.size else math.nan


def _median(x) -> float:
    x = np.asarray(x)
    return float(np.median(x)) if x.size else math.nan


def separation(yields, similar) -> dict:
    """Fraction >= 0.5 and median of simulated yields, for similar and dissimilar pairs."""
    y = np.asarray(yields, dtype=np.float64)
    s = np.asarray(similar, dtype=bool)
    return {
        "eval_similar": int(s.sum()), "eval_dissimilar": int((~s).sum()),
        "sim_pos_similar": _frac(y[s] >= 0.5), "sim_pos_dissimilar": _frac(y[~s] >= 0.5),
        "sim_median_similar": _median(y[s]), "sim_median_dissimilar": _median(y[~s]),
    }


def bce(pred, target, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of predictions against (soft) targets."""
    p = np.clip(np.asarray(pred, dtype=np.float64), eps, 1 - eps)
    t = np.asarray(target, dtype=np.float64)
    if p.size == 0:
        return math.nan
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


def agreement(pred, sim) -> float:
    """Fraction of pairs on which predictor and simulator agree about "yield > 0.5"."""
    pred = np.asarray(pred)
    sim = np.asarray(sim)
    return _frac((pred > 0.5) == (sim > 0.5))


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return ""
    return f"{v:.6g}"


def write_metrics_csv(path, rows) -> None:
    """Write all rounds' metrics (a list of dicts) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            for row in rows:
                w.writerow([_fmt(row.get(c)) for c in COLUMNS])


class TensorBoardLog:
    """Scalars per round in TensorBoard event files under ``logdir``.

    Written with the core ``tf.summary.write`` op and the "scalars" plugin metadata, which is what
    ``tf.summary.scalar`` writes, so the ``tensorboard`` package is not needed to write them (only
    to view them).
    """

    def __init__(self, logdir):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(logdir))
        self._meta = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        ).SerializeToString()

    def write(self, row: dict) -> None:
        step = int(row["round"])
        with self._writer.as_default():
            for k in COLUMNS[1:]:
                v = row.get(k)
                if v is None:
                    continue
                v = float(v)
                if math.isnan(v):
                    continue
                group = ("encoder" if k.startswith("encoder") else "predictor" if k.startswith(("fresh", "predictor")) else "time" if k.startswith(("time", "elapsed")) else "heldout")
                self._tf.summary.write(f"{group}/{k}", self._tf.constant(v, self._tf.float32),
                                       step=step, metadata=self._meta)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
