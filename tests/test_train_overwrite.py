"""``primo train -o MODEL --overwrite`` keeps the earlier model until the new one is complete:
bad input, an error or Ctrl-C during the run leave it as it was, and an interrupted replacement
resumes from the partial directory beside it."""

import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.slow   # three trainings

from primo.io import partial_dir  # noqa: E402

from test_train_cli import TINY, _store  # noqa: E402


def _snapshot(directory):
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """A finished model and the store it was trained on."""
    from primo.cli import main

    base = tmp_path_factory.mktemp("overwrite")
    store = base / "F.h5"
    _store(store)
    out = base / "MODEL"
    res = main(["train", "-f", str(store), "-o", str(out), "-j", "1", *TINY])
    assert res.exit_code == 0, res.error
    return store, out


def _copy(earlier, tmp_path):
    store, out = earlier
    model = tmp_path / "MODEL"
    shutil.copytree(out, model)
    return store, model


def test_bad_input_leaves_the_earlier_model(earlier, tmp_path, run_cli):
    store, model = _copy(earlier, tmp_path)
    before = _snapshot(model)
    bad = tmp_path / "nan.h5"
    shutil.copy(store, bad)
    with h5py.File(bad, "r+") as f:
        f["features"][3, 0] = np.nan
    res, _, err = run_cli(["train", "-f", bad, "-o", model, "--overwrite", "-j", "1", *TINY])
    assert res.exit_code == 1 and len(err.strip().splitlines()) == 1, err
    assert _snapshot(model) == before
    assert not partial_dir(model).exists()
    # an unreadable store: the same
    unreadable = tmp_path / "broken.h5"
    unreadable.write_bytes(b"not an HDF5 file")
    res, _, err = run_cli(["train", "-f", unreadable, "-o", model, "--overwrite", *TINY])
    assert res.exit_code == 1, err
    assert _snapshot(model) == before and not partial_dir(model).exists()


def test_interrupted_replacement_keeps_the_model_and_resumes(earlier, tmp_path, run_cli):
    from primo.training.trainer import train
    from test_train_cli import _tiny_settings

    store, model = _copy(earlier, tmp_path)
    before = _snapshot(model)

    def stop(row):
        if row["round"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(store, model, _tiny_settings(), overwrite=True, on_round=stop)
    assert _snapshot(model) == before            # the earlier model, untouched
    part = partial_dir(model)
    state = json.loads((part / "checkpoint" / "state.json").read_text())
    assert state["round"] == 1
    # a new run without --overwrite must not silently drop the interrupted one
    res, _, err = run_cli(["train", "-f", store, "-o", model, *TINY])
    assert res.exit_code == 2, err
    res, _, err = run_cli(["train", "-f", store, "-o", model, "--resume", "-j", "1"])
    assert res.exit_code == 0, err
    assert not part.exists()
    card = json.loads((model / "card.json").read_text())
    assert card["training"]["rounds_completed"] == 2
    assert _snapshot(model) != before


def test_failed_run_into_a_new_directory_leaves_nothing(tmp_path, run_cli):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"not an HDF5 file")
    res, _, err = run_cli(["train", "-f", bad, "-o", tmp_path / "NEW", *TINY])
    assert res.exit_code == 1, err
    assert not (tmp_path / "NEW").exists()
    empty = tmp_path / "EMPTY"
    empty.mkdir()
    res, _, err = run_cli(["train", "-f", bad, "-o", empty, *TINY])
    assert res.exit_code == 1, err
    assert empty.is_dir() and not any(empty.iterdir())
