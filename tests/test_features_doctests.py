"""The examples in the features modules' docstrings run as tests."""

import doctest

import pytest

import primo.features.store


@pytest.mark.parametrize("module", [primo.features.store])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
