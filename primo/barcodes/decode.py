"""Bulk decoding of 30-nt barcodes back to document indices, with error and erasure correction.

A barcode is read as six 5-mers. Each 5-mer is mapped to its Reed-Solomon symbol through a lookup
table over all 5-mers; a 5-mer outside the 64-word codebook (or containing ``N``) is an **erasure**:
its position is known to be wrong, its value is not. The RS(6,4) code over GF(2^6) then corrects
``2e + f <= 2`` (one symbol error, or one or two erasures). Everything is vectorised: the two
syndromes of every barcode are computed with table look-ups, and the correction for each
(erasure pattern, syndrome pair) is read from a table that is solved algebraically once
(:func:`rs_tables`), so there is no per-barcode Python code on the hot path.

Decoding rule
-------------
``D(c)`` is the number of bases where the barcode of codeword ``c`` differs from the received
30-mer, an ``N`` counting as a difference (it is the same for every candidate, so it does not change
rankings). The reported :attr:`DecodeResult.distance` leaves the ``N`` out: it is the number of
called bases that had to be substituted, and ``max_distance`` caps it.

*Without a pool* (plain RS): a barcode is accepted when RS decoding succeeds, the ID is one a
document can have (``< scheme.n_ids``) and ``distance <= max_distance``.

*With a pool* (the document indices present): the candidates are the codewords whose ID belongs to
the pool and that agree with the received word on at least ``min(4, 6 - f)`` of its ``6 - f``
readable symbols (``f`` = number of erasures; ``f >= 4`` is rejected). With ``f <= 2`` this is every
codeword within two symbol changes that keeps four symbols, i.e. one error + one erasure, two errors,
or the plain RS answer; with ``f = 3`` it is the 64 codewords matching the three readable symbols.
The candidate with the smallest ``D`` is accepted when it is **unique** (a tie is ``ambiguous``) and
within ``max_distance``. This is maximum likelihood under a base-substitution channel, restricted
to the pool. A plain RS answer in the pool with ``D <= 1`` is always that unique best (any other
candidate differs from the received word in at least two symbols), so it is accepted without
enumerating. Note that the rule may call a barcode that plain RS decodes ``ambiguous`` when another
pool document is as close at the base level.

Two-erasure solutions use up all the redundancy: every word with exactly two unreadable 5-mers
"decodes". Only the pool check and the distance cap protect them. ``max_distance`` defaults to 3
(:data:`DEFAULT_MAX_DISTANCE`): ``experiments/barcode_recovery.py`` (1.6 M-document pool, 200,000
barcodes per case) measured that without a cap the pool rule accepts 0.28 % of random 30-mers (the
three-erasure case: some pool codeword is always closest), a cap of 4 or 3 accepts none, and a cap
of 3 rather than 4 cuts the wrong answers for 3 substitutions from 0.77 % to 0.21 %, at
no cost for 0-2 substitutions (100 %, 100 %, 99.9 % recovered; 0, 0, 0.003 % wrong).

Status codes
------------
====  ===================  ==============================================================
code  name                 meaning
====  ===================  ==============================================================
0     exact                the barcode is a codeword (no correction)
1     corrected_error      plain RS corrected one symbol error
2     corrected_erasure    plain RS filled one or two erased symbols
3     pool_resolved        resolved by the pool rule beyond plain RS
4     uncorrectable        rejected: no codeword (RS failed, and no pool candidate)
5     not_in_pool          rejected: decodes, but to an ID no document (in the pool) has
6     ambiguous            rejected: several pool documents are equally close
7     too_distant          rejected: the best answer needs more than ``max_distance`` substitutions
8     bad_length           rejected: not 30 characters
9     bad_characters       rejected: a character other than A, C, G, T, N (any case)
====  ===================  ==============================================================

Codes below 4 are accepted (:attr:`DecodeResult.accepted`).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np

from ..arrays import unique
from ..errors import UsageError
from .scheme import BarcodeScheme, _inverse_permutation

# the status codes and the result, the Reed-Solomon tables and the reference decoder are modules
# of their own; every name is importable from here
from .decode_reference import decode_reference
from .decode_status import (_N_ACCEPTED, AMBIGUOUS, BAD_CHARACTERS, BAD_LENGTH, CORRECTED_ERASURE,
                            CORRECTED_ERROR, DEFAULT_MAX_DISTANCE, EXACT, NOT_IN_POOL,
                            POOL_RESOLVED, STATUS_CODES, STATUS_NAMES, TOO_DISTANT, UNCORRECTABLE,
                            DecodeResult)
from .rs_tables import _PAIRS, rs_tables

__all__ = [
    "BarcodeDecoder", "DecodeResult", "PoolTable", "decode_reference", "as_barcode_bytes", "rs_tables",
    "STATUS_NAMES", "STATUS_CODES", "DEFAULT_MAX_DISTANCE",
    "EXACT", "CORRECTED_ERROR", "CORRECTED_ERASURE", "POOL_RESOLVED", "UNCORRECTABLE",
    "NOT_IN_POOL", "AMBIGUOUS", "TOO_DISTANT", "BAD_LENGTH", "BAD_CHARACTERS",
]

_ERASED = 64      # symbol value of a readable 5-mer outside the codebook, or one with N
_BADCHAR = 65     # 5-mer with a character other than ACGTN
_NUL = 66         # 5-mer with a NUL byte (padding of a short 'S' string)
_BIG = np.iinfo(np.int16).max

# byte -> base code: A C G T (either case) 0..3, N 4, NUL 6, anything else 5
_BYTE_CODE = np.full(256, 5, dtype=np.uint8)
for _i, _b in enumerate("ACGT"):
    _BYTE_CODE[ord(_b)] = _BYTE_CODE[ord(_b.lower())] = _i
_BYTE_CODE[ord("N")] = _BYTE_CODE[ord("n")] = 4
_BYTE_CODE[0] = 6

# two bytes (a little-endian uint16) -> code(first) << 3 | code(second): half the look-ups
_u16 = np.arange(1 << 16)
_PAIR_CODE = (_BYTE_CODE[_u16 & 255].astype(np.uint16) << 3) | _BYTE_CODE[_u16 >> 8]
del _u16

_POPCOUNT = np.array([bin(m).count("1") for m in range(64)], dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Tables:
    kmer_sym: np.ndarray    # (32768,) uint8: 5-mer key -> symbol, or _ERASED/_BADCHAR/_NUL
    dist: np.ndarray        # (32768 * 64,) uint8: key * 64 + symbol -> base differences (N differs)
    n_count: np.ndarray     # (32768,) uint8: N bases in the 5-mer
    syn: np.ndarray         # (6, 67) uint16: syndrome contribution (S1 << 6 | S2) of symbol at pos
    rs_status: np.ndarray   # (64 * 4096,) uint8: erasure mask * 4096 + syndrome -> status
    rs_corr: np.ndarray     # (64 * 4096, 6) uint8: correction to XOR into the zero-filled word


def _kmer_keys(codes: np.ndarray) -> np.ndarray:
    """(..., 5) base codes (0..7) -> 15-bit keys ``c0 << 12 | c1 << 9 | ... | c4``."""
    c = codes.astype(np.uint16)
    return (c[..., 0] << 12) | (c[..., 1] << 9) | (c[..., 2] << 6) | (c[..., 3] << 3) | c[..., 4]


def _barcode_keys(b: np.ndarray) -> np.ndarray:
    """uint8 (n, 30) ASCII -> (n, 6) 15-bit 5-mer keys, reading the bytes two at a time."""
    n = len(b)
    p = _PAIR_CODE[np.ascontiguousarray(b).view("<u2")].reshape(n, 3, 5)  # 10 nt = 2 5-mers
    k = np.empty((n, 3, 2), dtype=np.uint16)
    k[:, :, 0] = (p[:, :, 0] << 9) | (p[:, :, 1] << 3) | (p[:, :, 2] >> 3)
    k[:, :, 1] = ((p[:, :, 2] & 7) << 12) | (p[:, :, 3] << 6) | p[:, :, 4]
    return k.reshape(n, 6)


@lru_cache(maxsize=8)
def _tables(codebook: tuple, prim: int, generator: int, fcr: int) -> _Tables:
    keys = np.arange(1 << 15)
    codes = np.stack([(keys >> (3 * (4 - j))) & 7 for j in range(5)], axis=1)  # (32768, 5)
    cb_codes = _BYTE_CODE[np.frombuffer("".join(codebook).encode(), dtype=np.uint8)].reshape(64, 5)
    kmer_sym = np.full(1 << 15, _ERASED, dtype=np.uint8)
    cb_keys = _kmer_keys(cb_codes).astype(np.int64)
    kmer_sym[cb_keys] = np.arange(64, dtype=np.uint8)
    kmer_sym[(codes == 5).any(1)] = _BADCHAR
    kmer_sym[(codes == 7).any(1)] = _BADCHAR   # unused code; never produced
    kmer_sym[(codes == 6).any(1)] = _NUL
    dist = (codes[:, None, :] != cb_codes[None, :, :]).sum(-1).astype(np.uint8).ravel()
    n_count = (codes == 4).sum(1).astype(np.uint8)
    syn, status, corr = rs_tables(prim, generator, fcr)
    return _Tables(kmer_sym, dist, n_count, syn, status, corr)


# ---------------------------------------------------------------------------------------------
# input conversion
# ---------------------------------------------------------------------------------------------
def as_barcode_bytes(barcodes, length: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Barcodes in any accepted form -> ``(uint8 N x length ASCII bytes, bad_length mask)``.

    Accepts a list/tuple/iterable of ``str`` or ``bytes``, a numpy ``S``/``U`` array, or a uint8
    ``N x length`` array. Rows of the wrong length come back as NUL bytes with ``bad_length`` set;
    characters that are not ASCII become ``?`` (a bad character).
    """
    if isinstance(barcodes, (str, bytes)):
        barcodes = [barcodes]
    if isinstance(barcodes, np.ndarray):
        a = barcodes
        if a.dtype == np.uint8:
            if a.ndim != 2 or a.shape[1] != length:
                raise UsageError(f"a uint8 barcode array must be N x {length}, got shape {a.shape}")
            return np.ascontiguousarray(a), np.zeros(len(a), dtype=bool)
        a = a.ravel()
        if a.dtype.kind == "S":
            w = a.dtype.itemsize
            m = np.ascontiguousarray(a).view(np.uint8).reshape(len(a), w) if w else \
                np.zeros((len(a), 0), np.uint8)
        elif a.dtype.kind == "U":
            w = a.dtype.itemsize // 4
            u = np.ascontiguousarray(a).view(np.uint32).reshape(len(a), w) if w else \
                np.zeros((len(a), 0), np.uint32)
            m = np.where(u < 128, u, ord("?")).astype(np.uint8)
        elif a.dtype == object:
            return as_barcode_bytes(list(a), length)
        else:
            raise UsageError(f"cannot decode barcodes from an array of dtype {a.dtype}")
        if w == length:
            # numpy pads shorter strings with NUL: a NUL last byte means a shorter barcode (an
            # embedded NUL is left in place and reported as a bad character)
            short = m[:, -1] == 0 if len(m) else np.zeros(0, dtype=bool)
            if short.any():
                return _blank_rows(m, short), short
            return m, short
        out = np.zeros((len(m), length), dtype=np.uint8)
        if w < length:
            return out, np.ones(len(m), dtype=bool)
        nz = m != 0
        lens = np.where(nz.any(1), w - np.argmax(nz[:, ::-1], axis=1), 0)
        bad = lens != length
        out[~bad] = m[~bad, :length]
        return out, bad
    items = barcodes if isinstance(barcodes, (list, tuple)) else list(barcodes)
    n = len(items)
    try:
        lens = np.fromiter(map(len, items), dtype=np.int64, count=n)
    except TypeError:
        raise UsageError("barcodes must be given as str or bytes (or a numpy S/U/uint8 array)") \
            from None
    bad = lens != length
    if bad.any():
        filler = "\0" * length
        items = [filler if b else x for x, b in zip(items, bad)]
    if n == 0:
        return np.zeros((0, length), dtype=np.uint8), bad
    first = items[0]
    try:
        if isinstance(first, str):
            buf = "".join(items).encode("ascii", "replace")
        else:
            buf = b"".join(items)
    except TypeError:
        buf = b"".join(x.encode("ascii", "replace") if isinstance(x, str) else bytes(x)
                       for x in items)
    if len(buf) != n * length:  # non-ASCII bytes-like content of odd width
        raise UsageError("barcodes must be ASCII strings or bytes")
    return np.frombuffer(buf, dtype=np.uint8).reshape(n, length), bad


def _blank_rows(m: np.ndarray, bad: np.ndarray) -> np.ndarray:
    m = m.copy()
    m[bad] = 0
    return m


# ---------------------------------------------------------------------------------------------
# pool membership
# ---------------------------------------------------------------------------------------------
class PoolTable:
    """Which IDs are in a pool, and the document index of each: 8 bytes per document + 3 MB.

    A bitmap over all 2**24 IDs (64-bit words, 2 MB) answers membership with one look-up; a prefix
    count of its words (1 MB) gives the rank of a member ID among the pool's IDs, which indexes the
    pool's document indices sorted by ID (int32). For the 1.6 M-document pool this is about 9 MB.
    """

    def __init__(self, scheme: BarcodeScheme, pool_indices):
        idx = unique(np.asarray(pool_indices, dtype=np.int64).ravel())
        ids = scheme.ids_of(idx)  # DataError for indices outside the scheme's range
        order = np.argsort(ids, kind="stable")
        self.indices = idx[order].astype(np.int32)      # document indices, by increasing ID
        bits = np.zeros(1 << 24, dtype=bool)
        bits[ids] = True
        self._bytes = np.packbits(bits, bitorder="little")
        counts = _popcount64(self.words)
        self.prefix = np.zeros(len(self.words), dtype=np.int32)
        np.cumsum(counts[:-1], out=self.prefix[1:])
        self.size = len(idx)

    @property
    def words(self) -> np.ndarray:
        """The membership bitmap as 64-bit words (bit ``j`` of word ``w`` is ID ``64 w + j``)."""
        return self._bytes.view("<u8")

    @property
    def nbytes(self) -> int:
        return self.indices.nbytes + self._bytes.nbytes + self.prefix.nbytes

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Membership of IDs (any int array; values outside 0..2**24-1 are not members)."""
        ids = np.asarray(ids, dtype=np.int64)
        ok = (ids >= 0) & (ids < (1 << 24))
        if not ok.all():
            return ok & self._contains(np.where(ok, ids, 0))
        return self._contains(ids)

    def _contains(self, ids: np.ndarray) -> np.ndarray:
        """Membership of IDs known to be in 0..2**24-1."""
        return ((self._bytes[ids >> 3] >> (ids & 7)) & 1).astype(bool)

    def index_of(self, ids: np.ndarray) -> np.ndarray:
        """Document indices of IDs (those not in the pool give -1)."""
        ids = np.asarray(ids, dtype=np.int64)
        member = self.contains(ids)
        safe = (ids if member.all() else np.where(member, ids, 0)).astype(np.uint64)
        w = safe >> np.uint64(6)
        below = self.words[w] & ((np.uint64(1) << (safe & np.uint64(63))) - np.uint64(1))
        rank = self.prefix[w] + _popcount64(below)
        out = np.full(ids.shape, -1, dtype=np.int64)
        out[member] = self.indices[rank[member]]
        return out


def _popcount64(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x).astype(np.int32)
    b = x.view(np.uint8).reshape(x.shape + (8,))
    return _BYTE_POPCOUNT[b].sum(axis=-1, dtype=np.int32)


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# the decoder
# ---------------------------------------------------------------------------------------------
class BarcodeDecoder:
    """Bulk, vectorised barcode decoder (RS errors + erasures, optional pool resolution).

    Parameters
    ----------
    scheme : BarcodeScheme, optional
        The barcode scheme (default: the published one).
    pool_indices : array of int, optional
        Document indices present in the pool. Barcodes decoding to other documents are rejected,
        and the pool rule of the module docstring resolves what plain RS cannot.
    max_distance : int or None
        Reject answers needing more than this many substitutions of called bases (None: no cap).
    chunksize : int
        Barcodes decoded per vectorised step (bounds temporary memory, ~100 bytes per barcode).

    Examples
    --------
    >>> dec = BarcodeDecoder()
    >>> r = dec.decode(["CTGATAGTAGATCATAGATGACACGATGAT", "CTGATAGTAGATCATAGATGACACGATGAA"])
    >>> r.index.tolist(), [STATUS_NAMES[s] for s in r.status]
    ([1600042, 1600042], ['exact', 'corrected_erasure'])
    """

    def __init__(self, scheme: BarcodeScheme | None = None, pool_indices=None,
                 max_distance: int | None = DEFAULT_MAX_DISTANCE, chunksize: int = 1 << 18):
        self.scheme = scheme if scheme is not None else BarcodeScheme()
        if self.scheme.length != 30 or self.scheme.word_length != 5:
            raise UsageError("the bulk decoder needs 5-nt codebook words (30-nt barcodes)")
        if max_distance is not None and max_distance < 0:
            raise UsageError(f"max_distance must be >= 0 or None, got {max_distance}")
        if chunksize < 1:
            raise UsageError(f"chunksize must be >= 1, got {chunksize}")
        self.max_distance = max_distance
        self.chunksize = int(chunksize)
        s = self.scheme
        self._t = _tables(s.codebook, s.prim, s.generator, s.fcr)
        self.pool = PoolTable(s, pool_indices) if pool_indices is not None else None
        self._inv = None

    def __getstate__(self):
        # workers rebuild the look-up tables (~0.1 s) and the inverse permutation themselves;
        # a pickled decoder carries only the scheme, settings and the pool table (~9 MB for 1.6 M)
        state = self.__dict__.copy()
        state["_t"] = state["_inv"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        s = self.scheme
        self._t = _tables(s.codebook, s.prim, s.generator, s.fcr)

    # -------------------------------------------------------------------------------------
    def _index_of(self, ids: np.ndarray) -> np.ndarray:
        if self.pool is not None:
            return self.pool.index_of(ids)
        if self._inv is None:
            self._inv = _inverse_permutation(self.scheme.seed, self.scheme.n_ids)
        return self._inv[ids].astype(np.int64)

    def _member(self, ids: np.ndarray) -> np.ndarray:
        """Membership of IDs in 0..2**24-1 (codeword data words always are)."""
        if self.pool is not None:
            return self.pool._contains(ids)
        return ids < self.scheme.n_ids

    def decode(self, barcodes) -> DecodeResult:
        """Decode barcodes (list of str/bytes, ``S30``/``U30`` array, or uint8 N x 30 ASCII)."""
        b, bad_len = as_barcode_bytes(barcodes, 30)
        n = len(b)
        if n <= self.chunksize:
            return self._decode_chunk(b, bad_len)
        return DecodeResult.concatenate(
            self._decode_chunk(b[i:i + self.chunksize], bad_len[i:i + self.chunksize])
            for i in range(0, n, self.chunksize))

    __call__ = decode

    # -------------------------------------------------------------------------------------
    def _decode_chunk(self, b: np.ndarray, bad_len: np.ndarray) -> DecodeResult:
        t = self._t
        n = len(b)
        res = DecodeResult.empty(n)
        if n == 0:
            return res
        key = _barcode_keys(b)                                   # (n, 6) uint16
        sym = t.kmer_sym[key]                                    # (n, 6) uint8
        worst = sym[:, 0].copy()
        for i in range(1, 6):
            np.maximum(worst, sym[:, i], out=worst)
        S = t.syn[0][sym[:, 0]]                                  # erased symbols contribute 0
        for i in range(1, 6):
            S ^= t.syn[i][sym[:, i]]
        exact = (worst < _ERASED) & (S == 0)
        status = np.full(n, EXACT, dtype=np.uint8)
        dist = np.zeros(n, dtype=np.int16)
        if exact.all():
            ids = _ids(sym)
            status[~self._member(ids)] = NOT_IN_POOL
        else:
            ids = np.zeros(n, dtype=np.int64)
            ex = np.flatnonzero(exact)
            ids[ex] = _ids(sym[ex])
            # an exact codeword not in the pool has no other candidate (any other codeword differs
            # from it in >= 3 symbols, so keeps at most 3 of them)
            status[ex[~self._member(ids[ex])]] = NOT_IN_POOL
            o = np.flatnonzero(~exact)
            st, cid, d = self._decode_inexact(key[o], sym[o], worst[o], S[o])
            status[o], ids[o], dist[o] = st, cid, d
        status[bad_len] = BAD_LENGTH
        acc = status < _N_ACCEPTED
        res.status = status
        res.id = np.where(acc, ids, -1)
        res.distance = np.where(acc, dist, -1).astype(np.int16)
        if acc.all():
            res.index = self._index_of(ids)
        elif acc.any():
            res.index[acc] = self._index_of(ids[acc])
        return res

    def _decode_inexact(self, key, sym, worst, S):
        """Rows that are not exact codewords -> (status, id, distance without N)."""
        t = self._t
        n = len(key)
        erased = sym >= _ERASED
        emask = np.zeros(n, dtype=np.int64)
        for i in range(6):
            emask |= erased[:, i].astype(np.int64) << i
        w = np.where(erased, np.uint8(0), sym)                   # zero-filled word
        ri = emask * 4096 + S
        st = t.rs_status[ri]
        cw = w ^ t.rs_corr[ri]
        ids = _ids(cw)
        key64 = key.astype(np.int64) << 6
        D = _row_dist(t.dist, key64, cw)                         # N counted as a difference
        nN = t.n_count[key[:, 0]].astype(np.int16)
        for i in range(1, 6):
            nN += t.n_count[key[:, i]]
        f = _POPCOUNT[emask]
        cap = _BIG if self.max_distance is None else self.max_distance

        rs_ok = st < UNCORRECTABLE
        member = self._member(np.where(rs_ok, ids, 0)) & rs_ok
        near = (D - nN) <= cap
        status = np.where(rs_ok, st, UNCORRECTABLE).astype(np.uint8)
        if self.pool is None:
            status[rs_ok & ~member] = NOT_IN_POOL
            status[rs_ok & member & ~near] = TOO_DISTANT
        else:
            # accepted at once: plain RS answer in the pool with D <= 1 (provably the unique best)
            quick = member & near & (D <= 1)
            # f = 2: the plain RS answer is the only candidate
            two = (f == 2) & rs_ok
            status[two & ~member] = NOT_IN_POOL
            status[two & member & ~near] = TOO_DISTANT
            status[f >= 4] = UNCORRECTABLE
            final = quick | two | (f >= 4) | (worst > _ERASED)
            todo = np.flatnonzero(~final)
            if len(todo):
                self._resolve(todo, f, emask, w, key64, S, nN, st, ids, rs_ok, status, D, cap)
        # bad characters last: they override everything (bad lengths are set by the caller)
        status[worst >= _BADCHAR] = BAD_CHARACTERS
        return status, ids, D - nN

    def _resolve(self, rows, f, emask, w, key64, S, nN, st, ids, rs_ok, status, D, cap):
        """Pool rule for rows with f in {0, 1, 3} that were not accepted at once (in place).

        Each candidate re-solves two positions ``p, q`` of the zero-filled word as erasures (with
        f = 3, after setting the first erased position to each of its 64 values). Only those
        symbols change, so the candidate's syndrome, ID and distance are the word's updated at
        those positions alone; the loop runs over the 15, 6 or 64 candidates, vectorised over rows.
        """
        t = self._t
        for fv in (0, 1, 3):
            r = rows[f[rows] == fv]
            m = len(r)
            if m == 0:
                continue
            wr, kr, Sr, em = w[r], key64[r], S[r], emask[r]
            idw = _ids(wr)
            if fv == 0:
                # every pair of positions treated as erased: 15 candidates
                specs = [((p, q), None) for p, q in _PAIRS]
            elif fv == 1:
                # the erased position and each other one: 6 candidates (the erased one twice:
                # invalid)
                e = _lowest_bit(em)
                specs = [((e, p), None) for p in range(6)]
            else:
                # the three erased positions; the first takes each of its 64 values
                em2 = em & (em - 1)
                e1, e2, e3 = _lowest_bit(em), _lowest_bit(em2), _lowest_bit(em2 & (em2 - 1))
                specs = [((e2, e3), v) for v in range(64)]
            K = len(specs)
            cids = np.empty((m, K), dtype=np.int64)
            cD = np.empty((m, K), dtype=np.int16)
            valid = np.empty((m, K), dtype=bool)
            for k, ((p, q), v) in enumerate(specs):
                # re-solve positions p, q (zeroed) of the word: only they change
                wp, wq = _col(wr, p), _col(wr, q)
                mask = em | (1 << p) | (1 << q)
                Sc = Sr ^ t.syn[p, wp] ^ t.syn[q, wq]
                idk, dk = idw, 0
                if v is not None:  # f = 3: the first erased position set to v
                    Sc = Sc ^ t.syn[e1, v]
                    mask = mask & ~(1 << e1)
                    idk = idk ^ np.where(e1 < 4, np.int64(v) << (6 * e1), 0)
                    dk = t.dist[_col(kr, e1) + v]
                ri = mask * 4096 + Sc
                ok = t.rs_status[ri] < UNCORRECTABLE
                if fv == 1:
                    ok &= e != q
                np_, nq = t.rs_corr[ri, p], t.rs_corr[ri, q]
                idk = idk ^ _shifted(wp ^ np_, p) ^ _shifted(wq ^ nq, q)
                cD[:, k] = t.dist[_col(kr, p) + np_] + t.dist[_col(kr, q) + nq] + dk
                cids[:, k] = np.where(ok, idk, 0)
                valid[:, k] = ok
            valid &= self._member(cids)
            cD = np.where(valid, cD, _BIG)
            best = cD.min(axis=1)
            at_best = cD == best[:, None]
            hi = np.where(at_best, cids, -1).max(axis=1)
            lo = np.where(at_best, cids, np.iinfo(np.int64).max).min(axis=1)
            none = best == _BIG
            unique = ~none & (hi == lo)
            within = (best - nN[r]) <= cap
            out = np.full(m, UNCORRECTABLE, dtype=np.uint8)
            out[none & rs_ok[r]] = NOT_IN_POOL
            out[~none & ~within] = TOO_DISTANT
            out[~none & within & ~unique] = AMBIGUOUS
            won = ~none & within & unique
            same = rs_ok[r] & (ids[r] == hi)
            out[won] = np.where(same[won], st[r][won], POOL_RESOLVED)
            status[r] = out
            ids[r[won]] = hi[won]
            D[r[won]] = best[won]


def _col(a: np.ndarray, pos):
    """``a[:, pos]`` for one position, or ``a[i, pos[i]]`` for a position per row."""
    if isinstance(pos, (int, np.integer)):
        return a[:, pos]
    return a[np.arange(len(a)), pos]


def _shifted(sym, pos):
    """Contribution of symbol(s) at position(s) ``pos`` to the ID (0 for check positions)."""
    sym = sym.astype(np.int64)
    if isinstance(pos, (int, np.integer)):
        return sym << (6 * pos) if pos < 4 else np.zeros_like(sym)
    return np.where(pos < 4, sym << (6 * np.minimum(pos, 3)), 0)


def _ids(cw: np.ndarray) -> np.ndarray:
    out = cw[:, 3].astype(np.int64) << 18
    out |= cw[:, 2].astype(np.int64) << 12
    out |= cw[:, 1].astype(np.int64) << 6
    out |= cw[:, 0]
    return out


def _row_dist(dist: np.ndarray, key64: np.ndarray, cw: np.ndarray) -> np.ndarray:
    d = dist[key64[:, 0] + cw[:, 0]].astype(np.int16)
    for i in range(1, 6):
        d += dist[key64[:, i] + cw[:, i]]
    return d


def _lowest_bit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.int64)
    return np.log2(m & -m).astype(np.int64)
