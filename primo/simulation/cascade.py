"""Which documents get exact energies, and the capture of one query's probe from the whole pool.

The simulator costs ~17 ms per pair and temperature; a 1.6 M-document pool cannot be simulated
per query. The cascade (shared by every capture model):

1. the trained predictor scores **every** document for the query (microseconds each);
2. the ``refine`` documents it scores highest, the query's ``k`` nearest documents (so the recall
   side never rests on the predictor) and a random ``sample`` of the rest, drawn within ``strata``
   groups of predicted yield in proportion to their size, are **simulated**
   (:func:`select_documents`);
3. every other document is **imputed**: it takes the simulated energies (or yield) of a sampled
   document of its stratum drawn at random (hot-deck imputation). Which unrelated documents bind
   is then right in number, not in identity; the k nearest are exact.

For the competitive capture models (:func:`capture_query`) the imputed documents that share a
donor are pooled into one species whose concentration is the sum of theirs. A target's bound
amount is linear in its concentration apart from its homodimer, so pooling is exact to a relative
``r / 4`` with ``r = 8 K_AA c``; documents with ``r >= 1e-3`` at any node stay separate (an error
below 2.5e-4 of a document's captured amount, far below the counting noise of its reads; at
1e-5, 225,000 of 1.6 M synthetic documents stayed separate and the anneal took 30 s longer). The
equilibrium and the anneal then run over a few thousand species instead of N. Decoys (random feature regions added to the pool) are
represented the same way: ``decoy_sample`` random sequences are simulated and each stands for
``decoys / decoy_sample`` strands. Every captured amount is reported by where its energies came
from (simulated, imputed, decoy), so a user can see how much of the probe rests on imputation.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .capture import DEFAULT_CAPTURE, CaptureResult, Protocol, anneal_capture, equilibrium_capture
from .kinetic import hold_temperatures, kinetic_capture
from ..thermo.ramp import LOCKED_LOSS, Thermo, node_temperatures, pair_thermodynamics

__all__ = ["select_documents", "Selection", "donors", "query_energies", "QueryEnergies",
           "energy_settings", "NEGLIGIBLE_SHARE", "ABUNDANCE_SAFETY", "KINETIC_COARSE_EVERY",
           "capture_from_energies", "capture_query", "QueryCapture"]


@dataclasses.dataclass
class Selection:
    """The cascade's choice for one query (positions into the database)."""

    n: int                       # documents in the database
    refined: np.ndarray          # top predictions, best first
    simulated: np.ndarray        # every simulated position (refined, must, sampled), sorted
    groups: list                 # strata of the remaining documents (position arrays)
    picks: list                  # the sampled positions of each stratum


def select_documents(pred, *, refine: int = 1000, must=None, sample: int = 0, rng=None,
                     strata: int = 10) -> Selection:
    """Positions to simulate for one query (see the module docstring)."""
    pred = np.asarray(pred)
    n = len(pred)
    k = n if refine < 0 else min(int(refine), n)
    refined = np.lexsort((np.arange(n), -pred))[:k] if k > 0 else np.zeros(0, np.int64)
    chosen = np.zeros(n, dtype=bool)
    chosen[refined] = True
    if must is not None:
        chosen[np.asarray(must, dtype=np.int64)] = True
    rest = np.flatnonzero(~chosen)
    picks, groups = [], []
    if sample > 0 and len(rest):
        rng = np.random.default_rng(rng)
        if sample >= len(rest):
            picks = [rest]
            groups = [rest]
        else:
            order = rest[np.lexsort((rest, pred[rest]))]
            groups = np.array_split(order, min(strata, sample))
            quota = np.maximum(1, np.floor(sample * np.array([len(g) for g in groups])
                                           / len(rest))).astype(int)
            picks = [np.sort(rng.choice(g, min(q, len(g)), replace=False))
                     for g, q in zip(groups, quota)]
    todo = np.flatnonzero(chosen)
    if len(picks):
        todo = np.union1d(todo, np.concatenate(picks))
    return Selection(n, refined, todo, list(groups), list(picks))


def donors(selection: Selection, n: int, rng) -> np.ndarray:
    """For each document, the position whose simulated values it uses (itself if simulated).

    ``-1`` for documents neither simulated nor in a sampled stratum (``sample=0``).
    """
    rng = np.random.default_rng(rng)
    out = np.full(n, -1, dtype=np.int64)
    out[selection.simulated] = selection.simulated
    for g, p in zip(selection.groups, selection.picks):
        left = g[out[g] < 0]
        if len(left) and len(p):
            out[left] = p[rng.integers(0, len(p), len(left))]
    return out


@dataclasses.dataclass
class QueryCapture:
    """One query's capture from the pool."""

    fraction: np.ndarray         # captured fraction of every document
    simulated_yield: np.ndarray  # two-strand yield at 1 nM each (NaN where not simulated)
    imputed_yield: np.ndarray    # the donor's, for imputed documents (NaN elsewhere)
    dg_final: np.ndarray         # binding dG at the final temperature (NaN where unknown)
    source: np.ndarray           # uint8: 0 simulated, 1 imputed, 2 predictor only
    result: CaptureResult
    stats: dict


def _random_features(n, length, rng):
    return ["".join(s) for s in np.asarray(list("ACGT"))[rng.integers(0, 4, (n, length))]]


@dataclasses.dataclass
class QueryEnergies:
    """Everything a capture of one query needs that costs simulator time (computed once).

    ``thermo`` has one row per simulated document (in ``selection.simulated`` order) followed by
    one per simulated decoy sequence; ``free_energies`` the simulator's ``(n, 5)`` values of the
    simulated documents at the final temperature (for two-strand yields); ``evaluated`` which of
    ``thermo``'s energies the simulator computed (the others are interpolated or kept).
    """

    selection: Selection
    thermo: Thermo
    free_energies: np.ndarray
    n_decoy_rows: int
    donor: np.ndarray
    evaluated: np.ndarray | None = None   # (rows, nodes): where the simulator was run


def query_energies(db_sequences, query_seq: str, selection: Selection, simulator, *,
                   nodes=None, lock_log_k=None, negligible_log_k=None,
                   negligible_log_k_aa=None, budget=None, target_conc=None, locked_log_k=None,
                   homodimer_conc=None, coarse_every: int = 4, decoys: int = 0,
                   decoy_sample: int = 1000, feature_length: int = 80, rng=None, mapper=None,
                   progress: bool = False) -> QueryEnergies:
    """Binding energies of the simulated documents (and of a decoy sample) with one query.

    ``nodes``: temperatures (°C, the simulator's first) for the anneal; ``decoys``: how many decoy
    strands the captures will add (``min(decoys, decoy_sample)`` random sequences are simulated;
    a capture may then use any number of decoys, each sampled sequence standing for its share).
    ``lock_log_k`` / ``negligible_log_k`` / ``budget``...: which pairs are evaluated at which
    nodes (:func:`primo.thermo.ramp.pair_thermodynamics`; :func:`energy_settings` gives them for
    a capture model). With ``budget`` (the kinetic model), ``target_conc`` is the pool's
    concentration (mol/L): each simulated document then stands for its share of it (itself and
    the documents imputed from it, :func:`donors`), each decoy sequence for its share of
    ``decoys``, and a document's own strands for ``ABUNDANCE_SAFETY`` times the mean document's
    (``homodimer_conc``).
    """
    rng = np.random.default_rng(rng)
    sim_pos = selection.simulated
    seqs = list(db_sequences(sim_pos)) if len(sim_pos) else []
    dec_seqs = _random_features(min(int(decoys), int(decoy_sample)), feature_length, rng) \
        if decoys else []
    donor = donors(selection, selection.n, rng)   # (the simulator draws nothing from rng)
    extra = {}
    if budget is not None:
        if target_conc is not None and np.ndim(target_conc) == 0:
            per_doc = float(target_conc) / max(selection.n, 1)
            row_of = np.full(selection.n, -1, dtype=np.int64)
            row_of[sim_pos] = np.arange(len(sim_pos))
            used = donor[donor >= 0]
            docs = np.bincount(row_of[used], minlength=len(sim_pos)) * per_doc
            dec = np.full(len(dec_seqs), int(decoys) / max(len(dec_seqs), 1) * per_doc)
            target_conc = np.concatenate([docs, dec])
            if homodimer_conc is None:
                homodimer_conc = ABUNDANCE_SAFETY * per_doc
        extra = dict(budget=budget, target_conc=target_conc, locked_log_k=locked_log_k,
                     homodimer_conc=homodimer_conc, coarse_every=coarse_every)
    th, g, evaluated = pair_thermodynamics(
        simulator, seqs + dec_seqs, query_seq, nodes=nodes, lock_log_k=lock_log_k,
        negligible_log_k=negligible_log_k, negligible_log_k_aa=negligible_log_k_aa, **extra,
        mapper=mapper, progress=progress, return_free_energies=True, return_evaluated=True)
    return QueryEnergies(selection, th, g[:len(sim_pos)], len(dec_seqs), donor, evaluated)


#: the kinetic model's energies (:func:`primo.thermo.ramp.pair_thermodynamics`, ``budget``): the
#: pairs whose energies are kept above a node (their tails, each an upper bound on its ``K``
#: there) may together hold at most this share of the free probe at any temperature, each pair
#: weighted by the share of the pool it stands for. 5 %, by measurement against every pair at
#: every node (primo.thermo.ramp, "The kinetic model's nodes"): captured amounts moved by at
#: most 4.1e-4 of the probe (1 %: 3.5e-4); at 60,000 documents the weaker pairs cost 787
#: evaluations above 21 °C instead of 1,500 (4,516 in all instead of 5,278)
NEGLIGIBLE_SHARE = 0.05
#: kept for callers of the previous scheme (``negligible_log_k_aa``); the kinetic model no longer
#: uses it
NEGLIGIBLE_LOG_K_AA = math.log(1e6)
#: a document's strands for its homodimer: this many times the mean document's (the pool's
#: abundance spread, log-normal sigma 0.47, puts 1 document in 60,000 at ~7x the mean)
ABUNDANCE_SAFETY = 10.0
#: every KINETIC_COARSE_EVERY-th kinetic node is evaluated for every pair that still matters
#: (with 13 kinetic nodes, the anneal's 4)
KINETIC_COARSE_EVERY = 4


def energy_settings(protocol: Protocol, capture: str) -> dict:
    """The keyword arguments of :func:`query_energies` that say which energies a model needs."""
    if capture == "anneal":
        return {"nodes": node_temperatures(protocol.anneal_to, protocol.anneal_from,
                                           protocol.energy_nodes),
                "lock_log_k": protocol.lock_log_k, "negligible_log_k": None}
    if capture == "kinetic":
        # a ramp program's shortest hold decides which pairs are fast, its longest which are
        # locked (the safe side of both; a uniform ramp has one of each)
        fewest, most = protocol.minutes_range
        return {"nodes": node_temperatures(protocol.anneal_to, protocol.anneal_from,
                                           protocol.kinetic_nodes),
                "lock_log_k": math.log(protocol.k_on * fewest * 60.0 * protocol.step_c),
                "budget": NEGLIGIBLE_SHARE, "target_conc": protocol.pool_m,
                "locked_log_k": math.log(protocol.k_on * most * 60.0 / LOCKED_LOSS),
                "coarse_every": KINETIC_COARSE_EVERY}
    return {"nodes": node_temperatures(protocol.anneal_to, protocol.anneal_from, 1),
            "lock_log_k": None, "negligible_log_k": None}


def capture_query(db_sequences, query_seq: str, selection: Selection, concentrations,
                  protocol: Protocol, simulator, *, capture: str = DEFAULT_CAPTURE, rng=None,
                  mapper=None, decoy_sample: int = 1000, feature_length: int = 80,
                  progress: bool = False) -> QueryCapture:
    """Competitive capture (``equilibrium``, ``anneal`` or ``kinetic``) of one probe from the pool.

    ``db_sequences(positions) -> list[str]`` gives feature regions; ``concentrations`` each
    document's exposed strands (mol/L); ``simulator`` is at the final temperature
    (``protocol.anneal_to``). :func:`query_energies` then :func:`capture_from_energies`.
    """
    en = query_energies(db_sequences, query_seq, selection, simulator,
                        **energy_settings(protocol, capture),
                        decoys=protocol.decoys, decoy_sample=decoy_sample,
                        feature_length=feature_length, rng=rng, mapper=mapper, progress=progress)
    return capture_from_energies(en, concentrations, protocol, simulator, capture=capture)


def capture_from_energies(en: QueryEnergies, concentrations, protocol: Protocol, simulator=None, *,
                          capture: str = DEFAULT_CAPTURE) -> QueryCapture:
    """The capture of one query under a protocol, from energies computed once.

    ``capture="independent"`` gives each document its two-strand yield at the simulator's
    concentrations (1 nM each) from the same energies.
    """
    conc = np.asarray(concentrations, dtype=np.float64)
    n = conc.size
    sel, th, donor = en.selection, en.thermo, en.donor
    sim_pos = sel.simulated
    n_sim = len(sim_pos)
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[sim_pos] = np.arange(n_sim)
    imputed = (donor >= 0) & (row_of < 0)
    imp_pos = np.flatnonzero(imputed)
    imp_rows = row_of[donor[imp_pos]]
    y = np.full(n, np.nan)
    y_imp = np.full(n, np.nan)
    if n_sim and simulator is not None:
        y_rows = np.clip(simulator.solve(en.free_energies).yield_, 0.0, 1.0)
        y[sim_pos] = y_rows
        y_imp[imp_pos] = y_rows[imp_rows]
    dg = np.full(n, np.nan)
    dg_rows = th.dg_ab[:, 0]
    dg[sim_pos] = dg_rows[:n_sim]
    dg[imp_pos] = dg_rows[imp_rows]
    source = np.full(n, 2, dtype=np.uint8)
    source[imp_pos] = 1
    source[sim_pos] = 0
    if capture == "independent":
        fraction = np.where(np.isnan(y), np.where(np.isnan(y_imp), 0.0, y_imp), y)
        stats = {"capture_model": capture}
        return QueryCapture(fraction, y, y_imp, dg, source, None, stats)
    # species: each simulated document; pooled imputed documents per donor; pooled decoys
    t_low = float(th.nodes.min())
    lka_max = np.max(-th.dg_aa / (0.0019872 * (t_low + 273.15)), axis=1) if len(th) else \
        np.zeros(0)
    with np.errstate(over="ignore"):
        negligible = 8 * np.exp(np.minimum(lka_max, 700)) * conc.max() < 1e-3
    pool_ok = negligible[imp_rows] if len(imp_rows) else np.zeros(0, bool)
    pooled_rows, inverse = np.unique(imp_rows[pool_ok], return_inverse=True)
    pooled_conc = np.bincount(inverse, weights=conc[imp_pos[pool_ok]],
                              minlength=len(pooled_rows))
    lone_pos = imp_pos[~pool_ok]
    species_rows = np.concatenate([np.arange(n_sim), pooled_rows, row_of[donor[lone_pos]]])
    species_conc = np.concatenate([conc[sim_pos], pooled_conc, conc[lone_pos]])
    n_dec = int(protocol.decoys)
    n_dec_species = en.n_decoy_rows if n_dec else 0
    if n_dec and not n_dec_species:
        raise ValueError("the energies were computed without decoys")
    if n_dec_species:
        species_rows = np.concatenate([species_rows, n_sim + np.arange(n_dec_species)])
        species_conc = np.concatenate([species_conc, np.full(n_dec_species,
                                                             float(conc.mean()) * n_dec
                                                             / n_dec_species)])
    sth = th.take(species_rows)
    if capture == "anneal":
        res = anneal_capture(sth, species_conc, protocol)
    elif capture == "equilibrium":
        res = equilibrium_capture(sth, species_conc, protocol)
    elif capture == "kinetic":
        res = kinetic_capture(sth, species_conc, protocol)
    else:
        raise ValueError(f"unknown capture model {capture!r}")
    frac_species = res.fraction
    fraction = np.zeros(n)
    a, b = n_sim, n_sim + len(pooled_rows)
    fraction[sim_pos] = frac_species[:a]
    if len(imp_pos):
        fraction[imp_pos[pool_ok]] = frac_species[a:b][inverse]
        fraction[lone_pos] = frac_species[b:b + len(lone_pos)]
    bound = res.bound
    probe = protocol.probe_m
    end = len(bound) - n_dec_species
    stats = {
        "capture_model": capture,
        "probe_bound_simulated": float(bound[:a].sum() / probe),
        "probe_bound_imputed": float(bound[a:end].sum() / probe),
        "probe_bound_decoys": float(bound[end:].sum() / probe),
        "probe_free": float(res.free_probe / probe),
        "probe_homodimer": float(2 * res.probe_homodimer / probe),
        "documents_captured_half": int((fraction >= 0.5).sum()),
        "simulated_captured_half": int((fraction[sim_pos] >= 0.5).sum()),
        "imputed_documents": int(len(imp_pos)),
        "species": int(len(species_conc)),
        "decoy_strands": n_dec,
        "decoys_simulated": n_dec_species,
        "energy_nodes_c": [float(t) for t in th.nodes],
    }
    if capture == "kinetic":
        stats["washes"] = int(protocol.washes)
        stats["wash_minutes"] = float(protocol.wash_minutes)
        stats["ramp_shape"] = protocol.ramp_shape
        stats["ramp_program"] = protocol.ramp_program
        stats["ramp_hours"] = float(hold_temperatures(protocol)[1].sum() / 3600.0)
        stats["solver_steps"] = int(res.kinetic_stats["steps"])
        stats["solver_rejected_steps"] = int(res.kinetic_stats["rejected"])
    if n_dec_species:
        stats["decoys_captured_fraction"] = float(bound[end:].sum() / species_conc[end:].sum())
    return QueryCapture(fraction, y, y_imp, dg, source, res, stats)
