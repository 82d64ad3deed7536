"""``primo analyze --pool POOL READS... -o OUT/``: sequencing reads -> counts -> search quality.

Writes into OUT/ (atomically: on any error OUT/ is left as it was):

* ``counts.csv.gz``: ImageID,Count for every pool document (published layout);
* ``stats.json``: reads per file, oligo orientation, barcode corrections, reads not counted by
  reason, paired-end agreement, excluded documents, throughput, provenance;
* with ``--distances`` (or ``-f/--features`` + ``-Q/--queries``): ``thresholds.csv`` (published layout)
  and ``recall.png`` (Fig. 3B); with ``--labels``: mAP@k in ``stats.json``;
* with distances, ``report.html`` (and ``report_files/``): the query's picture, the documents with
  the most reads (``--gallery``), Fig. 3A/B/C (see :mod:`primo.workflows.report`); pictures come
  from the feature stores (``primo extract`` records each image's file) or ``--images DIR``.

``--counts FILE`` starts from existing counts (e.g. the published ``sequencing/decoded`` files)
instead of reads. Read files are FASTQ (or FASTA), plain or compressed, detected by content;
``X_R1_Y``/``X_R2_Y`` names are paired automatically (``--paired``: files are R1 R2 R1 R2 ...;
``--single-end``: no pairing). See :mod:`primo.reads` for how reads are placed.
"""

from __future__ import annotations

import re

import click

from ..workflows.analyze_settings import SEARCH_SETTINGS, field_options
from ._options import (debug_option, mapper_from_options, overwrite_option, parallel_options,
                       queries_option, skip_bad_rows_option)
from ._settings import given_settings, settings_options

__all__ = ["cli"]

#: the settings' options, generated from :class:`primo.workflows.analyze_settings.AnalyzeSettings`
#: (defaults, bounds and help live there): reading and counting, then the search evaluation
_FIELDS = field_options()
_COUNT_FIELDS = [(f, m) for f, m in _FIELDS if f.name not in SEARCH_SETTINGS]
_SEARCH_FIELDS = [(f, m) for f, m in _FIELDS if f.name in SEARCH_SETTINGS]


class _Size(click.ParamType):
    """A byte count with an optional K/M/G suffix (binary units)."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[iI]?[bB]?\s*", str(value))
        if not m:
            self.fail(f"{value!r} is not a size such as 4M or 65536", param, ctx)
        mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
        return int(float(m.group(1)) * mult)


@click.command("analyze")
@click.argument("reads", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--pool", "pool", type=click.Path(), default=None,
              help="Pool directory (primo encode-db / primo pool build) or database_seqs.csv.gz.")
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Output directory (replaced only when complete).")
@click.option("--counts", "counts", type=click.Path(dir_okay=False), default=None,
              help="Start from an ImageID,Count file instead of reads.")
@click.option("--exclude", multiple=True, metavar="IMAGEID",
              help="Set this document's count to 0 (a known contaminant); repeatable.")
@settings_options(_COUNT_FIELDS, types={"chunksize": _Size()})
@click.option("--input-counts", type=click.Path(dir_okay=False), default=None,
              help="ImageID,Count of the input library (the pool sequenced without hybridization, "
                   "counted by primo analyze): rank documents by enrichment over it.")
@click.option("--distances", type=click.Path(dir_okay=False), default=None,
              help="The query's distances to every document (ImageID,Euclidean Distance).")
@click.option("-f", "--features", type=click.Path(dir_okay=False), default=None,
              help="Feature store of the database (HDF5); with -Q, distances are computed.")
@queries_option("queries", help="Feature store holding the query vector.")
@click.option("--query-id", default=None, help="Which vector of -Q/--queries (if it holds several).")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="ImageID,Label file: report mAP@k of the ranking by read count.")
@click.option("--query-label", default=None, help="The query's label (else looked up in --labels).")
@click.option("--name", default=None, help="Curve label in recall.png (default: the query).")
@settings_options(_SEARCH_FIELDS)
@click.option("--no-progress", is_flag=True, hidden=True,
              help="Deprecated: no progress bar (use the global -q: primo -q analyze ...).")
@click.option("--images", "images", type=click.Path(file_okay=False), default=None,
              help="report.html: folder of the documents' pictures, named <ImageID>.<ext> "
                   "(default: the image files the feature stores record).")
@parallel_options
@overwrite_option("analyze", output="out",
                  inputs=("pool", "reads", "counts", "input_counts", "distances",
                          "features", "queries", "labels"))
@skip_bad_rows_option("analyze")
@debug_option
@click.pass_context
def cli(ctx, reads, pool, out, counts, exclude, input_counts, distances, features, queries,
        query_id, labels, query_label, name, no_progress, images, processes, scheduler,
        **values):
    """Count the reads of every pool document and measure the search.

    READS are FASTQ files (plain or gzip, any number of lanes). Each read holds random nt
    (--prefix-length) and the oligo, forward or reverse-complemented; IP is located (up to
    --max-ip-mismatches), the barcode 5' of it is decoded with error and erasure correction and
    mapped to the pool's ImageID. Reads too
    short to hold IP (75-cycle runs) are placed by FP when forward. With as many files as
    processes, each process reads whole files (decompression on every core).

    With --input-counts (the same pool sequenced before hybridization), documents are ranked by
    their enrichment over the input instead of their raw read count, which divides out the
    synthesis and amplification spread of the pool; the curve and mAP@k then use that ranking.
    """
    from contextlib import nullcontext

    from .. import api

    given = given_settings(ctx, _FIELDS, values)
    # worker processes (or a cluster) only to decode reads
    with mapper_from_options(processes, scheduler) if reads else nullcontext() as mapper:
        result = api.analyze(
            pool, reads, out, counts=counts, distances=distances, features=features,
            queries=queries, query_id=query_id, input_counts=input_counts, labels=labels,
            query_label=query_label, name=name, images=images, exclude=exclude, mapper=mapper,
            show_progress=not no_progress, **given)
    rc, search = result.counts, result.search
    _report(rc, out, search)
    if no_progress:   # after the run, so that an error stays one line
        click.echo("primo: warning: --no-progress is deprecated and goes in the next release; use "
                   "the global -q (primo -q analyze ...)", err=True)
    return {"counts": rc.stats, "search": search}


def _report(rc, out, search):
    s = rc.stats
    if "reads" in s:
        n = s["reads"]
        frac = s["counted"] / max(s["fragments"], 1)
        rate = s.get("reads_per_second") or 0
        click.echo(f"counted {s['counted']:,} of {s['fragments']:,} "
                   f"{'fragments' if s.get('paired') else 'reads'} ({100 * frac:.1f}%) for "
                   f"{s['documents_seen']:,} of {len(rc):,} documents; {n:,} reads in "
                   f"{s['seconds']:.1f} s ({rate / 1e6:.2f} M reads/s)")
        short = s.get("reads_too_short_for_reverse", 0)
        if n and short > n / 2:
            need = s["min_read_length"]["reverse"]
            click.echo(f"note: {short:,} of {n:,} reads are shorter than {need} nt: in those only "
                       f"forward oligos hold the barcode, so about half of them cannot be placed"
                       f"{'' if s.get('paired') else ' (paired-end reads place every fragment)'}")
    if search and "proportion_at_recall" in search:
        p = search["proportion_at_recall"].get("0.5")
        how = " (ranked by enrichment over the input library)" if "ranking" in search else ""
        if p is not None:
            click.echo(f"{search['k']}-NN recall 50% at {100 * p:.3g}% of the database "
                       f"retrieved{how}")
    if search and "map_at_k" in search:
        click.echo("mAP@k: " + ", ".join(f"k={kk}: {v:.3f}" for kk, v in search["map_at_k"].items()))
    click.echo(f"wrote {out}", err=True)
