"""Database oligos, query probes, synthesis order files and manufacturability QC.

* :mod:`primo.oligos.layout`: :class:`OligoLayout` (FP | barcode | IP | feature | RP) and
  :class:`ProbeLayout` (biotin + deoxy-U spacer + reverse complement of feature + RP toehold).
* :mod:`primo.oligos.pool`: :class:`PoolWriter` / :func:`build_pool` write a pool directory
  (``database_seqs.csv.gz``, Twist order sheet, ``barcode_order.csv.gz``, QC report, manifest);
  :func:`read_pool` reads it (or a bare published ``database_seqs.csv.gz``) back.
* :mod:`primo.oligos.probes`: :func:`write_probes` (``query_seqs.csv`` + IDT order sheet).
* :mod:`primo.oligos.qc`: :class:`QCConfig`, :class:`PoolQC`, :class:`QCReport`.
"""

from .layout import OligoLayout, ProbeLayout, check_primers, primer_tm, to_idt_notation
from .pool import (BuildResult, Pool, PoolWriter, build_pool, build_pool_from_csv, check_pool,
                   read_pool, write_flags)
from .probes import write_probes
from .qc import PoolQC, QCConfig, QCFlag, QCReport, check_sequences

__all__ = [
    "OligoLayout", "ProbeLayout", "check_primers", "primer_tm", "to_idt_notation",
    "PoolWriter", "BuildResult", "build_pool", "build_pool_from_csv", "Pool", "read_pool",
    "check_pool", "write_flags", "write_probes",
    "QCConfig", "QCFlag", "QCReport", "PoolQC", "check_sequences",
]
