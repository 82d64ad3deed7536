"""Issue 29: the probe sized to the database (``--probe-nm auto``), as a lab orders it: room for
the strands of PROBE_ROOM_K x k documents, each at pool_nm / N on average."""

import json

import numpy as np
import pytest

from primo.errors import UsageError
from primo.features.store import FeatureStore, write_features
from primo.simulation.capture import (PROBE_ROOM_K, Protocol, auto_probe_nm, size_probe)


def test_the_rule_and_its_arithmetic():
    assert PROBE_ROOM_K == 2
    # the demo: 1,900 documents, k = 100 -> room for 200 documents' strands
    assert auto_probe_nm(1900, 100) == pytest.approx(150 * 200 / 1900)      # 15.8 nM
    # Fashion-MNIST's 60,000 at the paper's 0.5 nM already has that room (2 x k)
    assert auto_probe_nm(60_000, 100) == pytest.approx(0.5)
    # the paper's 1.6 M documents: 0.5 nM gave room for ~5,300 (53 x k); the rule orders less
    assert 1.6e6 * 0.5 / 150 == pytest.approx(5333.3, abs=0.1)
    assert auto_probe_nm(1_600_000, 100) == pytest.approx(0.01875)
    # never more than the whole pool (room for every document), and the pool's own nM scales it
    assert auto_probe_nm(150, 100) == 150.0 and auto_probe_nm(1900, 100, pool_nm=20) == \
        pytest.approx(20 * 200 / 1900)
    with pytest.raises(UsageError, match="automatic probe size needs"):
        auto_probe_nm(0, 100)


def test_size_probe_resolves_and_records():
    p, rule = size_probe(Protocol(pool_nm=150.0), "auto", documents=1900, k=100)
    assert p.probe_nm == pytest.approx(15.789, abs=1e-3) and p.pool_nm == 150.0
    assert rule["rule"] == "auto" and rule["room_k"] == PROBE_ROOM_K
    assert rule["room_documents"] == pytest.approx(200.0) and rule["room_in_k"] == pytest.approx(2.0)
    p, rule = size_probe(Protocol(), None, documents=1900, k=100)
    assert p.probe_nm == 0.5 and rule["rule"] == "protocol"
    assert rule["room_documents"] == pytest.approx(6.33, abs=0.01)   # the paper's 1:300
    p, rule = size_probe(Protocol(), 2.0, documents=1900, k=100)
    assert p.probe_nm == 2.0 and rule["rule"] == "fixed"
    assert size_probe(None, "auto", documents=1900, k=100) == (None, None)   # independent capture
    with pytest.raises(UsageError, match="neither a concentration nor a rule") as e:
        size_probe(Protocol(), "lots", documents=1900, k=100)
    assert e.value.option == "probe_nm"


@pytest.fixture
def one_query(tiny_workspace, tmp_path):
    with FeatureStore.open(tiny_workspace.features) as st:
        ids, X, meta = np.asarray(st.ids), st.read(0, 1), st.metadata
    q = tmp_path / "q.h5"
    write_features(q, [f"q-{ids[0]}"], X, meta)
    return q


def test_simulate_probe_nm_auto(tiny_workspace, one_query, tmp_path, run_cli):
    ws = tiny_workspace
    out = tmp_path / "s"
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", one_query,
                           "-o", out, "--refine", "10", "--sample", "10", "--neighbors", "10",
                           "-j", "1", "--probe-nm", "auto"])
    assert res.exit_code == 0, err
    summ = json.loads((out / "summary.json").read_text())
    n = summ["database"]["documents"]
    want = 150.0 * min(PROBE_ROOM_K * 10, n) / n
    assert summ["capture"]["protocol"]["probe_nm"] == pytest.approx(want)
    probe = summ["capture"]["probe"]
    assert probe["rule"] == "auto" and probe["k"] == 10 and probe["documents"] == n
    assert probe["probe_nm"] == pytest.approx(want) and probe["room_in_k"] == pytest.approx(2.0)
    assert summ["config"]["probe_nm"] == "auto"
    # a number is recorded as a fixed probe; a word that is not a rule is a one-line usage error
    res, _, err = run_cli(["simulate", "-m", ws.model, "-f", ws.features, "-Q", one_query,
                           "-o", tmp_path / "t", "--refine", "5", "--probe-nm", "lots"])
    assert res.exit_code == 2 and "--probe-nm" in err and err.count("\n") == 1
    assert not (tmp_path / "t").exists()
