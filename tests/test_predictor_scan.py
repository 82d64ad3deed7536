"""The soft duplex scan predictor (issue 16): the vectorised recursion against a plain loop over
the pairing matrix, off-register duplexes, save/load with safe_mode, gradients to the inputs."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from primo.dna import onehot  # noqa: E402
from primo.predictor.model import (DuplexScan, LocalMatch, build_scan_predictor,  # noqa: E402
                                   load_predictor, predictor_outputs)


def _lse(v):
    v = np.asarray(v, dtype=np.float64)
    m = v.max()
    return m + np.log(np.exp(v - m).sum())


def scan_reference(t, q, stack, pm, pmm, init, b1, b2, l22):
    """log Z of one pair by a plain double loop over (target i, query j)."""
    la, lb = len(t), len(q)
    neg = -np.inf
    H = np.full((la, lb), neg)
    for i in range(la):
        for j in range(lb):
            match = float(t[i] @ q[j])
            pair = pm * match + pmm * (1 - match)
            terms = [init + pair]
            if i >= 1 and j >= 1:
                st = np.einsum("a,b,c,d,abcd->", t[i - 1], t[i], q[j - 1], q[j],
                               stack.reshape(4, 4, 4, 4))
                terms.append(H[i - 1, j - 1] + st)
            for di, dj, pen in ((2, 1, b1), (1, 2, b1), (3, 1, b2), (1, 3, b2), (3, 3, l22)):
                if i >= di and j >= dj:
                    terms.append(H[i - di, j - dj] + pen + pair)
            H[i, j] = _lse(terms)
    return _lse(H.ravel())


def _soft(rng, shape):
    x = rng.random(shape).astype("float32") ** 3
    return x / x.sum(-1, keepdims=True)


def test_scan_equals_a_plain_loop_over_the_pairing_matrix():
    rng = np.random.default_rng(0)
    t, q = _soft(rng, (3, 9, 4)), _soft(rng, (3, 7, 4))
    layer = DuplexScan()
    layer.build([t.shape, q.shape])
    stack = rng.normal(size=(16, 16)).astype("float32")
    scal = dict(pair_match=0.7, pair_mismatch=-0.4, init=-1.5, bulge1=-0.8, bulge2=-1.2,
                loop22=-0.6)
    layer.stack.assign(stack)
    for k, v in scal.items():
        layer.scalars[k].assign(v)
    got = np.asarray(layer([t, q])).ravel()
    want = [scan_reference(t[b], q[b], stack, scal["pair_match"], scal["pair_mismatch"],
                           scal["init"], scal["bulge1"], scal["bulge2"], scal["loop22"])
            for b in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def _pairs():
    rng = np.random.default_rng(1)
    a = "".join(rng.choice(list("ACGT"), 80))
    rnd = "".join(rng.choice(list("ACGT"), 80))
    shifted = a[6:] + "".join(rng.choice(list("ACGT"), 6))     # the same bases, 6 nt off register
    bulged = a[:40] + "T" + a[40:79]                             # one extra base in the middle
    return a, {"identical": a, "shifted": shifted, "bulged": bulged, "random": rnd}


def test_scan_sees_shifted_and_bulged_duplexes_unlike_local_match():
    a, qs = _pairs()
    names = list(qs)
    t = onehot([a] * len(names))
    q = onehot([qs[n] for n in names])
    z = dict(zip(names, np.asarray(DuplexScan()([t, q])).ravel()))
    # the untrained scan already ranks shifted / bulged duplexes with the perfect one, far above
    # a random pair
    for n in ("shifted", "bulged"):
        assert z[n] - z["random"] > 0.6 * (z["identical"] - z["random"]), z
    # local-match compares aligned 3-nt windows only: a 6-nt shift looks like a random pair
    lm = {n: float(np.asarray(LocalMatch(3)([t[i:i + 1], q[i:i + 1]]))[..., [0, 4, 8]].sum())
          for i, n in enumerate(names)}
    assert lm["shifted"] < 0.5 * lm["identical"]


def test_scan_predictor_outputs_and_safe_mode_round_trip(tmp_path):
    m = build_scan_predictor()
    assert [type(layer).__name__ for layer in m.layers].count("DuplexScan") == 1
    assert m.count_params() == 266
    a, qs = _pairs()
    t, q = onehot([a, a]), onehot([qs["identical"], qs["random"]])
    y, e = (np.asarray(v) for v in predictor_outputs(m([t, q])))
    assert y.shape == e.shape == (2, 1) and ((y >= 0) & (y <= 1)).all()
    assert e[0, 0] < e[1, 0]  # the perfect duplex has the lower energy
    m.get_layer("duplex_scan").stack.assign(np.full((16, 16), 0.3, "float32"))
    y, e = (np.asarray(v) for v in m([t, q]))
    m.save(tmp_path / "p.keras")
    back = load_predictor(tmp_path / "p.keras")  # safe_mode=True
    y2, e2 = (np.asarray(v) for v in back([t, q]))
    np.testing.assert_allclose(y2, y, rtol=1e-6)
    np.testing.assert_allclose(e2, e, rtol=1e-6)


def test_scan_gradients_reach_both_one_hots():
    import tensorflow as tf

    m = build_scan_predictor()
    a, qs = _pairs()
    t = tf.constant(onehot([a, a]))
    q = tf.constant(onehot([qs["bulged"], qs["random"]]))
    with tf.GradientTape() as tape:
        tape.watch([t, q])
        y, e = m([t, q])
        loss = tf.reduce_sum(e) + tf.reduce_sum(y)
    gt, gq, *gw = tape.gradient(loss, [t, q] + m.trainable_variables)
    assert np.isfinite(gt.numpy()).all() and np.abs(gt.numpy()).sum() > 0
    assert np.isfinite(gq.numpy()).all() and np.abs(gq.numpy()).sum() > 0
    assert all(g is not None and np.isfinite(np.asarray(g)).all() for g in gw)


def test_parallel_scan_converges_to_the_row_recursion_and_counts_loops_exactly():
    """DuplexScan(loops=n) sums the duplexes with at most n bulges/loops in parallel passes: with
    n = 0 it is the plain loop without bulge/loop moves; as n grows it reaches the exact row
    recursion; its gradients are finite and it saves with its setting."""
    import tensorflow as tf

    rng = np.random.default_rng(2)
    t, q = _soft(rng, (3, 9, 4)), _soft(rng, (3, 7, 4))
    stack = rng.normal(size=(16, 16)).astype("float32")
    scal = dict(pair_match=0.7, pair_mismatch=-0.4, init=-1.5, bulge1=-0.8, bulge2=-1.2,
                loop22=-0.6)

    def layer(loops):
        lay = DuplexScan(loops=loops)
        lay.build([t.shape, q.shape])
        lay.stack.assign(stack)
        for k, v in scal.items():
            lay.scalars[k].assign(v)
        return lay

    exact = np.asarray(layer(None)([t, q])).ravel()
    no_loops = [scan_reference(t[b], q[b], stack, scal["pair_match"], scal["pair_mismatch"],
                               scal["init"], -1e9, -1e9, -1e9) for b in range(3)]
    np.testing.assert_allclose(np.asarray(layer(0)([t, q])).ravel(), no_loops, rtol=1e-4)
    diffs = [np.abs(np.asarray(layer(n)([t, q])).ravel() - exact).max() for n in (0, 1, 2, 9)]
    assert all(b <= a + 1e-6 for a, b in zip(diffs, diffs[1:])) and diffs[0] > 1e-3
    assert diffs[-1] < 1e-4    # 9 nt: no duplex has more than 9 loops
    m = build_scan_predictor(loops=2)
    a, qs = _pairs()
    tt, qq = tf.constant(onehot([a, a])), tf.constant(onehot([qs["bulged"], qs["random"]]))
    with tf.GradientTape() as tape:
        tape.watch([tt, qq])
        y, e = m([tt, qq])
        loss = tf.reduce_sum(e)
    g = tape.gradient(loss, tt).numpy()
    assert np.isfinite(g).all() and np.abs(g).sum() > 0
    assert m.get_layer("duplex_scan").get_config()["loops"] == 2
    with pytest.raises(ValueError):
        DuplexScan(loops=-1)
