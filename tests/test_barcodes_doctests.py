"""The docstring examples of primo.barcodes run as tests."""

import doctest
import importlib

import pytest

MODULES = ["primo.barcodes.scheme", "primo.barcodes.decode", "primo.barcodes.stream",
           "primo.barcodes.parse"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    res = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert res.failed == 0
    assert res.attempted > 0
