"""Assignment of reads to pool documents: :class:`ReadAssigner` (vectorised over
batches of reads; the compiled kernel for the common case)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from ..errors import DataError, UsageError
from .kernel import fastreads
from .structure import (R_AMBIGUOUS, R_ASSIGNED, R_CONFLICT, R_NO_IP, R_NOT_IN_POOL, R_TRUNCATED,
                        R_UNCORRECTABLE, H_CORRECTED, H_EXACT, H_INDEL, Assignment, ReadStructure)
from .windows import (_BASE2, _CANON, _COMP, _N, _bytes, _mismatch_profile, _near_offset,
                      _rc_bytes, _window)

# --------------------------------------------------------------------------------------------------
# assignment of reads to documents
# --------------------------------------------------------------------------------------------------
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
        """Arguments of :func:`primo.reads._fastreads.assign` after the reads, or None when
        the compiled kernel is not built, is switched off (``PRIMO_NO_KERNEL=1``) or does not
        cover this read structure / scheme (then everything goes through numpy)."""
        k = self.__dict__.get("_kernel", False)
        if k is not False:
            return k
        k = None
        S = self.structure
        fast = fastreads()
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
        decided = fastreads().assign(a, starts, lens, pos, code, *kargs)
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
