"""Line-oriented barcode encoding and decoding for pipes (``primo barcodes encode/decode``).

Input is text, one item per line; output has exactly one line per input line, in order, and is
produced chunk by chunk, so arbitrarily long streams run in constant memory.

* encode: a document index per line (a non-negative integer) -> its 30-nt barcode.
* decode: a 30-nt barcode per line (A, C, G, T, and N for an unreadable base; any case) -> the
  document index, or an empty line when the barcode is rejected; with ``status=True`` a second,
  tab-separated column names the :data:`~primo.barcodes.decode.STATUS_NAMES` entry.

Surrounding whitespace (including ``\\r``) is ignored. A line that is not an integer, an index
outside the scheme (or the pool), a barcode of the wrong length or with other characters is a
:class:`~primo.errors.DataError` naming the line; lines before the chunk holding it have been
written already.
"""

from __future__ import annotations

import itertools
import re
from typing import Iterable, Iterator

import numpy as np

from ..arrays import unique
from ..errors import DataError, shorten
from .decode import BAD_CHARACTERS, BAD_LENGTH, STATUS_NAMES, BarcodeDecoder
from .scheme import BarcodeScheme

__all__ = ["encode_lines", "decode_lines", "DEFAULT_CHUNKSIZE"]

DEFAULT_CHUNKSIZE = 1 << 16


def _chunks(lines: Iterable[str], chunksize: int):
    it = iter(lines)
    first = 1
    while True:
        chunk = list(itertools.islice(it, chunksize))
        if not chunk:
            return
        yield first, [s.strip() for s in chunk]
        first += len(chunk)


_INDEX = re.compile(r"\s*-?[0-9]+\s*", re.ASCII)


def _parse_indices(items: list[str], first: int, path, n_ids: int) -> np.ndarray:
    """Integers of a chunk of lines; DataError naming the first line that is not one in range.

    Only ASCII digits are indices: Python's ``int`` also takes full-width and other Unicode digits,
    ``_`` separators and a ``+`` sign, which are refused here (they are not what a file of indices
    holds, and another tool would read them differently)."""
    joined = "".join(items)
    vals = None
    if joined.isascii() and "_" not in joined and "+" not in joined:
        try:
            vals = [int(s) for s in items]
        except ValueError:
            vals = None
    if vals is not None:
        if min(vals) >= 0 and max(vals) < n_ids:
            return np.array(vals, dtype=np.int64)
        j = next(j for j, v in enumerate(vals) if not 0 <= v < n_ids)
        raise DataError(f"document index {vals[j]} is outside 0..{n_ids - 1:,}", path=path,
                        line=first + j, hint=f"the barcode scheme has {n_ids:,} IDs")
    for j, s in enumerate(items):
        if not _INDEX.fullmatch(s):
            what = "an empty line" if not s else shorten(s)
            raise DataError(f"{what} is not a document index", path=path, line=first + j,
                            hint="give one non-negative integer per line") from None
    raise AssertionError("unreachable")  # pragma: no cover


def encode_lines(lines: Iterable[str], scheme: BarcodeScheme | None = None, *,
                 pool_indices=None, chunksize: int = DEFAULT_CHUNKSIZE,
                 path=None) -> Iterator[str]:
    """Yield text blocks of barcodes (one per line) for lines of document indices.

    Parameters
    ----------
    lines : iterable of str
        One document index per line.
    scheme : BarcodeScheme, optional
        Default: the published scheme.
    pool_indices : array of int, optional
        When given, every index must be one of these (the documents of a pool).
    chunksize : int
        Lines per vectorised step.
    path : str, optional
        Name of the input, for error messages.

    Examples
    --------
    >>> "".join(encode_lines(["1600042\\n"]))
    'CTGATAGTAGATCATAGATGACACGATGAT\\n'
    """
    scheme = scheme if scheme is not None else BarcodeScheme()
    in_pool = unique(np.asarray(pool_indices, dtype=np.int64)) if pool_indices is not None \
        else None
    for first, items in _chunks(lines, chunksize):
        idx = _parse_indices(items, first, path, scheme.n_ids)
        if in_pool is not None:
            pos = np.minimum(np.searchsorted(in_pool, idx), max(len(in_pool) - 1, 0))
            missing = in_pool[pos] != idx if len(in_pool) else np.ones(len(idx), bool)
            if missing.any():
                j = int(np.argmax(missing))
                raise DataError(f"document index {idx[j]} is not in the pool", path=path,
                                line=first + j, hint="give indices of the pool's documents, or "
                                "leave out `pool`")
        bc = scheme.encode_bytes(idx)
        yield "\n".join(bc.astype(f"U{scheme.length}").tolist()) + "\n"


def decode_lines(lines: Iterable[str], decoder: BarcodeDecoder | None = None, *,
                 status: bool = False, chunksize: int = DEFAULT_CHUNKSIZE,
                 path=None, counts: dict | None = None) -> Iterator[str]:
    """Yield text blocks of document indices (empty line when rejected) for lines of barcodes.

    Parameters
    ----------
    lines : iterable of str
        One barcode per line.
    decoder : BarcodeDecoder, optional
        Default: the published scheme, no pool.
    status : bool
        Add a tab and the status name to each output line.
    chunksize : int
        Lines per vectorised step.
    path : str, optional
        Name of the input, for error messages.
    counts : dict, optional
        Updated in place with ``{status name: count}``.

    Examples
    --------
    >>> "".join(decode_lines(["CTGATAGTAGATCATAGATGACACGATGAT\\n", "A" * 30], status=True))
    '1600042\\texact\\n\\tuncorrectable\\n'
    """
    decoder = decoder if decoder is not None else BarcodeDecoder()
    L = decoder.scheme.length
    names = np.array(STATUS_NAMES)
    for first, items in _chunks(lines, chunksize):
        res = decoder.decode(items)
        bad = (res.status == BAD_LENGTH) | (res.status == BAD_CHARACTERS)
        if bad.any():
            j = int(np.argmax(bad))
            s = items[j]
            if res.status[j] == BAD_LENGTH:
                what = "an empty line" if not s else f"barcode {shorten(s)} has {len(s)} nt"
                raise DataError(f"{what}, expected a {L}-nt barcode", path=path, line=first + j,
                                hint="give one barcode per line")
            chars = "".join(sorted(set(s.upper()) - set("ACGTN")))
            raise DataError(f"barcode {shorten(s)} has unknown character(s) {chars!r}", path=path,
                            line=first + j, hint="only A, C, G, T, and N for an unreadable "
                                                 "base, are allowed")
        if counts is not None:
            for k, v in res.counts().items():
                counts[k] = counts.get(k, 0) + v
        out = res.index.astype(str).astype(object)
        out[~res.accepted] = ""
        if status:
            out = out + "\t" + names[res.status].astype(object)
        yield "\n".join(out.tolist()) + "\n"
