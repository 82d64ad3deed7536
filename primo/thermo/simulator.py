"""The thermodynamic hybridization simulator: yields of (target, query) feature sequence pairs.

The reaction (DESIGN.md "Simulation", paper 001 methods): the *target strand* is the target feature
sequence followed by the reverse primer, ``target + RP`` (98 nt); the *query strand* is the reverse
complement of the query feature sequence followed by the first ``toehold`` bases of RP,
``revcomp(query + RP[:6])`` (86 nt). Both sequences of a pair are given in the same sense, as the
encoder writes them, so identical features mean a perfect duplex. At 21 °C, 1 M Na+, with 1 nM of
each strand and complexes of at most two strands (A, B, AA, BB, AB), the yield is ``[AB] / 1 nM``
(in general ``[AB] / min(target_conc, query_conc)``).

Computation
-----------
1. Ensemble free energies (kcal/mol, 1 M standard state): per strand the monomer ``G_A`` and the
   homodimer ``G_AA``; per pair the heterodimer ``G_AB`` (a backend: ViennaRNA by default, see
   :mod:`primo.thermo.vienna`, or NUPACK 4, :mod:`primo.thermo.nupack`; the
   standard-state, association-penalty and symmetry conventions are documented there).
2. Association constants ``K_AB = exp(-(G_AB - G_A - G_B)/RT)``, ``K_AA``, ``K_BB``, and the
   mass-action equilibrium solved in log space (:mod:`primo.thermo.equilibrium`).

Speed without changing the physics: within a call every distinct strand is evaluated once (a query
meets many targets, a target many queries) and kept in a per-simulator cache across calls, so a
new pair costs one heterodimer partition function (~17 ms for 98 + 86 nt) instead of five (~60 ms).
Work is cut into chunks and spread over a pluggable map (:mod:`primo.parallel`: serial, local
processes, Dask); each free energy is a deterministic function of its sequences and the equilibrium
is solved in the calling process, so results are identical bit for bit whatever the map.

Agreement with NUPACK (what was and was not checked)
----------------------------------------------------
NUPACK is not installable here, so no NUPACK number was reproduced directly. What holds:

* Standard state: exact. NUPACK solves for mole fractions with an association penalty shifted by
  ``-RT ln rho_H2O``; primo solves in mol/L with the published 1 M penalty. The two mass-action
  systems are the same equations (``x = c / rho``), so the same free energies give the same
  ``[AB]`` (the NUPACK backend converts NUPACK's free energies accordingly).
* Association penalty: the same published value, SantaLucia & Hicks 2004 (1.96 / 0.2 kcal/mol),
  substituted into ViennaRNA's set (tested: the dimer free energy moves by exactly 0.96 kcal/mol
  at 37 °C).
* Complex ensembles: ViennaRNA's dimer free energy is the sum over connected structures only, and
  homodimers carry ``+RT ln 2`` (the rotational symmetry NUPACK applies): both tested against a
  brute-force enumeration of every structure of short dimers (within 0.02 kcal/mol).
* Equilibrium: species A, B, AA, BB, AB as NUPACK's ``SetSpec(max_size=2)``; solver tested against
  scipy for K over 1e-5..1e30 L/mol; mass conserved to 1e-12.
* Energy parameters differ in ways not removable here: ViennaRNA's DNA stack enthalpies are not
  SantaLucia's (measured effect on S-curve means <= 0.02), ViennaRNA's ``d2`` dangles stand in for
  NUPACK 4's coaxial/dangle "stacking" ensemble (not measured), and G·T pairs are allowed
  (forbidding them lowered the mean yield at 50% mismatch from 0.27 to 0.17). Expect the S-curve's
  mid-point, not its shape, to differ from NUPACK's by a few percent mismatch.
* Behaviour of the paper: perfect matches >= 0.99; random 80-nt pairs mostly do not bind (60
  pairs: median 2e-4, mean 0.06, 7% above 0.5: chance complementarity of long strands); a sharp
  S-curve between 35% and 55% mismatches (``experiments/plot_yield_curve.py``).

Why one module of ~700 lines: the :class:`Simulator`, the
work items it hands to the parallel map (module-level functions, so that they pickle) and
:func:`simulate_csv` (the ``yields`` command's file round trip) change together whenever the
backends' interface does; the physics and the caches read best side by side.

>>> sim = Simulator()
>>> t = "ACGTTGCAAGGCTTACCGATAGCTTAGCCATGCAAGTCCGATCGTAGCTAGGCATCGATCAGTCGATGCTAGCATCGTAG"
>>> float(sim.yields([t], [t])[0]) > 0.99
True
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .. import constants
from ..dna import revcomp, validate_sequence
from ..errors import DataError, MissingDependencyError, UsageError
from ..progress import progress as _progress
from .equilibrium import Equilibrium, log_constants, solve_equilibrium

__all__ = ["Simulator", "available_backends", "get_simulator", "BACKENDS", "target_strand",
           "query_strand", "mutate", "simulate_csv"]

#: known backend names ("auto" picks nupack when importable, else vienna)
BACKENDS = ("vienna", "nupack")

#: SantaLucia & Hicks (2004) duplex initiation (dG37, dH) in kcal/mol, as in NUPACK's dna04
SANTALUCIA_DUPLEX_INIT = (1.96, 0.20)


def available_backends() -> list[str]:
    """Backends usable in this environment (``vienna`` always; ``nupack`` if importable)."""
    from . import nupack as thermo_nupack

    out = ["vienna"]
    if thermo_nupack.available():
        out.append("nupack")
    return out


def _check_backend(name: str) -> str:
    from . import nupack as thermo_nupack

    name = str(name).strip().lower()
    if name == "auto":
        return "nupack" if thermo_nupack.available() else "vienna"
    if name not in BACKENDS:
        raise UsageError(f"unknown simulator backend {name!r}",
                         hint=f"choose one of {', '.join(BACKENDS)} or auto")
    if name == "nupack" and not thermo_nupack.available():
        raise MissingDependencyError("backend 'nupack' needs NUPACK 4, which is not installed",
                                     hint=thermo_nupack.INSTALL_HINT)
    if name == "vienna":
        try:
            import RNA  # noqa: F401
        except ImportError:
            raise MissingDependencyError("backend 'vienna' needs ViennaRNA, which is not installed",
                                         hint="pip install ViennaRNA") from None
    return name


def target_strand(target: str, primer: str = constants.RP) -> str:
    """The database strand whose feature region the query meets: ``target + primer``."""
    return target + primer


def query_strand(query: str, primer: str = constants.RP, toehold: int = constants.TOEHOLD) -> str:
    """The probe strand: reverse complement of ``query + primer[:toehold]``."""
    return revcomp(query + primer[:toehold])


def mutate(seq: str, fraction: float, rng) -> str:
    """``seq`` with ``round(fraction * len(seq))`` positions changed to a different base.

    Used to make pairs at a known mismatch fraction (S-curve, benchmarks, tests).
    """
    s = list(seq)
    k = int(round(fraction * len(s)))
    for i in rng.choice(len(s), size=k, replace=False):
        s[i] = "ACGT"[("ACGT".index(s[i]) + int(rng.integers(1, 4))) % 4]
    return "".join(s)


def _valid(seq, length, what, hint, where):
    try:
        return validate_sequence(seq, length=length, what=what, **where)
    except DataError as e:
        if hint and "expected" in e.raw_message and e.hint is None:
            raise DataError(e.raw_message, hint=hint, **where) from None
        raise


# ------------------------------------------------- work items (module level, so picklable)

def _energies_module(backend: str):
    if backend == "vienna":
        from . import vienna as m
    else:
        from . import nupack as m
    return m


def _strand_task(item):
    """Worker: ``(backend, conditions, strands)`` -> (n, 2) monomer/homodimer free energies."""
    backend, conditions, strands = item
    return _energies_module(backend).strand_energies(strands, **conditions)


def _pair_task(item):
    """Worker: ``(backend, conditions, pairs)`` -> (n,) heterodimer free energies."""
    backend, conditions, pairs = item
    return _energies_module(backend).pair_energies(pairs, **conditions)


def _naive_task(item):
    """Worker: every ensemble of every pair recomputed -> (n, 5) G_A, G_B, G_AA, G_BB, G_AB."""
    backend, conditions, pairs = item
    m = _energies_module(backend)
    out = np.empty((len(pairs), 5), dtype=np.float64)
    for i, (a, b) in enumerate(pairs):
        sa = m.strand_energies([a], **conditions)[0]
        sb = m.strand_energies([b], **conditions)[0]
        out[i] = (sa[0], sb[0], sa[1], sb[1], m.pair_energies([(a, b)], **conditions)[0])
    return out


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _bar(total, unit, show):
    return _progress(total=total, desc="yields", unit=unit) if show else _NoBar()


def _pair_key(pair) -> str:
    """A pair's key in an :class:`~primo.thermo.store.EnergyStore` (strands are ``"s:" + strand``)."""
    return f"p:{pair[0]}+{pair[1]}"


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


# ---------------------------------------------------------------- the simulator

class Simulator:
    """Thermodynamic yields of target strands with query probes.

    Parameters
    ----------
    backend : {"vienna", "nupack", "auto"}
        Free-energy engine. ``vienna`` (default) is ViennaRNA with its DNA parameters; ``nupack``
        needs NUPACK 4 installed; ``auto`` takes NUPACK when it is importable.
    temperature : float
        Degrees Celsius (21).
    target_conc, query_conc : float
        Initial strand concentrations in mol/L (1 nM each).
    primer : str
        Reverse primer appended to targets; its first ``toehold`` bases follow the query (RP).
    toehold : int
        Number of primer bases on the probe (6).
    na_molar : float
        Na+ in mol/L (1.0; the parameters' reference condition, no salt correction), as the
        hybridization protocol spells it (:attr:`primo.simulation.capture.Protocol.na_molar`).
        ``sodium=``, its earlier name, is kept for one release (a ``DeprecationWarning``); the
        settings record it as ``sodium_m``.
    feature_length : int or None
        Expected length of every feature sequence (80); ``None`` accepts any length as long as a
        pair's target and query have the same length.
    duplex_init : tuple or None
        ViennaRNA only: bimolecular initiation (dG37, dH) kcal/mol, default SantaLucia & Hicks
        (2004), NUPACK's value; ``None`` keeps ViennaRNA's file value (see ``thermo_vienna``).
    dangles : int
        ViennaRNA dangle model (2).
    gt_pairs : bool
        ViennaRNA only: allow G·T pairs, as ViennaRNA's DNA set does (True).
    loop_enthalpies : {"clipped", "shipped"}
        ViennaRNA only: ``clipped`` (default) caps the loop enthalpies of the DNA set so that no
        loop gains entropy on forming; ``shipped`` keeps the file's, whose loops become more
        stable as the temperature rises above ~60 °C (see ``thermo_vienna``, "Loop
        enthalpies"). Model cards written before this option load as ``shipped``.
    stacks : {"vienna", "santalucia"}
        ViennaRNA only: the Watson-Crick stack free energies and enthalpies, ``vienna`` (default,
        the file's) or ``santalucia`` (SantaLucia & Hicks 2004, Table 1; see ``thermo_vienna``,
        "Stacks"). Model cards written before this option load as ``vienna``. With the
        ``nupack`` backend only ``vienna`` (the default: "not asked for") is accepted, since
        NUPACK's dna04 already has SantaLucia's stacks; ``santalucia`` there is a usage error.
    perturb : (float, int) or None
        ViennaRNA only: ``(sigma, seed)``, every nearest-neighbor free energy at 37 °C plus
        seeded Gaussian noise of ``sigma`` kcal/mol (``thermo_vienna._perturbed_free_energies``):
        a physics the model was not trained on, as a model of the parameters' uncertainty.
        None (default) or sigma 0: the parameters as set above.
    cache_strands : bool
        Reuse per-strand ensembles (monomer, homodimer) across pairs and calls. ``False`` is the
        naive computation, every ensemble of every pair recomputed (same numbers, slower; kept
        for benchmarks and checks).
    cache_size : int
        Most strands kept in the cache (oldest dropped first).
    energy_store : primo.thermo.store.EnergyStore, optional
        Free energies kept on disk across runs (:mod:`primo.thermo.store`): looked up before the
        backend is called, and every value computed is added. The same numbers, bit for bit, as
        without it. Not part of the physics (not in :meth:`to_dict`); :meth:`at_temperature` and
        :meth:`derive` pass it on.
    """

    def __init__(self, backend: str = "vienna", temperature: float = constants.TEMPERATURE_C,
                 target_conc: float = constants.STRAND_CONC_M,
                 query_conc: float = constants.STRAND_CONC_M, primer: str = constants.RP,
                 toehold: int = constants.TOEHOLD, na_molar: float | None = None,
                 feature_length: int | None = constants.FEATURE_LENGTH,
                 duplex_init=SANTALUCIA_DUPLEX_INIT, dangles: int = 2, gt_pairs: bool = True,
                 cache_strands: bool = True, cache_size: int = 200_000,
                 loop_enthalpies: str = "clipped", stacks: str = "vienna", *,
                 perturb=None, sodium: float | None = None, energy_store=None):
        if sodium is not None:   # the earlier name, kept one release
            import warnings

            warnings.warn("Simulator(sodium=) is deprecated and goes in the next release; use "
                          "na_molar=", DeprecationWarning, stacklevel=2)
            if na_molar is not None and float(na_molar) != float(sodium):
                raise UsageError(f"na_molar {na_molar} and sodium {sodium} disagree",
                                 option="na_molar", hint="give na_molar only")
            na_molar = sodium
        self.backend = _check_backend(backend)
        self.temperature = float(temperature)
        self.target_conc = float(target_conc)
        self.query_conc = float(query_conc)
        try:
            self.primer = validate_sequence(primer, what="primer") if primer else ""
        except DataError as e:
            raise UsageError(e.raw_message, hint=e.hint) from None
        self.toehold = int(toehold)
        self.na_molar = constants.NA_MOLAR if na_molar is None else float(na_molar)
        self.feature_length = None if feature_length in (None, 0) else int(feature_length)
        self.duplex_init = None if duplex_init is None else tuple(float(x) for x in duplex_init)
        self.dangles = int(dangles)
        self.gt_pairs = bool(gt_pairs)
        self.loop_enthalpies = str(loop_enthalpies)
        self.stacks = str(stacks)
        from .vienna import check_perturb

        try:
            self.perturb = check_perturb(perturb)
        except ValueError as e:
            raise UsageError(str(e), option="perturb",
                             hint="give sigma in kcal/mol (0-5) and a seed") from None
        self.cache_strands = bool(cache_strands)
        self.cache_size = int(cache_size)
        if not (-50.0 <= self.temperature <= 150.0) or not math.isfinite(self.temperature):
            raise UsageError(f"temperature {temperature} °C is out of range",
                             hint="give degrees Celsius between -50 and 150")
        for what, c in (("target", self.target_conc), ("query", self.query_conc)):
            if not (0 < c <= 1.0 and math.isfinite(c)):   # 1 M of strands: far beyond any lab's
                raise UsageError(f"{what} concentration must be a positive number of mol/L "
                                 f"(at most 1), got {c}", hint="e.g. 1e-9 for 1 nM",
                                 option=f"{what}_conc")
        if not 0 <= self.toehold <= len(self.primer):
            raise UsageError(f"toehold {toehold} must be between 0 and the primer length "
                             f"{len(self.primer)}")
        if not (0.0 < self.na_molar <= 5.0):
            raise UsageError(f"na_molar {na_molar} M is out of range", option="na_molar",
                             hint="give mol/L above 0 and at most 5, e.g. 1.0")
        if self.feature_length is not None and self.feature_length < 1:
            raise UsageError(f"feature length must be positive, got {feature_length}")
        if self.backend == "nupack" and (self.dangles != 2 or not self.gt_pairs):
            raise UsageError("dangles and gt_pairs apply to the vienna backend only")
        from .vienna import LOOP_MODES

        if self.loop_enthalpies not in LOOP_MODES:
            raise UsageError(f"unknown loop enthalpy treatment {loop_enthalpies!r}",
                             hint=f"choose one of {', '.join(LOOP_MODES)}")
        from .vienna import STACK_MODES

        if self.stacks not in STACK_MODES:
            raise UsageError(f"unknown stack parameter set {stacks!r}",
                             hint=f"choose one of {', '.join(STACK_MODES)}", option="stacks")
        if self.backend == "nupack" and self.stacks != "vienna":
            raise UsageError(f"stacks {self.stacks!r} applies to the vienna backend only",
                             hint="NUPACK's dna04 parameters already use SantaLucia & Hicks "
                                  "2004's stacks", option="stacks")
        if self.backend == "nupack" and self.perturb is not None:
            raise UsageError("perturb applies to the vienna backend only", option="perturb")
        self._cache: OrderedDict = OrderedDict()
        self.energy_store = energy_store

    @property
    def sodium(self) -> float:
        """Na+ in mol/L: :attr:`na_molar` by its earlier name (kept one release)."""
        return self.na_molar

    # ------------------------------------------------------------ description

    def to_dict(self) -> dict:
        """Settings and versions, for model cards and output metadata."""
        d = {
            "backend": self.backend,
            "temperature_c": self.temperature,
            "target_conc_m": self.target_conc,
            "query_conc_m": self.query_conc,
            "primer": self.primer,
            "toehold": self.toehold,
            "sodium_m": self.na_molar,
            "feature_length": self.feature_length,
            "max_complex_size": 2,
            "complexes": ["A", "B", "AA", "BB", "AB"],
            "standard_state": "1 M (mol/L)",
            "yield": "[AB] / min(target_conc, query_conc)",
            "target_strand": "target + primer",
            "query_strand": "revcomp(query + primer[:toehold])",
        }
        if self.backend == "vienna":
            from . import vienna as thermo_vienna

            d.update(backend_version=thermo_vienna.version(), parameters="dna_mathews2004",
                     duplex_init_kcal=(list(self.duplex_init) if self.duplex_init is not None
                                       else list(thermo_vienna.VIENNA_DUPLEX_INIT)),
                     duplex_init_source=("SantaLucia & Hicks 2004" if self.duplex_init is not None
                                         else "ViennaRNA dna_mathews2004.par"),
                     dangles=self.dangles, gt_pairs=self.gt_pairs,
                     loop_enthalpies=self.loop_enthalpies, stacks=self.stacks,
                     stacks_source=("SantaLucia & Hicks 2004, Table 1"
                                    if self.stacks == "santalucia"
                                    else "ViennaRNA dna_mathews2004.par"))
            if self.perturb is not None:
                d["perturb"] = {"sigma_kcal": self.perturb[0], "seed": self.perturb[1],
                                "what": "every nearest-neighbor free energy at 37 C plus "
                                        "seeded Gaussian noise (thermo_vienna.PERTURBED_TABLES)"}
        else:
            from . import nupack as thermo_nupack

            d.update(backend_version=thermo_nupack.version(), parameters="dna04",
                     ensemble="stacking")
        return d

    @classmethod
    def from_dict(cls, d: dict, **overrides) -> "Simulator":
        """Rebuild a simulator from :meth:`to_dict` output (unknown keys ignored)."""
        kw = dict(backend=d.get("backend", "vienna"),
                  temperature=d.get("temperature_c", constants.TEMPERATURE_C),
                  target_conc=d.get("target_conc_m", constants.STRAND_CONC_M),
                  query_conc=d.get("query_conc_m", constants.STRAND_CONC_M),
                  primer=d.get("primer", constants.RP), toehold=d.get("toehold", constants.TOEHOLD),
                  na_molar=d.get("sodium_m", 1.0),
                  feature_length=d.get("feature_length", constants.FEATURE_LENGTH))
        if d.get("backend", "vienna") == "vienna":
            kw["dangles"] = d.get("dangles", 2)
            kw["gt_pairs"] = d.get("gt_pairs", True)
            # cards written before the option used the file's loop enthalpies
            kw["loop_enthalpies"] = d.get("loop_enthalpies", "shipped")
            # cards written before the option used the file's stacks
            kw["stacks"] = d.get("stacks", "vienna")
            if d.get("perturb"):
                kw["perturb"] = (d["perturb"]["sigma_kcal"], d["perturb"]["seed"])
            if d.get("duplex_init_source") == "ViennaRNA dna_mathews2004.par":
                kw["duplex_init"] = None
            elif "duplex_init_kcal" in d:
                kw["duplex_init"] = tuple(d["duplex_init_kcal"])
        if "sodium" in overrides:   # the earlier name of na_molar (kept one release)
            kw.pop("na_molar")
        kw.update(overrides)
        return cls(**kw)

    def __repr__(self):
        return (f"Simulator(backend={self.backend!r}, temperature={self.temperature}, "
                f"target_conc={self.target_conc:g}, query_conc={self.query_conc:g}, "
                f"toehold={self.toehold})")

    def _conditions(self) -> dict:
        if self.backend == "vienna":
            return dict(temperature=self.temperature, sodium=self.na_molar, dangles=self.dangles,
                        duplex_init=self.duplex_init, gt_pairs=self.gt_pairs,
                        loops=self.loop_enthalpies, stacks=self.stacks, perturb=self.perturb)
        return dict(temperature=self.temperature, sodium=self.na_molar)

    # ------------------------------------------------------------ input checks

    def check_pairs(self, targets, queries, *, path=None, lines=None,
                    ) -> tuple[list[str], list[str]]:
        """Validate feature sequences; return them upper-cased.

        Raises DataError naming the record (0-based index, or the file ``path`` and ``lines[i]``)
        for non-ACGT characters, a length other than ``feature_length``, or a target and query
        of different lengths.
        """
        if isinstance(targets, str) or isinstance(queries, str):
            raise UsageError("targets and queries must be sequences of strings, not one string")
        targets, queries = list(targets), list(queries)
        if len(targets) != len(queries):
            raise UsageError(f"{len(targets)} targets but {len(queries)} queries",
                             hint="give one query per target")
        out_t, out_q = [], []
        for i, (t, q) in enumerate(zip(targets, queries)):
            where = {"path": path, "line": lines[i]} if lines is not None else \
                {"path": path, "record": i}
            hint = None if self.feature_length is None else \
                f"feature sequences must be {self.feature_length} nt (see `feature_length`)"
            t = _valid(t, self.feature_length, "target_features", hint, where)
            q = _valid(q, self.feature_length, "query_features", hint, where)
            if len(t) != len(q):
                raise DataError(f"target_features has {len(t)} nt but query_features {len(q)} nt",
                                hint="a pair's target and query must have the same length", **where)
            out_t.append(t)
            out_q.append(q)
        return out_t, out_q

    # ------------------------------------------------------------ computation

    def free_energies(self, targets, queries, *, mapper=None, chunksize: int = 8,
                      progress: bool = False, checked: bool = False) -> np.ndarray:
        """``(n, 5)`` free energies (kcal/mol, 1 M standard state): G_A, G_B, G_AA, G_BB, G_AB.

        A is the target strand, B the query strand. Per-strand terms come from the cache when
        ``cache_strands`` is on. ``mapper`` (:mod:`primo.parallel`) defaults to serial.
        """
        if not checked:
            targets, queries = self.check_pairs(targets, queries)
        n = len(targets)
        out = np.empty((n, 5), dtype=np.float64)
        if n == 0:
            return out
        chunksize = max(1, int(chunksize))
        a_strands = [target_strand(t, self.primer) for t in targets]
        b_strands = [query_strand(q, self.primer, self.toehold) for q in queries]
        cond = self._conditions()
        own = mapper is None
        if own:
            from ..parallel import SerialMapper

            mapper = SerialMapper()
        try:
            if not self.cache_strands:
                pairs = list(zip(a_strands, b_strands))
                items = [(self.backend, cond, c) for c in _chunks(pairs, chunksize)]
                bar = _bar(n, "pair", progress)
                rows = []
                for res in mapper.imap(_naive_task, items):
                    rows.append(res)
                    bar.update(len(res))
                bar.close()
                return np.concatenate(rows, axis=0)

            # 1. per-strand terms for strands not cached yet
            todo = [s for s in dict.fromkeys(a_strands + b_strands) if s not in self._cache]
            pairs = list(dict.fromkeys(zip(a_strands, b_strands)))
            stored_strands, pair_terms = {}, {}
            store = self.energy_store
            if store is not None:   # 0. what a run before this one computed
                ns, desc = self._store_namespace()
                stored_strands = store.get(ns, ["s:" + s for s in todo])
                stored_pairs = store.get(ns, [_pair_key(p) for p in pairs])
                todo = [s for s in todo if "s:" + s not in stored_strands]
                pair_terms = {p: g[0] for p in pairs
                              if (g := stored_pairs.get(_pair_key(p))) is not None}
                pairs = [p for p in pairs if p not in pair_terms]
            strand_chunk = max(1, chunksize // 2)  # a strand costs ~1.4 pairs (monomer + homodimer)
            bar = _bar(len(todo) + len(pairs), "complex", progress)
            s_items = [(self.backend, cond, c) for c in _chunks(todo, strand_chunk)]
            p_items = [(self.backend, cond, c) for c in _chunks(pairs, chunksize)]
            strand_terms: dict = {}
            for chunk, res in zip(_chunks(todo, strand_chunk), mapper.imap(_strand_task, s_items)):
                for s, g in zip(chunk, res):
                    strand_terms[s] = (float(g[0]), float(g[1]))
                bar.update(len(chunk))
            for chunk, res in zip(_chunks(pairs, chunksize), mapper.imap(_pair_task, p_items)):
                for p, g in zip(chunk, res):
                    pair_terms[p] = float(g)
                bar.update(len(chunk))
            bar.close()
            if store is not None:
                store.put(ns, {**{"s:" + s: g for s, g in strand_terms.items()},
                               **{_pair_key(p): (pair_terms[p], math.nan) for p in pairs}},
                          description=desc)
                for k, g in stored_strands.items():
                    strand_terms[k[2:]] = g
            for s in dict.fromkeys(a_strands + b_strands):
                if s not in strand_terms:
                    strand_terms[s] = self._cache[s]
                    self._cache.move_to_end(s)
            for s, g in strand_terms.items():
                self._cache[s] = g
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            for i, (a, b) in enumerate(zip(a_strands, b_strands)):
                ga, gb = strand_terms[a], strand_terms[b]
                out[i] = (ga[0], gb[0], ga[1], gb[1], pair_terms[(a, b)])
            return out
        finally:
            if own:
                mapper.close()

    def equilibrium(self, targets, queries, *, mapper=None, chunksize: int = 8,
                    progress: bool = False, checked: bool = False) -> Equilibrium:
        """Equilibrium concentrations (mol/L) of A, B, AA, BB, AB for each pair."""
        g = self.free_energies(targets, queries, mapper=mapper, chunksize=chunksize,
                               progress=progress, checked=checked)
        return self.solve(g)

    def solve(self, g: np.ndarray) -> Equilibrium:
        """Equilibrium from an ``(n, 5)`` free-energy array (see :meth:`free_energies`)."""
        g = np.asarray(g, dtype=np.float64).reshape(-1, 5)
        lab, laa, lbb = log_constants(g[:, 0], g[:, 1], g[:, 2], g[:, 3], g[:, 4], self.temperature)
        return solve_equilibrium(lab, laa, lbb, self.target_conc, self.query_conc)

    def yields(self, targets, queries, *, mapper=None, chunksize: int = 8,
               progress: bool = False, checked: bool = False) -> np.ndarray:
        """Duplex yields ``[AB] / min(target_conc, query_conc)`` of each (target, query) pair.

        Parameters
        ----------
        targets, queries : sequence of str
            Feature sequences (A/C/G/T, ``feature_length`` nt), both in the same sense.
        mapper : primo.parallel.Mapper, optional
            Where the free energies are computed (default: in this process).
        chunksize : int
            Pairs per task (strands per task: half of it).
        progress : bool
            Show a progress bar (on a terminal).
        checked : bool
            The sequences were already validated with :meth:`check_pairs` (skip the check).

        Returns
        -------
        numpy.ndarray
            float64 yields in [0, 1], one per pair.
        """
        eq = self.equilibrium(targets, queries, mapper=mapper, chunksize=chunksize,
                              progress=progress, checked=checked)
        return np.clip(eq.yield_, 0.0, 1.0)

    def cross_yields(self, targets, queries, *, mapper=None, chunksize: int = 8,
                     progress: bool = False) -> np.ndarray:
        """``(len(targets), len(queries))`` yields of every target with every query."""
        targets, queries = list(targets), list(queries)
        tt = [t for t in targets for _ in queries]
        qq = [q for _ in targets for q in queries]
        y = self.yields(tt, qq, mapper=mapper, chunksize=chunksize, progress=progress)
        return y.reshape(len(targets), len(queries))

    def at_temperature(self, temperature: float) -> "Simulator":
        """The same simulator at another temperature (°C), kept so that its strand cache lasts."""
        temperature = float(temperature)
        if abs(temperature - self.temperature) < 1e-12:
            return self
        others = self.__dict__.setdefault("_others", {})
        sim = others.get(temperature)
        if sim is None:
            sim = self.derive(temperature=temperature)
            others[temperature] = sim
        return sim

    def derive(self, **overrides) -> "Simulator":
        """A new simulator with these settings changed (:meth:`from_dict` names), keeping this
        one's cache settings and :attr:`energy_store`."""
        kw = dict(cache_strands=self.cache_strands, cache_size=self.cache_size,
                  energy_store=self.energy_store)
        kw.update(overrides)
        return Simulator.from_dict(self.to_dict(), **kw)

    def _store_namespace(self) -> tuple[str, dict]:
        """The :class:`~primo.thermo.store.EnergyStore` namespace of this simulator's physics:
        the backend, its version, the conditions its functions receive and their source code."""
        ns = self.__dict__.get("_store_ns")
        if ns is None:
            import hashlib
            from pathlib import Path

            from .equilibrium import __file__ as equilibrium_file
            from .store import FORMAT, EnergyStore

            m = _energies_module(self.backend)
            code = hashlib.sha256()
            for f in (m.__file__, equilibrium_file):
                code.update(Path(f).read_bytes())
            desc = {"store_format": FORMAT, "backend": self.backend,
                    "backend_version": m.version(), "conditions": self._conditions(),
                    "code_sha256": code.hexdigest()}
            ns = (EnergyStore.namespace(desc), desc)
            self._store_ns = ns
        return ns

    def binding_energies(self, targets, queries, *, mapper=None, chunksize: int = 8,
                         progress: bool = False, checked: bool = False) -> np.ndarray:
        """Binding free energy ``dG = G_AB - G_A - G_B`` (kcal/mol, 1 M) of each pair.

        The probe-target duplex's free energy of formation at the simulator's temperature, so
        that ``K = exp(-dG / RT)`` in L/mol; ``inf`` where no duplex can form. Unlike the yield
        it keeps ordering pairs that all bind at 1 nM (see :mod:`primo.thermo.ramp`).
        """
        from .ramp import binding_energies

        g = self.free_energies(targets, queries, mapper=mapper, chunksize=chunksize,
                               progress=progress, checked=checked)
        return binding_energies(g)[0]

    def clear_cache(self) -> None:
        self._cache.clear()
        for sim in self.__dict__.get("_others", {}).values():
            sim.clear_cache()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # the cache stays with its process
        state.pop("_others", None)
        return state


def get_simulator(name_or_auto: str = "vienna", **kwargs) -> Simulator:
    """A :class:`Simulator` for a backend name (``vienna``, ``nupack`` or ``auto``)."""
    return Simulator(backend=name_or_auto, **kwargs)


def simulate_csv(pairs_path, out_path, simulator: Simulator | None = None, *, mapper=None,
                 chunk_rows: int = 512, chunksize: int = 8, progress: bool = False,
                 energies: bool = False) -> dict:
    """Yields of the (target, query) pairs of a CSV file, written as CSV with a JSON sidecar.

    Input (plain or gzip, detected by content): a header with at least ``target_features`` and
    ``query_features`` (feature sequences, same sense), one pair per row; other columns are kept.
    Output ``out_path`` (gzip if it ends in ``.gz``): the input columns plus ``duplex_yield`` (full
    float precision), in input order, and with ``energies`` also ``binding_dG`` (the pair's binding
    free energy ``G_AB - G_A - G_B`` in kcal/mol, 1 M standard state, at the simulator's
    temperature; ``inf`` when no duplex forms); ``out_path + ".json"``: provenance, the simulator settings
    (:meth:`Simulator.to_dict`) and counts. Both are written atomically. Rows are read, validated
    and simulated ``chunk_rows`` at a time, so memory does not grow with the file.

    Returns
    -------
    dict
        The sidecar's content.
    """
    import csv
    import time
    from pathlib import Path

    from ..io import atomic_file, open_output, provenance, read_csv_rows, write_json

    sim = simulator or Simulator()
    pairs_path, out_path = Path(pairs_path), Path(out_path)
    required = ["target_features", "query_features"]
    rows_iter = read_csv_rows(pairs_path, required, what="pairs file")
    t0 = time.time()
    n = 0
    stats = {"min": math.inf, "max": -math.inf, "sum": 0.0, "above_half": 0}
    bar = _bar(None, "pair", progress)
    header = None
    with atomic_file(out_path, suffix=".gz" if out_path.name.endswith(".gz") else "") as tmp:
        with open_output(tmp) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            chunk: list = []

            def flush():
                nonlocal n
                lines = [ln for ln, _ in chunk]
                t, q = sim.check_pairs([r["target_features"] for _, r in chunk],
                                       [r["query_features"] for _, r in chunk],
                                       path=pairs_path, lines=lines)
                g = sim.free_energies(t, q, mapper=mapper, chunksize=chunksize, checked=True)
                y = np.clip(sim.solve(g).yield_, 0.0, 1.0)
                dg = g[:, 4] - g[:, 0] - g[:, 1]
                for (_, row), yi, di in zip(chunk, y, dg):
                    row["duplex_yield"] = repr(float(yi))
                    if energies:
                        row["binding_dG"] = repr(float(di))
                    writer.writerow([row[h] for h in header])
                stats["min"] = min(stats["min"], float(y.min()))
                stats["max"] = max(stats["max"], float(y.max()))
                stats["sum"] += float(y.sum())
                stats["above_half"] += int((y > 0.5).sum())
                n += len(chunk)
                bar.update(len(chunk))
                chunk.clear()

            for line, row in rows_iter:
                if header is None:
                    header = list(row) + ([] if "duplex_yield" in row else ["duplex_yield"])
                    if energies and "binding_dG" not in header:
                        header.append("binding_dG")
                    writer.writerow(header)
                chunk.append((line, row))
                if len(chunk) >= chunk_rows:
                    flush()
            if chunk:
                flush()
            if header is None:
                raise DataError("pairs file has a header but no rows", path=pairs_path,
                                hint="add one (target_features, query_features) pair per line")
    bar.close()
    summary = provenance(
        input=str(pairs_path), output=str(out_path), pairs=n,
        mean_yield=stats["sum"] / n, min_yield=stats["min"], max_yield=stats["max"],
        pairs_above_half=stats["above_half"], seconds=round(time.time() - t0, 3),
        columns={"duplex_yield": "[AB] / min(target_conc, query_conc) at equilibrium",
                 **({"binding_dG": "G_AB - G_A - G_B, kcal/mol, 1 M standard state"}
                    if energies else {})},
        mapper=(mapper.describe() if mapper is not None else "serial"),
        simulator=sim.to_dict(),
    )
    write_json(str(out_path) + ".json", summary)
    return summary
