"""primo.simulation's public wiring of one query's capture: the energies along the ramp once
(``query_ramp_energies``), then captures under several protocols (``capture_from_ramp``), equal
to wiring the cascade's functions by hand, as the experiments did."""

from __future__ import annotations

import types

import numpy as np
import pytest

from primo.simulation import (capture_from_ramp, pool_concentrations, protocol_simulator,
                              query_ramp_energies)
from primo.simulation.capture import Protocol
from primo.simulation.cascade import (capture_from_energies, energy_settings, query_energies,
                                      select_documents)
from primo.simulation.search import DatabaseCodes
from primo.thermo.simulator import Simulator

L = 20   # short feature regions: a few hundred ms of ViennaRNA in all


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    n = 12
    codes = rng.integers(0, 4, (n, L), dtype=np.uint8)
    query = "".join("ACGT"[c] for c in codes[3])   # document 3's feature region: its probe pairs with it
    db = DatabaseCodes(np.asarray([f"d{i}" for i in range(n)]), codes, np.arange(n))
    model = types.SimpleNamespace(feature_length=L)   # only its feature length is read
    predicted = rng.random(n)
    abundance = rng.lognormal(0.0, 0.3, n)
    return db, model, query, predicted, abundance


def test_energies_and_capture_equal_the_cascade_wired_by_hand(case):
    db, model, query, predicted, abundance = case
    proto = Protocol(anneal_to=21.0, energy_nodes=2)
    sim = Simulator(temperature=21.0)
    en = query_ramp_energies(model, db, query, proto, sim, capture="anneal", refine=2, must=[3],
                             sample=3, decoys=2, decoy_sample=2, predicted=predicted, rng=5)
    rng = np.random.default_rng(5)
    sel = select_documents(predicted, refine=2, must=[3], sample=3, rng=rng)
    ref = query_energies(db.sequences, query, sel, sim, **energy_settings(proto, "anneal"),
                         decoys=2, decoy_sample=2, feature_length=L, rng=rng)
    assert np.array_equal(en.selection.simulated, sel.simulated) and 3 in sel.simulated
    assert np.array_equal(en.thermo.dg_ab, ref.thermo.dg_ab) and en.n_decoy_rows == 2
    assert np.array_equal(en.donor, ref.donor)
    conc = proto.pool_m / len(abundance) * abundance / abundance.mean()
    assert np.allclose(pool_concentrations(proto, abundance), conc)
    # one set of energies, several protocols (another probe concentration, decoys) and models
    for p, capture in ((proto, "anneal"), (Protocol(anneal_to=21.0, energy_nodes=2, probe_nm=5.0,
                                                    decoys=40), "anneal"),
                       (proto, "equilibrium"), (proto, "independent")):
        got = capture_from_ramp(en, p, sim, abundance, capture=capture)
        want = capture_from_energies(ref, conc, p, sim, capture=capture)
        assert np.array_equal(got.fraction, want.fraction), capture
    # the document that pairs with the probe takes it
    got = capture_from_ramp(en, proto, sim, abundance, capture="anneal")
    assert got.fraction[3] == got.fraction.max() and got.source[3] == 0


def test_the_simulator_is_taken_to_the_protocols_conditions(case):
    db, model, query, predicted, abundance = case
    sim = Simulator(temperature=50.0)
    proto = Protocol(anneal_to=30.0, anneal_from=60.0, energy_nodes=2)
    moved = protocol_simulator(proto, sim)
    assert moved.temperature == 30.0 and moved.na_molar == sim.na_molar
    assert protocol_simulator(proto, moved) is moved
    salt = protocol_simulator(Protocol(anneal_to=30.0, na_molar=0.5), sim)
    assert salt.temperature == 30.0 and salt.na_molar == 0.5
    en = query_ramp_energies(model, db, query, proto, sim, refine=1, must=[3],
                             predicted=predicted, rng=1)
    assert en.thermo.nodes[0] == 30.0 and en.thermo.nodes.max() <= 60.0
    assert list(en.selection.simulated) == sorted({3, int(np.argmax(predicted))})


@pytest.mark.slow
def test_capture_experiment_and_trace_capture_run(tiny_workspace, tmp_path):
    """The two experiments that capture from energies computed once, end to end on a tiny model
    (the 120 bundled documents as database and queries)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    work = tmp_path / "work"
    work.mkdir()
    from primo.features.store import FeatureStore, write_features

    with FeatureStore.open(tiny_workspace.features) as st:   # with the labels mAP@10 needs
        ids, X, meta = list(st.ids), st.read(0, st.n), st.metadata
    labels = np.arange(len(ids)) % 10
    for name in ("fashion_train.h5", "fashion_test.h5"):
        write_features(work / name, ids, X, meta, labels=labels)
    env = {**os.environ, "PRIMO_QUIET": "1", "MPLBACKEND": "Agg"}

    def run(script, *args):
        proc = subprocess.run([sys.executable, str(root / script), *map(str, args)], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    out = tmp_path / "run"
    text = run("experiments/capture_experiment.py", "--work", work, "--model",
               tiny_workspace.model, "-o", out, "--queries", 1, "--refine", 3, "--sample", 3,
               "--decoy-sample", 3, "--ratios", 10, "--decoy-multiples", 1, "--no-peers",
               "-j", 1)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["settings"]) == {"anneal", "equilibrium", "independent", "anneal 1:10",
                                        "anneal decoys 1x"}
    cap = summary["settings"]["anneal decoys 1x"]["capture"]
    assert cap["probe_bound_decoys"] >= 0 and "| primo anneal |" in text
    text = run("experiments/trace_capture.py", "--model", tiny_workspace.model, "--counts",
               out / "counts.npz", "--query", 0, "--work", work, "--refine", 3, "--sample", 3)
    assert "probe on simulated documents" in text and "lock temperatures, neighbours (100)" in text
