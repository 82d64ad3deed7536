import subprocess
import sys

import primo
from primo.errors import DataError, UsageError


def test_version(run_cli):
    res, out, err = run_cli(["--version"])
    assert res.exit_code == 0
    assert primo.__version__ in out


def test_help_lists_commands(run_cli):
    res, out, err = run_cli(["--help"])
    assert res.exit_code == 0
    assert "barcodes" in out


def test_unknown_command_is_usage_error(run_cli):
    res, out, err = run_cli(["frobnicate"])
    assert res.exit_code == 2
    assert err.count("\n") == 1 and "error" in err


def test_error_messages_are_one_line():
    e = DataError("bad base 'X'\nsecond line", path="a.csv", line=3, hint="use ACGT")
    assert "\n" not in str(e)
    assert str(e).startswith("a.csv, line 3: bad base")
    assert UsageError("x").exit_code == 2 and DataError("x").exit_code == 1


def test_console_script_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "primo", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and primo.__version__ in r.stdout


def test_library_errors_get_their_option_on_the_command_line(run_cli, tmp_path):
    """A library error names its argument (``option``); the command line adds the flag."""
    import pickle

    e = UsageError("k = 5 is larger than the database (3 documents)", option="k")
    assert "--" not in str(e) and pickle.loads(pickle.dumps(e)).option == "k"
    from primo.cli import _flag_of

    assert _flag_of(["analyze", "--pool", "p"], "k") == "--neighbors"
    assert _flag_of(["benchmark"], "k") == "--neighbors"
    assert _flag_of(["pool", "build", "x.csv"], "chunksize") == "--chunk-rows"
    assert _flag_of(["nonsense"], "k") is None and _flag_of(["yields"], "nope") is None
