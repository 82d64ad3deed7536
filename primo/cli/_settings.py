"""Command-line options generated from a settings dataclass (:mod:`primo.training.settings`).

Each field that the command line offers carries its help text, bounds or choices and display in
its metadata; the options are built from them here, so that the command modules hold no default,
no bound and no help of their own for those settings. Every option defaults to "not given"
(None): a command passes only the options given on the command line to the settings' rules
(e.g. :meth:`primo.training.settings.TrainSettings.from_options`), and the dataclass's defaults
apply to the rest.
"""

from __future__ import annotations

import functools
import math

import click

__all__ = ["FiniteFloatRange", "renamed_option", "settings_options", "given_settings",
           "library_default"]


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that refuses NaN and infinities (click's own lets NaN through: every
    comparison with NaN is false). ``primo.cli`` gives every float option of every command this
    type (:func:`primo.cli._options.finite_floats`), so no command can take NaN or inf. Without
    bounds it shows as a plain ``FLOAT`` with no range in ``--help`` (click's own would print
    ``x<=None``)."""

    def __init__(self, min=None, max=None, min_open=False, max_open=False, clamp=False):
        super().__init__(min, max, min_open=min_open, max_open=max_open, clamp=clamp)
        if min is None and max is None:
            self.name = "float"

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:
            return ""
        return super()._describe_range()

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v


def renamed_option(old: str, new: str, name: str, *, is_flag: bool = False, **kw):
    """``old`` (hidden) sets the parameter ``name`` of the option now spelled ``new``, with a
    deprecation note on stderr once the command has run (an error stays one line); it goes in
    the next release."""
    hidden = "renamed_" + old.lstrip("-").replace("-", "_")

    def deco(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            value = kwargs.pop(hidden)
            # given, whatever the value (0 == False: ``value not in (None, False)`` misses it)
            used = (click.get_current_context().get_parameter_source(hidden)
                    == click.core.ParameterSource.COMMANDLINE)
            if used:
                kwargs[name] = value
                # the new spelling counts as given (commands that pass on only the options
                # given, e.g. ``given_settings``, see it)
                click.get_current_context().set_parameter_source(
                    name, click.core.ParameterSource.COMMANDLINE)
            result = f(*args, **kwargs)
            if used:
                click.echo(f"primo: warning: {old} is deprecated and goes in the next release; "
                           f"use {new}", err=True)
            return result

        opts = dict(kw, is_flag=True) if is_flag else dict(kw, default=None)
        return click.option(old, hidden, hidden=True, **opts)(wrapper)

    return deco


def _param_type(f, meta, kind: str):
    if meta.get("cli_choices"):
        return click.Choice(list(meta["cli_choices"]), case_sensitive=False)
    if meta.get("choices") is not None:
        return click.Choice([c for c in meta["choices"] if c != ""], case_sensitive=False)
    lo, hi = meta.get("lo"), meta.get("hi")
    if kind == "int":
        return click.IntRange(lo, hi, min_open=meta.get("lo_open", False),
                              max_open=meta.get("hi_open", False))
    if kind == "float":
        return FiniteFloatRange(lo, hi, min_open=meta.get("lo_open", False),
                                max_open=meta.get("hi_open", False))
    return click.STRING


def _default_text(f, meta) -> str | None:
    """What ``--help`` shows as the default: ``default_text`` (a description), else
    ``default_shown`` (the value as the command line spells it, e.g. ``16M``), else the value."""
    if meta.get("default_text"):
        return meta["default_text"]
    if meta.get("default_shown"):
        return meta["default_shown"]
    if f.default is None:
        return None
    if isinstance(f.default, tuple):
        return ", ".join(map(str, f.default))
    return f"{f.default:g}" if isinstance(f.default, float) else str(f.default)


class _SettingOption(click.Option):
    """An option generated from a settings field: a default shown from the field's value reads
    ``[default: 0.05]``, not click's ``[default: (0.05)]`` for a text (descriptions given as
    ``default_text`` keep the parentheses)."""

    def __init__(self, *args, value_text: bool = False, **kw):
        super().__init__(*args, **kw)
        self._value_text = value_text

    def get_help_extra(self, ctx):   # click >= 8.2 (older versions keep the parentheses)
        extra = super().get_help_extra(ctx)
        if self._value_text and isinstance(self.show_default, str) and "default" in extra:
            extra["default"] = self.show_default
        return extra


def settings_options(fields, *, types: dict | None = None):
    """A decorator adding one option per ``(field, metadata)`` of ``fields``
    (:func:`primo.settings.cli_fields`); ``types`` overrides the parameter type of some fields
    (e.g. a threshold that also takes "auto", a size with a K/M suffix).

    From the metadata: ``cli_name`` (default ``--field-name``), ``short`` (a second spelling
    shown with it, ``-k``), ``aliases`` (old spellings: hidden, with a deprecation note),
    ``flag`` (``--on/--off``, None when neither is given, or a lone ``--on``), ``multiple``
    (repeatable: a tuple), ``metavar``, and the default shown: ``default_text`` (a description),
    ``default_shown`` (the value as typed, ``16M``) or the field's default."""
    from ..settings import field_kind

    types = types or {}

    def decorate(fn):
        for f, meta in reversed(fields):
            kind = field_kind(f)
            shown = _default_text(f, meta)
            extra = {"cls": _SettingOption}
            if shown is not None:
                extra.update(show_default=shown, value_text=not meta.get("default_text"))
            if meta.get("flag"):
                # ``--on/--off`` (None when neither is given), or a lone ``--on``
                lone = "/" not in meta["flag"]
                if lone and not meta.get("default_text"):
                    extra = {"cls": _SettingOption}
                opt = click.option(meta["flag"], f.name, default=None, help=meta["help"],
                                   **({"is_flag": True} if lone else {}), **extra)
            else:
                name = meta.get("cli_name") or "--" + f.name.replace("_", "-")
                # ``short``: a second spelling shown with it (``-k``)
                decls = [meta["short"], name] if meta.get("short") else [name]
                ptype = types.get(f.name) or _param_type(f, meta, kind)
                opt = click.option(*decls, f.name, default=None, type=ptype,
                                   multiple=bool(meta.get("multiple")),
                                   metavar=meta.get("metavar"), help=meta["help"], **extra)
                # ``aliases``: old spellings, kept one release (hidden, with a deprecation note)
                for old in meta.get("aliases", ()):
                    fn = renamed_option(old, "/".join(decls), f.name, metavar=meta.get("metavar"),
                                        type=ptype)(fn)
            fn = opt(fn)
        return fn

    return decorate


def given_settings(ctx: click.Context, fields, values: dict) -> dict:
    """The settings among ``fields`` given on the command line, as field values (choices the
    command line spells differently mapped back)."""
    out = {}
    for f, meta in fields:
        if ctx.get_parameter_source(f.name) != click.core.ParameterSource.COMMANDLINE:
            continue
        v = values[f.name]
        if meta.get("cli_choices") and isinstance(v, str):
            v = meta["cli_choices"][v.lower()]
        elif meta.get("choices") is not None and isinstance(v, str):
            v = v.lower()
        out[f.name] = v
    return out


def library_default(func, name: str):
    """The default of parameter ``name`` of ``func`` (a function, or a class: its ``__init__``,
    a dataclass's field), so that an option whose default is the library's takes it from there
    instead of writing it again (``default=library_default(encode_database, "batch_size")``).
    ``func`` must come from a module that imports no TensorFlow: the command modules are
    imported to parse the command line."""
    import inspect

    p = inspect.signature(func).parameters[name]
    if p.default is inspect.Parameter.empty:
        raise TypeError(f"{getattr(func, '__qualname__', func)}() has no default for {name!r}")
    return p.default
