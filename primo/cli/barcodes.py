"""``primo barcodes encode|decode``: document indices <-> 30-nt barcodes, one per line, for pipes."""

from __future__ import annotations

import sys

import click

# the options' defaults are the library's (numpy, no TensorFlow)
from ..barcodes import BarcodeDecoder, BarcodeScheme
from ..barcodes.stream import decode_lines, encode_lines
from ..errors import UsageError
from ._options import SEED, debug_option, renamed_option
from ._settings import library_default

_SEED = library_default(BarcodeScheme, "seed")
_MAX_MISMATCHES = library_default(BarcodeDecoder, "max_distance")

_CHUNK_HELP = "Lines per vectorised step."


def _scheme_and_pool(seed, pool):
    if pool is not None:
        if seed is not None:
            raise UsageError("--barcode-seed and --pool both choose the barcode scheme",
                             hint="give only --pool: the pool's manifest holds its scheme")
        import numpy as np

        from ..oligos.pool import read_pool

        # the pool's scheme and its documents (barcodes and features are not kept)
        p = read_pool(pool, sequences=False)
        return p.scheme, np.asarray(p.indices, dtype=np.int64)
    return BarcodeScheme() if seed is None else BarcodeScheme(seed=seed), None


def _input(path):
    if path in (None, "-"):
        return sys.stdin, "<stdin>"
    from ..io import open_input

    return open_input(path, "input file"), path


def _common(f):
    f = click.option("--chunksize", type=click.IntRange(min=1),
                     default=library_default(encode_lines, "chunksize"), show_default=True,
                     hidden=True, help=_CHUNK_HELP)(f)
    f = click.option("--pool", "pool", metavar="POOL", default=None,
                     help="A pool directory (its manifest gives the barcode scheme) or a "
                          "database_seqs.csv.gz; only its documents are valid.")(f)
    f = renamed_option("--seed", "--barcode-seed", "seed", type=SEED)(f)
    f = click.option("--barcode-seed", "seed", type=SEED, default=None,
                     help=f"Permutation seed of the barcode scheme (default {_SEED}, the "
                          "published pool's).")(f)
    f = click.argument("input_path", metavar="[INPUT]", required=False, default="-")(f)
    return debug_option(f)


@click.group("barcodes")
def cli():
    """Document indices <-> 30-nt Reed-Solomon barcodes, one per line on stdin/stdout.

    \b
    echo 1600042 | primo barcodes encode         ->  CTGATAGTAGATCATAGATGACACGATGAT
    primo barcodes decode --pool POOL < bc.txt   ->  document index per line (empty: rejected)
    """


@cli.command("encode")
@_common
def encode(input_path, seed, pool, chunksize):
    """Read document indices (one per line) and write their barcodes.

    INPUT is a file (plain or gzip) or '-' for stdin (default).
    """
    scheme, indices = _scheme_and_pool(seed, pool)
    fh, name = _input(input_path)
    out = sys.stdout
    try:
        for block in encode_lines(fh, scheme, pool_indices=indices, chunksize=chunksize,
                                  path=name):
            out.write(block)
    finally:
        if fh is not sys.stdin:
            fh.close()
    out.flush()


@cli.command("decode")
@_common
@click.option("--status", "with_status", is_flag=True,
              help="Add a tab-separated second column: exact, corrected_error, "
                   "corrected_erasure, pool_resolved, or why the barcode was rejected.")
@click.option("--max-barcode-mismatches", "max_distance", type=click.IntRange(min=0, max=30),
              default=None, help="Reject answers needing more base substitutions than this "
                                 f"(default {_MAX_MISMATCHES}).")
@renamed_option("--max-distance", "--max-barcode-mismatches", "max_distance",
                type=click.IntRange(min=0, max=30))
def decode(input_path, seed, pool, chunksize, with_status, max_distance):
    """Read barcodes (one per line) and write document indices; an empty line when rejected.

    A barcode that cannot be decoded is rejected (empty output line, the reason with --status);
    an input line that is not a barcode at all (empty, not 30 nt, letters other than A C G T N)
    stops the run with an error naming its line.

    Corrects one wrong 5-mer, or two unreadable ones (not a codebook word, or containing N); with
    --pool it rejects documents not in the pool and resolves harder cases when exactly one pool
    document fits best. INPUT is a file (plain or gzip) or '-' for stdin (default).
    """
    scheme, indices = _scheme_and_pool(seed, pool)
    dec = BarcodeDecoder(scheme, pool_indices=indices,
                         max_distance=_MAX_MISMATCHES if max_distance is None else max_distance)
    fh, name = _input(input_path)
    out = sys.stdout
    try:
        for block in decode_lines(fh, dec, status=with_status, chunksize=chunksize, path=name):
            out.write(block)
    finally:
        if fh is not sys.stdin:
            fh.close()
    out.flush()
