"""TensorFlow's start-up chatter, silenced in one place (for the library and the command line).

Importing TensorFlow prints C++ log lines on file descriptor 2 (``WARNING: All log messages before
absl::InitializeLog() ...``, ``oneDNN custom operations are on ...``, CPU-feature notes). Since
TensorFlow 2.21 these come before absl's log is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` no
longer stops them. A user reads them as a broken install, and they bury primo's own messages.

:func:`install` (called once by ``primo/__init__.py``) puts a finder on ``sys.meta_path`` that
runs the first ``import tensorflow`` -- whoever asks for it: ``import keras``, primo's modules, a
user's script after ``import primo`` -- with fd 2 sent to /dev/null and ``TF_CPP_MIN_LOG_LEVEL=2``
for TensorFlow's later C++ messages (warnings and errors still show) and TensorFlow's Python
logger at ERROR. Exceptions raised by the import still propagate. Setting
``TF_CPP_MIN_LOG_LEVEL=0`` in the environment keeps every line (for debugging an install).

The CUDA line (``failed call to cuInit``) is not silenced here: it came from the ``tensorflow``
(GPU) wheel that ``tensorflow-hub`` -> ``tf-keras`` pulled in beside ``tensorflow-cpu``; primo no
longer depends on them (pyproject.toml).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import sys

__all__ = ["install", "import_tensorflow", "quiet"]


def quiet() -> bool:
    """Whether TensorFlow's start-up lines are silenced (unless ``TF_CPP_MIN_LOG_LEVEL=0``)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "") != "0"


def _prepare() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _after() -> None:
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


class _QuietLoader(importlib.abc.Loader):
    """Wraps TensorFlow's own loader: its module runs with fd 2 silenced."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        from .progress import silenced_stderr

        _prepare()
        if quiet():
            with silenced_stderr():
                self._loader.exec_module(module)
        else:
            self._loader.exec_module(module)
        _after()

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self._loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once (with the other finders), wrapping its loader."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        _uninstall()
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietFinder)]


def install() -> None:
    """Make the first ``import tensorflow`` in this process quiet (idempotent)."""
    _prepare()
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())


def import_tensorflow():
    """``import tensorflow``, quietly (see the module docstring); None if it is not installed or
    fails to import (the caller reports that in its own words)."""
    install()
    try:
        import tensorflow
    except Exception:
        return None
    _after()
    return tensorflow
