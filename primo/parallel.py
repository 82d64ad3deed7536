"""The pluggable map: serial, local processes (default), or an existing Dask cluster.

Library functions that work over independent items (simulation batches, encoding shards, read
chunks) take a ``mapper`` argument. A mapper has one method that matters, :meth:`Mapper.imap`,
which applies a picklable module-level function to each item and yields results **in input
order**, keeping at most a few tasks in flight so memory stays bounded however many items there are.

>>> from primo.parallel import get_mapper
>>> with get_mapper(processes=1) as m:
...     list(m.imap(abs, [-1, 2, -3]))
[1, 2, 3]

``get_mapper(scheduler="tcp://host:8786")`` sends the work to a running Dask.distributed scheduler
(nothing is started or stopped there); ``get_mapper(processes=N)`` uses N local worker processes
(``forkserver`` start method, safe beside TensorFlow threads); ``processes=1`` runs in-process.
Results are identical whatever the mapper: functions must not depend on worker state.
"""

from __future__ import annotations

import abc
import collections
import os
import re
from typing import Callable, Iterable, Iterator

from .errors import MissingDependencyError, UsageError

__all__ = ["Mapper", "SerialMapper", "ProcessMapper", "DaskMapper", "get_mapper", "default_processes"]


def default_processes() -> int:
    """Worker count for local processes: the CPUs this process may use (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        n = os.cpu_count() or 1
    return max(1, n)


class Mapper(abc.ABC):
    """Base class. Use as a context manager so worker pools are closed."""

    n_workers = 1
    name = "mapper"

    @abc.abstractmethod
    def imap(self, fn: Callable, items: Iterable, *, window: int | None = None) -> Iterator:
        """Yield ``fn(item)`` for each item, in order."""

    def map(self, fn: Callable, items: Iterable) -> list:
        return list(self.imap(fn, items))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self) -> str:
        return f"{self.name} ({self.n_workers} worker{'s' if self.n_workers != 1 else ''})"


def _windowed(submit, items, window: int):
    """Submit items as futures, at most ``window`` in flight; yield their results in order.

    Futures still pending when the consumer stops (or an error is raised) are cancelled.
    """
    pending: collections.deque = collections.deque()
    try:
        for item in items:
            pending.append(submit(item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


class SerialMapper(Mapper):
    """Runs everything in this process."""

    name = "serial"

    def imap(self, fn, items, *, window=None):
        for item in items:
            yield fn(item)


class ProcessMapper(Mapper):
    """Local worker processes (concurrent.futures), results in order, bounded in-flight tasks."""

    name = "processes"

    def __init__(self, processes: int | None = None, start_method: str = "forkserver"):
        import concurrent.futures as cf
        import multiprocessing as mp

        self.n_workers = processes or default_processes()
        ctx = mp.get_context(start_method)
        self._pool = cf.ProcessPoolExecutor(max_workers=self.n_workers, mp_context=ctx,
                                            initializer=_worker_signals)
        _quiet_broken_pool_race()

    def imap(self, fn, items, *, window=None):
        return _windowed(lambda item: self._pool.submit(fn, item), items,
                         window or 2 * self.n_workers)

    def close(self):
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        except Exception:  # noqa: BLE001 -- a pool whose workers were killed is closed anyway
            pass


def _quiet_broken_pool_race() -> None:
    """Python 3.11's executor manager thread, marking the futures of a pool whose workers were
    killed (Ctrl-C, SIGTERM) as failed, raises ``InvalidStateError`` on one that was just
    cancelled and prints that traceback after primo's one-line message (a CPython race, fixed
    in later versions). Ignore exactly that exception from exactly that thread."""
    import threading
    from concurrent.futures import InvalidStateError, process

    previous = threading.excepthook
    if getattr(previous, "_primo_quiet", False):
        return

    def hook(args):
        if (isinstance(args.exc_value, InvalidStateError)
                and isinstance(args.thread, process._ExecutorManagerThread)):
            return
        previous(args)

    hook._primo_quiet = True
    threading.excepthook = hook


def _worker_signals() -> None:
    """In a worker: leave Ctrl-C (SIGINT, sent to the whole process group) to the main process,
    which cancels the work and closes the pool; a worker would only print a traceback."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


_ADDRESS = re.compile(r"(?:(tcp|tls|ws|wss|inproc|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[^:/\s\[\]]+)"
                      r"(?::(\d{1,5}))?/?")


def _check_scheduler_address(address: str) -> None:
    """Refuse at once what is not a scheduler address (``tcp://HOST:PORT``) or names a host that
    does not resolve (Dask would retry until its timeout, then print a traceback)."""
    import socket

    m = _ADDRESS.fullmatch(str(address).strip())
    hint = "give the scheduler's address as tcp://HOST:PORT, e.g. tcp://10.0.0.1:8786"
    if not m or (m.group(1) is None and m.group(3) is None):
        raise UsageError(f"{address!r} is not a scheduler address", option="scheduler",
                         hint=hint)
    proto, host = m.group(1) or "tcp", m.group(2).strip("[]")
    if proto in ("tcp", "tls", "ws", "wss"):
        try:
            socket.getaddrinfo(host, None)
        except (socket.gaierror, UnicodeError) as e:
            raise UsageError(f"cannot reach the Dask scheduler at {address}: host {host!r} is "
                             f"unknown ({e.strerror if hasattr(e, 'strerror') else e})",
                             hint=hint) from None


class DaskMapper(Mapper):
    """Tasks on an existing Dask.distributed cluster, given by its scheduler address."""

    name = "dask"

    def __init__(self, scheduler: str, timeout: float = 30):
        try:
            from distributed import Client
        except ImportError:
            raise MissingDependencyError(
                "a Dask scheduler needs Dask.distributed, which is not installed",
                hint="pip install 'dask[distributed]'") from None
        _check_scheduler_address(scheduler)
        try:
            self._client = Client(scheduler, timeout=timeout, set_as_default=False)
        except Exception as e:  # noqa: BLE001 -- whatever stops the connection, say so in one line
            raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({e})",
                             hint="start one with `dask scheduler` or check the address") from None
        info = self._client.scheduler_info()
        self.n_workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        self.scheduler = scheduler

    def imap(self, fn, items, *, window=None):
        return _windowed(lambda item: self._client.submit(fn, item, pure=False), items,
                         window or 2 * self.n_workers)

    def close(self):
        self._client.close()

    def describe(self):
        return f"dask at {self.scheduler} ({self.n_workers} threads)"


def get_mapper(processes: int | None = None, scheduler: str | None = None) -> Mapper:
    """The mapper for ``--processes N`` / ``--scheduler ADDRESS``.

    ``scheduler`` wins over ``processes``; ``processes=None`` means all usable CPUs; ``processes=1``
    or a single-CPU machine gives the serial mapper (no worker start-up cost).
    """
    if scheduler:
        return DaskMapper(scheduler)
    if processes is not None and processes < 1:
        raise UsageError(f"processes must be at least 1, got {processes}", option="processes")
    n = processes or default_processes()
    if n == 1:
        return SerialMapper()
    return ProcessMapper(n)
