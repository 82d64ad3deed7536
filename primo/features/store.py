"""The feature store: document IDs beside a float32 N x D matrix, in one HDF5 file.

Every primo command reads features through :class:`FeatureStore`. The file streams: rows are read
and written in chunks, so 1.6 M FC2 vectors (26 GB) pass through in bounded memory.

File format (HDF5, written with h5py)
-------------------------------------
``/features``
    float32, shape (N_alloc, D), chunked by rows (``chunk_rows`` x D per HDF5 chunk), resizable.
``/ids``
    variable-length UTF-8 strings, shape (N_alloc,): the document ID of each row (unique).
``/labels`` (optional)
    int64, shape (N_alloc,): a class label per row (Fashion-MNIST class, synthetic cluster), or absent.
``/paths`` (optional)
    variable-length UTF-8 strings, shape (N_alloc,): the source image file of each row (absolute
    path at extraction; ``""`` where unknown). Written by ``primo extract`` so that result pages
    can show the documents' pictures; created on the first append that gives paths.
``/skipped`` (optional)
    variable-length UTF-8 strings, shape (K, 2): inputs that extraction skipped, (path, reason).
root attributes
    ``primo_format`` = ``"primo-features"``, ``format_version`` = 1, ``dim`` = D,
    ``n_rows`` = N, the number of *committed* rows, ``metadata`` = a JSON object (extractor,
    version, input size, preprocessing, weights source, ... whatever the writer recorded),
    ``provenance`` = a JSON list with one :func:`primo.io.provenance` record per writing session
    (creation, then each append session).

Feature stores written by other tools are read too: an unchunked ``/features`` dataset, or one of
float64 or integers, is read and converted to float32.

Every read checks the rows it returns: a NaN or infinite value raises :class:`DataError` naming the
file, the row index and the document ID. Inside :func:`bad_rows_policy` with ``skip=True`` (the
command line's ``--skip-bad-rows``), :meth:`FeatureStore.open` instead scans the store once and
leaves such rows out (the store then reads as if they were not there); they are reported through
the policy's ``warn`` and listed by :func:`skipped_rows` for the output's manifest.

Only the first ``n_rows`` rows exist. An append resizes the datasets, writes the rows, flushes,
and only then raises ``n_rows``: a crash in the middle of an append leaves a store that opens with
its last committed row count, and the next append overwrites the uncommitted tail.

Why one module of ~840 lines: it is the file format and its one class. Creating, appending,
reading and validating a store share the open HDF5 file, the committed row count and the bad-rows
policy, and a change of the format touches every one of them; split, each part would need the
others' internals.

Example
-------
>>> import numpy as np, tempfile, os
>>> from primo.features.store import FeatureStore, write_features, read_features
>>> path = os.path.join(tempfile.mkdtemp(), "f.h5")
>>> write_features(path, ["a", "b"], np.eye(2, 3, dtype="float32"), {"extractor": "example"})
>>> with FeatureStore.open(path) as fs:
...     fs.n, fs.dim, fs.ids.tolist(), fs.metadata["extractor"]
(2, 3, ['a', 'b'], 'example')
>>> read_features(path)[1].shape
(2, 3)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from ..arrays import unique
from ..errors import DataError, UsageError
from ..io import add_marker_note, atomic_file, json_default, provenance

__all__ = ["FeatureStore", "write_features", "read_features", "FORMAT_NAME", "default_chunk_rows",
           "bad_rows_policy", "skipped_rows"]

FORMAT_NAME = "primo-features"
FORMAT_VERSION = 1

#: target size of one HDF5 chunk (rows x D x 4 bytes)
_CHUNK_BYTES = 1 << 22
#: target size of one read by :meth:`FeatureStore.iter_chunks` when no chunksize is given
_READ_BYTES = 1 << 26


def default_chunk_rows(dim: int) -> int:
    """Rows per HDF5 chunk: about 4 MB per chunk, between 16 and 65,536 rows."""
    return int(min(65536, max(16, _CHUNK_BYTES // (4 * max(1, int(dim))))))


def _h5py():
    import h5py

    return h5py


@dataclasses.dataclass
class _BadRows:
    skip: bool
    warn: object = None
    skipped: list = dataclasses.field(default_factory=list)


_BAD_ROWS: contextvars.ContextVar = contextvars.ContextVar("primo_bad_rows", default=None)


@contextlib.contextmanager
def bad_rows_policy(skip: bool = False, warn=None):
    """While the block runs, feature stores opened for reading leave out rows holding NaN or
    infinite values (``skip=True``) instead of failing on them; ``warn(message)`` is told about each
    store with such rows. Yields the policy; :func:`skipped_rows` lists what was left out."""
    pol = _BadRows(bool(skip), warn)
    token = _BAD_ROWS.set(pol)
    try:
        yield pol
    finally:
        _BAD_ROWS.reset(token)


def skipped_rows() -> list:
    """Rows left out so far under :func:`bad_rows_policy`: ``[{"path", "row", "id", "problem"}]``
    (row = 0-based row index in the file)."""
    pol = _BAD_ROWS.get()
    return [dict(d) for d in pol.skipped] if pol is not None else []


def _skipped_rows_note() -> dict:
    rows = skipped_rows()
    return {"skipped_rows": rows} if rows else {}


add_marker_note(_skipped_rows_note)   # every output's marker lists the rows left out


def _bad_rows_of(X) -> np.ndarray:
    """Indices of rows of ``X`` holding NaN or infinite values."""
    # fast path: NaN / inf propagate through a row sum; look closer only when one shows up
    # (a float32 sum of huge finite values can overflow: the exact check decides)
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(X.sum(axis=1))
    if finite.all():
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(~np.isfinite(X).all(axis=1))


def _problem(x) -> str:
    return "NaN" if np.isnan(x).any() else "infinite"


class FeatureStore:
    """An open feature store (use :meth:`create` or :meth:`open`, as a context manager).

    Attributes
    ----------
    path : pathlib.Path
        The file.
    mode : str
        ``"r"`` (read only) or ``"r+"`` (appendable).
    """

    def __init__(self, h5file, path, mode):
        self._f = h5file
        self.path = Path(path)
        self.mode = mode
        self._id_set: set | None = None
        self._id_index: dict | None = None
        self._ids_cache: np.ndarray | None = None
        self._session_recorded = False
        self._keep: np.ndarray | None = None   # rows read (others hold NaN / inf and are skipped)

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path, dim: int, metadata: dict | None = None, chunk_rows: int | None = None,
               *, labels: bool = False, compression: str | None = None,
               overwrite: bool = False) -> "FeatureStore":
        """Create an empty store for ``dim``-dimensional vectors and open it for appending.

        Parameters
        ----------
        path : str or Path
            The HDF5 file to create.
        dim : int
            Vector dimension D.
        metadata : dict, optional
            JSON-serialisable description (extractor, preprocessing, ...); ``dim`` is added.
        chunk_rows : int, optional
            Rows per HDF5 chunk (default: about 4 MB per chunk, see :func:`default_chunk_rows`).
        labels : bool
            Also keep an integer label per row (``append(..., labels=...)``).
        compression : {None, "lzf", "gzip"}
            HDF5 filter for the matrix; None (default) is fastest.
        overwrite : bool
            Replace an existing file (otherwise an existing file is a UsageError).
        """
        h5py = _h5py()
        path = Path(path)
        dim = int(dim)
        if dim < 1:
            raise UsageError(f"feature dimension must be at least 1, got {dim}")
        if path.exists() and not overwrite:
            raise UsageError(f"{path} already exists", hint="choose another name or overwrite it")
        if not path.parent.exists() and str(path.parent):
            raise UsageError(f"cannot write {path}: directory {path.parent} does not exist")
        chunk_rows = int(chunk_rows or default_chunk_rows(dim))
        if chunk_rows < 1:
            raise UsageError(f"chunk_rows must be at least 1, got {chunk_rows}")
        if compression not in (None, "lzf", "gzip"):
            raise UsageError(f"unknown compression {compression!r}", hint="use None, 'lzf' or 'gzip'")
        f = h5py.File(path, "w")
        try:
            f.attrs["primo_format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["dim"] = dim
            f.attrs["n_rows"] = 0
            meta = dict(metadata or {})
            meta["dim"] = dim
            f.attrs["metadata"] = json.dumps(meta, default=json_default)
            f.attrs["provenance"] = json.dumps([provenance(action="create")], default=json_default)
            f.create_dataset("features", shape=(0, dim), maxshape=(None, dim), dtype="float32",
                             chunks=(chunk_rows, dim), compression=compression)
            f.create_dataset("ids", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"),
                             chunks=(max(chunk_rows, 1024),))
            if labels:
                f.create_dataset("labels", shape=(0,), maxshape=(None,), dtype="int64",
                                 chunks=(max(chunk_rows, 1024),))
            f.flush()
        except BaseException:
            f.close()
            raise
        fs = cls(f, path, "r+")
        fs._session_recorded = True
        fs._id_set = set()
        return fs

    @classmethod
    def open(cls, path, mode: str = "r", *, skip_bad_rows: bool | None = None) -> "FeatureStore":
        """Open an existing store; ``mode`` is ``"r"`` (read) or ``"r+"``/``"a"`` (append).

        ``skip_bad_rows`` (read mode; default: as :func:`bad_rows_policy` says): scan the store
        and leave out rows holding NaN or infinite values, instead of failing when one is read.

        Raises
        ------
        UsageError
            The file does not exist.
        DataError
            The file is not HDF5 or not a primo feature store.
        """
        h5py = _h5py()
        path = Path(path)
        if mode == "a":
            mode = "r+"
        if mode not in ("r", "r+"):
            raise UsageError(f"unknown feature store mode {mode!r}", hint="use 'r' or 'r+'")
        if not path.exists():
            raise UsageError(f"feature store {path} does not exist",
                             hint="make one with `primo extract IMAGES... -o FILE.h5`")
        if path.is_dir():
            raise UsageError(f"feature store {path} is a directory, expected an HDF5 file")
        try:
            f = h5py.File(path, mode)
        except OSError as e:
            text = str(e).lower()
            m = __import__("re").search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
            if m:
                raise DataError(f"the HDF5 file is truncated ({int(m.group(1)):,} of "
                                f"{int(m.group(2)):,} bytes)", path=path,
                                hint="copy it again, or re-create it with `primo extract`") from None
            if "unable to lock file" in text or "file locking" in text:
                raise UsageError(f"cannot open {path}: it is open for writing elsewhere ({e})",
                                 path=None) from None
            raise DataError("not an HDF5 file (cannot open it as a feature store)", path=path,
                            hint="give a .h5 file written by `primo extract`") from None
        try:
            cls._check_format(f, path)
        except BaseException:
            f.close()
            raise
        fs = cls(f, path, mode)
        pol = _BAD_ROWS.get()
        if skip_bad_rows is None:
            skip_bad_rows = pol is not None and pol.skip
        if skip_bad_rows and mode == "r":
            try:
                fs._leave_out_bad_rows(pol)
            except BaseException:
                fs.close()
                raise
        return fs

    def _leave_out_bad_rows(self, pol) -> None:
        n = self.n
        step = self.default_chunksize()
        bad = []
        for a in range(0, n, step):
            X = self._read_phys(a, min(n, a + step))
            for r in _bad_rows_of(X):
                bad.append((a + int(r), _problem(X[r])))
        if not bad:
            return
        rows = np.array([r for r, _ in bad], dtype=np.int64)
        ids = self._h5["ids"].asstr()
        entries = [{"path": str(self.path), "row": int(r), "id": _str(ids[int(r)]), "problem": p}
                   for r, p in bad]
        self._keep = np.setdiff1d(np.arange(n, dtype=np.int64), rows)
        self._ids_cache = self._id_index = self._id_set = None
        if pol is not None:
            # a store opened again (simulate reads --features more than once) is told of once
            seen = {(d["path"], d["row"]) for d in pol.skipped}
            entries = [e for e in entries if (e["path"], e["row"]) not in seen]
            pol.skipped.extend(entries)
            if entries and pol.warn is not None:
                shown = ", ".join(f"row {e['row']} ({e['id']!r}, {e['problem']})"
                                  for e in entries[:5])
                more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
                pol.warn(f"{self.path}: left out {len(entries)} row(s) holding NaN or infinite "
                         f"feature values: {shown}{more}")

    @staticmethod
    def _check_format(f, path):
        fmt = f.attrs.get("primo_format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != FORMAT_NAME or "features" not in f or "ids" not in f:
            have = ", ".join(sorted(f.keys())[:5]) or "no datasets"
            raise DataError(f"HDF5 file is not a primo feature store (has {have})", path=path,
                            hint="give a .h5 file written by `primo extract`")
        def whole(name, default):
            v = f.attrs.get(name, default)
            try:
                if isinstance(v, (bytes, str)) or np.ndim(v) != 0 or float(v) != int(v):
                    raise ValueError
                return int(v)
            except (TypeError, ValueError, OverflowError):
                raise DataError(f"feature store attribute {name} is {str(v)[:30]!r}, not a whole "
                                "number", path=path,
                                hint="re-create it with `primo extract`") from None

        version = whole("format_version", 0)
        for name, kind in (("metadata", dict), ("provenance", list)):
            if name in f.attrs:
                try:
                    v = json.loads(_str(f.attrs[name]))
                except (ValueError, TypeError, UnicodeDecodeError):
                    v = None
                if not isinstance(v, kind):
                    raise DataError(f"feature store attribute {name} is not a JSON "
                                    f"{'object' if kind is dict else 'list'}", path=path,
                                    hint="re-create it with `primo extract`, or fix the "
                                         "attribute with h5py")
        if f["ids"].dtype.kind not in ("O", "S", "U"):
            raise DataError(f"feature store IDs are {f['ids'].dtype} numbers, not text",
                            path=path, hint="write the IDs as strings (h5py.string_dtype()), "
                                            "e.g. with primo.features.store.write_features")
        if version > FORMAT_VERSION:
            raise DataError(f"feature store format version {version} is newer than this primo "
                            f"reads ({FORMAT_VERSION})", path=path, hint="upgrade primo")
        X, ids = f["features"], f["ids"]
        n = whole("n_rows", -1)
        dim = whole("dim", -1)
        if X.ndim != 2 or X.shape[1] != dim:
            raise DataError(f"feature store is damaged: matrix shape {X.shape} does not match "
                            f"dim={dim}", path=path, hint="re-create it with `primo extract`")
        if not (0 <= n <= X.shape[0] and n <= ids.shape[0]) or ("labels" in f and n > f["labels"].shape[0]):
            held = f"{X.shape[0]} feature rows and {ids.shape[0]} IDs"
            if "labels" in f:
                held += f" and {f['labels'].shape[0]} labels"
            raise DataError(f"feature store is damaged: n_rows={n} but the datasets hold {held}",
                            path=path, hint="re-create it with `primo extract`")

    def close(self) -> None:
        """Flush and close the file."""
        if self._f is not None:
            try:
                if self.mode != "r" and self._f.id.valid:
                    self._f.flush()
            finally:
                self._f.close()
                self._f = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self):
        return self.n

    def __repr__(self):
        state = "closed" if self._f is None else f"n={self.n}, dim={self.dim}"
        return f"FeatureStore({str(self.path)!r}, {state})"

    # ------------------------------------------------------------------ properties
    @property
    def _h5(self):
        if self._f is None:
            raise UsageError(f"feature store {self.path} is closed")
        return self._f

    @property
    def n(self) -> int:
        """Number of (committed) rows (less the rows left out, see :meth:`open`)."""
        if self._keep is not None:
            return len(self._keep)
        return int(self._h5.attrs["n_rows"])

    @property
    def dim(self) -> int:
        """Vector dimension D."""
        return int(self._h5.attrs["dim"])

    @property
    def chunk_rows(self) -> int:
        """Rows per HDF5 chunk (an unchunked store reads as if chunked by the default)."""
        chunks = self._h5["features"].chunks
        return int(chunks[0]) if chunks else default_chunk_rows(self.dim)

    @property
    def ids(self) -> np.ndarray:
        """All document IDs, as a numpy array of ``str`` (row order)."""
        if self._ids_cache is None or len(self._ids_cache) != self.n:
            self._ids_cache = self._read_ids_range(0, self.n)
        return self._ids_cache

    @property
    def has_labels(self) -> bool:
        return "labels" in self._h5

    @property
    def labels(self) -> np.ndarray | None:
        """The integer label of each row (int64 array), or None if the store has none."""
        if "labels" not in self._h5:
            return None
        if self._keep is not None:
            return self._h5["labels"][: int(self._keep[-1]) + 1 if len(self._keep) else 0][self._keep]
        return self._h5["labels"][: self.n]

    @property
    def has_paths(self) -> bool:
        """Whether the store records source image paths (``/paths``)."""
        return "paths" in self._h5

    def paths_of(self, ids) -> list:
        """Source image path of each of ``ids`` (``""`` where not recorded)."""
        ids = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
        if not ids or "paths" not in self._h5:
            return [""] * len(ids)
        rows = self.index_of(ids)
        if self._keep is not None:
            rows = self._keep[rows]
        ds = self._h5["paths"]
        ok = rows < ds.shape[0]
        order = np.unique(rows[ok])
        got = dict(zip(order.tolist(), ds.asstr()[order.tolist()] if len(order) else []))
        return [_str(got.get(int(r), "")) for r in rows]

    @property
    def metadata(self) -> dict:
        """The writer's description (extractor, dim, preprocessing, ...), a dict."""
        return json.loads(_str(self._h5.attrs.get("metadata", "{}")))

    @property
    def provenance(self) -> list:
        """One :func:`primo.io.provenance` record per session that wrote to the store."""
        return json.loads(_str(self._h5.attrs.get("provenance", "[]")))

    @property
    def skipped(self) -> list:
        """Inputs that extraction skipped, as ``[(path, reason), ...]``."""
        if "skipped" not in self._h5:
            return []
        return [(_str(p), _str(r)) for p, r in self._h5["skipped"][:]]

    # ------------------------------------------------------------------ writing
    def _writable(self):
        if self.mode == "r":
            raise UsageError(f"feature store {self.path} is open read-only",
                             hint="open it with mode='r+' to append")

    def _record_session(self):
        if not self._session_recorded:
            prov = self.provenance
            prov.append(provenance(action="append"))
            self._h5.attrs["provenance"] = json.dumps(prov, default=json_default)
            self._session_recorded = True

    def update_metadata(self, **items) -> None:
        """Add or replace metadata entries (JSON-serialisable values)."""
        self._writable()
        meta = self.metadata
        meta.update(items)
        meta["dim"] = self.dim
        self._h5.attrs["metadata"] = json.dumps(meta, default=json_default)
        self._h5.flush()

    def add_skipped(self, entries) -> None:
        """Record inputs that were skipped: an iterable of ``(path, reason)``."""
        self._writable()
        entries = [(str(p), " ".join(str(r).split())) for p, r in entries]
        if not entries:
            return
        h5py = _h5py()
        if "skipped" not in self._h5:
            self._h5.create_dataset("skipped", shape=(0, 2), maxshape=(None, 2), chunks=(256, 2),
                                    dtype=h5py.string_dtype("utf-8"))
        ds = self._h5["skipped"]
        k = ds.shape[0]
        ds.resize(k + len(entries), axis=0)
        ds[k:] = np.array(entries, dtype=object)
        self._h5.flush()

    def existing_ids(self) -> set:
        """The set of IDs already in the store (loaded once, kept up to date by :meth:`append`)."""
        if self._id_set is None:
            self._id_set = set(self.ids.tolist())
        return self._id_set

    def append(self, ids, X, labels=None, paths=None) -> None:
        """Append rows: ``ids`` (N strings), ``X`` (N x D numbers), ``labels`` (N ints, stores with labels).

        ``paths`` (N strings, optional): each row's source image file (``/paths``, see above).

        The batch is checked before anything is written: wrong dimension, NaN / inf values, empty or
        duplicate IDs (within the batch or against the store) raise :class:`DataError` naming the
        offending ID. Rows are committed (``n_rows`` raised) only after the data is flushed.
        """
        self._writable()
        f = self._h5
        ids = [str(i) for i in (ids.tolist() if isinstance(ids, np.ndarray) else ids)]
        X = np.asarray(X)
        where = dict(path=self.path)
        if X.ndim == 1 and len(ids) == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise DataError(f"features to append must be a 2-D matrix, got shape {X.shape}", **where)
        if X.shape[1] != self.dim:
            raise DataError(f"cannot append {X.shape[1]}-dimensional vectors to a store of "
                            f"{self.dim}-dimensional vectors", **where,
                            hint="use the same extractor as the store, or write a new store")
        if X.shape[0] != len(ids):
            raise DataError(f"{len(ids)} IDs for {X.shape[0]} feature rows", **where)
        if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
            raise DataError(f"features must be real numbers, got dtype {X.dtype}", **where)
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(ids) == 0:
            return
        # fast path: NaN / inf propagate through a row sum; look closer only when one shows up
        # (a float32 sum of huge finite values can overflow: the exact check decides)
        with np.errstate(over="ignore", invalid="ignore"):
            finite = np.isfinite(X.sum(axis=1))
        if not finite.all():
            finite = np.isfinite(X).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            kind = "NaN" if np.isnan(X[bad]).any() else "infinite"
            raise DataError(f"{kind} feature values (or too large for float32) in document "
                            f"{ids[bad]!r}", **where, record=self.n + bad + 1,
                            hint="fix or drop the vector before storing it")
        for k, i in enumerate(ids):
            if not i or i != i.strip() or "\n" in i:
                raise DataError(f"bad document ID {i!r} (empty, or leading/trailing whitespace)",
                                **where, record=self.n + k + 1, hint="use non-empty IDs without whitespace at the ends")
        seen = set()
        for k, i in enumerate(ids):
            if i in seen:
                raise DataError(f"duplicate document ID {i!r} in the batch to append", **where,
                                record=self.n + k + 1, hint="document IDs must be unique")
            seen.add(i)
        existing = self.existing_ids()
        dup = seen & existing
        if dup:
            first = next(i for i in ids if i in dup)
            raise DataError(f"document ID {first!r} is already in the store ({len(dup)} duplicate "
                            f"ID{'s' if len(dup) > 1 else ''})", **where,
                            hint="skip IDs already present (extraction does this with `resume`)")
        has_labels = "labels" in f
        if labels is not None and not has_labels:
            raise UsageError("this store has no labels dataset; create it with labels=True", **where)
        if has_labels:
            if labels is None:
                raise DataError("this store keeps a label per row; append(...) needs labels", **where)
            labels = np.asarray(labels)
            if labels.shape != (len(ids),) or not np.issubdtype(labels.dtype, np.integer):
                raise DataError(f"labels must be {len(ids)} integers, got shape {labels.shape} "
                                f"dtype {labels.dtype}", **where)
        if paths is not None and len(paths) != len(ids):
            raise DataError(f"{len(paths)} image paths for {len(ids)} rows", **where)
        self._record_session()
        n0, k = self.n, len(ids)
        Xd, Id = f["features"], f["ids"]
        Xd.resize(n0 + k, axis=0)
        Id.resize(n0 + k, axis=0)
        Xd[n0:n0 + k] = X
        Id[n0:n0 + k] = np.array(ids, dtype=object)
        if has_labels:
            Ld = f["labels"]
            Ld.resize(n0 + k, axis=0)
            Ld[n0:n0 + k] = labels.astype(np.int64)
        if paths is not None or "paths" in f:
            self._write_paths(n0, k, paths)
        f.flush()
        f.attrs["n_rows"] = n0 + k  # commit
        f.flush()
        existing.update(ids)
        if self._id_index is not None:
            for j, i in enumerate(ids):
                self._id_index[i] = n0 + j
        if self._ids_cache is not None and len(self._ids_cache) == n0:
            self._ids_cache = np.concatenate([self._ids_cache, np.array(ids, dtype=str)])

    def _write_paths(self, n0: int, k: int, paths) -> None:
        f = self._h5
        paths = [""] * k if paths is None else [str(p) for p in paths]
        if "paths" not in f:
            f.create_dataset("paths", shape=(n0,), maxshape=(None,),
                             dtype=_h5py().string_dtype("utf-8"), chunks=(4096,))
        Pd = f["paths"]
        Pd.resize(n0 + k, axis=0)
        Pd[n0:n0 + k] = np.array(paths, dtype=object)

    # ------------------------------------------------------------------ reading
    def _read_ids_range(self, start, stop) -> np.ndarray:
        if stop <= start:
            return np.array([], dtype=str)
        if self._keep is not None:
            phys = self._keep[start:stop]
            raw = self._h5["ids"].asstr()[int(phys[0]):int(phys[-1]) + 1]
            return np.asarray(raw, dtype=str)[phys - phys[0]]
        raw = self._h5["ids"].asstr()[start:stop]
        return np.asarray(raw, dtype=str)

    def _range(self, start, stop):
        n = self.n
        start = 0 if start is None else int(start)
        stop = n if stop is None else int(stop)
        if start < 0:
            start += n
        if stop < 0:
            stop += n
        start, stop = max(0, min(start, n)), max(0, min(stop, n))
        return start, max(start, stop)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of the matrix (float32, clipped to the committed rows)."""
        start, stop = self._range(start, stop)
        return self._read_block(start, stop)

    def _read_block(self, start, stop) -> np.ndarray:
        """Rows ``start:stop`` (of those read), checked."""
        if self._keep is not None:
            if stop <= start:
                return np.empty((0, self.dim), dtype=np.float32)
            phys = self._keep[start:stop]
            return self._read_phys(int(phys[0]), int(phys[-1]) + 1)[phys - phys[0]]
        out = self._read_phys(start, stop)
        self._check_finite(out, np.arange(start, stop))
        return out

    def _read_phys(self, start, stop) -> np.ndarray:
        """Rows ``start:stop`` of the file's matrix as float32, unchecked."""
        out = np.empty((stop - start, self.dim), dtype=np.float32)
        if stop > start:
            ds = self._h5["features"]
            if ds.dtype == np.float32:
                # read_direct into a fresh array: chunk-aligned reads bypass the HDF5 chunk cache
                ds.read_direct(out, np.s_[start:stop], np.s_[0:stop - start])
            else:
                self._check_dtype(ds)
                out[:] = ds[start:stop]
        return out

    def _check_dtype(self, ds) -> None:
        if not (np.issubdtype(ds.dtype, np.floating) or np.issubdtype(ds.dtype, np.integer)
                or ds.dtype == np.bool_):
            raise DataError(f"the features dataset holds {ds.dtype} values, not numbers",
                            path=self.path, hint="give a .h5 file written by `primo extract`")

    def _check_finite(self, X, rows) -> None:
        """DataError naming the first row of ``X`` with NaN / inf (``rows``: their file rows)."""
        bad = _bad_rows_of(X)
        if len(bad):
            r = int(rows[int(bad[0])])
            doc = _str(self._h5["ids"].asstr()[r]) if r < self._h5["ids"].shape[0] else "?"
            raise DataError(f"NaN or infinite feature values in document {doc!r} (row index {r}: "
                            f"{_problem(X[int(bad[0])])})", path=self.path, record=r + 1,
                            hint="fix or drop that vector, or pass `skip_bad_rows` to leave such "
                                 "rows out")

    def read_rows(self, start: int = 0, stop: int | None = None):
        """``(ids, X)`` of rows ``start:stop``."""
        start, stop = self._range(start, stop)
        return self._read_ids_range(start, stop), self._read_block(start, stop)

    def default_chunksize(self) -> int:
        """Rows per :meth:`iter_chunks` step by default: whole HDF5 chunks, about 64 MB."""
        cr = self.chunk_rows
        return max(cr, (_READ_BYTES // (4 * self.dim)) // cr * cr)

    def iter_chunks(self, chunksize: int | None = None, start: int = 0, stop: int | None = None,
                    labels: bool = False):
        """Yield ``(ids, X)`` (or ``(ids, X, labels)``) in row order, ``chunksize`` rows at a time.

        Memory stays at one chunk whatever the size of the store. The default chunk size is a
        whole number of HDF5 chunks (about 64 MB of features).
        """
        chunksize = int(chunksize or self.default_chunksize())
        if chunksize < 1:
            raise UsageError(f"chunksize must be at least 1, got {chunksize}")
        start, stop = self._range(start, stop)
        if labels and not self.has_labels:
            raise DataError("the feature store has no labels", path=self.path)
        for a in range(start, stop, chunksize):
            b = min(stop, a + chunksize)
            out = (self._read_ids_range(a, b), self._read_block(a, b))
            if labels:
                if self._keep is not None:
                    phys = self._keep[a:b]
                    lab = self._h5["labels"][int(phys[0]):int(phys[-1]) + 1][phys - phys[0]]
                else:
                    lab = self._h5["labels"][a:b]
                out = out + (lab,)
            yield out

    def index_of(self, ids) -> np.ndarray:
        """Row numbers of the given IDs (unknown ID -> DataError naming it)."""
        if self._id_index is None:
            self._id_index = {i: k for k, i in enumerate(self.ids.tolist())}
        idx = self._id_index
        rows = np.empty(len(ids), dtype=np.int64)
        for k, i in enumerate(ids):
            r = idx.get(str(i))
            if r is None:
                raise DataError(f"document ID {str(i)!r} is not in the feature store", path=self.path,
                                hint="check the ID, or extract that document first")
            rows[k] = r
        return rows

    def read_ids(self, ids) -> np.ndarray:
        """Feature vectors of the given IDs, in the requested order (repeats allowed)."""
        ids = ids.tolist() if isinstance(ids, np.ndarray) else list(ids)
        rows = self.index_of(ids)
        return self.read_index(rows)

    def read_index(self, rows) -> np.ndarray:
        """Feature vectors of the given row numbers, in the requested order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        if len(rows) == 0:
            return out
        if rows.min() < 0 or rows.max() >= self.n:
            raise DataError(f"row {int(rows.max() if rows.max() >= self.n else rows.min())} is "
                            f"outside the store's {self.n} rows", path=self.path)
        if self._keep is not None:
            rows = self._keep[rows]
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        Xd = self._h5["features"]
        block = self.default_chunksize()
        i = 0
        while i < len(srt):
            lo = srt[i]
            j = int(np.searchsorted(srt, lo + block, side="left"))
            hi = srt[j - 1] + 1
            part = srt[i:j]
            if len(part) * 4 < hi - lo and len(unique(part)) == len(part):
                data = Xd[part.tolist()] if len(part) > 1 else Xd[int(part[0]):int(part[0]) + 1]
                if data.dtype != np.float32:
                    self._check_dtype(Xd)
                out[order[i:j]] = data
            else:
                data = self._read_phys(int(lo), int(hi))
                out[order[i:j]] = data[part - lo]
            i = j
        if self._keep is None:
            self._check_finite(out, rows)
        return out

    def validate(self, chunksize: int | None = None) -> dict:
        """Check the whole store; return a summary dict or raise :class:`DataError`.

        Checks: committed rows consistent with the datasets, IDs non-empty and unique, every value
        finite, labels (if any) present for every row.
        """
        f = self._h5
        self._check_format(f, self.path)
        ids = self.ids
        if len(ids) != self.n:
            raise DataError(f"feature store has {len(ids)} IDs for {self.n} rows", path=self.path)
        empty = np.flatnonzero(np.char.str_len(ids) == 0) if len(ids) else np.array([], int)
        if len(empty):
            raise DataError("empty document ID", path=self.path, record=int(empty[0]) + 1,
                            hint="re-create the store")
        uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
        if len(uniq) != len(ids):
            d = int(np.argmax(counts > 1))
            raise DataError(f"duplicate document ID {str(uniq[d])!r} ({int(counts[d])} rows)",
                            path=self.path, record=int(first[d]) + 1,
                            hint="document IDs must be unique; re-create the store")
        n_zero_rows = 0
        nnz = 0
        for a, (_, X) in zip(range(0, self.n, chunksize or self.default_chunksize()),
                             self.iter_chunks(chunksize)):
            finite = np.isfinite(X).all(axis=1)
            if not finite.all():
                r = int(np.flatnonzero(~finite)[0])
                raise DataError(f"NaN or infinite feature values in document {str(ids[a + r])!r}",
                                path=self.path, record=a + r + 1, hint="re-extract that document")
            n_zero_rows += int((~X.any(axis=1)).sum())
            nnz += int(np.count_nonzero(X))
        return {"path": str(self.path), "n": self.n, "dim": self.dim, "labels": self.has_labels,
                "zero_rows": n_zero_rows,
                "density": (nnz / (self.n * self.dim)) if self.n else 0.0,
                "extractor": self.metadata.get("extractor")}


def write_features(path, ids, X, metadata: dict | None = None, labels=None, chunk_rows=None) -> None:
    """Write a whole store at once, atomically (temporary file, renamed on success)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"features must be a 2-D matrix, got shape {X.shape}", path=path)
    with atomic_file(path, suffix=".h5") as tmp:
        with FeatureStore.create(tmp, X.shape[1], metadata, chunk_rows=chunk_rows,
                                 labels=labels is not None, overwrite=True) as fs:
            step = max(1, (1 << 26) // (4 * max(1, X.shape[1])))
            ids = list(ids)
            if len(ids) != X.shape[0]:
                raise DataError(f"{len(ids)} IDs for {X.shape[0]} feature rows", path=path)
            for a in range(0, max(1, X.shape[0]), step):
                b = min(X.shape[0], a + step)
                if b > a:
                    fs.append(ids[a:b], X[a:b], None if labels is None else np.asarray(labels)[a:b])


def read_features(path):
    """``(ids, X)`` of a whole store, for small stores (everything in memory)."""
    with FeatureStore.open(path) as fs:
        return fs.ids, fs.read()


def _str(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


