"""Every setting of ``primo analyze`` (reads -> counts -> search quality), TensorFlow-free.

:class:`AnalyzeSettings` holds the fields, their defaults, bounds and help text (field metadata,
:func:`primo.settings.setting`) and their check in library terms (``option=`` the field's name);
:func:`primo.api.analyze` reads them from here and ``primo analyze`` generates its options from
them (:mod:`primo.cli._settings`), so that no default is written twice. The read-structure
defaults are :class:`primo.reads.ReadStructure`'s, the counting ones
:func:`primo.reads.count_reads`'s, the mAP@k ones :mod:`primo.workflows.analyze`'s.

The inputs (pool, reads, counts, distances, feature stores, labels, excluded documents) are
arguments of :func:`primo.api.analyze`, not settings.
"""

from __future__ import annotations

import dataclasses

from ..errors import UsageError
from ..reads.counting import DEFAULT_CHUNKSIZE, MIN_CHUNKSIZE, MIN_YIELD
from ..reads.structure import ReadStructure
from ..settings import check_field, cli_fields, setting
from .analyze import DEFAULT_MAP_KS

__all__ = ["AnalyzeSettings", "field_options", "SEARCH_SETTINGS"]


def _structure_default(name: str):
    """The default of a :class:`primo.reads.ReadStructure` field (the one place it is written)."""
    return ReadStructure.__dataclass_fields__[name].default


def _size_text(n: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


#: the structure of a read (:class:`primo.reads.ReadStructure`) and the counting
#: (:func:`primo.reads.count_reads`): which settings go where
_STRUCTURE = ("prefix_length", "max_ip_mismatches", "max_barcode_mismatches")
_COUNTING = ("chunksize", "min_yield", "allow_low_yield")
#: the settings of the search evaluation (the others are the reading and counting)
SEARCH_SETTINGS = ("k", "map_ks", "gallery")


@dataclasses.dataclass(frozen=True)
class AnalyzeSettings:
    """Every setting of ``primo analyze`` / :func:`primo.api.analyze`.

    Attributes
    ----------
    paired : bool or None
        The read files are mate pairs, given R1 R2 [R1 R2 ...] (True), or each is single-end
        (False); None: pair files by their ``_R1``/``_R2`` names.
    prefix_length, max_ip_mismatches, max_barcode_mismatches : int
        Where the oligo sits in a read and how tolerant its placing is
        (:class:`primo.reads.ReadStructure`).
    min_yield : float
        Fewer of the reads holding IP decoding to the pool than this fraction is an error (the
        pool does not match the reads) unless ``allow_low_yield``.
    chunksize : int
        FASTQ bytes per parallel task.
    k : int
        Recall is of the ``k`` nearest neighbors.
    map_ks : tuple of int
        The k of the mAP@k figures (with labels).
    gallery : int
        Documents drawn per query on the results page (0: no pictures).
    """

    paired: bool | None = setting(
        None, "Read files are mate pairs, given R1 R2 [R1 R2 ...] (--paired), or every file is "
        "single-end, with no _R1/_R2 pairing (--single-end).", optional=True,
        flag="--paired/--single-end", default_text="pair files by their _R1/_R2 names")
    allow_low_yield: bool = setting(
        False, "Write counts even when almost no read decodes to the pool.",
        flag="--allow-low-yield")
    min_yield: float = setting(MIN_YIELD, "Fraction of reads with IP that must decode to the pool.",
                               lo=0, hi=1)
    prefix_length: int = setting(_structure_default("prefix_length"),
                                 "Random nt before FP in forward reads.", lo=0)
    max_ip_mismatches: int = setting(_structure_default("max_ip_mismatches"),
                                     "Mismatches allowed when locating IP.", lo=0, hi=8)
    max_barcode_mismatches: int = setting(_structure_default("max_barcode_mismatches"),
                                          "Called bases a corrected barcode may differ in.",
                                          lo=0, hi=30)
    chunksize: int = setting(DEFAULT_CHUNKSIZE, "FASTQ bytes per parallel task (K/M suffixes).",
                             lo=MIN_CHUNKSIZE, cli_name="--chunk-bytes", aliases=("--chunksize",),
                             default_shown=_size_text(DEFAULT_CHUNKSIZE))
    k: int = setting(100, "Nearest neighbors for recall.", lo=1, cli_name="--neighbors",
                     short="-k", aliases=("--k",), metavar="K")
    map_ks: tuple[int, ...] = setting(DEFAULT_MAP_KS, "k for mAP@k; repeatable.", lo=1,
                                      multiple=True, cli_name="--map-k")
    gallery: int = setting(10, "report.html: draw the N documents with the most reads (and 5 "
                           "per Fig. 3C threshold); 0: no pictures.", lo=0, metavar="N")

    def __post_init__(self):
        if self.map_ks is not None and not isinstance(self.map_ks, (str, bytes)):
            try:
                object.__setattr__(self, "map_ks", tuple(self.map_ks))
            except TypeError:
                pass
        self.check()

    def check(self) -> None:
        """Every field against its bounds or choices (a :class:`primo.errors.UsageError` naming
        the field, ``option=`` its name)."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.metadata.get("multiple"):
                if not isinstance(v, tuple):
                    raise UsageError(f"{f.name} must be a list of whole numbers, got {v!r}",
                                     option=f.name)
                for item in v:
                    check_field(f, item)
            else:
                check_field(f, v)

    @classmethod
    def from_options(cls, settings=None, **options) -> "AnalyzeSettings":
        """``settings`` (an :class:`AnalyzeSettings`, a dict of its fields, or None: the
        defaults) with the fields named in ``options`` replaced; a name that is no field is a
        :class:`primo.errors.UsageError`. ``structure_options`` (a dict of read-structure fields,
        the older spelling) is taken too."""
        structure = options.pop("structure_options", None) or {}
        options = {**structure, **options}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise UsageError(f"analyze takes no setting {', '.join(map(repr, unknown))}",
                             option=unknown[0],
                             hint=f"its settings are {', '.join(sorted(names))}")
        if isinstance(settings, dict):
            settings = cls.from_options(None, **settings)
        elif settings is not None and not isinstance(settings, cls):
            raise UsageError(f"settings must be an AnalyzeSettings or a dict, got {settings!r}",
                             option="settings")
        base = settings if settings is not None else cls()
        return dataclasses.replace(base, **options) if options else base

    def structure_options(self) -> dict:
        """The settings of the read structure (:class:`primo.reads.ReadStructure`)."""
        return {n: getattr(self, n) for n in _STRUCTURE}

    def count_options(self) -> dict:
        """The settings of the counting (:func:`primo.reads.count_reads`)."""
        return {n: getattr(self, n) for n in _COUNTING}

    def search_options(self) -> dict:
        """The settings of the search evaluation (:func:`primo.workflows.analyze.analyze`)."""
        return {n: getattr(self, n) for n in SEARCH_SETTINGS}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def field_options() -> list:
    """The fields of :class:`AnalyzeSettings` that the command line offers, in order:
    ``(field, metadata)``; ``primo analyze``'s options are generated from them."""
    return cli_fields(AnalyzeSettings)
