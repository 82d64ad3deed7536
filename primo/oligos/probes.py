"""Query probes: ``query_seqs.csv`` (published layout) and an IDT order sheet.

``write_probes(ids, features, "probes.csv")`` writes three files side by side::

    probes.csv              ImageID,Sequence     probe with modifications, as in the published
                                                 query_seqs.csv: /5Biosg/UUUUUUUTT + DNA
    probes_idt_order.csv    Name,Sequence,Scale,Purification
                                                 IDT bulk-entry columns; the sequence in IDT codes:
                                                 /5Biosg/ (5' biotin) then /ideoxyU/ for each
                                                 deoxyuridine, e.g. /5Biosg//ideoxyU/.../ideoxyU/TT...
    probes_manifest.json    probe layout, count, order settings, provenance

IDT synthesis scales and the oligo lengths each accepts (standard DNA oligos; a probe counts its
deoxyuridine and spacer bases): ``25nm`` 15-60 nt, ``100nm`` 10-90 nt, ``250nm`` 5-100 nt, ``1um``
5-100 nt. With ``scale=None`` the smallest scale that takes the probe is chosen (``250nm`` for the
95-nt probe of the published layout); a scale that cannot take the probe is a usage error.
Purification codes: ``STD`` (desalting), ``PAGE``, ``HPLC``, ``IEHPLC``; HPLC is IDT's recommendation
for oligos with a biotin.

All three files are written under temporary names and renamed together once everything is valid.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from pathlib import Path

from ..errors import DataError, UsageError, shorten
from ..io import atomic_file, default_permissions, open_output, provenance
from .layout import ProbeLayout, to_idt_notation

__all__ = ["write_probes", "probe_paths", "IDT_SCALES", "IDT_PURIFICATIONS", "idt_scale_for"]

#: IDT standard DNA oligo synthesis scales -> accepted lengths (nt)
IDT_SCALES = {"25nm": (15, 60), "100nm": (10, 90), "250nm": (5, 100), "1um": (5, 100)}
IDT_PURIFICATIONS = ("STD", "PAGE", "HPLC", "IEHPLC")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def idt_scale_for(length: int) -> str:
    """The smallest IDT scale whose length range holds ``length`` nt."""
    for scale, (lo, hi) in IDT_SCALES.items():
        if lo <= length <= hi:
            return scale
    raise UsageError(f"a {length}-nt probe is beyond IDT's standard oligo scales "
                     f"(at most {max(h for _, h in IDT_SCALES.values())} nt)",
                     hint="order it as an Ultramer or shorten the feature region")


def probe_paths(out_path) -> dict:
    """The files :func:`write_probes` writes for ``out_path``."""
    out = Path(out_path)
    stem = out.name[:-4] if out.name.lower().endswith(".csv") else out.name
    return {"probes": out, "idt_order": out.with_name(f"{stem}_idt_order.csv"),
            "manifest": out.with_name(f"{stem}_manifest.json")}


def write_probes(query_ids, feature_seqs, out_path, layout: ProbeLayout | None = None,
                 scale: str | None = None, purification: str = "HPLC", *,
                 name_prefix: str = "primo_q_", extra_manifest: dict | None = None) -> dict:
    """Write probes for query documents (see the module docstring); return the paths written.

    Parameters
    ----------
    query_ids : sequence of str
        ImageIDs of the queries.
    feature_seqs : sequence of str
        their encoded feature regions (``layout.feature_length`` nt).
    out_path : path
        ``query_seqs.csv`` / ``probes.csv``; the IDT sheet and the manifest go beside it.
    layout : ProbeLayout
    scale : str or None
        IDT scale (``25nm``, ``100nm``, ``250nm``, ``1um``); None picks the smallest that fits.
    purification : str
        IDT purification code.
    extra_manifest : dict, optional
        more entries for the manifest (the model that encoded the queries, ...).
    name_prefix : str
        IDT names are ``<prefix><ImageID>`` with characters other than letters, digits, ``_ . -``
        replaced by ``_``.
    """
    layout = layout or ProbeLayout()
    ids = [("" if q is None else str(q)).strip() for q in query_ids]
    feats = list(feature_seqs)
    if len(ids) != len(feats):
        raise UsageError(f"{len(ids)} query IDs but {len(feats)} feature sequences")
    if not ids:
        raise DataError("no queries to write probes for", hint="give at least one query")
    purification = purification.upper()
    if purification not in IDT_PURIFICATIONS:
        raise UsageError(f"unknown IDT purification {purification!r}",
                         hint=f"use one of {', '.join(IDT_PURIFICATIONS)}")
    bases = len(re.sub(r"/[^/]*/", "", layout.prefix)) + layout.dna_length
    if scale is None:
        scale = idt_scale_for(bases)
    else:
        scale = scale.lower().replace(" ", "")
        if scale not in IDT_SCALES:
            raise UsageError(f"unknown IDT scale {scale!r}", hint=f"use one of {', '.join(IDT_SCALES)}")
        lo, hi = IDT_SCALES[scale]
        if not lo <= bases <= hi:
            raise UsageError(f"IDT scale {scale} takes {lo}-{hi} nt but the probe has {bases} nt",
                             hint=f"use scale {idt_scale_for(bases)}")
    seen: dict[str, int] = {}
    names: dict[str, int] = {}
    rows, order = [], []
    for i, (q, f) in enumerate(zip(ids, feats)):
        if not q or "\n" in q or "\r" in q:
            raise DataError(f"query ImageID {'is empty' if not q else shorten(q) + ' has a line break'}",
                            record=i, hint="every query needs a one-line ImageID")
        if q in seen:
            raise DataError(f"duplicate query ImageID {shorten(q)} (first at record {seen[q]})",
                            record=i, hint="give each query once")
        seen[q] = i
        probe = layout.probe(f, record=i)
        rows.append((q, probe))
        name = name_prefix + _NAME_BAD.sub("_", q)
        if name in names:
            raise DataError(f"query ImageIDs at records {names[name]} and {i} give the same IDT "
                            f"name {name!r}", record=i, hint="make the ImageIDs differ in letters "
                                                             "or digits")
        names[name] = i
        order.append((name, to_idt_notation(probe), scale, purification))
    paths = probe_paths(out_path)
    manifest = {
        "format": "primo-probes", "format_version": 1, "queries": len(rows),
        "files": {k: p.name for k, p in paths.items()},
        "probe_layout": layout.to_dict(),
        "order": {"provider": "IDT", "columns": ["Name", "Sequence", "Scale", "Purification"],
                  "scale": scale, "purification": purification, "bases_per_probe": bases,
                  "modifications": {"/5Biosg/": "5' biotin",
                                    "/ideoxyU/": "internal 2'-deoxyuridine (USER-cleavable)"}},
        **(extra_manifest or {}),
        "provenance": provenance(),
    }
    with contextlib.ExitStack() as stack:
        tmps = {k: stack.enter_context(atomic_file(p)) for k, p in paths.items()}
        with open_output(tmps["probes"]) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["ImageID", "Sequence"])
            w.writerows(rows)
        with open_output(tmps["idt_order"]) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["Name", "Sequence", "Scale", "Purification"])
            w.writerows(order)
        with open(tmps["manifest"], "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2)
            fh.write("\n")
        for tmp in tmps.values():
            default_permissions(tmp)
    return paths
