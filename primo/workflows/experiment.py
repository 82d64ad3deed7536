"""The similarity-search experiment in silico: ``primo simulate``.

For each query, every database document gets a duplex yield with the query's probe, and the wet-lab
step (:mod:`primo.simulation.wetlab`) turns yields into read counts (and, on request, reads).

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
k nearest neighbours are simulated exactly, so the recall figures are unbiased). ``yields.csv.gz``
says for every document whether its yield was simulated or imputed, and the summary reports the
sampled binding rate and the estimated number of binders outside the refined set, so a user can
see what the predictor missed. ``sample=0`` keeps the predictor's values for the remaining
documents (the bias above); ``refine=-1`` (or a value >= N) simulates every document (exact,
slow). ``refine=0`` uses the predictor alone for the top of the ranking.

Outputs (``OUT/`` for one query; ``OUT/<QueryID>/`` for each of several, plus ``OUT/summary.json``)::

    counts.csv.gz      ImageID,Count            read counts (published layout), every document
    yields.csv.gz      ImageID,Predicted Yield,Simulated Yield,Imputed Yield   (empty where not
                       simulated / imputed; the yield used is the first of simulated, imputed,
                       predicted)
    distances.csv.gz   ImageID,Euclidean Distance   the query's distance to every document
    thresholds.csv     Threshold,Number Retrieved,100-Nearest-Neighbor Recall
    recall.png         proportion retrieved vs 100-NN recall (chance and oracle lines)
    reads.fastq.gz     (with ``reads=True``) NextSeq-like reads that ``primo analyze`` reads back
    summary.json       parameters, timings, cascade statistics, recall figures, provenance
    report.html        (top level) each query's picture, the documents it retrieved, Fig. 3A/B/C
                       (:mod:`primo.workflows.report`), with ``report_files/``

All queries capture from **one** synthesized pool: the synthesis and enrichment-PCR spread of each
document (:func:`~primo.simulation.wetlab.pool_abundance`) is drawn once per run. With
``input_reads_per_document`` > 0 the run also sequences that pool without hybridization (the input
library) and ranks every query by its enrichment over it as well::

    input_counts.csv.gz          ImageID,Count   the input library (top level, one per run)
    [<QueryID>/]enrichment.csv.gz  ImageID,Enrichment   the query's enrichment score per document
    [<QueryID>/]enrichment/thresholds.csv, recall.png   the curve of the enrichment ranking
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["DatabaseCodes", "load_database", "cascade_yields", "run_experiment", "ExperimentConfig",
           "simulator_for"]


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


@dataclasses.dataclass
class ExperimentConfig:
    refine: int = 1000
    sample: int = 1000
    neighbours: bool = True
    k: int = 100
    chunksize: int = 100_000
    batch_size: int = 8192
    seed: int = 0
    reads: bool = False
    #: reads per document of the simulated input library (0: none; see the module docstring)
    input_reads_per_document: float = 0.0
    #: report.html: documents with the most reads drawn per query (0: no pictures), and a folder
    #: of the documents' pictures besides the files the feature stores record
    gallery: int = 10
    images: str | None = None
    #: capture model (:data:`primo.simulation.capture.CAPTURE_MODELS`): anneal (default),
    #: equilibrium, or independent (two-strand yields at 1 nM, the paper's training proxy)
    capture: str = "anneal"
    #: the hybridization protocol (:class:`primo.simulation.capture.Protocol`); None: the
    #: paper's, ending at the model card's temperature
    protocol: object = None
    #: random decoy sequences simulated to stand for the protocol's decoys
    decoy_sample: int = 1000


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
        raise UsageError("give the database as --features F.h5 (and optionally --pool POOL)")
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
            from ..predictor.simulator import Simulator

            simulator = Simulator()
        simulated[todo] = simulator.yields(db.sequences(todo), [query_seq] * len(todo),
                                           mapper=mapper, progress=progress)
    d = donors(sel, n, rng)
    left = (d >= 0) & np.isnan(simulated)
    imputed[left] = simulated[d[left]]
    refined = sel.refined
    return pred, simulated, refined, imputed


def _query_distances(features, qX, image_ids, chunksize, budget_bytes=1 << 30):
    """Distances (N x M, float64) of every database document to every query, streamed.

    Documents come in store order; ``image_ids`` (the database order used by the experiment) must
    be the store's IDs in the same order.
    """
    from ..features.metrics import squared_distances
    from ..features.store import FeatureStore

    with FeatureStore.open(features) as st:
        n = st.n
        if n * len(qX) * 8 > budget_bytes:
            raise UsageError(f"{len(qX)} queries x {n:,} documents of distances do not fit in "
                             "memory at once", hint="run fewer queries per call (--query-id)")
        D = np.empty((n, len(qX)), dtype=np.float64)
        at = 0
        for ids, X in st.iter_chunks(chunksize=min(chunksize, st.default_chunksize())):
            D[at:at + len(X)] = np.sqrt(squared_distances(X, qX))
            at += len(X)
        store_ids = np.asarray(st.ids)
    if len(store_ids) != len(image_ids) or not (store_ids == np.asarray(image_ids)).all():
        raise DataError("the pool's documents are not the feature store's documents in the same "
                        "order", path=features,
                        hint="give the feature store that was encoded into this pool")
    return D


def _write_table(path, header, columns):
    from ..io import write_table

    write_table(path, header, columns)


def run_experiment(model, features, queries, out_dir, *, pool=None, query_ids=None,
                   config: ExperimentConfig = ExperimentConfig(), wetlab=None, simulator=None,
                   mapper=None, labels=None, progress: bool = True) -> dict:
    """The whole in-silico experiment for one or several queries (see the module docstring).

    Parameters
    ----------
    model : PrimoModel or path
    features : path
        database feature store (for distances, and encoded unless ``pool`` is given).
    queries : path
        query feature store.
    out_dir : path
        written atomically.
    pool : path, optional
        a pool made by ``encode-db`` from ``features``: its feature regions and barcodes are used.
    query_ids : list of str, optional
        which queries (default: all in the store).
    labels : dict ImageID -> label, optional
        document and query labels, for mAP@k.
    """
    from ..features.store import FeatureStore
    from ..evaluation.recall import evaluate_counts, nearest_neighbors
    from ..evaluation.recall import enrichment_scores
    from ..simulation.wetlab import (WetLabModel, pool_abundance, simulate_counts,
                                   simulate_input_counts, write_reads)
    from ..evaluation.results import summarize_query
    from ..io import atomic_dir, provenance, write_json
    from .report import ImageSource, write_results_page
    from ..model_dir import PrimoModel, load_model

    t0 = time.time()
    if not isinstance(model, PrimoModel):
        model = load_model(model)
    wetlab = wetlab or WetLabModel()
    with FeatureStore.open(queries) as qs:
        if qs.n == 0:
            raise DataError("the query feature store holds no queries", path=queries,
                            hint="extract query features with `primo extract`")
        model.check_features(qs.dim, qs.metadata, path=queries)
        qids = [str(q) for q in (query_ids or np.asarray(qs.ids).tolist())]
        qX = np.asarray(qs.read_ids(qids), dtype=np.float32)
    if len(set(qids)) != len(qids):
        raise UsageError("a query is named twice", hint="give each --query-id once")
    db = load_database(model, features=features, pool=pool, chunksize=config.chunksize,
                       progress=progress)
    n = len(db)
    if config.k > n:
        raise UsageError(f"k = {config.k} is larger than the database ({n} documents)",
                         hint=f"use --k {n} or less")
    t_db = time.time() - t0
    D = _query_distances(features, qX, db.image_ids, config.chunksize)
    q_seqs = model.encode_features(qX)
    rng = np.random.default_rng(config.seed)
    if simulator is None:
        simulator = simulator_for(model)
    single = len(qids) == 1
    summaries = {}
    out_dir = Path(out_dir)
    # one synthesized pool for every query; its input library, if sequenced
    abundance = pool_abundance(n, wetlab, rng)
    protocol, simulator, conc = _protocol_for(model, config, simulator, abundance)
    input_counts = None
    pages = []   # each query's results, condensed for report.html
    with atomic_dir(out_dir) as tmp:
        if config.input_reads_per_document > 0:
            input_counts = simulate_input_counts(
                abundance, wetlab, rng, reads_per_document=config.input_reads_per_document)
            _write_table(tmp / "input_counts.csv.gz", ["ImageID", "Count"],
                         [db.image_ids, input_counts])
        for j, (qid, qseq) in enumerate(zip(qids, q_seqs)):
            tq = time.time()
            qdir = tmp if single else tmp / _safe_name(qid)
            qdir.mkdir(exist_ok=True)
            must = nearest_neighbors(D[:, j], config.k) if config.neighbours else None
            qrng = np.random.default_rng([config.seed, j])
            cap = None
            if config.capture == "independent":
                pred, sim, refined, imp = cascade_yields(
                    model, db, qseq, refine=config.refine, simulator=simulator, mapper=mapper,
                    chunksize=config.chunksize, batch_size=config.batch_size,
                    progress=progress, must=must, sample=config.sample, rng=qrng)
                captured = np.where(np.isnan(sim), np.where(np.isnan(imp), pred, imp), sim)
            else:
                pred, sim, refined, imp, cap = _capture_one(
                    model, db, qseq, config, protocol, simulator, conc, must, qrng, mapper,
                    progress)
                captured = cap.fraction
                _write_table(qdir / "capture.csv.gz",
                             ["ImageID", "Binding dG (kcal/mol)", "Energies",
                              "Captured Fraction"],
                             [db.image_ids,
                              ["" if np.isnan(v) else f"{v:.4f}" for v in cap.dg_final],
                              np.asarray(["simulated", "imputed", "none"])[cap.source],
                              [f"{v:.6g}" for v in cap.fraction]])
            counts = simulate_counts(captured, wetlab, rng=rng, abundance=abundance)
            _write_table(qdir / "counts.csv.gz", ["ImageID", "Count"], [db.image_ids, counts])
            _write_table(qdir / "yields.csv.gz",
                         ["ImageID", "Predicted Yield", "Simulated Yield", "Imputed Yield"],
                         [db.image_ids, [f"{p:.6g}" for p in pred],
                          ["" if np.isnan(s) else f"{s:.6g}" for s in sim],
                          ["" if np.isnan(v) else f"{v:.6g}" for v in imp]])
            _write_table(qdir / "distances.csv.gz", ["ImageID", "Euclidean Distance"],
                         [db.image_ids, [f"{d:.6g}" for d in D[:, j]]])
            lab = qlab = None
            if labels is not None and labels.get(qid) is not None:
                # mAP@k needs the query's label; a query without one gets recall figures only
                lab = np.asarray([labels.get(str(i)) for i in db.image_ids], dtype=object)
                qlab = labels[qid]
            s = evaluate_counts(counts, db.image_ids, D[:, j], qdir, k=config.k, name=qid,
                                labels=lab, query_label=qlab)
            if input_counts is not None:
                e = enrichment_scores(counts, input_counts)
                _write_table(qdir / "enrichment.csv.gz", ["ImageID", "Enrichment"],
                             [db.image_ids, [f"{v:.6g}" for v in e]])
                (qdir / "enrichment").mkdir()
                s["enrichment"] = evaluate_counts(e, db.image_ids, D[:, j], qdir / "enrichment",
                                                  k=config.k, name=qid, labels=lab,
                                                  query_label=qlab)
            n_reads = None
            if config.reads:
                nz = np.flatnonzero(counts)
                n_reads = write_reads(qdir / "reads.fastq.gz", counts[nz], db.oligos_fn(nz),
                                      wetlab, rng=rng)
            s.update(_cascade_stats(pred, sim, refined, imp, must))
            if cap is not None:
                s["capture"] = cap.stats
            s.update({"query_id": qid, "query_features": qseq, "reads_written": n_reads,
                      "total_reads": int(counts.sum()), "seconds": round(time.time() - tq, 2)})
            if not single:
                write_json(qdir / "summary.json", {**s, "provenance": provenance()})
            summaries[qid] = s
            pages.append(summarize_query(qid, counts, D[:, j], db.image_ids, k=config.k,
                                         gallery=config.gallery, labels=lab, query_label=qlab,
                                         enrichment=None if input_counts is None else e))
        summary = {
            "format": "primo-simulation", "queries": list(summaries.values()),
            "database": {"documents": n, "features": str(features),
                         "pool": None if pool is None else str(pool)},
            "model": {"path": str(model.path), "card_checksum": model.card.get("checksum")},
            "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "protocol"},
            "wetlab": wetlab.to_dict(),
            "simulator": simulator.to_dict(),
            "capture": {"model": config.capture,
                        "protocol": None if protocol is None else protocol.to_dict()},
            "timing": {"database_seconds": round(t_db, 2),
                       "total_seconds": round(time.time() - t0, 2)},
            "provenance": provenance(),
        }
        write_json(tmp / "summary.json", summary)
        write_results_page(tmp, pages, images=ImageSource([features, queries], config.images),
                           gallery=config.gallery > 0, title="primo simulate: search results")
        if not single:
            from ..evaluation.plots import plot_recall
            from ..evaluation.recall import RecallCurve

            curves = [RecallCurve.read_csv(tmp / _safe_name(q) / "thresholds.csv", n_db=n,
                                           k=config.k, name=q) for q in qids]
            plot_recall(curves, tmp / "recall.png", n_db=n, k=config.k)
    return summary


def _protocol_for(model, config, simulator, abundance):
    """The protocol, the simulator at its final temperature and each document's concentration."""
    from ..simulation.capture import CAPTURE_MODELS, Protocol

    if config.capture not in CAPTURE_MODELS:
        raise UsageError(f"unknown capture model {config.capture!r}",
                         hint=f"choose one of {', '.join(CAPTURE_MODELS)}")
    if config.capture == "independent":
        return None, simulator, None
    card_t = float(simulator.temperature)
    protocol = config.protocol
    if protocol is None:
        protocol = Protocol(anneal_to=card_t)
    protocol.check_temperature(card_t)
    if abs(protocol.anneal_to - card_t) > 1e-9 or abs(protocol.na_molar - simulator.sodium) > 1e-12:
        from ..predictor.simulator import Simulator

        simulator = Simulator.from_dict(simulator.to_dict(), temperature=protocol.anneal_to,
                                        sodium=protocol.na_molar)
    a = np.asarray(abundance, dtype=np.float64)
    conc = protocol.pool_m / len(a) * a / a.mean()
    return protocol, simulator, conc


def _capture_one(model, db, qseq, config, protocol, simulator, conc, must, rng, mapper, progress):
    """One query under a competitive capture model: the cascade, energies, the capture."""
    from ..simulation.cascade import capture_query, select_documents

    pred = predict_all(model, db, qseq, chunksize=config.chunksize, batch_size=config.batch_size,
                       progress=progress)
    sel = select_documents(pred, refine=config.refine, must=must, sample=config.sample, rng=rng)
    cap = capture_query(db.sequences, qseq, sel, conc, protocol, simulator,
                        capture=config.capture, rng=rng, mapper=mapper,
                        decoy_sample=config.decoy_sample, feature_length=model.feature_length,
                        progress=progress)
    return pred, cap.simulated_yield, sel.refined, cap.imputed_yield, cap


def simulator_for(model, backend: str | None = None):
    """The simulator the model was trained with (its card), on ``backend`` if given.

    A model trained with NUPACK falls back to ViennaRNA when NUPACK is not installed here.
    """
    from ..predictor import thermo_nupack
    from ..predictor.simulator import Simulator

    settings = dict(model.card.get("simulator") or {})
    if backend:
        settings["backend"] = backend
    if settings.get("backend") == "nupack" and not thermo_nupack.available() and not backend:
        settings["backend"] = "vienna"
    return Simulator.from_dict(settings) if settings else Simulator()


def _cascade_stats(pred, sim, refined, imputed=None, must=None) -> dict:
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
        # the random sample of documents outside the refined set and the neighbours
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


def _safe_name(qid: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", qid) or "query"
