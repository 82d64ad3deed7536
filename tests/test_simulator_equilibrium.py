"""The two-strand mass-action solver against scipy brute force, conservation and extremes."""


import numpy as np
import pytest
from scipy.optimize import least_squares
from scipy.special import logsumexp

from primo.thermo import equilibrium
from primo.thermo.equilibrium import log_constants, solve_equilibrium

LN10 = np.log(10.0)


def _brute(lab, laa, lbb, a0, b0):
    """Free log concentrations by scipy least squares on the mass balances (log form)."""

    def res(x):
        la, lb = x
        r1 = logsumexp([la, np.log(2) + laa + 2 * la, lab + la + lb]) - np.log(a0)
        r2 = logsumexp([lb, np.log(2) + lbb + 2 * lb, lab + la + lb]) - np.log(b0)
        return [r1, r2]

    x0 = [np.log(a0) - 5, np.log(b0) - 5]
    sol = least_squares(res, x0, xtol=1e-15, ftol=1e-15, gtol=1e-15, method="lm")
    assert np.max(np.abs(sol.fun)) < 1e-10
    return sol.x


def _random_case(n, seed):
    rng = np.random.default_rng(seed)
    lab = LN10 * rng.uniform(-5, 30, n)  # K from 1e-5 to 1e30 L/mol
    laa = LN10 * rng.uniform(-5, 30, n)
    lbb = LN10 * rng.uniform(-5, 30, n)
    a0 = 10 ** rng.uniform(-10, -6, n)
    b0 = 10 ** rng.uniform(-10, -6, n)
    b0[: n // 3] = a0[: n // 3]  # equal concentrations, as in the paper
    return lab, laa, lbb, a0, b0


def test_solver_matches_scipy_brute_force_over_35_orders_of_K():
    lab, laa, lbb, a0, b0 = _random_case(200, seed=1)
    eq = solve_equilibrium(lab, laa, lbb, a0, b0)
    weak = 0
    for i in range(len(lab)):
        la, lb = _brute(lab[i], laa[i], lbb[i], a0[i], b0[i])
        m = min(a0[i], b0[i])
        y_brute = np.exp(lab[i] + la + lb) / m
        # the duplex yield and the product of free strands are well determined in any regime
        assert eq.yield_[i] == pytest.approx(y_brute, rel=1e-9, abs=1e-12)
        assert np.log(eq.a[i]) + np.log(eq.b[i]) == pytest.approx(la + lb, abs=1e-7)
        if y_brute < 0.5:  # free strands dominate: each one is well determined too
            weak += 1
            assert np.log(eq.a[i]) == pytest.approx(la, abs=1e-9)
            assert np.log(eq.b[i]) == pytest.approx(lb, abs=1e-9)
    assert weak > 10  # both regimes were exercised
    assert (eq.yield_ > 0.99).sum() > 10


def test_mass_is_conserved_and_definitions_hold():
    lab, laa, lbb, a0, b0 = _random_case(5000, seed=2)
    eq = solve_equilibrium(lab, laa, lbb, a0, b0)
    np.testing.assert_allclose(eq.a + 2 * eq.aa + eq.ab, a0, rtol=1e-12)
    np.testing.assert_allclose(eq.b + 2 * eq.bb + eq.ab, b0, rtol=1e-12)
    # [AB] = K [A][B] and [AA] = K [A]^2, checked in logs (no overflow)
    ok = eq.ab > 0
    np.testing.assert_allclose(np.log(eq.ab[ok]), (lab + np.log(eq.a) + np.log(eq.b))[ok],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.log(eq.aa), laa + 2 * np.log(eq.a), atol=1e-12)
    assert np.all((eq.yield_ >= 0) & (eq.yield_ <= 1))
    for v in (eq.a, eq.b, eq.aa, eq.bb, eq.ab):
        assert np.all(np.isfinite(v)) and np.all(v >= 0)


def test_closed_form_heterodimer_only():
    # no homodimers: [AB] solves K (c - y)^2 = y
    k = np.array([1e-3, 1.0, 1e9, 1e12, 1e20])
    c = 1e-9
    eq = solve_equilibrium(np.log(k), -np.inf, -np.inf, c, c)
    kc = k * c
    y = 2 * kc * c / ((2 * kc + 1) + np.sqrt(4 * kc + 1))  # stable root
    np.testing.assert_allclose(eq.ab, y, rtol=1e-10)
    # unbound fraction of a perfect duplex keeps its precision: u = sqrt(c / K)
    eq = solve_equilibrium(np.log(1e90), -np.inf, -np.inf, c, c)
    assert eq.a == pytest.approx(np.sqrt(c / 1e90), rel=1e-9)


def test_extreme_and_degenerate_constants():
    eq = solve_equilibrium([700 * LN10, -700.0, 0.0, -np.inf, 2000.0],
                           [-np.inf, 700.0, 2000.0, 5.0, -np.inf],
                           [-np.inf, 0.0, 1500.0, 5.0, 3000.0],
                           1e-9, [1e-9, 2e-9, 1e-12, 1e-9, 3e-9])
    assert np.all(np.isfinite(eq.ab)) and np.all(np.isfinite(eq.a))
    np.testing.assert_allclose(eq.a + 2 * eq.aa + eq.ab, 1e-9, rtol=1e-12)
    assert eq.yield_[0] == 1.0
    assert eq.yield_[3] == 0.0  # AB cannot form
    assert eq.ab[4] == pytest.approx(1e-9, rel=1e-12)  # B in excess binds all of A


def test_free_energies_to_constants():
    # G_AB - G_A - G_B = -RT ln K
    rt = equilibrium.GAS_CONSTANT * (21 + 273.15)
    lab, laa, lbb = log_constants(-10.0, -12.0, -25.0, -24.0 + rt * np.log(2), -40.0, 21.0)
    assert lab == pytest.approx(18.0 / rt)
    assert laa == pytest.approx(5.0 / rt)
    assert lbb == pytest.approx(-np.log(2))
    assert log_constants(0, 0, np.inf, np.inf, np.inf, 21.0)[0] == -np.inf


def test_bad_concentrations_rejected():
    with pytest.raises(ValueError, match="positive"):
        solve_equilibrium(1.0, 1.0, 1.0, 0.0, 1e-9)
