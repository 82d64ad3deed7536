"""Plots of search quality (matplotlib, Agg backend; imported only when a plot is drawn).

:func:`plot_recall` draws the paper's Fig. 3B: proportion of the database retrieved (y) against
k-nearest-neighbor recall (x), log-log, one line per curve (several queries or runs can share a
plot), with the *chance* line (random sampling: proportion = recall, dashed) and the *oracle* line
(exactly the nearest neighbors: proportion = recall x k / database size, dash-dot). Points with
zero recall cannot be drawn on a log axis and are left out.

PNG files are written atomically and carry the primo version and command in their text chunks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError

__all__ = ["plot_recall"]


def _as_xy(curve):
    """(name, recall fraction, proportion) of a RecallCurve, dict or tuple."""
    if hasattr(curve, "recall_fraction"):
        return curve.name, np.asarray(curve.recall_fraction), np.asarray(curve.proportion)
    if isinstance(curve, dict):
        return curve.get("name", ""), np.asarray(curve["recall"]), np.asarray(curve["proportion"])
    name, r, p = curve
    return name, np.asarray(r), np.asarray(p)


def plot_recall(curves, path, n_db: int, k: int = 100, title: str | None = None,
                chance: bool = True, oracle: bool = True, markers: bool = False,
                max_legend: int = 10) -> Path:
    """Fig. 3B-style plot of one or several retrieval curves.

    Parameters
    ----------
    curves : list
        :class:`~primo.evaluation.recall.RecallCurve` objects, or ``(name, recall_fraction,
        proportion)`` tuples, or dicts with ``name``, ``recall``, ``proportion``.
    path : path
        Output file (PNG, or any format matplotlib knows by extension).
    n_db : int
        Database size (for the oracle line).
    k : int
        Nearest neighbors (axis label, chance/oracle range).
    max_legend : int
        More curves than this (one per query of a ``primo simulate`` run, say) are drawn as
        thin lines of one colour under a single legend entry ("40 queries"), not one entry each.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..io import atomic_file, provenance
    from .recall import chance_curve, oracle_curve

    if n_db < 1:
        raise UsageError("plot_recall needs the database size (n_db >= 1)")
    path = Path(path)
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=120)
    try:
        curves = list(curves)
        many = len(curves) > max_legend
        for i, c in enumerate(curves):
            name, r, p = _as_xy(c)
            ok = (r > 0) & (p > 0)
            order = np.argsort(r[ok], kind="stable")
            style = dict(lw=1.5, label=str(name))
            if many:
                style = dict(lw=0.8, alpha=0.5, color="C0",
                             label=f"{len(curves)} queries" if i == 0 else "_nolegend_")
            ax.plot(r[ok][order], p[ok][order], marker="." if markers else None, **style)
        if chance:
            r, p = chance_curve(n_db, k)
            ax.plot(r, p, "k--", lw=1, label="chance")
        if oracle:
            r, p = oracle_curve(n_db, k)
            ax.plot(r, p, "k-.", lw=1, label="oracle")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(1.0 / k * 0.9, 1.05)
        ax.set_ylim(min(1.0 / n_db, 1.0) * 0.7, 1.3)
        ax.set_xlabel(f"{k}-nearest-neighbor recall")
        ax.set_ylabel("proportion of the database retrieved")
        if title:
            ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        prov = provenance()
        suffix = path.suffix or ".png"
        with atomic_file(path, suffix=suffix) as tmp:
            meta = None
            if suffix.lower() == ".png":
                meta = {"Software": f"primo {prov['primo_version']}",
                        "Description": prov["command"]}
            fig.savefig(tmp, metadata=meta)
    finally:
        plt.close(fig)
    return path
