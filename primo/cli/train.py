"""``primo train``: learn the feature -> DNA encoder against the yield predictor."""

from __future__ import annotations

import math

import click

from ..training.trainer import (DEFAULT_NEIGHBORS, DEFAULT_OBJECTIVE, DEFAULT_PREDICTOR,
                                DEFAULT_TRAIN_TEMPERATURE_C, NEIGHBORS_MAX_FRACTION)
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


@click.command("train")
@click.option("--features", "-f", "features", required=True, metavar="F.h5",
              help="Training feature store (written by `primo extract`).")
@click.option("--output", "-o", "output", required=True, metavar="MODEL/",
              help="Model directory to write (encoder.keras, predictor.keras, card.json, ...).")
@click.option("--threshold", type=_Threshold(), default="75",
              show_default="not used unless given, or 75 with --paper",
              help="The paper's global similarity threshold (Euclidean distance) instead of "
                   "--neighbors; 'auto' calibrates it as a quantile of the pairwise distances (75 "
                   "suits VGG16-FC2 features only).")
@click.option("--threshold-quantile", type=click.FloatRange(0, 0.5, min_open=True), default=0.01, show_default=True,
              help="With --threshold auto: the fraction of random pairs that count as similar.")
@click.option("--neighbors", type=click.IntRange(1, None), default=None, metavar="K",
              help=f"Similar = among each other's K nearest training documents, whatever the local "
                   f"density  [default: {DEFAULT_NEIGHBORS}, at most {NEIGHBORS_MAX_FRACTION:.1%} "
                   f"of the training documents, unless --threshold or --threshold-quantile is "
                   f"given].")
@click.option("--rounds", "--epochs", "rounds", type=click.IntRange(1, 1_000_000), default=None,
              help="Rounds of alternating encoder / predictor training  [default: 20].")
@click.option("--steps", type=click.IntRange(1, 100_000_000), default=1000, show_default=True, help="Encoder steps per round.")
@click.option("--batch-size", type=click.IntRange(2, 1_000_000), default=100, show_default=True,
              help="Pairs per encoder step (half of them similar).")
@click.option("--seed-pairs", type=click.IntRange(0, 100_000_000), default=5000, show_default=True,
              help="Random mutant pairs simulated to seed the predictor.")
@click.option("--seed-epochs", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Predictor epochs on the seed pairs.")
@click.option("--seed-mutants", type=click.IntRange(1, 100_000), default=1, show_default=True,
              help="Mutants per random seed target (1 in the paper; more is cheaper to simulate).")
@click.option("--sim-pairs", type=click.IntRange(0, 100_000_000), default=1000, show_default=True,
              help="Fresh encoder pairs simulated per round to refit the predictor.")
@click.option("--sim-docs", type=click.IntRange(2, 1_000_000_000), default=None,
              help="Documents those pairs are drawn among (default sim-pairs / 4: strands reused).")
@click.option("--sim-similar-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of similar pairs among those fresh pairs (0 = purely random pairs).")
@click.option("--sim-near-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of near dissimilar pairs (see --near-factor) among those fresh pairs.")
@click.option("--predictor-epochs", type=click.IntRange(0, 100_000), default=10, show_default=True,
              help="Predictor refit epochs per round.")
@click.option("--replay", type=click.IntRange(0, 1_000_000_000), default=20000, show_default=True,
              help="Replay buffer of simulated pairs the predictor is refit on (0 = fresh pairs only).")
@click.option("--relaxation", type=click.Choice(["straight-through", "soft"]),
              default="straight-through", show_default=True,
              help="Predictor input in the encoder phase: argmax one-hots with soft gradients "
                   "(straight-through) or the soft one-hots (paper).")
@click.option("--hard-negatives", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of the dissimilar pairs of encoder batches drawn just above the "
                   "threshold (up to --near-factor x threshold).")
@click.option("--near-factor", type=click.FloatRange(1, 1000, min_open=True), default=2.0, show_default=True,
              help="Near dissimilar pairs lie within this multiple of the similarity threshold.")
@click.option("--dissimilar-weight", type=click.FloatRange(0, 1e6, min_open=True), default=1.0, show_default=True,
              help="Loss weight of dissimilar pairs relative to similar ones.")
@click.option("--encoder-lr", type=click.FloatRange(0, 100, min_open=True), default=1e-3, show_default=True,
              help="Learning rate of the encoder's optimizer.")
@click.option("--encoder-optimizer", default="adagrad", show_default=True,
              help="Any keras.optimizers name.")
@click.option("--predictor-lr", type=click.FloatRange(0, 100, min_open=True), default=1e-3, show_default=True,
              help="Learning rate of the predictor's optimizer.")
@click.option("--predictor-optimizer", default="rmsprop", show_default=True,
              help="Any keras.optimizers name.")
@click.option("--hidden", type=click.IntRange(1, 1_000_000), default=2048, show_default=True, help="Encoder hidden width.")
@click.option("--window", type=click.IntRange(1, 79), default=3, show_default=True,
              help="Predictor local-match window (3 in the paper).")
@click.option("--conv-filters", type=click.IntRange(1, 100_000), default=36, show_default=True,
              help="Predictor convolution filters (36 in the paper).")
@click.option("--global-pool", type=click.Choice(["average", "max", "both"]), default="average",
              show_default=True, help="Predictor global pooling (average in the paper).")
@click.option("--context", type=click.Choice(["none", "toehold"]), default="none", show_default=True,
              help="Show the predictor the probe's toehold (RP[:6]) after both sequences.")
@click.option("--predictor", "predictor", default=DEFAULT_PREDICTOR, show_default=True,
              metavar="local-match|scan",
              help="Yield predictor: the paper's local-match network, or the soft duplex scan "
                   "(every diagonal of the pairing matrix; also predicts the binding energy).")
@click.option("--objective", default=DEFAULT_OBJECTIVE, show_default=True,
              metavar="paper|rank|hamming-triplet",
              help="Encoder objective: the paper's yield cross-entropy; rank (similar documents "
                   "out-bind far ones by --margin kcal/mol of predicted energy); hamming-triplet "
                   "(predictor-free triplet loss on soft Hamming distance).")
@click.option("--margin", type=float, default=None,
              help="Triplet margin: kcal/mol for rank [default 2], fraction of positions for "
                   "hamming-triplet [default 0.1].")
@click.option("--rank-candidates", type=click.IntRange(1, 100_000), default=16, show_default=True,
              help="Far in-batch documents per anchor among which rank / hamming-triplet mine "
                   "the hardest negative.")
@click.option("--energy-weight", type=click.FloatRange(0, 1e6), default=1.0, show_default=True,
              help="Weight of the binding-energy regression in the predictor's loss (scan).")
@click.option("--energy-head/--no-energy-head", "energy_head", default=None,
              help="Give local-match a binding-energy head [default: on unless --objective "
                   "paper; the scan always has one].")
@click.option("--sim-candidates", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Candidate pairs per fresh pair of the predictor phase (1 = random fresh "
                   "pairs, the paper); the predictor picks among them with the next two options.")
@click.option("--sim-uncertain", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of fresh pairs taken among the candidates the predictor is least sure of.")
@click.option("--sim-far-binders", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of fresh pairs taken among dissimilar candidates the predictor says bind.")
@click.option("--capture-eval-docs", type=click.IntRange(0, 1_000_000), default=3000,
              show_default=True,
              help="Held-out documents of the mini-database captured with the default protocol "
                   "during training (0 = off).")
@click.option("--capture-eval-queries", type=click.IntRange(0, 10_000), default=20,
              show_default=True, help="Held-out queries of that mini-database.")
@click.option("--capture-eval-every", type=click.IntRange(1, 10_000), default=5, show_default=True,
              help="Capture-evaluate every this many rounds (and at the last).")
@click.option("--keep-best/--keep-last", "keep_best", default=None,
              help="Keep the round with the best capture evaluation, or the last round "
                   "[default: best unless --objective paper].")
@click.option("--entropy", type=click.FloatRange(0, 1e6), default=1e-2, show_default=True,
              help="Strength of the encoder's per-position entropy regularizer.")
@click.option("--gc-balance", type=click.FloatRange(0, 1e6), default=0.0, show_default=True,
              help="Strength of the GC-balance regularizer (0 = off).")
@click.option("--gc-target", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.5, show_default=True,
              help="GC fraction the GC regularizer pulls towards.")
@click.option("--homopolymer", type=click.FloatRange(0, 1e6), default=0.0, show_default=True,
              help="Strength of the homopolymer regularizer (0 = off).")
@click.option("--max-run", type=click.IntRange(1, 80), default=3, show_default=True,
              help="Longest homopolymer the homopolymer regularizer tolerates.")
@click.option("--heldout-rows", type=click.IntRange(0, 1_000_000_000), default=5000, show_default=True,
              help="Rows held out of training for the separation metrics and the figure.")
@click.option("--eval-pairs", type=click.IntRange(0, 100_000_000), default=200, show_default=True,
              help="Held-out similar and random pairs simulated each round.")
@click.option("--final-eval-pairs", type=click.IntRange(0, 100_000_000), default=1000, show_default=True,
              help="Held-out similar and random pairs simulated at the end.")
@click.option("--block-rows", type=click.IntRange(1, 1_000_000_000), default=None,
              help="Rows per pair-sampling block (default: by memory, about 256 MB).")
@click.option("--temperature", type=float, default=None, metavar="CELSIUS",
              help="Hybridization temperature of the protocol, where the anneal ends (default "
                   "21 °C, the paper's); recorded in the model card and used by primo simulate "
                   "and by the capture evaluation during training. A more stringent protocol "
                   "lowers the binding of unrelated documents.")
@click.option("--train-temperature", type=float, default=None, metavar="CELSIUS",
              help="Temperature at which the simulator computes the yields the predictor learns "
                   f"[default: {DEFAULT_TRAIN_TEMPERATURE_C:g}, or --temperature when higher; "
                   "with --paper, --temperature]. Near the top of the anneal only the duplexes "
                   "that lock early count as binding, so the encoder learns to give neighbours "
                   "those and the rest not.")
@loop_enthalpies_option(None, help="ViennaRNA's DNA loop enthalpies for the simulator: clipped "
                        "(default: no loop gains entropy on forming) or shipped (the file as "
                        "ViennaRNA ships it; models trained before the option).")
@stacks_option(help="ViennaRNA's DNA Watson-Crick stacks for the simulator: vienna (the file's) "
               "or santalucia (SantaLucia & Hicks 2004, as NUPACK's dna04). Recorded in the card.")
@click.option("--paper", is_flag=True,
              help="The paper's method: its global similarity threshold (--threshold, 75 "
                   "unless given) and a simulator at the hybridization temperature, with the "
                   "paper's objective and local-match predictor (the defaults).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None,
              help="Random seed: the same seed gives the same model (drawn and recorded if omitted).")
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
def cli(ctx, features, output, threshold, threshold_quantile, neighbors, rounds, steps, batch_size, seed_pairs,
        seed_epochs, seed_mutants, sim_pairs, sim_docs, sim_similar_fraction, sim_near_fraction,
        predictor_epochs,
        replay, relaxation, hard_negatives, near_factor, dissimilar_weight, encoder_lr,
        encoder_optimizer, predictor_lr, predictor_optimizer, hidden, window, conv_filters,
        global_pool, context, predictor, objective, margin, rank_candidates, energy_weight,
        energy_head, sim_candidates, sim_uncertain, sim_far_binders, capture_eval_docs,
        capture_eval_queries, capture_eval_every, keep_best, entropy, gc_balance, gc_target,
        homopolymer, max_run, heldout_rows, eval_pairs, final_eval_pairs, block_rows, temperature,
        train_temperature, loop_enthalpies, stacks, paper, seed, resume, overwrite, processes,
        scheduler):
    """Train the feature -> DNA encoder and its yield predictor (alternating phases).

    Writes MODEL/ with encoder.keras, predictor.keras, card.json, metrics.csv (one row per round),
    TensorBoard logs, a checkpoint after every round (--resume) and yields.png (cf. paper Fig. 2D/E).
    """
    from ..training.trainer import TrainSettings, train

    if resume:
        ignored = [p.name for p in ctx.command.params
                   if p.name not in ("features", "output", "rounds", "resume", "processes",
                                     "scheduler", "debug")
                   and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]
        if ignored:
            click.echo(f"primo train: note: --resume keeps the interrupted run's settings; ignoring "
                       f"{', '.join('--' + n.replace('_', '-') for n in ignored)}", err=True)
        settings = TrainSettings(rounds=rounds) if rounds is not None else None
    else:
        given = [f"--{n.replace('_', '-')}" for n in ("threshold", "threshold_quantile")
                 if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if paper:
            _check_paper(ctx, neighbors, objective, predictor, train_temperature)
            given = given or ["--paper"]
        if neighbors is None:
            neighbors = None if given else "auto"
        else:
            if given:
                from ..errors import UsageError

                raise UsageError(f"--neighbors replaces the similarity threshold; drop "
                                 f"{' and '.join(given)}", hint="give one of the two")
        settings = TrainSettings(
            threshold=None if threshold == "auto" else float(threshold),
            threshold_quantile=threshold_quantile, neighbors=neighbors, rounds=rounds if rounds is not None else 20,
            steps=steps, batch_size=batch_size, seed_pairs=seed_pairs, seed_epochs=seed_epochs,
            seed_mutants=seed_mutants, sim_pairs=sim_pairs, sim_docs=sim_docs,
            sim_similar_fraction=sim_similar_fraction, sim_near_fraction=sim_near_fraction,
            relaxation=relaxation,
            hard_negatives=hard_negatives, near_factor=near_factor,
            dissimilar_weight=dissimilar_weight,
            predictor_epochs=predictor_epochs, replay=replay, encoder_lr=encoder_lr,
            encoder_optimizer=encoder_optimizer, predictor_lr=predictor_lr,
            predictor_optimizer=predictor_optimizer, hidden=hidden, window=window,
            conv_filters=conv_filters, global_pool=global_pool,
            context="" if context == "none" else context, entropy=entropy,
            gc_balance=gc_balance, gc_target=gc_target, homopolymer=homopolymer, max_run=max_run,
            heldout_rows=heldout_rows, eval_pairs=eval_pairs, final_eval_pairs=final_eval_pairs,
            block_rows=block_rows, seed=seed, predictor=predictor, objective=objective,
            margin=margin, rank_candidates=rank_candidates, energy_weight=energy_weight,
            energy_head=energy_head, sim_candidates=sim_candidates, sim_uncertain=sim_uncertain,
            sim_far_binders=sim_far_binders, capture_eval_docs=capture_eval_docs,
            capture_eval_queries=capture_eval_queries, capture_eval_every=capture_eval_every,
            keep_best=keep_best)
        settings.check()

    def log(msg):
        click.echo(f"primo train: {msg}", err=True)

    simulator = None
    if not resume:
        from ..thermo.simulator import Simulator
        from ..training.trainer import default_train_temperature
        from .. import constants

        hyb = constants.TEMPERATURE_C if temperature is None else temperature
        Simulator(temperature=hyb)  # one line for a temperature out of the simulator's range
        if train_temperature is None:
            train_temperature = hyb if paper else default_train_temperature(hyb)
        simulator = Simulator(temperature=train_temperature,
                              loop_enthalpies=loop_enthalpies or "clipped", stacks=stacks)
        settings.hybridization_c = float(hyb)
        settings.check()  # the hybridization temperature lies within the anneal
    with mapper_from_options(processes, scheduler) as mapper:
        result = train(features, output, settings, simulator=simulator, mapper=mapper,
                       resume=resume, overwrite=overwrite, log=log)
    m = result.card.get("metrics", {})
    click.echo(f"{result.path}\trounds={result.rounds_done}\tthreshold={result.card['threshold']['value']:.6g}"
               f"\tsimilar>=0.5={_pct(m.get('sim_pos_similar'))}"
               f"\tdissimilar>=0.5={_pct(m.get('sim_pos_dissimilar'))}")
    return result


def _check_paper(ctx, neighbors, objective, predictor, train_temperature):
    """--paper is the paper's method: refuse the options that would make it something else."""
    from ..errors import UsageError

    clash = [f"--{n.replace('_', '-')}" for n in ("neighbors", "train_temperature")
             if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
    if objective != "paper":
        clash.append(f"--objective {objective}")
    if predictor != "local-match":
        clash.append(f"--predictor {predictor}")
    if clash:
        raise UsageError(f"--paper is the paper's method; drop {', '.join(clash)}",
                         hint="give --paper alone, or the options without it")


def _pct(v):
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}%"
