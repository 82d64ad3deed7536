"""Every setting of a training run (``primo train``), TensorFlow-free.

:class:`TrainSettings` holds the fields, their defaults and their checks; the resolution rules
(the two temperatures, threshold vs neighborhoods, :meth:`TrainSettings.paper`) live here too, so
that the command line, the library and the checkpoint read them from one place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..constants import ANNEAL_FROM_C, TEMPERATURE_C
from ..errors import UsageError
from ..settings import cli_fields, check_field, field_kind, setting as _opt  # noqa: F401
from ..constants import PREDICTORS  # ``--predictor`` choices (the first is the paper's)

__all__ = ["TrainSettings", "TrainResult", "PREDICTORS", "OBJECTIVES", "DEFAULT_OBJECTIVE",
           "DEFAULT_PREDICTOR", "DEFAULT_NEIGHBORS", "NEIGHBORS_MAX_FRACTION",
           "DEFAULT_TRAIN_TEMPERATURE_C", "DEFAULT_MARGINS", "DEFAULT_CHOICE", "PAPER_SCHEDULE",
           "default_train_temperature", "OPTIMIZERS", "field_options", "PHYSICS_SEED_FROM"]

#: ``--objective`` choices (the first is the paper's)
OBJECTIVES = ("paper", "rank", "hamming-triplet")
#: what ``primo train`` uses when no ``--objective`` / ``--predictor`` is given: the best measured
#: configuration (README, "Training for the capture: predictors and objectives side by side
#: (measured)"; ``experiments/compare_objectives.py`` and ``experiments/compare_full_database.py``). Every
#: model card names it (``objective.primo_default``).
DEFAULT_OBJECTIVE = "paper"
DEFAULT_PREDICTOR = "local-match"
#: similarity for training when neither ``--threshold`` nor ``--threshold-quantile`` is given
#: (``neighbors="auto"``): each document's ``DEFAULT_NEIGHBORS`` nearest training documents, at
#: most :data:`NEIGHBORS_MAX_FRACTION` of them (at least 1), instead of the paper's global
#: distance threshold
DEFAULT_NEIGHBORS = 100
#: the automatic neighborhood never holds more than this share of the training documents
NEIGHBORS_MAX_FRACTION = 0.005
DEFAULT_CHOICE = ("primo's default: the paper's objective and local-match predictor, trained with "
                  "similarity by neighborhood (each document's 100 nearest) instead of the "
                  "paper's global threshold, against the simulator at 80 C for the 21 C hybridization, on a "
                  "short schedule (5 rounds of 300 steps) with hard negatives, dissimilar pairs "
                  "weighted 3x and the homopolymer regularizer: the best measured on the full "
                  "Fashion-MNIST database (docs/results/full-database.md, "
                  "docs/results/training-temperature.md). Under the default capture (kinetic) "
                  "and ramp program (auto: the paper's 25 h spent 70 % from 95 C down to 5 C "
                  "below the 80 C training temperature, 95-76:52.5,75-21:8.18182, the rule with "
                  "the smallest worst cell across k_on and perturbed physics), 3 seeds, 60,000 "
                  "documents, 40 queries: 50 % recall of the 100 nearest at 0.164 % +- 0.006 of "
                  "the database (0.90x +- 0.03 MRPT's, 0.93x against MRPT's mean of 5 runs; "
                  "every seed <= 0.97x), 90 % at 2.29 % +- 0.15 (1.63x +- 0.11 MRPT's; every "
                  "seed <= 1.75x), mAP@10 0.956 +- 0.004; under the paper's uniform ramp 0.97x "
                  "+- 0.06 and 1.55x (docs/results/default-model.md); --paper gives the paper's "
                  "method")
#: the paper's training schedule and encoder-phase choices (DESIGN.md), which :meth:`TrainSettings.paper`
#: sets; primo's defaults differ where a measurement chose otherwise (:data:`DEFAULT_CHOICE`)
PAPER_SCHEDULE = dict(rounds=20, steps=1000, seed_pairs=5000, seed_epochs=50, seed_mutants=1,
                      predictor_epochs=10, relaxation="soft", hard_negatives=0.0,
                      dissimilar_weight=1.0, homopolymer=0.0)
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
#: robust training's parameter draws take seeds from here up, apart from the evaluation's
#: (``primo simulate --perturb-seed``, ``experiments/robustness.py``'s ``perturbed-sN``, N small)
PHYSICS_SEED_FROM = 1000
#: optimizer names ``keras.optimizers.get`` knows (lower case; any case is accepted)
OPTIMIZERS = ("adadelta", "adafactor", "adagrad", "adam", "adamw", "adamax", "ftrl", "lamb",
              "lion", "nadam", "rmsprop", "sgd")


def field_options(cls=None) -> list:
    """The fields of ``cls`` (:class:`TrainSettings`) that the command line offers, in order:
    ``(field, metadata)``; the command line's options are generated from them."""
    return cli_fields(cls or TrainSettings)


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
        Similarity by neighborhood instead of a threshold (``primo train --similar-neighbors
        K``): a pair is similar
        when either document is among the other's K nearest training documents, whatever the
        local density (:class:`~primo.training.data.PairSampler`). ``"auto"`` (primo's default):
        K = :data:`DEFAULT_NEIGHBORS`, at most :data:`NEIGHBORS_MAX_FRACTION` of the training
        documents (at least 1). Distances are then in units of the pair's neighborhood radius
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
        neighbors for recall, every how many rounds (and at the last), and the cascade's refined
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
    physics_perturb, physics_draws
        Robust training (``primo train --physics-perturb SIGMA``): the seed and fresh pairs of
        each round are simulated in ``physics_draws`` groups, each under the card's physics with
        every nearest-neighbor free energy perturbed by a fresh seeded draw of ``SIGMA`` kcal/mol
        (the ``primo simulate --perturb`` model of parameter uncertainty; draw seeds from 1000
        up, apart from the evaluation's), so that the predictor learns yields averaged over the
        parameters' uncertainty and the encoder what holds across it. 0 (default): the card's
        physics only. The held-out metrics, the capture evaluation and the card's physics stay
        unperturbed.
    keep_best : bool or None
        Keep the round with the best capture evaluation (lowest proportion at 50 % recall) as the
        final model instead of the last round. None: on for every objective but the paper's
        (which keeps its last round, as the paper does).
    """

    threshold: float | None = _opt(
        75.0, "The paper's global similarity threshold (Euclidean distance) instead of "
        "--similar-neighbors; 'auto' calibrates it as a quantile of the pairwise distances "
        "(75 suits VGG16-FC2 features only).", lo=0, hi=1e9, lo_open=True, optional=True,
        default_text="not used unless given, or 75 with --paper")
    threshold_quantile: float = _opt(
        0.01, "With --threshold auto: the fraction of random pairs that count as similar.",
        lo=0, hi=0.5, lo_open=True)
    neighbors: int | str | None = _opt(
        "auto", "Similar = among each other's K nearest training documents, whatever the local "
        "density.", lo=1, hi=10**9, optional=True, auto=True, metavar="K",
        cli_name="--similar-neighbors", aliases=("--neighbors",),
        default_text=f"{DEFAULT_NEIGHBORS}, at most {NEIGHBORS_MAX_FRACTION:.1%} of the training "
                     "documents, unless --threshold or --threshold-quantile is given")
    calibration_rows: int = _opt(3000, "Rows sampled to calibrate the threshold.", lo=1,
                                 hi=10**9, cli=False)
    rounds: int = _opt(5, "Rounds of alternating encoder / predictor training.", lo=1,
                       hi=1_000_000, aliases=("--epochs",))
    steps: int = _opt(300, "Encoder steps per round.", lo=1, hi=100_000_000)
    batch_size: int = _opt(100, "Pairs per encoder step (half of them similar).", lo=2,
                           hi=1_000_000)
    seed_pairs: int = _opt(2000, "Random mutant pairs simulated to seed the predictor.", lo=0,
                           hi=100_000_000)
    seed_epochs: int = _opt(30, "Predictor epochs on the seed pairs.", lo=1, hi=100_000)
    seed_mutants: int = _opt(4, "Mutants per random seed target (1 in the paper; more is "
                                "cheaper to simulate).", lo=1, hi=100_000)
    sim_pairs: int = _opt(1000, "Fresh encoder pairs simulated per round to refit the "
                                "predictor.", lo=0, hi=100_000_000)
    sim_docs: int | None = _opt(None, "Documents those pairs are drawn among.", lo=2,
                                hi=1_000_000_000, optional=True,
                                default_text="sim-pairs / 4: strands reused")
    sim_similar_fraction: float = _opt(0.0, "Share of similar pairs among those fresh pairs (0 "
                                            "= purely random pairs).", lo=0, hi=1)
    sim_near_fraction: float = _opt(0.0, "Share of near dissimilar pairs (see --near-factor) "
                                         "among those fresh pairs.", lo=0, hi=1)
    predictor_epochs: int = _opt(5, "Predictor refit epochs per round.", lo=0, hi=100_000)
    predictor_batch: int = _opt(100, "Pairs per predictor fit step.", lo=1, hi=1_000_000,
                                cli=False)
    replay: int = _opt(20000, "Replay buffer of simulated pairs the predictor is refit on (0 = "
                              "fresh pairs only).", lo=0, hi=1_000_000_000)
    relaxation: str = _opt("straight-through", "Predictor input in the encoder phase: argmax "
                           "one-hots with soft gradients (straight-through) or the soft one-hots "
                           "(paper).", choices=("straight-through", "soft"))
    hard_negatives: float = _opt(0.5, "Share of the dissimilar pairs of encoder batches drawn "
                                      "just above the threshold (up to --near-factor x "
                                      "threshold).", lo=0, hi=1)
    near_factor: float = _opt(2.0, "Near dissimilar pairs lie within this multiple of the "
                                   "similarity threshold.", lo=1, hi=1000, lo_open=True)
    dissimilar_weight: float = _opt(3.0, "Loss weight of dissimilar pairs relative to similar "
                                         "ones.", lo=0, hi=1e6, lo_open=True)
    encoder_optimizer: str = _opt("adagrad", "Optimizer of the encoder (a keras.optimizers "
                                  "name).", choices=OPTIMIZERS)
    encoder_lr: float = _opt(1e-3, "Learning rate of the encoder's optimizer.", lo=0, hi=100,
                             lo_open=True)
    predictor_optimizer: str = _opt("rmsprop", "Optimizer of the predictor (a keras.optimizers "
                                    "name).", choices=OPTIMIZERS)
    predictor_lr: float = _opt(1e-3, "Learning rate of the predictor's optimizer.", lo=0,
                               hi=100, lo_open=True)
    hidden: int = _opt(2048, "Encoder hidden width.", lo=1, hi=1_000_000)
    output_activation: str | None = _opt(None, "Activation before the per-position softmax.",
                                         optional=True, cli=False)
    entropy: float = _opt(1e-2, "Strength of the encoder's per-position entropy regularizer.",
                          lo=0, hi=1e6)
    gc_balance: float = _opt(0.0, "Strength of the GC-balance regularizer (0 = off).", lo=0,
                             hi=1e6)
    gc_target: float = _opt(0.5, "GC fraction the GC regularizer pulls towards.", lo=0, hi=1,
                            lo_open=True, hi_open=True)
    homopolymer: float = _opt(2.0, "Strength of the homopolymer regularizer (0 = off).", lo=0,
                              hi=1e6)
    max_run: int = _opt(3, "Longest homopolymer the homopolymer regularizer tolerates.", lo=1,
                        hi=80)
    scaling: str = _opt("global", "Feature scaling of the encoder's input.",
                        choices=("global", "none"), cli=False)
    window: int = _opt(3, "Predictor local-match window (3 in the paper).", lo=1, hi=79)
    pool_size: int = _opt(3, "Predictor average-pooling size (3 in the paper).", lo=1, hi=78,
                          cli=False)
    conv_filters: int = _opt(36, "Predictor convolution filters (36 in the paper).", lo=1,
                             hi=100_000)
    conv_width: int = _opt(3, "Predictor convolution width (3 in the paper).", lo=1, hi=78,
                           cli=False)
    global_pool: str = _opt("average", "Predictor global pooling (average in the paper).",
                            choices=("average", "max", "both"))
    context: str = _opt("", "Show the predictor the probe's toehold (RP[:6]) after both "
                            "sequences ('' or none: no).", choices=("", "toehold"),
                        cli_choices={"none": "", "toehold": "toehold"}, default_text="none")
    heldout_rows: int = _opt(5000, "Rows held out of training for the separation metrics and "
                                   "the figure.", lo=0, hi=1_000_000_000)
    eval_pairs: int = _opt(100, "Held-out similar and random pairs simulated each round.",
                           lo=0, hi=100_000_000)
    final_eval_pairs: int = _opt(300, "Held-out similar and random pairs simulated at the "
                                       "end.", lo=0, hi=100_000_000)
    eval_every: int = _opt(5, "Evaluate the held-out pairs every this many rounds.", lo=1,
                           hi=1_000_000, cli=False)
    block_rows: int | None = _opt(None, "Rows per pair-sampling block.", lo=1,
                                  hi=1_000_000_000, optional=True,
                                  default_text="by memory, about 256 MB")
    refresh_every: int = _opt(1, "Load a new pair-sampling block every this many rounds.",
                              lo=1, hi=1_000_000, cli=False)
    seed: int | None = _opt(None, "Random seed: the same seed gives the same model.", lo=0,
                            hi=2**32 - 1, optional=True, default_text="drawn and recorded")
    predictor: str = _opt(DEFAULT_PREDICTOR, "Yield predictor: the paper's local-match network, "
                          "or the soft duplex scan (every diagonal of the pairing matrix; also "
                          "predicts the binding energy).", choices=PREDICTORS)
    objective: str = _opt(DEFAULT_OBJECTIVE, "Encoder objective: the paper's yield "
                          "cross-entropy; rank (similar documents out-bind far ones by --margin "
                          "kcal/mol of predicted energy); hamming-triplet (predictor-free triplet "
                          "loss on soft Hamming distance).", choices=OBJECTIVES)
    margin: float | None = _opt(None, "Triplet margin: kcal/mol for rank, fraction of positions "
                                "for hamming-triplet.", lo=0, hi=1e6, lo_open=True,
                                optional=True, default_text="2 for rank, 0.1 for hamming-triplet")
    rank_candidates: int = _opt(4, "Far in-batch documents per anchor among which rank / "
                                    "hamming-triplet mine the hardest negative.", lo=1,
                                hi=100_000)
    energy_weight: float = _opt(1.0, "Weight of the binding-energy regression in the "
                                     "predictor's loss (scan).", lo=0, hi=1e6)
    energy_head: bool | None = _opt(None, "Give local-match a binding-energy head.",
                                    optional=True, flag="--energy-head/--no-energy-head",
                                    default_text="on unless --objective paper; the scan "
                                                 "always has one")
    sim_candidates: int = _opt(1, "Candidate pairs per fresh pair of the predictor phase (1 = "
                                  "random fresh pairs, the paper); the predictor picks among "
                                  "them with the next two options.", lo=1, hi=100)
    sim_uncertain: float = _opt(0.0, "Share of fresh pairs taken among the candidates the "
                                     "predictor is least sure of.", lo=0, hi=1)
    sim_far_binders: float = _opt(0.0, "Share of fresh pairs taken among dissimilar candidates "
                                       "the predictor says bind.", lo=0, hi=1)
    capture_eval_docs: int = _opt(3000, "Held-out documents of the mini-database captured with "
                                        "the default protocol during training (0 = off).", lo=0,
                                  hi=1_000_000)
    capture_eval_queries: int = _opt(20, "Held-out queries of that mini-database.", lo=0,
                                     hi=10_000)
    capture_eval_k: int = _opt(10, "Nearest neighbors of the capture evaluation's recall.",
                               lo=1, hi=100_000, cli=False)
    capture_eval_every: int = _opt(5, "Capture-evaluate every this many rounds (and at the "
                                      "last).", lo=1, hi=10_000)
    capture_eval_refine: int = _opt(20, "Documents refined per query by the capture "
                                         "evaluation's cascade.", lo=0, hi=1_000_000, cli=False)
    capture_eval_sample: int = _opt(20, "Documents sampled per query by the capture "
                                         "evaluation's cascade.", lo=0, hi=1_000_000, cli=False)
    physics_perturb: float = _opt(0.0, "Robust training: simulate the predictor's pairs under "
                                  "the card's physics with every nearest-neighbor free energy "
                                  "perturbed by this sigma (kcal/mol), a fresh draw per group "
                                  "(0 = the card's physics only).", lo=0, hi=5,
                                  metavar="SIGMA")
    physics_draws: int = _opt(4, "Robust training: parameter draws per round (the seed and "
                                 "fresh pairs are split among them).", lo=1, hi=10_000)
    keep_best: bool | None = _opt(None, "Keep the round with the best capture evaluation, or "
                                        "the last round.", optional=True,
                                  flag="--keep-best/--keep-last",
                                  default_text="best unless --objective paper")
    hybridization_c: float | None = _opt(
        None, "Hybridization temperature of the protocol, where the anneal ends; recorded in "
        "the model card and used by primo simulate and by the capture evaluation during "
        "training.", lo=-50.0, hi=ANNEAL_FROM_C, optional=True, cli_name="--anneal-to",
        aliases=("--temperature",),
        label="the hybridization temperature, °C; at most the anneal's start",
        metavar="CELSIUS", default_text=f"{TEMPERATURE_C:g}, the paper's")
    train_temperature_c: float | None = _opt(
        None, "Temperature at which the simulator computes the yields the predictor learns. "
        "Near the top of the anneal only the duplexes that lock early count as binding, so the "
        "encoder learns to give neighbors those and the rest not.", lo=-50.0, hi=150.0,
        optional=True, cli_name="--train-temperature", metavar="CELSIUS",
        label="the training simulator's temperature, °C",
        default_text=f"{DEFAULT_TRAIN_TEMPERATURE_C:g}, or --anneal-to when higher; with "
                     "--paper, --anneal-to")

    def check(self) -> None:
        """Raise :class:`UsageError` (``option=`` the field's name) for impossible values: each
        field against its bounds or choices (:func:`field_options`), then the rules between
        fields."""
        for f in dataclasses.fields(self):
            check_field(f, getattr(self, f.name))

        def need(cond, msg, option, hint=None):
            if not cond:
                raise UsageError(msg, option=option, hint=hint)
        need(self.seed_pairs + self.sim_pairs > 0, "seed_pairs and sim_pairs cannot both be 0",
             "sim_pairs", hint="the predictor needs simulated pairs")
        need(self.sim_near_fraction <= 1 - self.sim_similar_fraction,
             f"sim_near_fraction ({self.sim_near_fraction:g}) and sim_similar_fraction "
             f"({self.sim_similar_fraction:g}) are shares of the same pairs: their sum must not "
             f"exceed 1", "sim_near_fraction")
        need(self.sim_uncertain + self.sim_far_binders <= 1,
             "sim_uncertain and sim_far_binders are shares of the same pairs: their sum must "
             "not exceed 1", "sim_far_binders")

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
        the paper's objective and local-match predictor, its schedule and encoder phase
        (:data:`PAPER_SCHEDULE`: 20 rounds of 1,000 steps, soft one-hots, no hard negatives nor
        weights nor homopolymer term), the last round kept, and the simulator at the
        hybridization temperature. ``options`` set other fields (``rounds``, ``seed``,
        ``threshold``, ``hybridization_c``, ...)."""
        kw = {"threshold": 75.0, "neighbors": None, "objective": "paper",
              "predictor": "local-match", "keep_best": False, **PAPER_SCHEDULE, **options}
        h = kw.get("hybridization_c")
        kw["hybridization_c"] = TEMPERATURE_C if h is None else h
        kw.setdefault("train_temperature_c", kw["hybridization_c"])
        return cls(**kw)

    @classmethod
    def from_options(cls, *, paper: bool = False, base: "TrainSettings | None" = None,
                     **options) -> "TrainSettings":
        """Settings from the options a user gave (the command line passes only those given):
        the rules that turn them into settings, in one place.

        * ``threshold`` or ``threshold_quantile`` given (and no ``neighbors``): the paper's global
          distance threshold instead of primo's neighborhoods; ``threshold="auto"``: calibrated
          (``threshold_quantile``). Both ``neighbors`` and a threshold: refused.
        * ``paper=True``: :meth:`paper`; options that would make it another method
          (``neighbors``, ``train_temperature_c``, another objective or predictor) are refused.

        ``base``: settings that ``options`` change (the rules apply to ``options``).
        """
        options = dict(options)
        if options.get("threshold") == "auto":
            options["threshold"] = None
        given = [n for n in ("threshold", "threshold_quantile") if n in options]
        if paper:
            clash = [n for n in ("neighbors", "train_temperature_c") if n in options]
            clash += [n for n in ("physics_perturb",) if options.get(n)]
            clash += [f"{n} {options[n]}" for n, v in (("objective", "paper"),
                                                       ("predictor", "local-match"))
                      if options.get(n, v) != v]
            if clash:
                raise UsageError(f"the paper's method fixes what these settings change; drop "
                                 f"{', '.join(clash)}", option="paper",
                                 hint="give the paper's method alone, or the settings without it")
            s = cls.paper(**options)
            if base is not None:
                raise UsageError("give either base settings or the paper's method", option="paper")
        else:
            if options.get("neighbors") is not None and given:
                raise UsageError(f"neighbors replaces the similarity threshold; drop "
                                 f"{' and '.join(given)}", option="neighbors",
                                 hint="give one of the two")
            if given and "neighbors" not in options:
                options["neighbors"] = None   # a threshold asked for: the paper's method
            s = cls(**options) if base is None else dataclasses.replace(base, **options)
        s.check()
        return s

    def resolve_temperatures(self, simulator_temperature: float | None = None) -> None:
        """Fix the two temperatures (recorded in the checkpoint and the card): the protocol's
        ``hybridization_c`` (default: a given simulator's temperature, else 21 °C) and the
        training simulator's ``train_temperature_c`` (a given simulator's, else
        :func:`default_train_temperature`)."""
        t = simulator_temperature
        if self.hybridization_c is None:
            self.hybridization_c = TEMPERATURE_C if t is None else float(t)
        if t is not None:
            self.train_temperature_c = float(t)
        elif self.train_temperature_c is None:
            self.train_temperature_c = default_train_temperature(self.hybridization_c)
        self.check()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        # written before neighborhood similarity existed: those runs used the global threshold
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
