"""Where primo writes: output directories and files, written whole or not at all.

* :func:`atomic_file` / :func:`atomic_dir`: write under a temporary name in the same directory and
  rename on success, so that a crash or an error never leaves a half-written output, and an existing
  output is only replaced once the new one is complete.
* Output directories are never a user's files: every directory primo writes holds a marker,
  ``.primo-output.json`` (the command that wrote it and its files). :func:`check_output_dir`
  refuses an output directory that exists and holds files unless it is an earlier output of the
  same command *and* ``--overwrite`` was given (:func:`output_policy`, set by the command line's
  ``overwrite_option``); a directory holding files primo did not write, the output of another
  command, the current directory, or an input of the same command is never replaced. Library
  callers (no policy) may replace any directory carrying a primo marker, never a foreign one.
* :func:`building_dir`, :func:`claim_output_dir` and the partial directories of resumable runs
  (:func:`start_partial_dir`, :func:`publish_partial_dir`): directories written in place, under
  the same rules.
* :func:`provenance`: the primo version and command line, recorded in every output.

Every name here is also importable from :mod:`primo.io` (where it lived first). The output rules
and the partial directories share the policy, the marker and the set of directories being built,
so they read best in one module.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from . import __version__
from .errors import UsageError

__all__ = [
    "atomic_file", "atomic_dir", "provenance", "set_command", "default_permissions",
    "OUTPUT_MARKER", "output_policy", "check_output_dir", "check_output_file", "claim_output_dir",
    "building_dir", "read_marker", "write_marker", "partial_dir", "start_partial_dir",
    "resume_partial_dir", "publish_partial_dir", "abandon_output_dir", "add_marker_note",
    "PARTIAL_SUFFIX",
]


_COMMAND: str | None = None


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:  # Linux: read it without changing it (os.umask would briefly change it for all threads)
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (other threads may see 022 meanwhile)
    os.umask(mask)
    return mask


def default_permissions(path) -> None:
    """Give a finished output (a file, or a directory and its files) the permissions of a normally
    created one (temporary names are created private: 0600 / 0700)."""
    path = Path(path)
    if path.is_dir():
        _default_mode(path, directory=True)
        for p in path.iterdir():
            if p.is_file():
                _default_mode(p, directory=False)
    else:
        _default_mode(path, directory=False)


def _default_mode(path, directory: bool) -> None:
    """Give a temp file/dir the permissions a normal ``open``/``mkdir`` would (mkstemp uses 0600)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def set_command(argv) -> None:
    """Record the command line of this run (called by the CLI)."""
    global _COMMAND
    _COMMAND = " ".join(["primo", *map(str, argv)])


def provenance(**extra) -> dict:
    """A dict recording the primo version, the command and the time, for output metadata."""
    d = {
        "primo_version": __version__,
        "command": _COMMAND if _COMMAND is not None else " ".join(sys.argv),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    d.update(extra)
    return d


def _file_target(path) -> Path:
    """Check the file ``path`` against the command's output rules (if any) and return where it is
    written: ``path`` itself, or the file a symbolic link points to."""
    path = Path(path)
    pol = _POLICY.get()
    if pol is not None and not _being_built(path, pol):
        check_output_file(path, overwrite=pol.overwrite, inputs=pol.inputs)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    return path


# directories this process is writing (atomic_dir's temporary directory, building_dir,
# claim_output_dir): files written inside them are the directory's, checked with it
_BUILDING: set = set()


def _being_built(path: Path, pol) -> bool:
    rp = _resolve(path)
    dirs = set(_BUILDING)
    if pol.output is not None and not pol.file:
        dirs.add(pol.output)
    return any(d in rp.parents for d in dirs)


def _cannot_write(path, e: OSError):
    """A one-line error about ``path`` (the output the user named), not primo's temporary name."""
    return UsageError(f"cannot write {path}: {e.strerror or e}",
                      hint="choose an output in a directory you can write to")


@contextlib.contextmanager
def atomic_file(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    On an exception the temporary file is removed and ``path`` is untouched. While a command's
    :func:`output_policy` is in force, every file written this way outside a directory the command
    is building (its main output and every side file) passes :func:`check_output_file` with the
    command's ``--overwrite`` and inputs. A symbolic link is written where it points (the link
    stays).
    """
    path = _file_target(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"cannot write {path}: directory {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=parent)
    except OSError as e:
        raise _cannot_write(path, e) from None
    os.close(fd)
    tmp = Path(tmp)
    _default_mode(tmp, directory=False)
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise _cannot_write(path, e) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise



# ---- output directories: never replace what primo did not write ------------------------------

OUTPUT_MARKER = ".primo-output.json"
_MARKER_FORMAT = "primo-output"


@dataclasses.dataclass(frozen=True)
class _Policy:
    command: str
    output: Path | None     # resolved
    overwrite: bool
    inputs: tuple           # ((as given, resolved), ...)
    file: bool = False      # the output is a file (else a directory)


_POLICY: contextvars.ContextVar = contextvars.ContextVar("primo_output_policy", default=None)


def _resolve(p) -> Path:
    return Path(os.path.expanduser(str(p))).resolve()


def _flatten_inputs(inputs) -> tuple:
    out = []
    for v in inputs or ():
        if v is None or v == "" or v == ():
            continue
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], Path):
            out.append(v)   # already (as given, resolved)
        elif isinstance(v, (list, tuple)):
            out.extend(_flatten_inputs(v))
        else:
            out.append((str(v), _resolve(v)))
    return tuple(out)


@contextlib.contextmanager
def output_policy(command: str, output=None, *, overwrite: bool = False, inputs=(),
                  file: bool = False, sidecars=(), check: bool = True):
    """The rules for one command's output, in force while the block runs.

    ``output`` is checked at once (so that a refused output fails before any work):
    :func:`check_output_dir`, or :func:`check_output_file` with ``file=True`` (``sidecars``: files
    written beside it); ``check=False`` leaves that to the writer. :func:`atomic_dir`,
    :func:`building_dir` and :func:`claim_output_dir` apply ``command``, ``overwrite`` and
    ``inputs`` when they write ``output``.
    """
    ins = _flatten_inputs(inputs)
    if output is not None and check:
        if file:
            check_output_file(output, overwrite=overwrite, inputs=ins, sidecars=sidecars)
        else:
            check_output_dir(output, command, overwrite=overwrite, inputs=ins)
    pol = _Policy(command, None if output is None else _resolve(output), bool(overwrite), ins,
                  bool(file))
    token = _POLICY.set(pol)
    try:
        yield pol
    finally:
        _POLICY.reset(token)


def _rules(path, command, overwrite, inputs):
    """(command, overwrite, inputs) for writing the directory ``path``."""
    pol = _POLICY.get()
    if pol is not None and pol.output is not None and pol.output == _resolve(path):
        return pol.command, pol.overwrite, pol.inputs
    ins = _flatten_inputs(inputs) if inputs is not None else (pol.inputs if pol else ())
    return command or (pol.command if pol else None), overwrite, ins


def _names(paths, limit: int = 3) -> str:
    names = sorted(str(p) for p in paths)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _list_files(directory: Path) -> list:
    """Every file (and symbolic link) under ``directory``, relative, in POSIX form; the marker
    itself left out."""
    found = []
    for root, dirs, files in os.walk(directory):
        r = Path(root)
        for d in dirs:
            if (r / d).is_symlink():
                files.append(d)
        for f in files:
            rel = (r / f).relative_to(directory).as_posix()
            if rel != OUTPUT_MARKER:
                found.append(rel)
    return sorted(found)


def read_marker(directory) -> dict | None:
    """The marker of an output directory primo wrote, or None (none, unreadable, not primo's)."""
    p = Path(directory) / OUTPUT_MARKER
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("format") != _MARKER_FORMAT or not d.get("command"):
        return None
    return d


#: callables returning extra fields for every marker written (:func:`add_marker_note`)
_MARKER_NOTES: list = []


def add_marker_note(note) -> None:
    """Have every output marker carry the fields ``note()`` returns (a dict; empty for none): a
    package above this one (the feature store's skipped rows) reports what an output was made
    from without this module importing it."""
    if note not in _MARKER_NOTES:
        _MARKER_NOTES.append(note)


def write_marker(directory, command: str | None, *, files: bool = True) -> None:
    """Mark ``directory`` as written by ``primo COMMAND`` (listing its files, unless ``files`` is
    False for a directory still being written in place)."""
    directory = Path(directory)
    d = {"format": _MARKER_FORMAT, "format_version": 1, "command": command or "python",
         "provenance": provenance(),
         "files": _list_files(directory) if files else None}
    for note in _MARKER_NOTES:   # e.g. feature rows left out with --skip-bad-rows
        d.update(note())
    with open(directory / OUTPUT_MARKER, "w", encoding="utf-8") as fh:
        json.dump(d, fh, indent=2)
        fh.write("\n")


def _check_not_input(path: Path, rp: Path, inputs, what: str) -> None:
    """Refuse an output that is an input, holds one, or (a directory; a file that exists) lies
    inside an input directory: writing it would change what the command reads."""
    for given, ri in inputs:
        if ri == rp:
            raise UsageError(f"{what} {path} is the input {given} of this command",
                             hint="choose a new output name")
        if rp in ri.parents:
            raise UsageError(f"{what} {path} holds the input {given} of this command",
                             hint="choose a new output directory")
        if ri in rp.parents and (what == "output directory" or os.path.lexists(path)):
            kind = "directory" if what == "output directory" else "file"
            raise UsageError(f"{what} {path} is inside the input {given} of this command",
                             hint=f"choose a new output {kind} outside it")


def check_output_dir(path, command: str | None = None, *, overwrite: bool | None = None,
                     inputs=()) -> dict | None:
    """Refuse to write the directory ``path`` where that would lose files; return its marker.

    Never replaced: the current directory (or one holding it), an input of the command (or a
    directory holding one or inside one), a file, and a directory that holds files primo did not
    write or the output of another command. An earlier output of the same ``command`` is replaced
    only with ``overwrite=True``; ``overwrite=None`` (library callers) replaces any directory that
    carries a primo marker and lists every file in it.
    """
    path = Path(path)
    rp = _resolve(path)
    cwd = _resolve(os.getcwd())
    if rp == cwd:
        raise UsageError(f"output directory {path} is the current directory",
                         hint="choose a new directory: primo writes its output directory whole "
                              "and would replace this one")
    if rp in cwd.parents:
        raise UsageError(f"output directory {path} holds the current directory",
                         hint="choose a new directory")
    _check_not_input(path, rp, _flatten_inputs(inputs), "output directory")
    if not path.exists():
        return None
    if not path.is_dir():
        raise UsageError(f"cannot write directory {path}: a file of that name exists",
                         hint="choose another output name")
    entries = [e.name for e in path.iterdir()]
    if not entries:
        return None
    which = f"`primo {command}`" if command else "the same command"
    marker = read_marker(path)
    if marker is None:
        raise UsageError(f"output directory {path} exists and holds files primo did not write "
                         f"({_names(entries)})",
                         hint="choose a new directory; `overwrite` replaces only an earlier "
                              f"output of {which}")
    mcmd = marker["command"]
    if command is not None and mcmd != command:
        raise UsageError(f"output directory {path} holds the output of `primo {mcmd}`",
                         hint=f"choose a new directory; `overwrite` replaces only an earlier "
                              f"output of {which}")
    listed = marker.get("files")
    if not (isinstance(listed, list) and all(isinstance(f, str) for f in listed)):
        # written in place and never finished (or tampered with): which files are primo's is
        # unknown, so none may be deleted
        raise UsageError(f"output directory {path} holds an unfinished output of `primo {mcmd}` "
                         f"whose marker {OUTPUT_MARKER} does not list its files",
                         hint="choose a new directory, or delete that one yourself")
    foreign = sorted(set(_list_files(path)) - set(listed))
    if foreign:
        raise UsageError(f"output directory {path} holds files primo did not write "
                         f"({_names(foreign)}) beside an earlier output of `primo {mcmd}`",
                         hint="choose a new directory, or move those files away first")
    if overwrite is False:
        raise UsageError(f"output directory {path} exists and holds files (an earlier output of "
                         f"`primo {mcmd}`)",
                         hint="choose a new directory, or pass `overwrite` to replace it")
    return marker


def check_output_file(path, *, overwrite: bool | None = None, inputs=(), sidecars=()) -> None:
    """Refuse to write the file ``path`` (and ``sidecars`` written beside it) over an input of the
    command, or over an existing file unless ``overwrite`` is not False."""
    path = Path(path)
    ins = _flatten_inputs(inputs)
    for p in [path, *map(Path, sidecars)]:
        _check_not_input(p, _resolve(p), ins, "output")
        if p.is_dir():
            raise UsageError(f"output {p} is a directory", hint="give a file name")
        if overwrite is False and os.path.lexists(p):
            beside = "" if p == path else f" (written beside {path})"
            raise UsageError(f"output {p} exists{beside}",
                             hint="choose a new name, or pass `overwrite` to replace it")


def _replace_dir(path: Path, new: Path) -> None:
    """Put the directory ``new`` in the place of ``path`` (already checked); delete the old one."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()
        os.replace(new, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
    try:
        os.replace(path, old / "x")
        os.replace(new, path)
    finally:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path, *, command: str | None = None, overwrite: bool | None = None, inputs=None):
    """Yield a temporary directory beside ``path``; it becomes ``path`` if the block succeeds.

    The new directory gets the marker :data:`OUTPUT_MARKER` (``command`` and its files). An
    existing ``path`` is replaced only where :func:`check_output_dir` allows it (with the rules of
    :func:`output_policy` when ``path`` is that policy's output), and only after the new directory
    is complete (it is moved aside, the new one renamed in, then the old one deleted). On an
    exception the temporary directory is deleted and ``path`` is untouched.
    """
    path = Path(path)
    command, overwrite, inputs = _rules(path, command, overwrite, inputs)
    check_output_dir(path, command, overwrite=overwrite, inputs=inputs)
    if path.is_symlink():
        path = Path(os.path.realpath(path))   # written where the link points; the link stays
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    except OSError as e:
        raise _cannot_write(path, e) from None
    _default_mode(tmp, directory=True)
    rtmp = _resolve(tmp)
    _BUILDING.add(rtmp)
    try:
        yield tmp
        write_marker(tmp, command)
        if path.exists() or path.is_symlink():
            # checked again: the directory may have changed while the output was computed
            check_output_dir(path, command, overwrite=overwrite, inputs=inputs)
            _replace_dir(path, tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _BUILDING.discard(rtmp)


@contextlib.contextmanager
def building_dir(path, *, command: str | None = None, overwrite: bool | None = None,
                 inputs=None):
    """Yield ``path`` to be written in place, for outputs that record their own paths (the
    demo: feature stores, model cards and manifests name the files beside them).

    The rules of :func:`atomic_dir` apply. An earlier output that may be replaced is moved aside
    first and deleted once the block succeeds; on an exception (Ctrl-C, SIGTERM included)
    ``path`` is deleted and the earlier output put back, so an interrupted run leaves nothing
    half-built (only a killed process can).
    """
    path = Path(path)
    command, overwrite, inputs = _rules(path, command, overwrite, inputs)
    check_output_dir(path, command, overwrite=overwrite, inputs=inputs)
    if path.is_symlink():
        path = path.resolve()   # written where the link points
    parent = path.parent if str(path.parent) else Path(".")
    old = None
    empty_dir = path.is_dir()   # the user's empty directory: left in place on failure
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if empty_dir and any(path.iterdir()):   # an earlier output that may be replaced
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / "x")
            empty_dir = False
        path.mkdir(exist_ok=True)
    except OSError as e:
        raise _cannot_write(path, e) from None
    rpath = _resolve(path)
    _BUILDING.add(rpath)
    try:
        yield path
        write_marker(path, command)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        if old is not None:
            os.replace(old / "x", path)
        elif empty_dir:
            path.mkdir(exist_ok=True)
        raise
    finally:
        _BUILDING.discard(rpath)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def claim_output_dir(path, *, command: str | None = None, overwrite: bool | None = None,
                     inputs=None) -> Path:
    """Make ``path`` an output directory written in place (``primo train``): check it as
    :func:`atomic_dir` does, delete an earlier output that may be replaced, create it and mark it
    (its file list is written by a later :func:`write_marker`)."""
    path = Path(path)
    command, overwrite, inputs = _rules(path, command, overwrite, inputs)
    marker = check_output_dir(path, command, overwrite=overwrite, inputs=inputs)
    if marker is not None:
        parent = path.parent if str(path.parent) else Path(".")
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
        os.replace(path, old / "x")
        shutil.rmtree(old, ignore_errors=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cannot_write(path, e) from None
    write_marker(path, command, files=False)
    _BUILDING.add(_resolve(path))   # its files are written in place by this process
    return path


#: suffix of the directory beside an output where a long, resumable run builds its replacement
PARTIAL_SUFFIX = ".primo-partial"


def partial_dir(path) -> Path:
    """Where a resumable run builds the replacement of the output ``path``: ``.NAME.primo-partial``
    beside it (a fixed name, so that ``--resume`` finds it after an interruption)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    return parent / f".{path.name}{PARTIAL_SUFFIX}"


def start_partial_dir(path, *, command: str, overwrite: bool | None = None, inputs=None) -> Path:
    """Begin the replacement of the earlier output ``path`` of a long, resumable run (``primo
    train --overwrite``): ``path`` is checked as :func:`atomic_dir` checks it and left untouched;
    the new output is built in :func:`partial_dir` and put in its place by
    :func:`publish_partial_dir` once complete. An earlier partial directory (an interrupted run)
    is replaced only with ``overwrite``, and never one primo did not write."""
    path = Path(path)
    command, overwrite, inputs = _rules(path, command, overwrite, inputs)
    check_output_dir(path, command, overwrite=overwrite, inputs=inputs)
    part = partial_dir(path)
    if part.exists() or part.is_symlink():
        marker = None if part.is_symlink() or not part.is_dir() else read_marker(part)
        if marker is None or marker.get("command") != command:
            raise UsageError(f"{part} exists and primo did not write it",
                             hint="move it away: primo builds the new output there")
        if not overwrite:
            raise UsageError(f"an interrupted `primo {command}` run of {path} is in {part}",
                             hint="continue it with `resume`, or pass `overwrite` to start again")
        shutil.rmtree(part)
    try:
        part.mkdir(parents=True)
    except OSError as e:
        raise _cannot_write(path, e) from None
    _default_mode(part, directory=True)
    write_marker(part, command, files=False)
    _BUILDING.add(_resolve(part))
    return part


def resume_partial_dir(path, *, command: str) -> Path | None:
    """The partial directory of an interrupted replacement of ``path`` (see
    :func:`start_partial_dir`), or None when there is none of ``command``'s."""
    part = partial_dir(path)
    if part.is_symlink() or not part.is_dir():
        return None
    marker = read_marker(part)
    if marker is None or marker.get("command") != command:
        return None
    _BUILDING.add(_resolve(part))
    return part


def publish_partial_dir(part, path, *, command: str, overwrite: bool | None = None,
                        inputs=None) -> Path:
    """Put the complete partial directory ``part`` in the place of ``path`` (checked again: it
    may have changed while the run went on); the earlier output is deleted only then."""
    part, path = Path(part), Path(path)
    # the replacement was allowed when the run started (start_partial_dir); a resumed run
    # finishes it without asking again, but never over files primo did not write
    command, _, inputs = _rules(path, command, overwrite, inputs)
    overwrite = True
    write_marker(part, command)
    if path.is_symlink():
        path = Path(os.path.realpath(path))   # written where the link points, as atomic_dir does
    if path.exists():
        check_output_dir(path, command, overwrite=overwrite, inputs=inputs)
        _replace_dir(path, part)
    else:
        os.replace(part, path)
    _BUILDING.discard(_resolve(part))
    return path


def abandon_output_dir(path, *, existed: bool, names=()) -> None:
    """Undo a directory this process claimed or started (:func:`claim_output_dir`,
    :func:`start_partial_dir`) before anything worth keeping was written in it: only the entries
    ``names`` (what the command writes there) and the marker are removed, so that a file anyone
    else put there meanwhile survives; the directory itself goes too when it is then empty and
    was not there before (``existed``). A directory without primo's marker is left alone."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir() or read_marker(path) is None:
        return
    _BUILDING.discard(_resolve(path))
    for name in (*names, OUTPUT_MARKER):
        entry = path / name
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
    if not existed and not any(path.iterdir()):
        path.rmdir()
