"""Yield prediction: the thermodynamic simulator (here, TensorFlow-free) and the Keras predictor.

``primo.predictor`` only re-exports the simulator; the Keras yield predictor lives in
:mod:`primo.predictor.model` and is imported explicitly (it needs TensorFlow).
"""

from .simulator import (Simulator, available_backends, get_simulator, mutate, query_strand,
                        simulate_csv, target_strand)

__all__ = ["Simulator", "available_backends", "get_simulator", "mutate", "query_strand",
           "simulate_csv", "target_strand"]
