"""The interface every ANN peer follows: :class:`Peer` (build, then sweep its search parameters),
each parameter setting measured as a :class:`SweepPoint`, and :func:`count_found`.

How each peer counts its candidate set is described in :mod:`primo.benchmark.peers` (every
name here is importable from there).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Iterator

import numpy as np

from ..arrays import unique
from ..errors import UsageError

__all__ = ["SweepPoint", "Peer", "count_found"]


@dataclasses.dataclass
class SweepPoint:
    """One search-parameter setting of one peer, measured on every query.

    Attributes
    ----------
    params : str
        The index and search parameters, ``key=value`` separated by spaces.
    n_retrieved : numpy.ndarray
        Candidate-set size per query (int64, shape (M,)).
    n_found : numpy.ndarray
        True k nearest neighbors counted per query (int64, shape (M,)).
    """

    params: str
    n_retrieved: np.ndarray
    n_found: np.ndarray


def count_found(candidates, nn_row, mark: np.ndarray) -> int:
    """Number of the true neighbors ``nn_row`` among ``candidates``.

    ``mark`` is a reusable boolean array of the database size, all False on entry and on return.
    """
    mark[nn_row] = True
    try:
        c = np.asarray(candidates, dtype=np.int64)
        c = c[c >= 0]
        return int(np.count_nonzero(mark[unique(c)])) if len(c) else 0
    finally:
        mark[nn_row] = False


def _seq(v) -> tuple:
    """An option given as one value or several, as a tuple of ints."""
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        v = [v]
    try:
        return tuple(int(x) for x in v)
    except (TypeError, ValueError):
        raise UsageError(f"peer option value {', '.join(map(str, v))} is not a whole number "
                         "(or a comma-separated list of them)",
                         option="peer_options",
                         hint="e.g. hnsw.ef_search=100,200,400") from None


def _params(**kw) -> str:
    return " ".join(f"{k}={v}" for k, v in kw.items())


class Peer(abc.ABC):
    """Base class of an instrumented ANN peer.

    Subclasses set :attr:`name`, :attr:`requires` (modules that must import) and
    :attr:`how_counted`, and implement :meth:`build` and :meth:`sweep`.
    """

    name = "peer"
    requires: tuple = ()
    how_counted = ""

    def __init__(self, seed: int = 0, threads: int | None = None):
        self.seed = int(seed)
        self.threads = threads

    @abc.abstractmethod
    def build(self, X: np.ndarray) -> None:
        """Build the index over the database matrix ``X`` (N x D float32)."""

    @abc.abstractmethod
    def sweep(self, Q: np.ndarray, nn: np.ndarray, k: int) -> Iterator[SweepPoint]:
        """Yield one :class:`SweepPoint` per search parameter, for queries ``Q`` (M x D).

        ``nn`` (M x k, int64) are the exact nearest-neighbor row numbers of each query.
        """

    def describe(self) -> str:
        return self.name


def _geometric(lo: int, hi: int, factor: float = 2.0) -> list[int]:
    out, v = [], float(max(1, lo))
    while v < hi:
        out.append(int(round(v)))
        v *= factor
    out.append(int(hi))
    return sorted(set(out))
