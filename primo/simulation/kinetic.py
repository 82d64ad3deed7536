"""Kinetic capture: the mass-action kinetics of one probe against N targets, down the anneal.

The ``anneal`` model (:mod:`primo.simulation.capture`) steps an equilibrium down the ramp and
locks duplexes that cannot dissociate within a step. That is a ratchet (a locked duplex never
releases, yet at the threshold 63 % would dissociate within the step) with instant refill (every
unlocked target is assumed to re-equilibrate within a step, but a 0.1 pM target relaxes at
``k_on [P] + k_off``, tens of minutes or more). This model integrates the rate equations instead.

Species and rate equations (one hybridization tube)
---------------------------------------------------
Free probe ``P``, probe homodimer ``PP``; for each target ``i`` free ``A_i``, homodimer
``A_iA_i`` and duplex ``PA_i``. With ``k_off = k_on / K(T)`` for every complex::

    d[PA_i]/dt  = k_on [P][A_i]  - k_off,i  [PA_i]
    d[A_iA_i]/dt = k_on [A_i]^2  - k_off,AA,i [A_iA_i]
    d[PP]/dt    = k_on [P]^2     - k_off,PP [PP]

(``K`` of a homodimer as in :func:`primo.simulation.capture.solve_capture`: ``[AA] = K_AA [A]^2``
at equilibrium, so the slow-ramp limit is that model's equilibrium.) The state is the bound
amounts only; the free ones are derived from the totals, ``[P] = P0 - 2[PP] - sum_i [PA_i]`` and
``[A_i] = c_i - [PA_i] - 2[A_iA_i]``, so mass is conserved by construction (to rounding).

Assumptions
-----------
* Well mixed; association is second order with one rate constant ``k_on`` (``Protocol.k_on``,
  1e6 /M/s by default: Wetmur 1991; Zhang & Winfree 2009) for every complex, independent of the
  temperature and of the sequence; ``k_off`` follows from detailed balance.
* Two-strand complexes only: no target–target heteroduplexes between documents (as the
  equilibrium model), no ternary complexes; a strand bound in one complex is not free for another.
* Binding free energies at each temperature come from :mod:`primo.thermo.ramp` (ViennaRNA through
  :class:`primo.thermo.simulator.Simulator` at node temperatures, interpolated; see there for the
  nodes and for the pairs evaluated at fewer temperatures).
* The ramp as run: the tube starts fully denatured (nothing bound) at ``anneal_from`` and holds
  each temperature of :meth:`Protocol.ramp` for ``seconds_per_step`` (stepped, as a thermocycler
  runs it, the default); ``ramp_shape="linear"`` instead cools continuously, approximated by holds
  of ``LINEAR_STEP_C`` at the mid temperature of each slice, then holds ``anneal_to`` for one step
  (so both shapes take the same time). ``Protocol.ramp_program`` gives bands of the ramp their own
  minutes per °C (:meth:`Protocol.minutes_at`: a hold, or a linear slice by its mid temperature,
  takes its band's time; a slice between two bands the uniform ``minutes_per_degree``). Within a
  hold the system is autonomous.
* The bead incubation (room temperature, 15 min) is in the hybridization mix and is not modelled
  beyond the final hold. The **washes** after it (``Protocol.washes`` of ``wash_minutes`` each,
  default 3 x 5 min) remove the supernatant: a duplex dissociates without rebinding at the
  capture temperature (``anneal_to``), ``[PA_i] *= exp(-k_off,i * t)`` per wash; released
  targets are washed away (reported as free), released probe stays on the beads (free).
  Target homodimers carry no biotin and are washed away.

Numerics
--------
Concentrations are scaled by the probe total and time is in seconds; association constants from
1e-5 to 1e100 L/mol give ``k_off`` from 1e11 /s down to 0 (rates are clipped at 1e100 /s, far
beyond any physical relevance). The system is very stiff (weak duplexes exchange in microseconds,
the tail over hours), so the integrator is implicit: the Rosenbrock method RODAS3 (Sandu,
Verwer, Blom, Spee, Carmichael & Potra 1997, Atmos. Environ. 31:3459; 4 stages, order 3, L-stable
and stiffly accurate, so that its embedded second-order estimate, the last stage, does not count a
stiff component landing on its quasi-steady state as an error), with adaptive steps and a max
norm over every species (relative ``rtol``; absolute floor ``atol`` of each target's amount,
capped at the probe's) and over the free probe. Measured against a dense scipy Radau reference
(tests/test_kinetic.py): it took 5x fewer steps than the second-order ROS2 at the same tolerance
and was 10x more accurate. The Jacobian is block diagonal (each target's duplex and homodimer)
plus a rank-one coupling through the free probe (an arrow shape), so each linear system is solved
in O(N) by the Sherman–Morrison formula; every 2 x 2 block's determinant is written as a sum of
positive terms (no cancellation). A target homodimer that cannot change the target's free
amount by :data:`HOMODIMER_NEGLIGIBLE` (``2 K_AA c`` at the ramp's most favourable temperature)
is left at zero, so most targets cost one unknown, not two. A step that drives a free amount
negative beyond the tolerance is rejected.

>>> import numpy as np
>>> from primo.simulation.capture import Protocol
>>> from primo.thermo.ramp import Thermo
>>> th = Thermo([21.0, 95.0], [[-30.0, -12.0], [-10.0, 0.0]], np.full((2, 2), np.inf),
...             [np.inf, np.inf])      # a strong and a weak binder, no homodimers
>>> r = kinetic_capture(th, [1e-11, 1e-11], Protocol(probe_nm=0.005, anneal_from=40.0))
>>> bool(r.bound[0] > 100 * r.bound[1])     # the washes take the weak duplex off
True
>>> bool(r.probe_balance() < 1e-12)
True
"""

from __future__ import annotations

import math

import numpy as np

from .capture import AnnealStep, CaptureResult

__all__ = ["kinetic_capture", "hold_temperatures", "wash", "LINEAR_STEP_C", "HOMODIMER_NEGLIGIBLE"]

#: slice width (°C) of the piecewise-constant approximation of a linear ramp
LINEAR_STEP_C = 0.1
#: a target's homodimer is left out where it can change the target's free amount by less than
#: this share (``2 K_AA c`` at the ramp's most favourable temperature), far below the solver's
#: tolerance; the others are integrated with their duplex
HOMODIMER_NEGLIGIBLE = 1e-5

_RATE_MAX = 1e100
_KELVIN = 273.15


def hold_temperatures(protocol) -> tuple[np.ndarray, np.ndarray]:
    """``(temperatures °C, seconds)`` of the holds the ramp is run as (see the module docstring)."""
    minutes_at = protocol.minutes_at
    if protocol.ramp_shape == "linear":
        span = protocol.anneal_from - protocol.anneal_to
        n = max(1, int(math.ceil(span / LINEAR_STEP_C - 1e-9))) if span > 0 else 0
        edges = np.linspace(protocol.anneal_from, protocol.anneal_to, n + 1)
        mids = 0.5 * (edges[:-1] + edges[1:])
        secs = span / max(n, 1) * minutes_at(mids) * 60.0
        temps = np.append(mids, protocol.anneal_to)
        secs = np.append(secs, minutes_at(protocol.anneal_to) * 60.0 * protocol.step_c)
        return temps, secs
    t = protocol.ramp()
    return t, minutes_at(t) * 60.0 * protocol.step_c


def _rates(thermo, temperature, k_on):
    """``k_off`` (/s) of each duplex, each target homodimer and the probe homodimer."""
    lk, lka, lkp = thermo.log_k(temperature)
    with np.errstate(over="ignore"):
        koff = k_on * np.exp(np.minimum(-np.asarray(lk, dtype=np.float64), 700.0))
        kaa = k_on * np.exp(np.minimum(-np.asarray(lka, dtype=np.float64), 700.0))
        kpp = k_on * math.exp(min(-float(lkp), 700.0))
    return (np.minimum(koff, _RATE_MAX), np.minimum(kaa, _RATE_MAX), min(kpp, _RATE_MAX))


class _System:
    """The rate equations in scaled units (probe total = 1) and their arrow-shaped Jacobian.

    ``hi``: the targets whose homodimer is tracked (``d`` has one entry per target of ``hi``);
    the others' homodimers are below :data:`HOMODIMER_NEGLIGIBLE` and kept at zero.
    """

    def __init__(self, c, kappa, no_ab, hi):
        self.c = c
        self.kappa = kappa
        self.no_ab = no_ab
        self.hi = hi

    def set_rates(self, koff, kaa, kpp):
        self.koff, self.kaa, self.kpp = koff, kaa[self.hi], kpp

    def free(self, b, d, q):
        p = 1.0 - 2.0 * q - b.sum()
        a = self.c - b
        if len(d):
            a[self.hi] -= 2.0 * d
        return p, a

    def f(self, b, d, q):
        p, a = self.free(b, d, q)
        p = max(p, 0.0)
        a = np.maximum(a, 0.0)
        k = self.kappa
        fb = k * p * a - self.koff * b
        ah = a[self.hi]
        fd = k * ah * ah - self.kaa * d
        fq = k * p * p - self.kpp * q
        return fb, fd, fq

    def factor(self, b, d, q, hg):
        """Factor ``I - hg J`` at the state; returns a solver of ``(I - hg J) x = r``."""
        p, a = self.free(b, d, q)
        p = max(p, 0.0)
        a = np.maximum(a, 0.0)
        k = self.kappa
        kp, ka = k * p, k * a
        hi = self.hi
        alpha = 1.0 + hg * (kp + self.koff)
        # the tracked homodimers: a 2 x 2 block (duplex, homodimer) per target
        koff_h, ka_h, kaa = self.koff[hi], ka[hi], self.kaa
        alpha_h = alpha[hi]
        beta = 2.0 * hg * kp
        gam = 2.0 * hg * ka_h
        delta = 1.0 + hg * (4.0 * ka_h + kaa)
        det = 1.0 + hg * (kp + koff_h + 4.0 * ka_h + kaa) \
            + hg * hg * (kp * kaa + koff_h * (4.0 * ka_h + kaa))
        aq = 1.0 + hg * self.kpp
        # rank-one part: u = hg (k a on b, 0 on d, 2 k p on q), v = (-1 on b, 0 on d, -2 on q)
        ub = hg * ka
        uq = hg * 2.0 * kp
        wb = ub / alpha
        wb[hi] = delta * ub[hi] / det
        wd = -gam * ub[hi] / det
        wq = uq / aq
        denom = 1.0 + wb.sum() + 2.0 * wq

        def solve(rb, rd, rq):
            zb = rb / alpha
            rbh = rb[hi]
            zb[hi] = (delta * rbh - beta * rd) / det
            zd = (alpha_h * rd - gam * rbh) / det
            zq = rq / aq
            s = -(zb.sum() + 2.0 * zq) / denom
            return zb + wb * s, zd + wd * s, zq + wq * s

        return solve


def _integrate(sys_, b, d, q, duration, h, rtol, atol_b, atol_q, stats):
    """Integrate one hold (Rodas3: 4 stages, order 3, stiffly accurate, L-stable)."""
    t = 0.0
    h = min(h, duration)
    c = sys_.c
    while t < duration * (1 - 1e-12):
        h = min(h, duration - t)
        hg = 0.5 * h
        solve = sys_.factor(b, d, q, hg)
        fb, fd, fq = sys_.f(b, d, q)
        k1 = solve(hg * fb, hg * fd, hg * fq)
        k2 = solve(hg * (fb + 4.0 / h * k1[0]), hg * (fd + 4.0 / h * k1[1]),
                   hg * (fq + 4.0 / h * k1[2]))
        fb, fd, fq = sys_.f(b + 2.0 * k1[0], d + 2.0 * k1[1], q + 2.0 * k1[2])
        k3 = solve(hg * (fb + (k1[0] - k2[0]) / h), hg * (fd + (k1[1] - k2[1]) / h),
                   hg * (fq + (k1[2] - k2[2]) / h))
        b3 = b + 2.0 * k1[0] + k3[0]
        d3 = d + 2.0 * k1[1] + k3[1]
        q3 = q + 2.0 * k1[2] + k3[2]
        fb, fd, fq = sys_.f(b3, d3, q3)
        k4 = solve(hg * (fb + (k1[0] - k2[0] - 8.0 / 3.0 * k3[0]) / h),
                   hg * (fd + (k1[1] - k2[1] - 8.0 / 3.0 * k3[1]) / h),
                   hg * (fq + (k1[2] - k2[2] - 8.0 / 3.0 * k3[2]) / h))
        bn, dn, qn = b3 + k4[0], d3 + k4[1], q3 + k4[2]
        eb, ed, eq = k4
        err = max(float(np.max(np.abs(eb) / (atol_b + rtol * np.maximum(np.abs(b), np.abs(bn))),
                                initial=0.0)),
                  float(np.max(np.abs(ed) / (atol_b[sys_.hi] + rtol * np.maximum(np.abs(d),
                                                                               np.abs(dn))),
                               initial=0.0)),
                  abs(eq) / (atol_q + rtol * max(abs(q), abs(qn))))
        pn, an = sys_.free(bn, dn, qn)
        p_old = sys_.free(b, d, q)[0]
        err = max(err, abs(float(eb.sum()) + 2.0 * eq)
                  / (atol_q + rtol * max(abs(p_old), abs(pn))))
        if not math.isfinite(err) or pn < -atol_q or bool(np.any(an < -atol_b)) \
                or bool(np.any(bn < -atol_b)):
            err = max(err, 10.0) if math.isfinite(err) else 1e6
        if err <= 1.0:
            t += h
            # back inside the bounds the totals set (the step left them by at most atol)
            d = np.clip(dn, 0.0, 0.5 * c[sys_.hi])
            room = c.copy()
            room[sys_.hi] -= 2.0 * d
            b = np.clip(bn, 0.0, room)
            b[sys_.no_ab] = 0.0
            q = min(max(qn, 0.0), 0.5)
            held = float(b.sum())
            if held + 2.0 * q > 1.0 and held > 0:
                b *= (1.0 - 2.0 * q) / held
            stats["steps"] += 1
            fac = 5.0 if err == 0 else min(5.0, max(0.2, 0.9 * err ** (-1.0 / 3.0)))
        else:
            stats["rejected"] += 1
            fac = max(0.1, min(0.5, 0.9 * err ** (-1.0 / 3.0)))
        h = h * fac
        if h < duration * 1e-15:
            raise RuntimeError("kinetic capture: the step size underflowed")
    return b, d, q, h


def wash(bound, log_k_final, k_on, washes, wash_seconds):
    """Bound amounts after ``washes`` washes of ``wash_seconds`` each (dissociation, no rebinding)."""
    bound = np.asarray(bound, dtype=np.float64)
    if washes <= 0 or wash_seconds <= 0:
        return bound.copy()
    with np.errstate(over="ignore"):
        koff = k_on * np.exp(np.minimum(-np.asarray(log_k_final, dtype=np.float64), 700.0))
    return bound * np.exp(-np.minimum(koff * (washes * wash_seconds), 1e300))


def kinetic_capture(thermo, conc, protocol, *, trace: bool = False, trace_arrays: bool = False,
                    rtol: float = 3e-3, atol: float = 1e-5):
    """Capture by the mass-action kinetics over the protocol's ramp, then the washes.

    Parameters
    ----------
    thermo : primo.thermo.ramp.Thermo
        Binding free energies of each target (and homodimers) over the ramp.
    conc : array_like
        Total concentration of each target (mol/L, > 0).
    protocol : primo.simulation.capture.Protocol
        Probe concentration, ramp, ``k_on``, washes.
    rtol, atol : float
        Relative tolerance of each bound amount, and its absolute floor as a fraction of
        ``min(target, probe)`` (so a target's captured fraction is resolved to ``atol`` of it
        and the probe's share to ``atol`` of the probe).

    Returns
    -------
    CaptureResult
        After the washes (``bound`` is what the beads hold); with ``trace`` also the list of
        :class:`primo.simulation.capture.AnnealStep` at the end of each hold
        (``locked_targets`` counts the duplexes with ``k_off * t_hold < 1`` there).
    """
    conc = np.asarray(conc, dtype=np.float64).ravel()
    if not (np.all(conc > 0) and np.isfinite(conc).all()):
        raise ValueError("target concentrations must be positive and finite")
    p0 = protocol.probe_m
    c = conc / p0
    n = c.size
    lk0 = np.broadcast_to(thermo.log_k(protocol.anneal_to)[0], (n,))
    no_ab = np.isneginf(lk0)
    temps, secs = hold_temperatures(protocol)
    rates = [_rates(thermo, t, protocol.k_on) for t in temps]
    # homodimers that can change a target's free amount by HOMODIMER_NEGLIGIBLE or more somewhere
    kaa_min = np.min([np.broadcast_to(r[1], (n,)) for r in rates], axis=0)
    hi = np.flatnonzero(2.0 * protocol.k_on / kaa_min * conc >= HOMODIMER_NEGLIGIBLE)
    sys_ = _System(c, protocol.k_on * p0, no_ab, hi)
    b = np.zeros(n)
    d = np.zeros(len(hi))
    q = 0.0
    atol_b = atol * np.minimum(c, 1.0)
    atol_q = atol
    h = min(1.0, float(secs[0]))
    stats = {"steps": 0, "rejected": 0, "homodimers_tracked": int(len(hi))}
    steps = []

    def full(dd):
        out = np.zeros(n)
        out[hi] = dd
        return out

    for t, dt, (koff, kaa, kpp) in zip(temps, secs, rates):
        sys_.set_rates(np.broadcast_to(koff, (n,)), np.broadcast_to(kaa, (n,)), kpp)
        b, d, q, h = _integrate(sys_, b, d, q, float(dt), h, rtol, atol_b, atol_q, stats)
        if trace:
            p, a = sys_.free(b, d, q)
            steps.append(AnnealStep(float(t), max(p, 0.0) * p0, q * p0, float(b.sum() * p0),
                                    int((koff * dt < 1).sum()),
                                    b * p0 if trace_arrays else None,
                                    np.maximum(a, 0.0) * p0 if trace_arrays else None,
                                    full(d) * p0 if trace_arrays else None))
    bound = b * p0
    dimers = full(d) * p0
    washes = int(getattr(protocol, "washes", 0))
    wash_s = float(getattr(protocol, "wash_minutes", 0.0)) * 60.0
    if washes and wash_s > 0:
        bound = wash(bound, lk0, protocol.k_on, washes, wash_s)
        dimers = np.zeros(n)
    pp = q * p0
    free_p = max(protocol.probe_m - 2.0 * pp - float(bound.sum()), 0.0)
    res = CaptureResult(bound=bound, free_probe=free_p, probe_homodimer=pp,
                        target_free=np.maximum(conc - bound - 2.0 * dimers, 0.0),
                        target_homodimer=dimers, conc=conc, probe_total=p0,
                        iterations=stats["steps"])
    res.kinetic_stats = stats
    return (res, steps) if trace else res
