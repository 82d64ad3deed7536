"""Skips that must not be silent in CI.

A test that cannot run here (a missing compiled extension, a different version of a reference
tool) is skipped on a developer's machine, but under CI (``CI=true``, set by ``.ci/run``) it fails
with the same reason: CI must test it, or say why it could not.
"""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(why: str, *, allow_module_level: bool = False) -> None:
    """Skip with ``why``; under CI, fail with it instead."""
    if under_ci():
        pytest.fail(f"cannot run under CI: {why}", pytrace=False)
    pytest.skip(why, allow_module_level=allow_module_level)
