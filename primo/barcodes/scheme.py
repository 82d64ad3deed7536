"""Barcode schemes: document index <-> ID <-> Reed-Solomon codeword <-> 30-nt barcode.

The default :class:`BarcodeScheme` is the one of the published 1.6 M-image primo pool:

* document index ``n`` -> ID ``perm[n]``, ``perm = numpy.random.RandomState(42).permutation(2**24 - 1)``;
* ID -> 4 base-64 digits, least significant first;
* RS over GF(2^6) (primitive polynomial 0x61, generator 3, first consecutive root 1), 4 data + 2
  check symbols, systematic;
* each symbol -> a 5-mer of a 64-word codebook: all 5-mers in base order A, T, C, G (first position
  slowest) with no two equal neighboring bases, starting with A or C and ending with G or T, first 64.

>>> str(BarcodeScheme().encode([1600042])[0])
'CTGATAGTAGATCATAGATGACACGATGAT'

Other pools may choose another ``seed`` or ``codebook``; :meth:`BarcodeScheme.to_dict` goes into the
pool manifest and :meth:`BarcodeScheme.from_dict` reads it back.
"""

from __future__ import annotations

import dataclasses
import itertools
from functools import lru_cache

import numpy as np

from ..errors import DataError, UsageError
from .gf import get_field

__all__ = ["BarcodeScheme", "default_codebook", "BARCODE_LENGTH"]

BARCODE_LENGTH = 30
N_IDS = 2**24 - 1


def default_codebook() -> tuple[str, ...]:
    """The 64 homopolymer-free 5-mers of the published pool, in symbol order."""
    words = []
    for t in itertools.product("ATCG", repeat=5):
        if any(t[i] == t[i + 1] for i in range(4)):
            continue
        if t[0] in "AC" and t[-1] in "GT":
            words.append("".join(t))
    return tuple(words[:64])


@lru_cache(maxsize=4)
def _permutation(seed: int, n_ids: int) -> np.ndarray:
    """perm[n] = ID of document index n (int32; 64 MB for the full 2**24 - 1 range).

    Same values as ``RandomState(seed).permutation(n_ids)`` (which shuffles an ``arange``), but
    shuffled in place as int32, so no 128 MB int64 copy is made on the way.
    """
    perm = np.arange(n_ids, dtype=np.int32)
    np.random.RandomState(seed).shuffle(perm)
    return perm


@lru_cache(maxsize=4)
def _inverse_permutation(seed: int, n_ids: int) -> np.ndarray:
    perm = _permutation(seed, n_ids)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(n_ids, dtype=np.int32)
    return inv


@dataclasses.dataclass(frozen=True)
class BarcodeScheme:
    """Parameters of a barcode scheme and bulk index <-> barcode encoding."""

    seed: int = 42
    codebook: tuple[str, ...] = dataclasses.field(default_factory=default_codebook)
    n_ids: int = N_IDS
    prim: int = 0x61
    generator: int = 3
    fcr: int = 1
    data_symbols: int = 4
    check_symbols: int = 2

    def __post_init__(self):
        cb = tuple(str(w).upper() for w in self.codebook)
        object.__setattr__(self, "codebook", cb)
        if len(cb) != 64:
            raise UsageError(f"a barcode codebook needs 64 words, got {len(cb)}")
        lengths = {len(w) for w in cb}
        if len(lengths) != 1:
            raise UsageError("barcode codebook words must all have the same length")
        if len(set(cb)) != 64:
            raise UsageError("barcode codebook words must be distinct")
        if any(set(w) - set("ACGT") for w in cb):
            raise UsageError("barcode codebook words may only contain A, C, G, T")
        if not (0 < self.n_ids <= 64 ** self.data_symbols):
            raise UsageError(f"n_ids must be in 1..{64 ** self.data_symbols}")
        if self.data_symbols != 4 or self.check_symbols != 2:
            raise UsageError("only RS(6,4) barcodes are supported")
        if not 0 <= self.seed <= 2**32 - 1:
            raise UsageError(f"barcode seed {self.seed} is not in 0..{2**32 - 1}")
        if not (64 <= self.prim < 128 and 0 < self.generator < 64 and 0 <= self.fcr < 64):
            raise UsageError(f"Reed-Solomon parameters prim={self.prim:#x}, generator="
                             f"{self.generator}, fcr={self.fcr} do not define a code over GF(64)")
        try:
            self.field   # a generator that is not primitive for the polynomial
        except ValueError as e:
            raise UsageError(f"Reed-Solomon parameters: {e}") from None

    # ---- derived -----------------------------------------------------------------------------
    @property
    def word_length(self) -> int:
        return len(self.codebook[0])

    @property
    def length(self) -> int:
        return self.word_length * (self.data_symbols + self.check_symbols)

    @property
    def field(self):
        return get_field(6, self.prim, self.generator)

    @property
    def is_published(self) -> bool:
        return self == BarcodeScheme()

    def codebook_array(self) -> np.ndarray:
        """uint8 (64 x word_length) ASCII bytes of the codebook."""
        return np.frombuffer("".join(self.codebook).encode(), dtype=np.uint8).reshape(64, -1)

    # ---- index <-> ID ------------------------------------------------------------------------
    def ids_of(self, indices) -> np.ndarray:
        """Document indices -> IDs (int64). Raises DataError for indices outside the ID range."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_ids):
            bad = int(idx[(idx < 0) | (idx >= self.n_ids)][0])
            raise DataError(f"document index {bad} is outside 0..{self.n_ids - 1}",
                            hint=f"a pool holds at most {self.n_ids:,} documents")
        return _permutation(self.seed, self.n_ids)[idx].astype(np.int64)

    def indices_of(self, ids) -> np.ndarray:
        """IDs -> document indices (int64); IDs outside the range give -1."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.full(ids.shape, -1, dtype=np.int64)
        ok = (ids >= 0) & (ids < self.n_ids)
        out[ok] = _inverse_permutation(self.seed, self.n_ids)[ids[ok]]
        return out

    # ---- ID <-> symbols ----------------------------------------------------------------------
    def codewords_of_ids(self, ids) -> np.ndarray:
        """IDs -> RS codewords (N x 6 uint8): 4 data digits (least significant first), 2 checks."""
        ids = np.asarray(ids, dtype=np.int64)
        digits = np.stack([(ids >> (6 * i)) & 63 for i in range(self.data_symbols)], axis=1)
        return self.field.rs_encode(digits.astype(np.uint8), self.check_symbols, self.fcr)

    @staticmethod
    def ids_of_codewords(cw: np.ndarray) -> np.ndarray:
        cw = np.asarray(cw, dtype=np.int64)
        return cw[:, 0] | (cw[:, 1] << 6) | (cw[:, 2] << 12) | (cw[:, 3] << 18)

    def barcodes_of_codewords(self, cw: np.ndarray) -> np.ndarray:
        """Codewords (N x 6) -> barcodes as an 'S30' bytes array."""
        cw = np.asarray(cw, dtype=np.uint8)
        raw = self.codebook_array()[cw].reshape(len(cw), -1)
        return np.ascontiguousarray(raw).view(f"S{self.length}").ravel()

    # ---- bulk encode -------------------------------------------------------------------------
    def encode_bytes(self, indices) -> np.ndarray:
        """Document indices -> barcodes as an 'S30' numpy array (fast, no Python strings)."""
        return self.barcodes_of_codewords(self.codewords_of_ids(self.ids_of(indices)))

    def encode(self, indices) -> np.ndarray:
        """Document indices -> barcodes as a numpy array of ``str``."""
        return self.encode_bytes(indices).astype(f"U{self.length}")

    # ---- manifest ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "scheme": "primo-rs64",
            "seed": self.seed,
            "n_ids": self.n_ids,
            "codebook": list(self.codebook),
            "rs": {"field": "GF(2^6)", "prim": self.prim, "generator": self.generator,
                   "fcr": self.fcr, "data_symbols": self.data_symbols,
                   "check_symbols": self.check_symbols},
            "id_digits": "base 64, least significant first",
            "permutation": f"numpy.random.RandomState({self.seed}).permutation({self.n_ids})",
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> "BarcodeScheme":
        if not d:
            return cls()
        try:
            rs = d.get("rs", {})
            return cls(seed=int(d.get("seed", 42)),
                       codebook=tuple(d.get("codebook") or default_codebook()),
                       n_ids=int(d.get("n_ids", N_IDS)),
                       prim=int(rs.get("prim", 0x61)), generator=int(rs.get("generator", 3)),
                       fcr=int(rs.get("fcr", 1)),
                       data_symbols=int(rs.get("data_symbols", 4)),
                       check_symbols=int(rs.get("check_symbols", 2)))
        except (TypeError, ValueError, AttributeError) as e:
            raise DataError(f"barcode parameters in the manifest are malformed ({e})") from None
