"""The laboratory in silico: capture models (competition for a limiting probe, the anneal) and the
wet-lab step. The binding thermodynamics they need are in :mod:`primo.thermo`.

* :mod:`primo.simulation.capture` — one probe against N targets: independent, equilibrium and
  anneal capture models, and the protocol they simulate.
* :mod:`primo.simulation.cascade` — which documents are simulated, imputation, capture per query.
* :mod:`primo.simulation.wetlab` — the wet-lab step: captured yields -> read counts (and reads).
"""
