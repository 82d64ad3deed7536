"""Reading and writing primo's files, and the names read from them.

* :func:`open_output`: text output, gzip-compressed (fast level) when the name ends in ``.gz``.
* :func:`open_input`: text input, gzip detected by content (magic bytes), not by name; truncated gzip
  raises :class:`~primo.errors.DataError` naming the file.
* :func:`read_csv_rows` / :func:`read_id_table`: CSV tables checked row by row; :func:`write_json`,
  :func:`write_table`.
* :func:`path_inside`, :func:`check_zip_size`, :func:`spreadsheet_safe`: names and archives read
  from data files someone else may have made.
* The output rules (:func:`atomic_file`, :func:`atomic_dir`, :func:`check_output_dir`,
  :func:`output_policy`, the marker, :func:`provenance`, ...) live in :mod:`primo.outputs` and are
  importable from here too.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import zlib
from pathlib import Path

from .errors import DataError, UsageError, shorten
from .outputs import (  # re-exported: callers find them here
    OUTPUT_MARKER, PARTIAL_SUFFIX, abandon_output_dir, add_marker_note, atomic_dir, atomic_file,
    building_dir, check_output_dir, check_output_file, claim_output_dir, default_permissions,
    output_policy, partial_dir, provenance, publish_partial_dir, read_marker, resume_partial_dir,
    set_command, start_partial_dir, write_marker,
)

__all__ = [
    "atomic_file", "atomic_dir", "open_output", "open_input", "is_gzip", "provenance",
    "set_command", "write_json", "json_default", "read_csv_rows", "read_id_table", "gc_paused",
    "GZIP_LEVEL",
    "OUTPUT_MARKER", "output_policy", "check_output_dir", "check_output_file", "claim_output_dir",
    "building_dir", "read_marker", "write_marker", "partial_dir", "start_partial_dir",
    "resume_partial_dir", "publish_partial_dir", "abandon_output_dir", "add_marker_note", "default_permissions", "path_inside",
    "spreadsheet_safe", "check_zip_size", "ZIP_LIMIT", "PARTIAL_SUFFIX",
]

GZIP_LEVEL = 3  # fast; level 9 is several times slower for a few % smaller files


# ---- names read from data files: never outside their folder ------------------------------------

def path_inside(base, name, *, what: str = "file name", path=None, line=None, record=None,
                follow_links: bool = True) -> Path:
    """``base / name``, refused (:class:`DataError`) when ``name`` leaves the folder ``base``.

    ``name`` comes from a data file (a document ID, a manifest's file name, a query ID) that a
    user may have received from someone else: an absolute path, a ``..`` that climbs out of
    ``base``, a NUL byte or (``follow_links=True``) a symbolic link inside ``base`` that points
    out of it is refused. ``path``/``line``/``record`` say where ``name`` was read (the error names
    them, else ``base``). ``follow_links=False`` checks the name only: links the folder's owner
    put in it are followed (a folder of pictures linked from elsewhere).
    """
    base = Path(base)
    text = str(name)
    where = dict(path=path if path is not None else base, line=line, record=record)
    if "\0" in text or os.path.isabs(text):
        raise DataError(f"{what} {shorten(text, 60)} is not a name inside {base}", **where,
                        hint="names in data files are relative to their folder")
    joined = Path(os.path.normpath(os.path.join(os.path.abspath(base), text)))
    root = Path(os.path.normpath(os.path.abspath(base)))
    if joined != root and root not in joined.parents:
        raise DataError(f"{what} {shorten(text, 60)} leaves the folder {base}", **where,
                        hint="names in data files must stay inside their folder; is the file "
                             "from someone you trust?")
    if follow_links:
        rj, rr = joined.resolve(), root.resolve()
        if rj != rr and rr not in rj.parents:
            raise DataError(f"{what} {shorten(text, 60)} is a link out of the folder {base}",
                            **where, hint="names in data files must stay inside their folder")
    return base / text


ZIP_LIMIT = 2 << 30   # bytes a model archive may inflate to (primo's models are a few MB)


def check_zip_size(path, what: str = "archive", limit: int | None = None) -> None:
    """Refuse (:class:`DataError`) a zip archive (``.keras``, ``.npz``) whose members declare more
    than ``limit`` bytes uncompressed, before anything is inflated (a zip bomb would take minutes
    and gigabytes before the loader failed). Python's zip reader never inflates a member past its
    declared size, so the declared sizes bound what loading can take. A file that is not a zip
    archive is left to the loader to report."""
    import zipfile

    limit = ZIP_LIMIT if limit is None else limit
    try:
        with zipfile.ZipFile(path) as z:
            total = sum(max(int(i.file_size), 0) for i in z.infolist())
            n = len(z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    if total > limit or n > 100_000:
        raise DataError(f"the {what} would inflate to {total / 2**20:,.0f} MiB in {n:,} "
                        f"member(s), more than the {limit / 2**20:,.0f} MiB primo loads "
                        "(a damaged file or a zip bomb)", path=path,
                        hint="restore the file from its source")


def spreadsheet_safe(value: str) -> str:
    """``value`` with a leading ``'`` if a spreadsheet would read it as a formula (it begins
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return; OWASP's CSV-injection rule)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def open_output(path, mode: str = "wt", level: int = GZIP_LEVEL):
    """Open ``path`` for writing text (or bytes with ``mode='wb'``); gzip if it ends in ``.gz``."""
    path = Path(path)
    if path.name.endswith(".gz"):
        # mtime=0 keeps outputs byte-identical between runs
        raw = open(path, "wb")
        gz = gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0)
        if "b" in mode:
            return _Closing(gz, raw)
        return io.TextIOWrapper(_Closing(gz, raw), encoding="utf-8", newline="")
    return open(path, mode, encoding=None if "b" in mode else "utf-8",
                **({} if "b" in mode else {"newline": ""}))


class _Closing(io.RawIOBase):
    """A gzip stream that also closes the underlying file."""

    def __init__(self, gz, raw):
        self._gz, self._raw = gz, raw

    def writable(self):
        return True

    def write(self, b):
        return self._gz.write(b)

    def flush(self):
        if not self._gz.closed:
            self._gz.flush()

    def close(self):
        if not self.closed:
            try:
                self._gz.close()
            finally:
                self._raw.close()
        super().close()


def is_gzip(path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_input(path, what: str = "file"):
    """Open a text file for reading, decompressing gzip detected by its magic bytes."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{what} {path} does not exist")
    if path.is_dir():
        raise UsageError(f"{what} {path} is a directory, expected a file")
    # UTF-8, with or without a byte-order mark (spreadsheets write one); UTF-16 is named here,
    # where the file is known, not by a decoder that does not know it
    if is_gzip(path):
        return io.TextIOWrapper(io.BufferedReader(_CheckedGzip(path), 1 << 16),
                                encoding="utf-8-sig", newline="")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) >= 2 and b"\x00" in head[:64]
                                                   and head.count(b"\x00") * 3 >= len(head)):
        raise DataError(f"{what} is UTF-16 text (or binary), not UTF-8", path=path,
                        hint="save it as UTF-8 text (plain or gzip-compressed)")
    return open(path, "rt", encoding="utf-8-sig", newline="")


class _CheckedGzip(io.RawIOBase):
    """gzip reader whose errors become DataError naming the file."""

    def __init__(self, path):
        self._path = path
        try:  # ISA-L (a dnaio dependency) inflates ~2.5x faster than zlib
            from isal import igzip, isal_zlib

            self._gz = igzip.open(path, "rb")
            self._errors = (EOFError, zlib.error, isal_zlib.error, OSError)
        except ImportError:  # pragma: no cover
            self._gz = gzip.open(path, "rb")
            self._errors = (EOFError, zlib.error, OSError)

    def readable(self):
        return True

    def readinto(self, b):
        try:
            return self._gz.readinto(b)
        except self._errors as e:
            raise DataError(f"gzip data is truncated or corrupt ({e})", path=self._path,
                            hint="re-download or re-copy the file") from None

    def close(self):
        if not self.closed:
            self._gz.close()
        super().close()


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while millions of small objects (CSV rows) are
    made and dropped: they hold no cycles, and the collections it would start cost ~30% of
    reading a 1.6 M-row pool."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def write_json(path, obj) -> None:
    """Write JSON atomically (2-space indent, sorted keys left as given)."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, default=json_default)
            fh.write("\n")


def json_default(o):
    """``json.dump(..., default=json_default)``: numpy scalars and arrays, paths, sets, tuples."""
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_table(path, header, columns) -> None:
    """Write a CSV table (gzip if ``path`` ends in .gz) from parallel ``columns``, atomically."""
    import csv

    with atomic_file(path, suffix=".gz" if str(path).endswith(".gz") else "") as tmp:
        with open_output(tmp) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            w.writerows(zip(*columns))


def read_csv_rows(path, required: list[str], what: str = "CSV file"):
    """Yield ``(line_number, row_dict)`` from a CSV (plain or gzip) checking the header.

    Raises DataError for an empty file, missing columns, and a row with fewer or more fields than
    the header (a field beyond the header's columns would otherwise be dropped without a word; it
    is usually an unquoted comma). Extra *named* columns are fine. Line numbers are 1-based file
    lines.
    """
    fh = open_input(path, what)
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{what} is empty", path=path,
                            hint=f"expected a header with columns {', '.join(required)}") from None
        except csv.Error as e:
            raise DataError(f"not a CSV file ({e})", path=path, line=1) from None
        except UnicodeDecodeError:
            raise DataError(f"{what} is not text (not UTF-8)", path=path,
                            hint="give a CSV file, plain or gzip-compressed") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{what} lacks column(s) {', '.join(missing)} (has {', '.join(header) or 'none'})",
                            path=path, line=1, hint=f"expected columns {', '.join(required)}")
        pos = {h: i for i, h in enumerate(header)}
        yield from _csv_body(reader, header, pos, path, what)


def read_id_table(path, column: str, *, what: str, convert=str, kind: str = "valid",
                  check=None, hint: str | None = None):
    """An ``ImageID,<column>`` table (plain or gzip: read counts, distances, labels, enrichment)
    -> ``(image_ids, values, lines)``, lists in file order (``lines``: each row's file line).

    ``convert`` turns a value's text into a value; a ValueError becomes a DataError naming the line
    (``"<column> 'x' of ImageID 'a' is not <kind>"``). ``check(value)`` returns what is wrong with
    a value ('' when nothing is). A repeated ImageID raises DataError naming both lines. ``hint``
    goes with the value errors.
    """
    ids, values, lines, first = [], [], [], {}
    for line, row in read_csv_rows(path, ["ImageID", column], what=what):
        iid = row["ImageID"].strip()
        if iid in first:
            raise DataError(f"ImageID {iid!r} appears twice (first on line {first[iid]})",
                            path=path, line=line, hint=f"give one {column} per document")
        first[iid] = line
        text = row[column].strip()
        try:
            v = convert(text)
        except ValueError:
            raise DataError(f"{column} {text!r} of ImageID {iid!r} is not {kind}", path=path,
                            line=line, hint=hint) from None
        problem = check(v) if check is not None else ""
        if problem:
            raise DataError(f"{column} {text!r} of ImageID {iid!r} {problem}", path=path,
                            line=line, hint=hint)
        ids.append(iid)
        values.append(v)
        lines.append(line)
    return ids, values, lines


def _csv_body(reader, header, pos, path, what):
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:   # e.g. a field larger than the csv module's limit (128 KiB)
            raise DataError(f"unreadable CSV row ({e})", path=path, line=reader.line_num,
                            hint="is it the right file? fields hold one sequence or ID") from None
        except UnicodeDecodeError:
            raise DataError(f"{what} holds bytes that are not text (not UTF-8)", path=path,
                            hint="give a CSV file, plain or gzip-compressed") from None
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header) and not (
                len(row) > len(header) and not any(c.strip() for c in row[len(header):])):
            # (empty trailing fields, as spreadsheets write them, are fine)
            extra = "" if len(row) < len(header) else (
                f"; the field(s) beyond the header would be lost: "
                f"{', '.join(shorten(c, 20) for c in row[len(header):][:2])}")
            raise DataError(f"row has {len(row)} fields, header has {len(header)}{extra}",
                            path=path, line=line,
                            hint="quote fields that hold commas, or name every column in the "
                                 "header")
        yield line, {h: row[i] for h, i in pos.items()}
