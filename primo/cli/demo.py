"""``primo demo -o OUT/``: the whole pipeline on the bundled data, offline (see primo.workflows.demo)."""

from __future__ import annotations

import click

from ._options import (debug_option, mapper_from_options, overwrite_option, parallel_options,
                       seed_option)

__all__ = ["cli"]


@click.command("demo")
@click.option("--output", "-o", default="demo-out", show_default=True, type=click.Path(),
              help="Output directory (written when the demo is complete).")
@click.option("--quick", is_flag=True, help="A much smaller run (a minute or two).")
@seed_option(0, help="Random seed of the whole run.")
@parallel_options
@overwrite_option("demo")
@debug_option
def cli(output, quick, seed, processes, scheduler):
    """Extract -> train -> encode-db -> query -> simulate -> analyze -> benchmark on bundled data."""
    from ..workflows.demo import DemoSettings, run_demo

    s = DemoSettings.quick() if quick else DemoSettings()
    s.seed = seed
    with mapper_from_options(processes, scheduler) as mapper:
        report = run_demo(output, s, mapper=mapper, log=lambda m: click.echo(m, err=True))
    return report
