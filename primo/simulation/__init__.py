"""The laboratory in silico: capture models (competition for a limiting probe, the anneal) and the
wet-lab step. The binding thermodynamics they need are in :mod:`primo.thermo`.

* :mod:`primo.simulation.capture` — one probe against N targets: independent, equilibrium and
  anneal capture models, and the protocol they simulate.
* :mod:`primo.simulation.cascade` — which documents are simulated, imputation, capture per query.
* :mod:`primo.simulation.wetlab` — the wet-lab step: captured yields -> read counts (and reads).
* :mod:`primo.simulation.search` — the database as the lab has it, predicted yields, and one
  query's capture: :func:`query_ramp_energies` (the binding energies along the protocol's ramp
  for the documents the cascade simulates, computed once per query) and
  :func:`capture_from_ramp` (a capture under any protocol from them).
"""

from .search import capture_from_ramp, pool_concentrations, protocol_simulator, query_ramp_energies

__all__ = ["query_ramp_energies", "capture_from_ramp", "protocol_simulator", "pool_concentrations"]
