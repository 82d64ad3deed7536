"""The simulator gives the same numbers serially, in local processes and on a Dask cluster."""

import numpy as np
import pytest

from primo.parallel import SerialMapper, get_mapper
from primo.thermo import Simulator, mutate


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(21)
    targets = ["".join(rng.choice(list("ACGT"), 80)) for _ in range(4)]
    tt, qq = [], []
    for t in targets:
        for f in (0.0, 0.4, 0.5, 0.75):
            tt.append(t)
            qq.append(mutate(t, f, rng))
    return tt, qq


@pytest.fixture(scope="module")
def serial(pairs):
    return Simulator().free_energies(*pairs, mapper=SerialMapper())


def test_two_local_processes_match_serial(pairs, serial):
    with get_mapper(processes=2) as m:
        # chunks of 3 pairs: work really is split between the two workers
        g = Simulator().free_energies(*pairs, mapper=m, chunksize=3)
    np.testing.assert_array_equal(g, serial)


@pytest.mark.slow
def test_dask_local_cluster_matches_serial(pairs, serial):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        with get_mapper(scheduler=cluster.scheduler_address) as m:
            sim = Simulator()
            g = sim.free_energies(*pairs, mapper=m, chunksize=3)
            y = sim.yields(*pairs, mapper=m)  # second call: strands come from the cache
    np.testing.assert_array_equal(g, serial)
    np.testing.assert_array_equal(y, Simulator().solve(serial).yield_.clip(0, 1))


def test_yields_independent_of_chunking_and_order(pairs, serial):
    tt, qq = pairs
    sim = Simulator()
    y1 = sim.yields(tt, qq, chunksize=1)
    y2 = Simulator().yields(tt[::-1], qq[::-1], chunksize=16)[::-1]
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1, np.clip(sim.solve(serial).yield_, 0, 1))


def test_naive_computation_in_processes_matches(pairs, serial):
    with get_mapper(processes=2) as m:
        g = Simulator(cache_strands=False).free_energies(*pairs, mapper=m, chunksize=4)
    np.testing.assert_array_equal(g, serial)
