"""Byte-level building blocks of the read assignment (:mod:`primo.reads.assign`): the byte
tables (canonical base, complement, 2-bit code) and the vectorised gathering of windows of reads
and of a pattern's mismatches along them, over batches of reads held in one byte buffer."""

from __future__ import annotations

import numpy as np

from ..dna import BYTE_CODE

_N = ord("N")
# any byte -> canonical upper-case base, everything else N
_CANON = np.full(256, _N, dtype=np.uint8)
for _b in b"ACGT":
    _CANON[_b] = _b
    _CANON[_b + 32] = _b
_COMP = np.full(256, _N, dtype=np.uint8)
for _a, _b in zip(b"ACGT", b"TGCA"):
    _COMP[_a] = _b
    _COMP[_a + 32] = _b


# byte -> 2-bit base code (A0 C1 G2 T3, either case), anything else 4
_BASE2 = np.minimum(BYTE_CODE, 4)


def _bytes(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("ascii"), dtype=np.uint8)


def _rc_bytes(s: str) -> np.ndarray:
    return _COMP[_bytes(s)][::-1].copy()


# vectorised helpers
# --------------------------------------------------------------------------------------------------
def _window(a: np.ndarray, pos: np.ndarray, width: int, lo: np.ndarray, hi: np.ndarray,
            lut: np.ndarray | None = _CANON, fill: int = _N) -> np.ndarray:
    """Rows ``a[pos_i : pos_i + width]`` (n x width); positions outside ``[lo_i, hi_i)`` -> fill.

    Rows that lie wholly inside their bounds (the common case) are gathered without masking.
    """
    n = len(pos)
    if n == 0 or width <= 0 or len(a) == 0:
        return np.full((n, max(width, 0)), fill, dtype=np.uint8)
    full = (pos >= lo) & (pos + width <= hi)
    if len(a) < width:
        full[:] = False
    if full.all():
        # rows of a sliding-window view: one contiguous copy per row, no index matrix
        out = _sliding(a, width)[pos]
        return lut.take(out) if lut is not None else out
    out = np.full((n, width), fill, dtype=np.uint8)
    f = np.flatnonzero(full)
    if len(f):
        w = _sliding(a, width)[pos[f]]
        out[f] = lut.take(w) if lut is not None else w
    p = np.flatnonzero(~full)
    ar = np.arange(width, dtype=np.int64)
    idx = pos[p, None] + ar
    inside = (idx >= lo[p, None]) & (idx < hi[p, None])
    np.clip(idx, 0, len(a) - 1, out=idx)
    w = a.take(idx)
    if lut is not None:
        w = lut.take(w)
    w[~inside] = fill
    out[p] = w
    return out


def _sliding(a: np.ndarray, width: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(a, width)


def _near_offset(a, lo, hi, pat, e: int, shift: int, max_mm: int):
    """Best placement of ``pat`` within ``shift`` of offset ``e`` in each read ``a[lo:hi]``
    (fewest mismatches, then closest to ``e``, then lowest; positions beyond a read mismatch):
    ``(rows with at most max_mm mismatches, absolute position there)``."""
    start = max(e - shift, 0)
    W = _window(a, lo + start, e + shift + len(pat) - start, lo, hi)
    mm = _mismatch_profile(W, pat).astype(np.int16)
    offs = np.arange(start, start + mm.shape[1])
    key = mm * 1024 + np.abs(offs - e).astype(np.int16)[None, :]
    b = key.argmin(axis=1)
    r = np.flatnonzero(mm[np.arange(len(lo)), b] <= max_mm)
    return r, lo[r] + offs[b[r]]


def _mismatch_profile(P: np.ndarray, pat: np.ndarray) -> np.ndarray:
    """Mismatches of ``pat`` at every offset of every row of P (n x (L - len(pat) + 1), uint8)."""
    k = len(pat)
    W = P.shape[1] - k + 1
    mm = np.zeros((P.shape[0], max(W, 0)), dtype=np.uint8)
    if W <= 0:
        return mm
    for j in range(k):
        mm += P[:, j:j + W] != pat[j]
    return mm
