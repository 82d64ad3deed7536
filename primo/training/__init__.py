"""Alternating encoder / yield-predictor training (``primo train``).

* :mod:`primo.training.data`: feature sources, block-streamed similar / dissimilar pair sampling,
  threshold calibration, held-out pairs.
* :mod:`primo.training.trainer`: :class:`~primo.training.trainer.TrainSettings` and
  :func:`~primo.training.trainer.train` (seeding, rounds, checkpoints, resume, the model card).
* :mod:`primo.training.metrics`: the per-round ``metrics.csv`` and TensorBoard scalars.
* :mod:`primo.training.plots`: the Fig. 2D/E-like figure of simulated yields by distance.

Importing this package does not import TensorFlow; :func:`train` does.
"""

from __future__ import annotations

__all__ = ["TrainSettings", "train"]


def __getattr__(name):
    if name in ("TrainSettings", "train"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
