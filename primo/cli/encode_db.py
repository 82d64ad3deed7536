"""``primo encode-db --model MODEL/ --features F.h5 -o POOL/``: the database as an oligo pool.

Encodes every document of the feature store with the model's encoder (streamed in chunks) and writes
the pool directory: database_seqs.csv.gz (published layout), the Twist order sheet,
barcode_order.csv.gz, QC flags and summary, manifest.json. Document index = row order in the store.
With ``--qc fail`` (default) a pool with manufacturability failures is not written.
"""

from __future__ import annotations

import click

# no TensorFlow in either: the options' defaults are theirs
from ..barcodes import BarcodeScheme
from ..workflows.encode_db import encode_database
from ._options import (SEED, chunk_rows_option, database_features_option, debug_option,
                       model_dir_option, overwrite_option, print_qc_summary, qc_config,
                       qc_mode_option, qc_options, skip_bad_rows_option)
from ._settings import library_default

__all__ = ["cli"]


@click.command("encode-db")
@model_dir_option
@database_features_option()
@click.option("--output", "-o", required=True, type=click.Path(), help="Pool directory to write.")
@qc_mode_option()
@qc_options
@click.option("--barcode-seed", type=SEED, default=library_default(BarcodeScheme, "seed"),
              show_default=True,
              help="Seed of the index -> ID permutation (42 = the published pool).")
@click.option("--name-prefix", default=library_default(encode_database, "name_prefix"),
              show_default=True,
              help="Prefix of oligo names in the Twist sheet.")
@chunk_rows_option(library_default(encode_database, "chunksize"),
                   "Documents (feature-store rows) encoded and written")
@click.option("--batch-size", type=click.IntRange(min=1),
              default=library_default(encode_database, "batch_size"), show_default=True,
              help="Encoder batch size.")
@overwrite_option("encode-db", inputs=("model_dir", "features"))
@skip_bad_rows_option("encode-db")
@debug_option
def cli(model_dir, features, output, qc, gc_min, gc_max, max_homopolymer, primer_match,
        max_pool_size, barcode_seed, name_prefix, chunksize, batch_size):
    """Encode a feature store as an oligo pool ready to order."""
    cfg = qc_config(None, gc_min, gc_max, max_homopolymer, primer_match, max_pool_size)
    res = encode_database(model_dir, features, output, chunksize=chunksize, batch_size=batch_size,
                          qc=qc, qc_config=cfg, scheme=BarcodeScheme(seed=barcode_seed),
                          name_prefix=name_prefix)
    click.echo(f"wrote {res.n_documents:,} oligos to {res.path}", err=True)
    if res.report is not None:
        print_qc_summary(res.report.summary())
    return res
