"""``primo <command> --help`` for every command in COMMANDS: the lazily imported module loads, the
help prints, and every option (and every subcommand's option) says what it does."""

from __future__ import annotations

import click
import pytest

from primo.cli import COMMANDS, LazyGroup, main


def _commands(cmd: click.Command, path: tuple[str, ...]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, path + (name,))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help(name, run_cli):
    top = LazyGroup(name="primo").get_command(click.Context(click.Group("primo")), name)
    assert top is not None, f"{name}: its module primo/cli/{COMMANDS[name][0]}.py does not load"
    for path, cmd in _commands(top, (name,)):
        res, out, err = run_cli([*path, "--help"])
        assert res.exit_code == 0, (path, err)
        assert out.startswith("Usage: primo " + " ".join(path)), (path, out[:200])
        missing = [p.opts[0] for p in cmd.params
                   if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
        assert not missing, f"primo {' '.join(path)}: options without help text: {missing}"


def test_old_spellings_work_for_one_release_with_a_note(run_cli):
    """Options renamed to the vocabulary (DEVELOPING.md) keep their old spelling, hidden, with a
    deprecation note on stderr."""
    from primo.barcodes import BarcodeScheme

    want = BarcodeScheme(seed=7).encode([5])[0]
    for opt in ("--barcode-seed", "--seed"):
        res, out, err = run_cli(["barcodes", "encode", opt, "7"], stdin="5\n")
        assert res.exit_code == 0 and out.strip() == want, err
        assert ("--seed is deprecated" in err) == (opt == "--seed")
        if opt == "--seed":
            assert "use --barcode-seed" in err and err.count("\n") == 1
    bc = BarcodeScheme().encode([3])[0]
    res, out, err = run_cli(["barcodes", "decode", "--max-distance", "30"], stdin=bc + "\n")
    assert res.exit_code == 0 and out.strip() == "3" and "use --max-barcode-mismatches" in err
    res, out, _ = run_cli(["barcodes", "decode", "--help"])
    assert "--max-barcode-mismatches" in out and "--max-distance" not in out
    for cmd, old in (("simulate", "--k"), ("simulate", "--query"), ("analyze", "--chunksize"),
                     ("yields", "--rows"), ("benchmark", "--chunksize")):
        _, out, _ = run_cli([cmd, "--help"])
        assert f"{old} " not in out and f"{old}," not in out, (cmd, old)


def test_an_error_with_an_old_spelling_stays_one_line(run_cli, tmp_path):
    res, _, err = run_cli(["simulate", "-m", tmp_path / "nope", "-f", tmp_path / "f.h5",
                           "--query", tmp_path / "q.h5", "-o", tmp_path / "o"])
    assert res.exit_code != 0 and len(err.strip().splitlines()) == 1, err
