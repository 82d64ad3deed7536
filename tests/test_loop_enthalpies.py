"""ViennaRNA's DNA loop enthalpies: the shipped file's loops gain stability with temperature;
primo's default caps them, so that binding weakens as the anneal's temperature rises."""

import numpy as np
import pytest

from primo.errors import UsageError
from primo.thermo import Simulator, mutate
from primo.thermo import vienna as thermo_vienna


def _random(rng, n, length=80):
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


@pytest.fixture(scope="module")
def strands():
    return _random(np.random.default_rng(11), 6)


def test_clipping_changes_only_the_loops_that_gain_entropy():
    changed = thermo_vienna.loop_enthalpy_changes()
    assert changed["int21"] == 6125           # every 1x2 loop: dH +25 against dG37 ~ +2.5
    assert changed["int11"] > 1000 and changed["int22"] > 3000
    assert changed["bulge"] == 1 and changed["ML_params"] == 1
    assert "hairpin" not in changed and "internal" not in changed  # already dH <= min(dG37, 0)
    text = thermo_vienna._parameter_text((1.96, 0.20), "clipped")
    for name in ("int11", "int21", "int22", "bulge"):
        g = thermo_vienna._tokens(text, name)
        h = thermo_vienna._tokens(text, name + "_enthalpies")
        for (_, _, gv), (_, _, hv) in zip(g, h):
            if "INF" not in (gv, hv):
                assert int(hv) <= min(int(gv), 0)


def test_same_energies_at_37_c(strands):
    """The cap moves enthalpies only: at 37 °C both sets give the same free energies."""
    for s in strands[:3]:
        a = thermo_vienna.monomer_energy(s, temperature=37.0, loops="clipped")
        b = thermo_vienna.monomer_energy(s, temperature=37.0, loops="shipped")
        assert a == pytest.approx(b, abs=1e-6)
    a = thermo_vienna.dimer_energy(strands[0], strands[1], temperature=37.0, loops="clipped")
    b = thermo_vienna.dimer_energy(strands[0], strands[1], temperature=37.0, loops="shipped")
    assert a == pytest.approx(b, abs=1e-6)


def test_single_strands_melt_with_temperature(strands):
    """Clipped: an 80-mer's ensemble free energy at 95 °C is near that of the unfolded strand
    (the ensemble of weak structures keeps it a little below 0: -RT ln Z), not below 60 °C's.

    Shipped, the same strands fold far more stably at 95 °C than at 60 °C (the defect)."""
    for s in strands:
        g60 = thermo_vienna.monomer_energy(s, temperature=60.0, loops="clipped")
        g95 = thermo_vienna.monomer_energy(s, temperature=95.0, loops="clipped")
        assert -3.0 < g95 and g95 > g60 - 0.5, (g60, g95)
    shipped = np.mean([thermo_vienna.monomer_energy(s, temperature=95.0, loops="shipped")
                       - thermo_vienna.monomer_energy(s, temperature=60.0, loops="shipped")
                       for s in strands])
    clipped = np.mean([thermo_vienna.monomer_energy(s, temperature=95.0, loops="clipped")
                       - thermo_vienna.monomer_energy(s, temperature=60.0, loops="clipped")
                       for s in strands])
    assert clipped > 0 > shipped


def test_binding_falls_with_temperature_and_mismatches():
    """Default simulator: a duplex's binding free energy weakens as the temperature rises, and
    at 90 °C fewer mismatches bind more strongly (what the anneal's race turns on)."""
    rng = np.random.default_rng(5)
    base = _random(rng, 4)
    near = [mutate(s, 0.05, rng) for s in base]
    far = [mutate(s, 0.30, rng) for s in base]
    k = {}
    for t in (60.0, 90.0):
        sim = Simulator(temperature=t)
        g = sim.free_energies(base + base, near + far)
        dg = g[:, 4] - g[:, 0] - g[:, 1]        # AB - A - B
        k[t] = dg
    assert np.all(k[90.0] > k[60.0])           # weaker at 90 °C, for every pair
    assert np.all(k[90.0][:4] < k[90.0][4:])   # near neighbours bind more strongly at 90 °C


def test_simulator_setting_recorded_and_old_cards_load_shipped():
    sim = Simulator()
    assert sim.loop_enthalpies == "clipped"
    d = sim.to_dict()
    assert d["loop_enthalpies"] == "clipped"
    assert Simulator.from_dict(d).loop_enthalpies == "clipped"
    assert sim.at_temperature(80.0).loop_enthalpies == "clipped"
    old = {k: v for k, v in d.items() if k != "loop_enthalpies"}
    assert Simulator.from_dict(old).loop_enthalpies == "shipped"
    assert Simulator.from_dict(old, loop_enthalpies="clipped").loop_enthalpies == "clipped"
    with pytest.raises(UsageError, match="loop enthalpy"):
        Simulator(loop_enthalpies="guessed")


def test_switching_sets_in_one_process(strands):
    """The process-global ViennaRNA parameters follow each call's set, in any order."""
    s = strands[0]
    ref = {loops: thermo_vienna.monomer_energy(s, temperature=90.0, loops=loops)
           for loops in ("clipped", "shipped")}
    assert ref["clipped"] > ref["shipped"] + 1.0
    for loops in ("shipped", "clipped", "shipped", "clipped"):
        assert thermo_vienna.monomer_energy(s, temperature=90.0, loops=loops) == ref[loops]


def test_yields_cli_option(run_cli, tmp_path):
    import csv

    from pathlib import Path

    data = Path(__file__).parent / "data" / "yields"
    out = tmp_path / "y.csv"
    res, _, err = run_cli(["yields", data / "pairs.csv", "-o", out, "-j", "1",
                           "--loop-enthalpies", "shipped"])
    assert res.exit_code == 0, err
    with open(out, newline="") as fh, open(data / "expected_yields_shipped.csv",
                                           newline="") as ref:
        got = [float(r["duplex_yield"]) for r in csv.DictReader(fh)]
        want = [float(r["duplex_yield"]) for r in csv.DictReader(ref)]
    np.testing.assert_allclose(got, want, atol=0.05)
    import json

    assert json.loads((tmp_path / "y.csv.json").read_text())["simulator"]["loop_enthalpies"] \
        == "shipped"
    res, _, err = run_cli(["yields", data / "pairs.csv", "-o", tmp_path / "z.csv",
                           "--loop-enthalpies", "guessed"])
    assert res.exit_code == 2 and "guessed" in err
