"""Options shared by several subcommands."""

from __future__ import annotations

import click

from ..parallel import get_mapper

__all__ = ["parallel_options", "mapper_from_options", "debug_option"]


def parallel_options(f):
    """``--processes N`` and ``--scheduler ADDRESS`` (the pluggable map)."""
    f = click.option("--scheduler", metavar="ADDRESS", default=None, envvar="PRIMO_SCHEDULER",
                     help="Run the work on an existing Dask.distributed cluster "
                          "(e.g. tcp://10.0.0.1:8786) instead of local processes.")(f)
    f = click.option("--processes", "-j", type=click.IntRange(min=1), default=None,
                     help="Local worker processes (default: all usable CPUs; 1 = serial).")(f)
    return f


def mapper_from_options(processes, scheduler):
    return get_mapper(processes=processes, scheduler=scheduler)


def debug_option(f):
    """Accept ``--debug`` after the subcommand too (it is handled in primo.cli.main)."""
    return click.option("--debug", is_flag=True, hidden=True, expose_value=False)(f)
