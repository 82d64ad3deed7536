"""Checkpoints of a training run: what ``primo train --resume`` continues from.

``MODEL/checkpoint/`` (replaced atomically after every round) holds the models, the optimizer
states, the replay buffer, the random generator states and the metrics so far; ``MODEL/
checkpoint-best/`` the best capture-evaluated round's models while training runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..io import atomic_dir, json_default

__all__ = ["CHECKPOINT", "BEST", "read_checkpoint", "write_checkpoint"]

CHECKPOINT = "checkpoint"
#: the encoder and predictor of the best capture-evaluated round so far (removed when training ends)
BEST = "checkpoint-best"
_STATE = "state.json"
_ARRAYS = "arrays.npz"


def write_checkpoint(directory: Path, models, state: dict, arrays: dict) -> None:
    """Replace ``directory`` atomically with the models, ``arrays`` (npz) and ``state`` (JSON)."""
    with atomic_dir(directory, command="train") as tmp:
        models.encoder.save(tmp / "encoder.keras")
        models.predictor.save(tmp / "predictor.keras")
        np.savez(tmp / _ARRAYS, **arrays, **models.optimizer_arrays())
        (tmp / _STATE).write_text(json.dumps(state, default=json_default), encoding="utf-8")


def read_checkpoint(out: Path):
    ck = out / CHECKPOINT
    if not (ck / _STATE).exists():
        raise UsageError(f"nothing to resume: {out} has no checkpoint",
                         hint="start training without `resume`")
    try:
        state = json.loads((ck / _STATE).read_text(encoding="utf-8"))
        arrays = dict(np.load(ck / _ARRAYS))
    except (OSError, ValueError) as e:
        raise DataError(f"checkpoint is unreadable ({e})", path=ck,
                        hint="delete it and train again without `resume`") from None
    return ck, state, arrays
