from ..simulation.wetlab import *  # noqa: F401,F403  moved (a shim for scripts/capture_experiment.py)
