"""FASTQ input: pairing files into mates, opening them (compression detected by content),
cutting them into chunks of whole records and parsing a chunk into offsets."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from .kernel import fastreads

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
    fast = fastreads()
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
                    raise OverflowError(_record_name(mm))
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
    seen = set()
    for p in paths:   # the same name twice (the same file by two names: _read_inputs)
        if str(p) in seen:
            raise UsageError(f"read file {p} is given twice: its reads would be counted twice",
                             hint="give each file once")
        seen.add(str(p))
    if paired:
        if len(paths) % 2:
            raise UsageError(f"paired reads need R1 R2 file pairs, got {len(paths)} files",
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
            except OverflowError as e:
                name = str(e) if isinstance(e.args[0:1] and e.args[0], str) else ""
                raise DataError(f"a record is longer than the chunk size ({self.chunksize} bytes)",
                                path=r1, record=name or None,
                                hint="raise the chunk size, or check the file is FASTQ",
                                option="chunksize") from None
            except ValueError as e:
                if "too small" in str(e) or "buffer" in str(e).lower():
                    raise DataError(f"a record does not fit the chunk size ({e})", path=r1,
                                    hint="raise the chunk size", option="chunksize") from None
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
                raise OverflowError(_record_name(buf))
            # a record longer than the buffer: grow into a new one (chunks handed out earlier
            # may still view the old one, which cannot be resized under them)
            new = bytearray(2 * len(buf))
            new[:start] = view[:start]
            view.release()
            buf = new
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


def _record_name(buf) -> str:
    """The name of the last FASTQ record that starts in ``buf`` (the one that does not fit)."""
    p = buf.rfind(b"\n@")
    head = bytes(buf[p + 1:p + 257]).split(b"\n", 1)[0]
    return head[1:].split(None, 1)[0].decode("ascii", "replace")[:60] if head[:1] == b"@" else ""


def _is_empty(fh) -> bool:
    try:
        head = fh.peek(1)[:1]
    except (AttributeError, EOFError, OSError):
        return False
    return head == b""


def _short_exc(e) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= 80 else msg[:77] + "..."
