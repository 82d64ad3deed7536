"""Exact barcodes -> document indices (no error correction), vectorised over many barcodes."""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from .scheme import BarcodeScheme

__all__ = ["BarcodeParser"]


class BarcodeParser:
    """Exact (no error correction) barcode -> codeword -> document index, vectorised.

    For barcodes that must be exact, such as those of a pool's ``database_seqs.csv.gz``; reads
    go through :class:`primo.barcodes.decode.BarcodeDecoder` (error and erasure correction).

    >>> from primo.barcodes import BarcodeScheme
    >>> from primo.dna import encode_seqs
    >>> scheme = BarcodeScheme()
    >>> idx, row, problem = BarcodeParser(scheme).parse(encode_seqs(scheme.encode([5, 1600042])))
    >>> idx.tolist(), row, problem
    ([5, 1600042], -1, '')
    """

    def __init__(self, scheme: BarcodeScheme):
        self.scheme = scheme
        self.w = scheme.word_length
        self.k = scheme.data_symbols + scheme.check_symbols
        if self.w > 12:
            raise UsageError("codebook words longer than 12 nt are not supported")
        self.table = np.full(4 ** self.w, 255, dtype=np.uint8)
        for sym, word in enumerate(scheme.codebook):
            v = 0
            for ch in word:
                v = v * 4 + "ACGT".index(ch)
            self.table[v] = sym

    def parse(self, bcodes: np.ndarray):
        """Barcode codes (N x w*k, values 0..3) -> (indices, problem_row, problem_text)."""
        n = len(bcodes)
        words = bcodes.reshape(n, self.k, self.w)
        dt = np.uint16 if self.w <= 8 else np.uint32
        v = np.zeros((n, self.k), dtype=dt)
        for j in range(self.w):
            v <<= dt(2)
            v |= words[:, :, j]
        sym = self.table[v]
        bad = (sym == 255).any(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            j = int(np.flatnonzero(sym[i] == 255)[0])
            word = "".join("ACGT"[int(c)] for c in words[i, j])
            return None, i, f"barcode word {j + 1} {word!r} is not in the codebook"
        d = self.scheme.data_symbols
        check = self.scheme.field.rs_encode(sym[:, :d], self.scheme.check_symbols,
                                            self.scheme.fcr)[:, d:]
        bad = (check != sym[:, d:]).any(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return None, i, "barcode is not an exact Reed-Solomon codeword (check symbols differ)"
        ids = self.scheme.ids_of_codewords(sym)
        bad = ids >= self.scheme.n_ids
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            return None, i, f"barcode encodes ID {int(ids[i])}, outside the scheme's {self.scheme.n_ids:,} IDs"
        return self.scheme.indices_of(ids), -1, ""
