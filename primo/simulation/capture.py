"""Capture models: which database strands one biotinylated probe pulls out of the pool.

The protocol (paper 001, methods; DESIGN.md "The laboratory protocol"): 6.4 µL of the amplified
pool + 1 µL of 10 nM probe + 10 µL of 2 M NaCl + water = 20 µL, i.e. the probe at **0.5 nM**, the
pool's exposed feature regions at up to **150 nM** spread over all N documents, **1 M Na+**;
annealed from **95 °C to 21 °C at 1 °C per 20 min**; streptavidin beads pull out the probe and
what it holds. The probe is the limiting reagent: it can hold at most 1/300 of the exposed strands,
so documents *compete* for it. Models of that step, chosen by name
(:data:`CAPTURE_MODELS`):

``independent``
    The paper's training proxy and primo's earlier model: each document meets the probe alone,
    both at 1 nM, and its captured fraction is the two-strand yield ``[AB] / 1 nM``
    (:meth:`primo.thermo.simulator.Simulator.yields`). No competition: a pool where every
    document binds captures every document.

``equilibrium``
    One probe species against N target species (and decoys) at the protocol's concentrations, at
    mass-action equilibrium at the final temperature. Species: free probe ``P``, its homodimer,
    each target ``A_i`` free, as a homodimer and bound to the probe. With the free probe
    concentration ``p``, each target's amounts follow in closed form; the probe balance

        P0 = p + 2 K_PP p^2 + sum_i K_i p a_i(p)

    is one strictly increasing equation in ``log p``, solved by Newton's method inside a bracket
    proved to hold the root (bisection when a step leaves it), in log space so that ``K`` from
    1e-5 to 1e100 L/mol and free concentrations far below 1e-30 M keep full precision
    (:func:`solve_capture`). Each target's split between monomer, homodimer and duplex uses the
    cancellation-free root of its quadratic, so mass is conserved to rounding for every species.
    Target–target duplexes between different documents are not modelled (the pool is
    double-stranded PCR product whose feature regions are exposed; their cross-hybridization
    competes with all probes alike).

``anneal`` (default)
    The equilibrium model stepped down the ramp, ``anneal_from`` → ``anneal_to`` in steps of
    ``step_c`` (1 °C), with the binding free energies at each temperature
    (:mod:`primo.thermo.ramp`). A duplex dissociates at ``k_off = k_on / K``; one whose
    dissociation is slower than the time spent at a step (``k_off * t_step < 1``, i.e.
    ``K >= k_on * t_step``) stays bound through it: its bound amount is *locked*, and only the
    free probe and the unlocked duplexes re-equilibrate among the strands left. With
    ``k_on = 1e6 /M/s`` (the order of magnitude measured for DNA oligonucleotide hybridization
    in 1 M Na+, 1e5–1e7 /M/s: Wetmur 1991, Crit. Rev. Biochem. Mol. Biol. 26:227; Zhang &
    Winfree 2009, JACS 131:17303) and 20 min per degree, a duplex locks once
    ``K >= 1.2e9 L/mol`` (``K_d <= 0.83 nM``). So the duplexes with the highest melting
    temperature form first and keep the probe, and weaker binders share what is left.
    Assumptions: the probe finds a partner quickly at each step (pseudo-first-order
    ``k_on * 150 nM = 0.15 /s``, minutes against the step's 20 min), so unlocked duplexes reach
    equilibrium within a step; locking is all-or-none per step; a locked duplex's strand may still
    bind more probe with its unbound part; the bead capture (room temperature, 15 min) and the
    washes keep what is bound at the end of the ramp.

``kinetic``
    The mass-action rate equations of the same species integrated over the ramp as it is run,
    then the washes (:mod:`primo.simulation.kinetic`): no lock threshold, no instant refill.

The captured fraction of each document (bound / total) then feeds the bead capture, PCR and
sequencing of :mod:`primo.simulation.wetlab`.

Concentrations: each document's exposed strands are ``pool_nm / N`` times its relative abundance
in the amplified pool (mean 1); each decoy (random feature region, ``decoys`` of them) is at the
mean document concentration.

>>> import numpy as np
>>> r = solve_capture(np.log([1e12, 1e6]), -np.inf, -np.inf, [1e-12, 1e-12], 5e-13)
>>> bool(r.bound[0] > 100 * r.bound[1])   # the strong binder takes the limiting probe
True
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..constants import ANNEAL_FROM_C
from ..errors import UsageError

__all__ = ["CAPTURE_MODELS", "RAMP_SHAPES", "K_ON_RANGE", "Protocol", "CaptureResult", "solve_capture", "equilibrium_capture",
           "anneal_capture", "AnnealStep"]

#: capture model names; the first is the default
CAPTURE_MODELS = ("anneal", "equilibrium", "independent", "kinetic")
#: how the ramp is run (kinetic model): held at each step, or cooled continuously
RAMP_SHAPES = ("stepped", "linear")
#: accepted association rate constants (/M/s): slow hybridization to the diffusion limit
K_ON_RANGE = (1e2, 1e10)

_LOG2 = math.log(2.0)
_LOG8 = math.log(8.0)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The hybridization protocol a capture model simulates (defaults: paper 001's methods).

    Concentrations in nM, temperatures in °C, ``na_molar`` in mol/L, ``k_on`` in /M/s.
    ``decoys``: number of random decoy strands added to the pool (each at the mean document
    concentration). ``energy_nodes``: temperatures at which binding energies are evaluated for
    the anneal (:mod:`primo.thermo.ramp`), ``kinetic_nodes`` for the kinetic model. ``washes``
    of ``wash_minutes`` each after the bead capture and ``ramp_shape`` (``stepped``: each step
    held for ``minutes_per_degree``, as a thermocycler runs it; ``linear``: continuous cooling)
    are used by the ``kinetic`` model (:mod:`primo.simulation.kinetic`); the paper gives three
    washes but not their length: 3 x 5 min, 15 min of dissociation without rebinding at the
    capture temperature in all.
    """

    probe_nm: float = 0.5
    pool_nm: float = 150.0
    na_molar: float = 1.0
    anneal_from: float = ANNEAL_FROM_C
    anneal_to: float = 21.0
    minutes_per_degree: float = 20.0
    decoys: int = 0
    k_on: float = 1e6
    step_c: float = 1.0
    energy_nodes: int = 4
    kinetic_nodes: int = 12
    washes: int = 3
    wash_minutes: float = 5.0
    ramp_shape: str = "stepped"

    def __post_init__(self):
        def bad(option, what, hint=None):
            raise UsageError(f"{option} {what}", hint=hint)

        for option, v in (("--probe-nm", self.probe_nm), ("--pool-nm", self.pool_nm),
                          ("--na-molar", self.na_molar)):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                bad(option, f"must be a positive concentration, got {v}")
        if not self.na_molar <= 5:
            bad("--na-molar", f"{self.na_molar} M is out of range", "give mol/L, e.g. 1.0")
        for option, v in (("--anneal-from", self.anneal_from), ("--anneal-to", self.anneal_to)):
            if not (math.isfinite(v) and -20 <= v <= 110):
                bad(option, f"{v} °C is out of range", "give degrees Celsius between -20 and 110")
        if self.anneal_to > self.anneal_from:
            bad("--anneal-to", f"({self.anneal_to} °C) is above --anneal-from "
                f"({self.anneal_from} °C): an anneal cools down",
                "give --anneal-from >= --anneal-to")
        if not (math.isfinite(self.minutes_per_degree) and self.minutes_per_degree > 0):
            bad("--minutes-per-degree", f"must be > 0, got {self.minutes_per_degree}")
        if int(self.decoys) != self.decoys or self.decoys < 0:
            bad("--decoys", f"must be a number of strands >= 0, got {self.decoys}")
        if not (isinstance(self.k_on, (int, float)) and math.isfinite(self.k_on)
                and K_ON_RANGE[0] <= self.k_on <= K_ON_RANGE[1]):
            raise UsageError(f"k_on = {self.k_on} /M/s is out of range", option="k_on",
                             hint=f"give an association rate constant between "
                                  f"{K_ON_RANGE[0]:g} and {K_ON_RANGE[1]:g} /M/s, e.g. 1e6")
        if not (isinstance(self.washes, (int, np.integer)) and not isinstance(self.washes, bool)
                and 0 <= self.washes <= 100):
            raise UsageError(f"washes = {self.washes} must be a whole number from 0 to 100",
                             option="washes")
        if not (isinstance(self.wash_minutes, (int, float)) and math.isfinite(self.wash_minutes)
                and 0 <= self.wash_minutes <= 24 * 60):
            raise UsageError(f"wash_minutes = {self.wash_minutes} must be between 0 and 1440",
                             option="wash_minutes")
        if self.ramp_shape not in RAMP_SHAPES:
            raise UsageError(f"unknown ramp shape {self.ramp_shape!r}", option="ramp_shape",
                             hint=f"choose one of {', '.join(RAMP_SHAPES)}")
        if not (math.isfinite(self.step_c) and self.step_c > 0):
            bad("step_c", f"must be > 0, got {self.step_c}")
        if int(self.energy_nodes) < 1:
            bad("--energy-nodes", f"must be >= 1, got {self.energy_nodes}")
        if int(self.kinetic_nodes) != self.kinetic_nodes or not 1 <= self.kinetic_nodes <= 200:
            raise UsageError(f"kinetic_nodes = {self.kinetic_nodes} must be a whole number from "
                             "1 to 200", option="kinetic_nodes")

    @property
    def probe_m(self) -> float:
        return self.probe_nm * 1e-9

    @property
    def pool_m(self) -> float:
        return self.pool_nm * 1e-9

    @property
    def seconds_per_step(self) -> float:
        return self.minutes_per_degree * 60.0 * self.step_c

    @property
    def lock_log_k(self) -> float:
        """log of the association constant (L/mol) above which a duplex stays bound for a step."""
        return math.log(self.k_on * self.seconds_per_step)

    def ramp(self) -> np.ndarray:
        """Temperatures of the anneal's steps, from ``anneal_from`` down to ``anneal_to``."""
        n = int(math.floor((self.anneal_from - self.anneal_to) / self.step_c + 1e-9))
        t = self.anneal_from - self.step_c * np.arange(n + 1)
        if t[-1] > self.anneal_to + 1e-9:
            t = np.append(t, self.anneal_to)
        return t

    def check_temperature(self, temperature_c: float, what: str = "the model card's temperature"):
        """Refuse a hybridization temperature outside the ramp (one line, naming the options)."""
        if not (self.anneal_to - 1e-9 <= temperature_c <= self.anneal_from + 1e-9):
            raise UsageError(f"{what} ({temperature_c:g} °C) lies outside the anneal "
                             f"({self.anneal_from:g} -> {self.anneal_to:g} °C)",
                             hint="set --anneal-to/--anneal-from so that the ramp includes it")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lock_k_per_molar"] = float(self.k_on * self.seconds_per_step)
        return d


@dataclasses.dataclass
class CaptureResult:
    """Amounts (mol/L) after a capture. ``bound[i]``: target ``i`` held by the probe."""

    bound: np.ndarray
    free_probe: float
    probe_homodimer: float          # concentration of probe-probe dimers
    target_free: np.ndarray
    target_homodimer: np.ndarray    # concentration of target-target dimers
    conc: np.ndarray
    probe_total: float
    iterations: int = 0

    @property
    def fraction(self) -> np.ndarray:
        """Captured fraction of each target: bound / total."""
        return self.bound / self.conc

    def probe_balance(self) -> float:
        """Relative error of the probe's mass balance (0 to rounding)."""
        tot = self.free_probe + 2 * self.probe_homodimer + float(self.bound.sum())
        return abs(tot - self.probe_total) / self.probe_total


def _split(log_kp, lka, log_s):
    """log bound and d(log bound)/d(log p) for targets of amount ``s``, given ``log(K p)``."""
    # bound = s * sigmoid(log_kp) * 2 / (1 + sqrt(1 + r)), r = 8 Kaa s / (1 + K p)^2
    log_u = np.logaddexp(0.0, log_kp)
    sig_log = log_kp - log_u
    with np.errstate(invalid="ignore"):
        log_r = _LOG8 + lka + log_s - 2 * log_u
    log_r = np.where(np.isnan(log_r), -np.inf, log_r)
    log_fac = _LOG2 - np.logaddexp(0.0, 0.5 * np.logaddexp(0.0, log_r))
    lb = log_s + sig_log + log_fac
    s = np.exp(sig_log)
    r = np.exp(np.minimum(log_r, 700.0))
    sq = np.sqrt(1.0 + r)
    with np.errstate(invalid="ignore"):
        dfac = np.where(np.isfinite(r), r / (sq * (1.0 + sq)), 1.0)
    d = (1.0 - s) + s * dfac
    return lb, d


def solve_capture(log_k, log_k_aa, log_k_pp, conc, probe_total, *, locked=None,
                  log_p_guess=None, tol: float = 1e-13, max_iter: int = 200) -> CaptureResult:
    """Competitive equilibrium of one probe with many targets (see the module docstring).

    Parameters
    ----------
    log_k : array_like
        Natural log of each target's association constant with the probe (L/mol); ``-inf``: no
        duplex.
    log_k_aa : array_like or float
        Natural log of each target's homodimer constant (``-inf``: none).
    log_k_pp : float
        Natural log of the probe's homodimer constant.
    conc : array_like
        Total concentration of each target (mol/L, > 0).
    probe_total : float
        Total probe (mol/L, > 0).
    locked : array_like, optional
        Amount of each target held by the probe that does not exchange (anneal); the rest of the
        probe and of each target equilibrate. Default: none.
    log_p_guess : float, optional
        Starting point for the free probe's log (the previous step's, in an anneal).

    Returns
    -------
    CaptureResult
        ``bound`` includes the locked amounts.
    """
    # This reads best whole (103 lines with its docstring): input checks, the bracket of the one
    # unknown (log free probe), the safeguarded Newton iteration and the closed-form split of each
    # target share the same per-target arrays; split, each piece would take and return most of them.
    conc = np.asarray(conc, dtype=np.float64).ravel()
    lk = np.broadcast_to(np.asarray(log_k, dtype=np.float64), conc.shape).ravel()
    lka = np.broadcast_to(np.asarray(log_k_aa, dtype=np.float64), conc.shape).ravel()
    lkp = float(log_k_pp)
    if not (np.all(conc > 0) and np.isfinite(conc).all()):
        raise ValueError("target concentrations must be positive and finite")
    if not (probe_total > 0 and math.isfinite(probe_total)):
        raise ValueError("the probe concentration must be positive and finite")
    if np.isnan(lk).any() or np.isnan(lka).any() or math.isnan(lkp):
        raise ValueError("association constants must not be NaN")
    locked = np.zeros_like(conc) if locked is None else \
        np.clip(np.asarray(locked, dtype=np.float64).ravel(), 0.0, conc)
    s_left = conc - locked
    p_avail = probe_total - float(locked.sum())
    log_pa = math.log(p_avail) if p_avail > 0 else -math.inf
    with np.errstate(divide="ignore"):
        log_s = np.log(s_left)
    live = np.isfinite(lk) & np.isfinite(log_s)
    it = 0
    if not math.isfinite(log_pa) or p_avail <= probe_total * 1e-15:
        log_p = -math.inf
    else:
        lk_l, lka_l, ls_l = lk[live], lka[live], log_s[live]

        def residual(x):
            # log(p + 2 Kpp p^2 + sum bound) - log(P_avail), increasing in x = log p
            lb, d = _split(lk_l + x, lka_l, ls_l)
            terms = np.concatenate([[x, _LOG2 + lkp + 2 * x], lb])
            tot = float(np.logaddexp.reduce(terms))
            w = np.exp(terms - tot)
            deriv = float(w[0] + 2 * w[1] + (w[2:] * d).sum())
            return tot - log_pa, deriv

        # bracket: p <= P_avail; p >= P_avail / (1 + 2 Kpp P_avail + sum K s)
        hi = log_pa
        lo = log_pa - float(np.logaddexp.reduce(np.concatenate(
            [[0.0, _LOG2 + lkp + log_pa], lk_l + ls_l])))
        lo = min(lo, hi)
        x = hi if log_p_guess is None or not math.isfinite(log_p_guess) else \
            min(max(float(log_p_guess), lo), hi)
        for it in range(1, max_iter + 1):
            r, dr = residual(x)
            if r == 0:
                break
            if r > 0:
                hi = x
            else:
                lo = x
            new = x - r / dr if dr > 0 else 0.5 * (lo + hi)
            if not (lo < new < hi) or not math.isfinite(new):
                new = 0.5 * (lo + hi)
            if abs(new - x) <= tol * max(1.0, abs(x)) or (hi - lo) <= tol * max(1.0, abs(x)):
                x = new
                break
            x = new
        log_p = x
    # assemble every species from the free probe
    with np.errstate(divide="ignore", invalid="ignore"):
        lb, _ = _split(lk + log_p, lka, log_s)
    extra = np.where(live, np.exp(lb), 0.0)
    extra = np.minimum(extra, s_left)
    rest = s_left - extra
    # rest = a + 2 Kaa a^2 (stable root)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_rest = np.log(rest)
        t = _LOG8 + lka + log_rest
        log_a = _LOG2 + log_rest - np.logaddexp(0.0, 0.5 * np.logaddexp(0.0, t))
    a = np.where(rest > 0, np.exp(log_a), 0.0)
    a = np.where(np.isnan(a), rest, a)
    aa = 0.5 * (rest - a)
    p = math.exp(log_p) if math.isfinite(log_p) else 0.0
    pp = math.exp(lkp + 2 * log_p) if math.isfinite(log_p) and math.isfinite(lkp) else 0.0
    return CaptureResult(bound=locked + extra, free_probe=p, probe_homodimer=pp, target_free=a,
                         target_homodimer=aa, conc=conc, probe_total=float(probe_total),
                         iterations=it)


def equilibrium_capture(thermo, conc, protocol: Protocol) -> CaptureResult:
    """Competitive equilibrium at the end temperature of the protocol (no anneal)."""
    lk, lka, lkp = thermo.log_k(protocol.anneal_to)
    return solve_capture(lk, lka, lkp, conc, protocol.probe_m)


@dataclasses.dataclass
class AnnealStep:
    """One step of an anneal (for traces and tests)."""

    temperature: float
    free_probe: float
    probe_homodimer: float
    bound_total: float
    locked_targets: int
    bound: np.ndarray | None = None
    target_free: np.ndarray | None = None
    target_homodimer: np.ndarray | None = None


def anneal_capture(thermo, conc, protocol: Protocol, *, trace: bool = False,
                   trace_arrays: bool = False):
    """Capture stepped down the protocol's ramp (see the module docstring).

    Returns ``CaptureResult`` (and the list of :class:`AnnealStep` when ``trace``).
    """
    conc = np.asarray(conc, dtype=np.float64).ravel()
    bound = np.zeros_like(conc)
    steps = []
    log_p = None
    res = None
    lock = protocol.lock_log_k
    for t in protocol.ramp():
        lk, lka, lkp = thermo.log_k(t)
        locked = np.where(lk >= lock, bound, 0.0)
        res = solve_capture(lk, lka, lkp, conc, protocol.probe_m, locked=locked,
                            log_p_guess=log_p)
        bound = res.bound
        log_p = math.log(res.free_probe) if res.free_probe > 0 else None
        if trace:
            steps.append(AnnealStep(float(t), res.free_probe, res.probe_homodimer,
                                    float(bound.sum()), int((locked > 0).sum()),
                                    bound.copy() if trace_arrays else None,
                                    res.target_free.copy() if trace_arrays else None,
                                    res.target_homodimer.copy() if trace_arrays else None))
    return (res, steps) if trace else res


# --------------------------------------------------------------------------- the probe's size
#: ``probe_nm="auto"`` (``--probe-nm auto``): the probe is ordered with room for this many times
#: k documents' exposed strands (see :func:`auto_probe_nm`)
PROBE_ROOM_K = 2
#: the named probe-sizing rules ``--probe-nm`` accepts besides a concentration
PROBE_RULES = ("auto",)

__all__ += ["PROBE_ROOM_K", "PROBE_RULES", "auto_probe_nm", "size_probe"]


def auto_probe_nm(documents: int, k: int, pool_nm: float = 150.0,
                  room_k: float = PROBE_ROOM_K) -> float:
    """The probe concentration (nM) a lab orders for a database of ``documents``: room for the
    strands of ``room_k * k`` documents, each document's exposed strands being at
    ``pool_nm / documents`` on average, i.e. ``room_k * k * pool_nm / documents`` (at most the
    whole pool, ``pool_nm``).

    The paper's 0.5 nM against 150 nM holds 1/300 of the strands: room for ~5,300 documents
    (53 x k for k = 100) at its 1.6 M documents, 200 (2 x k) at Fashion-MNIST's 60,000, but only
    6 in a 1,900-document demo, where 50 of a query's 100 nearest neighbours cannot all be
    captured. The rule keeps the room of the 60,000-document runs, 2 x k, at every size: 15.8 nM
    for 1,900 documents, 0.5 nM at 60,000.

    >>> round(auto_probe_nm(1900, 100), 2), auto_probe_nm(60_000, 100)
    (15.79, 0.5)
    """
    documents, k = int(documents), int(k)
    if documents < 1 or k < 1:
        raise UsageError(f"--probe-nm auto needs documents and k >= 1, got {documents} and {k}",
                         option="probe_nm")
    return float(pool_nm) * min(float(room_k) * k, documents) / documents


def size_probe(protocol, probe_nm, *, documents: int, k: int):
    """The protocol with its probe sized by ``probe_nm`` (None: keep the protocol's; a number in
    nM; or ``"auto"``: :func:`auto_probe_nm`), and what to record of it: ``(protocol, rule)``,
    rule a dict (the rule, the resolved ``probe_nm``, the room it gives in documents and in
    multiples of k). ``protocol`` None (the independent capture, no probe competition) stays
    None."""
    if protocol is None:
        return None, None
    rule = "protocol"
    if isinstance(probe_nm, str):
        if probe_nm.strip().lower() not in PROBE_RULES:
            raise UsageError(f"--probe-nm {probe_nm!r} is neither a concentration nor a rule",
                             hint=f"give nM (e.g. 0.5) or {' / '.join(PROBE_RULES)}",
                             option="probe_nm")
        rule = "auto"
        protocol = dataclasses.replace(
            protocol, probe_nm=auto_probe_nm(documents, k, protocol.pool_nm))
    elif probe_nm is not None:
        rule = "fixed"
        protocol = dataclasses.replace(protocol, probe_nm=float(probe_nm))
    room = documents * protocol.probe_nm / protocol.pool_nm
    return protocol, {"rule": rule, "room_k": PROBE_ROOM_K if rule == "auto" else None,
                      "probe_nm": protocol.probe_nm, "documents": int(documents), "k": int(k),
                      "room_documents": round(room, 2), "room_in_k": round(room / k, 3)}
