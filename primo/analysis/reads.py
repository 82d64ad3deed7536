"""Sequencing reads -> per-document read counts (``primo analyze``, first half).

Read structure
--------------
After the similarity search the captured strands are amplified with a forward primer carrying 25
random nt (for NextSeq base diversity) and ligated to sequencing adapters without regard to
orientation, so a read holds::

    forward:  25 random nt | FP (18) | barcode (30) | IP (19) | feature (80) | RP (18) | adapter...
    reverse:  RP* (18) | feature* (80) | IP* (19) | barcode* (30) | FP* (18) | 25 random nt* | ...

(``*`` = reverse complement), truncated to the read length, with sequencing errors, Ns and possibly
adapter read-through. A 150-nt read covers the barcode in both orientations (the reverse barcode
ends at nt 147).

How a read is placed
--------------------
1. **Find IP** (:class:`ReadStructure` sets the numbers), cheapest test first, all vectorised over a
   chunk of reads:

   a. IP exact at its expected offset: forward at ``prefix + len(FP) + barcode`` (73), reverse (IP*)
      at ``len(RP) + feature`` (98);
   b. otherwise IP with at most ``max_ip_mismatches`` (2) mismatches within ``max_shift`` (4) nt of
      the expected offset (indels in the random prefix or the oligo shift it);
   c. otherwise anywhere in the read: an exact IP is accepted; an IP with mismatches only with
      flanking context, i.e. the last ``flank_length`` (8) nt of FP, with at most 1 mismatch, right
      5' of the barcode (forward) or right 3' of the reverse barcode (reverse).

   d. otherwise (``fp_anchor``) FP within ``max_shift`` of its offset, with at most
      ``max_ip_mismatches``: the barcode is read 3' of it. This places forward reads too short
      to hold IP (it ends at nt 92; 75-cycle runs) -- their barcode ends at nt 73.

   Both orientations are tried; each orientation contributes at most one candidate (the best
   match: fewest mismatches, then closest to the expected offset).
2. **Cut the barcode**: the ``barcode_length`` nt 5' of IP (forward), or the reverse complement of
   the nt 3' of IP* (reverse). Positions beyond the end of the read become N (erasures) if at most
   ``max_missing`` (5) nt are missing, else the read is ``barcode_truncated``.
3. **Decode** all barcodes of a chunk in one call to :class:`primo.barcodes.decode.BarcodeDecoder`
   restricted to the pool's documents: Reed-Solomon error and erasure correction (a 5-mer outside
   the codebook or with N is an erasure), then the decoder's pool rule (the unique closest pool
   barcode), accepted only if it differs from the read's barcode in at most
   ``max_barcode_mismatches`` (3) called bases -- a miscorrection differs in ~4 bases per wrong
   symbol.
4. **Rescue indels** (``rescue_indels``) of barcodes that did not decode: a 29- or 31-nt barcode
   between FP and IP. For each of the 6 symbols, the symbols 5' of it are read in the shifted
   frame, those 3' of it in the IP frame, and the symbol itself is erased (12 variants, each
   keeping one parity check; the other symbols must then match exactly). A variant counts only if
   the erased stretch is the decoded 5-mer with one base deleted or inserted.

A read is assigned when its candidates decode to exactly one pool document; two different documents
make it ``ambiguous``. Base qualities are not used: the decoder's pool rule already places what
erasing the lowest-quality symbols would (on ART and synthetic reads such a rescue placed no
further read). So a quality line is checked only for its length (that of the sequence): characters
outside Phred+33, such as spaces, are accepted (checking every byte would slow the common path for
no effect on the counts).

Reasons a read is not counted: ``no_ip``, ``barcode_truncated``, ``uncorrectable``, ``not_in_pool``
(a valid barcode of a document that is not in the pool), ``ambiguous``; for paired-end fragments
also ``conflict`` (the mates decode to different documents).

Inputs
------
FASTQ (or FASTA) files, plain or gzip/bz2/xz (detected by content), any number of them (lanes are
simply more files). Paired-end files are given R1 then R2 (``paired=True``), or are found by name
(``paired=None``): a file whose name contains ``_R1`` (followed by ``_`` or ``.``) is paired with the
file of the same name with ``_R2`` if that is among the inputs; all other files are single-end. A
fragment is counted once: the mate that decodes gives the document; if both decode to different
documents the fragment is a ``conflict`` and is not counted. Mates must be in the same order in both
files (the first and last record names of every chunk are checked).

How the work is spread
----------------------
Two ways, giving identical results:

* **whole inputs per worker** (the default with local processes when there are at least as many
  inputs -- lanes, mate pairs -- as workers; ``by_file``): each worker opens an input, decompresses
  it itself (ISA-L) and counts it in chunks, so decompression runs on every core and no read
  passes through the main process;
* **chunks** (one input, or a Dask cluster): the main process decompresses (ISA-L in one
  background thread per input; several inputs are read at once, their chunks taken in turn) and
  cuts chunks of whole records of about ``chunksize`` bytes (16 MiB): single-end FASTQ by
  :func:`_fastq_chunks`, which finds record starts without counting every line, paired and FASTA
  files by :func:`dnaio.read_paired_chunks` / :func:`dnaio.read_chunks`. Chunks reach local worker
  processes through a ring of shared-memory files (:class:`_Ring`) rather than pickles, and a Dask
  cluster as bytes.

Within a chunk, the common case runs in compiled code (``primo/analysis/_fastreads.c``, built at
install time when a C compiler is present; ``PRIMO_NO_KERNEL=1`` switches it off): FASTQ record
offsets, IP at or near its offset (stages a and b) in one orientation, and the barcode decoded by
plain Reed-Solomon or the decoder's pool rule. Every read it does not decide (IP elsewhere or in
both orientations, reads too short, barcodes that need the indel rescue or do not decode) goes
through the vectorised numpy implementation, which covers every case -- whole-input workers
gather such reads over chunks and place them in batches. Tests check that both give the same
answer for every read. Malformed records are reported with dnaio's message, the file, the line and
the record. Memory is bounded by the pool and the chunk size, not by the number of reads.

Outputs (:meth:`ReadCounts.write`)
----------------------------------
``counts.csv.gz``
    ``ImageID,Count``: every pool document in pool order, zeros included (the layout of the
    published ``sequencing/decoded`` files; no comment lines).
``stats.json``
    reads per file, oligo found forward / reverse, how IP was found, barcodes exact / corrected /
    rescued, reads not counted by reason, paired-end agreement and conflicts, excluded documents and
    their counts, throughput, and :func:`primo.io.provenance`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from .. import constants as C
from ..errors import DataError, UsageError

__all__ = [
    "ReadStructure", "ReadAssigner", "Assignment", "ReadCounts", "count_reads", "pair_inputs",
    "align_counts", "apply_exclusions", "REASONS", "HOW", "DEFAULT_CHUNKSIZE", "MIN_YIELD",
]

#: why a read (fragment) is or is not counted; ``Assignment.reason`` holds indices into this tuple
REASONS = ("assigned", "no_ip", "barcode_truncated", "uncorrectable", "not_in_pool", "ambiguous",
           "conflict")
R_ASSIGNED, R_NO_IP, R_TRUNCATED, R_UNCORRECTABLE, R_NOT_IN_POOL, R_AMBIGUOUS, R_CONFLICT = range(7)

#: how an assigned read's barcode was read; ``Assignment.how`` holds indices into this tuple
HOW = ("none", "exact", "corrected", "indel_rescued")
H_NONE, H_EXACT, H_CORRECTED, H_INDEL = range(4)

#: how IP was found; ``Assignment.ip_stage`` holds indices into this tuple
IP_STAGES = ("none", "exact_at_offset", "near_offset", "elsewhere", "fp_anchored")

#: bytes of FASTQ per task
DEFAULT_CHUNKSIZE = 16 * 1024 * 1024

#: fewer of the reads with an IP decoding to the pool than this means the pool does not match
MIN_YIELD = 0.05

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
_BASE2 = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _BASE2[_b] = _i
    _BASE2[_b + 32] = _i


def _bytes(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("ascii"), dtype=np.uint8)


def _rc_bytes(s: str) -> np.ndarray:
    return _COMP[_bytes(s)][::-1].copy()


# --------------------------------------------------------------------------------------------------
# read structure
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ReadStructure:
    """Where the oligo sits in a read and how tolerant the search is (see the module docstring).

    Parameters
    ----------
    fp, ip, rp : str
        Primer sites of the oligo (the pool's layout).
    barcode_length, feature_length : int
    prefix_length : int
        Random nt before FP in forward reads (25).
    max_ip_mismatches : int
        Mismatches allowed in IP (2).
    max_shift : int
        How far from its expected offset IP may be found without flanking context (4 nt).
    flank_length, max_flank_mismatches : int
        FP context required for an inexact IP found elsewhere (8 nt, 1 mismatch).
    max_missing : int
        Barcode nt beyond the end of the read that may be treated as erasures (5 = one symbol).
    max_barcode_mismatches : int
        Called bases in which a corrected barcode may differ from the decoded one (3).
    rescue_indels : bool
        Try the indel rescue for barcodes that do not decode.
    fp_anchor : bool
        When IP is not found at all, look for FP near its offset and read the barcode 3' of it
        (stage d): reads shorter than ``forward_ip_offset + len(ip)`` (92 nt, e.g. 75-cycle
        runs) are placed this way when forward; reverse reads need 147 nt for the barcode.
    """

    fp: str = C.FP
    ip: str = C.IP
    rp: str = C.RP
    barcode_length: int = C.BARCODE_LENGTH
    feature_length: int = C.FEATURE_LENGTH
    prefix_length: int = C.READ_RANDOM_PREFIX
    max_ip_mismatches: int = 2
    max_shift: int = 4
    flank_length: int = 8
    max_flank_mismatches: int = 1
    max_missing: int = 5
    max_barcode_mismatches: int = 3
    rescue_indels: bool = True
    fp_anchor: bool = True

    def __post_init__(self):
        for name in ("fp", "ip", "rp"):
            s = str(getattr(self, name)).upper()
            if not s or set(s) - set("ACGT"):
                raise UsageError(f"read structure: {name} must be an A/C/G/T sequence, got {s!r}")
            object.__setattr__(self, name, s)
        for name in ("barcode_length", "feature_length", "prefix_length", "max_ip_mismatches",
                     "max_shift", "flank_length", "max_flank_mismatches", "max_missing",
                     "max_barcode_mismatches"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise UsageError(f"read structure: {name} must be a non-negative integer, got {v!r}")
        if self.max_ip_mismatches >= len(self.ip) // 2:
            raise UsageError(f"read structure: max_ip_mismatches must be below {len(self.ip) // 2}")
        if self.flank_length > len(self.fp):
            raise UsageError("read structure: flank_length must not exceed the FP length")

    @classmethod
    def from_layout(cls, layout, **kw) -> "ReadStructure":
        """The read structure of an :class:`primo.oligos.layout.OligoLayout` (plus overrides)."""
        return cls(fp=layout.fp, ip=layout.ip, rp=layout.rp, barcode_length=layout.barcode_length,
                   feature_length=layout.feature_length, **kw)

    @property
    def forward_ip_offset(self) -> int:
        """0-based position of IP in a forward read."""
        return self.prefix_length + len(self.fp) + self.barcode_length

    @property
    def reverse_ip_offset(self) -> int:
        """0-based position of IP* (reverse complement of IP) in a reverse read."""
        return len(self.rp) + self.feature_length

    @property
    def reverse_fp_offset(self) -> int:
        """0-based position of FP* in a reverse read (right after the reverse barcode)."""
        return self.reverse_ip_offset + len(self.ip) + self.barcode_length

    @property
    def min_read_length(self) -> dict:
        """Read length needed to place a read, per orientation (forward reads are placed by FP
        when they end before IP, if ``fp_anchor``)."""
        fwd = self.forward_ip_offset + (0 if self.fp_anchor else len(self.ip))
        return {"forward": fwd, "reverse": self.reverse_fp_offset}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["forward_ip_offset"] = self.forward_ip_offset
        d["reverse_ip_offset"] = self.reverse_ip_offset
        return d


# --------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------
# assignment of reads to documents
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Assignment:
    """Per-read outcome of :meth:`ReadAssigner.assign` (arrays of the batch length).

    Attributes
    ----------
    position : int64
        Pool position (row of the pool) of the document, -1 if not assigned.
    reason : uint8
        Index into :data:`REASONS` (0 = assigned).
    strand : int8
        0 oligo forward, 1 reverse-complemented, -1 no IP found.
    how : uint8
        Index into :data:`HOW`: exact, corrected, indel_rescued (0 if unassigned).
    ip_stage : uint8
        Index into :data:`IP_STAGES`: how IP was found.
    """

    position: np.ndarray
    reason: np.ndarray
    strand: np.ndarray
    how: np.ndarray
    ip_stage: np.ndarray

    def __len__(self):
        return len(self.position)

    @classmethod
    def empty(cls, n: int = 0) -> "Assignment":
        return cls(np.full(n, -1, np.int64), np.full(n, R_NO_IP, np.uint8), np.full(n, -1, np.int8),
                   np.zeros(n, np.uint8), np.zeros(n, np.uint8))

    def summary(self) -> dict:
        """Counts by reason, strand, barcode correction and IP stage (plain ints)."""
        return _summarize(self)


def _summarize(a: Assignment) -> dict:
    rs = np.bincount(a.reason, minlength=len(REASONS))
    hw = np.bincount(a.how, minlength=len(HOW))
    st = np.bincount(a.ip_stage, minlength=len(IP_STAGES))
    found = a.strand >= 0
    assigned = a.reason == R_ASSIGNED
    return {
        "reads": int(len(a)),
        "reasons": {REASONS[i]: int(rs[i]) for i in range(len(REASONS))},
        "how": {HOW[i]: int(hw[i]) for i in range(1, len(HOW))},
        "ip_stage": {IP_STAGES[i]: int(st[i]) for i in range(1, len(IP_STAGES))},
        "ip_found": {"forward": int((found & (a.strand == 0)).sum()),
                     "reverse": int((found & (a.strand == 1)).sum())},
        "assigned_strand": {"forward": int((assigned & (a.strand == 0)).sum()),
                            "reverse": int((assigned & (a.strand == 1)).sum())},
    }


# 12 indel variants: (shift, erased symbol) -> map from barcode position to a position in the
# 32-nt oligo-frame window that ends just 5' of IP (-1 = erased). A deletion (shift +1) leaves a
# 29-nt barcode: symbols 5' of the erased one start 1 nt later; an insertion (shift -1) 1 nt earlier.
def _indel_maps(bl: int, wl: int):
    maps, info = [], []
    nsym = bl // wl
    base = 2  # the normal barcode occupies window[2:32]
    for shift in (+1, -1):
        for k in range(nsym):
            m = np.empty(bl, dtype=np.int64)
            for j in range(nsym):
                for t in range(wl):
                    p = j * wl + t
                    if j < k:
                        m[p] = base + shift + p
                    elif j > k:
                        m[p] = base + p
                    else:
                        m[p] = -1
            maps.append(m)
            info.append((shift, k))
    return np.stack(maps), info


class ReadAssigner:
    """Places reads on the documents of a pool (vectorised over batches of reads).

    Parameters
    ----------
    pool_indices : array of int
        Document index of every pool row (pool order); positions returned are rows of this array.
    scheme : primo.barcodes.BarcodeScheme, optional
        The pool's barcode scheme (default: the published one).
    structure : ReadStructure, optional

    Examples
    --------
    >>> from primo.barcodes import BarcodeScheme
    >>> from primo import constants as C
    >>> bc = BarcodeScheme().encode([7, 11])
    >>> oligo = C.FP + bc[1] + C.IP + "A" * 80 + C.RP
    >>> ra = ReadAssigner([7, 11])
    >>> ra.assign(["T" * 25 + oligo]).position.tolist()
    [1]
    """

    def __init__(self, pool_indices, scheme=None, structure: ReadStructure | None = None):
        from ..barcodes import BarcodeScheme
        from ..barcodes.decode import BarcodeDecoder

        self.scheme = scheme if scheme is not None else BarcodeScheme()
        self.structure = structure if structure is not None else ReadStructure()
        S = self.structure
        if self.scheme.length != S.barcode_length:
            raise UsageError(f"the barcode scheme makes {self.scheme.length}-nt barcodes but the "
                             f"read structure expects {S.barcode_length} nt")
        idx = np.asarray(pool_indices, dtype=np.int64).ravel()
        self.n_pool = len(idx)
        if self.n_pool and (idx.min() < 0 or idx.max() >= self.scheme.n_ids):
            raise DataError(f"pool document indices must lie in 0..{self.scheme.n_ids - 1}")
        # document index -> pool row: a dense table when the indices are compact (the usual
        # 0..N-1), else binary search in the sorted indices
        top = int(idx.max()) + 1 if self.n_pool else 0
        if top <= max(4 * self.n_pool, 1 << 20):
            self._row = np.full(top, -1, dtype=np.int32)
            self._row[idx] = np.arange(self.n_pool, dtype=np.int32)
            self._sorted = self._order = None
        else:
            self._row = None
            self._order = np.argsort(idx, kind="stable").astype(np.int32)
            self._sorted = idx[self._order]
        self.decoder = BarcodeDecoder(self.scheme, pool_indices=idx,
                                      max_distance=S.max_barcode_mismatches)
        # rescue variants: the readable symbols must match exactly (their redundancy is spent)
        self._strict = copy.copy(self.decoder)
        self._strict.max_distance = 0
        self._ip = _bytes(S.ip)
        self._rcip = _rc_bytes(S.ip)
        self._fp = _bytes(S.fp)
        self._rcfp = _rc_bytes(S.fp)
        self._fp_flank = _bytes(S.fp[len(S.fp) - S.flank_length:]) if S.flank_length else _bytes("")
        self._rcfp_flank = _COMP[self._fp_flank][::-1].copy()
        self._wl = self.scheme.word_length
        self._indel_maps, self._indel_info = _indel_maps(S.barcode_length, self._wl)
        # codebook membership of every k-mer (2 bits per base), to skip rescue variants whose
        # readable symbols are not all codebook words (the strict decode would reject them)
        self._in_codebook = np.zeros(4 ** self._wl, dtype=bool)
        cb = _BASE2[self.scheme.codebook_array()].astype(np.int64)
        self._in_codebook[(cb * (4 ** np.arange(self._wl - 1, -1, -1))).sum(axis=1)] = True

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_kernel", None)   # rebuilt where it is used (tables of ~12 MB)
        return state

    # ---- the compiled common case ----------------------------------------------------------------
    def _kernel_args(self):
        """Arguments of :func:`primo.analysis._fastreads.assign` after the reads, or None when
        the compiled kernel is not built, is switched off (``PRIMO_NO_KERNEL=1``) or does not
        cover this read structure / scheme (then everything goes through numpy)."""
        k = self.__dict__.get("_kernel", False)
        if k is not False:
            return k
        k = None
        S = self.structure
        fast = _fastreads()
        if (fast is not None and self.decoder.pool is not None and S.barcode_length == 30
                and self._wl == 5 and 0 < len(S.ip) <= 64 and 0 < len(S.fp) <= 64
                and S.forward_ip_offset >= S.barcode_length):
            t, pool = self.decoder._t, self.decoder.pool
            # 5-mer (2 bits per base, first base highest) -> symbol; the decoder's keys use 3 bits
            codes = (np.arange(1024)[:, None] >> (2 * np.arange(4, -1, -1))) & 3
            from ..barcodes.decode import _kmer_keys

            sym10 = np.ascontiguousarray(t.kmer_sym[_kmer_keys(codes)], dtype=np.uint8)
            cap = self.decoder.max_distance
            k = (self._ip.tobytes(), self._rcip.tobytes(), self._fp.tobytes(),
                 self._rcfp.tobytes(), sym10,
                 np.ascontiguousarray(self.scheme.codebook_array(), dtype=np.uint8),
                 np.ascontiguousarray(t.syn, dtype=np.uint16),
                 np.ascontiguousarray(t.rs_status, dtype=np.uint8),
                 np.ascontiguousarray(t.rs_corr, dtype=np.uint8),
                 np.stack([pool.words, pool.prefix.astype(np.uint64)], axis=1),
                 np.ascontiguousarray(self.positions_of(pool.indices), dtype=np.int32),
                 (S.forward_ip_offset, S.reverse_ip_offset, S.max_shift, S.max_ip_mismatches,
                  1 << 20 if cap is None else int(cap), len(S.ip), len(S.fp), S.prefix_length,
                  S.reverse_fp_offset, int(S.fp_anchor)))
        self._kernel = k
        return k

    # ---- helpers -------------------------------------------------------------------------------
    def positions_of(self, indices) -> np.ndarray:
        """Document indices -> pool positions (-1 for indices not in the pool)."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.full(indices.shape, -1, dtype=np.int64)
        if self._row is not None:
            ok = (indices >= 0) & (indices < len(self._row))
            out[ok] = self._row[indices[ok]]
            return out
        ok = indices >= 0
        if not ok.any() or not self.n_pool:
            return out
        q = indices[ok]
        j = np.minimum(np.searchsorted(self._sorted, q), self.n_pool - 1)
        out[ok] = np.where(self._sorted[j] == q, self._order[j], -1)
        return out

    def barcodes_of_ids(self, ids) -> np.ndarray:
        """Barcode IDs -> ASCII barcodes (n x barcode_length uint8)."""
        ids = np.asarray(ids, dtype=np.int64)
        raw = self.scheme.barcodes_of_codewords(self.scheme.codewords_of_ids(ids))
        return np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(len(ids), self.scheme.length)

    def _decode(self, bc: np.ndarray, strict: bool = False):
        """Barcodes (n x L ASCII) -> (pool position or -1, category, barcode ID or -1).

        Categories: 0 exact, 1 corrected, 2 not in pool, 3 uncorrectable, 5 ambiguous.
        """
        n = len(bc)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.int64)
        dec = self._strict if strict else self.decoder
        res = dec.decode(np.ascontiguousarray(bc, dtype=np.uint8))
        cat = _STATUS_CATEGORY[res.status]
        pos = self.positions_of(np.where(cat <= 1, res.index, -1))
        cat = np.where((cat <= 1) & (pos < 0), 2, cat).astype(np.uint8)
        return pos, cat, np.where(pos >= 0, res.id, -1)

    # ---- public --------------------------------------------------------------------------------
    def assign(self, seqs) -> Assignment:
        """Place reads given as a list of str/bytes.

        This is the convenience form of :meth:`assign_buffer` for the in-silico experiment and
        tests; files are processed by :func:`count_reads`.
        """
        seqs = [s.encode("ascii") if isinstance(s, str) else bytes(s) for s in seqs]
        n = len(seqs)
        if n == 0:
            return Assignment.empty(0)
        lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        return self.assign_buffer(np.frombuffer(b"".join(seqs), dtype=np.uint8), starts, lens)

    def assign_buffer(self, data: np.ndarray, starts: np.ndarray, lens: np.ndarray,
                      defer: bool = False):
        """Place reads stored in one byte buffer.

        Parameters
        ----------
        data : uint8 array
            Bytes holding the sequences (e.g. a raw FASTQ chunk).
        starts, lens : int64 arrays
            Where each read's sequence starts in ``data`` and its length.
        defer : bool
            Return ``(assignment, rest)``: only the reads the compiled kernel decides are placed,
            ``rest`` (indices) are left for the caller to place later, in a batch of its own
            (:meth:`_assign_numpy`); their rows of ``assignment`` are meaningless. Without the
            kernel ``rest`` is empty and everything is placed.

        Returns
        -------
        Assignment (or ``(Assignment, rest)`` with ``defer``)
        """
        a = np.asarray(data, dtype=np.uint8)
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        lens = np.ascontiguousarray(lens, dtype=np.int64)
        n = len(starts)
        kargs = self._kernel_args() if n else None
        if kargs is None:
            out = self._assign_numpy(a, starts, lens)
            return (out, np.zeros(0, np.int64)) if defer else out
        # the common case compiled; code 0 = left to the vectorised implementation
        pos = np.empty(n, dtype=np.int64)
        code = np.empty(n, dtype=np.uint8)
        decided = _fastreads().assign(a, starts, lens, pos, code, *kargs)
        out = _decided(pos, code)
        if decided == n:
            return (out, np.zeros(0, np.int64)) if defer else out
        rest = np.flatnonzero(code == 0)
        if defer:
            return out, rest
        sub = self._assign_numpy(a, starts[rest], lens[rest])
        for f in dataclasses.fields(Assignment):
            getattr(out, f.name)[rest] = getattr(sub, f.name)
        return out

    def _assign_numpy(self, a, starts, lens) -> Assignment:
        """:meth:`assign_buffer` in numpy alone (every case)."""
        S = self.structure
        n = len(starts)
        out = Assignment.empty(n)
        if n == 0:
            return out
        ends = starts + lens
        li, bl = len(S.ip), S.barcode_length
        ef, er = S.forward_ip_offset, S.reverse_ip_offset

        # stage a: exact IP at the expected offset; the same windows hold the barcodes
        Wf = _window(a, starts + (ef - bl), bl + li, starts, ends, lut=None)  # barcode | IP
        Wr = _window(a, starts + er, li + bl, starts, ends, lut=None)         # IP* | barcode*
        hit_f = (Wf[:, bl:] == self._ip).all(axis=1)
        hit_r = (Wr[:, :li] == self._rcip).all(axis=1)
        if ef - bl < 0:  # a prefix shorter than the barcode: window starts before the read
            hit_f &= False
        fa, ra = np.flatnonzero(hit_f), np.flatnonzero(hit_r)
        c_read = [fa, ra]
        c_strand = [np.zeros(len(fa), np.int8), np.ones(len(ra), np.int8)]
        c_ip = [starts[fa] + ef, starts[ra] + er]
        c_stage = [np.full(len(fa), 1, np.uint8), np.full(len(ra), 1, np.uint8)]
        c_bc = [_CANON.take(Wf[fa, :bl]), _COMP.take(Wr[ra, :li - 1:-1][:, :bl])]
        c_miss = [np.maximum(starts[fa] - (starts[fa] + ef - bl), 0),
                  np.maximum(starts[ra] + er + li + bl - ends[ra], 0)]
        del Wf, Wr

        rest = np.flatnonzero(~(hit_f | hit_r))
        if rest.size:
            k0 = len(c_read)
            self._search_ip(a, starts, ends, rest, c_read, c_strand, c_ip, c_stage)
            if len(c_read) > k0:
                cr_ = np.concatenate(c_read[k0:])
                cs_ = np.concatenate(c_strand[k0:])
                ci_ = np.concatenate(c_ip[k0:])
                bc_, miss_ = self._barcode_windows(a, starts, ends, cr_, cs_, ci_, bl)
                c_bc.append(bc_)
                c_miss.append(miss_)
                c_read[k0:] = [cr_]
                c_strand[k0:] = [cs_]
                c_ip[k0:] = [ci_]
                c_stage[k0:] = [np.concatenate(c_stage[k0:])]

        if S.fp_anchor:
            # stage d: no IP anywhere (reads too short to hold it, or IP damaged): FP at its offset
            have = np.zeros(n, dtype=bool)
            for r_ in c_read:
                have[r_] = True
            none = np.flatnonzero(~have)
            if none.size:
                self._search_fp(a, starts, ends, none, c_read, c_strand, c_ip, c_stage, c_bc,
                                c_miss)

        cr = np.concatenate(c_read)
        if cr.size == 0:
            return out
        cs = np.concatenate(c_strand)
        ci = np.concatenate(c_ip)
        cg = np.concatenate(c_stage)
        bc = np.concatenate(c_bc)
        miss = np.concatenate(c_miss)
        pos, cat, how = self._read_barcodes(a, starts, ends, cr, cs, ci, bc, miss, cg)
        self._reduce(out, cr, cs, cg, pos, cat, how)
        return out

    # ---- IP search beyond the fast path ----------------------------------------------------------
    def _search_ip(self, a, starts, ends, rest, c_read, c_strand, c_ip, c_stage):
        """Stages b (near the expected offset, with mismatches) and c (anywhere)."""
        S = self.structure
        D = S.max_shift
        lo_r, hi_r = starts[rest], ends[rest]
        found = np.zeros(len(rest), dtype=bool)
        for strand, pat, e in ((0, self._ip, S.forward_ip_offset),
                               (1, self._rcip, S.reverse_ip_offset)):
            r, at = _near_offset(a, lo_r, hi_r, pat, e, D, S.max_ip_mismatches)
            c_read.append(rest[r])
            c_strand.append(np.full(len(r), strand, np.int8))
            c_ip.append(at)
            c_stage.append(np.full(len(r), 2, np.uint8))
            found[r] = True
        left = np.flatnonzero(~found)
        if left.size:
            self._search_anywhere(a, starts, ends, rest[left], c_read, c_strand, c_ip, c_stage)

    def _search_anywhere(self, a, starts, ends, reads_left, c_read, c_strand, c_ip, c_stage):
        """Stage c: IP anywhere; exact, or inexact with FP context."""
        S = self.structure
        li, bl, F = len(S.ip), S.barcode_length, S.flank_length
        lens = ends[reads_left] - starts[reads_left]
        Lmax = int(lens.max())
        if Lmax < li:
            return
        P = _window(a, starts[reads_left], Lmax, starts[reads_left], ends[reads_left])
        for strand, pat in ((0, self._ip), (1, self._rcip)):
            mm = _mismatch_profile(P, pat)
            rr, oo = np.nonzero(mm <= S.max_ip_mismatches)
            if not rr.size:
                continue
            m = mm[rr, oo].astype(np.int64)
            reads = reads_left[rr]
            lo, hi = starts[reads], ends[reads]
            if F:
                if strand == 0:   # last F nt of FP just 5' of the barcode
                    fpos, flank = lo + oo - bl - F, self._fp_flank
                else:             # their reverse complement just 3' of the reverse barcode
                    fpos, flank = lo + oo + li + bl, self._rcfp_flank
                fl = _window(a, fpos, F, lo, hi)
                inside = (fpos >= lo) & (fpos + F <= hi)
                fm = np.where(inside, (fl != flank).sum(axis=1), F + 1)
            else:
                fm = np.zeros(len(rr), np.int64)
            valid = (m == 0) | (fm <= S.max_flank_mismatches)
            rr, oo, m = rr[valid], oo[valid], m[valid]
            if not rr.size:
                continue
            e = S.forward_ip_offset if strand == 0 else S.reverse_ip_offset
            order = np.lexsort((np.abs(oo - e), m, rr))
            rr, oo = rr[order], oo[order]
            firsts = np.flatnonzero(np.r_[True, rr[1:] != rr[:-1]])
            rr, oo = rr[firsts], oo[firsts]
            reads = reads_left[rr]
            c_read.append(reads)
            c_strand.append(np.full(len(rr), strand, np.int8))
            c_ip.append(starts[reads] + oo)
            c_stage.append(np.full(len(rr), 3, np.uint8))

    def _search_fp(self, a, starts, ends, reads, c_read, c_strand, c_ip, c_stage, c_bc, c_miss):
        """Stage d: FP within ``max_shift`` of its offset (forward reads: right after the random
        prefix; reverse: right after the reverse barcode), with at most ``max_ip_mismatches``; the
        barcode is then the ``barcode_length`` nt 3' of FP. Candidates carry the position IP
        would have (so the barcode windows are the usual ones); barcode nt beyond either end of
        the read count as missing."""
        S = self.structure
        lf, li, bl, D = len(S.fp), len(S.ip), S.barcode_length, S.max_shift
        lo_r, hi_r = starts[reads], ends[reads]
        for strand, pat, e in ((0, self._fp, S.prefix_length),
                               (1, self._rcfp, S.reverse_fp_offset)):
            r, fp_at = _near_offset(a, lo_r, hi_r, pat, e, D, S.max_ip_mismatches)
            if not r.size:
                continue
            if strand == 0:      # barcode right 3' of FP; IP would follow it
                ci = fp_at + lf + bl
                b0 = ci - bl
            else:                # reverse: barcode* right 5' of FP*; IP* would precede it
                ci = fp_at - bl - li
                b0 = fp_at - bl
            cr, cs = reads[r], np.full(len(r), strand, np.int8)
            bc, _ = self._barcode_windows(a, starts, ends, cr, cs, ci, bl)
            c_read.append(cr)
            c_strand.append(cs)
            c_ip.append(ci)
            c_stage.append(np.full(len(r), 4, np.uint8))
            c_bc.append(bc)
            c_miss.append(np.maximum(lo_r[r] - b0, 0) + np.maximum(b0 + bl - hi_r[r], 0))

    # ---- barcodes -------------------------------------------------------------------------------
    def _barcode_windows(self, a, starts, ends, cr, cs, ci, width):
        """Oligo-frame windows of ``width`` nt ending just 5' of IP, and nt missing (off the read)."""
        li = len(self.structure.ip)
        lo, hi = starts[cr], ends[cr]
        fwd = cs == 0
        W = np.empty((len(cr), width), dtype=np.uint8)
        missing = np.zeros(len(cr), dtype=np.int64)
        if fwd.any():
            p = ci[fwd] - width
            W[fwd] = _window(a, p, width, lo[fwd], hi[fwd])
            missing[fwd] = np.maximum(lo[fwd] - p, 0)
        rv = ~fwd
        if rv.any():
            p = ci[rv] + li
            W[rv] = _COMP.take(_window(a, p, width, lo[rv], hi[rv])[:, ::-1])
            missing[rv] = np.maximum(p + width - hi[rv], 0)
        return W, missing

    def _read_barcodes(self, a, starts, ends, cr, cs, ci, bc, missing, cg=None):
        """Decode every candidate's barcode; returns (position, category, how) per candidate.

        category: 0 exact, 1 corrected, 2 not in pool, 3 uncorrectable, 4 truncated, 5 ambiguous.
        The indel rescue (which reads the barcode in IP's frame) is not tried for candidates
        found by FP (stage 4).
        """
        S = self.structure
        nc = len(cr)
        ok_len = missing <= S.max_missing
        if ok_len.all():
            pos, cat, _ = self._decode(bc)
        else:
            pos = np.full(nc, -1, dtype=np.int64)
            cat = np.full(nc, 4, dtype=np.uint8)
            sel = np.flatnonzero(ok_len)
            pos[sel], cat[sel], _ = self._decode(bc[sel])
        how = np.zeros(nc, dtype=np.uint8)
        how[cat == 0] = H_EXACT
        how[cat == 1] = H_CORRECTED
        fail = (cat == 2) | (cat == 3)
        if cg is not None:
            fail &= cg != 4
        failed = np.flatnonzero(fail)
        if failed.size and S.rescue_indels:
            rp = self._rescue_indels(a, starts, ends, cr[failed], cs[failed], ci[failed])
            got = rp >= 0
            pos[failed[got]] = rp[got]
            how[failed[got]] = H_INDEL
            cat[failed[got]] = 1
            cat[failed[rp == -2]] = 5  # ambiguous between variants
        return pos, cat, how

    def _rescue_indels(self, a, starts, ends, cr, cs, ci):
        """Pool position per candidate from the 12 indel variants; -1 none, -2 ambiguous."""
        S = self.structure
        bl, wl = S.barcode_length, self._wl
        nc = len(cr)
        E, _ = self._barcode_windows(a, starts, ends, cr, cs, ci, bl + 2)
        maps = self._indel_maps
        nv = len(maps)
        V = E[:, np.where(maps < 0, 0, maps)]           # nc x nv x bl
        V[:, maps < 0] = _N
        # a readable symbol that is neither a codebook word nor has an N differs from any decoded
        # word in a called base, which the strict decode rejects: skip such variants
        codes = _BASE2[V].reshape(nc, nv, bl // wl, wl).astype(np.int64)
        keys = (np.minimum(codes, 3) * (4 ** np.arange(wl - 1, -1, -1))).sum(axis=3)
        has_n = (codes > 3).any(axis=3)
        cand = (self._in_codebook[keys] | has_n).all(axis=2)
        p = np.full((nc, nv), -1, dtype=np.int64)
        ids = np.full((nc, nv), -1, dtype=np.int64)
        c = np.full((nc, nv), 3, dtype=np.uint8)
        if cand.any():
            pp, cc, ii = self._decode(V[cand], strict=True)
            p[cand], c[cand], ids[cand] = pp, cc, ii
        ok = (c <= 1) & (p >= 0)
        if ok.any():
            # the erased stretch must be the decoded word with one base deleted / inserted
            ri, vi = np.nonzero(ok)
            ref = self.barcodes_of_ids(ids[ri, vi])
            good = np.zeros(len(ri), dtype=bool)
            for v, (shift, k) in enumerate(self._indel_info):
                m = vi == v
                if not m.any():
                    continue
                word = ref[m, k * wl:(k + 1) * wl]
                if shift == +1:   # deletion: wl - 1 nt observed
                    obs = E[ri[m], 3 + k * wl: 2 + (k + 1) * wl]
                    good[m] = _is_deletion_of(obs, word)
                else:             # insertion: wl + 1 nt observed
                    obs = E[ri[m], 1 + k * wl: 2 + (k + 1) * wl]
                    good[m] = _is_deletion_of(word, obs)
            ok[ri[~good], vi[~good]] = False
        out = np.full(nc, -1, dtype=np.int64)
        hi = np.where(ok, p, -1).max(axis=1)
        lo = np.where(ok, p, np.iinfo(np.int64).max).min(axis=1)
        any_ok = ok.any(axis=1)
        uniq = any_ok & (lo == hi)
        out[uniq] = hi[uniq]
        out[any_ok & ~uniq] = -2
        return out

    def _reduce(self, out: Assignment, cr, cs, cg, pos, cat, how):
        """Per-read outcome from per-candidate decodes (candidates are in stage order)."""
        n = len(out)
        ncand = np.bincount(cr, minlength=n)
        one = ncand[cr] == 1
        # reads with a single candidate: direct
        r = cr[one]
        out.strand[r] = cs[one]
        out.ip_stage[r] = cg[one]
        p = pos[one]
        ok = p >= 0
        out.position[r[ok]] = p[ok]
        out.reason[r[ok]] = R_ASSIGNED
        out.how[r[ok]] = how[one][ok]
        out.reason[r[~ok]] = _FAIL_REASON[cat[one][~ok]]
        if one.all():
            return
        # reads with several candidates (both strands, or a rare second hit)
        m = np.flatnonzero(~one)
        order = m[np.argsort(cr[m], kind="stable")]
        r, p, c, h, s, g = cr[order], pos[order], cat[order], how[order], cs[order], cg[order]
        starts_ = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        for a_, b_ in zip(starts_, np.r_[starts_[1:], len(r)]):
            rid = r[a_]
            docs = {int(x) for x in p[a_:b_] if x >= 0}
            okc = [i for i in range(a_, b_) if p[i] >= 0]
            first = okc[0] if okc else a_
            out.strand[rid] = s[first]
            out.ip_stage[rid] = g[first]
            if len(docs) == 1:
                out.position[rid] = p[first]
                out.reason[rid] = R_ASSIGNED
                out.how[rid] = h[first]
            elif len(docs) > 1:
                out.reason[rid] = R_AMBIGUOUS
            else:
                codes = [int(_FAIL_REASON[c[i]]) for i in range(a_, b_)]
                out.reason[rid] = max(codes, key=lambda x: _FAIL_PRIORITY[x])


# candidate category -> reason of a read that did not decode; and which reason wins when a read
# has several candidates: ambiguous > not in pool > uncorrectable > truncated
_FAIL_REASON = np.array([R_ASSIGNED, R_ASSIGNED, R_NOT_IN_POOL, R_UNCORRECTABLE, R_TRUNCATED,
                         R_AMBIGUOUS], dtype=np.uint8)
_FAIL_PRIORITY = {R_NO_IP: 0, R_TRUNCATED: 1, R_UNCORRECTABLE: 2, R_NOT_IN_POOL: 3, R_AMBIGUOUS: 4,
                  R_ASSIGNED: 5, R_CONFLICT: 5}


def _decided(pos: np.ndarray, code: np.ndarray) -> Assignment:
    """Assignment from the compiled kernel's output (code: 1 | strand << 1 | stage << 2 |
    how << 5 for a placed read, 1 | 128 for a read with neither IP nor FP; 0 = not decided: left
    unassigned here)."""
    ok = (code & 129) == 1
    return Assignment(pos, np.where(ok, R_ASSIGNED, R_NO_IP).astype(np.uint8),
                      np.where(ok, (code >> 1) & 1, -1).astype(np.int8),
                      np.where(ok, (code >> 5) & 3, 0).astype(np.uint8),
                      np.where(ok, (code >> 2) & 7, 0).astype(np.uint8))


_FAST = False


def _fastreads():
    """The compiled kernel module, or None (not built, or ``PRIMO_NO_KERNEL=1``)."""
    global _FAST
    if _FAST is False:
        if os.environ.get("PRIMO_NO_KERNEL", "") not in ("", "0"):
            _FAST = None
        else:
            try:
                from . import _fastreads as mod
            except ImportError:
                mod = None
            _FAST = mod
    return _FAST


def _is_deletion_of(short: np.ndarray, long_: np.ndarray) -> np.ndarray:
    """Row-wise: is ``short`` (n x k) ``long_`` (n x k+1) with one base deleted? (N matches all)."""
    k = short.shape[1]
    res = np.zeros(len(short), dtype=bool)
    for i in range(k + 1):
        cand = np.concatenate([long_[:, :i], long_[:, i + 1:]], axis=1)
        eq = (cand == short) | (short == _N) | (cand == _N)
        res |= eq.all(axis=1)
    return res


def _status_category():
    from ..barcodes import decode as D

    t = np.full(256, 3, dtype=np.uint8)
    t[D.EXACT] = 0
    t[[D.CORRECTED_ERROR, D.CORRECTED_ERASURE, D.POOL_RESOLVED]] = 1
    t[D.NOT_IN_POOL] = 2
    t[D.AMBIGUOUS] = 5
    return t


_STATUS_CATEGORY = _status_category()


# --------------------------------------------------------------------------------------------------
# FASTQ chunks
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Parsed:
    a: np.ndarray
    starts: np.ndarray
    lens: np.ndarray
    n_lines: int
    first_name: bytes
    last_name: bytes

    @property
    def n(self) -> int:
        return len(self.starts)


class _FormatProblem(Exception):
    """A chunk is not valid FASTQ/FASTA: (0-based line within the chunk or None, message)."""

    def __init__(self, line, message):
        super().__init__(line, message)
        self.line, self.message = line, message


def _mate_name(name: bytes) -> bytes:
    name = name.split(None, 1)[0] if name else name
    if name[-2:] in (b"/1", b"/2"):
        name = name[:-2]
    return name


def _parse_chunk(data) -> _Parsed:
    """A chunk of whole FASTQ (or FASTA) records -> buffer + offsets (vectorised; dnaio checks).

    ``data`` is any bytes-like object; the returned arrays view it.
    """
    a = np.frombuffer(data, dtype=np.uint8)
    if not len(a):
        return _Parsed(a, np.zeros(0, np.int64), np.zeros(0, np.int64), 0, b"", b"")
    fast = _fastreads()
    if a[0] == 64 and fast is not None:  # '@': FASTQ, compiled
        cap = len(a) // 64 + 16
        while True:
            starts = np.empty(cap, dtype=np.int64)
            lens = np.empty(cap, dtype=np.int64)
            n, last = fast.parse_fastq(a, starts, lens)
            if n != -2:
                break
            cap = len(a) // 6 + 16   # a record has at least 6 bytes
        if n > 0:
            first = a[1:starts[0] - 1].tobytes()
            last = a[last + 1:starts[n - 1] - 1].tobytes()
            return _Parsed(a, starts[:n], lens[:n], 4 * n, _mate_name(first), _mate_name(last))
    elif a[0] == 64:  # '@': FASTQ fast path
        nl = np.flatnonzero(a == 10)
        if a[-1] != 10:
            nl = np.append(nl, len(a))
        n_lines = len(nl)
        if len(nl) % 4 == 0 and len(nl):
            hs = np.empty(len(nl) // 4, dtype=np.int64)
            hs[0] = 0
            hs[1:] = nl[3::4][:-1] + 1
            s0 = nl[0::4] + 1
            s1 = nl[1::4]
            q0 = nl[2::4] + 1
            q1 = nl[3::4]
            good = ((a[hs] == 64).all() and (a[np.minimum(s1 + 1, len(a) - 1)] == 43).all()
                    and ((s1 - s0) == (q1 - q0)).all() and not (a[q1 - 1] == 13).any()
                    and not (a[s1 - 1] == 13).any())
            if good:
                first = a[1:nl[0]].tobytes()
                last = a[hs[-1] + 1:s0[-1] - 1].tobytes()
                return _Parsed(a, s0, s1 - s0, n_lines, _mate_name(first), _mate_name(last))
    data = a.tobytes()
    n_lines = data.count(b"\n") + (1 if data[-1:] != b"\n" else 0)
    return _parse_chunk_dnaio(data, n_lines)


def _parse_chunk_dnaio(data: bytes, n_lines: int) -> _Parsed:
    """Slow path: let dnaio parse (and report format errors with their line)."""
    import io

    import dnaio

    try:
        with dnaio.open(io.BytesIO(data)) as reader:
            recs = list(reader)
    except dnaio.FileFormatError as e:
        raise _FormatProblem(e.line, e.message) from None
    except dnaio.UnknownFileFormat:
        first = data[:1].decode("ascii", "replace")
        raise _FormatProblem(0, f"expected a FASTQ record starting with '@' (or FASTA '>'), "
                                f"found {first!r}") from None
    n = len(recs)
    seqs = [r.sequence.encode("ascii") for r in recs]
    lens = np.fromiter(map(len, seqs), dtype=np.int64, count=n)
    starts = np.zeros(n, dtype=np.int64)
    if n:
        np.cumsum(lens[:-1], out=starts[1:])
    a = np.frombuffer(b"".join(seqs), dtype=np.uint8)
    names = (_mate_name(recs[0].name.encode()), _mate_name(recs[-1].name.encode())) if n else \
        (b"", b"")
    return _Parsed(a, starts, lens, n_lines, *names)


# --------------------------------------------------------------------------------------------------
# workers
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _EngineSpec:
    """What a worker needs to get (once) its ReadAssigner: the object itself (serial), a pickle of
    it (local processes: built once, loaded by each worker), or the parts to build it (Dask)."""

    key: str
    structure: ReadStructure | None = None
    scheme: dict | None = None
    pool_indices: np.ndarray | None = None
    engine_file: str | None = None
    engine: "ReadAssigner | None" = None


_ENGINES: dict = {}


def _engine(spec: _EngineSpec) -> ReadAssigner:
    if spec.engine is not None:
        return spec.engine
    eng = _ENGINES.get(spec.key)
    if eng is None:
        if spec.engine_file is not None:
            import pickle

            with open(spec.engine_file, "rb") as fh:
                eng = pickle.load(fh)
        else:
            from ..barcodes import BarcodeScheme

            eng = ReadAssigner(spec.pool_indices, BarcodeScheme.from_dict(spec.scheme),
                               spec.structure)
        _ENGINES.clear()  # one run at a time per worker
        _forget_ring_maps()
        _ENGINES[spec.key] = eng
    return eng


_RING_MAPS: dict = {}


def _chunk_data(data):
    """A task's chunk: bytes, or ``(path, length)`` of a ring slot (mapped once per worker)."""
    if data is None or isinstance(data, (bytes, bytearray, memoryview)):
        return data
    path, length = data
    mm = _RING_MAPS.get(path)
    if mm is None:
        import mmap

        fd = os.open(path, os.O_RDONLY)
        try:
            mm = _RING_MAPS[path] = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
    return memoryview(mm)[:length]


def _forget_ring_maps():
    for mm in _RING_MAPS.values():
        try:
            mm.close()
        except BufferError:  # pragma: no cover - an array still views it; freed with it
            pass
    _RING_MAPS.clear()


def _count_task(task) -> dict:
    """Worker: one chunk (or a pair of mate chunks) -> assigned positions and counters."""
    spec, file_idx, data1, data2 = task
    t0 = time.process_time()
    out = _count_chunk(spec, file_idx, _chunk_data(data1), _chunk_data(data2))
    out["cpu"] = time.process_time() - t0
    return out


def _file_task(task) -> dict:
    """Worker: a whole input (single file or mate pair), read and decompressed here -> the same
    result as :func:`_count_task` for all its chunks together (a counts vector accumulated on the
    way). Format problems come back as an error tuple with the lines read before the chunk;
    unreadable files raise DataError."""
    spec, file_idx, r1, r2, chunksize = task
    t0 = time.process_time()
    total = {"file": file_idx, "error": None, "n_lines": [0, 0], "reads": [0, 0], "cpu": 0.0,
             "summary": [], "fragments": {}, "pairs": None, "lines_before": [0, 0]}
    counts = None
    summaries: list = [{}, {}]
    deferred = _Deferred(1 if r2 is None else 2)

    def results():
        for d1, d2 in _Reader(r1, r2, chunksize, threads=0):
            yield _count_chunk(spec, file_idx, d1, d2, deferred)
            if deferred.n >= deferred.batch:
                yield _flush_deferred(spec, deferred)
        if deferred.n:
            yield _flush_deferred(spec, deferred)

    for res in results():
        if res["error"] is not None:
            total["error"] = res["error"]
            break
        for m in (0, 1):
            total["lines_before"][m] += res["n_lines"][m]
            total["n_lines"][m] += res["n_lines"][m]
            total["reads"][m] += res["reads"][m]
        total["short_reads"] = total.get("short_reads", 0) + res.get("short_reads", 0)
        for k, sm in enumerate(res["summary"]):
            _add(summaries[k], sm)
        _add(total["fragments"], res["fragments"])
        if res["pairs"]:
            total["pairs"] = total["pairs"] or {}
            _add(total["pairs"], res["pairs"])
        if len(res["positions"]):
            if counts is None:
                counts = np.zeros(_engine(spec).n_pool, dtype=np.int64)
            counts[res["positions"]] += res["counts"]
    total["summary"] = [sm for sm in summaries if sm]
    if counts is None:
        total["positions"] = total["counts"] = np.zeros(0, np.int64)
    else:
        total["positions"] = np.flatnonzero(counts)
        total["counts"] = counts[total["positions"]]
    total["cpu"] = time.process_time() - t0
    return total


#: reads the kernel leaves undecided that are placed together (by whole-input workers): enough
#: to spread the ~10 ms a call costs, few enough to keep its temporaries small (~80 MB at 10,000)
_DEFER_BATCH = 10_000


class _Deferred:
    """Reads (or mate pairs) the compiled kernel left undecided, gathered over the chunks of an
    input and placed by the vectorised implementation in batches: its cost per call (~10 ms)
    would otherwise be paid for every chunk's few hundred such reads. A fragment is deferred
    whole when either of its mates is."""

    def __init__(self, mates: int = 1):
        self.batch = _DEFER_BATCH
        self.parts: list = [[] for _ in range(mates)]
        self.n = 0

    def add(self, parsed: list, rows: np.ndarray) -> None:
        """Rows ``rows`` of each mate's parsed chunk."""
        if not len(rows):
            return
        for parts, p in zip(self.parts, parsed):
            starts, lens = p.starts[rows], p.lens[rows]
            rel = np.zeros(len(lens), dtype=np.int64)
            np.cumsum(lens[:-1], out=rel[1:])
            idx = np.repeat(starts - rel, lens) + np.arange(int(lens.sum()), dtype=np.int64)
            parts.append((p.a[idx], lens.copy()))
        self.n += len(rows)

    def take(self) -> list:
        """Per mate, (buffer, starts, lens) of everything gathered; empties the batch."""
        out = []
        for parts in self.parts:
            a = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint8)
            lens = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
            starts = np.zeros(len(lens), dtype=np.int64)
            if len(lens):
                np.cumsum(lens[:-1], out=starts[1:])
            out.append((a, starts, lens))
        self.parts = [[] for _ in self.parts]
        self.n = 0
        return out


def _count_chunk(spec, file_idx, data1, data2, deferred: _Deferred | None = None) -> dict:
    """One chunk (or a pair of mate chunks) -> assigned positions and counters.

    With ``deferred``, the reads (fragments) the compiled kernel does not decide are added to it
    instead of being placed now, and left out of this result."""
    out = {"file": file_idx, "error": None, "n_lines": [0, 0], "reads": [0, 0], "cpu": 0.0}
    parsed = []
    for mate, data in enumerate((data1, data2)):
        if data is None:
            continue
        try:
            p = _parse_chunk(data)
        except _FormatProblem as e:
            out["error"] = ("format", mate, e.line, e.message)
            return out
        out["n_lines"][mate] = p.n_lines
        out["reads"][mate] = p.n
        parsed.append(p)
    if len(parsed) == 2:
        p1, p2 = parsed
        if p1.n != p2.n or p1.first_name != p2.first_name or p1.last_name != p2.last_name:
            bad = p1.first_name if p1.first_name != p2.first_name else p1.last_name
            other = p2.first_name if p1.first_name != p2.first_name else p2.last_name
            out["error"] = ("pairs", 1, None,
                            f"mates out of sync: R1 read {bad.decode('ascii', 'replace')!r} is "
                            f"paired with R2 read {other.decode('ascii', 'replace')!r}")
            return out
    eng = _engine(spec)
    # reads too short for a reverse read to hold its barcode (only forward ones can be placed)
    short = eng.structure.min_read_length["reverse"]
    out["short_reads"] = int(sum(int((p.lens < short).sum()) for p in parsed))
    if deferred is not None:
        done = [eng.assign_buffer(p.a, p.starts, p.lens, defer=True) for p in parsed]
        rest = done[0][1] if len(done) == 1 else np.union1d(done[0][1], done[1][1])
        ass = [a for a, _ in done]
        if len(rest):
            deferred.add(parsed, rest)
            keep = np.ones(parsed[0].n, dtype=bool)
            keep[rest] = False
            ass = [Assignment(*(getattr(a, f.name)[keep] for f in dataclasses.fields(Assignment)))
                   for a in ass]
    else:
        ass = [eng.assign_buffer(p.a, p.starts, p.lens) for p in parsed]
    _outcome(out, ass)
    return out


def _flush_deferred(spec, deferred: _Deferred) -> dict:
    """Place the reads gathered in ``deferred``: a result like :func:`_count_chunk`'s (with no
    lines or reads of its own: they were counted with their chunks)."""
    out = {"error": None, "n_lines": [0, 0], "reads": [0, 0]}
    eng = _engine(spec)
    _outcome(out, [eng._assign_numpy(a, st, ln) for a, st, ln in deferred.take()])
    return out


def _outcome(out: dict, ass: list) -> None:
    """Summaries, fragment reasons and document counts of one chunk's assignments (in place)."""
    out["summary"] = [a.summary() for a in ass]
    if len(ass) == 1:
        pos = ass[0].position
        out["fragments"] = {REASONS[i]: int(v) for i, v in
                            enumerate(np.bincount(ass[0].reason, minlength=len(REASONS)))}
        out["pairs"] = None
    else:
        pos, reason, pairs = _combine_mates(ass[0], ass[1])
        out["fragments"] = {REASONS[i]: int(v) for i, v in
                            enumerate(np.bincount(reason, minlength=len(REASONS)))}
        out["pairs"] = pairs
    pos = pos[pos >= 0]
    u, c = np.unique(pos, return_counts=True)
    out["positions"] = u.astype(np.int64)
    out["counts"] = c.astype(np.int64)


class _Ring:
    """Chunks handed to local worker processes through a ring of shared-memory files.

    Instead of pickling each chunk through a pipe (two copies on each side and many system calls),
    the main process decompresses straight into one of ``slots`` memory-mapped files per mate (on
    /dev/shm when there is room, else the temporary directory) and the task carries only
    ``(path, length)``; each worker maps every slot once and parses it in place. A slot is
    rewritten only after the result of the chunk it held was received: results arrive in order
    and at most ``window`` tasks are in flight, so ``slots = window + 2`` suffice.
    """

    def __init__(self, directory: str, slots: int, slot_bytes: int):
        self.slots, self.slot_bytes = slots, slot_bytes
        self.paths = [[os.path.join(directory, f"chunk{m}_{i}") for i in range(slots)]
                      for m in (0, 1)]
        self.maps: dict = {}
        self.k = 0

    def slot(self, mate: int):
        """``(path, mmap)`` of the current slot of ``mate``."""
        import mmap

        path = self.paths[mate][self.k % self.slots]
        mm = self.maps.get(path)
        if mm is None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # reserve the space now: a full file system then fails here with ENOSPC, not
                # later with SIGBUS when the mapped pages are written
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, self.slot_bytes)
                else:  # pragma: no cover
                    os.ftruncate(fd, self.slot_bytes)
                mm = self.maps[path] = mmap.mmap(fd, self.slot_bytes)
            finally:
                os.close(fd)
        return path, mm

    def put(self, view, mate: int):
        """Copy a chunk into the current slot; ``(path, length)``, or bytes if it does not fit."""
        n = len(view)
        if n > self.slot_bytes:
            return bytes(view)
        path, mm = self.slot(mate)
        mm[:n] = view
        return (path, n)

    def advance(self):
        self.k += 1

    def close(self):
        for mm in self.maps.values():
            try:
                mm.close()
            except BufferError:  # pragma: no cover
                pass
        self.maps = {}


def _fastq_ring_chunks(fh, ring: _Ring, chunksize: int):
    """Like :func:`_fastq_chunks`, decompressing straight into the ring's slots.

    Yields ``(path, length)``; the partial record at the end of a slot is carried to the next.
    """
    carry = b""
    limit = min(chunksize, ring.slot_bytes)
    while True:
        path, mm = ring.slot(0)
        n0 = len(carry)
        mm[:n0] = carry
        end = n0
        cut = -1
        view = memoryview(mm)
        try:
            while True:
                want = min(limit, ring.slot_bytes) - end if end < limit else ring.slot_bytes - end
                if want <= 0:
                    raise OverflowError("FASTQ record does not fit into buffer")
                got = fh.readinto(view[end:end + want])
                if not got:
                    break
                end += got
                if end >= limit:
                    cut = _last_record_start(mm, end)
                    if cut > 0:
                        break
        finally:
            view.release()
        # every chunk handed out moves the ring on, the last one of a file too, before it is
        # yielded: other files' chunks may take the next slots meanwhile
        if cut <= 0:                    # end of the file
            if end:
                ring.advance()
                yield (path, end)
            return
        carry = mm[cut:end]
        ring.advance()
        yield (path, cut)


def _scratch_dir(need: int) -> str:
    """A private temporary directory, on /dev/shm if it has ``need`` bytes free."""
    base = None
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize > 2 * need and os.access("/dev/shm", os.W_OK):
            base = "/dev/shm"
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="primo-analyze-", dir=base)


def _combine_mates(a1: Assignment, a2: Assignment):
    """Fragment outcome from its two mates: the mate that decodes, a conflict if they disagree."""
    p1, p2 = a1.position, a2.position
    ok1, ok2 = p1 >= 0, p2 >= 0
    both = ok1 & ok2
    agree = both & (p1 == p2)
    conflict = both & (p1 != p2)
    pos = np.where(ok1, p1, p2)
    pos[conflict] = -1
    # reason of an unplaced fragment: the more informative of its mates' reasons
    prio = np.array([0, 1, 2, 3, 5, 4, 6])  # no_ip < truncated < uncorrectable < ambiguous < not_in_pool
    r1, r2 = a1.reason, a2.reason
    reason = np.where(prio[r1] >= prio[r2], r1, r2).astype(np.uint8)
    reason[ok1 | ok2] = R_ASSIGNED
    reason[conflict] = R_CONFLICT
    pairs = {"both_agree": int(agree.sum()), "r1_only": int((ok1 & ~ok2).sum()),
             "r2_only": int((ok2 & ~ok1).sum()), "conflicts": int(conflict.sum()),
             "neither": int((~ok1 & ~ok2).sum())}
    return pos, reason, pairs


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------
_R12 = re.compile(r"_R([12])(?=[_.])")


def pair_inputs(paths, paired: bool | None = None) -> list[tuple[Path, Path | None]]:
    """Group read files into single files and (R1, R2) pairs.

    Parameters
    ----------
    paths : list of paths
    paired : bool or None
        True: the files are R1, R2, R1, R2, ... (an even number). False: all single-end.
        None: pair ``X_R1_Y`` with ``X_R2_Y`` (``_R1``/``_R2`` followed by ``_`` or ``.``) when both
        are given; everything else is single-end.

    Returns
    -------
    list of (R1 or single file, R2 or None), in the order the files were given.
    """
    paths = [Path(p) for p in paths]
    if paired:
        if len(paths) % 2:
            raise UsageError(f"--paired needs R1 R2 file pairs, got {len(paths)} files",
                             hint="give the files as R1 R2 [R1 R2 ...]")
        return [(paths[i], paths[i + 1]) for i in range(0, len(paths), 2)]
    if paired is False:
        return [(p, None) for p in paths]
    names = {str(p): p for p in paths}
    used, out = set(), []
    for p in paths:
        if str(p) in used:
            continue
        m = list(_R12.finditer(p.name))
        if m and m[-1].group(1) == "1":
            mm = m[-1]
            partner = p.with_name(p.name[:mm.start()] + "_R2" + p.name[mm.end():])
            if str(partner) in names and str(partner) not in used:
                out.append((p, partner))
                used.update((str(p), str(partner)))
                continue
        used.add(str(p))
        out.append((p, None))
    # R2 files listed before their R1: keep input order of first appearance (already handled)
    return out


def _open_reads(path: Path, threads: int = 1):
    """Binary stream of a read file, decompressed according to its content (not its name).

    ``threads=1``: a background thread decompresses while the caller works (the main process,
    which only cuts chunks); ``0``: decompressed in the calling thread (a worker that processes
    the chunks itself)."""
    if not path.exists():
        raise UsageError(f"read file {path} does not exist")
    if path.is_dir():
        raise UsageError(f"read file {path} is a directory, expected a FASTQ file")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    fmt = None
    if magic[:2] == b"\x1f\x8b":
        fmt = "gz"
    elif magic[:3] == b"BZh":
        fmt = "bz2"
    elif magic[:6] == b"\xfd7zXZ\x00":
        fmt = "xz"
    elif magic[:4] == b"\x28\xb5\x2f\xfd":
        fmt = "zst"
    if fmt is None:
        return open(path, "rb"), None
    import xopen

    # gzip: ISA-L
    return xopen.xopen(path, "rb", format=fmt, threads=threads), fmt


def _read_errors():
    import zlib

    errs = [EOFError, OSError, zlib.error]
    try:
        from isal import isal_zlib

        errs.append(isal_zlib.error)
    except ImportError:  # pragma: no cover - isal is a dnaio dependency
        pass
    return tuple(errs)


class _Reader:
    """Iterates chunks of one input (single file or mate pair), turning read errors into DataError.

    Chunks are memoryviews valid until the next iteration.
    """

    def __init__(self, r1: Path, r2: Path | None, chunksize: int, threads: int = 1):
        self.paths = (r1, r2)
        self.chunksize = chunksize
        self.threads = threads
        self.bytes = [0, 0]

    def __iter__(self):
        """Chunks as ``(view1, view2 or None)``."""
        return self._chunks(None)

    def chunks_into(self, ring):
        """Single-end input: ``(path, length)`` of ring slots holding FASTQ chunks (or views of
        chunks of other formats, for the caller to copy)."""
        for item in self._chunks(ring):
            yield item if isinstance(item, tuple) and isinstance(item[0], str) else item[0]

    def _chunks(self, ring):
        import dnaio

        r1, r2 = self.paths
        errs = _read_errors()
        fh1, fmt1 = _open_reads(r1, self.threads)
        fh2, fmt2 = _open_reads(r2, self.threads) if r2 is not None else (None, None)
        self.formats = (fmt1, fmt2)
        try:
            for p, fh in ((r1, fh1), (r2, fh2)):
                if fh is not None and _is_empty(fh):
                    raise DataError("read file is empty", path=p,
                                    hint="check the file was copied completely, or leave it out")
            try:
                if fh2 is None and fh1.peek(1)[:1] == b"@" and ring is not None:
                    yield from _fastq_ring_chunks(fh1, ring, self.chunksize)
                elif fh2 is None and fh1.peek(1)[:1] == b"@":
                    for ch in _fastq_chunks(fh1, self.chunksize):
                        yield ch, None
                elif fh2 is None:
                    for ch in dnaio.read_chunks(fh1, self.chunksize):
                        yield ch, None
                else:
                    for c1, c2 in dnaio.read_paired_chunks(fh1, fh2, self.chunksize):
                        yield c1, c2
            except errs as e:
                which = self._which(e)
                raise DataError(f"compressed data is truncated or corrupt ({_short_exc(e)})",
                                path=which, hint="re-download or re-copy the file") from None
            except dnaio.UnknownFileFormat:
                raise DataError("not a FASTQ or FASTA file (it must start with '@' or '>')",
                                path=r1, line=1, hint="give FASTQ files, plain or gzip") from None
            except dnaio.FileFormatError as e:
                raise DataError(f"malformed {e.format} ({e.message})", path=r1 if r2 is None
                                else f"{r1} / {r2}", hint="fix or re-create the file") from None
            except OverflowError:
                raise DataError(f"a record is longer than the chunk size ({self.chunksize} bytes)",
                                path=r1, hint="raise --chunksize, or check the file is FASTQ") \
                    from None
            except ValueError as e:
                if "too small" in str(e) or "buffer" in str(e).lower():
                    raise DataError(f"a record does not fit the chunk size ({e})", path=r1,
                                    hint="raise --chunksize") from None
                raise
        finally:
            fh1.close()
            if fh2 is not None:
                fh2.close()

    def _which(self, e):
        return self.paths[0] if self.paths[1] is None else \
            f"{self.paths[0]} or {self.paths[1]}"


def _fastq_chunks(fh, chunksize: int):
    """Cut a FASTQ stream into chunks of whole records of about ``chunksize`` bytes.

    Like :func:`dnaio.read_chunks`, but finds the cut without counting every newline of the
    buffer (which costs as much as decompressing it): the cut goes before the last line that
    starts with '@' and whose next-but-one line starts with '+' -- in valid FASTQ only a header
    line has both (a quality line starting with '@' is followed by a header and a sequence).
    Malformed records are reported by the workers' parser (with dnaio's messages). The stream is
    read into one reused buffer; each chunk is copied out once.
    """
    buf = bytearray(chunksize)
    view = memoryview(buf)
    start = 0
    while True:
        if start == len(buf):
            if len(buf) >= 64 * chunksize:
                raise OverflowError("FASTQ record does not fit into buffer")
            view.release()                       # a record longer than the buffer: grow
            buf.extend(bytes(len(buf)))
            view = memoryview(buf)
        n = fh.readinto(view[start:])
        if not n:
            break
        end = start + n
        cut = _last_record_start(buf, end)
        if cut <= 0:
            start = end
            continue
        yield view[:cut]
        rest = end - cut
        buf[:rest] = view[cut:end]
        start = rest
    if start:
        yield view[:start]


def _last_record_start(buf, size: int) -> int:
    """Start of the last complete-looking FASTQ header line in ``buf[:size]`` (or -1)."""
    end = size
    while True:
        p = buf.rfind(b"\n@", 0, end)
        if p < 0:
            return -1
        h = p + 1
        e1 = buf.find(b"\n", h, size)
        e2 = buf.find(b"\n", e1 + 1, size) if e1 >= 0 else -1
        if e2 < 0 or e2 + 1 >= size:
            end = p  # the record is incomplete: cut before it
            continue
        if buf[e2 + 1:e2 + 2] == b"+":
            return h
        end = p


def _is_empty(fh) -> bool:
    try:
        head = fh.peek(1)[:1]
    except (AttributeError, EOFError, OSError):
        return False
    return head == b""


def _short_exc(e) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= 80 else msg[:77] + "..."


# --------------------------------------------------------------------------------------------------
# counting files
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ReadCounts:
    """Read counts of every pool document (pool order) and the statistics of the run.

    Attributes
    ----------
    image_ids : array of str
        The pool's ImageIDs, in pool order.
    counts : int64 array
        Reads (fragments) counted for each document, after ``exclude``.
    stats : dict
        What :func:`count_reads` measured (see the module docstring); JSON-serialisable.
    """

    image_ids: np.ndarray
    counts: np.ndarray
    stats: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.image_ids = np.asarray(self.image_ids)
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if self.image_ids.shape != self.counts.shape:
            raise UsageError(f"{len(self.image_ids)} ImageIDs but {len(self.counts)} counts")

    def __len__(self):
        return len(self.counts)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def write_counts(self, path) -> Path:
        """Write ``ImageID,Count`` (every document, pool order; gzip if the name ends in .gz)."""
        from ..io import atomic_file, open_output

        path = Path(path)
        with atomic_file(path, suffix=".gz" if path.name.endswith(".gz") else "") as tmp:
            with open_output(tmp, "wb") as fh:
                fh.write(b"ImageID,Count\n")
                step = 1 << 16
                for a in range(0, len(self.counts), step):
                    ids = self.image_ids[a:a + step].tolist()
                    cs = self.counts[a:a + step].tolist()
                    fh.write("".join(f"{i},{c}\n" for i, c in zip(ids, cs)).encode("utf-8"))
        return path

    def write(self, out_dir, counts_name: str = "counts.csv.gz", stats_name: str = "stats.json"):
        """Write ``counts.csv.gz`` and ``stats.json`` (with provenance) into ``out_dir``."""
        from ..io import provenance, write_json

        out_dir = Path(out_dir)
        p = self.write_counts(out_dir / counts_name)
        write_json(out_dir / stats_name, {"provenance": provenance(), **self.stats})
        return p

    @classmethod
    def read(cls, path) -> "ReadCounts":
        """Read an ``ImageID,Count`` file (plain or gzip; e.g. a published ``decoded`` file)."""
        from ..io import read_csv_rows

        ids, counts = [], []
        for line, row in read_csv_rows(path, ["ImageID", "Count"], what="read counts file"):
            iid = row["ImageID"].strip()
            try:
                c = int(row["Count"])
            except ValueError:
                raise DataError(f"Count {row['Count']!r} of ImageID {iid!r} is not an integer",
                                path=path, line=line) from None
            if c < 0:
                raise DataError(f"Count of ImageID {iid!r} is negative ({c})", path=path, line=line)
            ids.append(iid)
            counts.append(c)
        if not ids:
            raise DataError("read counts file has no rows", path=path,
                            hint="expected ImageID,Count for every pool document")
        arr = np.array(ids, dtype=object)
        u, first, n = np.unique(arr, return_index=True, return_counts=True)
        if (n > 1).any():
            dup = u[n > 1][0]
            raise DataError(f"ImageID {dup!r} appears more than once", path=path)
        return cls(arr, np.array(counts, dtype=np.int64), {"counts_file": str(path)})


def align_counts(rc: ReadCounts, image_ids, source=None) -> ReadCounts:
    """Reorder counts to the pool's ImageIDs; DataError for unknown or missing documents."""
    ids = [str(i) for i in np.asarray(image_ids).tolist()]
    where = {str(i): p for p, i in enumerate(rc.image_ids.tolist())}
    unknown = set(where) - set(ids)
    if unknown:
        first = sorted(unknown)[0]
        raise DataError(f"{len(unknown):,} ImageIDs of the counts file are not in the pool "
                        f"(e.g. {first!r})", path=source, hint="give the pool these counts belong to")
    missing = [i for i in ids if i not in where]
    if missing:
        raise DataError(f"counts file does not cover the pool: {len(missing):,} of {len(ids):,} "
                        f"documents have no count (first: {missing[0]!r})", path=source,
                        hint="expected a row for every pool document, zeros included")
    order = np.fromiter((where[i] for i in ids), dtype=np.int64, count=len(ids))
    return ReadCounts(np.asarray(image_ids), rc.counts[order], dict(rc.stats))


def apply_exclusions(rc: ReadCounts, exclude) -> ReadCounts:
    """Zero the counts of ``exclude`` ImageIDs (recording them in ``stats['excluded']``)."""
    where = _exclusions(rc.image_ids, exclude)
    counts = rc.counts.copy()
    stats = dict(rc.stats)
    excluded = dict(stats.get("excluded", {}))
    for iid, p in where.items():
        excluded[iid] = int(counts[p])
        counts[p] = 0
    stats["excluded"] = excluded
    stats["counted"] = int(counts.sum())
    stats["documents_seen"] = int((counts > 0).sum())
    return ReadCounts(rc.image_ids, counts, stats)


def _pool_parts(pool):
    """(image_ids, indices, scheme, layout, description) of a Pool object or a pool path."""
    from ..barcodes import BarcodeScheme

    desc = None
    if isinstance(pool, (str, os.PathLike)):
        from ..oligos.pool import read_pool

        desc = str(pool)
        pool = read_pool(pool, sequences=False)
    ids = np.asarray(pool.image_ids)
    idx = np.asarray(pool.indices, dtype=np.int64)
    if len(ids) != len(idx):
        raise UsageError(f"pool has {len(ids)} ImageIDs but {len(idx)} document indices")
    scheme = getattr(pool, "scheme", None) or BarcodeScheme()
    layout = getattr(pool, "layout", None)
    if desc is None:
        desc = str(getattr(pool, "path", "") or "in-memory pool")
    return ids, idx, scheme, layout, desc


def _add(acc: dict, d: dict) -> None:
    for k, v in d.items():
        if isinstance(v, dict):
            _add(acc.setdefault(k, {}), v)
        elif v is not None:
            acc[k] = acc.get(k, 0) + v


def count_reads(pool, reads, *, paired: bool | None = None, structure: ReadStructure | None = None,
                exclude=(), mapper=None, chunksize: int = DEFAULT_CHUNKSIZE,
                min_yield: float = MIN_YIELD, allow_low_yield: bool = False,
                show_progress: bool = True, by_file: bool | None = None) -> ReadCounts:
    """Count the reads of every pool document in FASTQ files.

    Parameters
    ----------
    pool : Pool or path
        A :class:`primo.oligos.pool.Pool` (``image_ids``, ``indices``, ``scheme``, ``layout``) or
        a pool directory / ``database_seqs.csv.gz``.
    reads : list of paths
        FASTQ/FASTA files, plain or compressed (detected by content).
    paired : bool or None
        See :func:`pair_inputs` (None: pair ``_R1``/``_R2`` names).
    structure : ReadStructure, optional
        Default: from the pool's layout.
    exclude : iterable of str
        ImageIDs whose count is set to 0 (known contaminants); their counts go to the stats.
    mapper : primo.parallel.Mapper, optional
        Default: local processes (``get_mapper()``), closed afterwards.
    chunksize : int
        Bytes of FASTQ per task.
    min_yield : float
        Fail (DataError) when fewer of the reads that contain IP decode to the pool than this
        fraction -- the pool does not match the reads -- unless ``allow_low_yield``.
    show_progress : bool
        Progress bar on stderr (when it is a terminal).
    by_file : bool or None
        Whole inputs as tasks, each read and decompressed by a worker (True), or chunks cut here
        and handed out (False). None: whole inputs when the mapper is local processes and there
        are at least as many inputs (lanes, mate pairs) as workers -- decompression then runs on
        every core; the progress bar then moves once per input. Both give identical results.

    Returns
    -------
    ReadCounts
    """
    from ..parallel import ProcessMapper, SerialMapper, get_mapper
    from ..progress import progress

    t0 = time.perf_counter()
    if chunksize < 1024:
        raise UsageError(f"chunksize must be at least 1024 bytes, got {chunksize}")
    reads = list(reads)
    if not reads:
        raise UsageError("no read files given", hint="give one or more FASTQ files")
    image_ids, indices, scheme, layout, pool_desc = _pool_parts(pool)
    if structure is None:
        structure = ReadStructure.from_layout(layout) if layout is not None else ReadStructure()
    inputs = pair_inputs(reads, paired)
    seen: dict = {}
    for r1, r2 in inputs:
        for p in (r1, r2):
            if p is None:
                continue
            if not p.exists():
                raise UsageError(f"read file {p} does not exist")
            key = p.resolve()
            if key in seen:
                raise UsageError(f"read file {p} is given twice (also as {seen[key]}): its reads "
                                 f"would be counted twice", hint="give each file once")
            seen[key] = p
    excl = _exclusions(image_ids, exclude)

    own_mapper = mapper is None
    if own_mapper:
        mapper = get_mapper()
    tmpdir = ring = window = None
    try:
        key = uuid.uuid4().hex
        if isinstance(mapper, (SerialMapper, ProcessMapper)):
            engine = ReadAssigner(indices, scheme, structure)
            if isinstance(mapper, SerialMapper):
                spec = _EngineSpec(key, engine=engine)
            else:
                import pickle

                window = 2 * mapper.n_workers
                slot_bytes = chunksize + (1 << 20)
                tmpdir = _scratch_dir((window + 2) * 2 * slot_bytes)
                ring = _Ring(tmpdir, window + 2, slot_bytes)
                engine_file = os.path.join(tmpdir, "engine.pickle")
                with open(engine_file, "wb") as fh:
                    pickle.dump(engine, fh, protocol=pickle.HIGHEST_PROTOCOL)
                del engine
                spec = _EngineSpec(key, engine_file=engine_file)
        else:  # a remote cluster: ship the parts, each worker builds (and caches) the engine
            spec = _EngineSpec(key, structure, scheme.to_dict(),
                               pool_indices=indices.astype(np.int32))
        t_ready = time.perf_counter()
        cpu_ready = time.process_time()
        worker_cpu = 0.0
        counts = np.zeros(len(indices), dtype=np.int64)
        files = []
        for r1, r2 in inputs:
            files.append({"path": str(r1), "mate": "R1" if r2 is not None else "single",
                          "reads": 0})
            if r2 is not None:
                files.append({"path": str(r2), "mate": "R2", "reads": 0})
        file_slot = []
        k = 0
        for r1, r2 in inputs:
            file_slot.append((k, k + 1 if r2 is not None else None))
            k += 2 if r2 is not None else 1
        lines_done = [[0, 0] for _ in inputs]
        readers = [_Reader(r1, r2, chunksize) for r1, r2 in inputs]

        def file_tasks(fi, rd):
            if ring is not None and rd.paths[1] is None:
                for item in rd.chunks_into(ring):
                    if isinstance(item, tuple):
                        yield (spec, fi, item, None)
                    else:  # not FASTQ: dnaio's chunks, copied into the ring
                        t = (spec, fi, ring.put(item, 0), None)
                        ring.advance()
                        yield t
                return
            for d1, d2 in rd:
                if ring is not None:
                    t = (spec, fi, ring.put(d1, 0), None if d2 is None else ring.put(d2, 1))
                    ring.advance()
                    yield t
                elif serial:   # processed before the next chunk is read: no copy
                    yield (spec, fi, d1, d2)
                else:
                    yield (spec, fi, bytes(d1), None if d2 is None else bytes(d2))

        def tasks():
            # several files (lanes) are read at once, their chunks taken in turn: each file is
            # decompressed by its own background thread, so decompression is not bound to one
            # core; results still come back in each file's order
            yield from _round_robin([file_tasks(fi, rd) for fi, rd in enumerate(readers)],
                                    width=max(2, getattr(mapper, "n_workers", 1)))

        # at least as many inputs as local worker processes: each worker reads, decompresses and
        # counts whole inputs itself (no chunk passes through this process, decompression runs
        # on every core); otherwise this process decompresses and hands out chunks
        whole_files = (by_file if by_file is not None else
                       isinstance(mapper, ProcessMapper) and len(inputs) >= mapper.n_workers >= 2)
        if whole_files:
            task_fn, window = _file_task, len(inputs)
            task_iter = ((spec, fi, r1, r2, chunksize) for fi, (r1, r2) in enumerate(inputs))
        else:
            task_fn, task_iter = _count_task, tasks()

        serial = isinstance(mapper, SerialMapper)
        mates: dict = {}
        frags: dict = {}
        pairs: dict = {}
        n_frag = 0
        short_reads = 0
        bar = progress(total=None, desc="reads", unit="read") if show_progress else None
        try:
            for res in mapper.imap(task_fn, task_iter, window=window):
                fi = res["file"]
                if res["error"] is not None:
                    _raise_chunk_error(res["error"], inputs[fi],
                                       res.get("lines_before", lines_done[fi]))
                for m in (0, 1):
                    lines_done[fi][m] += res["n_lines"][m]
                    slot = file_slot[fi][m]
                    if slot is not None:
                        files[slot]["reads"] += res["reads"][m]
                worker_cpu += res["cpu"]
                short_reads += res.get("short_reads", 0)
                if len(res["counts"]):
                    counts[res["positions"]] += res["counts"]
                for s in res.get("summary", []):
                    _add(mates, s)
                _add(frags, res["fragments"])
                if res["pairs"]:
                    _add(pairs, res["pairs"])
                nf = res["reads"][0]
                n_frag += nf
                if bar is not None:
                    bar.update(res["reads"][0] + res["reads"][1])
        finally:
            if bar is not None:
                bar.close()
    finally:
        if own_mapper:
            mapper.close()
        if ring is not None:
            ring.close()
        if tmpdir is not None:
            import shutil

            shutil.rmtree(tmpdir, ignore_errors=True)

    seconds = time.perf_counter() - t0
    main_cpu = time.process_time() - cpu_ready
    n_reads = sum(f["reads"] for f in files)
    excluded = {}
    for iid, pos in excl.items():
        excluded[iid] = int(counts[pos])
        counts[pos] = 0
    with_ip = mates.get("ip_found", {}).get("forward", 0) + mates.get("ip_found", {}).get("reverse", 0)
    assigned_reads = mates.get("reasons", {}).get("assigned", 0)
    yield_ = assigned_reads / with_ip if with_ip else 0.0
    stats = {
        "pool": {"source": pool_desc, "documents": int(len(indices))},
        "inputs": files,
        "paired": any(r2 is not None for _, r2 in inputs),
        "reads": int(n_reads),
        "fragments": int(n_frag),
        "oligo_found": mates.get("ip_found", {"forward": 0, "reverse": 0}),
        "ip_found_by": mates.get("ip_stage", {}),
        "reads_with_ip": int(with_ip),
        "min_read_length": structure.min_read_length,
        "reads_too_short_for_reverse": int(short_reads),
        "barcodes": mates.get("how", {}),
        "reads_by_reason": mates.get("reasons", {}),
        "assigned_by_strand": mates.get("assigned_strand", {}),
        "fragments_by_reason": frags,
        "not_in_pool": int(frags.get("not_in_pool", 0)),
        "paired_end": pairs or None,
        "counted": int(counts.sum()),
        "documents_seen": int((counts > 0).sum()),
        "excluded": excluded,
        "decode_yield": round(yield_, 6),
        "seconds": round(seconds, 3),
        "reads_per_second": round(n_reads / seconds, 1) if seconds > 0 else None,
        "startup_seconds": round(t_ready - t0, 3),
        "worker_cpu_seconds": round(worker_cpu, 3),
        "main_cpu_seconds": round(main_cpu, 3),
        "mapper": mapper.describe(),
        "chunksize": int(chunksize),
        "read_structure": structure.to_dict(),
    }
    if not allow_low_yield and n_reads:
        _check_yield(n_reads, with_ip, assigned_reads, min_yield, pool_desc)
    return ReadCounts(image_ids, counts, stats)


def _round_robin(gens, width: int):
    """Items of the generators taken in turn, at most ``width`` of them started at once (the
    next one starts when one is exhausted)."""
    from collections import deque

    pending = deque(gens)
    active = deque()
    while pending or active:
        while pending and len(active) < width:
            active.append(pending.popleft())
        g = active.popleft()
        try:
            item = next(g)
        except StopIteration:
            continue
        yield item
        active.append(g)


def _exclusions(image_ids, exclude) -> dict:
    exclude = [str(e).strip() for e in (exclude or ()) if str(e).strip()]
    if not exclude:
        return {}
    where = {}
    lookup = {str(i): k for k, i in enumerate(np.asarray(image_ids).tolist())
              if str(i) in set(exclude)}
    for e in exclude:
        if e not in lookup:
            raise UsageError(f"--exclude {e}: no document of the pool has this ImageID",
                             hint="give an ImageID from the pool's database_seqs.csv.gz")
        where[e] = lookup[e]
    return where


def _check_yield(n_reads, with_ip, assigned, min_yield, pool_desc):
    hint = "check --pool and the read files, or pass --allow-low-yield to count anyway"
    if with_ip == 0:
        raise DataError(f"none of the {n_reads:,} reads contains the internal primer (IP) in "
                        f"either orientation: these are not reads of this pool's oligos "
                        f"(pool {pool_desc})", hint=hint)
    y = assigned / with_ip
    if y < min_yield:
        raise DataError(f"the pool does not match the reads: only {assigned:,} of the "
                        f"{with_ip:,} reads with the internal primer ({100 * y:.2f}%, "
                        f"expected at least {100 * min_yield:.0f}%) decode to a document of "
                        f"pool {pool_desc}", hint=hint)


def _raise_chunk_error(err, files, lines_done):
    kind, mate, line, message = err
    path = files[mate] if files[mate] is not None else files[0]
    if kind == "format":
        abs_line = None if line is None else lines_done[mate] + line + 1
        record = None
        if abs_line is not None:
            record = (abs_line - 1) // 4 + 1
        where = "" if abs_line is not None else \
            f" (in the records after line {lines_done[mate]})"
        raise DataError(f"malformed FASTQ: {message}{where}", path=path, line=abs_line,
                        record=record, hint="fix or re-create the file")
    raise DataError(f"paired files disagree: {message} (records after line "
                    f"{lines_done[mate]} of {files[1]})", path=files[0],
                    hint="give the mates of each pair in the same order, or use --single-end")
