"""Every docstring example in primo runs as a test: one place, every module that has examples.

The modules are found by their source (a line starting with ``>>>``), so a new example is tested
without being listed here, and a module without examples is not collected for nothing.
"""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

import primo

ROOT = Path(primo.__file__).parent
_EXAMPLE = re.compile(r"^\s*>>> ", re.MULTILINE)


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        if _EXAMPLE.search(path.read_text(encoding="utf-8")):
            parts = path.relative_to(ROOT.parent).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.append(".".join(parts))
    return names


MODULES = _modules_with_examples()


def test_examples_are_found():
    assert len(MODULES) >= 20 and "primo.barcodes.scheme" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    res = doctest.testmod(importlib.import_module(name),
                          optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0
    assert res.attempted > 0, f"{name} has a '>>>' line that doctest does not collect"
