"""The ring of shared-memory files through which chunks reach local worker processes."""

from __future__ import annotations

import os
import tempfile

_RING_MAPS: dict = {}


def _chunk_data(data):
    """A task's chunk: bytes, or ``(path, length)`` of a ring slot (mapped once per worker)."""
    if data is None or isinstance(data, (bytes, bytearray, memoryview)):
        return data
    path, length = data
    mm = _RING_MAPS.get(path)
    if mm is None:
        import mmap

        fd = os.open(path, os.O_RDONLY)
        try:
            mm = _RING_MAPS[path] = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
    return memoryview(mm)[:length]


def _forget_ring_maps():
    for mm in _RING_MAPS.values():
        try:
            mm.close()
        except BufferError:  # pragma: no cover - an array still views it; freed with it
            pass
    _RING_MAPS.clear()


class _Ring:
    """Chunks handed to local worker processes through a ring of shared-memory files.

    Instead of pickling each chunk through a pipe (two copies on each side and many system calls),
    the main process decompresses straight into one of ``slots`` memory-mapped files per mate (on
    /dev/shm when there is room, else the temporary directory) and the task carries only
    ``(path, length)``; each worker maps every slot once and parses it in place. A slot is
    rewritten only after the result of the chunk it held was received: results arrive in order
    and at most ``window`` tasks are in flight, so ``slots = window + 2`` suffice.
    """

    def __init__(self, directory: str, slots: int, slot_bytes: int):
        self.slots, self.slot_bytes = slots, slot_bytes
        self.paths = [[os.path.join(directory, f"chunk{m}_{i}") for i in range(slots)]
                      for m in (0, 1)]
        self.maps: dict = {}
        self.k = 0

    def slot(self, mate: int):
        """``(path, mmap)`` of the current slot of ``mate``."""
        import mmap

        path = self.paths[mate][self.k % self.slots]
        mm = self.maps.get(path)
        if mm is None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # reserve the space now: a full file system then fails here with ENOSPC, not
                # later with SIGBUS when the mapped pages are written
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, self.slot_bytes)
                else:  # pragma: no cover
                    os.ftruncate(fd, self.slot_bytes)
                mm = self.maps[path] = mmap.mmap(fd, self.slot_bytes)
            finally:
                os.close(fd)
        return path, mm

    def put(self, view, mate: int):
        """Copy a chunk into the current slot; ``(path, length)``, or bytes if it does not fit."""
        n = len(view)
        if n > self.slot_bytes:
            return bytes(view)
        path, mm = self.slot(mate)
        mm[:n] = view
        return (path, n)

    def advance(self):
        self.k += 1

    def close(self):
        for mm in self.maps.values():
            try:
                mm.close()
            except BufferError:  # pragma: no cover
                pass
        self.maps = {}


def _scratch_dir(need: int) -> str:
    """A private temporary directory, on /dev/shm if it has ``need`` bytes free."""
    base = None
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize > 2 * need and os.access("/dev/shm", os.W_OK):
            base = "/dev/shm"
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="primo-analyze-", dir=base)
