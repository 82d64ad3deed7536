"""Outputs never lose what a user already has (issue 15, section 1).

Every directory primo writes carries ``.primo-output.json``; an existing directory is replaced
only if it is an earlier output of the same command and ``--overwrite`` is given, never a directory
holding other files, the current directory, or an input of the command.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from primo.errors import UsageError
from primo.io import (OUTPUT_MARKER, atomic_dir, check_output_dir, claim_output_dir, read_marker,
                      write_marker)

DATA = Path(__file__).parent / "data"
ADIR = DATA / "analyze"
PAIRS = DATA / "oligos" / "pairs.csv"


def _one_error_line(err, command):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"primo {command}: error:"), err
    assert "Traceback" not in err
    return lines[0]


def _foreign_dir(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    return out


# every command that writes a directory: (name, args with OUT for the output directory)
DIR_COMMANDS = [
    ("pool build", lambda t, out: ["pool", "build", PAIRS, "-o", out]),
    ("analyze", lambda t, out: ["analyze", "--pool", ADIR / "database_seqs.csv.gz",
                                ADIR / "reads_R1.fastq.gz", "-o", out, "-j", "1"]),
    ("encode-db", lambda t, out: ["encode-db", "-m", t / "model", "-f", t / "f.h5", "-o", out]),
    ("benchmark", lambda t, out: ["benchmark", "-f", t / "f.h5", "-Q", t / "q.h5", "-o", out]),
    ("simulate", lambda t, out: ["simulate", "-m", t / "model", "-f", t / "f.h5", "-Q", t / "q.h5",
                                 "-o", out]),
    ("train", lambda t, out: ["train", "-f", t / "f.h5", "-o", out]),
    ("demo", lambda t, out: ["demo", "--quick", "-o", out]),
]


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("command,args", DIR_COMMANDS, ids=[c[0] for c in DIR_COMMANDS])
def test_foreign_directory_survives(run_cli, tmp_path, command, args, overwrite):
    out = _foreign_dir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    res, _, err = run_cli(args(tmp_path, out) + (["--overwrite"] if overwrite else []))
    assert res.exit_code == 2 and isinstance(res.error, UsageError)
    line = _one_error_line(err, command)
    assert "holds files primo did not write (thesis.txt)" in line
    assert "choose a new directory" in line
    assert (out / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in out.iterdir()) == ["thesis.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary directory left


def test_earlier_output_needs_overwrite_and_other_commands_output_is_kept(run_cli, tmp_path):
    out = tmp_path / "p"
    assert run_cli(["pool", "build", PAIRS, "-o", out])[0].exit_code == 0
    marker = read_marker(out)
    assert marker["command"] == "pool build" and "database_seqs.csv.gz" in marker["files"]
    assert marker["provenance"]["command"].startswith("primo pool build")
    # the same command again: only with --overwrite
    res, _, err = run_cli(["pool", "build", PAIRS, "-o", out])
    assert res.exit_code == 2
    assert "an earlier output of `primo pool build`" in err and "pass --overwrite" in err
    # another command never replaces it, --overwrite or not
    res, _, err = run_cli(["analyze", "--pool", ADIR / "database_seqs.csv.gz",
                           ADIR / "reads_R1.fastq.gz", "-o", out, "--overwrite"])
    assert res.exit_code == 2 and "holds the output of `primo pool build`" in err
    # a file the user put into primo's output makes it theirs
    (out / "notes.txt").write_text("mine")
    res, _, err = run_cli(["pool", "build", PAIRS, "-o", out, "--overwrite"])
    assert res.exit_code == 2 and "(notes.txt) beside an earlier output" in err
    (out / "notes.txt").unlink()
    res, _, err = run_cli(["pool", "build", PAIRS, "-o", out, "--overwrite"])
    assert res.exit_code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_an_input_is_never_the_output(run_cli, tmp_path):
    pool = tmp_path / "poolB"
    assert run_cli(["pool", "build", PAIRS, "-o", pool])[0].exit_code == 0
    # turn it into an analyze output (same command), so that only the input rule protects it
    write_marker(pool, "analyze")
    before = {p.name: p.read_bytes() for p in pool.iterdir()}
    res, _, err = run_cli(["analyze", "--pool", pool, ADIR / "reads_R1.fastq.gz", "-o", pool,
                           "--overwrite"])
    assert res.exit_code == 2
    assert f"output directory {pool} is the input {pool} of this command" in _one_error_line(
        err, "analyze")
    assert {p.name: p.read_bytes() for p in pool.iterdir()} == before
    # an output directory holding an input, or inside one
    res, _, err = run_cli(["analyze", "--pool", pool, ADIR / "reads_R1.fastq.gz",
                           "-o", pool / "sub"])
    assert res.exit_code == 2 and "is inside the input" in err
    reads = tmp_path / "run" / "r.fastq.gz"
    reads.parent.mkdir()
    reads.write_bytes((ADIR / "reads_R1.fastq.gz").read_bytes())
    write_marker(reads.parent, "analyze")
    res, _, err = run_cli(["analyze", "--pool", pool, reads, "-o", reads.parent, "--overwrite"])
    assert res.exit_code == 2 and f"holds the input {reads}" in err
    assert reads.exists()


def test_current_directory_is_refused_without_leftovers(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    for out in [".", "./", str(tmp_path), ".."]:
        res, _, err = run_cli(["pool", "build", PAIRS, "-o", out, "--overwrite"])
        assert res.exit_code == 2
        line = _one_error_line(err, "pool build")
        assert "current directory" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert not [p for p in tmp_path.parent.iterdir() if p.name.endswith((".old", ".tmp"))]


def test_output_under_a_file_names_the_output(run_cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    res, _, err = run_cli(["pool", "build", PAIRS, "-o", tmp_path / "afile" / "p"])
    assert res.exit_code == 2
    line = _one_error_line(err, "pool build")
    assert f"cannot write {tmp_path / 'afile' / 'p'}" in line and ".tmp" not in line


def test_single_file_outputs(run_cli, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes((DATA / "yields" / "pairs.csv").read_bytes())
    before = pairs.read_bytes()
    res, _, err = run_cli(["yields", pairs, "-o", pairs, "--overwrite", "-j", "1"])
    assert res.exit_code == 2 and "is the input" in _one_error_line(err, "yields")
    assert pairs.read_bytes() == before
    # the sidecar OUT.json must not be an input either
    side = tmp_path / "y.csv.json"
    side.write_bytes(before)
    res, _, err = run_cli(["yields", side, "-o", tmp_path / "y.csv", "-j", "1"])
    assert res.exit_code == 2 and f"output {side} is the input" in err
    out = tmp_path / "y.csv"
    out.write_text("mine")
    res, _, err = run_cli(["yields", pairs, "-o", out, "-j", "1"])
    assert res.exit_code == 2 and "pass --overwrite" in err and out.read_text() == "mine"
    res, _, err = run_cli(["yields", pairs, "-o", out, "-j", "1", "--overwrite"])
    assert res.exit_code == 0, err
    assert "duplex_yield" in out.read_text().splitlines()[0]
    # query: the probes file may not be the query feature store
    q = tmp_path / "q.h5"
    q.write_bytes(b"not really")
    res, _, err = run_cli(["query", "-m", tmp_path / "model", "-f", q, "-o", q, "--overwrite"])
    assert res.exit_code == 2 and "is the input" in _one_error_line(err, "query")
    assert q.read_bytes() == b"not really"


def test_train_overwrite_never_deletes_foreign_files(run_cli, tmp_path):
    out = _foreign_dir(tmp_path)
    (out / "checkpoint").mkdir()
    res, _, err = run_cli(["train", "-f", tmp_path / "f.h5", "-o", out, "--overwrite"])
    assert res.exit_code == 2 and "primo did not write" in err
    assert (out / "thesis.txt").exists()
    # library callers are held to the same rule
    from primo.training.trainer import train

    with pytest.raises(UsageError, match="primo did not write"):
        train(tmp_path / "f.h5", out, overwrite=True)
    assert (out / "thesis.txt").exists()


def test_demo_interrupted_leaves_nothing_and_keeps_files(tmp_path):
    from primo.workflows.demo import DemoSettings, run_demo

    out = tmp_path / "demo"
    calls = []

    def log(msg):
        calls.append(msg)
        if len(calls) == 2:  # images written, extraction starting
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_demo(out, DemoSettings.quick(), log=log)
    assert list(tmp_path.iterdir()) == []
    # an existing directory with a report.md of the user's is not a demo
    out.mkdir()
    (out / "report.md").write_text("my report")
    (out / "data.csv").write_text("1,2")
    with pytest.raises(UsageError, match="primo did not write"):
        run_demo(out, DemoSettings.quick(), log=lambda m: None)
    assert sorted(p.name for p in out.iterdir()) == ["data.csv", "report.md"]


# ---- the library rules -----------------------------------------------------------------------
def test_marker_lists_files_and_library_replaces_only_marked_dirs(tmp_path):
    d = tmp_path / "OUT"
    with atomic_dir(d, command="analyze") as t:
        (t / "sub").mkdir()
        (t / "sub" / "a.txt").write_text("1")
    m = json.loads((d / OUTPUT_MARKER).read_text())
    assert m["format"] == "primo-output" and m["command"] == "analyze"
    assert m["files"] == ["sub/a.txt"]
    assert check_output_dir(d, "analyze")["command"] == "analyze"   # library: replaceable
    with pytest.raises(UsageError, match="pass `overwrite`"):
        check_output_dir(d, "analyze", overwrite=False)
    with pytest.raises(UsageError, match="output of `primo analyze`"):
        check_output_dir(d, "simulate", overwrite=True)
    (d / "sub" / "b.txt").write_text("2")
    with pytest.raises(UsageError, match=r"\(sub/b.txt\) beside"):
        check_output_dir(d, "analyze", overwrite=True)
    # a broken or foreign marker does not make a directory primo's
    (d / OUTPUT_MARKER).write_text("{not json")
    with pytest.raises(UsageError, match="primo did not write"):
        with atomic_dir(d):
            pass
    assert (d / "sub" / "b.txt").exists()
    # an empty directory is used; a file of the name is refused
    e = tmp_path / "empty"
    e.mkdir()
    with atomic_dir(e) as t:
        (t / "x").write_text("1")
    assert (e / "x").exists() and read_marker(e)["command"] == "python"
    with pytest.raises(UsageError, match="a file of that name exists"):
        check_output_dir(e / "x")


def test_claim_output_dir_keeps_foreign_and_replaces_own(tmp_path):
    d = tmp_path / "M"
    claim_output_dir(d, command="train")
    assert read_marker(d)["files"] is None   # being written in place: not yet listed
    (d / "w.bin").write_text("1")
    write_marker(d, "train")   # finished: its files listed
    claim_output_dir(d, command="train", overwrite=True)
    assert [p.name for p in d.iterdir()] == [OUTPUT_MARKER]
    os.remove(d / OUTPUT_MARKER)
    (d / "x").write_text("1")
    with pytest.raises(UsageError):
        claim_output_dir(d, command="train", overwrite=True)
    assert (d / "x").exists()


def test_benchmark_replaces_its_earlier_output_only_with_overwrite(run_cli, tmp_path):
    good = DATA / "broken" / "hdf5" / "good.h5"
    out = tmp_path / "b"
    args = ["benchmark", "-f", good, "-Q", good, "-o", out, "--peers", "none"]
    assert run_cli(args + ["--neighbors", "3"])[0].exit_code == 0
    assert read_marker(out)["command"] == "benchmark"
    res, _, err = run_cli(args + ["--neighbors", "4"])
    assert res.exit_code == 2 and "pass --overwrite" in err
    assert json.loads((out / "summary.json").read_text())["parameters"]["k"] == 3
    res, _, err = run_cli(args + ["--neighbors", "4", "--overwrite"])
    assert res.exit_code == 0, err
    assert json.loads((out / "summary.json").read_text())["parameters"]["k"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.parametrize("command,args", [
    ("encode-db", lambda t: ["encode-db", "-m", t / "model", "-f", t / "f.h5", "-o", t / "model"]),
    ("simulate", lambda t: ["simulate", "-m", t / "model", "-f", t / "f.h5", "-Q", t / "q.h5",
                            "-o", t / "model" / "sim"]),
    ("benchmark", lambda t: ["benchmark", "-f", t / "f.h5", "-Q", t / "q.h5", "-o", t]),
    ("train", lambda t: ["train", "-f", t / "model" / "f.h5", "-o", t / "model"]),
], ids=["encode-db", "simulate", "benchmark", "train"])
def test_inputs_of_other_commands_are_never_the_output(run_cli, tmp_path, monkeypatch, command,
                                                        args):
    monkeypatch.chdir(tmp_path.parent)
    (tmp_path / "model").mkdir()
    write_marker(tmp_path / "model", command)   # even an output of the same command
    write_marker(tmp_path, command)
    res, _, err = run_cli(args(tmp_path) + ["--overwrite"])
    assert res.exit_code == 2
    line = _one_error_line(err, command)
    assert "the input" in line and "of this command" in line, line
    assert (tmp_path / "model" / OUTPUT_MARKER).exists()


def _unwritable_dir(tmp_path):
    """A directory where files cannot be created: a read-only one, or (as root, who may write
    anywhere) /sys, where the kernel refuses new files."""
    import tempfile

    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro
    try:
        fd, name = tempfile.mkstemp(dir="/sys")
    except OSError:
        return Path("/sys")
    os.close(fd)
    os.unlink(name)
    pytest.skip("no unwritable directory here")


def test_unwritable_folder_names_the_output(run_cli, tmp_path):
    ro = _unwritable_dir(tmp_path)
    try:
        res, _, err = run_cli(["yields", DATA / "yields" / "pairs.csv", "-o", ro / "y.csv",
                               "-j", "1"])
        assert res.exit_code == 2
        line = _one_error_line(err, "yields")
        assert f"cannot write {ro / 'y.csv'}" in line and ".tmp" not in line
        res, _, err = run_cli(["pool", "build", PAIRS, "-o", ro / "p"])
        assert res.exit_code == 2 and f"cannot write {ro / 'p'}" in err and ".tmp" not in err
    finally:
        if ro != Path("/sys"):
            ro.chmod(0o755)


def test_pool_check_flags_never_over_the_pool(run_cli, tmp_path):
    pool = tmp_path / "database_seqs.csv.gz"
    pool.write_bytes((ADIR / "database_seqs.csv.gz").read_bytes())
    before = pool.read_bytes()
    res, _, err = run_cli(["pool", "check", pool, "--flags", pool])
    assert res.exit_code == 2 and "is the input" in _one_error_line(err, "pool check")
    assert pool.read_bytes() == before


def test_building_dir_puts_an_earlier_output_back_on_failure(tmp_path):
    from primo.io import building_dir

    d = tmp_path / "demo"
    with building_dir(d, command="demo") as out:
        assert out == d
        (out / "a.txt").write_text("first")
    assert read_marker(d)["files"] == ["a.txt"]
    with pytest.raises(KeyboardInterrupt):
        with building_dir(d, command="demo") as out:
            assert not (out / "a.txt").exists()   # written in place, from empty
            (out / "b.txt").write_text("half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in d.iterdir()) == [OUTPUT_MARKER, "a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    with pytest.raises(UsageError, match="pass `overwrite`"):
        with building_dir(d, command="demo", overwrite=False):
            pass
    # the user's empty directory stays, empty, after a failure
    e = tmp_path / "empty"
    e.mkdir()
    with pytest.raises(RuntimeError):
        with building_dir(e, command="demo") as out:
            (out / "x").write_text("1")
            raise RuntimeError
    assert e.is_dir() and list(e.iterdir()) == []


def test_extract_never_writes_over_an_input_image(run_cli, tmp_path):
    from PIL import Image

    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    before = img.read_bytes()
    res, _, err = run_cli(["extract", img, "-m", "fashion-embed", "-o", img, "--overwrite"])
    assert res.exit_code == 2 and "is the input" in _one_error_line(err, "extract")
    assert img.read_bytes() == before


# ---- issue 30: files inside inputs, side files, unlisted markers, links -------------------------

def _pool_dir(run_cli, tmp_path):
    pool = tmp_path / "pool"
    assert run_cli(["pool", "build", PAIRS, "-o", pool])[0].exit_code == 0
    return pool


def test_a_file_output_inside_an_input_directory_is_refused(run_cli, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "card.json").write_text('{"mine": 1}')
    q = tmp_path / "q.h5"
    q.write_bytes(b"x")
    res, _, err = run_cli(["query", "-m", model, "-f", q, "-o", model / "card.json",
                           "--overwrite"])
    assert res.exit_code == 2 and isinstance(res.error, UsageError)
    assert f"is inside the input {model}" in _one_error_line(err, "query")
    assert (model / "card.json").read_text() == '{"mine": 1}'
    assert sorted(p.name for p in model.iterdir()) == ["card.json"]

    pool = _pool_dir(run_cli, tmp_path)
    before = (pool / "manifest.json").read_bytes()
    for extra in ([], ["--overwrite"]):
        res, _, err = run_cli(["pool", "check", pool, "--flags", pool / "manifest.json", *extra])
        assert res.exit_code == 2, err
        assert f"is inside the input {pool}" in _one_error_line(err, "pool check")
        assert (pool / "manifest.json").read_bytes() == before


def test_pool_check_flags_needs_overwrite_and_writes_through_a_link(run_cli, tmp_path):
    pool = _pool_dir(run_cli, tmp_path)
    flags = tmp_path / "flags.csv"
    flags.write_text("mine")
    res, _, err = run_cli(["pool", "check", pool, "--flags", flags])
    assert res.exit_code == 2 and "pass --overwrite" in _one_error_line(err, "pool check")
    assert flags.read_text() == "mine"
    link = tmp_path / "link.csv"
    link.symlink_to(flags)
    res, _, err = run_cli(["pool", "check", pool, "--flags", link])
    assert res.exit_code == 2 and f"output {link} exists" in err and flags.read_text() == "mine"
    res, _, err = run_cli(["pool", "check", pool, "--flags", link, "--overwrite"])
    assert res.exit_code == 0, err
    assert link.is_symlink() and flags.read_text().startswith("index,ImageID")
    # a link into the pool is the pool's file
    bad = tmp_path / "bad.csv"
    bad.symlink_to(pool / "manifest.json")
    before = (pool / "manifest.json").read_bytes()
    res, _, err = run_cli(["pool", "check", pool, "--flags", bad, "--overwrite"])
    assert res.exit_code == 2 and "inside the input" in err
    assert bad.is_symlink() and (pool / "manifest.json").read_bytes() == before


@pytest.mark.parametrize("side", ["probes_idt_order.csv", "probes_manifest.json"])
def test_query_side_files_need_overwrite(run_cli, tmp_path, side):
    (tmp_path / side).write_text("mine")
    q = tmp_path / "q.h5"
    q.write_bytes(b"x")
    res, _, err = run_cli(["query", "-m", tmp_path / "model", "-f", q,
                           "-o", tmp_path / "probes.csv"])
    assert res.exit_code == 2
    line = _one_error_line(err, "query")
    assert f"output {tmp_path / side} exists (written beside" in line and "--overwrite" in line
    assert (tmp_path / side).read_text() == "mine"
    assert not (tmp_path / "probes.csv").exists()


def test_yields_side_file_needs_overwrite(run_cli, tmp_path):
    side = tmp_path / "y.csv.json"
    side.write_text("mine")
    res, _, err = run_cli(["yields", DATA / "yields" / "pairs.csv", "-o", tmp_path / "y.csv",
                           "-j", "1"])
    assert res.exit_code == 2 and f"output {side} exists" in _one_error_line(err, "yields")
    assert side.read_text() == "mine" and not (tmp_path / "y.csv").exists()


def test_every_file_written_under_a_command_policy_is_checked(tmp_path):
    """A side file a command did not declare passes the same rules (primo.io.atomic_file)."""
    from primo.io import atomic_file, output_policy, write_json

    mine = tmp_path / "notes.json"
    mine.write_text("mine")
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "data.csv").write_text("x")
    with output_policy("x", tmp_path / "out.csv", file=True, inputs=[inp]):
        with pytest.raises(UsageError, match="pass `overwrite`"):
            write_json(mine, {})
        with pytest.raises(UsageError, match="inside the input"):
            with atomic_file(inp / "data.csv"):
                pass
        write_json(tmp_path / "new.json", {"a": 1})   # a new file is fine
    assert mine.read_text() == "mine" and (inp / "data.csv").read_text() == "x"
    with output_policy("x", tmp_path / "out.csv", file=True, overwrite=True, inputs=[inp]):
        write_json(mine, {})
        with pytest.raises(UsageError, match="inside the input"):
            write_json(inp / "data.csv", {})
    assert mine.read_text().strip() == "{}"
    # inside a directory being built, files are the directory's
    with output_policy("x", tmp_path / "d", inputs=[inp]):
        with atomic_dir(tmp_path / "d") as t:
            (t / "a.json").write_text("1")
            write_json(t / "a.json", {})
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "d", "in", "new.json", "notes.json"]


@pytest.mark.parametrize("files", [None, "a.txt", [1, 2], {"a": 1}])
def test_a_marker_that_lists_no_files_protects_the_directory(tmp_path, files):
    d = tmp_path / "M"
    d.mkdir()
    (d / "thesis.txt").write_text("years of work")
    (d / OUTPUT_MARKER).write_text(json.dumps({"format": "primo-output", "format_version": 1,
                                               "command": "train", "files": files}))
    with pytest.raises(UsageError, match="does not list its files"):
        check_output_dir(d, "train", overwrite=True)
    with pytest.raises(UsageError, match="does not list its files"):
        claim_output_dir(d, command="train", overwrite=True)
    with pytest.raises(UsageError, match="does not list its files"):
        with atomic_dir(d, command="train", overwrite=True):
            pass
    assert (d / "thesis.txt").read_text() == "years of work"


def test_overwrite_through_a_link_replaces_the_target_and_keeps_the_link(run_cli, tmp_path):
    """``-o link --overwrite``, link -> an earlier output: the output is replaced where the link
    points (DEVELOPING.md, "Outputs"); the link stays; a link to anything else is refused."""
    real = tmp_path / "runs" / "p1"
    real.parent.mkdir()
    assert run_cli(["pool", "build", PAIRS, "-o", real])[0].exit_code == 0
    link = tmp_path / "latest"
    link.symlink_to(real, target_is_directory=True)
    res, _, err = run_cli(["pool", "build", PAIRS, "-o", link])
    assert res.exit_code == 2 and "pass --overwrite" in err
    old = read_marker(real)["provenance"]["command"]
    res, _, err = run_cli(["pool", "build", PAIRS, "-o", link, "--overwrite",
                           "--name-prefix", "second"])
    assert res.exit_code == 0, err
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert "second" in read_marker(real)["provenance"]["command"] != old
    assert sorted(p.name for p in real.parent.iterdir()) == ["p1"]   # nothing left beside it
    foreign = _foreign_dir(tmp_path)
    link2 = tmp_path / "l2"
    link2.symlink_to(foreign, target_is_directory=True)
    res, _, err = run_cli(["pool", "build", PAIRS, "-o", link2, "--overwrite"])
    assert res.exit_code == 2 and "primo did not write" in err
    assert (foreign / "thesis.txt").exists() and link2.is_symlink()
