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
