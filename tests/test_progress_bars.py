"""Issue 29: every step that can take more than ~10 s at scale shows a progress bar (rate, time to
go; silent with ``primo -q`` or off a terminal). These check that the long steps ask
``primo.progress.progress`` for one, and that ``progress=False`` asks for none that shows."""

import pytest

import primo.progress
import primo.thermo.simulator   # imports the helper by name


@pytest.fixture
def bars(monkeypatch):
    """The descriptions of the bars asked for (the bars themselves stay silent)."""
    asked = []
    real = primo.progress.progress

    def recorder(*args, **kw):
        asked.append((kw.get("desc"), bool(kw.get("disable", False))))
        kw["disable"] = True
        return real(*args, **kw)

    monkeypatch.setattr(primo.progress, "progress", recorder)
    monkeypatch.setattr(primo.thermo.simulator, "_progress", recorder)
    return asked


def test_encode_db_shows_a_bar(tiny_workspace, tmp_path, bars):
    from primo.workflows.encode_db import encode_database

    encode_database(tiny_workspace.model, tiny_workspace.features, tmp_path / "pool", qc="warn")
    assert ("encoding", False) in bars


def test_simulate_shows_a_bar_for_each_long_step(tiny_workspace, tmp_path, bars):
    from primo.features.store import FeatureStore, write_features
    from primo.workflows.experiment import ExperimentConfig, run_experiment

    with FeatureStore.open(tiny_workspace.features) as st:
        X, meta = st.read(0, 1), st.metadata
    q = tmp_path / "q.h5"
    write_features(q, ["q-0"], X, meta)
    run_experiment(tiny_workspace.model, tiny_workspace.features, q, tmp_path / "sim",
                   config=ExperimentConfig(refine=5, sample=0, neighbours=False, k=10,
                                           capture="independent", gallery=0), progress=True)
    shown = {d for d, off in bars if not off}
    # distances streamed from the feature store (26 GB at 1.6 M documents), the database encoded,
    # the predictor over every document, the simulator
    assert {"distances", "encoding database", "predicting yields", "yields"} <= shown, bars
    bars.clear()
    run_experiment(tiny_workspace.model, tiny_workspace.features, q, tmp_path / "sim2",
                   config=ExperimentConfig(refine=5, sample=0, neighbours=False, k=10,
                                           capture="independent", gallery=0), progress=False)
    assert all(off for d, off in bars if d in ("distances", "encoding database",
                                              "predicting yields")), bars
