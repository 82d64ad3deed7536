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
