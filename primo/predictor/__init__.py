"""The differentiable yield predictors (Keras): :mod:`primo.predictor.model` and the fixed-query
predictor of the simulation cascade.

The thermodynamic simulator that supervises them moved to :mod:`primo.thermo`; the names below
are re-exported from there for one release so that ``from primo.predictor import Simulator`` keeps
working. New code imports them from :mod:`primo.thermo`.
"""

from ..thermo.simulator import (Simulator, available_backends, get_simulator, mutate,
                                query_strand, simulate_csv, target_strand)

__all__ = ["Simulator", "available_backends", "get_simulator", "mutate", "query_strand",
           "simulate_csv", "target_strand"]
