"""Oligo pools: build them from (ImageID, feature sequence) pairs, read them back, re-check them.

A pool directory (written by :class:`PoolWriter` / :func:`build_pool` / ``primo encode-db``)::

    POOL/
      database_seqs.csv.gz   ImageID,Sequence           full oligo 5'->3' (published primo layout)
      twist_order.csv        name,sequence              Twist oligo-pool order sheet
      barcode_order.csv.gz   index,ImageID              document index <-> ImageID
      qc_flags.csv.gz        index,ImageID,check,value,limit   one row per failed QC check
      qc_summary.json        QC counts, statistics, thresholds, provenance
      manifest.json          layout, primers, barcode scheme, counts, QC summary, provenance

CSV files have one header line and no comments; gzip files are written at a fast level with a zero
timestamp. ``twist_order.csv`` names each oligo ``<prefix>_<index>`` (letters, digits and ``_``
only, accepted by synthesis providers' sheets); ``barcode_order.csv.gz`` maps it back to the ImageID.

The whole directory is written under a temporary name and renamed when complete, so an error or a
crash never leaves a half-written pool.

:func:`read_pool` reads a pool directory or a bare ``database_seqs.csv.gz`` of the published data set
(default layout and barcode scheme). Each row must follow the layout exactly: the primers in place,
the barcode an exact codeword (each 5-mer a codebook word, the Reed-Solomon check symbols equal to
those recomputed from the data symbols). A row that does not is a :class:`~primo.errors.DataError`
naming the file and line. Document indices come from the barcodes.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> res = build_pool(["img0", "img1"], ["ACGT" * 20, "TGCA" * 20], os.path.join(d, "pool"))
>>> pool = read_pool(os.path.join(d, "pool"))
>>> len(pool), pool.indices.tolist(), pool.index_to_image_id(1)
(2, [0, 1], 'img1')
>>> import shutil; shutil.rmtree(d)
"""

from __future__ import annotations

# the pool lives in four modules: its format (file names), building, reading, re-checking; every
# name is importable from here, where it lived first
from .pool_build import FEATURE_COLUMNS, BuildResult, PoolWriter, build_pool, build_pool_from_csv
from .pool_check import check_pool, write_flags
from .pool_format import (DATABASE_FILE, DEFAULT_CHUNKSIZE, FORMAT, FORMAT_VERSION, MANIFEST_FILE,
                          ORDER_FILE, QC_FLAGS_FILE, QC_MODES, QC_SUMMARY_FILE, TWIST_FILE)
from .pool_read import Pool, _first_repeat, pool_info, read_pool  # noqa: F401

__all__ = ["PoolWriter", "BuildResult", "build_pool", "build_pool_from_csv", "Pool", "read_pool",
           "pool_info", "check_pool", "write_flags", "DATABASE_FILE", "MANIFEST_FILE", "QC_MODES",
           "TWIST_FILE", "ORDER_FILE", "QC_FLAGS_FILE", "QC_SUMMARY_FILE", "FORMAT", "FORMAT_VERSION",
           "DEFAULT_CHUNKSIZE", "FEATURE_COLUMNS"]
