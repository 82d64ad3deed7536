"""``primo train --neighbors K``: similarity by neighbourhood rank instead of one global distance
threshold (the feature space's density varies, so a global threshold leaves sparse regions with
no similar pairs and makes dense ones all similar)."""

import json

import numpy as np
import pytest

from primo.errors import UsageError
from primo.features.store import write_features
from primo.training.data import (ArrayFeatures, PairSampler, heldout_pairs, neighbor_radii,
                                 pairwise_sq_distances, scaled_neighbors)


def _two_densities(n=240, dim=4, seed=0):
    """Half the rows in a tight cluster, half spread 30x wider."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    X[n // 2:] *= 30.0
    X[n // 2:] += 500.0
    return X.astype("float32")


def _knn_sets(X, k):
    D = pairwise_sq_distances(X, X)
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


def test_radii_are_the_kth_neighbour_distance():
    X = _two_densities()
    r = neighbor_radii(X, 5, chunksize=17)
    D = np.sqrt(np.maximum(pairwise_sq_distances(X, X), 0))
    np.fill_diagonal(D, np.inf)
    np.testing.assert_allclose(r, np.sort(D, axis=1)[:, 4], rtol=1e-6)
    assert scaled_neighbors(100, 550, 55000) == 1 and scaled_neighbors(100, 27500, 55000) == 50
    assert scaled_neighbors(100, 10, 10) == 9          # never more than the other rows


def test_every_document_gets_its_neighbours_as_similar_pairs_in_both_densities():
    X = _two_densities()
    k = 5
    smp = PairSampler(ArrayFeatures(X), 999.0, np.random.default_rng(0), chunksize=31,
                      neighbors=k, near_factor=2.0)
    smp.refresh()
    assert smp.threshold == 1.0
    got = set(map(tuple, smp.similar.tolist()))
    want = {tuple(sorted((i, int(j)))) for i, row in enumerate(_knn_sets(X, k)) for j in row}
    assert want <= got                      # the k-NN relation, made symmetric
    assert len(got) <= 2 * len(want)        # and not much else (ties aside)
    # a global threshold at the same share of similar pairs leaves the sparse half without any
    d = np.sqrt(np.maximum(pairwise_sq_distances(X, X), 0))[np.triu_indices(len(X), 1)]
    thr = np.quantile(d, len(got) / len(d))
    glob = PairSampler(ArrayFeatures(X), thr, np.random.default_rng(0))
    glob.refresh()
    sparse = np.arange(len(X)) >= len(X) // 2
    assert not sparse[glob.similar].any()
    assert sparse[smp.similar].any(axis=1).sum() >= k * sparse.sum() // 2
    # balanced batches: labels follow the scaled distance, radii are handed over
    xa, xb, y = smp.balanced(64, hard_fraction=0.5)
    ra, rb = smp.last_radii
    rho = np.linalg.norm(xa - xb, axis=1) / np.maximum(ra, rb)
    assert (rho[y == 1] <= 1 + 1e-5).all() and (rho[y == 0] > 1).all()
    assert (rho[y == 0] <= 2.0 + 1e-5).sum() >= 16   # the hard half lies within 2 radii
    xa, xb, dist = smp.random(40)
    assert (dist >= 0).all() and np.isfinite(dist).all()


def test_heldout_pairs_by_neighbourhood():
    X = _two_densities(n=120)
    i, j, d, kind = heldout_pairs(X, 999.0, 50, 30, np.random.default_rng(0), neighbors=20,
                                  reference_rows=600)   # rank 20 of 600 -> 4 of 120
    assert (kind == 1).sum() == 50 and (d[kind == 1] <= 1 + 1e-6).all()
    r = neighbor_radii(X, 4)
    rho = np.linalg.norm(X[i] - X[j], axis=1) / np.maximum(r[i], r[j])
    np.testing.assert_allclose(d, rho, rtol=1e-5)
    sparse = np.arange(len(X)) >= len(X) // 2
    assert sparse[i[kind == 1]].any() and (~sparse[i[kind == 1]]).any()


def test_triplet_negatives_use_the_radii():
    pytest.importorskip("tensorflow")
    from primo.training.trainer import _triplets

    xa = np.array([[0.0], [100.0]], "float32")
    xb = np.array([[0.5], [103.0], [2.0], [110.0]], "float32")
    y = np.array([1, 1, 0, 0], "float32")
    # a global threshold of 1 would call (100, 103) dissimilar; with radii 5 around 100 it is not
    anchors, neg, w = _triplets(xa[[0, 1, 0, 1]], xb, y, 1.0, 3, np.random.default_rng(0),
                                radii=(np.array([1.0, 5.0, 1.0, 5.0]),
                                       np.array([1.0, 5.0, 1.0, 5.0])))
    assert anchors.ravel().tolist() == [0, 1]
    assert set(neg[1].tolist()) == {0, 2, 3}    # 110 is 2 radii away, 103 is not a candidate
    assert 1 not in neg[1].tolist() and 0 not in neg[0].tolist()
    assert w.min() == 1.0


def _store(path, n=120, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    X[n // 2:] *= 20
    write_features(path, [f"doc{i}" for i in range(n)], X.astype("float32"),
                   {"extractor": "synthetic-test"}, labels=(np.arange(n) >= n // 2).astype(int))


TINY = ["--hidden", "16", "--rounds", "1", "--steps", "3", "--batch-size", "8",
        "--seed-pairs", "8", "--seed-epochs", "1", "--sim-pairs", "6", "--predictor-epochs", "1",
        "--heldout-rows", "40", "--eval-pairs", "3", "--final-eval-pairs", "3", "--seed", "5",
        "--capture-eval-docs", "0", "-j", "1"]


@pytest.mark.parametrize("objective", ["paper", "rank"])
def test_train_with_neighbours_records_it_and_resumes(tmp_path, run_cli, objective):
    pytest.importorskip("tensorflow")
    store = tmp_path / "F.h5"
    _store(store)
    out = tmp_path / "M"
    res, _, err = run_cli(["train", "-f", str(store), "-o", str(out), *TINY, "--similar-neighbors",
                           "5", "--objective", objective, "--hard-negatives", "0.5"])
    assert res.exit_code == 0, err
    card = json.loads((out / "card.json").read_text())
    assert card["threshold"]["method"] == "neighbors" and card["threshold"]["neighbors"] == 5
    assert card["threshold"]["value"] == 1.0 and card["training"]["neighbors"] == 5
    assert card["metrics"]["eval_pairs"] > 3       # similar held-out pairs exist
    # one more round from the checkpoint keeps the neighbourhood similarity
    res, _, err = run_cli(["train", "-f", str(store), "-o", str(out), "--resume", "--rounds", "2",
                           "-j", "1"])
    assert res.exit_code == 0, err
    card = json.loads((out / "card.json").read_text())
    assert card["threshold"]["method"] == "neighbors" and card["training"]["rounds_completed"] == 2


@pytest.mark.parametrize("args,message", [
    (["--similar-neighbors", "0"], "--similar-neighbors"),
    (["--similar-neighbors", "5", "--threshold", "2"],
     "--similar-neighbors: neighbors replaces the similarity threshold"),
    # the old spelling: the error names the new one
    (["--neighbors", "5", "--threshold", "2"],
     "--similar-neighbors: neighbors replaces the similarity threshold"),
    (["--similar-neighbors", "5", "--threshold-quantile", "0.1"], "drop threshold_quantile"),
])
def test_bad_neighbours_usage(tmp_path, run_cli, args, message):
    store = tmp_path / "F.h5"
    _store(store, n=40)
    out = tmp_path / "M"
    res, _, err = run_cli(["train", "-f", str(store), "-o", str(out), *TINY, *args])
    assert res.exit_code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_neighbours_setting_is_checked():
    from primo.training.trainer import TrainSettings

    for bad in (0, -3, 2.5, True, "many"):
        with pytest.raises(UsageError, match="neighbors must be a whole number"):
            TrainSettings(neighbors=bad).check()
    for good in (7, "auto", None):
        TrainSettings(neighbors=good).check()


def test_default_similarity_is_by_neighbourhood_and_a_threshold_flag_gives_the_papers(
        tmp_path, run_cli):
    """No similarity flag: primo's default (neighbourhoods, K automatic); --threshold: the
    paper's global threshold; the card names the default either way."""
    pytest.importorskip("tensorflow")
    from primo.training.trainer import DEFAULT_NEIGHBORS, NEIGHBORS_MAX_FRACTION

    store = tmp_path / "F.h5"
    _store(store)
    out = tmp_path / "D"
    res, _, err = run_cli(["train", "-f", str(store), "-o", str(out), *TINY])
    assert res.exit_code == 0, err
    card = json.loads((out / "card.json").read_text())
    thr = card["threshold"]
    n_train = card["data"]["training_rows"]
    assert thr["method"] == "neighbors" and thr["requested"] == "auto"
    assert thr["neighbors"] == min(DEFAULT_NEIGHBORS, max(1, int(NEIGHBORS_MAX_FRACTION * n_train)))
    assert card["objective"]["primo_default"]["this_model"] is True
    assert card["objective"]["primo_default"]["neighbors"] == "auto"
    out2 = tmp_path / "P"
    res, _, err = run_cli(["train", "-f", str(store), "-o", str(out2), *TINY, "--threshold", "auto",
                           "--threshold-quantile", "0.1"])
    assert res.exit_code == 0, err
    card = json.loads((out2 / "card.json").read_text())
    assert card["threshold"]["method"] == "quantile" and card["training"]["neighbors"] is None
    assert card["objective"]["primo_default"]["this_model"] is False


def test_api_threshold_selects_the_papers_similarity(tmp_path):
    pytest.importorskip("tensorflow")
    import primo

    store = tmp_path / "F.h5"
    _store(store, n=60)
    kw = dict(rounds=1, steps=2, hidden=8, batch_size=8, seed_pairs=8, seed_epochs=1,
              sim_pairs=8, eval_pairs=4, final_eval_pairs=4, heldout_rows=8, seed=0,
              capture_eval_docs=0)
    res = primo.train(store, tmp_path / "A", threshold=None, threshold_quantile=0.2, **kw)
    assert res.card["threshold"]["method"] == "quantile"
    res = primo.train(store, tmp_path / "B", **kw)
    assert res.card["threshold"]["method"] == "neighbors"


def test_settings_saved_before_neighbourhoods_resume_with_the_threshold():
    from primo.training.trainer import TrainSettings

    old = TrainSettings(neighbors=None, threshold=None, threshold_quantile=0.1).to_dict()
    del old["neighbors"]
    assert TrainSettings.from_dict(old).neighbors is None
    assert TrainSettings.from_dict(TrainSettings().to_dict()).neighbors == "auto"
