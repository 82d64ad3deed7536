"""What a worker does with a chunk or a whole input: parse, assign, combine mates and
return counts and counters (the engine, a :class:`ReadAssigner`, is built once per worker)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .assign import Assignment, ReadAssigner
from .fastq import _FormatProblem, _parse_chunk, _Reader
from .ring import _chunk_data, _forget_ring_maps
from .structure import REASONS, R_ASSIGNED, R_CONFLICT, ReadStructure

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


def _add(acc: dict, d: dict) -> None:
    for k, v in d.items():
        if isinstance(v, dict):
            _add(acc.setdefault(k, {}), v)
        elif v is not None:
            acc[k] = acc.get(k, 0) + v
