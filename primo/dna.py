"""DNA helpers shared by every package: alphabet, validation, reverse complement, one-hot.

One-hot channels are in the order A, C, G, T. With this order the complement of a base is the channel
axis reversed, so the reverse complement of a one-hot matrix ``x`` (L x 4) is ``x[::-1, ::-1]``.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

__all__ = [
    "BASES", "BYTE_CODE", "LETTERS", "revcomp", "validate_sequence", "encode_seqs", "decode_seqs",
    "onehot", "from_onehot", "revcomp_onehot", "gc_fraction", "longest_homopolymer",
]

BASES = "ACGT"
_COMP = str.maketrans("ACGTacgtNn", "TGCAtgcaNn")

#: ASCII byte -> base code (A=0 C=1 G=2 T=3, either case; anything else 255): the one look-up
#: table from bytes to codes (``BYTE_CODE[np.frombuffer(b"ACGT", np.uint8)]`` -> 0 1 2 3)
BYTE_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(BASES):
    BYTE_CODE[ord(_b)] = _i
    BYTE_CODE[ord(_b.lower())] = _i
#: base code -> ASCII byte (the inverse of :data:`BYTE_CODE`)
LETTERS = np.frombuffer(BASES.encode(), dtype=np.uint8)


def revcomp(seq: str) -> str:
    """Reverse complement of a DNA string (A, C, G, T, N; case kept)."""
    return seq.translate(_COMP)[::-1]


def validate_sequence(seq: str, *, length: int | None = None, what: str = "sequence",
                      path=None, line=None, record=None) -> str:
    """Return ``seq`` upper-cased if it is pure A/C/G/T (and of ``length``), else raise DataError."""
    if not isinstance(seq, str):
        raise DataError(f"{what} is not text: {seq!r}", path=path, line=line, record=record)
    s = seq.strip().upper()
    if not s:
        raise DataError(f"{what} is empty", path=path, line=line, record=record,
                        hint="every row needs an A/C/G/T sequence")
    bad = set(s) - set(BASES)
    if bad:
        raise DataError(
            f"{what} {_short(s)} has unknown base(s) {''.join(sorted(bad))!r}",
            path=path, line=line, record=record, hint="only A, C, G, T are allowed")
    if length is not None and len(s) != length:
        raise DataError(f"{what} {_short(s)} has {len(s)} nt, expected {length}",
                        path=path, line=line, record=record)
    return s


def _short(s: str, n: int = 24) -> str:
    return repr(s if len(s) <= n else s[: n - 3] + "...")


def encode_seqs(seqs, length: int | None = None, *, what: str = "sequence", path=None,
                first_line: int | None = None) -> np.ndarray:
    """Sequences of equal length -> uint8 codes (N x L, A=0 C=1 G=2 T=3).

    Raises DataError naming the first bad record (0-based index, or ``first_line + i`` as a line).
    """
    seqs = list(seqs)
    if not seqs:
        return np.zeros((0, length or 0), dtype=np.uint8)
    L = length if length is not None else len(str(seqs[0]).strip())
    try:
        buf = "".join(seqs).encode("ascii")
    except UnicodeEncodeError:
        buf = None
    if buf is not None and len(buf) == L * len(seqs):
        codes = BYTE_CODE[np.frombuffer(buf, dtype=np.uint8)].reshape(len(seqs), L)
        if not (codes == 255).any():
            return codes
    # slow path: report the first bad one; clean (stripped, upper-cased) sequences are encoded
    clean = []
    for i, s in enumerate(seqs):
        kw = {"line": first_line + i} if first_line is not None else {"record": i}
        clean.append(validate_sequence(s, length=L, what=what, path=path, **kw))
    return BYTE_CODE[np.frombuffer("".join(clean).encode("ascii"), dtype=np.uint8)].reshape(len(clean), L)


def decode_seqs(codes: np.ndarray) -> list[str]:
    """uint8 codes (N x L) -> list of strings."""
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.ndim == 1:
        codes = codes[None, :]
    letters = LETTERS[codes]
    return [row.tobytes().decode("ascii") for row in letters]


def onehot(seqs, length: int | None = None, dtype=np.float32) -> np.ndarray:
    """Sequences -> one-hot array (N x L x 4), channels A, C, G, T."""
    codes = seqs if isinstance(seqs, np.ndarray) and seqs.dtype == np.uint8 else encode_seqs(seqs, length)
    return np.eye(4, dtype=dtype)[codes]


def from_onehot(x: np.ndarray) -> list[str]:
    """Soft or hard one-hot (N x L x 4) -> sequences, reading each position by argmax."""
    return decode_seqs(np.asarray(x).argmax(axis=-1).astype(np.uint8))


def revcomp_onehot(x: np.ndarray) -> np.ndarray:
    """Reverse complement of one-hot sequences (... x L x 4)."""
    return x[..., ::-1, ::-1]


def gc_fraction(seq: str) -> float:
    s = seq.upper()
    return (s.count("G") + s.count("C")) / max(len(s), 1)


def longest_homopolymer(seq: str) -> int:
    best = run = 0
    prev = None
    for ch in seq:
        run = run + 1 if ch == prev else 1
        prev = ch
        best = max(best, run)
    return best
