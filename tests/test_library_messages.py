"""Library errors speak library terms: no message or hint of primo's library (everything but
primo/cli) names a command-line flag. They name the parameter (``option=`` for the one at
fault, `backquoted` names in the text), and the command line writes the flags in their place."""

import ast
import pathlib
import re

import primo

ROOT = pathlib.Path(primo.__file__).parent
ERRORS = {"DataError", "UsageError", "MissingDependencyError", "PrimoError"}
FLAG = re.compile(r"(^|[\s(`'\"/])--[a-z]")


def _flag_messages():
    found = []
    for p in sorted(ROOT.rglob("*.py")):
        if "cli" in p.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in ERRORS:
                continue
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Constant) and isinstance(sub.value, str)
                        and FLAG.search(sub.value)):
                    found.append(f"{p.relative_to(ROOT)}:{sub.lineno}: {sub.value[:60]}")
    return found


def test_no_library_error_names_a_flag():
    assert _flag_messages() == []


def test_the_command_line_writes_flags_for_backquoted_parameters(run_cli, tmp_path):
    from primo.cli import _flags_in

    argv = ["yields", "pairs.csv", "-o", "out.csv"]
    assert _flags_in(argv, "pass `overwrite` to replace it") == "pass --overwrite to replace it"
    assert _flags_in(argv, "`no_such_parameter` stays") == "`no_such_parameter` stays"
    out = tmp_path / "out.csv"
    out.write_text("mine")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("target,query\n" + "A" * 80 + "," + "C" * 80 + "\n")
    res, _, err = run_cli(["yields", pairs, "-o", out])
    assert res.exit_code == 2 and "pass --overwrite" in err and "`" not in err
    assert out.read_text() == "mine"
