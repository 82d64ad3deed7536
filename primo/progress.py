"""Progress bars for long work (tqdm on stderr; silent when stderr is not a terminal or with --quiet)."""

from __future__ import annotations

import os
import sys

__all__ = ["progress", "set_quiet"]

_QUIET = os.environ.get("PRIMO_QUIET", "") not in ("", "0")


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = bool(quiet)


def progress(iterable=None, total=None, desc: str | None = None, unit: str = "it",
             disable: bool = False, **kw):
    """A tqdm bar, or a pass-through when quiet, not on a terminal, or ``disable``."""
    from tqdm.auto import tqdm

    disable = disable or _QUIET or not sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, file=sys.stderr,
                dynamic_ncols=True, unit_scale=True, **kw)
