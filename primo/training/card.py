"""The model card of a training run (``MODEL/card.json``): its sections assembled from the run.

The card's layout is specified in :mod:`primo.model_dir` (which writes, reads and checks it);
this module only gathers what a finished run knows into those sections.
"""

from __future__ import annotations

import math
import platform

import numpy as np

from .. import __version__
from ..constants import (BARCODE_LENGTH, FEATURE_LENGTH, FP, IP, OLIGO_LENGTH, PROBE_PREFIX, RP,
                         TOEHOLD)
from ..io import provenance
from ..simulation.capture import DEFAULT_CAPTURE
from .checkpoint import CHECKPOINT
from . import settings as _settings
from .settings import (DEFAULT_CHOICE, DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR, TrainSettings,
                       default_train_temperature)
from .steps import context_bases

__all__ = ["model_card", "quantiles", "simulator_settings"]


def simulator_settings(sim) -> dict:
    """What the card and the checkpoint record of a simulator (its ``to_dict()``)."""
    try:
        return dict(sim.to_dict())
    except AttributeError:
        return {"class": type(sim).__name__}


def model_card(run, s: TrainSettings, extra: dict, metrics: dict, selection: dict,
               timing: dict) -> dict:
    """The card's sections (without ``files`` and ``checksum``, which :func:`primo.model_dir.
    write_card` adds) for a finished run ``run`` (:class:`primo.training.trainer._Run`)."""
    return {
        "provenance": provenance(),
        "threshold": run.threshold_info,
        "layout": layout(),
        "features": {"dim": int(run.source.dim),
                     "extractor": (run.source.metadata or {}).get("extractor"),
                     "metadata": run.source.metadata or {}},
        "encoder": {"input_dim": int(run.source.dim), "hidden": s.hidden,
                    "length": FEATURE_LENGTH, "output_activation": s.output_activation,
                    "entropy": s.entropy, "gc_balance": s.gc_balance, "gc_target": s.gc_target,
                    "homopolymer": s.homopolymer, "max_run": s.max_run,
                    "scaling": {"kind": s.scaling, **extra["scaling"]},
                    "discretization": "argmax per position, channels A, C, G, T"},
        "predictor": _predictor_card(s),
        "objective": {"name": s.objective, "margin": s.margin_value,
                      "rank_candidates": s.rank_candidates if s.objective != "paper" else None,
                      "primo_default": {"objective": DEFAULT_OBJECTIVE,
                                        "predictor": DEFAULT_PREDICTOR,
                                        "neighbors": "auto",
                                        "train_temperature_c": _settings.DEFAULT_TRAIN_TEMPERATURE_C,
                                        "this_model": (s.objective, s.predictor, s.neighbors)
                                        == (DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR, "auto")
                                        and _is_default_temperature(run),
                                        "why": DEFAULT_CHOICE}},
        "training": {**s.to_dict(), "rounds_completed": run.metrics[-1]["round"],
                     "timing": timing, "mapper": run.mapper_desc()},
        "selection": selection,
        "capture_eval": _capture_card(run),
        "simulator": simulator_settings(run.sim),
        "hybridization": {"temperature_c": run.hybridization_c,
                          "training_temperature_c": float(getattr(run.sim, "temperature", math.nan)),
                          "note": "primo simulate ends the anneal at temperature_c; the "
                                  "simulator trained the predictor at training_temperature_c"},
        "data": extra["data"],
        "versions": versions(),
        "metrics": metrics,
        "outputs": {"metrics": "metrics.csv", "figure": "yields.png" if metrics.get("eval_pairs") else None,
                    "tensorboard": "logs", "checkpoint": CHECKPOINT},
    }


def versions() -> dict:
    v = {"primo": __version__, "python": platform.python_version(), "numpy": np.__version__}
    try:
        import keras
        import tensorflow as tf

        v["keras"] = keras.__version__
        v["tensorflow"] = tf.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        import RNA

        v["viennarna"] = RNA.__version__
    except ImportError:  # pragma: no cover
        v["viennarna"] = None
    return v


def layout() -> dict:
    return {"fp": FP, "ip": IP, "rp": RP, "feature_length": FEATURE_LENGTH,
            "barcode_length": BARCODE_LENGTH, "oligo_length": OLIGO_LENGTH,
            "toehold": TOEHOLD, "probe_prefix": PROBE_PREFIX,
            "target_strand": "feature region + RP", "query_strand": "revcomp(query features + RP[:toehold])"}


# --------------------------------------------------------------------------- the run


def _is_default_temperature(run) -> bool:
    t = getattr(run.sim, "temperature", None)
    return t is not None and abs(float(t) - default_train_temperature(run.hybridization_c)) < 1e-9


def _capture_card(run) -> dict | None:
    es = getattr(run, "capture_set", None)
    if es is None:
        return None
    s = run.s
    rows = [r for r in run.metrics if "capture_p50" in r]
    best = run.best_round()
    keys = ("capture_p50", "capture_p90", "capture_map10", "capture_probe_far")
    return {"documents": int(es.n_db), "queries": int(len(es.query_rows)), "k": int(es.k),
            "every": s.capture_eval_every, "refine": s.capture_eval_refine,
            "sample": s.capture_eval_sample, "capture_model": DEFAULT_CAPTURE,
            "protocol": getattr(run, "protocol", None),
            "map10_relevance": getattr(run, "capture_relevance", None),
            "rounds": {int(r["round"]): {k: r.get(k) for k in keys} for r in rows},
            "best": None if best is None else {"round": int(best["round"]),
                                               **{k: best.get(k) for k in keys}}}


def _predictor_card(s: TrainSettings) -> dict:
    if s.predictor == "scan":
        from ..constants import RP as _rp

        return {"kind": "scan", "energy_head": True,
                "context": {"target": _rp, "query": _rp[:TOEHOLD]},
                "energy_weight": s.energy_weight,
                "inputs": "target one-hot, query one-hot (same sense)",
                "output": ["yield of target + RP with revcomp(query + RP[:6])",
                           "binding free energy (kcal/mol) at the hybridization temperature"]}
    return {"kind": "local-match", "window": s.window, "pool_size": s.pool_size,
            "conv_filters": s.conv_filters, "conv_width": s.conv_width,
            "global_pool": s.global_pool, "context": context_bases(s.context),
            "energy_head": s.uses_energies,
            "energy_weight": s.energy_weight if s.uses_energies else None,
            "inputs": "target one-hot, query one-hot (same sense)",
            "output": "yield of target + RP with revcomp(query + RP[:6])"}


def quantiles(y) -> dict:
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return {}
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    return {f"q{int(q * 100):02d}": float(v) for q, v in zip(qs, np.quantile(y, qs))}
