"""Safe output and shared file helpers.

* :func:`atomic_file` / :func:`atomic_dir`: write under a temporary name in the same directory and
  rename on success, so that a crash or an error never leaves a half-written output, and an existing
  output is only replaced once the new one is complete.
* :func:`open_output`: text output, gzip-compressed (fast level) when the name ends in ``.gz``.
* :func:`open_input`: text input, gzip detected by content (magic bytes), not by name; truncated gzip
  raises :class:`~primo.errors.DataError` naming the file.
* :func:`provenance`: the primo version and command line, recorded in every output.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

from . import __version__
from .errors import DataError, UsageError

__all__ = [
    "atomic_file", "atomic_dir", "open_output", "open_input", "is_gzip", "provenance",
    "set_command", "write_json", "json_default", "read_csv_rows", "gc_paused", "GZIP_LEVEL",
]

GZIP_LEVEL = 3  # fast; level 9 is several times slower for a few % smaller files

_COMMAND: str | None = None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path, directory: bool) -> None:
    """Give a temp file/dir the permissions a normal ``open``/``mkdir`` would (mkstemp uses 0600)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def set_command(argv) -> None:
    """Record the command line of this run (called by the CLI)."""
    global _COMMAND
    _COMMAND = " ".join(["primo", *map(str, argv)])


def provenance(**extra) -> dict:
    """A dict recording the primo version, the command and the time, for output metadata."""
    d = {
        "primo_version": __version__,
        "command": _COMMAND if _COMMAND is not None else " ".join(sys.argv),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    d.update(extra)
    return d


@contextlib.contextmanager
def atomic_file(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp)
    _default_mode(tmp, directory=False)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary directory beside ``path``; it becomes ``path`` if the block succeeds.

    An existing ``path`` is replaced only after the new directory is complete (it is moved aside,
    the new one renamed in, then the old one deleted). On an exception the temporary directory is
    deleted and ``path`` is untouched.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.exists() and not path.is_dir():
        raise UsageError(f"cannot write directory {path}: a file of that name exists",
                         hint="choose another output name")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    _default_mode(tmp, directory=True)
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
    if is_gzip(path):
        return io.TextIOWrapper(io.BufferedReader(_CheckedGzip(path), 1 << 16), encoding="utf-8", newline="")
    return open(path, "rt", encoding="utf-8", newline="")


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

    Raises DataError for an empty file or missing columns. Line numbers are 1-based file lines.
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
            raise DataError(f"not a CSV file ({e})", path=path) from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{what} lacks column(s) {', '.join(missing)} (has {', '.join(header) or 'none'})",
                            path=path, line=1, hint=f"expected columns {', '.join(required)}")
        pos = {h: i for i, h in enumerate(header)}
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise DataError(f"row has {len(row)} fields, header has {len(header)}", path=path,
                                line=line)
            yield line, {h: row[i] for h, i in pos.items()}
