"""Settings as data for ``primo analyze`` and the QC options: the dataclass holds every default,
bound and help text once, the command line's options are generated from it, and help shows
no made-up range."""

from __future__ import annotations

import click


def test_an_unbounded_float_option_shows_no_range(run_cli):
    from primo.cli._settings import FiniteFloatRange

    assert FiniteFloatRange()._describe_range() == ""
    assert FiniteFloatRange(0, 1)._describe_range() == "0<=x<=1"
    assert FiniteFloatRange(lo := 0.5)._describe_range() == f"x>={lo}"
    res, out, _ = run_cli(["yields", "--help"])
    assert res.exit_code == 0 and "None" not in out and "FLOAT RANGE" not in out.split(
        "--temperature")[1].split("\n")[0]
    # still refused: NaN and infinities, and values outside bounds
    for bad in ("nan", "inf"):
        res, _, err = run_cli(["yields", "x.csv", "-o", "y.csv", "--temperature", bad])
        assert res.exit_code == 2 and "finite" in err


def test_a_bounded_float_still_shows_its_range():
    t = click.FloatRange(0, 1)
    from primo.cli._settings import FiniteFloatRange

    assert FiniteFloatRange(0, 1).name == t.name
