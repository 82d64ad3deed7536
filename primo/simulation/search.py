"""The similarity search in silico: one query's probe against every database document.

The database as the lab has it (:class:`DatabaseCodes`, from a pool or encoded by the model), each
document's predicted yield (:func:`predict_all`), the cascade that refines them with the
simulator (:func:`cascade_yields`), and the competitive capture of the protocol
(:func:`capture_one`). :mod:`primo.workflows.experiment` (``primo simulate``) runs it per query
and writes the outputs.

Yields: a cascade
-----------------
The thermodynamic simulator costs ~17 ms per pair (ViennaRNA, one core), so 1.6 M documents would take
7.5 CPU-hours per query. The trained yield predictor costs microseconds per pair, but it is an
approximation fitted to the simulator. primo therefore

1. predicts the yield of **every** document with the predictor (database feature regions discretized,
   as synthesized; the query as its discrete probe);
2. re-computes with the **simulator** the ``refine`` documents with the highest predicted yields
   (default 1,000), and uses the simulated value for them;
3. simulates the query's ``k`` **nearest documents** (by feature distance) as well, so the recall
   side of the curve never rests on the predictor;
4. simulates a **random sample** of the remaining documents (``sample``, 1,000 by default, drawn
   within ten strata of predicted yield) and gives every other remaining document the simulated
   yield of a sampled document of its stratum drawn at random (hot-deck imputation).

Why the top of the ranking: read counts are dominated by documents with high yields (capture is
proportional to yield, plus a small non-specific background), so errors of the predictor matter where
yields are high. Why the sample: the predictor does not see every high yield. Unrelated sequences
sometimes bind through imperfect duplexes that the predictor's local-match features cannot see
(about 3 % of random 80-mer pairs reach 0.5 with ViennaRNA at 21 °C); measured on Fashion-MNIST, a
model whose predictor put none of them above 0.5 left ~4 % of the database binding outside its top
300. Leaving those documents at their predicted yields would draw a recall curve far better than
the experiment would give. With the sample, the number of documents at each read count is right in
expectation (which of the unrelated documents bind is not known without simulating them all; the
k nearest neighbors are simulated exactly, so the recall figures are unbiased). ``yields.csv.gz``
says for every document whether its yield was simulated or imputed, and the summary reports the
sampled binding rate and the estimated number of binders outside the refined set, so a user can
see what the predictor missed. ``sample=0`` keeps the predictor's values for the remaining
documents (the bias above); ``refine=-1`` (or a value >= N) simulates every document (exact,
slow). ``refine=0`` uses the predictor alone for the top of the ranking.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import DataError, UsageError
from .capture import DEFAULT_CAPTURE

__all__ = ["DatabaseCodes", "load_database", "predict_all", "cascade_yields", "protocol_for",
           "capture_one", "simulator_for", "cascade_stats", "protocol_simulator",
           "pool_concentrations", "query_ramp_energies", "capture_from_ramp"]


@dataclasses.dataclass
class DatabaseCodes:
    """The database as the lab has it: ImageIDs, discrete feature regions (uint8 codes), oligos."""

    image_ids: np.ndarray          # str
    codes: np.ndarray              # uint8 N x L (A=0 C=1 G=2 T=3)
    indices: np.ndarray            # int64 document indices (barcodes)
    oligos_fn: object = None       # callable(positions) -> list of full oligo sequences

    def __len__(self):
        return len(self.image_ids)

    def sequences(self, positions) -> list[str]:
        from ..dna import decode_seqs

        return decode_seqs(self.codes[np.asarray(positions)])


def load_database(model, *, features=None, pool=None, chunksize: int = 100_000,
                  progress: bool = True) -> DatabaseCodes:
    """Discrete feature regions of every database document.

    From a pool (``pool``: its feature regions, barcodes and ImageIDs, exactly as ordered) or, without
    one, by encoding the feature store with the model (document index = row order).
    """
    from ..dna import encode_seqs
    from ..oligos.layout import OligoLayout

    layout = OligoLayout.from_dict(model.card.get("layout"))
    if pool is not None:
        from ..oligos.pool import read_pool

        p = read_pool(pool)
        if p.layout.feature_length != model.feature_length:
            raise DataError(f"the pool's feature regions are {p.layout.feature_length} nt but the "
                            f"model writes {model.feature_length} nt", path=pool)
        codes = encode_seqs(p.features, p.layout.feature_length, what="feature region", path=pool)
        return DatabaseCodes(np.asarray(p.image_ids), codes, np.asarray(p.indices, np.int64),
                             lambda pos, _p=p: [_p.oligos(int(i), int(i) + 1)[0] for i in pos])
    if features is None:
        raise UsageError("the database is missing: give its feature store (and optionally its "
                         "pool)", option="features")
    from ..barcodes import BarcodeScheme
    from ..features.store import FeatureStore
    from ..progress import progress as _progress

    with FeatureStore.open(features) as store:
        if store.n == 0:
            raise DataError("the database feature store holds no documents", path=features)
        model.check_features(store.dim, store.metadata, path=features)
        ids = np.asarray(store.ids)
        codes = np.empty((store.n, model.feature_length), dtype=np.uint8)
        at = 0
        with _progress(total=store.n, desc="encoding database", unit="doc",
                       disable=not progress) as bar:
            for _, X in store.iter_chunks(chunksize=min(chunksize, store.default_chunksize())):
                codes[at:at + len(X)] = model.encode_onehot(X).argmax(-1)
                at += len(X)
                bar.update(len(X))
    scheme = BarcodeScheme()
    indices = np.arange(len(ids), dtype=np.int64)

    def oligos(pos, _codes=codes, _layout=layout, _scheme=scheme):
        from ..dna import decode_seqs

        pos = np.asarray(pos)
        return _layout.oligos(list(_scheme.encode(pos)), decode_seqs(_codes[pos]))

    return DatabaseCodes(ids, codes, indices, oligos)


def _onehot(codes):
    return np.eye(4, dtype=np.float32)[codes]


def predict_all(model, db: DatabaseCodes, query_seq: str, *, chunksize: int = 100_000,
                batch_size: int = 8192, progress: bool = True) -> np.ndarray:
    """The predictor's yield for the query's probe with every document (float32)."""
    from ..dna import encode_seqs
    from ..progress import progress as _progress

    n = len(db)
    q_codes = encode_seqs([query_seq], model.feature_length, what="query feature region")
    q1 = _onehot(q_codes)[0]
    pred = np.empty(n, dtype=np.float32)
    try:
        # the same predictor, evaluated as one affine map + element-wise tail for this query
        from ..predictor.fixed_query import FixedQueryPredictor

        fast = FixedQueryPredictor(model.predictor, q1)
    except ValueError:
        fast = None
    with _progress(total=n, desc="predicting yields", unit="doc", disable=not progress) as bar:
        for a in range(0, n, chunksize):
            if fast is not None:
                pred[a:a + chunksize] = fast(db.codes[a:a + chunksize])
            else:
                t = _onehot(db.codes[a:a + chunksize])
                q = np.broadcast_to(q1, t.shape)
                pred[a:a + len(t)] = model.predict_yields(t, q, batch_size=batch_size)
            bar.update(min(chunksize, n - a))
    return pred


def cascade_yields(model, db: DatabaseCodes, query_seq: str, *, refine: int = 1000,
                   simulator=None, mapper=None, chunksize: int = 100_000,
                   batch_size: int = 8192, progress: bool = True, must=None, sample: int = 0,
                   rng=None, strata: int = 10):
    """Yields of one query against every document (see the module docstring).

    The predictor for all; the simulator for the ``refine`` highest predictions, for the positions
    in ``must`` and for ``sample`` documents drawn at random from the rest (within ``strata`` groups
    of predicted yield), whose simulated yields are imputed to the other remaining documents.

    Returns ``(predicted, simulated, refined_positions, imputed)``; ``simulated`` and ``imputed``
    are NaN where not simulated / not imputed.
    """
    n = len(db)
    pred = predict_all(model, db, query_seq, chunksize=chunksize, batch_size=batch_size,
                       progress=progress)
    from ..simulation.cascade import donors, select_documents

    simulated = np.full(n, np.nan)
    imputed = np.full(n, np.nan)
    rng = np.random.default_rng(rng)
    sel = select_documents(pred, refine=refine, must=must, sample=sample, rng=rng, strata=strata)
    todo = sel.simulated
    if len(todo):
        if simulator is None:
            from ..thermo.simulator import Simulator

            simulator = Simulator()
        simulated[todo] = simulator.yields(db.sequences(todo), [query_seq] * len(todo),
                                           mapper=mapper, progress=progress)
    d = donors(sel, n, rng)
    left = (d >= 0) & np.isnan(simulated)
    imputed[left] = simulated[d[left]]
    refined = sel.refined
    return pred, simulated, refined, imputed


def protocol_for(model, config, simulator, abundance):
    """The protocol, the simulator at its final temperature and each document's concentration.

    Without ``config.protocol`` the paper's protocol ends at the hybridization temperature the
    model card names (:func:`primo.model_dir.hybridization_temperature`; the training
    simulator's temperature for cards written before the field).
    """
    from ..model_dir import hybridization_temperature, training_temperature
    from ..simulation.capture import CAPTURE_MODELS, Protocol

    if config.capture not in CAPTURE_MODELS:
        raise UsageError(f"unknown capture model {config.capture!r}",
                         hint=f"choose one of {', '.join(CAPTURE_MODELS)}")
    card = getattr(model, "card", None)
    card_t = float(simulator.temperature) if card is None else hybridization_temperature(card)
    if config.capture == "independent":
        # each document's two-strand yield at the hybridization temperature (a model trained
        # against the simulator at another temperature is still captured where the lab hybridizes)
        if abs(card_t - float(simulator.temperature)) > 1e-9:
            simulator = simulator.at_temperature(card_t)
        return None, simulator, None
    protocol = config.protocol
    if protocol is None:
        protocol = Protocol.from_options(
            config.capture, hybridization_c=card_t,
            training_c=None if card is None else training_temperature(card))
    return protocol, protocol_simulator(protocol, simulator), pool_concentrations(protocol,
                                                                                  abundance)


def protocol_simulator(protocol, simulator):
    """``simulator`` under the protocol's conditions: at its final temperature
    (``protocol.anneal_to``, where the anneal's first energy node and the two-strand yields are
    computed) and its Na+ (``protocol.na_molar``). ``simulator`` itself when it is already."""
    if abs(protocol.na_molar - simulator.na_molar) > 1e-12:
        return simulator.derive(temperature=protocol.anneal_to, na_molar=protocol.na_molar)
    return simulator.at_temperature(protocol.anneal_to)


def pool_concentrations(protocol, abundance) -> np.ndarray:
    """Each document's exposed strands in the hybridization (mol/L): the protocol's pool
    (``protocol.pool_nm``) shared in proportion to the documents' ``abundance`` (mean 1 or not:
    only the proportions count; :func:`primo.simulation.wetlab.pool_abundance` draws one)."""
    a = np.asarray(abundance, dtype=np.float64)
    return protocol.pool_m / len(a) * a / a.mean()


def query_ramp_energies(model, db: DatabaseCodes, query_seq: str, protocol, simulator, *,
                        capture: str = DEFAULT_CAPTURE, refine: int = 1000, must=None, sample: int = 0,
                        decoys: int | None = None, decoy_sample: int = 1000, predicted=None,
                        rng=None, mapper=None, progress: bool = False):
    """One query's binding energies along the protocol's ramp, for the documents the cascade
    simulates: computed once (this is where the simulator's time goes), then captured under any
    number of protocols and capture models by :func:`capture_from_ramp`.

    The cascade (:func:`primo.simulation.cascade.select_documents`): the predictor's yields
    ``predicted`` for every document of ``db`` (computed by :func:`predict_all` when not given),
    the ``refine`` highest, the positions ``must`` (the query's nearest documents) and a sample
    of ``sample`` of the rest. The energies are those ``capture`` needs
    (:func:`primo.simulation.cascade.energy_settings`: the anneal's ``energy_nodes`` from
    ``protocol.anneal_to`` up to ``protocol.anneal_from``, the kinetic model's ``kinetic_nodes``,
    the final temperature alone for ``equilibrium`` and ``independent``), computed by
    ``simulator`` under the protocol's conditions (:func:`protocol_simulator`). ``decoys``: the
    most decoy strands a capture from these energies will add (default ``protocol.decoys``;
    ``min(decoys, decoy_sample)`` random feature regions are simulated). ``rng`` (a seed or a
    generator) draws the sample, the decoys and the documents imputed from each sampled one.

    Returns a :class:`primo.simulation.cascade.QueryEnergies` (its ``selection`` says which
    documents were simulated).
    """
    from .cascade import energy_settings, query_energies, select_documents

    rng = np.random.default_rng(rng)
    if predicted is None:
        predicted = predict_all(model, db, query_seq, progress=progress)
    sel = select_documents(predicted, refine=refine, must=must, sample=sample, rng=rng)
    return query_energies(db.sequences, query_seq, sel, protocol_simulator(protocol, simulator),
                          **energy_settings(protocol, capture),
                          decoys=protocol.decoys if decoys is None else decoys,
                          decoy_sample=decoy_sample, feature_length=model.feature_length,
                          rng=rng, mapper=mapper, progress=progress)


def capture_from_ramp(energies, protocol, simulator, abundance, *, capture: str = DEFAULT_CAPTURE):
    """The capture of one query under ``protocol``, from the energies :func:`query_ramp_energies`
    computed (with the same or a protocol differing in concentrations and decoys; no simulator
    time is spent here).

    ``capture``: ``anneal``, ``equilibrium``, ``kinetic`` (energies computed for it) or
    ``independent`` (each document's two-strand yield at 1 nM each, by ``simulator`` at the
    protocol's final temperature). Each document's concentration is its share ``abundance`` of
    the protocol's pool (:func:`pool_concentrations`). Returns a
    :class:`primo.simulation.cascade.QueryCapture` (``fraction``: each document's captured
    fraction; ``stats``: where the probe went).
    """
    from .cascade import capture_from_energies

    return capture_from_energies(energies, pool_concentrations(protocol, abundance), protocol,
                                 protocol_simulator(protocol, simulator), capture=capture)


def capture_one(model, db, qseq, config, protocol, simulator, conc, must, rng, mapper, progress):
    """One query under a competitive capture model: the cascade, energies, the capture."""
    from ..simulation.cascade import capture_from_energies

    pred = predict_all(model, db, qseq, chunksize=config.chunksize, batch_size=config.batch_size,
                       progress=progress)
    en = query_ramp_energies(model, db, qseq, protocol, simulator, capture=config.capture,
                             refine=config.refine, must=must, sample=config.sample,
                             decoy_sample=config.decoy_sample, predicted=pred, rng=rng,
                             mapper=mapper, progress=progress)
    cap = capture_from_energies(en, conc, protocol, simulator, capture=config.capture)
    return pred, cap.simulated_yield, en.selection.refined, cap.imputed_yield, cap


def simulator_for(model, backend: str | None = None, loop_enthalpies: str | None = None,
                  stacks: str | None = None):
    """The simulator the model was trained with (its card), on ``backend`` if given.

    A model trained with NUPACK falls back to ViennaRNA when NUPACK is not installed here.
    ``loop_enthalpies`` overrides the card's ViennaRNA loop enthalpy treatment (cards written
    before the option load as ``shipped``); ``stacks`` the card's stack parameters (cards
    written before the option load as ``vienna``).
    """
    from ..thermo import nupack as thermo_nupack
    from ..thermo.simulator import Simulator

    settings = dict(model.card.get("simulator") or {})
    if backend:
        settings["backend"] = backend
    if loop_enthalpies:
        settings["loop_enthalpies"] = loop_enthalpies
    if stacks:
        settings["stacks"] = stacks
    if settings.get("backend") == "nupack" and not thermo_nupack.available() and not backend:
        settings["backend"] = "vienna"
    return Simulator.from_dict(settings) if settings else Simulator()


def shipped_loops_warning(model, capture: str, backend: str | None = None,
                          loop_enthalpies: str | None = None) -> str | None:
    """A warning when an anneal (or the kinetic ramp) would run with ViennaRNA's DNA loop
    enthalpies as shipped (a card written before the cap, and no override): they make duplexes
    more stable above ~60 °C, where the anneal starts. None when there is nothing to say."""
    card_sim = (getattr(model, "card", None) or {}).get("simulator") or {}
    if (capture in ("anneal", "kinetic") and loop_enthalpies is None
            and (backend or card_sim.get("backend", "vienna")) == "vienna"
            and card_sim.get("loop_enthalpies", "shipped") == "shipped"):
        return ("this model's simulator uses ViennaRNA's DNA loop enthalpies as shipped, which "
                "make duplexes more stable above ~60 °C, where the anneal starts; capped loop "
                "enthalpies (loop_enthalpies 'clipped') give binding that weakens with "
                "temperature")
    return None


def cascade_stats(pred, sim, refined, imputed=None, must=None) -> dict:
    ref = np.asarray(refined)
    out = {"predicted_above_0.5": int((pred >= 0.5).sum()),
           "predicted_above_0.05": int((pred >= 0.05).sum()),
           "refined": int(len(ref)),
           "simulated": int((~np.isnan(sim)).sum())}
    if len(ref):
        p, s = pred[ref], sim[ref]
        out.update({"refined_changed_side_of_0.5": int(((p >= 0.5) != (s >= 0.5)).sum()),
                    "refined_mean_abs_error": float(np.mean(np.abs(p - s))),
                    "lowest_refined_prediction": float(p.min()),
                    "simulated_above_0.5": int((s >= 0.5).sum())})
    if must is not None:
        out["neighbours_simulated"] = int(len(must))
        out["neighbours_above_0.5"] = int((sim[np.asarray(must)] >= 0.5).sum())
    if imputed is not None:
        # the random sample of documents outside the refined set and the neighbors
        top = np.zeros(len(pred), dtype=bool)
        top[ref] = True
        if must is not None:
            top[np.asarray(must)] = True
        outside = ~top
        sampled = outside & ~np.isnan(sim)
        out["sampled"] = int(sampled.sum())
        if sampled.any():
            rate = float((sim[sampled] >= 0.5).mean())
            out["sampled_above_0.5"] = rate
            out["sampled_predicted_above_0.5"] = float((pred[sampled] >= 0.5).mean())
            # sampled within strata in proportion to size: the plain rate estimates the whole
            out["estimated_binders_outside_refined"] = int(round(rate * outside.sum()))
        out["imputed"] = int((~np.isnan(imputed)).sum())
    return out
