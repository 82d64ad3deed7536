"""The kinetic model's energies along the ramp (primo.thermo.ramp.pair_thermodynamics with a
budget): which nodes it evaluates, and what it promises about the others. Tabulated energies
stand in for the simulator here (the logic, in milliseconds); tests/test_kinetic.py checks the
scheme on real ViennaRNA energies against every pair at every node."""

from __future__ import annotations

import math

import numpy as np
import pytest

from primo.simulation.capture import Protocol
from primo.simulation.cascade import NEGLIGIBLE_SHARE, energy_settings, query_energies, \
    select_documents
from primo.thermo import ramp
from primo.thermo.equilibrium import GAS_CONSTANT
from primo.thermo.ramp import Thermo, node_temperatures, pair_thermodynamics


class Table:
    """A simulator that serves tabulated binding energies (by target name) at its nodes and
    records every (target, temperature) it is asked for."""

    def __init__(self, nodes, ab, aa, bb, temperature=None, log=None):
        self.nodes, self.ab, self.aa, self.bb = nodes, ab, aa, bb
        self.temperature = float(nodes[0] if temperature is None else temperature)
        self.log = [] if log is None else log

    def at_temperature(self, t):
        return Table(self.nodes, self.ab, self.aa, self.bb, t, self.log)

    def free_energies(self, targets, queries, **_):
        j = int(np.flatnonzero(np.abs(self.nodes - self.temperature) < 1e-9)[0])
        out = np.zeros((len(targets), 5))
        for r, t in enumerate(targets):
            if t == "probe":
                out[r] = [0.0, 0.0, np.inf, self.bb[j], np.inf]
                continue
            # a document "t<row>"; any other sequence (a random decoy) one of the last 3 rows
            i = int(t[1:]) if t[1:].isdigit() else len(self.ab) - 1 - sum(map(ord, t)) % 3
            out[r] = [0.0, 0.0, self.aa[i, j], self.bb[j], self.ab[i, j]]
            self.log.append((i, j))
        return out


def _curves(nodes, rng, n):
    """Ensemble-like binding curves: a duplex branch that weakens linearly with the temperature
    and a plateau near -5.5 kcal/mol, joined smoothly (softmin) where the duplex melts; from
    strong binders (locked at 95 °C) to unrelated pairs."""
    rt = GAS_CONSTANT * (nodes + 273.15)
    base = np.concatenate([rng.uniform(-90, -25, n // 2), rng.uniform(-25, -7, n - n // 2)])
    slope = rng.uniform(0.4, 0.9, n)
    duplex = base[:, None] + slope[:, None] * (nodes - nodes[0])
    plateau = np.full_like(duplex, -5.5)
    ab = -rt * np.logaddexp(-duplex / rt, -plateau / rt)
    aa = rng.uniform(-12, -2, (n, 1)) + 0.1 * (nodes - nodes[0])
    aa[::7] = np.inf                                      # no homodimer at all
    return ab, aa, -8.0 + 0.05 * (nodes - nodes[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unevaluated_energies_are_settled_by_a_stated_reason(seed):
    rng = np.random.default_rng(seed)
    proto = Protocol()
    es = energy_settings(proto, "kinetic")
    nodes = es["nodes"]
    assert len(nodes) == 13 and np.allclose(nodes[::4], node_temperatures(21, 95, 4))
    n = 60
    ab, aa, bb = _curves(nodes, rng, n)
    w = 10 ** rng.uniform(-12.5, -9, n)
    hc = 2.5e-11
    sim = Table(nodes, ab, aa, bb)
    es.update(target_conc=w, homodimer_conc=hc)
    th, ev = pair_thermodynamics(sim, [f"t{i}" for i in range(n)], "probe", **es,
                                 return_evaluated=True)
    rt = GAS_CONSTANT * (nodes + 273.15)
    lk = -ab / rt
    assert ev[:, 0].all() and ev.sum() < ev.size
    # the values at evaluated nodes are the simulator's, and nothing was evaluated twice
    np.testing.assert_array_equal(th.dg_ab[ev], ab[ev])
    assert len(sim.log) == len(set(sim.log)) == ev.sum()
    np.testing.assert_allclose(th.dg_bb, bb)
    fast = proto.lock_log_k - ramp.FAST_MARGIN
    tails = 0.0
    for i in range(n):
        e = np.flatnonzero(ev[i])
        for a, b in zip(e[:-1], e[1:]):
            if b - a == 1:
                continue
            small_aa = 2 * np.exp(-aa[i, a] / rt[a]) * hc <= ramp.HOMODIMER_SHARE
            locked = lk[i, b] >= es["locked_log_k"] + math.log(nodes[b] - nodes[a])
            assert small_aa and (locked or lk[i, a] <= fast), (i, a, b)
            # in between: linear, inside the bounds of its ends
            mid = th.dg_ab[i, a + 1:b]
            assert np.all(mid >= th.dg_ab[i, a] - 1e-9) and np.all(mid <= th.dg_ab[i, b] + 1e-9)
        if e[-1] < len(nodes) - 1:                      # a tail: its last value, kept
            assert np.all(th.dg_ab[i, e[-1]:] == th.dg_ab[i, e[-1]])
            assert lk[i, e[-1]] <= fast
            tails += w[i] * math.exp(lk[i, e[-1]])
            # the kept value bounds the true K above it (these curves weaken monotonically)
            assert np.all(lk[i, e[-1]:] <= lk[i, e[-1]] + 1e-9)
    assert tails <= NEGLIGIBLE_SHARE * (1 + 1e-9)
    # the pairs that can lock at 21 °C are resolved where they cross the lock threshold
    for i in np.flatnonzero(lk[:, 0] >= proto.lock_log_k):
        cross = np.flatnonzero((lk[i, :-1] > fast) & (lk[i, 1:] < proto.lock_log_k))
        for j in cross:
            assert ev[i, j] and ev[i, j + 1]


def test_the_anneal_and_equilibrium_energies_are_unchanged():
    """The anneal's scheme (lock_log_k, no budget) evaluates exactly the pairs that can lock at
    its nodes; the equilibrium's the final temperature alone."""
    rng = np.random.default_rng(3)
    proto = Protocol()
    nodes = node_temperatures(21, 95, 13)
    ab, aa, bb = _curves(nodes, rng, 30)
    sim = Table(nodes, ab, aa, bb)
    an = energy_settings(proto, "anneal")
    assert set(an) == {"nodes", "lock_log_k", "negligible_log_k"}
    sub = [0, 4, 8, 12]
    sim4 = Table(nodes[sub], ab[:, sub], aa[:, sub], bb[sub])
    th, ev = pair_thermodynamics(sim4, [f"t{i}" for i in range(30)], "probe", **an,
                                 return_evaluated=True)
    can = -ab[:, 0] / (GAS_CONSTANT * 294.15) >= proto.lock_log_k
    np.testing.assert_array_equal(ev[:, 1:].all(axis=1), can)
    np.testing.assert_array_equal(ev[:, 1:].any(axis=1), can)
    assert np.all(th.dg_ab[~can] == th.dg_ab[~can, :1])
    eq = energy_settings(proto, "equilibrium")
    th1 = pair_thermodynamics(sim, [f"t{i}" for i in range(30)], "probe", **eq)
    assert th1.nodes.tolist() == [21.0]


def test_query_energies_weighs_each_document_by_its_share_of_the_pool(monkeypatch):
    """A sampled document stands for itself and the documents imputed from it; a decoy sequence
    for its share of the decoys; the rng stream (sample, decoys, donors) is the anneal's."""
    import primo.simulation.cascade as cascade

    n = 40
    pred = np.random.default_rng(0).random(n)
    nodes = node_temperatures(21, 95, 13)
    ab, aa, bb = _curves(nodes, np.random.default_rng(1), n + 3)
    calls = {}

    def spy(simulator, targets, query, **kw):
        calls.update(kw)
        return pair_thermodynamics(simulator, targets, query, **kw)

    monkeypatch.setattr(cascade, "pair_thermodynamics", spy)
    proto = Protocol(decoys=60)
    sel = select_documents(pred, refine=5, sample=8, rng=np.random.default_rng(2))

    def db(pos):
        return [f"t{p}" for p in pos]

    sim = Table(nodes, ab, aa, bb)
    en_k = query_energies(db, "probe", sel, sim, **energy_settings(proto, "kinetic"),
                          decoys=60, decoy_sample=3, rng=np.random.default_rng(4))
    w = calls["target_conc"]
    en_a = query_energies(db, "probe", sel, sim, **energy_settings(proto, "anneal"),
                          decoys=60, decoy_sample=3, rng=np.random.default_rng(4))
    per = proto.pool_m / n
    k = len(sel.simulated)
    counts = np.bincount(np.searchsorted(sel.simulated, en_k.donor[en_k.donor >= 0]),
                         minlength=k)
    assert counts.sum() == n
    np.testing.assert_allclose(w[:k], counts * per)
    np.testing.assert_allclose(w[k:], 60 / 3 * per)
    assert calls["homodimer_conc"] == pytest.approx(10 * per)
    assert np.array_equal(en_k.donor, en_a.donor)        # the same rng stream
    assert en_k.evaluated.shape == en_k.thermo.dg_ab.shape
    assert en_a.evaluated.shape == en_a.thermo.dg_ab.shape
