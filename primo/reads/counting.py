"""Counting the reads of every pool document in FASTQ files: :func:`count_reads`."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np

from ..errors import DataError, UsageError
from .assign import ReadAssigner
from .counts import ReadCounts, _exclusions
from .fastq import _Reader, pair_inputs
from .ring import _Ring, _scratch_dir
from .structure import ReadStructure
from .workers import _add, _count_task, _EngineSpec, _file_task

#: bytes of FASTQ per task
DEFAULT_CHUNKSIZE = 16 * 1024 * 1024
#: the smallest task
MIN_CHUNKSIZE = 1024

#: fewer of the reads with an IP decoding to the pool than this means the pool does not match
MIN_YIELD = 0.05


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
    from ..parallel import get_mapper

    t0 = time.perf_counter()
    inputs = _read_inputs(reads, paired, chunksize)
    image_ids, indices, scheme, layout, pool_desc = _pool_parts(pool)
    if structure is None:
        structure = ReadStructure.from_layout(layout) if layout is not None else ReadStructure()
    excl = _exclusions(image_ids, exclude)

    own_mapper = mapper is None
    if own_mapper:
        mapper = get_mapper()
    work = None
    try:
        work = _Work(mapper, indices, scheme, structure, chunksize)
        t_ready = time.perf_counter()
        cpu_ready = time.process_time()
        tally = _Tally(inputs, len(indices))
        task_fn, task_iter, window = work.tasks(inputs, by_file)
        tally.collect(mapper.imap(task_fn, task_iter, window=window), show_progress)
    finally:
        if own_mapper:
            mapper.close()
        if work is not None:
            work.close()
    excluded = {}
    for iid, pos in excl.items():
        excluded[iid] = int(tally.counts[pos])
        tally.counts[pos] = 0
    timing = {"t0": t0, "ready": t_ready, "cpu_ready": cpu_ready}
    stats = _stats(tally, excluded, inputs, structure, pool_desc, mapper, chunksize, timing)
    if not allow_low_yield and stats["reads"]:
        _check_yield(stats["reads"], stats["reads_with_ip"],
                     tally.mates.get("reasons", {}).get("assigned", 0), min_yield, pool_desc)
    return ReadCounts(image_ids, tally.counts, stats)


def _read_inputs(reads, paired, chunksize) -> list:
    """The inputs as (R1 or single file, R2 or None); UsageError for a missing or repeated file."""
    if chunksize < MIN_CHUNKSIZE:
        raise UsageError(f"chunksize must be at least {MIN_CHUNKSIZE} bytes, got {chunksize}",
                         option="chunksize")
    reads = list(reads)
    if not reads:
        raise UsageError("no read files given", hint="give one or more FASTQ files")
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
    return inputs


class _Work:
    """How the tasks reach the mapper's workers: the engine (a :class:`ReadAssigner`) as an
    object (serial), a pickle in a scratch directory beside a ring of shared-memory chunk files
    (local processes), or its parts (a remote cluster: each worker builds and caches it)."""

    def __init__(self, mapper, indices, scheme, structure: ReadStructure, chunksize: int):
        from ..parallel import ProcessMapper, SerialMapper

        self.mapper, self.chunksize = mapper, chunksize
        self.serial = isinstance(mapper, SerialMapper)
        self.local = isinstance(mapper, ProcessMapper)
        self.tmpdir = self.ring = self.window = None
        key = uuid.uuid4().hex
        if self.serial:
            self.spec = _EngineSpec(key, engine=ReadAssigner(indices, scheme, structure))
        elif self.local:
            import pickle

            self.window = 2 * mapper.n_workers
            slot_bytes = chunksize + (1 << 20)
            self.tmpdir = _scratch_dir((self.window + 2) * 2 * slot_bytes)
            self.ring = _Ring(self.tmpdir, self.window + 2, slot_bytes)
            engine_file = os.path.join(self.tmpdir, "engine.pickle")
            with open(engine_file, "wb") as fh:
                pickle.dump(ReadAssigner(indices, scheme, structure), fh,
                            protocol=pickle.HIGHEST_PROTOCOL)
            self.spec = _EngineSpec(key, engine_file=engine_file)
        else:  # a remote cluster: ship the parts, each worker builds (and caches) the engine
            self.spec = _EngineSpec(key, structure, scheme.to_dict(),
                                    pool_indices=indices.astype(np.int32))

    def tasks(self, inputs, by_file):
        """``(task function, tasks, window)``. With at least as many inputs as local worker
        processes, each worker reads, decompresses and counts whole inputs itself (no chunk
        passes through this process, decompression runs on every core); otherwise this process
        decompresses and hands out chunks."""
        whole_files = (by_file if by_file is not None else
                       self.local and len(inputs) >= self.mapper.n_workers >= 2)
        if whole_files:
            return (_file_task, ((self.spec, fi, r1, r2, self.chunksize)
                                 for fi, (r1, r2) in enumerate(inputs)), len(inputs))
        readers = [_Reader(r1, r2, self.chunksize) for r1, r2 in inputs]
        # several files (lanes) are read at once, their chunks taken in turn: each file is
        # decompressed by its own background thread, so decompression is not bound to one
        # core; results still come back in each file's order
        tasks = _round_robin([self._chunk_tasks(fi, rd) for fi, rd in enumerate(readers)],
                             width=max(2, getattr(self.mapper, "n_workers", 1)))
        return _count_task, tasks, self.window

    def _chunk_tasks(self, fi: int, rd: _Reader):
        """The tasks of one input's chunks."""
        spec, ring = self.spec, self.ring
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
            elif self.serial:   # processed before the next chunk is read: no copy
                yield (spec, fi, d1, d2)
            else:
                yield (spec, fi, bytes(d1), None if d2 is None else bytes(d2))

    def close(self):
        if self.ring is not None:
            self.ring.close()
        if self.tmpdir is not None:
            import shutil

            shutil.rmtree(self.tmpdir, ignore_errors=True)


class _Tally:
    """The workers' results added up: counts per pool position, reads per file, summaries."""

    def __init__(self, inputs, n_pool: int):
        self.inputs = inputs
        self.counts = np.zeros(n_pool, dtype=np.int64)
        self.files, self.file_slot = [], []
        for r1, r2 in inputs:
            k = len(self.files)
            self.file_slot.append((k, k + 1 if r2 is not None else None))
            self.files.append({"path": str(r1), "mate": "R1" if r2 is not None else "single",
                               "reads": 0})
            if r2 is not None:
                self.files.append({"path": str(r2), "mate": "R2", "reads": 0})
        self.lines_done = [[0, 0] for _ in inputs]
        self.mates: dict = {}
        self.frags: dict = {}
        self.pairs: dict = {}
        self.n_frag = self.short_reads = 0
        self.worker_cpu = 0.0

    def collect(self, results, show_progress: bool) -> None:
        from ..progress import progress

        bar = progress(total=None, desc="reads", unit="read") if show_progress else None
        try:
            for res in results:
                self.add(res)
                if bar is not None:
                    bar.update(res["reads"][0] + res["reads"][1])
        finally:
            if bar is not None:
                bar.close()

    def add(self, res: dict) -> None:
        fi = res["file"]
        if res["error"] is not None:
            _raise_chunk_error(res["error"], self.inputs[fi],
                               res.get("lines_before", self.lines_done[fi]))
        for m in (0, 1):
            self.lines_done[fi][m] += res["n_lines"][m]
            slot = self.file_slot[fi][m]
            if slot is not None:
                self.files[slot]["reads"] += res["reads"][m]
        self.worker_cpu += res["cpu"]
        self.short_reads += res.get("short_reads", 0)
        if len(res["counts"]):
            self.counts[res["positions"]] += res["counts"]
        for s in res.get("summary", []):
            _add(self.mates, s)
        _add(self.frags, res["fragments"])
        if res["pairs"]:
            _add(self.pairs, res["pairs"])
        self.n_frag += res["reads"][0]


def _stats(tally: _Tally, excluded: dict, inputs, structure, pool_desc, mapper, chunksize,
           timing: dict) -> dict:
    """What :func:`count_reads` measured (``stats.json``), the excluded documents already zeroed."""
    seconds = time.perf_counter() - timing["t0"]
    main_cpu = time.process_time() - timing["cpu_ready"]
    counts, mates, frags = tally.counts, tally.mates, tally.frags
    n_reads = sum(f["reads"] for f in tally.files)
    with_ip = mates.get("ip_found", {}).get("forward", 0) + mates.get("ip_found", {}).get("reverse", 0)
    assigned_reads = mates.get("reasons", {}).get("assigned", 0)
    yield_ = assigned_reads / with_ip if with_ip else 0.0
    return {
        "pool": {"source": pool_desc, "documents": int(len(counts))},
        "inputs": tally.files,
        "paired": any(r2 is not None for _, r2 in inputs),
        "reads": int(n_reads),
        "fragments": int(tally.n_frag),
        "oligo_found": mates.get("ip_found", {"forward": 0, "reverse": 0}),
        "ip_found_by": mates.get("ip_stage", {}),
        "reads_with_ip": int(with_ip),
        "min_read_length": structure.min_read_length,
        "reads_too_short_for_reverse": int(tally.short_reads),
        "barcodes": mates.get("how", {}),
        "reads_by_reason": mates.get("reasons", {}),
        "assigned_by_strand": mates.get("assigned_strand", {}),
        "fragments_by_reason": frags,
        "not_in_pool": int(frags.get("not_in_pool", 0)),
        "paired_end": tally.pairs or None,
        "counted": int(counts.sum()),
        "documents_seen": int((counts > 0).sum()),
        "excluded": excluded,
        "decode_yield": round(yield_, 6),
        "seconds": round(seconds, 3),
        "reads_per_second": round(n_reads / seconds, 1) if seconds > 0 else None,
        "startup_seconds": round(timing["ready"] - timing["t0"], 3),
        "worker_cpu_seconds": round(tally.worker_cpu, 3),
        "main_cpu_seconds": round(main_cpu, 3),
        "mapper": mapper.describe(),
        "chunksize": int(chunksize),
        "read_structure": structure.to_dict(),
    }


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
                    hint="give the mates of each pair in the same order, or read them single-end")
