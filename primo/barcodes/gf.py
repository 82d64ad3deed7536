"""Arithmetic in GF(2^6) and systematic Reed-Solomon encoding, vectorised with numpy.

The field and code are those of the published primo pool: primitive polynomial 0x61
(x^6 + x^5 + 1), generator element 3, first consecutive root 1, 2 check symbols, i.e. the codewords
``reedsolo.RSCodec(nsym=2, nsize=6, c_exp=6, prim=0x61, generator=3, fcr=1)`` produces.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["GF", "get_field"]


class GF:
    """GF(2^m) with log/antilog tables; element arrays are uint8 (m <= 8)."""

    def __init__(self, m: int = 6, prim: int = 0x61, generator: int = 3):
        self.m, self.prim, self.generator = m, prim, generator
        self.size = 1 << m
        self.order = self.size - 1
        exp = np.zeros(2 * self.size, dtype=np.int64)
        log = np.full(self.size, -1, dtype=np.int64)
        x = 1
        for i in range(self.order):
            exp[i] = x
            if log[x] != -1:
                raise ValueError(f"generator {generator} is not primitive for polynomial {prim:#x}")
            log[x] = i
            x = self._mul_slow(x, generator)
        for i in range(self.order, 2 * self.size):
            exp[i] = exp[i - self.order]
        self.exp = exp.astype(np.uint8)
        self.log = log
        # full multiplication and inverse tables (64 x 64 is tiny) for vectorised work
        a = np.arange(self.size)
        la, lb = log[a][:, None], log[a][None, :]
        mul = self.exp[(la + lb) % self.order]
        mul[0, :] = 0
        mul[:, 0] = 0
        self.mul = mul.astype(np.uint8)
        inv = np.zeros(self.size, dtype=np.uint8)
        inv[1:] = self.exp[(self.order - log[1:]) % self.order]
        self.inv = inv

    def _mul_slow(self, a: int, b: int) -> int:
        r = 0
        while b:
            if b & 1:
                r ^= a
            b >>= 1
            a <<= 1
            if a & self.size:
                a ^= self.prim
        return r

    def pow(self, a: int, n: int) -> int:
        if a == 0:
            return 0
        return int(self.exp[(self.log[a] * n) % self.order])

    def generator_poly(self, nsym: int, fcr: int) -> list[int]:
        """prod_{i<nsym} (x - g^(fcr+i)), coefficients highest degree first (as reedsolo)."""
        g = [1]
        for i in range(nsym):
            root = self.pow(self.generator, fcr + i)
            # multiply g by (x + root)
            out = [0] * (len(g) + 1)
            for j, c in enumerate(g):
                out[j] ^= c
                out[j + 1] ^= int(self.mul[c, root])
            g = out
        return g

    def rs_encode(self, data: np.ndarray, nsym: int, fcr: int) -> np.ndarray:
        """Systematic RS encoding of rows of data symbols (N x k) -> codewords (N x (k + nsym)).

        The first data symbol is the highest-degree coefficient (reedsolo's convention).
        """
        data = np.asarray(data, dtype=np.uint8)
        gen = self.generator_poly(nsym, fcr)
        n, k = data.shape
        rem = np.zeros((n, nsym), dtype=np.uint8)
        for j in range(k):
            coef = data[:, j] ^ rem[:, 0]
            rem = np.concatenate([rem[:, 1:], np.zeros((n, 1), dtype=np.uint8)], axis=1)
            for t in range(nsym):
                rem[:, t] ^= self.mul[coef, gen[t + 1]]
        return np.concatenate([data, rem], axis=1)


@lru_cache(maxsize=8)
def get_field(m: int = 6, prim: int = 0x61, generator: int = 3) -> GF:
    return GF(m, prim, generator)
