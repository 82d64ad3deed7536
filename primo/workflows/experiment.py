"""The similarity-search experiment in silico: ``primo simulate``.

For each query, every database document gets a duplex yield with the query's probe, and the wet-lab
step (:mod:`primo.simulation.wetlab`) turns yields into read counts (and, on request, reads).

Yields come from a cascade of the predictor, the simulator and imputation: see
:mod:`primo.simulation.search`.

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
    [<QueryID>/]enrichment.csv.gz  ImageID,Count,Input Count,Enrichment   the query's enrichment
                                   score per document (:mod:`primo.workflows.analyze`; up to
                                   primo 0.1.0 only ImageID,Enrichment)
    [<QueryID>/]enrichment/thresholds.csv, recall.png   the curve of the enrichment ranking
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..settings import check_field, setting
from ..simulation.capture import CAPTURE_MODELS, DEFAULT_CAPTURE
from ..simulation.search import (DatabaseCodes, capture_one, cascade_stats, cascade_yields,
                                 load_database, predict_all, protocol_for, simulator_for)

# DatabaseCodes .. simulator_for live in primo.simulation.search (imported from here too)
__all__ = ["DatabaseCodes", "load_database", "predict_all", "cascade_yields", "run_experiment",
           "ExperimentConfig", "simulator_for"]


@dataclasses.dataclass
class ExperimentConfig:
    """The in-silico experiment's settings besides the protocol and the wet lab (``primo
    simulate``'s options are generated from the fields that carry help; the others are the
    library's). ``check()`` raises in library terms, naming the field."""

    refine: int = setting(1000, "Top candidates (by predicted yield) whose yield the "
                          "thermodynamic simulator recomputes; 0 = predictor only, -1 = simulate "
                          "every document.", lo=-1, hi=10**10)
    sample: int = setting(1000, "Documents outside the refined set simulated at random; their "
                          "yields are imputed to the other remaining documents (the predictor "
                          "misses some binders among unrelated sequences). 0 = keep the "
                          "predictor's values there.", lo=0, hi=10**10)
    #: simulate the query's k nearest documents even when not refined or sampled (the command
    #: line's ``--no-neighbors`` turns it off)
    neighbours: bool = setting(True, "Simulate the k nearest documents even when they are not "
                               "refined or sampled.", cli=False)
    k: int = setting(100, "Nearest neighbors for recall.", lo=1, hi=10**9, cli=False)
    chunksize: int = setting(100_000, "Documents (feature-store rows) per step (bounds memory).",
                             lo=1, hi=10**9, cli=False)
    batch_size: int = 8192
    seed: int = setting(0, "Random seed (sampling, abundances, read counts, reads).", lo=0,
                        hi=2**32 - 1, cli=False)
    reads: bool = setting(False, "Also write reads.fastq.gz (25N + oligo, both orientations, "
                          "NextSeq errors).", flag="--reads", cli_name="--reads")
    #: reads per document of the simulated input library (0: none; see the module docstring)
    input_reads_per_document: float = setting(
        0.0, "Also sequence the pool without hybridization at this depth (input_counts.csv.gz; "
        "0: not) and rank each query by enrichment over it (enrichment.csv.gz, enrichment/).",
        lo=0, hi=1e9, cli_name="--input-library", metavar="READS_PER_DOC")
    #: report.html: documents with the most reads drawn per query (0: no pictures), and a folder
    #: of the documents' pictures besides the files the feature stores record
    gallery: int = setting(10, "report.html: draw the N documents with the most reads per query "
                           "(and 5 per Fig. 3C threshold); 0: no pictures.", lo=0, hi=10**6,
                           metavar="N")
    images: str | None = None
    #: capture model (:data:`primo.simulation.capture.CAPTURE_MODELS`): kinetic (default,
    #: :mod:`primo.simulation.kinetic`), anneal, equilibrium or independent (two-strand yields
    #: at 1 nM, the paper's training proxy)
    capture: str = setting(DEFAULT_CAPTURE, "Capture model: kinetic (the mass-action rate "
                           "equations integrated over the ramp, then the washes), anneal (the "
                           "probe competes for the pool down the ramp; duplexes that cannot "
                           "dissociate within a step keep it for good), equilibrium "
                           "(competition at the final temperature), independent (each document "
                           "alone with the probe at 1 nM: the paper's training proxy).",
                           choices=CAPTURE_MODELS)
    #: the hybridization protocol (:class:`primo.simulation.capture.Protocol`); None: the
    #: paper's, ending at the model card's temperature
    protocol: object = None
    #: the probe's concentration: None keeps the protocol's (the paper's 0.5 nM), a number (nM),
    #: or "auto": room for a fixed multiple of k documents' strands, sized to the database
    #: (:func:`primo.simulation.capture.auto_probe_nm`); resolved once the database is loaded
    #: and recorded in summary.json (``capture.probe``)
    probe_nm: float | str | None = None
    #: random decoy sequences simulated to stand for the protocol's decoys
    decoy_sample: int = 1000

    def check(self) -> None:
        """Raise :class:`UsageError` (``option=`` the field) for a value out of its bounds."""
        for f in dataclasses.fields(self):
            check_field(f, getattr(self, f.name))


def _query_distances(features, qX, image_ids, chunksize, budget_bytes=1 << 30,
                     progress: bool = False):
    """Distances (N x M, float64) of every database document to every query, streamed.

    Documents come in store order; ``image_ids`` (the database order used by the experiment) must
    be the store's IDs in the same order.
    """
    from ..evaluation.neighbors import query_distances
    from ..features.store import FeatureStore

    with FeatureStore.open(features) as st:
        n = st.n
        if n * len(qX) * 8 > budget_bytes:
            raise UsageError(f"{len(qX)} queries x {n:,} documents of distances do not fit in "
                             "memory at once", option="query_ids",
                             hint="run fewer queries per call (`query_ids`)")
        D = np.empty((n, len(qX)), dtype=np.float64)
        at = 0
        from ..progress import progress as _progress

        # the whole feature store is read (26 GB for 1.6 M VGG16-FC2 documents): a bar
        with _progress(total=n, desc="distances", unit="doc", disable=not progress) as bar:
            for _, d in query_distances(st, qX, chunksize=min(chunksize, st.default_chunksize())):
                D[at:at + len(d)] = d
                at += len(d)
                bar.update(len(d))
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
    from ..io import atomic_dir, write_json
    from ..model_dir import PrimoModel, load_model
    from ..simulation.wetlab import WetLabModel, pool_abundance, simulate_input_counts
    from .report import ImageSource, write_results_page

    t0 = time.time()
    if not isinstance(model, PrimoModel):
        model = load_model(model)
    wetlab = wetlab or WetLabModel()
    qids, qX = _read_queries(model, queries, query_ids)
    db = load_database(model, features=features, pool=pool, chunksize=config.chunksize,
                       progress=progress)
    n = len(db)
    if config.k > n:
        raise UsageError(f"k = {config.k} is larger than the database ({n} documents)",
                         hint=f"use {n} or less", option="k")
    t_db = time.time() - t0
    D = _query_distances(features, qX, db.image_ids, config.chunksize, progress=progress)
    q_seqs = model.encode_features(qX)
    rng = np.random.default_rng(config.seed)
    # one synthesized pool for every query; its input library, if sequenced
    abundance = pool_abundance(n, wetlab, rng)
    protocol, simulator, conc = protocol_for(model, config, simulator or simulator_for(model),
                                             abundance)
    from ..simulation.capture import size_probe

    # the probe sized to the database (conc and the simulator do not depend on it)
    protocol, probe_rule = size_probe(protocol, config.probe_nm, documents=n, k=config.k)
    run = _Run(model, db, config, wetlab, simulator, protocol, conc, abundance, rng, mapper,
               progress, labels, probe_rule=probe_rule)
    single = len(qids) == 1
    summaries, pages = {}, []   # pages: each query's results, condensed for report.html
    with atomic_dir(Path(out_dir)) as tmp:
        if config.input_reads_per_document > 0:
            run.input_counts = simulate_input_counts(
                abundance, wetlab, rng, reads_per_document=config.input_reads_per_document)
            _write_table(tmp / "input_counts.csv.gz", ["ImageID", "Count"],
                         [db.image_ids, run.input_counts])
        from ..progress import progress as _progress

        # one bar over the queries (rate and time to go); each query's own bars below it
        for j, (qid, qseq) in enumerate(_progress(list(zip(qids, q_seqs)), desc="simulate",
                                                  unit="query", disable=not progress or single)):
            qdir = tmp if single else tmp / _safe_name(qid)
            qdir.mkdir(exist_ok=True)
            summaries[qid], page = _simulate_query(run, j, qid, qseq, D[:, j], qdir,
                                                   summary_file=not single)
            pages.append(page)
        summary = _summary(run, summaries, features, pool, t0, t_db)
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


@dataclasses.dataclass
class _Run:
    """What every query of a run shares."""

    model: object
    db: DatabaseCodes
    config: ExperimentConfig
    wetlab: object
    simulator: object
    protocol: object
    conc: object            # each document's concentration (competitive capture models)
    abundance: np.ndarray   # the synthesized pool's spread, drawn once per run
    rng: np.random.Generator
    mapper: object
    progress: bool
    labels: dict | None
    input_counts: np.ndarray | None = None
    probe_rule: dict | None = None   # how the probe was sized (size_probe)


def _read_queries(model, queries, query_ids):
    """(query IDs, their feature vectors float32) from the query store."""
    from ..features.store import FeatureStore

    with FeatureStore.open(queries) as qs:
        if qs.n == 0:
            raise DataError("the query feature store holds no queries", path=queries,
                            hint="extract query features with `primo extract`")
        model.check_features(qs.dim, qs.metadata, path=queries)
        qids = [str(q) for q in (query_ids or np.asarray(qs.ids).tolist())]
        qX = np.asarray(qs.read_ids(qids), dtype=np.float32)
    if len(set(qids)) != len(qids):
        raise UsageError("a query is named twice", hint="name each query once", option="query_ids")
    return qids, qX


def _simulate_query(run: _Run, j: int, qid: str, qseq: str, dist, qdir, summary_file: bool):
    """One query: yields, capture, read counts, their evaluation; files into ``qdir``.
    Returns (the query's summary, its results page)."""
    from ..evaluation.recall import nearest_neighbors
    from ..io import provenance, write_json
    from ..simulation.wetlab import simulate_counts, write_reads
    from .analyze import evaluate_query, write_enrichment

    config, db = run.config, run.db
    tq = time.time()
    must = nearest_neighbors(dist, config.k) if config.neighbours else None
    pred, sim, refined, imp, cap, captured = _captured(run, j, qseq, must, qdir)
    counts = simulate_counts(captured, run.wetlab, rng=run.rng, abundance=run.abundance)
    _write_query_tables(qdir, db.image_ids, counts, pred, sim, imp, dist)
    lab = qlab = None
    if run.labels is not None and run.labels.get(qid) is not None:
        # mAP@k needs the query's label; a query without one gets recall figures only
        lab = np.asarray([run.labels.get(str(i)) for i in db.image_ids], dtype=object)
        qlab = run.labels[qid]
    e = None
    if run.input_counts is not None:
        e = write_enrichment(qdir / "enrichment.csv.gz", db.image_ids, counts, run.input_counts)
    s, page = evaluate_query(qdir, counts, db.image_ids, dist, name=qid, k=config.k,
                             enrichment=e, labels=lab, query_label=qlab, gallery=config.gallery)
    n_reads = None
    if config.reads:
        nz = np.flatnonzero(counts)
        n_reads = write_reads(qdir / "reads.fastq.gz", counts[nz], db.oligos_fn(nz),
                              run.wetlab, rng=run.rng)
    s.update(cascade_stats(pred, sim, refined, imp, must))
    if cap is not None:
        s["capture"] = cap.stats
    s.update({"query_id": qid, "query_features": qseq, "reads_written": n_reads,
              "total_reads": int(counts.sum()), "seconds": round(time.time() - tq, 2)})
    if summary_file:
        write_json(qdir / "summary.json", {**s, "provenance": provenance()})
    return s, page


def _captured(run: _Run, j: int, qseq: str, must, qdir):
    """The cascade's yields and each document's captured fraction for one query (under a
    competitive capture model also ``capture.csv.gz``): (predicted, simulated, refined, imputed,
    capture result or None, captured)."""
    config = run.config
    qrng = np.random.default_rng([config.seed, j])
    if config.capture == "independent":
        pred, sim, refined, imp = cascade_yields(
            run.model, run.db, qseq, refine=config.refine, simulator=run.simulator,
            mapper=run.mapper, chunksize=config.chunksize, batch_size=config.batch_size,
            progress=run.progress, must=must, sample=config.sample, rng=qrng)
        captured = np.where(np.isnan(sim), np.where(np.isnan(imp), pred, imp), sim)
        return pred, sim, refined, imp, None, captured
    pred, sim, refined, imp, cap = capture_one(
        run.model, run.db, qseq, config, run.protocol, run.simulator, run.conc, must, qrng,
        run.mapper, run.progress)
    _write_table(qdir / "capture.csv.gz",
                 ["ImageID", "Binding dG (kcal/mol)", "Energies", "Captured Fraction"],
                 [run.db.image_ids, ["" if np.isnan(v) else f"{v:.4f}" for v in cap.dg_final],
                  np.asarray(["simulated", "imputed", "none"])[cap.source],
                  [f"{v:.6g}" for v in cap.fraction]])
    return pred, sim, refined, imp, cap, cap.fraction


def _write_query_tables(qdir, image_ids, counts, pred, sim, imp, dist) -> None:
    """counts.csv.gz, yields.csv.gz and distances.csv.gz of one query."""
    _write_table(qdir / "counts.csv.gz", ["ImageID", "Count"], [image_ids, counts])
    _write_table(qdir / "yields.csv.gz",
                 ["ImageID", "Predicted Yield", "Simulated Yield", "Imputed Yield"],
                 [image_ids, [f"{p:.6g}" for p in pred],
                  ["" if np.isnan(s) else f"{s:.6g}" for s in sim],
                  ["" if np.isnan(v) else f"{v:.6g}" for v in imp]])
    _write_table(qdir / "distances.csv.gz", ["ImageID", "Euclidean Distance"],
                 [image_ids, [f"{d:.6g}" for d in dist]])


def _summary(run: _Run, summaries: dict, features, pool, t0: float, t_db: float) -> dict:
    """The run's summary.json."""
    from ..io import provenance

    config = run.config
    return {
        "format": "primo-simulation", "queries": list(summaries.values()),
        "database": {"documents": len(run.db), "features": str(features),
                     "pool": None if pool is None else str(pool)},
        "model": {"path": str(run.model.path), "card_checksum": run.model.card.get("checksum")},
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "protocol"},
        "wetlab": run.wetlab.to_dict(),
        "simulator": run.simulator.to_dict(),
        "capture": {"model": config.capture,
                    "protocol": None if run.protocol is None else run.protocol.to_dict(),
                    "probe": run.probe_rule},
        "timing": {"database_seconds": round(t_db, 2),
                   "total_seconds": round(time.time() - t0, 2)},
        "provenance": provenance(),
        **({"energy_cache": run.simulator.energy_store.report()}
           if getattr(run.simulator, "energy_store", None) is not None else {}),
    }


def _safe_name(qid: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", qid) or "query"
