"""Layouts of the database oligo and of the query probe.

Database oligo, 5'->3' (165 nt with the published defaults)::

    FP (18) | barcode (30) | IP (19) | feature region (80) | RP (18)
    GCCGACCAGTTTCCATAG  CTGATAGTAG...  AGCACTCAGTATTTGTCCG  <80 nt>  GTCCTCAACAACCTCCTG

PCR uses FP and RP* (the reverse complement of RP); the linear amplification that leaves the
feature region single-stranded uses IP* (papers 001/002, Fig. S4).

Query probe, 5'->3' (IDT notation)::

    /5Biosg/UUUUUUUTT + reverse complement of (query feature region + RP[:6])

``/5Biosg/`` is a 5' biotin, the seven ``U`` are deoxyuridines (cut by USER enzyme to release the
captured strands) and ``TT`` a spacer; the 6 nt of RP are a hybridization toehold. The bare probe DNA
(86 nt) is what the yield simulation uses as the query strand.

Primer validation (:func:`check_primers`) rejects, with a one-line :class:`~primo.errors.UsageError`:

* anything but A, C, G, T; a length outside 15..40 nt;
* a GC fraction outside 0.30..0.70 or a homopolymer longer than 4 nt;
* a melting temperature outside 45..72 degC (SantaLucia 1998 unified nearest-neighbor parameters,
  50 mM Na+, 250 nM primer; the published primers are at 51-52 degC), or FP and RP more than 5 degC
  apart (they run in the same PCR);
* a primer, or its reverse complement, contained in another primer (they would prime each other's
  sites), or two equal primers.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from .. import constants as C
from ..dna import encode_seqs, longest_homopolymer, revcomp, validate_sequence
from ..errors import DataError, UsageError, shorten

__all__ = ["OligoLayout", "ProbeLayout", "check_primers", "primer_tm", "to_idt_notation"]

# SantaLucia (1998) unified nearest-neighbor parameters: dH (kcal/mol), dS (cal/mol/K)
_NN = {
    "AA": (-7.9, -22.2), "TT": (-7.9, -22.2), "AT": (-7.2, -20.4), "TA": (-7.2, -21.3),
    "CA": (-8.5, -22.7), "TG": (-8.5, -22.7), "GT": (-8.4, -22.4), "AC": (-8.4, -22.4),
    "CT": (-7.8, -21.0), "AG": (-7.8, -21.0), "GA": (-8.2, -22.2), "TC": (-8.2, -22.2),
    "CG": (-10.6, -27.2), "GC": (-9.8, -24.4), "GG": (-8.0, -19.9), "CC": (-8.0, -19.9),
}

PRIMER_LENGTH_RANGE = (15, 40)
PRIMER_GC_RANGE = (0.30, 0.70)
PRIMER_MAX_HOMOPOLYMER = 4
PRIMER_TM_RANGE = (45.0, 72.0)
PRIMER_PAIR_MAX_DTM = 5.0


def primer_tm(seq: str, na: float = 0.05, conc: float = 250e-9) -> float:
    """Melting temperature (degC) of a primer against its complement.

    Nearest-neighbor model with the SantaLucia (1998) unified parameters, entropy salt correction
    ``0.368 (N - 1) ln[Na+]`` and ``Tm = dH / (dS + R ln(C/4))``.

    >>> round(primer_tm("GCCGACCAGTTTCCATAG"), 1)
    51.9
    """
    s = validate_sequence(seq, what="primer")
    if len(s) < 2:
        raise UsageError(f"primer {s!r} is too short for a melting temperature")
    dh = ds = 0.0
    for end in (s[0], s[-1]):
        if end in "GC":
            dh, ds = dh + 0.1, ds - 2.8
        else:
            dh, ds = dh + 2.3, ds + 4.1
    for i in range(len(s) - 1):
        h, e = _NN[s[i:i + 2]]
        dh, ds = dh + h, ds + e
    if s == revcomp(s):
        ds -= 1.4
    ds += 0.368 * (len(s) - 1) * math.log(na)
    return dh * 1000.0 / (ds + 1.987 * math.log(conc / 4)) - 273.15


def check_primers(primers: dict[str, str]) -> dict[str, str]:
    """Validate named primers (e.g. ``{"FP": ..., "IP": ..., "RP": ...}``); return them upper-cased.

    Raises :class:`~primo.errors.UsageError` naming the primer and the rule it breaks (see the module
    docstring for the rules).
    """
    out = {}
    for name, seq in primers.items():
        if not isinstance(seq, str) or not seq.strip():
            raise UsageError(f"primer {name} is empty", hint="give an A/C/G/T sequence")
        s = seq.strip().upper()
        bad = sorted(set(s) - set("ACGT"))
        if bad:
            raise UsageError(f"primer {name} {shorten(s)} has unknown base(s) {''.join(bad)!r}",
                             hint="only A, C, G, T are allowed")
        lo, hi = PRIMER_LENGTH_RANGE
        if not lo <= len(s) <= hi:
            raise UsageError(f"primer {name} has {len(s)} nt, expected {lo}..{hi}")
        gc = (s.count("G") + s.count("C")) / len(s)
        if not PRIMER_GC_RANGE[0] <= gc <= PRIMER_GC_RANGE[1]:
            raise UsageError(f"primer {name} {s} has GC fraction {gc:.2f}, outside "
                             f"{PRIMER_GC_RANGE[0]:.2f}..{PRIMER_GC_RANGE[1]:.2f}",
                             hint="choose a primer with balanced GC content")
        hp = longest_homopolymer(s)
        if hp > PRIMER_MAX_HOMOPOLYMER:
            raise UsageError(f"primer {name} {s} has a homopolymer of {hp} nt "
                             f"(at most {PRIMER_MAX_HOMOPOLYMER})")
        tm = primer_tm(s)
        if not PRIMER_TM_RANGE[0] <= tm <= PRIMER_TM_RANGE[1]:
            raise UsageError(f"primer {name} {s} has Tm {tm:.1f} degC, outside "
                             f"{PRIMER_TM_RANGE[0]:.0f}..{PRIMER_TM_RANGE[1]:.0f} degC "
                             "(nearest-neighbor, 50 mM Na+, 250 nM)")
        out[name] = s
    names = list(out)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            sa, sb = out[a], out[b]
            if sa == sb:
                raise UsageError(f"primers {a} and {b} are the same sequence {sa}")
            short, long_, ns, nl = (sa, sb, a, b) if len(sa) <= len(sb) else (sb, sa, b, a)
            if short in long_ or revcomp(short) in long_:
                raise UsageError(f"primer {ns} (or its reverse complement) occurs inside primer {nl}",
                                 hint="primers must not contain each other")
    if "FP" in out and "RP" in out:
        d = abs(primer_tm(out["FP"]) - primer_tm(out["RP"]))
        if d > PRIMER_PAIR_MAX_DTM:
            raise UsageError(f"FP and RP melting temperatures differ by {d:.1f} degC "
                             f"(at most {PRIMER_PAIR_MAX_DTM:.0f}; they anneal in the same PCR)")
    return out


def _letters(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("ascii"), dtype=np.uint8)


@dataclasses.dataclass(frozen=True)
class OligoLayout:
    """The database oligo: FP | barcode | IP | feature region | RP (5'->3').

    >>> lay = OligoLayout()
    >>> lay.length
    165
    >>> o = lay.oligo("CTGATAGTAGATCATAGATGACACGATGAT", "A" * 80)
    >>> lay.split(o) == ("CTGATAGTAGATCATAGATGACACGATGAT", "A" * 80)
    True
    """

    fp: str = C.FP
    ip: str = C.IP
    rp: str = C.RP
    barcode_length: int = C.BARCODE_LENGTH
    feature_length: int = C.FEATURE_LENGTH

    def __post_init__(self):
        p = check_primers({"FP": self.fp, "IP": self.ip, "RP": self.rp})
        object.__setattr__(self, "fp", p["FP"])
        object.__setattr__(self, "ip", p["IP"])
        object.__setattr__(self, "rp", p["RP"])
        for what in ("barcode_length", "feature_length"):
            v = getattr(self, what)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise UsageError(f"{what} must be a positive integer, got {v!r}")
            object.__setattr__(self, what, int(v))

    # ---- geometry ----------------------------------------------------------------------------
    @property
    def length(self) -> int:
        return len(self.fp) + self.barcode_length + len(self.ip) + self.feature_length + len(self.rp)

    @property
    def barcode_slice(self) -> slice:
        a = len(self.fp)
        return slice(a, a + self.barcode_length)

    @property
    def ip_slice(self) -> slice:
        a = self.barcode_slice.stop
        return slice(a, a + len(self.ip))

    @property
    def feature_slice(self) -> slice:
        a = self.ip_slice.stop
        return slice(a, a + self.feature_length)

    @property
    def rp_slice(self) -> slice:
        a = self.feature_slice.stop
        return slice(a, a + len(self.rp))

    @property
    def fp_slice(self) -> slice:
        return slice(0, len(self.fp))

    def regions(self) -> dict[str, slice]:
        """Name -> slice of every region, 5'->3'."""
        return {"FP": self.fp_slice, "barcode": self.barcode_slice, "IP": self.ip_slice,
                "feature": self.feature_slice, "RP": self.rp_slice}

    @property
    def primers(self) -> dict[str, str]:
        """The primer sites as written in the oligo and the primers ordered for the protocol."""
        return {"FP": self.fp, "IP": self.ip, "RP": self.rp,
                "PCR forward (FP)": self.fp, "PCR reverse (RP*)": revcomp(self.rp),
                "linear amplification (IP*)": revcomp(self.ip)}

    # ---- building ----------------------------------------------------------------------------
    def oligo(self, barcode: str, feature: str) -> str:
        """One oligo, 5'->3'. Raises DataError for a barcode or feature of the wrong length/alphabet."""
        b = validate_sequence(barcode, length=self.barcode_length, what="barcode")
        f = validate_sequence(feature, length=self.feature_length, what="feature sequence")
        return f"{self.fp}{b}{self.ip}{f}{self.rp}"

    def oligo_codes(self, barcodes, features) -> np.ndarray:
        """Vectorised: barcodes and features -> ASCII bytes of the oligos (N x length uint8).

        ``barcodes`` may be strings or an ``S`` bytes array (as from
        :meth:`primo.barcodes.BarcodeScheme.encode_bytes`); ``features`` strings or an ``S`` array.
        Raises DataError naming the first bad record.
        """
        b = _ascii_matrix(barcodes, self.barcode_length, "barcode")
        f = _ascii_matrix(features, self.feature_length, "feature sequence")
        if len(b) != len(f):
            raise UsageError(f"{len(b)} barcodes but {len(f)} feature sequences")
        n = len(b)
        out = np.empty((n, self.length), dtype=np.uint8)
        out[:, self.fp_slice] = _letters(self.fp)
        out[:, self.barcode_slice] = b
        out[:, self.ip_slice] = _letters(self.ip)
        out[:, self.feature_slice] = f
        out[:, self.rp_slice] = _letters(self.rp)
        return out

    def oligos(self, barcodes, features) -> list[str]:
        """Vectorised :meth:`oligo`: lists (or arrays) of barcodes and features -> list of oligos."""
        codes = self.oligo_codes(barcodes, features)
        return [r.decode("ascii") for r in np.ascontiguousarray(codes).view(f"S{self.length}").ravel()]

    # ---- parsing -----------------------------------------------------------------------------
    def split(self, sequence: str, *, path=None, line=None, record=None) -> tuple[str, str]:
        """An oligo -> (barcode, feature). DataError if it does not follow this layout."""
        s = sequence.strip().upper() if isinstance(sequence, str) else sequence
        codes = _ascii_matrix([s], None, "oligo", path=path, line=line, record=record,
                              check_alphabet=False)
        problem = self.problems(codes)[0]
        if problem:
            raise DataError(f"oligo {shorten(s)} does not follow the layout: {problem}", path=path,
                            line=line, record=record, hint=self.describe())
        return s[self.barcode_slice], s[self.feature_slice]

    def problems(self, codes: np.ndarray) -> list[str]:
        """For rows of ASCII oligo bytes (N x L uint8, rows of any L padded with 0), say what is
        wrong with each ('' when the row follows the layout). Vectorised on the common case."""
        codes = np.asarray(codes, dtype=np.uint8)
        n = len(codes)
        out = [""] * n
        if codes.ndim != 2:
            raise ValueError("codes must be 2-D")
        L = codes.shape[1]
        if L != self.length:
            return [f"{self._len_of(r)} nt, expected {self.length}" for r in codes]
        bad = np.zeros(n, dtype=bool)
        valid = np.isin(codes, _letters("ACGT"))
        bad |= ~valid.all(axis=1)
        parts = [("FP", self.fp_slice, self.fp), ("IP", self.ip_slice, self.ip),
                 ("RP", self.rp_slice, self.rp)]
        mism = {name: (codes[:, sl] != _letters(seq)).any(axis=1) for name, sl, seq in parts}
        for m in mism.values():
            bad |= m
        for i in np.flatnonzero(bad):
            row = codes[i]
            if not valid[i].all():
                ch = sorted({chr(c) for c in row[~valid[i]]})
                out[i] = f"unknown base(s) {''.join(ch)!r}"
                continue
            msgs = []
            for name, sl, seq in parts:
                if mism[name][i]:
                    got = row[sl].tobytes().decode("ascii")
                    msgs.append(f"{name} is {got}, expected {seq}")
            out[i] = "; ".join(msgs)
        return out

    @staticmethod
    def _len_of(row) -> int:
        nz = np.flatnonzero(row)
        return int(nz[-1]) + 1 if len(nz) else 0

    def describe(self) -> str:
        return (f"expected FP {self.fp} + {self.barcode_length}-nt barcode + IP {self.ip} + "
                f"{self.feature_length}-nt feature + RP {self.rp} = {self.length} nt")

    # ---- manifest ----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "layout": "FP-barcode-IP-feature-RP",
            "fp": self.fp, "ip": self.ip, "rp": self.rp,
            "barcode_length": self.barcode_length, "feature_length": self.feature_length,
            "length": self.length,
            "regions": {k: [v.start, v.stop] for k, v in self.regions().items()},
        }

    @classmethod
    def from_dict(cls, d: dict | None) -> "OligoLayout":
        if not d:
            return cls()
        try:
            lay = cls(fp=d.get("fp", C.FP), ip=d.get("ip", C.IP), rp=d.get("rp", C.RP),
                      barcode_length=int(d.get("barcode_length", C.BARCODE_LENGTH)),
                      feature_length=int(d.get("feature_length", C.FEATURE_LENGTH)))
        except (TypeError, ValueError, AttributeError) as e:
            if isinstance(e, UsageError):
                raise DataError(f"oligo layout in the manifest is invalid: {e}") from None
            raise DataError(f"oligo layout in the manifest is malformed ({e})") from None
        try:
            length = int(d["length"]) if "length" in d else lay.length
        except (TypeError, ValueError):
            raise DataError(f"oligo layout in the manifest has length {str(d['length'])[:20]!r}, "
                            "not a number") from None
        if length != lay.length:
            raise DataError(f"oligo layout in the manifest says length {d['length']} but its parts "
                            f"add up to {lay.length}")
        return lay


def _ascii_matrix(seqs, length, what, *, path=None, line=None, record=None,
                  check_alphabet=True) -> np.ndarray:
    """Strings or an ``S`` array -> ASCII bytes matrix (N x length), upper-cased.

    With ``length=None`` rows may differ in length and are zero-padded to the longest.
    """
    if isinstance(seqs, np.ndarray) and seqs.dtype.kind == "S":
        width = seqs.dtype.itemsize
        m = np.ascontiguousarray(seqs).view(np.uint8).reshape(len(seqs), width)
        if length is not None and width != length:
            lens = (m != 0).sum(axis=1)
            i = int(np.flatnonzero(lens != length)[0]) if (lens != length).any() else 0
            raise DataError(f"{what} has {int(lens[i])} nt, expected {length}", record=i, path=path)
        m = m.copy()
    else:
        seqs = list(seqs)
        if length is not None:
            try:
                codes = encode_seqs(seqs, length, what=what, path=path)
            except DataError as e:
                if line is not None or record is not None:
                    raise DataError(e.raw_message, path=path, line=line, record=record,
                                    hint=e.hint) from None
                raise
            return np.frombuffer(b"ACGT", dtype=np.uint8)[codes]
        enc = [s.encode("ascii", "replace") if isinstance(s, str) else bytes(s) for s in seqs]
        width = max((len(e) for e in enc), default=0)
        m = np.zeros((len(enc), width), dtype=np.uint8)
        for i, e in enumerate(enc):
            m[i, :len(e)] = np.frombuffer(e, dtype=np.uint8)
    lower = (m >= ord("a")) & (m <= ord("z"))
    m[lower] -= 32
    if check_alphabet:
        ok = np.isin(m, _letters("ACGT"))
        if not ok.all():
            i = int(np.flatnonzero(~ok.all(axis=1))[0])
            raise DataError(f"{what} has unknown base(s)", record=i, path=path,
                            hint="only A, C, G, T are allowed")
    return m


_IDT_TOKEN = re.compile(r"/[^/]+/|.", re.S)


def to_idt_notation(seq: str) -> str:
    """Sequence with IDT modification codes: deoxyuridines written ``U`` become ``/ideoxyU/``.

    Codes already in ``/.../`` (``/5Biosg/``, ...) are kept.

    >>> to_idt_notation("/5Biosg/UUTTACG")
    '/5Biosg//ideoxyU//ideoxyU/TTACG'
    """
    out = []
    for tok in _IDT_TOKEN.findall(seq):
        out.append("/ideoxyU/" if tok in ("U", "u") else tok)
    return "".join(out)


@dataclasses.dataclass(frozen=True)
class ProbeLayout:
    """The query probe: ``prefix`` + reverse complement of (query feature region + RP[:toehold]).

    >>> p = ProbeLayout()
    >>> p.dna("A" * 80) == "GAGGAC" + "T" * 80
    True
    >>> p.probe("A" * 80).startswith("/5Biosg/UUUUUUUTT")
    True
    """

    rp: str = C.RP
    toehold: int = C.TOEHOLD
    prefix: str = C.PROBE_PREFIX
    feature_length: int = C.FEATURE_LENGTH

    def __post_init__(self):
        rp = check_primers({"RP": self.rp})["RP"]
        object.__setattr__(self, "rp", rp)
        if not 0 <= int(self.toehold) <= len(rp):
            raise UsageError(f"toehold must be 0..{len(rp)} nt of RP, got {self.toehold}")
        object.__setattr__(self, "toehold", int(self.toehold))
        if int(self.feature_length) < 1:
            raise UsageError(f"feature_length must be positive, got {self.feature_length}")
        object.__setattr__(self, "feature_length", int(self.feature_length))
        bases = re.sub(r"/[^/]*/", "", self.prefix)
        if set(bases) - set("ACGTU"):
            raise UsageError(f"probe prefix {self.prefix!r} has characters other than A, C, G, T, U "
                             "outside /modification/ codes")

    @property
    def dna_length(self) -> int:
        return self.feature_length + self.toehold

    def dna(self, feature: str, *, record=None, path=None, line=None) -> str:
        """The bare probe DNA, 5'->3': reverse complement of (feature + RP[:toehold])."""
        f = validate_sequence(feature, length=self.feature_length, what="query feature sequence",
                              record=record, path=path, line=line)
        return revcomp(f + self.rp[: self.toehold])

    def probe(self, feature: str, **where) -> str:
        """The probe as written in ``query_seqs.csv``: prefix (modifications) + :meth:`dna`."""
        return self.prefix + self.dna(feature, **where)

    def idt_sequence(self, feature: str, **where) -> str:
        """The probe in IDT order notation (deoxyuridines as ``/ideoxyU/``)."""
        return to_idt_notation(self.prefix) + self.dna(feature, **where)

    def feature_of(self, probe: str) -> str:
        """Inverse of :meth:`probe`: the query feature region of a probe sequence."""
        s = probe.strip()
        if not s.startswith(self.prefix):
            raise DataError(f"probe {shorten(s)} does not start with {self.prefix}")
        dna = s[len(self.prefix):].upper()
        if len(dna) != self.dna_length:
            raise DataError(f"probe DNA has {len(dna)} nt, expected {self.dna_length}")
        fwd = revcomp(dna)
        if fwd[self.feature_length:] != self.rp[: self.toehold]:
            raise DataError(f"probe {shorten(s)} does not end in the RP toehold "
                            f"{revcomp(self.rp[:self.toehold])}")
        return fwd[: self.feature_length]

    def to_dict(self) -> dict:
        return {"layout": "prefix + revcomp(feature + RP[:toehold])", "prefix": self.prefix,
                "rp": self.rp, "toehold": self.toehold, "feature_length": self.feature_length,
                "dna_length": self.dna_length}

    @classmethod
    def from_dict(cls, d: dict | None) -> "ProbeLayout":
        if not d:
            return cls()
        try:
            return cls(rp=d.get("rp", C.RP), toehold=int(d.get("toehold", C.TOEHOLD)),
                       prefix=d.get("prefix", C.PROBE_PREFIX),
                       feature_length=int(d.get("feature_length", C.FEATURE_LENGTH)))
        except (TypeError, ValueError, AttributeError) as e:
            raise DataError(f"probe layout is malformed ({e})") from None
