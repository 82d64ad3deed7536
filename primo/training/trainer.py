"""Alternating encoder / predictor training (``primo train``).

The loop of paper 002 (Fig. 2C), with DESIGN.md's defaults as the defaults of
:class:`TrainSettings`:

1. **Seed the predictor**: ``seed_pairs`` random 80-nt targets, each with a query that is the target
   mutated at a rate drawn uniformly from [0, 1] (every position replaced, with that probability, by
   another base), simulated, and the predictor fit for ``seed_epochs`` epochs. These pairs start the
   replay buffer.
2. **Rounds**, each:

   * *encoder phase*: ``steps`` steps of ``batch_size`` pairs, half similar (distance <=
     threshold, :class:`~primo.training.data.PairSampler`), predictor frozen; loss = binary
     cross-entropy(predicted yield of the two soft one-hots, similar) + the encoder's regularizers
     (entropy, optional GC balance / homopolymer; :class:`primo.encoder.model.SequenceRegularization`).
   * *predictor phase*: ``sim_pairs`` random pairs (unbalanced, or with ``sim_similar_fraction``
     of similar ones), encoded, discretized (argmax), simulated by the
     :class:`~primo.thermo.simulator.Simulator` through the pluggable map; the predictor is
     scored on them (the "fresh" metrics), they join the replay buffer (the last ``replay`` pairs),
     and the predictor is refit for ``predictor_epochs`` epochs on the buffer, encoder frozen.
   * *evaluation* (every ``eval_every`` rounds): held-out similar and random pairs are encoded and
     simulated; the separation metrics go to ``metrics.csv`` and TensorBoard.
   * *checkpoint*: ``MODEL/checkpoint/`` is replaced atomically (models, optimizer states, replay
     buffer, random generator states, metrics so far), so an interrupted run resumes after its last
     complete round, and ends with the same model as an uninterrupted one.

3. **Finish**: a larger held-out evaluation, ``encoder.keras``, ``predictor.keras``, the figure and,
   last, ``card.json`` (see :mod:`primo.model_dir`).

Reproducibility: with a ``seed`` (one is drawn and recorded when none is given) every random choice
comes from numpy generators spawned from it, model initializers are seeded, and TensorFlow op
determinism is enabled, so the same seed gives the same model on a CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..constants import ANNEAL_FROM_C, TEMPERATURE_C, FEATURE_LENGTH, FP, IP, RP, BARCODE_LENGTH, OLIGO_LENGTH, PROBE_PREFIX, TOEHOLD
from ..errors import DataError, UsageError
from ..io import atomic_dir, atomic_file, json_default, provenance
from ..progress import progress
from . import data as _data
from .metrics import COLUMNS, TensorBoardLog, agreement, bce, separation, write_metrics_csv

__all__ = ["TrainSettings", "train", "mutate_codes", "seed_pair_codes", "TrainResult",
           "PREDICTORS", "OBJECTIVES", "DEFAULT_OBJECTIVE", "DEFAULT_PREDICTOR",
           "DEFAULT_NEIGHBORS"]

#: ``--predictor`` choices (the first is the paper's; :data:`primo.predictor.model.PREDICTORS`)
PREDICTORS = ("local-match", "scan")
#: ``--objective`` choices (the first is the paper's)
OBJECTIVES = ("paper", "rank", "hamming-triplet")
#: what ``primo train`` uses when no ``--objective`` / ``--predictor`` is given: the best measured
#: configuration (README, "Training for the capture: predictors and objectives side by side
#: (measured)"; ``scripts/compare_objectives.py`` and ``scripts/compare_full_database.py``). Every
#: model card names it (``objective.primo_default``).
DEFAULT_OBJECTIVE = "paper"
DEFAULT_PREDICTOR = "local-match"
#: similarity for training when neither ``--threshold`` nor ``--threshold-quantile`` is given
#: (``neighbors="auto"``): each document's ``DEFAULT_NEIGHBORS`` nearest training documents, at
#: most :data:`NEIGHBORS_MAX_FRACTION` of them (at least 1), instead of the paper's global
#: distance threshold
DEFAULT_NEIGHBORS = 100
#: the automatic neighbourhood never holds more than this share of the training documents
NEIGHBORS_MAX_FRACTION = 0.005
DEFAULT_CHOICE = ("the paper's objective and local-match predictor, trained with similarity by "
                  "neighbourhood (--neighbors 100) instead of the paper's global threshold, "
                  "against the simulator at 80 C (--train-temperature 80) for the 21 C "
                  "hybridization: the best measured on the full Fashion-MNIST database (60,000 "
                  "documents, 40 test queries, 3 seeds each) under the default anneal protocol "
                  "with the capped ViennaRNA loop enthalpies: 90 % recall reached by 3 of 3 "
                  "seeds, at 15.4 % +- 11.0 of the database (highest recall 94.4 % +- 1.0), 50 % "
                  "recall at 0.88x +- 0.01 MRPT, mAP@10 0.946; trained at 21 C: 90 % reached by "
                  "2 of 3 seeds (highest 89.8 % +- 1.1), 0.80x +- 0.02 MRPT; the paper's threshold "
                  "gave 0.88-5.3x and rank + local-match, rank + scan and hamming-triplet "
                  "9.8-15.9x (README, 'Training for the capture'); --paper gives the paper's "
                  "method")
#: temperature (°C) of the simulator that trains the predictor when none is given (``primo
#: train`` without ``--train-temperature``): the yields the encoder learns against. None: the
#: hybridization temperature (the paper trains where it hybridizes). Never below the
#: hybridization temperature (:func:`default_train_temperature`). 80 °C: near the top of the
#: anneal, where a yield of 0.5 at 1 nM says a duplex locks early enough to win the probe; the
#: best measured (:data:`DEFAULT_CHOICE`).
DEFAULT_TRAIN_TEMPERATURE_C = 80.0
#: default margins: rank (kcal/mol of predicted binding energy), hamming-triplet (fraction of the
#: 80 positions)
DEFAULT_MARGINS = {"rank": 2.0, "hamming-triplet": 0.1}
#: RT at 21 °C (kcal/mol): local-match has no energy head; its "energy" for the rank objective is
#: -RT logit(yield), the two-state binding energy relative to the half-yield point
_RT21 = 0.0019872 * (273.15 + 21.0)

CHECKPOINT = "checkpoint"
#: the encoder and predictor of the best capture-evaluated round so far (removed when training ends)
BEST = "checkpoint-best"
_STATE = "state.json"
_ARRAYS = "arrays.npz"


@dataclasses.dataclass
class TrainSettings:
    """Every setting of a training run (recorded in the model card).

    Attributes
    ----------
    threshold : float or None
        Similarity threshold (Euclidean distance); None = calibrate (``--threshold auto``).
    threshold_quantile : float
        For ``auto``: the fraction of random pairs that count as similar.
    neighbors : int, "auto" or None
        Similarity by neighbourhood instead of a threshold (``--neighbors K``): a pair is similar
        when either document is among the other's K nearest training documents, whatever the
        local density (:class:`~primo.training.data.PairSampler`). ``"auto"`` (primo's default):
        K = :data:`DEFAULT_NEIGHBORS`, at most :data:`NEIGHBORS_MAX_FRACTION` of the training
        documents (at least 1). Distances are then in units of the pair's neighbourhood radius
        and the threshold is 1. None: the paper's global ``threshold`` (``--threshold``).
    rounds, steps, batch_size
        Rounds of alternation; encoder steps per round; pairs per encoder step.
    seed_pairs, seed_epochs, seed_mutants
        Random mutant pairs that seed the predictor, its epochs on them, and how many mutants
        share one random target (1 in the paper; more is cheaper to simulate).
    sim_pairs, sim_docs, sim_similar_fraction
        Fresh pairs simulated per round; the number of documents they are drawn among (default
        ``sim_pairs // 4``: each document's strands then serve about 8 pairs, which the
        simulator's strand cache makes about twice cheaper than all-new documents); the share of
        similar pairs among them, and of near dissimilar pairs (``near_factor``; the predictor
        then learns the transition region the encoder is pushed into).
    predictor_epochs, predictor_batch, replay
        Refit epochs per round, its batch size, and the replay buffer capacity (pairs).
    relaxation : {"straight-through", "soft"}
        What the frozen predictor sees in the encoder phase: the soft one-hots (the paper), or
        the discretized (argmax) one-hots with the soft ones' gradient (straight-through), i.e.
        exactly the sequences the simulator will see.
    hard_negatives, near_factor, dissimilar_weight
        Share of the dissimilar pairs of encoder batches drawn among the *near* ones
        (``threshold < distance <= near_factor * threshold``) rather than uniformly (0 in the
        paper); loss weight of the dissimilar pairs relative to the similar ones (1 in the paper).
    encoder_optimizer, encoder_lr, predictor_optimizer, predictor_lr
        Optimizers (any ``keras.optimizers`` name) and learning rates.
    hidden, output_activation, entropy, gc_balance, gc_target, homopolymer, max_run, scaling
        Encoder architecture and regularizers (:func:`primo.encoder.model.build_encoder`).
    window, pool_size, conv_filters, conv_width, global_pool, context
        Predictor architecture (:func:`primo.predictor.model.build_predictor`); ``context`` is
        ``""`` (the paper) or ``"toehold"``: the probe's ``RP[:6]`` appended to both sequences.
    heldout_rows, eval_pairs, final_eval_pairs, eval_every
        Held-out rows (never trained on); similar and random held-out pairs simulated each
        evaluated round and at the end.
    block_rows, refresh_every
        Pair-sampling block size (rows) and how often (rounds) a new block is loaded.
    seed : int or None
        Random seed (None: drawn from the OS and recorded).
    predictor : {"local-match", "scan"}
        The paper's local-match network, or the soft duplex scan
        (:class:`primo.predictor.model.DuplexScan`), which also predicts the binding free energy
        and is fit to the simulator's energies as well as its yields (``energy_weight``).
    objective : {"paper", "rank", "hamming-triplet"}
        Encoder loss: the paper's yield cross-entropy; ``rank``: each anchor of a similar pair
        must out-bind (lower predicted energy) the hardest of ``rank_candidates`` in-batch
        dissimilar documents by ``margin`` kcal/mol; ``hamming-triplet``: predictor-free triplet
        loss on the soft-one-hot Hamming distance (fraction of positions), margin ``margin``.
    margin : float or None
        Triplet margin (None: :data:`DEFAULT_MARGINS`).
    rank_candidates : int
        Dissimilar in-batch candidates per anchor for ``rank`` and ``hamming-triplet``.
    energy_weight : float
        Weight of the energy regression (Huber on kcal/mol / 10) in the predictor's loss, for
        predictors with an energy head.
    energy_head : bool or None
        Give local-match an energy head (a linear read-out of its pooled features, fit to the
        simulator's binding energies). None: on for every objective but the paper's (the
        ``rank`` objective ranks by it); the scan always has one.
    sim_candidates, sim_uncertain, sim_far_binders
        Predictor-phase sampling: draw ``sim_candidates`` x ``sim_pairs`` candidate pairs (1 =
        the paper: the fresh pairs are random), score them with the current predictor, and
        simulate the ``sim_uncertain`` share whose predicted yield is closest to 0.5, the
        ``sim_far_binders`` share of dissimilar pairs the predictor scores highest (the far pairs
        that bind, which random pairs hold only ~3 % of), and random pairs for the rest.
    capture_eval_docs, capture_eval_queries, capture_eval_k, capture_eval_every,
    capture_eval_refine, capture_eval_sample
        The held-out mini-database captured with the default protocol
        (:mod:`primo.training.capture_eval`): its documents (0 = off), queries, nearest
        neighbours for recall, every how many rounds (and at the last), and the cascade's refined
        and sampled documents per query.
    hybridization_c : float or None
        The protocol's hybridization temperature (°C, the anneal's end) the model is trained for:
        the capture evaluation ends its anneal there, and the card records it for ``primo
        simulate``. None: :func:`train` sets it, to the temperature of a simulator it is handed,
        else to 21 °C (the paper's protocol). Set apart from the simulator's temperature, the
        encoder trains against yields at a more stringent temperature than the lab's (``primo
        train --train-temperature``).
    train_temperature_c : float or None
        Temperature (°C) of the simulator :func:`train` builds when it is given none: the yields
        the predictor learns. None: :func:`default_train_temperature` of the hybridization
        temperature. A simulator handed to :func:`train` keeps its own temperature.
    keep_best : bool or None
        Keep the round with the best capture evaluation (lowest proportion at 50 % recall) as the
        final model instead of the last round. None: on for every objective but the paper's
        (which keeps its last round, as the paper does).
    """

    threshold: float | None = 75.0
    threshold_quantile: float = 0.01
    neighbors: int | str | None = "auto"
    calibration_rows: int = 3000
    rounds: int = 20
    steps: int = 1000
    batch_size: int = 100
    seed_pairs: int = 5000
    seed_epochs: int = 50
    seed_mutants: int = 1
    sim_pairs: int = 1000
    sim_docs: int | None = None
    sim_similar_fraction: float = 0.0
    sim_near_fraction: float = 0.0
    predictor_epochs: int = 10
    predictor_batch: int = 100
    replay: int = 20000
    relaxation: str = "straight-through"
    hard_negatives: float = 0.0
    near_factor: float = 2.0
    dissimilar_weight: float = 1.0
    encoder_optimizer: str = "adagrad"
    encoder_lr: float = 1e-3
    predictor_optimizer: str = "rmsprop"
    predictor_lr: float = 1e-3
    hidden: int = 2048
    output_activation: str | None = None
    entropy: float = 1e-2
    gc_balance: float = 0.0
    gc_target: float = 0.5
    homopolymer: float = 0.0
    max_run: int = 3
    scaling: str = "global"
    window: int = 3
    pool_size: int = 3
    conv_filters: int = 36
    conv_width: int = 3
    global_pool: str = "average"
    context: str = ""
    heldout_rows: int = 5000
    eval_pairs: int = 200
    final_eval_pairs: int = 1000
    eval_every: int = 1
    block_rows: int | None = None
    refresh_every: int = 1
    seed: int | None = None
    predictor: str = DEFAULT_PREDICTOR
    objective: str = DEFAULT_OBJECTIVE
    margin: float | None = None
    rank_candidates: int = 16
    energy_weight: float = 1.0
    energy_head: bool | None = None
    sim_candidates: int = 1
    sim_uncertain: float = 0.0
    sim_far_binders: float = 0.0
    capture_eval_docs: int = 3000
    capture_eval_queries: int = 20
    capture_eval_k: int = 10
    capture_eval_every: int = 5
    capture_eval_refine: int = 100
    capture_eval_sample: int = 100
    keep_best: bool | None = None
    hybridization_c: float | None = None
    train_temperature_c: float | None = None

    def check(self) -> None:
        """Raise :class:`UsageError` for impossible values."""
        def need(cond, msg, hint=None):
            if not cond:
                raise UsageError(msg, hint=hint)
        if self.threshold is not None:
            need(math.isfinite(self.threshold) and self.threshold > 0,
                 f"--threshold must be a positive number or 'auto', got {self.threshold}")
        need(0 < self.threshold_quantile <= 0.5,
             f"--threshold-quantile must be in (0, 0.5], got {self.threshold_quantile}")
        need(self.neighbors is None or self.neighbors == "auto"
             or (isinstance(self.neighbors, int) and not isinstance(self.neighbors, bool)
                 and self.neighbors >= 1),
             f"--neighbors must be a whole number of at least 1, got {self.neighbors!r}",
             hint="e.g. --neighbors 100 to learn the 100 nearest neighbours of each document")
        for name in ("rounds", "steps", "batch_size", "seed_epochs", "predictor_batch", "seed_mutants",
                     "hidden", "eval_every", "refresh_every", "calibration_rows"):
            need(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be at least 1, "
                 f"got {getattr(self, name)}")
        for name in ("seed_pairs", "sim_pairs", "predictor_epochs", "replay", "heldout_rows",
                     "eval_pairs", "final_eval_pairs"):
            need(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must not be negative")
        need(self.batch_size >= 2, "--batch-size must be at least 2 (half similar, half not)")
        need(self.seed_pairs + self.sim_pairs > 0, "--seed-pairs and --sim-pairs cannot both be 0",
             hint="the predictor needs simulated pairs")
        need(0 <= self.sim_similar_fraction <= 1, "--sim-similar-fraction must be in [0, 1]")
        need(0 <= self.hard_negatives <= 1, "--hard-negatives must be in [0, 1]")
        need(0 <= self.sim_near_fraction <= 1 - self.sim_similar_fraction,
             "--sim-near-fraction must be in [0, 1 - sim-similar-fraction]")
        need(self.near_factor > 1, "--near-factor must be above 1")
        need(self.dissimilar_weight > 0, "--dissimilar-weight must be positive")
        need(self.context in ("", "toehold"), f"context must be '' or 'toehold', got {self.context!r}")
        need(self.global_pool in ("average", "max", "both"),
             f"global_pool must be 'average', 'max' or 'both', got {self.global_pool!r}")
        need(self.relaxation in ("straight-through", "soft"),
             f"relaxation must be 'straight-through' or 'soft', got {self.relaxation!r}")
        need(self.scaling in ("global", "none"), f"scaling must be 'global' or 'none', got {self.scaling!r}")
        for name in ("encoder_lr", "predictor_lr"):
            need(getattr(self, name) > 0, f"--{name.replace('_', '-')} must be positive")
        need(0 < self.gc_target < 1, f"--gc-target must be in (0, 1), got {self.gc_target}")
        for name in ("entropy", "gc_balance", "homopolymer"):
            need(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must not be negative")
        need(self.predictor in PREDICTORS, f"unknown predictor {self.predictor!r}",
             hint=f"--predictor is one of {', '.join(PREDICTORS)}")
        need(self.objective in OBJECTIVES, f"unknown objective {self.objective!r}",
             hint=f"--objective is one of {', '.join(OBJECTIVES)}")
        if self.margin is not None:
            need(math.isfinite(self.margin) and self.margin > 0,
                 f"--margin must be a positive number, got {self.margin}")
        need(self.rank_candidates >= 1, "--rank-candidates must be at least 1")
        need(math.isfinite(self.energy_weight) and self.energy_weight >= 0,
             "--energy-weight must not be negative")
        need(self.sim_candidates >= 1, "--sim-candidates must be at least 1")
        need(0 <= self.sim_uncertain <= 1 and 0 <= self.sim_far_binders <= 1
             and self.sim_uncertain + self.sim_far_binders <= 1,
             "--sim-uncertain and --sim-far-binders must be shares in [0, 1] summing to at most 1")
        for name in ("capture_eval_docs", "capture_eval_queries", "capture_eval_refine",
                     "capture_eval_sample"):
            need(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must not be negative")
        for name in ("capture_eval_k", "capture_eval_every"):
            need(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be at least 1")
        t = self.train_temperature_c
        need(t is None or (isinstance(t, (int, float)) and not isinstance(t, bool)
                           and math.isfinite(t) and -50.0 <= t <= 150.0),
             f"--train-temperature must be a number from -50 to 150 °C, got {t!r}")
        if self.hybridization_c is not None:
            h = self.hybridization_c
            need(isinstance(h, (int, float)) and not isinstance(h, bool) and math.isfinite(h)
                 and -50.0 <= h <= ANNEAL_FROM_C,
                 f"--temperature (the hybridization temperature) must be a number from -50 to "
                 f"{ANNEAL_FROM_C:g} °C (the anneal's start), got {h!r}")

    @property
    def uses_energies(self) -> bool:
        """The predictor has an energy head (fit to the simulator's binding energies)."""
        if self.predictor != "local-match":
            return True
        return self.objective != "paper" if self.energy_head is None else bool(self.energy_head)

    @property
    def keeps_best(self) -> bool:
        """Keep the best capture-evaluated round (``keep_best``, None: unless the paper's objective)."""
        return self.objective != "paper" if self.keep_best is None else bool(self.keep_best)

    @property
    def margin_value(self) -> float | None:
        """The margin in use (the objective's default when none is set)."""
        if self.margin is not None:
            return float(self.margin)
        return DEFAULT_MARGINS.get(self.objective)

    @classmethod
    def paper(cls, **options) -> "TrainSettings":
        """The paper's method (``primo train --paper``): the global distance threshold (75),
        the paper's objective and local-match predictor, the last round kept, and the simulator
        at the hybridization temperature. ``options`` set other fields (``rounds``, ``seed``,
        ``threshold``, ``hybridization_c``, ...)."""
        kw = {"threshold": 75.0, "neighbors": None, "objective": "paper",
              "predictor": "local-match", "keep_best": False, **options}
        h = kw.get("hybridization_c")
        kw["hybridization_c"] = TEMPERATURE_C if h is None else h
        kw.setdefault("train_temperature_c", kw["hybridization_c"])
        return cls(**kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        # written before neighbourhood similarity existed: those runs used the global threshold
        kw.setdefault("neighbors", None)
        return cls(**kw)


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns."""

    path: Path
    card: dict
    metrics: list
    rounds_done: int


# --------------------------------------------------------------------------- seeds and pairs
def mutate_codes(codes: np.ndarray, rates, rng: np.random.Generator) -> np.ndarray:
    """Replace each base of each row, with that row's probability, by one of the 3 other bases."""
    codes = np.asarray(codes, dtype=np.uint8)
    rates = np.broadcast_to(np.asarray(rates, dtype=np.float64).reshape(-1, 1), codes.shape)
    hit = rng.random(codes.shape) < rates
    shift = rng.integers(1, 4, size=codes.shape).astype(np.uint8)
    return np.where(hit, (codes + shift) % 4, codes).astype(np.uint8)


def seed_pair_codes(n: int, rng: np.random.Generator, length: int = FEATURE_LENGTH,
                    mutants: int = 1):
    """``n`` pairs: random targets and mutants of them at rates ~ U[0, 1] (uint8 codes, n x length).

    With ``mutants > 1`` each random target is paired with that many independent mutants.
    """
    n_t = -(-n // max(1, mutants))
    base = rng.integers(0, 4, size=(n_t, length)).astype(np.uint8)
    t = np.repeat(base, max(1, mutants), axis=0)[:n]
    q = mutate_codes(t, rng.random(n), rng)
    return t, q


def _seqs(codes) -> list[str]:
    from ..dna import decode_seqs

    return decode_seqs(codes) if len(codes) else []


def default_train_temperature(hybridization_c: float | None = None) -> float:
    """The training simulator's temperature (°C) when none is asked for: primo's default
    (:data:`DEFAULT_TRAIN_TEMPERATURE_C`), never below the hybridization temperature; the
    hybridization temperature itself when the default is None (the paper's method)."""
    h = TEMPERATURE_C if hybridization_c is None else float(hybridization_c)
    return h if DEFAULT_TRAIN_TEMPERATURE_C is None else max(float(DEFAULT_TRAIN_TEMPERATURE_C), h)


def _default_simulator(settings: dict | None = None, temperature: float | None = None):
    from ..thermo.simulator import Simulator

    if settings:
        return Simulator.from_dict(settings)
    return Simulator() if temperature is None else Simulator(temperature=temperature)


def _simulator_settings(sim) -> dict:
    try:
        return dict(sim.to_dict())
    except AttributeError:
        return {"class": type(sim).__name__}


def _simulate(sim, t_codes, q_codes, mapper) -> np.ndarray:
    if len(t_codes) == 0:
        return np.zeros(0, np.float32)
    y = sim.yields(_seqs(t_codes), _seqs(q_codes), mapper=mapper, progress=True)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if len(y) != len(t_codes):
        raise RuntimeError(f"simulator returned {len(y)} yields for {len(t_codes)} pairs")
    return np.clip(y, 0.0, 1.0)


def _energy_targets(e) -> np.ndarray:
    """Simulated binding energies as regression targets: no duplex (inf) -> 0, clipped to
    [-200, 10] kcal/mol."""
    e = np.nan_to_num(np.asarray(e, dtype=np.float64), nan=0.0, posinf=0.0, neginf=-200.0)
    return np.clip(e, -200.0, 10.0).astype(np.float32)


def _simulate_energies(sim, t_codes, q_codes, mapper):
    """Yields and binding energies (kcal/mol) of pairs, from one free-energy computation."""
    if len(t_codes) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    from ..thermo.ramp import binding_energies

    g = sim.free_energies(_seqs(t_codes), _seqs(q_codes), mapper=mapper, progress=True)
    y = np.clip(np.asarray(sim.solve(g).yield_, dtype=np.float32).reshape(-1), 0.0, 1.0)
    return y, _energy_targets(binding_energies(g)[0])


def _context_bases(context: str) -> str:
    return RP[:TOEHOLD] if context == "toehold" else ""


def _versions() -> dict:
    v = {"primo": __version__, "python": platform.python_version(), "numpy": np.__version__}
    try:
        import keras
        import tensorflow as tf

        v["keras"] = keras.__version__
        v["tensorflow"] = tf.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        import RNA

        v["viennarna"] = RNA.__version__
    except ImportError:  # pragma: no cover
        v["viennarna"] = None
    return v


def _layout() -> dict:
    return {"fp": FP, "ip": IP, "rp": RP, "feature_length": FEATURE_LENGTH,
            "barcode_length": BARCODE_LENGTH, "oligo_length": OLIGO_LENGTH,
            "toehold": TOEHOLD, "probe_prefix": PROBE_PREFIX,
            "target_strand": "feature region + RP", "query_strand": "revcomp(query features + RP[:toehold])"}


# --------------------------------------------------------------------------- the TF side
class _Models:
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
                                        context=_context_bases(s.context), seed=seed + 100,
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
                      rng: np.random.Generator, energies=None) -> float:
        """Refit the predictor; with ``energies`` (kcal/mol, one per pair) its energy head too."""
        eye = np.eye(4, dtype=np.float32)
        if energies is not None:
            e = _energy_targets(energies)
        n = len(y)
        last = math.nan
        for _ in range(epochs):
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
                                    hint="start again without --resume")
                v.assign(arrays[key])


# --------------------------------------------------------------------------- the run
class _Run:
    def __init__(self, source, out: Path, s: TrainSettings, simulator, mapper, log, on_round):
        self.source = source
        self.out = out
        self.s = s
        self.sim = simulator
        self.mapper = mapper
        self.log = log or (lambda msg: None)
        self.on_round = on_round
        self.metrics: list[dict] = []
        self.timing = {"seed_simulation_s": 0.0, "seed_fit_s": 0.0, "simulation_s": 0.0,
                       "encoder_s": 0.0, "predictor_s": 0.0, "eval_s": 0.0, "checkpoint_s": 0.0,
                       "setup_s": 0.0}
        self.elapsed_before = 0.0
        self.t0 = time.perf_counter()
        # the replay buffer's binding energies (predictors with an energy head)
        self.buffer_e = None

    # ---- random streams (separate so that changing one phase does not shift another)
    def make_rngs(self, seed: int):
        ss = np.random.SeedSequence(seed)
        # a new stream goes at the end: the earlier ones stay what they were
        names = ["split", "threshold", "seed_pairs", "sampler", "fit", "eval", "stats", "objective",
                 "fresh"]
        self.rngs = {n: np.random.default_rng(c) for n, c in zip(names, ss.spawn(len(names)))}

    def rng_state(self) -> dict:
        return {k: r.bit_generator.state for k, r in self.rngs.items()}

    def set_rng_state(self, state: dict) -> None:
        for k, st in state.items():
            if k in self.rngs:
                self.rngs[k].bit_generator.state = st

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t0

    # ---- setup shared by a new run and a resumed one
    def setup_data(self, heldout=None, threshold_info=None):
        s = self.s
        src = self.source
        if heldout is None:
            n_held = min(s.heldout_rows, src.n // 5)
            heldout, _ = _data.choose_heldout(src, n_held, self.rngs["split"])
        self.heldout = np.asarray(heldout, dtype=np.int64)
        if threshold_info is None:
            if s.neighbors:
                n_train = int(src.n) - len(self.heldout)
                if s.neighbors == "auto":
                    k = int(min(DEFAULT_NEIGHBORS,
                                max(1, int(NEIGHBORS_MAX_FRACTION * n_train))))
                    how = (f" (automatic: {DEFAULT_NEIGHBORS}, at most "
                           f"{NEIGHBORS_MAX_FRACTION:.1%} of {n_train:,} training documents)")
                else:
                    k, how = int(s.neighbors), ""
                info = {
                    "method": "neighbors", "neighbors": k, "requested": s.neighbors,
                    "value": 1.0,
                    "units": "distance / the larger of the two documents' distances to their "
                             "K-th nearest training document"}
                self.log(f"similarity: the {k} nearest neighbours of each document{how}; "
                         f"distances in units of each pair's neighbourhood radius")
            elif s.threshold is None:
                thr, info = _data.calibrate_threshold(src, s.threshold_quantile, self.rngs["threshold"],
                                                      sample_rows=s.calibration_rows,
                                                      exclude=self.heldout)
                info["value"] = thr
                self.log(f"threshold: {thr:.4g} (the {s.threshold_quantile:g} quantile of "
                         f"{info['sample_pairs']:,} pairwise distances)")
            else:
                info = {"value": float(s.threshold), "method": "fixed"}
            threshold_info = info
        self.threshold_info = threshold_info
        self.threshold = float(threshold_info["value"])
        neighbors = threshold_info.get("neighbors") if threshold_info.get("method") == \
            "neighbors" else None
        self.sampler = _data.PairSampler(src, self.threshold, self.rngs["sampler"],
                                         block_rows=s.block_rows, exclude=self.heldout,
                                         near_factor=(s.near_factor if s.hard_negatives or
                                                      s.sim_near_fraction else None),
                                         neighbors=neighbors)
        # held-out evaluation pairs (fixed for the whole run)
        self.Xh = np.asarray(src.read_index(self.heldout), dtype=np.float32) if len(self.heldout) \
            else np.zeros((0, src.dim), np.float32)
        # two fixed sets: a small one simulated every evaluated round, a larger one at the end
        self.eval_sets = {}
        for name, k in (("round", s.eval_pairs), ("final", s.final_eval_pairs)):
            self.eval_sets[name] = _data.heldout_pairs(self.Xh, self.threshold, k, k,
                                                       self.rngs["eval"],
                                                       random_docs=max(2, k),
                                                       neighbors=neighbors,
                                                       reference_rows=self.sampler.n_available)

    def check_block(self):
        smp = self.sampler
        where = getattr(self.source, "path", None)
        if len(smp.similar) == 0:
            raise DataError(
                f"similarity threshold {self.threshold:g} leaves no similar pairs among "
                f"{len(smp.X):,} training rows (closest pair at distance "
                f"{smp.min_distance:.4g})", path=where,
                hint="use --threshold auto to calibrate it from the distance distribution, or a "
                     "larger --threshold")
        if self.s.objective == "rank":
            anchors = len(np.unique(smp.similar)) if len(smp.similar) else 0
            if anchors < 3:
                raise DataError(
                    f"--objective rank needs at least 3 documents that have a similar neighbour; "
                    f"threshold {self.threshold:g} gives {anchors} among {len(smp.X):,} "
                    f"training rows",
                    path=where, hint="use a larger --threshold (or --threshold auto with a larger "
                                     "--threshold-quantile), more documents, or --objective paper")
        if smp.similar_fraction > 0.5:
            what = (f"--neighbors {smp.neighbors}" if smp.neighbors else
                    f"similarity threshold {self.threshold:g}")
            raise DataError(f"{what} makes {smp.similar_fraction:.0%} of pairs similar among "
                            f"{len(smp.X):,} training rows", path=where,
                            hint=("use a smaller --neighbors" if smp.neighbors else
                                  "use --threshold auto, or a smaller --threshold"))

    # ---- phases
    def seed_predictor(self, m: _Models):
        s = self.s
        t_codes, q_codes = seed_pair_codes(s.seed_pairs, self.rngs["seed_pairs"],
                                           mutants=s.seed_mutants)
        self.log(f"seeding the predictor: simulating {s.seed_pairs:,} random mutant pairs "
                 f"({self.mapper_desc()})")
        t = time.perf_counter()
        e = None
        if self.energies:
            y, e = _simulate_energies(self.sim, t_codes, q_codes, self.mapper)
        else:
            y = self.simulate(t_codes, q_codes, desc="seed pairs")
        self.timing["seed_simulation_s"] += time.perf_counter() - t
        t = time.perf_counter()
        loss = math.nan
        if len(y):
            loss = m.fit_predictor(t_codes, q_codes, y, s.seed_epochs, s.predictor_batch,
                                   self.rngs["fit"], energies=e)
        self.timing["seed_fit_s"] += time.perf_counter() - t
        self.buffer = (t_codes, q_codes, y)
        self.buffer_e = e
        return loss

    @property
    def energies(self) -> bool:
        """The predictor has an energy head, fit to the simulator's binding energies."""
        return self.s.uses_energies

    def simulate(self, t_codes, q_codes, desc="simulation"):
        """Simulated yields of pairs of codes (one simulator call: strands are computed once)."""
        return _simulate(self.sim, t_codes, q_codes, self.mapper)

    def mapper_desc(self) -> str:
        d = getattr(self.mapper, "describe", None)
        return d() if d else "serial"

    def encoder_phase(self, m: _Models, rnd: int) -> dict:
        s = self.s
        tf = m.tf
        sums = np.zeros(4)
        t = time.perf_counter()
        for _ in progress(range(s.steps), total=s.steps, desc=f"round {rnd} encoder", unit="step",
                          leave=False):
            xa, xb, y = self.sampler.balanced(s.batch_size, s.hard_negatives)
            if s.objective == "paper":
                out = m.enc_step(tf.constant(xa), tf.constant(xb), tf.constant(y))
            else:
                anchors, neg, w = _triplets(xa, xb, y, self.threshold, s.rank_candidates,
                                            self.rngs["objective"],
                                            radii=self.sampler.last_radii)
                out = m.triplet_step(tf.constant(xa), tf.constant(xb), tf.constant(anchors),
                                     tf.constant(neg), tf.constant(w))
            sums += np.array([float(v) for v in out])
        self.timing["encoder_s"] += (dt := time.perf_counter() - t)
        mean = sums / max(s.steps, 1)
        return {"encoder_loss": mean[0], "encoder_bce": mean[1], "encoder_reg": mean[2],
                "encoder_acc": mean[3], "time_encoder_s": dt}

    def predictor_phase(self, m: _Models, rnd: int) -> dict:
        s = self.s
        row = {}
        if s.sim_pairs == 0:
            return {"fresh_pairs": 0}
        docs = s.sim_docs if s.sim_docs is not None else max(2, s.sim_pairs // 4)
        xa, xb, dist = self.sampler.random(s.sim_pairs * s.sim_candidates, s.sim_similar_fraction,
                                           docs=docs, near_fraction=s.sim_near_fraction)
        ta, qa = m.encode_codes(xa), m.encode_codes(xb)
        if s.sim_candidates > 1:
            pick, row["fresh_uncertain"], row["fresh_far_picked"] = self._choose_fresh(
                m, ta, qa, dist)
            ta, qa, dist = ta[pick], qa[pick], dist[pick]
        t = time.perf_counter()
        e = None
        if self.energies:
            y, e = _simulate_energies(self.sim, ta, qa, self.mapper)
        else:
            y = self.simulate(ta, qa, desc=f"round {rnd} simulation")
        row["time_simulation_s"] = time.perf_counter() - t
        self.timing["simulation_s"] += row["time_simulation_s"]
        t = time.perf_counter()
        p = m.predict_codes(ta, qa)
        row.update({"fresh_pairs": len(y), "fresh_mae": float(np.abs(p - y).mean()),
                    "fresh_bce": bce(p, y), "fresh_agree": agreement(p, y),
                    "fresh_sim_pos": float((y > 0.5).mean())})
        far = dist > self.threshold
        row["fresh_far_sim_pos"] = float((y[far] >= 0.5).mean()) if far.any() else math.nan
        bt, bq, by = self.buffer
        bt, bq, by = (np.concatenate([bt, ta])[-s.replay:] if s.replay else ta,
                      np.concatenate([bq, qa])[-s.replay:] if s.replay else qa,
                      np.concatenate([by, y])[-s.replay:] if s.replay else y)
        self.buffer = (bt, bq, by)
        be = None
        if e is not None:
            be = np.concatenate([self.buffer_e, e])[-s.replay:] if s.replay else e
            self.buffer_e = be
        row["buffer_sim_pos"] = float((by >= 0.5).mean()) if len(by) else math.nan
        if s.predictor_epochs:
            row["predictor_loss"] = m.fit_predictor(bt, bq, by, s.predictor_epochs,
                                                    s.predictor_batch, self.rngs["fit"],
                                                    energies=be)
        row["time_predictor_s"] = time.perf_counter() - t
        self.timing["predictor_s"] += row["time_predictor_s"]
        return row

    def _choose_fresh(self, m: _Models, ta, qa, dist):
        """Which candidate pairs to simulate: the most uncertain, the far pairs predicted to bind
        best, and random ones for the rest (``sim_candidates`` > 1)."""
        s = self.s
        n = s.sim_pairs
        p = m.predict_codes(ta, qa)
        taken = np.zeros(len(p), bool)
        n_unc = int(round(n * s.sim_uncertain))
        n_far = int(round(n * s.sim_far_binders))
        unc = np.lexsort((np.arange(len(p)), np.abs(p - 0.5)))[:n_unc]
        taken[unc] = True
        far = np.flatnonzero((dist > self.threshold) & ~taken)
        far = far[np.lexsort((far, -p[far]))][:n_far]
        taken[far] = True
        rest = np.flatnonzero(~taken)
        rnd = self.rngs["fresh"].choice(rest, size=min(len(rest), n - n_unc - len(far)),
                                        replace=False)
        return np.sort(np.concatenate([unc, far, rnd])), n_unc, len(far)

    # ---- search quality under the capture model (held-out mini-database)
    def setup_capture_eval(self):
        """The fixed mini-database (drawn from the seed alone, so a resumed run gets the same)."""
        from .capture_eval import make_capture_eval_set

        s = self.s
        self.capture_set = None
        if not (s.capture_eval_docs and s.capture_eval_queries and len(self.heldout)
                and hasattr(self.sim, "temperature") and hasattr(self.sim, "free_energies")):
            return
        rng = np.random.default_rng([int(s.seed), 0xCA97])
        self.capture_set = make_capture_eval_set(self.source, self.heldout, s.capture_eval_docs,
                                                 s.capture_eval_queries, s.capture_eval_k, rng)
        if self.capture_set is None:
            self.log("capture evaluation off: too few held-out rows for a mini-database")

    @property
    def hybridization_c(self) -> float:
        """The protocol's hybridization temperature (°C): the setting, else the simulator's."""
        h = self.s.hybridization_c
        return float(getattr(self.sim, "temperature", TEMPERATURE_C) if h is None else h)

    def capture_due(self, rnd: int) -> bool:
        return self.capture_set is not None and (rnd % self.s.capture_eval_every == 0
                                                 or rnd == self.s.rounds)

    def evaluate_capture(self, m: _Models, rnd: int) -> dict:
        from ..simulation.capture import Protocol
        from .capture_eval import evaluate_capture

        t = time.perf_counter()
        sim = self.sim
        h = self.hybridization_c
        if abs(h - float(sim.temperature)) > 1e-9:
            sim = sim.at_temperature(h)  # the capture runs at the protocol's temperatures
        protocol = Protocol(anneal_to=h, na_molar=float(getattr(sim, "sodium", 1.0)))
        row = evaluate_capture(self.capture_set, m.encode_codes, m.predict_codes, sim, protocol,
                               refine=self.s.capture_eval_refine,
                               sample=self.s.capture_eval_sample,
                               rng=np.random.default_rng([int(self.s.seed), 0xCA97, rnd]),
                               mapper=self.mapper)
        self.capture_relevance = row.pop("capture_map10_relevance")
        self.protocol = protocol.to_dict()
        row["time_capture_s"] = time.perf_counter() - t
        self.timing["capture_eval_s"] = self.timing.get("capture_eval_s", 0.0) + row["time_capture_s"]
        return row

    def best_round(self) -> dict | None:
        """The metrics row of the best capture-evaluated round so far (None before the first)."""
        from .capture_eval import better

        best = None
        for row in self.metrics:
            if "capture_p50" in row and better(row, best):
                best = row
        return best

    def save_best(self, m: _Models) -> None:
        with atomic_dir(self.out / BEST, command="train") as tmp:
            m.encoder.save(tmp / "encoder.keras")
            m.predictor.save(tmp / "predictor.keras")

    def evaluate(self, m: _Models, which: str = "round", desc="held-out pairs"):
        """Simulate a held-out set; returns (metrics, distances, yields, predicted, kind)."""
        ei, ej, d, kind = self.eval_sets[which]
        if len(ei) == 0:
            z = np.zeros(0)
            return {}, z, z, z, z
        t = time.perf_counter()
        codes = m.encode_codes(self.Xh)
        ti, qj = codes[ei], codes[ej]
        y = self.simulate(ti, qj, desc=desc)
        p = m.predict_codes(ti, qj)
        similar = d <= self.threshold
        row = separation(y, similar)
        row["eval_agree"] = agreement(p, y)
        seqs = _seqs(codes)
        from ..dna import gc_fraction, longest_homopolymer

        row["gc_mean"] = float(np.mean([gc_fraction(q) for q in seqs])) if seqs else math.nan
        row["max_homopolymer"] = float(np.mean([longest_homopolymer(q) for q in seqs])) if seqs else math.nan
        row["time_eval_s"] = time.perf_counter() - t
        self.timing["eval_s"] += row["time_eval_s"]
        return row, d, y, p, kind

    # ---- checkpoints
    def save_checkpoint(self, m: _Models, rnd: int, extra: dict) -> None:
        t = time.perf_counter()
        with atomic_dir(self.out / CHECKPOINT, command="train") as tmp:
            m.encoder.save(tmp / "encoder.keras")
            m.predictor.save(tmp / "predictor.keras")
            bt, bq, by = self.buffer
            more = {} if getattr(self, "buffer_e", None) is None else {"buffer_e": self.buffer_e}
            np.savez(tmp / _ARRAYS, buffer_t=bt, buffer_q=bq, buffer_y=by, heldout=self.heldout,
                     **more, **m.optimizer_arrays())
            state = {"round": rnd, "settings": self.s.to_dict(), "rng": self.rng_state(),
                     "threshold": self.threshold_info, "metrics": self.metrics,
                     "timing": self.timing, "elapsed_s": self.elapsed(),
                     "segments": [int(x) for x in self.sampler.segments],
                     "simulator": _simulator_settings(self.sim),
                     "primo_version": __version__, **extra}
            (tmp / _STATE).write_text(json.dumps(state, default=json_default), encoding="utf-8")
        self.timing["checkpoint_s"] += time.perf_counter() - t


def _setup_tf(seed: int) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


def _read_checkpoint(out: Path):
    ck = out / CHECKPOINT
    if not (ck / _STATE).exists():
        raise UsageError(f"nothing to resume: {out} has no checkpoint",
                         hint="start training without --resume")
    try:
        state = json.loads((ck / _STATE).read_text(encoding="utf-8"))
        arrays = dict(np.load(ck / _ARRAYS))
    except (OSError, ValueError) as e:
        raise DataError(f"checkpoint is unreadable ({e})", path=ck,
                        hint="delete it and train again without --resume") from None
    return ck, state, arrays


def train(features, out, settings: TrainSettings | None = None, *, simulator=None, mapper=None,
          resume: bool = False, overwrite: bool = False, log=None, on_round=None) -> TrainResult:
    """Train an encoder and a yield predictor; write the model directory ``out``.

    ``out`` must not exist, be empty, or (with ``overwrite``) hold an earlier ``primo train``
    output: a directory holding other files is never replaced (:func:`primo.io.check_output_dir`).

    Parameters
    ----------
    features : str, Path, FeatureStore or ArrayFeatures
        Training features (a path is opened with :func:`primo.training.data.open_features`).
    out : str or Path
        The model directory (created; checkpoints, metrics and logs are written there as training
        goes).
    settings : TrainSettings
        Every training setting (defaults: DESIGN.md). On ``resume`` the checkpoint's settings are
        used, except ``rounds`` when this one asks for more.
    simulator : object with ``yields(targets, queries, mapper=None)`` and ``to_dict()``
        The thermodynamic ground truth (default :class:`primo.thermo.simulator.Simulator`).
    mapper : primo.parallel.Mapper, optional
        Where simulations run (default: serial).
    resume : bool
        Continue from ``out/checkpoint`` after an interruption.
    overwrite : bool
        Replace an existing model directory.
    log : callable(str), optional
        Receives one-line progress messages.
    on_round : callable(dict), optional
        Called with each round's metrics row after its checkpoint is written.

    Returns
    -------
    TrainResult
    """
    out = Path(out)
    s = dataclasses.replace(settings) if settings is not None else TrainSettings()
    s.check()
    state = arrays = None
    if resume:
        ck, state, arrays = _read_checkpoint(out)
        from ..model_dir import versions_compatible

        made_by = state.get("primo_version", "?")
        if not versions_compatible(made_by, __version__):
            raise DataError(f"checkpoint was written by primo {made_by}, this is primo {__version__}",
                            path=ck, hint="resume with that primo version, or train again without --resume")
        saved = TrainSettings.from_dict(state["settings"])
        if saved.seed is None:
            raise DataError("checkpoint has no seed", path=ck, hint="start again without --resume")
        saved.rounds = max(saved.rounds, s.rounds) if settings is not None else saved.rounds
        s = saved
    else:
        from ..io import claim_output_dir, read_marker

        # the two temperatures, resolved once and recorded (checkpoint and card)
        if simulator is None:
            if s.hybridization_c is None:
                s.hybridization_c = TEMPERATURE_C
            if s.train_temperature_c is None:
                s.train_temperature_c = default_train_temperature(s.hybridization_c)
            simulator = _default_simulator(temperature=s.train_temperature_c)
        else:
            t = getattr(simulator, "temperature", None)
            if s.hybridization_c is None and t is not None:
                s.hybridization_c = float(t)  # a given simulator hybridizes where it trains
            if t is not None:
                s.train_temperature_c = float(t)
        s.check()

        if (not overwrite and (out / CHECKPOINT).exists()
                and (read_marker(out) or {}).get("command") == "train"):
            raise UsageError(f"output directory {out} holds an earlier `primo train` run",
                             hint="continue it with --resume, or pass --overwrite to replace it")
        # an earlier model of primo train is replaced only with overwrite; never other files
        claim_output_dir(out, command="train", overwrite=overwrite,
                         inputs=[features] if isinstance(features, (str, os.PathLike)) else [])
        if s.seed is None:
            s.seed = int(np.random.SeedSequence().entropy % (2 ** 31))
    out.mkdir(parents=True, exist_ok=True)

    own_source = False
    if isinstance(features, (str, os.PathLike)):
        source = _data.open_features(features)
        own_source = True
    else:
        source = features
        if source.n == 0:
            raise DataError("feature matrix has no rows, nothing to train on",
                            hint="give a non-empty feature store")
    try:
        return _train(source, out, s, simulator, mapper, state, arrays, log, on_round)
    finally:
        if own_source:
            source.close()


def _resume(run: _Run, out: Path, state: dict, arrays: dict, fp: str):
    """A run continued from its checkpoint: models, optimizer state, buffer, random streams."""
    from ..encoder.model import load_encoder
    from ..model_dir import load_keras_file
    from ..predictor.model import load_predictor

    s, source = run.s, run.source
    if state.get("data", {}).get("fingerprint") != fp:
        raise DataError("the features differ from those the interrupted run was trained on "
                        f"(fingerprint {fp} != {state.get('data', {}).get('fingerprint')})",
                        path=getattr(source, "path", None),
                        hint="resume with the same --features, or start again without --resume")
    run.set_rng_state(state["rng"])
    run.metrics = state["metrics"]
    run.timing.update(state["timing"])
    run.elapsed_before = float(state["elapsed_s"])
    run.setup_data(heldout=arrays["heldout"], threshold_info=state["threshold"])
    run.setup_capture_eval()
    if state.get("segments") and not run.sampler.whole:
        run.sampler.refresh(state["segments"])
    else:
        run.sampler.refresh()
    ck = out / CHECKPOINT
    m = _Models(s, source.dim, None, 1.0, s.seed,
                encoder=load_keras_file(load_encoder, ck / "encoder.keras", "encoder"),
                predictor=load_keras_file(load_predictor, ck / "predictor.keras", "predictor"))
    m.load_optimizer_arrays(arrays)
    run.buffer = (arrays["buffer_t"], arrays["buffer_q"], arrays["buffer_y"])
    run.buffer_e = arrays.get("buffer_e")
    if run.energies and run.buffer_e is None:
        raise DataError("checkpoint lacks the replay buffer's energies", path=ck,
                        hint="start again without --resume")
    start_round = int(state["round"]) + 1
    stats = state["scaling"]
    before = state.get("before")
    run.log(f"resuming after round {state['round']} of {s.rounds}")
    return m, start_round, stats, before


def _start(run: _Run, t_setup: float):
    """A new run: held-out rows, threshold, feature scaling, models, the seeded predictor."""
    from ..encoder.model import feature_scaling_from_stats

    s, source = run.s, run.source
    run.setup_data()
    run.setup_capture_eval()
    run.sampler.refresh()
    run.check_block()
    center, msq = _data.row_norm_stats(source, rows=np.setdiff1d(np.arange(source.n), run.heldout),
                                       rng=run.rngs["stats"])
    center, scale = feature_scaling_from_stats(center, msq, source.dim)
    stats = {"scale": scale, "centered_rms_norm": math.sqrt(msq)}
    m = _Models(s, source.dim, center, scale, s.seed)
    run.timing["setup_s"] += time.perf_counter() - t_setup
    seed_loss = run.seed_predictor(m)
    row0, d0, y0, _, _ = run.evaluate(m, "round", desc="round 0 held-out")
    row0.update({"round": 0, "predictor_loss": seed_loss, "elapsed_s": run.elapsed()})
    run.metrics = [row0]
    before = {"distance": d0.tolist(), "yield": y0.tolist()}
    return m, stats, before


def _train(source, out: Path, s: TrainSettings, simulator, mapper, state, arrays, log, on_round):
    if simulator is None:
        simulator = _default_simulator(state.get("simulator") if state else None)
    sim = simulator
    run = _Run(source, out, s, sim, mapper, log, on_round)
    run.make_rngs(s.seed)
    _setup_tf(s.seed)
    t_setup = time.perf_counter()
    fp = _data.fingerprint(source)
    if state is not None:
        m, start_round, stats, before = _resume(run, out, state, arrays, fp)
    else:
        m, stats, before = _start(run, t_setup)
        start_round = 1
    data_info = {"path": str(getattr(source, "path", "") or ""), "n": int(source.n),
                 "dim": int(source.dim), "fingerprint": fp, "heldout_rows": int(len(run.heldout)),
                 "training_rows": int(source.n - len(run.heldout)),
                 "block_rows": int(run.sampler.block_rows),
                 "similar_fraction_in_block": float(run.sampler.similar_fraction),
                 # rows holding NaN / inf left out with --skip-bad-rows
                 "skipped_rows": _skipped_rows()}
    extra = {"scaling": stats, "before": before, "data": data_info}
    tb = TensorBoardLog(out / "logs")
    try:
        if state is None:
            write_metrics_csv(out / "metrics.csv", run.metrics)
            tb.write(run.metrics[0])
            run.save_checkpoint(m, 0, extra)
        for rnd in progress(range(start_round, s.rounds + 1), total=s.rounds, initial=start_round - 1,
                            desc="training", unit="round"):
            if rnd > 1 and (rnd - 1) % s.refresh_every == 0:
                run.sampler.refresh()
            row = {"round": rnd}
            row.update(run.encoder_phase(m, rnd))
            row.update(run.predictor_phase(m, rnd))
            if rnd % s.eval_every == 0 or rnd == s.rounds:
                ev = run.evaluate(m, "round", desc=f"round {rnd} held-out")[0]
                row.update(ev)
            if run.capture_due(rnd):
                row.update(run.evaluate_capture(m, rnd))
            row["elapsed_s"] = run.elapsed()
            run.metrics.append(row)
            if "capture_p50" in row and run.best_round() is row and s.keeps_best:
                run.save_best(m)
            write_metrics_csv(out / "metrics.csv", run.metrics)
            tb.write(row)
            run.save_checkpoint(m, rnd, extra)
            run.log(_round_line(row, s.rounds))
            if on_round is not None:
                on_round(row)
        final = _finish(run, m, s, out, extra)
    finally:
        tb.close()
    return final


def _round_line(row: dict, rounds: int) -> str:
    def f(k, fmt="{:.3f}"):
        v = row.get(k)
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)
    return (f"round {row['round']}/{rounds}: encoder loss {f('encoder_loss')}, fresh agree "
            f"{f('fresh_agree', '{:.1%}')} (mae {f('fresh_mae')}), held-out yield>=0.5: similar "
            f"{f('sim_pos_similar', '{:.1%}')}, dissimilar {f('sim_pos_dissimilar', '{:.2%}')}, "
            f"{row.get('elapsed_s', 0):.0f} s")


def _finish(run: _Run, m: _Models, s: TrainSettings, out: Path, extra: dict) -> TrainResult:
    from ..model_dir import ENCODER_NAME, PREDICTOR_NAME, write_card
    from .plots import plot_yield_separation

    selection = _keep_best(run, m, s, out)
    final_row, d, y, p, kind = run.evaluate(m, "final", desc="final held-out evaluation")
    with atomic_file(out / ENCODER_NAME, suffix=".keras") as tmp:
        m.encoder.save(tmp)
    with atomic_file(out / PREDICTOR_NAME, suffix=".keras") as tmp:
        m.predictor.save(tmp)
    before = extra.get("before")
    if len(d):
        plot_yield_separation(out / "yields.png", run.threshold, {"distance": d, "yield": y},
                              before if before and len(before["distance"]) else None,
                              title=f"primo train: {extra['data']['path'] or 'features'}",
                              xlabel=("feature distance / neighbourhood radius"
                                      if run.sampler.neighbors else
                                      "feature distance of the pair"))
    sim_mask = d <= run.threshold
    metrics = dict(final_row)
    metrics.update({
        "eval_pairs": int(len(d)),
        "pred_mae_heldout": float(np.abs(p - y).mean()) if len(y) else math.nan,
        "fresh_agree_last": run.metrics[-1].get("fresh_agree"),
        "fresh_mae_last": run.metrics[-1].get("fresh_mae"),
        "yield_quantiles_similar": _quantiles(y[sim_mask]),
        "yield_quantiles_dissimilar": _quantiles(y[~sim_mask]),
        "random_pairs": int((kind == 0).sum()),
        "random_pairs_sim_pos": float((y[kind == 0] >= 0.5).mean()) if (kind == 0).any() else math.nan,
    })
    elapsed = run.elapsed()
    timing = dict(run.timing)
    timing["total_s"] = elapsed
    sim_s = timing["seed_simulation_s"] + timing["simulation_s"]
    timing["simulation_total_s"] = sim_s
    card = {
        "provenance": provenance(),
        "threshold": run.threshold_info,
        "layout": _layout(),
        "features": {"dim": int(run.source.dim),
                     "extractor": (run.source.metadata or {}).get("extractor"),
                     "metadata": run.source.metadata or {}},
        "encoder": {"input_dim": int(run.source.dim), "hidden": s.hidden,
                    "length": FEATURE_LENGTH, "output_activation": s.output_activation,
                    "entropy": s.entropy, "gc_balance": s.gc_balance, "gc_target": s.gc_target,
                    "homopolymer": s.homopolymer, "max_run": s.max_run,
                    "scaling": {"kind": s.scaling, **extra["scaling"]},
                    "discretization": "argmax per position, channels A, C, G, T"},
        "predictor": _predictor_card(s),
        "objective": {"name": s.objective, "margin": s.margin_value,
                      "rank_candidates": s.rank_candidates if s.objective != "paper" else None,
                      "primo_default": {"objective": DEFAULT_OBJECTIVE,
                                        "predictor": DEFAULT_PREDICTOR,
                                        "neighbors": "auto",
                                        "train_temperature_c": DEFAULT_TRAIN_TEMPERATURE_C,
                                        "this_model": (s.objective, s.predictor, s.neighbors)
                                        == (DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR, "auto")
                                        and _is_default_temperature(run),
                                        "why": DEFAULT_CHOICE}},
        "training": {**s.to_dict(), "rounds_completed": run.metrics[-1]["round"],
                     "timing": timing, "mapper": run.mapper_desc()},
        "selection": selection,
        "capture_eval": _capture_card(run),
        "simulator": _simulator_settings(run.sim),
        "hybridization": {"temperature_c": run.hybridization_c,
                          "training_temperature_c": float(getattr(run.sim, "temperature", math.nan)),
                          "note": "primo simulate ends the anneal at temperature_c; the "
                                  "simulator trained the predictor at training_temperature_c"},
        "data": extra["data"],
        "versions": _versions(),
        "metrics": metrics,
        "outputs": {"metrics": "metrics.csv", "figure": "yields.png" if len(d) else None,
                    "tensorboard": "logs", "checkpoint": CHECKPOINT},
    }
    card = write_card(out, card)
    from ..io import write_marker

    write_marker(out, "train")  # the finished model's files: --overwrite may replace only those
    from ..io import read_marker

    # the best round's copy, written by this run (its marker says so); never anything else
    if (out / BEST).is_dir() and (read_marker(out / BEST) or {}).get("command") == "train":
        shutil.rmtree(out / BEST, ignore_errors=True)  # its models are the kept round's, above
    run.log(f"done in {elapsed:.0f} s (simulation {sim_s:.0f} s); held-out similar pairs reaching "
            f"yield 0.5: {metrics.get('sim_pos_similar', math.nan):.1%}, dissimilar: "
            f"{metrics.get('sim_pos_dissimilar', math.nan):.2%}")
    return TrainResult(out, card, run.metrics, int(run.metrics[-1]["round"]))


def _keep_best(run: _Run, m: _Models, s: TrainSettings, out: Path) -> dict:
    """Load the best capture-evaluated round's models into ``m`` (``keep_best``); say which."""
    last = int(run.metrics[-1]["round"])
    best = run.best_round()
    sel = {"kept_round": last, "last_round": last, "by": "last round"}
    if best is None or not s.keeps_best:
        return sel
    sel.update({"by": "lowest capture_p50 (ties: highest capture_map10)",
                "kept_round": int(best["round"])})
    if int(best["round"]) != last:
        from ..encoder.model import load_encoder
        from ..model_dir import load_keras_file
        from ..predictor.model import load_predictor

        m.encoder.set_weights(load_keras_file(load_encoder, out / BEST / "encoder.keras",
                                              "encoder").get_weights())
        m.predictor.set_weights(load_keras_file(load_predictor, out / BEST / "predictor.keras",
                                                "predictor").get_weights())
        run.log(f"keeping round {best['round']} (capture evaluation: proportion at 50 % recall "
                f"{best['capture_p50']:.3%}, mAP@10 {best['capture_map10']:.3f}) over round {last}")
    return sel


def _is_default_temperature(run: _Run) -> bool:
    t = getattr(run.sim, "temperature", None)
    return t is not None and abs(float(t) - default_train_temperature(run.hybridization_c)) < 1e-9


def _capture_card(run: _Run) -> dict | None:
    es = getattr(run, "capture_set", None)
    if es is None:
        return None
    s = run.s
    rows = [r for r in run.metrics if "capture_p50" in r]
    best = run.best_round()
    keys = ("capture_p50", "capture_p90", "capture_map10", "capture_probe_far")
    return {"documents": int(es.n_db), "queries": int(len(es.query_rows)), "k": int(es.k),
            "every": s.capture_eval_every, "refine": s.capture_eval_refine,
            "sample": s.capture_eval_sample, "capture_model": "anneal",
            "protocol": getattr(run, "protocol", None),
            "map10_relevance": getattr(run, "capture_relevance", None),
            "rounds": {int(r["round"]): {k: r.get(k) for k in keys} for r in rows},
            "best": None if best is None else {"round": int(best["round"]),
                                               **{k: best.get(k) for k in keys}}}


def _predictor_card(s: TrainSettings) -> dict:
    if s.predictor == "scan":
        from ..constants import RP as _rp

        return {"kind": "scan", "energy_head": True,
                "context": {"target": _rp, "query": _rp[:TOEHOLD]},
                "energy_weight": s.energy_weight,
                "inputs": "target one-hot, query one-hot (same sense)",
                "output": ["yield of target + RP with revcomp(query + RP[:6])",
                           "binding free energy (kcal/mol) at the hybridization temperature"]}
    return {"kind": "local-match", "window": s.window, "pool_size": s.pool_size,
            "conv_filters": s.conv_filters, "conv_width": s.conv_width,
            "global_pool": s.global_pool, "context": _context_bases(s.context),
            "energy_head": s.uses_energies,
            "energy_weight": s.energy_weight if s.uses_energies else None,
            "inputs": "target one-hot, query one-hot (same sense)",
            "output": "yield of target + RP with revcomp(query + RP[:6])"}


def _triplets(xa, xb, y, threshold: float, k: int, rng: np.random.Generator, radii=None):
    """In-batch triplets of a balanced batch: the anchors (rows of the similar pairs, each with its
    own positive ``xb[a]``) and, per anchor, ``k`` candidates among ``xb`` that are dissimilar to it
    (distance > threshold), drawn with replacement; weight 0 where an anchor has none.

    ``radii`` ``(ra, rb)``: the rows' neighbourhood radii (``--neighbors``); distances are then
    divided by the larger radius of each anchor-candidate pair."""
    anchors = np.flatnonzero(np.asarray(y) > 0.5).astype(np.int32)
    d2 = _data.pairwise_sq_distances(xa[anchors], xb)
    if radii is not None:
        ra, rb = radii
        d2 = np.maximum(d2, 0.0) / _data._pair_scale(np.asarray(ra)[anchors][:, None],
                                                     np.asarray(rb)[None, :]) ** 2
    far = d2 > float(threshold) ** 2
    neg = np.zeros((len(anchors), k), np.int32)
    w = np.zeros((len(anchors), k), np.float32)
    for r in range(len(anchors)):
        cand = np.flatnonzero(far[r])
        if len(cand):
            neg[r] = rng.choice(cand, size=k, replace=len(cand) < k)
            w[r] = 1.0
    return anchors.reshape(-1, 1), neg, w


def _quantiles(y) -> dict:
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return {}
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    return {f"q{int(q * 100):02d}": float(v) for q, v in zip(qs, np.quantile(y, qs))}


def _skipped_rows() -> list:
    from ..features.store import skipped_rows

    return skipped_rows()
