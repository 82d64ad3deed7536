from ..benchmark.core import *  # noqa: F401,F403  moved (a shim for scripts/capture_experiment.py)
from ..evaluation.neighbors import exact_knn  # noqa: F401  moved
from ..evaluation.recall import pareto_frontier, proportion_at_recall  # noqa: F401  moved
