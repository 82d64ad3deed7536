"""Re-checking a pool: :func:`check_pool` runs the manufacturability QC again over a pool
read back (the thresholds its manifest recorded), :func:`write_flags` writes the flags.

Every name here is importable from :mod:`primo.oligos.pool`.
"""

from __future__ import annotations

import csv

from ..dna import BYTE_CODE as _CODE
from ..errors import UsageError
from ..io import open_output
from .pool_format import DEFAULT_CHUNKSIZE
from .pool_read import Pool, read_pool
from .qc import PoolQC, QCConfig, QCReport, oligo_metrics

__all__ = ["check_pool", "write_flags"]


def _metrics_task(args):
    codes, layout, config = args
    return oligo_metrics(codes, layout, config)


def check_pool(pool, *, config: QCConfig | None = None, chunksize: int = DEFAULT_CHUNKSIZE,
               mapper=None, max_flags: int | None = 1000) -> QCReport:
    """Re-run QC over a pool (a :class:`Pool` or a path).

    The thresholds default to those recorded in the pool's manifest (else :class:`QCConfig`'s).
    ``mapper`` (:mod:`primo.parallel`) computes the per-chunk metrics; duplicates are found in this
    process.
    """
    if not isinstance(pool, Pool):
        pool = read_pool(pool, allow_duplicates=True)
    if pool.features is None:
        raise UsageError("check_pool needs a pool read with sequences=True")
    if config is None:
        config = QCConfig.from_dict((pool.manifest.get("qc") or {}).get("config"))
    if chunksize < 1:
        raise UsageError(f"chunksize must be at least 1, got {chunksize}")
    qc = PoolQC(pool.layout, config, max_flags=max_flags)
    starts = range(0, len(pool), chunksize)

    def tasks():
        for a in starts:
            yield (_CODE[pool.oligo_codes(a, a + chunksize)], pool.layout, config)

    if mapper is None:
        results = map(_metrics_task, tasks())
    else:
        results = mapper.imap(_metrics_task, tasks())
    for a, m in zip(starts, results):
        b = a + chunksize
        qc.check(None, pool.indices[a:b], pool.image_ids[a:b], metrics=m)
    return qc.finish()


def write_flags(report: QCReport, path) -> None:
    """Write a report's flags as CSV (``index,ImageID,check,value,limit``), atomically."""
    from ..io import atomic_file

    with atomic_file(path, suffix=".gz" if str(path).endswith(".gz") else "") as tmp:
        with open_output(tmp) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["index", "ImageID", "check", "value", "limit"])
            w.writerows(report.flags)
