"""What decoding a barcode can give: the status codes and :class:`DecodeResult`.

The codes and the decoding rule are described in :mod:`primo.barcodes.decode` (every name here is
importable from there).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = [
    "DecodeResult", "STATUS_NAMES", "STATUS_CODES", "DEFAULT_MAX_DISTANCE",
    "EXACT", "CORRECTED_ERROR", "CORRECTED_ERASURE", "POOL_RESOLVED", "UNCORRECTABLE",
    "NOT_IN_POOL", "AMBIGUOUS", "TOO_DISTANT", "BAD_LENGTH", "BAD_CHARACTERS",
]

STATUS_NAMES = ("exact", "corrected_error", "corrected_erasure", "pool_resolved", "uncorrectable",
                "not_in_pool", "ambiguous", "too_distant", "bad_length", "bad_characters")
STATUS_CODES = {name: i for i, name in enumerate(STATUS_NAMES)}
(EXACT, CORRECTED_ERROR, CORRECTED_ERASURE, POOL_RESOLVED, UNCORRECTABLE, NOT_IN_POOL, AMBIGUOUS,
 TOO_DISTANT, BAD_LENGTH, BAD_CHARACTERS) = range(len(STATUS_NAMES))
_N_ACCEPTED = 4

#: default cap on the base substitutions between the received barcode and the accepted one
DEFAULT_MAX_DISTANCE = 3


@dataclasses.dataclass
class DecodeResult:
    """Outcome of decoding N barcodes.

    Attributes
    ----------
    index : int64 array
        Document index, -1 when rejected.
    id : int64 array
        Barcode ID (the RS data word), -1 when rejected.
    status : uint8 array
        Status code, see :data:`STATUS_NAMES` (codes below 4 are accepted).
    distance : int16 array
        Called bases substituted to reach the accepted barcode (N not counted), -1 when rejected.
    """

    index: np.ndarray
    id: np.ndarray
    status: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.status)

    @property
    def accepted(self) -> np.ndarray:
        """Boolean mask of accepted barcodes."""
        return self.status < _N_ACCEPTED

    def status_names(self) -> np.ndarray:
        """Status names as a numpy array of str."""
        return np.array(STATUS_NAMES)[self.status]

    def counts(self) -> dict:
        """``{status name: count}`` for every status (zeros included), in code order."""
        c = np.bincount(self.status, minlength=len(STATUS_NAMES))
        return {name: int(c[i]) for i, name in enumerate(STATUS_NAMES)}

    @classmethod
    def concatenate(cls, parts) -> "DecodeResult":
        parts = list(parts)
        if not parts:
            return cls.empty(0)
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts])
                     for f in dataclasses.fields(cls)))

    @classmethod
    def empty(cls, n: int) -> "DecodeResult":
        return cls(np.full(n, -1, np.int64), np.full(n, -1, np.int64),
                   np.zeros(n, np.uint8), np.full(n, -1, np.int16))
