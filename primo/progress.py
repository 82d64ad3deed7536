"""Progress bars for long work (tqdm on stderr; silent when stderr is not a terminal or with --quiet)."""

from __future__ import annotations

import os
import sys

__all__ = ["progress", "set_quiet", "silenced_stderr"]

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


class silenced_stderr:
    """Context manager: file descriptor 2 goes to /dev/null (for C/C++ libraries that print
    warnings of their own there, e.g. TensorFlow's start-up or faiss' k-means sample-size notes).

    Python-level ``sys.stderr`` writes are flushed first; exceptions still propagate normally.
    """

    def __enter__(self):
        sys.stderr.flush()
        try:
            self._saved = os.dup(2)
        except OSError:  # pragma: no cover - no stderr
            self._saved = None
            return self
        self._null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self._null, 2)
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            os.close(self._null)
        return False
