"""Options shared by several subcommands."""

from __future__ import annotations

import functools

import click

from ..parallel import get_mapper
from ._settings import FiniteFloatRange, renamed_option, settings_options

__all__ = ["parallel_options", "mapper_from_options", "debug_option", "overwrite_option",
           "skip_bad_rows_option", "qc_options", "qc_config", "print_qc_summary",
           "renamed_option", "qc_mode_option", "neighbors_option", "queries_option", "seed_option",
           "chunk_rows_option", "FiniteFloatRange", "finite_floats", "SEED", "SEED_MAX"]


# ------------------------------------------------------------------------- the vocabulary
# One spelling per meaning across commands (DEVELOPING.md, "Option vocabulary"). An old spelling
# stays for one release as a hidden alias that says, on stderr, what replaces it
# (``renamed_option``, defined in ``_settings``, below the vocabulary, which the options generated
# from settings use too).
def neighbors_option(default: int = 100, help: str | None = None):
    """``-k/--neighbors K``: recall is of the K nearest neighbors (was ``--k``)."""
    help = help or "Recall of the K nearest neighbors (exact, Euclidean)."

    def deco(f):
        f = renamed_option("--k", "-k/--neighbors", "k", type=click.IntRange(min=1))(f)
        return click.option("-k", "--neighbors", "k", type=click.IntRange(min=1), default=default,
                            show_default=True, metavar="K", help=help)(f)

    return deco


def loop_enthalpies_option(default: str | None = "clipped", help: str | None = None):
    """``--loop-enthalpies``: ViennaRNA's DNA loop enthalpies, capped (default) or as shipped."""
    from ..thermo.vienna import LOOP_MODES

    return click.option(
        "--loop-enthalpies", type=click.Choice(list(LOOP_MODES)), default=default,
        show_default=default is not None,
        help=help or "ViennaRNA's DNA loop enthalpies: clipped (no loop gains entropy on "
                     "forming, so binding weakens with temperature) or shipped (the file as "
                     "ViennaRNA ships it, whose loops grow more stable above ~60 °C; models "
                     "trained before the option).")


def stacks_option(default: str | None = "vienna", help: str | None = None):
    """``--stacks``: the Watson-Crick stack parameters of ViennaRNA's DNA set."""
    from ..thermo.vienna import STACK_MODES

    return click.option(
        "--stacks", type=click.Choice(list(STACK_MODES)), default=default,
        show_default=default is not None,
        help=help or "ViennaRNA's DNA Watson-Crick stacks: vienna (the file's free energies and "
                     "enthalpies) or santalucia (SantaLucia & Hicks 2004's unified "
                     "nearest-neighbor values, as NUPACK's dna04 has them).")


def queries_option(name: str = "queries", required: bool = False, help: str | None = None):
    """``-Q/--queries Q.h5``: the query feature store (was ``--query``)."""
    help = help or "Feature store of the query (or queries)."

    def deco(f):
        f = renamed_option("--query", "-Q/--queries", name, type=click.Path(dir_okay=False))(f)
        return click.option("-Q", "--queries", name, type=click.Path(dir_okay=False),
                            required=required, default=None, metavar="Q.h5", help=help)(f)

    return deco


SEED_MAX = 2**32 - 1   # numpy's legacy generators (and the barcode permutation) take 32 bits
SEED = click.IntRange(0, SEED_MAX)


def seed_option(default: int | None = 0, help: str = "Random seed."):
    """``--seed N``: the seed of a random generator, 0..2**32-1 (the barcode permutation is
    ``--barcode-seed``)."""
    return click.option("--seed", type=SEED, default=default,
                        show_default=default is not None, help=help)


def finite_floats(cmd) -> None:
    """Give every float option of ``cmd`` (and of its subcommands) a :class:`FiniteFloatRange`
    with the same bounds: NaN and infinities are usage errors everywhere, in one place."""
    for p in getattr(cmd, "params", ()):
        t = p.type
        if isinstance(t, click.types.FloatParamType) and not hasattr(t, "_primo_finite"):
            if isinstance(t, click.FloatRange):
                p.type = FiniteFloatRange(t.min, t.max, min_open=t.min_open,
                                          max_open=t.max_open, clamp=t.clamp)
            else:
                p.type = FiniteFloatRange()
            p.type._primo_finite = True
    for sub in (getattr(cmd, "commands", None) or {}).values():
        finite_floats(sub)


CHUNK_ROWS = click.IntRange(1, 10**9)   # a billion rows per step is beyond any memory


def chunk_rows_option(default: int | None, unit: str, name: str = "chunksize",
                      help: str | None = None, old: str = "--chunksize"):
    """``--chunk-rows N``: rows (``unit``) read and processed per step, which bounds memory
    (was ``old``)."""

    def deco(f):
        f = renamed_option(old, "--chunk-rows", name, type=CHUNK_ROWS)(f)
        return click.option("--chunk-rows", name, type=CHUNK_ROWS, default=default,
                            show_default=default is not None, metavar="N",
                            help=help or f"{unit} per step (bounds memory).")(f)

    return deco


def parallel_options(f=None, *, processes_help: str | None = None):
    """``--processes N`` and ``--scheduler ADDRESS`` (the pluggable map); ``processes_help``
    replaces the help of ``-j`` where the command's default is not all usable CPUs."""
    if f is None:
        return functools.partial(parallel_options, processes_help=processes_help)
    f = click.option("--scheduler", metavar="ADDRESS", default=None, envvar="PRIMO_SCHEDULER",
                     help="Run the work on an existing Dask.distributed cluster "
                          "(e.g. tcp://10.0.0.1:8786) instead of local processes.")(f)
    f = click.option("--processes", "-j", type=click.IntRange(min=1), default=None,
                     callback=_cap_processes,
                     help=(processes_help
                           or "Local worker processes (default: all usable CPUs; 1 = serial).")
                     + " More than the usable CPUs is lowered to them, with a warning.")(f)
    return f


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; all CPUs where there is none)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):   # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _cap_processes(ctx, param, value):
    """``-j N`` beyond the usable CPUs: N processes would only take turns on them (and each
    starts its own interpreter), so it is lowered, with a warning on stderr."""
    if value is None or ctx.resilient_parsing:
        return value
    n = usable_cpus()
    if value > n:
        click.echo(f"primo: warning: -j {value} is more than the {n} usable CPU(s); using {n}",
                   err=True)
        return n
    return value


def mapper_from_options(processes, scheduler):
    return get_mapper(processes=processes, scheduler=scheduler)


def debug_option(f):
    """Accept ``--debug`` after the subcommand too (it is handled in primo.cli.main)."""
    return click.option("--debug", is_flag=True, hidden=True, expose_value=False)(f)


def overwrite_option(command: str, *, output: str = "output", inputs=(), file: bool = False,
                     sidecars=None, pass_overwrite: bool = False, unless: str | None = None,
                     check: bool = True, help: str | None = None):
    """``--overwrite``, and the rules for the command's output (:func:`primo.io.output_policy`).

    ``output`` names the parameter holding the output path, ``inputs`` the parameters holding
    input paths (never replaced, even with --overwrite). Directory outputs: an existing directory
    that holds files is replaced only if it is an earlier output of the same command and
    --overwrite is given. File outputs (``file=True``; ``sidecars(output)`` lists the files
    written beside it): an existing file is replaced only with --overwrite, an input never. The
    check runs before the command does any work. ``pass_overwrite``: the command takes
    ``overwrite`` itself; ``unless``: a flag parameter (``resume``) that continues an existing
    output, so the check is the command's own; ``check=False``: the command checks its output
    itself, early (with its own advice); ``help``: the option's help instead of the default.
    """
    if help:
        help_ = help
    elif file:
        help_ = "Replace an existing output file (never an input of this command)."
    else:
        help_ = (f"Replace an earlier output directory of `primo {command}` (once the new one is "
                 "complete; never a directory holding other files, nor an input).")

    def deco(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            from ..io import output_policy

            overwrite = kwargs["overwrite"] if pass_overwrite else kwargs.pop("overwrite")
            out = kwargs.get(output)
            # continuing an existing output (--resume): the command checks it itself; files
            # written inside it are its own
            checked = check and not (unless and kwargs.get(unless))
            ins = [kwargs.get(name) for name in inputs]
            side = sidecars(out) if (sidecars and out is not None) else ()
            with output_policy(command, out, overwrite=overwrite, inputs=ins, file=file,
                               sidecars=side, check=checked):
                return f(*args, **kwargs)

        return click.option("--overwrite", is_flag=True, help=help_)(wrapper)

    return deco


def skip_bad_rows_option(command: str):
    """``--skip-bad-rows``: feature stores read by the command leave out rows holding NaN or
    infinite values, with a warning, and the output lists them (``skipped_rows``); without it the
    first such row stops the command with an error naming the file, row and document."""

    def deco(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            from ..features.store import bad_rows_policy

            def warn(msg):
                click.echo(f"primo {command}: warning: {' '.join(str(msg).split())}", err=True)

            with bad_rows_policy(kwargs.pop("skip_bad_rows"), warn=warn):
                return f(*args, **kwargs)

        return click.option(
            "--skip-bad-rows", is_flag=True,
            help="Leave out feature vectors holding NaN or infinite values (warned about and "
                 "listed in the output) instead of stopping at the first one.")(wrapper)

    return deco


def qc_mode_option(name: str = "qc"):
    """``--qc fail|warn|off``: what a manufacturability failure does; ``fail`` (nothing written)
    in every command that writes a pool to order."""
    return click.option("--qc", name, type=click.Choice(["fail", "warn", "off"]), default="fail",
                        show_default=True,
                        help="fail: write nothing if any oligo fails manufacturability QC; warn: "
                             "write the pool and report the failures; off: no QC.")


def qc_options(f):
    """The manufacturability thresholds (``--gc-min`` .. ``--max-pool-size``) of ``pool`` and
    ``encode-db``, generated from the fields of :class:`primo.oligos.qc.QCConfig` that the
    command line offers (their defaults, bounds and help live there); None where not given."""
    from ..oligos.qc import QCConfig
    from ..settings import cli_fields

    return settings_options(cli_fields(QCConfig))(f)


def qc_config(base, gc_min, gc_max, max_homopolymer, primer_match, max_pool_size):
    """``base`` (default: the default QCConfig) with the thresholds given on the command line."""
    import dataclasses

    from ..oligos.qc import QCConfig

    base = base or QCConfig()
    changes = {k: v for k, v in dict(gc_min=gc_min, gc_max=gc_max, max_homopolymer=max_homopolymer,
                                     primer_match=primer_match,
                                     max_pool_size=max_pool_size).items() if v is not None}
    return dataclasses.replace(base, **changes) if changes else base


def print_qc_summary(summary: dict) -> None:
    """The QC summary of a pool, for the terminal."""
    echo = click.echo
    echo(f"QC {'passed' if summary.get('passed') else 'FAILED'}: "
         f"{summary.get('documents_failed', 0):,} of {summary.get('documents', 0):,} oligos flagged")
    for check, n in (summary.get("checks_failed") or {}).items():
        echo(f"  {check:20s} {n:,}")
    for p in summary.get("pool_problems") or []:
        echo(f"  pool: {p}")
    st = summary.get("stats") or {}
    if st.get("gc_mean") is not None:
        echo(f"  GC mean {st['gc_mean']:.3f} (min {st['gc_min']:.3f}, max {st['gc_max']:.3f}); "
             f"longest homopolymer {st['longest_homopolymer']}")


def model_dir_option(f=None, *, help: str = "Trained model directory (primo train)."):
    """``-m/--model MODEL/``: a trained model directory, passed as ``model_dir``."""
    deco = click.option("--model", "-m", "model_dir", required=True, type=click.Path(), help=help)
    return deco(f) if f is not None else deco


def database_features_option(help: str = "Feature store of the database documents (primo extract)."):
    """``-f/--features F.h5``: the database's feature store."""
    return click.option("--features", "-f", required=True, type=click.Path(), help=help)
