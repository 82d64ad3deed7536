"""The ``primo`` command line.

One module per subcommand (``primo/cli/<name>.py``, each defining ``cli``), loaded only when that
command runs, so ``primo barcodes`` or ``primo yields`` never import TensorFlow.

:func:`main` runs the command line in-process and returns a :class:`Result` (exit code, the
command's return value, the error if any), which is what the tests use::

    result = main(["barcodes", "encode"], stdin=io.StringIO("0\\n"))

Errors: a :class:`~primo.errors.PrimoError` becomes one line on stderr, ``primo <command>: error:
<message>``, exit 1 for bad data and 2 for bad usage; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys

import click

from .. import __version__
from ..errors import PrimoError
from ..io import set_command
from ..progress import set_quiet

__all__ = ["main", "entry", "Result", "COMMANDS"]

# name -> (module, one-line help). Modules live in primo/cli/<module>.py and define ``cli``.
COMMANDS = {
    "extract": ("extract", "Images -> feature vectors (VGG16-FC2, TF-Hub, Fashion-MNIST embedder)."),
    "train": ("train", "Train the feature -> DNA encoder against the yield predictor."),
    "encode-db": ("encode_db", "Encode a feature store as an oligo pool ready to order."),
    "query": ("query", "Design query probes and their order sheet."),
    "analyze": ("analyze", "Sequencing reads -> per-document counts -> recall curves."),
    "simulate": ("simulate", "The wet-lab experiment in silico."),
    "yields": ("yields", "Thermodynamic yields of (target, query) feature sequence pairs."),
    "barcodes": ("barcodes", "Document indices <-> 30-nt Reed-Solomon barcodes (stdin/stdout)."),
    "pool": ("pool", "Build, check and inspect oligo pools."),
    "benchmark": ("benchmark", "primo against in-silico similarity search (HNSW, faiss, annoy, LSH)."),
    "demo": ("demo", "The whole pipeline on bundled data, offline."),
}


# commands that run TensorFlow: it is imported before they run (once their options have parsed),
# with its C++ start-up chatter silenced (not with --debug)
_TF_COMMANDS = {"extract", "train", "encode-db", "query", "simulate", "demo"}
_TF_QUIET_IMPORT = True


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up log lines (oneDNN, CPU features, absl) silenced
    (:mod:`primo._tensorflow`, the one place the library uses too); not installed or broken:
    the command itself reports it."""
    from .._tensorflow import import_tensorflow

    import_tensorflow()


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx):
        return [name for name, (mod, _) in COMMANDS.items() if _module_exists(mod)]

    def get_command(self, ctx, name):
        if name not in COMMANDS or not _module_exists(COMMANDS[name][0]):
            return None
        mod = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
        cmd = mod.cli
        if not getattr(cmd, "_primo_finite", False):
            from ._options import finite_floats

            finite_floats(cmd)   # NaN and inf are usage errors in every float option
            cmd._primo_finite = True
        if name in _TF_COMMANDS and not getattr(cmd, "_primo_tf_wrapped", False):
            # TensorFlow is imported (its start-up chatter silenced) once the command line has
            # parsed: a usage error (``extract -j 0``) is reported at once, not after the import
            invoke = cmd.invoke

            def invoke_after_tf(ctx, _invoke=invoke):
                if _TF_QUIET_IMPORT and not ctx.params.get("list_models"):
                    _import_tensorflow_quietly()
                return _invoke(ctx)

            cmd.invoke = invoke_after_tf
            cmd._primo_tf_wrapped = True
        return cmd

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(mod: str) -> bool:
    return os.path.exists(os.path.join(os.path.dirname(__file__), f"{mod}.py"))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="primo")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.pass_context
def cli(ctx, debug, quiet):
    """primo: content-based similarity search in DNA data storage.

    \b
    images --extract--> features.h5 --train--> MODEL/
    features + MODEL --encode-db--> POOL/ (Twist order)     query --query--> probes (IDT order)
    FASTQ + POOL --analyze--> counts, recall curves         --simulate--> the experiment in silico
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if quiet:
        set_quiet(True)


@dataclasses.dataclass
class Result:
    """Outcome of :func:`main`."""

    exit_code: int
    value: object = None
    error: BaseException | None = None


def main(argv=None, *, stdin=None, stdout=None) -> Result:
    """Run the command line in-process; never calls ``sys.exit``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    set_command(argv)
    debug = "--debug" in argv or os.environ.get("PRIMO_DEBUG", "") not in ("", "0")
    old_in, old_out = sys.stdin, sys.stdout
    if stdin is not None:
        sys.stdin = stdin
    if stdout is not None:
        sys.stdout = stdout
    global _TF_QUIET_IMPORT
    _TF_QUIET_IMPORT = not debug
    try:
        value = cli.main(args=argv, prog_name="primo", standalone_mode=False)
        if isinstance(value, int) and not isinstance(value, bool):
            return Result(exit_code=value)
        return Result(exit_code=0, value=value)
    except PrimoError as e:
        if debug:
            raise
        flag = _flag_of(argv, e.option) if e.option else None
        text = _flags_in(argv, str(e))
        _say(_command_name(argv), f"{flag}: {text}" if flag else text)
        return Result(exit_code=e.exit_code, error=e)
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, Terminated):   # click wraps KeyboardInterrupt in Abort
            _say(_command_name(argv), "terminated; outputs that were not finished were not written")
            return Result(exit_code=143)
        _say(_command_name(argv), "aborted; outputs that were not finished were not written")
        return Result(exit_code=130)
    except click.exceptions.Exit as e:
        return Result(exit_code=e.exit_code)
    except click.ClickException as e:
        if debug:
            raise
        msg = e.format_message()
        if isinstance(e, click.UsageError) and e.ctx is not None:
            msg += f" (see `{e.ctx.command_path} --help`)"
        _say(_command_name(argv), msg)
        return Result(exit_code=e.exit_code, error=e)
    except KeyboardInterrupt as e:
        what = "terminated" if isinstance(e, Terminated) else "interrupted"
        _say(_command_name(argv), f"{what}; outputs that were not finished were not written")
        return Result(exit_code=143 if isinstance(e, Terminated) else 130)
    except UnicodeDecodeError as e:
        # a binary file where text was expected, found by a reader that does not name its file
        if debug:
            raise
        _say(_command_name(argv), f"an input is not UTF-8 text ({e.reason} at byte {e.start}); give text files "
                   "(CSV, FASTQ, lists), plain or gzip-compressed")
        return Result(exit_code=1, error=e)
    except MemoryError as e:
        if debug:
            raise
        _say(_command_name(argv), "out of memory; lower the chunk size (--chunk-rows / --chunk-bytes) or --batch-size")
        return Result(exit_code=1, error=e)
    except OSError as e:
        # disk full, permission denied, too many open files...: the user's environment, not a bug
        if debug:
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        _say(_command_name(argv), f"{where}{e.strerror or e}")
        return Result(exit_code=1, error=e)
    finally:
        sys.stdin, sys.stdout = old_in, old_out


def _command_name(argv) -> str:
    """``primo <command>``, with the subcommand of a group (``primo pool build``)."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return "primo"
    name = f"primo {words[0]}"
    if words[0] in COMMANDS and len(words) > 1:
        try:
            cmd = LazyGroup(name="primo").get_command(None, words[0])
        except Exception:  # noqa: BLE001 -- the name without the subcommand rather than none
            return name
        if isinstance(cmd, click.Group) and words[1] in cmd.commands:
            name += f" {words[1]}"
    return name


def _flags_in(argv, text: str) -> str:
    """``text`` with each parameter name in backquotes (library terms: "pass `overwrite` to
    replace it") written as the command's flag ("pass --overwrite to replace it"); names the
    command does not have stay as they are."""
    import re

    def flag(m):
        return _flag_of(argv, m.group(1)) or m.group(0)

    return re.sub(r"`([a-z][a-z0-9_]*)`", flag, text)


def _flag_of(argv, option: str) -> str | None:
    """The command-line option of the command in ``argv`` whose parameter is ``option``."""
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] not in COMMANDS:
        return None
    try:
        cmd = LazyGroup(name="primo").get_command(None, words[0])
        for w in words[1:]:   # a subcommand of a group
            if isinstance(cmd, click.Group) and w in cmd.commands:
                cmd = cmd.commands[w]
    except Exception:  # the error is reported without the flag rather than not at all
        return None
    for p in getattr(cmd, "params", ()):
        if isinstance(p, click.Option) and p.name == option:
            longs = [o for o in p.opts if o.startswith("--")]
            return (longs or p.opts)[0]
    return None


def _say(name: str, msg: str) -> None:
    msg = " ".join(str(msg).split())
    click.echo(f"{name}: error: {msg}", err=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that unfinished outputs are removed and worker
    pools are closed as on Ctrl-C (the default action would leave temporary files behind)."""


def _on_sigterm(signum, frame):
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # a second SIGTERM ends the process at once
    if os.getpid() != _MAIN_PID:   # a process forked from this one: end it as the default would
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Terminated()


_MAIN_PID = os.getpid()


def entry() -> None:  # console script
    import signal

    global _MAIN_PID
    _MAIN_PID = os.getpid()
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(main().exit_code)
