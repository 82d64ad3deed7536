"""Design query probes: ``primo query --model MODEL/ (--image IMG... | --features Q.h5) -o probes.csv``.

Query images are turned into features with the extractor recorded in the model card (the same one
that made the training and database features; ``--weights`` overrides where its weights come from),
encoded by the model's encoder, and written by :func:`primo.oligos.probes.write_probes`:

* ``probes.csv`` — ``ImageID,Sequence`` (published ``query_seqs.csv`` layout: the probe with its
  modifications, 5' biotin and deoxy-U spacer, then the reverse complement of the query feature
  region + the first 6 nt of RP);
* ``probes_idt_order.csv`` — the IDT order sheet (name, sequence, scale, purification);
* ``probes_manifest.json`` — the model, the feature regions, the layout and provenance, and the
  hybridization its figures were measured under (``hybridization_protocol``,
  :func:`lab_protocol`: the thermocycler program, the probe and pool concentrations, the washes).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["query_features", "design_probes", "lab_protocol", "ProbeResult"]


@dataclasses.dataclass
class ProbeResult:
    """What :func:`design_probes` wrote: the probe files and each query's feature region."""

    #: the files written (``probes``: probes.csv, then the IDT order sheet and the manifest)
    paths: dict
    #: the query IDs, in the order of the probes
    query_ids: list
    #: each query's 80-nt feature region (the probe is the reverse complement of it + ``GTCCTC``)
    features: list
    #: the hybridization to run with them (:func:`lab_protocol`)
    protocol: dict = dataclasses.field(default_factory=dict)


def query_features(model, *, features=None, images=None, query_ids=None, weights=None,
                   ids: str = "stem", batch_size: int | None = None):
    """(query IDs, feature matrix) from a feature store or from image files."""
    from ..features.store import FeatureStore

    if (features is None) == (not images):
        raise UsageError("give the queries either as `features` (a feature store) or as `images`")
    if images:
        from ..features.extract import extract_images

        extractor = model.extractor
        if not extractor:
            raise UsageError(f"the model {model.path} does not record the feature extractor it "
                             "was trained with", hint="extract the query features yourself and "
                                                      "pass them as `features`")
        card_meta = (model.card.get("features") or {}).get("metadata") or {}
        if weights is None:
            weights = card_meta.get("weights")
            if weights not in (None, "imagenet", "none", "bundled") and not Path(str(weights)).exists():
                weights = None
        opts = card_meta.get("extractor_options") or {}  # input size, range, invert of the training features
        with tempfile.TemporaryDirectory(prefix="primo-query-") as tmp:
            store_path = Path(tmp) / "queries.h5"
            extract_images(list(images), store_path, extractor, weights=_weights_arg(weights),
                           ids=ids, batch_size=batch_size, input_size=opts.get("input_size"),
                           input_range=opts.get("input_range"), invert=bool(opts.get("invert")))
            with FeatureStore.open(store_path) as st:
                qids, X = np.asarray(st.ids), st.read(0, st.n)
                meta = st.metadata
            model.check_features(X.shape[1], meta)
    else:
        with FeatureStore.open(features) as st:
            if st.n == 0:
                raise DataError("the query feature store holds no queries", path=features,
                                hint="extract query features with `primo extract`")
            model.check_features(st.dim, st.metadata, path=features)
            if query_ids:
                qids = np.asarray([str(q) for q in query_ids])
                X = st.read_ids(list(qids))
            else:
                qids, X = np.asarray(st.ids), st.read(0, st.n)
    if len(qids) == 0:
        raise DataError("no queries", hint="give at least one query image or feature vector")
    return qids, np.asarray(X, dtype=np.float32)


def lab_protocol(model) -> dict:
    """The hybridization a lab runs with ``model``'s probes: the protocol ``primo simulate``
    simulates by default for it (:meth:`primo.simulation.capture.Protocol.from_options` with the
    card's hybridization and training temperatures: the ``auto`` ramp program), as steps a
    thermocycler is programmed with. The figures of the model's results were measured under it;
    ``text`` says it in one line."""
    from ..model_dir import training_temperature
    from ..simulation.capture import DEFAULT_CAPTURE, Protocol

    p = Protocol.from_options(DEFAULT_CAPTURE, hybridization_c=model.hybridization_c,
                              training_c=training_temperature(model.card))
    t = p.ramp()
    minutes = p.minutes_at(t)
    steps, start = [], 0
    for i in range(1, len(t) + 1):      # runs of equal minutes per hold
        if i == len(t) or minutes[i] != minutes[start]:
            steps.append({"from_c": float(t[start]), "to_c": float(t[i - 1]),
                          "step_c": float(p.step_c), "minutes_per_step": float(minutes[start])})
            start = i
    hours = float(minutes.sum()) / 60.0
    ramp = ", ".join(f"{s['from_c']:g} -> {s['to_c']:g} °C at {s['minutes_per_step']:g} min per "
                     f"{s['step_c']:g} °C" for s in steps)
    text = (f"probe {p.probe_nm:g} nM with the pool at {p.pool_nm:g} nM exposed feature regions, "
            f"{p.na_molar:g} M Na+; {ramp} ({hours:g} h); bead capture at {p.anneal_to:g} °C, "
            f"then {p.washes} wash(es) of {p.wash_minutes:g} min")
    return {"program": p.ramp_program or "uniform", "steps": steps, "ramp_hours": hours,
            "hybridization_c": float(p.anneal_to), "probe_nm": float(p.probe_nm),
            "pool_nm": float(p.pool_nm), "na_molar": float(p.na_molar), "washes": int(p.washes),
            "wash_minutes": float(p.wash_minutes), "text": text,
            "source": "primo simulate's default protocol for this model (--ramp-program auto)"}


def _weights_arg(w):
    if w in (None, "bundled"):
        return None
    return w


def design_probes(model, out_path, *, features=None, images=None, query_ids=None, weights=None,
                  ids: str = "stem", scale: str | None = None, purification: str = "HPLC",
                  batch_size: int | None = None) -> ProbeResult:
    """Encode queries and write the probe files (:func:`primo.oligos.probes.write_probes`)."""
    from ..model_dir import PrimoModel, load_model
    from ..oligos.layout import ProbeLayout
    from ..features.store import skipped_rows
    from ..oligos.probes import write_probes

    if not isinstance(model, PrimoModel):
        model = load_model(model)
    out_path = Path(out_path)
    if out_path.is_dir():
        raise UsageError(f"{out_path} is a directory", hint="give a file name such as probes.csv")
    qids, X = query_features(model, features=features, images=images, query_ids=query_ids,
                             weights=weights, ids=ids, batch_size=batch_size)
    seqs = model.encode_features(X)
    layout_d = model.card.get("layout") or {}
    layout = ProbeLayout(rp=layout_d.get("rp", ProbeLayout().rp),
                         feature_length=int(layout_d.get("feature_length", 80)))
    extra = {"model": {"path": str(model.path), "card_checksum": model.card.get("checksum"),
                       "extractor": model.extractor},
             "query_source": str(features) if features is not None else [str(i) for i in images],
             "feature_regions": dict(zip(map(str, qids), seqs)),
             "skipped_rows": skipped_rows(),   # NaN / inf queries left out (--skip-bad-rows)
             "hybridization_protocol": lab_protocol(model)}
    paths = write_probes(list(qids), seqs, out_path, layout=layout, scale=scale,
                         purification=purification, extra_manifest=extra)
    return ProbeResult(paths=paths, query_ids=list(map(str, qids)), features=list(seqs),
                       protocol=extra["hybridization_protocol"])
