"""The read structure (where the oligo sits in a read) and the vocabulary of outcomes:
why a read is or is not counted, how its barcode and IP were found (:class:`Assignment`, the
outcome of each read of a batch)."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import constants as C
from ..errors import UsageError
from ..oligos.layout import OligoLayout

#: why a read (fragment) is or is not counted; ``Assignment.reason`` holds indices into this tuple
REASONS = ("assigned", "no_ip", "barcode_truncated", "uncorrectable", "not_in_pool", "ambiguous",
           "conflict")
R_ASSIGNED, R_NO_IP, R_TRUNCATED, R_UNCORRECTABLE, R_NOT_IN_POOL, R_AMBIGUOUS, R_CONFLICT = range(7)

#: how an assigned read's barcode was read; ``Assignment.how`` holds indices into this tuple
HOW = ("none", "exact", "corrected", "indel_rescued")
H_NONE, H_EXACT, H_CORRECTED, H_INDEL = range(4)

#: how IP was found; ``Assignment.ip_stage`` holds indices into this tuple
IP_STAGES = ("none", "exact_at_offset", "near_offset", "elsewhere", "fp_anchored")


# the outcome of a batch of reads
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Assignment:
    """Per-read outcome of :meth:`primo.reads.ReadAssigner.assign` (arrays of the batch length).

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


# read structure
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ReadStructure:
    """Where the oligo sits in a read and how tolerant the search is (see :mod:`primo.reads`).

    Parameters
    ----------
    layout : primo.oligos.layout.OligoLayout
        The pool's oligo layout (primer sites, barcode and feature lengths), default the
        published one; its fields are readable here too (``fp``, ``ip``, ``rp``,
        ``barcode_length``, ``feature_length``).
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

    layout: OligoLayout = dataclasses.field(default_factory=OligoLayout)
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
        if not isinstance(self.layout, OligoLayout):
            raise UsageError(f"read structure: layout must be an OligoLayout, got {self.layout!r}")
        for name in _TOLERANCES:
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
        return cls(layout=layout, **kw)

    # the layout's fields
    fp = property(lambda self: self.layout.fp, doc="FP, the forward primer site.")
    ip = property(lambda self: self.layout.ip, doc="IP, the internal primer site.")
    rp = property(lambda self: self.layout.rp, doc="RP, the reverse primer site.")
    barcode_length = property(lambda self: self.layout.barcode_length)
    feature_length = property(lambda self: self.layout.feature_length)

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
        """The layout's fields, the tolerances and the offsets (``stats.json``)."""
        d = {name: getattr(self, name) for name in ("fp", "ip", "rp", "barcode_length",
                                                     "feature_length")}
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "layout"})
        d["forward_ip_offset"] = self.forward_ip_offset
        d["reverse_ip_offset"] = self.reverse_ip_offset
        return d


_TOLERANCES = ("prefix_length", "max_ip_mismatches", "max_shift", "flank_length",
               "max_flank_mismatches", "max_missing", "max_barcode_mismatches")
