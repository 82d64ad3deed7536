"""95 % bootstrap intervals over queries for the figures of a search-quality curve.

A figure such as "the proportion of the database retrieved at 50 % recall" is a mean over queries
read off a curve; its interval comes from resampling the queries with replacement (seeded) and
reading the figure off each resample the same way (:func:`bootstrap_proportion_at_recall`), or from
the resampled mean of per-query values (:func:`bootstrap_mean`, e.g. AP@10). ``primo benchmark``
writes them into its summary.
"""

from __future__ import annotations

import numpy as np

from .recall import proportion_at_recall, recall_key

__all__ = ["bootstrap_proportion_at_recall", "bootstrap_mean", "BOOTSTRAP_RESAMPLES"]


#: resamples of the queries behind every 95 % bootstrap interval
BOOTSTRAP_RESAMPLES = 1000


def _resample_weights(n_queries: int, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, n_queries)`` multiplicities of each query in each resample (with
    replacement, seeded)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_queries, np.full(n_queries, 1.0 / n_queries),
                           size=resamples).astype(np.float64)


def bootstrap_proportion_at_recall(proportion, recall, recalls, *,
                                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """95 % bootstrap intervals, over queries, of the proportion retrieved at each recall level.

    ``proportion`` and ``recall`` are ``(queries, settings)`` arrays (NaN where a query has no
    value for a setting); each resample draws the queries with replacement, averages each setting
    over them and reads the proportion off the frontier (:func:`proportion_at_recall`), as the
    figure itself is read. Returns ``{recall_key: {"ci95": [lo, hi] or None, "reached": share of
    resamples that reach the recall}}``; ``ci95`` is None unless 97.5 % of the resamples reach it
    (its upper end would be "not reached").

    >>> P = np.array([[0.01, 0.1], [0.02, 0.2]]); R = np.array([[0.4, 0.9], [0.6, 1.0]])
    >>> d = bootstrap_proportion_at_recall(P, R, [0.5], resamples=200)
    >>> lo, hi = d["0.5"]["ci95"]; bool(0.005 <= lo <= hi <= 0.2), d["0.5"]["reached"]
    (True, 1.0)
    """
    P = np.asarray(proportion, dtype=np.float64)
    R = np.asarray(recall, dtype=np.float64)
    present = np.isfinite(P) & np.isfinite(R)
    P, R = np.where(present, P, 0.0), np.where(present, R, 0.0)
    W = _resample_weights(len(P), int(resamples), seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = W @ present
        mp, mr = (W @ P) / n, (W @ R) / n
    out = {}
    for rc in recalls:
        got = []
        for b in range(len(W)):
            ok = n[b] > 0
            v = proportion_at_recall(zip(mp[b, ok].tolist(), mr[b, ok].tolist()), rc)
            got.append(np.inf if v is None else v)
        got = np.asarray(got)
        reached = float(np.mean(np.isfinite(got)))
        ci = None
        if reached >= 0.975:
            lo, hi = np.quantile(got, [0.025, 0.975])
            ci = [float(f"{lo:.6g}"), float(f"{hi:.6g}")]
        out[recall_key(rc)] = {"ci95": ci, "reached": round(reached, 4)}
    return out


def bootstrap_mean(values, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> list:
    """95 % bootstrap interval of the mean of per-query ``values`` (``[lo, hi]``).

    >>> bootstrap_mean([1.0, 1.0, 1.0])
    [1.0, 1.0]
    """
    v = np.asarray(values, dtype=np.float64)
    W = _resample_weights(len(v), int(resamples), seed)
    lo, hi = np.quantile(W @ v / len(v), [0.025, 0.975])
    return [float(f"{lo:.6g}"), float(f"{hi:.6g}")]
