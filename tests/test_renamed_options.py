"""One spelling per meaning (issue 28, "One vocabulary"): the options renamed so that a meaning has
one name in every command keep their old spelling for one release, hidden from ``--help``, with a
one-line deprecation note on stderr after the run; the new spelling works without one.

* ``yields --sodium`` -> ``--na-molar`` (as in ``simulate``; mol/L in both);
* ``yields --length`` -> ``--feature-length`` (as in ``pool build``);
* ``train --temperature`` -> ``--anneal-to`` (the hybridization temperature, where the anneal
  ends, as in ``simulate``);
* ``train --neighbors`` -> ``--similar-neighbors`` (the similarity K; ``-k/--neighbors`` is the
  recall K of ``simulate``, ``analyze``, ``benchmark``);
* ``train --epochs`` -> ``--rounds``.
"""

from __future__ import annotations

import json
import types

import click
import pytest

from primo.cli import LazyGroup

DATA = __import__("pathlib").Path(__file__).parent / "data" / "yields"
NOTE = "primo: warning: {old} is deprecated and goes in the next release; use {new}"


def _help_flags(name: str) -> set[str]:
    cmd = LazyGroup(name="primo").get_command(click.Context(click.Group("primo")), name)
    return {o for p in cmd.params if isinstance(p, click.Option) and not p.hidden
            for o in p.opts + p.secondary_opts}


@pytest.mark.parametrize("command,old,new", [
    ("yields", "--sodium", "--na-molar"), ("yields", "--length", "--feature-length"),
    ("train", "--temperature", "--anneal-to"), ("train", "--neighbors", "--similar-neighbors"),
    ("train", "--epochs", "--rounds"),
])
def test_help_lists_only_the_new_spelling(command, old, new, run_cli):
    flags = _help_flags(command)
    assert new in flags and old not in flags
    res, out, _ = run_cli([command, "--help"])
    assert res.exit_code == 0 and new in out
    assert f"{old} " not in out and f"{old}," not in out and f"{old}\n" not in out


def test_one_meaning_one_spelling_across_commands():
    """The hybridization temperature and the Na+ molarity are spelled as simulate spells them;
    the feature length as pool build does; -k/--neighbors is the recall K only."""
    sim = _help_flags("simulate")
    assert {"--anneal-to", "--anneal-from", "--na-molar", "--neighbors"} <= sim
    assert {"--anneal-to", "--similar-neighbors"} <= _help_flags("train")
    assert "--neighbors" not in _help_flags("train") and "--temperature" not in _help_flags("train")
    assert {"--na-molar", "--feature-length"} <= _help_flags("yields")
    pool = LazyGroup(name="primo").get_command(click.Context(click.Group("primo")), "pool")
    assert "--feature-length" in {o for p in pool.commands["build"].params for o in p.opts}


@pytest.mark.parametrize("old,new,value", [("--sodium", "--na-molar", "0.5"),
                                           ("--length", "--feature-length", "0")])
def test_yields_old_spelling_works_and_warns(old, new, value, run_cli, tmp_path):
    runs = {}
    for flag in (new, old):
        out = tmp_path / f"{flag.strip('-')}.csv"
        res, _, err = run_cli(["yields", DATA / "pairs.csv", "-o", out, "-j", "1", flag, value])
        assert res.exit_code == 0, err
        note = NOTE.format(old=old, new=new)
        assert (note in err) == (flag == old), err
        assert "deprecated" not in err or flag == old
        runs[flag] = (out.read_text(), json.loads((tmp_path / f"{out.name}.json").read_text()))
    assert runs[old][0] == runs[new][0]            # the same yields
    assert runs[old][1]["simulator"] == runs[new][1]["simulator"]
    if old == "--sodium":
        assert runs[old][1]["simulator"]["sodium_m"] == 0.5


def test_yields_wrong_length_names_the_new_flag(run_cli, tmp_path):
    res, _, err = run_cli(["yields", DATA / "wrong_length.csv", "-o", tmp_path / "y.csv",
                           "-j", "1"])
    assert res.exit_code == 1 and "--feature-length" in err and "`" not in err


@pytest.fixture
def captured_train(monkeypatch):
    """``primo train`` up to the training: the settings it would train with (the training itself
    is tested in test_train_cli.py)."""
    import primo.training.trainer as trainer

    seen = {}

    def fake_train(features, output, settings, **kw):
        seen["settings"], seen["resume"] = settings, kw.get("resume")
        return types.SimpleNamespace(path=output, rounds_done=0,
                                     card={"threshold": {"value": 1.0}, "metrics": {}})

    monkeypatch.setattr(trainer, "train", fake_train)
    return seen


@pytest.mark.parametrize("old,new,value,field", [
    ("--temperature", "--anneal-to", "30", "hybridization_c"),
    ("--neighbors", "--similar-neighbors", "7", "neighbors"),
    ("--epochs", "--rounds", "3", "rounds"),
])
def test_train_old_spelling_works_and_warns(old, new, value, field, captured_train, run_cli,
                                            tmp_path):
    got = {}
    for flag in (new, old):
        res, _, err = run_cli(["train", "-f", tmp_path / "F.h5", "-o", tmp_path / "M", "-j", "1",
                               flag, value])
        assert res.exit_code == 0, err
        note = NOTE.format(old=old, new=new)
        assert (note in err) == (flag == old), err
        assert err.count("deprecated") == (flag == old)
        got[flag] = captured_train["settings"]
    assert getattr(got[old], field) == getattr(got[new], field) == type(getattr(got[new], field))(
        float(value) if field == "hybridization_c" else int(value))
    assert got[old] == got[new]
    if field == "hybridization_c":   # the training simulator follows it as it does the new name
        assert got[old].train_temperature_c == got[new].train_temperature_c


def test_train_old_spelling_in_an_error_shows_the_new_flag(captured_train, run_cli, tmp_path):
    """An error about a renamed setting names the flag by its new spelling, on one line."""
    res, _, err = run_cli(["train", "-f", tmp_path / "F.h5", "-o", tmp_path / "M",
                           "--neighbors", "5", "--threshold", "2"])
    assert res.exit_code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("primo train: error: --similar-neighbors: neighbors replaces")
    from primo.cli import _flag_of

    assert _flag_of(["train"], "neighbors") == "--similar-neighbors"
    assert _flag_of(["train"], "hybridization_c") == "--anneal-to"
    assert _flag_of(["simulate"], "k") == "--neighbors"


def test_train_resume_takes_the_old_rounds_spelling(captured_train, run_cli, tmp_path):
    res, _, err = run_cli(["train", "-f", tmp_path / "F.h5", "-o", tmp_path / "M", "--resume",
                           "--epochs", "4", "--temperature", "30"])
    assert res.exit_code == 0, err
    assert captured_train["resume"] and captured_train["settings"].rounds == 4
    # the note names what is ignored by its new spelling, and not the rounds
    ignoring = err.split("ignoring")[1].split("\n")[0]
    assert "--anneal-to" in ignoring and "--epochs" not in ignoring and "--rounds" not in ignoring
    assert NOTE.format(old="--epochs", new="--rounds") in err



def test_simulate_no_neighbours_is_a_deprecated_spelling_of_no_neighbors(run_cli):
    """One spelling of 'neighbors' on the command line: the British one stays one release."""
    flags = _help_flags("simulate")
    assert "--no-neighbors" in flags and "--no-neighbours" not in flags
    res, _, err = run_cli(["simulate", "--no-neighbours", "-m", "nowhere", "-f", "x.h5",
                           "-Q", "q.h5", "-o", "out"])
    assert res.exit_code != 0 and "no such option" not in err.lower()
