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


@pytest.fixture(scope="session")
def adir():
    """The small analyze data set (ART reads of a 400-document pool; see its README)."""
    return DATA / "analyze"


@pytest.fixture(scope="session")
def pool(adir):
    """The pool of ``adir`` (without its sequences)."""
    from primo.oligos.pool import read_pool

    return read_pool(adir / "database_seqs.csv.gz", sequences=False)


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


class _Workspace:
    pass


@pytest.fixture(scope="session")
def tiny_workspace(tmp_path_factory):
    """A tiny but real pipeline state shared by workflow tests (built once per test process):
    120 bundled demo images, their fashion-embed features, and a model trained for 2 short rounds
    against the real ViennaRNA simulator."""
    from primo.cli import main
    from primo.features.datasets import demo_images

    d = tmp_path_factory.mktemp("tiny")
    ws = _Workspace()
    ws.dir = d
    paths, labels = demo_images(d / "imgs", n=120)
    ws.images = [Path(p) for p in paths]
    ws.labels = labels
    ws.features = d / "f.h5"
    ws.model = d / "model"
    r = main(["extract", str(d / "imgs"), "--model", "fashion-embed", "-o", str(ws.features)])
    assert r.exit_code == 0, r.error
    r = main(["train", "-f", str(ws.features), "-o", str(ws.model), "--threshold", "auto",
              "--rounds", "1", "--steps", "10", "--seed-pairs", "40", "--seed-epochs", "2",
              "--sim-pairs", "20", "--eval-pairs", "10", "--final-eval-pairs", "10",
              "--hidden", "32", "--heldout-rows", "20", "--seed", "3", "-j", "1",
              # the settings this 10-step model was sized with (primo's defaults since then
              # spend its 40 seed pairs on 10 targets and half its few steps on hard negatives)
              "--seed-mutants", "1", "--predictor-epochs", "10", "--hard-negatives", "0",
              "--dissimilar-weight", "1", "--homopolymer", "0"])
    assert r.exit_code == 0, r.error
    return ws
