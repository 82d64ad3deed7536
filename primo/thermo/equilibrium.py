"""Mass-action equilibrium of two strand species forming complexes of at most two strands.

Species: free target ``A``, free query ``B``, and the dimers ``AA``, ``BB``, ``AB``. With total
(initial) concentrations ``A0``, ``B0`` (mol/L) and association constants ``K_AB``, ``K_AA``,
``K_BB`` (L/mol, 1 M standard state, homodimer symmetry already inside ``K_AA``/``K_BB``)::

    [AB] = K_AB [A][B]      [AA] = K_AA [A]^2      [BB] = K_BB [B]^2
    A0 = [A] + 2 [AA] + [AB]                 B0 = [B] + 2 [BB] + [AB]

The constants come from ensemble free energies (kcal/mol) as ``K_AB = exp(-(G_AB - G_A - G_B)/RT)``
and ``K_AA = exp(-(G_AA - 2 G_A)/RT)``; they span hundreds of orders of magnitude for 80-nt
strands (a perfect 86-bp duplex has ``K_AB ~ 1e96``), so everything here works with ``log K``.

Method
------
The equation is reduced to one unknown, the dimer concentration ``y = [AB]``. Given ``y``, each
strand's remaining amount ``s = A0 - y`` splits between monomer and homodimer by the quadratic
``a + 2 K_AA a^2 = s``, solved without cancellation as ``a = 2 s / (1 + sqrt(1 + 8 K_AA s))``
(in logs). The remaining condition ``log K_AB + log a(y) + log b(y) - log y = 0`` is strictly
monotone in ``y``, so its root in ``(0, min(A0, B0))`` is unique. Two cases keep full relative
precision whatever ``K``:

* weak binding (root below ``m/2``, ``m = min(A0, B0)``): the unknown is ``log y``;
* strong binding (root above ``m/2``): the unknown is ``log u`` with ``u = m - y``, the unbound
  part of the limiting strand, so that free concentrations of ``1e-50 M`` next to ``1e-9 M`` of
  duplex are resolved instead of being lost to rounding.

Each case is solved by Newton's method in the log variable, safeguarded by a bracket that is
proved to contain the root (bisection whenever a Newton step leaves it), vectorised over a batch.
Mass is conserved to rounding: the monomer/homodimer split is exact for the chosen ``y``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Equilibrium", "solve_equilibrium", "GAS_CONSTANT", "log_constants"]

#: gas constant in kcal/(mol K) (the value NUPACK and ViennaRNA use)
GAS_CONSTANT = 0.0019872
_LOG2 = np.log(2.0)
_LOG4 = np.log(4.0)
_LOG8 = np.log(8.0)


@dataclass
class Equilibrium:
    """Equilibrium concentrations (mol/L), arrays of one shape.

    ``yield_`` is ``[AB] / min(A0, B0)``.
    """

    a: np.ndarray
    b: np.ndarray
    aa: np.ndarray
    bb: np.ndarray
    ab: np.ndarray
    a0: np.ndarray
    b0: np.ndarray

    @property
    def yield_(self) -> np.ndarray:
        return self.ab / np.minimum(self.a0, self.b0)


def log_constants(g_a, g_b, g_aa, g_bb, g_ab, temperature_c: float):
    """Natural logs of ``K_AB, K_AA, K_BB`` (L/mol) from ensemble free energies (kcal/mol).

    ``g_aa``/``g_bb``/``g_ab`` are complex free energies in the 1 M standard state (association
    penalty and homodimer symmetry included); ``inf`` (no connected structure) gives ``-inf``.
    """
    rt = GAS_CONSTANT * (float(temperature_c) + 273.15)
    g_a, g_b = np.asarray(g_a, float), np.asarray(g_b, float)
    with np.errstate(invalid="ignore"):
        lab = -(np.asarray(g_ab, float) - g_a - g_b) / rt
        laa = -(np.asarray(g_aa, float) - 2 * g_a) / rt
        lbb = -(np.asarray(g_bb, float) - 2 * g_b) / rt
    return lab, laa, lbb


def _log_free(log_s, log_k_homo):
    """log of the monomer concentration a with a + 2 K a^2 = s (all in logs)."""
    t = _LOG8 + log_k_homo + log_s
    return _LOG2 + log_s - np.logaddexp(0.0, 0.5 * np.logaddexp(0.0, t))


def _dlog_free(log_a, log_k_homo):
    """log of a (1 + 4 K a) = log(ds/d log a), for derivatives."""
    return log_a + np.logaddexp(0.0, _LOG4 + log_k_homo + log_a)


def solve_equilibrium(log_k_ab, log_k_aa, log_k_bb, a0, b0, *, tol: float = 1e-14,
                      max_iter: int = 200) -> Equilibrium:
    """Equilibrium concentrations of A, B, AA, BB, AB (see the module docstring).

    Parameters
    ----------
    log_k_ab, log_k_aa, log_k_bb : array_like
        Natural logs of the association constants (L/mol); ``-inf`` means the complex does not
        form. Broadcast together with ``a0`` and ``b0``.
    a0, b0 : array_like
        Total concentrations (mol/L), > 0.
    tol : float
        Convergence tolerance on the log unknown.
    max_iter : int
        Iteration cap (Newton converges in well under 50; bisection alone would need ~60).

    Returns
    -------
    Equilibrium

    Examples
    --------
    >>> eq = solve_equilibrium(np.log(1e9), -np.inf, -np.inf, 1e-9, 1e-9)
    >>> round(float(eq.yield_), 6)  # K c = 1: [AB] = c (3 - sqrt 5) / 2
    0.381966
    """
    # This reads best whole: one vectorised solver whose set-up (regime, bracket), safeguarded
    # Newton iteration and assembly share a dozen per-pair arrays; split, each piece would take
    # and return most of them.
    lab, laa, lbb, a0, b0 = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in
                                                 (log_k_ab, log_k_aa, log_k_bb, a0, b0)))
    shape = lab.shape
    lab, laa, lbb, a0, b0 = (np.array(x, dtype=np.float64).ravel() for x in (lab, laa, lbb, a0, b0))
    if not (np.all(a0 > 0) and np.all(b0 > 0)):
        raise ValueError("total concentrations must be positive")
    if np.isnan(lab).any() or np.isnan(laa).any() or np.isnan(lbb).any():
        raise ValueError("association constants must not be NaN")
    m = np.minimum(a0, b0)
    da = a0 - m  # exactly 0 for the limiting strand
    db = b0 - m
    log_m = np.log(m)
    log_half = log_m - _LOG2

    # F(y) at y = m/2 decides the regime
    la_h = _log_free(np.log(a0 - 0.5 * m), laa)
    lb_h = _log_free(np.log(b0 - 0.5 * m), lbb)
    f_half = lab + la_h + lb_h - log_half
    strong = f_half >= 0
    none = np.isneginf(lab)

    x = np.empty_like(lab)
    lo = np.empty_like(lab)
    hi = np.empty_like(lab)
    # weak binding: unknown s = log y in [log(K a(m/2) b(m/2)), log(m/2)]; F decreasing
    w = ~strong & ~none
    lo[w] = np.minimum(lab[w] + la_h[w] + lb_h[w], log_half[w])
    hi[w] = log_half[w]
    x[w] = lo[w]
    # strong binding: unknown t = log u, u = m - y, in [log u_lo, log(m/2)]; G increasing
    s = strong & ~none
    with np.errstate(divide="ignore"):
        log_d = np.log(da + db)
    u1 = 0.5 * (log_m - _LOG4 - lab)
    u2 = log_m - _LOG4 - lab - log_d  # +inf when d == 0
    lo[s] = np.minimum(np.minimum(u1[s], u2[s]), log_half[s])
    hi[s] = log_half[s]
    x[s] = lo[s]

    active = w | s
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.nonzero(active)[0]
        xi, st = x[idx], strong[idx]
        ex = np.exp(xi)
        # amounts left for monomer + homodimer
        sa = np.where(st, da[idx] + ex, a0[idx] - ex)
        sb = np.where(st, db[idx] + ex, b0[idx] - ex)
        sa = np.maximum(sa, np.finfo(float).tiny)
        sb = np.maximum(sb, np.finfo(float).tiny)
        la = _log_free(np.log(sa), laa[idx])
        lb = _log_free(np.log(sb), lbb[idx])
        # residual: weak F = lab + la + lb - log y ; strong G = lab + la + lb - log(m - u)
        with np.errstate(divide="ignore"):
            log_y = np.where(st, np.log(np.maximum(m[idx] - ex, 0.0)), xi)
        r = lab[idx] + la + lb - log_y
        # derivative w.r.t. the log unknown
        ga = np.exp(xi - _dlog_free(la, laa[idx]))
        gb = np.exp(xi - _dlog_free(lb, lbb[idx]))
        with np.errstate(divide="ignore", over="ignore"):
            gy = np.where(st, ex / np.maximum(m[idx] - ex, np.finfo(float).tiny), 1.0)
        dr = np.where(st, ga + gb + gy, -(ga + gb + 1.0))
        # update the bracket (F decreasing in weak case, G increasing in strong case)
        root_above = np.where(st, r < 0, r > 0)
        lo_i = np.where(root_above, xi, lo[idx])
        hi_i = np.where(root_above, hi[idx], xi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = xi - r / dr
        ok = np.isfinite(newton) & (newton > lo_i) & (newton < hi_i)
        new = np.where(ok, newton, 0.5 * (lo_i + hi_i))
        done = (np.abs(new - xi) <= tol * np.maximum(1.0, np.abs(xi))) | (r == 0) \
            | ((hi_i - lo_i) <= tol * np.maximum(1.0, np.abs(xi)))
        x[idx] = np.where(r == 0, xi, new)
        lo[idx], hi[idx] = lo_i, hi_i
        active[idx[done]] = False

    # assemble concentrations from the converged unknown
    ex = np.exp(x)
    y = np.where(strong, m - ex, ex)
    y = np.where(none, 0.0, y)
    sa = np.where(strong, da + ex, a0 - y)
    sb = np.where(strong, db + ex, b0 - y)
    sa = np.where(none, a0, sa)
    sb = np.where(none, b0, sb)
    with np.errstate(divide="ignore"):
        la = _log_free(np.log(sa), laa)
        lb = _log_free(np.log(sb), lbb)
    a = np.exp(la)
    b = np.exp(lb)
    aa = np.exp(laa + 2 * la)  # a + 2 aa = sa to rounding (a from the stable quadratic root)
    bb = np.exp(lbb + 2 * lb)
    return Equilibrium(*(v.reshape(shape) for v in (a, b, aa, bb, y, a0, b0)))
