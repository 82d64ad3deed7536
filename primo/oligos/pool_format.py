"""The pool directory's format, shared by its writer and its reader: the names of its files,
the manifest's format tag, the QC modes, and the keys that find repeated IDs.

The layout is described in :mod:`primo.oligos.pool` (every name here is importable from there).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DATABASE_FILE", "TWIST_FILE", "ORDER_FILE", "QC_FLAGS_FILE", "QC_SUMMARY_FILE",
           "MANIFEST_FILE", "FORMAT", "FORMAT_VERSION", "QC_MODES", "DEFAULT_CHUNKSIZE"]

DATABASE_FILE = "database_seqs.csv.gz"
TWIST_FILE = "twist_order.csv"
ORDER_FILE = "barcode_order.csv.gz"
QC_FLAGS_FILE = "qc_flags.csv.gz"
QC_SUMMARY_FILE = "qc_summary.json"
MANIFEST_FILE = "manifest.json"
FORMAT = "primo-pool"
FORMAT_VERSION = 1
QC_MODES = ("fail", "warn", "off")
DEFAULT_CHUNKSIZE = 50_000



def _hash_strings(strings) -> np.ndarray:
    """64-bit keys of strings (Python's string hash: stable within one process)."""
    return np.fromiter((hash(s) for s in strings), dtype=np.int64,
                       count=len(strings)).view(np.uint64)
