"""Capture models: competitive equilibrium of one probe with many targets, and the anneal."""

import math

import numpy as np
import pytest
from scipy import optimize

from primo.errors import UsageError
from primo.thermo.equilibrium import GAS_CONSTANT
from primo.simulation.capture import (Protocol, anneal_capture, equilibrium_capture,
                                      solve_capture)
from primo.thermo.ramp import Thermo, node_temperatures

NODES = np.array([21.0, 45.0, 70.0, 95.0])


def _random_thermo(rng, n, *, homodimers=False):
    base = rng.uniform(-60, -4, n)
    slope = rng.uniform(0.1, 1.2, n)          # binding weakens as the temperature rises
    ab = base[:, None] + slope[:, None] * (NODES - NODES[0])
    aa = rng.uniform(-14, -2, (n, 1)) + 0 * NODES if homodimers else np.full((n, 4), np.inf)
    bb = np.full(4, -9.0) if homodimers else np.full(4, np.inf)
    return Thermo(NODES, ab, aa, bb)


def _full_mass_action(lk, lka, lkp, conc, p0):
    """Bound amounts and free probe from the full mass-action system, solved independently by
    scipy in the logs of every free species (probe and each target)."""
    from scipy.special import logsumexp

    n = len(conc)
    log2 = math.log(2.0)

    def residuals(z):
        x, y = z[0], z[1:]
        r_p = logsumexp(np.concatenate([[x, log2 + lkp + 2 * x], lk + y + x])) - math.log(p0)
        r_a = np.logaddexp.reduce(np.stack([y, log2 + lka + 2 * y, lk + y + x]), axis=0) \
            - np.log(conc)
        return np.concatenate([[r_p], r_a])

    best = None
    for guess in (0.0, -10.0, -30.0):
        z0 = np.concatenate([[math.log(p0) + guess], np.log(conc) - 1.0])
        sol = optimize.least_squares(residuals, z0, xtol=1e-15, ftol=1e-15, gtol=1e-15,
                                     max_nfev=20000)
        err = np.abs(residuals(sol.x)).max()
        if best is None or err < best[1]:
            best = (sol.x, err)
    z, err = best
    assert err < 1e-9, err
    p, a = math.exp(z[0]), np.exp(z[1:])
    return np.exp(lk + z[1:] + z[0]), p


@pytest.mark.parametrize("seed", range(6))
def test_solver_agrees_with_the_full_mass_action_system(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 21))
    # weak (K c << 1) to very strong (K c >> 1e6) binding; pM targets; a limiting probe
    lk = rng.uniform(np.log(1e5), np.log(1e17), n)
    lka = rng.uniform(np.log(1e2), np.log(1e10), n)
    lkp = float(np.log(1e8))
    conc = rng.uniform(0.5, 2.0, n) * 1e-11
    p0 = float(conc.sum() * rng.choice([0.01, 0.3, 3.0]))
    res = solve_capture(lk, lka, lkp, conc, p0)
    bound, p = _full_mass_action(lk, lka, lkp, conc, p0)
    np.testing.assert_allclose(res.bound, bound, rtol=1e-6, atol=1e-12 * p0)
    assert res.free_probe == pytest.approx(p, rel=1e-6)
    assert res.probe_balance() < 1e-12
    np.testing.assert_allclose(res.bound + res.target_free + 2 * res.target_homodimer, conc,
                               rtol=1e-12)


def test_excess_probe_without_anneal_is_the_independent_model():
    """With the probe in large excess, the competitive equilibrium gives each target the
    two-strand yield the simulator computes for it alone (real ViennaRNA energies)."""
    from primo.thermo.simulator import Simulator, mutate

    rng = np.random.default_rng(3)
    t = ["".join(rng.choice(list("ACGT"), 80)) for _ in range(6)]
    q = t[0]
    targets = [t[0], mutate(t[0], 0.3, rng), mutate(t[0], 0.4, rng), mutate(t[0], 0.45, rng),
               t[1], t[2]]
    conc_each, probe = 1e-16, 1e-6
    sim = Simulator(target_conc=conc_each, query_conc=probe)
    g = sim.free_energies(targets, [q] * len(targets))
    independent = sim.solve(g).yield_
    from primo.thermo.ramp import binding_energies

    dab, daa, dbb = binding_energies(g)
    rt = GAS_CONSTANT * (21.0 + 273.15)
    th = Thermo.constant(dab, daa, dbb[0], nodes=[21.0])
    proto = Protocol(probe_nm=probe * 1e9, anneal_to=21.0)
    res = equilibrium_capture(th, np.full(len(targets), conc_each), proto)
    np.testing.assert_allclose(res.fraction, independent, atol=1e-6)
    assert independent.max() > 0.99 and independent.min() < 0.1  # binders and non-binders
    assert np.all(np.isfinite(-dab / rt))


def test_mass_is_conserved_at_every_anneal_step():
    rng = np.random.default_rng(0)
    th = _random_thermo(rng, 25, homodimers=True)
    conc = rng.uniform(0.5, 2, 25) * 1e-11
    proto = Protocol(probe_nm=0.05, anneal_to=21, anneal_from=95, step_c=1.0)
    res, steps = anneal_capture(th, conc, proto, trace=True, trace_arrays=True)
    assert len(steps) == 75 and steps[0].temperature == 95 and steps[-1].temperature == 21
    for st in steps:
        total_probe = st.free_probe + 2 * st.probe_homodimer + st.bound.sum()
        assert total_probe == pytest.approx(proto.probe_m, rel=1e-9)
        np.testing.assert_allclose(st.bound + st.target_free + 2 * st.target_homodimer, conc,
                                   rtol=1e-9)
    assert any(st.locked_targets > 0 for st in steps)
    # the limiting probe is (nearly) all bound at the end
    assert res.bound.sum() > 0.9 * proto.probe_m


@pytest.mark.parametrize("model", ["equilibrium", "anneal"])
def test_a_stronger_binder_always_captures_more(model):
    rng = np.random.default_rng(1)
    n = 40
    th = _random_thermo(rng, n)
    # two targets of equal abundance; the first has the lower dG at every temperature
    th.dg_ab[0] = th.dg_ab[1] - rng.uniform(0.5, 3.0, 4)
    th.dg_ab[2] = np.inf  # no duplex at all
    conc = np.full(n, 1e-11)
    proto = Protocol(probe_nm=0.05, anneal_to=21, step_c=1.0)
    fn = anneal_capture if model == "anneal" else equilibrium_capture
    res = fn(th, conc, proto)
    assert res.bound[0] >= res.bound[1]
    assert res.bound[2] == 0.0


@pytest.mark.parametrize("model", ["equilibrium", "anneal"])
def test_decoys_never_increase_a_documents_capture(model):
    fn = anneal_capture if model == "anneal" else equilibrium_capture
    for seed in range(25):
        rng = np.random.default_rng(100 + seed)
        n, nd = int(rng.integers(2, 30)), int(rng.integers(1, 60))
        th = _random_thermo(rng, n)
        conc = rng.uniform(0.5, 2, n) * 1e-12
        proto = Protocol(probe_nm=float(rng.choice([0.05, 0.5, 5.0])), anneal_to=21, step_c=2.0)
        alone = fn(th, conc, proto)
        dec = _random_thermo(rng, nd)
        both = fn(Thermo.concatenate([th, dec]), np.concatenate([conc, np.full(nd, 1e-12)]),
                  proto)
        assert np.all(both.bound[:n] <= alone.bound[:n] * (1 + 1e-9) + 1e-30), seed


def test_competition_limits_what_one_probe_holds():
    """A limiting probe holds at most its own amount: with 1,000 equally strong binders and a probe
    for 10 of them, each is captured at ~1 %, while the independent picture says 100 %."""
    th = Thermo.constant(np.full(1000, -40.0), np.full(1000, np.inf), np.inf, nodes=[21.0])
    conc = np.full(1000, 1e-12)
    res = equilibrium_capture(th, conc, Protocol(probe_nm=0.01, anneal_to=21))
    assert res.fraction.max() == pytest.approx(0.01, rel=1e-6)


def test_the_anneal_locks_the_highest_melting_duplexes_first():
    """Target 0 melts higher but binds less at 21 °C than target 1: at equilibrium target 1 wins,
    through the anneal target 0 keeps the probe it took while target 1 could not yet bind."""
    ab = np.array([[-30.0, -28.0, -26.0, -12.0],     # shallow: strong at 95 °C already
                   [-45.0, -25.0, -8.0, -2.0]])      # steep: strongest only near 21 °C
    th = Thermo(NODES, ab, np.full((2, 4), np.inf), np.full(4, np.inf))
    conc = np.full(2, 1e-9)
    proto = Protocol(probe_nm=1.0, anneal_to=21)
    eq = equilibrium_capture(th, conc, proto)
    an = anneal_capture(th, conc, proto)
    assert eq.bound[1] > eq.bound[0]
    assert an.bound[0] > an.bound[1]


def test_thermo_interpolates_between_nodes():
    th = Thermo(NODES, [[-40.0, -30.0, -10.0, 0.0]], [[np.inf] * 4], [np.inf] * 4)
    assert th.dg(21)[0][0] == -40.0 and th.dg(45)[0][0] == -30.0
    assert th.dg(33)[0][0] == pytest.approx(-35.0)
    assert th.dg(10)[0][0] == -40.0             # below the final temperature: the final value
    assert np.isneginf(th.log_k(50)[1][0])       # no homodimer
    assert node_temperatures(21, 95, 4).tolist() == pytest.approx([21, 45.6667, 70.3333, 95],
                                                                   rel=1e-4)


@pytest.mark.parametrize("kwargs, option", [
    (dict(probe_nm=0.0), "probe_nm"), (dict(pool_nm=-1.0), "pool_nm"),
    (dict(na_molar=0.0), "na_molar"), (dict(anneal_from=30.0, anneal_to=40.0), "anneal_to"),
    (dict(decoys=-1), "decoys"), (dict(minutes_per_degree=0.0), "minutes_per_degree"),
    (dict(probe_nm=float("nan")), "probe_nm"), (dict(decoys=10 ** 9), "decoys"),
    (dict(k_on=math.inf), "k_on"), (dict(wash_minutes=-1.0), "wash_minutes"),
])
def test_protocol_refuses_bad_settings(kwargs, option):
    """In library terms: the message names the setting (the command line adds its flag)."""
    with pytest.raises(UsageError) as e:
        Protocol(**kwargs)
    assert e.value.option == option and option in str(e.value) and "\n" not in str(e.value)
    assert "--" not in str(e.value)


def test_protocol_ramp_and_lock():
    p = Protocol()
    r = p.ramp()
    assert r[0] == 95 and r[-1] == 21 and len(r) == 75
    assert p.to_dict()["lock_k_per_molar"] == pytest.approx(1e6 * 1200)
    with pytest.raises(UsageError, match="outside the anneal"):
        p.check_temperature(99.0)


def test_pair_thermodynamics_evaluates_nodes_for_pairs_that_can_lock():
    """Real ViennaRNA energies: a perfect match is evaluated at every node (its dG rises with the
    temperature), an unrelated pair keeps its final-temperature dG; node values are direct ones."""
    from primo.thermo.simulator import Simulator
    from primo.thermo.ramp import pair_thermodynamics

    rng = np.random.default_rng(5)
    q = "".join(rng.choice(list("ACGT"), 80))
    other = "AC" * 40  # no complement of the random probe beyond a few bases
    sim = Simulator()
    nodes = node_temperatures(21.0, 95.0, 3)
    th = pair_thermodynamics(sim, [q, other], q, nodes=nodes, lock_log_k=np.log(1.2e9))
    assert th.dg_ab.shape == (2, 3)
    assert np.all(np.diff(th.dg_ab[0]) > 0)              # weaker as it warms
    assert np.all(th.dg_ab[1] == th.dg_ab[1, 0])          # no node evaluation needed
    direct = sim.at_temperature(nodes[1]).binding_energies([q], [q])[0]
    assert th.dg_ab[0, 1] == pytest.approx(direct, abs=1e-9)
    assert th.dg_ab[0, 0] == pytest.approx(sim.binding_energies([q], [q])[0], abs=1e-9)
    assert np.isfinite(th.dg_bb).all()                    # the probe's homodimer at every node
