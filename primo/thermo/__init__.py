"""The physics: strand and duplex free energies and what follows from them.

* :mod:`primo.thermo.simulator` — the thermodynamic simulator (:class:`Simulator`): ensemble free
  energies of strands and pairs from a backend, yields from the mass-action equilibrium.
* :mod:`primo.thermo.vienna` — the ViennaRNA backend (DNA parameters, the loop-enthalpy cap).
* :mod:`primo.thermo.nupack` — the NUPACK 4 backend, used when ``import nupack`` works.
* :mod:`primo.thermo.equilibrium` — the two-strand mass-action equilibrium, solved in log space.
* :mod:`primo.thermo.store` — free energies kept on disk across runs (``--energy-cache``), keyed
  by the physics that computed them.
* :mod:`primo.thermo.ramp` — binding free energies and their temperature dependence along the
  anneal (node temperatures, interpolation).

Nothing here imports TensorFlow, and nothing here imports from the packages above it
(``predictor``, ``simulation``, ``training``, ``workflows``).
"""

from .simulator import (Simulator, available_backends, get_simulator, mutate, query_strand,
                        simulate_csv, target_strand)

__all__ = ["Simulator", "available_backends", "get_simulator", "mutate", "query_strand",
           "simulate_csv", "target_strand"]
