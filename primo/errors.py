"""Exceptions that the command line turns into one-line messages.

Every error a user can cause is a :class:`PrimoError`. Its message is one line that says what is
wrong, where (file, line, record) and how to fix it. The command line prints it on stderr and exits
with :attr:`PrimoError.exit_code`: 1 for bad data, 2 for bad usage. Anything else is a bug and shows
a traceback.

Messages speak library terms: an error about an argument names the argument (``k``,
``batch_size``) and sets ``option`` to its name; the command line then adds the option that set it
(``--k``), so a library user never reads of flags they did not pass.
"""

from __future__ import annotations

__all__ = ["PrimoError", "DataError", "UsageError", "MissingDependencyError", "shorten"]


def shorten(text, limit: int = 40) -> str:
    """Return ``repr``-like short form of a piece of bad input, for error messages."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


class PrimoError(Exception):
    """Base class of errors reported to the user as one line."""

    exit_code = 1

    def __init__(self, message: str, *, path=None, line=None, record=None, hint: str | None = None,
                 option: str | None = None):
        self.raw_message = message
        self.option = option
        self.path = None if path is None else str(path)
        self.line = line
        self.record = record
        self.hint = hint
        super().__init__(self._format())

    def __reduce__(self):
        # keep the fields when the error crosses a process boundary (worker -> main)
        return (_rebuild, (type(self), self.raw_message, self.path, self.line, self.record,
                           self.hint, self.option))

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.record is not None:
            where.append(f"record {self.record}")
        text = (": ".join([", ".join(where), self.raw_message]) if where else self.raw_message)
        if self.hint:
            text = f"{text} ({self.hint})" if not text.endswith(")") else f"{text}; {self.hint}"
        # one line, always
        return " ".join(text.split("\n"))


class DataError(PrimoError, ValueError):
    """The input data is wrong (exit code 1)."""

    exit_code = 1


class UsageError(PrimoError, ValueError):
    """The command was used wrongly: bad option values, missing files (exit code 2)."""

    exit_code = 2


class MissingDependencyError(UsageError, ImportError):
    """An optional dependency (NUPACK, TensorFlow, faiss, ...) is not installed."""

    exit_code = 2


def _rebuild(cls, message, path, line, record, hint, option=None):
    return cls(message, path=path, line=line, record=record, hint=hint, option=option)
