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

# Why one file of ~780 lines: the run's state (_Run: data, sampler, replay buffer, random streams,
# metrics) is shared by every phase of a round and by resume; the phases read best beside it.
# What does not need that state lives apart: settings.py, steps.py (TensorFlow), pairs.py,
# checkpoint.py, card.py, capture_eval.py.

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..constants import TEMPERATURE_C
from ..errors import DataError, UsageError
from ..io import atomic_dir, atomic_file
from ..progress import progress
from . import data as _data
from .checkpoint import BEST, CHECKPOINT, read_checkpoint, write_checkpoint
from .metrics import TensorBoardLog, agreement, bce, separation, write_metrics_csv
# re-exported: earlier code imports these from here
from .settings import (DEFAULT_CHOICE, DEFAULT_MARGINS, DEFAULT_NEIGHBORS,  # noqa: F401
                       DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR, DEFAULT_TRAIN_TEMPERATURE_C,
                       NEIGHBORS_MAX_FRACTION, OBJECTIVES, PHYSICS_SEED_FROM, PREDICTORS,
                       TrainResult, TrainSettings, default_train_temperature)
from .card import model_card, quantiles as _quantiles, simulator_settings
from .pairs import (default_simulator, mutate_codes, seed_pair_codes,  # noqa: F401
                    sequences, simulate_energies, simulate_yields, triplets)
from .steps import Models, setup_tf
# earlier names, kept for scripts and tests that import them from here
_triplets, _simulate_energies = triplets, simulate_energies

__all__ = ["TrainSettings", "train", "mutate_codes", "seed_pair_codes", "TrainResult",
           "PREDICTORS", "OBJECTIVES", "DEFAULT_OBJECTIVE", "DEFAULT_PREDICTOR",
           "DEFAULT_NEIGHBORS"]


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
                       "setup_s": 0.0, "pairs_s": 0.0}
        self.elapsed_before = 0.0
        self.t0 = time.perf_counter()
        # the replay buffer's binding energies (predictors with an energy head)
        self.buffer_e = None

    # ---- random streams (separate so that changing one phase does not shift another)
    def make_rngs(self, seed: int):
        ss = np.random.SeedSequence(seed)
        # a new stream goes at the end: the earlier ones stay what they were
        names = ["split", "threshold", "seed_pairs", "sampler", "fit", "eval", "stats", "objective",
                 "fresh", "physics"]
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
            if n_held < s.heldout_rows:   # said, not silent: the store is small for the setting
                self.log(f"note: holding out {n_held:,} rows, a fifth of the {src.n:,} in the "
                         f"store (heldout_rows {s.heldout_rows:,} asks for more)")
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
                self.log(f"similarity: the {k} nearest neighbors of each document{how}; "
                         f"distances in units of each pair's neighborhood radius")
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

    def refresh_pairs(self, segments=None) -> None:
        """A new training block and its pairs (neighborhoods, similar and near pairs): timed
        as ``pairs_s``."""
        t = time.perf_counter()
        self.sampler.refresh(segments)
        self.timing["pairs_s"] = self.timing.get("pairs_s", 0.0) + time.perf_counter() - t

    def check_block(self):
        smp = self.sampler
        where = getattr(self.source, "path", None)
        if len(smp.similar) == 0:
            raise DataError(
                f"similarity threshold {self.threshold:g} leaves no similar pairs among "
                f"{len(smp.X):,} training rows (closest pair at distance "
                f"{smp.min_distance:.4g})", path=where, option="threshold",
                hint="use `threshold` auto to calibrate it from the distance distribution, "
                     "or a larger `threshold`")
        if self.s.objective == "rank":
            anchors = len(np.unique(smp.similar)) if len(smp.similar) else 0
            if anchors < 3:
                raise DataError(
                    f"the rank objective needs at least 3 documents that have a similar neighbor; "
                    f"threshold {self.threshold:g} gives {anchors} among {len(smp.X):,} "
                    f"training rows",
                    path=where, option="objective",
                    hint="use a larger `threshold` (or `threshold` auto with a larger "
                         "`threshold_quantile`), more documents, or `objective` paper")
        if smp.similar_fraction > 0.5:
            what = (f"neighbors {smp.neighbors}" if smp.neighbors else
                    f"similarity threshold {self.threshold:g}")
            raise DataError(f"{what} makes {smp.similar_fraction:.0%} of pairs similar among "
                            f"{len(smp.X):,} training rows", path=where,
                            option="neighbors" if smp.neighbors else "threshold",
                            hint=("use a smaller `neighbors`" if smp.neighbors else
                                  "use `threshold` auto, or a smaller `threshold`"))

    # ---- phases
    def seed_predictor(self, m: Models):
        s = self.s
        t_codes, q_codes = seed_pair_codes(s.seed_pairs, self.rngs["seed_pairs"],
                                           mutants=s.seed_mutants)
        self.log(f"seeding the predictor: simulating {s.seed_pairs:,} random mutant pairs "
                 f"({self.mapper_desc()})")
        t = time.perf_counter()
        y, e = self.simulate_pairs(t_codes, q_codes, desc="seed pairs")
        self.timing["seed_simulation_s"] += time.perf_counter() - t
        t = time.perf_counter()
        loss = math.nan
        if len(y):
            loss = m.fit_predictor(t_codes, q_codes, y, s.seed_epochs, s.predictor_batch,
                                   self.rngs["fit"], energies=e, desc="predictor seeding")
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
        return simulate_yields(self.sim, t_codes, q_codes, self.mapper)

    def simulate_pairs(self, t_codes, q_codes, desc="simulation"):
        """Yields (and binding energies, for an energy head, else None) of the pairs the
        predictor learns: under the card's physics, or, for robust training
        (``physics_perturb`` > 0), split into ``physics_draws`` random groups, each under its own
        seeded perturbation of every nearest-neighbor parameter (seeds from the run's seed)."""
        s = self.s

        def under(sim, t, q):
            if self.energies:
                return simulate_energies(sim, t, q, self.mapper)
            return simulate_yields(sim, t, q, self.mapper), None

        if not s.physics_perturb or len(t_codes) == 0:
            return under(self.sim, t_codes, q_codes)
        rng = self.rngs["physics"]
        n = len(t_codes)
        groups = np.array_split(rng.permutation(n), min(s.physics_draws, n))
        seeds = [int(v) for v in rng.integers(PHYSICS_SEED_FROM, 2**32 - 1, size=len(groups))]
        y = np.zeros(n, np.float32)
        e = np.zeros(n, np.float32) if self.energies else None
        self.last_draws = []
        for idx, seed in zip(groups, seeds):
            idx = np.sort(idx)
            self.last_draws.append((seed, idx))
            sim = self.sim.derive(perturb=(float(s.physics_perturb), seed))
            y[idx], e_idx = under(sim, t_codes[idx], q_codes[idx])
            if e is not None:
                e[idx] = e_idx
        return y, e

    def mapper_desc(self) -> str:
        d = getattr(self.mapper, "describe", None)
        return d() if d else "serial"

    def encoder_phase(self, m: Models, rnd: int) -> dict:
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
                anchors, neg, w = triplets(xa, xb, y, self.threshold, s.rank_candidates,
                                            self.rngs["objective"],
                                            radii=self.sampler.last_radii)
                out = m.triplet_step(tf.constant(xa), tf.constant(xb), tf.constant(anchors),
                                     tf.constant(neg), tf.constant(w))
            sums += np.array([float(v) for v in out])
        self.timing["encoder_s"] += (dt := time.perf_counter() - t)
        mean = sums / max(s.steps, 1)
        return {"encoder_loss": mean[0], "encoder_bce": mean[1], "encoder_reg": mean[2],
                "encoder_acc": mean[3], "time_encoder_s": dt}

    def predictor_phase(self, m: Models, rnd: int) -> dict:
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
        y, e = self.simulate_pairs(ta, qa, desc=f"round {rnd} simulation")
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
                                                    energies=be, desc=f"round {rnd} predictor")
        row["time_predictor_s"] = time.perf_counter() - t
        self.timing["predictor_s"] += row["time_predictor_s"]
        return row

    def _choose_fresh(self, m: Models, ta, qa, dist):
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

    def evaluate_capture(self, m: Models, rnd: int) -> dict:
        from ..simulation.capture import Protocol
        from .capture_eval import evaluate_capture

        t = time.perf_counter()
        sim = self.sim
        h = self.hybridization_c
        if abs(h - float(sim.temperature)) > 1e-9:
            sim = sim.at_temperature(h)  # the capture runs at the protocol's temperatures
        protocol = Protocol(anneal_to=h, na_molar=float(getattr(sim, "na_molar", 1.0)))
        row = evaluate_capture(self.capture_set, m.encode_codes, m.predict_codes, sim, protocol,
                               refine=self.s.capture_eval_refine,
                               sample=self.s.capture_eval_sample,
                               rng=np.random.default_rng([int(self.s.seed), 0xCA97, rnd]),
                               mapper=self.mapper)
        self.capture_relevance = row.pop("capture_map10_relevance")
        self.timing["capture_simulation_s"] = (self.timing.get("capture_simulation_s", 0.0)
                                               + row.pop("capture_simulation_s"))
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

    def save_best(self, m: Models) -> None:
        with atomic_dir(self.out / BEST, command="train") as tmp:
            m.encoder.save(tmp / "encoder.keras")
            m.predictor.save(tmp / "predictor.keras")

    def evaluate(self, m: Models, which: str = "round", desc="held-out pairs"):
        """Simulate a held-out set; returns (metrics, distances, yields, predicted, kind)."""
        ei, ej, d, kind = self.eval_sets[which]
        if len(ei) == 0:
            z = np.zeros(0)
            return {}, z, z, z, z
        t = time.perf_counter()
        codes = m.encode_codes(self.Xh)
        ti, qj = codes[ei], codes[ej]
        t_sim = time.perf_counter()
        y = self.simulate(ti, qj, desc=desc)
        self.timing["eval_simulation_s"] = (self.timing.get("eval_simulation_s", 0.0)
                                            + time.perf_counter() - t_sim)
        p = m.predict_codes(ti, qj)
        similar = d <= self.threshold
        row = separation(y, similar)
        row["eval_agree"] = agreement(p, y)
        seqs = sequences(codes)
        from ..dna import gc_fraction, longest_homopolymer

        row["gc_mean"] = float(np.mean([gc_fraction(q) for q in seqs])) if seqs else math.nan
        row["max_homopolymer"] = float(np.mean([longest_homopolymer(q) for q in seqs])) if seqs else math.nan
        row["time_eval_s"] = time.perf_counter() - t
        self.timing["eval_s"] += row["time_eval_s"]
        return row, d, y, p, kind

    # ---- checkpoints
    def save_checkpoint(self, m: Models, rnd: int, extra: dict) -> None:
        t = time.perf_counter()
        bt, bq, by = self.buffer
        more = {} if getattr(self, "buffer_e", None) is None else {"buffer_e": self.buffer_e}
        arrays = {"buffer_t": bt, "buffer_q": bq, "buffer_y": by, "heldout": self.heldout, **more}
        state = {"round": rnd, "settings": self.s.to_dict(), "rng": self.rng_state(),
                 "threshold": self.threshold_info, "metrics": self.metrics,
                 "timing": self.timing, "elapsed_s": self.elapsed(),
                 "segments": [int(x) for x in self.sampler.segments],
                 "simulator": simulator_settings(self.sim),
                 "primo_version": __version__, **extra}
        write_checkpoint(self.out / CHECKPOINT, m, state, arrays)
        self.timing["checkpoint_s"] += time.perf_counter() - t


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
    from ..io import (abandon_output_dir, check_output_dir, claim_output_dir,
                      publish_partial_dir, read_marker, resume_partial_dir, start_partial_dir)

    out = Path(out)
    s = dataclasses.replace(settings) if settings is not None else TrainSettings()
    s.check()
    inputs = [features] if isinstance(features, (str, os.PathLike)) else []
    state = arrays = None
    partial = False     # built beside an earlier model, which stays until the new one is complete
    existed = out.is_dir()
    if resume:
        work = out
        # an interrupted replacement of an earlier model (newer than that model's checkpoint)
        part = resume_partial_dir(out, command="train")
        if part is not None and (part / CHECKPOINT).is_dir():
            work, partial = part, True
        ck, state, arrays = read_checkpoint(work)
        from ..model_dir import versions_compatible

        made_by = state.get("primo_version", "?")
        if not versions_compatible(made_by, __version__):
            raise DataError(f"checkpoint was written by primo {made_by}, this is primo {__version__}",
                            path=ck, hint="resume with that primo version, or train again without `resume`")
        saved = TrainSettings.from_dict(state["settings"])
        if saved.seed is None:
            raise DataError("checkpoint has no seed", path=ck, hint="start again without `resume`")
        saved.rounds = max(saved.rounds, s.rounds) if settings is not None else saved.rounds
        s = saved
    else:
        # the two temperatures, resolved once and recorded (checkpoint and card)
        s.resolve_temperatures(None if simulator is None
                               else getattr(simulator, "temperature", None))
        if simulator is None:
            simulator = default_simulator(temperature=s.train_temperature_c)

        if (not overwrite and (out / CHECKPOINT).exists()
                and (read_marker(out) or {}).get("command") == "train"):
            raise UsageError(f"output directory {out} holds an earlier `primo train` run",
                             option="output",
                             hint="continue it with `resume`, or pass `overwrite` to replace it")
        # an earlier model of primo train is replaced only with overwrite, never other files,
        # and only once the new one is complete: it is built beside it until then
        if check_output_dir(out, "train", overwrite=overwrite, inputs=inputs) is not None:
            work = start_partial_dir(out, command="train", overwrite=overwrite, inputs=inputs)
            partial = True
        else:
            work = claim_output_dir(out, command="train", overwrite=overwrite, inputs=inputs)
        if s.seed is None:
            s.seed = int(np.random.SeedSequence().entropy % (2 ** 31))

    own_source = False
    try:
        if isinstance(features, (str, os.PathLike)):
            source = _data.open_features(features)
            own_source = True
        else:
            source = features
            if source.n == 0:
                raise DataError("feature matrix has no rows, nothing to train on",
                                hint="give a non-empty feature store")
        try:
            result = _train(source, work, s, simulator, mapper, state, arrays, log, on_round)
        finally:
            if own_source:
                source.close()
    except BaseException:
        if not resume and not (work / CHECKPOINT).is_dir():
            # nothing to resume: undo what this run wrote, and nothing else
            abandon_output_dir(work, existed=existed and not partial,
                               names=("logs", "metrics.csv", CHECKPOINT, BEST, "yields.png"))
        raise
    if partial:
        result.path = publish_partial_dir(work, out, command="train", overwrite=True,
                                          inputs=inputs)
    return result


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
                        option="features",
                        hint="resume with the same `features`, or start again without `resume`")
    run.set_rng_state(state["rng"])
    run.metrics = state["metrics"]
    run.timing.update(state["timing"])
    run.elapsed_before = float(state["elapsed_s"])
    run.setup_data(heldout=arrays["heldout"], threshold_info=state["threshold"])
    run.setup_capture_eval()
    if state.get("segments") and not run.sampler.whole:
        run.refresh_pairs(state["segments"])
    else:
        run.refresh_pairs()
    ck = out / CHECKPOINT
    m = Models(s, source.dim, None, 1.0, s.seed,
                encoder=load_keras_file(load_encoder, ck / "encoder.keras", "encoder"),
                predictor=load_keras_file(load_predictor, ck / "predictor.keras", "predictor"))
    m.load_optimizer_arrays(arrays)
    run.buffer = (arrays["buffer_t"], arrays["buffer_q"], arrays["buffer_y"])
    run.buffer_e = arrays.get("buffer_e")
    if run.energies and run.buffer_e is None:
        raise DataError("checkpoint lacks the replay buffer's energies", path=ck,
                        hint="start again without `resume`")
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
    run.refresh_pairs()
    run.check_block()
    center, msq = _data.row_norm_stats(source, rows=np.setdiff1d(np.arange(source.n), run.heldout),
                                       rng=run.rngs["stats"])
    center, scale = feature_scaling_from_stats(center, msq, source.dim)
    stats = {"scale": scale, "centered_rms_norm": math.sqrt(msq)}
    m = Models(s, source.dim, center, scale, s.seed)
    # the block's pairs are timed apart (pairs_s)
    run.timing["setup_s"] += time.perf_counter() - t_setup - run.timing["pairs_s"]
    seed_loss = run.seed_predictor(m)
    row0, d0, y0, _, _ = run.evaluate(m, "round", desc="round 0 held-out")
    row0.update({"round": 0, "predictor_loss": seed_loss, "elapsed_s": run.elapsed()})
    run.metrics = [row0]
    before = {"distance": d0.tolist(), "yield": y0.tolist()}
    return m, stats, before


def _train(source, out: Path, s: TrainSettings, simulator, mapper, state, arrays, log, on_round):
    if simulator is None:
        simulator = default_simulator(state.get("simulator") if state else None)
    sim = simulator
    if s.physics_perturb and (not hasattr(sim, "derive")
                              or getattr(sim, "backend", "vienna") != "vienna"):
        raise UsageError("robust training perturbs ViennaRNA's parameters; this simulator "
                         f"({type(sim).__name__}, backend {getattr(sim, 'backend', '?')}) has "
                         "none to perturb", option="physics_perturb",
                         hint="use the vienna backend, or drop physics_perturb")
    run = _Run(source, out, s, sim, mapper, log, on_round)
    run.make_rngs(s.seed)
    setup_tf(s.seed)
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
                run.refresh_pairs()
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


def _finish(run: _Run, m: Models, s: TrainSettings, out: Path, extra: dict) -> TrainResult:
    from ..model_dir import ENCODER_NAME, PREDICTOR_NAME, write_card
    from .plots import plot_yield_separation

    t_finish = time.perf_counter()
    selection = _keep_best(run, m, s, out)
    eval_before = run.timing["eval_s"]
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
                              xlabel=("feature distance / neighborhood radius"
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
    # the final evaluation is in eval_s; the models' files, the figure and the rest here
    timing["finish_s"] = time.perf_counter() - t_finish - (timing["eval_s"] - eval_before)
    # what no phase above holds (metrics files, TensorBoard, logging): every second is somewhere
    timing["other_s"] = max(0.0, elapsed - sum(v for k, v in timing.items()
                                               if k not in _TIMING_PARTS))
    timing["total_s"] = elapsed
    sim_s = timing["seed_simulation_s"] + timing["simulation_s"]
    timing["simulation_total_s"] = sim_s
    timing["shares"] = _timing_shares(timing)
    card = model_card(run, s, extra, metrics, selection, timing)
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


#: timing keys that are parts of other keys (the simulator's share of eval_s and capture_eval_s)
_TIMING_PARTS = ("eval_simulation_s", "capture_simulation_s")


def _timing_shares(t: dict) -> dict:
    """The run's time by what spent it: the simulator (seed, fresh, held-out and capture
    evaluations), TensorFlow (encoder steps, predictor fits, encoding and predicting in the
    evaluations), the training block's pairs (neighborhoods, similar and near pairs), the rest."""
    g = t.get
    sim = (g("seed_simulation_s", 0.0) + g("simulation_s", 0.0) + g("eval_simulation_s", 0.0)
           + g("capture_simulation_s", 0.0))
    tf = (g("seed_fit_s", 0.0) + g("encoder_s", 0.0) + g("predictor_s", 0.0)
          + g("eval_s", 0.0) - g("eval_simulation_s", 0.0)
          + g("capture_eval_s", 0.0) - g("capture_simulation_s", 0.0))
    pairs = g("pairs_s", 0.0)
    total = g("total_s", 0.0)
    return {"simulator_s": sim, "tensorflow_s": tf, "pairs_s": pairs,
            "other_s": max(0.0, total - sim - tf - pairs)}


def _keep_best(run: _Run, m: Models, s: TrainSettings, out: Path) -> dict:
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


def _skipped_rows() -> list:
    from ..features.store import skipped_rows

    return skipped_rows()
