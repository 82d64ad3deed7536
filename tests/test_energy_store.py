"""The energy store (``primo simulate --energy-cache``): free energies reused across runs, the same
numbers bit for bit, never a number from another physics, and no writing into foreign files."""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3

import numpy as np
import pytest

from primo.errors import DataError, UsageError
from primo.features.store import FeatureStore, write_features
from primo.thermo.simulator import Simulator
from primo.thermo.store import APPLICATION_ID, EnergyStore

_rng = np.random.default_rng(11)
A = ["".join(_rng.choice(list("ACGT"), 80)) for _ in range(2)]
Q = A[0][:40] + "".join(_rng.choice(list("ACGT"), 40))     # half A[0]'s feature region


def test_store_gives_the_same_numbers_and_computes_nothing_twice(tmp_path):
    plain = Simulator().free_energies(A, [Q, Q])
    store = EnergyStore(tmp_path / "e.sqlite")
    cold = Simulator(energy_store=store).free_energies(A, [Q, Q])
    assert np.array_equal(cold, plain)
    assert store.hits == 0 and store.computed == 5      # 3 strands, 2 pairs
    store.close()
    again = EnergyStore(tmp_path / "e.sqlite")          # a later run: a new object, the same file
    warm = Simulator(energy_store=again).free_energies(A, [Q, Q])
    assert np.array_equal(warm, plain)                  # bit for bit
    assert again.computed == 0 and again.hits == 5
    assert len(again) == 5


@pytest.mark.parametrize("change", [dict(temperature=40.0), dict(stacks="santalucia"),
                                    dict(na_molar=0.5), dict(perturb=(0.3, 1))])
def test_another_physics_never_reads_a_stored_number(change, tmp_path):
    store = EnergyStore(tmp_path / "e.sqlite")
    Simulator(energy_store=store).free_energies(A[:1], [Q])
    other = Simulator(energy_store=store, **change)
    got = other.free_energies(A[:1], [Q])
    assert store.hits == 0 and store.computed == 6
    assert np.array_equal(got, Simulator(**change).free_energies(A[:1], [Q]))


def test_derived_simulators_share_the_store(tmp_path):
    store = EnergyStore(tmp_path / "e.sqlite")
    sim = Simulator(energy_store=store)
    assert sim.at_temperature(50.0).energy_store is store
    assert sim.derive(na_molar=0.5).energy_store is store
    assert "energy_store" not in json.dumps(sim.to_dict())      # not part of the physics


def test_store_refuses_files_primo_did_not_write(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("my notes\n" * 20)
    with pytest.raises(DataError, match="not a primo energy store"):
        EnergyStore(text)
    assert text.read_text() == "my notes\n" * 20
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    before = other.read_bytes()
    with pytest.raises(DataError, match="not a primo energy store"):
        EnergyStore(other)
    assert other.read_bytes() == before
    with pytest.raises(UsageError, match="does not exist"):
        EnergyStore(tmp_path / "no" / "e.sqlite")
    made = EnergyStore(tmp_path / "mine.sqlite")
    made.close()
    con = sqlite3.connect(tmp_path / "mine.sqlite")
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(DataError, match="format 99"):
        EnergyStore(tmp_path / "mine.sqlite")
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def _counts(path):
    with gzip.open(path, "rt") as fh:
        return list(csv.DictReader(fh))


def test_simulate_with_the_store_matches_a_run_without_it(tiny_workspace, tmp_path, run_cli):
    ws = tiny_workspace
    with FeatureStore.open(ws.features) as st:
        ids, X, meta = np.asarray(st.ids), st.read(0, 1), st.metadata
    queries = tmp_path / "q.h5"
    write_features(queries, [f"q-{ids[0]}"], X, meta)
    args = ["simulate", "-m", ws.model, "-f", ws.features, "-Q", queries, "--refine", "6",
            "--sample", "2", "--neighbors", "10", "-j", "1", "--seed", "2", "--gallery", "0"]
    cache = tmp_path / "energies.sqlite"
    runs = {}
    for name, extra in (("plain", []), ("cold", ["--energy-cache", cache]),
                        ("warm", ["--energy-cache", cache])):
        res, _, err = run_cli(args + ["-o", tmp_path / name] + extra)
        assert res.exit_code == 0, err
        runs[name] = json.loads((tmp_path / name / "summary.json").read_text())
        assert _counts(tmp_path / name / "counts.csv.gz") == _counts(tmp_path / "plain" /
                                                                    "counts.csv.gz")
        assert _counts(tmp_path / name / "yields.csv.gz") == _counts(tmp_path / "plain" /
                                                                    "yields.csv.gz")
    assert "energy_cache" not in runs["plain"]
    cold, warm = runs["cold"]["energy_cache"], runs["warm"]["energy_cache"]
    assert cold["values_computed"] > 0 and warm["values_computed"] == 0
    assert warm["values_reused"] >= cold["values_computed"] > 0
    # another capture model on the same physics: its energies are a subset of the kinetic's
    res, _, err = run_cli(args + ["-o", tmp_path / "eq", "--energy-cache", cache,
                                  "--capture", "equilibrium"])
    assert res.exit_code == 0, err
    assert json.loads((tmp_path / "eq" / "summary.json").read_text()
                      )["energy_cache"]["values_computed"] == 0


def test_simulate_refuses_a_bad_energy_cache(tiny_workspace, tmp_path, run_cli):
    ws = tiny_workspace
    args = ["simulate", "-m", ws.model, "-f", ws.features, "-Q", ws.features, "--query-id",
            "q", "--refine", "2", "--sample", "0", "-j", "1"]
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    res, _, err = run_cli(args + ["-o", tmp_path / "out", "--energy-cache", notes])
    assert res.exit_code == 1 and "not a primo energy store" in err and str(notes) in err
    assert notes.read_text() == "keep me\n" and not (tmp_path / "out").exists()
    res, _, err = run_cli(args + ["-o", tmp_path / "out", "--energy-cache",
                                  tmp_path / "out" / "e.sqlite"])
    assert res.exit_code == 2 and "inside the output folder" in err
    assert len(err.strip().splitlines()) == 1
