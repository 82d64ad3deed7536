"""The compiled common case of ``primo analyze`` (``_fastreads.c``), loaded on first use."""

from __future__ import annotations

import os

_FAST = False


def fastreads():
    """The compiled kernel module, or None (not built, or ``PRIMO_NO_KERNEL=1``)."""
    global _FAST
    if _FAST is False:
        if os.environ.get("PRIMO_NO_KERNEL", "") not in ("", "0"):
            _FAST = None
        else:
            try:
                from . import _fastreads as mod
            except ImportError:
                mod = None
            _FAST = mod
    return _FAST
