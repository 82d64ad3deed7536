"""Reed-Solomon RS(6,4) over GF(2^6) solved once for every erasure pattern and syndrome pair:
the tables the vectorised decoder (:mod:`primo.barcodes.decode`) reads its corrections from.

:func:`rs_tables` is also importable from :mod:`primo.barcodes.decode`.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

from .decode_status import CORRECTED_ERASURE, CORRECTED_ERROR, EXACT, UNCORRECTABLE

__all__ = ["rs_tables"]

#: the pairs of positions two erasures (or the pool rule's candidates) can take
_PAIRS = list(itertools.combinations(range(6), 2))


@lru_cache(maxsize=8)
def rs_tables(prim: int = 0x61, generator: int = 3, fcr: int = 1):
    """Solve RS(6,4) decoding for every (erasure mask, syndrome pair) once.

    Returns ``(syn, status, corr)``: ``syn[i, v]`` is the syndrome word ``S1 << 6 | S2`` that symbol
    ``v`` at position ``i`` contributes (``S_j = sum_i c_i alpha^(j (5 - i))``, ``j = fcr, fcr + 1``;
    position 0 is the highest-degree coefficient, as in reedsolo); ``status[mask * 4096 + S]`` is
    exact / corrected_error / corrected_erasure / uncorrectable and ``corr[mask * 4096 + S]`` the
    symbols to XOR into the word whose erased positions (bits of ``mask``) were set to 0.

    The algebra: an error (or erased) value ``e`` at position ``i`` adds ``e Y_i`` to ``S1`` and
    ``e Z_i`` to ``S2``, with ``Y_i = alpha^(fcr (5 - i))``, ``Z_i = alpha^((fcr + 1)(5 - i))`` and
    locator ``X_i = Z_i / Y_i = alpha^(5 - i)``:

    * no erasure: ``S = 0`` -> exact; else one error at the position whose locator is ``S2 / S1``
      (if it is one of the six), of value ``S1 / Y_i``;
    * one erasure at ``i``: value ``S1 / Y_i``, consistent only if ``S2 = S1 X_i``;
    * two erasures at ``p, q``: the 2 x 2 system ``S1 = e_p Y_p + e_q Y_q``,
      ``S2 = e_p Z_p + e_q Z_q`` (determinant ``Y_p Y_q (X_p + X_q) != 0``) by Cramer's rule.
    """
    from .gf import get_field

    gf = get_field(6, prim, generator)
    mul, inv, log = gf.mul.astype(np.int64), gf.inv.astype(np.int64), gf.log
    Y = np.array([gf.pow(generator, fcr * (5 - i)) for i in range(6)], dtype=np.int64)
    Z = np.array([gf.pow(generator, (fcr + 1) * (5 - i)) for i in range(6)], dtype=np.int64)
    X = np.array([gf.pow(generator, 5 - i) for i in range(6)], dtype=np.int64)
    # syndrome contribution of symbol v at position i (erasure / bad values 64..66 give 0)
    syn = np.zeros((6, 67), dtype=np.uint16)
    v = np.arange(64)
    for i in range(6):
        syn[i, :64] = (mul[v, Y[i]] << 6) | mul[v, Z[i]]

    s = np.arange(4096)
    S1, S2 = s >> 6, s & 63
    status = np.full(64 * 4096, UNCORRECTABLE, dtype=np.uint8)
    corr = np.zeros((64 * 4096, 6), dtype=np.uint8)

    # no erasure
    base = 0
    status[base + 0] = EXACT
    nz = (S1 != 0) & (S2 != 0)
    ratio = np.where(nz, mul[S2, inv[S1]], 0)               # = X of the error position
    lg = np.where(nz, log[np.maximum(ratio, 1)], -1)
    loc_of_log = {int(log[X[i]]): i for i in range(6)}
    for lgv, i in loc_of_log.items():
        hit = nz & (lg == lgv)
        # S1 = e * Y_i  ->  e = S1 / Y_i
        e = mul[S1[hit], inv[Y[i]]]
        ok = mul[e, Z[i]] == S2[hit]
        rows = s[hit][ok]
        status[base + rows] = CORRECTED_ERROR
        corr[base + rows, i] = e[ok]
    # one erasure
    for i in range(6):
        base = (1 << i) * 4096
        e = mul[S1, inv[Y[i]]]
        ok = mul[e, Z[i]] == S2
        status[base + s[ok]] = CORRECTED_ERASURE
        corr[base + s[ok], i] = e[ok]
    # two erasures: S1 = ep Yp + eq Yq, S2 = ep Zp + eq Zq (a 2x2 system, always solvable)
    for p, q in _PAIRS:
        base = ((1 << p) | (1 << q)) * 4096
        det = mul[Y[p], Z[q]] ^ mul[Y[q], Z[p]]
        dinv = inv[det]
        ep = mul[mul[S1, Z[q]] ^ mul[S2, Y[q]], dinv]
        eq = mul[mul[S2, Y[p]] ^ mul[S1, Z[p]], dinv]
        status[base + s] = CORRECTED_ERASURE
        corr[base + s, p] = ep
        corr[base + s, q] = eq
    return syn, status, corr
