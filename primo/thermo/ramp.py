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
at 1e7. Unrelated pairs do not unbind to ``K = 0``: their ensemble ``dG`` levels off at about
-5.5 kcal/mol above ~60 °C (``K`` ~ 1e3-1e4 L/mol) and even falls by up to 0.03 kcal/mol per °C
there.

Every pair at every node costs 13 simulator calls per pair, against ~1.4 for the anneal (every
pair at 21 °C, the pairs that can lock at 3 more nodes). The kinetic model therefore evaluates
only where an energy changes what the kinetics do (:func:`pair_thermodynamics` with ``budget``),
on 13 nodes (``Protocol.kinetic_nodes``; every fourth is one of the anneal's 4: the *coarse*
nodes 21, 45.7, 70.3 and 95 °C):

* A pair is *fast* at a temperature where ``log K <= lock_log_k - FAST_MARGIN`` (``k_off t_step
  >= e``): it exchanges with the free probe within a step, and since binding weakens as the
  temperature rises it stays fast above. A fast pair's energy there only sets how much of the
  free probe it holds, ``w K`` (``w``: the concentration the pair stands for in the pool).
* **Coarse nodes, upward.** A pair fast at a coarse node may stop there and keep that node's
  energies above it (its *tail*). Binding weakens with the temperature (no measured pair's ``K``
  rose again above the node where it fell below 1e4-3e5 L/mol; the plateau's rise is ~0.03
  kcal/mol per °C), so the kept ``K`` bounds ``K`` above, and the error in its hold is at most
  ``w K`` at the node. Tails are granted smallest hold first while all of them together hold at
  most ``budget`` of the free probe at any temperature (5 %,
  :data:`primo.simulation.cascade.NEGLIGIBLE_SHARE`; half of it for tails from 21 °C, 90 % by
  the second coarse node, :data:`TAIL_SHARES`). The cascade weighs a simulated document by
  itself and the documents imputed from it, a decoy sequence by its share of the decoys. A pair
  that can lock at 21 °C goes straight to the second-last coarse node (70.3 °C): the coarse
  nodes below it are evaluated by the bisection only where it is not locked throughout.
* **Bisection where a pair may lock.** Between evaluated nodes an interval is halved (down to
  one node spacing, 6.2 °C) unless it is *locked* throughout (``log K`` at its warm end ``>=
  log(k_on * seconds per °C * width / LOCKED_LOSS)``: whatever ``K`` is inside, at most 1 % of the
  duplex dissociates over it) or *fast* at its cold end (only the hold is interpolated). Both also
  need the target's homodimer to hold at most :data:`HOMODIMER_SHARE` of its strands (``2 K_AA c``
  with ``c`` ten times the mean document's, the pool's abundance spread: 27 of 1,838 weaker pairs
  of a 60,000-document query failed it at 21 °C; the previous per-pair ``K_AA > 1e6`` criterion
  alone had sent 22 pairs further). So where a pair goes from fast to locked (the melting
  "kink", the lock temperature) it has every node, as the dense grid has.
* Linear in between, the last value kept above the last node evaluated.

Measured (``docs/results/kinetic-capture.md``):

* The 16 pairs above and 16 more (a second probe), ViennaRNA at every °C and at the node
  temperatures: 49-62 evaluations above 21 °C (every node: 192; the previous scheme, 12 nodes
  with the weaker pairs at every third node: 103-130). Where a pair may lock (``lock_log_k - 1 <
  log K < locked``) the energies err by at most 0.05 / 0.10 kcal/mol (the two probes; every node
  the same, the previous scheme 0.06 / 0.13). Elsewhere they err by design: up to 8.6 kcal/mol
  (median 0.15-0.40) over ``K > 1e2``, inside locked intervals, over fast ones and in the tails
  (every node: 0.46, median 0.03). Kinetic captures (probe 0.5 and 0.005 nM, ``k_on`` 1e6 and
  1e7; the mutants at 2.5 pM, the unrelated pooled at 37.5 nM each): against every pair at every
  node within 1.0e-3 of the probe; against ViennaRNA at every °C within 9.8e-4 (every node:
  1.0e-3; the previous scheme 1.5e-3).
* 180 pairs of a 60,000-document query (30 of its 262 pairs that can lock; 150 weaker ones drawn
  by their hold, weighted to hold 4.2x the free probe at 21 °C as the whole pool does), every
  node evaluated: the captured amounts moved by at most 4.1e-4 of the probe (worst relative 3.5 %
  among species above 1e-3 of the probe; with a 1 % budget 3.5e-4). The anneal's 4 nodes for
  every pair moved them by up to 2.1e-2 (34 % relative).
* The largest approximation is the free probe's partners between coarse nodes: the fast pairs'
  hold is interpolated over 24.7 °C, off by up to 0.42 of the free probe at some temperature in
  the 16-pair test (every node: 0.06); the captures above include it.
* 60,000 Fashion-MNIST documents, one query (``benchmarks/bench_capture.py``): 1,629
  evaluations above 21 °C for the 318 pairs that can lock (5.1 each) and 787 for 597 of the
  1,782 weaker ones; 4,516 in all against the anneal's 3,054 (1.48x; a 1 % budget: 5,278, 3 %:
  4,638).
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
                        budget: float | None = None, target_conc=None,
                        locked_log_k: float | None = None, homodimer_conc=None,
                        coarse_every: int = 4, mapper=None, chunksize: int = 8,
                        progress: bool = False, return_free_energies: bool = False,
                        return_evaluated: bool = False):
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

    ``budget`` (the kinetic model's scheme, which replaces ``negligible_log_k``; module
    docstring, "The kinetic model's nodes"): the coarse nodes (every ``coarse_every``-th, and the
    last) upward for every pair until its tail fits the budget, then every interval between
    evaluated nodes bisected unless the pair is locked throughout (``locked_log_k``: ``log(k_on
    * seconds per °C / LOCKED_LOSS)``) or fast at its cold end (``lock_log_k - FAST_MARGIN``).
    ``target_conc``: the concentration (mol/L) each target stands for in the hybridization (one
    value or one per target; one value for all is each pair as if it were the whole pool, the
    safe side); ``homodimer_conc``: one target's own strands, for its homodimer (default
    ``target_conc``). ``budget``: the share of the free probe the tails may hold together.

    Returns the :class:`Thermo` (and, with ``return_free_energies``, the simulator's ``(n, 5)``
    free energies of the pairs at the final temperature, from which two-strand yields follow;
    with ``return_evaluated``, an ``(n, nodes)`` mask of the energies the simulator computed).
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
    evaluated = np.zeros((n, nodes.size), dtype=bool)
    evaluated[:, 0] = True

    def done():
        out = (thermo,)
        if return_free_energies:
            out += (g[:n],)
        if return_evaluated:
            out += (evaluated,)
        return out[0] if len(out) == 1 else out

    if nodes.size == 1:
        return done()

    def evaluate(j, idx):
        """Every target of ``idx`` (and the probe's homodimer) at node ``j``."""
        sel = [targets[i] for i in idx] + [query]
        gt = simulator.at_temperature(nodes[j]).free_energies(
            sel, [query] * len(sel), mapper=mapper, chunksize=chunksize, progress=progress,
            checked=True)
        a, aa, bb = binding_energies(gt)
        thermo.dg_ab[idx, j] = a[:-1]
        thermo.dg_aa[idx, j] = aa[:-1]
        thermo.dg_bb[j] = bb[-1]
        evaluated[idx, j] = True
        return a[:-1], aa[:-1]

    if budget is not None:
        if lock_log_k is None or locked_log_k is None:
            raise ValueError("the budgeted scheme needs lock_log_k and locked_log_k")
        _budgeted_nodes(thermo, evaluated, evaluate, budget=float(budget),
                        target_conc=target_conc, homodimer_conc=homodimer_conc,
                        lock_log_k=float(lock_log_k), locked_log_k=float(locked_log_k),
                        coarse_every=int(coarse_every))
    else:
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
        every = max(1, int(weak_every))
        for j, t in enumerate(nodes[1:], start=1):
            due = always | (weak if j % every == 0 else np.zeros(n, dtype=bool))
            idx = np.flatnonzero(due)
            a, aa = evaluate(j, idx)
            if len(idx) and negligible_log_k is not None:
                w = weak[idx]
                weak[idx[w]] = above(a[w], aa[w], t)
    # the pairs between and above the nodes they were evaluated at (see above)
    for i in np.flatnonzero(evaluated[:, 1:].any(axis=1) & ~evaluated.all(axis=1)):
        ev = np.flatnonzero(evaluated[i])
        for m in (thermo.dg_ab, thermo.dg_aa):
            with np.errstate(invalid="ignore"):
                m[i] = np.interp(nodes, nodes[ev], m[i, ev])
            m[i, np.isnan(m[i])] = np.inf
    return done()


#: the kinetic model's scheme (:func:`pair_thermodynamics` with ``budget``): a pair with ``log K``
#: at most ``lock_log_k - FAST_MARGIN`` exchanges with the free probe within a step (``k_off
#: t_step >= e``); its energies between evaluated nodes only shape the free probe's partners
FAST_MARGIN = 1.0
#: a duplex with ``log K >= locked_log_k + log(interval in °C)`` at an interval's warm end, where
#: ``locked_log_k = log(k_on * seconds per °C / LOCKED_LOSS)``, loses at most LOCKED_LOSS of
#: itself over the interval whatever its ``K`` there: the interval is not resolved
LOCKED_LOSS = 1e-2
#: a target whose homodimer holds more than this share of it (``2 K_AA c``, ``c`` its own
#: concentration ``homodimer_conc``) at an interval's cold end is resolved as if in the band
HOMODIMER_SHARE = 1e-3
#: the share of the budget the tails dropped at the first, second and later coarse nodes may use
#: (cumulative)
TAIL_SHARES = (0.5, 0.9, 1.0)


def _budgeted_nodes(thermo, evaluated, evaluate, *, budget, target_conc, homodimer_conc,
                    lock_log_k, locked_log_k, coarse_every):
    """The kinetic model's energies: coarse nodes while a pair's tail does not fit the budget,
    bisection where a pair may lock (the module docstring, "The kinetic model's nodes"); fills
    ``thermo`` and ``evaluated`` through ``evaluate(j, idx)`` (node 0 is evaluated already)."""
    nodes = thermo.nodes
    n, k = thermo.dg_ab.shape
    rt = GAS_CONSTANT * (nodes + KELVIN)
    if target_conc is None:
        raise ValueError("the budgeted scheme needs target_conc")
    w = np.broadcast_to(np.asarray(target_conc, dtype=np.float64), (n,))
    hc = np.broadcast_to(np.asarray(w if homodimer_conc is None else homodimer_conc,
                                    dtype=np.float64), (n,))
    fast = lock_log_k - FAST_MARGIN
    probed = np.zeros(k, dtype=bool)
    probed[0] = True

    def run(j, idx):
        probed[j] = True
        evaluate(j, idx)

    def lk(idx, j):
        with np.errstate(invalid="ignore"):
            return -thermo.dg_ab[idx, j] / rt[j]

    def homodimer_small(idx, j):
        with np.errstate(invalid="ignore", over="ignore"):
            lka = -thermo.dg_aa[idx, j] / rt[j]
            return 2.0 * np.exp(np.minimum(lka, 700.0)) * hc[idx] <= HOMODIMER_SHARE

    # 1. the coarse nodes upward: a fast pair whose tail (its energies kept above the node, an
    #    upper bound on its K there) fits the budget, smallest hold first, goes no further
    step = max(1, int(coarse_every))
    coarse = sorted(set(range(0, k, step)) | {k - 1})
    active = np.ones(n, dtype=bool)
    # a pair that can lock at the final temperature is bound far more tightly at the coarse
    # nodes below the last two than anywhere it matters: it goes to the second-last first, and
    # the nodes below are bisected only where it is not locked throughout (step 2)
    strong = lk(np.arange(n), 0) >= lock_log_k
    jump = coarse[-2] if len(coarse) > 2 else 0
    if jump:
        run(jump, np.flatnonzero(strong))
    spent = 0.0
    for level, (a, b) in enumerate(zip(coarse[:-1], coarse[1:])):
        idx = np.flatnonzero(active & ((a >= jump) | ~strong))
        cand = idx[(lk(idx, a) <= fast) & homodimer_small(idx, a)]
        with np.errstate(over="ignore"):
            hold = w[cand] * np.exp(np.minimum(lk(cand, a), 700.0))
        order = np.argsort(hold, kind="stable")
        room = TAIL_SHARES[min(level, len(TAIL_SHARES) - 1)] * budget - spent
        fits = np.cumsum(hold[order]) <= room
        spent += float(hold[order][fits].sum())
        active[cand[order[fits]]] = False
        run(b, idx[active[idx]])
    # 2. bisect every interval between evaluated nodes where the pair is neither locked
    #    throughout nor fast at its cold end (or its homodimer is not negligible)
    settled = np.zeros((n, k), dtype=bool)   # the interval from node j up is settled
    while True:
        rows, lo, hi = [], [], []
        for i in range(n):
            ev = np.flatnonzero(evaluated[i])
            for a, b in zip(ev[:-1], ev[1:]):
                if b - a > 1 and not settled[i, a]:
                    rows.append(i)
                    lo.append(a)
                    hi.append(b)
        if not rows:
            break
        rows, lo, hi = np.asarray(rows), np.asarray(lo), np.asarray(hi)
        small_aa = homodimer_small(rows, lo)
        locked = (lk(rows, hi) >= locked_log_k + np.log(nodes[hi] - nodes[lo])) & small_aa
        refine = ~locked & ~((lk(rows, lo) <= fast) & small_aa)
        settled[rows[~refine], lo[~refine]] = True
        mids = (lo + hi) // 2
        for j in np.unique(mids[refine]):
            run(int(j), rows[refine & (mids == j)])
    # the probe's homodimer at every node
    for j in np.flatnonzero(~probed):
        run(int(j), np.zeros(0, dtype=np.int64))
