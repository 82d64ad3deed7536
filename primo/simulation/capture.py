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

``anneal``
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

``kinetic`` (default)
    The mass-action rate equations of the same species integrated over the ramp as it is run,
    then the washes (:mod:`primo.simulation.kinetic`): no lock threshold, no instant refill.
    The default since it was measured against a dense ODE reference (the anneal's ratchet keeps
    weak binders 3-8 decades below the ODE, docs/results/kinetic-capture.md) and on the full
    Fashion-MNIST database (90 % recall of the 100 nearest neighbours at 1.66x MRPT's share
    against the anneal's 18x, docs/results/default-model.md); its energies cost ~1.5x the
    anneal's.

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
import re

import numpy as np

from ..constants import ANNEAL_FROM_C
from ..errors import UsageError
from ..settings import check_settings, setting

__all__ = ["CAPTURE_MODELS", "DEFAULT_CAPTURE", "RAMP_SHAPES", "K_ON_RANGE", "Protocol",
           "parse_ramp_program", "RAMP_AUTO", "RAMP_UNIFORM", "AUTO_HOT_SHARE", "AUTO_MARGIN_C",
           "CaptureResult",
           "solve_capture", "equilibrium_capture", "anneal_capture", "AnnealStep"]

#: capture model names; the first is the default
CAPTURE_MODELS = ("kinetic", "anneal", "equilibrium", "independent")
#: the capture model ``primo simulate`` uses unless told (and the training's capture evaluation)
DEFAULT_CAPTURE = CAPTURE_MODELS[0]
#: how the ramp is run (kinetic model): held at each step, or cooled continuously
RAMP_SHAPES = ("stepped", "linear")
#: accepted association rate constants (/M/s): slow hybridization to the diffusion limit
K_ON_RANGE = (1e2, 1e10)
#: ``probe_nm="auto"`` (``--probe-nm auto``): the probe is ordered with room for this many times
#: k documents' exposed strands (see :func:`auto_probe_nm`)
PROBE_ROOM_K = 2
#: the named probe-sizing rules ``--probe-nm`` accepts besides a concentration
PROBE_RULES = ("auto",)
#: ``ramp_program="auto"`` (the default of :meth:`Protocol.from_options`, hence of ``primo
#: simulate``): the program follows the model card (:meth:`Protocol.auto_program`)
RAMP_AUTO = "auto"
#: the spellings of the uniform ramp (every degree at ``minutes_per_degree``: the paper's)
RAMP_UNIFORM = ("", "uniform", "none")
#: the share of the ramp's time the ``auto`` program spends on its hot band (measured:
#: docs/results/default-model.md, "Choosing the auto rule across physics")
AUTO_HOT_SHARE = 0.7
#: the ``auto`` program's hot band reaches this many °C below the card's training temperature, a
#: margin for a physics that binds the near neighbours colder than the one trained against (the
#: perturbed parameters of the robustness study)
AUTO_MARGIN_C = 5.0

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

    probe_nm: float = setting(
        0.5, "Probe concentration in the hybridization (nM; 0.5: the paper's), or auto: sized to "
        f"the database as a lab orders it, with room for the strands of {PROBE_ROOM_K} x k "
        f"documents (probe = {PROBE_ROOM_K} k x pool_nm / documents; 15.8 nM for 1,900 "
        "documents, 0.5 nM at 60,000). The paper's 0.5 nM holds only ~6 of 1,900 documents' "
        "strands.",
        lo=0, hi=1e6, lo_open=True, metavar="NM|auto")
    pool_nm: float = setting(150.0, "Exposed feature regions of the whole pool (nM), shared by "
                             "all documents.", lo=0, hi=1e6, lo_open=True)
    na_molar: float = setting(1.0, "Na+ (mol/L).", lo=0, hi=5, lo_open=True)
    anneal_from: float = setting(ANNEAL_FROM_C, "Start of the anneal ramp (°C).", lo=-20,
                                 hi=110)
    anneal_to: float = setting(21.0, "End of the ramp, the hybridization temperature (°C).",
                               lo=-20, hi=110, default_text="the model card's, 21 for the paper")
    minutes_per_degree: float = setting(20.0, "Anneal rate (minutes per °C).", lo=0, hi=1e9,
                                        lo_open=True)
    decoys: int = setting(0, "Random decoy strands added to the pool, each at the mean document "
                          "concentration (the authors went up to 1,000x the database; at most "
                          "1e7 here, the memory of one capture).", lo=0, hi=10_000_000)
    k_on: float = setting(1e6, "Association rate constant of every duplex (/M/s): the anneal's "
                          "lock threshold and the kinetic model's rates.", lo=K_ON_RANGE[0],
                          hi=K_ON_RANGE[1])
    step_c: float = setting(1.0, "Temperature step of the ramp (°C).", lo=0, hi=100,
                            lo_open=True, cli=False)
    energy_nodes: int = setting(4, "Temperatures at which binding energies are computed for the "
                                "anneal (interpolated between; more nodes cost simulator time); "
                                "for the kinetic model, its kinetic_nodes.", lo=1, hi=200,
                                default_text="4 for anneal, 13 for kinetic")
    kinetic_nodes: int = setting(13, "Temperatures at which binding energies are computed for "
                                 "the kinetic model.", lo=1, hi=200, cli=False)
    washes: int = setting(3, "Washes after the bead capture (kinetic model): each lets duplexes "
                          "dissociate without rebinding at the hybridization temperature.", lo=0,
                          hi=100)
    wash_minutes: float = setting(5.0, "Length of each wash (minutes, kinetic model).", lo=0,
                                  hi=24 * 60)
    ramp_shape: str = setting("stepped", "How the anneal is run (kinetic model): each degree "
                              "held for minutes_per_degree, or cooled continuously.",
                              choices=RAMP_SHAPES)
    ramp_program: str = setting(
        "", "Unequal steps (kinetic model), as a thermocycler program: HOT-COLD:MINUTES[,...] "
        "runs the ramp from HOT down to COLD °C at MINUTES per °C, the rest at "
        "minutes_per_degree; e.g. 90-70:60,69-21:5 spends the time where the near neighbours "
        "bind. auto: the ramp's time (as uniform) spent 70 % from the top down to 5 °C below the "
        "model card's training temperature and 30 % below (95-76:52.5,75-21:8.18182 for primo "
        "train's default model); "
        "uniform where the card trains where it hybridizes (--paper) and for the anneal and "
        "equilibrium captures. uniform: every degree at minutes_per_degree (the paper's).",
        metavar="HOT-COLD:MIN,...|auto|uniform",
        default_text="auto (the library's Protocol(): uniform)")

    def __post_init__(self):
        check_settings(self)
        word = (self.ramp_program or "").strip().lower()
        if word in RAMP_UNIFORM:
            object.__setattr__(self, "ramp_program", "")
        elif word == RAMP_AUTO:
            raise UsageError("ramp_program auto follows a model card, which this protocol does "
                             "not know", option="ramp_program",
                             hint="build it with Protocol.from_options(..., training_c=the "
                                  "card's training temperature), or give the bands")
        if self.anneal_to > self.anneal_from:
            raise UsageError(f"anneal_to ({self.anneal_to} °C) is above anneal_from "
                             f"({self.anneal_from} °C): an anneal cools down",
                             option="anneal_to", hint="end the ramp below its start")
        self.bands     # the program parses and lies inside the ramp

    @property
    def bands(self) -> tuple:
        """The ramp program's bands, ``((hot, cold, minutes per °C), ...)`` from the hottest;
        empty for a uniform ramp. Refused in one line: a band that does not parse, is not finite,
        runs upwards, lies outside the ramp or overlaps another."""
        return parse_ramp_program(self.ramp_program, self.anneal_from, self.anneal_to)

    def minutes_at(self, temperatures) -> np.ndarray:
        """Minutes per °C of the ramp at each temperature (°C): its band's, else
        ``minutes_per_degree``."""
        t = np.asarray(temperatures, dtype=np.float64)
        out = np.full(t.shape, float(self.minutes_per_degree))
        for hot, cold, minutes in self.bands:
            out[(t <= hot + 1e-9) & (t >= cold - 1e-9)] = minutes
        return out

    @property
    def minutes_range(self) -> tuple[float, float]:
        """The fewest and the most minutes per °C anywhere on the ramp."""
        m = self.minutes_at(self.ramp())
        return float(m.min()), float(m.max())

    def auto_program(self, training_c: float | None) -> str:
        """The ``auto`` ramp program for a model trained at ``training_c`` °C: the ramp's time
        (as the uniform ramp's: every hold at ``minutes_per_degree``) spent
        :data:`AUTO_HOT_SHARE` on the holds above ``training_c`` - :data:`AUTO_MARGIN_C`, where
        the near neighbours the model was trained to bind at ``training_c`` find the probe (the
        margin for a physics that binds them a few degrees colder), and the rest on the holds
        below, each band evenly: ``95-76:52.5,75-21:8.18182`` for 95 -> 21 °C at 20 min per °C
        and a model trained at 80 °C (the rule measured against the uniform ramp and three other
        rules across physics on three seeds). ``""`` (uniform) when ``training_c`` is None (a
        card that trains where it hybridizes) or leaves no hold on one side."""
        if training_c is None or not math.isfinite(float(training_c)):
            return ""
        t = self.ramp()
        edge = float(training_c) - AUTO_MARGIN_C + 1e-9
        hot, cold = t[t > edge], t[t <= edge]
        if not len(hot) or not len(cold):
            return ""
        total = len(t) * float(self.minutes_per_degree)
        bands = ((hot, AUTO_HOT_SHARE), (cold, 1.0 - AUTO_HOT_SHARE))
        return ",".join(f"{b.max():g}-{b.min():g}:{share * total / len(b):.6g}"
                        for b, share in bands)

    @classmethod
    def from_options(cls, capture: str, *, hybridization_c: float | None = None,
                     training_c: float | None = None, **options) -> "Protocol | None":
        """The protocol of a simulation from the options a user gave (the command line passes
        only those given), with the rules in one place: None for the ``independent`` capture
        (which has no protocol; ``decoys`` need a competitive model); the ramp ends at
        ``hybridization_c`` (the model card's) unless ``anneal_to`` is given (a ramp ending
        elsewhere, warmer or colder, is the lab hybridizing where it does; a start below the
        card's temperature with no end given is refused); ``probe_nm="auto"`` keeps the default
        here (:func:`size_probe` sizes it to the database); ``energy_nodes`` is the kinetic
        model's ``kinetic_nodes`` under ``kinetic``; ``ramp_program`` is ``auto`` unless given
        (:meth:`auto_program` from ``training_c``, the card's training temperature, under the
        kinetic capture; uniform under the others)."""
        options = dict(options)
        if capture not in CAPTURE_MODELS:
            raise UsageError(f"unknown capture model {capture!r}", option="capture",
                             hint=f"choose one of {', '.join(CAPTURE_MODELS)}")
        if options.get("probe_nm") in PROBE_RULES:
            del options["probe_nm"]
        # auto (the default) follows the card below; the uniform ramp's spellings are the default
        program = str(options.pop("ramp_program", RAMP_AUTO) or "").strip()
        auto = program.lower() == RAMP_AUTO
        if program.lower() not in RAMP_UNIFORM and not auto:
            options["ramp_program"] = program
        if capture == "kinetic" and "energy_nodes" in options:
            options["kinetic_nodes"] = options.pop("energy_nodes")
        if capture == "independent":
            cls(**options)   # checked all the same
            if options.get("decoys"):
                raise UsageError("decoys need a competitive capture model", option="decoys",
                                 hint="use the anneal, kinetic or equilibrium capture")
            # each document meets the probe alone at 1 nM, at the card's hybridization
            # temperature: nothing of these applies (the ramp's ends included)
            ignored = sorted(options)
            if ignored:
                raise UsageError(f"the independent capture has no protocol: "
                                 f"{', '.join(ignored)} would be ignored", option=ignored[0],
                                 hint="drop them (it runs at the model card's hybridization "
                                      "temperature), or use the kinetic, anneal or equilibrium "
                                      "capture")
            return None
        if options.get("ramp_program") and capture != "kinetic":
            raise UsageError(f"the {capture} capture has no ramp program: its ramp is uniform",
                             option="ramp_program",
                             hint="use the kinetic capture, or drop ramp_program")
        if "anneal_to" not in options and hybridization_c is not None:
            options["anneal_to"] = float(hybridization_c)
            if options["anneal_to"] > options.get("anneal_from", cls.anneal_from):
                cls(**{**options, "anneal_to": options.get("anneal_from", cls.anneal_from)}) \
                    .check_temperature(hybridization_c, "the model card's hybridization "
                                                        "temperature")
        # a ramp given another end is the lab hybridizing elsewhere than the model was trained
        # for (warmer or colder): allowed, and recorded as the protocol's anneal_to
        protocol = cls(**options)
        if auto and capture == "kinetic":
            program = protocol.auto_program(training_c)
            if program:
                protocol = dataclasses.replace(protocol, ramp_program=program)
        return protocol

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
                             option="anneal_to",
                             hint="end the ramp (anneal_to, anneal_from) so that it includes it")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lock_k_per_molar"] = float(self.k_on * self.seconds_per_step)
        return d


def parse_ramp_program(text: str, anneal_from: float, anneal_to: float) -> tuple:
    """``((hot, cold, minutes per °C), ...)`` from ``HOT-COLD:MINUTES[,...]`` (the
    :attr:`Protocol.ramp_program`), sorted from the hottest band; ``()`` for ``""``."""
    text = (text or "").strip()
    if not text:
        return ()
    bands = []
    form = "HOT-COLD:MINUTES, e.g. 90-70:60 (bands separated by commas), or auto or uniform"
    for part in text.split(","):
        m = re.fullmatch(r"\s*(-?[0-9.eE+]+)\s*-\s*(-?[0-9.eE+]+)\s*:\s*([0-9.eE+-]+)\s*", part)
        try:
            hot, cold, minutes = (float(x) for x in m.groups()) if m else (None,) * 3
        except ValueError:
            hot = None
        if hot is None:
            raise UsageError(f"ramp_program band {part.strip()!r} is not HOT-COLD:MINUTES",
                             option="ramp_program", hint=f"write each band as {form}")
        if not all(math.isfinite(v) for v in (hot, cold, minutes)):
            raise UsageError(f"ramp_program band {part.strip()!r} has a number that is not finite",
                             option="ramp_program", hint=f"write each band as {form}")
        if hot < cold:
            raise UsageError(f"ramp_program band {part.strip()!r} runs upwards ({hot:g} °C to "
                             f"{cold:g} °C): an anneal cools down", option="ramp_program",
                             hint="write the band's warm end first, HOT-COLD:MINUTES")
        if not 0 < minutes <= 1e9:
            raise UsageError(f"ramp_program band {part.strip()!r}: minutes per °C must be in "
                             f"(0, 1e9], got {minutes:g}", option="ramp_program",
                             hint=f"write each band as {form}")
        if hot > anneal_from + 1e-9 or cold < anneal_to - 1e-9:
            raise UsageError(f"ramp_program band {part.strip()!r} lies outside the anneal "
                             f"({anneal_from:g} -> {anneal_to:g} °C)", option="ramp_program",
                             hint="keep every band between anneal_from and anneal_to")
        bands.append((hot, cold, minutes))
    bands.sort(key=lambda b: -b[0])
    for (h1, c1, _), (h2, c2, _) in zip(bands, bands[1:]):
        if h2 >= c1 - 1e-9:
            raise UsageError(f"ramp_program bands {h1:g}-{c1:g} and {h2:g}-{c2:g} overlap",
                             option="ramp_program",
                             hint="give each temperature one band (e.g. 90-70:60,69-21:5)")
    return tuple(bands)


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
        raise UsageError(f"the automatic probe size needs documents and k >= 1, got {documents} "
                         f"and {k}",
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
            raise UsageError(f"probe_nm {probe_nm!r} is neither a concentration nor a rule",
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
