"""Manufacturability QC of database oligos, vectorised over chunks of a pool.

Every oligo is checked for (check names as they appear in reports):

``length`` / ``alphabet``
    the oligo has the layout's length and only A, C, G, T (:func:`check_sequences` on arbitrary
    strings; pools built by primo satisfy both by construction).
``gc``
    GC fraction of the whole oligo within ``[gc_min, gc_max]``.
``window_gc``
    GC fraction of every ``window``-nt window within ``[window_gc_min, window_gc_max]``.
``window_gc_spread``
    highest minus lowest window GC fraction at most ``window_gc_spread``.
``homopolymer``
    longest run of one base at most ``max_homopolymer``.
``primer_site``
    off-target priming: a primer's 3'-terminal ``primer_match`` nt, in either orientation, inside the
    barcode or the feature region. The primers are FP, IP, RP and their reverse complements FP*, IP*,
    RP* (the protocol uses FP, IP* and RP*; the methods text also names RP, so all six are checked).
    A primer ``p`` can prime wherever its 3' end can anneal: at ``revcomp(p[-k:])`` on the oligo
    strand or at ``p[-k:]`` on the oligo (the copy strand then carries the complement), so both
    k-mers are searched. Exact matches only; k = 10 by default (a random 80-nt region matches one of
    the 12 k-mers with probability ~0.1 %, with k = 8 ~1.3 %).
``duplicate_barcode`` / ``duplicate_sequence``
    the oligo repeats the barcode / the whole sequence of an earlier document (64-bit keys: barcodes
    of up to 32 nt are packed exactly, longer sequences hashed; memory is 16 bytes per document).

and the pool against the provider's limits (``pool_size`` and ``oligo_length`` in the summary).

Defaults follow Twist Bioscience's published design guidance for synthetic DNA: overall GC 25-65 %,
no more than 52 points between the GC of the richest and the poorest 50-nt window, homopolymers of at
most 6 nt; oligo pools: oligos up to 300 nt, at least 2 oligos per pool, no documented upper pool size
(Twist synthesized the 1.6 M-oligo pool of the primo paper). Window GC outside 20-80 % is flagged as
extreme. All thresholds are fields of :class:`QCConfig`.

Reports
-------
Per-document flags (CSV, one row per failed check)::

    index,ImageID,check,value,limit
    17,img_017,homopolymer,8,<= 6

and a summary dict (JSON): counts per check, documents failed, pool-level problems, GC/homopolymer
statistics, the configuration. Whether a failure stops a pipeline is the caller's choice: see
:attr:`QCReport.failed`.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, NamedTuple

import numpy as np

from ..arrays import unique
from ..dna import BYTE_CODE as _CODE
from ..dna import revcomp
from ..errors import DataError, UsageError
from ..settings import check_settings, setting
from .layout import OligoLayout

__all__ = ["QCConfig", "QCFlag", "QCReport", "PoolQC", "check_sequences", "oligo_metrics",
           "CHECKS", "row_keys"]

CHECKS = ("length", "alphabet", "gc", "window_gc", "window_gc_spread", "homopolymer",
          "primer_site", "duplicate_barcode", "duplicate_sequence")


@dataclasses.dataclass(frozen=True)
class QCConfig:
    """Thresholds of the manufacturability checks (see the module docstring). Each field carries
    its help text and bounds (:func:`primo.settings.setting`); ``primo pool`` and ``primo
    encode-db`` generate their QC options from the fields the command line offers."""

    gc_min: float = setting(0.25, "Lowest GC fraction of an oligo.", lo=0, hi=1)
    gc_max: float = setting(0.65, "Highest GC fraction of an oligo.", lo=0, hi=1)
    window: int = setting(50, "Length (nt) of the windows of the local GC checks.", lo=1,
                          cli=False)
    window_gc_min: float = setting(0.20, "Lowest GC fraction of any window.", lo=0, hi=1,
                                   cli=False)
    window_gc_max: float = setting(0.80, "Highest GC fraction of any window.", lo=0, hi=1,
                                   cli=False)
    window_gc_spread: float = setting(0.52, "Largest difference between the GC fractions of two "
                                      "windows of an oligo.", lo=0, hi=1, cli=False)
    max_homopolymer: int = setting(6, "Longest allowed run of one base.", lo=1)
    primer_match: int = setting(10, "Flag a primer's 3'-terminal N nt (either orientation) "
                                "inside a barcode or feature region.", lo=4, hi=31)
    min_length: int = setting(20, "Shortest oligo the provider makes (nt).", lo=1, cli=False)
    max_length: int = setting(300, "Longest oligo the provider makes (nt).", lo=1, cli=False)
    min_pool_size: int = setting(2, "Smallest pool the provider takes.", lo=1, cli=False)
    max_pool_size: int | None = setting(None, "Largest pool the provider takes.", lo=1,
                                        optional=True, default_text="no limit")
    provider: str = setting("Twist Bioscience oligo pool", "Who makes the pool (named in the "
                            "QC report).", cli=False)

    def __post_init__(self):
        check_settings(self)
        if self.gc_min > self.gc_max:
            raise UsageError(f"gc_min ({self.gc_min:g}) is above gc_max ({self.gc_max:g})",
                             option="gc_min")
        if self.window_gc_min > self.window_gc_max:
            raise UsageError(f"window_gc_min ({self.window_gc_min:g}) is above window_gc_max "
                             f"({self.window_gc_max:g})", option="window_gc_min")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "QCConfig":
        if not d:
            return cls()
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in d.items() if k in names})
        except (TypeError, ValueError) as e:
            if isinstance(e, UsageError):
                raise
            raise DataError(f"QC settings are malformed ({e})") from None


class QCFlag(NamedTuple):
    """One failed check of one document."""

    index: int
    image_id: str
    check: str
    value: str
    limit: str


# ------------------------------------------------------------------------------------------------
# vectorised metrics
# ------------------------------------------------------------------------------------------------
def _to_codes(ascii_rows: np.ndarray) -> np.ndarray:
    return _CODE[np.asarray(ascii_rows, dtype=np.uint8)]


def _primer_kmers(layout: OligoLayout, k: int) -> dict[int, str]:
    """2-bit packed k-mer -> description, for the 3' ends of all six primers in both orientations."""
    out: dict[int, str] = {}
    prim = {"FP": layout.fp, "IP": layout.ip, "RP": layout.rp}
    prim.update({f"{n}*": revcomp(s) for n, s in list(prim.items())})
    for name, p in prim.items():
        if len(p) < k:
            continue
        end = p[-k:]
        for kmer, how in ((end, "its 3' end"), (revcomp(end), "the site of its 3' end")):
            v = 0
            for ch in kmer:
                v = (v << 2) | "ACGT".index(ch)
            out.setdefault(v, f"{name} ({how}, {k} nt)")
    return out


def _kmers(codes: np.ndarray, k: int) -> np.ndarray:
    """Rows of codes (N x R) -> packed k-mers (N x (R - k + 1); uint32 for k <= 16, else uint64)."""
    n, r = codes.shape
    m = r - k + 1
    dt = np.uint32 if k <= 16 else np.uint64
    if m <= 0:
        return np.zeros((n, 0), dtype=dt)
    km = np.zeros((n, m), dtype=dt)
    c = codes.astype(dt)
    two = dt(2)
    for t in range(k):
        km <<= two
        km |= c[:, t:t + m]
    return km


def _longest_run(codes: np.ndarray) -> np.ndarray:
    n, L = codes.shape
    if L == 0:
        return np.zeros(n, dtype=np.int32)
    same = np.ascontiguousarray((codes[:, 1:] == codes[:, :-1]).T).view(np.uint8)
    run = np.zeros(n, dtype=np.uint16)
    best = np.zeros(n, dtype=np.uint16)
    for j in range(L - 1):
        run += 1
        run *= same[j]
        np.maximum(best, run, out=best)
    return best.astype(np.int32) + 1


def oligo_metrics(codes: np.ndarray, layout: OligoLayout, config: QCConfig) -> dict:
    """Per-oligo metrics of equal-length oligos given as codes (N x L, A=0 C=1 G=2 T=3).

    Returns a dict of arrays: ``gc``, ``window_gc_min``, ``window_gc_max``, ``homopolymer``,
    ``primer_region`` (0 none, 1 barcode, 2 feature), ``primer_pos`` and ``primer_kmer`` (packed
    k-mer of the first primer hit), plus ``sequence_key`` / ``barcode_key`` (64-bit keys for
    duplicate detection). A picklable module-level function, so it can run under a mapper.
    """
    codes = np.asarray(codes, dtype=np.uint8)
    n, L = codes.shape
    isgc = ((codes == 1) | (codes == 2)).astype(np.int32)
    gc = isgc.sum(axis=1) / max(L, 1)
    W = min(config.window, L)
    cs = np.zeros((n, L + 1), dtype=np.int32)
    np.cumsum(isgc, axis=1, out=cs[:, 1:])
    win = cs[:, W:] - cs[:, :-W]
    wmin = win.min(axis=1) / W if n else np.zeros(0)
    wmax = win.max(axis=1) / W if n else np.zeros(0)
    hp = _longest_run(codes)
    k = config.primer_match
    table = _primer_kmers(layout, k)
    keys = np.fromiter(table.keys(), dtype=np.uint64, count=len(table))
    lut = None
    if k <= 12:  # a lookup table (4^k bools) is much faster than np.isin
        lut = np.zeros(4 ** k, dtype=bool)
        lut[keys.astype(np.int64)] = True
    region = np.zeros(n, dtype=np.int8)
    pos = np.full(n, -1, dtype=np.int32)
    kmer = np.zeros(n, dtype=np.uint64)
    for rid, sl in ((1, layout.barcode_slice), (2, layout.feature_slice)):
        km = _kmers(codes[:, sl], k)
        if km.shape[1] == 0:
            continue
        hit = lut[km] if lut is not None else np.isin(km, keys)
        rows = hit.any(axis=1) & (region == 0)
        if rows.any():
            first = hit[rows].argmax(axis=1)
            region[rows] = rid
            pos[rows] = first + sl.start
            kmer[rows] = km[rows, first].astype(np.uint64)
    return {
        "gc": gc, "window_gc_min": wmin, "window_gc_max": wmax, "homopolymer": hp,
        "primer_region": region, "primer_pos": pos, "primer_kmer": kmer,
        "sequence_key": row_keys(codes), "barcode_key": row_keys(codes[:, layout.barcode_slice]),
    }


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (vectorised; uint64 arithmetic wraps)."""
    x = x.copy()
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def row_keys(codes: np.ndarray) -> np.ndarray:
    """64-bit key per row of codes (N x L, values 0..3): exact 2-bit packing for L <= 32 (first
    base in the highest bits), else a splitmix64 hash of the rows packed 4 bases per byte
    (collisions ~N^2 / 2^65: 1e-7 for 1.6 M rows)."""
    codes = np.asarray(codes, dtype=np.uint8)
    n, L = codes.shape
    if L <= 32:
        w = np.zeros(n, dtype=np.uint64)
        for j in range(L):
            w <<= np.uint64(2)
            w |= codes[:, j].astype(np.uint64)
        return w
    nb = -(-L // 4)
    nb8 = -(-nb // 8) * 8
    pad = np.zeros((n, nb8 * 4), dtype=np.uint8)
    pad[:, :L] = codes
    q = pad.reshape(n, nb8, 4)
    packed = (q[:, :, 0] << 6) | (q[:, :, 1] << 4) | (q[:, :, 2] << 2) | q[:, :, 3]
    words = np.ascontiguousarray(packed).view(np.uint64)
    with np.errstate(over="ignore"):
        h = np.full(n, np.uint64(L) * _GOLD, dtype=np.uint64)
        for j in range(words.shape[1]):
            h = _mix(h ^ words[:, j]) + _GOLD
    return h


# ------------------------------------------------------------------------------------------------
# duplicate detection with bounded memory
# ------------------------------------------------------------------------------------------------
class KeyIndex:
    """Sorted 64-bit keys with the record that first had each (16 bytes per distinct key)."""

    def __init__(self):
        self.keys = np.zeros(0, dtype=np.uint64)
        self.first = np.zeros(0, dtype=np.int64)

    def __len__(self):
        return len(self.keys)

    def add(self, keys, records) -> np.ndarray:
        """Add keys with their records (e.g. document indices); return, per key, the record of an
        earlier equal key (in this or a previous call), or -1."""
        keys = np.asarray(keys, dtype=np.uint64)
        records = np.asarray(records, dtype=np.int64)
        prev = np.full(len(keys), -1, dtype=np.int64)
        if not len(keys):
            return prev
        order = np.argsort(keys, kind="stable")
        sk = keys[order]
        same = np.empty(len(sk), dtype=bool)
        same[0] = False
        same[1:] = sk[1:] == sk[:-1]
        start = np.maximum.accumulate(np.where(same, 0, np.arange(len(sk))))
        prev[order[same]] = records[order[start[same]]]
        if len(self.keys):
            pos = np.searchsorted(self.keys, keys)
            pc = np.minimum(pos, len(self.keys) - 1)
            hit = self.keys[pc] == keys
            prev[hit] = self.first[pc[hit]]
        new = order[~same]
        new = new[prev[new] == -1]
        if len(new):
            nk = keys[new]
            ins = np.searchsorted(self.keys, nk)
            self.keys = np.insert(self.keys, ins, nk)
            self.first = np.insert(self.first, ins, records[new])
        return prev


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class QCReport:
    """Outcome of QC over a pool.

    Attributes
    ----------
    n_documents : int
    counts : dict
        check name -> number of documents that failed it.
    failed_indices : numpy.ndarray
        document indices with at least one failed check (int64, in pool order).
    flags : list of QCFlag
        the failed checks (at most ``max_flags`` of them kept in memory; all are in the CSV report).
    pool_problems : list of str
        pool-level problems (pool size, oligo length against the provider's limits).
    stats : dict
        GC / homopolymer statistics over all oligos.
    """

    config: QCConfig
    n_documents: int
    counts: dict
    failed_indices: np.ndarray
    flags: list
    flags_truncated: bool
    pool_problems: list
    stats: dict

    @property
    def n_failed(self) -> int:
        return int(len(self.failed_indices))

    @property
    def failed(self) -> bool:
        """True when any document failed a check or the pool breaks a provider limit."""
        return self.n_failed > 0 or bool(self.pool_problems)

    @property
    def passed(self) -> bool:
        return not self.failed

    def summary(self) -> dict:
        return {
            "passed": self.passed,
            "documents": self.n_documents,
            "documents_failed": self.n_failed,
            "checks_failed": {k: v for k, v in self.counts.items() if v},
            "pool_problems": list(self.pool_problems),
            "stats": self.stats,
            "config": self.config.to_dict(),
        }

    def message(self) -> str:
        """One line: what failed, with the first example."""
        if not self.failed:
            return f"QC passed: {self.n_documents:,} oligos"
        parts = []
        if self.n_failed:
            by = ", ".join(f"{k} {v:,}" for k, v in self.counts.items() if v)
            parts.append(f"{self.n_failed:,} of {self.n_documents:,} oligos failed QC ({by})")
            if self.flags:
                f = self.flags[0]
                parts.append(f"first: document {f.index} ImageID {f.image_id!r} {f.check} "
                             f"{f.value} (limit {f.limit})")
        parts.extend(self.pool_problems)
        return "; ".join(parts)


_REGION = {1: "barcode", 2: "feature"}


class PoolQC:
    """Accumulates QC over the chunks of a pool (bounded memory: two 64-bit key indexes).

    Parameters
    ----------
    layout : OligoLayout
    config : QCConfig
    max_flags : int or None
        how many flags to keep in memory for :attr:`QCReport.flags` (None: all).
    """

    def __init__(self, layout: OligoLayout | None = None, config: QCConfig | None = None,
                 max_flags: int | None = 1000):
        self.layout = layout or OligoLayout()
        self.config = config or QCConfig()
        self.max_flags = max_flags
        self._kmer_names = _primer_kmers(self.layout, self.config.primer_match)
        self._seq_index = KeyIndex()
        self._bc_index = KeyIndex()
        self._counts = {c: 0 for c in CHECKS}
        self._failed: list[np.ndarray] = []
        self._flags: list[QCFlag] = []
        self._truncated = False
        self._n = 0
        self._gc_sum = 0.0
        self._gc_min = np.inf
        self._gc_max = -np.inf
        self._hp_max = 0
        self._extra_problems: list[str] = []

    def check(self, codes: np.ndarray, indices, image_ids, metrics: dict | None = None) -> list[QCFlag]:
        """Check a chunk of oligos (codes N x L, A=0 C=1 G=2 T=3); return all its flags.

        ``metrics`` may be given when :func:`oligo_metrics` already ran (e.g. under a mapper).
        """
        cfg = self.config
        indices = np.asarray(indices, dtype=np.int64)
        n = len(indices)
        m = metrics if metrics is not None else oligo_metrics(codes, self.layout, cfg)
        dup_seq = self._seq_index.add(m["sequence_key"], indices)
        dup_bc = self._bc_index.add(m["barcode_key"], indices)
        fails = {
            "gc": (m["gc"] < cfg.gc_min) | (m["gc"] > cfg.gc_max),
            "window_gc": (m["window_gc_min"] < cfg.window_gc_min) | (m["window_gc_max"] > cfg.window_gc_max),
            "window_gc_spread": (m["window_gc_max"] - m["window_gc_min"]) > cfg.window_gc_spread + 1e-12,
            "homopolymer": m["homopolymer"] > cfg.max_homopolymer,
            "primer_site": m["primer_region"] > 0,
            "duplicate_barcode": dup_bc >= 0,
            "duplicate_sequence": dup_seq >= 0,
        }
        anyf = np.zeros(n, dtype=bool)
        for k, f in fails.items():
            self._counts[k] += int(f.sum())
            anyf |= f
        self._n += n
        if n:
            self._gc_sum += float(m["gc"].sum())
            self._gc_min = min(self._gc_min, float(m["gc"].min()))
            self._gc_max = max(self._gc_max, float(m["gc"].max()))
            self._hp_max = max(self._hp_max, int(m["homopolymer"].max()))
        rows = np.flatnonzero(anyf)
        self._failed.append(indices[rows])
        flags = []
        for r in rows:
            idx, iid = int(indices[r]), str(image_ids[r])
            for k, f in fails.items():
                if not f[r]:
                    continue
                flags.append(QCFlag(idx, iid, k, *self._describe(k, r, m, dup_bc, dup_seq)))
        self._keep(flags)
        return flags

    def add_flags(self, flags: Iterable[QCFlag]) -> None:
        """Record flags found outside :meth:`check` (e.g. ``length`` / ``alphabet``)."""
        flags = list(flags)
        docs = {}
        for f in flags:
            self._counts[f.check] = self._counts.get(f.check, 0) + 1
            docs[f.index] = True
        self._failed.append(np.fromiter(docs, dtype=np.int64, count=len(docs)))
        self._keep(flags)

    def count_unchecked(self, n: int) -> None:
        """Count documents that were only flagged through :meth:`add_flags`."""
        self._n += int(n)

    def _keep(self, flags):
        if self.max_flags is None:
            self._flags.extend(flags)
            return
        room = self.max_flags - len(self._flags)
        if room > 0:
            self._flags.extend(flags[:room])
        if len(flags) > max(room, 0):
            self._truncated = True

    def _describe(self, check, r, m, dup_bc, dup_seq) -> tuple[str, str]:
        cfg = self.config
        if check == "gc":
            return f"{m['gc'][r]:.3f}", f"{cfg.gc_min:.2f}..{cfg.gc_max:.2f}"
        if check == "window_gc":
            return (f"{m['window_gc_min'][r]:.2f}..{m['window_gc_max'][r]:.2f}",
                    f"{cfg.window_gc_min:.2f}..{cfg.window_gc_max:.2f} per {cfg.window} nt")
        if check == "window_gc_spread":
            return (f"{m['window_gc_max'][r] - m['window_gc_min'][r]:.2f}",
                    f"<= {cfg.window_gc_spread:.2f}")
        if check == "homopolymer":
            return str(int(m["homopolymer"][r])), f"<= {cfg.max_homopolymer}"
        if check == "primer_site":
            name = self._kmer_names.get(int(m["primer_kmer"][r]), "primer")
            region = _REGION[int(m["primer_region"][r])]
            return (f"{name} in {region} at {int(m['primer_pos'][r])}",
                    f"no primer 3' {cfg.primer_match}-mer in barcode/feature")
        if check == "duplicate_barcode":
            return f"same barcode as document {int(dup_bc[r])}", "unique"
        if check == "duplicate_sequence":
            return f"same sequence as document {int(dup_seq[r])}", "unique"
        return "", ""

    def finish(self) -> QCReport:
        cfg = self.config
        problems = list(self._extra_problems)
        if self._n < cfg.min_pool_size:
            problems.append(f"pool has {self._n:,} oligo(s); {cfg.provider} needs at least "
                            f"{cfg.min_pool_size:,}")
        if cfg.max_pool_size is not None and self._n > cfg.max_pool_size:
            problems.append(f"pool has {self._n:,} oligos; {cfg.provider} takes at most "
                            f"{cfg.max_pool_size:,}")
        L = self.layout.length
        if L > cfg.max_length or L < cfg.min_length:
            problems.append(f"oligos have {L} nt; {cfg.provider} makes {cfg.min_length}.."
                            f"{cfg.max_length} nt")
        failed = (unique(np.concatenate(self._failed)) if self._failed
                  else np.zeros(0, dtype=np.int64))
        stats = {
            "oligo_length": L,
            "gc_mean": round(self._gc_sum / self._n, 4) if self._n else None,
            "gc_min": round(self._gc_min, 4) if self._n else None,
            "gc_max": round(self._gc_max, 4) if self._n else None,
            "longest_homopolymer": self._hp_max if self._n else None,
            "distinct_sequences": len(self._seq_index),
            "distinct_barcodes": len(self._bc_index),
        }
        return QCReport(config=cfg, n_documents=self._n, counts=dict(self._counts),
                        failed_indices=failed.astype(np.int64), flags=list(self._flags),
                        flags_truncated=self._truncated, pool_problems=problems, stats=stats)


def check_sequences(sequences, *, layout: OligoLayout | None = None, config: QCConfig | None = None,
                    image_ids=None, indices=None, chunksize: int = 50_000) -> QCReport:
    """QC of arbitrary oligo strings (in memory; all flags kept).

    Sequences of the wrong length or with other letters than A/C/G/T are flagged ``length`` /
    ``alphabet`` and skip the other checks.

    >>> rep = check_sequences(["ACGN" * 40 + "ACGTA", "ACGT"])
    >>> rep.failed, sorted(k for k, v in rep.counts.items() if v)
    (True, ['alphabet', 'length'])
    """
    layout = layout or OligoLayout()
    qc = PoolQC(layout, config, max_flags=None)
    seqs = [s.strip().upper() if isinstance(s, str) else "" for s in sequences]
    n = len(seqs)
    ids = [str(i) for i in (image_ids if image_ids is not None else range(n))]
    idx = np.asarray(indices if indices is not None else np.arange(n), dtype=np.int64)
    if len(ids) != n or len(idx) != n:
        raise UsageError("sequences, image_ids and indices must have the same length")
    L = layout.length
    for a in range(0, n, chunksize):
        chunk = seqs[a:a + chunksize]
        good, bad_flags = [], []
        for j, s in enumerate(chunk):
            r = a + j
            if len(s) != L:
                bad_flags.append(QCFlag(int(idx[r]), ids[r], "length", str(len(s)), f"== {L}"))
            elif set(s) - set("ACGT"):
                bad_flags.append(QCFlag(int(idx[r]), ids[r], "alphabet",
                                        "".join(sorted(set(s) - set("ACGT"))), "A, C, G, T"))
            else:
                good.append(r)
        if bad_flags:
            qc.add_flags(bad_flags)
            qc.count_unchecked(len(bad_flags))
        if good:
            buf = "".join(seqs[r] for r in good).encode("ascii")
            codes = _to_codes(np.frombuffer(buf, dtype=np.uint8).reshape(len(good), L))
            g = np.asarray(good)
            qc.check(codes, idx[g], [ids[r] for r in good])
    return qc.finish()
