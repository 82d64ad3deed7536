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


# ------------------------------------------------------------------------------ AnalyzeSettings
import dataclasses
import pathlib

import pytest

from primo.errors import UsageError

ADIR = pathlib.Path(__file__).parent / "data" / "analyze"


def test_the_defaults_are_the_libraries_own():
    from primo import reads as R
    from primo.workflows.analyze import DEFAULT_MAP_KS
    from primo.workflows.analyze_settings import AnalyzeSettings

    s, rs = AnalyzeSettings(), R.ReadStructure()
    assert (s.prefix_length, s.max_ip_mismatches, s.max_barcode_mismatches) == (
        rs.prefix_length, rs.max_ip_mismatches, rs.max_barcode_mismatches)
    assert (s.chunksize, s.min_yield, s.allow_low_yield, s.paired) == (
        R.DEFAULT_CHUNKSIZE, R.MIN_YIELD, False, None)
    assert s.map_ks == DEFAULT_MAP_KS and s.k == 100 and s.gallery == 10
    # every field says what it is
    assert all(f.metadata.get("help") for f in dataclasses.fields(s))


@pytest.mark.parametrize("field, value", [
    ("k", 0), ("gallery", -1), ("min_yield", 1.5), ("min_yield", float("nan")),
    ("max_ip_mismatches", 9), ("max_barcode_mismatches", 31), ("prefix_length", -1),
    ("chunksize", 100), ("map_ks", (5, 0)), ("map_ks", 5), ("paired", "yes"), ("k", 2.5)])
def test_a_bad_setting_is_a_usage_error_naming_it(field, value):
    from primo.workflows.analyze_settings import AnalyzeSettings

    with pytest.raises(UsageError) as e:
        AnalyzeSettings(**{field: value})
    assert e.value.option == field and field in str(e.value) and "--" not in str(e.value)


def test_from_options_replaces_given_fields_and_refuses_unknown_ones():
    from primo.workflows.analyze_settings import AnalyzeSettings

    s = AnalyzeSettings.from_options(None, k=5, map_ks=[3, 7],
                                     structure_options={"prefix_length": 0})
    assert (s.k, s.map_ks, s.prefix_length) == (5, (3, 7), 0)
    assert AnalyzeSettings.from_options(s, gallery=0) == dataclasses.replace(s, gallery=0)
    assert AnalyzeSettings.from_options({"paired": True}).paired is True
    assert s.structure_options() == {"prefix_length": 0, "max_ip_mismatches": 2,
                                     "max_barcode_mismatches": 3}
    with pytest.raises(UsageError, match="no setting 'kk'") as e:
        AnalyzeSettings.from_options(None, kk=5)
    assert e.value.option == "kk"


def test_the_command_line_options_come_from_the_settings():
    """Each field has its option, which defaults to "not given" (the dataclass holds the only
    default) and takes its bounds from the field."""
    import click

    from primo.cli.analyze import cli
    from primo.workflows.analyze_settings import AnalyzeSettings

    params = {p.name: p for p in cli.params if isinstance(p, click.Option) and not p.hidden}
    for f in dataclasses.fields(AnalyzeSettings):
        p = params[f.name]
        assert p.help == f.metadata["help"] and p.default in (None, UNSET_OR_NONE), f.name
        if isinstance(p.type, click.IntRange):
            assert (p.type.min, p.type.max) == (f.metadata["lo"], f.metadata["hi"]), f.name
    assert params["k"].opts == ["-k", "--neighbors"]
    assert params["paired"].opts == ["--paired"] and params["paired"].secondary_opts == [
        "--single-end"]
    assert params["chunksize"].opts == ["--chunk-bytes"]


UNSET_OR_NONE = None
try:   # click >= 8.3 spells "no default" UNSET
    from click._utils import UNSET as UNSET_OR_NONE  # noqa: F811
except ImportError:   # pragma: no cover
    pass


def test_help_shows_the_settings_defaults(run_cli):
    res, out, _ = run_cli(["analyze", "--help"])
    text = " ".join(out.split())
    assert res.exit_code == 0
    for shown in ("--min-yield FLOAT RANGE Fraction of reads with IP that must decode to the "
                  "pool. [default: 0.05; 0<=x<=1]", "[default: 25; x>=0]",
                  "[default: 2; 0<=x<=8]", "[default: 3; 0<=x<=30]", "[default: 16M]",
                  "-k, --neighbors K", "[default: 100; x>=1]", "[default: 5, 10, 100; x>=1]",
                  "--gallery N", "[default: 10; x>=0]", "--paired / --single-end",
                  "--allow-low-yield"):
        assert shown in text, shown
    assert "--chunksize" not in text and "--k " not in text and "None" not in text


def _analyze(run_cli, tmp_path, *args):
    return run_cli(["analyze", "--pool", ADIR / "database_seqs.csv.gz", ADIR / "reads_R1.fastq.gz",
                    ADIR / "reads_R2.fastq.gz", "-j", "1", "-o", tmp_path / "out", *args])


def test_settings_given_on_the_command_line_reach_the_run(run_cli, tmp_path):
    import json

    res, _, err = _analyze(run_cli, tmp_path, "--single-end", "--chunk-bytes", "64K",
                           "-k", "7", "--distances", ADIR / "distances.csv.gz", "--gallery", "0",
                           "--max-barcode-mismatches", "2")
    assert res.exit_code == 0, err
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["paired"] is False and stats["chunksize"] == 65536
    assert stats["search"]["k"] == 7
    assert stats["read_structure"]["max_barcode_mismatches"] == 2


def test_old_spellings_still_work_with_a_note(run_cli, tmp_path):
    import json

    res, _, err = _analyze(run_cli, tmp_path, "--chunksize", "64K", "--k", "5",
                           "--distances", ADIR / "distances.csv.gz")
    assert res.exit_code == 0, err
    assert "--chunksize is deprecated" in err and "use --chunk-bytes" in err
    assert "--k is deprecated" in err and "use -k/--neighbors" in err
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["chunksize"] == 65536 and stats["search"]["k"] == 5 and stats["paired"] is True


def test_a_bad_setting_on_the_command_line_names_its_flag(run_cli, tmp_path):
    res, _, err = _analyze(run_cli, tmp_path, "--chunk-bytes", "512")
    assert res.exit_code == 2 and "--chunk-bytes" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_api_takes_the_settings(tmp_path):
    import primo
    from primo.workflows.analyze_settings import AnalyzeSettings

    reads = [ADIR / "reads_R1.fastq.gz", ADIR / "reads_R2.fastq.gz"]
    a = primo.analyze(ADIR / "database_seqs.csv.gz", reads, tmp_path / "a",
                      settings=AnalyzeSettings(paired=False))
    b = primo.analyze(ADIR / "database_seqs.csv.gz", reads, tmp_path / "b", paired=False,
                      structure_options={"max_barcode_mismatches": 3})
    assert a.counts.stats["paired"] is False and (a.counts.counts == b.counts.counts).all()
    with pytest.raises(UsageError) as e:
        primo.analyze(ADIR / "database_seqs.csv.gz", reads, tmp_path / "c", k=0)
    assert e.value.option == "k" and not (tmp_path / "c").exists()


# ------------------------------------------------------------------------------ QC options
def test_the_qc_options_come_from_qcconfig(run_cli):
    from primo.oligos.qc import QCConfig
    from primo.settings import cli_fields

    offered = [f.name for f, _ in cli_fields(QCConfig)]
    assert offered == ["gc_min", "gc_max", "max_homopolymer", "primer_match", "max_pool_size"]
    for cmd in (["pool", "build"], ["pool", "check"], ["encode-db"]):
        res, out, _ = run_cli([*cmd, "--help"])
        text = " ".join(out.split())
        assert res.exit_code == 0
        for f in dataclasses.fields(QCConfig):
            if f.metadata.get("cli"):
                shown = "(no limit)" if f.default is None else f"{f.default:g}"
                assert f"{f.metadata['help']} [default: {shown};" in text, (cmd, f.name)


@pytest.mark.parametrize("field, value", [("gc_min", 1.5), ("gc_max", float("nan")),
                                          ("primer_match", 3), ("primer_match", 40),
                                          ("max_pool_size", 0), ("window", 0),
                                          ("max_homopolymer", 6.5)])
def test_a_bad_qc_threshold_is_a_usage_error_naming_it(field, value):
    from primo.oligos.qc import QCConfig

    with pytest.raises(UsageError) as e:
        QCConfig(**{field: value})
    assert e.value.option == field and field in str(e.value) and "--" not in str(e.value)
    with pytest.raises(UsageError, match="gc_min .* is above gc_max") as e:
        QCConfig(gc_min=0.7)
    assert e.value.option == "gc_min"


def test_a_qc_threshold_given_on_the_command_line_is_used(run_cli, tmp_path):
    res, _, err = run_cli(["pool", "check", ADIR / "database_seqs.csv.gz", "--gc-min", "0.7"])
    assert res.exit_code == 2 and "--gc-min" in err and "above gc_max" in err
    res, out, err = run_cli(["pool", "check", ADIR / "database_seqs.csv.gz", "--json",
                             "--max-homopolymer", "3"])
    import json

    assert json.loads(out)["config"]["max_homopolymer"] == 3
