"""The pairs training works on: random seed pairs for the predictor, in-batch triplets for the
rank objectives, and the simulator's yields (and binding energies) of encoded pairs."""

from __future__ import annotations

import numpy as np

from ..constants import FEATURE_LENGTH
from . import data as _data
from .steps import energy_targets

__all__ = ["mutate_codes", "seed_pair_codes", "triplets", "simulate_yields", "simulate_energies",
           "default_simulator"]


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


def sequences(codes) -> list[str]:
    from ..dna import decode_seqs

    return decode_seqs(codes) if len(codes) else []


def default_simulator(settings: dict | None = None, temperature: float | None = None):
    from ..thermo.simulator import Simulator

    if settings:
        return Simulator.from_dict(settings)
    return Simulator() if temperature is None else Simulator(temperature=temperature)


def simulate_yields(sim, t_codes, q_codes, mapper) -> np.ndarray:
    if len(t_codes) == 0:
        return np.zeros(0, np.float32)
    y = sim.yields(sequences(t_codes), sequences(q_codes), mapper=mapper, progress=True)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if len(y) != len(t_codes):
        raise RuntimeError(f"simulator returned {len(y)} yields for {len(t_codes)} pairs")
    return np.clip(y, 0.0, 1.0)


def simulate_energies(sim, t_codes, q_codes, mapper):
    """Yields and binding energies (kcal/mol) of pairs, from one free-energy computation."""
    if len(t_codes) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    from ..thermo.ramp import binding_energies

    g = sim.free_energies(sequences(t_codes), sequences(q_codes), mapper=mapper, progress=True)
    y = np.clip(np.asarray(sim.solve(g).yield_, dtype=np.float32).reshape(-1), 0.0, 1.0)
    return y, energy_targets(binding_energies(g)[0])


def triplets(xa, xb, y, threshold: float, k: int, rng: np.random.Generator, radii=None):
    """In-batch triplets of a balanced batch: the anchors (rows of the similar pairs, each with its
    own positive ``xb[a]``) and, per anchor, ``k`` candidates among ``xb`` that are dissimilar to it
    (distance > threshold), drawn with replacement; weight 0 where an anchor has none.

    ``radii`` ``(ra, rb)``: the rows' neighborhood radii (``neighbors``); distances are then
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
