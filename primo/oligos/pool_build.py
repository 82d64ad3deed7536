"""Building a pool directory: :class:`PoolWriter` (chunk by chunk, bounded memory),
:func:`build_pool` and :func:`build_pool_from_csv`.

The directory's layout is described in :mod:`primo.oligos.pool` (every name here is
importable from there); it is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np

from ..barcodes import BarcodeScheme
from ..dna import BYTE_CODE as _CODE
from ..dna import validate_sequence
from ..errors import DataError, UsageError, shorten
from ..io import atomic_dir, default_permissions, open_input, open_output, provenance, read_csv_rows, write_json
from .layout import OligoLayout
from .pool_format import (DATABASE_FILE, DEFAULT_CHUNKSIZE, FORMAT, FORMAT_VERSION, MANIFEST_FILE,
                          ORDER_FILE, QC_FLAGS_FILE, QC_MODES, QC_SUMMARY_FILE, TWIST_FILE,
                          _hash_strings)
from .qc import KeyIndex, PoolQC, QCConfig, QCReport

__all__ = ["PoolWriter", "BuildResult", "build_pool", "build_pool_from_csv", "FEATURE_COLUMNS"]

_NAME_OK = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NEEDS_QUOTES = re.compile(r'[",\r\n]|^\s|\s$')


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
