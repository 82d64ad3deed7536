"""Alternating encoder / yield-predictor training (``primo train``).

* :mod:`primo.training.data`: feature sources, block-streamed similar / dissimilar pair sampling,
  threshold calibration, held-out pairs.
* :mod:`primo.training.settings`: :class:`~primo.training.settings.TrainSettings`, every setting
  with its default, bounds and help, and the rules that resolve them (TensorFlow-free).
* :mod:`primo.training.trainer`: :func:`~primo.training.trainer.train`: seeding, the rounds and
  their phases, resume.
* :mod:`primo.training.steps`: the encoder, the predictor, their optimizers and compiled steps
  (the TensorFlow side).
* :mod:`primo.training.checkpoint`: what ``--resume`` continues from.
* :mod:`primo.training.card`: the model card's sections, from a finished run.
* :mod:`primo.training.capture_eval`: the held-out mini-database captured during training.
* :mod:`primo.training.metrics`: the per-round ``metrics.csv`` and TensorBoard scalars.
* :mod:`primo.training.plots`: the Fig. 2D/E-like figure of simulated yields by distance.

Importing this package does not import TensorFlow; :func:`train` does.
"""

from __future__ import annotations

__all__ = ["TrainSettings", "train"]


def __getattr__(name):
    if name == "TrainSettings":
        from .settings import TrainSettings

        return TrainSettings
    if name == "train":
        from .trainer import train

        return train
    raise AttributeError(name)
