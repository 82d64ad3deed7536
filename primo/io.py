"""Safe output and shared file helpers.

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
* :func:`open_output`: text output, gzip-compressed (fast level) when the name ends in ``.gz``.
* :func:`open_input`: text input, gzip detected by content (magic bytes), not by name; truncated gzip
  raises :class:`~primo.errors.DataError` naming the file.
* :func:`provenance`: the primo version and command line, recorded in every output.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import dataclasses
import datetime as _dt
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

from . import __version__
from .errors import DataError, UsageError, shorten

__all__ = [
    "atomic_file", "atomic_dir", "open_output", "open_input", "is_gzip", "provenance",
    "set_command", "write_json", "json_default", "read_csv_rows", "read_id_table", "gc_paused",
    "GZIP_LEVEL",
    "OUTPUT_MARKER", "output_policy", "check_output_dir", "check_output_file", "claim_output_dir",
    "building_dir", "read_marker", "write_marker", "partial_dir", "start_partial_dir",
    "resume_partial_dir", "publish_partial_dir", "abandon_output_dir", "add_marker_note", "default_permissions", "path_inside",
    "spreadsheet_safe", "check_zip_size", "ZIP_LIMIT",
]

GZIP_LEVEL = 3  # fast; level 9 is several times slower for a few % smaller files

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


# ---- names read from data files: never outside their folder ------------------------------------

def path_inside(base, name, *, what: str = "file name", path=None, line=None, record=None,
                follow_links: bool = True) -> Path:
    """``base / name``, refused (:class:`DataError`) when ``name`` leaves the folder ``base``.

    ``name`` comes from a data file (a document ID, a manifest's file name, a query ID) that a
    user may have received from someone else: an absolute path, a ``..`` that climbs out of
    ``base``, a NUL byte or (``follow_links=True``) a symbolic link inside ``base`` that points
    out of it is refused. ``path``/``line``/``record`` say where ``name`` was read (the error names
    them, else ``base``). ``follow_links=False`` checks the name only: links the folder's owner
    put in it are followed (a folder of pictures linked from elsewhere).
    """
    base = Path(base)
    text = str(name)
    where = dict(path=path if path is not None else base, line=line, record=record)
    if "\0" in text or os.path.isabs(text):
        raise DataError(f"{what} {shorten(text, 60)} is not a name inside {base}", **where,
                        hint="names in data files are relative to their folder")
    joined = Path(os.path.normpath(os.path.join(os.path.abspath(base), text)))
    root = Path(os.path.normpath(os.path.abspath(base)))
    if joined != root and root not in joined.parents:
        raise DataError(f"{what} {shorten(text, 60)} leaves the folder {base}", **where,
                        hint="names in data files must stay inside their folder; is the file "
                             "from someone you trust?")
    if follow_links:
        rj, rr = joined.resolve(), root.resolve()
        if rj != rr and rr not in rj.parents:
            raise DataError(f"{what} {shorten(text, 60)} is a link out of the folder {base}",
                            **where, hint="names in data files must stay inside their folder")
    return base / text


ZIP_LIMIT = 2 << 30   # bytes a model archive may inflate to (primo's models are a few MB)


def check_zip_size(path, what: str = "archive", limit: int | None = None) -> None:
    """Refuse (:class:`DataError`) a zip archive (``.keras``, ``.npz``) whose members declare more
    than ``limit`` bytes uncompressed, before anything is inflated (a zip bomb would take minutes
    and gigabytes before the loader failed). Python's zip reader never inflates a member past its
    declared size, so the declared sizes bound what loading can take. A file that is not a zip
    archive is left to the loader to report."""
    import zipfile

    limit = ZIP_LIMIT if limit is None else limit
    try:
        with zipfile.ZipFile(path) as z:
            total = sum(max(int(i.file_size), 0) for i in z.infolist())
            n = len(z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    if total > limit or n > 100_000:
        raise DataError(f"the {what} would inflate to {total / 2**20:,.0f} MiB in {n:,} "
                        f"member(s), more than the {limit / 2**20:,.0f} MiB primo loads "
                        "(a damaged file or a zip bomb)", path=path,
                        hint="restore the file from its source")


def spreadsheet_safe(value: str) -> str:
    """``value`` with a leading ``'`` if a spreadsheet would read it as a formula (it begins
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return; OWASP's CSV-injection rule)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


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


def open_output(path, mode: str = "wt", level: int = GZIP_LEVEL):
    """Open ``path`` for writing text (or bytes with ``mode='wb'``); gzip if it ends in ``.gz``."""
    path = Path(path)
    if path.name.endswith(".gz"):
        # mtime=0 keeps outputs byte-identical between runs
        raw = open(path, "wb")
        gz = gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0)
        if "b" in mode:
            return _Closing(gz, raw)
        return io.TextIOWrapper(_Closing(gz, raw), encoding="utf-8", newline="")
    return open(path, mode, encoding=None if "b" in mode else "utf-8",
                **({} if "b" in mode else {"newline": ""}))


class _Closing(io.RawIOBase):
    """A gzip stream that also closes the underlying file."""

    def __init__(self, gz, raw):
        self._gz, self._raw = gz, raw

    def writable(self):
        return True

    def write(self, b):
        return self._gz.write(b)

    def flush(self):
        if not self._gz.closed:
            self._gz.flush()

    def close(self):
        if not self.closed:
            try:
                self._gz.close()
            finally:
                self._raw.close()
        super().close()


def is_gzip(path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_input(path, what: str = "file"):
    """Open a text file for reading, decompressing gzip detected by its magic bytes."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{what} {path} does not exist")
    if path.is_dir():
        raise UsageError(f"{what} {path} is a directory, expected a file")
    # UTF-8, with or without a byte-order mark (spreadsheets write one); UTF-16 is named here,
    # where the file is known, not by a decoder that does not know it
    if is_gzip(path):
        return io.TextIOWrapper(io.BufferedReader(_CheckedGzip(path), 1 << 16),
                                encoding="utf-8-sig", newline="")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) >= 2 and b"\x00" in head[:64]
                                                   and head.count(b"\x00") * 3 >= len(head)):
        raise DataError(f"{what} is UTF-16 text (or binary), not UTF-8", path=path,
                        hint="save it as UTF-8 text (plain or gzip-compressed)")
    return open(path, "rt", encoding="utf-8-sig", newline="")


class _CheckedGzip(io.RawIOBase):
    """gzip reader whose errors become DataError naming the file."""

    def __init__(self, path):
        self._path = path
        try:  # ISA-L (a dnaio dependency) inflates ~2.5x faster than zlib
            from isal import igzip, isal_zlib

            self._gz = igzip.open(path, "rb")
            self._errors = (EOFError, zlib.error, isal_zlib.error, OSError)
        except ImportError:  # pragma: no cover
            self._gz = gzip.open(path, "rb")
            self._errors = (EOFError, zlib.error, OSError)

    def readable(self):
        return True

    def readinto(self, b):
        try:
            return self._gz.readinto(b)
        except self._errors as e:
            raise DataError(f"gzip data is truncated or corrupt ({e})", path=self._path,
                            hint="re-download or re-copy the file") from None

    def close(self):
        if not self.closed:
            self._gz.close()
        super().close()


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while millions of small objects (CSV rows) are
    made and dropped: they hold no cycles, and the collections it would start cost ~30% of
    reading a 1.6 M-row pool."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def write_json(path, obj) -> None:
    """Write JSON atomically (2-space indent, sorted keys left as given)."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, default=json_default)
            fh.write("\n")


def json_default(o):
    """``json.dump(..., default=json_default)``: numpy scalars and arrays, paths, sets, tuples."""
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_table(path, header, columns) -> None:
    """Write a CSV table (gzip if ``path`` ends in .gz) from parallel ``columns``, atomically."""
    import csv

    with atomic_file(path, suffix=".gz" if str(path).endswith(".gz") else "") as tmp:
        with open_output(tmp) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(header)
            w.writerows(zip(*columns))


def read_csv_rows(path, required: list[str], what: str = "CSV file"):
    """Yield ``(line_number, row_dict)`` from a CSV (plain or gzip) checking the header.

    Raises DataError for an empty file, missing columns, and a row with fewer or more fields than
    the header (a field beyond the header's columns would otherwise be dropped without a word; it
    is usually an unquoted comma). Extra *named* columns are fine. Line numbers are 1-based file
    lines.
    """
    fh = open_input(path, what)
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{what} is empty", path=path,
                            hint=f"expected a header with columns {', '.join(required)}") from None
        except csv.Error as e:
            raise DataError(f"not a CSV file ({e})", path=path, line=1) from None
        except UnicodeDecodeError:
            raise DataError(f"{what} is not text (not UTF-8)", path=path,
                            hint="give a CSV file, plain or gzip-compressed") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{what} lacks column(s) {', '.join(missing)} (has {', '.join(header) or 'none'})",
                            path=path, line=1, hint=f"expected columns {', '.join(required)}")
        pos = {h: i for i, h in enumerate(header)}
        yield from _csv_body(reader, header, pos, path, what)


def read_id_table(path, column: str, *, what: str, convert=str, kind: str = "valid",
                  check=None, hint: str | None = None):
    """An ``ImageID,<column>`` table (plain or gzip: read counts, distances, labels, enrichment)
    -> ``(image_ids, values, lines)``, lists in file order (``lines``: each row's file line).

    ``convert`` turns a value's text into a value; a ValueError becomes a DataError naming the line
    (``"<column> 'x' of ImageID 'a' is not <kind>"``). ``check(value)`` returns what is wrong with
    a value ('' when nothing is). A repeated ImageID raises DataError naming both lines. ``hint``
    goes with the value errors.
    """
    ids, values, lines, first = [], [], [], {}
    for line, row in read_csv_rows(path, ["ImageID", column], what=what):
        iid = row["ImageID"].strip()
        if iid in first:
            raise DataError(f"ImageID {iid!r} appears twice (first on line {first[iid]})",
                            path=path, line=line, hint=f"give one {column} per document")
        first[iid] = line
        text = row[column].strip()
        try:
            v = convert(text)
        except ValueError:
            raise DataError(f"{column} {text!r} of ImageID {iid!r} is not {kind}", path=path,
                            line=line, hint=hint) from None
        problem = check(v) if check is not None else ""
        if problem:
            raise DataError(f"{column} {text!r} of ImageID {iid!r} {problem}", path=path,
                            line=line, hint=hint)
        ids.append(iid)
        values.append(v)
        lines.append(line)
    return ids, values, lines


def _csv_body(reader, header, pos, path, what):
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:   # e.g. a field larger than the csv module's limit (128 KiB)
            raise DataError(f"unreadable CSV row ({e})", path=path, line=reader.line_num,
                            hint="is it the right file? fields hold one sequence or ID") from None
        except UnicodeDecodeError:
            raise DataError(f"{what} holds bytes that are not text (not UTF-8)", path=path,
                            hint="give a CSV file, plain or gzip-compressed") from None
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header) and not (
                len(row) > len(header) and not any(c.strip() for c in row[len(header):])):
            # (empty trailing fields, as spreadsheets write them, are fine)
            extra = "" if len(row) < len(header) else (
                f"; the field(s) beyond the header would be lost: "
                f"{', '.join(shorten(c, 20) for c in row[len(header):][:2])}")
            raise DataError(f"row has {len(row)} fields, header has {len(header)}{extra}",
                            path=path, line=line,
                            hint="quote fields that hold commas, or name every column in the "
                                 "header")
        yield line, {h: row[i] for h, i in pos.items()}
