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
donor are pooled into one species whose concentration is the sum of theirs (exact when, as for
the fM–pM strands of a pool, the target's homodimer is negligible: ``8 K_AA c < 1e-9`` at every
node; documents where it is not stay separate), so the equilibrium and the anneal run over a few
thousand species instead of N. Decoys (random feature regions added to the pool) are represented
the same way: ``decoy_sample`` random sequences are simulated and each stands for
``decoys / decoy_sample`` strands. Every captured amount is reported by where its energies came
from (simulated, imputed, decoy), so a user can see how much of the probe rests on imputation.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .capture import CaptureResult, Protocol, anneal_capture, equilibrium_capture
from .thermo import Thermo, node_temperatures, pair_thermodynamics

__all__ = ["select_documents", "Selection", "capture_query", "QueryCapture"]


@dataclasses.dataclass
class Selection:
    """The cascade's choice for one query (positions into the database)."""

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
    return Selection(refined, todo, list(groups), list(picks))


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


def capture_query(db_sequences, query_seq: str, selection: Selection, concentrations,
                  protocol: Protocol, simulator, *, capture: str = "anneal", rng=None,
                  mapper=None, decoy_sample: int = 1000, feature_length: int = 80,
                  progress: bool = False) -> QueryCapture:
    """Competitive capture (``equilibrium`` or ``anneal``) of one probe from the whole pool.

    ``db_sequences(positions) -> list[str]`` gives feature regions; ``concentrations`` each
    document's exposed strands (mol/L); ``simulator`` is at the final temperature
    (``protocol.anneal_to``).
    """
    rng = np.random.default_rng(rng)
    conc = np.asarray(concentrations, dtype=np.float64)
    n = conc.size
    sim_pos = selection.simulated
    nodes = node_temperatures(protocol.anneal_to, protocol.anneal_from,
                              protocol.energy_nodes if capture == "anneal" else 1)
    lock = protocol.lock_log_k if capture == "anneal" else None
    seqs = db_sequences(sim_pos) if len(sim_pos) else []
    n_dec = int(protocol.decoys)
    dec_seqs = []
    if n_dec:
        dec_seqs = _random_features(min(n_dec, int(decoy_sample)), feature_length, rng)
    th, g = pair_thermodynamics(simulator, list(seqs) + dec_seqs, query_seq, nodes=nodes,
                                lock_log_k=lock, mapper=mapper, progress=progress,
                                return_free_energies=True)
    n_sim = len(sim_pos)
    # species: each simulated document; pooled imputed documents per donor; pooled decoys
    donor = donors(selection, n, rng)
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[sim_pos] = np.arange(n_sim)
    imputed = (donor >= 0) & (row_of < 0)
    imp_rows = row_of[donor[imputed]]
    # homodimer check: pool only where it cannot matter
    lka_max = np.max(-th.dg_aa / (0.0019872 * (nodes.min() + 273.15)), axis=1) \
        if len(th) else np.zeros(0)
    with np.errstate(over="ignore"):
        negligible = 8 * np.exp(np.minimum(lka_max, 700)) * conc.max() < 1e-9
    imp_pos = np.flatnonzero(imputed)
    pool_ok = negligible[imp_rows] if len(imp_rows) else np.zeros(0, bool)
    pooled_rows, inverse = np.unique(imp_rows[pool_ok], return_inverse=True)
    pooled_conc = np.bincount(inverse, weights=conc[imp_pos[pool_ok]],
                              minlength=len(pooled_rows))
    lone_pos = imp_pos[~pool_ok]
    species_rows = np.concatenate([np.arange(n_sim), pooled_rows, row_of[donor[lone_pos]]])
    species_conc = np.concatenate([conc[sim_pos], pooled_conc, conc[lone_pos]])
    n_dec_species = len(dec_seqs)
    if n_dec_species:
        mean_c = float(conc.mean())
        species_rows = np.concatenate([species_rows, n_sim + np.arange(n_dec_species)])
        species_conc = np.concatenate([species_conc,
                                       np.full(n_dec_species, mean_c * n_dec / n_dec_species)])
    sth = th.take(species_rows)
    res = anneal_capture(sth, species_conc, protocol) if capture == "anneal" else \
        equilibrium_capture(sth, species_conc, protocol)
    frac_species = res.fraction
    fraction = np.zeros(n)
    a, b = n_sim, n_sim + len(pooled_rows)
    fraction[sim_pos] = frac_species[:a]
    if len(imp_pos):
        fraction[imp_pos[pool_ok]] = frac_species[a:b][inverse]
        fraction[lone_pos] = frac_species[b:b + len(lone_pos)]
    dg = np.full(n, np.nan)
    dg_rows = th.dg_ab[:, 0]
    dg[sim_pos] = dg_rows[:n_sim]
    dg[imp_pos] = dg_rows[row_of[donor[imp_pos]]]
    source = np.full(n, 2, dtype=np.uint8)
    source[imp_pos] = 1
    source[sim_pos] = 0
    bound = res.bound
    probe = protocol.probe_m
    stats = {
        "capture_model": capture,
        "probe_bound_simulated": float(bound[:a].sum() / probe),
        "probe_bound_imputed": float(bound[a:len(bound) - n_dec_species].sum() / probe),
        "probe_bound_decoys": float(bound[len(bound) - n_dec_species:].sum() / probe)
        if n_dec_species else 0.0,
        "probe_free": float(res.free_probe / probe),
        "probe_homodimer": float(2 * res.probe_homodimer / probe),
        "documents_captured_half": int((fraction >= 0.5).sum()),
        "simulated_captured_half": int((fraction[sim_pos] >= 0.5).sum()),
        "imputed_documents": int(len(imp_pos)),
        "species": int(len(species_conc)),
        "decoy_strands": n_dec,
        "decoys_simulated": n_dec_species,
        "energy_nodes_c": [float(t) for t in nodes],
    }
    if n_dec_species:
        stats["decoys_captured_fraction"] = float(bound[len(bound) - n_dec_species:].sum()
                                                  / species_conc[-n_dec_species:].sum())
    y = np.full(n, np.nan)
    y_imp = np.full(n, np.nan)
    if n_sim:
        y_rows = np.clip(simulator.solve(g[:n_sim]).yield_, 0.0, 1.0)
        y[sim_pos] = y_rows
        y_imp[imp_pos] = y_rows[row_of[donor[imp_pos]]]
    return QueryCapture(fraction, y, y_imp, dg, source, res, stats)
