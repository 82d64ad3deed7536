"""Old import paths kept for scripts that other work in progress still uses (to be removed).

Everything here moved: reads to :mod:`primo.reads`; recall curves, thresholds and plots to
:mod:`primo.evaluation`; the ANN peers and the benchmark to :mod:`primo.benchmark`; the wet-lab
step to :mod:`primo.simulation.wetlab`.
"""
