"""Every setting of a training run (``primo train``), TensorFlow-free.

:class:`TrainSettings` holds the fields, their defaults and their checks; the resolution rules
(the two temperatures, threshold vs neighbourhoods, :meth:`TrainSettings.paper`) live here too, so
that the command line, the library and the checkpoint read them from one place.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from ..constants import ANNEAL_FROM_C, TEMPERATURE_C
from ..errors import UsageError
from ..model_dir import PREDICTORS  # ``--predictor`` choices (the first is the paper's)

__all__ = ["TrainSettings", "TrainResult", "PREDICTORS", "OBJECTIVES", "DEFAULT_OBJECTIVE",
           "DEFAULT_PREDICTOR", "DEFAULT_NEIGHBORS", "NEIGHBORS_MAX_FRACTION",
           "DEFAULT_TRAIN_TEMPERATURE_C", "DEFAULT_MARGINS", "DEFAULT_CHOICE",
           "default_train_temperature"]

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


def default_train_temperature(hybridization_c: float | None = None) -> float:
    """The training simulator's temperature (°C) when none is asked for: primo's default
    (:data:`DEFAULT_TRAIN_TEMPERATURE_C`), never below the hybridization temperature; the
    hybridization temperature itself when the default is None (the paper's method)."""
    h = TEMPERATURE_C if hybridization_c is None else float(hybridization_c)
    return h if DEFAULT_TRAIN_TEMPERATURE_C is None else max(float(DEFAULT_TRAIN_TEMPERATURE_C), h)
