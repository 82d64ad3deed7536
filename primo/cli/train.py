"""``primo train``: learn the feature -> DNA encoder against the yield predictor."""

from __future__ import annotations

import math

import click

from ..training.settings import field_options
from ._settings import given_settings, settings_options
from ._options import (debug_option, loop_enthalpies_option, stacks_option, mapper_from_options,
                       overwrite_option, parallel_options, skip_bad_rows_option)


class _Threshold(click.ParamType):
    name = "DISTANCE|auto"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, float):
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        try:
            v = float(text)
        except ValueError:
            self.fail(f"{value!r} is neither a distance nor 'auto'", param, ctx)
        if not math.isfinite(v) or v <= 0:
            self.fail(f"{value!r} must be a positive distance", param, ctx)
        return v


_FIELDS = field_options()


@click.command("train")
@click.option("--features", "-f", "features", required=True, metavar="F.h5",
              help="Training feature store (written by `primo extract`).")
@click.option("--output", "-o", "output", required=True, metavar="MODEL/",
              help="Model directory to write (encoder.keras, predictor.keras, card.json, ...).")
@settings_options(_FIELDS, types={"threshold": _Threshold()})
@loop_enthalpies_option(None, help="ViennaRNA's DNA loop enthalpies for the simulator: clipped "
                        "(default: no loop gains entropy on forming) or shipped (the file as "
                        "ViennaRNA ships it; models trained before the option).")
@stacks_option(help="ViennaRNA's DNA Watson-Crick stacks for the simulator: vienna (the file's) "
               "or santalucia (SantaLucia & Hicks 2004, as NUPACK's dna04). Recorded in the card.")
@click.option("--paper", is_flag=True,
              help="The paper's method: its global similarity threshold (--threshold, 75 "
                   "unless given), a simulator at the hybridization temperature (--anneal-to), "
                   "its schedule (20 rounds of 1,000 steps, 5,000 seed pairs) and encoder "
                   "phase (soft one-hots, no hard negatives, weights or homopolymer term), with "
                   "the paper's objective and local-match predictor (the defaults).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run in MODEL/ (its settings are kept; --rounds may grow).")
@parallel_options
@overwrite_option("train", inputs=("features",), pass_overwrite=True, unless="resume",
                  check=False,
                  help="Replace an earlier model directory of `primo train` (kept until the new "
                       "model is complete, which is built beside it in .MODEL.primo-partial/; "
                       "never a directory holding other files, nor an input).")
@skip_bad_rows_option("train")
@debug_option
@click.pass_context
def cli(ctx, features, output, loop_enthalpies, stacks, paper, resume, overwrite, processes,
        scheduler, **values):
    """Train the feature -> DNA encoder and its yield predictor (alternating phases).

    Writes MODEL/ with encoder.keras, predictor.keras, card.json, metrics.csv (one row per round),
    TensorBoard logs, a checkpoint after every round (--resume) and yields.png (cf. paper Fig. 2D/E).
    """
    from ..training.settings import TrainSettings
    from ..training.trainer import train

    given = given_settings(ctx, _FIELDS, values)
    simulator = None
    if resume:
        # an old spelling (hidden) counts as its new one, which it marks as given
        ignored = [p.opts[0] for p in ctx.command.params
                   if p.name not in ("features", "output", "rounds", "resume", "processes",
                                     "scheduler", "debug")
                   and not getattr(p, "hidden", False)
                   and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
        if ignored:
            click.echo(f"primo train: note: --resume keeps the interrupted run's settings; ignoring "
                       f"{', '.join(ignored)}", err=True)
        settings = TrainSettings(rounds=given["rounds"]) if "rounds" in given else None
    else:
        from ..thermo.simulator import Simulator

        settings = TrainSettings.from_options(paper=paper, **given)
        settings.resolve_temperatures()
        simulator = Simulator(temperature=settings.train_temperature_c,
                              loop_enthalpies=loop_enthalpies or "clipped", stacks=stacks)

    def log(msg):
        click.echo(f"primo train: {msg}", err=True)

    with mapper_from_options(processes, scheduler) as mapper:
        result = train(features, output, settings, simulator=simulator, mapper=mapper,
                       resume=resume, overwrite=overwrite, log=log)
    m = result.card.get("metrics", {})
    click.echo(f"{result.path}\trounds={result.rounds_done}\tthreshold={result.card['threshold']['value']:.6g}"
               f"\tsimilar>=0.5={_pct(m.get('sim_pos_similar'))}"
               f"\tdissimilar>=0.5={_pct(m.get('sim_pos_dissimilar'))}")
    return result


def _pct(v):
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"
