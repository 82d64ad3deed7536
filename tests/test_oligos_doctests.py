"""The docstring examples of primo.oligos run as tests."""

import doctest
import importlib

import pytest

MODULES = ["primo.oligos.layout", "primo.oligos.pool", "primo.oligos.qc", "primo.oligos.probes"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    res = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert res.failed == 0
    if name != "primo.oligos.probes":
        assert res.attempted > 0
