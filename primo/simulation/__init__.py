"""The laboratory in silico: capture models (competition for a limiting probe, the anneal) and the
binding thermodynamics they need.

* :mod:`primo.simulation.thermo` — binding free energies and their temperature dependence.
* :mod:`primo.simulation.capture` — one probe against N targets: independent, equilibrium and
  anneal capture models, and the protocol they simulate.
* :mod:`primo.simulation.cascade` — which documents are simulated, imputation, capture per query.
* :mod:`primo.simulation.wetlab` — the wet-lab step: captured yields -> read counts (and reads).
"""
