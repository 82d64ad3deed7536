import io
import os
import random
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PRIMO_QUIET", "1")

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir():
    return DATA


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)


@pytest.fixture
def run_cli(capsys):
    """Run ``primo ARGS`` in-process: returns (Result, stdout, stderr)."""
    from primo.cli import main

    def _run(args, stdin: str | None = None):
        out = io.StringIO()
        res = main([str(a) for a in args], stdin=io.StringIO(stdin) if stdin is not None else None,
                   stdout=out)
        cap = capsys.readouterr()
        return res, out.getvalue() + cap.out, cap.err

    return _run
