"""Robust training (``primo train --physics-perturb SIGMA``): the predictor's pairs simulated
under seeded perturbations of every nearest-neighbor parameter, split among draws; the card's
physics untouched; bad values refused."""

import json

import numpy as np
import pytest

from primo.thermo.simulator import Simulator
from primo.training.pairs import seed_pair_codes, simulate_yields
from primo.training.settings import PHYSICS_SEED_FROM, TrainSettings
from primo.training.trainer import _Run


def _run(tmp_path, **kw):
    s = TrainSettings(seed=5, **kw)
    run = _Run(None, tmp_path, s, Simulator(temperature=60.0), None, None, None)
    run.make_rngs(s.seed)
    return run


def _pairs(n=14):
    return seed_pair_codes(n, np.random.default_rng(1), mutants=2)


def test_each_draw_is_the_card_physics_perturbed(tmp_path):
    t, q = _pairs()
    run = _run(tmp_path, physics_perturb=0.3, physics_draws=3)
    y, e = run.simulate_pairs(t, q)
    assert e is None and y.shape == (len(t),)
    seeds = [seed for seed, _ in run.last_draws]
    idx = np.concatenate([i for _, i in run.last_draws])
    # the draws split the pairs: every pair once, groups within one of each other
    assert sorted(idx.tolist()) == list(range(len(t)))
    sizes = [len(i) for _, i in run.last_draws]
    assert len(sizes) == 3 and max(sizes) - min(sizes) <= 1
    assert len(set(seeds)) == 3 and min(seeds) >= PHYSICS_SEED_FROM
    base = Simulator(temperature=60.0)
    for seed, i in run.last_draws:
        want = simulate_yields(base.derive(perturb=(0.3, seed)), t[i], q[i], None)
        np.testing.assert_array_equal(y[i], want)
    plain = simulate_yields(base, t, q, None)
    # the perturbation moves the yields that are not saturated (by factors, at 0.3 kcal/mol)
    free = (plain > 1e-9) & (plain < 0.99)
    assert free.sum() >= 3 and np.abs(np.log(y[free] / plain[free])).max() > 0.1
    # the same run seed draws the same physics
    again = _run(tmp_path, physics_perturb=0.3, physics_draws=3)
    np.testing.assert_array_equal(again.simulate_pairs(t, q)[0], y)


def test_no_perturbation_is_the_card_physics(tmp_path):
    t, q = _pairs(6)
    run = _run(tmp_path)
    y, e = run.simulate_pairs(t, q)
    np.testing.assert_array_equal(y, simulate_yields(Simulator(temperature=60.0), t, q, None))
    assert not hasattr(run, "last_draws")


def test_energy_head_gets_energies_per_draw(tmp_path):
    t, q = _pairs(6)
    run = _run(tmp_path, physics_perturb=0.5, physics_draws=2, objective="rank")
    y, e = run.simulate_pairs(t, q)
    assert e is not None and e.shape == y.shape and np.isfinite(e).all()
    from primo.training.pairs import simulate_energies

    seed, i = run.last_draws[0]
    y0, e0 = simulate_energies(Simulator(temperature=60.0).derive(perturb=(0.5, seed)),
                               t[i], q[i], None)
    np.testing.assert_array_equal(e[i], e0)
    np.testing.assert_array_equal(y[i], y0)


@pytest.mark.parametrize("args, what", [
    (["--physics-perturb", "-0.1"], "--physics-perturb"),
    (["--physics-perturb", "nan"], "--physics-perturb"),
    (["--physics-perturb", "6"], "--physics-perturb"),
    (["--physics-draws", "0"], "--physics-draws"),
])
def test_bad_values_are_refused_in_one_line(args, what, tmp_path, run_cli):
    res, _, err = run_cli(["train", "--features", tmp_path / "F.h5", "-o", tmp_path / "M", *args])
    assert res.exit_code == 2 and what in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_simulator_without_parameters_is_refused(tmp_path):
    pytest.importorskip("tensorflow")
    from primo.errors import UsageError
    from primo.features.store import write_features
    from primo.training.trainer import train

    rng = np.random.default_rng(0)
    write_features(tmp_path / "F.h5", [f"d{i}" for i in range(60)],
                   rng.normal(size=(60, 4)).astype("float32"), {"extractor": "test"})

    class Fixed:   # a simulator with no nearest-neighbor parameters to perturb
        temperature = 21.0

        def yields(self, t, q, mapper=None, progress=False):
            return np.zeros(len(t))

        def to_dict(self):
            return {"backend": "fixed"}

    with pytest.raises(UsageError, match="physics_perturb|perturbs ViennaRNA"):
        train(tmp_path / "F.h5", tmp_path / "M", TrainSettings(physics_perturb=0.3, seed=0),
              simulator=Fixed())
    assert not (tmp_path / "M" / "card.json").exists()


def test_card_records_the_ensemble(tmp_path, run_cli):
    pytest.importorskip("tensorflow")
    from primo.features.store import write_features

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 6)) * 3
    lab = rng.integers(0, 4, 160)
    X = (centers[lab] + rng.normal(size=(160, 6)) * 0.6).astype("float32")
    write_features(tmp_path / "F.h5", [f"d{i}" for i in range(160)], X, {"extractor": "test"})
    tiny = ["--hidden", "32", "--rounds", "1", "--steps", "4", "--batch-size", "16",
            "--seed-pairs", "8", "--seed-epochs", "1", "--sim-pairs", "8", "--predictor-epochs",
            "1", "--heldout-rows", "30", "--eval-pairs", "2", "--final-eval-pairs", "2",
            "--threshold", "auto", "--threshold-quantile", "0.1", "--seed", "3",
            "--capture-eval-docs", "0"]
    res, _, err = run_cli(["train", "--features", tmp_path / "F.h5", "-o", tmp_path / "M", "-j",
                           "1", *tiny, "--physics-perturb", "0.3", "--physics-draws", "2"])
    assert res.exit_code == 0, err
    card = json.loads((tmp_path / "M" / "card.json").read_text())
    settings = card["training"]
    assert settings.get("physics_perturb") == 0.3 and settings.get("physics_draws") == 2
    assert "perturb" not in json.dumps(card.get("simulator", {}))   # the card's physics: unperturbed


def test_the_paper_method_is_not_robust_training():
    from primo.errors import UsageError

    with pytest.raises(UsageError, match="physics_perturb"):
        TrainSettings.from_options(paper=True, physics_perturb=0.3)
    assert TrainSettings.from_options(paper=True, physics_perturb=0.0).physics_perturb == 0.0
