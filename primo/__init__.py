"""primo: content-based similarity search in DNA data storage.

The package follows the pipeline of Bee et al. (papers 001/002): image features are encoded as 80-nt
DNA feature regions by a learned encoder, stored as an oligo pool with Reed-Solomon barcodes, queried
with biotinylated probes, and read back from sequencing reads.

``import primo`` is the front door for Python users: one function per step of the pipeline
(:mod:`primo.api`), each returning a typed result, imported lazily so that ``import primo`` stays
light and TensorFlow loads only when a step needs it::

    primo.extract    primo.load_features    primo.train       primo.load_model
    primo.encode_db  primo.query            primo.analyze     primo.simulate
    primo.run_benchmark  primo.count_reads  primo.TrainSettings

>>> import primo
>>> sorted(set(primo.__all__) - set(dir(primo)))
[]
>>> primo.count_reads.__module__
'primo.reads.counting'
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# TensorFlow's C++ start-up lines (oneDNN, absl) silenced wherever it is first imported
from . import _tensorflow  # noqa: E402

_tensorflow.install()

# name -> module that defines it; loaded on first use (module __getattr__, PEP 562)
_LAZY = {
    **{name: "primo.api" for name in (
        "extract", "load_features", "train", "load_model", "encode_db", "query", "analyze",
        "simulate", "run_benchmark", "AnalyzeResult", "SimulationResult", "BenchmarkSummary",
        "example", "Example")},
    "count_reads": "primo.reads.counting",
    "ReadCounts": "primo.reads.counts",
    "TrainSettings": "primo.training.settings",
    "TrainResult": "primo.training.settings",
    "ExtractResult": "primo.features.extract",
    "BuildResult": "primo.oligos.pool",
    "ProbeResult": "primo.workflows.query",
    "ExperimentConfig": "primo.workflows.experiment",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'primo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
