"""``primo pool``: build, check and inspect oligo pools.

\b
primo pool build PAIRS.csv -o POOL/     (ImageID, feature sequence) rows -> pool directory
primo pool check POOL                   re-run manufacturability QC, print the summary
primo pool info POOL                    what a pool holds (layout, primers, barcodes, QC)

POOL is a pool directory or a bare database_seqs.csv.gz.
"""

from __future__ import annotations

import json

import click

# no TensorFlow in any: the options' defaults are theirs
from ..barcodes import BarcodeScheme
from ..oligos.layout import OligoLayout
from ..oligos.pool_build import build_pool_from_csv
from ..oligos.pool_check import check_pool
from ._options import (SEED, chunk_rows_option, debug_option, overwrite_option, parallel_options,
                       print_qc_summary, qc_config, qc_mode_option, qc_options)
from ._settings import library_default

__all__ = ["cli"]


@click.group("pool")
def cli():
    """Build, check and inspect oligo pools."""


@cli.command("build")
@click.argument("pairs", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Pool directory to write (replaced only once the new one is complete).")
@click.option("--id-column", default=library_default(build_pool_from_csv, "id_column"),
              show_default=True, help="Column of ImageIDs.")
@click.option("--feature-column", default=None,
              help="Column of feature sequences [default: first of Features, Feature, "
                   "FeatureSequence, Sequence].")
@click.option("--index-column", default=None,
              help="Column of document indices [default: 0..N-1 in file order].")
@click.option("--fp", default=library_default(OligoLayout, "fp"), show_default=True,
              help="Forward primer.")
@click.option("--ip", default=library_default(OligoLayout, "ip"), show_default=True,
              help="Internal primer.")
@click.option("--rp", default=library_default(OligoLayout, "rp"), show_default=True,
              help="Reverse primer (as in the oligo).")
@click.option("--feature-length", type=click.IntRange(min=1),
              default=library_default(OligoLayout, "feature_length"), show_default=True,
              help="Feature region length (nt).")
@click.option("--barcode-seed", type=SEED, default=library_default(BarcodeScheme, "seed"),
              show_default=True,
              help="Seed of the index -> ID permutation (42 = the published pool).")
@qc_mode_option()
@qc_options
@click.option("--name-prefix", default=library_default(build_pool_from_csv, "name_prefix"),
              show_default=True,
              help="Oligo names in the Twist sheet are PREFIX_<index>.")
@chunk_rows_option(library_default(build_pool_from_csv, "chunksize"), "Documents (CSV rows)")
@overwrite_option("pool build", output="out", inputs=("pairs",))
@debug_option
def build(pairs, out, id_column, feature_column, index_column, fp, ip, rp, feature_length,
          barcode_seed, qc, gc_min, gc_max, max_homopolymer, primer_match, max_pool_size,
          name_prefix, chunksize):
    """Build a pool directory from a CSV of (ImageID, feature sequence) rows.

    Writes POOL/database_seqs.csv.gz, twist_order.csv, barcode_order.csv.gz, qc_flags.csv.gz,
    qc_summary.json and manifest.json.
    """
    layout = OligoLayout(fp=fp, ip=ip, rp=rp, feature_length=feature_length)
    scheme = BarcodeScheme(seed=barcode_seed)
    config = qc_config(None, gc_min, gc_max, max_homopolymer, primer_match, max_pool_size)
    res = build_pool_from_csv(pairs, out, id_column=id_column, feature_column=feature_column,
                              index_column=index_column, layout=layout, scheme=scheme,
                              qc=qc, qc_config=config, chunksize=chunksize,
                              name_prefix=name_prefix)
    click.echo(f"wrote {res.n_documents:,} oligos ({layout.length} nt) to {res.path}", err=True)
    if res.report is not None:
        print_qc_summary(res.report.summary())
        if res.report.failed:
            click.echo(f"primo pool build: warning: {res.report.message()} "
                       f"(details in {res.path / 'qc_flags.csv.gz'})", err=True)
    return res


@cli.command("check")
@click.argument("pool", type=click.Path())
@qc_options
@click.option("--flags", "flags_out", type=click.Path(dir_okay=False), default=None,
              help="Also write every flagged check to this CSV (index,ImageID,check,value,limit).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@chunk_rows_option(library_default(check_pool, "chunksize"), "Oligos (pool rows)")
@parallel_options
@overwrite_option("pool check", output="flags_out", file=True, inputs=("pool",),
                  help="Replace an existing --flags file (never a file of the pool it checks).")
@debug_option
def check(pool, gc_min, gc_max, max_homopolymer, primer_match, max_pool_size, flags_out, as_json,
          chunksize, processes, scheduler):
    """Re-run manufacturability QC over POOL and print the summary.

    Thresholds default to those recorded in the pool's manifest. Exit status 1 when QC fails.
    """
    from ..errors import DataError
    from ..oligos.pool import read_pool, write_flags
    from ..oligos.qc import QCConfig
    from ._options import mapper_from_options

    p = read_pool(pool, allow_duplicates=True)
    base = QCConfig.from_dict((p.manifest.get("qc") or {}).get("config"))
    config = qc_config(base, gc_min, gc_max, max_homopolymer, primer_match, max_pool_size)
    with mapper_from_options(processes, scheduler) as mapper:
        report = check_pool(p, config=config, chunksize=chunksize, mapper=mapper,
                            max_flags=None if flags_out else 1000)
    if flags_out:
        write_flags(report, flags_out)
    summary = report.summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        print_qc_summary(summary)
    if report.failed:
        raise DataError(report.message(), path=pool,
                        hint="see --flags FILE for every flagged oligo")
    return report


@cli.command("info")
@click.argument("pool", type=click.Path())
@click.option("--verify", is_flag=True,
              help="Read every row of a pool directory too (a bare file is always read).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@debug_option
def info(pool, verify, as_json):
    """Describe POOL: documents, layout, primers, barcode scheme, QC, provenance.

    For a pool directory the counts come from its manifest unless --verify is given.
    """
    from pathlib import Path

    from ..oligos.pool import pool_info

    d = pool_info(Path(pool), verify=verify)
    if as_json:
        click.echo(json.dumps(d, indent=2))
        return d
    from ..oligos.layout import OligoLayout

    lay = OligoLayout.from_dict(d["layout"])
    click.echo(f"{d['pool']}: {d['kind']}")
    how = "" if d.get("verified") else ", as the manifest says (--verify counts the rows)"
    click.echo(f"  documents   {d['documents']:,} (indices {d['index_min']:,}..{d['index_max']:,})"
               f"{how}")
    click.echo(f"  oligo       {lay.length} nt = FP {len(lay.fp)} + barcode {lay.barcode_length} + "
               f"IP {len(lay.ip)} + feature {lay.feature_length} + RP {len(lay.rp)}")
    click.echo(f"  primers     FP {lay.fp}  IP {lay.ip}  RP {lay.rp}")
    bc = d["barcodes"]
    click.echo(f"  barcodes    RS(6,4) over GF(64), permutation seed {bc['seed']}"
               f"{' (published scheme)' if bc['published_scheme'] else ''}")
    if d["qc"]:
        q = d["qc"]
        if q.get("skipped"):
            click.echo("  QC          not run when built")
        else:
            click.echo(f"  QC          {'passed' if q.get('passed') else 'failed'} when built: "
                       f"{q.get('documents_failed', 0):,} flagged "
                       f"{json.dumps(q.get('checks_failed') or {})}")
    if d["provenance"]:
        pv = d["provenance"]
        click.echo(f"  written     {pv.get('created')} by primo {pv.get('primo_version')}: "
                   f"{pv.get('command')}")
    return d
