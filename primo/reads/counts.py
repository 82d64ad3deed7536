"""Per-document read counts: :class:`ReadCounts` (``counts.csv.gz``, ``stats.json``), aligning
them to a pool and excluding documents."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

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
        from ..io import read_id_table

        ids, counts, _ = read_id_table(path, "Count", what="read counts file", convert=int,
                                       kind="an integer",
                                       check=lambda c: "is negative" if c < 0 else "")
        if not ids:
            raise DataError("read counts file has no rows", path=path,
                            hint="expected ImageID,Count for every pool document")
        arr = np.array(ids, dtype=object)
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


def _exclusions(image_ids, exclude) -> dict:
    exclude = [str(e).strip() for e in (exclude or ()) if str(e).strip()]
    if not exclude:
        return {}
    where = {}
    lookup = {str(i): k for k, i in enumerate(np.asarray(image_ids).tolist())
              if str(i) in set(exclude)}
    for e in exclude:
        if e not in lookup:
            raise UsageError(f"excluded ImageID {e}: no document of the pool has it",
                             option="exclude", hint="give an ImageID from the pool's database_seqs.csv.gz")
        where[e] = lookup[e]
    return where
