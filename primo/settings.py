"""Settings as data: dataclass fields that carry their help text, bounds or choices and their
command-line spelling, checked in one place (library terms, ``option=`` the field's name).

The settings of each step (:class:`primo.training.settings.TrainSettings`,
:class:`primo.simulation.capture.Protocol`, ...) declare their fields with :func:`setting`; their
``check`` is :func:`check_settings` plus the rules between fields; the command line generates
its options from :func:`cli_fields` (:mod:`primo.cli._settings`), so that no default, bound or
help text is written twice.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .errors import UsageError

__all__ = ["setting", "check_field", "check_settings", "cli_fields", "field_kind"]


def setting(default, help: str, *, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False,
         choices=None, optional: bool = False, cli: bool = True, **more):
    """A settings field with what the command line and the settings' ``check`` need: its
    help text, bounds (``lo``/``hi``, open or closed) or ``choices``, whether None is allowed
    (``optional``) and how it appears on the command line (``cli=False``: library only;
    ``cli_name``, ``flag``, ``metavar``, ``default_text``, ``cli_choices``, ``auto``: the value
    "auto" is allowed too; ``aliases``: old spellings of a renamed option, kept one release,
    hidden and with a deprecation note, as :func:`primo.cli._options.renamed_option`)."""
    meta = {"help": help, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
            "choices": None if choices is None else tuple(choices), "optional": optional,
            "cli": cli, **more}
    return dataclasses.field(default=default, metadata=meta)


def field_kind(f: dataclasses.Field) -> str:
    """"int", "float", "bool" or "str": what a field holds (from its annotation)."""
    t = str(f.type)
    for kind in ("bool", "float", "int"):
        if kind in t:
            return kind
    return "str"


def _bounds_text(meta: dict, kind: str) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    what = "a whole number" if kind == "int" else "a finite number"
    if lo is not None and hi is not None:
        if kind == "int":
            return f"{what} from {lo:,} to {hi:,}"
        return (f"{what} in {'(' if meta['lo_open'] else '['}{lo:g}, {hi:g}"
                f"{')' if meta['hi_open'] else ']'}")
    if lo is not None:
        return f"{what} {'above' if meta['lo_open'] else 'of at least'} {lo:g}"
    if hi is not None:
        return f"{what} {'below' if meta['hi_open'] else 'of at most'} {hi:g}"
    return what


def check_field(f: dataclasses.Field, v) -> None:
    meta, name = f.metadata, f.name
    if meta.get("label"):
        name = f"{name} ({meta['label']})"
    if not meta:
        return
    if v is None:
        if meta.get("optional"):
            return
        raise UsageError(f"{name} must be given", option=f.name)
    if meta.get("auto") and v == "auto":
        return
    kind = field_kind(f)
    if meta.get("choices") is not None:
        ok = v in meta["choices"] or (isinstance(v, str) and v.lower() in meta["choices"])
        if not ok:
            shown = ", ".join(repr(c) if c == "" else c for c in meta["choices"])
            raise UsageError(f"{name} {v!r} is not one of {shown}", option=f.name)
        return
    if kind == "bool":
        if not isinstance(v, (bool, np.bool_)):
            raise UsageError(f"{name} must be true or false, got {v!r}", option=f.name)
        return
    if kind == "str":
        return
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise UsageError(f"{name} must be {_bounds_text(meta, kind)}, got {v!r}", option=f.name)
    if kind == "int" and not float(v).is_integer():
        raise UsageError(f"{name} must be {_bounds_text(meta, kind)}, got {v!r}", option=f.name)
    v = float(v)
    lo, hi = meta.get("lo"), meta.get("hi")
    bad = (not math.isfinite(v)
           or (lo is not None and (v <= lo if meta["lo_open"] else v < lo))
           or (hi is not None and (v >= hi if meta["hi_open"] else v > hi)))
    if bad:
        raise UsageError(f"{name} must be {_bounds_text(meta, kind)}, got {v:g}", option=f.name)


def cli_fields(cls) -> list:
    """The fields of the settings dataclass ``cls`` that the command line offers, in order:
    ``(field, metadata)``; the command line's options are generated from them
    (:mod:`primo.cli._settings`)."""
    return [(f, f.metadata) for f in dataclasses.fields(cls) if f.metadata.get("cli", False)]


def check_settings(obj) -> None:
    """Check every field of the settings dataclass instance ``obj`` against its metadata."""
    for f in dataclasses.fields(obj):
        check_field(f, getattr(obj, f.name))
