"""Search quality during training, measured the way the protocol runs: a held-out mini-database.

Every few rounds (``capture_eval_every``) the encoder being trained writes a small database of
held-out documents (``capture_eval_docs``, never trained on) and ``capture_eval_queries`` held-out
queries, and each query's probe is **captured** from the whole mini-pool with the default protocol
(:class:`primo.simulation.capture.Protocol`, probe:pool 1:300, and the default capture model,
:data:`primo.simulation.capture.DEFAULT_CAPTURE`) through the same
cascade as ``primo simulate`` (:mod:`primo.simulation.cascade`: the predictor picks the
``capture_eval_refine`` documents to simulate besides the query's nearest neighbors and a
stratified ``capture_eval_sample`` of the rest; the others are imputed). The simulator, not the
predictor, decides the captured fractions.

Reported per evaluated round (``metrics.csv``) and for the kept round (``card.json``):

``capture_p50`` / ``capture_p90``
    proportion of the mini-database retrieved at 50 % / 90 % mean recall of each query's
    ``capture_eval_k`` nearest neighbors (feature space), on the Pareto frontier of the
    threshold sweep over captured fractions (:func:`primo.evaluation.recall.proportion_at_recall`;
    empty when never reached);
``capture_map10``
    mAP@10 of the ranking by captured fraction, relevant = same label when the features carry
    labels, else one of the ``capture_eval_k`` nearest neighbors (``capture_map10_relevance``);
``capture_probe_far``
    share of the probe held by documents outside the query's nearest neighbors (the floor of
    imperfect duplexes that issue 16 is about).

The mini-database holds far fewer documents than a real pool, so its proportions are not those of
a 60,000- or 1.6 M-document pool; they compare rounds and training settings with each other.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..simulation.capture import DEFAULT_CAPTURE

__all__ = ["CaptureEvalSet", "make_capture_eval_set", "evaluate_capture"]


@dataclasses.dataclass
class CaptureEvalSet:
    """The fixed mini-database of one training run (rows of the feature source)."""

    db_rows: np.ndarray
    query_rows: np.ndarray
    X_db: np.ndarray
    X_q: np.ndarray
    nn: np.ndarray              # (queries, k) positions into the mini-database, nearest first
    labels_db: np.ndarray | None
    labels_q: np.ndarray | None
    k: int

    @property
    def n_db(self) -> int:
        return len(self.db_rows)


def make_capture_eval_set(source, heldout, n_docs: int, n_queries: int, k: int, rng):
    """Draw the mini-database and its queries among the held-out rows (None if too few).

    Queries are at most a tenth of the held-out rows; the database needs at least ``2 k`` and 20
    documents.
    """
    from .data import pairwise_sq_distances

    rows = np.asarray(rng.permutation(np.asarray(heldout, dtype=np.int64)))
    nq = min(int(n_queries), len(rows) // 10)
    nd = min(int(n_docs), len(rows) - nq)
    if nq < 1 or nd < max(2 * int(k), 20):
        return None
    q_rows, d_rows = np.sort(rows[:nq]), np.sort(rows[nq:nq + nd])
    X_q = np.asarray(source.read_index(q_rows), dtype=np.float32)
    X_db = np.asarray(source.read_index(d_rows), dtype=np.float32)
    d2 = pairwise_sq_distances(X_q, X_db)
    pos = np.arange(nd)
    nn = np.stack([np.lexsort((pos, row))[:k] for row in d2]).astype(np.int64)
    labels = getattr(source, "labels", None)
    lab_db = lab_q = None
    if labels is not None and len(labels) == source.n:
        labels = np.asarray(labels)
        lab_db, lab_q = labels[d_rows], labels[q_rows]
    return CaptureEvalSet(d_rows, q_rows, X_db, X_q, nn, lab_db, lab_q, int(k))


def _curve_points(F: np.ndarray, nn: np.ndarray):
    """(mean proportion retrieved, mean recall) for every distinct captured fraction."""
    n_db = F.shape[1]
    grid = np.unique(F[F > 0])
    if len(grid) > 2000:
        grid = np.unique(np.quantile(grid, np.linspace(0, 1, 2000)))
    R = np.zeros((len(F), len(grid)))
    H = np.zeros_like(R)
    for i, c in enumerate(F):
        srt = np.sort(c)
        R[i] = len(srt) - np.searchsorted(srt, grid, side="left")
        v = np.sort(c[nn[i]])
        H[i] = len(v) - np.searchsorted(v, grid, side="left")
    return list(zip(R.mean(axis=0) / n_db, H.mean(axis=0) / nn.shape[1]))


def _map10(F, es: CaptureEvalSet):
    from ..evaluation.neighbors import average_precision_at_k
    from ..evaluation.recall import map_at_k_from_scores

    if es.labels_db is not None:
        return map_at_k_from_scores(F, es.labels_db, es.labels_q, k=10)[0], "label"
    pos = np.arange(F.shape[1])
    k = min(10, F.shape[1])
    rel = np.stack([np.isin(np.lexsort((pos, -row))[:k], es.nn[i]) for i, row in enumerate(F)])
    return float(average_precision_at_k(rel).mean()), "nearest neighbors"


def evaluate_capture(es: CaptureEvalSet, encode_codes, predict_codes, simulator, protocol, *,
                     refine: int, sample: int, rng, mapper=None) -> dict:
    """Capture every query of ``es`` from the mini-pool; the metrics described in the module.

    ``encode_codes(X) -> uint8 codes``; ``predict_codes(t_codes, q_codes) -> yields`` (the
    predictor, which only chooses what to simulate); ``simulator`` at the protocol's final
    temperature.
    """
    import time

    from ..evaluation.recall import proportion_at_recall
    from ..dna import decode_seqs
    from ..simulation.cascade import capture_query, select_documents

    db_codes = encode_codes(es.X_db)
    q_codes = encode_codes(es.X_q)
    db_seqs = decode_seqs(db_codes)
    q_seqs = decode_seqs(q_codes)
    n = es.n_db
    conc = np.full(n, protocol.pool_m / n)
    F = np.zeros((len(q_seqs), n))
    far = []
    sim_s = 0.0
    for i, qs in enumerate(q_seqs):
        pred = predict_codes(db_codes, np.repeat(q_codes[i:i + 1], n, axis=0))
        sel = select_documents(pred, refine=refine, must=es.nn[i], sample=sample, rng=rng)
        t = time.perf_counter()
        cap = capture_query(lambda p: [db_seqs[j] for j in p], qs, sel, conc, protocol,
                            simulator, capture=DEFAULT_CAPTURE, rng=rng, mapper=mapper)
        sim_s += time.perf_counter() - t
        F[i] = cap.fraction
        bound = cap.fraction * conc
        near = np.zeros(n, bool)
        near[es.nn[i]] = True
        far.append(float(bound[~near].sum() / protocol.probe_m))
    pts = _curve_points(F, es.nn)
    p50 = proportion_at_recall(pts, 0.5)
    p90 = proportion_at_recall(pts, 0.9)
    m10, relevance = _map10(F, es)
    return {"capture_p50": math.nan if p50 is None else p50,
            "capture_p90": math.nan if p90 is None else p90,
            "capture_map10": m10, "capture_probe_far": float(np.mean(far)),
            "capture_map10_relevance": relevance,
            # the cascade's captures (the simulator's energies and the anneal), seconds
            "capture_simulation_s": sim_s}


def better(row: dict, best: dict | None) -> bool:
    """Is ``row`` a better capture evaluation than ``best``? Lower proportion at 50 % recall
    (never reached counts as worst), ties broken by higher mAP@10."""
    if best is None:
        return True
    a, b = row.get("capture_p50", math.nan), best.get("capture_p50", math.nan)
    a = math.inf if a is None or math.isnan(a) else a
    b = math.inf if b is None or math.isnan(b) else b
    if a != b:
        return a < b
    return row.get("capture_map10", 0.0) > best.get("capture_map10", 0.0)
