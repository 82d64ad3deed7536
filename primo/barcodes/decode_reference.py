"""The reference decoder: the rule of :mod:`primo.barcodes.decode`, one barcode at a time with
``reedsolo`` and brute force, to check the vectorised decoder against (tests, experiments).

:func:`decode_reference` is also importable from :mod:`primo.barcodes.decode`.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..arrays import unique
from .decode_status import (AMBIGUOUS, BAD_CHARACTERS, BAD_LENGTH, CORRECTED_ERASURE,
                            CORRECTED_ERROR, DEFAULT_MAX_DISTANCE, EXACT, NOT_IN_POOL,
                            POOL_RESOLVED, TOO_DISTANT, UNCORRECTABLE, DecodeResult)
from .scheme import BarcodeScheme

__all__ = ["decode_reference"]


def decode_reference(barcodes, scheme: BarcodeScheme | None = None, pool_indices=None,
                     max_distance: int | None = DEFAULT_MAX_DISTANCE) -> DecodeResult:
    """Slow, simple decoder: one barcode at a time with ``reedsolo`` (for checking the fast one).

    Implements the rule of the module docstring by brute force: plain RS is
    ``RSCodec(nsym=2, nsize=6, c_exp=6, prim, generator, fcr).decode(word, erase_pos=...)``; pool
    candidates are found by declaring every set of unread positions erased (and, for three
    erasures, trying all 64 values of one of them) and decoding each with reedsolo.
    """
    import reedsolo

    scheme = scheme if scheme is not None else BarcodeScheme()
    rs = reedsolo.RSCodec(nsym=2, nsize=6, c_exp=6, prim=scheme.prim,
                          generator=scheme.generator, fcr=scheme.fcr)
    words = {w: i for i, w in enumerate(scheme.codebook)}
    pool_ids = None
    if pool_indices is not None:
        pool_idx = unique(np.asarray(pool_indices, dtype=np.int64))
        pool_ids = dict(zip(scheme.ids_of(pool_idx).tolist(), pool_idx.tolist()))
    cap = max_distance
    out = []
    for bc in barcodes:
        if isinstance(bc, bytes):
            bc = bc.decode("ascii", "replace")
        out.append(_reference_one(str(bc), scheme, rs, words, pool_ids, cap))
    if not out:
        return DecodeResult.empty(0)
    idx, ids, status, dist = map(np.array, zip(*out))
    return DecodeResult(idx.astype(np.int64), ids.astype(np.int64), status.astype(np.uint8),
                        dist.astype(np.int16))


def _rs_decode(rs, word, erase):
    """reedsolo decoding held to the bounded-distance rule ``2 e + f <= 2``.

    reedsolo 1.7 also "corrects" one erasure plus one error (it runs Berlekamp-Massey on the single
    Forney syndrome that is left, which guesses the error position with no redundancy to check it);
    such answers are refused here, as the fast decoder refuses them.
    """
    import reedsolo

    try:
        _, full, errata = rs.decode(bytearray(word), erase_pos=list(erase) or None)
    except reedsolo.ReedSolomonError:
        return None
    errors = len(set(errata) - set(erase))
    if 2 * errors + len(erase) > 2:
        return None
    return list(full)


def _reference_one(bc, scheme, rs, words, pool_ids, cap):
    rejected = lambda s: (-1, -1, s, -1)  # noqa: E731
    if len(bc) != 30:
        return rejected(BAD_LENGTH)
    bc = bc.upper()
    if set(bc) - set("ACGTN"):
        return rejected(BAD_CHARACTERS)
    kmers = [bc[5 * i:5 * i + 5] for i in range(6)]
    word = [words.get(k, 0) for k in kmers]
    erase = [i for i, k in enumerate(kmers) if k not in words]
    f = len(erase)
    nN = bc.count("N")

    def ident(cw):
        return cw[0] | cw[1] << 6 | cw[2] << 12 | cw[3] << 18

    def dist(cw):  # N counts as a difference
        bars = "".join(scheme.codebook[s] for s in cw)
        return sum(a != b for a, b in zip(bars, bc))

    plain = _rs_decode(rs, word, erase) if f <= 2 else None
    if plain is not None:
        if f == 0:
            pst = EXACT if plain == word else CORRECTED_ERROR
        else:
            pst = CORRECTED_ERASURE
    if pool_ids is None:
        if plain is None:
            return rejected(UNCORRECTABLE)
        i = ident(plain)
        if i >= scheme.n_ids:
            return rejected(NOT_IN_POOL)
        d = dist(plain) - nN
        if cap is not None and d > cap:
            return rejected(TOO_DISTANT)
        return (int(scheme.indices_of([i])[0]), i, pst, d)
    if f >= 4:
        return rejected(UNCORRECTABLE)
    # candidates: codewords agreeing with >= min(4, 6 - f) readable symbols
    readable = [i for i in range(6) if i not in erase]
    cands = set()
    if f <= 2:
        for keep in itertools.combinations(readable, 4):
            er = [i for i in range(6) if i not in keep]
            cw = _rs_decode(rs, word, er)
            if cw is not None:
                cands.add(tuple(cw))
    else:
        for v in range(64):
            w2 = list(word)
            w2[erase[0]] = v
            cw = _rs_decode(rs, w2, erase[1:])
            if cw is not None:
                cands.add(tuple(cw))
    scored = sorted((dist(cw), ident(cw)) for cw in cands if ident(cw) in pool_ids)
    if not scored:
        return rejected(NOT_IN_POOL if plain is not None else UNCORRECTABLE)
    best_d, best_id = scored[0]
    if cap is not None and best_d - nN > cap:
        return rejected(TOO_DISTANT)
    if len(scored) > 1 and scored[1][0] == best_d:
        return rejected(AMBIGUOUS)
    if plain is not None and ident(plain) == best_id:
        s = pst
    else:
        s = POOL_RESOLVED
    return (pool_ids[best_id], best_id, s, best_d - nN)
