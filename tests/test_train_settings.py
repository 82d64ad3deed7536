"""The training settings in one place (primo.training.settings): bounds and choices checked in
library terms, the rules that resolve what a user gave, and a command line generated from them
that holds no default of its own. TensorFlow-free."""

import dataclasses
import math

import click
import pytest

from primo.errors import UsageError
from primo.training.settings import (DEFAULT_TRAIN_TEMPERATURE_C, TrainSettings, field_kind,
                                     field_options)


def test_defaults_pass_and_every_number_is_bounded_and_finite():
    TrainSettings().check()
    numeric = [f for f in dataclasses.fields(TrainSettings)
               if field_kind(f) in ("int", "float") and f.metadata]
    assert len(numeric) > 40
    for f in numeric:
        for bad in (math.nan, math.inf, -math.inf, 10 ** 12, -(10 ** 12)):
            with pytest.raises(UsageError) as e:
                TrainSettings(**{f.name: bad}).check()
            assert e.value.option == f.name and f"--{f.name}" not in str(e.value)
            assert "\n" not in str(e.value)


def test_choices_and_types():
    for name, bad in (("encoder_optimizer", "adamx"), ("objective", "contrastive"),
                      ("predictor", "transformer"), ("relaxation", "hard"),
                      ("context", "none"), ("steps", 2.5), ("steps", True), ("keep_best", "yes"),
                      ("neighbors", "many")):
        with pytest.raises(UsageError) as e:
            TrainSettings(**{name: bad}).check()
        assert e.value.option == name
    TrainSettings(encoder_optimizer="Adam", neighbors="auto", margin=None).check()


def test_rules_between_fields():
    with pytest.raises(UsageError, match="cannot both be 0"):
        TrainSettings(seed_pairs=0, sim_pairs=0).check()
    with pytest.raises(UsageError) as e:
        TrainSettings(sim_similar_fraction=0.7, sim_near_fraction=0.5).check()
    assert e.value.option == "sim_near_fraction"


def test_a_threshold_given_selects_the_papers_global_threshold():
    assert TrainSettings.from_options().neighbors == "auto"
    s = TrainSettings.from_options(threshold=50.0)
    assert s.neighbors is None and s.threshold == 50.0
    s = TrainSettings.from_options(threshold="auto", threshold_quantile=0.1)
    assert s.neighbors is None and s.threshold is None
    with pytest.raises(UsageError) as e:
        TrainSettings.from_options(neighbors=5, threshold=50.0)
    assert e.value.option == "neighbors"
    # changes of given settings follow the same rule
    base = TrainSettings(rounds=3)
    s = TrainSettings.from_options(base=base, threshold_quantile=0.2)
    assert s.rounds == 3 and s.neighbors is None


def test_papers_method_and_its_clashes():
    s = TrainSettings.from_options(paper=True, rounds=2)
    assert (s.threshold, s.neighbors, s.objective, s.keep_best) == (75.0, None, "paper", False)
    assert s.hybridization_c == s.train_temperature_c == 21.0
    for bad in ({"neighbors": 5}, {"objective": "rank"}, {"predictor": "scan"},
                {"train_temperature_c": 40.0}):
        with pytest.raises(UsageError) as e:
            TrainSettings.from_options(paper=True, **bad)
        assert e.value.option == "paper"


def test_the_two_temperatures_are_resolved_once():
    s = TrainSettings()
    s.resolve_temperatures()
    assert s.hybridization_c == 21.0
    assert s.train_temperature_c == max(DEFAULT_TRAIN_TEMPERATURE_C or 21.0, 21.0)
    s = TrainSettings(hybridization_c=90.0)
    s.resolve_temperatures()
    assert s.train_temperature_c == 90.0          # never below the hybridization temperature
    s = TrainSettings()
    s.resolve_temperatures(simulator_temperature=37.0)   # a given simulator trains and hybridizes
    assert s.hybridization_c == s.train_temperature_c == 37.0
    with pytest.raises(UsageError) as e:
        TrainSettings(hybridization_c=120.0).resolve_temperatures()
    assert e.value.option == "hybridization_c"


def test_the_command_line_is_generated_from_the_settings():
    from primo.cli.train import cli

    params = {p.name: p for p in cli.params}
    for f, meta in field_options():
        p = params[f.name]
        assert p.default is None, f"{f.name}: the command line holds no default of its own"
        assert p.help == meta["help"]
    # bounds and choices come from the settings
    assert params["steps"].type.min == 1
    assert isinstance(params["encoder_optimizer"].type, click.Choice)
    assert params["hybridization_c"].opts == ["--anneal-to"]
    assert params["neighbors"].opts == ["--similar-neighbors"]
    # old spellings: hidden options of their own that set the renamed one
    assert params["rounds"].opts == ["--rounds"]
    for old in ("epochs", "temperature", "neighbors"):
        assert params["renamed_" + old].hidden and params["renamed_" + old].opts == ["--" + old]
