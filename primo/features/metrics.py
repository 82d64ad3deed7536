from ..evaluation.neighbors import average_precision_at_k, map_at_k, squared_distances  # noqa: F401  moved (a shim for primo/training/data.py and scripts/capture_experiment.py)
