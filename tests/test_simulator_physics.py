"""Physics of the ViennaRNA-backed simulator: matches bind, random pairs do not, monotone trends."""

import csv
import itertools
import math
import warnings

import numpy as np

import pytest

from _ci import skip_or_fail

from primo import constants
from primo.dna import revcomp
from primo.errors import DataError, MissingDependencyError, UsageError
from primo.thermo import Simulator, available_backends, get_simulator, mutate
from primo.thermo import vienna as thermo_vienna
from primo.thermo.equilibrium import GAS_CONSTANT
from primo.thermo.simulator import query_strand, target_strand

DATA = __import__("pathlib").Path(__file__).parent / "data" / "yields"


def _rand(rng, n=80):
    return "".join(rng.choice(list("ACGT"), n))


@pytest.fixture(scope="module")
def sim():
    return Simulator()


@pytest.fixture(scope="module")
def targets():
    rng = np.random.default_rng(7)
    return [_rand(rng) for _ in range(8)]


def test_strand_layout():
    t, q = "A" * 80, "C" * 80
    assert target_strand(t) == t + constants.RP
    assert query_strand(q) == revcomp(q + constants.RP[:6])
    assert len(target_strand(t)) == 98 and len(query_strand(q)) == 86


def test_exact_match_binds(sim, targets):
    y = sim.yields(targets[:4], targets[:4])
    assert np.all(y >= 0.99)


def test_random_pairs_do_not_bind(sim, targets):
    rng = np.random.default_rng(11)
    queries = [_rand(rng) for _ in targets] + [_rand(rng) for _ in targets]
    y = sim.yields(targets + targets, queries)
    assert np.median(y) <= 0.05
    assert np.all((y >= 0) & (y <= 1))


def test_yield_falls_with_mismatch_fraction(sim, targets):
    rng = np.random.default_rng(3)
    fractions = [0.0, 0.3, 0.4, 0.5, 0.7]
    means, medians = [], []
    for f in fractions:
        qs = [mutate(t, f, rng) for t in targets]
        y = sim.yields(targets, qs)
        means.append(float(y.mean()))
        medians.append(float(np.median(y)))
    assert means[0] >= 0.99 and medians[-1] <= 0.05
    assert all(b <= a + 1e-9 for a, b in zip(means, means[1:])), means
    assert means[2] < means[1] and means[3] < means[2] and means[4] < means[3], means


@pytest.fixture(scope="module")
def midrange_pairs(sim, targets):
    """Pairs whose yield at 21 °C is neither ~0 nor ~1 (where trends are visible)."""
    rng = np.random.default_rng(5)
    tt, qq = [], []
    for t in targets:
        for f in (0.4, 0.45, 0.5):
            tt.append(t)
            qq.append(mutate(t, f, rng))
    y = sim.yields(tt, qq)
    keep = [(t, q) for t, q, yi in zip(tt, qq, y) if 0.02 < yi < 0.98]
    assert len(keep) >= 3
    return [t for t, _ in keep], [q for _, q in keep]


def test_higher_temperature_lowers_yields(sim, midrange_pairs):
    """Population trend, and melting of one duplex.

    Single structured pairs can bind *better* a few degrees up, when the strands' own folds melt
    before the duplex does (this is in the model, as in NUPACK); the mean over pairs falls.
    """
    t, q = midrange_pairs
    means = [float(Simulator(temperature=temp).yields(t, q).mean()) for temp in (21.0, 35.0, 50.0)]
    assert means[0] > means[1] > means[2], means
    rng = np.random.default_rng(9)
    target = t[0]
    query = mutate(target, 0.2, rng)
    # an 86-bp duplex with 16 mismatches in 1 M Na+ melts near 85 °C (long DNA: ~100 °C)
    melt = [float(Simulator(temperature=temp).yields([target], [query])[0])
            for temp in (21.0, 70.0, 80.0, 90.0)]
    assert all(b < a for a, b in zip(melt, melt[1:])), melt
    assert melt[0] > 0.99 and melt[-1] < 0.5, melt


def test_higher_concentration_raises_yields(sim, midrange_pairs):
    t, q = midrange_pairs
    y1 = sim.yields(t, q)
    y10 = Simulator(target_conc=1e-8, query_conc=1e-8).yields(t, q)
    assert np.all(y10 > y1)


def test_mass_conserved_and_yield_definition(midrange_pairs):
    t, q = midrange_pairs
    s = Simulator(target_conc=2e-9, query_conc=1e-9)
    eq = s.equilibrium(t, q)
    np.testing.assert_allclose(eq.a + 2 * eq.aa + eq.ab, 2e-9, rtol=1e-12)
    np.testing.assert_allclose(eq.b + 2 * eq.bb + eq.ab, 1e-9, rtol=1e-12)
    np.testing.assert_allclose(s.yields(t, q), eq.ab / 1e-9, rtol=1e-15)


def test_naive_and_cached_give_identical_numbers(midrange_pairs, targets):
    t, q = midrange_pairs
    t, q = t[:3] + targets[:2], q[:3] + targets[:2]
    cached = Simulator().free_energies(t, q)
    naive = Simulator(cache_strands=False).free_energies(t, q)
    np.testing.assert_array_equal(cached, naive)


def test_cache_reused_across_calls(targets):
    s = Simulator()
    s.yields(targets[:2], targets[2:4])
    assert len(s._cache) == 4
    y = s.yields(targets[:2], targets[4:6])
    assert len(s._cache) == 6  # only the two new query strands were added
    np.testing.assert_array_equal(y, Simulator().yields(targets[:2], targets[4:6]))


def test_cross_yields(sim, targets):
    m = sim.cross_yields(targets[:3], targets[:3])
    assert m.shape == (3, 3)
    assert np.all(np.diag(m) > 0.99) and np.all(m[~np.eye(3, dtype=bool)] < 0.5)


@pytest.mark.parametrize("loops,name", [("clipped", "expected_yields.csv"),
                                        ("shipped", "expected_yields_shipped.csv")])
def test_regression_against_stored_yields(loops, name):
    import RNA

    sim = Simulator(loop_enthalpies=loops)
    with open(DATA / name, newline="") as fh:
        rows = list(csv.DictReader(fh))
    y = sim.yields([r["target_features"] for r in rows], [r["query_features"] for r in rows])
    expected = np.array([float(r["duplex_yield"]) for r in rows])
    if RNA.__version__ != "2.8.0":  # the stored yields are exact to ViennaRNA's energy model
        skip_or_fail(f"tests/data/yields/{name} was made with ViennaRNA 2.8.0, this is "
                     f"{RNA.__version__}: install ViennaRNA==2.8.0, or regenerate the file and "
                     f"update this version")
    np.testing.assert_allclose(y, expected, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- the ViennaRNA conventions


def _enumerate_dimer(s1, s2, temperature):
    """Boltzmann sum over every connected structure of s1&s2, by brute-force enumeration."""
    fc = thermo_vienna._context(temperature, 1.0, 2, (1.96, 0.2)).fold_compound(f"{s1}&{s2}")
    seq, cut = s1 + s2, len(s1)
    pairs = {("A", "T"), ("T", "A"), ("G", "C"), ("C", "G"), ("G", "T"), ("T", "G")}
    kt = GAS_CONSTANT * (temperature + 273.15)
    total = 0.0

    def gen(prefix, stack, i):
        nonlocal total
        if i == len(seq):
            if not stack and any(ch == ")" for ch in prefix):
                st = prefix
                # connected: some pair spans the cut
                opens, conn = [], False
                for k, ch in enumerate(st):
                    if ch == "(":
                        opens.append(k)
                    elif ch == ")":
                        conn |= opens.pop() < cut <= k
                if conn:
                    total += math.exp(-fc.eval_structure(st) / kt)
            return
        gen(prefix + ".", stack, i + 1)
        gen(prefix + "(", stack + [i], i + 1)
        if stack:
            j = stack[-1]
            if (seq[j], seq[i]) in pairs and (i - j > 3 or j < cut <= i):
                gen(prefix + ")", stack[:-1], i + 1)

    gen("", [], 0)
    return -kt * math.log(total)


@pytest.mark.parametrize("s1,s2,symmetric", [("GCATGC", "GCATGC", True), ("GGCAAT", "GGCAAT", True),
                                             ("GCGCAT", "ATGCGC", False)])
def test_vienna_dimer_energy_is_the_connected_ensemble_with_symmetry(s1, s2, symmetric):
    """ViennaRNA's dimer free energy = connected-structure sum (+ RT ln 2 for homodimers)."""
    g_enum = _enumerate_dimer(s1, s2, 21.0)
    g = thermo_vienna.dimer_energy(s1, s2, temperature=21.0)
    rt = GAS_CONSTANT * 294.15
    expected = g_enum + (rt * math.log(2) if symmetric else 0.0)
    assert g == pytest.approx(expected, abs=0.02)


def test_duplex_initiation_is_the_santalucia_value():
    s1, s2 = "GCATGCATGC", "GCATGCATGC"[::-1].translate(str.maketrans("ACGT", "TGCA"))
    g_sl = thermo_vienna.dimer_energy(s1, s2, temperature=37.0)
    g_file = thermo_vienna.dimer_energy(s1, s2, temperature=37.0, duplex_init=None)
    # both (1.96 - 1.00) at 37 °C, up to ViennaRNA's 0.01 kcal/mol integer units
    assert g_sl - g_file == pytest.approx(0.96, abs=0.011)


def test_parameters_survive_another_library_loading_its_own():
    import RNA

    t = "ACGTTGCAAGGCTTACCGATAGCTTAGCCATGCAAGTCCGATCGTAGCTAGGCATCGATCAGTCGATGCTAGCATCGTAGC"
    before = thermo_vienna.monomer_energy(t, temperature=21.0)
    RNA.params_load_RNA_Turner2004()  # someone else in this process switches to RNA parameters
    assert thermo_vienna.monomer_energy(t, temperature=21.0) == before


def test_no_connected_structure_gives_zero_yield():
    s = Simulator(feature_length=None, primer="AAAAAA", toehold=0)
    y = s.yields(["A" * 20], ["A" * 20])  # poly-A target vs poly-T probe... binds
    assert y[0] > 0
    y = s.yields(["A" * 20], ["T" * 20])  # poly-A target, poly-A probe: nothing pairs
    assert y[0] == 0.0


# ---------------------------------------------------------------- settings and bad input


def test_to_dict_round_trip():
    s = Simulator(temperature=25.0, target_conc=2e-9, duplex_init=None)
    d = s.to_dict()
    assert d["backend"] == "vienna" and d["temperature_c"] == 25.0
    assert d["duplex_init_source"] == "ViennaRNA dna_mathews2004.par"
    s2 = Simulator.from_dict(d)
    assert s2.to_dict() == d
    assert Simulator().to_dict()["duplex_init_kcal"] == [1.96, 0.2]


def test_backends():
    assert "vienna" in available_backends()
    assert get_simulator("auto").backend in available_backends()
    with pytest.raises(UsageError, match="unknown simulator backend 'foo'") as e:
        get_simulator("foo")
    assert e.value.exit_code == 2 and "vienna" in str(e.value)


@pytest.mark.skipif("nupack" in available_backends(), reason="NUPACK is installed here")
def test_nupack_missing_says_how_to_install():
    with pytest.raises(MissingDependencyError) as e:
        Simulator(backend="nupack")
    msg = str(e.value)
    assert e.value.exit_code == 2 and "\n" not in msg
    assert "nupack.org" in msg and "pip install nupack" in msg and "--backend vienna" in msg


@pytest.mark.parametrize("t,q,match", [
    ("ACGN" + "A" * 76, "A" * 80, "unknown base"),
    ("A" * 79, "A" * 79, "has 79 nt, expected 80"),
    ("A" * 80, "A" * 81, "has 81 nt, expected 80"),
])
def test_bad_sequences(sim, t, q, match):
    with pytest.raises(DataError, match=match) as e:
        sim.yields(["A" * 80, t], ["A" * 80, q])
    assert "record 1" in str(e.value) and e.value.exit_code == 1


def test_any_length_needs_equal_lengths():
    s = Simulator(feature_length=None)
    assert s.yields(["ACGTACGTAC" * 4], ["ACGTACGTAC" * 4])[0] > 0.9
    with pytest.raises(DataError, match="target_features has 40 nt but query_features 41 nt"):
        s.yields(["A" * 40], ["A" * 41])


@pytest.mark.parametrize("kw,match", [
    (dict(temperature=500), "temperature"), (dict(target_conc=0), "concentration"),
    (dict(query_conc=-1e-9), "concentration"), (dict(toehold=30), "toehold"),
    (dict(primer="ACGX"), "unknown base"), (dict(na_molar=0), "na_molar"),
    (dict(na_molar=0.5, sodium=1.0), "disagree"),
])
def test_bad_settings(kw, match):
    with pytest.raises(UsageError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        Simulator(**kw)


def test_sodium_is_the_earlier_name_of_na_molar():
    """Na+ (mol/L) is ``na_molar``, as the protocol spells it; ``sodium=`` works one release more,
    with a DeprecationWarning, and the settings keep their ``sodium_m`` key."""
    with pytest.warns(DeprecationWarning, match="use na_molar"):
        old = Simulator(sodium=0.5)
    new = Simulator(na_molar=0.5)
    assert old.na_molar == new.na_molar == old.sodium == 0.5
    assert old.to_dict() == new.to_dict() and new.to_dict()["sodium_m"] == 0.5
    assert Simulator.from_dict(new.to_dict()).na_molar == 0.5
    with pytest.warns(DeprecationWarning):
        assert Simulator.from_dict(new.to_dict(), sodium=0.2).na_molar == 0.2
    assert Simulator.from_dict(new.to_dict(), na_molar=0.2).na_molar == 0.2
    assert Simulator().na_molar == 1.0


def test_mismatched_batch_sizes(sim):
    with pytest.raises(UsageError, match="2 targets but 1 queries"):
        sim.yields(["A" * 80] * 2, ["A" * 80])
    assert len(sim.yields([], [])) == 0


def test_mutate_is_exact():
    rng = np.random.default_rng(0)
    s = "ACGT" * 20
    for f in (0.0, 0.25, 0.5, 1.0):
        m = mutate(s, f, rng)
        assert sum(a != b for a, b in zip(s, m)) == round(f * 80)
    assert list(itertools.islice(iter(mutate(s, 0, rng)), 3)) == ["A", "C", "G"]


def test_nupack_standard_state_conversion_pieces():
    from primo.thermo import nupack as thermo_nupack

    # NUPACK's water molarity at 37 °C (NUPACK 4 paper, S1.1): 55.14 mol/L
    assert thermo_nupack.water_molarity(37.0) == pytest.approx(55.14, abs=0.005)
    assert thermo_nupack.water_molarity(21.0) > thermo_nupack.water_molarity(37.0)
    # a two-strand free energy in NUPACK's mole-fraction convention -> 1 M: + RT ln rho
    rt = GAS_CONSTANT * 294.15
    g = thermo_nupack._to_molar(np.array([-30.0]), 2, 21.0)
    assert g[0] == pytest.approx(-30.0 + rt * math.log(thermo_nupack.water_molarity(21.0)))
