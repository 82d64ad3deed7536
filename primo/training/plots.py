"""The figure of a training run, like Fig. 2D/E of the paper.

For held-out pairs, the distribution of *simulated* yields per feature-distance bin (violins), for
the untrained encoder (left, after the predictor was seeded) and the trained one (right), plus a
histogram of the trained model's yields for similar and dissimilar pairs. A dashed line marks the
similarity threshold; the panel titles give the fraction of similar / dissimilar pairs reaching
yield 0.5.
"""

from __future__ import annotations

import numpy as np

from ..io import atomic_file

__all__ = ["plot_yield_separation", "distance_bins"]


def distance_bins(distances, threshold: float, n_bins: int = 8) -> np.ndarray:
    """Bin edges: quantiles of the distances, with the threshold always an edge."""
    d = np.asarray(distances, dtype=np.float64)
    if d.size == 0:
        return np.array([0.0, threshold, 2 * threshold])
    qs = np.quantile(d, np.linspace(0, 1, n_bins + 1))
    edges = np.unique(np.concatenate([qs, [threshold]]))
    edges[0] = min(edges[0], 0.0)
    edges[-1] = max(edges[-1], d.max()) + 1e-9
    return edges


def _violins(ax, distances, yields, threshold, edges, title,
             xlabel="feature distance of the pair"):
    d = np.asarray(distances)
    y = np.asarray(yields)
    groups, labels, pos = [], [], []
    for k in range(len(edges) - 1):
        m = (d >= edges[k]) & (d < edges[k + 1])
        if m.sum() >= 2:
            groups.append(y[m])
            labels.append(f"{edges[k]:.3g}-{edges[k + 1]:.3g}\n(n={int(m.sum())})")
            pos.append(k)
    if groups:
        parts = ax.violinplot(groups, positions=pos, showmedians=True, widths=0.8)
        for k, body in zip(pos, parts["bodies"]):
            body.set_facecolor("tab:green" if edges[k + 1] <= threshold + 1e-9 else "tab:gray")
            body.set_alpha(0.6)
        ax.set_xticks(pos)
        ax.set_xticklabels(labels, fontsize=6, rotation=45, ha="right")
    k_thr = int(np.searchsorted(edges, threshold, side="right")) - 1
    ax.axvline(k_thr + 0.5, color="k", ls="--", lw=0.8)
    ax.axhline(0.5, color="tab:red", ls=":", lw=0.8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("simulated yield")
    ax.set_title(title, fontsize=8)


def _summary(yields, similar):
    y = np.asarray(yields)
    s = np.asarray(similar, dtype=bool)
    fs = (y[s] >= 0.5).mean() if s.any() else np.nan
    fd = (y[~s] >= 0.5).mean() if (~s).any() else np.nan
    return f"similar >= 0.5: {fs:.1%} (n={int(s.sum())}); dissimilar >= 0.5: {fd:.2%} (n={int((~s).sum())})"


def plot_yield_separation(path, threshold: float, after: dict, before: dict | None = None,
                          title: str = "", xlabel: str = "feature distance of the pair") -> None:
    """Write the figure to ``path`` (PNG) atomically.

    Parameters
    ----------
    path : str or Path
    threshold : float
        Similarity threshold (feature distance).
    after, before : dict
        ``{"distance": array, "yield": array}`` of simulated held-out pairs for the trained and
        (optionally) the untrained encoder.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = [("untrained encoder (cf. Fig. 2D)", before)] if before is not None else []
    panels.append(("trained encoder (cf. Fig. 2E)", after))
    alld = np.concatenate([np.asarray(p["distance"]) for _, p in panels])
    edges = distance_bins(alld, threshold)
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5 * (len(panels) + 1), 4.2),
                             gridspec_kw={"width_ratios": [2] * len(panels) + [1.2]})
    for ax, (name, p) in zip(axes, panels):
        sim = np.asarray(p["distance"]) <= threshold
        _violins(ax, p["distance"], p["yield"], threshold, edges,
                 f"{name}\n{_summary(p['yield'], sim)}", xlabel)
    ax = axes[-1]
    y = np.asarray(after["yield"])
    sim = np.asarray(after["distance"]) <= threshold
    bins = np.linspace(0, 1, 21)
    if sim.any():
        ax.hist(y[sim], bins=bins, alpha=0.6, color="tab:green", density=True, label="similar")
    if (~sim).any():
        ax.hist(y[~sim], bins=bins, alpha=0.6, color="tab:gray", density=True, label="dissimilar")
    ax.axvline(0.5, color="tab:red", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("simulated yield (trained)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title(f"threshold {threshold:.4g}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
