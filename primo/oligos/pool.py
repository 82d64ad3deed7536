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

import csv
import dataclasses
import itertools
import json
import re
from pathlib import Path

import numpy as np

from ..barcodes import BarcodeScheme
from ..barcodes.parse import BarcodeParser
from ..dna import BYTE_CODE as _CODE
from ..dna import validate_sequence
from ..errors import DataError, UsageError, shorten
from ..io import (atomic_dir, default_permissions, gc_paused, open_input, open_output, path_inside,
                  provenance, read_csv_rows, spreadsheet_safe, write_json)
from .layout import OligoLayout
from .qc import PoolQC, QCConfig, QCReport, KeyIndex, oligo_metrics

__all__ = ["PoolWriter", "BuildResult", "build_pool", "build_pool_from_csv", "Pool", "read_pool",
           "pool_info", "check_pool", "write_flags", "DATABASE_FILE", "MANIFEST_FILE", "QC_MODES"]

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

_UPPER = np.arange(256, dtype=np.uint8)
_UPPER[ord("a"):ord("z") + 1] -= 32
_NAME_OK = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NEEDS_QUOTES = re.compile(r'[",\r\n]|^\s|\s$')


def _hash_strings(strings) -> np.ndarray:
    """64-bit keys of strings (Python's string hash: stable within one process)."""
    return np.fromiter((hash(s) for s in strings), dtype=np.int64,
                       count=len(strings)).view(np.uint64)


@dataclasses.dataclass
class BuildResult:
    """What :class:`PoolWriter` / :func:`build_pool` wrote."""

    path: Path
    n_documents: int
    report: QCReport | None
    manifest: dict


class PoolWriter:
    """Write a pool directory chunk by chunk (bounded memory).

    Parameters
    ----------
    out_dir : path
        the pool directory; written under a temporary name and renamed on :meth:`close`.
    layout : OligoLayout
    scheme : BarcodeScheme
    qc : {"warn", "fail", "off"}
        ``"fail"``: :meth:`close` raises :class:`~primo.errors.DataError` (and writes nothing) when
        QC fails; ``"warn"``: the pool is written and the report returned; ``"off"``: no QC.
    qc_config : QCConfig
    name_prefix : str
        prefix of the oligo names in the Twist order sheet (``<prefix>_<index>``).
    source : path, optional
        the input file, named in error messages.
    extra_manifest : dict, optional
        more top-level entries for ``manifest.json`` (e.g. the model and feature store a pool was
        encoded from); they may not replace the entries the writer sets.

    Use as a context manager; call :meth:`add` once per chunk::

        with PoolWriter("pool/") as w:
            for ids, feats in chunks:
                w.add(ids, feats)
        w.result.report.summary()
    """

    def __init__(self, out_dir, layout: OligoLayout | None = None,
                 scheme: BarcodeScheme | None = None, qc: str = "warn",
                 qc_config: QCConfig | None = None, *, name_prefix: str = "primo", source=None,
                 extra_manifest: dict | None = None, command: str = "pool build"):
        self.out_dir = Path(out_dir)
        self.command = command  # recorded in the directory's marker (primo.io.atomic_dir)
        self.layout = layout or OligoLayout()
        self.scheme = scheme or BarcodeScheme()
        if qc not in QC_MODES:
            raise UsageError(f"qc must be one of {', '.join(QC_MODES)}, got {qc!r}")
        self.qc_mode = qc
        self.qc_config = qc_config or QCConfig()
        if self.layout.barcode_length != self.scheme.length:
            raise UsageError(f"the layout has {self.layout.barcode_length}-nt barcodes but the "
                             f"barcode scheme makes {self.scheme.length}-nt barcodes")
        if not _NAME_OK.match(name_prefix):
            raise UsageError(f"oligo name prefix {name_prefix!r} must start with a letter and "
                             "contain only letters, digits and _")
        self.name_prefix = name_prefix
        self.source = source
        self.extra_manifest = dict(extra_manifest or {})
        self.result: BuildResult | None = None
        self._qc = PoolQC(self.layout, self.qc_config) if qc != "off" else None
        self._ids = KeyIndex()
        self._idx = KeyIndex()
        self._n = 0
        self._next_default = 0
        self._idx_min = None
        self._idx_max = None
        self._in_order = True
        self._lines: list[np.ndarray] = []
        self._ctx = None
        self._files = []
        self._aborted = False

    # ---- lifecycle ---------------------------------------------------------------------------
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort(exc_type, exc, tb)
        return False

    def open(self):
        if self._aborted:
            raise UsageError("this pool writer was aborted after an error; start a new one")
        if self._ctx is not None:
            return self
        self._ctx = atomic_dir(self.out_dir, command=self.command)
        self._tmp = self._ctx.__enter__()
        try:
            self._db = self._open_csv(DATABASE_FILE, ["ImageID", "Sequence"])
            self._db_fh = self._files[-1]
            self._twist = self._open_csv(TWIST_FILE, ["name", "sequence"])
            self._twist_fh = self._files[-1]
            self._order = self._open_csv(ORDER_FILE, ["index", "ImageID"])
            self._order_fh = self._files[-1]
            self._flags = self._open_csv(QC_FLAGS_FILE, ["index", "ImageID", "check", "value",
                                                         "limit"])
        except BaseException as e:
            self.abort(type(e), e, e.__traceback__)
            raise
        return self

    def _open_csv(self, name, header):
        fh = open_output(self._tmp / name)
        self._files.append(fh)
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        return w

    def _close_files(self):
        for fh in self._files:
            if not fh.closed:
                fh.close()
        self._files = []

    def abort(self, exc_type=None, exc=None, tb=None):
        """Discard everything written (the output directory is not created)."""
        self._aborted = True
        if self._ctx is None:
            return
        try:
            self._close_files()
        finally:
            ctx, self._ctx = self._ctx, None
            err = exc if exc is not None else RuntimeError("pool writing aborted")
            try:
                ctx.__exit__(type(err), err, tb)
            except BaseException as e:  # atomic_dir re-raises the exception it was given
                if e is not err:
                    raise

    # ---- adding documents --------------------------------------------------------------------
    def _where(self, i, lines):
        if lines is not None:
            return {"path": self.source, "line": int(lines[i])}
        return {"path": self.source, "record": self._n + i}

    def add(self, image_ids, feature_seqs, indices=None, *, lines=None) -> np.ndarray:
        """Add a chunk of documents; return their document indices.

        Parameters
        ----------
        image_ids : sequence of str
        feature_seqs : sequence of str
            feature regions (``layout.feature_length`` nt of A, C, G, T).
        indices : sequence of int, optional
            document indices (default: continue 0, 1, 2, ... in the order given).
        lines : sequence of int, optional
            input line numbers of the rows, for error messages (else records are named).
        """
        if self._ctx is None:
            self.open()
        try:
            return self._add(image_ids, feature_seqs, indices, lines)
        except BaseException as e:
            self.abort(type(e), e, e.__traceback__)
            raise

    def _add(self, image_ids, feature_seqs, indices, lines):
        ids = [s if isinstance(s, str) else ("" if s is None else str(s)) for s in image_ids]
        feats = [f.strip() if isinstance(f, str) else f for f in feature_seqs]
        n = len(ids)
        if len(feats) != n:
            raise UsageError(f"{n} ImageIDs but {len(feats)} feature sequences in one chunk")
        if lines is not None and len(lines) != n:
            raise UsageError("lines must have one entry per document")
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        rec = np.arange(self._n, self._n + n, dtype=np.int64)
        ids = self._check_ids(ids, lines, rec)
        if lines is not None:
            self._lines.append(np.asarray(lines, dtype=np.int64))
        idx = self._check_indices(indices, lines, rec)
        fbytes = self._feature_bytes(feats, lines)
        # the layout assembles the oligos (ASCII bytes); QC reads their base codes
        lay = self.layout
        oligos = lay.oligo_codes(self.scheme.encode_bytes(idx),
                                 fbytes.view(f"S{lay.feature_length}").ravel())
        seqs = [s.decode("ascii") for s in
                np.ascontiguousarray(oligos).view(f"S{lay.length}").ravel()]
        if self._qc is not None:
            flags = self._qc.check(_CODE[oligos], idx, ids)
            if flags:
                self._flags.writerows(flags)
        self._write_rows(ids, idx, seqs)
        # bookkeeping
        if self._in_order and not np.array_equal(idx, np.arange(self._n, self._n + n)):
            self._in_order = False
        lo, hi = int(idx.min()), int(idx.max())
        self._idx_min = lo if self._idx_min is None else min(self._idx_min, lo)
        self._idx_max = hi if self._idx_max is None else max(self._idx_max, hi)
        self._n += n
        self._next_default = max(self._next_default, hi + 1) if indices is not None else \
            self._next_default + n
        return idx

    def _check_ids(self, ids, lines, rec) -> list:
        """The chunk's ImageIDs, stripped; DataError for an empty, multi-line or repeated one."""
        ids = [s.strip() for s in ids]
        for i, s in enumerate(ids):
            if not s or "\n" in s or "\r" in s:
                what = "is empty" if not s else f"{shorten(s)} contains a line break"
                raise DataError(f"ImageID {what}", **self._where(i, lines),
                                hint="every document needs a one-line ImageID")
        prev = self._ids.add(_hash_strings(ids), rec)
        if (prev >= 0).any():
            i = int(np.flatnonzero(prev >= 0)[0])
            raise DataError(f"duplicate ImageID {shorten(ids[i])} (first at "
                            f"{self._describe_record(int(prev[i]), lines, rec)})",
                            **self._where(i, lines), hint="ImageIDs must be unique in a pool")
        return ids

    def _check_indices(self, indices, lines, rec) -> np.ndarray:
        """The chunk's document indices (default: the next ones); DataError for a negative,
        repeated or too large one."""
        n = len(rec)
        if indices is None:
            idx = np.arange(self._next_default, self._next_default + n, dtype=np.int64)
        else:
            idx = np.asarray(indices)
            if idx.shape != (n,) or (idx.size and idx.dtype.kind not in "iu"):
                raise UsageError("indices must be one integer per document")
            idx = idx.astype(np.int64)
        bad = (idx < 0) | (idx >= self.scheme.n_ids)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            if idx[i] < 0:
                raise DataError(f"document index {idx[i]} is negative", **self._where(i, lines))
            raise DataError(f"more documents than barcode IDs: document index {idx[i]:,} needs an "
                            f"ID beyond the scheme's {self.scheme.n_ids:,}", **self._where(i, lines),
                            hint="split the collection into several pools")
        prev = self._idx.add(idx, rec)
        if (prev >= 0).any():
            i = int(np.flatnonzero(prev >= 0)[0])
            raise DataError(f"duplicate document index {idx[i]} (first at "
                            f"{self._describe_record(int(prev[i]), lines, rec)})",
                            **self._where(i, lines), hint="document indices must be unique")
        return idx

    def _feature_bytes(self, feats, lines) -> np.ndarray:
        """The feature sequences as ASCII bytes (N x feature length, either case), read in one
        pass in the common case; otherwise the first bad one raises DataError naming its record."""
        n, L = len(feats), self.layout.feature_length
        if all(isinstance(f, str) and len(f) == L for f in feats):
            try:
                buf = "".join(feats).encode("ascii")
            except UnicodeEncodeError:
                buf = b""
            if len(buf) == n * L:
                m = np.frombuffer(buf, dtype=np.uint8).reshape(n, L)
                if not (_CODE[m] == 255).any():
                    return m
        for i, f in enumerate(feats):
            validate_sequence(f, length=L, what="feature sequence", **self._where(i, lines))
        raise DataError("feature sequences could not be read", path=self.source)  # pragma: no cover

    def _write_rows(self, ids, idx, seqs) -> None:
        """database_seqs, barcode_order and the Twist order rows of a chunk."""
        idx_list = idx.tolist()
        names = [f"{self.name_prefix}_{i}" for i in idx_list]
        if any(_NEEDS_QUOTES.search(s) for s in ids):
            self._db.writerows(zip(ids, seqs))
            self._order.writerows(zip(idx_list, ids))
        else:  # plain fields: join directly (several times faster than csv.writer)
            self._db_fh.write("".join(f"{a},{b}\n" for a, b in zip(ids, seqs)))
            self._order_fh.write("".join(f"{a},{b}\n" for a, b in zip(idx_list, ids)))
        self._twist_fh.write("".join(f"{a},{b}\n" for a, b in zip(names, seqs)))

    def _describe_record(self, r: int, lines, rec) -> str:
        if lines is not None:
            if r >= rec[0]:
                return f"line {int(lines[r - rec[0]])}"
            all_lines = np.concatenate(self._lines) if self._lines else np.zeros(0, np.int64)
            if r < len(all_lines):
                return f"line {int(all_lines[r])}"
        return f"record {r}"

    # ---- finishing ---------------------------------------------------------------------------
    @property
    def n_documents(self) -> int:
        return self._n

    def close(self) -> BuildResult:
        """Finish: QC verdict, manifest, rename the directory into place."""
        if self.result is not None:
            return self.result
        if self._ctx is None:
            self.open()
        try:
            if self._n == 0:
                raise DataError("no documents to put in the pool", path=self.source,
                                hint="the input has no rows")
            report = self._qc.finish() if self._qc is not None else None
            if report is not None and report.failed and self.qc_mode == "fail":
                raise DataError(report.message(), path=self.source,
                                hint="fix the flagged documents, or write the pool anyway with "
                                     "QC mode 'warn' (`qc` warn)")
            prov = provenance()
            summary = report.summary() if report is not None else {"skipped": True}
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "documents": self._n,
                "files": {"database": DATABASE_FILE, "twist_order": TWIST_FILE,
                          "barcode_order": ORDER_FILE, "qc_flags": QC_FLAGS_FILE,
                          "qc_summary": QC_SUMMARY_FILE},
                "layout": self.layout.to_dict(),
                "primers": self.layout.primers,
                "barcodes": self.scheme.to_dict(),
                "counts": {"documents": self._n, "oligos": self._n, "index_min": self._idx_min,
                           "index_max": self._idx_max,
                           "indices": "0..N-1 in input order" if self._in_order else "given"},
                "order": {"provider": "Twist Bioscience", "product": "oligo pool",
                          "file": TWIST_FILE, "columns": ["name", "sequence"],
                          "oligos": self._n, "oligo_length": self.layout.length,
                          "names": f"{self.name_prefix}_<index>"},
                "qc_mode": self.qc_mode,
                "qc": summary,
                "source": None if self.source is None else str(self.source),
                "provenance": prov,
            }
            clash = sorted(set(self.extra_manifest) & set(manifest))
            if clash:
                raise UsageError(f"extra manifest entries {', '.join(clash)} would replace the "
                                 "pool writer's own")
            manifest.update(self.extra_manifest)
            self._close_files()
            write_json(self._tmp / QC_SUMMARY_FILE, {**summary, "provenance": prov})
            write_json(self._tmp / MANIFEST_FILE, manifest)
            default_permissions(self._tmp)
            ctx, self._ctx = self._ctx, None
            ctx.__exit__(None, None, None)
        except BaseException as e:
            self.abort(type(e), e, e.__traceback__)
            raise
        self.result = BuildResult(self.out_dir, self._n, report, manifest)
        return self.result


def build_pool(image_ids, feature_seqs, out_dir, *, indices=None, layout: OligoLayout | None = None,
               scheme: BarcodeScheme | None = None, qc: str = "warn",
               qc_config: QCConfig | None = None, chunksize: int = DEFAULT_CHUNKSIZE,
               name_prefix: str = "primo") -> BuildResult:
    """Build a pool directory from (ImageID, feature sequence) pairs (see :class:`PoolWriter`)."""
    if chunksize < 1:
        raise UsageError(f"chunksize must be at least 1, got {chunksize}")
    image_ids = list(image_ids)
    feature_seqs = list(feature_seqs)
    if len(image_ids) != len(feature_seqs):
        raise UsageError(f"{len(image_ids)} ImageIDs but {len(feature_seqs)} feature sequences")
    if indices is not None:
        indices = np.asarray(indices)
        if len(indices) != len(image_ids):
            raise UsageError(f"{len(indices)} indices for {len(image_ids)} documents")
    with PoolWriter(out_dir, layout, scheme, qc, qc_config, name_prefix=name_prefix) as w:
        for a in range(0, len(image_ids), chunksize):
            b = a + chunksize
            w.add(image_ids[a:b], feature_seqs[a:b], None if indices is None else indices[a:b])
    return w.result


FEATURE_COLUMNS = ("Features", "Feature", "FeatureSequence", "Sequence")


def build_pool_from_csv(pairs_csv, out_dir, *, id_column: str = "ImageID",
                        feature_column: str | None = None, index_column: str | None = None,
                        layout: OligoLayout | None = None, scheme: BarcodeScheme | None = None,
                        qc: str = "warn", qc_config: QCConfig | None = None,
                        chunksize: int = DEFAULT_CHUNKSIZE, name_prefix: str = "primo") -> BuildResult:
    """Build a pool from a CSV of (ImageID, feature sequence) rows, streaming.

    The feature column defaults to the first of ``Features``, ``Feature``, ``FeatureSequence``,
    ``Sequence`` present. ``index_column`` names an optional column of document indices.
    """
    path = Path(pairs_csv)
    if feature_column is None:
        with open_input(path, "pairs file") as fh:
            try:
                header = next(csv.reader(fh), None)
            except (csv.Error, UnicodeDecodeError) as e:
                raise DataError("pairs file is not a CSV text file" + (
                    f" ({e})" if isinstance(e, csv.Error) else " (not UTF-8)"), path=path,
                    hint="give a CSV file, plain or gzip-compressed") from None
        if header is None:
            raise DataError("pairs file is empty", path=path,
                            hint=f"expected a header with {id_column} and a feature column")
        header = [h.strip().lstrip("\ufeff") for h in header]
        feature_column = next((c for c in FEATURE_COLUMNS if c in header), None)
        if feature_column is None:
            raise DataError(f"pairs file has no feature-sequence column (looked for "
                            f"{', '.join(FEATURE_COLUMNS)}; has {', '.join(header)})", path=path,
                            line=1, hint="name it with `feature_column`")
    required = [id_column, feature_column] + ([index_column] if index_column else [])
    rows = read_csv_rows(path, required, what="pairs file")
    with PoolWriter(out_dir, layout, scheme, qc, qc_config, name_prefix=name_prefix,
                    source=path) as w:
        while True:
            chunk = list(itertools.islice(rows, chunksize))
            if not chunk:
                break
            lines = [ln for ln, _ in chunk]
            idx = None
            if index_column:
                idx = []
                for ln, r in chunk:
                    v = r[index_column].strip()
                    if not re.fullmatch(r"[0-9]+", v):  # ASCII digits (not full-width ones)
                        raise DataError(f"{index_column} {shorten(v)} is not a non-negative integer",
                                        path=path, line=ln)
                    idx.append(int(v))
            w.add([r[id_column] for _, r in chunk], [r[feature_column] for _, r in chunk],
                  idx, lines=lines)
    return w.result


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Pool:
    """A pool read back from disk.

    Attributes
    ----------
    image_ids : numpy.ndarray of str
    indices : numpy.ndarray of int64
        document index of each row (decoded from its barcode).
    barcodes, features : numpy.ndarray of str or None
        the barcode and feature region of each row (numpy ``StringDType``, or ``object`` with
        numpy < 2; indexing gives ``str``); None when read with ``sequences=False``.
    layout : OligoLayout
    scheme : BarcodeScheme
    manifest : dict
        the pool's manifest; ``{}`` for a bare ``database_seqs.csv.gz``.
    path : Path
        the pool directory or file.
    """

    image_ids: np.ndarray
    indices: np.ndarray
    barcodes: np.ndarray | None
    features: np.ndarray | None
    layout: OligoLayout
    scheme: BarcodeScheme
    manifest: dict
    path: Path

    def __len__(self) -> int:
        return int(len(self.indices))

    def _lookup(self):
        if not hasattr(self, "_order"):
            n = len(self.indices)
            if np.array_equal(self.indices, np.arange(n)):
                self._order = None
            else:
                self._order = np.argsort(self.indices, kind="stable")
                self._sorted = self.indices[self._order]
        return self._order

    def positions_of(self, indices) -> np.ndarray:
        """Row position of each document index (-1 where the pool has no such document)."""
        q = np.asarray(indices, dtype=np.int64)
        order = self._lookup()
        n = len(self.indices)
        if order is None:
            return np.where((q >= 0) & (q < n), q, -1)
        pos = np.searchsorted(self._sorted, q)
        pc = np.minimum(pos, max(n - 1, 0))
        ok = (pos < n) & (self._sorted[pc] == q) if n else np.zeros(q.shape, dtype=bool)
        return np.where(ok, order[pc] if n else -1, -1)

    def index_to_image_id(self, index):
        """ImageID of a document index (str), or of an array of indices (array; '' where absent).

        A single index that is not in the pool raises KeyError.
        """
        if np.ndim(index) == 0:
            p = int(self.positions_of([int(index)])[0])
            if p < 0:
                raise KeyError(f"document index {int(index)} is not in the pool {self.path}")
            return str(self.image_ids[p])
        pos = self.positions_of(index)
        out = np.where(pos >= 0, self.image_ids[np.maximum(pos, 0)] if len(self) else "", "")
        return out

    def oligo_codes(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """ASCII bytes (N x length) of the oligos of rows ``start:stop`` (rebuilt from the layout)."""
        if self.barcodes is None or self.features is None:
            raise UsageError("this pool was read without sequences (sequences=False)")
        return self.layout.oligo_codes(list(self.barcodes[start:stop]),
                                       list(self.features[start:stop]))

    def oligos(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The full oligos 5'->3' of rows ``start:stop``."""
        codes = self.oligo_codes(start, stop)
        return [r.decode("ascii") for r in
                np.ascontiguousarray(codes).view(f"S{self.layout.length}").ravel()]


def _load_manifest(d: Path) -> dict:
    p = d / MANIFEST_FILE
    try:
        with open(p, encoding="utf-8") as fh:
            m = json.load(fh)
    except json.JSONDecodeError as e:
        raise DataError(f"manifest is not valid JSON ({e.msg} at line {e.lineno})", path=p,
                        hint="restore it from the pool's source or rebuild the pool") from None
    except UnicodeDecodeError:
        raise DataError("manifest is not UTF-8 text", path=p) from None
    if not isinstance(m, dict):
        raise DataError("manifest is not a JSON object", path=p)
    return m


def _check_manifest(m: dict, where: Path) -> None:
    """The types of the manifest fields a pool's readers use: a DataError naming the file and the
    field instead of a traceback (a manifest may have been edited by hand)."""
    def bad(field, want):
        raise DataError(f"manifest field {field} is {json.dumps(m_get(field))[:30]}, "
                        f"expected {want}", path=where,
                        hint="restore the manifest from the pool's source or rebuild the pool")

    def m_get(field):
        v = m
        for k in field.split("."):
            v = v.get(k) if isinstance(v, dict) else None
        return v

    def count(field):
        v = m_get(field)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            bad(field, "a whole number >= 0")

    for field in ("files", "counts", "layout", "barcodes", "qc", "provenance"):
        if m.get(field) is not None and not isinstance(m[field], dict):
            bad(field, "an object")
    for k, v in (m.get("files") or {}).items():
        if not isinstance(v, str):
            bad(f"files.{k}", "a file name")
    for field in ("documents", "counts.documents", "counts.index_min", "counts.index_max"):
        count(field)
    if isinstance(m.get("qc"), dict) and m["qc"].get("config") is not None \
            and not isinstance(m["qc"]["config"], dict):
        bad("qc.config", "an object")


def _pool_source(path) -> tuple[Path, dict, OligoLayout, BarcodeScheme]:
    path = Path(path)
    if not path.exists():
        raise UsageError(f"pool {path} does not exist",
                         hint="give a pool directory or a database_seqs.csv.gz")
    if path.is_dir():
        manifest = _load_manifest(path) if (path / MANIFEST_FILE).exists() else {}
        _check_manifest(manifest, path / MANIFEST_FILE)
        files = manifest.get("files") or {}
        db = path_inside(path, files.get("database") or DATABASE_FILE,
                         what="manifest field files.database", path=path / MANIFEST_FILE)
        if not db.exists():
            raise DataError(f"pool directory has no {db.name}", path=path,
                            hint="give a pool written by `primo pool build` / `primo encode-db`")
        where = path / MANIFEST_FILE
        try:
            layout = OligoLayout.from_dict(manifest.get("layout"))
            scheme = BarcodeScheme.from_dict(manifest.get("barcodes"))
        except DataError as e:
            raise DataError(e.raw_message, path=where, hint=e.hint) from None
        except UsageError as e:
            raise DataError(f"manifest parameters are invalid: {e.raw_message}", path=where) from None
        if layout.barcode_length != scheme.length:
            raise DataError(f"manifest layout has {layout.barcode_length}-nt barcodes but its "
                            f"barcode scheme makes {scheme.length}-nt barcodes", path=where)
        return db, manifest, layout, scheme
    return path, {}, OligoLayout(), BarcodeScheme()


def _first_repeat(keys: np.ndarray) -> tuple[int, int]:
    """(position of the first element equal to an earlier one, position of that earlier one), or
    (-1, -1) when all keys are distinct."""
    keys = np.asarray(keys)
    if len(keys) < 2:
        return -1, -1
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    same = np.empty(len(sk), dtype=bool)
    same[0] = False
    same[1:] = sk[1:] == sk[:-1]
    if not same.any():
        return -1, -1
    start = np.maximum.accumulate(np.where(same, 0, np.arange(len(sk))))
    reps = np.flatnonzero(same)
    k = reps[np.argmin(order[reps])]
    return int(order[k]), int(order[start[k]])


def _concat(parts: list) -> np.ndarray:
    """Concatenate and empty ``parts`` (so the pieces can be freed)."""
    out = np.concatenate(parts) if len(parts) > 1 else parts[0]
    parts.clear()
    return out


class _Column:
    """Rows of ASCII ``S`` arrays collected as an array of str (see :func:`_str_array`)."""

    def __init__(self, capacity=None):
        self.parts: list = []
        self.n = 0
        self.buf = None
        string_dtype = getattr(getattr(np, "dtypes", None), "StringDType", None)
        if capacity and string_dtype is not None:
            self.buf = np.empty(int(capacity), dtype=string_dtype())

    def append(self, s_arr):
        m = len(s_arr)
        if self.buf is not None and self.n + m <= len(self.buf):
            self.buf[self.n:self.n + m] = s_arr.astype(self.buf.dtype)
        else:
            if self.buf is not None:  # more rows than announced: fall back to chunks
                self.parts.append(self.buf[:self.n])
                self.buf = None
            self.parts.append(_str_array(s_arr))
        self.n += m

    def finish(self):
        if self.buf is not None:
            return self.buf[:self.n] if self.n < len(self.buf) else self.buf
        return _concat(self.parts) if self.parts else np.zeros(0, dtype=object)


def _str_array(s_arr: np.ndarray) -> np.ndarray:
    """ASCII ``S`` array -> array of str: numpy's variable-width StringDType where available (about
    60 % of the memory of Python str objects), else an object array of str."""
    string_dtype = getattr(getattr(np, "dtypes", None), "StringDType", None)
    if string_dtype is not None:
        return s_arr.astype(string_dtype())
    return np.array([x.decode("ascii") for x in s_arr], dtype=object)


def _exact_line(path: Path, record: int, skip_header: bool = True) -> int:
    """File line of the ``record``-th non-blank data row (0-based): used only for error messages."""
    with open_input(path) as fh:
        reader = csv.reader(fh)
        if skip_header:
            next(reader, None)
        r = -1
        for row in reader:
            if not row:
                continue
            r += 1
            if r == record:
                return reader.line_num
    return -1


def read_pool(path, *, sequences: bool = True, allow_duplicates: bool = False,
              chunksize: int = 100_000) -> Pool:
    """Read a pool directory or a bare ``database_seqs.csv.gz`` (see the module docstring).

    Parameters
    ----------
    path : path
    sequences : bool
        keep each row's barcode and feature region (``Pool.barcodes`` / ``Pool.features``); without
        them a 1.6 M-row pool needs about a third of the memory.
    allow_duplicates : bool
        accept repeated barcodes / ImageIDs (for QC of a broken pool); otherwise DataError.
    chunksize : int
        rows parsed per vectorised step.
    """
    db, manifest, layout, scheme = _pool_source(path)
    parser = BarcodeParser(scheme)
    ids_parts, idx_parts, id_keys = [], [], []
    expected = manifest.get("documents")
    # sequences go straight into preallocated arrays when the manifest gives the count (no
    # concatenation copy at the end), else into chunks concatenated one column at a time
    bc_store = _Column(expected if sequences else 0)
    ft_store = _Column(expected if sequences else 0)
    n = 0
    with open_input(db, "pool file") as fh, gc_paused():
        reader = csv.reader(fh)
        columns = _pool_header(reader, db)
        while True:
            try:
                rows = list(itertools.islice(reader, chunksize))
            except csv.Error as e:
                raise DataError(f"malformed CSV ({e})", path=db, line=reader.line_num) from None
            if not rows:
                break
            rows = [r for r in rows if r]  # csv gives [] for a blank line
            if not rows:
                continue
            ids, idx, mat = _parse_rows(rows, n, columns, layout, parser, db)
            if not allow_duplicates:
                id_keys.append(_hash_strings(ids))
            ids_parts.append(np.array(ids))
            idx_parts.append(idx.astype(np.int64))
            if sequences:
                bc_store.append(np.ascontiguousarray(mat[:, layout.barcode_slice]).view(
                    f"S{layout.barcode_length}").ravel())
                ft_store.append(np.ascontiguousarray(mat[:, layout.feature_slice]).view(
                    f"S{layout.feature_length}").ravel())
            n += len(rows)
    if n == 0:
        raise DataError("pool file has a header but no oligos", path=db)
    if expected is not None and int(expected) != n:
        raise DataError(f"pool file has {n:,} oligos but the manifest says {int(expected):,}",
                        path=db, hint="the pool directory is incomplete or was edited")
    image_ids = _concat(ids_parts)
    indices = _concat(idx_parts)
    if not allow_duplicates:
        _check_unique(image_ids, indices, np.concatenate(id_keys), db)
    return Pool(image_ids=image_ids, indices=indices,
                barcodes=bc_store.finish() if sequences else None,
                features=ft_store.finish() if sequences else None,
                layout=layout, scheme=scheme, manifest=manifest, path=Path(path))


def _pool_header(reader, db) -> tuple[int, int]:
    """The columns of ImageID and Sequence, from the header row."""
    try:
        header = next(reader)
    except StopIteration:
        raise DataError("pool file is empty", path=db,
                        hint="expected a header ImageID,Sequence and one row per oligo") from None
    except csv.Error as e:
        raise DataError(f"not a CSV file ({e})", path=db) from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    if "ImageID" not in header or "Sequence" not in header:
        raise DataError(f"pool file lacks column(s) "
                        f"{', '.join(c for c in ('ImageID', 'Sequence') if c not in header)} "
                        f"(has {', '.join(header) or 'none'})", path=db, line=1,
                        hint="expected the published layout ImageID,Sequence")
    return header.index("ImageID"), header.index("Sequence")


def _fail(db, rec: int, msg: str, hint=None):
    raise DataError(msg, path=db, line=_exact_line(db, rec), hint=hint)


def _parse_rows(rows, n: int, columns, layout: OligoLayout, parser: BarcodeParser, db):
    """A chunk of pool rows (records ``n``.. of the file) -> (ImageIDs, document indices, the
    oligos as upper-case ASCII bytes); DataError naming the line of the first bad row."""
    ci, cs = columns
    L = layout.length
    m = len(rows)
    short = [j for j, r in enumerate(rows) if len(r) < max(ci, cs) + 1]
    if short:
        j = short[0]
        _fail(db, n + j, f"row has {len(rows[j])} field(s), expected ImageID and Sequence")
    ids = [r[ci] for r in rows]
    seqs = [r[cs] for r in rows]
    if not all(ids):
        _fail(db, n + ids.index(""), "ImageID is empty")
    lens = np.fromiter(map(len, seqs), dtype=np.int64, count=m)
    if (lens != L).any():
        j = int(np.flatnonzero(lens != L)[0])
        _fail(db, n + j, f"sequence {shorten(seqs[j])} has {lens[j]} nt, expected {L}",
              hint=layout.describe())
    try:
        buf = "".join(seqs).encode("ascii")
    except UnicodeEncodeError:
        j = next(j for j, s in enumerate(seqs) if not s.isascii())
        _fail(db, n + j, f"sequence {shorten(seqs[j])} has non-ASCII characters")
    mat = np.frombuffer(buf, dtype=np.uint8).reshape(m, L)
    if (mat >= ord("a")).any():
        mat = _UPPER[mat]
    codes = _CODE[mat]
    const_ok = (codes != 255).all(axis=1)
    for sl, part in ((layout.fp_slice, layout.fp), (layout.ip_slice, layout.ip),
                     (layout.rp_slice, layout.rp)):
        ref = _CODE[np.frombuffer(part.encode(), dtype=np.uint8)]
        const_ok &= (codes[:, sl] == ref).all(axis=1)
    if not const_ok.all():
        j = int(np.flatnonzero(~const_ok)[0])
        why = layout.problems(np.frombuffer(seqs[j].upper().encode(), np.uint8)[None, :])[0]
        _fail(db, n + j, f"sequence does not follow the layout: {why}", hint=layout.describe())
    idx, j, why = parser.parse(np.ascontiguousarray(codes[:, layout.barcode_slice]))
    if idx is None:
        bcs = seqs[j][layout.barcode_slice].upper()
        _fail(db, n + j, f"{why}: {bcs}", hint="pool rows must hold exact barcodes of the pool's "
                                               "scheme (check the manifest's barcode parameters)")
    return ids, idx, mat


def _check_unique(image_ids, indices, id_keys, db) -> None:
    """DataError naming both lines when a barcode (document index) or an ImageID (its key)
    repeats."""
    for keys, what in ((indices, "barcode"), (id_keys, "ImageID")):
        j, first = _first_repeat(keys)
        if j >= 0:
            name = (f"barcode of document index {indices[j]}" if what == "barcode"
                    else f"ImageID {shorten(str(image_ids[j]))}")
            raise DataError(f"{name} repeats the one on line {_exact_line(db, first)}",
                            path=db, line=_exact_line(db, j),
                            hint=f"each oligo needs its own {what}")


def pool_info(path, *, verify: bool = False) -> dict:
    """A summary of a pool: kind, documents, index range, layout, barcode scheme, QC, provenance.

    For a pool directory with a manifest the counts come from the manifest (fast) unless
    ``verify``; a bare database file is always read (every row checked).
    """
    path = Path(path)
    db, manifest, layout, scheme = _pool_source(path)
    counts = manifest.get("counts") or {}
    verified = bool(verify or not manifest or counts.get("index_min") is None
                    or counts.get("index_max") is None)
    if verified:
        p = read_pool(path, sequences=False, allow_duplicates=True)
        n, lo, hi = len(p), int(p.indices.min()), int(p.indices.max())
    else:
        n = manifest.get("documents")
        n = int(counts.get("documents") or 0) if n is None else int(n)
        lo, hi = int(counts["index_min"]), int(counts["index_max"])
        if counts.get("documents") is not None and int(counts["documents"]) != n:
            raise DataError(f"manifest says {n:,} documents in one place and "
                            f"{int(counts['documents']):,} in another", path=db.parent / MANIFEST_FILE,
                            hint="the manifest was edited; verifying the pool (primo pool info) counts the rows")
    return {
        "pool": str(path),
        "kind": "pool directory" if path.is_dir() else "database file (published layout)",
        "database": str(db),
        "documents": n,
        "verified": verified,   # False: the counts are the manifest's, the rows were not read
        "index_min": lo,
        "index_max": hi,
        "layout": layout.to_dict(),
        "barcodes": {"seed": scheme.seed, "n_ids": scheme.n_ids,
                     "published_scheme": scheme.is_published},
        "qc": manifest.get("qc"),
        "provenance": manifest.get("provenance"),
    }


# ------------------------------------------------------------------------------------------------
# re-checking
# ------------------------------------------------------------------------------------------------
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
