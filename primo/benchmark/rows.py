"""One row of ``benchmarks.csv``: an algorithm's candidate set for one query and one parameter
setting (the layout is described in :mod:`primo.benchmark.core`; every name here is importable from
there).
"""

from __future__ import annotations

import dataclasses

__all__ = ["BENCHMARK_COLUMNS", "BenchmarkRow"]

BENCHMARK_COLUMNS = ["Algorithm", "Query ID", "Number Retrieved", "Database Size",
                     "# of Nearest Neighbors", "Nearest Neighbor Recall", "Algorithm Parameters"]


@dataclasses.dataclass
class BenchmarkRow:
    """One row of ``benchmarks.csv`` (``n_found`` is the recall *count*)."""

    algorithm: str
    query_id: str
    n_retrieved: float
    db_size: int
    k: int
    n_found: float
    params: str

    def as_csv(self) -> list:
        return [self.algorithm, self.query_id, _num(self.n_retrieved), str(int(self.db_size)),
                str(int(self.k)), _num(self.n_found), self.params]


def _num(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(round(v, 6))
