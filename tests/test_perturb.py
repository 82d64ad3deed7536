"""The perturbed parameter set (``perturb=(sigma, seed)``): a physics the model was not trained on."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from primo.thermo import vienna
from primo.thermo.simulator import Simulator
from primo.errors import UsageError

SEQ_A = "GATTACAGGCTTACCGATAGCTTAGGCATCGATCGGATTACGATCAGGCTAGCATCGGATACGATTAGCCTAGGATCAGT"
SEQ_B = "TACTGATCCTAGGCTAATCGTATCCGATGCTAGCCTGATCGTAATCCGATCGATGCCTAAGCTATCGGTAAGCCTGTAATC"


def _table(text, name, shape):
    v = [t[2] for t in vienna._tokens(text, name)]
    return np.array([np.nan if x in ("INF", "DEF") else float(x) for x in v]).reshape(shape)


def test_shipped_tables_have_the_symmetries_the_perturbation_keeps():
    import RNA

    text = RNA.parameter_set_dna_mathews2004
    for name, (shape, sym) in vienna.PERTURBED_TABLES.items():
        t = _table(text, name, shape)
        if sym is not None:
            assert np.allclose(t, t.transpose(sym), equal_nan=True), name


def test_noise_has_sigma_keeps_symmetry_and_is_seeded():
    base = vienna._parameter_text((1.96, 0.20), "clipped", "vienna")
    one = vienna._parameter_text((1.96, 0.20), "clipped", "vienna", (0.3, 7))
    again = vienna._parameter_text((1.96, 0.20), "clipped", "vienna", (0.3, 7))
    other = vienna._parameter_text((1.96, 0.20), "clipped", "vienna", (0.3, 8))
    assert one == again and one != other and one != base
    diffs = []
    for name, (shape, sym) in vienna.PERTURBED_TABLES.items():
        t0, t1 = _table(base, name, shape), _table(one, name, shape)
        assert np.array_equal(np.isnan(t0), np.isnan(t1)), name     # INF stays INF
        if sym is not None:
            assert np.allclose(t1, t1.transpose(sym), equal_nan=True), name
        diffs.append((t1 - t0)[~np.isnan(t0)].ravel())
        # enthalpies are kept
        h0, h1 = _table(base, name + "_enthalpies", shape), _table(one, name + "_enthalpies", shape)
        assert np.array_equal(h0, h1, equal_nan=True)
    d = np.concatenate(diffs) / 100.0       # dcal/mol -> kcal/mol
    assert abs(d.std() - 0.3) < 0.02 and abs(d.mean()) < 0.02


def test_energies_move_by_about_sigma_per_parameter_and_sigma_zero_is_none():
    assert vienna.check_perturb((0.0, 5)) is None and vienna.check_perturb(None) is None
    g0 = vienna.dimer_energy(SEQ_A, SEQ_B, temperature=21.0)
    gs = [vienna.dimer_energy(SEQ_A, SEQ_B, temperature=21.0, perturb=(0.3, s))
          for s in range(1, 5)]
    # ~80 stacks each off by ~0.3 kcal/mol: the duplex moves by a few kcal/mol, differently per seed
    assert all(abs(g - g0) < 15 for g in gs) and max(abs(g - g0) for g in gs) > 0.5
    assert max(gs) - min(gs) > 0.5
    assert vienna.dimer_energy(SEQ_A, SEQ_B, temperature=21.0, perturb=(0.0, 1)) == g0
    # the set loaded last does not leak into the next call
    assert vienna.dimer_energy(SEQ_A, SEQ_B, temperature=21.0) == g0


def test_simulator_records_and_rebuilds_the_perturbation():
    sim = Simulator(temperature=40.0, perturb=(0.3, 3))
    d = sim.to_dict()
    assert d["perturb"]["sigma_kcal"] == 0.3 and d["perturb"]["seed"] == 3
    json.dumps(d)
    again = Simulator.from_dict(d)
    assert again.perturb == (0.3, 3)
    assert again.at_temperature(60.0).perturb == (0.3, 3)
    y0 = Simulator(temperature=40.0).yields([SEQ_A], [SEQ_A])
    y1 = sim.yields([SEQ_A], [SEQ_A])
    assert np.isfinite(y1).all() and y0.shape == y1.shape
    assert "perturb" not in Simulator().to_dict()


@pytest.mark.parametrize("bad", [(math.nan, 1), (-0.1, 1), (6.0, 1), (0.3, -1), ("x", 1), 0.3])
def test_bad_perturbation_is_a_usage_error_naming_the_option(bad):
    with pytest.raises(UsageError) as e:
        Simulator(perturb=bad)
    assert e.value.option == "perturb"


def test_cli_refuses_bad_sigma(run_cli, tmp_path):
    res, _, err = run_cli(["simulate", "-m", tmp_path, "-f", tmp_path / "f.h5", "-Q",
                           tmp_path / "q.h5", "-o", tmp_path / "o", "--perturb", "nan"])
    assert res.exit_code == 2 and "--perturb" in err and err.count("\n") == 1
