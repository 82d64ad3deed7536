from ..evaluation.neighbors import map_at_k, squared_distances  # noqa: F401  moved (a shim for primo/training/data.py and scripts/capture_experiment.py)
