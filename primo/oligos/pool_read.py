"""Reading a pool back: :func:`read_pool` (a pool directory or a bare published
``database_seqs.csv.gz``, every row checked against the layout and the barcode scheme),
:class:`Pool` and :func:`pool_info`.

The format is described in :mod:`primo.oligos.pool` (every name here is importable from there).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np

from ..barcodes import BarcodeScheme
from ..barcodes.parse import BarcodeParser
from ..dna import BYTE_CODE as _CODE
from ..errors import DataError, UsageError, shorten
from ..io import gc_paused, open_input, path_inside
from .layout import OligoLayout
from .pool_format import DATABASE_FILE, MANIFEST_FILE, _hash_strings

__all__ = ["Pool", "read_pool", "pool_info"]

_UPPER = np.arange(256, dtype=np.uint8)
_UPPER[ord("a"):ord("z") + 1] -= 32


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
