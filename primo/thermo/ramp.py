"""Binding free energies and their temperature dependence, from the thermodynamic simulator.

For a target strand ``A`` (feature region + RP) and a probe strand ``B`` (reverse complement of the
query + toehold), the simulator gives ensemble free energies ``G_A, G_B, G_AA, G_BB, G_AB``
(kcal/mol, 1 M standard state; :class:`primo.thermo.simulator.Simulator`). The *binding* free
energies are the differences

    dG_AB = G_AB - G_A - G_B      (the probe with the target)
    dG_AA = G_AA - 2 G_A          (the target with itself; homodimer symmetry included)
    dG_BB = G_BB - 2 G_B          (the probe with itself)

so that ``K = exp(-dG / RT)`` (L/mol) is the association constant of each complex.

Temperature dependence
----------------------
An anneal needs ``dG`` at every temperature of the ramp. Evaluating ViennaRNA at 75 temperatures
per pair is out of the question at 1.6 M documents, so each ``dG`` is evaluated at a few *node*
temperatures spread over the ramp (by default 4: the final temperature, the start of the ramp and
two evenly between) and interpolated linearly in between. A two-state line ``dG = dH - T dS``
through two temperatures was tried first and rejected: the ensemble free energy of an 86-bp
duplex bends where the duplex melts, and the line was off by a median 1.3 kcal/mol (95th
percentile 7.5, i.e. 4.6 decades of K) at the temperatures between and beyond its points, against
0.49 kcal/mol (95th percentile 3.4; 2.1 decades) for 4 nodes and 0.28 (1.6; 1.0 decade) for 5,
over 28 pairs from identical to 50 % changed that can lock the probe
(``experiments/thermo_fit_error.py``, figures in the README). :func:`pair_thermodynamics` evaluates
only what is needed: every pair at the final temperature, and the other nodes only for pairs that
can lock the probe.

The kinetic model's nodes
-------------------------
The kinetic model (:mod:`primo.simulation.kinetic`) needs every pair's energy at every
temperature. Measured on 16 pairs (a random 80-nt probe against two targets each 20, 25, 30, 35,
40 and 45 % mutated and four unrelated ones), ViennaRNA at every °C from 21 to 95, against
evenly spaced nodes with linear interpolation, over the temperatures where the mutants bind
(``K > 1e2``): 4 nodes err by up to 2.96 kcal/mol (1.8 decades of ``K``, lock temperatures moved
by up to 3 °C), 8 by 1.16 (0.70 decades), 12 by 0.48 (0.29 decades, median 0.02 kcal/mol; lock
temperatures within 1 °C), 16 by 0.21. In the kinetic capture of those targets competing for a
5 pM probe, the largest relative error of a captured fraction above the bead background fell
from 16 % (4 nodes) to 3 % (8) and 0.6 % (12) at ``k_on`` 1e6 /M/s, and from 27 % to 7 % and 3 %
at 1e7. The kinetic model therefore uses 12 nodes (``Protocol.kinetic_nodes``) for the pairs that
can lock; weaker pairs have no melting transition to resolve, so they are evaluated at every third
node until negligible (:func:`pair_thermodynamics`, ``negligible_log_k``), which cost 95 pair
evaluations above 21 °C for the 16 pairs against 105 for all at every node. Unrelated pairs do not
unbind to ``K = 0``: their ensemble ``dG`` levels off at about -5.5 kcal/mol above ~60 °C
(``K`` ~ 1e3-1e4 L/mol) and even falls by up to 0.03 kcal/mol per °C there.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .equilibrium import GAS_CONSTANT

__all__ = ["Thermo", "binding_energies", "fit_line", "pair_thermodynamics", "node_temperatures",
           "KELVIN"]

KELVIN = 273.15


def binding_energies(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dG_AB, dG_AA, dG_BB)`` in kcal/mol from an ``(n, 5)`` array of simulator free energies.

    ``+inf`` where a complex has no structure at all (it never forms).
    """
    g = np.asarray(g, dtype=np.float64).reshape(-1, 5)
    with np.errstate(invalid="ignore"):
        dab = g[:, 4] - g[:, 0] - g[:, 1]
        daa = g[:, 2] - 2 * g[:, 0]
        dbb = g[:, 3] - 2 * g[:, 1]
    return dab, daa, dbb


def fit_line(temperatures_c, dg) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``(dH, dS)`` of ``dG(T) = dH - T dS`` through ``dg[..., j]`` at ``temperatures_c[j]``.

    ``dg`` has the temperatures on its last axis; rows with an infinite value at any temperature
    get ``dH = +inf, dS = 0`` (the complex never forms).
    """
    t = np.asarray(temperatures_c, dtype=np.float64) + KELVIN
    dg = np.asarray(dg, dtype=np.float64)
    if t.size < 2 or dg.shape[-1] != t.size:
        raise ValueError("need dG at two or more temperatures")
    finite = np.isfinite(dg).all(axis=-1)
    x = -t  # dG = dH + (-T) dS
    xm = x.mean()
    with np.errstate(invalid="ignore"):
        ym = dg.mean(axis=-1)
        ds = ((x - xm) * (dg - ym[..., None])).sum(axis=-1) / ((x - xm) ** 2).sum()
        dh = ym - ds * xm
    dh = np.where(finite, dh, np.inf)
    ds = np.where(finite, ds, 0.0)
    return dh, ds


def node_temperatures(final_c: float, start_c: float, nodes: int = 4) -> np.ndarray:
    """``nodes`` temperatures evenly from ``final_c`` to ``start_c`` (°C), the final one first."""
    if nodes < 1:
        raise ValueError("nodes must be >= 1")
    if nodes == 1 or start_c <= final_c:
        return np.asarray([float(final_c)])
    return np.linspace(float(final_c), float(start_c), int(nodes))


@dataclasses.dataclass
class Thermo:
    """Binding free energies of ``n`` targets with one probe at node temperatures.

    ``nodes`` (°C, increasing, shape ``(k,)``); ``dg_ab`` (``(n, k)``, kcal/mol) of each target
    with the probe, ``dg_aa`` (``(n, k)``) of each target with itself, ``dg_bb`` (``(k,)``) of the
    probe with itself. Between nodes ``dG`` is linear in the temperature, beyond the last node it
    continues the last segment, below the first it is the first node's value (the capture never
    goes below its final temperature). ``+inf`` means the complex never forms.
    """

    nodes: np.ndarray
    dg_ab: np.ndarray
    dg_aa: np.ndarray
    dg_bb: np.ndarray

    def __post_init__(self):
        self.nodes = np.atleast_1d(np.asarray(self.nodes, dtype=np.float64))
        k = self.nodes.size
        self.dg_ab = np.asarray(self.dg_ab, dtype=np.float64).reshape(-1, k)
        self.dg_aa = np.asarray(self.dg_aa, dtype=np.float64).reshape(-1, k)
        self.dg_bb = np.asarray(self.dg_bb, dtype=np.float64).reshape(k)
        if self.dg_aa.shape != self.dg_ab.shape:
            raise ValueError("dg_ab and dg_aa must have the same shape")
        if k > 1 and not (np.diff(self.nodes) > 0).all():
            raise ValueError("node temperatures must increase")

    def __len__(self):
        return len(self.dg_ab)

    def _weights(self, temperature_c):
        t = float(temperature_c)
        k = self.nodes.size
        if k == 1 or t <= self.nodes[0]:
            return 0, 0, 0.0
        j = int(np.clip(np.searchsorted(self.nodes, t) - 1, 0, k - 2))
        w = (t - self.nodes[j]) / (self.nodes[j + 1] - self.nodes[j])
        return j, j + 1, w

    def _at(self, m, temperature_c):
        j0, j1, w = self._weights(temperature_c)
        a, b = m[..., j0], m[..., j1]
        if w == 0.0:
            return a.copy()
        with np.errstate(invalid="ignore"):
            out = a + w * (b - a)
        return np.where(np.isinf(a) | np.isinf(b), np.inf, out)

    def dg(self, temperature_c):
        """``(dG_AB, dG_AA, dG_BB)`` at a temperature (°C)."""
        return (self._at(self.dg_ab, temperature_c), self._at(self.dg_aa, temperature_c),
                float(self._at(self.dg_bb, temperature_c)))

    def log_k(self, temperature_c):
        """Natural logs of ``(K_AB, K_AA, K_BB)`` (L/mol) at a temperature (°C)."""
        rt = GAS_CONSTANT * (float(temperature_c) + KELVIN)
        ab, aa, bb = self.dg(temperature_c)
        return -ab / rt, -aa / rt, -bb / rt

    def take(self, index) -> "Thermo":
        index = np.asarray(index)
        return Thermo(self.nodes, self.dg_ab[index], self.dg_aa[index], self.dg_bb)

    @classmethod
    def concatenate(cls, parts) -> "Thermo":
        parts = list(parts)
        return cls(parts[0].nodes, np.concatenate([p.dg_ab for p in parts]),
                   np.concatenate([p.dg_aa for p in parts]), parts[0].dg_bb)

    @classmethod
    def constant(cls, dg_ab, dg_aa, dg_bb=np.inf, nodes=(21.0,)) -> "Thermo":
        """Energies that do not change with temperature (the same value at every node)."""
        nodes = np.atleast_1d(np.asarray(nodes, dtype=np.float64))
        k = nodes.size
        ab = np.repeat(np.asarray(dg_ab, dtype=np.float64).reshape(-1, 1), k, axis=1)
        aa = np.repeat(np.asarray(dg_aa, dtype=np.float64).reshape(-1, 1), k, axis=1)
        return cls(nodes, ab, aa, np.full(k, float(dg_bb)))


def pair_thermodynamics(simulator, targets, query: str, *, nodes=None,
                        lock_log_k: float | None = None, negligible_log_k: float | None = None,
                        negligible_log_k_aa: float | None = None, weak_every: int = 3,
                        mapper=None, chunksize: int = 8,
                        progress: bool = False, return_free_energies: bool = False):
    """Binding free energies of every target sequence with one query, for a capture model.

    Every pair is evaluated at the simulator's temperature (the end of the anneal, ``nodes[0]``).
    Pairs whose association constant there reaches ``exp(lock_log_k)`` (the ones that may hold
    the probe through a ramp step, see :mod:`primo.simulation.capture`) are evaluated at the other
    ``nodes`` too. Without ``negligible_log_k`` (the anneal) the others keep their
    final-temperature ``dG`` at every node: their ``K`` is below the locking threshold at the end
    of the anneal, so they exchange at every step and the anneal's final amounts depend on the
    final temperature only. The probe's homodimer is evaluated at every node. ``nodes=None`` (or
    one node) is the final temperature alone (equilibrium capture).

    ``negligible_log_k`` (the kinetic model, which needs every pair's energy at every
    temperature, because a weak pair's binding at 60 °C slows every other pair there): the
    other pairs are evaluated upwards at every ``weak_every``-th node (their ``dG`` has no melting
    transition to resolve), linear in between, as long as the duplex has ``log K >
    negligible_log_k`` or the target's homodimer ``log K > negligible_log_k_aa`` (default: the
    same) at the node below; above the last node evaluated a pair keeps its energies. Measured
    (module docstring, "The kinetic model's nodes"): binding weakens as the temperature rises
    until it reaches the ensemble's plateau of about -5.5 kcal/mol (``K`` ~ 1e3-1e4 L/mol), and no
    pair's ``K`` rose again above its value where it first fell below 1e4-3e5 L/mol; so the kept
    value bounds ``K`` from above, and the pairs kept at ``K <= e^negligible_log_k`` change the free
    probe by at most that ``K`` times the total target concentration.

    Returns the :class:`Thermo` (and, with ``return_free_energies``, the simulator's ``(n, 5)``
    free energies of the pairs at the final temperature, from which two-strand yields follow).
    """
    targets = list(targets)
    n = len(targets)
    t_final = float(simulator.temperature)
    nodes = np.asarray([t_final] if nodes is None else nodes, dtype=np.float64)
    if abs(nodes[0] - t_final) > 1e-9:
        raise ValueError("the first node must be the simulator's temperature")
    g = simulator.free_energies(targets + [query], [query] * (n + 1), mapper=mapper,
                                chunksize=chunksize, progress=progress, checked=True)
    dab, daa, dbb = binding_energies(g)
    thermo = Thermo.constant(dab[:n], daa[:n], dbb[n], nodes=nodes)
    if nodes.size == 1:
        return (thermo, g[:n]) if return_free_energies else thermo
    rt = GAS_CONSTANT * (t_final + KELVIN)
    always = np.zeros(n, dtype=bool)
    if lock_log_k is not None:
        always = -dab[:n] / rt >= lock_log_k
    neg_aa = negligible_log_k if negligible_log_k_aa is None else negligible_log_k_aa

    def above(ab, aa, t):
        r = GAS_CONSTANT * (float(t) + KELVIN)
        with np.errstate(invalid="ignore"):
            return (-ab / r > negligible_log_k) | (-aa / r > neg_aa)

    weak = np.zeros(n, dtype=bool) if negligible_log_k is None else \
        ~always & above(dab[:n], daa[:n], t_final)
    evaluated = np.zeros((n, nodes.size), dtype=bool)
    evaluated[:, 0] = True
    every = max(1, int(weak_every))
    for j, t in enumerate(nodes[1:], start=1):
        due = always | (weak if j % every == 0 else np.zeros(n, dtype=bool))
        idx = np.flatnonzero(due)
        sel = [targets[i] for i in idx] + [query]
        gt = simulator.at_temperature(t).free_energies(sel, [query] * len(sel), mapper=mapper,
                                                       chunksize=chunksize, progress=progress,
                                                       checked=True)
        a, aa, bb = binding_energies(gt)
        thermo.dg_ab[idx, j] = a[:-1]
        thermo.dg_aa[idx, j] = aa[:-1]
        thermo.dg_bb[j] = bb[-1]
        evaluated[idx, j] = True
        if len(idx) and negligible_log_k is not None:
            w = weak[idx]
            weak[idx[w]] = above(a[:-1][w], aa[:-1][w], t)
    # the weak pairs between and above the nodes they were evaluated at (see above)
    for i in np.flatnonzero(evaluated[:, 1:].any(axis=1) & ~evaluated.all(axis=1)):
        ev = np.flatnonzero(evaluated[i])
        for m in (thermo.dg_ab, thermo.dg_aa):
            with np.errstate(invalid="ignore"):
                m[i] = np.interp(nodes, nodes[ev], m[i, ev])
            m[i, np.isnan(m[i])] = np.inf
    return (thermo, g[:n]) if return_free_energies else thermo
